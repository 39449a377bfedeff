//! Opening the repository's storage with the global storage options (SSH, connections,
//! bandwidth limits, dry run), and reporting what a dry run would have done.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rime_engine::storage::bandwidth::TokenBucket;
use rime_engine::storage::dry_run::{DryRunReport, DryRunStorage};
use rime_engine::storage::sftp::SftpOptions;
use rime_engine::storage::{open_layered, FileKind, OpenOptions, Storage, SwiftCredentials};
use rime_engine::Result;

use crate::output::bytes;
use crate::GlobalOpts;

/// The dry-run layers of this run, one per storage opened, so that each storage's report can be
/// printed at the end.
static DRY_RUN: Mutex<Vec<Arc<DryRunStorage>>> = Mutex::new(Vec::new());

/// clap parser for `--limit-upload` / `--limit-download`.
pub fn parse_rate(s: &str) -> std::result::Result<u64, String> {
    rime_engine::storage::bandwidth::parse_rate(s).map_err(|e| e.to_string())
}

pub fn open(g: &GlobalOpts, url: &str) -> Result<Arc<dyn Storage>> {
    let own = Own {
        ssh_key: g.ssh_key.clone(),
        swift: swift_overrides(g, url)?,
        ..Own::default()
    };
    open_with(g, url, own)
}

/// What one storage has of its own, beside the run's options.
#[derive(Default)]
struct Own {
    ssh_key: Option<std::path::PathBuf>,
    swift: Option<SwiftCredentials>,
    /// A config section's own limits, on top of the run's shared ones.
    limit_upload: Option<u64>,
    limit_download: Option<u64>,
}

/// The run's `--limit-upload` / `--limit-download` buckets, one per direction, which every
/// storage of the run takes from: the limits hold for the whole run, however many storages.
#[derive(Clone)]
struct RunLimits {
    up: Option<Arc<TokenBucket>>,
    down: Option<Arc<TokenBucket>>,
}

static RUN_LIMITS: OnceLock<RunLimits> = OnceLock::new();

fn run_limits(g: &GlobalOpts) -> RunLimits {
    RUN_LIMITS
        .get_or_init(|| {
            let bucket = |r: u64| Arc::new(TokenBucket::new(r));
            RunLimits {
                up: g.limit_upload.map(bucket),
                down: g.limit_download.map(bucket),
            }
        })
        .clone()
}

/// Swift credentials from the environment when `--os-region-name` or `--os-interface` is
/// given (they replace `OS_REGION_NAME` / `OS_INTERFACE`); otherwise the storage reads the
/// environment itself.
fn swift_overrides(g: &GlobalOpts, url: &str) -> Result<Option<SwiftCredentials>> {
    let o = command_line_placement(g);
    if o.is_empty() || !url.starts_with("swift://") {
        return Ok(None);
    }
    SwiftCredentials::from_env_with(&o).map(Some)
}

/// A storage of a `[storage:NAME]` section, with its own SSH key (and Swift credentials).
pub fn open_section(
    g: &GlobalOpts,
    s: &crate::config_file::StorageSection,
) -> Result<Arc<dyn Storage>> {
    let within = |e: rime_engine::Error| e.within(format!("[storage:{}]", s.name));
    let swift = section_swift(g, s).map_err(within)?;
    let own = Own {
        ssh_key: s.ssh_key.clone().or_else(|| g.ssh_key.clone()),
        swift,
        limit_upload: s.limit_upload,
        limit_download: s.limit_download,
    };
    open_with(g, &s.url, own).map_err(within)
}

/// The credentials of a `swift://` section (`None` for other storages).
///
/// Region and interface: the section's own value (its osrc file or keys) wins, since a section
/// names one cluster; what it leaves open comes from `--os-region-name` / `--os-interface`, and
/// then from `OS_REGION_NAME` / `OS_INTERFACE`. A section without credentials of its own takes
/// them all from the environment, as `--repo swift://` does.
pub fn section_swift(
    g: &GlobalOpts,
    s: &crate::config_file::StorageSection,
) -> Result<Option<SwiftCredentials>> {
    section_swift_with(g, s, |k| std::env::var(k).ok())
}

/// Keys naming the region, then the interface (`OS_ENDPOINT_TYPE` is swiftclient's older name).
const PLACEMENT: [&[&str]; 2] = [&["os_region_name"], &["os_interface", "os_endpoint_type"]];

fn section_swift_with(
    g: &GlobalOpts,
    s: &crate::config_file::StorageSection,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<SwiftCredentials>> {
    if !s.url.starts_with("swift://") {
        return Ok(None);
    }
    if s.swift_env.is_empty() {
        return SwiftCredentials::from_env_with(&command_line_placement(g)).map(Some);
    }
    let own: HashMap<String, String> = s
        .swift_env
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    let cli = command_line_placement(g);
    let mut map = HashMap::new();
    for aliases in PLACEMENT {
        if aliases.iter().any(|k| own.contains_key(*k)) {
            continue;
        }
        let from_cli = aliases
            .iter()
            .find_map(|k| cli.get(*k).map(|v| (*k, v.clone())));
        let from_env = || {
            aliases
                .iter()
                .find_map(|k| env(&k.to_ascii_uppercase()).map(|v| (*k, v)))
        };
        if let Some((k, v)) = from_cli.or_else(from_env) {
            map.insert(k.to_string(), v);
        }
    }
    map.extend(own);
    SwiftCredentials::from_map(&map).map(Some)
}

/// `--os-region-name` and `--os-interface`, as credential keys.
fn command_line_placement(g: &GlobalOpts) -> HashMap<String, String> {
    let mut o = HashMap::new();
    if let Some(r) = &g.os_region_name {
        o.insert("os_region_name".to_string(), r.clone());
    }
    if let Some(i) = &g.os_interface {
        o.insert("os_interface".to_string(), i.clone());
    }
    o
}

fn open_with(g: &GlobalOpts, url: &str, own: Own) -> Result<Arc<dyn Storage>> {
    let limits = run_limits(g);
    let opts = OpenOptions {
        sftp: SftpOptions {
            key: own.ssh_key,
            accept_new: g.ssh_accept_new,
            config: g.ssh_config.clone(),
            ..Default::default()
        },
        connections: g.connections.map(usize::from),
        limit_upload: own.limit_upload,
        limit_download: own.limit_download,
        shared_upload: limits.up,
        shared_download: limits.down,
        retry: None,
        dry_run: g.dry_run,
        swift: own.swift,
    };
    let opened = open_layered(url, &opts)?;
    if let Some(d) = opened.dry_run {
        DRY_RUN.lock().unwrap_or_else(|e| e.into_inner()).push(d);
    }
    Ok(opened.storage)
}

/// Say, for each storage opened, what a dry run would have written or removed there (nothing,
/// if the run never opened a storage).
pub fn print_dry_run(g: &GlobalOpts) {
    let layers = DRY_RUN.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for d in layers {
        let r = d.report();
        if g.json {
            eprintln!("{}", dry_run_json(&d.location(), &r));
        } else {
            crate::commands::print_result(g, &dry_run_line(&d.location(), &r));
        }
    }
}

/// Removals worth reporting (locks come and go in every run).
fn removed(r: &DryRunReport) -> usize {
    r.removed
        .iter()
        .filter(|(k, _)| *k != FileKind::Lock)
        .count()
}

fn dry_run_json(location: &str, r: &DryRunReport) -> serde_json::Value {
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
    serde_json::json!({"dry_run": {"location": location, "would_write": kinds,
        "would_remove": removed(r)}})
}

fn dry_run_line(location: &str, r: &DryRunReport) -> String {
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
    let what = if parts.is_empty() {
        // Not "uploaded": forget and prune also end with this line.
        "would have written nothing".to_string()
    } else {
        format!("would have uploaded {}", parts.join(", "))
    };
    let rm = match removed(r) {
        0 => String::new(),
        n => format!(" and removed {n} object(s)"),
    };
    format!("dry run: nothing was written to {location}; the run {what}{rm}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_file::StorageSection;
    use clap::Parser;
    use rime_engine::storage::swift::Interface;

    fn global(args: &[&str]) -> GlobalOpts {
        let mut all = vec!["rime"];
        all.extend(args);
        all.push("stats");
        crate::Cli::try_parse_from(all).unwrap().global
    }

    fn swift_section(keys: &[(&str, &str)]) -> StorageSection {
        let mut env: std::collections::BTreeMap<String, String> = [
            ("OS_AUTH_URL", "http://k/v3"),
            ("OS_APPLICATION_CREDENTIAL_ID", "id"),
            ("OS_APPLICATION_CREDENTIAL_SECRET", "s"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.extend(keys.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        StorageSection {
            name: "cloud".into(),
            url: "swift://c".into(),
            swift_env: env,
            ..Default::default()
        }
    }

    /// (region, interface) a section ends up with.
    fn placement(g: &GlobalOpts, s: &StorageSection, env: &[(&str, &str)]) -> (String, Interface) {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match section_swift_with(g, s, |k| env.get(k).cloned()).unwrap() {
            Some(SwiftCredentials::Keystone {
                region, interface, ..
            }) => (region.unwrap_or_default(), interface),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn section_then_command_line_then_environment() {
        let env = [("OS_REGION_NAME", "EnvRegion"), ("OS_INTERFACE", "admin")];
        let cli = global(&[
            "--os-region-name",
            "CliRegion",
            "--os-interface",
            "internal",
        ]);
        let bare = swift_section(&[]);
        assert_eq!(
            placement(&global(&[]), &bare, &env),
            ("EnvRegion".into(), Interface::Admin)
        );
        assert_eq!(
            placement(&cli, &bare, &env),
            ("CliRegion".into(), Interface::Internal)
        );
        let own = swift_section(&[("OS_REGION_NAME", "Own"), ("OS_ENDPOINT_TYPE", "publicURL")]);
        assert_eq!(
            placement(&cli, &own, &env),
            ("Own".into(), Interface::Public)
        );
        assert_eq!(
            placement(&global(&[]), &bare, &[]),
            ("".into(), Interface::Public)
        );
    }
}
