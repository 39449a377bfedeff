//! Applying (extracting) a GNU tar incremental archive to a directory, the way
//! `tar --extract --listed-incremental=/dev/null --overwrite` does: members replace what is on
//! disk, and each dumpdir member deletes the entries of its directory that it does not list.
//! Applying levels 0..N in order reproduces the tree of level N, deletions included.
//!
//! Safety: member names are confined to the target (leading `/` and `.` are dropped, names
//! with `..` are skipped with a warning), and nothing is written through a symlink inside the
//! target. The first header is read and checked before anything on disk is touched, so a stream
//! decrypted with a wrong key or of the wrong format fails without writing. Nothing is purged or
//! removed inside another file system mounted in the target (see [`super::remove`]): restoring
//! `/srv` in place must not empty `/srv/data` when that is a mount the backup did not enter.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::header::{Entry, EntryKind};
use super::read::TarReader;
use super::remove::{on_other_fs, remove_same_fs};
use crate::error::{Error, IoContext, Result};

/// Extraction options.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Restore owners (from the user/group names, falling back to the numeric ids). Defaults
    /// to whether we run as root, like GNU tar.
    pub same_owner: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            same_owner: crate::sys::geteuid() == 0,
        }
    }
}

/// What an extraction did, and the non-fatal problems it met.
#[derive(Debug, Default, Clone)]
pub struct ApplyStats {
    pub members: u64,
    pub bytes: u64,
    /// Entries deleted because a dumpdir no longer listed them.
    pub deleted: u64,
    pub warnings: Vec<String>,
}

struct Ctx<'a> {
    target: &'a Path,
    /// The target's device: directories on another one are never purged nor removed.
    target_dev: u64,
    opts: &'a ApplyOptions,
    stats: ApplyStats,
    /// Directories whose metadata is set at the end (writing into them changes their mtime).
    dirs: Vec<(PathBuf, Entry)>,
    /// Parent directories already checked to be real directories inside the target.
    checked: HashSet<PathBuf>,
    uids: HashMap<Vec<u8>, Option<u32>>,
    gids: HashMap<Vec<u8>, Option<u32>>,
}

/// Extract every member of `reader` into `target` (created if missing).
pub fn apply<R: Read>(
    reader: &mut TarReader<R>,
    target: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyStats> {
    // Read the first member before touching the disk: a wrong key or format stops here.
    let first = reader.next_entry()?;
    fs::create_dir_all(target).io_context(|| format!("restore target {}", target.display()))?;
    let target_dev = fs::metadata(target)
        .io_context(|| format!("restore target {}", target.display()))?
        .dev();
    let mut ctx = Ctx {
        target,
        target_dev,
        opts,
        stats: ApplyStats::default(),
        dirs: Vec::new(),
        checked: HashSet::new(),
        uids: HashMap::new(),
        gids: HashMap::new(),
    };
    let mut next = first;
    while let Some(e) = next {
        ctx.stats.members += 1;
        ctx.member(reader, e)?;
        next = reader.next_entry()?;
    }
    for (p, e) in std::mem::take(&mut ctx.dirs).into_iter().rev() {
        ctx.metadata(&p, &e, false);
    }
    Ok(ctx.stats)
}

/// Member name → path components under the target; `None` if it escapes (`..`).
fn components(name: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn join(target: &Path, comps: &[&[u8]]) -> PathBuf {
    let mut p = target.to_path_buf();
    for c in comps {
        p.push(OsStr::from_bytes(c));
    }
    p
}

impl Ctx<'_> {
    fn warn(&mut self, w: String) {
        self.stats.warnings.push(w);
    }

    fn io(&self, p: &Path, e: std::io::Error) -> Error {
        Error::io(format!("restoring {}", p.display()), e)
    }

    /// Remove whatever is at `p`, except directories on another file system than the target's;
    /// `false` (with a warning saying `what` was not done) when some had to stay.
    fn remove(&mut self, p: &Path, what: &str) -> Result<bool> {
        let kept = remove_same_fs(p, self.target_dev).map_err(|x| self.io(p, x))?;
        if kept.is_empty() {
            return Ok(true);
        }
        let kept: Vec<String> = kept.iter().map(|k| k.display().to_string()).collect();
        self.warn(format!(
            "{}: {what}: {} on another file system (a mount point), left alone",
            p.display(),
            kept.join(", ")
        ));
        Ok(false)
    }

    /// Make sure every parent of `comps` is a real directory inside the target.
    fn parents(&mut self, comps: &[&[u8]]) -> Result<bool> {
        let mut p = self.target.to_path_buf();
        for (i, c) in comps.iter().enumerate().take(comps.len().saturating_sub(1)) {
            p.push(OsStr::from_bytes(c));
            if self.checked.contains(&p) {
                continue;
            }
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    self.warn(format!(
                        "{}: not a directory (or a symlink); not writing {} through it",
                        p.display(),
                        String::from_utf8_lossy(&comps[..=i].join(&b'/')),
                    ));
                    return Ok(false);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    fs::create_dir(&p).map_err(|e| self.io(&p, e))?;
                }
                Err(e) => return Err(self.io(&p, e)),
            }
            self.checked.insert(p.clone());
        }
        Ok(true)
    }

    fn member<R: Read>(&mut self, r: &mut TarReader<R>, mut e: Entry) -> Result<()> {
        let comps = match components(&e.path) {
            Some(c) => c,
            None => {
                self.warn(format!(
                    "{}: member name contains \"..\"; skipped",
                    String::from_utf8_lossy(&e.path)
                ));
                return Ok(());
            }
        };
        let comps: Vec<Vec<u8>> = comps.into_iter().map(<[u8]>::to_vec).collect();
        let comps: Vec<&[u8]> = comps.iter().map(Vec::as_slice).collect();
        if !self.parents(&comps)? {
            return Ok(());
        }
        let path = join(self.target, &comps);
        match e.kind {
            EntryKind::Directory | EntryKind::Dumpdir => {
                match fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        fs::remove_file(&path).map_err(|x| self.io(&path, x))?;
                        fs::create_dir(&path).map_err(|x| self.io(&path, x))?;
                    }
                    Err(_) => fs::create_dir_all(&path).map_err(|x| self.io(&path, x))?,
                }
                self.checked.insert(path.clone());
                if e.kind == EntryKind::Dumpdir {
                    let data = match e.dumpdir.take() {
                        Some(d) => d, // from a pax `GNU.dumpdir` record
                        None => r.data_to_vec(1 << 30)?,
                    };
                    self.dumpdir(&path, &data)?;
                }
                self.dirs.push((path, e));
                return Ok(());
            }
            _ => {}
        }
        // Replace whatever is there (GNU tar --overwrite unlinks first, which also breaks
        // hard links instead of writing through them).
        if !self.remove(&path, "not replaced by the archive's member")? {
            return Ok(());
        }
        match e.kind {
            EntryKind::Regular | EntryKind::Sparse => {
                let f = File::create(&path).map_err(|x| self.io(&path, x))?;
                if let Err(err) = self.file_data(r, &e, &path, f) {
                    // Never leave a file under its real name with part (or damaged bytes) of
                    // its content: set it aside, as a restore from a rime repository does; or,
                    // when the target is full, remove it (the archive still holds it all).
                    let note = match err.kind() {
                        crate::ErrorKind::NoSpace => crate::ops::restore::remove_partial(&path),
                        _ => crate::ops::restore::set_aside(&path),
                    };
                    return Err(err.note(note));
                }
                self.stats.bytes += e.size;
            }
            EntryKind::HardLink => {
                let lc = match components(&e.link) {
                    Some(c) if !c.is_empty() => c,
                    _ => {
                        self.warn(format!(
                            "{}: hard link target {:?} outside the archive; skipped",
                            path.display(),
                            String::from_utf8_lossy(&e.link)
                        ));
                        return Ok(());
                    }
                };
                let src = join(self.target, &lc);
                if let Err(x) = fs::hard_link(&src, &path) {
                    self.warn(format!(
                        "{}: cannot link to {}: {x}",
                        path.display(),
                        src.display()
                    ));
                }
                return Ok(());
            }
            EntryKind::Symlink => {
                std::os::unix::fs::symlink(OsStr::from_bytes(&e.link), &path)
                    .map_err(|x| self.io(&path, x))?;
            }
            EntryKind::Fifo | EntryKind::CharDevice | EntryKind::BlockDevice => {
                let (t, rdev) = match e.kind {
                    EntryKind::Fifo => (libc::S_IFIFO, 0),
                    EntryKind::CharDevice => (libc::S_IFCHR, makedev(e.dev_major, e.dev_minor)),
                    _ => (libc::S_IFBLK, makedev(e.dev_major, e.dev_minor)),
                };
                if let Err(x) = crate::sys::mknod(&path, t | e.mode, rdev) {
                    self.warn(format!(
                        "{}: cannot create special file: {x}",
                        path.display()
                    ));
                    return Ok(());
                }
            }
            EntryKind::Other(f) => {
                self.warn(format!(
                    "{}: unsupported member type {:?}; skipped",
                    path.display(),
                    f as char
                ));
                return Ok(());
            }
            EntryKind::Directory | EntryKind::Dumpdir => unreachable!("handled above"),
        }
        self.metadata(&path, &e, e.kind == EntryKind::Symlink);
        Ok(())
    }

    /// Write a regular or sparse member's data into `f`, just created at `path`.
    fn file_data<R: Read>(
        &self,
        r: &mut TarReader<R>,
        e: &Entry,
        path: &Path,
        mut f: File,
    ) -> Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        if e.kind == EntryKind::Sparse {
            for &(off, len) in &e.sparse {
                f.seek(SeekFrom::Start(off)).map_err(|x| self.io(path, x))?;
                let mut left = len;
                while left > 0 {
                    let want = (buf.len() as u64).min(left) as usize;
                    let n = r.read_data(&mut buf[..want])?;
                    if n == 0 {
                        return Err(Error::corrupt(format!(
                            "tar member {}: sparse data shorter than its map",
                            path.display()
                        )));
                    }
                    f.write_all(&buf[..n]).map_err(|x| self.io(path, x))?;
                    left -= n as u64;
                }
            }
            f.set_len(e.real_size).map_err(|x| self.io(path, x))?;
        } else {
            // Zeros stored whole (tar without --sparse, as Freezer runs it) become holes.
            let mut w = super::holes::HoleWriter::new(&f);
            loop {
                let n = r.read_data(&mut buf)?;
                if n == 0 {
                    break;
                }
                w.write(&buf[..n]).map_err(|x| self.io(path, x))?;
            }
            w.finish().map_err(|x| self.io(path, x))?;
        }
        Ok(())
    }

    /// Apply a dumpdir: renames (`R`/`T` pairs), then delete entries not listed. Not in a
    /// directory on another file system than the target (GNU tar writes a mount point it did
    /// not enter as an empty dumpdir, which would empty the mounted file system).
    fn dumpdir(&mut self, dir: &Path, data: &[u8]) -> Result<()> {
        if on_other_fs(dir, self.target, self.target_dev).map_err(|x| self.io(dir, x))? {
            self.warn(format!(
                "{}: on another file system than the restore target (a mount point); \
                 its listing is not applied, nothing in it is deleted",
                dir.display()
            ));
            return Ok(());
        }
        let mut keep: HashSet<&[u8]> = HashSet::new();
        let mut rename_from: Option<&[u8]> = None;
        for item in data.split(|&b| b == 0) {
            let Some((&flag, name)) = item.split_first() else {
                continue;
            };
            match flag {
                b'Y' | b'N' | b'D' => {
                    keep.insert(name);
                }
                b'R' => rename_from = Some(name),
                b'T' => {
                    if let Some(from) = rename_from.take() {
                        self.rename(from, name)?;
                    }
                }
                b'X' => self.warn(format!(
                    "{}: cyclic directory renames are not supported; ignored",
                    dir.display()
                )),
                _ => {}
            }
        }
        let rd = fs::read_dir(dir).map_err(|x| self.io(dir, x))?;
        for ent in rd {
            let ent = ent.map_err(|x| self.io(dir, x))?;
            let name = ent.file_name();
            if !keep.contains(name.as_bytes()) {
                let p = ent.path();
                if self.remove(&p, "not deleted")? {
                    self.stats.deleted += 1;
                }
                self.checked.retain(|c| !c.starts_with(&p));
            }
        }
        Ok(())
    }

    fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<()> {
        let (Some(f), Some(t)) = (components(from), components(to)) else {
            self.warn("directory rename with \"..\" ignored".into());
            return Ok(());
        };
        if f.is_empty() || t.is_empty() {
            return Ok(());
        }
        let (src, dst) = (join(self.target, &f), join(self.target, &t));
        if fs::symlink_metadata(&src).is_ok() && fs::symlink_metadata(&dst).is_err() {
            if !self.parents(&t)? {
                return Ok(());
            }
            fs::rename(&src, &dst).map_err(|x| self.io(&src, x))?;
            self.checked.retain(|c| !c.starts_with(&src));
        }
        Ok(())
    }

    fn lookup(&mut self, name: &[u8], user: bool) -> Option<u32> {
        if name.is_empty() {
            return None;
        }
        let map = if user { &mut self.uids } else { &mut self.gids };
        *map.entry(name.to_vec()).or_insert_with(|| {
            let n = std::str::from_utf8(name).ok()?;
            if user {
                crate::sys::uid_by_name(n)
            } else {
                crate::sys::gid_by_name(n)
            }
        })
    }

    /// Owner, mode and times; failures are warnings (as in GNU tar).
    fn metadata(&mut self, p: &Path, e: &Entry, symlink: bool) {
        if self.opts.same_owner {
            let uid = self.lookup(&e.uname, true).unwrap_or(e.uid as u32);
            let gid = self.lookup(&e.gname, false).unwrap_or(e.gid as u32);
            if let Err(x) = std::os::unix::fs::lchown(p, Some(uid), Some(gid)) {
                self.warn(format!("{}: cannot change owner: {x}", p.display()));
            }
        }
        if !symlink {
            use std::os::unix::fs::PermissionsExt;
            if let Err(x) = fs::set_permissions(p, fs::Permissions::from_mode(e.mode)) {
                self.warn(format!("{}: cannot set mode: {x}", p.display()));
            }
        }
        let mtime = filetime::FileTime::from_unix_time(e.mtime, 0);
        let atime = if e.atime != 0 {
            filetime::FileTime::from_unix_time(e.atime, 0)
        } else {
            mtime
        };
        if let Err(x) = filetime::set_symlink_file_times(p, atime, mtime) {
            self.warn(format!("{}: cannot set times: {x}", p.display()));
        }
    }
}

fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}
