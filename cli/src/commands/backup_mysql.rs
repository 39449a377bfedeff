//! `rime backup --mysql-conf FILE`: a logical dump streamed into the repository.

use std::path::Path;

use rime_engine::ops::backup::BackupResult;
use rime_engine::ops::volume::stream::{backup_process, StreamBackupOptions};
use rime_engine::ops::volume::SnapshotMeta;
use rime_engine::repo::Repository;
use rime_engine::source::mysql::{binlog_position, dump_command, MysqlConf};
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
    let label = format!("{:?}", cmd).replace('"', "");
    let mut annotations = vec![("mysql.dump".to_string(), "logical".to_string())];
    if let Some(b) = &binlog {
        // --master-data=2 writes the exact position into the dump; this one is from just
        // before it started, for listing.
        annotations.push(("mysql.binlog_file_at_start".into(), b.file.clone()));
    }
    let opts = StreamBackupOptions {
        meta,
        command: label.clone(),
        annotations,
    };
    backup_process(repo, cmd, &label, &opts, progress)
}
