//! File-tree backup: a parallel walk (rayon over directory entries), content-defined chunks,
//! deduplication against the whole repository, and per-directory tree blobs.
//!
//! Incremental: files whose size, mtime, ctime and inode equal the parent snapshot's node are
//! not read; their content list is reused. Unreadable or vanished paths are reported, counted
//! and left out; the snapshot is still written and the result says so.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use rayon::prelude::*;

use crate::chunker::{Chunker, PARALLEL_THRESHOLD};
use crate::error::{Error, Result};
use crate::format::snapshot::{Snapshot, SnapshotStats, SourceKind};
use crate::format::tree::{Node, NodeKind, Part, Timestamp, Tree};
use crate::format::BlobType;
use crate::id::{BlobId, SnapshotId};
use crate::ops::blob_saver::BlobSaver;
use crate::ops::windowed;
use crate::ops::Progress;
use crate::repo::index::MasterIndex;
use crate::repo::lock::LockGuard;
use crate::repo::Repository;
use crate::source::exclude::Excludes;
use crate::source::meta::{self, NameCache};

#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub paths: Vec<PathBuf>,
    pub hostname: String,
    /// Backup name; the parent is the latest snapshot with the same host and name.
    pub name: String,
    pub tags: Vec<String>,
    pub excludes: Vec<String>,
    /// Patterns with GNU tar's `--exclude` meaning (what `rime agent --exclude` means for
    /// both of its engines): matched against `./` and the path below its source directory,
    /// and each tail of that (see [`crate::source::tar_exclude`]).
    pub gnu_tar_excludes: Vec<String>,
    pub one_file_system: bool,
    /// Follow symlinks (store what they point to).
    pub dereference: bool,
    /// Compare only size and mtime with the parent (for snapshot mounts whose inode numbers
    /// and ctimes change every time).
    pub ignore_inode: bool,
    /// Explicit parent, or `None` to pick the latest of the same host and name.
    pub parent: Option<SnapshotId>,
    /// Read every file even if it matches the parent.
    pub force: bool,
    pub compression_level: i32,
    /// Paths to record instead of `paths` (same length), e.g. the origin paths when `paths`
    /// point into a file system snapshot: names, parents and listings then use these.
    pub record_as: Vec<PathBuf>,
    /// Run before the snapshot is written.
    pub commit_check: Option<crate::ops::CommitCheck>,
    /// Time recorded in the snapshot instead of now: for imports of old data and for
    /// benchmarks and tests that need a history of daily snapshots.
    pub time: Option<Timestamp>,
}

impl BackupOptions {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        BackupOptions {
            paths,
            hostname: crate::hostname(),
            name: String::new(),
            tags: vec![],
            excludes: vec![],
            gnu_tar_excludes: vec![],
            one_file_system: false,
            dereference: false,
            ignore_inode: false,
            parent: None,
            force: false,
            compression_level: crate::format::blob::DEFAULT_COMPRESSION_LEVEL,
            record_as: vec![],
            commit_check: None,
            time: None,
        }
    }
}

#[derive(Debug)]
pub struct BackupResult {
    pub id: SnapshotId,
    pub snapshot: Snapshot,
    /// One line per unreadable or vanished path.
    pub warnings: Vec<String>,
}

/// Read buffers up to this size are kept per thread for the next file.
const KEEP_READ_BUF: usize = 8 << 20;

thread_local! {
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Walker<'a> {
    repo: &'a Repository,
    index: &'a MasterIndex,
    saver: BlobSaver<'a>,
    chunker: Chunker,
    excludes: Excludes,
    opts: &'a BackupOptions,
    names: NameCache,
    progress: &'a dyn Progress,
    warnings: Mutex<Vec<String>>,
    hardlinks: Mutex<HashMap<(u64, u64), Vec<Part>>>,
    files: AtomicU64,
    dirs: AtomicU64,
    others: AtomicU64,
    files_read: AtomicU64,
    bytes_read: AtomicU64,
    bytes_total: AtomicU64,
}

/// A node, or `None` when a source problem leaves the path out of the snapshot (fatal
/// repository errors are `Err` instead).
type Entry = Option<Node>;

pub fn backup(
    repo: &Repository,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupResult> {
    let start = Instant::now();
    if opts.paths.is_empty() {
        return Err(Error::invalid("nothing to back up: give at least one path"));
    }
    if !opts.record_as.is_empty() && opts.record_as.len() != opts.paths.len() {
        return Err(Error::invalid(
            "record_as must name one path per source path",
        ));
    }
    let mut sources = Vec::new();
    let mut recorded: Vec<(Vec<u8>, String)> = Vec::new();
    for (i, p) in opts.paths.iter().enumerate() {
        let abs = std::path::absolute(p).map_err(|e| Error::io(format!("{}", p.display()), e))?;
        let meta = stat(&abs, opts.dereference)
            .map_err(|e| Error::io(format!("cannot back up {}", p.display()), e))?;
        let shown = match opts.record_as.get(i) {
            Some(r) => {
                std::path::absolute(r).map_err(|e| Error::io(format!("{}", r.display()), e))?
            }
            None => abs.clone(),
        };
        let name = root_name(&shown);
        recorded.push((name.clone(), shown.to_string_lossy().into_owned()));
        if sources
            .iter()
            .any(|(_, n, _): &(PathBuf, Vec<u8>, Metadata)| *n == name)
        {
            return Err(Error::invalid(format!(
                "two source paths have the same last component {:?}: back them up separately",
                String::from_utf8_lossy(&name)
            )));
        }
        sources.push((abs, name, meta));
    }
    sources.sort_by(|a, b| a.1.cmp(&b.1));
    let lock = LockGuard::shared(repo, "backup")?;
    let index = MasterIndex::load(repo)?;
    let (parent_id, parent_root) = find_parent(repo, &index, opts)?;
    let walker = Walker {
        repo,
        index: &index,
        saver: BlobSaver::for_backup(repo, &index, opts.compression_level),
        chunker: repo.chunker(),
        excludes: Excludes::new(&opts.excludes)?.with_gnu_tar(
            &opts.gnu_tar_excludes,
            sources.iter().map(|(abs, _, _)| abs.clone()).collect(),
        )?,
        opts,
        names: NameCache::default(),
        progress,
        warnings: Mutex::new(Vec::new()),
        hardlinks: Mutex::new(HashMap::new()),
        files: AtomicU64::new(0),
        dirs: AtomicU64::new(0),
        others: AtomicU64::new(0),
        files_read: AtomicU64::new(0),
        bytes_read: AtomicU64::new(0),
        bytes_total: AtomicU64::new(0),
    };
    let entries: Vec<Entry> = sources
        .par_iter()
        .map(|(abs, name, meta)| {
            let parent_node = parent_root.as_ref().and_then(|t| t.find(name));
            walker.entry(abs, name.clone(), meta.clone(), parent_node, meta.dev())
        })
        .collect::<Result<_>>()?;
    let nodes: Vec<Node> = entries.into_iter().flatten().collect();
    let root = walker.save_tree(nodes)?;
    crate::ops::CommitCheck::run(&opts.commit_check)?;
    let warnings = walker.warnings.into_inner();
    let stats = SnapshotStats {
        files: walker.files.into_inner(),
        dirs: walker.dirs.into_inner(),
        others: walker.others.into_inner(),
        files_read: walker.files_read.into_inner(),
        bytes_read: walker.bytes_read.into_inner(),
        bytes_total: walker.bytes_total.into_inner(),
        bytes_added: 0,
        chunks_new: walker.saver.chunks_new.load(Ordering::Relaxed),
        chunks_reused: walker.saver.chunks_reused.load(Ordering::Relaxed),
        trees_new: walker.saver.trees_new.load(Ordering::Relaxed),
        unreadable: warnings.len() as u64,
        duration_ms: 0,
    };
    // Packs and their index entries are durable before the snapshot that needs them.
    let packed = walker.saver.finish()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut snapshot = Snapshot {
        time: opts.time.unwrap_or(Timestamp {
            secs: now.as_secs() as i64,
            nanos: now.subsec_nanos(),
        }),
        hostname: opts.hostname.clone(),
        name: opts.name.clone(),
        username: crate::username(),
        tags: opts.tags.clone(),
        paths: {
            recorded.sort();
            recorded.into_iter().map(|(_, p)| p).collect()
        },
        parent: parent_id,
        source: SourceKind::Files,
        root,
        stats: SnapshotStats {
            bytes_added: packed.bytes_written,
            ..stats
        },
        program: crate::PROGRAM.to_string(),
    };
    snapshot.stats.duration_ms = start.elapsed().as_millis() as u64;
    // Everything before the snapshot is stored (on every storage) before the lock is judged:
    // only the snapshot write itself comes after the check.
    repo.storage().flush();
    lock.check()?;
    let id = repo.save_snapshot(&snapshot)?;
    // A prune that ran meanwhile may have marked packs this backup reused: index them again.
    // After the snapshot write, so that a prune that marks later sees the snapshot itself
    // (format-spec/SPEC.md, section 9.3).
    crate::repo::pending::protect_marked(repo, &index, &packed.pack_ids)?;
    Ok(BackupResult {
        id,
        snapshot,
        warnings,
    })
}

fn stat(p: &Path, follow: bool) -> std::io::Result<Metadata> {
    if follow {
        fs::metadata(p)
    } else {
        fs::symlink_metadata(p)
    }
}

/// Name of a source path inside the snapshot's root tree.
fn root_name(abs: &Path) -> Vec<u8> {
    match abs.file_name() {
        Some(n) => n.as_bytes().to_vec(),
        None => b"root".to_vec(), // "/"
    }
}

/// The parent snapshot's root tree, if there is a parent.
fn find_parent(
    repo: &Repository,
    index: &MasterIndex,
    opts: &BackupOptions,
) -> Result<(Option<SnapshotId>, Option<Tree>)> {
    let id = match opts.parent {
        Some(id) => Some(id),
        None => crate::ops::select::latest(repo, Some(&opts.hostname), Some(&opts.name))?
            .map(|(id, _)| id),
    };
    let Some(id) = id else {
        return Ok((None, None));
    };
    if opts.force {
        return Ok((Some(id), None)); // recorded, but every file is read
    }
    let snap = repo.load_snapshot(&id)?;
    // A parent whose trees are unreadable only costs speed: back up without it.
    match repo.load_tree(index, &snap.root) {
        Ok(t) => Ok((Some(id), Some(t))),
        Err(_) => Ok((None, None)),
    }
}

impl Walker<'_> {
    fn warn(&self, msg: String) {
        self.progress.warning(&msg);
        self.warnings.lock().push(msg);
    }

    fn entry(
        &self,
        path: &Path,
        name: Vec<u8>,
        m: Metadata,
        parent: Option<&Node>,
        root_dev: u64,
    ) -> Result<Entry> {
        self.saver.check()?;
        if self.progress.cancelled() {
            return Err(crate::ops::interrupted());
        }
        let mut node = meta::node_from_metadata(name, &m, &self.names);
        let parent = parent.filter(|p| p.kind == node.kind);
        // Setting or removing an xattr changes the inode's ctime: with ctime and inode equal to
        // the parent's, its xattrs are the parent's, and listing them again (a path walk and a
        // syscall per file, 15% of an unchanged backup) can be skipped.
        let same_inode = |p: &&Node| {
            !self.opts.ignore_inode
                && !self.opts.force
                && p.inode == node.inode
                && p.ctime == node.ctime
        };
        match parent.filter(same_inode) {
            Some(p) => node.xattrs = p.xattrs.clone(),
            None => match meta::read_xattrs(path) {
                Ok(x) => node.xattrs = x,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.warn(format!("{}: vanished during backup", path.display()));
                    return Ok(None);
                }
                Err(e) => self.warn(format!(
                    "{}: cannot read extended attributes: {e}",
                    path.display()
                )),
            },
        }
        match node.kind {
            NodeKind::Dir => {
                self.dirs.fetch_add(1, Ordering::Relaxed);
                let parent_tree = match parent.and_then(|p| p.subtree) {
                    Some(t) => self.repo.load_tree(self.index, &t).ok(),
                    None => None,
                };
                match self.dir(path, parent_tree.as_ref(), root_dev)? {
                    Some(id) => node.subtree = Some(id),
                    None => return Ok(None),
                }
            }
            NodeKind::File => {
                self.files.fetch_add(1, Ordering::Relaxed);
                match self.file(path, &m, &mut node, parent)? {
                    true => {}
                    false => return Ok(None),
                }
            }
            NodeKind::Symlink => {
                self.others.fetch_add(1, Ordering::Relaxed);
                match fs::read_link(path) {
                    Ok(t) => node.link_target = t.as_os_str().as_bytes().to_vec(),
                    Err(e) => {
                        self.warn(format!("{}: cannot read symlink: {e}", path.display()));
                        return Ok(None);
                    }
                }
            }
            _ => {
                self.others.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.progress.item_done(0);
        Ok(Some(node))
    }

    /// Back up a directory's entries; `None` if the directory itself cannot be read.
    fn dir(&self, path: &Path, parent: Option<&Tree>, root_dev: u64) -> Result<Option<BlobId>> {
        let rd = match fs::read_dir(path) {
            Ok(rd) => rd,
            Err(e) => {
                self.warn(format!("{}: cannot read directory: {e}", path.display()));
                return Ok(None);
            }
        };
        let mut children = Vec::new();
        for ent in rd {
            match ent {
                Ok(ent) => children.push(ent),
                Err(e) => self.warn(format!("{}: error while listing: {e}", path.display())),
            }
        }
        let entries: Vec<Entry> = children
            .par_iter()
            .map(|ent| {
                let child = ent.path();
                if self.excludes.is_excluded(&child) {
                    return Ok(None);
                }
                // DirEntry::metadata is an lstat relative to the open directory (no path walk).
                let m = match if self.opts.dereference {
                    fs::metadata(&child)
                } else {
                    ent.metadata()
                } {
                    Ok(m) => m,
                    Err(e) => {
                        let what = if e.kind() == std::io::ErrorKind::NotFound {
                            "vanished during backup".to_string()
                        } else {
                            format!("cannot stat: {e}")
                        };
                        self.warn(format!("{}: {what}", child.display()));
                        return Ok(None);
                    }
                };
                let name = ent.file_name().as_bytes().to_vec();
                if self.opts.one_file_system && m.is_dir() && m.dev() != root_dev {
                    // A mount point is kept as an empty directory (as tar and restic do), so a
                    // restore recreates the place to mount it; its contents are not read.
                    let mut node = meta::node_from_metadata(name, &m, &self.names);
                    node.subtree = Some(self.save_tree(Vec::new())?);
                    self.dirs.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(node));
                }
                let p = parent.and_then(|t| t.find(&name));
                self.entry(&child, name, m, p, root_dev)
            })
            .collect::<Result<_>>()?;
        let nodes = entries.into_iter().flatten().collect();
        self.save_tree(nodes).map(Some)
    }

    fn save_tree(&self, mut nodes: Vec<Node>) -> Result<BlobId> {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let t = Tree { nodes };
        self.saver.save(BlobType::Tree, &t.encode())
    }

    fn unchanged(&self, node: &Node, p: &Node) -> bool {
        if self.opts.force || p.size != node.size || p.mtime != node.mtime {
            return false;
        }
        if !self.opts.ignore_inode && (p.inode != node.inode || p.ctime != node.ctime) {
            return false;
        }
        // Never reference data that is no longer in the repository.
        p.content.iter().all(|part| match part {
            Part::Data { id, .. } => self.saver.is_known(id),
            Part::Hole { .. } => true,
        })
    }

    /// Fill in a file's content; `false` if it could not be read.
    fn file(
        &self,
        path: &Path,
        m: &Metadata,
        node: &mut Node,
        parent: Option<&Node>,
    ) -> Result<bool> {
        self.bytes_total.fetch_add(node.size, Ordering::Relaxed);
        if let Some(p) = parent {
            if self.unchanged(node, p) {
                node.content = p.content.clone();
                return Ok(true);
            }
        }
        let link_key = (node.links > 1).then_some((node.device, node.inode));
        if let Some(k) = link_key {
            if let Some(c) = self.hardlinks.lock().get(&k) {
                node.content = c.clone();
                return Ok(true);
            }
        }
        let parts = match self.read_file(path, m) {
            Ok(Ok((parts, size))) => {
                node.size = size;
                parts
            }
            Ok(Err(e)) => {
                let what = if e.kind() == std::io::ErrorKind::NotFound {
                    "vanished during backup".to_string()
                } else {
                    format!("cannot read: {e}")
                };
                self.warn(format!("{}: {what}", path.display()));
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        self.files_read.fetch_add(1, Ordering::Relaxed);
        if let Some(k) = link_key {
            self.hardlinks.lock().insert(k, parts.clone());
        }
        node.content = parts;
        Ok(true)
    }

    /// Read and store a file's content. Outer error: repository failure (fatal); inner error:
    /// the source could not be read.
    fn read_file(&self, path: &Path, m: &Metadata) -> Result<std::io::Result<(Vec<Part>, u64)>> {
        let f = match File::open(path) {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        // The walk's metadata decides how to read; what is stored is what the reads return.
        let size = m.len();
        // Sparse files: only read the data extents.
        let sparse = m.blocks() * 512 < size && size > 64 * 1024;
        if size as usize >= PARALLEL_THRESHOLD || sparse {
            let extents = if sparse {
                crate::sys::data_extents(&f, size).unwrap_or_else(|_| vec![(0, size)])
            } else {
                vec![(0, size)]
            };
            let mut parts = Vec::new();
            let mut pos = 0u64;
            let mut shrank = false;
            for (s, e) in extents {
                if s > pos {
                    parts.push(Part::Hole { len: s - pos });
                }
                let read = windowed::chunk_extent(&f, s, e, &self.chunker, |data, cuts| {
                    parts.extend(self.store_cut(data, cuts)?);
                    self.progress
                        .bytes_done(cuts.last().copied().unwrap_or(0) as u64);
                    Ok(())
                })?;
                match read {
                    Ok(n) => pos = s + n,
                    Err(e) => return Ok(Err(e)),
                }
                if pos < e {
                    shrank = true; // stored as read; warn_if_changed says so
                    break;
                }
            }
            if !shrank && size > pos {
                parts.push(Part::Hole { len: size - pos });
                pos = size;
            }
            self.warn_if_changed(path, &f, m);
            self.progress.item_done(0);
            return Ok(Ok((merge_holes(parts), pos)));
        }
        // Reuse this thread's buffer (taken out, not borrowed: rayon may run another file's
        // read on this thread while store_chunks waits).
        let mut buf = READ_BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
        buf.clear();
        buf.reserve(size as usize + 64);
        // Through `Take`: File's own read_to_end spends an fstat and an lseek per file on a
        // size hint we already have.
        if let Err(e) = (&f).take(u64::MAX).read_to_end(&mut buf) {
            return Ok(Err(e));
        }
        let n = buf.len() as u64;
        let parts = self.store_chunks(&buf)?;
        self.warn_if_changed(path, &f, m);
        if buf.capacity() <= KEEP_READ_BUF {
            READ_BUF.with(|b| *b.borrow_mut() = buf);
        }
        Ok(Ok((merge_holes(parts), n)))
    }

    /// A file written to while it was read is stored as read, with a warning (the next backup
    /// picks up the final content, as its ctime changed).
    fn warn_if_changed(&self, path: &Path, f: &File, before: &Metadata) {
        if let Ok(after) = f.metadata() {
            if after.len() != before.len()
                || after.mtime() != before.mtime()
                || after.mtime_nsec() != before.mtime_nsec()
            {
                self.progress.warning(&format!(
                    "{}: changed while being read; stored as read",
                    path.display()
                ));
            }
        }
    }

    /// Chunk and store a small file's content (read whole).
    fn store_chunks(&self, data: &[u8]) -> Result<Vec<Part>> {
        let cuts = self.chunker.cut_points(data);
        let parts = self.store_cut(data, &cuts)?;
        self.progress.item_done(data.len() as u64);
        Ok(parts)
    }

    /// Store the chunks `data[..cuts[0]]`, `data[cuts[0]..cuts[1]]`, ... in parallel; chunks
    /// of zeros become holes.
    fn store_cut(&self, data: &[u8], cuts: &[usize]) -> Result<Vec<Part>> {
        let stored = cuts.last().copied().unwrap_or(0);
        self.bytes_read.fetch_add(stored as u64, Ordering::Relaxed);
        let mut ranges = Vec::with_capacity(cuts.len());
        let mut start = 0;
        for &c in cuts {
            ranges.push((start, c));
            start = c;
        }
        let store = |&(s, e): &(usize, usize)| -> Result<Part> {
            let chunk = &data[s..e];
            if is_zero(chunk) {
                return Ok(Part::Hole {
                    len: chunk.len() as u64,
                });
            }
            let id = self.saver.save(BlobType::Data, chunk)?;
            Ok(Part::Data {
                id,
                len: chunk.len() as u32,
            })
        };
        if ranges.len() > 1 {
            ranges.par_iter().map(store).collect()
        } else {
            ranges.iter().map(store).collect()
        }
    }
}

/// Whether a chunk is all zero bytes (stored as a hole). Most chunks fail on the first byte.
pub(crate) fn is_zero(b: &[u8]) -> bool {
    if b.first().is_some_and(|&x| x != 0) {
        return false;
    }
    let words = b.chunks_exact(8);
    let rest = words.remainder();
    words
        .map(|w| u64::from_ne_bytes(w.try_into().expect("8-byte chunk")))
        .all(|w| w == 0)
        && rest.iter().all(|&x| x == 0)
}

fn merge_holes(parts: Vec<Part>) -> Vec<Part> {
    let mut out: Vec<Part> = Vec::with_capacity(parts.len());
    for p in parts {
        match (out.last_mut(), p) {
            (Some(Part::Hole { len }), Part::Hole { len: l2 }) => *len += l2,
            (_, p) if p.is_empty() => {}
            (_, p) => out.push(p),
        }
    }
    out
}
