//! A storage wrapper that shows every operation to a hook before doing it: the one tool behind
//! fault-injection and race tests (fail a read with `EIO`, fill the disk at the third write,
//! run a concurrent `prune` at the moment a copy lists its packs).
//!
//! Why one wrapper: each such test used to carry its own pass-through implementation of the
//! whole [`Storage`] trait, all alike but for one method. A hook sees an [`Op`] and either lets
//! it through (`Ok(())`), fails it with its own error, or does something first (runs another
//! operation, waits on a barrier). The wrapper adds nothing else: no retries, no limits.

use std::sync::Arc;

use crate::error::Result;
use crate::storage::{FileKind, ObjectInfo, PendingObject, Storage};

/// An operation on the wrapped storage, as its hook sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    List(FileKind),
    Read(FileKind, &'a str),
    ReadRange {
        kind: FileKind,
        name: &'a str,
        offset: u64,
        len: u64,
    },
    /// A named write ([`Storage::write`] or [`Storage::write_bytes`]) of this many bytes.
    Write(FileKind, &'a str, usize),
    /// The start of an object named when complete ([`Storage::begin_write`]).
    BeginWrite(FileKind),
    Remove(FileKind, &'a str),
    Size(FileKind, &'a str),
}

impl Op<'_> {
    /// The kind of object the operation is about.
    pub fn kind(&self) -> FileKind {
        match *self {
            Op::List(k) | Op::Read(k, _) | Op::Write(k, _, _) | Op::BeginWrite(k) => k,
            Op::Remove(k, _) | Op::Size(k, _) => k,
            Op::ReadRange { kind, .. } => kind,
        }
    }

    /// Whether it reads object contents (whole or a range).
    pub fn is_read(&self) -> bool {
        matches!(self, Op::Read(..) | Op::ReadRange { .. })
    }

    /// Whether it writes an object (named or streamed).
    pub fn is_write(&self) -> bool {
        matches!(self, Op::Write(..) | Op::BeginWrite(_))
    }
}

type Hook = Box<dyn Fn(&Op<'_>) -> Result<()> + Send + Sync>;

/// `inner` with `hook` called before each operation; an error from the hook is the
/// operation's result and `inner` is not called.
pub struct Intercepted {
    inner: Arc<dyn Storage>,
    hook: Hook,
}

impl Intercepted {
    pub fn new(
        inner: Arc<dyn Storage>,
        hook: impl Fn(&Op<'_>) -> Result<()> + Send + Sync + 'static,
    ) -> Intercepted {
        Intercepted {
            inner,
            hook: Box::new(hook),
        }
    }

    /// [`Intercepted::new`], ready to be opened as a repository.
    pub fn arc(
        inner: Arc<dyn Storage>,
        hook: impl Fn(&Op<'_>) -> Result<()> + Send + Sync + 'static,
    ) -> Arc<dyn Storage> {
        Arc::new(Intercepted::new(inner, hook))
    }
}

impl Storage for Intercepted {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self) -> Result<()> {
        self.inner.create()
    }
    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        (self.hook)(&Op::List(kind))?;
        self.inner.list(kind)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        (self.hook)(&Op::Read(kind, name))?;
        self.inner.read(kind, name)
    }
    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        (self.hook)(&Op::ReadRange {
            kind,
            name,
            offset,
            len,
        })?;
        self.inner.read_range(kind, name, offset, len)
    }
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        (self.hook)(&Op::Write(kind, name, data.len()))?;
        self.inner.write(kind, name, data)
    }
    fn write_bytes(&self, kind: FileKind, name: &str, data: bytes::Bytes) -> Result<()> {
        (self.hook)(&Op::Write(kind, name, data.len()))?;
        self.inner.write_bytes(kind, name, data)
    }
    fn begin_write(&self, kind: FileKind) -> Result<Box<dyn PendingObject>> {
        (self.hook)(&Op::BeginWrite(kind))?;
        self.inner.begin_write(kind)
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        (self.hook)(&Op::Remove(kind, name))?;
        self.inner.remove(kind, name)
    }
    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        (self.hook)(&Op::Size(kind, name))?;
        self.inner.size(kind, name)
    }
    fn concurrency(&self) -> usize {
        self.inner.concurrency()
    }
    fn remove_leftovers(&self, age: std::time::Duration) -> Result<(u64, u64)> {
        self.inner.remove_leftovers(age)
    }
    fn flush(&self) {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorKind};
    use crate::storage::MemoryStorage;
    use parking_lot::Mutex;

    #[test]
    fn the_hook_sees_each_operation_first_and_its_error_stops_it() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let s = Intercepted::new(Arc::new(MemoryStorage::new()), move |op| {
            log.lock().push(format!("{op:?}"));
            match op {
                Op::Write(FileKind::Snapshot, ..) => Err(Error::new(ErrorKind::NoSpace, "full")),
                _ => Ok(()),
            }
        });
        s.write(FileKind::Index, "aa", b"abc").unwrap();
        let e = s.write(FileKind::Snapshot, "bb", b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NoSpace);
        assert_eq!(s.read_range(FileKind::Index, "aa", 1, 2).unwrap(), b"bc");
        assert_eq!(s.list(FileKind::Snapshot).unwrap(), vec![]);
        assert_eq!(
            *seen.lock(),
            [
                "Write(Index, \"aa\", 3)",
                "Write(Snapshot, \"bb\", 1)",
                "ReadRange { kind: Index, name: \"aa\", offset: 1, len: 2 }",
                "List(Snapshot)",
            ]
        );
        assert!(Op::Read(FileKind::Pack, "p").is_read());
        assert!(Op::BeginWrite(FileKind::Pack).is_write());
        assert_eq!(Op::Size(FileKind::Key, "k").kind(), FileKind::Key);
    }
}
