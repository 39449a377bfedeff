//! Commands that list snapshots while backups and forgets run beside them, made deterministic by
//! a storage wrapper that runs the other operation at one chosen moment of the listing command.

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use rime_engine::error::Result;
use rime_engine::ops::backup::{backup, BackupOptions};
use rime_engine::ops::check::{check, CheckOptions};
use rime_engine::ops::NoProgress;
use rime_engine::repo::Repository;
use rime_engine::storage::{FileKind, LocalStorage, ObjectInfo, Storage};

mod common;
use common::{content, repo};

/// When the hook runs (once, at the first of these moments).
#[derive(Clone, Copy, PartialEq)]
enum Moment {
    /// Right after a listing of this kind returned.
    AfterList(FileKind),
    /// Right before an object of this kind is read (the hook gets its name).
    BeforeRead(FileKind),
}

type Hook = Box<dyn FnOnce(&str) + Send>;

struct Hooked {
    inner: Arc<dyn Storage>,
    moments: Vec<Moment>,
    hook: Mutex<Option<Hook>>,
}

impl Hooked {
    fn storage(dir: &Path, moments: Vec<Moment>, hook: Hook) -> Arc<dyn Storage> {
        Arc::new(Hooked {
            inner: Arc::new(LocalStorage::new(dir)),
            moments,
            hook: Mutex::new(Some(hook)),
        })
    }

    fn at(&self, m: Moment, name: &str) {
        if self.moments.contains(&m) {
            let hook = self.hook.lock().take();
            if let Some(h) = hook {
                h(name);
            }
        }
    }
}

impl Storage for Hooked {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self) -> Result<()> {
        self.inner.create()
    }
    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        let out = self.inner.list(kind);
        self.at(Moment::AfterList(kind), "");
        out
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.at(Moment::BeforeRead(kind), name);
        self.inner.read(kind, name)
    }
    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.inner.read_range(kind, name, offset, len)
    }
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.inner.write(kind, name, data)
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.inner.remove(kind, name)
    }
    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.inner.size(kind, name)
    }
}

fn open(storage: Arc<dyn Storage>) -> Repository {
    Repository::open(storage, Some(b"pw")).unwrap()
}

fn backup_of(repo: &Repository, src: &Path) {
    let mut opts = BackupOptions::new(vec![src.to_path_buf()]);
    opts.name = "job".into();
    backup(repo, &opts, &NoProgress).unwrap();
}

/// A backup that finishes while check runs, between its listing of the snapshots and its
/// loading of the index (whichever check does first): check lists the snapshots first, so the
/// new snapshot is either not seen or seen with its index entries, never "missing from the index".
#[test]
fn check_is_not_fooled_by_a_backup_finishing_mid_check() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a"), content(1, 200_000)).unwrap();
    backup_of(&repo(&dir), &src);
    std::fs::write(src.join("b"), content(2, 200_000)).unwrap();

    let plain = dir.clone();
    let src2 = src.clone();
    let storage = Hooked::storage(
        &dir,
        // After the snapshot listing if check lists snapshots first; otherwise once the index
        // files are listed (both listings), at the first index file read.
        vec![
            Moment::AfterList(FileKind::Snapshot),
            Moment::BeforeRead(FileKind::Index),
        ],
        Box::new(move |_| backup_of(&open(Arc::new(LocalStorage::new(&plain))), &src2)),
    );
    let r = open(storage.clone());
    let rep = check(&r, &CheckOptions::default()).unwrap();
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert_eq!(
        open(Arc::new(LocalStorage::new(&dir)))
            .list_snapshots()
            .unwrap()
            .len(),
        2,
        "the backup ran during the check"
    );
}

/// A snapshot removed (by a forget running beside) after it was listed and before it was read
/// is left out of the listing, not reported as unreadable; check reports nothing about it.
#[test]
fn a_snapshot_forgotten_mid_listing_is_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a"), content(3, 1000)).unwrap();
    let r = repo(&dir);
    backup_of(&r, &src);
    std::fs::write(src.join("a"), content(4, 1000)).unwrap();
    backup_of(&r, &src);

    let forget = |dir: &Path| -> Hook {
        let plain = dir.to_path_buf();
        Box::new(move |name: &str| {
            LocalStorage::new(&plain)
                .remove(FileKind::Snapshot, name)
                .unwrap()
        })
    };
    let listing = open(Hooked::storage(
        &dir,
        vec![Moment::BeforeRead(FileKind::Snapshot)],
        forget(&dir),
    ));
    let snaps = listing.list_snapshots().unwrap();
    assert_eq!(snaps.len(), 1, "the forgotten snapshot is left out");
    assert!(snaps[0].1.is_ok());

    let checking = open(Hooked::storage(
        &dir,
        vec![Moment::BeforeRead(FileKind::Snapshot)],
        forget(&dir),
    ));
    let rep = check(&checking, &CheckOptions::default()).unwrap();
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
}
