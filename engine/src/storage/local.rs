//! A repository in a local directory.
//!
//! Writes go to a temporary file in the target directory, are fsynced, renamed over the final
//! name and the directory is fsynced, so a crash leaves either no object or the whole object
//! (plus, at worst, a `.tmp-*` file that `list` ignores and a later run may remove).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, IoContext, Result};
use crate::storage::{check_name, missing, FileKind, ObjectInfo, PendingObject, Storage};

pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStorage { root: root.into() }
    }

    fn path(&self, kind: FileKind, name: &str) -> Result<PathBuf> {
        check_name(kind, name)?;
        Ok(self.root.join(kind.path(name)))
    }

    fn map_open_err(&self, kind: FileKind, name: &str, e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::NotFound {
            missing(kind, name, &self.location())
        } else {
            Error::io(format!("{}: {}", self.location(), kind.path(name)), e)
        }
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Storage for LocalStorage {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create(&self) -> Result<()> {
        for kind in FileKind::ALL {
            if kind != FileKind::Config {
                let d = self.root.join(kind.dir());
                fs::create_dir_all(&d).io_context(|| format!("cannot create {}", d.display()))?;
            }
        }
        for b in 0..=255u8 {
            let d = self.root.join("data").join(format!("{b:02x}"));
            fs::create_dir_all(&d).io_context(|| format!("cannot create {}", d.display()))?;
        }
        sync_dir(&self.root).io_context(|| format!("cannot sync {}", self.root.display()))
    }

    fn list(&self, kind: FileKind) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        let dirs: Vec<PathBuf> = match kind {
            FileKind::Config => {
                return match fs::metadata(self.root.join("config")) {
                    Ok(m) => Ok(vec![ObjectInfo {
                        name: "config".into(),
                        size: m.len(),
                    }]),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
                    Err(e) => Err(Error::io(format!("{}: config", self.location()), e)),
                };
            }
            FileKind::Pack => (0..=255u8)
                .map(|b| self.root.join("data").join(format!("{b:02x}")))
                .collect(),
            _ => vec![self.root.join(kind.dir())],
        };
        for d in dirs {
            let rd = match fs::read_dir(&d) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(format!("cannot list {}", d.display()), e)),
            };
            for ent in rd {
                let ent = ent.io_context(|| format!("cannot list {}", d.display()))?;
                let name = ent.file_name().to_string_lossy().into_owned();
                if check_name(kind, &name).is_err() {
                    continue; // temporary files and strangers
                }
                let size = match ent.metadata() {
                    Ok(m) => m.len(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(Error::io(
                            format!("cannot stat {}", ent.path().display()),
                            e,
                        ))
                    }
                };
                out.push(ObjectInfo { name, size });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let p = self.path(kind, name)?;
        fs::read(&p).map_err(|e| self.map_open_err(kind, name, e))
    }

    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let p = self.path(kind, name)?;
        let f = File::open(&p).map_err(|e| self.map_open_err(kind, name, e))?;
        let mut buf =
            vec![0u8; usize::try_from(len).map_err(|_| Error::invalid("range too large"))?];
        let mut done = 0;
        while done < buf.len() {
            match std::os::unix::fs::FileExt::read_at(&f, &mut buf[done..], offset + done as u64) {
                Ok(0) => {
                    return Err(Error::corrupt(format!(
                        "{}: {} is truncated: wanted bytes {offset}..{} but it ends at {}",
                        self.location(),
                        kind.path(name),
                        offset + len,
                        offset + done as u64
                    )))
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Error::io(
                        format!("{}: {}", self.location(), kind.path(name)),
                        e,
                    ))
                }
            }
        }
        Ok(buf)
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        let p = self.path(kind, name)?;
        let dir = p
            .parent()
            .expect("object paths have a parent")
            .to_path_buf();
        let tmp = dir.join(format!(".tmp-{name}-{}", rand::random::<u64>()));
        let ctx = || format!("cannot write {} in {}", kind.path(name), self.location());
        let result = (|| -> std::io::Result<()> {
            let mut f = match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                // A pack shard directory lost by a copy that skips empty directories.
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        && kind == FileKind::Pack
                        && self.root.join("data").is_dir() =>
                {
                    fs::create_dir_all(&dir)?;
                    OpenOptions::new().write(true).create_new(true).open(&tmp)?
                }
                r => r?,
            };
            f.write_all(data)?;
            f.sync_all()?;
            drop(f);
            super::kill_hook::at_write()?;
            if kind == FileKind::Config {
                // A config is never replaced: that would make every index file and snapshot
                // of the repository there unreadable. A hard link refuses an existing target
                // atomically; where links are not supported, check and rename.
                match fs::hard_link(&tmp, &p) {
                    Ok(()) => {
                        let _ = fs::remove_file(&tmp);
                        return sync_dir(&dir);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(e),
                    Err(_) if p.exists() => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::AlreadyExists,
                            "a repository config already exists",
                        ))
                    }
                    Err(_) => {}
                }
            }
            fs::rename(&tmp, &p)?;
            sync_dir(&dir)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            if e.kind() == std::io::ErrorKind::NotFound && !self.root.join(kind.dir()).exists() {
                return Err(Error::new(
                    ErrorKind::RepositoryNotFound,
                    format!("no repository at {} (run `rime init`)", self.location()),
                ));
            }
            if kind == FileKind::Config && e.kind() == std::io::ErrorKind::AlreadyExists {
                return super::existing_config(&self.location(), self.read(kind, name), data);
            }
            return Err(Error::io(ctx(), e));
        }
        Ok(())
    }

    fn begin_write(&self, kind: FileKind) -> Result<Box<dyn PendingObject>> {
        // The temporary file lives where the object will (packs: the shard directory, known
        // only at commit, so packs start in data/ and are renamed across directories of the
        // same file system).
        let dir = self.root.join(kind.dir());
        let tmp = dir.join(format!(".tmp-pending-{:016x}", rand::random::<u64>()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Error::new(
                        ErrorKind::RepositoryNotFound,
                        format!("no repository at {} (run `rime init`)", self.location()),
                    )
                } else {
                    Error::io(
                        format!(
                            "cannot create a temporary {} file in {}",
                            kind.dir(),
                            self.location()
                        ),
                        e,
                    )
                }
            })?;
        Ok(Box::new(LocalPending {
            root: self.root.clone(),
            kind,
            tmp,
            out: Some(file),
            committed: false,
        }))
    }

    fn remove_leftovers(&self, age: std::time::Duration) -> Result<(u64, u64)> {
        let mut dirs: Vec<PathBuf> = FileKind::ALL
            .iter()
            .filter(|k| **k != FileKind::Config)
            .map(|k| self.root.join(k.dir()))
            .collect();
        dirs.extend((0..=255u8).map(|b| self.root.join("data").join(format!("{b:02x}"))));
        let (mut files, mut bytes) = (0, 0);
        for d in dirs {
            let Ok(rd) = fs::read_dir(&d) else { continue };
            for ent in rd.flatten() {
                if !ent.file_name().as_encoded_bytes().starts_with(b".tmp-") {
                    continue;
                }
                let Ok(m) = ent.metadata() else { continue };
                let old = m
                    .modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|e| e >= age);
                if m.is_file() && old && fs::remove_file(ent.path()).is_ok() {
                    files += 1;
                    bytes += m.len();
                }
            }
        }
        Ok((files, bytes))
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let p = self.path(kind, name)?;
        super::kill_hook::at_write()
            .map_err(|e| Error::io(format!("cannot remove {}", kind.path(name)), e))?;
        fs::remove_file(&p).map_err(|e| self.map_open_err(kind, name, e))
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        let p = self.path(kind, name)?;
        fs::metadata(&p)
            .map(|m| m.len())
            .map_err(|e| self.map_open_err(kind, name, e))
    }
}

/// A local object being written: a temporary file, renamed into place at commit.
struct LocalPending {
    root: PathBuf,
    kind: FileKind,
    tmp: PathBuf,
    out: Option<File>,
    committed: bool,
}

impl PendingObject for LocalPending {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        let out = self.out.as_mut().expect("not committed");
        out.write_all(data)
            .io_context(|| format!("cannot write {}", self.tmp.display()))
    }

    fn commit(mut self: Box<Self>, _storage: &dyn Storage, name: &str) -> Result<()> {
        check_name(self.kind, name)?;
        let target = self.root.join(self.kind.path(name));
        let out = self.out.take().expect("committed once");
        let ctx = || {
            format!(
                "cannot write {} in {}",
                self.kind.path(name),
                self.root.display()
            )
        };
        let file = out;
        file.sync_all().io_context(ctx)?;
        drop(file);
        let dir = target.parent().expect("object paths have a parent");
        super::kill_hook::at_write().io_context(ctx)?;
        if let Err(e) = fs::rename(&self.tmp, &target) {
            // A pack shard directory lost by a copy that skips empty directories.
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(Error::io(ctx(), e));
            }
            fs::create_dir_all(dir).io_context(ctx)?;
            fs::rename(&self.tmp, &target).io_context(ctx)?;
        }
        self.committed = true;
        sync_dir(dir).io_context(ctx)?;
        if let Some(tmp_dir) = self.tmp.parent() {
            if tmp_dir != dir {
                sync_dir(tmp_dir).io_context(ctx)?;
            }
        }
        Ok(())
    }
}

impl Drop for LocalPending {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
