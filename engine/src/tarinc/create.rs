//! Writing a GNU tar incremental archive of a directory tree (`tar --create
//! --listed-incremental=SNAR --format=gnu .` run inside the tree), at level 0 or on top of a
//! previous snapshot state.
//!
//! Every directory is stored as a GNU dumpdir member (typeflag `D`) listing its entries — `Y` in
//! this archive, `N` unchanged since the previous level, `D` a subdirectory — so that extraction
//! (`tar --extract --listed-incremental=/dev/null`) deletes what no longer exists. The exception
//! is a directory on another file system (with one-file-system semantics): it is a plain
//! directory member (typeflag `5`), since its contents are not known. A file is
//! dumped when it is new in its directory (not in the directory's previous dumpdir, or the
//! directory itself is new / has a new inode; its device number is not compared, as with
//! `--no-check-device`) or when its mtime or ctime is not older than the
//! previous snapshot time: GNU tar's rule, so GNU tar and rime can continue each other's chains.
//!
//! Order: each directory's dumpdir, then its files in byte order, then its subdirectories
//! (depth first). GNU tar puts all dumpdirs first; both orders extract identically because a
//! dumpdir only purges names it does not list. Memory holds the directory listings of the new
//! snapshot state (as GNU tar does), never file data.
//!
//! Differences from GNU tar, on purpose: the header atime field is set to the mtime (a real
//! atime would change every header on every run and defeat deduplication of the stream);
//! renamed directories are dumped as new ones instead of `R`/`T` rename records.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::header::{Entry, EntryKind};
use super::scan::{child_arch, Scan, Slot, Stat};
use super::snar::{DumpEntry, Snar, SnarDir};
use super::write::TarWriter;
use crate::error::{Error, Result};

/// What to archive and how.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Do not descend into directories on other file systems (Freezer passes
    /// `--one-file-system`). Such a directory is stored as a plain directory member without a
    /// listing, which GNU tar and rime extract without deleting anything in it. (GNU tar itself
    /// writes an empty dumpdir there, whose extraction empties the mounted file system.)
    pub one_file_system: bool,
    /// Glob patterns, matched as GNU tar's unanchored `--exclude`: an entry whose member name
    /// (`./a/b`) or any trailing part of it (`a/b`, `b`) matches is not dumped (marked `N`, so
    /// extraction keeps whatever is there).
    pub exclude: Vec<String>,
    /// Archive what symbolic links point to instead of the links (`tar --dereference`,
    /// Freezer's `--dereference-symlink soft`). Links to directories are entered; a link that
    /// leads back to a directory being archived is stored as a link, not followed in a loop;
    /// a dangling link is stored as a link, with a warning.
    pub dereference: bool,
    /// Store every hard link as a full copy of the file instead of a link to the first name
    /// (`tar --hard-dereference`, Freezer's `--dereference-symlink hard`).
    pub hard_dereference: bool,
    /// Archive only this entry of the root directory, as `tar -C root NAME` does: Freezer
    /// backs up a single file by archiving its name from its parent directory. The root's
    /// dumpdir member is then left out of the archive (it is still in the snapshot state, for
    /// the next level), so extraction only writes that file and deletes nothing else.
    pub only: Option<Vec<u8>>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            one_file_system: true,
            exclude: Vec::new(),
            dereference: false,
            hard_dereference: false,
            only: None,
        }
    }
}

/// Counters and the non-fatal problems met (unreadable files, files changed while read).
#[derive(Debug, Default, Clone)]
pub struct CreateStats {
    pub dirs: u64,
    pub files_dumped: u64,
    pub files_unchanged: u64,
    pub bytes: u64,
    pub archive_bytes: u64,
    pub warnings: Vec<String>,
    /// How many of the warnings are paths whose content could not be read (missing or
    /// zero-filled in the archive): the backup is partial. Paths on another file system and
    /// links left unfollowed are warnings too, but nothing was lost.
    pub unreadable: u64,
}

/// The result of [`create`]: the sink back (to finish compression/encryption), the new
/// snapshot state to keep for the next level, and statistics.
pub struct CreateOutcome<W> {
    pub out: W,
    pub snar: Snar,
    pub stats: CreateStats,
}

struct Ctx<'a, W: Write> {
    tar: TarWriter<W>,
    scan: &'a Scan,
    prev: HashMap<&'a [u8], &'a SnarDir>,
    level0: bool,
    since: (i64, i64),
    links: HashMap<(u64, u64), Vec<u8>>,
    users: HashMap<u32, Vec<u8>>,
    groups: HashMap<u32, Vec<u8>>,
    stats: CreateStats,
    snar: Snar,
}

/// Archive the tree at `root` into `out` as a GNU incremental archive. `previous` is the state
/// of the last level (`None` for a level 0).
pub fn create<W: Write>(
    root: &Path,
    previous: Option<&Snar>,
    out: W,
    opts: &CreateOptions,
) -> Result<CreateOutcome<W>> {
    create_from(&Scan::start(root, opts)?, previous, out)
}

/// [`create`] from a tree whose reading already started (see [`Scan::start`]), so that the
/// walk overlaps whatever the caller did meanwhile (opening the repository).
pub fn create_from<W: Write>(
    scan: &Scan,
    previous: Option<&Snar>,
    out: W,
) -> Result<CreateOutcome<W>> {
    let mut ctx = Ctx {
        tar: TarWriter::new(out),
        scan,
        prev: previous.map(|p| p.by_name()).unwrap_or_default(),
        level0: previous.is_none(),
        since: previous.map_or((0, 0), |p| (p.time_sec, p.time_nsec)),
        links: HashMap::new(),
        users: HashMap::new(),
        groups: HashMap::new(),
        stats: CreateStats::default(),
        snar: Snar::new(scan.since.0, scan.since.1),
    };
    // Depth-first, sorted: a stack of (directory slot, its lstat).
    let (root, root_stat) = scan.root();
    let mut stack: Vec<(Arc<Slot>, Stat)> = vec![(root.clone(), *root_stat)];
    while let Some((slot, st)) = stack.pop() {
        let subdirs = ctx.dir(&slot, &st)?;
        stack.extend(subdirs.into_iter().rev());
    }
    let mut stats = ctx.stats;
    stats.archive_bytes = ctx.tar.position();
    let out = ctx
        .tar
        .finish()
        .map_err(|e| Error::io("writing tar archive", e))?;
    Ok(CreateOutcome {
        out,
        snar: ctx.snar,
        stats,
    })
}

/// The names a directory had at the previous level. Dumpdirs list names sorted (rime's and GNU
/// tar's), so membership is a binary search on the list itself; an unsorted list (from some
/// other writer) gets a hash set.
enum Known<'a> {
    Sorted(&'a [DumpEntry]),
    Hashed(HashSet<&'a [u8]>),
}

impl<'a> Known<'a> {
    fn new(entries: &'a [DumpEntry]) -> Self {
        if entries.windows(2).all(|w| w[0].name < w[1].name) {
            Known::Sorted(entries)
        } else {
            Known::Hashed(entries.iter().map(|e| e.name.as_slice()).collect())
        }
    }

    fn contains(&self, name: &[u8]) -> bool {
        match self {
            Known::Sorted(e) => e.binary_search_by(|x| x.name.as_slice().cmp(name)).is_ok(),
            Known::Hashed(h) => h.contains(name),
        }
    }
}

fn older(md_sec: i64, md_nsec: i64, since: (i64, i64)) -> bool {
    (md_sec, md_nsec) < since
}

impl<W: Write> Ctx<'_, W> {
    fn warn(&mut self, w: String) {
        self.stats.warnings.push(w);
    }

    /// A path whose content is missing from the archive: a warning that makes the backup partial.
    fn unreadable(&mut self, w: String) {
        self.stats.unreadable += 1;
        self.warn(w);
    }

    /// Dump one directory: its dumpdir member, then its changed non-directory entries.
    /// Returns the subdirectories to visit.
    fn dir(&mut self, slot: &Slot, md: &Stat) -> Result<Vec<(Arc<Slot>, Stat)>> {
        let (path, name) = (slot.path(), slot.arch());
        if self.scan.opts().one_file_system && md.dev != self.scan.root_dev() {
            // Not an empty dumpdir (GNU tar's choice): extracting that with --overwrite onto
            // the live tree would delete everything in the mounted file system.
            self.warn(format!(
                "{}: on a different file system; not dumped",
                path.display()
            ));
            return self.plain_dir_member(name, md).map(|_| Vec::new());
        }
        let listing = match self.scan.take(slot) {
            Ok(l) => l,
            Err(e) if name == b"." => {
                return Err(Error::io(format!("backup root {}", path.display()), e))
            }
            Err(e) => {
                // Not stored at all: an empty dumpdir would delete its contents on extraction.
                self.unreadable(format!(
                    "{}: cannot read directory, not dumped: {e}",
                    path.display()
                ));
                return Ok(Vec::new());
            }
        };
        // The inode alone says whether this is the directory recorded at the previous level,
        // as GNU tar's `--no-check-device` (which Freezer passes): device numbers change when
        // the tree is read from a new LVM/btrfs snapshot mount, a loop or NFS mount, or after
        // a reboot, and comparing them would turn every such level into a full one.
        let prev = self.prev.get(name).filter(|d| d.ino == md.ino);
        let all = self.level0 || prev.is_none();
        let known = Known::new(prev.map_or(&[][..], |d| d.entries.as_slice()));

        let mut entries: Vec<DumpEntry> = Vec::with_capacity(listing.len());
        let mut dump: Vec<(PathBuf, Vec<u8>, Stat)> = Vec::new();
        let mut subdirs = Vec::new();
        for e in listing {
            let nb = e.name;
            let cmd = match e.stat {
                Ok(m) => m,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => {
                    let child = path.join(std::ffi::OsStr::from_bytes(&nb));
                    self.unreadable(format!("{}: cannot stat: {err}", child.display()));
                    entries.push(DumpEntry {
                        flag: b'N',
                        name: nb,
                    });
                    continue;
                }
            };
            if e.excluded {
                entries.push(DumpEntry {
                    flag: b'N',
                    name: nb,
                });
                continue;
            }
            if cmd.is_dir() {
                if let Some(s) = e.subdir {
                    subdirs.push((s, cmd));
                } else {
                    // Another file system: listed, stored as a plain directory (see `dir`).
                    let child = Slot::detached(
                        path.join(std::ffi::OsStr::from_bytes(&nb)),
                        child_arch(name, &nb),
                    );
                    subdirs.push((child, cmd));
                }
                entries.push(DumpEntry {
                    flag: b'D',
                    name: nb,
                });
                continue;
            }
            let flag = if cmd.is_socket() {
                b'N' // tar does not archive sockets
            } else if all || !known.contains(&nb) {
                b'Y'
            } else if older(cmd.mtime, cmd.mtime_nsec, self.since)
                && older(cmd.ctime, cmd.ctime_nsec, self.since)
            {
                b'N'
            } else {
                b'Y'
            };
            if flag == b'Y' {
                let child = path.join(std::ffi::OsStr::from_bytes(&nb));
                dump.push((child, child_arch(name, &nb), cmd));
            } else {
                self.stats.files_unchanged += 1;
            }
            entries.push(DumpEntry { flag, name: nb });
        }

        // With `only`, the root lists one member: a dumpdir would delete the rest on extraction.
        if !(name == b"." && self.scan.opts().only.is_some()) {
            self.dumpdir_member(name, md, &entries)?;
        }
        self.snar.dirs.push(SnarDir {
            nfs: false,
            mtime_sec: md.mtime,
            mtime_nsec: md.mtime_nsec,
            dev: md.dev,
            ino: md.ino,
            name: name.to_vec(),
            entries,
        });
        for (p, a, m) in dump {
            self.member(&p, a, &m)?;
        }
        Ok(subdirs)
    }

    fn base_entry(&mut self, path: Vec<u8>, kind: EntryKind, md: &Stat) -> Entry {
        let mut e = Entry::new(path, kind);
        e.mode = md.mode & 0o7777;
        e.uid = u64::from(md.uid);
        e.gid = u64::from(md.gid);
        e.mtime = md.mtime;
        e.atime = md.mtime;
        e.ctime = md.ctime;
        e.uname = self
            .users
            .entry(md.uid)
            .or_insert_with(|| {
                crate::sys::user_name(md.uid)
                    .unwrap_or_default()
                    .into_bytes()
            })
            .clone();
        e.gname = self
            .groups
            .entry(md.gid)
            .or_insert_with(|| {
                crate::sys::group_name(md.gid)
                    .unwrap_or_default()
                    .into_bytes()
            })
            .clone();
        e
    }

    /// A directory member (typeflag `5`) without a listing: extraction creates the directory
    /// and leaves whatever it holds alone.
    fn plain_dir_member(&mut self, name: &[u8], md: &Stat) -> Result<()> {
        let mut path = name.to_vec();
        path.push(b'/');
        let h = self.base_entry(path, EntryKind::Directory, md);
        self.stats.dirs += 1;
        self.tar
            .append_bytes(&h, &[])
            .map_err(|e| Error::io("writing tar archive", e))
    }

    fn dumpdir_member(&mut self, name: &[u8], md: &Stat, entries: &[DumpEntry]) -> Result<()> {
        let mut data = Vec::new();
        for e in entries {
            data.push(e.flag);
            data.extend_from_slice(&e.name);
            data.push(0);
        }
        data.push(0);
        let mut path = name.to_vec();
        path.push(b'/');
        let mut h = self.base_entry(path, EntryKind::Dumpdir, md);
        h.size = data.len() as u64;
        self.stats.dirs += 1;
        self.tar
            .append_bytes(&h, &data)
            .map_err(|e| Error::io("writing tar archive", e))
    }

    fn member(&mut self, path: &Path, arch: Vec<u8>, md: &Stat) -> Result<()> {
        let ft = md;
        let werr = |e| Error::io("writing tar archive", e);
        let track_links = md.nlink > 1 && !self.scan.opts().hard_dereference;
        if ft.is_file() {
            if track_links {
                let key = (md.dev, md.ino);
                if let Some(first) = self.links.get(&key).cloned() {
                    let mut h = self.base_entry(arch, EntryKind::HardLink, md);
                    h.link = first;
                    self.stats.files_dumped += 1;
                    return self.tar.append_bytes(&h, &[]).map_err(werr);
                }
            }
            let file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOATIME)
                .open(path)
                .or_else(|_| File::open(path));
            let mut file = match file {
                Ok(f) => f,
                Err(e) => {
                    self.unreadable(format!("{}: cannot open, not dumped: {e}", path.display()));
                    return Ok(());
                }
            };
            if track_links {
                self.links.insert((md.dev, md.ino), arch.clone());
            }
            let mut h = self.base_entry(arch, EntryKind::Regular, md);
            h.size = md.size;
            let mut read_err = None;
            let mut src = ErrCapture {
                inner: &mut file,
                err: &mut read_err,
            };
            let missing = self.tar.append_reader(&h, &mut src).map_err(werr)?;
            if let Some(e) = read_err {
                self.unreadable(format!(
                    "{}: read error, stored zero-filled: {e}",
                    path.display()
                ));
            } else if missing > 0 {
                self.warn(format!(
                    "{}: file shrank by {missing} bytes while read; zero-filled",
                    path.display()
                ));
            }
            self.stats.files_dumped += 1;
            self.stats.bytes += h.size;
            return Ok(());
        }
        let mut h = if ft.is_symlink() {
            let target = match fs::read_link(path) {
                Ok(t) => t,
                Err(e) => {
                    self.unreadable(format!("{}: cannot read link: {e}", path.display()));
                    return Ok(());
                }
            };
            if self.scan.opts().dereference {
                // The scan follows links; it leaves the dangling ones and those that lead
                // back to a directory being archived.
                self.warn(format!(
                    "{}: symbolic link to {} not followed (dangling, or a loop back up the tree): stored as a link",
                    path.display(),
                    target.display()
                ));
            }
            let mut h = self.base_entry(arch, EntryKind::Symlink, md);
            h.link = target.into_os_string().into_vec();
            h
        } else if ft.is_fifo() {
            self.base_entry(arch, EntryKind::Fifo, md)
        } else if ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_char_device() {
                EntryKind::CharDevice
            } else {
                EntryKind::BlockDevice
            };
            let mut h = self.base_entry(arch, kind, md);
            let d = md.rdev;
            h.dev_major = ((d >> 32) & 0xffff_f000) | ((d >> 8) & 0xfff);
            h.dev_minor = ((d >> 12) & 0xffff_ff00) | (d & 0xff);
            h
        } else {
            return Ok(());
        };
        h.size = 0;
        self.stats.files_dumped += 1;
        self.tar.append_bytes(&h, &[]).map_err(werr)
    }
}

/// A reader that turns a read error into end-of-data (the writer zero-fills) and remembers it.
struct ErrCapture<'a> {
    inner: &'a mut File,
    err: &'a mut Option<std::io::Error>,
}

impl std::io::Read for ErrCapture<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.err.is_some() {
            return Ok(0);
        }
        match self.inner.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(0).and(self.read(buf)),
            Err(e) => {
                *self.err = Some(e);
                Ok(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(names: &[&str]) -> Vec<DumpEntry> {
        names
            .iter()
            .map(|n| DumpEntry {
                flag: b'Y',
                name: n.as_bytes().to_vec(),
            })
            .collect()
    }

    #[test]
    fn known_names_are_found_in_sorted_and_unsorted_dumpdirs() {
        for names in [vec!["a", "b.c", "z"], vec!["z", "a", "b.c"]] {
            let e = entries(&names);
            let k = Known::new(&e);
            assert_eq!(
                matches!(k, Known::Sorted(_)),
                names.windows(2).all(|w| w[0] < w[1])
            );
            for n in &names {
                assert!(k.contains(n.as_bytes()), "{n} in {names:?}");
            }
            for n in ["", "b", "zz", "0"] {
                assert!(!k.contains(n.as_bytes()), "{n} not in {names:?}");
            }
        }
        assert!(!Known::new(&[]).contains(b"x"));
    }
}
