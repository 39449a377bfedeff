//! `rime agent --action restore` (replay the tar levels up to `--restore-from-date` into
//! `--restore-abs-path`) and `--action info` (list the restore points: Freezer cannot).
//!
//! TODO(coordinator): both actions must also consult legacy Freezer backups (the
//! `metadata/tar/<host>_<name>/...` trees beside `<container>/rime`) through
//! `rime_engine::freezer::legacy`: open the container itself (each `Job::storages` URL without
//! its `/rime` suffix; `local:` before a plain path) with `legacy::open_container`, then
//! `restore` uses `legacy::restore(c, host, name, date, job.password, target, overwrite)` when
//! the repository has no backup at or before the date or the newest legacy backup at or before
//! it is newer than the repository's, and `info` appends `legacy::list(c)` rows. The hook points
//! are marked `LEGACY HOOK`.

use std::path::Path;
use std::process::ExitCode;

use rime_engine::format::snapshot::SourceKind;
use rime_engine::ops::tarlevel;
use rime_engine::tarinc::ApplyOptions;
use rime_engine::{Error, ErrorKind, Result};

use super::agent::AgentArgs;
use super::agent_opts::{parse_date, Job};

pub fn restore(job: &Job, a: &AgentArgs) -> Result<ExitCode> {
    let target = a
        .restore_abs_path
        .clone()
        .ok_or_else(|| Error::invalid("--action restore needs --restore-abs-path"))?;
    let date = a
        .restore_from_date
        .as_deref()
        .map(|d| parse_date("--restore-from-date", d))
        .transpose()?;
    if !a.overwrite && !is_empty_dir(&target)? {
        return Err(Error::invalid(format!(
            "--restore-abs-path {} is not empty: use --overwrite to restore into it",
            target.display()
        )));
    }
    // The password is checked here, before anything is written.
    let repo = job.open(false)?;
    // LEGACY HOOK: when this finds nothing (NotFound), look for a legacy Freezer chain of
    // host/name at or before `date` with rime_engine::freezer::legacy and restore that.
    let chain = tarlevel::chain_at(&repo, &job.hostname, &job.backup_name, date)?;
    let levels: Vec<String> = chain
        .iter()
        .map(|(id, s)| {
            format!(
                "level {} {} ({})",
                tarlevel::history::source(s).map_or(0, |t| t.level),
                id.short(),
                tarlevel::history::fmt_time(s.time.secs)
            )
        })
        .collect();
    if job.g.dry_run {
        job.say(&format!(
            "dry run: would restore into {}: {}",
            target.display(),
            levels.join(", ")
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let applied = tarlevel::restore_chain(&repo, &chain, &target, &ApplyOptions::default())?;
    for l in &applied {
        for w in &l.stats.warnings {
            job.say(&format!("rime: warning: level {}: {w}", l.level));
        }
    }
    job.say(&format!(
        "restored {}/{} into {}: {} ({} members, {} deleted)",
        job.hostname,
        job.backup_name,
        target.display(),
        levels.join(", "),
        applied.iter().map(|l| l.stats.members).sum::<u64>(),
        applied.iter().map(|l| l.stats.deleted).sum::<u64>(),
    ));
    Ok(ExitCode::SUCCESS)
}

fn is_empty_dir(p: &Path) -> Result<bool> {
    match std::fs::read_dir(p) {
        Ok(mut d) => Ok(d.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io(format!("--restore-abs-path {}", p.display()), e)),
    }
}

/// The restore points: every backup of the repository (of `--hostname` / `--backup-name` when
/// given), oldest first, with host, name, level, time and size.
pub fn info(job: &Job, a: &AgentArgs) -> Result<ExitCode> {
    let repo = match job.open(false) {
        Ok(r) => r,
        Err(e) if e.kind() == ErrorKind::RepositoryNotFound => {
            // LEGACY HOOK: legacy Freezer backups may exist without a rime repository.
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let mut rows = vec![];
    for (id, s) in repo.list_snapshots()? {
        let Ok(s) = s else { continue };
        if a.hostname.as_ref().is_some_and(|h| *h != s.hostname)
            || a.backup_name.as_ref().is_some_and(|n| *n != s.name)
        {
            continue;
        }
        let (level, size, chain) = match &s.source {
            SourceKind::TarLevel(t) => (
                Some(t.level),
                t.tar_size,
                t.chain.iter().map(|c| c.short()).collect::<Vec<_>>(),
            ),
            _ => (None, s.stats.bytes_total, vec![]),
        };
        rows.push((s.time.secs, id, s, level, size, chain));
    }
    // LEGACY HOOK: append legacy Freezer restore points (engine "freezer-tar") here.
    rows.sort_by_key(|r| (r.0, r.1));
    if job.g.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(t, id, s, level, size, chain)| {
                serde_json::json!({
                    "id": id.to_hex(), "hostname": s.hostname, "backup_name": s.name,
                    "level": level, "time": tarlevel::history::fmt_time(*t), "time_stamp": t,
                    "size": size, "added": s.stats.bytes_added, "kind": s.source.label(),
                    "chain": chain, "path": s.paths.join(", "),
                })
            })
            .collect();
        super::print_json(&serde_json::Value::from(v));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<10} {:<20} {:<24} {:>5} {:<20} {:>10} {:>10}",
        "ID", "HOST", "BACKUP NAME", "LEVEL", "TIME", "SIZE", "ADDED"
    );
    for (t, id, s, level, size, _) in &rows {
        println!(
            "{:<10} {:<20} {:<24} {:>5} {:<20} {:>10} {:>10}",
            id.short(),
            s.hostname,
            s.name,
            level.map_or_else(|| s.source.label().to_string(), |l| l.to_string()),
            tarlevel::history::fmt_time(*t),
            crate::output::bytes(*size),
            crate::output::bytes(s.stats.bytes_added),
        );
    }
    println!("{} restore point(s)", rows.len());
    Ok(ExitCode::SUCCESS)
}
