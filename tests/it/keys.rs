//! Key files (several passwords for one repository), and the real Argon2id KDF.

use std::fs;

use serde_json::Value;

use crate::util::*;

fn key_list(repo: &Repo, pw_file: &std::path::Path) -> Vec<Value> {
    let out = rime_raw(
        [
            os("--repo"),
            os(&repo.path),
            os("--password-file"),
            os(pw_file),
            os("key"),
            os("list"),
            os("--json"),
        ],
        &[],
    );
    out.ok();
    out.json()
        .as_array()
        .expect("key list --json is an array")
        .clone()
}

#[test]
fn add_list_remove_keys() {
    let repo = Repo::new();
    let src = repo.dir("src");
    write(&src.join("f"), b"data");
    repo.backup(&[&src], &[]);
    let pw2 = repo.tmp.path().join("pw2");
    fs::write(&pw2, "second password\n").unwrap();

    let out = repo.run(&[
        os("key"),
        os("add"),
        os("--new-password-file"),
        os(&pw2),
        os("--insecure-fast-kdf"),
        os("--json"),
    ]);
    out.ok();
    let new_id = out.json()["id"]
        .as_str()
        .expect("key add --json has the id")
        .to_string();

    // Both passwords open the repository.
    let with_pw2 = |args: &[&str]| {
        let mut a = vec![
            os("--repo"),
            os(&repo.path),
            os("--password-file"),
            os(&pw2),
        ];
        a.extend(args.iter().map(os));
        rime_raw(a, &[])
    };
    repo.run(&["snapshots"]).ok();
    with_pw2(&["snapshots"]).ok();
    let t = repo.fresh("t");
    with_pw2(&["restore", "latest", "--target", t.to_str().unwrap()]).ok();
    assert_eq!(fs::read(t.join("f")).unwrap(), b"data");

    let keys = key_list(&repo, &repo.pw_file);
    assert_eq!(keys.len(), 2, "{keys:?}");
    let current: Vec<&Value> = keys.iter().filter(|k| k["current"] == true).collect();
    assert_eq!(current.len(), 1, "exactly one current key: {keys:?}");
    let first_id = current[0]["id"].as_str().unwrap().to_string();
    assert_ne!(first_id, new_id, "the first password's key is current");
    for k in &keys {
        assert!(
            k["created"].is_number() && k["hostname"].is_string() && k["username"].is_string(),
            "{k}"
        );
    }
    let keys2 = key_list(&repo, &pw2);
    let cur2: Vec<&Value> = keys2.iter().filter(|k| k["current"] == true).collect();
    assert_eq!(cur2.len(), 1);
    assert_eq!(
        cur2[0]["id"].as_str(),
        Some(new_id.as_str()),
        "opened with the second password"
    );
    // Plain listing marks the current key with '*'.
    let out = repo.run(&["key", "list"]);
    out.ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with('*') && l.contains(&first_id[..8])),
        "{}",
        out.stdout
    );

    // The key in use cannot be removed.
    repo.run(&["key", "remove", &first_id[..8]])
        .error_names(&["refusing"]);
    assert_eq!(key_list(&repo, &repo.pw_file).len(), 2);
    // Unknown id.
    let unknown = if first_id.starts_with("ff") || new_id.starts_with("ff") {
        "00000000"
    } else {
        "ffffffff"
    };
    repo.run(&["key", "remove", unknown])
        .error_names(&[unknown]);

    // Remove the second key: its password no longer opens the repository.
    let out = repo.run(&["key", "remove", &new_id[..8]]);
    out.ok();
    assert_eq!(key_list(&repo, &repo.pw_file).len(), 1);
    let out = with_pw2(&["snapshots"]);
    out.code(12);
    out.error_names(&["wrong password"]);
    repo.run(&["snapshots"]).ok();
}

#[test]
fn default_argon2id_kdf_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("repo");
    let repo = Repo::at(tmp, path, &[]);
    let src = repo.dir("src");
    write(&src.join("f"), random_bytes(1, 10_000));
    write(&src.join("g/h"), b"h");
    repo.backup(&[&src], &[]);
    let t = repo.fresh("t");
    repo.restore("latest", &t, &[]);
    compare_trees(&src, &t);
    // A wrong password is still told apart with the real KDF.
    let bad = repo.tmp.path().join("bad");
    fs::write(&bad, "nope").unwrap();
    rime_raw(
        [
            os("--repo"),
            os(&repo.path),
            os("--password-file"),
            os(&bad),
            os("snapshots"),
        ],
        &[],
    )
    .code(12);
}
