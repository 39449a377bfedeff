//! Tests against the real Swift clusters started by `tests/services/swift.sh` (skipped, with a
//! printed reason, when its `RIME_TEST_SWIFT*` variables are not set).

use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::storage::conformance;

fn creds(cluster: u32) -> Option<SwiftCredentials> {
    let var = |k: &str| std::env::var(format!("RIME_TEST_SWIFT{cluster}_{k}")).ok();
    let (auth, user, key) = (var("AUTH")?, var("USER")?, var("KEY")?);
    let map: HashMap<String, String> = [("st_auth", auth), ("st_user", user), ("st_key", key)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Some(SwiftCredentials::from_map(&map).unwrap())
}

macro_rules! need_swift {
    ($cluster:expr) => {
        match creds($cluster) {
            Some(c) => c,
            None => {
                println!(
                    "skipped: RIME_TEST_SWIFT{}_AUTH/_USER/_KEY not set (start tests/services/swift.sh, or run tests/run.sh)",
                    $cluster
                );
                return;
            }
        }
    };
}

/// A container of its own for every test run, so reruns and parallel tests do not meet.
fn unique(tag: &str) -> String {
    format!(
        "rime-{tag}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

fn open(c: SwiftCredentials, url: &str) -> SwiftStorage {
    SwiftStorage::open(url, c).unwrap()
}

#[test]
fn swift_conforms_cluster1() {
    let c = need_swift!(1);
    // A small listing limit, so the 300-object listing of the suite takes several pages.
    let s = open(c.clone(), &format!("swift://{}/some/prefix", unique("conf"))).with_list_limit(7);
    conformance::run_all(&s);
    let s = open(c, &format!("swift://{}", unique("conc")));
    conformance::run_concurrent(Arc::new(s));
}

#[test]
fn swift_conforms_cluster2_with_short_lived_tokens() {
    let c = need_swift!(2);
    let s = open(c, &format!("swift://{}/p", unique("conf2"))).with_list_limit(50);
    conformance::run_all(&s);
}

#[test]
fn listing_pages_and_prefixes_are_separate() {
    let c = need_swift!(1);
    let container = unique("pages");
    let a = open(c.clone(), &format!("swift://{container}/a")).with_list_limit(3);
    let ab = open(c.clone(), &format!("swift://{container}/ab")).with_list_limit(3);
    let top = open(c, &format!("swift://{container}")).with_list_limit(3);
    let names: Vec<String> = (0..10u32).map(|i| format!("{:02x}{:062x}", i * 37, i)).collect();
    for n in &names {
        a.write(FileKind::Pack, n, n.as_bytes()).unwrap();
    }
    ab.write(FileKind::Pack, &names[0], b"other").unwrap();
    top.write(FileKind::Snapshot, &names[1], b"top").unwrap();
    let listed: Vec<String> = a.list(FileKind::Pack).unwrap().into_iter().map(|o| o.name).collect();
    let mut want = names.clone();
    want.sort();
    assert_eq!(listed, want, "all pages, nothing of the neighbouring prefix 'ab'");
    assert_eq!(ab.list(FileKind::Pack).unwrap().len(), 1);
    assert_eq!(top.list(FileKind::Pack).unwrap().len(), 0, "a/ and ab/ are not the top's data/");
    assert_eq!(top.list(FileKind::Snapshot).unwrap().len(), 1);
    assert_eq!(a.list(FileKind::Snapshot).unwrap().len(), 0);
}

#[test]
fn container_is_created_on_first_write_and_missing_container_lists_empty() {
    let c = need_swift!(1);
    let s = open(c, &format!("swift://{}/x", unique("auto")));
    assert!(s.list(FileKind::Index).unwrap().is_empty());
    assert_eq!(s.read(FileKind::Index, "abcd").unwrap_err().kind(), ErrorKind::MissingObject);
    s.write(FileKind::Index, "abcd", b"hello").unwrap();
    assert_eq!(s.read(FileKind::Index, "abcd").unwrap(), b"hello");
}

#[test]
fn missing_object_error_names_storage_and_object() {
    let c = need_swift!(1);
    let container = unique("miss");
    let s = open(c, &format!("swift://{container}/pre"));
    s.create().unwrap();
    let e = s.read_range(FileKind::Pack, "abcdef", 0, 10).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::MissingObject);
    let msg = e.to_string();
    assert!(msg.contains(&container) && msg.contains("data/ab/abcdef"), "{msg}");
}

#[test]
fn token_renewal_after_401() {
    let c = need_swift!(1);
    let s = open(c, &format!("swift://{}", unique("renew")));
    s.write(FileKind::Key, "aa", b"one").unwrap();
    s.spoil_token().unwrap();
    // The server answers 401 to the spoiled token; the client renews it and repeats the PUT.
    s.write(FileKind::Key, "bb", b"two").unwrap();
    s.spoil_token().unwrap();
    assert_eq!(s.read(FileKind::Key, "aa").unwrap(), b"one");
    s.spoil_token().unwrap();
    assert_eq!(s.list(FileKind::Key).unwrap().len(), 2);
}

#[test]
fn token_expiry_on_cluster2() {
    let c = need_swift!(2);
    let life: u64 = std::env::var("RIME_TEST_SWIFT2_TOKEN_LIFE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    if life > 30 {
        println!("skipped: cluster 2 tokens live {life} s, too long to wait for");
        return;
    }
    let s = open(c, &format!("swift://{}", unique("expiry")));
    s.write(FileKind::Key, "aa", b"one").unwrap();
    let first = s.inner.client.session().unwrap().token.clone();
    std::thread::sleep(std::time::Duration::from_secs(life + 1));
    assert_eq!(s.read(FileKind::Key, "aa").unwrap(), b"one");
    let second = s.inner.client.session().unwrap().token.clone();
    assert_ne!(first, second, "an expired token was renewed");
}

#[test]
fn wrong_key_is_unauthorized_and_says_where() {
    let c = need_swift!(1);
    let SwiftCredentials::V1 { auth_url, user, .. } = c else {
        unreachable!()
    };
    let bad = SwiftCredentials::V1 {
        auth_url: auth_url.clone(),
        user,
        key: "not-the-key".into(),
    };
    let s = open(bad, "swift://whatever");
    let e = s.list(FileKind::Snapshot).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(e.to_string().contains(&auth_url), "{e}");
}

#[test]
fn refused_connection_is_unavailable() {
    // A port nothing listens on (bound, then closed, here).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = SwiftCredentials::V1 {
        auth_url: format!("http://127.0.0.1:{port}/auth/v1.0"),
        user: "a:b".into(),
        key: "k".into(),
    };
    let s = open(c, "swift://c/p");
    let e = s.read(FileKind::Config, "config").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains(&port.to_string()), "{e}");
}

#[test]
fn url_forms() {
    let c = SwiftCredentials::V1 {
        auth_url: "http://127.0.0.1:1/auth/v1.0".into(),
        user: "a:b".into(),
        key: "k".into(),
    };
    let s = SwiftStorage::open("swift://cont/a/b/", c.clone()).unwrap();
    assert_eq!(s.inner.object(FileKind::Pack, "abcd"), "a/b/data/ab/abcd");
    assert_eq!(s.inner.object(FileKind::Config, "config"), "a/b/config");
    let s = SwiftStorage::open("swift://cont", c.clone()).unwrap();
    assert_eq!(s.inner.object(FileKind::Index, "abcd"), "index/abcd");
    for bad in ["swift://", "swift:///x", "swift://c/a//b", "swift://c/../x"] {
        assert!(SwiftStorage::open(bad, c.clone()).is_err(), "{bad}");
    }
}
