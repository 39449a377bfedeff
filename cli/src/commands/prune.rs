use std::process::ExitCode;

use clap::Args;
use rime_engine::ops::prune::{prune, PruneOptions, PruneReport};
use rime_engine::{Error, Result};

use crate::output::bytes;
use crate::GlobalOpts;

#[derive(Args)]
pub struct PruneArgs {
    /// Repack partly used packs until unused space is at most this share of the repository
    #[arg(long, default_value = "5%", value_name = "PERCENT")]
    max_unused: String,
    /// Packs marked by an earlier prune are deleted only after this many minutes
    #[arg(long, default_value_t = 60, value_name = "MINUTES")]
    grace_minutes: u32,
    /// Report what would be marked and deleted; change nothing
    #[arg(long, short = 'n')]
    dry_run: bool,
}

fn percent(s: &str) -> Result<f64> {
    s.trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .filter(|v| (0.0..=100.0).contains(v))
        .map(|v| v / 100.0)
        .ok_or_else(|| {
            Error::invalid(format!(
                "bad --max-unused '{s}': use a percentage such as 5%"
            ))
        })
}

pub fn run(g: &GlobalOpts, a: PruneArgs) -> Result<ExitCode> {
    let opts = PruneOptions {
        max_unused: percent(&a.max_unused)?,
        grace_secs: i64::from(a.grace_minutes) * 60,
        dry_run: a.dry_run,
    };
    // With several storages, once per storage: see `per_storage`.
    super::per_storage(g, |repo, on| {
        let r = prune(repo, &opts)?;
        print(g, &a, &r, on);
        Ok(ExitCode::SUCCESS)
    })
}

fn print(g: &GlobalOpts, a: &PruneArgs, r: &PruneReport, on: Option<&str>) {
    if g.json {
        super::print_json(&serde_json::json!({
            "storage": on, "dry_run": a.dry_run, "snapshots": r.snapshots, "blobs": r.blobs, "blobs_used": r.blobs_used,
            "packs": r.packs, "pack_bytes": r.pack_bytes, "unused_bytes": r.unused_bytes,
            "packs_marked": r.packs_marked, "bytes_marked": r.bytes_marked,
            "packs_repacked": r.packs_repacked, "bytes_repacked": r.bytes_repacked,
            "packs_deleted": r.packs_deleted, "bytes_deleted": r.bytes_deleted,
            "packs_resurrected": r.packs_resurrected, "packs_waiting": r.packs_waiting,
            "index_files_written": r.index_files_written, "index_files_removed": r.index_files_removed,
            "bitmap_bytes": r.bitmap_bytes, "index_memory_bytes": r.index_memory_bytes,
            "leftovers_removed": r.leftovers_removed, "leftover_bytes_removed": r.leftover_bytes_removed,
            "leftovers_skipped_for_running_operations": r.leftovers_skipped_for_running_operations,
        }));
    } else if !g.quiet {
        let verb = if a.dry_run { "would be" } else { "" };
        println!(
            "{} snapshots, {} of {} blobs used",
            r.snapshots, r.blobs_used, r.blobs
        );
        println!(
            "{} packs, {} ({} unused)",
            r.packs,
            bytes(r.pack_bytes),
            bytes(r.unused_bytes)
        );
        println!(
            "marked for deletion{verb}: {} packs ({}), {} of them repacked ({} copied)",
            r.packs_marked,
            bytes(r.bytes_marked),
            r.packs_repacked,
            bytes(r.bytes_repacked)
        );
        println!(
            "deleted{verb} (marked earlier): {} packs ({}); still waiting: {}; re-indexed: {}",
            r.packs_deleted,
            bytes(r.bytes_deleted),
            r.packs_waiting,
            r.packs_resurrected
        );
        if r.packs_waiting > 0 {
            println!(
                "  (waiting packs are deleted by a later prune once the grace period after \
                 their marking has passed (--grace-minutes) and no operation that was running \
                 when they were marked still runs)"
            );
        }
        if r.leftovers_skipped_for_running_operations {
            println!(
                "temporary files of interrupted writes were left alone: other operations are \
                 running (a later prune removes them)"
            );
        }
        if r.leftovers_removed > 0 {
            println!(
                "removed {} temporary file(s) of interrupted writes ({})",
                r.leftovers_removed,
                bytes(r.leftover_bytes_removed)
            );
        }
        println!(
            "memory: index {}, used-blob bitmap {}",
            bytes(r.index_memory_bytes),
            bytes(r.bitmap_bytes)
        );
    }
}
