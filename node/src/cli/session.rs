//! The client's connection to the consortium: which node to ask, which key signs, which
//! genesis file is trusted; the HTTP calls; building, signing, submitting and waiting
//! for transactions.
//!
//! Settings come from, in order of precedence: command-line flags, environment
//! variables (`SEISAN_NODE`, `SEISAN_KEY`, `SEISAN_GENESIS`, `SEISAN_CA`), the config file
//! (`SEISAN_CONFIG`, or `~/.config/seisan/client.toml`, keys `node`, `key`, `genesis`, `ca`;
//! relative paths are relative to the file), then the default node URL. Keys never
//! leave the machine: transactions are signed here and only the signed transaction is
//! sent.
//!
//! Submitting is safe to repeat: the node answers the same signed transaction with its
//! status (pending, or finalized with its receipt), so the client resends the very same
//! bytes when an answer is lost, when the node is catching up (503 with Retry-After),
//! or when the node no longer knows the transaction while it waits for it. A resent
//! transaction executes at most once (its nonce is used once).

use anyhow::{anyhow, bail, Context};
use clap::Args;
use seisan_api::v1;
use seisan_crypto::Keypair;
use seisan_types::hash::Hash;
use seisan_types::ids::MemberId;
use seisan_types::tx::{Lane, SignedTransaction};
use seisan_types::{ChainDomain, Genesis, Transaction, TxBody};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The node URL when nothing else says.
pub const DEFAULT_NODE_URL: &str = "http://127.0.0.1:8101";
/// How long a command waits for its transaction to be finalized.
pub const FINALIZE_WAIT: Duration = Duration::from_secs(30);
/// How often it asks while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Timeout of one HTTP request (not of the event stream).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest JSON answer read from a node.
const MAX_ANSWER_BYTES: u64 = 32 << 20;
/// How many times a command resends its transaction to a node that no longer knows it
/// (or whose answer it did not get) before it tells the user what to do.
pub const MAX_RESUBMISSIONS: u32 = 3;
/// The longest a node's `Retry-After` is honoured in one wait.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// How long a command waits in total for a node that answers 503 (catching up, busy).
const UNAVAILABLE_WAIT: Duration = Duration::from_secs(60);

/// Options every client command takes.
#[derive(Args, Debug, Clone, Default)]
pub struct ClientOptions {
    /// The node's HTTP API [default: http://127.0.0.1:8101]. Every setting is taken from
    /// its flag, else its SEISAN_* environment variable, else the config file
    /// (SEISAN_CONFIG or ~/.config/seisan/client.toml; keys node, key, genesis).
    #[arg(long, global = true, env = "SEISAN_NODE", value_name = "URL")]
    pub node: Option<String>,
    /// The member's key file (signs transactions; names the member) [or `key` in the config file].
    #[arg(long, global = true, env = "SEISAN_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The trusted genesis file (assets, pairs, members; verifies proofs) [or `genesis` in the config file].
    #[arg(long, global = true, env = "SEISAN_GENESIS", value_name = "FILE")]
    pub genesis: Option<PathBuf>,
    /// The CA certificate (PEM) an https:// node is checked against [or `ca` in the
    /// config file; default: the webpki roots].
    #[arg(long, global = true, env = "SEISAN_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The config file's contents.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    node: Option<String>,
    key: Option<PathBuf>,
    genesis: Option<PathBuf>,
    ca: Option<PathBuf>,
}

/// Reads the config file, if there is one. A file named by `SEISAN_CONFIG` must exist;
/// the default one is optional.
fn read_config() -> anyhow::Result<(ConfigFile, Option<PathBuf>)> {
    let (path, required) = match std::env::var_os("SEISAN_CONFIG") {
        Some(path) => (PathBuf::from(path), true),
        None => match std::env::var_os("HOME") {
            Some(home) => (
                PathBuf::from(home).join(".config/seisan/client.toml"),
                false,
            ),
            None => return Ok((ConfigFile::default(), None)),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if !required && error.kind() == std::io::ErrorKind::NotFound => {
            return Ok((ConfigFile::default(), None))
        }
        Err(error) => {
            return Err(error).with_context(|| format!("reading config file {}", path.display()))
        }
    };
    let config: ConfigFile = toml::from_str(&text).map_err(|error| {
        anyhow!(
            "config file {} is invalid: {}",
            path.display(),
            error.message()
        )
    })?;
    let folder = path.parent().map(Path::to_path_buf);
    Ok((config, folder))
}

/// Everything a command needs, resolved.
pub struct Session {
    pub node: NodeClient,
    pub json: bool,
    key: Option<PathBuf>,
    /// The CA file clients of this session trust ([`ClientOptions::ca`]).
    ca: Option<PathBuf>,
    genesis_path: Option<PathBuf>,
    genesis: Option<Genesis>,
    /// [`Session::genesis_domain`], once computed.
    domain: Option<ChainDomain>,
    /// The node's membership, fetched once (`Some(None)`: the node did not answer).
    membership: Option<Option<seisan_types::membership::Membership>>,
    /// What this session signed and submitted, by id, to resend the same bytes.
    submitted: HashMap<Hash, SignedTransaction>,
}

impl Session {
    /// Resolves settings (flags > environment > config file > default). Files are read
    /// lazily, so a command that needs no key does not fail on a bad key file.
    pub fn open(options: &ClientOptions) -> anyhow::Result<Session> {
        let (config, folder) = read_config()?;
        let relative = |path: PathBuf| match (&folder, path.is_relative()) {
            (Some(folder), true) => folder.join(path),
            _ => path,
        };
        let node = options
            .node
            .clone()
            .or(config.node)
            .unwrap_or_else(|| DEFAULT_NODE_URL.to_string());
        let key = options.key.clone().or(config.key.map(&relative));
        let ca = options.ca.clone().or(config.ca.map(&relative));
        Ok(Session {
            node: NodeClient::with_key(&node, key.clone())?.with_ca(ca.as_deref())?,
            json: options.json,
            key,
            ca,
            genesis_path: options.genesis.clone().or(config.genesis.map(&relative)),
            genesis: None,
            domain: None,
            membership: None,
            submitted: HashMap::new(),
        })
    }

    /// The TLS settings for other HTTPS services this session calls (the bank): the
    /// same CA as the node's.
    pub fn client_tls(&self) -> anyhow::Result<ureq::tls::TlsConfig> {
        Ok(seisan_tls::client_tls(self.ca.as_deref())?)
    }

    /// The trusted genesis file.
    pub fn genesis(&mut self) -> anyhow::Result<&Genesis> {
        if self.genesis.is_none() {
            let path = self.genesis_path.clone().ok_or_else(|| {
                anyhow!("no genesis file: pass --genesis FILE, set SEISAN_GENESIS, or put genesis = \"FILE\" in the config file")
            })?;
            self.genesis = Some(crate::genesis_command::load_genesis(&path)?);
        }
        Ok(self.genesis.as_ref().expect("loaded above"))
    }

    /// The chain id and hash of the trusted genesis file, which every transaction this
    /// session signs is bound to (computed once per session).
    pub fn genesis_domain(&mut self) -> anyhow::Result<ChainDomain> {
        if self.domain.is_none() {
            self.domain = Some(self.genesis()?.domain());
        }
        Ok(self.domain.clone().expect("computed above"))
    }

    /// The member's key and its member id in genesis.
    pub fn signer(&mut self) -> anyhow::Result<(Keypair, MemberId)> {
        let path = self.key.clone().ok_or_else(|| {
            anyhow!("no key file: pass --key FILE, set SEISAN_KEY, or put key = \"FILE\" in the config file")
        })?;
        let keypair = seisan_crypto::keyfile::read_key_file(&path)
            .map_err(|error| anyhow!("bad key file: {error}"))?;
        let key = keypair.public_key();
        // The node's membership first: members added by governance, and rotated keys,
        // are only there; a key that was rotated away or removed resolves to nobody.
        if let Some(membership) = self.membership() {
            return match membership.member_by_key(&key) {
                Some((member, _)) => Ok((keypair, member)),
                None => Err(anyhow!(
                    "bad key file: the key in {} ({key}) is not the key of any current member (removed, rotated away, or not yet added)",
                    path.display()
                )),
            };
        }
        let genesis = self.genesis()?;
        let (member, _) = genesis.member_by_key(&key).ok_or_else(|| {
            anyhow!(
                "bad key file: the key in {} ({key}) is not a member's key in genesis",
                path.display()
            )
        })?;
        Ok((keypair, member))
    }

    /// The membership in the node's committed state (`None` if the node does not
    /// answer `/v1/governance`, e.g. an older node).
    pub fn membership(&mut self) -> Option<seisan_types::membership::Membership> {
        if self.membership.is_none() {
            let fetched = self
                .node
                .get_json::<v1::Governance>("/v1/governance?limit=1")
                .ok()
                .map(|document| document.membership);
            self.membership = Some(fetched);
        }
        self.membership.clone().flatten()
    }

    /// A member's name for output: the node's membership names members added by
    /// governance too; else genesis; else `member N`.
    pub fn member_label(&mut self, member: MemberId) -> String {
        if let Some(entry) = self
            .membership()
            .and_then(|membership| membership.member(member).cloned())
        {
            return entry.member.name;
        }
        match self.genesis() {
            Ok(genesis) => super::describe::member_name(genesis, None, member),
            Err(_) => format!("member {member}"),
        }
    }

    /// Finds a member by name or id: in the node's membership (members added by
    /// governance included), else in genesis.
    pub fn resolve_member(&mut self, text: &str) -> anyhow::Result<MemberId> {
        if let Some(membership) = self.membership() {
            if let Some((id, _)) = membership.member_by_name(text) {
                return Ok(id);
            }
            if let Ok(id) = text.parse::<u32>() {
                if membership.member(MemberId(id)).is_some() {
                    return Ok(MemberId(id));
                }
            }
        }
        resolve_member(self.genesis()?, text)
    }

    /// The member a read command is about: `--member` if given, else the key's member.
    pub fn member_or_self(&mut self, member: Option<&str>) -> anyhow::Result<MemberId> {
        match member {
            Some(text) => self.resolve_member(text),
            None => self
                .signer()
                .map(|(_, member)| member)
                .map_err(|error| anyhow!("{error:#} (or name the member with --member)")),
        }
    }

    /// Signs `body` with the next nonce of its lane (the member lane for everything a
    /// person signs; the node lane if it is an attestation kind) and submits it.
    /// Returns the transaction id.
    /// A node that is catching up (503) is waited for as its `Retry-After` says; a
    /// submission whose answer was lost is sent again (the same bytes).
    pub fn submit(&mut self, body: TxBody) -> anyhow::Result<Hash> {
        let (keypair, member) = self.signer()?;
        let ChainDomain {
            chain_id,
            genesis: genesis_hash,
        } = self.genesis_domain()?;
        let lane = body.lane();
        let path = format!("/v1/members/{}/nonce", member.0);
        let nonce: v1::NonceInfo = self
            .node
            .decode(&path, &self.node.get_when_available(&path)?)?;
        let next = lane_nonces(&nonce, lane)
            .map(|lane| lane.next)
            .ok_or_else(|| {
                anyhow!(
                    "node {} sent a nonce answer without the {lane} lane",
                    self.node.base
                )
            })?;
        let signed = seisan_crypto::sign_transaction(
            &keypair,
            &genesis_hash,
            Transaction {
                chain_id,
                member,
                nonce: next,
                body,
            },
        );
        let id = signed.id();
        let value = serde_json::to_value(&signed)?;
        self.submitted.insert(id, signed);
        let mut unavailable = Duration::ZERO;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.node.post_answer("/v1/transactions", &value) {
                Ok(answer) if answer.is_success() => return Ok(id),
                Ok(answer) if answer.status == 503 && unavailable < UNAVAILABLE_WAIT => {
                    unavailable += answer.wait(&self.node.base);
                }
                Ok(answer) => {
                    return Err(anyhow!(
                        answer.error_text(&self.node.base, "/v1/transactions")
                    ))
                    .context("the node refused the transaction")
                }
                Err(error) if attempts <= MAX_RESUBMISSIONS => {
                    eprintln!(
                        "note: no answer from {} ({error}); sending transaction {id} again",
                        self.node.base
                    );
                    std::thread::sleep(POLL_INTERVAL);
                }
                Err(error) => {
                    let signed = &self.submitted[&id];
                    return Err(anyhow!(
                        "{}",
                        self.lost_advice(signed, &self.node.unreachable(error).to_string())
                    ));
                }
            }
        }
    }

    /// Polls until the transaction is finalized (its status document, with the
    /// receipt) or [`FINALIZE_WAIT`] passes (plus up to [`UNAVAILABLE_WAIT`] while the
    /// node answers 503). If the node no longer knows a transaction this session
    /// submitted, the same signed bytes are sent again (at most [`MAX_RESUBMISSIONS`]
    /// times); when that cannot work, the error says what the user must do.
    pub fn wait_finalized(&self, id: &Hash) -> anyhow::Result<v1::TransactionStatus> {
        let path = format!("/v1/transactions/{id}");
        let mut deadline = Instant::now() + FINALIZE_WAIT;
        let mut unavailable = Duration::ZERO;
        let mut resubmissions = 0;
        loop {
            match self.node.get_answer(&path) {
                Ok(answer) if answer.status == 200 => {
                    let status: v1::TransactionStatus = self.node.decode(&path, &answer.body)?;
                    if status.status == v1::TxState::Finalized {
                        return Ok(status);
                    }
                }
                Ok(answer) if answer.status == 503 && unavailable < UNAVAILABLE_WAIT => {
                    let waited = answer.wait(&self.node.base);
                    unavailable += waited;
                    deadline += waited;
                    continue;
                }
                Ok(answer) if answer.status == 404 => {
                    // Neither pending nor finalized on this node: it lost the
                    // transaction (a restart, or a node that dropped it).
                    let Some(signed) = self.submitted.get(id) else {
                        bail!(
                            "transaction {id} is neither pending nor finalized on node {}; check another node with `seisan tx {id} --node URL`",
                            self.node.base
                        );
                    };
                    if resubmissions == MAX_RESUBMISSIONS {
                        bail!(
                            "{}",
                            self.lost_advice(
                                signed,
                                &format!("node {} lost it {resubmissions} times", self.node.base)
                            )
                        );
                    }
                    resubmissions += 1;
                    eprintln!(
                        "note: node {} no longer knows transaction {id}; sending the same signed transaction again ({resubmissions} of {MAX_RESUBMISSIONS})",
                        self.node.base
                    );
                    match self.resend(signed, &mut unavailable, &mut deadline) {
                        Ok(Some(finalized)) => return Ok(finalized),
                        Ok(None) => {}
                        Err(reason) => bail!("{}", self.lost_advice(signed, &reason)),
                    }
                }
                Ok(answer) => bail!("{}", answer.error_text(&self.node.base, &path)),
                // The node may be restarting: keep asking until the deadline.
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                bail!(
                    "transaction {id} was not finalized within {} s; it may still be; check with `seisan tx {id}`",
                    (FINALIZE_WAIT + unavailable).as_secs()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Sends `signed` again, waiting on 503s. `Ok(Some(document))` if it turns out to
    /// be finalized, `Ok(None)` if the node holds it again (or did not answer), and the
    /// node's reason if it refuses it.
    fn resend(
        &self,
        signed: &SignedTransaction,
        unavailable: &mut Duration,
        deadline: &mut Instant,
    ) -> Result<Option<v1::TransactionStatus>, String> {
        let value = serde_json::to_value(signed).map_err(|error| error.to_string())?;
        loop {
            match self.node.post_answer("/v1/transactions", &value) {
                Ok(answer) if answer.is_success() => {
                    let status: v1::TransactionStatus = self
                        .node
                        .decode("/v1/transactions", &answer.body)
                        .map_err(|error| error.to_string())?;
                    return Ok((status.status == v1::TxState::Finalized).then_some(status));
                }
                Ok(answer) if answer.status == 503 && *unavailable < UNAVAILABLE_WAIT => {
                    let waited = answer.wait(&self.node.base);
                    *unavailable += waited;
                    *deadline += waited;
                }
                Ok(answer) => return Err(answer.error_text(&self.node.base, "/v1/transactions")),
                Err(_) => return Ok(None),
            }
        }
    }

    /// What the user must do about a transaction that did not make it: whether its
    /// nonce was used on chain (from the node's nonce endpoint), and the command that
    /// resubmits the same signed bytes or signs the intent again.
    fn lost_advice(&self, signed: &SignedTransaction, reason: &str) -> String {
        let id = signed.id();
        let member = signed.tx.member;
        let finalized_at = self
            .node
            .get_json::<v1::TransactionStatus>(&format!("/v1/transactions/{id}"))
            .ok()
            .filter(|status| status.status == v1::TxState::Finalized)
            .and_then(|status| status.height)
            .map(|height| height.0);
        let committed = self
            .node
            .get_json::<v1::NonceInfo>(&format!("/v1/members/{}/nonce", member.0))
            .ok()
            .map(|nonce| {
                lane_nonces(&nonce, signed.tx.body.lane())
                    .and_then(|lane| lane.committed)
                    .map_or(0, |committed| committed.0)
            });
        // Saved only when resubmitting it can still work.
        let saved = committed
            .filter(|committed| *committed < signed.tx.nonce.0 && finalized_at.is_none())
            .and_then(|_| {
                let path = std::env::temp_dir().join(format!("seisan-tx-{id}.json"));
                let bytes = serde_json::to_vec(signed).ok()?;
                std::fs::write(&path, bytes).ok().map(|()| path)
            });
        let member_name = self
            .genesis
            .as_ref()
            .and_then(|genesis| genesis.member(member))
            .map_or_else(|| member.to_string(), |info| info.name.clone());
        advice(&LostTransaction {
            id,
            member,
            member_name,
            nonce: signed.tx.nonce.0,
            reason,
            node: &self.node.base,
            finalized_at,
            committed,
            saved,
        })
    }
}

/// What is known about a transaction that was not confirmed.
struct LostTransaction<'a> {
    id: Hash,
    member: MemberId,
    member_name: String,
    nonce: u64,
    /// Why it was not confirmed.
    reason: &'a str,
    /// The node's URL.
    node: &'a str,
    /// The height it is finalized at after all, if the node says so.
    finalized_at: Option<u64>,
    /// The member's last committed nonce (0 for none), if the node said.
    committed: Option<u64>,
    /// Where its signed JSON was saved, if it was.
    saved: Option<PathBuf>,
}

/// One line saying what happened to a transaction and what the user must do.
fn advice(lost: &LostTransaction<'_>) -> String {
    let LostTransaction {
        id,
        member,
        member_name,
        nonce,
        reason,
        node,
        ..
    } = lost;
    let head =
        format!("transaction {id} ({member_name}, nonce {nonce}) was not confirmed ({reason})");
    if let Some(height) = lost.finalized_at {
        return format!("{head}, but it is finalized at height {height}: see `seisan tx {id}`");
    }
    let Some(committed) = lost.committed else {
        return format!(
            "{head}; the node could not say whether nonce {nonce} was used: ask `curl {node}/v1/members/{}/nonce` (or another node) and check `seisan tx {id}` before signing it again",
            member.0
        );
    };
    if committed >= *nonce {
        return format!(
            "{head}; it is not on the chain and nonce {nonce} is already used by another transaction (the member's last committed nonce is {committed}), so it will never execute: run the same command again to sign it with the next nonce"
        );
    }
    let resubmit = match &lost.saved {
        Some(path) => format!(
            "resubmit the same signed transaction (it executes at most once) with `curl -sS -H 'content-type: application/json' --data @{} {node}/v1/transactions`, then `seisan tx {id}`",
            path.display()
        ),
        None => format!("check `seisan tx {id}` on another node"),
    };
    let rerun = if committed + 1 == *nonce {
        "re-running the command signs a replacement with the same nonce, so at most one of the two executes".to_string()
    } else {
        format!(
            "re-running the command signs a replacement with nonce {} and the original may still execute as well",
            committed + 1
        )
    };
    format!(
        "{head}; nonce {nonce} is still unused on chain (the member's last committed nonce is {committed}); {resubmit}; or {rerun}"
    )
}

/// Finds a member by name or by id, naming the known members when it fails.
pub fn resolve_member(genesis: &Genesis, text: &str) -> anyhow::Result<MemberId> {
    if let Some((id, _)) = genesis.member_by_name(text) {
        return Ok(id);
    }
    if let Ok(id) = text.parse::<u32>() {
        if genesis.member(MemberId(id)).is_some() {
            return Ok(MemberId(id));
        }
    }
    let names: Vec<&str> = genesis
        .members
        .iter()
        .map(|member| member.name.as_str())
        .collect();
    bail!("unknown member {text:?}; members are {}", names.join(", "))
}

/// Milliseconds since the Unix epoch by the system clock (what a signed request says).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// A blocking HTTP client for one node's API. Every failure is one line naming the
/// node and, for an error answer, the node's own error code and message.
///
/// Every request is signed with the member's key (`seisan_api::auth`) when the session
/// has one; without a key only the public endpoints answer, and a refusal says how to
/// give one.
pub struct NodeClient {
    pub base: String,
    agent: ureq::Agent,
    /// Which certificates an https:// node must present ([`NodeClient::with_ca`]).
    tls: ureq::tls::TlsConfig,
    /// The key file, read on the first request that needs it.
    key: Option<PathBuf>,
    credentials: std::cell::OnceCell<Option<seisan_api::Credentials>>,
}

impl NodeClient {
    /// A client that signs its requests with the key in `key` (if any).
    pub fn with_key(base: &str, key: Option<PathBuf>) -> anyhow::Result<NodeClient> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("node URL {base:?} must start with http:// or https://");
        }
        let tls = ureq::tls::TlsConfig::default();
        Ok(NodeClient {
            base,
            agent: Self::agent(tls.clone()),
            tls,
            key,
            credentials: std::cell::OnceCell::new(),
        })
    }

    /// This client trusting only the CA certificate(s) in `ca` for https:// (the webpki
    /// roots without one).
    pub fn with_ca(mut self, ca: Option<&Path>) -> anyhow::Result<NodeClient> {
        self.tls = seisan_tls::client_tls(ca)?;
        self.agent = Self::agent(self.tls.clone());
        Ok(self)
    }

    fn agent(tls: ureq::tls::TlsConfig) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .tls_config(tls)
            .build()
            .into()
    }

    /// The member's signing key, if the session has a readable one (a bad key file is
    /// reported by the command that needs it, see `Session::signer`).
    fn credentials(&self) -> Option<&seisan_api::Credentials> {
        self.credentials
            .get_or_init(|| {
                let path = self.key.as_ref()?;
                seisan_crypto::keyfile::read_key_file(path)
                    .ok()
                    .map(seisan_api::Credentials::new)
            })
            .as_ref()
    }

    /// The headers that authenticate `method path` with `body` (none without a key).
    pub fn auth_headers(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Vec<(&'static str, String)> {
        match self.credentials() {
            Some(credentials) => credentials
                .sign_request(method, path, unix_ms(), body)
                .to_vec(),
            None => Vec::new(),
        }
    }

    /// A GET of `path`, signed.
    fn signed_get(
        &self,
        agent: &ureq::Agent,
        path: &str,
    ) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let mut request = agent.get(&self.url(path));
        for (name, value) in self.auth_headers("GET", path, b"") {
            request = request.header(name, value);
        }
        request
    }

    /// A GET of `path` on the event stream's agent (no overall timeout), signed.
    pub fn streaming_get(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.signed_get(&self.streaming_agent(), path)
    }

    /// An agent without the overall timeout, for the event stream.
    pub fn streaming_agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(REQUEST_TIMEOUT))
            .tls_config(self.tls.clone())
            .build()
            .into()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn unreachable(&self, error: ureq::Error) -> anyhow::Error {
        // A certificate the client does not trust: say how to trust the right CA.
        // (rustls' refusal reaches ureq as an io error that says "invalid peer certificate").
        let hint = if matches!(error, ureq::Error::Rustls(_))
            || error.to_string().contains("peer certificate")
        {
            " (if the node's certificate is from your consortium's own CA, pass --ca FILE, set SEISAN_CA, or put ca = \"FILE\" in the config file)"
        } else {
            ""
        };
        anyhow!("cannot reach node at {}: {error}{hint}", self.base)
    }

    /// A GET of `path`: the answer as sent, for printing whole (`--json`); reads of
    /// its fields go through [`NodeClient::decode`] or [`NodeClient::get_json`].
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .signed_get(&self.agent, path)
            .call()
            .map_err(|error| self.unreachable(error))?;
        self.answer(path, response)
    }

    /// A GET of `path`, read as the API's type for it (`seisan_api::v1`).
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.decode(path, &self.get(path)?)
    }

    /// Reads the node's answer to `path` as `T`; an answer that is not one is an error
    /// naming the node, the endpoint and what serde found wrong (a node of another
    /// version, or a bug on either side).
    pub fn decode<T: DeserializeOwned>(&self, path: &str, answer: &Value) -> anyhow::Result<T> {
        decode_answer(&self.base, path, answer)
    }

    /// GET that waits while the node answers 503 (as its `Retry-After` says, at most
    /// [`UNAVAILABLE_WAIT`] in total), then reads the answer like [`NodeClient::get`].
    pub fn get_when_available(&self, path: &str) -> anyhow::Result<Value> {
        let mut waited = Duration::ZERO;
        loop {
            let answer = self
                .get_answer(path)
                .map_err(|error| self.unreachable(error))?;
            if answer.status == 503 && waited < UNAVAILABLE_WAIT {
                waited += answer.wait(&self.base);
                continue;
            }
            if answer.is_success() {
                return Ok(answer.body);
            }
            bail!("{}", answer.error_text(&self.base, path));
        }
    }

    /// A GET's status, body and `Retry-After`; only a failure to get any answer is
    /// an error.
    pub fn get_answer(&self, path: &str) -> Result<Answer, ureq::Error> {
        let response = self.signed_get(&self.agent, path).call()?;
        Ok(Answer::read(response))
    }

    /// A POST's status, body and `Retry-After`; only a failure to get any answer is
    /// an error.
    pub fn post_answer(&self, path: &str, body: &Value) -> Result<Answer, ureq::Error> {
        let body = body.to_string();
        let mut request = self
            .agent
            .post(&self.url(path))
            .header("content-type", "application/json");
        for (name, value) in self.auth_headers("POST", path, body.as_bytes()) {
            request = request.header(name, value);
        }
        let response = request.send(body.as_bytes())?;
        Ok(Answer::read(response))
    }

    /// For a 401 without a key: how to give one.
    /// For a 401 sent unsigned: how to give a key, or that the one given is unreadable.
    fn key_hint(&self, status: u16) -> String {
        match (status, self.credentials(), &self.key) {
            (401, None, Some(path)) => format!(
                "; the request went unsigned because the key file {} could not be read as a key",
                path.display()
            ),
            (401, None, None) => "; this node answers members only: pass --key FILE, set SEISAN_KEY, or put key = \"FILE\" in the config file".to_string(),
            _ => String::new(),
        }
    }

    fn answer(
        &self,
        path: &str,
        response: ureq::http::Response<ureq::Body>,
    ) -> anyhow::Result<Value> {
        let status = response.status().as_u16();
        let body: Result<Value, _> = response
            .into_body()
            .into_with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_json();
        match (status, body) {
            (200..=299, Ok(value)) => Ok(value),
            (200..=299, Err(error)) => Err(anyhow!(
                "node {} sent an unreadable answer to {path}: {error}",
                self.base
            )),
            (_, Ok(value)) => match v1::ErrorBody::deserialize(&value) {
                Ok(v1::ErrorBody { error }) => Err(anyhow!(
                    "{} ({}){}",
                    error.message,
                    error.code,
                    self.key_hint(status),
                )),
                Err(_) => Err(anyhow!("node {} answered {status} to {path}", self.base)),
            },
            (_, Err(_)) => Err(anyhow!("node {} answered {status} to {path}", self.base)),
        }
    }
}

/// A node's answer, whatever its status.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The JSON body (`null` if it was not JSON).
    pub body: Value,
    /// The `Retry-After` header in seconds, if the node sent one.
    pub retry_after: Option<Duration>,
}

impl Answer {
    fn read(response: ureq::http::Response<ureq::Body>) -> Answer {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .into_body()
            .into_with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_json()
            .unwrap_or(Value::Null);
        Answer {
            status,
            body,
            retry_after,
        }
    }

    pub fn is_success(&self) -> bool {
        (200..=299).contains(&self.status)
    }

    /// The node's error document, if the body is one.
    fn error(&self) -> Option<v1::ErrorDetail> {
        v1::ErrorBody::deserialize(&self.body)
            .ok()
            .map(|body| body.error)
    }

    /// Sleeps as long as the node asked (`Retry-After`, at most [`MAX_RETRY_AFTER`];
    /// one second if it did not say) and says so on stderr. Returns the time slept.
    fn wait(&self, node: &str) -> Duration {
        let pause = self
            .retry_after
            .unwrap_or(Duration::from_secs(1))
            .clamp(POLL_INTERVAL, MAX_RETRY_AFTER);
        let reason = self
            .error()
            .map_or("unavailable".to_string(), |error| error.message);
        eprintln!(
            "note: node {node} cannot take it now ({reason}); retrying in {} s",
            pause.as_secs_f64()
        );
        std::thread::sleep(pause);
        pause
    }

    /// One line naming the node's error code and message.
    fn error_text(&self, node: &str, path: &str) -> String {
        match self.error() {
            Some(error) => format!("{} ({})", error.message, error.code),
            None => format!("node {node} answered {} to {path}", self.status),
        }
    }
}

/// Reads a node's answer to `path` as `T` (see [`NodeClient::decode`]).
pub fn decode_answer<T: DeserializeOwned>(
    node: &str,
    path: &str,
    answer: &Value,
) -> anyhow::Result<T> {
    T::deserialize(answer).map_err(|error| {
        anyhow!(
            "node {node} sent an answer to {path} that is not a {}: {error}",
            short_type_name::<T>()
        )
    })
}

/// `T`'s name without its module path (`NodeStatus`, `Vec<Order>`).
fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let mut short = String::with_capacity(full.len());
    for part in full.split_inclusive(['<', '>', ',', ' ']) {
        short.push_str(part.rsplit("::").next().unwrap_or(part));
    }
    short
}

/// One lane's nonces from a node's nonce answer: under `lanes`, or for the member lane
/// the top-level ones (what a node from before lanes answers).
fn lane_nonces(answer: &v1::NonceInfo, lane: Lane) -> Option<v1::LaneNonce> {
    answer.lanes.get(lane.name()).copied().or(match lane {
        Lane::Member => Some(v1::LaneNonce {
            committed: answer.committed,
            pending: answer.pending,
            next: answer.next,
        }),
        Lane::Node => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use seisan_types::ids::Nonce;

    #[test]
    fn the_nonce_is_read_from_the_bodys_lane() {
        let answer: v1::NonceInfo = decode_answer(
            "http://n",
            "/v1/members/1/nonce",
            &serde_json::json!({
                "member": 1, "committed": 4, "pending": null, "next": 5,
                "lanes": {
                    "member": {"committed": 4, "pending": null, "next": 5},
                    "node": {"committed": 9, "pending": 11, "next": 12},
                },
            }),
        )
        .unwrap();
        let next = |answer: &v1::NonceInfo, lane| lane_nonces(answer, lane).map(|l| l.next.0);
        assert_eq!(next(&answer, Lane::Member), Some(5));
        assert_eq!(next(&answer, Lane::Node), Some(12));
        assert_eq!(
            lane_nonces(&answer, Lane::Node).and_then(|l| l.committed),
            Some(Nonce(9))
        );
        // A node from before lanes answers the member lane only.
        let old: v1::NonceInfo = decode_answer(
            "http://n",
            "/v1/members/1/nonce",
            &serde_json::json!({"member": 1, "committed": 4, "pending": null, "next": 5}),
        )
        .unwrap();
        assert_eq!(next(&old, Lane::Member), Some(5));
        assert_eq!(next(&old, Lane::Node), None);
    }

    #[test]
    fn an_answer_of_the_wrong_shape_names_the_endpoint_and_the_field() {
        let error = decode_answer::<v1::NodeStatus>(
            "http://n",
            "/v1/status",
            &serde_json::json!({"chain_id": "c", "member": 0, "height": "tall"}),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("http://n"), "{error}");
        assert!(error.contains("/v1/status"), "{error}");
        assert!(error.contains("not a NodeStatus"), "{error}");
        assert!(error.contains("invalid type"), "{error}");
    }

    fn lost(committed: Option<u64>, saved: Option<&str>) -> LostTransaction<'static> {
        LostTransaction {
            id: Hash([7; 32]),
            member: MemberId(2),
            member_name: "exchange-b".into(),
            nonce: 5,
            reason: "node http://n lost it 3 times",
            node: "http://n",
            finalized_at: None,
            committed,
            saved: saved.map(PathBuf::from),
        }
    }

    #[test]
    fn advice_says_whether_the_nonce_was_used_and_what_to_run() {
        let id = Hash([7; 32]);
        let used = advice(&lost(Some(5), None));
        assert!(
            used.contains(&format!("transaction {id} (exchange-b, nonce 5)")),
            "{used}"
        );
        assert!(
            used.contains("nonce 5 is already used by another transaction"),
            "{used}"
        );
        assert!(used.contains("will never execute"), "{used}");
        assert!(used.contains("run the same command again"), "{used}");

        let next = advice(&lost(Some(4), Some("/tmp/t.json")));
        assert!(next.contains("nonce 5 is still unused on chain"), "{next}");
        assert!(
            next.contains("--data @/tmp/t.json http://n/v1/transactions"),
            "{next}"
        );
        assert!(
            next.contains("same nonce, so at most one of the two executes"),
            "{next}"
        );

        let gap = advice(&lost(Some(2), Some("/tmp/t.json")));
        assert!(
            gap.contains("replacement with nonce 3 and the original may still execute"),
            "{gap}"
        );

        let unknown = advice(&lost(None, None));
        assert!(
            unknown.contains("could not say whether nonce 5 was used"),
            "{unknown}"
        );
        assert!(
            unknown.contains("curl http://n/v1/members/2/nonce"),
            "{unknown}"
        );

        let finalized = advice(&LostTransaction {
            finalized_at: Some(9),
            ..lost(Some(5), None)
        });
        assert!(finalized.contains("finalized at height 9"), "{finalized}");
        assert!(!used.contains('\n'), "one line: {used}");
    }
}
