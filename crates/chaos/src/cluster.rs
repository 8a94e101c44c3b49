//! The four validator processes (quorum 3), the bank they watch and the network they
//! live on; one of them (exchange-c by default) may be configured to lie in its
//! attestations (`--fault lie-attestations`).
//!
//! Each node runs in its own Linux network namespace, linked to a bridge in the root
//! namespace by a veth pair, with a private address (10.213.<net>.10+i/24). A partition
//! takes the host end of a node's veth down, so the kernel really drops its packets:
//! the node can reach neither its peers nor the chaos driver until the link comes back.
//! If namespaces cannot be created (no privilege, no iproute2) the nodes run on
//! loopback instead, and partitions are reported as not injected, never faked.
//!
//! The embedded bank (`seisan bank run`, its own process with its own sled store)
//! listens on the bridge's address in the root namespace, so every node reaches it over
//! its veth link (a partitioned node loses the bank too). Every node watches it with its
//! member's dev token and reads every trust account through its validator's read-only
//! auditor token (`dev-token-<name>-auditor`, made by `seisan bank init --genesis`), so
//! the three honest validators are a quorum for every fiat credit even with a liar. The genesis opens crypto balances only: every yen in the ledger
//! enters through a trust-account deposit at the bank, so the bank's books and the
//! ledger can be compared exactly at the end.
//!
//! The public chain is a local anvil (`scripts/anvil.sh`, with the WBTC token), also
//! listening on the bridge's address, so a partitioned node loses the chain as well.
//! Genesis gets a `public_chain` section (hot and cold wallets and the exchanges'
//! registered addresses are anvil's dev accounts) and the WBTC asset; every node
//! watches anvil (`--eth-rpc`) and the clearing house pays from the hot wallet
//! (`--hot-key`). Before any node starts, the hot and cold wallets are set to hold
//! exactly the genesis ETH liabilities plus [`GAS_BUFFER_WEI`] (and no WBTC), so that
//! custody and ledger can be compared exactly at the end.
//!
//! Dropping the [`Cluster`] kills every process it started (nodes, bank and anvil) and
//! deletes every namespace, link and bridge it created.

use crate::chain::{self, Anvil};
use anyhow::{bail, Context};
use seisan_types::custody::{ChainAddress, PublicChainSettings, RegisteredAddress};
use seisan_types::genesis::{Genesis, OpeningBalance};
use seisan_types::{Amount, Asset, AssetKind};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// What a wipe keeps of a node's data directory: the clearing house's hot-wallet
/// journal (every payout it signed, recorded before broadcast). It is the wallet's own
/// record, which an operator keeps with the hot key, not a replica of the chain: a
/// clearing house that loses it can pay a withdrawal whose payout was in flight a second
/// time. (The node keeps it inside `--data` today, so the run sets it aside.)
pub const KEPT_ACROSS_A_WIPE: &str = "custody-journal";

/// The validators of the testnet genesis, in member order (member ids 0 to 3).
pub const VALIDATORS: [&str; 4] = ["clearing-house", "exchange-a", "exchange-b", "exchange-c"];
/// Signatures that make a block final: 3 of 4, so the chain survives any one
/// validator down (or lying) and stops with two down.
pub const QUORUM: u32 = 3;
/// The validator started with `--fault lie-attestations` unless the run is asked for
/// none: it attests other amounts than it sees and invented facts for bank entry ids
/// not assigned yet and for deposits that never happened.
pub const DEFAULT_LIAR: &str = "exchange-c";
/// The libp2p port every namespaced node listens on (each has its own address).
const NAMESPACE_P2P_PORT: u16 = 7101;
/// The HTTP port every namespaced node listens on.
const NAMESPACE_HTTP_PORT: u16 = 8080;

/// How each funded member starts in the genesis, in whole ETH (no fiat: yen enter the
/// ledger only through the bank).
pub const OPENING_ETH: &str = "1000";
/// Each exchange's operating account at the bank when it opens, in yen: the money the
/// exchanges move into their trust accounts during the run.
pub const OPENING_OPERATING_JPY: u128 = 1_000_000_000_000_000;
/// The clearing house's own ether in the hot wallet, outside the ledger: what pays the
/// gas of payouts and sweeps (the ledger's ETH liabilities are covered exactly by the
/// rest).
pub const GAS_BUFFER_WEI: u128 = 1_000_000_000_000_000_000;
/// Deposits must be this many blocks deep before the nodes attest them.
pub const CONFIRMATIONS: u64 = 2;
/// The hot wallet's cap, in basis points of custody (the rest is swept to cold).
pub const HOT_CAP_BPS: u32 = 500;

/// The namespace network of one run.
#[derive(Debug)]
struct Namespaces {
    net: u8,
    bridge: String,
}

impl Namespaces {
    fn namespace(&self, index: usize) -> String {
        format!("seisan-chaos-{}-{index}", self.net)
    }

    fn host_link(&self, index: usize) -> String {
        format!("sc{}h{index}", self.net)
    }

    fn node_link(&self, index: usize) -> String {
        format!("sc{}n{index}", self.net)
    }

    fn address(&self, index: usize) -> String {
        format!("10.213.{}.{}", self.net, 10 + index)
    }

    /// The bridge's address in the root namespace (where the bank listens).
    fn bridge_address(&self) -> String {
        format!("10.213.{}.1", self.net)
    }

    /// Creates the bridge and one namespace per node. On failure, removes what it made.
    fn create(net: u8, nodes: usize) -> anyhow::Result<Namespaces> {
        let namespaces = Namespaces {
            net,
            bridge: format!("sc{net}br"),
        };
        // Leftovers of an earlier run with the same number would collide.
        namespaces.destroy(nodes);
        let result = (|| {
            ip(&["link", "add", &namespaces.bridge, "type", "bridge"])?;
            ip(&[
                "addr",
                "add",
                &format!("10.213.{net}.1/24"),
                "dev",
                &namespaces.bridge,
            ])?;
            ip(&["link", "set", &namespaces.bridge, "up"])?;
            for index in 0..nodes {
                let namespace = namespaces.namespace(index);
                let host = namespaces.host_link(index);
                let inner = namespaces.node_link(index);
                ip(&["netns", "add", &namespace])?;
                ip(&["link", "add", &host, "type", "veth", "peer", "name", &inner])?;
                ip(&["link", "set", &inner, "netns", &namespace])?;
                ip(&["link", "set", &host, "master", &namespaces.bridge])?;
                ip(&["link", "set", &host, "up"])?;
                let address = format!("{}/24", namespaces.address(index));
                ip(&["-n", &namespace, "addr", "add", &address, "dev", &inner])?;
                ip(&["-n", &namespace, "link", "set", &inner, "up"])?;
                ip(&["-n", &namespace, "link", "set", "lo", "up"])?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(namespaces),
            Err(error) => {
                namespaces.destroy(nodes);
                Err(error)
            }
        }
    }

    fn set_link(&self, index: usize, up: bool) -> anyhow::Result<()> {
        ip(&[
            "link",
            "set",
            &self.host_link(index),
            if up { "up" } else { "down" },
        ])
    }

    /// Best effort: deleting a namespace deletes its veth end and so the pair.
    fn destroy(&self, nodes: usize) {
        for index in 0..nodes {
            let _ = quiet_ip(&["netns", "del", &self.namespace(index)]);
            let _ = quiet_ip(&["link", "del", &self.host_link(index)]);
        }
        let _ = quiet_ip(&["link", "del", &self.bridge]);
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (install iproute2)")?;
    if !output.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn quiet_ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn free_port_on(address: &str) -> anyhow::Result<u16> {
    Ok(TcpListener::bind((address, 0))?.local_addr()?.port())
}

/// The embedded bank's process.
#[derive(Debug)]
pub struct Bank {
    pub url: String,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// One validator process.
#[derive(Debug)]
pub struct Node {
    pub name: String,
    pub url: String,
    listen_http: String,
    data: PathBuf,
    log: PathBuf,
    key: PathBuf,
    /// Started with `--fault lie-attestations`.
    pub lies: bool,
    child: Option<Child>,
}

/// Four validators, their genesis, the bank and (when available) their namespaces.
#[derive(Debug)]
pub struct Cluster {
    pub dir: PathBuf,
    pub genesis: Genesis,
    pub nodes: Vec<Node>,
    pub bank: Bank,
    pub anvil: Anvil,
    /// The public-chain block at which the hot and cold wallets held exactly the
    /// genesis liabilities plus the gas buffer; the run's chain activity comes after it.
    pub chain_start_block: u64,
    hot_key: PathBuf,
    binary: PathBuf,
    namespaces: Option<Namespaces>,
    /// Why namespaces are not used, if they are not.
    pub namespace_error: Option<String>,
    /// The index of the validator that lies in its attestations, if any.
    pub liar: Option<usize>,
}

impl Cluster {
    /// Writes a testnet genesis with `extra` funded exchange members into `dir`, sets
    /// up the namespaces (network number `net`), starts the bank and the four
    /// validators, `liar` (a validator's name) with `--fault lie-attestations`.
    pub fn start(
        binary: &Path,
        dir: &Path,
        extra: u32,
        net: u8,
        liar: Option<&str>,
    ) -> anyhow::Result<Cluster> {
        let liar = match liar {
            Some(name) => Some(
                VALIDATORS
                    .iter()
                    .position(|validator| *validator == name)
                    .with_context(|| format!("the liar {name} is not one of {VALIDATORS:?}"))?,
            ),
            None => None,
        };
        std::fs::create_dir_all(dir)?;
        // Every process of the run, restarts included, runs this copy: a `cargo build`
        // finishing mid-run replaces the original, and a node restarted on another
        // build than its peers' is not what the run tests.
        let copy = dir.join("seisan");
        std::fs::copy(binary, &copy)
            .with_context(|| format!("copying {} into the run", binary.display()))?;
        let binary = copy.as_path();
        let (namespaces, namespace_error) = match Namespaces::create(net, VALIDATORS.len()) {
            Ok(namespaces) => (Some(namespaces), None),
            Err(error) => (None, Some(format!("{error:#}"))),
        };
        let loopback_base = if namespaces.is_some() {
            NAMESPACE_P2P_PORT
        } else {
            seisan_tests::free_port_run(VALIDATORS.len() as u16)
        };
        let generated = Command::new(binary)
            .args(["genesis", "testnet", "--out"])
            .arg(dir)
            .args([
                "--validators",
                &VALIDATORS.len().to_string(),
                "--quorum",
                &QUORUM.to_string(),
                "--p2p-base-port",
                &loopback_base.to_string(),
                "--extra-exchanges",
                &extra.to_string(),
            ])
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("running {} genesis testnet", binary.display()))?;
        if !generated.success() {
            bail!("seisan genesis testnet failed");
        }
        let genesis_path = dir.join("genesis.json");
        let mut genesis = Genesis::from_json(&std::fs::read_to_string(&genesis_path)?)?;
        let names: Vec<&str> = genesis
            .members
            .iter()
            .take(VALIDATORS.len())
            .map(|member| member.name.as_str())
            .collect();
        anyhow::ensure!(
            names == VALIDATORS && genesis.quorum == QUORUM,
            "the testnet genesis has validators {names:?} with quorum {}, not {VALIDATORS:?} with {QUORUM}",
            genesis.quorum
        );
        if let Some(namespaces) = &namespaces {
            for (index, member) in genesis
                .members
                .iter_mut()
                .take(VALIDATORS.len())
                .enumerate()
            {
                member.p2p_address = Some(format!(
                    "/ip4/{}/tcp/{NAMESPACE_P2P_PORT}",
                    namespaces.address(index)
                ));
            }
        }
        for member in funded_members(extra) {
            genesis.opening_balances.push(OpeningBalance {
                member,
                asset: "ETH".into(),
                amount: OPENING_ETH.into(),
            });
        }
        let bank_host = match &namespaces {
            Some(namespaces) => namespaces.bridge_address(),
            None => "127.0.0.1".to_string(),
        };
        // Anvil listens where the bank does: reachable over a node's veth link only.
        let anvil = Anvil::start(&dir.join("anvil"), &bank_host, free_port_on(&bank_host)?)
            .context("starting anvil")?;
        add_public_chain(&mut genesis, &anvil.chain.token);
        genesis.validate().context("the chaos genesis is invalid")?;
        std::fs::write(&genesis_path, genesis.to_json() + "\n")?;
        let chain_start_block = open_custody(&anvil.chain, &genesis)?;
        let hot_key = write_key(&dir.join("keys"), "hot-wallet.key", chain::HOT_KEY)?;
        let bank_listen = format!("{bank_host}:{}", free_port_on(&bank_host)?);
        let bank_dir = dir.join("bank");
        let initialized = Command::new(binary)
            .args(["bank", "init", "--out"])
            .arg(&bank_dir)
            .arg("--genesis")
            .arg(&genesis_path)
            .args([
                "--listen",
                &bank_listen,
                "--opening",
                &OPENING_OPERATING_JPY.to_string(),
            ])
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("running {} bank init", binary.display()))?;
        if !initialized.success() {
            bail!("seisan bank init failed");
        }
        let bank = Bank {
            url: format!("http://{bank_listen}"),
            config: bank_dir.join("bank.toml"),
            log: dir.join("bank.log"),
            child: None,
        };
        let mut nodes = Vec::new();
        for (index, name) in VALIDATORS.iter().enumerate() {
            let (listen_http, url) = match &namespaces {
                Some(namespaces) => {
                    let address = format!("{}:{NAMESPACE_HTTP_PORT}", namespaces.address(index));
                    (address.clone(), format!("http://{address}"))
                }
                None => {
                    let address = format!("127.0.0.1:{}", seisan_tests::free_port());
                    (address.clone(), format!("http://{address}"))
                }
            };
            nodes.push(Node {
                name: name.to_string(),
                url,
                listen_http,
                data: dir.join("data").join(name),
                log: dir.join(format!("{name}.log")),
                key: dir.join("keys").join(format!("{name}.key")),
                lies: liar == Some(index),
                child: None,
            });
        }
        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            genesis,
            nodes,
            bank,
            anvil,
            chain_start_block,
            hot_key,
            binary: binary.to_path_buf(),
            namespaces,
            namespace_error,
            liar,
        };
        cluster.launch_bank()?;
        for index in 0..cluster.nodes.len() {
            cluster.launch(index)?;
        }
        Ok(cluster)
    }

    pub fn partitions_possible(&self) -> bool {
        self.namespaces.is_some()
    }

    /// Starts node `index` on its data directory (killing a running one first).
    pub fn launch(&mut self, index: usize) -> anyhow::Result<()> {
        self.kill(index);
        let genesis = self.dir.join("genesis.json");
        // Bank tokens go to the node in files only its owner reads, never as arguments.
        let name = self.nodes[index].name.clone();
        let tokens = self.dir.join("tokens");
        let token = write_key(
            &tokens,
            &format!("{name}.token"),
            &seisan_bank::dev_token(&name),
        )?;
        let auditor_token = write_key(
            &tokens,
            &format!("{name}-auditor.token"),
            &seisan_bank::dev_auditor_token(&name),
        )?;
        let node = &mut self.nodes[index];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let mut command = match &self.namespaces {
            Some(namespaces) => {
                // `ip netns exec` enters the namespace and execs the node, so the
                // child's pid is the node's own.
                let mut command = Command::new("ip");
                command
                    .args(["netns", "exec", &namespaces.namespace(index)])
                    .arg(&self.binary);
                command
            }
            None => Command::new(&self.binary),
        };
        command
            .arg("node")
            .arg("--genesis")
            .arg(&genesis)
            .arg("--key")
            .arg(&node.key)
            .arg("--data")
            .arg(&node.data)
            .args(["--http", &node.listen_http])
            .args(["--bank-url", &self.bank.url])
            .arg("--bank-token-file")
            .arg(&token)
            .arg("--bank-auditor-token-file")
            .arg(&auditor_token)
            .args(["--eth-rpc", &self.anvil.chain.url]);
        if node.lies {
            command.args(["--fault", "lie-attestations"]);
        }
        if node.name == "clearing-house" {
            command.arg("--hot-key").arg(&self.hot_key);
        }
        let child = command
            .env("RUST_LOG", "info,libp2p=warn,libp2p_gossipsub=error")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", node.name))?;
        node.child = Some(child);
        self.write_pids();
        Ok(())
    }

    /// Starts the bank on its store (killing a running one first).
    pub fn launch_bank(&mut self) -> anyhow::Result<()> {
        self.kill_bank();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.bank.log)?;
        let child = Command::new(&self.binary)
            .args(["bank", "run", "--config"])
            .arg(&self.bank.config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the bank")?;
        self.bank.child = Some(child);
        self.write_pids();
        Ok(())
    }

    /// kill -9 the bank and reap it.
    pub fn kill_bank(&mut self) {
        if let Some(mut child) = self.bank.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last lines of the bank's log, for failure reports.
    pub fn bank_log_tail(&self, lines: usize) -> String {
        tail(&self.bank.log, lines)
    }

    /// kill -9 node `index` and reap it.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether node `index`'s process is alive.
    pub fn is_running(&mut self, index: usize) -> bool {
        match &mut self.nodes[index].child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends SIGSTOP (`stop`) or SIGCONT to node `index`.
    pub fn signal_pause(&mut self, index: usize, stop: bool) -> anyhow::Result<()> {
        let Some(child) = &self.nodes[index].child else {
            bail!("{} is not running", self.nodes[index].name);
        };
        let status = Command::new("kill")
            .arg(if stop { "-STOP" } else { "-CONT" })
            .arg(child.id().to_string())
            .status()?;
        if !status.success() {
            bail!("kill {} failed", if stop { "-STOP" } else { "-CONT" });
        }
        Ok(())
    }

    /// Cuts (`up == false`) or restores node `index`'s link.
    pub fn set_link(&mut self, index: usize, up: bool) -> anyhow::Result<()> {
        match &self.namespaces {
            Some(namespaces) => namespaces.set_link(index, up),
            None => bail!("no namespaces: partitions are not possible here"),
        }
    }

    /// Stops node `index` and deletes its data directory, except the clearing house's
    /// hot-wallet payout journal (see [`KEPT_ACROSS_A_WIPE`]).
    pub fn wipe(&mut self, index: usize) -> anyhow::Result<()> {
        self.kill(index);
        let data = &self.nodes[index].data;
        let journal = data.join(KEPT_ACROSS_A_WIPE);
        let kept = self
            .dir
            .join(format!("{}-{KEPT_ACROSS_A_WIPE}", self.nodes[index].name));
        let keep = journal.exists();
        if keep {
            std::fs::rename(&journal, &kept).context("setting the payout journal aside")?;
        }
        match std::fs::remove_dir_all(data) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
            _ => {}
        }
        if keep {
            std::fs::create_dir_all(data)?;
            std::fs::rename(&kept, &journal).context("restoring the payout journal")?;
        }
        Ok(())
    }

    /// The last lines of a node's log, for failure reports.
    pub fn log_tail(&self, index: usize, lines: usize) -> String {
        tail(&self.nodes[index].log, lines)
    }

    /// Node and bank pids for `scripts/chaos.sh`'s exit trap, in case this driver is
    /// killed before it can clean up itself.
    fn write_pids(&self) {
        let pids: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|node| node.child.as_ref())
            .chain(self.bank.child.as_ref())
            .map(|child| child.id().to_string())
            .chain(self.anvil.pid().map(|pid| pid.to_string()))
            .collect();
        let _ = std::fs::write(self.dir.join("pids"), pids.join("\n") + "\n");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            // A stopped process still dies of SIGKILL; SIGCONT first is harmless.
            let _ = self.signal_pause(index, false);
            self.kill(index);
        }
        self.kill_bank();
        if let Some(namespaces) = &self.namespaces {
            namespaces.destroy(self.nodes.len());
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The exchanges that move fiat through the bank during the run (every validator audits
/// every trust account, so any member could; these two keep the workload as it was);
/// the `bench-*` exchanges get their yen from fills, which the bank mirrors.
pub const FIAT_MEMBERS: [&str; 2] = ["exchange-a", "exchange-b"];

/// The members the run funds and signs for: the two exchange validators and the
/// `bench-*` members.
pub fn funded_members(extra: u32) -> Vec<String> {
    let mut members = vec!["exchange-a".to_string(), "exchange-b".to_string()];
    members.extend((0..extra).map(|index| format!("bench-{index}")));
    members
}

/// Adds the public chain to `genesis`: anvil's chain id, the hot and cold wallets, the
/// exchanges' registered addresses and the WBTC token.
fn add_public_chain(genesis: &mut Genesis, token: &str) {
    let address = |text: &str| ChainAddress(text.to_string());
    genesis.public_chain = Some(PublicChainSettings {
        chain_id: chain::CHAIN_ID,
        confirmations: CONFIRMATIONS,
        hot_address: address(chain::HOT_ADDRESS),
        cold_address: address(chain::COLD_ADDRESS),
        registered_addresses: chain::REGISTERED
            .iter()
            .map(|(member, registered)| RegisteredAddress {
                member: member.to_string(),
                address: address(registered),
            })
            .collect(),
        hot_cap_bps: HOT_CAP_BPS,
    });
    genesis.assets.push(Asset {
        symbol: chain::TOKEN_SYMBOL.into(),
        kind: AssetKind::Token,
        scale: 8,
        contract: Some(token.to_string()),
    });
}

/// The genesis ledger's liabilities in `symbol` (the sum of its opening balances), in
/// minor units.
pub fn opening_total(genesis: &Genesis, symbol: &str) -> anyhow::Result<u128> {
    let (_, asset) = genesis
        .asset_by_symbol(symbol)
        .with_context(|| format!("genesis has no {symbol}"))?;
    genesis
        .opening_balances
        .iter()
        .filter(|opening| opening.asset == symbol)
        .try_fold(0u128, |sum, opening| {
            let amount: Amount = asset.parse_amount(&opening.amount)?;
            sum.checked_add(amount.0)
                .context("opening balances overflow")
        })
}

/// Sets the hot wallet to its cap share of the genesis ETH liabilities plus the gas
/// buffer and the cold wallet to the rest (neither holds WBTC: the ledger opens none),
/// then waits for a block, so balances read at the returned block are the start.
fn open_custody(chain: &chain::Chain, genesis: &Genesis) -> anyhow::Result<u64> {
    let liabilities = opening_total(genesis, chain::NATIVE_SYMBOL)?;
    let hot_share = liabilities / 10_000 * u128::from(HOT_CAP_BPS);
    chain.set_balance(chain::HOT_ADDRESS, hot_share + GAS_BUFFER_WEI)?;
    chain.set_balance(chain::COLD_ADDRESS, liabilities - hot_share)?;
    let set_at = chain.block_number()?;
    seisan_tests::wait_until(std::time::Duration::from_secs(30), || {
        Ok(chain.block_number()? > set_at)
    })?;
    let start = chain.block_number()?;
    let custody = chain.balance(chain::HOT_ADDRESS, chain::NATIVE_SYMBOL, start)?
        + chain.balance(chain::COLD_ADDRESS, chain::NATIVE_SYMBOL, start)?;
    assert_eq!(
        custody,
        liabilities + GAS_BUFFER_WEI,
        "anvil holds what the chaos run set"
    );
    Ok(start)
}

/// Writes a wallet key or token file that only its owner can read (the node refuses
/// others).
fn write_key(dir: &Path, name: &str, key: &str) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    writeln!(file, "{key}")?;
    Ok(path)
}
