//! Freezer's `--remove-older-than` / `--remove-from-date` for one host and backup name, without
//! Freezer's fault of deleting whole chains by the age of their level 0: a backup older than
//! the cutoff is removed unless a kept backup needs it or it is the newest restorable one
//! ([`super::history::retention`]). Other snapshots of the same host and name (rime-engine
//! file snapshots, independent of each other) are removed by age, the newest always kept.
//! Only snapshot files are removed; `prune` frees the data.

use crate::error::{ErrorKind, Result};
use crate::format::snapshot::SourceKind;
use crate::id::SnapshotId;
use crate::repo::lock::LockGuard;
use crate::repo::Repository;
use crate::storage::FileKind;

use super::history;

/// Remove (or with `dry_run` only list) the snapshots of `hostname`/`name` retention drops.
pub fn remove_older(
    repo: &Repository,
    hostname: &str,
    name: &str,
    cutoff: i64,
    dry_run: bool,
) -> Result<Vec<SnapshotId>> {
    let _lock = if dry_run {
        None
    } else {
        Some(LockGuard::shared(repo, "agent admin")?)
    };
    let mut tar = vec![];
    let mut other = vec![];
    for (id, s) in repo.list_snapshots()? {
        // Unreadable snapshots are never removed.
        let Ok(s) = s else { continue };
        if s.hostname != hostname || s.name != name {
            continue;
        }
        if matches!(s.source, SourceKind::TarLevel(_)) {
            tar.push((id, s));
        } else {
            other.push((s.time.secs, id));
        }
    }
    let mut remove = history::retention(&history::levels(&tar), cutoff);
    other.sort();
    if let Some((_, newest)) = other.pop() {
        remove.extend(other.iter().filter(|(t, _)| *t < cutoff).map(|(_, id)| *id));
        let _ = newest;
    }
    if !dry_run {
        for id in &remove {
            match repo.storage().remove(FileKind::Snapshot, &id.to_hex()) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::MissingObject => {}
                Err(e) => return Err(e.within(format!("removing snapshot {}", id.short()))),
            }
        }
    }
    Ok(remove)
}
