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
use crate::hash::Hash;
use crate::ids::{AssetId, MemberId, Nonce};
use crate::tx::{AllocationDirection, CustomerId};
use serde::{Deserialize, Serialize};

/// The outcome of one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// Something that happened while executing a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
