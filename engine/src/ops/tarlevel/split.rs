//! Cutting a tar stream into chunks at member boundaries.
//!
//! Content-defined chunking alone deduplicates a tar stream poorly when few files change:
//! with 1 MiB chunks holding dozens of small files, one changed file makes its whole chunk new,
//! so a new level 0 after 1 % of the files changed would store nearly half the tree again.
//! Cutting at member boundaries instead makes each member (header and data, with the GNU
//! long-name members before it) its own chunk: an unchanged file gives the same chunk in every
//! level 0, and a file changed since the last level 0 gives the chunk the level 1 already
//! stored. Members larger than the chunker's maximum are cut by content as usual. Whatever
//! does not parse as a member (the end-of-archive blocks and the SNAR after them) is chunked
//! as a plain stream. Boundaries only affect deduplication: the content is the same bytes.

use std::io::{Cursor, Read};

use rayon::prelude::*;

use crate::chunker::Chunker;
use crate::error::{Error, Result};
use crate::ops::blob_saver::BlobSaver;
use crate::ops::volume::map::MapWriter;
use crate::ops::volume::stream::{chunk_reader, store_chunk};
use crate::ops::Progress;

const BLOCK: usize = 512;
/// Small members are stored in parallel batches of about this many bytes.
const BATCH: usize = 2 << 20;

/// Chunk the tar stream (then whatever follows it) from `reader` into `writer`; returns the
/// byte count. `max_member` is the largest member stored as one chunk.
pub(crate) fn chunk_tar(
    reader: &mut dyn Read,
    chunker: &Chunker,
    max_member: usize,
    saver: &BlobSaver<'_>,
    writer: &mut MapWriter,
    progress: &dyn Progress,
) -> Result<u64> {
    let mut total = 0u64;
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut batch_bytes = 0usize;
    // Long-name members waiting for the member they name.
    let mut pending: Vec<u8> = Vec::new();
    loop {
        if progress.cancelled() {
            return Err(crate::ops::interrupted());
        }
        let mut hdr = [0u8; BLOCK];
        let got = read_full(reader, &mut hdr)?;
        let size = if got == BLOCK {
            member_size(&hdr)
        } else {
            None
        };
        let Some(size) = size else {
            // End of archive (or something else): the rest is a plain stream.
            total += flush(&mut batch, &mut batch_bytes, saver, writer, progress)?;
            pending.extend_from_slice(&hdr[..got]);
            let mut rest = Cursor::new(pending).chain(reader);
            return Ok(total + chunk_reader(&mut rest, chunker, saver, writer, progress)?);
        };
        let padded = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        pending.extend_from_slice(&hdr);
        if pending.len() as u64 + padded <= max_member as u64 {
            let start = pending.len();
            pending.resize(start + padded as usize, 0);
            let n = read_full(reader, &mut pending[start..])?;
            if n < padded as usize {
                // A truncated stream: keep what came, chunked like any tail.
                pending.truncate(start + n);
                total += flush(&mut batch, &mut batch_bytes, saver, writer, progress)?;
                let mut rest = Cursor::new(pending);
                return Ok(total + chunk_reader(&mut rest, chunker, saver, writer, progress)?);
            }
            if matches!(hdr[156], b'L' | b'K') {
                continue;
            }
            batch_bytes += pending.len();
            batch.push(std::mem::take(&mut pending));
            if batch_bytes >= BATCH {
                total += flush(&mut batch, &mut batch_bytes, saver, writer, progress)?;
            }
        } else {
            total += flush(&mut batch, &mut batch_bytes, saver, writer, progress)?;
            let head = std::mem::take(&mut pending);
            let mut member = Cursor::new(head).chain((&mut *reader).take(padded));
            total += chunk_reader(&mut member, chunker, saver, writer, progress)?;
        }
    }
}

/// Store a batch of small members, one chunk each, in parallel; push them in order.
fn flush(
    batch: &mut Vec<Vec<u8>>,
    batch_bytes: &mut usize,
    saver: &BlobSaver<'_>,
    writer: &mut MapWriter,
    progress: &dyn Progress,
) -> Result<u64> {
    let parts = batch
        .par_iter()
        .map(|c| store_chunk(saver, c))
        .collect::<Result<Vec<_>>>()?;
    for p in parts {
        writer.push(saver, p)?;
    }
    saver.check()?;
    let n = *batch_bytes as u64;
    progress.item_done(n);
    batch.clear();
    *batch_bytes = 0;
    Ok(n)
}

/// The data size of a member whose header is `h`, or `None` if `h` is not a valid header of a
/// kind this splitter understands (zero blocks, sparse members, garbage).
fn member_size(h: &[u8; BLOCK]) -> Option<u64> {
    let stored = octal(&h[148..156])?;
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    if sum != stored || h[156] == b'S' {
        return None;
    }
    let f = &h[124..136];
    if f[0] & 0x80 != 0 {
        // base-256
        let mut v = u64::from(f[0] & 0x7f);
        for &b in &f[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    octal(f)
}

fn octal(f: &[u8]) -> Option<u64> {
    let s: Vec<u8> = f
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .collect();
    if s.is_empty() {
        return Some(0).filter(|_| f.contains(&b'0'));
    }
    u64::from_str_radix(std::str::from_utf8(&s).ok()?, 8).ok()
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("cannot read the tar stream", e)),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tarinc::{Entry, EntryKind, TarWriter};

    #[test]
    fn member_sizes_parse_from_real_headers() {
        let mut w = TarWriter::new(Vec::new());
        let mut e = Entry::new(b"./a".to_vec(), EntryKind::Regular);
        e.size = 1000;
        w.append_bytes(&e, &[7u8; 1000]).unwrap();
        let out = w.finish().unwrap();
        let h: [u8; BLOCK] = out[..BLOCK].try_into().unwrap();
        assert_eq!(member_size(&h), Some(1000));
        let zero = [0u8; BLOCK];
        assert_eq!(member_size(&zero), None);
        let mut bad = h;
        bad[0] ^= 1;
        assert_eq!(member_size(&bad), None, "checksum mismatch");
    }
}
