//! Access by plain relative path, outside the repository layout: used to read directories
//! written by other programs (legacy Freezer containers, see `crate::freezer::legacy`).
//! Read-only on purpose: rime never writes into a foreign layout.

use super::ops;
use super::protocol::FXF_READ;
use super::SftpStorage;
use crate::error::{Error, ErrorKind, Result};
use crate::freezer::legacy::Listed;

impl SftpStorage {
    /// Names (with sizes when the server gives them) in the directory `rel` under the URL's
    /// path; an empty list when it does not exist. `.` and `..` are left out.
    pub fn list_path(&self, rel: &str) -> Result<Vec<Listed>> {
        let i = &self.inner;
        let dir = i.join(rel.trim_matches('/'));
        let entries = i
            .pool
            .run(|c, _| ops::list_dirs(c, &i.label, std::slice::from_ref(&dir)))?;
        Ok(entries
            .into_iter()
            .filter(|e| e.name != "." && e.name != "..")
            .map(|e| Listed {
                name: e.name,
                size: e.attrs.size,
                md5: None,
            })
            .collect())
    }

    /// Size of the file `rel`, or `None` when it does not exist.
    pub fn size_path(&self, rel: &str) -> Result<Option<u64>> {
        let i = &self.inner;
        let path = i.join(rel.trim_matches('/'));
        match i.pool.run(|c, _| ops::stat(c, &i.label, &path)) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `len` bytes of `rel` from `offset`; fewer only at the end of the file.
    pub fn read_path(&self, rel: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let i = &self.inner;
        let path = i.join(rel.trim_matches('/'));
        i.pool.run(|c, _| {
            let label = &i.label;
            let handle = ops::open(c, label, &path, FXF_READ).map_err(|e| {
                if e.kind() == ErrorKind::NotFound {
                    Error::new(
                        ErrorKind::MissingObject,
                        format!("{rel} is missing from {label}"),
                    )
                } else {
                    e
                }
            })?;
            let data = ops::read_at(c, label, &handle, &path, offset, len);
            let closed = ops::close(c, label, &handle, &path);
            let data = data?;
            closed?;
            Ok(data)
        })
    }
}
