//! What goes into a snapshot: --exclude, --exclude-file, --one-file-system, --dereference.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::util::*;

/// Paths in the latest snapshot (as `ls` prints them, without the leading slash).
fn listed(repo: &Repo) -> BTreeSet<String> {
    let out = repo.run(&["ls", "latest"]);
    out.ok();
    out.stdout
        .lines()
        .map(|l| l.trim_start_matches('/').to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn build(src: &Path) {
    write(&src.join("main.c"), b"int main;");
    write(&src.join("main.o"), b"obj");
    write(&src.join("lib/util.o"), b"obj");
    write(&src.join("lib/util.c"), b"c");
    write(&src.join("cache/blob"), b"cached");
    write(&src.join("lib/cache/blob"), b"cached");
    write(&src.join("logs/a.log"), b"log");
    write(&src.join("logs/keep.txt"), b"keep");
    write(&src.join("other/a.log"), b"log elsewhere");
    write(&src.join("build/out/x"), b"x");
    write(&src.join("notes.tmp"), b"tmp");
}

#[test]
fn exclude_by_name_glob() {
    let repo = Repo::new();
    let src = repo.dir("src");
    build(&src);
    repo.backup(&[&src], &["--exclude", "*.o", "-e", "cache"]);
    let got = listed(&repo);
    let want = set(&[
        "build",
        "build/out",
        "build/out/x",
        "lib",
        "lib/util.c",
        "logs",
        "logs/a.log",
        "logs/keep.txt",
        "main.c",
        "notes.tmp",
        "other",
        "other/a.log",
    ]);
    assert_eq!(got, want);
    // The restore agrees with the listing.
    let t = repo.fresh("t");
    repo.restore("latest", &t, &[]);
    assert!(
        !t.join("main.o").exists()
            && !t.join("lib/cache").exists()
            && t.join("lib/util.c").exists()
    );
}

#[test]
fn exclude_by_absolute_path_glob_and_exclude_file() {
    let repo = Repo::new();
    let src = repo.dir("src");
    build(&src);
    let s = src.to_str().unwrap();
    let list = repo.tmp.path().join("excludes.txt");
    fs::write(
        &list,
        format!("# editor junk\n*.tmp\n\n   # indented comment\n{s}/build/\n  {s}/lib/cache  \n"),
    )
    .unwrap();
    repo.backup(
        &[&src],
        &[
            "--exclude",
            &format!("{s}/logs/*.log"),
            "--exclude-file",
            list.to_str().unwrap(),
        ],
    );
    let got = listed(&repo);
    let want = set(&[
        "cache",
        "cache/blob",
        "lib",
        "lib/util.c",
        "lib/util.o",
        "logs",
        "logs/keep.txt",
        "main.c",
        "main.o",
        "other",
        "other/a.log",
    ]);
    assert_eq!(got, want);

    // A missing exclude file is an error naming it, and no snapshot is written.
    let before = repo.snapshots().len();
    let missing = repo.tmp.path().join("no-such-excludes");
    repo.run(&[os("backup"), os("--exclude-file"), os(&missing), os(&src)])
        .error_names(&["no-such-excludes"]);
    // A bad pattern too.
    repo.run(&[os("backup"), os("--exclude"), os("[unclosed"), os(&src)])
        .error_names(&["[unclosed"]);
    assert_eq!(repo.snapshots().len(), before);
}

#[test]
fn one_file_system_skips_a_mount_inside_the_source() {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("here.txt"), b"here");
    let mnt = src.join("mnt");
    mkdir(&mnt);
    let Some(_m) = mount_tmpfs(&mnt, "4m") else {
        return;
    };
    write(&mnt.join("elsewhere.txt"), b"on another file system");
    write(&src.join("sub/deep.txt"), b"deep");

    repo.backup(&[&src], &[]);
    let all = listed(&repo);
    assert!(
        all.contains("mnt/elsewhere.txt"),
        "without -x the mount is included: {all:?}"
    );

    repo.backup(&[&src], &["--one-file-system"]);
    let got = listed(&repo);
    assert!(
        !got.iter().any(|p| p.starts_with("mnt/")),
        "-x must not descend into the mount: {got:?}"
    );
    assert!(
        got.contains("here.txt") && got.contains("sub/deep.txt"),
        "{got:?}"
    );
    assert!(
        got.contains("mnt"),
        "the mount point itself stays, as an empty directory: {got:?}"
    );
    repo.backup(&[&src], &["-x"]);
    assert_eq!(listed(&repo), got);
}

#[test]
fn dereference_backs_up_what_links_point_to() {
    let repo = Repo::new();
    let outside = repo.dir("outside");
    write(&outside.join("real.txt"), b"the real content");
    chmod(&outside.join("real.txt"), 0o604);
    write(&outside.join("dir/inner"), b"inner");
    let src = repo.dir("src");
    symlink(outside.join("real.txt"), &src.join("abs-link"));
    symlink("../outside/real.txt", &src.join("rel-link"));
    symlink(outside.join("dir"), &src.join("dir-link"));
    write(&src.join("plain"), b"plain");

    repo.backup(&[&src], &["--dereference"]);
    let t = repo.fresh("t");
    repo.restore("latest", &t, &[]);
    for name in ["abs-link", "rel-link"] {
        let m = fs::symlink_metadata(t.join(name)).unwrap();
        assert!(m.file_type().is_file(), "{name} restored as a regular file");
        assert_eq!(fs::read(t.join(name)).unwrap(), b"the real content");
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777,
            0o604
        );
    }
    assert!(fs::symlink_metadata(t.join("dir-link")).unwrap().is_dir());
    assert_eq!(fs::read(t.join("dir-link/inner")).unwrap(), b"inner");

    // Without -L the links stay links.
    repo.backup(&[&src], &[]);
    let t = repo.fresh("t2");
    repo.restore("latest", &t, &[]);
    compare_trees(&src, &t);

    // A source path that is itself a symlink, with -L.
    let link_src = repo.tmp.path().join("link-to-outside");
    symlink(&outside, &link_src);
    repo.backup(&[&link_src], &["-L"]);
    let t = repo.fresh("t3");
    repo.restore("latest", &t, &[]);
    assert_eq!(fs::read(t.join("real.txt")).unwrap(), b"the real content");
}
