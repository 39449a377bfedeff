//! `copy` racing with other operations on either of its repositories, made deterministic by a
//! storage wrapper that runs the other operation at one chosen moment of the copy (the first
//! listing of one kind of object).

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use rime_engine::error::ErrorKind;
use rime_engine::ops::backup::{backup, BackupOptions};
use rime_engine::ops::copy::{copy, CopyOptions};
use rime_engine::ops::prune::{prune, PruneOptions};
use rime_engine::ops::NoProgress;
use rime_engine::repo::index::MasterIndex;
use rime_engine::repo::Repository;
use rime_engine::storage::intercept::{Intercepted, Op};
use rime_engine::storage::{FileKind, LocalStorage, Storage};

mod common;
use common::{content, repo};

/// A storage at `dir` that runs `hook` once, right before the first listing of `kind`.
fn hooked(dir: &Path, kind: FileKind, hook: impl FnOnce() + Send + 'static) -> Arc<dyn Storage> {
    let hook = Mutex::new(Some(hook));
    Intercepted::arc(local(dir), move |op| {
        if *op == Op::List(kind) {
            let h = hook.lock().take();
            if let Some(h) = h {
                h();
            }
        }
        Ok(())
    })
}

fn open(dir: &Path) -> Repository {
    Repository::open(Arc::new(LocalStorage::new(dir)), Some(b"pw")).unwrap()
}

fn local(dir: &Path) -> Arc<dyn Storage> {
    Arc::new(LocalStorage::new(dir))
}

fn with_password() -> CopyOptions {
    CopyOptions {
        password: Some(b"pw".to_vec()),
        ..Default::default()
    }
}

fn backup_of(repo: &Repository, src: &Path) {
    let mut opts = BackupOptions::new(vec![src.to_path_buf()]);
    opts.name = "job".into();
    backup(repo, &opts, &NoProgress).unwrap();
}

/// Every pack the index of `dir` names is stored there (what its snapshots need is there).
fn assert_indexed_packs_stored(dir: &Path) {
    let r = open(dir);
    let stored: HashSet<String> = r
        .storage()
        .list(FileKind::Pack)
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    let index = MasterIndex::load(&r).unwrap();
    let missing: Vec<_> = index
        .packs()
        .iter()
        .map(|p| p.to_hex())
        .filter(|p| !stored.contains(p))
        .collect();
    assert!(
        missing.is_empty(),
        "packs named by the index but missing at {}: {missing:?}",
        dir.display()
    );
}

fn snapshot_count(dir: &Path) -> usize {
    local(dir).list(FileKind::Snapshot).unwrap().len()
}

/// A backup on the source finishes while copy runs (after copy would have listed the source's
/// packs in the old order): the destination must not get its snapshot without its packs.
#[test]
fn a_backup_finishing_on_the_source_during_a_copy_is_copied_whole_or_not_at_all() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("f"), content(1, 300_000)).unwrap();
    let src_dir = tmp.path().join("src");
    let dst_dir = tmp.path().join("dst");
    let src = repo(&src_dir);
    backup_of(&src, &data);
    copy(local(&src_dir), local(&dst_dir), &with_password()).unwrap();

    fs::write(data.join("g"), content(2, 300_000)).unwrap();
    let (s, d) = (src.clone(), data.clone());
    let from = hooked(
        &src_dir,
        FileKind::Index,
        Box::new(move || backup_of(&s, &d)),
    );
    copy(from, local(&dst_dir), &with_password()).unwrap();
    assert_eq!(snapshot_count(&src_dir), 2, "the racing backup ran");
    assert_indexed_packs_stored(&dst_dir);

    // The next copy brings the rest; then both sides agree.
    copy(local(&src_dir), local(&dst_dir), &with_password()).unwrap();
    assert_eq!(snapshot_count(&dst_dir), 2);
    assert_indexed_packs_stored(&dst_dir);
}

/// The destination holds packs of an interrupted copy, unindexed there and marked by its
/// prune; a prune whose phase 2 would delete them runs while a copy that finds them "already
/// there" is between its packs and its index files. The copy must end with every pack its
/// index files and snapshots need stored at the destination.
#[test]
fn a_prune_on_the_destination_cannot_delete_packs_a_running_copy_reuses() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("f"), content(3, 300_000)).unwrap();
    let src_dir = tmp.path().join("src");
    let dst_dir = tmp.path().join("dst");
    let src = repo(&src_dir);
    backup_of(&src, &data);
    copy(local(&src_dir), local(&dst_dir), &with_password()).unwrap();

    fs::write(data.join("g"), content(4, 300_000)).unwrap();
    backup_of(&src, &data);
    // An earlier copy died after its packs: they are at the destination, indexed nowhere.
    let (from, to) = (local(&src_dir), local(&dst_dir));
    let there: HashSet<String> = to
        .list(FileKind::Pack)
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    let mut orphans = 0;
    for o in from.list(FileKind::Pack).unwrap() {
        if !there.contains(&o.name) {
            to.write(
                FileKind::Pack,
                &o.name,
                &from.read(FileKind::Pack, &o.name).unwrap(),
            )
            .unwrap();
            orphans += 1;
        }
    }
    assert!(orphans > 0);
    let now = PruneOptions {
        grace_secs: 0,
        ..Default::default()
    };
    let marked = prune(&open(&dst_dir), &now).unwrap();
    assert_eq!(marked.packs_marked, orphans, "{marked:?}");

    // Right after copy's pack phase (its first listing of the destination's index files), a
    // prune on the destination would delete the marked packs copy found there.
    let racing: Arc<Mutex<Option<ErrorKind>>> = Arc::new(Mutex::new(None));
    let (r, d, opts) = (racing.clone(), dst_dir.clone(), now.clone());
    let to = hooked(
        &dst_dir,
        FileKind::Index,
        Box::new(move || {
            *r.lock() = Some(match prune(&open(&d), &opts) {
                Ok(rep) => {
                    eprintln!("racing prune: {rep:?}");
                    ErrorKind::InvalidInput
                }
                Err(e) => e.kind(),
            })
        }),
    );
    copy(local(&src_dir), to, &with_password()).unwrap();
    assert!(racing.lock().is_some(), "the racing prune ran");
    assert_eq!(snapshot_count(&dst_dir), 2);
    assert_indexed_packs_stored(&dst_dir);
    assert_eq!(
        *racing.lock(),
        Some(ErrorKind::Locked),
        "a prune on the destination is refused while a copy runs"
    );

    // Once the copy ended, prune keeps what the copied snapshots need.
    let after = prune(&open(&dst_dir), &now).unwrap();
    assert_eq!(after.packs_deleted, 0, "{after:?}");
    assert_indexed_packs_stored(&dst_dir);
}
