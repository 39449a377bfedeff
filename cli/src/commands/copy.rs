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
    // With a password, both storages are locked for the copy; without, it still works.
    let password = (g.password_file.is_some() || std::env::var_os("RIME_PASSWORD").is_some())
        .then(|| crate::password::get(g))
        .transpose()?;
    let opts = rime_engine::ops::copy::CopyOptions {
        dry_run: a.dry_run,
        password,
    };
    let s = copy(from.clone(), to.clone(), &opts)?;
    if !s.locked && !a.dry_run && !g.quiet {
        eprintln!(
            "rime: warning: copied without locks (no password given): a prune on either storage \
             during the copy could remove what it relies on"
        );
    }
    if g.json {
        super::print_json(&serde_json::json!({
            "from": from.location(), "to": to.location(), "dry_run": a.dry_run,
            "objects": s.objects, "bytes": s.bytes, "already_present": s.skipped,
            "replaced": s.replaced, "locked": s.locked,
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
