//! Helpers shared by the fuzz targets in `fuzz_targets/`: fixed keys and a reader that turns
//! fuzzer bytes into small structured choices.

use std::sync::OnceLock;

use rime_engine::crypto::{Keys, MasterSecret};

/// The master secret of the format vectors (`format-spec/vectors/`): the sealed vectors in the
/// seed corpus open with the encrypted keys derived from it.
pub const MASTER: [u8; 32] = [7; 32];

/// Largest `raw_len` the targets pass to `open_blob`. Chunks are at most 16 MiB; `open_blob`
/// reserves `raw_len` bytes before decompressing, so a claim of nearly 4 GiB (which nothing in
/// the decoders refuses) trips libFuzzer's malloc limit: reported, see README.md "Findings".
pub const MAX_RAW_LEN: u32 = 32 << 20;

/// Keys of an unencrypted repository (no AEAD: decoders see the bytes as stored).
pub fn keys_plain() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| Keys::derive(&MasterSecret(MASTER), false))
}

/// Keys of an encrypted repository with the vectors' master secret.
pub fn keys_encrypted() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| Keys::derive(&MasterSecret(MASTER), true))
}

/// Reads fixed-size fields off the front of the fuzzer's input; `None` once it runs out.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.data.len() < n {
            return None;
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Some(head)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.bytes(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn id(&mut self) -> Option<[u8; 32]> {
        self.bytes(32).map(|b| b.try_into().expect("32 bytes"))
    }

    pub fn rest(self) -> &'a [u8] {
        self.data
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}
