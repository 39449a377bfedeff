//! `repair --forget-broken` removes only snapshots whose data is really gone (missing or
//! corrupt). A read that fails for another reason (an I/O error, a timeout, a refusal) says
//! nothing about the data: repair must stop, naming the error, before anything is removed.

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rime_engine::error::Result;
use rime_engine::ops::backup::{backup, BackupOptions};
use rime_engine::ops::repair::{repair, RepairOptions};
use rime_engine::ops::NoProgress;
use rime_engine::repo::Repository;
use rime_engine::storage::intercept::{Intercepted, Op};
use rime_engine::storage::{FileKind, LocalStorage, Storage};
use rime_engine::{Error, ErrorKind};

mod common;
use common::{content, repo};

fn eio(what: &str) -> Error {
    Error::new(
        ErrorKind::Io,
        format!("{what}: Input/output error (os error 5)"),
    )
}

/// Two intact snapshots; returns the repository directory and the snapshot file names.
fn two_snapshots(tmp: &std::path::Path) -> (std::path::PathBuf, Vec<String>) {
    let src = tmp.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), content(5, 200_000)).unwrap();
    let dir = tmp.join("repo");
    let r = repo(&dir);
    backup(&r, &BackupOptions::new(vec![src.clone()]), &NoProgress).unwrap();
    fs::write(src.join("g"), content(6, 200_000)).unwrap();
    backup(&r, &BackupOptions::new(vec![src]), &NoProgress).unwrap();
    let names = LocalStorage::new(&dir)
        .list(FileKind::Snapshot)
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect::<Vec<_>>();
    assert_eq!(names.len(), 2);
    (dir, names)
}

/// The repository at `dir`, with reads of the snapshot file `snapshot` failing with EIO, and
/// (once armed by the first listing of snapshots, when `arm_packs`) every read of a pack.
fn flaky(dir: &std::path::Path, snapshot: Option<String>, arm_packs: bool) -> Repository {
    let packs_fail = AtomicBool::new(false);
    let s = Intercepted::arc(Arc::new(LocalStorage::new(dir)), move |op| {
        if *op == Op::List(FileKind::Snapshot) && arm_packs {
            packs_fail.store(true, Ordering::SeqCst);
        }
        match *op {
            Op::Read(FileKind::Snapshot, name) if snapshot.as_deref() == Some(name) => {
                Err(eio(name))
            }
            Op::Read(FileKind::Pack, name)
            | Op::ReadRange {
                kind: FileKind::Pack,
                name,
                ..
            } if packs_fail.load(Ordering::SeqCst) => Err(eio(name)),
            _ => Ok(()),
        }
    });
    Repository::open(s, Some(b"pw")).unwrap()
}

const FORGET_BROKEN: RepairOptions = RepairOptions {
    dry_run: false,
    salvage: false,
    keep_lock: true,
};

fn assert_stopped(dir: &std::path::Path, r: Result<rime_engine::ops::repair::Repaired>) {
    let e = match r {
        Ok(done) => panic!(
            "repair counted an unreadable snapshot as lost: {:?}",
            done.report.broken
        ),
        Err(e) => e,
    };
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("Input/output error") && msg.contains("try again"),
        "{msg}"
    );
    // Nothing was removed, and once the storage answers nothing is broken.
    let plain = Repository::open(Arc::new(LocalStorage::new(dir)), Some(b"pw")).unwrap();
    let again = repair(&plain, &RepairOptions::default()).unwrap();
    assert!(again.report.broken.is_empty(), "{:?}", again.report.broken);
    assert_eq!(
        LocalStorage::new(dir)
            .list(FileKind::Snapshot)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_snapshot_file_that_fails_to_read_is_not_counted_as_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, names) = two_snapshots(tmp.path());
    let repo = flaky(&dir, Some(names[0].clone()), false);
    assert_stopped(&dir, repair(&repo, &FORGET_BROKEN));
}

#[test]
fn a_tree_that_fails_to_read_is_not_counted_as_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = two_snapshots(tmp.path());
    // Pack headers are read fine (the index rebuild succeeds); the snapshots' trees are not.
    let repo = flaky(&dir, None, true);
    assert_stopped(&dir, repair(&repo, &FORGET_BROKEN));
}
