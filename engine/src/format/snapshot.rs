//! Snapshot manifests, encoded with postcard and framed as objects (kind 2).
//! A snapshot's id is its object id (keyed BLAKE3 of this plaintext) and its file name.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::format::tree::Timestamp;
use crate::format::{from_postcard, to_postcard};
use crate::id::{BlobId, SnapshotId};

/// What was backed up. Postcard enum index is stored: append only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceKind {
    /// A file tree; `root` is a tree blob.
    Files,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStats {
    pub files: u64,
    pub dirs: u64,
    /// Other nodes: symlinks, devices, FIFOs, sockets.
    pub others: u64,
    /// Files whose content was read (the rest matched the parent snapshot).
    pub files_read: u64,
    /// Bytes of file content read from the source.
    pub bytes_read: u64,
    /// Logical size of all file content in the snapshot.
    pub bytes_total: u64,
    /// Bytes written to new packs (after compression and encryption).
    pub bytes_added: u64,
    pub chunks_new: u64,
    pub chunks_reused: u64,
    pub trees_new: u64,
    /// Paths that vanished or could not be read and are missing from the snapshot.
    pub unreadable: u64,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub time: Timestamp,
    pub hostname: String,
    /// The backup name (Freezer's `--backup-name`); the parent is chosen by host and name.
    pub name: String,
    pub username: String,
    pub tags: Vec<String>,
    /// Absolute source paths as given (lossy UTF-8 for display).
    pub paths: Vec<String>,
    pub parent: Option<SnapshotId>,
    pub source: SourceKind,
    /// Root tree: one node per source path, named by the path's last component.
    pub root: BlobId,
    pub stats: SnapshotStats,
    /// The program that wrote it, e.g. "rime 0.1.0".
    pub program: String,
}

impl Snapshot {
    pub fn encode(&self) -> Vec<u8> {
        to_postcard(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Snapshot> {
        from_postcard("snapshot", bytes)
    }
}
