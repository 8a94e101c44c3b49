//! Receipts and events: what executing a block said about each transaction and what
//! happened in it.
//!
//! Every transaction of a block gets exactly one [`Receipt`], in block order: applied,
//! with the events it caused, or rejected, with a reason (a rejected transaction changes
//! no balance, order or record). Work driven by the block's time (expiries, top-up
//! deadlines, settlement cut-offs) produces events that belong to no transaction.

use crate::amount::Amount;
use crate::clearing::{
    AssetNetting, CancelReason, ChangeReason, ConfirmationField, ConfirmationId, CycleId, OrderId,
    Pair, RemovalReason, RfqId, TopUpId, TopUpSubject, TradeId,
};
use crate::hash::{Hash, MerkleStep};
use crate::ids::{AssetId, MemberId, Nonce};
use crate::tx::{AllocationDirection, CustomerId};
use serde::{Deserialize, Serialize};

/// The outcome of one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TxOutcome {
    Applied,
    /// `code` is a stable machine-readable name; `reason` is for people.
    Rejected {
        code: String,
        reason: String,
    },
}

/// One transaction's receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Receipt {
    pub tx_id: Hash,
    pub member: MemberId,
    pub nonce: Nonce,
    /// [`crate::tx::TxBody::kind_name`].
    pub kind: String,
    pub outcome: TxOutcome,
    /// What the transaction caused, in order (empty when rejected).
    pub events: Vec<Event>,
}

impl Receipt {
    pub fn is_applied(&self) -> bool {
        self.outcome == TxOutcome::Applied
    }
}

/// One leaf of a block's receipts tree ([`receipts_root`]): the receipts in block order,
/// then the block-level events. The kind is part of the hashed bytes, so a receipt can
/// never pass for an event or the other way round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptLeaf {
    Receipt(Receipt),
    Event(Event),
}

impl ReceiptLeaf {
    pub fn hash(&self) -> Hash {
        Hash::tagged(
            crate::tags::SEISAN_RECEIPT_LEAF_V1,
            &[&crate::codec::encode(self)],
        )
    }
}

fn leaf_hashes(receipts: &[Receipt], events: &[Event]) -> Vec<Hash> {
    receipts
        .iter()
        .map(|receipt| ReceiptLeaf::Receipt(receipt.clone()).hash())
        .chain(
            events
                .iter()
                .map(|event| ReceiptLeaf::Event(event.clone()).hash()),
        )
        .collect()
}

/// The Merkle root a block header commits to: its transactions' receipts in order, then
/// its block-level events.
pub fn receipts_root(receipts: &[Receipt], events: &[Event]) -> Hash {
    Hash::merkle_root(
        crate::tags::SEISAN_BLOCK_RECEIPTS_V1,
        &leaf_hashes(receipts, events),
    )
}

/// The inclusion path of leaf `index` (receipts first, then events) to
/// [`receipts_root`].
pub fn receipt_path(receipts: &[Receipt], events: &[Event], index: usize) -> Vec<MerkleStep> {
    Hash::merkle_path(
        crate::tags::SEISAN_BLOCK_RECEIPTS_V1,
        &leaf_hashes(receipts, events),
        index,
    )
}

/// The receipts root that `leaf` with `path` proves; compare it with the header's.
pub fn receipts_root_of(leaf: &ReceiptLeaf, path: &[MerkleStep]) -> Hash {
    Hash::merkle_fold(crate::tags::SEISAN_BLOCK_RECEIPTS_V1, leaf.hash(), path)
}

/// Something that happened while executing a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Funds locked; the order is in the book (or takeable, for a quote).
    OrderLive {
        order: OrderId,
        member: MemberId,
    },
    /// The member's available balance did not cover the order; it waits for a top-up.
    OrderParked {
        order: OrderId,
        member: MemberId,
        top_up: TopUpId,
    },
    OrderFilled {
        order: OrderId,
        member: MemberId,
    },
    /// `released` is what went back from locked to the member's inventory.
    OrderCancelled {
        order: OrderId,
        member: MemberId,
        reason: CancelReason,
        released: Amount,
    },
    /// A fill; both legs settled in this transition.
    Fill {
        trade: TradeId,
        pair: Pair,
        buyer: MemberId,
        seller: MemberId,
        quantity: Amount,
        price: Amount,
        value: Amount,
    },
    TopUpRaised {
        top_up: TopUpId,
        member: MemberId,
        asset: AssetId,
        needed: Amount,
        shortfall: Amount,
        deadline_ms: u64,
        subject: TopUpSubject,
    },
    TopUpCured {
        top_up: TopUpId,
        member: MemberId,
        asset: AssetId,
    },
    TopUpExpired {
        top_up: TopUpId,
        member: MemberId,
        asset: AssetId,
        subject: TopUpSubject,
    },
    /// Money or coins came into the ledger (or out of it, for [`Event::Debited`]).
    Credited {
        member: MemberId,
        asset: AssetId,
        amount: Amount,
        reason: ChangeReason,
    },
    Debited {
        member: MemberId,
        asset: AssetId,
        amount: Amount,
        reason: ChangeReason,
    },
    Allocated {
        member: MemberId,
        asset: AssetId,
        customer: CustomerId,
        amount: Amount,
        direction: AllocationDirection,
    },
    QuoteRequested {
        rfq: RfqId,
        asker: MemberId,
        counterparties: Vec<MemberId>,
    },
    QuoteAnswered {
        rfq: RfqId,
        quote: OrderId,
        quoter: MemberId,
        price: Amount,
        valid_until_ms: u64,
    },
    ConfirmationReceived {
        confirmation: ConfirmationId,
        member: MemberId,
    },
    ConfirmationMatched {
        confirmation: ConfirmationId,
        cycle: CycleId,
    },
    /// Both parties are told which fields differ.
    ConfirmationMismatched {
        confirmation: ConfirmationId,
        trade_ref: String,
        #[schema(value_type = crate::schema::MemberPair)]
        parties: (MemberId, MemberId),
        fields: Vec<ConfirmationField>,
    },
    /// No partner by the cut-off.
    ConfirmationUnmatched {
        confirmation: ConfirmationId,
        trade_ref: String,
        member: MemberId,
        cycle: CycleId,
    },
    CycleClosed {
        cycle: CycleId,
        matched: u64,
        /// (member, asset) pairs that are short and got top-up requests.
        #[schema(value_type = Vec<crate::schema::MemberAsset>)]
        short: Vec<(MemberId, AssetId)>,
    },
    CycleMemberRemoved {
        cycle: CycleId,
        member: MemberId,
        reason: RemovalReason,
        confirmations_removed: u64,
    },
    CycleSettled {
        cycle: CycleId,
        matched: u64,
        netting: Vec<AssetNetting>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(nonce: u64, events: Vec<Event>) -> Receipt {
        Receipt {
            tx_id: Hash::tagged(b"tx", &[&nonce.to_le_bytes()]),
            member: MemberId(1),
            nonce: Nonce(nonce),
            kind: "place_order".into(),
            outcome: TxOutcome::Applied,
            events,
        }
    }

    #[test]
    fn every_receipt_and_event_is_provable_and_a_changed_one_is_not() {
        let receipts: Vec<Receipt> = (0..5)
            .map(|nonce| {
                receipt(
                    nonce,
                    vec![Event::OrderFilled {
                        order: OrderId(nonce),
                        member: MemberId(1),
                    }],
                )
            })
            .collect();
        let events = vec![Event::OrderFilled {
            order: OrderId(99),
            member: MemberId(2),
        }];
        let root = receipts_root(&receipts, &events);
        for (index, receipt) in receipts.iter().enumerate() {
            let path = receipt_path(&receipts, &events, index);
            let leaf = ReceiptLeaf::Receipt(receipt.clone());
            assert_eq!(receipts_root_of(&leaf, &path), root);
            let mut changed = receipt.clone();
            changed.nonce = Nonce(changed.nonce.0 + 100);
            assert_ne!(
                receipts_root_of(&ReceiptLeaf::Receipt(changed), &path),
                root
            );
        }
        let path = receipt_path(&receipts, &events, receipts.len());
        assert_eq!(
            receipts_root_of(&ReceiptLeaf::Event(events[0].clone()), &path),
            root
        );
        // Order matters, and an empty block still has a root distinct from any other.
        let mut swapped = receipts.clone();
        swapped.swap(0, 1);
        assert_ne!(receipts_root(&swapped, &events), root);
        assert_ne!(receipts_root(&[], &[]), root);
    }
}
