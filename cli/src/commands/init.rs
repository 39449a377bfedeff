use std::process::ExitCode;

use clap::{Args, ValueEnum};
use rime_engine::crypto::KdfParams;
use rime_engine::format::config::Encryption;
use rime_engine::repo::{InitOptions, Repository};
use rime_engine::storage::FileKind;
use rime_engine::{Error, ErrorKind, Result};

use crate::GlobalOpts;

#[derive(Clone, Copy, ValueEnum)]
pub enum EncryptionArg {
    /// AES-256-GCM with Argon2id-protected keys (default)
    Aes256gcm,
    /// No encryption: data is readable by anyone with storage access (still integrity-checked)
    None,
}

#[derive(Args)]
pub struct InitArgs {
    /// Encryption of the new repository
    #[arg(long, value_enum, default_value = "aes256gcm")]
    encryption: EncryptionArg,
    /// Target size of data packs, in MiB
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pack_size: u32,
    /// Weak key derivation, for tests only: never use for real data
    #[arg(long, hide = true)]
    insecure_fast_kdf: bool,
}

pub fn run(g: &GlobalOpts, a: InitArgs) -> Result<ExitCode> {
    let members = super::members(g)?;
    // Each storage is asked on its own: over several storages a listing is what they all hold,
    // which is empty as soon as one is new, and init would then replace the config (and so
    // lose every snapshot) of a storage that already holds a repository.
    if members.len() > 1 {
        for m in &members {
            if !m.list(FileKind::Config)?.is_empty() {
                return Err(Error::new(
                    ErrorKind::RepositoryExists,
                    format!(
                        "a repository already exists at {}: nothing was created. To keep it on \
                         a new storage as well, fill the new one with `rime copy --from {} --to NEW`",
                        m.location(),
                        m.location()
                    ),
                ));
            }
        }
    }
    let storage = super::fan_out(members)?;
    let encryption = match a.encryption {
        EncryptionArg::Aes256gcm => Encryption::Aes256Gcm,
        EncryptionArg::None => Encryption::None,
    };
    let password = match encryption {
        Encryption::Aes256Gcm => crate::password::get_new(g, None)?,
        Encryption::None => Vec::new(),
    };
    let opts = InitOptions {
        encryption,
        kdf: if a.insecure_fast_kdf {
            KdfParams::TESTING
        } else {
            KdfParams::DEFAULT
        },
        data_pack_size: a.pack_size << 20,
        ..InitOptions::default()
    };
    let repo = Repository::init(storage.clone(), &password, &opts)?;
    if g.json {
        super::print_json(&serde_json::json!({
            "dry_run": g.dry_run,
            "repository": storage.location(),
            "id": repo.config().repo_id.to_hex(),
            "encryption": format!("{:?}", repo.config().encryption),
        }));
    } else if !g.quiet {
        println!(
            "{} repository {} at {}",
            if g.dry_run {
                "would create (dry run)"
            } else {
                "created"
            },
            repo.config().repo_id.short(),
            storage.location()
        );
        if encryption == Encryption::None {
            println!("warning: the repository is NOT encrypted");
        } else {
            println!("keep the password safe: without it the data cannot be recovered");
        }
    }
    Ok(ExitCode::SUCCESS)
}
