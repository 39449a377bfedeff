//! Replaying a chain into a directory with rime's own tar extractor
//! ([`crate::tarinc::apply`]), the way Freezer's restore pipes each level into
//! `tar --incremental --extract --overwrite`: levels 0..N in order, each dumpdir deleting
//! what its level no longer lists.
//!
//! Everything that can be checked before writing is checked first: the target (empty unless
//! `overwrite`), every level's objects (no missing or short segment), and every level's first
//! tar header after decryption and decompression (so a wrong password or a foreign format
//! leaves the target untouched).

use std::path::Path;

use super::container::Container;
use super::scan::{check_objects, LegacyBackup};
use super::stream::{explain, open, open_probe};
use crate::error::{Error, ErrorKind, Result};
use crate::tarinc::{apply, ApplyOptions};

/// What a restore did.
#[derive(Debug, Default, Clone)]
pub struct RestoreReport {
    /// The backups replayed, level 0 first.
    pub chain: Vec<LegacyBackup>,
    pub members: u64,
    pub bytes: u64,
    pub deleted: u64,
    pub warnings: Vec<String>,
}

fn is_empty_dir(p: &Path) -> Result<bool> {
    match std::fs::read_dir(p) {
        Ok(mut rd) => Ok(rd.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(false),
        Err(e) => Err(Error::io(format!("restore target {}", p.display()), e)),
    }
}

/// Replay `chain` (level 0 first, as [`super::chain::resolve`] returns it) into `target`.
pub fn restore_chain(
    c: &dyn Container,
    chain: &[LegacyBackup],
    pass: Option<&[u8]>,
    target: &Path,
    overwrite: bool,
    opts: &ApplyOptions,
) -> Result<RestoreReport> {
    if !overwrite && !is_empty_dir(target)? {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "restore target {} is not empty: use --overwrite, or restore elsewhere",
                target.display()
            ),
        ));
    }
    for (i, b) in chain.iter().enumerate() {
        if b.level as usize != i {
            return Err(Error::invalid(format!(
                "Freezer chain out of order: {} is level {} at position {i}",
                b.dir, b.level
            )));
        }
    }
    apply_levels(c, chain, pass, target, opts)
}

/// Every level's objects (none missing or short), then its key and format (the first tar
/// header decrypts and decompresses): what can be known before the first write.
pub fn check_levels(c: &dyn Container, levels: &[LegacyBackup], pass: Option<&[u8]>) -> Result<()> {
    for b in levels {
        check_objects(b)?;
    }
    for b in levels {
        let mut o = open_probe(c, b, pass)?;
        if let Err(e) = o.reader.next_entry() {
            return Err(explain(b, &o.state, e));
        }
    }
    Ok(())
}

/// Read every level to its end, members and data, writing nothing.
pub fn read_levels(c: &dyn Container, levels: &[LegacyBackup], pass: Option<&[u8]>) -> Result<()> {
    for b in levels {
        let mut o = open(c, b, pass)?;
        loop {
            match o.reader.next_entry() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return Err(explain(b, &o.state, e)),
            }
        }
    }
    Ok(())
}

/// Apply `levels` in order onto whatever `target` holds (a tree restored up to the level below
/// the first one), after checking every level's objects, key and format.
pub fn apply_levels(
    c: &dyn Container,
    levels: &[LegacyBackup],
    pass: Option<&[u8]>,
    target: &Path,
    opts: &ApplyOptions,
) -> Result<RestoreReport> {
    let chain = levels;
    check_levels(c, chain, pass)?;
    let mut report = RestoreReport {
        chain: chain.to_vec(),
        ..Default::default()
    };
    for b in chain {
        let mut o = open(c, b, pass)?;
        let stats = apply(&mut o.reader, target, opts).map_err(|e| {
            let e = explain(b, &o.state, e);
            // Objects without a listed MD5, or too large to be checked before use.
            let unchecked = b
                .data
                .iter()
                .any(|d| d.md5.is_none() || d.size > super::stream::CHECK_WHOLE);
            if e.kind() == ErrorKind::Corrupt && unchecked {
                // Only the compressor's own check covered these bytes, and it may come at the
                // end of the stream: what this level wrote before cannot be vouched for.
                e.note(format!(
                    "files already restored from level {} were not verified by any checksum \
                     and may be damaged too",
                    b.level
                ))
            } else {
                e
            }
        })?;
        report.members += stats.members;
        report.bytes += stats.bytes;
        report.deleted += stats.deleted;
        report.warnings.extend(stats.warnings);
    }
    Ok(report)
}
