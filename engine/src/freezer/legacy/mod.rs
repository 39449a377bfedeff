//! Backups written by OpenStack Freezer's tar engine, read without Freezer, GNU tar, gzip or
//! openssl: list them (Freezer itself cannot list restore points), restore a chain to a
//! directory as of a date, and import them as rime snapshots.
//!
//! - [`container`]: where the backups are (local directory, SFTP, Swift), read by path;
//! - [`scan`]: the layout, one [`LegacyBackup`] per stored level;
//! - [`metadata`]: Freezer's metadata JSON (fuzzed);
//! - [`chain`]: which levels a restore replays;
//! - [`stream`]: segments → decryption → decompression → tar members;
//! - [`restore`](mod@restore): replaying a chain with [`crate::tarinc::apply`];
//! - [`import`](mod@import): one rime snapshot per Freezer backup.
//!
//! Entry points for callers (the `rime agent` command and `rime import-freezer`):
//! [`list`], [`restore()`], [`import()`].

pub mod chain;
pub mod container;
pub mod import;
pub mod metadata;
pub mod restore;
pub mod scan;
pub mod stream;

use std::path::Path;

pub use container::{open_container, Container, ContainerOptions, Listed, LocalContainer};
pub use import::{import, ImportOptions, ImportOutcome, ImportReport};
pub use metadata::FreezerMetadata;
pub use restore::RestoreReport;
pub use scan::{split_host_name, DataObject, LegacyBackup};

use crate::error::Result;
use crate::tarinc::ApplyOptions;

/// Every Freezer tar backup in the container, sorted by `host_name`, time, level.
pub fn list(c: &dyn Container) -> Result<Vec<LegacyBackup>> {
    scan::list(c)
}

/// Restore `<host>_<name>` as of `until` (epoch seconds, `None` = newest) into `target`:
/// the chain ending at the newest backup at or before `until`, levels 0..N in order.
/// `pass` is the `openssl enc` password (first line of Freezer's `--encrypt-pass-file`).
/// `target` must be empty (or missing) unless `overwrite`.
pub fn restore(
    c: &dyn Container,
    host: &str,
    name: &str,
    until: Option<i64>,
    pass: Option<&[u8]>,
    target: &Path,
    overwrite: bool,
) -> Result<RestoreReport> {
    let all = list(c)?;
    let chain = chain::resolve(&all, &format!("{host}_{name}"), until)?;
    restore::restore_chain(c, &chain, pass, target, overwrite, &ApplyOptions::default())
}

/// What a restore of `<host>_<name>` as of `until` would replay, after the checks a restore
/// makes before its first write (every level's objects present and whole, the key and the
/// format of each level's first tar header) and then reading every level to its end through
/// decryption, decompression and the tar reader, writing nothing: a dry run fails where the
/// restore would, including on damage that only the end of a stream reveals.
pub fn verify_chain(
    c: &dyn Container,
    host: &str,
    name: &str,
    until: Option<i64>,
    pass: Option<&[u8]>,
) -> Result<Vec<LegacyBackup>> {
    let all = list(c)?;
    let chain = chain::resolve(&all, &format!("{host}_{name}"), until)?;
    restore::check_levels(c, &chain, pass)?;
    restore::read_levels(c, &chain, pass)?;
    Ok(chain)
}
