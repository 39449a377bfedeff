//! `rime agent` (also run as `freezer-agent` or `freezerc`): Freezer's agent options with their
//! meanings and defaults, so Freezer jobs and scheduler configurations run unchanged.
//!
//! The options are parsed here; `agent_opts` checks them (unsupported Freezer features are
//! refused, never ignored) and resolves the repository, and one module per action does the
//! work. A `--config` file's non-storage sections become command-line options placed before
//! the real ones ([`expand_config`]), so the command line wins.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rime_engine::Result;

use super::agent_unsupported::Unsupported;
use super::backup_snapshot::SnapshotArgs;
use crate::GlobalOpts;

#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    /// backup, restore, info (list restore points), admin (retention) or exec (--command)
    #[arg(long, default_value = "backup", value_name = "ACTION")]
    pub action: String,
    /// fs, mysql or mongo
    #[arg(short = 'm', long, default_value = "fs", value_name = "MODE")]
    pub mode: String,
    /// tar (GNU tar incremental levels, the default) or rime (rime's own snapshots)
    #[arg(short = 'e', long, default_value = "tar", value_name = "ENGINE")]
    pub engine: String,
    /// The directory (or file) to back up
    #[arg(
        short = 'F',
        long = "path-to-backup",
        visible_alias = "file-to-backup",
        value_name = "PATH"
    )]
    pub path_to_backup: Option<PathBuf>,
    /// Backup name, a template with Freezer's {mode}, {backup_media}, {storage}, {container},
    /// {resource_id} (the host name) and {project_id} [default: freezer_{mode}_{resource_id}]
    #[arg(short = 'N', long, value_name = "NAME")]
    pub backup_name: Option<String>,
    /// Container: a directory for local and ssh storage, a container for Swift; the rime
    /// repository is <container>/rime
    #[arg(
        short = 'C',
        long,
        default_value = "freezer_backups",
        value_name = "CONTAINER"
    )]
    pub container: String,
    /// local, ssh or swift
    #[arg(long, default_value = "swift", value_name = "STORAGE")]
    pub storage: String,
    #[arg(long, value_name = "USER")]
    pub ssh_username: Option<String>,
    #[arg(long, value_name = "HOST")]
    pub ssh_host: Option<String>,
    #[arg(long, default_value_t = 22, value_name = "PORT")]
    pub ssh_port: u16,
    /// Host name the backups are filed under (another host's, to restore them here);
    /// `--restore-from-host` is Freezer's deprecated name for it
    #[arg(long, visible_alias = "restore-from-host", value_name = "HOST")]
    pub hostname: Option<String>,
    /// Levels 0..N, then a new level 0
    #[arg(long, value_name = "N")]
    pub max_level: Option<u32>,
    /// Levels up to N, then every backup is level N (a differential against level N-1)
    #[arg(long, value_name = "N")]
    pub always_level: Option<u32>,
    /// A new level 0 when the chain's level 0 is this many days old
    #[arg(long, value_name = "DAYS")]
    pub restart_always_level: Option<f64>,
    /// Every backup is a level 0
    #[arg(long)]
    pub no_incremental: bool,
    /// Incremental backups (the default; accepted for Freezer job files)
    #[arg(long)]
    pub incremental: bool,
    /// Freezer's negation of `--incremental`, which only selects Cinder native incremental
    /// backups there: nothing to do for file backups, so accepted and unused
    #[arg(long, hide = true)]
    pub noincremental: bool,
    /// Freezer's timeout of cloud (Nova, Cinder, Glance) operations: rime does none, so
    /// accepted and unused
    #[arg(long, hide = true, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// admin: remove backups older than DAYS (never one a kept backup needs, never the newest)
    #[arg(
        short = 'R',
        long,
        visible_alias = "remove-older-then",
        value_name = "DAYS"
    )]
    pub remove_older_than: Option<f64>,
    /// admin: remove backups taken before DATE (YYYY-MM-DDThh:mm:ss)
    #[arg(long, value_name = "DATE")]
    pub remove_from_date: Option<String>,
    /// restore: the directory to restore into (must be empty unless --overwrite)
    #[arg(long, value_name = "DIR")]
    pub restore_abs_path: Option<PathBuf>,
    /// restore: the newest backup at or before DATE (YYYY-MM-DDThh:mm:ss, local time)
    #[arg(long, value_name = "DATE")]
    pub restore_from_date: Option<String>,
    /// restore: write into a non-empty directory
    #[arg(long)]
    pub overwrite: bool,
    /// File whose first line is the password (of the rime repository)
    #[arg(long, value_name = "FILE")]
    pub encrypt_pass_file: Option<PathBuf>,
    /// gzip, bzip2, xz or zstd: recorded with each level, and used when the levels are written
    /// out in Freezer's format (`rime dump --format tar-incremental --compressed`)
    #[arg(long, default_value = "gzip", value_name = "ALGO")]
    pub compression: String,
    /// Glob pattern of files not to back up (repeatable), matched as GNU tar does: against the
    /// path and each of its trailing parts (`cache/*` excludes every cache directory's files)
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// none, soft (follow symbolic links), hard (store hard links as full files) or all (both)
    #[arg(long, value_name = "KIND")]
    pub dereference_symlink: Option<String>,
    /// Freezer's upload unit; rime's repository packs data itself (checked, then unused)
    #[arg(short = 'M', long, value_name = "BYTES")]
    pub max_segment_size: Option<String>,
    /// Upload limit in bytes per second, K/M/G suffixes (-1: none)
    #[arg(long, value_name = "RATE", allow_hyphen_values = true)]
    pub upload_limit: Option<String>,
    /// Download limit in bytes per second, K/M/G suffixes (-1: none)
    #[arg(long, value_name = "RATE", allow_hyphen_values = true)]
    pub download_limit: Option<String>,
    /// Run at the highest CPU and I/O priority
    #[arg(long)]
    pub max_priority: bool,
    /// Write the backup metadata JSON (Freezer's fields) to FILE, or - for standard output
    #[arg(long, value_name = "FILE")]
    pub metadata_out: Option<String>,
    /// Append log lines to FILE
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// all (= debug), debug, info, warning, error, critical
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub log_level: String,
    /// Log at debug level whatever --log-level says (oslo.log's flag, which Freezer jobs use)
    #[arg(short = 'd', long)]
    pub debug: bool,
    /// exec: the command to run (a `|` pipeline, as Freezer)
    #[arg(long, value_name = "COMMAND")]
    pub command: Option<String>,
    /// mysql mode: INI file with host, user, password (and port)
    #[arg(long, value_name = "FILE")]
    pub mysql_conf: Option<PathBuf>,
    /// mongo mode: the node to check is the primary
    #[arg(long, default_value = "mongodb://127.0.0.1:27017", value_name = "URI")]
    pub mongo_uri: String,
    #[command(flatten)]
    pub snap: SnapshotArgs,
    #[command(flatten)]
    pub unsupported: Unsupported,
}

pub fn run(g: &GlobalOpts, mut a: AgentArgs) -> Result<ExitCode> {
    super::agent_names::expand_paths(&mut a);
    let job = super::agent_opts::Job::resolve(g, &a)?;
    job.log(
        "DEBUG",
        &format!(
            "action {} mode {} engine {} backup name {} host {} storage {}",
            a.action,
            a.mode,
            a.engine,
            job.backup_name,
            job.hostname,
            job.location()
        ),
    );
    let r = match a.action.as_str() {
        "backup" => super::agent_backup::run(&job, &a),
        "restore" => super::agent_restore::restore(&job, &a),
        "info" => super::agent_restore::info(&job, &a),
        "admin" => super::agent_admin::admin(&job, &a),
        "exec" => super::agent_admin::exec(&job, &a),
        _ => unreachable!("checked by Job::resolve"),
    };
    // The job log is what an operator reads after a scheduled run: the repository's warnings
    // (a damaged index file) go there too, not only to standard error (printed by `main`).
    for w in super::repository_warnings() {
        job.log("WARNING", &format!("rime: warning: {w}"));
    }
    if let Err(e) = &r {
        job.log("ERROR", &e.to_string());
    }
    r
}

/// Whether the run writes its backup metadata to standard output (`--metadata-out -`, as
/// Freezer's scheduler runs the agent): then nothing else may go there, since the scheduler
/// parses the whole of it as one JSON document.
pub fn reserves_stdout(a: &AgentArgs) -> bool {
    a.action == "backup" && a.metadata_out.as_deref() == Some("-")
}

const SUBCOMMANDS: [&str; 16] = [
    "init",
    "backup",
    "snapshots",
    "restore",
    "ls",
    "dump",
    "diff",
    "copy",
    "stats",
    "check",
    "key",
    "forget",
    "prune",
    "repair",
    "unlock",
    "agent",
];

/// Names under which the binary behaves as `rime agent`.
pub const AGENT_NAMES: [&str; 2] = ["freezer-agent", "freezerc"];

/// The command line as `rime` parses it: `freezer-agent ARGS` becomes `rime agent ARGS`, and the
/// agent's `--config FILE` sections are inserted before its own options.
pub fn rewrite_args(mut args: Vec<std::ffi::OsString>) -> Result<Vec<std::ffi::OsString>> {
    let invoked = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if AGENT_NAMES.contains(&invoked.as_str()) {
        args[0] = "rime".into();
        args.insert(1, "agent".into());
    }
    // The subcommand is the first argument naming one; only `agent` reads job files.
    let Some(pos) = args
        .iter()
        .skip(1)
        .position(|a| SUBCOMMANDS.iter().any(|c| a == c))
        .map(|p| p + 1)
        .filter(|&p| args[p] == "agent")
    else {
        return Ok(args);
    };
    let agent_args = args.split_off(pos + 1);
    args.extend(super::agent_prefix::expand_abbreviations(agent_args)?);
    // The config file named on the command line (either spelling).
    let mut config = None;
    for (i, a) in args.iter().enumerate() {
        let s = a.to_string_lossy();
        if s == "--config" {
            config = args.get(i + 1).map(PathBuf::from);
        } else if let Some(v) = s.strip_prefix("--config=") {
            config = Some(PathBuf::from(v));
        }
    }
    let tail = args.split_off(pos + 1);
    if let Some(config) = config {
        args.extend(expand_config(&crate::config_file::load(&config)?)?);
    }
    args.extend(tail);
    let agent_args = args.split_off(pos + 1);
    args.extend(apply_negations(agent_args));
    Ok(args)
}

/// Freezer (oslo.config) accepts `--noX` for every boolean option `--X`, to turn off what a
/// config file or an earlier argument turned on: `--nooverwrite`, `--nodry-run`,
/// `--nono-incremental`. Each such negation removes the `--X` before it (config values are
/// placed first, so the command line wins) and is itself dropped. A `--noX` that is an option
/// of its own (`--noincremental`) is left alone.
fn apply_negations(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let cmd = agent_command();
    let known = agent_long_names();
    let flags: Vec<String> = cmd
        .get_arguments()
        .filter(|a| matches!(a.get_action(), clap::ArgAction::SetTrue))
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    let mut out: Vec<std::ffi::OsString> = Vec::with_capacity(args.len());
    let mut after_separator = false;
    for a in args {
        let s = a.to_string_lossy().into_owned();
        after_separator |= s == "--";
        let negated = s
            .strip_prefix("--no")
            .filter(|x| !after_separator && flags.iter().any(|f| f == x))
            .filter(|_| !known.iter().any(|k| format!("--{k}") == s));
        match negated {
            Some(x) => {
                let on = format!("--{x}");
                out.retain(|o| *o != *on);
            }
            None => out.push(a),
        }
    }
    out
}

/// Freezer's internal option names (oslo.config `dest`, the keys its scheduler and web UI
/// write into job files) where they differ from the command-line flag rime accepts.
const FREEZER_DEST_NAMES: [(&str, &str); 5] = [
    ("engine_name", "engine"),
    ("lvm_snapperm", "lvm-snap-perm"),
    ("restore_from_host", "hostname"),
    ("file_to_backup", "path-to-backup"),
    ("remove_older_then", "remove-older-than"),
];

/// Freezer keys rime has no option for, with the value Freezer gives them by default: job files
/// written by Freezer's scheduler and web UI carry them, and at that value they ask for nothing
/// rime does not do (`backup_media = fs` is a file backup; `sync` flushes before a snapshot).
const FREEZER_DEFAULTS: [(&str, &str); 3] = [
    ("backup_media", "fs"),
    ("sync", "true"),
    ("dst_file", "false"),
];

/// Whether a config value leaves an option unset (Freezer's `False`, `None` and empty values).
fn unset_value(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "" | "none" | "false")
}

/// A boolean config value as oslo.config reads one (`true/1/on/yes`, `false/0/off/no`, any
/// case), with Freezer's `None` and an empty value as false; `None` for anything else.
fn config_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Some(true),
        "false" | "0" | "off" | "no" | "none" | "" => Some(false),
        _ => None,
    }
}

/// The non-storage sections of a Freezer INI file as `--key value` arguments: `true` becomes a
/// bare flag, `false` and `None` (and empty values) leave the option unset. Keys may be
/// Freezer's internal names ([`FREEZER_DEST_NAMES`]). A key rime has no option for is ignored
/// when its value asks for nothing (unset, or Freezer's default), and refused by name
/// otherwise; OpenStack credentials (`osrc`, `os_*`) are left to the environment and to
/// `[storage:NAME]` sections.
pub fn expand_config(cfg: &crate::config_file::ConfigFile) -> Result<Vec<std::ffi::OsString>> {
    let known = agent_long_names();
    let flags = agent_flag_names();
    let mut out = vec![];
    for (section, kv) in &cfg.sections {
        for (k, v) in kv {
            if k == "osrc" || k.starts_with("os_") || k == "config" {
                continue;
            }
            // Freezer's deprecated `restore_from_host` gives way to `hostname`.
            if k == "restore_from_host" && kv.contains_key("hostname") {
                continue;
            }
            let long = FREEZER_DEST_NAMES
                .iter()
                .find(|(dest, _)| dest == k)
                .map_or_else(|| k.replace('_', "-"), |(_, flag)| flag.to_string());
            if !known.contains(&long) {
                if unset_value(v) || config_bool(v) == Some(false) || is_freezer_default(k, v) {
                    continue;
                }
                return Err(rime_engine::Error::invalid(format!(
                    "configuration [{section}] {k} = {v}: {k} is not a rime agent option (not supported by rime)"
                )));
            }
            let flag = format!("--{long}");
            if flags.contains(&long) {
                // A switch: on, or left off (`dry_run = False` is off, not "given").
                match config_bool(v) {
                    Some(true) => out.push(flag.into()),
                    Some(false) => {}
                    None => {
                        return Err(rime_engine::Error::invalid(format!(
                            "configuration [{section}] {k} = {v}: expected true or false \
                             (also yes/no, on/off, 1/0)"
                        )))
                    }
                }
            } else if !unset_value(v) {
                out.push(flag.into());
                out.push(v.into());
            }
        }
    }
    Ok(out)
}

fn is_freezer_default(key: &str, value: &str) -> bool {
    FREEZER_DEFAULTS.iter().any(|(k, d)| {
        *k == key
            && (value.eq_ignore_ascii_case(d)
                || config_bool(value).is_some_and(|b| config_bool(d) == Some(b)))
    })
}

/// The long names and aliases of the agent's switches (options without a value).
fn agent_flag_names() -> Vec<String> {
    let cmd = agent_command();
    cmd.get_arguments()
        .filter(|a| matches!(a.get_action(), clap::ArgAction::SetTrue))
        .flat_map(|a| {
            a.get_long()
                .into_iter()
                .chain(a.get_all_aliases().unwrap_or_default())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every long name and alias `rime agent` accepts (its own options and the global ones).
fn agent_long_names() -> Vec<String> {
    let cmd = agent_command();
    cmd.get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .chain(
            cmd.get_arguments()
                .flat_map(|a| a.get_all_aliases().unwrap_or_default())
                .map(str::to_string),
        )
        .collect()
}

/// `rime agent`'s parser (its own options and the global ones), to read its option names from.
fn agent_command() -> clap::Command {
    use clap::{Args, CommandFactory};
    AgentArgs::augment_args(crate::Cli::command())
}
