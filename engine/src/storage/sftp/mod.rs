//! A repository on an SSH server, over SFTP: `sftp://user@host:port/absolute/path` or
//! `sftp://user@host/~/dir`.
//!
//! The layout is the local one (`config`, `keys/`, `data/xx/`, `index/`, `snapshots/`,
//! `locks/`). Objects are written to a `.tmp-*` name in their directory, synced, and renamed
//! into place, so a reader never sees a partial object; `list` ignores the temporary names.
//! The system `ssh` client does the SSH part (see `conn.rs` for why); host keys are always
//! checked (`StrictHostKeyChecking=yes`, or `accept-new` when the user asked to trust a new
//! host on first use).

mod conn;
mod ops;
mod paths;
mod pool;
mod protocol;
mod url;

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use self::ops::Source;
use self::pool::{Pool, SshSpec};
use self::protocol::{FXF_CREAT, FXF_EXCL, FXF_READ, FXF_TRUNC, FXF_WRITE};
use crate::error::{Error, ErrorKind, Result};
use crate::storage::retry::{with_retries, RetryPolicy};
use crate::storage::{check_name, missing, FileKind, ObjectInfo, PendingObject, Storage};

/// Connections opened when the caller does not say (`--connections`).
pub const DEFAULT_CONNECTIONS: usize = 4;

/// How to reach the server, beyond what the URL says.
#[derive(Debug, Clone, Default)]
pub struct SftpOptions {
    /// Private key file (`ssh -i`); the agent and the ssh config's keys are still tried.
    pub key: Option<PathBuf>,
    /// Trust an unknown host key on first use and record it (`StrictHostKeyChecking=accept-new`);
    /// a changed key is still refused.
    pub accept_new: bool,
    /// An ssh config file to use instead of `~/.ssh/config` (`ssh -F`).
    pub config: Option<PathBuf>,
    /// Number of ssh connections (default [`DEFAULT_CONNECTIONS`]).
    pub connections: Option<usize>,
    /// The ssh program (default `ssh` from PATH).
    pub program: Option<OsString>,
}

pub struct SftpStorage {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    root: String,
    label: String,
    connections: usize,
    /// Send `hardlink@openssh.com` even when the server does not advertise it: only tests set
    /// it, to reach a server that advertises the extension but refuses it (older OpenSSH with
    /// `-P`, file systems without hard links) through one that refuses it and says so.
    assume_hardlink: bool,
}

impl SftpStorage {
    pub fn open(url: &str, opts: &SftpOptions) -> Result<SftpStorage> {
        let u = url::parse(url)?;
        let mut args: Vec<OsString> = vec![];
        let mut o = |v: &str| {
            args.push("-o".into());
            args.push(v.into());
        };
        o("BatchMode=yes");
        o(if opts.accept_new {
            "StrictHostKeyChecking=accept-new"
        } else {
            "StrictHostKeyChecking=yes"
        });
        o("ServerAliveInterval=10");
        o("ServerAliveCountMax=3");
        o("ConnectTimeout=20");
        o("ForwardX11=no");
        o("ForwardAgent=no");
        o("RequestTTY=no");
        // -v: ssh then names the host key it was offered, which an unknown-host error shows.
        args.push("-v".into());
        if let Some(cfg) = &opts.config {
            if !cfg.is_file() {
                return Err(Error::invalid(format!(
                    "ssh config file {} does not exist",
                    cfg.display()
                )));
            }
            args.push("-F".into());
            args.push(cfg.into());
        }
        if let Some(key) = &opts.key {
            if !key.is_file() {
                return Err(Error::invalid(format!(
                    "ssh key file {} does not exist (--ssh-key)",
                    key.display()
                )));
            }
            args.push("-i".into());
            args.push(key.into());
        }
        if let Some(p) = u.port {
            args.push("-p".into());
            args.push(p.to_string().into());
        }
        if let Some(user) = &u.user {
            args.push("-l".into());
            args.push(user.into());
        }
        args.push("-s".into());
        args.push("--".into());
        args.push(u.host.clone().into());
        args.push("sftp".into());
        let spec = SshSpec {
            program: opts.program.clone().unwrap_or_else(|| "ssh".into()),
            args,
            label: url.to_string(),
            host: u.host.clone(),
        };
        let connections = opts.connections.unwrap_or(DEFAULT_CONNECTIONS);
        Ok(SftpStorage {
            inner: Arc::new(Inner {
                pool: Pool::new(spec, connections),
                root: u.path,
                label: url.to_string(),
                connections,
                assume_hardlink: false,
            }),
        })
    }

    /// This storage sends `hardlink@openssh.com` for the config whether or not the server
    /// advertises it (see [`Inner::assume_hardlink`]).
    #[cfg(test)]
    fn assuming_hardlink(mut self) -> SftpStorage {
        Arc::get_mut(&mut self.inner)
            .expect("not shared yet")
            .assume_hardlink = true;
        self
    }
}

impl Inner {
    fn join(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.root.clone()
        } else if self.root.ends_with('/') {
            format!("{}{rel}", self.root)
        } else {
            format!("{}/{rel}", self.root)
        }
    }

    fn object_path(&self, kind: FileKind, name: &str) -> Result<String> {
        check_name(kind, name)?;
        Ok(self.join(&kind.path(name)))
    }

    fn not_found(&self, kind: FileKind, name: &str, e: Error) -> Error {
        if e.kind() == ErrorKind::NotFound {
            missing(kind, name, &self.label)
        } else {
            e
        }
    }

    /// Upload an object through a temporary name, then rename it into place.
    fn put(&self, kind: FileKind, name: &str, src: &Source) -> Result<()> {
        let path = self.object_path(kind, name)?;
        let dir = path
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .expect("object paths have a directory");
        self.pool.run(|c, _| {
            let label = &self.label;
            let tmp = format!("{dir}/.tmp-{name}-{:016x}", rand::random::<u64>());
            let flags = FXF_WRITE | FXF_CREAT | FXF_EXCL | FXF_TRUNC;
            let handle = match ops::open(c, label, &tmp, flags) {
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    if kind == FileKind::Pack && ops::stat(c, label, &self.join("data")).is_ok() {
                        // A shard directory lost by a copy that skips empty directories.
                        ops::mkdirs(c, label, std::slice::from_ref(&dir))?;
                        ops::open(c, label, &tmp, flags)?
                    } else {
                        return Err(Error::new(
                            ErrorKind::RepositoryNotFound,
                            format!("no repository at {label} (run `rime init`)"),
                        ));
                    }
                }
                r => r?,
            };
            let written = ops::write_all(c, label, &handle, &tmp, src)
                .and_then(|()| ops::fsync(c, label, &handle, &tmp));
            let closed = ops::close(c, label, &handle, &tmp);
            let hardlink = self.assume_hardlink || c.has_extension("hardlink@openssh.com");
            let result = written.and(closed).and_then(|()| match kind {
                FileKind::Config => ops::move_no_replace(c, label, &tmp, &path, hardlink),
                _ => ops::rename_over(c, label, &tmp, &path, src_len(src)),
            });
            if let Err(e) = result {
                if c.is_dead() {
                    return Err(e); // the temporary file stays; `list` ignores it
                }
                let _ = ops::remove(c, label, &tmp);
                if kind == FileKind::Config && ops::stat(c, label, &path).is_ok() {
                    let ours = match src {
                        Source::Slice(s) => *s,
                        Source::File(..) => &[][..],
                    };
                    let existing = ops::read_whole(c, label, &path);
                    return crate::storage::existing_config(label, existing, ours);
                }
                if e.kind() == ErrorKind::Io {
                    let need = src_len(src).max(1 << 20);
                    if ops::free_bytes(c, &dir).is_some_and(|free| free < need) {
                        return Err(Error::new(
                            ErrorKind::NoSpace,
                            format!(
                                "{label}: no space left on the server for {} ({e})",
                                kind.path(name)
                            ),
                        ));
                    }
                }
                return Err(e.within(format!("cannot write {}", kind.path(name))));
            }
            Ok(())
        })
    }

    /// Read `len` bytes at `offset`, or the whole object when `len` is None.
    fn get(&self, kind: FileKind, name: &str, range: Option<(u64, u64)>) -> Result<Vec<u8>> {
        let path = self.object_path(kind, name)?;
        self.pool.run(|c, _| {
            let label = &self.label;
            let handle =
                ops::open(c, label, &path, FXF_READ).map_err(|e| self.not_found(kind, name, e))?;
            let data = (|| {
                let (offset, len) = match range {
                    Some(r) => r,
                    None => (0, ops::fstat(c, label, &handle, &path)?),
                };
                let data = ops::read_at(c, label, &handle, &path, offset, len)?;
                if (data.len() as u64) < len {
                    return Err(Error::corrupt(format!(
                        "{label}: {} is truncated: wanted bytes {offset}..{} but it ends at {}",
                        kind.path(name),
                        offset + len,
                        offset + data.len() as u64
                    )));
                }
                Ok(data)
            })();
            let closed = ops::close(c, label, &handle, &path);
            let data = data?;
            closed?;
            Ok(data)
        })
    }
}

fn src_len(src: &Source) -> u64 {
    match src {
        Source::Slice(s) => s.len() as u64,
        Source::File(_, n) => *n,
    }
}

impl Storage for SftpStorage {
    fn concurrency(&self) -> usize {
        self.inner.connections.max(1)
    }

    fn location(&self) -> String {
        self.inner.label.clone()
    }

    fn create(&self) -> Result<()> {
        let i = &self.inner;
        let mut dirs = vec![];
        // Parents first: the server handles pipelined requests in order.
        let abs = i.root.starts_with('/');
        let mut acc = String::new();
        for part in i.root.split('/').filter(|p| !p.is_empty() && *p != ".") {
            if abs || !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            dirs.push(acc.clone());
        }
        for kind in FileKind::ALL {
            if kind != FileKind::Config {
                dirs.push(i.join(kind.dir()));
            }
        }
        for b in 0..=255u8 {
            dirs.push(i.join(&format!("data/{b:02x}")));
        }
        i.pool.run(|c, _| ops::mkdirs(c, &i.label, &dirs))
    }

    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        let i = &self.inner;
        if kind == FileKind::Config {
            return match self.size(kind, "config") {
                Ok(size) => Ok(vec![ObjectInfo {
                    name: "config".into(),
                    size,
                }]),
                Err(e) if e.kind() == ErrorKind::MissingObject => Ok(vec![]),
                Err(e) => Err(e),
            };
        }
        let dirs: Vec<String> = match kind {
            FileKind::Pack => (0..=255u8)
                .map(|b| i.join(&format!("data/{b:02x}")))
                .collect(),
            _ => vec![i.join(kind.dir())],
        };
        let entries = i.pool.run(|c, _| ops::list_dirs(c, &i.label, &dirs))?;
        let mut out = Vec::with_capacity(entries.len());
        for ops::Listed { name, attrs, .. } in entries {
            if check_name(kind, &name).is_err() {
                continue; // temporary files, ".", ".." and strangers
            }
            let size = match attrs.size {
                Some(s) => s,
                None => self.size(kind, &name)?,
            };
            out.push(ObjectInfo { name, size });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.inner.get(kind, name, None)
    }

    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.inner.get(kind, name, Some((offset, len)))
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.inner.put(kind, name, &Source::Slice(data))
    }

    fn begin_write(&self, kind: FileKind) -> Result<Box<dyn PendingObject>> {
        Ok(Box::new(SpooledObject {
            inner: self.inner.clone(),
            kind,
            file: spool_file()?,
            len: 0,
        }))
    }

    /// `.tmp-*` files whose last write (the server's clock) is at least `age` ago by this
    /// machine's clock: `age` is a day, far beyond any sane clock skew between the two.
    fn remove_leftovers(&self, age: std::time::Duration) -> Result<(u64, u64)> {
        let i = &self.inner;
        let mut dirs: Vec<String> = FileKind::ALL
            .iter()
            .filter(|k| **k != FileKind::Config && **k != FileKind::Pack)
            .map(|k| i.join(k.dir()))
            .collect();
        dirs.extend((0..=255u8).map(|b| i.join(&format!("data/{b:02x}"))));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let entries = i.pool.run(|c, _| ops::list_dirs(c, &i.label, &dirs))?;
        let (mut files, mut bytes) = (0, 0);
        for e in entries {
            let old = e
                .attrs
                .mtime
                .is_some_and(|m| now.saturating_sub(u64::from(m)) >= age.as_secs());
            if !e.name.starts_with(".tmp-") || !old {
                continue;
            }
            let path = format!("{}/{}", dirs[e.dir], e.name);
            // Best effort, as for local storage: a leftover that cannot be removed now is
            // tried again by the next prune.
            if i.pool.run(|c, _| ops::remove(c, &i.label, &path)).is_ok() {
                files += 1;
                bytes += e.attrs.size.unwrap_or(0);
            }
        }
        Ok((files, bytes))
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let i = &self.inner;
        let path = i.object_path(kind, name)?;
        i.pool
            .run(|c, retried| match ops::remove(c, &i.label, &path) {
                // The first attempt may have removed it before its connection died.
                Err(e) if e.kind() == ErrorKind::NotFound && retried => Ok(()),
                r => r.map_err(|e| i.not_found(kind, name, e)),
            })
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        let i = &self.inner;
        let path = i.object_path(kind, name)?;
        i.pool
            .run(|c, _| ops::stat(c, &i.label, &path))
            .map_err(|e| i.not_found(kind, name, e))
    }
}

/// An unnamed local temporary file (unlinked at once, so nothing is left behind by a crash).
fn spool_file() -> Result<File> {
    let dir = std::env::temp_dir();
    let path = dir.join(format!(".rime-spool-{:016x}", rand::random::<u64>()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            Error::io(
                format!("cannot create a spool file in {}", dir.display()),
                e,
            )
        })?;
    let _ = std::fs::remove_file(&path);
    Ok(f)
}

/// A pack being written: spooled to a local temporary file, uploaded at commit. Spooling keeps
/// memory bounded and lets the upload be retried from the start after a dropped connection
/// (the generic retry wrapper cannot replay a stream, so the commit retries by itself).
struct SpooledObject {
    inner: Arc<Inner>,
    kind: FileKind,
    file: File,
    len: u64,
}

impl PendingObject for SpooledObject {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.file
            .write_all(data)
            .map_err(|e| Error::io("cannot write to the local spool file", e))?;
        self.len += data.len() as u64;
        Ok(())
    }

    fn commit(self: Box<Self>, _storage: &dyn Storage, name: &str) -> Result<()> {
        check_name(self.kind, name)?;
        let src = Source::File(&self.file, self.len);
        with_retries(&RetryPolicy::default(), |_| {
            self.inner.put(self.kind, name, &src)
        })
    }
}

#[cfg(test)]
mod tests;
