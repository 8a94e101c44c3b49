//! `seisan bank`: the embedded accounting system (trust bank) as its own process.
//!
//! - `seisan bank init --out DIR [--genesis FILE]` writes `DIR/bank.toml`: the clearing
//!   house and every exchange of the genesis (or of the default testnet's) as
//!   parties with dev tokens `dev-token-<name>`, an operating and a trust account per
//!   fiat currency of the genesis (`<name>:trust` in JPY, `<name>:trust:USD` in USD),
//!   1,000,000 minor units in each exchange's operating accounts, books in
//!   `DIR/bank-data`; and for every validator a read-only
//!   auditor party `<name>-auditor` (token `dev-token-<name>-auditor`) that reads every
//!   trust account, so each validator attests every exchange's trust entries.
//! - `seisan bank run --config DIR/bank.toml` (or `--data DIR --listen ADDR` with the
//!   testnet parties) serves the bank's HTTP API until SIGINT/SIGTERM. A restart
//!   keeps every account, entry and transfer reference. With `--tls-cert FILE
//!   --tls-key FILE` (or `tls_cert`/`tls_key` in bank.toml) it serves HTTPS only.

use anyhow::Context;
use clap::Subcommand;
use seisan_bank::{BankConfig, PartyRole};
use seisan_types::{Amount, AssetKind, Genesis, Role};
use std::path::PathBuf;

/// The opening operating balance of each exchange in a testnet bank, in yen.
pub const TESTNET_OPENING_OPERATING_JPY: u128 = 1_000_000;

#[derive(Subcommand, Debug)]
pub enum BankCommand {
    /// Write a bank config (bank.toml) with dev tokens for a testnet.
    Init {
        /// Directory to write bank.toml into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Genesis whose members become the bank's parties (default: the testnet's).
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// Address the bank will listen on.
        #[arg(long, default_value = "127.0.0.1:7400")]
        listen: String,
        /// Opening balance of each exchange's operating account, in minor units.
        #[arg(long, default_value_t = TESTNET_OPENING_OPERATING_JPY)]
        opening: u128,
    },
    /// Run the bank.
    Run {
        /// The bank config file (see `seisan bank init`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Without --config: the books' directory (testnet parties and dev tokens).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Listen address; overrides the config's.
        #[arg(long)]
        listen: Option<String>,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key); overrides the
        /// config's `tls_cert`.
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert; overrides the config's `tls_key`.
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
}

/// The clearing house, the exchanges and the validators (each gets an auditor party).
fn parties_of(genesis: &Genesis) -> (String, Vec<String>, Vec<String>) {
    let house = genesis
        .members
        .iter()
        .find(|member| member.role == Role::ClearingHouse)
        .map(|member| member.name.clone())
        .unwrap_or_else(|| "clearing-house".into());
    let exchanges = genesis
        .members
        .iter()
        .filter(|member| member.role == Role::Exchange)
        .map(|member| member.name.clone())
        .collect();
    let validators = genesis
        .members
        .iter()
        .filter(|member| member.validator)
        .map(|member| member.name.clone())
        .collect();
    (house, exchanges, validators)
}

fn testnet_config(listen: &str, genesis: Option<&Genesis>, opening: u128) -> BankConfig {
    let default = crate::genesis_command::testnet_genesis(7101, 0);
    let genesis = genesis.unwrap_or(&default);
    let (house, exchanges, validators) = parties_of(genesis);
    let names: Vec<&str> = exchanges.iter().map(String::as_str).collect();
    let validators: Vec<&str> = validators.iter().map(String::as_str).collect();
    let mut config =
        BankConfig::testnet(listen, &house, &names, Amount(opening)).with_dev_auditors(&validators);
    // One currency per fiat asset of the genesis (its symbol): the first is the bank's
    // first currency, the others get their own accounts (`<name>:trust:USD`).
    let fiat: Vec<(String, u32)> = genesis
        .assets
        .iter()
        .filter(|asset| asset.kind == AssetKind::Fiat)
        .map(|asset| (asset.symbol.clone(), asset.scale))
        .collect();
    if let Some(((first, scale), more)) = fiat.split_first() {
        config.currency = first.clone();
        config.scale = *scale;
        for (code, scale) in more {
            config = config.with_currency(code, *scale);
        }
    }
    config
}

pub fn run(command: BankCommand) -> anyhow::Result<()> {
    match command {
        BankCommand::Init {
            out,
            genesis,
            listen,
            opening,
        } => {
            let genesis = match genesis {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    Some(Genesis::from_json(&text).with_context(|| format!("{}", path.display()))?)
                }
                None => None,
            };
            let config = testnet_config(&listen, genesis.as_ref(), opening);
            config
                .validate()
                .context("the generated bank config is invalid")?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let path = out.join("bank.toml");
            if path.exists() {
                anyhow::bail!("{} exists; refusing to overwrite", path.display());
            }
            std::fs::write(&path, config.to_toml())
                .with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
            for party in &config.parties {
                let role = match party.role {
                    PartyRole::ClearingHouse => "clearing house",
                    PartyRole::Exchange => "exchange",
                    PartyRole::Auditor => "validator's read-only auditor",
                };
                println!("  {} ({role}): token {}", party.name, party.token);
            }
            Ok(())
        }
        BankCommand::Run {
            config,
            data,
            listen,
            tls_cert,
            tls_key,
        } => {
            let mut config = match (config, data) {
                (Some(path), _) => BankConfig::load(&path)
                    .map_err(|error| anyhow::anyhow!("{error}"))
                    .with_context(|| format!("loading bank config {}", path.display()))?,
                (None, Some(data)) => {
                    let mut config =
                        testnet_config("127.0.0.1:7400", None, TESTNET_OPENING_OPERATING_JPY);
                    config.data_dir = data;
                    config
                }
                (None, None) => anyhow::bail!("--config or --data is required"),
            };
            if let Some(listen) = listen {
                config.listen = listen;
            }
            if let (Some(cert), Some(key)) = (tls_cert, tls_key) {
                config.tls_cert = Some(cert);
                config.tls_key = Some(key);
            }
            crate::init_logging(crate::node::config::LogFormat::Human);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting tokio")?;
            runtime.block_on(async move {
                seisan_bank::server::serve(config, shutdown_signal())
                    .await
                    .map_err(|error| anyhow::anyhow!("bank stopped: {error}"))
            })
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_testnet_bank_holds_every_fiat_currency_of_the_testnet_genesis() {
        let mut genesis = crate::genesis_command::testnet_genesis(7101, 0);
        crate::genesis_command::add_second_currency(&mut genesis).unwrap();
        let config = testnet_config("127.0.0.1:0", Some(&genesis), 100);
        config.validate().unwrap();
        assert_eq!(config.currencies(), vec!["JPY", "USD"]);
        assert_eq!((config.scale_of("JPY"), config.scale_of("USD")), (0, 2));
        // Without a genesis: the default testnet's, JPY alone.
        let config = testnet_config("127.0.0.1:0", None, 100);
        assert_eq!(config.currencies(), vec!["JPY"]);
    }
}
