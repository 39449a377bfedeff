//! Choosing what to restore: latest, id prefixes, dates, --include; and ls / dump.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

#[test]
fn latest_id_prefix_and_bad_prefixes() {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("f"), b"version 1");
    let id1 = repo.backup(&[&src], &[])["id"]
        .as_str()
        .unwrap()
        .to_string();
    write(&src.join("f"), b"version 2!");
    let id2 = repo.backup(&[&src], &[])["id"]
        .as_str()
        .unwrap()
        .to_string();

    let t = repo.fresh("latest");
    repo.restore("latest", &t, &[]);
    assert_eq!(fs::read(t.join("f")).unwrap(), b"version 2!");
    // The default snapshot is latest.
    let t = repo.fresh("default");
    repo.run(&[os("restore"), os("--target"), os(&t)]).ok();
    assert_eq!(fs::read(t.join("f")).unwrap(), b"version 2!");
    let t = repo.fresh("prefix");
    repo.restore(&id1[..8], &t, &[]);
    assert_eq!(fs::read(t.join("f")).unwrap(), b"version 1");
    let t = repo.fresh("full");
    repo.restore(&id2, &t, &[]);
    assert_eq!(fs::read(t.join("f")).unwrap(), b"version 2!");
    let t = repo.fresh("upper");
    repo.restore(&id1[..10].to_uppercase(), &t, &[]);
    assert_eq!(fs::read(t.join("f")).unwrap(), b"version 1");

    // Unknown prefix: a 4-digit prefix of neither id.
    let unknown = (0..0x10000u32)
        .map(|n| format!("{n:04x}"))
        .find(|p| !id1.starts_with(p.as_str()) && !id2.starts_with(p.as_str()))
        .unwrap();
    let t = repo.tmp.path().join("never");
    repo.run(&[os("restore"), os(&unknown), os("--target"), os(&t)])
        .error_names(&[&unknown, "no snapshot"]);
    assert!(!t.exists(), "a failed selection must not create the target");
    // Too short or not hex.
    repo.run(&[os("restore"), os(&id1[..3]), os("--target"), os(&t)])
        .error_names(&[&id1[..3]]);
    repo.run(&[os("restore"), os("lastest"), os("--target"), os(&t)])
        .error_names(&["lastest"]);
    repo.run(&["ls", "zzzz"]).error_names(&["zzzz"]);

    // Ambiguous: plant a second file name sharing the first 60 digits of id1.
    let snapdir = repo.path.join("snapshots");
    let twin = format!(
        "{}{}",
        &id1[..60],
        if &id1[60..] == "0000" { "ffff" } else { "0000" }
    );
    fs::copy(snapdir.join(&id1), snapdir.join(&twin)).unwrap();
    repo.run(&[os("restore"), os(&id1[..12]), os("--target"), os(&t)])
        .error_names(&[&id1[..12], "ambiguous"]);
    assert!(!t.exists());
}

fn time_of(s: &Value) -> String {
    // RFC 3339 local time: the first 19 characters are YYYY-MM-DDThh:mm:ss.
    s["time"].as_str().unwrap()[..19].to_string()
}

#[test]
fn from_date_picks_the_newest_at_or_before() {
    let repo = Repo::new();
    let src = repo.dir("src");
    for v in 1..=3 {
        write(&src.join("f"), format!("version {v}"));
        repo.backup(&[&src], &[]);
        if v < 3 {
            std::thread::sleep(Duration::from_millis(1100));
        }
    }
    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 3);
    for (i, s) in snaps.iter().enumerate() {
        let t = repo.fresh(&format!("t{i}"));
        let out = repo.run(&[
            os("restore"),
            os("--from-date"),
            os(time_of(s)),
            os("--target"),
            os(&t),
            os("--json"),
        ]);
        out.ok();
        assert_eq!(
            out.json()["snapshot"],
            s["id"],
            "date {} picks snapshot {i}",
            time_of(s)
        );
        assert_eq!(
            fs::read_to_string(t.join("f")).unwrap(),
            format!("version {}", i + 1)
        );
    }
    // With a space instead of T, and a date far in the future: the latest.
    let t = repo.fresh("space");
    repo.run(&[
        os("restore"),
        os("--from-date"),
        os(time_of(&snaps[1]).replace('T', " ")),
        os("--target"),
        os(&t),
    ])
    .ok();
    assert_eq!(fs::read_to_string(t.join("f")).unwrap(), "version 2");
    let t = repo.fresh("future");
    repo.run(&[
        os("restore"),
        os("--from-date"),
        os("2999-01-01T00:00:00"),
        os("--target"),
        os(&t),
    ])
    .ok();
    assert_eq!(fs::read_to_string(t.join("f")).unwrap(), "version 3");

    // Before the first snapshot: a clear error, nothing restored.
    let t = repo.tmp.path().join("none");
    repo.run(&[
        os("restore"),
        os("--from-date"),
        os("2001-02-03T04:05:06"),
        os("--target"),
        os(&t),
    ])
    .error_names(&["no snapshot", "date"]);
    assert!(!t.exists());
    // A malformed date names itself.
    repo.run(&[
        os("restore"),
        os("--from-date"),
        os("yesterday"),
        os("--target"),
        os(&t),
    ])
    .error_names(&["yesterday"]);
}

#[test]
fn include_restores_only_that_subtree_and_its_parents() {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("top.txt"), b"top");
    write(&src.join("a/a.txt"), b"a");
    write(&src.join("a/b/c/file"), b"deep");
    write(&src.join("a/b/sibling"), b"sib");
    write(&src.join("a/other/x"), b"x");
    write(&src.join("z/zz"), b"z");
    set_mtime(&src.join("a/b/c/file"), 1_500_000_000, 123);
    set_mtime(&src.join("a/b/c"), 1_500_000_001, 456);
    set_mtime(&src.join("a/b"), 1_500_000_002, 789);
    repo.backup(&[&src], &[]);

    let t = repo.fresh("t");
    repo.restore("latest", &t, &["--include", "a/b"]);
    let mut got: Vec<String> = walk(&t)
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, ["", "a", "a/b", "a/b/c", "a/b/c/file", "a/b/sibling"]);
    assert!(fs::metadata(t.join("a")).unwrap().is_dir());
    compare_trees(&src.join("a/b"), &t.join("a/b"));

    // A leading slash and several includes.
    let t = repo.fresh("t2");
    repo.restore("latest", &t, &["--include", "/a/b/c/file", "-i", "z"]);
    let mut got: Vec<String> = walk(&t)
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, ["", "a", "a/b", "a/b/c", "a/b/c/file", "z", "z/zz"]);
    assert_eq!(fs::read(t.join("a/b/c/file")).unwrap(), b"deep");

    // A path that is not in the snapshot.
    let t = repo.tmp.path().join("t3");
    repo.run(&[
        os("restore"),
        os("latest"),
        os("--target"),
        os(&t),
        os("--include"),
        os("nope/x"),
    ])
    .error_names(&["nope/x"]);
}

#[test]
fn ls_plain_long_json_and_path() {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("dir/file.txt"), b"12345");
    write(&src.join("dir/sub/inner"), b"in");
    write(&src.join("top"), b"");
    symlink("dir/file.txt", &src.join("link"));
    chmod(&src.join("dir/file.txt"), 0o640);
    repo.backup(&[&src], &[]);

    let out = repo.run(&["ls", "latest"]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "/dir",
            "/dir/file.txt",
            "/dir/sub",
            "/dir/sub/inner",
            "/link",
            "/top"
        ]
    );

    let out = repo.run(&["ls", "-l", "latest"]);
    out.ok();
    let l = out
        .stdout
        .lines()
        .find(|l| l.ends_with("/dir/file.txt"))
        .expect("file listed");
    assert!(l.starts_with("-rw-r-----"), "{l}");
    assert!(l.split_whitespace().any(|w| w == "5"), "size shown: {l}");
    let l = out
        .stdout
        .lines()
        .find(|l| l.contains("/link"))
        .expect("link listed");
    assert!(
        l.starts_with('l') && l.ends_with("/link -> dir/file.txt"),
        "{l}"
    );
    assert!(out
        .stdout
        .lines()
        .find(|l| l.ends_with("/dir"))
        .unwrap()
        .starts_with('d'));

    let out = repo.run(&["ls", "--json", "latest"]);
    out.ok();
    let nodes: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(nodes.len(), 6);
    let f = nodes.iter().find(|n| n["path"] == "/dir/file.txt").unwrap();
    assert_eq!(f["type"], "file");
    assert_eq!(f["size"], 5);
    assert_eq!(f["mode"], 0o640);
    let m = fs::metadata(src.join("dir/file.txt")).unwrap();
    assert_eq!(f["uid"], m.uid());
    assert_eq!(f["inode"], m.ino());
    assert!(f["mtime"].is_string());
    let l = nodes.iter().find(|n| n["path"] == "/link").unwrap();
    assert_eq!(l["type"], "symlink");
    assert_eq!(l["link_target"], "dir/file.txt");
    assert_eq!(
        nodes.iter().find(|n| n["path"] == "/dir").unwrap()["type"],
        "dir"
    );

    let out = repo.run(&["ls", "latest", "dir/sub"]);
    out.ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["/dir/sub", "/dir/sub/inner"]
    );
    let out = repo.run(&["ls", "latest", "/dir/file.txt"]);
    out.ok();
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), ["/dir/file.txt"]);
    repo.run(&["ls", "latest", "dir/missing"])
        .error_names(&["dir/missing"]);
}

#[test]
fn dump_writes_a_file() {
    let repo = Repo::new();
    let src = repo.dir("src");
    let data = random_bytes(5, 300_000);
    write(&src.join("d/blob.bin"), &data);
    let mut sparse = vec![0u8; 3 << 20];
    sparse[..10].copy_from_slice(b"0123456789");
    write(&src.join("zeros.bin"), &sparse);
    write(&src.join("empty"), b"");
    repo.backup(&[&src], &[]);

    let out = repo.run(&["dump", "latest", "d/blob.bin"]);
    out.ok();
    assert!(
        out.raw_stdout == data,
        "dumped bytes differ ({} vs {} bytes)",
        out.raw_stdout.len(),
        data.len()
    );
    let out = repo.run(&["dump", "latest", "zeros.bin"]);
    out.ok();
    assert!(out.raw_stdout == sparse, "dump of a file with zero runs");
    let out = repo.run(&["dump", "latest", "empty"]);
    out.ok();
    assert!(out.raw_stdout.is_empty());

    repo.run(&["dump", "latest", "d/nothing"])
        .error_names(&["d/nothing"]);
}

/// A directory (or "/") dumps as a tar stream that real GNU tar extracts to the same tree:
/// contents, modes, nanosecond mtimes, symlinks, hard links, FIFOs, xattrs and (as root) owners.
#[test]
fn dump_of_a_directory_is_a_tar_stream_gnu_tar_extracts() {
    let repo = Repo::new();
    let src = repo.dir("src");
    mkdir(&src.join("d"));
    write_random_file(&src.join("d/big.bin"), 9, 3_000_000);
    write(&src.join("d/small.txt"), b"hello\n");
    std::fs::hard_link(src.join("d/small.txt"), src.join("d/hard.txt")).unwrap();
    symlink("small.txt", &src.join("d/link"));
    mkfifo(&src.join("d/fifo"));
    write(&src.join("d/sub/deep.txt"), b"deep");
    let long = "n".repeat(120);
    write(&src.join("d").join(&long).join(&long), b"long names");
    xattr::set(src.join("d/small.txt"), "user.colour", b"blue").unwrap();
    chmod(&src.join("d/small.txt"), 0o640);
    set_mtime(&src.join("d/small.txt"), 1_700_000_000, 123_456_789);
    if is_root() {
        chown_tree(&src.join("d"), 1234, 5678);
    }
    repo.backup(&[&src], &[]);

    for (path, extract_dir) in [("/", "all"), ("d", "sub")] {
        let out = repo.run(&["dump", "latest", path]);
        out.ok();
        assert!(
            out.raw_stdout.len() > 3_000_000,
            "dump of {path} is a whole archive"
        );
        let tarball = repo.dir("tarballs").join(format!("{extract_dir}.tar"));
        write(&tarball, &out.raw_stdout);
        let dest = repo.dir(extract_dir);
        let st = std::process::Command::new("tar")
            .args([
                "-x",
                "--xattrs",
                "--xattrs-include=*",
                "--same-permissions",
                "-f",
            ])
            .arg(&tarball)
            .arg("-C")
            .arg(&dest)
            .status()
            .expect("GNU tar runs");
        assert!(st.success(), "tar -x of the dump of {path}");
        compare_trees_with(
            &src.join("d"),
            &dest.join("d"),
            CompareOpts {
                root_meta: false,
                owner: is_root(),
            },
        );
    }
}
