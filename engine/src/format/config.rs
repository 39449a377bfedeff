//! The repository config: the one object readable before a key is open.
//!
//! ```text
//! magic "RIME" | format version u16 LE | body_len u32 LE | body (postcard ConfigBody) | mac [32]
//! ```
//! The version is read first, so a newer repository is refused with a clear error before the
//! body is parsed. The MAC (keyed BLAKE3, config-mac key) is checked once a key file is open.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::format::{from_postcard, to_postcard, Reader, FORMAT_VERSION};
use crate::id::RepoId;

pub const CONFIG_MAGIC: &[u8; 4] = b"RIME";

/// Encryption of a repository. Stored as a postcard enum index: do not reorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encryption {
    None,
    Aes256Gcm,
}

/// Content-defined chunking parameters for file data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
    /// fastcdc v2020 normalization level (0..=3).
    pub normalization: u8,
}

impl ChunkerParams {
    pub const DEFAULT: ChunkerParams = ChunkerParams {
        min_size: 256 * 1024,
        avg_size: 1024 * 1024,
        max_size: 8 * 1024 * 1024,
        normalization: 1,
    };
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigBody {
    pub repo_id: RepoId,
    pub encryption: Encryption,
    pub chunker: ChunkerParams,
    /// Target size of data packs in bytes.
    pub data_pack_size: u32,
    /// Target size of tree (metadata) packs in bytes.
    pub tree_pack_size: u32,
    /// Creation time, Unix seconds.
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub version: u16,
    pub body: ConfigBody,
    pub body_bytes: Vec<u8>,
    pub mac: [u8; 32],
}

pub fn encode(body: &ConfigBody, mac_of: impl FnOnce(&[u8]) -> [u8; 32]) -> Vec<u8> {
    let b = to_postcard(body);
    let mac = mac_of(&b);
    let mut out = Vec::with_capacity(10 + b.len() + 32);
    out.extend_from_slice(CONFIG_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(&b);
    out.extend_from_slice(&mac);
    out
}

pub fn decode(buf: &[u8]) -> Result<Config> {
    let mut r = Reader::new("config", buf);
    if r.take(4)? != CONFIG_MAGIC {
        return Err(Error::corrupt("config: bad magic (not a rime repository)"));
    }
    let version = r.u16()?;
    if version > FORMAT_VERSION {
        return Err(Error::new(
            ErrorKind::UnsupportedVersion,
            format!(
                "repository format version {version} is newer than this rime supports ({FORMAT_VERSION}): upgrade rime"
            ),
        ));
    }
    if version == 0 {
        return Err(Error::corrupt("config: format version 0 is invalid"));
    }
    let len = r.u32()? as usize;
    let body_bytes = r.take(len)?.to_vec();
    let mac = r.id()?;
    r.finish()?;
    let body: ConfigBody = from_postcard("config body", &body_bytes)?;
    let c = &body.chunker;
    if !(64..=1 << 20).contains(&c.min_size)
        || !(256..=4 << 20).contains(&c.avg_size)
        || !(1024..=16 << 20).contains(&c.max_size)
        || c.min_size > c.avg_size
        || c.avg_size > c.max_size
        || c.normalization > 3
    {
        return Err(Error::corrupt(format!(
            "config: invalid chunker parameters {c:?}"
        )));
    }
    if body.data_pack_size < 1 << 16 || body.tree_pack_size < 1 << 16 {
        return Err(Error::corrupt("config: pack size below 64 KiB"));
    }
    Ok(Config {
        version,
        body,
        body_bytes,
        mac,
    })
}
