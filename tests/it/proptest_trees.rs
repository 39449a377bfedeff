//! Random trees: backup → restore → compare; mutate → backup → restore both snapshots.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use crate::util::*;

#[derive(Debug, Clone)]
pub(crate) enum Content {
    Random(u64),
    /// A short pattern repeated (compresses and dedups).
    Repeat(Vec<u8>),
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    File {
        size: usize,
        content: Content,
        mode: u32,
        mtime: (i64, u32),
    },
    Symlink(Vec<u8>),
    Fifo,
    Dir {
        children: Vec<(Vec<u8>, Node)>,
        mode: u32,
        mtime: (i64, u32),
    },
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => "[a-z0-9][a-z0-9._-]{0,7}".prop_map(|s| s.into_bytes()),
        1 => Just(b"sp ace".to_vec()),
        1 => Just(b"nl\nname".to_vec()),
        1 => Just(b"-dash".to_vec()),
        1 => Just(b"\xff\xfebytes".to_vec()),
        1 => Just("ünï".as_bytes().to_vec()),
    ]
}

pub(crate) fn mtime() -> impl Strategy<Value = (i64, u32)> {
    (0i64..2_000_000_000, 0u32..1_000_000_000)
}

pub(crate) fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        any::<u64>().prop_map(Content::Random),
        prop::collection::vec(any::<u8>(), 1..16).prop_map(Content::Repeat),
    ]
}

fn leaf() -> impl Strategy<Value = Node> {
    prop_oneof![
        6 => (0usize..300_000, content(), 0o600u32..=0o777, mtime())
            .prop_map(|(size, content, mode, mtime)| Node::File { size, content, mode, mtime }),
        // Smaller files are the common case.
        4 => (0usize..2_000, content(), 0o600u32..=0o777, mtime())
            .prop_map(|(size, content, mode, mtime)| Node::File { size, content, mode, mtime }),
        2 => prop_oneof![name(), Just(b"/abs/target".to_vec()), Just(b"../up".to_vec())].prop_map(Node::Symlink),
        1 => Just(Node::Fifo),
    ]
}

fn children(inner: impl Strategy<Value = Node>) -> impl Strategy<Value = Vec<(Vec<u8>, Node)>> {
    prop::collection::btree_map(name(), inner, 0..6).prop_map(|m| m.into_iter().collect())
}

pub(crate) fn tree() -> impl Strategy<Value = Node> {
    let node = leaf().prop_recursive(3, 40, 6, |inner| {
        (children(inner), 0o700u32..=0o777, mtime()).prop_map(|(children, mode, mtime)| Node::Dir {
            children,
            mode,
            mtime,
        })
    });
    (children(node), mtime()).prop_map(|(children, mtime)| Node::Dir {
        children,
        mode: 0o755,
        mtime,
    })
}

pub(crate) fn bytes_of(size: usize, c: &Content) -> Vec<u8> {
    match c {
        Content::Random(seed) => random_bytes(*seed, size),
        Content::Repeat(p) => p.iter().copied().cycle().take(size).collect(),
    }
}

/// Create the tree at `path`; collects regular files and directories.
pub(crate) fn materialise(
    path: &Path,
    node: &Node,
    files: &mut Vec<PathBuf>,
    dirs: &mut Vec<PathBuf>,
) {
    match node {
        Node::File {
            size,
            content,
            mode,
            mtime,
        } => {
            fs::write(path, bytes_of(*size, content)).unwrap();
            chmod(path, *mode);
            set_mtime(path, mtime.0, mtime.1);
            files.push(path.to_path_buf());
        }
        Node::Symlink(t) => {
            symlink(osstring(t), path);
        }
        Node::Fifo => mkfifo(path),
        Node::Dir { children, .. } => {
            fs::create_dir_all(path).unwrap();
            dirs.push(path.to_path_buf());
            for (n, c) in children {
                materialise(&bytes_path(path, n), c, files, dirs);
            }
        }
    }
}

/// Directory modes and mtimes, after everything inside is written (children first).
pub(crate) fn finish_dirs(path: &Path, node: &Node) {
    if let Node::Dir {
        children,
        mode,
        mtime,
    } = node
    {
        for (n, c) in children {
            finish_dirs(&bytes_path(path, n), c);
        }
        chmod(path, *mode);
        set_mtime(path, mtime.0, mtime.1);
    }
}

/// Set a directory's mtime back after changing its entries.
fn keep_dir_mtime(dir: &Path, f: impl FnOnce()) {
    let m = fs::symlink_metadata(dir).unwrap();
    f();
    let t = filetime::FileTime::from_last_modification_time(&m);
    filetime::set_symlink_file_times(dir, t, t).unwrap();
}

#[derive(Debug, Clone)]
struct Case {
    root: Node,
    /// (file index, directory index): add a hard link to a file in a directory.
    links: Vec<(usize, usize)>,
    /// (file index, new size, new content, new mtime): rewrite a file.
    mutations: Vec<(usize, usize, Content, (i64, u32))>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        tree(),
        prop::collection::vec((any::<usize>(), any::<usize>()), 0..4),
        prop::collection::vec((any::<usize>(), 0usize..100_000, content(), mtime()), 1..4),
    )
        .prop_map(|(root, links, mutations)| Case {
            root,
            links,
            mutations,
        })
}

fn run_case(c: &Case) {
    let repo = Repo::new();
    let src = repo.tmp.path().join("src");
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    materialise(&src, &c.root, &mut files, &mut dirs);
    if !files.is_empty() {
        for (i, (f, d)) in c.links.iter().enumerate() {
            let file = &files[f % files.len()];
            let dir = &dirs[d % dirs.len()];
            fs::hard_link(file, dir.join(format!("hardlink-{i}"))).unwrap();
        }
    }
    if is_root() {
        chown_tree(&src, 1234, 5678);
    }
    finish_dirs(&src, &c.root);

    let first = repo.backup(&[&src], &[]);
    let t1 = repo.fresh("t1");
    repo.restore("latest", &t1, &[]);
    compare_trees(&src, &t1);
    let saved = repo.tmp.path().join("saved-first");
    cp_a(&src, &saved);
    compare_trees(&src, &saved); // the copy itself is exact

    // Mutate: rewrite some files (keeping their directories' mtimes), add one new file.
    for (f, size, content, mtime) in &c.mutations {
        if files.is_empty() {
            break;
        }
        let file = &files[f % files.len()];
        let mode = fs::metadata(file).unwrap().permissions();
        fs::write(file, bytes_of(*size, content)).unwrap();
        fs::set_permissions(file, mode).unwrap();
        set_mtime(file, mtime.0, mtime.1);
    }
    keep_dir_mtime(&src, || {
        write(&src.join("added-later"), b"new in the second snapshot")
    });

    let second = repo.backup(&[&src], &[]);
    assert_eq!(second["parent"], first["id"]);
    let t2 = repo.fresh("t2");
    repo.restore("latest", &t2, &[]);
    compare_trees(&src, &t2);

    let t3 = repo.fresh("t3");
    repo.restore(first["id"].as_str().unwrap(), &t3, &[]);
    compare_trees(&saved, &t3);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_trees_round_trip(c in case()) {
        run_case(&c);
    }
}
