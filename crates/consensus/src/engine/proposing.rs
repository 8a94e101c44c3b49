//! Proposals: R1 (only `leader(v)`'s proposal counts), R3 (the leader picks a justified
//! parent, asks the application to build, signs the proposal and its notarize) and R4
//! (a replica checks the proposal and its parent's justification, asks the application
//! to re-execute it and signs `notarize(v, b)` only if the answer is valid).

use super::{
    ChainGap, Engine, Output, ProposalSlot, Verification, MAX_RETAINED_VIEWS,
    MAX_UNFINALIZED_BLOCKS, MAX_UNRELEASED, MAX_VIEWS_AHEAD,
};
use crate::evidence::ConsensusEvidence;
use crate::message::{proposal_digest, ConsensusMessage, Proposal, MAX_JUSTIFICATION_CERTIFICATES};
use crate::record::Signing;
use seisan_crypto::verify_digest;
use seisan_types::{Block, BlockHeader, Hash, Height, MemberId, QuorumCertificate, View, VoteKind};

impl Engine {
    pub(super) fn on_proposal(&mut self, from: MemberId, proposal: Proposal) {
        let header = proposal.block.header.clone();
        let view = header.view;
        // E1: a proposal of another epoch is never voted on here.
        if header.chain_id != *self.chain_id() || header.epoch != self.set.epoch {
            return;
        }
        if view <= self.tip.view || header.height <= self.tip.height {
            self.help(from, view);
            return;
        }
        if view.0 > self.view.0.saturating_add(MAX_VIEWS_AHEAD)
            || view.0.saturating_add(MAX_RETAINED_VIEWS) < self.view.0
        {
            return;
        }
        let leader = self.leader(view);
        if header.proposer != leader {
            return;
        }
        let hash = proposal.block.hash();
        let Some(leader_key) = self.set.key_of(leader) else {
            return;
        };
        if let Some(slot) = self.proposals.get(&view) {
            if slot.hash == hash {
                return;
            }
            let digest = proposal_digest(self.domain(), view, &hash);
            if verify_digest(&leader_key, &digest, &proposal.signature).is_ok() {
                let first = crate::message::SignedProposalHeader {
                    header: slot.header.clone(),
                    signature: slot.signature,
                };
                self.report(ConsensusEvidence::ConflictingProposals {
                    first: Box::new(first),
                    second: Box::new(proposal.signed_header()),
                });
            }
            return;
        }
        let digest = proposal_digest(self.domain(), view, &hash);
        if verify_digest(&leader_key, &digest, &proposal.signature).is_err() {
            return;
        }
        self.spoke(leader, view);
        for certificate in proposal.justification {
            self.on_certificate(from, certificate);
        }
        // A block whose body does not match its header is never voted for, but the
        // signed header still counts for equivocation evidence.
        let verification = if proposal.block.txs_root_matches() {
            Verification::NotAsked
        } else {
            Verification::Invalid
        };
        self.proposals.insert(
            view,
            ProposalSlot {
                header,
                hash,
                signature: proposal.signature,
                verification,
            },
        );
        if verification == Verification::NotAsked {
            self.hold_block(proposal.block);
        }
        self.help(from, view);
    }

    pub(super) fn hold_block(&mut self, block: Block) {
        if block.header.height <= self.tip.height || self.blocks.len() >= MAX_UNFINALIZED_BLOCKS {
            return;
        }
        let hash = block.hash();
        self.wanted.remove(&hash);
        self.blocks.entry(hash).or_insert(block);
    }

    /// The parent a proposal in `view` must extend (R3): the highest view below with a
    /// notarization or finalization (or the finalized tip), with every view between
    /// nullified. `None` if a view between has neither certificate here.
    pub(super) fn parent_for(&self, view: View) -> Option<(Hash, Height, View)> {
        let mut candidate = view.0.checked_sub(1)?;
        let mut skipped = 0;
        loop {
            if candidate <= self.tip.view.0 {
                return Some((self.tip.hash, self.tip.height, self.tip.view));
            }
            let at = View(candidate);
            let certified = self
                .finalizations
                .get(&at)
                .or_else(|| self.notarizations.get(&at));
            if let Some(certificate) = certified {
                return Some((certificate.vote.block, certificate.vote.height, at));
            }
            if !self.nullifications.contains_key(&at) {
                return None;
            }
            skipped += 1;
            if skipped >= MAX_JUSTIFICATION_CERTIFICATES {
                return None;
            }
            candidate -= 1;
        }
    }

    /// The certificates a proposal in `view` on a parent of `parent_view` carries.
    pub(super) fn justification(
        &self,
        parent_view: View,
        parent: Hash,
        view: View,
    ) -> Vec<QuorumCertificate> {
        let mut certificates = Vec::new();
        // The epoch's base (E5) is certified by the previous epoch, which this epoch's
        // validators do not count (E1): it needs no justification.
        if let Some(certificate) = self
            .certificate_for(&parent)
            .filter(|certificate| certificate.vote.epoch == self.set.epoch)
        {
            certificates.push(certificate.clone());
        }
        for skipped in parent_view.0 + 1..view.0 {
            if let Some(certificate) = self.nullifications.get(&View(skipped)) {
                certificates.push(certificate.clone());
            }
        }
        certificates.truncate(MAX_JUSTIFICATION_CERTIFICATES);
        certificates
    }

    pub(super) fn try_propose(&mut self) {
        let view = self.view;
        if !self.signing() || self.leader(view) != self.member || self.timed_out {
            return;
        }
        if self
            .building
            .is_some_and(|(building, _, _)| building == view)
        {
            return;
        }
        if self.record.view == view && self.record.proposed.is_some() {
            return;
        }
        let Some((parent, parent_height, _)) = self.parent_for(view) else {
            return;
        };
        let ancestors = match self.chain_to(parent, parent_height) {
            Ok(ancestors) => ancestors,
            Err(ChainGap::Missing(hash, height)) => {
                self.want(hash, height);
                return;
            }
            Err(ChainGap::Conflict) => return,
        };
        let height = parent_height.next();
        if self.record.view == view && (self.record.nullified || self.record.notarized.is_some()) {
            return;
        }
        if !self.within_pipeline(height) {
            // E3: wait until the finalized tip catches up.
            return;
        }
        self.building = Some((view, parent, height));
        if self.must_seal(height) {
            // E4: above the epoch's end the engine builds the seal itself.
            let Some(parent_block) = ancestors.last() else {
                return;
            };
            let seal = self.seal_on(parent_block, view);
            self.on_built(view, seal);
            return;
        }
        self.out.push(Output::BuildProposal {
            epoch: self.set.epoch,
            view,
            height,
            parent,
            ancestors,
        });
    }

    pub(super) fn on_built(&mut self, view: View, block: Block) {
        let Some((building, parent, height)) = self.building else {
            return;
        };
        let header = &block.header;
        let expected = building == view
            && view == self.view
            && !self.timed_out
            && header.view == view
            && header.height == height
            && header.parent == parent
            && header.proposer == self.member
            && header.chain_id == *self.chain_id()
            && header.epoch == self.set.epoch
            && block.txs_root_matches();
        if !expected || self.unreleased.len() >= MAX_UNRELEASED {
            return;
        }
        let hash = block.hash();
        let record = &self.record;
        if !record.permits(view, Signing::Proposal(hash))
            || !record.permits(view, Signing::Notarize(hash))
        {
            return;
        }
        let Some((_, _, parent_view)) = self.parent_for(view) else {
            return;
        };
        let record = record
            .with(view, Signing::Proposal(hash))
            .with(view, Signing::Notarize(hash));
        let signature = self
            .keypair
            .sign_digest(&proposal_digest(self.domain(), view, &hash));
        let vote = self.signed_vote(view, height, hash, VoteKind::Notarize);
        let justification = self.justification(parent_view, parent, view);
        self.proposals.insert(
            view,
            ProposalSlot {
                header: block.header.clone(),
                hash,
                signature,
                verification: Verification::Valid,
            },
        );
        self.hold_block(block.clone());
        let proposal = Proposal {
            block,
            signature,
            justification,
        };
        let kept = Some(Box::new(proposal.block.clone()));
        self.persist_then_release(
            record,
            kept,
            vec![
                ConsensusMessage::Proposal(Box::new(proposal)),
                ConsensusMessage::Vote(vote),
            ],
        );
    }

    /// Whether `header`'s parent is justified for a proposal in `view` (R3, R4), and
    /// if so the parent's (hash, height).
    pub(super) fn justified_parent(&self, header: &BlockHeader) -> Option<(Hash, Height)> {
        let view = header.view;
        let parent = header.parent;
        let (parent_view, parent_height) = if parent == self.tip.hash {
            (self.tip.view, self.tip.height)
        } else {
            *self.certified.get(&parent)?
        };
        if parent_view >= view || header.height != parent_height.next() {
            return None;
        }
        let all_skipped_nullified = (parent_view.0 + 1..view.0)
            .all(|skipped| self.nullifications.contains_key(&View(skipped)));
        all_skipped_nullified.then_some((parent, parent_height))
    }

    pub(super) fn try_notarize(&mut self) {
        let view = self.view;
        if !self.signing() || self.timed_out {
            return;
        }
        let Some(slot) = self.proposals.get(&view) else {
            return;
        };
        let hash = slot.hash;
        if self.record.view == view && self.record.notarized == Some(hash) {
            return;
        }
        if !self.record.permits(view, Signing::Notarize(hash)) {
            return;
        }
        match slot.verification {
            Verification::Invalid | Verification::Asked => {}
            Verification::Valid => {
                if self.unreleased.len() >= MAX_UNRELEASED {
                    return;
                }
                let height = slot.header.height;
                let Some(block) = self.blocks.get(&hash).cloned() else {
                    return;
                };
                let record = self.record.with(view, Signing::Notarize(hash));
                let vote = self.signed_vote(view, height, hash, VoteKind::Notarize);
                self.persist_then_release(
                    record,
                    Some(Box::new(block)),
                    vec![ConsensusMessage::Vote(vote)],
                );
            }
            Verification::NotAsked => {
                let header = slot.header.clone();
                let Some((parent, parent_height)) = self.justified_parent(&header) else {
                    return;
                };
                let ancestors = match self.chain_to(parent, parent_height) {
                    Ok(ancestors) => ancestors,
                    Err(ChainGap::Missing(missing, height)) => {
                        self.want(missing, height);
                        return;
                    }
                    Err(ChainGap::Conflict) => return,
                };
                let Some(block) = self.blocks.get(&hash).cloned() else {
                    return;
                };
                if !self.within_pipeline(header.height) {
                    // E3: not before the block that may name the epoch's end is final.
                    return;
                }
                if self.must_seal(header.height) {
                    // E4: the engine checks a seal itself; the application never sees it.
                    let valid = ancestors
                        .last()
                        .is_some_and(|parent| self.is_seal_of(&block, parent));
                    if let Some(slot) = self.proposals.get_mut(&view) {
                        slot.verification = if valid {
                            Verification::Valid
                        } else {
                            Verification::Invalid
                        };
                    }
                    if valid {
                        self.try_notarize();
                    }
                    return;
                }
                if let Some(slot) = self.proposals.get_mut(&view) {
                    slot.verification = Verification::Asked;
                }
                self.out.push(Output::VerifyProposal {
                    view,
                    block,
                    ancestors,
                });
            }
        }
    }

    pub(super) fn on_verified(&mut self, view: View, block: Hash, valid: bool) {
        if let Some(slot) = self.proposals.get_mut(&view) {
            if slot.hash == block && slot.verification == Verification::Asked {
                slot.verification = if valid {
                    Verification::Valid
                } else {
                    Verification::Invalid
                };
            }
        }
    }
}
