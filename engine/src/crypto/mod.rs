//! Keys, key derivation, AEAD framing and keyed hashing.
//!
//! One random 32-byte *master secret* per repository. Everything else is derived from it with
//! BLAKE3's `derive_key` and fixed context strings (never change them: stored ids depend on them):
//! the AES-256-GCM data key, the blob-id key, the object-id key and the chunker's gear seed.

mod aead;
mod kdf;

pub use aead::{Aead, NONCE_LEN, TAG_LEN};
pub use kdf::{derive_wrapping_key, KdfParams};

use crate::id::BlobId;

/// Context strings for `blake3::derive_key`. Part of the format: do not modify.
pub const CTX_DATA_KEY: &str = "rime 2026-11 v1 aes-256-gcm data key";
pub const CTX_BLOB_ID: &str = "rime 2026-11 v1 blob id key";
pub const CTX_OBJECT_ID: &str = "rime 2026-11 v1 object id key";
pub const CTX_CHUNKER_SEED: &str = "rime 2026-11 v1 fastcdc gear seed";
pub const CTX_CONFIG_MAC: &str = "rime 2026-11 v1 config mac key";

/// The repository's master secret. Wrapped in key files; never stored in the clear unless the
/// repository was created with `--encryption none`.
#[derive(Clone)]
pub struct MasterSecret(pub [u8; 32]);

impl MasterSecret {
    pub fn random() -> Self {
        let mut b = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        MasterSecret(b)
    }
}

impl std::fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterSecret(..)")
    }
}

/// All keys of an open repository.
#[derive(Clone)]
pub struct Keys {
    /// `None` for a repository created with `--encryption none`.
    pub aead: Option<Aead>,
    blob_id_key: [u8; 32],
    object_id_key: [u8; 32],
    config_mac_key: [u8; 32],
    pub chunker_seed: u64,
}

impl Keys {
    pub fn derive(master: &MasterSecret, encrypted: bool) -> Keys {
        let m = &master.0;
        let seed_bytes = blake3::derive_key(CTX_CHUNKER_SEED, m);
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&seed_bytes[..8]);
        Keys {
            aead: encrypted.then(|| Aead::new(&blake3::derive_key(CTX_DATA_KEY, m))),
            blob_id_key: blake3::derive_key(CTX_BLOB_ID, m),
            object_id_key: blake3::derive_key(CTX_OBJECT_ID, m),
            config_mac_key: blake3::derive_key(CTX_CONFIG_MAC, m),
            // A zero seed would select fastcdc's unseeded table; map it away.
            chunker_seed: u64::from_le_bytes(seed).max(1),
        }
    }

    /// Keyed BLAKE3 of a blob's plaintext.
    pub fn blob_id(&self, plaintext: &[u8]) -> BlobId {
        BlobId(*blake3::keyed_hash(&self.blob_id_key, plaintext).as_bytes())
    }

    /// Keyed BLAKE3 naming an index or snapshot file by its plaintext.
    pub fn object_id(&self, plaintext: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.object_id_key, plaintext).as_bytes()
    }

    /// MAC over the encoded config body, so a tampered config is detected once a key is open.
    pub fn config_mac(&self, body: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.config_mac_key, body).as_bytes()
    }

    pub fn is_encrypted(&self) -> bool {
        self.aead.is_some()
    }

    /// Encrypt if the repository is encrypted; otherwise return the plaintext unchanged.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        match &self.aead {
            Some(a) => a.seal(aad, plaintext),
            None => plaintext.to_vec(),
        }
    }

    /// The length of `plain_len` bytes once sealed.
    pub fn sealed_len(&self, plain_len: usize) -> usize {
        match &self.aead {
            Some(_) => plain_len + aead::NONCE_LEN + aead::TAG_LEN,
            None => plain_len,
        }
    }

    /// Inverse of [`Keys::seal`]; `None` when authentication fails.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        match &self.aead {
            Some(a) => a.open(aad, sealed),
            None => Some(sealed.to_vec()),
        }
    }

    /// Bytes added by [`Keys::seal`].
    pub fn overhead(&self) -> usize {
        if self.aead.is_some() {
            NONCE_LEN + TAG_LEN
        } else {
            0
        }
    }
}
