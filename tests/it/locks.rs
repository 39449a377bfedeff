//! Lock staleness as `rime unlock` judges it: a dead PID counts only where it names a process
//! of this host, boot and PID namespace (format-spec/SPEC.md, section 9.1).

use std::sync::Arc;

use rime_engine::id::LockId;
use rime_engine::repo::lock::{write_lock, LockBody, ProcessScope};
use rime_engine::repo::Repository;
use rime_engine::storage::LocalStorage;

use crate::util::*;

/// A PID that no process has (above the kernel's PID limit).
const DEAD_PID: u32 = i32::MAX as u32;

fn open(r: &Repo) -> Repository {
    Repository::open(
        Arc::new(LocalStorage::new(&r.path)),
        Some(PASSWORD.as_bytes()),
    )
    .unwrap()
}

/// A lock of a dead PID on this host, taken just now, as a process in `scope` would leave it.
fn dead_pid_lock(scope: Option<ProcessScope>, command: &str) -> LockBody {
    LockBody {
        exclusive: false,
        hostname: rime_engine::hostname(),
        pid: DEAD_PID,
        time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
        command: command.into(),
        holder: scope.as_ref().map(|_| LockId::random()),
        scope,
    }
}

#[test]
fn unlock_keeps_locks_of_other_pid_namespaces_and_old_locks_and_removes_dead_local_ones() {
    let r = Repo::new();
    let repo = open(&r);
    let here = ProcessScope::current();
    // A backup in a container with the host's name: its PID means nothing here.
    let container = ProcessScope {
        pid_namespace: "pid:[4026599999]".into(),
        ..here.clone()
    };
    write_lock(
        &repo,
        &dead_pid_lock(Some(container), "container backup"),
        LockId::random(),
    )
    .unwrap();
    // A lock from a rime before lock version 4: it does not say where its PID lives, so only
    // its age can make it stale (it was refreshed just now).
    write_lock(&repo, &dead_pid_lock(None, "old backup"), LockId::random()).unwrap();
    // A dead process of this very namespace: stale.
    write_lock(
        &repo,
        &dead_pid_lock(Some(here), "local backup"),
        LockId::random(),
    )
    .unwrap();
    assert_eq!(r.objects("locks").len(), 3);

    let out = r.run(&["unlock"]);
    out.ok();
    assert!(out.stdout.contains("1 lock(s) removed"), "{}", out.stdout);
    assert!(
        out.stdout.contains("`local backup`") && out.stdout.contains("no longer runs"),
        "{}",
        out.stdout
    );
    let left: Vec<String> = rime_engine::repo::lock::list_locks(&repo)
        .unwrap()
        .into_iter()
        .map(|l| l.body.unwrap().command)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&"container backup".to_string()), "{left:?}");
    assert!(left.contains(&"old backup".to_string()), "{left:?}");
    // They still hold off an exclusive operation, as live locks do.
    r.run(&["repair"]).error_names(&["locked", "backup`"]);
}

/// Two forgets at once could together remove every snapshot of a group (each decides from its
/// own listing): while one holds its lock, a second is refused and removes nothing; a backup's
/// lock does not stop a forget.
#[test]
fn a_forget_is_refused_while_another_forget_holds_its_lock() {
    let r = Repo::new();
    let src = r.dir("src");
    write(&src.join("f"), "one");
    let first = r.backup(&[&src], &[])["id"].as_str().unwrap().to_string();
    write(&src.join("f"), "two");
    r.backup(&[&src], &[]);
    let repo = open(&r);
    // The running forget: this test process (alive), as a forget leaves its lock.
    let forget = LockBody {
        pid: std::process::id(),
        ..dead_pid_lock(Some(ProcessScope::current()), "forget")
    };
    let id = LockId::random();
    write_lock(&repo, &forget, id).unwrap();
    r.run(&["forget", "--keep-last", "1"])
        .error_names(&["locked", "`forget`"]);
    r.run(&["forget", &first])
        .error_names(&["locked", "`forget`"]);
    assert_eq!(r.snapshots().len(), 2, "nothing was removed");

    // Gone: a backup's lock alone does not keep forget out.
    repo.storage()
        .remove(rime_engine::storage::FileKind::Lock, &id.to_hex())
        .unwrap();
    let backup = LockBody {
        pid: std::process::id(),
        ..dead_pid_lock(Some(ProcessScope::current()), "backup")
    };
    write_lock(&repo, &backup, LockId::random()).unwrap();
    r.run(&["forget", "--keep-last", "1"]).ok();
    assert_eq!(r.snapshots().len(), 1);
}

/// `rime locks` shows each lock with its kind, command, host, pid and age, and which are stale
/// and why (a dead process here), without removing any.
#[test]
fn locks_lists_each_lock_and_whether_it_is_stale() {
    let r = Repo::new();
    let out = r.run(&["locks"]);
    out.ok();
    assert!(out.stdout.contains("no locks"), "{}", out.stdout);
    let repo = open(&r);
    let live = LockBody {
        pid: std::process::id(),
        ..dead_pid_lock(Some(ProcessScope::current()), "backup")
    };
    write_lock(&repo, &live, LockId::random()).unwrap();
    let dead = LockBody {
        exclusive: true,
        ..dead_pid_lock(Some(ProcessScope::current()), "repair")
    };
    write_lock(&repo, &dead, LockId::random()).unwrap();

    let out = r.run(&["locks"]);
    out.ok();
    let line = |cmd: &str| {
        out.stdout
            .lines()
            .find(|l| l.contains(cmd))
            .unwrap_or_else(|| panic!("no line for {cmd}:\n{}", out.stdout))
            .to_string()
    };
    let b = line("backup");
    assert!(
        b.contains("shared") && b.contains(&std::process::id().to_string()) && b.ends_with("live"),
        "{b}"
    );
    let p = line("repair");
    assert!(
        p.contains("exclusive") && p.contains("stale: process") && p.contains("no longer runs"),
        "{p}"
    );
    assert!(b.contains(&rime_engine::hostname()), "{b}");

    let v = r.run(&["locks", "--json"]).json();
    let all = v.as_array().unwrap();
    assert_eq!(all.len(), 2, "{v}");
    let repair = all.iter().find(|l| l["command"] == "repair").unwrap();
    assert_eq!(repair["stale"], true, "{v}");
    assert_eq!(repair["exclusive"], true, "{v}");
    assert!(repair["age_secs"].as_i64().unwrap() < 60, "{v}");
    let backup = all.iter().find(|l| l["command"] == "backup").unwrap();
    assert_eq!(backup["stale"], false, "{v}");
    assert_eq!(backup["pid"], std::process::id(), "{v}");
    // Listing removes nothing.
    assert_eq!(r.objects("locks").len(), 2);
}
