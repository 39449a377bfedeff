//! `rime` against real OpenStack Swift clusters started by tests/services/swift.sh (and
//! tests/services/keystone.sh): round trips, wrong credentials, a proxy outage mid-backup, and
//! independence of two clusters. Skipped, with the reason printed, when the services' `RIME_TEST_*`
//! variables are not set.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::util::*;

/// How to reach one cluster: the `ST_*` (or `OS_*`) variables rime reads.
#[derive(Clone)]
struct Cluster {
    env: Vec<(String, String)>,
}

fn cluster(n: &str) -> Option<Cluster> {
    let var = |k: &str| std::env::var(format!("RIME_TEST_SWIFT{n}_{k}")).ok();
    // Cluster "1B" is cluster 1 behind its spare proxy: same user and key.
    let base = n.trim_end_matches('B');
    let other = |k: &str| std::env::var(format!("RIME_TEST_SWIFT{base}_{k}")).ok();
    Some(Cluster {
        env: vec![
            ("ST_AUTH".into(), var("AUTH")?),
            ("ST_USER".into(), other("USER")?),
            ("ST_KEY".into(), other("KEY")?),
        ],
    })
}

macro_rules! need {
    ($n:expr) => {
        match cluster($n) {
            Some(c) => c,
            None => {
                println!(
                    "skipped: RIME_TEST_SWIFT{}_AUTH not set (start tests/services/swift.sh, or run tests/run.sh)",
                    $n
                );
                return;
            }
        }
    };
}

/// A repository in a fresh container of a cluster, with a password file.
struct SwiftRepo {
    tmp: TempDir,
    url: String,
    pw_file: PathBuf,
    cluster: Cluster,
}

fn unique_container(tag: &str) -> String {
    format!("rime-it-{tag}-{}-{:08x}", std::process::id(), rand_u32())
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.subsec_nanos() ^ (t.as_secs() as u32).rotate_left(7)
}

impl SwiftRepo {
    fn new(cluster: &Cluster, url: String) -> SwiftRepo {
        let tmp = tempfile::tempdir().unwrap();
        let pw_file = tmp.path().join("password");
        write(&pw_file, format!("{PASSWORD}\n"));
        SwiftRepo {
            tmp,
            url,
            pw_file,
            cluster: cluster.clone(),
        }
    }

    fn init(cluster: &Cluster, tag: &str) -> SwiftRepo {
        let r = SwiftRepo::new(
            cluster,
            format!("swift://{}/repo/one", unique_container(tag)),
        );
        r.run(&["init", "--insecure-fast-kdf"]).ok();
        r
    }

    fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Out {
        self.run_with(args, &self.cluster.env)
    }

    fn run_with<S: AsRef<OsStr>>(&self, args: &[S], env: &[(String, String)]) -> Out {
        let mut all: Vec<OsString> = vec![
            os("--repo"),
            os(&self.url),
            os("--password-file"),
            os(&self.pw_file),
        ];
        all.extend(args.iter().map(os));
        let env: Vec<(&str, &OsStr)> = env
            .iter()
            .map(|(k, v)| (k.as_str(), OsStr::new(v.as_str())))
            .collect();
        rime_raw(all, &env)
    }

    fn backup(&self, src: &Path) -> String {
        let out = self.run(&[os("backup"), os("--json"), os(src)]);
        out.ok();
        out.json()["id"]
            .as_str()
            .expect("backup --json has an id")
            .to_string()
    }

    /// Restore `id` into a fresh directory and compare it with `src` byte for byte.
    fn restore_equals(&self, id: &str, src: &Path) {
        let target = self.tmp.path().join(format!("restore-{id}-{}", rand_u32()));
        self.run(&[os("restore"), os(id), os("--target"), os(&target)])
            .ok();
        let diffs = tree_differences(src, &target, CompareOpts::default());
        assert!(
            diffs.is_empty(),
            "restore from {} differs: {diffs:?}",
            self.url
        );
    }
}

fn source_tree(dir: &Path, seed: u64, big: usize) -> PathBuf {
    let src = dir.join(format!("src{seed}"));
    mkdir(&src.join("many"));
    write_random_file(&src.join("big.bin"), seed, big);
    write(&src.join("small.txt"), format!("small file {seed}\n"));
    write(&src.join("empty"), b"");
    for i in 0..20u64 {
        write_random_file(
            &src.join(format!("many/f{i}")),
            seed * 100 + i,
            3000 + i as usize * 997,
        );
    }
    src
}

#[test]
fn swift_backup_restore_check_round_trip() {
    let c = need!("1");
    let r = SwiftRepo::init(&c, "rt");
    let src = source_tree(r.tmp.path(), 1, 12 << 20);
    let id = r.backup(&src);
    r.restore_equals(&id, &src);
    // A second backup with a change: deduplicated, and both snapshots restore exactly.
    write_random_file(&src.join("many/f3"), 999, 50_000);
    let id2 = r.backup(&src);
    assert_ne!(id, id2);
    r.restore_equals(&id2, &src);
    r.run(&["check", "--read-data"]).ok();
    let snaps = r.run(&["snapshots", "--json"]);
    snaps.ok();
    assert_eq!(snaps.json().as_array().unwrap().len(), 2);
}

#[test]
fn swift_two_clusters_are_independent() {
    let c1 = need!("1");
    let c2 = need!("2");
    // The same container and prefix on both clusters hold two different repositories.
    let url = format!("swift://{}/same", unique_container("indep"));
    let r1 = SwiftRepo::new(&c1, url.clone());
    let r2 = SwiftRepo::new(&c2, url);
    r1.run(&["init", "--insecure-fast-kdf"]).ok();
    r2.run(&["init", "--insecure-fast-kdf"]).ok();
    let a = source_tree(r1.tmp.path(), 2, 3 << 20);
    let b = source_tree(r2.tmp.path(), 3, 2 << 20);
    let ida = r1.backup(&a);
    let idb = r2.backup(&b);
    r1.restore_equals(&ida, &a);
    // Cluster 2 gives tokens 8 s of life: a backup and restore there renew them as needed.
    r2.restore_equals(&idb, &b);
    let list = |r: &SwiftRepo| snapshot_ids_listed(&r.run(&["snapshots", "--json"]));
    assert_eq!(list(&r1), vec![ida.clone()]);
    assert_eq!(list(&r2), vec![idb.clone()]);
    // Cluster 1's snapshot is not on cluster 2.
    r2.run(&[
        "restore",
        &ida,
        "--target",
        r2.tmp.path().join("x").to_str().unwrap(),
    ])
    .failed();
}

#[test]
fn swift_wrong_credentials_fail_clearly() {
    let c = need!("1");
    let r = SwiftRepo::init(&c, "creds");
    let auth = c.env[0].1.clone();
    let mut bad = c.env.clone();
    bad[2].1 = "wrong-key".into();
    let out = r.run_with(&["snapshots"], &bad);
    out.error_names(&["credentials rejected", &auth, "ST_KEY"]);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    // No credentials at all.
    let out = r.run_with(&["snapshots"], &[]);
    out.error_names(&["no Swift credentials", "ST_AUTH", &r.url]);
    // Init with wrong credentials writes nothing and says why.
    let r2 = SwiftRepo::new(&c, format!("swift://{}", unique_container("creds2")));
    r2.run_with(&["init", "--insecure-fast-kdf"], &bad)
        .error_names(&["credentials rejected"]);
    r2.run(&["snapshots"]).error_names(&["no repository"]);
}

/// Tests that stop the spare proxy of cluster 1 hold this for their whole run: cargo runs
/// tests in parallel, and one test's outage must not hit another's restore.
static PROXY_1B: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The spare proxy of cluster 1 to ourselves (no other kind of test uses it).
fn own_proxy_1b() -> std::sync::MutexGuard<'static, ()> {
    PROXY_1B.lock().unwrap_or_else(|e| e.into_inner())
}

/// Stop or start the spare proxy of cluster 1 (hold [`own_proxy_1b`] meanwhile).
fn proxy_1b(action: &str) {
    let script = std::env::var("RIME_TEST_SWIFT_SCRIPT").unwrap();
    let state = std::env::var("RIME_TEST_SWIFT_STATE").unwrap();
    let st = Command::new("bash")
        .args([script.as_str(), action, state.as_str(), "1b"])
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "swift.sh {action} 1b failed");
}

/// Starts the spare proxy again when the test ends, even if it fails half-way.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        let script = std::env::var("RIME_TEST_SWIFT_SCRIPT").unwrap();
        let state = std::env::var("RIME_TEST_SWIFT_STATE").unwrap();
        let up = std::net::TcpStream::connect(
            std::env::var("RIME_TEST_SWIFT1B_AUTH")
                .unwrap()
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap(),
        )
        .is_ok();
        if !up {
            let _ = Command::new("bash")
                .args([script.as_str(), "start-proxy", state.as_str(), "1b"])
                .status();
        }
    }
}

#[test]
fn swift_proxy_outage_mid_backup_then_next_run_completes() {
    let c = need!("1B");
    if std::env::var("RIME_TEST_SWIFT_SCRIPT").is_err() {
        println!("skipped: RIME_TEST_SWIFT_SCRIPT not set");
        return;
    }
    let _own = own_proxy_1b();
    let _restart = Restart;
    let r = SwiftRepo::init(&c, "outage");
    let src = source_tree(r.tmp.path(), 4, 96 << 20);
    // Start the backup, and kill the proxy while packs are being uploaded.
    let mut args: Vec<OsString> = vec![
        os("--repo"),
        os(&r.url),
        os("--password-file"),
        os(&r.pw_file),
        os("backup"),
        os(&src),
    ];
    args.insert(0, os("--quiet"));
    let child = Command::new(rime_bin())
        .args(&args)
        .envs(c.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let started = Instant::now();
    proxy_1b("stop-proxy");
    // Down for a few seconds: the retry wrapper (about 15 s of backoff) may ride it out.
    std::thread::sleep(Duration::from_secs(3));
    proxy_1b("start-proxy");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    if out.status.success() {
        println!("the backup completed through the outage");
    } else {
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("rime: error:"))
            .collect();
        assert_eq!(errors.len(), 1, "one clear error line:\n{stderr}");
        let e = errors[0].to_lowercase();
        assert!(
            e.contains("swift://") && (e.contains("connect") || e.contains("http 5")),
            "the error names the storage and what happened:\n{stderr}"
        );
        println!(
            "failed cleanly after {:?}: {}",
            started.elapsed(),
            errors[0]
        );
    }
    // The next run completes, and the restore is exact.
    let id = r.backup(&src);
    r.restore_equals(&id, &src);
    r.run(&["check", "--read-data"]).ok();
}

/// The `OS_*` variables of the Keystone test user, as python-swiftclient reads them.
fn keystone_env() -> Option<Vec<(String, String)>> {
    let var = |k: &str| std::env::var(format!("RIME_TEST_KEYSTONE_{k}")).ok();
    let mut env = Vec::new();
    for (os_name, k) in [
        ("OS_AUTH_URL", "AUTH_URL"),
        ("OS_USERNAME", "USERNAME"),
        ("OS_PASSWORD", "PASSWORD"),
        ("OS_PROJECT_NAME", "PROJECT_NAME"),
        ("OS_USER_DOMAIN_NAME", "USER_DOMAIN_NAME"),
        ("OS_PROJECT_DOMAIN_NAME", "PROJECT_DOMAIN_NAME"),
        ("OS_REGION_NAME", "REGION"),
    ] {
        env.push((os_name.to_string(), var(k)?));
    }
    env.push(("OS_INTERFACE".into(), "public".into()));
    Some(env)
}

#[test]
fn swift_keystone_round_trip_and_bad_password() {
    let Some(env) = keystone_env() else {
        println!("skipped: RIME_TEST_KEYSTONE_* not set (start tests/services/keystone.sh, or run tests/run.sh)");
        return;
    };
    let c = Cluster { env: env.clone() };
    let r = SwiftRepo::init(&c, "ks");
    let src = source_tree(r.tmp.path(), 5, 4 << 20);
    let id = r.backup(&src);
    r.restore_equals(&id, &src);
    r.run(&["check", "--read-data"]).ok();
    // An application credential reaches the same project's repository.
    if let (Ok(app_id), Ok(secret)) = (
        std::env::var("RIME_TEST_KEYSTONE_APP_CRED_ID"),
        std::env::var("RIME_TEST_KEYSTONE_APP_CRED_SECRET"),
    ) {
        let app = vec![
            ("OS_AUTH_URL".to_string(), env[0].1.clone()),
            ("OS_APPLICATION_CREDENTIAL_ID".to_string(), app_id),
            ("OS_APPLICATION_CREDENTIAL_SECRET".to_string(), secret),
        ];
        let out = r.run_with(&["snapshots", "--json"], &app);
        out.ok();
        assert_eq!(out.json()[0]["id"].as_str(), Some(id.as_str()));
    }
    let mut bad = env.clone();
    bad[2].1 = "not-the-password".into();
    r.run_with(&["snapshots"], &bad)
        .error_names(&["credentials rejected", "keystone", "rimeuser"]);
    // --os-region-name replaces OS_REGION_NAME: a region without Swift is named in the error,
    // and the right one given on the command line works even when the variable is wrong.
    r.run_with(&["--os-region-name", "Atlantis", "snapshots"], &env)
        .error_names(&["Atlantis"]);
    let mut wrong_var = env.clone();
    let region = wrong_var[6].1.clone();
    wrong_var[6].1 = "Atlantis".into();
    r.run_with(
        &[
            "--os-region-name",
            region.as_str(),
            "--os-interface",
            "public",
            "snapshots",
        ],
        &wrong_var,
    )
    .ok();
}

/// `rime --config FILE` with two `[storage:NAME]` Swift sections, one with `st_*` keys and one with
/// an `osrc` file, on two clusters: one backup writes both, each restores on its own.
/// `rime.ini` in `dir` with `[storage:one]` on cluster `c1` by `st_*` keys and
/// `[storage:two]` by the rc file `osrc`, both in `container`.
fn two_sections_ini(dir: &Path, container: &str, c1: &Cluster, osrc: &Path) -> PathBuf {
    let ini = dir.join("rime.ini");
    write(
        &ini,
        format!(
            "[storage:one]\nstorage = swift\ncontainer = {container}\nst_auth = {}\nst_user = {}\nst_key = {}\n\
             [storage:two]\nstorage = swift\ncontainer = {container}\nosrc = {}\n",
            c1.env[0].1,
            c1.env[1].1,
            c1.env[2].1,
            osrc.display()
        ),
    );
    ini
}

#[test]
fn swift_config_sections_with_their_own_credentials() {
    let c1 = need!("1");
    let c2 = need!("2");
    let r = SwiftRepo::new(&c1, String::new());
    let dir = r.tmp.path();
    let container = unique_container("cfg");
    let osrc = dir.join("c2.osrc");
    let lines: String = c2
        .env
        .iter()
        .map(|(k, v)| format!("export {k}='{v}'\n"))
        .collect();
    write(&osrc, lines);
    let ini = two_sections_ini(dir, &container, &c1, &osrc);
    let pw = os(&r.pw_file);
    let cfg = |args: &[&str]| {
        let mut all = vec![os("--config"), os(&ini), os("--password-file"), pw.clone()];
        all.extend(args.iter().map(os));
        rime_raw(all, &[])
    };
    cfg(&["init", "--insecure-fast-kdf"]).ok();
    let src = source_tree(dir, 6, 1 << 20);
    let out = cfg(&["backup", "--json", src.to_str().unwrap()]);
    out.ok();
    let id = out.json()["id"].as_str().unwrap().to_string();
    for c in [&c1, &c2] {
        let one = SwiftRepo {
            tmp: tempfile::tempdir().unwrap(),
            url: format!("swift://{container}"),
            pw_file: r.pw_file.clone(),
            cluster: c.clone(),
        };
        one.restore_equals(&id, &src);
    }
}

/// `rime copy --from storage:one --to storage:two`: each side with its own section's
/// credentials (cluster 1 by `st_*` keys, cluster 2 by an osrc file), none in the environment.
#[test]
fn swift_copy_between_clusters_named_by_config_sections() {
    let c1 = need!("1");
    let c2 = need!("2");
    let container = unique_container("copy");
    let r1 = SwiftRepo::new(&c1, format!("swift://{container}"));
    r1.run(&["init", "--insecure-fast-kdf"]).ok();
    let src = source_tree(r1.tmp.path(), 7, 1 << 20);
    let id = r1.backup(&src);
    let dir = r1.tmp.path();
    let osrc = dir.join("c2.osrc");
    let lines: String = c2
        .env
        .iter()
        .map(|(k, v)| format!("export {k}=\"{v}\"  # cluster 2\n"))
        .collect();
    write(&osrc, lines);
    let ini = two_sections_ini(dir, &container, &c1, &osrc);
    rime_raw(
        [
            os("--config"),
            os(&ini),
            os("copy"),
            os("--from"),
            os("storage:one"),
            os("--to"),
            os("storage:two"),
        ],
        &[],
    )
    .ok();
    let r2 = SwiftRepo {
        tmp: tempfile::tempdir().unwrap(),
        url: format!("swift://{container}"),
        pw_file: r1.pw_file.clone(),
        cluster: c2.clone(),
    };
    r2.restore_equals(&id, &src);
}

#[test]
fn agent_tar_levels_in_a_swift_container() {
    let c = need!("1");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    mkdir(&src);
    let pass = tmp.path().join("pass");
    write(&pass, "swift agent pass\n");
    let container = unique_container("agent");
    let env: Vec<(&str, &OsStr)> = c
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), OsStr::new(v.as_str())))
        .collect();
    let run = |extra: &[&OsStr]| {
        let mut a: Vec<OsString> = ["agent", "--container", &container, "-N", "j"]
            .iter()
            .map(os)
            .collect();
        a.extend([os("--encrypt-pass-file"), os(&pass)]);
        a.extend(extra.iter().map(os));
        rime_raw(a, &env)
    };
    // Swift is Freezer's default storage.
    let out = tmp.path().join("out");
    agent_two_levels_roundtrip(&run, &src, &out, &|| {});
    // The repository sits under <container>/rime.
    let o = rime_raw(
        [
            os("--repo"),
            os(format!("swift://{container}/rime")),
            os("--password-file"),
            os(&pass),
            os("snapshots"),
        ],
        &env,
    );
    o.ok();
}

/// Bit rot on the object server's disk (Swift serves the damaged bytes without any error of
/// its own): `check --read-data` and the restore name the damaged pack, the restore fails, and
/// no file is left under its name with wrong content.
#[test]
fn swift_pack_damaged_at_rest_is_named_and_never_restored_wrong() {
    let c = need!("1");
    let Ok(state) = std::env::var("RIME_TEST_SWIFT_STATE") else {
        println!("skipped: RIME_TEST_SWIFT_STATE not set");
        return;
    };
    let r = SwiftRepo::init(&c, "rot");
    let container = r
        .url
        .trim_start_matches("swift://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let src = r.tmp.path().join("src");
    mkdir(&src);
    write_random_file(&src.join("big.bin"), 77, 3 << 20);
    write(&src.join("small.txt"), b"kept apart");
    let id = r.backup(&src);
    // The largest object of this container on the object server: the data pack.
    let mut best: Option<(u64, PathBuf, String)> = None;
    for (p, meta) in swift_object_files(&state) {
        let meta = String::from_utf8_lossy(&meta).to_string();
        let Some(at) = meta.find(&format!("/{container}/")) else {
            continue;
        };
        let Some(pack) = meta[at..].split("/data/").nth(1).and_then(|rest| {
            let name: String = rest.chars().skip(3).take(64).collect();
            (name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit())).then_some(name)
        }) else {
            continue;
        };
        let Ok(len) = std::fs::metadata(&p).map(|m| m.len()) else {
            continue;
        };
        if best.as_ref().is_none_or(|(l, _, _)| len > *l) {
            best = Some((len, p, pack));
        }
    }
    let (len, file, pack) = best.expect("the data pack's file on the object server");
    let mut b = std::fs::read(&file).unwrap();
    b[(len / 2) as usize] ^= 0x10;
    std::fs::write(&file, b).unwrap();

    let checked = r.run(&["check", "--read-data"]);
    checked.failed();
    assert!(checked.stderr.contains(&pack), "{}", checked.stderr);
    let target = r.tmp.path().join("t");
    let out = r.run(&[os("restore"), os(&id), os("--target"), os(&target)]);
    out.failed();
    assert!(out.stderr.contains(&pack), "{}", out.stderr);
    assert!(
        std::fs::read(target.join("big.bin")).is_err(),
        "the damaged file is left under its name"
    );
    assert_eq!(
        std::fs::read(target.join("small.txt")).unwrap(),
        b"kept apart"
    );
}

/// One repository on two clusters (config sections with their own credentials); the first
/// cluster's proxy is killed while a restore reads from it: the restore carries on from the
/// second cluster and is exact, and the run says which storage failed (exit 4).
#[test]
fn swift_restore_falls_back_to_the_other_cluster_when_one_dies_mid_way() {
    let c1 = need!("1B");
    let c2 = need!("2");
    if std::env::var("RIME_TEST_SWIFT_SCRIPT").is_err() {
        println!("skipped: RIME_TEST_SWIFT_SCRIPT not set");
        return;
    }
    let _own = own_proxy_1b();
    let _restart = Restart;
    let r = SwiftRepo::new(&c1, String::new());
    let dir = r.tmp.path();
    let container = unique_container("fallback");
    let ini = dir.join("rime.ini");
    let section = |name: &str, c: &Cluster| {
        format!(
            "[storage:{name}]\nstorage = swift\ncontainer = {container}\nst_auth = {}\nst_user = {}\nst_key = {}\n",
            c.env[0].1, c.env[1].1, c.env[2].1
        )
    };
    write(&ini, section("first", &c1) + &section("second", &c2));
    let pw = os(&r.pw_file);
    let args = |extra: &[&OsStr]| {
        let mut all = vec![os("--config"), os(&ini), os("--password-file"), pw.clone()];
        all.extend(extra.iter().map(os));
        all
    };
    rime_raw(
        args(&[OsStr::new("init"), OsStr::new("--insecure-fast-kdf")]),
        &[],
    )
    .ok();
    let src = source_tree(dir, 8, 64 << 20);
    rime_raw(args(&[OsStr::new("backup"), src.as_os_str()]), &[]).ok();
    let target = dir.join("restored");
    let child = Command::new(rime_bin())
        .args(args(&[
            OsStr::new("restore"),
            OsStr::new("latest"),
            OsStr::new("--target"),
            target.as_os_str(),
        ]))
        .env_remove("ST_AUTH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    proxy_1b("stop-proxy");
    let out = child.wait_with_output().unwrap();
    proxy_1b("start-proxy");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let diffs = tree_differences(&src, &target, CompareOpts::default());
    assert!(diffs.is_empty(), "restore differs: {diffs:?}\n{stderr}");
    match out.status.code() {
        // The proxy went down while the restore still needed it.
        Some(4) => assert!(
            stderr.contains("storage") && stderr.contains("FAILED"),
            "{stderr}"
        ),
        // It finished before the proxy went down: nothing to fall back from.
        Some(0) => println!("the restore finished before the outage"),
        other => panic!("exit {other:?}: {stderr}"),
    }
}
