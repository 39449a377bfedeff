//! One module per command.

pub mod backup;
pub mod check;
pub mod dump;
pub mod forget;
pub mod init;
pub mod key;
pub mod ls;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod snapshots;
pub mod stats;
pub mod unlock;

use std::sync::Arc;

use rime_engine::repo::Repository;
use rime_engine::storage::{self, Storage};
use rime_engine::{Error, Result};

use crate::GlobalOpts;

pub fn storage(g: &GlobalOpts) -> Result<Arc<dyn Storage>> {
    let url = g
        .repo
        .as_deref()
        .ok_or_else(|| Error::invalid("no repository given: use --repo or set RIME_REPO"))?;
    storage::open_url(url)
}

pub fn open(g: &GlobalOpts) -> Result<Repository> {
    let s = storage(g)?;
    if g.no_password {
        return Repository::open(s, None);
    }
    let pw = crate::password::get(g)?;
    Repository::open(s, Some(&pw))
}

/// Open the repository and the view of one snapshot (what restore would write), for ls and dump.
pub fn snapshot_view(
    g: &GlobalOpts,
    spec: &str,
) -> Result<(
    Repository,
    rime_engine::repo::index::MasterIndex,
    rime_engine::format::tree::Tree,
)> {
    let repo = open(g)?;
    let (_, snap) = rime_engine::ops::select::resolve(&repo, spec, &Default::default())?;
    let index = rime_engine::repo::index::MasterIndex::load(&repo)?;
    let (view, _) = rime_engine::ops::browse::view(&repo, &index, &snap)?;
    Ok((repo, index, view))
}

/// Print JSON to stdout.
pub fn print_json(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON values serialize")
    );
}
