//! `rime copy`: bring one storage's copy of a repository up to date from another, object by
//! object. Objects are immutable and content-addressed, so copying is by name, byte for byte:
//! no password is needed, nothing is re-encrypted, and snapshot ids stay the same.
//!
//! Order keeps the destination consistent at every moment (as a backup does): packs first, then
//! the index files that name them, then snapshots. An interrupted copy leaves only unreferenced
//! packs behind, and running it again completes it. The source is listed in the opposite order
//! (snapshots, index files, packs), so that what a backup on the source finishes meanwhile is
//! copied whole or not at all; a prune on the destination is excluded while copy runs (its
//! lock there), since copy reuses packs the destination stores but may have marked.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use rayon::prelude::*;

use crate::error::{Error, ErrorKind, Result};
use crate::repo::lock::{LockGuard, COPY_DESTINATION};
use crate::repo::Repository;
use crate::storage::{FileKind, Storage};

#[derive(Debug, Default, Clone)]
pub struct CopyOptions {
    /// Only count what would be copied.
    pub dry_run: bool,
    /// The repository password. With it, copy holds a shared lock on both storages: a prune
    /// on the source keeps what copy may still read, and one on the destination is refused
    /// while copy runs (without, a prune on the destination could take the packs copied so
    /// far, not yet indexed there, for leftovers, or delete marked packs copy found there and
    /// did not copy again); the copy works without it.
    pub password: Option<Vec<u8>>,
}

#[derive(Debug, Default, Clone)]
pub struct CopyStats {
    pub objects: u64,
    pub bytes: u64,
    /// Objects the destination already had.
    pub skipped: u64,
    /// Objects the destination had with another size than the source's (damaged there):
    /// removed and copied again.
    pub replaced: u64,
    /// Whether both storages were locked (a password was given).
    pub locked: bool,
    /// Objects other than packs that differ in size between the two storages: one side is
    /// damaged, and without checking them (which needs the keys and is `rime check`'s job)
    /// copy cannot tell which, so it leaves them alone and says so.
    pub differing: Vec<String>,
}

/// Copy to `to` every object of `from` that `to` lacks. A destination without a repository
/// receives the config and key files first; one with a different repository is refused.
///
/// Packs are named by the hash of their bytes, so each is checked before it is written: a pack
/// damaged at the source is not copied (the damage must not spread), everything else is, and
/// the copy then fails naming it. An object the destination has with a different size than
/// the source's is damaged there, and is replaced.
pub fn copy(from: Arc<dyn Storage>, to: Arc<dyn Storage>, opts: &CopyOptions) -> Result<CopyStats> {
    let dry_run = opts.dry_run;
    let cfg = from.read(FileKind::Config, "config").map_err(|e| {
        if e.kind() == ErrorKind::MissingObject {
            Error::new(
                ErrorKind::RepositoryNotFound,
                format!("no repository at {}", from.location()),
            )
        } else {
            e
        }
    })?;
    let mut stats = CopyStats::default();
    let dest_exists = match to.read(FileKind::Config, "config") {
        Ok(existing) if existing == cfg => true,
        Ok(_) => {
            return Err(Error::invalid(format!(
                "{} holds a different repository than {}: refusing to mix them",
                to.location(),
                from.location()
            )))
        }
        Err(e) if e.kind() == ErrorKind::MissingObject => {
            if !dry_run {
                to.create()?;
            }
            false
        }
        Err(e) => return Err(e),
    };
    let locks = match (&opts.password, dry_run) {
        (Some(pw), false) => lock_both(&from, &to, dest_exists, pw)?,
        _ => vec![],
    };
    stats.locked = !locks.is_empty();
    let damaged: Mutex<Vec<String>> = Mutex::new(Vec::new());
    // The source is listed in the reverse of the order objects are written in (snapshots,
    // then index files, then packs): a backup (or a prune's rewrite) finishing on the source
    // while copy lists it writes its packs before its index files and those before its
    // snapshot, so every snapshot listed here has its index files and packs listed too. Index
    // files are listed twice (as every reader does, section 9.3): a single listing racing with
    // a prune's rewrite can miss both the new file and the old one.
    let src_snapshots = from.list(FileKind::Snapshot)?;
    let mut src_index = from.list(FileKind::Index)?;
    for o in from.list(FileKind::Index)? {
        if !src_index.iter().any(|s| s.name == o.name) {
            src_index.push(o);
        }
    }
    let src_packs = from.list(FileKind::Pack)?;
    let src_keys = from.list(FileKind::Key)?;
    for (kind, listed) in [
        (FileKind::Key, src_keys),
        (FileKind::Pack, src_packs),
        (FileKind::Index, src_index),
        (FileKind::Snapshot, src_snapshots),
    ] {
        if matches!(kind, FileKind::Index | FileKind::Snapshot) {
            // Past this point the copied index files and snapshots reference what was copied
            // or found at the destination: the locks must still hold (nobody took them for
            // stale and pruned meanwhile).
            for l in &locks {
                l.check()?;
            }
        }
        let have: HashMap<String, u64> = to
            .list(kind)?
            .into_iter()
            .map(|o| (o.name, o.size))
            .collect();
        // A pack is checked against its name before it replaces anything; another object
        // with a different size is only reported (the source's copy may be the damaged one).
        let differs =
            |o: &&crate::storage::ObjectInfo| have.get(&o.name).is_some_and(|&size| size != o.size);
        if kind != FileKind::Pack {
            for o in listed.iter().filter(differs) {
                stats.differing.push(format!(
                    "{kind:?} {}: {} bytes at {}, {} at {}",
                    o.name,
                    o.size,
                    from.location(),
                    have[&o.name],
                    to.location()
                ));
            }
        }
        let todo: Vec<_> = listed
            .iter()
            .filter(|o| !have.contains_key(&o.name) || (kind == FileKind::Pack && differs(o)))
            .collect();
        stats.skipped += (listed.len() - todo.len()) as u64;
        let replaced = std::sync::atomic::AtomicU64::new(0);
        let copied: Vec<Option<u64>> = todo
            .par_iter()
            .map(|o| -> Result<Option<u64>> {
                if dry_run {
                    return Ok(Some(o.size));
                }
                let data = match from.read(kind, &o.name) {
                    Ok(d) => d,
                    // Removed at the source since it was listed: a forgotten snapshot, an
                    // index file a prune replaced (its replacement is listed too), a pack a
                    // prune deleted (no index file listed here names it: they were listed
                    // first, and the pack of one listed then is kept while copy's lock lives).
                    Err(e) if e.kind() == ErrorKind::MissingObject => return Ok(None),
                    Err(e) => return Err(e),
                };
                if kind == FileKind::Pack && blake3::hash(&data).to_hex().as_str() != o.name {
                    damaged.lock().push(format!(
                        "pack {} at {}: its bytes do not match its name (damaged at the source)",
                        o.name,
                        from.location()
                    ));
                    return Ok(None);
                }
                if have.contains_key(&o.name) {
                    // Damaged at the destination (another size): the same name would be taken
                    // for already stored, so it goes first.
                    to.remove(kind, &o.name)?;
                    replaced.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                to.write(kind, &o.name, &data)?;
                Ok(Some(data.len() as u64))
            })
            .collect::<Result<_>>()?;
        stats.replaced += replaced.into_inner();
        stats.objects += copied.iter().flatten().count() as u64;
        stats.bytes += copied.iter().flatten().sum::<u64>();
    }
    // The config last: until it is there, the destination does not look like a repository.
    if !dry_run && to.read(FileKind::Config, "config").is_err() {
        to.write(FileKind::Config, "config", &cfg)?;
        stats.objects += 1;
    }
    let damaged = damaged.into_inner();
    if !damaged.is_empty() {
        return Err(Error::corrupt(format!(
            "everything else was copied, but {} pack(s) are damaged at the source and were not: \
             {} (`rime check --read-data` on the source says which snapshots they hold)",
            damaged.len(),
            damaged.join("; ")
        )));
    }
    Ok(stats)
}

/// Shared locks on the source and (when it already holds the repository) the destination.
fn lock_both(
    from: &Arc<dyn Storage>,
    to: &Arc<dyn Storage>,
    dest_exists: bool,
    password: &[u8],
) -> Result<Vec<LockGuard>> {
    let src = Repository::open(from.clone(), Some(password))?;
    let mut locks = vec![LockGuard::shared(&src, "copy")?];
    if dest_exists {
        let dst = Repository::open(to.clone(), Some(password))?;
        // Excludes prunes on the destination (see `COPY_DESTINATION`).
        locks.push(LockGuard::shared(&dst, COPY_DESTINATION)?);
    }
    Ok(locks)
}
