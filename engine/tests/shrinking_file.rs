//! A large file that shrinks while it is backed up (log rotation with `copytruncate`) is stored
//! as far as it was read, with a warning, and restores to exactly those bytes. (When large files
//! were mapped instead of read in windows, this killed the process with SIGBUS.)
//!
//! The truncation happens from the progress callback after the first window is stored, so it
//! lands between two reads every time, without depending on timing.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rime_engine::ops::backup::{backup, BackupOptions};
use rime_engine::ops::restore::{restore, RestoreOptions};
use rime_engine::ops::{NoProgress, Progress};

mod common;
use common::{content, repo, restore_options};

const MIB: usize = 1 << 20;

/// Truncates `path` to `to` bytes the first time part of a large file is reported stored.
struct Truncator<'a> {
    path: &'a Path,
    to: u64,
    done: AtomicBool,
    warnings: Mutex<Vec<String>>,
}

impl Progress for Truncator<'_> {
    fn bytes_done(&self, _bytes: u64) {
        if !self.done.swap(true, Ordering::SeqCst) {
            let f = fs::OpenOptions::new().write(true).open(self.path).unwrap();
            f.set_len(self.to).unwrap();
        }
    }
    fn warning(&self, message: &str) {
        self.warnings.lock().unwrap().push(message.to_string());
    }
}

#[test]
fn a_file_truncated_during_its_backup_is_stored_as_read() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    let file = src.join("app.log");
    let original = content(1, 64 * MIB);
    fs::write(&file, &original).unwrap();

    let repo = repo(&tmp.path().join("repo"));
    let progress = Truncator {
        path: &file,
        to: (20 * MIB) as u64,
        done: AtomicBool::new(false),
        warnings: Mutex::new(Vec::new()),
    };
    let r = backup(&repo, &BackupOptions::new(vec![src.clone()]), &progress).unwrap();
    assert!(
        progress.done.load(Ordering::SeqCst),
        "the file was not read in windows"
    );
    let warnings = progress.warnings.lock().unwrap().clone();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("changed while being read")),
        "no warning: {warnings:?}"
    );

    let out = tmp.path().join("out");
    let opts = RestoreOptions {
        verify: true,
        ..restore_options(&out)
    };
    restore(&repo, &r.id, &opts, &NoProgress).unwrap();
    let restored = fs::read(out.join("app.log")).unwrap();
    // The second window is read while the first is stored, so the truncation can come before,
    // during or after that read: what was read (20 to 32 MiB) is stored, and nothing else.
    assert!(
        (20 * MIB..=32 * MIB).contains(&restored.len()),
        "restored {} bytes",
        restored.len()
    );
    assert!(
        restored == original[..restored.len()],
        "restored bytes differ from what was read"
    );
}
