//! One suite of tests run against every storage implementation.

use std::sync::Arc;

use crate::error::ErrorKind;
use crate::storage::{FileKind, LocalStorage, MemoryStorage, Storage};

fn name(i: u32) -> String {
    format!("{:064x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15 + 1)
}

pub fn run_all(s: &dyn Storage) {
    s.create().unwrap();
    // empty listing
    assert!(s.list(FileKind::Snapshot).unwrap().is_empty());
    // write, read, size, range
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    s.write(FileKind::Pack, &name(1), &data).unwrap();
    assert_eq!(s.read(FileKind::Pack, &name(1)).unwrap(), data);
    assert_eq!(s.size(FileKind::Pack, &name(1)).unwrap(), data.len() as u64);
    assert_eq!(
        s.read_range(FileKind::Pack, &name(1), 500, 1000).unwrap(),
        &data[500..1500]
    );
    // range past the end is an error, never a short read
    let e = s
        .read_range(FileKind::Pack, &name(1), 99_990, 20)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    // idempotent rewrite
    s.write(FileKind::Pack, &name(1), &data).unwrap();
    assert_eq!(s.read(FileKind::Pack, &name(1)).unwrap(), data);
    // missing object
    assert_eq!(
        s.read(FileKind::Index, &name(2)).unwrap_err().kind(),
        ErrorKind::MissingObject
    );
    assert_eq!(
        s.remove(FileKind::Index, &name(2)).unwrap_err().kind(),
        ErrorKind::MissingObject
    );
    // kinds are separate namespaces
    assert_eq!(
        s.read(FileKind::Index, &name(1)).unwrap_err().kind(),
        ErrorKind::MissingObject
    );
    // listing many objects
    for i in 10..310 {
        s.write(FileKind::Index, &name(i), &i.to_le_bytes())
            .unwrap();
    }
    let l = s.list(FileKind::Index).unwrap();
    assert_eq!(l.len(), 300);
    assert!(l.iter().all(|o| o.size == 4));
    assert_eq!(s.list(FileKind::Pack).unwrap().len(), 1);
    // remove
    s.remove(FileKind::Pack, &name(1)).unwrap();
    assert!(s.list(FileKind::Pack).unwrap().is_empty());
    // names that could escape are refused
    assert!(s.write(FileKind::Snapshot, "../../etc", b"x").is_err());
    assert!(s.read(FileKind::Snapshot, "x/../y").is_err());
    // empty object
    s.write(FileKind::Lock, &name(5), b"").unwrap();
    assert_eq!(s.read(FileKind::Lock, &name(5)).unwrap(), b"");
    // streamed objects: invisible until committed, complete after, gone if dropped
    let mut p = s.begin_write(FileKind::Pack).unwrap();
    p.append(b"first part, ").unwrap();
    p.append(&data).unwrap();
    assert!(
        s.list(FileKind::Pack).unwrap().is_empty(),
        "a pending object is not listed"
    );
    p.commit(s, &name(7)).unwrap();
    let mut want = b"first part, ".to_vec();
    want.extend_from_slice(&data);
    assert_eq!(s.read(FileKind::Pack, &name(7)).unwrap(), want);
    let mut dropped = s.begin_write(FileKind::Pack).unwrap();
    dropped.append(b"never committed").unwrap();
    drop(dropped);
    assert_eq!(s.list(FileKind::Pack).unwrap().len(), 1);
    // a commit under an invalid name is refused
    let bad = s.begin_write(FileKind::Pack).unwrap();
    assert!(bad.commit(s, "../escape").is_err());
    config_is_create_only(s);
}

/// The config is written create-only: a second `rime init` racing on the same place must fail
/// instead of replacing the first one's config (which would make its data unreadable), while
/// writing the same bytes again (a retry whose first attempt landed) succeeds.
pub fn config_is_create_only(s: &dyn Storage) {
    s.write(FileKind::Config, "config", b"first config")
        .unwrap();
    s.write(FileKind::Config, "config", b"first config")
        .unwrap();
    let e = s
        .write(FileKind::Config, "config", b"second config")
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RepositoryExists, "{e}");
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(s.read(FileKind::Config, "config").unwrap(), b"first config");
}

pub fn run_concurrent(s: Arc<dyn Storage>) {
    s.create().unwrap();
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..25u32 {
                    let n = name(1000 + t * 100 + i);
                    let body = vec![t as u8; 10_000 + i as usize];
                    s.write(FileKind::Pack, &n, &body).unwrap();
                    assert_eq!(s.read(FileKind::Pack, &n).unwrap(), body);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(s.list(FileKind::Pack).unwrap().len(), 200);
}

#[test]
fn memory_conforms() {
    run_all(&MemoryStorage::new());
    run_concurrent(Arc::new(MemoryStorage::new()));
}

#[test]
fn local_conforms() {
    let d = tempfile::tempdir().unwrap();
    run_all(&LocalStorage::new(d.path().join("repo")));
    let d2 = tempfile::tempdir().unwrap();
    run_concurrent(Arc::new(LocalStorage::new(d2.path().join("repo"))));
    let d3 = tempfile::tempdir().unwrap();
    run_all(&LocalStorage::new(d3.path().join("repo")));
    let leftovers3: Vec<_> = walk(d3.path())
        .into_iter()
        .filter(|p| p.contains(".tmp-"))
        .collect();
    assert!(
        leftovers3.is_empty(),
        "dropped or refused pending objects leave no files: {leftovers3:?}"
    );
    // no temporary files left behind
    let leftovers: Vec<_> = walk(d2.path())
        .into_iter()
        .filter(|p| p.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(p: &std::path::Path) -> Vec<String> {
    let mut out = vec![];
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path().display().to_string());
        }
    }
    out
}
