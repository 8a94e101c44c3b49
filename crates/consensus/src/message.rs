//! What validators send each other: proposals, votes and certificates.
//!
//! Every message is untrusted until the engine has checked it against genesis; this
//! module only fixes the wire shape and its bounds. Encoding goes through the canonical
//! codec ([`seisan_types::codec`]), so a message has exactly one byte form, and
//! [`ConsensusMessage::decode`] refuses anything larger than [`MAX_MESSAGE_BYTES`] or
//! outside the named bounds before the engine sees it.

use seisan_types::block::{MAX_BLOCK_BYTES, MAX_TXS_PER_BLOCK};
use seisan_types::codec::{self, CodecError};
use seisan_types::genesis::MAX_MEMBERS;
use seisan_types::tags;
use seisan_types::{
    Block, BlockHeader, ChainDomain, Epoch, Hash, Height, QuorumCertificate, Signature, SignedVote,
    View,
};
use serde::{Deserialize, Serialize};

/// Domain tag of the digest a leader signs to propose a block (re-exported from
/// [`seisan_types::tags`] so the consensus crate names the tag it uses).
pub const PROPOSAL_TAG: &[u8] = tags::SEISAN_CONSENSUS_PROPOSAL_V2;

/// The most certificates a proposal may carry to justify its parent (R3): the parent's
/// notarization plus one nullification per skipped view. A longer run of skipped views
/// cannot be justified in one proposal; such a view times out (documented limit).
pub const MAX_JUSTIFICATION_CERTIFICATES: usize = 256;

/// The most messages signed by its recipient a status carries (R14): one view's
/// proposal, notarize, finalize and nullify.
pub const MAX_RECIPIENT_SIGNED: usize = 4;

/// The largest encoded consensus message: a full block plus its justification.
pub const MAX_MESSAGE_BYTES: usize = MAX_BLOCK_BYTES + (4 << 20);

const _: () = assert!(MAX_MESSAGE_BYTES <= codec::MAX_DECODE_BYTES);

/// The digest a leader signs for proposing `block` in `view` on the chain of `domain`
/// (its chain id and genesis hash).
pub fn proposal_digest(domain: &ChainDomain, view: View, block: &Hash) -> Hash {
    Hash::tagged(
        PROPOSAL_TAG,
        &[&codec::encode(&(
            &domain.chain_id,
            &domain.genesis,
            view,
            block,
        ))],
    )
}

/// A leader's proposal (R3): the block, the leader's signature over
/// [`proposal_digest`] (chain id, view, block hash), and the certificates that justify
/// the parent (its notarization or finalization and a nullification for every view
/// between the parent's view and this one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The proposed block.
    pub block: Block,
    /// The leader's signature over [`proposal_digest`].
    pub signature: Signature,
    /// The certificates that justify the parent.
    pub justification: Vec<QuorumCertificate>,
}

impl Proposal {
    /// The header and signature alone, which is all evidence needs.
    pub fn signed_header(&self) -> SignedProposalHeader {
        SignedProposalHeader {
            header: self.block.header.clone(),
            signature: self.signature,
        }
    }
}

/// A proposal without its transactions: enough to check the leader's signature
/// (the digest covers the header hash), so two of them prove an equivocating leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedProposalHeader {
    /// The proposed block's header.
    pub header: BlockHeader,
    /// The leader's signature over [`SignedProposalHeader::digest`].
    pub signature: Signature,
}

impl SignedProposalHeader {
    /// What the leader signed: [`proposal_digest`] of the header's hash, under the
    /// header's chain id and the given genesis hash.
    pub fn digest(&self, genesis: &Hash) -> Hash {
        let domain = ChainDomain {
            chain_id: self.header.chain_id.clone(),
            genesis: *genesis,
        };
        proposal_digest(&domain, self.header.view, &self.header.hash())
    }
}

/// Everything one validator's engine sends another's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsensusMessage {
    /// A leader's proposal.
    Proposal(Box<Proposal>),
    /// A validator's vote.
    Vote(SignedVote),
    /// A quorum certificate.
    Certificate(QuorumCertificate),
    /// Where the sender stands and what got it there (R13). Sent only directly to
    /// one peer, never gossiped: its sender is the authenticated connection's peer.
    Status(Box<PeerStatus>),
}

/// A validator's position (R13): its view and finalized height, the certificates
/// that justify them (its tip's finalization, then those of the views above the tip,
/// newest first) and its nullify vote for its current view, if it signed one. The
/// view and height are claims used only to decide whether to help the sender; the
/// certificates and the vote are verified like any others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// The sender's epoch (E6); its view and certificates belong to it.
    pub epoch: Epoch,
    /// The sender's view.
    pub view: View,
    /// The sender's finalized height.
    pub tip_height: Height,
    /// Its tip's finalization, then those of the views above, newest first.
    pub certificates: Vec<QuorumCertificate>,
    /// Its nullify vote for its current view, if it signed one.
    pub nullify: Option<SignedVote>,
    /// What the *recipient* signed in the highest view above the sender's finalized
    /// tip in which the sender holds anything the recipient signed (R14): a validator
    /// restored from a stale record learns from these what it may have signed since.
    /// Signed by the recipient, so it checks them itself; at most
    /// [`MAX_RECIPIENT_SIGNED`].
    pub recipient_signed: Vec<SignedByRecipient>,
}

/// A message a status's recipient signed, as the sender holds it (R14).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignedByRecipient {
    /// One of its votes.
    Vote(SignedVote),
    /// One of its proposals (the header and signature are enough to check it).
    Proposal(SignedProposalHeader),
}

/// Why a message was refused before it reached the engine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // each variant's #[error] message is its documentation
pub enum MessageError {
    #[error("message does not decode: {source}")]
    Codec {
        #[from]
        source: CodecError,
    },
    #[error("proposal carries {count} transactions; the limit is {MAX_TXS_PER_BLOCK}")]
    TooManyTransactions { count: usize },
    #[error(
        "proposal carries {count} certificates; the limit is {MAX_JUSTIFICATION_CERTIFICATES}"
    )]
    TooManyCertificates { count: usize },
    #[error(
        "status carries {count} messages of its recipient; the limit is {MAX_RECIPIENT_SIGNED}"
    )]
    TooManyRecipientSigned { count: usize },
    #[error("certificate carries {count} signatures; the limit is {MAX_MEMBERS}")]
    TooManySignatures { count: usize },
}

/// Checks the size bounds of a certificate that did not come through [`ConsensusMessage::decode`].
pub fn check_certificate_bounds(certificate: &QuorumCertificate) -> Result<(), MessageError> {
    if certificate.signatures.len() > MAX_MEMBERS {
        return Err(MessageError::TooManySignatures {
            count: certificate.signatures.len(),
        });
    }
    Ok(())
}

impl ConsensusMessage {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a message from a peer and checks its bounds.
    pub fn decode(bytes: &[u8]) -> Result<ConsensusMessage, MessageError> {
        let message: ConsensusMessage = codec::decode_with_limit(bytes, MAX_MESSAGE_BYTES)?;
        message.check_bounds()?;
        Ok(message)
    }

    /// The named bounds every message must meet (the engine re-checks them, since a
    /// message may reach it without passing through [`ConsensusMessage::decode`]).
    pub fn check_bounds(&self) -> Result<(), MessageError> {
        match self {
            ConsensusMessage::Proposal(proposal) => {
                if proposal.block.txs.len() > MAX_TXS_PER_BLOCK {
                    return Err(MessageError::TooManyTransactions {
                        count: proposal.block.txs.len(),
                    });
                }
                if proposal.justification.len() > MAX_JUSTIFICATION_CERTIFICATES {
                    return Err(MessageError::TooManyCertificates {
                        count: proposal.justification.len(),
                    });
                }
                proposal
                    .justification
                    .iter()
                    .try_for_each(check_certificate_bounds)
            }
            ConsensusMessage::Vote(_) => Ok(()),
            ConsensusMessage::Certificate(certificate) => check_certificate_bounds(certificate),
            ConsensusMessage::Status(status) => {
                if status.recipient_signed.len() > MAX_RECIPIENT_SIGNED {
                    return Err(MessageError::TooManyRecipientSigned {
                        count: status.recipient_signed.len(),
                    });
                }
                if status.certificates.len() > MAX_JUSTIFICATION_CERTIFICATES {
                    return Err(MessageError::TooManyCertificates {
                        count: status.certificates.len(),
                    });
                }
                status
                    .certificates
                    .iter()
                    .try_for_each(check_certificate_bounds)
            }
        }
    }

    /// The view the message is about.
    pub fn view(&self) -> View {
        match self {
            ConsensusMessage::Proposal(proposal) => proposal.block.header.view,
            ConsensusMessage::Vote(vote) => vote.vote.view,
            ConsensusMessage::Certificate(certificate) => certificate.vote.view,
            ConsensusMessage::Status(status) => status.view,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seisan_types::{ChainId, MemberId, Vote, VoteKind};

    fn vote() -> SignedVote {
        SignedVote {
            vote: Vote {
                chain_id: ChainId("sim-dev".into()),
                epoch: seisan_types::Epoch(0),
                view: View(7),
                height: Height(3),
                block: Hash([4; 32]),
                kind: VoteKind::Notarize,
            },
            member: MemberId(1),
            signature: Signature([9; 64]),
        }
    }

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let message = ConsensusMessage::Vote(vote());
        let bytes = message.encode();
        assert_eq!(ConsensusMessage::decode(&bytes).unwrap(), message);
        assert!(ConsensusMessage::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(ConsensusMessage::decode(&longer).is_err());
        assert!(ConsensusMessage::decode(&[0xff; 3]).is_err());
    }

    #[test]
    fn proposal_digest_binds_chain_genesis_view_and_block() {
        let chain = ChainDomain {
            chain_id: ChainId("sim-dev".into()),
            genesis: Hash([5; 32]),
        };
        let base = proposal_digest(&chain, View(1), &Hash([1; 32]));
        assert_ne!(base, proposal_digest(&chain, View(2), &Hash([1; 32])));
        assert_ne!(base, proposal_digest(&chain, View(1), &Hash([2; 32])));
        let other_chain = ChainDomain {
            chain_id: ChainId("other-dev".into()),
            ..chain.clone()
        };
        assert_ne!(base, proposal_digest(&other_chain, View(1), &Hash([1; 32])));
        let other_genesis = ChainDomain {
            genesis: Hash([6; 32]),
            ..chain.clone()
        };
        assert_ne!(
            base,
            proposal_digest(&other_genesis, View(1), &Hash([1; 32]))
        );
    }

    #[test]
    fn oversized_certificates_are_refused() {
        let certificate = QuorumCertificate {
            vote: vote().vote,
            signatures: vec![(MemberId(0), Signature([0; 64])); MAX_MEMBERS + 1],
        };
        let message = ConsensusMessage::Certificate(certificate);
        assert!(matches!(
            ConsensusMessage::decode(&message.encode()),
            Err(MessageError::TooManySignatures { .. })
        ));
    }
}
