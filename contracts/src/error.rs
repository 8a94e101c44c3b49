//! Why a transaction was rejected. Every variant is an expected operating error (bad
//! or untimely input from a member); broken invariants are assertions instead.

use seisan_types::clearing::{ConfirmationId, OrderId, Pair, RfqId};
use seisan_types::tx::Lane;
use seisan_types::{Amount, AssetId, MemberId, Nonce, Role};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("member {member} is not a member of the consortium")]
    UnknownMember { member: MemberId },
    #[error("member {member} removed: its transactions are refused")]
    MemberRemoved { member: MemberId },
    #[error(
        "member {member} is withdraw-only: no new orders, quotes, confirmations or allocations"
    )]
    WithdrawOnly { member: MemberId },
    #[error("member {member} is not active")]
    CounterpartyNotActive { member: MemberId },
    #[error(transparent)]
    Governance {
        source: crate::governance::GovernanceError,
    },
    #[error("nonce {nonce} of member {member}'s {lane} lane was already used")]
    RepeatedNonce {
        member: MemberId,
        lane: Lane,
        nonce: Nonce,
    },
    #[error(
        "nonce {nonce} of member {member}'s {lane} lane skips ahead; the next nonce is {expected}"
    )]
    NonceGap {
        member: MemberId,
        lane: Lane,
        nonce: Nonce,
        expected: Nonce,
    },
    #[error("nonce {nonce} of member {member}'s {lane} lane is older than the last one, {last}")]
    StaleNonce {
        member: MemberId,
        lane: Lane,
        nonce: Nonce,
        last: Nonce,
    },
    #[error("member {member} has role {role:?}; this transaction needs {needed:?}")]
    WrongRole {
        member: MemberId,
        role: Role,
        needed: Role,
    },
    #[error("asset {asset} is not in genesis")]
    UnknownAsset { asset: AssetId },
    #[error("pair {}/{} is not a genesis pair", pair.base, pair.quote)]
    UnknownPair { pair: Pair },
    #[error("{what} must be more than zero")]
    ZeroAmount { what: &'static str },
    #[error("customer id must be 1 to {limit} bytes, got {length}")]
    BadCustomerId { length: usize, limit: usize },
    #[error("member {member} has {available} of asset {asset} available; {needed} needed")]
    InsufficientAvailable {
        member: MemberId,
        asset: AssetId,
        needed: Amount,
        available: Amount,
    },
    #[error("customer {customer:?} of member {member} has {available} of asset {asset}; {needed} needed")]
    InsufficientCustomer {
        member: MemberId,
        asset: AssetId,
        customer: String,
        needed: Amount,
        available: Amount,
    },
    #[error("an allocation batch holds {count} allocations; it must hold 1 to {limit}")]
    BadBatchSize { count: usize, limit: usize },
    #[error("quantity {quantity} at price {price} overflows")]
    ValueOverflow { quantity: Amount, price: Amount },
    #[error("quantity {quantity} at price {price} is worth less than one minor unit")]
    ValueBelowMinorUnit { quantity: Amount, price: Amount },
    #[error("time {time_ms} is not after the block time {now_ms}")]
    TimeNotInFuture { time_ms: u64, now_ms: u64 },
    #[error("order {order} does not exist")]
    UnknownOrder { order: OrderId },
    #[error("order {order} belongs to another member than {member}")]
    NotOrderOwner { order: OrderId, member: MemberId },
    #[error("order {order} is no longer open")]
    OrderNotOpen { order: OrderId },
    #[error("request for quote {rfq} does not exist")]
    UnknownRfq { rfq: RfqId },
    #[error("request for quote {rfq} is already filled")]
    RfqFilled { rfq: RfqId },
    #[error("request for quote {rfq} does not name member {member}")]
    NotACounterparty { rfq: RfqId, member: MemberId },
    #[error(
        "request for quote {rfq} took answers until {answer_by_ms}; the block time is {now_ms}"
    )]
    AnswerTooLate {
        rfq: RfqId,
        answer_by_ms: u64,
        now_ms: u64,
    },
    #[error("member {member} already has an open quote on request {rfq}")]
    AlreadyQuoted { rfq: RfqId, member: MemberId },
    #[error("request {rfq} has reached the limit of {limit} quotes")]
    TooManyQuotes { rfq: RfqId, limit: usize },
    #[error("counterparties are invalid: {reason}")]
    BadCounterparties { reason: String },
    #[error("order {order} is not a quote")]
    NotAQuote { order: OrderId },
    #[error("member {member} did not ask request {rfq}")]
    NotTheAsker { rfq: RfqId, member: MemberId },
    #[error("quote {quote} is not live (awaiting funds, filled, cancelled or expired)")]
    QuoteNotLive { quote: OrderId },
    #[error("request {rfq} already has acceptance {order} awaiting funds")]
    AcceptancePending { rfq: RfqId, order: OrderId },
    #[error("trade reference must be 1 to {limit} bytes, got {length}")]
    BadTradeRef { length: usize, limit: usize },
    #[error("member {member} is neither the buyer nor the seller")]
    NotAParty { member: MemberId },
    #[error("buyer and seller are the same member")]
    SameBuyerAndSeller,
    #[error("member {member} is not an exchange")]
    NotAnExchange { member: MemberId },
    #[error("member {member} already confirmed confirmation {confirmation}")]
    AlreadyConfirmed {
        confirmation: ConfirmationId,
        member: MemberId,
    },
    #[error("trade reference is taken by confirmation {confirmation}")]
    TradeRefInUse { confirmation: ConfirmationId },
    #[error("crediting {amount} of asset {asset} would overflow its total")]
    CreditOverflow { asset: AssetId, amount: Amount },
    #[error(transparent)]
    Custody {
        source: crate::custody::CustodyError,
    },
    #[error(transparent)]
    Bank { source: crate::bank::BankRuleError },
    #[error(transparent)]
    Mirror { source: crate::mirror::MirrorError },
}

impl ContractError {
    /// A stable machine-readable name for receipts.
    pub fn code(&self) -> &'static str {
        match self {
            ContractError::UnknownMember { .. } => "unknown_member",
            ContractError::RepeatedNonce { .. } => "repeated_nonce",
            ContractError::MemberRemoved { .. } => "member_removed",
            ContractError::WithdrawOnly { .. } => "withdraw_only",
            ContractError::CounterpartyNotActive { .. } => "counterparty_not_active",
            ContractError::Governance { source } => source.code(),
            ContractError::StaleNonce { .. } => "stale_nonce",
            ContractError::NonceGap { .. } => "nonce_gap",
            ContractError::WrongRole { .. } => "wrong_role",
            ContractError::UnknownAsset { .. } => "unknown_asset",
            ContractError::UnknownPair { .. } => "unknown_pair",
            ContractError::ZeroAmount { .. } => "zero_amount",
            ContractError::BadCustomerId { .. } => "bad_customer_id",
            ContractError::InsufficientAvailable { .. } => "insufficient_available",
            ContractError::InsufficientCustomer { .. } => "insufficient_customer",
            ContractError::BadBatchSize { .. } => "bad_batch_size",
            ContractError::ValueOverflow { .. } => "value_overflow",
            ContractError::ValueBelowMinorUnit { .. } => "value_below_minor_unit",
            ContractError::TimeNotInFuture { .. } => "time_not_in_future",
            ContractError::UnknownOrder { .. } => "unknown_order",
            ContractError::NotOrderOwner { .. } => "not_order_owner",
            ContractError::OrderNotOpen { .. } => "order_not_open",
            ContractError::UnknownRfq { .. } => "unknown_rfq",
            ContractError::RfqFilled { .. } => "rfq_filled",
            ContractError::NotACounterparty { .. } => "not_a_counterparty",
            ContractError::AnswerTooLate { .. } => "answer_too_late",
            ContractError::AlreadyQuoted { .. } => "already_quoted",
            ContractError::TooManyQuotes { .. } => "too_many_quotes",
            ContractError::BadCounterparties { .. } => "bad_counterparties",
            ContractError::NotAQuote { .. } => "not_a_quote",
            ContractError::NotTheAsker { .. } => "not_the_asker",
            ContractError::QuoteNotLive { .. } => "quote_not_live",
            ContractError::AcceptancePending { .. } => "acceptance_pending",
            ContractError::BadTradeRef { .. } => "bad_trade_ref",
            ContractError::NotAParty { .. } => "not_a_party",
            ContractError::SameBuyerAndSeller => "same_buyer_and_seller",
            ContractError::NotAnExchange { .. } => "not_an_exchange",
            ContractError::AlreadyConfirmed { .. } => "already_confirmed",
            ContractError::TradeRefInUse { .. } => "trade_ref_in_use",
            ContractError::CreditOverflow { .. } => "credit_overflow",
            ContractError::Custody { source } => source.code(),
            ContractError::Bank { source } => source.code(),
            ContractError::Mirror { source } => source.code(),
        }
    }
}
