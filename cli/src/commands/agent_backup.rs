//! `rime agent --action backup`: the tar engine (GNU tar incremental levels in the repository,
//! the default) or rime's own snapshots (`--engine rime`, run as `rime backup`), in mode fs,
//! mysql (tables locked while the snapshot or archive is taken) or mongo (primary only), from
//! an LVM/btrfs snapshot when the `--lvm-*` options or `--snapshot` are given. Writes
//! Freezer's metadata JSON with `--metadata-out`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use rime_engine::ops::tarlevel::{self, TarBackupOptions};
use rime_engine::ops::volume::SnapshotMeta;
use rime_engine::tarinc::{CreateOptions, Scan};
use rime_engine::{Error, Result};

use super::agent::AgentArgs;
use super::agent_opts::{level_rules, Job};

pub fn run(job: &Job, a: &AgentArgs) -> Result<ExitCode> {
    let path = a
        .path_to_backup
        .clone()
        .ok_or_else(|| Error::invalid("--action backup needs --path-to-backup (-F)"))?;
    let md = std::fs::metadata(&path)
        .map_err(|e| Error::io(format!("--path-to-backup {}", path.display()), e))?;
    let path = resolve_path(&path, md.is_dir())?;
    if a.mode == "mysql" && a.mysql_conf.is_none() {
        return Err(Error::invalid("--mode mysql needs --mysql-conf"));
    }
    if a.mode == "mongo" {
        rime_engine::source::mongo::require_primary(&a.mongo_uri)?;
    }
    if a.engine == "rime" {
        return rime_engine_backup(job, a, &path);
    }
    // A single file: archived by its name from its parent directory (Freezer's `tar -C parent
    // name`), so a restore recreates it inside --restore-abs-path.
    let (tree, only) = tar_root(&path, md.is_dir())?;
    let meta = SnapshotMeta {
        hostname: job.hostname.clone(),
        tags: vec![],
        ..SnapshotMeta::new(job.backup_name.clone())
    };
    let rules = level_rules(a);
    let now = chrono::Utc::now().timestamp();
    if job.g.dry_run {
        let level = match job.open(false) {
            Ok(repo) => tarlevel::next_plan(&repo, &meta, &rules, now)?.level,
            Err(e) if e.kind() == rime_engine::ErrorKind::RepositoryNotFound => 0,
            Err(e) => return Err(e),
        };
        job.say(&format!(
            "dry run: would back up {} as level {level} of {}/{}",
            path.display(),
            job.hostname,
            job.backup_name
        ));
        write_metadata(job, a, &path, level, now, None)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Freezer: soft = tar --dereference, hard = --hard-dereference, all = both.
    let deref = a.dereference_symlink.as_deref().unwrap_or("none");
    let create = CreateOptions {
        one_file_system: true,
        exclude: a.exclude.clone(),
        dereference: matches!(deref, "soft" | "all"),
        hard_dereference: matches!(deref, "hard" | "all"),
        only,
    };
    // A live tree is read ahead while the repository opens (key derivation, snapshot list):
    // an incremental level is mostly that walk. A volume snapshot is taken first instead.
    let early_scan = if a.snap.wanted() {
        None
    } else {
        Some(Scan::start(&tree, &create)?)
    };
    let repo = job.open(true)?;
    // The source: the live tree, or the same tree in a snapshot of its volume.
    let mut live = None;
    let mut lock = None;
    let mut root = tree.clone();
    let mut annotations = vec![("freezer.mode".to_string(), a.mode.clone())];
    if a.snap.wanted() {
        let mysql = (a.mode == "mysql")
            .then_some(a.mysql_conf.as_deref())
            .flatten();
        let t = super::backup_snapshot::take(&a.snap, Some(&path), false, mysql, job.g.quiet)?;
        root = t.snap.translate(&tree)?;
        for tag in &t.binlog_tags {
            if let Some((k, v)) = tag.split_once('=') {
                annotations.push((k.to_string(), v.to_string()));
            }
        }
        live = Some(t.snap);
    } else if a.mode == "mysql" {
        // Without a snapshot the tables stay locked for the whole archive, as Freezer does.
        let conf =
            rime_engine::source::mysql::MysqlConf::load(a.mysql_conf.as_deref().expect("checked"))?;
        let defaults = conf.defaults_file()?;
        lock = Some(rime_engine::source::mysql::ReadLock::acquire(&defaults)?);
    }
    let opts = TarBackupOptions {
        meta,
        root,
        rules,
        create,
        compression: a.compression.clone(),
        encrypted: job.password.is_some(),
        annotations,
        now,
    };
    let progress = crate::progress::TermProgress::new(job.g.quiet || job.g.json, "backing up");
    let r = match early_scan {
        Some(scan) => tarlevel::backup_scanned(&repo, &opts, scan, &progress),
        None => tarlevel::backup(&repo, &opts, &progress),
    };
    drop(progress);
    if let Some(l) = lock {
        l.release()?;
    }
    if let Some(s) = live {
        s.release()?;
    }
    let r = r?;
    for w in &r.tar.warnings {
        job.warn(&format!("rime: warning: {w}"));
    }
    let s = &r.backup.snapshot;
    job.say(&format!(
        "backup {} of {}/{}: level {} ({}), {} files archived ({} unchanged), {} of archive, {} added to the repository",
        r.backup.id.short(),
        job.hostname,
        job.backup_name,
        r.plan.level,
        r.plan.reason,
        r.tar.files_dumped,
        r.tar.files_unchanged,
        crate::output::bytes(s.stats.bytes_total),
        crate::output::bytes(s.stats.bytes_added),
    ));
    write_metadata(
        job,
        a,
        &path,
        r.plan.level,
        s.time.secs,
        Some(&r.backup.id.to_hex()),
    )?;
    // Exit 3 as `rime backup` does: the backup is saved and usable, but incomplete, and the
    // scheduler must not record it as a success.
    if r.tar.unreadable > 0 {
        job.warn(&format!(
            "rime: {} path(s) could not be read and are missing from backup {}",
            r.tar.unreadable,
            r.backup.id.short()
        ));
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--path-to-backup` made absolute. Freezer changes into a directory, so a symlink to a
/// directory is followed (and the whole path resolved). A file is archived as
/// `tar -C dirname basename`: only its parent is resolved, so a symlink keeps its own name and
/// stays a link unless `--dereference-symlink` says to store what it points to.
fn resolve_path(given: &Path, is_dir: bool) -> Result<PathBuf> {
    let err = |e| Error::io(format!("--path-to-backup {}", given.display()), e);
    if is_dir {
        return std::fs::canonicalize(given).map_err(err);
    }
    let Some(name) = given.file_name() else {
        return std::fs::canonicalize(given).map_err(err);
    };
    let parent = match given.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok(std::fs::canonicalize(parent).map_err(err)?.join(name))
}

/// The directory the tar engine archives for `--path-to-backup`, and for a single file its
/// name there (the only member archived).
fn tar_root(path: &Path, is_dir: bool) -> Result<(PathBuf, Option<Vec<u8>>)> {
    use std::os::unix::ffi::OsStrExt;
    if is_dir {
        return Ok((path.to_path_buf(), None));
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent.to_path_buf(), Some(name.as_bytes().to_vec()))),
        _ => Err(Error::invalid(format!(
            "--path-to-backup {}: no parent directory to archive it from",
            path.display()
        ))),
    }
}

/// `--engine rime`: the repository's own file snapshots, through `rime backup`.
fn rime_engine_backup(job: &Job, a: &AgentArgs, path: &Path) -> Result<ExitCode> {
    rime_engine_dereference(a.dereference_symlink.as_deref())?;
    if !job.g.dry_run {
        job.open(true)?;
    }
    let mut args: Vec<String> = vec!["rime".into(), "backup".into()];
    args.extend(["--host".into(), job.hostname.clone()]);
    args.extend(["--name".into(), job.backup_name.clone()]);
    if rime_engine_dereference(a.dereference_symlink.as_deref())? {
        args.push("--dereference".into());
    }
    if a.mode == "mongo" {
        args.extend([
            "--mode".into(),
            "mongo".into(),
            "--mongo-uri".into(),
            a.mongo_uri.clone(),
        ]);
    }
    args.push(path.display().to_string());
    let Ok(parsed) = crate::Cli::try_parse_from(&args) else {
        return Err(Error::invalid(format!(
            "internal: cannot build the backup command {args:?}"
        )));
    };
    let crate::Command::Backup(mut b) = parsed.command else {
        unreachable!("parsed a backup command")
    };
    b.snap = a.snap.clone();
    // Freezer's --exclude is GNU tar's, whichever engine runs: the tar engine's matcher.
    b.gnu_tar_excludes = a.exclude.clone();
    b.source.mysql_conf = (a.mode == "mysql").then(|| a.mysql_conf.clone()).flatten();
    let mut g = job.g.clone();
    g.repo = job.storages.iter().map(|s| s.url.clone()).collect();
    g.no_password = job.password.is_none();
    let pwfile = job_password_file(job)?;
    g.password_file = pwfile.as_ref().map(|t| t.path().to_path_buf());
    let code = super::backup::run(&g, b)?;
    write_metadata(job, a, path, 0, chrono::Utc::now().timestamp(), None)?;
    Ok(code)
}

/// Whether `--engine rime` follows symbolic links (`rime backup --dereference`) for a
/// `--dereference-symlink` value. rime's snapshots always record hard links as links and
/// restore them as links, so `hard` and `all` (Freezer: `tar --hard-dereference`, every name a
/// full file) cannot be honoured: refused before anything is written rather than quietly
/// giving a different tree.
fn rime_engine_dereference(kind: Option<&str>) -> Result<bool> {
    match kind.unwrap_or("none") {
        "none" => Ok(false),
        "soft" => Ok(true),
        other => Err(Error::invalid(format!(
            "--dereference-symlink {other} is not supported by rime with --engine rime: its snapshots keep hard links as links (the tar engine, the default, stores each as a full file)"
        ))),
    }
}

/// The job's password in a private temporary file, for commands that read it from a file.
pub(super) fn job_password_file(job: &Job) -> Result<Option<tempfile_lite::TempFile>> {
    match &job.password {
        None => Ok(None),
        Some(p) => tempfile_lite::TempFile::with(p).map(Some),
    }
}

/// A private temporary file removed on drop (no extra dependency for one file).
mod tempfile_lite {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    use std::path::{Path, PathBuf};

    pub struct TempFile(PathBuf);

    impl TempFile {
        pub fn with(content: &[u8]) -> rime_engine::Result<TempFile> {
            let p = std::env::temp_dir().join(format!(
                "rime-agent-{}-{}",
                std::process::id(),
                rand_suffix()
            ));
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&p)
                .map_err(|e| rime_engine::Error::io("cannot write a temporary password file", e))?;
            f.write_all(content)
                .map_err(|e| rime_engine::Error::io("cannot write a temporary password file", e))?;
            Ok(TempFile(p))
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn rand_suffix() -> String {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        format!("{:x}", t.as_nanos())
    }
}

/// `--metadata-out FILE|-`: the document Freezer's scheduler reads after a backup, with
/// Freezer's field names and the real level.
fn write_metadata(
    job: &Job,
    a: &AgentArgs,
    path: &Path,
    level: u32,
    time: i64,
    snapshot: Option<&str>,
) -> Result<()> {
    let Some(out) = &a.metadata_out else {
        return Ok(());
    };
    let opt_num = |v: Option<u32>| v.map_or(serde_json::Value::from(""), serde_json::Value::from);
    let doc = serde_json::json!({
        "action": "backup",
        "always_level": opt_num(a.always_level),
        "backup_media": "fs",
        "backup_name": job.backup_name,
        "client_os": std::env::consts::OS,
        "client_version": env!("CARGO_PKG_VERSION"),
        "compression": a.compression,
        "consistency_checksum": "",
        "container": a.container,
        "container_segments": "",
        "curr_backup_level": level,
        "dry_run": if job.g.dry_run { serde_json::Value::from(true) } else { serde_json::Value::from("") },
        "encryption": job.password.is_some(),
        "engine_name": a.engine,
        "fs_real_path": path.display().to_string(),
        "hostname": job.hostname,
        "log_file": a.log_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        "max_level": opt_num(a.max_level),
        "mode": a.mode,
        "path_to_backup": path.display().to_string(),
        "restart_always_level": a.restart_always_level.map_or(serde_json::Value::from(""), serde_json::Value::from),
        "rime_snapshot": snapshot.unwrap_or(""),
        "ssh_host": a.ssh_host.clone().unwrap_or_default(),
        "ssh_port": a.ssh_port,
        "ssh_username": a.ssh_username.clone().unwrap_or_default(),
        "storage": a.storage,
        "time_stamp": time,
        "vol_snap_path": path.display().to_string(),
    });
    let text = serde_json::to_string(&doc).expect("JSON values serialize");
    if out == "-" {
        println!("{text}");
        return Ok(());
    }
    let p = PathBuf::from(out);
    std::fs::write(&p, text + "\n")
        .map_err(|e| Error::io(format!("--metadata-out {}", p.display()), e))
}
