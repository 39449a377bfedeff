//! Framed objects (`format::object::open_object`: index files and snapshots).
//!
//! Input: `mode u8 | object id [32] | file bytes`. Mode bit 0: encrypted keys (the vectors'
//! secret) instead of unencrypted ones; bit 1: kind snapshot instead of index.
//!
//! Never panics; whatever opens has the given id, seals again to a file that opens to the same
//! plaintext under the same id, and its payload is decoded further (index or snapshot).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rime_engine::format::index::IndexFile;
use rime_engine::format::object::{open_object, seal_object, ObjectKind};
use rime_engine::format::snapshot::Snapshot;
use rime_fuzz::{keys_encrypted, keys_plain, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let (Some(mode), Some(id)) = (input.u8(), input.id()) else { return };
    let file = input.rest();
    let keys = if mode & 1 == 1 { keys_encrypted() } else { keys_plain() };
    let kind = if mode & 2 == 2 { ObjectKind::Snapshot } else { ObjectKind::Index };
    let Ok(plain) = open_object(keys, kind, &id, file) else { return };
    assert_eq!(keys.object_id(&plain), id, "opened an object whose content does not match its id");
    let (id2, sealed) = seal_object(keys, kind, &plain);
    assert_eq!(id2, id);
    assert_eq!(open_object(keys, kind, &id2, &sealed).expect("re-sealed object opens"), plain);
    // The wrong kind never opens.
    let other = if kind == ObjectKind::Index { ObjectKind::Snapshot } else { ObjectKind::Index };
    assert!(open_object(keys, other, &id, file).is_err(), "object opened as the other kind");
    match kind {
        ObjectKind::Index => {
            if let Ok(f) = IndexFile::decode(&plain) {
                assert_eq!(IndexFile::decode(&f.encode()).unwrap(), f);
            }
        }
        ObjectKind::Snapshot => {
            if let Ok(s) = Snapshot::decode(&plain) {
                assert_eq!(Snapshot::decode(&s.encode()).unwrap(), s);
            }
        }
    }
});
