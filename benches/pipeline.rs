//! Criterion benchmarks of each stage of the backup pipeline, with throughput in bytes.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p rime-engine --bench pipeline
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p rime-engine --bench pipeline -- compress
//! ```
//!
//! Stages: chunking (FastCDC, sequential and parallel), hashing (keyed BLAKE3 blob ids, plain
//! BLAKE3 for comparison), compression (zstd 1/3/6 and decompression), encryption (AES-256-GCM),
//! blob sealing and opening end to end, pack encoding and decoding, the packer, the in-memory
//! index (load and lookups), and whole backups and restores of a 64 MiB directory through a
//! memory storage.
//!
//! Inputs are deterministic: xorshift64 output mixed with text-like data (words drawn from a
//! small vocabulary) in 64 KiB blocks, half and half, so zstd sees a realistic mix of
//! compressible and incompressible data. Each benchmark takes about 2.5 s (0.5 s warm-up, 10
//! samples over 2 s, no plots); the whole run takes about two minutes on two cores.
//!
//! Under `cargo test --all-targets` criterion runs every benchmark once; the inputs are then
//! smaller (8 MiB instead of 64 MiB), so the test run stays within a few seconds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{
    black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput,
};
use rime_engine::chunker::Chunker;
use rime_engine::crypto::{Aead, KdfParams, Keys, MasterSecret};
use rime_engine::format::blob::{open_blob, seal_blob, SealedBlob};
use rime_engine::format::config::ChunkerParams;
use rime_engine::format::index::IndexPack;
use rime_engine::format::pack::{decode_pack, encode_header, PackEntry};
use rime_engine::format::{BlobFlags, BlobType};
use rime_engine::id::{BlobId, PackId};
use rime_engine::ops::backup::{backup, BackupOptions};
use rime_engine::ops::restore::{restore, RestoreOptions};
use rime_engine::ops::NoProgress;
use rime_engine::repo::index::{write_index_file, MasterIndex};
use rime_engine::repo::packer::Packer;
use rime_engine::repo::{InitOptions, Repository};
use rime_engine::storage::MemoryStorage;

const MIB: usize = 1 << 20;

/// `cargo bench` passes `--bench`; `cargo test` runs the benchmarks once without it.
fn quick() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// Size of the large inputs (chunking, backup, restore).
fn large() -> usize {
    if quick() {
        8 * MIB
    } else {
        64 * MIB
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic inputs

struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = XorShift::new(seed);
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(n);
    out
}

const WORDS: &[&str] = &[
    "backup",
    "restore",
    "chunk",
    "index",
    "pack",
    "snapshot",
    "tree",
    "blob",
    "repository",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "on",
    "with",
    "as",
    "by",
    "that",
    "this",
    "from",
    "error",
    "warning",
    "info",
    "debug",
    "file",
    "directory",
    "size",
    "time",
    "user",
    "group",
    "mode",
    "offset",
    "length",
    "data",
    "key",
    "value",
    "config",
    "server",
    "client",
    "request",
    "response",
    "status",
    "200",
    "404",
    "500",
    "GET",
    "POST",
    "/var/log",
    "/home/user",
    "2026-11-01",
    "12:34:56",
    "ok",
    "failed",
    "retry",
    "timeout",
];

/// Text-like bytes: words from a small vocabulary, separated by spaces and newlines
/// (compresses about 3-4x with zstd).
fn text_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = XorShift::new(seed);
    let mut out = Vec::with_capacity(n + 32);
    while out.len() < n {
        let r = rng.next();
        out.extend_from_slice(WORDS[(r % WORDS.len() as u64) as usize].as_bytes());
        out.push(if (r >> 32) & 15 == 0 { b'\n' } else { b' ' });
    }
    out.truncate(n);
    out
}

/// Half random, half text, in 64 KiB blocks chosen by coin flip.
fn mixed_bytes(n: usize, seed: u64) -> Vec<u8> {
    const BLOCK: usize = 64 << 10;
    let mut rng = XorShift::new(seed ^ 0xA5A5);
    let mut out = Vec::with_capacity(n + BLOCK);
    let mut i = 0u64;
    while out.len() < n {
        let block = if rng.next() & 1 == 0 {
            random_bytes(BLOCK, seed + i)
        } else {
            text_bytes(BLOCK, seed + i)
        };
        out.extend_from_slice(&block);
        i += 1;
    }
    out.truncate(n);
    out
}

fn keys(encrypted: bool) -> Keys {
    Keys::derive(&MasterSecret([7; 32]), encrypted)
}

fn zstd3(d: &[u8]) -> Option<Vec<u8>> {
    zstd::bulk::compress(d, 3).ok()
}

// ---------------------------------------------------------------------------------------------
// Stages

fn chunking(c: &mut Criterion) {
    let data = mixed_bytes(large(), 1);
    let chunker = Chunker::new(ChunkerParams::DEFAULT, keys(true).chunker_seed);
    let mut g = c.benchmark_group("chunking");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("cut_points", |b| {
        b.iter(|| chunker.cut_points(black_box(&data)))
    });
    g.bench_function("cut_points_parallel_16MiB", |b| {
        b.iter(|| chunker.cut_points_parallel(black_box(&data), 16 << 20))
    });
    g.finish();
}

fn hashing(c: &mut Criterion) {
    let chunk = mixed_bytes(MIB, 2);
    let k = keys(true);
    let mut g = c.benchmark_group("hashing_1MiB");
    g.throughput(Throughput::Bytes(chunk.len() as u64));
    g.bench_function("blob_id_keyed_blake3", |b| {
        b.iter(|| k.blob_id(black_box(&chunk)))
    });
    g.bench_function("blake3_hash_unkeyed", |b| {
        b.iter(|| blake3::hash(black_box(&chunk)))
    });
    g.finish();
}

fn compression(c: &mut Criterion) {
    let inputs = [
        ("text", text_bytes(MIB, 3)),
        ("mixed", mixed_bytes(MIB, 3)),
        ("random", random_bytes(MIB, 3)),
    ];
    let mut g = c.benchmark_group("zstd_compress_1MiB");
    g.throughput(Throughput::Bytes(MIB as u64));
    for (name, data) in &inputs {
        for level in [1, 3, 6] {
            g.bench_with_input(
                BenchmarkId::new(*name, format!("level{level}")),
                data,
                |b, d| b.iter(|| zstd::bulk::compress(black_box(d), level).unwrap()),
            );
        }
    }
    g.finish();
    let mut g = c.benchmark_group("zstd_decompress_1MiB");
    g.throughput(Throughput::Bytes(MIB as u64));
    for (name, data) in &inputs {
        let compressed = zstd::bulk::compress(data, 3).unwrap();
        g.bench_with_input(BenchmarkId::new(*name, "level3"), &compressed, |b, z| {
            b.iter(|| zstd::bulk::decompress(black_box(z), MIB).unwrap())
        });
    }
    g.finish();
}

fn encryption(c: &mut Criterion) {
    let chunk = random_bytes(MIB, 4);
    let aead = Aead::new(&[1; 32]);
    let aad = [9u8; 38];
    let sealed = aead.seal(&aad, &chunk);
    let mut g = c.benchmark_group("aes256gcm_1MiB");
    g.throughput(Throughput::Bytes(chunk.len() as u64));
    g.bench_function("seal", |b| {
        b.iter(|| aead.seal(black_box(&aad), black_box(&chunk)))
    });
    g.bench_function("open", |b| {
        b.iter(|| aead.open(black_box(&aad), black_box(&sealed)).unwrap())
    });
    g.finish();
}

/// Hash + compress (zstd 3) + encrypt, and the inverse with verification, per 1 MiB chunk.
fn blobs(c: &mut Criterion) {
    let inputs = [
        ("mixed", mixed_bytes(MIB, 5)),
        ("random", random_bytes(MIB, 5)),
    ];
    let mut g = c.benchmark_group("blob_1MiB");
    g.throughput(Throughput::Bytes(MIB as u64));
    for encrypted in [true, false] {
        let k = keys(encrypted);
        let mode = if encrypted {
            "encrypted"
        } else {
            "unencrypted"
        };
        for (name, data) in &inputs {
            g.bench_with_input(
                BenchmarkId::new(format!("seal_{mode}"), name),
                data,
                |b, d| {
                    b.iter(|| {
                        let id = k.blob_id(d);
                        seal_blob(&k, BlobType::Data, id, black_box(d), zstd3)
                    })
                },
            );
            let id = k.blob_id(data);
            let s = seal_blob(&k, BlobType::Data, id, data, zstd3);
            g.bench_with_input(
                BenchmarkId::new(format!("open_{mode}"), name),
                &s,
                |b, s| {
                    b.iter(|| {
                        open_blob(&k, s.ty, s.flags, s.raw_len, &s.id, black_box(&s.bytes)).unwrap()
                    })
                },
            );
        }
    }
    g.finish();
}

fn entry_of(s: &SealedBlob, offset: u32) -> PackEntry {
    PackEntry {
        ty: s.ty,
        flags: s.flags,
        offset,
        stored_len: u32::try_from(s.bytes.len()).unwrap(),
        raw_len: s.raw_len,
        id: s.id,
    }
}

/// Assemble a pack the way the packer lays it out: blobs, sealed header, trailer.
fn build_pack(k: &Keys, sealed: &[SealedBlob]) -> Vec<u8> {
    let total: usize = sealed.iter().map(|s| s.bytes.len()).sum();
    let mut pack = Vec::with_capacity(total + sealed.len() * 64 + 64);
    let mut entries = Vec::with_capacity(sealed.len());
    for s in sealed {
        entries.push(entry_of(s, u32::try_from(pack.len()).unwrap()));
        pack.extend_from_slice(&s.bytes);
    }
    pack.extend_from_slice(&encode_header(k, &entries));
    pack
}

fn packing(c: &mut Criterion) {
    let k = keys(true);
    let n = if quick() { 4 } else { 32 };
    let sealed: Vec<SealedBlob> = (0..n)
        .map(|i| {
            let d = mixed_bytes(MIB, 100 + i as u64);
            seal_blob(&k, BlobType::Data, k.blob_id(&d), &d, zstd3)
        })
        .collect();
    let pack = build_pack(&k, &sealed);
    assert_eq!(decode_pack(&k, &pack).unwrap().len(), n);
    let mut g = c.benchmark_group(format!("pack_{n}x1MiB"));
    g.throughput(Throughput::Bytes(pack.len() as u64));
    g.bench_function("encode", |b| b.iter(|| build_pack(&k, black_box(&sealed))));
    g.bench_function("decode_and_open_all_blobs", |b| {
        b.iter(|| {
            let entries = decode_pack(&k, black_box(&pack)).unwrap();
            for e in &entries {
                let stored = &pack[e.offset as usize..(e.offset + e.stored_len) as usize];
                black_box(open_blob(&k, e.ty, e.flags, e.raw_len, &e.id, stored).unwrap());
            }
        })
    });
    // The repository's packer: pack assembly, pack ids (BLAKE3 of each pack), writes to a
    // memory storage on two writer threads, index file. 64 KiB packs would flush per blob, so
    // the repository keeps the default 32 MiB target.
    g.bench_function("packer_to_memory_storage", |b| {
        b.iter_batched(
            || {
                let repo = test_repo(rime_engine::format::config::Encryption::Aes256Gcm);
                let blobs: Vec<SealedBlob> = sealed
                    .iter()
                    .map(|s| SealedBlob {
                        id: s.id,
                        ty: s.ty,
                        flags: s.flags,
                        raw_len: s.raw_len,
                        bytes: s.bytes.clone(),
                    })
                    .collect();
                (repo, blobs)
            },
            |(repo, blobs)| {
                let p = Packer::new(&repo, 2);
                for s in blobs {
                    p.add(s).unwrap();
                }
                p.finish().unwrap();
                repo // dropped outside the measurement
            },
            BatchSize::PerIteration,
        )
    });
    // Only the header is read here: count blobs, not bytes.
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("decode_header", |b| {
        b.iter(|| decode_pack(&k, black_box(&pack)).unwrap())
    });
    g.finish();
}

fn test_repo(encryption: rime_engine::format::config::Encryption) -> Repository {
    let opts = InitOptions {
        encryption,
        kdf: KdfParams::TESTING,
        ..Default::default()
    };
    Repository::init(Arc::new(MemoryStorage::new()), b"pw", &opts).unwrap()
}

/// The in-memory index: load from index files (decrypt, decompress, decode, sort) and lookups.
fn index(c: &mut Criterion) {
    let repo = test_repo(rime_engine::format::config::Encryption::Aes256Gcm);
    // 256 Ki blobs (a 256 GiB repository at 1 MiB chunks) over 8 index files of 32 packs.
    let (files, packs_per_file, blobs_per_pack) = if quick() { (2, 4, 256) } else { (8, 32, 1024) };
    let mut rng = XorShift::new(6);
    let mut id = || {
        let mut b = [0u8; 32];
        for w in b.chunks_mut(8) {
            w.copy_from_slice(&rng.next().to_le_bytes());
        }
        b
    };
    let mut known = Vec::new();
    let mut plain_bytes = 0usize;
    for _ in 0..files {
        let packs: Vec<IndexPack> = (0..packs_per_file)
            .map(|_| {
                let pid = PackId(id());
                let mut off = 0u32;
                let blobs = (0..blobs_per_pack)
                    .map(|_| {
                        let bid = BlobId(id());
                        known.push(bid);
                        let e = PackEntry {
                            ty: BlobType::Data,
                            flags: BlobFlags(1),
                            offset: off,
                            stored_len: 700_000,
                            raw_len: 1_048_576,
                            id: bid,
                        };
                        off += 700_000;
                        e
                    })
                    .collect();
                IndexPack { id: pid, blobs }
            })
            .collect();
        plain_bytes += rime_engine::format::index::IndexFile {
            supersedes: vec![],
            packs: packs.clone(),
        }
        .encode()
        .len();
        write_index_file(&repo, packs).unwrap();
    }
    let blobs = known.len();
    let mut g = c.benchmark_group(format!("index_{blobs}_blobs"));
    g.throughput(Throughput::Bytes(plain_bytes as u64));
    g.bench_function("load", |b| {
        b.iter(|| MasterIndex::load(black_box(&repo)).unwrap())
    });
    let idx = MasterIndex::load(&repo).unwrap();
    assert_eq!(idx.blob_count(), blobs);
    let hits: Vec<BlobId> = known
        .iter()
        .step_by((blobs / 1000).max(1))
        .copied()
        .take(1000)
        .collect();
    let misses: Vec<BlobId> = (0..1000).map(|_| BlobId(id())).collect();
    g.throughput(Throughput::Elements(hits.len() as u64));
    g.bench_function("lookup_hit", |b| {
        b.iter(|| {
            hits.iter()
                .filter(|h| idx.lookup(black_box(h)).is_some())
                .count()
        })
    });
    g.throughput(Throughput::Elements(misses.len() as u64));
    g.bench_function("contains_miss", |b| {
        b.iter(|| misses.iter().filter(|h| idx.contains(black_box(h))).count())
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Whole backups and restores

/// Write ~200 files totalling `total` bytes (sizes from 1 KiB to several MiB) under `dir`,
/// in a few sub-directories. Returns the bytes written.
fn write_tree(dir: &Path, total: usize) -> u64 {
    let data = mixed_bytes(total, 7);
    let mut rng = XorShift::new(8);
    // Skewed sizes: most files are small, a few are large, as in real trees.
    let weights: Vec<u64> = (0..200)
        .map(|_| 1 + (rng.next() % 1000).pow(3) / 1000)
        .collect();
    let sum: u64 = weights.iter().sum();
    let mut start = 0usize;
    for (i, w) in weights.iter().enumerate() {
        let len = if i + 1 == weights.len() {
            total - start
        } else {
            (total as u64 * w / sum) as usize
        };
        let sub = dir.join(format!("d{}", i % 7));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i:03}.dat")), &data[start..start + len]).unwrap();
        start += len;
    }
    start as u64
}

fn backup_restore(c: &mut Criterion) {
    use rime_engine::format::config::Encryption;
    let src_root = tempfile::tempdir().unwrap();
    let src = src_root.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let bytes = write_tree(&src, large());
    let opts = BackupOptions::new(vec![src.clone()]);

    let mut g = c.benchmark_group(format!("backup_{}MiB_200_files", bytes >> 20));
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    for (mode, enc) in [
        ("encrypted", Encryption::Aes256Gcm),
        ("unencrypted", Encryption::None),
    ] {
        g.bench_function(format!("first_{mode}"), |b| {
            b.iter_batched(
                || test_repo(enc),
                |repo| {
                    backup(&repo, &opts, &NoProgress).unwrap();
                    repo // dropped outside the measurement
                },
                BatchSize::PerIteration,
            )
        });
    }
    // A second backup with nothing changed: every file matches the parent and is not read.
    let repo = test_repo(Encryption::Aes256Gcm);
    let first = backup(&repo, &opts, &NoProgress).unwrap();
    let mut unchanged = opts.clone();
    unchanged.parent = Some(first.id);
    g.bench_function("unchanged_encrypted", |b| {
        b.iter(|| backup(&repo, &unchanged, &NoProgress).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group(format!("restore_{}MiB_200_files", bytes >> 20));
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    let scratch = tempfile::tempdir().unwrap();
    let mut n = 0u32;
    let mut next_target = || -> PathBuf {
        n += 1;
        scratch.path().join(format!("r{n}"))
    };
    g.bench_function("encrypted", |b| {
        b.iter_batched(
            || RestoreOptions {
                target: next_target(),
                include: vec![],
                overwrite: false,
                ownership: Some(false),
                verify: false,
                sync: false,
                buffered: false,
            },
            |ro| {
                restore(&repo, &first.id, &ro, &NoProgress).unwrap();
                ro.target
            },
            BatchSize::PerIteration,
        );
        // Keep the disk use bounded: remove the restored trees after each batch of samples.
        for e in std::fs::read_dir(scratch.path()).unwrap() {
            std::fs::remove_dir_all(e.unwrap().path()).unwrap();
        }
    });
    g.finish();
    // Sanity: one restore reproduces the source.
    let check = RestoreOptions {
        target: next_target(),
        include: vec![],
        overwrite: false,
        ownership: Some(false),
        verify: true,
        sync: false,
        buffered: false,
    };
    restore(&repo, &first.id, &check, &NoProgress).unwrap();
    let a = std::fs::read(src.join("d3/f010.dat")).unwrap();
    let b = std::fs::read(check.target.join("d3/f010.dat")).unwrap();
    assert!(a == b, "restored content differs");
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .without_plots()
}

criterion_group! {
    name = stages;
    config = config();
    targets = chunking, hashing, compression, encryption, blobs, packing, index, backup_restore
}
criterion_main!(stages);
