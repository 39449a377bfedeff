use std::process::ExitCode;

use clap::Args;
use rime_engine::ops::browse;
use rime_engine::Result;

use crate::GlobalOpts;

#[derive(Args)]
pub struct DumpArgs {
    /// Snapshot: "latest" or an id prefix
    snapshot: String,
    /// Path of a file in the snapshot, relative to what restore would write
    path: String,
}

pub fn run(g: &GlobalOpts, a: DumpArgs) -> Result<ExitCode> {
    let (repo, index, view) = super::snapshot_view(g, &a.snapshot)?;
    let node = browse::find(&repo, &index, &view, &a.path)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    browse::dump_file(&repo, &index, &node, &mut out)?;
    std::io::Write::flush(&mut out)
        .map_err(|e| rime_engine::Error::io("cannot write output", e))?;
    Ok(ExitCode::SUCCESS)
}
