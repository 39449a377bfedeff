//! `rime locks`: the locks in the repository, to see who holds it before `rime unlock`.

use std::process::ExitCode;

use rime_engine::repo::lock::lock_statuses;
use rime_engine::Result;

use crate::GlobalOpts;

/// "3m12s", "2h05m", "-40s" (written by a clock ahead of ours).
fn age(secs: i64) -> String {
    let (sign, s) = if secs < 0 { ("-", -secs) } else { ("", secs) };
    match s {
        s if s < 3600 => format!("{sign}{}m{:02}s", s / 60, s % 60),
        s => format!("{sign}{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

pub fn run(g: &GlobalOpts) -> Result<ExitCode> {
    let repo = super::open(g)?;
    let locks = lock_statuses(&repo)?;
    if g.json {
        let v: Vec<serde_json::Value> = locks
            .iter()
            .map(|s| match &s.lock.body {
                Ok(b) => serde_json::json!({
                    "id": s.lock.id.to_hex(),
                    "holder": s.lock.holder().to_hex(),
                    "exclusive": b.exclusive,
                    "command": b.command,
                    "host": b.hostname,
                    "pid": b.pid,
                    "time": b.time,
                    "age_secs": s.age_secs,
                    "stale": s.stale.is_some(),
                    "stale_reason": s.stale,
                }),
                Err(e) => serde_json::json!({
                    "id": s.lock.id.to_hex(),
                    "unreadable": e,
                }),
            })
            .collect();
        super::print_json(&serde_json::Value::Array(v));
        return Ok(ExitCode::SUCCESS);
    }
    if locks.is_empty() {
        if !g.quiet {
            println!("no locks");
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<8}  {:<9}  {:<14}  {:<16}  {:>8}  {:>8}  state",
        "id", "kind", "command", "host", "pid", "age"
    );
    for s in &locks {
        let id = s.lock.id.short();
        match &s.lock.body {
            Ok(b) => println!(
                "{id:<8}  {:<9}  {:<14}  {:<16}  {:>8}  {:>8}  {}",
                b.kind_name(),
                b.command_shown(),
                b.hostname,
                b.pid,
                s.age_secs.map(age).unwrap_or_default(),
                match &s.stale {
                    Some(why) => format!("stale: {why}"),
                    None => "live".to_string(),
                }
            ),
            Err(e) => println!("{id:<8}  unreadable: {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
