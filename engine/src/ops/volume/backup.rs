//! Volume backup: a block device or a raw image file, read with parallel positioned reads.

use std::cell::RefCell;
use std::fs::{File, Metadata};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::error::{Error, ErrorKind, Result};
use crate::format::chunkmap::SEGMENT_PARTS;
use crate::format::snapshot::{ChunkerKind, SnapshotStats, SourceKind, VolumeSource};
use crate::format::tree::{Part, Timestamp};
use crate::ops::backup::BackupResult;
use crate::ops::blob_saver::BlobSaver;
use crate::ops::volume::map::MapWriter;
use crate::ops::volume::stream::{chunk_reader, store_chunk};
use crate::ops::volume::{check_chunk_size, find_parent, save, SnapshotMeta};
use crate::ops::Progress;
use crate::repo::index::MasterIndex;
use crate::repo::lock::LockGuard;
use crate::repo::packer::PackerStats;
use crate::repo::Repository;

/// Default fixed chunk size, chosen by measurement (BENCHMARKS.md, "Volumes"): file systems
/// change in scattered 4 KiB blocks, so smaller chunks store less of what did not change, while
/// each chunk costs an index entry (52 bytes in memory) and a map entry (about 36 bytes).
pub const DEFAULT_CHUNK_SIZE: u32 = 256 << 10;

#[derive(Debug, Clone)]
pub struct VolumeBackupOptions {
    /// Block device or regular image file.
    pub source: PathBuf,
    pub meta: SnapshotMeta,
    pub chunker: ChunkerKind,
    pub chunk_size: u32,
    /// Recorded facts about the capture (LVM snapshot, binlog position...).
    pub annotations: Vec<(String, String)>,
    /// Path to record instead of `source` (e.g. the origin volume when reading its snapshot).
    pub record_path: Option<String>,
    /// Run before the snapshot is written.
    pub commit_check: Option<crate::ops::CommitCheck>,
}

impl VolumeBackupOptions {
    pub fn new(source: impl Into<PathBuf>) -> Self {
        let source = source.into();
        VolumeBackupOptions {
            meta: SnapshotMeta::new(source.to_string_lossy().into_owned()),
            source,
            chunker: ChunkerKind::Fixed,
            chunk_size: DEFAULT_CHUNK_SIZE,
            annotations: vec![],
            record_path: None,
            commit_check: None,
        }
    }
}

/// The source opened, classified and measured.
pub struct OpenVolume {
    pub file: File,
    pub block_device: bool,
    pub size: u64,
    pub meta: Metadata,
}

/// Open a block device or a regular file for reading; anything else is refused.
pub fn open_volume(path: &Path) -> Result<OpenVolume> {
    // Classify before opening: opening a FIFO would block until someone writes to it.
    let pre = std::fs::metadata(path)
        .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?;
    if !pre.file_type().is_block_device() && !pre.is_file() {
        return Err(Error::invalid(format!(
            "{} is not a block device or a regular file",
            path.display()
        )));
    }
    let mut file =
        File::open(path).map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?;
    let ft = meta.file_type();
    let block_device = ft.is_block_device();
    if !block_device && !ft.is_file() {
        return Err(Error::invalid(format!(
            "{} is not a block device or a regular file",
            path.display()
        )));
    }
    let size = if block_device {
        file.seek(SeekFrom::End(0))
            .map_err(|e| Error::io(format!("cannot get the size of {}", path.display()), e))?
    } else {
        meta.len()
    };
    Ok(OpenVolume {
        file,
        block_device,
        size,
        meta,
    })
}

fn ts(secs: i64, nanos: i64) -> Timestamp {
    Timestamp {
        secs,
        nanos: nanos as u32,
    }
}

thread_local! {
    static CHUNK_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

pub fn backup_volume(
    repo: &Repository,
    opts: &VolumeBackupOptions,
    progress: &dyn Progress,
) -> Result<BackupResult> {
    let started = Instant::now();
    check_chunk_size(opts.chunker, opts.chunk_size)?;
    let vol = open_volume(&opts.source)?;
    let path_text = opts
        .record_path
        .clone()
        .unwrap_or_else(|| opts.source.to_string_lossy().into_owned());
    let mut meta = opts.meta.clone();
    if meta.name.is_empty() {
        meta.name = path_text.clone();
    }
    let m = &vol.meta;
    let mut annotations = opts.annotations.clone();
    annotations.sort();
    let mut info = VolumeSource {
        path: path_text.clone(),
        block_device: vol.block_device,
        size: vol.size,
        chunker: opts.chunker,
        chunk_size: if opts.chunker == ChunkerKind::Fixed {
            opts.chunk_size
        } else {
            0
        },
        mtime: Timestamp::default(),
        ctime: Timestamp::default(),
        inode: 0,
        dev: 0,
        annotations,
    };
    if !vol.block_device {
        info.mtime = ts(m.mtime(), m.mtime_nsec());
        info.ctime = ts(m.ctime(), m.ctime_nsec());
        info.inode = m.ino();
        info.dev = m.dev();
    }
    let lock = LockGuard::shared(repo, "volume backup")?;
    let index = MasterIndex::load(repo)?;
    let parent = find_parent(repo, &meta)?;
    let saver = BlobSaver::for_backup(repo, &index, meta.compression_level);

    // An image file whose size, times and inode match the parent's is not read at all.
    if let Some((pid, p)) = &parent {
        if let SourceKind::Volume(pv) = &p.source {
            let same = !vol.block_device
                && !meta.force
                && pv.size == info.size
                && pv.mtime == info.mtime
                && pv.ctime == info.ctime
                && pv.inode == info.inode
                && pv.dev == info.dev
                && pv.chunker == info.chunker
                && pv.chunk_size == info.chunk_size
                && index.contains(&p.root);
            if same {
                let stats = SnapshotStats {
                    bytes_total: info.size,
                    ..Default::default()
                };
                drop(saver);
                let root = p.root;
                progress.item_done(info.size);
                return save(
                    repo,
                    &lock,
                    &meta,
                    Some(*pid),
                    path_text,
                    SourceKind::Volume(info),
                    root,
                    stats,
                    started,
                    vec![],
                    // Nothing was written: no bytes added, no packs to protect.
                    (&index, &PackerStats::default()),
                );
            }
        }
    }

    let mut writer = MapWriter::default();
    let bytes_read = AtomicU64::new(0);
    match opts.chunker {
        ChunkerKind::Fixed => read_fixed(&vol, opts, &saver, &mut writer, &bytes_read, progress)?,
        ChunkerKind::FastCdc => {
            let mut f = &vol.file;
            let n = chunk_reader(&mut f, &repo.chunker(), &saver, &mut writer, progress)?;
            bytes_read.store(n, Ordering::Relaxed);
            if n != vol.size {
                return Err(size_changed(&opts.source, vol.size, n));
            }
        }
    }
    let mut warnings = Vec::new();
    check_unchanged(&opts.source, &vol, &mut warnings)?;
    for w in &warnings {
        progress.warning(w);
    }
    let (root, size) = writer.finish(&saver)?;
    debug_assert_eq!(size, vol.size);
    crate::ops::CommitCheck::run(&opts.commit_check)?;
    let stats = SnapshotStats {
        bytes_read: bytes_read.into_inner(),
        bytes_total: vol.size,
        ..saver.counts()
    };
    let packed = saver.finish()?;
    save(
        repo,
        &lock,
        &meta,
        parent.map(|(id, _)| id),
        path_text,
        SourceKind::Volume(info),
        root,
        stats,
        started,
        warnings,
        (&index, &packed),
    )
}

fn size_changed(path: &Path, before: u64, now: u64) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "{} changed size during the backup ({before} bytes, then {now}): nothing was saved",
            path.display()
        ),
    )
}

/// After the read: a volume that changed size is an error; an image file modified while it
/// was read is saved with a warning (as file backups do).
fn check_unchanged(path: &Path, vol: &OpenVolume, warnings: &mut Vec<String>) -> Result<()> {
    let now = if vol.block_device {
        let mut f = &vol.file;
        f.seek(SeekFrom::End(0))
            .map_err(|e| Error::io(format!("cannot get the size of {}", path.display()), e))?
    } else {
        let m = vol
            .file
            .metadata()
            .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?;
        if m.mtime() != vol.meta.mtime() || m.mtime_nsec() != vol.meta.mtime_nsec() {
            warnings.push(format!(
                "{}: changed while being read; stored as read",
                path.display()
            ));
        }
        m.len()
    };
    if now != vol.size {
        return Err(size_changed(path, vol.size, now));
    }
    Ok(())
}

/// Fixed-size chunks, one segment of the map at a time, the chunks of a segment in parallel.
fn read_fixed(
    vol: &OpenVolume,
    opts: &VolumeBackupOptions,
    saver: &BlobSaver<'_>,
    writer: &mut MapWriter,
    bytes_read: &AtomicU64,
    progress: &dyn Progress,
) -> Result<()> {
    let cs = u64::from(opts.chunk_size);
    let size = vol.size;
    // Holes of sparse image files are not read.
    let extents = if vol.block_device {
        vec![(0, size)]
    } else {
        crate::sys::data_extents(&vol.file, size).unwrap_or_else(|_| vec![(0, size)])
    };
    let has_data = |off: u64, len: u64| -> bool {
        let i = extents.partition_point(|&(_, e)| e <= off);
        i < extents.len() && extents[i].0 < off + len
    };
    let chunks = size.div_ceil(cs);
    let mut first = 0u64;
    while first < chunks {
        let last = (first + SEGMENT_PARTS as u64).min(chunks);
        let parts = (first..last)
            .into_par_iter()
            .map(|i| -> Result<Part> {
                if progress.cancelled() {
                    return Err(crate::ops::interrupted());
                }
                let off = i * cs;
                let len = cs.min(size - off);
                if !has_data(off, len) {
                    progress.item_done(len);
                    return Ok(Part::Hole { len });
                }
                let mut buf = CHUNK_BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
                buf.resize(len as usize, 0);
                let r = read_at(&vol.file, &mut buf, off, &opts.source, size);
                let part = r.and_then(|()| store_chunk(saver, &buf));
                CHUNK_BUF.with(|b| *b.borrow_mut() = buf);
                bytes_read.fetch_add(len, Ordering::Relaxed);
                progress.item_done(len);
                part
            })
            .collect::<Result<Vec<_>>>()?;
        for p in parts {
            writer.push(saver, p)?;
        }
        saver.check()?;
        if vol.block_device {
            crate::sys::drop_cache(&vol.file, first * cs, (last - first) * cs);
        }
        first = last;
    }
    Ok(())
}

/// Positioned read of a whole chunk; errors name the offset (an unreadable sector says where).
fn read_at(f: &File, buf: &mut [u8], off: u64, path: &Path, size: u64) -> Result<()> {
    match f.read_exact_at(buf, off) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} ended at less than its size of {size} bytes (reading {} bytes at offset {off}): it changed size during the backup",
                path.display(),
                buf.len()
            ),
        )),
        Err(e) => Err(Error::io(
            format!(
                "cannot read {} bytes at offset {off} of {}",
                buf.len(),
                path.display()
            ),
            e,
        )),
    }
}
