//! Blocks, votes, quorum certificates and evidence.
//!
//! A block's identity is the hash of its header; the header commits to the parent, the
//! transactions (a Merkle root of their ids) and the post-state root. A quorum
//! certificate is at least q distinct members' signatures over one vote, so a finalized
//! header with its certificate is a signed statement of every balance.

use crate::bytes::Signature;
use crate::codec;
use crate::hash::Hash;
use crate::ids::{ChainId, Epoch, Height, MemberId, View};
use crate::tags;
use crate::tx::SignedTransaction;
use serde::{Deserialize, Serialize};

/// The most transactions one block may carry.
pub const MAX_TXS_PER_BLOCK: usize = 8192;
/// The largest encoded block.
pub const MAX_BLOCK_BYTES: usize = 12 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BlockHeader {
    pub chain_id: ChainId,
    /// The epoch whose validators vote on this block (consensus rule E1).
    pub epoch: Epoch,
    pub height: Height,
    pub view: View,
    /// Hash of the parent block's header; [`Hash::ZERO`] for height 1's parent (genesis).
    pub parent: Hash,
    /// Milliseconds since the Unix epoch, chosen by the proposer; the only clock the
    /// contracts see.
    pub timestamp_ms: u64,
    pub proposer: MemberId,
    /// Merkle root of the transaction ids, in block order.
    pub txs_root: Hash,
    /// Root of the authenticated state after executing this block.
    pub state_root: Hash,
    /// Merkle root of what executing this block said: every transaction's receipt in
    /// block order, then every block-level event ([`crate::receipt::receipts_root`]).
    /// Derived by execution, so re-execution checks it; a seal carries no receipts.
    pub receipts_root: Hash,
    /// `Some(L)` when the state after this block has a validator-set change scheduled
    /// to take effect at height `L + 1`: `L` is the last height of this epoch
    /// (consensus rule E2). Derived from the state, so re-execution checks it.
    pub epoch_end: Option<Height>,
    /// On the last block of an epoch (the one after which the membership's epoch
    /// changes): the hash of the [`crate::ValidatorSet`] that votes on the next block.
    /// `None` on every other block. Derived from the state, so re-execution checks it;
    /// it is how a client that holds only the genesis file follows the validator set
    /// from one epoch to the next (each link certified by the epoch it ends).
    pub next_validators: Option<Hash>,
}

impl BlockHeader {
    pub fn hash(&self) -> Hash {
        Hash::tagged(tags::SEISAN_BLOCK_HEADER_V1, &[&codec::encode(self)])
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: Vec<SignedTransaction>,
}

impl Block {
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The Merkle root of the given transactions' ids.
    pub fn compute_txs_root(txs: &[SignedTransaction]) -> Hash {
        Block::txs_root_of(&txs.iter().map(SignedTransaction::id).collect::<Vec<_>>())
    }

    /// The Merkle root of transaction ids already computed ([`Block::tx_ids`]).
    pub fn txs_root_of(ids: &[Hash]) -> Hash {
        Hash::merkle_root(tags::SEISAN_BLOCK_TXS_V1, ids)
    }

    /// Each transaction's id, in block order: what a node hashes once per block and
    /// hands to the root check, execution and the transaction index.
    pub fn tx_ids(&self) -> Vec<Hash> {
        self.txs.iter().map(SignedTransaction::id).collect()
    }

    /// Whether the header's transactions root matches the body.
    pub fn txs_root_matches(&self) -> bool {
        Block::compute_txs_root(&self.txs) == self.header.txs_root
    }

    pub fn decode(bytes: &[u8]) -> Result<Block, codec::CodecError> {
        codec::decode_with_limit(bytes, MAX_BLOCK_BYTES)
    }
}

/// The three votes of Simplex consensus.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum VoteKind {
    /// "This block is a valid proposal for this view."
    Notarize,
    /// "I saw this block notarized before my view timer fired."
    Finalize,
    /// "This view produced nothing I can notarize in time." (block is [`Hash::ZERO`]).
    Nullify,
}

/// What a validator signs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Vote {
    pub chain_id: ChainId,
    /// The epoch whose validator set the signer votes in (consensus rule E1); views
    /// are numbered within an epoch.
    pub epoch: Epoch,
    pub view: View,
    /// The voted block's height (zero for a nullify vote).
    pub height: Height,
    /// The voted block's header hash ([`Hash::ZERO`] for a nullify vote).
    pub block: Hash,
    pub kind: VoteKind,
}

impl Vote {
    /// The digest a validator signs: the vote bound to the hash of the chain's genesis,
    /// so a certificate of one chain never verifies against another genesis.
    pub fn signing_digest(&self, genesis: &Hash) -> Hash {
        Hash::tagged(
            tags::SEISAN_CONSENSUS_VOTE_V2,
            &[&genesis.0, &codec::encode(self)],
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedVote {
    pub vote: Vote,
    pub member: MemberId,
    pub signature: Signature,
}

/// At least q distinct members' signatures over one [`Vote`]. Signatures are sorted by
/// member id so a certificate has one encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuorumCertificate {
    pub vote: Vote,
    #[schema(value_type = Vec<crate::schema::MemberSignature>)]
    pub signatures: Vec<(MemberId, Signature)>,
}

/// Proof that a member signed two conflicting votes: same view and kind, different
/// blocks. Both signed votes are kept so anyone can check it against genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Evidence {
    pub first: SignedVote,
    pub second: SignedVote,
}

impl Evidence {
    /// The member the evidence accuses.
    pub fn member(&self) -> MemberId {
        self.first.member
    }

    /// Whether the two votes conflict (the signatures are checked by the crypto crate).
    pub fn is_conflict(&self) -> bool {
        let (a, b) = (&self.first, &self.second);
        a.member == b.member
            && a.vote.chain_id == b.vote.chain_id
            && a.vote.epoch == b.vote.epoch
            && a.vote.view == b.vote.view
            && a.vote.kind == b.vote.kind
            && a.vote.block != b.vote.block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BlockHeader {
        BlockHeader {
            chain_id: ChainId("dev".into()),
            epoch: crate::ids::Epoch(0),
            height: Height(1),
            view: View(1),
            parent: Hash::ZERO,
            timestamp_ms: 1,
            proposer: MemberId(0),
            txs_root: Block::compute_txs_root(&[]),
            state_root: Hash::ZERO,
            receipts_root: crate::receipt::receipts_root(&[], &[]),
            epoch_end: None,
            next_validators: None,
        }
    }

    #[test]
    fn header_hash_changes_with_every_field() {
        let base = header();
        let mut other = base.clone();
        other.state_root = Hash([1; 32]);
        assert_ne!(base.hash(), other.hash());
        let mut other = base.clone();
        other.receipts_root = Hash([2; 32]);
        assert_ne!(base.hash(), other.hash());
        let mut other = base.clone();
        other.view = View(2);
        assert_ne!(base.hash(), other.hash());
    }

    #[test]
    fn block_round_trips_and_checks_txs_root() {
        let block = Block {
            header: header(),
            txs: vec![],
        };
        assert!(block.txs_root_matches());
        let bytes = codec::encode(&block);
        assert_eq!(Block::decode(&bytes).unwrap(), block);
        let mut bad = block.clone();
        bad.header.txs_root = Hash::ZERO;
        assert!(!bad.txs_root_matches());
    }

    #[test]
    fn certificate_round_trips() {
        let certificate = QuorumCertificate {
            vote: Vote {
                chain_id: ChainId("dev".into()),
                epoch: crate::ids::Epoch(0),
                view: View(3),
                height: Height(2),
                block: Hash([9; 32]),
                kind: VoteKind::Finalize,
            },
            signatures: vec![
                (MemberId(0), Signature([1; 64])),
                (MemberId(2), Signature([2; 64])),
            ],
        };
        let bytes = codec::encode(&certificate);
        assert_eq!(
            codec::decode::<QuorumCertificate>(&bytes).unwrap(),
            certificate
        );
    }
}
