//! `rime diff A B`: what changed between two snapshots: paths for file trees, byte ranges for
//! volumes and streams.

use std::process::ExitCode;

use clap::Args;
use rime_engine::ops::select::resolve;
use rime_engine::ops::tree_diff::{diff_trees, Counts, TreeDiff};
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
    /// Volumes and streams: list every changed range, not only the totals
    #[arg(long)]
    ranges: bool,
}

pub fn run(g: &GlobalOpts, a: DiffArgs) -> Result<ExitCode> {
    let repo = super::open(g)?;
    let (ia, sa) = resolve(&repo, &a.a, &Default::default())?;
    let (ib, sb) = resolve(&repo, &a.b, &Default::default())?;
    if !sa.source.has_chunk_map() || !sb.source.has_chunk_map() {
        let index = rime_engine::repo::index::MasterIndex::load(&repo)?;
        let d = diff_trees(&repo, &index, &sa, &sb)?;
        print_tree_diff(g, &ia.to_hex(), &ib.to_hex(), &d);
        return Ok(ExitCode::SUCCESS);
    }
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

fn print_tree_diff(g: &GlobalOpts, a: &str, b: &str, d: &TreeDiff) {
    let counts = |c: &Counts| {
        serde_json::json!({"added": c.added, "removed": c.removed, "modified": c.modified,
            "metadata": c.metadata, "type_changed": c.type_changed})
    };
    if g.json {
        super::print_json(&serde_json::json!({
            "a": a, "b": b,
            "changes": d.changes.iter().map(|(c, p)| serde_json::json!({"change": c.code().to_string(), "path": p})).collect::<Vec<_>>(),
            "files": counts(&d.files), "dirs": counts(&d.dirs), "others": counts(&d.others),
            "bytes_added": d.bytes_added, "bytes_removed": d.bytes_removed,
        }));
        return;
    }
    if g.quiet {
        return;
    }
    for (c, p) in &d.changes {
        println!("{}    {p}", c.code());
    }
    let line = |what: &str, c: &Counts| {
        println!(
            "{what:<7} {} added, {} removed, {} modified, {} metadata only, {} changed type",
            c.added, c.removed, c.modified, c.metadata, c.type_changed
        )
    };
    println!("{} -> {}:", &a[..8], &b[..8]);
    line("files:", &d.files);
    line("dirs:", &d.dirs);
    line("others:", &d.others);
    println!(
        "content: {} in chunks only the newer side has, {} in chunks only the older side had",
        bytes(d.bytes_added),
        bytes(d.bytes_removed)
    );
}
