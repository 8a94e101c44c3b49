//! Votes: receiving and counting votes (R4..R7), signing `finalize(v, b)` after a
//! notarization (R5), R10 (persist the signing record, and the block and entry
//! certificate it needs, before any signed message is released; count this node's own
//! vote only once released) and R11 (report conflicting votes as evidence).

use super::{
    Engine, Output, MAX_RETAINED_VIEWS, MAX_UNRELEASED, MAX_VIEWS_AHEAD, MAX_VOTES_PER_KIND,
};
use crate::evidence::ConsensusEvidence;
use crate::message::ConsensusMessage;
use crate::record::{PersistedRecord, Signing};
use seisan_crypto::{sign_vote, verify_vote_in};
use seisan_types::{
    Block, Evidence, Hash, Height, MemberId, QuorumCertificate, SignedVote, View, Vote, VoteKind,
};

impl Engine {
    /// The certificate that let this node enter `view` (for `view - 1`), unless that is
    /// the finalized tip's, which the host holds with the block.
    pub(super) fn entry_certificate(&self, view: View) -> Option<QuorumCertificate> {
        let previous = View(view.0.checked_sub(1)?);
        if previous <= self.tip.view {
            return None;
        }
        [
            &self.finalizations,
            &self.notarizations,
            &self.nullifications,
        ]
        .into_iter()
        .find_map(|map| map.get(&previous).cloned())
    }

    pub(super) fn on_vote(&mut self, from: MemberId, signed: SignedVote) {
        let vote = &signed.vote;
        // E1: only this epoch's validators, voting in this epoch, are counted.
        if vote.chain_id != *self.chain_id()
            || vote.epoch != self.set.epoch
            || !self.is_validator(signed.member)
        {
            return;
        }
        let view = vote.view;
        if view <= self.tip.view {
            self.help(from, view);
            return;
        }
        if view.0 > self.view.0.saturating_add(MAX_VIEWS_AHEAD)
            || view.0.saturating_add(MAX_RETAINED_VIEWS) < self.view.0
        {
            return;
        }
        let well_formed = match vote.kind {
            VoteKind::Nullify => vote.block == Hash::ZERO && vote.height == Height(0),
            VoteKind::Notarize | VoteKind::Finalize => {
                vote.block != Hash::ZERO && vote.height > self.tip.height
            }
        };
        if !well_formed {
            return;
        }
        self.help(from, view);
        let duplicate = self
            .votes
            .get(&view)
            .is_some_and(|votes| votes.of(vote.kind).contains(&signed));
        if duplicate && !self.bugs().count_duplicate_votes {
            return;
        }
        if verify_vote_in(&self.domain, &self.set, &signed).is_err() {
            return;
        }
        self.record_vote(signed);
    }

    /// Adds a verified vote (a peer's, or this node's own once released), reports
    /// evidence (R11) and forms certificates (R5, R7, R8).
    pub(super) fn record_vote(&mut self, signed: SignedVote) {
        let view = signed.vote.view;
        let kind = signed.vote.kind;
        self.spoke(signed.member, view);
        let member = signed.member;
        let votes = self.votes.entry(view).or_default();
        let previous = votes
            .of(kind)
            .iter()
            .find(|held| held.member == member)
            .cloned();
        let opposite = match kind {
            VoteKind::Finalize => votes.nullify.iter().find(|held| held.member == member),
            VoteKind::Nullify => votes.finalize.iter().find(|held| held.member == member),
            VoteKind::Notarize => None,
        }
        .cloned();
        match previous {
            Some(previous) if previous.vote.block != signed.vote.block => {
                self.report(ConsensusEvidence::ConflictingVotes(Evidence {
                    first: previous,
                    second: signed,
                }));
                return;
            }
            Some(_) if !self.bugs().count_duplicate_votes => return,
            _ => {}
        }
        let list = self.votes.entry(view).or_default().of_mut(kind);
        if list.len() >= MAX_VOTES_PER_KIND {
            return;
        }
        list.push(signed.clone());
        if let Some(opposite) = opposite {
            let (finalize, nullify) = if kind == VoteKind::Finalize {
                (signed.clone(), opposite)
            } else {
                (opposite, signed.clone())
            };
            self.report(ConsensusEvidence::FinalizeAndNullify { finalize, nullify });
        }
        self.tally(&signed.vote);
    }

    pub(super) fn report(&mut self, evidence: ConsensusEvidence) {
        let key = (evidence.view(), evidence.member(), evidence.kind());
        if self.reported.insert(key) {
            self.out.push(Output::Evidence(evidence));
        }
    }

    pub(super) fn sign_finalize(&mut self, view: View, height: Height, block: Hash) {
        let record = &self.record;
        if !self.signing()
            || record.view != view
            || record.finalized.is_some()
            || !record.permits(view, Signing::Finalize(block))
            || self.unreleased.len() >= MAX_UNRELEASED
        {
            return;
        }
        let record = record.with(view, Signing::Finalize(block));
        let vote = self.signed_vote(view, height, block, VoteKind::Finalize);
        // R10: a node that signed finalize(v) may never nullify v, so view v can end
        // only through v's notarization: keep it durably before the vote leaves, or a
        // crash of every validator could leave v with finalize signers who cannot
        // nullify, nullifiers who cannot finalize, and no notarization anywhere.
        let notarization = self.notarizations.get(&view).cloned();
        assert!(
            notarization.is_some(),
            "finalize is signed only upon a notarization"
        );
        self.persist_with_certificate_then_release(
            record,
            None,
            notarization,
            vec![ConsensusMessage::Vote(vote)],
        );
    }

    pub(super) fn signed_vote(
        &self,
        view: View,
        height: Height,
        block: Hash,
        kind: VoteKind,
    ) -> SignedVote {
        let vote = Vote {
            chain_id: self.chain_id().clone(),
            epoch: self.set.epoch,
            view,
            height,
            block,
            kind,
        };
        sign_vote(&self.keypair, &self.domain.genesis, self.member, vote)
    }

    pub(super) fn persist_then_release(
        &mut self,
        record: PersistedRecord,
        block: Option<Box<Block>>,
        messages: Vec<ConsensusMessage>,
    ) {
        let certificate = if record.view > self.record.view {
            self.entry_certificate(record.view)
        } else {
            None
        };
        self.persist_with_certificate_then_release(record, block, certificate, messages);
    }

    pub(super) fn persist_with_certificate_then_release(
        &mut self,
        record: PersistedRecord,
        block: Option<Box<Block>>,
        certificate: Option<QuorumCertificate>,
        messages: Vec<ConsensusMessage>,
    ) {
        assert!(record.view >= self.record.view);
        assert!(!messages.is_empty());
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.record = record.clone();
        self.out.push(Output::Persist {
            sequence,
            record,
            block,
            certificate,
        });
        if self.bugs().release_before_persist {
            self.release(messages);
        } else {
            self.unreleased.push_back((sequence, messages));
        }
    }

    pub(super) fn on_persisted(&mut self, sequence: u64) {
        if sequence >= self.next_sequence {
            return;
        }
        while self
            .unreleased
            .front()
            .is_some_and(|(pending, _)| *pending <= sequence)
        {
            let (_, messages) = self.unreleased.pop_front().expect("front exists");
            self.release(messages);
        }
    }

    pub(super) fn release(&mut self, messages: Vec<ConsensusMessage>) {
        for message in messages {
            if let ConsensusMessage::Vote(vote) = &message {
                assert_eq!(vote.member, self.member);
                if vote.vote.kind == VoteKind::Nullify && vote.vote.view == self.view {
                    self.released_nullify = Some(vote.clone());
                }
            }
            self.out.push(Output::Broadcast(message.clone()));
            // This node's own vote counts only once it has left the node: a
            // certificate holding an unreleased signature would leak it early.
            if let ConsensusMessage::Vote(vote) = message {
                if vote.vote.view > self.tip.view {
                    self.record_vote(vote);
                }
            }
        }
    }
}
