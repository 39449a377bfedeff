//! `openssl enc -aes-256-cfb` compatible encryption, the format Freezer encrypts backups with.
//!
//! Stream: `Salted__`, an 8-byte random salt, then AES-256-CFB128 ciphertext of the data. Key and
//! IV come from OpenSSL's `EVP_BytesToKey` with one iteration: D1 = H(password ‖ salt),
//! Di = H(Di-1 ‖ password ‖ salt), key ‖ iv = the first 48 bytes of D1 ‖ D2 ‖ …, where H is MD5
//! for OpenSSL ≤ 1.0.2 and SHA-256 for OpenSSL ≥ 1.1.0 (`-md` changes it). This is weak by
//! today's standards (fast KDF, no authentication) and exists only to read and write
//! Freezer-format data; rime's repository uses AES-256-GCM.
//!
//! Without authentication a wrong password just yields garbage, so [`DecryptReader::new`]
//! checks that the decrypted start looks like the expected format (compression magic or tar
//! header checksum) and otherwise fails with `WrongPassword` before any data is returned. It can
//! try several digests, which also settles whether MD5 or SHA-256 was used.

use std::io::{self, Read, Write};

use aes::Aes256;
use cfb_mode::cipher::KeyIvInit;
use md5::Digest;

use crate::error::{Error, ErrorKind, Result};

type Enc = cfb_mode::BufEncryptor<Aes256>;
type Dec = cfb_mode::BufDecryptor<Aes256>;

const MAGIC: &[u8; 8] = b"Salted__";

/// The digest of `EVP_BytesToKey` (`openssl enc -md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KdfDigest {
    /// OpenSSL <= 1.0.2 default.
    Md5,
    /// OpenSSL >= 1.1.0 default.
    Sha256,
}

impl KdfDigest {
    /// Both, newest default first (what to try when the OpenSSL version is unknown).
    pub const ALL: [KdfDigest; 2] = [KdfDigest::Sha256, KdfDigest::Md5];

    pub fn name(self) -> &'static str {
        match self {
            KdfDigest::Md5 => "md5",
            KdfDigest::Sha256 => "sha256",
        }
    }
}

/// OpenSSL's `EVP_BytesToKey(aes-256-cfb, md, salt, password, 1)`: (key, iv).
pub fn evp_bytes_to_key(md: KdfDigest, password: &[u8], salt: &[u8; 8]) -> ([u8; 32], [u8; 16]) {
    let mut out = Vec::with_capacity(64);
    let mut prev: Vec<u8> = Vec::new();
    while out.len() < 48 {
        prev = match md {
            KdfDigest::Md5 => {
                let mut h = md5::Md5::new();
                h.update(&prev);
                h.update(password);
                h.update(salt);
                h.finalize().to_vec()
            }
            KdfDigest::Sha256 => {
                let mut h = sha2::Sha256::new();
                h.update(&prev);
                h.update(password);
                h.update(salt);
                h.finalize().to_vec()
            }
        };
        out.extend_from_slice(&prev);
    }
    let mut key = [0u8; 32];
    let mut iv = [0u8; 16];
    key.copy_from_slice(&out[..32]);
    iv.copy_from_slice(&out[32..48]);
    (key, iv)
}

/// The password of `openssl enc -pass file:PATH`: the file's first line exactly as openssl
/// reads it, without its `\n` but with any `\r` before it (openssl strips only the newline, so
/// a pass file with Windows line endings gives openssl a password ending in `\r`).
/// [`DecryptReader::new`] also tries the line without that `\r`.
pub fn read_pass_file(path: &std::path::Path) -> Result<Vec<u8>> {
    let data = std::fs::read(path)
        .map_err(|e| Error::io(format!("encryption pass file {}", path.display()), e))?;
    let line = data.split(|&b| b == b'\n').next().unwrap_or(&[]);
    if line.is_empty() || line == b"\r" {
        return Err(Error::invalid(format!(
            "encryption pass file {}: the first line (the password) is empty",
            path.display()
        )));
    }
    Ok(line.to_vec())
}

/// The passwords a pass-file line may stand for, in order: the line as openssl reads it, then
/// without a trailing `\r` (a password typed into a Windows editor, used by a tool that
/// strips both line-end characters).
pub fn password_candidates(line: &[u8]) -> Vec<&[u8]> {
    match line.strip_suffix(b"\r") {
        Some(stripped) if !stripped.is_empty() => vec![line, stripped],
        _ => vec![line],
    }
}

/// Encrypts everything written, as `openssl enc -aes-256-cfb -salt` does.
pub struct EncryptWriter<W: Write> {
    inner: W,
    enc: Enc,
    buf: Vec<u8>,
}

impl<W: Write> EncryptWriter<W> {
    /// Start a stream with a random salt.
    pub fn new(inner: W, password: &[u8], md: KdfDigest) -> io::Result<Self> {
        let salt: [u8; 8] = rand::random();
        Self::with_salt(inner, password, md, salt)
    }

    /// Start a stream with a given salt (for reproducible tests).
    pub fn with_salt(
        mut inner: W,
        password: &[u8],
        md: KdfDigest,
        salt: [u8; 8],
    ) -> io::Result<Self> {
        let (key, iv) = evp_bytes_to_key(md, password, &salt);
        inner.write_all(MAGIC)?;
        inner.write_all(&salt)?;
        Ok(EncryptWriter {
            inner,
            enc: Enc::new(&key.into(), &iv.into()),
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(256 * 1024);
        self.buf.clear();
        self.buf.extend_from_slice(&data[..n]);
        self.enc.encrypt(&mut self.buf);
        self.inner.write_all(&self.buf)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Decrypts an `openssl enc -aes-256-cfb` stream.
pub struct DecryptReader<R: Read> {
    inner: R,
    dec: Dec,
    /// Already decrypted bytes from the key check, served first.
    pending: Vec<u8>,
    pos: usize,
    digest: KdfDigest,
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl<R: Read> DecryptReader<R> {
    /// Read the header and check the key: for each of the [`password_candidates`] of
    /// `password` and each digest in `digests`, decrypt the first `probe_len` bytes and accept
    /// the first pair for which `looks_right` holds.
    /// `name` names the stream in errors.
    pub fn new(
        mut inner: R,
        password: &[u8],
        digests: &[KdfDigest],
        probe_len: usize,
        looks_right: impl Fn(&[u8]) -> bool,
        name: &str,
    ) -> Result<Self> {
        let mut head = [0u8; 16];
        let n = read_full(&mut inner, &mut head)
            .map_err(|e| Error::io(format!("encrypted stream {name}"), e))?;
        if n < 16 || &head[..8] != MAGIC {
            return Err(Error::corrupt(format!(
                "encrypted stream {name}: no \"Salted__\" header, not written by openssl enc \
                 (is it encrypted at all?)"
            )));
        }
        let salt: [u8; 8] = head[8..16].try_into().unwrap_or_default();
        let mut probe = vec![0u8; probe_len];
        let got = read_full(&mut inner, &mut probe)
            .map_err(|e| Error::io(format!("encrypted stream {name}"), e))?;
        probe.truncate(got);
        let passwords = password_candidates(password);
        for pw in &passwords {
            for &md in digests {
                let (key, iv) = evp_bytes_to_key(md, pw, &salt);
                let mut dec = Dec::new(&key.into(), &iv.into());
                let mut plain = probe.clone();
                dec.decrypt(&mut plain);
                if looks_right(&plain) {
                    return Ok(DecryptReader {
                        inner,
                        dec,
                        pending: plain,
                        pos: 0,
                        digest: md,
                    });
                }
            }
        }
        let tried: Vec<&str> = digests.iter().map(|d| d.name()).collect();
        let cr = if passwords.len() > 1 {
            "; the password with and without the carriage return ending its line"
        } else {
            ""
        };
        Err(Error::new(
            ErrorKind::WrongPassword,
            format!(
                "encrypted stream {name}: wrong password (decrypted data is not in the expected \
                 format; key derivation tried: {}{cr})",
                tried.join(", ")
            ),
        ))
    }

    /// The digest that produced a plausible decryption.
    pub fn digest(&self) -> KdfDigest {
        self.digest
    }
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.pending.len() {
            let n = buf.len().min(self.pending.len() - self.pos);
            buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
            self.pos += n;
            if self.pos == self.pending.len() {
                self.pending = Vec::new();
                self.pos = 0;
            }
            return Ok(n);
        }
        let n = self.inner.read(buf)?;
        self.dec.decrypt(&mut buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = EncryptWriter::new(Vec::new(), b"pw", KdfDigest::Sha256).unwrap();
        w.write_all(&data).unwrap();
        let enc = w.finish().unwrap();
        assert_eq!(enc.len(), data.len() + 16);
        let mut r = DecryptReader::new(
            &enc[..],
            b"pw",
            &KdfDigest::ALL,
            16,
            |p| p[..4] == data[..4],
            "t",
        )
        .unwrap();
        assert_eq!(r.digest(), KdfDigest::Sha256);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        let e = DecryptReader::new(
            &enc[..],
            b"px",
            &KdfDigest::ALL,
            16,
            |p| p[..4] == data[..4],
            "t",
        )
        .err()
        .unwrap();
        assert_eq!(e.kind(), ErrorKind::WrongPassword);
    }
}
