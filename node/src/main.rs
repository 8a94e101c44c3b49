//! `seisan`: the Seisan binary. Runs a validator node, and is the command-line client
//! exchanges and the clearing house use. This is the only crate that does I/O.

mod genesis_command;

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
}

fn main() {
    let cli = Cli::parse();
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
    }
}
