//! Reading a pack's own header (its trailer and sealed blob list) without reading its blobs:
//! the source of truth when the index is lost (repair) or a pack must be re-indexed (prune).

use crate::error::{Error, Result};
use crate::format::pack::{
    decode_header_plain, decode_trailer, PackEntry, PACK_HEADER_AAD, TRAILER_LEN,
};
use crate::id::PackId;
use crate::repo::Repository;
use crate::storage::FileKind;

/// The entries of a pack, from its header: two range reads (trailer, then header).
pub fn read_pack_header(repo: &Repository, pack: &PackId) -> Result<Vec<PackEntry>> {
    let name = pack.to_hex();
    let ctx = |e: Error| e.within(format!("pack {name}"));
    let size = repo.storage().size(FileKind::Pack, &name).map_err(ctx)?;
    let t = TRAILER_LEN as u64;
    if size < t {
        return Err(ctx(Error::corrupt("shorter than its trailer")));
    }
    let trailer = repo
        .storage()
        .read_range(FileKind::Pack, &name, size - t, t)
        .map_err(ctx)?;
    let hlen = u64::from(decode_trailer(&trailer).map_err(ctx)?);
    let hstart = size
        .checked_sub(t + hlen)
        .ok_or_else(|| ctx(Error::corrupt("header length exceeds the pack")))?;
    let sealed = repo
        .storage()
        .read_range(FileKind::Pack, &name, hstart, hlen)
        .map_err(ctx)?;
    let plain = repo
        .keys()
        .open(PACK_HEADER_AAD, &sealed)
        .ok_or_else(|| ctx(Error::corrupt("header: authentication failed")))?;
    let entries = decode_header_plain(&plain).map_err(ctx)?;
    let used: u64 = entries.iter().map(|e| u64::from(e.stored_len)).sum();
    if used != hstart {
        return Err(ctx(Error::corrupt(format!(
            "header lists {used} bytes of blobs but {hstart} precede it"
        ))));
    }
    Ok(entries)
}
