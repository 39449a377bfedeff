//! A tar-level backup: [`crate::tarinc::create`] at the level the rules give, streamed through
//! an in-process pipe into the repository, one chunk per tar member ([`super::split`]; large members
//! by content-defined chunking), so that the files a new level 0 shares with earlier levels
//! cost (almost) nothing in the repository.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::format::snapshot::{SnapshotStats, SourceKind, TarLevelSource};
use crate::ops::backup::BackupResult;
use crate::ops::blob_saver::BlobSaver;
use crate::ops::pipe::PipeWriter;
use crate::ops::volume::map::MapWriter;
use crate::ops::volume::{save, SnapshotMeta};
use crate::ops::Progress;
use crate::repo::index::MasterIndex;
use crate::repo::lock::LockGuard;
use crate::repo::Repository;
use crate::tarinc::{self, CreateOptions, CreateStats, Scan, Snar};

use super::history;
use super::plan::{plan, LevelRules, Plan};
use super::split::chunk_tar;

#[derive(Debug, Clone)]
pub struct TarBackupOptions {
    /// Host, backup name (the chain is kept per host and name), tags, compression level.
    pub meta: SnapshotMeta,
    /// The directory archived (its contents, as `tar -C DIR .`).
    pub root: PathBuf,
    pub rules: LevelRules,
    pub create: CreateOptions,
    /// Recorded in the snapshot (see [`TarLevelSource`]).
    pub compression: String,
    pub encrypted: bool,
    pub annotations: Vec<(String, String)>,
    /// Seconds since the epoch used for the level rules (normally now).
    pub now: i64,
}

/// The snapshot written, the plan it followed, and the tar statistics.
#[derive(Debug)]
pub struct TarBackupResult {
    pub backup: BackupResult,
    pub plan: Plan,
    pub tar: CreateStats,
}

/// Decide the next level without backing up (for `--dry-run`).
pub fn next_plan(
    repo: &Repository,
    meta: &SnapshotMeta,
    rules: &LevelRules,
    now: i64,
) -> Result<Plan> {
    let snaps = history::list(repo, Some(&meta.hostname), Some(&meta.name))?;
    plan(&history::levels(&snaps), rules, now)
}

pub fn backup(
    repo: &Repository,
    opts: &TarBackupOptions,
    progress: &dyn Progress,
) -> Result<TarBackupResult> {
    let scan = Scan::start(&opts.root, &opts.create)?;
    backup_scanned(repo, opts, scan, progress)
}

/// [`backup`] of a tree whose reading started earlier ([`Scan::start`] on `opts.root` with
/// `opts.create`), typically before the repository was opened, so that the key derivation and
/// the walk overlap.
pub fn backup_scanned(
    repo: &Repository,
    opts: &TarBackupOptions,
    scan: Scan,
    progress: &dyn Progress,
) -> Result<TarBackupResult> {
    let started = Instant::now();
    if scan.root_path() != opts.root {
        return Err(Error::invalid(format!(
            "internal: the tree read ({}) is not the backup root ({})",
            scan.root_path().display(),
            opts.root.display()
        )));
    }
    if opts.meta.name.is_empty() {
        return Err(Error::invalid(
            "a tar backup needs a backup name: the next level is found by host and name",
        ));
    }
    let lock = LockGuard::shared(repo, "tar backup")?;
    // The index loads while the level is decided from the snapshot list.
    let (plan, index) = std::thread::scope(|s| {
        let index = s.spawn(|| MasterIndex::load(repo));
        let plan = next_plan(repo, &opts.meta, &opts.rules, opts.now);
        let index = index
            .join()
            .unwrap_or_else(|_| Err(Error::invalid("loading the index panicked")));
        (plan, index)
    });
    let (plan, index) = (plan?, index?);
    let previous = match plan.parent() {
        Some(p) => Some(load_snar_indexed(repo, &index, &repo.load_snapshot(&p)?)?),
        None => None,
    };
    let saver = BlobSaver::for_backup(repo, &index, opts.meta.compression_level);
    let mut writer = MapWriter::default();
    let (reader, pipe_w) = crate::ops::pipe::pipe();
    let (chunked, produced) = std::thread::scope(|s| {
        let producer = s.spawn(|| produce(&scan, previous.as_ref(), pipe_w));
        let mut reader = reader;
        let chunked = chunk_tar(
            &mut reader,
            &repo.chunker(),
            repo.config().chunker.max_size as usize,
            &saver,
            &mut writer,
            progress,
        );
        drop(reader); // a producer still writing now fails instead of blocking
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(Error::invalid("the tar writer panicked")));
        (chunked, produced)
    });
    // A failing consumer closes the pipe, which the producer then reports as a broken pipe:
    // the consumer's error is the cause. A failing producer closes the pipe early, which the
    // consumer takes for the end of the stream: the producer's error is then the only one.
    let size = chunked?;
    let (tar_stats, tar_size) = produced?;
    let (root, _) = writer.finish(&saver)?;
    let stats = SnapshotStats {
        files: tar_stats.files_dumped + tar_stats.files_unchanged,
        dirs: tar_stats.dirs,
        files_read: tar_stats.files_dumped,
        bytes_read: tar_stats.bytes,
        bytes_total: size,
        unreadable: tar_stats.unreadable,
        ..saver.counts()
    };
    let packed = saver.finish()?;
    let mut annotations = opts.annotations.clone();
    annotations.sort();
    let source = SourceKind::TarLevel(TarLevelSource {
        size,
        tar_size,
        level: plan.level,
        chain: plan.chain.clone(),
        compression: opts.compression.clone(),
        encrypted: opts.encrypted,
        annotations,
    });
    let backup = save(
        repo,
        &lock,
        &opts.meta,
        plan.parent(),
        opts.root.display().to_string(),
        source,
        root,
        stats,
        started,
        tar_stats.warnings.clone(),
        (&index, &packed),
    )?;
    Ok(TarBackupResult {
        backup,
        plan,
        tar: tar_stats,
    })
}

/// Write the archive, then the new SNAR, into the pipe. Returns the statistics and the
/// archive's length.
fn produce(scan: &Scan, previous: Option<&Snar>, pipe: PipeWriter) -> Result<(CreateStats, u64)> {
    let counted = Counting { inner: pipe, n: 0 };
    let out = tarinc::create_from(scan, previous, counted)?;
    let mut w = out.out;
    let tar_size = w.n;
    w.write_all(&out.snar.to_bytes())
        .and_then(|_| w.flush())
        .map_err(|e| Error::io("cannot write the tar stream", e))?;
    Ok((out.stats, tar_size))
}

/// The SNAR state recorded after a tar-level snapshot.
pub fn load_snar(repo: &Repository, snap: &crate::format::snapshot::Snapshot) -> Result<Snar> {
    load_snar_indexed(repo, &MasterIndex::load(repo)?, snap)
}

fn load_snar_indexed(
    repo: &Repository,
    index: &MasterIndex,
    snap: &crate::format::snapshot::Snapshot,
) -> Result<Snar> {
    let t = history::source(snap)?;
    let mut buf = Vec::new();
    crate::ops::volume::export::export_range_indexed(
        repo, index, snap, t.tar_size, t.size, &mut buf,
    )?;
    Snar::parse(&buf).map_err(|e| e.within("the SNAR state of the parent level"))
}

/// Counts the bytes written through it.
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
