//! `rime --config FILE`: Freezer's INI configuration. Each `[storage:NAME]` section adds one
//! storage to the run (the "parallel backup" of Freezer's documentation); keys as Freezer's:
//!
//! ```ini
//! [storage:first]
//! storage = local
//! container = /srv/backup1
//! [storage:backuphost]
//! storage = ssh
//! container = /srv/rime
//! ssh_host = 10.0.0.5
//! ssh_username = backup
//! ssh_port = 22
//! ssh_key = /root/.ssh/id_backup
//! [storage:swift]
//! storage = swift
//! container = nightly
//! # the credential variables of an OpenStack rc file, or as lower-case keys (os_auth_url = ...)
//! osrc = /root/openrc.sh
//! ```
//!
//! A Swift section's credentials are its `osrc` file's variables, read without a shell (see
//! [`rime_engine::storage::read_osrc`]), with its `os_*` / `st_*` keys winning over the file's;
//! so a Horizon openrc that reads the password from the terminal works with `os_password` in the
//! section. Region and interface: see [`crate::storage_open::section_swift`].
//!
//! Keys may use `-` or `_`. Other sections (such as `[default]`) belong to `rime agent` and are
//! kept for it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rime_engine::{Error, Result};

/// One `[storage:NAME]` section, resolved to a storage URL and its own options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StorageSection {
    pub name: String,
    pub url: String,
    pub ssh_key: Option<PathBuf>,
    /// Swift credentials: the `osrc` file's variables and any `os_*` / `st_*` keys, with
    /// upper-case names (`OS_AUTH_URL`...).
    pub swift_env: BTreeMap<String, String>,
    /// `limit_upload` / `limit_download` (or Freezer's `upload_limit` / `download_limit`):
    /// bytes per second for this storage alone, on top of the run's `--limit-*` budget.
    pub limit_upload: Option<u64>,
    pub limit_download: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    /// Sections other than storages: name -> key -> value.
    pub sections: BTreeMap<String, BTreeMap<String, String>>,
    pub storages: Vec<StorageSection>,
}

/// Parse INI text: `[section]` headers, `key = value` (or `key: value`) lines, `#`/`;`
/// comments.
pub fn parse_ini(text: &str) -> Result<Vec<(String, BTreeMap<String, String>)>> {
    let mut out: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            out.push((name.trim().to_string(), BTreeMap::new()));
            continue;
        }
        // As Python's configparser (Freezer) and oslo.config: `key = value` or `key: value`,
        // split at whichever of the two comes first (`ssh_host = fe80::1`, `url: http://x`).
        let (k, v) = l
            .find(['=', ':'])
            .map(|i| (&l[..i], &l[i + 1..]))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "line {}: expected key = value (or key: value): {l:?}",
                    n + 1
                ))
            })?;
        let Some((_, map)) = out.last_mut() else {
            return Err(Error::invalid(format!(
                "line {}: a key before any [section]",
                n + 1
            )));
        };
        map.insert(
            k.trim().replace('-', "_").to_ascii_lowercase(),
            v.trim().to_string(),
        );
    }
    Ok(out)
}

pub fn load(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read configuration {}", path.display()), e))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut cfg = ConfigFile::default();
    for (name, kv) in parse_ini(&text).map_err(|e| e.within(path.display()))? {
        match name.strip_prefix("storage:") {
            Some(sname) => cfg.storages.push(
                storage_section(sname, &kv, base)
                    .map_err(|e| e.within(format!("{} [storage:{sname}]", path.display())))?,
            ),
            None => {
                cfg.sections.insert(name, kv);
            }
        }
    }
    Ok(cfg)
}

pub fn storage_section(
    name: &str,
    kv: &BTreeMap<String, String>,
    base: &Path,
) -> Result<StorageSection> {
    let get = |k: &str| kv.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let container = get("container").ok_or_else(|| Error::invalid("no container given"))?;
    let rel = |p: &str| {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let mut s = StorageSection {
        name: name.to_string(),
        url: String::new(),
        ssh_key: get("ssh_key").map(rel),
        swift_env: BTreeMap::new(),
        limit_upload: rate(&get, "limit_upload", "upload_limit")?,
        limit_download: rate(&get, "limit_download", "download_limit")?,
    };
    match get("storage").unwrap_or("local") {
        "local" => s.url = rel(container).to_string_lossy().into_owned(),
        "ssh" => {
            let host =
                get("ssh_host").ok_or_else(|| Error::invalid("storage = ssh needs ssh_host"))?;
            // An IPv6 address goes in brackets, or its colons would read as a port.
            let host = match host.contains(':') && !host.starts_with('[') {
                true => format!("[{host}]"),
                false => host.to_string(),
            };
            let user = get("ssh_username")
                .map(|u| format!("{u}@"))
                .unwrap_or_default();
            let port = get("ssh_port").map(|p| format!(":{p}")).unwrap_or_default();
            let path = if container.starts_with('/') || container.starts_with("~/") {
                container.to_string()
            } else {
                format!("~/{container}")
            };
            let path = path
                .strip_prefix('/')
                .map(|p| format!("/{p}"))
                .unwrap_or(path);
            s.url = format!(
                "sftp://{user}{host}{port}{}{path}",
                if path.starts_with('/') { "" } else { "/" }
            );
        }
        "swift" => {
            s.url = format!("swift://{container}");
            s.swift_env = swift_credentials(kv, get("osrc").map(rel))?;
        }
        other => {
            return Err(Error::invalid(format!(
                "storage = {other} is not supported (local, ssh or swift)"
            )))
        }
    }
    Ok(s)
}

/// A rate key (or its Freezer spelling), parsed as `--limit-upload` is.
fn rate<'a>(get: &impl Fn(&str) -> Option<&'a str>, key: &str, alias: &str) -> Result<Option<u64>> {
    match get(key)
        .map(|v| (key, v))
        .or_else(|| get(alias).map(|v| (alias, v)))
    {
        Some((k, v)) => rime_engine::storage::bandwidth::parse_rate(v)
            .map(Some)
            .map_err(|e| e.within(k)),
        None => Ok(None),
    }
}

/// A Swift section's own credential variables (upper-case names): the osrc file's, then the
/// section's `os_*` / `st_*` keys over them.
fn swift_credentials(
    kv: &BTreeMap<String, String>,
    osrc: Option<PathBuf>,
) -> Result<BTreeMap<String, String>> {
    let keys: std::collections::HashMap<String, String> = kv
        .iter()
        .filter(|(k, _)| k.starts_with("os_") || k.starts_with("st_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let all = match osrc {
        Some(p) => rime_engine::storage::read_osrc(&p, &keys)?,
        None => keys,
    };
    Ok(all
        .into_iter()
        .map(|(k, v)| (k.to_ascii_uppercase(), v))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freezer_parallel_backup_example() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("openrc.osrc"),
            "unset OS_DOMAIN_NAME\nexport OS_AUTH_URL=http://127.0.0.1:5000/v3\nexport OS_USERNAME='u'\n",
        )
        .unwrap();
        let ini = "[default]\naction = backup\nbackup_name = mytest6\ncontainer = /tmp/backup/\n\
                   [storage:first]\nstorage=local\ncontainer = /tmp/backup1/\n\
                   [storage:ssh]\nstorage = ssh\ncontainer = /srv/r\nssh-host = 127.0.0.1\nssh-username = root\nssh-port = 2222\nssh-key = key\n\
                   [storage:swift]\nstorage=swift\ncontainer = test\nosrc = openrc.osrc\nos_region_name = RegionTwo\n";
        let p = dir.path().join("job.ini");
        std::fs::write(&p, ini).unwrap();
        let c = load(&p).unwrap();
        assert_eq!(c.sections["default"]["backup_name"], "mytest6");
        assert_eq!(c.storages.len(), 3);
        assert_eq!(c.storages[0].url, "/tmp/backup1/");
        assert_eq!(c.storages[1].url, "sftp://root@127.0.0.1:2222/srv/r");
        assert_eq!(
            c.storages[1].ssh_key.as_deref(),
            Some(dir.path().join("key").as_path())
        );
        assert_eq!(c.storages[2].url, "swift://test");
        assert_eq!(
            c.storages[2].swift_env["OS_AUTH_URL"],
            "http://127.0.0.1:5000/v3"
        );
        assert_eq!(c.storages[2].swift_env["OS_USERNAME"], "u");
        assert_eq!(c.storages[2].swift_env["OS_REGION_NAME"], "RegionTwo");
        assert!(load_str("[storage:x]\nstorage = ftp\ncontainer = c\n").is_err());
        assert!(
            load_str("[storage:x]\nstorage = local\n").is_err(),
            "container is required"
        );
        assert!(load_str("key = value\n").is_err(), "key outside a section");
        // IPv6 hosts are bracketed (the URL parser would take `::1`'s last colon for a port).
        for host in ["::1", "[::1]"] {
            let c = load_str(&format!(
                "[storage:v6]\nstorage = ssh\nssh_host = {host}\ncontainer = /srv/r\nssh_port = 2222\n"
            ))
            .unwrap();
            assert_eq!(c.storages[0].url, "sftp://[::1]:2222/srv/r");
        }
    }

    /// Horizon's openrc asks the shell for the password: the section must give it, and the
    /// error says so, naming file, section and variable. Inline comments are not values.
    #[test]
    fn osrc_files_are_read_without_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let rc = dir.path().join("demo-openrc.sh");
        std::fs::write(
            &rc,
            "export OS_AUTH_URL=http://k:5000/v3\nexport OS_USERNAME=\"alice\"\n\
             export OS_PROJECT_NAME=demo # the team's project\n\
             read -sr OS_PASSWORD_INPUT\nexport OS_PASSWORD=$OS_PASSWORD_INPUT\n",
        )
        .unwrap();
        let section = "[storage:cloud]\nstorage = swift\ncontainer = c\nosrc = demo-openrc.sh\n";
        let p = dir.path().join("job.ini");
        std::fs::write(&p, section).unwrap();
        let e = load(&p).unwrap_err().to_string();
        for needle in [
            "[storage:cloud]",
            "demo-openrc.sh",
            "OS_PASSWORD=$OS_PASSWORD_INPUT",
        ] {
            assert!(e.contains(needle), "{e} lacks {needle}");
        }
        std::fs::write(&p, format!("{section}os_password = s3cret\n")).unwrap();
        let c = load(&p).unwrap();
        let env = &c.storages[0].swift_env;
        assert_eq!(env["OS_PROJECT_NAME"], "demo");
        assert_eq!(env["OS_USERNAME"], "alice");
        assert_eq!(env["OS_PASSWORD"], "s3cret");
    }

    #[test]
    fn a_section_may_limit_its_own_bandwidth() {
        let c = load_str("[storage:a]\ncontainer = /a\nlimit_upload = 2M\ndownload_limit = 512K\n")
            .unwrap();
        assert_eq!(c.storages[0].limit_upload, Some(2 << 20));
        assert_eq!(c.storages[0].limit_download, Some(512 << 10));
        let e = load_str("[storage:a]\ncontainer = /a\nlimit_upload = fast\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("limit_upload") && e.contains("[storage:a]"),
            "{e}"
        );
    }

    fn load_str(s: &str) -> Result<ConfigFile> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.ini");
        std::fs::write(&p, s).unwrap();
        load(&p)
    }
}
