//! An authenticated Swift account: one pooled HTTP client shared by every thread, one token
//! shared by every request, renewed before it expires or when a request gets 401.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use reqwest::blocking::{Client, RequestBuilder, Response};

use super::credentials::SwiftCredentials;
use super::http::transport_error;
use super::session::Session;
use super::{auth_v1, keystone};
use crate::error::{Error, ErrorKind, Result};

/// Time without progress allowed to a request (see [`super::watched`]): for requests without a
/// body, the wait for the response headers and then each read of the response body; uploads
/// are watched for progress instead of bounded as a whole. A hung server then becomes an
/// `Unavailable` error instead of a hung backup, and a slow link is not cut off.
const IDLE_TIMEOUT: Duration = super::watched::IDLE;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

pub(super) struct SwiftClient {
    http: Client,
    creds: SwiftCredentials,
    current: RwLock<Option<Arc<Session>>>,
    /// Held while authenticating, so that threads that all found the token stale wait for
    /// one renewal instead of each asking for a token.
    renewing: Mutex<()>,
}

impl SwiftClient {
    pub fn new(creds: SwiftCredentials) -> Result<SwiftClient> {
        let http = Client::builder()
            .timeout(IDLE_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_nodelay(true)
            .user_agent(concat!("rime/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::with_source(ErrorKind::Io, "cannot set up the HTTP client", e))?;
        Ok(SwiftClient {
            http,
            creds,
            current: RwLock::new(None),
            renewing: Mutex::new(()),
        })
    }

    pub fn credentials(&self) -> &SwiftCredentials {
        &self.creds
    }

    /// A token that is not known to be stale, authenticating when there is none.
    pub fn session(&self) -> Result<Arc<Session>> {
        if let Some(s) = self.current.read().as_ref().filter(|s| s.fresh()) {
            return Ok(s.clone());
        }
        let _one_at_a_time = self.renewing.lock();
        if let Some(s) = self.current.read().as_ref().filter(|s| s.fresh()) {
            return Ok(s.clone());
        }
        let s = Arc::new(self.authenticate()?);
        *self.current.write() = Some(s.clone());
        Ok(s)
    }

    fn authenticate(&self) -> Result<Session> {
        match &self.creds {
            SwiftCredentials::V1 {
                auth_url,
                user,
                key,
            } => auth_v1::authenticate(&self.http, auth_url, user, key),
            SwiftCredentials::Keystone {
                auth_url,
                method,
                region,
                interface,
            } => {
                keystone::authenticate(&self.http, auth_url, method, region.as_deref(), *interface)
            }
        }
    }

    /// Forget a token the server refused (unless another thread already replaced it).
    fn invalidate(&self, s: &Arc<Session>) {
        let mut cur = self.current.write();
        if cur.as_ref().is_some_and(|c| Arc::ptr_eq(c, s)) {
            *cur = None;
        }
    }

    /// Send a request built for the current session. A 401 means the token expired or was
    /// revoked: the request is sent once more with a fresh token, and a second 401 is
    /// `Unauthorized`. Every other status is for the caller to judge.
    pub fn send(
        &self,
        what: &dyn Fn() -> String,
        build: &dyn Fn(&Client, &Session) -> RequestBuilder,
    ) -> Result<Response> {
        self.send_with(what, build, None)
    }

    /// [`SwiftClient::send`] of a request with a body, watched for progress (an upload).
    pub fn upload(
        &self,
        what: &dyn Fn() -> String,
        build: &dyn Fn(&Client, &Session) -> RequestBuilder,
        body: &bytes::Bytes,
    ) -> Result<Response> {
        self.send_with(what, build, Some(body))
    }

    fn send_with(
        &self,
        what: &dyn Fn() -> String,
        build: &dyn Fn(&Client, &Session) -> RequestBuilder,
        body: Option<&bytes::Bytes>,
    ) -> Result<Response> {
        let mut renewed = false;
        loop {
            let s = self.session().map_err(|e| e.within(what()))?;
            let req = build(&self.http, &s).header("X-Auth-Token", &s.token);
            let resp = match body {
                None => req.send().map_err(|e| transport_error(&what(), &e))?,
                Some(b) => match super::watched::send(req, b.clone(), IDLE_TIMEOUT) {
                    Ok(r) => r,
                    Err(super::watched::Failure::Transport(e)) => {
                        return Err(transport_error(&what(), &e))
                    }
                    Err(super::watched::Failure::Stalled(quiet)) => {
                        return Err(Error::new(
                            ErrorKind::Unavailable,
                            format!(
                                "{}: the upload stalled: nothing sent and no answer for {} s",
                                what(),
                                quiet.as_secs()
                            ),
                        ))
                    }
                },
            };
            if resp.status().as_u16() != 401 {
                return Ok(resp);
            }
            if renewed {
                return Err(Error::new(
                    ErrorKind::Unauthorized,
                    format!(
                        "{}: HTTP 401 Unauthorized even with a new token from {}",
                        what(),
                        self.creds.auth_url()
                    ),
                ));
            }
            self.invalidate(&s);
            renewed = true;
        }
    }

    /// Replace the token by one the server will refuse (tests of the renewal path).
    #[cfg(test)]
    pub fn spoil_token(&self) -> Result<()> {
        let s = self.session()?;
        let bad = Session::new(
            format!("{}x", s.token),
            s.storage_url.clone(),
            std::time::Instant::now(),
            None,
        );
        *self.current.write() = Some(Arc::new(bad));
        Ok(())
    }
}
