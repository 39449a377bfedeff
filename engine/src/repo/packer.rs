//! Collects sealed blobs into packs and writes them on background threads.
//!
//! Write ordering (the crash-safety invariant): a pack is fully written before any index file
//! names it, and index files are written before the snapshot that needs them. Index files are
//! flushed every few packs, so a killed backup leaves indexed packs that the next run reuses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::format::blob::SealedBlob;
use crate::format::index::IndexPack;
use crate::format::pack::{encode_header, PackEntry};
use crate::format::BlobType;
use crate::id::PackId;
use crate::repo::index::write_index_file;
use crate::repo::Repository;
use crate::storage::FileKind;

/// Packs between index flushes.
const INDEX_EVERY_PACKS: usize = 8;

#[derive(Default)]
struct Builder {
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

#[derive(Default)]
struct Written {
    /// Packs written but not yet in an index file.
    pending: Vec<IndexPack>,
    packs: u64,
    index_files: u64,
}

struct Shared {
    repo: Repository,
    written: Mutex<Written>,
    error: Mutex<Option<Error>>,
    bytes_written: AtomicU64,
}

pub struct Packer {
    shared: Arc<Shared>,
    data: Mutex<Builder>,
    tree: Mutex<Builder>,
    data_target: usize,
    tree_target: usize,
    tx: Option<Sender<Builder>>,
    writers: Vec<JoinHandle<()>>,
}

#[derive(Debug, Default, Clone)]
pub struct PackerStats {
    pub packs: u64,
    pub index_files: u64,
    pub bytes_written: u64,
}

impl Packer {
    pub fn new(repo: &Repository, writer_threads: usize) -> Packer {
        let shared = Arc::new(Shared {
            repo: repo.clone(),
            written: Mutex::new(Written::default()),
            error: Mutex::new(None),
            bytes_written: AtomicU64::new(0),
        });
        // One finished pack may wait while each writer writes one: with the pack being filled,
        // memory holds at most (2 + writers) packs per blob type.
        let (tx, rx) = bounded::<Builder>(1);
        let writers = (0..writer_threads.max(1))
            .map(|_| {
                let rx = rx.clone();
                let shared = shared.clone();
                std::thread::spawn(move || {
                    for b in rx {
                        if shared.error.lock().is_some() {
                            continue; // drain without writing after a failure
                        }
                        if let Err(e) = write_pack(&shared, b) {
                            shared.error.lock().get_or_insert(e);
                        }
                    }
                })
            })
            .collect();
        let cfg = repo.config();
        Packer {
            shared,
            data: Mutex::new(Builder::default()),
            tree: Mutex::new(Builder::default()),
            data_target: cfg.data_pack_size as usize,
            tree_target: cfg.tree_pack_size as usize,
            tx: Some(tx),
            writers,
        }
    }

    /// Fails fast if a background write already failed.
    pub fn check(&self) -> Result<()> {
        match &*self.shared.error.lock() {
            Some(e) => Err(Error::new(e.kind(), e.to_string())),
            None => Ok(()),
        }
    }

    pub fn add(&self, blob: SealedBlob) -> Result<()> {
        self.check()?;
        let (slot, target) = match blob.ty {
            BlobType::Data => (&self.data, self.data_target),
            BlobType::Tree => (&self.tree, self.tree_target),
        };
        let full = {
            let mut b = slot.lock();
            let offset = u32::try_from(b.buf.len()).expect("packs stay below 4 GiB");
            b.entries.push(PackEntry {
                ty: blob.ty,
                flags: blob.flags,
                offset,
                stored_len: blob.bytes.len() as u32,
                raw_len: blob.raw_len,
                id: blob.id,
            });
            if b.buf.capacity() == 0 {
                b.buf.reserve(target + target / 8);
            }
            b.buf.extend_from_slice(&blob.bytes);
            (b.buf.len() >= target).then(|| std::mem::take(&mut *b))
        };
        if let Some(b) = full {
            self.send(b)?;
        }
        Ok(())
    }

    fn send(&self, b: Builder) -> Result<()> {
        self.tx
            .as_ref()
            .expect("packer used after finish")
            .send(b)
            .map_err(|_| {
                Error::new(
                    crate::ErrorKind::Io,
                    "pack writer threads stopped unexpectedly",
                )
            })
    }

    /// Flush partial packs, wait for all writes, write the remaining index entries.
    pub fn finish(mut self) -> Result<PackerStats> {
        for slot in [&self.data, &self.tree] {
            let b = std::mem::take(&mut *slot.lock());
            if !b.entries.is_empty() {
                self.send(b)?;
            }
        }
        drop(self.tx.take());
        for w in self.writers.drain(..) {
            w.join()
                .map_err(|_| Error::new(crate::ErrorKind::Io, "pack writer thread panicked"))?;
        }
        self.check()?;
        flush_index(&self.shared, true)?;
        let w = self.shared.written.lock();
        Ok(PackerStats {
            packs: w.packs,
            index_files: w.index_files,
            bytes_written: self.shared.bytes_written.load(Ordering::Relaxed),
        })
    }

    pub fn bytes_written(&self) -> u64 {
        self.shared.bytes_written.load(Ordering::Relaxed)
    }
}

fn write_pack(shared: &Shared, mut b: Builder) -> Result<()> {
    let header = encode_header(shared.repo.keys(), &b.entries);
    b.buf.extend_from_slice(&header);
    let id = PackId(*blake3::hash(&b.buf).as_bytes());
    shared
        .repo
        .storage()
        .write(FileKind::Pack, &id.to_hex(), &b.buf)?;
    shared
        .bytes_written
        .fetch_add(b.buf.len() as u64, Ordering::Relaxed);
    {
        let mut w = shared.written.lock();
        w.pending.push(IndexPack {
            id,
            blobs: b.entries,
        });
        w.packs += 1;
    }
    flush_index(shared, false)
}

fn flush_index(shared: &Shared, force: bool) -> Result<()> {
    let packs = {
        let mut w = shared.written.lock();
        if w.pending.is_empty() || (!force && w.pending.len() < INDEX_EVERY_PACKS) {
            return Ok(());
        }
        w.index_files += 1;
        std::mem::take(&mut w.pending)
    };
    write_index_file(&shared.repo, packs)?;
    Ok(())
}
