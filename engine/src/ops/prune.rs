//! `rime prune`: delete data no snapshot references, and repack mostly-unused packs, while
//! backups keep running (format-spec/SPEC.md, section 9, "Prune").
//!
//! Two phases across runs. A run *marks*: it stops naming unneeded packs in the index (new
//! index files first, then the old ones are removed) and writes a pending-deletion record with
//! the packs, the time and the locks that exist at that moment. A later run *deletes* a record's
//! packs once the grace period has passed, every lock listed in it is gone (so every operation
//! that could have loaded an index naming the packs has ended, and any snapshot it wrote is
//! visible) and the packs are still unreferenced: a snapshot that needs a blob found only in a
//! marked pack makes prune re-index that pack instead ("resurrection").
//!
//! Memory: the index (52 bytes per stored blob), one bit per stored blob for "used" (an atomic
//! bitmap over the sorted index, which also serves as the visited-set of trees, so nothing
//! grows with the number of snapshots), and 4 bytes per blob while the index is rewritten
//! (positions sorted by pack). Per pack a few counters. 1 million stored chunks: about 56 MB.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rayon::prelude::*;

use crate::error::{Error, ErrorKind, Result};
use crate::format::blob::SealedBlob;
use crate::format::index::IndexPack;
use crate::format::BlobType;
use crate::id::{BlobId, LockId, PackId, SnapshotId};
use crate::ops::reachable::{walk_snapshot, BlobVisitor};
use crate::repo::headers::read_pack_header;
use crate::repo::index::{write_index_file, MasterIndex};
use crate::repo::lock::{list_locks, LockGuard};
use crate::repo::packer::Packer;
use crate::repo::pending::{self, PendingRecord};
use crate::repo::{now_secs, Repository};
use crate::storage::FileKind;

#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Repack partly used packs until unused bytes are at most this fraction of all pack bytes.
    pub max_unused: f64,
    /// Marked packs are deleted by a later run no sooner than this (seconds); covers storages
    /// whose listings lag behind writes.
    pub grace_secs: i64,
    pub dry_run: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused: 0.05,
            grace_secs: 3600,
            dry_run: false,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    pub snapshots: u64,
    pub blobs: u64,
    pub blobs_used: u64,
    pub packs: u64,
    pub pack_bytes: u64,
    pub unused_bytes: u64,
    /// Packs no longer indexed and marked for deletion by this run (unused, repacked, orphaned).
    pub packs_marked: u64,
    pub bytes_marked: u64,
    pub packs_repacked: u64,
    pub bytes_repacked: u64,
    /// Packs deleted by this run (marked by an earlier one).
    pub packs_deleted: u64,
    pub bytes_deleted: u64,
    /// Marked packs a snapshot turned out to need: indexed again.
    pub packs_resurrected: u64,
    /// Marked packs still waiting (grace period or a running operation).
    pub packs_waiting: u64,
    pub index_files_written: u64,
    pub index_files_removed: u64,
    /// Temporary files of writers killed mid-object (older than a day), removed.
    pub leftovers_removed: u64,
    pub leftover_bytes_removed: u64,
    /// Temporary files were left alone: another operation was running (its files may be
    /// writes in progress).
    pub leftovers_skipped_for_running_operations: bool,
    /// Bytes of the used-blob bitmap (one bit per stored blob).
    pub bitmap_bytes: u64,
    pub index_memory_bytes: u64,
}

/// One bit per index position, set concurrently.
struct Bitmap(Vec<AtomicU64>);

impl Bitmap {
    fn new(n: usize) -> Bitmap {
        Bitmap((0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
    }
    /// Set bit `i`; true if it was clear.
    fn set(&self, i: usize) -> bool {
        let m = 1u64 << (i % 64);
        self.0[i / 64].fetch_or(m, Ordering::Relaxed) & m == 0
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64].load(Ordering::Relaxed) & (1u64 << (i % 64)) != 0
    }
    fn bytes(&self) -> usize {
        self.0.len() * 8
    }
}

struct Marker<'a> {
    index: &'a MasterIndex,
    used: Bitmap,
    missing: Mutex<HashMap<BlobId, SnapshotId>>,
    broken: Mutex<Vec<String>>,
}

impl BlobVisitor for Marker<'_> {
    fn visit(&self, id: &BlobId, _ty: BlobType) -> bool {
        match self.index.position(id) {
            Some(p) => self.used.set(p),
            None => {
                self.missing
                    .lock()
                    .entry(*id)
                    .or_insert(SnapshotId([0; 32]));
                false
            }
        }
    }
    fn unreadable_tree(&self, snapshot: &SnapshotId, path: &str, id: &BlobId, err: Error) {
        if err.kind() == ErrorKind::MissingObject {
            self.missing.lock().insert(*id, *snapshot);
        } else {
            self.broken.lock().push(format!(
                "snapshot {}: /{path}: tree {}: {err}",
                snapshot.short(),
                id.short()
            ));
        }
    }
}

/// Walk all snapshots against `index`.
fn mark<'a>(
    repo: &Repository,
    index: &'a MasterIndex,
    snaps: &[(SnapshotId, crate::format::snapshot::Snapshot)],
) -> Result<Marker<'a>> {
    let m = Marker {
        index,
        used: Bitmap::new(index.blob_count()),
        missing: Mutex::new(HashMap::new()),
        broken: Mutex::new(Vec::new()),
    };
    for (id, s) in snaps {
        walk_snapshot(repo, index, id, s, &m)?;
    }
    Ok(m)
}

pub fn prune(repo: &Repository, opts: &PruneOptions) -> Result<PruneReport> {
    let lock = if opts.dry_run {
        None
    } else {
        Some(LockGuard::shared(repo, "prune")?)
    };
    let mut rep = PruneReport::default();
    let now = now_secs();
    // Order matters: records, then locks, then snapshots. A lock that is gone now belonged to
    // an operation whose snapshot (if any) is already stored, so the walk below sees it.
    let records = pending::list(repo)?;
    // Holders, not lock file ids: a refresh writes a lock under a new id, and the operation
    // holding it is still the one a record waits for.
    let ours = lock.as_ref().map(|l| l.holder());
    let live: HashSet<LockId> = list_locks(repo)?
        .into_iter()
        .filter(|l| Some(l.holder()) != ours)
        .filter(|l| {
            l.body
                .as_ref()
                .map_or(true, |b| b.stale_reason(now).is_none())
        })
        .map(|l| l.holder())
        .collect();
    let mut snaps = Vec::new();
    for (id, s) in repo.list_snapshots()? {
        match s {
            Ok(s) => snaps.push((id, s)),
            Err(e) => {
                return Err(Error::new(
                    e.kind(),
                    format!(
                    "snapshot {} cannot be read ({e}): prune would not know what it references; \
                         remove it (`rime repair --forget-broken`) or fix the storage first",
                    id.short()
                ),
                ))
            }
        }
    }
    rep.snapshots = snaps.len() as u64;

    let mut index = MasterIndex::load(repo)?;
    index.refuse_if_damaged("prune")?;
    let mut marker = mark(repo, &index, &snaps)?;
    // Blobs a snapshot needs but no index names: look for them in marked packs.
    if !marker.missing.lock().is_empty() {
        let missing: HashSet<BlobId> = marker.missing.lock().keys().copied().collect();
        let mut revive = Vec::new();
        for (_, r) in &records {
            for p in &r.packs {
                let Ok(entries) = read_pack_header(repo, p) else {
                    continue;
                };
                if entries.iter().any(|e| missing.contains(&e.id)) {
                    revive.push(IndexPack {
                        id: *p,
                        blobs: entries,
                    });
                }
            }
        }
        if !revive.is_empty() {
            rep.packs_resurrected = revive.len() as u64;
            if opts.dry_run {
                return Err(Error::invalid(format!(
                    "{} marked pack(s) are needed by snapshots and would be indexed again; run prune without --dry-run",
                    revive.len()
                )));
            }
            write_index_file(repo, revive)?;
            rep.index_files_written += 1;
            drop(marker);
            index = MasterIndex::load(repo)?;
            index.refuse_if_damaged("prune")?;
            marker = mark(repo, &index, &snaps)?;
        }
    }
    // The guard is taken once: locking `missing` again inside would wait for itself for ever.
    let missing = marker.missing.lock();
    if let Some((blob, snap)) = missing.iter().next() {
        // Data blobs are visited without their snapshot (zero id); `check` names each one.
        let who = match snap.0 == [0; 32] {
            true => "a snapshot".to_string(),
            false => format!("snapshot {}", snap.short()),
        };
        return Err(Error::new(
            ErrorKind::MissingObject,
            format!(
                "{who} references blob {blob}, which no index or pack holds ({} missing in all): \
                 prune refuses to run; `rime check` names every snapshot and path affected, and \
                 `rime repair` rebuilds the index (`--forget-broken` drops what is lost)",
                missing.len()
            ),
        ));
    }
    drop(missing);
    if let Some(b) = marker.broken.lock().first() {
        return Err(Error::corrupt(format!(
            "{b}: prune refuses to run while a tree cannot be read"
        )));
    }
    rep.bitmap_bytes = marker.used.bytes() as u64;
    rep.index_memory_bytes = index.memory_bytes() as u64;
    rep.blobs = index.blob_count() as u64;

    // Temporary files that killed writers left (never listed, never referenced): a day old
    // is far older than any write in progress, except a pack a long backup streams into
    // slowly (its file changes only per staged MiB). So only while no other operation holds
    // a live lock: then every temporary file is a leftover.
    let others_running = match &lock {
        Some(own) => crate::repo::lock::list_locks(repo)?.iter().any(|l| {
            l.holder() != own.holder()
                && l.body
                    .as_ref()
                    .is_ok_and(|b| b.stale_reason(crate::repo::now_secs()).is_none())
        }),
        None => true,
    };
    rep.leftovers_skipped_for_running_operations = others_running && !opts.dry_run;
    if !opts.dry_run && !others_running {
        let (files, bytes) = repo
            .storage()
            .remove_leftovers(std::time::Duration::from_secs(LEFTOVER_AGE_SECS))?;
        rep.leftovers_removed = files;
        rep.leftover_bytes_removed = bytes;
    }
    // Phase 2 of earlier runs: delete what they marked, when safe.
    let indexed: HashSet<PackId> = index.packs().iter().copied().collect();
    let stored: HashMap<PackId, u64> = repo
        .storage()
        .list(FileKind::Pack)?
        .into_iter()
        .filter_map(|o| PackId::from_hex(&o.name).ok().map(|id| (id, o.size)))
        .collect();
    for (name, r) in &records {
        let ripe = r.complete
            && now - r.time >= opts.grace_secs
            && r.locks.iter().all(|l| !live.contains(l));
        if !ripe {
            rep.packs_waiting += r.packs.len() as u64;
            continue;
        }
        if opts.dry_run {
            for p in r.packs.iter().filter(|p| !indexed.contains(p)) {
                rep.packs_deleted += 1;
                rep.bytes_deleted += stored.get(p).copied().unwrap_or(0);
            }
            continue;
        }
        if let Some(l) = &lock {
            l.check()?;
        }
        for p in &r.packs {
            if indexed.contains(p) {
                continue; // indexed again (resurrected or re-indexed by a backup): keep
            }
            match repo.storage().remove(FileKind::Pack, &p.to_hex()) {
                Ok(()) => {
                    rep.packs_deleted += 1;
                    rep.bytes_deleted += stored.get(p).copied().unwrap_or(0);
                }
                Err(e) if e.kind() == ErrorKind::MissingObject => {}
                Err(e) => return Err(e.within(format!("deleting marked pack {}", p.to_hex()))),
            }
        }
        match repo.storage().remove(FileKind::Pending, name) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::MissingObject => {}
            Err(e) => return Err(e),
        }
    }

    // Phase 1: what to mark now.
    let packs = index.packs();
    let mut used_bytes = vec![0u64; packs.len()];
    let mut used_count = vec![0u64; packs.len()];
    let mut blob_bytes = vec![0u64; packs.len()];
    for pos in 0..index.blob_count() {
        let (p, e) = index.at(pos);
        blob_bytes[p] += u64::from(e.stored_len);
        if marker.used.get(pos) {
            used_bytes[p] += u64::from(e.stored_len);
            used_count[p] += 1;
            rep.blobs_used += 1;
        }
    }
    let mut drop_pack = vec![false; packs.len()];
    let mut repack = vec![false; packs.len()];
    let mut partial: Vec<(u64, usize)> = Vec::new();
    for (i, p) in packs.iter().enumerate() {
        let size = stored.get(p).copied().unwrap_or(0);
        rep.packs += 1;
        rep.pack_bytes += size;
        if used_count[i] == 0 {
            drop_pack[i] = true;
            rep.unused_bytes += size;
        } else {
            // Unused blob bytes only: a fully used pack's header is no reason to rewrite it.
            let unused = blob_bytes[i] - used_bytes[i];
            rep.unused_bytes += unused;
            partial.push((unused, i));
        }
    }
    // Repack the emptiest packs until the unused bytes left fit the budget.
    let budget = (opts.max_unused.clamp(0.0, 1.0) * rep.pack_bytes as f64) as u64;
    let mut left: u64 = partial.iter().map(|(u, _)| u).sum();
    partial.sort_by_key(|p| std::cmp::Reverse(p.0));
    for (unused, i) in &partial {
        if left <= budget || *unused == 0 {
            break;
        }
        repack[*i] = true;
        left -= unused;
    }
    // Packs no index names and no complete record lists: left by interrupted backups (or a
    // running one, which the lock list protects), or listed by a prune that was killed before
    // it completed its record.
    let incomplete: Vec<&String> = records
        .iter()
        .filter(|(_, r)| !r.complete)
        .map(|(n, _)| n)
        .collect();
    let completed: HashSet<PackId> = records
        .iter()
        .filter(|(_, r)| r.complete)
        .flat_map(|(_, r)| r.packs.iter().copied())
        .collect();
    let orphans: Vec<PackId> = stored
        .keys()
        .filter(|p| !indexed.contains(p) && !completed.contains(p))
        .copied()
        .collect();
    let mut marked: Vec<PackId> = packs
        .iter()
        .enumerate()
        .filter(|(i, _)| drop_pack[*i] || repack[*i])
        .map(|(_, p)| *p)
        .chain(orphans.iter().copied())
        .collect();
    rep.packs_marked = marked.len() as u64;
    rep.bytes_marked = marked
        .iter()
        .map(|p| stored.get(p).copied().unwrap_or(0))
        .sum();
    rep.packs_repacked = repack.iter().filter(|r| **r).count() as u64;
    if opts.dry_run || marked.is_empty() {
        return Ok(rep);
    }

    // Copy the used blobs of repacked packs into new packs (sealed bytes as they are).
    let packer = Packer::new(repo, 2);
    let by_pack = positions_by_pack(&index);
    let copied = AtomicU64::new(0);
    (0..packs.len())
        .into_par_iter()
        .filter(|i| repack[*i])
        .try_for_each(|i| -> Result<()> {
            let name = packs[i].to_hex();
            for run in used_runs(&index, &by_pack[i], &marker.used) {
                let data = repo.storage().read_range(
                    FileKind::Pack,
                    &name,
                    run.start,
                    run.end - run.start,
                )?;
                for &pos in &run.blobs {
                    let (_, e) = index.at(pos as usize);
                    let s = (u64::from(e.offset) - run.start) as usize;
                    let bytes = data
                        .get(s..s + e.stored_len as usize)
                        .ok_or_else(|| {
                            Error::corrupt(format!(
                                "pack {name} is shorter than the index says (blob {})",
                                e.id
                            ))
                        })?
                        .to_vec();
                    copied.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    packer.add(SealedBlob {
                        id: e.id,
                        ty: e.ty,
                        flags: e.flags,
                        raw_len: e.raw_len,
                        bytes,
                    })?;
                }
            }
            Ok(())
        })?;
    let ps = packer.finish()?;
    rep.bytes_repacked = copied.into_inner();
    rep.index_files_written += ps.index_files;
    // An index file or pack written now may be byte-identical to an old one (same content,
    // same name): never remove or mark what this run wrote.
    let mut written: HashSet<crate::id::IndexId> = ps.index_ids.iter().copied().collect();
    let new_packs: HashSet<PackId> = ps.pack_ids.iter().copied().collect();
    marked.retain(|p| !new_packs.contains(p));

    // Announce the marks before the index stops naming the packs: a backup that writes its
    // snapshot after this point finds the record and re-indexes what it may have used.
    let begin = pending::write(
        repo,
        &PendingRecord {
            time: now_secs(),
            complete: false,
            locks: Vec::new(),
            packs: marked.clone(),
        },
    )?;
    // Snapshots written since the walk (their backups may have checked for records before this
    // one existed): whatever they use stays.
    let walked: HashSet<SnapshotId> = snaps.iter().map(|(id, _)| *id).collect();
    // One that cannot be read, or whose blobs cannot all be found, stops prune here, before
    // the index stops naming anything: its packs are unknown, and marking them would lose it.
    let mut late = Vec::new();
    for (id, s) in repo.list_snapshots()? {
        if walked.contains(&id) {
            continue;
        }
        match s {
            Ok(s) => late.push((id, s)),
            Err(e) => {
                return Err(Error::new(
                    e.kind(),
                    format!(
                        "snapshot {}, written while prune ran, cannot be read ({e}): prune stops \
                         before changing the index; nothing was deleted",
                        id.short()
                    ),
                ))
            }
        }
    }
    if !late.is_empty() {
        // Their backups' own packs and trees may be newer than our index: walk with a fresh
        // one, and keep every pack that holds a blob they use, by either index's choice.
        let fresh = MasterIndex::load(repo)?;
        fresh.refuse_if_damaged("prune")?;
        let m = mark(repo, &fresh, &late)?;
        if let Some((blob, snap)) = m.missing.lock().iter().next() {
            return Err(Error::new(
                ErrorKind::MissingObject,
                format!(
                    "snapshot {}, written while prune ran, references blob {blob}, which no index \
                     names: prune stops before changing the index; nothing was deleted",
                    snap.short()
                ),
            ));
        }
        if let Some(b) = m.broken.lock().first() {
            return Err(Error::corrupt(format!(
                "{b} (a snapshot written while prune ran): prune stops before changing the \
                 index; nothing was deleted"
            )));
        }
        let fresh_packs = fresh.packs();
        let mut keep: HashSet<PackId> = HashSet::new();
        for pos in 0..fresh.blob_count() {
            if m.used.get(pos) {
                let (fp, e) = fresh.at(pos);
                keep.insert(fresh_packs[fp]);
                if let Some(old) = index.position(&e.id) {
                    let (p, _) = index.at(old);
                    keep.insert(packs[p]);
                }
            }
        }
        for (i, p) in packs.iter().enumerate() {
            if (drop_pack[i] || repack[i]) && keep.contains(p) {
                drop_pack[i] = false;
                repack[i] = false;
                rep.packs_resurrected += 1;
            }
        }
        marked.retain(|p| !keep.contains(p));
    }

    // New index files for the packs that stay, then remove the old ones: a reader always sees
    // every live pack (possibly twice, never none).
    let mut batch: Vec<IndexPack> = Vec::new();
    let mut batch_blobs = 0usize;
    for (i, positions) in by_pack.iter().enumerate() {
        if drop_pack[i] || repack[i] || positions.is_empty() {
            continue;
        }
        let blobs: Vec<_> = positions.iter().map(|&p| index.at(p as usize).1).collect();
        batch_blobs += blobs.len();
        batch.push(IndexPack {
            id: packs[i],
            blobs,
        });
        if batch_blobs >= 50_000 {
            written.insert(write_index_file(repo, std::mem::take(&mut batch))?);
            rep.index_files_written += 1;
            batch_blobs = 0;
        }
    }
    if !batch.is_empty() {
        written.insert(write_index_file(repo, batch)?);
        rep.index_files_written += 1;
    }
    if let Some(l) = &lock {
        l.check()?;
    }
    for f in index.index_files().iter().filter(|f| !written.contains(f)) {
        match repo.storage().remove(FileKind::Index, &f.to_hex()) {
            Ok(()) => rep.index_files_removed += 1,
            Err(e) if e.kind() == ErrorKind::MissingObject => {}
            Err(e) => return Err(e),
        }
    }
    // On several storages the removals above are queued: every storage must have done them
    // before the locks are listed (a backup starting earlier could load the old index there).
    repo.storage().flush();
    // The locks that exist now are every operation that may have loaded an index naming the
    // marked packs and may not yet have looked for records.
    let ours = lock.as_ref().map(|l| l.holder());
    let locks: Vec<LockId> = list_locks(repo)?
        .into_iter()
        .map(|l| l.holder())
        .filter(|id| Some(*id) != ours)
        .collect();
    rep.packs_marked = marked.len() as u64;
    pending::write(
        repo,
        &PendingRecord {
            time: now_secs(),
            complete: true,
            locks,
            packs: marked,
        },
    )?;
    // The complete record replaces ours and those of killed prunes (whose packs, if still
    // unindexed, were orphans above and are in the new record).
    for name in incomplete.into_iter().chain([&begin]) {
        match repo.storage().remove(FileKind::Pending, name) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::MissingObject => {}
            Err(e) => return Err(e),
        }
    }
    Ok(rep)
}

/// Temporary files older than this are leftovers of killed writers.
const LEFTOVER_AGE_SECS: u64 = 24 * 3600;

/// Ranged reads of a repacked pack: used blobs closer than this are read together.
const RUN_GAP: u64 = 1 << 20;
/// A read covers at most this much (or one larger blob), so that memory does not grow with the
/// pack size: threads × this, instead of threads × whole packs.
const RUN_MAX: u64 = 4 << 20;

/// One ranged read of a pack and the used blobs (index positions) it covers.
#[derive(Debug, PartialEq)]
struct Run {
    start: u64,
    end: u64,
    blobs: Vec<u32>,
}

/// The used blobs of one pack, by offset, grouped into reads: unused stretches longer than
/// [`RUN_GAP`] are skipped, and no read spans more than [`RUN_MAX`].
fn used_runs(index: &MasterIndex, positions: &[u32], used: &Bitmap) -> Vec<Run> {
    let mut blobs: Vec<(u64, u64, u32)> = positions
        .iter()
        .filter(|&&pos| used.get(pos as usize))
        .map(|&pos| {
            let (_, e) = index.at(pos as usize);
            let o = u64::from(e.offset);
            (o, o + u64::from(e.stored_len), pos)
        })
        .collect();
    blobs.sort_unstable();
    let mut runs: Vec<Run> = Vec::new();
    for (start, end, pos) in blobs {
        match runs.last_mut() {
            Some(r) if start <= r.end + RUN_GAP && end - r.start <= RUN_MAX => {
                r.end = r.end.max(end);
                r.blobs.push(pos);
            }
            _ => runs.push(Run {
                start,
                end,
                blobs: vec![pos],
            }),
        }
    }
    runs
}

/// Index positions grouped by pack number (4 bytes per blob).
fn positions_by_pack(index: &MasterIndex) -> Vec<Vec<u32>> {
    let mut by: Vec<Vec<u32>> = vec![Vec::new(); index.packs().len()];
    for pos in 0..index.blob_count() {
        let (p, _) = index.at(pos);
        by[p].push(pos as u32);
    }
    by
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::blob::BlobFlags;
    use crate::format::index::IndexPack;
    use crate::format::pack::PackEntry;
    use crate::format::BlobType;
    use crate::id::{BlobId, PackId};

    #[test]
    fn repack_reads_skip_unused_stretches_and_stay_bounded() {
        // One pack: blobs of 1 MiB back to back, then a 3 MiB hole, then two small blobs.
        let mib = 1u32 << 20;
        let mut blobs = vec![];
        let mut off = 0u32;
        for (n, len) in [(1u8, mib), (2, mib), (3, mib), (4, mib), (5, mib), (6, mib)] {
            blobs.push(PackEntry {
                ty: BlobType::Data,
                flags: BlobFlags(0),
                offset: off,
                stored_len: len,
                raw_len: len,
                id: BlobId::from_bytes([n; 32]),
            });
            off += len;
        }
        off += 3 * mib;
        for n in [7u8, 8] {
            blobs.push(PackEntry {
                ty: BlobType::Data,
                flags: BlobFlags(0),
                offset: off,
                stored_len: 100,
                raw_len: 100,
                id: BlobId::from_bytes([n; 32]),
            });
            off += 100;
        }
        let index = MasterIndex::from_packs(&[IndexPack {
            id: PackId::from_bytes([9; 32]),
            blobs,
        }]);
        let positions: Vec<u32> = (0..index.blob_count() as u32).collect();
        let used = Bitmap::new(index.blob_count());
        let by_id = |n: u8| {
            (0..index.blob_count())
                .find(|&p| index.at(p).1.id == BlobId::from_bytes([n; 32]))
                .unwrap()
        };
        // Used: 1..=5 (5 MiB in a row), not 6, then 7 and 8 after the hole.
        for n in [1u8, 2, 3, 4, 5, 7, 8] {
            used.set(by_id(n));
        }
        let runs = used_runs(&index, &positions, &used);
        let spans: Vec<(u64, u64, usize)> = runs
            .iter()
            .map(|r| (r.start, r.end, r.blobs.len()))
            .collect();
        let m = u64::from(mib);
        assert_eq!(
            spans,
            [
                (0, 4 * m, 4),           // capped at RUN_MAX
                (4 * m, 5 * m, 1),       // the fifth blob
                (9 * m, 9 * m + 200, 2), // after the unused 4 MiB (blob 6 and the hole)
            ]
        );
        for r in &runs {
            for &pos in &r.blobs {
                let e = index.at(pos as usize).1;
                assert!(u64::from(e.offset) >= r.start);
                assert!(u64::from(e.offset) + u64::from(e.stored_len) <= r.end);
            }
        }
    }
}
