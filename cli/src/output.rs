//! Formatting helpers for human output.

use chrono::{Local, TimeZone};
use rime_engine::format::tree::Timestamp;

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// Local time, as "2026-11-21 07:01:40".
pub fn time(t: Timestamp) -> String {
    match Local.timestamp_opt(t.secs, t.nanos).single() {
        Some(d) => d.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => format!("@{}", t.secs),
    }
}

/// RFC 3339 with offset, for JSON.
pub fn time_rfc3339(t: Timestamp) -> String {
    match Local.timestamp_opt(t.secs, t.nanos).single() {
        Some(d) => d.to_rfc3339(),
        None => t.secs.to_string(),
    }
}

/// Parse "YYYY-MM-DDThh:mm:ss" (local time, as Freezer's --restore-from-date) or with a space;
/// a time with a zone (RFC 3339: `Z`, `+02:00`) is taken as that zone says. A bare date is the
/// end of that day (23:59:59: "as of" that day).
pub fn parse_date(s: &str) -> rime_engine::Result<i64> {
    parse_date_or_day(s, (23, 59, 59))
}

/// [`parse_date`], but a bare date is the start of that day: for cut-offs such as "remove
/// what was taken before 2026-01-05", which must not take that day's own snapshots.
pub fn parse_date_day_start(s: &str) -> rime_engine::Result<i64> {
    parse_date_or_day(s, (0, 0, 0))
}

fn parse_date_or_day(s: &str, (h, m, sec): (u32, u32, u32)) -> rime_engine::Result<i64> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(d.timestamp());
    }
    let norm = s.replace(' ', "T");
    let naive = chrono::NaiveDateTime::parse_from_str(&norm, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(&norm, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(h, m, sec).expect("a valid time of day"))
        })
        .map_err(|_| {
            rime_engine::Error::invalid(format!(
                "bad date '{s}': use YYYY-MM-DDThh:mm:ss (local time) or RFC 3339 (2026-11-21T07:00:00Z)"
            ))
        })?;
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|d| d.timestamp())
        .ok_or_else(|| {
            rime_engine::Error::invalid(format!("date '{s}' does not exist in the local time zone"))
        })
}

pub fn mode_string(kind: rime_engine::format::tree::NodeKind, mode: u32) -> String {
    use rime_engine::format::tree::NodeKind::*;
    let t = match kind {
        Dir => 'd',
        Symlink => 'l',
        Fifo => 'p',
        CharDevice => 'c',
        BlockDevice => 'b',
        Socket => 's',
        File => '-',
    };
    let mut s = String::from(t);
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        s.push(if mode & (1 << (8 - i)) != 0 { c } else { '-' });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_with_a_zone_are_absolute_and_local_ones_local() {
        let utc = chrono::Utc
            .with_ymd_and_hms(2026, 10, 1, 1, 0, 0)
            .unwrap()
            .timestamp();
        assert_eq!(parse_date("2026-10-01T01:00:00Z").unwrap(), utc);
        assert_eq!(parse_date("2026-10-01T03:00:00+02:00").unwrap(), utc);
        let local = Local
            .with_ymd_and_hms(2026, 10, 1, 1, 0, 0)
            .earliest()
            .unwrap()
            .timestamp();
        assert_eq!(parse_date("2026-10-01T01:00:00").unwrap(), local);
        assert_eq!(parse_date("2026-10-01 01:00:00").unwrap(), local);
        let e = parse_date("01/10/2026").unwrap_err().to_string();
        assert!(e.contains("RFC 3339"), "{e}");
    }
}
