//! The client's connection to the consortium: which node to ask, which key signs, which
//! genesis file is trusted; the HTTP calls; building, signing, submitting and waiting
//! for transactions.
//!
//! Settings come from, in order of precedence: command-line flags, environment
//! variables (`SEISAN_NODE`, `SEISAN_KEY`, `SEISAN_GENESIS`), the config file
//! (`SEISAN_CONFIG`, or `~/.config/seisan/client.toml`, keys `node`, `key`, `genesis`;
//! relative paths are relative to the file), then the default node URL. Keys never
//! leave the machine: transactions are signed here and only the signed transaction is
//! sent.

use anyhow::{anyhow, bail, Context};
use clap::Args;
use seisan_crypto::Keypair;
use seisan_types::hash::Hash;
use seisan_types::ids::{MemberId, Nonce};
use seisan_types::{Genesis, Transaction, TxBody};
use serde::Deserialize;
use serde_json::Value;
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
    genesis_path: Option<PathBuf>,
    genesis: Option<Genesis>,
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
        Ok(Session {
            node: NodeClient::new(&node)?,
            json: options.json,
            key: options.key.clone().or(config.key.map(relative)),
            genesis_path: options.genesis.clone().or(config.genesis.map(&relative)),
            genesis: None,
        })
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

    /// The member's key and its member id in genesis.
    pub fn signer(&mut self) -> anyhow::Result<(Keypair, MemberId)> {
        let path = self.key.clone().ok_or_else(|| {
            anyhow!("no key file: pass --key FILE, set SEISAN_KEY, or put key = \"FILE\" in the config file")
        })?;
        let keypair = seisan_crypto::keyfile::read_key_file(&path)
            .map_err(|error| anyhow!("bad key file: {error}"))?;
        let genesis = self.genesis()?;
        let (member, _) = genesis
            .member_by_key(&keypair.public_key())
            .ok_or_else(|| {
                anyhow!(
                    "bad key file: the key in {} ({}) is not a member's key in genesis",
                    path.display(),
                    keypair.public_key()
                )
            })?;
        Ok((keypair, member))
    }

    /// The member a read command is about: `--member` if given, else the key's member.
    pub fn member_or_self(&mut self, member: Option<&str>) -> anyhow::Result<MemberId> {
        match member {
            Some(text) => resolve_member(self.genesis()?, text),
            None => self
                .signer()
                .map(|(_, member)| member)
                .map_err(|error| anyhow!("{error:#} (or name the member with --member)")),
        }
    }

    /// Signs `body` with the next nonce and submits it. Returns the transaction id.
    pub fn submit(&mut self, body: TxBody) -> anyhow::Result<Hash> {
        let (keypair, member) = self.signer()?;
        let chain_id = self.genesis()?.chain_id.clone();
        let nonce = self.node.get(&format!("/v1/members/{}/nonce", member.0))?;
        let next = nonce["next"].as_u64().ok_or_else(|| {
            anyhow!(
                "node {} sent a nonce answer without `next`: {nonce}",
                self.node.base
            )
        })?;
        let signed = seisan_crypto::sign_transaction(
            &keypair,
            Transaction {
                chain_id,
                member,
                nonce: Nonce(next),
                body,
            },
        );
        let id = signed.id();
        self.node
            .post("/v1/transactions", &serde_json::to_value(&signed)?)
            .context("the node refused the transaction")?;
        Ok(id)
    }

    /// Polls until the transaction is finalized (its status document, with the
    /// receipt) or [`FINALIZE_WAIT`] passes.
    pub fn wait_finalized(&self, id: &Hash) -> anyhow::Result<Value> {
        let deadline = Instant::now() + FINALIZE_WAIT;
        loop {
            let status = self.node.get(&format!("/v1/transactions/{id}"))?;
            if status["status"] == "finalized" {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "transaction {id} was not finalized within {} s; it may still be; check with `seisan tx {id}`",
                    FINALIZE_WAIT.as_secs()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
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

/// A blocking HTTP client for one node's API. Every failure is one line naming the
/// node and, for an error answer, the node's own error code and message.
pub struct NodeClient {
    pub base: String,
    agent: ureq::Agent,
}

impl NodeClient {
    pub fn new(base: &str) -> anyhow::Result<NodeClient> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("node URL {base:?} must start with http:// or https://");
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        Ok(NodeClient { base, agent })
    }

    /// An agent without the overall timeout, for the event stream.
    pub fn streaming_agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(REQUEST_TIMEOUT))
            .build()
            .into()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn unreachable(&self, error: ureq::Error) -> anyhow::Error {
        anyhow!("cannot reach node at {}: {error}", self.base)
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .agent
            .get(&self.url(path))
            .call()
            .map_err(|error| self.unreachable(error))?;
        self.answer(path, response)
    }

    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .agent
            .post(&self.url(path))
            .header("content-type", "application/json")
            .send(body.to_string().as_bytes())
            .map_err(|error| self.unreachable(error))?;
        self.answer(path, response)
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
            (_, Ok(value)) if value["error"]["message"].is_string() => Err(anyhow!(
                "{} ({})",
                value["error"]["message"].as_str().unwrap_or_default(),
                value["error"]["code"].as_str().unwrap_or("error"),
            )),
            (_, _) => Err(anyhow!("node {} answered {status} to {path}", self.base)),
        }
    }
}
