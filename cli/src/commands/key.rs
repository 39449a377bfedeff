use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use rime_engine::crypto::KdfParams;
use rime_engine::id::KeyId;
use rime_engine::{Error, Result};

use crate::GlobalOpts;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Add a key file: another password for the same repository
    Add {
        /// Read the new password from this file (otherwise prompt)
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
        #[arg(long, hide = true)]
        insecure_fast_kdf: bool,
    },
    /// List key files
    List,
    /// Remove a key file (not the one in use, not the last)
    Remove {
        /// Key id or unique prefix
        id: String,
    },
}

pub fn run(g: &GlobalOpts, k: KeyCommand) -> Result<ExitCode> {
    let repo = super::open(g)?;
    match k {
        KeyCommand::Add {
            new_password_file,
            insecure_fast_kdf,
        } => {
            let pw = match new_password_file {
                Some(f) => crate::password::read_password_file(&f)?,
                None => crate::password::get_new(
                    &GlobalOpts {
                        password_file: None,
                        ..g.clone()
                    },
                    None,
                )?,
            };
            let kdf = if insecure_fast_kdf {
                KdfParams::TESTING
            } else {
                KdfParams::DEFAULT
            };
            super::set_catch_up_hint(
                "it lacks the new key file: once it is reachable, `rime copy --from <a storage that has it> --to <it>` copies it".into(),
            );
            let id = repo.add_key(&pw, kdf)?;
            if g.json {
                super::print_json(&serde_json::json!({ "id": id.to_hex() }));
            } else if !g.quiet {
                println!("added key {}", id.short());
            }
        }
        KeyCommand::List => {
            let keys = repo.list_keys()?;
            if g.json {
                let v: Vec<_> = keys
                    .iter()
                    .map(|k| serde_json::json!({"id": k.id.to_hex(), "current": k.current, "created": k.created,
                                                "hostname": k.hostname, "username": k.username}))
                    .collect();
                super::print_json(&serde_json::Value::Array(v));
            } else if !g.quiet {
                println!("  {:<8}  {:<19}  {:<16}  user", "id", "created", "host");
                for k in keys {
                    println!(
                        "{} {:<8}  {:<19}  {:<16}  {}",
                        if k.current { "*" } else { " " },
                        k.id.short(),
                        crate::output::time(rime_engine::format::tree::Timestamp {
                            secs: k.created,
                            nanos: 0
                        }),
                        k.hostname,
                        k.username
                    );
                }
            }
        }
        KeyCommand::Remove { id } => {
            let keys = repo.list_keys()?;
            let hits: Vec<KeyId> = keys
                .iter()
                .map(|k| k.id)
                .filter(|k| k.to_hex().starts_with(&id.to_lowercase()))
                .collect();
            let key = match hits.as_slice() {
                [one] => *one,
                [] => {
                    return Err(Error::new(
                        rime_engine::ErrorKind::NotFound,
                        format!("no key file with id {id}"),
                    ))
                }
                _ => return Err(Error::invalid(format!("key id prefix {id} is ambiguous"))),
            };
            // With several storages, one that is down keeps the key file (and its password
            // keeps opening the repository there): the closing report names it and says this.
            super::set_catch_up_hint(format!(
                "it still holds key {}: run `rime key remove {}` again once it is reachable",
                key.short(),
                key.to_hex()
            ));
            repo.remove_key(&key)?;
            if !g.quiet && !g.json {
                println!("removed key {}", key.short());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
