//! Snapshot manifests (`Snapshot::decode`): never panics; re-encode and decode round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rime_engine::format::snapshot::Snapshot;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Snapshot::decode(data) {
        let enc = s.encode();
        assert_eq!(Snapshot::decode(&enc).expect("re-encoded snapshot decodes"), s);
    }
});
