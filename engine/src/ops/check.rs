//! `rime check`: the repository's objects agree with each other; with `read_data`, every pack
//! is read, hashed against its name, its header compared with the index, and every blob
//! decrypted and verified. Each problem names the object (and snapshot and path) affected.

use std::collections::{HashMap, HashSet};

use parking_lot::Mutex;
use rayon::prelude::*;

use crate::error::Result;
use crate::format::blob::open_blob;
use crate::format::pack::decode_pack;
use crate::format::tree::{NodeKind, Part};
use crate::format::BlobType;
use crate::id::{BlobId, PackId};
use crate::repo::index::MasterIndex;
use crate::repo::Repository;
use crate::storage::FileKind;

#[derive(Debug, Default, Clone)]
pub struct CheckOptions {
    pub read_data: bool,
}

#[derive(Debug, Default, Clone)]
pub struct CheckReport {
    pub snapshots: u64,
    pub trees: u64,
    pub packs: u64,
    pub blobs_checked: u64,
    pub bytes_read: u64,
    pub errors: Vec<String>,
    /// Findings that do not endanger any snapshot.
    pub warnings: Vec<String>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }
}

pub fn check(repo: &Repository, opts: &CheckOptions) -> Result<CheckReport> {
    let mut rep = CheckReport::default();
    let index = match MasterIndex::load(repo) {
        Ok(i) => i,
        Err(e) => {
            rep.errors.push(format!("index: {e}"));
            MasterIndex::default()
        }
    };
    // Packs named by the index exist and are long enough.
    let stored: HashMap<String, u64> = repo
        .storage()
        .list(FileKind::Pack)?
        .into_iter()
        .map(|o| (o.name, o.size))
        .collect();
    let mut pack_end: HashMap<PackId, u64> = HashMap::new();
    for (pack, e) in index.iter() {
        let end = pack_end.entry(pack).or_default();
        *end = (*end).max(u64::from(e.offset) + u64::from(e.stored_len));
    }
    for (pack, end) in &pack_end {
        match stored.get(&pack.to_hex()) {
            None => rep.errors.push(format!("pack {pack} is named by the index but missing from storage")),
            Some(&size) if size < *end + 8 => rep.errors.push(format!(
                "pack {pack} is truncated: {size} bytes, but the index places blobs up to byte {end}"
            )),
            Some(_) => {}
        }
    }
    for name in stored.keys() {
        if PackId::from_hex(name).map_or(true, |id| !pack_end.contains_key(&id)) {
            // Normal after an interrupted backup: the data is safe, only unreferenced.
            rep.warnings.push(format!(
                "pack {name} is not in any index (left by an interrupted backup?)"
            ));
        }
    }
    rep.packs = stored.len() as u64;
    // Every snapshot's trees and data blobs are indexed.
    let seen: Mutex<HashSet<BlobId>> = Mutex::new(HashSet::new());
    let errors = Mutex::new(Vec::new());
    let snaps = repo.list_snapshots()?;
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
            ),
        }
    }
    rep.trees = seen.lock().len() as u64;
    rep.errors.extend(errors.into_inner());
    if opts.read_data {
        read_data(repo, &index, &stored, &mut rep);
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

fn check_tree(
    repo: &Repository,
    index: &MasterIndex,
    id: &BlobId,
    snap: &str,
    path: &str,
    seen: &Mutex<HashSet<BlobId>>,
    errors: &Mutex<Vec<String>>,
) {
    if !seen.lock().insert(*id) {
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
        let p = format!(
            "{path}{}{}",
            if path.is_empty() { "" } else { "/" },
            String::from_utf8_lossy(&n.name)
        );
        if n.kind == NodeKind::File {
            for part in &n.content {
                if let Part::Data { id, len } = part {
                    match index.lookup(id) {
                        None => errors.lock().push(format!(
                            "{snap}: /{p}: data blob {id} is missing from the index"
                        )),
                        Some((pack, e)) if e.ty != BlobType::Data || e.raw_len != *len => {
                            errors.lock().push(format!(
                            "{snap}: /{p}: blob {id} in pack {pack} has the wrong type or length"
                        ))
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        if let Some(sub) = n.subtree {
            check_tree(repo, index, &sub, snap, &p, seen, errors);
        }
    });
}

fn read_data(
    repo: &Repository,
    index: &MasterIndex,
    stored: &HashMap<String, u64>,
    rep: &mut CheckReport,
) {
    let mut by_pack: HashMap<PackId, Vec<crate::format::pack::PackEntry>> = HashMap::new();
    for (pack, e) in index.iter() {
        by_pack.entry(pack).or_default().push(e);
    }
    let names: Vec<&String> = stored.keys().collect();
    let results: Vec<(u64, u64, Vec<String>)> = names
        .par_iter()
        .map(|name| {
            let mut errs = Vec::new();
            let data = match repo.storage().read(FileKind::Pack, name) {
                Ok(d) => d,
                Err(e) => return (0, 0, vec![format!("pack {name}: {e}")]),
            };
            let n = data.len() as u64;
            if blake3::hash(&data).to_hex().as_str() != name.as_str() {
                errs.push(format!(
                    "pack {name}: content does not match its name (corrupted)"
                ));
            }
            let header = match decode_pack(repo.keys(), &data) {
                Ok(h) => h,
                Err(e) => {
                    errs.push(format!("pack {name}: {e}"));
                    return (n, 0, errs);
                }
            };
            let mut checked = 0;
            for e in &header {
                let s = e.offset as usize;
                let stored = &data[s..s + e.stored_len as usize];
                match open_blob(repo.keys(), e.ty, e.flags, e.raw_len, &e.id, stored) {
                    Ok(_) => checked += 1,
                    Err(err) => errs.push(format!("pack {name}: {err}")),
                }
            }
            if let Ok(id) = PackId::from_hex(name) {
                let mut want: Vec<_> = by_pack.get(&id).cloned().unwrap_or_default();
                want.sort_by_key(|e| e.offset);
                let mut have = header.clone();
                have.sort_by_key(|e| e.offset);
                for w in &want {
                    if !have.contains(w) {
                        errs.push(format!(
                            "pack {name}: index entry for blob {} disagrees with the pack header",
                            w.id
                        ));
                    }
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
}
