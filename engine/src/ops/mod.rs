//! Operations: options in, results and statistics out.

pub mod backup;
pub mod browse;
pub mod check;
pub mod copy;
pub mod dump;
pub mod forget;
pub mod pipe;
pub mod policy;
pub mod prune;
pub mod reachable;
pub mod repair;
pub mod restore;
mod restore_direct;
pub mod salvage;
pub mod select;
pub mod stats;
pub mod tarlevel;
pub mod tree_diff;
pub mod volume;

mod blob_saver;
mod restore_verify;
mod windowed;

/// Progress reports from long operations. All methods have empty defaults.
pub trait Progress: Send + Sync {
    /// A file (or other node) was handled; `bytes` of content were read or written.
    fn item_done(&self, _bytes: u64) {}
    /// Part of a large file's content was read or written; its `item_done` follows with 0.
    fn bytes_done(&self, _bytes: u64) {}
    /// A non-fatal problem (an unreadable file), already counted in the statistics.
    fn warning(&self, _message: &str) {}
    /// Whether the caller wants the operation stopped (checked between files and chunks).
    fn cancelled(&self) -> bool {
        false
    }
}

/// The error an operation returns when [`Progress::cancelled`] says stop.
pub(crate) fn interrupted() -> crate::Error {
    crate::Error::new(
        crate::ErrorKind::Interrupted,
        "interrupted: nothing of this run is referenced by a snapshot",
    )
}

/// The path of a tree node's entry `name` inside the directory at `path`, as the tree walks
/// report paths: relative to the snapshot's root (`""` for the root itself), `/`-separated,
/// names that are not UTF-8 shown lossily.
pub(crate) fn child_path(path: &str, name: &[u8]) -> String {
    format!(
        "{path}{}{}",
        if path.is_empty() { "" } else { "/" },
        String::from_utf8_lossy(name)
    )
}

/// A last check before a backup writes its snapshot: if the source stopped being trustworthy
/// (an LVM snapshot filled up, a dump command failed) the run fails and no snapshot claims it.
#[derive(Clone)]
pub struct CommitCheck(pub std::sync::Arc<dyn Fn() -> crate::Result<()> + Send + Sync>);

impl std::fmt::Debug for CommitCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitCheck")
    }
}

impl CommitCheck {
    pub fn run(check: &Option<CommitCheck>) -> crate::Result<()> {
        match check {
            Some(c) => (c.0)(),
            None => Ok(()),
        }
    }
}

/// Run `f` with at least as many threads as the storage wants concurrent reads (network
/// storages answer each ranged read slowly; the machine's cores would leave them idle).
pub(crate) fn with_io_threads<T: Send>(
    repo: &crate::repo::Repository,
    f: impl FnOnce() -> T + Send,
) -> T {
    let want = repo.storage().concurrency() * 2;
    if want <= rayon::current_num_threads() {
        return f();
    }
    match rayon::ThreadPoolBuilder::new().num_threads(want).build() {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}

/// Progress reporter that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}
