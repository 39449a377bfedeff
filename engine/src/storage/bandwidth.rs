//! Upload and download bandwidth limits, around any storage (`--limit-upload`,
//! `--limit-download`).
//!
//! A token bucket is shared by all threads, so a limit holds for every connection together. A
//! layer can take from several buckets: its storage's own limit and one shared by all the
//! storages of a run (see [`crate::storage::OpenOptions`]), so that `--limit-upload 10M` with two
//! storages means 10 MiB/s in all, not 10 MiB/s each. A transfer reserves its bytes and waits until the bucket has paid
//! for them; a burst of one second's worth is allowed after an idle period. Streamed objects
//! are charged as they are produced (append), which paces the producer to the same rate; their
//! commit is then not charged again, even if it goes through `write` (the buffered default).
//! An object written whole is paced while it is sent: network storages take each piece they
//! send from the upload's [`Pacer`] (64 KiB for Swift's body, 128 KiB SFTP writes), so the wire
//! sees a steady rate instead of whole packs sent at full speed between pauses; storages that
//! do not (local files) are charged for the rest after the write.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::storage::{FileKind, ObjectInfo, PendingObject, Storage};

/// A rate in bytes per second, shared by every thread that takes from it.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: Duration,
    /// When the bytes reserved so far will have been paid for.
    paid_until: Mutex<Instant>,
}

impl TokenBucket {
    pub fn new(bytes_per_second: u64) -> Self {
        TokenBucket {
            rate: bytes_per_second.max(1) as f64,
            burst: Duration::from_secs(1),
            paid_until: Mutex::new(Instant::now()),
        }
    }

    /// Wait until `n` more bytes fit within the rate.
    pub fn take(&self, n: u64) {
        if n == 0 {
            return;
        }
        let cost = Duration::from_secs_f64(n as f64 / self.rate);
        let wake = {
            let mut p = self.paid_until.lock();
            let now = Instant::now();
            // Idle time earns at most one burst's worth of credit.
            let start = (*p).max(now.checked_sub(self.burst).unwrap_or(now));
            *p = start + cost;
            (*p).checked_sub(self.burst)
        };
        if let Some(w) = wake {
            let now = Instant::now();
            if w > now {
                std::thread::sleep(w - now);
            }
        }
    }
}

/// Parse a rate: bytes per second, with an optional K, M or G suffix meaning KiB, MiB or GiB
/// (powers of 1024; "KiB"/"MB"-style spellings and a trailing "/s" are accepted too).
pub fn parse_rate(s: &str) -> Result<u64> {
    let bad = || {
        Error::invalid(format!(
            "invalid rate {s:?}: expected bytes per second like 500K, 10M or 1.5G (K/M/G = KiB/MiB/GiB)"
        ))
    };
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&t[..t.len() - 1], 1 << 20),
        Some('g' | 'G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if !(v.is_finite() && v > 0.0) {
        return Err(bad());
    }
    let bytes = (v * mult as f64).round();
    if bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

thread_local! {
    /// Set while this thread commits a streamed object whose bytes were charged at append.
    static PREPAID: Cell<bool> = const { Cell::new(false) };
}

thread_local! {
    /// The pacer of the upload this thread is making through a [`BandwidthLimit`].
    static PACER: RefCell<Option<Pacer>> = const { RefCell::new(None) };
}

/// The budget of one upload, for the storage that sends it to take from piece by piece.
#[derive(Clone)]
pub struct Pacer {
    buckets: Vec<Arc<TokenBucket>>,
    /// Bytes taken so far (the layer charges the rest after the write).
    charged: Arc<AtomicU64>,
}

impl Pacer {
    /// The pacer of the upload the calling thread is making, if it goes through a limit.
    /// Storages that send from another thread take it along.
    pub fn current() -> Option<Pacer> {
        PACER.with(|p| p.borrow().clone())
    }

    /// Wait until `n` more bytes of the upload fit within the limits.
    pub fn take(&self, n: u64) {
        take_all(&self.buckets, n);
        self.charged.fetch_add(n, Ordering::Relaxed);
    }
}

/// Run `f` as an upload paced at `bytes_per_second` (tests of storages that take pieces).
#[cfg(test)]
pub(crate) fn paced<T>(bytes_per_second: u64, f: impl FnOnce() -> T) -> T {
    let pacer = Pacer {
        buckets: vec![Arc::new(TokenBucket::new(bytes_per_second))],
        charged: Arc::new(AtomicU64::new(0)),
    };
    let outer = PACER.with(|p| p.replace(Some(pacer)));
    let r = f();
    PACER.with(|p| *p.borrow_mut() = outer);
    r
}

/// Locks and prune records are a few hundred bytes and must not wait behind packs for the
/// budget: a lock refresh queued behind minutes of pack uploads would let the lock go stale
/// while its holder is healthy.
fn is_unpaced(kind: FileKind) -> bool {
    matches!(kind, FileKind::Lock | FileKind::Pending)
}

/// Wait until every bucket has room for `n` bytes (each one's limit holds).
fn take_all(buckets: &[Arc<TokenBucket>], n: u64) {
    for b in buckets {
        b.take(n);
    }
}

pub struct BandwidthLimit {
    inner: Arc<dyn Storage>,
    up: Vec<Arc<TokenBucket>>,
    down: Vec<Arc<TokenBucket>>,
}

impl BandwidthLimit {
    /// Limits of this storage alone.
    pub fn new(inner: Arc<dyn Storage>, upload: Option<u64>, download: Option<u64>) -> Self {
        let bucket = |r| Arc::new(TokenBucket::new(r));
        Self::with_buckets(
            inner,
            upload.map(bucket).into_iter().collect(),
            download.map(bucket).into_iter().collect(),
        )
    }

    /// Transfers take from every given bucket; buckets shared with other storages make one
    /// budget for all of them.
    pub fn with_buckets(
        inner: Arc<dyn Storage>,
        up: Vec<Arc<TokenBucket>>,
        down: Vec<Arc<TokenBucket>>,
    ) -> Self {
        BandwidthLimit { inner, up, down }
    }

    fn down(&self, n: u64) {
        take_all(&self.down, n);
    }

    /// Run an upload of `n` bytes under the limits: the storage takes its pieces from the
    /// thread's [`Pacer`] as it sends them; what it did not take is charged afterwards.
    fn up<T>(&self, kind: FileKind, n: u64, write: impl FnOnce() -> Result<T>) -> Result<T> {
        if is_unpaced(kind) || self.up.is_empty() || PREPAID.with(Cell::get) {
            return write();
        }
        let pacer = Pacer {
            buckets: self.up.clone(),
            charged: Arc::new(AtomicU64::new(0)),
        };
        let outer = PACER.with(|p| p.replace(Some(pacer.clone())));
        let r = write();
        PACER.with(|p| *p.borrow_mut() = outer);
        take_all(
            &self.up,
            n.saturating_sub(pacer.charged.load(Ordering::Relaxed)),
        );
        r
    }
}

impl Storage for BandwidthLimit {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self) -> Result<()> {
        self.inner.create()
    }
    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        self.inner.list(kind)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let d = self.inner.read(kind, name)?;
        self.down(d.len() as u64);
        Ok(d)
    }
    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.down(len);
        self.inner.read_range(kind, name, offset, len)
    }
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.up(kind, data.len() as u64, || {
            self.inner.write(kind, name, data)
        })
    }
    fn write_bytes(&self, kind: FileKind, name: &str, data: bytes::Bytes) -> Result<()> {
        self.up(kind, data.len() as u64, || {
            self.inner.write_bytes(kind, name, data)
        })
    }
    fn begin_write(&self, kind: FileKind) -> Result<Box<dyn PendingObject>> {
        let inner = self.inner.begin_write(kind)?;
        Ok(if self.up.is_empty() {
            inner
        } else {
            Box::new(PacedPending {
                inner,
                buckets: self.up.clone(),
            })
        })
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.inner.remove(kind, name)
    }
    fn remove_leftovers(&self, age: std::time::Duration) -> Result<(u64, u64)> {
        self.inner.remove_leftovers(age)
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.inner.size(kind, name)
    }

    fn concurrency(&self) -> usize {
        self.inner.concurrency()
    }
}

struct PacedPending {
    inner: Box<dyn PendingObject>,
    buckets: Vec<Arc<TokenBucket>>,
}

impl PendingObject for PacedPending {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        take_all(&self.buckets, data.len() as u64);
        self.inner.append(data)
    }
    fn commit(self: Box<Self>, storage: &dyn Storage, name: &str) -> Result<()> {
        let was = PREPAID.with(|p| p.replace(true));
        let r = self.inner.commit(storage, name);
        PREPAID.with(|p| p.set(was));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    #[test]
    fn rates_parse_with_binary_suffixes() {
        assert_eq!(parse_rate("1000").unwrap(), 1000);
        assert_eq!(parse_rate("10K").unwrap(), 10 << 10);
        assert_eq!(parse_rate("10M").unwrap(), 10 << 20);
        assert_eq!(parse_rate("10MiB").unwrap(), 10 << 20);
        assert_eq!(parse_rate("2g").unwrap(), 2 << 30);
        assert_eq!(parse_rate("1.5M/s").unwrap(), 3 << 19);
        for bad in ["", "M", "-1M", "0", "ten", "1X"] {
            let e = parse_rate(bad).unwrap_err().to_string();
            assert!(e.contains("invalid rate"), "{bad}: {e}");
        }
    }

    /// A storage that sends an object in 64 KiB pieces, each taken from the upload's pacer as
    /// a network storage does, and notes when each piece was released.
    struct PieceByPiece {
        inner: MemoryStorage,
        released: Mutex<Vec<(Duration, u64)>>,
        start: Instant,
    }

    impl Storage for PieceByPiece {
        fn location(&self) -> String {
            "pieces".into()
        }
        fn create(&self) -> Result<()> {
            Ok(())
        }
        fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
            self.inner.list(kind)
        }
        fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
            self.inner.read(kind, name)
        }
        fn read_range(&self, k: FileKind, n: &str, o: u64, l: u64) -> Result<Vec<u8>> {
            self.inner.read_range(k, n, o, l)
        }
        fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
            let pacer = Pacer::current();
            let mut sent = 0u64;
            for piece in data.chunks(64 << 10) {
                if let Some(p) = &pacer {
                    p.take(piece.len() as u64);
                }
                sent += piece.len() as u64;
                self.released.lock().push((self.start.elapsed(), sent));
            }
            self.inner.write(kind, name, data)
        }
        fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
            self.inner.remove(kind, name)
        }
        fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
            self.inner.size(kind, name)
        }
    }

    /// A 3 MiB object under a 1 MiB/s limit (1 s burst) is released progressively: the first
    /// pieces at once, the rest at the rate, not the whole object after a two-second pause.
    #[test]
    fn an_object_is_released_piece_by_piece_at_the_rate() {
        let pieces = Arc::new(PieceByPiece {
            inner: MemoryStorage::new(),
            released: Mutex::new(Vec::new()),
            start: Instant::now(),
        });
        let s = BandwidthLimit::new(pieces.clone(), Some(1 << 20), None);
        s.write(FileKind::Pack, "abcd", &vec![0u8; 3 << 20])
            .unwrap();
        let released = pieces.released.lock().clone();
        let at = |t: f64| {
            released
                .iter()
                .filter(|(when, _)| when.as_secs_f64() <= t)
                .map(|(_, n)| *n)
                .max()
                .unwrap_or(0)
        };
        // The burst goes at once; then about 1 MiB a second.
        assert!(
            at(0.3) >= 1 << 20,
            "first second's worth not sent at once: {released:?}"
        );
        assert!(
            at(0.3) < 2 << 20,
            "more than the burst at once: {released:?}"
        );
        assert!(at(1.3) < 3 << 20, "not paced: {released:?}");
        let (last, total) = *released.last().unwrap();
        assert_eq!(total, 3 << 20);
        assert!(last >= Duration::from_millis(1900), "{released:?}");
        // Nothing is charged twice: a second object waits only for its own bytes.
        let t = Instant::now();
        s.write(FileKind::Pack, "abce", &vec![0u8; 64 << 10])
            .unwrap();
        assert!(
            t.elapsed() < Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
    }

    /// How long `work` takes run on all of `each` at once, one thread each.
    fn elapsed_on_threads<T: Send>(each: Vec<T>, work: impl Fn(T) + Sync) -> Duration {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for x in each {
                let work = &work;
                scope.spawn(move || work(x));
            }
        });
        start.elapsed()
    }

    /// 4 threads upload 2 MiB in all against a 1 MiB/s limit (1 s burst): at least ~1 s.
    #[test]
    fn uploads_from_all_threads_share_one_limit() {
        let s = Arc::new(BandwidthLimit::new(
            Arc::new(MemoryStorage::new()),
            Some(1 << 20),
            None,
        ));
        let took = elapsed_on_threads((0..4u32).collect(), |t| {
            for i in 0..8u32 {
                let name = format!("{:04x}", t * 16 + i);
                s.write(FileKind::Pack, &name, &vec![0u8; 64 << 10])
                    .unwrap();
            }
        });
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(10),
            "2 MiB at 1 MiB/s with a 1 s burst took {took:?}"
        );
    }

    /// A buffered streamed object is charged once (at append), not again at its commit.
    #[test]
    fn streamed_objects_are_charged_once() {
        let s: Arc<dyn Storage> = Arc::new(BandwidthLimit::new(
            Arc::new(MemoryStorage::new()),
            Some(1 << 20),
            None,
        ));
        let start = Instant::now();
        let mut p = s.begin_write(FileKind::Pack).unwrap();
        p.append(&vec![0u8; 2 << 20]).unwrap();
        p.commit(s.as_ref(), "bb01").unwrap();
        // 2 MiB at 1 MiB/s with a 1 s burst: ~1 s if charged once, ~3 s if charged twice.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
            "{took:?}"
        );
        assert_eq!(s.size(FileKind::Pack, "bb01").unwrap(), 2 << 20);
    }

    /// Two storages sharing one 1 MiB/s bucket upload 2 MiB each: ~3 s together (the first
    /// second's worth is a burst), where separate buckets would take ~1 s.
    #[test]
    fn storages_sharing_a_bucket_share_its_rate() {
        let shared = Arc::new(TokenBucket::new(1 << 20));
        let storages: Vec<Arc<dyn Storage>> = (0..2)
            .map(|_| {
                Arc::new(BandwidthLimit::with_buckets(
                    Arc::new(MemoryStorage::new()),
                    vec![shared.clone()],
                    vec![],
                )) as Arc<dyn Storage>
            })
            .collect();
        let took = elapsed_on_threads(storages, |s| {
            for i in 0..4u32 {
                s.write(FileKind::Pack, &format!("{i:04x}"), &vec![0u8; 512 << 10])
                    .unwrap();
            }
        });
        assert!(
            took >= Duration::from_millis(2700) && took < Duration::from_secs(10),
            "{took:?}"
        );
    }

    /// A storage's own limit applies on top of the shared one: the slower of the two wins.
    #[test]
    fn an_own_bucket_applies_in_addition_to_the_shared_one() {
        let s = BandwidthLimit::with_buckets(
            Arc::new(MemoryStorage::new()),
            vec![
                Arc::new(TokenBucket::new(512 << 10)),
                Arc::new(TokenBucket::new(64 << 20)),
            ],
            vec![],
        );
        let start = Instant::now();
        for i in 0..4u32 {
            s.write(FileKind::Pack, &format!("{i:04x}"), &vec![0u8; 256 << 10])
                .unwrap();
        }
        // 1 MiB at 512 KiB/s after a 1 s burst: ~1 s; the 64 MiB/s bucket alone: no wait.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(900), "{took:?}");
    }

    #[test]
    fn downloads_are_limited_and_uploads_are_not_when_only_download_is_set() {
        let mem = Arc::new(MemoryStorage::new());
        let s = BandwidthLimit::new(mem, None, Some(512 << 10));
        let start = Instant::now();
        s.write(FileKind::Pack, "aa01", &vec![1u8; 1 << 20])
            .unwrap();
        assert!(start.elapsed() < Duration::from_millis(300));
        let start = Instant::now();
        for _ in 0..2 {
            assert_eq!(s.read(FileKind::Pack, "aa01").unwrap().len(), 1 << 20);
        }
        // 2 MiB at 512 KiB/s with a 1 s burst: about 3 s.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(2800), "{took:?}");
    }
}
