//! Looking inside snapshots: the restore view, `ls`, `dump`.
//!
//! The *view* of a snapshot is what restore writes into its target: for a snapshot of one
//! directory, that directory's contents; otherwise one entry per source path, named by its last
//! component. `ls`, `dump` and `restore --include` use paths relative to that view.

use std::io::Write;

use crate::error::{Error, ErrorKind, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::{Node, NodeKind, Part, Tree};
use crate::repo::index::MasterIndex;
use crate::repo::Repository;

/// The tree restore writes into the target, and the node of the single source directory (whose
/// metadata applies to the target itself), if the snapshot has exactly one directory.
pub fn view(
    repo: &Repository,
    index: &MasterIndex,
    snap: &Snapshot,
) -> Result<(Tree, Option<Node>)> {
    if snap.source.has_chunk_map() {
        return Err(crate::Error::invalid(format!(
            "this is a {} snapshot of {}, not a file tree: use `rime dump` or `rime restore --target`",
            snap.source.label(),
            snap.paths.join(" ")
        )));
    }
    let root = repo.load_tree(index, &snap.root)?;
    if snap.paths.len() == 1 && root.nodes.len() == 1 && root.nodes[0].kind == NodeKind::Dir {
        let node = root.nodes[0].clone();
        let sub = node.subtree.expect("validated: directories have subtrees");
        return Ok((repo.load_tree(index, &sub)?, Some(node)));
    }
    Ok((root, None))
}

/// Split a user path ("/a/b", "a/b/") into components.
pub fn components(path: &str) -> Vec<&[u8]> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::as_bytes)
        .collect()
}

/// Find a node by its path in the view.
pub fn find(repo: &Repository, index: &MasterIndex, view: &Tree, path: &str) -> Result<Node> {
    let comps = components(path);
    let mut tree = view.clone();
    for (i, c) in comps.iter().enumerate() {
        let node = tree
            .find(c)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("{path}: no such path in the snapshot"),
                )
            })?
            .clone();
        if i + 1 == comps.len() {
            return Ok(node);
        }
        match node.subtree {
            Some(id) => tree = repo.load_tree(index, &id)?,
            None => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("{path}: not a directory in the snapshot"),
                ))
            }
        }
    }
    Err(Error::invalid("empty path"))
}

/// Visit every node under `tree` depth-first in name order, with its path ("a/b/c").
pub fn walk(
    repo: &Repository,
    index: &MasterIndex,
    tree: &Tree,
    prefix: &str,
    visit: &mut dyn FnMut(&str, &Node) -> Result<()>,
) -> Result<()> {
    for n in &tree.nodes {
        let path = if prefix.is_empty() {
            String::from_utf8_lossy(&n.name).into_owned()
        } else {
            format!("{prefix}/{}", String::from_utf8_lossy(&n.name))
        };
        visit(&path, n)?;
        if let Some(id) = n.subtree {
            let sub = repo.load_tree(index, &id).map_err(|e| e.within(&path))?;
            walk(repo, index, &sub, &path, visit)?;
        }
    }
    Ok(())
}

/// Write a file's content to `out`, verifying every chunk.
pub fn dump_file(
    repo: &Repository,
    index: &MasterIndex,
    node: &Node,
    out: &mut dyn Write,
) -> Result<u64> {
    if node.kind != NodeKind::File {
        return Err(Error::invalid(format!(
            "{} is a {:?}, not a regular file",
            String::from_utf8_lossy(&node.name),
            node.kind
        )));
    }
    let zeros = vec![0u8; 1 << 16];
    let mut written = 0u64;
    let io = |e| Error::io("cannot write output", e);
    for part in &node.content {
        match part {
            Part::Data { id, .. } => {
                let (pack, e) = index.lookup(id).ok_or_else(|| {
                    Error::new(
                        ErrorKind::MissingObject,
                        format!("data blob {id} is not in the index{}", index.missing_hint()),
                    )
                })?;
                let data = repo.read_blob(&pack, &e)?;
                out.write_all(&data).map_err(io)?;
                written += data.len() as u64;
            }
            Part::Hole { len } => {
                let mut left = *len;
                while left > 0 {
                    let n = left.min(zeros.len() as u64) as usize;
                    out.write_all(&zeros[..n]).map_err(io)?;
                    left -= n as u64;
                }
                written += len;
            }
        }
    }
    Ok(written)
}
