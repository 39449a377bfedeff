//! LVM: a snapshot of a logical volume (`lvcreate --snapshot`), read as a volume or mounted
//! read-only for a file-tree backup, then unmounted and removed.
//!
//! rime asks LVM for everything it needs (`lvs` for paths, tags and fill level) rather than
//! guessing device names. The snapshot carries the tag `rime-pid-PID` so that one left by a
//! killed run is recognised and removed by the next, and one that is not rime's is never
//! touched. A snapshot that fills up (its copy-on-write space runs out) becomes invalid: the
//! backup fails loudly instead of saving what was read from it.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::source::snapshot::{mount_of, mounts, run, LiveSnapshot};

pub const DEFAULT_SNAPNAME: &str = "rime_backup_snap";
pub const DEFAULT_SNAPSIZE: &str = "1G";
const TAG_PREFIX: &str = "rime-pid-";

/// Freezer's `--lvm-*` options.
#[derive(Debug, Clone, Default)]
pub struct LvmOptions {
    /// The origin volume, e.g. /dev/vg0/data (found from `auto_snap` when absent).
    pub srcvol: Option<String>,
    pub volgroup: Option<String>,
    pub snapname: Option<String>,
    /// "1G", "500M", or a percentage ("10%" of the origin, as extents).
    pub snapsize: Option<String>,
    /// Snapshot permission: read-only (default) or read-write.
    pub read_write: bool,
    /// Where to mount the snapshot for a file-tree backup (default: a temporary directory).
    pub dirmount: Option<PathBuf>,
    /// Find volume group and volume from the mount holding this path.
    pub auto_snap: Option<PathBuf>,
}

/// The origin volume resolved: group, volume, and the mount point it is mounted on (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub vg: String,
    pub lv: String,
    pub mountpoint: Option<PathBuf>,
}

fn lvs(target: &str, fields: &str) -> Result<Option<Vec<String>>> {
    match run(
        "lvs",
        &["--noheadings", "--separator", "|", "-o", fields, target],
    ) {
        Ok(out) => Ok(out
            .lines()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.split('|').map(|f| f.trim().to_string()).collect())),
        Err(e) if e.context().contains("not found") || e.context().contains("Failed to find") => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Resolve the origin from the options: explicit volume, or the mount holding `auto_snap`.
pub fn resolve_origin(o: &LvmOptions) -> Result<Origin> {
    let (device, mountpoint) = match (&o.srcvol, &o.auto_snap) {
        (Some(v), _) => {
            let mp = mounts().into_iter().find_map(|(dev, mp, _)| {
                (same_device(&dev, v)).then_some(mp)
            });
            (v.clone(), mp)
        }
        (None, Some(path)) => {
            let abs = std::path::absolute(path)
                .map_err(|e| Error::io(format!("{}", path.display()), e))?;
            let (dev, mp, _) = mount_of(&abs).ok_or_else(|| {
                Error::invalid(format!("no mount holds {}", abs.display()))
            })?;
            (dev, Some(mp))
        }
        (None, None) => {
            return Err(Error::invalid(
                "LVM snapshot: give --lvm-srcvol or --lvm-auto-snap PATH",
            ))
        }
    };
    let f = lvs(&device, "vg_name,lv_name")?.ok_or_else(|| {
        Error::invalid(format!(
            "{device} is not an LVM logical volume (lvs does not know it)"
        ))
    })?;
    if f.len() < 2 {
        return Err(Error::invalid(format!("lvs gave no volume group for {device}")));
    }
    if let Some(vg) = &o.volgroup {
        if *vg != f[0] {
            return Err(Error::invalid(format!(
                "{device} belongs to volume group {}, not {vg} (--lvm-volgroup)",
                f[0]
            )));
        }
    }
    Ok(Origin {
        vg: f[0].clone(),
        lv: f[1].clone(),
        mountpoint,
    })
}

fn same_device(a: &str, b: &str) -> bool {
    let canon = |p: &str| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p));
    canon(a) == canon(b)
}

/// Remove a snapshot of this name left by a rime run that no longer exists. A volume of that
/// name that rime did not create is an error (never removed).
pub fn remove_leftover(vg: &str, name: &str, dirmount: Option<&Path>) -> Result<bool> {
    let full = format!("{vg}/{name}");
    let Some(f) = lvs(&full, "lv_tags,lv_path")? else {
        return Ok(false);
    };
    let tags = f.first().cloned().unwrap_or_default();
    let pid = tags
        .split(',')
        .find_map(|t| t.strip_prefix(TAG_PREFIX))
        .and_then(|p| p.parse::<u32>().ok());
    match pid {
        None => Err(Error::invalid(format!(
            "a logical volume {full} exists and was not made by rime: choose another --lvm-snapname"
        ))),
        Some(p) if crate::sys::process_alive(p) && p != std::process::id() => Err(Error::new(
            ErrorKind::Locked,
            format!("snapshot {full} belongs to a running rime (pid {p})"),
        )),
        Some(_) => {
            let dev = f.get(1).cloned().unwrap_or_default();
            for (d, mp, _) in mounts() {
                if same_device(&d, &dev) || dirmount.is_some_and(|m| m == mp) {
                    run("umount", &[&mp.to_string_lossy()])?;
                }
            }
            run("lvremove", &["-f", &full])?;
            Ok(true)
        }
    }
}

fn size_args(size: &str) -> Result<Vec<String>> {
    let s = size.trim();
    if let Some(p) = s.strip_suffix('%') {
        let n: f64 = p
            .parse()
            .map_err(|_| Error::invalid(format!("--lvm-snapsize {size:?} is not a percentage")))?;
        if !(n > 0.0 && n <= 100.0) {
            return Err(Error::invalid(format!("--lvm-snapsize {size:?} is out of range")));
        }
        return Ok(vec!["--extents".into(), format!("{p}%ORIGIN")]);
    }
    let ok = !s.is_empty()
        && s.trim_end_matches(|c: char| c.is_ascii_alphabetic())
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.');
    if !ok {
        return Err(Error::invalid(format!(
            "--lvm-snapsize {size:?}: use a size such as 1G or 500M, or a percentage such as 10%"
        )));
    }
    Ok(vec!["--size".into(), s.to_string()])
}

/// Take the snapshot; with `mount`, also mount it read-only (for a file-tree backup).
/// Returns the snapshot and whether a leftover from a killed run was removed.
pub fn snapshot(o: &LvmOptions, mount: bool) -> Result<(LiveSnapshot, bool)> {
    let origin = resolve_origin(o)?;
    let name = o.snapname.clone().unwrap_or_else(|| DEFAULT_SNAPNAME.into());
    let size = size_args(o.snapsize.as_deref().unwrap_or(DEFAULT_SNAPSIZE))?;
    let dirmount = o.dirmount.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("rime-lvm-{}", std::process::id()))
    });
    let left = remove_leftover(&origin.vg, &name, Some(&dirmount))?;
    let full = format!("{}/{name}", origin.vg);
    let tag = format!("{TAG_PREFIX}{}", std::process::id());
    let src = format!("{}/{}", origin.vg, origin.lv);
    let mut args: Vec<String> = vec![
        "--snapshot".into(),
        "--name".into(),
        name.clone(),
        "--addtag".into(),
        tag,
        "--permission".into(),
        if o.read_write { "rw" } else { "r" }.into(),
    ];
    args.extend(size);
    args.push(src);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    run("lvcreate", &argv)?;
    // From here on the snapshot exists: every exit path removes it.
    let remove = {
        let full = full.clone();
        move || run("lvremove", &["-f", &full]).map(|_| ())
    };
    let device = match lvs(&full, "lv_path") {
        Ok(Some(f)) if !f[0].is_empty() => PathBuf::from(&f[0]),
        other => {
            let _ = remove();
            return Err(match other {
                Err(e) => e,
                _ => Error::invalid(format!("lvs gives no device path for {full}")),
            });
        }
    };
    let validate_full = full.clone();
    let validate = move || check_not_full(&validate_full);
    let mut annotations = vec![
        ("lvm.origin".to_string(), format!("{}/{}", origin.vg, origin.lv)),
        ("lvm.snapshot".to_string(), full.clone()),
    ];
    if !mount {
        return Ok((
            LiveSnapshot {
                origin: PathBuf::from(o.srcvol.clone().unwrap_or_default()),
                view: device.clone(),
                device: Some(device),
                annotations,
                cleanup: Some(Box::new(remove)),
                validate: Some(Box::new(validate)),
            },
            left,
        ));
    }
    let Some(origin_mp) = origin.mountpoint.clone() else {
        let _ = remove();
        return Err(Error::invalid(format!(
            "{}/{} is not mounted: a file backup needs its mount point (or back it up with --volume)",
            origin.vg, origin.lv
        )));
    };
    if let Err(e) = std::fs::create_dir_all(&dirmount) {
        let _ = remove();
        return Err(Error::io(format!("cannot create {}", dirmount.display()), e));
    }
    let fstype = run(
        "blkid",
        &["-o", "value", "-s", "TYPE", &device.to_string_lossy()],
    )
    .map(|s| s.trim().to_string())
    .unwrap_or_default();
    // A snapshot of a mounted file system looks like one that crashed: XFS needs a fresh UUID
    // and no log recovery to mount read-only, ext3/4 must not replay its journal.
    let opts = match fstype.as_str() {
        "xfs" => "ro,nouuid,norecovery",
        "ext3" | "ext4" => "ro,noload",
        _ => "ro",
    };
    if let Err(e) = run(
        "mount",
        &["-o", opts, &device.to_string_lossy(), &dirmount.to_string_lossy()],
    ) {
        let _ = remove();
        return Err(e);
    }
    annotations.push(("lvm.mount".into(), dirmount.to_string_lossy().into_owned()));
    let mp = dirmount.clone();
    let created_dir = o.dirmount.is_none();
    Ok((
        LiveSnapshot {
            origin: origin_mp,
            view: dirmount,
            device: Some(device),
            annotations,
            cleanup: Some(Box::new(move || {
                // Unmount first (lazily if a reader still holds a file), then remove.
                if run("umount", &[&mp.to_string_lossy()]).is_err() {
                    let _ = run("umount", &["-l", &mp.to_string_lossy()]);
                }
                if created_dir {
                    let _ = std::fs::remove_dir(&mp);
                }
                remove()
            })),
            validate: Some(Box::new(validate)),
        },
        left,
    ))
}

/// Fails if the snapshot's copy-on-write space ran out (it is then invalid).
fn check_not_full(full: &str) -> Result<()> {
    let f = lvs(full, "snap_percent,lv_attr")?.ok_or_else(|| {
        Error::new(
            ErrorKind::Corrupt,
            format!("snapshot {full} vanished during the backup: nothing was saved"),
        )
    })?;
    let percent: f64 = f[0].replace(',', ".").parse().unwrap_or(0.0);
    let invalid = f.get(1).and_then(|a| a.chars().nth(4)) == Some('I');
    if percent >= 100.0 || invalid {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!(
                "LVM snapshot {full} filled up during the backup ({}% used{}): the data read from it is not trustworthy and nothing was saved; give a larger --lvm-snapsize",
                f[0],
                if invalid { ", marked invalid" } else { "" }
            ),
        ));
    }
    Ok(())
}
