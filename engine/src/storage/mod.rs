//! Where repository files live.
//!
//! Semantics every storage must provide (checked by the conformance tests):
//! - **Atomic visibility**: a written object is either absent or complete; a reader never sees a
//!   partial object, even if the writer is killed.
//! - **Immutable, content-addressed objects**: apart from locks, a name always denotes the same
//!   bytes, so writing an existing object again is an idempotent success (retries are safe).
//! - `list` may miss objects written concurrently but never lists partial ones.
//! - `remove` of a missing object is an error of kind `MissingObject` (callers may ignore it).

pub mod bandwidth;
pub mod dry_run;
mod fanout;
pub mod intercept;
mod kill_hook;
pub mod layers;
pub mod limit;
mod local;
mod memory;
pub mod retry;
pub mod sftp;
pub mod swift;
#[cfg(test)]
pub(crate) mod testing;

pub use fanout::{Fanout, MemberReport};
pub use layers::{open_layered, OpenOptions};
pub use local::LocalStorage;
pub use memory::MemoryStorage;
pub use swift::{read_osrc, SwiftCredentials, SwiftStorage};

use std::sync::Arc;

use crate::error::{Error, Result};

/// The kinds of files in a repository, each in its own directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    Config,
    Key,
    Pack,
    Index,
    Snapshot,
    Lock,
    /// Prune's records of packs marked for deletion (format-spec/SPEC.md, section 9).
    Pending,
}

impl FileKind {
    pub const ALL: [FileKind; 7] = [
        FileKind::Config,
        FileKind::Key,
        FileKind::Pack,
        FileKind::Index,
        FileKind::Snapshot,
        FileKind::Lock,
        FileKind::Pending,
    ];

    /// Directory name in the repository layout ("" for the config file at the top).
    pub fn dir(self) -> &'static str {
        match self {
            FileKind::Config => "",
            FileKind::Key => "keys",
            FileKind::Pack => "data",
            FileKind::Index => "index",
            FileKind::Snapshot => "snapshots",
            FileKind::Lock => "locks",
            FileKind::Pending => "pending",
        }
    }

    /// Relative path of an object: packs are spread over 256 sub-directories by their first byte.
    pub fn path(self, name: &str) -> String {
        match self {
            FileKind::Config => "config".to_string(),
            FileKind::Pack => format!("data/{}/{name}", &name[..2.min(name.len())]),
            _ => format!("{}/{name}", self.dir()),
        }
    }
}

/// Object names are lower-case hex (or "config"); anything else is refused so that a name can
/// never escape its directory.
pub fn check_name(kind: FileKind, name: &str) -> Result<()> {
    let ok = match kind {
        FileKind::Config => name == "config",
        _ => {
            name.len() >= 2
                && name.len() <= 128
                && name
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid object name {name:?} for {kind:?}"
        )))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub name: String,
    pub size: u64,
}

/// A place to keep repository files. Implementations are blocking and thread-safe; callers
/// parallelise with threads.
pub trait Storage: Send + Sync {
    /// Human-readable location, used in messages.
    fn location(&self) -> String;
    /// Create the directory layout of a new repository (succeeds if it already exists).
    fn create(&self) -> Result<()>;
    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>>;
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>>;
    /// Read `len` bytes at `offset`; a short object is an error of kind `Corrupt`.
    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()>;
    /// [`Storage::write`] of bytes the caller hands over (shared, reference-counted). Storages
    /// that keep the buffer (Swift's upload body) and layers that pass it to several storages
    /// ([`Fanout`]) override this to avoid copying a whole pack per storage.
    fn write_bytes(&self, kind: FileKind, name: &str, data: bytes::Bytes) -> Result<()> {
        self.write(kind, name, &data)
    }
    /// Start an object whose name is known only once it is complete (a pack is named by the
    /// hash of its bytes). Storages that can stream (local files) override this so a pack is
    /// never held in memory; the default collects the bytes and calls [`Storage::write`].
    fn begin_write(&self, kind: FileKind) -> Result<Box<dyn PendingObject>> {
        Ok(Box::new(BufferedObject {
            kind,
            data: Vec::new(),
        }))
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()>;
    /// Size of an object, or `MissingObject`.
    fn size(&self, kind: FileKind, name: &str) -> Result<u64>;
    /// How many objects callers should upload at once: 1 for local disks (one streaming writer
    /// keeps up), more for network storages whose single transfers are latency-bound.
    fn concurrency(&self) -> usize {
        1
    }

    /// How many independent copies of the repository reads can come from: several when one
    /// backup is written to several storages ([`Fanout`]), else 1.
    fn replicas(&self) -> usize {
        1
    }

    /// Remove temporary files that writers killed mid-object left behind (`.tmp-*`), if older
    /// than `age` (a running writer's are younger). Returns files and bytes removed. Storages
    /// without such files (Swift: an upload is one request) keep the default.
    fn remove_leftovers(&self, age: std::time::Duration) -> Result<(u64, u64)> {
        let _ = age;
        Ok((0, 0))
    }

    /// Wait until every write accepted so far is stored (several storages queue writes; a
    /// single storage stores each before returning).
    fn flush(&self) {}

    /// [`Storage::read`] from one copy only (`replica < replicas()`): an index file, snapshot
    /// or tree that fails verification is read again from the other copies.
    fn read_replica(&self, replica: usize, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        if replica == 0 {
            self.read(kind, name)
        } else {
            Err(no_such_replica(&self.location(), replica))
        }
    }

    /// [`Storage::read_range`] from one copy only (`replica < replicas()`). A restore that finds
    /// a blob damaged re-reads it from the other copies instead of failing: a storage can serve
    /// a corrupted object without any error of its own.
    fn read_range_replica(
        &self,
        replica: usize,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        if replica == 0 {
            self.read_range(kind, name, offset, len)
        } else {
            Err(no_such_replica(&self.location(), replica))
        }
    }
}

/// The error for [`Storage::read_range_replica`] past the last copy.
pub(crate) fn no_such_replica(location: &str, replica: usize) -> Error {
    Error::invalid(format!("{location} has no copy number {replica}"))
}

/// An object being written by [`Storage::begin_write`]. Invisible until committed; dropping it
/// uncommitted discards it.
pub trait PendingObject: Send {
    fn append(&mut self, data: &[u8]) -> Result<()>;
    /// Make the object visible under `name`, atomically, with [`Storage::write`]'s guarantees.
    fn commit(self: Box<Self>, storage: &dyn Storage, name: &str) -> Result<()>;
}

/// The default pending object: bytes in memory, written in one piece at commit.
struct BufferedObject {
    kind: FileKind,
    data: Vec<u8>,
}

impl PendingObject for BufferedObject {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn commit(self: Box<Self>, storage: &dyn Storage, name: &str) -> Result<()> {
        storage.write_bytes(self.kind, name, bytes::Bytes::from(self.data))
    }
}

/// Open a storage from a repository URL: a plain path, `local:/path`, `sftp://...` or
/// `swift://container/prefix` (credentials from the environment, see [`SwiftCredentials`]),
/// with default options and no wrappers (see [`open_layered`] for a run's full stack).
pub fn open_url(url: &str) -> Result<Arc<dyn Storage>> {
    if let Some(path) = url.strip_prefix("local:") {
        return Ok(Arc::new(LocalStorage::new(path)));
    }
    if url.starts_with("sftp://") {
        return Ok(Arc::new(sftp::SftpStorage::open(url, &Default::default())?));
    }
    if url.starts_with("swift://") {
        let creds = SwiftCredentials::from_env().map_err(|e| e.within(url))?;
        return Ok(Arc::new(SwiftStorage::open(url, creds)?));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return Err(Error::invalid(format!(
            "repository URL scheme '{scheme}://' is not supported yet (use a path or local:/path)"
        )));
    }
    if url.is_empty() {
        return Err(Error::invalid(
            "empty repository URL: give --repo or set RIME_REPO",
        ));
    }
    Ok(Arc::new(LocalStorage::new(url)))
}

/// What a create-only config write answers when `config` already exists at `location`: the
/// same bytes are success (a retried write whose first attempt landed, or `rime copy` seeding
/// the same repository), other bytes are `RepositoryExists`. A config is never replaced: every
/// index file and snapshot of the repository already there would become unreadable.
pub(crate) fn existing_config(
    location: &str,
    existing: Result<Vec<u8>>,
    ours: &[u8],
) -> Result<()> {
    match existing {
        Ok(bytes) if bytes == ours => Ok(()),
        Ok(_) => Err(Error::new(
            crate::ErrorKind::RepositoryExists,
            format!("a repository already exists at {location}: its config is never replaced"),
        )),
        Err(e) => Err(e.within(format!(
            "{location}: a config already exists and cannot be read back"
        ))),
    }
}

pub(crate) fn missing(kind: FileKind, name: &str, location: &str) -> Error {
    Error::new(
        crate::ErrorKind::MissingObject,
        format!("{} is missing from {location}", kind.path(name)),
    )
}

#[cfg(test)]
pub(crate) mod conformance;
