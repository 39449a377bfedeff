//! Stream backup: standard input, a command's output or a database dump, cut into
//! content-defined chunks so that a daily dump whose rows mostly stay put deduplicates.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Instant;

use rayon::prelude::*;

use crate::chunker::Chunker;
use crate::error::{Error, ErrorKind, Result};
use crate::format::snapshot::{SnapshotStats, SourceKind, StreamSource};
use crate::format::tree::Part;
use crate::format::BlobType;
use crate::ops::backup::BackupResult;
use crate::ops::blob_saver::BlobSaver;
use crate::ops::volume::map::MapWriter;
use crate::ops::volume::{find_parent, save, SnapshotMeta};
use crate::ops::Progress;
use crate::repo::index::MasterIndex;
use crate::repo::lock::LockGuard;
use crate::repo::Repository;

/// Bytes chunked per round: large enough for the parallel chunker, small enough to bound memory.
const WINDOW: usize = 64 << 20;

#[derive(Debug, Clone)]
pub struct StreamBackupOptions {
    pub meta: SnapshotMeta,
    /// What produced the stream (recorded; empty for standard input).
    pub command: String,
    pub annotations: Vec<(String, String)>,
}

/// Back up everything `reader` yields. `source_ok` runs after the last byte and before the
/// snapshot is written: a producer that failed (a dump command exiting non-zero) turns the run
/// into an error and no snapshot claims to hold its output. It may return more annotations
/// (facts learnt from the stream, such as a dump's binlog position).
pub fn backup_stream(
    repo: &Repository,
    reader: &mut dyn Read,
    opts: &StreamBackupOptions,
    progress: &dyn Progress,
    source_ok: &mut dyn FnMut() -> Result<Vec<(String, String)>>,
) -> Result<BackupResult> {
    let started = Instant::now();
    if opts.meta.name.is_empty() {
        return Err(Error::invalid(
            "a stream backup needs a name (--name): it is how the next backup finds its parent",
        ));
    }
    let lock = LockGuard::shared(repo, "stream backup")?;
    let index = MasterIndex::load(repo)?;
    let parent = find_parent(repo, &opts.meta)?.map(|(id, _)| id);
    let saver = BlobSaver::for_backup(repo, &index, opts.meta.compression_level);
    let mut writer = MapWriter::default();
    let size = chunk_reader(reader, &repo.chunker(), &saver, &mut writer, progress)?;
    let learnt = source_ok()?;
    let (root, _) = writer.finish(&saver)?;
    let stats = SnapshotStats {
        bytes_read: size,
        bytes_total: size,
        ..saver.counts()
    };
    let packed = saver.finish()?;
    let mut annotations = opts.annotations.clone();
    annotations.extend(learnt);
    annotations.sort();
    let source = SourceKind::Stream(StreamSource {
        size,
        command: opts.command.clone(),
        annotations,
    });
    let path = if opts.command.is_empty() {
        "-".to_string()
    } else {
        opts.command.clone()
    };
    save(
        repo,
        &lock,
        &opts.meta,
        parent,
        path,
        source,
        root,
        stats,
        started,
        vec![],
        (&index, &packed),
    )
}

/// Back up the standard output of `sh -c COMMAND`; the run fails (no snapshot) if the command
/// exits non-zero or is killed by a signal. Its standard error passes through.
pub fn backup_command(
    repo: &Repository,
    command: &str,
    opts: &StreamBackupOptions,
    progress: &dyn Progress,
) -> Result<BackupResult> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(command);
    backup_process(repo, cmd, command, opts, progress)
}

/// Back up the standard output of a prepared command.
pub fn backup_process(
    repo: &Repository,
    cmd: Command,
    label: &str,
    opts: &StreamBackupOptions,
    progress: &dyn Progress,
) -> Result<BackupResult> {
    backup_process_with(repo, cmd, label, opts, progress, &|_| vec![])
}

/// Reads facts (annotations) from the start of a stream.
pub type Learn = dyn Fn(&[u8]) -> Vec<(String, String)>;

/// Bytes of the stream's start handed to `learn` once the command succeeded.
const HEAD: usize = 64 << 10;

/// As [`backup_process`]; `learn` reads facts (annotations) from the stream's first 64 KiB.
pub fn backup_process_with(
    repo: &Repository,
    mut cmd: Command,
    label: &str,
    opts: &StreamBackupOptions,
    progress: &dyn Progress,
    learn: &Learn,
) -> Result<BackupResult> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("cannot run {label:?}"), e))?;
    let mut out = child.stdout.take().expect("stdout is piped");
    let head = std::cell::RefCell::new(Vec::new());
    let mut status = None;
    let mut check = || -> Result<Vec<(String, String)>> {
        let st = child
            .wait()
            .map_err(|e| Error::io(format!("waiting for {label:?}"), e))?;
        status = Some(st);
        if st.success() {
            Ok(learn(&head.borrow()))
        } else {
            Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{label:?} failed ({st}): nothing was saved"),
            ))
        }
    };
    let r = {
        let mut tee = TeeHead {
            r: &mut out,
            head: &head,
        };
        backup_stream(repo, &mut tee, opts, progress, &mut check)
    };
    drop(out);
    if status.is_none() {
        // The backup failed before the command finished: do not leave it running.
        let _ = child.kill();
        let _ = child.wait();
    }
    r
}

/// Keeps a copy of the first [`HEAD`] bytes read through it.
struct TeeHead<'a, R> {
    r: &'a mut R,
    head: &'a std::cell::RefCell<Vec<u8>>,
}

impl<R: Read> Read for TeeHead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.r.read(buf)?;
        let mut h = self.head.borrow_mut();
        if h.len() < HEAD {
            let take = n.min(HEAD - h.len());
            h.extend_from_slice(&buf[..take]);
        }
        Ok(n)
    }
}

/// Chunk everything `reader` yields into `writer`, window by window; returns the byte count.
pub(crate) fn chunk_reader(
    reader: &mut dyn Read,
    chunker: &Chunker,
    saver: &BlobSaver<'_>,
    writer: &mut MapWriter,
    progress: &dyn Progress,
) -> Result<u64> {
    let mut buf = vec![0u8; WINDOW];
    let mut filled = 0usize;
    let mut total = 0u64;
    loop {
        if progress.cancelled() {
            return Err(crate::ops::interrupted());
        }
        let mut eof = false;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Error::io(
                        format!("cannot read the source at byte {}", total + filled as u64),
                        e,
                    ))
                }
            }
        }
        let data = &buf[..filled];
        let mut cuts = chunker.cut_points_parallel(data, 16 << 20);
        if !eof {
            // The last chunk may have been cut short by the window's end: carry it over.
            cuts.pop();
        }
        let mut ranges = Vec::with_capacity(cuts.len());
        let mut start = 0usize;
        for c in cuts {
            ranges.push((start, c));
            start = c;
        }
        let parts = ranges
            .par_iter()
            .map(|&(s, e)| store_chunk(saver, &data[s..e]))
            .collect::<Result<Vec<_>>>()?;
        for p in parts {
            writer.push(saver, p)?;
        }
        saver.check()?;
        progress.item_done(start as u64);
        total += start as u64;
        buf.copy_within(start..filled, 0);
        filled -= start;
        if eof {
            debug_assert_eq!(filled, 0);
            return Ok(total);
        }
    }
}

/// Store one chunk, or record a hole for all-zero bytes.
pub(crate) fn store_chunk(saver: &BlobSaver<'_>, chunk: &[u8]) -> Result<Part> {
    if crate::ops::backup::is_zero(chunk) {
        return Ok(Part::Hole {
            len: chunk.len() as u64,
        });
    }
    let id = saver.save(BlobType::Data, chunk)?;
    Ok(Part::Data {
        id,
        len: chunk.len() as u32,
    })
}
