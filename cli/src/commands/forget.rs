use std::process::ExitCode;

use clap::Args;
use rime_engine::ops::forget::{forget, ForgetOptions, ForgetReport};
use rime_engine::ops::policy::{CalendarDuration, GroupBy, Policy};
use rime_engine::Result;

use crate::output::{time, time_rfc3339};
use crate::GlobalOpts;

#[derive(Args)]
pub struct ForgetArgs {
    /// Snapshots to remove (ids or unique prefixes), instead of retention rules
    #[arg(value_name = "SNAPSHOT")]
    snapshots: Vec<String>,
    /// Keep the N newest snapshots
    #[arg(long, value_name = "N")]
    keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N hours that have one (local time)
    #[arg(long, value_name = "N")]
    keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the last N days that have one
    #[arg(long, value_name = "N")]
    keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one
    #[arg(long, value_name = "N")]
    keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the last N months that have one
    #[arg(long, value_name = "N")]
    keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the last N years that have one
    #[arg(long, value_name = "N")]
    keep_yearly: Option<u32>,
    /// Keep every snapshot taken within DURATION (e.g. 1y2m3d4h) before the group's newest
    /// (or before now, if that one is dated in the future)
    #[arg(long, value_name = "DURATION")]
    keep_within: Option<String>,
    /// Keep the newest snapshot of every hour within DURATION before the group's newest
    #[arg(long, value_name = "DURATION")]
    keep_within_hourly: Option<String>,
    /// Keep the newest snapshot of every day within DURATION before the group's newest
    #[arg(long, value_name = "DURATION")]
    keep_within_daily: Option<String>,
    /// Keep the newest snapshot of every ISO week within DURATION before the group's newest
    #[arg(long, value_name = "DURATION")]
    keep_within_weekly: Option<String>,
    /// Keep the newest snapshot of every month within DURATION before the group's newest
    #[arg(long, value_name = "DURATION")]
    keep_within_monthly: Option<String>,
    /// Keep the newest snapshot of every year within DURATION before the group's newest
    #[arg(long, value_name = "DURATION")]
    keep_within_yearly: Option<String>,
    /// Keep snapshots with these tags (comma-separated: all of them); repeatable
    #[arg(long, value_name = "TAG[,TAG]")]
    keep_tag: Vec<String>,
    /// Freezer: remove snapshots older than DAYS days (keeps those taken since)
    #[arg(long, value_name = "DAYS")]
    remove_older_than: Option<u32>,
    /// Freezer: remove snapshots taken before this local date (YYYY-MM-DDThh:mm:ss)
    #[arg(long, value_name = "DATE")]
    remove_from_date: Option<String>,
    /// Apply the rules separately per group of these fields: host,name,paths,tags ("" = one group)
    #[arg(long, default_value = "host,name", value_name = "FIELDS")]
    group_by: String,
    /// Only snapshots of this host
    #[arg(long)]
    host: Option<String>,
    /// Only snapshots with this backup name
    #[arg(long, short = 'N')]
    name: Option<String>,
    /// Only snapshots carrying this tag (repeatable: all of them)
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Print what would be kept and removed, and why; remove nothing
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// Allow the rules to remove every snapshot of a group (refused otherwise)
    #[arg(long)]
    unsafe_allow_remove_all: bool,
}

pub fn run(g: &GlobalOpts, a: ForgetArgs) -> Result<ExitCode> {
    let duration = |d: &Option<String>| d.as_deref().map(CalendarDuration::parse).transpose();
    let policy = Policy {
        last: a.keep_last,
        hourly: a.keep_hourly,
        daily: a.keep_daily,
        weekly: a.keep_weekly,
        monthly: a.keep_monthly,
        yearly: a.keep_yearly,
        within: a
            .keep_within
            .as_deref()
            .map(CalendarDuration::parse)
            .transpose()?,
        within_periods: [
            duration(&a.keep_within_hourly)?,
            duration(&a.keep_within_daily)?,
            duration(&a.keep_within_weekly)?,
            duration(&a.keep_within_monthly)?,
            duration(&a.keep_within_yearly)?,
        ],
        tags: a
            .keep_tag
            .iter()
            .map(|t| {
                t.split(',')
                    .map(str::to_string)
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .collect(),
        remove_older_than_days: a.remove_older_than,
        remove_before: a
            .remove_from_date
            .as_deref()
            .map(crate::output::parse_date_day_start)
            .transpose()?,
    };
    let opts = ForgetOptions {
        policy,
        group_by: GroupBy::parse(&a.group_by)?,
        hostname: a.host,
        name: a.name,
        tags: a.tags,
        dry_run: a.dry_run,
        allow_remove_all: a.unsafe_allow_remove_all,
        ids: Vec::new(),
    };
    // With several storages, once per storage (each decides from its own snapshots and removes
    // only there): see `per_storage`.
    super::per_storage(g, |repo, on| {
        let mut opts = opts.clone();
        for spec in &a.snapshots {
            let (id, _) = rime_engine::ops::select::resolve(repo, spec, &Default::default())?;
            opts.ids.push(id);
        }
        let r = forget(repo, &opts)?;
        print(g, a.dry_run, &r, on);
        Ok(ExitCode::SUCCESS)
    })
}

fn print(g: &GlobalOpts, dry_run: bool, r: &ForgetReport, on: Option<&str>) {
    for u in &r.unreadable {
        eprintln!("rime: warning: {u}");
    }
    // A snapshot stamped in the future (a clock that was wrong) stays "the newest" for every
    // count-based rule: each real backup after it can be the one removed. Said, not guessed at.
    let now = chrono::Utc::now().timestamp();
    for d in r.groups.iter().flat_map(|gr| gr.decisions.iter()) {
        if d.snapshot.time.secs > now + 3600 {
            eprintln!(
                "rime: warning: snapshot {} is dated {}, in the future: it counts as the newest \
                 of its group for --keep-last and every periodic rule (remove it with `rime \
                 forget` naming it, or check the clock of the host that took it)",
                d.id.short(),
                time(d.snapshot.time)
            );
        }
    }
    if g.json {
        let groups: Vec<_> = r
            .groups
            .iter()
            .map(|gr| {
                serde_json::json!({
                    "host": gr.key.host, "name": gr.key.name, "paths": gr.key.paths, "tags": gr.key.tags,
                    "snapshots": gr.decisions.iter().map(|d| serde_json::json!({
                        "id": d.id.to_hex(), "short_id": d.id.short(), "time": time_rfc3339(d.snapshot.time),
                        "keep": d.keep, "reasons": d.reasons,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        super::print_json(&serde_json::json!({
            "storage": on, "dry_run": dry_run, "removed": r.removed, "groups": groups,
        }));
    } else if !g.quiet {
        for gr in &r.groups {
            println!("{}:", gr.key);
            for d in &gr.decisions {
                println!(
                    "  {}  {}  {:<6}  {}",
                    d.id.short(),
                    time(d.snapshot.time),
                    if d.keep { "keep" } else { "remove" },
                    d.reasons.join(", ")
                );
            }
        }
        let n: usize = r
            .groups
            .iter()
            .map(|g| g.decisions.iter().filter(|d| !d.keep).count())
            .sum();
        if dry_run {
            println!("dry run: {n} snapshot(s) would be removed");
        } else {
            println!(
                "removed {} snapshot(s); run `rime prune` to free their data",
                r.removed
            );
        }
    }
}
