//! GNU tar's `--exclude=PATTERN`, which is what Freezer's `--exclude` means: one matcher for
//! the tar engine (`tarinc`) and for `rime agent --engine rime`, so that the same job leaves
//! out the same files whichever engine writes it.
//!
//! GNU tar's default (`--no-anchored`, `--wildcards-match-slash`) tries the pattern against
//! the member name (`./a/cache/f`) and against every tail of it that starts after a `/`
//! (`a/cache/f`, `cache/f`, `f`), and its `*` also matches `/`: `cache/*` leaves out the
//! contents of every `cache` directory, `*.log` every log file at any depth.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

#[derive(Clone, Debug)]
pub struct TarExcludes {
    set: globset::GlobSet,
}

impl TarExcludes {
    /// `None` without patterns; a pattern that is not a valid glob is refused by name.
    pub fn new(patterns: &[String]) -> Result<Option<TarExcludes>> {
        if patterns.is_empty() {
            return Ok(None);
        }
        let mut b = globset::GlobSetBuilder::new();
        for p in patterns {
            b.add(globset::Glob::new(p).map_err(|e| {
                Error::with_source(ErrorKind::InvalidInput, format!("exclude pattern {p:?}"), e)
            })?);
        }
        let set = b
            .build()
            .map_err(|e| Error::with_source(ErrorKind::InvalidInput, "exclude patterns", e))?;
        Ok(Some(TarExcludes { set }))
    }

    /// Whether the archive member `name` (`./a/b`, as tar names it) is left out.
    pub fn excludes_member(&self, name: &[u8]) -> bool {
        tails(name).any(|t| self.set.is_match(Path::new(std::ffi::OsStr::from_bytes(t))))
    }

    /// Whether `path`, found under the archived directory `root`, is left out: its member
    /// name is `./` and its path below `root`, as Freezer's `tar` (run in `root`, archiving
    /// `.`) names it.
    pub fn excludes_below(&self, root: &Path, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(root) else {
            return false;
        };
        let mut name = b"./".to_vec();
        name.extend_from_slice(rel.as_os_str().as_bytes());
        self.excludes_member(&name)
    }
}

/// `name` and each of its tails after a `/`, longest first.
fn tails(name: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::once(name).chain(
        name.iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'/')
            .map(move |(i, _)| &name[i + 1..]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_any_tail_and_star_crosses_slashes() {
        let e = TarExcludes::new(&["*.log".into(), "cache/*".into(), "./top".into()])
            .unwrap()
            .unwrap();
        assert!(e.excludes_member(b"./a/b/x.log"));
        assert!(e.excludes_member(b"./deep/cache/f"));
        assert!(e.excludes_member(b"./deep/cache/sub/f"));
        assert!(!e.excludes_member(b"./deep/cache"));
        assert!(e.excludes_member(b"./top"));
        assert!(!e.excludes_member(b"./a/top2"));
        let root = Path::new("/srv/data");
        assert!(e.excludes_below(root, Path::new("/srv/data/x/cache/y")));
        assert!(!e.excludes_below(root, Path::new("/srv/data/x/keep")));
        assert!(TarExcludes::new(&[]).unwrap().is_none());
        assert!(TarExcludes::new(&["[".into()]).is_err());
    }
}
