//! Uploads watched for progress instead of cut off by a total deadline.
//!
//! reqwest's blocking client bounds a request by one deadline from the start of the request to
//! its response headers, the body's upload included: a fixed one either cuts off a large
//! object on a slow link (retried, and cut off again, for ever) or leaves a hung server
//! undetected for as long. Requests without a body keep the client's timeout, which in the
//! blocking client bounds the wait for the headers and then each read of the response body
//! separately: an idle limit. An upload is sent from a helper thread while the caller watches
//! the body being taken: no byte taken and no answer for `idle` is a stalled transfer, an
//! `Unavailable` error the retry layer handles. The helper thread cannot be stopped; its request
//! carries a last deadline, so an abandoned one ends by itself, holding its thread and body no
//! longer than needed (see [`deadline`]).
//!
//! Watching the body costs: reqwest's blocking client reads a body given as a reader in 8 KiB
//! pieces, each copied and sent as its own frame, which made a backup to Swift use 12% more
//! user and twice the system CPU (and 17% more wall time) than a body handed over whole. So
//! the body is watched only when an upload limit paces it anyway (`--limit-upload`, and
//! then the pieces are what the pacing needs). Otherwise it goes to the connection whole and
//! in one piece, and the upload counts as stalled when no answer has come within `idle` plus
//! the time the body takes at [`FLOOR_RATE`]: a slow link is still never cut off as long as it
//! moves more than that.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::blocking::{Body, RequestBuilder, Response};

/// No byte taken by the connection and no answer for this long: the server or the link hangs.
/// Long enough for the kernel's send buffer (a few MiB at most) to drain on a slow link after
/// the last byte was handed over.
pub(super) const IDLE: Duration = Duration::from_secs(120);

/// The slowest link an unwatched upload allows for: 32 KiB/s (256 kbit/s). A 32 MiB pack
/// may take 17 minutes on top of the idle limit before its upload counts as stalled.
pub(super) const FLOOR_RATE: u64 = 32 << 10;

/// The deadline of a paced upload's own request: reached only by a request abandoned as
/// stalled (see [`deadline`]).
const PACED_ABANDONED: Duration = Duration::from_secs(3600);

/// The deadline of an upload's own request, reached only by a request the watchdog abandoned.
/// Unwatched, the watchdog's own bound: `allowance` (the body at the floor rate) plus `idle`,
/// with a margin of two of its ticks so that the watchdog reports the stall first (should the
/// deadline win on a busy machine, its timeout is an `Unavailable` transport error alike); the
/// helper thread, its connection and its copy of the body then go within seconds. Paced, no
/// total is known in advance (the upload limit is shared with other uploads, and a slow limit
/// must not cut off an upload that keeps moving): [`PACED_ABANDONED`].
fn deadline(watched: bool, allowance: Duration, idle: Duration, tick: Duration) -> Duration {
    match watched {
        true => PACED_ABANDONED,
        false => allowance + idle + 2 * tick,
    }
}

/// Why a watched upload failed.
pub(super) enum Failure {
    Transport(reqwest::Error),
    /// Nothing moved for this long.
    Stalled(Duration),
}

/// Send `req` with `body`, failing with [`Failure::Stalled`] when the connection takes no byte
/// of the body and no answer comes for `idle`.
pub(super) fn send(req: RequestBuilder, body: Bytes, idle: Duration) -> Result<Response, Failure> {
    send_with_floor(req, body, idle, FLOOR_RATE).0
}

/// [`send`] with the slowest rate an unwatched body is allowed (tests use a high one), also
/// giving the helper thread that sends the request (tests watch it end; [`send`] lets it go).
fn send_with_floor(
    req: RequestBuilder,
    body: Bytes,
    idle: Duration,
    floor_rate: u64,
) -> (Result<Response, Failure>, Option<JoinHandle<()>>) {
    let start = Instant::now();
    let moved = Arc::new(AtomicU64::new(0)); // milliseconds since start at the last progress
    let len = body.len() as u64;
    // Taken along: the body is read on the helper thread.
    let pacer = crate::storage::bandwidth::Pacer::current();
    let watched = pacer.is_some();
    let body = match pacer {
        Some(pacer) => Body::sized(
            Progress {
                body,
                pos: 0,
                start,
                moved: moved.clone(),
                pacer: Some(pacer),
            },
            len,
        ),
        None => Body::from(body),
    };
    // Unwatched: the whole body counts as moving until it could have gone at the floor rate.
    let allowance = match watched {
        true => Duration::ZERO,
        false => Duration::from_secs_f64(len as f64 / floor_rate.max(1) as f64),
    };
    let tick = idle.min(Duration::from_secs(1));
    let req = req
        .timeout(deadline(watched, allowance, idle, tick))
        .body(body);
    let (tx, rx) = crossbeam_channel::bounded(1);
    let helper = std::thread::Builder::new()
        .name("rime-swift-upload".into())
        .spawn(move || {
            let _ = tx.send(req.send());
        });
    let Ok(helper) = helper else {
        return (Err(Failure::Stalled(Duration::ZERO)), None);
    };
    let result = loop {
        match rx.recv_timeout(tick) {
            Ok(r) => break r.map_err(Failure::Transport),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                break Err(Failure::Stalled(Duration::ZERO))
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                let last = match moved.load(Ordering::Relaxed) {
                    // Waiting for the upload limit's budget is our pause, not the server's.
                    PACING => start.elapsed(),
                    ms => Duration::from_millis(ms).max(allowance),
                };
                let quiet = start.elapsed().saturating_sub(last);
                if quiet >= idle {
                    break Err(Failure::Stalled(quiet));
                }
            }
        }
    };
    (result, Some(helper))
}

/// [`Progress::moved`] while a piece waits for the upload limit (`--limit-upload`).
const PACING: u64 = u64::MAX;

/// The body, read by the HTTP client as the connection takes it; each read is progress. With
/// an upload limit, each piece is paced before it is handed over.
struct Progress {
    body: Bytes,
    pos: usize,
    start: Instant,
    moved: Arc<AtomicU64>,
    pacer: Option<crate::storage::bandwidth::Pacer>,
}

impl Read for Progress {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.body.len() - self.pos).min(64 << 10);
        if let (Some(p), true) = (&self.pacer, n > 0) {
            self.moved.store(PACING, Ordering::Relaxed);
            p.take(n as u64);
        }
        buf[..n].copy_from_slice(&self.body[self.pos..self.pos + n]);
        self.pos += n;
        self.moved
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    /// A server on 127.0.0.1 that accepts one connection and hands it to `serve`.
    fn server(serve: impl FnOnce(std::net::TcpStream) + Send + 'static) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/c/o", l.local_addr().unwrap());
        std::thread::spawn(move || {
            let (c, _) = l.accept().unwrap();
            serve(c);
        });
        url
    }

    fn put(url: &str) -> RequestBuilder {
        reqwest::blocking::Client::new().put(url)
    }

    /// The stall is reported within the idle limit, and the abandoned request's own thread (and
    /// its copy of the body) ends seconds later, not after an hour.
    #[test]
    fn a_server_that_accepts_and_stalls_is_an_error_within_the_idle_limit() {
        let url = server(|c| {
            std::thread::sleep(Duration::from_secs(30)); // reads nothing, answers nothing
            drop(c);
        });
        let t = Instant::now();
        // Unwatched (no upload limit): 16 MiB at a floor of 64 MiB/s may take 0.25 s.
        let (r, helper) = send_with_floor(
            put(&url),
            Bytes::from(vec![7u8; 16 << 20]),
            Duration::from_millis(700),
            64 << 20,
        );
        assert!(matches!(r, Err(Failure::Stalled(_))), "not a stall");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        let helper = helper.expect("the upload ran on a helper thread");
        let reported = Instant::now();
        while !helper.is_finished() && reported.elapsed() < Duration::from_secs(4) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            helper.is_finished(),
            "the abandoned upload's thread still runs {:?} after the stall was reported",
            reported.elapsed()
        );
    }

    /// Watched (an upload limit paces the body): the stall is seen by the body not moving.
    #[test]
    fn a_paced_upload_to_a_stalled_server_is_an_error_within_the_idle_limit() {
        let url = server(|c| {
            std::thread::sleep(Duration::from_secs(30));
            drop(c);
        });
        let t = Instant::now();
        let r = crate::storage::bandwidth::paced(1 << 30, || {
            send(
                put(&url),
                Bytes::from(vec![7u8; 16 << 20]),
                Duration::from_millis(700),
            )
        });
        assert!(matches!(r, Err(Failure::Stalled(_))), "not a stall");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn a_slow_upload_that_keeps_moving_is_not_cut_off() {
        slow_upload_is_not_cut_off(false);
    }

    #[test]
    fn a_slow_paced_upload_that_keeps_moving_is_not_cut_off() {
        slow_upload_is_not_cut_off(true);
    }

    fn slow_upload_is_not_cut_off(paced: bool) {
        let size = 40usize << 20;
        let url = server(move |mut c| {
            // Read the body slowly, ~16 MiB/s: about 2.5 s, longer than the idle limit (which
            // leaves time for the socket buffers to drain after the client's last write).
            let mut buf = vec![0u8; 64 << 10];
            let mut got = 0usize;
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = c.read(&mut buf[..1]).unwrap();
                head.extend_from_slice(&buf[..n]);
            }
            while got < size {
                let n = c.read(&mut buf).unwrap();
                assert!(n > 0);
                got += n;
                std::thread::sleep(Duration::from_millis(4));
            }
            let _ = c.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
        });
        let t = Instant::now();
        let idle = Duration::from_millis(1500);
        let body = Bytes::from(vec![1u8; size]);
        let r = match paced {
            true => crate::storage::bandwidth::paced(1 << 30, || send(put(&url), body, idle)),
            // Unwatched, with a floor the body can keep (the 16 MiB/s server is above it).
            false => send_with_floor(put(&url), body, idle, 8 << 20).0,
        };
        let took = t.elapsed();
        match r {
            Ok(resp) => assert_eq!(resp.status().as_u16(), 201),
            Err(Failure::Stalled(q)) => panic!("cut off after {took:?} (quiet {q:?})"),
            Err(Failure::Transport(e)) => panic!("{e}"),
        }
        assert!(took > idle, "the test's upload was not slow: {took:?}");
    }
}
