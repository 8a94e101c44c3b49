//! The simulated application: deterministic, no transactions. A block's post-state
//! root is a hash of its parent's root and its header fields, so re-execution (R4)
//! catches any block whose `state_root` was not derived from its parent, and the
//! simulator can recheck every finalized chain from genesis.

use seisan_consensus::FinalizedBlock;
use seisan_types::{Block, BlockHeader, ChainId, Epoch, Hash, Height, MemberId, View};

/// Domain tag of the simulated state root.
pub const SEISAN_SIM_STATE_V1: &[u8] = b"SEISAN_SIM_STATE_V1";

/// The state root after `header`'s block, given its parent's root.
pub fn state_root(parent_root: &Hash, header: &BlockHeader) -> Hash {
    Hash::tagged(
        SEISAN_SIM_STATE_V1,
        &[
            &parent_root.0,
            &header.parent.0,
            &header.height.0.to_le_bytes(),
            &header.view.0.to_le_bytes(),
            &header.timestamp_ms.to_le_bytes(),
            &header.proposer.0.to_le_bytes(),
        ],
    )
}

/// The state root the next block builds on: the last ancestor's, else the finalized
/// tip's, else genesis (zero).
pub fn parent_root(ancestors: &[Block], finalized: &[FinalizedBlock]) -> Hash {
    ancestors
        .last()
        .map(|block| block.header.state_root)
        .or_else(|| finalized.last().map(|tip| tip.block.header.state_root))
        .unwrap_or(Hash::ZERO)
}

/// The hash the next block's parent must be: the last ancestor, else the tip.
pub fn parent_hash(ancestors: &[Block], finalized: &[FinalizedBlock]) -> Hash {
    ancestors
        .last()
        .map(Block::hash)
        .or_else(|| finalized.last().map(|tip| tip.block.hash()))
        .unwrap_or(Hash::ZERO)
}

/// Builds a block (empty, so its transactions root is the empty root) in `slot`: the
/// epoch, view and height it is proposed at.
pub fn build(
    chain_id: &ChainId,
    slot: (Epoch, View, Height),
    parent: Hash,
    parent_root: &Hash,
    proposer: MemberId,
    timestamp_ms: u64,
) -> Block {
    let (epoch, view, height) = slot;
    let mut header = BlockHeader {
        chain_id: chain_id.clone(),
        epoch,
        height,
        view,
        parent,
        timestamp_ms,
        proposer,
        txs_root: Block::compute_txs_root(&[]),
        state_root: Hash::ZERO,
        epoch_end: None,
    };
    header.state_root = state_root(parent_root, &header);
    Block {
        header,
        txs: vec![],
    }
}

/// Re-executes `block` on its parent: the parent link, the body and the state root
/// must all match.
pub fn verify(block: &Block, parent: &Hash, parent_root: &Hash) -> bool {
    block.header.parent == *parent
        && block.txs_root_matches()
        && block.header.state_root == state_root(parent_root, &block.header)
}
