//! Tree blobs (`Tree::decode`): never panics; a decoded tree satisfies the documented
//! invariants and re-encodes to bytes that decode to an equal tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rime_engine::format::tree::{NodeKind, Tree};

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Tree::decode(data) {
        for w in t.nodes.windows(2) {
            assert!(w[0].name < w[1].name, "names not strictly sorted");
        }
        for n in &t.nodes {
            assert!(!n.name.is_empty() && !n.name.contains(&b'/') && n.name != b"." && n.name != b"..");
            assert_eq!(n.kind == NodeKind::Dir, n.subtree.is_some());
            if n.kind == NodeKind::File {
                assert_eq!(n.content.iter().map(|p| u128::from(p.len())).sum::<u128>(), u128::from(n.size));
            }
            assert!(t.find(&n.name).is_some(), "find misses a node");
        }
        let enc = t.encode();
        assert_eq!(Tree::decode(&enc).expect("re-encoded tree decodes"), t);
        // Encoding is deterministic: a canonical encoding is a fixed point.
        assert_eq!(Tree::decode(&enc).unwrap().encode(), enc);
    }
});
