//! A backup's stored objects read back as one tar stream: segments concatenated, then
//! `openssl enc -d` when the data starts with `Salted__`, then the decompressor the bytes
//! themselves announce (gzip, bzip2, xz, zstd or plain tar), whatever the metadata says.

use std::io::{self, BufReader, Cursor, Read};
use std::sync::{Arc, Mutex};

use md5::{Digest, Md5};

use super::container::Container;
use super::scan::{DataObject, LegacyBackup};
use crate::error::{Error, ErrorKind, Result};
use crate::tarinc::{Compression, DecompressReader, DecryptReader, KdfDigest, TarReader};

/// Bytes fetched per request.
const CHUNK: u64 = 8 << 20;

/// Objects with a listed MD5 up to this size are read whole and checked before any of their
/// bytes reach the decoder (Freezer's segments are 64 MiB by default). Larger ones are checked
/// when their last byte has been read.
pub(crate) const CHECK_WHOLE: u64 = 256 << 20;

/// What a failed read was doing: the object being read, and the storage's own error (kept
/// whole so that its kind survives the trip through `std::io`).
#[derive(Default)]
pub struct ReadState {
    pub current: String,
    pub error: Option<Error>,
}

/// The concatenation of a backup's data objects.
pub struct ObjectsReader<'a> {
    c: &'a dyn Container,
    objs: Vec<DataObject>,
    idx: usize,
    off: u64,
    buf: Vec<u8>,
    pos: usize,
    /// MD5 of the object being streamed, when it is too large to be checked before use.
    hasher: Option<Md5>,
    /// Skip the MD5 checks and whole-object reads: for a probe that reads only the first
    /// bytes (the restore reads everything again, checked).
    probe: bool,
    /// Set once a read failed: every later read fails too, never skips ahead.
    failed: Option<String>,
    state: Arc<Mutex<ReadState>>,
}

impl<'a> ObjectsReader<'a> {
    pub fn new(c: &'a dyn Container, objs: Vec<DataObject>, state: Arc<Mutex<ReadState>>) -> Self {
        ObjectsReader {
            c,
            objs,
            idx: 0,
            off: 0,
            buf: Vec::new(),
            pos: 0,
            hasher: None,
            probe: false,
            failed: None,
            state,
        }
    }

    /// `want` bytes of `o` from `off`, or an error naming the object if it ends sooner.
    fn read_object(&self, o: &DataObject, off: u64, want: u64) -> Result<Vec<u8>> {
        let got = self.c.read_range(&o.path, off, want)?;
        if got.len() as u64 != want {
            return Err(Error::corrupt(format!(
                "{} in {} is truncated: it ends at byte {} but was listed with {} bytes",
                o.path,
                self.c.location(),
                off + got.len() as u64,
                o.size
            )));
        }
        Ok(got)
    }

    fn fill(&mut self) -> Result<bool> {
        while self.idx < self.objs.len() && self.off >= self.objs[self.idx].size {
            if let Some(h) = self.hasher.take() {
                check_md5(&self.objs[self.idx], self.c, h.finalize().into())?;
            }
            self.idx += 1;
            self.off = 0;
        }
        let Some(o) = self.objs.get(self.idx) else {
            return Ok(false);
        };
        if let Ok(mut s) = self.state.lock() {
            s.current.clone_from(&o.path);
        }
        if self.off == 0 && o.md5.is_some() && !self.probe {
            if o.size <= CHECK_WHOLE {
                // Whole, and checked before the decoder sees a byte of it.
                self.buf = Vec::new();
                let mut whole = Vec::with_capacity(o.size as usize);
                while (whole.len() as u64) < o.size {
                    let at = whole.len() as u64;
                    whole.extend(self.read_object(o, at, (o.size - at).min(CHUNK))?);
                }
                check_md5(o, self.c, Md5::digest(&whole).into())?;
                self.off = o.size;
                self.buf = whole;
                self.pos = 0;
                return Ok(true);
            }
            self.hasher = Some(Md5::new());
        }
        let want = (o.size - self.off).min(CHUNK);
        let got = self.read_object(o, self.off, want)?;
        if let Some(h) = &mut self.hasher {
            h.update(&got);
        }
        self.off += want;
        self.buf = got;
        self.pos = 0;
        Ok(true)
    }
}

/// Compare what was read of `o` with the MD5 the storage listed for it.
fn check_md5(o: &DataObject, c: &dyn Container, got: [u8; 16]) -> Result<()> {
    let Some(listed) = &o.md5 else { return Ok(()) };
    let got = hex::encode(got);
    if got == *listed {
        return Ok(());
    }
    Err(Error::corrupt(format!(
        "{} in {} is damaged: its {} bytes have MD5 {got}, but the storage recorded {listed} \
         when it was written",
        o.path,
        c.location(),
        o.size
    )))
}

impl Read for ObjectsReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(msg) = &self.failed {
            return Err(io::Error::other(msg.clone()));
        }
        if self.pos >= self.buf.len() {
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => {
                    let msg = e.to_string();
                    self.failed = Some(msg.clone());
                    if let Ok(mut s) = self.state.lock() {
                        s.error = Some(e);
                    }
                    return Err(io::Error::other(msg));
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn read_full(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// An opened backup stream.
pub struct Opened<'a> {
    pub reader: TarReader<Box<dyn Read + 'a>>,
    pub compression: Compression,
    /// The key derivation digest that worked, for encrypted backups.
    pub digest: Option<KdfDigest>,
    pub state: Arc<Mutex<ReadState>>,
}

/// Turn an error met while reading a backup into one that names the backup and the object
/// being read (preferring the storage's own error, whose kind is meaningful).
pub fn explain(b: &LegacyBackup, state: &Mutex<ReadState>, e: Error) -> Error {
    let (current, stored) = match state.lock() {
        Ok(mut s) => (s.current.clone(), s.error.take()),
        Err(_) => (String::new(), None),
    };
    // The storage's own error is the one to show (the decoder's only quotes it), with what the
    // extraction did about it (a file set aside).
    let e = match stored {
        Some(s) => e.notes_onto(s),
        None => e,
    };
    let at = if current.is_empty() {
        String::new()
    } else {
        format!(", data read up to object {current}")
    };
    e.within(format!("Freezer backup {} (level {}{at})", b.dir, b.level))
}

/// Open a backup's stream, checking the key and the format before returning: a wrong
/// password fails here with `WrongPassword`, before the caller writes anything.
pub fn open<'a>(c: &'a dyn Container, b: &LegacyBackup, pass: Option<&[u8]>) -> Result<Opened<'a>> {
    open_with(c, b, pass, false)
}

/// [`open`] for a look at the first bytes only: objects are read in ranges, unchecked (a
/// segment is not downloaded whole just to read its first tar header).
pub fn open_probe<'a>(
    c: &'a dyn Container,
    b: &LegacyBackup,
    pass: Option<&[u8]>,
) -> Result<Opened<'a>> {
    open_with(c, b, pass, true)
}

fn open_with<'a>(
    c: &'a dyn Container,
    b: &LegacyBackup,
    pass: Option<&[u8]>,
    probe: bool,
) -> Result<Opened<'a>> {
    let state = Arc::new(Mutex::new(ReadState::default()));
    let opened = open_inner(c, b, pass, state.clone(), probe).map_err(|e| explain(b, &state, e))?;
    Ok(opened)
}

fn open_inner<'a>(
    c: &'a dyn Container,
    b: &LegacyBackup,
    pass: Option<&[u8]>,
    state: Arc<Mutex<ReadState>>,
    probe: bool,
) -> Result<Opened<'a>> {
    let name = b.dir.clone();
    let mut src = ObjectsReader::new(c, b.data.clone(), state.clone());
    src.probe = probe;
    let head = read_full(&mut src, 512).map_err(|e| Error::io(format!("reading {name}"), e))?;
    let src = Cursor::new(head.clone()).chain(src);
    let (plain, digest, probe): (Box<dyn Read + 'a>, Option<KdfDigest>, Vec<u8>) =
        if head.starts_with(b"Salted__") {
            let Some(pw) = pass else {
                return Err(Error::new(
                    ErrorKind::WrongPassword,
                    "the backup is encrypted (openssl enc): give the password file \
                     (--encrypt-pass-file / --pass-file)",
                ));
            };
            let mut dec = DecryptReader::new(
                src,
                pw,
                &KdfDigest::ALL,
                512,
                |p| Compression::detect(p).is_some(),
                &name,
            )?;
            let digest = dec.digest();
            let probe =
                read_full(&mut dec, 512).map_err(|e| Error::io(format!("reading {name}"), e))?;
            let rest: Box<dyn Read + 'a> = Box::new(Cursor::new(probe.clone()).chain(dec));
            (rest, Some(digest), probe)
        } else {
            (Box::new(src), None, head)
        };
    let compression = Compression::detect(&probe).ok_or_else(|| {
        Error::corrupt(format!(
            "{name}: the data is neither a gzip, bzip2, xz or zstd stream nor a tar archive{}",
            if pass.is_some() && digest.is_none() {
                " (and it is not encrypted)"
            } else {
                ""
            }
        ))
    })?;
    let buffered = BufReader::with_capacity(256 * 1024, plain);
    let dec: Box<dyn Read + 'a> = Box::new(DecompressReader::new(buffered, compression)?);
    Ok(Opened {
        reader: TarReader::new(dec, name),
        compression,
        digest,
        state,
    })
}
