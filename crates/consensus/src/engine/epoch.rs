//! Epochs: E1 (one validator set per engine; messages of other epochs never count), E2
//! (the epoch's last height is learned from a final block's header), E3 (the pipeline
//! bound that makes every honest voter know that height in time), E4 (seals above the
//! last height, built and checked here, never by the application), E5 (the handover:
//! output the last block with its seals, then [`Output::EpochEnded`]) and E6 (catching
//! up from a peer in a later epoch by fetching the finalized run above the tip).

use super::{Engine, Output};
use crate::fetch::FetchRequest;
use seisan_types::{Block, BlockHeader, Epoch, Hash, Height, View, ACTIVATION_DELAY_BLOCKS};

impl Engine {
    /// E3: whether this node may propose or notarize a block at `height`.
    pub(super) fn within_pipeline(&self, height: Height) -> bool {
        height.0 <= self.tip.height.0.saturating_add(ACTIVATION_DELAY_BLOCKS)
    }

    /// E4: whether a block at `height` must be a seal.
    pub(super) fn must_seal(&self, height: Height) -> bool {
        self.epoch_end.is_some_and(|last| height > last)
    }

    /// E4: the seal a leader proposes on `parent` in `view`: no transactions, the
    /// parent's state root, time and announced end, and the empty receipts root, so it
    /// changes nothing.
    pub(super) fn seal_on(&self, parent: &Block, view: View) -> Block {
        let header = BlockHeader {
            chain_id: self.chain_id().clone(),
            epoch: self.set.epoch,
            height: parent.header.height.next(),
            view,
            parent: parent.hash(),
            timestamp_ms: parent.header.timestamp_ms,
            proposer: self.member,
            txs_root: Block::compute_txs_root(&[]),
            state_root: parent.header.state_root,
            // A seal executes nothing, so it has no receipts and no events.
            receipts_root: seisan_types::receipt::receipts_root(&[], &[]),
            epoch_end: parent.header.epoch_end,
            next_validators: None,
        };
        Block {
            header,
            txs: Vec::new(),
        }
    }

    /// E4: whether `block` is exactly the seal of its parent (whoever proposed it).
    pub(super) fn is_seal_of(&self, block: &Block, parent: &Block) -> bool {
        let expected = self.seal_on(parent, block.header.view);
        block.txs.is_empty()
            && BlockHeader {
                proposer: block.header.proposer,
                ..expected.header
            } == block.header
    }

    /// E2: a block just became final; if its header names this epoch's last height,
    /// remember it. The first final block to name it decides (every later one in the
    /// epoch names the same height, since it is derived from the same final state).
    pub(super) fn learn_epoch_end(&mut self, header: &BlockHeader) {
        if self.epoch_end.is_none() {
            if let Some(last) = header.epoch_end {
                // A change scheduled in this block takes effect after it, never at or
                // below it; a header that says otherwise was re-executed by a quorum,
                // so it is a bug, not a peer's lie.
                assert!(last >= header.height, "epoch end {last} below {header:?}");
                self.epoch_end = Some(last);
            }
        }
    }

    /// E6: a peer said it is in `epoch` with finalized height `tip_height`. A later
    /// epoch means this node missed a handover: it asks for the finalized run above
    /// its tip (its own set verifies the certificates up to its epoch's end, E5 then
    /// hands over, and the next engine goes on).
    pub(super) fn note_peer_epoch(&mut self, epoch: Epoch, tip_height: Height) {
        if epoch <= self.set.epoch || tip_height <= self.tip.height {
            return;
        }
        let known = self.later_epoch.map_or(Height(0), |(height, _)| height);
        if tip_height > known {
            let asked_ms = self.later_epoch.map_or(0, |(_, asked)| asked);
            self.later_epoch = Some((tip_height, asked_ms));
        }
    }

    /// E6: ask again for the finalized run above the tip while a later epoch is known
    /// and not reached, at most once per `fetch_retry_ms` (a fetched run that made
    /// progress asks again at once, as R12 does).
    pub(super) fn fetch_from_later_epoch(&mut self) {
        let Some((height, asked_ms)) = self.later_epoch else {
            return;
        };
        if height <= self.tip.height {
            self.later_epoch = None;
            return;
        }
        let due =
            asked_ms == 0 || self.now_ms >= asked_ms.saturating_add(self.timeouts.fetch_retry_ms);
        if !due {
            return;
        }
        self.later_epoch = Some((height, self.now_ms.max(1)));
        self.out.push(Output::Fetch(FetchRequest {
            from_height: self.tip.height.next(),
            target: Hash::ZERO,
            target_height: height,
        }));
    }

    /// E6: a fetched run made progress; the next one is asked at once.
    pub(super) fn hurry_later_epoch_fetch(&mut self) {
        if let Some((height, _)) = self.later_epoch {
            self.later_epoch = Some((height, 0));
        }
    }
}
