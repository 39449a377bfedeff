//! `rime dump` of a directory: a tar stream (GNU headers, PAX records for nanosecond mtimes and
//! extended attributes), with hard links as link entries and every chunk verified. Plain GNU tar
//! extracts it (`tar -x --xattrs`).

use std::collections::HashMap;
use std::io::{Read, Write};

use crate::error::{Error, ErrorKind, Result};
use crate::format::tree::{Node, NodeKind, Part, Tree};
use crate::repo::index::MasterIndex;
use crate::repo::Repository;

/// Write `tree` (named `prefix/...` in the archive, or at its root when `prefix` is empty) as a
/// tar stream; `top` is the directory's own node when one directory is dumped.
pub fn dump_tar(
    repo: &Repository,
    index: &MasterIndex,
    top: Option<&Node>,
    tree: &Tree,
    prefix: &str,
    out: &mut dyn Write,
) -> Result<()> {
    let mut ar = tar::Builder::new(out);
    let mut links = HashMap::new();
    let io = |e: std::io::Error| Error::io("cannot write the tar stream", e);
    if let (Some(top), false) = (top, prefix.is_empty()) {
        append(repo, index, &mut ar, prefix, top, &mut links).map_err(io)?;
    }
    append_tree(repo, index, &mut ar, tree, prefix, &mut links)?;
    ar.finish().map_err(io)
}

fn append_tree(
    repo: &Repository,
    index: &MasterIndex,
    ar: &mut tar::Builder<&mut dyn Write>,
    tree: &Tree,
    prefix: &str,
    links: &mut HashMap<(u64, u64), String>,
) -> Result<()> {
    for n in &tree.nodes {
        let name = String::from_utf8_lossy(&n.name);
        let path = if prefix.is_empty() {
            name.into_owned()
        } else {
            format!("{prefix}/{name}")
        };
        append(repo, index, ar, &path, n, links).map_err(|e| {
            match e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
                Some(inner) => Error::new(inner.kind(), format!("{path}: {inner}")),
                None => Error::io(format!("cannot write {path} to the tar stream"), e),
            }
        })?;
        if let Some(sub) = n.subtree {
            let t = repo.load_tree(index, &sub).map_err(|e| e.within(&path))?;
            append_tree(repo, index, ar, &t, &path, links)?;
        }
    }
    Ok(())
}

fn append(
    repo: &Repository,
    index: &MasterIndex,
    ar: &mut tar::Builder<&mut dyn Write>,
    path: &str,
    n: &Node,
    links: &mut HashMap<(u64, u64), String>,
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_mode(n.mode);
    h.set_uid(u64::from(n.uid));
    h.set_gid(u64::from(n.gid));
    h.set_mtime(n.mtime.secs.max(0) as u64);
    if !n.user.is_empty() {
        h.set_username(&n.user)?;
    }
    if !n.group.is_empty() {
        h.set_groupname(&n.group)?;
    }
    let mut pax: Vec<(String, Vec<u8>)> = vec![(
        "mtime".into(),
        format!("{}.{:09}", n.mtime.secs, n.mtime.nanos).into_bytes(),
    )];
    for x in &n.xattrs {
        pax.push((
            format!("SCHILY.xattr.{}", String::from_utf8_lossy(&x.name)),
            x.value.clone(),
        ));
    }
    ar.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
    match n.kind {
        NodeKind::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            ar.append_data(&mut h, format!("{path}/"), std::io::empty())
        }
        NodeKind::File => {
            let key = (n.links > 1).then_some((n.device, n.inode));
            if let Some(first) = key.and_then(|k| links.get(&k)) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                return ar.append_link(&mut h, path, first);
            }
            if let Some(k) = key {
                links.insert(k, path.to_string());
            }
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(n.size);
            ar.append_data(&mut h, path, Content::new(repo, index, &n.content))
        }
        NodeKind::Symlink => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            ar.append_link(
                &mut h,
                path,
                String::from_utf8_lossy(&n.link_target).as_ref(),
            )
        }
        NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice => {
            h.set_entry_type(match n.kind {
                NodeKind::Fifo => tar::EntryType::Fifo,
                NodeKind::CharDevice => tar::EntryType::Char,
                _ => tar::EntryType::Block,
            });
            h.set_size(0);
            let (major, minor) = split_dev(n.rdev);
            h.set_device_major(major)?;
            h.set_device_minor(minor)?;
            ar.append_data(&mut h, path, std::io::empty())
        }
        NodeKind::Socket => Ok(()), // tar has no sockets
    }
}

/// Linux's dev_t layout (glibc's gnu_dev_major / gnu_dev_minor).
fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x00ff);
    (major as u32, minor as u32)
}

/// A file's content as a reader, one verified chunk at a time.
struct Content<'a> {
    repo: &'a Repository,
    index: &'a MasterIndex,
    parts: std::slice::Iter<'a, Part>,
    buf: Vec<u8>,
    pos: usize,
    zeros_left: u64,
}

impl<'a> Content<'a> {
    fn new(repo: &'a Repository, index: &'a MasterIndex, parts: &'a [Part]) -> Self {
        Content {
            repo,
            index,
            parts: parts.iter(),
            buf: Vec::new(),
            pos: 0,
            zeros_left: 0,
        }
    }
}

impl Read for Content<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.pos < self.buf.len() {
                let n = out.len().min(self.buf.len() - self.pos);
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.zeros_left > 0 {
                let n = out
                    .len()
                    .min(self.zeros_left.min(usize::MAX as u64) as usize);
                out[..n].fill(0);
                self.zeros_left -= n as u64;
                return Ok(n);
            }
            match self.parts.next() {
                None => return Ok(0),
                Some(Part::Hole { len }) => self.zeros_left = *len,
                Some(Part::Data { id, .. }) => {
                    let (pack, e) = self.index.lookup(id).ok_or_else(|| {
                        std::io::Error::other(Error::new(
                            ErrorKind::MissingObject,
                            format!(
                                "data blob {id} is not in the index{}",
                                self.index.missing_hint()
                            ),
                        ))
                    })?;
                    self.buf = self
                        .repo
                        .read_blob(&pack, &e)
                        .map_err(std::io::Error::other)?;
                    self.pos = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dev_split_matches_libc() {
        for (maj, min) in [(0u32, 0u32), (1, 3), (8, 1), (259, 65536), (4095, 255)] {
            let dev = libc::makedev(maj, min);
            assert_eq!(super::split_dev(dev), (maj, min));
        }
    }
}
