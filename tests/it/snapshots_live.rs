//! Backups from snapshots of live sources: btrfs for real (on a loop device), and LVM through
//! stand-ins for the `lvs`, `lvcreate` and `lvremove` commands, because this kernel has no
//! device-mapper (so no real LVM can run here). The stand-ins record their arguments and
//! present a loop device holding a copy of the origin as the snapshot; mounting it, reading
//! it, and everything rime does around it is real.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::devices::{have, mount, sh, Loop, Mounted};
use crate::util::*;

/// A btrfs file system on a loop device, mounted; `None` (with the reason printed) if that
/// cannot be done here.
struct Btrfs {
    mnt: Mounted,
    _dev: Loop,
}

fn btrfs(dir: &Path) -> Option<Btrfs> {
    if !have("mkfs.btrfs") {
        eprintln!("skipped: mkfs.btrfs is missing (install btrfs-progs)");
        return None;
    }
    let img = dir.join("btrfs.img");
    fs::File::create(&img).unwrap().set_len(256 << 20).unwrap();
    let dev = Loop::attach(&img)?;
    sh(&format!("mkfs.btrfs -q {}", dev.dev.display()));
    let mnt = mount(&dev.dev, &dir.join("mnt"), &[]);
    Some(Btrfs { mnt, _dev: dev })
}

/// [`btrfs`] with a subvolume `vol` created in it: the file system (unmounted when dropped)
/// and the subvolume's path.
fn btrfs_with_subvolume(dir: &Path) -> Option<(Btrfs, PathBuf)> {
    let fs_ = btrfs(dir)?;
    let m = &fs_.mnt.0;
    sh(&format!("btrfs subvolume create {}/vol", m.display()));
    let vol = m.join("vol");
    Some((fs_, vol))
}

fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.starts_with(".rime-snapshot-").then_some(n)
        })
        .collect()
}

#[test]
fn btrfs_snapshot_backups_are_consistent_incremental_and_leave_nothing_behind() {
    let repo = Repo::new();
    let Some((_fs, vol)) = btrfs_with_subvolume(&repo.dir("b")) else {
        return;
    };
    let src = vol.join("data");
    mkdir(&src);
    for i in 0..20 {
        write_random_file(&src.join(format!("f{i}")), i, 100_000 + i as usize * 1000);
    }
    write(&src.join("sub/small"), b"small file");
    // A snapshot left by a killed run (its pid does not exist) is removed first.
    sh(&format!(
        "btrfs subvolume snapshot -r {} {}/.rime-snapshot-999999",
        vol.display(),
        vol.display()
    ));
    let b1 = repo.backup(&[&src], &["--snapshot"]);
    assert!(
        leftovers(&vol).is_empty(),
        "snapshots left: {:?}",
        leftovers(&vol)
    );
    let snaps = repo.snapshots();
    assert_eq!(
        snaps[0]["paths"][0],
        src.to_str().unwrap(),
        "the origin path is recorded"
    );
    assert_eq!(b1["stats"]["files"], 21);
    let out = repo.fresh("r1");
    repo.restore(b1["id"].as_str().unwrap(), &out, &[]);
    compare_trees(&src, &out);
    // Unchanged files are recognised across snapshots (same inode and ctime) and not read.
    write(&src.join("new"), b"new file");
    let b2 = repo.backup(&[&src], &["--snapshot"]);
    assert_eq!(b2["parent"], b1["id"]);
    assert_eq!(b2["stats"]["files_read"], 1, "{b2}");
    assert!(leftovers(&vol).is_empty());
    // Backing up the subvolume root itself: the snapshot directory is not in the backup.
    let b3 = repo.backup(&[&vol], &["--snapshot"]);
    let ls = repo.run(&["ls", b3["id"].as_str().unwrap()]);
    ls.ok();
    assert!(!ls.stdout.contains(".rime-snapshot"), "{}", ls.stdout);
    // Not on btrfs and no LVM: a clear error.
    let plain = repo.dir("plain");
    repo.run(&["backup", "--snapshot", plain.to_str().unwrap()])
        .failed()
        .error_names(&["lvs"]);
}

#[test]
fn sigterm_during_a_snapshot_backup_removes_the_snapshot() {
    let repo = Repo::new();
    let Some((_fs, vol)) = btrfs_with_subvolume(&repo.dir("b")) else {
        return;
    };
    mkdir(&vol.join("d"));
    for i in 0..150 {
        write_random_file(&vol.join(format!("d/f{i}")), i, 1 << 20);
    }
    let before = repo.snapshots().len();
    let mut child = Command::new(rime_bin())
        .args(["--repo", repo.path.to_str().unwrap(), "--password-file"])
        .arg(&repo.pw_file)
        .args(["backup", "--snapshot", "--compression", "19"])
        .arg(vol.join("d"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while leftovers(&vol).is_empty() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!leftovers(&vol).is_empty(), "the snapshot never appeared");
    sh(&format!("kill -TERM {}", child.id()));
    let st = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(st.code(), Some(130), "{err}");
    assert!(leftovers(&vol).is_empty(), "snapshot left after SIGTERM");
    assert_eq!(
        repo.snapshots().len(),
        before,
        "an interrupted backup saved a snapshot"
    );
    // The repository is fine and the next run works.
    repo.run(&["check"]).ok();
    repo.backup(&[&vol.join("d")], &["--snapshot"]);
}

// ---------------------------------------------------------------------------------------------
// LVM through stand-ins

/// Stand-ins for lvs/lvcreate/lvremove. State lives in $RIME_LVM_STATE: `origin` holds the
/// origin device path, `snap-NAME` holds "TAGS|DEVICE" while a snapshot exists, `percent` the
/// fill level reported for it, and `log` every call.
const STANDIN: &str = r#"#!/bin/bash
S=$RIME_LVM_STATE
echo "$(basename "$0") $*" >>"$S/log"
origin=$(cat "$S/origin")
case "$(basename "$0")" in
lvs)
  target=${@: -1}; fields=""
  while [ $# -gt 0 ]; do [ "$1" = "-o" ] && fields=$2; shift; done
  if [ "$target" = "$origin" ] || [ "$target" = /dev/vg0/data ] || [ "$target" = vg0/data ]; then
    case "$fields" in
      vg_name,lv_name) echo "  vg0|data" ;;
      *) echo "  |$origin" ;;
    esac
    exit 0
  fi
  name=${target#vg0/}
  if [ ! -f "$S/snap-$name" ]; then echo "  Failed to find logical volume \"$target\"" >&2; exit 5; fi
  IFS='|' read -r tags dev <"$S/snap-$name"
  case "$fields" in
    lv_tags,lv_path) echo "  $tags|$dev" ;;
    lv_path) echo "  $dev" ;;
    snap_percent,lv_attr) echo "  $(cat "$S/percent" 2>/dev/null || echo 0.00)|swi-a-s---" ;;
    *) echo "unsupported fields $fields" >&2; exit 3 ;;
  esac ;;
lvcreate)
  name=""; tag=""
  while [ $# -gt 0 ]; do
    case "$1" in --name) name=$2; shift ;; --addtag) tag=$2; shift ;; esac; shift
  done
  [ -f "$S/fail-create" ] && { echo "  Insufficient free space: 256 extents needed" >&2; exit 5; }
  sync; cp --sparse=always "$S/origin.img" "$S/snap-$name.img"
  dev=$(losetup -f --show "$S/snap-$name.img")
  echo "$tag|$dev" >"$S/snap-$name" ;;
lvremove)
  name=${@: -1}; name=${name#vg0/}
  IFS='|' read -r tags dev <"$S/snap-$name"
  losetup -d "$dev"; rm -f "$S/snap-$name" "$S/snap-$name.img" ;;
esac
"#;

struct Lvm {
    state: PathBuf,
    bin: PathBuf,
    origin: Loop,
    _mnt: Mounted,
    mnt: PathBuf,
}

fn lvm_standins(dir: &Path) -> Option<Lvm> {
    let state = dir.join("lvm-state");
    let bin = dir.join("bin");
    fs::create_dir_all(&state).unwrap();
    fs::create_dir_all(&bin).unwrap();
    for n in ["lvs", "lvcreate", "lvremove"] {
        write(&bin.join(n), STANDIN);
        chmod(&bin.join(n), 0o755);
    }
    let img = state.join("origin.img");
    fs::File::create(&img).unwrap().set_len(64 << 20).unwrap();
    let origin = Loop::attach(&img)?;
    sh(&format!("mkfs.ext4 -q {}", origin.dev.display()));
    write(&state.join("origin"), origin.dev.to_str().unwrap());
    let mnt = dir.join("origin-mnt");
    let m = mount(&origin.dev, &mnt, &[]);
    Some(Lvm {
        state,
        bin,
        origin,
        _mnt: m,
        mnt,
    })
}

impl Lvm {
    fn run(&self, repo: &Repo, args: &[&str]) -> Out {
        let path = format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap());
        repo.run_with_password_and_env(
            args,
            &[
                ("PATH", std::ffi::OsStr::new(&path)),
                ("RIME_LVM_STATE", self.state.as_os_str()),
            ],
        )
    }

    fn log(&self) -> String {
        fs::read_to_string(self.state.join("log")).unwrap_or_default()
    }

    fn snapshot_exists(&self) -> bool {
        fs::read_dir(&self.state).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("snap-")
        })
    }
}

fn no_mount_under(dir: &str) {
    let m = fs::read_to_string("/proc/mounts").unwrap();
    assert!(!m.contains(dir), "a mount under {dir} was left: {m}");
}

#[test]
fn lvm_snapshot_file_backup_via_standins() {
    let repo = Repo::new();
    let dir = repo.dir("lvm");
    let Some(lvm) = lvm_standins(&dir) else {
        return;
    };
    let data = lvm.mnt.join("www");
    mkdir(&data);
    for i in 0..10 {
        write_random_file(&data.join(format!("page{i}")), 40 + i, 50_000);
    }
    sh("sync");
    let snapmnt = dir.join("snapmnt");
    let o = lvm.run(
        &repo,
        &[
            "backup",
            "--json",
            "--lvm-auto-snap",
            data.to_str().unwrap(),
            "--lvm-snapsize",
            "10%",
            "--lvm-dirmount",
            snapmnt.to_str().unwrap(),
            data.to_str().unwrap(),
        ],
    );
    o.ok();
    let log = lvm.log();
    assert!(
        log.contains("lvcreate --snapshot --name rime_backup_snap --addtag rime-pid-")
            && log.contains("--permission r --extents 10%ORIGIN vg0/data"),
        "{log}"
    );
    assert!(log.contains("lvremove -f vg0/rime_backup_snap"), "{log}");
    assert!(!lvm.snapshot_exists(), "snapshot left: {log}");
    no_mount_under(snapmnt.to_str().unwrap());
    let id = o.json()["id"].as_str().unwrap().to_string();
    assert_eq!(repo.snapshots()[0]["paths"][0], data.to_str().unwrap());
    let out = repo.fresh("restored");
    repo.restore(&id, &out, &[]);
    compare_trees_with(
        &data,
        &out,
        CompareOpts {
            ..Default::default()
        },
    );
}

#[test]
fn lvm_volume_backup_fill_up_leftovers_and_foreign_volumes_via_standins() {
    let repo = Repo::new();
    let dir = repo.dir("lvm");
    let Some(lvm) = lvm_standins(&dir) else {
        return;
    };
    let dev = lvm.origin.dev.to_str().unwrap().to_string();
    // Volume mode: the snapshot device is read; the origin is recorded.
    let o = lvm.run(&repo, &["backup", "--json", "--volume", &dev, "--snapshot"]);
    o.ok();
    let snaps = repo.snapshots();
    assert_eq!(snaps[0]["source"]["path"], dev.as_str());
    assert_eq!(
        snaps[0]["source"]["annotations"]["lvm.snapshot"],
        "vg0/rime_backup_snap"
    );
    assert!(!lvm.snapshot_exists());
    let img = repo.fresh("vol.img");
    repo.run(&[
        "restore",
        o.json()["id"].as_str().unwrap(),
        "--target",
        img.to_str().unwrap(),
        "--verify",
    ])
    .ok();
    assert_eq!(first_difference(&img, &lvm.state.join("origin.img")), None);

    // A snapshot that fills up during the backup fails the run and saves nothing.
    write(&lvm.state.join("percent"), "100.00");
    lvm.run(&repo, &["backup", "--volume", &dev, "--snapshot"])
        .failed()
        .error_names(&["filled up", "--lvm-snapsize"]);
    assert_eq!(repo.snapshots().len(), 1);
    assert!(!lvm.snapshot_exists(), "snapshot left after a failed run");
    fs::remove_file(lvm.state.join("percent")).unwrap();

    // A snapshot left by a killed run is removed before a new one is made.
    let leftover = lvm.state.join("snap-rime_backup_snap");
    let ldev = sh(&format!("cp {0}/origin.img {0}/snap-rime_backup_snap.img && losetup -f --show {0}/snap-rime_backup_snap.img", lvm.state.display()));
    write(&leftover, format!("rime-pid-999999|{}", ldev.trim()));
    let before = lvm.log().len();
    let o = lvm.run(&repo, &["backup", "--volume", &dev, "--snapshot"]);
    o.ok();
    let log = &lvm.log()[before..];
    let rm = log.find("lvremove").expect("leftover removed");
    let mk = log.find("lvcreate").expect("snapshot made");
    assert!(rm < mk, "{log}");
    assert!(
        o.stderr.contains("left by an interrupted run"),
        "{}",
        o.stderr
    );

    // A volume of that name that rime did not make is never removed.
    let ldev = sh(&format!(
        "losetup -f --show {}/origin.img",
        lvm.state.display()
    ));
    write(&leftover, format!("backup-by-admin|{}", ldev.trim()));
    lvm.run(&repo, &["backup", "--volume", &dev, "--snapshot"])
        .failed()
        .error_names(&["not made by rime", "--lvm-snapname"]);
    assert!(leftover.exists());
    sh(&format!("losetup -d {}", ldev.trim()));
    fs::remove_file(&leftover).unwrap();

    // lvcreate failing is reported with LVM's own words.
    write(&lvm.state.join("fail-create"), "");
    lvm.run(&repo, &["backup", "--volume", &dev, "--snapshot"])
        .failed()
        .error_names(&["lvcreate", "Insufficient free space"]);
    assert_eq!(repo.snapshots().len(), 2);
}
