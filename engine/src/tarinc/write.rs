//! Streaming GNU tar writer: headers, `L`/`K` long names, data padding, end-of-archive.
//!
//! Memory stays bounded: member data is copied through a fixed buffer. A source that yields
//! fewer bytes than its header promised (a file shrinking during the backup) is padded with
//! zeros so the archive stays well-formed; the caller is told how many bytes were missing.

use std::io::{self, Read, Write};

use super::header::{encode, Entry, EntryKind, BLOCK};

/// GNU tar writes archives in records of 20 blocks; we pad the end the same way.
const RECORD: u64 = 20 * BLOCK as u64;

pub struct TarWriter<W: Write> {
    out: W,
    written: u64,
    buf: Vec<u8>,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter {
            out,
            written: 0,
            buf: vec![0u8; 256 * 1024],
        }
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.written
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.put(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    fn long_name(&mut self, flag: EntryKind, name: &[u8]) -> io::Result<()> {
        let mut h = Entry::new(b"././@LongLink".to_vec(), flag);
        h.mode = 0;
        h.size = name.len() as u64 + 1;
        h.uname = b"root".to_vec();
        h.gname = b"root".to_vec();
        let block = encode(&h, &h.path, b"");
        self.put(&block)?;
        self.put(name)?;
        self.put(&[0])?;
        self.pad(h.size)
    }

    /// Write a header (and the `L`/`K` members its long names need).
    pub fn header(&mut self, e: &Entry) -> io::Result<()> {
        if e.path.len() > 100 {
            self.long_name(EntryKind::Other(b'L'), &e.path)?;
        }
        if e.link.len() > 100 {
            self.long_name(EntryKind::Other(b'K'), &e.link)?;
        }
        let name = &e.path[..e.path.len().min(100)];
        let link = &e.link[..e.link.len().min(100)];
        let block = encode(e, name, link);
        self.put(&block)
    }

    /// Write a member whose data is in memory (`e.size` must equal `data.len()`).
    pub fn append_bytes(&mut self, e: &Entry, data: &[u8]) -> io::Result<()> {
        debug_assert_eq!(e.size, data.len() as u64);
        self.header(e)?;
        self.put(data)?;
        self.pad(data.len() as u64)
    }

    /// Write a member whose data is read from `src`: exactly `e.size` bytes are stored (zero
    /// padded if `src` ends early). Returns how many bytes `src` failed to supply.
    pub fn append_reader(&mut self, e: &Entry, src: &mut dyn Read) -> io::Result<u64> {
        self.header(e)?;
        let mut left = e.size;
        let mut buf = std::mem::take(&mut self.buf);
        let res = (|| {
            while left > 0 {
                let want = (buf.len() as u64).min(left) as usize;
                let n = match src.read(&mut buf[..want]) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                self.put(&buf[..n])?;
                left -= n as u64;
            }
            let missing = left;
            buf.fill(0);
            while left > 0 {
                let n = (buf.len() as u64).min(left) as usize;
                self.put(&buf[..n])?;
                left -= n as u64;
            }
            self.pad(e.size)?;
            Ok(missing)
        })();
        self.buf = buf;
        res
    }

    /// Write the end-of-archive blocks, pad to a whole record, flush, and return the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.put(&[0u8; 2 * BLOCK])?;
        let rem = self.written % RECORD;
        if rem != 0 {
            let zeros = vec![0u8; (RECORD - rem) as usize];
            self.put(&zeros)?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}
