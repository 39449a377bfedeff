//! A few ssh connections shared by all threads, replaced when they die.
//!
//! One ssh process encrypts on one core, so parallel transfers use several connections; each
//! connection also carries pipelined requests from any number of threads. A connection found
//! dead (sshd restarted, network dropped) is respawned on next use, and an operation that failed
//! because its connection died is run once more on a fresh one; beyond that, retries are the
//! business of the retry wrapper (`storage::retry`).

use std::ffi::OsString;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::conn::Conn;
use crate::error::Result;

/// How to start ssh: program and arguments (everything but the stdio setup).
#[derive(Debug, Clone)]
pub struct SshSpec {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// The storage's location, for messages.
    pub label: String,
    pub host: String,
}

impl SshSpec {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        c
    }
}

pub struct Pool {
    spec: SshSpec,
    slots: Vec<Mutex<Option<Arc<Conn>>>>,
    next: AtomicUsize,
    /// Until one connection has succeeded, connections are opened one at a time: an unknown
    /// host or a rejected key then fails once, not once per thread, and `--ssh-accept-new`
    /// records the host key once.
    first: Mutex<()>,
    connected: AtomicBool,
}

impl Pool {
    pub fn new(spec: SshSpec, connections: usize) -> Pool {
        Pool {
            spec,
            slots: (0..connections.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            first: Mutex::new(()),
            connected: AtomicBool::new(false),
        }
    }

    fn conn(&self, slot: usize) -> Result<Arc<Conn>> {
        let mut s = self.slots[slot].lock();
        if let Some(c) = &*s {
            if !c.is_dead() {
                return Ok(c.clone());
            }
        }
        *s = None; // the dead one's ssh is reaped when its last user lets go
        let _first = (!self.connected.load(Ordering::Acquire)).then(|| self.first.lock());
        let c = Arc::new(Conn::open(
            self.spec.command(),
            &self.spec.label,
            &self.spec.host,
        )?);
        self.connected.store(true, Ordering::Release);
        *s = Some(c.clone());
        Ok(c)
    }

    /// Run `op` on a connection; if it fails because that connection died, run it once more
    /// on a new one (`op`'s second argument says it is the second attempt).
    pub fn run<T>(&self, mut op: impl FnMut(&Conn, bool) -> Result<T>) -> Result<T> {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let c = self.conn(slot)?;
        match op(&c, false) {
            Err(_) if c.is_dead() => {
                drop(c);
                let c = self.conn(slot)?;
                op(&c, true)
            }
            r => r,
        }
    }
}
