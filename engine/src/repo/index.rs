//! The in-memory index: every blob's pack and position, in one sorted vector.
//!
//! 52 bytes per blob (32-byte id, pack number, offset, two lengths, type, flags), no per-entry
//! allocation and no hash-table slack: 1 million chunks (about 1 TiB at 1 MiB chunks) cost
//! 52 MB, plus half a byte per blob for the bucket table that makes lookups two cache misses
//! (the table slot, then the few entries of its bucket) instead of a binary search's 17 or so.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::format::index::{IndexFile, IndexPack};
use crate::format::object::{open_object, seal_object, ObjectKind};
use crate::format::pack::PackEntry;
use crate::format::{BlobFlags, BlobType};
use crate::id::{BlobId, IndexId, PackId};
use crate::repo::Repository;
use crate::storage::FileKind;

#[derive(Clone, Copy)]
struct Entry {
    id: [u8; 32],
    pack: u32,
    offset: u32,
    stored_len: u32,
    raw_len: u32,
    ty: u8,
    flags: u8,
}

const _: () = assert!(std::mem::size_of::<Entry>() <= 52);

#[derive(Default)]
pub struct MasterIndex {
    packs: Vec<PackId>,
    entries: Vec<Entry>,
    files: Vec<IndexId>,
    /// `buckets[b]` is the first entry whose id starts with the `bucket_bits`-bit prefix `b`
    /// (one more slot at the end: the entry count). Ids are uniformly random, so a bucket
    /// holds about 4 entries.
    buckets: Vec<u32>,
    bucket_bits: u32,
    /// Index files that were listed but could not be read or decoded (see [`Self::damaged`]).
    damaged: Vec<DamagedIndexFile>,
}

/// An index file that cannot be read or decoded (truncated, bit flip): its packs are looked up
/// nowhere until `rime repair` rebuilds the index from the pack headers.
#[derive(Debug, Clone)]
pub struct DamagedIndexFile {
    pub id: IndexId,
    /// Why it could not be read.
    pub error: String,
}

impl std::fmt::Display for DamagedIndexFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "index file {} is damaged ({}); the blobs it lists are looked up nowhere: run `rime repair` to rebuild the index from the packs",
            self.id, self.error
        )
    }
}

impl MasterIndex {
    /// Read and merge all index files (in parallel).
    ///
    /// A prune replaces index files while others read them: it writes the new ones, then
    /// removes the old. A single directory listing running meanwhile may miss both a new file
    /// (created behind the listing's position) and the old one it replaces (removed ahead of
    /// it). So the directory is listed twice and the union read: a replacement written before
    /// an old file vanished from the first listing was there before the second began. A listed
    /// file that is gone when read was replaced after both listings: list again (its
    /// replacement exists by then).
    ///
    /// An index file that cannot be decoded does not stop the load: the index is redundant (the
    /// pack headers say the same), so reading commands go on without it and backups store again
    /// what they cannot find. It is listed in [`Self::damaged`] and noted as a warning on the
    /// repository ([`Repository::warnings`]); commands that delete packs must refuse
    /// ([`Self::refuse_if_damaged`]), since a pack listed only there would look unused.
    pub fn load(repo: &Repository) -> Result<MasterIndex> {
        let mut attempt = 0;
        loop {
            match Self::load_once(repo)? {
                Some(idx) => return Ok(idx),
                None if attempt < 10 => attempt += 1,
                None => {
                    return Err(crate::Error::new(
                        crate::ErrorKind::Unavailable,
                        format!(
                            "index files of {} keep vanishing while being read (a prune rewriting them?): try again",
                            repo.storage().location()
                        ),
                    ))
                }
            }
        }
    }

    /// One attempt; `None` if a listed file vanished before it was read.
    fn load_once(repo: &Repository) -> Result<Option<MasterIndex>> {
        let mut names: Vec<String> = repo
            .storage()
            .list(FileKind::Index)?
            .into_iter()
            .chain(repo.storage().list(FileKind::Index)?)
            .map(|o| o.name)
            .collect();
        names.sort();
        names.dedup();
        let files: Vec<Option<(IndexId, Result<IndexFile>)>> = names
            .par_iter()
            .map(|name| {
                let id = IndexId::from_hex(name)?;
                match read_index_file(repo, &id) {
                    Ok(f) => Ok(Some((id, Ok(f)))),
                    Err(e) if e.kind() == crate::ErrorKind::MissingObject => Ok(None),
                    Err(e) if e.kind() == crate::ErrorKind::Corrupt => Ok(Some((id, Err(e)))),
                    Err(e) => Err(e),
                }
            })
            .collect::<Result<_>>()?;
        if files.iter().any(Option::is_none) {
            return Ok(None);
        }
        let mut idx = MasterIndex::default();
        for (id, f) in files.into_iter().flatten() {
            match f {
                Ok(f) => {
                    idx.files.push(id);
                    for p in f.packs {
                        idx.add_pack(&p);
                    }
                }
                Err(e) => {
                    let d = DamagedIndexFile {
                        id,
                        error: e.to_string(),
                    };
                    repo.note_warning(d.to_string());
                    idx.damaged.push(d);
                }
            }
        }
        idx.finish();
        Ok(Some(idx))
    }

    /// Index files that could not be read or decoded: the blobs they list are missing here.
    pub fn damaged(&self) -> &[DamagedIndexFile] {
        &self.damaged
    }

    /// Fails (`Corrupt`) if an index file is damaged: an operation that deletes packs (`what`)
    /// would take a pack listed only in that file for unused.
    pub fn refuse_if_damaged(&self, what: &str) -> Result<()> {
        match self.damaged.first() {
            None => Ok(()),
            Some(d) => Err(Error::corrupt(format!(
                "{what} refused: {d} first ({} damaged index file(s); a pack listed only there would look unused and be deleted)",
                self.damaged.len()
            ))),
        }
    }

    /// A note for a blob this index does not have: when index files are damaged, the blob may be
    /// listed in one of them (named, up to three), and repair would find it again.
    pub fn missing_hint(&self) -> String {
        if self.damaged.is_empty() {
            return String::new();
        }
        let mut names: Vec<String> = self.damaged.iter().take(3).map(|d| d.id.to_hex()).collect();
        if self.damaged.len() > 3 {
            names.push(format!("and {} more", self.damaged.len() - 3));
        }
        format!(
            " (damaged index file(s) {} may list it: run `rime repair` to rebuild the index from the packs)",
            names.join(", ")
        )
    }

    /// The names of the index files stored now.
    pub fn index_file_ids(repo: &Repository) -> Result<Vec<IndexId>> {
        repo.storage()
            .list(FileKind::Index)?
            .iter()
            .map(|o| IndexId::from_hex(&o.name))
            .collect()
    }

    /// An index of the given packs only (what repair would write).
    pub fn from_packs(packs: &[IndexPack]) -> MasterIndex {
        let mut idx = MasterIndex::default();
        for p in packs {
            idx.add_pack(p);
        }
        idx.finish();
        idx
    }

    fn add_pack(&mut self, p: &IndexPack) {
        let n = u32::try_from(self.packs.len()).expect("fewer than 2^32 packs");
        self.packs.push(p.id);
        self.entries.extend(p.blobs.iter().map(|b| Entry {
            id: b.id.0,
            pack: n,
            offset: b.offset,
            stored_len: b.stored_len,
            raw_len: b.raw_len,
            ty: b.ty as u8,
            flags: b.flags.0,
        }));
    }

    fn finish(&mut self) {
        self.entries
            .par_sort_unstable_by(|a, b| a.id.cmp(&b.id).then(a.pack.cmp(&b.pack)));
        // A blob stored twice (two concurrent backups) keeps one location.
        self.entries.dedup_by(|a, b| a.id == b.id);
        self.entries.shrink_to_fit();
        self.build_buckets();
    }

    fn build_buckets(&mut self) {
        let n = self.entries.len();
        // About 4 entries per bucket: 2^bits >= n / 4.
        let bits = if n < 8 {
            0
        } else {
            (usize::BITS - (n / 4).leading_zeros()).min(32)
        };
        let mut buckets = Vec::with_capacity((1usize << bits) + 1);
        let mut i = 0usize;
        for b in 0..(1u64 << bits) {
            while i < n && bucket_of(prefix(&self.entries[i].id), bits) < b {
                i += 1;
            }
            buckets.push(i as u32);
        }
        buckets.push(n as u32);
        self.buckets = buckets;
        self.bucket_bits = bits;
    }

    fn find(&self, id: &BlobId) -> Option<&Entry> {
        self.find_pos(id).map(|i| &self.entries[i])
    }

    fn find_pos(&self, id: &BlobId) -> Option<usize> {
        // Entries are sorted by id, hence by its first 8 bytes read big-endian: the bucket of
        // those bytes' top bits bounds the search to a few entries, compared as one integer
        // each before the full id is checked.
        let e = &self.entries;
        if e.is_empty() {
            return None;
        }
        let key = prefix(&id.0);
        let b = bucket_of(key, self.bucket_bits) as usize;
        let (lo, hi) = (self.buckets[b] as usize, self.buckets[b + 1] as usize);
        let i = lo + e[lo..hi].partition_point(|x| prefix(&x.id) < key);
        e[i..hi]
            .iter()
            .take_while(|x| prefix(&x.id) == key)
            .position(|x| x.id == id.0)
            .map(|k| i + k)
    }

    /// The position of a blob in the sorted entries (0..blob_count): lets prune keep one bit
    /// per stored blob instead of a set of ids.
    pub fn position(&self, id: &BlobId) -> Option<usize> {
        self.find_pos(id)
    }

    /// The pack number (an index into [`Self::packs`]) and entry at a position.
    pub fn at(&self, pos: usize) -> (usize, PackEntry) {
        let e = &self.entries[pos];
        (e.pack as usize, to_pack_entry(e))
    }

    pub fn contains(&self, id: &BlobId) -> bool {
        self.find(id).is_some()
    }

    pub fn lookup(&self, id: &BlobId) -> Option<(PackId, PackEntry)> {
        self.find(id)
            .map(|e| (self.packs[e.pack as usize], to_pack_entry(e)))
    }

    pub fn blob_count(&self) -> usize {
        self.entries.len()
    }

    pub fn packs(&self) -> &[PackId] {
        &self.packs
    }

    pub fn index_files(&self) -> &[IndexId] {
        &self.files
    }

    /// All blobs, with their pack.
    pub fn iter(&self) -> impl Iterator<Item = (PackId, PackEntry)> + '_ {
        self.entries
            .iter()
            .filter_map(move |e| self.lookup(&BlobId(e.id)))
    }

    /// Bytes of memory held by the index.
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.packs.capacity() * 32
            + self.buckets.capacity() * 4
    }
}

fn to_pack_entry(e: &Entry) -> PackEntry {
    PackEntry {
        // Validated on decode of the index file.
        ty: BlobType::from_u8(e.ty).unwrap_or(BlobType::Data),
        flags: BlobFlags(e.flags),
        offset: e.offset,
        stored_len: e.stored_len,
        raw_len: e.raw_len,
        id: BlobId(e.id),
    }
}

/// The top `bits` bits of an id prefix (0 when there are no buckets).
fn bucket_of(prefix: u64, bits: u32) -> u64 {
    if bits == 0 {
        0
    } else {
        prefix >> (64 - bits)
    }
}

fn prefix(id: &[u8; 32]) -> u64 {
    u64::from_be_bytes(id[..8].try_into().expect("8 bytes"))
}

/// Write one index file listing `packs`; returns its id.
pub fn write_index_file(repo: &Repository, packs: Vec<IndexPack>) -> Result<IndexId> {
    if packs.is_empty() {
        return Err(Error::invalid("refusing to write an empty index file"));
    }
    let f = IndexFile {
        supersedes: vec![],
        packs,
    };
    let (id, bytes) = seal_object(repo.keys(), ObjectKind::Index, &f.encode());
    let id = IndexId(id);
    repo.storage()
        .write(FileKind::Index, &id.to_hex(), &bytes)?;
    Ok(id)
}

/// [`write_index_file`] under a name no index file has now: the packs are tried in each
/// rotation of their order (the order changes the bytes, hence the name, not the meaning).
/// `None` if every order names a file that exists.
///
/// Why: a prune rewriting the index removes every index file it loaded, and a file with the
/// same packs and entries as one of those has its name. A backup indexing marked packs again
/// (`pending::protect_marked`) in a file identical to the one that first named them would
/// have that protection removed with it, and the packs deleted later under its snapshot.
pub fn write_new_index_file(
    repo: &Repository,
    mut packs: Vec<IndexPack>,
) -> Result<Option<IndexId>> {
    for _ in 0..packs.len() {
        let f = IndexFile {
            supersedes: vec![],
            packs,
        };
        let id = IndexId(repo.keys().object_id(&f.encode()));
        packs = f.packs;
        match repo.storage().size(FileKind::Index, &id.to_hex()) {
            Ok(_) => packs.rotate_left(1),
            Err(e) if e.kind() == crate::ErrorKind::MissingObject => {
                return write_index_file(repo, packs).map(Some)
            }
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Read and decode one index file (from another copy if the first is damaged).
pub fn read_index_file(repo: &Repository, id: &IndexId) -> Result<IndexFile> {
    repo.read_verified(
        FileKind::Index,
        &id.to_hex(),
        &format!("index {}", id.short()),
        |bytes| {
            let plain = open_object(repo.keys(), ObjectKind::Index, &id.0, bytes)?;
            IndexFile::decode(&plain).map_err(|e| e.within(format!("index {}", id.short())))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::pack::PackEntry;

    fn entry(id: [u8; 32], offset: u32) -> PackEntry {
        PackEntry {
            ty: BlobType::Data,
            flags: BlobFlags(0),
            offset,
            stored_len: 10,
            raw_len: 10,
            id: BlobId(id),
        }
    }

    #[test]
    fn lookup_finds_every_entry_and_nothing_else() {
        let mut idx = MasterIndex::default();
        let mut ids = Vec::new();
        for p in 0..20u32 {
            let blobs: Vec<PackEntry> = (0..500u32)
                .map(|i| {
                    let mut id = *blake3::hash(&(p * 1000 + i).to_le_bytes()).as_bytes();
                    if i % 50 == 0 {
                        id[..8].copy_from_slice(&[0xff; 8]); // shared prefixes and extreme keys
                    }
                    if i % 77 == 0 {
                        id[..8].copy_from_slice(&[0; 8]);
                    }
                    ids.push(id);
                    entry(id, i * 10)
                })
                .collect();
            idx.add_pack(&IndexPack {
                id: PackId([p as u8; 32]),
                blobs,
            });
        }
        idx.finish();
        for id in &ids {
            let (_, e) = idx.lookup(&BlobId(*id)).expect("indexed blob found");
            assert_eq!(e.id.0, *id);
        }
        for i in 0..1000u32 {
            let mut id = *blake3::hash(&(i + 7_000_000).to_le_bytes()).as_bytes();
            if i % 3 == 0 {
                id[..8].copy_from_slice(&[0xff; 8]);
            }
            assert!(!idx.contains(&BlobId(id)));
        }
        assert!(!MasterIndex::default().contains(&BlobId([1; 32])));
    }

    #[test]
    fn lookup_works_at_every_small_size() {
        for n in 0..40u32 {
            let ids: Vec<[u8; 32]> = (0..n)
                .map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes())
                .collect();
            let idx = MasterIndex::from_packs(&[IndexPack {
                id: PackId([1; 32]),
                blobs: ids.iter().map(|id| entry(*id, 0)).collect(),
            }]);
            for id in &ids {
                assert!(idx.contains(&BlobId(*id)), "n = {n}");
            }
            assert!(!idx.contains(&BlobId([0x55; 32])), "n = {n}");
        }
    }
}
