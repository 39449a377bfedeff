//! `rime agent` with a file system mounted inside the backed-up tree: the tar engine does not
//! enter it (one-file-system, as Freezer's tar), and restoring the backup with `--overwrite`
//! onto the live tree, by the agent or by GNU tar from `rime dump`, leaves the mounted files
//! alone (they were never backed up, so deleting them would lose them).

use std::ffi::OsStr;

use crate::util::*;

#[test]
fn agent_restore_overwrite_in_place_keeps_a_mounted_file_system() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("top.txt"), "top\n");
    mkdir(&src.join("mnt"));
    let Some(_mount) = mount_tmpfs(&src.join("mnt"), "1m") else {
        return;
    };
    let precious = src.join("mnt/precious");
    write(&precious, "never backed up\n");
    let container = tmp.path().join("container");
    let pass = tmp.path().join("pass");
    write(&pass, "agent secret\n");
    let agent = |extra: &[&OsStr]| {
        let mut args = vec![
            OsStr::new("agent"),
            OsStr::new("--storage"),
            OsStr::new("local"),
            OsStr::new("--container"),
            container.as_os_str(),
            OsStr::new("--backup-name"),
            OsStr::new("job"),
            OsStr::new("--encrypt-pass-file"),
            pass.as_os_str(),
        ];
        args.extend_from_slice(extra);
        rime_raw(args, &[])
    };
    let out = agent(&[OsStr::new("--path-to-backup"), src.as_os_str()]);
    out.ok();
    assert!(
        out.stderr.contains("different file system"),
        "{}",
        out.stderr
    );

    write(&src.join("top.txt"), "changed since\n");
    write(&src.join("mnt/added-since"), "also on the mount\n");
    agent(&[
        OsStr::new("--action"),
        OsStr::new("restore"),
        OsStr::new("--restore-abs-path"),
        src.as_os_str(),
        OsStr::new("--overwrite"),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(src.join("top.txt")).unwrap(),
        "top\n"
    );
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "never backed up\n"
    );
    assert!(src.join("mnt/added-since").is_file());

    // GNU tar extracting the level written out by `rime dump`, onto the live tree.
    let dump = tmp.path().join("dump");
    dump_tar_levels(&container.join("rime"), &pass, &dump, &[]);
    gnu_tar_extract_level(&dump.join("level-0.tar"), &src);
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "never backed up\n"
    );
    assert!(src.join("mnt/added-since").is_file());
}
