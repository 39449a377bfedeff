//! `rime agent` where a job meets its surroundings: Freezer's scheduler parsing the whole of
//! stdout as the metadata JSON, restores that choose between tar chains and `--engine rime`
//! snapshots, partial backups of unreadable trees, dates copied from `info` (UTC) or given with
//! an offset, and `-F` naming a symbolic link to a file.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::agent::{local_date, metadata_level, next_second, Job};
use crate::util::*;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `--metadata-out -` (how the scheduler runs the agent, without -q): stdout is the metadata
/// document and nothing else, for both engines, with and without `--dry-run`.
#[test]
fn agent_metadata_on_stdout_is_the_only_thing_there() {
    let j = Job::new();
    write(&j.src().join("f"), "data\n");
    let src = j.src().display().to_string();
    for engine in ["tar", "rime"] {
        for dry in [true, false] {
            let mut args = vec![
                "--path-to-backup",
                &src,
                "--engine",
                engine,
                "--metadata-out",
                "-",
            ];
            if dry {
                args.push("--dry-run");
            }
            let o = j.run(&args);
            o.ok();
            let doc: Value = serde_json::from_str(&o.stdout).unwrap_or_else(|e| {
                panic!(
                    "--engine {engine} dry run {dry}: stdout is not one JSON document ({e}):\n{}",
                    o.stdout
                )
            });
            assert_eq!(doc["action"], "backup", "{doc}");
            assert_eq!(doc["engine_name"], engine, "{doc}");
            assert!(!o.stderr.is_empty(), "the messages went to stderr");
        }
    }
}

/// Without `--engine`, a restore takes the newest restore point at or before the date, be it
/// a tar level or a snapshot of `--engine rime` (a job that changed engines).
#[test]
fn agent_restore_takes_the_newest_of_tar_levels_and_rime_snapshots() {
    let j = Job::new();
    let f = j.src().join("f");
    write(&f, "tar level 0\n");
    j.backup(&[]);
    next_second();
    write(&f, "rime snapshot\n");
    let rime_time = j.backup(&["--engine", "rime"])["time_stamp"]
        .as_i64()
        .unwrap();
    next_second();
    let newest = j.p("newest");
    j.restore(&newest, &[]).ok();
    assert_eq!(read(&newest.join("f")), "rime snapshot\n");
    // A tar level after it wins in turn; at the snapshot's date, the snapshot.
    write(&f, "tar level 1\n");
    assert_eq!(j.backup(&[])["curr_backup_level"], 1);
    let newest = j.p("newest-tar");
    j.restore(&newest, &[]).ok();
    assert_eq!(read(&newest.join("f")), "tar level 1\n");
    let then = j.p("then");
    j.restore(&then, &["--restore-from-date", &local_date(rime_time)])
        .ok();
    assert_eq!(read(&then.join("f")), "rime snapshot\n");
}

/// A tar-engine backup that could not read a file is saved, with its metadata, but exits 3
/// (as `rime backup`): the warning shows under `-q` and is logged at WARNING.
#[test]
fn agent_tar_backup_with_an_unreadable_file_exits_3() {
    let j = Job::new();
    write(&j.src().join("ok"), "readable\n");
    write(&j.src().join("locked"), "secret\n");
    chmod(&j.src().join("locked"), 0o000);
    let container = j.p("container");
    let log = j.p("logs/agent.log");
    mkdir(&container);
    mkdir(log.parent().unwrap());
    let args = j.args(&[
        "--path-to-backup",
        &j.src().display().to_string(),
        "--metadata-out",
        "-",
        "--log-file",
        &log.display().to_string(),
        "--log-level",
        "warning",
        "-q",
    ]);
    let mut cmd = if is_root() {
        // root reads mode 000 files: run as nobody, who can reach the job's files.
        chmod(j.p("").as_path(), 0o755);
        chmod(&j.p("pass"), 0o644);
        for d in [&container, &log.parent().unwrap().to_path_buf()] {
            let st = Command::new("chown")
                .args([os("65534:65534"), os(d)])
                .status()
                .unwrap();
            assert!(st.success());
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(rime_bin());
        c
    } else {
        Command::new(rime_bin())
    };
    let o = cmd
        .args(args)
        .env_remove("RIME_PASSWORD")
        .env_remove("RIME_PASSWORD_FILE")
        .stdin(Stdio::null())
        .output()
        .expect("cannot run rime");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(
        o.status.code(),
        Some(3),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("locked: cannot open"), "{stderr}");
    assert!(stderr.contains("1 path(s) could not be read"), "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["curr_backup_level"], 0, "metadata written: {doc}");
    let logged = read(&log);
    assert!(
        logged.contains("WARNING rime-agent rime: warning:") && logged.contains("locked"),
        "{logged}"
    );
    // The backup is there and restores what was readable.
    let out = j.p("out");
    j.restore(&out, &[]).ok();
    assert_eq!(read(&out.join("ok")), "readable\n");
    assert!(!out.join("locked").exists());
}

/// `--restore-from-date` takes the times `info` prints (UTC, `Z`) and explicit offsets as
/// that instant whatever the local time zone; a date without an offset is local time, and
/// an error names it as given.
#[test]
fn agent_restore_dates_in_utc_with_offsets_and_local() {
    let j = Job::new();
    let f = j.src().join("f");
    let mut times = vec![];
    for v in ["A", "B", "C"] {
        write(&f, v);
        times.push(j.backup(&[])["time_stamp"].as_i64().unwrap());
        next_second();
        next_second();
    }
    let info = j.run(&["--action", "info", "--json"]);
    let b_utc = info.ok().json()[1]["time"].as_str().unwrap().to_string();
    assert!(b_utc.ends_with('Z'), "{b_utc}");
    let b_plus2 = chrono::DateTime::from_timestamp(times[1], 0)
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string();
    let ny = [("TZ", std::ffi::OsStr::new("America/New_York"))];
    for (i, date) in [b_utc.clone(), b_plus2].iter().enumerate() {
        let t = j.p(&format!("b{i}"));
        let args = j.args(&[
            "--action",
            "restore",
            "--restore-abs-path",
            &t.display().to_string(),
            "--restore-from-date",
            date,
        ]);
        rime_raw(&args, &ny).ok();
        assert_eq!(
            read(&t.join("f")),
            "B",
            "--restore-from-date {date} under TZ=America/New_York"
        );
    }
    // Local time, as Freezer reads it.
    let t = j.p("local");
    j.restore(&t, &["--restore-from-date", &local_date(times[1])])
        .ok();
    assert_eq!(read(&t.join("f")), "B");
    j.restore(
        &j.p("never"),
        &["--restore-from-date", "2001-01-01T00:00:00"],
    )
    .error_names(&["--restore-from-date 2001-01-01T00:00:00", "at or before"]);
}

/// `-F` naming a symbolic link to a file archives the link under its own name (Freezer's
/// `tar -C dirname basename`); with `--dereference-symlink soft`, the file's content under
/// the link's name.
#[test]
fn agent_single_file_symlink_keeps_its_name() {
    let j = Job::new();
    write(&j.src().join("real.txt"), "real\n");
    symlink("real.txt", &j.src().join("link.txt"));
    let link = j.src().join("link.txt").display().to_string();
    j.backup_path(&link, &[]);
    let out = j.p("out");
    j.restore(&out, &[]).ok();
    assert_eq!(
        walk(&out),
        vec![std::path::PathBuf::new(), "link.txt".into()],
        "the link alone"
    );
    assert_eq!(
        std::fs::read_link(out.join("link.txt")).unwrap(),
        Path::new("real.txt")
    );
    j.backup_path(&link, &["-N", "deref", "--dereference-symlink", "soft"]);
    let out = j.p("out-deref");
    j.restore(&out, &["-N", "deref"]).ok();
    let m = std::fs::symlink_metadata(out.join("link.txt")).unwrap();
    assert!(m.is_file(), "the content under the link's name");
    assert_eq!(read(&out.join("link.txt")), "real\n");
    assert!(!out.join("real.txt").exists());
}

/// A job file as Freezer's parsers read it: `key: value` lines as well as `key = value`,
/// booleans spelled `True`/`yes`/`0`/`off` (`dry_run = False` is off, not "given"), oslo.log's
/// `debug = True`; and argparse's unambiguous abbreviations on the command line.
#[test]
fn agent_config_file_colons_booleans_debug_and_abbreviations() {
    let j = Job::new();
    write(&j.src().join("f"), "data\n");
    let log = j.p("agent.log");
    let ini = format!(
        "[job]\ncontainer: {}\nstorage:local\npath_to_backup = {}\nbackup_name: colon\n\
         hostname = host1\ndry_run = False\nno_incremental = yes\noverwrite = off\n\
         debug = True\nlog_file: {}\n",
        j.p("container").display(),
        j.src().display(),
        log.display()
    );
    write(&j.p("job.ini"), ini);
    let run = |extra: &[&str]| j.run_config(&j.p("job.ini"), extra);
    assert_eq!(metadata_level(run(&["--metadata-out", "-"]).ok()), 0);
    assert!(
        j.p("container/rime/config").exists(),
        "dry_run = False wrote"
    );
    next_second();
    write(&j.src().join("g"), "more\n");
    // no_incremental = yes: a level 0 again; `--nono-incr` (an abbreviation) takes it back.
    assert_eq!(metadata_level(run(&["--metadata-out", "-"]).ok()), 0);
    next_second();
    assert_eq!(
        metadata_level(run(&["--nono-incr", "--metadata-out", "-"]).ok()),
        1
    );
    assert!(
        read(&log).contains(" DEBUG "),
        "debug = True logs at debug level"
    );
    // overwrite = off: a restore into a non-empty directory is refused; `--overw` allows it.
    let busy = j.p("busy");
    write(&busy.join("old"), "x");
    let t = busy.display().to_string();
    run(&["--action", "restore", "--restore-abs", &t]).error_names(&["not empty"]);
    run(&["--action", "restore", "--restore-abs", &t, "--overw"]).ok();
    assert_eq!(read(&busy.join("g")), "more\n");
    // An ambiguous abbreviation names its candidates; a switch with a non-boolean value is
    // refused by name.
    run(&["--max", "3"]).error_names(&["ambiguous", "--max-level", "--max-priority"]);
    write(&j.p("bad.ini"), "[job]\ndry_run = maybe\n");
    let bad = j.p("bad.ini").display().to_string();
    rime_raw(["agent", "--config", &bad], &[]).error_names(&["dry_run", "maybe"]);
    // `-d` (and --debug) on the command line, without the file: debug lines in the log.
    let log2 = j.p("agent2.log").display().to_string();
    j.run(&["--action", "info", "--log-file", &log2, "-d"]).ok();
    assert!(read(&j.p("agent2.log")).contains(" DEBUG "));
    let log3 = j.p("agent3.log").display().to_string();
    j.run(&["--action", "info", "--log-file", &log3]).ok();
    assert!(!read(&j.p("agent3.log")).contains(" DEBUG "));
}

/// `--exclude` is GNU tar's (Freezer's meaning) with either engine: `cache/*` leaves out the
/// contents of every `cache` directory at any depth (rime's own rules would anchor a pattern
/// with a `/` at the absolute path and keep them), `*.log` every log file; both engines
/// restore the same tree.
#[test]
fn agent_exclude_means_the_same_with_both_engines() {
    let mut restored = vec![];
    for engine in ["tar", "rime"] {
        let j = Job::new();
        let s = j.src();
        write(&s.join("a.log"), "log\n");
        write(&s.join("sub/b.log"), "log\n");
        write(&s.join("sub/keep.txt"), "keep\n");
        write(&s.join("x/cache/f"), "cached\n");
        write(&s.join("x/cache/deeper/g"), "cached\n");
        write(&s.join("cache/h"), "cached\n");
        write(&s.join("keep/cachefile"), "keep\n");
        j.backup(&[
            "--engine",
            engine,
            "--exclude",
            "*.log",
            "--exclude",
            "cache/*",
        ]);
        let t = j.p("restored");
        j.restore(&t, &[]).ok();
        let files: Vec<String> = walk(&t)
            .iter()
            .filter(|p| t.join(p).is_file())
            .map(|p| p.display().to_string())
            .collect();
        restored.push((engine, files));
    }
    let expected = ["keep/cachefile", "sub/keep.txt"];
    for (engine, files) in &restored {
        let mut files = files.clone();
        files.sort();
        assert_eq!(files, expected, "--engine {engine}");
    }
}

/// A sparse file backed up by the tar engine (stored whole, as Freezer's tar stores it)
/// restores with its holes: the same bytes, about the space it took before.
#[test]
fn agent_tar_restore_leaves_holes_in_sparse_files() {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;
    let j = Job::new();
    let f = j.src().join("sparse.img");
    let size: u64 = 64 << 20;
    {
        let mut file = std::fs::File::create(&f).unwrap();
        file.set_len(size).unwrap();
        for at in [0u64, 10 << 20, (40 << 20) + 123] {
            file.seek(SeekFrom::Start(at)).unwrap();
            file.write_all(&random_bytes(at, 8192)).unwrap();
        }
    }
    let src_used = std::fs::metadata(&f).unwrap().blocks() * 512;
    assert!(
        src_used < size / 8,
        "the source file system keeps holes ({src_used})"
    );
    j.backup(&[]);
    let t = j.p("restored");
    j.restore(&t, &[]).ok();
    let back = t.join("sparse.img");
    assert!(
        std::fs::read(&back).unwrap() == std::fs::read(&f).unwrap(),
        "same bytes"
    );
    let used = std::fs::metadata(&back).unwrap().blocks() * 512;
    assert!(
        used <= src_used + (64 << 10),
        "restored file uses {used} bytes on disk, the source {src_used} (size {size})"
    );
}

/// `--compression` reaches the levels written out in Freezer's format: `dump --format
/// tar-incremental --compressed` compresses each level as its backup asked (a job may change
/// it between levels), and GNU tar extracts them.
#[test]
fn agent_compression_reaches_the_dumped_levels() {
    let j = Job::new();
    write(&j.src().join("f"), "level 0\n");
    j.backup(&["--compression", "bzip2"]);
    next_second();
    write(&j.src().join("g"), "level 1\n");
    j.backup(&["--compression", "xz"]);
    let dump = j.p("dump");
    dump_tar_levels(&j.repo(), &j.p("pass"), &dump, &["--compressed"]);
    let out = j.p("gnutar");
    mkdir(&out);
    for (name, magic) in [
        ("level-0.tar.bz2", &b"BZh"[..]),
        ("level-1.tar.xz", b"\xfd7zXZ"),
    ] {
        let p = dump.join(name);
        assert!(std::fs::read(&p).unwrap().starts_with(magic), "{name}");
        gnu_tar_extract_level(&p, &out);
    }
    assert_eq!(read(&out.join("f")), "level 0\n");
    assert_eq!(read(&out.join("g")), "level 1\n");
}

/// `~` at the start of a path is the home directory, from a job file (no shell expanded it) or
/// a quoted argument, and the backup name is a template with Freezer's variables.
#[test]
fn agent_tilde_paths_and_backup_name_templates() {
    let home = tempfile::tempdir().unwrap();
    write(&home.path().join("src/f"), "data\n");
    write(&home.path().join("pass"), "pw\n");
    let ini = "[job]\npath_to_backup = ~/src\ncontainer = ~/c\nstorage = local\n\
               backup_name = {mode}-{resource_id}-{storage}\nhostname = host1\n\
               encrypt_pass_file = ~/pass\nmetadata_out = ~/meta.json\n";
    write(&home.path().join("job.ini"), ini);
    let cfg = home.path().join("job.ini").display().to_string();
    let env = [("HOME", home.path().as_os_str())];
    rime_raw(["agent", "--config", &cfg], &env).ok();
    assert!(home.path().join("c/rime/config").exists());
    let meta: Value = serde_json::from_str(&read(&home.path().join("meta.json"))).unwrap();
    assert_eq!(meta["backup_name"], "fs-host1-local", "{meta}");
    rime_raw(
        [
            "agent",
            "--config",
            &cfg,
            "--action",
            "restore",
            "--restore-abs-path",
            "~/restored",
        ],
        &env,
    )
    .ok();
    assert_eq!(read(&home.path().join("restored/f")), "data\n");
    rime_raw(["agent", "--config", &cfg, "-N", "x-{nope}"], &env)
        .error_names(&["{nope}", "unknown variable"]);
}
