//! Key files: the master secret wrapped under a password.
//!
//! ```text
//! magic "RMKY" | version u8 (=1) | postcard KeyFileBody
//! ```
//! `wrapped` is `nonce || AES-256-GCM(argon2id(password, salt), master secret) || tag` with
//! AAD = "rime key file v1" || repository id, or the bare 32-byte secret when `kdf` is None
//! (repositories created with `--encryption none`).

use serde::{Deserialize, Serialize};

use crate::crypto::KdfParams;
use crate::error::{Error, Result};
use crate::format::{from_postcard, to_postcard};

pub const KEYFILE_MAGIC: &[u8; 4] = b"RMKY";
pub const KEYFILE_VERSION: u8 = 1;
pub const WRAP_AAD_PREFIX: &[u8] = b"rime key file v1";
/// Largest Argon2id memory a key file may ask for (1 GiB); more is refused as hostile.
pub const MAX_KDF_MEMORY_KIB: u32 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFileBody {
    pub kdf: Option<KdfParams>,
    pub salt: [u8; 16],
    #[serde(with = "serde_bytes")]
    pub wrapped: Vec<u8>,
    /// Unix seconds.
    pub created: i64,
    pub hostname: String,
    pub username: String,
}

pub fn encode(body: &KeyFileBody) -> Vec<u8> {
    let mut out = KEYFILE_MAGIC.to_vec();
    out.push(KEYFILE_VERSION);
    out.extend_from_slice(&to_postcard(body));
    out
}

pub fn decode(buf: &[u8]) -> Result<KeyFileBody> {
    if buf.len() < 5 || &buf[..4] != KEYFILE_MAGIC {
        return Err(Error::corrupt("key file: bad magic"));
    }
    if buf[4] == 0 {
        return Err(Error::corrupt("key file: version 0 is invalid"));
    }
    if buf[4] != KEYFILE_VERSION {
        return Err(super::newer_version("key file", buf[4]));
    }
    let body: KeyFileBody = from_postcard("key file", &buf[5..])?;
    if let Some(k) = body.kdf {
        // Refuse absurd costs from a hostile key file instead of allocating terabytes.
        if k.memory_kib > MAX_KDF_MEMORY_KIB
            || k.iterations > 16
            || k.parallelism == 0
            || k.parallelism > 64
        {
            return Err(Error::corrupt(format!(
                "key file: unreasonable KDF parameters {k:?}"
            )));
        }
    }
    Ok(body)
}
