//! The MD5 of a pack, computed once however many Swift clusters receive it.
//!
//! Swift checks each upload against the MD5 sent in its `ETag` header, and MD5 runs at well
//! under 1 GB/s on one core: a backup to two clusters spent a second of client CPU per 2 GiB
//! hashing the same packs twice. A pack's name is the BLAKE3 hash of its bytes, so the name
//! identifies the content: the MD5 of the last packs is kept by name, and the second cluster's
//! upload (or one running at the same time, which waits for the first) reuses it. Other kinds
//! of object are hashed every time. A wrong entry could not pass unnoticed anyway: Swift
//! refuses a body whose MD5 differs from the `ETag`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use md5::{Digest, Md5};
use parking_lot::Mutex;

use crate::storage::FileKind;

/// Packs remembered (a few per upload slot of each cluster is plenty).
const KEEP: usize = 256;

#[derive(Default)]
struct Memo {
    by_name: HashMap<String, Arc<OnceLock<[u8; 16]>>>,
    order: VecDeque<String>,
}

static MEMO: Mutex<Option<Memo>> = Mutex::new(None);

/// The MD5 of `data`, stored as `name`.
pub fn content_md5(kind: FileKind, name: &str, data: &[u8]) -> [u8; 16] {
    if kind != FileKind::Pack {
        return Md5::digest(data).into();
    }
    let cell = {
        let mut guard = MEMO.lock();
        let memo = guard.get_or_insert_with(Memo::default);
        let key = format!("{name}/{}", data.len());
        if let Some(c) = memo.by_name.get(&key) {
            c.clone()
        } else {
            let c = Arc::new(OnceLock::new());
            memo.by_name.insert(key.clone(), c.clone());
            memo.order.push_back(key);
            while memo.order.len() > KEEP {
                if let Some(old) = memo.order.pop_front() {
                    memo.by_name.remove(&old);
                }
            }
            c
        }
    };
    *cell.get_or_init(|| Md5::digest(data).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_are_hashed_once_by_name_and_other_kinds_always() {
        let data = vec![7u8; 1000];
        let want: [u8; 16] = Md5::digest(&data).into();
        let name = "ab".repeat(32);
        assert_eq!(content_md5(FileKind::Pack, &name, &data), want);
        // Same name and length: the remembered value, even for other bytes (which a pack of
        // that name cannot have; Swift would refuse the body if it did).
        assert_eq!(content_md5(FileKind::Pack, &name, &[8u8; 1000]), want);
        // Another kind is always hashed.
        let other: [u8; 16] = Md5::digest([8u8; 1000]).into();
        assert_eq!(content_md5(FileKind::Index, &name, &[8u8; 1000]), other);
        // Old names are forgotten.
        for i in 0..KEEP {
            content_md5(FileKind::Pack, &format!("{i:064x}"), &[1]);
        }
        assert_eq!(content_md5(FileKind::Pack, &name, &[8u8; 1000]), other);
    }
}
