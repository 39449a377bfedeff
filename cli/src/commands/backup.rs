use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rime_engine::id::SnapshotId;
use rime_engine::ops::backup::{backup, BackupOptions};
use rime_engine::source::exclude::Excludes;
use rime_engine::{Error, Result};

use crate::output::bytes;
use crate::GlobalOpts;

#[derive(Args)]
pub struct BackupArgs {
    /// Files and directories to back up
    #[arg(value_name = "PATH", required_unless_present_any = ["volume", "stdin", "stdin_from_command", "mysql_conf"])]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    pub source: super::backup_source::SourceArgs,
    #[command(flatten)]
    pub snap: super::backup_snapshot::SnapshotArgs,
    /// What the paths hold: plain files (fs), or the data files of a database whose state is
    /// checked first (mongo: refuse unless the node is the replica set's primary)
    #[arg(long, value_enum, default_value = "fs")]
    mode: Mode,
    /// --mode mongo: the node to ask
    #[arg(long, value_name = "URI", default_value = "mongodb://127.0.0.1:27017")]
    mongo_uri: String,
    /// Host name recorded in the snapshot (default: this machine's)
    #[arg(long)]
    host: Option<String>,
    /// Backup name; the latest snapshot with the same host and name is the parent
    #[arg(long, short = 'N', default_value = "")]
    name: String,
    /// Tag the snapshot (repeatable)
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Exclude paths matching a glob (repeatable): with a '/' it matches the absolute path,
    /// otherwise any file or directory name
    #[arg(long = "exclude", short = 'e', value_name = "PATTERN")]
    excludes: Vec<String>,
    /// Read exclude patterns from a file, one per line (repeatable)
    #[arg(long = "exclude-file", value_name = "FILE")]
    exclude_files: Vec<PathBuf>,
    /// Patterns with GNU tar's `--exclude` meaning, set by `rime agent --engine rime` so that
    /// a job excludes the same files as with its tar engine (not a command-line option).
    #[arg(skip)]
    pub gnu_tar_excludes: Vec<String>,
    /// Do not cross file system boundaries
    #[arg(long, short = 'x')]
    one_file_system: bool,
    /// Follow symbolic links and back up what they point to
    #[arg(long, short = 'L')]
    dereference: bool,
    /// Exit with 0 even if some files could not be read (they are still reported)
    #[arg(long)]
    ignore_unreadable: bool,
    /// Detect unchanged files by size and mtime only (for snapshot mounts whose inode
    /// numbers and ctimes change every time)
    #[arg(long)]
    ignore_inode: bool,
    /// Read all files, even those unchanged since the parent snapshot
    #[arg(long)]
    force: bool,
    /// Use this snapshot as the parent instead of the latest with the same host and name
    #[arg(long, value_name = "SNAPSHOT")]
    parent: Option<String>,
    /// Record this time in the snapshot instead of now (YYYY-MM-DDThh:mm:ss, local time):
    /// for importing old data, and for building a history of snapshots in tests and benchmarks
    #[arg(long, value_name = "TIME")]
    time: Option<String>,
    /// zstd compression level (0 disables compression; 3 and above trade CPU time for a few
    /// percent less storage)
    #[arg(long, default_value_t = rime_engine::format::blob::DEFAULT_COMPRESSION_LEVEL, value_parser = clap::value_parser!(i32).range(0..=22))]
    compression: i32,
}

impl BackupArgs {
    /// What volume and stream backups share with file backups.
    pub fn snapshot_meta(
        &self,
        repo: &rime_engine::repo::Repository,
    ) -> Result<rime_engine::ops::volume::SnapshotMeta> {
        let parent = match &self.parent {
            Some(p) => Some(rime_engine::ops::select::resolve(repo, p, &Default::default())?.0),
            None => None,
        };
        Ok(rime_engine::ops::volume::SnapshotMeta {
            hostname: self.host.clone().unwrap_or_else(rime_engine::hostname),
            name: self.name.clone(),
            tags: self.tags.clone(),
            parent,
            force: self.force,
            compression_level: self.compression,
        })
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub enum Mode {
    Fs,
    Mongo,
}

pub fn run(g: &GlobalOpts, a: BackupArgs) -> Result<ExitCode> {
    if a.mode == Mode::Mongo {
        rime_engine::source::mongo::require_primary(&a.mongo_uri)?;
    }
    let mysql_snapshot =
        a.source.mysql_conf.is_some() && a.snap.wanted() && a.source.volume.is_none();
    if a.source.is_special() && !mysql_snapshot {
        if !a.paths.is_empty() && !a.source.takes_paths() {
            return Err(Error::invalid(
                "paths cannot be combined with --volume, --stdin or --stdin-from-command",
            ));
        }
        return super::backup_source::run(g, &a);
    }
    for p in &a.paths {
        if std::fs::symlink_metadata(p).is_err() && !(a.dereference && p.exists()) {
            return Err(Error::new(
                rime_engine::ErrorKind::NotFound,
                format!("source path {} does not exist", p.display()),
            ));
        }
    }
    // Checked before anything is read or a file system snapshot is taken.
    let time = match &a.time {
        Some(t) => Some(rime_engine::format::tree::Timestamp {
            secs: crate::output::parse_date(t)?,
            nanos: 0,
        }),
        None => None,
    };
    let repo = super::open(g)?;
    let mut excludes = a.excludes.clone();
    for f in &a.exclude_files {
        excludes.extend(Excludes::read_file(f)?);
    }
    let parent = match &a.parent {
        Some(p) => Some(rime_engine::ops::select::resolve(&repo, p, &Default::default())?.0),
        None => None::<SnapshotId>,
    };
    let mut paths = a.paths.clone();
    let mut record_as = vec![];
    let mut tags = a.tags.clone();
    let mut commit_check = None;
    let mut live = None;
    if a.snap.wanted() {
        let t = super::backup_snapshot::take(
            &a.snap,
            a.paths.first().map(|p| p.as_path()),
            false,
            a.source.mysql_conf.as_deref(),
            g.quiet,
        )?;
        record_as = paths
            .iter()
            .map(|p| std::path::absolute(p).map_err(|e| Error::io(p.display().to_string(), e)))
            .collect::<Result<Vec<_>>>()?;
        paths = record_as
            .iter()
            .map(|p| t.snap.translate(p))
            .collect::<Result<Vec<_>>>()?;
        tags.extend(t.binlog_tags.clone());
        let snap = std::sync::Arc::new(t.snap);
        let v = snap.clone();
        commit_check = Some(rime_engine::ops::CommitCheck(std::sync::Arc::new(
            move || v.validate(),
        )));
        excludes.push(format!(
            "{}*",
            rime_engine::source::snapshot::btrfs::SNAPSHOT_PREFIX
        ));
        live = Some(snap);
    }
    let opts = BackupOptions {
        paths,
        hostname: a.host.clone().unwrap_or_else(rime_engine::hostname),
        name: a.name.clone(),
        tags,
        excludes,
        gnu_tar_excludes: a.gnu_tar_excludes.clone(),
        one_file_system: a.one_file_system,
        dereference: a.dereference,
        ignore_inode: a.ignore_inode,
        parent,
        force: a.force,
        compression_level: a.compression,
        record_as,
        commit_check,
        time,
    };
    let progress = crate::progress::TermProgress::new(g.quiet || g.json, "backing up");
    let r = backup(&repo, &opts, &progress);
    progress.finish();
    drop(opts);
    // The last reference (the commit check held one, dropped with the options): remove the
    // snapshot now, and report a failure to remove it after the backup's own error, if any.
    let released = match live.map(std::sync::Arc::try_unwrap) {
        Some(Ok(snap)) => snap.release(),
        _ => Ok(()),
    };
    let r = r?;
    released?;
    report(g, &r, a.ignore_unreadable)
}

/// Print a backup's result; exit 3 when paths could not be read (unless told to ignore that),
/// 4 when one of several storages failed. When both happen the exit is 4 (a whole copy lacks
/// the snapshot) and both are reported: in the text and in `--json` (`unreadable`, `storages`).
pub fn report(
    g: &GlobalOpts,
    r: &rime_engine::ops::backup::BackupResult,
    ignore_unreadable: bool,
) -> Result<ExitCode> {
    let s = &r.snapshot.stats;
    let storages = super::storage_reports(g);
    let storage_failed = storages.iter().flatten().any(|m| m.error.is_some());
    let partial = !r.warnings.is_empty() && !ignore_unreadable;
    let code: u8 = match (storage_failed, partial) {
        (true, _) => 4,
        (false, true) => 3,
        (false, false) => 0,
    };
    if g.json {
        let doc = serde_json::json!({
            "dry_run": g.dry_run,
            "id": r.id.to_hex(),
            "short_id": r.id.short(),
            "parent": r.snapshot.parent.map(|p| p.to_hex()),
            "time": crate::output::time_rfc3339(r.snapshot.time),
            "stats": {
                "files": s.files, "dirs": s.dirs, "others": s.others,
                "files_read": s.files_read, "bytes_read": s.bytes_read, "bytes_total": s.bytes_total,
                "bytes_added": s.bytes_added, "chunks_new": s.chunks_new, "chunks_reused": s.chunks_reused,
                "trees_new": s.trees_new, "unreadable": s.unreadable, "duration_ms": s.duration_ms,
            },
            "warnings": r.warnings,
            "source": r.snapshot.source.label(),
            "storages": storages.as_deref().map(super::storage_reports_json),
            "storage_failed": storage_failed,
            "exit_code": code,
        });
        let text = serde_json::to_string_pretty(&doc).expect("JSON values serialize");
        super::print_result(g, &text);
    } else if !g.quiet && r.snapshot.source.has_chunk_map() {
        super::print_result(
            g,
            &format!(
            "snapshot {} {}: {} {} of {}; read {}, added {} to the repository; {} new / {} reused chunks; {:.2} s",
            r.id.short(),
            if g.dry_run { "not saved (dry run)" } else { "saved" },
            r.snapshot.source.label(),
            r.snapshot.paths.join(" "),
            bytes(s.bytes_total),
            bytes(s.bytes_read),
            bytes(s.bytes_added),
            s.chunks_new,
            s.chunks_reused,
            s.duration_ms as f64 / 1000.0
        ),
        );
    } else if !g.quiet {
        super::print_result(
            g,
            &format!(
            "snapshot {} {}: {} files, {} dirs, {} total; read {} files ({}), added {} to the repository; {} new / {} reused chunks; {:.2} s",
            r.id.short(),
            if g.dry_run { "not saved (dry run)" } else { "saved" },
            s.files,
            s.dirs,
            bytes(s.bytes_total),
            s.files_read,
            bytes(s.bytes_read),
            bytes(s.bytes_added),
            s.chunks_new,
            s.chunks_reused,
            s.duration_ms as f64 / 1000.0
        ),
        );
    }
    if !r.warnings.is_empty() {
        eprintln!(
            "rime: {} path(s) could not be read and are missing from snapshot {}",
            r.warnings.len(),
            r.id.short()
        );
        if partial && storage_failed {
            eprintln!(
                "rime: exit code 4 (a storage failed) stands for the unreadable paths (3) too"
            );
        }
    }
    Ok(ExitCode::from(code))
}
