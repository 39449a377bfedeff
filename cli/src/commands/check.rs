use std::process::ExitCode;

use clap::Args;
use rime_engine::ops::check::{check, CheckOptions, Subset};
use rime_engine::Result;

use crate::GlobalOpts;

#[derive(Args)]
pub struct CheckArgs {
    /// Also read every pack, verify its hash and decrypt and verify every blob
    #[arg(long)]
    read_data: bool,
    /// Read and verify only part of the packs: n/m (part n of m, by pack id: 1/7..7/7 on
    /// seven nights cover all), a percentage (5%) or a size (10G) of randomly chosen packs
    #[arg(long, value_name = "n/m|P%|SIZE")]
    read_data_subset: Option<String>,
}

pub fn run(g: &GlobalOpts, a: CheckArgs) -> Result<ExitCode> {
    let subset = a
        .read_data_subset
        .as_deref()
        .map(Subset::parse)
        .transpose()?;
    let read_data = a.read_data || subset.is_some();
    let opts = CheckOptions { read_data, subset };
    let members = super::members(g)?;
    if members.len() <= 1 {
        let repo = super::open(g)?;
        let r = check(&repo, &opts)?;
        return Ok(report(g, &r, read_data, None));
    }
    // One repository on several storages: each copy must be checked, since restores may need
    // any of them (reads use the first that answers, which would hide damage on the others).
    // Exit as the other per-storage commands: 1 when a check found problems, else 4 when a
    // storage could not be checked (no repository there, unreachable) and another could.
    let (mut failed, mut succeeded, mut code) = (Vec::new(), 0usize, ExitCode::SUCCESS);
    for s in members {
        let location = s.location();
        let r = super::open_on(g, s).and_then(|repo| check(&repo, &opts));
        match r {
            Ok(r) => {
                succeeded += 1;
                if report(g, &r, read_data, Some(&location)) != ExitCode::SUCCESS {
                    code = ExitCode::FAILURE;
                }
            }
            Err(e) => {
                eprintln!("rime: error: storage {location}: {e}");
                failed.push((location, e));
            }
        }
    }
    super::per_storage_outcome(failed, succeeded, code)
}

/// Print one check's result (for one storage when `on` names it) and its exit code.
fn report(
    g: &GlobalOpts,
    r: &rime_engine::ops::check::CheckReport,
    read_data: bool,
    on: Option<&str>,
) -> ExitCode {
    let prefix = on.map(|l| format!("storage {l}: ")).unwrap_or_default();
    if g.json {
        super::print_json(&serde_json::json!({
            "ok": r.ok(), "snapshots": r.snapshots, "trees": r.trees, "packs": r.packs,
            "blobs_checked": r.blobs_checked, "packs_read": r.packs_read, "bytes_read": r.bytes_read, "errors": r.errors, "warnings": r.warnings,
            "notes": r.notes, "storage": on,
        }));
    } else {
        if !g.quiet {
            for n in &r.notes {
                println!("{prefix}{n}");
            }
        }
        for w in &r.warnings {
            eprintln!("{prefix}warning: {w}");
        }
        for e in &r.errors {
            eprintln!("{prefix}error: {e}");
        }
        if !g.quiet {
            println!(
                "{prefix}checked {} snapshots, {} trees, {} packs{}: {}",
                r.snapshots,
                r.trees,
                r.packs,
                if read_data {
                    format!(
                        ", {} blobs in {} packs read and verified",
                        r.blobs_checked, r.packs_read
                    )
                } else {
                    String::new()
                },
                if r.ok() {
                    "no errors".to_string()
                } else {
                    format!("{} error(s)", r.errors.len())
                }
            );
        }
    }
    if r.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
