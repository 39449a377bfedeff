//! Test hooks for the crash harness (tests/it/crash.rs), armed by environment variables; each
//! costs one atomic increment per write when unset. Nothing else reads these variables.
//!
//! - `RIME_TEST_KILL_AT_WRITE=N`: the process aborts at its Nth change to a local repository
//!   (an object written, a pack committed, an object removed), after the temporary file of a
//!   write exists but before it is renamed into place, so that change is not made. Aborting
//!   runs no destructors and no cleanup, like SIGKILL. Iterating N = 1, 2, ... until a run
//!   completes kills an operation at every one of its writes.
//! - `RIME_TEST_FAIL_AT_WRITE=N`: from its Nth change on, every change fails with an I/O
//!   error (as a storage that went read-only or away): the operation's error handling and
//!   cleanup run against a storage that refuses them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Abort at the Nth write.
pub const KILL_ENV: &str = "RIME_TEST_KILL_AT_WRITE";
/// Fail the Nth and every later write.
pub const FAIL_ENV: &str = "RIME_TEST_FAIL_AT_WRITE";

static WRITES: AtomicU64 = AtomicU64::new(0);

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Called by the local storage before each change takes effect.
pub(crate) fn at_write() -> std::io::Result<()> {
    static ARMED: OnceLock<(Option<u64>, Option<u64>)> = OnceLock::new();
    let (kill, fail) = *ARMED.get_or_init(|| (env_number(KILL_ENV), env_number(FAIL_ENV)));
    if kill.is_none() && fail.is_none() {
        return Ok(());
    }
    let n = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
    if kill == Some(n) {
        std::process::abort();
    }
    match fail {
        Some(f) if n >= f => Err(std::io::Error::other(format!(
            "write refused by the {FAIL_ENV} test hook"
        ))),
        _ => Ok(()),
    }
}
