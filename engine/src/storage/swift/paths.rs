//! Access by plain object path under the URL's prefix, outside the repository layout: used to
//! read containers written by other programs (legacy Freezer backups, see
//! `crate::freezer::legacy`). Read-only on purpose. A GET of a Dynamic or Static Large Object
//! manifest returns the concatenated segments, as Swift serves it.

use std::io::Read;

use reqwest::StatusCode;

use super::http::{header, status_error};
use super::SwiftStorage;
use crate::error::{Error, ErrorKind, Result};
use crate::freezer::legacy::Listed;

/// One entry of a delimiter listing: an object or a "subdir" prefix.
#[derive(serde::Deserialize)]
struct Entry {
    name: Option<String>,
    bytes: Option<u64>,
    /// The object's `ETag`: the MD5 of its content (of a manifest's own body for large objects).
    hash: Option<String>,
    subdir: Option<String>,
}

impl SwiftStorage {
    fn full(&self, rel: &str) -> String {
        let rel = rel.trim_matches('/');
        match (self.inner.prefix.is_empty(), rel.is_empty()) {
            (true, _) => rel.to_string(),
            (false, true) => self.inner.prefix.clone(),
            (false, false) => format!("{}/{rel}", self.inner.prefix),
        }
    }

    /// Names in the pseudo-directory `rel` (a delimiter listing): objects with their sizes
    /// (a manifest lists as 0 bytes) and MD5s, sub-directories with `None`.
    pub fn list_path(&self, rel: &str) -> Result<Vec<Listed>> {
        let me = &self.inner;
        let mut prefix = self.full(rel);
        if !prefix.is_empty() {
            prefix.push('/');
        }
        let what = || format!("cannot list {}: {prefix}", me.location());
        let mut out = Vec::new();
        let mut marker = String::new();
        loop {
            let Some(page) = me.listing_page::<Entry>(&what, &prefix, Some("/"), &marker)? else {
                break; // no container
            };
            let n = page.len();
            for e in page {
                let (full, size, md5) = match (e.subdir, e.name) {
                    (Some(d), _) => (d, None, None),
                    (None, Some(n)) => (n, Some(e.bytes.unwrap_or(0)), e.hash),
                    (None, None) => continue,
                };
                marker = full.clone();
                let name = full[prefix.len().min(full.len())..].trim_end_matches('/');
                if !name.is_empty() {
                    out.push(Listed {
                        name: name.to_string(),
                        size,
                        md5: md5.and_then(|h| plain_md5(&h)),
                    });
                }
            }
            // Until an empty page: a server may cap pages below the limit asked for.
            if n == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// Size of the object `rel` (for a large object manifest, the total), or `None`.
    pub fn size_path(&self, rel: &str) -> Result<Option<u64>> {
        let me = &self.inner;
        let object = self.full(rel);
        let what = || format!("cannot stat {}: {object}", me.location());
        let resp = me.client.send(&what, &|http, s| {
            http.head(me.object_url(&s.storage_url, &object))
        })?;
        match resp.status() {
            s if s.is_success() => Ok(header(&resp, "Content-Length").and_then(|v| v.parse().ok())),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(status_error(&what(), s)),
        }
    }

    /// `len` bytes of the object `rel` from `offset`; fewer only at its end.
    pub fn read_path(&self, rel: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let me = &self.inner;
        let object = self.full(rel);
        if len == 0 {
            return Ok(vec![]);
        }
        let what = || format!("cannot read {}: {object}", me.location());
        let mut resp = me.client.send(&what, &|http, s| {
            http.get(me.object_url(&s.storage_url, &object))
                .header("Range", format!("bytes={offset}-{}", offset + len - 1))
        })?;
        let ranged = match resp.status() {
            StatusCode::PARTIAL_CONTENT => true,
            StatusCode::RANGE_NOT_SATISFIABLE => return Ok(vec![]),
            StatusCode::NOT_FOUND => {
                return Err(Error::new(
                    ErrorKind::MissingObject,
                    format!("{object} is missing from {}", me.location()),
                ))
            }
            s if s.is_success() => false,
            s => return Err(status_error(&what(), s)),
        };
        let mut body = Vec::new();
        resp.read_to_end(&mut body).map_err(|e| {
            Error::with_source(
                ErrorKind::Unavailable,
                format!("{}: the download broke off", what()),
                e,
            )
        })?;
        if !ranged {
            body = super::cut_to_range(body, offset, len);
        }
        Ok(body)
    }
}

/// A listed hash that is a plain MD5 (32 hex digits, quotes dropped), lower-cased. Other
/// forms (empty, or the ETags some Swift-compatible servers give multipart objects, such as
/// `md5-N`) are not checksums of the content and are ignored rather than compared.
fn plain_md5(h: &str) -> Option<String> {
    let h = h.trim().trim_matches('"');
    (h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit())).then(|| h.to_ascii_lowercase())
}

#[cfg(test)]
mod plain_md5_tests {
    #[test]
    fn only_plain_md5_hashes_are_kept() {
        let md5 = "D41D8CD98F00B204E9800998ECF8427E";
        assert_eq!(super::plain_md5(md5).unwrap(), md5.to_ascii_lowercase());
        assert_eq!(
            super::plain_md5(&format!("\"{md5}\"")).unwrap(),
            md5.to_ascii_lowercase()
        );
        for bad in [
            "",
            "abc",
            "d41d8cd98f00b204e9800998ecf8427e-3",
            "zz1d8cd98f00b204e9800998ecf8427e",
        ] {
            assert_eq!(super::plain_md5(bad), None, "{bad}");
        }
    }
}
