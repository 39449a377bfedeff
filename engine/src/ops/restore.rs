//! Restore: plan the snapshot's files, read the blobs they need grouped by pack (coalesced
//! ranges, in parallel), verify each blob against its id, write it at its offsets with
//! positioned writes, and finish each file's metadata as soon as its last chunk lands.
//!
//! Memory is bounded by the plan (one small record per file and per chunk reference) plus one
//! read range (at most [`MAX_RANGE`]) per thread.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use parking_lot::Mutex;
use rayon::prelude::*;

use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::format::blob::open_blob_into;
use crate::format::tree::{Node, NodeKind, Part, Tree};
use crate::id::{PackId, SnapshotId};
use crate::ops::Progress;
use crate::ops::{browse, restore_direct};
use crate::repo::index::MasterIndex;
use crate::repo::Repository;
use crate::source::meta::{apply_metadata, OwnerMap, Ownership};
use crate::storage::FileKind;

/// Largest single read from a pack (a single larger blob is still read whole).
///
/// Each I/O thread holds one range, so this sets most of a restore's memory. 4 MiB took a 2 GB
/// restore from Swift with 8 threads from 198 MB to 102 MB of peak RSS against 16 MiB, with no
/// measurable change in time (one-node Swift on loopback, 2 cores); requests stay large enough
/// that per-request overhead does not show.
pub const MAX_RANGE: u64 = 4 << 20;
/// Appended to the name of a file whose data could not all be read.
pub const INCOMPLETE_SUFFIX: &str = ".rime-incomplete";
/// Gaps up to this size between needed blobs are read through rather than split.
const MAX_GAP: u64 = 1 << 20;

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub target: PathBuf,
    /// Restore only these paths of the view (and what lies below them).
    pub include: Vec<String>,
    pub overwrite: bool,
    /// Default: restore ownership when running as root.
    pub ownership: Option<bool>,
    /// Read every restored file back and compare it with the snapshot (`restore_verify`).
    pub verify: bool,
    /// Flush the target's file system before returning, so that a successful restore is on
    /// disk and write-back errors are reported (`sys::syncfs`).
    pub sync: bool,
    /// Write every file through the page cache. By default files of 32 MiB and more are
    /// written with direct I/O where the file system allows it (`restore_direct`).
    pub buffered: bool,
}

#[derive(Debug, Default, Clone)]
pub struct RestoreStats {
    pub files: u64,
    pub dirs: u64,
    pub others: u64,
    pub bytes: u64,
    pub blobs: u64,
    /// Problems that did not stop the restore (metadata that could not be set).
    pub warnings: Vec<String>,
    /// With `verify`: the bytes read back and compared.
    pub verified_bytes: u64,
}

struct PlannedFile {
    path: PathBuf,
    node: Node,
    remaining: AtomicU32,
    /// Held while writing to this file. Concurrent positioned writes to one file contend on
    /// its inode lock in the kernel, which spins: restoring two 1 GB files on two cores spent
    /// 7.5 s of system time for 1.3 s of user time. Waiting here (asleep) costs nothing,
    /// and threads keep decrypting and decompressing other blobs in parallel.
    write_lock: Mutex<()>,
    /// A write or the final size failed (not for want of space, which stops everything): the
    /// file is never complete, its later blobs are not written, and it is set aside.
    failed: AtomicBool,
    /// Its data is written with direct I/O (large files, until the file system refuses).
    direct: AtomicBool,
}

impl PlannedFile {
    fn complete(&self) -> bool {
        self.remaining.load(Ordering::Relaxed) == 0 && !self.failed.load(Ordering::Relaxed)
    }
}

/// A blob to read and every place it is written to.
type BlobUses = (crate::format::pack::PackEntry, Vec<Target>);

/// One use of a blob: file number and offset in it.
#[derive(Clone, Copy)]
struct Target {
    file: u32,
    offset: u64,
}

struct Plan {
    dirs: Vec<(PathBuf, Node)>,
    others: Vec<(PathBuf, Node)>,
    files: Vec<PlannedFile>,
    /// Extra names of hard-linked files: (existing file number, new path).
    links: Vec<(u32, PathBuf)>,
    /// Per pack: blobs needed, with their uses.
    packs: HashMap<PackId, Vec<BlobUses>>,
    /// Files and directories left out because their data or tree is gone, one line each.
    unrestorable: Vec<String>,
    /// The paths of the files among them.
    unrestorable_files: Vec<PathBuf>,
}

pub fn restore(
    repo: &Repository,
    snapshot: &SnapshotId,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreStats> {
    let snap = repo.load_snapshot(snapshot)?;
    let target = &opts.target;
    let created_target = prepare_target(target, opts.overwrite)?;
    let _lock = crate::repo::lock::LockGuard::shared_for_reading(repo, "restore")?;
    if _lock.is_none() {
        progress.warning("the repository cannot be written (read-only): restoring without a lock");
    }
    let index = MasterIndex::load(repo)?;
    let (view, top) = browse::view(repo, &index, &snap)?;
    let includes: Vec<Vec<&[u8]>> = opts.include.iter().map(|p| browse::components(p)).collect();
    let mut plan = Plan {
        dirs: vec![],
        others: vec![],
        files: vec![],
        links: vec![],
        packs: HashMap::new(),
        unrestorable: vec![],
        unrestorable_files: vec![],
    };
    let mut links_seen: HashMap<(u64, u64), u32> = HashMap::new();
    plan_tree(
        repo,
        &index,
        &view,
        target,
        &mut Vec::new(),
        &includes,
        &mut plan,
        &mut links_seen,
    )?;
    if !includes.is_empty()
        && plan.dirs.is_empty()
        && plan.files.is_empty()
        && plan.others.is_empty()
        && plan.unrestorable.is_empty()
    {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no path of the snapshot matches {:?}", opts.include),
        ));
    }
    // Said before anything is written: a target that cannot hold the data fills up midway.
    let need: u64 = plan
        .files
        .iter()
        .flat_map(|f| f.node.content.iter())
        .map(|p| match p {
            Part::Data { len, .. } => u64::from(*len),
            Part::Hole { .. } => 0,
        })
        .sum();
    if let Some(free) = crate::sys::free_bytes(target) {
        if need > free {
            let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
            progress.warning(&format!(
                "the files to restore hold {:.1} MiB of data, but the file system of {} has \
                 only {:.1} MiB free: the restore will stop when it is full{}",
                mib(need),
                target.display(),
                mib(free),
                if opts.overwrite {
                    " (unless the files it replaces free enough)"
                } else {
                    ""
                }
            ));
        }
    }
    let own = match opts.ownership.unwrap_or(crate::sys::geteuid() == 0) {
        true => Ownership::Restore,
        false => Ownership::Skip,
    };
    let mut stats = RestoreStats::default();
    let warnings = Mutex::new(Vec::new());
    let owners = OwnerMap::default();
    let fin = Finisher {
        own,
        owners: &owners,
        warnings: &warnings,
    };

    // 1. Directories (parents first: the plan is in pre-order).
    for (p, _) in &plan.dirs {
        if let Err(e) = fs::create_dir(p) {
            let existing = fs::symlink_metadata(p);
            if !(opts.overwrite && e.kind() == std::io::ErrorKind::AlreadyExists) {
                return Err(Error::io(
                    format!("cannot create directory {}", p.display()),
                    e,
                ));
            }
            // --overwrite: an existing real directory is reused; anything else (a file, or a
            // symlink that could lead outside the target) is replaced, never followed.
            if !existing.as_ref().is_ok_and(|m| m.is_dir()) {
                fs::remove_file(p).io_context(|| format!("cannot replace {}", p.display()))?;
                fs::create_dir(p)
                    .io_context(|| format!("cannot create directory {}", p.display()))?;
            }
        }
    }
    // 2. Symlinks, devices, FIFOs.
    plan.others
        .par_iter()
        .try_for_each(|(p, n)| -> Result<()> {
            if opts.overwrite {
                let _ = fs::remove_file(p);
            }
            let r = match n.kind {
                NodeKind::Symlink => {
                    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&n.link_target), p)
                }
                NodeKind::Fifo => crate::sys::mknod(p, libc::S_IFIFO | n.mode, 0),
                NodeKind::CharDevice => crate::sys::mknod(p, libc::S_IFCHR | n.mode, n.rdev),
                NodeKind::BlockDevice => crate::sys::mknod(p, libc::S_IFBLK | n.mode, n.rdev),
                NodeKind::Socket => Ok(()), // sockets are recreated by their servers, not restored
                _ => unreachable!("plan puts only special nodes here"),
            };
            let mut w = Vec::new();
            match r {
                Ok(()) if n.kind != NodeKind::Socket => {
                    apply_metadata(p, None, n, own, &owners, &mut w)
                }
                Ok(()) => {}
                Err(e) => w.push(format!("{}: cannot create {:?}: {e}", p.display(), n.kind)),
            }
            warnings.lock().extend(w);
            progress.item_done(0);
            Ok(())
        })?;
    // 3. Files without data (empty or all holes) now; the rest when their last chunk arrives.
    let errors: Mutex<Vec<Error>> = Mutex::new(Vec::new());
    plan.files.par_iter().try_for_each(|f| -> Result<()> {
        if opts.overwrite {
            let _ = fs::remove_file(&f.path);
        }
        if f.remaining.load(Ordering::Relaxed) == 0 {
            let file = open_for_write(&f.path)?;
            if let Err(e) = fin.finish(&file, f) {
                errors.lock().push(e);
            }
        }
        Ok(())
    })?;
    // 4. Data, by pack, in parallel ranges.
    if !opts.buffered {
        for f in plan
            .files
            .iter()
            .filter(|f| f.node.size >= restore_direct::MIN_SIZE)
        {
            f.direct.store(true, Ordering::Relaxed);
        }
    }
    let work = pack_ranges(std::mem::take(&mut plan.packs));
    let bytes = AtomicU64::new(0);
    let blobs = AtomicU64::new(0);
    // Once the target is full every later write fails too: stop reading packs.
    let target_full = AtomicBool::new(false);
    crate::ops::with_io_threads(repo, || {
        work.par_iter().for_each(|(pack, range)| {
            if target_full.load(Ordering::Relaxed) {
                return;
            }
            if let Err(e) = restore_range(
                repo,
                pack,
                range,
                &plan.files,
                &fin,
                &bytes,
                &blobs,
                progress,
                &target_full,
                &errors,
            ) {
                errors.lock().push(e);
            }
        })
    });
    let mut errors = errors.into_inner();
    // Only a full target stopped the restore (every blob read so far was intact): a partial
    // copy holds nothing the repository lacks, so it is removed (it would keep the disk full)
    // rather than kept aside.
    let only_full =
        target_full.into_inner() && errors.iter().all(|e| e.kind() == ErrorKind::NoSpace);
    // A file some of whose data could not be read is never left under its real name.
    let mut incomplete = Vec::new();
    for f in plan.files.iter().filter(|f| !f.complete()) {
        incomplete.push(match only_full {
            true => remove_partial(&f.path),
            false => set_aside(&f.path),
        });
    }
    // 5. Hard links to files restored above.
    for (file, path) in &plan.links {
        let f = &plan.files[*file as usize];
        if !f.complete() {
            incomplete.push(format!(
                "{}: not linked to incomplete {}{}",
                path.display(),
                f.path.display(),
                if opts.overwrite && fs::symlink_metadata(path).is_ok() {
                    "; the file already at this path was left as it was, it is not the \
                     snapshot's"
                } else {
                    ""
                }
            ));
            continue;
        }
        if opts.overwrite {
            let _ = fs::remove_file(path);
        }
        // A link that cannot be made (a full target) is one more problem to list, not a
        // reason to lose the list.
        if let Err(e) = fs::hard_link(&f.path, path) {
            errors.push(Error::io(
                format!("cannot create hard link {}", path.display()),
                e,
            ));
        }
    }
    // Read back before directory modes are set: a directory the snapshot has without owner
    // search permission would otherwise stop a non-root verify.
    let mut verify_problems = Vec::new();
    if opts.verify && errors.is_empty() && plan.unrestorable.is_empty() {
        let files: Vec<(&Path, &Node)> = plan
            .files
            .iter()
            .map(|f| (f.path.as_path(), &f.node))
            .collect();
        let links: Vec<(&Path, &Path)> = plan
            .links
            .iter()
            .map(|(n, p)| (p.as_path(), plan.files[*n as usize].path.as_path()))
            .collect();
        let (verified, problems) =
            crate::ops::restore_verify::verify_restored(repo.keys(), files, &links);
        stats.verified_bytes = verified;
        verify_problems = problems;
    }
    // 6. Directory metadata last, deepest first, so writing entries does not disturb mtimes.
    let mut w = Vec::new();
    for (p, n) in plan.dirs.iter().rev() {
        apply_metadata(p, None, n, own, &owners, &mut w);
    }
    if let (Some(top), true) = (&top, created_target) {
        if includes.is_empty() {
            apply_metadata(target, None, top, own, &owners, &mut w);
        }
    }
    warnings.lock().extend(w);
    if !errors.is_empty() || !plan.unrestorable.is_empty() {
        if opts.overwrite {
            // Not removed: the restore has nothing to put there instead.
            for p in plan.unrestorable_files.iter().filter(|p| p.exists()) {
                incomplete.push(format!(
                    "{}: the file already at this path was left as it was, it is not the \
                     snapshot's",
                    p.display()
                ));
            }
        }
        // Warnings (metadata that could not be set on restored files) would be lost with the
        // error: they go in its list.
        incomplete.extend(warnings.lock().drain(..).map(|w| format!("warning: {w}")));
        if only_full && plan.unrestorable.is_empty() {
            return Err(full_target_error(target, &errors, incomplete));
        }
        return Err(incomplete_error(&plan.unrestorable, &errors, incomplete));
    }
    if opts.sync {
        crate::sys::syncfs(target).io_context(|| {
            format!(
                "flushing the restored files to the disk of {} failed: the restore cannot be \
                 trusted",
                target.display()
            )
        })?;
    }
    if !verify_problems.is_empty() {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "restore verification failed: {} file(s) read back differ from the snapshot: {}",
                verify_problems.len(),
                listing(verify_problems)
            ),
        ));
    }
    stats.files = (plan.files.len() + plan.links.len()) as u64;
    stats.dirs = plan.dirs.len() as u64;
    stats.others = plan.others.len() as u64;
    stats.bytes = bytes.into_inner();
    stats.blobs = blobs.into_inner();
    stats.warnings = warnings.into_inner();
    Ok(stats)
}

/// Move a file whose data could not all be written out of its real name, to
/// `NAME.rime-incomplete` (or `.1`, `.2`, ... if taken; never over another file). A file that
/// cannot be set aside is removed. Returns the line for the error.
pub(crate) fn set_aside(path: &Path) -> String {
    if fs::symlink_metadata(path).is_err() {
        return format!(
            "{}: not restored, none of its data was written",
            path.display()
        );
    }
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(d), Some(n)) => (d, n.as_bytes()),
        _ => (Path::new("."), path.as_os_str().as_bytes()),
    };
    for k in 0..100 {
        let suffix = match k {
            0 => INCOMPLETE_SUFFIX.to_string(),
            _ => format!("{INCOMPLETE_SUFFIX}.{k}"),
        };
        let marked = dir.join(std::ffi::OsStr::from_bytes(
            &crate::ops::salvage::marked_name(name, &suffix),
        ));
        // A hard link never replaces an existing name (rename would).
        let moved = match fs::hard_link(path, &marked) {
            Ok(()) => fs::remove_file(path).is_ok(),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(_) if fs::symlink_metadata(&marked).is_err() => fs::rename(path, &marked).is_ok(),
            Err(_) => false,
        };
        if moved {
            return format!(
                "{}: incomplete, its partial content is kept as {}",
                path.display(),
                marked.display()
            );
        }
        break;
    }
    match fs::remove_file(path) {
        Ok(()) => format!(
            "{}: incomplete, and removed (it could not be renamed aside)",
            path.display()
        ),
        Err(e) => format!(
            "{}: INCOMPLETE, and it could be neither renamed nor removed: {e}",
            path.display()
        ),
    }
}

/// Remove what was written of a file the restore could not finish because the target is full.
pub(crate) fn remove_partial(path: &Path) -> String {
    match fs::remove_file(path) {
        Ok(()) => format!("{}: not restored, partial copy removed", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!("{}: not restored", path.display())
        }
        Err(e) => format!(
            "{}: INCOMPLETE, and it could not be removed: {e}",
            path.display()
        ),
    }
}

/// The error of a restore stopped by a full target: said first, then the files not restored.
fn full_target_error(target: &Path, errors: &[Error], mut not_restored: Vec<String>) -> Error {
    let first = errors.first().map(ToString::to_string).unwrap_or_default();
    let mut seen = std::collections::HashSet::from([first.clone()]);
    // Other write failures (hard links) follow the files, each once.
    not_restored.extend(
        errors
            .iter()
            .filter(|e| !e.to_string().starts_with("cannot write "))
            .map(ToString::to_string)
            .filter(|l| seen.insert(l.clone())),
    );
    Error::new(
        ErrorKind::NoSpace,
        format!(
            "restore stopped: no space left on the restore target {} ({first}); {} file(s) not \
             restored (restore again where there is room): {}",
            target.display(),
            not_restored.len(),
            listing(not_restored)
        ),
    )
}

/// The error of a restore that wrote everything it could: what is missing, what failed to read,
/// and which files were marked incomplete (at most 20 lines, then a count).
fn incomplete_error(unrestorable: &[String], errors: &[Error], incomplete: Vec<String>) -> Error {
    let kind = errors
        .first()
        .map_or(ErrorKind::MissingObject, |e| e.kind());
    let mut lines: Vec<String> = unrestorable.to_vec();
    let mut seen = std::collections::HashSet::new();
    // One line per distinct problem (several ranges of one file fail alike).
    lines.extend(
        errors
            .iter()
            .map(|e| e.to_string())
            .filter(|l| seen.insert(l.clone())),
    );
    lines.extend(incomplete);
    let listed = listing(lines);
    Error::new(
        kind,
        format!(
            "restore incomplete ({} item(s) missing from the repository, {} read or write \
             error(s); everything else was restored): {listed}",
            unrestorable.len(),
            errors.len(),
        ),
    )
}

/// Problem lines for an error message: the first on the error's own line (what a log line or a
/// script shows), then at most 19 more, one per line, then how many were left out.
fn listing(mut lines: Vec<String>) -> String {
    const SHOWN: usize = 20;
    let total = lines.len();
    lines.truncate(SHOWN);
    if total > SHOWN {
        lines.push(format!("... and {} more", total - SHOWN));
    }
    lines.join("\n  ")
}

/// Group the blobs needed from each pack into ranges read in one request: neighbours closer
/// than [`MAX_GAP`] are read through, no range exceeds [`MAX_RANGE`]. Larger ranges come first,
/// which keeps every thread busy to the end.
pub(crate) fn pack_ranges<T>(
    packs: impl IntoIterator<Item = (PackId, Vec<(crate::format::pack::PackEntry, T)>)>,
) -> Vec<(PackId, Vec<(crate::format::pack::PackEntry, T)>)> {
    let mut work = Vec::new();
    for (pack, mut blobs) in packs {
        blobs.sort_by_key(|(e, _)| e.offset);
        let mut cur: Vec<(crate::format::pack::PackEntry, T)> = Vec::new();
        for b in blobs {
            if let (Some(first), Some(last)) = (cur.first(), cur.last()) {
                let end = u64::from(b.0.offset) + u64::from(b.0.stored_len);
                let gap = u64::from(b.0.offset)
                    .saturating_sub(u64::from(last.0.offset) + u64::from(last.0.stored_len));
                if gap > MAX_GAP || end - u64::from(first.0.offset) > MAX_RANGE {
                    work.push((pack, std::mem::take(&mut cur)));
                }
            }
            cur.push(b);
        }
        if !cur.is_empty() {
            work.push((pack, cur));
        }
    }
    work.sort_by_key(|(_, r): &(PackId, Vec<_>)| std::cmp::Reverse(r.len()));
    work
}

/// Create the target directory or check it is empty; returns whether it was created.
fn prepare_target(target: &Path, overwrite: bool) -> Result<bool> {
    match fs::read_dir(target) {
        Ok(mut rd) => {
            if rd.next().is_some() && !overwrite {
                return Err(Error::invalid(format!(
                    "restore target {} exists and is not empty (use --overwrite to restore into it)",
                    target.display()
                )));
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(target)
                .io_context(|| format!("cannot create restore target {}", target.display()))?;
            Ok(true)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Err(Error::invalid(format!(
            "restore target {} exists and is not a directory",
            target.display()
        ))),
        Err(e) => Err(Error::io(
            format!("cannot open restore target {}", target.display()),
            e,
        )),
    }
}

fn included(path: &[Vec<u8>], includes: &[Vec<&[u8]>]) -> (bool, bool) {
    // (restore this node, descend into it)
    if includes.is_empty() {
        return (true, true);
    }
    let mut take = false;
    let mut descend = false;
    for inc in includes {
        let n = inc.len().min(path.len());
        if inc[..n]
            .iter()
            .zip(&path[..n])
            .all(|(a, b)| *a == b.as_slice())
        {
            if path.len() >= inc.len() {
                take = true;
            }
            descend = true;
        }
    }
    (take, descend)
}

#[allow(clippy::too_many_arguments)]
fn plan_tree(
    repo: &Repository,
    index: &MasterIndex,
    tree: &Tree,
    dir: &Path,
    path: &mut Vec<Vec<u8>>,
    includes: &[Vec<&[u8]>],
    plan: &mut Plan,
    links_seen: &mut HashMap<(u64, u64), u32>,
) -> Result<()> {
    for node in &tree.nodes {
        path.push(node.name.clone());
        let (take, descend) = included(path, includes);
        let p = dir.join(std::ffi::OsStr::from_bytes(&node.name));
        if descend {
            match node.kind {
                NodeKind::Dir => {
                    plan.dirs.push((p.clone(), node.clone()));
                    let sub = node.subtree.expect("validated");
                    match repo.load_tree(index, &sub) {
                        Ok(t) => plan_tree(repo, index, &t, &p, path, includes, plan, links_seen)?,
                        // The rest of the snapshot is still restored; the run fails at the end.
                        Err(e) => plan.unrestorable.push(format!(
                            "{}: directory contents not restored, tree {} cannot be read: {e}",
                            p.display(),
                            sub.short()
                        )),
                    }
                }
                NodeKind::File if take => {
                    let key = (node.links > 1).then_some((node.device, node.inode));
                    if let Some(&first) = key.as_ref().and_then(|k| links_seen.get(k)) {
                        plan.links.push((first, p));
                    } else {
                        let n = plan.files.len() as u32;
                        if add_file(index, plan, n, p, node)? {
                            if let Some(k) = key {
                                links_seen.insert(k, n);
                            }
                        }
                    }
                }
                NodeKind::File => {}
                _ if take => plan.others.push((p, node.clone())),
                _ => {}
            }
        }
        path.pop();
    }
    Ok(())
}

/// Plan a file's writes. A file with data the index lacks is not planned at all (a restore
/// never writes a file it knows is wrong); it is listed in `plan.unrestorable` instead and
/// `false` is returned.
fn add_file(
    index: &MasterIndex,
    plan: &mut Plan,
    n: u32,
    path: PathBuf,
    node: &Node,
) -> Result<bool> {
    // One index lookup per chunk: where it is, or that it is gone.
    let found: Vec<_> = node
        .content
        .iter()
        .filter_map(|part| match part {
            Part::Data { id, .. } => Some((*id, index.lookup(id))),
            Part::Hole { .. } => None,
        })
        .collect();
    let missing: Vec<_> = found.iter().filter(|(_, l)| l.is_none()).collect();
    if let Some((first, _)) = missing.first() {
        plan.unrestorable.push(format!(
            "{}: not restored, {} of its {} chunks are not in the repository (first: data blob {first}){}",
            path.display(),
            missing.len(),
            node.content.len(),
            index.missing_hint()
        ));
        plan.unrestorable_files.push(path);
        return Ok(false);
    }
    let mut found = found.into_iter();
    let mut offset = 0u64;
    let mut count = 0u32;
    for part in &node.content {
        if let Part::Data { id, .. } = part {
            let (_, located) = found.next().expect("one lookup per data part");
            let (pack, e) = located.expect("checked above");
            let blobs = plan.packs.entry(pack).or_default();
            let t = Target { file: n, offset };
            // Consecutive references to the same blob (repeated content) share one read.
            match blobs.iter_mut().rev().take(4).find(|(b, _)| b.id == *id) {
                Some((_, uses)) => uses.push(t),
                None => blobs.push((e, vec![t])),
            }
            count += 1;
        }
        offset += part.len();
    }
    plan.files.push(PlannedFile {
        path,
        node: node.clone(),
        remaining: AtomicU32::new(count),
        write_lock: Mutex::new(()),
        failed: AtomicBool::new(false),
        direct: AtomicBool::new(false),
    });
    Ok(true)
}

fn open_for_write(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .io_context(|| format!("cannot create {}", path.display()))
}

/// Completes a file once all its data is written: size (trailing holes), then metadata.
struct Finisher<'a> {
    own: Ownership,
    owners: &'a OwnerMap,
    warnings: &'a Mutex<Vec<String>>,
}

impl Finisher<'_> {
    /// A file whose size cannot be set (its trailing hole, beyond the last data: `EFBIG` from a
    /// file size limit, or a file system without holes that runs out of space) has the wrong
    /// content, so that is an error and the file is set aside; metadata that cannot be set is
    /// a warning.
    fn finish(&self, file: &File, f: &PlannedFile) -> Result<()> {
        let sized = match file.metadata() {
            Ok(m) if m.len() == f.node.size => Ok(()),
            _ => file.set_len(f.node.size),
        };
        if let Err(e) = sized {
            f.failed.store(true, Ordering::Relaxed);
            return Err(Error::io(
                format!(
                    "cannot set the size of {} to {} bytes",
                    f.path.display(),
                    f.node.size
                ),
                e,
            ));
        }
        let mut w = Vec::new();
        apply_metadata(&f.path, Some(file), &f.node, self.own, self.owners, &mut w);
        if !w.is_empty() {
            self.warnings.lock().extend(w);
        }
        Ok(())
    }
}

/// Write one pack range's blobs into their files. A write that fails for want of space stops
/// the range (every later write would fail too); any other failure of one file (a file size
/// limit, an I/O error) marks that file failed, goes into `file_errors`, and the range goes on
/// for the other files.
#[allow(clippy::too_many_arguments)]
fn restore_range(
    repo: &Repository,
    pack: &PackId,
    range: &[BlobUses],
    files: &[PlannedFile],
    fin: &Finisher<'_>,
    bytes: &AtomicU64,
    blobs: &AtomicU64,
    progress: &dyn Progress,
    target_full: &AtomicBool,
    file_errors: &Mutex<Vec<Error>>,
) -> Result<()> {
    open_range(
        repo,
        pack,
        range,
        |uses| format!("needed by {}", files[uses[0].file as usize].path.display()),
        |uses| uses[0].offset,
        |uses, plain| {
            blobs.fetch_add(1, Ordering::Relaxed);
            for t in uses {
                let f = &files[t.file as usize];
                if f.failed.load(Ordering::Relaxed) {
                    continue;
                }
                let written = open_for_write(&f.path).and_then(|file| {
                    let _writing = f.write_lock.lock();
                    restore_direct::write_at(&file, &f.path, plain, t.offset, &f.direct)
                        .map(|()| file)
                });
                let file = match written {
                    Ok(file) => file,
                    Err(e) if e.kind() == ErrorKind::NoSpace => {
                        target_full.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                    Err(e) => {
                        f.failed.store(true, Ordering::Relaxed);
                        file_errors.lock().push(e);
                        continue;
                    }
                };
                bytes.fetch_add(plain.len() as u64, Ordering::Relaxed);
                if f.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    match fin.finish(&file, f) {
                        Ok(()) => progress.item_done(f.node.size),
                        Err(e) => file_errors.lock().push(e),
                    }
                }
            }
            Ok(())
        },
    )
}

/// Read one range of a pack (from [`pack_ranges`]) in one request, open and verify each blob
/// in it, and hand it to `each` with its uses. Errors name the pack and, through `what`, who
/// needed the blob; a blob that fails verification is skipped, the rest of the range is still
/// delivered, and the first failure is returned at the end.
///
/// When the repository is on several storages and a blob fails verification, the rest of the
/// range is read again from the other copies in turn: a storage can hand back damaged bytes
/// without any error of its own, and the restore should not fail while a good copy exists.
/// Blobs already delivered are not delivered twice.
///
/// `phase(uses)` is where the plaintext will be written, modulo the page size: decompressed
/// blobs are placed at an address with that remainder (see [`open_blob_into`]), so a direct
/// write of their middle needs no copy.
pub(crate) fn open_range<T>(
    repo: &Repository,
    pack: &PackId,
    range: &[(crate::format::pack::PackEntry, T)],
    what: impl Fn(&T) -> String,
    phase: impl Fn(&T) -> u64,
    each: impl FnMut(&T, &[u8]) -> Result<()>,
) -> Result<()> {
    PLAIN_SCRATCH.with(|scratch| {
        open_range_with(
            repo,
            pack,
            range,
            what,
            phase,
            each,
            &mut scratch.borrow_mut(),
        )
    })
}

thread_local! {
    /// Each restore thread's buffer for decompressed blobs, reused: a fresh buffer per blob
    /// costs page faults and zeroing on every chunk.
    static PLAIN_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn open_range_with<T>(
    repo: &Repository,
    pack: &PackId,
    range: &[(crate::format::pack::PackEntry, T)],
    what: impl Fn(&T) -> String,
    phase: impl Fn(&T) -> u64,
    mut each: impl FnMut(&T, &[u8]) -> Result<()>,
    scratch: &mut Vec<u8>,
) -> Result<()> {
    let storage = repo.storage();
    let name = pack.to_hex();
    let start = u64::from(range[0].0.offset);
    let last = &range[range.len() - 1].0;
    let end = u64::from(last.offset) + u64::from(last.stored_len);
    let mut buf = storage
        .read_range(FileKind::Pack, &name, start, end - start)
        .map_err(|e| e.within(format!("pack {pack}")))?;
    let mut base = start;
    // Copies tried for blob `i`: every blob that fails gets every copy, whatever happened to
    // the blobs before it.
    let mut tried = 0;
    let copies = storage.replicas();
    let mut i = 0;
    let mut failed: Vec<Error> = Vec::new();
    while i < range.len() {
        let (e, uses) = &range[i];
        let s = (u64::from(e.offset) - base) as usize;
        let stored = &buf[s..s + e.stored_len as usize];
        let opened = open_blob_into(
            repo.keys(),
            e.ty,
            e.flags,
            e.raw_len,
            &e.id,
            stored,
            scratch,
            phase(uses),
        );
        match opened {
            Ok(plain) => {
                if let Err(w) = each(uses, &plain) {
                    // Blobs already found damaged stay the error (their files must be set
                    // aside, not taken for victims of the write failure).
                    return Err(match failed.is_empty() {
                        true => w,
                        false => failed.remove(0).note(format!("then: {w}")),
                    });
                }
                i += 1;
                tried = 0;
            }
            Err(err) if copies > 1 && tried < copies => {
                let from = u64::from(e.offset);
                let copy = tried;
                tried += 1;
                if let Ok(b) =
                    storage.read_range_replica(copy, FileKind::Pack, &name, from, end - from)
                {
                    if b.len() as u64 == end - from {
                        buf = b;
                        base = from;
                        repo.note_recovered(format!(
                            "pack {pack}, {}: {err}; read again from copy {} of {}",
                            what(uses),
                            copy + 1,
                            copies
                        ));
                    }
                }
            }
            Err(err) => {
                // The other blobs of the range are still delivered: one damaged chunk must
                // not take its neighbours (often other files) down with it.
                let err = err.within(format!("pack {pack}, {}", what(uses)));
                failed.push(if copies > 1 {
                    err.within(format!("damaged on all {copies} storages"))
                } else {
                    err
                });
                i += 1;
                tried = 0;
            }
        }
    }
    match failed.len() {
        0 => Ok(()),
        1 => Err(failed.remove(0)),
        n => {
            let first = failed.remove(0);
            Err(Error::new(
                first.kind(),
                format!("{first} (and {} more damaged blob(s) in this range)", n - 1),
            ))
        }
    }
}

#[cfg(test)]
mod set_aside_tests {
    use super::*;

    #[test]
    fn an_incomplete_file_never_replaces_another_and_long_names_fit() {
        let dir = tempfile::tempdir().unwrap();
        let (a, taken) = (dir.path().join("a"), dir.path().join("a.rime-incomplete"));
        fs::write(&a, b"partial").unwrap();
        fs::write(&taken, b"a restored file of the snapshot").unwrap();
        let line = set_aside(&a);
        assert!(line.ends_with("a.rime-incomplete.1"), "{line}");
        assert!(!a.exists());
        assert_eq!(
            fs::read(&taken).unwrap(),
            b"a restored file of the snapshot"
        );
        assert_eq!(
            fs::read(dir.path().join("a.rime-incomplete.1")).unwrap(),
            b"partial"
        );

        let long = dir.path().join("x".repeat(250));
        fs::write(&long, b"partial").unwrap();
        let line = set_aside(&long);
        assert!(!long.exists(), "{line}");
        let marked = format!(
            "{}{INCOMPLETE_SUFFIX}",
            "x".repeat(255 - INCOMPLETE_SUFFIX.len())
        );
        assert_eq!(
            fs::read(dir.path().join(marked)).unwrap(),
            b"partial",
            "{line}"
        );

        let never_written = dir.path().join("b");
        assert!(set_aside(&never_written).contains("none of its data was written"));
    }
}
