//! Crash harness, deterministic half: `rime backup` and `rime prune` die at *every* write they
//! make (the `RIME_TEST_KILL_AT_WRITE=N` test hook in engine/src/storage/kill_hook.rs aborts
//! the process at its Nth change to the repository; N = 1, 2, ... until a run completes), and
//! the storage fails from some write on (`RIME_TEST_FAIL_AT_WRITE=N`, as a storage that goes
//! read-only) or runs full (a small tmpfs). After each: `check` passes (warnings allowed),
//! every snapshot reported saved restores bit for bit, the next backup and a complete prune
//! work. tests/it/crash.rs kills at random times instead.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use crate::util::*;

const KILL: &str = "RIME_TEST_KILL_AT_WRITE";
const FAIL: &str = "RIME_TEST_FAIL_AT_WRITE";

/// `rime --repo R --password-file P ARGS` with one more environment variable.
fn run_with(r: &Repo, args: &[&OsStr], env: (&str, &str)) -> Out {
    let mut all = vec![
        os("--repo"),
        os(&r.path),
        os("--password-file"),
        os(&r.pw_file),
    ];
    all.extend(args.iter().map(os));
    rime_raw(all, &[(env.0, OsStr::new(env.1))])
}

/// Replace the repository with a copy of `state`.
fn reset(r: &Repo, state: &Path) {
    fs::remove_dir_all(&r.path).unwrap();
    cp_a(state, &r.path);
}

/// `check` passes and every snapshot in `saved` is still there and restores exactly.
fn verify(r: &Repo, saved: &BTreeMap<String, PathBuf>, what: &str) {
    let c = r.run(&["check"]);
    assert!(c.success(), "check after {what}:\n{}", c.stderr);
    let existing = r.snapshot_ids();
    for (id, copy) in saved {
        assert!(existing.contains(id), "snapshot {id} vanished after {what}");
        let t = r.fresh("verify");
        r.restore(id, &t, &[]);
        compare_trees(copy, &t);
        fs::remove_dir_all(&t).unwrap();
    }
}

/// After a broken run: the next backup (of `src`) works and restores, and two complete prunes
/// leave a repository whose `check --read-data` has no errors.
fn recover(r: &Repo, src: &Path, what: &str) {
    let id = r.backup(&[src], &[])["id"].as_str().unwrap().to_string();
    let t = r.fresh("recover");
    r.restore(&id, &t, &[]);
    compare_trees(src, &t);
    fs::remove_dir_all(&t).unwrap();
    for _ in 0..2 {
        r.run(&["prune", "--grace-minutes", "0"]).ok();
    }
    let c = r.run(&["check", "--read-data"]);
    assert!(c.success(), "check --read-data after {what}:\n{}", c.stderr);
}

/// Run `args` with the hook armed at N = 1, 2, ... from a copy of `state` until a run
/// completes; after each broken run, `verify` and `recover`. Returns the number of writes.
fn every_write(
    r: &Repo,
    state: &Path,
    args: &[&OsStr],
    saved: &BTreeMap<String, PathBuf>,
    src: &Path,
    hook: &str,
) -> u32 {
    for n in 1..200u32 {
        reset(r, state);
        let out = run_with(r, args, (hook, &n.to_string()));
        if out.success() {
            assert!(
                n > 2,
                "{args:?} made fewer than 2 writes: is the hook wired?"
            );
            return n - 1;
        }
        let what = format!("{args:?} with {hook}={n}");
        if hook == KILL {
            assert_eq!(out.code, -1, "{what} was not killed: {}", out.stderr);
        } else {
            assert!(
                out.code != 101 && !out.stderr.contains("panicked"),
                "{what} panicked: {}",
                out.stderr
            );
            assert!(
                out.stderr.contains("test hook"),
                "{what} does not report the storage error: {}",
                out.stderr
            );
        }
        verify(r, saved, &what);
        recover(r, src, &what);
    }
    panic!("{args:?} never completed");
}

fn files(src: &Path, round: u64) {
    for k in 0..6u64 {
        if (k + round).is_multiple_of(3) {
            write_random_file(&src.join(format!("f{k}")), round * 10 + k, 60_000);
        }
    }
    write_random_file(&src.join(format!("new{round}")), round * 100, 30_000);
}

#[test]
fn backup_and_prune_killed_or_failing_at_every_write_lose_nothing() {
    let r = Repo::new();
    let src = r.dir("src");
    for k in 0..6u64 {
        write_random_file(&src.join(format!("f{k}")), 900 + k, 60_000);
    }
    let mut saved = BTreeMap::new();
    let keep = |r: &Repo, saved: &mut BTreeMap<String, PathBuf>, n: u32| {
        let id = r.backup(&[&src], &[])["id"].as_str().unwrap().to_string();
        let copy = r.tmp.path().join(format!("copy{n}"));
        cp_a(&src, &copy);
        saved.insert(id, copy);
    };
    keep(&r, &mut saved, 0);
    files(&src, 1);
    keep(&r, &mut saved, 1);
    files(&src, 2);
    // Backup: from a repository with two snapshots, a backup of the changed tree.
    let state = r.tmp.path().join("state-backup");
    cp_a(&r.path, &state);
    let backup = [os("backup"), os(&src)];
    let backup: Vec<&OsStr> = backup.iter().map(|a| a.as_os_str()).collect();
    let b_kill = every_write(&r, &state, &backup, &saved, &src, KILL);
    let b_fail = every_write(&r, &state, &backup, &saved, &src, FAIL);

    // Prune: the oldest snapshot forgotten, so a prune marks, repacks (0% unused allowed) and,
    // in a second run, deletes.
    reset(&r, &state);
    keep(&r, &mut saved, 2);
    let oldest = r.snapshot_ids()[0].clone();
    r.run(&["forget", "--keep-last", "2"]).ok();
    saved.remove(&oldest);
    assert_eq!(saved.len(), 2);
    files(&src, 3);
    let prune = PRUNE_ALL_UNUSED_NOW.map(OsStr::new);
    let state1 = r.tmp.path().join("state-prune1");
    cp_a(&r.path, &state1);
    let p1_kill = every_write(&r, &state1, &prune, &saved, &src, KILL);
    let p1_fail = every_write(&r, &state1, &prune, &saved, &src, FAIL);
    // The second prune deletes what the first marked.
    reset(&r, &state1);
    r.run(&prune).ok();
    let state2 = r.tmp.path().join("state-prune2");
    cp_a(&r.path, &state2);
    let p2_kill = every_write(&r, &state2, &prune, &saved, &src, KILL);
    eprintln!(
        "killed at every write: backup {b_kill} writes, prune (mark) {p1_kill}, prune (delete) {p2_kill}; \
         failing from every write: backup {b_fail}, prune {p1_fail}"
    );
    assert!(
        p1_kill > 3 && p2_kill > 1,
        "prunes wrote too little to test anything"
    );
}

/// A full disk under `prune` and `backup`: both fail naming the problem, nothing saved is
/// lost, and with space again both complete.
#[test]
fn full_disk_during_prune_and_backup_loses_nothing() {
    let outer = tempfile::tempdir().unwrap();
    let mnt = outer.path().join("mnt");
    mkdir(&mnt);
    let Some(_mount) = mount_tmpfs(&mnt, "6m") else {
        return;
    };
    let r = Repo::at(
        tempfile::tempdir().unwrap(),
        mnt.join("repo"),
        &["--insecure-fast-kdf"],
    );
    let src = outer.path().join("src");
    mkdir(&src);
    let mut saved = BTreeMap::new();
    for round in 0..3u64 {
        for k in 0..4u64 {
            write_random_file(
                &src.join(format!("f{k}")),
                round * 10 + k,
                if k == 0 { 10_000 } else { 300_000 },
            );
        }
        let id = r.backup(&[&src], &[])["id"].as_str().unwrap().to_string();
        let copy = outer.path().join(format!("copy{round}"));
        cp_a(&src, &copy);
        saved.insert(id, copy);
    }
    let oldest = r.snapshot_ids()[0].clone();
    r.run(&["forget", "--keep-last", "2"]).ok();
    saved.remove(&oldest);

    // Fill the disk to the last few KiB.
    let mut free = free_bytes(&mnt);
    let mut n = 0;
    while free > 8192 {
        write(
            &mnt.join(format!("filler{n}")),
            vec![0u8; (free - 4096).min(1 << 20) as usize],
        );
        n += 1;
        free = free_bytes(&mnt);
    }
    let out = r.run(&["prune", "--grace-minutes", "0", "--max-unused", "0%"]);
    let pruned = out.success();
    if !pruned {
        assert!(
            out.stderr.to_lowercase().contains("no space"),
            "prune on a full disk does not say so: {}",
            out.stderr
        );
    }
    verify(&r, &saved, "prune on a full disk");
    write_random_file(&src.join("f1"), 77, 500_000);
    let out = r.run(&[os("backup"), os(&src)]);
    out.failed();
    assert!(
        out.stderr.to_lowercase().contains("no space"),
        "backup on a full disk does not say so: {}",
        out.stderr
    );
    verify(&r, &saved, "backup on a full disk");

    for i in 0..n {
        fs::remove_file(mnt.join(format!("filler{i}"))).unwrap();
    }
    recover(&r, &src, "a full disk");
    verify(&r, &saved, "a full disk, then space again");
    eprintln!(
        "prune on a full disk: {}",
        if pruned {
            "completed"
        } else {
            "failed cleanly"
        }
    );
}

/// Free bytes of the file system holding `p` (df).
fn free_bytes(p: &Path) -> u64 {
    let o = run_cmd(
        "df",
        &[
            OsStr::new("-B1"),
            OsStr::new("--output=avail"),
            p.as_os_str(),
        ],
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df output")
}
