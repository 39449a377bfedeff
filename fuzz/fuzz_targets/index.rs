//! Index file payloads (`IndexFile::decode`): never panics; whatever decodes re-encodes to the
//! same bytes and decodes again to an equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rime_engine::format::index::IndexFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = IndexFile::decode(data) {
        let enc = f.encode();
        assert_eq!(enc, data, "index file does not re-encode to its bytes");
        assert_eq!(IndexFile::decode(&enc).expect("re-encoded index decodes"), f);
        for p in &f.packs {
            for b in &p.blobs {
                assert!(b.offset.checked_add(b.stored_len).is_some(), "accepted an entry past 4 GiB");
            }
        }
    }
});
