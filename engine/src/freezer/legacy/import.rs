//! Converting Freezer backups into rime snapshots.
//!
//! Design: one rime file-tree snapshot per Freezer backup (per restore point). The chain
//! ending at that backup is replayed into a private temporary directory and backed up with
//! rime's normal [`backup`](crate::ops::backup::backup), so an imported snapshot is an ordinary
//! one: restorable alone (no chain), deduplicated against the other imports (level N shares
//! nearly all chunks with level N-1), forgettable one by one. The snapshot keeps Freezer's host,
//! backup name and time, and gets the tags `freezer-level=N` and
//! `freezer-backup=<host>_<name>/<L0>/<level>_<ts>`; the latter makes a re-run skip what is
//! already imported. The tree is recorded as the path `/<host>_<name>` (Freezer does not store
//! the source path), so `rime restore` puts it in `TARGET/<host>_<name>`.
//!
//! The snapshot time: [`backup`](crate::ops::backup::backup) stamps "now", so the snapshot is
//! written again with Freezer's time and the first copy removed. A crash in between leaves a
//! snapshot with the import time but the right tags, which a re-run also counts as imported.

use std::path::PathBuf;

use super::chain::resolve;
use super::container::Container;
use super::restore::{apply_levels, restore_chain};
use super::scan::LegacyBackup;
use crate::error::{Error, Result};
use crate::format::tree::Timestamp;
use crate::id::SnapshotId;
use crate::ops::backup::{backup, BackupOptions};
use crate::repo::Repository;
use crate::storage::FileKind;
use crate::tarinc::ApplyOptions;

/// Tag prefix naming the Freezer backup a snapshot came from.
pub const TAG_BACKUP: &str = "freezer-backup=";
/// Tag prefix with the Freezer level.
pub const TAG_LEVEL: &str = "freezer-level=";

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Only this host (`None` = all).
    pub host: Option<String>,
    /// Only this backup name (`None` = all).
    pub name: Option<String>,
    /// `openssl enc` password for encrypted backups.
    pub pass: Option<Vec<u8>>,
    /// Directory for the temporary trees (default: the system's).
    pub temp_dir: Option<PathBuf>,
}

/// What happened to one Freezer backup.
#[derive(Debug, Clone)]
pub enum ImportOutcome {
    Imported(SnapshotId),
    /// Already in the repository as this snapshot.
    AlreadyImported(SnapshotId),
}

#[derive(Debug, Default)]
pub struct ImportReport {
    pub items: Vec<(LegacyBackup, ImportOutcome)>,
}

impl ImportReport {
    pub fn imported(&self) -> usize {
        self.items
            .iter()
            .filter(|(_, o)| matches!(o, ImportOutcome::Imported(_)))
            .count()
    }
}

fn selected(b: &LegacyBackup, o: &ImportOptions) -> bool {
    b.is_of(o.host.as_deref(), o.name.as_deref())
}

/// Import every selected backup of `c` that the repository does not hold yet, oldest first.
/// `on_item` is called after each backup (for progress output).
pub fn import(
    repo: &Repository,
    c: &dyn Container,
    opts: &ImportOptions,
    mut on_item: impl FnMut(&LegacyBackup, &ImportOutcome),
) -> Result<ImportReport> {
    let mut all = super::list(c)?;
    // Snapshots are filed under the host and name asked for, where the directory name allows.
    for b in &mut all {
        b.split_as(opts.host.as_deref(), opts.name.as_deref());
    }
    let mut done: std::collections::HashMap<String, SnapshotId> = Default::default();
    for (id, snap) in repo.list_snapshots()? {
        if let Ok(s) = snap {
            for t in &s.tags {
                if let Some(k) = t.strip_prefix(TAG_BACKUP) {
                    done.insert(k.to_string(), id);
                }
            }
        }
    }
    let mut todo: Vec<&LegacyBackup> = all.iter().filter(|b| selected(b, opts)).collect();
    if todo.is_empty() && (opts.host.is_some() || opts.name.is_some()) {
        return Err(Error::new(
            crate::ErrorKind::NotFound,
            format!(
                "no Freezer backup in {} matches host {:?} name {:?}",
                c.location(),
                opts.host.as_deref().unwrap_or("*"),
                opts.name.as_deref().unwrap_or("*")
            ),
        ));
    }
    todo.sort_by_key(|b| (b.timestamp, b.level, b.hostname_backup_name.clone()));
    let mut report = ImportReport::default();
    let mut replayed: Option<Replayed> = None;
    for b in todo {
        let outcome = match done.get(&b.id()) {
            Some(id) => ImportOutcome::AlreadyImported(*id),
            None => ImportOutcome::Imported(import_one(repo, c, &all, b, opts, &mut replayed)?),
        };
        on_item(b, &outcome);
        report.items.push((b.clone(), outcome));
    }
    Ok(report)
}

/// The tree of the last imported backup, kept so that the next level of the same chain is
/// applied on top of it instead of replaying the chain from level 0 again.
struct Replayed {
    dir: tempfile::TempDir,
    /// Ids of the backups applied, level 0 first.
    chain: Vec<String>,
}

impl Replayed {
    fn tree(&self) -> PathBuf {
        self.dir.path().join("tree")
    }
}

fn import_one(
    repo: &Repository,
    c: &dyn Container,
    all: &[LegacyBackup],
    b: &LegacyBackup,
    opts: &ImportOptions,
    replayed: &mut Option<Replayed>,
) -> Result<SnapshotId> {
    // The chain ending exactly at this backup: `resolve` at its timestamp ends at the newest
    // backup at that time, which is `b` unless two share the second; pick `b` explicitly then.
    let mut chain = resolve(all, &b.hostname_backup_name, Some(b.timestamp))?;
    if chain.last().map(LegacyBackup::id) != Some(b.id()) {
        let others: Vec<LegacyBackup> = all
            .iter()
            .filter(|x| x.timestamp < b.timestamp || x.id() == b.id())
            .cloned()
            .collect();
        chain = resolve(&others, &b.hostname_backup_name, Some(b.timestamp))?;
    }
    let ids: Vec<String> = chain.iter().map(LegacyBackup::id).collect();
    let apply_opts = ApplyOptions::default();
    let extends = replayed
        .as_ref()
        .is_some_and(|r| r.chain.len() + 1 == ids.len() && r.chain[..] == ids[..ids.len() - 1]);
    if extends {
        let r = replayed.as_mut().expect("checked");
        // Forget the tree's chain first: if applying fails half-way it no longer matches.
        let applied = std::mem::take(&mut r.chain);
        apply_levels(
            c,
            &chain[chain.len() - 1..],
            opts.pass.as_deref(),
            &r.tree(),
            &apply_opts,
        )?;
        r.chain = applied;
        r.chain.push(b.id());
    } else {
        *replayed = None; // remove the previous tree before making a new one
        let dir = match &opts.temp_dir {
            Some(d) => tempfile::Builder::new()
                .prefix("rime-freezer-")
                .tempdir_in(d),
            None => tempfile::Builder::new().prefix("rime-freezer-").tempdir(),
        }
        .map_err(|e| Error::io("cannot create a temporary directory for the import", e))?;
        let r = Replayed { dir, chain: vec![] };
        restore_chain(
            c,
            &chain,
            opts.pass.as_deref(),
            &r.tree(),
            false,
            &apply_opts,
        )?;
        *replayed = Some(Replayed { chain: ids, ..r });
    }
    let tree = replayed.as_ref().expect("just replayed").tree();
    let mut bo = BackupOptions::new(vec![tree]);
    bo.hostname = b.host.clone();
    bo.name = b.name.clone();
    bo.tags = vec![
        format!("{TAG_LEVEL}{}", b.level),
        format!("{TAG_BACKUP}{}", b.id()),
    ];
    bo.record_as = vec![PathBuf::from(format!("/{}", b.hostname_backup_name))];
    let r = backup(repo, &bo, &crate::ops::NoProgress)
        .map_err(|e| e.within(format!("importing Freezer backup {}", b.dir)))?;
    if !r.warnings.is_empty() {
        return Err(Error::new(
            crate::ErrorKind::PartialBackup,
            format!(
                "importing Freezer backup {}: {} paths of the replayed tree could not be read: {}",
                b.dir,
                r.warnings.len(),
                r.warnings.join("; ")
            ),
        ));
    }
    let mut snap = r.snapshot;
    snap.time = Timestamp {
        secs: b.timestamp,
        nanos: 0,
    };
    let id = repo.save_snapshot(&snap)?;
    if id != r.id {
        repo.storage()
            .remove(FileKind::Snapshot, &r.id.to_hex())
            .map_err(|e| e.within("removing the snapshot copy stamped with the import time"))?;
    }
    Ok(id)
}
