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
/// The fewest and most validators `genesis testnet --validators` makes: the members
/// beyond the three are exchanges `exchange-c` to `exchange-f`, and anvil has one
/// unregistered dev account for each of them (see [`ANVIL_DEV_ADDRESSES`]).
pub const TESTNET_VALIDATORS: std::ops::RangeInclusive<usize> = 3..=7;
/// The name of the observer `genesis testnet --observer` adds.
pub const TESTNET_OBSERVER: &str = "observer";
/// The observer's libp2p port above the base (past the most validators a testnet has).
pub const TESTNET_OBSERVER_PORT_OFFSET: u16 = 9;

/// The smallest quorum genesis accepts for `validators`: the least q with 2q > n, so
/// any two quorums share a member.
pub fn smallest_quorum(validators: usize) -> u32 {
    (validators / 2 + 1) as u32
}

/// The name of testnet validator `index`: the three members, then `exchange-c`, ...
pub fn testnet_validator_name(index: usize) -> String {
    match TESTNET_MEMBERS.get(index) {
        Some((name, _)) => name.to_string(),
        None => format!("exchange-{}", (b'a' + (index - 1) as u8) as char),
    }
}

#[derive(Subcommand, Debug)]
pub enum GenesisCommand {
    /// Write the testnet genesis (by default three validators: clearing house,
    /// exchange A, exchange B; quorum 2 of 3) and the members' well-known dev key files
    /// into a folder.
    Testnet {
        /// Folder to write `genesis.json` and `keys/<member>.key` into.
        #[arg(long)]
        out: PathBuf,
        /// First libp2p port; member i listens on base + i.
        #[arg(long, default_value_t = 7101)]
        p2p_base_port: u16,
        /// Validators, 3 to 7: the clearing house and exchanges A, B, then C, D, ...
        #[arg(long, default_value_t = 3)]
        validators: usize,
        /// The quorum (default: the smallest q with 2q > validators).
        #[arg(long)]
        quorum: Option<u32>,
        /// Extra non-validating exchange members `bench-0..N` (load generators).
        #[arg(long, default_value_t = 0)]
        extra_exchanges: u32,
        #[command(flatten)]
        public_chain: PublicChainFlags,
        /// Add the second fiat currency, USD (2 decimals), and the pair ETH/USD, as the
        /// last asset (so ETH, JPY and WBTC keep the ids 0, 1 and 2 that tools and tests
        /// which add assets after the command's genesis rely on). scripts/testnet.sh
        /// passes it.
        #[arg(long)]
        usd: bool,
        /// Add an observer member `observer` (role observer, not a validator) that runs a
        /// node following and verifying the chain; libp2p port base + 9.
        #[arg(long)]
        observer: bool,
        /// Also write `tls/`: a testnet CA (`tls/ca.pem`, its key is not kept) and a
        /// certificate and key for 127.0.0.1/localhost per member's node
        /// (`tls/<member>.pem`, `tls/<member>.key`) and for the bank (`tls/bank.*`).
        #[arg(long)]
        tls: bool,
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
            validators,
            quorum,
            extra_exchanges,
            public_chain,
            usd,
            observer,
            tls,
        } => {
            let mut genesis =
                testnet_genesis_sized(validators, quorum, p2p_base_port, extra_exchanges)?;
            public_chain.apply(&mut genesis)?;
            if usd {
                add_second_currency(&mut genesis)?;
            }
            if observer {
                add_observer(&mut genesis, p2p_base_port)?;
            }
            write_testnet(&out, &genesis)?;
            println!(
                "wrote {} and {} dev keys",
                out.join("genesis.json").display(),
                genesis.members.len()
            );
            if tls {
                let mut servers: Vec<&str> = genesis
                    .members
                    .iter()
                    .map(|member| member.name.as_str())
                    .collect();
                servers.push("bank");
                let certs = seisan_tls::write_testnet_certs(&out.join("tls"), &servers)?;
                println!(
                    "wrote the testnet CA {} and a certificate for {}",
                    certs.ca.display(),
                    servers.join(", ")
                );
            }
            Ok(())
        }
        GenesisCommand::Check { file } => {
            let genesis = load_genesis(&file)?;
            print!("{}", summary(&genesis));
            Ok(())
        }
    }
}

/// The testnet's second fiat currency: USD (2 decimals, its own trust accounts at the
/// bank, `<member>:trust:USD`) and the pair ETH/USD beside ETH/JPY. Added after the
/// public-chain flags, as the last asset, so the ids of ETH (0), JPY (1) and WBTC (2)
/// stay what tools and tests know.
pub fn add_second_currency(genesis: &mut Genesis) -> anyhow::Result<()> {
    genesis.assets.push(Asset {
        symbol: "USD".into(),
        kind: AssetKind::Fiat,
        scale: 2,
        contract: None,
    });
    genesis.pairs.push(PairSpec {
        base: "ETH".into(),
        quote: "USD".into(),
    });
    genesis
        .validate()
        .context("the testnet genesis with USD is invalid")
}

/// The testnet's observer: a member with the role observer and its dev key, never a
/// validator, listening on libp2p port base + [`TESTNET_OBSERVER_PORT_OFFSET`].
pub fn add_observer(genesis: &mut Genesis, p2p_base_port: u16) -> anyhow::Result<()> {
    genesis.members.push(Member {
        name: TESTNET_OBSERVER.into(),
        role: Role::Observer,
        public_key: Keypair::dev(TESTNET_OBSERVER).public_key(),
        validator: false,
        p2p_address: Some(format!(
            "/ip4/127.0.0.1/tcp/{}",
            p2p_base_port + TESTNET_OBSERVER_PORT_OFFSET
        )),
    });
    genesis
        .validate()
        .context("the testnet genesis with an observer is invalid")
}

/// Reads and validates a genesis file.
pub fn load_genesis(path: &Path) -> anyhow::Result<Genesis> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading genesis {}", path.display()))?;
    Genesis::from_json(&text).with_context(|| format!("genesis {} is invalid", path.display()))
}

/// The three-validator testnet genesis (quorum 2). Keys are the well-known dev keys of
/// each member name.
pub fn testnet_genesis(p2p_base_port: u16, extra_exchanges: u32) -> Genesis {
    testnet_genesis_sized(3, None, p2p_base_port, extra_exchanges)
        .expect("three validators with quorum 2 is a valid testnet")
}

/// The testnet genesis with `validators` validators (see [`TESTNET_VALIDATORS`]) and
/// `quorum` (default [`smallest_quorum`]); refuses a size out of range and a quorum
/// genesis would refuse (2q <= n, or q > n), naming the reason.
pub fn testnet_genesis_sized(
    validators: usize,
    quorum: Option<u32>,
    p2p_base_port: u16,
    extra_exchanges: u32,
) -> anyhow::Result<Genesis> {
    if !TESTNET_VALIDATORS.contains(&validators) {
        bail!(
            "--validators {validators}: a testnet has {} to {} validators",
            TESTNET_VALIDATORS.start(),
            TESTNET_VALIDATORS.end()
        );
    }
    let quorum = quorum.unwrap_or_else(|| smallest_quorum(validators));
    if 2 * quorum as usize <= validators {
        bail!(
            "--quorum {quorum} is unsafe for {validators} validators: 2q must exceed n, so the quorum must be at least {}",
            smallest_quorum(validators)
        );
    }
    if quorum as usize > validators {
        bail!("--quorum {quorum} exceeds the {validators} validators, so no block could ever be final");
    }
    let mut members: Vec<Member> = (0..validators)
        .map(|index| {
            let name = testnet_validator_name(index);
            Member {
                role: if index == 0 {
                    Role::ClearingHouse
                } else {
                    Role::Exchange
                },
                public_key: Keypair::dev(&name).public_key(),
                name,
                validator: true,
                p2p_address: Some(format!(
                    "/ip4/127.0.0.1/tcp/{}",
                    p2p_base_port as usize + index
                )),
            }
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
    let genesis = Genesis {
        chain_id: ChainId(TESTNET_CHAIN_ID.into()),
        genesis_time_ms: TESTNET_GENESIS_TIME_MS,
        quorum,
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
    };
    genesis
        .validate()
        .context("the generated testnet genesis is invalid")?;
    Ok(genesis)
}

/// Anvil's well-known dev accounts 0-9 (of the "test test ... junk" mnemonic). Account
/// 0 deploys the token; 1 and 2 are the testnet's hot and cold custody addresses; 3
/// and 4 are exchange A's and B's registered addresses, 6 to 9 those of exchanges C to
/// F ([`REGISTERED_DEV_ACCOUNTS`]); account 5 is an unregistered outsider.
pub const ANVIL_DEV_ADDRESSES: [&str; 10] = [
    "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
    "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
    "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc",
    "0x90f79bf6eb2c4f870365e785982e1f101e93b906",
    "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65",
    "0x9965507d1a55bcc2695c58ba16fb37d819b0a4dc",
    "0x976ea74026e726554db657fa54763abd0c3a0aa9",
    "0x14dc79964da2c08b23698b3d3cc7ca32193d9955",
    "0x23618e81e3f5cdf7f54c3d65f7fbc0abf5b21e8f",
    "0xa0ee7a142d267c1f36714e4a8f75612f20a79720",
];

/// The anvil accounts registered, in order, to the validating exchanges A, B, C, ...
pub const REGISTERED_DEV_ACCOUNTS: [usize; 6] = [3, 4, 6, 7, 8, 9];

/// Optional flags of `genesis testnet` that add public-chain custody.
#[derive(clap::Args, Debug, Default)]
pub struct PublicChainFlags {
    /// The public chain's id (31337 for anvil). Adds the `public_chain` section; the
    /// addresses default to anvil's dev accounts 1 (hot), 2 (cold), 3 (exchange-a),
    /// 4 (exchange-b) and 6 to 9 (exchange-c to exchange-f, when they validate).
    #[arg(long)]
    pub eth_chain_id: Option<u64>,
    /// Confirmations a deposit or payout needs.
    #[arg(long, default_value_t = 2)]
    pub confirmations: u64,
    /// The WBTC token contract (adds asset WBTC, 8 decimals, and the pair WBTC/JPY).
    #[arg(long)]
    pub token_contract: Option<String>,
    #[arg(long)]
    pub hot_address: Option<String>,
    #[arg(long)]
    pub cold_address: Option<String>,
    /// A registered address, as MEMBER=ADDRESS (repeatable; replaces the defaults).
    #[arg(long = "register", value_name = "MEMBER=ADDRESS")]
    pub register: Vec<String>,
}

impl PublicChainFlags {
    /// Adds the custody settings to `genesis` if `--eth-chain-id` was given.
    pub fn apply(&self, genesis: &mut Genesis) -> anyhow::Result<()> {
        use seisan_types::custody::{ChainAddress, PublicChainSettings, RegisteredAddress};
        let Some(chain_id) = self.eth_chain_id else {
            return Ok(());
        };
        let address = |text: &str| ChainAddress(text.to_lowercase());
        let mut registered = Vec::new();
        for entry in &self.register {
            let (member, text) = entry
                .split_once('=')
                .with_context(|| format!("--register {entry:?} is not MEMBER=ADDRESS"))?;
            registered.push(RegisteredAddress {
                member: member.to_string(),
                address: address(text),
            });
        }
        if registered.is_empty() {
            let exchanges = genesis
                .members
                .iter()
                .filter(|member| member.validator && member.role == Role::Exchange);
            registered = exchanges
                .zip(REGISTERED_DEV_ACCOUNTS)
                .map(|(member, account)| RegisteredAddress {
                    member: member.name.clone(),
                    address: address(ANVIL_DEV_ADDRESSES[account]),
                })
                .collect();
        }
        genesis.public_chain = Some(PublicChainSettings {
            chain_id,
            confirmations: self.confirmations,
            hot_address: address(
                self.hot_address
                    .as_deref()
                    .unwrap_or(ANVIL_DEV_ADDRESSES[1]),
            ),
            cold_address: address(
                self.cold_address
                    .as_deref()
                    .unwrap_or(ANVIL_DEV_ADDRESSES[2]),
            ),
            registered_addresses: registered,
            hot_cap_bps: seisan_types::custody::DEFAULT_HOT_CAP_BPS,
        });
        if let Some(contract) = &self.token_contract {
            genesis.assets.push(Asset {
                symbol: "WBTC".into(),
                kind: AssetKind::Token,
                scale: 8,
                contract: Some(contract.to_lowercase()),
            });
            genesis.pairs.push(PairSpec {
                base: "WBTC".into(),
                quote: "JPY".into(),
            });
        }
        genesis
            .validate()
            .context("the public-chain flags make an invalid genesis")?;
        Ok(())
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
    fn the_observer_is_a_member_that_never_validates() {
        let mut genesis = testnet_genesis(7101, 0);
        add_observer(&mut genesis, 7101).unwrap();
        let (id, observer) = genesis.member_by_name(TESTNET_OBSERVER).unwrap();
        assert_eq!(observer.role, Role::Observer);
        assert!(!observer.validator);
        assert_eq!(
            observer.p2p_address.as_deref(),
            Some("/ip4/127.0.0.1/tcp/7110")
        );
        assert_eq!(genesis.validators().len(), 3);
        assert!(!seisan_types::ValidatorSet::genesis(&genesis).contains(id));
    }

    #[test]
    fn the_second_currency_comes_last_with_its_pair() {
        let mut genesis = testnet_genesis(7101, 0);
        let flags = PublicChainFlags {
            eth_chain_id: Some(31337),
            confirmations: 2,
            token_contract: Some("0x5fbdb2315678afecb367f032d93f642f64180aa3".into()),
            ..PublicChainFlags::default()
        };
        flags.apply(&mut genesis).unwrap();
        add_second_currency(&mut genesis).unwrap();
        let symbols: Vec<&str> = genesis.assets.iter().map(|a| a.symbol.as_str()).collect();
        assert_eq!(symbols, ["ETH", "JPY", "WBTC", "USD"]);
        let (usd, asset) = genesis.asset_by_symbol("USD").unwrap();
        assert_eq!((usd.0, asset.kind, asset.scale), (3, AssetKind::Fiat, 2));
        assert!(genesis
            .pairs
            .iter()
            .any(|pair| pair.base == "ETH" && pair.quote == "USD"));
    }

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
    fn public_chain_flags_add_custody_with_anvil_defaults() {
        let mut genesis = testnet_genesis(7101, 0);
        PublicChainFlags::default().apply(&mut genesis).unwrap();
        assert_eq!(genesis, testnet_genesis(7101, 0), "no flags, no change");
        let flags = PublicChainFlags {
            eth_chain_id: Some(31337),
            confirmations: 2,
            token_contract: Some("0x5FbDB2315678afecb367f032d93F642f64180aa3".into()),
            ..PublicChainFlags::default()
        };
        flags.apply(&mut genesis).unwrap();
        let chain = genesis.public_chain.as_ref().unwrap();
        assert_eq!(chain.hot_address.0, ANVIL_DEV_ADDRESSES[1]);
        assert_eq!(chain.registered_addresses.len(), 2);
        let (_, token) = genesis.asset_by_symbol("WBTC").unwrap();
        assert_eq!(
            token.contract.as_deref(),
            Some("0x5fbdb2315678afecb367f032d93f642f64180aa3")
        );
    }

    #[test]
    fn a_larger_testnet_adds_validating_exchanges_with_their_own_keys_and_ports() {
        for validators in TESTNET_VALIDATORS {
            let genesis = testnet_genesis_sized(validators, None, 7101, 2).unwrap();
            let set = genesis.validators();
            assert_eq!(set.len(), validators);
            let names: Vec<&str> = genesis.members[..validators]
                .iter()
                .map(|member| member.name.as_str())
                .collect();
            assert_eq!(&names[..3], ["clearing-house", "exchange-a", "exchange-b"]);
            let mut ports = std::collections::BTreeSet::new();
            let mut keys = std::collections::BTreeSet::new();
            for member in &genesis.members[..validators] {
                assert!(member.validator, "{}", member.name);
                assert!(ports.insert(member.p2p_address.clone().unwrap()));
                assert!(keys.insert(member.public_key));
            }
        }
        let five = testnet_genesis_sized(5, None, 7101, 0).unwrap();
        assert_eq!(five.members[3].name, "exchange-c");
        assert_eq!(five.members[4].name, "exchange-d");
        assert_eq!(five.members[4].role, Role::Exchange);
        assert_eq!(
            five.members[4].p2p_address.as_deref(),
            Some("/ip4/127.0.0.1/tcp/7105")
        );
        assert_eq!(
            testnet_genesis_sized(3, None, 7101, 0).unwrap(),
            testnet_genesis(7101, 0)
        );
    }

    #[test]
    fn the_default_quorum_is_the_smallest_with_two_q_above_n() {
        let quorums: Vec<u32> = TESTNET_VALIDATORS
            .map(|n| testnet_genesis_sized(n, None, 7101, 0).unwrap().quorum)
            .collect();
        assert_eq!(quorums, [2, 3, 3, 4, 4]);
        assert_eq!(
            testnet_genesis_sized(5, Some(4), 7101, 0).unwrap().quorum,
            4
        );
    }

    #[test]
    fn an_unsafe_quorum_or_size_is_refused_with_the_reason() {
        let error = testnet_genesis_sized(4, Some(2), 7101, 0).unwrap_err();
        assert!(error.to_string().contains("2q must exceed n"), "{error}");
        assert!(error.to_string().contains("at least 3"), "{error}");
        let error = testnet_genesis_sized(4, Some(5), 7101, 0).unwrap_err();
        assert!(
            error.to_string().contains("exceeds the 4 validators"),
            "{error}"
        );
        for validators in [2, 8] {
            let error = testnet_genesis_sized(validators, None, 7101, 0).unwrap_err();
            assert!(error.to_string().contains("3 to 7 validators"), "{error}");
        }
    }

    #[test]
    fn every_validating_exchange_gets_its_own_registered_anvil_address() {
        let mut genesis = testnet_genesis_sized(7, None, 7101, 1).unwrap();
        let flags = PublicChainFlags {
            eth_chain_id: Some(31337),
            confirmations: 2,
            ..PublicChainFlags::default()
        };
        flags.apply(&mut genesis).unwrap();
        let registered: Vec<(String, String)> = genesis
            .public_chain
            .unwrap()
            .registered_addresses
            .into_iter()
            .map(|entry| (entry.member, entry.address.0))
            .collect();
        let expected: Vec<(String, String)> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .zip(REGISTERED_DEV_ACCOUNTS)
            .map(|(letter, account)| {
                (
                    format!("exchange-{letter}"),
                    ANVIL_DEV_ADDRESSES[account].to_string(),
                )
            })
            .collect();
        assert_eq!(
            registered, expected,
            "bench-0 does not validate: no address"
        );
        let outsider = ANVIL_DEV_ADDRESSES[5];
        assert!(registered.iter().all(|(_, address)| address != outsider));
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
