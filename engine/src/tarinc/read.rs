//! Streaming tar reader for GNU, ustar and (the common fields of) pax archives, GNU tar's
//! `GNU.dumpdir` pax record of incremental archives in POSIX format included.
//!
//! It resolves GNU long names (`L`, `K`), pax `x` headers and GNU sparse maps before handing out
//! an [`Entry`], reads member data through [`TarReader::read_data`], and like
//! `tar --ignore-zeros` (which Freezer's restore uses) skips zero blocks between concatenated
//! archives. Every malformed input is an error naming the byte offset; nothing panics and no
//! allocation is sized by untrusted input beyond a fixed cap.

use std::io::{self, Read};

use super::header::{decode, get_num, is_zero, Entry, EntryKind, HeaderError, BLOCK};
use crate::error::{Error, Result};

/// Upper bound for GNU long names and pax headers held in memory.
const MAX_META: u64 = 1 << 20;

pub struct TarReader<R: Read> {
    inner: R,
    /// Data bytes left in the current member, then its padding.
    remaining: u64,
    padding: u64,
    offset: u64,
    name: String,
}

impl<R: Read> TarReader<R> {
    /// `name` says which stream this is in error messages (e.g. the backup's object name).
    pub fn new(inner: R, name: impl Into<String>) -> Self {
        TarReader {
            inner,
            remaining: 0,
            padding: 0,
            offset: 0,
            name: name.into(),
        }
    }

    fn err(&self, what: impl std::fmt::Display) -> Error {
        Error::corrupt(format!(
            "tar stream {}: {what} (at byte {})",
            self.name, self.offset
        ))
    }

    fn io_err(&self, e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            self.err("truncated archive")
        } else if e.kind() == io::ErrorKind::InvalidData || e.kind() == io::ErrorKind::Other {
            // Decompressors report bad input this way.
            Error::with_source(
                crate::ErrorKind::Corrupt,
                format!(
                    "tar stream {}: cannot decode (at byte {})",
                    self.name, self.offset
                ),
                e,
            )
        } else {
            Error::io(format!("tar stream {}", self.name), e)
        }
    }

    /// Read a full block; `Ok(false)` on a clean end of stream at a block boundary.
    fn block(&mut self, b: &mut [u8; BLOCK]) -> Result<bool> {
        let mut got = 0;
        while got < BLOCK {
            match self.inner.read(&mut b[got..]) {
                Ok(0) if got == 0 => return Ok(false),
                Ok(0) => return Err(self.err("truncated archive (partial block)")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_err(e)),
            }
        }
        self.offset += BLOCK as u64;
        Ok(true)
    }

    fn skip(&mut self, mut n: u64) -> Result<()> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            match self.inner.read(&mut buf[..want]) {
                Ok(0) => return Err(self.err("truncated archive (member data)")),
                Ok(k) => {
                    n -= k as u64;
                    self.offset += k as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_err(e)),
            }
        }
        Ok(())
    }

    /// Read the rest of the current member into memory (at most `limit` bytes).
    pub fn data_to_vec(&mut self, limit: u64) -> Result<Vec<u8>> {
        if self.remaining > limit {
            return Err(self.err(format!(
                "member data of {} bytes exceeds the {limit}-byte limit for metadata",
                self.remaining
            )));
        }
        let mut v = vec![0u8; self.remaining as usize];
        let mut got = 0;
        while got < v.len() {
            let n = self.read_data(&mut v[got..])?;
            if n == 0 {
                return Err(self.err("truncated archive (member data)"));
            }
            got += n;
        }
        Ok(v)
    }

    /// Read data of the current member; 0 at its end.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.remaining) as usize;
        loop {
            match self.inner.read(&mut buf[..want]) {
                Ok(0) => return Err(self.err("truncated archive (member data)")),
                Ok(n) => {
                    self.remaining -= n as u64;
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_err(e)),
            }
        }
    }

    /// The next member, or `None` at the end of the archive.
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        let rest = self.remaining + self.padding;
        self.remaining = 0;
        self.padding = 0;
        self.skip(rest)?;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut b = [0u8; BLOCK];
        loop {
            if !self.block(&mut b)? {
                return Ok(None);
            }
            if is_zero(&b) {
                continue; // end-of-archive marker or padding between concatenated archives
            }
            let header_at = self.offset - BLOCK as u64;
            let (mut e, extended) = match decode(&b) {
                Ok(x) => x,
                Err(HeaderError::Checksum) => {
                    return Err(Error::corrupt(format!(
                        "tar stream {}: not a tar header (bad checksum at byte {header_at}); \
                         the data is not a tar archive, or it is corrupt or was decrypted with \
                         the wrong key",
                        self.name
                    )))
                }
                Err(HeaderError::Field(f)) => {
                    return Err(self.err(format!("header field {f} is malformed")))
                }
            };
            self.remaining = e.size;
            self.padding = (BLOCK as u64 - e.size % BLOCK as u64) % BLOCK as u64;
            match e.kind {
                EntryKind::Other(b'L') | EntryKind::Other(b'K') => {
                    let mut v = self.data_to_vec(MAX_META)?;
                    if let Some(z) = v.iter().position(|&c| c == 0) {
                        v.truncate(z);
                    }
                    if e.kind == EntryKind::Other(b'L') {
                        long_name = Some(v);
                    } else {
                        long_link = Some(v);
                    }
                    self.skip_padding()?;
                    continue;
                }
                EntryKind::Other(b'x') => {
                    let v = self.data_to_vec(MAX_META)?;
                    pax = parse_pax(&v).ok_or_else(|| self.err("malformed pax header"))?;
                    self.skip_padding()?;
                    continue;
                }
                EntryKind::Other(b'g') | EntryKind::Other(b'V') => {
                    let rest = self.remaining + self.padding;
                    self.remaining = 0;
                    self.padding = 0;
                    self.skip(rest)?;
                    continue;
                }
                _ => {}
            }
            if extended {
                // GNU sparse extension blocks: 21 (offset, length) pairs each.
                loop {
                    let mut x = [0u8; BLOCK];
                    if !self.block(&mut x)? {
                        return Err(self.err("truncated archive (sparse map)"));
                    }
                    for i in 0..21 {
                        let o = i * 24;
                        if x[o] == 0 {
                            break;
                        }
                        let off = get_num(&x[o..o + 12]);
                        let len = get_num(&x[o + 12..o + 24]);
                        match (off, len) {
                            (Some(a), Some(l)) if a >= 0 && l >= 0 => {
                                e.sparse.push((a as u64, l as u64))
                            }
                            _ => return Err(self.err("malformed sparse map")),
                        }
                        if e.sparse.len() > 1 << 20 {
                            return Err(self.err("sparse map too large"));
                        }
                    }
                    if x[504] == 0 {
                        break;
                    }
                }
            }
            if let Some(n) = long_name.take() {
                e.path = n;
            }
            if let Some(l) = long_link.take() {
                e.link = l;
            }
            let mut gnu_dumpdir = None;
            for (k, v) in pax.drain(..) {
                let num = || {
                    std::str::from_utf8(&v)
                        .ok()
                        .and_then(|s| s.split('.').next().and_then(|i| i.parse::<i64>().ok()))
                };
                match k.as_slice() {
                    b"path" => e.path = v.clone(),
                    b"linkpath" => e.link = v.clone(),
                    b"uname" => e.uname = v.clone(),
                    b"gname" => e.gname = v.clone(),
                    b"uid" => e.uid = num().unwrap_or(e.uid as i64) as u64,
                    b"gid" => e.gid = num().unwrap_or(e.gid as i64) as u64,
                    b"mtime" => e.mtime = num().unwrap_or(e.mtime),
                    b"GNU.dumpdir" => gnu_dumpdir = Some(v.clone()),
                    b"size" => {
                        let s = num()
                            .filter(|s| *s >= 0)
                            .ok_or_else(|| self.err("bad pax size"))?;
                        e.size = s as u64;
                        self.remaining = e.size;
                        self.padding = (BLOCK as u64 - e.size % BLOCK as u64) % BLOCK as u64;
                    }
                    _ => {}
                }
            }
            // GNU tar's incremental archives in POSIX format (`--format=posix`, or a tar whose
            // default format is POSIX, as Freezer does not pass `--format`) store a directory
            // as a `5` member with its listing in `GNU.dumpdir`: the same as a `D` member.
            if let (Some(d), EntryKind::Directory | EntryKind::Dumpdir) = (gnu_dumpdir, e.kind) {
                e.kind = EntryKind::Dumpdir;
                e.dumpdir = Some(d);
            }
            if e.kind == EntryKind::Sparse {
                let total: u64 = e.sparse.iter().map(|s| s.1).sum();
                if total != e.size
                    || e.sparse
                        .iter()
                        .any(|&(o, l)| !matches!(o.checked_add(l), Some(end) if end <= e.real_size))
                {
                    return Err(self.err("sparse map does not match the member size"));
                }
            }
            return Ok(Some(e));
        }
    }

    fn skip_padding(&mut self) -> Result<()> {
        let p = self.padding;
        self.padding = 0;
        self.skip(p)
    }

    /// The underlying stream (e.g. to drain it after the last member).
    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// Parse pax extended header records (`LEN key=value\n`).
fn parse_pax(mut d: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    while !d.is_empty() {
        let sp = d.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&d[..sp]).ok()?.parse().ok()?;
        if len <= sp + 1 || len > d.len() || d[len - 1] != b'\n' {
            return None;
        }
        let rec = &d[sp + 1..len - 1];
        let eq = rec.iter().position(|&b| b == b'=')?;
        out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        d = &d[len..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::write::TarWriter;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn write_then_read() {
        let mut w = TarWriter::new(Vec::new());
        let long: Vec<u8> = std::iter::repeat_n(b'x', 300).collect();
        let mut e = Entry::new(long.clone(), EntryKind::Regular);
        e.size = 5;
        w.append_bytes(&e, b"hello").unwrap();
        let mut l = Entry::new(b"./l".to_vec(), EntryKind::Symlink);
        l.link = long.clone();
        w.append_bytes(&l, b"").unwrap();
        let out = w.finish().unwrap();
        assert_eq!(out.len() % 10240, 0);
        let mut r = TarReader::new(&out[..], "test");
        let a = r.next_entry().unwrap().unwrap();
        assert_eq!(a.path, long);
        assert_eq!(r.data_to_vec(100).unwrap(), b"hello");
        let b = r.next_entry().unwrap().unwrap();
        assert_eq!(b.link, long);
        assert!(r.next_entry().unwrap().is_none());
        // Truncation is an error, not a silent end.
        let mut r = TarReader::new(&out[..1600], "test");
        r.next_entry().unwrap().unwrap();
        assert!(r.next_entry().is_err());
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..3000), flip in 0usize..3000) {
            let _ = TarReader::new(&data[..], "fuzz").next_entry();
            // Valid archive with one byte flipped.
            let mut w = TarWriter::new(Vec::new());
            let mut e = Entry::new(b"./f".to_vec(), EntryKind::Regular);
            e.size = 600;
            w.append_bytes(&e, &[7u8; 600]).unwrap();
            let mut out = w.finish().unwrap();
            let i = flip % out.len();
            out[i] ^= 0x5a;
            let mut r = TarReader::new(&out[..], "fuzz");
            while let Ok(Some(_)) = r.next_entry() {}
        }
    }
}
