use std::process::ExitCode;

use clap::Args;
use rime_engine::ops::repair::{forget_broken, repair, Broken, RepairOptions};
use rime_engine::ops::salvage::Salvaged;
use rime_engine::repo::Repository;
use rime_engine::Result;

use crate::GlobalOpts;

#[derive(Args)]
pub struct RepairArgs {
    /// Rewrite each broken file snapshot to keep everything still stored: a file that lost
    /// chunks is kept as NAME.rime-damaged with zeros where they were, an unreadable directory
    /// becomes empty; the new snapshot is tagged "repaired" and replaces the original. (If the
    /// source files still exist, a new backup first heals old snapshots without any rewrite.)
    #[arg(long)]
    salvage: bool,
    /// After listing what each is missing, remove the snapshots whose data is gone (with
    /// --salvage: only those that could not be salvaged)
    #[arg(long)]
    forget_broken: bool,
    /// Report what the packs hold and which snapshots are broken; change nothing
    #[arg(long, short = 'n')]
    dry_run: bool,
}

pub fn run(g: &GlobalOpts, a: RepairArgs) -> Result<ExitCode> {
    // With several storages, once per storage: each index is rebuilt from the packs that storage
    // holds and only its own broken snapshots are forgotten (see `per_storage`).
    super::per_storage(g, |repo, on| run_on(g, &a, repo, on))
}

fn run_on(g: &GlobalOpts, a: &RepairArgs, repo: &Repository, on: Option<&str>) -> Result<ExitCode> {
    let forgetting = a.forget_broken && !a.dry_run;
    let repaired = repair(
        repo,
        &RepairOptions {
            dry_run: a.dry_run,
            salvage: a.salvage,
            keep_lock: forgetting,
        },
    )?;
    let r = repaired.report;
    for u in &r.unreadable_packs {
        eprintln!("rime: warning: {u}");
    }
    for u in &r.unreadable_records {
        eprintln!(
            "rime: warning: {u}: {}",
            match a.dry_run {
                true => "would be removed (every pack is indexed again)",
                false => "removed (every pack was indexed again)",
            }
        );
    }
    let salvaged = &r.salvaged;
    // With --salvage, what is left to forget is what could not be salvaged.
    let to_forget: Vec<Broken> = r
        .broken
        .iter()
        .filter(|b| {
            !salvaged
                .iter()
                .any(|s| s.original == b.id && s.skipped.is_none())
        })
        .cloned()
        .collect();
    let removed = match repaired.lock {
        Some(held) if !to_forget.is_empty() => {
            // Say exactly what is lost before removing anything.
            for b in &to_forget {
                eprintln!("snapshot {} loses {} item(s):", b.id.short(), b.lost_total);
                for l in &b.lost {
                    eprintln!("  {l}");
                }
            }
            forget_broken(repo, held, &to_forget)?
        }
        other => {
            drop(other); // release the lock before printing
            0
        }
    };
    if g.json {
        super::print_json(&serde_json::json!({
            "storage": on, "dry_run": a.dry_run, "packs": r.packs, "blobs_indexed": r.blobs_indexed,
            "unreadable_packs": r.unreadable_packs, "unreadable_records": r.unreadable_records, "index_files_written": r.index_files_written,
            "index_files_removed": r.index_files_removed, "snapshots_removed": removed,
            "salvaged": salvaged.iter().map(salvage_json).collect::<Vec<_>>(),
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
        print_salvaged(salvaged, a.dry_run);
        if !a.forget_broken && !a.salvage {
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
        } else if !r.broken.is_empty() && !a.forget_broken && !a.salvage {
            println!(
                "{} broken snapshot(s); `rime repair --salvage` keeps what is left of them, \
                 `--forget-broken` removes them",
                r.broken.len()
            );
        }
    }
    let unhandled = match (a.dry_run, a.forget_broken) {
        (true, _) => !r.broken.is_empty(),
        (false, true) => false,
        (false, false) => !to_forget.is_empty(),
    };
    Ok(if unhandled {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn salvage_json(s: &Salvaged) -> serde_json::Value {
    serde_json::json!({
        "original": s.original.to_hex(), "new": s.new.map(|n| n.to_hex()),
        "changes": s.changes, "skipped": s.skipped,
    })
}

fn print_salvaged(salvaged: &[Salvaged], dry_run: bool) {
    for s in salvaged {
        match (&s.skipped, &s.new) {
            (Some(why), _) => println!("snapshot {} not salvaged: {why}", s.original.short()),
            (None, Some(new)) => println!(
                "snapshot {} salvaged as {} (tagged repaired):",
                s.original.short(),
                new.short()
            ),
            (None, None) if dry_run => {
                println!("snapshot {} would be salvaged:", s.original.short())
            }
            (None, None) => {}
        }
        for c in &s.changes {
            println!("  {c}");
        }
    }
}
