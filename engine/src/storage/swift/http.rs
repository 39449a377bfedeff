//! HTTP answers and failures turned into engine errors, and URL path encoding.

use reqwest::StatusCode;

use crate::error::{Error, ErrorKind};

/// An unexpected HTTP status, classified so that callers (and the retry wrapper) can act:
/// transient server trouble is `Unavailable`, a full cluster `NoSpace`, refusals `Unauthorized`.
pub(super) fn status_error(what: &str, status: StatusCode) -> Error {
    let kind = match status.as_u16() {
        401 | 403 => ErrorKind::Unauthorized,
        507 => ErrorKind::NoSpace,
        404 => ErrorKind::MissingObject,
        408 | 429 | 498 | 500..=599 => ErrorKind::Unavailable,
        400 | 405 | 411 | 412 | 413 | 414 => ErrorKind::InvalidInput,
        // A range beyond the object's end: it is shorter than the index says.
        416 => ErrorKind::Corrupt,
        // Any other refusal (409, 410, 422 …) or an unexpected redirect: the same request
        // would get the same answer.
        300..=499 => ErrorKind::Unsupported,
        _ => ErrorKind::Io,
    };
    Error::new(kind, format!("{what}: HTTP {status}"))
}

/// A request that got no answer (connection refused or reset, timeout, broken body): the
/// server may be down for a moment, so it is `Unavailable`. The whole cause chain is kept in
/// the message, since "error sending request" alone does not say what happened.
pub(super) fn transport_error(what: &str, err: &reqwest::Error) -> Error {
    let mut msg = format!("{what}: {err}");
    let mut src = std::error::Error::source(err);
    while let Some(s) = src {
        let s_text = s.to_string();
        if !msg.contains(&s_text) {
            msg.push_str(": ");
            msg.push_str(&s_text);
        }
        src = s.source();
    }
    Error::new(ErrorKind::Unavailable, msg)
}

/// Percent-encode a container or object name for a URL path; `/` is kept in object names
/// (it is part of Swift's object name and needs no escaping).
pub(super) fn encode_path(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_and_classes() {
        assert_eq!(encode_path("a b/ü%", true), "a%20b/%C3%BC%25");
        assert_eq!(encode_path("a/b", false), "a%2Fb");
        let k = |c: u16| status_error("x", StatusCode::from_u16(c).unwrap()).kind();
        assert_eq!(k(503), ErrorKind::Unavailable);
        assert_eq!(k(429), ErrorKind::Unavailable);
        assert_eq!(k(408), ErrorKind::Unavailable);
        assert_eq!(k(507), ErrorKind::NoSpace);
        assert_eq!(k(403), ErrorKind::Unauthorized);
        assert_eq!(k(404), ErrorKind::MissingObject);
    }
}
