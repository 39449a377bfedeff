//! Swift's own v1 authentication (tempauth, swauth): one GET with the user and key in headers
//! answers with the account's storage URL and a token.

use std::time::{Duration, Instant};

use reqwest::blocking::Client;

use super::http::{credentials_rejected, header, status_error, transport_error};
use super::session::{Session, MAX_TOKEN_LIFETIME};
use crate::error::{Error, ErrorKind, Result};

pub(super) fn authenticate(
    http: &Client,
    auth_url: &str,
    user: &str,
    key: &str,
) -> Result<Session> {
    let what = || format!("Swift v1 auth at {auth_url} as {user}");
    let asked = Instant::now();
    let resp = http
        .get(auth_url)
        .header("X-Auth-User", user)
        .header("X-Auth-Key", key)
        .send()
        .map_err(|e| transport_error(&what(), &e))?;
    let status = resp.status();
    if let Some(e) = credentials_rejected(&what(), status, "; check ST_USER and ST_KEY") {
        return Err(e);
    }
    if !status.is_success() {
        return Err(status_error(&what(), status));
    }
    let header = |name: &str| header(&resp, name).map(str::to_string);
    let storage_url = header("X-Storage-Url").ok_or_else(|| {
        Error::new(
            ErrorKind::Unavailable,
            format!("{}: the answer has no X-Storage-Url", what()),
        )
    })?;
    let token = header("X-Auth-Token")
        .or_else(|| header("X-Storage-Token"))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                format!("{}: the answer has no X-Auth-Token", what()),
            )
        })?;
    let lifetime = header("X-Auth-Token-Expires")
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        // A server claiming more than a year is not believed (and 1e20 s would overflow).
        .map(|s| Duration::from_secs_f64(s.min(MAX_TOKEN_LIFETIME.as_secs_f64())));
    Ok(Session::new(token, storage_url, asked, lifetime))
}
