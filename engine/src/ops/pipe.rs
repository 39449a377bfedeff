//! A pipe between two threads of this process: a writer fills blocks, a reader consumes them.
//!
//! It replaces an OS pipe where both ends are ours (the tar writer feeding the chunker, the
//! repository feeding the tar reader): an OS pipe copies every byte into the kernel and back
//! and wakes the other side every 64 KiB, which costs more CPU than producing a level-1 archive.
//! Here blocks of [`BLOCK`] bytes move by ownership, at most [`DEPTH`] of them in flight (memory
//! stays bounded), and spent blocks go back to the writer for reuse.
//!
//! Semantics follow a pipe: dropping the writer ends the stream (the reader sees end of file
//! after the data written so far); dropping the reader makes further writes fail with
//! `BrokenPipe`, so a producer whose consumer gave up stops instead of blocking.

use std::io::{self, Read, Write};

use crossbeam_channel::{bounded, Receiver, Sender};

/// Bytes per block moved from writer to reader.
pub const BLOCK: usize = 1 << 20;
/// Blocks in flight at most.
pub const DEPTH: usize = 4;

/// A connected pair.
pub fn pipe() -> (PipeReader, PipeWriter) {
    let (tx, rx) = bounded(DEPTH);
    let (back_tx, back_rx) = bounded(DEPTH + 1);
    (
        PipeReader {
            rx,
            cur: Vec::new(),
            pos: 0,
            back: back_tx,
        },
        PipeWriter {
            tx: Some(tx),
            buf: Vec::new(),
            spare: back_rx,
        },
    )
}

pub struct PipeWriter {
    tx: Option<Sender<Vec<u8>>>,
    buf: Vec<u8>,
    spare: Receiver<Vec<u8>>,
}

impl PipeWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = match self.spare.try_recv() {
            Ok(mut v) => {
                v.clear();
                v
            }
            Err(_) => Vec::with_capacity(BLOCK),
        };
        let full = std::mem::replace(&mut self.buf, next);
        let tx = self.tx.as_ref().ok_or_else(broken)?;
        tx.send(full).map_err(|_| broken())
    }
}

fn broken() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the reading side of the pipe is gone",
    )
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(BLOCK);
        }
        let n = data.len().min(BLOCK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == BLOCK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        // What was written is readable, as with an OS pipe; a gone reader is no error here.
        let _ = self.send();
        self.tx = None;
    }
}

pub struct PipeReader {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    back: Sender<Vec<u8>>,
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(next) => {
                    let spent = std::mem::replace(&mut self.cur, next);
                    self.pos = 0;
                    if spent.capacity() >= BLOCK {
                        let _ = self.back.try_send(spent);
                    }
                }
                Err(_) => return Ok(0), // writer gone: end of stream
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_in_order_then_end_of_file() {
        let data: Vec<u8> = (0..3 * BLOCK + 12345)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let (mut r, mut w) = pipe();
        let got = std::thread::scope(|s| {
            let h = s.spawn(|| {
                let mut out = Vec::new();
                r.read_to_end(&mut out).unwrap();
                out
            });
            for part in data.chunks(1000) {
                w.write_all(part).unwrap();
            }
            drop(w);
            h.join().unwrap()
        });
        assert_eq!(got, data);
    }

    #[test]
    fn a_gone_reader_breaks_the_writer_instead_of_blocking_it() {
        let (r, mut w) = pipe();
        drop(r);
        let e = (0..DEPTH + 2)
            .map(|_| w.write_all(&vec![1u8; BLOCK]))
            .find_map(Result::err)
            .expect("writes fail once the reader is gone");
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn flushed_partial_blocks_are_readable_at_once() {
        let (mut r, mut w) = pipe();
        w.write_all(b"hello").unwrap();
        w.flush().unwrap();
        let mut b = [0u8; 16];
        assert_eq!(r.read(&mut b).unwrap(), 5);
        assert_eq!(&b[..5], b"hello");
        drop(w);
        assert_eq!(r.read(&mut b).unwrap(), 0);
    }
}
