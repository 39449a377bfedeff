//! Restore from a corrupted repository: either an error, or exactly the original files.
//!
//! Built once: two small repositories in memory (one unencrypted, one encrypted; small chunker
//! and pack sizes, so there are many blobs and several packs), each holding two snapshots of a
//! directory of a few files (text, random, duplicate, zeros, empty, sub-directories, a
//! symlink), the second after edits. The expected tree of every snapshot is kept.
//!
//! Input: `repo u8` (bit 0: encrypted) then operations until the input runs out, each
//! `op u8 | selector u8 | arguments`, applied to a copy of the repository's packs, index files
//! and snapshots (trees live in packs; op 5 aims inside one blob):
//!
//! | op % 8 | effect on the selected object                  | arguments                |
//! |--------|------------------------------------------------|--------------------------|
//! | 0      | xor one byte                                   | position u32, mask u8    |
//! | 1      | truncate (to position % length)                | position u32             |
//! | 2      | swap contents with another object              | other u8                 |
//! | 3      | delete                                         |                          |
//! | 4      | replace with fuzzer bytes                      | length u8, bytes         |
//! | 5      | xor one byte inside blob `selector` of a pack  | offset u16, mask u8      |
//! | 6      | overwrite a little-endian u32                  | position u32, value u32  |
//! | 7      | append fuzzer bytes                            | length u8, bytes         |
//!
//! Then: open the copy, resolve `latest`, restore it into a fresh directory. The restore must
//! return an error, or a tree equal (names, kinds, file bytes, symlink targets) to the one that
//! was backed up as the snapshot it resolved to. A panic anywhere is a failure too. With
//! `RIME_FUZZ_VERBOSE=1` each input's outcome ("restored" or "refused") goes to stderr.
#![no_main]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rime_engine::crypto::KdfParams;
use rime_engine::format::config::{ChunkerParams, Encryption};
use rime_engine::id::SnapshotId;
use rime_engine::ops::backup::{backup, BackupOptions};
use rime_engine::ops::restore::{restore, RestoreOptions};
use rime_engine::ops::select::{resolve, Filter};
use rime_engine::ops::NoProgress;
use rime_engine::repo::index::MasterIndex;
use rime_engine::repo::{InitOptions, Repository};
use rime_engine::storage::{FileKind, MemoryStorage, Storage};
use rime_fuzz::Input;

const PASSWORD: &[u8] = b"fuzz";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
    Other,
}

type TreeMap = BTreeMap<PathBuf, Item>;

struct Fixture {
    encrypted: bool,
    /// Objects that are never corrupted (config, key files).
    fixed: Vec<(FileKind, String, Vec<u8>)>,
    /// Packs, index files, snapshots: the corruption targets, in a stable order.
    objects: Vec<(FileKind, String, Vec<u8>)>,
    /// Every blob: (position of its pack in `objects`, offset, stored length).
    blobs: Vec<(usize, u32, u32)>,
    expected: Vec<(SnapshotId, TreeMap)>,
}

fn read_tree(root: &Path) -> TreeMap {
    fn walk(root: &Path, dir: &Path, out: &mut TreeMap) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read_dir").map(|e| e.expect("entry").path()).collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root).expect("below root").to_path_buf();
            let m = std::fs::symlink_metadata(&p).expect("metadata");
            let item = if m.is_dir() {
                walk(root, &p, out);
                Item::Dir
            } else if m.is_symlink() {
                Item::Symlink(std::fs::read_link(&p).expect("read_link"))
            } else if m.is_file() {
                Item::File(std::fs::read(&p).expect("read"))
            } else {
                Item::Other
            };
            out.insert(rel, item);
        }
    }
    let mut out = TreeMap::new();
    walk(root, root, &mut out);
    out
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 24) as u8).collect()
    }
}

fn text(n: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 12] =
        ["rime", "backup", "chunk", "pack", "index", "tree", "the", "a", "of", "restore", "\n", "data"];
    let mut r = Rng(seed);
    let mut out = Vec::new();
    while out.len() < n {
        out.extend_from_slice(WORDS[(r.next() % 12) as usize].as_bytes());
        out.push(b' ');
    }
    out.truncate(n);
    out
}

fn write_v1(src: &Path) {
    let random = Rng(11).bytes(40_000);
    std::fs::create_dir_all(src.join("sub/deep")).unwrap();
    std::fs::write(src.join("hello.txt"), b"hello, rime\n").unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    std::fs::write(src.join("text.txt"), text(30_000, 1)).unwrap();
    std::fs::write(src.join("random.bin"), &random).unwrap();
    std::fs::write(src.join("copy.bin"), &random).unwrap();
    std::fs::write(src.join("sub/notes.md"), b"# notes\n\nline\n".repeat(300)).unwrap();
    std::fs::write(src.join("sub/deep/zeros.bin"), vec![0u8; 20_000]).unwrap();
    let mut mixed = text(5_000, 2);
    mixed.extend_from_slice(&Rng(12).bytes(5_000));
    mixed.extend_from_slice(&[0u8; 5_000]);
    std::fs::write(src.join("sub/deep/mixed.bin"), mixed).unwrap();
    std::os::unix::fs::symlink("hello.txt", src.join("link")).unwrap();
}

fn write_v2(src: &Path) {
    let mut t = std::fs::read(src.join("text.txt")).unwrap();
    t.extend_from_slice(&text(3_000, 3));
    std::fs::write(src.join("text.txt"), t).unwrap();
    let mut r = std::fs::read(src.join("random.bin")).unwrap();
    r[20_000..20_100].fill(0xAB);
    std::fs::write(src.join("random.bin"), r).unwrap();
    std::fs::write(src.join("sub/new.txt"), text(2_000, 4)).unwrap();
    std::fs::remove_file(src.join("hello.txt")).unwrap();
}

fn build(encrypted: bool) -> Fixture {
    let storage = Arc::new(MemoryStorage::new());
    let opts = InitOptions {
        encryption: if encrypted { Encryption::Aes256Gcm } else { Encryption::None },
        kdf: KdfParams::TESTING,
        chunker: ChunkerParams { min_size: 256, avg_size: 1024, max_size: 4096, normalization: 1 },
        data_pack_size: 1 << 16,
        tree_pack_size: 1 << 16,
    };
    let repo = Repository::init(storage.clone(), PASSWORD, &opts).expect("init");
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    let mut bopts = BackupOptions::new(vec![src.clone()]);
    bopts.name = "fuzz".into();
    // Read every file: an edit within the same mtime tick must not be mistaken for no change.
    bopts.force = true;
    let mut expected = Vec::new();
    write_v1(&src);
    expected.push((backup(&repo, &bopts, &NoProgress).expect("backup 1").id, read_tree(&src)));
    write_v2(&src);
    expected.push((backup(&repo, &bopts, &NoProgress).expect("backup 2").id, read_tree(&src)));

    let mut fixed = Vec::new();
    let mut objects = Vec::new();
    for kind in [FileKind::Config, FileKind::Key, FileKind::Pack, FileKind::Index, FileKind::Snapshot] {
        let mut names: Vec<String> = storage.list(kind).unwrap().into_iter().map(|o| o.name).collect();
        names.sort();
        for name in names {
            let bytes = storage.read(kind, &name).unwrap();
            match kind {
                FileKind::Config | FileKind::Key => fixed.push((kind, name, bytes)),
                _ => objects.push((kind, name, bytes)),
            }
        }
    }
    let index = MasterIndex::load(&repo).expect("index");
    let mut blobs: Vec<(usize, u32, u32)> = index
        .iter()
        .map(|(pack, e)| {
            let pos = objects
                .iter()
                .position(|(k, n, _)| *k == FileKind::Pack && *n == pack.to_hex())
                .expect("indexed pack exists");
            (pos, e.offset, e.stored_len)
        })
        .collect();
    blobs.sort_unstable();
    // Sanity: the untouched copy restores correctly (the oracle itself works).
    let f = Fixture { encrypted, fixed, objects, blobs, expected };
    let objs: Vec<Option<Vec<u8>>> = f.objects.iter().map(|o| Some(o.2.clone())).collect();
    assert!(matches!(check(&f, &objs), Outcome::Restored), "the intact repository does not restore");
    f
}

fn fixtures() -> &'static [Fixture; 2] {
    static F: OnceLock<[Fixture; 2]> = OnceLock::new();
    F.get_or_init(|| [build(false), build(true)])
}

enum Outcome {
    Refused,
    Restored,
}

/// Open the modified copy, restore `latest`, and compare.
fn check(f: &Fixture, objs: &[Option<Vec<u8>>]) -> Outcome {
    let storage = Arc::new(MemoryStorage::new());
    for (kind, name, bytes) in &f.fixed {
        storage.write(*kind, name, bytes).unwrap();
    }
    for ((kind, name, _), bytes) in f.objects.iter().zip(objs) {
        if let Some(b) = bytes {
            storage.write(*kind, name, b).unwrap();
        }
    }
    let password = if f.encrypted { Some(PASSWORD) } else { None };
    let Ok(repo) = Repository::open(storage, password) else { return Outcome::Refused };
    let Ok((id, _)) = resolve(&repo, "latest", &Filter::default()) else { return Outcome::Refused };
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("restore");
    let opts = RestoreOptions { target: target.clone(), include: vec![], overwrite: false, ownership: Some(false), verify: false, sync: false, buffered: false };
    let result = restore(&repo, &id, &opts, &NoProgress);
    let want = f.expected.iter().find(|(i, _)| *i == id).map(|(_, w)| w);
    if let Err(e) = result {
        // A failed restore still writes what it can; whatever it leaves under a real name must be
        // right (an interrupted file is renamed NAME.rime-incomplete, a file with missing
        // chunks is not created).
        if let (Some(want), true) = (want, target.exists()) {
            for (p, g) in read_tree(&target) {
                if let (Item::File(_), Some(w)) = (&g, want.get(&p)) {
                    if g != *w {
                        panic!(
                            "failed restore ({e}) left {} with wrong content ({} vs {})",
                            p.display(),
                            describe(&g),
                            describe(w)
                        );
                    }
                }
            }
        }
        return Outcome::Refused;
    }
    let Some(want) = want else {
        panic!("restore succeeded for snapshot {id}, which was never written");
    };
    let got = read_tree(&target);
    if got != *want {
        let mut diffs = Vec::new();
        for (p, w) in want {
            match got.get(p) {
                None => diffs.push(format!("{}: missing", p.display())),
                Some(g) if g != w => {
                    diffs.push(format!("{}: differs ({} vs {})", p.display(), describe(g), describe(w)))
                }
                Some(_) => {}
            }
        }
        for p in got.keys().filter(|p| !want.contains_key(*p)) {
            diffs.push(format!("{}: unexpected", p.display()));
        }
        panic!("restore of snapshot {} returned Ok with wrong content: {}", id.short(), diffs.join("; "));
    }
    Outcome::Restored
}

fn describe(i: &Item) -> String {
    match i {
        Item::Dir => "dir".into(),
        Item::File(b) => {
            format!("file of {} bytes, byte sum {}", b.len(), b.iter().map(|&x| u64::from(x)).sum::<u64>())
        }
        Item::Symlink(t) => format!("symlink to {}", t.display()),
        Item::Other => "other".into(),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let Some(which) = input.u8() else { return };
    let f = &fixtures()[usize::from(which & 1)];
    let mut objs: Vec<Option<Vec<u8>>> = f.objects.iter().map(|o| Some(o.2.clone())).collect();
    let n = objs.len();
    while let (Some(op), Some(sel)) = (input.u8(), input.u8()) {
        let i = usize::from(sel) % n;
        match op % 8 {
            0 => {
                let (Some(pos), Some(mask)) = (input.u32(), input.u8()) else { break };
                if let Some(b) = objs[i].as_mut().filter(|b| !b.is_empty()) {
                    let len = b.len();
                    b[pos as usize % len] ^= mask.max(1);
                }
            }
            1 => {
                let Some(pos) = input.u32() else { break };
                if let Some(b) = objs[i].as_mut().filter(|b| !b.is_empty()) {
                    let len = b.len();
                    b.truncate(pos as usize % len);
                }
            }
            2 => {
                let Some(other) = input.u8() else { break };
                objs.swap(i, usize::from(other) % n);
            }
            3 => objs[i] = None,
            4 => {
                let Some(len) = input.u8() else { break };
                let Some(bytes) = input.bytes(usize::from(len)) else { break };
                objs[i] = Some(bytes.to_vec());
            }
            5 => {
                let (Some(off), Some(mask)) = (input.u16(), input.u8()) else { break };
                let (pack, offset, stored_len) = f.blobs[usize::from(sel) % f.blobs.len()];
                if let Some(b) = objs[pack].as_mut() {
                    let p = offset as usize + usize::from(off) % (stored_len.max(1) as usize);
                    if p < b.len() {
                        b[p] ^= mask.max(1);
                    }
                }
            }
            6 => {
                let (Some(pos), Some(value)) = (input.u32(), input.u32()) else { break };
                if let Some(b) = objs[i].as_mut().filter(|b| b.len() >= 4) {
                    let p = pos as usize % (b.len() - 3);
                    b[p..p + 4].copy_from_slice(&value.to_le_bytes());
                }
            }
            _ => {
                let Some(len) = input.u8() else { break };
                let Some(bytes) = input.bytes(usize::from(len)) else { break };
                if let Some(b) = objs[i].as_mut() {
                    b.extend_from_slice(bytes);
                }
            }
        }
    }
    let outcome = check(f, &objs);
    if std::env::var_os("RIME_FUZZ_VERBOSE").is_some() {
        eprintln!("restore_verify outcome: {}", if matches!(outcome, Outcome::Restored) { "restored" } else { "refused" });
    }
});
