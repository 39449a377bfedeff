//! Writes the seed corpus `fuzz/corpus/<target>/` from the format vectors
//! (`format-spec/vectors/`) plus a few inputs built here (unencrypted variants, framing of the
//! multi-part inputs). Deterministic apart from the random nonces of encrypted items, which are
//! taken from the vectors instead.
//!
//! ```text
//! cd fuzz && cargo run --example gen_corpus
//! ```

use std::path::{Path, PathBuf};

use rime_engine::format::blob::seal_blob;
use rime_engine::format::object::{seal_object, ObjectKind};
use rime_engine::format::pack::{encode_header, PackEntry};
use rime_engine::format::BlobType;
use rime_fuzz::{keys_plain, MASTER};

fn vector(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../format-spec/vectors").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn put(target: &str, name: &str, bytes: &[u8]) {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn hex32(s: &str) -> [u8; 32] {
    let v: Vec<u8> = (0..64).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect();
    v.try_into().unwrap()
}

/// `name = hex` lines of `keys.txt`.
fn vector_id(key: &str) -> [u8; 32] {
    let txt = String::from_utf8(vector("keys.txt")).unwrap();
    let line = txt.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("{key} not in keys.txt"));
    hex32(line.rsplit(' ').next().unwrap())
}

fn zstd3(d: &[u8]) -> Option<Vec<u8>> {
    zstd::bulk::compress(d, 3).ok()
}

fn main() {
    assert_eq!(MASTER, [7; 32], "the vectors' master secret");
    let k = keys_plain();
    let text = b"a small text blob, a small text blob, a small text blob\n".repeat(8);
    let raw = b"incompressible-ish 0123456789".to_vec();

    // pack_header: plaintext header, an encrypted pack (vectors), an unencrypted pack.
    put("pack_header", "header-plain", &vector("pack-header-plain.bin"));
    put("pack_header", "pack-encrypted", &vector("pack.bin"));
    put("pack_header", "header-empty", &[1, 0, 0, 0, 0]);
    let mut pack = Vec::new();
    let mut entries = Vec::new();
    for (ty, d) in [(BlobType::Data, &text), (BlobType::Tree, &raw)] {
        let s = seal_blob(k, ty, k.blob_id(d), d, zstd3);
        entries.push(PackEntry {
            ty,
            flags: s.flags,
            offset: pack.len() as u32,
            stored_len: s.bytes.len() as u32,
            raw_len: s.raw_len,
            id: s.id,
        });
        pack.extend_from_slice(&s.bytes);
    }
    pack.extend_from_slice(&encode_header(k, &entries));
    put("pack_header", "pack-unencrypted", &pack);

    put("index", "index-payload", &vector("index-payload.bin"));
    put("index", "index-empty", &[1, 0, 0, 0, 0, 0, 0, 0, 0]);

    put("tree", "tree", &vector("tree.bin"));
    put("tree", "tree-small", &vector("tree-small.bin"));
    put("tree", "tree-empty", &[0]);

    put("snapshot", "snapshot", &vector("snapshot.bin"));

    put("keyfile", "keyfile", &vector("keyfile.bin"));
    put("keyfile", "keyfile-none", &vector("keyfile-none.bin"));

    put("config", "config", &vector("config.bin"));
    put("config", "config-none", &vector("config-none.bin"));

    put("lock", "lock", &vector("lock.bin"));
    put("lock", "lock-sealed", &vector("lock-sealed.bin"));

    // object: mode | id | file. Encrypted ones from the vectors, unencrypted ones sealed here.
    let framed = |mode: u8, id: [u8; 32], file: &[u8]| {
        let mut v = vec![mode];
        v.extend_from_slice(&id);
        v.extend_from_slice(file);
        v
    };
    put(
        "object",
        "index-encrypted",
        &framed(1, vector_id("object_id(index-payload.bin)"), &vector("index-object.bin")),
    );
    put(
        "object",
        "snapshot-encrypted",
        &framed(3, vector_id("object_id(snapshot.bin)"), &vector("snapshot-object.bin")),
    );
    let (id, file) = seal_object(k, ObjectKind::Index, &vector("index-payload.bin"));
    put("object", "index-unencrypted", &framed(0, id, &file));
    let (id, file) = seal_object(k, ObjectKind::Snapshot, &vector("snapshot.bin"));
    put("object", "snapshot-unencrypted", &framed(2, id, &file));
    let (id, file) = seal_object(k, ObjectKind::Index, &[1, 0, 0, 0, 0, 0, 0, 0, 0]);
    put("object", "index-uncompressed", &framed(0, id, &file));

    // blob: type | flags | raw_len | id | stored, unencrypted keys.
    for (name, ty, d) in [
        ("data-compressed", BlobType::Data, &text),
        ("data-raw", BlobType::Data, &raw),
        ("tree", BlobType::Tree, &vector("tree.bin")),
    ] {
        let s = seal_blob(k, ty, k.blob_id(d), d, zstd3);
        let mut v = vec![ty as u8, s.flags.0];
        v.extend_from_slice(&s.raw_len.to_le_bytes());
        v.extend_from_slice(s.id.as_bytes());
        v.extend_from_slice(&s.bytes);
        put("blob", name, &v);
    }

    // restore_verify: repository choice, then operations (see the target's table).
    put("restore_verify", "intact-unencrypted", &[0]);
    put("restore_verify", "intact-encrypted", &[1]);
    put("restore_verify", "flip-in-blob", &[0, 5, 7, 0x10, 0x00, 0x01]);
    put("restore_verify", "flip-in-object", &[0, 0, 1, 0x40, 0x00, 0x00, 0x00, 0x80]);
    put("restore_verify", "delete", &[0, 3, 0]);
    put("restore_verify", "swap", &[1, 2, 0, 1]);
    put("restore_verify", "truncate", &[0, 1, 2, 0x20, 0, 0, 0]);
    put("restore_verify", "replace", &[0, 4, 3, 4, b'R', b'M', b'O', b'B']);
    put("restore_verify", "write-u32", &[0, 6, 1, 0xf0, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    put("restore_verify", "append", &[1, 7, 2, 3, 1, 2, 3]);
    println!("corpus written to {}/corpus", env!("CARGO_MANIFEST_DIR"));
}
