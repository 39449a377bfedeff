//! Snapshot manifests, encoded with postcard and framed as objects (kind 2).
//! A snapshot's id is its object id (keyed BLAKE3 of this plaintext) and its file name.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::format::tree::Timestamp;
use crate::format::{from_postcard, to_postcard};
use crate::id::{BlobId, SnapshotId};

/// What was backed up. Postcard enum index is stored: append only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceKind {
    /// A file tree; `root` is a tree blob.
    Files,
    /// A block device or image file; `root` is a chunk map ([`crate::format::chunkmap`]).
    Volume(VolumeSource),
    /// A byte stream (standard input, a command's output, a database dump); `root` is a
    /// chunk map.
    Stream(StreamSource),
    /// One level of a GNU tar incremental chain (the agent's tar engine, Freezer's levels);
    /// `root` is a chunk map of the uncompressed tar stream followed by the SNAR state.
    TarLevel(TarLevelSource),
}

impl SourceKind {
    /// Whether `root` is a chunk map (volume or stream) rather than a directory tree.
    pub fn has_chunk_map(&self) -> bool {
        !matches!(self, SourceKind::Files)
    }

    /// Content size of a volume or stream.
    pub fn content_size(&self) -> Option<u64> {
        match self {
            SourceKind::Files => None,
            SourceKind::Volume(v) => Some(v.size),
            SourceKind::Stream(s) => Some(s.size),
            SourceKind::TarLevel(t) => Some(t.size),
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            SourceKind::Files => "files",
            SourceKind::Volume(_) => "volume",
            SourceKind::Stream(_) => "stream",
            SourceKind::TarLevel(_) => "tar-level",
        }
    }
}

/// How a volume or stream was cut into chunks. Postcard enum index is stored: append only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkerKind {
    /// Fixed-size chunks of `chunk_size` bytes (the last may be shorter).
    Fixed,
    /// Content-defined chunks (FastCDC with the repository's parameters).
    FastCdc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSource {
    /// The device or image path as given (or the snapshot device it was read from).
    pub path: String,
    /// A block device (true) or a regular image file (false).
    pub block_device: bool,
    /// Size in bytes.
    pub size: u64,
    pub chunker: ChunkerKind,
    /// Fixed chunk size in bytes (0 with content-defined chunks).
    pub chunk_size: u32,
    /// Image files: identity when read, so that an unchanged image is recognised without
    /// reading it. Zero for block devices, which have no reliable modification time.
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub inode: u64,
    pub dev: u64,
    /// Facts about how the source was captured, e.g. ("lvm.snapshot", "vg0/rime_backup_snap")
    /// or ("mysql.binlog_file", "mysql-bin.000003"); sorted by key.
    pub annotations: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSource {
    /// Bytes in the stream.
    pub size: u64,
    /// The command whose output was stored, or empty for standard input.
    pub command: String,
    /// As for volumes: e.g. ("mysql.dump", "mariadb-dump --single-transaction ...").
    pub annotations: Vec<(String, String)>,
}

/// One level of a tar incremental chain. The content (the chunk map at `root`) is the
/// uncompressed GNU tar incremental archive of this level (`tar_size` bytes) immediately
/// followed by the GNU tar snapshot file (SNAR, format 2) after this level, so that the next
/// level is computed from the repository alone and both deduplicate like any stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TarLevelSource {
    /// Content bytes: the archive plus the SNAR.
    pub size: u64,
    /// Bytes of the tar archive at the start of the content.
    pub tar_size: u64,
    /// 0 for a full backup; N for an incremental against level N-1 of `chain`.
    pub level: u32,
    /// The snapshots of levels 0..level-1 this level is applied on top of, in level order.
    pub chain: Vec<SnapshotId>,
    /// The compression the user asked for (`gzip`, `bzip2`, `xz`, `zstd`, or empty), used when
    /// the archive is written out in Freezer's format; the stored stream is uncompressed.
    pub compression: String,
    /// Whether the user asked for encryption (a pass file): Freezer metadata reports it.
    pub encrypted: bool,
    /// Sorted key/value facts, as for volumes (e.g. `lvm.snapshot`, `freezer.mode`).
    pub annotations: Vec<(String, String)>,
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
