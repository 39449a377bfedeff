//! Streaming a volume or stream snapshot's content, in order (for `rime dump`).

use std::io::Write;

use parking_lot::Mutex;

use crate::error::{Error, IoContext, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::Part;
use crate::ops::volume::fetch::fetch;
use crate::ops::volume::map::{load_map, load_segment, segment_offsets};
use crate::repo::index::MasterIndex;
use crate::repo::Repository;

/// Bytes of chunks fetched in parallel before they are written out in order.
const WINDOW: u64 = 64 << 20;

/// Write the whole content to `out`; returns the bytes written.
pub fn export(repo: &Repository, snap: &Snapshot, out: &mut dyn Write) -> Result<u64> {
    export_range(repo, snap, 0, u64::MAX, out)
}

/// Write the content bytes `start..end` (clipped to the content) to `out`; only the segments
/// and chunks overlapping the range are read. Returns the bytes written.
pub fn export_range(
    repo: &Repository,
    snap: &Snapshot,
    start: u64,
    end: u64,
    out: &mut dyn Write,
) -> Result<u64> {
    export_range_indexed(repo, &MasterIndex::load(repo)?, snap, start, end, out)
}

/// [`export_range`] with an index the caller already loaded.
pub fn export_range_indexed(
    repo: &Repository,
    index: &MasterIndex,
    snap: &Snapshot,
    start: u64,
    end: u64,
    out: &mut dyn Write,
) -> Result<u64> {
    let range = (start, end);
    if !snap.source.has_chunk_map() {
        return Err(Error::invalid(
            "this snapshot is a file tree: dump a path of it instead",
        ));
    }
    let map = load_map(repo, index, &snap.root)?;
    let mut total = 0u64;
    for (seg_off, seg) in segment_offsets(&map) {
        if seg_off + seg.len <= start {
            continue;
        }
        if seg_off >= end {
            break;
        }
        let segment = load_segment(repo, index, seg)?;
        let mut off = seg_off;
        let mut window: Vec<(u64, Part)> = Vec::new();
        let mut window_bytes = 0u64;
        for p in segment.parts {
            let here = off;
            off += p.len();
            if off <= start {
                continue;
            }
            if here >= end {
                break;
            }
            window.push((here, p));
            window_bytes += p.len();
            if window_bytes >= WINDOW {
                total += write_window(repo, index, &window, range, out)?;
                window.clear();
                window_bytes = 0;
            }
        }
        total += write_window(repo, index, &window, range, out)?;
    }
    out.flush()
        .io_context(|| "cannot write the output".to_string())?;
    Ok(total)
}

fn write_window(
    repo: &Repository,
    index: &MasterIndex,
    window: &[(u64, Part)],
    (r_start, r_end): (u64, u64),
    out: &mut dyn Write,
) -> Result<u64> {
    let Some(&(start, _)) = window.first() else {
        return Ok(0);
    };
    let slots: Vec<Mutex<Option<Vec<u8>>>> = window.iter().map(|_| Mutex::new(None)).collect();
    let datas: Vec<(u64, crate::id::BlobId)> = window
        .iter()
        .filter_map(|&(off, p)| match p {
            Part::Data { id, .. } => Some((off, id)),
            Part::Hole { .. } => None,
        })
        .collect();
    let slot_of = |off: u64| window.partition_point(|&(o, _)| o < off);
    fetch(repo, index, &datas, &|offsets, plain| {
        for &o in offsets {
            *slots[slot_of(o)].lock() = Some(plain.to_vec());
        }
        Ok(())
    })?;
    let zeros = vec![0u8; 1 << 20];
    let mut n = 0u64;
    for ((off, p), slot) in window.iter().zip(slots) {
        // The part of this chunk inside the range, relative to the chunk.
        let lo = r_start.saturating_sub(*off).min(p.len()) as usize;
        let hi = r_end.saturating_sub(*off).min(p.len()) as usize;
        match p {
            Part::Data { .. } => {
                let data = slot.into_inner().ok_or_else(|| {
                    Error::corrupt(format!(
                        "a chunk near content offset {start} was not delivered"
                    ))
                })?;
                if data.len() as u64 != p.len() {
                    return Err(Error::corrupt(format!(
                        "the chunk at content offset {off} is {} bytes, the map says {}",
                        data.len(),
                        p.len()
                    )));
                }
                out.write_all(&data[lo..hi])
                    .io_context(|| "cannot write the output".to_string())?;
            }
            Part::Hole { .. } => {
                let mut left = (hi - lo) as u64;
                while left > 0 {
                    let k = left.min(zeros.len() as u64) as usize;
                    out.write_all(&zeros[..k])
                        .io_context(|| "cannot write the output".to_string())?;
                    left -= k as u64;
                }
            }
        }
        n += (hi - lo) as u64;
    }
    Ok(n)
}
