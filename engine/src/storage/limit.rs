//! A limit on concurrent operations, around any storage (`--connections N`).
//!
//! Callers parallelise with threads; this keeps a storage from being hit by more requests at
//! once than it (or the operator) wants, whatever the number of threads.
//!
//! Streamed objects ([`Storage::begin_write`]) are passed through untouched: the default
//! (buffered) one commits through the outermost storage's `write`, which takes a permit here,
//! so holding one around the commit as well could deadlock; network storages that stream
//! bound themselves (SFTP opens as many ssh connections as `--connections` says).

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
    sem: Semaphore,
    max: usize,
}

impl ConcurrencyLimit {
    pub fn new(inner: Arc<dyn Storage>, max: usize) -> Self {
        ConcurrencyLimit {
            inner,
            sem: Semaphore::new(max),
            max,
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
    fn write_bytes(&self, kind: FileKind, name: &str, data: bytes::Bytes) -> Result<()> {
        let _p = self.sem.acquire();
        self.inner.write_bytes(kind, name, data)
    }
    fn begin_write(&self, kind: FileKind) -> Result<Box<dyn PendingObject>> {
        self.inner.begin_write(kind)
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let _p = self.sem.acquire();
        self.inner.remove(kind, name)
    }
    fn remove_leftovers(&self, age: std::time::Duration) -> Result<(u64, u64)> {
        self.inner.remove_leftovers(age)
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        let _p = self.sem.acquire();
        self.inner.size(kind, name)
    }

    /// The limit the user set is also how many uploads callers start: `--connections 8` on a
    /// storage whose own default is 4 means 8, not 4.
    fn concurrency(&self) -> usize {
        self.max.max(1)
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

    /// Buffered streamed objects commit through the outer storage's write: no deadlock even
    /// when every permit is taken by a committing thread.
    #[test]
    fn the_users_limit_is_also_how_many_uploads_start() {
        let inner: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        assert_eq!(inner.concurrency(), 1);
        assert_eq!(ConcurrencyLimit::new(inner.clone(), 8).concurrency(), 8);
        assert_eq!(ConcurrencyLimit::new(inner, 2).concurrency(), 2);
    }

    #[test]
    fn buffered_commits_through_the_limit_do_not_deadlock() {
        let s: Arc<dyn Storage> =
            Arc::new(ConcurrencyLimit::new(Arc::new(MemoryStorage::new()), 1));
        let threads: Vec<_> = (0..4u32)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let mut p = s.begin_write(FileKind::Pack).unwrap();
                    p.append(&[t as u8; 100]).unwrap();
                    p.commit(s.as_ref(), &format!("{t:04x}")).unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.list(FileKind::Pack).unwrap().len(), 4);
    }
}
