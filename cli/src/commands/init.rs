use std::process::ExitCode;

use clap::{Args, ValueEnum};
use rime_engine::crypto::KdfParams;
use rime_engine::format::config::Encryption;
use rime_engine::repo::{InitOptions, Repository};
use rime_engine::Result;

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
    let storage = super::storage(g)?;
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
            "repository": storage.location(),
            "id": repo.config().repo_id.to_hex(),
            "encryption": format!("{:?}", repo.config().encryption),
        }));
    } else if !g.quiet {
        println!(
            "created repository {} at {}",
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
