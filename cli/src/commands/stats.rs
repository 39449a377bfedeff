use std::process::ExitCode;

use rime_engine::ops::stats::stats;
use rime_engine::Result;

use crate::output::bytes;
use crate::GlobalOpts;

pub fn run(g: &GlobalOpts) -> Result<ExitCode> {
    let repo = super::open(g)?;
    let s = stats(&repo)?;
    if g.json {
        super::print_json(&serde_json::to_value(&s).expect("stats serialize"));
    } else if !g.quiet {
        println!("snapshots:        {}", s.snapshots);
        println!("packs:            {} ({})", s.packs, bytes(s.pack_bytes));
        println!("index files:      {}", s.index_files);
        println!(
            "blobs:            {} ({} data, {} tree)",
            s.blobs, s.data_blobs, s.tree_blobs
        );
        println!(
            "unique data:      {} before compression",
            bytes(s.stored_raw_bytes)
        );
        println!(
            "snapshots total:  {} of file content",
            bytes(s.snapshot_bytes)
        );
        println!(
            "space saving:     {:.2}x (snapshot content / repository size)",
            s.ratio
        );
        println!("index in memory:  {}", bytes(s.index_memory_bytes));
    }
    Ok(ExitCode::SUCCESS)
}
