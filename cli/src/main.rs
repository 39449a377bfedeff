//! The `rime` command line: clap structs turned into engine options. No backup logic here.

mod commands;
mod config_file;
mod output;
mod password;
mod progress;
mod storage_open;
mod units;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use rime_engine::ErrorKind;

const EXIT_CODES: &str = "\
Exit codes:
  0   success
  1   error (including `check` finding problems)
  2   invalid command line
  3   backup written, but some source paths could not be read (see --ignore-unreadable)
  4   with several --repo: the command completed on some storages and failed on others
      (a backup with unreadable paths too exits 4; both are reported)
  10  no repository at the given location
  11  repository format too new for this rime
  12  wrong password
  130 interrupted by SIGINT or SIGTERM (snapshots and mounts were cleaned up)";

#[derive(Parser)]
#[command(name = "rime", version, about = "Deduplicating, encrypted backup and restore", after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

/// Options accepted by every command, before or after its name.
#[derive(Args, Clone, Debug)]
pub struct GlobalOpts {
    /// Repository location: a path or local:/path. Repeat it to keep one repository on several
    /// storages at once (each write goes to all; reads use the first that answers)
    #[arg(
        short = 'r',
        long,
        env = "RIME_REPO",
        global = true,
        value_name = "URL"
    )]
    pub repo: Vec<String>,
    /// Freezer-style INI file: each [storage:NAME] section adds a storage to the run
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Read the repository password from this file (first line)
    #[arg(
        short = 'p',
        long,
        env = "RIME_PASSWORD_FILE",
        global = true,
        value_name = "FILE"
    )]
    pub password_file: Option<std::path::PathBuf>,
    /// Open an unencrypted repository (created with `init --encryption none`) without a password
    #[arg(long, env = "RIME_NO_PASSWORD", global = true, value_parser = clap::builder::FalseyValueParser::new())]
    pub no_password: bool,
    /// Print results as JSON
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// SSH private key for sftp:// repositories (the agent and ssh config keys are also tried)
    #[arg(long, env = "RIME_SSH_KEY", global = true, value_name = "FILE")]
    pub ssh_key: Option<std::path::PathBuf>,
    /// Trust an SSH host key not yet in known_hosts and record it (trust on first use);
    /// a changed host key is still refused
    #[arg(long, global = true)]
    pub ssh_accept_new: bool,
    /// Keystone region whose object-store endpoint to use (overrides OS_REGION_NAME; a config
    /// section's own region wins over it)
    #[arg(long, global = true, value_name = "REGION")]
    pub os_region_name: Option<String>,
    /// Keystone endpoint interface: public or internal (overrides OS_INTERFACE; a config
    /// section's own interface wins over it)
    #[arg(long, global = true, value_name = "INTERFACE", value_parser = ["public", "internal", "admin"])]
    pub os_interface: Option<String>,
    /// ssh config file to use instead of ~/.ssh/config (ssh -F)
    #[arg(long, env = "RIME_SSH_CONFIG", global = true, value_name = "FILE")]
    pub ssh_config: Option<std::path::PathBuf>,
    /// Concurrent storage operations (and SSH connections), which also sets how many packs
    /// upload at once (at most 16) and twice as many restore threads; default: 4 for sftp://;
    /// swift:// and local are not limited, with 4 and 1 packs uploading at once
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub connections: Option<u16>,
    /// Upload bandwidth limit in bytes per second, K/M/G = KiB/MiB/GiB (e.g. 10M); one budget
    /// for the whole run, shared by all storages
    #[arg(long, global = true, value_name = "RATE", value_parser = storage_open::parse_rate)]
    pub limit_upload: Option<u64>,
    /// Download bandwidth limit in bytes per second, K/M/G = KiB/MiB/GiB (e.g. 10M); one
    /// budget for the whole run, shared by all storages
    #[arg(long, global = true, value_name = "RATE", value_parser = storage_open::parse_rate)]
    pub limit_download: Option<u64>,
    /// Write and remove nothing in the repository; report, per storage, what would have been
    /// done
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Standard output carries one document that a program parses whole (the agent's
    /// `--metadata-out -`, read by Freezer's scheduler with `json.loads`): every other result
    /// goes to standard error.
    #[arg(skip)]
    pub stdout_reserved: bool,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
enum Command {
    /// Create a new repository
    Init(commands::init::InitArgs),
    /// Back up files and directories, a volume (block device or image), or a stream
    Backup(commands::backup::BackupArgs),
    /// List snapshots
    Snapshots(commands::snapshots::SnapshotsArgs),
    /// Restore a snapshot into a directory, or a volume onto an image file or device
    Restore(commands::restore::RestoreArgs),
    /// List the files in a snapshot
    Ls(commands::ls::LsArgs),
    /// Write a file of a snapshot to standard output, or a directory as a tar stream
    Dump(commands::dump::DumpArgs),
    /// Show what changed between two snapshots: paths added, removed, modified (file trees), or
    /// the byte ranges that differ (volumes and streams)
    Diff(commands::diff::DiffArgs),
    /// Copy what one storage's copy of the repository lacks from another (no password needed)
    Copy(commands::copy::CopyArgs),
    /// Show repository statistics
    Stats,
    /// Verify the repository's structure, and with --read-data all its data
    Check(commands::check::CheckArgs),
    /// Manage the repository's key files (passwords)
    #[command(subcommand)]
    Key(commands::key::KeyCommand),
    /// Remove snapshots by a retention policy (their data is freed by `prune`)
    Forget(commands::forget::ForgetArgs),
    /// Delete data no snapshot references and repack mostly-unused packs
    Prune(commands::prune::PruneArgs),
    /// Rebuild the index from the packs; --forget-broken drops snapshots whose data is gone
    Repair(commands::repair::RepairArgs),
    /// List the repository's locks: id, shared or exclusive, command, host, pid, age since the
    /// last refresh, and whether it is stale and why
    Locks,
    /// Remove stale locks (or all locks with --remove-all)
    Unlock(commands::unlock::UnlockArgs),
    /// Import backups written by OpenStack Freezer (tar engine) as rime snapshots, or --list them
    ImportFreezer(commands::import_freezer::ImportFreezerArgs),
    /// Freezer's agent: its options, config files and actions (also run as freezer-agent
    /// or freezerc); file backups are GNU tar incremental levels stored in <container>/rime
    #[command(args_override_self = true)]
    Agent(commands::agent::AgentArgs),
}

fn main() -> ExitCode {
    let args = match commands::agent::rewrite_args(std::env::args_os().collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rime: error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut cli = Cli::parse_from(args);
    if let Command::Agent(a) = &cli.command {
        cli.global.stdout_reserved = commands::agent::reserves_stdout(a);
    }
    if matches!(cli.command, Command::Backup(_) | Command::Agent(_)) {
        progress::install_cancel_handler();
    }
    if matches!(
        cli.command,
        Command::Snapshots(_)
            | Command::Restore(_)
            | Command::Ls(_)
            | Command::Dump(_)
            | Command::Diff(_)
            | Command::Stats
    ) {
        commands::reading_only();
    }
    let g = &cli.global;
    let result = match cli.command {
        Command::Init(a) => commands::init::run(g, a),
        Command::Backup(a) => commands::backup::run(g, a),
        Command::Snapshots(a) => commands::snapshots::run(g, a),
        Command::Restore(a) => commands::restore::run(g, a),
        Command::Ls(a) => commands::ls::run(g, a),
        Command::Dump(a) => commands::dump::run(g, a),
        Command::Diff(a) => commands::diff::run(g, a),
        Command::Copy(a) => commands::copy::run(g, a),
        Command::Stats => commands::stats::run(g),
        Command::Check(a) => commands::check::run(g, a),
        Command::Key(k) => commands::key::run(g, k),
        Command::Forget(a) => commands::forget::run(g, a),
        Command::Prune(a) => commands::prune::run(g, a),
        Command::Repair(a) => commands::repair::run(g, a),
        Command::Locks => commands::locks::run(g),
        Command::Unlock(a) => commands::unlock::run(g, a),
        Command::ImportFreezer(a) => commands::import_freezer::run(g, a),
        Command::Agent(a) => commands::agent::run(g, a),
    };
    commands::print_repository_warnings();
    let storage_failed = commands::finish_storages(g);
    if g.dry_run && result.is_ok() && !g.quiet {
        storage_open::print_dry_run(g);
    }
    match result {
        Ok(_) if storage_failed => ExitCode::from(4),
        Ok(code) => code,
        Err(e) => {
            eprintln!("rime: error: {e}");
            ExitCode::from(exit_code(e.kind()))
        }
    }
}

fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::RepositoryNotFound => 10,
        ErrorKind::UnsupportedVersion => 11,
        ErrorKind::WrongPassword => 12,
        ErrorKind::PartialBackup => 3,
        ErrorKind::Interrupted => 130,
        _ => 1,
    }
}
