//! Random trees through a repository's whole life: several generations of a random tree, each
//! backed up with a fake date, random retention policies (`forget`) and `prune` runs in between
//! and at the end, then every snapshot that is left is restored and compared exactly (bytes,
//! types, modes, mtimes, symlink targets) with a copy of the tree it was taken of, and
//! `check --read-data` must be clean.
//!
//! A few cases by default so the suite stays fast; for a long run:
//!
//! ```sh
//! PROPTEST_CASES=500 cargo test -p rime-cli --test it proptest_lifecycle -- --nocapture
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use proptest::prelude::*;

use crate::proptest_trees::{bytes_of, content, finish_dirs, materialise, mtime, tree, Content};
use crate::util::*;

/// One change to the tree between two backups.
#[derive(Debug, Clone)]
enum Change {
    /// Rewrite file `i % files` with new bytes and mtime.
    Rewrite(usize, usize, Content, (i64, u32)),
    /// Delete file `i % files`.
    Delete(usize),
    /// A new file in directory `i % dirs`.
    Add(usize, usize, Content),
}

#[derive(Debug, Clone)]
enum Policy {
    Last(u32),
    Hourly(u32),
    Daily(u32),
    Weekly(u32),
    /// `--keep-within` hours.
    Within(u32),
    /// Two rules at once: a snapshot is kept if either keeps it.
    LastAndDaily(u32, u32),
}

impl Policy {
    fn args(&self) -> Vec<String> {
        let a = |flag: &str, n: u32| vec![format!("--keep-{flag}"), n.to_string()];
        match self {
            Policy::Last(n) => a("last", *n),
            Policy::Hourly(n) => a("hourly", *n),
            Policy::Daily(n) => a("daily", *n),
            Policy::Weekly(n) => a("weekly", *n),
            Policy::Within(h) => vec!["--keep-within".into(), format!("{h}h")],
            Policy::LastAndDaily(l, d) => [a("last", *l), a("daily", *d)].concat(),
        }
    }
}

/// What happens after a generation's backup.
#[derive(Debug, Clone)]
struct Upkeep {
    policy: Policy,
    /// `prune --max-unused` in percent.
    max_unused: u32,
}

#[derive(Debug, Clone)]
struct Generation {
    /// Hours since the previous snapshot (fake clock).
    gap_hours: u32,
    changes: Vec<Change>,
    upkeep: Option<Upkeep>,
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (any::<usize>(), 0usize..120_000, content(), mtime())
            .prop_map(|(i, size, c, m)| Change::Rewrite(i, size, c, m)),
        1 => any::<usize>().prop_map(Change::Delete),
        2 => (any::<usize>(), 0usize..60_000, content()).prop_map(|(d, size, c)| Change::Add(d, size, c)),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        (1u32..5).prop_map(Policy::Last),
        (1u32..6).prop_map(Policy::Hourly),
        (1u32..5).prop_map(Policy::Daily),
        (1u32..3).prop_map(Policy::Weekly),
        (1u32..200).prop_map(Policy::Within),
        (1u32..3, 1u32..4).prop_map(|(l, d)| Policy::LastAndDaily(l, d)),
    ]
}

fn upkeep() -> impl Strategy<Value = Upkeep> {
    (
        policy(),
        prop_oneof![Just(0u32), Just(5), Just(50), Just(100)],
    )
        .prop_map(|(policy, max_unused)| Upkeep { policy, max_unused })
}

fn generation() -> impl Strategy<Value = Generation> {
    (
        prop_oneof![Just(1u32), Just(5), Just(24), Just(72), Just(24 * 8)],
        prop::collection::vec(change(), 1..5),
        prop::option::weighted(0.3, upkeep()),
    )
        .prop_map(|(gap_hours, changes, upkeep)| Generation {
            gap_hours,
            changes,
            upkeep,
        })
}

#[derive(Debug, Clone)]
struct Life {
    root: crate::proptest_trees::Node,
    generations: Vec<Generation>,
    last: Upkeep,
}

fn life() -> impl Strategy<Value = Life> {
    (tree(), prop::collection::vec(generation(), 2..6), upkeep()).prop_map(
        |(root, generations, last)| Life {
            root,
            generations,
            last,
        },
    )
}

/// "YYYY-MM-DDThh:mm:ss" for `backup --time` (read as local time: only order and spacing
/// matter here), from seconds since 1970 (civil-from-days, proleptic Gregorian).
fn time_arg(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[test]
fn time_arg_formats_civil_dates() {
    assert_eq!(time_arg(0), "1970-01-01T00:00:00");
    assert_eq!(time_arg(951_782_400 + 3661), "2000-02-29T01:01:01");
    assert_eq!(time_arg(1_767_268_800), "2026-01-01T12:00:00");
}

/// Apply one change (a copy of the tree is saved after each backup, so directory mtimes
/// changed here are part of what the next snapshot must restore).
fn apply(change: &Change, files: &mut Vec<PathBuf>, dirs: &[PathBuf], serial: &mut u32) {
    match change {
        Change::Rewrite(i, size, c, m) if !files.is_empty() => {
            let f = &files[i % files.len()];
            let perm = fs::metadata(f).unwrap().permissions();
            fs::write(f, bytes_of(*size, c)).unwrap();
            fs::set_permissions(f, perm).unwrap();
            set_mtime(f, m.0, m.1);
        }
        Change::Delete(i) if !files.is_empty() => {
            let f = files.remove(i % files.len());
            fs::remove_file(f).unwrap();
        }
        Change::Add(d, size, c) => {
            *serial += 1;
            let f = dirs[d % dirs.len()].join(format!("added-{serial}"));
            fs::write(&f, bytes_of(*size, c)).unwrap();
            files.push(f);
        }
        _ => {}
    }
}

/// `forget` with the policy, then two prunes (mark, then delete: grace 0); `saved` keeps
/// the snapshots that are left.
fn upkeep_run(r: &Repo, u: &Upkeep, saved: &mut BTreeMap<String, PathBuf>) {
    let before: Vec<String> = r.snapshot_ids();
    let mut args = vec!["forget".to_string(), "--json".to_string()];
    args.extend(u.policy.args());
    r.run(&args).ok();
    let after = r.snapshot_ids();
    assert!(
        !after.is_empty() && after.last() == before.last(),
        "{:?} removed the newest snapshot: before {before:?}, after {after:?}",
        u.policy
    );
    if let Policy::Last(n) = u.policy {
        assert_eq!(after.len(), before.len().min(n as usize), "{:?}", u.policy);
    }
    saved.retain(|id, _| after.contains(id));
    for _ in 0..2 {
        r.run(&[
            "prune",
            "--grace-minutes",
            "0",
            "--max-unused",
            &format!("{}%", u.max_unused),
        ])
        .ok();
    }
}

fn verify_all(r: &Repo, saved: &BTreeMap<String, PathBuf>, tag: &str) {
    let c = r.run(&["check", "--read-data", "--json"]);
    c.ok();
    let left = r.snapshot_ids();
    assert_eq!(
        left.len(),
        saved.len(),
        "snapshots left {left:?}, expected {:?}",
        saved.keys()
    );
    for (id, copy) in saved {
        let t = r.fresh(&format!("restore-{tag}-{}", &id[..8]));
        r.restore(id, &t, &[]);
        compare_trees(copy, &t);
        fs::remove_dir_all(&t).unwrap();
    }
}

fn run_life(l: &Life) {
    let r = Repo::new();
    let src = r.tmp.path().join("src");
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    materialise(&src, &l.root, &mut files, &mut dirs);
    finish_dirs(&src, &l.root);
    let mut saved: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut clock: i64 = 1_767_268_800; // 2026-01-01 12:00 UTC
    let mut serial = 0;
    let snap = |r: &Repo, saved: &mut BTreeMap<String, PathBuf>, clock: i64, n: usize| {
        let id = r.backup(&[&src], &["--time", &time_arg(clock)])["id"]
            .as_str()
            .unwrap()
            .to_string();
        let copy = r.tmp.path().join(format!("copy-{n}"));
        cp_a(&src, &copy);
        saved.insert(id, copy);
    };
    snap(&r, &mut saved, clock, 0);
    for (g, generation) in l.generations.iter().enumerate() {
        for c in &generation.changes {
            apply(c, &mut files, &dirs, &mut serial);
        }
        clock += i64::from(generation.gap_hours) * 3600;
        snap(&r, &mut saved, clock, g + 1);
        if let Some(u) = &generation.upkeep {
            upkeep_run(&r, u, &mut saved);
            verify_all(&r, &saved, &format!("g{g}"));
        }
    }
    upkeep_run(&r, &l.last, &mut saved);
    verify_all(&r, &saved, "end");
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 32, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_survive_forget_and_prune(l in life()) {
        run_life(&l);
    }
}
