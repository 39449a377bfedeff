//! `rime copy`: bring one storage's copy of a repository up to date from another, object by
//! object. Objects are immutable and content-addressed, so copying is by name, byte for byte:
//! no password is needed, nothing is re-encrypted, and snapshot ids stay the same.
//!
//! Order keeps the destination consistent at every moment (as a backup does): packs first, then
//! the index files that name them, then snapshots. An interrupted copy leaves only unreferenced
//! packs behind, and running it again completes it.

use rayon::prelude::*;

use crate::error::{Error, ErrorKind, Result};
use crate::storage::{FileKind, Storage};

#[derive(Debug, Default, Clone)]
pub struct CopyStats {
    pub objects: u64,
    pub bytes: u64,
    /// Objects the destination already had.
    pub skipped: u64,
}

/// Copy to `to` every object of `from` that `to` lacks. A destination without a repository
/// receives the config and key files first; one with a different repository is refused.
pub fn copy(from: &dyn Storage, to: &dyn Storage, dry_run: bool) -> Result<CopyStats> {
    let cfg = from.read(FileKind::Config, "config").map_err(|e| {
        if e.kind() == ErrorKind::MissingObject {
            Error::new(ErrorKind::RepositoryNotFound, format!("no repository at {}", from.location()))
        } else {
            e
        }
    })?;
    let mut stats = CopyStats::default();
    match to.read(FileKind::Config, "config") {
        Ok(existing) if existing == cfg => {}
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
        }
        Err(e) => return Err(e),
    }
    for kind in [FileKind::Key, FileKind::Pack, FileKind::Index, FileKind::Snapshot] {
        let have: std::collections::HashSet<String> =
            to.list(kind)?.into_iter().map(|o| o.name).collect();
        let todo: Vec<_> = from
            .list(kind)?
            .into_iter()
            .filter(|o| !have.contains(&o.name))
            .collect();
        stats.skipped += have.len() as u64;
        let copied: Vec<u64> = todo
            .par_iter()
            .map(|o| -> Result<u64> {
                if dry_run {
                    return Ok(o.size);
                }
                let data = from.read(kind, &o.name)?;
                to.write(kind, &o.name, &data)?;
                Ok(data.len() as u64)
            })
            .collect::<Result<_>>()?;
        stats.objects += copied.len() as u64;
        stats.bytes += copied.iter().sum::<u64>();
    }
    // The config last: until it is there, the destination does not look like a repository.
    if !dry_run && to.read(FileKind::Config, "config").is_err() {
        to.write(FileKind::Config, "config", &cfg)?;
        stats.objects += 1;
    }
    Ok(stats)
}
