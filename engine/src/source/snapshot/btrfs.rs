//! btrfs: a read-only snapshot of the subvolume holding the source path, named
//! `.rime-snapshot-PID` at the top of that subvolume.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::source::snapshot::{run, LiveSnapshot};

const BTRFS_SUPER_MAGIC: i64 = 0x9123_683E;
/// Inode number of every subvolume's root directory.
const SUBVOL_ROOT_INO: u64 = 256;
pub const SNAPSHOT_PREFIX: &str = ".rime-snapshot-";

pub fn is_btrfs(path: &Path) -> bool {
    crate::sys::fs_magic(path).is_ok_and(|m| m == BTRFS_SUPER_MAGIC)
}

/// The root of the subvolume holding `path` (every subvolume has its own st_dev).
pub fn subvolume_root(path: &Path) -> Result<PathBuf> {
    let meta = |p: &Path| {
        std::fs::metadata(p).map_err(|e| Error::io(format!("cannot stat {}", p.display()), e))
    };
    let mut cur = path.to_path_buf();
    let dev = meta(&cur)?.dev();
    loop {
        let m = meta(&cur)?;
        if m.is_dir() && m.ino() == SUBVOL_ROOT_INO {
            return Ok(cur);
        }
        match cur.parent() {
            Some(p) if meta(p)?.dev() == dev => cur = p.to_path_buf(),
            _ => return Ok(cur),
        }
    }
}

/// Remove snapshots left by rime runs that no longer exist; returns what was removed.
pub fn remove_leftovers(subvol: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let Ok(rd) = std::fs::read_dir(subvol) else {
        return Ok(removed);
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(SNAPSHOT_PREFIX) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !crate::sys::process_alive(pid) {
            let p = e.path();
            run("btrfs", &["subvolume", "delete", &p.to_string_lossy()])?;
            removed.push(p);
        }
    }
    Ok(removed)
}

/// Take a read-only snapshot of the subvolume holding `path`.
pub fn snapshot(path: &Path) -> Result<(LiveSnapshot, Vec<PathBuf>)> {
    if !is_btrfs(path) {
        return Err(Error::invalid(format!(
            "{} is not on a btrfs file system",
            path.display()
        )));
    }
    let subvol = subvolume_root(path)?;
    let leftovers = remove_leftovers(&subvol)?;
    let snap = subvol.join(format!("{SNAPSHOT_PREFIX}{}", std::process::id()));
    let s = snap.to_string_lossy().into_owned();
    run(
        "btrfs",
        &["subvolume", "snapshot", "-r", &subvol.to_string_lossy(), &s],
    )?;
    let cleanup_path = s.clone();
    Ok((
        LiveSnapshot {
            origin: subvol,
            view: snap,
            device: None,
            annotations: vec![("btrfs.snapshot".into(), s)],
            cleanup: Some(Box::new(move || {
                run("btrfs", &["subvolume", "delete", &cleanup_path]).map(|_| ())
            })),
            validate: None,
        },
        leftovers,
    ))
}
