//! AES-256-GCM framing: `nonce (12) || ciphertext || tag (16)`, random 96-bit nonces.
//!
//! Random nonces are safe for this key's expected use: the birthday bound for 96-bit nonces
//! allows about 2^32 encryptions per key at a collision probability of 2^-32, and one repository
//! stores far fewer blobs than that (2^32 blobs of 1 MiB = 4 PiB).

//!
//! The cipher is ring's AES-256-GCM: the same standard construction as any other, so the stored
//! bytes do not depend on the library (the vectors in `format-spec/vectors/` pin them), but
//! ring interleaves AES-NI and carry-less multiplication and runs several times faster than the
//! portable `aes-gcm` crate. In a backup to Swift that crate's GHASH alone was an eighth of the
//! client's CPU.

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM};

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

#[derive(Clone)]
pub struct Aead {
    cipher: LessSafeKey,
}

impl Aead {
    pub fn new(key: &[u8; 32]) -> Aead {
        Aead {
            cipher: LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key is valid for AES-256"),
            ),
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
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                &mut out[NONCE_LEN..],
            )
            .expect("AES-GCM encryption of less than 64 GiB cannot fail");
        out.extend_from_slice(tag.as_ref());
        out
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let tag = Tag::try_from(tag).ok()?;
        let mut buf = ct.to_vec();
        self.cipher
            .open_in_place_separate_tag(nonce, Aad::from(aad), tag, &mut buf, 0..)
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

    /// NIST's GCM test case 16 (AES-256, 96-bit IV, 60-byte plaintext with 20 bytes of AAD):
    /// the sealed bytes are the standard construction, whatever library computes them.
    #[test]
    fn matches_the_nist_gcm_test_vector() {
        let key: [u8; 32] =
            hex::decode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
                .unwrap()
                .try_into()
                .unwrap();
        let nonce: [u8; 12] = hex::decode("cafebabefacedbaddecaf888")
            .unwrap()
            .try_into()
            .unwrap();
        let pt = hex::decode(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        )
        .unwrap();
        let aad = hex::decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").unwrap();
        let sealed = Aead::new(&key).seal_with_nonce(&nonce, &aad, &pt);
        assert_eq!(
            hex::encode(&sealed[NONCE_LEN..]),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
76fc6ece0f4e1768cddf8853bb2d551b"
        );
        assert_eq!(Aead::new(&key).open(&aad, &sealed).unwrap(), pt);
    }
}
