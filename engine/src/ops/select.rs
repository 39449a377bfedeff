//! Choosing snapshots: `latest`, an id prefix, or the newest at or before a date.

use crate::error::{Error, ErrorKind, Result};
use crate::format::snapshot::Snapshot;
use crate::id::SnapshotId;
use crate::repo::Repository;

/// Filters for snapshot selection.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub hostname: Option<String>,
    pub name: Option<String>,
    /// Unix seconds: only snapshots taken at or before this time.
    pub before: Option<i64>,
}

impl Filter {
    fn matches(&self, s: &Snapshot) -> bool {
        self.hostname.as_ref().is_none_or(|h| *h == s.hostname)
            && self.name.as_ref().is_none_or(|n| *n == s.name)
            && self.before.is_none_or(|b| s.time.secs <= b)
    }
}

/// The latest readable snapshot matching host and name.
pub fn latest(
    repo: &Repository,
    hostname: Option<&str>,
    name: Option<&str>,
) -> Result<Option<(SnapshotId, Snapshot)>> {
    let f = Filter {
        hostname: hostname.map(String::from),
        name: name.map(String::from),
        before: None,
    };
    Ok(filtered(repo, &f)?.pop())
}

/// Readable snapshots matching the filter, oldest first.
pub fn filtered(repo: &Repository, f: &Filter) -> Result<Vec<(SnapshotId, Snapshot)>> {
    Ok(matching(repo.list_snapshots()?, f))
}

fn matching(all: Vec<(SnapshotId, Result<Snapshot>)>, f: &Filter) -> Vec<(SnapshotId, Snapshot)> {
    all.into_iter()
        .filter_map(|(id, s)| s.ok().map(|s| (id, s)))
        .filter(|(_, s)| f.matches(s))
        .collect()
}

/// Resolve `latest` or a hex id prefix (at least 4 digits), within the filter.
pub fn resolve(repo: &Repository, spec: &str, f: &Filter) -> Result<(SnapshotId, Snapshot)> {
    if spec == "latest" {
        let all = repo.list_snapshots()?;
        // An unreadable snapshot might be the newest: never fall back to an older one silently.
        if let Some((id, Err(e))) = all.iter().find(|(_, s)| s.is_err()) {
            return Err(Error::new(
                e.kind(),
                format!(
                    "snapshot {} cannot be read ({e}), so 'latest' is ambiguous: name a snapshot id explicitly",
                    id.short()
                ),
            ));
        }
        return matching(all, f).pop().ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                match f.before {
                    Some(_) => "no snapshot at or before the given date matches".to_string(),
                    None => "the repository has no matching snapshot".to_string(),
                },
            )
        });
    }
    if spec.len() < 4 || !spec.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::invalid(format!(
            "'{spec}' is neither 'latest' nor a snapshot id (at least 4 hex digits)"
        )));
    }
    let spec = spec.to_ascii_lowercase();
    let names = repo.storage().list(crate::storage::FileKind::Snapshot)?;
    let hits: Vec<_> = names.iter().filter(|o| o.name.starts_with(&spec)).collect();
    match hits.len() {
        0 => Err(Error::new(
            ErrorKind::NotFound,
            format!("no snapshot with id {spec}"),
        )),
        1 => {
            let id = SnapshotId::from_hex(&hits[0].name)?;
            Ok((id, repo.load_snapshot(&id)?))
        }
        n => Err(Error::invalid(format!(
            "snapshot id prefix {spec} is ambiguous ({n} snapshots)"
        ))),
    }
}
