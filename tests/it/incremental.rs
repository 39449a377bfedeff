//! Incremental backups: the parent snapshot, unchanged-file detection, dedup, names, hosts, tags.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::util::*;

fn stat(v: &Value, k: &str) -> u64 {
    v["stats"][k]
        .as_u64()
        .unwrap_or_else(|| panic!("no stats.{k} in {v}"))
}

/// Six files (one multi-chunk), a subdirectory, a symlink.
fn make_tree(dir: &Path) {
    write(&dir.join("a.txt"), b"alpha");
    write(&dir.join("b.bin"), random_bytes(1, 200_000));
    write_random_file(&dir.join("big.bin"), 2, 3 << 20);
    write(&dir.join("sub/c.txt"), b"gamma");
    write(&dir.join("sub/d.bin"), random_bytes(3, 50_000));
    write(&dir.join("sub/deeper/e"), b"");
    symlink("a.txt", &dir.join("link"));
}

#[test]
fn unchanged_second_backup_reads_nothing_and_has_the_first_as_parent() {
    let repo = Repo::new();
    let src = repo.dir("data");
    make_tree(&src);
    let b1 = repo.backup(&[&src], &[]);
    assert_eq!(stat(&b1, "files"), 6);
    assert_eq!(stat(&b1, "files_read"), 6, "{b1}");
    assert!(b1["parent"].is_null(), "first backup has no parent: {b1}");

    let b2 = repo.backup(&[&src], &[]);
    assert_eq!(stat(&b2, "files"), 6);
    assert_eq!(stat(&b2, "files_read"), 0, "{b2}");
    assert_eq!(stat(&b2, "bytes_read"), 0, "{b2}");
    assert_eq!(stat(&b2, "chunks_new"), 0, "{b2}");
    assert!(
        stat(&b2, "bytes_added") < 4096,
        "an unchanged tree adds at most a few tree blobs: {b2}"
    );
    assert_eq!(b2["parent"], b1["id"]);
    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 2);
    assert_eq!(
        snaps[1]["parent"], b1["id"],
        "snapshots --json records the parent"
    );

    // Changing one file: exactly that file is read.
    write(&src.join("sub/c.txt"), b"gamma, changed");
    let b3 = repo.backup(&[&src], &[]);
    assert_eq!(stat(&b3, "files_read"), 1, "{b3}");
    assert_eq!(stat(&b3, "bytes_read"), 14, "{b3}");
    assert_eq!(b3["parent"], b2["id"]);

    // --force reads everything again, and stores nothing new.
    let b4 = repo.backup(&[&src], &["--force"]);
    assert_eq!(stat(&b4, "files_read"), 6, "{b4}");
    assert_eq!(stat(&b4, "chunks_new"), 0, "{b4}");
    assert!(stat(&b4, "chunks_reused") >= 5, "{b4}");

    let target = repo.fresh("restored");
    repo.restore("latest", &target, &[]);
    compare_trees(&src, &target);
}

#[test]
fn ignore_inode_after_cp_a_reads_nothing() {
    let repo = Repo::new();
    let one = repo.dir("one");
    let src = one.join("data");
    make_tree(&src);
    let b1 = repo.backup(&[&src], &[]);
    let id1 = b1["id"].as_str().unwrap();

    // Same last component ("data"), so the root node matches the parent's.
    let two = repo.dir("two");
    let copy = two.join("data");
    cp_a(&src, &copy);
    // Without --ignore-inode the new inode numbers and ctimes make every file look changed.
    let b2 = repo.backup(&[&copy], &["--parent", id1]);
    assert_eq!(b2["parent"].as_str(), Some(id1));
    assert_eq!(stat(&b2, "files_read"), 6, "{b2}");
    assert_eq!(
        stat(&b2, "chunks_new"),
        0,
        "same data: nothing new is stored: {b2}"
    );

    // An unknown --parent is an error naming it, and writes nothing.
    let n = repo.snapshots().len();
    repo.run(&[os("backup"), os("--parent"), os("abcdef0123"), os(&copy)])
        .error_names(&["abcdef0123"]);
    assert_eq!(repo.snapshots().len(), n);

    let b3 = repo.backup(&[&copy], &["--parent", id1, "--ignore-inode"]);
    assert_eq!(b3["parent"].as_str(), Some(id1));
    assert_eq!(stat(&b3, "files_read"), 0, "{b3}");
    assert_eq!(stat(&b3, "chunks_new"), 0, "{b3}");

    // With --ignore-inode a changed size is still noticed (mtime kept).
    let m = std::fs::metadata(copy.join("a.txt")).unwrap();
    write(&copy.join("a.txt"), b"alpha plus");
    filetime::set_file_mtime(
        copy.join("a.txt"),
        filetime::FileTime::from_last_modification_time(&m),
    )
    .unwrap();
    let b4 = repo.backup(&[&copy], &["--parent", id1, "--ignore-inode"]);
    assert_eq!(stat(&b4, "files_read"), 1, "{b4}");
    let target = repo.fresh("restored");
    repo.restore("latest", &target, &[]);
    compare_trees(&copy, &target);
}

#[test]
fn the_same_data_under_another_name_adds_almost_nothing() {
    let repo = Repo::new();
    let a = repo.dir("a");
    write_random_file(&a.join("original.bin"), 7, 4 << 20);
    let b1 = repo.backup(&[&a], &[]);
    assert!(stat(&b1, "bytes_added") > 4 << 20, "{b1}");

    let b = repo.dir("b");
    std::fs::copy(a.join("original.bin"), b.join("renamed copy.bin")).unwrap();
    let b2 = repo.backup(&[&b], &["--name", "other"]);
    assert_eq!(stat(&b2, "files_read"), 1);
    assert_eq!(stat(&b2, "chunks_new"), 0, "{b2}");
    assert!(stat(&b2, "chunks_reused") >= 2, "{b2}");
    assert!(
        stat(&b2, "bytes_added") < 8192,
        "only tree blobs may be new: {b2}"
    );
    let target = repo.fresh("restored");
    repo.restore("latest", &target, &[]);
    compare_trees(&b, &target);
}

#[test]
fn names_and_hosts_choose_the_parent_and_are_recorded_with_tags() {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("f"), b"x");
    let a1 = repo.backup(
        &[&src],
        &[
            "--name", "alpha", "--host", "h1", "--tag", "daily", "--tag", "first",
        ],
    );
    let b1 = repo.backup(&[&src], &["--name", "beta", "--host", "h1"]);
    assert!(
        b1["parent"].is_null(),
        "another name has no parent yet: {b1}"
    );
    let a2 = repo.backup(&[&src], &["--name", "alpha", "--host", "h1"]);
    assert_eq!(a2["parent"], a1["id"]);
    let b2 = repo.backup(&[&src], &["-N", "beta", "--host", "h1"]);
    assert_eq!(b2["parent"], b1["id"]);
    let other_host = repo.backup(&[&src], &["--name", "alpha", "--host", "h2"]);
    assert!(
        other_host["parent"].is_null(),
        "another host has no parent yet: {other_host}"
    );

    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 5);
    let find = |id: &Value| {
        snaps
            .iter()
            .find(|s| s["id"] == *id)
            .unwrap_or_else(|| panic!("{id} not listed"))
            .clone()
    };
    let s = find(&a1["id"]);
    assert_eq!(s["hostname"], "h1");
    assert_eq!(s["name"], "alpha");
    assert_eq!(s["tags"], serde_json::json!(["daily", "first"]));
    assert_eq!(find(&b1["id"])["tags"], serde_json::json!([]));
    assert_eq!(find(&other_host["id"])["hostname"], "h2");
    assert_eq!(s["paths"], serde_json::json!([src.to_str().unwrap()]));

    // snapshots --host / --name filter.
    let out = repo.run(&["snapshots", "--json", "--host", "h1", "--name", "beta"]);
    out.ok();
    let v = out.json();
    let ids: Vec<&Value> = v.as_array().unwrap().iter().map(|s| &s["id"]).collect();
    assert_eq!(ids, vec![&b1["id"], &b2["id"]]);
    // Without --host, the machine's host name is recorded.
    let d = repo.backup(&[&src], &[]);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    assert_eq!(
        find_in(&repo.snapshots(), &d["id"])["hostname"],
        host.trim()
    );
}

fn find_in(snaps: &[Value], id: &Value) -> Value {
    snaps
        .iter()
        .find(|s| s["id"] == *id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not listed"))
}

/// Unchanged files take their xattrs from the parent (ctime and inode prove them unchanged):
/// the reused xattrs must reach the new snapshot, and an xattr change alone (which moves ctime
/// but not mtime or size) must still be seen.
#[test]
fn xattrs_are_reused_for_unchanged_files_and_changes_are_seen() {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("a.txt"), b"same content");
    write(&src.join("b.txt"), b"other content");
    xattr::set(src.join("a.txt"), "user.first", b"1").unwrap();
    let first = repo.backup(&[&src], &[]);
    assert_eq!(first["stats"]["files_read"], 2);

    // Nothing changed: nothing read, xattrs carried over.
    let second = repo.backup(&[&src], &[]);
    assert_eq!(second["stats"]["files_read"], 0);
    let out = repo.fresh("second");
    repo.restore(second["id"].as_str().unwrap(), &out, &[]).ok();
    assert_eq!(
        xattr::get(out.join("a.txt"), "user.first")
            .unwrap()
            .as_deref(),
        Some(&b"1"[..])
    );

    // Only an xattr changes (mtime and size stay): the new value must be in the next snapshot.
    let mtime = fs::metadata(src.join("b.txt")).unwrap().modified().unwrap();
    xattr::set(src.join("b.txt"), "user.added", b"2").unwrap();
    xattr::remove(src.join("a.txt"), "user.first").unwrap();
    assert_eq!(
        fs::metadata(src.join("b.txt")).unwrap().modified().unwrap(),
        mtime
    );
    let third = repo.backup(&[&src], &[]);
    let out = repo.fresh("third");
    repo.restore(third["id"].as_str().unwrap(), &out, &[]).ok();
    assert_eq!(
        xattr::get(out.join("b.txt"), "user.added")
            .unwrap()
            .as_deref(),
        Some(&b"2"[..])
    );
    assert_eq!(xattr::get(out.join("a.txt"), "user.first").unwrap(), None);
    compare_trees(&src, &out);
}

/// `rime diff` of two file snapshots names every added, removed, modified, metadata-only and
/// type-changed path, and counts the content the changed paths gained and lost.
#[test]
fn diff_of_file_snapshots_names_each_kind_of_change() {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("same"), b"unchanged");
    write(&src.join("edit"), random_bytes(1, 200_000));
    write(&src.join("gone/inner"), b"removed with its directory");
    write(&src.join("perm"), b"mode changes");
    write(&src.join("becomes-dir"), b"a file first");
    symlink("same", &src.join("link"));
    set_mtime(&src.join("perm"), 1_600_000_000, 0);
    let a = repo.backup(&[&src], &[])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let same = repo.backup(&[&src], &[])["id"]
        .as_str()
        .unwrap()
        .to_string();

    write(&src.join("edit"), random_bytes(2, 300_000));
    fs::remove_dir_all(src.join("gone")).unwrap();
    write(&src.join("new/deep/file"), b"added");
    chmod(&src.join("perm"), 0o600);
    set_mtime(&src.join("perm"), 1_600_000_000, 0);
    fs::remove_file(src.join("becomes-dir")).unwrap();
    write(&src.join("becomes-dir/x"), b"now a directory");
    fs::remove_file(src.join("link")).unwrap();
    symlink("edit", &src.join("link"));
    let b = repo.backup(&[&src], &[])["id"]
        .as_str()
        .unwrap()
        .to_string();

    let o = repo.run(&["diff", &a, &b]);
    o.ok();
    let lines: Vec<&str> = o
        .stdout
        .lines()
        .take_while(|l| !l.contains(" -> "))
        .collect();
    assert_eq!(
        lines,
        [
            "T    /src/becomes-dir/",
            "+    /src/becomes-dir/x",
            "M    /src/edit",
            "-    /src/gone/",
            "-    /src/gone/inner",
            "M    /src/link",
            "+    /src/new/",
            "+    /src/new/deep/",
            "+    /src/new/deep/file",
            "U    /src/perm",
        ],
        "{}",
        o.stdout
    );
    let v = repo.run(&["diff", &a, &b, "--json"]).json();
    assert_eq!(v["files"]["added"], 2, "{v}");
    assert_eq!(v["files"]["removed"], 1, "{v}");
    assert_eq!(v["files"]["modified"], 1, "{v}");
    assert_eq!(v["files"]["metadata"], 1, "{v}");
    assert_eq!(v["dirs"]["added"], 2, "{v}");
    assert_eq!(v["dirs"]["type_changed"], 1, "{v}");
    // The edited file's new content, the new small files; the old content and removed file.
    let added = v["bytes_added"].as_u64().unwrap();
    let removed = v["bytes_removed"].as_u64().unwrap();
    assert!((300_000..300_100).contains(&added), "{v}");
    assert!((200_000..200_100).contains(&removed), "{v}");

    // Identical snapshots: nothing.
    let v = repo.run(&["diff", &a, &same, "--json"]).json();
    assert!(v["changes"].as_array().unwrap().is_empty(), "{v}");
}
