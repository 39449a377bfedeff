//! `rime copy --from A --to B`: bring a storage's copy of the repository up to date.

use std::process::ExitCode;

use clap::Args;
use std::path::Path;
use std::sync::Arc;

use rime_engine::ops::copy::copy;
use rime_engine::storage::Storage;
use rime_engine::{Error, Result};

use crate::config_file::StorageSection;
use crate::output::bytes;
use crate::GlobalOpts;

#[derive(Args)]
pub struct CopyArgs {
    /// Storage holding the repository: a URL, or storage:NAME for a [storage:NAME] section of
    /// --config (with that section's own credentials; NAME alone works when no such path exists)
    #[arg(long, value_name = "URL|storage:NAME")]
    from: String,
    /// Storage to bring up to date (an empty one receives the whole repository): a URL or
    /// storage:NAME, as for --from
    #[arg(long, value_name = "URL|storage:NAME")]
    to: String,
    /// Only say what would be copied
    #[arg(long)]
    dry_run: bool,
}

pub fn run(g: &GlobalOpts, a: CopyArgs) -> Result<ExitCode> {
    let sections = match &g.config {
        Some(path) => crate::config_file::load(path)?.storages,
        None => vec![],
    };
    let from = open_side(g, &a.from, &sections).map_err(|e| e.within("--from"))?;
    let to = open_side(g, &a.to, &sections).map_err(|e| e.within("--to"))?;
    // With a password, both storages are locked for the copy; without, it still works.
    let password = (g.password_file.is_some() || std::env::var_os("RIME_PASSWORD").is_some())
        .then(|| crate::password::get(g))
        .transpose()?;
    let opts = rime_engine::ops::copy::CopyOptions {
        dry_run: a.dry_run,
        password,
    };
    let s = copy(from.clone(), to.clone(), &opts)?;
    for d in &s.differing {
        eprintln!(
            "rime: warning: {d}: one copy is damaged; not replaced (run `rime check` on each)"
        );
    }
    if !s.locked && !a.dry_run && !g.quiet {
        eprintln!(
            "rime: warning: copied without locks (no password given): a prune on either storage \
             during the copy could remove what it relies on"
        );
    }
    if g.json {
        super::print_json(&serde_json::json!({
            "from": from.location(), "to": to.location(), "dry_run": a.dry_run,
            "objects": s.objects, "bytes": s.bytes, "already_present": s.skipped,
            "replaced": s.replaced, "locked": s.locked, "differing": s.differing,
        }));
    } else if !g.quiet {
        println!(
            "{} {} objects ({}) from {} to {}; {} were already there",
            if a.dry_run { "would copy" } else { "copied" },
            s.objects,
            bytes(s.bytes),
            from.location(),
            to.location(),
            s.skipped
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What a `--from` / `--to` value names.
#[derive(Debug, PartialEq)]
enum Side<'a> {
    Section(&'a StorageSection),
    Url(&'a str),
}

/// Open one side of the copy: a config section with its own SSH key and Swift credentials (so
/// two clusters with different credentials can be joined), or a URL with the run's.
fn open_side(g: &GlobalOpts, value: &str, sections: &[StorageSection]) -> Result<Arc<dyn Storage>> {
    match resolve(value, sections, |p| Path::new(p).exists())? {
        Side::Section(s) => crate::storage_open::open_section(g, s),
        Side::Url(u) => crate::storage_open::open(g, u),
    }
}

/// `storage:NAME` is always a section; a bare NAME is one when `--config` has that section and
/// no file or directory of that name exists (both existing is refused as ambiguous).
fn resolve<'a>(
    value: &'a str,
    sections: &'a [StorageSection],
    exists: impl Fn(&str) -> bool,
) -> Result<Side<'a>> {
    let find = |name: &str| sections.iter().find(|s| s.name == name);
    if let Some(name) = value.strip_prefix("storage:") {
        return find(name)
            .map(Side::Section)
            .ok_or_else(|| no_section(name, sections));
    }
    match find(value) {
        Some(_) if exists(value) => Err(Error::invalid(format!(
            "{value:?} is both a [storage:{value}] section of --config and a path here: \
             write storage:{value} for the section or ./{value} for the path"
        ))),
        Some(s) => Ok(Side::Section(s)),
        None => Ok(Side::Url(value)),
    }
}

fn no_section(name: &str, sections: &[StorageSection]) -> Error {
    if sections.is_empty() {
        return Error::invalid(format!(
            "storage:{name} names a [storage:{name}] section, but no --config file with storage \
             sections was given"
        ));
    }
    let names: Vec<&str> = sections.iter().map(|s| s.name.as_str()).collect();
    Error::invalid(format!(
        "no [storage:{name}] section in --config (it has: {})",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections() -> Vec<StorageSection> {
        ["first", "second"]
            .iter()
            .map(|n| StorageSection {
                name: n.to_string(),
                url: format!("/srv/{n}"),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn values_name_sections_or_urls() {
        let s = sections();
        let none = |_: &str| false;
        assert_eq!(
            resolve("storage:first", &s, none).unwrap(),
            Side::Section(&s[0])
        );
        assert_eq!(resolve("second", &s, none).unwrap(), Side::Section(&s[1]));
        assert_eq!(resolve("/srv/x", &s, none).unwrap(), Side::Url("/srv/x"));
        assert_eq!(resolve("third", &s, none).unwrap(), Side::Url("third"));
        let e = resolve("second", &s, |_| true).unwrap_err().to_string();
        assert!(
            e.contains("storage:second") && e.contains("./second"),
            "{e}"
        );
        let e = resolve("storage:third", &s, none).unwrap_err().to_string();
        assert!(e.contains("first, second"), "{e}");
        let e = resolve("storage:first", &[], none).unwrap_err().to_string();
        assert!(e.contains("--config"), "{e}");
    }
}
