//! Lock files (`repo::lock::LockBody::decode`), as plaintext and as sealed with the encrypted
//! keys (AAD "rime lock v1"): never panics; re-encode and decode round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rime_engine::repo::lock::LockBody;
use rime_fuzz::keys_encrypted;

fn check(data: &[u8]) {
    if let Ok(l) = LockBody::decode(data) {
        let again = LockBody::decode(&l.encode()).expect("re-encoded lock decodes");
        assert_eq!(again, l, "a decoded lock re-encodes to itself");
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(plain) = keys_encrypted().open(b"rime lock v1", data) {
        check(&plain);
    }
});
