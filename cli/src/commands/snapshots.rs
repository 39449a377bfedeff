use std::process::ExitCode;

use clap::Args;
use rime_engine::Result;

use crate::output::{bytes, time, time_rfc3339};
use crate::GlobalOpts;

#[derive(Args)]
pub struct SnapshotsArgs {
    /// Only snapshots of this host
    #[arg(long)]
    host: Option<String>,
    /// Only snapshots with this backup name
    #[arg(long, short = 'N')]
    name: Option<String>,
}

pub fn run(g: &GlobalOpts, a: SnapshotsArgs) -> Result<ExitCode> {
    let repo = super::open(g)?;
    let all = repo.list_snapshots()?;
    let mut rows = Vec::new();
    let mut unreadable = 0;
    for (id, s) in &all {
        match s {
            Ok(s) => {
                if a.host.as_ref().is_some_and(|h| *h != s.hostname)
                    || a.name.as_ref().is_some_and(|n| *n != s.name)
                {
                    continue;
                }
                rows.push((id, s));
            }
            Err(e) => {
                unreadable += 1;
                eprintln!("rime: warning: snapshot {}: {e}", id.short());
            }
        }
    }
    if g.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(id, s)| {
                serde_json::json!({
                    "id": id.to_hex(), "short_id": id.short(), "time": time_rfc3339(s.time),
                    "hostname": s.hostname, "name": s.name, "username": s.username, "tags": s.tags,
                    "paths": s.paths, "parent": s.parent.map(|p| p.to_hex()), "program": s.program,
                    "stats": {"files": s.stats.files, "dirs": s.stats.dirs, "bytes_total": s.stats.bytes_total,
                              "bytes_added": s.stats.bytes_added, "duration_ms": s.stats.duration_ms,
                              "unreadable": s.stats.unreadable},
                    "source": source_json(&s.source),
                })
            })
            .collect();
        super::print_json(&serde_json::Value::Array(v));
    } else if !g.quiet {
        println!(
            "{:<8}  {:<19}  {:<16}  {:<16}  {:<6}  {:>10}  {:<12}  paths",
            "id", "time", "host", "name", "kind", "size", "tags"
        );
        for (id, s) in &rows {
            println!(
                "{:<8}  {:<19}  {:<16}  {:<16}  {:<6}  {:>10}  {:<12}  {}",
                id.short(),
                time(s.time),
                s.hostname,
                s.name,
                s.source.label(),
                bytes(s.stats.bytes_total),
                s.tags.join(","),
                s.paths.join(" ")
            );
        }
        println!("{} snapshot(s)", rows.len());
    }
    Ok(if unreadable > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Volume and stream details for JSON listings.
fn source_json(k: &rime_engine::format::snapshot::SourceKind) -> serde_json::Value {
    use rime_engine::format::snapshot::SourceKind;
    let ann = |a: &[(String, String)]| -> serde_json::Map<String, serde_json::Value> {
        a.iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
            .collect()
    };
    match k {
        SourceKind::Files => serde_json::json!({"kind": "files"}),
        SourceKind::Volume(v) => serde_json::json!({
            "kind": "volume", "path": v.path, "block_device": v.block_device, "size": v.size,
            "chunker": format!("{:?}", v.chunker).to_lowercase(), "chunk_size": v.chunk_size,
            "annotations": ann(&v.annotations),
        }),
        SourceKind::Stream(st) => serde_json::json!({
            "kind": "stream", "size": st.size, "command": st.command,
            "annotations": ann(&st.annotations),
        }),
        SourceKind::TarLevel(t) => serde_json::json!({
            "kind": "tar-level", "size": t.size, "tar_size": t.tar_size, "level": t.level,
            "chain": t.chain.iter().map(|c| c.to_hex()).collect::<Vec<_>>(),
            "compression": t.compression, "encrypted": t.encrypted,
            "annotations": ann(&t.annotations),
        }),
    }
}
