//! Multi-core compression of a tar stream: the input is cut into fixed blocks, each compressed
//! on the rayon pool as an independent gzip member / bzip2 stream / xz stream / zstd frame, and
//! written in order. The tools (`gzip -d`, `bzip2 -d`, `xz -d`, `zstd -d`, `tar -z/-j/-J`)
//! decode such concatenations as one stream, so the output is interchangeable with a
//! single-threaded one while compression — the slowest stage of Freezer's pipeline — scales
//! with cores. Memory is bounded: at most `2 × threads` blocks are in flight.

use std::collections::VecDeque;
use std::io::{self, Write};

use crossbeam_channel::{bounded, Receiver};

use super::compress::{CompressWriter, Compression};

/// Input bytes per independently compressed block (bzip2 at -9 uses 900 kB blocks itself).
pub const BLOCK_SIZE: usize = 4 << 20;

pub struct ParallelCompressWriter<W: Write> {
    out: W,
    c: Compression,
    level: Option<u32>,
    block: Vec<u8>,
    in_flight: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_in_flight: usize,
    block_size: usize,
}

impl<W: Write> ParallelCompressWriter<W> {
    pub fn new(out: W, c: Compression, level: Option<u32>) -> Self {
        Self::with_block_size(out, c, level, BLOCK_SIZE)
    }

    /// Smaller blocks cost compression ratio; larger ones memory (`2 × threads × size`).
    pub fn with_block_size(out: W, c: Compression, level: Option<u32>, block_size: usize) -> Self {
        let block_size = block_size.max(64 * 1024);
        ParallelCompressWriter {
            out,
            c,
            level,
            block: Vec::with_capacity(block_size),
            in_flight: VecDeque::new(),
            max_in_flight: 2 * rayon::current_num_threads().max(1),
            block_size,
        }
    }

    fn submit(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(self.block_size));
        let (tx, rx) = bounded(1);
        let (c, level) = (self.c, self.level);
        rayon::spawn(move || {
            let r = (|| {
                let mut w = CompressWriter::new(Vec::with_capacity(data.len() / 2), c, level)
                    .map_err(|e| io::Error::other(e.to_string()))?;
                w.write_all(&data)?;
                w.finish()
            })();
            let _ = tx.send(r);
        });
        self.in_flight.push_back(rx);
        while self.in_flight.len() >= self.max_in_flight {
            self.drain_one()?;
        }
        Ok(())
    }

    fn drain_one(&mut self) -> io::Result<()> {
        if let Some(rx) = self.in_flight.pop_front() {
            let part = rx
                .recv()
                .map_err(|_| io::Error::other("compression worker vanished"))??;
            self.out.write_all(&part)?;
        }
        Ok(())
    }

    /// Compress what is left, write everything in order, flush, and return the sink.
    pub fn finish(mut self) -> io::Result<W> {
        // An empty input still yields one (empty) valid stream.
        if self.block.is_empty() && self.in_flight.is_empty() {
            let w = CompressWriter::new(Vec::new(), self.c, self.level)
                .map_err(|e| io::Error::other(e.to_string()))?;
            self.out.write_all(&w.finish()?)?;
        }
        self.submit()?;
        while !self.in_flight.is_empty() {
            self.drain_one()?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelCompressWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.block_size - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == self.block_size {
            self.submit()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Blocks are only cut at the block size (a flush must not change the output).
        Ok(())
    }
}
