//! `rime restore` of volume and stream snapshots: onto an image file or a block device, or a
//! MySQL logical dump into a server.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};

use rime_engine::format::snapshot::{Snapshot, SourceKind};
use rime_engine::id::SnapshotId;
use rime_engine::ops::volume::restore::{restore_volume, VolumeRestoreOptions};
use rime_engine::repo::Repository;
use rime_engine::source::mysql::{client_command, MysqlConf};
use rime_engine::{Error, ErrorKind, Result};

use crate::output::bytes;
use crate::GlobalOpts;

#[allow(clippy::too_many_arguments)]
pub fn run(
    g: &GlobalOpts,
    repo: &Repository,
    id: &SnapshotId,
    snap: &Snapshot,
    target: &Option<PathBuf>,
    overwrite: bool,
    verify: bool,
    mysql_conf: Option<&Path>,
) -> Result<ExitCode> {
    if let Some(conf) = mysql_conf {
        if target.is_some() {
            return Err(Error::invalid("give either --target or --mysql-conf, not both"));
        }
        return restore_mysql(g, repo, id, snap, conf);
    }
    let target = target.clone().expect("clap requires --target");
    let opts = VolumeRestoreOptions {
        target: target.clone(),
        overwrite,
        verify,
    };
    let progress = crate::progress::TermProgress::new(g.quiet || g.json, "restoring");
    let started = std::time::Instant::now();
    let r = restore_volume(repo, snap, &opts, &progress);
    progress.finish();
    let st = r?;
    let secs = started.elapsed().as_secs_f64();
    if g.json {
        super::print_json(&serde_json::json!({
            "snapshot": id.to_hex(), "target": target, "size": st.size,
            "block_device": st.block_device, "bytes_written": st.bytes_written,
            "zeros_written": st.zeros_written, "blobs_verified": st.blobs,
            "verified_bytes": if verify { Some(st.verified) } else { None },
            "seconds": secs,
        }));
    } else if !g.quiet {
        println!(
            "restored {} snapshot {} ({}) to {}: {} ({} of chunk data, {} chunks verified{}), {:.2} s",
            snap.source.label(),
            id.short(),
            snap.paths.join(" "),
            target.display(),
            bytes(st.size),
            bytes(st.bytes_written),
            st.blobs,
            if verify {
                format!("; target re-read and verified: {}", bytes(st.verified))
            } else {
                String::new()
            },
            secs
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn restore_mysql(
    g: &GlobalOpts,
    repo: &Repository,
    id: &SnapshotId,
    snap: &Snapshot,
    conf: &Path,
) -> Result<ExitCode> {
    let is_dump = matches!(&snap.source, SourceKind::Stream(s)
        if s.annotations.iter().any(|(k, v)| k == "mysql.dump" && v == "logical"));
    if !is_dump {
        return Err(Error::invalid(format!(
            "snapshot {} is not a MySQL logical backup",
            id.short()
        )));
    }
    let conf = MysqlConf::load(conf)?;
    let defaults = conf.defaults_file()?;
    let mut child = client_command(&defaults)?
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("cannot run the MySQL client", e))?;
    let mut stdin = child.stdin.take().expect("piped");
    let written = rime_engine::ops::volume::export::export(repo, snap, &mut stdin);
    drop(stdin);
    let st = child
        .wait()
        .map_err(|e| Error::io("waiting for the MySQL client", e))?;
    let written = written?;
    if !st.success() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("the MySQL client failed ({st}) while loading snapshot {}", id.short()),
        ));
    }
    if !g.quiet {
        println!(
            "loaded MySQL dump {} ({}) into the server",
            id.short(),
            bytes(written)
        );
    }
    Ok(ExitCode::SUCCESS)
}
