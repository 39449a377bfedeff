//! Bad input and damaged repositories: clear errors naming the culprit, exit codes, and nothing
//! lost. Also unreadable sources, a full disk and backups killed halfway.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

fn flip_byte(path: &Path, at: usize) {
    let mut b = fs::read(path).unwrap();
    b[at] ^= 0x5a;
    let mode = fs::metadata(path).unwrap().permissions();
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(path, b).unwrap();
    fs::set_permissions(path, mode).unwrap();
}

/// The largest pack (the one holding the random data).
fn largest_pack(repo: &Repo) -> (String, PathBuf) {
    repo.packs()
        .into_iter()
        .max_by_key(|(_, p)| fs::metadata(p).unwrap().len())
        .expect("a pack")
}

/// A repository with one snapshot of a small file and a 3 MB random file.
fn repo_with_data() -> (Repo, PathBuf) {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("small.txt"), b"small and fine");
    write_random_file(&src.join("victim.bin"), 3, 3 << 20);
    set_mtime(&src.join("small.txt"), 1_500_000_000, 1);
    set_mtime(&src.join("victim.bin"), 1_500_000_000, 2);
    repo.backup(&[&src], &[]);
    (repo, src)
}

/// Lines of `check` stderr starting with "error:".
fn check_errors(out: &Out) -> Vec<String> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(String::from)
        .collect()
}

#[test]
fn wrong_password_exits_12() {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("f"), b"x");
    let bad = repo.tmp.path().join("bad-pw");
    fs::write(&bad, "not the password\n").unwrap();
    for args in [
        vec![os("snapshots")],
        vec![os("backup"), os(&src)],
        vec![os("key"), os("list")],
    ] {
        let mut a = vec![
            os("--repo"),
            os(&repo.path),
            os("--password-file"),
            os(&bad),
        ];
        a.extend(args);
        rime_raw(a, &[]).code(12).error_names(&["wrong password"]);
    }
    assert!(
        repo.snapshots().is_empty(),
        "a backup with a wrong password wrote a snapshot"
    );
}

#[test]
fn no_repository_exits_10() {
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("pw");
    fs::write(&pw, PASSWORD).unwrap();
    let missing = tmp.path().join("no-repo-here");
    let t = tmp.path().join("target");
    let empty = tmp.path().join("empty-dir");
    fs::create_dir(&empty).unwrap();
    for r in [&missing, &empty] {
        for args in [
            vec![os("snapshots")],
            vec![os("restore"), os("--target"), os(&t)],
            vec![os("check")],
        ] {
            let mut a = vec![os("--repo"), os(r), os("--password-file"), os(&pw)];
            a.extend(args);
            rime_raw(a, &[])
                .code(10)
                .error_names(&[r.file_name().unwrap().to_str().unwrap()]);
        }
    }
    assert!(!t.exists(), "restore from no repository created its target");
    assert!(
        !missing.exists(),
        "reading commands must not create a repository"
    );
}

#[test]
fn init_twice_is_refused_and_keeps_the_repository() {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("f"), b"precious");
    repo.backup(&[&src], &[]);
    let other = repo.tmp.path().join("other-pw");
    fs::write(&other, "another password").unwrap();
    let out = rime_raw(
        [
            os("--repo"),
            os(&repo.path),
            os("--password-file"),
            os(&other),
            os("init"),
            os("--insecure-fast-kdf"),
        ],
        &[],
    );
    out.error_names(&["already exists", repo.path.to_str().unwrap()]);
    assert_eq!(repo.snapshots().len(), 1);
    assert_eq!(
        repo.objects("keys").len(),
        1,
        "the second init added a key file"
    );
    rime_raw(
        [
            os("--repo"),
            os(&repo.path),
            os("--password-file"),
            os(&other),
            os("snapshots"),
        ],
        &[],
    )
    .code(12);
}

#[test]
fn newer_format_version_exits_11() {
    let repo = Repo::new();
    let cfg = repo.path.join("config");
    let mut b = fs::read(&cfg).unwrap();
    assert_eq!(&b[..4], b"RIME");
    assert_eq!(
        u16::from_le_bytes([b[4], b[5]]),
        1,
        "this test expects format version 1"
    );
    b[4..6].copy_from_slice(&2u16.to_le_bytes());
    fs::write(&cfg, &b).unwrap();
    repo.run(&["snapshots"])
        .code(11)
        .error_names(&["newer", "version 2"]);
    let src = repo.dir("src");
    repo.run(&[os("backup"), os(&src)]).code(11);
    // A corrupted (not newer) config is an error of its own, not exit 11.
    b[0] = b'X';
    fs::write(&cfg, &b).unwrap();
    let out = repo.run(&["snapshots"]);
    out.error_names(&["config"]);
    assert_ne!(out.code, 11);
}

#[test]
fn missing_pack_is_named_by_restore_and_check() {
    let (repo, _src) = repo_with_data();
    let (pack, path) = largest_pack(&repo);
    fs::remove_file(&path).unwrap();
    let t = repo.tmp.path().join("t");
    repo.run(&[os("restore"), os("latest"), os("--target"), os(&t)])
        .error_names(&[&pack]);
    let out = repo.run(&["check"]);
    out.code(1);
    let errs = check_errors(&out);
    assert!(
        errs.iter()
            .any(|l| l.contains(&pack) && l.contains("missing")),
        "check output:\n{}",
        out.stderr
    );
    let out = repo.run(&["check", "--json"]);
    out.code(1);
    assert!(out.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap().contains(&pack)));
    // dump of the affected file names the pack too.
    repo.run(&["dump", "latest", "victim.bin"])
        .error_names(&[&pack]);
}

#[test]
fn truncated_pack_is_named_by_restore_and_check() {
    let (repo, _src) = repo_with_data();
    let (pack, path) = largest_pack(&repo);
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let t = repo.tmp.path().join("t");
    repo.run(&[os("restore"), os("latest"), os("--target"), os(&t)])
        .error_names(&[&pack]);
    let out = repo.run(&["check"]);
    out.code(1);
    assert!(
        check_errors(&out)
            .iter()
            .any(|l| l.contains(&pack) && l.contains("truncated")),
        "{}",
        out.stderr
    );
    read_data_check_names(&repo, &pack);
}

#[test]
fn corrupted_pack_fails_restore_naming_pack_and_file() {
    let (repo, src) = repo_with_data();
    let (pack, path) = largest_pack(&repo);
    let len = fs::metadata(&path).unwrap().len() as usize;
    flip_byte(&path, len / 2);

    let t = repo.tmp.path().join("t");
    let out = repo.run(&[os("restore"), os("latest"), os("--target"), os(&t)]);
    out.error_names(&[&pack, "victim.bin"]);
    // Nothing in the target may look restored (source size and mtime) with wrong content.
    if t.exists() {
        for rel in walk(&t) {
            let (a, b) = (src.join(&rel), t.join(&rel));
            let Ok(ma) = fs::symlink_metadata(&a) else {
                continue; // a marked name (NAME.rime-incomplete): no source to look like
            };
            let mb = fs::symlink_metadata(&b).unwrap();
            if mb.is_file()
                && ma.len() == mb.len()
                && (ma.mtime(), ma.mtime_nsec()) == (mb.mtime(), mb.mtime_nsec())
            {
                assert_eq!(
                    first_difference(&a, &b),
                    None,
                    "{rel:?} looks restored but its content is wrong"
                );
            }
        }
    }
    // Everything else is restored; the damaged file is kept only under a marked name.
    assert_eq!(fs::read(t.join("small.txt")).unwrap(), b"small and fine");
    assert!(!t.join("victim.bin").exists());
    assert!(
        t.join("victim.bin.rime-incomplete").exists(),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("victim.bin.rime-incomplete"),
        "{}",
        out.stderr
    );
    let out = repo.run(&["dump", "latest", "victim.bin"]);
    out.error_names(&[&pack]);

    // Plain check only looks at structure; --read-data reads the blobs and finds it.
    let plain = repo.run(&["check"]);
    eprintln!(
        "plain check after a flipped byte: exit {}, {}",
        plain.code,
        plain.stdout.trim()
    );
    read_data_check_names(&repo, &pack);
}

#[test]
fn corrupted_snapshot_file_is_named() {
    let (repo, _src) = repo_with_data();
    let id = repo.snapshots()[0]["id"].as_str().unwrap().to_string();
    let p = repo.path.join("snapshots").join(&id);
    let len = fs::metadata(&p).unwrap().len() as usize;
    flip_byte(&p, len / 2);
    let t = repo.tmp.path().join("t");
    repo.run(&[os("restore"), os(&id[..8]), os("--target"), os(&t)])
        .error_names(&[&id[..8], "snapshot"]);
    assert!(
        !t.exists(),
        "restore of an unreadable snapshot created its target"
    );
    let out = repo.run(&["snapshots"]);
    out.code(1);
    assert!(
        out.stderr.contains(&id[..8]),
        "snapshots warns about the unreadable one: {}",
        out.stderr
    );
    let out = repo.run(&["check"]);
    out.code(1);
    assert!(
        check_errors(&out).iter().any(|l| l.contains(&id[..8])),
        "{}",
        out.stderr
    );
}

#[test]
fn corrupted_index_file_is_named() {
    let (repo, _src) = repo_with_data();
    let idx = repo.objects("index");
    assert_eq!(idx.len(), 1);
    let (name, p) = &idx[0];
    let len = fs::metadata(p).unwrap().len() as usize;
    flip_byte(p, len / 2);
    // The index is redundant: readers go on without the damaged file, and fail only for what
    // no readable index file lists (here the snapshot's tree), naming the file and the repair
    // (tests/it/damaged_index.rs has the whole story).
    let t = repo.tmp.path().join("t");
    repo.run(&[os("restore"), os("latest"), os("--target"), os(&t)])
        .error_names(&[&name[..16], "index", "rime repair"]);
    let out = repo.run(&["check"]);
    out.code(1);
    assert!(
        check_errors(&out).iter().any(|l| l.contains(&name[..16])),
        "{}",
        out.stderr
    );
    let src = repo.dir("src2");
    write(&src.join("f"), b"f");
    let out = repo.run(&[os("backup"), os(&src)]);
    out.ok();
    assert!(out.stderr.contains(&name[..16]), "{}", out.stderr);
}

#[test]
fn restore_into_a_non_empty_target_is_refused_unless_overwrite() {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("a.txt"), b"from the snapshot");
    write(&src.join("d/b.txt"), b"b");
    repo.backup(&[&src], &[]);
    let t = repo.dir("target");
    write(&t.join("a.txt"), b"local edit");
    write(&t.join("unrelated"), b"keep me");
    set_mtime(&t.join("a.txt"), 1_000_000_000, 5);
    let before = fs::symlink_metadata(t.join("a.txt")).unwrap();

    repo.run(&[os("restore"), os("latest"), os("--target"), os(&t)])
        .error_names(&["target", "not empty", "--overwrite"]);
    assert_eq!(fs::read(t.join("a.txt")).unwrap(), b"local edit");
    assert_eq!(fs::read(t.join("unrelated")).unwrap(), b"keep me");
    let after = fs::symlink_metadata(t.join("a.txt")).unwrap();
    assert_eq!(
        (before.mtime(), before.mtime_nsec(), before.ino()),
        (after.mtime(), after.mtime_nsec(), after.ino())
    );
    assert_eq!(walk(&t).len(), 3, "nothing was added to the target");

    repo.restore("latest", &t, &["--overwrite"]);
    assert_eq!(fs::read(t.join("a.txt")).unwrap(), b"from the snapshot");
    assert_eq!(fs::read(t.join("d/b.txt")).unwrap(), b"b");
    assert_eq!(fs::read(t.join("unrelated")).unwrap(), b"keep me");

    // A target that is a file.
    let f = repo.tmp.path().join("a-file");
    fs::write(&f, b"x").unwrap();
    repo.run(&[os("restore"), os("latest"), os("--target"), os(&f)])
        .error_names(&["a-file", "not a directory"]);
    assert_eq!(fs::read(&f).unwrap(), b"x");
}

#[test]
fn missing_source_path_is_named_and_writes_no_snapshot() {
    let repo = Repo::new();
    let present = repo.dir("present");
    write(&present.join("f"), b"x");
    let gone = repo.tmp.path().join("gone-away");
    repo.run(&[os("backup"), os(&gone)])
        .error_names(&["gone-away"]);
    repo.run(&[os("backup"), os(&present), os(&gone)])
        .error_names(&["gone-away"]);
    assert!(
        repo.objects("snapshots").is_empty(),
        "a snapshot was written"
    );
    assert!(repo.packs().is_empty(), "packs were written");
    // Two sources with the same last component are refused too.
    let other = repo.dir("elsewhere/present");
    repo.run(&[os("backup"), os(&present), os(&other)])
        .error_names(&["present"]);
    assert!(repo.objects("snapshots").is_empty());
}

/// Run rime as user nobody (65534) with the repository's flags.
fn as_nobody(repo: &Repo, args: &[std::ffi::OsString]) -> Out {
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(rime_bin())
        .arg("--repo")
        .arg(&repo.path)
        .arg("--password-file")
        .arg(&repo.pw_file)
        .args(args)
        .env_remove("RIME_REPO")
        .env_remove("RIME_PASSWORD")
        .env_remove("RIME_PASSWORD_FILE")
        .stdin(Stdio::null())
        .output()
        .expect("setpriv");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        raw_stdout: o.stdout,
    }
}

/// A source where `secret` (a file) and `locked` (a directory) cannot be read by the runner.
/// Returns a runner for rime commands that cannot read them.
#[allow(clippy::type_complexity)]
fn unreadable_setup() -> Option<(
    Repo,
    PathBuf,
    Box<dyn Fn(&Repo, &[std::ffi::OsString]) -> Out>,
)> {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("ok.txt"), b"readable");
    write(&src.join("secret"), b"unreadable file");
    write(&src.join("locked/inner"), b"inside an unreadable dir");
    write(&src.join("open/file"), b"fine");
    chmod(&src.join("secret"), 0o000);
    chmod(&src.join("locked"), 0o000);
    if is_root() {
        if !Command::new("setpriv")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
        {
            eprintln!("skipping: setpriv is not available");
            return None;
        }
        // nobody must reach the repository and the password file, and read the rest of the source.
        chmod(repo.tmp.path(), 0o755);
        chmod(&repo.pw_file, 0o644);
        let st = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(&repo.path)
            .status()
            .unwrap();
        assert!(st.success());
        Some((
            repo,
            src,
            Box::new(|r: &Repo, a: &[std::ffi::OsString]| as_nobody(r, a)),
        ))
    } else {
        Some((
            repo,
            src,
            Box::new(|r: &Repo, a: &[std::ffi::OsString]| r.run(a)),
        ))
    }
}

/// Unreadable paths (3) and a failed storage (4) in one backup: it exits 4, and both are
/// reported, in the text and in the JSON (per storage: location, ok, error, what was written).
#[test]
fn unreadable_paths_and_a_failed_storage_report_both_and_exit_4() {
    let Some((repo, src, run)) = unreadable_setup() else {
        return;
    };
    // A second storage without the repository (a disk not mounted): it fails alone.
    let b = repo.tmp.path().join("b-not-mounted");
    let out = run(
        &repo,
        &[os("--repo"), os(&b), os("backup"), os("--json"), os(&src)],
    );
    out.code(4);
    assert!(
        out.stderr.contains("2 path(s) could not be read"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("storage {}: FAILED", b.display())),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("unreadable paths (3) too"),
        "{}",
        out.stderr
    );
    let doc = out.json();
    assert_eq!(doc["stats"]["unreadable"], 2, "{doc}");
    assert_eq!(doc["warnings"].as_array().unwrap().len(), 2, "{doc}");
    assert_eq!(doc["exit_code"], 4, "{doc}");
    assert_eq!(doc["storage_failed"], true, "{doc}");
    let storages = doc["storages"].as_array().expect("one entry per storage");
    assert_eq!(storages.len(), 2, "{doc}");
    let a = &storages[0];
    assert_eq!(a["location"], repo.path.to_str().unwrap(), "{doc}");
    assert_eq!(a["ok"], true, "{doc}");
    assert!(a["error"].is_null(), "{doc}");
    assert!(
        a["objects"].as_u64().unwrap() >= 3,
        "packs, index, snapshot: {doc}"
    );
    assert!(a["bytes"].as_u64().unwrap() > 0, "{doc}");
    let failed = &storages[1];
    assert_eq!(failed["location"], b.to_str().unwrap(), "{doc}");
    assert_eq!(failed["ok"], false, "{doc}");
    assert!(
        failed["error"].as_str().unwrap().contains("no repository"),
        "{doc}"
    );
    assert_eq!(failed["objects"], 0, "{doc}");
}

#[test]
fn unreadable_paths_give_exit_3_and_a_restorable_snapshot() {
    let Some((repo, src, run)) = unreadable_setup() else {
        return;
    };
    let out = run(&repo, &[os("backup"), os(&src)]);
    out.code(3);
    for name in ["secret", "locked"] {
        let p = src.join(name);
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with("warning:") && l.contains(p.to_str().unwrap())),
            "no warning naming {}:\n{}",
            p.display(),
            out.stderr
        );
    }
    assert!(
        out.stderr.contains("2 path(s) could not be read"),
        "{}",
        out.stderr
    );
    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 1, "the snapshot is still written");
    assert_eq!(snaps[0]["stats"]["unreadable"], 2);

    let t = repo.fresh("t");
    repo.restore("latest", &t, &[]);
    let mut got: Vec<String> = walk(&t)
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, ["", "ok.txt", "open", "open/file"]);
    assert_eq!(fs::read(t.join("open/file")).unwrap(), b"fine");

    // JSON lists the warnings; --ignore-unreadable exits 0.
    let out = run(
        &repo,
        &[
            os("backup"),
            os("--json"),
            os("--ignore-unreadable"),
            os(&src),
        ],
    );
    out.ok();
    let w = out.json()["warnings"].as_array().unwrap().clone();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w.iter().any(|x| x.as_str().unwrap().contains("secret")));
    assert!(w.iter().any(|x| x.as_str().unwrap().contains("locked")));
    assert_eq!(repo.snapshots().len(), 2);
    chmod(&src.join("locked"), 0o755);
}

#[test]
fn unreadable_paths_are_warned_once() {
    let Some((repo, src, run)) = unreadable_setup() else {
        return;
    };
    let out = run(&repo, &[os("backup"), os("--ignore-unreadable"), os(&src)]);
    out.ok();
    for name in ["secret", "locked"] {
        let p = src.join(name);
        let n = out
            .stderr
            .lines()
            .filter(|l| l.contains(p.to_str().unwrap()))
            .count();
        assert_eq!(
            n,
            1,
            "warning for {} printed {n} times:\n{}",
            p.display(),
            out.stderr
        );
    }
    chmod(&src.join("locked"), 0o755);
}

#[test]
fn disk_full_fails_cleanly_and_the_repository_stays_usable() {
    let outer = tempfile::tempdir().unwrap();
    let mnt = outer.path().join("mnt");
    mkdir(&mnt);
    let Some(_mount) = mount_tmpfs(&mnt, "3m") else {
        return;
    };
    let repo = Repo::at(
        tempfile::tempdir().unwrap(),
        mnt.join("repo"),
        &["--insecure-fast-kdf"],
    );
    let src = outer.path().join("src");
    mkdir(&src);
    write(&src.join("small.txt"), b"small");
    write_random_file(&src.join("big.bin"), 5, 20 << 20);

    let out = repo.run(&[os("backup"), os(&src)]);
    out.failed();
    let err = out
        .stderr
        .lines()
        .find(|l| l.starts_with("rime: error:"))
        .unwrap_or_else(|| panic!("{}", out.stderr));
    assert!(
        err.to_lowercase().contains("no space"),
        "error does not say the disk is full: {err}"
    );
    assert!(
        err.contains("data/") || err.contains("index/"),
        "error does not name the object: {err}"
    );
    assert!(repo.objects("snapshots").is_empty());

    let out = repo.run(&["check"]);
    let errs = check_errors(&out);
    assert!(
        errs.iter().all(|l| l.contains("not in any index")),
        "check after a full disk reports more than unindexed packs:\n{}",
        out.stderr
    );
    assert!(out.success() || !errs.is_empty());
    eprintln!(
        "check after ENOSPC: exit {}, {} unindexed pack(s)",
        out.code,
        errs.len()
    );

    // With the big file gone, a backup fits and round-trips.
    fs::remove_file(src.join("big.bin")).unwrap();
    write(&src.join("medium.bin"), random_bytes(6, 500_000));
    repo.backup(&[&src], &[]);
    let t = outer.path().join("t");
    repo.restore("latest", &t, &[]);
    compare_trees(&src, &t);
    let out = repo.run(&["check", "--read-data"]);
    assert!(
        check_errors(&out)
            .iter()
            .all(|l| l.contains("not in any index")),
        "{}",
        out.stderr
    );
}

/// Sum of the sizes of all pack files.
fn pack_bytes(repo: &Repo) -> u64 {
    repo.packs()
        .iter()
        .map(|(_, p)| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum()
}

#[test]
fn killed_backups_leave_a_usable_repository() {
    const FILES: usize = 12;
    const FILE_SIZE: usize = 25 << 20; // 300 MB in all
    let repo = Repo::with_init_args(&["--insecure-fast-kdf", "--pack-size", "1"]);

    // Snapshots written before the kills.
    let pre = repo.dir("pre");
    write_random_file(&pre.join("a.bin"), 900, 3 << 20);
    write(&pre.join("sub/b.txt"), b"before the kills");
    let pre_id = repo.backup(&[&pre], &[])["id"]
        .as_str()
        .unwrap()
        .to_string();
    write(&pre.join("sub/b.txt"), b"before the kills, second version");
    let pre_id2 = repo.backup(&[&pre], &[])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let pre_copy = repo.tmp.path().join("pre-copy");
    cp_a(&pre, &pre_copy);

    let src = repo.dir("big");
    for i in 0..FILES {
        write_random_file(
            &src.join(format!("f{i:02}.bin")),
            1000 + i as u64,
            FILE_SIZE,
        );
    }

    // Kill moments by progress rather than by a timer (timings vary too much when the tests
    // run in parallel): each run is killed once it has written a random 15-30 % of the data in
    // new packs (plus up to 20 ms), so the three kills land at about 20-80 % of the whole job.
    let total = (FILES * FILE_SIZE) as f64;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut rnd = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as f64 / (1u64 << 31) as f64
    };
    let mut completed = 0;
    for run in 0..3 {
        let fraction = 0.15 + 0.15 * rnd();
        let extra = Duration::from_micros((rnd() * 20_000.0) as u64);
        let packs_before = pack_bytes(&repo);
        let started = Instant::now();
        let mut child = Command::new(rime_bin())
            .arg("--repo")
            .arg(&repo.path)
            .arg("--password-file")
            .arg(&repo.pw_file)
            .arg("backup")
            .arg(&src)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut finished = false;
        loop {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            if (pack_bytes(&repo) - packs_before) as f64 >= fraction * total
                || started.elapsed() > Duration::from_secs(60)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if !finished {
            std::thread::sleep(extra);
            finished = child.try_wait().unwrap().is_some();
        }
        child.kill().unwrap(); // SIGKILL (an error-free no-op if it has exited)
        child.wait().unwrap();
        completed += usize::from(finished);
        eprintln!(
            "kill {run}: after {:?} and {} MB of new packs (target {:.0} %){}",
            started.elapsed(),
            (pack_bytes(&repo) - packs_before) >> 20,
            fraction * 100.0,
            if finished {
                " -- the backup had already finished"
            } else {
                ""
            }
        );
    }
    let index_files = repo.objects("index").len();
    // Temporary files of killed runs: packs being written sit in data/, other writes in the
    // shard directories.
    let leftovers: Vec<String> = walk(&repo.path.join("data"))
        .into_iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    let locks = repo.objects("locks").len();
    eprintln!(
        "after kills: {index_files} index files, {} .tmp files, {locks} stale lock files",
        leftovers.len()
    );

    // check: every error must be an unindexed pack (packs written after the last index flush).
    let out = repo.run(&["check"]);
    let errs = check_errors(&out);
    let unindexed = out
        .stderr
        .lines()
        .filter(|l| l.contains("not in any index"))
        .count();
    eprintln!(
        "check after kills: exit {}; {} error line(s), {unindexed} unindexed pack(s); {}",
        out.code,
        errs.len(),
        out.stdout.trim()
    );
    assert!(
        errs.iter().all(|l| l.contains("is not in any index")),
        "check after killed backups reports real damage:\n{}",
        out.stderr
    );

    // Earlier snapshots are intact.
    for id in [&pre_id, &pre_id2] {
        let t = repo.tmp.path().join(format!("pre-{}", &id[..8]));
        repo.restore(id, &t, &[]);
        if id == &pre_id2 {
            compare_trees(&pre_copy, &t);
        } else {
            assert_eq!(fs::read(t.join("sub/b.txt")).unwrap(), b"before the kills");
            assert_eq!(first_difference(&pre.join("a.bin"), &t.join("a.bin")), None);
        }
    }

    // A new backup succeeds, reuses what the killed runs indexed, and round-trips.
    let b = repo.backup(&[&src], &[]);
    let reused = b["stats"]["chunks_reused"].as_u64().unwrap();
    eprintln!(
        "final backup: {} files read, {} new, {reused} reused chunks",
        b["stats"]["files_read"], b["stats"]["chunks_new"]
    );
    if completed == 0 {
        assert_eq!(
            b["stats"]["files_read"], FILES,
            "no killed run wrote a snapshot, so every file is read: {b}"
        );
    }
    if completed == 0 && index_files > 2 {
        assert!(
            reused > 0,
            "index files from the killed runs were not used: {b}"
        );
    }
    let t = repo.fresh("final");
    repo.restore("latest", &t, &[]);
    compare_trees(&src, &t);
    let out = repo.run(&["check"]);
    assert!(
        check_errors(&out)
            .iter()
            .all(|l| l.contains("is not in any index")),
        "{}",
        out.stderr
    );
}

#[test]
fn restore_latest_does_not_silently_skip_an_unreadable_newest_snapshot() {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("f"), b"old");
    repo.backup(&[&src], &[]);
    write(&src.join("f"), b"new");
    let newest = repo.backup(&[&src], &[])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let p = repo.path.join("snapshots").join(&newest);
    let len = fs::metadata(&p).unwrap().len() as usize;
    flip_byte(&p, len / 2);
    let t = repo.tmp.path().join("t");
    let out = repo.run(&[os("restore"), os("latest"), os("--target"), os(&t)]);
    // Either refuse, or at least say that the newest snapshot could not be read.
    assert!(
        out.code != 0 || out.stderr.contains(&newest[..8]),
        "restored {:?} from an older snapshot without a word about unreadable snapshot {}:\n{}{}",
        fs::read_to_string(t.join("f")).ok(),
        &newest[..8],
        out.stdout,
        out.stderr
    );
}

#[test]
fn overwrite_never_writes_through_symlinks_in_the_target() {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("d/b.txt"), b"from the snapshot");
    chmod(&src.join("d"), 0o700);
    repo.backup(&[&src], &[]);
    let outside = repo.dir("outside");
    chmod(&outside, 0o755);
    let t = repo.dir("target");
    symlink("../outside", &t.join("d"));
    let out = repo.run(&[
        os("restore"),
        os("latest"),
        os("--target"),
        os(&t),
        os("--overwrite"),
    ]);
    assert!(
        !outside.join("b.txt").exists(),
        "restore wrote {} outside its target",
        outside.join("b.txt").display()
    );
    assert_eq!(
        fs::metadata(&outside).unwrap().permissions().mode() & 0o777,
        0o755,
        "restore chmod-ed a directory outside its target"
    );
    if out.success() {
        assert!(
            fs::symlink_metadata(t.join("d")).unwrap().is_dir(),
            "the symlink should have been replaced by the directory"
        );
        assert_eq!(fs::read(t.join("d/b.txt")).unwrap(), b"from the snapshot");
    }
}

/// `check --read-data` fails and one of its error lines names `pack`.
#[track_caller]
fn read_data_check_names(repo: &Repo, pack: &str) {
    let out = repo.run(&["check", "--read-data"]);
    out.code(1);
    assert!(
        check_errors(&out).iter().any(|l| l.contains(pack)),
        "{}",
        out.stderr
    );
}

/// A restore onto a target that fills up stops (no pack is read for writes that cannot
/// succeed), says the target is full, and leaves no partial file behind: not under its real
/// name, and not set aside either, since the data is still in the repository and a partial
/// copy would keep the disk full. Files that were completed stay, exact. Restored elsewhere
/// (with --sync), the snapshot is exact.
#[test]
fn restore_onto_a_full_target_stops_and_leaves_no_partial_files() {
    let r = Repo::new();
    let src = r.dir("src");
    write(&src.join("a-small"), b"fits");
    for i in 0..4 {
        write_random_file(&src.join(format!("big{i}")), 70 + i, 6 << 20);
    }
    r.backup(&[&src], &[]);
    let outer = tempfile::tempdir().unwrap();
    let mnt = outer.path().join("mnt");
    mkdir(&mnt);
    let Some(_mount) = mount_tmpfs(&mnt, "10m") else {
        return;
    };
    let out = r.run(&[os("restore"), os("latest"), os("--target"), os(&mnt)]);
    // The first line says the target is full.
    out.error_names(&["no space left on the restore target"]);
    assert!(
        out.stderr.contains("warning: the files to restore hold")
            && out.stderr.contains("MiB free"),
        "no warning before writing: {}",
        out.stderr
    );
    for e in fs::read_dir(&mnt).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        assert!(
            !name.contains("rime-incomplete"),
            "partial copy kept: {name}"
        );
        let got = fs::read(e.path()).unwrap();
        assert_eq!(got, fs::read(src.join(&name)).unwrap(), "{name} is wrong");
    }
    assert!(
        out.stderr.contains("not restored, partial copy removed"),
        "{}",
        out.stderr
    );
    // Elsewhere, flushed to disk before success is reported (--sync), the snapshot is exact.
    let t = r.fresh("elsewhere");
    let out = r.restore("latest", &t, &["--sync", "--verify"]);
    assert!(out.stdout.contains("verified"), "{}", out.stdout);
    compare_trees(&src, &t);
}

/// Damaged data and a full target at once: a damaged blob read before the target filled up in
/// the same pack range must still be reported as damage (not hidden behind the write failure),
/// its file set aside rather than removed, and no file left under its real name with wrong
/// content. One thread throughout, so the file's chunks sit in one pack, in one range, in
/// order, and the damaged first chunk is read before the writes fail.
#[test]
fn damage_is_not_hidden_by_a_full_target() {
    let r = Repo::new();
    let one = [
        ("RAYON_NUM_THREADS", std::ffi::OsStr::new("1")),
        ("RIME_PASSWORD_FILE", r.pw_file.as_os_str()),
    ];
    let src = r.dir("src");
    write_random_file(&src.join("big"), 81, 5 << 20);
    r.run_env(&[os("backup"), os(&src)], &one).ok();
    // Blobs start at offset 0 of a pack: damage the file's first chunk.
    let data: Vec<_> = r
        .packs()
        .into_iter()
        .filter(|(_, p)| fs::metadata(p).unwrap().len() > 1 << 20)
        .collect();
    assert_eq!(data.len(), 1, "one data pack");
    let mut b = fs::read(&data[0].1).unwrap();
    b[50] ^= 0x40;
    fs::write(&data[0].1, b).unwrap();
    let outer = tempfile::tempdir().unwrap();
    let mnt = outer.path().join("mnt");
    mkdir(&mnt);
    let Some(_mount) = mount_tmpfs(&mnt, "1m") else {
        return;
    };
    let out = r.run_env(
        &[os("restore"), os("latest"), os("--target"), os(&mnt)],
        &one,
    );
    out.failed();
    assert!(
        out.stderr.contains("authentication failed") && out.stderr.contains("No space left"),
        "both the damage and the full target are reported: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("big.rime-incomplete"),
        "the damaged file's partial content is set aside, not removed: {}",
        out.stderr
    );
    for e in fs::read_dir(&mnt).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(
            name.contains(".rime-incomplete"),
            "{name} left under its name"
        );
    }
}

/// A file that cannot be completed is never left under its name as if it were: here a file
/// size limit (`ulimit -f`, with SIGXFSZ ignored so the kernel answers `EFBIG`) stops both a
/// file whose data runs past the limit and a sparse file whose trailing hole does (its size is
/// set last). Both are named in the error and set aside; the other files of the same packs are
/// still restored exactly, and the restore fails.
#[test]
fn files_that_cannot_reach_their_size_are_set_aside_and_the_rest_restored() {
    let r = Repo::new();
    let src = r.dir("src");
    write(&src.join("small"), b"fits easily");
    write_random_file(&src.join("fits.bin"), 90, 300_000);
    write_random_file(&src.join("too-big.bin"), 91, 3 << 20);
    {
        use std::io::Write;
        let mut f = fs::File::create(src.join("sparse-tail.img")).unwrap();
        f.write_all(&random_bytes(92, 64 << 10)).unwrap();
        f.set_len(8 << 20).unwrap();
    }
    write_random_file(&src.join("zz-after.bin"), 93, 200_000);
    r.backup(&[&src], &[]);
    let target = r.fresh("target");
    // 2 MiB in 1024-byte blocks.
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"trap '' XFSZ; ulimit -f 2048; exec "$@""#)
        .arg("bash")
        .arg(rime_bin())
        .args([
            os("--repo"),
            os(&r.path),
            os("--password-file"),
            os(&r.pw_file),
        ])
        .args([os("restore"), os("latest"), os("--target"), os(&target)])
        .env_remove("RIME_REPO")
        .env_remove("RIME_PASSWORD")
        .env_remove("RIME_PASSWORD_FILE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "restore reported success: {stderr}");
    assert!(
        stderr.contains("cannot set the size of") && stderr.contains("sparse-tail.img"),
        "the sparse file's size failure is not named: {stderr}"
    );
    assert!(
        stderr.contains("too-big.bin") && stderr.contains("File too large"),
        "the oversized file is not named: {stderr}"
    );
    let root = target.clone();
    for gone in ["too-big.bin", "sparse-tail.img"] {
        assert!(
            fs::symlink_metadata(root.join(gone)).is_err(),
            "{gone} left under its name"
        );
        assert!(
            root.join(format!("{gone}.rime-incomplete")).exists(),
            "{gone} not set aside: {stderr}"
        );
    }
    for kept in ["small", "fits.bin", "zz-after.bin"] {
        assert_eq!(
            fs::read(root.join(kept)).unwrap(),
            fs::read(src.join(kept)).unwrap(),
            "{kept} is wrong"
        );
    }
}

/// A pack whose header or trailer is damaged still holds intact blobs before it: `repair`
/// rebuilds the index from the headers it can read, but keeps what the previous index said
/// about such a pack (every blob is verified when read anyway), so the restore still works
/// after the repair. It used to drop them ("its blobs are lost") and make the restore fail.
#[test]
fn repair_keeps_the_intact_blobs_of_a_pack_with_a_damaged_trailer() {
    let (repo, src) = repo_with_data();
    let (_, pack) = largest_pack(&repo);
    let len = fs::metadata(&pack).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&pack).unwrap();
    f.set_len(len - 20).unwrap();
    drop(f);
    // A structural check sees it without reading data: the pack is shorter than its indexed
    // blobs plus the header listing them plus the trailer.
    let name = pack.file_name().unwrap().to_string_lossy().to_string();
    let checked = repo.run(&["check"]);
    checked.code(1);
    assert!(
        checked
            .stderr
            .contains(&format!("pack {name} is truncated")),
        "{}",
        checked.stderr
    );
    let out = repo.run(&["repair"]);
    out.ok();
    assert!(
        out.stderr.contains("are kept") && !out.stderr.contains("are lost"),
        "{}",
        out.stderr
    );
    let t = repo.fresh("after-repair");
    repo.restore("latest", &t, &["--verify"]);
    compare_trees(&src, &t);
}
