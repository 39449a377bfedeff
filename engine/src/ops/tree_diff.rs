//! `rime diff A B` for file snapshots: which paths were added, removed, modified or only had
//! their metadata changed, and how much content the changed paths gained and lost.
//!
//! Trees are content-addressed, so a subtree whose id is the same in both snapshots is skipped
//! without being loaded: comparing two nightly snapshots of a large tree reads only the
//! directories on the paths to what changed.

use std::collections::HashSet;

use crate::error::Result;
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind, Part, Tree};
use crate::id::BlobId;
use crate::repo::index::MasterIndex;
use crate::repo::Repository;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// Only in the newer snapshot.
    Added,
    /// Only in the older snapshot.
    Removed,
    /// Content (or a symlink's target, a device's number) differs.
    Modified,
    /// Same content; mode, owner, times or extended attributes differ.
    Metadata,
    /// A different kind of node (a file became a directory, ...).
    TypeChanged,
}

impl Change {
    /// The one-letter code restic and git use.
    pub fn code(self) -> char {
        match self {
            Change::Added => '+',
            Change::Removed => '-',
            Change::Modified => 'M',
            Change::Metadata => 'U',
            Change::TypeChanged => 'T',
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub added: u64,
    pub removed: u64,
    pub modified: u64,
    pub metadata: u64,
    pub type_changed: u64,
}

#[derive(Debug, Clone, Default)]
pub struct TreeDiff {
    /// Every change, in path order; directories added or removed are followed by their contents.
    pub changes: Vec<(Change, String)>,
    pub files: Counts,
    pub dirs: Counts,
    pub others: Counts,
    /// Content bytes in chunks the changed paths of the newer snapshot reference and those of the
    /// older one do not, and the reverse (each chunk counted once).
    pub bytes_added: u64,
    pub bytes_removed: u64,
}

/// Compare two file snapshots (`a` the older).
pub fn diff_trees(
    repo: &Repository,
    index: &MasterIndex,
    a: &Snapshot,
    b: &Snapshot,
) -> Result<TreeDiff> {
    for s in [a, b] {
        if s.source.has_chunk_map() {
            return Err(crate::Error::invalid(format!(
                "cannot compare a {} snapshot with a file tree",
                s.source.label()
            )));
        }
    }
    let mut w = Walk {
        repo,
        index,
        out: TreeDiff::default(),
        old_chunks: HashSet::new(),
        new_chunks: HashSet::new(),
    };
    w.trees(Some(&a.root), Some(&b.root), "")?;
    let (old, new) = (&w.old_chunks, &w.new_chunks);
    w.out.bytes_added = new.difference(old).map(|(_, len)| u64::from(*len)).sum();
    w.out.bytes_removed = old.difference(new).map(|(_, len)| u64::from(*len)).sum();
    Ok(w.out)
}

struct Walk<'a> {
    repo: &'a Repository,
    index: &'a MasterIndex,
    out: TreeDiff,
    /// Data chunks of changed paths, with their lengths.
    old_chunks: HashSet<(BlobId, u32)>,
    new_chunks: HashSet<(BlobId, u32)>,
}

impl Walk<'_> {
    fn load(&self, id: Option<&BlobId>) -> Result<Tree> {
        match id {
            Some(id) => self.repo.load_tree(self.index, id),
            None => Ok(Tree { nodes: vec![] }),
        }
    }

    fn trees(&mut self, a: Option<&BlobId>, b: Option<&BlobId>, path: &str) -> Result<()> {
        if a.is_some() && a == b {
            return Ok(()); // same id, same contents all the way down
        }
        let (ta, tb) = (self.load(a)?, self.load(b)?);
        let (mut i, mut j) = (0, 0);
        while i < ta.nodes.len() || j < tb.nodes.len() {
            let (na, nb) = (ta.nodes.get(i), tb.nodes.get(j));
            match (na, nb) {
                (Some(x), Some(y)) if x.name == y.name => {
                    self.pair(x, y, &join(path, &x.name))?;
                    i += 1;
                    j += 1;
                }
                (Some(x), None) => {
                    self.one_side(x, &join(path, &x.name), Change::Removed)?;
                    i += 1;
                }
                (Some(x), Some(y)) if x.name < y.name => {
                    self.one_side(x, &join(path, &x.name), Change::Removed)?;
                    i += 1;
                }
                (_, Some(y)) => {
                    self.one_side(y, &join(path, &y.name), Change::Added)?;
                    j += 1;
                }
                (None, None) => unreachable!("the loop condition"),
            }
        }
        Ok(())
    }

    fn pair(&mut self, x: &Node, y: &Node, path: &str) -> Result<()> {
        if x.kind != y.kind {
            self.note(Change::TypeChanged, y.kind, path);
            self.chunks(x, false);
            self.chunks(y, true);
            // The old directory's contents are gone, the new one's are new.
            if x.kind == NodeKind::Dir {
                self.trees(x.subtree.as_ref(), None, path)?;
            }
            if y.kind == NodeKind::Dir {
                self.trees(None, y.subtree.as_ref(), path)?;
            }
            return Ok(());
        }
        let content_differs = match x.kind {
            NodeKind::File => x.content != y.content,
            NodeKind::Symlink => x.link_target != y.link_target,
            NodeKind::CharDevice | NodeKind::BlockDevice => x.rdev != y.rdev,
            _ => false,
        };
        // A directory's mtime changes with any entry: reporting it would flag every parent.
        let meta_differs = x.mode != y.mode
            || x.uid != y.uid
            || x.gid != y.gid
            || x.xattrs != y.xattrs
            || (x.kind != NodeKind::Dir && x.mtime != y.mtime);
        if content_differs {
            self.note(Change::Modified, y.kind, path);
            self.chunks(x, false);
            self.chunks(y, true);
        } else if meta_differs {
            self.note(Change::Metadata, y.kind, path);
        }
        if x.kind == NodeKind::Dir {
            self.trees(x.subtree.as_ref(), y.subtree.as_ref(), path)?;
        }
        Ok(())
    }

    fn one_side(&mut self, n: &Node, path: &str, change: Change) -> Result<()> {
        self.note(change, n.kind, path);
        self.chunks(n, change == Change::Added);
        if n.kind == NodeKind::Dir {
            match change {
                Change::Added => self.trees(None, n.subtree.as_ref(), path)?,
                _ => self.trees(n.subtree.as_ref(), None, path)?,
            }
        }
        Ok(())
    }

    fn chunks(&mut self, n: &Node, newer: bool) {
        let set = match newer {
            true => &mut self.new_chunks,
            false => &mut self.old_chunks,
        };
        for p in &n.content {
            if let Part::Data { id, len } = *p {
                set.insert((id, len));
            }
        }
    }

    fn note(&mut self, change: Change, kind: NodeKind, path: &str) {
        let c = match kind {
            NodeKind::File => &mut self.out.files,
            NodeKind::Dir => &mut self.out.dirs,
            _ => &mut self.out.others,
        };
        *match change {
            Change::Added => &mut c.added,
            Change::Removed => &mut c.removed,
            Change::Modified => &mut c.modified,
            Change::Metadata => &mut c.metadata,
            Change::TypeChanged => &mut c.type_changed,
        } += 1;
        let shown = match kind {
            NodeKind::Dir => format!("{path}/"),
            _ => path.to_string(),
        };
        self.out.changes.push((change, shown));
    }
}

fn join(path: &str, name: &[u8]) -> String {
    format!("{path}/{}", String::from_utf8_lossy(name))
}
