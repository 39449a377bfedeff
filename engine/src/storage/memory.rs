//! An in-memory storage, for tests and as the reference for the conformance suite.

use std::collections::BTreeMap;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::storage::{check_name, missing, FileKind, ObjectInfo, Storage};

#[derive(Default)]
pub struct MemoryStorage {
    objects: Mutex<BTreeMap<(u8, String), Vec<u8>>>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }
}

fn key(kind: FileKind, name: &str) -> (u8, String) {
    (kind as u8, name.to_string())
}

impl Storage for MemoryStorage {
    fn location(&self) -> String {
        "memory".into()
    }

    fn create(&self) -> Result<()> {
        Ok(())
    }

    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        Ok(self
            .objects
            .lock()
            .iter()
            .filter(|((k, _), _)| *k == kind as u8)
            .map(|((_, n), v)| ObjectInfo {
                name: n.clone(),
                size: v.len() as u64,
            })
            .collect())
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        check_name(kind, name)?;
        self.objects
            .lock()
            .get(&key(kind, name))
            .cloned()
            .ok_or_else(|| missing(kind, name, "memory"))
    }

    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let data = self.read(kind, name)?;
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= data.len() as u64)
            .ok_or_else(|| {
                Error::corrupt(format!(
                    "memory: {} is truncated: wanted up to byte {}",
                    kind.path(name),
                    offset + len
                ))
            })?;
        Ok(data[offset as usize..end as usize].to_vec())
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        check_name(kind, name)?;
        let mut objects = self.objects.lock();
        if kind == FileKind::Config {
            if let Some(existing) = objects.get(&key(kind, name)) {
                return super::existing_config("memory", Ok(existing.clone()), data);
            }
        }
        objects.insert(key(kind, name), data.to_vec());
        Ok(())
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        check_name(kind, name)?;
        self.objects
            .lock()
            .remove(&key(kind, name))
            .map(|_| ())
            .ok_or_else(|| missing(kind, name, "memory"))
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.read(kind, name).map(|d| d.len() as u64)
    }
}
