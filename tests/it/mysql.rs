//! MySQL/MariaDB against a real server started by tests/services/mariadb.sh (tests/run.sh
//! starts it and exports RIME_TEST_MYSQL_*; without it these tests print why they skip).

use std::path::PathBuf;
use std::process::Command;

use crate::devices::{have, mount, sh, Loop};
use crate::util::*;

const MARIADB_SH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/services/mariadb.sh");

struct Server {
    conf: PathBuf,
    weak: PathBuf,
    state: PathBuf,
}

fn server() -> Option<Server> {
    let (Ok(conf), Ok(weak), Ok(state)) = (
        std::env::var("RIME_TEST_MYSQL_CONF"),
        std::env::var("RIME_TEST_MYSQL_WEAK_CONF"),
        std::env::var("RIME_TEST_MYSQL_STATE"),
    ) else {
        eprintln!("skipped: no MariaDB test server (run tests/run.sh, which starts one)");
        return None;
    };
    Some(Server {
        conf: conf.into(),
        weak: weak.into(),
        state: state.into(),
    })
}

fn sql(state: &std::path::Path, q: &str) -> String {
    let o = Command::new("mariadb")
        .arg(format!("--defaults-file={}/my.cnf", state.display()))
        .args(["-uroot", "-N", "-B", "-e", q])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{q}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn logical_dump_backup_and_restore_into_the_server() {
    let Some(s) = server() else { return };
    let repo = Repo::new();
    let db = format!("shop_{}", std::process::id());
    sql(&s.state, &format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.items(id INT PRIMARY KEY, name VARCHAR(40), data BLOB);
         INSERT INTO {db}.items VALUES (1,'apple',x'00ff10'),(2,'pear',NULL),(3,'fig',REPEAT('x',5000));"
    ));
    let conf = repo.dir("c").join("db.conf");
    // Freezer's configuration format, restricted to the test's database.
    write(
        &conf,
        format!(
            "{}databases = {db}\n",
            std::fs::read_to_string(&s.conf).unwrap()
        ),
    );
    let b1 = repo.backup::<&str>(
        &[],
        &["--mysql-conf", conf.to_str().unwrap(), "--name", "db"],
    );
    let snap = &repo.snapshots()[0];
    let ann = &snap["source"]["annotations"];
    assert_eq!(ann["mysql.dump"], "logical");
    assert!(
        ann["mysql.binlog_file"]
            .as_str()
            .is_some_and(|f| !f.is_empty()),
        "{snap}"
    );
    assert!(
        ann["mysql.binlog_position"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    let before = sql(
        &s.state,
        &format!("SELECT id, name, HEX(data) FROM {db}.items ORDER BY id"),
    );
    // Change, then restore: the dump brings the tables back as they were.
    sql(&s.state, &format!("DELETE FROM {db}.items WHERE id = 1; UPDATE {db}.items SET name = 'PEAR'; INSERT INTO {db}.items VALUES (9,'new',NULL);"));
    assert_ne!(
        sql(
            &s.state,
            &format!("SELECT id, name, HEX(data) FROM {db}.items ORDER BY id")
        ),
        before
    );
    repo.run(&[
        "restore",
        b1["id"].as_str().unwrap(),
        "--mysql-conf",
        conf.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        sql(
            &s.state,
            &format!("SELECT id, name, HEX(data) FROM {db}.items ORDER BY id")
        ),
        before
    );
    // A second day's dump mostly deduplicates.
    let b2 = repo.backup::<&str>(
        &[],
        &["--mysql-conf", conf.to_str().unwrap(), "--name", "db"],
    );
    assert_eq!(b2["parent"], b1["id"]);
    // A file tree snapshot is not a dump.
    let f = repo.backup(&[repo.dir("c")], &[]);
    repo.run(&[
        "restore",
        f["id"].as_str().unwrap(),
        "--mysql-conf",
        conf.to_str().unwrap(),
    ])
    .failed()
    .error_names(&["not a MySQL logical backup"]);
    sql(&s.state, &format!("DROP DATABASE {db}"));
}

#[test]
fn refused_privileges_and_unreachable_servers_are_clear_errors() {
    let Some(s) = server() else { return };
    let repo = Repo::new();
    // A user without the privilege to read the binary log position.
    repo.run(&[
        "backup",
        "--mysql-conf",
        s.weak.to_str().unwrap(),
        "--name",
        "db",
    ])
    .failed()
    .error_names(&["MySQL refused", "Access denied"]);
    // A user that may not take the global read lock.
    let t = repo.dir("t");
    repo.run(&[
        "backup",
        "--mysql-conf",
        s.weak.to_str().unwrap(),
        "--snapshot",
        t.to_str().unwrap(),
    ])
    .failed()
    .error_names(&["FLUSH TABLES WITH READ LOCK"]);
    // Nothing listening.
    let dead = repo.dir("c").join("dead.conf");
    write(
        &dead,
        "host = 127.0.0.1\nport = 1\nuser = x\npassword = y\n",
    );
    repo.run(&[
        "backup",
        "--mysql-conf",
        dead.to_str().unwrap(),
        "--name",
        "db",
    ])
    .failed()
    .error_names(&["MySQL refused", "connect"]);
    assert!(repo.snapshots().is_empty());
}

#[test]
fn snapshot_backup_of_a_running_server_on_btrfs_is_consistent() {
    let Some(_) = server() else { return };
    if !have("mkfs.btrfs") {
        eprintln!("skipped: btrfs-progs missing");
        return;
    }
    let repo = Repo::new();
    let dir = repo.dir("b");
    let img = dir.join("btrfs.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(512 << 20)
        .unwrap();
    let Some(dev) = Loop::attach(&img) else {
        return;
    };
    sh(&format!("mkfs.btrfs -q {}", dev.dev.display()));
    let mnt = mount(&dev.dev, &dir.join("mnt"), &[]);
    sh(&format!("btrfs subvolume create {}/mysql", mnt.0.display()));
    // A second server whose data directory lives on btrfs.
    let state = dir.join("srv");
    let datadir = mnt.0.join("mysql/data");
    sh(&format!(
        "bash {MARIADB_SH} start {} {}",
        state.display(),
        datadir.display()
    ));
    struct Stop(PathBuf);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new("bash")
                .args([MARIADB_SH, "stop"])
                .arg(&self.0)
                .status();
        }
    }
    let _stop = Stop(state.clone());
    sql(&state, "CREATE DATABASE app; CREATE TABLE app.t(id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB; INSERT INTO app.t VALUES (1,'one'),(2,'two');");
    let conf = state.join("freezer-mysql.conf");
    let b = repo.backup(
        &[&datadir],
        &["--mysql-conf", conf.to_str().unwrap(), "--snapshot"],
    );
    let tags = b["snapshot_tags"].clone();
    let snap = &repo.snapshots()[0];
    let tag = snap["tags"][0].as_str().unwrap_or_default().to_string();
    assert!(
        tag.starts_with("mysql-binlog=") && tag.contains(':'),
        "binlog position tag missing: {snap} {tags}"
    );
    // Tables are unlocked again: writes work.
    sql(&state, "INSERT INTO app.t VALUES (3,'three');");
    // The restored data directory starts as a working server with the snapshot's rows.
    let restored = repo.fresh("restored");
    repo.restore(b["id"].as_str().unwrap(), &restored, &[]);
    drop(_stop);
    let st2 = dir.join("srv2");
    sh(&format!(
        "bash {MARIADB_SH} start {} {}",
        st2.display(),
        restored.display()
    ));
    let _stop2 = Stop(st2.clone());
    assert_eq!(
        sql(&st2, "SELECT id, v FROM app.t ORDER BY id"),
        "1\tone\n2\ttwo\n"
    );
}

#[test]
fn agent_mysql_mode_archives_the_datadir_with_tables_locked() {
    let Some(s) = server() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "mysql agent pass\n").unwrap();
    let container = tmp.path().join("c");
    let data = s.state.join("data");
    let run = |extra: &[&std::ffi::OsStr]| {
        let mut a: Vec<std::ffi::OsString> = vec![
            os("agent"),
            os("--mode"),
            os("mysql"),
            os("--mysql-conf"),
            os(&s.conf),
            os("--storage"),
            os("local"),
            os("--container"),
            os(&container),
            os("-N"),
            os("db"),
            os("--encrypt-pass-file"),
            os(&pass),
        ];
        a.extend(extra.iter().map(os));
        rime_raw(a, &[])
    };
    run(&[std::ffi::OsStr::new("-F"), data.as_os_str()]).ok();
    // Without --mysql-conf, mysql mode is refused.
    rime_raw(
        [
            os("agent"),
            os("--mode"),
            os("mysql"),
            os("--storage"),
            os("local"),
            os("--container"),
            os(&container),
            os("-F"),
            os(&data),
        ],
        &[],
    )
    .error_names(&["--mysql-conf"]);
    let o = rime_raw(
        [
            os("--repo"),
            os(container.join("rime")),
            os("--password-file"),
            os(&pass),
            os("snapshots"),
            os("--json"),
        ],
        &[],
    );
    let text = o.ok().stdout.clone();
    assert!(
        text.contains("tar-level") && text.contains("\"freezer.mode\""),
        "{text}"
    );
    assert!(text.contains("\"mysql\""), "{text}");
}
