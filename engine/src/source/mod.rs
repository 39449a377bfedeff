//! Reading sources: file metadata into tree nodes, excludes.

pub mod exclude;
pub mod meta;
pub mod mongo;
pub mod mysql;
pub mod snapshot;
pub mod tar_exclude;
