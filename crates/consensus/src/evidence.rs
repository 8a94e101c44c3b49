//! Evidence of misbehaviour (R11): two messages one validator signed that no honest
//! validator would ever sign together. Each kind carries both signed messages, so anyone
//! holding genesis can check it with [`ConsensusEvidence::verify`].

use crate::message::SignedProposalHeader;
use seisan_crypto::{verify_digest, verify_evidence_in, verify_vote_in};
use seisan_types::{
    ChainDomain, Evidence, Genesis, MemberId, SignedVote, ValidatorSet, View, VoteKind,
};
use serde::{Deserialize, Serialize};

// Evidence is rare and short-lived (reported once, then stored encoded), so the size
// of its largest variant (two signed headers) costs nothing worth a box.
/// Proof that a validator signed what no honest validator signs (R11).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ConsensusEvidence {
    /// Two votes of one kind in one view for different blocks.
    ConflictingVotes(Evidence),
    /// A finalize and a nullify in one view: the validator claimed both that it saw the
    /// view's block notarized in time and that the view timed out (R5, R6).
    FinalizeAndNullify {
        /// The finalize vote.
        finalize: SignedVote,
        /// The nullify vote of the same validator and view.
        nullify: SignedVote,
    },
    /// Two different proposals by one leader in one view. Boxed: two headers would make
    /// every evidence (and every engine output) as large as they are.
    ConflictingProposals {
        /// One signed proposal header.
        first: Box<SignedProposalHeader>,
        /// Another, for the same view, by the same leader.
        second: Box<SignedProposalHeader>,
    },
}

/// Which rule a piece of evidence is about; the engine reports each (view, member,
/// kind) at most once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EvidenceKind {
    /// Conflicting notarize votes.
    Notarize,
    /// Conflicting finalize votes.
    Finalize,
    /// Conflicting nullify votes.
    Nullify,
    /// A finalize and a nullify in one view.
    FinalizeAndNullify,
    /// Conflicting proposals.
    Proposal,
}

impl EvidenceKind {
    /// The kind of conflicting votes of `kind`.
    pub fn of_vote(kind: VoteKind) -> EvidenceKind {
        match kind {
            VoteKind::Notarize => EvidenceKind::Notarize,
            VoteKind::Finalize => EvidenceKind::Finalize,
            VoteKind::Nullify => EvidenceKind::Nullify,
        }
    }
}

impl ConsensusEvidence {
    /// The accused validator.
    pub fn member(&self) -> MemberId {
        match self {
            ConsensusEvidence::ConflictingVotes(evidence) => evidence.member(),
            ConsensusEvidence::FinalizeAndNullify { finalize, .. } => finalize.member,
            ConsensusEvidence::ConflictingProposals { first, .. } => first.header.proposer,
        }
    }

    /// The view the misbehaviour happened in.
    pub fn view(&self) -> View {
        match self {
            ConsensusEvidence::ConflictingVotes(evidence) => evidence.first.vote.view,
            ConsensusEvidence::FinalizeAndNullify { finalize, .. } => finalize.vote.view,
            ConsensusEvidence::ConflictingProposals { first, .. } => first.header.view,
        }
    }

    /// The rule it is about.
    pub fn kind(&self) -> EvidenceKind {
        match self {
            ConsensusEvidence::ConflictingVotes(evidence) => {
                EvidenceKind::of_vote(evidence.first.vote.kind)
            }
            ConsensusEvidence::FinalizeAndNullify { .. } => EvidenceKind::FinalizeAndNullify,
            ConsensusEvidence::ConflictingProposals { .. } => EvidenceKind::Proposal,
        }
    }

    /// [`ConsensusEvidence::verify_in`] against genesis's validators (epoch 0).
    pub fn verify(&self, genesis: &Genesis) -> bool {
        self.verify_in(&genesis.domain(), &ValidatorSet::genesis(genesis))
    }

    /// Whether the evidence proves misbehaviour: both messages validly signed by the
    /// same validator of `set`'s epoch, on this chain, in that epoch, and in conflict.
    pub fn verify_in(&self, domain: &ChainDomain, set: &ValidatorSet) -> bool {
        match self {
            ConsensusEvidence::ConflictingVotes(evidence) => {
                verify_evidence_in(domain, set, evidence)
            }
            ConsensusEvidence::FinalizeAndNullify { finalize, nullify } => {
                finalize.member == nullify.member
                    && finalize.vote.kind == VoteKind::Finalize
                    && nullify.vote.kind == VoteKind::Nullify
                    && finalize.vote.view == nullify.vote.view
                    && finalize.vote.epoch == nullify.vote.epoch
                    && verify_vote_in(domain, set, finalize).is_ok()
                    && verify_vote_in(domain, set, nullify).is_ok()
            }
            ConsensusEvidence::ConflictingProposals { first, second } => {
                let (a, b) = (&first.header, &second.header);
                let Some(leader_key) = set.key_of(a.proposer) else {
                    return false;
                };
                a.proposer == b.proposer
                    && a.view == b.view
                    && a.epoch == set.epoch
                    && b.epoch == set.epoch
                    && a.chain_id == domain.chain_id
                    && b.chain_id == domain.chain_id
                    && a.hash() != b.hash()
                    && verify_digest(
                        &leader_key,
                        &first.digest(&domain.genesis),
                        &first.signature,
                    )
                    .is_ok()
                    && verify_digest(
                        &leader_key,
                        &second.digest(&domain.genesis),
                        &second.signature,
                    )
                    .is_ok()
            }
        }
    }
}
