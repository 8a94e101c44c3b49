//! The attester: one actor that signs and admits every transaction the node makes by
//! itself (bank and custody attestations, payout notices, mirror confirmations).
//!
//! Those bodies travel on the member's *node lane* of nonces (`TxBody::lane`): a
//! sequence of its own, beside the member lane that a person or back office signing
//! with the same member key uses, so neither can take the other's nonce. This actor is
//! the only signer on the node lane, so it alone chooses its nonces: one above the
//! highest of the committed node-lane nonce, the mempool's pending one and the last it
//! signed. A transaction it admitted is held until the committed ledger passes its
//! nonce; each tick, a held transaction the mempool no longer has (and the ledger does
//! not show) is admitted again with the same bytes, so a lost one can never leave a gap
//! that blocks the ones after it. That is the only resubmission on this level; whether
//! an attestation's *content* must be planned again is the watchers' follow-up rule
//! (`seisan_watch::follow_up`).
//!
//! Nothing is signed while the node syncs: its committed nonce could be stale, and a
//! transaction below a nonce the chain already used would be dropped.

use super::admission::admit_transactions;
use super::api::ApiContext;
use seisan_crypto::Keypair;
use seisan_types::hash::Hash;
use seisan_types::ids::{MemberId, Nonce};
use seisan_types::tx::{Lane, SignedTransaction, Transaction, TxBody};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

/// Requests waiting for the attester (each watcher awaits its answer, so this is
/// reached only by many watchers at once).
pub const MAX_QUEUED_REQUESTS: usize = 64;
/// How often held transactions are checked against the mempool and the ledger.
pub const TICK_MS: u64 = 1_000;
/// The most admitted node-lane transactions held unfinalized; beyond it the attester
/// refuses new ones until the chain catches up (a stalled chain must not grow memory).
pub const MAX_HELD: usize = 4_096;

/// Why the attester did not admit a transaction.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error("the node is syncing, so its committed nonces may be stale; signed on a later pass")]
    Syncing,
    #[error("{held} of the node's own transactions are not finalized yet (at most {MAX_HELD}); the chain must catch up first")]
    Backlog { held: usize },
    #[error("{kind} at node-lane nonce {nonce} not admitted: {reason}")]
    NotAdmitted {
        kind: &'static str,
        nonce: u64,
        reason: String,
    },
    #[error("the attester stopped")]
    Stopped,
}

struct Request {
    body: TxBody,
    answer: oneshot::Sender<Result<Hash, AttestError>>,
}

/// Cloneable handle to the attester actor.
#[derive(Clone, Debug)]
pub struct AttesterHandle {
    requests: mpsc::Sender<Request>,
}

impl AttesterHandle {
    /// Signs `body` (a node-lane kind) at the node lane's next nonce and admits it.
    pub async fn attest(&self, body: TxBody) -> Result<Hash, AttestError> {
        assert_eq!(
            body.lane(),
            Lane::Node,
            "the attester signs only node-lane bodies, not {}",
            body.kind_name()
        );
        let (answer, answered) = oneshot::channel();
        self.requests
            .send(Request { body, answer })
            .await
            .map_err(|_| AttestError::Stopped)?;
        answered.await.map_err(|_| AttestError::Stopped)?
    }
}

/// Starts the attester for `member` with its key.
pub fn spawn(context: ApiContext, keypair: Keypair, member: MemberId) -> AttesterHandle {
    let (requests, receiver) = mpsc::channel(MAX_QUEUED_REQUESTS);
    let attester = Attester {
        context,
        keypair,
        member,
        held: BTreeMap::new(),
    };
    tokio::spawn(attester.run(receiver));
    AttesterHandle { requests }
}

struct Attester {
    context: ApiContext,
    keypair: Keypair,
    member: MemberId,
    /// Admitted node-lane transactions above the committed nonce, by nonce.
    held: BTreeMap<u64, SignedTransaction>,
}

impl Attester {
    async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                request = requests.recv() => {
                    let Some(request) = request else { return };
                    let answer = self.sign_and_admit(request.body).await;
                    // The watcher may have stopped waiting; the transaction stays held.
                    let _ = request.answer.send(answer);
                }
                _ = tick.tick() => self.readmit_lost().await,
            }
        }
    }

    fn committed_nonce(&self) -> u64 {
        seisan_contracts::query::last_nonce(
            &self.context.db.committed_view(),
            self.member,
            Lane::Node,
        )
        .map_or(0, |nonce| nonce.0)
    }

    fn pending_nonce(&self) -> u64 {
        self.context
            .mempool
            .lock()
            .expect("mempool lock")
            .pending_nonce(self.member, Lane::Node)
            .map_or(0, |nonce| nonce.0)
    }

    async fn sign_and_admit(&mut self, body: TxBody) -> Result<Hash, AttestError> {
        if self.context.status.borrow().syncing {
            return Err(AttestError::Syncing);
        }
        let committed = self.committed_nonce();
        self.held = self.held.split_off(&(committed + 1));
        if self.held.len() >= MAX_HELD {
            return Err(AttestError::Backlog {
                held: self.held.len(),
            });
        }
        let last_signed = self.held.keys().next_back().copied().unwrap_or(0);
        let nonce = next_nonce(committed, self.pending_nonce(), last_signed);
        let kind = body.kind_name();
        let transaction = seisan_crypto::sign_transaction(
            &self.keypair,
            &self.context.domain.genesis,
            Transaction {
                chain_id: self.context.genesis.chain_id.clone(),
                member: self.member,
                nonce: Nonce(nonce),
                body,
            },
        );
        let admitted = admit_transactions(&self.context, vec![transaction.clone()])
            .await
            .pop()
            .expect("one result per transaction");
        match admitted {
            Ok(id) => {
                self.held.insert(nonce, transaction);
                Ok(id)
            }
            Err(error) => Err(AttestError::NotAdmitted {
                kind,
                nonce,
                reason: error.to_string(),
            }),
        }
    }

    /// Admits again, with the same bytes, every held transaction the mempool lost and
    /// the ledger does not show.
    async fn readmit_lost(&mut self) {
        if self.held.is_empty() || self.context.status.borrow().syncing {
            return;
        }
        let committed = self.committed_nonce();
        self.held = self.held.split_off(&(committed + 1));
        let lost: Vec<SignedTransaction> = {
            let mempool = self.context.mempool.lock().expect("mempool lock");
            self.held
                .values()
                .filter(|transaction| !mempool.contains(&transaction.id()))
                .cloned()
                .collect()
        };
        if lost.is_empty() {
            return;
        }
        warn!(
            count = lost.len(),
            first_nonce = lost[0].tx.nonce.0,
            "node-lane transactions left the mempool unfinalized; admitting the same bytes again"
        );
        for (transaction, result) in lost
            .iter()
            .zip(admit_transactions(&self.context, lost.clone()).await)
        {
            if let Err(error) = result {
                warn!(nonce = transaction.tx.nonce.0, %error, "re-admission refused");
            }
        }
    }
}

/// The node lane's next nonce: one above the committed one, the mempool's pending one
/// and the last this attester signed, whichever is highest.
fn next_nonce(committed: u64, pending: u64, last_signed: u64) -> u64 {
    committed.max(pending).max(last_signed) + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::test_support;
    use seisan_types::bank::{BankEntryId, BankEntryKind, BankFact};
    use seisan_types::{Amount, AssetId};

    #[test]
    fn the_next_nonce_follows_the_highest_known_use_of_the_lane() {
        assert_eq!(next_nonce(0, 0, 0), 1, "a fresh lane starts at 1");
        assert_eq!(next_nonce(5, 0, 0), 6, "after a restart: the ledger's");
        assert_eq!(
            next_nonce(5, 8, 0),
            9,
            "the journal replayed 6..=8 into the mempool"
        );
        assert_eq!(
            next_nonce(5, 7, 9),
            10,
            "9 was signed and is being gossiped"
        );
    }

    fn fact(entry: u64) -> TxBody {
        TxBody::AttestBankEntry(BankFact {
            entry: BankEntryId(format!("E{entry:012}")),
            member: MemberId(1),
            asset: AssetId(1),
            amount: Amount(100),
            kind: BankEntryKind::TrustCredit,
        })
    }

    fn attester(context: ApiContext) -> Attester {
        Attester {
            context,
            keypair: Keypair::dev("exchange-a"),
            member: MemberId(1),
            held: BTreeMap::new(),
        }
    }

    fn pending_node_nonces(context: &ApiContext) -> Option<Nonce> {
        context
            .mempool
            .lock()
            .unwrap()
            .pending_nonce(MemberId(1), Lane::Node)
    }

    #[tokio::test]
    async fn node_lane_nonces_follow_each_other_and_leave_the_member_lane_alone() {
        let dir = tempfile::tempdir().unwrap();
        let genesis = test_support::genesis(7301);
        let (context, _gossip) = test_support::context(dir.path(), genesis.clone());
        let mut attester = attester(context.clone());
        for entry in 1..=3 {
            attester.sign_and_admit(fact(entry)).await.unwrap();
        }
        assert_eq!(pending_node_nonces(&context), Some(Nonce(3)));
        assert_eq!(
            attester.held.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        // The exchange's back office signs at member-lane nonce 1 at the same time:
        // neither takes the other's nonce.
        let order = test_support::allocation(&genesis, 1, 10);
        let admitted = admit_transactions(&context, vec![order]).await;
        assert!(admitted[0].is_ok(), "{admitted:?}");
        assert_eq!(
            context
                .mempool
                .lock()
                .unwrap()
                .pending_nonce(MemberId(1), Lane::Member),
            Some(Nonce(1))
        );
        attester.sign_and_admit(fact(4)).await.unwrap();
        assert_eq!(pending_node_nonces(&context), Some(Nonce(4)));
    }

    #[tokio::test]
    async fn a_transaction_the_mempool_lost_is_admitted_again_with_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (context, _gossip) = test_support::context(dir.path(), test_support::genesis(7302));
        let mut attester = attester(context.clone());
        let first = attester.sign_and_admit(fact(1)).await.unwrap();
        attester.sign_and_admit(fact(2)).await.unwrap();
        // Nonce 1 leaves the mempool unfinalized: nonce 2 can never be proposed now.
        let removed =
            context
                .mempool
                .lock()
                .unwrap()
                .remove(&[(MemberId(1), Lane::Node, Nonce(1), first)]);
        assert_eq!(removed, 1);
        assert!(!context.mempool.lock().unwrap().contains(&first));
        attester.readmit_lost().await;
        assert!(
            context.mempool.lock().unwrap().contains(&first),
            "the same transaction (same id, so the same bytes) is back"
        );
        // And the next one follows without a gap.
        attester.sign_and_admit(fact(3)).await.unwrap();
        assert_eq!(pending_node_nonces(&context), Some(Nonce(3)));
    }

    #[tokio::test]
    async fn nothing_is_signed_while_the_node_syncs_and_the_handle_reports_why() {
        let dir = tempfile::tempdir().unwrap();
        let (mut context, _gossip) = test_support::context(dir.path(), test_support::genesis(7303));
        let (syncing, status) = tokio::sync::watch::channel(crate::node::api::NodeStatus {
            syncing: true,
            ..Default::default()
        });
        context.status = status;
        let handle = spawn(context.clone(), Keypair::dev("exchange-a"), MemberId(1));
        let refused = handle.attest(fact(1)).await.unwrap_err();
        assert!(matches!(refused, AttestError::Syncing), "{refused}");
        assert_eq!(pending_node_nonces(&context), None, "no nonce used");
        syncing.send_modify(|status| status.syncing = false);
        handle.attest(fact(1)).await.unwrap();
        assert_eq!(pending_node_nonces(&context), Some(Nonce(1)));
    }
}
