//! Freezer's per-backup metadata JSON (`FreezerMetadata::parse`), read from storages rime does
//! not control: never panics, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rime_engine::freezer::legacy::FreezerMetadata;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = FreezerMetadata::parse(data, "fuzz") {
        // Whatever parsed came from the first line.
        let first = data.split(|&b| b == b'\n').next().unwrap_or(&[]);
        if let Some(e) = &m.engine_name {
            assert!(first.len() >= e.len());
        }
    }
});
