//! Fixtures shared by the node's unit tests: a testnet genesis with an opening JPY
//! balance, a signed allocation, and the unsigned finalization the block pipeline
//! accepts (it trusts the engine to have verified certificates).

use seisan_crypto::Keypair;
use seisan_types::amount::Amount;
use seisan_types::block::{Block, QuorumCertificate, Vote, VoteKind};
use seisan_types::genesis::{Genesis, OpeningBalance};
use seisan_types::ids::{AssetId, MemberId, Nonce};
use seisan_types::tx::{
    Allocation, AllocationDirection, CustomerId, SignedTransaction, Transaction, TxBody,
};
use std::sync::Arc;

/// The testnet genesis (p2p ports from `p2p_base_port`) with 500 JPY for exchange-a.
pub fn genesis(p2p_base_port: u16) -> Arc<Genesis> {
    let mut genesis = crate::genesis_command::testnet_genesis(p2p_base_port, 0);
    genesis.opening_balances.push(OpeningBalance {
        member: "exchange-a".into(),
        asset: "JPY".into(),
        amount: "500".into(),
    });
    Arc::new(genesis)
}

/// exchange-a allocates `amount` JPY minor units to its customer alice.
/// A pipeline on a fresh in-memory store.
pub fn pipeline_in_memory(
    genesis: &Arc<Genesis>,
) -> crate::node::pipeline::Pipeline<seisan_state::MemoryBackend> {
    crate::node::pipeline::Pipeline::open(
        seisan_state::StateDb::open(seisan_state::MemoryBackend::new()).unwrap(),
        genesis.clone(),
    )
    .unwrap()
}

pub fn allocation(genesis: &Genesis, nonce: u64, amount: u128) -> SignedTransaction {
    seisan_crypto::sign_transaction(
        &Keypair::dev("exchange-a"),
        &genesis.hash(),
        Transaction {
            chain_id: genesis.chain_id.clone(),
            member: MemberId(1),
            nonce: Nonce(nonce),
            body: TxBody::Allocate(Allocation {
                asset: AssetId(1),
                customer: CustomerId("alice".into()),
                amount: Amount(amount),
                direction: AllocationDirection::ToCustomer,
            }),
        },
    )
}

/// A finalization of `block` without signatures: the pipeline does not check them.
pub fn certificate(block: &Block) -> QuorumCertificate {
    QuorumCertificate {
        vote: Vote {
            chain_id: block.header.chain_id.clone(),
            epoch: seisan_types::Epoch(0),
            view: block.header.view,
            height: block.header.height,
            block: block.hash(),
            kind: VoteKind::Finalize,
        },
        signatures: vec![],
    }
}

/// `vote` certified by the dev keys of `signers` (genesis member names).
pub fn dev_certificate(genesis: &Genesis, vote: Vote, signers: &[&str]) -> QuorumCertificate {
    let votes: Vec<_> = signers
        .iter()
        .map(|name| {
            let (member, _) = genesis.member_by_name(name).expect("a genesis member");
            seisan_crypto::sign_vote(
                &seisan_crypto::Keypair::dev(name),
                &genesis.hash(),
                member,
                vote.clone(),
            )
        })
        .collect();
    seisan_crypto::assemble_certificate(vote, &votes)
}

/// A node's API context over a sled store in `dir` holding `genesis`' state, with a
/// real transaction journal, not syncing; the gossip receiver is returned so admitted
/// transactions can be gossiped.
pub fn context(
    dir: &std::path::Path,
    genesis: Arc<Genesis>,
) -> (
    crate::node::api::ApiContext,
    tokio::sync::mpsc::Receiver<Vec<SignedTransaction>>,
) {
    use crate::node::api::{ApiContext, NodeStatus};
    use crate::node::mempool::{Mempool, MempoolLimits};
    use std::sync::{Mutex, RwLock};
    use tokio::sync::{broadcast, mpsc, watch};
    let db = seisan_state::StateDb::open(
        seisan_state::SledBackend::open(&dir.join("state")).expect("sled store"),
    )
    .expect("state db");
    crate::node::pipeline::Pipeline::open(db.clone(), genesis.clone()).expect("genesis state");
    let (journal, replayed) = crate::node::tx_journal::TxJournal::open(
        &dir.join("tx-journal"),
        crate::node::tx_journal::still_pending(db.clone()),
    )
    .expect("journal");
    assert!(replayed.is_empty(), "a fresh journal");
    let (_, status) = watch::channel(NodeStatus {
        syncing: false,
        ..NodeStatus::default()
    });
    let (gossip, gossiped) = mpsc::channel(64);
    let (_, custody) = watch::channel(Default::default());
    let (_, bank) = watch::channel(Default::default());
    let context = ApiContext {
        config: crate::node::committed_config::CommittedConfig::new(genesis.clone()),
        domain: genesis.domain(),
        genesis,
        db,
        mempool: Arc::new(Mutex::new(Mempool::new(MempoolLimits::default()))),
        status,
        events: broadcast::channel(16).0,
        gossip,
        journal,
        metrics: Arc::new(crate::node::metrics::Metrics::new()),
        commit_lock: Arc::new(RwLock::new(())),
        custody,
        bank,
        bank_reader: None,
        day_cutoff: Default::default(),
        data_dir: dir.to_path_buf(),
    };
    (context, gossiped)
}

/// The bodies in `context`'s mempool (up to 16), in the order a proposer would take
/// them.
pub fn mempool_bodies(context: &crate::node::api::ApiContext) -> Vec<TxBody> {
    context
        .mempool
        .lock()
        .unwrap()
        .select(16, 1 << 20, |_, _| Nonce(1))
        .into_iter()
        .map(|transaction| transaction.tx.body)
        .collect()
}
