use std::process::ExitCode;

use clap::Args;
use rime_engine::ops::repair::{forget_broken, repair, RepairOptions};
use rime_engine::Result;

use crate::GlobalOpts;

#[derive(Args)]
pub struct RepairArgs {
    /// After listing what each is missing, remove the snapshots whose data is gone
    #[arg(long)]
    forget_broken: bool,
    /// Report what the packs hold and which snapshots are broken; change nothing
    #[arg(long, short = 'n')]
    dry_run: bool,
}

pub fn run(g: &GlobalOpts, a: RepairArgs) -> Result<ExitCode> {
    let repo = super::open(g)?;
    let r = repair(&repo, &RepairOptions { dry_run: a.dry_run })?;
    for u in &r.unreadable_packs {
        eprintln!("rime: warning: {u} (its blobs are lost)");
    }
    let removed = if a.forget_broken && !a.dry_run && !r.broken.is_empty() {
        // Say exactly what is lost before removing anything.
        for b in &r.broken {
            eprintln!("snapshot {} loses {} item(s):", b.id.short(), b.lost_total);
            for l in &b.lost {
                eprintln!("  {l}");
            }
        }
        forget_broken(&repo, &r.broken)?
    } else {
        0
    };
    if g.json {
        super::print_json(&serde_json::json!({
            "dry_run": a.dry_run, "packs": r.packs, "blobs_indexed": r.blobs_indexed,
            "unreadable_packs": r.unreadable_packs, "index_files_written": r.index_files_written,
            "index_files_removed": r.index_files_removed, "snapshots_removed": removed,
            "broken": r.broken.iter().map(|b| serde_json::json!({
                "id": b.id.to_hex(), "lost_total": b.lost_total, "lost": b.lost,
            })).collect::<Vec<_>>(),
        }));
    } else if !g.quiet {
        println!(
            "index {} from {} packs ({} blobs){}",
            if a.dry_run {
                "would be rebuilt"
            } else {
                "rebuilt"
            },
            r.packs,
            r.blobs_indexed,
            if a.dry_run {
                String::new()
            } else {
                format!(
                    ": {} index files written, {} removed",
                    r.index_files_written, r.index_files_removed
                )
            }
        );
        if !a.forget_broken {
            for b in &r.broken {
                println!(
                    "snapshot {} is broken, {} item(s) lost:",
                    b.id.short(),
                    b.lost_total
                );
                for l in &b.lost {
                    println!("  {l}");
                }
            }
        }
        if removed > 0 {
            println!("removed {removed} broken snapshot(s)");
        } else if !r.broken.is_empty() && !a.forget_broken {
            println!(
                "{} broken snapshot(s); `rime repair --forget-broken` removes them",
                r.broken.len()
            );
        }
    }
    Ok(if r.broken.is_empty() || removed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
