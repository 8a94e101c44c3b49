//! R14, the fence of a restored validator: a validator whose record may be older than
//! what it signed (its data directory was restored from a backup) signs nothing until
//! its peers have told it what they hold of its signatures, merges that into its
//! record, makes the merged record durable, and only then signs again, within what the
//! merged record permits (R10). Also the sending side: every status to a validator
//! carries what that validator signed in the highest view the sender holds any of it.

use super::{Engine, Output};
use crate::message::{SignedByRecipient, MAX_RECIPIENT_SIGNED};
use crate::record::{PersistedRecord, Signing};
use seisan_crypto::{verify_digest, verify_vote_in};
use seisan_types::{Epoch, MemberId, View, VoteKind};
use std::collections::BTreeSet;

/// What a fenced engine has learned so far.
#[derive(Clone, Debug)]
pub(super) struct Fence {
    /// Validators of this epoch whose status of this epoch arrived since the start.
    heard: BTreeSet<MemberId>,
    /// This validator's own signatures in the highest view any peer reported one.
    learned: PersistedRecord,
    /// When the engine started: the fence waits a view timeout for slow connections.
    pub(super) since_ms: u64,
}

impl Fence {
    pub(super) fn new(epoch: Epoch) -> Fence {
        Fence {
            heard: BTreeSet::new(),
            learned: PersistedRecord::starting(epoch),
            since_ms: 0,
        }
    }

    /// Who was heard and what was learned, for logs and failure reports.
    pub(super) fn describe(&self) -> String {
        format!("heard {:?} learned view {}", self.heard, self.learned.view)
    }
}

/// Adds `signing` in `view` to `learned` when `view` is the highest seen so far. Only
/// the highest view matters: the merged record forbids every view below its own (R10).
fn absorb(learned: &mut PersistedRecord, view: View, signing: Signing) {
    if view < learned.view {
        return;
    }
    if view > learned.view {
        *learned = PersistedRecord {
            view,
            ..PersistedRecord::starting(learned.epoch)
        };
    }
    // Fields are set directly, not through `with`: an earlier life of this validator
    // may have signed a combination `permits` refuses; it is recorded all the same, so
    // nothing conflicting with any of it is signed again.
    match signing {
        Signing::Proposal(block) => {
            learned.proposed.get_or_insert(block);
        }
        Signing::Notarize(block) => {
            learned.notarized.get_or_insert(block);
        }
        Signing::Finalize(block) => {
            learned.finalized.get_or_insert(block);
        }
        Signing::Nullify => learned.nullified = true,
    }
}

/// `record` joined with `learned`: the higher view wins, one view merges its fields
/// (the durable record's first).
fn merge(record: &PersistedRecord, learned: &PersistedRecord) -> PersistedRecord {
    assert_eq!(record.epoch, learned.epoch);
    if learned.view > record.view {
        return learned.clone();
    }
    if learned.view < record.view {
        return record.clone();
    }
    PersistedRecord {
        epoch: record.epoch,
        view: record.view,
        proposed: record.proposed.or(learned.proposed),
        notarized: record.notarized.or(learned.notarized),
        finalized: record.finalized.or(learned.finalized),
        nullified: record.nullified || learned.nullified,
    }
}

impl Engine {
    /// R14, sending side: what `peer` signed in the highest view above the finalized
    /// tip in which this node holds anything `peer` signed (its proposal and votes).
    pub(super) fn signed_by(&self, peer: MemberId) -> Vec<SignedByRecipient> {
        if peer == self.member || !self.is_validator(peer) {
            return Vec::new();
        }
        let vote_views = self.votes.iter().rev().find_map(|(view, votes)| {
            [&votes.notarize, &votes.finalize, &votes.nullify]
                .into_iter()
                .flatten()
                .any(|vote| vote.member == peer)
                .then_some(*view)
        });
        let proposal_view = self
            .proposals
            .iter()
            .rev()
            .find(|(_, slot)| slot.header.proposer == peer)
            .map(|(view, _)| *view);
        let Some(view) = vote_views.max(proposal_view) else {
            return Vec::new();
        };
        let mut signed = Vec::new();
        if let Some(slot) = self
            .proposals
            .get(&view)
            .filter(|slot| slot.header.proposer == peer)
        {
            signed.push(SignedByRecipient::Proposal(
                crate::message::SignedProposalHeader {
                    header: slot.header.clone(),
                    signature: slot.signature,
                },
            ));
        }
        if let Some(votes) = self.votes.get(&view) {
            for list in [&votes.notarize, &votes.finalize, &votes.nullify] {
                if let Some(vote) = list.iter().find(|vote| vote.member == peer) {
                    signed.push(SignedByRecipient::Vote(vote.clone()));
                }
            }
        }
        assert!(signed.len() <= MAX_RECIPIENT_SIGNED);
        signed
    }

    /// R14, receiving side: a status of this epoch from validator `from` arrived; while
    /// fenced, keep what it says this node signed, each message checked against this
    /// node's own key (a peer cannot make it believe it signed something it did not).
    pub(super) fn learn_from_status(&mut self, from: MemberId, signed: Vec<SignedByRecipient>) {
        if self.fence.is_none() || !self.is_validator(from) || from == self.member {
            return;
        }
        let Some(own_key) = self.set.key_of(self.member) else {
            return;
        };
        let mut learned: Vec<(View, Signing)> = Vec::new();
        for message in signed.into_iter().take(MAX_RECIPIENT_SIGNED) {
            match message {
                SignedByRecipient::Vote(vote) => {
                    if vote.member != self.member
                        || verify_vote_in(&self.domain, &self.set, &vote).is_err()
                    {
                        continue;
                    }
                    let block = vote.vote.block;
                    let signing = match vote.vote.kind {
                        VoteKind::Notarize => Signing::Notarize(block),
                        VoteKind::Finalize => Signing::Finalize(block),
                        VoteKind::Nullify => Signing::Nullify,
                    };
                    learned.push((vote.vote.view, signing));
                }
                SignedByRecipient::Proposal(proposal) => {
                    let header = &proposal.header;
                    if header.proposer != self.member
                        || header.chain_id != *self.chain_id()
                        || header.epoch != self.set.epoch
                        || verify_digest(
                            &own_key,
                            &proposal.digest(&self.domain.genesis),
                            &proposal.signature,
                        )
                        .is_err()
                    {
                        continue;
                    }
                    learned.push((header.view, Signing::Proposal(header.hash())));
                }
            }
        }
        let fence = self.fence.as_mut().expect("checked above");
        fence.heard.insert(from);
        for (view, signing) in learned {
            absorb(&mut fence.learned, view, signing);
        }
    }

    /// When a fenced engine may lift its fence on waiting alone (R14).
    pub(super) fn fence_deadline_ms(&self) -> Option<u64> {
        let fence = self.fence.as_ref()?;
        Some(fence.since_ms.saturating_add(self.timeouts.view_timeout_ms))
    }

    /// R14: lifts the fence once this node has heard the status of every other
    /// validator, or of every connected one and at least `n - q + 1` after waiting a
    /// view timeout: any `n - q + 1` other validators include one of the `q - 1` others
    /// that signed the certificate which let this node into the last view it signed in
    /// before the restore, so that one's status (its view, kept certificates and the
    /// messages it holds) reaches this node. `q - 1` would not do: with 3 validators,
    /// the one peer heard may be the one that missed everything this node and the third
    /// did together, and the two would build a fork. The merged record is persisted
    /// before anything is signed (the signed messages that follow wait behind it, R10),
    /// and the node moves up to the record's view: nothing below it may be signed any
    /// more.
    pub(super) fn try_lift_fence(&mut self) {
        let Some(fence) = self.fence.as_ref() else {
            return;
        };
        let others = self
            .validators
            .iter()
            .filter(|validator| **validator != self.member)
            .count();
        assert!(fence.heard.iter().all(|member| self.is_validator(*member)));
        let heard_all = fence.heard.len() >= others;
        let connected_heard = self.connected.is_subset(&fence.heard);
        let enough = fence.heard.len() + self.quorum > self.validators.len();
        let waited = self.now_ms >= fence.since_ms.saturating_add(self.timeouts.view_timeout_ms);
        if !(heard_all || (enough && connected_heard && waited)) {
            return;
        }
        let fence = self.fence.take().expect("checked above");
        let merged = merge(&self.record, &fence.learned);
        if merged != self.record {
            let certificate = if merged.view > self.record.view {
                self.entry_certificate(merged.view)
            } else {
                None
            };
            let sequence = self.next_sequence;
            self.next_sequence += 1;
            self.record = merged.clone();
            self.out.push(Output::Persist {
                sequence,
                record: merged,
                block: None,
                certificate,
            });
            // Nothing to release, but anything signed next queues behind this record.
            self.unreleased.push_back((sequence, Vec::new()));
        }
        if self.record.view > self.view {
            self.enter_view(self.record.view);
        }
        // A view that timed out while fenced still gets this node's nullify (R6).
        self.try_nullify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seisan_types::Hash;

    const A: Hash = Hash([1; 32]);
    const B: Hash = Hash([2; 32]);

    #[test]
    fn only_the_highest_view_is_learned_and_merged() {
        let mut learned = PersistedRecord::starting(Epoch(0));
        absorb(&mut learned, View(7), Signing::Notarize(A));
        absorb(&mut learned, View(5), Signing::Nullify);
        absorb(&mut learned, View(7), Signing::Finalize(A));
        assert_eq!(learned.view, View(7));
        assert!(
            !learned.nullified,
            "a lower view's nullify is not this view's"
        );
        assert_eq!(learned.finalized, Some(A));
        assert!(!learned.permits(View(7), Signing::Nullify));

        let stale = PersistedRecord::starting(Epoch(0)).with(View(3), Signing::Notarize(B));
        assert_eq!(merge(&stale, &learned), learned);
        let newer = PersistedRecord::starting(Epoch(0)).with(View(9), Signing::Nullify);
        assert_eq!(merge(&newer, &learned), newer);
        let same = PersistedRecord::starting(Epoch(0)).with(View(7), Signing::Notarize(A));
        let merged = merge(&same, &learned);
        assert_eq!(merged.finalized, Some(A));
        assert!(!merged.permits(View(7), Signing::Nullify));
        assert!(!merged.permits(View(6), Signing::Nullify));
    }
}
