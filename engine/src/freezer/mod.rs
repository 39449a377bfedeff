//! OpenStack Freezer compatibility.
//!
//! - [`legacy`]: reading backups that Freezer itself wrote (tar engine) on local, SSH and
//!   Swift storage: listing them, restoring a chain, importing them as rime snapshots.

pub mod legacy;
