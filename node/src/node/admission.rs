//! Admission of transactions into the mempool, shared by the HTTP API and gossip:
//! size, chain id, membership and signature (batch-verified), then the nonce against
//! the committed state, then the mempool's own bounds.
//!
//! The API path ([`submit_transactions`]) adds two promises. A 202 means the
//! transaction is in the mempool and in the transaction journal (fsynced), so it will
//! be proposed even if this node dies next; if the journal cannot store it, it is taken
//! back out of the mempool and the client hears 503 `journal_unavailable`. And
//! submission is idempotent: the same signed transaction submitted again is answered
//! with its current status (pending, or finalized with its receipt) instead of an
//! error, so a client may retry a request whose answer it lost. A different
//! transaction that reuses a nonce is still refused.
//!
//! Nonces are checked per lane (see [`seisan_types::tx::Lane`]): the member lane for
//! what a member's people and back office sign, the node lane for the attestations its
//! node signs itself, each against its own committed nonce. The API path also refuses
//! a nonce that leaves a gap (above the committed nonce plus the consecutive run
//! pending after it, plus one): nothing would ever fill the gap, so the mempool would
//! never propose it and a 202 would be a broken promise. Gossip and the journal replay
//! still hold such a transaction, since a later gossip message can bring the missing
//! predecessor.

use super::api::ApiContext;
use super::committed_config::CommittedConfig;
use super::mempool::{AdmitError, Mempool};
use super::pipeline::{read_receipts, read_tx_location, TxLocation};
use super::rate_limit::RateLimiter;
use super::runtime::MAX_GOSSIP_BATCH;
use super::tx_journal::TxJournal;
use axum::http::StatusCode;
use seisan_contracts::Consortium;
use seisan_crypto::TxError;
use seisan_network::{NetworkHandle, Topic};
use seisan_state::{Backend, SledBackend, StateDb};
use seisan_types::codec;
use seisan_types::hash::Hash;
use seisan_types::ids::{AssetId, ChainDomain, MemberId, Nonce};
use seisan_types::membership::{MemberStatus, Membership};
use seisan_types::receipt::Receipt;
use seisan_types::tx::{Lane, SignedTransaction, TxBody, MAX_TRANSACTION_BYTES};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{debug, info, warn};

/// How long a restarted node waits between attempts to gossip the transactions it
/// replayed from its journal (its peers connect a moment after it starts).
pub const REPLAY_GOSSIP_INTERVAL_MS: u64 = 1_000;
/// How many times it tries before leaving them to its own proposals.
pub const MAX_REPLAY_GOSSIP_ATTEMPTS: u32 = 120;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    #[error("transaction is {size} bytes encoded; the limit is {MAX_TRANSACTION_BYTES}")]
    TooLarge { size: usize },
    #[error(transparent)]
    Transaction(#[from] TxError),
    #[error(transparent)]
    Mempool(AdmitError),
    /// A nonce its lane has already used: `source` is the stale or repeated nonce.
    #[error("{lane} lane: {source}")]
    UsedNonce { lane: Lane, source: TxError },
    #[error("pair {base}/{quote} is not traded on this chain")]
    UnknownPair { base: AssetId, quote: AssetId },
    #[error("member {member} was removed from the consortium; its transactions are refused")]
    MemberRemoved { member: MemberId },
    #[error("nonce {nonce} of member {member}'s {lane} lane leaves a gap: the next nonce this lane can use here is {expected} (its committed nonce plus the ones pending after it on this node); if the transactions before it went to another node, send it again once they reach this one, else sign with {expected}")]
    NonceGap {
        member: MemberId,
        lane: Lane,
        nonce: Nonce,
        expected: Nonce,
    },
    #[error("the node could not store the transaction durably ({reason}) and did not admit it; resend the same signed transaction, here later or to another node (it executes at most once), rather than signing a replacement")]
    Journal { reason: String },
    #[error("more than {per_second} transactions per second from member {member}; retry after {retry_after_s} s")]
    RateLimited {
        member: MemberId,
        per_second: u32,
        retry_after_s: u64,
    },
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
            AdmissionError::UsedNonce {
                source: TxError::RepeatedNonce { .. },
                ..
            } => "repeated_nonce",
            AdmissionError::UsedNonce { .. } => "stale_nonce",
            AdmissionError::UnknownPair { .. } => "unknown_pair",
            AdmissionError::MemberRemoved { .. } => "member_removed",
            AdmissionError::NonceGap { .. } => "nonce_gap",
            AdmissionError::Journal { .. } => "journal_unavailable",
            AdmissionError::RateLimited { .. } => "rate_limited",
        }
    }

    /// The HTTP status the API answers with: 503 when the node cannot take the
    /// transaction now (busy, journal unavailable), 409 for a duplicate or a nonce that
    /// leaves a gap in its lane, 429 over the member's rate limit, else 400.
    pub fn http_status(&self) -> StatusCode {
        match self {
            AdmissionError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AdmissionError::Mempool(AdmitError::Busy { .. }) | AdmissionError::Journal { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AdmissionError::Mempool(AdmitError::Duplicate { .. })
            | AdmissionError::NonceGap { .. } => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Whether the sender is at fault (a peer that gossips such a transaction
    /// misbehaves) rather than the local node being busy or already having it.
    pub fn is_invalid(&self) -> bool {
        matches!(
            self,
            AdmissionError::TooLarge { .. }
                | AdmissionError::UnknownPair { .. }
                | AdmissionError::MemberRemoved { .. }
                | AdmissionError::Transaction(
                    TxError::WrongChain { .. }
                        | TxError::UnknownMember { .. }
                        | TxError::BadSignature { .. }
                )
        )
    }
}

/// Where a transaction comes from, which decides whether a nonce gap is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// A client or this node's own signer: refused if its nonce leaves a gap, since it
    /// would be answered 202 and never proposed.
    Api,
    /// A peer's gossip or this node's journal replay: held out of order, since a later
    /// message can bring its predecessor (and a journaled one was promised already).
    Relayed,
}

/// Checks and admits transactions; returns one result per transaction and the admitted
/// ones. Signature checks run on the caller's thread: call from a blocking context.
/// For gossip and the journal replay: a nonce that leaves a gap is held.
pub fn admit_batch<B: Backend + Clone>(
    config: &CommittedConfig,
    domain: &ChainDomain,
    db: &StateDb<B>,
    mempool: &Mutex<Mempool>,
    transactions: Vec<SignedTransaction>,
) -> (Vec<Result<Hash, AdmissionError>>, Vec<SignedTransaction>) {
    let mut results = Vec::with_capacity(transactions.len());
    let mut admitted = Vec::new();
    for (transaction, id, result) in admit_each(
        config,
        domain,
        db,
        mempool,
        transactions,
        Source::Relayed,
        None,
    ) {
        let result = result.map(|()| id);
        if result.is_ok() {
            admitted.push(transaction);
        }
        results.push(result);
    }
    (results, admitted)
}

/// Checks and admits each transaction; returns each with its id and its result.
fn admit_each<B: Backend + Clone>(
    config: &CommittedConfig,
    domain: &ChainDomain,
    db: &StateDb<B>,
    mempool: &Mutex<Mempool>,
    transactions: Vec<SignedTransaction>,
    source: Source,
    limiter: Option<&RateLimiter>,
) -> Vec<(SignedTransaction, Hash, Result<(), AdmissionError>)> {
    // Hashed before the mempool lock is taken, from one encoding each.
    let identified: Vec<(Hash, usize)> = transactions
        .iter()
        .map(SignedTransaction::id_and_size)
        .collect();
    // Members and keys as of the committed state: an added member's key verifies from
    // its activation, a rotated-away key or a removed member's never again.
    let keys = config.keys();
    let config = config.get(db);
    let verified = verify_transactions_in(domain, &config.membership, keys, &transactions);
    let mut outcomes = Vec::with_capacity(transactions.len());
    let mut pool = mempool.lock().expect("mempool lock");
    // Read under the mempool lock: a block's nonces are committed before the mempool
    // drops its transactions, so a transaction either sees the block's nonces here or
    // is dropped with the block's transactions afterwards, never neither.
    let view = db.committed_view();
    for ((transaction, (id, size)), verification) in
        transactions.into_iter().zip(identified).zip(verified)
    {
        let result = if size > MAX_TRANSACTION_BYTES {
            Err(AdmissionError::TooLarge { size })
        } else if let Err(error) = verification {
            Err(error)
        } else if let Some(Err(error)) =
            limiter.map(|limiter| limiter.transaction_of(transaction.tx.member))
        {
            // Charged once its signature verified (here, the only check): a forgery
            // cannot spend another member's allowance.
            Err(error)
        } else if let Some(error) = unknown_pair(&config, &transaction) {
            // Stateless and certain to be rejected by the contracts: refuse it before it
            // takes a nonce, so the client hears why at once.
            Err(error)
        } else {
            let member = transaction.tx.member;
            let lane = transaction.tx.body.lane();
            let nonce = transaction.tx.nonce;
            let committed = seisan_contracts::query::last_nonce(&view, member, lane);
            seisan_crypto::check_nonce(member, nonce, committed)
                .map_err(|source| AdmissionError::UsedNonce { lane, source })
                .and_then(|()| {
                    // The same transaction again is answered as a duplicate (its status)
                    // whatever its nonce; a new one must not leave a gap. Gossip may
                    // (its predecessor may come next), so only the API pays for the walk.
                    if source != Source::Api {
                        return Ok(());
                    }
                    let expected = pool.next_contiguous_nonce(member, lane, committed);
                    if nonce > expected && !pool.contains(&id) {
                        return Err(AdmissionError::NonceGap {
                            member,
                            lane,
                            nonce,
                            expected,
                        });
                    }
                    Ok(())
                })
                .and_then(|()| {
                    pool.admit(transaction.clone(), id, size, committed)
                        .map_err(AdmissionError::Mempool)
                })
        };
        outcomes.push((transaction, id, result));
    }
    outcomes
}

/// Checks chain id, member and signature of each transaction against `membership` (the
/// committed state's): a removed member is refused as such, a member's current key is
/// the only one that verifies. Signatures are batch-verified, the keys decompressed
/// through `keys`; call from a blocking context.
pub fn verify_transactions_in(
    domain: &ChainDomain,
    membership: &Membership,
    keys: &seisan_crypto::KeyCache,
    transactions: &[SignedTransaction],
) -> Vec<Result<(), AdmissionError>> {
    let mut results = Vec::with_capacity(transactions.len());
    let mut batch = Vec::with_capacity(transactions.len());
    let mut batch_index = Vec::with_capacity(transactions.len());
    for (index, transaction) in transactions.iter().enumerate() {
        let member = transaction.tx.member;
        let result = if transaction.tx.chain_id != domain.chain_id {
            Err(AdmissionError::Transaction(TxError::WrongChain {
                expected: domain.chain_id.clone(),
                got: transaction.tx.chain_id.clone(),
            }))
        } else {
            match membership.member(member) {
                None => Err(AdmissionError::Transaction(TxError::UnknownMember {
                    member,
                })),
                Some(entry) if entry.status == MemberStatus::Removed => {
                    Err(AdmissionError::MemberRemoved { member })
                }
                Some(entry) => {
                    batch.push((
                        entry.member.public_key,
                        transaction.tx.signing_digest(&domain.genesis),
                        transaction.signature,
                    ));
                    batch_index.push(index);
                    Ok(())
                }
            }
        };
        results.push(result);
    }
    for (outcome, index) in seisan_crypto::verify_batch_with(keys, &batch)
        .into_iter()
        .zip(batch_index)
    {
        if let Err(reason) = outcome {
            results[index] = Err(AdmissionError::Transaction(TxError::BadSignature {
                member: transactions[index].tx.member,
                reason,
            }));
        }
    }
    results
}

/// The pair a transaction names, if the consortium does not trade it.
fn unknown_pair(config: &Consortium, transaction: &SignedTransaction) -> Option<AdmissionError> {
    let pair = match &transaction.tx.body {
        TxBody::PlaceOrder(order) => order.pair,
        TxBody::RequestQuote(request) => request.pair,
        TxBody::Confirm(terms) => terms.pair,
        _ => return None,
    };
    let known = config.has_pair(pair);
    (!known).then_some(AdmissionError::UnknownPair {
        base: pair.base,
        quote: pair.quote,
    })
}

/// What the API answers for a transaction it accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Admitted now, or already pending here (the same transaction submitted again);
    /// journaled either way. Answered 202.
    Pending { id: Hash },
    /// Already in a finalized block (submitted again after it committed). Answered
    /// 200 with the document `GET /v1/transactions/{id}` gives.
    Finalized {
        id: Hash,
        location: TxLocation,
        receipt: Box<Receipt>,
    },
}

impl Submitted {
    pub fn id(&self) -> Hash {
        match self {
            Submitted::Pending { id } | Submitted::Finalized { id, .. } => *id,
        }
    }

    pub fn http_status(&self) -> StatusCode {
        match self {
            Submitted::Pending { .. } => StatusCode::ACCEPTED,
            Submitted::Finalized { .. } => StatusCode::OK,
        }
    }

    /// The answer's body, shaped like the transaction query's.
    pub fn document(&self) -> seisan_api::v1::TransactionStatus {
        match self {
            Submitted::Pending { id } => seisan_api::v1::TransactionStatus::pending(*id),
            Submitted::Finalized {
                id,
                location,
                receipt,
            } => seisan_api::v1::TransactionStatus::finalized(
                *id,
                location.height,
                location.index,
                (**receipt).clone(),
            ),
        }
    }
}

/// What admission did with one transaction of an API submission.
#[derive(Debug)]
enum Outcome {
    Admitted,
    AlreadyPending,
    Finalized {
        location: TxLocation,
        receipt: Box<Receipt>,
    },
    Refused(AdmissionError),
}

/// Turns a refusal of a transaction that is already pending or finalized into its
/// status: the client is submitting the very same signed bytes again.
fn outcome<B: Backend + Clone>(
    db: &StateDb<B>,
    id: &Hash,
    result: Result<(), AdmissionError>,
) -> Outcome {
    match result {
        Ok(()) => Outcome::Admitted,
        Err(AdmissionError::Mempool(AdmitError::Duplicate { .. })) => Outcome::AlreadyPending,
        Err(
            error @ (AdmissionError::UsedNonce { .. }
            | AdmissionError::Mempool(AdmitError::StaleNonce { .. })),
        ) => {
            // Only a used nonce can mean "already finalized"; the location and the
            // receipts are written in the same commit as the nonce.
            let finalized = read_tx_location(db, id).and_then(|location| {
                let receipts = read_receipts(db, location.height)?;
                let receipt = receipts.receipts.into_iter().nth(location.index as usize)?;
                Some((location, receipt))
            });
            match finalized {
                Some((location, receipt)) => Outcome::Finalized {
                    location,
                    receipt: Box::new(receipt),
                },
                None => Outcome::Refused(error),
            }
        }
        Err(error) => Outcome::Refused(error),
    }
}

/// Admits transactions submitted through the API (or signed by this node), journals
/// them and hands the new ones to gossip. One result per transaction, in order.
///
/// Idempotent per transaction: submitting the same signed transaction again answers
/// its status. When the journal fails, every transaction of the call that would have
/// been answered pending is refused with [`AdmissionError::Journal`], and the ones this
/// call admitted are taken back out of the mempool.
pub async fn submit_transactions(
    context: &ApiContext,
    transactions: Vec<SignedTransaction>,
    limiter: Option<Arc<RateLimiter>>,
) -> Vec<Result<Submitted, AdmissionError>> {
    let config = context.config.clone();
    let domain = context.domain.clone();
    let db = context.db.clone();
    let mempool: Arc<Mutex<Mempool>> = context.mempool.clone();
    let outcomes = tokio::task::spawn_blocking(move || {
        admit_for_api(
            &config,
            &domain,
            &db,
            &mempool,
            transactions,
            limiter.as_deref(),
        )
    })
    .await
    .expect("admission task does not panic");
    let (results, admitted) = journal_outcomes(&context.journal, &context.mempool, outcomes).await;
    context
        .metrics
        .transactions_admitted
        .inc_by(admitted.len() as u64);
    for error in results.iter().filter_map(|result| result.as_ref().err()) {
        context.metrics.transaction_rejected(error.code());
    }
    if !admitted.is_empty() && context.gossip.try_send(admitted).is_err() {
        warn!("gossip queue full; admitted transactions stay local until this node proposes");
    }
    results
}

/// Admits each transaction and names what happened to it, recognising the same
/// transaction submitted again.
fn admit_for_api<B: Backend + Clone>(
    config: &CommittedConfig,
    domain: &ChainDomain,
    db: &StateDb<B>,
    mempool: &Mutex<Mempool>,
    transactions: Vec<SignedTransaction>,
    limiter: Option<&RateLimiter>,
) -> Vec<(SignedTransaction, Hash, Outcome)> {
    admit_each(
        config,
        domain,
        db,
        mempool,
        transactions,
        Source::Api,
        limiter,
    )
    .into_iter()
    .map(|(transaction, id, result)| {
        let outcome = outcome(db, &id, result);
        (transaction, id, outcome)
    })
    .collect()
}

/// Journals what will be answered pending, then turns outcomes into answers; returns
/// them with the newly admitted transactions (to gossip). If the journal fails, the
/// transactions this call admitted are taken back out of the mempool and every one
/// that would have been answered pending is refused.
async fn journal_outcomes(
    journal: &TxJournal,
    mempool: &Mutex<Mempool>,
    outcomes: Vec<(SignedTransaction, Hash, Outcome)>,
) -> (
    Vec<Result<Submitted, AdmissionError>>,
    Vec<SignedTransaction>,
) {
    let to_journal: Vec<SignedTransaction> = outcomes
        .iter()
        .filter(|(_, _, outcome)| matches!(outcome, Outcome::Admitted | Outcome::AlreadyPending))
        .map(|(transaction, _, _)| transaction.clone())
        .collect();
    let journaled = journal.append(&to_journal).await;
    if let Err(error) = &journaled {
        let admitted: Vec<_> = outcomes
            .iter()
            .filter(|(_, _, outcome)| matches!(outcome, Outcome::Admitted))
            .map(|(transaction, id, _)| {
                let tx = &transaction.tx;
                (tx.member, tx.body.lane(), tx.nonce, *id)
            })
            .collect();
        let removed = mempool.lock().expect("mempool lock").remove(&admitted);
        warn!(%error, refused = to_journal.len(), removed, "transactions refused: the journal could not store them");
    }

    let mut admitted = Vec::new();
    let mut results = Vec::with_capacity(outcomes.len());
    for (transaction, id, outcome) in outcomes {
        let result = match (outcome, &journaled) {
            (Outcome::Refused(error), _) => Err(error),
            (Outcome::Finalized { location, receipt }, _) => Ok(Submitted::Finalized {
                id,
                location,
                receipt,
            }),
            (Outcome::Admitted | Outcome::AlreadyPending, Err(error)) => {
                Err(AdmissionError::Journal {
                    reason: error.to_string(),
                })
            }
            (Outcome::Admitted, Ok(())) => {
                admitted.push(transaction);
                Ok(Submitted::Pending { id })
            }
            (Outcome::AlreadyPending, Ok(())) => Ok(Submitted::Pending { id }),
        };
        results.push(result);
    }
    (results, admitted)
}

/// [`submit_transactions`] for callers that need only the ids (the node's own
/// watchers, which sign each transaction with a fresh nonce).
pub async fn admit_transactions(
    context: &ApiContext,
    transactions: Vec<SignedTransaction>,
) -> Vec<Result<Hash, AdmissionError>> {
    submit_transactions(context, transactions, None)
        .await
        .into_iter()
        .map(|result| result.map(|submitted| submitted.id()))
        .collect()
}

/// Puts the transactions a restarted node read back from its journal into the mempool
/// (through the same checks as any admission, and regardless of whether the node is
/// still catching up: each was promised with a 202), and gossips them once peers are
/// connected. Returns how many were admitted.
pub async fn replay_journaled(
    config: CommittedConfig,
    domain: ChainDomain,
    db: StateDb<SledBackend>,
    mempool: Arc<Mutex<Mempool>>,
    network: NetworkHandle,
    transactions: Vec<SignedTransaction>,
) -> usize {
    if transactions.is_empty() {
        return 0;
    }
    let journaled = transactions.len();
    let pool = mempool.clone();
    let (results, admitted) = tokio::task::spawn_blocking(move || {
        admit_batch(&config, &domain, &db, &pool, transactions)
    })
    .await
    .expect("admission task does not panic");
    let mut refused: BTreeMap<&'static str, usize> = BTreeMap::new();
    for error in results.iter().filter_map(|result| result.as_ref().err()) {
        *refused.entry(error.code()).or_default() += 1;
    }
    info!(
        journaled,
        admitted = admitted.len(),
        ?refused,
        "journaled transactions replayed into the mempool"
    );
    let count = admitted.len();
    if !admitted.is_empty() {
        tokio::spawn(gossip_replayed(network, mempool, admitted));
    }
    count
}

/// Gossips replayed transactions that are still pending, retrying until each chunk was
/// published once (a node that just started has no peers yet).
async fn gossip_replayed(
    network: NetworkHandle,
    mempool: Arc<Mutex<Mempool>>,
    mut unsent: Vec<SignedTransaction>,
) {
    for _ in 0..MAX_REPLAY_GOSSIP_ATTEMPTS {
        tokio::time::sleep(Duration::from_millis(REPLAY_GOSSIP_INTERVAL_MS)).await;
        {
            let pool = mempool.lock().expect("mempool lock");
            unsent.retain(|transaction| pool.contains(&transaction.id()));
        }
        let mut failed = Vec::new();
        for chunk in unsent.chunks(MAX_GOSSIP_BATCH) {
            let chunk = chunk.to_vec();
            if let Err(error) = network
                .publish(Topic::Transactions, codec::encode(&chunk))
                .await
            {
                debug!(%error, transactions = chunk.len(), "replayed transactions not gossiped yet");
                failed.extend(chunk);
            }
        }
        unsent = failed;
        if unsent.is_empty() {
            info!("replayed transactions gossiped");
            return;
        }
    }
    warn!(
        transactions = unsent.len(),
        "replayed transactions could not be gossiped; they stay in this node's mempool until it proposes them"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::mempool::MempoolLimits;
    use crate::node::pipeline::Pipeline;
    use seisan_state::MemoryBackend;
    use seisan_types::genesis::Genesis;
    use seisan_types::ids::{MemberId, View};

    fn genesis() -> Arc<Genesis> {
        crate::node::test_support::genesis(7201)
    }

    #[test]
    fn signatures_verify_against_the_membership_in_state() {
        let genesis = genesis();
        let mut membership = Membership::from_genesis(&genesis);
        let signed = allocation(&genesis, 1, 10);
        let code = |membership: &Membership| {
            verify_transactions_in(
                &genesis.domain(),
                membership,
                &seisan_crypto::KeyCache::default(),
                std::slice::from_ref(&signed),
            )
            .remove(0)
            .map_err(|error| error.code())
        };
        assert_eq!(code(&membership), Ok(()));
        // exchange-a's key is rotated: its old key no longer signs for it.
        membership.members[1].member.public_key =
            seisan_crypto::Keypair::dev("someone-else").public_key();
        assert_eq!(code(&membership), Err("bad_signature"));
        // ...and a removed member is refused as such, whatever it signed with.
        let mut membership = Membership::from_genesis(&genesis);
        membership.members[1].status = MemberStatus::Removed;
        assert_eq!(code(&membership), Err("member_removed"));
        // A member the state does not know yet (added by a change not yet applied).
        membership.members.truncate(1);
        assert_eq!(code(&membership), Err("unknown_member"));
    }

    use crate::node::test_support::{allocation, pipeline_in_memory};

    fn one(
        genesis: &Genesis,
        pipeline: &Pipeline<MemoryBackend>,
        mempool: &Mutex<Mempool>,
        transaction: &SignedTransaction,
    ) -> Outcome {
        one_limited(genesis, pipeline, mempool, transaction, None)
    }

    fn one_limited(
        genesis: &Genesis,
        pipeline: &Pipeline<MemoryBackend>,
        mempool: &Mutex<Mempool>,
        transaction: &SignedTransaction,
        limiter: Option<&RateLimiter>,
    ) -> Outcome {
        let mut outcomes = admit_for_api(
            &CommittedConfig::new(Arc::new(genesis.clone())),
            &genesis.domain(),
            pipeline.db(),
            mempool,
            vec![transaction.clone()],
            limiter,
        );
        assert_eq!(outcomes.len(), 1);
        outcomes.pop().unwrap().2
    }

    #[test]
    fn a_member_over_its_rate_is_refused_after_its_signature_verifies_and_forgeries_spend_nothing()
    {
        let genesis = genesis();
        let pipeline = pipeline_in_memory(&genesis);
        let mempool = Mutex::new(Mempool::new(MempoolLimits::default()));
        // One transaction a second: a bucket of two.
        let limiter = RateLimiter::new(super::super::rate_limit::RateLimits {
            per_address: 0,
            per_member: 1,
        });
        let code = |outcome: Outcome| match outcome {
            Outcome::Refused(error) => Err(error.code()),
            _ => Ok(()),
        };
        for nonce in 1..=3 {
            let mut forged = allocation(&genesis, nonce, 5);
            forged.signature.0[0] ^= 1;
            let outcome = one_limited(&genesis, &pipeline, &mempool, &forged, Some(&limiter));
            assert_eq!(code(outcome), Err("bad_signature"));
        }
        for nonce in 1..=2 {
            let signed = allocation(&genesis, nonce, 5);
            let outcome = one_limited(&genesis, &pipeline, &mempool, &signed, Some(&limiter));
            assert_eq!(code(outcome), Ok(()), "nonce {nonce}");
        }
        let third = allocation(&genesis, 3, 5);
        let outcome = one_limited(&genesis, &pipeline, &mempool, &third, Some(&limiter));
        assert_eq!(code(outcome), Err("rate_limited"));
        assert!(!mempool.lock().unwrap().contains(&third.id()));
    }

    #[test]
    fn the_same_transaction_again_is_answered_with_its_status_and_a_conflict_is_refused() {
        let genesis = genesis();
        let mut pipeline = pipeline_in_memory(&genesis);
        let mempool = Mutex::new(Mempool::new(MempoolLimits::default()));
        let first = allocation(&genesis, 1, 10);
        let conflict = allocation(&genesis, 1, 20);
        assert!(matches!(
            one(&genesis, &pipeline, &mempool, &first),
            Outcome::Admitted
        ));
        assert!(matches!(
            one(&genesis, &pipeline, &mempool, &first),
            Outcome::AlreadyPending
        ));
        assert!(matches!(
            one(&genesis, &pipeline, &mempool, &conflict),
            Outcome::Refused(AdmissionError::Mempool(AdmitError::NoncePending { .. }))
        ));

        // The block with `first` commits; the mempool drops it.
        let tip = pipeline.tip();
        let block = pipeline
            .build(
                View(1),
                tip.hash,
                MemberId(0),
                tip.timestamp_ms + 1,
                vec![first.clone()],
            )
            .unwrap();
        let certificate = crate::node::test_support::certificate(&block);
        pipeline.commit(&block, &certificate, vec![]).unwrap();
        mempool
            .lock()
            .unwrap()
            .remove_committed(&Pipeline::<MemoryBackend>::nonces(&block));

        match one(&genesis, &pipeline, &mempool, &first) {
            Outcome::Finalized { location, receipt } => {
                assert_eq!(location.height, block.header.height);
                assert_eq!(receipt.tx_id, first.id());
                assert!(receipt.is_applied(), "{receipt:?}");
            }
            other => panic!("expected finalized, got {other:?}"),
        }
        assert!(matches!(
            one(&genesis, &pipeline, &mempool, &conflict),
            Outcome::Refused(AdmissionError::UsedNonce {
                source: TxError::RepeatedNonce { .. },
                ..
            })
        ));
        assert!(
            mempool.lock().unwrap().is_empty(),
            "nothing was admitted again"
        );
    }

    #[test]
    fn a_journal_failure_refuses_and_takes_back_what_the_call_admitted() {
        let genesis = genesis();
        let pipeline = pipeline_in_memory(&genesis);
        let mempool = Mutex::new(Mempool::new(MempoolLimits::default()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = TxJournal::open(
            &dir.path().join("tx-journal"),
            Box::new(|_: &SignedTransaction| true),
        )
        .unwrap();
        let earlier = allocation(&genesis, 1, 10);
        let outcomes = admit_for_api(
            &CommittedConfig::new(genesis.clone()),
            &genesis.domain(),
            pipeline.db(),
            &mempool,
            vec![earlier.clone()],
            None,
        );
        let (results, gossip) = runtime.block_on(journal_outcomes(&journal, &mempool, outcomes));
        assert_eq!(results, [Ok(Submitted::Pending { id: earlier.id() })]);
        assert_eq!(gossip, std::slice::from_ref(&earlier));

        // The journal stops; a call with a new transaction and the earlier one again.
        let broken = TxJournal::stopped();
        let new = allocation(&genesis, 2, 10);
        let outcomes = admit_for_api(
            &CommittedConfig::new(genesis.clone()),
            &genesis.domain(),
            pipeline.db(),
            &mempool,
            vec![new.clone(), earlier.clone(), allocation(&genesis, 1, 99)],
            None,
        );
        let (results, gossip) = runtime.block_on(journal_outcomes(&broken, &mempool, outcomes));
        assert!(gossip.is_empty());
        let codes: Vec<&str> = results
            .iter()
            .map(|result| result.as_ref().unwrap_err().code())
            .collect();
        assert_eq!(
            codes,
            [
                "journal_unavailable",
                "journal_unavailable",
                "nonce_pending"
            ]
        );
        assert_eq!(
            results[0].as_ref().unwrap_err().http_status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        // The new transaction is gone; the one admitted (and journaled) before stays.
        let pool = mempool.lock().unwrap();
        assert!(!pool.contains(&new.id()));
        assert!(pool.contains(&earlier.id()));
        assert_eq!(pool.len(), 1);
    }

    /// exchange-a's node attests a trust-account credit (a node-lane body).
    fn bank_attestation(genesis: &Genesis, nonce: u64) -> SignedTransaction {
        use seisan_types::bank::{BankEntryId, BankEntryKind, BankFact};
        seisan_crypto::sign_transaction(
            &seisan_crypto::Keypair::dev("exchange-a"),
            &genesis.hash(),
            seisan_types::tx::Transaction {
                chain_id: genesis.chain_id.clone(),
                member: MemberId(1),
                nonce: Nonce(nonce),
                body: TxBody::AttestBankEntry(BankFact {
                    entry: BankEntryId(format!("entry-{nonce}")),
                    member: MemberId(1),
                    asset: AssetId(1),
                    amount: seisan_types::amount::Amount(100),
                    kind: BankEntryKind::TrustCredit,
                }),
            },
        )
    }

    fn open_pipeline(genesis: &Arc<Genesis>) -> Pipeline<MemoryBackend> {
        pipeline_in_memory(genesis)
    }

    #[test]
    fn the_api_refuses_a_nonce_that_leaves_a_gap_and_gossip_holds_it() {
        let genesis = genesis();
        let pipeline = open_pipeline(&genesis);
        let mempool = Mutex::new(Mempool::new(MempoolLimits::default()));
        assert!(matches!(
            one(&genesis, &pipeline, &mempool, &allocation(&genesis, 1, 10)),
            Outcome::Admitted
        ));
        // Nonce 3 with 2 missing: nothing would ever propose it.
        let ahead = allocation(&genesis, 3, 10);
        match one(&genesis, &pipeline, &mempool, &ahead) {
            Outcome::Refused(error) => {
                assert_eq!(error.code(), "nonce_gap");
                assert_eq!(error.http_status(), StatusCode::CONFLICT);
                let message = error.to_string();
                assert!(message.contains("member lane"), "{message}");
                assert!(message.contains("nonce 3"), "{message}");
                assert!(message.contains("is 2"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(!mempool.lock().unwrap().contains(&ahead.id()));
        // The node lane has its own count: its first nonce is 1 whatever the member
        // lane holds, and 2 would leave a gap there.
        match one(
            &genesis,
            &pipeline,
            &mempool,
            &bank_attestation(&genesis, 2),
        ) {
            Outcome::Refused(error) => {
                assert_eq!(error.code(), "nonce_gap");
                assert!(error.to_string().contains("node lane"), "{error}");
                assert!(error.to_string().contains("is 1"), "{error}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }

        // By gossip the same transaction is held: its predecessor may come next.
        let (results, admitted) = admit_batch(
            &CommittedConfig::new(genesis.clone()),
            &genesis.domain(),
            pipeline.db(),
            &mempool,
            vec![ahead.clone()],
        );
        assert_eq!(results, [Ok(ahead.id())]);
        assert_eq!(admitted, std::slice::from_ref(&ahead));
        // Submitted again through the API it is answered as pending (it is), and the
        // nonce that fills the gap is admitted.
        assert!(matches!(
            one(&genesis, &pipeline, &mempool, &ahead),
            Outcome::AlreadyPending
        ));
        assert!(matches!(
            one(&genesis, &pipeline, &mempool, &allocation(&genesis, 2, 10)),
            Outcome::Admitted
        ));
        let pool = mempool.lock().unwrap();
        assert_eq!(
            pool.next_contiguous_nonce(MemberId(1), Lane::Member, None),
            Nonce(4)
        );
    }

    #[test]
    fn a_member_lane_and_a_node_lane_transaction_with_the_same_nonce_both_finalize() {
        let genesis = genesis();
        let mut pipeline = open_pipeline(&genesis);
        let mempool = Mutex::new(Mempool::new(MempoolLimits::default()));
        // The back office and the node sign at the same moment, each its lane's nonce 1.
        let order = allocation(&genesis, 1, 10);
        let attestation = bank_attestation(&genesis, 1);
        assert_eq!(order.tx.body.lane(), Lane::Member);
        assert_eq!(attestation.tx.body.lane(), Lane::Node);
        for transaction in [&order, &attestation] {
            assert!(matches!(
                one(&genesis, &pipeline, &mempool, transaction),
                Outcome::Admitted
            ));
        }
        let tip = pipeline.tip();
        let selected = mempool
            .lock()
            .unwrap()
            .select(10, usize::MAX, |_, _| Nonce(1));
        assert_eq!(selected.len(), 2, "both lanes' nonce 1 are proposed");
        let block = pipeline
            .build(
                View(1),
                tip.hash,
                MemberId(0),
                tip.timestamp_ms + 1,
                selected,
            )
            .unwrap();
        let certificate = crate::node::test_support::certificate(&block);
        pipeline.commit(&block, &certificate, vec![]).unwrap();
        mempool
            .lock()
            .unwrap()
            .remove_committed(&Pipeline::<MemoryBackend>::nonces(&block));
        assert!(mempool.lock().unwrap().is_empty());
        let receipts = pipeline.receipts(block.header.height).unwrap().receipts;
        assert_eq!(receipts.len(), 2);
        for receipt in &receipts {
            assert!(receipt.is_applied(), "{receipt:?}");
        }
        let view = pipeline.db().committed_view();
        for lane in Lane::ALL {
            assert_eq!(
                seisan_contracts::query::last_nonce(&view, MemberId(1), lane),
                Some(Nonce(1)),
                "{lane} lane"
            );
        }
        // Each is finalized; a new node-lane transaction at 1 is a repeat of its lane.
        match one(&genesis, &pipeline, &mempool, &attestation) {
            Outcome::Finalized { receipt, .. } => assert_eq!(receipt.tx_id, attestation.id()),
            other => panic!("expected finalized, got {other:?}"),
        }
        let mut replacement = bank_attestation(&genesis, 1);
        replacement.tx.body = bank_attestation(&genesis, 7).tx.body;
        let replacement = seisan_crypto::sign_transaction(
            &seisan_crypto::Keypair::dev("exchange-a"),
            &genesis.hash(),
            replacement.tx,
        );
        match one(&genesis, &pipeline, &mempool, &replacement) {
            Outcome::Refused(error) => {
                assert_eq!(error.code(), "repeated_nonce");
                assert!(error.to_string().starts_with("node lane: "), "{error}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(matches!(
            one(
                &genesis,
                &pipeline,
                &mempool,
                &bank_attestation(&genesis, 2)
            ),
            Outcome::Admitted
        ));
    }
}
