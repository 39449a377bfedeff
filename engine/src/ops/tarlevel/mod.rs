//! Tar-level backups: GNU tar incremental archives (Freezer's tar engine) stored in the
//! deduplicating repository.
//!
//! A backup is the uncompressed archive [`crate::tarinc::create`] writes at the level Freezer's
//! rules give ([`plan`]), followed by the SNAR state after it, cut by the repository's
//! content-defined chunker like any stream: a new level 0 stores only what changed since the
//! last level. The snapshot ([`crate::format::snapshot::TarLevelSource`]) records the level
//! and the chain of snapshots below it, so the next level, a restore at a date and retention
//! are decided from the repository alone ([`history`]); [`restore`] replays a chain with
//! [`crate::tarinc::apply`] or writes each level out as an archive GNU tar extracts.

pub mod backup;
pub mod history;
pub mod plan;
pub mod restore;
pub mod retain;
mod split;

pub use backup::{backup, backup_scanned, load_snar, next_plan, TarBackupOptions, TarBackupResult};
pub use plan::{LevelBackup, LevelRules, Plan};
pub use restore::{chain_at, chain_of, restore_chain, write_archive, LevelApplied};
