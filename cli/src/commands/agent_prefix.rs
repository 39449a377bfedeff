//! Abbreviated long options of `rime agent`, as Freezer's parser takes them.
//!
//! Freezer reads its command line with oslo.config, which builds an `argparse` parser with
//! argparse's default `allow_abbrev=True`: any unambiguous prefix of a long option names it
//! (`--max-lev 3` is `--max-level 3`, `--nooverw` is `--nooverwrite`), an exact name always
//! wins, and an ambiguous prefix is an error listing the candidates. Jobs written against that
//! behaviour must run unchanged, so the agent's arguments are spelled out in full before
//! anything else reads them (the `--config` lookup and the `--noX` negations match full names).

use std::ffi::OsString;

use clap::{Args, CommandFactory};
use rime_engine::{Error, Result};

use super::agent::AgentArgs;

/// One long name the agent accepts, and whether it is followed by a value.
struct LongName {
    name: String,
    takes_value: bool,
}

/// Every long name and alias of `rime agent` (its options and the global ones), oslo.config's
/// `noX` for each switch `X`, and `help`.
fn long_names() -> (Vec<LongName>, Vec<char>) {
    let cmd = AgentArgs::augment_args(crate::Cli::command());
    let mut names = vec![LongName {
        name: "help".into(),
        takes_value: false,
    }];
    let mut shorts_with_value = vec![];
    for a in cmd.get_arguments() {
        let takes_value = a.get_action().takes_values();
        let switch = matches!(a.get_action(), clap::ArgAction::SetTrue);
        if takes_value {
            shorts_with_value.extend(a.get_short());
        }
        let all = a
            .get_long()
            .into_iter()
            .chain(a.get_all_aliases().unwrap_or_default());
        for n in all {
            names.push(LongName {
                name: n.to_string(),
                takes_value,
            });
            if switch {
                names.push(LongName {
                    name: format!("no{n}"),
                    takes_value: false,
                });
            }
        }
    }
    (names, shorts_with_value)
}

/// The agent's arguments with each abbreviated long option written in full; an ambiguous
/// abbreviation is refused with its candidates. Values (the word after an option that takes
/// one, or after `=`) and everything after `--` are left as they are.
pub fn expand_abbreviations(args: Vec<OsString>) -> Result<Vec<OsString>> {
    let (names, shorts_with_value) = long_names();
    let mut out = Vec::with_capacity(args.len());
    let mut value_next = false;
    let mut rest_verbatim = false;
    for a in args {
        let s = a.to_string_lossy().into_owned();
        if rest_verbatim || value_next {
            value_next = false;
            out.push(a);
            continue;
        }
        if s == "--" {
            rest_verbatim = true;
            out.push(a);
            continue;
        }
        let Some(opt) = s.strip_prefix("--") else {
            // `-C DIR` takes the next word; `-CDIR` and `-dq` do not.
            let mut c = s.chars();
            if let (Some('-'), Some(short), None) = (c.next(), c.next(), c.next()) {
                value_next = shorts_with_value.contains(&short);
            }
            out.push(a);
            continue;
        };
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (opt, None),
        };
        let found = match names.iter().find(|n| n.name == name) {
            Some(exact) => Some(exact),
            None => {
                let mut candidates: Vec<&LongName> =
                    names.iter().filter(|n| n.name.starts_with(name)).collect();
                candidates.sort_by(|a, b| a.name.cmp(&b.name));
                candidates.dedup_by(|a, b| a.name == b.name);
                match candidates.len() {
                    0 => None,
                    1 => Some(candidates[0]),
                    _ => {
                        let list: Vec<String> =
                            candidates.iter().map(|c| format!("--{}", c.name)).collect();
                        return Err(Error::invalid(format!(
                            "ambiguous option --{name}: could be {}",
                            list.join(", ")
                        )));
                    }
                }
            }
        };
        match found {
            // Unknown: left for the parser to report.
            None => out.push(a),
            Some(n) => {
                value_next = n.takes_value && value.is_none();
                out.push(match value {
                    Some(v) => format!("--{}={v}", n.name).into(),
                    None => format!("--{}", n.name).into(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: &[&str]) -> Result<Vec<String>> {
        expand_abbreviations(args.iter().map(OsString::from).collect()).map(|v| {
            v.into_iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        })
    }

    #[test]
    fn unambiguous_prefixes_are_spelled_out_as_argparse_reads_them() {
        assert_eq!(
            expand(&["--max-lev", "3", "--nooverw", "--restore-abs=/x"]).unwrap(),
            ["--max-level", "3", "--nooverwrite", "--restore-abs-path=/x"]
        );
        // Values are not options, even when they look like prefixes of one.
        assert_eq!(
            expand(&["--command", "--act", "-C", "--max", "--", "--max"]).unwrap(),
            ["--command", "--act", "-C", "--max", "--", "--max"]
        );
        // An exact name wins over longer ones it prefixes (--incremental, --no-incremental).
        assert_eq!(expand(&["--incremental"]).unwrap(), ["--incremental"]);
        let e = expand(&["--max", "3"]).unwrap_err().to_string();
        assert!(
            e.contains("--max-level") && e.contains("--max-priority"),
            "{e}"
        );
        assert_eq!(expand(&["--bogus"]).unwrap(), ["--bogus"]);
    }
}
