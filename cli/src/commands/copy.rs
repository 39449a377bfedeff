//! `rime copy --from A --to B`: bring a storage's copy of the repository up to date.

use std::process::ExitCode;

use clap::Args;
use rime_engine::ops::copy::copy;
use rime_engine::Result;

use crate::output::bytes;
use crate::GlobalOpts;

#[derive(Args)]
pub struct CopyArgs {
    /// Storage holding the repository
    #[arg(long, value_name = "URL")]
    from: String,
    /// Storage to bring up to date (an empty one receives the whole repository)
    #[arg(long, value_name = "URL")]
    to: String,
    /// Only say what would be copied
    #[arg(long)]
    dry_run: bool,
}

pub fn run(g: &GlobalOpts, a: CopyArgs) -> Result<ExitCode> {
    let from = crate::storage_open::open(g, &a.from)?;
    let to = crate::storage_open::open(g, &a.to)?;
    let s = copy(from.as_ref(), to.as_ref(), a.dry_run)?;
    if g.json {
        super::print_json(&serde_json::json!({
            "from": from.location(), "to": to.location(), "dry_run": a.dry_run,
            "objects": s.objects, "bytes": s.bytes, "already_present": s.skipped,
        }));
    } else if !g.quiet {
        println!(
            "{} {} objects ({}) from {} to {}; {} were already there",
            if a.dry_run { "would copy" } else { "copied" },
            s.objects,
            bytes(s.bytes),
            from.location(),
            to.location(),
            s.skipped
        );
    }
    Ok(ExitCode::SUCCESS)
}
