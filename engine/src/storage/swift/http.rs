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

/// The refusal of an authentication request (401 or 403: the credentials were not accepted),
/// with `hint` saying where they came from; `None` for any other status.
pub(super) fn credentials_rejected(what: &str, status: StatusCode, hint: &str) -> Option<Error> {
    matches!(status.as_u16(), 401 | 403).then(|| {
        Error::new(
            ErrorKind::Unauthorized,
            format!("{what}: credentials rejected (HTTP {status}){hint}"),
        )
    })
}

/// A response header's value, if it is there and is text.
pub(super) fn header<'a>(resp: &'a reqwest::blocking::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// [`status_error`] for a whole response: Swift explains most refusals in the body ("Upload
/// exceeds quota.", "Container name too long", keystoneauth's reason for a 403), so its first
/// line of text is kept. A 413 that names a quota is the storage being full (`NoSpace`), not
/// a request rime got wrong.
pub(super) fn response_error(what: &str, resp: reqwest::blocking::Response) -> Error {
    let status = resp.status();
    let mut body = Vec::new();
    {
        use std::io::Read;
        let _ = resp.take(512).read_to_end(&mut body);
    }
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    let explained = !text.is_empty() && !text.starts_with('<');
    let reason = text
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect::<String>();
    let mut e = status_error(what, status);
    if status.as_u16() == 413 && reason.to_ascii_lowercase().contains("quota") {
        e = Error::new(
            ErrorKind::NoSpace,
            format!("{what}: HTTP {status}: the account or container quota is used up"),
        );
    }
    match explained {
        true => e.note(format!("Swift says: {reason}")),
        false => e,
    }
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

    /// A one-shot HTTP server on 127.0.0.1 answering `status` with `body`.
    fn answer_once(status: &'static str, body: &'static str) -> String {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x", l.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        });
        url
    }

    #[test]
    fn refusals_keep_swifts_reason_and_a_quota_is_a_full_storage() {
        let get = |url: String| reqwest::blocking::get(url).unwrap();
        let e = response_error(
            "cannot upload p",
            get(answer_once(
                "413 Payload Too Large",
                "Upload exceeds quota.",
            )),
        );
        assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
        assert!(e.to_string().contains("Upload exceeds quota."), "{e}");
        let e = response_error(
            "cannot upload p",
            get(answer_once("400 Bad Request", "Container name too long")),
        );
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("Container name too long"), "{e}");
        // An HTML error page adds nothing readable.
        let e = response_error(
            "x",
            get(answer_once(
                "500 Internal Server Error",
                "<html><h1>Oops</h1></html>",
            )),
        );
        assert_eq!(e.to_string(), "x: HTTP 500 Internal Server Error");
    }
}
