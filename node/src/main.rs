//! `seisan`: the Seisan binary. Runs a validator node, and is the command-line client
//! exchanges and the clearing house use. This is the only crate that does I/O.

mod backup_command;
mod bank_command;
mod cli;
mod custody_command;
mod dev_chain_command;
mod genesis_command;
mod node;

/// mimalloc rather than glibc's malloc: under load glibc's allocator (its free-list
/// consolidation and unlinking) was 18% of a node's samples (see ARCHITECTURE.md, The node).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "seisan",
    version,
    about = "Seisan: a consortium blockchain that clears and settles trades between exchanges"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new ed25519 key file (mode 0600) and print its public key.
    Keygen {
        /// Where to write the key file; refuses to overwrite.
        #[arg(long)]
        out: PathBuf,
    },
    /// Make or check genesis files.
    #[command(subcommand)]
    Genesis(genesis_command::GenesisCommand),
    /// Run a validator node.
    Node(node::config::NodeArgs),
    /// The embedded accounting system (trust bank): `init` a config, `run` it.
    #[command(subcommand)]
    Bank(bank_command::BankCommand),
    /// Public-chain custody: refill the hot wallet from cold, show reserves.
    #[command(subcommand)]
    Custody(custody_command::CustodyCommand),
    /// Take a consistent copy of a running node's data (state, blocks, consensus
    /// record, custody journal and scan cursor; the key only with --include-keys).
    Backup(backup_command::BackupArgs),
    /// Rebuild a data directory from a backup; the validator stays fenced (signs
    /// nothing) until its peers have told it what it signed after the backup.
    Restore(backup_command::RestoreArgs),
    /// Append finalized blocks to a dev network's data directory, certified with its
    /// validators' dev keys (for benchmarks that need a long chain).
    #[command(hide = true)]
    DevChain(dev_chain_command::DevChainArgs),
    #[command(flatten)]
    Client(cli::ClientCommand),
}

/// Turns transparent huge pages off for the node's process (as `MIMALLOC_ALLOW_THP=0`
/// would). With the kernel's THP on `always`, the allocator's fresh memory was faulted
/// in 2 MiB pages, each zeroed at once: 13% of a loaded node's samples, and multi-second
/// p99 finality at 4,000 offered orders/s where 4 KiB pages gave about one second
/// (README, Performance). A failure (another OS, an old kernel) only costs speed.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::warn!(%error, "could not turn transparent huge pages off for this process");
    }
}

fn main() {
    let cli = cli::parse_or_exit::<Cli>();
    if let Err(error) = run(cli) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Keygen { out } => {
            let keypair = seisan_crypto::Keypair::generate();
            seisan_crypto::keyfile::write_key_file(&out, &keypair)
                .with_context(|| format!("writing key file {}", out.display()))?;
            println!("{}", keypair.public_key());
            Ok(())
        }
        Command::Genesis(command) => genesis_command::run(command),
        Command::Custody(command) => custody_command::run(command),
        Command::Client(command) => cli::run(command),
        Command::Bank(command) => bank_command::run(command),
        Command::Backup(args) => backup_command::backup(args),
        Command::Restore(args) => backup_command::restore(args),
        Command::DevChain(args) => dev_chain_command::run(args),
        Command::Node(arguments) => {
            let config = arguments.resolve()?;
            init_logging(config.log_format);
            no_transparent_huge_pages();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting tokio")?;
            runtime.block_on(node::runtime::run(config))
        }
    }
}

/// Installs the tracing subscriber: `RUST_LOG` filter (default info), human or JSON.
fn init_logging(format: node::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,libp2p=warn,libp2p_gossipsub=error")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        node::config::LogFormat::Json => builder.json().init(),
        node::config::LogFormat::Human => builder.init(),
    }
}
