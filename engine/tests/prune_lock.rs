//! Prune's second phase must wait for every operation that was running when packs were
//! marked, however often those operations refreshed their locks. A refresh writes the lock
//! under a new file id; prune's records name the holder, which a refresh keeps.

use std::fs;

use rime_engine::ops::backup::{backup, BackupOptions};
use rime_engine::ops::prune::{prune, PruneOptions};
use rime_engine::ops::NoProgress;
use rime_engine::repo::lock::LockGuard;
use rime_engine::storage::FileKind;

mod common;
use common::{content, repo};

#[test]
fn a_refreshed_lock_still_holds_back_the_deletion_of_marked_packs() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), content(11, 3 << 20)).unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let s = backup(&repo, &BackupOptions::new(vec![src.clone()]), &NoProgress).unwrap();
    // Forgotten: its packs are unused.
    repo.storage()
        .remove(FileKind::Snapshot, &s.id.to_hex())
        .unwrap();
    let now = PruneOptions {
        grace_secs: 0,
        ..Default::default()
    };
    // A backup that started before the mark (it may reuse blobs of the marked packs).
    let running = LockGuard::shared(&repo, "backup").unwrap();
    let first = prune(&repo, &now).unwrap();
    assert!(first.packs_marked > 0, "{first:?}");
    let packs = || repo.storage().list(FileKind::Pack).unwrap().len();
    let stored = packs();

    // Five minutes later its refresh thread rewrites the lock under a new id.
    let before = running.id();
    running.refresh();
    assert_ne!(running.id(), before, "a refresh writes a new lock file");
    let second = prune(&repo, &now).unwrap();
    assert_eq!(
        second.packs_deleted, 0,
        "deleted under a running backup: {second:?}"
    );
    assert_eq!(packs(), stored);

    // Once it ended, the marked packs go.
    drop(running);
    let third = prune(&repo, &now).unwrap();
    assert_eq!(third.packs_deleted, first.packs_marked, "{third:?}");
    assert!(packs() < stored);
}
