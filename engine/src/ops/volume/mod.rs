//! Volume and stream snapshots: block devices, image files and byte streams (standard input,
//! a command's output, database dumps), stored as a chunk map instead of a directory tree.
//!
//! Volumes are cut into fixed-size chunks (or content-defined ones with
//! [`ChunkerKind::FastCdc`]), read in parallel with positioned reads, deduplicated against the
//! whole repository; all-zero chunks and the holes of sparse images become holes. Because every
//! chunk is looked up by content, the second backup of a volume stores only the chunks that
//! changed, whichever snapshot it follows.

pub mod backup;
pub mod diff;
pub mod export;
mod fetch;
pub mod map;
pub mod restore;
pub mod stream;

use std::time::Instant;

use crate::error::Result;
use crate::format::snapshot::{ChunkerKind, Snapshot, SnapshotStats, SourceKind};
use crate::format::tree::Timestamp;
use crate::id::{BlobId, SnapshotId};
use crate::ops::backup::BackupResult;
use crate::repo::Repository;

pub use crate::format::snapshot::{StreamSource, VolumeSource};

/// Smallest and largest fixed chunk sizes.
pub const MIN_CHUNK_SIZE: u32 = 64 << 10;
pub const MAX_CHUNK_SIZE: u32 = 16 << 20;

/// What every volume or stream snapshot records besides its content.
#[derive(Debug, Clone)]
pub struct SnapshotMeta {
    pub hostname: String,
    /// Backup name; the parent is the latest snapshot with the same host and name.
    pub name: String,
    pub tags: Vec<String>,
    /// Explicit parent, or `None` for the latest of the same host and name.
    pub parent: Option<SnapshotId>,
    /// Read everything even when the source looks unchanged.
    pub force: bool,
    pub compression_level: i32,
}

impl SnapshotMeta {
    pub fn new(name: impl Into<String>) -> SnapshotMeta {
        SnapshotMeta {
            hostname: crate::hostname(),
            name: name.into(),
            tags: vec![],
            parent: None,
            force: false,
            compression_level: crate::format::blob::DEFAULT_COMPRESSION_LEVEL,
        }
    }
}

/// Check a fixed chunk size: a power of two from 64 KiB to 16 MiB.
pub fn check_chunk_size(chunker: ChunkerKind, size: u32) -> Result<()> {
    if chunker == ChunkerKind::FastCdc {
        return Ok(());
    }
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&size) || !size.is_power_of_two() {
        return Err(crate::Error::invalid(format!(
            "chunk size {size} is not a power of two from 64 KiB to 16 MiB"
        )));
    }
    Ok(())
}

/// The parent snapshot of a volume or stream backup: explicit, or the latest with the same
/// host and name, if it is of the same kind.
pub(crate) fn find_parent(
    repo: &Repository,
    meta: &SnapshotMeta,
) -> Result<Option<(SnapshotId, Snapshot)>> {
    let found = match meta.parent {
        Some(id) => Some((id, repo.load_snapshot(&id)?)),
        None => crate::ops::select::latest(repo, Some(&meta.hostname), Some(&meta.name))?,
    };
    Ok(found.filter(|(_, s)| s.source.has_chunk_map()))
}

pub(crate) fn now() -> Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        secs: now.as_secs() as i64,
        nanos: now.subsec_nanos(),
    }
}

/// Write the snapshot (after its packs and index are durable) and build the result. `written`
/// is the index the backup deduplicated against and what its saver wrote: the bytes are the
/// snapshot's `bytes_added`, and the packs are protected from a concurrent prune.
#[allow(clippy::too_many_arguments)]
pub(crate) fn save(
    repo: &Repository,
    lock: &crate::repo::lock::LockGuard,
    meta: &SnapshotMeta,
    parent: Option<SnapshotId>,
    path: String,
    source: SourceKind,
    root: BlobId,
    mut stats: SnapshotStats,
    started: Instant,
    warnings: Vec<String>,
    written: (
        &crate::repo::index::MasterIndex,
        &crate::repo::packer::PackerStats,
    ),
) -> Result<BackupResult> {
    let (index, packed) = written;
    stats.bytes_added = packed.bytes_written;
    stats.duration_ms = started.elapsed().as_millis() as u64;
    let snapshot = Snapshot {
        time: now(),
        hostname: meta.hostname.clone(),
        name: meta.name.clone(),
        username: crate::username(),
        tags: meta.tags.clone(),
        paths: vec![path],
        parent,
        source,
        root,
        stats,
        program: crate::PROGRAM.to_string(),
    };
    // Everything before the snapshot is stored (on every storage) before the lock is judged:
    // only the snapshot write itself comes after the check.
    repo.storage().flush();
    lock.check()?;
    let id = repo.save_snapshot(&snapshot)?;
    // As file backups do: packs a concurrent prune marked meanwhile are indexed again
    // (format-spec/SPEC.md, section 9.3).
    crate::repo::pending::protect_marked(repo, index, &packed.pack_ids)?;
    Ok(BackupResult {
        id,
        snapshot,
        warnings,
    })
}
