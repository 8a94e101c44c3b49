//! The mempool: signed transactions waiting for a block.
//!
//! Transactions queue per sender, a member and one of its nonce lanes
//! ([`Lane::Member`] for what its people and back office sign, [`Lane::Node`] for the
//! attestations its validator node signs itself): the lanes are independent nonce
//! sequences, so a member has two queues and neither waits for the other.
//!
//! Bounded by count, bytes and a per-sender quota; admits only transactions whose
//! signature and chain id were checked by the caller and whose nonce is above the
//! sender's committed nonce; drops duplicates. Blocks are filled round-robin across
//! senders, each sender's transactions in nonce order, so one member's flood cannot
//! starve another's, nor its back office's flood its own node's attestations.
//! Execution takes only a lane's next nonce, so a block takes from each sender only the
//! run of consecutive nonces that follows its last nonce in the parent state; a
//! transaction that arrived before its predecessor waits.

use seisan_types::hash::Hash;
use seisan_types::ids::{MemberId, Nonce};
use seisan_types::tx::{Lane, SignedTransaction};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use tokio::sync::Notify;

/// Bounds of the mempool.
#[derive(Clone, Copy, Debug)]
pub struct MempoolLimits {
    pub max_txs: usize,
    pub max_bytes: usize,
    /// The quota of one sender (a member's lane): each lane has its own.
    pub max_txs_per_member: usize,
}

impl Default for MempoolLimits {
    fn default() -> MempoolLimits {
        MempoolLimits {
            max_txs: 100_000,
            max_bytes: 128 << 20,
            max_txs_per_member: 50_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    #[error("mempool is busy ({reason}); retry later")]
    Busy { reason: String },
    #[error("transaction {id} is already pending")]
    Duplicate { id: Hash },
    #[error(
        "nonce {nonce} of member {member}'s {lane} lane is already used by a pending transaction"
    )]
    NoncePending {
        member: MemberId,
        lane: Lane,
        nonce: Nonce,
    },
    #[error("nonce {nonce} of member {member}'s {lane} lane is stale: the last committed nonce is {last}")]
    StaleNonce {
        member: MemberId,
        lane: Lane,
        nonce: Nonce,
        last: Nonce,
    },
}

#[derive(Clone, Debug)]
struct Entry {
    id: Hash,
    size: usize,
    tx: SignedTransaction,
}

#[derive(Debug, Default)]
pub struct Mempool {
    limits: MempoolLimits,
    /// Pending transactions per sender (member and lane), by nonce.
    members: BTreeMap<(MemberId, Lane), BTreeMap<Nonce, Entry>>,
    ids: HashSet<Hash>,
    bytes: usize,
    count: usize,
    /// Where the next round-robin selection starts, so no member is always first.
    cursor: u32,
    /// Signalled on every admission: the core loop waits on it for a proposal's
    /// transactions instead of polling.
    arrivals: Arc<Notify>,
}

impl Mempool {
    pub fn new(limits: MempoolLimits) -> Mempool {
        Mempool {
            limits,
            ..Mempool::default()
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Encoded bytes of the pending transactions (bounded by `MempoolLimits::max_bytes`).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn contains(&self, id: &Hash) -> bool {
        self.ids.contains(id)
    }

    /// The highest nonce `member` has pending in `lane`, if any.
    pub fn pending_nonce(&self, member: MemberId, lane: Lane) -> Option<Nonce> {
        self.members
            .get(&(member, lane))
            .and_then(|queue| queue.keys().next_back().copied())
    }

    /// The nonce `member`'s next transaction in `lane` needs for the mempool to be able
    /// to propose it: one above the highest of the committed nonce and the consecutive
    /// run pending right after it. A transaction with a higher nonce would wait for a
    /// predecessor nobody has signed yet.
    pub fn next_contiguous_nonce(
        &self,
        member: MemberId,
        lane: Lane,
        committed_nonce: Option<Nonce>,
    ) -> Nonce {
        let first = committed_nonce.map_or(1, |last| last.0 + 1);
        let run = self.members.get(&(member, lane)).map_or(0, |queue| {
            // The usual queue, a run starting at `first` with no hole, is answered
            // without walking it (nonces are distinct, so its ends and length tell).
            if let (Some((low, _)), Some((high, _))) =
                (queue.first_key_value(), queue.last_key_value())
            {
                if low.0 == first && high.0 - low.0 + 1 == queue.len() as u64 {
                    return queue.len() as u64;
                }
            }
            queue
                .range(Nonce(first)..)
                .zip(first..)
                .take_while(|((nonce, _), expected)| nonce.0 == *expected)
                .count() as u64
        });
        Nonce(first + run)
    }

    /// Admits a transaction whose signature and chain id the caller has verified.
    pub fn admit(
        &mut self,
        tx: SignedTransaction,
        id: Hash,
        size: usize,
        committed_nonce: Option<Nonce>,
    ) -> Result<(), AdmitError> {
        let member = tx.tx.member;
        let lane = tx.tx.body.lane();
        let nonce = tx.tx.nonce;
        if self.ids.contains(&id) {
            return Err(AdmitError::Duplicate { id });
        }
        if let Some(last) = committed_nonce.filter(|last| nonce <= *last) {
            return Err(AdmitError::StaleNonce {
                member,
                lane,
                nonce,
                last,
            });
        }
        let sender = (member, lane);
        let queue_len = self.members.get(&sender).map_or(0, BTreeMap::len);
        if self
            .members
            .get(&sender)
            .is_some_and(|queue| queue.contains_key(&nonce))
        {
            return Err(AdmitError::NoncePending {
                member,
                lane,
                nonce,
            });
        }
        if self.count >= self.limits.max_txs {
            return Err(AdmitError::Busy {
                reason: format!("{} transactions pending", self.count),
            });
        }
        if self.bytes + size > self.limits.max_bytes {
            return Err(AdmitError::Busy {
                reason: format!("{} bytes pending", self.bytes),
            });
        }
        if queue_len >= self.limits.max_txs_per_member {
            return Err(AdmitError::Busy {
                reason: format!(
                    "member {member} has {queue_len} transactions pending in its {lane} lane, its quota"
                ),
            });
        }
        self.members
            .entry(sender)
            .or_default()
            .insert(nonce, Entry { id, size, tx });
        self.ids.insert(id);
        self.bytes += size;
        self.count += 1;
        self.arrivals.notify_one();
        Ok(())
    }

    /// What admission signals (one stored permit when nobody waits).
    pub fn arrivals(&self) -> Arc<Notify> {
        self.arrivals.clone()
    }

    /// Up to `max_txs` transactions (and `max_bytes`) for a block, round-robin across
    /// senders; from each member's lane only consecutive nonces starting at
    /// `next_nonce(member, lane)` (the lane's last nonce in the parent state, plus one).
    pub fn select(
        &mut self,
        max_txs: usize,
        max_bytes: usize,
        next_nonce: impl Fn(MemberId, Lane) -> Nonce,
    ) -> Vec<SignedTransaction> {
        let members: Vec<(MemberId, Lane)> = self.members.keys().copied().collect();
        if members.is_empty() {
            return Vec::new();
        }
        let start = members
            .iter()
            .position(|(member, _)| member.0 >= self.cursor)
            .unwrap_or(0);
        self.cursor = self.cursor.wrapping_add(1);
        let mut runs: Vec<_> = members[start..]
            .iter()
            .chain(&members[..start])
            .map(|member| {
                let first = next_nonce(member.0, member.1);
                let run = self.members[member]
                    .range(first..)
                    .zip(first.0..)
                    .take_while(|((nonce, _), expected)| nonce.0 == *expected)
                    .map(|((_, entry), _)| entry);
                run.peekable()
            })
            .collect();
        let mut chosen = Vec::new();
        let mut bytes = 0;
        let mut progressed = true;
        while progressed && chosen.len() < max_txs {
            progressed = false;
            for run in runs.iter_mut() {
                if chosen.len() >= max_txs {
                    break;
                }
                if let Some(entry) = run.peek() {
                    if bytes + entry.size > max_bytes {
                        continue;
                    }
                    bytes += entry.size;
                    chosen.push(entry.tx.clone());
                    run.next();
                    progressed = true;
                }
            }
        }
        chosen
    }

    /// Takes back transactions this node admitted but could not acknowledge (their
    /// journal append failed): each is removed if it is still the entry at its
    /// member's lane and nonce with the same id; anything else (already committed and
    /// removed, or never admitted) is left alone. Returns how many were removed.
    pub fn remove(&mut self, transactions: &[(MemberId, Lane, Nonce, Hash)]) -> usize {
        let mut removed = 0;
        for (member, lane, nonce, id) in transactions {
            let sender = (*member, *lane);
            let Some(queue) = self.members.get_mut(&sender) else {
                continue;
            };
            if queue.get(nonce).is_none_or(|entry| entry.id != *id) {
                continue;
            }
            let entry = queue.remove(nonce).expect("checked above");
            self.ids.remove(&entry.id);
            self.bytes -= entry.size;
            self.count -= 1;
            removed += 1;
            if queue.is_empty() {
                self.members.remove(&sender);
            }
        }
        debug_assert_eq!(self.ids.len(), self.count);
        removed
    }

    /// Removes transactions that a committed block included, and every pending
    /// transaction whose nonce is now stale in its lane.
    pub fn remove_committed(&mut self, committed: &[(MemberId, Lane, Nonce)]) {
        for (member, lane, nonce) in committed {
            let sender = (*member, *lane);
            let Some(queue) = self.members.get_mut(&sender) else {
                continue;
            };
            let stale: Vec<Nonce> = queue.range(..=*nonce).map(|(nonce, _)| *nonce).collect();
            for stale_nonce in stale {
                let entry = queue.remove(&stale_nonce).expect("key from range");
                self.ids.remove(&entry.id);
                self.bytes -= entry.size;
                self.count -= 1;
            }
            if queue.is_empty() {
                self.members.remove(&sender);
            }
        }
        debug_assert_eq!(self.ids.len(), self.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seisan_types::bytes::Signature;
    use seisan_types::ids::ChainId;
    use seisan_types::tx::{Transaction, TxBody};

    /// The nonces a proposal would take when every member's next nonce is `next`.
    fn selected_nonces(pool: &mut Mempool, next: u64) -> Vec<u64> {
        pool.select(10, usize::MAX, |_, _| Nonce(next))
            .iter()
            .map(|t| t.tx.nonce.0)
            .collect()
    }

    fn tx(member: u32, nonce: u64) -> (SignedTransaction, Hash) {
        let signed = SignedTransaction {
            tx: Transaction {
                chain_id: ChainId("dev".into()),
                member: MemberId(member),
                nonce: Nonce(nonce),
                body: TxBody::AllocateBatch(vec![]),
            },
            signature: Signature([0; 64]),
        };
        let id = signed.id();
        (signed, id)
    }

    fn admit(pool: &mut Mempool, member: u32, nonce: u64) -> Result<(), AdmitError> {
        let (signed, id) = tx(member, nonce);
        pool.admit(signed, id, 100, None)
    }

    #[test]
    fn rejects_duplicates_stale_and_pending_nonces() {
        let mut pool = Mempool::new(MempoolLimits::default());
        let (signed, id) = tx(1, 5);
        pool.admit(signed.clone(), id, 100, None).unwrap();
        assert_eq!(
            pool.admit(signed.clone(), id, 100, None),
            Err(AdmitError::Duplicate { id })
        );
        let (other, other_id) = tx(1, 3);
        assert!(matches!(
            pool.admit(other, other_id, 100, Some(Nonce(3))),
            Err(AdmitError::StaleNonce { .. })
        ));
        let mut same_nonce = signed;
        same_nonce.signature = Signature([1; 64]);
        let same_id = same_nonce.id();
        assert!(matches!(
            pool.admit(same_nonce, same_id, 100, None),
            Err(AdmitError::NoncePending { .. })
        ));
    }

    #[test]
    fn full_pool_and_member_quota_answer_busy() {
        let mut pool = Mempool::new(MempoolLimits {
            max_txs: 10,
            max_bytes: 1 << 20,
            max_txs_per_member: 4,
        });
        for nonce in 1..=4 {
            admit(&mut pool, 1, nonce).unwrap();
        }
        assert!(matches!(
            admit(&mut pool, 1, 5),
            Err(AdmitError::Busy { .. })
        ));
        for nonce in 1..=4 {
            admit(&mut pool, 2, nonce).unwrap();
        }
        admit(&mut pool, 3, 1).unwrap();
        admit(&mut pool, 3, 2).unwrap();
        let error = admit(&mut pool, 4, 1).unwrap_err();
        assert!(error.to_string().contains("busy"), "{error}");
    }

    #[test]
    fn selection_is_fair_and_in_nonce_order() {
        let mut pool = Mempool::new(MempoolLimits::default());
        for nonce in (1..=50).rev() {
            admit(&mut pool, 1, nonce).unwrap();
        }
        admit(&mut pool, 2, 1).unwrap();
        admit(&mut pool, 2, 2).unwrap();
        let chosen = pool.select(6, usize::MAX, |_, _| Nonce(1));
        let from_two: Vec<u64> = chosen
            .iter()
            .filter(|t| t.tx.member == MemberId(2))
            .map(|t| t.tx.nonce.0)
            .collect();
        assert_eq!(
            from_two,
            [1, 2],
            "the quiet member is not starved by the flooding one"
        );
        let from_one: Vec<u64> = chosen
            .iter()
            .filter(|t| t.tx.member == MemberId(1))
            .map(|t| t.tx.nonce.0)
            .collect();
        assert_eq!(from_one, [1, 2, 3, 4]);
    }

    #[test]
    fn selection_waits_for_a_missing_predecessor() {
        let mut pool = Mempool::new(MempoolLimits::default());
        for nonce in [1, 2, 4, 5] {
            admit(&mut pool, 1, nonce).unwrap();
        }
        let nonces = selected_nonces(&mut pool, 1);
        assert_eq!(nonces, [1, 2], "nonce 4 waits for 3");
        assert!(pool.select(10, usize::MAX, |_, _| Nonce(3)).is_empty());
        admit(&mut pool, 1, 3).unwrap();
        let nonces = selected_nonces(&mut pool, 3);
        assert_eq!(nonces, [3, 4, 5]);
    }

    #[test]
    fn remove_takes_back_exactly_the_named_entries() {
        let mut pool = Mempool::new(MempoolLimits::default());
        for nonce in 1..=3 {
            admit(&mut pool, 1, nonce).unwrap();
        }
        let (_, second) = tx(1, 2);
        let (mut other, _) = tx(1, 3);
        other.signature = Signature([9; 64]);
        let other_signature = other.id();
        let removed = pool.remove(&[
            (MemberId(1), Lane::Member, Nonce(2), second),
            // Same nonce, another transaction: not the one pending, left alone.
            (MemberId(1), Lane::Member, Nonce(3), other_signature),
            (MemberId(7), Lane::Member, Nonce(1), second),
            // Same member and nonce in the other lane: nothing there.
            (MemberId(1), Lane::Node, Nonce(3), tx(1, 3).1),
        ]);
        assert_eq!(removed, 1);
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.bytes, 200);
        assert!(!pool.contains(&second));
        assert!(pool.contains(&tx(1, 3).1));
        // The nonce is free again: the same transaction can be admitted once more.
        admit(&mut pool, 1, 2).unwrap();
        assert_eq!(
            pool.pending_nonce(MemberId(1), Lane::Member),
            Some(Nonce(3))
        );
        assert_eq!(pool.pending_nonce(MemberId(1), Lane::Node), None);
    }

    #[test]
    fn replayed_transactions_are_admitted_like_new_ones() {
        // A restarted node puts its journal back through the same admission: what is
        // above the committed nonce is pending again, in nonce order, whatever the
        // order it is replayed in; what is not is stale.
        let mut pool = Mempool::new(MempoolLimits::default());
        for nonce in [5, 3, 4, 2] {
            let (signed, id) = tx(1, nonce);
            let result = pool.admit(signed, id, 100, Some(Nonce(2)));
            if nonce == 2 {
                assert!(matches!(result, Err(AdmitError::StaleNonce { .. })));
            } else {
                result.unwrap();
            }
        }
        let nonces = selected_nonces(&mut pool, 3);
        assert_eq!(nonces, [3, 4, 5]);
        let (again, id) = tx(1, 4);
        assert_eq!(
            pool.admit(again, id, 100, Some(Nonce(2))),
            Err(AdmitError::Duplicate { id })
        );
    }

    #[test]
    fn remove_committed_drops_included_and_stale() {
        let mut pool = Mempool::new(MempoolLimits::default());
        for nonce in 1..=5 {
            admit(&mut pool, 1, nonce).unwrap();
        }
        // Nonce 1 is in an uncommitted parent: the run starts at 2.
        assert_eq!(
            pool.select(10, usize::MAX, |_, _| Nonce(2))[0].tx.nonce,
            Nonce(2)
        );
        pool.remove_committed(&[(MemberId(1), Lane::Member, Nonce(3))]);
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.bytes, 200);
        assert!(!pool.contains(&tx(1, 2).1));
        assert!(pool.contains(&tx(1, 4).1));
    }

    fn attestation(member: u32, nonce: u64) -> (SignedTransaction, Hash) {
        let signed = SignedTransaction {
            tx: Transaction {
                chain_id: ChainId("dev".into()),
                member: MemberId(member),
                nonce: Nonce(nonce),
                body: TxBody::AttestPayout {
                    withdrawal: seisan_types::custody::WithdrawalId(nonce),
                    tx_hash: seisan_types::custody::ChainTxHash("0x01".into()),
                },
            },
            signature: Signature([0; 64]),
        };
        let id = signed.id();
        (signed, id)
    }

    #[test]
    fn a_members_lanes_queue_and_select_independently() {
        let mut pool = Mempool::new(MempoolLimits {
            max_txs: 100,
            max_bytes: 1 << 20,
            max_txs_per_member: 3,
        });
        // The back office has filled its lane's quota with 1..=3; the node's
        // attestations still get in, at the same nonces, in their own lane.
        for nonce in 1..=3 {
            admit(&mut pool, 1, nonce).unwrap();
        }
        assert!(matches!(
            admit(&mut pool, 1, 4),
            Err(AdmitError::Busy { .. })
        ));
        for nonce in [1, 2] {
            let (signed, id) = attestation(1, nonce);
            pool.admit(signed, id, 100, None).unwrap();
        }
        assert_eq!(
            pool.pending_nonce(MemberId(1), Lane::Member),
            Some(Nonce(3))
        );
        assert_eq!(pool.pending_nonce(MemberId(1), Lane::Node), Some(Nonce(2)));
        let (signed, id) = attestation(1, 1);
        let mut again = signed;
        again.signature = Signature([5; 64]);
        assert!(id != again.id());
        let error = pool
            .admit(again.clone(), again.id(), 100, None)
            .unwrap_err();
        assert!(error.to_string().contains("node lane"), "{error}");

        // The member lane's parent state is at 1, the node lane's at 0.
        let chosen = pool.select(10, usize::MAX, |_, lane| match lane {
            Lane::Member => Nonce(2),
            Lane::Node => Nonce(1),
        });
        let mut picked: Vec<(Lane, u64)> = chosen
            .iter()
            .map(|t| (t.tx.body.lane(), t.tx.nonce.0))
            .collect();
        picked.sort();
        assert_eq!(
            picked,
            [
                (Lane::Member, 2),
                (Lane::Member, 3),
                (Lane::Node, 1),
                (Lane::Node, 2)
            ]
        );

        // Committing member-lane nonce 3 leaves the node lane alone.
        pool.remove_committed(&[(MemberId(1), Lane::Member, Nonce(3))]);
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.pending_nonce(MemberId(1), Lane::Node), Some(Nonce(2)));
        assert_eq!(
            pool.next_contiguous_nonce(MemberId(1), Lane::Node, None),
            Nonce(3)
        );
        assert_eq!(
            pool.next_contiguous_nonce(MemberId(1), Lane::Member, Some(Nonce(3))),
            Nonce(4)
        );
    }

    #[test]
    fn next_contiguous_nonce_stops_at_the_first_hole() {
        let mut pool = Mempool::new(MempoolLimits::default());
        for nonce in [3, 4, 6] {
            admit(&mut pool, 1, nonce).unwrap();
        }
        assert_eq!(
            pool.next_contiguous_nonce(MemberId(1), Lane::Member, Some(Nonce(2))),
            Nonce(5),
            "3 and 4 follow the committed 2; 6 waits for 5"
        );
        assert_eq!(
            pool.next_contiguous_nonce(MemberId(1), Lane::Member, Some(Nonce(1))),
            Nonce(2),
            "2 is missing"
        );
        assert_eq!(
            pool.next_contiguous_nonce(MemberId(2), Lane::Member, None),
            Nonce(1)
        );
        // A queue that is one run from the committed nonce on (the usual case).
        admit(&mut pool, 1, 5).unwrap();
        assert_eq!(
            pool.next_contiguous_nonce(MemberId(1), Lane::Member, Some(Nonce(2))),
            Nonce(7),
            "3 to 6 follow the committed 2"
        );
        // Nonces already committed still queued: the run counts from the committed one.
        assert_eq!(
            pool.next_contiguous_nonce(MemberId(1), Lane::Member, Some(Nonce(3))),
            Nonce(7)
        );
        assert_eq!(
            pool.next_contiguous_nonce(MemberId(1), Lane::Member, Some(Nonce(6))),
            Nonce(7)
        );
        assert_eq!(
            pool.next_contiguous_nonce(MemberId(1), Lane::Member, Some(Nonce(9))),
            Nonce(10)
        );
    }
}
