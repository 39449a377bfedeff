//! Freezer names its backups' directory `<host>_<name>`, and host names may contain `_`
//! (`web_01`): `info`, `restore`, `import-freezer` select on the whole directory name, and show
//! and import the host and name that were asked for, not a split at the first `_`.

use crate::freezer_fixture::*;
use crate::util::*;

#[test]
fn freezer_host_with_underscore_is_found_by_info_and_import() {
    let mut spec = Spec::new("gzip", Some(Kdf::Sha256));
    spec.host = "web_01";
    spec.name = "etc";
    let f = Fixture::build(spec);
    let agent = |extra: &[&str]| f.agent(extra);
    // No rime repository in the container: Freezer's backups are all there is.
    let o = agent(&[
        "--action",
        "info",
        "--json",
        "--hostname",
        "web_01",
        "-N",
        "etc",
    ]);
    let rows = o.ok().json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), f.made.len(), "{rows:?}");
    for r in rows {
        assert_eq!(
            (r["hostname"].as_str(), r["backup_name"].as_str()),
            (Some("web_01"), Some("etc")),
            "{r}"
        );
    }
    let o = agent(&["--action", "info", "--hostname", "web_01"]);
    assert!(
        o.ok()
            .stdout
            .contains(&format!("{} restore point", f.made.len())),
        "{}",
        o.stdout
    );
    // Another host: nothing, said as such (not "run rime init").
    let o = agent(&["--action", "info", "--hostname", "web_02", "-N", "etc"]);
    assert!(o.ok().stdout.contains("0 restore point"), "{}", o.stdout);
    assert!(!o.stderr.contains("rime init"), "{}", o.stderr);
    // Restore by the host's full name.
    let target = f.tmp.path().join("restored");
    agent(&[
        "--action",
        "restore",
        "--hostname",
        "web_01",
        "-N",
        "etc",
        "--restore-abs-path",
        target.to_str().unwrap(),
    ])
    .ok();
    compare_trees(&f.made.last().unwrap().state, &target);
    // import-freezer --host web_01: listed, and imported under host web_01, name etc.
    let repo = Repo::new();
    let import = |extra: &[&str]| {
        let mut args = f.import_args(&repo, &f.container);
        args.extend([os("--host"), os("web_01")]);
        args.extend(extra.iter().map(os));
        rime_raw(args, &[])
    };
    let listed = import(&["--list"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), f.made.len(), "{listed}");
    assert_eq!(listed[0]["host"], "web_01", "{listed}");
    assert_eq!(listed[0]["name"], "etc", "{listed}");
    assert_eq!(import(&[]).ok().json()["imported"], f.made.len());
    for s in repo.snapshots() {
        assert_eq!(
            (s["hostname"].as_str(), s["name"].as_str()),
            (Some("web_01"), Some("etc")),
            "{s}"
        );
    }
}
