//! `rime backup --mysql-conf FILE`: a logical dump streamed into the repository.

use std::path::Path;

use rime_engine::ops::backup::BackupResult;
use rime_engine::ops::volume::stream::{backup_process_with, StreamBackupOptions};
use rime_engine::ops::volume::SnapshotMeta;
use rime_engine::repo::Repository;
use rime_engine::source::mysql::{binlog_from_dump, binlog_position, dump_command, MysqlConf};
use rime_engine::Result;

pub fn run(
    repo: &Repository,
    conf_path: &Path,
    mut meta: SnapshotMeta,
    progress: &dyn rime_engine::ops::Progress,
) -> Result<BackupResult> {
    let conf = MysqlConf::load(conf_path)?;
    let defaults = conf.defaults_file()?;
    if meta.name.is_empty() {
        meta.name = format!("mysql:{}", conf.host.as_deref().or(conf.socket.as_deref()).unwrap_or(""));
    }
    let binlog = binlog_position(&defaults)?;
    let cmd = dump_command(&conf, &defaults, binlog.is_some())?;
    // The recorded command leaves out the private options file.
    let label = std::iter::once(cmd.get_program())
        .chain(cmd.get_args().filter(|a| !a.to_string_lossy().starts_with("--defaults-extra-file")))
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let annotations = vec![("mysql.dump".to_string(), "logical".to_string())];
    let opts = StreamBackupOptions {
        meta,
        command: label.clone(),
        annotations,
    };
    // The exact position the dump is consistent with, from its --master-data comment.
    let learn = |head: &[u8]| {
        binlog_from_dump(head)
            .map(|b| b.annotations())
            .unwrap_or_default()
    };
    backup_process_with(repo, cmd, &label, &opts, progress, &learn)
}
