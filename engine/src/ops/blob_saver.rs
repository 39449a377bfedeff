//! Deduplicating blob storage used by backup: id, dedup check, compress, seal, pack.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::error::Result;
use crate::format::blob::seal_blob;
use crate::format::snapshot::SnapshotStats;
use crate::format::BlobType;
use crate::id::BlobId;
use crate::repo::index::MasterIndex;
use crate::repo::packer::Packer;
use crate::repo::Repository;

const SHARDS: usize = 64;

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
}

fn compress(level: i32, data: &[u8]) -> Option<Vec<u8>> {
    if level == 0 {
        return None;
    }
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().map(|(l, _)| *l) != Some(level) {
            *c = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        c.as_mut()?.1.compress(data).ok()
    })
}

pub(crate) struct BlobSaver<'a> {
    repo: &'a Repository,
    index: &'a MasterIndex,
    packer: Packer,
    /// Blobs added during this run (sharded to avoid contention).
    added: Vec<Mutex<HashSet<BlobId>>>,
    level: i32,
    pub chunks_new: AtomicU64,
    pub chunks_reused: AtomicU64,
    pub trees_new: AtomicU64,
}

impl<'a> BlobSaver<'a> {
    pub fn new(repo: &'a Repository, index: &'a MasterIndex, level: i32, writers: usize) -> Self {
        BlobSaver {
            repo,
            index,
            packer: Packer::new(repo, writers),
            added: (0..SHARDS).map(|_| Mutex::new(HashSet::new())).collect(),
            level,
            chunks_new: AtomicU64::new(0),
            chunks_reused: AtomicU64::new(0),
            trees_new: AtomicU64::new(0),
        }
    }

    /// A saver for a backup run: as many pack writers as the repository's storage takes at
    /// once.
    pub fn for_backup(repo: &'a Repository, index: &'a MasterIndex, level: i32) -> Self {
        Self::new(repo, index, level, repo.storage().concurrency())
    }

    /// The chunks and trees this run stored or found stored, as snapshot statistics (all else
    /// zero), for a backup to complete with what it counted itself.
    pub fn counts(&self) -> SnapshotStats {
        SnapshotStats {
            chunks_new: self.chunks_new.load(Ordering::Relaxed),
            chunks_reused: self.chunks_reused.load(Ordering::Relaxed),
            trees_new: self.trees_new.load(Ordering::Relaxed),
            ..Default::default()
        }
    }

    pub fn is_known(&self, id: &BlobId) -> bool {
        self.index.contains(id) || self.added[id.0[0] as usize % SHARDS].lock().contains(id)
    }

    /// Store a blob unless an identical one exists; returns its id.
    pub fn save(&self, ty: BlobType, data: &[u8]) -> Result<BlobId> {
        let id = self.repo.keys().blob_id(data);
        let fresh =
            !self.index.contains(&id) && self.added[id.0[0] as usize % SHARDS].lock().insert(id);
        match (fresh, ty) {
            (false, BlobType::Data) => {
                self.chunks_reused.fetch_add(1, Ordering::Relaxed);
            }
            (false, BlobType::Tree) => {}
            (true, _) => {
                let level = self.level;
                let sealed = seal_blob(self.repo.keys(), ty, id, data, |d| compress(level, d));
                self.packer.add(sealed)?;
                let counter = if ty == BlobType::Data {
                    &self.chunks_new
                } else {
                    &self.trees_new
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(id)
    }

    pub fn check(&self) -> Result<()> {
        self.packer.check()
    }

    pub fn finish(self) -> Result<crate::repo::packer::PackerStats> {
        self.packer.finish()
    }
}
