//! Node settings, from flags or a TOML config file (flags win).
//!
//! ```toml
//! # seisan-node.toml
//! genesis = "genesis.json"        # the consortium's genesis file
//! key = "keys/exchange-a.key"     # this member's key file (mode 0600)
//! data = "data/exchange-a"        # data directory (state, last-vote record, LOCK)
//! listen = "/ip4/0.0.0.0/tcp/7102" # libp2p listen address (default: this member's p2p_address in genesis)
//! http = "127.0.0.1:8102"         # HTTP API address
//! tls_cert = "tls/exchange-a.pem" # with tls_key: serve the API over HTTPS only
//! tls_key = "tls/exchange-a.key"  # the certificate's PEM private key
//! bank_ca = "tls/ca.pem"          # the CA an https:// bank_url is checked against
//! log_format = "human"            # or "json"
//! empty_block_delay_ms = 500      # idle leader's wait before an empty block
//! idle_block_interval_ms = 10000  # an idle chain's heartbeat (empty block without purpose)
//! min_block_interval_ms = 100     # a leader gathers transactions this long after the parent
//! checkpoint_interval_blocks = 64 # blocks between checkpoints of the state (replayed after)
//! snapshot_sync_min_blocks = 1000 # a new node installs a peer's certified snapshot past this
//! bank_token_file = "keys/exchange-a.bank-token" # this member's bank token (mode 0600)
//! ```
//!
//! Secrets never come from the command line (any local user reads a process's
//! arguments): the bank tokens come from a file of mode 0600 (`--bank-token-file`) or the
//! environment (`SEISAN_BANK_TOKEN`), and [`NodeConfig`]'s `Debug` does not show them.

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args, Debug, Clone, Default)]
pub struct NodeArgs {
    /// TOML config file; flags override its values.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The genesis file.
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// This member's key file.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Data directory.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// libp2p listen multiaddress (default: this member's p2p_address in genesis).
    #[arg(long)]
    pub listen: Option<String>,
    /// HTTP API listen address.
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Serve the HTTP API over TLS with this PEM certificate chain (with --tls-key);
    /// plain HTTP without.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Log format: human or json.
    #[arg(long)]
    pub log_format: Option<LogFormat>,
    /// The accounting system's (bank's) API URL; with a bank token, enables the bank
    /// watcher (attests fiat trust credits; on the clearing house, mirrors settlement).
    #[arg(long, env = "SEISAN_BANK_URL")]
    pub bank_url: Option<String>,
    /// A file (mode 0600) holding this member's bank API token; or the token itself in
    /// the environment variable SEISAN_BANK_TOKEN (never as an argument).
    #[arg(long, env = "SEISAN_BANK_TOKEN_FILE", value_name = "FILE")]
    pub bank_token_file: Option<PathBuf>,
    /// The CA certificate (PEM) an https:// --bank-url is checked against (default: the
    /// webpki roots).
    #[arg(long, env = "SEISAN_BANK_CA", value_name = "FILE")]
    pub bank_ca: Option<PathBuf>,
    /// A file (mode 0600) holding this validator's read-only auditor token at the bank
    /// (or SEISAN_BANK_AUDITOR_TOKEN): with it the bank watcher reads, and attests, every
    /// exchange's trust account instead of only its own.
    #[arg(long, env = "SEISAN_BANK_AUDITOR_TOKEN_FILE", value_name = "FILE")]
    pub bank_auditor_token_file: Option<PathBuf>,
    /// The public chain's JSON-RPC URL (this node's own Ethereum node); enables the
    /// custody watcher.
    #[arg(long, env = "SEISAN_ETH_RPC")]
    pub eth_rpc: Option<String>,
    /// The clearing house's hot-wallet key file (mode 0600); used only by the
    /// clearing-house node, to pay withdrawals and sweep to cold.
    #[arg(long, env = "SEISAN_HOT_KEY")]
    pub hot_key: Option<PathBuf>,
    /// How long a leader with an empty mempool waits before proposing an empty block
    /// (default 500 ms; 0 proposes at once, as fast as consensus rounds go).
    #[arg(long)]
    pub empty_block_delay_ms: Option<u64>,
    /// An idle chain's heartbeat: with nothing to do (no transaction, no deadline due,
    /// no governance change scheduled) a leader proposes an empty block only when the
    /// last block is this old (default 10000; 0 proposes every empty block, two a
    /// second at the default delay).
    #[arg(long)]
    pub idle_block_interval_ms: Option<u64>,
    /// How long after its parent block a leader with transactions waiting (fewer than a
    /// full block) holds its proposal to gather more (default 100 ms; 0 proposes at
    /// once). Under load a block per consensus round carries more orders, so a node
    /// pays the per-block costs (execution's fixed part, votes, certificates, the fsync
    /// and the block's records) for more of them; a submission waits at most this long
    /// for its block to be built.
    #[arg(long)]
    pub min_block_interval_ms: Option<u64>,
    /// Blocks between checkpoints of the state (values and tree, written off the core
    /// loop); a restart replays the node's own blocks since the last one [default 64].
    /// Fewer: shorter replays, more writes of keys that change often.
    #[arg(long, value_name = "BLOCKS", value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_interval_blocks: Option<u64>,
    /// A node whose store holds nothing after genesis (new, or wiped) installs a peer's
    /// snapshot of the state, checked against a certified state root, when the chain is
    /// at least this many blocks long, and replays only the blocks after it; the blocks
    /// before it stay with its peers. 0: always replay every block from genesis
    /// [default 1000].
    #[arg(long, value_name = "BLOCKS")]
    pub snapshot_sync_min_blocks: Option<u64>,
    /// HTTP requests per second one client address may make (a burst of twice that);
    /// 0 is no limit [default 5000].
    #[arg(long, value_name = "PER_SECOND")]
    pub rate_limit_per_address: Option<u32>,
    /// Transactions per second one member may submit through POST /v1/transactions
    /// (a burst of twice that); 0 is no limit [default 2000].
    #[arg(long, value_name = "PER_SECOND")]
    pub rate_limit_per_member: Option<u32>,
    /// Where a business day ends, UTC `HH:MM[:SS]` [default 00:00:00]: the node records
    /// each ended day's compliance snapshot (`GET /v1/compliance/{date}`); 15:00 gives
    /// the days of Japan Standard Time. Nodes whose reports are compared use the same.
    #[arg(long, env = "SEISAN_DAY_CUTOFF", value_name = "HH:MM:SS")]
    pub day_cutoff: Option<super::compliance::DayCutoff>,
    /// Fault injection for tests (dev chains only): `equivocate` makes this validator
    /// sign a conflicting twin of each of its notarize and finalize votes;
    /// `lie-attestations` makes its bank and custody watchers attest false facts;
    /// `lie-snapshots` makes it serve snapshots with a value changed. Never set on a
    /// real node. Only in a build with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[arg(long, value_name = "FAULT")]
    pub fault: Option<super::fault::Fault>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    genesis: Option<PathBuf>,
    key: Option<PathBuf>,
    data: Option<PathBuf>,
    listen: Option<String>,
    http: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    log_format: Option<LogFormat>,
    bank_url: Option<String>,
    bank_token_file: Option<PathBuf>,
    bank_ca: Option<PathBuf>,
    bank_auditor_token_file: Option<PathBuf>,
    eth_rpc: Option<String>,
    hot_key: Option<PathBuf>,
    empty_block_delay_ms: Option<u64>,
    idle_block_interval_ms: Option<u64>,
    min_block_interval_ms: Option<u64>,
    checkpoint_interval_blocks: Option<u64>,
    snapshot_sync_min_blocks: Option<u64>,
    rate_limit_per_address: Option<u32>,
    rate_limit_per_member: Option<u32>,
    day_cutoff: Option<String>,
    /// Refused as an unknown key by a build without `test-hooks`.
    #[cfg(feature = "test-hooks")]
    fault: Option<super::fault::Fault>,
}

/// Resolved settings.
#[derive(Clone)]
pub struct NodeConfig {
    pub genesis: PathBuf,
    pub key: PathBuf,
    pub data: PathBuf,
    pub listen: Option<String>,
    pub http: SocketAddr,
    /// The API's certificate and key files: HTTPS when set.
    pub tls: Option<TlsFiles>,
    pub log_format: LogFormat,
    pub bank_url: Option<String>,
    /// The CA to check an https:// bank against (else the webpki roots).
    pub bank_ca: Option<PathBuf>,
    /// The token itself (read from its file or the environment); never logged.
    pub bank_token: Option<String>,
    /// The auditor token itself; never logged.
    pub bank_auditor_token: Option<String>,
    pub eth_rpc: Option<String>,
    pub hot_key: Option<PathBuf>,
    pub empty_block_delay_ms: u64,
    /// An idle chain's heartbeat ([`super::idle`]).
    pub idle_block_interval_ms: u64,
    /// A leader's gathering time after the parent block ([`super::runtime`]).
    pub min_block_interval_ms: u64,
    /// Blocks between checkpoints of the state (`seisan_state::StateDb`).
    pub checkpoint_interval_blocks: u64,
    /// Snapshot sync of a new node ([`super::snapshot`]): the least chain length that
    /// makes one worth it; `None`: never.
    pub snapshot_sync_min_blocks: Option<u64>,
    /// The HTTP API's rate limits ([`super::rate_limit`]).
    pub rate_limits: super::rate_limit::RateLimits,
    /// Where business days end ([`super::compliance`]).
    pub day_cutoff: super::compliance::DayCutoff,
    /// Fault injection for tests ([`super::fault`]); `None` on every real node.
    pub fault: Option<super::fault::Fault>,
}

/// Every setting but the tokens, which show only whether they are set.
impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |token: &Option<String>| token.as_ref().map(|_| "<redacted>");
        formatter
            .debug_struct("NodeConfig")
            .field("genesis", &self.genesis)
            .field("key", &self.key)
            .field("data", &self.data)
            .field("listen", &self.listen)
            .field("http", &self.http)
            .field("tls", &self.tls)
            .field("bank_ca", &self.bank_ca)
            .field("log_format", &self.log_format)
            .field("bank_url", &self.bank_url)
            .field("bank_token", &secret(&self.bank_token))
            .field("bank_auditor_token", &secret(&self.bank_auditor_token))
            .field("eth_rpc", &self.eth_rpc)
            .field("hot_key", &self.hot_key)
            .field("empty_block_delay_ms", &self.empty_block_delay_ms)
            .field("idle_block_interval_ms", &self.idle_block_interval_ms)
            .field("min_block_interval_ms", &self.min_block_interval_ms)
            .field(
                "checkpoint_interval_blocks",
                &self.checkpoint_interval_blocks,
            )
            .field("snapshot_sync_min_blocks", &self.snapshot_sync_min_blocks)
            .field("rate_limits", &self.rate_limits)
            .field("day_cutoff", &self.day_cutoff)
            .field("fault", &self.fault)
            .finish_non_exhaustive()
    }
}

/// The HTTP API's certificate chain and private key (PEM files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A token from its file (`flag`'s) or else from the environment variable `variable`.
/// A file others can read is refused, as key files are.
fn token(file: Option<PathBuf>, flag: &str, variable: &str) -> anyhow::Result<Option<String>> {
    match file {
        Some(path) => read_token_file(&path)
            .with_context(|| format!("--{flag}"))
            .map(Some),
        None => Ok(std::env::var(variable)
            .ok()
            .map(|token| token.trim().to_string())
            .filter(|token| !token.is_empty())),
    }
}

/// Reads a secret token file: mode 0600 (no access for group or others), one
/// non-empty line.
pub fn read_token_file(path: &std::path::Path) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let mode = std::fs::metadata(path)
        .with_context(|| format!("token file {shown}"))?
        .permissions()
        .mode()
        & 0o777;
    anyhow::ensure!(
        mode & 0o077 == 0,
        "token file {shown} is readable by group or others (mode {mode:o}); run chmod 600 {shown}"
    );
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading token file {shown}"))?;
    let token = text.trim();
    anyhow::ensure!(!token.is_empty(), "token file {shown} is empty");
    Ok(token.to_string())
}

impl NodeArgs {
    pub fn resolve(self) -> anyhow::Result<NodeConfig> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config {}", path.display()))?;
                toml::from_str::<ConfigFile>(&text)
                    .with_context(|| format!("config {} is invalid", path.display()))?
            }
            None => ConfigFile::default(),
        };
        // Fault injection exists only in a test build (`test-hooks`).
        #[cfg(feature = "test-hooks")]
        let fault = self.fault.or(file.fault);
        #[cfg(not(feature = "test-hooks"))]
        let fault = None;
        let missing = |name: &str| {
            anyhow::anyhow!("--{name} is required (or set `{name}` in the config file)")
        };
        Ok(NodeConfig {
            genesis: self
                .genesis
                .or(file.genesis)
                .ok_or_else(|| missing("genesis"))?,
            key: self.key.or(file.key).ok_or_else(|| missing("key"))?,
            data: self.data.or(file.data).ok_or_else(|| missing("data"))?,
            listen: self.listen.or(file.listen),
            http: self
                .http
                .or(file.http)
                .unwrap_or_else(|| "127.0.0.1:8101".parse().expect("valid address")),
            tls: match (
                self.tls_cert.or(file.tls_cert),
                self.tls_key.or(file.tls_key),
            ) {
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                (None, None) => None,
                (Some(_), None) => {
                    anyhow::bail!("--tls-cert needs --tls-key (or `tls_key` in the config file)")
                }
                (None, Some(_)) => {
                    anyhow::bail!("--tls-key needs --tls-cert (or `tls_cert` in the config file)")
                }
            },
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
            bank_url: self.bank_url.or(file.bank_url),
            bank_ca: self.bank_ca.or(file.bank_ca),
            bank_token: token(
                self.bank_token_file.or(file.bank_token_file),
                "bank-token-file",
                "SEISAN_BANK_TOKEN",
            )?,
            bank_auditor_token: token(
                self.bank_auditor_token_file
                    .or(file.bank_auditor_token_file),
                "bank-auditor-token-file",
                "SEISAN_BANK_AUDITOR_TOKEN",
            )?,
            eth_rpc: self.eth_rpc.or(file.eth_rpc),
            hot_key: self.hot_key.or(file.hot_key),
            empty_block_delay_ms: self
                .empty_block_delay_ms
                .or(file.empty_block_delay_ms)
                .unwrap_or(super::runtime::EMPTY_BLOCK_DELAY_MS),
            idle_block_interval_ms: self
                .idle_block_interval_ms
                .or(file.idle_block_interval_ms)
                .unwrap_or(super::idle::IDLE_BLOCK_INTERVAL_MS),
            min_block_interval_ms: self
                .min_block_interval_ms
                .or(file.min_block_interval_ms)
                .unwrap_or(super::runtime::MIN_BLOCK_INTERVAL_MS),
            checkpoint_interval_blocks: match self
                .checkpoint_interval_blocks
                .or(file.checkpoint_interval_blocks)
            {
                Some(0) => anyhow::bail!("checkpoint_interval_blocks must be at least 1"),
                Some(blocks) => blocks,
                None => seisan_state::CHECKPOINT_INTERVAL,
            },
            snapshot_sync_min_blocks: match self
                .snapshot_sync_min_blocks
                .or(file.snapshot_sync_min_blocks)
                .unwrap_or(super::snapshot::SNAPSHOT_SYNC_MIN_BLOCKS)
            {
                0 => None,
                blocks => Some(blocks),
            },
            rate_limits: super::rate_limit::RateLimits {
                per_address: self
                    .rate_limit_per_address
                    .or(file.rate_limit_per_address)
                    .unwrap_or(super::rate_limit::DEFAULT_PER_ADDRESS),
                per_member: self
                    .rate_limit_per_member
                    .or(file.rate_limit_per_member)
                    .unwrap_or(super::rate_limit::DEFAULT_PER_MEMBER),
            },
            day_cutoff: match self.day_cutoff {
                Some(cutoff) => cutoff,
                None => file
                    .day_cutoff
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .context("day_cutoff in the config file")?
                    .unwrap_or_default(),
            },
            fault,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn flags_override_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "genesis = \"g.json\"\nkey = \"k.key\"\ndata = \"d\"\nhttp = \"127.0.0.1:9000\"\nlog_format = \"json\"\n").unwrap();
        let args = NodeArgs {
            config: Some(path),
            data: Some("other".into()),
            ..NodeArgs::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.genesis, PathBuf::from("g.json"));
        assert_eq!(config.data, PathBuf::from("other"));
        assert_eq!(config.http.port(), 9000);
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn tls_files_come_in_pairs_from_flags_or_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "genesis = \"g.json\"\nkey = \"k.key\"\ndata = \"d\"\ntls_cert = \"n.pem\"\ntls_key = \"n.key\"\nbank_ca = \"ca.pem\"\n").unwrap();
        let args = NodeArgs {
            config: Some(path.clone()),
            tls_key: Some("flag.key".into()),
            ..NodeArgs::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(
            config.tls,
            Some(TlsFiles {
                cert: "n.pem".into(),
                key: "flag.key".into()
            })
        );
        assert_eq!(config.bank_ca, Some(PathBuf::from("ca.pem")));

        let base = NodeArgs {
            genesis: Some("g.json".into()),
            key: Some("k.key".into()),
            data: Some("d".into()),
            ..NodeArgs::default()
        };
        assert_eq!(
            base.clone().resolve().unwrap().tls,
            None,
            "plain HTTP by default"
        );
        let error = NodeArgs {
            tls_cert: Some("n.pem".into()),
            ..base
        }
        .resolve()
        .unwrap_err();
        assert!(
            error.to_string().contains("--tls-cert needs --tls-key"),
            "{error}"
        );
    }

    #[test]
    fn missing_settings_and_unknown_keys_are_named() {
        let error = NodeArgs::default().resolve().unwrap_err();
        assert!(
            error.to_string().contains("--genesis is required"),
            "{error}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "genesys = \"g.json\"\n").unwrap();
        let error = NodeArgs {
            config: Some(path),
            ..NodeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(format!("{error:#}").contains("genesys"), "{error:#}");
    }

    /// Tokens come from mode-0600 files (flag or config file), never from an argument;
    /// an open file is refused naming the file, its mode and the fix; `Debug` hides them.
    #[test]
    fn bank_tokens_come_from_private_files_and_are_not_shown() {
        use std::os::unix::fs::PermissionsExt;
        #[derive(clap::Parser)]
        struct Node {
            #[command(flatten)]
            args: NodeArgs,
        }
        assert!(
            <Node as clap::Parser>::try_parse_from(["node", "--bank-token", "secret"]).is_err()
        );
        assert!(
            <Node as clap::Parser>::try_parse_from(["node", "--bank-auditor-token", "secret"])
                .is_err()
        );
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("own.token");
        let auditor = dir.path().join("auditor.token");
        std::fs::write(&own, "dev-token-own-secret\n").unwrap();
        std::fs::write(&auditor, "dev-token-auditor-secret").unwrap();
        std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&auditor, std::fs::Permissions::from_mode(0o644)).unwrap();
        let args = |own: &Path, auditor: Option<&Path>| NodeArgs {
            genesis: Some("g.json".into()),
            key: Some("k.key".into()),
            data: Some("d".into()),
            bank_token_file: Some(own.to_path_buf()),
            bank_auditor_token_file: auditor.map(Path::to_path_buf),
            ..NodeArgs::default()
        };
        let error = args(&own, Some(&auditor)).resolve().unwrap_err();
        let message = format!("{error:#}");
        assert!(
            message.contains(&auditor.display().to_string()),
            "{message}"
        );
        assert!(message.contains("mode 644"), "{message}");
        assert!(message.contains("chmod 600"), "{message}");
        std::fs::set_permissions(&auditor, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = args(&own, Some(&auditor)).resolve().unwrap();
        assert_eq!(config.bank_token.as_deref(), Some("dev-token-own-secret"));
        assert_eq!(
            config.bank_auditor_token.as_deref(),
            Some("dev-token-auditor-secret")
        );
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    /// `seisan node --fault` and the config file's `fault` exist only in a test build:
    /// a release binary (built without `test-hooks`) neither lists nor accepts them.
    #[test]
    fn fault_injection_only_in_a_test_hooks_build() {
        #[derive(clap::Parser)]
        struct Node {
            #[command(flatten)]
            args: NodeArgs,
        }
        let command = <Node as clap::CommandFactory>::command();
        let listed = command
            .get_arguments()
            .any(|argument| argument.get_long() == Some("fault"));
        assert_eq!(listed, cfg!(feature = "test-hooks"));
        let parsed = <Node as clap::Parser>::try_parse_from(["node", "--fault", "equivocate"]);
        assert_eq!(parsed.is_ok(), cfg!(feature = "test-hooks"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "genesis = \"g.json\"\nkey = \"k.key\"\ndata = \"d\"\nfault = \"equivocate\"\n",
        )
        .unwrap();
        let resolved = NodeArgs {
            config: Some(path),
            ..NodeArgs::default()
        }
        .resolve();
        match (resolved, cfg!(feature = "test-hooks")) {
            (Ok(config), true) => {
                assert_eq!(config.fault, Some(super::super::fault::Fault::Equivocate));
            }
            (Err(error), false) => {
                assert!(format!("{error:#}").contains("fault"), "{error:#}");
            }
            (resolved, hooks) => panic!("test-hooks {hooks}: {resolved:?}"),
        }
    }
}
