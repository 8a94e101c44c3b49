//! Admission of transactions into the mempool, shared by the HTTP API and gossip:
//! size, chain id, membership and signature (batch-verified), then the nonce against
//! the committed state, then the mempool's own bounds.

use super::api::ApiContext;
use super::mempool::{AdmitError, Mempool};
use seisan_crypto::TxError;
use seisan_state::{Backend, StateDb};
use seisan_types::codec;
use seisan_types::genesis::Genesis;
use seisan_types::hash::Hash;
use seisan_types::ids::AssetId;
use seisan_types::tx::{SignedTransaction, TxBody, MAX_TRANSACTION_BYTES};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    #[error("transaction is {size} bytes encoded; the limit is {MAX_TRANSACTION_BYTES}")]
    TooLarge { size: usize },
    #[error(transparent)]
    Transaction(#[from] TxError),
    #[error(transparent)]
    Mempool(AdmitError),
    #[error("pair {base}/{quote} is not traded on this chain (genesis pairs only)")]
    UnknownPair { base: AssetId, quote: AssetId },
}

impl AdmissionError {
    /// A stable machine-readable name.
    pub fn code(&self) -> &'static str {
        match self {
            AdmissionError::TooLarge { .. } => "transaction_too_large",
            AdmissionError::Transaction(TxError::WrongChain { .. }) => "wrong_chain",
            AdmissionError::Transaction(TxError::UnknownMember { .. }) => "unknown_member",
            AdmissionError::Transaction(TxError::BadSignature { .. }) => "bad_signature",
            AdmissionError::Transaction(TxError::StaleNonce { .. }) => "stale_nonce",
            AdmissionError::Transaction(TxError::RepeatedNonce { .. }) => "repeated_nonce",
            AdmissionError::Mempool(AdmitError::Busy { .. }) => "busy",
            AdmissionError::Mempool(AdmitError::Duplicate { .. }) => "duplicate",
            AdmissionError::Mempool(AdmitError::NoncePending { .. }) => "nonce_pending",
            AdmissionError::Mempool(AdmitError::StaleNonce { .. }) => "stale_nonce",
            AdmissionError::UnknownPair { .. } => "unknown_pair",
        }
    }

    /// Whether the sender is at fault (a peer that gossips such a transaction
    /// misbehaves) rather than the local node being busy or already having it.
    pub fn is_invalid(&self) -> bool {
        matches!(
            self,
            AdmissionError::TooLarge { .. }
                | AdmissionError::UnknownPair { .. }
                | AdmissionError::Transaction(
                    TxError::WrongChain { .. }
                        | TxError::UnknownMember { .. }
                        | TxError::BadSignature { .. }
                )
        )
    }
}

/// Checks and admits transactions; returns one result per transaction and the admitted
/// ones. Signature checks run on the caller's thread: call from a blocking context.
pub fn admit_batch<B: Backend + Clone>(
    genesis: &Genesis,
    db: &StateDb<B>,
    mempool: &Mutex<Mempool>,
    transactions: Vec<SignedTransaction>,
) -> (Vec<Result<Hash, AdmissionError>>, Vec<SignedTransaction>) {
    let sizes: Vec<usize> = transactions
        .iter()
        .map(|tx| codec::encode(tx).len())
        .collect();
    let verified = seisan_crypto::verify_transactions(genesis, &transactions);
    let view = db.committed_view();
    let mut results = Vec::with_capacity(transactions.len());
    let mut admitted = Vec::new();
    let mut pool = mempool.lock().expect("mempool lock");
    for ((transaction, size), verification) in transactions.into_iter().zip(sizes).zip(verified) {
        let id = transaction.id();
        let result = if size > MAX_TRANSACTION_BYTES {
            Err(AdmissionError::TooLarge { size })
        } else if let Err(error) = verification {
            Err(AdmissionError::Transaction(error))
        } else if let Some(error) = unknown_pair(genesis, &transaction) {
            // Stateless and certain to be rejected by the contracts: refuse it before it
            // takes a nonce, so the client hears why at once.
            Err(error)
        } else {
            let member = transaction.tx.member;
            let committed = seisan_contracts::query::last_nonce(&view, member);
            seisan_crypto::check_nonce(member, transaction.tx.nonce, committed)
                .map_err(AdmissionError::Transaction)
                .and_then(|()| {
                    pool.admit(transaction.clone(), id, size, committed)
                        .map_err(AdmissionError::Mempool)
                })
                .map(|()| admitted.push(transaction))
        };
        results.push(result.map(|()| id));
    }
    (results, admitted)
}

/// The pair a transaction names, if genesis does not trade it.
fn unknown_pair(genesis: &Genesis, transaction: &SignedTransaction) -> Option<AdmissionError> {
    let pair = match &transaction.tx.body {
        TxBody::PlaceOrder(order) => order.pair,
        TxBody::RequestQuote(request) => request.pair,
        TxBody::Confirm(terms) => terms.pair,
        _ => return None,
    };
    let known = genesis.pair_ids().contains(&(pair.base, pair.quote));
    (!known).then_some(AdmissionError::UnknownPair {
        base: pair.base,
        quote: pair.quote,
    })
}

/// Admits transactions submitted through the API and hands the admitted ones to
/// gossip.
pub async fn admit_transactions(
    context: &ApiContext,
    transactions: Vec<SignedTransaction>,
) -> Vec<Result<Hash, AdmissionError>> {
    let genesis = context.genesis.clone();
    let db = context.db.clone();
    let mempool: Arc<Mutex<Mempool>> = context.mempool.clone();
    let (results, admitted) =
        tokio::task::spawn_blocking(move || admit_batch(&genesis, &db, &mempool, transactions))
            .await
            .expect("admission task does not panic");
    context
        .metrics
        .transactions_admitted
        .inc_by(admitted.len() as u64);
    if !admitted.is_empty() && context.gossip.try_send(admitted).is_err() {
        tracing::warn!(
            "gossip queue full; admitted transactions stay local until this node proposes"
        );
    }
    results
}
