//! SFTP repositories against a real OpenSSH sshd on 127.0.0.1 (tests/services/sshd.sh, started
//! by tests/run.sh): round trips, host key checking, wrong keys, a server outage mid-backup,
//! dry run and bandwidth limits. Skipped with a printed reason when RIME_TEST_SSH_* is unset.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

type Server = SshServer;

fn server() -> Option<Server> {
    SshServer::from_env()
}

fn sshd_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/services/sshd.sh")
}

/// Start a private sshd (for tests that stop it or change its keys) in `state`.
fn private_server(state: &Path) -> Option<Server> {
    server()?; // only where the shared one runs: same packages
    let out = Command::new(sshd_script())
        .arg("start")
        .arg(state)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sshd.sh start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = std::fs::read_to_string(state.join("env")).unwrap();
    let get = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("export {k}=")))
            .unwrap_or_else(|| panic!("{k} missing from {env}"))
            .to_string()
    };
    Some(Server {
        host: get("RIME_TEST_SSH_HOST"),
        port: get("RIME_TEST_SSH_PORT"),
        user: get("RIME_TEST_SSH_USER"),
        key: get("RIME_TEST_SSH_KEY").into(),
        config: get("RIME_TEST_SSH_CONFIG").into(),
        state: state.to_path_buf(),
    })
}

fn sshd(action: &str, state: &Path) {
    let st = Command::new(sshd_script())
        .arg(action)
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "sshd.sh {action} failed");
}

/// Stops a private server when the test ends, however it ends.
struct StopOnDrop(PathBuf);
impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = Command::new(sshd_script())
            .arg("stop")
            .arg(&self.0)
            .stdin(Stdio::null())
            .status();
    }
}

/// A repository on the server; the server runs on this machine, so `dir` is also its local path.
struct SftpRepo {
    tmp: tempfile::TempDir,
    dir: PathBuf,
    url: String,
    pw_file: PathBuf,
    config: PathBuf,
    key: PathBuf,
}

impl SftpRepo {
    fn new(s: &Server) -> SftpRepo {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("repo");
        let pw_file = tmp.path().join("password");
        std::fs::write(&pw_file, format!("{PASSWORD}\n")).unwrap();
        SftpRepo {
            url: format!("sftp://{}@{}:{}{}", s.user, s.host, s.port, dir.display()),
            dir,
            pw_file,
            config: s.config.clone(),
            key: s.key.clone(),
            tmp,
        }
    }

    fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Out {
        let mut all: Vec<OsString> = vec![
            os("--repo"),
            os(&self.url),
            os("--password-file"),
            os(&self.pw_file),
            os("--ssh-config"),
            os(&self.config),
            os("--ssh-key"),
            os(&self.key),
        ];
        all.extend(args.iter().map(os));
        rime_raw(all, &[])
    }

    fn init(&self) {
        self.run(&["init", "--insecure-fast-kdf"]).ok();
    }

    fn dir(&self, name: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

/// A source tree: a few MiB of random data and small files.
fn source(at: &Path, big: usize) -> PathBuf {
    let src = at.join("src");
    mkdir(&src);
    write_random_file(&src.join("big.bin"), 1, big);
    mkdir(&src.join("sub"));
    for i in 0..40u64 {
        write_random_file(
            &src.join("sub").join(format!("f{i}")),
            100 + i,
            1000 + i as usize * 97,
        );
    }
    write(&src.join("empty"), b"");
    src
}

/// Every file under `a` has the same bytes under `b` and vice versa.
fn assert_same_tree(a: &Path, b: &Path) {
    let (ra, rb) = (walk(a), walk(b));
    assert_eq!(ra, rb, "the trees list different entries");
    for p in ra {
        let (pa, pb) = (a.join(&p), b.join(&p));
        if pa.is_file() {
            assert_eq!(first_difference(&pa, &pb), None, "{} differs", p.display());
        }
    }
}

/// The restored copy of `src` inside `target` (a single backed-up directory is restored as the
/// target's contents).
fn restored(target: &Path, _src: &Path) -> PathBuf {
    target.to_path_buf()
}

#[test]
fn sftp_init_backup_restore_check_roundtrip() {
    let Some(s) = server() else { return };
    let r = SftpRepo::new(&s);
    r.init();
    assert!(
        r.dir.join("config").is_file(),
        "the repository is on the server"
    );
    let src = source(r.tmp.path(), 6 << 20);
    let b = r.run(&[os("backup"), os("--json"), os(&src)]);
    b.ok();
    let id = b.json()["id"].as_str().unwrap().to_string();
    // A second backup of the same data uploads (almost) nothing new.
    let b2 = r.run(&[os("backup"), os("--json"), os(&src)]);
    b2.ok();
    assert!(b2.json()["stats"]["bytes_added"].as_u64().unwrap() < 100_000);
    let target = r.dir("out");
    r.run(&[os("restore"), os(&id), os("--target"), os(&target)])
        .ok();
    assert_same_tree(&src, &restored(&target, &src));
    r.run(&["check", "--read-data"]).ok();
    // No temporary objects were left on the server.
    let tmp_left: Vec<_> = walk(&r.dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(tmp_left.is_empty(), "{tmp_left:?}");
    // The same repository opened as a local directory lists the same snapshot.
    let local = rime_raw(
        [
            os("--repo"),
            os(&r.dir),
            os("--password-file"),
            os(&r.pw_file),
            os("snapshots"),
            os("--json"),
        ],
        &[],
    );
    local.ok();
    assert!(local.stdout.contains(&id));
}

#[test]
fn sftp_missing_repository_and_bad_url_are_named() {
    let Some(s) = server() else { return };
    let r = SftpRepo::new(&s);
    r.run(&["snapshots"]).code(10);
    let bad = rime_raw(["--repo", "sftp://host-without-path", "snapshots"], &[]);
    bad.error_names(&["sftp://host-without-path", "no path"]);
}

fn fingerprint(pubkey: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pubkey)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// An ssh config like the server's, but with its own known_hosts file.
fn config_with_known_hosts(s: &Server, dir: &Path, known: &str) -> (PathBuf, PathBuf) {
    let kh = dir.join("known_hosts");
    std::fs::write(&kh, known).unwrap();
    let cfg = dir.join("ssh_config");
    std::fs::write(
        &cfg,
        format!(
            "Host *\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n",
            kh.display()
        ),
    )
    .unwrap();
    let _ = s;
    (cfg, kh)
}

#[test]
fn sftp_host_keys_unknown_refused_accept_new_trusts_changed_refused() {
    let Some(s) = server() else { return };
    let mut r = SftpRepo::new(&s);
    let dir = r.dir("ssh");
    let (cfg, kh) = config_with_known_hosts(&s, &dir, "");
    r.config = cfg;
    let fp = fingerprint(&s.state.join("host_ed25519_key.pub"));

    // Unknown host: refused, the fingerprint shown, the option named, nothing recorded.
    let out = r.run(&["init", "--insecure-fast-kdf"]);
    out.error_names(&[&fp, "--ssh-accept-new", "not in known_hosts", &s.port]);
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), "");
    assert!(!r.dir.exists(), "nothing was written to an unverified host");

    // Trust on first use: accepted and recorded.
    r.run(&["--ssh-accept-new", "init", "--insecure-fast-kdf"])
        .ok();
    let recorded = std::fs::read_to_string(&kh).unwrap();
    let host_pub = std::fs::read_to_string(s.state.join("host_ed25519_key.pub")).unwrap();
    let key_b64 = host_pub.split_whitespace().nth(1).unwrap();
    assert!(recorded.contains(key_b64), "known_hosts: {recorded}");
    r.run(&["snapshots"]).ok();

    // A changed key: refused, even with --ssh-accept-new.
    let other = dir.join("other_host_key");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(st.success());
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let fake: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    std::fs::write(
        &kh,
        format!("[{}]:{} {} {}\n", s.host, s.port, fake[0], fake[1]),
    )
    .unwrap();
    for extra in [&[][..], &["--ssh-accept-new"][..]] {
        let mut args: Vec<&str> = extra.to_vec();
        args.push("snapshots");
        r.run(&args).error_names(&["changed", &fp]);
    }
}

#[test]
fn sftp_wrong_or_missing_key_is_a_clear_error() {
    let Some(s) = server() else { return };
    let mut r = SftpRepo::new(&s);
    let dir = r.dir("ssh");
    let k = dir.join("stranger");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&k)
        .status()
        .unwrap();
    assert!(st.success());
    // The server's config names no key for this host: only the stranger's key is offered.
    r.key = k;
    let out = r.run(&["init", "--insecure-fast-kdf"]);
    out.error_names(&["rejected the login", "--ssh-key", &s.port]);
    assert!(!r.dir.exists());
    r.key = dir.join("no-such-key");
    r.run(&["snapshots"])
        .error_names(&["no-such-key", "does not exist"]);
}

#[test]
fn sftp_dry_run_backup_writes_nothing_and_says_what_it_would_upload() {
    let Some(s) = server() else { return };
    let r = SftpRepo::new(&s);
    r.init();
    let src = source(r.tmp.path(), 3 << 20);
    let before = walk(&r.dir).len();
    let out = r.run(&[os("--dry-run"), os("backup"), os(&src)]);
    out.ok();
    assert!(
        out.stdout
            .contains("dry run: nothing was written to sftp://")
            && out.stdout.contains("would have uploaded")
            && out.stdout.contains("pack")
            && out.stdout.contains("1 snapshot"),
        "{}",
        out.stdout
    );
    assert_eq!(walk(&r.dir).len(), before, "no file appeared on the server");
    assert!(r
        .run(&["snapshots", "--json"])
        .json()
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn sftp_upload_limit_paces_the_backup() {
    let Some(s) = server() else { return };
    let r = SftpRepo::new(&s);
    r.init();
    let src = source(r.tmp.path(), 4 << 20);
    // About 4.1 MiB at 1 MiB/s, of which 1 MiB may go as a burst: at least ~3 s.
    let t = Instant::now();
    r.run(&[os("--limit-upload"), os("1M"), os("backup"), os(&src)])
        .ok();
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(2800), "took only {took:?}");
    let bad = r.run(&["--limit-upload", "fast", "snapshots"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("invalid rate"), "{}", bad.stderr);
}

/// sshd and its sessions are killed in the middle of a backup and started again: the backup
/// completes through retries or fails cleanly; the next backup completes and restores exactly.
#[test]
fn sftp_server_killed_mid_backup_then_back() {
    let Some(_) = server() else { return };
    let st = tempfile::tempdir().unwrap();
    let Some(s) = private_server(&st.path().join("sshd")) else {
        return;
    };
    let _stop = StopOnDrop(s.state.clone());
    let r = SftpRepo::new(&s);
    // Small packs, so that uploads go on during the whole backup.
    r.run(&["init", "--insecure-fast-kdf", "--pack-size", "1"])
        .ok();
    let src = source(r.tmp.path(), 24 << 20);
    // Paced so that the outage falls in the middle: ~24 MiB at 6 MiB/s takes about 3-4 s.
    let child = Command::new(rime_bin())
        .args([
            os("--repo"),
            os(&r.url),
            os("--password-file"),
            os(&r.pw_file),
            os("--ssh-config"),
            os(&r.config),
            os("--ssh-key"),
            os(&r.key),
            os("--limit-upload"),
            os("6M"),
            os("backup"),
            os(&src),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the backup ended before the outage: the test proves nothing"
    );
    sshd("stop", &s.state);
    std::thread::sleep(Duration::from_secs(2));
    sshd("restart", &s.state);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // A clean failure: one error naming the storage and what happened.
        let errs: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("rime: error:"))
            .collect();
        assert_eq!(errs.len(), 1, "{stderr}");
        assert!(
            errs[0].contains(&r.url) || errs[0].contains(&format!(":{}", s.port)),
            "{stderr}"
        );
        eprintln!("backup during the outage failed cleanly: {}", errs[0]);
    } else {
        eprintln!("backup during the outage completed through retries");
    }
    // The next run completes, and what it restores is exact.
    let b = r.run(&[os("backup"), os("--json"), os(&src)]);
    b.ok();
    let id = b.json()["id"].as_str().unwrap().to_string();
    let target = r.dir("out");
    r.run(&[os("restore"), os(&id), os("--target"), os(&target)])
        .ok();
    assert_same_tree(&src, &restored(&target, &src));
    r.run(&["check", "--read-data"]).ok();
}

#[test]
fn agent_tar_levels_over_ssh_storage() {
    let Some(s) = server() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    mkdir(&src);
    let pass = tmp.path().join("pass");
    write(&pass, "ssh agent pass\n");
    let container = tmp.path().join("container");
    let run = |extra: &[&OsStr]| {
        let mut a: Vec<OsString> = [
            "agent",
            "--storage",
            "ssh",
            "--ssh-host",
            &s.host,
            "--ssh-port",
            &s.port,
            "--ssh-username",
            &s.user,
        ]
        .iter()
        .map(os)
        .collect();
        a.extend([
            os("--ssh-key"),
            os(&s.key),
            os("--ssh-config"),
            os(&s.config),
        ]);
        a.extend([os("--container"), os(&container), os("-N"), os("j")]);
        a.extend([os("--encrypt-pass-file"), os(&pass)]);
        a.extend(extra.iter().map(os));
        rime_raw(a, &[])
    };
    let out = tmp.path().join("out");
    agent_two_levels_roundtrip(&run, &src, &out, &|| {
        assert!(
            container.join("rime/config").exists(),
            "<container>/rime on the server"
        )
    });
}

/// Prune removes `.tmp-*` files that writes killed mid-object left on the server once they
/// are a day old (their age by the server's mtime); a fresh one, a write in progress, stays.
#[test]
fn sftp_prune_removes_day_old_temporary_files_of_killed_writes() {
    let Some(s) = server() else { return };
    let r = SftpRepo::new(&s);
    r.init();
    let src = source(r.tmp.path(), 1 << 20);
    r.run(&[os("backup"), os(&src)]).ok();
    let old_pack = r.dir.join("data/ab/.tmp-0123abcd-00000000deadbeef");
    let old_index = r.dir.join("index/.tmp-89ef-00000000deadbeef");
    let young = r.dir.join("data/cd/.tmp-4567-00000000cafebabe");
    for (p, n) in [(&old_pack, 5000), (&old_index, 700), (&young, 3000)] {
        mkdir(p.parent().unwrap());
        write(p, vec![7u8; n]);
    }
    set_mtime(&old_pack, 1_600_000_000, 0);
    set_mtime(&old_index, 1_600_000_000, 0);
    let v = r.run(&["prune", "--json"]).json();
    assert_eq!(v["leftovers_removed"], 2, "{v}");
    assert_eq!(v["leftover_bytes_removed"], 5700, "{v}");
    assert!(!old_pack.exists() && !old_index.exists());
    assert!(
        young.exists(),
        "a young temporary file is a write in progress"
    );
    r.run(&["check"]).ok();
}

/// A repository on the test sshd's second port, whose SFTP server refuses
/// `hardlink@openssh.com` (tests/services/sshd.sh: `internal-sftp -P hardlink`); `None` after a
/// "skipped" line when that server is not described in the environment.
fn nolink_repo(s: &Server) -> Option<SftpRepo> {
    let Some(base) = std::env::var("RIME_TEST_SFTP_NOLINK_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: RIME_TEST_SFTP_NOLINK_URL not set (start tests/services/sshd.sh)");
        return None;
    };
    let mut r = SftpRepo::new(s);
    r.url = format!("{base}{}", r.dir.display());
    Some(r)
}

/// Without `hardlink@openssh.com` the config is written with a plain SFTP RENAME, still
/// create-only: `init` works and the repository takes a backup; of two `init`s racing on one
/// place with different passwords, exactly one wins, the loser is told a repository already
/// exists, the winner's password opens the repository and the loser's does not (its key file
/// was taken away again).
#[test]
fn sftp_init_without_hardlink_and_racing_inits() {
    let Some(s) = server() else { return };
    let Some(r) = nolink_repo(&s) else { return };
    r.init();
    let src = r.dir("src");
    write(&src.join("f"), b"on a server without hard links");
    r.run(&[os("backup"), os(&src)]).ok();
    r.run(&["check"]).ok();

    for round in 0..2 {
        let a = nolink_repo(&s).unwrap();
        let mut b = nolink_repo(&s).unwrap();
        b.url = a.url.clone();
        std::fs::write(&b.pw_file, format!("another password {round}\n")).unwrap();
        let (oa, ob) = std::thread::scope(|sc| {
            let ta = sc.spawn(|| a.run(&["init", "--insecure-fast-kdf"]));
            let tb = sc.spawn(|| b.run(&["init", "--insecure-fast-kdf"]));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        let wins = [oa.code == 0, ob.code == 0];
        assert_eq!(
            wins.iter().filter(|w| **w).count(),
            1,
            "round {round}: exactly one init wins:\n{}\n{}",
            oa.stderr,
            ob.stderr
        );
        let (winner, loser, lost) = if wins[0] {
            (&a, &b, &ob)
        } else {
            (&b, &a, &oa)
        };
        lost.error_names(&["already exists"]);
        winner.run(&["snapshots"]).ok();
        loser.run(&["snapshots"]).failed();
        let keys: Vec<_> = walk(&a.dir.join("keys"))
            .into_iter()
            .filter(|k| a.dir.join("keys").join(k).is_file())
            .collect();
        assert_eq!(
            keys.len(),
            1,
            "round {round}: only the winner's key: {keys:?}"
        );
    }
}
