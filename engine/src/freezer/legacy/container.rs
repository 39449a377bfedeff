//! Where a Freezer container lives: a local directory, a directory on an SSH server (SFTP) or
//! a Swift container (with an optional prefix), read by plain relative paths.
//!
//! rime's [`Storage`](crate::storage::Storage) trait addresses repository files by kind and hex
//! name, which cannot name Freezer's objects (`data/tar/host_name/1700000000/0_1700000000/data`),
//! so legacy containers get this small read-only interface instead; the SFTP and Swift
//! implementations reuse those storages' connections, authentication and error handling.

use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};
use crate::storage::sftp::{SftpOptions, SftpStorage};
use crate::storage::{SwiftCredentials, SwiftStorage};

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    /// For files, when known: their size.
    pub size: Option<u64>,
    /// The MD5 of the content (lower-case hex) as the storage recorded it when the object was
    /// written: Swift lists each object's `ETag`. Checked on read, so an object damaged at rest
    /// is named instead of being fed to the decompressor.
    pub md5: Option<String>,
}

impl Listed {
    fn plain((name, size): (String, Option<u64>)) -> Listed {
        Listed {
            name,
            size,
            md5: None,
        }
    }
}

/// Read-only access to a Freezer container by relative path (`/`-separated).
pub trait Container: Send + Sync {
    /// Human-readable location, used in messages.
    fn location(&self) -> String;
    /// Entries of the directory `dir` (`""` = the container's top). A missing directory is an
    /// empty list.
    fn list_dir(&self, dir: &str) -> Result<Vec<Listed>>;
    /// Size of the object at `path`, or `None` when there is none.
    fn size(&self, path: &str) -> Result<Option<u64>>;
    /// `len` bytes from `offset` (fewer only at the end of the object).
    fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
}

/// A container in a local directory (Freezer's `--storage local`, `--container /path`).
pub struct LocalContainer {
    root: PathBuf,
}

impl LocalContainer {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalContainer { root: root.into() }
    }

    fn path(&self, rel: &str) -> PathBuf {
        let rel = rel.trim_matches('/');
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }
}

impl Container for LocalContainer {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn list_dir(&self, dir: &str) -> Result<Vec<Listed>> {
        let p = self.path(dir);
        let rd = match std::fs::read_dir(&p) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(Error::io(format!("cannot list {}", p.display()), e)),
        };
        let mut out = vec![];
        for ent in rd {
            let ent = ent.map_err(|e| Error::io(format!("cannot list {}", p.display()), e))?;
            let size = ent.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
            out.push(Listed::plain((
                ent.file_name().to_string_lossy().into_owned(),
                size,
            )));
        }
        Ok(out)
    }

    fn size(&self, path: &str) -> Result<Option<u64>> {
        let p = self.path(path);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("cannot stat {}", p.display()), e)),
        }
    }

    fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let p = self.path(path);
        let mut f = std::fs::File::open(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::new(
                    ErrorKind::MissingObject,
                    format!("{} is missing", p.display()),
                )
            } else {
                Error::io(format!("cannot open {}", p.display()), e)
            }
        })?;
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io(format!("cannot read {}", p.display()), e))?;
        let mut buf = Vec::with_capacity(len.min(64 << 20) as usize);
        f.take(len)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(format!("cannot read {}", p.display()), e))?;
        Ok(buf)
    }
}

/// SFTP and Swift serve plain paths (outside a rime repository) through the same three
/// methods.
macro_rules! container_by_paths {
    ($($t:ty),*) => {$(
        impl Container for $t {
            fn location(&self) -> String {
                crate::storage::Storage::location(self)
            }
            fn list_dir(&self, dir: &str) -> Result<Vec<Listed>> {
                self.list_path(dir)
            }
            fn size(&self, path: &str) -> Result<Option<u64>> {
                self.size_path(path)
            }
            fn read_range(&self, path: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
                self.read_path(path, offset, len)
            }
        }
    )*};
}

container_by_paths!(SftpStorage, SwiftStorage);

/// How to reach remote containers.
#[derive(Debug, Clone, Default)]
pub struct ContainerOptions {
    pub sftp: SftpOptions,
    /// Swift credentials; `None` reads them from the environment (`ST_*` / `OS_*`).
    pub swift: Option<SwiftCredentials>,
}

/// Open a Freezer container: a path or `local:/path`, `sftp://user@host[:port]/path`, or
/// `swift://container[/prefix]`.
pub fn open_container(url: &str, opts: &ContainerOptions) -> Result<Box<dyn Container>> {
    if let Some(path) = url.strip_prefix("local:") {
        return Ok(Box::new(LocalContainer::new(path)));
    }
    if url.starts_with("sftp://") {
        return Ok(Box::new(SftpStorage::open(url, &opts.sftp)?));
    }
    if url.starts_with("swift://") {
        let creds = match &opts.swift {
            Some(c) => c.clone(),
            None => SwiftCredentials::from_env().map_err(|e| e.within(url))?,
        };
        return Ok(Box::new(SwiftStorage::open(url, creds)?));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return Err(Error::invalid(format!(
            "Freezer container URL scheme '{scheme}://' is not supported (use a path, \
             sftp://user@host/path or swift://container)"
        )));
    }
    if url.is_empty() {
        return Err(Error::invalid("empty Freezer container location"));
    }
    Ok(Box::new(LocalContainer::new(url)))
}
