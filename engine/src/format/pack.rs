//! Pack files: concatenated sealed blobs, then a sealed header listing them, then a trailer.
//!
//! ```text
//! blob 0 | blob 1 | ... | sealed header | header_len: u32 LE | magic "RPK1"
//! header plaintext = version u8 (=1) | count u32 LE | count x entry (42 bytes):
//!     type u8 | flags u8 | stored_len u32 LE | raw_len u32 LE | blob id [32]
//! ```
//! Blob offsets are implicit: the sum of the preceding stored lengths. The header lets `repair`
//! rebuild the index from packs alone.

use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::format::{BlobFlags, BlobType, Reader};
use crate::id::BlobId;

pub const PACK_MAGIC: &[u8; 4] = b"RPK1";
pub const PACK_HEADER_VERSION: u8 = 1;
pub const HEADER_ENTRY_LEN: usize = 42;
pub const TRAILER_LEN: usize = 8;
/// AEAD additional data of pack headers.
pub const PACK_HEADER_AAD: &[u8] = b"rime pack header v1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackEntry {
    pub ty: BlobType,
    pub flags: BlobFlags,
    pub offset: u32,
    pub stored_len: u32,
    pub raw_len: u32,
    pub id: BlobId,
}

/// The length of a header plaintext listing `count` blobs.
pub fn header_plain_len(count: usize) -> usize {
    5 + count * HEADER_ENTRY_LEN
}

pub fn encode_header_plain(entries: &[PackEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_plain_len(entries.len()));
    out.push(PACK_HEADER_VERSION);
    out.extend_from_slice(
        &u32::try_from(entries.len())
            .expect("fewer than 2^32 blobs")
            .to_le_bytes(),
    );
    for e in entries {
        out.push(e.ty as u8);
        out.push(e.flags.0);
        out.extend_from_slice(&e.stored_len.to_le_bytes());
        out.extend_from_slice(&e.raw_len.to_le_bytes());
        out.extend_from_slice(e.id.as_bytes());
    }
    out
}

pub fn decode_header_plain(buf: &[u8]) -> Result<Vec<PackEntry>> {
    let mut r = Reader::new("pack header", buf);
    super::check_version("pack header", r.u8()?, PACK_HEADER_VERSION)?;
    let count = r.u32()? as usize;
    r.check_count(count, HEADER_ENTRY_LEN)?;
    let mut entries = Vec::with_capacity(count);
    let mut offset: u64 = 0;
    for _ in 0..count {
        let ty = BlobType::from_u8(r.u8()?)?;
        let flags = BlobFlags::from_u8(r.u8()?)?;
        let stored_len = r.u32()?;
        let raw_len = r.u32()?;
        crate::format::blob::check_raw_len(ty, raw_len)?;
        let id = BlobId(r.id()?);
        let off =
            u32::try_from(offset).map_err(|_| Error::corrupt("pack header: blobs exceed 4 GiB"))?;
        entries.push(PackEntry {
            ty,
            flags,
            offset: off,
            stored_len,
            raw_len,
            id,
        });
        offset += u64::from(stored_len);
    }
    r.finish()?;
    Ok(entries)
}

/// The header as written: sealed plaintext, then the trailer.
pub fn encode_header(keys: &Keys, entries: &[PackEntry]) -> Vec<u8> {
    let mut out = keys.seal(PACK_HEADER_AAD, &encode_header_plain(entries));
    let len = u32::try_from(out.len()).expect("pack header below 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(PACK_MAGIC);
    out
}

/// Parse the trailer (last 8 bytes of a pack) into the sealed header's length.
pub fn decode_trailer(trailer: &[u8]) -> Result<u32> {
    if trailer.len() != TRAILER_LEN || &trailer[4..] != PACK_MAGIC {
        return Err(Error::corrupt(
            "pack trailer: bad magic (not a rime pack, or truncated)",
        ));
    }
    Ok(u32::from_le_bytes(trailer[..4].try_into().unwrap()))
}

/// Decode the full header of a pack given the whole pack file, checking that the blobs it
/// lists exactly fill the space before it.
pub fn decode_pack(keys: &Keys, pack: &[u8]) -> Result<Vec<PackEntry>> {
    if pack.len() < TRAILER_LEN {
        return Err(Error::corrupt("pack shorter than its trailer"));
    }
    let hlen = decode_trailer(&pack[pack.len() - TRAILER_LEN..])? as usize;
    let hstart = pack
        .len()
        .checked_sub(TRAILER_LEN + hlen)
        .ok_or_else(|| Error::corrupt("pack header length exceeds the pack"))?;
    decode_sealed_header(keys, &pack[hstart..pack.len() - TRAILER_LEN], hstart as u64)
}

/// Open and decode a pack's sealed header (the bytes between the blobs and the trailer), and
/// check that the blobs it lists exactly fill the `blobs_end` bytes before it. Shared by
/// [`decode_pack`] (whole pack in memory) and the ranged header reads of `repo::headers`.
pub fn decode_sealed_header(keys: &Keys, sealed: &[u8], blobs_end: u64) -> Result<Vec<PackEntry>> {
    let plain = keys
        .open(PACK_HEADER_AAD, sealed)
        .ok_or_else(|| Error::corrupt("pack header: authentication failed"))?;
    let entries = decode_header_plain(&plain)?;
    let used: u64 = entries.iter().map(|e| u64::from(e.stored_len)).sum();
    if used != blobs_end {
        return Err(Error::corrupt(format!(
            "pack header lists {used} bytes of blobs but {blobs_end} precede it"
        )));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_truncation() {
        let e = vec![
            PackEntry {
                ty: BlobType::Data,
                flags: BlobFlags(1),
                offset: 0,
                stored_len: 100,
                raw_len: 300,
                id: BlobId([1; 32]),
            },
            PackEntry {
                ty: BlobType::Tree,
                flags: BlobFlags(0),
                offset: 100,
                stored_len: 5,
                raw_len: 5,
                id: BlobId([2; 32]),
            },
        ];
        let enc = encode_header_plain(&e);
        assert_eq!(decode_header_plain(&enc).unwrap(), e);
        for n in 0..enc.len() {
            assert!(decode_header_plain(&enc[..n]).is_err());
        }
    }

    /// Found by fuzzing: a forged header claiming a 4 GiB blob made restore allocate 4 GiB.
    #[test]
    fn absurd_raw_len_is_refused_before_allocating() {
        let e = PackEntry {
            ty: BlobType::Data,
            flags: BlobFlags(1),
            offset: 0,
            stored_len: 45,
            raw_len: 0xffff_ff00,
            id: BlobId([3; 32]),
        };
        let err = decode_header_plain(&encode_header_plain(&[e])).unwrap_err();
        assert!(err.to_string().contains("more than the maximum"), "{err}");
    }
}
