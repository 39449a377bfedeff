//! The tar-level backups of a host and backup name, as recorded in the repository, and the
//! two decisions made from them besides the next level: which chain a restore replays, and
//! which backups retention may remove.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::format::snapshot::{Snapshot, SourceKind, TarLevelSource};
use crate::id::SnapshotId;
use crate::repo::Repository;

use super::plan::{chain_complete, LevelBackup};

/// Every tar-level snapshot in the repository, optionally of one host and/or backup name.
pub fn list(
    repo: &Repository,
    hostname: Option<&str>,
    name: Option<&str>,
) -> Result<Vec<(SnapshotId, Snapshot)>> {
    let mut out = vec![];
    for (id, s) in repo.list_snapshots()? {
        let s = s?;
        if !matches!(s.source, SourceKind::TarLevel(_))
            || hostname.is_some_and(|h| h != s.hostname)
            || name.is_some_and(|n| n != s.name)
        {
            continue;
        }
        out.push((id, s));
    }
    out.sort_by_key(|(id, s)| (s.time.secs, s.time.nanos, *id));
    Ok(out)
}

/// The tar-level part of a snapshot's source.
pub fn source(s: &Snapshot) -> Result<&TarLevelSource> {
    match &s.source {
        SourceKind::TarLevel(t) if t.tar_size > t.size || t.chain.len() != t.level as usize => {
            Err(Error::corrupt(format!(
                "tar level snapshot of {}: archive of {} bytes in {} bytes of content, {} chain members for level {}",
                s.paths.join(", "),
                t.tar_size,
                t.size,
                t.chain.len(),
                t.level
            )))
        }
        SourceKind::TarLevel(t) => Ok(t),
        _ => Err(Error::invalid(format!(
            "snapshot of {} is a {} snapshot, not a tar-level backup",
            s.paths.join(", "),
            s.source.label()
        ))),
    }
}

/// The level facts of snapshots (non-tar snapshots are skipped).
pub fn levels(snaps: &[(SnapshotId, Snapshot)]) -> Vec<LevelBackup> {
    snaps
        .iter()
        .filter_map(|(id, s)| match &s.source {
            SourceKind::TarLevel(t) => Some(LevelBackup {
                id: *id,
                time: s.time.secs,
                nanos: s.time.nanos,
                level: t.level,
                chain: t.chain.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The chain a restore at `date` replays: the newest backup at or before `date` (the newest
/// overall without a date) and the levels below it, in level order.
pub fn restore_chain(history: &[LevelBackup], date: Option<i64>) -> Result<Vec<SnapshotId>> {
    let candidates: Vec<LevelBackup> = history
        .iter()
        .filter(|b| date.is_none_or(|d| b.time <= d))
        .cloned()
        .collect();
    let Some(end) = super::plan::newest(&candidates) else {
        return Err(match (date, history.iter().map(|b| b.time).min()) {
            (_, None) => Error::new(crate::ErrorKind::NotFound, "no tar backup found"),
            (Some(d), Some(first)) => Error::new(
                crate::ErrorKind::NotFound,
                format!(
                    "no backup at or before {}: the first backup was taken at {}",
                    fmt_time(d),
                    fmt_time(first)
                ),
            ),
            (None, Some(_)) => unreachable!("candidates are all backups without a date"),
        });
    };
    if !chain_complete(history, end) {
        return Err(Error::corrupt(format!(
            "the backup {} (level {}) needs levels that are no longer in the repository",
            end.id.short(),
            end.level
        )));
    }
    Ok(end.full_chain())
}

/// Which backups retention removes: those taken before `cutoff`, except any backup a kept one
/// needs (its chain) and the newest restorable backup, whatever its age.
pub fn retention(history: &[LevelBackup], cutoff: i64) -> Vec<SnapshotId> {
    let mut keep: HashSet<SnapshotId> = history
        .iter()
        .filter(|b| b.time >= cutoff)
        .map(|b| b.id)
        .collect();
    let restorable: Vec<LevelBackup> = history
        .iter()
        .filter(|b| chain_complete(history, b))
        .cloned()
        .collect();
    if let Some(n) = super::plan::newest(&restorable) {
        keep.insert(n.id);
    }
    let needed: HashSet<SnapshotId> = history
        .iter()
        .filter(|b| keep.contains(&b.id))
        .flat_map(|b| b.chain.iter().copied())
        .collect();
    history
        .iter()
        .filter(|b| !keep.contains(&b.id) && !needed.contains(&b.id))
        .map(|b| b.id)
        .collect()
}

/// `2026-11-21T10:00:00Z` for messages.
pub fn fmt_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(n: u8, time: i64, level: u32, chain: &[u8]) -> LevelBackup {
        LevelBackup {
            id: SnapshotId::from_bytes([n; 32]),
            time,
            nanos: 0,
            level,
            chain: chain
                .iter()
                .map(|c| SnapshotId::from_bytes([*c; 32]))
                .collect(),
        }
    }

    fn ids(v: &[u8]) -> Vec<SnapshotId> {
        v.iter().map(|c| SnapshotId::from_bytes([*c; 32])).collect()
    }

    #[test]
    fn restore_chain_by_date_resolves_duplicates_by_time() {
        // always-level 1: 2 and 3 are both level 1 on 1.
        let h = vec![b(1, 100, 0, &[]), b(2, 200, 1, &[1]), b(3, 300, 1, &[1])];
        assert_eq!(restore_chain(&h, None).unwrap(), ids(&[1, 3]));
        assert_eq!(restore_chain(&h, Some(250)).unwrap(), ids(&[1, 2]));
        assert_eq!(restore_chain(&h, Some(100)).unwrap(), ids(&[1]));
        let e = restore_chain(&h, Some(99)).unwrap_err().to_string();
        assert!(e.contains("first backup"), "{e}");
        assert!(restore_chain(&h[1..], None).is_err(), "broken chain");
    }

    #[test]
    fn retention_keeps_needed_chain_members_and_the_newest() {
        // Chain A: 1(L0) 2(L1) 3(L2); chain B: 4(L0) 5(L1).
        let h = vec![
            b(1, 100, 0, &[]),
            b(2, 200, 1, &[1]),
            b(3, 300, 2, &[1, 2]),
            b(4, 400, 0, &[]),
            b(5, 500, 1, &[4]),
        ];
        // Cutoff inside chain A: 3 is kept, so 1 and 2 are needed.
        assert!(retention(&h, 250).is_empty());
        // Cutoff inside chain B: all of A goes, 4 is needed by 5.
        assert_eq!(retention(&h, 450), ids(&[1, 2, 3]));
        // Everything older than the cutoff: the newest restorable chain stays.
        assert_eq!(retention(&h, 10_000), ids(&[1, 2, 3]));
    }

    /// Backups taken within one second (a job run twice, a retry) are ordered by their
    /// nanoseconds, not by level: a level 0 taken after a level 1 is the newest. Before, the
    /// level 1 won, so the next backup built on stale data, a restore replayed it, and
    /// retention could remove the newer level 0.
    #[test]
    fn backups_in_one_second_are_ordered_by_nanoseconds_not_level() {
        let at = |n, nanos, level, chain: &[u8]| LevelBackup {
            nanos,
            ..b(n, 100, level, chain)
        };
        // --max-level 1: 1 (L0), 2 (L1), 3 (new L0), all in second 100.
        let h = vec![at(1, 10, 0, &[]), at(2, 20, 1, &[1]), at(3, 30, 0, &[])];
        assert_eq!(restore_chain(&h, None).unwrap(), ids(&[3]));
        assert_eq!(restore_chain(&h, Some(100)).unwrap(), ids(&[3]));
        // Everything is older than the cutoff: only the newest restorable backup stays.
        assert_eq!(retention(&h, 10_000), ids(&[1, 2]));
        let next = super::super::plan::plan(
            &h,
            &super::super::plan::LevelRules {
                max_level: Some(1),
                ..Default::default()
            },
            101,
        )
        .unwrap();
        assert_eq!((next.level, next.chain), (1, ids(&[3])));
    }

    /// A backup built on another is newer than it even when the clock was set back between
    /// the two runs.
    #[test]
    fn a_backup_built_on_another_is_newer_whatever_the_clock_says() {
        let h = vec![b(1, 500, 0, &[]), b(2, 400, 1, &[1]), b(3, 300, 2, &[1, 2])];
        assert_eq!(restore_chain(&h, None).unwrap(), ids(&[1, 2, 3]));
        assert_eq!(retention(&h, 10_000), Vec::<SnapshotId>::new());
    }
}
