//! gzip, bzip2, xz and zstd stream wrappers for tar streams (Freezer's `--compression`).
//!
//! Readers accept concatenated members/streams/frames (what `gzip -d`, `bzip2 -d`, `xz -d`
//! and `zstd -d` accept), and report undecodable input as `InvalidData` naming the format, so
//! the tar reader turns it into a "corrupt" error rather than an I/O one.

use std::io::{self, BufRead, Read, Write};

use crate::error::{Error, Result};

/// A compression format of a tar stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    /// Parse a name as Freezer and the command-line tools spell it.
    pub fn parse(name: &str) -> Result<Compression> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "none" | "" => Compression::None,
            "gzip" | "gz" => Compression::Gzip,
            "bzip2" | "bz2" => Compression::Bzip2,
            "xz" => Compression::Xz,
            "zstd" | "zst" => Compression::Zstd,
            other => {
                return Err(Error::invalid(format!(
                    "compression {other:?} is not one of gzip, bzip2, xz, zstd, none"
                )))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }

    /// How many leading bytes [`Compression::looks_like`] wants to see.
    pub fn probe_len(self) -> usize {
        match self {
            Compression::None => super::header::BLOCK,
            _ => 16,
        }
    }

    /// Whether `prefix` (the first [`probe_len`](Self::probe_len) bytes, or the whole stream
    /// if shorter) starts a stream of this format. For uncompressed streams the tar header
    /// checksum is verified. Used to tell a right decryption key from a wrong one.
    pub fn looks_like(self, p: &[u8]) -> bool {
        match self {
            Compression::None => {
                p.len() >= super::header::BLOCK
                    && super::header::checksum_ok(
                        p[..super::header::BLOCK].try_into().unwrap_or(&[0; 512]),
                    )
                    && !p[..super::header::BLOCK].iter().all(|&b| b == 0)
            }
            Compression::Gzip => p.len() >= 4 && p[..3] == [0x1f, 0x8b, 0x08] && p[3] & 0xe0 == 0,
            Compression::Bzip2 => {
                p.len() >= 10
                    && &p[..3] == b"BZh"
                    && (b'1'..=b'9').contains(&p[3])
                    && (p[4..10] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]
                        || p[4..10] == [0x17, 0x72, 0x45, 0x38, 0x50, 0x90])
            }
            Compression::Xz => {
                p.len() >= 8
                    && p[..6] == [0xfd, b'7', b'z', b'X', b'Z', 0]
                    && p[6] == 0
                    && matches!(p[7], 0 | 1 | 4 | 10)
            }
            Compression::Zstd => p.len() >= 4 && p[..4] == [0x28, 0xb5, 0x2f, 0xfd],
        }
    }

    /// Guess the format from the first bytes.
    pub fn detect(prefix: &[u8]) -> Option<Compression> {
        [
            Compression::Gzip,
            Compression::Bzip2,
            Compression::Xz,
            Compression::Zstd,
            Compression::None,
        ]
        .into_iter()
        .find(|c| c.looks_like(prefix))
    }
}

/// A compressing writer; call [`finish`](Self::finish) to write the trailer.
pub enum CompressWriter<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Bzip2(bzip2::write::BzEncoder<W>),
    Xz(liblzma::write::XzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> CompressWriter<W> {
    /// `level`: the tool's scale (gzip/bzip2 1-9, xz 0-9, zstd 1-19); `None` = the tool's
    /// default (6, 9, 6, 3).
    pub fn new(w: W, c: Compression, level: Option<u32>) -> Result<Self> {
        Ok(match c {
            Compression::None => CompressWriter::None(w),
            Compression::Gzip => CompressWriter::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::new(level.unwrap_or(6).min(9)),
            )),
            Compression::Bzip2 => CompressWriter::Bzip2(bzip2::write::BzEncoder::new(
                w,
                bzip2::Compression::new(level.unwrap_or(9).clamp(1, 9)),
            )),
            Compression::Xz => {
                CompressWriter::Xz(liblzma::write::XzEncoder::new(w, level.unwrap_or(6).min(9)))
            }
            Compression::Zstd => CompressWriter::Zstd(
                zstd::stream::write::Encoder::new(w, level.unwrap_or(3).clamp(1, 19) as i32)
                    .map_err(|e| Error::io("zstd encoder", e))?,
            ),
        })
    }

    /// Finish the stream and return the sink.
    pub fn finish(self) -> io::Result<W> {
        match self {
            CompressWriter::None(mut w) => {
                w.flush()?;
                Ok(w)
            }
            CompressWriter::Gzip(e) => e.finish(),
            CompressWriter::Bzip2(e) => e.finish(),
            CompressWriter::Xz(e) => e.finish(),
            CompressWriter::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for CompressWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            CompressWriter::None(w) => w.write(buf),
            CompressWriter::Gzip(w) => w.write(buf),
            CompressWriter::Bzip2(w) => w.write(buf),
            CompressWriter::Xz(w) => w.write(buf),
            CompressWriter::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            CompressWriter::None(w) => w.flush(),
            CompressWriter::Gzip(w) => w.flush(),
            CompressWriter::Bzip2(w) => w.flush(),
            CompressWriter::Xz(w) => w.flush(),
            CompressWriter::Zstd(w) => w.flush(),
        }
    }
}

/// A decompressing reader.
pub enum DecompressReader<R: BufRead> {
    None(R),
    Gzip(flate2::bufread::MultiGzDecoder<R>),
    Bzip2(bzip2::bufread::MultiBzDecoder<R>),
    Xz(liblzma::bufread::XzDecoder<R>),
    Zstd(zstd::stream::read::Decoder<'static, R>),
}

impl<R: BufRead> DecompressReader<R> {
    pub fn new(r: R, c: Compression) -> Result<Self> {
        Ok(match c {
            Compression::None => DecompressReader::None(r),
            Compression::Gzip => DecompressReader::Gzip(flate2::bufread::MultiGzDecoder::new(r)),
            Compression::Bzip2 => DecompressReader::Bzip2(bzip2::bufread::MultiBzDecoder::new(r)),
            Compression::Xz => {
                DecompressReader::Xz(liblzma::bufread::XzDecoder::new_multi_decoder(r))
            }
            Compression::Zstd => DecompressReader::Zstd(
                zstd::stream::read::Decoder::with_buffer(r)
                    .map_err(|e| Error::io("zstd decoder", e))?,
            ),
        })
    }

    fn format(&self) -> &'static str {
        match self {
            DecompressReader::None(_) => "none",
            DecompressReader::Gzip(_) => "gzip",
            DecompressReader::Bzip2(_) => "bzip2",
            DecompressReader::Xz(_) => "xz",
            DecompressReader::Zstd(_) => "zstd",
        }
    }
}

impl<R: BufRead> Read for DecompressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = match self {
            DecompressReader::None(r) => return r.read(buf),
            DecompressReader::Gzip(r) => r.read(buf),
            DecompressReader::Bzip2(r) => r.read(buf),
            DecompressReader::Xz(r) => r.read(buf),
            DecompressReader::Zstd(r) => r.read(buf),
        };
        r.map_err(|e| match e.kind() {
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::Other => {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} data is corrupt: {e}", self.format()),
                )
            }
            _ => e,
        })
    }
}
