//! Transactions the node signs itself (custody and bank attestations, payout notices).
//!
//! Several watchers sign with the one member key, in the member's node lane (every body
//! the node signs is a node-lane kind, see [`seisan_types::tx::Lane`]), whose nonces
//! must be exactly consecutive. So nonce choice and admission happen under one
//! process-wide lock: the next nonce is one above both the node lane's committed nonce
//! and the highest one pending in the mempool, and the transaction is in the mempool
//! before the lock is released, so the next caller sees it. A person using the same
//! member key from the CLI signs in the member lane, so it cannot take these nonces.
//! Nothing is signed while the node is syncing: its committed nonce could be stale and
//! the transaction would be dropped later.

use super::admission::admit_transactions;
use super::api::ApiContext;
use seisan_crypto::Keypair;
use seisan_types::hash::Hash;
use seisan_types::ids::{MemberId, Nonce};
use seisan_types::tx::{Lane, Transaction, TxBody};

static SUBMIT_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Signs `body` (a node-lane kind) with the node's member key at the node lane's next
/// nonce and admits it.
pub async fn submit_signed(
    context: &ApiContext,
    keypair: &Keypair,
    member: MemberId,
    body: TxBody,
) -> anyhow::Result<Hash> {
    if context.status.borrow().syncing {
        anyhow::bail!(
            "this node is syncing, so its committed nonces may be stale; the transaction is signed on a later pass"
        );
    }
    let lane = body.lane();
    assert_eq!(lane, Lane::Node, "the node signs only node-lane bodies");
    let _guard = SUBMIT_LOCK.lock().await;
    let committed = seisan_contracts::query::last_nonce(&context.db.committed_view(), member, lane)
        .map_or(0, |nonce| nonce.0);
    let pending = context
        .mempool
        .lock()
        .expect("mempool lock")
        .pending_nonce(member, lane)
        .map_or(0, |nonce| nonce.0);
    let nonce = committed.max(pending) + 1;
    let transaction = seisan_crypto::sign_transaction(
        keypair,
        Transaction {
            chain_id: context.genesis.chain_id.clone(),
            member,
            nonce: Nonce(nonce),
            body,
        },
    );
    let kind = transaction.tx.body.kind_name();
    admit_transactions(context, vec![transaction])
        .await
        .pop()
        .expect("one result per transaction")
        .map_err(|error| anyhow::anyhow!("{kind} at nonce {nonce} not admitted: {error}"))
}
