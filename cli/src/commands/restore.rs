use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rime_engine::ops::restore::{restore, RestoreOptions};
use rime_engine::ops::select::{resolve, Filter};
use rime_engine::Result;

use crate::output::bytes;
use crate::GlobalOpts;

#[derive(Args)]
pub struct RestoreArgs {
    /// Snapshot: "latest" or an id prefix
    #[arg(default_value = "latest")]
    snapshot: String,
    /// Directory to restore a file tree into (created if missing; must be empty unless
    /// --overwrite), or the image file or block device to restore a volume or stream onto
    #[arg(long, short = 't', required_unless_present = "mysql_conf")]
    target: Option<PathBuf>,
    /// After writing, read the target back and compare it with the snapshot (file trees: every
    /// file, chunk by chunk; volumes: the whole image or device)
    #[arg(long)]
    verify: bool,
    /// Flush the target's file system to disk before reporting success, and fail if the kernel
    /// reports a write-back error (file trees and tar levels; volumes are always flushed)
    #[arg(long)]
    sync: bool,
    /// Write large files through the page cache too. By default files of 32 MiB and more are
    /// written with direct I/O (where the file system allows it), which is faster and leaves
    /// the machine's cache alone
    #[arg(long)]
    buffered: bool,
    /// MySQL/MariaDB logical backups: pipe the dump into the server described by this file
    #[arg(long, value_name = "FILE")]
    mysql_conf: Option<PathBuf>,
    /// Restore only this path of the snapshot and what lies below it (repeatable)
    #[arg(long = "include", short = 'i', value_name = "PATH")]
    include: Vec<String>,
    /// Restore into a non-empty target, replacing files that exist (volumes: write over an
    /// existing image or a device that holds data)
    #[arg(long, alias = "force")]
    overwrite: bool,
    /// The newest snapshot at or before this local time (YYYY-MM-DDThh:mm:ss)
    #[arg(long, value_name = "DATE")]
    from_date: Option<String>,
    /// With --from-date or latest: only snapshots of this host
    #[arg(long)]
    host: Option<String>,
    /// With --from-date or latest: only snapshots with this backup name
    #[arg(long, short = 'N')]
    name: Option<String>,
    /// Do not restore file ownership even when running as root
    #[arg(long)]
    no_ownership: bool,
}

pub fn run(g: &GlobalOpts, a: RestoreArgs) -> Result<ExitCode> {
    let repo = super::open(g)?;
    let before = a
        .from_date
        .as_deref()
        .map(crate::output::parse_date)
        .transpose()?;
    let filter = Filter {
        hostname: a.host.clone(),
        name: a.name.clone(),
        before,
    };
    let spec = if before.is_some() {
        "latest"
    } else {
        a.snapshot.as_str()
    };
    let (id, snap) = resolve(&repo, spec, &filter)?;
    if matches!(
        snap.source,
        rime_engine::format::snapshot::SourceKind::TarLevel(_)
    ) && a.mysql_conf.is_none()
    {
        if a.verify {
            return Err(rime_engine::Error::invalid(
                "--verify is not available for tar levels: each level's stream is verified chunk \
                 by chunk as it is read, and the tree they build has no single snapshot to \
                 compare with",
            ));
        }
        return tar_level(g, &repo, &id, &a);
    }
    if snap.source.has_chunk_map() || a.mysql_conf.is_some() {
        return super::restore_volume::run(
            g,
            &repo,
            &id,
            &snap,
            &a.target,
            a.overwrite,
            a.verify,
            a.mysql_conf.as_deref(),
        );
    }
    let target = a
        .target
        .clone()
        .expect("clap requires --target without --mysql-conf");
    let opts = RestoreOptions {
        target: target.clone(),
        include: a.include.clone(),
        overwrite: a.overwrite,
        ownership: if a.no_ownership { Some(false) } else { None },
        verify: a.verify,
        sync: a.sync,
        buffered: a.buffered,
    };
    let progress = crate::progress::TermProgress::new(g.quiet || g.json, "restoring");
    let started = std::time::Instant::now();
    let r = restore(&repo, &id, &opts, &progress);
    progress.finish();
    let st = r?;
    for w in &st.warnings {
        eprintln!("warning: {w}");
    }
    if g.json {
        super::print_json(&serde_json::json!({
            "snapshot": id.to_hex(), "target": target, "files": st.files, "dirs": st.dirs,
            "others": st.others, "bytes": st.bytes, "blobs_verified": st.blobs, "warnings": st.warnings,
            "bytes_read_back": a.verify.then_some(st.verified_bytes),
        }));
    } else if !g.quiet {
        println!(
            "restored snapshot {} of {} ({}) to {}: {} files, {} dirs, {} written, {} chunks verified, {:.2} s",
            id.short(),
            crate::output::time(snap.time),
            snap.paths.join(" "),
            target.display(),
            st.files,
            st.dirs,
            bytes(st.bytes),
            st.blobs,
            started.elapsed().as_secs_f64()
        );
        if a.verify {
            println!(
                "verified: {} read back, every file equal to the snapshot",
                bytes(st.verified_bytes)
            );
        }
    }
    Ok(if st.warnings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A tar level (written by `rime agent`): its chain, levels 0..N, applied in order.
fn tar_level(
    g: &GlobalOpts,
    repo: &rime_engine::repo::Repository,
    id: &rime_engine::id::SnapshotId,
    a: &RestoreArgs,
) -> Result<ExitCode> {
    use rime_engine::ops::tarlevel;
    let target = a.target.clone().ok_or_else(|| {
        rime_engine::Error::invalid("restoring a tar level needs a target directory")
    })?;
    let nonempty = std::fs::read_dir(&target).is_ok_and(|mut d| d.next().is_some());
    if nonempty && !a.overwrite {
        return Err(rime_engine::Error::invalid(format!(
            "target {} is not empty: use --overwrite to restore into it",
            target.display()
        )));
    }
    let chain = tarlevel::chain_of(repo, id)?;
    let mut opts = rime_engine::tarinc::ApplyOptions::default();
    if a.no_ownership {
        opts.same_owner = false;
    }
    let applied = tarlevel::restore_chain(repo, &chain, &target, &opts)?;
    if a.sync {
        rime_engine::sys::syncfs(&target).map_err(|e| {
            rime_engine::Error::io(
                format!(
                    "flushing the restored files to the disk of {} failed: the restore cannot be \
                     trusted",
                    target.display()
                ),
                e,
            )
        })?;
    }
    if !g.quiet {
        println!(
            "restored tar levels 0..{} of snapshot {} into {}",
            applied.len() - 1,
            id.short(),
            target.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
