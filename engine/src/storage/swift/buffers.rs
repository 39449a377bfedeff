//! Reused upload buffers for packs.
//!
//! A pack is collected in memory before its PUT (Swift needs the length and MD5 up front). A new
//! 32 MiB buffer per pack costs more than its copy: the allocator maps fresh pages that the kernel
//! must zero on first touch, and growing the vector copies it again. Profiles of a backup to
//! Swift showed about a sixth of the client's CPU there. Buffers are therefore recycled once
//! their upload is done; the pool is small (at most as many buffers as packs can be in flight),
//! so it does not raise peak memory.

use std::sync::Mutex;

use bytes::Bytes;

use crate::storage::FileKind;

/// Buffers kept for reuse; more than this many packs are never in flight on one machine.
const MAX_POOLED: usize = 8;
/// A buffer that grew beyond this (an unusually large pack size) is not kept.
const MAX_KEPT_CAPACITY: usize = 256 << 20;
/// Room reserved up front for a new pack buffer: the default data pack size plus a blob, so
/// the vector does not grow (and copy itself) while the pack fills.
const PACK_RESERVE: usize = (32 << 20) + (1 << 20);

/// A bounded stack of free buffers.
pub(super) struct BufferPool(Mutex<Vec<Vec<u8>>>);

/// The pool all Swift storages of the process share.
pub(super) static POOL: BufferPool = BufferPool(Mutex::new(Vec::new()));

impl BufferPool {
    /// An empty buffer for an object of `kind`, reused when one is free.
    pub(super) fn take(&self, kind: FileKind) -> Vec<u8> {
        if kind != FileKind::Pack {
            return Vec::new();
        }
        let reused = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match reused {
            Some(mut b) => {
                b.clear();
                b
            }
            None => Vec::with_capacity(PACK_RESERVE),
        }
    }

    /// Returns an uploaded body's buffer to the pool, when nothing else still holds it.
    pub(super) fn give_back(&self, body: Bytes) {
        if !body.is_unique() {
            return;
        }
        let buf = Vec::from(body);
        if buf.capacity() < PACK_RESERVE || buf.capacity() > MAX_KEPT_CAPACITY {
            return;
        }
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < MAX_POOLED {
            pool.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_objects_get_no_reserved_buffer() {
        assert_eq!(
            BufferPool(Mutex::new(Vec::new()))
                .take(FileKind::Index)
                .capacity(),
            0
        );
    }

    #[test]
    fn an_uploaded_pack_buffer_is_reused_without_a_new_allocation() {
        let pool = BufferPool(Mutex::new(Vec::new()));
        let mut b = pool.take(FileKind::Pack);
        b.extend_from_slice(&[7u8; 4096]);
        let ptr = b.as_ptr();
        pool.give_back(Bytes::from(b));
        let again = pool.take(FileKind::Pack);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), ptr, "the pooled buffer was not reused");
    }

    #[test]
    fn a_shared_body_is_not_taken_back() {
        let pool = BufferPool(Mutex::new(Vec::new()));
        let body = Bytes::from(pool.take(FileKind::Pack));
        let other = body.clone();
        pool.give_back(body);
        drop(other);
        assert!(
            pool.0.lock().unwrap().is_empty(),
            "a buffer still in use was pooled"
        );
    }
}
