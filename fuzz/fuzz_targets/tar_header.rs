//! GNU tar headers and archives (`tarinc::header::decode`, `TarReader`), as read from
//! Freezer backups and rime tar streams: never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rime_engine::tarinc::{header, TarReader};

fuzz_target!(|data: &[u8]| {
    if data.len() >= header::BLOCK {
        let block: &[u8; header::BLOCK] = data[..header::BLOCK].try_into().unwrap();
        let _ = header::decode(block);
    }
    // The whole input as an archive: members, long names, sparse maps, dumpdirs.
    let mut r = TarReader::new(data, "fuzz");
    for _ in 0..10_000 {
        match r.next_entry() {
            Ok(Some(_)) => {
                let _ = r.data_to_vec(1 << 20);
            }
            Ok(None) | Err(_) => break,
        }
    }
});
