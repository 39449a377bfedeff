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
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
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
    /// zstd compression level (0 disables compression)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(0..=22))]
    compression: i32,
}

pub fn run(g: &GlobalOpts, a: BackupArgs) -> Result<ExitCode> {
    for p in &a.paths {
        if std::fs::symlink_metadata(p).is_err() && !(a.dereference && p.exists()) {
            return Err(Error::new(
                rime_engine::ErrorKind::NotFound,
                format!("source path {} does not exist", p.display()),
            ));
        }
    }
    let repo = super::open(g)?;
    let mut excludes = a.excludes.clone();
    for f in &a.exclude_files {
        excludes.extend(Excludes::read_file(f)?);
    }
    let parent = match &a.parent {
        Some(p) => Some(rime_engine::ops::select::resolve(&repo, p, &Default::default())?.0),
        None => None::<SnapshotId>,
    };
    let opts = BackupOptions {
        paths: a.paths.clone(),
        hostname: a.host.clone().unwrap_or_else(rime_engine::hostname),
        name: a.name.clone(),
        tags: a.tags.clone(),
        excludes,
        one_file_system: a.one_file_system,
        dereference: a.dereference,
        ignore_inode: a.ignore_inode,
        parent,
        force: a.force,
        compression_level: a.compression,
    };
    let progress = crate::progress::TermProgress::new(g.quiet || g.json, "backing up");
    let r = backup(&repo, &opts, &progress);
    progress.finish();
    let r = r?;
    let s = &r.snapshot.stats;
    if g.json {
        super::print_json(&serde_json::json!({
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
        }));
    } else if !g.quiet {
        println!(
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
        );
    }
    if !r.warnings.is_empty() {
        eprintln!(
            "rime: {} path(s) could not be read and are missing from snapshot {}",
            r.warnings.len(),
            r.id.short()
        );
        if !a.ignore_unreadable {
            return Ok(ExitCode::from(3));
        }
    }
    Ok(ExitCode::SUCCESS)
}
