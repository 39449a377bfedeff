//! Repository locks: a file in `locks/` per running operation (format-spec/SPEC.md, section 9).
//!
//! Backup, restore, forget and prune take *shared* locks (forgets exclude each other, as prunes
//! do); repair takes an *exclusive* one. A
//! lock is refreshed (rewritten with a new time) every [`REFRESH_SECS`] by a background thread
//! while held, and is *stale* when it has not been refreshed for [`STALE_SECS`] or when it was
//! taken by a process that no longer exists where we can see it: the same host, boot and PID
//! namespace ([`ProcessScope`]). Stale locks never block anyone and are removed by whoever meets
//! them, so a killed backup cannot block the next prune forever.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::format::to_postcard;
use crate::id::LockId;
use crate::repo::{now_secs, Repository};
use crate::storage::FileKind;

pub const LOCK_MAGIC: &[u8; 4] = b"RMLK";
/// Version 2 adds `command`, version 3 `holder`, version 4 `scope`; older locks are still read.
pub const LOCK_VERSION: u8 = 4;
const AAD: &[u8] = b"rime lock v1";

/// A held lock is rewritten this often.
pub const REFRESH_SECS: u64 = 5 * 60;
/// A lock not refreshed for this long is stale (six missed refreshes: slow storage is no reason).
pub const STALE_SECS: i64 = 30 * 60;

/// A backup commits only if its lock was written less than `STALE_SECS - COMMIT_MARGIN_SECS`
/// ago: the margin covers the time between the check and the snapshot write, and clocks a few
/// minutes apart.
pub const COMMIT_MARGIN_SECS: i64 = 5 * 60;

/// Prune takes a shared lock (backups keep running) that excludes other prunes.
const PRUNE: &str = "prune";

/// Forget takes a shared lock (backups and restores keep running) that excludes other forgets:
/// each decides what to remove from its own listing, so two at once (one by policy, one by id,
/// or two policies) could together remove every snapshot of a group, which neither would alone.
pub const FORGET: &str = "forget";

/// `rime copy` takes a shared lock with this command on its destination, which excludes
/// prunes there (and a prune's lock excludes it): copy takes the packs the destination already
/// stores for copied, and those may be unindexed there and marked by a pending record that
/// predates copy's lock, which a prune running meanwhile would therefore delete under the
/// index files and snapshots copy then writes (format-spec/SPEC.md, section 9.3).
pub const COPY_DESTINATION: &str = "copy to";

/// Whether shared locks taken for `a` and `b` exclude each other.
fn excludes(a: &str, b: &str) -> bool {
    matches!(
        (a, b),
        (PRUNE, PRUNE) | (PRUNE, COPY_DESTINATION) | (COPY_DESTINATION, PRUNE) | (FORGET, FORGET)
    )
}

/// Lock file plaintext: magic "RMLK" | version u8 | postcard body; sealed with AAD "rime lock v1".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockBody {
    pub exclusive: bool,
    pub hostname: String,
    pub pid: u32,
    /// Unix seconds when taken (or last refreshed).
    pub time: i64,
    /// The operation holding it ("backup", "prune" …); empty in version 1 locks.
    pub command: String,
    /// Who holds it, unchanged by refreshes (which write the lock under a new file id): the id
    /// of the holder's first lock file. Prune's records name holders, so that a refreshed lock
    /// still counts as the operation it was. `None` in version 1 and 2 locks, whose holder is
    /// their file id.
    pub holder: Option<LockId>,
    /// Where `pid` is meaningful (boot and PID namespace); `None` in locks before version 4,
    /// which are then judged by their age only. Written only together with a holder.
    pub scope: Option<ProcessScope>,
}

/// Where a PID names a process: the boot of the machine and the PID namespace. The same host
/// name is not enough: a container sharing the host's name (docker `--network host`, a shared
/// UTS namespace) has its own PIDs, so its live process looks dead from the host and the other
/// way round, and a lock judged by that PID would be removed while held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessScope {
    /// `/proc/sys/kernel/random/boot_id`; empty where unknown.
    pub boot_id: String,
    /// The target of the `/proc/self/ns/pid` link, `pid:[inode]`; empty where unknown.
    pub pid_namespace: String,
}

impl ProcessScope {
    /// This process's scope (fields empty where /proc does not tell: another OS, no /proc).
    pub fn current() -> ProcessScope {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let pid_namespace = std::fs::read_link("/proc/self/ns/pid")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        ProcessScope {
            boot_id,
            pid_namespace,
        }
    }

    /// Whether a PID recorded in `self` names the same process here: both fields known and equal.
    fn same_as(&self, here: &ProcessScope) -> bool {
        !self.boot_id.is_empty() && !self.pid_namespace.is_empty() && self == here
    }
}

#[derive(Deserialize)]
struct LockBodyV1 {
    exclusive: bool,
    hostname: String,
    pid: u32,
    time: i64,
}

/// Versions 2 and 3 share these fields; version 3 appends the holder (postcard writes a struct
/// as its fields in order, so `(LockBodyV2, LockId)` is exactly version 3's layout).
#[derive(Serialize, Deserialize)]
struct LockBodyV2 {
    exclusive: bool,
    hostname: String,
    pid: u32,
    time: i64,
    command: String,
}

impl LockBodyV2 {
    fn with_holder(self, holder: Option<LockId>) -> LockBody {
        LockBody {
            exclusive: self.exclusive,
            hostname: self.hostname,
            pid: self.pid,
            time: self.time,
            command: self.command,
            holder,
            scope: None,
        }
    }
}

impl LockBody {
    /// Version 4 (version 3 without scope, version 2 without holder, which only tests build).
    pub fn encode(&self) -> Vec<u8> {
        let common = LockBodyV2 {
            exclusive: self.exclusive,
            hostname: self.hostname.clone(),
            pid: self.pid,
            time: self.time,
            command: self.command.clone(),
        };
        let mut out = LOCK_MAGIC.to_vec();
        match (self.holder, &self.scope) {
            (Some(holder), Some(scope)) => {
                out.push(4);
                out.extend_from_slice(&to_postcard(&(common, holder, scope)));
            }
            (Some(holder), None) => {
                out.push(3);
                out.extend_from_slice(&to_postcard(&(common, holder)));
            }
            (None, _) => {
                out.push(2);
                out.extend_from_slice(&to_postcard(&common));
            }
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Result<LockBody> {
        if buf.len() < 5 || &buf[..4] != LOCK_MAGIC {
            return Err(Error::corrupt("lock: bad magic"));
        }
        let body = &buf[5..];
        match buf[4] {
            1 => {
                let v: LockBodyV1 = crate::format::from_postcard("lock", body)?;
                Ok(LockBody {
                    exclusive: v.exclusive,
                    hostname: v.hostname,
                    pid: v.pid,
                    time: v.time,
                    command: String::new(),
                    holder: None,
                    scope: None,
                })
            }
            2 => Ok(crate::format::from_postcard::<LockBodyV2>("lock", body)?.with_holder(None)),
            3 => {
                let (v, holder): (LockBodyV2, LockId) = crate::format::from_postcard("lock", body)?;
                Ok(v.with_holder(Some(holder)))
            }
            4 => {
                let (v, holder, scope): (LockBodyV2, LockId, ProcessScope) =
                    crate::format::from_postcard("lock", body)?;
                Ok(LockBody {
                    scope: Some(scope),
                    ..v.with_holder(Some(holder))
                })
            }
            v => Err(Error::corrupt(format!("lock: unknown version {v}"))),
        }
    }

    /// Why this lock is stale at time `now`, or `None` if it may still be held.
    pub fn stale_reason(&self, now: i64) -> Option<String> {
        self.stale_reason_seen_from(now, &crate::hostname(), &ProcessScope::current())
    }

    /// [`Self::stale_reason`] as judged by a process on `host` in `scope`. A dead PID counts
    /// only when host, boot and PID namespace are all ours; otherwise (another container of
    /// the same name, a lock from before version 4 that does not say) only the age does.
    pub fn stale_reason_seen_from(
        &self,
        now: i64,
        host: &str,
        scope: &ProcessScope,
    ) -> Option<String> {
        if now - self.time > STALE_SECS {
            return Some(format!(
                "not refreshed for {} minutes",
                (now - self.time) / 60
            ));
        }
        let pid_is_ours =
            self.hostname == host && self.scope.as_ref().is_some_and(|s| s.same_as(scope));
        if pid_is_ours && !crate::sys::process_alive(self.pid) {
            return Some(format!("process {} no longer runs on this host", self.pid));
        }
        None
    }

    /// "exclusive" or "shared", as messages and `rime locks` name the lock's kind.
    pub fn kind_name(&self) -> &'static str {
        if self.exclusive {
            "exclusive"
        } else {
            "shared"
        }
    }

    /// The operation holding the lock, or "?" for a version 1 lock, which does not say.
    pub fn command_shown(&self) -> &str {
        if self.command.is_empty() {
            "?"
        } else {
            &self.command
        }
    }

    /// "exclusive lock of `prune` by host h, pid 12, taken or refreshed 2026-11-21 09:00:00 UTC".
    pub fn describe(&self) -> String {
        let when = chrono::DateTime::from_timestamp(self.time, 0)
            .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| format!("@{}", self.time));
        format!(
            "{} lock of `{}` by host {}, pid {}, taken or refreshed {when}",
            self.kind_name(),
            self.command_shown(),
            self.hostname,
            self.pid,
        )
    }
}

/// One lock file found in `locks/`.
#[derive(Debug, Clone)]
pub struct FoundLock {
    pub id: LockId,
    /// The decoded lock, or why it could not be read.
    pub body: std::result::Result<LockBody, String>,
}

impl FoundLock {
    /// Who holds it: the same across its refreshes (version 3 locks), else the file id.
    pub fn holder(&self) -> LockId {
        self.body
            .as_ref()
            .ok()
            .and_then(|b| b.holder)
            .unwrap_or(self.id)
    }
}

/// Read every lock in the repository (a lock removed meanwhile is skipped).
pub fn list_locks(repo: &Repository) -> Result<Vec<FoundLock>> {
    let mut out = Vec::new();
    for o in repo.storage().list(FileKind::Lock)? {
        let Ok(id) = LockId::from_hex(&o.name) else {
            continue;
        };
        let body = match repo.storage().read(FileKind::Lock, &o.name) {
            Ok(b) => match repo.keys().open(AAD, &b) {
                Some(p) => LockBody::decode(&p).map_err(|e| e.to_string()),
                None => Err("does not decrypt with this repository's key".to_string()),
            },
            Err(e) if e.kind() == ErrorKind::MissingObject => continue,
            Err(e) => return Err(e),
        };
        out.push(FoundLock { id, body });
    }
    Ok(out)
}

/// One lock as `rime locks` shows it: what it says, how long since it was written, and
/// whether (and why) it is stale for this process.
#[derive(Debug, Clone)]
pub struct LockStatus {
    pub lock: FoundLock,
    /// Seconds since it was taken or last refreshed (negative: written by a clock ahead of ours).
    pub age_secs: Option<i64>,
    /// Why it is stale ([`LockBody::stale_reason`]), or `None` if it may still be held.
    pub stale: Option<String>,
}

/// Every lock in the repository with its age and staleness, oldest refresh first.
pub fn lock_statuses(repo: &Repository) -> Result<Vec<LockStatus>> {
    let now = now_secs();
    let mut out: Vec<LockStatus> = list_locks(repo)?
        .into_iter()
        .map(|l| LockStatus {
            age_secs: l.body.as_ref().ok().map(|b| now - b.time),
            stale: l.body.as_ref().ok().and_then(|b| b.stale_reason(now)),
            lock: l,
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.age_secs));
    Ok(out)
}

/// Remove stale locks (all locks with `all`). Returns the descriptions of those removed.
/// A lock that cannot be decrypted is removed only with `all`.
pub fn unlock(repo: &Repository, all: bool) -> Result<Vec<String>> {
    let now = now_secs();
    let mut removed = Vec::new();
    for l in list_locks(repo)? {
        let why = match &l.body {
            Ok(b) if all => Some(b.describe()),
            Ok(b) => b
                .stale_reason(now)
                .map(|r| format!("{} ({r})", b.describe())),
            Err(e) => all.then(|| format!("unreadable lock {}: {e}", l.id.short())),
        };
        if let Some(why) = why {
            match repo.storage().remove(FileKind::Lock, &l.id.to_hex()) {
                Ok(()) => removed.push(why),
                Err(e) if e.kind() == ErrorKind::MissingObject => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

struct Held {
    repo: Repository,
    body: Mutex<LockBody>,
    id: Mutex<LockId>,
    /// Set when a refresh found the lock removed: the holder must not trust it.
    lost: AtomicBool,
}

/// A held lock; dropping it stops the refresh thread and removes the lock file.
pub struct LockGuard {
    held: Arc<Held>,
    stop: Option<Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl LockGuard {
    pub fn shared(repo: &Repository, command: &str) -> Result<LockGuard> {
        Self::take(repo, false, command)
    }

    pub fn exclusive(repo: &Repository, command: &str) -> Result<LockGuard> {
        Self::take(repo, true, command)
    }

    /// A shared lock for a command that only reads (restore, dump), or `None` when the
    /// repository refuses the lock file because it cannot be written at all (a read-only
    /// mount, a storage account without write permission): such a repository cannot be
    /// pruned either, so reading it unlocked is safe, and refusing would make a read-only
    /// copy unrestorable. An exclusive lock held by someone else is still an error.
    pub fn shared_for_reading(repo: &Repository, command: &str) -> Result<Option<LockGuard>> {
        match Self::take(repo, false, command) {
            Ok(g) => Ok(Some(g)),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn take(repo: &Repository, exclusive: bool, command: &str) -> Result<LockGuard> {
        // Check first (cheap, and no lock file to clean up), then write ours and check again:
        // two processes that both wrote before the other's check both see each other and both
        // give up, never both proceed.
        conflicts(repo, exclusive, command, None)?;
        let id = LockId::random();
        let body = LockBody {
            exclusive,
            hostname: crate::hostname(),
            pid: std::process::id(),
            time: now_secs(),
            command: command.to_string(),
            holder: Some(id),
            scope: Some(ProcessScope::current()),
        };
        write_lock(repo, &body, id)?;
        if let Err(e) = conflicts(repo, exclusive, command, Some(id)) {
            let _ = repo.storage().remove(FileKind::Lock, &id.to_hex());
            return Err(e);
        }
        let held = Arc::new(Held {
            repo: repo.clone(),
            body: Mutex::new(body),
            id: Mutex::new(id),
            lost: AtomicBool::new(false),
        });
        let (stop, rx) = bounded::<()>(0);
        let h = held.clone();
        let refresher = std::thread::spawn(move || loop {
            match rx.recv_timeout(Duration::from_secs(REFRESH_SECS)) {
                Err(RecvTimeoutError::Timeout) => refresh(&h),
                _ => return,
            }
        });
        Ok(LockGuard {
            held,
            stop: Some(stop),
            refresher: Some(refresher),
        })
    }

    /// Whether this is an exclusive lock.
    pub fn is_exclusive(&self) -> bool {
        self.held.body.lock().exclusive
    }

    /// Whether this lock is held on `repo` (the same repository id).
    pub fn is_on(&self, repo: &Repository) -> bool {
        self.held.repo.config().repo_id == repo.config().repo_id
    }

    /// Fails if the lock was lost (someone removed it with `unlock`, or took it for stale), or
    /// was last written so long ago that others may take it for stale at any moment
    /// ([`COMMIT_MARGIN_SECS`] short of [`STALE_SECS`]: the machine was suspended, or the
    /// storage refused the refreshes). Called before destructive steps and before a backup
    /// writes its snapshot: past that point, a prune may have acted as if this operation were
    /// not running (its snapshot could reference packs that prune deleted), so it stops and
    /// writes nothing more (a backup's packs stay, and the next run reuses them).
    pub fn check(&self) -> Result<()> {
        let id = *self.held.id.lock();
        // Only an answer that it is gone counts: a storage that does not answer now says
        // nothing about the lock (the age check below covers a storage gone for long).
        let present = !self
            .held
            .repo
            .storage()
            .size(FileKind::Lock, &id.to_hex())
            .is_err_and(|e| e.kind() == ErrorKind::MissingObject);
        let command = self.held.body.lock().command.clone();
        if self.held.lost.load(Ordering::SeqCst) || !present {
            return Err(Error::new(
                ErrorKind::Locked,
                format!(
                    "the lock of this {command} was removed: stopping before any further change"
                ),
            ));
        }
        let age = self.age_secs();
        if age > STALE_SECS - COMMIT_MARGIN_SECS {
            return Err(Error::new(
                ErrorKind::Locked,
                format!(
                    "the lock of this {command} was last written {} minutes ago (a lock is stale \
                     after {}; the machine was suspended, or the storage refused the refreshes): \
                     another run may have taken it for stale, so this one stops before any \
                     further change; run it again (what it stored is reused)",
                    age / 60,
                    STALE_SECS / 60
                ),
            ));
        }
        Ok(())
    }

    /// Rewrite the lock now (as the refresh thread does every [`REFRESH_SECS`]).
    pub fn refresh(&self) {
        refresh(&self.held);
    }

    /// The current lock file's id (it changes with each refresh).
    pub fn id(&self) -> LockId {
        *self.held.id.lock()
    }

    /// Who holds this lock, the same across refreshes ([`LockBody::holder`]).
    pub fn holder(&self) -> LockId {
        self.held
            .body
            .lock()
            .holder
            .expect("locks taken by this version name their holder")
    }

    /// Seconds since the lock was last written. A holder about to commit checks that this is
    /// well below [`STALE_SECS`]: a lock that others may already call stale (the machine was
    /// suspended, or the refresh thread could not reach the storage) protects nothing.
    pub fn age_secs(&self) -> i64 {
        now_secs() - self.held.body.lock().time
    }
}

/// Write `body` as the lock file `id` (taking and refreshing a lock; tests also plant locks as
/// other processes would leave them).
pub fn write_lock(repo: &Repository, body: &LockBody, id: LockId) -> Result<()> {
    let sealed = repo.keys().seal(AAD, &body.encode());
    repo.storage().write(FileKind::Lock, &id.to_hex(), &sealed)
}

/// Write a new lock file with the current time, then remove the old one (so there is never a
/// moment without a lock). A lock removed by someone else is not silently re-created. A failed
/// write keeps the old lock and its time: the next refresh tries again, and if none succeeds
/// for long, [`LockGuard::check`] says so.
fn refresh(h: &Held) {
    let old = *h.id.lock();
    match h.repo.storage().size(FileKind::Lock, &old.to_hex()) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::MissingObject => {
            h.lost.store(true, Ordering::SeqCst);
            return;
        }
        // The storage does not answer now: try again at the next refresh.
        Err(_) => return,
    }
    let body = LockBody {
        time: now_secs(),
        ..h.body.lock().clone()
    };
    let new = LockId::random();
    if write_lock(&h.repo, &body, new).is_ok() {
        h.body.lock().time = body.time;
        *h.id.lock() = new;
        let _ = h.repo.storage().remove(FileKind::Lock, &old.to_hex());
    }
}

/// The first live lock that conflicts with taking one (`exclusive` or shared), as a `Locked`
/// error naming its holder. Stale locks met on the way are removed.
fn conflicts(
    repo: &Repository,
    exclusive: bool,
    command: &str,
    ours: Option<LockId>,
) -> Result<()> {
    let now = now_secs();
    for l in list_locks(repo)? {
        if Some(l.id) == ours {
            continue;
        }
        let b = match l.body {
            Ok(b) => b,
            // Not ours to judge (another key's lock cannot be told apart from garbage): an
            // exclusive operation must not ignore it.
            Err(e) if exclusive => {
                return Err(Error::new(
                    ErrorKind::Locked,
                    format!(
                        "repository at {} has a lock {} that cannot be read ({e}); remove it with `rime unlock --remove-all` if no other rime runs",
                        repo.storage().location(),
                        l.id.short()
                    ),
                ))
            }
            Err(_) => continue,
        };
        if b.stale_reason(now).is_some() {
            let _ = repo.storage().remove(FileKind::Lock, &l.id.to_hex());
            continue;
        }
        if exclusive || b.exclusive || excludes(command, &b.command) {
            return Err(Error::new(
                ErrorKind::Locked,
                format!(
                    "repository at {} is locked: {} (lock {}); it is stale after {} minutes without refresh, or remove it with `rime unlock` once that process is gone",
                    repo.storage().location(),
                    b.describe(),
                    l.id.short(),
                    STALE_SECS / 60
                ),
            ));
        }
    }
    Ok(())
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let id = *self.held.id.lock();
        let _ = self
            .held
            .repo
            .storage()
            .remove(FileKind::Lock, &id.to_hex());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_to_v4_bodies_decode() {
        let b = LockBody {
            exclusive: true,
            hostname: "h".into(),
            pid: 7,
            time: 1_800_000_000,
            command: "prune".into(),
            holder: None,
            scope: None,
        };
        assert_eq!(LockBody::decode(&b.encode()).unwrap(), b);
        assert_eq!(b.encode()[4], 2);
        let v3 = LockBody {
            holder: Some(LockId::from_bytes([9; 32])),
            ..b.clone()
        };
        assert_eq!(v3.encode()[4], 3);
        assert_eq!(LockBody::decode(&v3.encode()).unwrap(), v3);
        let v4 = LockBody {
            scope: Some(ProcessScope {
                boot_id: "b".into(),
                pid_namespace: "pid:[4026531836]".into(),
            }),
            ..v3.clone()
        };
        assert_eq!(v4.encode()[4], 4);
        assert_eq!(LockBody::decode(&v4.encode()).unwrap(), v4);
        // A version 1 lock: the same fields without `command`.
        let mut v1 = LOCK_MAGIC.to_vec();
        v1.push(1);
        v1.extend_from_slice(&[1, 1, b'h', 7]);
        v1.extend_from_slice(&to_postcard(&1_800_000_000i64));
        let d = LockBody::decode(&v1).unwrap();
        assert_eq!((d.exclusive, d.pid, d.command.as_str()), (true, 7, ""));
        assert!(LockBody::decode(b"RMLK\x03").is_err());
        assert!(LockBody::decode(b"RMLK\x04").is_err());
        assert!(LockBody::decode(b"RMLK\x05").is_err());
    }

    #[test]
    fn staleness() {
        let me = LockBody {
            exclusive: false,
            hostname: crate::hostname(),
            pid: std::process::id(),
            time: 1000,
            command: "backup".into(),
            holder: Some(LockId::from_bytes([1; 32])),
            scope: Some(ProcessScope::current()),
        };
        assert!(me.stale_reason(1000 + STALE_SECS).is_none());
        assert!(me.stale_reason(1001 + STALE_SECS).is_some());
        // A clock that jumped back: a lock "from the future" is not stale.
        assert!(me.stale_reason(0).is_none());
        let dead = LockBody {
            pid: i32::MAX as u32,
            ..me.clone()
        };
        assert!(dead.stale_reason(1000).unwrap().contains("no longer runs"));
        let elsewhere = LockBody {
            hostname: format!("{}-other", crate::hostname()),
            ..dead.clone()
        };
        assert!(elsewhere.stale_reason(1000).is_none());
        // A container of the same host name (another PID namespace), or the same host after a
        // reboot: its PIDs are not ours, so only the age counts.
        let here = ProcessScope::current();
        for other in [
            ProcessScope {
                pid_namespace: "pid:[1]".into(),
                ..here.clone()
            },
            ProcessScope {
                boot_id: "another boot".into(),
                ..here.clone()
            },
        ] {
            let foreign = LockBody {
                scope: Some(other),
                ..dead.clone()
            };
            assert!(foreign.stale_reason(1000).is_none());
            assert!(foreign.stale_reason(1001 + STALE_SECS).is_some());
        }
        // A lock from before version 4 does not say where its PID lives: age only.
        let old = LockBody {
            scope: None,
            holder: None,
            ..dead.clone()
        };
        assert!(old.stale_reason(1000).is_none());
        assert!(old.stale_reason(1001 + STALE_SECS).is_some());
        // Where /proc tells nothing, nothing is known to match.
        let unknown = ProcessScope {
            boot_id: String::new(),
            pid_namespace: String::new(),
        };
        let blind = LockBody {
            scope: Some(unknown.clone()),
            ..dead
        };
        assert!(blind
            .stale_reason_seen_from(1000, &crate::hostname(), &unknown)
            .is_none());
    }

    fn repo() -> Repository {
        let opts = crate::repo::InitOptions {
            kdf: crate::crypto::KdfParams::TESTING,
            ..Default::default()
        };
        Repository::init(
            std::sync::Arc::new(crate::storage::MemoryStorage::new()),
            b"pw",
            &opts,
        )
        .unwrap()
    }

    #[test]
    fn conflicts_name_the_holder_and_stale_locks_do_not_block() {
        let r = repo();
        let a = LockGuard::shared(&r, "backup").unwrap();
        let b = LockGuard::shared(&r, "backup").unwrap(); // two backups at once
        let p = LockGuard::shared(&r, "prune").unwrap(); // prune runs beside backups
        let e = LockGuard::shared(&r, "prune")
            .err()
            .expect("a second prune is refused");
        assert_eq!(e.kind(), ErrorKind::Locked);
        let msg = e.to_string();
        assert!(
            msg.contains("`prune`") && msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains(&crate::hostname()), "{msg}");
        // A copy into this repository and a prune exclude each other; copies do not.
        let e = LockGuard::shared(&r, COPY_DESTINATION)
            .err()
            .expect("a copy into a repository being pruned is refused");
        assert_eq!(e.kind(), ErrorKind::Locked);
        drop(p);
        let c = LockGuard::shared(&r, COPY_DESTINATION).unwrap();
        let c2 = LockGuard::shared(&r, COPY_DESTINATION).unwrap();
        let e = LockGuard::shared(&r, "prune")
            .err()
            .expect("a prune during a copy into the repository is refused");
        assert!(e.to_string().contains("`copy to`"), "{e}");
        drop((c, c2));
        // Forgets exclude each other, not backups.
        let f = LockGuard::shared(&r, FORGET).unwrap();
        let e = LockGuard::shared(&r, FORGET)
            .err()
            .expect("a second forget is refused");
        assert!(e.to_string().contains("`forget`"), "{e}");
        drop((LockGuard::shared(&r, "backup").unwrap(), f));
        let p = LockGuard::shared(&r, "prune").unwrap();
        let e = LockGuard::exclusive(&r, "repair")
            .err()
            .expect("exclusive refused while shared held");
        assert!(e.to_string().contains("shared lock of `"), "{e}");
        // Refresh keeps one lock per holder.
        a.refresh();
        assert_eq!(list_locks(&r).unwrap().len(), 3);
        drop((a, b, p));
        assert!(
            list_locks(&r).unwrap().is_empty(),
            "dropping removes the lock files"
        );
        let x = LockGuard::exclusive(&r, "repair").unwrap();
        let e = LockGuard::shared(&r, "backup")
            .err()
            .expect("shared refused while exclusive held");
        assert!(e.to_string().contains("exclusive lock of `repair`"), "{e}");
        x.check().unwrap();
        // `unlock --remove-all` takes it away; the holder notices before its next change.
        assert_eq!(unlock(&r, true).unwrap().len(), 1);
        assert_eq!(x.check().unwrap_err().kind(), ErrorKind::Locked);
        drop(x);
        // A lock of a dead process on this host, and one not refreshed for an hour: both stale,
        // neither blocks an exclusive lock, and `unlock` removes them.
        let dead_here = LockBody {
            exclusive: true,
            hostname: crate::hostname(),
            pid: i32::MAX as u32,
            time: now_secs(),
            command: "prune".into(),
            holder: Some(LockId::random()),
            scope: Some(ProcessScope::current()),
        };
        for body in [
            dead_here.clone(),
            LockBody {
                hostname: "elsewhere".into(),
                pid: 1,
                time: now_secs() - 3600,
                scope: None,
                ..dead_here.clone()
            },
        ] {
            write_lock(&r, &body, LockId::random()).unwrap();
        }
        assert_eq!(unlock(&r, false).unwrap().len(), 2);
        write_lock(&r, &dead_here, LockId::random()).unwrap();
        drop(LockGuard::exclusive(&r, "repair").expect("stale lock ignored and removed"));
        assert!(list_locks(&r).unwrap().is_empty());
    }

    /// A lock whose refreshes stopped succeeding for nearly the stale limit (a suspended
    /// machine, a storage refusing writes) no longer lets its holder commit; a refresh that
    /// works again restores it. A refresh keeps the holder and changes the file id.
    #[test]
    fn an_old_lock_stops_its_holder_and_a_refresh_keeps_the_holder() {
        let r = repo();
        let a = LockGuard::shared(&r, "backup").unwrap();
        let (holder, file) = (a.holder(), a.id());
        assert_eq!(holder, file, "the first file id names the holder");
        a.check().unwrap();
        a.held.body.lock().time -= STALE_SECS - COMMIT_MARGIN_SECS + 60;
        let e = a.check().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Locked);
        assert!(e.to_string().contains("minutes ago"), "{e}");
        a.refresh();
        a.check().unwrap();
        assert_ne!(a.id(), file);
        assert_eq!(a.holder(), holder);
        let found = list_locks(&r).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].id, found[0].holder()), (a.id(), holder));
    }
}
