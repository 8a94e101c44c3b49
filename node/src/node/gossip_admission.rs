//! Admission of gossiped transactions, off the core loop (issue 18 item 3).
//!
//! The core loop used to decode each gossiped batch of transactions and wait for its
//! admission (signatures batch-verified, nonces and mempool bounds checked) before it
//! looked at the next network event, so every vote and proposal behind it waited too.
//! Now it hands the message to this actor and goes on: a [`GossipAdmission`] handle
//! (cloneable) queues it, and one task owns the queue. The task takes everything that
//! waits (messages until their payloads reach 256 KiB, [`MAX_COMBINED_TXS`] times 64
//! bytes: about a thousand transactions), decodes it, admits it in one
//! blocking call (so the signatures of several messages share one batch verification,
//! cheaper per signature than small batches), and reports each message's verdict to
//! the network, which forwards an accepted message only then.
//!
//! A full queue ([`QUEUE_MESSAGES`]) refuses the message, which the caller reports as
//! ignored: gossipsub drops it without penalty, and the transaction stays in the
//! mempool (and journal) of the node its client submitted it to, which proposes it.
//! Admission runs beside commits as the API's does; `admission::admit_each` reads the
//! committed nonces under the mempool lock for that.

use super::admission::{admit_batch, AdmissionError};
use super::committed_config::CommittedConfig;
use super::mempool::Mempool;
use seisan_network::{MessageId, NetworkHandle, Validation};
use seisan_state::{SledBackend, StateDb};
use seisan_types::codec;
use seisan_types::hash::Hash;
use seisan_types::tx::SignedTransaction;
use seisan_types::{ChainDomain, MemberId};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tracing::debug;

/// Gossiped messages waiting for admission at most; more are reported as ignored.
pub const QUEUE_MESSAGES: usize = 256;

/// Transactions admitted in one call at most; the task also stops taking messages
/// once their payloads reach this many times 64 bytes.
pub const MAX_COMBINED_TXS: usize = 4096;

/// One gossiped message of transactions, as it came off the network.
#[derive(Debug)]
pub struct Gossiped {
    pub message_id: MessageId,
    pub from: MemberId,
    pub payload: Vec<u8>,
}

/// The queue's sending side; clones share the one task.
#[derive(Clone, Debug)]
pub struct GossipAdmission {
    sender: mpsc::Sender<Gossiped>,
}

impl GossipAdmission {
    /// Queues a message for admission; gives it back if the queue is full (or the
    /// task stopped), for the caller to report as ignored.
    pub fn offer(&self, message: Gossiped) -> Result<(), Gossiped> {
        self.sender.try_send(message).map_err(|error| match error {
            mpsc::error::TrySendError::Full(message)
            | mpsc::error::TrySendError::Closed(message) => message,
        })
    }
}

/// What admission needs: the committed configuration, the chain, the store and the
/// mempool (all shared with the API's admission).
#[derive(Clone, Debug)]
pub struct Admitter {
    pub config: CommittedConfig,
    pub domain: ChainDomain,
    pub db: StateDb<SledBackend>,
    pub mempool: Arc<Mutex<Mempool>>,
}

/// Starts the task; it stops when every handle is dropped.
pub fn spawn(admitter: Admitter, network: NetworkHandle) -> GossipAdmission {
    let (sender, receiver) = mpsc::channel(QUEUE_MESSAGES);
    tokio::spawn(run(admitter, network, receiver));
    GossipAdmission { sender }
}

async fn run(admitter: Admitter, network: NetworkHandle, mut receiver: mpsc::Receiver<Gossiped>) {
    while let Some(first) = receiver.recv().await {
        let mut messages = vec![first];
        let mut bytes = messages[0].payload.len();
        // What else waits joins this admission, within the bound.
        while bytes < MAX_COMBINED_TXS * 64 {
            match receiver.try_recv() {
                Ok(message) => {
                    bytes += message.payload.len();
                    messages.push(message);
                }
                Err(_) => break,
            }
        }
        let admitter = admitter.clone();
        let (messages, verdicts) = tokio::task::spawn_blocking(move || {
            let verdicts = admit_messages(&admitter, &messages);
            (messages, verdicts)
        })
        .await
        .expect("admission does not panic");
        for (message, verdict) in messages.into_iter().zip(verdicts) {
            if let Err(error) = network
                .report_validation(message.message_id, message.from, verdict)
                .await
            {
                debug!(%error, "validation report not delivered");
            }
        }
    }
}

/// Decodes and admits `messages` together (in slices of at most [`MAX_COMBINED_TXS`]);
/// one verdict per message. Call from a blocking context.
fn admit_messages(admitter: &Admitter, messages: &[Gossiped]) -> Vec<Validation> {
    let decoded: Vec<Option<Vec<SignedTransaction>>> = messages
        .iter()
        .map(|message| codec::decode::<Vec<SignedTransaction>>(&message.payload).ok())
        .collect();
    let lengths: Vec<Option<usize>> = decoded
        .iter()
        .map(|txs| txs.as_ref().map(Vec::len))
        .collect();
    let transactions: Vec<SignedTransaction> = decoded.into_iter().flatten().flatten().collect();
    let mut results = Vec::with_capacity(transactions.len());
    let mut transactions = transactions.into_iter().peekable();
    while transactions.peek().is_some() {
        let slice: Vec<SignedTransaction> = transactions.by_ref().take(MAX_COMBINED_TXS).collect();
        let (slice_results, _) = admit_batch(
            &admitter.config,
            &admitter.domain,
            &admitter.db,
            &admitter.mempool,
            slice,
        );
        results.extend(slice_results);
    }
    verdicts(&lengths, &results)
}

/// Splits the combined results back into messages (`lengths[i]`: how many
/// transactions message `i` carried, `None` if it did not decode) and gives each its
/// verdict: rejected if it did not decode or any transaction is invalid whatever the
/// state (a relayer should have checked it), accepted if any was admitted, otherwise
/// ignored (duplicates, used nonces, a full mempool).
pub fn verdicts(
    lengths: &[Option<usize>],
    results: &[Result<Hash, AdmissionError>],
) -> Vec<Validation> {
    let mut rest = results;
    lengths
        .iter()
        .map(|length| {
            let Some(length) = *length else {
                return Validation::Reject;
            };
            let (mine, after) = rest.split_at(length);
            rest = after;
            if mine
                .iter()
                .any(|result| result.as_ref().is_err_and(AdmissionError::is_invalid))
            {
                Validation::Reject
            } else if mine.iter().any(Result::is_ok) {
                Validation::Accept
            } else {
                Validation::Ignore
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::mempool::AdmitError;
    use seisan_crypto::TxError;

    fn invalid() -> Result<Hash, AdmissionError> {
        Err(AdmissionError::Transaction(TxError::UnknownMember {
            member: MemberId(9),
        }))
    }

    fn not_now() -> Result<Hash, AdmissionError> {
        Err(AdmissionError::Mempool(AdmitError::Duplicate {
            id: Hash([7; 32]),
        }))
    }

    #[test]
    fn each_message_gets_the_verdict_of_its_own_transactions() {
        let results = vec![
            Ok(Hash([1; 32])), // message 0: one admitted, one not now
            not_now(),
            not_now(),         // message 1: nothing admitted, nothing invalid
            Ok(Hash([2; 32])), // message 3: one admitted but one invalid
            invalid(),
            Ok(Hash([3; 32])), // message 4
        ];
        let lengths = [Some(2), Some(1), None, Some(2), Some(0), Some(1)];
        assert_eq!(
            verdicts(&lengths, &results),
            vec![
                Validation::Accept,
                Validation::Ignore,
                Validation::Reject, // did not decode
                Validation::Reject,
                Validation::Ignore, // an empty batch admits nothing
                Validation::Accept,
            ]
        );
    }
}
