//! The command line itself: option placement, environment variables, JSON, --quiet, help.

use std::fs;

use crate::util::*;

#[test]
fn global_options_before_or_after_the_command() {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("f"), b"x");
    repo.backup(&[&src], &[]);
    let before = rime_raw(
        [
            os("--repo"),
            os(&repo.path),
            os("--password-file"),
            os(&repo.pw_file),
            os("--json"),
            os("snapshots"),
        ],
        &[],
    );
    before.ok();
    let after = rime_raw(
        [
            os("snapshots"),
            os("--repo"),
            os(&repo.path),
            os("--json"),
            os("--password-file"),
            os(&repo.pw_file),
        ],
        &[],
    );
    after.ok();
    assert_eq!(before.json(), after.json());
    assert_eq!(before.json().as_array().unwrap().len(), 1);
    let short = rime_raw(
        [
            os("-r"),
            os(&repo.path),
            os("snapshots"),
            os("-p"),
            os(&repo.pw_file),
        ],
        &[],
    );
    short.ok();
    assert!(short.stdout.contains("1 snapshot(s)"), "{}", short.stdout);
    // local:/path is a repository URL too.
    let url = format!("local:{}", repo.path.display());
    rime_raw(
        [
            os("--repo"),
            os(&url),
            os("--password-file"),
            os(&repo.pw_file),
            os("snapshots"),
        ],
        &[],
    )
    .ok();
}

#[test]
fn repository_and_password_from_the_environment() {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("f"), b"x");
    repo.backup(&[&src], &[]);
    let r = repo.path.as_os_str();
    let pf = repo.pw_file.as_os_str();
    let pw = std::ffi::OsStr::new(PASSWORD);

    rime_raw(
        ["snapshots"],
        &[("RIME_REPO", r), ("RIME_PASSWORD_FILE", pf)],
    )
    .ok();
    rime_raw(["snapshots"], &[("RIME_REPO", r), ("RIME_PASSWORD", pw)]).ok();
    // --repo wins over RIME_REPO.
    let elsewhere = repo.tmp.path().join("not-a-repo");
    rime_raw(
        [os("--repo"), os(r), os("snapshots")],
        &[("RIME_REPO", elsewhere.as_os_str()), ("RIME_PASSWORD", pw)],
    )
    .ok();
    // A wrong password from the environment.
    let wrong = std::ffi::OsStr::new("wrong");
    rime_raw(["snapshots"], &[("RIME_REPO", r), ("RIME_PASSWORD", wrong)])
        .code(12)
        .error_names(&["wrong password"]);
    // No password at all, stdin not a terminal: a clear error, no prompt.
    rime_raw(["snapshots"], &[("RIME_REPO", r)])
        .code(1)
        .error_names(&["no password", "RIME_PASSWORD"]);
    // No repository at all.
    rime_raw(["snapshots"], &[("RIME_PASSWORD", pw)])
        .failed()
        .error_names(&["no repository", "RIME_REPO"]);
    // An empty password file.
    let empty = repo.tmp.path().join("empty-pw");
    fs::write(&empty, "\n").unwrap();
    rime_raw(
        [
            os("--repo"),
            os(r),
            os("--password-file"),
            os(&empty),
            os("snapshots"),
        ],
        &[],
    )
    .error_names(&["empty-pw", "empty"]);
    // A missing password file.
    let missing = repo.tmp.path().join("missing-pw");
    rime_raw(
        [
            os("--repo"),
            os(r),
            os("--password-file"),
            os(&missing),
            os("snapshots"),
        ],
        &[],
    )
    .error_names(&["missing-pw"]);
    // init from the environment.
    let r2 = repo.tmp.path().join("repo2");
    rime_raw(
        ["init", "--insecure-fast-kdf"],
        &[("RIME_REPO", r2.as_os_str()), ("RIME_PASSWORD", pw)],
    )
    .ok();
    rime_raw(
        [
            os("--repo"),
            os(&r2),
            os("--password-file"),
            os(pf),
            os("snapshots"),
        ],
        &[],
    )
    .ok();
}

#[test]
fn json_outputs_have_the_documented_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("repo");
    let pw = tmp.path().join("pw");
    fs::write(&pw, PASSWORD).unwrap();
    let out = rime_raw(
        [
            os("--repo"),
            os(&path),
            os("--password-file"),
            os(&pw),
            os("init"),
            os("--insecure-fast-kdf"),
            os("--json"),
        ],
        &[],
    );
    out.ok();
    let v = out.json();
    assert!(
        v["id"].is_string() && v["repository"].is_string() && v["encryption"].is_string(),
        "{v}"
    );
    let repo = Repo {
        tmp,
        path,
        pw_file: pw,
    };

    let src = repo.dir("src");
    write(&src.join("f"), random_bytes(1, 1000));
    let b = repo.backup(&[&src], &["--tag", "t"]);
    for k in ["id", "short_id", "time", "stats", "warnings"] {
        assert!(!b[k].is_null(), "backup --json lacks {k}: {b}");
    }
    assert_eq!(b["id"].as_str().unwrap().len(), 64);
    assert!(b["id"]
        .as_str()
        .unwrap()
        .starts_with(b["short_id"].as_str().unwrap()));
    for k in [
        "files",
        "dirs",
        "others",
        "files_read",
        "bytes_read",
        "bytes_total",
        "bytes_added",
        "chunks_new",
        "chunks_reused",
        "trees_new",
        "unreadable",
        "duration_ms",
    ] {
        assert!(b["stats"][k].is_u64(), "backup --json stats lacks {k}: {b}");
    }
    assert_eq!(b["stats"]["files"], 1);
    assert_eq!(b["stats"]["bytes_total"], 1000);
    assert_eq!(b["warnings"], serde_json::json!([]));

    let snaps = repo.snapshots();
    let s = &snaps[0];
    for k in [
        "id", "short_id", "time", "hostname", "name", "username", "tags", "paths", "parent",
        "program", "stats",
    ] {
        assert!(s.get(k).is_some(), "snapshots --json lacks {k}: {s}");
    }
    assert_eq!(s["id"], b["id"]);
    assert!(s["program"].as_str().unwrap().starts_with("rime "));

    let t = repo.fresh("t");
    let out = repo.run(&[
        os("restore"),
        os("latest"),
        os("--target"),
        os(&t),
        os("--json"),
    ]);
    out.ok();
    let r = out.json();
    assert_eq!(r["snapshot"], b["id"]);
    assert_eq!(r["files"], 1);
    assert_eq!(r["bytes"], 1000);

    let out = repo.run(&["check", "--json"]);
    out.ok();
    let c = out.json();
    assert_eq!(c["ok"], true);
    assert_eq!(c["errors"], serde_json::json!([]));
    assert_eq!(c["snapshots"], 1);
    let out = repo.run(&["check", "--read-data", "--json"]);
    out.ok();
    assert!(out.json()["blobs_checked"].as_u64().unwrap() >= 2);

    let out = repo.run(&["stats", "--json"]);
    out.ok();
    let st = out.json();
    assert_eq!(st["snapshots"], 1, "{st}");
}

#[test]
fn quiet_prints_nothing_and_check_is_zero_on_a_good_repository() {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("f"), b"x");
    let out = repo.run(&[os("--quiet"), os("backup"), os(&src)]);
    out.ok();
    assert_eq!(out.stdout, "", "--quiet backup printed on stdout");
    assert_eq!(out.stderr, "", "--quiet backup printed on stderr");
    let out = repo.run(&[os("backup"), os(&src), os("-q")]);
    out.ok();
    assert_eq!(out.stdout, "");
    // Without --quiet there is a summary line.
    let out = repo.run(&[os("backup"), os(&src)]);
    out.ok();
    assert!(out.stdout.starts_with("snapshot "), "{}", out.stdout);

    let out = repo.run(&["check"]);
    out.ok();
    assert!(out.stdout.contains("no errors"), "{}", out.stdout);
    repo.run(&["check", "--read-data"]).ok();
    let t = repo.fresh("t");
    let out = repo.run(&[os("-q"), os("restore"), os("--target"), os(&t)]);
    out.ok();
    assert_eq!(out.stdout, "");
}

#[test]
fn help_mentions_exit_codes_and_bad_usage_exits_2() {
    let out = rime_raw(["--help"], &[]);
    out.ok();
    assert!(out.stdout.contains("Exit codes"), "{}", out.stdout);
    for code in ["0", "1", "2", "3", "10", "11", "12"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{code} "))),
            "exit code {code} not documented"
        );
    }
    assert!(!out.stdout.contains("insecure-fast-kdf"));
    let out = rime_raw(["init", "--help"], &[]);
    assert!(
        !out.stdout.contains("insecure"),
        "the test-only KDF flag is hidden"
    );
    rime_raw(["no-such-command"], &[]).code(2);
    rime_raw(["backup"], &[]).code(2);
    rime_raw(["restore", "--bogus"], &[]).code(2);
    let out = rime_raw(["--version"], &[]);
    out.ok();
    assert!(out.stdout.starts_with("rime "));
}

/// Dry runs say so: a stream backup's summary and `init` do not claim to have saved or
/// created anything, and their JSON carries `dry_run`.
#[test]
fn dry_run_summaries_do_not_claim_anything_was_written() {
    let r = Repo::new();
    let o = r.run(&[
        "--dry-run",
        "backup",
        "--name",
        "db",
        "--stdin-from-command",
        "head -c 300000 /dev/zero",
    ]);
    o.ok();
    assert!(o.stdout.contains("not saved (dry run)"), "{}", o.stdout);
    assert!(!o.stdout.contains(" saved:"), "{}", o.stdout);
    let o = r.run(&[
        "--dry-run",
        "--json",
        "backup",
        "--name",
        "db",
        "--stdin-from-command",
        "head -c 300000 /dev/zero",
    ]);
    o.ok();
    assert_eq!(o.json()["dry_run"], true, "{}", o.stdout);
    let fresh = r.dir("fresh");
    let o = rime_raw(
        [
            "--repo",
            fresh.join("repo").to_str().unwrap(),
            "--password-file",
            r.pw_file.to_str().unwrap(),
            "--dry-run",
            "init",
        ],
        &[],
    );
    o.ok();
    assert!(o.stdout.contains("would create (dry run)"), "{}", o.stdout);
    assert!(!fresh.join("repo").join("config").exists());
}
