//! Backups written by Freezer's real pipeline (GNU tar `--listed-incremental`, gzip/bzip2/xz,
//! `openssl enc -aes-256-cfb` with either key derivation digest; see `freezer_fixture.rs`),
//! read by rime: listed, restored as of every date (compared with the source as it was then,
//! deletions included), refused with a wrong key or damaged data, and imported as rime
//! snapshots that `rime restore` brings back identical. Local containers always; SFTP and
//! Swift when their test services run.

use std::path::Path;

use rime_engine::freezer::legacy::{self, Container, LocalContainer};
use rime_engine::ErrorKind;

use crate::agent::local_date;
use crate::freezer_fixture::*;
use crate::util::*;

const PASS: &[u8] = b"s3cret passphrase";

fn restore_at(
    c: &dyn Container,
    f: &Fixture,
    until: i64,
    pass: Option<&[u8]>,
    target: &Path,
) -> rime_engine::Result<legacy::RestoreReport> {
    legacy::restore(
        c,
        f.spec.host,
        f.spec.name,
        Some(until),
        pass,
        target,
        false,
    )
}

/// Restore as of each backup's time (and a moment later) and compare with the source then.
fn check_every_date(c: &dyn Container, f: &Fixture, pass: Option<&[u8]>) {
    for (i, m) in f.made.iter().enumerate() {
        for until in [m.ts, m.ts + 500] {
            let target = f.tmp.path().join(format!("restore-{i}-{until}"));
            let r = restore_at(c, f, until, pass, &target)
                .unwrap_or_else(|e| panic!("restore as of backup {i} ({until}): {e}"));
            assert_eq!(r.chain.last().unwrap().timestamp, m.ts);
            assert_eq!(r.chain.len() as u32, m.level + 1);
            compare_trees(&m.state, &target);
            std::fs::remove_dir_all(&target).unwrap();
        }
    }
}

#[test]
fn freezer_list_and_restore_every_date_gzip() {
    let mut spec = Spec::new("gzip", None);
    spec.levels = vec![0, 1, 2, 0, 1];
    let f = Fixture::build(spec);
    let c = LocalContainer::new(&f.container);
    let all = legacy::list(&c).unwrap();
    assert_eq!(all.len(), 5);
    for (i, (b, m)) in all.iter().zip(&f.made).enumerate() {
        assert_eq!((b.host.as_str(), b.name.as_str()), ("web1", "etc_files"));
        assert_eq!(
            (b.level, b.timestamp, b.level_zero),
            (m.level, m.ts, m.level_zero)
        );
        assert_eq!(b.compression.map(|c| c.name()), Some("gzip"));
        assert!(!b.encrypted);
        assert_eq!(b.size, std::fs::metadata(f.data(i)).unwrap().len());
    }
    check_every_date(&c, &f, None);
    // Deletions really happened: level 1 removed these, level 2 brought olddir back.
    let t = f.tmp.path().join("check-deletions");
    restore_at(&c, &f, f.made[1].ts, None, &t).unwrap();
    assert!(!t.join("gone-later.txt").exists() && !t.join("olddir").exists());
    assert!(t.join("new/added.txt").is_file());

    // The command line lists the same.
    let out = rime_raw(
        [
            os("import-freezer"),
            os("--list"),
            os("--json"),
            os("--from"),
            os(&f.container),
        ],
        &[],
    );
    out.ok();
    let v = out.json();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[2]["level"], 2);
    assert_eq!(rows[2]["timestamp"], f.made[2].ts);
    assert_eq!(rows[2]["compression"], "gzip");
    // Two chains imported: the second level 0 starts a fresh replay.
    import_and_check(&f.container.to_string_lossy(), &f, &[], &[]);
}

/// GNU tar in POSIX format (`TAR_OPTIONS=--format=posix`; Freezer passes no `--format`) keeps
/// each directory's listing in a `GNU.dumpdir` pax record of a plain directory member. The
/// deletions it records are applied, on restore and on import, as GNU tar applies them.
#[test]
fn freezer_posix_format_levels_restore_with_deletions() {
    let mut spec = Spec::new("gzip", None);
    spec.tar_options = "--format=posix";
    let f = Fixture::build(spec);
    let level1 = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(f.data(1))
        .output()
        .unwrap()
        .stdout;
    assert!(
        level1.windows(11).any(|w| w == b"GNU.dumpdir"),
        "not a POSIX-format incremental archive"
    );
    let c = LocalContainer::new(&f.container);
    check_every_date(&c, &f, None);
    // GNU tar's own extraction of levels 0 and 1 gives the tree rime restores.
    let gnu = f.tmp.path().join("gnu-extract");
    mkdir(&gnu);
    for i in 0..2 {
        let st = std::process::Command::new("tar")
            .args(["--extract", "-z", "--incremental", "-f"])
            .arg(f.data(i))
            .arg("-C")
            .arg(&gnu)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let t = f.tmp.path().join("rime-level-1");
    restore_at(&c, &f, f.made[1].ts, None, &t).unwrap();
    assert!(!t.join("gone-later.txt").exists() && !t.join("olddir").exists());
    compare_trees(&gnu, &t);
    import_and_check(&f.container.to_string_lossy(), &f, &[], &[]);
}

#[test]
fn freezer_always_level_differentials_resolved_by_time() {
    // --always-level 1: every backup after the first is a differential against level 0, so
    // level 1 appears three times in one chain; each date must get its own.
    let mut spec = Spec::new("xz", None);
    spec.levels = vec![0, 1, 1, 1];
    let f = Fixture::build(spec);
    let c = LocalContainer::new(&f.container);
    assert_eq!(legacy::list(&c).unwrap().len(), 4);
    check_every_date(&c, &f, None);
}

#[test]
fn freezer_bzip2_xz_and_both_key_derivations() {
    for (comp, kdf) in [
        ("bzip2", Some(Kdf::Md5)),
        ("xz", Some(Kdf::Sha256)),
        ("gzip", Some(Kdf::Md5)),
        ("xz", None),
    ] {
        let f = Fixture::build(Spec::new(comp, kdf));
        let c = LocalContainer::new(&f.container);
        let all = legacy::list(&c).unwrap();
        assert_eq!(all.len(), 3, "{comp} {kdf:?}");
        assert!(all.iter().all(|b| b.encrypted == kdf.is_some()));
        assert!(all
            .iter()
            .all(|b| b.compression.map(|c| c.name()) == Some(comp)));
        let pass = kdf.map(|_| PASS);
        check_every_date(&c, &f, pass);
    }
}

#[test]
fn freezer_wrong_or_missing_key_writes_nothing() {
    let f = Fixture::build(Spec::new("gzip", Some(Kdf::Sha256)));
    let c = LocalContainer::new(&f.container);
    // A target holding a file, restored with --overwrite: must stay exactly as it was.
    let target = f.tmp.path().join("target");
    write(&target.join("precious"), b"do not touch");
    for pass in [Some(&b"wrong password"[..]), None] {
        let e = legacy::restore(&c, "web1", "etc_files", None, pass, &target, true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WrongPassword, "{e}");
        assert_eq!(
            walk(&target).len(),
            2,
            "target changed: {:?}",
            walk(&target)
        );
        assert_eq!(
            std::fs::read(target.join("precious")).unwrap(),
            b"do not touch"
        );
    }
    // An empty target is not created either.
    let fresh = f.tmp.path().join("fresh");
    assert!(restore_at(&c, &f, f.made[2].ts, Some(b"nope"), &fresh).is_err());
    assert!(!fresh.exists());
    // A non-empty target without overwrite is refused.
    let e = legacy::restore(&c, "web1", "etc_files", None, Some(PASS), &target, false).unwrap_err();
    assert!(e.to_string().contains("not empty"), "{e}");
}

#[test]
fn freezer_restore_date_before_first_backup_fails() {
    let f = Fixture::build(Spec::new("gzip", None));
    let c = LocalContainer::new(&f.container);
    let target = f.tmp.path().join("t");
    let e = restore_at(&c, &f, T0 - 1, None, &target).unwrap_err();
    assert!(
        e.to_string().contains("first one is from"),
        "unexpected error: {e}"
    );
    assert!(!target.exists());
    let e = legacy::restore(&c, "web1", "other", None, None, &target, false).unwrap_err();
    assert!(e.to_string().contains("web1_etc_files"), "{e}");
}

#[test]
fn freezer_corrupted_or_truncated_data_names_the_object() {
    let f = Fixture::build(Spec::new("gzip", None));
    let c = LocalContainer::new(&f.container);
    // Damage the middle of level 1, cut the end off level 2.
    let d1 = f.data(1);
    let mut bytes = std::fs::read(&d1).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&d1, bytes).unwrap();
    let d2 = f.data(2);
    let bytes = std::fs::read(&d2).unwrap();
    std::fs::write(&d2, &bytes[..bytes.len() - 40]).unwrap();
    let lvl1 = format!("1_{}", f.made[1].ts);
    let lvl2 = format!("2_{}", f.made[2].ts);
    let t = f.tmp.path().join("t1");
    let e = restore_at(&c, &f, f.made[1].ts, None, &t).unwrap_err();
    assert!(e.to_string().contains(&lvl1), "{e}");
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    // A local container has no checksum of its own: the error says what that means.
    assert!(
        e.to_string()
            .contains("files already restored from level 1 were not verified"),
        "{e}"
    );
    let t = f.tmp.path().join("t2");
    let e = restore_at(&c, &f, f.made[2].ts, None, &t).unwrap_err();
    assert!(
        e.to_string().contains(&lvl1) || e.to_string().contains(&lvl2),
        "{e}"
    );
    // Level 0 alone is intact.
    let t = f.tmp.path().join("t0");
    restore_at(&c, &f, f.made[0].ts, None, &t).unwrap();
    compare_trees(&f.made[0].state, &t);
    // Only level 2 truncated: the error names level 2's object.
    let g = Fixture::build(Spec::new("xz", Some(Kdf::Md5)));
    let d2 = g.data(2);
    let bytes = std::fs::read(&d2).unwrap();
    std::fs::write(&d2, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let c = LocalContainer::new(&g.container);
    let t = g.tmp.path().join("t");
    let e = restore_at(&c, &g, g.made[2].ts, Some(PASS), &t).unwrap_err();
    assert!(
        e.to_string().contains(&format!("2_{}", g.made[2].ts)),
        "{e}"
    );
    assert!(e.to_string().contains("/data"), "{e}");
}

/// Import into a fresh repository, restore every imported snapshot with `rime restore`, and
/// import again (nothing new).
fn import_and_check(from: &str, f: &Fixture, env: &[(&str, &std::ffi::OsStr)], extra: &[&str]) {
    let repo = Repo::new();
    let mut args = f.import_args(&repo, from);
    args.extend(extra.iter().map(os));
    let out = rime_raw(args.clone(), env);
    out.ok();
    assert_eq!(out.json()["imported"], f.made.len());
    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), f.made.len());
    for (s, m) in snaps.iter().zip(&f.made) {
        assert_eq!(s["hostname"], f.spec.host, "{s}");
        let tags: Vec<String> = s["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        assert!(
            tags.contains(&format!("freezer-level={}", m.level)),
            "{tags:?}"
        );
        let id = s["id"].as_str().unwrap();
        let target = repo.fresh(&format!("restored-{}", m.ts));
        repo.restore(id, &target, &[]);
        compare_trees(&m.state, &target);
    }
    // Again: nothing to do.
    let out = rime_raw(args, env);
    out.ok();
    assert_eq!(out.json()["imported"], 0);
    assert_eq!(out.json()["already_imported"], f.made.len());
    assert_eq!(repo.snapshots().len(), f.made.len());
}

#[test]
fn freezer_import_then_rime_restore_equals_sources() {
    let f = Fixture::build(Spec::new("bzip2", Some(Kdf::Md5)));
    import_and_check(&f.container.to_string_lossy(), &f, &[], &[]);
    // Snapshot times are Freezer's.
    let repo = Repo::new();
    let out = repo.run(&[
        os("import-freezer"),
        os("--from"),
        os(&f.container),
        os("--pass-file"),
        os(&f.key),
        os("--host"),
        os("web1"),
        os("--name"),
        os("etc_files"),
    ]);
    out.ok();
    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 3);
    assert!(
        snaps[0]["time"].as_str().unwrap().starts_with("2023-11-14"),
        "{}",
        snaps[0]
    );
    // Without the key: a clear error, nothing imported.
    let repo = Repo::new();
    repo.run(&[os("import-freezer"), os("--from"), os(&f.container)])
        .failed()
        .error_names(&["encrypted"]);
    assert!(repo.snapshots().is_empty());
    // A selection that matches nothing is an error.
    repo.run(&[
        os("import-freezer"),
        os("--from"),
        os(&f.container),
        os("--host"),
        os("nohost"),
    ])
    .failed()
    .error_names(&["nohost"]);
}

// ------------------------------------------------------------------------------------------
// SFTP (tests/services/sshd.sh: root on this machine, so the local fixture is the server's too)

#[test]
fn freezer_over_sftp_list_restore_import() {
    let Some(s) = SshServer::from_env() else {
        return;
    };
    let f = Fixture::build(Spec::new("xz", Some(Kdf::Sha256)));
    let url = format!("{}{}", s.url_base(), f.container.display());
    let opts = legacy::ContainerOptions {
        sftp: rime_engine::storage::sftp::SftpOptions {
            key: Some(s.key.clone()),
            config: Some(s.config.clone()),
            ..Default::default()
        },
        swift: None,
    };
    let c = legacy::open_container(&url, &opts).unwrap();
    let all = legacy::list(c.as_ref()).unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|b| b.encrypted));
    check_every_date(c.as_ref(), &f, Some(PASS));
    import_and_check(
        &url,
        &f,
        &[],
        &[
            "--ssh-key",
            &s.key.to_string_lossy(),
            "--ssh-config",
            &s.config.to_string_lossy(),
        ],
    );
}

// ------------------------------------------------------------------------------------------
// Swift (tests/services/swift.sh): segments and a DLO manifest, as Freezer's Swift storage

fn swift_env() -> Option<Vec<(String, String)>> {
    let v = |k: &str| std::env::var(format!("RIME_TEST_SWIFT1_{k}")).ok();
    match (v("AUTH"), v("USER"), v("KEY")) {
        (Some(a), Some(u), Some(k)) => Some(vec![
            ("ST_AUTH".into(), a),
            ("ST_USER".into(), u),
            ("ST_KEY".into(), k),
        ]),
        _ => {
            eprintln!("skipped: RIME_TEST_SWIFT1_AUTH not set (start tests/services/swift.sh)");
            None
        }
    }
}

fn swift_container(env: &[(String, String)], name: &str) -> Box<dyn Container> {
    let map = env
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    let creds = rime_engine::storage::SwiftCredentials::from_map(&map).unwrap();
    legacy::open_container(
        &format!("swift://{name}"),
        &legacy::ContainerOptions {
            swift: Some(creds),
            ..Default::default()
        },
    )
    .unwrap()
}

fn unique(tag: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("freezer_{tag}_{}_{}", std::process::id(), t.subsec_nanos())
}

#[test]
fn freezer_on_swift_segments_and_manifest() {
    let Some(env) = swift_env() else { return };
    let f = Fixture::build(Spec::new("gzip", Some(Kdf::Md5)));
    let name = unique("ok");
    f.upload_swift(&env, &name, 4096);
    let c = swift_container(&env, &name);
    let all = legacy::list(c.as_ref()).unwrap();
    assert_eq!(all.len(), 3);
    assert!(
        all[0].data.len() > 3,
        "level 0 should be in several segments"
    );
    assert_eq!(all[0].size, std::fs::metadata(f.data(0)).unwrap().len());
    check_every_date(c.as_ref(), &f, Some(PASS));
    let envs: Vec<(&str, &std::ffi::OsStr)> = env
        .iter()
        .map(|(k, v)| (k.as_str(), std::ffi::OsStr::new(v.as_str())))
        .collect();
    import_and_check(&format!("swift://{name}"), &f, &envs, &[]);
}

#[test]
fn freezer_on_swift_missing_or_short_segment_is_named() {
    let Some(env) = swift_env() else { return };
    let f = Fixture::build(Spec::new("gzip", None));
    // Level 1 with segment 00000001 cut short, level 2 with segment 00000001 gone.
    let name = unique("bad");
    f.upload_swift(&env, &name, 2048);
    let c = swift_container(&env, &name);
    let all = legacy::list(c.as_ref()).unwrap();
    let seg = |i: usize| all[i].data[1].path.clone();
    let curl = |method: &str, obj: &str, body: Option<&[u8]>| {
        let (url, token) = swift_v1_auth(&env);
        let tmp = f.tmp.path().join("body");
        std::fs::write(&tmp, body.unwrap_or_default()).unwrap();
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-sS", "-f", "-X", method, "-H"])
            .arg(format!("X-Auth-Token: {token}"));
        if body.is_some() {
            cmd.arg("--data-binary").arg(format!("@{}", tmp.display()));
        }
        let st = cmd.arg(format!("{url}/{name}/{obj}")).status().unwrap();
        assert!(st.success(), "{method} {obj}");
    };
    curl("PUT", &seg(1), Some(&[1u8; 100]));
    curl("DELETE", &seg(2), None);
    let t = f.tmp.path().join("t1");
    let e = restore_at(c.as_ref(), &f, f.made[1].ts, None, &t).unwrap_err();
    assert!(e.to_string().contains(&seg(1)), "{e}");
    assert!(!t.exists(), "nothing may be written before the check");
    // Level 1 repaired: level 2's chain now stops at its own missing segment.
    let orig = std::fs::read(f.data(1)).unwrap();
    curl("PUT", &seg(1), Some(&orig[2048..4096]));
    let t = f.tmp.path().join("t2");
    let e = restore_at(c.as_ref(), &f, f.made[2].ts, None, &t).unwrap_err();
    assert!(e.to_string().contains(&seg(2)), "{e}");
    assert!(!t.exists(), "nothing may be written before the check");
    let t = f.tmp.path().join("t1-ok");
    restore_at(c.as_ref(), &f, f.made[1].ts, None, &t).unwrap();
    compare_trees(&f.made[1].state, &t);
    // Level 0 is fine.
    let t = f.tmp.path().join("t0");
    restore_at(c.as_ref(), &f, f.made[0].ts, None, &t).unwrap();
    compare_trees(&f.made[0].state, &t);
}

/// A segment damaged at rest (bit rot on the object server's disk: Swift serves the bytes with
/// the ETag it recorded at upload) is found by its MD5 and named, before the decoder sees any
/// of it: nothing of that level is written.
#[test]
fn freezer_on_swift_segment_damaged_at_rest_is_named_by_its_md5() {
    let Some(env) = swift_env() else { return };
    let Ok(state) = std::env::var("RIME_TEST_SWIFT_STATE") else {
        eprintln!("skipped: RIME_TEST_SWIFT_STATE not set");
        return;
    };
    // Uncompressed-looking damage would pass gzip's own checks only at the end of the stream;
    // the MD5 must catch it first.
    let f = Fixture::build(Spec::new("gzip", None));
    let name = unique("rot");
    f.upload_swift(&env, &name, 2048);
    let c = swift_container(&env, &name);
    let all = legacy::list(c.as_ref()).unwrap();
    let seg = all[1].data[1].clone();
    assert!(seg.md5.is_some(), "Swift lists each segment's MD5");
    let level1 = std::fs::read(f.data(1)).unwrap();
    let want = &level1[2048..4096];
    // Find the object server's file holding that segment and flip bytes in place.
    let mut hit = 0;
    for (p, meta) in swift_object_files(&state) {
        // Another test may store the same fixture bytes: only this container's object.
        if meta.windows(name.len()).any(|w| w == name.as_bytes())
            && std::fs::read(&p).is_ok_and(|b| b == want)
        {
            let mut b = want.to_vec();
            for x in &mut b[1000..1010] {
                *x ^= 0x20;
            }
            std::fs::write(&p, b).unwrap();
            hit += 1;
        }
    }
    assert_eq!(hit, 1, "the segment's file on the object server");
    let t = f.tmp.path().join("t1");
    let e = restore_at(c.as_ref(), &f, f.made[1].ts, None, &t).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert!(e.to_string().contains(&seg.path), "{e}");
    assert!(e.to_string().contains("MD5"), "{e}");
    // Every regular file restored holds its content at level 0 or at level 1: the damaged
    // bytes reached no file.
    let mut files = 0;
    let mut stack = vec![t.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                let rel = p.strip_prefix(&t).unwrap();
                let got = std::fs::read(&p).unwrap();
                if let Some(real) = rel.to_str().unwrap().strip_suffix(".rime-incomplete") {
                    // A file the damaged segment interrupted: set aside with what came before.
                    let whole = std::fs::read(f.made[1].state.join(real)).unwrap();
                    assert!(
                        whole.starts_with(&got),
                        "{real}: set aside with wrong bytes"
                    );
                    assert!(!t.join(real).exists(), "{real} left under its name");
                    continue;
                }
                let was = |i: usize| std::fs::read(f.made[i].state.join(rel)).ok();
                assert!(
                    was(0).as_ref() == Some(&got) || was(1).as_ref() == Some(&got),
                    "{} holds content of neither level",
                    rel.display()
                );
                files += 1;
            }
        }
    }
    assert!(files > 0, "level 0 was restored before level 1 failed");
}

/// `rime agent` on a container where Freezer left its own backups: `info` lists them (no rime
/// repository needed), `restore` replays them, and once rime's own tar levels are added beside
/// them, the newest backup at or before the date wins, whoever wrote it.
#[test]
fn agent_info_and_restore_see_freezer_backups_beside_its_own() {
    let f = Fixture::build(Spec::new("gzip", Some(Kdf::Sha256)));
    let agent = |extra: &[&str]| f.agent_as_its_job(extra);
    let levels = |o: &Out| -> Vec<(String, u64)> {
        o.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["kind"].as_str().unwrap().to_string(),
                    r["level"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    // Only Freezer's backups so far.
    let o = agent(&["--action", "info", "--json"]);
    o.ok();
    let freezer = |l: u64| ("freezer-tar".to_string(), l);
    assert_eq!(levels(&o), vec![freezer(0), freezer(1), freezer(2)]);
    let newest = f.tmp.path().join("r-newest");
    agent(&[
        "--action",
        "restore",
        "--restore-abs-path",
        newest.to_str().unwrap(),
    ])
    .ok();
    compare_trees(&f.made[2].state, &newest);
    // rime's own backup of a new tree, after Freezer's.
    let src = f.tmp.path().join("rime-src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    write_random_file(&src.join("d/new"), 9, 50_000);
    whole_second_mtimes(&src); // tar headers keep whole seconds
    agent(&["--path-to-backup", src.to_str().unwrap()]).ok();
    let o = agent(&["--action", "info", "--json"]);
    o.ok();
    let l = levels(&o);
    assert_eq!(l.len(), 4, "{l:?}");
    assert_eq!(&l[..3], &[freezer(0), freezer(1), freezer(2)]);
    assert_ne!(l[3].0, "freezer-tar");
    // The newest is rime's; a date within Freezer's history gets Freezer's chain.
    let now = f.tmp.path().join("r-now");
    agent(&[
        "--action",
        "restore",
        "--restore-abs-path",
        now.to_str().unwrap(),
    ])
    .ok();
    compare_trees(&src, &now);
    let then = f.tmp.path().join("r-then");
    agent(&[
        "--action",
        "restore",
        "--restore-abs-path",
        then.to_str().unwrap(),
        "--restore-from-date",
        &local_date(f.made[1].ts + 10),
    ])
    .ok();
    compare_trees(&f.made[1].state, &then);
}

/// A restore from a container with only Freezer's backups (no rime repository) reports
/// Freezer's reason when nothing matches (a date before the first backup, an unknown name),
/// and a container that cannot be listed by its listing error, not "no repository".
#[test]
fn agent_restore_without_repository_reports_the_freezer_side_error() {
    let f = Fixture::build(Spec::new("gzip", Some(Kdf::Sha256)));
    let target = f.tmp.path().join("never");
    let agent = |extra: &[&str]| {
        let mut args = vec![
            "--action",
            "restore",
            "--hostname",
            f.spec.host,
            "--restore-abs-path",
            target.to_str().unwrap(),
        ];
        args.extend(extra);
        f.agent(&args)
    };
    let before = local_date(T0 - 3600);
    let o = agent(&["-N", f.spec.name, "--restore-from-date", &before]);
    o.error_names(&["at or before", "the first one is from"]);
    assert!(!o.stderr.contains("rime init"), "{}", o.stderr);
    let o = agent(&["-N", "unknown"]);
    o.error_names(&["web1_unknown", "web1_etc_files"]);
    assert!(!o.stderr.contains("rime init"), "{}", o.stderr);
    assert!(!target.exists(), "nothing written");
    if !is_root() {
        let tree = f.container.join("metadata/tar");
        chmod(&tree, 0o000);
        let o = agent(&["-N", f.spec.name]);
        chmod(&tree, 0o755);
        o.error_names(&["cannot list"]);
        assert!(!o.stderr.contains("rime init"), "{}", o.stderr);
    }
}

/// `--dry-run` restores of Freezer backups check what the restore checks before writing: it
/// succeeds (writing nothing) on an intact chain, and fails naming a short level or a wrong
/// pass file.
#[test]
fn agent_dry_run_restore_of_freezer_backups_checks_the_chain() {
    let f = Fixture::build(Spec::new("gzip", Some(Kdf::Sha256)));
    let target = f.tmp.path().join("never");
    let wrong = f.tmp.path().join("wrong-pass");
    write(&wrong, b"not it\n");
    let agent = |pass: &Path| {
        f.agent_with_pass(
            pass,
            &[
                "--action",
                "restore",
                "--dry-run",
                "--hostname",
                f.spec.host,
                "-N",
                f.spec.name,
                "--restore-abs-path",
                target.to_str().unwrap(),
            ],
        )
    };
    let o = agent(&f.key);
    o.ok();
    assert!(o.stderr.contains("3 level(s)"), "{}", o.stderr);
    agent(&wrong).error_names(&["password"]);
    let d2 = f.data(2);
    let bytes = std::fs::read(&d2).unwrap();
    std::fs::write(&d2, &bytes[..bytes.len() / 2]).unwrap();
    agent(&f.key).error_names(&[&format!("2_{}", f.made[2].ts)]);
    assert!(!target.exists(), "a dry run writes nothing");
}

/// `--action admin` removes rime's old backups but not Freezer's own: it says which of those
/// are older than the cutoff and were left (even with -q), and they stay readable.
#[test]
fn agent_admin_names_the_freezer_backups_it_leaves() {
    let f = Fixture::build(Spec::new("gzip", Some(Kdf::Sha256)));
    let agent = |extra: &[&str]| f.agent_as_its_job(extra);
    let src = f.tmp.path().join("rime-src");
    mkdir(&src);
    write_random_file(&src.join("f"), 3, 10_000);
    agent(&["--path-to-backup", src.to_str().unwrap()]).ok();
    let o = agent(&["--action", "admin", "--remove-older-than", "1", "-q"]);
    o.ok();
    let chain = format!("data/tar/{}/{}", f.hn(), f.made[0].level_zero);
    assert!(
        o.stderr.contains("3 backup(s) written by Freezer itself") && o.stderr.contains(&chain),
        "{}",
        o.stderr
    );
    let o = agent(&["--action", "info", "--json"]);
    o.ok();
    let kinds: Vec<String> = o
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "freezer-tar").count(), 3);
}
