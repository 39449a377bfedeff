//! A bounds-checked little-endian reader for untrusted bytes.

use crate::error::{Error, Result};

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(what: &'static str, buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0, what }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                Error::corrupt(format!(
                    "{}: truncated at byte {} (wanted {n} more)",
                    self.what, self.pos
                ))
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }

    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    pub fn id(&mut self) -> Result<[u8; 32]> {
        Ok(self.take(32)?.try_into().unwrap())
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn finish(self) -> Result<()> {
        if self.pos != self.buf.len() {
            return Err(Error::corrupt(format!(
                "{}: {} unexpected trailing bytes",
                self.what,
                self.buf.len() - self.pos
            )));
        }
        Ok(())
    }

    /// Check that `count` records of `size` bytes can fit, before allocating for them.
    pub fn check_count(&self, count: usize, size: usize) -> Result<()> {
        if count.checked_mul(size).is_none_or(|n| n > self.remaining()) {
            return Err(Error::corrupt(format!(
                "{}: claims {count} records but only {} bytes remain",
                self.what,
                self.remaining()
            )));
        }
        Ok(())
    }
}
