//! A limit on concurrent operations, around any storage (`--connections N`).
//!
//! Callers parallelise with threads; this keeps a storage from being hit by more requests at
//! once than it (or the operator) wants, whatever the number of threads. Streamed objects hold
//! a permit only while they are committed (that is when they travel).

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::error::Result;
use crate::storage::{FileKind, ObjectInfo, PendingObject, Storage};

/// A counting semaphore.
pub struct Semaphore {
    free: Mutex<usize>,
    cv: Condvar,
}

pub struct Permit<'a>(&'a Semaphore);

impl Semaphore {
    pub fn new(n: usize) -> Self {
        Semaphore {
            free: Mutex::new(n.max(1)),
            cv: Condvar::new(),
        }
    }

    pub fn acquire(&self) -> Permit<'_> {
        let mut f = self.free.lock();
        while *f == 0 {
            self.cv.wait(&mut f);
        }
        *f -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock() += 1;
        self.0.cv.notify_one();
    }
}

pub struct ConcurrencyLimit {
    inner: Arc<dyn Storage>,
    sem: Arc<Semaphore>,
}

impl ConcurrencyLimit {
    pub fn new(inner: Arc<dyn Storage>, max: usize) -> Self {
        ConcurrencyLimit {
            inner,
            sem: Arc::new(Semaphore::new(max)),
        }
    }
}

impl Storage for ConcurrencyLimit {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self) -> Result<()> {
        let _p = self.sem.acquire();
        self.inner.create()
    }
    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        let _p = self.sem.acquire();
        self.inner.list(kind)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let _p = self.sem.acquire();
        self.inner.read(kind, name)
    }
    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let _p = self.sem.acquire();
        self.inner.read_range(kind, name, offset, len)
    }
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        let _p = self.sem.acquire();
        self.inner.write(kind, name, data)
    }
    fn begin_write(&self, kind: FileKind) -> Result<Box<dyn PendingObject>> {
        Ok(Box::new(LimitedPending {
            inner: self.inner.begin_write(kind)?,
            sem: self.sem.clone(),
        }))
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let _p = self.sem.acquire();
        self.inner.remove(kind, name)
    }
    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        let _p = self.sem.acquire();
        self.inner.size(kind, name)
    }
}

struct LimitedPending {
    inner: Box<dyn PendingObject>,
    sem: Arc<Semaphore>,
}

impl PendingObject for LimitedPending {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.inner.append(data)
    }
    fn commit(self: Box<Self>, storage: &dyn Storage, name: &str) -> Result<()> {
        let _p = self.sem.acquire();
        self.inner.commit(storage, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::storage::testing::Flaky;
    use crate::storage::MemoryStorage;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    #[test]
    fn never_more_than_the_limit_at_once() {
        let flaky = Arc::new(Flaky::new(MemoryStorage::new(), ErrorKind::Io, 0));
        *flaky.delay.lock() = Duration::from_millis(5);
        let s = Arc::new(ConcurrencyLimit::new(flaky.clone(), 3));
        let threads: Vec<_> = (0..12u32)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..5u32 {
                        let n = format!("{:04x}", t * 16 + i);
                        s.write(FileKind::Index, &n, &[t as u8]).unwrap();
                        assert_eq!(s.read(FileKind::Index, &n).unwrap(), [t as u8]);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let max = flaky.max_running.load(Ordering::SeqCst);
        assert_eq!(max, 3, "the limit is reached under load but never passed");
        assert_eq!(s.list(FileKind::Index).unwrap().len(), 60);
    }
}
