//! `seisan custody keygen|refill|reserves`: operator commands for public-chain custody.
//!
//! `refill` moves coins from the cold wallet to the hot one. It is the only place the
//! cold key is ever loaded: the node never reads it.

use crate::genesis_command::load_genesis;
use anyhow::{bail, Context};
use clap::Subcommand;
use seisan_custody::evm::EvmChain;
use seisan_custody::keys::WalletKey;
use seisan_custody::plan;
use std::path::PathBuf;
use std::time::Duration;

/// How long `refill` waits for its transaction to be mined.
const REFILL_WAIT_MS: u64 = 120_000;

#[derive(Subcommand, Debug)]
pub enum CustodyCommand {
    /// Make a fresh wallet key (a hot or cold custody wallet): writes it to a new file
    /// with mode 0600 and prints only its address, for the genesis' custody section.
    Keygen {
        /// The key file to create (refused if it exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// Move an amount from the cold wallet to the hot wallet (signed with the cold key).
    Refill {
        /// The genesis file (names the chain, the addresses and the assets).
        #[arg(long)]
        genesis: PathBuf,
        /// The public chain's JSON-RPC URL.
        #[arg(long, env = "SEISAN_ETH_RPC")]
        eth_rpc: String,
        /// The cold wallet's key file (mode 0600).
        #[arg(long)]
        cold_key: PathBuf,
        /// Asset symbol, e.g. ETH or WBTC.
        #[arg(long)]
        asset: String,
        /// Decimal amount in whole units, e.g. 1.5.
        #[arg(long)]
        amount: String,
    },
}

pub fn run(command: CustodyCommand) -> anyhow::Result<()> {
    match command {
        CustodyCommand::Keygen { out } => {
            let key = WalletKey::generate();
            WalletKey::write(&out, &key.to_hex())?;
            println!("{}", key.address());
            Ok(())
        }
        CustodyCommand::Refill {
            genesis,
            eth_rpc,
            cold_key,
            asset,
            amount,
        } => {
            let genesis = load_genesis(&genesis)?;
            let settings = genesis
                .public_chain
                .clone()
                .context("genesis has no public_chain section")?;
            let (asset_id, spec) = genesis
                .asset_by_symbol(&asset)
                .with_context(|| format!("genesis has no asset {asset}"))?;
            let amount = spec.parse_amount(&amount)?;
            let key = WalletKey::load(&cold_key)?;
            if key.address() != settings.cold_address {
                bail!(
                    "{} holds the key of {}, not of the cold address {}",
                    cold_key.display(),
                    key.address(),
                    settings.cold_address
                );
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let chain =
                    EvmChain::connect(&eth_rpc, settings.chain_id, plan::chain_assets(&genesis))
                        .await?;
                let nonce = chain.nonce(&settings.cold_address, true).await?;
                let signed = chain
                    .sign_transfer(
                        &key,
                        asset_id,
                        &settings.hot_address,
                        amount,
                        nonce,
                        b"SEISAN-REFILL",
                    )
                    .await?;
                chain.broadcast(&signed).await?;
                let hash = seisan_types::custody::ChainTxHash(signed.tx_hash.clone());
                let deadline = std::time::Instant::now() + Duration::from_millis(REFILL_WAIT_MS);
                loop {
                    if let Some(receipt) = chain.receipt(&hash).await? {
                        if !receipt.success {
                            bail!("refill {} reverted", signed.tx_hash);
                        }
                        println!(
                            "refilled {} {asset} from cold to hot in {} (block {})",
                            spec.format_amount(amount),
                            signed.tx_hash,
                            receipt.block
                        );
                        return Ok(());
                    }
                    if std::time::Instant::now() > deadline {
                        bail!("refill {} was not mined in time", signed.tx_hash);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        }
    }
}
