//! One repository on several storages: `--repo` repeated, `rime copy`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::*;

/// `rime --repo R1 --repo R2 ... --password-file P ARGS...`: one repository over `repos`.
fn run_with_password(pw_file: &Path, repos: &[&Path], args: &[&str]) -> Out {
    let mut all: Vec<std::ffi::OsString> = vec![];
    for r in repos {
        all.push(os("--repo"));
        all.push(os(r));
    }
    all.push(os("--password-file"));
    all.push(os(pw_file));
    all.extend(args.iter().map(os));
    rime_raw(all, &[])
}

/// [`run_with_password`] with the password of `repo` (a `Repo` used for its directory and
/// password file).
fn run_multi(repo: &Repo, repos: &[&Path], args: &[&str]) -> Out {
    run_with_password(&repo.pw_file, repos, args)
}

fn snapshot_ids(repo: &Repo, at: &Path) -> Vec<String> {
    snapshot_ids_listed(&run_multi(repo, &[at], &["snapshots", "--json"]))
}

/// Storages `a` and `b` beside a `Repo` (used for its directory and password file), one
/// repository initialised over both with `init_extra`.
fn initialised_on_a_and_b(init_extra: &[&str]) -> (Repo, PathBuf, PathBuf) {
    let repo = Repo::new();
    let a = repo.tmp.path().join("a");
    let b = repo.tmp.path().join("b");
    let mut init = vec!["init", "--insecure-fast-kdf"];
    init.extend(init_extra);
    run_multi(&repo, &[&a, &b], &init).ok();
    (repo, a, b)
}

/// As [`initialised_on_a_and_b`], with the repository initialised on `a` only: `b` does not
/// exist yet.
fn initialised_on_a_only() -> (Repo, PathBuf, PathBuf) {
    let repo = Repo::new();
    let a = repo.tmp.path().join("a");
    let b = repo.tmp.path().join("b");
    run_multi(&repo, &[&a], &["init", "--insecure-fast-kdf"]).ok();
    (repo, a, b)
}

/// A source directory beside `repo` of `count` random files `f0`, `f1`, ... of `len` bytes,
/// seeded `first_seed`, `first_seed + 1`, ...
fn random_source(repo: &Repo, count: u64, first_seed: u64, len: usize) -> PathBuf {
    let src = repo.dir("src");
    for i in 0..count {
        write_random_file(&src.join(format!("f{i}")), first_seed + i, len);
    }
    src
}

/// `restore latest --target <out>` over `from`.
fn restore_latest(repo: &Repo, from: &[&Path], out: &Path) -> Out {
    run_multi(
        repo,
        from,
        &["restore", "latest", "--target", out.to_str().unwrap()],
    )
}

/// `rime copy EXTRA... --from <from> --to <to>`.
fn copy(repo: &Repo, extra: &[&str], from: &Path, to: &Path) -> Out {
    let mut args = vec!["copy"];
    args.extend(extra);
    args.extend([
        "--from",
        from.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]);
    run_multi(repo, &[], &args)
}

#[test]
fn one_backup_to_two_storages_gives_two_complete_repositories() {
    let (repo, a, b) = initialised_on_a_and_b(&[]);
    let src = random_source(&repo, 5, 0, 300_000);
    let o = run_multi(&repo, &[&a, &b], &["backup", src.to_str().unwrap()]);
    o.ok();
    assert!(
        o.stderr.contains(&format!("storage {}: ok", a.display())),
        "{}",
        o.stderr
    );
    let ids_a = snapshot_ids(&repo, &a);
    assert_eq!(ids_a.len(), 1);
    assert_eq!(ids_a, snapshot_ids(&repo, &b), "same snapshot ids on both");
    // Each storage alone is a complete repository.
    for r in [&a, &b] {
        run_multi(&repo, &[r], &["check", "--read-data"]).ok();
        let out = repo.fresh(&format!("out-{}", r.file_name().unwrap().to_str().unwrap()));
        restore_latest(&repo, &[r], &out).ok();
        compare_trees(&src, &out);
    }
    // A restore falls back to the other storage for what one has lost.
    for entry in walk(&a.join("data")) {
        let p = a.join("data").join(entry);
        if p.is_file() {
            fs::remove_file(&p).unwrap();
        }
    }
    let out = repo.fresh("fallback");
    restore_latest(&repo, &[&a, &b], &out).ok();
    compare_trees(&src, &out);
}

#[test]
fn a_full_storage_fails_alone_and_copy_catches_it_up() {
    let repo = Repo::new();
    let a = repo.tmp.path().join("a");
    let small = repo.dir("small");
    let Some(_m) = mount_tmpfs(&small, "2m") else {
        return;
    };
    let b = small.join("b");
    run_multi(&repo, &[&a, &b], &["init", "--insecure-fast-kdf"]).ok();
    let src = random_source(&repo, 4, 10, 1 << 20);
    let o = run_multi(
        &repo,
        &[&a, &b],
        &["backup", "--compression", "0", src.to_str().unwrap()],
    );
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert!(
        o.stderr
            .contains(&format!("storage {}: FAILED", b.display())),
        "{}",
        o.stderr
    );
    assert_eq!(
        snapshot_ids(&repo, &a).len(),
        1,
        "the working storage has the backup"
    );
    assert!(
        snapshot_ids(&repo, &b).is_empty(),
        "the full one has no snapshot"
    );
    run_multi(&repo, &[&b], &["check"]).ok();
    // Before the copy, the newest snapshot is on `a` alone: listed and restored through both,
    // even with the lagging storage named first.
    let lagging_first = run_multi(&repo, &[&b, &a], &["snapshots", "--json"]);
    lagging_first.ok();
    assert_eq!(lagging_first.json().as_array().unwrap().len(), 1);
    let early = repo.fresh("early");
    restore_latest(&repo, &[&b, &a], &early).ok();
    compare_trees(&src, &early);
    // Room again: copy brings the lagging storage up to date, with the same snapshot.
    crate::devices::sh(&format!("mount -o remount,size=64m {}", small.display()));
    copy(&repo, &[], &a, &b).ok();
    assert_eq!(snapshot_ids(&repo, &a), snapshot_ids(&repo, &b));
    run_multi(&repo, &[&b], &["check", "--read-data"]).ok();
    let out = repo.fresh("out");
    restore_latest(&repo, &[&b], &out).ok();
    compare_trees(&src, &out);
    // A second copy has nothing to do.
    let c = copy(&repo, &["--json"], &a, &b);
    c.ok();
    assert_eq!(c.json()["objects"], 0);
    // The next backup to both works.
    run_multi(&repo, &[&a, &b], &["backup", src.to_str().unwrap()]).ok();
}

#[test]
fn storages_holding_different_repositories_are_refused() {
    let (repo, a, b) = initialised_on_a_only();
    run_multi(&repo, &[&b], &["init", "--insecure-fast-kdf"]).ok();
    let src = repo.dir("src");
    write(&src.join("f"), b"x");
    run_multi(&repo, &[&a, &b], &["backup", src.to_str().unwrap()])
        .failed()
        .error_names(&["different repository"]);
    copy(&repo, &[], &a, &b)
        .failed()
        .error_names(&["different repository"]);
    // A storage without the repository (wiped, or an unmounted disk) fails alone: the other
    // still gets the backup, the run exits 4 and says how to seed the empty one.
    let c = repo.tmp.path().join("c");
    fs::create_dir_all(&c).unwrap();
    let before = snapshot_ids(&repo, &a).len();
    let o = run_multi(&repo, &[&a, &c], &["backup", src.to_str().unwrap()]);
    o.code(4);
    assert!(
        o.stderr.lines().any(|l| l.contains(c.to_str().unwrap())
            && l.contains("holds no repository")
            && l.contains("rime copy")),
        "{}",
        o.stderr
    );
    assert_eq!(snapshot_ids(&repo, &a).len(), before + 1);
    assert!(!c.join("config").exists(), "nothing is created on it");
    // With no storage holding one, the run is refused.
    let d = repo.tmp.path().join("d");
    fs::create_dir_all(&d).unwrap();
    run_multi(&repo, &[&c, &d], &["backup", src.to_str().unwrap()]).code(10);
}

#[test]
fn freezer_config_file_storages_receive_one_backup() {
    let repo = Repo::new();
    let a = repo.tmp.path().join("first");
    let b = repo.tmp.path().join("second");
    let mut ini = format!(
        "[default]\naction = backup\nbackup_name = mytest6\n\n[storage:first]\nstorage=local\ncontainer = {}\n\n[storage:second]\nstorage = local\ncontainer = {}\n",
        a.display(),
        b.display()
    );
    // With the SFTP test server running (tests/run.sh starts it), a third storage over SSH.
    let sftp = std::env::var("RIME_TEST_SSH_HOST").ok().map(|host| {
        let dir = format!("/tmp/rime-cfg-sftp-{}", std::process::id());
        ini.push_str(&format!(
            "\n[storage:ssh]\nstorage = ssh\ncontainer = {dir}\nssh_host = {host}\nssh_port = {}\nssh_username = {}\nssh_key = {}\n",
            std::env::var("RIME_TEST_SSH_PORT").unwrap(),
            std::env::var("RIME_TEST_SSH_USER").unwrap(),
            std::env::var("RIME_TEST_SSH_KEY").unwrap(),
        ));
        dir
    });
    let cfg = repo.tmp.path().join("job.ini");
    write(&cfg, &ini);
    let mut extra: Vec<std::ffi::OsString> = vec![os("--config"), os(&cfg)];
    if let Ok(cf) = std::env::var("RIME_TEST_SSH_CONFIG") {
        extra.extend([os("--ssh-config"), os(cf)]);
    }
    let run = |args: &[&str]| {
        let mut all = extra.clone();
        all.extend([os("--password-file"), os(&repo.pw_file)]);
        all.extend(args.iter().map(os));
        rime_raw(all, &[])
    };
    run(&["init", "--insecure-fast-kdf"]).ok();
    let src = repo.dir("src");
    write_random_file(&src.join("f"), 5, 200_000);
    let o = run(&["backup", src.to_str().unwrap()]);
    o.ok();
    let ids = snapshot_ids(&repo, &a);
    assert_eq!(ids.len(), 1);
    assert_eq!(ids, snapshot_ids(&repo, &b));
    if let Some(dir) = sftp {
        assert!(o.stderr.contains(&format!("{dir}: ok")), "{}", o.stderr);
        let _ = std::fs::remove_dir_all(&dir);
    }
    // A section with an unsupported storage is named.
    write(&cfg, "[storage:old]\nstorage = ftp\ncontainer = x\n");
    run(&["snapshots"])
        .failed()
        .error_names(&["storage:old", "ftp"]);
}

/// A storage can serve damaged bytes without any error of its own: the restore must detect the
/// damage blob by blob, read those blobs from the other storage, say which copy was damaged,
/// and restore exactly. With every copy damaged it must fail and name the pack.
#[test]
fn a_corrupted_pack_on_one_storage_is_read_from_the_other() {
    let (repo, a, b) = initialised_on_a_and_b(&[]);
    let src = random_source(&repo, 4, 40, 700_000);
    run_multi(&repo, &[&a, &b], &["backup", src.to_str().unwrap()]).ok();
    // Flip bytes in the middle of every data pack on `a` (same size, no I/O error).
    let damage = |root: &Path| {
        let mut n = 0;
        for entry in walk(&root.join("data")) {
            let p = root.join("data").join(entry);
            if p.is_file() {
                let mut bytes = fs::read(&p).unwrap();
                if bytes.len() > 4096 {
                    let mid = bytes.len() / 2;
                    for x in &mut bytes[mid..mid + 64] {
                        *x ^= 0x5a;
                    }
                    fs::write(&p, bytes).unwrap();
                    n += 1;
                }
            }
        }
        assert!(n > 0, "no pack was damaged");
    };
    damage(&a);
    // check reads every copy, and names the damaged storage (not the good one).
    let o = run_multi(&repo, &[&a, &b], &["check", "--read-data"]);
    assert_ne!(
        o.code, 0,
        "check missed damage on one storage: {}",
        o.stdout
    );
    assert!(
        o.stderr
            .contains(&format!("storage {}: error", a.display()))
            && !o
                .stderr
                .contains(&format!("storage {}: error", b.display())),
        "{}",
        o.stderr
    );
    let out = repo.fresh("from-good-copy");
    let o = restore_latest(&repo, &[&a, &b], &out);
    o.ok();
    compare_trees(&src, &out);
    assert!(
        o.stderr.contains("damaged copy") && o.stderr.contains("read again from copy"),
        "the damage on one storage was not reported: {}",
        o.stderr
    );
    // Both copies damaged: an error naming the pack, never wrong data.
    damage(&b);
    let out = repo.fresh("both-damaged");
    let o = restore_latest(&repo, &[&a, &b], &out);
    assert_ne!(o.code, 0, "a restore from two damaged copies succeeded");
    assert!(
        o.stderr.contains("damaged on all 2 storages") && o.stderr.contains("pack "),
        "{}",
        o.stderr
    );
}

/// `rime copy` checks each pack against its name before writing it (damage at the source is
/// not spread, and is named), replaces a destination object whose size differs from the
/// source's (damaged there), and holds locks on both sides when it has the password.
#[test]
fn copy_checks_packs_replaces_damaged_copies_and_locks_both_sides() {
    let (repo, a, b) = initialised_on_a_only();
    let src = repo.dir("src");
    write_random_file(&src.join("one"), 31, 2 << 20);
    run_multi(&repo, &[&a], &["backup", src.to_str().unwrap()]).ok();
    let first = copy(&repo, &["--json"], &a, &b);
    first.ok();
    assert_eq!(first.json()["locked"], true, "{}", first.stdout);
    // A pack cut short on the destination is found by its size and copied again.
    let largest = |root: &Path| {
        walk(&root.join("data"))
            .into_iter()
            .map(|p| root.join("data").join(p))
            .filter(|p| p.is_file())
            .max_by_key(|p| fs::metadata(p).unwrap().len())
            .unwrap()
    };
    let cut = largest(&b);
    let len = fs::metadata(&cut).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&cut)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    // An index file of another size on the destination: copy cannot tell which side is
    // damaged without checking it, so it says so and replaces nothing.
    let index = walk(&b.join("index"))
        .into_iter()
        .map(|p| b.join("index").join(p))
        .find(|p| p.is_file())
        .unwrap();
    let good_index = fs::read(&index).unwrap();
    fs::write(&index, &good_index[..good_index.len() - 7]).unwrap();
    let again = copy(&repo, &["--json"], &a, &b);
    again.ok();
    assert_eq!(again.json()["replaced"], 1, "{}", again.stdout);
    assert_eq!(
        again.json()["differing"].as_array().map(Vec::len),
        Some(1),
        "{}",
        again.stdout
    );
    assert!(again.stderr.contains("not replaced"), "{}", again.stderr);
    assert_eq!(fs::read(&index).unwrap().len(), good_index.len() - 7);
    fs::write(&index, &good_index).unwrap();
    run_multi(&repo, &[&b], &["check", "--read-data"]).ok();
    // A new backup on `a` alone, one of whose packs is then damaged there: not copied, named,
    // and everything else (the snapshot included) is.
    write_random_file(&src.join("two"), 32, 2 << 20);
    run_multi(&repo, &[&a], &["backup", src.to_str().unwrap()]).ok();
    let before: Vec<_> = walk(&b.join("data"));
    let new_pack = walk(&a.join("data"))
        .into_iter()
        .find(|p| !before.contains(p) && a.join("data").join(p).is_file())
        .map(|p| a.join("data").join(p))
        .expect("a pack only on a");
    let mut bytes = fs::read(&new_pack).unwrap();
    bytes[10] ^= 0x01;
    fs::write(&new_pack, bytes).unwrap();
    let name = new_pack.file_name().unwrap().to_str().unwrap().to_string();
    let bad = copy(&repo, &["--json"], &a, &b);
    bad.failed().error_names(&[&name, "damaged at the source"]);
    assert!(
        !b.join("data").join(&name[..2]).join(&name).exists(),
        "the damaged pack was copied"
    );
    assert_eq!(snapshot_ids(&repo, &a), snapshot_ids(&repo, &b));
}

/// `--limit-upload` is one budget for the whole run, not one per storage: two storages
/// receiving ~2.5 MiB each at `--limit-upload 1M` need about 3-4 s together (up to 2 s worth
/// passes as burst), where a bucket per storage lets them finish in about 1.5 s.
#[test]
fn the_upload_limit_is_one_budget_for_all_storages() {
    let (repo, a, b) = initialised_on_a_and_b(&[]);
    let src = repo.dir("src");
    write_random_file(&src.join("f"), 21, 5 << 19);
    let start = std::time::Instant::now();
    run_multi(
        &repo,
        &[&a, &b],
        &["--limit-upload", "1M", "backup", src.to_str().unwrap()],
    )
    .ok();
    let took = start.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(2600) && took < std::time::Duration::from_secs(60),
        "2 x 2.5 MiB at a shared 1 MiB/s took {took:?}"
    );
    assert_eq!(snapshot_ids(&repo, &a), snapshot_ids(&repo, &b));
}

/// A dry run to two storages writes to neither, and says for each what it would have received;
/// the per-storage summary says "would write", not "written".
#[test]
fn a_dry_run_to_two_storages_writes_nothing_and_reports_each() {
    let (repo, a, b) = initialised_on_a_and_b(&[]);
    let src = repo.dir("src");
    write_random_file(&src.join("f"), 22, 300_000);
    let (before_a, before_b) = (walk(&a), walk(&b));
    let o = run_multi(
        &repo,
        &[&a, &b],
        &["--dry-run", "backup", src.to_str().unwrap()],
    );
    o.ok();
    assert_eq!(walk(&a), before_a, "nothing written to a");
    assert_eq!(walk(&b), before_b, "nothing written to b");
    for r in [&a, &b] {
        let line = o
            .stdout
            .lines()
            .find(|l| l.contains(&format!("nothing was written to {};", r.display())))
            .unwrap_or_else(|| panic!("no dry-run line for {}: {}", r.display(), o.stdout));
        assert!(
            line.contains("packs (") && line.contains("1 snapshot"),
            "{line}"
        );
        assert!(
            o.stderr.contains(&format!(
                "storage {}: ok (dry run: would write",
                r.display()
            )),
            "{}",
            o.stderr
        );
    }
    assert!(!o.stderr.contains("written)"), "{}", o.stderr);
    assert!(snapshot_ids(&repo, &a).is_empty() && snapshot_ids(&repo, &b).is_empty());
}

/// `rime copy` takes `storage:NAME` (or a bare section name) for `[storage:NAME]` sections of
/// `--config`, each side with its own settings; an unknown section is named with those there are.
#[test]
fn copy_between_config_sections_by_name() {
    let repo = Repo::new();
    let a = repo.tmp.path().join("first");
    let b = repo.tmp.path().join("second");
    let cfg = repo.tmp.path().join("job.ini");
    write(
        &cfg,
        format!(
            "[storage:first]\nstorage = local\ncontainer = {}\n[storage:second]\nstorage = local\ncontainer = {}\n",
            a.display(),
            b.display()
        ),
    );
    run_multi(&repo, &[&a], &["init", "--insecure-fast-kdf"]).ok();
    let src = repo.dir("src");
    write_random_file(&src.join("f"), 23, 200_000);
    run_multi(&repo, &[&a], &["backup", src.to_str().unwrap()]).ok();
    let copy = |from: &str, to: &str| {
        rime_raw(
            [
                os("--config"),
                os(&cfg),
                os("copy"),
                os("--from"),
                os(from),
                os("--to"),
                os(to),
            ],
            &[],
        )
    };
    // No path `second` exists in the working directory, so the bare name means the section.
    let o = copy("storage:first", "second");
    o.ok();
    assert!(
        o.stdout.contains(&format!("to {}", b.display())),
        "{}",
        o.stdout
    );
    assert_eq!(snapshot_ids(&repo, &a), snapshot_ids(&repo, &b));
    run_multi(&repo, &[&b], &["check", "--read-data"]).ok();
    copy("storage:third", "storage:second")
        .failed()
        .error_names(&["--from", "[storage:third]", "first, second"]);
}

/// Check `at` alone and restore its newest snapshot: byte-identical to `src`.
fn assert_intact(repo: &Repo, at: &Path, src: &Path, out: &str) {
    run_multi(repo, &[at], &["check", "--read-data"]).ok();
    assert_eq!(
        snapshot_ids(repo, at).len(),
        1,
        "the snapshot is still there"
    );
    let out = repo.fresh(out);
    restore_latest(repo, &[at], &out).ok();
    compare_trees(src, &out);
}

/// Audit 4, finding 1: a backup that filled one storage leaves the snapshot on the other only;
/// prune over both must not take that snapshot's packs for orphans (they reached both storages
/// but no index there names them) and delete them from both.
#[test]
fn prune_over_storages_keeps_packs_a_snapshot_on_one_of_them_needs() {
    let repo = Repo::new();
    let a = repo.tmp.path().join("a");
    let small = repo.dir("small");
    let Some(_m) = mount_tmpfs(&small, "3m") else {
        return;
    };
    let b = small.join("b");
    run_multi(
        &repo,
        &[&a, &b],
        &["init", "--insecure-fast-kdf", "--pack-size", "1"],
    )
    .ok();
    let src = random_source(&repo, 6, 40, 1 << 20);
    let o = run_multi(
        &repo,
        &[&a, &b],
        &["backup", "--compression", "0", src.to_str().unwrap()],
    );
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert!(snapshot_ids(&repo, &b).is_empty(), "the full one has none");
    crate::devices::sh(&format!("mount -o remount,size=64m {}", small.display()));
    // Twice: the first marks, the second deletes what was marked.
    let mut outs = vec![];
    for _ in 0..2 {
        let p = run_multi(&repo, &[&a, &b], &["prune", "--grace-minutes", "0"]);
        p.ok();
        outs.push(p.stdout);
    }
    assert_intact(&repo, &a, &src, "out");
    run_multi(&repo, &[&b], &["check"]).ok();
    for (o, s) in outs.iter().flat_map(|o| [(o, &a), (o, &b)]) {
        assert!(
            o.contains(&format!("storage {}:", s.display())),
            "reported per storage: {o}"
        );
    }
    // A storage that cannot be pruned is named and the others are still pruned: exit 4.
    let gone = repo.tmp.path().join("gone");
    let p = run_multi(&repo, &[&a, &gone], &["prune", "--grace-minutes", "0"]);
    assert_eq!(p.code, 4, "{}\n{}", p.stdout, p.stderr);
    assert!(
        p.stderr.contains(&format!("storage {}", gone.display())),
        "{}",
        p.stderr
    );
    // forget runs per storage as well (exit 4 likewise).
    let f = run_multi(&repo, &[&a, &gone], &["forget", "--keep-last", "1"]);
    assert_eq!(f.code, 4, "{}\n{}", f.stdout, f.stderr);
    assert_intact(&repo, &a, &src, "out2");
}

/// Audit 4, finding 2: init over a new storage and one that holds a repository must refuse,
/// naming the existing one, and write nothing (its config replaced = every snapshot lost).
#[test]
fn init_over_storages_refuses_when_one_already_holds_a_repository() {
    let (repo, a, b) = initialised_on_a_only();
    let src = random_source(&repo, 2, 60, 200_000);
    run_multi(&repo, &[&a], &["backup", src.to_str().unwrap()]).ok();
    let config = fs::read(a.join("config")).unwrap();
    let o = run_multi(&repo, &[&b, &a], &["init", "--insecure-fast-kdf"]);
    o.failed();
    assert!(
        o.stderr
            .contains(&format!("a repository already exists at {}", a.display())),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("rime copy --from"), "{}", o.stderr);
    assert_eq!(fs::read(a.join("config")).unwrap(), config, "config kept");
    assert!(!b.join("config").exists(), "nothing created on the new one");
    assert_intact(&repo, &a, &src, "out");
}

/// Audit 4, finding 3: a pack lost on one storage only; repair (and --forget-broken) over both
/// must not drop it from the other storage's index nor forget the snapshot intact there.
#[test]
fn repair_over_storages_leaves_the_intact_copy_alone() {
    let (repo, a, b) = initialised_on_a_and_b(&["--pack-size", "1"]);
    let src = random_source(&repo, 4, 70, 1 << 20);
    run_multi(
        &repo,
        &[&a, &b],
        &["backup", "--compression", "0", src.to_str().unwrap()],
    )
    .ok();
    let lost = walk(&b.join("data"))
        .into_iter()
        .map(|p| b.join("data").join(p))
        .find(|p| {
            p.is_file()
                && p.file_name().unwrap().len() == 64
                && fs::metadata(p).unwrap().len() > 500_000
        })
        .expect("a data pack on b");
    fs::remove_file(&lost).unwrap();
    run_multi(&repo, &[&a], &["check"]).ok();
    let mut outs = vec![];
    for _ in 0..2 {
        let r = run_multi(&repo, &[&a, &b], &["repair", "--forget-broken"]);
        r.ok();
        outs.push(r.stdout);
    }
    assert_intact(&repo, &a, &src, "out");
    for o in &outs {
        assert!(o.contains(&format!("storage {}:", a.display())), "{o}");
    }
    // On b, where the data is gone, the broken snapshot was forgotten; b is consistent.
    assert!(snapshot_ids(&repo, &b).is_empty());
    run_multi(&repo, &[&b], &["check"]).ok();
}

/// A key added while one storage was down exists on the other only: the repository still
/// opens with the new password over both (key files are the union), the key command says which
/// storage lacks it and exits 4, `rime copy` brings it there, and a key removed while a storage
/// is down is reported as still held there.
#[test]
fn a_key_changed_while_a_storage_is_down_still_opens_over_all() {
    let (repo, a, b) = initialised_on_a_and_b(&[]);
    let away = repo.tmp.path().join("b-unmounted");
    let pw2 = repo.tmp.path().join("pw2");
    fs::write(&pw2, "second password").unwrap();
    // With a second password: the same repositories, the other password file.
    let with_pw2 = |repos: &[&Path], args: &[&str]| run_with_password(&pw2, repos, args);

    fs::rename(&b, &away).unwrap();
    let o = run_multi(
        &repo,
        &[&a, &b],
        &[
            "key",
            "add",
            "--insecure-fast-kdf",
            "--new-password-file",
            pw2.to_str().unwrap(),
        ],
    );
    o.code(4);
    let line = o
        .stderr
        .lines()
        .find(|l| l.contains(&format!("storage {}: FAILED", b.display())))
        .unwrap_or_else(|| panic!("b reported as failed: {}", o.stderr));
    assert!(
        line.contains("lacks the new key") && line.contains("rime copy"),
        "{line}"
    );
    assert!(
        o.stderr.contains(&format!("storage {}: ok", a.display())),
        "{}",
        o.stderr
    );
    fs::rename(&away, &b).unwrap();

    // Both storages up: the new password opens the repository for a backup over both.
    let src = repo.dir("src");
    write_random_file(&src.join("f"), 1, 10_000);
    with_pw2(&[&a, &b], &["backup", src.to_str().unwrap()]).ok();
    // b alone lacks the key until `rime copy` brings it.
    with_pw2(&[&b], &["snapshots"]).code(12);
    copy(&repo, &[], &a, &b).ok();
    with_pw2(&[&b], &["snapshots"]).ok();

    // Removing the first key while b is down: b still holds it, and the report says so.
    let keys = with_pw2(&[&a], &["key", "list", "--json"]);
    keys.ok();
    let first = keys
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == false)
        .map(|k| k["id"].as_str().unwrap().to_string())
        .expect("the first key");
    fs::rename(&b, &away).unwrap();
    let o = with_pw2(&[&a, &b], &["key", "remove", &first]);
    o.code(4);
    assert!(
        o.stderr
            .contains(&format!("rime key remove {first}` again")),
        "{}",
        o.stderr
    );
    fs::rename(&away, &b).unwrap();
    run_multi(&repo, &[&b], &["snapshots"]).ok();
    run_multi(&repo, &[&a], &["snapshots"]).code(12);
}

/// `rime check` over several storages where one lacks the repository exits 4 (done on some,
/// failed on others) like the other per-storage commands, not 1 (which says damage was found).
#[test]
fn check_with_a_storage_lacking_the_repository_exits_4() {
    let repo = Repo::new();
    let a = repo.tmp.path().join("a");
    let b = repo.tmp.path().join("b-not-mounted");
    run_multi(&repo, &[&a], &["init", "--insecure-fast-kdf"]).ok();
    let o = run_multi(&repo, &[&a, &b], &["check"]);
    o.code(4);
    assert!(
        o.stderr.contains(&format!("storage {}", b.display())),
        "{}",
        o.stderr
    );
    assert!(o.stdout.contains("no errors"), "{}", o.stdout);
}
