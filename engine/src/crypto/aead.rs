//! AES-256-GCM framing: `nonce (12) || ciphertext || tag (16)`, random 96-bit nonces.
//!
//! Random nonces are safe for this key's expected use: the birthday bound for 96-bit nonces
//! allows about 2^32 encryptions per key at a collision probability of 2^-32, and one repository
//! stores far fewer blobs than that (2^32 blobs of 1 MiB = 4 PiB).

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

#[derive(Clone)]
pub struct Aead {
    cipher: Aes256Gcm,
}

impl Aead {
    pub fn new(key: &[u8; 32]) -> Aead {
        Aead {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
        self.seal_with_nonce(&nonce, aad, plaintext)
    }

    /// Deterministic variant, for test vectors only.
    pub fn seal_with_nonce(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, &mut out[NONCE_LEN..])
            .expect("AES-GCM encryption of less than 64 GiB cannot fail");
        out.extend_from_slice(&tag);
        out
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut buf = ct.to_vec();
        self.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                aad,
                &mut buf,
                Tag::from_slice(tag),
            )
            .ok()?;
        Some(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let a = Aead::new(&[7u8; 32]);
        let sealed = a.seal(b"aad", b"hello world");
        assert_eq!(a.open(b"aad", &sealed).unwrap(), b"hello world");
        assert!(a.open(b"other aad", &sealed).is_none());
        let mut bad = sealed.clone();
        bad[NONCE_LEN + 1] ^= 1;
        assert!(a.open(b"aad", &bad).is_none());
        assert!(a.open(b"aad", &sealed[..10]).is_none());
    }
}
