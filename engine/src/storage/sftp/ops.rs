//! File operations on one SFTP connection, with pipelined transfers.
//!
//! Errors from the server are mapped to kinds here (`NotFound` for a missing file, which the
//! storage turns into `MissingObject` naming the object); every message names the location
//! and the remote path.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;

use super::conn::{Conn, Ticket};
use super::protocol::*;
use crate::error::{Error, ErrorKind, Result};

/// Bytes per READ/WRITE request (OpenSSH accepts up to 256 KiB packets).
const CHUNK: usize = 128 << 10;
/// Requests in flight per transfer: enough to hide the round trip on a LAN or WAN link.
const WINDOW: usize = 32;

/// Where the bytes of an upload come from.
pub enum Source<'a> {
    Slice(&'a [u8]),
    File(&'a File, u64),
}

impl Source<'_> {
    fn len(&self) -> u64 {
        match self {
            Source::Slice(s) => s.len() as u64,
            Source::File(_, n) => *n,
        }
    }
}

/// An error for an SFTP status code.
pub fn status_error(label: &str, what: &str, code: u32, msg: &str) -> Error {
    let kind = match code {
        FX_NO_SUCH_FILE => ErrorKind::NotFound,
        FX_PERMISSION_DENIED => ErrorKind::PermissionDenied,
        FX_NO_CONNECTION | FX_CONNECTION_LOST => ErrorKind::Unavailable,
        FX_BAD_MESSAGE | FX_OP_UNSUPPORTED => ErrorKind::Unsupported,
        // FX_FAILURE: the server's catch-all (a full disk on older OpenSSH, a rename onto an
        // existing name, a transient fault): retried.
        _ => ErrorKind::Io,
    };
    let msg = if msg.is_empty() { "failure" } else { msg };
    Error::new(kind, format!("{label}: {what}: {msg} (SFTP status {code})"))
}

/// Decode a STATUS reply; Ok(()) for OK, an error for anything else.
pub fn check_status(c: &Conn, mut r: Reply, label: &str, what: &str) -> Result<()> {
    if r.ty != FXP_STATUS {
        return Err(c.malformed());
    }
    let code = r.u32()?;
    if code == FX_OK {
        return Ok(());
    }
    let msg = r.string().unwrap_or_default();
    Err(status_error(label, what, code, &msg))
}

fn handle_reply(c: &Conn, mut r: Reply, label: &str, what: &str) -> Result<Vec<u8>> {
    match r.ty {
        FXP_HANDLE => Ok(r.bytes()?.to_vec()),
        _ => check_status(c, r, label, what).and_then(|()| Err(c.malformed())),
    }
}

pub fn open(c: &Conn, label: &str, path: &str, flags: u32) -> Result<Vec<u8>> {
    let r = c.call(|id| Request::new(FXP_OPEN, id).str(path).u32(flags).no_attrs())?;
    handle_reply(c, r, label, &format!("cannot open {path}"))
}

pub fn close(c: &Conn, label: &str, handle: &[u8], path: &str) -> Result<()> {
    let r = c.call(|id| Request::new(FXP_CLOSE, id).bytes(handle))?;
    check_status(c, r, label, &format!("cannot close {path}"))
}

fn size_reply(c: &Conn, mut r: Reply, label: &str, what: &str) -> Result<u64> {
    match r.ty {
        FXP_ATTRS => r.attrs()?.size.ok_or_else(|| {
            Error::new(
                ErrorKind::Io,
                format!("{label}: {what}: the server sent no size"),
            )
        }),
        _ => check_status(c, r, label, what).and_then(|()| Err(c.malformed())),
    }
}

pub fn stat(c: &Conn, label: &str, path: &str) -> Result<u64> {
    let r = c.call(|id| Request::new(FXP_STAT, id).str(path))?;
    size_reply(c, r, label, &format!("cannot stat {path}"))
}

pub fn fstat(c: &Conn, label: &str, handle: &[u8], path: &str) -> Result<u64> {
    let r = c.call(|id| Request::new(FXP_FSTAT, id).bytes(handle))?;
    size_reply(c, r, label, &format!("cannot stat {path}"))
}

pub fn remove(c: &Conn, label: &str, path: &str) -> Result<()> {
    let r = c.call(|id| Request::new(FXP_REMOVE, id).str(path))?;
    check_status(c, r, label, &format!("cannot remove {path}"))
}

/// Create directories, pipelined; one that already exists is fine.
pub fn mkdirs(c: &Conn, label: &str, paths: &[String]) -> Result<()> {
    let tickets = paths
        .iter()
        .map(|p| c.send(|id| Request::new(FXP_MKDIR, id).str(p).no_attrs()))
        .collect::<Result<Vec<_>>>()?;
    let mut failed = vec![];
    for (p, t) in paths.iter().zip(tickets) {
        let r = c.wait(t)?;
        if let Err(e) = check_status(c, r, label, &format!("cannot create directory {p}")) {
            failed.push((p, e));
        }
    }
    // OpenSSH reports an existing directory as a plain failure: look before complaining.
    for (p, e) in failed {
        let r = c.call(|id| Request::new(FXP_STAT, id).str(p))?;
        if r.ty != FXP_ATTRS {
            return Err(e);
        }
    }
    Ok(())
}

/// Rename `from` to `to`, replacing `to` (objects are immutable: the same name holds the same
/// bytes, so replacing is an idempotent rewrite). Plain SFTP v3 rename refuses an existing
/// target; then an existing target of the right size counts as success.
pub fn rename_over(c: &Conn, label: &str, from: &str, to: &str, size: u64) -> Result<()> {
    let what = format!("cannot rename {from} to {to}");
    if c.has_extension("posix-rename@openssh.com") {
        let r = c.call(|id| {
            Request::new(FXP_EXTENDED, id)
                .str("posix-rename@openssh.com")
                .str(from)
                .str(to)
        })?;
        return check_status(c, r, label, &what);
    }
    let r = c.call(|id| Request::new(FXP_RENAME, id).str(from).str(to))?;
    match check_status(c, r, label, &what) {
        Ok(()) => Ok(()),
        Err(e) => match stat(c, label, to) {
            Ok(n) if n == size => {
                let _ = remove(c, label, from);
                Ok(())
            }
            _ => Err(e),
        },
    }
}

/// Move `from` to `to` only if `to` does not exist (the config is create-only). OpenSSH's
/// `hardlink@openssh.com` is link(2), which refuses an existing target; SFTP v3's plain RENAME
/// refuses one too (OpenSSH implements it with link(2) and unlink(2); on a file system without
/// hard links it stats the target, then renames).
///
/// `hardlink` says whether to try the extension first (the server advertises it). A server can
/// advertise it and still refuse it: a deny list (`internal-sftp -P hardlink`) answers
/// PERMISSION_DENIED, a file system without hard links (FUSE, SMB, vfat mounts) fails link(2)
/// with a permission, unsupported or plain failure status. Then, if `to` does not exist, the
/// plain RENAME does the move; if it exists (another writer won the race), the refusal stands
/// and the caller compares the bytes there with its own.
pub fn move_no_replace(c: &Conn, label: &str, from: &str, to: &str, hardlink: bool) -> Result<()> {
    let what = format!("cannot rename {from} to {to}");
    if hardlink {
        let r = c.call(|id| {
            Request::new(FXP_EXTENDED, id)
                .str("hardlink@openssh.com")
                .str(from)
                .str(to)
        })?;
        match check_status(c, r, label, &what) {
            Ok(()) => {
                let _ = remove(c, label, from);
                return Ok(());
            }
            Err(e) if !link_refused(&e) => return Err(e),
            Err(e) => match stat(c, label, to) {
                Err(s) if s.kind() == ErrorKind::NotFound => {} // refused, not raced: rename
                _ => return Err(e),
            },
        }
    }
    let r = c.call(|id| Request::new(FXP_RENAME, id).str(from).str(to))?;
    check_status(c, r, label, &what)
}

/// Whether a failed `hardlink@openssh.com` may be the server or its file system refusing hard
/// links (rather than, say, a missing source): PERMISSION_DENIED, OP_UNSUPPORTED or FAILURE
/// (also what link(2) onto an existing name gives, hence the caller's look at the target).
fn link_refused(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::PermissionDenied | ErrorKind::Unsupported | ErrorKind::Io
    )
}

/// The whole content of a file.
pub fn read_whole(c: &Conn, label: &str, path: &str) -> Result<Vec<u8>> {
    let handle = open(c, label, path, FXF_READ)?;
    let data = fstat(c, label, &handle, path).and_then(|n| read_at(c, label, &handle, path, 0, n));
    let closed = close(c, label, &handle, path);
    let data = data?;
    closed?;
    Ok(data)
}

pub fn fsync(c: &Conn, label: &str, handle: &[u8], path: &str) -> Result<()> {
    if !c.has_extension("fsync@openssh.com") {
        return Ok(());
    }
    let r = c.call(|id| {
        Request::new(FXP_EXTENDED, id)
            .str("fsync@openssh.com")
            .bytes(handle)
    })?;
    check_status(c, r, label, &format!("cannot sync {path}"))
}

/// Bytes available to an unprivileged user on the file system holding `path`, if the server
/// can tell (statvfs@openssh.com). Used to tell a full disk from other write failures, which
/// SFTP v3 reports alike.
pub fn free_bytes(c: &Conn, path: &str) -> Option<u64> {
    if !c.has_extension("statvfs@openssh.com") {
        return None;
    }
    let mut r = c
        .call(|id| {
            Request::new(FXP_EXTENDED, id)
                .str("statvfs@openssh.com")
                .str(path)
        })
        .ok()?;
    if r.ty != FXP_EXTENDED_REPLY {
        return None;
    }
    let _bsize = r.u64().ok()?;
    let frsize = r.u64().ok()?;
    let _blocks = r.u64().ok()?;
    let _bfree = r.u64().ok()?;
    let bavail = r.u64().ok()?;
    Some(bavail.saturating_mul(frsize))
}

/// Write `src` to a file opened for writing, with up to [`WINDOW`] requests in flight.
pub fn write_all(c: &Conn, label: &str, handle: &[u8], path: &str, src: &Source) -> Result<()> {
    let what = format!("cannot write {path}");
    let total = src.len();
    let mut inflight: VecDeque<Ticket> = VecDeque::with_capacity(WINDOW);
    let mut buf = Vec::new();
    let mut off = 0u64;
    // With an upload limit, each write request waits for its share of the budget.
    let pacer = crate::storage::bandwidth::Pacer::current();
    while off < total || !inflight.is_empty() {
        while off < total && inflight.len() < WINDOW {
            let n = (total - off).min(CHUNK as u64) as usize;
            if let Some(p) = &pacer {
                p.take(n as u64);
            }
            let data: &[u8] = match src {
                Source::Slice(s) => &s[off as usize..off as usize + n],
                Source::File(f, _) => {
                    buf.resize(n, 0);
                    f.read_exact_at(&mut buf, off)
                        .map_err(|e| Error::io("cannot read the spooled object back", e))?;
                    &buf
                }
            };
            inflight.push_back(c.send(|id| {
                Request::new(FXP_WRITE, id)
                    .bytes(handle)
                    .u64(off)
                    .bytes(data)
            })?);
            off += n as u64;
        }
        if let Some(t) = inflight.pop_front() {
            let r = c.wait(t)?;
            check_status(c, r, label, &what)?;
        }
    }
    Ok(())
}

/// Read `len` bytes from `offset` with pipelined requests. Returns fewer bytes only if the file
/// ends early (the caller decides whether that is corruption).
pub fn read_at(
    c: &Conn,
    label: &str,
    handle: &[u8],
    path: &str,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>> {
    let what = format!("cannot read {path}");
    let len_usize = usize::try_from(len).map_err(|_| Error::invalid("range too large"))?;
    let mut out = vec![0u8; len_usize];
    // Requests as (relative offset, length, ticket); a short reply queues the rest again.
    let mut todo: VecDeque<(u64, u32)> = VecDeque::new();
    let mut pos = 0u64;
    while pos < len {
        let n = (len - pos).min(CHUNK as u64);
        todo.push_back((pos, n as u32));
        pos += n;
    }
    let mut inflight: VecDeque<(u64, u32, Ticket)> = VecDeque::new();
    let mut end = len; // lowered when the server reports end of file
    loop {
        while inflight.len() < WINDOW {
            let Some((rel, n)) = todo.pop_front() else {
                break;
            };
            if rel >= end {
                continue;
            }
            let t = c.send(|id| {
                Request::new(FXP_READ, id)
                    .bytes(handle)
                    .u64(offset + rel)
                    .u32(n)
            })?;
            inflight.push_back((rel, n, t));
        }
        let Some((rel, n, t)) = inflight.pop_front() else {
            break;
        };
        let r = c.wait(t)?;
        match r.ty {
            FXP_DATA => {
                let data = r.into_data()?;
                let got = data.len().min(n as usize);
                let at = rel as usize;
                out[at..at + got].copy_from_slice(&data[..got]);
                if got == 0 {
                    end = end.min(rel);
                } else if got < n as usize {
                    todo.push_front((rel + got as u64, n - got as u32));
                }
            }
            _ => {
                let mut r = r;
                if r.ty == FXP_STATUS {
                    let code = r.u32()?;
                    if code == FX_EOF {
                        end = end.min(rel);
                        continue;
                    }
                    let msg = r.string().unwrap_or_default();
                    return Err(status_error(label, &what, code, &msg));
                }
                return Err(c.malformed());
            }
        }
    }
    out.truncate(end as usize);
    Ok(out)
}

/// One name read from a directory listing, with the index of its directory in the request.
pub struct Listed {
    pub dir: usize,
    pub name: String,
    pub attrs: Attrs,
}

/// The entries of several directories, listed together so that the 256 pack directories cost
/// a few round trips, not hundreds. Missing directories are skipped.
pub fn list_dirs(c: &Conn, label: &str, dirs: &[String]) -> Result<Vec<Listed>> {
    let opens = dirs
        .iter()
        .map(|d| c.send(|id| Request::new(FXP_OPENDIR, id).str(d)))
        .collect::<Result<Vec<_>>>()?;
    let mut handles = vec![];
    for (i, (d, t)) in dirs.iter().zip(opens).enumerate() {
        let r = c.wait(t)?;
        match handle_reply(c, r, label, &format!("cannot list {d}")) {
            Ok(h) => handles.push((i, d, h)),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let mut out = vec![];
    let mut open = handles;
    while !open.is_empty() {
        let reads = open
            .iter()
            .map(|(_, _, h)| c.send(|id| Request::new(FXP_READDIR, id).bytes(h)))
            .collect::<Result<Vec<_>>>()?;
        let mut still = vec![];
        for ((i, d, h), t) in open.into_iter().zip(reads) {
            let mut r = c.wait(t)?;
            if r.ty == FXP_NAME {
                for _ in 0..r.u32()? {
                    let name = r.string()?;
                    r.string()?; // long name
                    let attrs = r.attrs()?;
                    out.push(Listed {
                        dir: i,
                        name,
                        attrs,
                    });
                }
                still.push((i, d, h));
                continue;
            }
            if r.ty != FXP_STATUS {
                return Err(c.malformed());
            }
            let code = r.u32()?;
            if code != FX_EOF {
                let msg = r.string().unwrap_or_default();
                return Err(status_error(label, &format!("cannot list {d}"), code, &msg));
            }
            close(c, label, &h, d)?;
        }
        open = still;
    }
    Ok(out)
}
