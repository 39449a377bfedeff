//! Which level the next tar backup is, and which earlier backup it builds on: Freezer's rules
//! (`--max-level`, `--always-level`, `--restart-always-level`, `--no-incremental`), computed
//! from the chains recorded in the snapshots instead of from directory listings.
//!
//! Freezer's own algorithm (`storage/base.py: previous_backup`) has three faults this one fixes:
//! - always-level duplicates collapse into a dict keyed by level, so which one a restore uses is
//!   arbitrary. Here every backup names its exact chain, and restore picks by time.
//! - `--restart-always-level` counts the days from the *newest* backup, so a daily job never
//!   restarts; here it counts from the chain's level 0, as documented.
//! - lowering `--always-level` below the current top level forces a full backup; here the new
//!   backup is simply a differential at the new always-level.

use crate::error::{Error, Result};
use crate::id::SnapshotId;

/// The level options of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LevelRules {
    /// `--no-incremental`: every backup is a level 0.
    pub no_incremental: bool,
    /// `--max-level N`: levels 0..=N, then a new level 0.
    pub max_level: Option<u32>,
    /// `--always-level N`: levels up to N; then every backup is level N, a differential
    /// against the chain's level N-1.
    pub always_level: Option<u32>,
    /// `--restart-always-level DAYS`: a new level 0 once the chain's level 0 is that old.
    pub restart_days: Option<f64>,
}

impl LevelRules {
    /// Reject contradictory rules.
    pub fn check(&self) -> Result<()> {
        if self.no_incremental
            && (self.max_level.is_some()
                || self.always_level.is_some()
                || self.restart_days.is_some())
        {
            return Err(Error::invalid(
                "--no-incremental conflicts with --max-level, --always-level and --restart-always-level",
            ));
        }
        if let Some(d) = self.restart_days {
            if !(d > 0.0 && d.is_finite()) {
                return Err(Error::invalid(format!(
                    "--restart-always-level {d}: expected a positive number of days"
                )));
            }
        }
        Ok(())
    }
}

/// An earlier tar-level backup of the same host and backup name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelBackup {
    pub id: SnapshotId,
    /// Seconds since the epoch (the snapshot's time).
    pub time: i64,
    /// Nanoseconds within `time`: two backups in one second are still ordered.
    pub nanos: u32,
    pub level: u32,
    /// Levels 0..level-1, in order.
    pub chain: Vec<SnapshotId>,
}

impl LevelBackup {
    /// The full chain ending at this backup: levels 0..=level.
    pub fn full_chain(&self) -> Vec<SnapshotId> {
        let mut c = self.chain.clone();
        c.push(self.id);
        c
    }
}

/// What the next backup is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub level: u32,
    /// Levels 0..level-1 (empty for a level 0); the last one is the parent whose SNAR state
    /// this level is taken against.
    pub chain: Vec<SnapshotId>,
    /// Why this level was chosen, for logs.
    pub reason: &'static str,
}

impl Plan {
    fn full(reason: &'static str) -> Plan {
        Plan {
            level: 0,
            chain: vec![],
            reason,
        }
    }

    pub fn parent(&self) -> Option<SnapshotId> {
        self.chain.last().copied()
    }
}

/// The newest of `history`: by time (to the nanosecond), then level, then id (deterministic);
/// and a backup built on another is always newer than it, whatever the clock said (a clock set
/// back between two runs must not make a restore skip the later one).
pub fn newest(history: &[LevelBackup]) -> Option<&LevelBackup> {
    let key = |b: &&LevelBackup| (b.time, b.nanos, b.level, b.id);
    let mut end = history.iter().max_by_key(key)?;
    // Each step moves to a backup whose chain holds the current one, so a higher level: it
    // ends.
    while let Some(later) = history
        .iter()
        .filter(|b| b.chain.contains(&end.id))
        .max_by_key(key)
    {
        end = later;
    }
    Some(end)
}

/// Whether every member of `b`'s chain is still in `history`.
pub fn chain_complete(history: &[LevelBackup], b: &LevelBackup) -> bool {
    b.chain.iter().all(|c| history.iter().any(|h| h.id == *c))
}

/// Decide the next backup's level from the earlier backups of the same host and name.
pub fn plan(history: &[LevelBackup], rules: &LevelRules, now: i64) -> Result<Plan> {
    rules.check()?;
    if rules.no_incremental {
        return Ok(Plan::full("--no-incremental"));
    }
    let Some(last) = newest(history) else {
        return Ok(Plan::full("no earlier backup"));
    };
    if !chain_complete(history, last) {
        return Ok(Plan::full("the newest backup's chain is incomplete"));
    }
    let full = last.full_chain();
    if let Some(days) = rules.restart_days {
        let l0_time = history
            .iter()
            .find(|h| h.id == full[0])
            .map_or(last.time, |h| h.time);
        if (now - l0_time) as f64 >= days * 86400.0 {
            return Ok(Plan::full(
                "--restart-always-level: the level 0 is old enough",
            ));
        }
    }
    if let Some(m) = rules.max_level {
        if last.level >= m {
            return Ok(Plan::full("--max-level reached"));
        }
    }
    let mut level = last.level + 1;
    let mut reason = "incremental on the newest backup";
    if let Some(a) = rules.always_level {
        if a == 0 {
            return Ok(Plan::full("--always-level 0"));
        }
        if level > a {
            level = a;
            reason = "--always-level: differential on the chain's level below it";
        }
    }
    Ok(Plan {
        level,
        chain: full[..level as usize].to_vec(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> SnapshotId {
        SnapshotId::from_bytes([n; 32])
    }

    /// Run `n` backups one day apart under `rules`; returns the levels chosen and the history.
    fn run(rules: LevelRules, n: usize) -> (Vec<u32>, Vec<LevelBackup>) {
        let mut h: Vec<LevelBackup> = vec![];
        let mut levels = vec![];
        for i in 0..n {
            let now = 1_000_000 + i as i64 * 86400;
            let p = plan(&h, &rules, now).unwrap();
            if let Some(parent) = p.parent() {
                assert!(h.iter().any(|b| b.id == parent));
            }
            levels.push(p.level);
            h.push(LevelBackup {
                id: id(i as u8 + 1),
                time: now,
                nanos: 0,
                level: p.level,
                chain: p.chain,
            });
        }
        (levels, h)
    }

    #[test]
    fn unbounded_incremental_by_default() {
        assert_eq!(run(LevelRules::default(), 5).0, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn max_level_wraps_after_level_n() {
        let r = LevelRules {
            max_level: Some(2),
            ..Default::default()
        };
        let (levels, h) = run(r, 7);
        assert_eq!(levels, vec![0, 1, 2, 0, 1, 2, 0]);
        // The second level 1 builds on the second level 0, not the first.
        assert_eq!(h[4].chain, vec![h[3].id]);
        assert_eq!(h[5].chain, vec![h[3].id, h[4].id]);
    }

    #[test]
    fn always_level_is_a_differential_on_the_level_below() {
        let r = LevelRules {
            always_level: Some(2),
            ..Default::default()
        };
        let (levels, h) = run(r, 5);
        assert_eq!(levels, vec![0, 1, 2, 2, 2]);
        for b in &h[2..] {
            assert_eq!(b.chain, vec![h[0].id, h[1].id]);
        }
        // always-level 1: every backup is a differential against the level 0.
        let r = LevelRules {
            always_level: Some(1),
            ..Default::default()
        };
        let (levels, h) = run(r, 4);
        assert_eq!(levels, vec![0, 1, 1, 1]);
        assert!(h[1..].iter().all(|b| b.chain == vec![h[0].id]));
    }

    #[test]
    fn restart_counts_from_the_level_0_not_the_newest_backup() {
        // Daily backups, restart after 3 days: Freezer's rule (days since the newest backup)
        // would never restart.
        let r = LevelRules {
            always_level: Some(1),
            restart_days: Some(3.0),
            ..Default::default()
        };
        assert_eq!(run(r, 8).0, vec![0, 1, 1, 0, 1, 1, 0, 1]);
    }

    #[test]
    fn no_incremental_and_conflicts() {
        let r = LevelRules {
            no_incremental: true,
            ..Default::default()
        };
        assert_eq!(run(r, 3).0, vec![0, 0, 0]);
        let bad = LevelRules {
            no_incremental: true,
            always_level: Some(1),
            ..Default::default()
        };
        let e = plan(&[], &bad, 0).unwrap_err().to_string();
        assert!(e.contains("--no-incremental"), "{e}");
        let bad = LevelRules {
            restart_days: Some(-1.0),
            ..Default::default()
        };
        assert!(plan(&[], &bad, 0).is_err());
    }

    #[test]
    fn lowering_always_level_gives_a_differential_not_a_full() {
        let (_, mut h) = run(LevelRules::default(), 4); // levels 0..3
        let r = LevelRules {
            always_level: Some(2),
            ..Default::default()
        };
        let p = plan(&h, &r, 2_000_000).unwrap();
        assert_eq!(p.level, 2);
        assert_eq!(p.chain, vec![h[0].id, h[1].id]);
        // A chain with a removed member is not continued.
        h.remove(1);
        assert_eq!(plan(&h, &r, 2_000_000).unwrap().level, 0);
    }
}
