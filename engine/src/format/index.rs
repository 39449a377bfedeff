//! Index files: which blob is in which pack, where.
//!
//! ```text
//! version u8 (=1)
//! supersedes_count u32 LE | supersedes_count x index id [32]
//! pack_count u32 LE
//! per pack: pack id [32] | blob_count u32 LE | blob_count x entry (46 bytes):
//!     type u8 | flags u8 | offset u32 LE | stored_len u32 LE | raw_len u32 LE | blob id [32]
//! ```
//! The payload is then framed as an object (see [`crate::format::object`]).

use crate::error::{Error, Result};
use crate::format::pack::PackEntry;
use crate::format::{BlobFlags, BlobType, Reader};
use crate::id::{BlobId, IndexId, PackId};

pub const INDEX_VERSION: u8 = 1;
const ENTRY_LEN: usize = 46;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexFile {
    /// Index files whose content this one includes (written by repair/prune; ignored otherwise).
    pub supersedes: Vec<IndexId>,
    pub packs: Vec<IndexPack>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexPack {
    pub id: PackId,
    pub blobs: Vec<PackEntry>,
}

impl IndexFile {
    pub fn encode(&self) -> Vec<u8> {
        let n: usize = self
            .packs
            .iter()
            .map(|p| 36 + p.blobs.len() * ENTRY_LEN)
            .sum();
        let mut out = Vec::with_capacity(9 + self.supersedes.len() * 32 + n);
        out.push(INDEX_VERSION);
        out.extend_from_slice(&(self.supersedes.len() as u32).to_le_bytes());
        for s in &self.supersedes {
            out.extend_from_slice(s.as_bytes());
        }
        out.extend_from_slice(&(self.packs.len() as u32).to_le_bytes());
        for p in &self.packs {
            out.extend_from_slice(p.id.as_bytes());
            out.extend_from_slice(&(p.blobs.len() as u32).to_le_bytes());
            for b in &p.blobs {
                out.push(b.ty as u8);
                out.push(b.flags.0);
                out.extend_from_slice(&b.offset.to_le_bytes());
                out.extend_from_slice(&b.stored_len.to_le_bytes());
                out.extend_from_slice(&b.raw_len.to_le_bytes());
                out.extend_from_slice(b.id.as_bytes());
            }
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Result<IndexFile> {
        let mut r = Reader::new("index", buf);
        super::check_version("index", r.u8()?, INDEX_VERSION)?;
        let ns = r.u32()? as usize;
        r.check_count(ns, 32)?;
        let supersedes = (0..ns)
            .map(|_| r.id().map(IndexId))
            .collect::<Result<_>>()?;
        let np = r.u32()? as usize;
        r.check_count(np, 36)?;
        let mut packs = Vec::with_capacity(np);
        for _ in 0..np {
            let id = PackId(r.id()?);
            let nb = r.u32()? as usize;
            r.check_count(nb, ENTRY_LEN)?;
            let mut blobs = Vec::with_capacity(nb);
            for _ in 0..nb {
                let ty = BlobType::from_u8(r.u8()?)?;
                let flags = BlobFlags::from_u8(r.u8()?)?;
                let offset = r.u32()?;
                let stored_len = r.u32()?;
                let raw_len = r.u32()?;
                crate::format::blob::check_raw_len(ty, raw_len)?;
                let bid = BlobId(r.id()?);
                if offset.checked_add(stored_len).is_none() {
                    return Err(Error::corrupt(format!(
                        "index: blob {bid} extends past 4 GiB"
                    )));
                }
                blobs.push(PackEntry {
                    ty,
                    flags,
                    offset,
                    stored_len,
                    raw_len,
                    id: bid,
                });
            }
            packs.push(IndexPack { id, blobs });
        }
        r.finish()?;
        Ok(IndexFile { supersedes, packs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let f = IndexFile {
            supersedes: vec![IndexId([9; 32])],
            packs: vec![IndexPack {
                id: PackId([3; 32]),
                blobs: vec![PackEntry {
                    ty: BlobType::Tree,
                    flags: BlobFlags(1),
                    offset: 7,
                    stored_len: 10,
                    raw_len: 20,
                    id: BlobId([4; 32]),
                }],
            }],
        };
        let enc = f.encode();
        assert_eq!(IndexFile::decode(&enc).unwrap(), f);
        for n in 0..enc.len() {
            assert!(IndexFile::decode(&enc[..n]).is_err(), "prefix {n} decoded");
        }
    }
}
