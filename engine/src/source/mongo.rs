//! MongoDB: a backup of a node's data files is only taken on the primary of its replica set
//! (Freezer's `--mode mongo` rule): a secondary may lag, and backing up every member would
//! store the same data several times.
//!
//! rime asks the node with the MongoDB shell (`mongosh`, or the legacy `mongo`), which is
//! installed wherever a server is.

use std::process::Command;

use crate::error::{Error, ErrorKind, Result};
use crate::source::mysql::find_program;

/// What the node says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRole {
    pub primary: bool,
    /// This node's address and the primary's, when the node reports them.
    pub me: Option<String>,
    pub primary_host: Option<String>,
}

/// Ask the node at `uri` whether it is the primary.
pub fn node_role(uri: &str) -> Result<NodeRole> {
    let shell = find_program(&["mongosh", "mongo"])
        .map_err(|_| Error::new(ErrorKind::NotFound, "--mode mongo needs the MongoDB shell (mongosh or mongo) on PATH"))?;
    let out = Command::new(&shell)
        .args(["--quiet", uri, "--eval"])
        .arg("JSON.stringify(db.hello ? db.hello() : db.isMaster())")
        .output()
        .map_err(|e| Error::io(format!("cannot run {}", shell.display()), e))?;
    if !out.status.success() {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "cannot ask MongoDB at {uri} for its role: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l.trim()).ok())
        .ok_or_else(|| Error::invalid(format!("MongoDB at {uri} answered with no JSON: {}", text.trim())))?;
    let flag = |k: &str| v.get(k).and_then(serde_json::Value::as_bool);
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
    Ok(NodeRole {
        primary: flag("isWritablePrimary").or(flag("ismaster")).unwrap_or(false),
        me: s("me"),
        primary_host: s("primary"),
    })
}

/// Fails unless the node at `uri` is the primary.
pub fn require_primary(uri: &str) -> Result<NodeRole> {
    let role = node_role(uri)?;
    if !role.primary {
        return Err(Error::invalid(format!(
            "MongoDB node {} is not the primary{}: back up the primary instead (nothing was saved)",
            role.me.as_deref().unwrap_or(uri),
            role.primary_host
                .as_deref()
                .map(|p| format!(" (the primary is {p})"))
                .unwrap_or_default()
        )));
    }
    Ok(role)
}
