//! GNU tar snapshot files (`--listed-incremental`, format version 2), the state that links one
//! incremental level to the next.
//!
//! Layout: the line `GNU tar-VERSION-2\n`, the snapshot time (`SECONDS\0NANOSECONDS\0`, the time
//! the dump that wrote the file started), then one record per directory:
//! `NFS\0 MTIME_SEC\0 MTIME_NSEC\0 DEV\0 INO\0 NAME\0` followed by the directory's dumpdir
//! entries (`Yname\0`, `Nname\0`, `Dname\0`...) and a terminating `\0\0`. Records are kept in file
//! order so that a parsed file is written back byte for byte. Parsing never panics: anything
//! malformed is an error naming the byte offset.

use crate::error::{Error, Result};

/// One dumpdir entry: `flag` is `Y` (in the archive), `N` (unchanged), `D` (directory), or the
/// rename codes `R`/`T`/`X` GNU tar uses in archives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpEntry {
    pub flag: u8,
    pub name: Vec<u8>,
}

/// The state of one directory at the last dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnarDir {
    pub nfs: bool,
    pub mtime_sec: i64,
    pub mtime_nsec: i64,
    pub dev: u64,
    pub ino: u64,
    /// Directory name as archived (`.`, `./a`, ...).
    pub name: Vec<u8>,
    /// Sorted names the directory held, with their flags.
    pub entries: Vec<DumpEntry>,
}

/// A whole snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snar {
    /// The program part of the first line (`GNU tar-1.34`); written back unchanged.
    pub program: Vec<u8>,
    /// Start time of the dump that produced this state: files changed at or after it are dumped
    /// by the next level.
    pub time_sec: i64,
    pub time_nsec: i64,
    pub dirs: Vec<SnarDir>,
}

/// The program string rime writes (GNU tar accepts any `GNU tar-*-2` header).
pub const PROGRAM: &[u8] = b"GNU tar-1.34";

impl Snar {
    /// An empty state with the given snapshot time.
    pub fn new(time_sec: i64, time_nsec: i64) -> Snar {
        Snar {
            program: PROGRAM.to_vec(),
            time_sec,
            time_nsec,
            dirs: Vec::new(),
        }
    }

    /// Parse a version-2 snapshot file.
    pub fn parse(data: &[u8]) -> Result<Snar> {
        let nl = data
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| Error::corrupt("snapshot file: no header line"))?;
        let line = &data[..nl];
        if !line.starts_with(b"GNU tar-") {
            return Err(Error::corrupt(
                "snapshot file: not a GNU tar snapshot (header does not start with \"GNU tar-\")",
            ));
        }
        let dash = line.iter().rposition(|&b| b == b'-').unwrap_or(0);
        let version = &line[dash + 1..];
        if version != b"2" {
            return Err(Error::corrupt(format!(
                "snapshot file: format version {} is not supported (only version 2, GNU tar >= 1.20)",
                String::from_utf8_lossy(version)
            )));
        }
        let mut p = Fields { data, pos: nl + 1 };
        let time_sec = p.int("snapshot time")?;
        let time_nsec = p.int("snapshot time nanoseconds")?;
        let mut dirs = Vec::new();
        while p.pos < data.len() {
            let nfs = match p.field("nfs flag")? {
                b"0" => false,
                b"1" => true,
                _ => return Err(p.err("nfs flag is neither 0 nor 1")),
            };
            let mtime_sec = p.int("directory mtime")?;
            let mtime_nsec = p.int("directory mtime nanoseconds")?;
            let dev = p.uint("device number")?;
            let ino = p.uint("inode number")?;
            let name = p.field("directory name")?.to_vec();
            let mut entries = Vec::new();
            loop {
                let f = p.field("dumpdir entry")?;
                match f.split_first() {
                    None => break,
                    Some((&flag, name)) => entries.push(DumpEntry {
                        flag,
                        name: name.to_vec(),
                    }),
                }
            }
            // Records end with "\0\0": the empty field above consumed the first NUL.
            if p.field("record terminator")? != b"" {
                return Err(p.err("directory record not terminated by two NULs"));
            }
            dirs.push(SnarDir {
                nfs,
                mtime_sec,
                mtime_nsec,
                dev,
                ino,
                name,
                entries,
            });
        }
        Ok(Snar {
            program: line[..dash].to_vec(),
            time_sec,
            time_nsec,
            dirs,
        })
    }

    /// Serialize in the format GNU tar writes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.dirs.len() * 64);
        out.extend_from_slice(&self.program);
        out.extend_from_slice(b"-2\n");
        let num = |out: &mut Vec<u8>, v: &dyn std::fmt::Display| {
            out.extend_from_slice(v.to_string().as_bytes());
            out.push(0);
        };
        num(&mut out, &self.time_sec);
        num(&mut out, &self.time_nsec);
        for d in &self.dirs {
            out.extend_from_slice(if d.nfs { b"1\0" } else { b"0\0" });
            num(&mut out, &d.mtime_sec);
            num(&mut out, &d.mtime_nsec);
            num(&mut out, &d.dev);
            num(&mut out, &d.ino);
            out.extend_from_slice(&d.name);
            out.push(0);
            for e in &d.entries {
                out.push(e.flag);
                out.extend_from_slice(&e.name);
                out.push(0);
            }
            out.extend_from_slice(b"\0\0");
        }
        out
    }

    /// Index of directories by name, for lookups while dumping.
    pub fn by_name(&self) -> std::collections::HashMap<&[u8], &SnarDir> {
        self.dirs.iter().map(|d| (d.name.as_slice(), d)).collect()
    }
}

struct Fields<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn err(&self, what: &str) -> Error {
        Error::corrupt(format!("snapshot file: {what} (at byte {})", self.pos))
    }

    fn field(&mut self, what: &str) -> Result<&'a [u8]> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        match rest.iter().position(|&b| b == 0) {
            Some(n) => {
                self.pos += n + 1;
                Ok(&rest[..n])
            }
            None => Err(self.err(&format!("truncated before the end of the {what}"))),
        }
    }

    fn int(&mut self, what: &str) -> Result<i64> {
        let f = self.field(what)?;
        std::str::from_utf8(f)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| self.err(&format!("{what} is not a number")))
    }

    fn uint(&mut self, what: &str) -> Result<u64> {
        let f = self.field(what)?;
        let s = std::str::from_utf8(f).ok();
        // dev_t/ino_t are unsigned on Linux, but some systems print them signed.
        s.and_then(|s| {
            s.parse::<u64>()
                .ok()
                .or_else(|| s.parse::<i64>().ok().map(|v| v as u64))
        })
        .ok_or_else(|| self.err(&format!("{what} is not a number")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let mut s = Snar::new(1_700_000_000, 123);
        s.dirs.push(SnarDir {
            nfs: false,
            mtime_sec: 5,
            mtime_nsec: 6,
            dev: 65024,
            ino: 42,
            name: b".".to_vec(),
            entries: vec![
                DumpEntry {
                    flag: b'D',
                    name: b"a".to_vec(),
                },
                DumpEntry {
                    flag: b'Y',
                    name: b"f".to_vec(),
                },
            ],
        });
        s.dirs.push(SnarDir {
            nfs: true,
            mtime_sec: -5,
            mtime_nsec: 0,
            dev: 1,
            ino: 2,
            name: b"./a".to_vec(),
            entries: vec![],
        });
        let b = s.to_bytes();
        assert_eq!(Snar::parse(&b).unwrap(), s);
        assert_eq!(Snar::parse(&b).unwrap().to_bytes(), b);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(Snar::parse(b"").is_err());
        assert!(Snar::parse(b"GNU tar-1.34-1\n").is_err());
        assert!(Snar::parse(b"GNU tar-1.34-2\n1\0").is_err());
        assert!(Snar::parse(b"GNU tar-1.34-2\n1\x002\x000\x001\x002\x003\x004\0.\0").is_err());
        assert!(Snar::parse(b"GNU tar-1.34-2\n1\x002\x007\x001\x002\x003\x004\0.\0\0\0").is_err());
        assert!(Snar::parse(b"GNU tar-1.34-2\n1\x002\x000\x001\x002\x003\x004\0.\0\0\0").is_ok());
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut d = b"GNU tar-1.34-2\n".to_vec();
            d.extend_from_slice(&data);
            let _ = Snar::parse(&d);
            let _ = Snar::parse(&data);
        }
    }
}
