//! Which backups a restore replays.
//!
//! The end of the chain is the newest backup of the host and name at or before the date; then,
//! level by level down to 0, the newest backup of the level below taken before it, within the
//! same level-0 group. For plain `--max-level` chains this is Freezer's rule (newest level 0
//! at or before the date, plus its increments at or before the date). For `--always-level`
//! chains, where several backups share a level, it picks by time: each differential is
//! replayed on the backup it was really taken against, where Freezer's flat dict keyed by level
//! keeps an arbitrary one.

use super::scan::LegacyBackup;
use crate::error::{Error, ErrorKind, Result};

/// Format epoch seconds for messages (UTC).
pub fn show_time(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| ts.to_string())
}

/// The chain (level 0 first) for `hostname_backup_name` ending at the newest backup at or
/// before `until` (epoch seconds; `None` = the newest of all).
pub fn resolve(
    all: &[LegacyBackup],
    hostname_backup_name: &str,
    until: Option<i64>,
) -> Result<Vec<LegacyBackup>> {
    let mine: Vec<&LegacyBackup> = all
        .iter()
        .filter(|b| b.hostname_backup_name == hostname_backup_name)
        .collect();
    if mine.is_empty() {
        let mut known: Vec<&str> = all
            .iter()
            .map(|b| b.hostname_backup_name.as_str())
            .collect();
        known.dedup();
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "no Freezer backup named {hostname_backup_name:?} (host_name); found: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    let eligible: Vec<&LegacyBackup> = mine
        .iter()
        .copied()
        .filter(|b| until.is_none_or(|u| b.timestamp <= u))
        .collect();
    let Some(end) = eligible
        .iter()
        .copied()
        .max_by_key(|b| (b.timestamp, b.level))
    else {
        let first = mine.iter().map(|b| b.timestamp).min().unwrap_or_default();
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "no Freezer backup of {hostname_backup_name} at or before {}: the first one is \
                 from {}",
                show_time(until.unwrap_or_default()),
                show_time(first)
            ),
        ));
    };
    let mut chain = vec![end.clone()];
    let mut cur = end;
    while cur.level > 0 {
        let want = cur.level - 1;
        let below = eligible
            .iter()
            .copied()
            .filter(|b| {
                b.level_zero == cur.level_zero && b.level == want && b.timestamp <= cur.timestamp
            })
            .max_by_key(|b| b.timestamp)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::MissingObject,
                    format!(
                        "Freezer chain of {} is broken: no level {want} backup under {} \
                         (level-0 group {})",
                        hostname_backup_name, cur.dir, cur.level_zero
                    ),
                )
            })?;
        chain.push(below.clone());
        cur = below;
    }
    chain.reverse();
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(l0: i64, level: u32, ts: i64) -> LegacyBackup {
        LegacyBackup {
            hostname_backup_name: "h_n".into(),
            host: "h".into(),
            name: "n".into(),
            level_zero: l0,
            level,
            timestamp: ts,
            size: 1,
            compression: None,
            encrypted: false,
            metadata: None,
            data: vec![],
            dir: format!("data/tar/h_n/{l0}/{level}_{ts}"),
        }
    }

    fn times(c: &[LegacyBackup]) -> Vec<i64> {
        c.iter().map(|b| b.timestamp).collect()
    }

    #[test]
    fn max_level_cycles_and_dates() {
        // 0,1,2 then a new 0,1 (max-level 2).
        let all = [
            b(10, 0, 10),
            b(10, 1, 20),
            b(10, 2, 30),
            b(40, 0, 40),
            b(40, 1, 50),
        ];
        assert_eq!(times(&resolve(&all, "h_n", None).unwrap()), [40, 50]);
        assert_eq!(
            times(&resolve(&all, "h_n", Some(39)).unwrap()),
            [10, 20, 30]
        );
        assert_eq!(times(&resolve(&all, "h_n", Some(25)).unwrap()), [10, 20]);
        assert_eq!(times(&resolve(&all, "h_n", Some(10)).unwrap()), [10]);
        let e = resolve(&all, "h_n", Some(9)).unwrap_err();
        assert!(e.to_string().contains("first one"), "{e}");
        assert_eq!(
            resolve(&all, "x_y", None).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn always_level_duplicates_resolved_by_time() {
        // always-level 2: 0, 1, then differentials at level 2 against the level 1.
        let all = [
            b(10, 0, 10),
            b(10, 1, 20),
            b(10, 2, 30),
            b(10, 2, 40),
            b(10, 2, 50),
        ];
        assert_eq!(
            times(&resolve(&all, "h_n", Some(45)).unwrap()),
            [10, 20, 40]
        );
        assert_eq!(times(&resolve(&all, "h_n", None).unwrap()), [10, 20, 50]);
        // always-level 1 with a level 2 chain broken: a missing level is an error.
        let broken = [b(10, 0, 10), b(10, 2, 30)];
        let e = resolve(&broken, "h_n", None).unwrap_err();
        assert!(e.to_string().contains("no level 1"), "{e}");
    }
}
