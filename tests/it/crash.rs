//! Crash harness: `rime backup` and `rime prune` are killed with SIGKILL at many points; after
//! each kill the repository checks clean (warnings allowed: unindexed packs), every snapshot
//! reported saved restores bit for bit, and the next backup works. tests/it/crash_every_write.rs
//! kills (and fails) them at every one of their writes instead, and fills the disk.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

fn spawn(r: &Repo, args: &[&std::ffi::OsStr]) -> std::process::Child {
    Command::new(rime_bin())
        .arg("--repo")
        .arg(&r.path)
        .arg("--password-file")
        .arg(&r.pw_file)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Run to completion, or SIGKILL after `after`. Returns true if it finished by itself.
fn run_or_kill(r: &Repo, args: &[&std::ffi::OsStr], after: Duration) -> bool {
    let mut c = spawn(r, args);
    let t = Instant::now();
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            assert!(st.success(), "rime {args:?} failed on its own");
            return true;
        }
        if t.elapsed() >= after {
            c.kill().unwrap();
            c.wait().unwrap();
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Mutate the source: rewrite a few files, add one, delete one.
fn mutate(src: &Path, round: u64) {
    for i in 0..3 {
        let k = (round * 7 + i * 5) % 24;
        write_random_file(
            &src.join(format!("f{k}")),
            round * 100 + i,
            150_000 + (k as usize) * 20_000,
        );
    }
    write_random_file(&src.join(format!("new{round}")), round * 1000, 400_000);
    let _ = fs::remove_file(src.join(format!("new{}", round.saturating_sub(3))));
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Every saved snapshot restores exactly the tree it was taken of.
fn verify(r: &Repo, saved: &BTreeMap<String, PathBuf>, round: u64) {
    let c = r.run(&["check"]);
    assert!(
        c.success(),
        "check after kill (round {round}):\n{}",
        c.stderr
    );
    let existing = r.snapshot_ids();
    for (id, copy) in saved {
        assert!(
            existing.contains(id),
            "snapshot {id} vanished (round {round})"
        );
        let t = r.fresh(&format!("restore-{round}-{}", &id[..8]));
        r.restore(id, &t, &[]);
        compare_trees(copy, &t);
        fs::remove_dir_all(&t).unwrap();
    }
}

#[test]
fn sigkill_during_backup_and_prune_loses_nothing_reported_saved() {
    let r = Repo::new();
    let src = r.dir("src");
    for k in 0..24 {
        write_random_file(
            &src.join(format!("f{k}")),
            5000 + k,
            150_000 + (k as usize) * 20_000,
        );
    }
    let mut saved: BTreeMap<String, PathBuf> = BTreeMap::new();
    let keep = |r: &Repo, saved: &mut BTreeMap<String, PathBuf>, id: String, n: usize| {
        let copy = r.dir(&format!("copy{n}"));
        fs::remove_dir_all(&copy).unwrap();
        cp_a(&src, &copy);
        saved.insert(id, copy);
    };
    // A full run, timed, to spread the kills over a backup's life.
    let t = Instant::now();
    let id = r.backup(&[&src], &[])["id"].as_str().unwrap().to_string();
    let full = t.elapsed().max(Duration::from_millis(50));
    keep(&r, &mut saved, id, 0);
    let mut rng = Lcg(0x5eed);
    let backup_args = [os("backup"), os("--json"), os(&src)];
    let backup_args: Vec<&std::ffi::OsStr> = backup_args.iter().map(|a| a.as_os_str()).collect();
    let mut kills = 0;
    let mut incr = full;
    for round in 1..=14u64 {
        mutate(&src, round);
        // Kill a backup somewhere in its run (new data makes it slower than the timed one).
        let at = Duration::from_micros(rng.next() % (incr.as_micros() as u64 + 1));
        if !run_or_kill(&r, &backup_args, at) {
            kills += 1;
        }
        verify(&r, &saved, round);
        // The next backup after a crash works, and is now "reported saved".
        let t = Instant::now();
        let id = r.backup(&[&src], &[])["id"].as_str().unwrap().to_string();
        incr = t.elapsed();
        keep(&r, &mut saved, id, round as usize);
        // Every third round: forget the oldest, then a prune killed at a random point.
        if round % 3 == 0 {
            let out = r.run(&["forget", "--keep-last", "3", "--json"]);
            out.ok();
            let kept = r.snapshot_ids();
            saved.retain(|id, _| kept.contains(id));
            let at = Duration::from_micros(rng.next() % (incr.as_micros() as u64 + 1));
            let prune = PRUNE_ALL_UNUSED_NOW.map(std::ffi::OsStr::new);
            if !run_or_kill(&r, &prune, at) {
                kills += 1;
            }
            verify(&r, &saved, round);
            // A complete prune after the killed one also keeps everything.
            r.run(&["prune", "--grace-minutes", "0"]).ok();
            verify(&r, &saved, round);
        }
    }
    eprintln!(
        "crash harness: {kills} runs killed, {} snapshots verified",
        saved.len()
    );
    assert!(
        kills >= 8,
        "too few runs were actually killed ({kills}) to mean anything"
    );
    // Two final prunes with nothing running (marking, then deleting) remove every leftover of
    // killed runs. No repacking here: that would mark packs anew.
    r.run(&["prune", "--grace-minutes", "0", "--max-unused", "100%"])
        .ok();
    r.run(&["prune", "--grace-minutes", "0", "--max-unused", "100%"])
        .ok();
    let c = r.run(&["check", "--read-data", "--json"]);
    c.ok();
    assert!(
        c.json()["warnings"].as_array().unwrap().is_empty(),
        "leftovers after two prunes: {}",
        c.stdout
    );
    verify(&r, &saved, 99);
}
