use std::process::ExitCode;

use clap::Args;
use rime_engine::format::tree::NodeKind;
use rime_engine::ops::{browse, dump};
use rime_engine::Result;

use crate::GlobalOpts;

#[derive(Args)]
pub struct DumpArgs {
    /// Snapshot: "latest" or an id prefix
    snapshot: String,
    /// A file (written as is) or a directory, "/" for everything (written as a tar stream),
    /// relative to what restore would write. Volume and stream snapshots: omit it, the whole
    /// image or stream is written
    path: Option<String>,
}

pub fn run(g: &GlobalOpts, a: DumpArgs) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    {
        let repo = super::open(g)?;
        let (_, snap) = rime_engine::ops::select::resolve(&repo, &a.snapshot, &Default::default())?;
        if snap.source.has_chunk_map() {
            if a.path.as_deref().is_some_and(|p| p != "/") {
                return Err(rime_engine::Error::invalid(
                    "a volume or stream snapshot has no paths: dump it whole",
                ));
            }
            rime_engine::ops::volume::export::export(&repo, &snap, &mut out)?;
            return Ok(ExitCode::SUCCESS);
        }
    }
    let path = a.path.clone().unwrap_or_else(|| "/".to_string());
    let (repo, index, view) = super::snapshot_view(g, &a.snapshot)?;
    let comps = browse::components(&path);
    if comps.is_empty() {
        dump::dump_tar(&repo, &index, None, &view, "", &mut out)?;
    } else {
        let node = browse::find(&repo, &index, &view, &path)?;
        if node.kind == NodeKind::Dir {
            let sub = repo.load_tree(&index, &node.subtree.expect("directories have subtrees"))?;
            let prefix = comps
                .iter()
                .map(|c| String::from_utf8_lossy(c))
                .collect::<Vec<_>>()
                .join("/");
            dump::dump_tar(&repo, &index, Some(&node), &sub, &prefix, &mut out)?;
        } else {
            browse::dump_file(&repo, &index, &node, &mut out)?;
        }
    }
    std::io::Write::flush(&mut out)
        .map_err(|e| rime_engine::Error::io("cannot write output", e))?;
    Ok(ExitCode::SUCCESS)
}
