//! `rime agent --action admin` (retention, then garbage collection) and `--action exec`
//! (run `--command`, failing when it fails).

use std::process::{Command, ExitCode, Stdio};

use rime_engine::ops::prune::{prune, PruneOptions};
use rime_engine::ops::tarlevel::retain::remove_older;
use rime_engine::{Error, Result};

use super::agent::AgentArgs;
use super::agent_opts::{parse_date, Job};

/// The cutoff in UTC, and as the user gave it when it came from `--remove-from-date` (local
/// time unless it has an offset).
fn cutoff_shown(a: &AgentArgs, cutoff: i64) -> String {
    let utc = rime_engine::ops::tarlevel::history::fmt_time(cutoff);
    match &a.remove_from_date {
        Some(given) => format!("{utc} (--remove-from-date {given})"),
        None => utc,
    }
}

pub fn admin(job: &Job, a: &AgentArgs) -> Result<ExitCode> {
    let now = chrono::Utc::now().timestamp();
    let cutoff = match (&a.remove_older_than, &a.remove_from_date) {
        (Some(days), None) => {
            if !(*days >= 0.0 && days.is_finite()) {
                return Err(Error::invalid(format!(
                    "--remove-older-than {days}: expected a number of days"
                )));
            }
            now - (days * 86400.0) as i64
        }
        (None, Some(d)) => parse_date("--remove-from-date", d)?,
        _ => {
            return Err(Error::invalid(
                "--action admin needs --remove-older-than DAYS or --remove-from-date DATE",
            ))
        }
    };
    let repo = job.open(false);
    // Whatever becomes of rime's own backups, say which of Freezer's were left.
    legacy_left(job, a, cutoff);
    let repo = repo?;
    let removed = remove_older(
        &repo,
        &job.hostname,
        &job.backup_name,
        cutoff,
        job.g.dry_run,
    )?;
    let verb = if job.g.dry_run {
        "would remove"
    } else {
        "removed"
    };
    job.say(&format!(
        "{verb} {} backup(s) of {}/{} taken before {}{}",
        removed.len(),
        job.hostname,
        job.backup_name,
        cutoff_shown(a, cutoff),
        if removed.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                removed
                    .iter()
                    .map(|i| i.short())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    ));
    if !removed.is_empty() {
        let r = prune(
            &repo,
            &PruneOptions {
                dry_run: job.g.dry_run,
                ..PruneOptions::default()
            },
        )?;
        job.say(&format!(
            "garbage collection: {} pack(s) of unused data marked ({}), deleted by a later run",
            r.packs_marked,
            crate::output::bytes(r.bytes_marked)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Freezer's own backups (written by Freezer before the job moved to rime) are read by
/// `info` and `restore` but never deleted by rime: the retention run says which of them are
/// older than the cutoff and stay, so that nobody believes they are gone (on standard error,
/// even with --quiet, and in the log).
fn legacy_left(job: &Job, a: &AgentArgs, cutoff: i64) {
    match super::agent_legacy::taken_before(job, cutoff) {
        Ok(old) if old.is_empty() => {}
        Ok(old) => {
            let mut chains: Vec<String> = vec![];
            for b in &old {
                let chain = format!("data/tar/{}/{}", b.hostname_backup_name, b.level_zero);
                if !chains.contains(&chain) {
                    chains.push(chain);
                }
            }
            job.warn(&format!(
                "rime: note: {} backup(s) written by Freezer itself for {}/{} before {} were \
                 left in place (rime reads Freezer's backups but does not remove them): chains \
                 {} (and their metadata/tar/ twins) in the container",
                old.len(),
                job.hostname,
                job.backup_name,
                cutoff_shown(a, cutoff),
                chains.join(", ")
            ));
        }
        Err(e) => job.warn(&format!(
            "rime: note: could not check for backups written by Freezer itself (which rime \
             does not remove): {e}"
        )),
    }
}

/// Freezer's exec: `--command` split on `|` into a pipeline whose stages are split on spaces
/// (no shell); the job fails when the last stage does.
pub fn exec(job: &Job, a: &AgentArgs) -> Result<ExitCode> {
    let cmd = a
        .command
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| Error::invalid("--action exec needs --command"))?;
    let stages: Vec<Vec<&str>> = cmd
        .split('|')
        .map(|s| s.split_whitespace().collect::<Vec<_>>())
        .collect();
    if stages.iter().any(|s| s.is_empty()) {
        return Err(Error::invalid(format!(
            "--command {cmd:?}: an empty pipeline stage"
        )));
    }
    job.log("INFO", &format!("exec: {cmd}"));
    let mut children = vec![];
    let mut input: Option<std::process::ChildStdout> = None;
    let n = stages.len();
    for (i, st) in stages.iter().enumerate() {
        let mut c = Command::new(st[0]);
        c.args(&st[1..]);
        if let Some(out) = input.take() {
            c.stdin(Stdio::from(out));
        }
        if i + 1 < n {
            c.stdout(Stdio::piped());
        }
        let mut child = c
            .spawn()
            .map_err(|e| Error::io(format!("--command: cannot run {:?}", st[0]), e))?;
        input = child.stdout.take();
        children.push(child);
    }
    let mut last = None;
    for mut c in children {
        last = Some(
            c.wait()
                .map_err(|e| Error::io("--command: waiting for the command", e))?,
        );
    }
    let status = last.expect("one stage at least");
    if !status.success() {
        return Err(Error::invalid(format!(
            "--command {cmd:?} failed ({status})"
        )));
    }
    Ok(ExitCode::SUCCESS)
}
