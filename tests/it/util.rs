//! Shared helpers: running the real `rime` binary, a repository fixture, building source
//! trees, and comparing a source tree with its restore (content and metadata).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use tempfile::TempDir;

pub const PASSWORD: &str = "correct horse battery staple";

pub fn rime_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rime")
}

/// What a `rime` run produced.
#[derive(Debug)]
pub struct Out {
    /// Exit code, or -1 when killed by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub raw_stdout: Vec<u8>,
}

impl Out {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    #[track_caller]
    pub fn ok(&self) -> &Out {
        assert_eq!(
            self.code, 0,
            "rime failed (exit {}):\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Out {
        assert_eq!(
            self.code, code,
            "unexpected exit code:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn failed(&self) -> &Out {
        assert!(
            self.code != 0,
            "rime unexpectedly succeeded:\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Assert a failure with exactly one error line on stderr ("rime: error: ...") that contains
    /// every needle (case-insensitive).
    #[track_caller]
    pub fn error_names(&self, needles: &[&str]) -> &Out {
        self.failed();
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("rime: error:"))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected exactly one error line, stderr:\n{}",
            self.stderr
        );
        let l = lines[0].to_lowercase();
        for n in needles {
            assert!(
                l.contains(&n.to_lowercase()),
                "error line does not mention {n:?}:\n{}",
                self.stderr
            );
        }
        self
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Run `rime` with exactly these arguments and environment additions (the `RIME_*` variables of
/// the test process are removed first; stdin is not a terminal).
pub fn rime_raw<I, S>(args: I, envs: &[(&str, &OsStr)]) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(rime_bin());
    c.args(args)
        .env_remove("RIME_REPO")
        .env_remove("RIME_PASSWORD")
        .env_remove("RIME_PASSWORD_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        c.env(k, v);
    }
    let o = c.output().expect("cannot run rime");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        raw_stdout: o.stdout,
    }
}

pub fn os<S: AsRef<OsStr>>(s: S) -> OsString {
    s.as_ref().to_os_string()
}

/// A repository in its own temporary directory, with a password file.
pub struct Repo {
    pub tmp: TempDir,
    pub path: PathBuf,
    pub pw_file: PathBuf,
}

impl Repo {
    /// A new repository with the cheap test KDF.
    pub fn new() -> Repo {
        Repo::with_init_args(&["--insecure-fast-kdf"])
    }

    pub fn with_init_args(init: &[&str]) -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("repo");
        Repo::at(tmp, path, init)
    }

    /// A repository at `path` (which may lie outside `tmp`), initialised with `init` arguments.
    pub fn at(tmp: TempDir, path: PathBuf, init: &[&str]) -> Repo {
        let pw_file = tmp.path().join("password");
        fs::write(&pw_file, format!("{PASSWORD}\n")).unwrap();
        let r = Repo { tmp, path, pw_file };
        let mut args = vec!["init"];
        args.extend_from_slice(init);
        r.run(&args).ok();
        r
    }

    /// A scratch directory next to the repository (removed with it).
    pub fn dir(&self, name: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }

    /// A path next to the repository that does not exist yet (e.g. a restore target).
    pub fn fresh(&self, name: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        assert!(!p.exists());
        p
    }

    /// `--repo R --password-file P ARGS...`: the arguments of [`Repo::run`].
    pub fn args<S: AsRef<OsStr>>(&self, args: &[S]) -> Vec<OsString> {
        let mut all: Vec<OsString> = vec![
            os("--repo"),
            os(&self.path),
            os("--password-file"),
            os(&self.pw_file),
        ];
        all.extend(args.iter().map(os));
        all
    }

    /// `rime --repo R --password-file P ARGS...`
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        self.run_with_password_and_env(args, &[])
    }

    /// [`Repo::run`] (with the password file, unlike [`Repo::run_env`]) with environment
    /// additions, such as a `PATH` with stand-in commands.
    pub fn run_with_password_and_env<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        envs: &[(&str, &OsStr)],
    ) -> Out {
        rime_raw(self.args(args), envs)
    }

    /// Run without `--password-file`, with extra environment.
    pub fn run_env<S: AsRef<OsStr>>(&self, args: &[S], envs: &[(&str, &OsStr)]) -> Out {
        let mut all: Vec<OsString> = vec![os("--repo"), os(&self.path)];
        all.extend(args.iter().map(os));
        rime_raw(all, envs)
    }

    /// `backup --json PATHS EXTRA...`, asserting success; returns the JSON.
    #[track_caller]
    pub fn backup<P: AsRef<OsStr>>(&self, paths: &[P], extra: &[&str]) -> Value {
        let mut args: Vec<OsString> = vec![os("backup"), os("--json")];
        args.extend(extra.iter().map(os));
        args.extend(paths.iter().map(os));
        let out = self.run(&args);
        out.ok();
        let v = out.json();
        assert!(v["id"].is_string(), "backup --json has no id: {v}");
        v
    }

    /// Restore a snapshot into `target`, asserting success.
    #[track_caller]
    pub fn restore(&self, snapshot: &str, target: &Path, extra: &[&str]) -> Out {
        let mut args: Vec<OsString> = vec![os("restore"), os(snapshot), os("--target"), os(target)];
        args.extend(extra.iter().map(os));
        let out = self.run(&args);
        out.ok();
        out
    }

    /// `snapshots --json`, oldest first.
    #[track_caller]
    pub fn snapshots(&self) -> Vec<Value> {
        let out = self.run(&["snapshots", "--json"]);
        out.ok();
        out.json()
            .as_array()
            .expect("snapshots --json is an array")
            .clone()
    }

    /// The ids of `snapshots --json`, oldest first.
    #[track_caller]
    pub fn snapshot_ids(&self) -> Vec<String> {
        snapshot_ids_listed(&self.run(&["snapshots", "--json"]))
    }

    /// Every pack file: (pack id, path).
    pub fn packs(&self) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        for d in fs::read_dir(self.path.join("data")).unwrap() {
            let d = d.unwrap();
            if !d.file_type().unwrap().is_dir() {
                continue; // a pack being written (or left by a killed run): .tmp-pending-*
            }
            for f in fs::read_dir(d.path()).unwrap() {
                let f = f.unwrap();
                let name = f.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') {
                    out.push((name, f.path()));
                }
            }
        }
        out.sort();
        out
    }

    /// Files of a repository sub-directory ("snapshots", "index", "keys"): (name, path).
    pub fn objects(&self, dir: &str) -> Vec<(String, PathBuf)> {
        let mut out: Vec<_> = fs::read_dir(self.path.join(dir))
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .filter(|(n, _)| !n.starts_with('.'))
            .collect();
        out.sort();
        out
    }
}

/// `prune` deleting every unused byte in one run (no grace period, no waste tolerated, so it
/// repacks): the prune the crash tests interrupt.
pub const PRUNE_ALL_UNUSED_NOW: [&str; 5] = ["prune", "--grace-minutes", "0", "--max-unused", "0%"];

/// The snapshot ids that a `snapshots --json` run printed, oldest first; asserts that it
/// succeeded.
#[track_caller]
pub fn snapshot_ids_listed(listing: &Out) -> Vec<String> {
    listing.ok();
    listing
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Source trees

pub fn is_root() -> bool {
    // /proc/self is owned by the effective uid.
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Deterministic pseudo-random bytes (SplitMix64), fast enough for hundreds of MB.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    fill_random(seed, &mut out);
    out
}

pub fn fill_random(seed: u64, buf: &mut [u8]) {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        c.copy_from_slice(&next().to_le_bytes());
    }
    let rest = chunks.into_remainder();
    let last = next().to_le_bytes();
    let n = rest.len();
    rest.copy_from_slice(&last[..n]);
}

/// Write a file of `len` random bytes in pieces (no big allocation).
pub fn write_random_file(path: &Path, seed: u64, len: usize) {
    let mut f = fs::File::create(path).unwrap();
    let mut buf = vec![0u8; 4 << 20];
    let mut left = len;
    let mut i = 0u64;
    while left > 0 {
        let n = left.min(buf.len());
        fill_random(seed.wrapping_mul(1_000_003).wrapping_add(i), &mut buf[..n]);
        f.write_all(&buf[..n]).unwrap();
        left -= n;
        i += 1;
    }
}

pub fn write(path: &Path, data: impl AsRef<[u8]>) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, data).unwrap();
}

pub fn mkdir(path: &Path) {
    fs::create_dir_all(path).unwrap();
}

pub fn symlink(target: impl AsRef<Path>, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Set mtime (and atime) without following symlinks.
pub fn set_mtime(path: &Path, secs: i64, nanos: u32) {
    let t = filetime::FileTime::from_unix_time(secs, nanos);
    filetime::set_symlink_file_times(path, t, t).unwrap();
}

pub fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(st.success(), "mkfifo {} failed", path.display());
}

/// Make a character device (root only): `mknod PATH c MAJOR MINOR`.
pub fn mknod_char(path: &Path, major: u32, minor: u32) -> bool {
    Command::new("mknod")
        .arg(path)
        .arg("c")
        .arg(major.to_string())
        .arg(minor.to_string())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// lchown (root only).
pub fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
}

/// chown -R (not following symlinks) every entry under and including `root`.
pub fn chown_tree(root: &Path, uid: u32, gid: u32) {
    for p in walk(root) {
        chown(&root.join(&p), uid, gid);
    }
}

/// A path built from raw bytes.
pub fn bytes_path(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}

/// `cp -a` (preserves mode, times, links, xattrs).
pub fn cp_a(src: &Path, dst: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dst)
        .status()
        .expect("cp");
    assert!(
        st.success(),
        "cp -a {} {} failed",
        src.display(),
        dst.display()
    );
}

pub fn run_cmd(cmd: &str, args: &[&OsStr]) -> std::process::Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

/// `rime dump latest --format tar-incremental` of `repo` into `out_dir`, then `extra` (such as
/// `--compressed`): the tar levels as Freezer's GNU tar archives, `level-<n>.tar[.<ext>]`.
pub fn dump_tar_levels(repo: &Path, pass: &Path, out_dir: &Path, extra: &[&str]) {
    let mut args = vec![
        os("--repo"),
        os(repo),
        os("--password-file"),
        os(pass),
        os("dump"),
        os("latest"),
        os("--format"),
        os("tar-incremental"),
    ];
    args.extend(extra.iter().map(os));
    args.extend([os("--output-dir"), os(out_dir)]);
    rime_raw(args, &[]).ok();
}

/// Real GNU tar extracts one dumped level into `dir` as an incremental restore does
/// (`--listed-incremental=/dev/null`: the level's dumpdirs delete what was gone at its time);
/// panics with tar's stderr when tar fails.
#[track_caller]
pub fn gnu_tar_extract_level(archive: &Path, dir: &Path) {
    let o = run_cmd(
        "tar",
        &[
            OsStr::new("--extract"),
            OsStr::new("--listed-incremental=/dev/null"),
            OsStr::new("-f"),
            archive.as_os_str(),
            OsStr::new("-C"),
            dir.as_os_str(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

// ---------------------------------------------------------------------------------------------
// Comparing trees

/// Relative paths of everything under `root` (not following symlinks), the root itself as "".
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![PathBuf::new()];
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let full = root.join(&rel);
        let m = fs::symlink_metadata(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
        if m.is_dir() {
            let mut names: Vec<OsString> = fs::read_dir(&full)
                .unwrap_or_else(|e| panic!("{}: {e}", full.display()))
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for n in names {
                let r = rel.join(&n);
                out.push(r.clone());
                stack.push(r);
            }
        }
    }
    out.sort();
    out
}

pub fn user_xattrs(path: &Path) -> BTreeMap<OsString, Vec<u8>> {
    let mut out = BTreeMap::new();
    if let Ok(names) = xattr::list(path) {
        for n in names {
            if n.as_bytes().starts_with(b"user.") {
                if let Ok(Some(v)) = xattr::get(path, &n) {
                    out.insert(n, v);
                }
            }
        }
    }
    out
}

fn kind(m: &fs::Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_dir() {
        "dir"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_file() {
        "file"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_char_device() {
        "chardev"
    } else if t.is_block_device() {
        "blockdev"
    } else if t.is_socket() {
        "socket"
    } else {
        "unknown"
    }
}

/// Data extents of a file via SEEK_DATA / SEEK_HOLE (the whole file if unsupported).
#[allow(unsafe_code)]
pub fn data_extents(path: &Path) -> Vec<(u64, u64)> {
    use std::os::unix::io::AsRawFd;
    let f = fs::File::open(path).unwrap();
    let size = f.metadata().unwrap().len() as i64;
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    let mut pos: i64 = 0;
    while pos < size {
        // SAFETY: lseek on an open descriptor.
        let s = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if s < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break;
            }
            return vec![(0, size as u64)];
        }
        // SAFETY: as above.
        let e = unsafe { libc::lseek(fd, s, libc::SEEK_HOLE) };
        if e < 0 {
            return vec![(0, size as u64)];
        }
        let e = e.min(size);
        if e > s {
            out.push((s as u64, e as u64));
        }
        pos = e.max(s + 1);
    }
    out
}

/// Compare two files' bytes, reading only where either has data (holes read as zeros), so big
/// sparse files compare quickly. Returns the first differing offset.
pub fn first_difference(a: &Path, b: &Path) -> Option<u64> {
    let la = fs::metadata(a).unwrap().len();
    let lb = fs::metadata(b).unwrap().len();
    if la != lb {
        return Some(la.min(lb));
    }
    let mut ranges: Vec<(u64, u64)> = data_extents(a);
    ranges.extend(data_extents(b));
    ranges.sort();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let mut fa = fs::File::open(a).unwrap();
    let mut fb = fs::File::open(b).unwrap();
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    for (s, e) in merged {
        fa.seek(SeekFrom::Start(s)).unwrap();
        fb.seek(SeekFrom::Start(s)).unwrap();
        let mut pos = s;
        while pos < e {
            let n = ((e - pos) as usize).min(ba.len());
            fa.read_exact(&mut ba[..n]).unwrap();
            fb.read_exact(&mut bb[..n]).unwrap();
            if ba[..n] != bb[..n] {
                let i = ba[..n]
                    .iter()
                    .zip(&bb[..n])
                    .position(|(x, y)| x != y)
                    .unwrap();
                return Some(pos + i as u64);
            }
            pos += n as u64;
        }
    }
    None
}

#[derive(Clone, Copy)]
pub struct CompareOpts {
    /// Compare the metadata of the two roots too (restore applies it when it creates the target).
    pub root_meta: bool,
    /// Compare uid/gid.
    pub owner: bool,
}

impl Default for CompareOpts {
    fn default() -> Self {
        CompareOpts {
            root_meta: true,
            owner: true,
        }
    }
}

/// Compare two trees entry by entry; panics with every difference found.
#[track_caller]
pub fn compare_trees(src: &Path, restored: &Path) {
    compare_trees_with(src, restored, CompareOpts::default())
}

#[track_caller]
pub fn compare_trees_with(src: &Path, restored: &Path, o: CompareOpts) {
    let diffs = tree_differences(src, restored, o);
    assert!(
        diffs.is_empty(),
        "restored tree {} differs from {}:\n  {}",
        restored.display(),
        src.display(),
        diffs.join("\n  ")
    );
}

/// Every difference between two trees, as readable lines.
pub fn tree_differences(src: &Path, restored: &Path, o: CompareOpts) -> Vec<String> {
    let mut diffs = Vec::new();
    let a_paths = walk(src);
    let b_paths = walk(restored);
    let a_set: BTreeSet<_> = a_paths.iter().cloned().collect();
    let b_set: BTreeSet<_> = b_paths.iter().cloned().collect();
    for p in a_set.difference(&b_set) {
        diffs.push(format!("missing in restore: {p:?}"));
    }
    for p in b_set.difference(&a_set) {
        diffs.push(format!("extra in restore: {p:?}"));
    }
    let mut groups_a: HashMap<(u64, u64), BTreeSet<PathBuf>> = HashMap::new();
    let mut groups_b: HashMap<(u64, u64), BTreeSet<PathBuf>> = HashMap::new();
    for rel in a_set.intersection(&b_set) {
        let pa = src.join(rel);
        let pb = restored.join(rel);
        let ma = fs::symlink_metadata(&pa).unwrap();
        let mb = fs::symlink_metadata(&pb).unwrap();
        let d =
            |what: &str, x: String, y: String| format!("{rel:?}: {what}: source {x}, restored {y}");
        if kind(&ma) != kind(&mb) {
            diffs.push(d("kind", kind(&ma).into(), kind(&mb).into()));
            continue;
        }
        let is_root = rel.as_os_str().is_empty();
        if is_root && !o.root_meta {
            continue;
        }
        let t = ma.file_type();
        if !t.is_symlink() && ma.mode() & 0o7777 != mb.mode() & 0o7777 {
            diffs.push(d(
                "mode",
                format!("{:o}", ma.mode() & 0o7777),
                format!("{:o}", mb.mode() & 0o7777),
            ));
        }
        if (ma.mtime(), ma.mtime_nsec()) != (mb.mtime(), mb.mtime_nsec()) {
            diffs.push(d(
                "mtime",
                format!("{}.{:09}", ma.mtime(), ma.mtime_nsec()),
                format!("{}.{:09}", mb.mtime(), mb.mtime_nsec()),
            ));
        }
        if o.owner && (ma.uid(), ma.gid()) != (mb.uid(), mb.gid()) {
            diffs.push(d(
                "owner",
                format!("{}:{}", ma.uid(), ma.gid()),
                format!("{}:{}", mb.uid(), mb.gid()),
            ));
        }
        let xa = user_xattrs(&pa);
        let xb = user_xattrs(&pb);
        if xa != xb {
            diffs.push(d("xattrs", format!("{xa:?}"), format!("{xb:?}")));
        }
        if t.is_symlink() {
            let ta = fs::read_link(&pa).unwrap();
            let tb = fs::read_link(&pb).unwrap();
            if ta != tb {
                diffs.push(d("symlink target", format!("{ta:?}"), format!("{tb:?}")));
            }
        } else if t.is_file() {
            if ma.len() != mb.len() {
                diffs.push(d("size", ma.len().to_string(), mb.len().to_string()));
            } else if let Some(off) = first_difference(&pa, &pb) {
                diffs.push(d(
                    "content",
                    format!("differs at byte {off}"),
                    String::new(),
                ));
            }
            if ma.nlink() > 1 || mb.nlink() > 1 {
                groups_a
                    .entry((ma.dev(), ma.ino()))
                    .or_default()
                    .insert(rel.clone());
                groups_b
                    .entry((mb.dev(), mb.ino()))
                    .or_default()
                    .insert(rel.clone());
            }
        } else if (t.is_char_device() || t.is_block_device()) && ma.rdev() != mb.rdev() {
            diffs.push(d(
                "device number",
                ma.rdev().to_string(),
                mb.rdev().to_string(),
            ));
        }
    }
    let mut ga: Vec<_> = groups_a.into_values().filter(|g| g.len() > 1).collect();
    let mut gb: Vec<_> = groups_b.into_values().filter(|g| g.len() > 1).collect();
    ga.sort();
    gb.sort();
    if ga != gb {
        diffs.push(format!(
            "hard-link groups differ: source {ga:?}, restored {gb:?}"
        ));
    }
    diffs
}

/// A full copy of a tree with `cp -a` (to keep a snapshot's expected state).
pub fn save_copy(src: &Path, dst: &Path) {
    cp_a(src, dst);
}

pub fn raw_name(p: &Path) -> Vec<u8> {
    p.file_name().unwrap().as_bytes().to_vec()
}

pub fn osstring(bytes: &[u8]) -> OsString {
    OsString::from_vec(bytes.to_vec())
}

/// A tmpfs mount, unmounted on drop.
pub struct Mount(pub PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Mount a tmpfs of `size` (e.g. "3m") at `at`, or print why not and return `None`.
pub fn mount_tmpfs(at: &Path, size: &str) -> Option<Mount> {
    if !is_root() {
        eprintln!("skipping: not root, cannot mount a tmpfs");
        return None;
    }
    let o = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .output();
    match o {
        Ok(o) if o.status.success() => Some(Mount(at.to_path_buf())),
        Ok(o) => {
            eprintln!(
                "skipping: mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("skipping: cannot run mount: {e}");
            None
        }
    }
}

/// The comparison itself must notice each kind of difference (or every round-trip test could
/// pass vacuously).
#[test]
fn compare_trees_notices_every_kind_of_difference() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    write(&base.join("f"), b"content");
    write(&base.join("d/g"), b"g");
    symlink("f", &base.join("l"));
    write(&base.join("h1"), b"linked");
    fs::hard_link(base.join("h1"), base.join("d/h2")).unwrap();
    xattr::set(base.join("f"), "user.a", b"1").unwrap();
    set_mtime(&base.join("f"), 1_000_000_000, 1);
    set_mtime(&base.join("d"), 1_000_000_000, 2);
    let mut n = 0;
    let mut variant = |name: &str, change: &dyn Fn(&Path), expect: &str| {
        n += 1;
        let v = tmp.path().join(format!("v{n}"));
        cp_a(&base, &v);
        assert!(
            tree_differences(&base, &v, CompareOpts::default()).is_empty(),
            "cp -a copy differs"
        );
        change(&v);
        let d = tree_differences(&base, &v, CompareOpts::default());
        assert!(
            d.iter().any(|l| l.contains(expect)),
            "{name}: expected a {expect:?} difference, got {d:?}"
        );
    };
    let keep = |p: &Path, f: &dyn Fn()| {
        let m = fs::symlink_metadata(p).unwrap();
        f();
        let t = filetime::FileTime::from_last_modification_time(&m);
        filetime::set_symlink_file_times(p, t, t).unwrap();
    };
    variant(
        "content",
        &|v| {
            keep(&v.join("f"), &|| {
                fs::write(v.join("f"), b"CONTENT").unwrap()
            })
        },
        "content",
    );
    variant(
        "size",
        &|v| {
            keep(&v.join("f"), &|| {
                fs::write(v.join("f"), b"longer content").unwrap()
            })
        },
        "size",
    );
    variant("mode", &|v| chmod(&v.join("f"), 0o600), "mode");
    variant(
        "mtime ns",
        &|v| set_mtime(&v.join("f"), 1_000_000_000, 2),
        "mtime",
    );
    variant(
        "dir mtime",
        &|v| set_mtime(&v.join("d"), 1_000_000_000, 3),
        "mtime",
    );
    variant(
        "xattr",
        &|v| xattr::set(v.join("f"), "user.a", b"2").unwrap(),
        "xattrs",
    );
    variant(
        "missing",
        &|v| keep(&v.join("d"), &|| fs::remove_file(v.join("d/g")).unwrap()),
        "missing",
    );
    variant(
        "extra",
        &|v| keep(&v.join("d"), &|| fs::write(v.join("d/new"), b"").unwrap()),
        "extra",
    );
    variant(
        "symlink target",
        &|v| {
            fs::remove_file(v.join("l")).unwrap();
            symlink("g", &v.join("l"));
        },
        "symlink target",
    );
    variant(
        "kind",
        &|v| {
            keep(v, &|| {
                fs::remove_file(v.join("l")).unwrap();
                fs::write(v.join("l"), b"").unwrap();
            })
        },
        "kind",
    );
    variant(
        "hard links",
        &|v| {
            keep(&v.join("d"), &|| {
                let m = fs::symlink_metadata(v.join("d/h2")).unwrap();
                fs::remove_file(v.join("d/h2")).unwrap();
                fs::write(v.join("d/h2"), b"linked").unwrap();
                let t = filetime::FileTime::from_last_modification_time(&m);
                filetime::set_file_times(v.join("d/h2"), t, t).unwrap();
            })
        },
        "hard-link groups",
    );
    if is_root() {
        variant("owner", &|v| chown(&v.join("f"), 1, 1), "owner");
    }
}

/// The shared SFTP test server (tests/services/sshd.sh), as described by the env lines
/// tests/run.sh exports; `None` (after a "skipped" line) when they are not set.
pub struct SshServer {
    pub host: String,
    pub port: String,
    pub user: String,
    pub key: PathBuf,
    pub config: PathBuf,
    pub state: PathBuf,
}

impl SshServer {
    pub fn from_env() -> Option<SshServer> {
        let v = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
        match (
            v("RIME_TEST_SSH_HOST"),
            v("RIME_TEST_SSH_PORT"),
            v("RIME_TEST_SSH_USER"),
            v("RIME_TEST_SSH_KEY"),
            v("RIME_TEST_SSH_CONFIG"),
            v("RIME_TEST_SSH_STATE"),
        ) {
            (Some(host), Some(port), Some(user), Some(key), Some(config), Some(state)) => {
                Some(SshServer {
                    host,
                    port,
                    user,
                    key: key.into(),
                    config: config.into(),
                    state: state.into(),
                })
            }
            _ => {
                eprintln!("skipped: RIME_TEST_SSH_* not set (run tests/run.sh, which starts sshd)");
                None
            }
        }
    }

    /// `sftp://user@host:port` (append an absolute path).
    pub fn url_base(&self) -> String {
        format!("sftp://{}@{}:{}", self.user, self.host, self.port)
    }
}

/// A Freezer agent job on some storage: a level 0 of `src` (holding `a`), then, after `a` is
/// deleted and `b` written, a level 1, then a restore into `out` that must hold `b` and not `a`.
/// `run` is `rime agent` with the storage's options; `after_level0` looks at the storage.
pub fn agent_two_levels_roundtrip(
    run: &dyn Fn(&[&OsStr]) -> Out,
    src: &Path,
    out: &Path,
    after_level0: &dyn Fn(),
) {
    write(&src.join("a"), "level zero\n");
    run(&[OsStr::new("-F"), src.as_os_str()]).ok();
    after_level0();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::remove_file(src.join("a")).unwrap();
    write(&src.join("b"), "level one\n");
    run(&[OsStr::new("-F"), src.as_os_str()]).ok();
    run(&[
        OsStr::new("--action"),
        OsStr::new("restore"),
        OsStr::new("--restore-abs-path"),
        out.as_os_str(),
    ])
    .ok();
    assert!(!out.join("a").exists(), "deleted at level 1");
    assert_eq!(
        std::fs::read_to_string(out.join("b")).unwrap(),
        "level one\n"
    );
}

/// The object files (`*.data`) of the first test Swift cluster under `state` (the directory
/// `tests/services/swift.sh` started it in), with the Swift metadata of each (its xattr, which
/// holds the object's path). Other tests write and delete objects meanwhile: entries that
/// vanish under the walk are skipped.
pub fn swift_object_files(state: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = vec![];
    let mut stack = vec![PathBuf::from(state).join("c1/srv")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "data") {
                if let Some(meta) = xattr::get(&p, "user.swift.metadata").ok().flatten() {
                    out.push((p, meta));
                }
            }
        }
    }
    out
}
