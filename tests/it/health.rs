//! Keeping repositories healthy: forget, prune, locks, partial data checks, through the real
//! binary.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::*;

fn pack_bytes(r: &Repo) -> u64 {
    r.packs()
        .iter()
        .map(|(_, p)| fs::metadata(p).unwrap().len())
        .sum()
}

#[test]
fn forget_dry_run_lists_reasons_then_removes_only_snapshot_files() {
    let r = Repo::new();
    let src = r.dir("src");
    write_random_file(&src.join("f"), 1, 100_000);
    let a1 = r.backup(&[&src], &["--host", "a", "--tag", "keep"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a2 = r.backup(&[&src], &["--host", "a"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a3 = r.backup(&[&src], &["--host", "a"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let b1 = r.backup(&[&src], &["--host", "b"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let packs_before = r.packs();

    let out = r.run(&[
        "forget",
        "--keep-last",
        "1",
        "--keep-tag",
        "keep",
        "--dry-run",
        "--json",
    ]);
    out.ok();
    let v = out.json();
    let mut verdicts = std::collections::HashMap::new();
    for g in v["groups"].as_array().unwrap() {
        for s in g["snapshots"].as_array().unwrap() {
            verdicts.insert(
                s["id"].as_str().unwrap().to_string(),
                (s["keep"].as_bool().unwrap(), s["reasons"].clone()),
            );
        }
    }
    assert_eq!(
        v["groups"].as_array().unwrap().len(),
        2,
        "grouped by host and name: {v}"
    );
    assert_eq!(
        verdicts[&a1],
        (true, serde_json::json!(["has tag(s) keep"]))
    );
    assert_eq!(
        verdicts[&a2],
        (false, serde_json::json!(["no rule keeps it"]))
    );
    assert_eq!(verdicts[&a3], (true, serde_json::json!(["last snapshot"])));
    assert_eq!(verdicts[&b1], (true, serde_json::json!(["last snapshot"])));
    assert_eq!(r.snapshot_ids().len(), 4, "dry run removes nothing");

    let out = r.run(&["forget", "--keep-last", "1", "--keep-tag", "keep"]);
    out.ok();
    assert!(out.stdout.contains("removed 1 snapshot"), "{}", out.stdout);
    let mut left = r.snapshot_ids();
    left.sort();
    let mut want = vec![a1, a3, b1];
    want.sort();
    assert_eq!(left, want);
    assert_eq!(r.packs(), packs_before, "forget never touches packs");

    // No rule at all is refused; a bad duration names itself.
    r.run(&["forget"]).error_names(&["no retention rule"]);
    r.run(&["forget", "--keep-within", "3x"])
        .error_names(&["3x"]);
    // Freezer: nothing is older than a day.
    r.run(&["forget", "--remove-older-than", "1"]).ok();
    assert_eq!(r.snapshot_ids().len(), 3);
}

#[test]
fn prune_marks_then_deletes_and_repacks_keeping_every_snapshot_exact() {
    let r = Repo::new();
    let src = r.dir("src");
    // Two files in one backup share one data pack; the second backup drops one of them.
    for i in 0..40 {
        write_random_file(&src.join(format!("gone{i}")), 1000 + i, 75_000);
        write_random_file(&src.join(format!("stays{i}")), 2000 + i, 75_000);
    }
    let first = r.backup(&[&src], &[])["id"].as_str().unwrap().to_string();
    for i in 0..40 {
        fs::remove_file(src.join(format!("gone{i}"))).unwrap();
    }
    write_random_file(&src.join("new"), 4, 2_000_000);
    r.backup(&[&src], &[]);
    // A third, separate pack nobody will need.
    let other = r.dir("other");
    write_random_file(&other.join("x"), 5, 2_000_000);
    let x = r.backup(&[&other], &["-N", "other"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    r.run(&["forget", "--keep-last", "1", "-N", ""]).ok();
    // Emptying a group needs saying so.
    r.run(&["forget", "--keep-last", "0", "-N", "other"])
        .error_names(&["refusing to remove every snapshot"]);
    assert!(r.snapshot_ids().contains(&x), "removed although refused");
    r.run(&[
        "forget",
        "--keep-last",
        "0",
        "-N",
        "other",
        "--unsafe-allow-remove-all",
    ])
    .ok();
    assert!(!r.snapshot_ids().contains(&first) && !r.snapshot_ids().contains(&x));
    let before = pack_bytes(&r);

    let dry = r.run(&["prune", "--dry-run", "--json"]);
    dry.ok();
    let d = dry.json();
    assert!(d["packs_marked"].as_u64().unwrap() >= 2, "{d}");
    assert_eq!(pack_bytes(&r), before, "dry run changes nothing");

    let p1 = r.run(&["prune", "--grace-minutes", "0", "--json"]);
    p1.ok();
    let v1 = p1.json();
    assert!(
        v1["packs_repacked"].as_u64().unwrap() >= 1,
        "the half-used pack is repacked: {v1}"
    );
    assert_eq!(v1["packs_deleted"], 0, "phase one only marks: {v1}");
    assert_eq!(r.objects("pending").len(), 1);
    // One bit per stored blob.
    assert_eq!(
        v1["bitmap_bytes"].as_u64().unwrap(),
        v1["blobs"].as_u64().unwrap().div_ceil(64) * 8
    );
    let c = r.run(&["check", "--read-data"]);
    assert!(
        c.success(),
        "{}",
        c.stderr
            .lines()
            .filter(|l| l.starts_with("error"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Marked packs are out of the index on purpose: a note, not an "interrupted backup" warning.
    let c = r.run(&["check", "--json"]);
    c.ok();
    let v = c.json();
    assert!(v["warnings"].as_array().unwrap().is_empty(), "{v}");
    assert!(
        v["notes"][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("{} pack(s) marked by prune", v1["packs_marked"])),
        "{v}"
    );
    let t = r.fresh("t1");
    r.restore("latest", &t, &[]);
    compare_trees(&src, &t);

    let p2 = r.run(&["prune", "--grace-minutes", "0", "--json"]);
    p2.ok();
    let v2 = p2.json();
    assert_eq!(v2["packs_deleted"], v1["packs_marked"], "{v2}");
    // The second run deletes what the first marked. It may mark something of its own (seen
    // once in a loaded parallel run: which packs end up partly used depends on thread timing),
    // and then, only then, leaves its own pending record.
    let marked_again = v2["packs_marked"].as_u64().unwrap() > 0;
    assert_eq!(
        r.objects("pending").len(),
        usize::from(marked_again),
        "{v2}"
    );
    let after = pack_bytes(&r);
    assert!(after < before * 6 / 10, "pruned {before} -> {after} bytes");
    let c = r.run(&["check", "--read-data", "--json"]);
    c.ok();
    assert!(
        c.json()["warnings"].as_array().unwrap().is_empty(),
        "{}",
        c.stdout
    );
    let t = r.fresh("t2");
    r.restore("latest", &t, &[]);
    compare_trees(&src, &t);

    // A marked pack waits for the grace period.
    r.run(&[
        "forget",
        "--keep-last",
        "0",
        "--keep-tag",
        "none",
        "--unsafe-allow-remove-all",
    ])
    .ok();
    r.run(&["prune", "--grace-minutes", "0"]).ok();
    let v = r.run(&["prune", "--json"]).json();
    assert_eq!(v["packs_deleted"], 0, "{v}");
    assert!(v["packs_waiting"].as_u64().unwrap() >= 1, "{v}");
}

#[test]
fn two_concurrent_backups_both_succeed_and_killed_backup_lock_is_stale() {
    let r = Repo::new();
    let a = r.dir("a");
    let b = r.dir("b");
    for i in 0..20 {
        write_random_file(&a.join(format!("f{i}")), 100 + i, 400_000);
        write_random_file(&b.join(format!("f{i}")), 200 + i, 400_000);
    }
    let spawn = |p: &Path, name: &str| {
        Command::new(rime_bin())
            .args(["--repo"])
            .arg(&r.path)
            .arg("--password-file")
            .arg(&r.pw_file)
            .args(["backup", "-N", name])
            .arg(p)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (ca, cb) = (spawn(&a, "a"), spawn(&b, "b"));
    for c in [ca, cb] {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(r.snapshot_ids().len(), 2);
    for (p, n) in [(&a, "a"), (&b, "b")] {
        let t = r.fresh(&format!("r{n}"));
        let snap = r.snapshots().into_iter().find(|s| s["name"] == n).unwrap();
        r.restore(snap["id"].as_str().unwrap(), &t, &[]);
        compare_trees(p, &t);
    }
    assert!(
        r.objects("locks").is_empty(),
        "finished operations leave no lock"
    );

    // A backup killed while it holds its lock leaves the lock; the process is gone, so the lock
    // is stale: prune is not blocked and `unlock` removes it.
    let big = r.dir("big");
    write_random_file(&big.join("f"), 9, 60_000_000);
    let mut c = spawn(&big, "big");
    let t0 = std::time::Instant::now();
    while r.objects("locks").is_empty() && t0.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    c.kill().unwrap();
    c.wait().unwrap();
    if r.objects("locks").is_empty() {
        eprintln!("skipped: backup finished before it could be killed");
        return;
    }
    let out = r.run(&["unlock"]);
    out.ok();
    assert!(
        out.stdout.contains("no longer runs on this host"),
        "{}",
        out.stdout
    );
    assert!(r.objects("locks").is_empty());
    r.run(&["check"]).ok();
}

#[test]
fn read_data_subset_parts_cover_every_pack_and_errors_name_snapshot_path_pack() {
    let r = Repo::with_init_args(&["--insecure-fast-kdf"]);
    let src = r.dir("src");
    for i in 0..12 {
        write_random_file(&src.join(format!("f{i}")), 300 + i, 300_000);
        // One backup per file: many small packs.
        r.backup(&[&src], &[]);
    }
    let total = r.packs().len() as u64;
    let read = |arg: &str| -> Value {
        let o = r.run(&["check", "--read-data-subset", arg, "--json"]);
        o.ok();
        o.json()
    };
    let parts: u64 = (1..=4)
        .map(|n| read(&format!("{n}/4"))["packs_read"].as_u64().unwrap())
        .sum();
    assert_eq!(parts, total, "1/4..4/4 read every pack exactly once");
    assert_eq!(
        read("1/4")["packs_read"],
        read("1/4")["packs_read"],
        "deterministic"
    );
    assert_eq!(read("100%")["packs_read"].as_u64().unwrap(), total);
    // A subset that selects nothing would verify nothing every night: refused.
    r.run(&["check", "--read-data-subset", "0"])
        .error_names(&["selects nothing"]);
    assert!(read("50%")["packs_read"].as_u64().unwrap() >= total / 2);
    r.run(&["check", "--read-data-subset", "5/4"])
        .error_names(&["5/4"]);

    // Damage the pack holding f0's data: the part that reads it names snapshot, path and pack.
    let mut damaged = None;
    for (name, path) in r.packs() {
        let len = fs::metadata(&path).unwrap().len();
        if len > 250_000 && len < 400_000 {
            let mut b = fs::read(&path).unwrap();
            b[100] ^= 1;
            fs::write(&path, b).unwrap();
            damaged = Some(name);
            break;
        }
    }
    let damaged = damaged.expect("a data pack of one file");
    let part = (1..=4)
        .find(|n| {
            let o = r.run(&["check", "--read-data-subset", &format!("{n}/4"), "--json"]);
            !o.success()
        })
        .expect("one part finds the damage");
    let o = r.run(&["check", "--read-data-subset", &format!("{part}/4")]);
    o.failed();
    let line = o
        .stderr
        .lines()
        .find(|l| l.contains("snapshot") && l.contains(&damaged))
        .unwrap_or_else(|| panic!("no line names snapshot and pack:\n{}", o.stderr));
    assert!(line.contains("/src/f"), "names the path: {line}");
}

#[test]
fn repair_rebuilds_a_lost_index_and_forgets_broken_snapshots_after_naming_losses() {
    let r = Repo::new();
    let src = r.dir("src");
    write_random_file(&src.join("keep"), 40, 1_500_000);
    r.backup(&[&src], &[]);
    let packs_one: Vec<String> = r.packs().into_iter().map(|(n, _)| n).collect();
    write_random_file(&src.join("doomed"), 41, 1_500_000);
    let second = r.backup(&[&src], &[])["id"].as_str().unwrap().to_string();
    // Lose every index file: check fails, repair rebuilds from the packs, restore is exact.
    for (_, p) in r.objects("index") {
        fs::remove_file(p).unwrap();
    }
    r.run(&["check"]).failed();
    let o = r.run(&["repair", "--json"]);
    o.ok();
    assert!(
        o.json()["broken"].as_array().unwrap().is_empty(),
        "{}",
        o.stdout
    );
    r.run(&["check", "--read-data"]).ok();
    let t = r.fresh("t");
    r.restore(&second, &t, &[]);
    compare_trees(&src, &t);

    // Lose the pack holding "doomed": the second snapshot is broken and repair says what is lost.
    let doomed: Vec<_> = r
        .packs()
        .into_iter()
        .filter(|(n, p)| !packs_one.contains(n) && fs::metadata(p).unwrap().len() > 100_000)
        .collect();
    assert!(!doomed.is_empty(), "the second backup's data packs");
    for (_, p) in doomed {
        fs::remove_file(p).unwrap();
    }
    let o = r.run(&["repair"]);
    o.failed();
    assert!(o.stdout.contains("/doomed: "), "{}", o.stdout);
    assert!(!o.stdout.contains("/keep"), "{}", o.stdout);
    let o = r.run(&["repair", "--forget-broken"]);
    o.ok();
    assert!(
        o.stderr
            .contains(&format!("snapshot {} loses 1 item", &second[..8])),
        "{}",
        o.stderr
    );
    assert!(!r.snapshot_ids().contains(&second));
    assert_eq!(r.snapshot_ids().len(), 1);
    r.run(&["check", "--read-data"]).ok();
}

/// Backups run while other snapshots sharing their content are forgotten and pruned (with no
/// grace period): every backup restores exactly, at once and after the last prune.
#[test]
fn backups_running_during_prune_stay_restorable() {
    let r = std::sync::Arc::new(Repo::new());
    let rounds = 8u64;
    let writer = {
        let r = r.clone();
        std::thread::spawn(move || {
            let src = r.dir("src");
            let mut saved = Vec::new();
            for i in 0..rounds {
                // The same bytes the pruning side backs up, forgets and prunes.
                write_random_file(&src.join(format!("f{i}")), 7000 + i, 1_200_000);
                let id = r.backup(&[&src], &["-N", "live"])["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let t = r.fresh(&format!("now{i}"));
                let o = r.run(&[os("restore"), os(&id), os("--target"), os(&t)]);
                assert!(
                    o.success(),
                    "restore right after backup failed: {}",
                    o.stderr
                );
                compare_trees(&src, &t);
                let copy = r.fresh(&format!("copy{i}"));
                cp_a(&src, &copy);
                saved.push((id, copy));
            }
            saved
        })
    };
    let junk = r.dir("junk");
    for i in 0..rounds {
        write_random_file(&junk.join("f"), 7000 + i, 1_200_000);
        write_random_file(&junk.join("g"), 7000 + i + 1, 1_200_000);
        r.backup(&[&junk], &["-N", "junk"]);
        r.run(&[
            "forget",
            "-N",
            "junk",
            "--keep-last",
            "0",
            "--unsafe-allow-remove-all",
        ])
        .ok();
        r.run(&["prune", "--grace-minutes", "0", "--max-unused", "0%"])
            .ok();
    }
    let saved = writer.join().unwrap();
    r.run(&["prune", "--grace-minutes", "0"]).ok();
    r.run(&["prune", "--grace-minutes", "0"]).ok();
    r.run(&["check", "--read-data"]).ok();
    for (id, copy) in &saved {
        let t = r.fresh(&format!("end{}", &id[..8]));
        r.restore(id, &t, &[]);
        compare_trees(copy, &t);
    }
}

/// `backup --time` records the given time (benchmarks and imports build histories with it);
/// a bad time is refused before anything is written. A clock that jumps back (a snapshot
/// taken "before" one already in the repository, or one in the future) changes only the order
/// by time: retention and `latest` go by the recorded times, and nothing is lost.
#[test]
fn backup_time_option_and_a_clock_that_jumps_back() {
    let r = Repo::new();
    let src = r.dir("src");
    write_random_file(&src.join("a"), 1, 50_000);
    r.run(&[os("backup"), os("--time"), os("2026-13-01"), os(&src)])
        .error_names(&["2026-13-01"]);
    assert!(r.snapshots().is_empty());
    // Two days, then the clock jumps back a day, then far into the future.
    let mut by_time = vec![];
    for (i, t) in [
        "2026-01-05T12:00:00",
        "2026-01-06T12:00:00",
        "2026-01-04T12:00:00",
        "2099-01-01T00:00:00",
    ]
    .iter()
    .enumerate()
    {
        write_random_file(&src.join("a"), 10 + i as u64, 50_000);
        let id = r.backup(&[&src], &["--time", t])["id"]
            .as_str()
            .unwrap()
            .to_string();
        let copy = r.tmp.path().join(format!("copy{i}"));
        cp_a(&src, &copy);
        by_time.push((t.to_string(), id, copy));
    }
    by_time.sort();
    let listed: Vec<String> = r
        .snapshots()
        .iter()
        .map(|s| s["time"].as_str().unwrap()[..10].to_string())
        .collect();
    assert_eq!(
        listed,
        ["2026-01-04", "2026-01-05", "2026-01-06", "2099-01-01"]
    );
    // `latest` is the newest by recorded time, even from the future.
    let t = r.fresh("latest");
    r.restore("latest", &t, &[]);
    compare_trees(&by_time[3].2, &t);
    // Keep the newest of each of the last 2 days that have a snapshot: 2099-01-01, 2026-01-06.
    r.run(&["forget", "--keep-daily", "2"]).ok();
    let left = r.snapshot_ids();
    assert_eq!(left, [by_time[2].1.clone(), by_time[3].1.clone()]);
    for _ in 0..2 {
        r.run(&["prune", "--grace-minutes", "0"]).ok();
    }
    r.run(&["check", "--read-data"]).ok();
    for (_, id, copy) in &by_time[2..] {
        let t = r.fresh(&format!("r-{}", &id[..8]));
        r.restore(id, &t, &[]);
        compare_trees(copy, &t);
    }
}

/// For each kind of damage, `check` names the pack, and the snapshot and path that lose data.
#[test]
fn check_names_snapshot_path_and_pack_for_each_kind_of_damage() {
    let r = Repo::new();
    let src = r.dir("src");
    mkdir(&src.join("sub"));
    write_random_file(&src.join("sub/victim.bin"), 7, 3_000_000);
    write(&src.join("small.txt"), b"small");
    let snap = r.backup(&[&src], &[])["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    let pristine = r.tmp.path().join("pristine");
    cp_a(&r.path, &pristine);
    let (pack, pack_path) = r
        .packs()
        .into_iter()
        .max_by_key(|(_, p)| fs::metadata(p).unwrap().len())
        .unwrap();
    type Damage = (&'static str, &'static [&'static str], fn(&Path));
    let damages: [Damage; 3] = [
        ("missing pack", &["check"], |p| fs::remove_file(p).unwrap()),
        ("truncated pack", &["check"], |p| {
            let f = fs::OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(100_000).unwrap();
        }),
        ("flipped byte", &["check", "--read-data"], |p| {
            let mut b = fs::read(p).unwrap();
            b[5000] ^= 0x40;
            fs::write(p, b).unwrap();
        }),
    ];
    for (what, args, damage) in damages {
        fs::remove_dir_all(&r.path).unwrap();
        cp_a(&pristine, &r.path);
        damage(&pack_path);
        let out = r.run(args);
        out.code(1);
        let named = out.stderr.lines().any(|l| {
            l.starts_with("error:")
                && l.contains(&snap)
                && l.contains("/sub/victim.bin")
                && l.contains(&pack)
        });
        assert!(
            named,
            "{what}: no error names snapshot {snap}, path and pack {pack}:\n{}",
            out.stderr
        );
    }
}

/// Damage in a volume snapshot is named by the byte ranges of the volume it hits.
#[test]
fn check_names_byte_ranges_of_damaged_volume_snapshots() {
    let r = Repo::new();
    let img = r.dir("vol").join("disk.img");
    write_random_file(&img, 11, 6 << 20);
    let img_s = img.to_str().unwrap();
    let snap = r
        .run(&["backup", "--json", "--volume", img_s, "--chunk-size", "64K"])
        .json()["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (pack, pack_path) = r
        .packs()
        .into_iter()
        .max_by_key(|(_, p)| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut b = fs::read(&pack_path).unwrap();
    b[200_000] ^= 0x10;
    fs::write(&pack_path, b).unwrap();
    let out = r.run(&["check", "--read-data"]);
    out.code(1);
    let line = out
        .stderr
        .lines()
        .find(|l| {
            l.starts_with("error:")
                && l.contains(&format!("snapshot {snap} (volume {img_s})"))
                && l.contains("bytes ")
                && l.contains(&pack)
        })
        .unwrap_or_else(|| {
            panic!(
                "no error names the snapshot, a byte range and {pack}:\n{}",
                out.stderr
            )
        });
    // One flipped byte damages one 64 KiB chunk: a range of exactly that length.
    assert!(line.contains("(65536 bytes)"), "{line}");
}

/// `check --read-data` reads packs in windows: a pack of several windows verifies clean, and a
/// flipped byte in its last window is found and named.
#[test]
fn read_data_verifies_large_packs_window_by_window() {
    let r = Repo::new();
    let src = r.dir("src");
    write_random_file(&src.join("big.bin"), 21, 14 << 20);
    r.backup(&[&src], &[]);
    let (pack, pack_path) = r
        .packs()
        .into_iter()
        .max_by_key(|(_, p)| fs::metadata(p).unwrap().len())
        .unwrap();
    let len = fs::metadata(&pack_path).unwrap().len();
    assert!(
        len > 5 << 20,
        "a pack of more than one 4 MiB window: {len} bytes"
    );
    let ok = r.run(&["check", "--read-data", "--json"]);
    ok.ok();
    assert!(
        ok.json()["blobs_checked"].as_u64().unwrap() >= 3,
        "{}",
        ok.stdout
    );
    let mut b = fs::read(&pack_path).unwrap();
    // Past the first window, inside the blobs (the header is at the end).
    let at = (len - 200_000) as usize;
    b[at] ^= 0x01;
    fs::write(&pack_path, b).unwrap();
    let out = r.run(&["check", "--read-data"]);
    out.code(1);
    for needle in [
        "content does not match its name",
        "authentication failed",
        "/big.bin",
    ] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with("error:") && l.contains(&pack) && l.contains(needle)),
            "{needle}:\n{}",
            out.stderr
        );
    }
}

/// A broken file snapshot is salvaged instead of forgotten: intact files stay exact, a file
/// that lost chunks is kept under a marked name with its intact bytes at their offsets and
/// zeros where chunks are missing, and a later backup of the sources is whole again.
#[test]
fn repair_salvage_keeps_everything_still_stored_and_marks_damaged_files() {
    let r = Repo::new();
    let src = r.dir("src");
    mkdir(&src.join("sub"));
    write_random_file(&src.join("sub/keep"), 50, 1_500_000);
    write_random_file(&src.join("mixed"), 51, 12_000_000);
    let first = r.backup(&[&src], &["--tag", "nightly"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let packs_one: Vec<String> = r.packs().into_iter().map(|(n, _)| n).collect();
    // The second backup adds "doomed" and rewrites the last 3 MB of "mixed".
    write_random_file(&src.join("doomed"), 52, 1_500_000);
    let mut mixed = fs::read(src.join("mixed")).unwrap();
    fill_random(53, &mut mixed[9_000_000..]);
    fs::write(src.join("mixed"), &mixed).unwrap();
    let second = r.backup(&[&src], &["--tag", "nightly"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let time_before = r.snapshots()[1]["time"].clone();
    for (n, p) in r.packs() {
        if !packs_one.contains(&n) && fs::metadata(&p).unwrap().len() > 100_000 {
            fs::remove_file(p).unwrap();
        }
    }

    // A dry run says what would happen and changes nothing.
    let o = r.run(&["repair", "--salvage", "--dry-run"]);
    o.failed();
    assert!(
        o.stdout
            .contains(&format!("snapshot {} would be salvaged", &second[..8])),
        "{}",
        o.stdout
    );
    let line = o
        .stdout
        .lines()
        .find(|l| l.contains("/src/doomed: "))
        .unwrap_or_default();
    assert!(
        line.ends_with(
            "chunks (1500000 bytes) missing, kept as /src/doomed.rime-damaged with zeros there"
        ),
        "{}",
        o.stdout
    );
    assert_eq!(r.snapshot_ids(), vec![first.clone(), second.clone()]);

    // Restoring the broken snapshot restores everything else and fails naming the rest:
    // nothing is left under a real name with wrong content.
    let t = r.fresh("broken");
    let o = r.run(&[os("restore"), os(&second), os("--target"), os(&t)]);
    o.failed();
    assert!(o.stderr.contains("restore incomplete"), "{}", o.stderr);
    assert!(o.stderr.contains("doomed: not restored"), "{}", o.stderr);
    assert_eq!(
        fs::read(t.join("sub/keep")).unwrap(),
        fs::read(src.join("sub/keep")).unwrap()
    );
    assert!(!t.join("doomed").exists() && !t.join("mixed").exists());
    assert!(t.join("mixed.rime-incomplete").exists(), "{}", o.stderr);
    // Once the index is rebuilt, the restore knows before reading that the data is gone.
    r.run(&["repair"]).failed();
    let t = r.fresh("broken2");
    let o = r.run(&[os("restore"), os(&second), os("--target"), os(&t)]);
    o.failed();
    assert!(
        o.stderr.contains("chunks are not in the repository"),
        "{}",
        o.stderr
    );
    assert!(t.join("sub/keep").exists() && !t.join("mixed").exists());
    assert!(
        !t.join("mixed.rime-incomplete").exists(),
        "a known-bad file is not written at all"
    );

    let o = r.run(&["repair", "--salvage", "--json"]);
    o.ok();
    let v = o.json();
    let s = &v["salvaged"][0];
    assert_eq!(s["original"].as_str().unwrap(), second, "{v}");
    let new = s["new"].as_str().expect("a new snapshot").to_string();
    let changes: Vec<&str> = s["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(changes.len(), 2, "doomed and mixed: {changes:?}");
    assert!(
        changes.iter().any(|c| c.starts_with("/src/mixed: ")),
        "{changes:?}"
    );
    assert_eq!(r.snapshot_ids(), vec![first.clone(), new.clone()]);
    let snap = &r.snapshots()[1];
    assert_eq!(
        snap["time"], time_before,
        "the salvaged snapshot keeps its time"
    );
    let tags: Vec<&str> = snap["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tags, ["nightly", "repaired"]);
    r.run(&["check", "--read-data"]).ok();
    r.run(&["repair"]).ok(); // nothing is broken any more

    let t = r.fresh("t");
    r.restore(&new, &t, &[]);
    let got = t; // a single source path restores into the target itself
    assert_eq!(
        fs::read(got.join("sub/keep")).unwrap(),
        fs::read(src.join("sub/keep")).unwrap()
    );
    assert!(!got.join("doomed").exists() && !got.join("mixed").exists());
    let doomed = fs::read(got.join("doomed.rime-damaged")).unwrap();
    assert_eq!(doomed.len(), 1_500_000);
    assert!(
        doomed.iter().all(|&b| b == 0),
        "missing chunks restore as zeros"
    );
    let damaged = fs::read(got.join("mixed.rime-damaged")).unwrap();
    assert_eq!(damaged.len(), mixed.len());
    // The unchanged start is intact; every other byte is either the source's or a zero of a
    // missing chunk, and the rewritten tail is gone.
    assert_eq!(damaged[..6_000_000], mixed[..6_000_000]);
    assert!(damaged.iter().zip(&mixed).all(|(d, m)| d == m || *d == 0));
    assert!(damaged[9_000_000..].iter().filter(|&&b| b == 0).count() > 2_900_000);

    // The sources still exist: the next backup stores the lost chunks again and is whole.
    let third = r.backup(&[&src], &[])["id"].as_str().unwrap().to_string();
    let t = r.fresh("t3");
    r.restore(&third, &t, &[]);
    compare_trees(&src, &t);
}

/// A directory whose tree is lost: restore restores the rest and names it; salvage keeps the
/// directory, empty, and everything else.
#[test]
fn a_lost_directory_tree_is_named_by_restore_and_emptied_by_salvage() {
    let r = Repo::new();
    let src = r.dir("src");
    mkdir(&src.join("x"));
    // Under the chunker's minimum size: one chunk, so one data pack whatever the threads do.
    write_random_file(&src.join("x/big"), 60, 200_000);
    r.backup(&[&src], &[]);
    let first_packs: Vec<(String, std::path::PathBuf)> = r.packs();
    write(&src.join("top"), b"added by the second backup");
    let second = r.backup(&[&src], &[])["id"].as_str().unwrap().to_string();
    // The first backup's tree pack (its only small pack) holds x's tree, which the second
    // snapshot still uses; its root tree is in the second backup's own tree pack.
    let small: Vec<_> = first_packs
        .iter()
        .filter(|(_, p)| fs::metadata(p).unwrap().len() < 100_000)
        .collect();
    assert_eq!(small.len(), 1, "one tree pack: {first_packs:?}");
    fs::remove_file(&small[0].1).unwrap();
    r.run(&["repair"]).failed();

    let t = r.fresh("t");
    let o = r.run(&[os("restore"), os(&second), os("--target"), os(&t)]);
    o.failed();
    assert!(
        o.stderr.contains("x: directory contents not restored"),
        "{}",
        o.stderr
    );
    assert_eq!(
        fs::read(t.join("top")).unwrap(),
        b"added by the second backup"
    );
    assert!(t.join("x").is_dir());

    // The first snapshot lost its root tree: nothing to salvage, so --salvage fails for it
    // (after salvaging the second), and --forget-broken then removes just that one.
    let o = r.run(&["repair", "--salvage"]);
    o.failed();
    assert!(
        o.stdout
            .contains("not salvaged: its root tree cannot be read"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("/src/x: directory unreadable"),
        "{}",
        o.stdout
    );
    let o = r.run(&["repair", "--salvage", "--forget-broken"]);
    o.ok();
    assert!(
        o.stdout.contains("removed 1 broken snapshot"),
        "{}",
        o.stdout
    );
    let left = r.snapshot_ids();
    assert_eq!(
        left.len(),
        1,
        "only the salvaged snapshot is left: {left:?}"
    );
    let new = left[0].clone();
    let t = r.fresh("t2");
    r.restore(&new, &t, &[]);
    assert_eq!(
        fs::read(t.join("top")).unwrap(),
        b"added by the second backup"
    );
    assert_eq!(fs::read_dir(t.join("x")).unwrap().count(), 0);
    r.run(&["check"]).ok();
}

/// A prune record that cannot be read (damaged at rest) must not make backups fail after
/// their snapshot is saved, must not hide the rest of `check`, blocks prune with advice, and
/// `repair` clears it.
#[test]
fn an_unreadable_prune_record_is_reported_and_cleared_by_repair() {
    let r = Repo::new();
    let src = r.dir("src");
    write_random_file(&src.join("a"), 61, 400_000);
    r.backup(&[&src], &[]);
    let pending = r.path.join("pending");
    fs::create_dir_all(&pending).unwrap();
    let name = "ab".repeat(32);
    fs::write(pending.join(&name), b"garbage, not a sealed record").unwrap();
    write_random_file(&src.join("b"), 62, 400_000);
    let out = r.run(&["backup", src.to_str().unwrap()]);
    out.ok();
    assert_eq!(r.snapshot_ids().len(), 2);
    let t = r.fresh("t");
    r.restore("latest", &t, &[]);
    compare_trees(&src, &t);
    // check names the record and still checks the rest (a lost pack is found too).
    let (_, lost) = r
        .packs()
        .into_iter()
        .max_by_key(|(_, p)| fs::metadata(p).unwrap().len())
        .unwrap();
    let kept = fs::read(&lost).unwrap();
    fs::remove_file(&lost).unwrap();
    let c = r.run(&["check"]);
    c.code(1);
    assert!(
        c.stderr.contains(&format!("pending record {name}")) && c.stderr.contains("rime repair"),
        "{}",
        c.stderr
    );
    assert!(c.stderr.contains("missing from storage"), "{}", c.stderr);
    fs::write(&lost, kept).unwrap();
    r.run(&["prune"]).failed().error_names(&["rime repair"]);
    let rep = r.run(&["repair"]);
    rep.ok();
    assert!(rep.stderr.contains("removed"), "{}", rep.stderr);
    assert!(!pending.join(&name).exists());
    r.run(&["prune"]).ok();
    r.run(&["check"]).ok();
}

/// Data that no index names any more is reported for every snapshot and path that uses it,
/// not only for the first snapshot walked (trees shared by snapshots are walked once).
#[test]
fn check_names_every_snapshot_sharing_a_lost_blob() {
    let r = Repo::new();
    let src = r.dir("src");
    mkdir(&src.join("sub"));
    write_random_file(&src.join("sub/f"), 71, 1_500_000);
    write(&src.join("top-a"), b"first");
    let first = r.backup(&[&src], &[])["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    write(&src.join("top-b"), b"second");
    let second = r.backup(&[&src], &[])["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, pack) = r
        .packs()
        .into_iter()
        .max_by_key(|(_, p)| fs::metadata(p).unwrap().len())
        .unwrap();
    fs::remove_file(&pack).unwrap();
    // The rebuilt index no longer names f's data: it is missing, not in a damaged pack
    // (repair itself fails, naming both snapshots as broken).
    r.run(&["repair"]).failed();
    let c = r.run(&["check"]);
    c.code(1);
    for snap in [&first, &second] {
        assert!(
            c.stderr.lines().any(|l| l.contains(snap.as_str())
                && l.contains("/sub/f")
                && l.contains("missing from the index")),
            "snapshot {snap} not named:\n{}",
            c.stderr
        );
    }
    // Prune refuses, with what to do, rather than deleting anything (it used to wait for
    // ever on a lock it held itself, keeping its repository lock alive: `timeout` ends that).
    let p = std::process::Command::new("timeout")
        .arg("120")
        .arg(rime_bin())
        .arg("--repo")
        .arg(&r.path)
        .arg("--password-file")
        .arg(&r.pw_file)
        .arg("prune")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&p.stderr);
    assert_eq!(p.status.code(), Some(1), "prune: {p:?}");
    assert!(
        err.contains("no index or pack holds") && err.contains("rime check"),
        "{err}"
    );
}

/// Temporary files of writes killed mid-object (`.tmp-*`, invisible to every listing) are
/// removed by prune once a day old; a fresh one (a write in progress) stays.
#[test]
fn prune_removes_day_old_temporary_files_of_killed_writes() {
    let r = Repo::new();
    let src = r.dir("src");
    write_random_file(&src.join("a"), 81, 100_000);
    r.backup(&[&src], &[]);
    let old = r.path.join("data/ab/.tmp-pending-00000000deadbeef");
    let young = r.path.join("data/.tmp-pending-00000000cafebabe");
    mkdir(old.parent().unwrap());
    write(&old, vec![7u8; 5000]);
    write(&young, vec![7u8; 3000]);
    set_mtime(&old, 1_600_000_000, 0);
    // While another operation runs (a stream backup waiting for its input holds a lock), its
    // temporary files may be writes in progress, however old: none is removed.
    let mut running = Command::new(rime_bin())
        .arg("--repo")
        .arg(&r.path)
        .arg("--password-file")
        .arg(&r.pw_file)
        .args(["backup", "--stdin", "--name", "waiting"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while fs::read_dir(r.path.join("locks")).unwrap().count() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the backup took no lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let v = r.run(&["prune", "--json"]).json();
    assert_eq!(v["leftovers_removed"], 0, "{v}");
    assert_eq!(v["leftovers_skipped_for_running_operations"], true, "{v}");
    assert!(old.exists());
    drop(running.stdin.take());
    assert!(running.wait().unwrap().success());
    let v = r.run(&["prune", "--json"]).json();
    assert_eq!(v["leftovers_removed"], 1, "{v}");
    assert_eq!(v["leftover_bytes_removed"], 5000, "{v}");
    assert!(!old.exists() && young.exists());
    r.run(&["check"]).ok();
}

/// Retention across the spring-forward night of Europe/Berlin (02:00 -> 03:00 on 2026-03-29):
/// `--keep-within 7d` of a 02:30 backup reaches back to a 02:30 that did not exist that night,
/// which must mean just after the gap, not "nothing is within" (the whole week was removed).
/// Also: a bare `--remove-from-date` day keeps that day's own snapshots, and a duration beyond
/// the calendar keeps everything instead of panicking.
#[test]
fn retention_dates_across_daylight_saving_and_the_calendars_ends() {
    let r = Repo::new();
    let src = r.dir("src");
    write(&src.join("f"), b"x");
    let tz = [("TZ", OsStr::new("Europe/Berlin"))];
    let run = |args: &[&str]| {
        let mut all = vec![
            "--repo",
            r.path.to_str().unwrap(),
            "--password-file",
            r.pw_file.to_str().unwrap(),
        ];
        all.extend(args);
        rime_raw(&all, &tz)
    };
    for d in [
        "03-27", "03-28", "03-30", "03-31", "04-01", "04-02", "04-03", "04-04", "04-05",
    ] {
        let t = format!("2026-{d}T02:30:00");
        run(&["backup", "-q", "--time", &t, src.to_str().unwrap()]).ok();
    }
    let kept = |o: &Out| -> Vec<String> {
        let v = o.json();
        let mut k: Vec<String> = v["groups"][0]["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["keep"].as_bool().unwrap())
            .map(|s| s["time"].as_str().unwrap()[..10].to_string())
            .collect();
        k.sort();
        k
    };
    let o = run(&["forget", "--keep-within", "7d", "--dry-run", "--json"]);
    o.ok();
    // 04-05 02:30 minus 7 days is 03-29 02:30, inside the gap: 03:00 CEST that day.
    assert_eq!(
        kept(&o),
        [
            "2026-03-30",
            "2026-03-31",
            "2026-04-01",
            "2026-04-02",
            "2026-04-03",
            "2026-04-04",
            "2026-04-05"
        ],
        "{}",
        o.stdout
    );
    let o = run(&[
        "forget",
        "--remove-from-date",
        "2026-03-30",
        "--dry-run",
        "--json",
    ]);
    o.ok();
    assert_eq!(
        kept(&o).first().map(String::as_str),
        Some("2026-03-30"),
        "{}",
        o.stdout
    );
    for huge in ["99999999d", "300000y"] {
        let o = run(&["forget", "--keep-within", huge, "--dry-run", "--json"]);
        o.ok();
        assert_eq!(kept(&o).len(), 9, "{huge}: {}", o.stdout);
    }
}

/// `rime forget ID...` removes exactly the named snapshots (a dry run names them and removes
/// nothing); an unknown id, or ids together with retention rules, change nothing. A snapshot
/// dated in the future is named in a warning (it takes every rule's "newest" slot).
#[test]
fn forget_named_snapshots_and_warn_about_future_dates() {
    let r = Repo::new();
    let src = r.dir("src");
    write(&src.join("f"), b"x");
    let a = r.backup(&[&src], &[])["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = r.backup(&[&src], &[])["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    let future = r.backup(&[&src], &["--time", "2099-01-01T00:00:00Z"])["short_id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = r.run(&["forget", "--dry-run", &a]);
    o.ok();
    assert!(o.stdout.contains(&a), "{}", o.stdout);
    let o = r.run(&["forget", "--dry-run", "--keep-last", "1"]);
    o.ok();
    assert!(
        o.stderr.contains(&future) && o.stderr.contains("in the future"),
        "{}",
        o.stderr
    );
    assert_eq!(r.snapshot_ids().len(), 3, "a dry run removes nothing");
    r.run(&["forget", &a, "0000dead"]).failed();
    r.run(&["forget", &a, "--keep-last", "1"])
        .error_names(&["not both"]);
    assert_eq!(r.snapshot_ids().len(), 3);
    r.run(&["forget", &a, &future]).ok();
    let left = r.snapshot_ids();
    assert_eq!(left.len(), 1);
    assert!(left[0].starts_with(&b), "{left:?}");
}
