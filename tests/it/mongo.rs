//! `--mode mongo` refuses to back up a node that is not the replica set's primary.
//!
//! No MongoDB server can be installed on this machine (Debian 12 ships none, and the PyPI/npm
//! in-memory servers download mongod at run time), so these tests put a stand-in `mongosh` on
//! PATH that answers `db.hello()` as a primary, a secondary, or a node that is down would. What
//! is tested for real: rime's question, its parsing of the answer, and that a refused run saves
//! nothing.

use std::fs;

use crate::util::*;

fn fake_mongosh(dir: &std::path::Path, answer: &str, exit: i32) -> String {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/sh\necho \"$@\" >> {log}\necho 'Current Mongosh Log ID: 1234' \ncat <<'JSON'\n{answer}\nJSON\nexit {exit}\n",
        log = dir.join("calls").display()
    );
    write(&bin.join("mongosh"), script);
    chmod(&bin.join("mongosh"), 0o755);
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

fn run_with_path(repo: &Repo, path: &str, args: &[&str]) -> Out {
    repo.run_with_password_and_env(args, &[("PATH", std::ffi::OsStr::new(path))])
}

#[test]
fn mongo_mode_backs_up_only_the_primary() {
    let repo = Repo::new();
    let data = repo.dir("dbpath");
    write(&data.join("collection-0.wt"), b"wiredtiger data");
    let d = repo.dir("m1");
    let path = fake_mongosh(
        &d,
        r#"{"isWritablePrimary":true,"me":"db1:27017","primary":"db1:27017","ok":1}"#,
        0,
    );
    run_with_path(
        &repo,
        &path,
        &[
            "backup",
            "--mode",
            "mongo",
            "--mongo-uri",
            "mongodb://127.0.0.1:27099",
            data.to_str().unwrap(),
        ],
    )
    .ok();
    let calls = fs::read_to_string(d.join("calls")).unwrap();
    assert!(
        calls.contains("mongodb://127.0.0.1:27099") && calls.contains("db.hello"),
        "{calls}"
    );
    assert_eq!(repo.snapshots().len(), 1);

    let d = repo.dir("m2");
    let path = fake_mongosh(
        &d,
        r#"{"isWritablePrimary":false,"secondary":true,"me":"db2:27017","primary":"db1:27017","ok":1}"#,
        0,
    );
    run_with_path(
        &repo,
        &path,
        &["backup", "--mode", "mongo", data.to_str().unwrap()],
    )
    .failed()
    .error_names(&["db2:27017", "not the primary", "db1:27017"]);

    let d = repo.dir("m3");
    let path = fake_mongosh(
        &d,
        "MongoNetworkError: connect ECONNREFUSED 127.0.0.1:27017",
        1,
    );
    run_with_path(
        &repo,
        &path,
        &["backup", "--mode", "mongo", data.to_str().unwrap()],
    )
    .failed()
    .error_names(&["cannot ask MongoDB"]);
    assert_eq!(repo.snapshots().len(), 1, "refused runs saved nothing");
}
