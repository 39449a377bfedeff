//! `rime forget`: apply a retention policy and remove the snapshot files it does not keep.
//!
//! Only snapshot files are removed; the data they alone referenced stays until `prune`. So
//! forget is cheap, and it is safe next to running backups and restores (a removed snapshot's
//! trees and blobs stay readable until a prune): forget takes a shared lock, and refuses to run
//! while an exclusive lock (repair) or another forget's lock is held: two forgets deciding from
//! their own listings could together remove every snapshot of a group.

use chrono::TimeZone;

use crate::error::{Error, ErrorKind, Result};
use crate::ops::policy::{self, GroupBy, GroupPlan, Policy};
use crate::repo::lock::{LockGuard, FORGET};
use crate::repo::{now_secs, Repository};
use crate::storage::FileKind;

#[derive(Debug, Clone, Default)]
pub struct ForgetOptions {
    pub policy: Policy,
    pub group_by: GroupBy,
    /// Only consider snapshots of this host / backup name / carrying all these tags.
    pub hostname: Option<String>,
    pub name: Option<String>,
    pub tags: Vec<String>,
    /// Decide and report, remove nothing.
    pub dry_run: bool,
    /// Let the rules remove every snapshot of a group. Without it, a policy that keeps none
    /// of a group (`--keep-daily 0`, a mistyped `--keep-tag`, `--remove-older-than` after a
    /// month of failed backups) is refused before anything is removed.
    pub allow_remove_all: bool,
    /// Remove exactly these snapshots instead of applying a policy (`rime forget ID...`).
    pub ids: Vec<crate::id::SnapshotId>,
}

#[derive(Debug, Clone, Default)]
pub struct ForgetReport {
    pub groups: Vec<GroupPlan>,
    /// Snapshot files removed (0 with `dry_run`).
    pub removed: u64,
    /// Snapshots that could not be read: never removed, listed here.
    pub unreadable: Vec<String>,
}

pub fn forget(repo: &Repository, opts: &ForgetOptions) -> Result<ForgetReport> {
    forget_in(repo, opts, &chrono::Local, now_secs())
}

/// As [`forget`], with the time zone used for hourly … yearly periods and "now" given.
pub fn forget_in<Tz: TimeZone>(
    repo: &Repository,
    opts: &ForgetOptions,
    tz: &Tz,
    now: i64,
) -> Result<ForgetReport> {
    if !opts.ids.is_empty() {
        if !opts.policy.is_empty() {
            return Err(Error::invalid(
                "give either snapshots to remove or retention rules, not both",
            ));
        }
        return forget_named(repo, opts);
    }
    if opts.policy.is_empty() {
        return Err(Error::invalid(
            "no retention rule given (--keep-last, --keep-daily, --keep-within, --remove-older-than, …): \
             refusing to remove every snapshot",
        ));
    }
    let lock = if opts.dry_run {
        None
    } else {
        Some(LockGuard::shared(repo, FORGET)?)
    };
    let mut rep = ForgetReport::default();
    let mut readable = Vec::new();
    for (id, s) in repo.list_snapshots()? {
        match s {
            Ok(s) => {
                if opts.hostname.as_ref().is_some_and(|h| *h != s.hostname)
                    || opts.name.as_ref().is_some_and(|n| *n != s.name)
                    || !opts.tags.iter().all(|t| s.tags.contains(t))
                {
                    continue;
                }
                readable.push((id, s));
            }
            Err(e) => rep
                .unreadable
                .push(format!("snapshot {}: {e} (kept)", id.short())),
        }
    }
    rep.groups = policy::apply(readable, &opts.policy, opts.group_by, tz, now);
    keep_tar_chains(&mut rep.groups);
    let emptied: Vec<String> = rep
        .groups
        .iter()
        .filter(|g| !g.decisions.is_empty() && g.decisions.iter().all(|d| !d.keep))
        .map(|g| format!("{} ({} snapshot(s))", g.key, g.decisions.len()))
        .collect();
    if !emptied.is_empty() && !opts.allow_remove_all {
        return Err(Error::invalid(format!(
            "the rules keep no snapshot of {}: refusing to remove every snapshot of a group \
             (a mistyped --keep-tag, or a count of 0?); nothing was removed. Pass \
             --unsafe-allow-remove-all if that is what you want",
            emptied.join(", ")
        )));
    }
    if opts.dry_run {
        return Ok(rep);
    }
    // Still ours: a lock others may call stale no longer keeps other forgets out.
    if let Some(l) = &lock {
        l.check()?;
    }
    for g in &rep.groups {
        for d in g.decisions.iter().filter(|d| !d.keep) {
            match repo.storage().remove(FileKind::Snapshot, &d.id.to_hex()) {
                Ok(()) => rep.removed += 1,
                // Another forget removed it first: the outcome is the same.
                Err(e) if e.kind() == ErrorKind::MissingObject => {}
                Err(e) => return Err(e.within(format!("removing snapshot {}", d.id.short()))),
            }
        }
    }
    Ok(rep)
}

/// `rime forget ID...`: remove the named snapshots, unless a snapshot that stays is a tar
/// level built on one of them (it could not be restored without it).
fn forget_named(repo: &Repository, opts: &ForgetOptions) -> Result<ForgetReport> {
    use crate::format::snapshot::SourceKind;
    let lock = if opts.dry_run {
        None
    } else {
        Some(LockGuard::shared(repo, FORGET)?)
    };
    let named: std::collections::HashSet<_> = opts.ids.iter().copied().collect();
    let mut rep = ForgetReport::default();
    for (id, s) in repo.list_snapshots()? {
        let s = match s {
            Ok(s) => s,
            Err(e) if named.contains(&id) => {
                return Err(e.within(format!("snapshot {}", id.short())))
            }
            Err(_) => continue,
        };
        if named.contains(&id) {
            rep.groups.push(GroupPlan {
                key: GroupBy::default().key(&s),
                decisions: vec![policy::Decision {
                    id,
                    snapshot: s,
                    keep: false,
                    reasons: vec!["named on the command line".to_string()],
                }],
            });
            continue;
        }
        if let SourceKind::TarLevel(t) = &s.source {
            if let Some(base) = t.chain.iter().find(|c| named.contains(c)) {
                return Err(Error::invalid(format!(
                    "snapshot {} is a tar level built on {}, which would then be \
                     unrestorable: remove it too, or keep {}; nothing was removed",
                    id.short(),
                    base.short(),
                    base.short()
                )));
            }
        }
    }
    if let Some(gone) = opts
        .ids
        .iter()
        .find(|i| !rep.groups.iter().any(|g| g.decisions[0].id == **i))
    {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "no snapshot {} in the repository; nothing was removed",
                gone.short()
            ),
        ));
    }
    if opts.dry_run {
        return Ok(rep);
    }
    if let Some(l) = &lock {
        l.check()?;
    }
    for g in &rep.groups {
        let id = g.decisions[0].id;
        match repo.storage().remove(FileKind::Snapshot, &id.to_hex()) {
            Ok(()) => rep.removed += 1,
            Err(e) if e.kind() == ErrorKind::MissingObject => {}
            Err(e) => return Err(e.within(format!("removing snapshot {}", id.short()))),
        }
    }
    Ok(rep)
}

/// A kept tar-level snapshot cannot be restored without the levels below it: keep them too,
/// whatever the policy said (they may sit in other groups).
fn keep_tar_chains(groups: &mut [GroupPlan]) {
    use crate::format::snapshot::SourceKind;
    let needed: std::collections::HashSet<crate::id::SnapshotId> = groups
        .iter()
        .flat_map(|g| g.decisions.iter())
        .filter(|d| d.keep)
        .filter_map(|d| match &d.snapshot.source {
            SourceKind::TarLevel(t) => Some(t.chain.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect();
    for d in groups.iter_mut().flat_map(|g| g.decisions.iter_mut()) {
        if !d.keep && needed.contains(&d.id) {
            d.keep = true;
            d.reasons = vec!["needed by a kept tar level".to_string()];
        }
    }
}
