//! Key files (`format::keyfile::decode`): never panics; accepted KDF parameters are within the
//! documented bounds; re-encode and decode round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rime_engine::format::keyfile::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(k) = decode(data) {
        if let Some(p) = k.kdf {
            assert!(p.memory_kib <= 4 << 20 && p.iterations <= 64 && (1..=64).contains(&p.parallelism));
        }
        let enc = encode(&k);
        assert_eq!(decode(&enc).expect("re-encoded key file decodes"), k);
    }
});
