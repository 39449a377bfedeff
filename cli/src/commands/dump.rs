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
    /// relative to what restore would write
    path: String,
}

pub fn run(g: &GlobalOpts, a: DumpArgs) -> Result<ExitCode> {
    let (repo, index, view) = super::snapshot_view(g, &a.snapshot)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let comps = browse::components(&a.path);
    if comps.is_empty() {
        dump::dump_tar(&repo, &index, None, &view, "", &mut out)?;
    } else {
        let node = browse::find(&repo, &index, &view, &a.path)?;
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
