//! Repository configs (`format::config::decode`): never panics; accepted chunker and pack
//! parameters are valid; re-encode (with the same MAC) and decode round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rime_engine::chunker::Chunker;
use rime_engine::format::config::{decode, encode};
use rime_engine::format::FORMAT_VERSION;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = decode(data) {
        assert!(c.version >= 1 && c.version <= FORMAT_VERSION);
        let p = c.body.chunker;
        assert!(p.min_size <= p.avg_size && p.avg_size <= p.max_size);
        let enc = encode(&c.body, |_| c.mac);
        let again = decode(&enc).expect("re-encoded config decodes");
        assert_eq!(again.body, c.body);
        assert_eq!(again.mac, c.mac);
        // Any accepted chunker parameters must be usable: chunk a small input with them.
        let input: Vec<u8> = (0..(p.max_size as usize * 2).min(1 << 16)).map(|i| (i * 7 % 251) as u8).collect();
        let cuts = Chunker::new(p, 1).cut_points(&input);
        assert_eq!(cuts.last().copied(), Some(input.len()));
    }
});
