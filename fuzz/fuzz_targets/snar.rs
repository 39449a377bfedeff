//! GNU tar snapshot files (`Snar::parse`, Freezer's `engine_metadata`): never panic; a parsed
//! file is written back byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rime_engine::tarinc::Snar;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Snar::parse(data) {
        let again = Snar::parse(&s.to_bytes()).expect("a written snapshot file parses");
        assert_eq!(again, s);
    }
});
