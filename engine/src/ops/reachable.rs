//! Reachability: every blob a snapshot references, found by walking what its root names.
//!
//! This is the ONE place that knows how a snapshot's `source` turns into blobs, so prune (what
//! to keep) and check (what must exist) can never disagree. A new [`SourceKind`] gets its arm
//! here and nowhere else.

use rayon::prelude::*;

use crate::error::Result;
use crate::format::snapshot::{Snapshot, SourceKind};
use crate::format::tree::Part;
use crate::format::BlobType;
use crate::id::{BlobId, SnapshotId};
use crate::repo::index::MasterIndex;
use crate::repo::Repository;

/// Receives every referenced blob. `visit` returns whether the blob is seen for the first time:
/// a tree seen before is not walked again (snapshots share most of their trees).
pub trait BlobVisitor: Sync {
    fn visit(&self, id: &BlobId, ty: BlobType) -> bool;
    /// A tree that could not be read: the walk goes on with the rest. `path` is relative to
    /// the snapshot's root.
    fn unreadable_tree(&self, snapshot: &SnapshotId, path: &str, id: &BlobId, err: crate::Error);
}

/// Walk every blob `snap` references, trees in parallel.
pub fn walk_snapshot(
    repo: &Repository,
    index: &MasterIndex,
    id: &SnapshotId,
    snap: &Snapshot,
    v: &dyn BlobVisitor,
) -> Result<()> {
    match snap.source {
        SourceKind::Files => {
            if v.visit(&snap.root, BlobType::Tree) {
                walk_tree(repo, index, id, &snap.root, "", v);
            }
        }
        // `root` is a chunk map (a tree-type blob) listing segments (tree-type blobs) listing
        // the data blobs in order.
        SourceKind::Volume(_) | SourceKind::Stream(_) | SourceKind::TarLevel(_) => {
            if v.visit(&snap.root, BlobType::Tree) {
                walk_chunk_map(repo, index, id, &snap.root, v);
            }
        }
    }
    Ok(())
}

fn walk_chunk_map(
    repo: &Repository,
    index: &MasterIndex,
    snap: &SnapshotId,
    root: &BlobId,
    v: &dyn BlobVisitor,
) {
    use crate::ops::volume::map::{load_map, load_segment};
    let map = match load_map(repo, index, root) {
        Ok(m) => m,
        Err(e) => return v.unreadable_tree(snap, "(chunk map)", root, e),
    };
    map.segments.par_iter().for_each(|seg| {
        if !v.visit(&seg.id, BlobType::Tree) {
            return;
        }
        match load_segment(repo, index, seg) {
            Ok(s) => {
                for part in &s.parts {
                    if let Part::Data { id, .. } = part {
                        v.visit(id, BlobType::Data);
                    }
                }
            }
            Err(e) => v.unreadable_tree(snap, "(map segment)", &seg.id, e),
        }
    });
}

fn walk_tree(
    repo: &Repository,
    index: &MasterIndex,
    snap: &SnapshotId,
    tree_id: &BlobId,
    path: &str,
    v: &dyn BlobVisitor,
) {
    let tree = match repo.load_tree(index, tree_id) {
        Ok(t) => t,
        Err(e) => return v.unreadable_tree(snap, path, tree_id, e),
    };
    tree.nodes.par_iter().for_each(|n| {
        for part in &n.content {
            if let Part::Data { id, .. } = part {
                v.visit(id, BlobType::Data);
            }
        }
        if let Some(sub) = &n.subtree {
            if v.visit(sub, BlobType::Tree) {
                let p = super::child_path(path, &n.name);
                walk_tree(repo, index, snap, sub, &p, v);
            }
        }
    });
}
