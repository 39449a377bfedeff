//! Removing what an extraction replaces or a dumpdir no longer lists, without ever entering
//! another file system mounted inside the restore target.
//!
//! An archive made with one-file-system semantics (rime's tar engine, Freezer's GNU tar) holds
//! nothing of a file system mounted inside the tree, so it cannot say what such a file system
//! should contain: purging it, or removing it with `remove_dir_all` (which follows the mount),
//! would destroy data that was never backed up. So a directory whose `st_dev` is not the
//! target's is never entered nor removed, and a dumpdir is not applied to a directory whose
//! `st_dev` differs from the target's or from its parent directory's (a mount point); what is
//! left in place is reported, so that the caller can warn. (Bind mounts of the same file system
//! keep the device number and cannot be told apart this way.)

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Whether `dir` (a directory at or below `target`) is on another file system than the target
/// or than its parent directory: a mount point, or inside one.
pub(super) fn on_other_fs(dir: &Path, target: &Path, target_dev: u64) -> io::Result<bool> {
    let dev = fs::symlink_metadata(dir)?.dev();
    if dev != target_dev {
        return Ok(true);
    }
    match dir.parent() {
        Some(parent) if dir != target => Ok(fs::symlink_metadata(parent)?.dev() != dev),
        _ => Ok(false),
    }
}

/// Remove whatever is at `p`, not following symbolic links, and without entering or removing a
/// directory whose device is not `dev` (the restore target's). Returns the
/// directories kept for that reason; when there are any, `p` (a directory holding them) stays
/// too. Nothing at `p` is not an error.
pub(super) fn remove_same_fs(p: &Path, dev: u64) -> io::Result<Vec<PathBuf>> {
    let mut kept = Vec::new();
    remove_into(p, dev, &mut kept)?;
    Ok(kept)
}

fn remove_into(p: &Path, dev: u64, kept: &mut Vec<PathBuf>) -> io::Result<()> {
    let m = match fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !m.is_dir() {
        return fs::remove_file(p);
    }
    if m.dev() != dev {
        kept.push(p.to_path_buf());
        return Ok(());
    }
    let before = kept.len();
    for ent in fs::read_dir(p)? {
        remove_into(&ent?.path(), dev, kept)?;
    }
    if kept.len() == before {
        fs::remove_dir(p)?;
    }
    Ok(())
}
