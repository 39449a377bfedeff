//! `rime diff A B`: what changed between two volume or stream snapshots.

use std::process::ExitCode;

use clap::Args;
use rime_engine::ops::select::resolve;
use rime_engine::ops::volume::diff::diff;
use rime_engine::Result;

use crate::output::bytes;
use crate::GlobalOpts;

#[derive(Args)]
pub struct DiffArgs {
    /// The older snapshot: "latest" or an id prefix
    a: String,
    /// The newer snapshot
    b: String,
    /// List every changed range, not only the totals
    #[arg(long)]
    ranges: bool,
}

pub fn run(g: &GlobalOpts, a: DiffArgs) -> Result<ExitCode> {
    let repo = super::open(g)?;
    let (ia, sa) = resolve(&repo, &a.a, &Default::default())?;
    let (ib, sb) = resolve(&repo, &a.b, &Default::default())?;
    let d = diff(&repo, &sa, &sb)?;
    if g.json {
        super::print_json(&serde_json::json!({
            "a": ia.to_hex(), "b": ib.to_hex(), "size_a": d.size_a, "size_b": d.size_b,
            "changed_bytes": d.changed_bytes, "changed_ranges": d.ranges.len(),
            "ranges": d.ranges.iter().map(|(o, l)| serde_json::json!({"offset": o, "length": l})).collect::<Vec<_>>(),
        }));
    } else if !g.quiet {
        if a.ranges {
            for (o, l) in &d.ranges {
                println!("{o:>16}  {l:>12}  {}", bytes(*l));
            }
        }
        println!(
            "{} -> {}: {} changed in {} range(s); size {} -> {}",
            ia.short(),
            ib.short(),
            bytes(d.changed_bytes),
            d.ranges.len(),
            bytes(d.size_a),
            bytes(d.size_b)
        );
    }
    Ok(ExitCode::SUCCESS)
}
