use std::process::ExitCode;

use clap::Args;
use rime_engine::repo::lock::unlock;
use rime_engine::Result;

use crate::GlobalOpts;

#[derive(Args)]
pub struct UnlockArgs {
    /// Remove every lock, not only stale ones (only when no other rime uses the repository)
    #[arg(long)]
    remove_all: bool,
}

pub fn run(g: &GlobalOpts, a: UnlockArgs) -> Result<ExitCode> {
    let repo = super::open(g)?;
    let removed = unlock(&repo, a.remove_all)?;
    if g.json {
        super::print_json(&serde_json::json!({ "removed": removed }));
    } else if !g.quiet {
        for r in &removed {
            println!("removed {r}");
        }
        println!("{} lock(s) removed", removed.len());
    }
    Ok(ExitCode::SUCCESS)
}
