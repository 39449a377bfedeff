//! Reading a directory tree ahead of the tar writer, on several threads, in the writer's order.
//!
//! An incremental level mostly stats files: GNU tar (and Freezer) walk the whole tree on one
//! thread to find the 1 % that changed. The writer in [`super::create`] must emit members in a
//! fixed depth-first order, but listing a directory and `lstat`-ing its entries does not depend
//! on that order, so worker threads do it ahead of the writer:
//!
//! - each directory to visit is a [`Slot`]; scanning a directory creates the slots of the
//!   subdirectories the writer will enter and pushes them on a shared stack (last in, first out,
//!   so workers follow the writer's depth-first path rather than running breadth first);
//! - the writer takes the slot it needs: finished, it uses the result; being scanned, it waits;
//!   not started, it scans the directory itself. It therefore never waits on work nobody does;
//! - read-ahead is bounded ([`AHEAD_ENTRIES`] entries listed but not yet taken), so memory does
//!   not grow with the tree;
//! - entries are stat-ed with `fstatat` relative to their directory (no path walk per file).
//!
//! The scan can start before the repository is opened ([`Scan::start`]), so that the key
//! derivation and the walk overlap. The snapshot time the next level compares against is taken
//! when the scan starts, before the first `lstat`: a file changed after it was examined then
//! always counts as changed next time.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::create::CreateOptions;
use crate::error::{Error, IoContext, Result};

/// Entries listed ahead of the writer, at most: about 170 bytes each with the name's
/// allocation, so about 22 MB. The Linux source tree (83,000 entries) fits whole, which lets
/// the scan finish while the repository key is derived.
pub const AHEAD_ENTRIES: usize = 128 * 1024;

/// The `lstat` fields the tar writer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub mtime_nsec: i64,
    pub ctime: i64,
    pub ctime_nsec: i64,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub rdev: u64,
}

impl Stat {
    pub fn from_metadata(m: &std::fs::Metadata) -> Stat {
        Stat {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            ctime: m.ctime(),
            ctime_nsec: m.ctime_nsec(),
            dev: m.dev(),
            ino: m.ino(),
            nlink: m.nlink(),
            rdev: m.rdev(),
        }
    }

    fn from_libc(s: &libc::stat) -> Stat {
        Stat {
            mode: s.st_mode,
            uid: s.st_uid,
            gid: s.st_gid,
            size: s.st_size as u64,
            mtime: s.st_mtime,
            mtime_nsec: s.st_mtime_nsec,
            ctime: s.st_ctime,
            ctime_nsec: s.st_ctime_nsec,
            dev: s.st_dev,
            ino: s.st_ino,
            nlink: s.st_nlink,
            rdev: s.st_rdev,
        }
    }

    fn fmt(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
    pub fn is_dir(&self) -> bool {
        self.fmt() == libc::S_IFDIR
    }
    pub fn is_file(&self) -> bool {
        self.fmt() == libc::S_IFREG
    }
    pub fn is_symlink(&self) -> bool {
        self.fmt() == libc::S_IFLNK
    }
    pub fn is_fifo(&self) -> bool {
        self.fmt() == libc::S_IFIFO
    }
    pub fn is_socket(&self) -> bool {
        self.fmt() == libc::S_IFSOCK
    }
    pub fn is_char_device(&self) -> bool {
        self.fmt() == libc::S_IFCHR
    }
    pub fn is_block_device(&self) -> bool {
        self.fmt() == libc::S_IFBLK
    }
}

/// One entry of a scanned directory.
pub struct ScanEntry {
    pub name: Vec<u8>,
    /// `lstat` of the entry (an error for entries that vanished or cannot be examined).
    pub stat: io::Result<Stat>,
    /// Matched an exclude pattern: not dumped and, for a directory, not entered.
    pub excluded: bool,
    /// The subdirectory the writer will enter (same file system, not excluded).
    pub subdir: Option<Arc<Slot>>,
}

/// A directory's entries in byte order of their names, or why it could not be listed.
pub type Listing = io::Result<Vec<ScanEntry>>;

/// A directory to scan: where it is, its name in the archive, and its result once scanned.
pub struct Slot {
    path: PathBuf,
    arch: Vec<u8>,
    /// (device, inode) of this directory and the ones above it, kept only when symbolic links
    /// are followed (a link back up the tree must not be entered again).
    ancestors: Vec<(u64, u64)>,
    state: Mutex<SlotState>,
    done: Condvar,
}

enum SlotState {
    Waiting,
    Running,
    Done(Listing),
    Taken,
}

impl Slot {
    fn new(path: PathBuf, arch: Vec<u8>) -> Arc<Slot> {
        Self::with_ancestors(path, arch, Vec::new())
    }

    fn with_ancestors(path: PathBuf, arch: Vec<u8>, ancestors: Vec<(u64, u64)>) -> Arc<Slot> {
        Arc::new(Slot {
            path,
            arch,
            ancestors,
            state: Mutex::new(SlotState::Waiting),
            done: Condvar::new(),
        })
    }

    /// A slot nobody scans (a directory stored without contents).
    pub(crate) fn detached(path: PathBuf, arch: Vec<u8>) -> Arc<Slot> {
        let s = Self::new(path, arch);
        *s.state.lock().expect("scan slot lock") = SlotState::Taken;
        s
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn arch(&self) -> &[u8] {
        &self.arch
    }

    /// Claim the slot for scanning; false if someone already did.
    fn claim(&self) -> bool {
        let mut s = self.state.lock().expect("scan slot lock");
        if matches!(*s, SlotState::Waiting) {
            *s = SlotState::Running;
            true
        } else {
            false
        }
    }
}

struct Shared {
    opts: CreateOptions,
    exclude: Option<crate::source::tar_exclude::TarExcludes>,
    root_dev: u64,
    stack: Mutex<Vec<Arc<Slot>>>,
    work: Condvar,
    ahead: AtomicUsize,
    ahead_limit: usize,
    stop: AtomicBool,
}

/// A tree being read ahead; [`super::create::create_from`] consumes it.
pub struct Scan {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    root: Arc<Slot>,
    root_stat: Stat,
    /// The snapshot time: the next level dumps what changed at or after it.
    pub(crate) since: (i64, i64),
    root_path: PathBuf,
}

impl Scan {
    /// Start reading `root` with one worker per core but one (at least one): the thread that
    /// starts the scan goes on with other work (the key derivation, then writing the archive,
    /// which scans itself whenever it is ahead of the workers).
    pub fn start(root: &Path, opts: &CreateOptions) -> Result<Scan> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::start_with(root, opts, cores.saturating_sub(1).clamp(1, 8))
    }

    /// Start with `workers` threads (0: the writer scans everything itself).
    pub fn start_with(root: &Path, opts: &CreateOptions, workers: usize) -> Result<Scan> {
        Self::start_bounded(root, opts, workers, AHEAD_ENTRIES)
    }

    fn start_bounded(
        root: &Path,
        opts: &CreateOptions,
        workers: usize,
        ahead_limit: usize,
    ) -> Result<Scan> {
        // One second early: file systems stamp files with a coarse clock (a kernel tick behind
        // the fine clock read here), so a file written just after this instant can carry an
        // earlier mtime; the earlier start re-dumps such files instead of missing them.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_sub(std::time::Duration::from_secs(1));
        let md = std::fs::symlink_metadata(root)
            .io_context(|| format!("backup root {}", root.display()))?;
        if !md.is_dir() {
            return Err(Error::invalid(format!(
                "backup root {} is not a directory",
                root.display()
            )));
        }
        let shared = Arc::new(Shared {
            opts: opts.clone(),
            exclude: crate::source::tar_exclude::TarExcludes::new(&opts.exclude)?,
            root_dev: md.dev(),
            stack: Mutex::new(Vec::new()),
            work: Condvar::new(),
            ahead: AtomicUsize::new(0),
            ahead_limit,
            stop: AtomicBool::new(false),
        });
        let root_slot = Slot::with_ancestors(
            root.to_path_buf(),
            b".".to_vec(),
            if opts.dereference {
                vec![(md.dev(), md.ino())]
            } else {
                Vec::new()
            },
        );
        shared.push(vec![root_slot.clone()]);
        let workers = (0..workers)
            .map(|_| {
                let s = shared.clone();
                std::thread::spawn(move || s.work_loop())
            })
            .collect();
        Ok(Scan {
            shared,
            workers,
            root: root_slot,
            root_stat: Stat::from_metadata(&md),
            since: (now.as_secs() as i64, i64::from(now.subsec_nanos())),
            root_path: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> (&Arc<Slot>, &Stat) {
        (&self.root, &self.root_stat)
    }

    pub fn root_path(&self) -> &Path {
        &self.root_path
    }

    pub fn root_dev(&self) -> u64 {
        self.shared.root_dev
    }

    pub fn opts(&self) -> &CreateOptions {
        &self.shared.opts
    }

    /// The listing of `slot`'s directory: read ahead, awaited, or read now.
    pub fn take(&self, slot: &Slot) -> Listing {
        let mut s = slot.state.lock().expect("scan slot lock");
        loop {
            match std::mem::replace(&mut *s, SlotState::Taken) {
                SlotState::Waiting => {
                    drop(s);
                    return self.shared.scan(slot);
                }
                SlotState::Running => {
                    *s = SlotState::Running;
                    s = slot.done.wait(s).expect("scan slot lock");
                }
                SlotState::Done(listing) => {
                    drop(s);
                    let n = listing.as_ref().map_or(0, Vec::len);
                    let before = self.shared.ahead.fetch_sub(n, Ordering::AcqRel);
                    let limit = self.shared.ahead_limit;
                    if before >= limit && before - n < limit {
                        // Workers may be waiting for room: taking the stack's lock first
                        // means none can miss this between its check and its wait.
                        let _q = self.shared.stack.lock().expect("scan stack lock");
                        self.shared.work.notify_all();
                    }
                    return listing;
                }
                SlotState::Taken => panic!("a directory's listing was taken twice"),
            }
        }
    }
}

impl Drop for Scan {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        {
            let _q = self.shared.stack.lock().expect("scan stack lock");
            self.shared.work.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Shared {
    fn push(&self, mut slots: Vec<Arc<Slot>>) {
        if slots.is_empty() {
            return;
        }
        // The first subdirectory ends on top: the writer enters it next.
        slots.reverse();
        let n = slots.len();
        let mut q = self.stack.lock().expect("scan stack lock");
        q.extend(slots);
        if n == 1 {
            self.work.notify_one();
        } else {
            self.work.notify_all();
        }
    }

    fn work_loop(&self) {
        loop {
            let slot = {
                let mut q = self.stack.lock().expect("scan stack lock");
                loop {
                    if self.stop.load(Ordering::Acquire) {
                        return;
                    }
                    if self.ahead.load(Ordering::Acquire) < self.ahead_limit {
                        if let Some(s) = q.pop() {
                            break s;
                        }
                    }
                    q = self.work.wait(q).expect("scan stack lock");
                }
            };
            if !slot.claim() {
                continue; // the writer got there first
            }
            // A panic must not leave the slot claimed forever (the writer would wait on it):
            // it becomes this directory's error.
            let listing =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.scan(&slot)))
                    .unwrap_or_else(|_| {
                        Err(io::Error::other(
                            "internal error: the directory scan panicked",
                        ))
                    });
            let n = listing.as_ref().map_or(0, Vec::len);
            self.ahead.fetch_add(n, Ordering::AcqRel);
            let mut s = slot.state.lock().expect("scan slot lock");
            *s = SlotState::Done(listing);
            slot.done.notify_all();
        }
    }

    /// List and stat one directory; queue the subdirectories the writer will enter.
    fn scan(&self, slot: &Slot) -> Listing {
        let mut dir = crate::sys::DirStream::open(&slot.path)?;
        let mut names = dir.names()?;
        if let (Some(only), b".") = (&self.opts.only, slot.arch.as_slice()) {
            names.retain(|n| n == only);
        }
        names.sort_unstable();
        let mut out = Vec::with_capacity(names.len());
        let mut subdirs = Vec::new();
        for name in names {
            let stat = self.stat(&dir, slot, &name);
            // The member name is built only where it is needed (exclusion patterns, a
            // directory to descend into), not for each of the tree's files.
            let excluded = self.exclude.is_some() && self.excluded(&child_arch(&slot.arch, &name));
            let subdir = match &stat {
                Ok(st)
                    if st.is_dir()
                        && !excluded
                        && !(self.opts.one_file_system && st.dev != self.root_dev) =>
                {
                    let rel = child_arch(&slot.arch, &name);
                    let mut ancestors = Vec::new();
                    if self.opts.dereference {
                        ancestors = slot.ancestors.clone();
                        ancestors.push((st.dev, st.ino));
                    }
                    let s = Slot::with_ancestors(
                        slot.path.join(std::ffi::OsStr::from_bytes(&name)),
                        rel,
                        ancestors,
                    );
                    subdirs.push(s.clone());
                    Some(s)
                }
                _ => None,
            };
            out.push(ScanEntry {
                name,
                stat,
                excluded,
                subdir,
            });
        }
        self.push(subdirs);
        Ok(out)
    }

    /// The entry's status: of the link itself, or with `dereference` of what it points to,
    /// except for dangling links and links back to a directory above (both reported as the
    /// link itself; the writer stores them as links).
    fn stat(&self, dir: &crate::sys::DirStream, slot: &Slot, name: &[u8]) -> io::Result<Stat> {
        let own = Stat::from_libc(&dir.lstat(name)?);
        if !self.opts.dereference || !own.is_symlink() {
            return Ok(own);
        }
        match dir.stat(name).map(|st| Stat::from_libc(&st)) {
            Ok(t) if t.is_dir() && slot.ancestors.contains(&(t.dev, t.ino)) => Ok(own),
            Ok(t) => Ok(t),
            Err(_) => Ok(own),
        }
    }

    /// GNU tar's default for `--exclude`: see [`crate::source::tar_exclude`].
    fn excluded(&self, arch: &[u8]) -> bool {
        self.exclude
            .as_ref()
            .is_some_and(|e| e.excludes_member(arch))
    }
}

/// `parent/name` as an archive member name (`./a/b`).
pub(crate) fn child_arch(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(parent.len() + 1 + name.len());
    a.extend_from_slice(parent);
    a.push(b'/');
    a.extend_from_slice(name);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for d in ["a", "a/x", "a/x/deep", "b", "c", "skip"] {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        for f in ["f1", "a/f2", "a/x/f3", "a/x/deep/f4", "b/f5", "skip/f6"] {
            std::fs::write(t.path().join(f), f).unwrap();
        }
        t
    }

    /// Depth-first, as the writer reads: every directory's entries in order.
    fn walk(scan: &Scan) -> Vec<Vec<u8>> {
        let mut out = vec![];
        let mut stack = vec![scan.root().0.clone()];
        while let Some(slot) = stack.pop() {
            let listing = scan.take(&slot).unwrap();
            let mut subs = vec![];
            for e in listing {
                out.push(child_arch(slot.arch(), &e.name));
                assert!(e.stat.is_ok());
                if let Some(s) = e.subdir {
                    subs.push(s);
                }
            }
            stack.extend(subs.into_iter().rev());
        }
        out
    }

    #[test]
    fn an_entry_is_as_small_as_the_read_ahead_bound_assumes() {
        // 136 bytes here, plus the name's heap block: the 170 bytes AHEAD_ENTRIES assumes.
        assert!(std::mem::size_of::<ScanEntry>() <= 136);
    }

    #[test]
    fn same_listing_with_any_number_of_workers() {
        let t = tree();
        let opts = CreateOptions {
            exclude: vec!["skip".into()],
            ..CreateOptions::default()
        };
        let mut results = vec![];
        for workers in [0, 1, 4] {
            let scan = Scan::start_with(t.path(), &opts, workers).unwrap();
            results.push(walk(&scan));
        }
        let names: Vec<String> = results[0]
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "./a",
                "./b",
                "./c",
                "./f1",
                "./skip",
                "./a/f2",
                "./a/x",
                "./a/x/deep",
                "./a/x/f3",
                "./a/x/deep/f4",
                "./b/f5"
            ]
        );
        assert_eq!(results[0], results[1]);
        assert_eq!(results[0], results[2]);
    }

    #[test]
    fn read_ahead_is_bounded_and_the_writer_never_waits_forever() {
        // Far more entries than the read-ahead bound, in many directories.
        let t = tempfile::tempdir().unwrap();
        for d in 0..40 {
            let dir = t.path().join(format!("d{d:02}"));
            std::fs::create_dir(&dir).unwrap();
            for f in 0..10 {
                std::fs::File::create(dir.join(format!("{f}"))).unwrap();
            }
        }
        let scan = Scan::start_bounded(t.path(), &CreateOptions::default(), 2, 25).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let ahead = scan.shared.ahead.load(Ordering::Acquire);
        // Each worker may finish the directory it was in when the bound was reached; the
        // root's 40 entries count too.
        assert!(ahead <= 25 + 40 + 2 * 10, "{ahead} entries read ahead");
        assert!(ahead >= 25, "workers read ahead: {ahead}");
        let n = walk(&scan).len();
        assert_eq!(n, 40 + 40 * 10);
        assert_eq!(scan.shared.ahead.load(Ordering::Acquire), 0);
    }

    #[test]
    fn an_unreadable_directory_is_an_error_in_its_listing_only() {
        let t = tree();
        let scan = Scan::start_with(t.path(), &CreateOptions::default(), 1).unwrap();
        let root = scan.take(scan.root().0).unwrap();
        let a = root.iter().find(|e| e.name == b"a").unwrap();
        // Removed after the root was listed: listing `a` fails, others still work.
        std::fs::remove_dir_all(t.path().join("a")).unwrap();
        let r = scan.take(a.subdir.as_ref().unwrap());
        // A worker may have listed it before the removal; either result is coherent.
        if let Err(e) = r {
            assert_eq!(e.kind(), io::ErrorKind::NotFound);
        }
        let b = root.iter().find(|e| e.name == b"b").unwrap();
        let lb = scan.take(b.subdir.as_ref().unwrap()).unwrap();
        assert_eq!(lb[0].name, b"f5");
    }
}
