//! `--snapshot` and the `--lvm-*` options: back up from a btrfs or LVM snapshot of the source
//! instead of the live file system, optionally with MySQL tables flushed and locked while the
//! snapshot is taken.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use rime_engine::source::mysql::{MysqlConf, ReadLock};
use rime_engine::source::snapshot::{btrfs, lvm, LiveSnapshot};
use rime_engine::{Error, Result};

#[derive(Clone, Copy, Debug, ValueEnum, Default)]
pub enum SnapPerm {
    #[default]
    Ro,
    Rw,
}

#[derive(Args, Debug, Clone, Default)]
pub struct SnapshotArgs {
    /// Back up from a snapshot of the source: btrfs (read-only subvolume snapshot) or LVM
    /// (found from the mount holding the first path); `-s` as Freezer's agent
    #[arg(short = 's', long)]
    pub snapshot: bool,
    /// LVM: the logical volume to snapshot, e.g. /dev/vg0/data
    #[arg(long, value_name = "DEVICE")]
    pub lvm_srcvol: Option<String>,
    /// LVM: the volume group (checked against the volume's)
    #[arg(long, value_name = "VG")]
    pub lvm_volgroup: Option<String>,
    /// LVM: snapshot name [default: rime_backup_snap]
    #[arg(long, value_name = "NAME")]
    pub lvm_snapname: Option<String>,
    /// LVM: copy-on-write space: a size (1G, 500M) or a percentage of the origin (10%)
    /// [default: 1G]
    #[arg(long, value_name = "SIZE")]
    pub lvm_snapsize: Option<String>,
    /// LVM: snapshot permission
    #[arg(long, value_enum, value_name = "PERM")]
    pub lvm_snap_perm: Option<SnapPerm>,
    /// LVM: where to mount the snapshot [default: a temporary directory]
    #[arg(long, value_name = "DIR")]
    pub lvm_dirmount: Option<PathBuf>,
    /// LVM: find the volume group and volume from the mount holding PATH
    #[arg(long, value_name = "PATH")]
    pub lvm_auto_snap: Option<PathBuf>,
}

impl SnapshotArgs {
    pub fn wanted(&self) -> bool {
        self.snapshot || self.lvm_srcvol.is_some() || self.lvm_auto_snap.is_some()
    }

    fn lvm_options(&self, auto: Option<&Path>) -> lvm::LvmOptions {
        lvm::LvmOptions {
            srcvol: self.lvm_srcvol.clone(),
            volgroup: self.lvm_volgroup.clone(),
            snapname: self.lvm_snapname.clone(),
            snapsize: self.lvm_snapsize.clone(),
            read_write: matches!(self.lvm_snap_perm, Some(SnapPerm::Rw)),
            dirmount: self.lvm_dirmount.clone(),
            auto_snap: self.lvm_auto_snap.clone().or(auto.map(Path::to_path_buf)),
        }
    }
}

/// A snapshot taken for this run, with the MySQL binlog position if tables were locked.
pub struct Taken {
    pub snap: LiveSnapshot,
    pub binlog_tags: Vec<String>,
}

/// Take the snapshot (`volume`: an LVM snapshot read as a device, not mounted). With a MySQL
/// configuration, tables are flushed and read-locked only while the snapshot is created.
pub fn take(
    a: &SnapshotArgs,
    first_path: Option<&Path>,
    volume: bool,
    mysql: Option<&Path>,
    quiet: bool,
) -> Result<Taken> {
    let lock = match mysql {
        Some(conf) => {
            let conf = MysqlConf::load(conf)?;
            let defaults = conf.defaults_file()?;
            Some(ReadLock::acquire(&defaults)?)
        }
        None => None,
    };
    let use_lvm = a.lvm_srcvol.is_some() || a.lvm_auto_snap.is_some();
    let snap = if !use_lvm && first_path.is_some_and(btrfs::is_btrfs) {
        let p = first_path.expect("checked");
        let (s, leftovers) = btrfs::snapshot(
            &std::path::absolute(p).map_err(|e| Error::io(p.display().to_string(), e))?,
        )?;
        for l in leftovers {
            if !quiet {
                eprintln!(
                    "rime: removed a snapshot left by an interrupted run: {}",
                    l.display()
                );
            }
        }
        s
    } else {
        if !use_lvm && first_path.is_none() {
            return Err(Error::invalid(
                "--snapshot needs a path (btrfs or LVM) or --lvm-srcvol",
            ));
        }
        let (s, leftover) = lvm::snapshot(&a.lvm_options(first_path), !volume)?;
        if leftover && !quiet {
            eprintln!("rime: removed an LVM snapshot left by an interrupted run");
        }
        s
    };
    let mut binlog_tags = Vec::new();
    if let Some(lock) = lock {
        if let Some(b) = &lock.binlog {
            binlog_tags.push(format!("mysql-binlog={}:{}", b.file, b.position));
        }
        lock.release()?;
    }
    Ok(Taken { snap, binlog_tags })
}
