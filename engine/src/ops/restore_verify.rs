//! `restore --verify` for file trees: once the restore is done, every restored file is read back
//! and compared with the snapshot chunk by chunk, by keyed id (holes must read as zeros).
//!
//! Each blob is already verified before it is written; this catches what happens after: a disk,
//! controller or file system that loses or alters writes, or another process writing into the
//! target during the restore. Better found at restore time than on first use.

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rayon::prelude::*;

use crate::crypto::Keys;
use crate::format::tree::{Node, Part};

/// Holes are read back in pieces of this size.
const HOLE_PIECE: u64 = 1 << 20;

thread_local! {
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Read back `files` (path and the node it was restored from) and `links` (a hard link and the
/// file it must be the same inode as). Returns the bytes compared and one line per file that
/// differs, naming the first differing byte range.
pub(crate) fn verify_restored<'a>(
    keys: &Keys,
    files: impl IntoParallelIterator<Item = (&'a Path, &'a Node)>,
    links: &[(&'a Path, &'a Path)],
) -> (u64, Vec<String>) {
    let bytes = AtomicU64::new(0);
    let problems = Mutex::new(Vec::new());
    files.into_par_iter().for_each(|(path, node)| {
        match verify_file(keys, path, node) {
            Ok(()) => {}
            Err(p) => problems.lock().push(format!("{}: {p}", path.display())),
        }
        bytes.fetch_add(node.size, Ordering::Relaxed);
    });
    let mut problems = problems.into_inner();
    for (link, file) in links {
        let same = match (std::fs::metadata(link), std::fs::metadata(file)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            problems.push(format!(
                "{}: not a hard link to {}",
                link.display(),
                file.display()
            ));
        }
    }
    problems.sort();
    (bytes.into_inner(), problems)
}

/// Open a restored file for reading. Its snapshot mode may deny the owner reading (`0000`, as
/// `/etc/shadow` has on some systems): then read permission is added for the time of the open
/// and the mode put back, which the file's owner may always do.
fn open_for_reading(path: &Path) -> std::io::Result<File> {
    match File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::symlink_metadata(path)?.permissions().mode();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | 0o400))?;
            let f = File::open(path);
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            f
        }
        r => r,
    }
}

/// Compare one restored file with its node; the error says where it first differs.
fn verify_file(keys: &Keys, path: &Path, node: &Node) -> Result<(), String> {
    let f = open_for_reading(path).map_err(|e| format!("cannot be read back: {e}"))?;
    let len = f
        .metadata()
        .map_err(|e| format!("cannot be read back: {e}"))?
        .len();
    if len != node.size {
        return Err(format!("{len} bytes, the snapshot has {}", node.size));
    }
    // Holes need reading only where the restored file has data on disk: a hole on disk reads
    // as zeros by definition (a 10 GiB sparse image is not read 10 GiB long).
    let extents = match node.content.iter().any(|p| matches!(p, Part::Hole { .. })) {
        true => crate::sys::data_extents(&f, len).unwrap_or_else(|_| vec![(0, len)]),
        false => vec![],
    };
    BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        let mut off = 0u64;
        let mut next_extent = 0;
        for part in &node.content {
            let end = off + part.len();
            let differs = || format!("bytes {off}..{end} differ from the snapshot");
            let read = |buf: &mut Vec<u8>, at: u64, n: usize| -> Result<(), String> {
                if buf.len() < n {
                    buf.resize(n, 0);
                }
                f.read_exact_at(&mut buf[..n], at)
                    .map_err(|e| format!("bytes {at}..{} cannot be read back: {e}", at + n as u64))
            };
            match *part {
                Part::Data { id, len } => {
                    read(&mut buf, off, len as usize)?;
                    if keys.blob_id(&buf[..len as usize]) != id {
                        return Err(differs());
                    }
                }
                Part::Hole { .. } => {
                    // Parts and extents both ascend: skip the extents that end before this
                    // hole once, rather than scanning all of them for every hole.
                    while next_extent < extents.len() && extents[next_extent].1 <= off {
                        next_extent += 1;
                    }
                    for &(s, e) in extents[next_extent..].iter().take_while(|x| x.0 < end) {
                        let (mut at, stop) = (s.max(off), e.min(end));
                        while at < stop {
                            let n = (stop - at).min(HOLE_PIECE) as usize;
                            read(&mut buf, at, n)?;
                            if !crate::ops::backup::is_zero(&buf[..n]) {
                                return Err(differs());
                            }
                            at += n as u64;
                        }
                    }
                }
            }
            off = end;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tree::NodeKind;

    fn node(keys: &Keys, content: &[&[u8]], hole: u64) -> Node {
        let mut parts: Vec<Part> = content
            .iter()
            .map(|c| Part::Data {
                id: keys.blob_id(c),
                len: c.len() as u32,
            })
            .collect();
        parts.insert(1, Part::Hole { len: hole });
        let size = parts.iter().map(Part::len).sum();
        Node {
            name: b"f".to_vec(),
            kind: NodeKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            user: String::new(),
            group: String::new(),
            mtime: Default::default(),
            ctime: Default::default(),
            inode: 0,
            device: 0,
            links: 1,
            size,
            content: parts,
            subtree: None,
            link_target: vec![],
            rdev: 0,
            xattrs: vec![],
        }
    }

    #[test]
    fn a_changed_byte_a_filled_hole_and_a_wrong_size_are_each_named() {
        let keys = Keys::derive(&crate::crypto::MasterSecret::random(), true);
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (vec![1u8; 3000], vec![2u8; 5000]);
        let n = node(&keys, &[&a, &b], 2_500_000);
        let good = [a.as_slice(), &vec![0u8; 2_500_000], &b].concat();
        let p = dir.path().join("f");
        std::fs::write(&p, &good).unwrap();
        let (bytes, problems) = verify_restored(&keys, vec![(p.as_path(), &n)], &[]);
        assert_eq!((bytes, problems.len()), (n.size, 0), "{problems:?}");

        let mut bad = good.clone();
        bad[3000 + 2_500_000 + 17] ^= 1;
        std::fs::write(&p, &bad).unwrap();
        let (_, problems) = verify_restored(&keys, vec![(p.as_path(), &n)], &[]);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].ends_with("bytes 2503000..2508000 differ from the snapshot"),
            "{problems:?}"
        );

        let mut bad = good.clone();
        bad[3000 + 1_500_000] = 9;
        std::fs::write(&p, &bad).unwrap();
        let (_, problems) = verify_restored(&keys, vec![(p.as_path(), &n)], &[]);
        assert!(
            problems[0].ends_with("bytes 3000..2503000 differ from the snapshot"),
            "{problems:?}"
        );

        std::fs::write(&p, &good[..100]).unwrap();
        let (_, problems) = verify_restored(&keys, vec![(p.as_path(), &n)], &[]);
        assert!(
            problems[0].contains("100 bytes, the snapshot has 2508000"),
            "{problems:?}"
        );

        let other = dir.path().join("g");
        std::fs::write(&other, &good).unwrap();
        let (_, problems) = verify_restored(&keys, vec![], &[(other.as_path(), p.as_path())]);
        assert!(problems[0].contains("not a hard link to"), "{problems:?}");
    }
}
