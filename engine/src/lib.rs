//! # rime-engine
//!
//! The deduplicating backup engine behind the `rime` command: repository format v1
//! (`format-spec/SPEC.md`), content-defined chunking, keyed BLAKE3 ids, zstd, AES-256-GCM,
//! packs and index, storages, and the backup / restore / check operations.
//!
//! ```no_run
//! use std::sync::Arc;
//! use rime_engine::{ops, repo::{Repository, InitOptions}, storage::LocalStorage};
//!
//! let storage = Arc::new(LocalStorage::new("/srv/backup/repo"));
//! let repo = Repository::init(storage, b"secret", &InitOptions::default())?;
//! let opts = ops::backup::BackupOptions::new(vec!["/etc".into()]);
//! let result = ops::backup::backup(&repo, &opts, &ops::NoProgress)?;
//! println!("snapshot {}", result.id);
//! # Ok::<(), rime_engine::Error>(())
//! ```
//!
//! The library never prints; it returns typed errors ([`Error`] with an [`ErrorKind`]) and
//! statistics, and reports progress through the [`ops::Progress`] trait.

pub mod chunker;
pub mod crypto;
pub mod error;
pub mod format;
pub mod id;
pub mod ops;
pub mod repo;
pub mod source;
pub mod storage;
pub mod sys;

pub use error::{Error, ErrorKind, Result};

/// This machine's host name (empty if unknown).
pub fn hostname() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The current user's name, or the numeric uid.
pub fn username() -> String {
    let uid = sys::geteuid();
    sys::user_name(uid).unwrap_or_else(|| uid.to_string())
}

/// The program name and version recorded in snapshots.
pub const PROGRAM: &str = concat!("rime ", env!("CARGO_PKG_VERSION"));
pub mod freezer;
pub mod tarinc;
