//! A repository in an OpenStack Swift container: `swift://container/prefix`.
//!
//! Each repository file is one object, `PREFIX/` + [`FileKind::path`] (so packs are
//! `PREFIX/data/ab/abcd…`). Swift makes an object visible only once its PUT is complete, which
//! gives the atomic visibility the [`Storage`] contract asks for; every upload carries the MD5 of
//! its body as `ETag`, so Swift refuses a body damaged on the way, and the ETag it answers is
//! compared again. Objects are limited to Swift's 5 GiB single-object size (packs are far smaller).
//!
//! Credentials: see [`SwiftCredentials`]. The storage is blocking and thread-safe; concurrent
//! callers share one connection pool and one token.

mod auth_v1;
mod client;
mod credentials;
mod http;
mod keystone;
mod paths;
mod session;
mod watched;

pub use credentials::{read_osrc, Interface, KeystoneMethod, SwiftCredentials};

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use md5::{Digest, Md5};
use reqwest::StatusCode;

use crate::error::{Error, ErrorKind, Result};
use crate::storage::retry::{with_retries, RetryPolicy};
use crate::storage::{check_name, missing, FileKind, ObjectInfo, PendingObject, Storage};
use client::SwiftClient;
use http::{encode_path, header, response_error, status_error, transport_error};

/// Swift answers at most 10000 names a listing request; asking for that many keeps the number
/// of round trips low.
const LIST_LIMIT: usize = 10_000;

pub struct SwiftStorage {
    inner: Arc<Inner>,
}

struct Inner {
    client: SwiftClient,
    container: String,
    /// Without leading or trailing `/`; empty for the container's top.
    prefix: String,
    list_limit: usize,
}

impl SwiftStorage {
    /// Open `swift://container/prefix` (prefix optional) with the given credentials. Nothing is
    /// contacted yet: authentication happens with the first request.
    pub fn open(url: &str, creds: SwiftCredentials) -> Result<SwiftStorage> {
        let rest = url.strip_prefix("swift://").ok_or_else(|| {
            Error::invalid(format!("{url:?} is not a swift://container/prefix URL"))
        })?;
        let (container, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/');
        if container.is_empty() || container.len() > 256 {
            return Err(Error::invalid(format!(
                "{url:?}: the container name must be 1 to 256 characters (swift://container/prefix)"
            )));
        }
        if prefix
            .split('/')
            .any(|seg| seg.is_empty() && !prefix.is_empty())
            || prefix.split('/').any(|seg| seg == "." || seg == "..")
        {
            return Err(Error::invalid(format!(
                "{url:?}: the prefix has an empty, '.' or '..' component"
            )));
        }
        Ok(SwiftStorage {
            inner: Arc::new(Inner {
                client: SwiftClient::new(creds)?,
                container: container.to_string(),
                prefix: prefix.to_string(),
                list_limit: LIST_LIMIT,
            }),
        })
    }

    /// Ask for at most `limit` names per listing request (tests use a small one so that paging
    /// with `marker` is really exercised).
    pub fn with_list_limit(mut self, limit: usize) -> SwiftStorage {
        let inner = Arc::get_mut(&mut self.inner).expect("set before the storage is shared");
        inner.list_limit = limit.max(1);
        self
    }

    #[cfg(test)]
    pub(crate) fn spoil_token(&self) -> Result<()> {
        self.inner.client.spoil_token()
    }
}

impl Inner {
    fn location(&self) -> String {
        let p = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("/{}", self.prefix)
        };
        format!(
            "swift://{}{p} (auth {})",
            self.container,
            self.client.credentials().auth_url()
        )
    }

    fn object(&self, kind: FileKind, name: &str) -> String {
        if self.prefix.is_empty() {
            kind.path(name)
        } else {
            format!("{}/{}", self.prefix, kind.path(name))
        }
    }

    fn container_url(&self, storage_url: &str) -> String {
        format!("{storage_url}/{}", encode_path(&self.container, false))
    }

    fn object_url(&self, storage_url: &str, object: &str) -> String {
        format!(
            "{}/{}",
            self.container_url(storage_url),
            encode_path(object, true)
        )
    }

    fn what(&self, kind: FileKind, name: &str) -> String {
        format!("{}: {}", self.location(), kind.path(name))
    }

    fn create_container(&self) -> Result<()> {
        let what = || {
            format!(
                "{}: cannot create container {}",
                self.location(),
                self.container
            )
        };
        let resp = self.client.send(&what, &|http, s| {
            http.put(self.container_url(&s.storage_url))
        })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(response_error(&what(), resp))
        }
    }

    /// Upload one object, checked by its MD5; the container is created when missing.
    fn put(&self, kind: FileKind, name: &str, body: Bytes, md5: [u8; 16]) -> Result<()> {
        check_name(kind, name)?;
        let object = self.object(kind, name);
        let etag = hex::encode(md5);
        let what = || format!("cannot upload {}", self.what(kind, name));
        let mut created = false;
        loop {
            let resp = self.client.upload(
                &what,
                &|http, s| {
                    let r = http
                        .put(self.object_url(&s.storage_url, &object))
                        .header("ETag", &etag)
                        .header("Content-Type", "application/octet-stream");
                    // The config is create-only: Swift answers 412 when it already exists.
                    let r = match kind {
                        FileKind::Config => r.header("If-None-Match", "*"),
                        _ => r,
                    };
                    r
                },
                &body,
            )?;
            match resp.status().as_u16() {
                200..=299 => {
                    let got = header(&resp, "ETag")
                        .map(|v| v.trim_matches('"').to_ascii_lowercase());
                    return match got {
                        Some(g) if g == etag => Ok(()),
                        g => Err(Error::corrupt(format!(
                            "{}: Swift answered ETag {} for an upload whose MD5 is {etag}",
                            what(),
                            g.as_deref().unwrap_or("(none)")
                        ))),
                    };
                }
                412 if kind == FileKind::Config => {
                    let existing = self
                        .get(kind, name, None)
                        .and_then(|resp| self.body(kind, name, resp));
                    return crate::storage::existing_config(&self.location(), existing, &body);
                }
                404 if !created => {
                    self.create_container()?;
                    created = true;
                }
                422 => {
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        format!("{}: Swift refused the body: its MD5 differs from {etag} (damaged in transit)", what()),
                    ))
                }
                _ => return Err(response_error(&what(), resp)),
            }
        }
    }

    /// GET an object (or a range of it): the response, or `MissingObject`.
    fn get(
        &self,
        kind: FileKind,
        name: &str,
        range: Option<(u64, u64)>,
    ) -> Result<reqwest::blocking::Response> {
        check_name(kind, name)?;
        let object = self.object(kind, name);
        let what = || format!("cannot read {}", self.what(kind, name));
        let resp = self.client.send(&what, &|http, s| {
            let r = http.get(self.object_url(&s.storage_url, &object));
            match range {
                Some((off, len)) => r.header("Range", format!("bytes={off}-{}", off + len - 1)),
                None => r,
            }
        })?;
        match resp.status() {
            s if s.is_success() => Ok(resp),
            StatusCode::NOT_FOUND => Err(missing(kind, name, &self.location())),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let (off, len) = range.unwrap_or_default();
                Err(Error::corrupt(format!(
                    "{} is truncated: wanted bytes {off}..{} but it is shorter",
                    self.what(kind, name),
                    off + len
                )))
            }
            s => Err(status_error(&what(), s)),
        }
    }

    /// The whole body, read into one buffer sized by Content-Length.
    fn body(
        &self,
        kind: FileKind,
        name: &str,
        mut resp: reqwest::blocking::Response,
    ) -> Result<Vec<u8>> {
        let expect = resp.content_length();
        let mut buf = Vec::with_capacity(expect.unwrap_or(0).min(1 << 30) as usize);
        resp.read_to_end(&mut buf).map_err(|e| {
            Error::with_source(
                ErrorKind::Unavailable,
                format!(
                    "cannot read {}: the download broke off",
                    self.what(kind, name)
                ),
                e,
            )
        })?;
        if let Some(n) = expect {
            if buf.len() as u64 != n {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "cannot read {}: got {} of {n} bytes",
                        self.what(kind, name),
                        buf.len()
                    ),
                ));
            }
        }
        Ok(buf)
    }

    fn list_prefix(&self, kind: FileKind) -> String {
        let dir = format!("{}/", kind.dir());
        if self.prefix.is_empty() {
            dir
        } else {
            format!("{}/{dir}", self.prefix)
        }
    }

    /// One page of the container's JSON listing: names under `prefix` after `marker`, rolled up
    /// at `delimiter` when given. `None` when the container does not exist (nothing stored
    /// yet); an empty page when the listing is done.
    fn listing_page<T: serde::de::DeserializeOwned>(
        &self,
        what: &dyn Fn() -> String,
        prefix: &str,
        delimiter: Option<&str>,
        marker: &str,
    ) -> Result<Option<Vec<T>>> {
        let limit = self.list_limit.to_string();
        let resp = self.client.send(what, &|http, s| {
            let mut q = vec![
                ("format", "json"),
                ("prefix", prefix),
                ("limit", limit.as_str()),
                ("marker", marker),
            ];
            if let Some(d) = delimiter {
                q.push(("delimiter", d));
            }
            http.get(self.container_url(&s.storage_url)).query(&q)
        })?;
        match resp.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            StatusCode::NO_CONTENT => return Ok(Some(vec![])),
            s if s.is_success() => {}
            s => return Err(status_error(&what(), s)),
        }
        let raw = resp.bytes().map_err(|e| transport_error(&what(), &e))?;
        serde_json::from_slice(&raw).map(Some).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                format!("{}: the listing is not JSON: {e}", what()),
            )
        })
    }

    fn head(&self, kind: FileKind, name: &str) -> Result<Option<u64>> {
        check_name(kind, name)?;
        let object = self.object(kind, name);
        let what = || format!("cannot stat {}", self.what(kind, name));
        let resp = self.client.send(&what, &|http, s| {
            http.head(self.object_url(&s.storage_url, &object))
        })?;
        match resp.status() {
            s if s.is_success() => {
                let len = header(&resp, "Content-Length")
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::Unavailable,
                            format!("{}: no Content-Length", what()),
                        )
                    })?;
                Ok(Some(len))
            }
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(status_error(&what(), s)),
        }
    }
}

/// One entry of a JSON container listing.
#[derive(serde::Deserialize)]
struct Listed {
    name: String,
    bytes: u64,
}

impl Storage for SwiftStorage {
    /// Single Swift transfers are latency-bound: upload several packs at once (each pending
    /// pack is held in memory, so this also bounds memory).
    fn concurrency(&self) -> usize {
        4
    }

    fn location(&self) -> String {
        self.inner.location()
    }

    fn create(&self) -> Result<()> {
        self.inner.create_container()
    }

    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        let me = &self.inner;
        if kind == FileKind::Config {
            return Ok(me
                .head(kind, "config")?
                .map(|size| ObjectInfo {
                    name: "config".into(),
                    size,
                })
                .into_iter()
                .collect());
        }
        let prefix = me.list_prefix(kind);
        let what = || format!("cannot list {}: {prefix}", me.location());
        let mut out = Vec::new();
        let mut marker = String::new();
        loop {
            let Some(page) = me.listing_page::<Listed>(&what, &prefix, None, &marker)? else {
                return Ok(vec![]); // no container: nothing stored yet
            };
            // Paged until an empty page, not until a short one: a server may cap pages below
            // the limit asked for (Ceph RGW answers at most 1000), and a short page is then
            // not the last.
            let Some(last) = page.last() else { break };
            marker = last.name.clone();
            for o in page {
                let rest = &o.name[prefix.len()..];
                let name = match (kind, rest.split_once('/')) {
                    (FileKind::Pack, Some((sub, n))) if n.starts_with(sub) && sub.len() == 2 => n,
                    (FileKind::Pack, _) | (_, Some(_)) => continue,
                    (_, None) => rest,
                };
                if check_name(kind, name).is_ok() {
                    out.push(ObjectInfo {
                        name: name.to_string(),
                        size: o.bytes,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let resp = self.inner.get(kind, name, None)?;
        self.inner.body(kind, name, resp)
    }

    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let me = &self.inner;
        if len == 0 {
            let size = me
                .head(kind, name)?
                .ok_or_else(|| missing(kind, name, &me.location()))?;
            if offset > size {
                return Err(Error::corrupt(format!(
                    "{} is truncated: wanted bytes from {offset} but it ends at {size}",
                    me.what(kind, name)
                )));
            }
            return Ok(vec![]);
        }
        let resp = me.get(kind, name, Some((offset, len)))?;
        let ranged = resp.status() == StatusCode::PARTIAL_CONTENT;
        let mut body = me.body(kind, name, resp)?;
        if !ranged {
            body = cut_to_range(body, offset, len);
        }
        if body.len() as u64 != len {
            return Err(Error::corrupt(format!(
                "{} is truncated: wanted bytes {offset}..{} but it ends at {}",
                me.what(kind, name),
                offset + len,
                offset + body.len() as u64
            )));
        }
        Ok(body)
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.write_bytes(kind, name, Bytes::copy_from_slice(data))
    }

    fn write_bytes(&self, kind: FileKind, name: &str, data: Bytes) -> Result<()> {
        check_name(kind, name)?;
        let md5 = md5_memo::content_md5(kind, name, &data);
        self.inner.put(kind, name, data, md5)
    }

    fn begin_write(&self, kind: FileKind) -> Result<Box<dyn PendingObject>> {
        Ok(Box::new(SwiftPending {
            inner: self.inner.clone(),
            kind,
            data: buffers::POOL.take(kind),
            md5: Md5::new(),
        }))
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let me = &self.inner;
        check_name(kind, name)?;
        let object = me.object(kind, name);
        let what = || format!("cannot remove {}", me.what(kind, name));
        let resp = me.client.send(&what, &|http, s| {
            http.delete(me.object_url(&s.storage_url, &object))
        })?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(missing(kind, name, &me.location())),
            s => Err(status_error(&what(), s)),
        }
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.inner
            .head(kind, name)?
            .ok_or_else(|| missing(kind, name, &self.inner.location()))
    }
}

/// A pack being collected: its bytes in one buffer that is handed to the upload without a
/// copy, its MD5 computed as the bytes arrive.
struct SwiftPending {
    inner: Arc<Inner>,
    kind: FileKind,
    data: Vec<u8>,
    md5: Md5,
}

impl PendingObject for SwiftPending {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.md5.update(data);
        self.data.extend_from_slice(data);
        Ok(())
    }

    /// The retry wrapper cannot replay a streamed object, so the upload retries here, with the
    /// same policy (the body is shared, not copied, between attempts).
    fn commit(self: Box<Self>, _storage: &dyn Storage, name: &str) -> Result<()> {
        let md5: [u8; 16] = self.md5.finalize().into();
        let body = Bytes::from(self.data);
        with_retries(&RetryPolicy::default(), |_| {
            self.inner.put(self.kind, name, body.clone(), md5)
        })?;
        buffers::POOL.give_back(body);
        Ok(())
    }
}

/// The requested range of a whole object, for servers that ignore `Range` and send it all.
fn cut_to_range(body: Vec<u8>, offset: u64, len: u64) -> Vec<u8> {
    let mut body = body
        .get(offset as usize..)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    body.truncate(len as usize);
    body
}

mod buffers;
mod md5_memo;
#[cfg(test)]
mod tests;
