//! Tree objects: one per directory, nodes sorted by name, encoded with postcard.
//!
//! The encoding is deterministic (sorted nodes, sorted xattrs, no maps), so an unchanged
//! directory encodes to the same bytes, gets the same blob id and is stored once.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{from_postcard, to_postcard};
use crate::id::BlobId;

/// Seconds and nanoseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

/// Postcard enum index is stored: append new kinds at the end, never reorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
}

/// One piece of a file's content, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Part {
    /// A data blob holding the next `len` bytes.
    Data { id: BlobId, len: u32 },
    /// `len` zero bytes, restored as a hole where the file system allows.
    Hole { len: u64 },
}

impl Part {
    pub fn len(&self) -> u64 {
        match *self {
            Part::Data { len, .. } => u64::from(len),
            Part::Hole { len } => len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// File name bytes (no '/', not "." or "..").
    #[serde(with = "serde_bytes")]
    pub name: Vec<u8>,
    pub kind: NodeKind,
    /// Permission bits including setuid/setgid/sticky (mode & 0o7777).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub group: String,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
    pub inode: u64,
    pub device: u64,
    pub links: u64,
    /// Byte size of a regular file's content.
    pub size: u64,
    /// Regular files: content parts in order, summing to `size`.
    pub content: Vec<Part>,
    /// Directories: the subtree's blob id.
    pub subtree: Option<BlobId>,
    /// Symlinks: target bytes.
    #[serde(with = "serde_bytes")]
    pub link_target: Vec<u8>,
    /// Device nodes: st_rdev.
    pub rdev: u64,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<Xattr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    pub fn encode(&self) -> Vec<u8> {
        to_postcard(self)
    }

    /// Decode and validate: names unique, sorted, without '/', parts consistent with sizes.
    pub fn decode(bytes: &[u8]) -> Result<Tree> {
        let t: Tree = from_postcard("tree", bytes)?;
        for (i, n) in t.nodes.iter().enumerate() {
            if n.name.is_empty()
                || n.name == b"."
                || n.name == b".."
                || n.name.contains(&b'/')
                || n.name.contains(&0)
            {
                return Err(Error::corrupt(format!(
                    "tree: invalid name {:?}",
                    String::from_utf8_lossy(&n.name)
                )));
            }
            if i > 0 && t.nodes[i - 1].name >= n.name {
                return Err(Error::corrupt("tree: names not strictly sorted"));
            }
            if n.kind == NodeKind::File {
                let sum = n
                    .content
                    .iter()
                    .try_fold(0u64, |a, p| a.checked_add(p.len()));
                if sum != Some(n.size) {
                    return Err(Error::corrupt(format!(
                        "tree: file {:?} content does not add up to its size",
                        String::from_utf8_lossy(&n.name)
                    )));
                }
            }
            if (n.kind == NodeKind::Dir) != n.subtree.is_some() {
                return Err(Error::corrupt(
                    "tree: subtree present on a non-directory or missing on a directory",
                ));
            }
        }
        Ok(t)
    }

    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }
}
