use std::process::ExitCode;

use clap::Args;
use rime_engine::format::tree::NodeKind;
use rime_engine::ops::{browse, dump};
use rime_engine::tarinc::compress::{CompressWriter, Compression};
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
    /// `tar-incremental`: write the GNU tar incremental chain of a tar-level snapshot (made by
    /// `rime agent`) as DIR/level-0.tar, level-1.tar, ... for `tar --extract
    /// --listed-incremental=/dev/null` applied in order
    #[arg(long, value_name = "FORMAT", value_parser = ["tar-incremental"])]
    format: Option<String>,
    /// With --format tar-incremental: the directory to write the archives into
    #[arg(long, value_name = "DIR", requires = "format")]
    output_dir: Option<std::path::PathBuf>,
    /// With --format tar-incremental: compress each archive with the compression its level
    /// was taken with (`rime agent --compression`), as Freezer stores levels:
    /// level-0.tar.gz, .tar.bz2, .tar.xz or .tar.zst
    #[arg(long, requires = "format")]
    compressed: bool,
}

pub fn run(g: &GlobalOpts, a: DumpArgs) -> Result<ExitCode> {
    if a.format.is_some() {
        return tar_incremental(g, &a);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    // Held to the end: a prune must not delete packs this dump still reads.
    let locked = super::open(g)?;
    let _lock = rime_engine::repo::lock::LockGuard::shared_for_reading(&locked, "dump")?;
    {
        let repo = locked.clone();
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

/// The file name extension of an archive so compressed (what `tar -a` recognizes).
fn extension(c: Compression) -> &'static str {
    match c {
        Compression::None => "",
        Compression::Gzip => ".gz",
        Compression::Bzip2 => ".bz2",
        Compression::Xz => ".xz",
        Compression::Zstd => ".zst",
    }
}

/// `--format tar-incremental --output-dir DIR`: one archive per level of the chain.
fn tar_incremental(g: &GlobalOpts, a: &DumpArgs) -> Result<ExitCode> {
    use rime_engine::ops::tarlevel;
    let dir = a.output_dir.as_ref().ok_or_else(|| {
        rime_engine::Error::invalid("--format tar-incremental needs --output-dir DIR")
    })?;
    if a.path.is_some() {
        return Err(rime_engine::Error::invalid(
            "--format tar-incremental writes whole levels: give no path",
        ));
    }
    let repo = super::open(g)?;
    let (id, _) = rime_engine::ops::select::resolve(&repo, &a.snapshot, &Default::default())?;
    let chain = tarlevel::chain_of(&repo, &id)?;
    std::fs::create_dir_all(dir)
        .map_err(|e| rime_engine::Error::io(format!("cannot create {}", dir.display()), e))?;
    for (level, (_, snap)) in chain.iter().enumerate() {
        let compression = match a.compressed {
            true => Compression::parse(&tarlevel::history::source(snap)?.compression)?,
            false => Compression::None,
        };
        let name = format!("level-{level}.tar{}", extension(compression));
        let path = dir.join(&name);
        let tmp = dir.join(format!(".{name}.part"));
        let f = std::fs::File::create(&tmp)
            .map_err(|e| rime_engine::Error::io(format!("cannot create {}", tmp.display()), e))?;
        let cannot_write = |e: std::io::Error| {
            rime_engine::Error::io(format!("cannot write {}", tmp.display()), e)
        };
        let w = std::io::BufWriter::with_capacity(1 << 20, f);
        let mut w = CompressWriter::new(w, compression, None)?;
        let n = tarlevel::write_archive(&repo, snap, &mut w)?;
        let f = w
            .finish()
            .map_err(cannot_write)?
            .into_inner()
            .map_err(|e| cannot_write(e.into_error()))?;
        f.sync_all()
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| rime_engine::Error::io(format!("cannot write {}", path.display()), e))?;
        if !g.quiet {
            println!("{} ({})", path.display(), crate::output::bytes(n));
        }
    }
    Ok(ExitCode::SUCCESS)
}
