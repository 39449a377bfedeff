//! Chunking a large file window by window with positioned reads.
//!
//! Why not map the file: a mapping shows up as resident memory for every page touched (a 2 GB
//! file backed up reported 2 GB of RSS, which is what operators and memory limits look at), it
//! made the chunker walk the whole file before storing any of it (a file larger than RAM was
//! read from disk twice), and a file truncated while mapped (log rotation with `copytruncate`)
//! kills the process with SIGBUS. Reading windows keeps memory at one window per file being
//! read, reads every byte once, and turns a file that shrinks into a short read.
//!
//! The cut points are exactly those of [`Chunker::cut_points`] over the whole extent, so
//! backups deduplicate against those taken before: a cut depends only on the bytes from the
//! previous cut on, and a chunk that reaches the end of a window without reaching the maximum
//! chunk size is carried over and cut again with the next window's bytes behind it.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::chunker::Chunker;
use crate::error::Result;

/// The bytes read per window (at least the maximum chunk size). Two windows, each with room for
/// a carried-over chunk in front, are in memory per file being read: one being stored while the
/// next is read and cut. With the default 8 MiB maximum chunk that is 2 × 16 MiB; 16 MiB windows
/// (2 × 24 MiB) were no faster, and fresh memory is slow to fault in on some VMs.
pub(crate) const WINDOW: usize = 8 << 20;

thread_local! {
    /// The two window buffers, kept per thread for the next large file.
    static BUFS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Chunk bytes `start..end` of `f`. For each window, `each(data, cuts)` gets the window's bytes
/// (with the carried-over start of an unfinished chunk in front) and the end offsets of the
/// final chunks in it, relative to `data`; every byte of `data` up to the last cut belongs to
/// exactly one of them. While one window is stored, the next is read and cut.
///
/// Returns the number of bytes read, which is less than `end - start` when the file shrank.
/// The outer error is `each`'s; the inner one, a read error of the source.
pub(crate) fn chunk_extent(
    f: &File,
    start: u64,
    end: u64,
    chunker: &Chunker,
    mut each: impl FnMut(&[u8], &[usize]) -> Result<()> + Send,
) -> Result<std::io::Result<u64>> {
    // Taken out, not borrowed: rayon may run another file's read on this thread meanwhile.
    let (mut a, mut b) = BUFS.with(|x| std::mem::take(&mut *x.borrow_mut()));
    let r = (|| {
        let max = chunker.params().max_size as usize;
        let geo = Geometry {
            head: max,
            window: WINDOW.max(max),
            max,
            end,
        };
        for v in [&mut a, &mut b] {
            if v.len() < geo.head + geo.window {
                v.resize(geo.head + geo.window, 0);
            }
        }
        crate::sys::advise_sequential(f);
        let mut cur = match fill(f, start, &[], &mut a, chunker, &geo) {
            Ok(w) => w,
            Err(e) => return Ok(Err(e)),
        };
        loop {
            let data = &a[geo.head - cur.carry..geo.head + cur.got];
            if cur.eof {
                if !data.is_empty() {
                    each(data, &cur.cuts)?;
                }
                return Ok(Ok(cur.off - start));
            }
            let tail = &data[cur.done..];
            let (stored, next) = rayon::join(
                || each(data, &cur.cuts),
                || fill(f, cur.off, tail, &mut b, chunker, &geo),
            );
            stored?;
            cur = match next {
                Ok(w) => w,
                Err(e) => return Ok(Err(e)),
            };
            std::mem::swap(&mut a, &mut b);
        }
    })();
    BUFS.with(|x| *x.borrow_mut() = (a, b));
    r
}

struct Geometry {
    /// Room in front of each window for the carried-over bytes (less than `max`).
    head: usize,
    window: usize,
    max: usize,
    end: u64,
}

/// One window read and cut.
struct Window {
    /// Bytes carried over in front of the window, and bytes read into it.
    carry: usize,
    got: usize,
    /// The file offset after the window.
    off: u64,
    eof: bool,
    /// Final cut points, relative to the window's data.
    cuts: Vec<usize>,
    /// Where the carried-over bytes for the next window start (the last cut).
    done: usize,
}

/// Read the window at `off` into `buf` behind `tail` (the previous window's unfinished chunk)
/// and find its final cut points.
fn fill(
    f: &File,
    off: u64,
    tail: &[u8],
    buf: &mut [u8],
    chunker: &Chunker,
    g: &Geometry,
) -> std::io::Result<Window> {
    let carry = tail.len();
    buf[g.head - carry..g.head].copy_from_slice(tail);
    let want = (g.end - off).min(g.window as u64) as usize;
    let mut got = 0;
    while got < want {
        match f.read_at(&mut buf[g.head + got..g.head + want], off + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let off = off + got as u64;
    let eof = got < want || off >= g.end;
    if !eof {
        crate::sys::prefetch(f, off, g.window as u64);
    }
    let data = &buf[g.head - carry..g.head + got];
    let mut cuts = chunker.cut_points_parallel(data, WINDOW);
    let mut done = data.len();
    if !eof {
        // The last chunk ends at the window's end; unless it reached the maximum size, more
        // bytes could move its cut: it starts the next window instead.
        let last_start = if cuts.len() >= 2 {
            cuts[cuts.len() - 2]
        } else {
            0
        };
        if data.len() - last_start < g.max {
            cuts.pop();
            done = last_start;
        }
    }
    Ok(Window {
        carry,
        got,
        off,
        eof,
        cuts,
        done,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunker::tests::pseudo_random;
    use crate::format::config::ChunkerParams;
    use std::io::Write;

    /// Chunks of the windowed reader, as absolute (start, end) pairs.
    fn windowed(f: &File, start: u64, end: u64, c: &Chunker) -> (Vec<(u64, u64)>, u64) {
        let mut chunks = Vec::new();
        let mut pos = start;
        let n = chunk_extent(f, start, end, c, |_data, cuts| {
            let mut prev = 0;
            for &cut in cuts {
                chunks.push((pos, pos + (cut - prev) as u64));
                pos += (cut - prev) as u64;
                prev = cut;
            }
            Ok(())
        })
        .unwrap()
        .unwrap();
        (chunks, n)
    }

    fn whole(data: &[u8], base: u64, c: &Chunker) -> Vec<(u64, u64)> {
        let mut prev = 0;
        c.cut_points(data)
            .into_iter()
            .map(|cut| {
                let r = (base + prev as u64, base + cut as u64);
                prev = cut;
                r
            })
            .collect()
    }

    /// The windowed cut points equal the whole-input ones, for sizes around window multiples,
    /// for data with long runs without a cut (zeros: chunks of the maximum size), for an
    /// extent in the middle of the file, and with small chunker parameters.
    #[test]
    fn windows_cut_exactly_where_the_whole_input_does() {
        let mut zeros_then_random = vec![0u8; 3 * WINDOW / 2];
        zeros_then_random.extend(pseudo_random(WINDOW, 5));
        let inputs = [
            pseudo_random(WINDOW - 1, 1),
            pseudo_random(WINDOW, 2),
            pseudo_random(2 * WINDOW + 12345, 3),
            pseudo_random(3 * WINDOW + (8 << 20) - 1, 4),
            zeros_then_random,
        ];
        let small = ChunkerParams {
            min_size: 4096,
            avg_size: 16384,
            max_size: 65536,
            normalization: 1,
        };
        for params in [ChunkerParams::DEFAULT, small] {
            let c = Chunker::new(params, 0x5eed);
            for data in &inputs {
                let mut f = tempfile::tempfile().unwrap();
                f.write_all(data).unwrap();
                let (got, n) = windowed(&f, 0, data.len() as u64, &c);
                assert_eq!(n, data.len() as u64);
                assert_eq!(got, whole(data, 0, &c), "{} bytes", data.len());
                // An extent that starts and ends inside the file.
                let (s, e) = (777u64, data.len() as u64 - 999);
                let (got, _) = windowed(&f, s, e, &c);
                assert_eq!(got, whole(&data[s as usize..e as usize], s, &c));
            }
        }
    }

    /// A file shorter than its extent (truncated after it was listed) is read up to its end.
    #[test]
    fn a_shrunk_file_is_a_short_read() {
        let data = pseudo_random(WINDOW + 4096, 9);
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&data).unwrap();
        let c = Chunker::new(ChunkerParams::DEFAULT, 1);
        let (got, n) = windowed(&f, 0, 3 * WINDOW as u64, &c);
        assert_eq!(n, data.len() as u64);
        assert_eq!(got, whole(&data, 0, &c));
    }
}
