//! `seisan genesis testnet|check`.

use anyhow::{bail, Context};
use clap::Subcommand;
use seisan_crypto::Keypair;
use seisan_types::amount::{Asset, AssetKind};
use seisan_types::genesis::{Genesis, Member, PairSpec, Role};
use seisan_types::ids::ChainId;
use std::path::{Path, PathBuf};

/// The testnet's chain id; its `dev` segment lets nodes accept the well-known keys.
pub const TESTNET_CHAIN_ID: &str = "seisan-dev-testnet";
/// 2026-01-01T00:00:00Z: a fixed genesis time, so the testnet genesis is reproducible.
pub const TESTNET_GENESIS_TIME_MS: u64 = 1_767_225_600_000;
/// The testnet members, in member-id order.
pub const TESTNET_MEMBERS: [(&str, Role); 3] = [
    ("clearing-house", Role::ClearingHouse),
    ("exchange-a", Role::Exchange),
    ("exchange-b", Role::Exchange),
];

#[derive(Subcommand, Debug)]
pub enum GenesisCommand {
    /// Write the three-member testnet genesis (clearing house, exchange A, exchange B;
    /// quorum 2 of 3) and the members' well-known dev key files into a folder.
    Testnet {
        /// Folder to write `genesis.json` and `keys/<member>.key` into.
        #[arg(long)]
        out: PathBuf,
        /// First libp2p port; member i listens on base + i.
        #[arg(long, default_value_t = 7101)]
        p2p_base_port: u16,
        /// Extra non-validating exchange members `bench-0..N` (load generators).
        #[arg(long, default_value_t = 0)]
        extra_exchanges: u32,
    },
    /// Validate a genesis file and print a summary.
    Check {
        /// The genesis file.
        file: PathBuf,
    },
}

pub fn run(command: GenesisCommand) -> anyhow::Result<()> {
    match command {
        GenesisCommand::Testnet {
            out,
            p2p_base_port,
            extra_exchanges,
        } => {
            let genesis = testnet_genesis(p2p_base_port, extra_exchanges);
            write_testnet(&out, &genesis)?;
            println!(
                "wrote {} and {} dev keys",
                out.join("genesis.json").display(),
                genesis.members.len()
            );
            Ok(())
        }
        GenesisCommand::Check { file } => {
            let genesis = load_genesis(&file)?;
            print!("{}", summary(&genesis));
            Ok(())
        }
    }
}

/// Reads and validates a genesis file.
pub fn load_genesis(path: &Path) -> anyhow::Result<Genesis> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading genesis {}", path.display()))?;
    Genesis::from_json(&text).with_context(|| format!("genesis {} is invalid", path.display()))
}

/// The testnet genesis. Keys are the well-known dev keys of each member name.
pub fn testnet_genesis(p2p_base_port: u16, extra_exchanges: u32) -> Genesis {
    let mut members: Vec<Member> = TESTNET_MEMBERS
        .iter()
        .enumerate()
        .map(|(index, (name, role))| Member {
            name: name.to_string(),
            role: *role,
            public_key: Keypair::dev(name).public_key(),
            validator: true,
            p2p_address: Some(format!(
                "/ip4/127.0.0.1/tcp/{}",
                p2p_base_port as usize + index
            )),
        })
        .collect();
    for index in 0..extra_exchanges {
        let name = format!("bench-{index}");
        members.push(Member {
            public_key: Keypair::dev(&name).public_key(),
            name,
            role: Role::Exchange,
            validator: false,
            p2p_address: None,
        });
    }
    Genesis {
        chain_id: ChainId(TESTNET_CHAIN_ID.into()),
        genesis_time_ms: TESTNET_GENESIS_TIME_MS,
        quorum: 2,
        members,
        assets: vec![
            Asset {
                symbol: "ETH".into(),
                kind: AssetKind::NativeCoin,
                scale: 18,
                contract: None,
            },
            Asset {
                symbol: "JPY".into(),
                kind: AssetKind::Fiat,
                scale: 0,
                contract: None,
            },
        ],
        pairs: vec![PairSpec {
            base: "ETH".into(),
            quote: "JPY".into(),
        }],
        opening_balances: vec![],
        settlement: Default::default(),
        public_chain: None,
    }
}

fn write_testnet(out: &Path, genesis: &Genesis) -> anyhow::Result<()> {
    genesis
        .validate()
        .context("the generated testnet genesis is invalid")?;
    let keys = out.join("keys");
    std::fs::create_dir_all(&keys).with_context(|| format!("creating {}", keys.display()))?;
    let genesis_path = out.join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_json() + "\n")
        .with_context(|| format!("writing {}", genesis_path.display()))?;
    for member in &genesis.members {
        let path = keys.join(format!("{}.key", member.name));
        if path.exists() {
            let existing = seisan_crypto::keyfile::read_key_file(&path)?;
            if existing.public_key() != member.public_key {
                bail!(
                    "{} holds a different key than {}'s dev key; remove it first",
                    path.display(),
                    member.name
                );
            }
            continue;
        }
        seisan_crypto::keyfile::write_key_file(&path, &Keypair::dev(&member.name))?;
    }
    Ok(())
}

fn summary(genesis: &Genesis) -> String {
    let mut out = format!(
        "genesis ok: chain {} ({}), hash {}\nquorum {} of {} validators\n",
        genesis.chain_id,
        if genesis.chain_id.is_dev() {
            "dev network"
        } else {
            "production network"
        },
        genesis.hash(),
        genesis.quorum,
        genesis.validators().len()
    );
    for (index, member) in genesis.members.iter().enumerate() {
        out += &format!(
            "  member {index}: {:<16} {:<14} validator={:<5} key {} {}\n",
            member.name,
            format!("{:?}", member.role),
            member.validator,
            member.public_key,
            member.p2p_address.as_deref().unwrap_or("-")
        );
    }
    for asset in &genesis.assets {
        out += &format!(
            "  asset {:<6} {:?} scale {}\n",
            asset.symbol, asset.kind, asset.scale
        );
    }
    for pair in &genesis.pairs {
        out += &format!("  pair {}/{}\n", pair.base, pair.quote);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_testnet_genesis_is_what_the_command_generates() {
        let committed = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../genesis/testnet.json"
        ))
        .expect("genesis/testnet.json is committed");
        let generated = testnet_genesis(7101, 0);
        assert_eq!(
            Genesis::from_json(&committed).unwrap(),
            generated,
            "regenerate with scripts/regen-genesis.sh"
        );
    }

    #[test]
    fn testnet_genesis_is_valid_and_uses_dev_keys() {
        let genesis = testnet_genesis(7101, 5);
        genesis.validate().unwrap();
        assert_eq!(genesis.validators().len(), 3);
        assert!(genesis.chain_id.is_dev());
        for member in &genesis.members {
            assert!(seisan_crypto::is_well_known_dev_key(
                &member.public_key,
                &member.name
            ));
        }
    }
}
