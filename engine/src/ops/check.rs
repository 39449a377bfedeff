//! `rime check`: the repository's objects agree with each other; with `read_data`, every pack
//! is read, hashed against its name, its header compared with the index, and every blob
//! decrypted and verified. Each problem names the object (and snapshot and path) affected.

use std::collections::{HashMap, HashSet};

use parking_lot::Mutex;
use rayon::prelude::*;

use crate::error::Result;
use crate::format::blob::open_blob;
use crate::format::tree::{NodeKind, Part};
use crate::format::BlobType;
use crate::id::{BlobId, PackId};
use crate::repo::headers::read_pack_tail;
use crate::repo::index::MasterIndex;
use crate::repo::Repository;
use crate::storage::FileKind;

#[derive(Debug, Default, Clone)]
pub struct CheckOptions {
    pub read_data: bool,
    /// With `read_data`: read only this part of the packs.
    pub subset: Option<Subset>,
}

/// Which packs `--read-data-subset` reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Subset {
    /// Part n of m (1-based): the packs whose id, read as a number, falls in the n-th of m equal
    /// ranges. Deterministic, so running 1/m … m/m (one per night) covers every pack.
    Part { n: u32, m: u32 },
    /// A random share of the packs (0..=1), chosen anew each run.
    Fraction(f64),
    /// Random packs up to this many bytes in total.
    Bytes(u64),
}

impl Subset {
    /// Parse `n/m`, `P%` or a size such as `10G`, `500M`, `1T` (powers of 1024).
    pub fn parse(s: &str) -> crate::Result<Subset> {
        let bad = || {
            crate::Error::invalid(format!(
                "bad --read-data-subset '{s}': use n/m (e.g. 1/10), a percentage (5%) or a size (10G)"
            ))
        };
        if let Some((n, m)) = s.split_once('/') {
            let (n, m): (u32, u32) = (n.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            if m == 0 || n == 0 || n > m {
                return Err(bad());
            }
            return Ok(Subset::Part { n, m });
        }
        // A subset that selects nothing would let a nightly job verify nothing, every night,
        // and report success: refused.
        let nothing = || {
            crate::Error::invalid(format!(
                "--read-data-subset '{s}' selects nothing: give a positive share or size"
            ))
        };
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(0.0..=100.0).contains(&p) {
                return Err(bad());
            }
            if p == 0.0 {
                return Err(nothing());
            }
            return Ok(Subset::Fraction(p / 100.0));
        }
        // 10G, 10GB, 10GiB, 10g: powers of 1024, as in restic.
        let upper = s.trim().to_ascii_uppercase();
        let unit_at = upper
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(upper.len());
        let (num, unit) = upper.split_at(unit_at);
        let mult: u64 = match unit {
            "" | "B" => 1,
            "K" | "KB" | "KIB" => 1 << 10,
            "M" | "MB" | "MIB" => 1 << 20,
            "G" | "GB" | "GIB" => 1 << 30,
            "T" | "TB" | "TIB" => 1 << 40,
            _ => return Err(bad()),
        };
        let v: f64 = num.trim().parse().map_err(|_| bad())?;
        if !v.is_finite() || v < 0.0 {
            return Err(bad());
        }
        let bytes = (v * mult as f64) as u64;
        if bytes == 0 {
            return Err(nothing());
        }
        Ok(Subset::Bytes(bytes))
    }

    /// The packs to read, from all stored packs (name, size).
    fn select<'a>(&self, packs: &'a HashMap<String, u64>) -> Vec<&'a String> {
        let mut names: Vec<&String> = packs.keys().collect();
        names.sort();
        match *self {
            Subset::Part { n, m } => names
                .into_iter()
                .filter(|name| {
                    let prefix =
                        u64::from_str_radix(name.get(..16).unwrap_or("0"), 16).unwrap_or(0);
                    ((u128::from(prefix) * u128::from(m)) >> 64) as u32 == n - 1
                })
                .collect(),
            Subset::Fraction(f) => {
                use rand::seq::SliceRandom;
                names.shuffle(&mut rand::thread_rng());
                let k = (names.len() as f64 * f).ceil() as usize;
                names.truncate(k.min(names.len()));
                names
            }
            Subset::Bytes(limit) => {
                use rand::seq::SliceRandom;
                names.shuffle(&mut rand::thread_rng());
                let mut total = 0u64;
                names
                    .into_iter()
                    .take_while(|n| {
                        let fits = total < limit;
                        total += packs[*n];
                        fits
                    })
                    .collect()
            }
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct CheckReport {
    pub snapshots: u64,
    pub trees: u64,
    pub packs: u64,
    pub blobs_checked: u64,
    pub bytes_read: u64,
    /// Packs read with `read_data` (all, or the subset's).
    pub packs_read: u64,
    pub errors: Vec<String>,
    /// Findings that do not endanger any snapshot.
    pub warnings: Vec<String>,
    /// Normal states worth knowing (packs waiting for prune's second phase).
    pub notes: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

pub fn check(repo: &Repository, opts: &CheckOptions) -> Result<CheckReport> {
    let mut rep = CheckReport::default();
    // Snapshots first, then the index, then the packs: a backup finishing meanwhile writes
    // packs, then index files, then its snapshot, so everything a listed snapshot uses is in
    // the index loaded after it, and every pack that index names is in the later listing.
    let snaps = repo.list_snapshots()?;
    let index = match MasterIndex::load(repo) {
        Ok(i) => i,
        Err(e) => {
            rep.errors.push(format!("index: {e}"));
            MasterIndex::default()
        }
    };
    // A damaged index file is an error even though everything else goes on without it.
    for d in index.damaged() {
        rep.errors.push(d.to_string());
    }
    // Packs named by the index exist and are long enough.
    let stored: HashMap<String, u64> = repo
        .storage()
        .list(FileKind::Pack)?
        .into_iter()
        .map(|o| (o.name, o.size))
        .collect();
    // The least a pack can be: its last indexed blob, then a header listing at least the
    // indexed blobs, then the trailer (a pack cut short by a few bytes loses its trailer and
    // header, which no blob offset shows).
    let mut pack_end: HashMap<PackId, (u64, usize)> = HashMap::new();
    for (pack, e) in index.iter() {
        let (end, count) = pack_end.entry(pack).or_default();
        *end = (*end).max(u64::from(e.offset) + u64::from(e.stored_len));
        *count += 1;
    }
    let least = |(end, count): (u64, usize)| {
        let header = crate::format::pack::header_plain_len(count);
        end + (repo.keys().sealed_len(header) + crate::format::pack::TRAILER_LEN) as u64
    };
    // Packs that are gone or cut short: their blobs are lost, and the snapshots and paths that
    // use them are named at the end (with those --read-data finds damaged).
    let mut short: HashMap<PackId, (u64, &'static str)> = HashMap::new();
    for (pack, &(end, count)) in &pack_end {
        match stored.get(&pack.to_hex()) {
            None => {
                rep.errors.push(format!(
                    "pack {pack} is named by the index but missing from storage"
                ));
                short.insert(*pack, (0, "missing"));
            }
            Some(&size) if size < least((end, count)) => {
                rep.errors.push(format!(
                    "pack {pack} is truncated: {size} bytes, but the index places {count} blob(s) \
                     in it up to byte {end}, so with its header and trailer it has at least {} \
                     bytes",
                    least((end, count))
                ));
                short.insert(*pack, (size, "truncated"));
            }
            Some(_) => {}
        }
    }
    let mut damaged: HashMap<BlobId, String> = HashMap::new();
    if !short.is_empty() {
        for (pack, e) in index.iter() {
            if let Some(&(size, why)) = short.get(&pack) {
                // A truncated pack still holds the blobs before the cut (its header, at the
                // end, is gone: --read-data reports that).
                if u64::from(e.offset) + u64::from(e.stored_len) > size {
                    damaged.insert(e.id, format!("pack {pack} ({why})"));
                }
            }
        }
    }
    // Packs a prune marked are out of the index on purpose until a later prune deletes them.
    let (records, unreadable) = crate::repo::pending::list_readable(repo)?;
    for (_, e) in unreadable {
        rep.errors.push(format!(
            "{e}: which packs it marked for deletion is unknown, so prune refuses to run; \
             `rime repair` removes it and indexes every pack again"
        ));
    }
    let marked: std::collections::HashSet<PackId> =
        records.into_iter().flat_map(|(_, r)| r.packs).collect();
    let mut waiting = 0u64;
    for name in stored.keys() {
        let id = PackId::from_hex(name).ok();
        if id.is_some_and(|id| pack_end.contains_key(&id)) {
            continue;
        }
        if id.is_some_and(|id| marked.contains(&id)) {
            waiting += 1;
            continue;
        }
        // Normal after an interrupted backup: the data is safe, only unreferenced.
        rep.warnings.push(format!(
            "pack {name} is not in any index (left by an interrupted backup?)"
        ));
    }
    if waiting > 0 {
        rep.notes.push(format!(
            "{waiting} pack(s) marked by prune wait for deletion (the next `rime prune` after the grace period removes them)"
        ));
    }
    rep.packs = stored.len() as u64;
    // Every snapshot's trees and data blobs are indexed.
    let seen: Mutex<HashSet<BlobId>> = Mutex::new(HashSet::new());
    let errors = Mutex::new(Vec::new());
    // Blobs of file trees that no index names: each tree is walked once, so the snapshots and
    // paths using them are named afterwards, for every snapshot that shares them.
    let missing: Mutex<HashSet<BlobId>> = Mutex::new(HashSet::new());
    rep.snapshots = snaps.len() as u64;
    for (id, s) in &snaps {
        match s {
            Err(e) => errors.lock().push(format!("snapshot {}: {e}", id.short())),
            Ok(s) if s.source.has_chunk_map() => check_chunk_map(
                repo,
                &index,
                &s.root,
                &format!("snapshot {}", id.short()),
                &seen,
                &errors,
            ),
            Ok(s) => check_tree(
                repo,
                &index,
                &s.root,
                &format!("snapshot {}", id.short()),
                "",
                &seen,
                &errors,
                &missing,
            ),
        }
    }
    rep.trees = seen.lock().len() as u64;
    rep.errors.extend(errors.into_inner());
    if opts.read_data {
        for (id, where_) in read_data(repo, &index, &stored, opts.subset, &mut rep) {
            damaged.entry(id).or_insert(where_);
        }
    }
    let missing = missing.into_inner();
    if !missing.is_empty() {
        // Always said, whatever the detail below manages to name.
        rep.errors.push(format!(
            "{} blob(s) that snapshots use are missing from the index (the snapshots and paths \
             that use them follow)",
            missing.len()
        ));
    }
    if !damaged.is_empty() || !missing.is_empty() {
        affected(repo, &index, &damaged, &missing, &mut rep);
    }
    Ok(rep)
}

/// A volume or stream snapshot: its map, every segment, and every data blob they name.
fn check_chunk_map(
    repo: &Repository,
    index: &MasterIndex,
    root: &BlobId,
    snap: &str,
    seen: &Mutex<HashSet<BlobId>>,
    errors: &Mutex<Vec<String>>,
) {
    use crate::ops::volume::map::{load_map, load_segment, segment_offsets};
    if !seen.lock().insert(*root) {
        return;
    }
    let map = match load_map(repo, index, root) {
        Ok(m) => m,
        Err(e) => {
            errors.lock().push(format!("{snap}: {e}"));
            return;
        }
    };
    let segs: Vec<_> = segment_offsets(&map)
        .filter(|(_, s)| seen.lock().insert(s.id))
        .collect();
    segs.par_iter().for_each(|(seg_off, seg)| {
        let segment = match load_segment(repo, index, seg) {
            Ok(s) => s,
            Err(e) => {
                errors
                    .lock()
                    .push(format!("{snap}: content offset {seg_off}: {e}"));
                return;
            }
        };
        let mut off = *seg_off;
        for part in &segment.parts {
            if let Part::Data { id, len } = part {
                match index.lookup(id) {
                    None => errors.lock().push(format!(
                        "{snap}: content offset {off}: data blob {id} is missing from the index"
                    )),
                    Some((pack, e)) if e.ty != BlobType::Data || e.raw_len != *len => {
                        errors.lock().push(format!(
                            "{snap}: content offset {off}: blob {id} in pack {pack} has the wrong type or length"
                        ))
                    }
                    Some(_) => {}
                }
            }
            off += part.len();
        }
    });
}

#[allow(clippy::too_many_arguments)]
fn check_tree(
    repo: &Repository,
    index: &MasterIndex,
    id: &BlobId,
    snap: &str,
    path: &str,
    seen: &Mutex<HashSet<BlobId>>,
    errors: &Mutex<Vec<String>>,
    missing: &Mutex<HashSet<BlobId>>,
) {
    if !seen.lock().insert(*id) {
        return;
    }
    if index.lookup(id).is_none() {
        missing.lock().insert(*id);
        return;
    }
    let tree = match repo.load_tree(index, id) {
        Ok(t) => t,
        Err(e) => {
            errors
                .lock()
                .push(format!("{snap}: /{path}: tree {}: {e}", id.short()));
            return;
        }
    };
    tree.nodes.par_iter().for_each(|n| {
        // Built only when needed (an error, a subdirectory): most nodes need no path.
        let p = || super::child_path(path, &n.name);
        if n.kind == NodeKind::File {
            for part in &n.content {
                if let Part::Data { id, len } = part {
                    match index.lookup(id) {
                        None => {
                            missing.lock().insert(*id);
                        }
                        Some((pack, e)) if e.ty != BlobType::Data || e.raw_len != *len => {
                            errors.lock().push(format!(
                                "{snap}: /{}: blob {id} in pack {pack} has the wrong type or length",
                                p()
                            ))
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        if let Some(sub) = n.subtree {
            check_tree(repo, index, &sub, snap, &p(), seen, errors, missing);
        }
    });
}

/// `check --read-data` reads packs in windows of at most this many bytes (or one larger blob).
const READ_WINDOW: u64 = 4 << 20;

fn read_data(
    repo: &Repository,
    index: &MasterIndex,
    stored: &HashMap<String, u64>,
    subset: Option<Subset>,
    rep: &mut CheckReport,
) -> HashMap<BlobId, String> {
    let mut by_pack: HashMap<PackId, Vec<crate::format::pack::PackEntry>> = HashMap::new();
    for (pack, e) in index.iter() {
        by_pack.entry(pack).or_default().push(e);
    }
    let names: Vec<&String> = match &subset {
        Some(s) => s.select(stored),
        None => stored.keys().collect(),
    };
    rep.packs_read = names.len() as u64;
    let damaged: Mutex<HashMap<BlobId, String>> = Mutex::new(HashMap::new());
    let results: Vec<(u64, u64, Vec<String>)> = names
        .par_iter()
        .map(|name| {
            let mut errs = Vec::new();
            let id = PackId::from_hex(name).ok();
            // Every indexed blob of a pack that cannot be read or verified is damaged.
            let all_damaged = |why: &str| {
                if let Some(entries) = id.and_then(|id| by_pack.get(&id)) {
                    let mut d = damaged.lock();
                    for e in entries {
                        d.insert(e.id, format!("pack {name} {why}"));
                    }
                }
            };
            // Header first (two small reads), then the blobs in windows of at most
            // READ_WINDOW bytes: memory is threads × window, not threads × pack size.
            let size = stored.get(*name).copied().unwrap_or(0);
            let tail = match read_pack_tail(repo, name, size) {
                Ok(t) => t,
                Err(e) => {
                    all_damaged("has a damaged header");
                    return (0, 0, vec![e.to_string()]);
                }
            };
            let header = tail.entries;
            let mut hasher = blake3::Hasher::new();
            let mut n = tail.bytes.len() as u64;
            let mut checked = 0;
            let mut i = 0;
            while i < header.len() {
                let start = u64::from(header[i].offset);
                let mut j = i + 1;
                while j < header.len()
                    && u64::from(header[j].offset) + u64::from(header[j].stored_len) - start
                        <= READ_WINDOW
                {
                    j += 1;
                }
                let end = u64::from(header[j - 1].offset) + u64::from(header[j - 1].stored_len);
                let data = match repo
                    .storage()
                    .read_range(FileKind::Pack, name, start, end - start)
                {
                    Ok(d) if d.len() as u64 == end - start => d,
                    Ok(d) => {
                        all_damaged("is shorter than its header says");
                        errs.push(format!(
                            "pack {name}: {} bytes at offset {start} where its header places {}",
                            d.len(),
                            end - start
                        ));
                        return (n, checked, errs);
                    }
                    Err(e) => {
                        all_damaged("cannot be read");
                        errs.push(format!("pack {name}: {e}"));
                        return (n, checked, errs);
                    }
                };
                n += data.len() as u64;
                hasher.update(&data);
                for e in &header[i..j] {
                    let s = (u64::from(e.offset) - start) as usize;
                    let stored = &data[s..s + e.stored_len as usize];
                    match open_blob(repo.keys(), e.ty, e.flags, e.raw_len, &e.id, stored) {
                        Ok(_) => checked += 1,
                        Err(err) => {
                            damaged.lock().insert(e.id, format!("pack {name}"));
                            errs.push(format!("pack {name}: {err}"))
                        }
                    }
                }
                i = j;
            }
            hasher.update(&tail.bytes);
            if hasher.finalize().to_hex().as_str() != name.as_str() {
                errs.push(format!(
                    "pack {name}: content does not match its name (corrupted)"
                ));
            }
            if let Ok(id) = PackId::from_hex(name) {
                let want = by_pack.get(&id).cloned().unwrap_or_default();
                for w in not_in_header(want, header.clone()) {
                    damaged.lock().insert(
                        w.id,
                        format!("pack {name} (header disagrees with the index)"),
                    );
                    errs.push(format!(
                        "pack {name}: index entry for blob {} disagrees with the pack header",
                        w.id
                    ));
                }
            }
            (n, checked, errs)
        })
        .collect();
    for (n, c, e) in results {
        rep.bytes_read += n;
        rep.blobs_checked += c;
        rep.errors.extend(e);
    }
    damaged.into_inner()
}

/// Index entries of a pack (`want`) that its header (`have`) does not hold exactly. Both are
/// sorted by offset and compared in one pass: packs hold thousands of small blobs.
fn not_in_header(
    mut want: Vec<crate::format::pack::PackEntry>,
    mut have: Vec<crate::format::pack::PackEntry>,
) -> Vec<crate::format::pack::PackEntry> {
    want.sort_by_key(|e| e.offset);
    have.sort_by_key(|e| e.offset);
    let mut i = 0;
    let mut out = vec![];
    for w in want {
        while i < have.len() && have[i].offset < w.offset {
            i += 1;
        }
        if !have[i..]
            .iter()
            .take_while(|x| x.offset == w.offset)
            .any(|x| *x == w)
        {
            out.push(w);
        }
    }
    out
}

/// Name every snapshot and path whose content uses a damaged blob.
fn affected(
    repo: &Repository,
    index: &MasterIndex,
    damaged: &HashMap<BlobId, String>,
    missing: &HashSet<BlobId>,
    rep: &mut CheckReport,
) {
    const MAX: usize = 1000;
    let Ok(snaps) = repo.list_snapshots() else {
        return;
    };
    let mut out = Vec::new();
    for (sid, s) in snaps
        .iter()
        .filter_map(|(i, s)| s.as_ref().ok().map(|s| (i, s)))
    {
        if s.source.has_chunk_map() {
            let what = format!(
                "snapshot {} ({} {})",
                sid.short(),
                s.source.label(),
                s.paths.join(", ")
            );
            damaged_ranges(repo, index, &s.root, &what, damaged, &mut out);
            continue;
        }
        let mut stack = vec![(s.root, String::new())];
        while let Some((tid, path)) = stack.pop() {
            if out.len() >= MAX {
                break;
            }
            if let Some(where_) = damaged.get(&tid) {
                out.push(format!(
                    "snapshot {}: /{path}: directory tree {} in {where_} is damaged",
                    sid.short(),
                    tid.short()
                ));
                continue;
            }
            if missing.contains(&tid) {
                out.push(format!(
                    "snapshot {}: /{path}: directory tree {tid} is missing from the index",
                    sid.short()
                ));
                continue;
            }
            let Ok(tree) = repo.load_tree(index, &tid) else {
                continue;
            };
            for n in &tree.nodes {
                let p = super::child_path(&path, &n.name);
                for part in &n.content {
                    if let Part::Data { id, .. } = part {
                        if let Some(where_) = damaged.get(id) {
                            out.push(format!(
                                "snapshot {}: /{p}: data blob {} in {where_} is damaged",
                                sid.short(),
                                id.short()
                            ));
                            break;
                        }
                        if missing.contains(id) {
                            out.push(format!(
                                "snapshot {}: /{p}: data blob {id} is missing from the index",
                                sid.short()
                            ));
                            break;
                        }
                    }
                }
                if let Some(sub) = n.subtree {
                    stack.push((sub, p));
                }
            }
        }
    }
    if out.len() >= MAX {
        out.push(format!(
            "(the list of affected snapshots and paths stops after {MAX} lines)"
        ));
    }
    rep.errors.extend(out);
}

/// The damage in a volume, stream or tar-level snapshot, as byte ranges of its content:
/// consecutive damaged blobs of the same pack are one range.
fn damaged_ranges(
    repo: &Repository,
    index: &MasterIndex,
    root: &BlobId,
    what: &str,
    damaged: &HashMap<BlobId, String>,
    out: &mut Vec<String>,
) {
    use crate::ops::volume::map::{load_map, load_segment, segment_offsets};
    if let Some(where_) = damaged.get(root) {
        out.push(format!(
            "{what}: chunk map {} in {where_} is damaged: nothing of it can be restored",
            root.short()
        ));
        return;
    }
    let Ok(map) = load_map(repo, index, root) else {
        return; // reported by the structural check
    };
    let mut run: Option<(u64, u64, &String)> = None;
    let flush = |run: &mut Option<(u64, u64, &String)>, out: &mut Vec<String>| {
        if let Some((a, b, w)) = run.take() {
            out.push(format!(
                "{what}: bytes {a}..{b} ({} bytes) are in {w}, which is damaged",
                b - a
            ));
        }
    };
    for (seg_off, seg) in segment_offsets(&map) {
        if let Some(where_) = damaged.get(&seg.id) {
            flush(&mut run, out);
            out.push(format!(
                "{what}: bytes {seg_off}..{}: map segment {} in {where_} is damaged",
                seg_off + seg.len,
                seg.id.short()
            ));
            continue;
        }
        let Ok(segment) = load_segment(repo, index, seg) else {
            continue;
        };
        let mut off = seg_off;
        for part in &segment.parts {
            let len = part.len();
            match part {
                Part::Data { id, .. } if damaged.contains_key(id) => {
                    let w = &damaged[id];
                    match &mut run {
                        Some((_, end, rw)) if *end == off && *rw == w => *end = off + len,
                        _ => {
                            flush(&mut run, out);
                            run = Some((off, off + len, w));
                        }
                    }
                }
                _ => flush(&mut run, out),
            }
            off += len;
        }
    }
    flush(&mut run, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::pack::PackEntry;
    use crate::format::{BlobFlags, BlobType};

    fn entry(offset: u32, len: u32, id: u8) -> PackEntry {
        PackEntry {
            ty: BlobType::Data,
            flags: BlobFlags::default(),
            offset,
            stored_len: len,
            raw_len: len,
            id: BlobId::from_bytes([id; 32]),
        }
    }

    #[test]
    fn index_entries_missing_or_different_in_the_header_are_found() {
        let header = vec![entry(100, 10, 2), entry(0, 100, 1), entry(110, 5, 3)];
        assert!(not_in_header(header.clone(), header.clone()).is_empty());
        let index = vec![
            entry(110, 5, 3),
            entry(0, 100, 1),
            entry(100, 10, 9), // another blob at that offset
            entry(200, 1, 4),  // beyond the header
            entry(50, 1, 5),   // between entries
        ];
        let mut bad: Vec<u8> = not_in_header(index, header)
            .iter()
            .map(|e| e.id.as_bytes()[0])
            .collect();
        bad.sort();
        assert_eq!(bad, vec![4, 5, 9]);
    }

    #[test]
    fn subsets_parse_and_a_subset_that_selects_nothing_is_refused() {
        assert_eq!(Subset::parse("2/7").unwrap(), Subset::Part { n: 2, m: 7 });
        assert_eq!(Subset::parse("5%").unwrap(), Subset::Fraction(0.05));
        for (s, bytes) in [
            ("10G", 10u64 << 30),
            ("10GB", 10 << 30),
            ("10GiB", 10 << 30),
            ("1.5m", 3 << 19),
            ("4096", 4096),
            ("2T", 2 << 40),
        ] {
            assert_eq!(Subset::parse(s).unwrap(), Subset::Bytes(bytes), "{s}");
        }
        for nothing in ["0%", "0", "0.5", "0G", "0.0%"] {
            let e = Subset::parse(nothing).unwrap_err().to_string();
            assert!(e.contains("selects nothing"), "{nothing}: {e}");
        }
        for bad in [
            "0/5", "5/0", "2/1", "101%", "NaN%", "-1G", "10X", "G", "inf",
        ] {
            assert!(Subset::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
