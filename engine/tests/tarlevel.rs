//! Tar-level backups through the repository: a new level 0 after a level 1 stores almost
//! nothing new (one chunk per tar member), restore replays the chain with deletions, forget
//! keeps the levels a kept level needs, and a snapshot's SNAR continues the chain.

use std::path::Path;

mod common;
use common::{content, repo};

use rime_engine::ops::forget::{forget, ForgetOptions};
use rime_engine::ops::policy::Policy;
use rime_engine::ops::tarlevel::{self, LevelRules, TarBackupOptions};
use rime_engine::ops::volume::SnapshotMeta;
use rime_engine::ops::NoProgress;
use rime_engine::tarinc::{ApplyOptions, CreateOptions};

fn opts(root: &Path, rules: LevelRules) -> TarBackupOptions {
    TarBackupOptions {
        meta: SnapshotMeta {
            hostname: "h".into(),
            ..SnapshotMeta::new("job")
        },
        root: root.to_path_buf(),
        rules,
        create: CreateOptions::default(),
        compression: "gzip".into(),
        encrypted: true,
        annotations: vec![],
        now: chrono::Utc::now().timestamp(),
    }
}

#[test]
fn level0_after_level1_adds_under_5_percent_and_restores_with_deletions() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for d in 0..10 {
        std::fs::create_dir_all(src.join(format!("d{d}"))).unwrap();
        for f in 0..40 {
            let p = src.join(format!("d{d}/f{f}"));
            std::fs::write(&p, content(d * 100 + f, 4000 + (f as usize * 97))).unwrap();
        }
    }
    let repo = repo(&tmp.path().join("repo"));
    let r0 = tarlevel::backup(&repo, &opts(&src, LevelRules::default()), &NoProgress).unwrap();
    assert_eq!(r0.plan.level, 0);
    // 1 % of the files change, one is deleted.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for d in [1, 5, 8, 9] {
        let p = src.join(format!("d{d}/f7"));
        let mut c = std::fs::read(&p).unwrap();
        c.extend_from_slice(b"changed");
        std::fs::write(&p, c).unwrap();
    }
    std::fs::remove_file(src.join("d3/f3")).unwrap();
    let r1 = tarlevel::backup(&repo, &opts(&src, LevelRules::default()), &NoProgress).unwrap();
    assert_eq!(r1.plan.level, 1);
    assert_eq!(r1.plan.chain, vec![r0.backup.id]);
    let full = LevelRules {
        no_incremental: true,
        ..Default::default()
    };
    let r2 = tarlevel::backup(&repo, &opts(&src, full), &NoProgress).unwrap();
    assert_eq!(r2.plan.level, 0);
    let first = r0.backup.snapshot.stats.bytes_added as f64;
    let again = r2.backup.snapshot.stats.bytes_added as f64;
    assert!(
        again < 0.05 * first,
        "a level 0 after a level 1 added {again} bytes, the first level 0 {first}"
    );
    // Restoring the level 1 chain equals the tree, the deleted file included.
    let out = tmp.path().join("out");
    let chain = tarlevel::chain_of(&repo, &r1.backup.id).unwrap();
    assert_eq!(chain.len(), 2);
    tarlevel::restore_chain(&repo, &chain, &out, &ApplyOptions::default()).unwrap();
    assert!(!out.join("d3/f3").exists());
    for d in 0..10 {
        for f in 0..40 {
            let rel = format!("d{d}/f{f}");
            if rel == "d3/f3" {
                continue;
            }
            assert_eq!(
                std::fs::read(src.join(&rel)).unwrap(),
                std::fs::read(out.join(&rel)).unwrap(),
                "{rel}"
            );
        }
    }
    // The SNAR stored with the level 1 lists the tree's directories.
    let snar = tarlevel::load_snar(&repo, &chain[1].1).unwrap();
    assert!(snar.dirs.len() >= 11, "{} directories", snar.dirs.len());
}

#[test]
fn forget_keeps_the_levels_a_kept_level_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let repo = repo(&tmp.path().join("repo"));
    let mut ids = vec![];
    for i in 0..3 {
        std::fs::write(src.join("f"), format!("{i}")).unwrap();
        let r = tarlevel::backup(&repo, &opts(&src, LevelRules::default()), &NoProgress).unwrap();
        assert_eq!(r.plan.level, i);
        ids.push(r.backup.id);
    }
    let rep = forget(
        &repo,
        &ForgetOptions {
            policy: Policy {
                last: Some(1),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        rep.removed, 0,
        "levels 0 and 1 are needed by the kept level 2"
    );
    let chain = tarlevel::chain_of(&repo, &ids[2]).unwrap();
    assert_eq!(chain.len(), 3);
}
