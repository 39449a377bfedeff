//! Operations: options in, results and statistics out.

pub mod backup;
pub mod browse;
pub mod check;
pub mod dump;
pub mod forget;
pub mod policy;
pub mod prune;
pub mod reachable;
pub mod repair;
pub mod restore;
pub mod select;
pub mod stats;

mod blob_saver;

/// Progress reports from long operations. All methods have empty defaults.
pub trait Progress: Send + Sync {
    /// A file (or other node) was handled; `bytes` of content were read or written.
    fn item_done(&self, _bytes: u64) {}
    /// A non-fatal problem (an unreadable file), already counted in the statistics.
    fn warning(&self, _message: &str) {}
}

/// Progress reporter that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}
