//! One SFTP session: the system `ssh` client started with `-s sftp`, speaking SFTP v3 over its
//! standard input and output.
//!
//! Using the system client (as restic does) gives operators what they expect for free: their
//! `~/.ssh/config`, agent, `known_hosts`, ProxyJump and key types. Requests are pipelined: any
//! number of threads may send on one connection; a reader thread hands each reply to the
//! request with its id. When ssh exits (server gone, network dropped, keepalive timed out) every
//! waiting request fails with `Unavailable` and the connection reports [`Conn::is_dead`], so
//! the pool can replace it.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

use super::protocol::{Malformed, Reply, Request, FXP_VERSION, MAX_PACKET};
use crate::error::{Error, ErrorKind, Result};

/// Lines of ssh's standard error kept for error messages.
const STDERR_LINES: usize = 200;

/// State shared with the reader thread.
struct Shared {
    waiters: Mutex<HashMap<u32, Sender<Reply>>>,
    dead: AtomicBool,
    stderr: Mutex<VecDeque<String>>,
}

pub struct Conn {
    shared: Arc<Shared>,
    stdin: Mutex<ChildStdin>,
    child: Mutex<Child>,
    next_id: AtomicU32,
    extensions: Vec<String>,
    label: String,
}

/// A request in flight; [`Conn::wait`] turns it into its reply.
pub struct Ticket(Receiver<Reply>);

impl Conn {
    /// Start `ssh` and complete the SFTP handshake; failures are classified from what ssh
    /// printed (unknown or changed host key, rejected login, unreachable host).
    pub fn open(mut cmd: Command, label: &str, host: &str) -> Result<Conn> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            Error::with_source(
                ErrorKind::InvalidInput,
                format!("{label}: cannot run the ssh client (is openssh-client installed?)"),
                e,
            )
        })?;
        let shared = Arc::new(Shared {
            waiters: Mutex::new(HashMap::new()),
            dead: AtomicBool::new(false),
            stderr: Mutex::new(VecDeque::new()),
        });
        let stderr = child.stderr.take().expect("piped");
        let err_thread = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut q = shared.stderr.lock();
                    if q.len() == STDERR_LINES {
                        q.pop_front();
                    }
                    q.push_back(line);
                }
            })
        };
        let mut stdin = child.stdin.take().expect("piped");
        let mut stdout = child.stdout.take().expect("piped");
        let handshake = (|| -> std::io::Result<Option<Vec<u8>>> {
            stdin.write_all(&Request::init().finish())?;
            stdin.flush()?;
            read_packet(&mut stdout)
        })();
        let version = match handshake {
            Ok(Some(p)) if p.first() == Some(&FXP_VERSION) => p,
            Ok(Some(_)) => not_sftp(&mut child, label, host)?,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                not_sftp(&mut child, label, host)?
            }
            other => {
                // ssh failed (or the server is no SFTP server): wait for it to finish so that
                // its last words are complete, then explain.
                // ssh is exiting (its stdout closed): give it a moment to finish writing.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
                while child.try_wait().is_ok_and(|s| s.is_none())
                    && std::time::Instant::now() < deadline
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                let _ = child.kill();
                let _ = child.wait();
                let _ = err_thread.join();
                let lines: Vec<String> = shared.stderr.lock().iter().cloned().collect();
                return Err(classify_failure(label, host, &lines, other.err()));
            }
        };
        let extensions = parse_extensions(&version).unwrap_or_default();
        spawn_reader(shared.clone(), stdout);
        Ok(Conn {
            shared,
            stdin: Mutex::new(stdin),
            child: Mutex::new(child),
            next_id: AtomicU32::new(1),
            extensions,
            label: label.to_string(),
        })
    }

    pub fn is_dead(&self) -> bool {
        self.shared.dead.load(Ordering::Acquire)
    }

    pub fn has_extension(&self, name: &str) -> bool {
        self.extensions.iter().any(|e| e == name)
    }

    /// Send a request built for a fresh id; the reply arrives through the ticket.
    pub fn send(&self, build: impl FnOnce(u32) -> Request) -> Result<Ticket> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let packet = build(id).finish();
        let (tx, rx) = bounded(1);
        self.shared.waiters.lock().insert(id, tx);
        if self.is_dead() {
            self.shared.waiters.lock().remove(&id);
            return Err(self.lost());
        }
        let written = {
            let mut w = self.stdin.lock();
            w.write_all(&packet).and_then(|()| w.flush())
        };
        if written.is_err() {
            self.shared.dead.store(true, Ordering::Release);
            self.shared.waiters.lock().remove(&id);
            return Err(self.lost());
        }
        Ok(Ticket(rx))
    }

    pub fn wait(&self, t: Ticket) -> Result<Reply> {
        t.0.recv().map_err(|_| self.lost())
    }

    pub fn call(&self, build: impl FnOnce(u32) -> Request) -> Result<Reply> {
        let t = self.send(build)?;
        self.wait(t)
    }

    /// The error for a request whose connection went away, with ssh's last words.
    pub fn lost(&self) -> Error {
        let last: Vec<String> = self
            .shared
            .stderr
            .lock()
            .iter()
            .filter(|l| !l.starts_with("debug"))
            .rev()
            .take(3)
            .cloned()
            .collect();
        let said = if last.is_empty() {
            String::new()
        } else {
            let mut l = last;
            l.reverse();
            format!(" (ssh: {})", l.join(" / "))
        };
        Error::new(
            ErrorKind::Unavailable,
            format!("{}: connection to the SFTP server lost{said}", self.label),
        )
    }

    pub fn malformed(&self) -> Error {
        self.shared.dead.store(true, Ordering::Release);
        Error::new(
            ErrorKind::Io,
            format!("{}: malformed reply from the SFTP server", self.label),
        )
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let mut c = self.child.lock();
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl From<Malformed> for Error {
    fn from(_: Malformed) -> Error {
        Error::new(ErrorKind::Io, "malformed reply from the SFTP server")
    }
}

/// ssh runs, but what came back is not SFTP: stop it and say so (not retryable).
fn not_sftp(child: &mut Child, label: &str, host: &str) -> Result<Vec<u8>> {
    let _ = child.kill();
    let _ = child.wait();
    Err(Error::new(
        ErrorKind::Unsupported,
        format!(
            "{label}: the server did not answer in SFTP (does a login script on {host} print to \
             standard output, or is its sftp subsystem something else?)"
        ),
    ))
}

/// Read one packet (without its length); `None` at a clean end of stream.
fn read_packet(r: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let n = u32::from_be_bytes(len) as usize;
    if n == 0 || n > MAX_PACKET {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("SFTP packet of {n} bytes"),
        ));
    }
    let mut p = vec![0u8; n];
    r.read_exact(&mut p)?;
    Ok(Some(p))
}

fn spawn_reader(shared: Arc<Shared>, stdout: ChildStdout) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::with_capacity(256 << 10, stdout);
        while let Ok(Some(p)) = read_packet(&mut r) {
            let Ok((id, reply)) = Reply::parse(p) else {
                break;
            };
            if let Some(tx) = shared.waiters.lock().remove(&id) {
                let _ = tx.send(reply);
            }
        }
        shared.dead.store(true, Ordering::Release);
        // Dropping the senders wakes every waiter with an error.
        shared.waiters.lock().clear();
    })
}

/// The VERSION packet: type, version, then extension (name, data) pairs.
fn parse_extensions(p: &[u8]) -> std::result::Result<Vec<String>, Malformed> {
    // Reply::parse reads a u32 after the type: here it is the version, not a request id.
    let (_version, mut r) = Reply::parse(p.to_vec())?;
    let mut out = vec![];
    while let Ok(name) = r.string() {
        r.bytes()?;
        out.push(name);
    }
    Ok(out)
}

/// Turn what ssh printed before giving up into an error a user can act on.
fn classify_failure(
    label: &str,
    host: &str,
    lines: &[String],
    io: Option<std::io::Error>,
) -> Error {
    let has = |s: &str| lines.iter().any(|l| l.contains(s));
    let said: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("debug") && !l.trim().is_empty() && !l.starts_with("OpenSSH_"))
        .collect();
    let fingerprint = lines.iter().find_map(|l| {
        l.split_once("Server host key: ")
            .map(|(_, k)| k.trim().to_string())
    });
    if has("REMOTE HOST IDENTIFICATION HAS CHANGED") || has("Host key for") && has("has changed") {
        return Error::new(
            ErrorKind::Unauthorized,
            format!(
                "{label}: the host key of {host} has CHANGED since it was recorded in known_hosts; \
                 refusing to connect (this may be a man-in-the-middle attack). The server now offers \
                 {}. If the server was really re-keyed, remove the old entry with `ssh-keygen -R {host}` \
                 after verifying the new fingerprint.",
                fingerprint.as_deref().unwrap_or("an unknown key")
            ),
        );
    }
    if has("host key is known for") || has("Host key verification failed") {
        return Error::new(
            ErrorKind::Unauthorized,
            format!(
                "{label}: the host key of {host} is not in known_hosts; refusing to connect. \
                 The server offers {}. If that fingerprint is right, run once with --ssh-accept-new \
                 to trust it on first use (it is then recorded in known_hosts), or add it with ssh-keyscan.",
                fingerprint.as_deref().unwrap_or("a key whose fingerprint ssh did not report")
            ),
        );
    }
    if has("Permission denied") || has("Too many authentication failures") {
        return Error::new(
            ErrorKind::Unauthorized,
            format!(
                "{label}: the server rejected the login ({}); check --ssh-key, the user name and \
                 the server's authorized_keys",
                said.last().copied().unwrap_or("permission denied")
            ),
        );
    }
    let detail = if said.is_empty() {
        io.map(|e| e.to_string())
            .unwrap_or_else(|| "ssh exited without starting SFTP".into())
    } else {
        said[said.len().saturating_sub(3)..].join(" / ")
    };
    if has("subsystem request failed") {
        return Error::new(
            ErrorKind::Unsupported,
            format!("{label}: the server has no SFTP subsystem ({detail})"),
        );
    }
    Error::new(
        ErrorKind::Unavailable,
        format!("{label}: cannot start an SFTP session: {detail}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &[&str]) -> Vec<String> {
        s.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn unknown_host_shows_fingerprint_and_the_option() {
        let e = classify_failure(
            "sftp://h/r",
            "h",
            &lines(&[
                "debug1: Server host key: ssh-ed25519 SHA256:abcDEF",
                "No ED25519 host key is known for h and you have requested strict checking.",
                "Host key verification failed.",
            ]),
            None,
        );
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        let m = e.to_string();
        assert!(
            m.contains("SHA256:abcDEF") && m.contains("--ssh-accept-new"),
            "{m}"
        );
    }

    /// A program standing in for ssh, to see how Conn::open reads what comes back.
    fn fake_ssh(script: &str) -> (tempfile::TempDir, Command) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("fake-ssh");
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        let mut c = Command::new("/bin/sh");
        c.arg(&p);
        (d, c)
    }

    #[test]
    fn a_login_banner_on_stdout_is_not_sftp() {
        let (_d, c) = fake_ssh("echo 'Welcome to the backup server'; sleep 5");
        let e = Conn::open(c, "sftp://h/r", "h").err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(
            !e.kind().is_retryable(),
            "retrying cannot change the server's answer"
        );
        assert!(e.to_string().contains("did not answer in SFTP"), "{e}");
    }

    #[test]
    fn ssh_last_words_are_kept() {
        let (_d, c) = fake_ssh("echo 'ssh: Could not resolve hostname nowhere: Name or service not known' >&2; exit 255");
        let e = Conn::open(c, "sftp://nowhere/r", "nowhere").err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(
            e.to_string().contains("Could not resolve hostname nowhere"),
            "{e}"
        );
    }

    #[test]
    fn refused_connection_is_unavailable() {
        let e = classify_failure(
            "sftp://h/r",
            "h",
            &lines(&["ssh: connect to host h port 22: Connection refused"]),
            None,
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.to_string().contains("Connection refused"));
    }

    #[test]
    fn rejected_key_is_unauthorized() {
        let e = classify_failure(
            "sftp://h/r",
            "h",
            &lines(&["root@h: Permission denied (publickey)."]),
            None,
        );
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
    }
}
