//! `seisan dev-chain`: appends finalized blocks to a dev network's data directory,
//! certified with the well-known dev keys of its validators, for benchmarks that need a
//! long chain without growing it live (the benchmark's wiped-node resync on 100,000
//! blocks; three nodes on two cores finalize about 80 small blocks a second).
//!
//! Each block goes through the node's own pipeline (built, executed, committed with its
//! certificate, receipts and transaction index), so a node started on the directory
//! opens it as its own, and its peers serve it as any other chain. It refuses a chain
//! that is not a dev network, and one whose validators' keys are not the dev keys: it
//! cannot certify anything else.

use crate::node::pipeline::Pipeline;
use anyhow::{bail, Context};
use clap::Args;
use seisan_crypto::Keypair;
use seisan_state::{SledBackend, StateDb};
use seisan_types::{SignedTransaction, ValidatorSet, View, Vote, VoteKind};
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

/// Blocks committed per fsync.
const BLOCKS_PER_FLUSH: u64 = 1_000;
/// Milliseconds between the timestamps of consecutive generated blocks.
const BLOCK_SPACING_MS: u64 = 10;

#[derive(Args, Debug)]
pub struct DevChainArgs {
    /// The dev network's genesis file.
    #[arg(long)]
    genesis: PathBuf,
    /// The data directory to extend (created if missing; its chain must be this
    /// genesis's, and no node may be running on it).
    #[arg(long)]
    data: PathBuf,
    /// How many blocks to append.
    #[arg(long)]
    blocks: u64,
    /// Transactions per block, read from stdin as JSON lines of signed transactions
    /// (they are executed, not verified: a bad one gets a failed receipt); 0: empty
    /// blocks.
    #[arg(long, default_value_t = 0)]
    txs_per_block: usize,
}

pub fn run(args: DevChainArgs) -> anyhow::Result<()> {
    let genesis = Arc::new(crate::genesis_command::load_genesis(&args.genesis)?);
    if !genesis.chain_id.is_dev() {
        bail!(
            "chain {} is not a dev network; dev-chain certifies blocks with the well-known dev keys",
            genesis.chain_id
        );
    }
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating {}", args.data.display()))?;
    let state = args.data.join("state");
    let db = StateDb::open(SledBackend::open(&state)?)
        .with_context(|| format!("opening state at {}", state.display()))?
        .with_background_checkpoints();
    let mut pipeline = Pipeline::open(db.clone(), genesis.clone()).map_err(anyhow::Error::msg)?;
    let membership = seisan_contracts::governance::membership(&db.committed_view());
    let set = membership.validator_set();
    let signers = dev_signers(&membership, &set)?;
    let validators = set.members();
    let mut lines = std::io::stdin().lock().lines();
    let start = pipeline.tip().height;
    for _ in 0..args.blocks {
        let tip = pipeline.tip();
        let mut txs = Vec::with_capacity(args.txs_per_block);
        for _ in 0..args.txs_per_block {
            let Some(line) = lines.next() else {
                break;
            };
            let line = line.context("reading transactions from stdin")?;
            let tx: SignedTransaction = serde_json::from_str(&line)
                .with_context(|| format!("a transaction on stdin does not parse: {line:.80}"))?;
            txs.push(tx);
        }
        let view = View(tip.view.0 + 1);
        let proposer = seisan_consensus::leader_of(&validators, view);
        let block = pipeline
            .build(
                view,
                tip.hash,
                proposer,
                tip.timestamp_ms + BLOCK_SPACING_MS,
                txs,
            )
            .map_err(|error| anyhow::anyhow!("building block {}: {error}", tip.height.next()))?;
        let vote = Vote {
            chain_id: genesis.chain_id.clone(),
            epoch: block.header.epoch,
            view,
            height: block.header.height,
            block: block.hash(),
            kind: VoteKind::Finalize,
        };
        let votes: Vec<_> = signers
            .iter()
            .take(set.quorum as usize)
            .map(|(member, key)| {
                seisan_crypto::sign_vote(key, &genesis.hash(), *member, vote.clone())
            })
            .collect();
        let certificate = seisan_crypto::assemble_certificate(vote, &votes);
        pipeline
            .commit_unflushed(&block, &certificate, Vec::new())
            .map_err(|error| anyhow::anyhow!("committing block {}: {error}", tip.height.next()))?;
        if block.header.height.0.is_multiple_of(BLOCKS_PER_FLUSH) {
            db.flush();
        }
    }
    db.flush();
    db.wait_for_checkpoints();
    let tip = pipeline.tip();
    println!(
        "{}",
        serde_json::json!({
            "from_height": start.0,
            "height": tip.height.0,
            "state_root": tip.state_root.to_hex(),
        })
    );
    Ok(())
}

/// The dev key of every validator of `set`, which must be the key the set names.
fn dev_signers(
    membership: &seisan_types::membership::Membership,
    set: &ValidatorSet,
) -> anyhow::Result<Vec<(seisan_types::MemberId, Keypair)>> {
    set.validators
        .iter()
        .map(|(member, public_key)| {
            let name = &membership
                .member(*member)
                .context("a validator is not a member")?
                .member
                .name;
            let key = Keypair::dev(name);
            if key.public_key() != *public_key {
                bail!("validator {name}'s key is not its dev key; dev-chain cannot certify for it");
            }
            Ok((*member, key))
        })
        .collect()
}
