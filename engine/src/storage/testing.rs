//! Test harness: a storage that fails on demand, wrapped around a real one, for the wrapper
//! tests (retries, limits). Real outages are tested against a real sshd in tests/it/sftp.rs.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::storage::{FileKind, ObjectInfo, Storage};

pub struct Flaky<S> {
    inner: S,
    fail_next: AtomicU32,
    /// Operations that run but then report a failure (the answer was "lost").
    lost_answers: AtomicU32,
    kind: Mutex<ErrorKind>,
    calls: AtomicU32,
    /// Operations running right now, and the most seen at once.
    running: AtomicUsize,
    pub max_running: AtomicUsize,
    pub delay: Mutex<Duration>,
}

impl<S: Storage> Flaky<S> {
    /// Fail the next `n` calls with `kind`.
    pub fn new(inner: S, kind: ErrorKind, n: u32) -> Self {
        Flaky {
            inner,
            fail_next: AtomicU32::new(n),
            lost_answers: AtomicU32::new(0),
            kind: Mutex::new(kind),
            calls: AtomicU32::new(0),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            delay: Mutex::new(Duration::ZERO),
        }
    }

    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn fail_next(&self, n: u32, kind: ErrorKind) {
        *self.kind.lock() = kind;
        self.fail_next.store(n, Ordering::SeqCst);
    }

    pub fn fail_after_success(&self, n: u32) {
        self.lost_answers.store(n, Ordering::SeqCst);
    }

    fn call<T>(&self, op: impl FnOnce() -> Result<T>) -> Result<T> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let d = *self.delay.lock();
        if !d.is_zero() {
            std::thread::sleep(d);
        }
        let take = |c: &AtomicU32| {
            c.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        };
        let r = if take(&self.fail_next) {
            Err(Error::new(*self.kind.lock(), "injected failure"))
        } else {
            let r = op();
            if take(&self.lost_answers) {
                Err(Error::new(*self.kind.lock(), "injected lost answer"))
            } else {
                r
            }
        };
        self.running.fetch_sub(1, Ordering::SeqCst);
        r
    }
}

impl<S: Storage> Storage for Flaky<S> {
    fn location(&self) -> String {
        format!("flaky {}", self.inner.location())
    }
    fn create(&self) -> Result<()> {
        self.call(|| self.inner.create())
    }
    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        self.call(|| self.inner.list(kind))
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.call(|| self.inner.read(kind, name))
    }
    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.call(|| self.inner.read_range(kind, name, offset, len))
    }
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.call(|| self.inner.write(kind, name, data))
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.call(|| self.inner.remove(kind, name))
    }
    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.call(|| self.inner.size(kind, name))
    }
}

/// A storage whose writes first pass a gate: the gate may fail them (a full storage), hold
/// them (a stalled one), or count them. Everything else goes straight to `inner`.
pub struct WriteGate<S> {
    pub inner: S,
    name: &'static str,
    gate: Box<dyn Fn() -> Result<()> + Send + Sync>,
}

impl<S: Storage> WriteGate<S> {
    pub fn new(
        inner: S,
        name: &'static str,
        gate: impl Fn() -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        WriteGate {
            inner,
            name,
            gate: Box::new(gate),
        }
    }
}

impl<S: Storage> Storage for WriteGate<S> {
    fn location(&self) -> String {
        self.name.into()
    }
    fn create(&self) -> Result<()> {
        self.inner.create()
    }
    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        self.inner.list(kind)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.inner.read(kind, name)
    }
    fn read_range(&self, kind: FileKind, name: &str, o: u64, l: u64) -> Result<Vec<u8>> {
        self.inner.read_range(kind, name, o, l)
    }
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        (self.gate)()?;
        self.inner.write(kind, name, data)
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.inner.remove(kind, name)
    }
    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.inner.size(kind, name)
    }
}
