//! Checking an agent job's options and resolving what they name: the repository at
//! `<container>/rime` on the chosen storage (or each `[storage:NAME]` of the config file), its
//! password, host and backup name, the log file.
//!
//! Password: the first line of `--encrypt-pass-file`, else `RIME_PASSWORD` /
//! `RIME_PASSWORD_FILE`. Without any, a backup creates an UNENCRYPTED repository (as Freezer
//! stores unencrypted archives without a pass file) and says so on every run; an existing
//! encrypted repository is refused with a message naming the missing pass file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rime_engine::format::config::Encryption;
use rime_engine::repo::{InitOptions, Repository};
use rime_engine::storage::Storage;
use rime_engine::{Error, ErrorKind, Result};

use super::agent::AgentArgs;
use crate::config_file::StorageSection;
use crate::GlobalOpts;

/// A checked agent job.
pub struct Job {
    /// The global options with the agent's storage, limits and password applied.
    pub g: GlobalOpts,
    pub hostname: String,
    pub backup_name: String,
    /// Storage sections the repositories live in (`url` already ends in `/rime`).
    pub storages: Vec<StorageSection>,
    pub password: Option<Vec<u8>>,
    /// The password of Freezer's own `openssl enc` streams: the pass file's first line as
    /// openssl reads it (a Windows line's `\r` kept; the reader also tries it without).
    pub openssl_password: Option<Vec<u8>>,
    log: Option<std::sync::Mutex<std::fs::File>>,
    log_rank: u8,
}

fn unsupported(what: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{what} is not supported by rime"))
}

fn one_of(option: &str, value: &str, ok: &[&str], freezer_only: &[&str]) -> Result<()> {
    if ok.contains(&value) {
        return Ok(());
    }
    if freezer_only.contains(&value) {
        return Err(unsupported(format!("{option} {value}")));
    }
    Err(Error::invalid(format!(
        "{option} {value:?}: expected one of {}",
        ok.join(", ")
    )))
}

/// `-1` (Freezer's "no limit") or a rate with K/M/G suffixes.
pub fn parse_limit(option: &str, v: &str) -> Result<Option<u64>> {
    if v.trim() == "-1" {
        return Ok(None);
    }
    rime_engine::storage::bandwidth::parse_rate(v)
        .map(Some)
        .map_err(|e| e.within(option))
}

/// A date option: Freezer's `YYYY-MM-DDThh:mm:ss` (also with a space, or a day alone) in local
/// time, as Freezer reads it; or, with `Z` or an offset (`+02:00`, `+0200`), at that offset,
/// which is how `info` and the messages print times (UTC, `Z`), so that a time copied from
/// them names the same instant whatever the host's time zone.
pub fn parse_date(option: &str, v: &str) -> Result<i64> {
    use chrono::TimeZone;
    let t = v.trim();
    let with_offset = chrono::DateTime::parse_from_rfc3339(t).ok().or_else(|| {
        ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z"]
            .iter()
            .find_map(|f| chrono::DateTime::parse_from_str(t, f).ok())
    });
    if let Some(d) = with_offset {
        return Ok(d.timestamp());
    }
    let naive = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]
        .iter()
        .find_map(|f| {
            chrono::NaiveDateTime::parse_from_str(t, f)
                .ok()
                .or_else(|| {
                    chrono::NaiveDate::parse_from_str(t, f)
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                })
        })
        .ok_or_else(|| {
            Error::invalid(format!(
                "{option} {v:?}: expected a date like 2026-11-21T10:00:00 (local time), \
                 2026-11-21T10:00:00Z (UTC, as info prints) or 2026-11-21T10:00:00+02:00"
            ))
        })?;
    chrono::Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp())
        .ok_or_else(|| Error::invalid(format!("{option} {v:?}: no such local time")))
}

impl Job {
    pub fn resolve(g: &GlobalOpts, a: &AgentArgs) -> Result<Job> {
        one_of(
            "--action",
            &a.action,
            &["backup", "restore", "info", "admin", "exec"],
            &[],
        )?;
        one_of(
            "--mode",
            &a.mode,
            &["fs", "mysql", "mongo"],
            &[
                "sqlserver",
                "cinder",
                "cindernative",
                "cinderbrick",
                "nova",
                "glance",
            ],
        )?;
        one_of(
            "--engine",
            &a.engine,
            &["tar", "rime"],
            &["rsync", "rsyncv2", "nova", "osbrick", "glance"],
        )?;
        one_of(
            "--storage",
            &a.storage,
            &["local", "ssh", "swift"],
            &["s3", "ftp", "ftps"],
        )?;
        one_of(
            "--compression",
            &a.compression,
            &["gzip", "bzip2", "xz", "zstd"],
            &[],
        )?;
        one_of(
            "--log-level",
            &a.log_level.to_ascii_lowercase(),
            &[
                "all", "debug", "info", "warning", "warn", "error", "critical",
            ],
            &[],
        )?;
        if let Some(d) = &a.dereference_symlink {
            one_of(
                "--dereference-symlink",
                d,
                &["none", "soft", "hard", "all"],
                &[],
            )?;
        }
        if let Some(u) = a.unsupported.first() {
            return Err(unsupported(u));
        }
        if a.no_incremental && a.incremental {
            return Err(Error::invalid(
                "--incremental and --no-incremental contradict each other",
            ));
        }
        level_rules(a).check()?;
        if a.remove_older_than.is_some() && a.remove_from_date.is_some() {
            return Err(Error::invalid(
                "--remove-older-than and --remove-from-date: give one of them",
            ));
        }
        if let Some(m) = &a.max_segment_size {
            parse_limit("--max-segment-size", m)?;
        }
        let mut g = g.clone();
        if let Some(v) = &a.upload_limit {
            g.limit_upload = parse_limit("--upload-limit", v)?.or(g.limit_upload);
        }
        if let Some(v) = &a.download_limit {
            g.limit_download = parse_limit("--download-limit", v)?.or(g.limit_download);
        }
        if a.max_priority {
            max_priority();
        }
        let password = match &a.encrypt_pass_file {
            Some(f) => Some(
                crate::password::read_password_file(f)
                    .map_err(|e| e.within("--encrypt-pass-file"))?,
            ),
            None => match (&g.password_file, std::env::var("RIME_PASSWORD")) {
                (Some(f), _) => Some(crate::password::read_password_file(f)?),
                (None, Ok(p)) if !p.is_empty() => Some(p.into_bytes()),
                _ => None,
            },
        };
        let openssl_password = match &a.encrypt_pass_file {
            Some(f) => Some(
                rime_engine::tarinc::openssl::read_pass_file(f)
                    .map_err(|e| e.within("--encrypt-pass-file"))?,
            ),
            None => password.clone(),
        };
        let hostname = a.hostname.clone().unwrap_or_else(rime_engine::hostname);
        let backup_name = super::agent_names::backup_name(a, &hostname)?;
        let mut storages = vec![];
        if let Some(cfg) = &g.config {
            for s in crate::config_file::load(cfg)?.storages {
                storages.push(StorageSection {
                    url: join_rime(&s.url),
                    ..s
                });
            }
        }
        if storages.is_empty() {
            storages.push(primary_storage(a)?);
        }
        let log = match &a.log_file {
            Some(p) => Some(std::sync::Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| Error::io(format!("--log-file {}", p.display()), e))?,
            )),
            None => None,
        };
        let log_rank = if a.debug {
            rank("debug")
        } else {
            rank(&a.log_level)
        };
        g.config = None;
        g.repo = vec![];
        Ok(Job {
            g,
            hostname,
            backup_name,
            storages,
            password,
            openssl_password,
            log,
            log_rank,
        })
    }

    /// A log line to the `--log-file` (if its level passes `--log-level`).
    pub fn log(&self, level: &str, msg: &str) {
        if rank(level) < self.log_rank {
            return;
        }
        if let Some(f) = &self.log {
            let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S%.3f");
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(f, "{now} {} {level} rime-agent {msg}", std::process::id());
        }
    }

    /// A message for the user (standard error unless --quiet) and the log.
    pub fn say(&self, msg: &str) {
        if !self.g.quiet {
            eprintln!("{msg}");
        }
        self.log("INFO", msg);
    }

    /// A problem the user must not miss: on standard error even with --quiet, and logged at
    /// WARNING so that `--log-level warning` keeps it.
    pub fn warn(&self, msg: &str) {
        eprintln!("{msg}");
        self.log("WARNING", msg);
    }

    /// The storage of the run (several `[storage:NAME]` sections: one fan-out).
    pub fn storage(&self) -> Result<Arc<dyn Storage>> {
        let members = self
            .storages
            .iter()
            .map(|s| crate::storage_open::open_section(&self.g, s))
            .collect::<Result<Vec<_>>>()?;
        super::fan_out(members)
    }

    pub fn location(&self) -> String {
        self.storages
            .iter()
            .map(|s| s.url.clone())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Open the repository; with `create`, make it if there is none yet.
    pub fn open(&self, create: bool) -> Result<Repository> {
        let s = self.storage()?;
        match Repository::open(s.clone(), self.password.as_deref()) {
            Err(e) if e.kind() == ErrorKind::RepositoryNotFound && create => {
                let encryption = if self.password.is_some() {
                    Encryption::Aes256Gcm
                } else {
                    Encryption::None
                };
                let opts = InitOptions {
                    encryption,
                    ..InitOptions::default()
                };
                let pw = self.password.clone().unwrap_or_default();
                let repo = Repository::init(s, &pw, &opts)?;
                self.say(&format!(
                    "rime: created repository {} at {}",
                    repo.config().repo_id.short(),
                    self.location()
                ));
                if encryption == Encryption::None {
                    self.warn_unencrypted();
                }
                Ok(repo)
            }
            Err(e)
                if self.password.is_none()
                    && matches!(e.kind(), ErrorKind::WrongPassword | ErrorKind::InvalidInput) =>
            {
                Err(Error::new(
                    ErrorKind::WrongPassword,
                    format!(
                        "the repository at {} is encrypted: give its password with --encrypt-pass-file (or RIME_PASSWORD_FILE / RIME_PASSWORD)",
                        self.location()
                    ),
                ))
            }
            r => {
                let repo = r?;
                if repo.config().encryption == Encryption::None {
                    self.warn_unencrypted();
                }
                Ok(repo)
            }
        }
    }

    /// Always on standard error, even with --quiet: nobody should miss it.
    fn warn_unencrypted(&self) {
        if self.password.is_some() {
            self.warn(&format!(
                "rime: warning: the repository at {} is NOT encrypted (it was created without --encrypt-pass-file); the pass file is not used",
                self.location()
            ));
        } else {
            self.warn(&format!(
                "rime: warning: no --encrypt-pass-file: the repository at {} is NOT encrypted",
                self.location()
            ));
        }
    }
}

/// Freezer's `all` is its most verbose level, as `debug` here.
fn rank(level: &str) -> u8 {
    match level.to_ascii_lowercase().as_str() {
        "all" | "debug" => 0,
        "info" => 1,
        "warning" | "warn" => 2,
        _ => 3,
    }
}

pub fn level_rules(a: &AgentArgs) -> rime_engine::ops::tarlevel::LevelRules {
    rime_engine::ops::tarlevel::LevelRules {
        no_incremental: a.no_incremental,
        max_level: a.max_level,
        always_level: a.always_level,
        restart_days: a.restart_always_level,
    }
}

/// `<url>/rime`.
fn join_rime(url: &str) -> String {
    format!("{}/rime", url.trim_end_matches('/'))
}

/// The storage given by `--storage`, `--container` and the `--ssh-*` options.
fn primary_storage(a: &AgentArgs) -> Result<StorageSection> {
    let mut kv = std::collections::BTreeMap::new();
    kv.insert("storage".to_string(), a.storage.clone());
    kv.insert("container".to_string(), a.container.clone());
    if let Some(h) = &a.ssh_host {
        kv.insert("ssh_host".into(), h.clone());
    }
    if let Some(u) = &a.ssh_username {
        kv.insert("ssh_username".into(), u.clone());
    }
    kv.insert("ssh_port".into(), a.ssh_port.to_string());
    if a.storage == "ssh" && a.ssh_host.is_none() {
        return Err(Error::invalid("--storage ssh needs --ssh-host"));
    }
    let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let s = crate::config_file::storage_section("command line", &kv, Path::new(&base))?;
    let mut s = StorageSection {
        url: join_rime(&s.url),
        ..s
    };
    s.ssh_key = None; // the global --ssh-key applies
    Ok(s)
}

/// `--max-priority`: nice -19 and the best-effort I/O class's highest priority, as far as the
/// system allows (a warning otherwise).
fn max_priority() {
    let (cpu, io) = rime_engine::sys::max_priority();
    if !cpu {
        eprintln!("rime: warning: --max-priority: cannot raise the CPU priority (needs root)");
    }
    if !io {
        eprintln!("rime: warning: --max-priority: cannot raise the I/O priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> AgentArgs {
        let mut v = vec!["rime", "agent"];
        v.extend(extra);
        match crate::Cli::try_parse_from(v).unwrap().command {
            crate::Command::Agent(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn repository_is_container_slash_rime_on_each_storage() {
        let url = |e: &[&str]| primary_storage(&args(e)).unwrap().url;
        assert_eq!(url(&["--storage", "local", "-C", "/srv/b/"]), "/srv/b/rime");
        assert_eq!(
            url(&[
                "--storage",
                "ssh",
                "-C",
                "/srv/c",
                "--ssh-host",
                "10.0.0.5",
                "--ssh-username",
                "bk",
                "--ssh-port",
                "2222"
            ]),
            "sftp://bk@10.0.0.5:2222/srv/c/rime"
        );
        assert_eq!(
            url(&["-C", "nightly"]),
            "swift://nightly/rime",
            "swift is the default"
        );
        assert!(primary_storage(&args(&["--storage", "ssh"])).is_err());
    }

    #[test]
    fn freezer_dates_and_limits() {
        assert!(parse_date("--x", "2026-11-21T10:00:00").is_ok());
        assert!(parse_date("--x", "2026-11-21 10:00:00").is_ok());
        assert!(parse_date("--x", "yesterday").is_err());
        // The form info prints, and explicit offsets: the same instant in any time zone.
        let utc = 1_795_325_423; // 2026-11-22T05:30:23Z
        assert_eq!(parse_date("--x", "2026-11-22T05:30:23Z").unwrap(), utc);
        assert_eq!(parse_date("--x", "2026-11-22 05:30:23Z").unwrap(), utc);
        assert_eq!(parse_date("--x", "2026-11-22T07:30:23+02:00").unwrap(), utc);
        assert_eq!(parse_date("--x", "2026-11-22T00:30:23-0500").unwrap(), utc);
        assert_eq!(parse_limit("--u", "-1").unwrap(), None);
        assert_eq!(parse_limit("--u", "2M").unwrap(), Some(2 << 20));
        assert!(parse_limit("--u", "2Q").is_err());
    }
}
