//! Retention policy: which snapshots `forget` keeps, and why.
//!
//! The semantics follow restic's (the yardstick users know): within a group, snapshots are
//! visited newest first; `keep_last` keeps the n newest; each periodic rule (hourly … yearly)
//! keeps the newest snapshot of each of its n most recent *local-time* periods that contain a
//! snapshot; `keep_within` keeps every snapshot taken within the duration before the group's
//! newest snapshot (not before "now", so a machine that stopped backing up keeps its last
//! backups; but not after "now" either: a snapshot stamped in the future by a wrong clock would
//! otherwise push every real snapshot out of the window); `within_periods` (restic's
//! `--keep-within-daily 30d` and its siblings) keep the newest snapshot of every period inside
//! such a window, however many periods it holds; `keep_tags` keeps snapshots carrying all tags of one of the lists. A snapshot may
//! satisfy several rules and every reason is listed. Freezer's `--remove-older-than DAYS` and
//! `--remove-from-date` are keep rules too: they keep what is newer than their cut-off, so used
//! alone they remove exactly what Freezer would; combined with other rules, a snapshot is kept if
//! any rule keeps it. Everything no rule keeps is removed.
//!
//! The policy is a pure function of the snapshots, the time zone and "now", so golden tests pin
//! its decisions without a repository.

use chrono::{Datelike, Months, Offset, TimeZone, Timelike};

use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::id::SnapshotId;

/// A duration in calendar units, as `--keep-within 1y2m3d4h` (restic's syntax).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CalendarDuration {
    pub years: u32,
    pub months: u32,
    pub days: u32,
    pub hours: u32,
}

impl CalendarDuration {
    /// Parse `[Ny][Nm][Nd][Nh]` (any subset, any order, each unit once), e.g. `1y2m3d4h`, `30d`.
    pub fn parse(s: &str) -> Result<CalendarDuration> {
        let bad = || {
            Error::invalid(format!(
                "bad duration '{s}': use numbers with units y, m, d, h, e.g. 1y2m3d4h or 30d"
            ))
        };
        let mut d = CalendarDuration::default();
        let mut seen = String::new();
        let mut num = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            if num.is_empty() || seen.contains(c) {
                return Err(bad());
            }
            let n: u32 = num.parse().map_err(|_| bad())?;
            match c {
                'y' => d.years = n,
                'm' => d.months = n,
                'd' => d.days = n,
                'h' => d.hours = n,
                _ => return Err(bad()),
            }
            seen.push(c);
            num.clear();
        }
        if !num.is_empty() || seen.is_empty() {
            return Err(bad());
        }
        Ok(d)
    }

    /// `t` minus this duration, in calendar arithmetic of time zone `tz` (a month before
    /// 31 March is the last day of February, as chrono's `checked_sub_months`). A result in a
    /// daylight-saving gap (02:30 on the night clocks jump from 02:00 to 03:00) is read with
    /// the offset before the gap, so it lands just after it; a duration beyond the calendar's
    /// range gives the earliest time (everything is within it).
    pub fn before<Tz: TimeZone>(&self, tz: &Tz, t: i64) -> i64 {
        let Some(dt) = tz.timestamp_opt(t, 0).earliest() else {
            return t;
        };
        let months = self
            .years
            .checked_mul(12)
            .and_then(|m| m.checked_add(self.months));
        let naive = months
            .and_then(|m| dt.naive_local().checked_sub_months(Months::new(m)))
            .and_then(|n| {
                chrono::Duration::try_days(i64::from(self.days))
                    .and_then(|d| n.checked_sub_signed(d))
            });
        let Some(naive) = naive else {
            return i64::MIN;
        };
        let local = match tz.from_local_datetime(&naive).earliest() {
            Some(d) => d.timestamp(),
            None => {
                // In a gap: the offset in force a day earlier is the one before the jump.
                let before_gap = naive
                    .checked_sub_signed(chrono::Duration::days(1))
                    .unwrap_or(naive);
                let offset = tz.offset_from_utc_datetime(&before_gap).fix();
                naive.and_utc().timestamp() - i64::from(offset.local_minus_utc())
            }
        };
        local.saturating_sub(i64::from(self.hours) * 3600)
    }
}

impl std::fmt::Display for CalendarDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, u) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n > 0 {
                write!(f, "{n}{u}")?;
            }
        }
        Ok(())
    }
}

/// What to keep. Counts of `None` mean "rule not used"; `Some(0)` is allowed and keeps nothing.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub last: Option<u32>,
    pub hourly: Option<u32>,
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    pub monthly: Option<u32>,
    pub yearly: Option<u32>,
    pub within: Option<CalendarDuration>,
    /// restic's `--keep-within-hourly` … `--keep-within-yearly`: the newest snapshot of every
    /// hour, day, ISO week, month or year (local time) that lies within the duration before the
    /// group's newest snapshot, however many periods that is. In the order hourly, daily,
    /// weekly, monthly, yearly.
    pub within_periods: [Option<CalendarDuration>; 5],
    /// Keep snapshots that carry every tag of at least one list.
    pub tags: Vec<Vec<String>>,
    /// Freezer's `--remove-older-than DAYS`: keep snapshots taken at or after now − DAYS.
    pub remove_older_than_days: Option<u32>,
    /// Freezer's `--remove-from-date`: keep snapshots taken at or after this Unix time.
    pub remove_before: Option<i64>,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.last.is_none()
            && self.hourly.is_none()
            && self.daily.is_none()
            && self.weekly.is_none()
            && self.monthly.is_none()
            && self.yearly.is_none()
            && self.within.is_none()
            && self.within_periods.iter().all(Option::is_none)
            && self.tags.is_empty()
            && self.remove_older_than_days.is_none()
            && self.remove_before.is_none()
    }
}

/// Which snapshot fields form a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupBy {
    pub host: bool,
    pub name: bool,
    pub paths: bool,
    pub tags: bool,
}

impl Default for GroupBy {
    fn default() -> Self {
        GroupBy {
            host: true,
            name: true,
            paths: false,
            tags: false,
        }
    }
}

impl GroupBy {
    /// Parse a comma-separated subset of `host,name,paths,tags` (empty: one group).
    pub fn parse(s: &str) -> Result<GroupBy> {
        let mut g = GroupBy {
            host: false,
            name: false,
            paths: false,
            tags: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "host" => g.host = true,
                "name" => g.name = true,
                "paths" => g.paths = true,
                "tags" => g.tags = true,
                other => {
                    return Err(Error::invalid(format!(
                        "bad --group-by field '{other}': use host, name, paths, tags"
                    )))
                }
            }
        }
        Ok(g)
    }

    pub fn key(&self, s: &Snapshot) -> GroupKey {
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        GroupKey {
            host: self.host.then(|| s.hostname.clone()),
            name: self.name.then(|| s.name.clone()),
            paths: self.paths.then(|| sorted(&s.paths)),
            tags: self.tags.then(|| sorted(&s.tags)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    pub host: Option<String>,
    pub name: Option<String>,
    pub paths: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}

impl std::fmt::Display for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(h) = &self.host {
            parts.push(format!("host {h:?}"));
        }
        if let Some(n) = &self.name {
            parts.push(format!("name {n:?}"));
        }
        if let Some(p) = &self.paths {
            parts.push(format!("paths [{}]", p.join(", ")));
        }
        if let Some(t) = &self.tags {
            parts.push(format!("tags [{}]", t.join(", ")));
        }
        if parts.is_empty() {
            f.write_str("all snapshots")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// The verdict on one snapshot.
#[derive(Debug, Clone)]
pub struct Decision {
    pub id: SnapshotId,
    pub snapshot: Snapshot,
    pub keep: bool,
    /// Every rule that keeps it, or why it is removed.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct GroupPlan {
    pub key: GroupKey,
    /// Newest first.
    pub decisions: Vec<Decision>,
}

/// A periodic rule: how many periods remain, the last period seen, how to name a period, and
/// for the `within` kind the oldest time it reaches (it then has no count limit).
struct Bucket {
    count: Option<u32>,
    reason: String,
    last: Option<i64>,
    period: fn(&chrono::NaiveDateTime) -> i64,
    since: Option<i64>,
}

/// The periods of the periodic rules, in the order of [`Policy::within_periods`]: a number
/// unique to each hour, day, ISO week, month or year.
const PERIODS: [(&str, fn(&chrono::NaiveDateTime) -> i64); 5] = [
    ("hourly", |t| {
        i64::from(t.year()) * 1_000_000 + i64::from(t.ordinal()) * 100 + i64::from(t.hour())
    }),
    ("daily", |t| {
        i64::from(t.year()) * 1000 + i64::from(t.ordinal())
    }),
    ("weekly", |t| {
        let w = t.iso_week();
        i64::from(w.year()) * 100 + i64::from(w.week())
    }),
    ("monthly", |t| {
        i64::from(t.year()) * 100 + i64::from(t.month())
    }),
    ("yearly", |t| i64::from(t.year())),
];

/// Apply `policy` to snapshots grouped by `group_by`, with local time in `tz` and `now` for
/// Freezer's day counts. Groups are sorted by key; snapshots newest first.
pub fn apply<Tz: TimeZone>(
    snapshots: Vec<(SnapshotId, Snapshot)>,
    policy: &Policy,
    group_by: GroupBy,
    tz: &Tz,
    now: i64,
) -> Vec<GroupPlan> {
    let mut groups: std::collections::BTreeMap<GroupKey, Vec<(SnapshotId, Snapshot)>> =
        Default::default();
    for (id, s) in snapshots {
        groups.entry(group_by.key(&s)).or_default().push((id, s));
    }
    groups
        .into_iter()
        .map(|(key, mut snaps)| {
            // Newest first; the id breaks ties so the result never depends on listing order.
            snaps.sort_by(|(ia, a), (ib, b)| b.time.cmp(&a.time).then(ib.cmp(ia)));
            GroupPlan {
                key,
                decisions: decide(snaps, policy, tz, now),
            }
        })
        .collect()
}

fn decide<Tz: TimeZone>(
    snaps: Vec<(SnapshotId, Snapshot)>,
    policy: &Policy,
    tz: &Tz,
    now: i64,
) -> Vec<Decision> {
    let newest = snaps.first().map(|(_, s)| s.time.secs);
    // A clock that was wrong (or jumped back since): never measure from the future.
    let anchor = newest.map(|n| n.min(now));
    let from_future = newest.is_some_and(|n| n > now);
    let counts = [
        policy.hourly,
        policy.daily,
        policy.weekly,
        policy.monthly,
        policy.yearly,
    ];
    let counted = PERIODS
        .iter()
        .zip(counts)
        .map(|(&(name, period), count)| Bucket {
            count,
            reason: format!("{name} snapshot"),
            last: None,
            period,
            since: None,
        });
    let within = PERIODS
        .iter()
        .zip(policy.within_periods)
        .filter_map(|(&(name, period), d)| {
            let (d, n) = d.zip(anchor)?;
            Some(Bucket {
                count: Some(u32::MAX),
                reason: format!("{name} snapshot within {d}"),
                last: None,
                period,
                since: Some(d.before(tz, n)),
            })
        });
    let mut buckets: Vec<Bucket> = counted.chain(within).collect();
    let within_cutoff = policy.within.zip(anchor).map(|(d, n)| d.before(tz, n));
    let older_than_cutoff = policy
        .remove_older_than_days
        .map(|d| now - i64::from(d) * 86_400);
    let mut last_left = policy.last;
    snaps
        .into_iter()
        .map(|(id, s)| {
            let mut reasons = Vec::new();
            if let Some(n) = last_left.as_mut() {
                if *n > 0 {
                    *n -= 1;
                    reasons.push("last snapshot".to_string());
                }
            }
            let local = tz
                .timestamp_opt(s.time.secs, s.time.nanos)
                .earliest()
                .map(|d| d.naive_local());
            for b in buckets.iter_mut() {
                let (Some(n), Some(t)) = (b.count.as_mut(), local.as_ref()) else {
                    continue;
                };
                if *n == 0 || b.since.is_some_and(|since| s.time.secs < since) {
                    continue;
                }
                let p = (b.period)(t);
                if b.last != Some(p) {
                    b.last = Some(p);
                    *n -= 1;
                    reasons.push(b.reason.clone());
                }
            }
            if let (Some(cut), Some(d)) = (within_cutoff, policy.within) {
                if s.time.secs >= cut {
                    reasons.push(if from_future {
                        format!("within {d} of now (the newest snapshot is dated in the future)")
                    } else {
                        format!("within {d} of the newest snapshot")
                    });
                }
            }
            for list in &policy.tags {
                if !list.is_empty() && list.iter().all(|t| s.tags.contains(t)) {
                    reasons.push(format!("has tag(s) {}", list.join(",")));
                }
            }
            if let Some(cut) = older_than_cutoff {
                if s.time.secs >= cut {
                    reasons.push(format!(
                        "newer than {} days (--remove-older-than)",
                        policy.remove_older_than_days.unwrap_or(0)
                    ));
                }
            }
            if let Some(cut) = policy.remove_before {
                if s.time.secs >= cut {
                    reasons.push("not before --remove-from-date".to_string());
                }
            }
            let keep = !reasons.is_empty();
            if !keep {
                reasons.push("no rule keeps it".to_string());
            }
            Decision {
                id,
                snapshot: s,
                keep,
                reasons,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::snapshot::{SnapshotStats, SourceKind};
    use crate::format::tree::Timestamp;
    use crate::id::BlobId;
    use chrono::{FixedOffset, Utc};

    fn snap(time: &str, host: &str, tags: &[&str]) -> (SnapshotId, Snapshot) {
        let t = chrono::DateTime::parse_from_rfc3339(time)
            .expect("rfc3339")
            .timestamp();
        let s = Snapshot {
            time: Timestamp { secs: t, nanos: 0 },
            hostname: host.into(),
            name: String::new(),
            username: "u".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            paths: vec!["/data".into()],
            parent: None,
            source: SourceKind::Files,
            root: BlobId([0; 32]),
            stats: SnapshotStats::default(),
            program: "test".into(),
        };
        let id = SnapshotId(*blake3::hash(format!("{time}{host}").as_bytes()).as_bytes());
        (id, s)
    }

    /// Render the plan as "time keep|remove reasons" lines, the golden form.
    fn render<Tz: TimeZone>(plans: &[GroupPlan], tz: &Tz) -> String
    where
        Tz::Offset: std::fmt::Display,
    {
        let mut out = String::new();
        for g in plans {
            out.push_str(&format!("[{}]\n", g.key));
            for d in &g.decisions {
                let t = tz.timestamp_opt(d.snapshot.time.secs, 0).unwrap();
                out.push_str(&format!(
                    "{} {} {}\n",
                    t.format("%Y-%m-%d %H:%M"),
                    if d.keep { "keep  " } else { "remove" },
                    d.reasons.join("; ")
                ));
            }
        }
        out
    }

    /// Daily snapshots at 03:00 UTC from 2026-01-01 for `n` days, plus extras.
    fn daily_series(n: i64) -> Vec<(SnapshotId, Snapshot)> {
        let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T03:00:00Z").unwrap();
        (0..n)
            .map(|i| snap(&(start + chrono::Duration::days(i)).to_rfc3339(), "h", &[]))
            .collect()
    }

    #[test]
    fn keep_last_and_daily_overlap_and_list_every_reason() {
        let mut snaps = daily_series(5);
        snaps.push(snap("2026-01-05T20:00:00Z", "h", &[])); // second on the last day
        let p = Policy {
            last: Some(2),
            daily: Some(3),
            ..Default::default()
        };
        let got = render(&apply(snaps, &p, GroupBy::default(), &Utc, 0), &Utc);
        assert_eq!(
            got,
            "[host \"h\", name \"\"]\n\
             2026-01-05 20:00 keep   last snapshot; daily snapshot\n\
             2026-01-05 03:00 keep   last snapshot\n\
             2026-01-04 03:00 keep   daily snapshot\n\
             2026-01-03 03:00 keep   daily snapshot\n\
             2026-01-02 03:00 remove no rule keeps it\n\
             2026-01-01 03:00 remove no rule keeps it\n"
        );
    }

    #[test]
    fn weekly_monthly_yearly_over_fourteen_months() {
        let snaps = daily_series(425); // 2026-01-01 .. 2027-03-01
        let p = Policy {
            weekly: Some(2),
            monthly: Some(3),
            yearly: Some(2),
            ..Default::default()
        };
        let plans = apply(snaps, &p, GroupBy::default(), &Utc, 0);
        let kept: Vec<String> = plans[0]
            .decisions
            .iter()
            .filter(|d| d.keep)
            .map(|d| {
                format!(
                    "{} {}",
                    Utc.timestamp_opt(d.snapshot.time.secs, 0)
                        .unwrap()
                        .format("%Y-%m-%d"),
                    d.reasons.join("+")
                )
            })
            .collect();
        // 2027-03-01 is a Monday: newest of ISO week 9; 2027-02-28 (Sunday) closes week 8.
        assert_eq!(
            kept,
            [
                "2027-03-01 weekly snapshot+monthly snapshot+yearly snapshot",
                "2027-02-28 weekly snapshot+monthly snapshot",
                "2027-01-31 monthly snapshot",
                "2026-12-31 yearly snapshot",
            ]
        );
    }

    #[test]
    fn periods_are_local_time() {
        // 23:30 UTC on Jan 1 and 00:30 UTC on Jan 2 are the same day at UTC-5 but two in UTC.
        let snaps = vec![
            snap("2026-01-01T23:30:00Z", "h", &[]),
            snap("2026-01-02T00:30:00Z", "h", &[]),
        ];
        let p = Policy {
            daily: Some(5),
            ..Default::default()
        };
        let kept = |tz: &FixedOffset| {
            apply(snaps.clone(), &p, GroupBy::default(), tz, 0)[0]
                .decisions
                .iter()
                .filter(|d| d.keep)
                .count()
        };
        assert_eq!(kept(&FixedOffset::east_opt(0).unwrap()), 2);
        assert_eq!(kept(&FixedOffset::west_opt(5 * 3600).unwrap()), 1);
    }

    #[test]
    fn keep_within_never_measures_from_a_snapshot_dated_in_the_future() {
        let mut snaps = daily_series(10); // newest 2026-01-10 03:00
        snaps.push(snap("2027-06-01T03:00:00Z", "h", &[])); // a clock well ahead
        let p = Policy {
            within: Some(CalendarDuration::parse("3d").unwrap()),
            ..Default::default()
        };
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-10T04:00:00Z")
            .unwrap()
            .timestamp();
        let plans = apply(snaps, &p, GroupBy::default(), &Utc, now);
        let kept: Vec<_> = plans[0].decisions.iter().filter(|d| d.keep).collect();
        // The future one, and 01-10, 01-09, 01-08 (3 days before now; 01-07 03:00 is older).
        assert_eq!(kept.len(), 4, "{}", render(&plans, &Utc));
        assert!(
            kept[1].reasons[0].contains("in the future"),
            "{:?}",
            kept[1].reasons
        );
    }

    /// restic's `--keep-within-daily 7d --keep-within-weekly 1m`: one snapshot per day for a
    /// week before the newest, one per ISO week for a month; the windows are inclusive like
    /// `keep_within`, and a second snapshot of a day never counts.
    #[test]
    fn keep_within_periods_keep_one_per_period_inside_the_window() {
        let mut snaps = daily_series(60); // 2026-01-01 .. 2026-03-01, 03:00 each
        snaps.push(snap("2026-03-01T20:00:00Z", "h", &[])); // second of the newest day
        let p = Policy {
            within_periods: [
                None,
                Some(CalendarDuration::parse("7d").unwrap()),
                Some(CalendarDuration::parse("1m").unwrap()),
                None,
                None,
            ],
            ..Default::default()
        };
        let plans = apply(snaps, &p, GroupBy::default(), &Utc, i64::MAX / 2);
        let kept: Vec<String> = plans[0]
            .decisions
            .iter()
            .filter(|d| d.keep)
            .map(|d| {
                let t = Utc.timestamp_opt(d.snapshot.time.secs, 0).unwrap();
                format!("{} {}", t.format("%m-%d %H"), d.reasons.join("; "))
            })
            .collect();
        assert_eq!(
            kept,
            [
                "03-01 20 daily snapshot within 7d; weekly snapshot within 1m",
                "02-28 03 daily snapshot within 7d",
                "02-27 03 daily snapshot within 7d",
                "02-26 03 daily snapshot within 7d",
                "02-25 03 daily snapshot within 7d",
                "02-24 03 daily snapshot within 7d",
                "02-23 03 daily snapshot within 7d",
                // 2026-03-01 20:00 minus 7 days is 02-22 20:00: 02-22 03:00 is outside. ISO
                // weeks end on Sundays: 02-22, 02-15, 02-08; 02-01 is 28 days before 03-01.
                "02-22 03 weekly snapshot within 1m",
                "02-15 03 weekly snapshot within 1m",
                "02-08 03 weekly snapshot within 1m",
            ]
        );
        assert!(!p.is_empty());
    }

    #[test]
    fn keep_within_is_relative_to_newest_and_calendar_based() {
        let d = CalendarDuration::parse("1m2d").unwrap();
        assert_eq!(
            d,
            CalendarDuration {
                months: 1,
                days: 2,
                ..Default::default()
            }
        );
        let snaps = daily_series(90); // newest 2026-03-31 03:00
        let p = Policy {
            within: Some(d),
            ..Default::default()
        };
        let plans = apply(snaps, &p, GroupBy::default(), &Utc, i64::MAX / 2);
        let kept: Vec<_> = plans[0].decisions.iter().filter(|d| d.keep).collect();
        // 2026-03-31 minus one month = 2026-02-28, minus 2 days = 2026-02-26 03:00 (inclusive).
        let oldest = Utc
            .timestamp_opt(kept.last().unwrap().snapshot.time.secs, 0)
            .unwrap();
        assert_eq!(
            oldest.format("%Y-%m-%d %H:%M").to_string(),
            "2026-02-26 03:00"
        );
        assert_eq!(kept.len(), 34);
        assert_eq!(kept[0].reasons, ["within 1m2d of the newest snapshot"]);
        for bad in ["", "5", "1x", "d", "1d1d", "-1d"] {
            assert!(CalendarDuration::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            CalendarDuration::parse("1y2m3d4h").unwrap().to_string(),
            "1y2m3d4h"
        );
    }

    #[test]
    fn groups_by_host_and_tags_keep_rule() {
        let snaps = vec![
            snap("2026-01-01T01:00:00Z", "a", &["keep", "x"]),
            snap("2026-01-02T01:00:00Z", "a", &[]),
            snap("2026-01-03T01:00:00Z", "a", &[]),
            snap("2026-01-01T02:00:00Z", "b", &["x"]),
            snap("2026-01-02T02:00:00Z", "b", &[]),
        ];
        let p = Policy {
            last: Some(1),
            tags: vec![vec!["keep".into(), "x".into()]],
            ..Default::default()
        };
        let got = render(&apply(snaps.clone(), &p, GroupBy::default(), &Utc, 0), &Utc);
        assert_eq!(
            got,
            "[host \"a\", name \"\"]\n\
             2026-01-03 01:00 keep   last snapshot\n\
             2026-01-02 01:00 remove no rule keeps it\n\
             2026-01-01 01:00 keep   has tag(s) keep,x\n\
             [host \"b\", name \"\"]\n\
             2026-01-02 02:00 keep   last snapshot\n\
             2026-01-01 02:00 remove no rule keeps it\n"
        );
        // One group: only the newest of all five is "last".
        let one = apply(snaps, &p, GroupBy::parse("").unwrap(), &Utc, 0);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].decisions.iter().filter(|d| d.keep).count(), 2);
        assert!(GroupBy::parse("host,bogus").is_err());
    }

    #[test]
    fn freezer_remove_older_than_and_from_date() {
        let snaps = daily_series(10); // 2026-01-01 .. 2026-01-10, 03:00
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-10T12:00:00Z")
            .unwrap()
            .timestamp();
        let p = Policy {
            remove_older_than_days: Some(3),
            ..Default::default()
        };
        let plans = apply(snaps.clone(), &p, GroupBy::default(), &Utc, now);
        let kept = plans[0].decisions.iter().filter(|d| d.keep).count();
        assert_eq!(kept, 3, "Jan 8, 9, 10 are within 3 days of Jan 10 12:00");
        let p = Policy {
            remove_before: Some(
                chrono::DateTime::parse_from_rfc3339("2026-01-05T03:00:00Z")
                    .unwrap()
                    .timestamp(),
            ),
            ..Default::default()
        };
        let plans = apply(snaps, &p, GroupBy::default(), &Utc, now);
        assert_eq!(plans[0].decisions.iter().filter(|d| d.keep).count(), 6);
        assert!(plans[0].decisions[9].reasons == ["no rule keeps it"]);
    }

    #[test]
    fn zero_counts_keep_nothing_and_hourly_buckets() {
        let snaps = vec![
            snap("2026-01-01T10:05:00Z", "h", &[]),
            snap("2026-01-01T10:55:00Z", "h", &[]),
            snap("2026-01-01T11:05:00Z", "h", &[]),
        ];
        let p = Policy {
            last: Some(0),
            hourly: Some(10),
            ..Default::default()
        };
        let plans = apply(snaps, &p, GroupBy::default(), &Utc, 0);
        let keeps: Vec<bool> = plans[0].decisions.iter().map(|d| d.keep).collect();
        assert_eq!(keeps, [true, true, false]);
    }
}
