//! Test harness: starts real `seisan node` processes on free loopback ports with a
//! fresh testnet genesis, and talks to them over their HTTP API, as a user would.

use anyhow::{anyhow, bail, Context};
use seisan_api::v1;
use seisan_crypto::Keypair;
use seisan_types::genesis::{Genesis, Member, Role};
use seisan_types::hash::Hash;
use seisan_types::ids::{MemberId, Nonce};
use seisan_types::receipt::Receipt;
use seisan_types::tx::{SignedTransaction, Transaction, TxBody};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a condition may take on a loaded 2-core machine before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// The `seisan` binary next to the test executable (cargo builds it for the workspace),
/// or `SEISAN_BIN`. The one next to the tests must be a test build: the tests inject
/// faults (`--fault`, the bank watcher's crash file) that exist only with the
/// `test-hooks` feature (`cargo build -p seisan-node --features test-hooks`, as
/// scripts/test.sh does); a featureless binary is refused here with that command.
pub fn seisan_binary() -> PathBuf {
    if let Ok(path) = std::env::var("SEISAN_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let binary = dir.join("seisan");
    static HOOKED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let hooked = *HOOKED.get_or_init(|| {
        std::process::Command::new(&binary)
            .args(["node", "--help"])
            .output()
            .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains("--fault"))
    });
    assert!(
        hooked,
        "{} is not a test build (no --fault): run `cargo build -p seisan-node --features test-hooks` first",
        binary.display()
    );
    binary
}

/// The lowest port the harness hands out. Ports are taken below the kernel's
/// ephemeral range (`net.ipv4.ip_local_port_range`, 32768 by default): a port from
/// that range can be taken between a node's kill and its restart by any outgoing
/// connection on the machine, including a peer's redial of that very address, which
/// Linux may complete as a TCP self-connect (source port = destination port), so a
/// restarted node found its p2p port "already in use".
const LOWEST_PORT: u16 = 20_000;

/// The first port of the kernel's ephemeral range (32768 if it cannot be read).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A candidate port below the ephemeral range, spread by process id, time and a
/// counter so concurrent test processes rarely try the same one.
fn candidate_port(attempt: u64) -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let high = ephemeral_low().max(LOWEST_PORT + 2_000);
    let span = u64::from(high - LOWEST_PORT - 64);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos() as u64);
    let mix = u64::from(std::process::id())
        .wrapping_mul(7_919)
        .wrapping_add(nanos)
        .wrapping_add(
            COUNTER
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(104_729),
        )
        .wrapping_add(attempt.wrapping_mul(6_271));
    LOWEST_PORT + (mix % span) as u16
}

/// Every port [`free_port`] and [`free_port_run`] handed out in this process.
static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A port nobody listens on right now, below the ephemeral range, and never one this
/// process was given before: a testnet picks its nodes' ports before any of them binds,
/// and two nodes once drew the same one (exchange-a could not bind its HTTP API).
pub fn free_port() -> u16 {
    for attempt in 0..1_000 {
        let port = candidate_port(attempt);
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && GIVEN.lock().expect("ports given").insert(port)
        {
            return port;
        }
    }
    panic!("no free port below the ephemeral range");
}

/// `count` consecutive free ports, for the genesis p2p addresses.
pub fn free_port_run(count: u16) -> u16 {
    for _ in 0..200 {
        let base = free_port();
        let mut given = GIVEN.lock().expect("ports given");
        if (1..count).all(|offset| {
            !given.contains(&(base + offset))
                && TcpListener::bind(("127.0.0.1", base + offset)).is_ok()
        }) {
            given.extend((1..count).map(|offset| base + offset));
            return base;
        }
    }
    panic!("no run of {count} free ports");
}

/// One node process.
#[derive(Debug)]
pub struct NodeProcess {
    pub name: String,
    pub http_port: u16,
    pub data: PathBuf,
    pub log: PathBuf,
    /// Extra flags passed to `seisan node` at each launch (e.g. the bank's URL).
    pub extra_args: Vec<String>,
    child: Option<Child>,
}

impl NodeProcess {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => child
                .try_wait()
                .map(|status| status.is_none())
                .unwrap_or(false),
            None => false,
        }
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A local testnet in a temporary directory.
#[derive(Debug)]
pub struct Testnet {
    pub dir: tempfile::TempDir,
    pub genesis: Genesis,
    pub nodes: Vec<NodeProcess>,
    /// Flags every node is launched with, before its own `extra_args`:
    /// [`GROWING_CHAIN_ARGS`] unless a test clears them.
    pub node_args: Vec<String>,
}

/// Most of these tests use the chain's growth as their clock ("wait until the chain is
/// three blocks further"): their nodes propose every empty block, as nodes did before
/// an idle chain stopped growing (`--idle-block-interval-ms 0`, two blocks a second).
/// tests/node.rs's idle-chain test clears them and runs the default, a heartbeat every
/// 10 s, as does the benchmark's one-validator-down step.
pub const GROWING_CHAIN_ARGS: [&str; 2] = ["--idle-block-interval-ms", "0"];

impl Testnet {
    /// Writes a testnet genesis (plus `extra` non-validating exchange members) and
    /// starts the three validators.
    pub fn start(extra: u32) -> anyhow::Result<Testnet> {
        Testnet::start_with(extra, |_| {})
    }

    /// Like [`Testnet::start`], letting the test change the genesis first (e.g. opening
    /// balances).
    pub fn start_with(extra: u32, customize: impl FnOnce(&mut Genesis)) -> anyhow::Result<Testnet> {
        Testnet::start_sized(3, None, extra, customize)
    }

    /// A testnet of `validators` validators (`genesis testnet --validators`: the clearing
    /// house, exchange-a, exchange-b, exchange-c, ...) with `quorum` (default: the
    /// smallest q with 2q > n), all started; `customize` may change the genesis first.
    pub fn start_sized(
        validators: usize,
        quorum: Option<u32>,
        extra: u32,
        customize: impl FnOnce(&mut Genesis),
    ) -> anyhow::Result<Testnet> {
        // `SEISAN_E2E_KEEP=1` keeps the directory (genesis, data, every node's whole log)
        // for a post-mortem; its path is printed.
        let keep = std::env::var_os("SEISAN_E2E_KEEP").is_some();
        let dir = tempfile::Builder::new()
            .prefix("seisan-e2e")
            .disable_cleanup(keep)
            .tempdir()?;
        if keep {
            eprintln!("seisan-e2e: keeping {}", dir.path().display());
        }
        let base = free_port_run(validators as u16);
        let mut generate = Command::new(seisan_binary());
        generate
            .args(["genesis", "testnet", "--out"])
            .arg(dir.path())
            .args([
                "--p2p-base-port",
                &base.to_string(),
                "--extra-exchanges",
                &extra.to_string(),
                "--validators",
                &validators.to_string(),
            ]);
        if let Some(quorum) = quorum {
            generate.args(["--quorum", &quorum.to_string()]);
        }
        let generated = generate
            .stdout(Stdio::null())
            .status()
            .context("running seisan genesis testnet")?;
        if !generated.success() {
            bail!("seisan genesis testnet failed");
        }
        let text = std::fs::read_to_string(dir.path().join("genesis.json"))?;
        let mut genesis = Genesis::from_json(&text)?;
        customize(&mut genesis);
        genesis.validate()?;
        std::fs::write(dir.path().join("genesis.json"), genesis.to_json())?;
        let mut testnet = Testnet {
            dir,
            genesis,
            nodes: Vec::new(),
            node_args: GROWING_CHAIN_ARGS
                .iter()
                .map(|arg| arg.to_string())
                .collect(),
        };
        let names: Vec<String> = testnet
            .genesis
            .members
            .iter()
            .filter(|member| member.validator)
            .take(validators)
            .map(|member| member.name.clone())
            .collect();
        for member in names {
            let node = NodeProcess {
                name: member.clone(),
                http_port: free_port(),
                data: testnet.dir.path().join("data").join(&member),
                log: testnet.dir.path().join(format!("{member}.log")),
                extra_args: Vec::new(),
                child: None,
            };
            testnet.nodes.push(node);
        }
        for index in 0..testnet.nodes.len() {
            testnet.launch(index)?;
        }
        for node in &testnet.nodes {
            let url = node.url();
            wait_until(PATIENCE, || Ok(status(&url).is_ok()))
                .with_context(|| format!("{} never answered", node.name))?;
        }
        testnet.wait_in_sync(&(0..testnet.nodes.len()).collect::<Vec<_>>())?;
        Ok(testnet)
    }

    pub fn genesis_path(&self) -> PathBuf {
        self.dir.path().join("genesis.json")
    }

    pub fn key_path(&self, member: &str) -> PathBuf {
        self.dir.path().join("keys").join(format!("{member}.key"))
    }

    /// Starts (or restarts) node `index` on its data directory.
    pub fn launch(&mut self, index: usize) -> anyhow::Result<()> {
        let genesis = self.genesis_path();
        let key = self.key_path(&self.nodes[index].name);
        let node_args = self.node_args.clone();
        let node = &mut self.nodes[index];
        node.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let child = Command::new(seisan_binary())
            .arg("node")
            .arg("--genesis")
            .arg(&genesis)
            .arg("--key")
            .arg(&key)
            .arg("--data")
            .arg(&node.data)
            .args(["--http", &format!("127.0.0.1:{}", node.http_port)])
            .args(&node_args)
            .args(&node.extra_args)
            .env("RUST_LOG", "info,libp2p=warn,libp2p_gossipsub=error")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting seisan node")?;
        node.child = Some(child);
        Ok(())
    }

    /// Starts a node for genesis member `member` besides the three validators
    /// [`Testnet::start_with`] starts (e.g. a validator added with
    /// [`extra_validator`]), writing its dev key first if `genesis testnet` did not, and
    /// waits until it answers; returns its index in `nodes`.
    pub fn add_node(&mut self, member: &str) -> anyhow::Result<usize> {
        anyhow::ensure!(
            self.genesis.member_by_name(member).is_some(),
            "{member} is not a member of this testnet's genesis"
        );
        let key = self.key_path(member);
        if !key.exists() {
            seisan_crypto::keyfile::write_key_file(&key, &Keypair::dev(member))
                .with_context(|| format!("writing {}", key.display()))?;
        }
        self.nodes.push(NodeProcess {
            name: member.to_string(),
            http_port: free_port(),
            data: self.dir.path().join("data").join(member),
            log: self.dir.path().join(format!("{member}.log")),
            extra_args: Vec::new(),
            child: None,
        });
        let index = self.nodes.len() - 1;
        self.launch(index)?;
        let url = self.nodes[index].url();
        wait_until(PATIENCE, || Ok(status(&url).is_ok()))
            .with_context(|| format!("{member} never answered"))?;
        Ok(index)
    }

    /// Starts a node for a member the genesis file does not know (one the consortium
    /// adds on the live chain, issue 15): its key is written under `keys/`, it gets the
    /// original genesis file and listens on `p2p_address` (the address its `AddMember`
    /// names). Waits until it answers; returns its index in `nodes`.
    pub fn add_joining_node(
        &mut self,
        member: &str,
        keypair: &Keypair,
        p2p_address: &str,
    ) -> anyhow::Result<usize> {
        self.add_joining_node_with(member, keypair, p2p_address, Vec::new())
    }

    /// [`Testnet::add_joining_node`] with `extra_args` passed to `seisan node` at every
    /// launch besides `--listen` (e.g. the bank's URL and this member's tokens).
    pub fn add_joining_node_with(
        &mut self,
        member: &str,
        keypair: &Keypair,
        p2p_address: &str,
        extra_args: Vec<String>,
    ) -> anyhow::Result<usize> {
        let key = self.key_path(member);
        seisan_crypto::keyfile::write_key_file(&key, keypair)
            .with_context(|| format!("writing {}", key.display()))?;
        self.nodes.push(NodeProcess {
            name: member.to_string(),
            http_port: free_port(),
            data: self.dir.path().join("data").join(member),
            log: self.dir.path().join(format!("{member}.log")),
            extra_args: [vec!["--listen".into(), p2p_address.into()], extra_args].concat(),
            child: None,
        });
        let index = self.nodes.len() - 1;
        self.launch(index)?;
        let url = self.nodes[index].url();
        wait_until(PATIENCE, || Ok(status(&url).is_ok()))
            .with_context(|| format!("{member} never answered"))?;
        Ok(index)
    }

    /// Waits until each of `indexes` answers and says it is not syncing (it has heard
    /// enough validators and lacks no finalized block it knows of), as a client that
    /// wants to submit would.
    pub fn wait_in_sync(&self, indexes: &[usize]) -> anyhow::Result<()> {
        for &index in indexes {
            let url = self.nodes[index].url();
            wait_until(PATIENCE, || {
                Ok(status(&url).is_ok_and(|status| !status.syncing))
            })
            .with_context(|| format!("{} never reported syncing: false", self.nodes[index].name))?;
        }
        Ok(())
    }

    /// Wipes node `index`'s data directory (it must be stopped).
    pub fn wipe(&mut self, index: usize) -> anyhow::Result<()> {
        self.nodes[index].kill();
        std::fs::remove_dir_all(&self.nodes[index].data).or_else(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(error)
            }
        })?;
        Ok(())
    }

    /// The flags that connect `member`'s node to the bank at `bank_url`: its dev token
    /// and, with `auditor`, its validator's read-only auditor token, each in a file of
    /// mode 0600 under `tokens/` (a token is never a command-line argument).
    pub fn bank_flags(&self, bank_url: &str, member: &str, auditor: bool) -> Vec<String> {
        bank_flags(self.dir.path(), bank_url, member, auditor)
    }

    /// Panics if any log in the test's directory (every node's and the bank's) holds a
    /// member's secret key (the hex of each key file's `secret_key`), a bank token of a
    /// file under `tokens/`, or any of `more`.
    pub fn assert_no_secrets_in_logs(&self, more: &[String]) {
        let dir = self.dir.path();
        let mut secrets: Vec<String> = more.to_vec();
        let files = |sub: &str| {
            std::fs::read_dir(dir.join(sub))
                .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
                .unwrap_or_else(|_| Vec::new())
        };
        for path in files("keys") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if let Ok(key) = serde_json::from_str::<Value>(&text) {
                if let Some(secret) = key["secret_key"].as_str() {
                    secrets.push(secret.trim_start_matches("0x").to_string());
                }
            }
        }
        for path in files("tokens") {
            secrets.push(
                std::fs::read_to_string(&path)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            );
        }
        secrets.retain(|secret| !secret.is_empty());
        assert!(
            secrets.len() >= self.nodes.len(),
            "only {} secrets found under {}",
            secrets.len(),
            dir.display()
        );
        let logs: Vec<PathBuf> = files("")
            .into_iter()
            .filter(|path: &PathBuf| path.extension().is_some_and(|extension| extension == "log"))
            .collect();
        assert!(
            logs.len() >= self.nodes.len(),
            "no node logs in {}",
            dir.display()
        );
        for log in logs {
            let text = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .to_ascii_lowercase();
            assert!(!text.is_empty(), "{} is empty", log.display());
            for secret in &secrets {
                assert!(
                    !text.contains(&secret.to_ascii_lowercase()),
                    "{} shows a secret ({}…)",
                    log.display(),
                    &secret[..secret.len().min(6)]
                );
            }
        }
    }

    /// The last lines of a node's log, for failure messages.
    /// How long node `index`'s log is now, for [`Testnet::log_since`].
    pub fn log_len(&self, index: usize) -> usize {
        std::fs::metadata(&self.nodes[index].log).map_or(0, |meta| meta.len() as usize)
    }

    /// What node `index` logged after the first `from` bytes of its log.
    pub fn log_since(&self, index: usize, from: usize) -> String {
        let text = std::fs::read_to_string(&self.nodes[index].log).unwrap_or_default();
        text.get(from..).unwrap_or_default().to_string()
    }

    pub fn log_tail(&self, index: usize) -> String {
        let text = std::fs::read_to_string(&self.nodes[index].log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits until every node in `indexes` reports a height of at least `height`.
    pub fn wait_for_height(&self, indexes: &[usize], height: u64) -> anyhow::Result<()> {
        wait_until(PATIENCE, || {
            Ok(indexes.iter().all(|index| {
                status(&self.nodes[*index].url()).is_ok_and(|status| status.height >= height)
            }))
        })
        .with_context(|| format!("waiting for nodes {indexes:?} to reach height {height}"))
    }

    /// The highest height any of `indexes` answers with within [`STATUS_TIMEOUT`].
    pub fn highest(&self, indexes: &[usize]) -> Option<u64> {
        indexes
            .iter()
            .filter_map(|index| node_height(&self.nodes[*index]))
            .max()
    }

    /// Starts node `index` again if its process has exited right after a (re)start
    /// because its port was taken for a moment ("cannot listen": another process's
    /// connection on a shared machine, not what a test is about); panics if it exited
    /// for any other reason, or kept failing to listen.
    pub fn relaunch_if_exited(&mut self, index: usize) {
        if self.nodes[index].is_running() {
            return;
        }
        let log = std::fs::read_to_string(&self.nodes[index].log).unwrap_or_default();
        let relaunches = log.matches("cannot listen").count();
        let last = log.lines().last().unwrap_or_default().to_string();
        assert!(
            last.contains("cannot listen") && relaunches <= MAX_RELAUNCHES,
            "{} exited after its restart:\n{}",
            self.nodes[index].name,
            self.log_tail(index)
        );
        println!(
            "harness: {} exited at once ({last}); starting it again",
            self.nodes[index].name
        );
        std::thread::sleep(Duration::from_millis(500));
        self.launch(index).expect("relaunching a node");
    }

    /// Asserts that every node of `indexes` holds the same block hash and state root at
    /// every height in `heights` (each node must hold them all).
    pub fn assert_same_blocks(&self, indexes: &[usize], heights: std::ops::RangeInclusive<u64>) {
        let Some((&first, rest)) = indexes.split_first() else {
            return;
        };
        for height in heights {
            let expected = block_root(&self.nodes[first].url(), height).unwrap_or_else(|error| {
                panic!("{} at height {height}: {error:#}", self.nodes[first].name)
            });
            for &index in rest {
                let held = block_root(&self.nodes[index].url(), height).unwrap_or_else(|error| {
                    panic!("{} at height {height}: {error:#}", self.nodes[index].name)
                });
                assert_eq!(
                    held, expected,
                    "{} and {} differ at height {height} (block hash, state root)",
                    self.nodes[index].name, self.nodes[first].name
                );
            }
        }
    }
}

/// How many times [`Testnet::relaunch_if_exited`] starts a node again that could not
/// listen before it gives up.
pub const MAX_RELAUNCHES: usize = 5;

/// How long one status poll of [`node_height`] may take (a node that does not answer in
/// time counts as not answering).
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(1);

/// A node's height, if it answers within [`STATUS_TIMEOUT`].
pub fn node_height(node: &NodeProcess) -> Option<u64> {
    let url = format!("{}/v1/status", node.url());
    match get_within(&url, STATUS_TIMEOUT) {
        Ok((200, body)) => Some(parse::<v1::NodeStatus>("GET", &url, body).height),
        _ => None,
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for index in 0..self.nodes.len() {
                eprintln!(
                    "---- last lines of {} ----\n{}",
                    self.nodes[index].name,
                    self.log_tail(index)
                );
            }
        }
    }
}

/// A validating exchange member named `name` with its dev key and a free loopback
/// p2p port, for a [`Testnet::start_with`] customization that grows the validator set
/// (raise `quorum` with it); start its node with [`Testnet::add_node`].
pub fn extra_validator(name: &str) -> Member {
    Member {
        name: name.to_string(),
        role: Role::Exchange,
        public_key: Keypair::dev(name).public_key(),
        validator: true,
        p2p_address: Some(format!("/ip4/127.0.0.1/tcp/{}", free_port())),
    }
}

/// Polls `condition` until it holds or `timeout` passes.
pub fn wait_until(
    timeout: Duration,
    mut condition: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    while Instant::now() < deadline {
        match condition() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(error) => last_error = Some(error),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(anyhow!(
        "condition not met within {timeout:?} (last error: {last_error:?})"
    ))
}

/// How long one request of [`get`], [`post_raw`] and [`post_json`] may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The CA certificate the harness's requests trust for https:// URLs ([`trust_ca`]).
static TRUSTED_CA: std::sync::OnceLock<ureq::tls::TlsConfig> = std::sync::OnceLock::new();

/// Makes every request of the harness (`get`, `post_json`, `submit`, `status`, ...)
/// trust the CA in `ca` (PEM) for https:// URLs, e.g. a TLS testnet's `tls/ca.pem`;
/// once per test process.
pub fn trust_ca(ca: &Path) -> anyhow::Result<()> {
    let tls = seisan_tls::client_tls(Some(ca))?;
    anyhow::ensure!(
        TRUSTED_CA.set(tls).is_ok(),
        "the harness already trusts a CA"
    );
    Ok(())
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .tls_config(TRUSTED_CA.get().cloned().unwrap_or_default())
        .build()
        .into()
}

/// Who the harness's requests are signed as unless a test says otherwise: the clearing
/// house (an operator, which reads every endpoint), by its dev key, which every
/// harness testnet uses.
pub fn operator() -> Keypair {
    Keypair::dev("clearing-house")
}

/// The path and query of `url` (what a request signature covers).
fn path_and_query(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    url[after_scheme..]
        .find('/')
        .map_or("/", |at| &url[after_scheme + at..])
}

/// The headers that authenticate a request as `keypair`'s member.
pub fn auth_headers(
    keypair: &Keypair,
    method: &str,
    url: &str,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    seisan_api::Credentials::new(keypair.clone()).sign_request(
        method,
        path_and_query(url),
        now,
        body,
    )
}

/// GET a JSON document as the clearing house; returns (status code, body).
pub fn get(url: &str) -> anyhow::Result<(u16, Value)> {
    get_within(url, REQUEST_TIMEOUT)
}

/// [`get`] that gives up after `timeout` (a caller polling paused or partitioned nodes
/// wants less than [`REQUEST_TIMEOUT`]).
pub fn get_within(url: &str, timeout: Duration) -> anyhow::Result<(u16, Value)> {
    get_with(&agent(timeout), url)
}

/// [`get`] through `agent` (e.g. one that keeps its connections open).
pub fn get_with(agent: &ureq::Agent, url: &str) -> anyhow::Result<(u16, Value)> {
    get_as_with(agent, Some(&operator()), url)
}

/// GET as `keypair`'s member (`None`: anonymously).
pub fn get_as(keypair: Option<&Keypair>, url: &str) -> anyhow::Result<(u16, Value)> {
    get_as_with(&agent(REQUEST_TIMEOUT), keypair, url)
}

/// Reads `body`, the answer to `method url`, as the published type `T`; panics naming
/// the URL and serde's message if it is not one (the server's answer disagrees with
/// the type every client reads it as).
pub fn parse<T: DeserializeOwned>(method: &str, url: &str, body: Value) -> T {
    let shown = body.to_string();
    serde_json::from_value(body).unwrap_or_else(|error| {
        panic!(
            "{method} {url}: the answer is no {}: {error}\n{shown}",
            std::any::type_name::<T>()
        )
    })
}

/// An answer read as the published types: a 2xx body as `T`, any other as the
/// [`v1::ErrorBody`] every refusal carries.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply<T> {
    pub code: u16,
    pub body: Result<T, v1::ErrorBody>,
}

impl<T> Reply<T> {
    /// Reads `body`, the answer to `method url` with status `code`; panics if it is
    /// not of the type its status says.
    pub fn read(method: &str, url: &str, code: u16, body: Value) -> Reply<T>
    where
        T: DeserializeOwned,
    {
        let body = if (200..300).contains(&code) {
            Ok(parse(method, url, body))
        } else {
            Err(parse(method, url, body))
        };
        Reply { code, body }
    }

    /// The refusal's error code; `None` for a 2xx answer.
    pub fn error_code(&self) -> Option<&str> {
        self.body
            .as_ref()
            .err()
            .map(|body| body.error.code.as_str())
    }

    /// The refusal's message; `None` for a 2xx answer.
    pub fn error_message(&self) -> Option<&str> {
        self.body
            .as_ref()
            .err()
            .map(|body| body.error.message.as_str())
    }

    /// The body of a 2xx answer; panics with the refusal otherwise.
    pub fn ok(self) -> T
    where
        T: std::fmt::Debug,
    {
        match self.body {
            Ok(body) => body,
            Err(error) => panic!("refused with {}: {error:?}", self.code),
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Display for Reply<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.body {
            Ok(body) => write!(f, "{} {body:?}", self.code),
            Err(error) => write!(
                f,
                "{} {}: {}",
                self.code, error.error.code, error.error.message
            ),
        }
    }
}

/// GET as the clearing house, read as the published types (see [`Reply`]).
pub fn get_reply<T: DeserializeOwned>(url: &str) -> anyhow::Result<Reply<T>> {
    get_reply_as(Some(&operator()), url)
}

/// GET as `keypair`'s member (`None`: anonymously), read as the published types.
pub fn get_reply_as<T: DeserializeOwned>(
    keypair: Option<&Keypair>,
    url: &str,
) -> anyhow::Result<Reply<T>> {
    let (code, body) = get_as(keypair, url)?;
    Ok(Reply::read("GET", url, code, body))
}

/// GET as the clearing house and read the answer as `T`: an error if the request
/// fails or the answer is not 200 (for polling); panics if a 200 answer is no `T`.
pub fn try_get_typed<T: DeserializeOwned>(url: &str) -> anyhow::Result<T> {
    try_get_typed_as(Some(&operator()), url)
}

/// [`try_get_typed`] as `keypair`'s member (`None`: anonymously).
pub fn try_get_typed_as<T: DeserializeOwned>(
    keypair: Option<&Keypair>,
    url: &str,
) -> anyhow::Result<T> {
    let (code, body) = get_as(keypair, url).with_context(|| format!("GET {url}"))?;
    if code != 200 {
        bail!("GET {url} answered {code}: {body}");
    }
    Ok(parse("GET", url, body))
}

/// GET as the clearing house, expecting 200, and read the answer as `T`; panics
/// otherwise, naming the URL.
pub fn get_typed<T: DeserializeOwned>(url: &str) -> T {
    try_get_typed(url).unwrap_or_else(|error| panic!("{error:#}"))
}

/// [`get_typed`] as `keypair`'s member (`None`: anonymously).
pub fn get_typed_as<T: DeserializeOwned>(keypair: Option<&Keypair>, url: &str) -> T {
    try_get_typed_as(keypair, url).unwrap_or_else(|error| panic!("{error:#}"))
}

fn get_as_with(
    agent: &ureq::Agent,
    keypair: Option<&Keypair>,
    url: &str,
) -> anyhow::Result<(u16, Value)> {
    let mut request = agent.get(url);
    if let Some(keypair) = keypair {
        for (name, value) in auth_headers(keypair, "GET", url, b"") {
            request = request.header(name, value);
        }
    }
    let mut response = request.call()?;
    let code = response.status().as_u16();
    let body = response
        .body_mut()
        .read_json::<Value>()
        .unwrap_or(Value::Null);
    Ok((code, body))
}

/// POST raw bytes with a content type; returns (status code, body).
pub fn post_raw(url: &str, content_type: &str, body: &[u8]) -> anyhow::Result<(u16, Value)> {
    post_raw_within(url, content_type, body, REQUEST_TIMEOUT)
}

/// [`post_raw`] that gives up after `timeout`.
pub fn post_raw_within(
    url: &str,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
) -> anyhow::Result<(u16, Value)> {
    let mut request = agent(timeout)
        .post(url)
        .header("content-type", content_type);
    for (name, value) in auth_headers(&operator(), "POST", url, body) {
        request = request.header(name, value);
    }
    let mut response = request.send(body)?;
    let code = response.status().as_u16();
    let body = response
        .body_mut()
        .read_json::<Value>()
        .unwrap_or(Value::Null);
    Ok((code, body))
}

/// POST a JSON value.
pub fn post_json(url: &str, value: &Value) -> anyhow::Result<(u16, Value)> {
    post_raw(url, "application/json", value.to_string().as_bytes())
}

/// `GET /v1/status`: an error if the node does not answer 200; panics if its answer
/// is no [`v1::NodeStatus`].
pub fn status(node_url: &str) -> anyhow::Result<v1::NodeStatus> {
    try_get_typed(&format!("{node_url}/v1/status"))
}

/// The block hash and state root a node reports at `height`.
pub fn block_root(node_url: &str, height: u64) -> anyhow::Result<(Hash, Hash)> {
    let block: v1::BlockDocument = try_get_typed(&format!("{node_url}/v1/blocks/{height}"))
        .with_context(|| format!("block {height} on {node_url}"))?;
    Ok((block.hash, block.block.header.state_root))
}

/// A member's balances at the node's committed tip, read as the clearing house.
pub fn balances(node_url: &str, member: &str) -> v1::Balances {
    get_typed(&format!("{node_url}/v1/members/{member}/balances"))
}

/// The balance of the asset `symbol` in `balances`, if the member holds it.
pub fn balance_of<'a>(
    balances: &'a v1::Balances,
    symbol: &str,
) -> Option<&'a seisan_types::clearing::Balance> {
    balances
        .balances
        .iter()
        .find(|entry| entry.symbol == symbol)
        .map(|entry| &entry.balance)
}

/// The receipt in a transaction's status; panics if there is none (it is pending).
pub fn receipt(status: &v1::TransactionStatus) -> &Receipt {
    status
        .receipt
        .as_ref()
        .unwrap_or_else(|| panic!("transaction {} has no receipt: {status:?}", status.id))
}

/// What `pick` takes from the first event of `kind` in a finalized transaction's
/// receipt; panics if there is none.
pub fn event<T>(
    status: &v1::TransactionStatus,
    kind: &str,
    pick: impl Fn(&seisan_types::receipt::Event) -> Option<T>,
) -> T {
    receipt(status)
        .events
        .iter()
        .find_map(pick)
        .unwrap_or_else(|| panic!("no {kind} event in {status:?}"))
}

/// Whether a finalized transaction's receipt says it was applied.
/// The value of `field=` on the first line of `log` that contains `message` (a node's
/// human-format log line), up to the next space.
pub fn log_field(log: &str, message: &str, field: &str) -> Option<String> {
    let line = log.lines().find(|line| line.contains(message))?;
    let after = line.split(&format!(" {field}=")).nth(1)?;
    Some(
        after
            .split_whitespace()
            .next()?
            .trim_matches('"')
            .to_string(),
    )
}

pub fn applied(status: &v1::TransactionStatus) -> bool {
    status.receipt.as_ref().is_some_and(Receipt::is_applied)
}

/// Signs a transaction with a member's dev key.
pub fn sign(genesis: &Genesis, member: &str, nonce: u64, body: TxBody) -> SignedTransaction {
    let (id, _) = genesis.member_by_name(member).expect("member in genesis");
    seisan_crypto::sign_transaction(
        &Keypair::dev(member),
        &genesis.hash(),
        Transaction {
            chain_id: genesis.chain_id.clone(),
            member: MemberId(id.0),
            nonce: Nonce(nonce),
            body,
        },
    )
}

/// How long [`submit`] sends a transaction again while the node answers 409 `nonce_gap`.
pub const NONCE_GAP_PATIENCE: Duration = Duration::from_secs(5);

/// Submits a signed transaction; returns the answer read as the published types (a
/// [`v1::TransactionStatus`], or the [`v1::ErrorBody`] of a refusal), panicking if it
/// is neither. Retries as [`submit_raw`] does.
pub fn submit(
    node_url: &str,
    transaction: &SignedTransaction,
) -> anyhow::Result<Reply<v1::TransactionStatus>> {
    let (code, body) = submit_raw(node_url, transaction)?;
    Ok(Reply::read(
        "POST",
        &format!("{node_url}/v1/transactions"),
        code,
        body,
    ))
}

/// Submits a signed transaction; returns (status code, body) as raw JSON. While the node answers
/// 503 `syncing` (it is catching up, or has just started) it waits and submits again,
/// as a client honouring `Retry-After` would, for at most [`PATIENCE`]; while it answers
/// 409 `nonce_gap`, for at most [`NONCE_GAP_PATIENCE`] (the predecessor was sent to
/// another node and is on its way by gossip).
pub fn submit_raw(node_url: &str, transaction: &SignedTransaction) -> anyhow::Result<(u16, Value)> {
    let started = std::time::Instant::now();
    loop {
        let answer = post_json(
            &format!("{node_url}/v1/transactions"),
            &serde_json::to_value(transaction)?,
        )?;
        // A refusal's code, if the body is the error body every refusal carries.
        let refusal = serde_json::from_value::<v1::ErrorBody>(answer.1.clone()).ok();
        let refused = |code: &str| refusal.as_ref().is_some_and(|body| body.error.code == code);
        let syncing = answer.0 == 503 && refused("syncing");
        // A nonce whose predecessor was sent to another node is refused (409
        // `nonce_gap`) until gossip brings the predecessor here, milliseconds later;
        // a client sending a member's run of nonces to several nodes sends it again.
        let ahead =
            answer.0 == 409 && refused("nonce_gap") && started.elapsed() < NONCE_GAP_PATIENCE;
        if ahead {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        if !syncing || started.elapsed() > PATIENCE {
            return Ok(answer);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The metric `name`'s value in `/metrics` of `node` (`name` with its labels, as the
/// line shows them: `seisan_proposals_total{kind="heartbeat"}`).
pub fn metric(node: &str, name: &str) -> anyhow::Result<Option<f64>> {
    let mut response = ureq::get(&format!("{node}/metrics")).call()?;
    let text = response.body_mut().read_to_string()?;
    Ok(text
        .lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok()))
}

/// Waits until a transaction is finalized on a node; returns its status document.
pub fn wait_finalized(node_url: &str, id: &Hash) -> anyhow::Result<v1::TransactionStatus> {
    let mut found = None;
    let url = format!("{node_url}/v1/transactions/{id}");
    wait_until(PATIENCE, || {
        let (code, body) = get(&url)?;
        if code == 200 {
            let status: v1::TransactionStatus = parse("GET", &url, body);
            if status.status == v1::TxState::Finalized {
                found = Some(status);
                return Ok(true);
            }
        }
        Ok(false)
    })
    .with_context(|| format!("waiting for transaction {id} to be finalized on {node_url}"))?;
    Ok(found.expect("found when the wait succeeded"))
}

/// Opens `amount` JPY for each of `members` (a [`Testnet::start_with`] customization).
pub fn fund_jpy(genesis: &mut Genesis, members: &[&str], amount: &str) {
    for member in members {
        genesis
            .opening_balances
            .push(seisan_types::genesis::OpeningBalance {
                member: (*member).into(),
                asset: "JPY".into(),
                amount: amount.into(),
            });
    }
}

/// Moves `amount` JPY minor units of the signer's inventory to its customer-1: the
/// cheapest transaction that changes state.
/// The JPY a member holds on the ledger (inventory, locked and its customers'), as
/// `node` reports it (read as the clearing house).
pub fn ledger_jpy(node: &str, member: &str) -> u128 {
    balance_of(&balances(node, member), "JPY")
        .map(|balance| balance.inventory.0 + balance.locked.0 + balance.customers.0)
        .unwrap_or(0)
}

/// One ETH in minor units (scale 18).
pub const ETH: u128 = 1_000_000_000_000_000_000;

/// The testnet's pair, ETH/JPY.
pub const ETH_JPY: seisan_types::clearing::Pair = seisan_types::clearing::Pair {
    base: seisan_types::ids::AssetId(0),
    quote: seisan_types::ids::AssetId(1),
};

/// A good-till-cancelled limit order for one ETH at `price_jpy` on ETH/JPY.
pub fn eth_order(side: seisan_types::clearing::Side, price_jpy: u128) -> TxBody {
    TxBody::PlaceOrder(seisan_types::clearing::OrderRequest {
        pair: ETH_JPY,
        side,
        quantity: seisan_types::amount::Amount(ETH),
        limit_price: seisan_types::amount::Amount(price_jpy),
        time_in_force: seisan_types::clearing::TimeInForce::GoodTillCancel,
        expires_at_ms: None,
    })
}

pub fn allocate(amount: u128) -> TxBody {
    use seisan_types::tx::{Allocation, AllocationDirection, CustomerId};
    TxBody::Allocate(Allocation {
        asset: seisan_types::ids::AssetId(1),
        customer: CustomerId("customer-1".into()),
        amount: seisan_types::amount::Amount(amount),
        direction: AllocationDirection::ToCustomer,
    })
}

/// The flags that connect `member`'s node to the bank at `bank_url` (see
/// [`Testnet::bank_flags`]), the token files written under `dir/tokens`.
pub fn bank_flags(dir: &Path, bank_url: &str, member: &str, auditor: bool) -> Vec<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).expect("tokens directory");
    let write = |name: String, token: String| -> String {
        let path = tokens.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .expect("token file");
        std::io::Write::write_all(&mut file, token.as_bytes()).expect("token file written");
        path.display().to_string()
    };
    let mut flags = vec![
        "--bank-url".to_string(),
        bank_url.to_string(),
        "--bank-token-file".to_string(),
        write(format!("{member}.token"), seisan_bank::dev_token(member)),
    ];
    if auditor {
        flags.push("--bank-auditor-token-file".to_string());
        flags.push(write(
            format!("{member}-auditor.token"),
            seisan_bank::dev_auditor_token(member),
        ));
    }
    flags
}

/// The embedded bank as its own process (`seisan bank run`); on drop it is continued
/// (if a test stopped it) and killed.
#[derive(Debug)]
pub struct BankProcess {
    child: Child,
}

impl BankProcess {
    /// Sends `signal` (e.g. `-STOP`, `-CONT`) to the bank process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill {signal} failed");
    }
}

impl Drop for BankProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `seisan bank init` into `<dir>/bank` (from `genesis`: a party per member and an
/// auditor per validator; without it, the default testnet parties) and `seisan bank
/// run` on `port`; waits until it answers.
pub fn start_bank(dir: &Path, genesis: Option<&Path>, port: u16) -> anyhow::Result<BankProcess> {
    let bank_dir = dir.join("bank");
    let mut init = Command::new(seisan_binary());
    init.args(["bank", "init", "--out"]).arg(&bank_dir);
    if let Some(genesis) = genesis {
        init.arg("--genesis").arg(genesis);
    }
    let status = init.stdout(Stdio::null()).status()?;
    anyhow::ensure!(status.success(), "seisan bank init failed");
    let log = std::fs::File::create(dir.join("bank.log"))?;
    let child = Command::new(seisan_binary())
        .args(["bank", "run", "--config"])
        .arg(bank_dir.join("bank.toml"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting seisan bank")?;
    let bank = BankProcess { child };
    let url = format!("http://127.0.0.1:{port}");
    wait_until(PATIENCE, || {
        Ok(get(&format!("{url}/v1/health")).is_ok_and(|(code, _)| code == 200))
    })?;
    Ok(bank)
}

/// Anvil's well-known dev accounts 0-5 (1 is the testnets' hot address, 2 the cold one).
pub const ANVIL_ACCOUNTS: [&str; 6] = [
    "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
    "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
    "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc",
    "0x90f79bf6eb2c4f870365e785982e1f101e93b906",
    "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65",
    "0x9965507d1a55bcc2695c58ba16fb37d819b0a4dc",
];
/// How long a transaction sent to anvil may take to be mined.
pub const ANVIL_PATIENCE: Duration = Duration::from_secs(150);

/// The repository root (the parent of `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// An anvil started by `scripts/anvil.sh` (with the WBTC token deployed), stopped on
/// drop.
#[derive(Debug)]
pub struct Anvil {
    dir: tempfile::TempDir,
    pub url: String,
    /// The WBTC token contract's address.
    pub token: String,
}

impl Anvil {
    pub fn start() -> anyhow::Result<Anvil> {
        let dir = tempfile::Builder::new().prefix("seisan-anvil").tempdir()?;
        let port = free_port();
        let status = Command::new(repo_root().join("scripts/anvil.sh"))
            .arg("start")
            .arg(dir.path())
            .env("ANVIL_PORT", port.to_string())
            .status()
            .context("running scripts/anvil.sh start")?;
        if !status.success() {
            bail!("scripts/anvil.sh start failed");
        }
        let chain: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("chain.json"))?)?;
        Ok(Anvil {
            url: format!("http://127.0.0.1:{port}"),
            token: chain["token"]
                .as_str()
                .context("chain.json names the token")?
                .into(),
            dir,
        })
    }

    pub fn rpc(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let (code, body) = post_json(
            &self.url,
            &json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
        )?;
        if code != 200 || body.get("error").is_some() {
            bail!("{method}: {code} {body}");
        }
        Ok(body["result"].clone())
    }

    /// Sends from an unlocked dev account; returns the transaction hash once mined.
    pub fn send(&self, from: usize, to: &str, value: u128, data: &str) -> anyhow::Result<String> {
        let hash = self.rpc(
            "eth_sendTransaction",
            json!([{"from": ANVIL_ACCOUNTS[from], "to": to, "value": format!("{value:#x}"), "data": data}]),
        )?;
        let hash = hash.as_str().context("a hash")?.to_string();
        wait_until(ANVIL_PATIENCE, || {
            Ok(!self
                .rpc("eth_getTransactionReceipt", json!([hash]))?
                .is_null())
        })?;
        Ok(hash)
    }

    pub fn send_token(&self, from: usize, to: usize, amount: u128) -> anyhow::Result<String> {
        let data = format!(
            "0xa9059cbb{:0>64}{amount:064x}",
            ANVIL_ACCOUNTS[to].trim_start_matches("0x")
        );
        self.send(from, &self.token.clone(), 0, &data)
    }

    /// Waits for a new block and a few seconds more: a payout the nodes were about to
    /// send would be on the chain by then.
    pub fn let_blocks_pass(&self) -> anyhow::Result<()> {
        let block = self.rpc("eth_blockNumber", json!([]))?;
        wait_until(ANVIL_PATIENCE, || {
            Ok(self.rpc("eth_blockNumber", json!([]))? != block)
        })?;
        std::thread::sleep(Duration::from_secs(3));
        Ok(())
    }

    pub fn eth_balance(&self, account: usize) -> anyhow::Result<u128> {
        let value = self.rpc("eth_getBalance", json!([ANVIL_ACCOUNTS[account], "latest"]))?;
        Ok(u128::from_str_radix(
            value.as_str().context("hex")?.trim_start_matches("0x"),
            16,
        )?)
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/anvil.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

#[cfg(test)]
mod tests {
    //! The typed reads fail loudly: an answer that is not the published type panics
    //! naming the request and serde's reason, so a test cannot pass on a drifted answer.
    use super::*;

    #[test]
    #[should_panic(expected = "GET http://node/v1/status: the answer is no seisan_api::v1::")]
    fn an_answer_that_is_not_the_published_type_panics_naming_the_url() {
        // A status without `height`: what a server whose answer drifted from the type
        // would send.
        let _: v1::NodeStatus = parse("GET", "http://node/v1/status", json!({"chain_id": "c"}));
    }

    #[test]
    fn a_deserialization_failure_names_serdes_message() {
        let caught = std::panic::catch_unwind(|| {
            let _: v1::Balances = parse(
                "GET",
                "http://node/v1/members/exchange-a/balances",
                json!({"member": 1, "height": 2, "balances": "none"}),
            );
        })
        .expect_err("a string is no list of balances");
        let message = caught
            .downcast_ref::<String>()
            .expect("a formatted panic message");
        assert!(message.contains("invalid type: string"), "{message}");
        assert!(
            message.contains("/v1/members/exchange-a/balances"),
            "{message}"
        );
    }

    #[test]
    fn a_refusal_reads_as_the_error_body_and_a_2xx_as_the_type() {
        let url = "http://node/v1/transactions";
        let refused: Reply<v1::TransactionStatus> = Reply::read(
            "POST",
            url,
            409,
            json!({"error": {"code": "nonce_gap", "message": "nonce 3 after 1"}}),
        );
        assert_eq!(refused.error_code(), Some("nonce_gap"));
        assert_eq!(refused.error_message(), Some("nonce 3 after 1"));
        assert_eq!(refused.to_string(), "409 nonce_gap: nonce 3 after 1");
        let id = Hash::ZERO;
        let pending: Reply<v1::TransactionStatus> = Reply::read(
            "POST",
            url,
            202,
            serde_json::to_value(v1::TransactionStatus::pending(id)).unwrap(),
        );
        assert_eq!(pending.error_code(), None);
        assert_eq!(pending.ok(), v1::TransactionStatus::pending(id));
    }

    #[test]
    #[should_panic(
        expected = "POST http://node/v1/transactions: the answer is no seisan_api::v1::"
    )]
    fn a_refusal_without_the_error_body_panics() {
        let _: Reply<v1::TransactionStatus> =
            Reply::read("POST", "http://node/v1/transactions", 500, json!("oops"));
    }
}
