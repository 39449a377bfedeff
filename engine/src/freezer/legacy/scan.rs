//! Finding the backups in a Freezer container.
//!
//! Layout (Freezer's `storage/base.py`, `physical.py`), for the tar engine:
//!
//! ```text
//! metadata/tar/<host>_<name>/<L0_ts>/<level>_<ts>/metadata         freezer meta JSON
//! data/tar/<host>_<name>/<L0_ts>/<level>_<ts>/engine_metadata      the GNU tar snapshot (SNAR)
//! data/tar/<host>_<name>/<L0_ts>/<level>_<ts>/data                 the stream (local, SSH)
//! data/tar/<host>_<name>/<L0_ts>/<level>_<ts>/segments/00000000..  its pieces (Swift; `data`
//!                                                                  is then a 0-byte manifest)
//! ```
//!
//! Like Freezer, backups are found from the `metadata` tree (Freezer writes it last, so a
//! backup without it never finished) — and, unlike Freezer, also from the `data` tree when a
//! metadata file was lost, since the data itself says how it is compressed and encrypted.

use std::collections::BTreeMap;

use super::container::{Container, Listed};
use super::metadata::FreezerMetadata;
use crate::error::{Error, Result};
use crate::tarinc::Compression;

/// Freezer's engine directory for tar backups (the only engine rime reads).
pub const ENGINE: &str = "tar";

/// One stored object of a backup's data stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataObject {
    /// Path relative to the container.
    pub path: String,
    pub size: u64,
    /// The content's MD5 (lower-case hex) as listed by the storage (Swift), checked on read.
    pub md5: Option<String>,
}

/// One Freezer backup (one level of a chain).
#[derive(Debug, Clone)]
pub struct LegacyBackup {
    /// `<host>_<name>`, Freezer's namespace directory.
    pub hostname_backup_name: String,
    /// Host part. Freezer joins host and name with `_`, and either may contain one, so the
    /// split is a guess ([`split_host_name`]); select backups with [`LegacyBackup::is_of`].
    pub host: String,
    /// Backup name part (`--backup-name`).
    pub name: String,
    /// Timestamp (epoch seconds) of the level 0 that starts this chain.
    pub level_zero: i64,
    pub level: u32,
    /// Epoch seconds.
    pub timestamp: i64,
    /// Bytes of stored data (compressed, encrypted).
    pub size: u64,
    /// Detected from the data when not encrypted; as recorded in the metadata otherwise.
    pub compression: Option<Compression>,
    pub encrypted: bool,
    /// The metadata document, if present and readable.
    pub metadata: Option<FreezerMetadata>,
    /// The data stream, in order: one `data` object or the segments.
    pub data: Vec<DataObject>,
    /// `data/tar/<host>_<name>/<L0>/<level>_<ts>`: names this backup in messages.
    pub dir: String,
}

impl LegacyBackup {
    /// Stable identity of the backup across runs (used to tag imported snapshots).
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}_{}",
            self.hostname_backup_name, self.level_zero, self.level, self.timestamp
        )
    }
}

/// Freezer's `<host>_<name>` → (host, name). Both may contain `_` (`web_01`, `etc_files`),
/// so the directory name alone cannot say where the host ends: at `host` when it starts with
/// `host_` (the host asked for, or this machine's name), else at the first `_`.
pub fn split_host_name(hn: &str, host: Option<&str>) -> (String, String) {
    if let Some(name) = host.and_then(|h| hn.strip_prefix(h)?.strip_prefix('_')) {
        return (
            hn[..hn.len() - name.len() - 1].to_string(),
            name.to_string(),
        );
    }
    match hn.split_once('_') {
        Some((h, n)) => (h.to_string(), n.to_string()),
        None => (hn.to_string(), String::new()),
    }
}

impl LegacyBackup {
    /// Whether this is a backup of `host` and `name` (`None`: any), matched on Freezer's
    /// `<host>_<name>` directory as Freezer itself does, never on the guessed split.
    pub fn is_of(&self, host: Option<&str>, name: Option<&str>) -> bool {
        let hn = self.hostname_backup_name.as_str();
        match (host, name) {
            (Some(h), Some(n)) => hn == format!("{h}_{n}"),
            (Some(h), None) => hn.strip_prefix(h).is_some_and(|r| r.starts_with('_')),
            (None, Some(n)) => hn.strip_suffix(n).is_some_and(|r| r.ends_with('_')),
            (None, None) => true,
        }
    }

    /// Split the directory name as the caller knows it to be: at `host` when it is the prefix,
    /// else before `name` when it is the suffix (for display and for the host and name an
    /// import files snapshots under).
    pub fn split_as(&mut self, host: Option<&str>, name: Option<&str>) {
        let hn = &self.hostname_backup_name;
        if host.is_some_and(|h| self.is_of(Some(h), None)) {
            (self.host, self.name) = split_host_name(hn, host);
        } else if let Some(n) = name.filter(|n| self.is_of(None, Some(n))) {
            self.host = hn[..hn.len() - n.len() - 1].to_string();
            self.name = n.to_string();
        }
    }
}

fn parse_level_dir(s: &str) -> Option<(u32, i64)> {
    let (l, t) = s.split_once('_')?;
    Some((l.parse().ok()?, t.parse().ok()?))
}

fn dirs(c: &dyn Container, dir: &str) -> Result<Vec<String>> {
    Ok(c.list_dir(dir)?.into_iter().map(|l| l.name).collect())
}

/// Every tar-engine backup in the container, sorted by name, then time, then level.
pub fn list(c: &dyn Container) -> Result<Vec<LegacyBackup>> {
    // (hn, l0, level, ts) found in either tree.
    let mut found: BTreeMap<(String, i64, i64, u32), ()> = BTreeMap::new();
    for tree in ["metadata", "data"] {
        let top = format!("{tree}/{ENGINE}");
        for hn in dirs(c, &top)? {
            for l0 in dirs(c, &format!("{top}/{hn}"))? {
                let Ok(l0n) = l0.parse::<i64>() else { continue };
                for inc in dirs(c, &format!("{top}/{hn}/{l0}"))? {
                    if let Some((level, ts)) = parse_level_dir(&inc) {
                        found.insert((hn.clone(), l0n, ts, level), ());
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for (hn, l0, ts, level) in found.into_keys() {
        if let Some(b) = describe(c, &hn, l0, level, ts)? {
            out.push(b);
        }
    }
    Ok(out)
}

/// Read what one backup consists of; `None` when it has no data at all (an upload that
/// never started).
fn describe(
    c: &dyn Container,
    hn: &str,
    l0: i64,
    level: u32,
    ts: i64,
) -> Result<Option<LegacyBackup>> {
    let rel = format!("{hn}/{l0}/{level}_{ts}");
    let dir = format!("data/{ENGINE}/{rel}");
    let meta_path = format!("metadata/{ENGINE}/{rel}/metadata");
    let metadata = match c.size(&meta_path)? {
        Some(n) if n <= 1 << 20 => {
            let bytes = c.read_range(&meta_path, 0, n)?;
            FreezerMetadata::parse(&bytes, &meta_path).ok()
        }
        _ => None,
    };
    let entries = c.list_dir(&dir)?;
    let mut data = Vec::new();
    if entries.iter().any(|l| l.name == "segments") {
        let seg_dir = format!("{dir}/segments");
        let mut segs: Vec<(u64, Listed)> = c
            .list_dir(&seg_dir)?
            .into_iter()
            .filter_map(|l| l.name.parse::<u64>().ok().map(|i| (i, l)))
            .collect();
        segs.sort_by_key(|(i, _)| *i);
        for (_, l) in segs {
            let path = format!("{seg_dir}/{}", l.name);
            let size = match l.size {
                Some(s) => s,
                None => c.size(&path)?.unwrap_or(0),
            };
            data.push(DataObject {
                path,
                size,
                md5: l.md5,
            });
        }
    }
    if data.is_empty() {
        if let Some(listed) = entries.iter().find(|l| l.name == "data") {
            let path = format!("{dir}/data");
            // A Swift large object manifest lists with its own size (0 bytes for a DLO); a
            // HEAD gives the size of what a GET returns. Its listed hash is not the MD5 of that
            // content either (a DLO's is its empty body's, an SLO's the segments' ETags'), so
            // only segments listed one by one are checked against their MD5.
            let size = c.size(&path)?.or(listed.size).unwrap_or(0);
            data.push(DataObject {
                path,
                size,
                md5: None,
            });
        }
    }
    // Listed by its metadata but without data: shown, and restore says what is missing.
    if data.is_empty() && metadata.is_none() {
        return Ok(None);
    }
    let (host, name) = split_host_name(hn, Some(&crate::hostname()));
    let declared = metadata
        .as_ref()
        .and_then(|m| m.compression.as_deref())
        .and_then(|s| Compression::parse(s).ok());
    let (compression, encrypted) = match data.first() {
        Some(first) if first.size > 0 => {
            let head = c.read_range(&first.path, 0, 512.min(first.size))?;
            if head.starts_with(b"Salted__") {
                (declared, true)
            } else {
                (Compression::detect(&head).or(declared), false)
            }
        }
        _ => (
            declared,
            metadata
                .as_ref()
                .and_then(|m| m.encryption)
                .unwrap_or(false),
        ),
    };
    Ok(Some(LegacyBackup {
        hostname_backup_name: hn.to_string(),
        host,
        name,
        level_zero: l0,
        level,
        timestamp: ts,
        size: data.iter().map(|d| d.size).sum(),
        compression,
        encrypted,
        metadata,
        data,
        dir,
    }))
}

/// Check that a backup's stored pieces form a whole stream, before anything is restored:
/// segments numbered 0..n without gaps, all but the last of one size (Freezer reads the tar
/// pipe in `--max-segment-size` pieces, so only the last is shorter). A gap or a short middle
/// segment names the object.
pub fn check_objects(b: &LegacyBackup) -> Result<()> {
    if b.data.is_empty() || b.size == 0 {
        return Err(Error::new(
            crate::ErrorKind::MissingObject,
            format!("Freezer backup {}: its data is missing or empty", b.dir),
        ));
    }
    if b.data.len() == 1 {
        return Ok(());
    }
    for (i, d) in b.data.iter().enumerate() {
        let want = format!("{i:08}");
        if !d.path.ends_with(&format!("/{want}")) {
            return Err(Error::new(
                crate::ErrorKind::MissingObject,
                format!(
                    "Freezer backup {}: segment {}/segments/{want} is missing (found {} instead)",
                    b.dir, b.dir, d.path
                ),
            ));
        }
    }
    let seg = b.data[0].size;
    for d in &b.data[..b.data.len() - 1] {
        if d.size != seg {
            return Err(Error::corrupt(format!(
                "Freezer backup {}: segment {} is {} bytes but the segments before the last are \
                 {seg} bytes: it is truncated or damaged",
                b.dir, d.path, d.size
            )));
        }
    }
    let last = &b.data[b.data.len() - 1];
    if last.size > seg || last.size == 0 {
        return Err(Error::corrupt(format!(
            "Freezer backup {}: last segment {} is {} bytes, not 1 to {seg}: damaged",
            b.dir, last.path, last.size
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(hn: &str) -> LegacyBackup {
        let (host, name) = split_host_name(hn, None);
        LegacyBackup {
            hostname_backup_name: hn.into(),
            host,
            name,
            level_zero: 0,
            level: 0,
            timestamp: 0,
            size: 0,
            compression: None,
            encrypted: false,
            metadata: None,
            data: vec![],
            dir: String::new(),
        }
    }

    #[test]
    fn host_and_name_with_underscores_match_on_the_whole_directory_name() {
        let b = backup("web_01_etc_files");
        assert!(b.is_of(Some("web_01"), Some("etc_files")));
        assert!(b.is_of(Some("web_01"), None));
        assert!(b.is_of(Some("web"), None), "ambiguous: also host web");
        assert!(b.is_of(None, Some("etc_files")));
        assert!(!b.is_of(Some("web_0"), None));
        assert!(!b.is_of(Some("web_01"), Some("etc")));
        assert!(!b.is_of(None, Some("files_")));
        assert_eq!(
            split_host_name("web_01_etc", Some("web_01")),
            ("web_01".into(), "etc".into())
        );
        assert_eq!(
            split_host_name("web1_etc_x", Some("web_01")),
            ("web1".into(), "etc_x".into())
        );
        let mut b = backup("web_01_etc");
        b.split_as(None, Some("etc"));
        assert_eq!((b.host.as_str(), b.name.as_str()), ("web_01", "etc"));
        b.split_as(Some("web"), None);
        assert_eq!((b.host.as_str(), b.name.as_str()), ("web", "01_etc"));
    }
}
