//! Opening the repository's storage with the global storage options (SSH, connections,
//! bandwidth limits, dry run), and reporting what a dry run would have done.

use std::sync::{Arc, OnceLock};

use rime_engine::storage::dry_run::{DryRunReport, DryRunStorage};
use rime_engine::storage::sftp::SftpOptions;
use rime_engine::storage::{open_layered, FileKind, OpenOptions, Storage};
use rime_engine::Result;

use crate::output::bytes;
use crate::GlobalOpts;

/// The dry-run layer of this run, if any, so that its report can be printed at the end.
static DRY_RUN: OnceLock<Arc<DryRunStorage>> = OnceLock::new();

/// clap parser for `--limit-upload` / `--limit-download`.
pub fn parse_rate(s: &str) -> std::result::Result<u64, String> {
    rime_engine::storage::bandwidth::parse_rate(s).map_err(|e| e.to_string())
}

pub fn open(g: &GlobalOpts, url: &str) -> Result<Arc<dyn Storage>> {
    open_with(g, url, g.ssh_key.clone(), swift_overrides(g, url)?)
}

/// Swift credentials from the environment when `--os-region-name` or `--os-interface` is
/// given (they replace `OS_REGION_NAME` / `OS_INTERFACE`); otherwise the storage reads the
/// environment itself.
fn swift_overrides(
    g: &GlobalOpts,
    url: &str,
) -> Result<Option<rime_engine::storage::SwiftCredentials>> {
    let mut o = std::collections::HashMap::new();
    if let Some(r) = &g.os_region_name {
        o.insert("os_region_name".to_string(), r.clone());
    }
    if let Some(i) = &g.os_interface {
        o.insert("os_interface".to_string(), i.clone());
    }
    if o.is_empty() || !url.starts_with("swift://") {
        return Ok(None);
    }
    rime_engine::storage::SwiftCredentials::from_env_with(&o).map(Some)
}

/// A storage of a `[storage:NAME]` section, with its own SSH key (and Swift credentials).
pub fn open_section(
    g: &GlobalOpts,
    s: &crate::config_file::StorageSection,
) -> Result<Arc<dyn Storage>> {
    let within = |e: rime_engine::Error| e.within(format!("[storage:{}]", s.name));
    // The section's own Swift credentials (osrc file, os_*/st_* keys) replace the environment's.
    let swift = if s.url.starts_with("swift://") && !s.swift_env.is_empty() {
        let map = s
            .swift_env
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        Some(rime_engine::storage::SwiftCredentials::from_map(&map).map_err(within)?)
    } else {
        None
    };
    open_with(
        g,
        &s.url,
        s.ssh_key.clone().or_else(|| g.ssh_key.clone()),
        swift,
    )
    .map_err(within)
}

fn open_with(
    g: &GlobalOpts,
    url: &str,
    ssh_key: Option<std::path::PathBuf>,
    swift: Option<rime_engine::storage::SwiftCredentials>,
) -> Result<Arc<dyn Storage>> {
    let opts = OpenOptions {
        sftp: SftpOptions {
            key: ssh_key,
            accept_new: g.ssh_accept_new,
            config: g.ssh_config.clone(),
            ..Default::default()
        },
        connections: g.connections.map(usize::from),
        limit_upload: g.limit_upload,
        limit_download: g.limit_download,
        retry: None,
        dry_run: g.dry_run,
        swift,
    };
    let opened = open_layered(url, &opts)?;
    if let Some(d) = opened.dry_run {
        let _ = DRY_RUN.set(d);
    }
    Ok(opened.storage)
}

/// Say what a dry run would have written or removed (nothing, if the run never opened a storage).
pub fn print_dry_run(g: &GlobalOpts) {
    let Some(d) = DRY_RUN.get() else { return };
    let r: DryRunReport = d.report();
    if g.json {
        let kinds: serde_json::Map<String, serde_json::Value> = FileKind::ALL
            .iter()
            .map(|k| {
                let (n, b) = r.count(*k);
                (
                    format!("{k:?}").to_lowercase(),
                    serde_json::json!({"objects": n, "bytes": b}),
                )
            })
            .collect();
        eprintln!(
            "{}",
            serde_json::json!({"dry_run": {"location": d.location(), "would_write": kinds,
                "would_remove": r.removed.iter().filter(|(k, _)| *k != FileKind::Lock).count()}})
        );
        return;
    }
    let mut parts = vec![];
    for (kind, one, many) in [
        (FileKind::Pack, "pack", "packs"),
        (FileKind::Index, "index file", "index files"),
        (FileKind::Snapshot, "snapshot", "snapshots"),
        (FileKind::Key, "key file", "key files"),
        (FileKind::Config, "config", "configs"),
    ] {
        let (n, b) = r.count(kind);
        if n > 0 {
            parts.push(format!(
                "{n} {} ({})",
                if n == 1 { one } else { many },
                bytes(b)
            ));
        }
    }
    let removed = r
        .removed
        .iter()
        .filter(|(k, _)| *k != FileKind::Lock)
        .count();
    let what = if parts.is_empty() {
        "would have uploaded nothing".to_string()
    } else {
        format!("would have uploaded {}", parts.join(", "))
    };
    let rm = if removed > 0 {
        format!(" and removed {removed} object(s)")
    } else {
        String::new()
    };
    println!(
        "dry run: nothing was written to {}; the run {what}{rm}",
        d.location()
    );
}
