use std::process::ExitCode;

use clap::Args;
use rime_engine::format::tree::{Node, NodeKind};
use rime_engine::ops::browse;
use rime_engine::Result;

use crate::GlobalOpts;

#[derive(Args)]
pub struct LsArgs {
    /// Snapshot: "latest" or an id prefix
    snapshot: String,
    /// Only this path (and below), relative to what restore would write
    path: Option<String>,
    /// Long listing: mode, owner, size, time
    #[arg(long, short = 'l')]
    long: bool,
}

pub fn run(g: &GlobalOpts, a: LsArgs) -> Result<ExitCode> {
    let (repo, index, view) = super::snapshot_view(g, &a.snapshot)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut print = |path: &str, n: &Node| -> Result<()> {
        use std::io::Write;
        let r = if g.json {
            let v = serde_json::json!({
                "path": format!("/{path}"), "type": format!("{:?}", n.kind).to_lowercase(), "mode": n.mode,
                "uid": n.uid, "gid": n.gid, "user": n.user, "group": n.group, "size": n.size,
                "mtime": crate::output::time_rfc3339(n.mtime), "inode": n.inode, "links": n.links,
                "link_target": (n.kind == NodeKind::Symlink).then(|| String::from_utf8_lossy(&n.link_target).into_owned()),
            });
            writeln!(out, "{v}")
        } else if a.long {
            let target = if n.kind == NodeKind::Symlink {
                format!(" -> {}", String::from_utf8_lossy(&n.link_target))
            } else {
                String::new()
            };
            let owner = |name: &str, id: u32| {
                if name.is_empty() {
                    id.to_string()
                } else {
                    name.to_string()
                }
            };
            writeln!(
                out,
                "{} {:>8} {:>8} {:>12} {} /{path}{target}",
                crate::output::mode_string(n.kind, n.mode),
                owner(&n.user, n.uid),
                owner(&n.group, n.gid),
                n.size,
                crate::output::time(n.mtime)
            )
        } else {
            writeln!(out, "/{path}")
        };
        r.map_err(|e| rime_engine::Error::io("cannot write output", e))
    };
    match a
        .path
        .as_deref()
        .filter(|p| !browse::components(p).is_empty())
    {
        None => browse::walk(&repo, &index, &view, "", &mut print)?,
        Some(p) => {
            let node = browse::find(&repo, &index, &view, p)?;
            let prefix = browse::components(p)
                .iter()
                .map(|c| String::from_utf8_lossy(c))
                .collect::<Vec<_>>()
                .join("/");
            print(&prefix, &node)?;
            if let Some(sub) = node.subtree {
                let t = repo.load_tree(&index, &sub)?;
                browse::walk(&repo, &index, &t, &prefix, &mut print)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
