//! Retries with exponential backoff and jitter, around any storage.
//!
//! Only errors whose kind says a repetition may succeed ([`ErrorKind::is_retryable`]: I/O
//! trouble, an unavailable storage) are retried; a missing object, a rejected key or a full disk
//! fails at once. Every storage operation is safe to repeat: objects are immutable (a rewrite is
//! idempotent) and a repeated `remove` that finds the object gone means the first one worked.
//! Streamed objects ([`Storage::begin_write`]) cannot be replayed from here; storages that
//! stream over a network spool locally and retry their own commit with [`with_retries`].

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::storage::{FileKind, ObjectInfo, PendingObject, Storage};

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// Delay before the first retry; doubled for each further one, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Six attempts over about 15 seconds: enough to ride out a restarted server or a brief
    /// network outage, short enough that a dead storage fails the run promptly.
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry number `n` (1-based): exponential, with "equal jitter" (half
    /// fixed, half random) so that many threads failing together do not retry in lockstep.
    pub fn delay(&self, n: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << (n.saturating_sub(1)).min(16));
        let d = exp.min(self.max_delay);
        let half = d / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// Run `op` (given the 1-based attempt number) until it succeeds, fails permanently, or the
/// attempts are used up.
pub fn with_retries<T>(policy: &RetryPolicy, mut op: impl FnMut(u32) -> Result<T>) -> Result<T> {
    let mut attempt = 1;
    loop {
        match op(attempt) {
            Err(e) if e.kind().is_retryable() && attempt < policy.attempts => {
                std::thread::sleep(policy.delay(attempt));
                attempt += 1;
            }
            Err(e) if attempt > 1 => {
                return Err(Error::new(
                    e.kind(),
                    format!("{e} (gave up after {attempt} attempts)"),
                ))
            }
            r => return r,
        }
    }
}

pub struct RetryStorage {
    inner: Arc<dyn Storage>,
    policy: RetryPolicy,
}

impl RetryStorage {
    pub fn new(inner: Arc<dyn Storage>, policy: RetryPolicy) -> Self {
        RetryStorage { inner, policy }
    }
}

impl Storage for RetryStorage {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create(&self) -> Result<()> {
        with_retries(&self.policy, |_| self.inner.create())
    }

    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        with_retries(&self.policy, |_| self.inner.list(kind))
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        with_retries(&self.policy, |_| self.inner.read(kind, name))
    }

    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        with_retries(&self.policy, |_| {
            self.inner.read_range(kind, name, offset, len)
        })
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        with_retries(&self.policy, |_| self.inner.write(kind, name, data))
    }

    fn write_bytes(&self, kind: FileKind, name: &str, data: bytes::Bytes) -> Result<()> {
        with_retries(&self.policy, |_| {
            self.inner.write_bytes(kind, name, data.clone())
        })
    }

    fn begin_write(&self, kind: FileKind) -> Result<Box<dyn PendingObject>> {
        with_retries(&self.policy, |_| self.inner.begin_write(kind))
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        with_retries(&self.policy, |attempt| {
            match self.inner.remove(kind, name) {
                // An earlier attempt may have removed it before failing to report so.
                Err(e) if e.kind() == ErrorKind::MissingObject && attempt > 1 => Ok(()),
                r => r,
            }
        })
    }

    fn remove_leftovers(&self, age: std::time::Duration) -> Result<(u64, u64)> {
        self.inner.remove_leftovers(age)
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        with_retries(&self.policy, |_| self.inner.size(kind, name))
    }

    fn concurrency(&self) -> usize {
        self.inner.concurrency()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::Flaky;
    use crate::storage::MemoryStorage;

    fn fast(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        }
    }

    const N: &str = "00aa";

    #[test]
    fn transient_failures_are_retried_until_success() {
        let flaky = Arc::new(Flaky::new(MemoryStorage::new(), ErrorKind::Unavailable, 3));
        let s = RetryStorage::new(flaky.clone(), fast(5));
        s.write(FileKind::Index, N, b"abc").unwrap();
        assert_eq!(flaky.calls(), 4, "three failures, then the success");
        flaky.fail_next(2, ErrorKind::Io);
        assert_eq!(s.read(FileKind::Index, N).unwrap(), b"abc");
    }

    #[test]
    fn permanent_failures_are_not_retried() {
        for kind in [
            ErrorKind::Unauthorized,
            ErrorKind::NoSpace,
            ErrorKind::PermissionDenied,
            ErrorKind::MissingObject,
        ] {
            let flaky = Arc::new(Flaky::new(MemoryStorage::new(), kind, 1));
            let s = RetryStorage::new(flaky.clone(), fast(5));
            let e = s.write(FileKind::Index, N, b"abc").unwrap_err();
            assert_eq!(e.kind(), kind);
            assert_eq!(flaky.calls(), 1, "{kind:?} must not be retried");
        }
    }

    #[test]
    fn gives_up_after_the_attempts_and_says_so() {
        let flaky = Arc::new(Flaky::new(
            MemoryStorage::new(),
            ErrorKind::Unavailable,
            100,
        ));
        let s = RetryStorage::new(flaky.clone(), fast(3));
        let e = s.read(FileKind::Index, N).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(flaky.calls(), 3);
        assert!(e.to_string().contains("gave up after 3 attempts"), "{e}");
    }

    #[test]
    fn a_repeated_remove_that_finds_nothing_succeeded() {
        let mem = MemoryStorage::new();
        mem.write(FileKind::Lock, N, b"x").unwrap();
        // The first remove works but its answer is "lost".
        let flaky = Arc::new(Flaky::new(mem, ErrorKind::Unavailable, 0));
        flaky.fail_after_success(1);
        let s = RetryStorage::new(flaky, fast(3));
        s.remove(FileKind::Lock, N).unwrap();
        // Without a retry, a missing object is still reported.
        assert_eq!(
            s.remove(FileKind::Lock, N).unwrap_err().kind(),
            ErrorKind::MissingObject
        );
    }

    #[test]
    fn delays_grow_and_stay_bounded() {
        let p = RetryPolicy::default();
        for n in 1..10 {
            let d = p.delay(n);
            let full = p.base_delay.saturating_mul(1 << (n - 1)).min(p.max_delay);
            assert!(d >= full / 2 && d <= full, "retry {n}: {d:?} vs {full:?}");
        }
    }
}
