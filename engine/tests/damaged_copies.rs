//! A repository kept on two storages, with one pack damaged differently on each: its first
//! blob on both copies, its second only on the copy the restore reads last for the first.
//! The restore must try every copy for each failing blob (a blob damaged everywhere must not
//! stop the next one from being read from the good copy), restore every other file exactly,
//! and fail naming the one file it could not restore.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rime_engine::crypto::KdfParams;
use rime_engine::format::BlobType;
use rime_engine::id::PackId;
use rime_engine::ops::backup::{backup, BackupOptions};
use rime_engine::ops::restore::{restore, RestoreOptions};
use rime_engine::ops::NoProgress;
use rime_engine::repo::headers::read_pack_header;
use rime_engine::repo::{InitOptions, Repository};
use rime_engine::storage::{Fanout, FileKind, LocalStorage, Storage};

mod common;
use common::{content, restore_options};

fn find(root: &Path, name: &str) -> PathBuf {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == name) {
                return p;
            }
        }
    }
    panic!("{name} not found under {}", root.display());
}

fn flip(file: &Path, at: u64) {
    let mut b = fs::read(file).unwrap();
    b[at as usize] ^= 0xff;
    fs::write(file, b).unwrap();
}

/// Two local storages `a` and `b` of one repository, one backup of `src` on both.
fn backed_up_on_two(a: &Path, b: &Path, src: &Path) -> (Repository, rime_engine::id::SnapshotId) {
    let fanout = Arc::new(Fanout::new(vec![
        Arc::new(LocalStorage::new(a)) as Arc<dyn Storage>,
        Arc::new(LocalStorage::new(b)),
    ]));
    let opts = InitOptions {
        kdf: KdfParams::TESTING,
        ..InitOptions::default()
    };
    let repo = Repository::init(fanout.clone(), b"pw", &opts).unwrap();
    let snap = backup(
        &repo,
        &BackupOptions::new(vec![src.to_path_buf()]),
        &NoProgress,
    )
    .unwrap()
    .id;
    // Writes reach each storage in the background: wait for both to hold everything.
    assert!(fanout.finish().iter().all(|m| m.error.is_none()));
    (repo, snap)
}

#[test]
fn each_failing_blob_gets_every_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    // Small files, one chunk each: every data pack holds several of them, back to back.
    for i in 0..24u64 {
        fs::write(src.join(format!("f{i:02}")), content(100 + i, 40_000)).unwrap();
    }
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (repo, snap) = backed_up_on_two(&a, &b, &src);

    // Two data blobs next to each other in one pack.
    let (pack, entries, i) = repo
        .storage()
        .list(FileKind::Pack)
        .unwrap()
        .into_iter()
        .filter_map(|o| PackId::from_hex(&o.name).ok())
        .map(|id| (id, read_pack_header(&repo, &id).unwrap()))
        .find_map(|(id, e)| {
            let i = e
                .windows(2)
                .position(|w| w.iter().all(|b| b.ty == BlobType::Data))?;
            Some((id, e, i))
        })
        .expect("a data pack with two blobs");
    let name = pack.to_hex();
    let (in_a, in_b) = (find(&a, &name), find(&b, &name));
    let mid = |i: usize| u64::from(entries[i].offset) + u64::from(entries[i].stored_len) / 2;
    flip(&in_a, mid(i));
    flip(&in_b, mid(i));
    flip(&in_b, mid(i + 1));

    let target = tmp.path().join("t");
    let ropts = restore_options(&target);
    let e = restore(&repo, &snap, &ropts, &NoProgress).unwrap_err();
    assert!(e.to_string().contains("damaged on all 2 storages"), "{e}");
    assert!(e.to_string().contains(&format!("pack {pack}")), "{e}");
    // Exactly one file is not restored; every other one is exact.
    let mut lost = vec![];
    for i in 0..24u64 {
        let n = format!("f{i:02}");
        match fs::read(target.join(&n)) {
            Ok(got) => assert_eq!(got, content(100 + i, 40_000), "{n} restored wrong"),
            Err(_) => lost.push(n),
        }
    }
    assert_eq!(
        lost.len(),
        1,
        "only the blob damaged on both copies is lost: {lost:?}\n{e}"
    );
    assert!(
        e.to_string().contains(&lost[0]),
        "the error names {}: {e}",
        lost[0]
    );
    assert!(
        repo.recovered()
            .iter()
            .any(|m| m.contains("read again from copy")),
        "the second blob came from the other copy: {:?}",
        repo.recovered()
    );
}

/// The repository's own metadata, damaged on the copy read first: the snapshot file, every
/// index file and every tree blob. Each is read again from the other copy, the restore is
/// exact, and what was recovered is noted.
#[test]
fn damaged_metadata_on_the_first_copy_is_read_from_the_other() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..6u64 {
        fs::write(src.join(format!("d/f{i}")), content(200 + i, 30_000)).unwrap();
    }
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (repo, snap) = backed_up_on_two(&a, &b, &src);
    // Damage on `a`, the copy read first: the snapshot, the index files, every tree blob.
    flip(&find(&a, &snap.to_hex()), 40);
    for e in fs::read_dir(a.join("index")).unwrap() {
        flip(&e.unwrap().path(), 40);
    }
    let mut trees = 0;
    for o in repo.storage().list(FileKind::Pack).unwrap() {
        let id = PackId::from_hex(&o.name).unwrap();
        for e in read_pack_header(&repo, &id).unwrap() {
            if e.ty == BlobType::Tree {
                flip(&find(&a, &o.name), u64::from(e.offset) + 20);
                trees += 1;
            }
        }
    }
    assert!(trees >= 2, "{trees} trees");

    // A fresh open, as the next run would.
    let copies: Vec<Arc<dyn Storage>> = vec![
        Arc::new(LocalStorage::new(&a)),
        Arc::new(LocalStorage::new(&b)),
    ];
    let repo = Repository::open(Arc::new(Fanout::new(copies)), Some(b"pw")).unwrap();
    let target = tmp.path().join("t");
    let ropts = RestoreOptions {
        verify: true,
        ..restore_options(&target)
    };
    restore(&repo, &snap, &ropts, &NoProgress).unwrap();
    for i in 0..6u64 {
        assert_eq!(
            fs::read(target.join(format!("d/f{i}"))).unwrap(),
            content(200 + i, 30_000)
        );
    }
    let recovered = repo.recovered();
    for what in ["snapshot", "index", "blob"] {
        assert!(
            recovered.iter().any(|m| m.contains(what)),
            "no {what} recovered: {recovered:?}"
        );
    }
}
