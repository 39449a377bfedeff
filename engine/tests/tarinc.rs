//! The tar engine against the real tools: GNU tar (incremental levels both ways, snapshot
//! files), gzip/bzip2/xz/zstd and `openssl enc -aes-256-cfb`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rime_engine::tarinc::{self, ApplyOptions, CreateOptions, Snar, TarReader};

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

macro_rules! require {
    ($($tool:expr),*) => {
        $(if !have($tool) {
            println!("skipped: {} is not installed", $tool);
            return;
        })*
    };
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[derive(Debug, PartialEq)]
enum Node {
    Dir { mode: u32, mtime: i64 },
    File { mode: u32, mtime: i64, data: Vec<u8> },
    Link(PathBuf),
}

/// Everything comparable about a tree (names, types, contents, modes, mtimes, link targets).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let mode = m.permissions().mode() & 0o7777;
            let node = if m.file_type().is_symlink() {
                Node::Link(fs::read_link(&p).unwrap())
            } else if m.is_dir() {
                stack.push(p.clone());
                Node::Dir { mode, mtime: m.mtime() }
            } else {
                Node::File { mode, mtime: m.mtime(), data: fs::read(&p).unwrap() }
            };
            out.insert(rel, node);
        }
    }
    out
}

fn assert_same_tree(a: &Path, b: &Path) {
    let (sa, sb) = (snapshot(a), snapshot(b));
    for (k, v) in &sa {
        assert_eq!(Some(v), sb.get(k), "{} differs", k.display());
    }
    for k in sb.keys() {
        assert!(sa.contains_key(k), "{} should have been deleted", k.display());
    }
}

fn write(p: &Path, data: &[u8]) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

const LONG: &str = "a-directory-name-that-is-quite-long-indeed/and-a-file-name-that-makes-the-whole-path-longer-than-one-hundred-bytes.txt";

/// A tree with the usual suspects: nested dirs, an empty dir, long names, symlink, hard link,
/// a larger file, odd modes.
fn make_tree(root: &Path) {
    write(&root.join("top.txt"), b"top\n");
    write(&root.join("a/one.txt"), b"one\n");
    write(&root.join("a/b/two.txt"), &vec![7u8; 70_000]);
    write(&root.join("gone/x.txt"), b"x\n");
    write(&root.join("gone/deeper/y.txt"), b"y\n");
    write(&root.join(LONG), b"long\n");
    fs::create_dir_all(root.join("empty")).unwrap();
    std::os::unix::fs::symlink("top.txt", root.join("sym")).unwrap();
    fs::hard_link(root.join("top.txt"), root.join("a/hard.txt")).unwrap();
    fs::set_permissions(root.join("a/one.txt"), fs::Permissions::from_mode(0o600)).unwrap();
}

/// Changes for level 1: modify, add, delete a file and a directory, type changes.
fn mutate(root: &Path) {
    write(&root.join("a/one.txt"), b"one, changed\n");
    fs::set_permissions(root.join("a/one.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    write(&root.join("a/new.txt"), b"new\n");
    write(&root.join("newdir/n.txt"), b"n\n");
    fs::remove_file(root.join("a/b/two.txt")).unwrap();
    fs::remove_dir_all(root.join("gone")).unwrap();
    fs::remove_file(root.join("sym")).unwrap();
    fs::create_dir_all(root.join("sym")).unwrap(); // symlink became a directory
    fs::remove_dir_all(root.join("empty")).unwrap();
    write(&root.join("empty"), b"now a file\n"); // directory became a file
}

fn rime_level(root: &Path, prev: Option<&Snar>, out: &Path) -> (Snar, tarinc::CreateStats) {
    let f = fs::File::create(out).unwrap();
    let o = tarinc::create(root, prev, std::io::BufWriter::new(f), &CreateOptions::default())
        .unwrap();
    assert!(o.stats.warnings.is_empty(), "{:?}", o.stats.warnings);
    (o.snar, o.stats)
}

fn gnu_extract(archive: &Path, dest: &Path) {
    run(Command::new("tar")
        .args(["--extract", "--listed-incremental=/dev/null", "-f"])
        .arg(archive)
        .arg("-C")
        .arg(dest));
}

fn rime_apply(archive: &Path, dest: &Path) -> tarinc::ApplyStats {
    let f = fs::File::open(archive).unwrap();
    let mut r = TarReader::new(std::io::BufReader::new(f), archive.display().to_string());
    let s = tarinc::apply(&mut r, dest, &ApplyOptions::default()).unwrap();
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    s
}

#[test]
fn snar_files_from_gnu_tar_round_trip_byte_for_byte() {
    require!("tar");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src);
    let snar = t.path().join("snar");
    for level in 0..2 {
        run(Command::new("tar")
            .current_dir(&src)
            .args(["--create", "--format=gnu", "-f", "/dev/null"])
            .arg(format!("--listed-incremental={}", snar.display()))
            .arg("."));
        let bytes = fs::read(&snar).unwrap();
        let parsed = Snar::parse(&bytes).unwrap();
        assert_eq!(parsed.to_bytes(), bytes, "level {level}");
        let root = parsed.dirs.iter().find(|d| d.name == b".").expect("record for .");
        let names: Vec<_> = root.entries.iter().map(|e| (e.flag, e.name.clone())).collect();
        assert!(names.contains(&(b'D', b"a".to_vec())), "{names:?}");
        assert!(names.contains(&(b'Y', b"top.txt".to_vec())) || level == 1, "{names:?}");
        if level == 0 {
            mutate(&src);
        }
    }
    // Damaged copies are errors, never panics.
    let bytes = fs::read(&snar).unwrap();
    for cut in [1, 10, 20, bytes.len() / 2, bytes.len() - 1] {
        assert!(Snar::parse(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn rime_levels_extract_with_gnu_tar_deletions_included() {
    require!("tar");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src);
    // rime's snapshot time starts one second early (coarse file system clocks): wait it out
    // so that the unchanged-file checks below are meaningful.
    let settle = || std::thread::sleep(std::time::Duration::from_millis(1100));
    settle();
    let (s0, st0) = rime_level(&src, None, &t.path().join("level-0.tar"));
    assert!(st0.files_dumped >= 6, "{st0:?}");
    mutate(&src);
    settle();
    let (s1, st1) = rime_level(&src, Some(&s0), &t.path().join("level-1.tar"));
    // Unchanged files are not dumped again.
    assert!(st1.files_unchanged >= 2, "{st1:?}");
    assert!(st1.bytes < 1000, "level 1 re-sent unchanged data: {st1:?}");
    // A level 2 without changes carries no file data.
    let (_s2, st2) = rime_level(&src, Some(&s1), &t.path().join("level-2.tar"));
    assert_eq!(st2.files_dumped, 0, "{st2:?}");

    let dest = t.path().join("gnu-restore");
    fs::create_dir(&dest).unwrap();
    for l in 0..3 {
        gnu_extract(&t.path().join(format!("level-{l}.tar")), &dest);
    }
    assert_same_tree(&src, &dest);

    // rime's own reader gives the same result.
    let dest2 = t.path().join("rime-restore");
    let mut deleted = 0;
    for l in 0..3 {
        deleted += rime_apply(&t.path().join(format!("level-{l}.tar")), &dest2).deleted;
    }
    assert!(deleted >= 2, "deleted {deleted}"); // a/b/two.txt and gone/
    assert_same_tree(&src, &dest2);

    // GNU tar continues a chain from rime's snapshot file.
    let snar = t.path().join("snar");
    fs::write(&snar, s1.to_bytes()).unwrap();
    write(&src.join("a/after-gnu.txt"), b"gnu level\n");
    fs::remove_file(src.join("top.txt")).unwrap();
    run(Command::new("tar")
        .current_dir(&src)
        .args(["--create", "--format=gnu", "-f"])
        .arg(t.path().join("level-3.tar"))
        .arg(format!("--listed-incremental={}", snar.display()))
        .arg("."));
    let listing = run(Command::new("tar").arg("-tf").arg(t.path().join("level-3.tar")));
    let listing = String::from_utf8_lossy(&listing);
    assert!(!listing.contains("and-a-file-name") && !listing.contains("n.txt"), "{listing}");
    assert!(listing.contains("./a/after-gnu.txt"), "{listing}");
    rime_apply(&t.path().join("level-3.tar"), &dest2);
    assert_same_tree(&src, &dest2);
}

#[test]
fn gnu_tar_levels_apply_with_rime_deletions_included() {
    require!("tar");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src);
    let snar = t.path().join("snar");
    let gnu_level = |l: u32| {
        run(Command::new("tar")
            .current_dir(&src)
            .args(["--create", "--format=gnu", "--one-file-system", "-f"])
            .arg(t.path().join(format!("level-{l}.tar")))
            .arg(format!("--listed-incremental={}", snar.display()))
            .arg("."));
    };
    gnu_level(0);
    mutate(&src);
    gnu_level(1);
    // Rename a directory: GNU tar records it with R/T dumpdir entries.
    fs::rename(src.join("newdir"), src.join("renamed")).unwrap();
    gnu_level(2);
    let dest = t.path().join("dest");
    // Stale content in the target that level 0 does not list is removed too.
    write(&dest.join("stale.txt"), b"stale\n");
    for l in 0..3 {
        rime_apply(&t.path().join(format!("level-{l}.tar")), &dest);
    }
    assert_same_tree(&src, &dest);
}

#[test]
fn bad_archives_fail_before_writing() {
    let t = tempfile::tempdir().unwrap();
    let dest = t.path().join("never-created");
    let junk = vec![0x5au8; 4096];
    let mut r = TarReader::new(&junk[..], "junk");
    let e = tarinc::apply(&mut r, &dest, &ApplyOptions::default()).unwrap_err();
    assert_eq!(e.kind(), rime_engine::ErrorKind::Corrupt);
    assert!(e.to_string().contains("not a tar header"), "{e}");
    assert!(!dest.exists());
}
