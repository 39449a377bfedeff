//! Reading the data blobs of a run of chunk-map parts: grouped by pack into coalesced ranges,
//! read in parallel, each blob verified against its id before anyone sees it.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::error::{Error, ErrorKind, Result};
use crate::format::pack::PackEntry;
use crate::format::BlobType;
use crate::id::{BlobId, PackId};
use crate::repo::index::MasterIndex;
use crate::repo::Repository;

/// Receives a verified blob's plaintext with the content offsets it belongs at.
pub(crate) type Deliver<'a> = dyn Fn(&[u64], &[u8]) -> Result<()> + Sync + 'a;

/// A needed blob and every content offset it appears at.
type Uses = (PackEntry, Vec<u64>);

/// Read every data blob among `parts` (content offset, blob id) and call `deliver` with the
/// offsets it belongs at and its verified plaintext. Calls run in parallel, in no set order.
pub(crate) fn fetch(
    repo: &Repository,
    index: &MasterIndex,
    parts: &[(u64, BlobId)],
    deliver: &Deliver<'_>,
) -> Result<()> {
    let mut by_blob: HashMap<BlobId, usize> = HashMap::new();
    let mut by_pack: HashMap<PackId, Vec<Uses>> = HashMap::new();
    let mut slots: Vec<(PackId, usize)> = Vec::new();
    for &(off, id) in parts {
        if let Some(&slot) = by_blob.get(&id) {
            let (pack, i) = slots[slot];
            by_pack.get_mut(&pack).expect("pack recorded")[i]
                .1
                .push(off);
            continue;
        }
        let (pack, e) = index.lookup(&id).ok_or_else(|| {
            Error::new(
                ErrorKind::MissingObject,
                format!(
                    "data blob {id} (content offset {off}) is not in the index{}",
                    index.missing_hint()
                ),
            )
        })?;
        if e.ty != BlobType::Data {
            return Err(Error::corrupt(format!(
                "blob {id} (content offset {off}) is indexed as a tree, expected data"
            )));
        }
        let list = by_pack.entry(pack).or_default();
        list.push((e, vec![off]));
        by_blob.insert(id, slots.len());
        slots.push((pack, list.len() - 1));
    }
    let work = crate::ops::restore::pack_ranges(by_pack);
    crate::ops::with_io_threads(repo, || {
        work.par_iter().try_for_each(|(pack, range)| {
            crate::ops::restore::open_range(
                repo,
                pack,
                range,
                |offsets| format!("blob at content offset {}", offsets[0]),
                |_| 0,
                |offsets, plain| deliver(offsets, plain),
            )
        })
    })
}
