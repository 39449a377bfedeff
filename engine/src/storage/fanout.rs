//! One repository kept on several storages at once.
//!
//! Every write goes to every member through its own writer thread and bounded queue, so a slow
//! member never stalls the others beyond [`QUEUE_DEPTH`] objects (memory: that many objects per
//! member), and each member receives objects in the order they were written: its packs before
//! the index naming them, its index before the snapshot. A member whose write fails is marked
//! failed and receives nothing more, so its repository stays consistent (it just lacks this
//! run's snapshot); the others complete. [`Fanout::finish`] waits for the queues and says what
//! happened to each member.
//!
//! Locks and prune's pending records are the exceptions to queueing: they are coordination,
//! not data, and another run (on just one of the storages, say) must see them as soon as the
//! call returns. They are written to and removed from every working member directly, before
//! the call returns. A snapshot is queued behind its packs and index, and the call waits until
//! every member has it: "saved" is reported only once it is stored, and prune's protocol
//! (SPEC section 9.3) checks its records after the snapshot is written.
//!
//! Reads come from the first member that answers, falling back to the next on any error (so a
//! restore survives one storage going away mid-way). Bytes that answer but fail verification
//! (a snapshot, index file, tree or data blob damaged at rest) are read again from each copy
//! by the repository ([`Fanout::read_replica`], [`Storage::read_range_replica`]). Listings are intersections: an object
//! counts as stored only if every working member has it, so deduplication never relies on data
//! a lagging member lacks (it is uploaded again; `rime copy` catches a member up). Locks and
//! pending records are listed as the union (one on any member is in force), key files too
//! (a key added while one storage was down must still open the repository), and so is
//! everything in a run that only reads ([`Fanout::set_reading`]): a snapshot that reached only
//! one storage can still be restored from it.

use std::collections::HashMap;
use std::sync::Arc;

use crossbeam_channel::{bounded, Sender};
use parking_lot::{Condvar, Mutex};

use crate::error::{Error, ErrorKind, Result};
use crate::storage::{FileKind, ObjectInfo, Storage};

/// Objects a member may lag behind before writers wait for it.
pub const QUEUE_DEPTH: usize = 8;

enum Job {
    Write(FileKind, String, bytes::Bytes),
    /// A write whose stores are counted: a snapshot, reported saved if any member stored it
    /// (a member may be marked failed later in the run, by a lock refresh say, after storing
    /// it).
    WriteCounted(
        FileKind,
        String,
        bytes::Bytes,
        Arc<std::sync::atomic::AtomicUsize>,
    ),
    Remove(FileKind, String),
}

struct Member {
    storage: Arc<dyn Storage>,
    /// The first error that made this member stop receiving writes.
    failed: Arc<Mutex<Option<Error>>>,
    queue: Option<Sender<Job>>,
    /// Jobs queued and not yet done.
    pending: Arc<(Mutex<usize>, Condvar)>,
    worker: Option<std::thread::JoinHandle<()>>,
    written: Arc<Mutex<(u64, u64)>>,
}

/// What happened to one member in a run.
#[derive(Debug)]
pub struct MemberReport {
    pub location: String,
    /// Objects and bytes written to it.
    pub objects: u64,
    pub bytes: u64,
    pub error: Option<Error>,
}

pub struct Fanout {
    members: Vec<Member>,
    /// The run only reads: listings are unions, and a member without the repository is
    /// skipped instead of refused.
    reading: std::sync::atomic::AtomicBool,
}

/// Kinds written and removed synchronously on every member, and listed as a union.
fn is_coordination(kind: FileKind) -> bool {
    matches!(kind, FileKind::Lock | FileKind::Pending)
}

/// Do one job on one member; the first failure stops the member.
fn run_job(job: &Job, s: &dyn Storage, failed: &Mutex<Option<Error>>, written: &Mutex<(u64, u64)>) {
    if failed.lock().is_some() {
        return;
    }
    let r = match job {
        Job::Write(kind, name, data) | Job::WriteCounted(kind, name, data, _) => {
            let r = s.write_bytes(*kind, name, data.clone());
            if r.is_ok() {
                let mut w = written.lock();
                w.0 += 1;
                w.1 += data.len() as u64;
                if let Job::WriteCounted(.., stored) = job {
                    stored.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
            r
        }
        Job::Remove(kind, name) => match s.remove(*kind, name) {
            Err(e) if e.kind() == ErrorKind::MissingObject => Ok(()),
            r => r,
        },
    };
    if let Err(e) = r {
        failed.lock().get_or_insert(e.within(s.location()));
    }
}

fn done(pending: &(Mutex<usize>, Condvar)) {
    let (m, cv) = pending;
    *m.lock() -= 1;
    cv.notify_all();
}

/// A member's dispatcher: packs go to `storage.concurrency()` uploaders in parallel; any other
/// object waits until every earlier pack of this member is stored, so an index never reaches a
/// storage before the packs it names (nor a snapshot before its index).
fn dispatch(
    rx: crossbeam_channel::Receiver<Job>,
    s: Arc<dyn Storage>,
    failed: Arc<Mutex<Option<Error>>>,
    pending: Arc<(Mutex<usize>, Condvar)>,
    written: Arc<Mutex<(u64, u64)>>,
) {
    let n = s.concurrency().max(1);
    let in_flight: Arc<(Mutex<usize>, Condvar)> = Arc::default();
    let (ptx, prx) = bounded::<Job>(n);
    let uploaders: Vec<_> = (0..n)
        .map(|_| {
            let (prx, s, f, p, w, fl) = (
                prx.clone(),
                s.clone(),
                failed.clone(),
                pending.clone(),
                written.clone(),
                in_flight.clone(),
            );
            std::thread::spawn(move || {
                for job in prx {
                    run_job(&job, s.as_ref(), &f, &w);
                    done(&fl);
                    done(&p);
                }
            })
        })
        .collect();
    for job in rx {
        let is_pack = matches!(&job, Job::Write(FileKind::Pack, _, _));
        if is_pack && n > 1 {
            *in_flight.0.lock() += 1;
            if ptx.send(job).is_err() {
                done(&in_flight);
                done(&pending);
            }
            continue;
        }
        {
            let (m, cv) = &*in_flight;
            let mut k = m.lock();
            while *k > 0 {
                cv.wait(&mut k);
            }
        }
        run_job(&job, s.as_ref(), &failed, &written);
        done(&pending);
    }
    drop(ptx);
    for u in uploaders {
        let _ = u.join();
    }
}

impl Fanout {
    pub fn new(storages: Vec<Arc<dyn Storage>>) -> Fanout {
        let members = storages
            .into_iter()
            .map(|storage| {
                let (tx, rx) = bounded::<Job>(QUEUE_DEPTH);
                let failed: Arc<Mutex<Option<Error>>> = Arc::default();
                let pending: Arc<(Mutex<usize>, Condvar)> = Arc::default();
                let written: Arc<Mutex<(u64, u64)>> = Arc::default();
                let (s, f, p, w) = (
                    storage.clone(),
                    failed.clone(),
                    pending.clone(),
                    written.clone(),
                );
                let worker = std::thread::spawn(move || dispatch(rx, s, f, p, w));
                Member {
                    storage,
                    failed,
                    queue: Some(tx),
                    pending,
                    worker: Some(worker),
                    written,
                }
            })
            .collect();
        Fanout {
            members,
            reading: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// This run only reads (restore, ls, dump, diff, snapshots): list the union of the
    /// members, so a snapshot (and its index) that reached only some storages is found on
    /// them, and skip a member that holds no repository.
    pub fn set_reading(&self) {
        self.reading
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn is_reading(&self) -> bool {
        self.reading.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Wait until every member has done every queued job.
    fn drain(&self) {
        for m in &self.members {
            let (lock, cv) = &*m.pending;
            let mut n = lock.lock();
            while *n > 0 {
                cv.wait(&mut n);
            }
        }
    }

    /// A write or removal done on every working member now, in the caller's thread (locks,
    /// pending records). Succeeds if one member did it; the others are marked failed.
    fn on_every_member(&self, job: Job) -> Result<()> {
        let mut any = false;
        for m in self.healthy() {
            run_job(&job, m.storage.as_ref(), &m.failed, &m.written);
            any |= m.failed.lock().is_none();
        }
        match any {
            true => Ok(()),
            false => Err(self.all_failed()),
        }
    }

    /// The config goes to every member at once, not through the queues: it is create-only,
    /// and a member that already holds another repository's config must fail the write (two
    /// `rime init` racing), not only that member.
    fn write_config(&self, data: &bytes::Bytes) -> Result<()> {
        let mut any = false;
        for m in self.healthy() {
            match m
                .storage
                .write_bytes(FileKind::Config, "config", data.clone())
            {
                Ok(()) => any = true,
                Err(e) if e.kind() == ErrorKind::RepositoryExists => return Err(e),
                Err(e) => self.fail(m, &e),
            }
        }
        match any {
            true => Ok(()),
            false => Err(self.all_failed()),
        }
    }

    fn healthy(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.failed.lock().is_none())
    }

    fn all_failed(&self) -> Error {
        let errs: Vec<String> = self
            .members
            .iter()
            .filter_map(|m| m.failed.lock().as_ref().map(|e| e.to_string()))
            .collect();
        let kind = self
            .members
            .first()
            .and_then(|m| m.failed.lock().as_ref().map(Error::kind))
            .unwrap_or(ErrorKind::Unavailable);
        Error::new(kind, format!("every storage failed: {}", errs.join("; ")))
    }

    /// Mark a member failed by a read-side error (it stops receiving writes too).
    fn fail(&self, m: &Member, e: &Error) {
        let mut f = m.failed.lock();
        if f.is_none() {
            *f = Some(Error::new(
                e.kind(),
                format!("{}: {e}", m.storage.location()),
            ));
        }
    }

    /// Check that every member holds the same repository (identical config bytes). A member
    /// that cannot be reached, or holds no repository, is dropped for this run (and reported
    /// by [`Fanout::finish`]; catch it up with `rime copy`); a member with another repository
    /// is an error, and so is a run where no member holds one.
    pub fn check_same_repository(&self) -> Result<()> {
        let mut first: Option<(String, Vec<u8>)> = None;
        let mut empty = Vec::new();
        for m in self.healthy() {
            match m.storage.read(FileKind::Config, "config") {
                Ok(b) => match &first {
                    None => first = Some((m.storage.location(), b)),
                    Some((loc, fb)) if *fb != b => {
                        return Err(Error::invalid(format!(
                            "{} holds a different repository than {loc}: each storage of one backup must hold copies of the same repository (created together by `rime init` with several --repo, or seeded with `rime copy`)",
                            m.storage.location()
                        )))
                    }
                    Some(_) => {}
                },
                Err(e)
                    if self.is_reading()
                        && matches!(e.kind(), ErrorKind::MissingObject | ErrorKind::NotFound) =>
                {
                    self.fail(
                        m,
                        &Error::new(ErrorKind::RepositoryNotFound, "holds no repository"),
                    )
                }
                // Writing: a storage without the repository (wiped, or a disk not mounted)
                // fails alone, like an unreachable one, so the others still get tonight's
                // backup; only when no storage holds it is the run refused.
                Err(e) if matches!(e.kind(), ErrorKind::MissingObject | ErrorKind::NotFound) => {
                    empty.push(m);
                }
                Err(e) => self.fail(m, &e),
            }
        }
        if first.is_none() {
            if let Some(m) = empty.first() {
                return Err(Error::new(
                    ErrorKind::RepositoryNotFound,
                    format!(
                        "no repository at {}: create it with `rime init`, or seed it with `rime copy --from <another storage> --to {}`",
                        m.storage.location(),
                        m.storage.location()
                    ),
                ));
            }
        }
        for m in empty {
            let loc = m.storage.location();
            self.fail(
                m,
                &Error::new(
                    ErrorKind::RepositoryNotFound,
                    format!(
                        "holds no repository: seed it with `rime copy --from <another storage> --to {loc}`"
                    ),
                ),
            );
        }
        if first.is_none() && self.healthy().next().is_none() {
            return Err(self.all_failed());
        }
        Ok(())
    }

    /// Wait until every queued write is done, then report each member.
    pub fn finish(&self) -> Vec<MemberReport> {
        self.drain();
        self.members
            .iter()
            .map(|m| {
                let (objects, bytes) = *m.written.lock();
                MemberReport {
                    location: m.storage.location(),
                    objects,
                    bytes,
                    error: m
                        .failed
                        .lock()
                        .as_ref()
                        .map(|e| Error::new(e.kind(), e.to_string())),
                }
            })
            .collect()
    }

    fn enqueue(&self, job: impl Fn() -> Job) -> Result<()> {
        let mut any = false;
        for m in self.healthy() {
            let (lock, _) = &*m.pending;
            *lock.lock() += 1;
            if let Some(q) = &m.queue {
                if q.send(job()).is_ok() {
                    any = true;
                    continue;
                }
            }
            *lock.lock() -= 1;
        }
        if any {
            Ok(())
        } else {
            Err(self.all_failed())
        }
    }

    /// Run a read on the members in order until one succeeds. A missing object is only an
    /// answer if no member has it; other errors mark the member failed.
    fn first<T>(&self, f: impl Fn(&dyn Storage) -> Result<T>) -> Result<T> {
        let mut first_err: Option<Error> = None;
        for m in self.healthy() {
            match f(m.storage.as_ref()) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    // A storage that cannot be reached (or refuses us) is dropped for the rest
                    // of the run; a missing or corrupt object is tried on the next one.
                    if matches!(
                        e.kind(),
                        ErrorKind::Io
                            | ErrorKind::Unavailable
                            | ErrorKind::Unauthorized
                            | ErrorKind::PermissionDenied
                            | ErrorKind::Unsupported
                    ) {
                        self.fail(m, &e);
                    }
                    if e.kind() == ErrorKind::InvalidInput {
                        return Err(e);
                    }
                    let e = e.within(m.storage.location());
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or_else(|| self.all_failed()))
    }

    /// The member serving copy `replica` (members are the copies, in order), for the reads
    /// that ask one copy only.
    fn replica(&self, replica: usize) -> Result<&Member> {
        self.members
            .get(replica)
            .ok_or_else(|| crate::storage::no_such_replica(&self.location(), replica))
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        for m in &mut self.members {
            m.queue.take();
            if let Some(w) = m.worker.take() {
                let _ = w.join();
            }
        }
    }
}

impl Storage for Fanout {
    fn concurrency(&self) -> usize {
        self.members
            .iter()
            .map(|m| m.storage.concurrency())
            .max()
            .unwrap_or(1)
    }

    fn location(&self) -> String {
        let l: Vec<String> = self.members.iter().map(|m| m.storage.location()).collect();
        l.join(" + ")
    }

    fn create(&self) -> Result<()> {
        let mut any = false;
        for m in self.healthy() {
            match m.storage.create() {
                Ok(()) => any = true,
                Err(e) => self.fail(m, &e),
            }
        }
        if any {
            Ok(())
        } else {
            Err(self.all_failed())
        }
    }

    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        // Key files are the union too: a key added (or a password changed) while one storage
        // was down exists on the others only, and must still open the repository over all of
        // them (each key file is tried; reads fall back to the member that has it).
        let union = is_coordination(kind) || kind == FileKind::Key || self.is_reading();
        let mut result: Option<HashMap<String, u64>> = None;
        for m in self.healthy() {
            match m.storage.list(kind) {
                Ok(l) => {
                    let here: HashMap<String, u64> =
                        l.into_iter().map(|o| (o.name, o.size)).collect();
                    result = Some(match result {
                        None => here,
                        Some(mut acc) if union => {
                            for (k, v) in here {
                                acc.entry(k).or_insert(v);
                            }
                            acc
                        }
                        Some(mut acc) => {
                            acc.retain(|k, _| here.contains_key(k));
                            acc
                        }
                    });
                }
                Err(e) => self.fail(m, &e),
            }
        }
        let r = result.ok_or_else(|| self.all_failed())?;
        let mut v: Vec<ObjectInfo> = r
            .into_iter()
            .map(|(name, size)| ObjectInfo { name, size })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.first(|s| s.read(kind, name))
    }

    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.first(|s| s.read_range(kind, name, offset, len))
    }

    fn replicas(&self) -> usize {
        self.members.len()
    }

    fn flush(&self) {
        self.drain();
    }

    fn remove_leftovers(&self, age: std::time::Duration) -> Result<(u64, u64)> {
        let mut total = (0, 0);
        for m in self.healthy() {
            let (f, b) = m.storage.remove_leftovers(age)?;
            total = (total.0 + f, total.1 + b);
        }
        Ok(total)
    }

    fn read_replica(&self, replica: usize, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let m = self.replica(replica)?;
        m.storage
            .read(kind, name)
            .map_err(|e| e.within(m.storage.location()))
    }

    fn read_range_replica(
        &self,
        replica: usize,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        let m = self.replica(replica)?;
        m.storage
            .read_range(kind, name, offset, len)
            .map_err(|e| e.within(m.storage.location()))
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.write_bytes(kind, name, bytes::Bytes::copy_from_slice(data))
    }

    /// One buffer for every member: each gets a reference, not a copy.
    fn write_bytes(&self, kind: FileKind, name: &str, data: bytes::Bytes) -> Result<()> {
        crate::storage::check_name(kind, name)?;
        if kind == FileKind::Config {
            return self.write_config(&data);
        }
        if is_coordination(kind) {
            return self.on_every_member(Job::Write(kind, name.to_string(), data));
        }
        if kind != FileKind::Snapshot {
            return self.enqueue(|| Job::Write(kind, name.to_string(), data.clone()));
        }
        // Behind its packs and index on every member; stored before "saved" is said.
        let stored = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        self.enqueue(|| Job::WriteCounted(kind, name.to_string(), data.clone(), stored.clone()))?;
        self.drain();
        match stored.load(std::sync::atomic::Ordering::SeqCst) {
            0 => Err(self.all_failed()),
            _ => Ok(()),
        }
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        if kind == FileKind::Lock {
            // Our own lock goes from every member that may hold it, even one that failed
            // later in the run (best effort there: it would otherwise look held until stale).
            for m in self.members.iter().filter(|m| m.failed.lock().is_some()) {
                let _ = m.storage.remove(kind, name);
            }
        }
        if is_coordination(kind) {
            return self.on_every_member(Job::Remove(kind, name.to_string()));
        }
        self.enqueue(|| Job::Remove(kind, name.to_string()))
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.first(|s| s.size(kind, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testing::WriteGate;
    use crate::storage::MemoryStorage;

    #[test]
    fn fanout_passes_the_conformance_suite() {
        let f = Fanout::new(vec![
            Arc::new(MemoryStorage::default()),
            Arc::new(MemoryStorage::default()),
        ]);
        // Writes are asynchronous: the suite reads what it wrote, which the first member has
        // once its queue drained; run it with a synchronous view by finishing after each step.
        crate::storage::conformance::run_all(&SyncView(&f));
    }

    /// Waits for the queues after every mutation, so reads see the writes.
    struct SyncView<'a>(&'a Fanout);

    impl Storage for SyncView<'_> {
        fn location(&self) -> String {
            self.0.location()
        }
        fn create(&self) -> Result<()> {
            self.0.create()
        }
        fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
            self.0.list(kind)
        }
        fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
            self.0.read(kind, name)
        }
        fn read_range(&self, kind: FileKind, name: &str, o: u64, l: u64) -> Result<Vec<u8>> {
            self.0.read_range(kind, name, o, l)
        }
        fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
            self.0.write(kind, name, data)?;
            self.0.finish();
            Ok(())
        }
        fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
            // Missing objects must be reported as such, as by any storage.
            self.0.size(kind, name)?;
            self.0.remove(kind, name)?;
            self.0.finish();
            Ok(())
        }
        fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
            self.0.size(kind, name)
        }
    }

    /// A storage that fills up after `left` writes.
    fn full_after(left: u32) -> WriteGate<MemoryStorage> {
        let left = Mutex::new(left);
        WriteGate::new(MemoryStorage::default(), "full-after", move || {
            let mut left = left.lock();
            if *left == 0 {
                return Err(Error::new(ErrorKind::NoSpace, "storage full"));
            }
            *left -= 1;
            Ok(())
        })
    }

    #[test]
    fn a_failing_member_stops_receiving_and_the_others_complete() {
        let good = Arc::new(MemoryStorage::default());
        let bad = Arc::new(full_after(1));
        let f = Fanout::new(vec![bad.clone() as Arc<dyn Storage>, good.clone()]);
        for i in 0..5u8 {
            f.write(
                FileKind::Pack,
                &format!("{i:02x}{}", "0".repeat(62)),
                &[i; 100],
            )
            .unwrap();
        }
        let r = f.finish();
        assert!(r[0].error.is_some(), "{r:?}");
        assert_eq!(r[0].objects, 1);
        assert!(r[1].error.is_none());
        assert_eq!(good.list(FileKind::Pack).unwrap().len(), 5);
        assert_eq!(
            bad.list(FileKind::Pack).unwrap().len(),
            1,
            "nothing after the failure"
        );
        // Reads fall back to the working member.
        assert_eq!(
            f.read(FileKind::Pack, &format!("03{}", "0".repeat(62)))
                .unwrap(),
            vec![3; 100]
        );
    }

    /// A stalled member lets the others run ahead by a bounded number of objects (so memory
    /// stays bounded), holds the writer there, and catches up once it moves again.
    #[test]
    fn a_stalled_member_bounds_memory_and_does_not_lose_objects() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let fast = Arc::new(MemoryStorage::default());
        // A member whose writes wait until the gate opens: one that has stalled.
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let slow = Arc::new({
            let gate = gate.clone();
            WriteGate::new(MemoryStorage::default(), "gated", move || {
                let mut open = gate.0.lock();
                while !*open {
                    gate.1.wait(&mut open);
                }
                Ok(())
            })
        });
        let f = Arc::new(Fanout::new(vec![
            fast.clone() as Arc<dyn Storage>,
            slow.clone(),
        ]));
        let total = 6 * QUEUE_DEPTH;
        let sent = Arc::new(AtomicUsize::new(0));
        let producer = {
            let (f, sent) = (f.clone(), sent.clone());
            std::thread::spawn(move || {
                for i in 0..total {
                    f.write(FileKind::Pack, &format!("{i:064x}"), &[i as u8; 1000])
                        .unwrap();
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        // The fast member receives objects while the slow one has stored none.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while fast.list(FileKind::Pack).unwrap().len() < QUEUE_DEPTH {
            assert!(
                std::time::Instant::now() < deadline,
                "the fast member got nothing"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(slow.inner.list(FileKind::Pack).unwrap().is_empty());
        // The writer is held once the stalled member's queue is full: objects in memory for it
        // are bounded by the queue (plus those its uploaders hold), not by the backup's size.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let held_at = sent.load(Ordering::SeqCst);
        let bound = QUEUE_DEPTH + 2 * slow.concurrency().max(fast.concurrency()) + 2;
        assert!(
            held_at < total && held_at <= bound,
            "{held_at} of {total} writes returned while a member was stalled (bound {bound})"
        );
        *gate.0.lock() = true;
        gate.1.notify_all();
        producer.join().unwrap();
        let r = f.finish();
        assert!(r.iter().all(|m| m.error.is_none()), "{r:?}");
        assert_eq!(fast.list(FileKind::Pack).unwrap().len(), total);
        assert_eq!(slow.inner.list(FileKind::Pack).unwrap().len(), total);
    }

    /// A lock or prune record on any one member is in force for a run over all of them (a
    /// prune run on one storage alone must be seen), and ours is on every member when the
    /// write returns, not queued behind packs. Data listings stay intersections.
    #[test]
    fn locks_and_pending_records_are_the_union_and_written_at_once() {
        let a = Arc::new(MemoryStorage::default());
        let b = Arc::new(MemoryStorage::default());
        let f = Fanout::new(vec![a.clone() as Arc<dyn Storage>, b.clone()]);
        let name = |c: char| c.to_string().repeat(64);
        b.write(FileKind::Lock, &name('b'), b"held on b alone")
            .unwrap();
        b.write(FileKind::Pending, &name('c'), b"marked on b alone")
            .unwrap();
        b.write(FileKind::Pack, &name('d'), b"a pack a lacks")
            .unwrap();
        let listed =
            |k| -> Vec<String> { f.list(k).unwrap().into_iter().map(|o| o.name).collect() };
        assert_eq!(listed(FileKind::Lock), vec![name('b')]);
        assert_eq!(listed(FileKind::Pending), vec![name('c')]);
        assert!(
            listed(FileKind::Pack).is_empty(),
            "data stays an intersection"
        );
        assert_eq!(
            f.read(FileKind::Lock, &name('b')).unwrap(),
            b"held on b alone"
        );
        // Ours: on both members as soon as the call returns (no finish()).
        f.write(FileKind::Lock, &name('e'), b"ours").unwrap();
        assert_eq!(a.read(FileKind::Lock, &name('e')).unwrap(), b"ours");
        assert_eq!(b.read(FileKind::Lock, &name('e')).unwrap(), b"ours");
        f.remove(FileKind::Lock, &name('e')).unwrap();
        assert!(a.read(FileKind::Lock, &name('e')).is_err());
        assert!(b.read(FileKind::Lock, &name('e')).is_err());
        // A snapshot write returns once every member stored it, after the packs before it.
        f.write(FileKind::Pack, &name('f'), b"pack").unwrap();
        f.write(FileKind::Snapshot, &name('0'), b"snap").unwrap();
        for m in [&a, &b] {
            assert_eq!(m.read(FileKind::Snapshot, &name('0')).unwrap(), b"snap");
            assert_eq!(m.read(FileKind::Pack, &name('f')).unwrap(), b"pack");
        }
    }

    /// A run that only reads sees what any member holds (a snapshot that reached one storage
    /// is restorable from it) and skips a member that holds no repository.
    #[test]
    fn a_reading_run_lists_the_union_and_skips_a_member_without_repository() {
        let a = Arc::new(MemoryStorage::default());
        let b = Arc::new(MemoryStorage::default());
        a.write(FileKind::Config, "config", b"cfg").unwrap();
        a.write(FileKind::Snapshot, &"1".repeat(64), b"only on a")
            .unwrap();
        // Writing: the member without a repository fails alone (reported), the other goes on;
        // with no member holding one, the run is refused.
        let f = Fanout::new(vec![b.clone() as Arc<dyn Storage>, a.clone()]);
        f.check_same_repository().unwrap();
        let reports = f.finish();
        assert_eq!(
            reports[0].error.as_ref().map(|e| e.kind()),
            Some(ErrorKind::RepositoryNotFound)
        );
        assert!(reports[1].error.is_none());
        let c = Arc::new(MemoryStorage::default());
        let f = Fanout::new(vec![b.clone() as Arc<dyn Storage>, c as Arc<dyn Storage>]);
        let e = f.check_same_repository().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RepositoryNotFound, "{e}");
        let f = Fanout::new(vec![b.clone() as Arc<dyn Storage>, a.clone()]);
        f.set_reading();
        f.check_same_repository().unwrap();
        assert_eq!(f.list(FileKind::Snapshot).unwrap().len(), 1);
        assert_eq!(
            f.read(FileKind::Snapshot, &"1".repeat(64)).unwrap(),
            b"only on a"
        );
    }
}
