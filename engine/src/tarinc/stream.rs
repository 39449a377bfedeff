//! Tar streams as Freezer stores them: tar → compression → optional `openssl enc` encryption,
//! assembled in one place so that callers only say which format they want.

use std::io::{self, BufReader, Cursor, Read, Write};

use super::compress::{CompressWriter, Compression, DecompressReader};
use super::openssl::{DecryptReader, EncryptWriter, KdfDigest};
use super::read::TarReader;
use crate::error::{Error, Result};

/// How a tar stream is wrapped.
#[derive(Debug, Clone)]
pub struct StreamFormat {
    pub compression: Compression,
    /// `openssl enc -aes-256-cfb` password (first line of Freezer's `--encrypt-pass-file`).
    pub password: Option<Vec<u8>>,
    /// Key derivation digest. Writing: `None` means SHA-256 (OpenSSL >= 1.1.0). Reading: `None`
    /// tries SHA-256, then MD5, and keeps the one that decrypts to the expected format.
    pub digest: Option<KdfDigest>,
}

impl StreamFormat {
    pub fn plain(compression: Compression) -> Self {
        StreamFormat {
            compression,
            password: None,
            digest: None,
        }
    }
}

/// The encryption layer of a [`StreamWriter`].
pub enum Sink<W: Write> {
    Plain(W),
    Encrypted(Box<EncryptWriter<W>>),
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(b),
            Sink::Encrypted(w) => w.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Encrypted(w) => w.flush(),
        }
    }
}

/// Compresses, then encrypts, what the tar writer produces.
pub struct StreamWriter<W: Write>(CompressWriter<Sink<W>>);

impl<W: Write> StreamWriter<W> {
    pub fn new(out: W, fmt: &StreamFormat, level: Option<u32>) -> Result<Self> {
        let sink = match &fmt.password {
            Some(pw) => Sink::Encrypted(Box::new(
                EncryptWriter::new(out, pw, fmt.digest.unwrap_or(KdfDigest::Sha256))
                    .map_err(|e| Error::io("writing encrypted stream", e))?,
            )),
            None => Sink::Plain(out),
        };
        Ok(StreamWriter(CompressWriter::new(
            sink,
            fmt.compression,
            level,
        )?))
    }

    /// Write the compression trailer and flush; returns the underlying sink.
    pub fn finish(self) -> io::Result<W> {
        match self.0.finish()? {
            Sink::Plain(w) => Ok(w),
            Sink::Encrypted(w) => w.finish(),
        }
    }
}

impl<W: Write> Write for StreamWriter<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Open a stored stream for reading members. The format is checked up front (compression
/// magic, key plausibility), so a wrong password or format fails here, before a caller writes
/// anything; `name` names the stream in errors.
pub fn open_reader<'a, R: Read + 'a>(
    mut src: R,
    fmt: &StreamFormat,
    name: &str,
) -> Result<TarReader<Box<dyn Read + 'a>>> {
    let c = fmt.compression;
    let decrypted: Box<dyn Read + 'a> = match &fmt.password {
        Some(pw) => {
            let digests: Vec<KdfDigest> = match fmt.digest {
                Some(d) => vec![d],
                None => KdfDigest::ALL.to_vec(),
            };
            Box::new(DecryptReader::new(
                src,
                pw,
                &digests,
                c.probe_len(),
                |p| c.looks_like(p),
                name,
            )?)
        }
        None => {
            let mut probe = vec![0u8; c.probe_len()];
            let mut got = 0;
            while got < probe.len() {
                match src.read(&mut probe[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::io(format!("stream {name}"), e)),
                }
            }
            probe.truncate(got);
            if !c.looks_like(&probe) {
                let hint = if probe.starts_with(b"Salted__") {
                    "it is encrypted (openssl enc): a password is needed".to_string()
                } else {
                    match Compression::detect(&probe) {
                        Some(other) => format!("it looks like {}", other.name()),
                        None => "unknown format".to_string(),
                    }
                };
                return Err(Error::corrupt(format!(
                    "stream {name}: not a {} tar stream ({hint})",
                    if c == Compression::None {
                        "plain"
                    } else {
                        c.name()
                    }
                )));
            }
            Box::new(Cursor::new(probe).chain(src))
        }
    };
    let buffered = BufReader::with_capacity(256 * 1024, decrypted);
    let dec: Box<dyn Read + 'a> = Box::new(DecompressReader::new(buffered, c)?);
    Ok(TarReader::new(dec, name))
}
