//! Loop devices and mounts for volume and snapshot tests (root only; callers skip otherwise).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::is_root;

/// A loop device attached to a backing file, detached on drop (only the device we attached).
pub struct Loop {
    pub dev: PathBuf,
}

impl Loop {
    /// Attach `file`, or print why not and return `None`.
    pub fn attach(file: &Path) -> Option<Loop> {
        if !is_root() {
            eprintln!("skipped: not root, cannot attach loop devices");
            return None;
        }
        let o = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(file)
            .output();
        match o {
            Ok(o) if o.status.success() => Some(Loop {
                dev: PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
            }),
            Ok(o) => {
                eprintln!(
                    "skipped: losetup failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run losetup: {e}");
                None
            }
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

/// A mounted file system, unmounted on drop.
pub struct Mounted(pub PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

pub fn mount(dev: &Path, at: &Path, opts: &[&str]) -> Mounted {
    std::fs::create_dir_all(at).unwrap();
    let st = Command::new("mount")
        .args(opts)
        .arg(dev)
        .arg(at)
        .status()
        .unwrap();
    assert!(st.success(), "mount {} failed", dev.display());
    Mounted(at.to_path_buf())
}

/// Run a command that must succeed.
#[track_caller]
pub fn sh(cmd: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Whether a program is on PATH.
pub fn have(prog: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {prog}"))
        .output()
        .is_ok_and(|o| o.status.success())
}
