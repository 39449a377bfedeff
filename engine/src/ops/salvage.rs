//! `rime repair --salvage`: rewrite a broken file snapshot so that everything still stored in
//! the repository stays restorable, instead of forgetting the whole snapshot (after which
//! `prune` would delete its intact data too).
//!
//! Why these rules:
//! - A file with missing chunks keeps its intact bytes at their offsets; each missing chunk
//!   becomes a hole of the same length (zeros on restore). So that a restore never hands back a
//!   silently wrong file under its real name, the file is renamed `NAME.rime-damaged`.
//! - A directory whose tree cannot be read becomes an empty directory (its own metadata lives in
//!   the parent, so it is kept).
//! - The new snapshot keeps time, host, name, paths and parent, gains the tag `repaired`, and is
//!   written (trees packed and indexed first) before the original is removed: a crash in
//!   between leaves both, never neither.
//! - Volume, stream and tar-level snapshots are not rewritten: zeros inside a disk image or tar
//!   stream cannot be marked the way a renamed file can. They are reported and left alone.
//!
//! Only chunks the index lacks count as missing, as in `repair`'s report: run `repair` first so
//! the index matches the packs. If the source files still exist, a new backup re-uploads the
//! missing chunks and heals old snapshots without any rewrite.

use std::collections::HashSet;

use crate::error::Result;
use crate::format::snapshot::SourceKind;
use crate::format::tree::{NodeKind, Part, Tree};
use crate::format::BlobType;
use crate::id::{BlobId, SnapshotId};
use crate::ops::blob_saver::BlobSaver;
use crate::ops::repair::Broken;
use crate::repo::index::MasterIndex;
use crate::repo::Repository;
use crate::storage::FileKind;

/// The suffix given to files that lost chunks.
pub const DAMAGED_SUFFIX: &str = ".rime-damaged";
/// The tag a salvaged snapshot carries.
pub const REPAIRED_TAG: &str = "repaired";

/// What happened to one broken snapshot.
#[derive(Debug, Clone)]
pub struct Salvaged {
    pub original: SnapshotId,
    /// The rewritten snapshot (`None` in a dry run, or when it could not be salvaged).
    pub new: Option<SnapshotId>,
    /// One line per damaged file or emptied directory, e.g.
    /// `/src/db: 2 of 9 chunks (2097152 bytes) missing, kept as /src/db.rime-damaged`.
    pub changes: Vec<String>,
    /// Why the snapshot was left as it is.
    pub skipped: Option<String>,
}

/// Rewrite each broken file snapshot (see the module docs). In a dry run nothing is written and
/// the report says what would be.
///
/// The caller holds the exclusive lock from the index rebuild on (none in a dry run), and
/// `index` is the one it found the damage with: a prune or backup running in between could
/// otherwise move packs away or heal the very data this would turn into holes.
pub(crate) fn salvage_broken(
    repo: &Repository,
    index: &MasterIndex,
    broken: &[Broken],
    dry_run: bool,
) -> Result<Vec<Salvaged>> {
    let saver = (!dry_run).then(|| BlobSaver::new(repo, index, 3, 2));
    let mut out = Vec::new();
    let mut rewritten = Vec::new();
    for b in broken {
        let mut s = Salvaged {
            original: b.id,
            new: None,
            changes: vec![],
            skipped: None,
        };
        let snap = match repo.load_snapshot(&b.id) {
            Ok(snap) => snap,
            Err(e) => {
                s.skipped = Some(format!("the snapshot cannot be read: {e}"));
                out.push(s);
                continue;
            }
        };
        if !matches!(snap.source, SourceKind::Files) {
            s.skipped = Some(format!(
                "a {} snapshot cannot be salvaged (zeros in its content could not be marked)",
                snap.source.label()
            ));
            out.push(s);
            continue;
        }
        let rw = Rewriter {
            repo,
            index,
            saver: saver.as_ref(),
        };
        let root = match repo.load_tree(index, &snap.root) {
            Ok(t) => rw.rewrite(t, "", &mut s.changes)?,
            Err(e) if !is_lost(&e) => return Err(e),
            Err(e) => {
                s.skipped = Some(format!(
                    "its root tree cannot be read ({e}): nothing is left"
                ));
                out.push(s);
                continue;
            }
        };
        if s.changes.is_empty() {
            // Nothing the index lacks is referenced any more (a backup healed it since, or the
            // damage is elsewhere): rewriting would only change the tags.
            s.skipped = Some("nothing in it is missing now; left as it is".to_string());
            out.push(s);
            continue;
        }
        let mut snap = snap;
        snap.root = root;
        if !snap.tags.iter().any(|t| t == REPAIRED_TAG) {
            snap.tags.push(REPAIRED_TAG.to_string());
        }
        snap.program = format!("rime {} (repair --salvage)", env!("CARGO_PKG_VERSION"));
        rewritten.push((out.len(), snap));
        out.push(s);
    }
    if let Some(saver) = saver {
        // Trees are packed and indexed before any snapshot names them.
        saver.finish()?;
        for (i, snap) in rewritten {
            let new = repo.save_snapshot(&snap)?;
            out[i].new = Some(new);
            if new == out[i].original {
                continue; // the same bytes, so the same file: removing it would lose it
            }
            match repo
                .storage()
                .remove(FileKind::Snapshot, &out[i].original.to_hex())
            {
                Ok(()) => {}
                Err(e) if e.kind() == crate::ErrorKind::MissingObject => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

struct Rewriter<'a> {
    repo: &'a Repository,
    index: &'a MasterIndex,
    /// `None` in a dry run: tree ids are computed but nothing is stored.
    saver: Option<&'a BlobSaver<'a>>,
}

impl Rewriter<'_> {
    /// The id of `tree` with damaged files renamed and holed, and unreadable subtrees emptied.
    fn rewrite(&self, mut tree: Tree, path: &str, changes: &mut Vec<String>) -> Result<BlobId> {
        let mut taken: HashSet<Vec<u8>> = tree.nodes.iter().map(|n| n.name.clone()).collect();
        for n in &mut tree.nodes {
            let p = format!("{path}/{}", String::from_utf8_lossy(&n.name));
            if let Some(sub) = n.subtree {
                let new = match self.repo.load_tree(self.index, &sub) {
                    Ok(t) => self.rewrite(t, &p, changes)?,
                    // Only lost data becomes an empty directory; a storage that cannot be read
                    // right now stops the salvage before anything is written.
                    Err(e) if !is_lost(&e) => return Err(e),
                    Err(e) => {
                        changes.push(format!(
                            "{p}: directory unreadable (tree {}: {e}), kept empty",
                            sub.short()
                        ));
                        self.store(&Tree { nodes: vec![] })?
                    }
                };
                n.subtree = Some(new);
            }
            if n.kind != NodeKind::File {
                continue;
            }
            let (mut missing, mut bytes) = (0usize, 0u64);
            for part in &mut n.content {
                if let Part::Data { id, len } = *part {
                    if !self.index.contains(&id) {
                        missing += 1;
                        bytes += u64::from(len);
                        *part = Part::Hole {
                            len: u64::from(len),
                        };
                    }
                }
            }
            if missing == 0 {
                continue;
            }
            let mut name = marked_name(&n.name, DAMAGED_SUFFIX);
            let mut k = 1;
            while taken.contains(&name) {
                name = marked_name(&n.name, &format!("{DAMAGED_SUFFIX}.{k}"));
                k += 1;
            }
            taken.insert(name.clone());
            changes.push(format!(
                "{p}: {missing} of {} chunks ({bytes} bytes) missing, kept as {path}/{} with zeros there",
                n.content.len(),
                String::from_utf8_lossy(&name)
            ));
            n.name = name;
        }
        tree.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        self.store(&tree)
    }

    fn store(&self, tree: &Tree) -> Result<BlobId> {
        let bytes = tree.encode();
        match self.saver {
            Some(s) => s.save(BlobType::Tree, &bytes),
            None => Ok(self.repo.keys().blob_id(&bytes)),
        }
    }
}

/// Damaged or lost: what salvage may replace by holes or an empty directory. Anything else (a
/// storage that is down, a permission error) is not evidence that data is gone.
fn is_lost(e: &crate::Error) -> bool {
    matches!(
        e.kind(),
        crate::ErrorKind::MissingObject | crate::ErrorKind::Corrupt
    )
}

/// `name` with `suffix` appended, its start shortened so the whole stays within the 255 bytes
/// most file systems allow for a name.
pub(crate) fn marked_name(name: &[u8], suffix: &str) -> Vec<u8> {
    const NAME_MAX: usize = 255;
    let keep = name.len().min(NAME_MAX.saturating_sub(suffix.len()));
    [&name[..keep], suffix.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_names_fit_in_255_bytes() {
        assert_eq!(marked_name(b"db", DAMAGED_SUFFIX), b"db.rime-damaged");
        let long = vec![b'x'; 250];
        let m = marked_name(&long, ".rime-damaged.12");
        assert_eq!(m.len(), 255);
        assert!(m.ends_with(b".rime-damaged.12"));
        assert_ne!(marked_name(&long, DAMAGED_SUFFIX), m);
    }
}
