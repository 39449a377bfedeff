//! Writing a restored file's data with holes where the data is zeros, as `cp --sparse=auto`:
//! a sparse file that went into the archive whole (Freezer's `tar` has no `--sparse`, so its
//! holes are stored as zeros) comes back taking the space it took before, not its full size.
//! Only whole file-system-sized blocks at aligned offsets that are all zeros are skipped; the
//! bytes read back are the same.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// The unit of holes: the common file system block size (a smaller block of a larger file
/// system block is written, as a partial block cannot be a hole).
const BLOCK: u64 = 4096;

/// A file written front to back, with all-zero aligned blocks left as holes.
pub struct HoleWriter<'a> {
    f: &'a File,
    /// Bytes of the file written or skipped: always a multiple of [`BLOCK`] (only whole
    /// blocks are, until [`HoleWriter::finish`]).
    pos: u64,
    /// The start of the block at `pos`, until the rest of it comes (reads end anywhere).
    carry: Vec<u8>,
}

impl<'a> HoleWriter<'a> {
    /// `f` must be empty (just created or truncated): skipped blocks read as zeros.
    pub fn new(f: &'a File) -> HoleWriter<'a> {
        HoleWriter {
            f,
            pos: 0,
            carry: Vec::with_capacity(BLOCK as usize),
        }
    }

    /// The next `data` of the file.
    pub fn write(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        if !self.carry.is_empty() {
            let take = (BLOCK as usize - self.carry.len()).min(data.len());
            self.carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.carry.len() < BLOCK as usize {
                return Ok(());
            }
            let block = std::mem::take(&mut self.carry);
            self.whole_blocks(&block)?;
            self.carry = block;
            self.carry.clear();
        }
        let whole = data.len() - data.len() % BLOCK as usize;
        self.whole_blocks(&data[..whole])?;
        self.carry.extend_from_slice(&data[whole..]);
        Ok(())
    }

    /// Whole blocks at `pos`: the runs between zero blocks written, each in one call.
    fn whole_blocks(&mut self, data: &[u8]) -> std::io::Result<()> {
        let mut run = 0;
        for (i, block) in data.chunks(BLOCK as usize).enumerate() {
            if block.iter().all(|&b| b == 0) {
                let at = i * BLOCK as usize;
                if run < at {
                    self.f.write_all_at(&data[run..at], self.pos + run as u64)?;
                }
                run = at + block.len();
            }
        }
        if run < data.len() {
            self.f.write_all_at(&data[run..], self.pos + run as u64)?;
        }
        self.pos += data.len() as u64;
        Ok(())
    }

    /// The last partial block, and the file's size set to all the bytes given (a trailing
    /// hole is written by no write).
    pub fn finish(self) -> std::io::Result<()> {
        let mut size = self.pos;
        if !self.carry.is_empty() {
            if self.carry.iter().any(|&b| b != 0) {
                self.f.write_all_at(&self.carry, self.pos)?;
            }
            size += self.carry.len() as u64;
        }
        self.f.set_len(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn zero_blocks_become_holes_and_the_bytes_stay_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut data = vec![0u8; 1 << 20];
        data[10] = 1; // a partial first block: written
        data[600_000] = 2;
        data.extend_from_slice(b"tail");
        let f = File::create(&p).unwrap();
        let mut w = HoleWriter::new(&f);
        // Odd-sized pieces: blocks straddle them.
        for piece in data.chunks(1000 + 7) {
            w.write(piece).unwrap();
        }
        w.finish().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), data);
        let used = std::fs::metadata(&p).unwrap().blocks() * 512;
        assert!(
            used < 64 * 1024,
            "{used} bytes allocated for 3 blocks of data"
        );
        // A trailing hole still gives the full size.
        let p2 = dir.path().join("g");
        let f = File::create(&p2).unwrap();
        let mut w = HoleWriter::new(&f);
        w.write(&[7u8; 5]).unwrap();
        w.write(&vec![0u8; 3 * BLOCK as usize]).unwrap();
        w.finish().unwrap();
        let back = std::fs::read(&p2).unwrap();
        assert_eq!(back.len(), 5 + 3 * BLOCK as usize);
        assert_eq!(&back[..5], &[7u8; 5]);
    }
}
