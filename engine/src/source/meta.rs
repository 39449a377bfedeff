//! File metadata as recorded in tree nodes, and applying it back on restore.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use parking_lot::Mutex;

use crate::format::tree::{Node, NodeKind, Timestamp, Xattr};
use crate::sys;

/// uid/gid to name caches shared by the walker threads.
#[derive(Default)]
pub struct NameCache {
    users: Mutex<HashMap<u32, String>>,
    groups: Mutex<HashMap<u32, String>>,
}

impl NameCache {
    pub fn user(&self, uid: u32) -> String {
        self.users
            .lock()
            .entry(uid)
            .or_insert_with(|| sys::user_name(uid).unwrap_or_default())
            .clone()
    }

    pub fn group(&self, gid: u32) -> String {
        self.groups
            .lock()
            .entry(gid)
            .or_insert_with(|| sys::group_name(gid).unwrap_or_default())
            .clone()
    }
}

pub fn kind_of(m: &Metadata) -> NodeKind {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        NodeKind::Dir
    } else if t.is_symlink() {
        NodeKind::Symlink
    } else if t.is_fifo() {
        NodeKind::Fifo
    } else if t.is_char_device() {
        NodeKind::CharDevice
    } else if t.is_block_device() {
        NodeKind::BlockDevice
    } else if t.is_socket() {
        NodeKind::Socket
    } else {
        NodeKind::File
    }
}

/// A node with everything but content, subtree and link target filled in.
pub fn node_from_metadata(name: Vec<u8>, m: &Metadata, names: &NameCache) -> Node {
    let kind = kind_of(m);
    Node {
        name,
        kind,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        user: names.user(m.uid()),
        group: names.group(m.gid()),
        mtime: Timestamp {
            secs: m.mtime(),
            nanos: m.mtime_nsec() as u32,
        },
        ctime: Timestamp {
            secs: m.ctime(),
            nanos: m.ctime_nsec() as u32,
        },
        inode: m.ino(),
        device: m.dev(),
        links: m.nlink(),
        size: if kind == NodeKind::File { m.size() } else { 0 },
        content: Vec::new(),
        subtree: None,
        link_target: Vec::new(),
        rdev: if matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
            m.rdev()
        } else {
            0
        },
        xattrs: Vec::new(),
    }
}

/// Extended attributes of a path (not following symlinks), sorted. Unsupported file systems
/// give an empty list.
pub fn read_xattrs(path: &Path) -> std::io::Result<Vec<Xattr>> {
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for n in names {
        use std::os::unix::ffi::OsStrExt;
        if let Some(v) = xattr::get(path, &n)? {
            out.push(Xattr {
                name: n.as_bytes().to_vec(),
                value: v,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// How restore applies ownership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Restore owner and group (root): by name when the name exists here, else by number.
    Restore,
    /// Leave files owned by the restoring user.
    Skip,
}

/// Maps recorded user and group names to this system's ids, caching lookups (each uncached
/// lookup reads /etc/passwd or /etc/group).
#[derive(Default)]
pub struct OwnerMap {
    users: Mutex<HashMap<String, Option<u32>>>,
    groups: Mutex<HashMap<String, Option<u32>>>,
}

impl OwnerMap {
    /// By name when the name exists here, else by the recorded number.
    pub fn resolve(&self, node: &Node) -> (u32, u32) {
        let uid = by_name(&self.users, &node.user, sys::uid_by_name);
        let gid = by_name(&self.groups, &node.group, sys::gid_by_name);
        (uid.unwrap_or(node.uid), gid.unwrap_or(node.gid))
    }
}

/// The id `name` has here, looked up once per name (`None`: no name recorded, or none such).
fn by_name(
    cache: &Mutex<HashMap<String, Option<u32>>>,
    name: &str,
    lookup: fn(&str) -> Option<u32>,
) -> Option<u32> {
    if name.is_empty() {
        return None;
    }
    *cache
        .lock()
        .entry(name.to_string())
        .or_insert_with(|| lookup(name))
}

/// Apply owner, xattrs, mode and mtime to a restored path (not following symlinks), through
/// `file` when it is open (saves path lookups). Order matters: chown clears setuid bits, so
/// mode comes after it; times come last.
pub fn apply_metadata(
    path: &Path,
    file: Option<&std::fs::File>,
    node: &Node,
    own: Ownership,
    owners: &OwnerMap,
    errors: &mut Vec<String>,
) {
    use std::os::unix::ffi::OsStrExt;
    let is_link = node.kind == NodeKind::Symlink;
    if own == Ownership::Restore {
        let (uid, gid) = owners.resolve(node);
        let r = match file {
            Some(f) => std::os::unix::fs::fchown(f, Some(uid), Some(gid)),
            None => std::os::unix::fs::lchown(path, Some(uid), Some(gid)),
        };
        if let Err(e) = r {
            errors.push(format!("{}: cannot set owner: {e}", path.display()));
        }
    }
    for x in &node.xattrs {
        let name = std::ffi::OsStr::from_bytes(&x.name);
        let r = match file {
            Some(f) => xattr::FileExt::set_xattr(f, name, &x.value),
            None => xattr::set(path, name, &x.value),
        };
        if let Err(e) = r {
            // Unprivileged users cannot set trusted.* / security.*: only report other failures.
            if own == Ownership::Restore || x.name.starts_with(b"user.") {
                errors.push(format!(
                    "{}: cannot set xattr {}: {e}",
                    path.display(),
                    String::from_utf8_lossy(&x.name)
                ));
            }
        }
    }
    if !is_link {
        let perm = std::fs::Permissions::from_mode(node.mode);
        let r = match file {
            Some(f) => f.set_permissions(perm),
            None => std::fs::set_permissions(path, perm),
        };
        if let Err(e) = r {
            errors.push(format!("{}: cannot set mode: {e}", path.display()));
        }
    }
    let mtime = filetime::FileTime::from_unix_time(node.mtime.secs, node.mtime.nanos);
    let r = match file {
        Some(f) => filetime::set_file_handle_times(f, Some(mtime), Some(mtime)),
        None => filetime::set_symlink_file_times(path, mtime, mtime),
    };
    if let Err(e) = r {
        errors.push(format!("{}: cannot set times: {e}", path.display()));
    }
}
