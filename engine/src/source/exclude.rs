//! `--exclude` patterns: a pattern with a '/' matches the whole absolute path, one without
//! matches any path component's name (as in restic and GNU tar). `**` crosses directories.

use std::path::Path;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};
use crate::source::tar_exclude::TarExcludes;

#[derive(Clone)]
pub struct Excludes {
    by_path: GlobSet,
    by_name: GlobSet,
    empty: bool,
    /// GNU tar patterns (`rime agent --exclude`, Freezer's meaning), each path matched by its
    /// member name below the source root it is under.
    gnu_tar: Option<(TarExcludes, Vec<std::path::PathBuf>)>,
}

impl Excludes {
    pub fn new(patterns: &[String]) -> Result<Excludes> {
        let mut by_path = GlobSetBuilder::new();
        let mut by_name = GlobSetBuilder::new();
        for p in patterns.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            let p = p.trim_end_matches('/');
            let build = |s: &str| -> Result<Glob> {
                GlobBuilder::new(s)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| Error::invalid(format!("bad exclude pattern {s:?}: {e}")))
            };
            if p.contains('/') {
                by_path.add(build(p)?);
                // also exclude everything below a matched directory
            } else {
                by_name.add(build(p)?);
            }
        }
        let err = |e: globset::Error| Error::invalid(format!("bad exclude patterns: {e}"));
        Ok(Excludes {
            by_path: by_path.build().map_err(err)?,
            by_name: by_name.build().map_err(err)?,
            empty: patterns.iter().all(|p| p.trim().is_empty()),
            gnu_tar: None,
        })
    }

    /// Also leave out what GNU tar's `--exclude` leaves out when it archives each of `roots`
    /// (absolute source directories) as `.`: see [`crate::source::tar_exclude`].
    pub fn with_gnu_tar(
        mut self,
        patterns: &[String],
        roots: Vec<std::path::PathBuf>,
    ) -> Result<Excludes> {
        self.gnu_tar = TarExcludes::new(patterns)?.map(|t| (t, roots));
        Ok(self)
    }

    /// Read patterns from a file: one per line, `#` comments and blank lines ignored.
    pub fn read_file(path: &Path) -> Result<Vec<String>> {
        let s = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read exclude file {}", path.display()), e))?;
        Ok(s.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect())
    }

    pub fn is_excluded(&self, path: &Path) -> bool {
        if let Some((tar, roots)) = &self.gnu_tar {
            // The innermost source root the path is under names its member.
            let root = roots
                .iter()
                .filter(|r| path.starts_with(r))
                .max_by_key(|r| r.as_os_str().len());
            if root.is_some_and(|r| tar.excludes_below(r, path)) {
                return true;
            }
        }
        if self.empty {
            return false;
        }
        if let Some(name) = path.file_name() {
            if self.by_name.is_match(Path::new(name)) {
                return true;
            }
        }
        self.by_path.is_match(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let e = Excludes::new(&[
            "*.o".into(),
            "/src/build".into(),
            "/home/*/.cache".into(),
            "".into(),
        ])
        .unwrap();
        assert!(e.is_excluded(Path::new("/src/a/b.o")));
        assert!(!e.is_excluded(Path::new("/src/a/b.c")));
        assert!(e.is_excluded(Path::new("/src/build")));
        assert!(!e.is_excluded(Path::new("/src/builder")));
        assert!(e.is_excluded(Path::new("/home/ann/.cache")));
        assert!(!e.is_excluded(Path::new("/home/ann/x/.cache")));
        assert!(!Excludes::new(&[]).unwrap().is_excluded(Path::new("/x")));
        assert!(Excludes::new(&["[".into()]).is_err());
    }
}
