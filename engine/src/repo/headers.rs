//! Reading a pack's own header (its trailer and sealed blob list) without reading its blobs:
//! the source of truth when the index is lost (repair) or a pack must be re-indexed (prune).

use crate::error::{Error, Result};
use crate::format::pack::{decode_sealed_header, decode_trailer, PackEntry, TRAILER_LEN};
use crate::id::PackId;
use crate::repo::Repository;
use crate::storage::FileKind;

/// The entries of a pack, from its header: two range reads (trailer, then header).
pub fn read_pack_header(repo: &Repository, pack: &PackId) -> Result<Vec<PackEntry>> {
    let name = pack.to_hex();
    let size = repo
        .storage()
        .size(FileKind::Pack, &name)
        .map_err(|e| e.within(format!("pack {name}")))?;
    read_pack_tail(repo, &name, size).map(|t| t.entries)
}

/// A pack's header as read from its end.
pub struct PackTail {
    pub entries: Vec<PackEntry>,
    /// The sealed header and the trailer, as stored: the pack's last bytes, from offset
    /// `size - bytes.len()` (which is where the blobs end).
    pub bytes: Vec<u8>,
}

/// [`read_pack_header`] of a pack whose size is known (from a listing), keeping the stored
/// bytes of the header and trailer (a caller hashing the whole pack needs them).
pub fn read_pack_tail(repo: &Repository, name: &str, size: u64) -> Result<PackTail> {
    let ctx = |e: Error| e.within(format!("pack {name}"));
    let t = TRAILER_LEN as u64;
    if size < t {
        return Err(ctx(Error::corrupt("shorter than its trailer")));
    }
    let trailer = repo
        .storage()
        .read_range(FileKind::Pack, name, size - t, t)
        .map_err(ctx)?;
    let hlen = u64::from(decode_trailer(&trailer).map_err(ctx)?);
    let hstart = size
        .checked_sub(t + hlen)
        .ok_or_else(|| ctx(Error::corrupt("header length exceeds the pack")))?;
    let mut sealed = repo
        .storage()
        .read_range(FileKind::Pack, name, hstart, hlen)
        .map_err(ctx)?;
    if sealed.len() as u64 != hlen {
        return Err(ctx(Error::corrupt("header shorter than its trailer says")));
    }
    let entries = decode_sealed_header(repo.keys(), &sealed, hstart).map_err(ctx)?;
    sealed.extend_from_slice(&trailer);
    Ok(PackTail {
        entries,
        bytes: sealed,
    })
}
