//! Restoring a tar-level chain (levels 0..N applied in order with [`crate::tarinc::apply`], so
//! files deleted between levels are deleted), and writing each level out as a plain GNU tar
//! incremental archive (`rime dump --format tar-incremental`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::format::snapshot::Snapshot;
use crate::format::tree::Part;
use crate::id::{BlobId, PackId, SnapshotId};
use crate::ops::volume::export::export_range;
use crate::ops::volume::map::{load_map, load_segment};
use crate::repo::index::MasterIndex;
use crate::repo::Repository;
use crate::storage::FileKind;
use crate::tarinc::{apply, ApplyOptions, ApplyStats, TarReader};

use super::history;

/// One applied level.
#[derive(Debug, Clone)]
pub struct LevelApplied {
    pub id: SnapshotId,
    pub level: u32,
    pub stats: ApplyStats,
}

/// The chain ending at the newest backup of `hostname`/`name` at or before `date` (seconds;
/// `None` = the newest), as snapshots in level order.
pub fn chain_at(
    repo: &Repository,
    hostname: &str,
    name: &str,
    date: Option<i64>,
) -> Result<Vec<(SnapshotId, Snapshot)>> {
    let snaps = history::list(repo, Some(hostname), Some(name))?;
    if snaps.is_empty() {
        return Err(Error::new(
            crate::ErrorKind::NotFound,
            format!("no tar backup of host {hostname:?} named {name:?} in the repository"),
        ));
    }
    let ids = history::restore_chain(&history::levels(&snaps), date)?;
    Ok(ids
        .iter()
        .map(|id| {
            snaps
                .iter()
                .find(|(i, _)| i == id)
                .cloned()
                .expect("restore_chain returns listed ids")
        })
        .collect())
}

/// The chain ending at snapshot `id` (which must be a tar-level snapshot).
pub fn chain_of(repo: &Repository, id: &SnapshotId) -> Result<Vec<(SnapshotId, Snapshot)>> {
    let end = repo.load_snapshot(id)?;
    let t = history::source(&end)?;
    let mut out = Vec::with_capacity(t.chain.len() + 1);
    for (level, c) in t.chain.iter().enumerate() {
        let s = repo.load_snapshot(c).map_err(|e| {
            e.within(format!(
                "level {level} of the chain of snapshot {}",
                id.short()
            ))
        })?;
        out.push((*c, s));
    }
    out.push((*id, end));
    Ok(out)
}

/// Apply the levels of `chain` in order into `target`, after [`check_packs`]: every level's
/// data must be there before the first one is applied.
pub fn restore_chain(
    repo: &Repository,
    chain: &[(SnapshotId, Snapshot)],
    target: &Path,
    opts: &ApplyOptions,
) -> Result<Vec<LevelApplied>> {
    check_packs(repo, chain)?;
    let mut out = vec![];
    for (id, s) in chain {
        let t = history::source(s)?;
        let stats = with_archive(repo, s, |r| {
            let mut reader = TarReader::new(r, format!("level {} ({})", t.level, id.short()));
            apply(&mut reader, target, opts)
        })
        .map_err(|e| e.within(format!("restoring level {} ({})", t.level, id.short())))?;
        out.push(LevelApplied {
            id: *id,
            level: t.level,
            stats,
        });
    }
    Ok(out)
}

/// Check that every pack the levels of `chain` read from is in storage, at least as long as
/// the index entries of the blobs they read from it require. Levels are applied one after the
/// other, so a level 1 found missing or truncated only when its turn comes would leave the
/// target with level 0 applied (and, with `--overwrite`, files already replaced or deleted).
/// The chunk maps are read here (small); the data is not.
pub fn check_packs(repo: &Repository, chain: &[(SnapshotId, Snapshot)]) -> Result<()> {
    let index = MasterIndex::load(repo)?;
    // Pack -> (bytes its needed blobs require, the first level needing them).
    let mut need: BTreeMap<PackId, (u64, String)> = BTreeMap::new();
    for (id, s) in chain {
        let level = format!("level {} ({})", history::source(s)?.level, id.short());
        for blob in level_blobs(repo, &index, s).map_err(|e| e.within(&level))? {
            let (pack, e) = index.lookup(&blob).ok_or_else(|| {
                Error::new(
                    ErrorKind::MissingObject,
                    format!("{level}: blob {} is in no pack of the index", blob.short()),
                )
            })?;
            let end = u64::from(e.offset) + u64::from(e.stored_len);
            let slot = need.entry(pack).or_insert((0, level.clone()));
            slot.0 = slot.0.max(end);
        }
    }
    // One listing rather than a request per pack (a long chain on Swift needs thousands).
    let sizes: std::collections::HashMap<String, u64> = repo
        .storage()
        .list(FileKind::Pack)?
        .into_iter()
        .map(|o| (o.name, o.size))
        .collect();
    for (pack, (end, level)) in need {
        let name = pack.to_hex();
        let listed = sizes.get(&name).copied();
        if listed.is_some_and(|n| n >= end) {
            continue;
        }
        // On several storages, one whole copy is enough: the restore reads from it.
        let copies = repo.storage().replicas();
        if copies > 1
            && (0..copies).any(|c| {
                repo.storage()
                    .read_range_replica(c, FileKind::Pack, &name, end - 1, 1)
                    .is_ok()
            })
        {
            continue;
        }
        return Err(match listed {
            Some(n) => Error::corrupt(format!(
                "pack {name}, needed by {level}, is truncated: {n} bytes, its data ends at \
                 byte {end}; nothing restored"
            )),
            None => Error::new(
                ErrorKind::MissingObject,
                format!("pack {name}, needed by {level}, is missing; nothing restored"),
            ),
        });
    }
    Ok(())
}

/// Every blob a level's archive is read from: its chunk map, the map's segments and the
/// segments' data chunks.
fn level_blobs(repo: &Repository, index: &MasterIndex, s: &Snapshot) -> Result<Vec<BlobId>> {
    let map = load_map(repo, index, &s.root)?;
    let mut out = vec![s.root];
    for seg in &map.segments {
        out.push(seg.id);
        for p in load_segment(repo, index, seg)?.parts {
            if let Part::Data { id, .. } = p {
                out.push(id);
            }
        }
    }
    Ok(out)
}

/// Write a level's archive (the tar bytes, without the SNAR) to `out`; returns its length.
pub fn write_archive(repo: &Repository, s: &Snapshot, out: &mut dyn Write) -> Result<u64> {
    let t = history::source(s)?;
    let n = export_range(repo, s, 0, t.tar_size, out)?;
    if n != t.tar_size {
        return Err(Error::corrupt(format!(
            "the archive is {n} bytes, the snapshot says {}",
            t.tar_size
        )));
    }
    Ok(n)
}

/// Run `f` on a reader of the level's archive, fed by a thread reading the repository.
fn with_archive<T>(
    repo: &Repository,
    s: &Snapshot,
    f: impl FnOnce(&mut dyn Read) -> Result<T>,
) -> Result<T> {
    let (mut reader, mut w) = crate::ops::pipe::pipe();
    std::thread::scope(|sc| {
        let feeder = sc.spawn(move || {
            write_archive(repo, s, &mut w)?;
            w.flush().io_context(|| "tar stream pipe".to_string())
        });
        let r = f(&mut reader);
        // Let the feeder finish: read what the archive reader left (end-of-archive padding).
        let drained = std::io::copy(&mut reader, &mut std::io::sink());
        drop(reader);
        let fed = feeder
            .join()
            .unwrap_or_else(|_| Err(Error::invalid("the repository reader panicked")));
        // A repository error explains a truncated archive, so it comes first.
        fed?;
        let v = r?;
        drained.map_err(|e| Error::io("reading the tar stream", e))?;
        Ok(v)
    })
}
