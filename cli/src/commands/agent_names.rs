//! What a Freezer job's names and paths become before use: `~` at the start of a path is the
//! home directory (as the shell expands it on a command line, and as Freezer's Python
//! `os.path.expanduser` does for values that come from a job file, where no shell ran), and
//! `--backup-name` is a template with Freezer's variables (`freezer_{mode}_{resource_id}`).

use std::path::{Path, PathBuf};

use rime_engine::{Error, Result};

use super::agent::AgentArgs;

/// `~` or `~/rest` with `$HOME`; any other path (and `~user`) as it is.
pub fn expand_home(p: &Path) -> PathBuf {
    let home = || std::env::var_os("HOME").filter(|h| !h.is_empty());
    let mut parts = p.components();
    match (parts.next(), home()) {
        (Some(std::path::Component::Normal(first)), Some(h)) if first == "~" => {
            PathBuf::from(h).join(parts.as_path())
        }
        _ => p.to_path_buf(),
    }
}

/// The agent's path options with `~` expanded (the local container too).
pub fn expand_paths(a: &mut AgentArgs) {
    for p in [
        &mut a.path_to_backup,
        &mut a.restore_abs_path,
        &mut a.encrypt_pass_file,
        &mut a.log_file,
        &mut a.mysql_conf,
    ]
    .into_iter()
    .flatten()
    {
        *p = expand_home(p);
    }
    if let Some(m) = a.metadata_out.as_mut().filter(|m| m.as_str() != "-") {
        *m = expand_home(Path::new(m.as_str())).display().to_string();
    }
    if a.storage != "swift" {
        a.container = expand_home(Path::new(&a.container)).display().to_string();
    }
}

/// The backup name: `--backup-name` (or Freezer's default `freezer_{mode}_{resource_id}`)
/// with Freezer's variables filled in: `{mode}`, `{backup_media}` (`fs`), `{storage}`,
/// `{container}`, `{resource_id}` (the host name, for file backups) and `{project_id}`
/// (`OS_PROJECT_ID`). Another `{...}` is refused, as Freezer's Python `format` fails on it.
pub fn backup_name(a: &AgentArgs, hostname: &str) -> Result<String> {
    let template = a
        .backup_name
        .clone()
        .unwrap_or_else(|| "freezer_{mode}_{resource_id}".to_string());
    let mut out = String::new();
    let mut rest = template.as_str();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        // `{{` is a literal brace, as in Python.
        if let Some(tail) = after.strip_prefix('{') {
            out.push('{');
            rest = tail;
            continue;
        }
        let close = after.find('}').ok_or_else(|| {
            Error::invalid(format!("--backup-name {template:?}: a {{ without }}"))
        })?;
        let var = &after[..close];
        let value = match var {
            "mode" => a.mode.clone(),
            "backup_media" => "fs".to_string(),
            "storage" => a.storage.clone(),
            "container" => a.container.clone(),
            "resource_id" => hostname.to_string(),
            "project_id" => std::env::var("OS_PROJECT_ID")
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "--backup-name {template:?}: {{project_id}} needs OS_PROJECT_ID"
                    ))
                })?,
            other => {
                return Err(Error::invalid(format!(
                    "--backup-name {template:?}: unknown variable {{{other}}} (Freezer's are \
                     mode, backup_media, storage, container, resource_id, project_id)"
                )))
            }
        };
        out.push_str(&value);
        rest = &after[close + 1..];
    }
    out.push_str(&rest.replace("}}", "}"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_is_home_only_at_the_start() {
        let home = PathBuf::from(std::env::var_os("HOME").unwrap());
        assert_eq!(expand_home(Path::new("~/data")), home.join("data"));
        assert_eq!(expand_home(Path::new("~")), home);
        assert_eq!(expand_home(Path::new("/srv/~/x")), Path::new("/srv/~/x"));
        assert_eq!(expand_home(Path::new("~bob/x")), Path::new("~bob/x"));
    }
}
