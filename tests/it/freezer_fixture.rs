//! Freezer backups made the way Freezer makes them, for the legacy-import tests: GNU tar
//! `--create --listed-incremental=SNAR` run in the source directory over `.` with Freezer's
//! flags and its `-z`/`-j`/`-J` compression, piped through `openssl enc -aes-256-cfb -pass
//! file:KEY` when encrypted, written into Freezer's layout:
//!
//! ```text
//! metadata/tar/<host>_<name>/<L0>/<level>_<ts>/metadata        {"engine_name": "tar", ...}
//! data/tar/<host>_<name>/<L0>/<level>_<ts>/engine_metadata     the SNAR after this level
//! data/tar/<host>_<name>/<L0>/<level>_<ts>/data                the stream
//! ```
//!
//! [`Fixture::upload_swift`] puts the same backups into a Swift container the way Freezer's
//! Swift storage does: the stream in `segments/00000000...` pieces of a fixed size, then `data`
//! as a 0-byte Dynamic Large Object manifest (`X-Object-Manifest`) uploaded last.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::util::*;

/// First backup time of the fixtures (epoch seconds); each backup is 1000 s later.
pub const T0: i64 = 1_700_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kdf {
    /// `openssl enc -md md5` (OpenSSL <= 1.0.2's default).
    Md5,
    /// OpenSSL >= 1.1.0's default (no `-md`).
    Sha256,
}

#[derive(Clone, Debug)]
pub struct Spec {
    pub host: &'static str,
    pub name: &'static str,
    /// "gzip", "bzip2" or "xz".
    pub compression: &'static str,
    pub encrypt: Option<Kdf>,
    /// The level of each backup in order (e.g. `[0, 1, 2]`; a 0 starts a new chain).
    pub levels: Vec<u32>,
    /// `TAR_OPTIONS` for GNU tar: Freezer passes no `--format`, so `--format=posix` here stands
    /// for a tar configured or built with the POSIX (pax) default, whose incremental archives
    /// keep directory listings in `GNU.dumpdir` pax records.
    pub tar_options: &'static str,
}

impl Spec {
    pub fn new(compression: &'static str, encrypt: Option<Kdf>) -> Spec {
        Spec {
            host: "web1",
            name: "etc_files",
            compression,
            encrypt,
            levels: vec![0, 1, 2],
            tar_options: "",
        }
    }
}

/// One backup made: where, and a copy of the source as it was.
pub struct Made {
    pub level: u32,
    pub level_zero: i64,
    pub ts: i64,
    /// `cp -a` of the source tree at the time of this backup.
    pub state: PathBuf,
}

pub struct Fixture {
    pub tmp: TempDir,
    /// The local Freezer container (`--container` of `--storage local`).
    pub container: PathBuf,
    pub key: PathBuf,
    pub spec: Spec,
    pub made: Vec<Made>,
}

/// Freezer's tar flag for a compression.
fn tar_flag(c: &str) -> &'static str {
    match c {
        "gzip" => "-z",
        "bzip2" => "-j",
        "xz" => "-J",
        other => panic!("Freezer has no compression {other}"),
    }
}

/// Set whole-second mtimes on entries with a sub-second part (GNU tar's archive format keeps
/// seconds only), children before their directory. Untouched entries already have whole
/// seconds, so their ctime (which tar's incremental mode checks) does not change.
pub fn whole_second_mtimes(root: &Path) {
    let mut paths = walk(root);
    paths.reverse(); // children first
    for rel in paths {
        let p = root.join(&rel);
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.mtime_nsec() != 0 {
            let t = filetime::FileTime::from_unix_time(m.mtime(), 0);
            filetime::set_symlink_file_times(&p, t, t).unwrap();
        }
    }
}

/// The source at level 0.
fn initial_tree(src: &Path) {
    mkdir(src);
    write(&src.join("hosts"), b"127.0.0.1 localhost\n");
    write_random_file(&src.join("big.bin"), 7, 60_000);
    write(&src.join("keep/unchanged.txt"), b"never changes\n");
    write(&src.join("keep/deep/er/file"), random_bytes(3, 3000));
    write(&src.join("gone-later.txt"), b"deleted at level 1\n");
    write(&src.join("olddir/a"), b"a\n");
    write(&src.join("olddir/b"), b"b\n");
    write(&src.join("secret.key"), b"0600 file\n");
    chmod(&src.join("secret.key"), 0o600);
    write(&src.join("run.sh"), b"#!/bin/sh\necho hi\n");
    chmod(&src.join("run.sh"), 0o755);
    mkdir(&src.join("empty-dir"));
    symlink("hosts", &src.join("hosts.link"));
    write(&src.join("empty"), b"");
}

/// What changes before backup number `i` (i >= 1): edits, deletions, additions.
fn mutate(src: &Path, i: usize) {
    match i % 4 {
        1 => {
            write(&src.join("hosts"), b"127.0.0.1 localhost\n10.0.0.1 db\n");
            std::fs::remove_file(src.join("gone-later.txt")).unwrap();
            std::fs::remove_dir_all(src.join("olddir")).unwrap();
            write(&src.join("new/added.txt"), b"added at level 1\n");
            write_random_file(&src.join("new/blob"), 11 + i as u64, 20_000);
        }
        2 => {
            let mut big = std::fs::read(src.join("big.bin")).unwrap();
            big[100..200].fill(0xAB);
            write(&src.join("big.bin"), big);
            std::fs::remove_file(src.join("new/added.txt")).unwrap();
            write(&src.join("olddir/a"), b"olddir is back, different\n");
            chmod(&src.join("run.sh"), 0o700);
            std::fs::remove_file(src.join("hosts.link")).unwrap();
            symlink("big.bin", &src.join("hosts.link"));
        }
        3 => {
            write(&src.join(format!("later-{i}.txt")), format!("file {i}\n"));
            std::fs::remove_file(src.join("empty")).unwrap();
        }
        _ => {
            write(&src.join(format!("cycle-{i}.txt")), format!("cycle {i}\n"));
            write(&src.join("empty"), b"");
        }
    }
}

fn sh(script: &str, envs: &[(&str, &Path)]) {
    let mut c = Command::new("bash");
    c.arg("-c").arg(format!("set -euo pipefail; {script}"));
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().expect("bash");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Fixture {
    /// Make every backup of `spec` into a local container, as Freezer's local storage would.
    pub fn build(spec: Spec) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let container = tmp.path().join("container");
        let src = tmp.path().join("src");
        let key = tmp.path().join("key");
        write(&key, b"s3cret passphrase\nsecond line is ignored\n");
        initial_tree(&src);
        let snar = tmp.path().join("engine_meta");
        let hn = format!("{}_{}", spec.host, spec.name);
        let mut made: Vec<Made> = vec![];
        let mut level_zero = T0;
        for (i, &level) in spec.levels.iter().enumerate() {
            let ts = T0 + 1000 * i as i64;
            if i > 0 {
                mutate(&src, i);
            }
            whole_second_mtimes(&src);
            if level == 0 {
                level_zero = ts;
                let _ = std::fs::remove_file(&snar);
            } else {
                // Freezer downloads the previous backup's engine_metadata as the starting state.
                let prev = made
                    .iter()
                    .rev()
                    .find(|m| m.level_zero == level_zero && m.level == level - 1)
                    .expect("a level below in this chain");
                let prev_snar = container.join(format!(
                    "data/tar/{hn}/{level_zero}/{}_{}/engine_metadata",
                    prev.level, prev.ts
                ));
                std::fs::copy(prev_snar, &snar).unwrap();
            }
            let rel = format!("{hn}/{level_zero}/{level}_{ts}");
            let data_dir = container.join(format!("data/tar/{rel}"));
            let meta_dir = container.join(format!("metadata/tar/{rel}"));
            mkdir(&data_dir);
            mkdir(&meta_dir);
            let encrypt = match spec.encrypt {
                None => String::new(),
                Some(Kdf::Sha256) => " | openssl enc -aes-256-cfb -pass file:\"$KEY\"".into(),
                Some(Kdf::Md5) => " | openssl enc -aes-256-cfb -md md5 -pass file:\"$KEY\"".into(),
            };
            // Freezer's TarCommandBuilder, run in the backup path over ".".
            sh(
                &format!(
                    "cd \"$SRC\" && tar --create {} --warning=none --no-check-device \
                     --one-file-system --preserve-permissions --same-owner --seek \
                     --ignore-failed-read --listed-incremental=\"$SNAR\" .{encrypt} > \"$OUT\"",
                    tar_flag(spec.compression)
                ),
                &[
                    ("SRC", &src),
                    ("SNAR", &snar),
                    ("KEY", &key),
                    ("OUT", &data_dir.join("data")),
                    ("TAR_OPTIONS", Path::new(spec.tar_options)),
                ],
            );
            std::fs::copy(&snar, data_dir.join("engine_metadata")).unwrap();
            write(
                &meta_dir.join("metadata"),
                format!(
                    "{{\"engine_name\": \"tar\", \"compression\": \"{}\", \"encryption\": {}}}",
                    spec.compression,
                    if spec.encrypt.is_some() {
                        "true"
                    } else {
                        "false"
                    }
                ),
            );
            let state = tmp.path().join(format!("state-{i}"));
            cp_a(&src, &state);
            made.push(Made {
                level,
                level_zero,
                ts,
                state,
            });
        }
        Fixture {
            tmp,
            container,
            key,
            spec,
            made,
        }
    }

    /// `rime agent` on the local container with `pass` as `--encrypt-pass-file`, then `extra`.
    pub fn agent_with_pass(&self, pass: &Path, extra: &[&str]) -> Out {
        let mut args = vec![
            os("agent"),
            os("--storage"),
            os("local"),
            os("--container"),
            os(&self.container),
            os("--encrypt-pass-file"),
            os(pass),
        ];
        args.extend(extra.iter().map(os));
        rime_raw(args, &[])
    }

    /// `rime agent` on the local container with the fixture's key, then `extra`.
    pub fn agent(&self, extra: &[&str]) -> Out {
        self.agent_with_pass(&self.key, extra)
    }

    /// [`Fixture::agent`] as the job that made the backups: its host and backup name.
    pub fn agent_as_its_job(&self, extra: &[&str]) -> Out {
        let mut args = vec![
            "--hostname",
            self.spec.host,
            "--backup-name",
            self.spec.name,
        ];
        args.extend(extra);
        self.agent(&args)
    }

    /// The arguments of `rime import-freezer --json --from <from>` into `repo`, with
    /// `--pass-file` and the fixture's key when its backups are encrypted.
    pub fn import_args(&self, repo: &Repo, from: impl AsRef<OsStr>) -> Vec<OsString> {
        let mut args = repo.args(&[os("import-freezer"), os("--json"), os("--from"), os(from)]);
        if self.spec.encrypt.is_some() {
            args.push(os("--pass-file"));
            args.push(os(&self.key));
        }
        args
    }

    pub fn hn(&self) -> String {
        format!("{}_{}", self.spec.host, self.spec.name)
    }

    /// Path of a backup's data object in the local container.
    pub fn data(&self, i: usize) -> PathBuf {
        let m = &self.made[i];
        self.container.join(format!(
            "data/tar/{}/{}/{}_{}/data",
            self.hn(),
            m.level_zero,
            m.level,
            m.ts
        ))
    }

    /// Upload the container to Swift as Freezer's Swift storage lays it out, with segments of
    /// `segment` bytes. `env` holds ST_AUTH, ST_USER, ST_KEY (v1 auth).
    pub fn upload_swift(&self, env: &[(String, String)], container: &str, segment: usize) {
        let (url, token) = swift_v1_auth(env);
        let put = |obj: &str, body: &[u8], extra: &[String]| {
            let tmpf = self.tmp.path().join("upload.part");
            std::fs::write(&tmpf, body).unwrap();
            let mut c = Command::new("curl");
            c.args(["-sS", "-f", "-X", "PUT", "-H"])
                .arg(format!("X-Auth-Token: {token}"));
            for h in extra {
                c.arg("-H").arg(h);
            }
            let target = if obj.is_empty() {
                format!("{url}/{container}")
            } else {
                format!("{url}/{container}/{obj}")
            };
            let st = c
                .arg("--data-binary")
                .arg(format!("@{}", tmpf.display()))
                .arg(target)
                .status()
                .unwrap();
            assert!(st.success(), "PUT {obj} failed");
        };
        put("", b"", &[]);
        for i in 0..self.made.len() {
            let m = &self.made[i];
            let rel = format!("{}/{}/{}_{}", self.hn(), m.level_zero, m.level, m.ts);
            let data = std::fs::read(self.data(i)).unwrap();
            for (n, piece) in data.chunks(segment).enumerate() {
                put(&format!("data/tar/{rel}/segments/{n:08}"), piece, &[]);
            }
            let em = std::fs::read(
                self.container
                    .join(format!("data/tar/{rel}/engine_metadata")),
            )
            .unwrap();
            put(&format!("data/tar/{rel}/engine_metadata"), &em, &[]);
            put(
                &format!("data/tar/{rel}/data"),
                b"",
                &[format!(
                    "X-Object-Manifest: {container}/data/tar/{rel}/segments"
                )],
            );
            let meta =
                std::fs::read(self.container.join(format!("metadata/tar/{rel}/metadata"))).unwrap();
            put(&format!("metadata/tar/{rel}/metadata"), &meta, &[]);
        }
    }
}

/// Swift v1 authentication (curl, as Freezer's tests talk to Swift directly) with the ST_AUTH,
/// ST_USER and ST_KEY of `env`: the storage URL and the token.
pub fn swift_v1_auth(env: &[(String, String)]) -> (String, String) {
    let get = |k: &str| env.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let out = Command::new("curl")
        .args(["-sS", "-f", "-D", "-", "-o", "/dev/null"])
        .arg("-H")
        .arg(format!("X-Auth-User: {}", get("ST_USER")))
        .arg("-H")
        .arg(format!("X-Auth-Key: {}", get("ST_KEY")))
        .arg(get("ST_AUTH"))
        .output()
        .unwrap();
    assert!(out.status.success(), "swift auth failed");
    let head = String::from_utf8_lossy(&out.stdout).to_string();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.eq_ignore_ascii_case(name)).then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {name} in {head}"))
    };
    (header("X-Storage-Url"), header("X-Auth-Token"))
}
