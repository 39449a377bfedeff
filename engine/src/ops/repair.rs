//! `rime repair`: rebuild the index from the packs' own headers, and optionally drop snapshots
//! whose data is gone, after saying exactly what is lost.
//!
//! Takes an exclusive lock: rewriting the index while a backup or prune works on it could
//! hide packs from them.

use std::collections::HashSet;

use rayon::prelude::*;

use crate::error::{ErrorKind, Result};
use crate::format::index::IndexPack;
use crate::format::pack::PackEntry;
use crate::format::snapshot::SourceKind;
use crate::format::tree::Part;
use crate::id::{IndexId, PackId, SnapshotId};
use crate::repo::headers::read_pack_header;
use crate::repo::index::{write_index_file, MasterIndex};
use crate::repo::lock::LockGuard;
use crate::repo::Repository;
use crate::storage::FileKind;

#[derive(Debug, Clone, Default)]
pub struct RepairOptions {
    /// Report only: rebuild nothing.
    pub dry_run: bool,
    /// Rewrite broken file snapshots to keep what is left of them (`crate::ops::salvage`).
    pub salvage: bool,
    /// Keep the exclusive lock after the scan ([`Repaired::lock`]) so that broken snapshots
    /// can be removed by [`forget_broken`] on the very findings of the scan: a backup that
    /// ran in between could have healed one, and removing it then would lose restorable data.
    pub keep_lock: bool,
}

/// Whether a failure to read a pack's header is about the pack itself (damaged, truncated,
/// gone), as opposed to the storage not answering.
fn is_damage(e: &crate::Error) -> bool {
    matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::MissingObject)
}

/// What the current index files say about `packs`, reading every index file that can be read
/// (a damaged one, often the reason for the repair, is skipped).
fn previous_entries(
    repo: &Repository,
    packs: &HashSet<PackId>,
) -> Result<std::collections::HashMap<PackId, Vec<PackEntry>>> {
    let mut out: std::collections::HashMap<PackId, Vec<PackEntry>> = Default::default();
    if packs.is_empty() {
        return Ok(out);
    }
    for f in MasterIndex::index_file_ids(repo)? {
        let file = match crate::repo::index::read_index_file(repo, &f) {
            Ok(file) => file,
            Err(e) if is_damage(&e) => continue,
            // Not answering is not damage: the old index files are about to be removed, and
            // what they say about damaged packs would be lost with them.
            Err(e) => return Err(e.within("repair reads the old index files; nothing was changed")),
        };
        for p in file.packs.into_iter().filter(|p| packs.contains(&p.id)) {
            let known = out.entry(p.id).or_default();
            for b in p.blobs {
                if !known.iter().any(|k| k.id == b.id) {
                    known.push(b);
                }
            }
        }
    }
    Ok(out)
}

/// A snapshot that cannot be restored completely.
#[derive(Debug, Clone)]
pub struct Broken {
    pub id: SnapshotId,
    /// "/path: what is missing" lines (at most 100 per snapshot) and the total count.
    pub lost: Vec<String>,
    pub lost_total: u64,
}

#[derive(Debug, Clone, Default)]
pub struct RepairReport {
    pub packs: u64,
    /// Packs whose header could not be read: their blobs are lost.
    pub unreadable_packs: Vec<String>,
    pub blobs_indexed: u64,
    pub index_files_written: u64,
    pub index_files_removed: u64,
    pub broken: Vec<Broken>,
    /// Prune records that could not be read, removed (every pack is indexed again by the
    /// rebuild, so nothing they marked can be deleted unseen; the next prune marks anew).
    pub unreadable_records: Vec<String>,
    /// With `salvage`: what happened to each broken snapshot.
    pub salvaged: Vec<crate::ops::salvage::Salvaged>,
}

/// What [`repair`] found and did, and the exclusive lock it still holds when asked to
/// ([`RepairOptions::keep_lock`]).
pub struct Repaired {
    pub report: RepairReport,
    pub lock: Option<LockGuard>,
}

pub fn repair(repo: &Repository, opts: &RepairOptions) -> Result<Repaired> {
    let lock = if opts.dry_run {
        None
    } else {
        Some(LockGuard::exclusive(repo, "repair")?)
    };
    let mut rep = RepairReport::default();
    let names = repo.storage().list(FileKind::Pack)?;
    let headers: Vec<(PackId, u64, Result<Vec<PackEntry>>)> = names
        .par_iter()
        .filter_map(|o| PackId::from_hex(&o.name).ok().map(|id| (id, o.size)))
        .map(|(id, size)| (id, size, read_pack_header(repo, &id)))
        .collect();
    rep.packs = headers.len() as u64;
    // A header that could not be read for a reason other than damage (a network error, a
    // storage refusing us) says nothing about the pack: rebuilding the index without it would
    // make its intact blobs unreachable.
    if let Some((id, _, Err(e))) = headers
        .iter()
        .find(|(_, _, h)| h.as_ref().is_err_and(|e| !is_damage(e)))
    {
        return Err(crate::Error::new(e.kind(), e.to_string()).within(format!(
            "repair reads every pack's header; pack {} could not be read, so nothing was \
             changed: try again once the storage answers",
            id.short()
        )));
    }
    let damaged: HashSet<PackId> = headers
        .iter()
        .filter(|(_, _, h)| h.is_err())
        .map(|(id, _, _)| *id)
        .collect();
    let mut previous = previous_entries(repo, &damaged)?;
    let mut packs = Vec::new();
    for (id, size, h) in headers {
        match h {
            Ok(blobs) if !blobs.is_empty() => {
                rep.blobs_indexed += blobs.len() as u64;
                packs.push(IndexPack { id, blobs });
            }
            Ok(_) => {}
            Err(e) => {
                // The blobs the old index placed inside what is left of the pack are kept:
                // each is still checked (keyed id, AEAD tag) when read, and a damaged header
                // or trailer does not make intact blobs before it unreadable.
                let kept: Vec<PackEntry> = previous
                    .remove(&id)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|b| u64::from(b.offset) + u64::from(b.stored_len) <= size)
                    .collect();
                rep.unreadable_packs.push(match kept.len() {
                    0 => format!("pack {}: {e} (its blobs are lost)", id.to_hex()),
                    n => format!(
                        "pack {}: {e} ({n} blob(s) that the previous index placed in it are \
                         kept; they are verified when read)",
                        id.to_hex()
                    ),
                });
                if !kept.is_empty() {
                    rep.blobs_indexed += kept.len() as u64;
                    packs.push(IndexPack { id, blobs: kept });
                }
            }
        }
    }
    if !opts.dry_run {
        if let Some(l) = &lock {
            l.check()?;
        }
        let old = MasterIndex::index_file_ids(repo)?;
        let mut written: HashSet<IndexId> = HashSet::new();
        for chunk in packs.chunks(1000) {
            written.insert(write_index_file(repo, chunk.to_vec())?);
            rep.index_files_written += 1;
        }
        for f in old.iter().filter(|f| !written.contains(f)) {
            match repo.storage().remove(FileKind::Index, &f.to_hex()) {
                Ok(()) => rep.index_files_removed += 1,
                Err(e) if e.kind() == ErrorKind::MissingObject => {}
                Err(e) => return Err(e),
            }
        }
    }
    // After the rebuild, which indexes every readable pack, marked ones included: a record
    // nobody can read (it blocks every prune) can go.
    for (name, e) in crate::repo::pending::list_readable(repo)?.1 {
        if !opts.dry_run {
            match repo.storage().remove(FileKind::Pending, &name) {
                Ok(()) => {}
                Err(r) if r.kind() == ErrorKind::MissingObject => {}
                Err(r) => return Err(r),
            }
        }
        rep.unreadable_records.push(e.to_string());
    }
    // Salvage and forget rewrite or remove snapshots from what the scan below finds, so for
    // them the lock stays held: nothing may move packs away or heal data in between.
    let held = match opts.salvage || opts.keep_lock {
        true => lock,
        false => {
            drop(lock);
            None
        }
    };
    let index = if opts.dry_run {
        MasterIndex::from_packs(&packs)
    } else {
        // The new index files may still be queued (several storages write in the background):
        // wait for them, or the scan below would read a partial index.
        repo.storage().flush();
        MasterIndex::load(repo)?
    };
    for (id, s) in repo.list_snapshots()? {
        let mut lost = Vec::new();
        let mut total = 0u64;
        match &s {
            Err(e) if !is_damage(e) => return Err(not_lost(&id, "the snapshot file", e)),
            Err(e) => {
                total = 1;
                lost.push(format!("the snapshot itself cannot be read: {e}"));
            }
            Ok(s) => match s.source {
                SourceKind::Volume(_) | SourceKind::Stream(_) | SourceKind::TarLevel(_) => {
                    let v = MissingCounter {
                        index: &index,
                        missing: Default::default(),
                        broken: Default::default(),
                        failed: Default::default(),
                    };
                    crate::ops::reachable::walk_snapshot(repo, &index, &id, s, &v)?;
                    if let Some((what, e)) = v.failed.into_inner() {
                        return Err(not_lost(&id, &what, &e));
                    }
                    let (m, b) = (v.missing.into_inner(), v.broken.into_inner());
                    total = m + b.len() as u64;
                    if m > 0 {
                        lost.push(format!("{m} chunks of the {} content", s.paths.join(", ")));
                    }
                    lost.extend(b.into_iter().take(100));
                }
                SourceKind::Files => {
                    let mut stack = vec![(s.root, String::new())];
                    while let Some((tid, path)) = stack.pop() {
                        let tree = match repo.load_tree(&index, &tid) {
                            Ok(t) => t,
                            Err(e) if !is_damage(&e) => {
                                let what = format!("directory /{path} (tree {})", tid.short());
                                return Err(not_lost(&id, &what, &e));
                            }
                            Err(e) => {
                                total += 1;
                                if lost.len() < 100 {
                                    lost.push(format!(
                                        "/{path}: the whole directory (tree {}: {e})",
                                        tid.short()
                                    ));
                                }
                                continue;
                            }
                        };
                        for n in &tree.nodes {
                            let p = super::child_path(&path, &n.name);
                            let missing = n
                                .content
                                .iter()
                                .filter(|part| matches!(part, Part::Data { id, .. } if !index.contains(id)))
                                .count();
                            if missing > 0 {
                                total += 1;
                                if lost.len() < 100 {
                                    lost.push(format!(
                                        "/{p}: {missing} of {} chunks of content",
                                        n.content.len()
                                    ));
                                }
                            }
                            if let Some(sub) = n.subtree {
                                stack.push((sub, p));
                            }
                        }
                    }
                }
            },
        }
        if total > 0 {
            rep.broken.push(Broken {
                id,
                lost,
                lost_total: total,
            });
        }
    }
    if opts.salvage && !rep.broken.is_empty() {
        rep.salvaged =
            crate::ops::salvage::salvage_broken(repo, &index, &rep.broken, opts.dry_run)?;
    }
    Ok(Repaired {
        report: rep,
        lock: if opts.keep_lock { held } else { None },
    })
}

/// Remove the snapshots `repair` found broken (the caller has shown what they lose). Their
/// intact data stays until `prune`. Returns how many were removed.
///
/// Takes the exclusive lock that `repair` held through its scan (`keep_lock`), so the
/// decision and the removal see the same repository.
pub fn forget_broken(repo: &Repository, held: LockGuard, broken: &[Broken]) -> Result<u64> {
    if !held.is_exclusive() || !held.is_on(repo) {
        return Err(crate::Error::invalid(
            "forget_broken needs the exclusive lock repair's scan held on this repository",
        ));
    }
    held.check()?;
    let mut n = 0;
    for b in broken {
        match repo.storage().remove(FileKind::Snapshot, &b.id.to_hex()) {
            Ok(()) => n += 1,
            Err(e) if e.kind() == ErrorKind::MissingObject => {}
            Err(e) => return Err(e),
        }
    }
    drop(held);
    Ok(n)
}

/// A snapshot's data could not be read for a reason that says nothing about whether it is
/// there (an I/O error, a timeout, a refusal, a newer format): counting it as lost would let
/// `--forget-broken` remove an intact snapshot, so repair stops before deciding anything.
fn not_lost(id: &SnapshotId, what: &str, e: &crate::Error) -> crate::Error {
    crate::Error::new(
        e.kind(),
        format!(
            "snapshot {}: {what} could not be read ({e}), which does not mean it is lost: \
             repair stopped before removing or rewriting any snapshot; try again once the \
             storage answers",
            id.short()
        ),
    )
}

/// Counts referenced blobs no index names (for volume and stream snapshots).
struct MissingCounter<'a> {
    index: &'a MasterIndex,
    missing: parking_lot::Mutex<u64>,
    broken: parking_lot::Mutex<Vec<String>>,
    /// The first tree that could not be read for a reason other than damage.
    failed: parking_lot::Mutex<Option<(String, crate::Error)>>,
}

impl crate::ops::reachable::BlobVisitor for MissingCounter<'_> {
    fn visit(&self, id: &crate::id::BlobId, _ty: crate::format::BlobType) -> bool {
        if self.index.contains(id) {
            true
        } else {
            *self.missing.lock() += 1;
            false
        }
    }
    fn unreadable_tree(
        &self,
        _s: &SnapshotId,
        path: &str,
        id: &crate::id::BlobId,
        err: crate::Error,
    ) {
        if !is_damage(&err) {
            let mut failed = self.failed.lock();
            if failed.is_none() {
                *failed = Some((format!("{path} (blob {})", id.short()), err));
            }
            return;
        }
        self.broken
            .lock()
            .push(format!("{path}: blob {}: {err}", id.short()));
    }
}
