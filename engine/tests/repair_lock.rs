//! `repair --forget-broken` must remove exactly what its own scan found broken: the exclusive
//! lock taken for the scan stays held until the removal, so no backup can run in between (a
//! backup that re-uploads the lost chunks heals a snapshot, and removing it then would lose
//! restorable data).

use std::fs;

use rime_engine::ops::backup::{backup, BackupOptions};
use rime_engine::ops::repair::{forget_broken, repair, RepairOptions};
use rime_engine::ops::NoProgress;
use rime_engine::repo::lock::LockGuard;
use rime_engine::ErrorKind;

mod common;
use common::{content, repo};

#[test]
fn forget_broken_keeps_the_scan_lock_until_the_removal() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), content(7, 3 << 20)).unwrap();
    let dir = tmp.path().join("repo");
    let repo = repo(&dir);
    let r = backup(&repo, &BackupOptions::new(vec![src.clone()]), &NoProgress).unwrap();

    // Lose every data pack: the snapshot is broken.
    let mut lost = 0;
    for e in walk(&dir.join("data")) {
        if fs::metadata(&e).unwrap().len() > 1 << 20 {
            fs::remove_file(e).unwrap();
            lost += 1;
        }
    }
    assert!(lost > 0, "no data pack found to remove");

    // Without keep_lock, nothing is held after the scan.
    let plain = repair(&repo, &RepairOptions::default()).unwrap();
    assert!(plain.lock.is_none());
    assert_eq!(plain.report.broken.len(), 1);
    drop(LockGuard::shared(&repo, "backup").unwrap());

    let keeping = RepairOptions {
        keep_lock: true,
        ..Default::default()
    };
    let held = repair(&repo, &keeping).unwrap();
    assert_eq!(held.report.broken.len(), 1);
    assert_eq!(held.report.broken[0].id, r.id);
    let lock = held.lock.expect("repair keeps its lock when asked");
    assert!(lock.is_exclusive());
    // A backup (shared lock) cannot start between the scan and the removal.
    let e = LockGuard::shared(&repo, "backup")
        .err()
        .expect("backup got in");
    assert_eq!(e.kind(), ErrorKind::Locked, "{e}");
    // A shared lock cannot stand in for the scan's lock.
    drop(lock);
    let shared = LockGuard::shared(&repo, "test").unwrap();
    let e = forget_broken(&repo, shared, &held.report.broken).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(repo.list_snapshots().unwrap().len(), 1);

    let again = repair(&repo, &keeping).unwrap();
    let n = forget_broken(&repo, again.lock.unwrap(), &again.report.broken).unwrap();
    assert_eq!(n, 1);
    assert!(repo.list_snapshots().unwrap().is_empty());
    // The lock is released with the removal.
    drop(LockGuard::exclusive(&repo, "prune").unwrap());
}

fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
