//! Prune's "pending deletion" records (`pending/<random id>`, format-spec/SPEC.md section 9):
//! packs that no index names any more and that a later prune deletes once every operation that
//! might still use them has ended.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::format::{from_postcard, to_postcard};
use crate::id::{LockId, PackId};
use crate::repo::Repository;
use crate::storage::FileKind;

pub const PENDING_MAGIC: &[u8; 4] = b"RMPD";
pub const PENDING_VERSION: u8 = 1;
const AAD: &[u8] = b"rime pending v1";

/// Record plaintext: magic "RMPD" | version u8 | postcard PendingRecord.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingRecord {
    /// Unix seconds (of the pruning host) when the packs were marked.
    pub time: i64,
    /// False while the prune that writes it is still rewriting the index: an incomplete
    /// record (left by a killed prune) is never acted on; the next prune marks its packs anew.
    pub complete: bool,
    /// Locks that existed right after the index stopped naming the packs: the operations that
    /// may have loaded an index that still did. The packs are deleted only when all are gone.
    pub locks: Vec<LockId>,
    pub packs: Vec<PackId>,
}

impl PendingRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = PENDING_MAGIC.to_vec();
        out.push(PENDING_VERSION);
        out.extend_from_slice(&to_postcard(self));
        out
    }

    pub fn decode(buf: &[u8]) -> Result<PendingRecord> {
        if buf.len() < 5 || &buf[..4] != PENDING_MAGIC {
            return Err(Error::corrupt("pending record: bad magic"));
        }
        if buf[4] != PENDING_VERSION {
            return Err(crate::format::newer_version("pending record", buf[4]));
        }
        from_postcard("pending record", &buf[5..])
    }
}

/// Write a record under a random name; returns the name.
pub fn write(repo: &Repository, rec: &PendingRecord) -> Result<String> {
    // Repositories created before `pending/` existed lack the directory; `create` adds it.
    repo.storage().create()?;
    let name = LockId::random().to_hex();
    let sealed = repo.keys().seal(AAD, &rec.encode());
    repo.storage().write(FileKind::Pending, &name, &sealed)?;
    Ok(name)
}

/// Every record, by name. An unreadable record is an error: prune cannot know which packs it
/// marked, and deleting around it blindly is worse. `rime repair` removes such records.
pub fn list(repo: &Repository) -> Result<Vec<(String, PendingRecord)>> {
    let (records, unreadable) = list_readable(repo)?;
    match unreadable.into_iter().next() {
        None => Ok(records),
        Some((_, e)) => Err(Error::new(
            e.kind(),
            format!("{e} (remove it with `rime repair`, which indexes every pack again)"),
        )),
    }
}

/// Records by name, and the names of records that cannot be read with why.
pub type Records = (Vec<(String, PendingRecord)>, Vec<(String, Error)>);

/// Listings of `pending/` before [`list_readable`] gives up on records that keep vanishing.
const MAX_LISTINGS: usize = 10;

/// Every record that can be read, by name, and the names of those that cannot (with why).
///
/// A record listed and gone when read was removed meanwhile: either a ripe one deleted, or a
/// prune's incomplete record replaced by its complete one (written before the incomplete one is
/// removed, SPEC 9.3 step 7). A listing taken before the complete record existed does not name
/// it, so `pending/` is listed again until one listing reads whole: a backup checking the
/// records after its snapshot must never miss a mark that way, or it leaves packs its snapshot
/// needs unindexed, for a later prune to delete.
pub fn list_readable(repo: &Repository) -> Result<Records> {
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    let mut seen = HashSet::new();
    for _ in 0..MAX_LISTINGS {
        let names = match repo.storage().list(FileKind::Pending) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::MissingObject | ErrorKind::NotFound) => {
                return Ok((out, unreadable))
            }
            Err(e) => return Err(e),
        };
        let mut vanished = false;
        for o in names {
            if !seen.insert(o.name.clone()) {
                continue;
            }
            match read_one(repo, &o.name)? {
                None => vanished = true,
                Some(Ok(rec)) => out.push((o.name, rec)),
                Some(Err(e)) => unreadable.push((o.name, e)),
            }
        }
        if !vanished {
            return Ok((out, unreadable));
        }
    }
    Err(Error::new(
        ErrorKind::Unavailable,
        format!(
            "pending records of {} keep vanishing while being read (prunes replacing them?): try again",
            repo.storage().location()
        ),
    ))
}

/// One record: `None` if it is gone, else the record or why it cannot be read.
fn read_one(repo: &Repository, name: &str) -> Result<Option<Result<PendingRecord>>> {
    let bytes = match repo.storage().read(FileKind::Pending, name) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::MissingObject => return Ok(None),
        Err(e) => return Err(e),
    };
    let decoded = repo
        .keys()
        .open(AAD, &bytes)
        .ok_or_else(|| Error::corrupt(format!("pending record {name}: authentication failed")))
        .and_then(|plain| {
            PendingRecord::decode(&plain).map_err(|e| e.within(format!("pending record {name}")))
        });
    Ok(Some(decoded))
}

/// Called by a backup after it wrote its snapshot: packs that the index it loaded at its start
/// names, or that it wrote itself, but that a prune has marked since (a prune that did not see
/// the snapshot yet finds them unused), may hold blobs the snapshot needs. Index them again
/// (from their headers), so the snapshot is restorable and the packs are never deleted; the
/// next prune marks them again if nothing needs them. Returns how many packs were re-indexed.
pub fn protect_marked(
    repo: &Repository,
    loaded: &crate::repo::index::MasterIndex,
    written: &[PackId],
) -> Result<usize> {
    let (records, unreadable) = list_readable(repo)?;
    if records.is_empty() && unreadable.is_empty() {
        return Ok(0);
    }
    let known: HashSet<PackId> = loaded.packs().iter().chain(written).copied().collect();
    let mut candidates: Vec<PackId> = records.into_iter().flat_map(|(_, r)| r.packs).collect();
    if !unreadable.is_empty() {
        // Which packs that record marked is unknown: every pack this backup may use that the
        // index no longer names could be one of them. The snapshot is already written, so
        // this backup must not fail over a record it cannot read; check reports the record.
        let now = crate::repo::index::MasterIndex::load(repo)?;
        let named: HashSet<PackId> = now.packs().iter().copied().collect();
        candidates.extend(known.iter().filter(|p| !named.contains(p)));
    }
    let mut seen = HashSet::new();
    let mut packs = Vec::new();
    {
        for p in candidates {
            if !known.contains(&p) || !seen.insert(p) {
                continue;
            }
            match crate::repo::headers::read_pack_header(repo, &p) {
                Ok(blobs) if !blobs.is_empty() => {
                    packs.push(crate::format::index::IndexPack { id: p, blobs })
                }
                // Gone or unreadable: nothing this backup could have used from it (a pack is
                // deleted only after every backup that loaded an index naming it has ended).
                _ => {}
            }
        }
    }
    let n = packs.len();
    if n == 0 {
        return Ok(0);
    }
    // A file of a new name: one identical to a file a prune loaded would be removed with it.
    // Should every order of these packs name an existing file, one more pack this backup
    // knows is added (indexing it again is harmless) until the name is new.
    let mut spares = known.iter().filter(|p| !seen.contains(*p));
    while crate::repo::index::write_new_index_file(repo, packs.clone())?.is_none() {
        let spare = spares.find_map(|p| match crate::repo::headers::read_pack_header(repo, p) {
            Ok(blobs) if !blobs.is_empty() => {
                Some(crate::format::index::IndexPack { id: *p, blobs })
            }
            _ => None,
        });
        match spare {
            Some(s) => packs.push(s),
            None => {
                return Err(Error::new(
                    ErrorKind::Io,
                    "cannot index marked packs again under a new index file name: run `rime repair`, which indexes every pack again",
                ))
            }
        }
    }
    Ok(n)
}
