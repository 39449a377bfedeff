//! Stored blobs (`format::blob::open_blob`) with the keys of an unencrypted repository.
//!
//! Input: `type u8 | flags u8 | raw_len u32 LE | blob id [32] | stored bytes`. Type is taken
//! from bit 0; flags are passed as given (unknown bits included).
//!
//! Never panics; returns an error or exactly `raw_len` bytes whose keyed id is the given id;
//! no single allocation of the Rust heap exceeds `max(raw_len, stored length)` (plus a little
//! for error messages): a lying zstd frame cannot make it allocate more than the index says.
//!
//! `raw_len` above [`MAX_RAW_LEN`] (32 MiB) is skipped: chunks are at most 16 MiB, and
//! `open_blob` reserves `raw_len` bytes up front, which for a 4 GiB claim trips libFuzzer's
//! malloc limit (see README.md, "Findings").
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use rime_engine::format::blob::{open_blob, seal_blob};
use rime_engine::format::{BlobFlags, BlobType};
use rime_engine::id::BlobId;
use rime_fuzz::{keys_plain, Input, MAX_RAW_LEN};

/// Records the largest single allocation request.
struct PeakAlloc;

static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        PEAK.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        PEAK.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        PEAK.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// Allowance for error messages and other small allocations.
const SLACK: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let (Some(ty), Some(flags), Some(raw_len), Some(id)) = (input.u8(), input.u8(), input.u32(), input.id()) else {
        return;
    };
    if raw_len > MAX_RAW_LEN {
        return;
    }
    let stored = input.rest();
    let ty = if ty & 1 == 0 { BlobType::Data } else { BlobType::Tree };
    let flags = BlobFlags(flags);
    let id = BlobId(id);
    let keys = keys_plain();

    PEAK.store(0, Ordering::Relaxed);
    let result = open_blob(keys, ty, flags, raw_len, &id, stored);
    let peak = PEAK.load(Ordering::Relaxed);
    let bound = (raw_len as usize).max(stored.len()) + SLACK;
    assert!(peak <= bound, "open_blob allocated {peak} bytes at once (raw_len {raw_len}, stored {})", stored.len());

    let Ok(plain) = result else { return };
    assert_eq!(plain.len(), raw_len as usize, "open_blob returned a length other than raw_len");
    assert_eq!(keys.blob_id(&plain), id, "open_blob returned bytes that do not match the id");
    // Sealing the plaintext again (with and without compression) opens to the same bytes.
    for compress in [true, false] {
        let s = seal_blob(keys, ty, id, &plain, |d| if compress { zstd::bulk::compress(d, 3).ok() } else { None });
        let back = open_blob(keys, s.ty, s.flags, s.raw_len, &s.id, &s.bytes).expect("re-sealed blob opens");
        assert_eq!(back, plain);
    }
});
