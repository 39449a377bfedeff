//! Prune's pending records (`repo::pending::PendingRecord::decode`), as plaintext and as
//! sealed with the encrypted keys (AAD "rime pending v1"): never panics; a decoded record
//! re-encodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rime_engine::repo::pending::PendingRecord;
use rime_fuzz::keys_encrypted;

fn check(data: &[u8]) {
    if let Ok(r) = PendingRecord::decode(data) {
        let again = PendingRecord::decode(&r.encode()).expect("re-encoded record decodes");
        assert_eq!(again, r, "a decoded record re-encodes to itself");
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(plain) = keys_encrypted().open(b"rime pending v1", data) {
        check(&plain);
    }
});
