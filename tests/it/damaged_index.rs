//! One damaged index file: reading commands and backups go on with a warning that names it
//! and says to run `rime repair`; prune refuses; check reports it; repair heals it.

use std::fs;

use crate::util::*;

/// Index files written since `before`.
fn new_index_files(
    r: &Repo,
    before: &[(String, std::path::PathBuf)],
) -> Vec<(String, std::path::PathBuf)> {
    r.objects("index")
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect()
}

fn warns_of(out: &Out, index_file: &str) {
    assert!(
        out.stderr.contains("rime: warning: index file")
            && out.stderr.contains(index_file)
            && out.stderr.contains("rime repair"),
        "no warning naming the damaged index file {index_file}:\n{}",
        out.stderr
    );
}

#[test]
fn a_damaged_index_file_warns_readers_refuses_prune_and_is_repaired() {
    let r = Repo::new();
    let src = r.dir("src");
    write_random_file(&src.join("old"), 1, 300_000);
    let a = r.backup(&[&src], &[])["id"].as_str().unwrap().to_string();
    let a_index = new_index_files(&r, &[]);
    assert_eq!(a_index.len(), 1);
    write_random_file(&src.join("new"), 2, 300_000);
    let before = r.objects("index");
    let b = r.backup(&[&src], &[])["id"].as_str().unwrap().to_string();
    assert_eq!(new_index_files(&r, &before).len(), 1);

    // Snapshot a's index file (its tree and the data of `old`, which b reuses) is cut short.
    let (damaged, path) = &a_index[0];
    let len = fs::metadata(path).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let packs = r.objects("data").len();

    // Listing needs no index; ls, dump and stats go on with the warning.
    assert_eq!(r.snapshots().len(), 2);
    let out = r.run(&["ls", &b]);
    out.ok();
    warns_of(&out, damaged);
    assert!(
        out.stdout.contains("new") && out.stdout.contains("old"),
        "{}",
        out.stdout
    );
    let out = r.run(&["dump", &b, "/new"]);
    out.ok();
    warns_of(&out, damaged);
    assert_eq!(
        out.raw_stdout,
        fs::read(src.join("new")).unwrap(),
        "dump wrote the file"
    );
    warns_of(r.run(&["stats"]).ok(), damaged);

    // Restore writes what it can find, and fails naming the blob it cannot, and the cure.
    let t = r.fresh("t");
    let out = r.run(&["restore", &b, "--target", t.to_str().unwrap()]);
    out.failed();
    warns_of(&out, damaged);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("old: not restored")
            && all.contains("data blob")
            && all.contains(&format!("damaged index file(s) {damaged} may list it")),
        "{all}"
    );
    assert_eq!(
        fs::read(t.join("new")).unwrap(),
        fs::read(src.join("new")).unwrap()
    );
    // Snapshot a's own tree is only in the damaged file.
    let out = r.run(&["restore", &a, "--target", r.fresh("ta").to_str().unwrap()]);
    out.error_names(&["tree", "not in the index", damaged, "rime repair"]);

    // Check reports the damaged file as an error.
    let out = r.run(&["check"]);
    out.failed();
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains(damaged.as_str()),
        "{}{}",
        out.stdout,
        out.stderr
    );

    // Prune would take the packs listed only there for unused: it refuses and deletes nothing.
    r.run(&["prune"])
        .error_names(&["prune refused", damaged, "rime repair"]);
    assert_eq!(r.objects("data").len(), packs);

    // A backup stores again what it cannot find (`old` is unchanged, but its blobs are listed
    // only in the damaged file), so its snapshot restores whole.
    let out = r.run(&["backup", "--json", src.to_str().unwrap()]);
    out.ok();
    warns_of(&out, damaged);
    let c = out.json()["id"].as_str().unwrap().to_string();
    let tc = r.fresh("tc");
    r.restore(&c, &tc, &[]);
    compare_trees(&src, &tc);

    // Repair rebuilds the index from the packs: everything is whole again, without warnings.
    r.run(&["repair"]).ok();
    let out = r.run(&["check"]);
    out.ok();
    assert!(
        !out.stderr.contains("warning: index file"),
        "{}",
        out.stderr
    );
    for s in [&a, &b] {
        let t = r.fresh(&format!("after-{s}"));
        r.restore(s, &t, &[]);
    }
    r.run(&["prune"]).ok();
}

/// A scheduled agent run is read from its job log afterwards: the warning about a damaged index
/// file goes there too, at WARNING, naming the file and the cure.
#[test]
fn the_agent_logs_a_damaged_index_file_in_its_job_log() {
    let j = crate::agent::Job::new();
    write_random_file(&j.src().join("data"), 3, 300_000);
    j.backup(&["--engine", "rime"]);
    let index = j.p("container/rime/index");
    let files: Vec<_> = fs::read_dir(&index).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(files.len(), 1, "one index file after one backup");
    let (name, path) = (
        files[0].file_name().to_string_lossy().into_owned(),
        files[0].path(),
    );
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let log = j.p("agent.log");
    let out = j.run(&[
        "--path-to-backup",
        &j.src().display().to_string(),
        "--engine",
        "rime",
        "--log-file",
        &log.display().to_string(),
    ]);
    out.ok();
    warns_of(&out, &name);
    let logged = fs::read_to_string(&log).unwrap();
    let line = logged
        .lines()
        .find(|l| l.contains(" WARNING ") && l.contains(&name))
        .unwrap_or_else(|| panic!("no WARNING line naming {name} in the job log:\n{logged}"));
    assert!(line.contains("rime repair"), "{line}");
}
