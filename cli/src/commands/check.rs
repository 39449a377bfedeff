use std::process::ExitCode;

use clap::Args;
use rime_engine::ops::check::{check, CheckOptions};
use rime_engine::Result;

use crate::GlobalOpts;

#[derive(Args)]
pub struct CheckArgs {
    /// Also read every pack, verify its hash and decrypt and verify every blob
    #[arg(long)]
    read_data: bool,
}

pub fn run(g: &GlobalOpts, a: CheckArgs) -> Result<ExitCode> {
    let repo = super::open(g)?;
    let r = check(
        &repo,
        &CheckOptions {
            read_data: a.read_data,
        },
    )?;
    if g.json {
        super::print_json(&serde_json::json!({
            "ok": r.ok(), "snapshots": r.snapshots, "trees": r.trees, "packs": r.packs,
            "blobs_checked": r.blobs_checked, "bytes_read": r.bytes_read, "errors": r.errors, "warnings": r.warnings,
        }));
    } else {
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
        for e in &r.errors {
            eprintln!("error: {e}");
        }
        if !g.quiet {
            println!(
                "checked {} snapshots, {} trees, {} packs{}: {}",
                r.snapshots,
                r.trees,
                r.packs,
                if a.read_data {
                    format!(", {} blobs read and verified", r.blobs_checked)
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
    Ok(if r.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
