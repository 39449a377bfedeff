//! `rime agent` (Freezer's agent options): tar-level backups in the repository, restores at a
//! date, Freezer's level rules, config files, retention, exec, and GNU tar reading the levels.

use std::path::{Path, PathBuf};

use chrono::TimeZone;
use serde_json::Value;
use tempfile::TempDir;

use crate::util::*;

/// A job: a source tree, a container on local storage and a pass file.
pub(crate) struct Job {
    tmp: TempDir,
}

impl Job {
    pub(crate) fn new() -> Job {
        let j = Job {
            tmp: tempfile::tempdir().unwrap(),
        };
        mkdir(&j.src());
        write(&j.p("pass"), "agent secret\nsecond line ignored\n");
        write(&j.p("wrong"), "not the password\n");
        j
    }
    pub(crate) fn p(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
    pub(crate) fn src(&self) -> PathBuf {
        self.p("src")
    }
    /// The arguments of `rime agent` with the job's storage, name, host and pass file, then
    /// `extra`.
    pub(crate) fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "agent".into(),
            "--storage".into(),
            "local".into(),
            "--container".into(),
            self.p("container").display().to_string(),
            "--backup-name".into(),
            "job".into(),
            "--hostname".into(),
            "host1".into(),
            "--encrypt-pass-file".into(),
            self.p("pass").display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }
    /// `rime agent` with the job's storage, name, host and pass file, then `extra`.
    pub(crate) fn run(&self, extra: &[&str]) -> Out {
        rime_raw(self.args(extra), &[])
    }
    /// Writes the job file `name`: `keys` (a section header and options), then the job's
    /// container on local storage and its source as `path_to_backup`. Returns its path.
    pub(crate) fn write_job_file(&self, name: &str, keys: &str) -> PathBuf {
        let path = self.p(name);
        let ini = format!(
            "{keys}container = {}\nstorage = local\npath_to_backup = {}\n",
            self.p("container").display(),
            self.src().display()
        );
        write(&path, ini);
        path
    }
    /// `rime agent --config <config>` with the job's pass file, then `extra`: the job file
    /// names everything else.
    pub(crate) fn run_config(&self, config: &Path, extra: &[&str]) -> Out {
        let mut args = vec![
            os("agent"),
            os("--config"),
            os(config),
            os("--encrypt-pass-file"),
            os(self.p("pass")),
        ];
        args.extend(extra.iter().map(os));
        rime_raw(args, &[])
    }
    /// `rime agent --json --action info` on the job's container, without the job's name and
    /// host: the restore points of every job there.
    pub(crate) fn info_of_all_jobs(&self) -> Value {
        rime_raw(
            [
                os("agent"),
                os("--json"),
                os("--action"),
                os("info"),
                os("--storage"),
                os("local"),
                os("--container"),
                os(self.p("container")),
                os("--encrypt-pass-file"),
                os(self.p("pass")),
            ],
            &[],
        )
        .ok()
        .json()
    }
    /// The rime repository the agent keeps in the job's container.
    pub(crate) fn repo(&self) -> PathBuf {
        self.p("container/rime")
    }
    /// Plain `rime restore latest` (not the agent) of the job's repository into `target`.
    pub(crate) fn rime_restore_latest(&self, target: &Path) {
        rime_raw(
            [
                os("--repo"),
                os(self.repo()),
                os("--password-file"),
                os(self.p("pass")),
                os("restore"),
                os("latest"),
                os("--target"),
                os(target),
            ],
            &[],
        )
        .ok();
    }
    /// A backup; returns the metadata JSON.
    pub(crate) fn backup(&self, extra: &[&str]) -> Value {
        self.backup_path(&self.src().display().to_string(), extra)
    }
    /// A backup of `src`; returns the metadata JSON.
    pub(crate) fn backup_path(&self, src: &str, extra: &[&str]) -> Value {
        let meta = self.p("meta.json");
        let mut args = vec!["--path-to-backup", src, "--metadata-out"];
        let m = meta.display().to_string();
        args.push(&m);
        args.extend(extra);
        self.run(&args).ok();
        serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap()
    }
    pub(crate) fn restore(&self, target: &Path, extra: &[&str]) -> Out {
        let t = target.display().to_string();
        let mut args = vec!["--action", "restore", "--restore-abs-path", &t];
        args.extend(extra);
        self.run(&args)
    }
}

/// Local time string of a Freezer metadata time stamp, as `--restore-from-date` takes it.
pub(crate) fn local_date(secs: i64) -> String {
    chrono::Local
        .timestamp_opt(secs, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// GNU tar headers keep whole-second mtimes (as Freezer's archives): drop the nanoseconds of an
/// expected tree so that a restore can match it exactly.
fn whole_second_mtimes(root: &Path) {
    use std::os::unix::fs::MetadataExt;
    let mut all = walk(root);
    all.push(PathBuf::new());
    for rel in all {
        let p = root.join(&rel);
        let m = std::fs::symlink_metadata(&p).unwrap();
        set_mtime(&p, m.mtime(), 0);
    }
}

/// The backup level in the metadata that `--metadata-out -` printed as stdout's last line.
pub(crate) fn metadata_level(out: &Out) -> u64 {
    let v: Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    v["curr_backup_level"].as_u64().unwrap()
}

/// Backups must not share a second (dates are second-granular).
pub(crate) fn next_second() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

fn levels_of(j: &Job, n: usize, extra: &[&str]) -> Vec<u64> {
    (0..n)
        .map(|i| {
            write(&j.src().join("counter"), format!("{i}"));
            let m = j.backup(extra);
            next_second();
            m["curr_backup_level"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn agent_levels_restore_at_each_date_and_gnu_tar_reads_the_dump() {
    let j = Job::new();
    let s = j.src();
    write(&s.join("keep.txt"), "unchanged\n");
    write(&s.join("edit.txt"), "version 0\n");
    write(&s.join("gone.txt"), "deleted at level 1\n");
    mkdir(&s.join("dir/sub"));
    write_random_file(&s.join("dir/sub/big.bin"), 1, 300_000);
    write(&s.join("dir/removed-later/x"), "x");
    symlink("keep.txt", &s.join("link"));
    chmod(&s.join("keep.txt"), 0o640);
    let mut states = vec![];
    let mut times = vec![];
    for level in 0..3u64 {
        if level == 1 {
            write(&s.join("edit.txt"), "version 1, longer\n");
            std::fs::remove_file(s.join("gone.txt")).unwrap();
            write(&s.join("dir/new.txt"), "new at level 1\n");
        }
        if level == 2 {
            std::fs::remove_dir_all(s.join("dir/removed-later")).unwrap();
            write(&s.join("edit.txt"), "v2\n");
            write_random_file(&s.join("dir/sub/big.bin"), 2, 300_000);
        }
        let m = j.backup(&[]);
        assert_eq!(m["curr_backup_level"], level, "{m}");
        assert_eq!(m["backup_name"], "job");
        assert_eq!(m["hostname"], "host1");
        assert_eq!(m["compression"], "gzip");
        assert_eq!(m["encryption"], true);
        assert_eq!(m["engine_name"], "tar");
        times.push(m["time_stamp"].as_i64().unwrap());
        let copy = j.p(&format!("state{level}"));
        save_copy(&s, &copy);
        whole_second_mtimes(&copy);
        states.push(copy);
        next_second();
    }
    // The newest, and each date's state.
    let out = j.p("latest");
    j.restore(&out, &[]).ok();
    compare_trees(&states[2], &out);
    for (i, t) in times.iter().enumerate() {
        let out = j.p(&format!("at{i}"));
        j.restore(&out, &["--restore-from-date", &local_date(*t)])
            .ok();
        compare_trees(&states[i], &out);
    }
    // Before the first backup: a clear error and nothing written.
    let out = j.p("too-early");
    j.restore(&out, &["--restore-from-date", &local_date(times[0] - 3600)])
        .error_names(&["first backup"]);
    assert!(!out.exists());
    // A non-empty target needs --overwrite.
    j.restore(&states[0], &[])
        .error_names(&["not empty", "--overwrite"]);
    // info lists the three levels.
    let info = j.run(&["--action", "info"]);
    info.ok();
    assert!(
        info.stdout.contains("3 restore point(s)"),
        "{}",
        info.stdout
    );
    let v = j.info_of_all_jobs();
    let levels: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["level"].as_u64().unwrap())
        .collect();
    assert_eq!(levels, vec![0, 1, 2]);
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["hostname"] == "host1"));
    // dump --format tar-incremental: real GNU tar rebuilds the tree, deletions included.
    let dump = j.p("dump");
    dump_tar_levels(&j.repo(), &j.p("pass"), &dump, &[]);
    let gt = j.p("gnutar");
    mkdir(&gt);
    for l in 0..3 {
        gnu_tar_extract_level(&dump.join(format!("level-{l}.tar")), &gt);
    }
    compare_trees(&states[2], &gt);
    // Plain `rime restore` of a tar level replays its chain too.
    let plain = j.p("plain-restore");
    j.rime_restore_latest(&plain);
    compare_trees(&states[2], &plain);
    assert!(!gt.join("gone.txt").exists() && !gt.join("dir/removed-later").exists());
}

#[test]
fn agent_level_rules_max_and_always_level() {
    let j = Job::new();
    assert_eq!(
        levels_of(&j, 5, &["--max-level", "2"]),
        vec![0, 1, 2, 0, 1],
        "max-level wraps after level 2"
    );
    let j = Job::new();
    assert_eq!(levels_of(&j, 4, &["--always-level", "1"]), vec![0, 1, 1, 1]);
    // Each always-level backup is a differential on the level 0: restoring the newest needs
    // the level 0 and the newest level 1 only, and gives the newest content.
    let out = j.p("out");
    j.restore(&out, &[]).ok();
    assert_eq!(std::fs::read_to_string(out.join("counter")).unwrap(), "3");
    let j = Job::new();
    write(&j.src().join("scratch.tmp"), "excluded");
    assert_eq!(
        levels_of(&j, 2, &["--no-incremental", "--exclude", "*.tmp"]),
        vec![0, 0]
    );
    let out = j.p("out");
    j.restore(&out, &[]).ok();
    assert!(out.join("counter").exists() && !out.join("scratch.tmp").exists());
}

#[test]
fn agent_config_file_merges_with_command_line_precedence() {
    let j = Job::new();
    write(&j.src().join("f"), "data");
    let cfg = j.write_job_file(
        "job.ini",
        "[job]\naction = backup\nbackup_name = from-config\nmax_level = 1\nno_incremental = False\n\
         overwrite = None\n",
    );
    let pass = j.p("pass").display().to_string();
    let run = |extra: &[&str]| j.run_config(&cfg, extra);
    run(&[]).ok();
    next_second();
    // The command line wins over the file.
    run(&["--backup-name", "from-cli", "--metadata-out", "-"]).ok();
    let v = j.info_of_all_jobs();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["backup_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["from-config", "from-cli"]);
    // max_level = 1 from the file applies: level 0, then 1, then 0.
    next_second();
    assert_eq!(metadata_level(run(&["--metadata-out", "-"]).ok()), 1);
    next_second();
    assert_eq!(metadata_level(run(&["--metadata-out", "-"]).ok()), 0);
    // A key that is no agent option is refused by name, not ignored.
    write(&j.p("bad.ini"), "[default]\nproxy = http://proxy:3128\n");
    let bad = j.p("bad.ini").display().to_string();
    rime_raw(["agent", "--config", &bad, "--action", "info"], &[])
        .error_names(&["proxy", "not supported by rime"]);
    // A [storage:NAME] section: the repository is <container>/rime there.
    let ini2 = format!(
        "[default]\nbackup_name = multi\npath_to_backup = {}\n[storage:one]\nstorage = local\ncontainer = {}\n\
         [storage:two]\nstorage = local\ncontainer = {}\n",
        j.src().display(),
        j.p("other").display(),
        j.p("third").display()
    );
    write(&j.p("multi.ini"), ini2);
    j.run_config(&j.p("multi.ini"), &[]).ok();
    assert!(j.p("other/rime/config").exists());
    assert!(
        j.p("third/rime/config").exists(),
        "one backup written to both storages"
    );
    // Each storage alone restores it.
    for c in ["other", "third"] {
        let out = j.p(&format!("out-{c}"));
        let cont = j.p(c).display().to_string();
        let t = out.display().to_string();
        rime_raw(
            [
                "agent",
                "--action",
                "restore",
                "--storage",
                "local",
                "--container",
                &cont,
                "-N",
                "multi",
                "--restore-abs-path",
                &t,
                "--encrypt-pass-file",
                &pass,
            ],
            &[],
        )
        .ok();
        assert_eq!(std::fs::read_to_string(out.join("f")).unwrap(), "data");
    }
}

#[test]
fn agent_rejects_unsupported_and_conflicting_options() {
    let j = Job::new();
    let src = j.src().display().to_string();
    for (args, needles) in [
        (
            vec!["--engine", "rsync"],
            vec!["--engine rsync", "not supported by rime"],
        ),
        (
            vec!["--storage", "s3"],
            vec!["--storage s3", "not supported"],
        ),
        (
            vec!["--mode", "cinder"],
            vec!["--mode cinder", "not supported"],
        ),
        (
            vec!["--nova-inst-id", "x"],
            vec!["--nova-inst-id", "not supported"],
        ),
        (vec!["--compression", "lz4"], vec!["--compression", "gzip"]),
        (
            vec!["--always-level", "1", "--no-incremental"],
            vec!["--no-incremental", "--always-level"],
        ),
        (vec!["--upload-limit", "10Q"], vec!["--upload-limit"]),
        (vec!["--action", "frobnicate"], vec!["--action"]),
        (
            vec!["--dereference-symlink", "sideways"],
            vec!["--dereference-symlink", "soft"],
        ),
    ] {
        let mut a = vec!["--path-to-backup", &src];
        a.extend(args.iter().copied());
        j.run(&a).error_names(&needles);
    }
    assert!(
        !j.p("container").exists(),
        "nothing created by a refused job"
    );
    // K/M/G suffixes are accepted (Freezer documents them but rejects them).
    write(&j.src().join("f"), "x");
    j.run(&[
        "--path-to-backup",
        &src,
        "--upload-limit",
        "10M",
        "--download-limit",
        "-1",
    ])
    .ok();
}

#[test]
fn agent_wrong_password_and_unencrypted_repositories() {
    let j = Job::new();
    write(&j.src().join("f"), "secret data");
    j.backup(&[]);
    let out = j.p("out");
    let t = out.display().to_string();
    let wrong = j.p("wrong").display().to_string();
    j.run(&[
        "--action",
        "restore",
        "--restore-abs-path",
        &t,
        "--encrypt-pass-file",
        &wrong,
    ])
    .code(12);
    assert!(!out.exists(), "nothing written with a wrong password");
    // A truncated pack: a clear error and a non-zero exit.
    let data = j.p("container/rime/data");
    for rel in walk(&data) {
        let pack = data.join(rel);
        if pack.is_file() {
            let f = std::fs::OpenOptions::new().write(true).open(&pack).unwrap();
            f.set_len(100).unwrap();
        }
    }
    j.run(&[
        "--action",
        "restore",
        "--restore-abs-path",
        &j.p("out-truncated").display().to_string(),
    ])
    .error_names(&["truncated"]);
    // Without any pass file: an encrypted repository is refused with a pointer to the option.
    let c = j.p("container").display().to_string();
    rime_raw(
        [
            "agent",
            "--action",
            "info",
            "--storage",
            "local",
            "--container",
            &c,
        ],
        &[],
    )
    .error_names(&["encrypted", "--encrypt-pass-file"]);
    // A new job without a pass file: an unencrypted repository, with a warning every run.
    let c2 = j.p("plain").display().to_string();
    let src = j.src().display().to_string();
    let o = rime_raw(
        [
            "agent",
            "--storage",
            "local",
            "--container",
            &c2,
            "-N",
            "p",
            "-F",
            &src,
        ],
        &[],
    );
    assert!(o.ok().stderr.contains("NOT encrypted"), "{}", o.stderr);
}

#[test]
fn agent_admin_keeps_what_kept_backups_need() {
    let j = Job::new();
    let mut times = vec![];
    for i in 0..4 {
        write(&j.src().join("n"), format!("{i}"));
        let m = j.backup(&["--max-level", "1"]);
        times.push(m["time_stamp"].as_i64().unwrap());
        next_second();
    }
    let count = |j: &Job| -> usize {
        let o = j.run(&["--action", "info", "--json"]);
        serde_json::from_str::<Value>(&o.ok().stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    // Chains: [0 1] [2 3]. A cutoff just after backup 2 (level 0 of the second chain) removes
    // the first chain; backup 2 stays because backup 3 needs it.
    j.run(&[
        "--action",
        "admin",
        "--remove-from-date",
        &local_date(times[2] + 1),
    ])
    .ok();
    assert_eq!(count(&j), 2);
    // Everything is older than the cutoff: the newest chain still stays.
    j.run(&["--action", "admin", "--remove-older-then", "0"])
        .ok();
    assert_eq!(count(&j), 2);
    let out = j.p("out");
    j.restore(&out, &[]).ok();
    assert_eq!(std::fs::read_to_string(out.join("n")).unwrap(), "3");
}

#[test]
fn agent_exec_fails_when_the_command_fails_and_runs_as_freezerc() {
    let j = Job::new();
    j.run(&["--action", "exec", "--command", "true"]).ok();
    j.run(&["--action", "exec", "--command", "echo hi | grep -q hi"])
        .ok();
    j.run(&["--action", "exec", "--command", "echo hi | grep -q nope"])
        .error_names(&["failed"]);
    j.run(&["--action", "exec", "--command", "false"]).failed();
    // The same binary under Freezer's names acts as `rime agent`.
    for name in ["freezerc", "freezer-agent"] {
        let link = j.p(name);
        std::os::unix::fs::symlink(rime_bin(), &link).unwrap();
        let o = std::process::Command::new(&link)
            .args(["--action", "exec", "--command", "false"])
            .output()
            .unwrap();
        assert!(!o.status.success());
        let o = std::process::Command::new(&link)
            .args(["--action", "exec", "--command", "true"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

/// `--dereference-symlink`: soft archives what links point to (entering linked directories,
/// never looping, keeping dangling links as links, with a warning), hard stores each hard link
/// as a full file, all does both; none (the default) keeps links as links.
#[test]
fn agent_dereference_symlink_soft_hard_all() {
    use std::os::unix::fs::MetadataExt;
    let outside = tempfile::tempdir().unwrap();
    write(&outside.path().join("target.txt"), "pointed to\n");
    mkdir(&outside.path().join("linked-dir/inner"));
    write(
        &outside.path().join("linked-dir/inner/f"),
        "inside a linked directory\n",
    );
    for mode in ["none", "soft", "hard", "all"] {
        let j = Job::new();
        let s = j.src();
        write(&s.join("a.txt"), "hard linked\n");
        std::fs::hard_link(s.join("a.txt"), s.join("b.txt")).unwrap();
        symlink(outside.path().join("target.txt"), &s.join("file-link"));
        symlink(outside.path().join("linked-dir"), &s.join("dir-link"));
        mkdir(&s.join("sub"));
        symlink("..", &s.join("sub/loop")); // back to the root being archived
        symlink("/nonexistent/rime-test", &s.join("dangling"));
        // Freezer's `none` is the default: links stay links.
        let extra = vec!["--dereference-symlink", mode];
        let src = s.display().to_string();
        let mut args = vec!["--path-to-backup", src.as_str()];
        args.extend(&extra);
        let out = j.run(&args);
        out.ok();
        let soft = matches!(mode, "soft" | "all");
        let hard = matches!(mode, "hard" | "all");
        if soft {
            for w in ["loop", "dangling"] {
                assert!(
                    out.stderr.contains(&format!("{w}: symbolic link")),
                    "{mode}: {}",
                    out.stderr
                );
            }
        }
        let t = j.p("restored");
        j.restore(&t, &[]).ok();
        let meta = |n: &str| std::fs::symlink_metadata(t.join(n)).unwrap();
        assert_eq!(meta("file-link").file_type().is_symlink(), !soft, "{mode}");
        assert_eq!(meta("dir-link").file_type().is_symlink(), !soft, "{mode}");
        if soft {
            assert_eq!(
                std::fs::read_to_string(t.join("file-link")).unwrap(),
                "pointed to\n"
            );
            assert_eq!(
                std::fs::read_to_string(t.join("dir-link/inner/f")).unwrap(),
                "inside a linked directory\n"
            );
        }
        // Never followed: the loop back up and the dangling link stay links.
        assert!(meta("sub/loop").file_type().is_symlink(), "{mode}");
        assert!(meta("dangling").file_type().is_symlink(), "{mode}");
        let (a, b) = (meta("a.txt"), meta("b.txt"));
        assert_eq!(
            a.ino() == b.ino(),
            !hard,
            "{mode}: hard links kept unless dereferenced"
        );
        assert_eq!(
            std::fs::read_to_string(t.join("b.txt")).unwrap(),
            "hard linked\n"
        );
    }
}

/// Job files as Freezer's scheduler and web UI write them: Freezer's internal key names
/// (`engine_name`, `restore_from_host`, `lvm_snapperm`) take effect, keys rime has no option for
/// are ignored while they ask for nothing (`insecure = False`, `backup_media = fs`), and refused
/// by name when they do. On the command line, Freezer's aliases and harmless options are
/// accepted and the options rime lacks are refused by name, not by clap's generic message.
#[test]
fn agent_config_takes_freezer_key_names_and_cli_refuses_by_name() {
    let j = Job::new();
    write(&j.src().join("f"), "data");
    let base = "[action]\naction = backup\nbackup_name = ui\n";
    let ui = j.write_job_file(
        "ui.ini",
        &format!(
            "{base}engine_name = rime\nrestore_from_host = host2\nlvm_snapperm = ro\n\
             insecure = False\nbackup_media = fs\nproxy =\nsync = True\nno_incremental = None\n\
             timeout = 120\n"
        ),
    );
    j.run_config(&ui, &[]).ok();
    let v = j.info_of_all_jobs();
    let row = &v.as_array().unwrap()[0];
    assert_eq!(row["hostname"], "host2", "restore_from_host is hostname");
    assert_eq!(row["kind"], "files", "engine_name = rime is --engine rime");
    // Unsupported keys with a real value are refused by name.
    for (extra, needles) in [
        (
            "insecure = True\n",
            vec!["insecure", "not supported by rime"],
        ),
        (
            "backup_media = nova\n",
            vec!["backup_media", "not supported by rime"],
        ),
        (
            "proxy = http://p:3128\n",
            vec!["proxy", "not supported by rime"],
        ),
    ] {
        let bad = j.write_job_file("bad.ini", &format!("{base}{extra}"));
        j.run_config(&bad, &[]).error_names(&needles);
    }
    // Command line: Freezer's deprecated --restore-from-host restores another host's backups.
    let src = j.src().display().to_string();
    j.run(&["-F", &src, "-N", "cli", "--hostname", "host2"])
        .ok();
    let out = j.p("out");
    let t = out.display().to_string();
    j.run(&[
        "--action",
        "restore",
        "-N",
        "cli",
        "--restore-from-host",
        "host2",
        "--restore-abs-path",
        &t,
    ])
    .ok();
    assert_eq!(std::fs::read_to_string(out.join("f")).unwrap(), "data");
    j.run(&["-F", &src, "--noincremental", "--timeout", "30"])
        .ok();
    for (args, needle) in [
        (vec!["--insecure"], "--insecure"),
        (vec!["--proxy", "http://p:3128"], "--proxy"),
        (vec!["--os-auth-ver", "3"], "--os-identity-api-version"),
        (vec!["--rsync-block-size", "4096"], "--rsync-block-size"),
        (vec!["--ftp-port", "21"], "--ftp-port"),
    ] {
        let mut a = vec!["-F", src.as_str()];
        a.extend(args);
        j.run(&a).error_names(&[needle, "not supported by rime"]);
    }
}

/// `--engine rime` follows symbolic links for `soft`, and refuses `hard` and `all` (its
/// snapshots keep hard links as links) before creating anything; `--log-level all` is
/// Freezer's most verbose level.
#[test]
fn agent_rime_engine_dereference_and_log_level_all() {
    let outside = tempfile::tempdir().unwrap();
    write(&outside.path().join("target.txt"), "pointed to\n");
    let j = Job::new();
    let s = j.src();
    write(&s.join("a.txt"), "hard linked\n");
    std::fs::hard_link(s.join("a.txt"), s.join("b.txt")).unwrap();
    symlink(outside.path().join("target.txt"), &s.join("file-link"));
    let src = s.display().to_string();
    for kind in ["hard", "all"] {
        j.run(&[
            "-F",
            &src,
            "--engine",
            "rime",
            "--dereference-symlink",
            kind,
        ])
        .error_names(&[&format!("--dereference-symlink {kind}"), "--engine rime"]);
    }
    assert!(
        !j.p("container").exists(),
        "nothing created by a refused job"
    );
    let log = j.p("agent.log").display().to_string();
    j.run(&[
        "-F",
        &src,
        "--engine",
        "rime",
        "--dereference-symlink",
        "soft",
        "--log-level",
        "all",
        "--log-file",
        &log,
    ])
    .ok();
    assert!(std::fs::read_to_string(&log).unwrap().contains("INFO"));
    let t = j.p("restored");
    j.rime_restore_latest(&t);
    let restored = walk(&t)
        .into_iter()
        .find(|p| p.ends_with("file-link"))
        .expect("file-link restored");
    let m = std::fs::symlink_metadata(t.join(restored)).unwrap();
    assert!(m.file_type().is_file(), "soft: the link's target is stored");
}

/// The tar engine backs up a single file as Freezer does (`tar -C parent name`): only that
/// member, so a restore recreates the file in the target and leaves the rest of a non-empty
/// target alone (no dumpdir of the parent deleting it), level after level; GNU tar extracts
/// the dumped levels to the same file.
#[test]
fn agent_tar_engine_backs_up_a_single_file() {
    let j = Job::new();
    let file = j.src().join("db.dump");
    write(&file, "version 0\n");
    write(&j.src().join("sibling"), "not backed up\n");
    let f = file.display().to_string();
    let m = j.backup_path(&f, &[]);
    assert_eq!(m["curr_backup_level"], 0);
    next_second();
    write(&file, "version 1, longer\n");
    let m = j.backup_path(&f, &[]);
    assert_eq!(m["curr_backup_level"], 1);
    let out = j.p("out");
    j.restore(&out, &[]).ok();
    assert_eq!(walk(&out), vec![PathBuf::new(), PathBuf::from("db.dump")]);
    assert_eq!(
        std::fs::read_to_string(out.join("db.dump")).unwrap(),
        "version 1, longer\n"
    );
    // Into a non-empty target: the other files stay.
    let busy = j.p("busy");
    write(&busy.join("keep-me"), "mine\n");
    j.restore(&busy, &["--overwrite"]).ok();
    assert_eq!(
        std::fs::read_to_string(busy.join("keep-me")).unwrap(),
        "mine\n"
    );
    assert_eq!(
        std::fs::read_to_string(busy.join("db.dump")).unwrap(),
        "version 1, longer\n"
    );
    // GNU tar reads the levels.
    let dump = j.p("dump");
    dump_tar_levels(&j.repo(), &j.p("pass"), &dump, &[]);
    let gt = j.p("gnutar");
    write(&gt.join("keep-me"), "mine\n");
    for l in 0..2 {
        gnu_tar_extract_level(&dump.join(format!("level-{l}.tar")), &gt);
    }
    assert_eq!(
        std::fs::read_to_string(gt.join("db.dump")).unwrap(),
        "version 1, longer\n"
    );
    assert!(gt.join("keep-me").exists(), "GNU tar deleted nothing");
}

/// Every pack a tar chain reads is checked before level 0 is applied: with level 1's data pack
/// truncated or missing, a restore with --overwrite fails naming the pack's state and the
/// level, and the target is exactly as it was (level 0 would have replaced and deleted files).
#[test]
fn agent_restore_checks_every_levels_packs_before_writing() {
    let j = Job::new();
    write(&j.src().join("a"), "level 0\n");
    write_random_file(&j.src().join("big0"), 1, 200_000);
    j.backup(&[]);
    let data = j.p("container/rime/data");
    let packs = |d: &Path| -> Vec<PathBuf> {
        walk(d)
            .into_iter()
            .map(|r| d.join(r))
            .filter(|p| p.is_file())
            .collect()
    };
    let before = packs(&data);
    next_second();
    write_random_file(&j.src().join("big1"), 2, 300_000);
    assert_eq!(j.backup(&[])["curr_backup_level"], 1);
    // Level 1's data pack: the largest of the new ones.
    let pack = packs(&data)
        .into_iter()
        .filter(|p| !before.contains(p))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let full = std::fs::read(&pack).unwrap();
    let target = j.p("target");
    let reset = || {
        let _ = std::fs::remove_dir_all(&target);
        write(&target.join("a"), "mine\n");
        write(&target.join("extra"), "not in the backup\n");
    };
    let untouched = || {
        assert_eq!(std::fs::read_to_string(target.join("a")).unwrap(), "mine\n");
        assert!(target.join("extra").exists(), "nothing deleted");
        assert_eq!(
            walk(&target).len(),
            3,
            "nothing written (the root and two files)"
        );
    };
    reset();
    std::fs::write(&pack, &full[..full.len() / 2]).unwrap();
    j.restore(&target, &["--overwrite"])
        .error_names(&["truncated", "level 1"]);
    untouched();
    std::fs::remove_file(&pack).unwrap();
    j.restore(&target, &["--overwrite"])
        .error_names(&["missing", "level 1"]);
    untouched();
    // With the pack back, the same restore succeeds.
    std::fs::write(&pack, &full).unwrap();
    j.restore(&target, &["--overwrite"]).ok();
    assert_eq!(
        std::fs::read_to_string(target.join("a")).unwrap(),
        "level 0\n"
    );
    assert!(!target.join("extra").exists());
}

/// A job that backs up with `--engine rime` restores with the agent too: with `--engine rime`,
/// and without it (no tar chain of that host and name exists, so rime's own snapshots are
/// used), newest at or before `--restore-from-date`.
#[test]
fn agent_restores_rime_engine_snapshots() {
    let j = Job::new();
    let s = j.src();
    write(&s.join("a.txt"), "version one\n");
    let first = j.backup(&["--engine", "rime"]);
    let first_time = first["time_stamp"]
        .as_i64()
        .unwrap_or_else(|| panic!("{first}"));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    write(&s.join("a.txt"), "version two\n");
    j.backup(&["--engine", "rime"]);
    let t = j.p("newest");
    j.restore(&t, &["--engine", "rime"]).ok();
    assert_eq!(
        std::fs::read_to_string(t.join("a.txt")).unwrap(),
        "version two\n"
    );
    let t = j.p("without-engine");
    j.restore(&t, &[]).ok();
    assert_eq!(
        std::fs::read_to_string(t.join("a.txt")).unwrap(),
        "version two\n"
    );
    let t = j.p("older");
    j.restore(&t, &["--restore-from-date", &local_date(first_time)])
        .ok();
    assert_eq!(
        std::fs::read_to_string(t.join("a.txt")).unwrap(),
        "version one\n"
    );
}

/// oslo.config's `--noX` turns off a boolean option that a config file (or an earlier
/// argument) turned on: `--nooverwrite` after `overwrite = True` makes a restore into a
/// non-empty directory fail again, and `--nono-incremental` brings back incremental levels.
#[test]
fn agent_no_prefix_negates_boolean_options_from_the_config_file() {
    let j = Job::new();
    write(&j.src().join("f"), "data");
    let cfg = j.write_job_file(
        "job.ini",
        "[job]\noverwrite = True\nno_incremental = True\nbackup_name = neg\nhostname = host1\n",
    );
    let run = |extra: &[&str]| j.run_config(&cfg, extra);
    assert_eq!(metadata_level(run(&["--metadata-out", "-"]).ok()), 0);
    next_second();
    write(&j.src().join("g"), "more");
    // no_incremental = True from the file: level 0 again; negated on the command line: 1.
    assert_eq!(metadata_level(run(&["--metadata-out", "-"]).ok()), 0);
    next_second();
    assert_eq!(
        metadata_level(run(&["--nono-incremental", "--metadata-out", "-"]).ok()),
        1
    );
    let busy = j.p("busy");
    write(&busy.join("old"), "x");
    let t = busy.display().to_string();
    // overwrite = True from the file lets the restore write into a non-empty directory ...
    run(&["--action", "restore", "--restore-abs-path", &t]).ok();
    assert_eq!(std::fs::read_to_string(busy.join("g")).unwrap(), "more");
    // ... and --nooverwrite takes it back.
    run(&[
        "--action",
        "restore",
        "--restore-abs-path",
        &t,
        "--nooverwrite",
    ])
    .error_names(&["not empty", "--overwrite"]);
}
