//! Framing of whole-file objects (index files and snapshots).
//!
//! ```text
//! magic "RMOB" | kind u8 | version u8 (=1) | flags u8 | reserved u8 (=0) | body
//! body = seal(aad = the 8 header bytes || object id [32], payload)
//! payload = zstd(plaintext) if flags bit 0, else plaintext
//! object id = keyed BLAKE3 (object-id key) of the plaintext; the file is named by its hex
//! ```
//! Binding the id into the AAD means a file renamed to another id fails authentication, and
//! the id check after decryption catches corruption in unencrypted repositories too.

use crate::crypto::Keys;
use crate::error::{Error, Result};

pub const OBJECT_MAGIC: &[u8; 4] = b"RMOB";
pub const OBJECT_VERSION: u8 = 1;
pub const HEADER_LEN: usize = 8;
const FLAG_COMPRESSED: u8 = 1;
/// Largest plaintext of one index file or snapshot (a bound against decompression bombs).
pub const MAX_OBJECT_PLAINTEXT: u64 = 1 << 30;

/// Kinds of framed objects. Stored as one byte: do not renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Index = 1,
    Snapshot = 2,
}

impl ObjectKind {
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Index => "index",
            ObjectKind::Snapshot => "snapshot",
        }
    }
}

fn header(kind: ObjectKind, flags: u8) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(OBJECT_MAGIC);
    h[4] = kind as u8;
    h[5] = OBJECT_VERSION;
    h[6] = flags;
    h
}

/// Frame a plaintext; returns (object id, file bytes).
pub fn seal_object(keys: &Keys, kind: ObjectKind, plaintext: &[u8]) -> ([u8; 32], Vec<u8>) {
    let id = keys.object_id(plaintext);
    let compressed = zstd::bulk::compress(plaintext, 3)
        .ok()
        .filter(|c| c.len() < plaintext.len());
    let (flags, payload) = match &compressed {
        Some(c) => (FLAG_COMPRESSED, &c[..]),
        None => (0, plaintext),
    };
    let h = header(kind, flags);
    let mut aad = [0u8; HEADER_LEN + 32];
    aad[..HEADER_LEN].copy_from_slice(&h);
    aad[HEADER_LEN..].copy_from_slice(&id);
    let mut out = h.to_vec();
    out.extend_from_slice(&keys.seal(&aad, payload));
    (id, out)
}

/// Inverse of [`seal_object`], given the id from the file name.
pub fn open_object(keys: &Keys, kind: ObjectKind, id: &[u8; 32], file: &[u8]) -> Result<Vec<u8>> {
    let what = format!("{} {}", kind.name(), hex::encode(id));
    if file.len() < HEADER_LEN || &file[..4] != OBJECT_MAGIC {
        return Err(Error::corrupt(format!(
            "{what}: not a rime object (bad magic or truncated)"
        )));
    }
    if file[4] != kind as u8 {
        return Err(Error::corrupt(format!(
            "{what}: holds object kind {} instead",
            file[4]
        )));
    }
    if file[5] == 0 {
        return Err(Error::corrupt(format!(
            "{what}: object version 0 is invalid"
        )));
    }
    if file[5] != OBJECT_VERSION {
        return Err(super::newer_version(&format!("{what}: object"), file[5]));
    }
    let flags = file[6];
    if flags & !FLAG_COMPRESSED != 0 || file[7] != 0 {
        return Err(Error::corrupt(format!("{what}: unknown flags")));
    }
    let mut aad = [0u8; HEADER_LEN + 32];
    aad[..HEADER_LEN].copy_from_slice(&file[..HEADER_LEN]);
    aad[HEADER_LEN..].copy_from_slice(id);
    let payload = keys.open(&aad, &file[HEADER_LEN..]).ok_or_else(|| {
        Error::corrupt(format!(
            "{what}: authentication failed (corrupted or tampered)"
        ))
    })?;
    let plain = if flags & FLAG_COMPRESSED != 0 {
        let mut out = Vec::new();
        let dec = zstd::stream::read::Decoder::new(&payload[..])
            .map_err(|e| Error::corrupt(format!("{what}: zstd: {e}")))?;
        std::io::Read::read_to_end(
            &mut std::io::Read::take(dec, MAX_OBJECT_PLAINTEXT + 1),
            &mut out,
        )
        .map_err(|e| Error::corrupt(format!("{what}: zstd: {e}")))?;
        if out.len() as u64 > MAX_OBJECT_PLAINTEXT {
            return Err(Error::corrupt(format!(
                "{what}: decompresses to more than {MAX_OBJECT_PLAINTEXT} bytes"
            )));
        }
        out
    } else {
        payload
    };
    if &keys.object_id(&plain) != id {
        return Err(Error::corrupt(format!(
            "{what}: content does not match its id"
        )));
    }
    Ok(plain)
}
