//! Volume and stream snapshots: image files, loop devices, standard input and commands.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::devices::{mount, sh, Loop};
use crate::util::*;

const MIB: u64 = 1 << 20;

/// A sparse image: `size` bytes with random data in a few regions.
fn sparse_image(path: &Path, size: u64, regions: &[(u64, usize)], seed: u64) {
    let f = fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    for (i, &(off, len)) in regions.iter().enumerate() {
        f.write_all_at(&random_bytes(seed + i as u64, len), off).unwrap();
    }
}

fn poke(path: &Path, offsets: &[u64], seed: u64) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    for (i, &o) in offsets.iter().enumerate() {
        f.write_all_at(&random_bytes(seed + i as u64, 4096), o).unwrap();
    }
}

fn same_bytes(a: &Path, b: &Path) {
    assert_eq!(
        first_difference(a, b),
        None,
        "{} and {} differ",
        a.display(),
        b.display()
    );
}

fn stat(v: &Value, k: &str) -> u64 {
    v["stats"][k]
        .as_u64()
        .unwrap_or_else(|| panic!("no stats.{k} in {v}"))
}

#[test]
fn image_backup_is_incremental_sparse_and_restores_exactly() {
    let repo = Repo::new();
    let dir = repo.dir("src");
    let img = dir.join("disk.img");
    sparse_image(&img, 256 * MIB, &[(0, 3 << 20), (100 * MIB, 5 << 20), (255 * MIB, 1 << 20)], 1);
    let s1 = repo.backup::<&str>(&[], &["--volume", img.to_str().unwrap(), "--chunk-size", "64K"]);
    assert_eq!(s1["source"], "volume");
    // holes are not read
    assert!(stat(&s1, "bytes_read") <= 10 * MIB, "{s1}");
    assert_eq!(stat(&s1, "bytes_total"), 256 * MIB);

    // An unchanged image file is recognised without reading it.
    let s2 = repo.backup::<&str>(&[], &["--volume", img.to_str().unwrap(), "--chunk-size", "64K"]);
    assert_eq!(stat(&s2, "bytes_read"), 0, "{s2}");
    assert_eq!(s2["parent"], s1["id"]);

    // Three scattered 4 KiB writes: three new 64 KiB chunks, the rest deduplicated.
    poke(&img, &[4096, 101 * MIB + 8192, 200 * MIB], 50);
    let s3 = repo.backup::<&str>(&[], &["--volume", img.to_str().unwrap(), "--chunk-size", "64K"]);
    assert_eq!(stat(&s3, "chunks_new"), 3, "{s3}");
    assert!(stat(&s3, "bytes_added") < 3 * 65536 + 64 * 1024, "{s3}");

    // diff names exactly the three changed chunks.
    let d = repo.run(&["diff", "--json", s1["id"].as_str().unwrap(), s3["id"].as_str().unwrap()]);
    d.ok();
    let d = d.json();
    assert_eq!(d["changed_bytes"], 3 * 65536, "{d}");
    let offs: Vec<u64> = d["ranges"].as_array().unwrap().iter().map(|r| r["offset"].as_u64().unwrap()).collect();
    assert_eq!(offs, vec![0, 101 * MIB, 200 * MIB]);

    // Restore to a new file: same bytes, holes stay holes.
    let out = repo.fresh("restored.img");
    let r = repo.run(&["restore", "--json", s3["id"].as_str().unwrap(), "--target", out.to_str().unwrap(), "--verify"]);
    r.ok();
    assert_eq!(r.json()["verified_bytes"], 256 * MIB);
    same_bytes(&img, &out);
    assert_eq!(fs::metadata(&out).unwrap().len(), 256 * MIB);
    assert!(
        fs::metadata(&out).unwrap().blocks() * 512 < 20 * MIB,
        "restored image is not sparse"
    );
    // The older snapshot still restores its own content (the pokes are absent).
    let old = repo.fresh("old.img");
    repo.run(&["restore", s1["id"].as_str().unwrap(), "--target", old.to_str().unwrap()]).ok();
    let a = fs::read(&old).unwrap();
    assert_eq!(&a[4096..8192], &random_bytes(1, 3 << 20)[4096..8192]);

    // dump streams the image.
    let dump = repo.run(&["dump", s3["id"].as_str().unwrap()]);
    dump.ok();
    assert_eq!(dump.raw_stdout.len() as u64, 256 * MIB);
    assert!(dump.raw_stdout == fs::read(&img).unwrap(), "dump differs from the image");

    repo.run(&["check", "--read-data"]).ok();
}

#[test]
fn restore_refuses_non_empty_targets_unless_overwrite_and_verify_catches_differences() {
    let repo = Repo::new();
    let img = repo.dir("src").join("a.img");
    sparse_image(&img, 16 * MIB, &[(MIB, 2 << 20)], 7);
    let s = repo.backup::<&str>(&[], &["--volume", img.to_str().unwrap()]);
    let id = s["id"].as_str().unwrap();
    let target = repo.dir("t").join("existing.img");
    fs::write(&target, b"precious data").unwrap();
    repo.run(&["restore", id, "--target", target.to_str().unwrap()])
        .failed()
        .error_names(&["existing.img", "--overwrite"]);
    assert_eq!(fs::read(&target).unwrap(), b"precious data", "refusal must not touch the target");
    repo.run(&["restore", id, "--target", target.to_str().unwrap(), "--overwrite", "--verify"]).ok();
    same_bytes(&img, &target);
    // A directory is not a volume target.
    repo.run(&["restore", id, "--target", repo.dir("somedir").to_str().unwrap()])
        .failed()
        .error_names(&["somedir"]);
    // ls of a volume snapshot says what it is instead of failing obscurely.
    repo.run(&["ls", id]).failed().error_names(&["volume", "dump"]);
}

#[test]
fn sources_that_are_not_volumes_are_refused() {
    let repo = Repo::new();
    let d = repo.dir("src");
    mkfifo(&d.join("fifo"));
    for p in [d.join("fifo"), d.clone(), d.join("missing")] {
        repo.run(&["backup", "--volume", p.to_str().unwrap()])
            .failed()
            .error_names(&[p.file_name().unwrap().to_str().unwrap()]);
    }
    let img = d.join("x.img");
    fs::write(&img, vec![1u8; 4096]).unwrap();
    repo.run(&["backup", "--volume", img.to_str().unwrap(), "--chunk-size", "100K"])
        .failed()
        .error_names(&["power of two"]);
    repo.run(&["backup", "--volume", img.to_str().unwrap(), "--chunk-size", "32M"])
        .failed()
        .error_names(&["16"]);
    assert!(repo.snapshots().is_empty());
}

#[test]
fn content_defined_volume_chunks_survive_shifted_data() {
    let repo = Repo::new();
    let d = repo.dir("src");
    let data = random_bytes(11, 24 << 20);
    fs::write(d.join("a.img"), &data).unwrap();
    let mut shifted = random_bytes(12, 1000);
    shifted.extend_from_slice(&data);
    fs::write(d.join("b.img"), &shifted).unwrap();
    let a = repo.backup::<&str>(&[], &["--volume", d.join("a.img").to_str().unwrap(), "--chunker", "fastcdc"]);
    let b = repo.backup::<&str>(&[], &["--volume", d.join("b.img").to_str().unwrap(), "--chunker", "fastcdc"]);
    assert!(stat(&a, "chunks_new") >= 3);
    // Only the first chunk differs.
    assert_eq!(stat(&b, "chunks_new"), 1, "{b}");
    let out = repo.fresh("b.out");
    repo.run(&["restore", b["id"].as_str().unwrap(), "--target", out.to_str().unwrap(), "--verify"]).ok();
    assert!(fs::read(&out).unwrap() == shifted);
}

fn rime_stdin(repo: &Repo, args: &[&str], input: &[u8]) -> Out {
    let mut c = Command::new(rime_bin());
    c.arg("--repo").arg(&repo.path).arg("--password-file").arg(&repo.pw_file);
    c.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let w = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let o = child.wait_with_output().unwrap();
    w.join().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        raw_stdout: o.stdout,
    }
}

#[test]
fn streams_from_stdin_and_commands() {
    let repo = Repo::new();
    // A "dump" larger than one chunking window, with a mostly-unchanged second day.
    let mut day1 = random_bytes(3, 70 << 20);
    let o = rime_stdin(&repo, &["backup", "--json", "--stdin", "--name", "db"], &day1);
    o.ok();
    let s1 = o.json();
    assert_eq!(s1["source"], "stream");
    day1[30 << 20..(30 << 20) + 100].copy_from_slice(&[9u8; 100]);
    let o = rime_stdin(&repo, &["backup", "--json", "--stdin", "--name", "db"], &day1);
    o.ok();
    let s2 = o.json();
    assert_eq!(s2["parent"], s1["id"]);
    assert!(stat(&s2, "chunks_new") <= 2, "{s2}");
    let dump = repo.run(&["dump", s2["id"].as_str().unwrap()]);
    dump.ok();
    assert!(dump.raw_stdout == day1, "stream dump differs");

    // A stream needs a name (its parent is found by it).
    rime_stdin(&repo, &["backup", "--stdin"], b"x").failed().error_names(&["--name"]);

    // A command's output; a failing command saves nothing.
    let s = repo.backup::<&str>(&[], &["--stdin-from-command", "printf 'line1\\nline2\\n'", "--name", "cmd"]);
    let dump = repo.run(&["dump", s["id"].as_str().unwrap()]);
    assert_eq!(dump.raw_stdout, b"line1\nline2\n");
    let before = repo.snapshots().len();
    repo.run(&["backup", "--stdin-from-command", "echo partial; exit 7", "--name", "cmd"])
        .failed()
        .error_names(&["exit status: 7", "nothing was saved"]);
    assert_eq!(repo.snapshots().len(), before);
    repo.run(&["check", "--read-data"]).ok();
}

#[test]
fn loop_device_backup_and_restore_onto_devices() {
    let repo = Repo::new();
    let d = repo.dir("dev");
    let backing = d.join("src.raw");
    sparse_image(&backing, 32 * MIB, &[(0, 4 << 20), (20 * MIB, 1 << 20)], 21);
    let Some(src) = Loop::attach(&backing) else {
        return;
    };
    let dev = src.dev.to_str().unwrap();
    let s1 = repo.backup::<&str>(&[], &["--volume", dev]);
    assert_eq!(s1["source"], "volume");
    // A block device has no trustworthy mtime: it is re-read, and nothing new is stored.
    let s2 = repo.backup::<&str>(&[], &["--volume", dev]);
    assert_eq!(stat(&s2, "bytes_read"), 32 * MIB);
    assert_eq!(stat(&s2, "chunks_new"), 0, "{s2}");
    let snaps = repo.snapshots();
    assert_eq!(snaps[0]["source"]["block_device"], true);

    // Target devices: too small, holding data, mounted.
    let small_f = d.join("small.raw");
    fs::File::create(&small_f).unwrap().set_len(16 * MIB).unwrap();
    let small = Loop::attach(&small_f).unwrap();
    let id = s2["id"].as_str().unwrap();
    repo.run(&["restore", id, "--target", small.dev.to_str().unwrap()])
        .failed()
        .error_names(&["at least as large"]);

    let dst_f = d.join("dst.raw");
    let f = fs::File::create(&dst_f).unwrap();
    f.set_len(32 * MIB).unwrap();
    f.write_all_at(&[0xAB; 4096], 0).unwrap();
    f.write_all_at(&[0xCD; 4096], 10 * MIB).unwrap(); // inside a hole of the source
    drop(f);
    let dst = Loop::attach(&dst_f).unwrap();
    let dd = dst.dev.to_str().unwrap();
    repo.run(&["restore", id, "--target", dd])
        .failed()
        .error_names(&["holds data", "--overwrite"]);
    let r = repo.run(&["restore", "--json", id, "--target", dd, "--overwrite", "--verify"]);
    r.ok();
    assert_eq!(r.json()["verified_bytes"], 32 * MIB);
    // The device's old bytes in the source's holes were zeroed.
    sh(&format!("blockdev --flushbufs {dd}"));
    same_bytes(&backing, &dst_f);

    if crate::devices::have("mkfs.ext4") {
        let m_f = d.join("mounted.raw");
        fs::File::create(&m_f).unwrap().set_len(32 * MIB).unwrap();
        let m = Loop::attach(&m_f).unwrap();
        sh(&format!("mkfs.ext4 -q {}", m.dev.display()));
        let _mnt = mount(&m.dev, &d.join("mnt"), &[]);
        repo.run(&["restore", id, "--target", m.dev.to_str().unwrap(), "--overwrite"])
            .failed()
            .error_names(&["mounted"]);
    } else {
        eprintln!("skipped the mounted-device case: mkfs.ext4 is missing");
    }
}

#[test]
fn corrupted_volume_data_is_named_and_never_restored_silently() {
    let repo = Repo::new();
    let img = repo.dir("src").join("c.img");
    sparse_image(&img, 8 * MIB, &[(0, 8 << 20)], 31);
    let s = repo.backup::<&str>(&[], &["--volume", img.to_str().unwrap(), "--compression", "0"]);
    let (pack, path) = repo
        .packs()
        .into_iter()
        .max_by_key(|(_, p)| fs::metadata(p).unwrap().len())
        .unwrap();
    let f = fs::OpenOptions::new().write(true).read(true).open(&path).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, 1000).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], 1000).unwrap();
    let out = repo.fresh("c.out");
    repo.run(&["restore", s["id"].as_str().unwrap(), "--target", out.to_str().unwrap()])
        .failed()
        .error_names(&[&pack[..8], "content offset"]);
    repo.run(&["dump", s["id"].as_str().unwrap()]).failed().error_names(&[&pack[..8]]);
}

#[test]
fn a_device_that_shrinks_during_the_backup_fails_it_and_leaves_no_lock() {
    let repo = Repo::new();
    let d = repo.dir("dev");
    let backing = d.join("shrink.raw");
    write_random_file(&backing, 77, 192 << 20);
    let Some(dev) = Loop::attach(&backing) else {
        return;
    };
    let mut child = Command::new(rime_bin())
        .args(["--repo", repo.path.to_str().unwrap(), "--password-file"])
        .arg(&repo.pw_file)
        .args(["backup", "--volume", dev.dev.to_str().unwrap(), "--compression", "19"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    fs::OpenOptions::new().write(true).open(&backing).unwrap().set_len(64 << 20).unwrap();
    sh(&format!("losetup -c {}", dev.dev.display()));
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a backup across a size change succeeded: {err}");
    assert!(err.contains("changed size"), "{err}");
    assert!(repo.snapshots().is_empty());
    assert_eq!(fs::read_dir(repo.path.join("locks")).unwrap().count(), 0, "lock left behind");
    repo.run(&["check"]).ok();
}
