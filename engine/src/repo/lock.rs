//! Repository locks: a file in `locks/` per running operation.
//!
//! Version 1 writes shared locks for backup and restore so that a later exclusive operation
//! (prune) can see them; the lock is removed when the guard drops. Exclusive locks, refresh and
//! stale-lock removal arrive with prune (see format-spec/SPEC.md, "Locks").

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::format::to_postcard;
use crate::id::LockId;
use crate::repo::{now_secs, Repository};
use crate::storage::FileKind;

pub const LOCK_MAGIC: &[u8; 4] = b"RMLK";
pub const LOCK_VERSION: u8 = 1;

/// Lock file plaintext: magic "RMLK" | version u8 | postcard LockBody; sealed with AAD "rime lock v1".
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockBody {
    pub exclusive: bool,
    pub hostname: String,
    pub pid: u32,
    /// Unix seconds when taken (or last refreshed).
    pub time: i64,
}

impl LockBody {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = LOCK_MAGIC.to_vec();
        out.push(LOCK_VERSION);
        out.extend_from_slice(&to_postcard(self));
        out
    }

    pub fn decode(buf: &[u8]) -> Result<LockBody> {
        if buf.len() < 5 || &buf[..4] != LOCK_MAGIC {
            return Err(crate::Error::corrupt("lock: bad magic"));
        }
        if buf[4] != LOCK_VERSION {
            return Err(crate::Error::corrupt(format!(
                "lock: unknown version {}",
                buf[4]
            )));
        }
        crate::format::from_postcard("lock", &buf[5..])
    }
}

pub struct LockGuard {
    repo: Repository,
    id: LockId,
}

impl LockGuard {
    pub fn shared(repo: &Repository) -> Result<LockGuard> {
        let body = LockBody {
            exclusive: false,
            hostname: crate::hostname(),
            pid: std::process::id(),
            time: now_secs(),
        };
        let id = LockId::random();
        let plain = body.encode();
        let sealed = repo.keys().seal(b"rime lock v1", &plain);
        repo.storage()
            .write(FileKind::Lock, &id.to_hex(), &sealed)?;
        Ok(LockGuard {
            repo: repo.clone(),
            id,
        })
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self
            .repo
            .storage()
            .remove(FileKind::Lock, &self.id.to_hex());
    }
}
