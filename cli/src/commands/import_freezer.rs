//! `rime import-freezer`: turn backups written by OpenStack Freezer (tar engine, on local,
//! SSH or Swift storage) into rime snapshots, one per restore point; `--list` only lists them.
//! The work is in `rime_engine::freezer::legacy`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rime_engine::freezer::legacy::{
    self, open_container, ContainerOptions, ImportOptions, ImportOutcome, LegacyBackup,
};
use rime_engine::storage::sftp::SftpOptions;
use rime_engine::Result;

use crate::output::bytes;
use crate::GlobalOpts;

#[derive(Args)]
pub struct ImportFreezerArgs {
    /// The Freezer container: a directory (`--storage local`), sftp://user@host/path
    /// (`--storage ssh`) or swift://container[/prefix] (credentials from ST_*/OS_*)
    #[arg(long, value_name = "URL")]
    from: String,
    /// Freezer's --encrypt-pass-file: its first line is the `openssl enc` password
    #[arg(long, alias = "encrypt-pass-file", value_name = "FILE")]
    pass_file: Option<PathBuf>,
    /// Only backups of this host
    #[arg(long)]
    host: Option<String>,
    /// Only backups with this backup name (Freezer's --backup-name)
    #[arg(long, short = 'N')]
    name: Option<String>,
    /// List the Freezer backups (host, name, level, time, size) without importing
    #[arg(long)]
    list: bool,
    /// Where to replay each chain before backing it up (default: the system's temporary
    /// directory); needs room for the largest backed-up tree
    #[arg(long, value_name = "DIR")]
    temp_dir: Option<PathBuf>,
}

fn time(ts: i64) -> String {
    legacy::chain::show_time(ts)
}

fn describe(b: &LegacyBackup) -> serde_json::Value {
    serde_json::json!({
        "host": b.host,
        "name": b.name,
        "hostname_backup_name": b.hostname_backup_name,
        "level_zero_timestamp": b.level_zero,
        "level": b.level,
        "timestamp": b.timestamp,
        "time": time(b.timestamp),
        "size": b.size,
        "compression": b.compression.map(|c| c.name()),
        "encrypted": b.encrypted,
        "segments": if b.data.len() > 1 { b.data.len() } else { 0 },
        "path": b.dir,
    })
}

pub fn run(g: &GlobalOpts, a: ImportFreezerArgs) -> Result<ExitCode> {
    let copts = ContainerOptions {
        sftp: SftpOptions {
            key: g.ssh_key.clone(),
            accept_new: g.ssh_accept_new,
            config: g.ssh_config.clone(),
            ..Default::default()
        },
        swift: None,
    };
    let c = open_container(&a.from, &copts)?;
    if a.list {
        let all: Vec<LegacyBackup> = legacy::list(c.as_ref())?
            .into_iter()
            .filter(|b| b.is_of(a.host.as_deref(), a.name.as_deref()))
            .map(|mut b| {
                b.split_as(a.host.as_deref(), a.name.as_deref());
                b
            })
            .collect();
        if g.json {
            super::print_json(&serde_json::Value::Array(
                all.iter().map(describe).collect(),
            ));
        } else {
            println!(
                "{:<16} {:<20} {:>5}  {:<20}  {:>10}  {:<6} {:<9} chain",
                "host", "name", "level", "time", "size", "comp", "encrypted"
            );
            for b in &all {
                println!(
                    "{:<16} {:<20} {:>5}  {:<20}  {:>10}  {:<6} {:<9} {}",
                    b.host,
                    b.name,
                    b.level,
                    time(b.timestamp),
                    bytes(b.size),
                    b.compression.map_or("?", |c| c.name()),
                    if b.encrypted { "yes" } else { "no" },
                    time(b.level_zero)
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let pass = a
        .pass_file
        .as_deref()
        .map(rime_engine::tarinc::openssl::read_pass_file)
        .transpose()?;
    let repo = super::open(g)?;
    let opts = ImportOptions {
        host: a.host.clone(),
        name: a.name.clone(),
        pass,
        temp_dir: a.temp_dir.clone(),
    };
    let mut rows = vec![];
    let report = legacy::import(&repo, c.as_ref(), &opts, |b, o| {
        let (state, id) = match o {
            ImportOutcome::Imported(id) => ("imported", id),
            ImportOutcome::AlreadyImported(id) => ("already imported", id),
        };
        if g.json {
            let mut v = describe(b);
            v["status"] = state.into();
            v["snapshot"] = id.to_hex().into();
            rows.push(v);
        } else if !g.quiet {
            println!(
                "{state:<16} {} level {} of {} -> snapshot {}",
                b.hostname_backup_name,
                b.level,
                time(b.timestamp),
                id.short()
            );
        }
    })?;
    if g.json {
        super::print_json(&serde_json::json!({
            "imported": report.imported(),
            "already_imported": report.items.len() - report.imported(),
            "backups": rows,
        }));
    } else if !g.quiet {
        println!(
            "{} Freezer backups imported, {} already imported",
            report.imported(),
            report.items.len() - report.imported()
        );
    }
    Ok(ExitCode::SUCCESS)
}
