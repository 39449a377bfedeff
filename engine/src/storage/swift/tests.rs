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
    let s = open(
        c.clone(),
        &format!("swift://{}/some/prefix", unique("conf")),
    )
    .with_list_limit(7);
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
    let names: Vec<String> = (0..10u32)
        .map(|i| format!("{:02x}{:062x}", i * 37, i))
        .collect();
    for n in &names {
        a.write(FileKind::Pack, n, n.as_bytes()).unwrap();
    }
    ab.write(FileKind::Pack, &names[0], b"other").unwrap();
    top.write(FileKind::Snapshot, &names[1], b"top").unwrap();
    let listed: Vec<String> = a
        .list(FileKind::Pack)
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    let mut want = names.clone();
    want.sort();
    assert_eq!(
        listed, want,
        "all pages, nothing of the neighbouring prefix 'ab'"
    );
    assert_eq!(ab.list(FileKind::Pack).unwrap().len(), 1);
    assert_eq!(
        top.list(FileKind::Pack).unwrap().len(),
        0,
        "a/ and ab/ are not the top's data/"
    );
    assert_eq!(top.list(FileKind::Snapshot).unwrap().len(), 1);
    assert_eq!(a.list(FileKind::Snapshot).unwrap().len(), 0);
}

#[test]
fn container_is_created_on_first_write_and_missing_container_lists_empty() {
    let c = need_swift!(1);
    let s = open(c, &format!("swift://{}/x", unique("auto")));
    assert!(s.list(FileKind::Index).unwrap().is_empty());
    assert_eq!(
        s.read(FileKind::Index, "abcd").unwrap_err().kind(),
        ErrorKind::MissingObject
    );
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
    assert!(
        msg.contains(&container) && msg.contains("data/ab/abcdef"),
        "{msg}"
    );
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

/// Keystone v3 variables from tests/services/keystone.sh, as lower-case `os_*` keys.
fn keystone_map() -> Option<HashMap<String, String>> {
    let var = |k: &str| std::env::var(format!("RIME_TEST_KEYSTONE_{k}")).ok();
    let mut m = HashMap::new();
    for (k, v) in [
        ("os_auth_url", "AUTH_URL"),
        ("os_username", "USERNAME"),
        ("os_password", "PASSWORD"),
        ("os_project_name", "PROJECT_NAME"),
        ("os_user_domain_name", "USER_DOMAIN_NAME"),
        ("os_project_domain_name", "PROJECT_DOMAIN_NAME"),
        ("os_region_name", "REGION"),
    ] {
        m.insert(k.to_string(), var(v)?);
    }
    Some(m)
}

macro_rules! need_keystone {
    () => {
        match keystone_map() {
            Some(m) => m,
            None => {
                println!("skipped: RIME_TEST_KEYSTONE_* not set (start tests/services/keystone.sh, or run tests/run.sh)");
                return;
            }
        }
    };
}

/// Write, list, read, ranged read and remove through a storage: the operations a backup and a
/// restore use, for auth variants where the whole conformance suite would only repeat itself.
fn basic_round_trip(s: &SwiftStorage) {
    s.create().unwrap();
    let data: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    s.write(FileKind::Pack, "abcdef", &data).unwrap();
    s.write(FileKind::Snapshot, "0123", b"snap").unwrap();
    assert_eq!(s.read(FileKind::Pack, "abcdef").unwrap(), data);
    assert_eq!(
        s.read_range(FileKind::Pack, "abcdef", 1000, 5000).unwrap(),
        &data[1000..6000]
    );
    assert_eq!(s.list(FileKind::Pack).unwrap().len(), 1);
    assert_eq!(s.list(FileKind::Snapshot).unwrap()[0].size, 4);
    s.remove(FileKind::Snapshot, "0123").unwrap();
    assert_eq!(
        s.read(FileKind::Snapshot, "0123").unwrap_err().kind(),
        ErrorKind::MissingObject
    );
}

#[test]
fn keystone_password_auth_and_catalog() {
    let m = need_keystone!();
    let c = SwiftCredentials::from_map(&m).unwrap();
    basic_round_trip(&open(c, &format!("swift://{}/ks", unique("ks"))));
    // The internal interface, and no region at all (first matching endpoint).
    let mut m2 = m.clone();
    m2.insert("os_interface".into(), "internal".into());
    m2.remove("os_region_name");
    let s = open(
        SwiftCredentials::from_map(&m2).unwrap(),
        &format!("swift://{}", unique("ksi")),
    );
    basic_round_trip(&s);
}

#[test]
fn keystone_application_credential() {
    let m = need_keystone!();
    let (Ok(id), Ok(secret)) = (
        std::env::var("RIME_TEST_KEYSTONE_APP_CRED_ID"),
        std::env::var("RIME_TEST_KEYSTONE_APP_CRED_SECRET"),
    ) else {
        println!("skipped: RIME_TEST_KEYSTONE_APP_CRED_ID/_SECRET not set");
        return;
    };
    let map: HashMap<String, String> = [
        ("os_auth_url", m["os_auth_url"].clone()),
        ("os_application_credential_id", id),
        ("os_application_credential_secret", secret),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let c = SwiftCredentials::from_map(&map).unwrap();
    basic_round_trip(&open(c, &format!("swift://{}", unique("ksapp"))));
}

#[test]
fn keystone_errors_name_what_is_wrong() {
    let m = need_keystone!();
    let mut bad = m.clone();
    bad.insert("os_password".into(), "wrong".into());
    let s = open(SwiftCredentials::from_map(&bad).unwrap(), "swift://c");
    let e = s.list(FileKind::Snapshot).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(
        e.to_string().contains(&m["os_auth_url"]) && e.to_string().contains("rimeuser"),
        "{e}"
    );
    let mut region = m.clone();
    region.insert("os_region_name".into(), "Atlantis".into());
    let s = open(SwiftCredentials::from_map(&region).unwrap(), "swift://c");
    let e = s.list(FileKind::Snapshot).unwrap_err();
    assert!(
        e.to_string().contains("Atlantis") && e.to_string().contains("public@RegionOne"),
        "{e}"
    );
}

/// A token revoked by an administrator: Swift answers 401, the client gets a new token and the
/// request goes through.
#[test]
fn keystone_revoked_token_is_renewed() {
    let m = need_keystone!();
    let admin_pw = std::env::var("RIME_TEST_KEYSTONE_ADMIN_PASSWORD").unwrap();
    let s = open(
        SwiftCredentials::from_map(&m).unwrap(),
        &format!("swift://{}", unique("ksrev")),
    );
    s.write(FileKind::Key, "aa", b"before").unwrap();
    let old = s.inner.client.session().unwrap().token.clone();
    let http = reqwest::blocking::Client::new();
    let tokens = keystone::tokens_url(&m["os_auth_url"]);
    let admin = http
        .post(&tokens)
        .header("Content-Type", "application/json")
        .body(
            serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"id": "default"}, "password": admin_pw}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
            .to_string(),
        )
        .send()
        .unwrap();
    assert!(admin.status().is_success(), "{}", admin.status());
    let admin_token = admin.headers()["X-Subject-Token"]
        .to_str()
        .unwrap()
        .to_string();
    let r = http
        .delete(&tokens)
        .header("X-Auth-Token", &admin_token)
        .header("X-Subject-Token", &old)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204, "token revoked");
    // The proxy trusts a validated token for 5 s (token_cache_time in keystone.sh).
    std::thread::sleep(std::time::Duration::from_secs(6));
    assert_eq!(s.read(FileKind::Key, "aa").unwrap(), b"before");
    s.write(FileKind::Key, "bb", b"after").unwrap();
    let new = s.inner.client.session().unwrap().token.clone();
    assert_ne!(old, new, "the revoked token was replaced");
}
