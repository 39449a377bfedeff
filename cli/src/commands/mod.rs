//! One module per command.

pub mod agent;
pub mod agent_admin;
pub mod agent_backup;
pub mod agent_legacy;
pub mod agent_names;
pub mod agent_opts;
pub mod agent_prefix;
pub mod agent_restore;
pub mod agent_unsupported;
pub mod backup;
pub mod backup_mysql;
pub mod backup_snapshot;
pub mod backup_source;
pub mod check;
pub mod copy;
pub mod diff;
pub mod dump;
pub mod forget;
pub mod import_freezer;
pub mod init;
pub mod key;
pub mod locks;
pub mod ls;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod restore_volume;
pub mod snapshots;
pub mod stats;
pub mod unlock;

use std::sync::Arc;

use rime_engine::repo::Repository;
use rime_engine::storage::Storage;
use rime_engine::{Error, Result};

use crate::GlobalOpts;

/// The fan-out over several `--repo` storages of this run, for the closing report.
static FANOUT: std::sync::OnceLock<Arc<rime_engine::storage::Fanout>> = std::sync::OnceLock::new();

/// Set for commands that only read: several storages are then read as the union of what they
/// hold (see [`rime_engine::storage::Fanout::set_reading`]).
static READING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// This run only reads the repository.
pub fn reading_only() {
    READING.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The run's storage: one `--repo`, or all of them as one fan-out.
pub fn storage(g: &GlobalOpts) -> Result<Arc<dyn Storage>> {
    let members = members(g)?;
    if members.is_empty() {
        return Err(Error::invalid(
            "no repository given: use --repo, RIME_REPO or --config with [storage:NAME] sections",
        ));
    }
    fan_out(members)
}

/// One storage as is, several as one fan-out (reported at the end of the run).
pub fn fan_out(mut members: Vec<Arc<dyn Storage>>) -> Result<Arc<dyn Storage>> {
    match members.len() {
        0 => Err(Error::invalid("no storage given")),
        1 => Ok(members.pop().expect("one member")),
        _ => {
            let f = FANOUT.get_or_init(|| Arc::new(rime_engine::storage::Fanout::new(members)));
            if READING.load(std::sync::atomic::Ordering::Relaxed) {
                f.set_reading();
            }
            Ok(f.clone())
        }
    }
}

/// Every storage the options name (`--repo`, repeated, and `--config` sections), opened.
pub fn members(g: &GlobalOpts) -> Result<Vec<Arc<dyn Storage>>> {
    let mut members: Vec<Arc<dyn Storage>> = g
        .repo
        .iter()
        .map(|u| crate::storage_open::open(g, u))
        .collect::<Result<_>>()?;
    if let Some(path) = &g.config {
        for s in crate::config_file::load(path)?.storages {
            members.push(crate::storage_open::open_section(g, &s)?);
        }
    }
    Ok(members)
}

/// How a storage that failed in this run catches up, for the closing report (default: `rime copy`).
static CATCH_UP: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Say how a storage that failed in this run catches up (when `rime copy` is not the answer).
pub fn set_catch_up_hint(hint: String) {
    let _ = CATCH_UP.set(hint);
}

/// Storages already reported by [`storage_reports`], with whether each had failed then.
static REPORTED: std::sync::OnceLock<Vec<(String, bool)>> = std::sync::OnceLock::new();

/// With several storages: wait for their writes, print each one's outcome (once per run) and
/// return the reports, for a command that puts them in its own result (backup's `--json`, its
/// exit code). None with a single storage.
pub fn storage_reports(g: &GlobalOpts) -> Option<Vec<rime_engine::storage::MemberReport>> {
    let f = FANOUT.get()?;
    let reports = f.finish();
    let before = REPORTED.get();
    for r in &reports {
        let failed_before = before
            .and_then(|b| b.iter().find(|(l, _)| *l == r.location))
            .map(|(_, failed)| *failed);
        // Each outcome once: later calls only add a storage that failed since.
        if failed_before == Some(true) || (failed_before == Some(false) && r.error.is_none()) {
            continue;
        }
        print_storage_report(g, r);
    }
    let _ = REPORTED.set(
        reports
            .iter()
            .map(|r| (r.location.clone(), r.error.is_some()))
            .collect(),
    );
    Some(reports)
}

fn print_storage_report(g: &GlobalOpts, r: &rime_engine::storage::MemberReport) {
    match &r.error {
        // In a dry run the storage's dry-run layer took the writes: nothing was written.
        None if !g.quiet && g.dry_run => eprintln!(
            "rime: storage {}: ok (dry run: would write {} objects, {})",
            r.location,
            r.objects,
            crate::output::bytes(r.bytes)
        ),
        None if !g.quiet => eprintln!(
            "rime: storage {}: ok ({} objects, {} written)",
            r.location,
            r.objects,
            crate::output::bytes(r.bytes)
        ),
        None => {}
        Some(e) => {
            let hint = CATCH_UP.get().cloned().unwrap_or_else(|| {
                "its repository is consistent; bring it up to date with `rime copy`".into()
            });
            eprintln!(
                "rime: storage {}: FAILED after {} objects: {e} ({hint})",
                r.location, r.objects
            );
        }
    }
}

/// Each storage's outcome as JSON: location, ok, the error's text, objects and bytes written.
pub fn storage_reports_json(reports: &[rime_engine::storage::MemberReport]) -> serde_json::Value {
    reports
        .iter()
        .map(|r| {
            serde_json::json!({
                "location": r.location,
                "ok": r.error.is_none(),
                "error": r.error.as_ref().map(|e| e.to_string()),
                "objects": r.objects,
                "bytes": r.bytes,
            })
        })
        .collect()
}

/// With several storages: wait for their writes and report each (unless a command already
/// did). Returns whether one failed.
pub fn finish_storages(g: &GlobalOpts) -> bool {
    if FANOUT.get().is_none() {
        return false;
    }
    if let Some(repo) = OPENED.get() {
        for m in repo.recovered() {
            eprintln!("rime: warning: damaged copy: {m}");
        }
    }
    storage_reports(g)
        .unwrap_or_default()
        .iter()
        .any(|r| r.error.is_some())
}

pub fn open(g: &GlobalOpts) -> Result<Repository> {
    let s = storage(g)?;
    if let Some(f) = FANOUT.get() {
        f.check_same_repository()?;
    }
    let repo = open_on(g, s)?;
    if FANOUT.get().is_some() {
        let _ = OPENED.set(repo.clone());
    }
    Ok(repo)
}

/// What the engine noticed about the repositories this run opened without stopping (a damaged
/// index file), each message once.
pub fn repository_warnings() -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ALL_OPENED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .flat_map(|repo| repo.warnings())
        .filter(|w| seen.insert(w.clone()))
        .collect()
}

/// Print [`repository_warnings`], also with `--quiet`: the user has something to repair.
pub fn print_repository_warnings() {
    for w in repository_warnings() {
        eprintln!("rime: warning: {w}");
    }
}

/// Open the repository on one given storage, with the run's password.
pub fn open_on(g: &GlobalOpts, s: Arc<dyn Storage>) -> Result<Repository> {
    let repo = if g.no_password {
        Repository::open(s, None)?
    } else {
        let pw = crate::password::get(g)?;
        Repository::open(s, Some(&pw))?
    };
    ALL_OPENED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(repo.clone());
    Ok(repo)
}

/// Every repository this run opened (a command may open one more than once, or one per
/// storage), kept to print their warnings at the end ([`print_repository_warnings`]).
static ALL_OPENED: std::sync::Mutex<Vec<Repository>> = std::sync::Mutex::new(Vec::new());

/// The repository opened on several storages, kept to report damage repaired from a good copy.
static OPENED: std::sync::OnceLock<Repository> = std::sync::OnceLock::new();

/// Open the repository and the view of one snapshot (what restore would write), for ls and dump.
pub fn snapshot_view(
    g: &GlobalOpts,
    spec: &str,
) -> Result<(
    Repository,
    rime_engine::repo::index::MasterIndex,
    rime_engine::format::tree::Tree,
)> {
    let repo = open(g)?;
    let (_, snap) = rime_engine::ops::select::resolve(&repo, spec, &Default::default())?;
    let index = rime_engine::repo::index::MasterIndex::load(&repo)?;
    let (view, _) = rime_engine::ops::browse::view(&repo, &index, &snap)?;
    Ok((repo, index, view))
}

/// Print JSON to stdout.
/// A result line: on standard output, unless that is reserved for one machine-read document
/// ([`GlobalOpts::stdout_reserved`]), then on standard error.
pub fn print_result(g: &GlobalOpts, text: &str) {
    if g.stdout_reserved {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

pub fn print_json(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON values serialize")
    );
}

/// Run a command that decides what to delete (prune, forget, repair) on the run's storages.
///
/// With several storages, each is opened as its own repository and `f` runs once per storage,
/// with that storage's location. A combined run would decide from the intersection of what the
/// storages hold (a fan-out lists in writing runs as an intersection, for deduplication) and
/// then delete on all of them: data that only one storage's snapshots need would be taken for
/// garbage and removed there too. Run per storage, each copy's own snapshots and index protect
/// its own data, and nothing a run decides is removed from another storage.
///
/// Exit code: the first non-zero code a run returned; otherwise 4 when a storage failed and
/// another succeeded; an error when all failed.
pub fn per_storage(
    g: &GlobalOpts,
    mut f: impl FnMut(&Repository, Option<&str>) -> Result<std::process::ExitCode>,
) -> Result<std::process::ExitCode> {
    use std::process::ExitCode;
    let mut members = members(g)?;
    match members.len() {
        0 => return f(&open(g)?, None), // open names what is missing
        1 => return f(&open_on(g, members.pop().expect("one storage"))?, None),
        _ => {}
    }
    // Ask for the password once, not once per storage.
    let password = match g.no_password {
        true => None,
        false => Some(crate::password::get(g)?),
    };
    let (mut failed, mut succeeded, mut code) = (Vec::new(), 0usize, ExitCode::SUCCESS);
    for s in members {
        let location = s.location();
        if !g.quiet && !g.json {
            println!("storage {location}:");
        }
        let r = Repository::open(s, password.as_deref()).and_then(|repo| f(&repo, Some(&location)));
        match r {
            Ok(c) => {
                succeeded += 1;
                if c != ExitCode::SUCCESS && code == ExitCode::SUCCESS {
                    code = c;
                }
            }
            Err(e) => {
                eprintln!("rime: error: storage {location}: {e}");
                failed.push((location, e));
            }
        }
    }
    per_storage_outcome(failed, succeeded, code)
}

/// The exit of a run once per storage: the first non-zero code a run returned; otherwise 4
/// when a storage failed and another succeeded; an error when all failed.
pub fn per_storage_outcome(
    mut failed: Vec<(String, Error)>,
    succeeded: usize,
    code: std::process::ExitCode,
) -> Result<std::process::ExitCode> {
    use std::process::ExitCode;
    if failed.is_empty() || code != ExitCode::SUCCESS {
        return Ok(code);
    }
    if succeeded > 0 {
        let names: Vec<&str> = failed.iter().map(|(l, _)| l.as_str()).collect();
        eprintln!(
            "rime: done on {succeeded} storage(s), FAILED on {}: {}",
            failed.len(),
            names.join(", ")
        );
        return Ok(ExitCode::from(4));
    }
    // Every storage failed: the run's error is the first one's (each was printed above).
    let (location, e) = failed.swap_remove(0);
    Err(Error::new(
        e.kind(),
        format!("every storage failed (first: {location}: {e})"),
    ))
}
