//! Backup then restore, and the restored tree equals the source in content and metadata.

use std::ffi::OsStr;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::util::*;

const GIB: u64 = 1 << 30;
/// (offset, length, seed) of the data islands in the sparse file.
const ISLANDS: [(u64, usize, u64); 4] = [
    (0, 70_000, 11),
    (3 * GIB + 123, 100_000, 12),
    (7 * GIB + 4096 * 3, 4096, 13),
    (10 * GIB - 5000, 5000, 14),
];

fn make_sparse(path: &Path) {
    let mut f = fs::File::create(path).unwrap();
    f.set_len(10 * GIB).unwrap();
    for (off, len, seed) in ISLANDS {
        f.seek(SeekFrom::Start(off)).unwrap();
        f.write_all(&random_bytes(seed, len)).unwrap();
    }
}

/// Every kind of entry rime stores, with odd names, modes, owners, xattrs and ns mtimes.
fn build_full_tree(src: &Path) {
    mkdir(src);
    write(&src.join("empty"), b"");
    write(&src.join("small.txt"), b"hello, rime\n");
    write_random_file(&src.join("big.bin"), 1, 22 << 20);
    // Large enough to be read in windows (three of them), not whole.
    write_random_file(&src.join("large.bin"), 3, 40 << 20);
    write(&src.join("a/b/c/deep.txt"), b"deep down");
    mkdir(&src.join("a/empty-dir"));
    symlink("small.txt", &src.join("rel-link"));
    symlink("/etc/hostname", &src.join("abs-link"));
    symlink("does/not/exist", &src.join("dangling-link"));
    symlink("a/b", &src.join("dir-link"));
    // Three names for one inode, across directories.
    write(&src.join("hl/one"), random_bytes(2, 5000));
    mkdir(&src.join("other"));
    fs::hard_link(src.join("hl/one"), src.join("hl/two")).unwrap();
    fs::hard_link(src.join("hl/one"), src.join("other/three")).unwrap();
    // A second, separate group.
    write(&src.join("hl/x"), b"another group");
    fs::hard_link(src.join("hl/x"), src.join("hl/y")).unwrap();
    mkfifo(&src.join("fifo"));
    if is_root() {
        assert!(
            mknod_char(&src.join("null-dev"), 1, 3),
            "mknod failed as root"
        );
    } else {
        eprintln!("roundtrip: not root, skipping the character device node");
    }
    make_sparse(&src.join("sparse.img"));
    // Unusual names.
    write(&src.join("with space"), b"space");
    write(&src.join("new\nline"), b"newline");
    write(&bytes_path(src, b"bad-\xff\xfe-utf8"), b"not utf-8");
    write(&src.join("-leading-dash"), b"dash");
    write(&src.join("ünïcödé ✓"), b"unicode");
    mkdir(&bytes_path(src, b"dir\xe9\nodd"));
    write(&bytes_path(src, b"dir\xe9\nodd/inner"), b"inner");
    // Permissions.
    write(&src.join("readonly"), b"r--r--r--");
    write(&src.join("exec.sh"), b"#!/bin/sh\necho hi\n");
    write(&src.join("setgid-dir/f"), b"in setgid dir");
    write(&src.join("private/secret"), b"secret");
    // Ownership first (chown clears set-id bits), then modes, xattrs and times.
    if is_root() {
        chown_tree(src, 1234, 5678);
        chown(&src.join("small.txt"), 4321, 8765);
        chown(&src.join("rel-link"), 4321, 5678);
    } else {
        eprintln!("roundtrip: not root, ownership is not exercised");
    }
    chmod(&src.join("readonly"), 0o444);
    chmod(&src.join("exec.sh"), 0o755);
    chmod(&src.join("setgid-dir"), 0o2775);
    chmod(&src.join("private"), 0o700);
    chmod(&src.join("small.txt"), 0o640);
    xattr::set(src.join("small.txt"), "user.comment", b"hello xattr").unwrap();
    xattr::set(src.join("small.txt"), "user.binary", &[0u8, 1, 2, 255]).unwrap();
    xattr::set(src.join("a"), "user.on-dir", b"dir attr").unwrap();
    xattr::set(src.join("empty"), "user.empty-value", b"").unwrap();
    // Explicit nanosecond mtimes on everything, children before parents.
    let mut paths = walk(src);
    paths.reverse();
    for (i, rel) in paths.iter().enumerate() {
        let secs = 1_500_000_000 + (i as i64) * 86_400 * 7 + 17;
        let nanos = 123_456_789u32.wrapping_add(i as u32 * 1_000_003) % 1_000_000_000;
        set_mtime(&src.join(rel), secs, nanos);
    }
}

#[test]
fn full_tree_round_trips() {
    let repo = Repo::with_init_args(&["--insecure-fast-kdf", "--pack-size", "4"]);
    let src = repo.tmp.path().join("src");
    build_full_tree(&src);
    let b = repo.backup(&[&src], &[]);
    let s = &b["stats"];
    assert_eq!(s["unreadable"], 0, "{b}");
    assert!(
        s["chunks_new"].as_u64().unwrap() >= 20,
        "62 MB of random data is many chunks: {b}"
    );
    let data_packs = repo.packs().len();
    assert!(
        data_packs >= 12,
        "62 MB in 4 MiB packs needs many packs, found {data_packs}"
    );

    let target = repo.fresh("restored");
    let out = repo.restore("latest", &target, &["--verify"]);
    assert!(out.stderr.is_empty(), "restore warned: {}", out.stderr);
    assert!(
        out.stdout.contains("every file equal to the snapshot"),
        "{}",
        out.stdout
    );
    compare_trees(&src, &target);

    // The sparse file keeps its holes and its islands.
    let sp = target.join("sparse.img");
    let m = fs::metadata(&sp).unwrap();
    assert_eq!(m.len(), 10 * GIB);
    assert!(
        m.blocks() * 512 < 8 << 20,
        "restored sparse file uses {} bytes on disk",
        m.blocks() * 512
    );
    let mut f = fs::File::open(&sp).unwrap();
    for (off, len, seed) in ISLANDS {
        let mut buf = vec![0u8; len];
        f.seek(SeekFrom::Start(off)).unwrap();
        std::io::Read::read_exact(&mut f, &mut buf).unwrap();
        assert!(buf == random_bytes(seed, len), "island at {off} differs");
    }
    // A spot between islands reads as zeros.
    let mut buf = vec![1u8; 4096];
    f.seek(SeekFrom::Start(5 * GIB)).unwrap();
    std::io::Read::read_exact(&mut f, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));

    // Hard links: one inode with three names in the restore.
    let i1 = fs::metadata(target.join("hl/one")).unwrap();
    let i3 = fs::metadata(target.join("other/three")).unwrap();
    assert_eq!(i1.ino(), i3.ino());
    assert_eq!(i1.nlink(), 3);
    if is_root() {
        let d = fs::symlink_metadata(target.join("null-dev")).unwrap();
        assert_eq!(
            d.rdev(),
            fs::symlink_metadata(src.join("null-dev")).unwrap().rdev()
        );
        assert_eq!((d.uid(), d.gid()), (1234, 5678));
    }
}

fn small_dir(dir: &Path, seed: u64) {
    write(&dir.join("f1"), random_bytes(seed, 3000));
    write(&dir.join("sub/f2"), random_bytes(seed + 1, 100));
    symlink("f1", &dir.join("l"));
    set_mtime(&dir.join("f1"), 1_600_000_000, 1);
    set_mtime(&dir.join("sub/f2"), 1_600_000_001, 999_999_999);
    set_mtime(&dir.join("sub"), 1_600_000_002, 5);
    set_mtime(&dir.join("l"), 1_600_000_003, 7);
    set_mtime(dir, 1_600_000_004, 500);
}

#[test]
fn several_paths_restore_each_under_its_last_component() {
    let repo = Repo::new();
    let x = repo.dir("one/x");
    let y = repo.dir("two/deeper/y");
    small_dir(&x, 1);
    small_dir(&y, 2);
    let z = repo.dir("three").join("z.txt");
    write(&z, b"a single file");
    chmod(&z, 0o604);
    set_mtime(&z, 1_234_567_890, 42);
    let b = repo.backup(&[&x, &y, &z], &[]);
    assert_eq!(b["stats"]["files"], 5, "{b}");

    let target = repo.fresh("restored");
    repo.restore("latest", &target, &[]);
    let names: Vec<_> = fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        3,
        "target holds one entry per source path: {names:?}"
    );
    compare_trees(&x, &target.join("x"));
    compare_trees(&y, &target.join("y"));
    let m = fs::metadata(target.join("z.txt")).unwrap();
    assert_eq!(fs::read(target.join("z.txt")).unwrap(), b"a single file");
    assert_eq!(m.mode() & 0o7777, 0o604);
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_234_567_890, 42));
}

#[test]
fn one_directory_restores_its_contents_into_the_target() {
    let repo = Repo::new();
    let src = repo.dir("src-dir");
    small_dir(&src, 3);
    chmod(&src, 0o750);
    set_mtime(&src, 1_600_000_004, 500);
    repo.backup(&[&src], &[]);
    let target = repo.fresh("restored");
    repo.restore("latest", &target, &[]);
    assert!(
        !target.join("src-dir").exists(),
        "the directory itself must not be nested in the target"
    );
    assert!(target.join("f1").is_file());
    // The target takes the source directory's own metadata (mode, mtime) too.
    compare_trees(&src, &target);
}

#[test]
fn single_file_as_the_source() {
    let repo = Repo::new();
    let d = repo.dir("only");
    let f = d.join("lonely.bin");
    write(&f, random_bytes(9, 70_000));
    chmod(&f, 0o600);
    xattr::set(&f, "user.k", b"v").unwrap();
    set_mtime(&f, 1_111_111_111, 111_111_111);
    if is_root() {
        chown(&f, 1234, 5678);
    }
    repo.backup(&[&f], &[]);
    let target = repo.fresh("restored");
    repo.restore("latest", &target, &[]);
    assert!(target.join("lonely.bin").is_file());
    compare_trees_with(
        &d,
        &target,
        CompareOpts {
            root_meta: false,
            owner: true,
        },
    );
    if is_root() {
        // --no-ownership leaves the restoring user as the owner.
        let t2 = repo.fresh("no-owner");
        repo.restore("latest", &t2, &["--no-ownership"]);
        let m = fs::metadata(t2.join("lonely.bin")).unwrap();
        assert_eq!((m.uid(), m.gid()), (0, 0));
        assert_eq!(
            fs::read(t2.join("lonely.bin")).unwrap(),
            fs::read(&f).unwrap()
        );
    }
}

/// Large files are restored with direct I/O: the bytes are the same, and almost none of the
/// file is left in the page cache (only the pages around chunk boundaries, written through
/// it). `--buffered` writes through the page cache, which leaves the whole file cached: the
/// check can tell the two apart. Skipped where the file system takes no direct I/O.
#[test]
fn large_files_are_restored_with_direct_io_bypassing_the_page_cache() {
    let r = Repo::new();
    let src = r.dir("src");
    write_random_file(&src.join("large.bin"), 5, 48 << 20);
    // Text compresses: its chunks are stored compressed, at unaligned offsets in the file.
    let text: String = (0..600_000).map(|i| format!("line {i}\n")).collect();
    write(&src.join("text.log"), text.repeat(6));
    let id = r.backup(&[&src], &[])["id"].as_str().unwrap().to_string();
    let resident = |p: &Path| -> u64 {
        let o = run_cmd(
            "fincore",
            &[
                OsStr::new("--bytes"),
                OsStr::new("--noheadings"),
                OsStr::new("--output"),
                OsStr::new("RES"),
                p.as_os_str(),
            ],
        );
        assert!(o.status.success(), "fincore: {o:?}");
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    };
    let direct = r.dir("direct");
    r.restore(&id, &direct, &[]).ok();
    let buffered = r.dir("buffered");
    r.restore(&id, &buffered, &["--buffered"]).ok();
    // Looked at before anything reads the files (reading caches them). tmpfs is all page
    // cache, however it is written.
    if rime_engine::sys::fs_magic(&direct).unwrap() == libc::TMPFS_MAGIC {
        eprintln!("skipped the page cache check: the test directory is on tmpfs");
    } else {
        for f in ["large.bin", "text.log"] {
            let size = fs::metadata(src.join(f)).unwrap().len();
            let (d, b) = (resident(&direct.join(f)), resident(&buffered.join(f)));
            assert!(
                d < size / 8,
                "{f}: {d} of {size} bytes cached after a direct restore"
            );
            assert!(
                b > size / 2,
                "{f}: only {b} of {size} bytes cached after --buffered"
            );
        }
    }
    for out in [&direct, &buffered] {
        for f in ["large.bin", "text.log"] {
            assert!(
                fs::read(src.join(f)).unwrap() == fs::read(out.join(f)).unwrap(),
                "{f} differs in {}",
                out.display()
            );
        }
    }
}

/// A repository that cannot be written (a read-only mount of a backup disk) can still be
/// restored from and dumped: the shared lock is skipped with a warning, since nothing can
/// prune such a repository either. Writing commands still fail.
#[test]
fn read_only_repository_restores_and_dumps_without_a_lock() {
    let r = Repo::new();
    let src = r.dir("src");
    write_random_file(&src.join("f"), 17, 300_000);
    let id = r.backup(&[&src], &[])["id"].as_str().unwrap().to_string();
    if !is_root() {
        eprintln!("skipping: not root, cannot make a read-only bind mount");
        return;
    }
    let ro = r.dir("ro");
    let bind = Command::new("mount")
        .arg("--bind")
        .arg(&r.path)
        .arg(&ro)
        .status()
        .unwrap();
    assert!(bind.success());
    let _m = Mount(ro.clone());
    let remount = Command::new("mount")
        .args(["-o", "remount,ro,bind"])
        .arg(&ro)
        .status()
        .unwrap();
    assert!(remount.success());
    let run = |args: &[&str]| {
        let mut all = vec![
            "--repo",
            ro.to_str().unwrap(),
            "--password-file",
            r.pw_file.to_str().unwrap(),
        ];
        all.extend(args);
        rime_raw(&all, &[])
    };
    let out = r.dir("out");
    let o = run(&["restore", &id, "--target", out.to_str().unwrap()]);
    o.ok();
    assert!(o.stderr.contains("read-only"), "{}", o.stderr);
    assert_eq!(
        fs::read(out.join("f")).unwrap(),
        fs::read(src.join("f")).unwrap()
    );
    let d = run(&["dump", &id, "/f"]);
    d.ok();
    assert_eq!(d.raw_stdout, fs::read(src.join("f")).unwrap());
    run(&["backup", src.to_str().unwrap()]).failed();
}
