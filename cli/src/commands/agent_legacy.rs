//! Backups that Freezer itself wrote, beside the agent's rime repository.
//!
//! A Freezer user's container keeps its old `metadata/tar/<host>_<name>/...` and
//! `data/tar/...` trees when the jobs move to rime (whose repository is `<container>/rime`).
//! `--action info` lists those restore points too, and `--action restore` replays a Freezer
//! chain when it is the newest backup at or before the requested date, so the move loses no
//! restore point. Reading is done by `rime_engine::freezer::legacy`.

use rime_engine::freezer::legacy::{self, Container, ContainerOptions, LegacyBackup};
use rime_engine::storage::sftp::SftpOptions;
use rime_engine::Result;

use super::agent_opts::Job;
use crate::config_file::StorageSection;

/// The container a repository section lives in: its URL without the `/rime` suffix.
fn container_url(s: &StorageSection) -> String {
    let u = s.url.trim_end_matches('/');
    let u = u.strip_suffix("/rime").unwrap_or(u);
    if u.contains("://") || u.starts_with("local:") {
        u.to_string()
    } else {
        format!("local:{u}")
    }
}

fn open(job: &Job, s: &StorageSection) -> Result<Box<dyn Container>> {
    let swift = crate::storage_open::section_swift(&job.g, s)?;
    let opts = ContainerOptions {
        sftp: SftpOptions {
            key: s.ssh_key.clone().or_else(|| job.g.ssh_key.clone()),
            accept_new: job.g.ssh_accept_new,
            config: job.g.ssh_config.clone(),
            ..Default::default()
        },
        swift,
    };
    legacy::open_container(&container_url(s), &opts)
}

/// The Freezer backups of every container of the job, with the container that holds each.
/// A container that cannot be listed is skipped when another one answers (its error is
/// returned when none does), as restores read from any storage.
pub fn list(job: &Job) -> Result<Vec<(usize, LegacyBackup)>> {
    let mut out = vec![];
    let mut first_err = None;
    let mut any = false;
    for (i, s) in job.storages.iter().enumerate() {
        match open(job, s).and_then(|c| legacy::list(c.as_ref())) {
            Ok(l) => {
                any = true;
                out.extend(l.into_iter().map(|b| (i, b)));
            }
            Err(e) => {
                first_err.get_or_insert(e.within(container_url(s)));
            }
        }
        if any {
            break; // every storage of a parallel backup holds the same backups
        }
    }
    match (any, first_err) {
        (false, Some(e)) => Err(e),
        _ => Ok(out),
    }
}

/// What Freezer's own backups hold for a restore of the job's host and name.
pub enum Lookup {
    /// The container (index into the job's storages) and the newest backup at or before the
    /// date.
    Found(usize, LegacyBackup),
    /// Freezer backups exist, but none of this host and name at or before the date: Freezer's
    /// explanation (the names found, or the time of the first backup).
    Unmatched(rime_engine::Error),
    /// No Freezer backup at all in the container.
    Empty,
}

/// The newest Freezer backup of the job's host and name at or before `date`. An error only
/// when the containers cannot be listed.
pub fn newest_at(job: &Job, date: Option<i64>) -> Result<Lookup> {
    let all = list(job)?;
    if all.is_empty() {
        return Ok(Lookup::Empty);
    }
    let key = format!("{}_{}", job.hostname, job.backup_name);
    let found = all
        .iter()
        .filter(|(_, b)| b.hostname_backup_name == key && date.is_none_or(|d| b.timestamp <= d))
        .max_by_key(|(_, b)| (b.timestamp, b.level));
    if let Some((at, b)) = found {
        return Ok(Lookup::Found(*at, b.clone()));
    }
    let backups: Vec<LegacyBackup> = all.into_iter().map(|(_, b)| b).collect();
    let why = match legacy::chain::resolve(&backups, &key, date) {
        Err(e) => e,
        Ok(_) => unreachable!("no backup of {key} at or before the date, yet a chain resolves"),
    };
    Ok(Lookup::Unmatched(why))
}

/// The Freezer backups of the job's host and name taken before `cutoff`, oldest first.
pub fn taken_before(job: &Job, cutoff: i64) -> Result<Vec<LegacyBackup>> {
    let key = format!("{}_{}", job.hostname, job.backup_name);
    let mut old: Vec<LegacyBackup> = list(job)?
        .into_iter()
        .map(|(_, b)| b)
        .filter(|b| b.hostname_backup_name == key && b.timestamp < cutoff)
        .collect();
    old.sort_by_key(|b| (b.timestamp, b.level));
    Ok(old)
}

/// Restore the Freezer chain of the job's host and name as of `date` from container `at`.
pub fn restore(
    job: &Job,
    at: usize,
    date: Option<i64>,
    target: &std::path::Path,
    overwrite: bool,
) -> Result<legacy::RestoreReport> {
    let c = open(job, &job.storages[at])?;
    legacy::restore(
        c.as_ref(),
        &job.hostname,
        &job.backup_name,
        date,
        job.openssl_password.as_deref(),
        target,
        overwrite,
    )
}

/// The chain a restore from container `at` would replay, checked as the restore checks it
/// before writing (for `--dry-run`).
pub fn verify(job: &Job, at: usize, date: Option<i64>) -> Result<Vec<legacy::LegacyBackup>> {
    let c = open(job, &job.storages[at])?;
    legacy::verify_chain(
        c.as_ref(),
        &job.hostname,
        &job.backup_name,
        date,
        job.openssl_password.as_deref(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(url: &str) -> StorageSection {
        StorageSection {
            name: "default".into(),
            url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_container_is_the_repository_url_without_rime() {
        assert_eq!(container_url(&section("/srv/b/rime")), "local:/srv/b");
        assert_eq!(
            container_url(&section("swift://nightly/rime")),
            "swift://nightly"
        );
        assert_eq!(
            container_url(&section("sftp://bk@10.0.0.5:2222/srv/c/rime")),
            "sftp://bk@10.0.0.5:2222/srv/c"
        );
    }
}
