//! Volume restore: onto a new sparse image file, an existing file (with `overwrite`) or a block
//! device at least as large as the volume and not in use. Every chunk is verified on read;
//! `verify` re-reads the target afterwards and compares it with the snapshot.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::Part;
use crate::id::BlobId;
use crate::ops::volume::fetch::fetch;
use crate::ops::volume::map::{load_map, load_segment, segment_offsets};
use crate::ops::Progress;
use crate::repo::index::MasterIndex;
use crate::repo::lock::LockGuard;
use crate::repo::Repository;

/// Verified chunks waiting for the writer thread (at most 16 MiB at the largest chunk size
/// times this; 256 KiB chunks: 8 MiB).
const WRITE_QUEUE: usize = 32;

/// Zeros are written (on devices) and compared (by verify) in pieces of this size.
const PIECE: u64 = 4 << 20;
static ZEROS: [u8; PIECE as usize] = [0; PIECE as usize];

#[derive(Debug, Clone)]
pub struct VolumeRestoreOptions {
    pub target: PathBuf,
    /// Allow an existing non-empty file or a device that holds data.
    pub overwrite: bool,
    /// Re-read the target afterwards and compare it with the snapshot.
    pub verify: bool,
}

#[derive(Debug, Default, Clone)]
pub struct VolumeRestoreStats {
    pub size: u64,
    pub block_device: bool,
    /// Bytes of chunk data written.
    pub bytes_written: u64,
    /// Bytes of holes written as zeros (devices only; files keep them as holes).
    pub zeros_written: u64,
    pub blobs: u64,
    /// Bytes compared by `verify`.
    pub verified: u64,
}

struct Target {
    file: File,
    block_device: bool,
    /// Holes must be written: the target's old bytes are still there.
    write_holes: bool,
}

pub fn restore_volume(
    repo: &Repository,
    snap: &Snapshot,
    opts: &VolumeRestoreOptions,
    progress: &dyn Progress,
) -> Result<VolumeRestoreStats> {
    let size = snap.source.content_size().ok_or_else(|| {
        Error::invalid("this snapshot is a file tree: restore it into a directory")
    })?;
    let _lock = LockGuard::shared(repo, "volume restore")?;
    let index = MasterIndex::load(repo)?;
    let map = load_map(repo, &index, &snap.root)?;
    if map.size != size {
        return Err(Error::corrupt(format!(
            "chunk map {} covers {} bytes, the snapshot says {size}",
            snap.root.short(),
            map.size
        )));
    }
    let t = prepare_target(&opts.target, size, opts.overwrite)?;
    let mut stats = VolumeRestoreStats {
        size,
        block_device: t.block_device,
        ..Default::default()
    };
    let written = AtomicU64::new(0);
    let blobs = AtomicU64::new(0);
    let tpath = opts.target.display().to_string();
    for (seg_off, seg) in segment_offsets(&map) {
        let segment = load_segment(repo, &index, seg)?;
        let (datas, holes) = layout(seg_off, &segment.parts);
        // One writer thread: parallel positioned writes to one file serialise on the file's
        // inode lock in the kernel and spin there (twice the CPU on tmpfs); the readers
        // (read, decrypt, decompress, verify) stay parallel and hand over at most
        // WRITE_QUEUE chunks.
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = crossbeam_channel::bounded::<(Vec<u64>, Vec<u8>)>(WRITE_QUEUE);
            let file = &t.file;
            let (written, tpath) = (&written, &tpath);
            let writer = scope.spawn(move || -> Result<()> {
                for (offsets, plain) in rx {
                    for off in offsets {
                        file.write_all_at(&plain, off)
                            .io_context(|| format!("cannot write {tpath} at offset {off}"))?;
                        written.fetch_add(plain.len() as u64, Ordering::Relaxed);
                        progress.item_done(plain.len() as u64);
                    }
                }
                Ok(())
            });
            let fetched = fetch(repo, &index, &datas, &|offsets, plain| {
                blobs.fetch_add(1, Ordering::Relaxed);
                tx.send((offsets.to_vec(), plain.to_vec())).map_err(|_| {
                    Error::new(ErrorKind::Io, format!("the writer of {tpath} stopped"))
                })
            });
            drop(tx);
            let wrote = writer.join().expect("the writer thread does not panic");
            // The writer's own error explains a failed hand-over better than the hand-over.
            wrote.and(fetched)
        })?;
        if t.write_holes {
            pieces(&holes)
                .par_iter()
                .try_for_each(|&(off, len)| -> Result<()> {
                    t.file
                        .write_all_at(&ZEROS[..len as usize], off)
                        .io_context(|| format!("cannot write {tpath} at offset {off}"))?;
                    progress.item_done(len);
                    Ok(())
                })?;
            stats.zeros_written += holes.iter().map(|h| h.1).sum::<u64>();
        } else {
            progress.item_done(holes.iter().map(|h| h.1).sum());
        }
    }
    t.file
        .sync_all()
        .io_context(|| format!("cannot flush {tpath}"))?;
    stats.bytes_written = written.into_inner();
    stats.blobs = blobs.into_inner();
    if opts.verify {
        stats.verified = verify_target(repo, &index, snap, &opts.target)?;
    }
    Ok(stats)
}

/// Data parts as (offset, id) and holes as (offset, len).
/// Data parts as (content offset, blob id).
type DataAt = Vec<(u64, BlobId)>;
/// Holes as (content offset, length).
type HolesAt = Vec<(u64, u64)>;

fn layout(mut off: u64, parts: &[Part]) -> (DataAt, HolesAt) {
    let mut datas = Vec::with_capacity(parts.len());
    let mut holes = Vec::new();
    for p in parts {
        match *p {
            Part::Data { id, .. } => datas.push((off, id)),
            Part::Hole { len } => holes.push((off, len)),
        }
        off += p.len();
    }
    (datas, holes)
}

/// Split ranges into pieces of at most [`PIECE`] bytes.
fn pieces(ranges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(mut off, mut len) in ranges {
        while len > 0 {
            let n = len.min(PIECE);
            out.push((off, n));
            off += n;
            len -= n;
        }
    }
    out
}

fn prepare_target(path: &Path, size: u64, overwrite: bool) -> Result<Target> {
    let meta = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A new image file: sparse, so holes cost neither writes nor space.
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .io_context(|| format!("cannot create {}", path.display()))?;
            file.set_len(size)
                .io_context(|| format!("cannot size {}", path.display()))?;
            return Ok(Target {
                file,
                block_device: false,
                write_holes: false,
            });
        }
        Err(e) => return Err(Error::io(format!("cannot stat {}", path.display()), e)),
        Ok(m) => m,
    };
    let ft = meta.file_type();
    if ft.is_file() {
        if meta.len() > 0 && !overwrite {
            return Err(Error::invalid(format!(
                "{} exists and is not empty: use --overwrite to replace it",
                path.display()
            )));
        }
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .io_context(|| format!("cannot open {}", path.display()))?;
        // Emptied first, so that holes read back as zeros without being written.
        file.set_len(0)
            .and_then(|()| file.set_len(size))
            .io_context(|| format!("cannot size {}", path.display()))?;
        return Ok(Target {
            file,
            block_device: false,
            write_holes: false,
        });
    }
    if !ft.is_block_device() {
        return Err(Error::invalid(format!(
            "{} is neither a block device nor a regular file",
            path.display()
        )));
    }
    if let Some(mnt) = mounted_at(meta.rdev()) {
        return Err(Error::invalid(format!(
            "{} is mounted on {mnt}: unmount it before restoring onto it",
            path.display()
        )));
    }
    // O_EXCL on a block device fails with EBUSY while it is mounted or otherwise claimed.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_EXCL)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::EBUSY) {
                Error::invalid(format!(
                    "{} is in use (mounted, or held by another program): refusing to write to it",
                    path.display()
                ))
            } else {
                Error::io(format!("cannot open {}", path.display()), e)
            }
        })?;
    let dev_size = file
        .seek(SeekFrom::End(0))
        .io_context(|| format!("cannot get the size of {}", path.display()))?;
    if dev_size < size {
        return Err(Error::invalid(format!(
            "{} holds {dev_size} bytes, the volume needs {size}: restore onto a device at least as large",
            path.display()
        )));
    }
    if !overwrite {
        let mut head = vec![0u8; (1 << 20).min(dev_size) as usize];
        file.read_exact_at(&mut head, 0)
            .io_context(|| format!("cannot read {}", path.display()))?;
        if !crate::ops::backup::is_zero(&head) {
            return Err(Error::invalid(format!(
                "{} holds data (its first MiB is not zero): use --overwrite to replace it",
                path.display()
            )));
        }
    }
    Ok(Target {
        file,
        block_device: true,
        write_holes: true,
    })
}

/// Where a device is mounted, from /proc/self/mountinfo ("major:minor" is its third field).
pub fn mounted_at(rdev: u64) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = format!("{}:{}", libc::major(rdev), libc::minor(rdev));
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.len() > 4 && f[2] == want).then(|| f[4].to_string())
    })
}

thread_local! {
    static VERIFY_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Re-read `target` and compare each chunk's keyed hash (and each hole's zeros) with the
/// snapshot; returns the bytes compared. The first difference is an error naming its offset.
pub fn verify_target(
    repo: &Repository,
    index: &MasterIndex,
    snap: &Snapshot,
    target: &Path,
) -> Result<u64> {
    let map = load_map(repo, index, &snap.root)?;
    let file = File::open(target).io_context(|| format!("cannot open {}", target.display()))?;
    let meta = file
        .metadata()
        .io_context(|| format!("cannot stat {}", target.display()))?;
    if meta.is_file() && meta.len() != map.size {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "verification failed: {} holds {} bytes, the snapshot {}",
                target.display(),
                meta.len(),
                map.size
            ),
        ));
    }
    // Holes of a sparse target read as zeros without being read.
    let extents = if meta.is_file() {
        crate::sys::data_extents(&file, meta.len()).ok()
    } else {
        None
    };
    let has_data = |off: u64, len: u64| -> bool {
        extents.as_ref().is_none_or(|x| {
            let i = x.partition_point(|&(_, e)| e <= off);
            i < x.len() && x[i].0 < off + len
        })
    };
    let compared = AtomicU64::new(0);
    for (seg_off, seg) in segment_offsets(&map) {
        let segment = load_segment(repo, index, seg)?;
        let mut items: Vec<(u64, u64, Option<BlobId>)> = Vec::with_capacity(segment.parts.len());
        let mut off = seg_off;
        for p in &segment.parts {
            match *p {
                Part::Data { id, len } => items.push((off, u64::from(len), Some(id))),
                Part::Hole { len } => {
                    for (o, l) in pieces(&[(off, len)]) {
                        if has_data(o, l) {
                            items.push((o, l, None));
                        } else {
                            compared.fetch_add(l, Ordering::Relaxed);
                        }
                    }
                }
            }
            off += p.len();
        }
        items
            .par_iter()
            .try_for_each(|&(off, len, id)| -> Result<()> {
                let mut buf = VERIFY_BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
                buf.resize(len as usize, 0);
                let r = file
                    .read_exact_at(&mut buf, off)
                    .io_context(|| format!("cannot read {} at offset {off}", target.display()));
                let ok = r.map(|()| match id {
                    Some(id) => repo.keys().blob_id(&buf) == id,
                    None => crate::ops::backup::is_zero(&buf),
                });
                VERIFY_BUF.with(|b| *b.borrow_mut() = buf);
                if !ok? {
                    return Err(Error::new(
                        ErrorKind::Corrupt,
                        format!(
                            "verification failed: {} differs from the snapshot in the {len} bytes at offset {off}",
                            target.display()
                        ),
                    ));
                }
                compared.fetch_add(len, Ordering::Relaxed);
                Ok(())
            })?;
    }
    Ok(compared.into_inner())
}
