//! Clearing records: the intents members sign (orders, quote requests and answers,
//! trade confirmations) and the records the contracts keep in state for them (orders,
//! trades, top-up requests, confirmations, settlement cycles, balances, reports).
//!
//! These are plain data. Their meaning, and every rule about when one may change into
//! another, lives in the `seisan-contracts` crate. They are here, at the bottom of the
//! dependency graph, so the node, the HTTP API and the CLI can decode and print them
//! without depending on the contracts.
//!
//! Prices are integers: quote-asset minor units per ONE WHOLE unit of the base asset
//! (an ETH/JPY price of 300000 means 300000 yen per 1 ETH, whatever ETH's scale). The
//! value of a quantity at a price is `floor(quantity_minor * price / 10^base_scale)`
//! quote minor units; see [`trade_value`].

use crate::amount::Amount;
use crate::ids::{AssetId, Height, MemberId};
use crate::tx::CustomerId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest trade reference of a confirmation, in bytes.
pub const MAX_TRADE_REF_BYTES: usize = 64;
/// The most counterparties one request for quote may name.
pub const MAX_RFQ_COUNTERPARTIES: usize = 16;

macro_rules! sequence_id {
    ($(#[doc = $doc:expr])* $name:ident) => {
        $(#[doc = $doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        crate::schema::id_schema!($name, u64, 0, $($doc),*);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

sequence_id!(
    /// An order (limit order, firm quote or quote acceptance), numbered from 1 in the
    /// order the chain accepted them.
    OrderId
);
sequence_id!(
    /// A fill, numbered from 1.
    TradeId
);
sequence_id!(
    /// A top-up request (the patent's additional trust request), numbered from 1.
    TopUpId
);
sequence_id!(
    /// A request for quote, numbered from 1.
    RfqId
);
sequence_id!(
    /// A bilateral confirmation record (one trade reference between two members).
    ConfirmationId
);
sequence_id!(
    /// A settlement cycle; cycle 1 opens at genesis.
    CycleId
);

/// A trading pair: the base asset is bought and sold, the quote asset pays.
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
pub struct Pair {
    pub base: AssetId,
    pub quote: AssetId,
}

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
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    /// Rests in the book until filled, cancelled or expired.
    GoodTillCancel,
    /// Matches what it can when it goes live; the rest is cancelled.
    ImmediateOrCancel,
}

/// The value in quote minor units of `quantity` base minor units at `price` (quote minor
/// units per whole base unit), rounded down: `floor(quantity * price / 10^base_scale)`.
/// `None` if the product overflows.
///
/// This is what a buy order locks, what one confirmed trade is worth, and what an
/// order's first fill costs. Later fills of the same buy order carry the fraction of a
/// minor unit the earlier ones were not charged, so that the order pays the exact value
/// of all its fills rounded down (`seisan_contracts::orders::fill_value`); the seller
/// of a fill always receives exactly what the buyer pays for it.
pub fn trade_value(quantity: Amount, price: Amount, base_scale: u32) -> Option<Amount> {
    let product = quantity.0.checked_mul(price.0)?;
    let divisor = 10u128.checked_pow(base_scale)?;
    Some(Amount(product / divisor))
}

/// A signed limit order (the patent's contract request, S230).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderRequest {
    pub pair: Pair,
    pub side: Side,
    /// Base-asset minor units.
    pub quantity: Amount,
    /// Quote minor units per whole base unit.
    pub limit_price: Amount,
    pub time_in_force: TimeInForce,
    /// Block time (ms since the epoch) at which the order lapses, if any.
    pub expires_at_ms: Option<u64>,
}

/// What an order record stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// A limit order in the public book.
    Limit,
    /// A firm quote answering a request for quote; never in the public book, only the
    /// asker can take it.
    Quote { rfq: RfqId },
    /// The asker's acceptance of a quote; it fills against that quote only.
    Accept { quote: OrderId },
}

/// Why an order stopped before it was filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The member cancelled it.
    ByMember,
    /// An immediate-or-cancel order's unfilled rest.
    ImmediateOrCancel,
    /// It would have matched an order of the same member; its rest was cancelled.
    SelfMatch,
    /// Its expiry time passed.
    Expired,
    /// It was awaiting funds and its top-up request reached the deadline.
    TopUpExpired { top_up: TopUpId },
    /// An acceptance whose quote was no longer live when the acceptance went live.
    QuoteUnavailable,
    /// A quote withdrawn because the asker accepted another quote of the request.
    RequestFilled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Parked: the member's available balance did not cover it; it goes live by itself
    /// when a credit covers the top-up request.
    AwaitingFunds {
        top_up: TopUpId,
    },
    /// Funds locked; in the book (limit), takeable (quote).
    Live,
    Filled,
    Cancelled {
        reason: CancelReason,
    },
}

impl OrderStatus {
    /// Whether the order can still change (live or awaiting funds).
    pub fn is_open(&self) -> bool {
        matches!(self, OrderStatus::Live | OrderStatus::AwaitingFunds { .. })
    }
}

/// An order as the contracts keep it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Order {
    pub id: OrderId,
    pub member: MemberId,
    pub pair: Pair,
    pub side: Side,
    /// Original quantity, base minor units.
    pub quantity: Amount,
    /// Quantity not yet filled.
    pub remaining: Amount,
    pub limit_price: Amount,
    pub time_in_force: TimeInForce,
    pub expires_at_ms: Option<u64>,
    pub kind: OrderKind,
    pub status: OrderStatus,
    /// What the order holds locked right now: quote minor units for a buy, base minor
    /// units for a sell. Zero unless live.
    pub locked: Amount,
    /// Position in time priority, given when the order went live (0 before).
    pub book_sequence: u64,
    pub placed_height: Height,
    pub placed_at_ms: u64,
}

impl Order {
    /// The asset this order locks: the quote asset for a buy, the base asset for a sell.
    pub fn locked_asset(&self) -> AssetId {
        match self.side {
            Side::Buy => self.pair.quote,
            Side::Sell => self.pair.base,
        }
    }
}

/// One fill: both legs settled in the same state transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Trade {
    pub id: TradeId,
    pub pair: Pair,
    pub buyer: MemberId,
    pub seller: MemberId,
    pub buy_order: OrderId,
    pub sell_order: OrderId,
    /// Base minor units moved from seller to buyer.
    pub quantity: Amount,
    /// The resting order's price.
    pub price: Amount,
    /// Quote minor units moved from buyer to seller: within one minor unit of
    /// [`trade_value`] of this fill, so that the buy order's fills together cost their
    /// exact value rounded down (the contracts' value rule).
    pub value: Amount,
    /// The side of the order that came in and took the resting one.
    pub taker_side: Side,
    pub height: Height,
    pub timestamp_ms: u64,
}

/// What a top-up request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TopUpSubject {
    /// An order (limit, quote or acceptance) parked awaiting funds.
    Order { order: OrderId },
    /// A member's net obligation in a settlement cycle.
    Settlement { cycle: CycleId },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TopUpStatus {
    Open,
    /// A credit covered it; the subject proceeded.
    Cured {
        height: Height,
    },
    /// The deadline passed with the member still short.
    Expired {
        height: Height,
    },
    /// The subject went away first (the member cancelled the order).
    Withdrawn {
        height: Height,
    },
}

/// The patent's additional trust request (S308, S327): `member` must bring `shortfall`
/// more of `asset` into its available balance by `deadline_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TopUpRequest {
    pub id: TopUpId,
    pub member: MemberId,
    pub asset: AssetId,
    /// The whole amount the subject needs available.
    pub needed: Amount,
    /// What was missing when the request was raised.
    pub shortfall: Amount,
    pub subject: TopUpSubject,
    pub deadline_ms: u64,
    pub raised_height: Height,
    pub status: TopUpStatus,
}

/// A signed request for quote (S301): the asker wants to `side` `quantity` and asks the
/// named members for a price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuoteRequest {
    pub pair: Pair,
    /// The asker's side.
    pub side: Side,
    pub quantity: Amount,
    pub counterparties: Vec<MemberId>,
    /// Answers are accepted until this block time.
    pub answer_by_ms: u64,
}

/// A signed firm quote (S302) answering a request for quote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuoteAnswer {
    pub rfq: RfqId,
    pub price: Amount,
    /// The quote can be accepted while the block time is before this.
    pub valid_until_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RfqStatus {
    Open,
    /// The asker accepted `quote` and it settled as `trade`.
    Filled {
        quote: OrderId,
        trade: TradeId,
    },
}

/// A request for quote as the contracts keep it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rfq {
    pub id: RfqId,
    pub asker: MemberId,
    pub request: QuoteRequest,
    /// Quotes given so far (at most one per counterparty), as order ids.
    pub quotes: Vec<OrderId>,
    /// An acceptance parked awaiting the asker's funds.
    pub pending_accept: Option<OrderId>,
    pub status: RfqStatus,
    pub requested_height: Height,
}

/// The common format both sides of a trade agreed outside the chain send (S313/S314).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TradeTerms {
    pub trade_ref: String,
    pub buyer: MemberId,
    pub seller: MemberId,
    pub pair: Pair,
    pub quantity: Amount,
    pub price: Amount,
    pub trade_time_ms: u64,
}

/// A field two confirmations of one trade disagree on.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmationField {
    Buyer,
    Seller,
    Pair,
    Quantity,
    Price,
    TradeTime,
}

/// Why a member's trades left a settlement cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemovalReason {
    /// The member was still short at the top-up deadline.
    ShortAtDeadline { asset: AssetId },
    /// After others were removed, the recomputed netting left the member short.
    ShortAfterRenetting { asset: AssetId },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmationStatus {
    /// One side has confirmed; the other has not yet.
    AwaitingPartner {
        cycle: CycleId,
    },
    /// Both sides sent the same terms; it settles in `cycle`.
    Matched {
        cycle: CycleId,
    },
    /// The sides disagree on `fields`; the trade was sent back and the reference
    /// is free again.
    Mismatched {
        fields: Vec<ConfirmationField>,
    },
    /// No partner by the cut-off of `cycle`.
    Unmatched {
        cycle: CycleId,
    },
    Settled {
        cycle: CycleId,
    },
    /// Taken out of `cycle` because a party was short.
    Removed {
        cycle: CycleId,
        reason: RemovalReason,
    },
}

/// One side's submission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConfirmationSubmission {
    pub member: MemberId,
    pub terms: TradeTerms,
    pub height: Height,
}

/// A bilateral confirmation record: one trade reference between two members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Confirmation {
    pub id: ConfirmationId,
    pub trade_ref: String,
    /// The two members, lower id first.
    #[schema(value_type = crate::schema::MemberPair)]
    pub parties: (MemberId, MemberId),
    /// One or two submissions, first come first.
    pub submissions: Vec<ConfirmationSubmission>,
    pub status: ConfirmationStatus,
}

/// One member's net position in one asset in a cycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NetPosition {
    pub member: MemberId,
    pub asset: AssetId,
    pub receive: Amount,
    pub pay: Amount,
    /// Whether `pay` is locked (always true when `pay` is zero).
    pub covered: bool,
    pub top_up: Option<TopUpId>,
}

/// Gross and net value of one asset in a cycle. Efficiency is `1 - net/gross` in basis
/// points (rounded down; 0 when gross is 0).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetNetting {
    pub asset: AssetId,
    /// What would move if every trade settled on its own: sum of quantities (base) or
    /// values (quote).
    pub gross: Amount,
    /// What moves after netting: sum of the members' net payments.
    pub net: Amount,
    pub efficiency_bps: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CycleStatus {
    /// Collecting matched confirmations.
    Open,
    /// Cut off; waiting for short members' top-ups until `deadline_ms`.
    Closing {
        closed_at_ms: u64,
        deadline_ms: u64,
    },
    Settled {
        settled_at_ms: u64,
        height: Height,
    },
}

/// A settlement cycle of bilateral confirmations, settled with multilateral netting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cycle {
    pub id: CycleId,
    pub opened_at_ms: u64,
    pub status: CycleStatus,
    /// Matched confirmations in the cycle (removed ones excluded once closing).
    pub matched: u64,
    pub positions: Vec<NetPosition>,
    #[schema(value_type = Vec<crate::schema::MemberRemoval>)]
    pub removed: Vec<(MemberId, RemovalReason)>,
    pub netting: Vec<AssetNetting>,
    /// What settlement changed, per member and asset (filled at settlement).
    pub report: Vec<ReportEntry>,
}

/// A member's balance in one asset. The member can spend `inventory`; `locked` is
/// reserved for open orders, quotes and settlement; `customers` is the sum of the
/// customer sub-accounts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Balance {
    pub inventory: Amount,
    pub locked: Amount,
    pub customers: Amount,
}

impl Balance {
    /// inventory + locked + customers; `None` on overflow (which the ledger never lets
    /// happen: every sum is bounded by an asset's credited total).
    pub fn total(&self) -> Option<Amount> {
        self.inventory
            .checked_add(self.locked)?
            .checked_add(self.customers)
    }
}

/// A member's balance in one asset, for queries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetBalance {
    pub asset: AssetId,
    pub symbol: String,
    pub balance: Balance,
}

/// One customer sub-account, for queries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerBalance {
    pub customer: CustomerId,
    pub amount: Amount,
}

/// Credits and debits of one asset over the chain's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetTotals {
    /// Opening balances and attested deposits.
    pub credited: Amount,
    /// Paid withdrawals.
    pub debited: Amount,
}

/// Which of a member's sub-ledgers changed. `Inventory` includes what is locked.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Account {
    Inventory,
    Customers,
}

/// Why a balance went up or down (the patent's increase/decrease information).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ChangeReason {
    Opening,
    Deposit,
    Withdrawal,
    Allocation,
    Fill,
    Netting,
    /// Test-only seeding.
    Seed,
}

/// One line of a settlement report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportEntry {
    pub member: MemberId,
    pub asset: AssetId,
    pub account: Account,
    pub reason: ChangeReason,
    pub increase: Amount,
    pub decrease: Amount,
}

/// What one block changed, per member, asset, account and reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SettlementReport {
    pub height: Height,
    pub timestamp_ms: u64,
    pub entries: Vec<ReportEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trade_value_rounds_down_and_reports_overflow() {
        // 1 coin of scale 8 at 100 yen is 100 yen.
        assert_eq!(
            trade_value(Amount(100_000_000), Amount(100), 8),
            Some(Amount(100))
        );
        // 0.333 coin at 100 yen is 33.3 yen: rounded down to 33.
        assert_eq!(
            trade_value(Amount(33_300_000), Amount(100), 8),
            Some(Amount(33))
        );
        assert_eq!(trade_value(Amount(u128::MAX), Amount(2), 0), None);
    }

    #[test]
    fn ids_are_transparent_in_json() {
        assert_eq!(serde_json::to_string(&OrderId(7)).unwrap(), "7");
        assert_eq!(Side::Buy.opposite(), Side::Sell);
    }
}
