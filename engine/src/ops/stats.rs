//! Repository statistics.

use serde::Serialize;

use crate::error::Result;
use crate::repo::index::MasterIndex;
use crate::repo::Repository;
use crate::storage::FileKind;

#[derive(Debug, Clone, Serialize)]
pub struct RepoStats {
    pub snapshots: u64,
    pub packs: u64,
    pub pack_bytes: u64,
    pub index_files: u64,
    pub blobs: u64,
    pub data_blobs: u64,
    pub tree_blobs: u64,
    /// Plaintext bytes of all stored blobs (after dedup, before compression).
    pub stored_raw_bytes: u64,
    /// Sum of every snapshot's logical file size.
    pub snapshot_bytes: u64,
    /// snapshot_bytes / pack_bytes.
    pub ratio: f64,
    pub index_memory_bytes: u64,
}

pub fn stats(repo: &Repository) -> Result<RepoStats> {
    let index = MasterIndex::load(repo)?;
    let packs = repo.storage().list(FileKind::Pack)?;
    let snaps = repo.list_snapshots()?;
    let mut s = RepoStats {
        snapshots: snaps.len() as u64,
        packs: packs.len() as u64,
        pack_bytes: packs.iter().map(|p| p.size).sum(),
        index_files: index.index_files().len() as u64,
        blobs: index.blob_count() as u64,
        data_blobs: 0,
        tree_blobs: 0,
        stored_raw_bytes: 0,
        snapshot_bytes: snaps
            .iter()
            .filter_map(|(_, s)| s.as_ref().ok())
            .map(|s| s.stats.bytes_total)
            .sum(),
        ratio: 0.0,
        index_memory_bytes: index.memory_bytes() as u64,
    };
    for (_, e) in index.iter() {
        match e.ty {
            crate::format::BlobType::Data => s.data_blobs += 1,
            crate::format::BlobType::Tree => s.tree_blobs += 1,
        }
        s.stored_raw_bytes += u64::from(e.raw_len);
    }
    if s.pack_bytes > 0 {
        s.ratio = s.snapshot_bytes as f64 / s.pack_bytes as f64;
    }
    Ok(s)
}
