//! Repository format v1 test vectors (`format-spec/vectors/`, described in its README.md and in
//! `format-spec/SPEC.md`).
//!
//! Every vector is decoded from the stored bytes, its fields are compared with the values written
//! below, and it is re-encoded and compared with the stored bytes. AES-GCM output is made
//! reproducible by re-sealing the decrypted payload with the nonce found in the vector, so sealed
//! objects are pinned byte for byte too.
//!
//! Normal runs only read. To rewrite the vectors after an intended, documented format change:
//!
//! ```text
//! cargo test -p rime-engine --test vectors -- --ignored regenerate_vectors
//! ```
//!
//! `repo-v1/` (a whole repository written by `Repository::init` and `backup`) is only created
//! when missing: it is the fixture that proves format v1 stays readable, so never recreate it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rime_engine::chunker::Chunker;
use rime_engine::crypto::{
    derive_wrapping_key, Aead, KdfParams, Keys, MasterSecret, CTX_BLOB_ID, CTX_CHUNKER_SEED,
    CTX_CONFIG_MAC, CTX_DATA_KEY, CTX_OBJECT_ID, NONCE_LEN, TAG_LEN,
};
use rime_engine::format::blob::{blob_aad, open_blob, seal_blob};
use rime_engine::format::chunkmap::{ChunkMap, MapSegment, SegmentRef};
use rime_engine::format::config::{self, ChunkerParams, ConfigBody, Encryption};
use rime_engine::format::index::{IndexFile, IndexPack};
use rime_engine::format::keyfile::{self, KeyFileBody, WRAP_AAD_PREFIX};
use rime_engine::format::object::{open_object, seal_object, ObjectKind, HEADER_LEN, OBJECT_MAGIC};
use rime_engine::format::pack::{
    decode_header_plain, decode_pack, decode_trailer, encode_header_plain, PackEntry,
    PACK_HEADER_AAD, PACK_MAGIC, TRAILER_LEN,
};
use rime_engine::format::snapshot::{
    ChunkerKind, Snapshot, SnapshotStats, SourceKind, TarLevelSource, VolumeSource,
};
use rime_engine::format::tree::{Node, NodeKind, Part, Timestamp, Tree, Xattr};
use rime_engine::format::{BlobFlags, BlobType, FORMAT_VERSION};
use rime_engine::id::{BlobId, IndexId, PackId, RepoId, SnapshotId};
use rime_engine::ops::check::{check, CheckOptions};
use rime_engine::ops::restore::{restore, RestoreOptions};
use rime_engine::ops::NoProgress;
use rime_engine::repo::index::MasterIndex;
use rime_engine::repo::lock::LockBody;
use rime_engine::repo::{InitOptions, Repository};
use rime_engine::storage::{FileKind, LocalStorage, Storage};
use rime_engine::ErrorKind;

/// The fixed master secret of all vectors except `repo-v1/`.
const MASTER: [u8; 32] = [7u8; 32];
/// Password of `keyfile.bin` and of `repo-v1/`.
const PASSWORD: &[u8] = b"vector";
/// 2026-11-01T00:00:00Z.
const CREATED: i64 = 1_793_491_200;
const REPO_ID: [u8; 32] = [0x11; 32];
const SALT: [u8; 16] = [0x22; 16];

// Fixed AES-GCM nonces, one per sealed vector (never reuse a nonce like this outside tests).
const NONCE_KEYFILE: [u8; 12] = [0x33; 12];
const NONCE_BLOB_DATA: [u8; 12] = [0xb0; 12];
const NONCE_BLOB_RAW: [u8; 12] = [0xb1; 12];
const NONCE_PACK_HEADER: [u8; 12] = [0xc0; 12];
const NONCE_INDEX: [u8; 12] = [0xd1; 12];
const NONCE_SNAPSHOT: [u8; 12] = [0xd2; 12];
const NONCE_LOCK: [u8; 12] = [0xe0; 12];

const LOCK_AAD: &[u8] = b"rime lock v1";

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../format-spec/vectors")
}

fn read_vector(name: &str) -> Vec<u8> {
    let p = vectors_dir().join(name);
    fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "cannot read test vector {}: {e}\n(regenerate with `cargo test -p rime-engine --test vectors -- --ignored regenerate_vectors`)",
            p.display()
        )
    })
}

fn keys() -> Keys {
    Keys::derive(&MasterSecret(MASTER), true)
}

fn aead() -> Aead {
    keys().aead.expect("encrypted keys have an AEAD")
}

fn zstd3(data: &[u8]) -> Option<Vec<u8>> {
    zstd::bulk::compress(data, 3).ok()
}

fn assert_bytes(name: &str, got: &[u8], want: &[u8]) {
    if got != want {
        let at = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{name}: re-encoded bytes differ from the vector at byte {at} (re-encoded {} bytes, vector {} bytes)\n\
             re-encoded: {}\nvector:     {}",
            got.len(),
            want.len(),
            hex::encode(got),
            hex::encode(want)
        );
    }
}

/// Decrypt `sealed` and seal the payload again with the nonce it carries: AES-GCM is
/// deterministic given the nonce, so this re-encodes the stored bytes exactly.
fn reseal_check(name: &str, aad: &[u8], sealed: &[u8]) -> Vec<u8> {
    let a = aead();
    let payload = a
        .open(aad, sealed)
        .unwrap_or_else(|| panic!("{name}: authentication failed"));
    assert_eq!(
        sealed.len(),
        NONCE_LEN + payload.len() + TAG_LEN,
        "{name}: framing overhead"
    );
    let nonce: [u8; NONCE_LEN] = sealed[..NONCE_LEN].try_into().unwrap();
    assert_bytes(name, &a.seal_with_nonce(&nonce, aad, &payload), sealed);
    payload
}

// ---------------------------------------------------------------------------------------------
// The expected values.

fn config_body(encryption: Encryption) -> ConfigBody {
    ConfigBody {
        repo_id: RepoId(REPO_ID),
        encryption,
        chunker: ChunkerParams::DEFAULT,
        data_pack_size: 32 << 20,
        tree_pack_size: 8 << 20,
        created: CREATED,
    }
}

fn wrap_aad() -> Vec<u8> {
    let mut a = WRAP_AAD_PREFIX.to_vec();
    a.extend_from_slice(&REPO_ID);
    a
}

fn keyfile_body() -> KeyFileBody {
    let k = derive_wrapping_key(PASSWORD, &SALT, KdfParams::TESTING).unwrap();
    KeyFileBody {
        kdf: Some(KdfParams::TESTING),
        salt: SALT,
        wrapped: Aead::new(&k).seal_with_nonce(&NONCE_KEYFILE, &wrap_aad(), &MASTER),
        created: CREATED,
        hostname: "vector-host".into(),
        username: "vector-user".into(),
    }
}

fn keyfile_none_body() -> KeyFileBody {
    KeyFileBody {
        kdf: None,
        salt: SALT,
        wrapped: MASTER.to_vec(),
        created: CREATED,
        hostname: "vector-host".into(),
        username: "vector-user".into(),
    }
}

/// The tree annotated byte by byte in SPEC.md: one 5-byte file.
fn tree_small() -> Tree {
    Tree {
        nodes: vec![Node {
            name: b"a".to_vec(),
            kind: NodeKind::File,
            mode: 0o644,
            uid: 1000,
            gid: 1000,
            user: "al".into(),
            group: "al".into(),
            mtime: Timestamp {
                secs: CREATED,
                nanos: 0,
            },
            ctime: Timestamp {
                secs: CREATED,
                nanos: 1,
            },
            inode: 2,
            device: 3,
            links: 1,
            size: 5,
            content: vec![Part::Data {
                id: BlobId([0xaa; 32]),
                len: 5,
            }],
            subtree: None,
            link_target: vec![],
            rdev: 0,
            xattrs: vec![],
        }],
    }
}

fn node(name: &str, kind: NodeKind) -> Node {
    Node {
        name: name.as_bytes().to_vec(),
        kind,
        mode: 0o644,
        uid: 1000,
        gid: 100,
        user: "vector".into(),
        group: "users".into(),
        mtime: Timestamp {
            secs: CREATED,
            nanos: 500_000_000,
        },
        ctime: Timestamp {
            secs: CREATED + 1,
            nanos: 0,
        },
        inode: 0,
        device: 0x803,
        links: 1,
        size: 0,
        content: vec![],
        subtree: None,
        link_target: vec![],
        rdev: 0,
        xattrs: vec![],
    }
}

/// A tree with one node of most kinds, a hole, xattrs and a pre-1970 time.
fn tree_full() -> Tree {
    let mut dir = node("bin", NodeKind::Dir);
    dir.mode = 0o755;
    dir.inode = 10;
    dir.links = 2;
    dir.subtree = Some(BlobId([0x66; 32]));
    let mut dev = node("console", NodeKind::CharDevice);
    dev.mode = 0o600;
    dev.uid = 0;
    dev.gid = 0;
    dev.user = "root".into();
    dev.group = "root".into();
    dev.inode = 11;
    dev.rdev = (5 << 8) | 1;
    let mut file = node("hello.txt", NodeKind::File);
    file.inode = 12;
    file.links = 2;
    file.size = 1_048_576 + 300;
    file.content = vec![
        Part::Data {
            id: BlobId([0x77; 32]),
            len: 300,
        },
        Part::Hole { len: 1_048_576 },
    ];
    file.xattrs = vec![
        Xattr {
            name: b"user.a".to_vec(),
            value: b"1".to_vec(),
        },
        Xattr {
            name: b"user.comment".to_vec(),
            value: b"hi\x00there".to_vec(),
        },
    ];
    let mut link = node("link", NodeKind::Symlink);
    link.mode = 0o777;
    link.inode = 13;
    link.link_target = b"hello.txt".to_vec();
    let mut old = node("old", NodeKind::Fifo);
    old.inode = 14;
    old.mtime = Timestamp {
        secs: -86_400,
        nanos: 999_999_999,
    };
    Tree {
        nodes: vec![dir, dev, file, link, old],
    }
}

/// A compressible data blob (stored zstd-compressed).
fn data_blob() -> Vec<u8> {
    b"rime format v1 test vector: a data blob that compresses well. ".repeat(6)
}

/// An incompressible data blob (stored raw).
fn raw_blob() -> Vec<u8> {
    xorshift_bytes(48, 0x5eed)
}

/// The blobs of `pack.bin`, in order. Like every pack the packer writes, it holds one blob type.
fn pack_blobs() -> Vec<(BlobType, Vec<u8>, [u8; 12])> {
    vec![
        (BlobType::Data, data_blob(), NONCE_BLOB_DATA),
        (BlobType::Data, raw_blob(), NONCE_BLOB_RAW),
    ]
}

/// Build `pack.bin` the way the packer does, with fixed nonces; returns (pack, entries).
fn build_pack() -> (Vec<u8>, Vec<PackEntry>) {
    let keys = keys();
    let a = aead();
    let mut pack = Vec::new();
    let mut entries = Vec::new();
    for (ty, plain, nonce) in pack_blobs() {
        let id = keys.blob_id(&plain);
        let raw_len = plain.len() as u32;
        // The compression rule of seal_blob: keep zstd only if it saves more than len/32.
        let (flags, payload) =
            match zstd3(&plain).filter(|c| c.len() < plain.len() - plain.len() / 32) {
                Some(c) => (BlobFlags(BlobFlags::COMPRESSED), c),
                None => (BlobFlags(0), plain.clone()),
            };
        let sealed = a.seal_with_nonce(&nonce, &blob_aad(ty, flags, raw_len, &id), &payload);
        entries.push(PackEntry {
            ty,
            flags,
            offset: pack.len() as u32,
            stored_len: sealed.len() as u32,
            raw_len,
            id,
        });
        pack.extend_from_slice(&sealed);
    }
    let header = a.seal_with_nonce(
        &NONCE_PACK_HEADER,
        PACK_HEADER_AAD,
        &encode_header_plain(&entries),
    );
    pack.extend_from_slice(&header);
    pack.extend_from_slice(&(header.len() as u32).to_le_bytes());
    pack.extend_from_slice(PACK_MAGIC);
    (pack, entries)
}

fn index_file() -> IndexFile {
    let (pack, entries) = build_pack();
    IndexFile {
        supersedes: vec![IndexId([0x5a; 32])],
        packs: vec![IndexPack {
            id: PackId(*blake3::hash(&pack).as_bytes()),
            blobs: entries,
        }],
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        time: Timestamp {
            secs: CREATED,
            nanos: 123_456_789,
        },
        hostname: "vector-host".into(),
        name: "daily".into(),
        username: "vector-user".into(),
        tags: vec!["vector".into(), "v1".into()],
        paths: vec!["/home/vector".into()],
        parent: Some(SnapshotId([0x44; 32])),
        source: SourceKind::Files,
        root: keys().blob_id(&tree_small().encode()),
        stats: SnapshotStats {
            files: 1,
            dirs: 2,
            others: 3,
            files_read: 4,
            bytes_read: 5,
            bytes_total: 300,
            bytes_added: 70_000,
            chunks_new: 8,
            chunks_reused: 9,
            trees_new: 10,
            unreadable: 0,
            duration_ms: 1234,
        },
        program: "rime 0.1.0".into(),
    }
}

fn map_segment() -> MapSegment {
    MapSegment::new(vec![
        Part::Data {
            id: BlobId([0x11; 32]),
            len: 262_144,
        },
        Part::Hole { len: 786_432 },
        Part::Data {
            id: BlobId([0x22; 32]),
            len: 4096,
        },
    ])
}

fn chunk_map() -> ChunkMap {
    ChunkMap::new(vec![SegmentRef {
        id: keys().blob_id(&map_segment().encode()),
        len: map_segment().len(),
    }])
}

fn volume_snapshot() -> Snapshot {
    Snapshot {
        source: SourceKind::Volume(VolumeSource {
            path: "/dev/vg0/data".into(),
            block_device: true,
            size: map_segment().len(),
            chunker: ChunkerKind::Fixed,
            chunk_size: 262_144,
            mtime: Timestamp::default(),
            ctime: Timestamp::default(),
            inode: 0,
            dev: 0,
            annotations: vec![("lvm.origin".into(), "vg0/data".into())],
        }),
        root: keys().blob_id(&chunk_map().encode()),
        paths: vec!["/dev/vg0/data".into()],
        parent: None,
        ..snapshot()
    }
}

/// Level 1 of a tar chain whose level 0 is snapshot 44…44 (SPEC 4.7, `TarLevelSource`).
fn tar_level_snapshot() -> Snapshot {
    Snapshot {
        source: SourceKind::TarLevel(TarLevelSource {
            size: map_segment().len(),
            tar_size: 1_048_576,
            level: 1,
            chain: vec![SnapshotId([0x44; 32])],
            compression: "gzip".into(),
            encrypted: true,
            annotations: vec![("freezer.mode".into(), "fs".into())],
        }),
        root: keys().blob_id(&chunk_map().encode()),
        paths: vec!["/home/vector".into()],
        parent: Some(SnapshotId([0x44; 32])),
        ..snapshot()
    }
}

fn lock_body() -> LockBody {
    LockBody {
        exclusive: false,
        hostname: "vector-host".into(),
        pid: 4242,
        time: CREATED,
        command: String::new(),
        holder: None,
        scope: None,
    }
}

/// `lock.bin` is a version 1 lock (no `command`), as the first releases wrote; rime still reads
/// it and writes version 2.
fn lock_v1_bytes() -> Vec<u8> {
    let l = lock_body();
    let mut out = b"RMLK\x01".to_vec();
    out.extend_from_slice(
        &postcard::to_allocvec(&(l.exclusive, l.hostname, l.pid, l.time)).unwrap(),
    );
    out
}

/// Frame an object like `seal_object`, with a fixed nonce; returns (id, file).
fn frame_object(kind: ObjectKind, plaintext: &[u8], nonce: &[u8; 12]) -> ([u8; 32], Vec<u8>) {
    let keys = keys();
    let id = keys.object_id(plaintext);
    let (flags, payload) = match zstd3(plaintext).filter(|c| c.len() < plaintext.len()) {
        Some(c) => (1u8, c),
        None => (0u8, plaintext.to_vec()),
    };
    let mut header = OBJECT_MAGIC.to_vec();
    header.extend_from_slice(&[kind as u8, 1, flags, 0]);
    let mut aad = header.clone();
    aad.extend_from_slice(&id);
    let mut out = header;
    out.extend_from_slice(&aead().seal_with_nonce(nonce, &aad, &payload));
    (id, out)
}

/// Pseudo-random input of the chunker vectors: xorshift64 (13, 7, 17) from `seed`, one byte per
/// step taken from bits 24..32.
fn xorshift_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

const SMALL_CHUNKER: ChunkerParams = ChunkerParams {
    min_size: 256,
    avg_size: 1024,
    max_size: 4096,
    normalization: 1,
};

fn chunker_text() -> String {
    let seed = keys().chunker_seed;
    let mut s = String::new();
    s.push_str("# rime format v1 chunker vectors; see README.md\n");
    s.push_str(&format!("seed = {seed:#018x}\n"));
    for (label, params, len) in [
        ("small", SMALL_CHUNKER, 64 << 10),
        ("default", ChunkerParams::DEFAULT, 8 << 20),
    ] {
        let data = xorshift_bytes(len, 0x0123_4567_89ab_cdef);
        let cuts = Chunker::new(params, seed).cut_points(&data);
        s.push_str(&format!(
            "[{label}] min={} avg={} max={} normalization={} input=xorshift64({:#x}) len={len}\n",
            params.min_size,
            params.avg_size,
            params.max_size,
            params.normalization,
            0x0123_4567_89ab_cdefu64
        ));
        s.push_str(&format!(
            "cuts = {}\n",
            cuts.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    s
}

fn keys_text() -> String {
    let m = &MASTER;
    let k = keys();
    let (pack, _) = build_pack();
    let mut s = String::new();
    let mut line = |name: &str, v: String| s.push_str(&format!("{name} = {v}\n"));
    line("master_secret", hex::encode(m));
    line("data_key", hex::encode(blake3::derive_key(CTX_DATA_KEY, m)));
    line(
        "blob_id_key",
        hex::encode(blake3::derive_key(CTX_BLOB_ID, m)),
    );
    line(
        "object_id_key",
        hex::encode(blake3::derive_key(CTX_OBJECT_ID, m)),
    );
    line(
        "config_mac_key",
        hex::encode(blake3::derive_key(CTX_CONFIG_MAC, m)),
    );
    line(
        "chunker_seed_bytes",
        hex::encode(blake3::derive_key(CTX_CHUNKER_SEED, m)),
    );
    line("chunker_seed", format!("{:#018x}", k.chunker_seed));
    line(
        "wrapping_key(vector, 22*16, TESTING)",
        hex::encode(derive_wrapping_key(PASSWORD, &SALT, KdfParams::TESTING).unwrap()),
    );
    line("blob_id(\"\")", k.blob_id(b"").to_hex());
    line("blob_id(data_blob)", k.blob_id(&data_blob()).to_hex());
    line("blob_id(raw_blob)", k.blob_id(&raw_blob()).to_hex());
    line(
        "blob_id(tree-small.bin)",
        k.blob_id(&tree_small().encode()).to_hex(),
    );
    line(
        "object_id(index-payload.bin)",
        hex::encode(k.object_id(&index_file().encode())),
    );
    line(
        "object_id(snapshot.bin)",
        hex::encode(k.object_id(&snapshot().encode())),
    );
    line(
        "config_mac(config body)",
        hex::encode(
            k.config_mac(&postcard::to_stdvec(&config_body(Encryption::Aes256Gcm)).unwrap()),
        ),
    );
    line(
        "pack_id(pack.bin)",
        hex::encode(blake3::hash(&pack).as_bytes()),
    );
    s
}

/// Every deterministic vector: (file name, bytes).
fn all_vectors() -> Vec<(&'static str, Vec<u8>)> {
    let keys = keys();
    let keys_none = Keys::derive(&MasterSecret(MASTER), false);
    let (pack, entries) = build_pack();
    let index_plain = index_file().encode();
    let snap_plain = snapshot().encode();
    let lock_plain = lock_v1_bytes();
    vec![
        ("keys.txt", keys_text().into_bytes()),
        ("chunker.txt", chunker_text().into_bytes()),
        (
            "config.bin",
            config::encode(&config_body(Encryption::Aes256Gcm), |b| keys.config_mac(b)),
        ),
        (
            "config-none.bin",
            config::encode(&config_body(Encryption::None), |b| keys_none.config_mac(b)),
        ),
        ("keyfile.bin", keyfile::encode(&keyfile_body())),
        ("keyfile-none.bin", keyfile::encode(&keyfile_none_body())),
        ("tree-small.bin", tree_small().encode()),
        ("tree.bin", tree_full().encode()),
        ("pack-header-plain.bin", encode_header_plain(&entries)),
        ("pack.bin", pack),
        ("index-payload.bin", index_plain.clone()),
        (
            "index-object.bin",
            frame_object(ObjectKind::Index, &index_plain, &NONCE_INDEX).1,
        ),
        ("snapshot.bin", snap_plain.clone()),
        (
            "snapshot-object.bin",
            frame_object(ObjectKind::Snapshot, &snap_plain, &NONCE_SNAPSHOT).1,
        ),
        ("map-segment.bin", map_segment().encode()),
        ("chunk-map.bin", chunk_map().encode()),
        ("snapshot-volume.bin", volume_snapshot().encode()),
        ("snapshot-tar-level.bin", tar_level_snapshot().encode()),
        ("lock.bin", lock_plain.clone()),
        (
            "lock-sealed.bin",
            aead().seal_with_nonce(&NONCE_LOCK, LOCK_AAD, &lock_plain),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Regeneration (explicit only).

#[test]
#[ignore = "writes format-spec/vectors/; run explicitly after an intended format change"]
fn regenerate_vectors() {
    let dir = vectors_dir();
    fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in all_vectors() {
        fs::write(dir.join(name), bytes).unwrap();
    }
    let repo = dir.join("repo-v1");
    if !repo.exists() {
        make_repo_fixture(&repo);
    }
}

/// The source tree backed up into `repo-v1/`.
fn fixture_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("hello.txt", b"hello, rime format v1\n".to_vec()),
        ("empty", Vec::new()),
        (
            "docs/a.txt",
            b"a file with a hard link next to it\n".repeat(3),
        ),
        ("docs/deep/notes.md", b"# notes\n\nline\n".repeat(200)),
    ]
}

/// Content of `sparse.bin`: 4 KiB of text, 192 KiB of zeros, 4 KiB of text.
fn fixture_sparse() -> Vec<u8> {
    let mut v = b"head ".repeat(820);
    v.resize(4096, b'.');
    v.resize(4096 + (192 << 10), 0);
    v.extend(b"tail ".repeat(820));
    v.resize(4096 + (192 << 10) + 4096, b'.');
    v
}

fn make_repo_fixture(dest: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("rime-v1-fixture");
    for (p, content) in fixture_files() {
        let p = src.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
    }
    fs::hard_link(src.join("docs/a.txt"), src.join("docs/a-link.txt")).unwrap();
    std::os::unix::fs::symlink("hello.txt", src.join("link")).unwrap();
    // Written with a hole in the middle (sparse where the file system allows).
    let sparse = fixture_sparse();
    let mut f = fs::File::create(src.join("sparse.bin")).unwrap();
    f.write_all(&sparse[..4096]).unwrap();
    f.seek(SeekFrom::Start((4096 + (192 << 10)) as u64))
        .unwrap();
    f.write_all(&sparse[4096 + (192 << 10)..]).unwrap();
    drop(f);
    let t = filetime::FileTime::from_unix_time(CREATED, 0);
    for p in [
        "hello.txt",
        "empty",
        "docs/a.txt",
        "docs/deep/notes.md",
        "sparse.bin",
        "link",
        "docs/deep",
        "docs",
        "",
    ] {
        filetime::set_symlink_file_times(src.join(p), t, t).unwrap();
    }

    let repo_dir = tmp.path().join("repo");
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(&repo_dir));
    let opts = InitOptions {
        kdf: KdfParams::TESTING,
        ..InitOptions::default()
    };
    let repo = Repository::init(storage, PASSWORD, &opts).unwrap();
    let mut bo = rime_engine::ops::backup::BackupOptions::new(vec![src.clone()]);
    bo.hostname = "vector-host".into();
    bo.name = "v1-fixture".into();
    bo.tags = vec!["fixture".into()];
    let r = rime_engine::ops::backup::backup(&repo, &bo, &NoProgress).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    copy_tree(&repo_dir, dest);
}

/// Copy regular files, creating only the directories that hold one.
fn copy_tree(from: &Path, to: &Path) {
    for ent in fs::read_dir(from).unwrap() {
        let ent = ent.unwrap();
        let (src, dst) = (ent.path(), to.join(ent.file_name()));
        if ent.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            fs::create_dir_all(to).unwrap();
            fs::copy(&src, &dst).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The checks.

#[test]
fn every_vector_file_matches_the_encoders() {
    for (name, want) in all_vectors() {
        assert_bytes(name, &want, &read_vector(name));
    }
}

#[test]
fn keys_and_ids() {
    let text = String::from_utf8(read_vector("keys.txt")).unwrap();
    assert_eq!(
        text,
        keys_text(),
        "derived keys or ids changed: stored ids would no longer match"
    );
    // The Keys methods are keyed BLAKE3 with the derived keys listed in the file.
    let k = keys();
    let blob_key = blake3::derive_key(CTX_BLOB_ID, &MASTER);
    assert_eq!(
        k.blob_id(b"abc").0,
        *blake3::keyed_hash(&blob_key, b"abc").as_bytes()
    );
    let obj_key = blake3::derive_key(CTX_OBJECT_ID, &MASTER);
    assert_eq!(
        k.object_id(b"abc"),
        *blake3::keyed_hash(&obj_key, b"abc").as_bytes()
    );
    let mac_key = blake3::derive_key(CTX_CONFIG_MAC, &MASTER);
    assert_eq!(
        k.config_mac(b"abc"),
        *blake3::keyed_hash(&mac_key, b"abc").as_bytes()
    );
    let seed = blake3::derive_key(CTX_CHUNKER_SEED, &MASTER);
    assert_eq!(
        k.chunker_seed,
        u64::from_le_bytes(seed[..8].try_into().unwrap()).max(1)
    );
    // The data key is the AES-256-GCM key.
    let data_key = blake3::derive_key(CTX_DATA_KEY, &MASTER);
    let sealed = k
        .aead
        .as_ref()
        .unwrap()
        .seal_with_nonce(&[1; 12], b"aad", b"x");
    assert_eq!(Aead::new(&data_key).open(b"aad", &sealed).unwrap(), b"x");
    assert!(text.contains(&format!("chunker_seed = {:#018x}\n", k.chunker_seed)));
}

#[test]
fn chunker_cut_points() {
    let text = String::from_utf8(read_vector("chunker.txt")).unwrap();
    assert_eq!(
        text,
        chunker_text(),
        "chunk cut points changed: new backups would not deduplicate against old ones"
    );
}

#[test]
fn config_file() {
    let keys = keys();
    let file = read_vector("config.bin");
    assert_eq!(&file[..4], b"RIME");
    assert_eq!(u16::from_le_bytes([file[4], file[5]]), 1);
    let c = config::decode(&file).unwrap();
    assert_eq!(c.version, FORMAT_VERSION);
    assert_eq!(c.body, config_body(Encryption::Aes256Gcm));
    assert_eq!(
        u32::from_le_bytes(file[6..10].try_into().unwrap()) as usize,
        c.body_bytes.len()
    );
    assert_eq!(&file[10..10 + c.body_bytes.len()], &c.body_bytes[..]);
    assert_eq!(c.mac, keys.config_mac(&c.body_bytes));
    assert_eq!(&file[file.len() - 32..], &c.mac);
    // The body is plain postcard: repo id (32 raw bytes) first, then the encryption variant.
    assert_eq!(&c.body_bytes[..32], &REPO_ID);
    assert_eq!(c.body_bytes[32], 1, "Encryption::Aes256Gcm is variant 1");
    assert_bytes(
        "config.bin",
        &config::encode(&c.body, |b| keys.config_mac(b)),
        &file,
    );

    let file = read_vector("config-none.bin");
    let c = config::decode(&file).unwrap();
    assert_eq!(c.body, config_body(Encryption::None));
    assert_eq!(c.body_bytes[32], 0, "Encryption::None is variant 0");
    let keys_none = Keys::derive(&MasterSecret(MASTER), false);
    assert_eq!(c.mac, keys_none.config_mac(&c.body_bytes));
    assert_bytes(
        "config-none.bin",
        &config::encode(&c.body, |b| keys_none.config_mac(b)),
        &file,
    );
}

#[test]
fn key_files() {
    let file = read_vector("keyfile.bin");
    assert_eq!(&file[..5], b"RMKY\x01");
    let body = keyfile::decode(&file).unwrap();
    assert_eq!(body.kdf, Some(KdfParams::TESTING));
    assert_eq!(body.salt, SALT);
    assert_eq!(body.created, CREATED);
    assert_eq!(body.hostname, "vector-host");
    assert_eq!(body.username, "vector-user");
    assert_eq!(body.wrapped.len(), NONCE_LEN + 32 + TAG_LEN);
    // Unwrap with the password, then wrap again with the stored nonce.
    let k = derive_wrapping_key(PASSWORD, &body.salt, body.kdf.unwrap()).unwrap();
    let a = Aead::new(&k);
    let master = a
        .open(&wrap_aad(), &body.wrapped)
        .expect("password 'vector' opens keyfile.bin");
    assert_eq!(master, MASTER);
    assert!(
        a.open(b"rime key file v1", &body.wrapped).is_none(),
        "the repository id is bound into the AAD"
    );
    let wrong = derive_wrapping_key(b"wrong", &body.salt, body.kdf.unwrap()).unwrap();
    assert!(Aead::new(&wrong).open(&wrap_aad(), &body.wrapped).is_none());
    let nonce: [u8; 12] = body.wrapped[..12].try_into().unwrap();
    assert_bytes(
        "keyfile.bin wrapped",
        &a.seal_with_nonce(&nonce, &wrap_aad(), &master),
        &body.wrapped,
    );
    assert_eq!(body, keyfile_body());
    assert_bytes("keyfile.bin", &keyfile::encode(&body), &file);

    let file = read_vector("keyfile-none.bin");
    let body = keyfile::decode(&file).unwrap();
    assert_eq!(body.kdf, None);
    assert_eq!(
        body.wrapped, MASTER,
        "unencrypted repositories store the bare master secret"
    );
    assert_eq!(body, keyfile_none_body());
    assert_bytes("keyfile-none.bin", &keyfile::encode(&body), &file);
}

#[test]
fn trees() {
    let file = read_vector("tree-small.bin");
    let t = Tree::decode(&file).unwrap();
    assert_eq!(t, tree_small());
    assert_eq!(t.nodes[0].name, b"a");
    assert_eq!(
        t.nodes[0].content,
        vec![Part::Data {
            id: BlobId([0xaa; 32]),
            len: 5
        }]
    );
    assert_bytes("tree-small.bin", &t.encode(), &file);

    let file = read_vector("tree.bin");
    let t = Tree::decode(&file).unwrap();
    let names: Vec<&[u8]> = t.nodes.iter().map(|n| n.name.as_slice()).collect();
    assert_eq!(
        names,
        [&b"bin"[..], b"console", b"hello.txt", b"link", b"old"]
    );
    let kinds: Vec<NodeKind> = t.nodes.iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        [
            NodeKind::Dir,
            NodeKind::CharDevice,
            NodeKind::File,
            NodeKind::Symlink,
            NodeKind::Fifo
        ]
    );
    assert_eq!(t.nodes[0].subtree, Some(BlobId([0x66; 32])));
    assert_eq!(t.nodes[1].rdev, 0x501);
    assert_eq!(t.nodes[2].content[1], Part::Hole { len: 1 << 20 });
    assert_eq!(t.nodes[2].xattrs[1].value, b"hi\x00there");
    assert_eq!(t.nodes[3].link_target, b"hello.txt");
    assert_eq!(
        t.nodes[4].mtime,
        Timestamp {
            secs: -86_400,
            nanos: 999_999_999
        }
    );
    assert_eq!(t, tree_full());
    assert_bytes("tree.bin", &t.encode(), &file);
}

#[test]
fn pack_header_and_pack() {
    let keys = keys();
    let plain = read_vector("pack-header-plain.bin");
    let entries = decode_header_plain(&plain).unwrap();
    assert_eq!(plain[0], 1, "pack header version");
    assert_eq!(u32::from_le_bytes(plain[1..5].try_into().unwrap()), 2);
    assert_eq!(plain.len(), 5 + 2 * 42);
    let blobs = pack_blobs();
    assert_eq!(entries.len(), 2);
    for (e, (ty, p, _)) in entries.iter().zip(&blobs) {
        assert_eq!(e.ty, *ty);
        assert_eq!(e.raw_len as usize, p.len());
        assert_eq!(e.id, keys.blob_id(p));
    }
    assert_eq!(
        entries[0].flags,
        BlobFlags(BlobFlags::COMPRESSED),
        "the data blob is stored compressed"
    );
    assert_eq!(
        entries[1].flags,
        BlobFlags(0),
        "the random data blob is stored raw"
    );
    assert_eq!(entries[0].offset, 0);
    assert_eq!(entries[1].offset, entries[0].stored_len);
    assert_eq!(
        entries[1].stored_len as usize,
        blobs[1].1.len() + NONCE_LEN + TAG_LEN
    );
    assert_bytes(
        "pack-header-plain.bin",
        &encode_header_plain(&entries),
        &plain,
    );

    let pack = read_vector("pack.bin");
    assert_eq!(decode_pack(&keys, &pack).unwrap(), entries);
    let hlen = decode_trailer(&pack[pack.len() - TRAILER_LEN..]).unwrap() as usize;
    assert_eq!(&pack[pack.len() - 4..], b"RPK1");
    let hstart = pack.len() - TRAILER_LEN - hlen;
    assert_eq!(hstart as u32, entries[1].offset + entries[1].stored_len);
    let header_plain = reseal_check(
        "pack.bin header",
        PACK_HEADER_AAD,
        &pack[hstart..pack.len() - TRAILER_LEN],
    );
    assert_bytes("pack.bin header plaintext", &header_plain, &plain);
    let mut rebuilt = Vec::new();
    for (e, (_, p, _)) in entries.iter().zip(&blobs) {
        let stored = &pack[e.offset as usize..(e.offset + e.stored_len) as usize];
        assert_eq!(
            open_blob(&keys, e.ty, e.flags, e.raw_len, &e.id, stored).unwrap(),
            *p
        );
        let aad = blob_aad(e.ty, e.flags, e.raw_len, &e.id);
        assert_eq!(aad.len(), 38);
        let payload = reseal_check("pack.bin blob", &aad, stored);
        if e.flags.compressed() {
            assert_eq!(zstd::stream::decode_all(&payload[..]).unwrap(), *p);
        } else {
            assert_eq!(payload, *p);
        }
        // Moving a blob to another id, type, flags or length fails authentication.
        assert!(open_blob(&keys, e.ty, e.flags, e.raw_len + 1, &e.id, stored).is_err());
        assert!(open_blob(&keys, e.ty, e.flags, e.raw_len, &BlobId([0; 32]), stored).is_err());
        // seal_blob (random nonce) makes the same compression decision and length.
        let sealed = seal_blob(&keys, e.ty, e.id, p, zstd3);
        assert_eq!(sealed.flags, e.flags);
        assert_eq!(sealed.raw_len, e.raw_len);
        assert_eq!(
            open_blob(
                &keys,
                e.ty,
                sealed.flags,
                sealed.raw_len,
                &e.id,
                &sealed.bytes
            )
            .unwrap(),
            *p
        );
        rebuilt.extend_from_slice(stored);
    }
    rebuilt.extend_from_slice(&pack[hstart..pack.len() - TRAILER_LEN]);
    rebuilt.extend_from_slice(&(hlen as u32).to_le_bytes());
    rebuilt.extend_from_slice(PACK_MAGIC);
    assert_bytes("pack.bin", &rebuilt, &pack);
    // Any bit flip is detected.
    for i in [0, hstart - 1, hstart + 20, pack.len() - 6] {
        let mut bad = pack.clone();
        bad[i] ^= 0x10;
        let ok = decode_pack(&keys, &bad).is_ok_and(|es| {
            es.iter().all(|e| {
                let s = &bad[e.offset as usize..(e.offset + e.stored_len) as usize];
                open_blob(&keys, e.ty, e.flags, e.raw_len, &e.id, s).is_ok()
            })
        });
        assert!(!ok, "flipping a bit of byte {i} went unnoticed");
    }
}

#[test]
fn index_payload_and_object() {
    let keys = keys();
    let plain = read_vector("index-payload.bin");
    let f = IndexFile::decode(&plain).unwrap();
    assert_eq!(plain[0], 1);
    assert_eq!(f.supersedes, vec![IndexId([0x5a; 32])]);
    assert_eq!(f.packs.len(), 1);
    let pack = read_vector("pack.bin");
    assert_eq!(
        f.packs[0].id,
        PackId(*blake3::hash(&pack).as_bytes()),
        "pack id = unkeyed BLAKE3 of the pack file"
    );
    assert_eq!(f.packs[0].blobs, decode_pack(&keys, &pack).unwrap());
    assert_eq!(plain.len(), 1 + 4 + 32 + 4 + 32 + 4 + 2 * 46);
    assert_eq!(f, index_file());
    assert_bytes("index-payload.bin", &f.encode(), &plain);

    let file = read_vector("index-object.bin");
    check_object("index-object.bin", ObjectKind::Index, &file, &plain);
}

#[test]
fn snapshot_payload_and_object() {
    let plain = read_vector("snapshot.bin");
    let s = Snapshot::decode(&plain).unwrap();
    assert_eq!(s.hostname, "vector-host");
    assert_eq!(s.tags, ["vector", "v1"]);
    assert_eq!(s.parent, Some(SnapshotId([0x44; 32])));
    assert_eq!(s.source, SourceKind::Files);
    assert_eq!(s.root, keys().blob_id(&read_vector("tree-small.bin")));
    assert_eq!(s.stats.duration_ms, 1234);
    assert_eq!(s, snapshot());
    assert_bytes("snapshot.bin", &s.encode(), &plain);

    let file = read_vector("snapshot-object.bin");
    check_object("snapshot-object.bin", ObjectKind::Snapshot, &file, &plain);
}

/// Open a framed object, compare its plaintext, re-frame it with its own nonce.
fn check_object(name: &str, kind: ObjectKind, file: &[u8], plain: &[u8]) {
    let keys = keys();
    let id = keys.object_id(plain);
    assert_eq!(&file[..4], b"RMOB");
    assert_eq!(file[4], kind as u8);
    assert_eq!(file[5], 1, "object version");
    assert_eq!(file[7], 0, "reserved byte");
    assert_eq!(open_object(&keys, kind, &id, file).unwrap(), plain);
    let mut aad = file[..HEADER_LEN].to_vec();
    aad.extend_from_slice(&id);
    assert_eq!(aad.len(), 40);
    let payload = reseal_check(name, &aad, &file[HEADER_LEN..]);
    if file[6] & 1 != 0 {
        assert_eq!(zstd::stream::decode_all(&payload[..]).unwrap(), plain);
    } else {
        assert_eq!(file[6], 0);
        assert_eq!(payload, plain);
    }
    // seal_object (random nonce) frames the same way, and its output opens.
    let (id2, other) = seal_object(&keys, kind, plain);
    assert_eq!(id2, id);
    assert_eq!(other[..HEADER_LEN], file[..HEADER_LEN]);
    assert_eq!(open_object(&keys, kind, &id, &other).unwrap(), plain);
    // Renamed (other id), re-kinded or bit-flipped objects are refused.
    assert!(open_object(&keys, kind, &[0; 32], file).is_err());
    let other_kind = if kind == ObjectKind::Index {
        ObjectKind::Snapshot
    } else {
        ObjectKind::Index
    };
    assert!(open_object(&keys, other_kind, &id, file).is_err());
    let mut bad = file.to_vec();
    bad[4] = other_kind as u8;
    assert!(
        open_object(&keys, other_kind, &id, &bad).is_err(),
        "the kind byte is authenticated"
    );
    let mut bad = file.to_vec();
    *bad.last_mut().unwrap() ^= 1;
    assert!(open_object(&keys, kind, &id, &bad).is_err());
}

#[test]
fn lock_body_and_sealed_lock() {
    let plain = read_vector("lock.bin");
    assert_eq!(&plain[..5], b"RMLK\x01");
    let l = LockBody::decode(&plain).unwrap();
    assert!(!l.exclusive);
    assert_eq!(l.hostname, "vector-host");
    assert_eq!(l.pid, 4242);
    assert_eq!(l.time, CREATED);
    assert_eq!(l.command, "");
    let v2 = l.encode();
    assert_eq!(&v2[..5], b"RMLK\x02");
    assert_eq!(LockBody::decode(&v2).unwrap(), l);
    // Version 3 (what rime writes): version 2's fields, then the holder's 32 bytes.
    let holder = rime_engine::id::LockId::from_bytes([0x77; 32]);
    let v3 = LockBody {
        holder: Some(holder),
        command: "backup".into(),
        ..l.clone()
    }
    .encode();
    assert_eq!(&v3[..5], b"RMLK\x03");
    assert_eq!(&v3[v3.len() - 32..], &[0x77; 32]);
    let mut as_v2 = v3[..v3.len() - 32].to_vec();
    as_v2[4] = 2;
    let d = LockBody::decode(&as_v2).unwrap();
    assert_eq!((d.command.as_str(), d.holder), ("backup", None));
    assert_eq!(LockBody::decode(&v3).unwrap().holder, Some(holder));
    // Version 4 (what rime writes): version 3's fields, then boot id and PID namespace.
    let scope = rime_engine::repo::lock::ProcessScope {
        boot_id: "b".into(),
        pid_namespace: "pid:[9]".into(),
    };
    let with_scope = LockBody {
        holder: Some(holder),
        scope: Some(scope.clone()),
        ..l.clone()
    };
    let v4 = with_scope.encode();
    assert_eq!(&v4[..5], b"RMLK\x04");
    assert_eq!(&v4[v4.len() - 10..], b"\x01b\x07pid:[9]");
    assert_eq!(LockBody::decode(&v4).unwrap(), with_scope);
    let sealed = read_vector("lock-sealed.bin");
    assert_eq!(reseal_check("lock-sealed.bin", LOCK_AAD, &sealed), plain);
}

#[test]
fn newer_versions_are_refused() {
    let mut c = read_vector("config.bin");
    c[4] = 2;
    assert_eq!(
        config::decode(&c).unwrap_err().kind(),
        ErrorKind::UnsupportedVersion
    );
    let mut k = read_vector("keyfile.bin");
    k[4] = 2;
    assert_eq!(
        keyfile::decode(&k).unwrap_err().kind(),
        ErrorKind::UnsupportedVersion
    );
    let plain = read_vector("snapshot.bin");
    let mut o = read_vector("snapshot-object.bin");
    o[5] = 2;
    let id = keys().object_id(&plain);
    assert_eq!(
        open_object(&keys(), ObjectKind::Snapshot, &id, &o)
            .unwrap_err()
            .kind(),
        ErrorKind::UnsupportedVersion
    );
}

// ---------------------------------------------------------------------------------------------
// The whole-repository fixture.

#[test]
fn repo_v1_fixture_opens_checks_and_restores() {
    let fixture = vectors_dir().join("repo-v1");
    assert!(
        fixture.join("config").is_file(),
        "missing fixture {}",
        fixture.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    copy_tree(&fixture, &repo_dir);
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(&repo_dir));
    // git keeps no empty directories: recreate data/00..ff, locks/ and the rest.
    storage.create().unwrap();

    let err = Repository::open(storage.clone(), Some(b"not the password"))
        .err()
        .expect("wrong password refused");
    assert_eq!(err.kind(), ErrorKind::WrongPassword);
    let repo = Repository::open(storage.clone(), Some(PASSWORD)).unwrap();
    let c = repo.config();
    assert_eq!(c.encryption, Encryption::Aes256Gcm);
    assert_eq!(c.chunker, ChunkerParams::DEFAULT);
    assert_eq!(
        config::decode(&storage.read(FileKind::Config, "config").unwrap())
            .unwrap()
            .version,
        1
    );

    let report = check(
        &repo,
        &CheckOptions {
            read_data: true,
            subset: None,
        },
    )
    .unwrap();
    assert!(report.ok(), "check found errors: {:?}", report.errors);
    assert_eq!(report.snapshots, 1);
    assert!(report.blobs_checked >= 5, "{report:?}");
    for o in storage.list(FileKind::Pack).unwrap() {
        let bytes = storage.read(FileKind::Pack, &o.name).unwrap();
        assert_eq!(blake3::hash(&bytes).to_hex().as_str(), o.name);
    }
    assert_eq!(MasterIndex::load(&repo).unwrap().index_files().len(), 1);

    let snaps = repo.list_snapshots().unwrap();
    assert_eq!(snaps.len(), 1);
    let (id, snap) = &snaps[0];
    let snap = snap.as_ref().unwrap();
    assert_eq!(snap.hostname, "vector-host");
    assert_eq!(snap.name, "v1-fixture");
    assert_eq!(snap.tags, ["fixture"]);
    assert_eq!(snap.parent, None);
    assert_eq!(snap.paths.len(), 1);
    assert!(
        snap.paths[0].ends_with("/rime-v1-fixture"),
        "{:?}",
        snap.paths
    );
    assert_eq!(snap.stats.files, 6);
    assert_eq!(snap.stats.dirs, 3);
    assert_eq!(snap.stats.others, 1);

    let target = tmp.path().join("restored");
    let opts = RestoreOptions {
        target: target.clone(),
        include: vec![],
        overwrite: false,
        ownership: Some(false),
        verify: true,
        sync: false,
        buffered: false,
    };
    restore(&repo, id, &opts, &NoProgress).unwrap();
    for (p, content) in fixture_files() {
        assert_eq!(fs::read(target.join(p)).unwrap(), content, "{p}");
    }
    assert_eq!(
        fs::read(target.join("docs/a-link.txt")).unwrap(),
        fixture_files()[2].1
    );
    assert_eq!(
        fs::read(target.join("sparse.bin")).unwrap(),
        fixture_sparse()
    );
    assert_eq!(
        fs::read_link(target.join("link")).unwrap(),
        Path::new("hello.txt")
    );
    let (a, b) = (
        fs::metadata(target.join("docs/a.txt")).unwrap(),
        fs::metadata(target.join("docs/a-link.txt")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "hard links are restored as links");
    assert_eq!(
        fs::metadata(target.join("hello.txt")).unwrap().mtime(),
        CREATED
    );
    assert!(
        !target.join("rime-v1-fixture").exists(),
        "a single directory's contents go straight into the target"
    );
}

#[test]
fn volume_vectors_decode_to_their_values() {
    let seg = read_vector("map-segment.bin");
    assert_eq!(MapSegment::decode(&seg, 1_052_672).unwrap(), map_segment());
    assert!(
        MapSegment::decode(&seg, 1_052_671).is_err(),
        "length mismatch must be refused"
    );
    assert_eq!(
        ChunkMap::decode(&read_vector("chunk-map.bin")).unwrap(),
        chunk_map()
    );
    assert_eq!(
        Snapshot::decode(&read_vector("snapshot-volume.bin")).unwrap(),
        volume_snapshot()
    );
    let tar = read_vector("snapshot-tar-level.bin");
    assert_eq!(Snapshot::decode(&tar).unwrap(), tar_level_snapshot());
    // The source field as SPEC 4.7 spells it out: variant 3, size 1052672, tar_size 1048576,
    // level 1, a chain of one id, "gzip", encrypted, one annotation.
    let mut source = vec![0x03, 0x80, 0xa0, 0x40, 0x80, 0x80, 0x40, 0x01, 0x01];
    source.extend([0x44; 32]);
    source.extend(b"\x04gzip\x01\x01\x0cfreezer.mode\x02fs");
    assert!(
        tar.windows(source.len()).any(|w| w == source),
        "TarLevel source bytes"
    );
    // The first bytes of a chunk map are its magic, as the spec's table says.
    assert_eq!(&read_vector("chunk-map.bin")[..4], b"RMAP");
    assert_eq!(&seg[..4], b"RSEG");
}
