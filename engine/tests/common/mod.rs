//! Helpers shared by the engine's integration tests.
#![allow(dead_code)] // each test uses only some helpers

use std::path::Path;
use std::sync::Arc;

use rime_engine::crypto::KdfParams;
use rime_engine::ops::restore::RestoreOptions;
use rime_engine::repo::{InitOptions, Repository};
use rime_engine::storage::{LocalStorage, Storage};

/// A new local repository in `dir`, with the test-only fast key derivation.
pub fn repo(dir: &Path) -> Repository {
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir));
    let opts = InitOptions {
        kdf: KdfParams::TESTING,
        ..InitOptions::default()
    };
    Repository::init(storage, b"pw", &opts).unwrap()
}

/// Restore options for `target` as `rime restore` has them by default: no include filter, no
/// overwrite, ownership as the user running it allows, no read-back verification, no sync.
pub fn restore_options(target: &Path) -> RestoreOptions {
    RestoreOptions {
        target: target.to_path_buf(),
        include: vec![],
        overwrite: false,
        ownership: None,
        verify: false,
        sync: false,
        buffered: false,
    }
}

/// Pseudo-random, incompressible file content.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
