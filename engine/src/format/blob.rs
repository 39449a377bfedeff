//! Blob types and the sealing of one blob (compress, then encrypt with its identity as AAD).

use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::id::BlobId;

/// What a blob holds. Stored as one byte: do not renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlobType {
    /// A chunk of file, volume or stream data.
    Data = 0,
    /// An encoded directory tree.
    Tree = 1,
}

impl BlobType {
    pub fn from_u8(b: u8) -> Result<BlobType> {
        match b {
            0 => Ok(BlobType::Data),
            1 => Ok(BlobType::Tree),
            _ => Err(Error::corrupt(format!("unknown blob type {b}"))),
        }
    }
}

/// zstd level backups compress data and tree blobs with unless asked otherwise.
///
/// Why 2 and not zstd's usual 3: compression is the largest part of a backup's CPU time. On
/// 1.93 GiB of typical data (the kernel source as a tar plus a tar of shared libraries), on an
/// idle machine, two runs each: level 3 used 8.8-9.9 s of user CPU for a 405 MiB repository,
/// level 2 7.9 s (15% less) for 428 MiB (5.7% more), level 1 6.1-6.7 s (31% less) for 449 MiB
/// (11% more). Level 2 takes the cheaper half of that trade; `--compression` chooses any level
/// from 0 to 22 per backup (the level is not recorded: every level reads back the same).
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 2;

/// Largest plaintext of one data blob: the chunkers never cut more than 16 MiB.
pub const MAX_DATA_BLOB: u32 = 16 << 20;
/// Largest plaintext of one tree blob (a directory of several million entries).
pub const MAX_TREE_BLOB: u32 = 1 << 30;

/// Refuse lengths no writer produces, before anything is allocated for them.
pub fn check_raw_len(ty: BlobType, raw_len: u32) -> Result<()> {
    let max = match ty {
        BlobType::Data => MAX_DATA_BLOB,
        BlobType::Tree => MAX_TREE_BLOB,
    };
    if raw_len > max {
        return Err(Error::corrupt(format!(
            "{ty:?} blob claims {raw_len} bytes, more than the maximum {max}"
        )));
    }
    Ok(())
}

/// Flags of a stored blob. Bit 0: payload is zstd-compressed. Other bits must be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlobFlags(pub u8);

impl BlobFlags {
    pub const COMPRESSED: u8 = 1;

    pub fn compressed(self) -> bool {
        self.0 & Self::COMPRESSED != 0
    }

    pub fn from_u8(b: u8) -> Result<BlobFlags> {
        if b & !Self::COMPRESSED != 0 {
            return Err(Error::corrupt(format!("unknown blob flags {b:#04x}")));
        }
        Ok(BlobFlags(b))
    }
}

/// Additional data bound into each blob's AEAD: type, flags, plaintext length and id, so a blob
/// cannot be moved to another id, type or length without failing authentication.
pub fn blob_aad(ty: BlobType, flags: BlobFlags, raw_len: u32, id: &BlobId) -> [u8; 38] {
    let mut aad = [0u8; 38];
    aad[0] = ty as u8;
    aad[1] = flags.0;
    aad[2..6].copy_from_slice(&raw_len.to_le_bytes());
    aad[6..].copy_from_slice(id.as_bytes());
    aad
}

/// A blob ready to be appended to a pack.
pub struct SealedBlob {
    pub id: BlobId,
    pub ty: BlobType,
    pub flags: BlobFlags,
    pub raw_len: u32,
    pub bytes: Vec<u8>,
}

/// Compress (keeping the raw bytes when zstd does not save at least 1/32) and encrypt.
pub fn seal_blob(
    keys: &Keys,
    ty: BlobType,
    id: BlobId,
    plaintext: &[u8],
    compress: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> SealedBlob {
    let raw_len = u32::try_from(plaintext.len()).expect(
        "blobs are below 4 GiB: chunks are at most 16 MiB, trees are bounded by the walker",
    );
    let compressed =
        compress(plaintext).filter(|c| c.len() < plaintext.len() - plaintext.len() / 32);
    let (flags, payload): (BlobFlags, std::borrow::Cow<[u8]>) = match compressed {
        Some(c) => (BlobFlags(BlobFlags::COMPRESSED), c.into()),
        None => (BlobFlags(0), plaintext.into()),
    };
    let aad = blob_aad(ty, flags, raw_len, &id);
    let bytes = keys.seal(&aad, &payload);
    SealedBlob {
        id,
        ty,
        flags,
        raw_len,
        bytes,
    }
}

thread_local! {
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompress into a buffer of exactly `raw_len` bytes, reusing one zstd context per thread
/// (creating a context costs more than decompressing a small chunk).
fn decompress(payload: &[u8], raw_len: usize) -> std::io::Result<Vec<u8>> {
    if raw_len > MAX_DATA_BLOB as usize {
        // Large trees: let the buffer grow with what zstd really produces.
        let mut out = Vec::new();
        let dec = zstd::stream::read::Decoder::new(payload)?;
        std::io::Read::read_to_end(&mut std::io::Read::take(dec, raw_len as u64 + 1), &mut out)?;
        return Ok(out);
    }
    let mut out = Vec::with_capacity(raw_len);
    decompress_into(payload, &mut out)?;
    Ok(out)
}

/// Decompress one frame into `out` (no larger than it) with this thread's zstd context;
/// returns the bytes written.
fn decompress_into<C: zstd::zstd_safe::WriteBuf + ?Sized>(
    payload: &[u8],
    out: &mut C,
) -> std::io::Result<usize> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new()?);
        }
        d.as_mut()
            .expect("set above")
            .decompress_to_buffer(payload, out)
    })
}

/// Decrypt, decompress and verify a stored blob against its id. Every failure names the blob.
pub fn open_blob(
    keys: &Keys,
    ty: BlobType,
    flags: BlobFlags,
    raw_len: u32,
    id: &BlobId,
    stored: &[u8],
) -> Result<Vec<u8>> {
    let payload = authenticate(keys, ty, flags, raw_len, id, stored)?;
    let plain = if flags.compressed() {
        // The output buffer is exactly raw_len bytes: a lying frame cannot exhaust memory.
        decompress(&payload, raw_len as usize)
            .map_err(|e| Error::corrupt(format!("blob {id}: zstd: {e}")))?
    } else {
        payload
    };
    verify(keys, id, raw_len, &plain)?;
    Ok(plain)
}

/// A blob's verified plaintext, in the caller's buffer or in its own.
pub enum Plain<'b> {
    InBuffer(&'b [u8]),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Plain<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Plain::InBuffer(b) => b,
            Plain::Owned(v) => v,
        }
    }
}

/// Alignment [`open_blob_into`] places plaintext for: the page size, which direct I/O needs.
pub const PLAIN_ALIGN: usize = 4096;

/// [`open_blob`] for restores: a compressed data blob is decompressed into `scratch` (grown as
/// needed and reused from call to call, so no fresh pages per blob) at an address congruent to
/// `phase` modulo [`PLAIN_ALIGN`]. A caller writing the plaintext at a file offset with that
/// remainder can then hand its aligned middle to direct I/O without copying it. Blobs stored
/// uncompressed, and large trees, come back in their own buffer.
pub fn open_blob_into<'b>(
    keys: &Keys,
    ty: BlobType,
    flags: BlobFlags,
    raw_len: u32,
    id: &BlobId,
    stored: &[u8],
    scratch: &'b mut Vec<u8>,
    phase: u64,
) -> Result<Plain<'b>> {
    if !flags.compressed() || raw_len > MAX_DATA_BLOB {
        return open_blob(keys, ty, flags, raw_len, id, stored).map(Plain::Owned);
    }
    let payload = authenticate(keys, ty, flags, raw_len, id, stored)?;
    let len = raw_len as usize;
    if scratch.len() < len + PLAIN_ALIGN {
        scratch.resize(len + PLAIN_ALIGN, 0);
    }
    let at = (phase as usize).wrapping_sub(scratch.as_ptr() as usize) % PLAIN_ALIGN;
    let out = &mut scratch[at..at + len];
    let n = decompress_into(&payload, out)
        .map_err(|e| Error::corrupt(format!("blob {id}: zstd: {e}")))?;
    let plain = &scratch[at..at + n];
    verify(keys, id, raw_len, plain)?;
    Ok(Plain::InBuffer(plain))
}

/// Check the recorded length and decrypt: the payload as stored (compressed or not).
fn authenticate(
    keys: &Keys,
    ty: BlobType,
    flags: BlobFlags,
    raw_len: u32,
    id: &BlobId,
    stored: &[u8],
) -> Result<Vec<u8>> {
    check_raw_len(ty, raw_len)?;
    let aad = blob_aad(ty, flags, raw_len, id);
    keys.open(&aad, stored).ok_or_else(|| {
        Error::corrupt(format!(
            "blob {id}: authentication failed (corrupted or tampered)"
        ))
    })
}

/// The plaintext has the recorded length and hashes to the blob's id.
fn verify(keys: &Keys, id: &BlobId, raw_len: u32, plain: &[u8]) -> Result<()> {
    if plain.len() != raw_len as usize {
        return Err(Error::corrupt(format!(
            "blob {id}: length {} does not match the recorded {raw_len}",
            plain.len()
        )));
    }
    if keys.blob_id(plain) != *id {
        return Err(Error::corrupt(format!(
            "blob {id}: content does not match its id"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterSecret;

    fn sealed(keys: &Keys, plain: &[u8]) -> SealedBlob {
        let id = keys.blob_id(plain);
        seal_blob(keys, BlobType::Data, id, plain, |d| {
            zstd::bulk::compress(d, 1).ok()
        })
    }

    /// The plaintext lands at the asked remainder of the page size, whatever the buffer's own
    /// address, equals `open_blob`'s, and a damaged blob is still refused.
    #[test]
    fn open_blob_into_places_plaintext_at_the_phase_and_still_verifies() {
        let keys = Keys::derive(&MasterSecret::random(), true);
        let plain: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8 / 3).collect();
        let b = sealed(&keys, &plain);
        assert!(b.flags.compressed());
        let mut scratch = Vec::new();
        for phase in [0u64, 1, 4095, 4096 + 17, 1 << 40] {
            let got = open_blob_into(
                &keys,
                b.ty,
                b.flags,
                b.raw_len,
                &b.id,
                &b.bytes,
                &mut scratch,
                phase,
            )
            .unwrap();
            assert!(matches!(got, Plain::InBuffer(_)));
            assert_eq!(
                got.as_ptr() as u64 % PLAIN_ALIGN as u64,
                phase % PLAIN_ALIGN as u64
            );
            assert_eq!(&*got, &plain[..]);
        }
        let mut bad = b.bytes.clone();
        bad[40] ^= 1;
        let e = open_blob_into(
            &keys,
            b.ty,
            b.flags,
            b.raw_len,
            &b.id,
            &bad,
            &mut scratch,
            0,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("authentication failed"), "{e}");
        // A raw length that lies (shorter than the frame) is an error, not a truncated blob.
        let short = open_blob_into(
            &keys,
            b.ty,
            b.flags,
            b.raw_len - 1,
            &b.id,
            &b.bytes,
            &mut scratch,
            0,
        );
        assert!(short.is_err());
        // Stored raw: its own buffer, same bytes.
        let id = keys.blob_id(b"tiny");
        let raw = seal_blob(&keys, BlobType::Data, id, b"tiny", |_| None);
        let got = open_blob_into(
            &keys,
            raw.ty,
            raw.flags,
            raw.raw_len,
            &raw.id,
            &raw.bytes,
            &mut scratch,
            0,
        )
        .unwrap();
        assert!(matches!(got, Plain::Owned(_)));
        assert_eq!(&*got, b"tiny");
    }
}
