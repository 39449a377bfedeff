//! `rime backup` of sources other than file trees: volumes (block devices and image files)
//! and streams (standard input or a command's output).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use rime_engine::format::snapshot::ChunkerKind;
use rime_engine::ops::volume::backup::{backup_volume, VolumeBackupOptions, DEFAULT_CHUNK_SIZE};
use rime_engine::ops::volume::stream::{backup_command, backup_stream, StreamBackupOptions};
use rime_engine::{Error, Result};

use super::backup::BackupArgs;
use crate::GlobalOpts;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ChunkerArg {
    /// Fixed-size chunks (--chunk-size): block devices and file system images
    Fixed,
    /// Content-defined chunks: images whose data shifts (archives, dumps)
    Fastcdc,
}

#[derive(Args, Debug, Clone, Default)]
pub struct SourceArgs {
    /// Back up a block device or a raw image file as a volume
    #[arg(long, value_name = "DEVICE_OR_IMAGE")]
    pub volume: Option<PathBuf>,
    /// Volume chunk size: a power of two from 64K to 16M
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_size)]
    pub chunk_size: Option<u64>,
    /// How a volume is cut into chunks
    #[arg(long, value_enum, value_name = "KIND")]
    pub chunker: Option<ChunkerArg>,
    /// Back up standard input as a stream (needs --name)
    #[arg(long)]
    pub stdin: bool,
    /// Back up the standard output of a shell command (needs --name); the backup fails if the
    /// command fails
    #[arg(long, value_name = "COMMAND")]
    pub stdin_from_command: Option<String>,
    /// MySQL/MariaDB: INI file with host, port, user, password or socket
    #[arg(long, value_name = "FILE")]
    pub mysql_conf: Option<PathBuf>,
}

impl SourceArgs {
    pub fn is_special(&self) -> bool {
        self.volume.is_some()
            || self.stdin
            || self.stdin_from_command.is_some()
            || self.mysql_conf.is_some()
    }

    /// Whether PATH arguments make sense with this source.
    pub fn takes_paths(&self) -> bool {
        false
    }

    fn chunking(&self) -> Result<(ChunkerKind, u32)> {
        let kind = match self.chunker {
            None | Some(ChunkerArg::Fixed) => ChunkerKind::Fixed,
            Some(ChunkerArg::Fastcdc) => ChunkerKind::FastCdc,
        };
        let size = match self.chunk_size {
            None => DEFAULT_CHUNK_SIZE,
            Some(s) => u32::try_from(s)
                .map_err(|_| Error::invalid("--chunk-size is at most 16M"))?,
        };
        if self.chunk_size.is_some() && kind == ChunkerKind::FastCdc {
            return Err(Error::invalid(
                "--chunk-size applies to fixed-size chunks, not --chunker fastcdc",
            ));
        }
        rime_engine::ops::volume::check_chunk_size(kind, size)?;
        Ok((kind, size))
    }
}

pub fn run(g: &GlobalOpts, a: &BackupArgs) -> Result<ExitCode> {
    let s = &a.source;
    let chosen = [s.volume.is_some(), s.stdin, s.stdin_from_command.is_some(), s.mysql_conf.is_some()]
        .iter()
        .filter(|&&x| x)
        .count();
    if chosen > 1 {
        return Err(Error::invalid(
            "choose one source: --volume, --stdin, --stdin-from-command or --mysql-conf",
        ));
    }
    if s.volume.is_none() && (s.chunk_size.is_some() || s.chunker.is_some()) {
        return Err(Error::invalid("--chunk-size and --chunker apply to --volume"));
    }
    let (kind, size) = s.chunking()?;
    let repo = super::open(g)?;
    let meta = a.snapshot_meta(&repo)?;
    let progress = crate::progress::TermProgress::new(g.quiet || g.json, "backing up");
    let r = if let Some(v) = &s.volume {
        let mut opts = VolumeBackupOptions {
            source: v.clone(),
            meta,
            chunker: kind,
            chunk_size: size,
            annotations: vec![],
            record_path: None,
            commit_check: None,
        };
        // An LVM snapshot of the volume, read as a device (the origin is recorded).
        let mut live = None;
        if a.snap.wanted() {
            let mut sa = a.snap.clone();
            if sa.lvm_srcvol.is_none() && sa.lvm_auto_snap.is_none() {
                sa.lvm_srcvol = Some(v.to_string_lossy().into_owned());
            }
            let t = super::backup_snapshot::take(&sa, None, true, None, g.quiet)?;
            let snap = std::sync::Arc::new(t.snap);
            opts.source = snap.device.clone().expect("LVM snapshots have a device");
            opts.record_path = Some(v.to_string_lossy().into_owned());
            if opts.meta.name.is_empty() {
                opts.meta.name = v.to_string_lossy().into_owned();
            }
            opts.annotations = snap.annotations.clone();
            let c = snap.clone();
            opts.commit_check = Some(rime_engine::ops::CommitCheck(std::sync::Arc::new(
                move || c.validate(),
            )));
            live = Some(snap);
        }
        let r = backup_volume(&repo, &opts, &progress);
        drop(opts);
        let released = match live.map(std::sync::Arc::try_unwrap) {
            Some(Ok(snap)) => snap.release(),
            _ => Ok(()),
        };
        match (r, released) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
            (Ok(r), Ok(())) => Ok(r),
        }
    } else if let Some(conf) = &s.mysql_conf {
        super::backup_mysql::run(&repo, conf, meta, &progress)
    } else {
        let opts = StreamBackupOptions {
            meta,
            command: s.stdin_from_command.clone().unwrap_or_default(),
            annotations: vec![],
        };
        match &s.stdin_from_command {
            Some(cmd) => backup_command(&repo, cmd, &opts, &progress),
            None => {
                let stdin = std::io::stdin();
                let mut lock = stdin.lock();
                backup_stream(&repo, &mut lock, &opts, &progress, &mut || Ok(vec![]))
            }
        }
    };
    progress.finish();
    super::backup::report(g, &r?, false)
}
