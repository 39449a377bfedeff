//! Snapshots of live sources, taken for the time of one backup: btrfs read-only subvolume
//! snapshots and LVM snapshots (read as a volume or mounted for a file-tree backup).
//!
//! A [`LiveSnapshot`] is removed (and unmounted) when released or dropped, so an error or an
//! interrupted run (SIGINT/SIGTERM stop the backup, which unwinds to here) leaves nothing
//! behind. A run killed outright leaves its snapshot; the next run finds it by name, sees that
//! the process that made it is gone, and removes it before taking its own.

pub mod btrfs;
pub mod lvm;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, ErrorKind, Result};

/// A snapshot in place; `Drop` removes it.
pub struct LiveSnapshot {
    /// Source paths under `origin` are read under `view` instead.
    pub origin: PathBuf,
    pub view: PathBuf,
    /// The snapshot's block device (LVM), for volume backups.
    pub device: Option<PathBuf>,
    /// Facts to record in the snapshot.
    pub annotations: Vec<(String, String)>,
    cleanup: Option<Box<dyn FnOnce() -> Result<()> + Send + Sync>>,
    /// Run before the backup is committed: fails if the snapshot stopped being trustworthy.
    validate: Option<Box<dyn Fn() -> Result<()> + Send + Sync>>,
}

impl LiveSnapshot {
    /// Where `path` (under the origin) is found in the snapshot.
    pub fn translate(&self, path: &Path) -> Result<PathBuf> {
        let rel = path.strip_prefix(&self.origin).map_err(|_| {
            Error::invalid(format!(
                "{} is not under {}, which the snapshot covers",
                path.display(),
                self.origin.display()
            ))
        })?;
        Ok(if rel.as_os_str().is_empty() {
            self.view.clone()
        } else {
            self.view.join(rel)
        })
    }

    /// Whether the data read from the snapshot can still be trusted (an LVM snapshot that
    /// filled up is invalid).
    pub fn validate(&self) -> Result<()> {
        match &self.validate {
            Some(v) => v(),
            None => Ok(()),
        }
    }

    /// Remove the snapshot now, reporting failure.
    pub fn release(mut self) -> Result<()> {
        match self.cleanup.take() {
            Some(c) => c(),
            None => Ok(()),
        }
    }
}

impl Drop for LiveSnapshot {
    fn drop(&mut self) {
        if let Some(c) = self.cleanup.take() {
            let _ = c();
        }
    }
}

/// Run a system command; a failure is an error quoting its standard error.
pub(crate) fn run(prog: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(prog).args(args).output().map_err(|e| {
        Error::io(
            format!("cannot run {prog} (is it installed and on PATH?)"),
            e,
        )
    })?;
    if !out.status.success() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{prog} {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Mounts from /proc/mounts as (device, mount point, type), octal escapes decoded.
pub fn mounts() -> Vec<(String, PathBuf, String)> {
    let text = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() >= 3).then(|| (unescape(f[0]), PathBuf::from(unescape(f[1])), f[2].to_string()))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount holding `path`: the longest mount point that is a prefix of it.
pub fn mount_of(path: &Path) -> Option<(String, PathBuf, String)> {
    mounts()
        .into_iter()
        .filter(|(_, mp, _)| path.starts_with(mp))
        .max_by_key(|(_, mp, _)| mp.as_os_str().len())
}
