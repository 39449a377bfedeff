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
    Dir {
        mode: u32,
        mtime: i64,
    },
    File {
        mode: u32,
        mtime: i64,
        data: Vec<u8>,
    },
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
                Node::Dir {
                    mode,
                    mtime: m.mtime(),
                }
            } else {
                Node::File {
                    mode,
                    mtime: m.mtime(),
                    data: fs::read(&p).unwrap(),
                }
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
        assert!(
            sa.contains_key(k),
            "{} should have been deleted",
            k.display()
        );
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
    let o = tarinc::create(
        root,
        prev,
        std::io::BufWriter::new(f),
        &CreateOptions::default(),
    )
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
        let root = parsed
            .dirs
            .iter()
            .find(|d| d.name == b".")
            .expect("record for .");
        let names: Vec<_> = root
            .entries
            .iter()
            .map(|e| (e.flag, e.name.clone()))
            .collect();
        assert!(names.contains(&(b'D', b"a".to_vec())), "{names:?}");
        assert!(
            names.contains(&(b'Y', b"top.txt".to_vec())) || level == 1,
            "{names:?}"
        );
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
    let listing = run(Command::new("tar")
        .arg("-tf")
        .arg(t.path().join("level-3.tar")));
    let listing = String::from_utf8_lossy(&listing);
    assert!(
        !listing.contains("and-a-file-name") && !listing.contains("n.txt"),
        "{listing}"
    );
    assert!(listing.contains("./a/after-gnu.txt"), "{listing}");
    rime_apply(&t.path().join("level-3.tar"), &dest2);
    assert_same_tree(&src, &dest2);
}

#[test]
fn gnu_tar_levels_apply_with_rime_deletions_included() {
    require!("tar");
    gnu_tar_levels_apply("--format=gnu");
}

/// The same in POSIX format, where GNU tar keeps each directory's listing in a `GNU.dumpdir`
/// pax record of a plain directory member instead of a `D` member.
#[test]
fn gnu_tar_posix_levels_apply_with_rime_deletions_included() {
    require!("tar");
    gnu_tar_levels_apply("--format=posix");
}

fn gnu_tar_levels_apply(format: &str) {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src);
    let snar = t.path().join("snar");
    let gnu_level = |l: u32| {
        run(Command::new("tar")
            .current_dir(&src)
            .args(["--create", format, "--one-file-system", "-f"])
            .arg(t.path().join(format!("level-{l}.tar")))
            .arg(format!("--listed-incremental={}", snar.display()))
            .arg("."));
        // GNU tar records its fine-grained start time, but files get coarse (one kernel tick
        // late) timestamps: changes made within a tick after the dump are missed by the next
        // level. Let the tick pass (rime's writer leaves a one-second margin instead).
        std::thread::sleep(std::time::Duration::from_millis(100));
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

/// Freezer runs GNU tar with `--no-check-device`: a directory recorded at the previous level is
/// recognised by its inode alone, so a tree read from a new snapshot or loop mount (same inodes,
/// another device number) gives a real incremental level, not a full one. The SNAR's device
/// numbers are changed as such a remount changes them; GNU tar with Freezer's flags, given the
/// same SNAR, archives the same single file.
#[test]
fn a_changed_device_number_keeps_the_level_incremental() {
    require!("tar");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src);
    std::thread::sleep(std::time::Duration::from_millis(1100)); // see the test above
    let (mut s0, st0) = rime_level(&src, None, &t.path().join("level-0.tar"));
    assert!(st0.files_dumped >= 6, "{st0:?}");
    for d in &mut s0.dirs {
        d.dev ^= 0x5a5a; // as after a remount on another device
    }
    let s0 = Snar::parse(&s0.to_bytes()).unwrap(); // as stored between levels
    write(&src.join("a/one.txt"), b"one, changed\n");

    let (_, st1) = rime_level(&src, Some(&s0), &t.path().join("level-1.tar"));
    assert_eq!(st1.files_dumped, 1, "only a/one.txt changed: {st1:?}");
    assert!(st1.bytes < 100, "{st1:?}");

    let snar = t.path().join("snar");
    fs::write(&snar, s0.to_bytes()).unwrap();
    let listing = run(Command::new("tar")
        .current_dir(&src)
        .args([
            "--create",
            "--no-check-device",
            "--one-file-system",
            "-f",
            "/dev/null",
            "-v",
        ])
        .arg(format!("--listed-incremental={}", snar.display()))
        .arg("."));
    let files: Vec<_> = String::from_utf8_lossy(&listing)
        .lines()
        .filter(|l| !l.ends_with('/'))
        .map(str::to_owned)
        .collect();
    assert_eq!(files, ["./a/one.txt"], "GNU tar --no-check-device");

    let dest = t.path().join("dest");
    fs::create_dir(&dest).unwrap();
    for l in 0..2 {
        gnu_extract(&t.path().join(format!("level-{l}.tar")), &dest);
    }
    assert_same_tree(&src, &dest);
}

/// A tmpfs mounted for a test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Mount a small tmpfs at `at`, or print why not (not root, no mount permission) and skip.
fn tmpfs(at: &Path) -> Option<Tmpfs> {
    fs::create_dir_all(at).unwrap();
    match Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(at)
        .output()
    {
        Ok(o) if o.status.success() => Some(Tmpfs(at.to_path_buf())),
        Ok(o) => {
            println!(
                "skipped: mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            None
        }
        Err(e) => {
            println!("skipped: cannot run mount: {e}");
            None
        }
    }
}

/// A file system mounted inside the tree is not archived (one-file-system semantics, as
/// Freezer's tar). Its mount point must be stored so that extracting onto the live tree, by
/// GNU tar or by rime, leaves the mounted files alone; and rime's extraction never purges or
/// removes inside such a mount, whatever the archive (GNU tar's own writes an empty dumpdir
/// there; a level made before the mount does not list it at all).
#[test]
fn a_file_system_mounted_in_the_tree_survives_extraction_onto_it() {
    require!("tar");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src.join("top.txt"), b"top\n");
    let Some(_mount) = tmpfs(&src.join("mnt")) else {
        return;
    };
    let precious = src.join("mnt/precious");
    write(&precious, b"never backed up\n");
    let survives = |how: &str| {
        assert_eq!(fs::read(&precious).unwrap(), b"never backed up\n", "{how}");
    };

    let o = tarinc::create(&src, None, Vec::new(), &CreateOptions::default()).unwrap();
    assert!(
        o.stats
            .warnings
            .iter()
            .any(|w| w.contains("different file system")),
        "{:?}",
        o.stats.warnings
    );
    let archive = t.path().join("level-0.tar");
    fs::write(&archive, &o.out).unwrap();
    let mut r = TarReader::new(&o.out[..], "level 0");
    let mut mnt_kind = None;
    while let Some(e) = r.next_entry().unwrap() {
        if e.path == b"./mnt/" {
            mnt_kind = Some(e.kind);
        }
    }
    assert_eq!(mnt_kind, Some(tarinc::EntryKind::Directory), "plain member");

    write(&src.join("top.txt"), b"changed since\n");
    gnu_extract(&archive, &src);
    survives("GNU tar extracting rime's archive");
    assert_eq!(fs::read(src.join("top.txt")).unwrap(), b"top\n");
    rime_apply(&archive, &src);
    survives("rime extracting its archive");

    // GNU tar's own archive: an empty dumpdir for the mount point.
    let gnu = t.path().join("gnu.tar");
    run(Command::new("tar")
        .current_dir(&src)
        .args(["--create", "--format=gnu", "--one-file-system", "-f"])
        .arg(&gnu)
        .arg(format!(
            "--listed-incremental={}",
            t.path().join("snar").display()
        ))
        .arg("."));
    let apply_warned = |archive: &[u8], what: &str| {
        let mut r = TarReader::new(archive, what);
        let s = tarinc::apply(&mut r, &src, &ApplyOptions::default()).unwrap();
        survives(what);
        assert!(
            s.warnings.iter().any(|w| w.contains("mount point")),
            "{what}: {:?}",
            s.warnings
        );
    };
    apply_warned(
        &fs::read(&gnu).unwrap(),
        "rime extracting GNU tar's archive",
    );

    // A tree without the mount point: its root dumpdir does not list `mnt`.
    let plain = t.path().join("plain");
    write(&plain.join("top.txt"), b"top\n");
    let o = tarinc::create(&plain, None, Vec::new(), &CreateOptions::default()).unwrap();
    apply_warned(&o.out, "rime extracting an archive without the mount point");
    assert!(src.join("mnt").is_dir());
}

/// `--exclude` as GNU tar applies it by default (unanchored: `cache/*` at any depth, `*.log`
/// in any directory, `d/sub` as a tail of the path): rime's archive has the same members as
/// GNU tar's of the same tree with the same patterns.
#[test]
fn exclusions_match_gnu_tar_at_any_depth() {
    require!("tar");
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    for f in [
        "keep.txt",
        "cache/top",
        "a/cache/f",
        "a/cache/deeper/g",
        "b/c/cache/h",
        "b/cache.txt",
        "x.log",
        "d/y.log",
        "d/sub/z",
        "e/d/sub/w",
        "e/other",
    ] {
        write(&root.join(f), f.as_bytes());
    }
    let patterns = ["cache/*", "*.log", "d/sub"];
    let rime = t.path().join("rime.tar");
    let opts = CreateOptions {
        exclude: patterns.iter().map(|p| p.to_string()).collect(),
        ..CreateOptions::default()
    };
    let o = tarinc::create(&root, None, fs::File::create(&rime).unwrap(), &opts).unwrap();
    drop(o.out);
    let gnu = t.path().join("gnu.tar");
    let mut cmd = Command::new("tar");
    cmd.arg("--create")
        .arg(format!(
            "--listed-incremental={}",
            t.path().join("snar").display()
        ))
        .arg("-f")
        .arg(&gnu);
    for p in patterns {
        cmd.arg(format!("--exclude={p}"));
    }
    run(cmd.arg(".").current_dir(&root));
    let members = |a: &Path| -> Vec<String> {
        let out = run(Command::new("tar").arg("-tf").arg(a));
        let mut v: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    let (r, g) = (members(&rime), members(&gnu));
    assert_eq!(r, g, "rime's members against GNU tar's");
    for gone in ["./a/cache/f", "./b/c/cache/h", "./d/y.log", "./e/d/sub/w"] {
        assert!(!r.iter().any(|m| m == gone), "{gone} excluded: {r:?}");
    }
    assert!(r.iter().any(|m| m == "./b/cache.txt"), "{r:?}");
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

/// A stream that breaks off inside a member (a read error, or its end) never leaves that file
/// under its real name: it is set aside as NAME.rime-incomplete and the error says so; the
/// members before it are complete.
#[test]
fn a_member_cut_short_is_set_aside_not_left_under_its_name() {
    require!("tar");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    write(&src.join("a"), b"first member, complete");
    let big: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    write(&src.join("z-big"), &big);
    let archive = run(Command::new("tar")
        .args(["--sort=name", "-C"])
        .arg(&src)
        .args(["-cf", "-", "a", "z-big"]));
    let cut = 600 * 1024;
    assert!(archive.len() > cut + 4096);

    /// Serves `data` up to `at`, then fails.
    struct Breaks<'a> {
        data: &'a [u8],
        at: usize,
        pos: usize,
    }
    impl Read for Breaks<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.pos >= self.at {
                return Err(std::io::Error::other("connection reset by the storage"));
            }
            let n = out.len().min(self.at - self.pos);
            out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }
    for (how, reader) in [
        (
            "error",
            Box::new(Breaks {
                data: &archive,
                at: cut,
                pos: 0,
            }) as Box<dyn Read>,
        ),
        ("end", Box::new(&archive[..cut])),
    ] {
        let dest = t.path().join(how);
        let mut r = TarReader::new(reader, "cut");
        let e = tarinc::apply(&mut r, &dest, &ApplyOptions::default()).unwrap_err();
        assert_eq!(fs::read(dest.join("a")).unwrap(), b"first member, complete");
        assert!(
            !dest.join("z-big").exists(),
            "{how}: partial file under its name"
        );
        let aside = fs::read(dest.join("z-big.rime-incomplete")).unwrap();
        assert!(
            !aside.is_empty() && big.starts_with(&aside),
            "{how}: partial content kept"
        );
        assert!(
            e.to_string().contains("z-big.rime-incomplete"),
            "{how}: {e}"
        );
    }
}

use rime_engine::tarinc::{Compression, KdfDigest, StreamFormat, StreamWriter};
use std::io::{Read, Write};

fn sample_data() -> Vec<u8> {
    // Compressible but not trivial: ~600 KB (more than one bzip2 block at level 1).
    (0..600_000u32)
        .map(|i| ((i / 7) ^ ((i % 13) * 31)) as u8)
        .collect()
}

fn tool_args(c: Compression) -> (&'static str, &'static str) {
    match c {
        Compression::Gzip => ("gzip", "--gzip"),
        Compression::Bzip2 => ("bzip2", "--bzip2"),
        Compression::Xz => ("xz", "--xz"),
        Compression::Zstd => ("zstd", "--zstd"),
        Compression::None => unreachable!(),
    }
}

fn pipe(cmd: &mut Command, input: &[u8]) -> Vec<u8> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn compression_interoperates_with_the_command_line_tools() {
    let data = sample_data();
    for c in [
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Xz,
        Compression::Zstd,
    ] {
        let (tool, _) = tool_args(c);
        if !have(tool) {
            println!("skipped {tool}: not installed");
            continue;
        }
        // rime compresses (in two streams back to back, as restarted writers would), tool reads.
        let mut w = rime_engine::tarinc::CompressWriter::new(Vec::new(), c, Some(1)).unwrap();
        w.write_all(&data).unwrap();
        let mut packed = w.finish().unwrap();
        let mut w2 = rime_engine::tarinc::CompressWriter::new(Vec::new(), c, None).unwrap();
        w2.write_all(b"tail").unwrap();
        packed.extend_from_slice(&w2.finish().unwrap());
        assert!(c.looks_like(&packed[..16]), "{tool} magic");
        assert_eq!(Compression::detect(&packed), Some(c));
        let out = pipe(Command::new(tool).args(["-d", "-c"]), &packed);
        assert!(
            out.len() == data.len() + 4 && out[..data.len()] == data[..],
            "{tool} -d"
        );
        // tool compresses, rime reads.
        let packed = pipe(Command::new(tool).arg("-c"), &data);
        let mut r = rime_engine::tarinc::DecompressReader::new(&packed[..], c).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data, "rime reading {tool}");
        // Corruption is reported as such.
        let mut bad = packed.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        bad.truncate(bad.len() - 3);
        let mut r = rime_engine::tarinc::DecompressReader::new(&bad[..], c).unwrap();
        assert!(
            r.read_to_end(&mut Vec::new()).is_err(),
            "{tool}: corrupt input accepted"
        );
    }
}

/// `data` gzip-compressed by rime: a stream to encrypt whose format the key check recognises.
fn rime_gzip(data: &[u8]) -> Vec<u8> {
    let mut w =
        rime_engine::tarinc::CompressWriter::new(Vec::new(), Compression::Gzip, None).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

/// `openssl enc -aes-256-cfb -md <md> -pass <pass_arg>` of `input`.
fn openssl_encrypt(md: KdfDigest, pass_arg: &str, input: &[u8]) -> Vec<u8> {
    pipe(
        Command::new("openssl").args(["enc", "-aes-256-cfb", "-md", md.name(), "-pass", pass_arg]),
        input,
    )
}

/// `openssl enc -d -aes-256-cfb -md <md> -pass <pass_arg>` of `input`.
fn openssl_decrypt(md: KdfDigest, pass_arg: &str, input: &[u8]) -> Vec<u8> {
    pipe(
        Command::new("openssl").args([
            "enc",
            "-d",
            "-aes-256-cfb",
            "-md",
            md.name(),
            "-pass",
            pass_arg,
        ]),
        input,
    )
}

/// rime's reader of an encrypted gzip stream, trying every digest (the key check looks for
/// gzip's magic in the first 16 bytes).
fn rime_decrypt_gzip<'a>(
    enc: &'a [u8],
    pw: &[u8],
) -> rime_engine::Result<rime_engine::tarinc::DecryptReader<&'a [u8]>> {
    let looks = |p: &[u8]| Compression::Gzip.looks_like(p);
    rime_engine::tarinc::DecryptReader::new(enc, pw, &KdfDigest::ALL, 16, looks, "t")
}

/// rime encrypts `gz` with `pw` and digest `md`; openssl, given `pass_arg`, must decrypt it
/// back to `gz`.
#[track_caller]
fn assert_openssl_decrypts_rimes_stream(pw: &[u8], md: KdfDigest, pass_arg: &str, gz: &[u8]) {
    let mut w = rime_engine::tarinc::EncryptWriter::new(Vec::new(), pw, md).unwrap();
    w.write_all(gz).unwrap();
    let enc = w.finish().unwrap();
    let out = openssl_decrypt(md, pass_arg, &enc);
    assert_eq!(
        out,
        gz,
        "openssl -d -md {} reading rime's stream",
        md.name()
    );
}

#[test]
fn openssl_enc_aes_256_cfb_both_ways() {
    require!("openssl");
    let t = tempfile::tempdir().unwrap();
    let pass = t.path().join("pass");
    fs::write(&pass, "correct horse\nsecond line is ignored\n").unwrap();
    let pw = rime_engine::tarinc::openssl::read_pass_file(&pass).unwrap();
    assert_eq!(pw, b"correct horse");
    // A gzip stream to encrypt, so the key check has a format to recognise.
    let gz = rime_gzip(&sample_data());
    let pass_arg = format!("file:{}", pass.display());
    for md in [KdfDigest::Md5, KdfDigest::Sha256] {
        // openssl encrypts, rime decrypts (digest found by trying both).
        let enc = openssl_encrypt(md, &pass_arg, &gz);
        let mut r = rime_decrypt_gzip(&enc, &pw).unwrap();
        assert_eq!(r.digest(), md);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, gz, "rime decrypting openssl -md {}", md.name());
        // Wrong password: refused up front.
        let e = rime_decrypt_gzip(&enc, b"wrong")
            .err()
            .expect("wrong password accepted");
        assert_eq!(e.kind(), rime_engine::ErrorKind::WrongPassword, "{e}");
        // rime encrypts, openssl decrypts.
        assert_openssl_decrypts_rimes_stream(&pw, md, &pass_arg, &gz);
    }
}

/// A pass file with Windows line endings (`secret\r\n`): `openssl enc -pass file:` uses
/// `secret\r` (it strips only the newline), so rime tries the line as openssl reads it first,
/// then without the `\r` (a stream encrypted with `secret` by a tool that strips both).
#[test]
fn openssl_pass_file_with_windows_line_ending() {
    require!("openssl");
    let t = tempfile::tempdir().unwrap();
    let pass = t.path().join("pass");
    fs::write(&pass, "secret\r\nsecond line\r\n").unwrap();
    let pw = rime_engine::tarinc::openssl::read_pass_file(&pass).unwrap();
    assert_eq!(pw, b"secret\r", "the line as openssl reads it");
    let gz = rime_gzip(&sample_data());
    let file_arg = format!("file:{}", pass.display());
    for md in [KdfDigest::Md5, KdfDigest::Sha256] {
        for pass_arg in [file_arg.as_str(), "pass:secret"] {
            let enc = openssl_encrypt(md, pass_arg, &gz);
            let mut r = rime_decrypt_gzip(&enc, &pw)
                .unwrap_or_else(|e| panic!("openssl -md {} -pass {pass_arg}: {e}", md.name()));
            assert_eq!(r.digest(), md);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, gz, "openssl -md {} -pass {pass_arg}", md.name());
        }
        // rime encrypts with the line as openssl reads it: openssl decrypts with the file.
        assert_openssl_decrypts_rimes_stream(&pw, md, &file_arg, &gz);
    }
}

/// Freezer's pipeline (`tar --listed-incremental | gzip | openssl enc`) restored by rime, and
/// rime's stream restored by that pipeline in reverse; wrong passwords write nothing.
#[test]
fn freezer_pipeline_both_ways_with_wrong_password_refused() {
    require!("tar", "gzip", "openssl");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_tree(&src);
    let pass = t.path().join("pass");
    fs::write(&pass, "s3cret\n").unwrap();
    let sh = |script: &str| {
        run(Command::new("bash")
            .arg("-o")
            .arg("pipefail")
            .arg("-c")
            .arg(script));
    };
    sh(&format!(
        "cd {src} && tar --create -z --format=gnu --listed-incremental={t}/snar . \
         | openssl enc -aes-256-cfb -pass file:{pass} > {t}/freezer.tar.gz.enc",
        src = src.display(),
        t = t.path().display(),
        pass = pass.display()
    ));
    let fmt = StreamFormat {
        compression: Compression::Gzip,
        password: Some(b"s3cret".to_vec()),
        digest: None,
    };
    let dest = t.path().join("dest");
    let f = fs::File::open(t.path().join("freezer.tar.gz.enc")).unwrap();
    let mut r = rime_engine::tarinc::open_reader(f, &fmt, "freezer.tar.gz.enc").unwrap();
    tarinc::apply(&mut r, &dest, &ApplyOptions::default()).unwrap();
    assert_same_tree(&src, &dest);

    // Wrong password / missing password / wrong compression: clear errors, nothing written.
    let never = t.path().join("never");
    let bad = StreamFormat {
        password: Some(b"nope".to_vec()),
        ..fmt.clone()
    };
    let f = fs::File::open(t.path().join("freezer.tar.gz.enc")).unwrap();
    let e = rime_engine::tarinc::open_reader(f, &bad, "freezer.tar.gz.enc")
        .err()
        .unwrap();
    assert_eq!(e.kind(), rime_engine::ErrorKind::WrongPassword, "{e}");
    let f = fs::File::open(t.path().join("freezer.tar.gz.enc")).unwrap();
    let e = rime_engine::tarinc::open_reader(f, &StreamFormat::plain(Compression::Gzip), "x")
        .err()
        .unwrap();
    assert!(e.to_string().contains("password is needed"), "{e}");
    let f = fs::File::open(t.path().join("freezer.tar.gz.enc")).unwrap();
    let xz = StreamFormat {
        compression: Compression::Xz,
        ..fmt.clone()
    };
    assert!(rime_engine::tarinc::open_reader(f, &xz, "x").is_err());
    // Uncompressed + encrypted: the key check is the tar header checksum.
    let plain_enc = {
        let mut w = StreamWriter::new(
            Vec::new(),
            &StreamFormat {
                compression: Compression::None,
                ..fmt.clone()
            },
            None,
        )
        .unwrap();
        let o = tarinc::create(&src, None, &mut w, &CreateOptions::default()).unwrap();
        drop(o);
        w.finish().unwrap()
    };
    let nofmt = StreamFormat {
        compression: Compression::None,
        password: Some(b"nope".to_vec()),
        digest: None,
    };
    let e = rime_engine::tarinc::open_reader(&plain_enc[..], &nofmt, "plain.enc")
        .err()
        .unwrap();
    assert_eq!(e.kind(), rime_engine::ErrorKind::WrongPassword, "{e}");
    assert!(!never.exists());

    // rime writes level 0 gzip+encrypted; Freezer's restore pipeline extracts it.
    for md in [KdfDigest::Sha256, KdfDigest::Md5] {
        let out = t.path().join(format!("rime-{}.tar.gz.enc", md.name()));
        let fmt = StreamFormat {
            digest: Some(md),
            ..fmt.clone()
        };
        let w = StreamWriter::new(fs::File::create(&out).unwrap(), &fmt, None).unwrap();
        let o = tarinc::create(&src, None, w, &CreateOptions::default()).unwrap();
        o.out.finish().unwrap();
        let dest = t.path().join(format!("freezer-restore-{}", md.name()));
        fs::create_dir(&dest).unwrap();
        sh(&format!(
            "openssl enc -d -aes-256-cfb -md {md} -pass file:{pass} < {out} \
             | tar -z --incremental --extract --ignore-zeros --overwrite --directory {dest}",
            md = md.name(),
            pass = pass.display(),
            out = out.display(),
            dest = dest.display()
        ));
        assert_same_tree(&src, &dest);
    }
}

#[test]
fn parallel_compression_is_read_by_the_tools() {
    // 3.5 blocks of input, so several independently compressed parts are concatenated.
    let block = 256 * 1024;
    let data: Vec<u8> = (0..(block * 7 / 2) as u32)
        .map(|i| ((i / 5) ^ ((i % 11) * 17)) as u8)
        .collect();
    for c in [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Xz,
        Compression::Bzip2,
    ] {
        let (tool, _) = tool_args(c);
        if !have(tool) {
            println!("skipped {tool}: not installed");
            continue;
        }
        let mut w = rime_engine::tarinc::ParallelCompressWriter::with_block_size(
            Vec::new(),
            c,
            Some(1),
            block,
        );
        w.write_all(&data).unwrap();
        let packed = w.finish().unwrap();
        let out = pipe(Command::new(tool).args(["-d", "-c"]), &packed);
        assert!(out == data, "{tool} -d of rime's parallel stream");
        let mut r = rime_engine::tarinc::DecompressReader::new(&packed[..], c).unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert!(back == data, "rime reading its parallel {tool} stream");
    }
}

#[test]
fn gnu_sparse_members_are_restored() {
    require!("tar");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    fs::create_dir(&src).unwrap();
    {
        use std::io::{Seek, SeekFrom};
        let mut f = fs::File::create(src.join("sparse.img")).unwrap();
        // Many data regions so the map needs GNU extension blocks (more than 4 entries).
        for i in 0..30u64 {
            f.seek(SeekFrom::Start(i * 1_000_000)).unwrap();
            f.write_all(format!("region {i}").as_bytes()).unwrap();
        }
        f.set_len(31_000_000).unwrap();
    }
    let archive = t.path().join("sparse.tar");
    run(Command::new("tar")
        .current_dir(&src)
        .args(["--create", "--format=gnu", "--sparse", "-f"])
        .arg(&archive)
        .arg("."));
    assert!(
        fs::metadata(&archive).unwrap().len() < 1_000_000,
        "tar did not store it sparse"
    );
    let dest = t.path().join("dest");
    rime_apply(&archive, &dest);
    assert_eq!(
        fs::read(src.join("sparse.img")).unwrap(),
        fs::read(dest.join("sparse.img")).unwrap()
    );
}
