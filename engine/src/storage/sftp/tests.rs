//! The conformance suite and fault tests against a real OpenSSH sshd (tests/services/sshd.sh);
//! skipped with a printed reason when its environment is not set.

use std::path::PathBuf;
use std::sync::Arc;

use super::{SftpOptions, SftpStorage};
use crate::error::ErrorKind;
use crate::storage::conformance::{run_all, run_concurrent};
use crate::storage::{FileKind, Storage};

struct Env {
    host: String,
    port: String,
    user: String,
    key: PathBuf,
    config: PathBuf,
}

fn env() -> Option<Env> {
    let v = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
    match (
        v("RIME_TEST_SSH_HOST"),
        v("RIME_TEST_SSH_PORT"),
        v("RIME_TEST_SSH_USER"),
        v("RIME_TEST_SSH_KEY"),
        v("RIME_TEST_SSH_CONFIG"),
    ) {
        (Some(host), Some(port), Some(user), Some(key), Some(config)) => Some(Env {
            host,
            port,
            user,
            key: key.into(),
            config: config.into(),
        }),
        _ => {
            eprintln!("skipped: RIME_TEST_SSH_* not set (start tests/services/sshd.sh or run tests/run.sh)");
            None
        }
    }
}

fn storage(e: &Env, dir: &std::path::Path) -> SftpStorage {
    let url = format!("sftp://{}@{}:{}{}", e.user, e.host, e.port, dir.display());
    SftpStorage::open(
        &url,
        &SftpOptions {
            config: Some(e.config.clone()),
            key: Some(e.key.clone()),
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn sftp_conforms() {
    let Some(e) = env() else { return };
    let d = tempfile::tempdir().unwrap();
    let s = storage(&e, &d.path().join("repo"));
    run_all(&s);
    let d2 = tempfile::tempdir().unwrap();
    run_concurrent(Arc::new(storage(&e, &d2.path().join("repo"))));
    // The server is on this machine: no temporary files were left behind.
    assert_no_temporaries(&[d.path(), d2.path()]);
}

#[test]
fn sftp_home_relative_path_and_missing_object_names_host() {
    let Some(e) = env() else { return };
    // `~/dir` is relative to the login directory (root's home here).
    let rel = format!(".rime-test-{:016x}", rand::random::<u64>());
    let url = format!("sftp://{}@{}:{}/~/{rel}", e.user, e.host, e.port);
    let s = SftpStorage::open(
        &url,
        &SftpOptions {
            config: Some(e.config.clone()),
            key: Some(e.key.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    s.create().unwrap();
    s.write(FileKind::Config, "config", b"cfg").unwrap();
    // The login directory as sshd sees it: the user's home in /etc/passwd (not $HOME).
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let home = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 5 && f[0] == e.user)
        .map(|f| f[5].to_string())
        .expect("the login user is in /etc/passwd");
    let on_disk = PathBuf::from(&home).join(&rel);
    assert_eq!(std::fs::read(on_disk.join("config")).unwrap(), b"cfg");
    let err = s.read(FileKind::Snapshot, "abcd").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MissingObject);
    let m = err.to_string();
    assert!(m.contains("snapshots/abcd") && m.contains(&e.host), "{m}");
    std::fs::remove_dir_all(on_disk).unwrap();
}

/// A full disk on the server is `NoSpace` (SFTP v3 reports it as a plain failure; the storage
/// asks the server for the free space) and leaves no partial object behind.
#[test]
fn sftp_full_disk_is_no_space() {
    let Some(e) = env() else { return };
    let d = tempfile::tempdir().unwrap();
    let mnt = d.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: cannot mount a small tmpfs (not root?)");
        return;
    }
    let s = storage(&e, &mnt.join("repo"));
    let result = (|| {
        s.create()?;
        s.write(FileKind::Pack, &"ab".repeat(32), &vec![7u8; 1 << 20])
    })();
    let listed = s.list(FileKind::Pack);
    let left = walkdir(&mnt);
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoSpace, "{err}");
    assert!(err.to_string().contains("data/ab/"), "{err}");
    assert!(listed.unwrap().is_empty());
    assert!(left.is_empty(), "no partial or temporary object: {left:?}");
}

/// No `.tmp-` file is left below any of `dirs` (the server runs on this machine, so its files
/// can be looked at directly).
fn assert_no_temporaries(dirs: &[&std::path::Path]) {
    let left: Vec<_> = dirs
        .iter()
        .flat_map(|d| walkdir(d))
        .filter(|p| p.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn walkdir(p: &std::path::Path) -> Vec<String> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(walkdir(&e.path()));
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

fn sshd_script(action: &str, state: &std::path::Path) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/services/sshd.sh");
    let out = std::process::Command::new(script)
        .arg(action)
        .arg(state)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sshd.sh {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A dead server is `Unavailable` naming the location; once it is back, the next operation
/// reconnects by itself (no retry wrapper here: the pool replaces dead connections).
#[test]
fn sftp_reconnects_after_the_server_restarts() {
    if env().is_none() {
        return;
    }
    let st = tempfile::tempdir().unwrap();
    let state = st.path().join("sshd");
    sshd_script("start", &state);
    struct Stop(std::path::PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            sshd_script("stop", &self.0);
        }
    }
    let _stop = Stop(state.clone());
    let envf = std::fs::read_to_string(state.join("env")).unwrap();
    let get = |k: &str| {
        envf.lines()
            .find_map(|l| l.strip_prefix(&format!("export {k}=")))
            .unwrap()
            .to_string()
    };
    let e = Env {
        host: get("RIME_TEST_SSH_HOST"),
        port: get("RIME_TEST_SSH_PORT"),
        user: get("RIME_TEST_SSH_USER"),
        key: get("RIME_TEST_SSH_KEY").into(),
        config: get("RIME_TEST_SSH_CONFIG").into(),
    };
    let d = tempfile::tempdir().unwrap();
    let s = storage(&e, &d.path().join("repo"));
    s.create().unwrap();
    let data = vec![5u8; 300_000];
    s.write(FileKind::Pack, &"cd".repeat(32), &data).unwrap();

    sshd_script("stop", &state);
    let err = s.read(FileKind::Pack, &"cd".repeat(32)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains(&e.port), "{err}");

    sshd_script("restart", &state);
    assert_eq!(s.read(FileKind::Pack, &"cd".repeat(32)).unwrap(), data);
    s.write(FileKind::Index, "abcd", b"after").unwrap();
    assert_eq!(s.read(FileKind::Index, "abcd").unwrap(), b"after");
}

/// Large objects cross many pipelined requests (and a short final one); prints throughput.
#[test]
fn sftp_large_objects_and_parallel_reads() {
    let Some(e) = env() else { return };
    let d = tempfile::tempdir().unwrap();
    let s = Arc::new(storage(&e, &d.path().join("repo")));
    s.create().unwrap();
    let big: Vec<u8> = (0..(48u32 << 20) + 12_345)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let name = "ef".repeat(32);
    let t = std::time::Instant::now();
    let mut p = s.begin_write(FileKind::Pack).unwrap();
    for part in big.chunks(1 << 20) {
        p.append(part).unwrap();
    }
    p.commit(s.as_ref(), &name).unwrap();
    let up = t.elapsed();
    let t = std::time::Instant::now();
    assert!(
        s.read(FileKind::Pack, &name).unwrap() == big,
        "whole read differs"
    );
    let down = t.elapsed();
    let tail = s
        .read_range(FileKind::Pack, &name, big.len() as u64 - 300_000, 300_000)
        .unwrap();
    assert!(tail == big[big.len() - 300_000..]);
    // Ranged reads from several threads share the connections.
    let t = std::time::Instant::now();
    let threads: Vec<_> = (0..8u64)
        .map(|i| {
            let s = s.clone();
            let name = name.clone();
            std::thread::spawn(move || {
                s.read_range(FileKind::Pack, &name, i * (6 << 20), 6 << 20)
                    .unwrap()
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        let got = t.join().unwrap();
        let at = i * (6 << 20);
        assert!(got == big[at..at + (6 << 20)], "range {i} differs");
    }
    let par = t.elapsed();
    let mib = big.len() as f64 / (1 << 20) as f64;
    eprintln!(
        "sftp over loopback: upload {:.0} MiB/s, download {:.0} MiB/s, 8 parallel ranged reads {:.0} MiB/s",
        mib / up.as_secs_f64(),
        mib / down.as_secs_f64(),
        48.0 / par.as_secs_f64()
    );
}

/// The second port of tests/services/sshd.sh, whose SFTP server refuses
/// `hardlink@openssh.com` (`internal-sftp -P hardlink`), as a storage for a fresh directory.
/// `assume_hardlink`: send the extension anyway, as to a server that advertises it but refuses
/// it (older OpenSSH with `-P`, file systems without hard links); the server answers
/// PERMISSION_DENIED. Otherwise the storage sees no such extension and uses plain RENAME.
fn nolink_storage(e: &Env, dir: &std::path::Path, assume_hardlink: bool) -> Option<SftpStorage> {
    let Some(base) = std::env::var("RIME_TEST_SFTP_NOLINK_URL")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        eprintln!("skipped: RIME_TEST_SFTP_NOLINK_URL not set (start tests/services/sshd.sh)");
        return None;
    };
    let opts = SftpOptions {
        config: Some(e.config.clone()),
        key: Some(e.key.clone()),
        ..Default::default()
    };
    let s = SftpStorage::open(&format!("{base}{}", dir.display()), &opts).unwrap();
    Some(if assume_hardlink {
        s.assuming_hardlink()
    } else {
        s
    })
}

/// The config stays create-only on a server without `hardlink@openssh.com`, whether it does not
/// offer the extension (plain RENAME) or offers it and refuses it (the fallback to RENAME): a
/// first write lands, the same bytes again count as written, other bytes are
/// `RepositoryExists` and leave the first config alone; of writers racing with different
/// configs exactly one wins and the others see `RepositoryExists`.
#[test]
fn sftp_config_is_create_only_without_hardlink() {
    let Some(e) = env() else { return };
    for assume_hardlink in [false, true] {
        let d = tempfile::tempdir().unwrap();
        let Some(s) = nolink_storage(&e, &d.path().join("repo"), assume_hardlink) else {
            return;
        };
        s.create().unwrap();
        crate::storage::conformance::config_is_create_only(&s);

        let d2 = tempfile::tempdir().unwrap();
        let s = Arc::new(nolink_storage(&e, &d2.path().join("repo"), assume_hardlink).unwrap());
        s.create().unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(6));
        let writers: Vec<_> = (0..6u8)
            .map(|i| {
                let (s, barrier) = (s.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let body = vec![i; 200];
                    barrier.wait();
                    (body.clone(), s.write(FileKind::Config, "config", &body))
                })
            })
            .collect();
        let results: Vec<_> = writers.into_iter().map(|t| t.join().unwrap()).collect();
        let won: Vec<_> = results.iter().filter(|(_, r)| r.is_ok()).collect();
        assert_eq!(
            won.len(),
            1,
            "assume_hardlink {assume_hardlink}: {results:?}"
        );
        for (_, r) in results.iter().filter(|(_, r)| r.is_err()) {
            let err = r.as_ref().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::RepositoryExists, "{err}");
        }
        assert_eq!(s.read(FileKind::Config, "config").unwrap(), won[0].0);
        assert_no_temporaries(&[d.path(), d2.path()]);
    }
}
