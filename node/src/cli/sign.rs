//! `seisan sign`: offline signing. An exchange's back office signs a transaction on one
//! machine (which holds the key and the genesis file, and needs no node) and submits the
//! printed signed transaction from another (`curl --data @signed.json .../v1/transactions`).
//!
//! The input is the unsigned envelope a signed transaction holds (`tx`: `chain_id`,
//! `member`, `nonce`, `body`); the nonce is the caller's business (the member's next one,
//! `GET /v1/members/{member}/nonce`, of the body's lane). Before anything is signed the
//! envelope is checked against genesis: its chain id must be the genesis's, and the key
//! must be the named member's. Without `--node` that check is offline, against genesis;
//! with `--node` it is against the node's current membership (members added and keys
//! rotated by governance are only there).

use super::session::Session;
use super::ClientOptions;
use anyhow::{anyhow, bail, Context};
use clap::Args;
use seisan_crypto::Keypair;
use seisan_types::ids::{ChainId, MemberId, Nonce};
use seisan_types::{Transaction, TxBody};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest input read (a batch allocation of the most entries fits many times).
const MAX_INPUT_BYTES: u64 = 4 << 20;

/// `seisan sign [FILE]`.
#[derive(Args, Debug)]
pub struct SignArgs {
    /// The unsigned transaction, JSON `{"chain_id", "member", "nonce", "body"}` (the `tx`
    /// of a signed transaction) [default, or `-`: standard input].
    pub file: Option<PathBuf>,
    /// The member's key file.
    #[arg(long, env = "SEISAN_KEY", value_name = "FILE", required = true)]
    pub key: PathBuf,
    /// The genesis file: the signature is bound to its chain id and hash.
    #[arg(long, env = "SEISAN_GENESIS", value_name = "FILE", required = true)]
    pub genesis: PathBuf,
    /// Check the key against this node's current membership instead of genesis (not
    /// taken from SEISAN_NODE: without this flag nothing is sent anywhere).
    #[arg(long, value_name = "URL")]
    pub node: Option<String>,
    /// The CA certificate (PEM) an https:// `--node` is checked against.
    #[arg(long, env = "SEISAN_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
}

/// Reads, checks, signs and prints the signed transaction (one line of JSON).
pub fn run(args: SignArgs) -> anyhow::Result<()> {
    let text = read_input(args.file.as_deref())?;
    let tx = parse_transaction(&text)?;
    let mut session = Session::open(&ClientOptions {
        node: args.node.clone(),
        key: Some(args.key.clone()),
        genesis: Some(args.genesis.clone()),
        ca: args.ca.clone(),
        json: true,
    })?;
    let domain = session.genesis_domain()?;
    if tx.chain_id != domain.chain_id {
        bail!(
            "the transaction is for chain {:?}, but genesis {} is chain {:?}",
            tx.chain_id.0,
            args.genesis.display(),
            domain.chain_id.0
        );
    }
    let keypair = if args.node.is_some() {
        // The node's membership (Session::signer falls back to genesis if the node
        // does not answer it).
        let (keypair, key_member) = session.signer()?;
        if key_member != tx.member {
            let (named, holder) = (
                session.member_label(tx.member),
                session.member_label(key_member),
            );
            bail!(
                "the key in {} is {holder}'s (member {key_member}), but the transaction names member {} ({named})",
                args.key.display(),
                tx.member
            );
        }
        keypair
    } else {
        offline_key(&args.key, session.genesis()?, &args.genesis, tx.member)?
    };
    let signed = seisan_crypto::sign_transaction(&keypair, &domain.genesis, tx);
    println!("{}", serde_json::to_string(&signed)?);
    Ok(())
}

/// The key file's key, if genesis gives it to `member`; else an error naming whose key
/// it is, or that genesis cannot tell.
fn offline_key(
    path: &Path,
    genesis: &seisan_types::Genesis,
    genesis_path: &Path,
    member: MemberId,
) -> anyhow::Result<Keypair> {
    let keypair = seisan_crypto::keyfile::read_key_file(path)
        .map_err(|error| anyhow!("bad key file: {error}"))?;
    let key = keypair.public_key();
    let Some(named) = genesis.member(member) else {
        bail!(
            "member {member} is not in genesis {} ({} members); for a member added by governance, pass --node URL to check against its membership",
            genesis_path.display(),
            genesis.members.len()
        );
    };
    if named.public_key == key {
        return Ok(keypair);
    }
    match genesis.member_by_key(&key) {
        Some((holder_id, holder)) => bail!(
            "the key in {} is {}'s (member {holder_id}), but the transaction names member {member} ({})",
            path.display(),
            holder.name,
            named.name
        ),
        None => bail!(
            "the key in {} ({key}) is not {}'s key in genesis (member {member}); if governance rotated it, pass --node URL to check against the node's membership",
            path.display(),
            named.name
        ),
    }
}

/// The input text: the file, or standard input for none or `-`.
fn read_input(file: Option<&Path>) -> anyhow::Result<String> {
    let mut text = String::new();
    match file {
        Some(path) if path != Path::new("-") => {
            std::fs::File::open(path)
                .with_context(|| format!("reading {}", path.display()))?
                .take(MAX_INPUT_BYTES)
                .read_to_string(&mut text)
                .with_context(|| format!("reading {}", path.display()))?;
        }
        _ => {
            std::io::stdin()
                .take(MAX_INPUT_BYTES)
                .read_to_string(&mut text)
                .context("reading the transaction from standard input")?;
        }
    }
    Ok(text)
}

/// Parses the unsigned envelope; an error names the field (`tx.body.place_order`, ...)
/// serde refused and why.
fn parse_transaction(text: &str) -> anyhow::Result<Transaction> {
    let value: Value = serde_json::from_str(text)
        .map_err(|error| anyhow!("the transaction is not JSON: {error}"))?;
    let Value::Object(object) = &value else {
        bail!("the transaction must be a JSON object with chain_id, member, nonce and body");
    };
    if object.contains_key("tx") && object.contains_key("signature") {
        bail!("this is a signed transaction (it has `tx` and `signature`): give its `tx` object to sign it again");
    }
    if let Some(unknown) = object
        .keys()
        .find(|name| !["chain_id", "member", "nonce", "body"].contains(&name.as_str()))
    {
        bail!("tx.{unknown}: unknown field; expected chain_id, member, nonce and body");
    }
    fn field<T: DeserializeOwned>(
        object: &serde_json::Map<String, Value>,
        name: &str,
    ) -> anyhow::Result<T> {
        let value = object
            .get(name)
            .ok_or_else(|| anyhow!("tx.{name}: missing field"))?;
        serde_json::from_value(value.clone()).map_err(|error| {
            // A body is one kind: name it in the path too (`tx.body.place_order`).
            let kind = match value {
                Value::Object(inner) if name == "body" && inner.len() == 1 => inner
                    .keys()
                    .next()
                    .map(|kind| format!(".{kind}"))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            anyhow!("tx.{name}{kind}: {error}")
        })
    }
    Ok(Transaction {
        chain_id: field::<ChainId>(object, "chain_id")?,
        member: field::<MemberId>(object, "member")?,
        nonce: field::<Nonce>(object, "nonce")?,
        body: field::<TxBody>(object, "body")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_field() {
        let error = |text: &str| parse_transaction(text).unwrap_err().to_string();
        assert!(error("{").starts_with("the transaction is not JSON"));
        assert_eq!(
            error(r#"{"chain_id":"c","member":1,"nonce":2}"#),
            "tx.body: missing field"
        );
        assert!(
            error(r#"{"chain_id":"c","member":"one","nonce":2,"body":"close_cycle"}"#)
                .starts_with("tx.member: invalid type")
        );
        assert!(
            error(r#"{"chain_id":"c","member":1,"nonce":2,"body":{"cancel_order":{}}}"#)
                .starts_with("tx.body.cancel_order: missing field `order`"),
            "{}",
            error(r#"{"chain_id":"c","member":1,"nonce":2,"body":{"cancel_order":{}}}"#)
        );
        assert!(error(r#"{"tx":{},"signature":"00"}"#).contains("signed transaction"));
        assert!(
            error(r#"{"chain_id":"c","member":1,"nonce":2,"body":"close_cycle","x":1}"#)
                .starts_with("tx.x: unknown field")
        );
        let tx = parse_transaction(r#"{"chain_id":"c","member":1,"nonce":2,"body":"close_cycle"}"#)
            .unwrap();
        assert_eq!(tx.body, TxBody::CloseCycle);
        assert_eq!(tx.nonce, Nonce(2));
    }
}
