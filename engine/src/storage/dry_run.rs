//! Dry run, around any storage: reads go to the storage, nothing is written or removed
//! anywhere, and every write and removal is recorded so the run can say what it would have done.
//!
//! Small objects "written" (index, snapshot, lock, key, config) are kept in memory so that the
//! rest of the run reads what it believes it wrote; packs are only counted.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::storage::{check_name, FileKind, ObjectInfo, PendingObject, Storage};

/// What a dry run would have done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DryRunReport {
    /// Objects that would have been written: kind, name, size.
    pub written: Vec<(FileKind, String, u64)>,
    /// Objects that would have been removed.
    pub removed: Vec<(FileKind, String)>,
    /// Whether the repository layout would have been created.
    pub created: bool,
}

impl DryRunReport {
    /// Objects and bytes that would have been written for one kind.
    pub fn count(&self, kind: FileKind) -> (usize, u64) {
        self.written
            .iter()
            .filter(|(k, _, _)| *k == kind)
            .fold((0, 0), |(n, b), (_, _, s)| (n + 1, b + s))
    }
}

enum Shadow {
    /// Written in this run; bytes kept unless it is a pack.
    Written(Option<Vec<u8>>, u64),
    Removed,
}

pub struct DryRunStorage {
    state: Arc<State>,
}

struct State {
    inner: Arc<dyn Storage>,
    shadow: Mutex<BTreeMap<(u8, String), (FileKind, Shadow)>>,
    report: Mutex<DryRunReport>,
}

impl DryRunStorage {
    pub fn new(inner: Arc<dyn Storage>) -> Self {
        DryRunStorage {
            state: Arc::new(State {
                inner,
                shadow: Mutex::new(BTreeMap::new()),
                report: Mutex::new(DryRunReport::default()),
            }),
        }
    }

    pub fn report(&self) -> DryRunReport {
        self.state.report.lock().clone()
    }
}

impl State {
    fn record_write(&self, kind: FileKind, name: &str, data: Option<&[u8]>, len: u64) {
        let keep = (kind != FileKind::Pack)
            .then(|| data.map(<[u8]>::to_vec))
            .flatten();
        self.shadow.lock().insert(
            (kind as u8, name.to_string()),
            (kind, Shadow::Written(keep, len)),
        );
        self.report
            .lock()
            .written
            .push((kind, name.to_string(), len));
    }

    fn shadowed(&self, kind: FileKind, name: &str) -> Option<Result<Vec<u8>>> {
        let s = self.shadow.lock();
        match s.get(&(kind as u8, name.to_string())) {
            None => None,
            Some((_, Shadow::Written(Some(d), _))) => Some(Ok(d.clone())),
            Some((_, Shadow::Written(None, _))) => Some(Err(Error::new(
                ErrorKind::Io,
                format!(
                    "dry run: {} was not really written to {}",
                    kind.path(name),
                    self.inner.location()
                ),
            ))),
            Some((_, Shadow::Removed)) => Some(Err(crate::storage::missing(
                kind,
                name,
                &self.inner.location(),
            ))),
        }
    }
}

impl Storage for DryRunStorage {
    fn location(&self) -> String {
        self.state.inner.location()
    }

    fn create(&self) -> Result<()> {
        self.state.report.lock().created = true;
        Ok(())
    }

    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        let mut out: BTreeMap<String, u64> = self
            .state
            .inner
            .list(kind)?
            .into_iter()
            .map(|o| (o.name, o.size))
            .collect();
        for ((k, name), (_, sh)) in self.state.shadow.lock().iter() {
            if *k != kind as u8 {
                continue;
            }
            match sh {
                Shadow::Written(_, len) => {
                    out.insert(name.clone(), *len);
                }
                Shadow::Removed => {
                    out.remove(name);
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|(name, size)| ObjectInfo { name, size })
            .collect())
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        match self.state.shadowed(kind, name) {
            Some(r) => r,
            None => self.state.inner.read(kind, name),
        }
    }

    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        match self.state.shadowed(kind, name) {
            Some(r) => {
                let d = r?;
                let end = offset
                    .checked_add(len)
                    .filter(|&e| e <= d.len() as u64)
                    .ok_or_else(|| Error::corrupt(format!("{} is truncated", kind.path(name))))?;
                Ok(d[offset as usize..end as usize].to_vec())
            }
            None => self.state.inner.read_range(kind, name, offset, len),
        }
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        check_name(kind, name)?;
        self.state
            .record_write(kind, name, Some(data), data.len() as u64);
        Ok(())
    }

    fn begin_write(&self, kind: FileKind) -> Result<Box<dyn PendingObject>> {
        Ok(Box::new(CountingPending {
            state: self.state.clone(),
            kind,
            len: 0,
        }))
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        check_name(kind, name)?;
        let key = (kind as u8, name.to_string());
        let was_ours = matches!(
            self.state.shadow.lock().get(&key),
            Some((_, Shadow::Written(..)))
        );
        if !was_ours {
            // Report a missing object as the real storage would.
            self.state.inner.size(kind, name)?;
        }
        self.state
            .shadow
            .lock()
            .insert(key, (kind, Shadow::Removed));
        self.state
            .report
            .lock()
            .removed
            .push((kind, name.to_string()));
        Ok(())
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        match self
            .state
            .shadow
            .lock()
            .get(&(kind as u8, name.to_string()))
        {
            Some((_, Shadow::Written(_, len))) => Ok(*len),
            Some((_, Shadow::Removed)) => Err(crate::storage::missing(
                kind,
                name,
                &self.state.inner.location(),
            )),
            None => self.state.inner.size(kind, name),
        }
    }
}

/// A streamed object in a dry run: only its size is kept.
struct CountingPending {
    state: Arc<State>,
    kind: FileKind,
    len: u64,
}

impl PendingObject for CountingPending {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.len += data.len() as u64;
        Ok(())
    }

    fn commit(self: Box<Self>, _storage: &dyn Storage, name: &str) -> Result<()> {
        check_name(self.kind, name)?;
        self.state.record_write(self.kind, name, None, self.len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    #[test]
    fn nothing_reaches_the_storage_and_everything_is_recorded() {
        let mem = Arc::new(MemoryStorage::new());
        mem.write(FileKind::Snapshot, "aa", b"old").unwrap();
        let d = DryRunStorage::new(mem.clone());
        d.create().unwrap();
        d.write(FileKind::Index, "bb", b"index").unwrap();
        let mut p = d.begin_write(FileKind::Pack).unwrap();
        p.append(&[7u8; 1000]).unwrap();
        p.commit(&d, "cc").unwrap();
        d.remove(FileKind::Snapshot, "aa").unwrap();
        // The run sees its own effects...
        assert_eq!(d.read(FileKind::Index, "bb").unwrap(), b"index");
        assert_eq!(d.size(FileKind::Pack, "cc").unwrap(), 1000);
        assert!(d.list(FileKind::Snapshot).unwrap().is_empty());
        assert_eq!(d.list(FileKind::Pack).unwrap().len(), 1);
        assert_eq!(
            d.read(FileKind::Snapshot, "aa").unwrap_err().kind(),
            ErrorKind::MissingObject
        );
        // ...the storage sees none.
        assert_eq!(mem.read(FileKind::Snapshot, "aa").unwrap(), b"old");
        assert!(mem.list(FileKind::Index).unwrap().is_empty());
        assert!(mem.list(FileKind::Pack).unwrap().is_empty());
        let r = d.report();
        assert!(r.created);
        assert_eq!(r.count(FileKind::Pack), (1, 1000));
        assert_eq!(r.count(FileKind::Index), (1, 5));
        assert_eq!(r.removed, vec![(FileKind::Snapshot, "aa".to_string())]);
        // Removing what is not there is still reported as missing.
        assert_eq!(
            d.remove(FileKind::Lock, "dd").unwrap_err().kind(),
            ErrorKind::MissingObject
        );
    }
}
