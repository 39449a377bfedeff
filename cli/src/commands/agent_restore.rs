//! `rime agent --action restore` (replay the tar levels up to `--restore-from-date` into
//! `--restore-abs-path`) and `--action info` (list the restore points: Freezer cannot).
//! Both also see the backups Freezer itself wrote in the same container ([`super::agent_legacy`]).

use std::path::Path;

use clap::Parser;
use std::process::ExitCode;

use rime_engine::format::snapshot::SourceKind;
use rime_engine::ops::tarlevel;
use rime_engine::tarinc::ApplyOptions;
use rime_engine::{Error, ErrorKind, Result};

use super::agent::AgentArgs;
use super::agent_opts::{parse_date, Job};

pub fn restore(job: &Job, a: &AgentArgs) -> Result<ExitCode> {
    let date = a
        .restore_from_date
        .as_deref()
        .map(|d| parse_date("--restore-from-date", d))
        .transpose()?;
    // Messages print times in UTC: name the date as the user gave it too (local time when it
    // has no offset), so that "no backup at or before" is not read as a different date.
    restore_at(job, a, date).map_err(|e| match &a.restore_from_date {
        Some(given) if e.kind() == ErrorKind::NotFound => {
            e.within(format!("--restore-from-date {given}"))
        }
        _ => e,
    })
}

fn restore_at(job: &Job, a: &AgentArgs, date: Option<i64>) -> Result<ExitCode> {
    let target = a
        .restore_abs_path
        .clone()
        .ok_or_else(|| Error::invalid("--action restore needs --restore-abs-path"))?;
    if !a.overwrite && !is_empty_dir(&target)? {
        return Err(Error::invalid(format!(
            "--restore-abs-path {} is not empty: use --overwrite to restore into it",
            target.display()
        )));
    }
    if a.engine == "rime" {
        let found = match job.open(false) {
            Ok(repo) => newest_rime_snapshot(&repo, job, date)?,
            Err(e) if e.kind() == ErrorKind::RepositoryNotFound => None,
            Err(e) => return Err(e),
        };
        let Some((id, _)) = found else {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "no rime snapshot of host {:?} named {:?}{}",
                    job.hostname,
                    job.backup_name,
                    date.map(|d| format!(" at or before {}", tarlevel::history::fmt_time(d)))
                        .unwrap_or_default()
                ),
            ));
        };
        return rime_engine_restore(job, a, &target, id);
    }
    // The password is checked here, before anything is written. A container may hold tar
    // chains, snapshots of rime's own engine (a job that moved to --engine rime, restored by a
    // job that does not say so) and Freezer's own backups: the newest restore point at or
    // before the date wins, whoever wrote it.
    let opened = job.open(false);
    let snapshot = match &opened {
        Ok(repo) => newest_rime_snapshot(repo, job, date)?,
        Err(_) => None,
    };
    let rime = opened.and_then(|repo| {
        tarlevel::chain_at(&repo, &job.hostname, &job.backup_name, date).map(|c| (repo, c))
    });
    if let Some((id, t)) = snapshot {
        let chain_end = match &rime {
            Ok((_, c)) => c.last().map(|(_, s)| (s.time.secs, s.time.nanos)),
            Err(_) => None,
        };
        let freezer_newer = matches!(
            super::agent_legacy::newest_at(job, date),
            Ok(super::agent_legacy::Lookup::Found(_, b)) if b.timestamp > t.0
        );
        if chain_end.is_none_or(|end| t > end) && !freezer_newer {
            return rime_engine_restore(job, a, &target, id);
        }
    }
    let legacy = legacy_candidate(job, date, &rime)?;
    if let Some((at, newest)) = legacy {
        if job.g.dry_run {
            let chain = super::agent_legacy::verify(job, at, date)?;
            job.say(&format!(
                "dry run: would restore into {} the Freezer backup {} (level {}), replaying \
                 {} level(s), each read through to its end: objects present, key right, \
                 archives whole",
                target.display(),
                newest.dir,
                newest.level,
                chain.len()
            ));
            return Ok(ExitCode::SUCCESS);
        }
        let r = super::agent_legacy::restore(job, at, date, &target, a.overwrite)?;
        for w in &r.warnings {
            job.say(&format!("rime: warning: {w}"));
        }
        job.say(&format!(
            "restored {}/{} into {} from Freezer's own backups: {} ({} members, {} deleted)",
            job.hostname,
            job.backup_name,
            target.display(),
            r.chain
                .iter()
                .map(|b| format!(
                    "level {} ({})",
                    b.level,
                    tarlevel::history::fmt_time(b.timestamp)
                ))
                .collect::<Vec<_>>()
                .join(", "),
            r.members,
            r.deleted
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let (repo, chain) = rime?;
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

/// The Freezer backup to restore instead of the rime chain `rime` found, if any: the newest
/// Freezer backup at or before the date when it is newer than the chain's end, or when the
/// repository has no repository or no matching backup. In that last case, an error explains
/// why neither side has one: Freezer's reason (the date of its first backup, the names it
/// has) rather than "no repository". A container that cannot be listed is an error then; beside
/// a rime chain, a warning.
fn legacy_candidate(
    job: &Job,
    date: Option<i64>,
    rime: &Result<(rime_engine::repo::Repository, RimeChain)>,
) -> Result<Option<(usize, rime_engine::freezer::legacy::LegacyBackup)>> {
    use super::agent_legacy::Lookup;
    let rime_err = match rime {
        Ok(_) => None,
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::RepositoryNotFound | ErrorKind::NotFound
            ) =>
        {
            Some(e)
        }
        // A wrong password or an unreadable repository: that is the error.
        Err(_) => return Ok(None),
    };
    let lookup = super::agent_legacy::newest_at(job, date);
    let Some(re) = rime_err else {
        let rime_end = rime
            .as_ref()
            .ok()
            .and_then(|(_, c)| c.last().map(|(_, s)| s.time.secs));
        return Ok(match lookup {
            Ok(Lookup::Found(at, b)) if rime_end.is_none_or(|t| b.timestamp > t) => Some((at, b)),
            Err(e) => {
                job.say(&format!(
                    "rime: warning: Freezer's own backups could not be listed: {e}"
                ));
                None
            }
            _ => None,
        });
    };
    let no_repo = re.kind() == ErrorKind::RepositoryNotFound;
    match lookup {
        Ok(Lookup::Found(at, b)) => Ok(Some((at, b))),
        Ok(Lookup::Empty) => Ok(None),
        Ok(Lookup::Unmatched(fe)) | Err(fe) if no_repo => Err(fe),
        Ok(Lookup::Unmatched(fe)) => Err(Error::new(
            ErrorKind::NotFound,
            format!("{re}; in Freezer's own backups: {fe}"),
        )),
        Err(le) => Err(Error::new(
            le.kind(),
            format!("{re}; Freezer's own backups could not be listed: {le}"),
        )),
    }
}

/// A tar-level chain of the repository, level 0 first.
type RimeChain = Vec<(
    rime_engine::id::SnapshotId,
    rime_engine::format::snapshot::Snapshot,
)>;

fn is_empty_dir(p: &Path) -> Result<bool> {
    match std::fs::read_dir(p) {
        Ok(mut d) => Ok(d.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io(format!("--restore-abs-path {}", p.display()), e)),
    }
}

/// One restore point, from the rime repository or from Freezer's own backups.
struct Row {
    time: i64,
    id: String,
    host: String,
    name: String,
    level: Option<u32>,
    kind: String,
    size: u64,
    added: Option<u64>,
    chain: Vec<String>,
    path: String,
}

/// The restore points: every backup of the repository and every backup Freezer wrote in the
/// same container (of `--hostname` / `--backup-name` when given), oldest first, with host,
/// name, level, time and size.
pub fn info(job: &Job, a: &AgentArgs) -> Result<ExitCode> {
    let wanted = |host: &str, name: &str| {
        a.hostname.as_ref().is_none_or(|h| h == host)
            && a.backup_name.as_ref().is_none_or(|n| n == name)
    };
    let mut rows = vec![];
    let repo_err = match job.open(false) {
        Ok(repo) => {
            for (id, s) in repo.list_snapshots()? {
                let Ok(s) = s else { continue };
                if !wanted(&s.hostname, &s.name) {
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
                rows.push(Row {
                    time: s.time.secs,
                    id: id.to_hex(),
                    host: s.hostname.clone(),
                    name: s.name.clone(),
                    level,
                    kind: s.source.label().to_string(),
                    size,
                    added: Some(s.stats.bytes_added),
                    chain,
                    path: s.paths.join(", "),
                });
            }
            None
        }
        Err(e) if e.kind() == ErrorKind::RepositoryNotFound => Some(e),
        Err(e) => return Err(e),
    };
    match super::agent_legacy::list(job) {
        Ok(legacy) => {
            for (_, mut b) in legacy {
                // On the `<host>_<name>` directory: either may contain `_`.
                if !b.is_of(a.hostname.as_deref(), a.backup_name.as_deref()) {
                    continue;
                }
                b.split_as(Some(&job.hostname), a.backup_name.as_deref());
                rows.push(Row {
                    time: b.timestamp,
                    id: format!("freezer:{}", b.dir),
                    host: b.host,
                    name: b.name,
                    level: Some(b.level),
                    kind: "freezer-tar".into(),
                    size: b.size,
                    added: None,
                    chain: vec![],
                    path: String::new(),
                });
            }
        }
        // Without a rime repository, Freezer's backups are all there is to list.
        Err(e) if repo_err.is_some() => return Err(e),
        Err(_) => {}
    }
    // Nothing to restore is an answer ("0 restore points"), not a missing repository: the
    // container may hold only Freezer's backups, of other hosts or names.
    if rows.is_empty() && repo_err.is_some() {
        job.say(&format!(
            "rime: no rime repository at {} yet, and no Freezer backup{}",
            job.location(),
            if a.hostname.is_some() || a.backup_name.is_some() {
                " of this host and name"
            } else {
                ""
            }
        ));
    }
    rows.sort_by(|x, y| (x.time, &x.id).cmp(&(y.time, &y.id)));
    if job.g.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id, "hostname": r.host, "backup_name": r.name,
                    "level": r.level, "time": tarlevel::history::fmt_time(r.time), "time_stamp": r.time,
                    "size": r.size, "added": r.added, "kind": r.kind,
                    "chain": r.chain, "path": r.path,
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
    for r in &rows {
        let id = if r.kind == "freezer-tar" {
            "freezer".to_string()
        } else {
            r.id.chars().take(8).collect()
        };
        println!(
            "{:<10} {:<20} {:<24} {:>5} {:<20} {:>10} {:>10}",
            id,
            r.host,
            r.name,
            r.level.map_or_else(|| r.kind.clone(), |l| l.to_string()),
            tarlevel::history::fmt_time(r.time),
            crate::output::bytes(r.size),
            r.added
                .map_or_else(|| "-".to_string(), crate::output::bytes),
        );
    }
    println!("{} restore point(s)", rows.len());
    Ok(ExitCode::SUCCESS)
}

/// The newest snapshot of rime's own engine (not a tar level) of this host and name at or
/// before `date`, with its time (seconds, nanoseconds).
fn newest_rime_snapshot(
    repo: &rime_engine::repo::Repository,
    job: &Job,
    date: Option<i64>,
) -> Result<Option<(rime_engine::id::SnapshotId, (i64, u32))>> {
    Ok(repo
        .list_snapshots()?
        .into_iter()
        .filter_map(|(id, s)| s.ok().map(|s| (id, s)))
        .filter(|(_, s)| {
            s.hostname == job.hostname
                && s.name == job.backup_name
                && !matches!(s.source, SourceKind::TarLevel(_))
                && date.is_none_or(|d| s.time.secs <= d)
        })
        .max_by_key(|(id, s)| (s.time.secs, s.time.nanos, *id))
        .map(|(id, s)| (id, (s.time.secs, s.time.nanos))))
}

/// Snapshot `id` of rime's own engine, restored by `rime restore` into the target (the
/// contents of the backed-up path, as Freezer does).
fn rime_engine_restore(
    job: &Job,
    a: &AgentArgs,
    target: &Path,
    id: rime_engine::id::SnapshotId,
) -> Result<ExitCode> {
    let mut args: Vec<String> = vec!["rime".into(), "restore".into(), id.to_hex()];
    args.extend(["--target".into(), target.display().to_string()]);
    if a.overwrite {
        args.push("--overwrite".into());
    }
    let Ok(parsed) = crate::Cli::try_parse_from(&args) else {
        return Err(Error::invalid(format!(
            "internal: cannot build the restore command {args:?}"
        )));
    };
    let crate::Command::Restore(r) = parsed.command else {
        unreachable!("parsed a restore command")
    };
    if job.g.dry_run {
        job.say(&format!(
            "dry run: would restore into {} the rime snapshot {} of {}/{}",
            target.display(),
            id.short(),
            job.hostname,
            job.backup_name
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let mut g = job.g.clone();
    g.repo = job.storages.iter().map(|s| s.url.clone()).collect();
    g.no_password = job.password.is_none();
    let pwfile = super::agent_backup::job_password_file(job)?;
    g.password_file = pwfile.as_ref().map(|t| t.path().to_path_buf());
    super::restore::run(&g, r)
}
