//! The binary layout of every state key the contracts write.
//!
//! A key is one table byte followed by fixed-width big-endian fields (so byte order is
//! numeric order and a prefix of fields is a range), with at most one variable-length
//! field, always last. Values are [`seisan_types::codec`] encodings of the type named
//! in each line; index tables hold the empty value `()`.
//!
//! | table | key after the table byte | value |
//! |---|---|---|
//! | `0x01` meta | (none) | `Meta` (id counters, current cycle) |
//! | `0x02` nonce | member u32 | `Nonce` (last applied) |
//! | `0x03` balance | member u32, asset u32 | `Balance` |
//! | `0x04` customer | member u32, asset u32, customer id bytes | `Amount` |
//! | `0x05` totals | asset u32 | `AssetTotals` |
//! | `0x10` order | order u64 | `Order` |
//! | `0x11` book | base u32, quote u32, side u8 (buy 0, sell 1), price key u128, sequence u64 | `OrderId` |
//! | `0x12` member's open orders | member u32, order u64 | `()` |
//! | `0x13` order expiry | expires_at_ms u64, order u64 | `()` |
//! | `0x14` trade | trade u64 | `Trade` |
//! | `0x15` open buy order's value remainder | order u64 | `Amount` (see [`crate::orders`]; absent when zero) |
//! | `0x20` top-up | top-up u64 | `TopUpRequest` |
//! | `0x21` open top-ups | member u32, asset u32, top-up u64 | `()` |
//! | `0x22` top-up deadline | deadline_ms u64, top-up u64 | `()` |
//! | `0x30` request for quote | rfq u64 | `Rfq` |
//! | `0x40` confirmation | confirmation u64 | `Confirmation` |
//! | `0x41` open trade reference | low member u32, high member u32, trade ref bytes | `ConfirmationId` |
//! | `0x42` cycle's confirmations | cycle u64, confirmation u64 | `()` |
//! | `0x43` cycle | cycle u64 | `Cycle` |
//! | `0x44` closing cycles | cycle u64 | `()` |
//! | `0x50` block report | height u64 | `SettlementReport` |
//!
//! The book's price key is the price for sells and `u128::MAX - price` for buys, so an
//! ascending scan of one side's prefix yields the best price first and, within a
//! price, the lowest sequence (earliest to go live) first: price-time priority.

use seisan_types::clearing::{
    ConfirmationId, CycleId, OrderId, Pair, RfqId, Side, TopUpId, TradeId,
};
use seisan_types::{Amount, AssetId, Height, MemberId};

pub const META: u8 = 0x01;
pub const NONCE: u8 = 0x02;
pub const BALANCE: u8 = 0x03;
pub const CUSTOMER: u8 = 0x04;
pub const TOTALS: u8 = 0x05;
pub const ORDER: u8 = 0x10;
pub const BOOK: u8 = 0x11;
pub const MEMBER_ORDER: u8 = 0x12;
pub const ORDER_EXPIRY: u8 = 0x13;
pub const TRADE: u8 = 0x14;
pub const VALUE_REMAINDER: u8 = 0x15;
pub const TOP_UP: u8 = 0x20;
pub const OPEN_TOP_UP: u8 = 0x21;
pub const TOP_UP_DEADLINE: u8 = 0x22;
pub const RFQ: u8 = 0x30;
pub const CONFIRMATION: u8 = 0x40;
pub const TRADE_REF: u8 = 0x41;
pub const CYCLE_CONFIRMATION: u8 = 0x42;
pub const CYCLE: u8 = 0x43;
pub const CLOSING_CYCLE: u8 = 0x44;
pub const REPORT: u8 = 0x50;

/// Builds a key from a table byte and already-encoded fields.
fn key(table: u8, fields: &[&[u8]]) -> Vec<u8> {
    let length = 1 + fields.iter().map(|field| field.len()).sum::<usize>();
    let mut key = Vec::with_capacity(length);
    key.push(table);
    for field in fields {
        key.extend_from_slice(field);
    }
    key
}

/// Reads the big-endian u64 that ends a key (the id of index tables).
pub fn trailing_u64(key: &[u8]) -> u64 {
    assert!(key.len() >= 9, "index key too short: {key:?}");
    let bytes: [u8; 8] = key[key.len() - 8..].try_into().expect("8 bytes");
    u64::from_be_bytes(bytes)
}

/// Reads the big-endian u64 right after the table byte (the time of time indexes).
pub fn leading_u64(key: &[u8]) -> u64 {
    assert!(key.len() >= 9, "index key too short: {key:?}");
    let bytes: [u8; 8] = key[1..9].try_into().expect("8 bytes");
    u64::from_be_bytes(bytes)
}

pub fn meta() -> Vec<u8> {
    vec![META]
}

pub fn nonce(member: MemberId) -> Vec<u8> {
    key(NONCE, &[&member.0.to_be_bytes()])
}

pub fn balance(member: MemberId, asset: AssetId) -> Vec<u8> {
    key(BALANCE, &[&member.0.to_be_bytes(), &asset.0.to_be_bytes()])
}

pub fn customer_prefix(member: MemberId, asset: AssetId) -> Vec<u8> {
    key(CUSTOMER, &[&member.0.to_be_bytes(), &asset.0.to_be_bytes()])
}

pub fn customer(member: MemberId, asset: AssetId, customer: &str) -> Vec<u8> {
    key(
        CUSTOMER,
        &[
            &member.0.to_be_bytes(),
            &asset.0.to_be_bytes(),
            customer.as_bytes(),
        ],
    )
}

pub fn totals(asset: AssetId) -> Vec<u8> {
    key(TOTALS, &[&asset.0.to_be_bytes()])
}

pub fn order(order: OrderId) -> Vec<u8> {
    key(ORDER, &[&order.0.to_be_bytes()])
}

fn side_byte(side: Side) -> u8 {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

/// One side of one pair's book.
pub fn book_prefix(pair: Pair, side: Side) -> Vec<u8> {
    key(
        BOOK,
        &[
            &pair.base.0.to_be_bytes(),
            &pair.quote.0.to_be_bytes(),
            &[side_byte(side)],
        ],
    )
}

pub fn book(pair: Pair, side: Side, price: Amount, sequence: u64) -> Vec<u8> {
    let price_key = match side {
        Side::Buy => u128::MAX - price.0,
        Side::Sell => price.0,
    };
    let mut key = book_prefix(pair, side);
    key.extend_from_slice(&price_key.to_be_bytes());
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

pub fn member_order_prefix(member: MemberId) -> Vec<u8> {
    key(MEMBER_ORDER, &[&member.0.to_be_bytes()])
}

pub fn member_order(member: MemberId, order: OrderId) -> Vec<u8> {
    key(
        MEMBER_ORDER,
        &[&member.0.to_be_bytes(), &order.0.to_be_bytes()],
    )
}

pub fn order_expiry(expires_at_ms: u64, order: OrderId) -> Vec<u8> {
    key(
        ORDER_EXPIRY,
        &[&expires_at_ms.to_be_bytes(), &order.0.to_be_bytes()],
    )
}

pub fn trade(trade: TradeId) -> Vec<u8> {
    key(TRADE, &[&trade.0.to_be_bytes()])
}

pub fn value_remainder(order: OrderId) -> Vec<u8> {
    key(VALUE_REMAINDER, &[&order.0.to_be_bytes()])
}

pub fn top_up(top_up: TopUpId) -> Vec<u8> {
    key(TOP_UP, &[&top_up.0.to_be_bytes()])
}

pub fn open_top_up_prefix(member: MemberId, asset: AssetId) -> Vec<u8> {
    key(
        OPEN_TOP_UP,
        &[&member.0.to_be_bytes(), &asset.0.to_be_bytes()],
    )
}

pub fn open_top_up(member: MemberId, asset: AssetId, top_up: TopUpId) -> Vec<u8> {
    let mut key = open_top_up_prefix(member, asset);
    key.extend_from_slice(&top_up.0.to_be_bytes());
    key
}

pub fn top_up_deadline(deadline_ms: u64, top_up: TopUpId) -> Vec<u8> {
    key(
        TOP_UP_DEADLINE,
        &[&deadline_ms.to_be_bytes(), &top_up.0.to_be_bytes()],
    )
}

pub fn rfq(rfq: RfqId) -> Vec<u8> {
    key(RFQ, &[&rfq.0.to_be_bytes()])
}

pub fn confirmation(confirmation: ConfirmationId) -> Vec<u8> {
    key(CONFIRMATION, &[&confirmation.0.to_be_bytes()])
}

pub fn trade_ref(low: MemberId, high: MemberId, trade_ref: &str) -> Vec<u8> {
    assert!(low < high, "trade reference parties must be ordered");
    key(
        TRADE_REF,
        &[
            &low.0.to_be_bytes(),
            &high.0.to_be_bytes(),
            trade_ref.as_bytes(),
        ],
    )
}

pub fn cycle_confirmation_prefix(cycle: CycleId) -> Vec<u8> {
    key(CYCLE_CONFIRMATION, &[&cycle.0.to_be_bytes()])
}

pub fn cycle_confirmation(cycle: CycleId, confirmation: ConfirmationId) -> Vec<u8> {
    key(
        CYCLE_CONFIRMATION,
        &[&cycle.0.to_be_bytes(), &confirmation.0.to_be_bytes()],
    )
}

pub fn cycle(cycle: CycleId) -> Vec<u8> {
    key(CYCLE, &[&cycle.0.to_be_bytes()])
}

pub fn closing_cycle(cycle: CycleId) -> Vec<u8> {
    key(CLOSING_CYCLE, &[&cycle.0.to_be_bytes()])
}

pub fn report(height: Height) -> Vec<u8> {
    key(REPORT, &[&height.0.to_be_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> Pair {
        Pair {
            base: AssetId(0),
            quote: AssetId(1),
        }
    }

    #[test]
    fn book_keys_sort_in_price_time_priority() {
        // Buys: higher price first, then earlier sequence.
        let high_late = book(pair(), Side::Buy, Amount(101), 9);
        let high_early = book(pair(), Side::Buy, Amount(101), 2);
        let low = book(pair(), Side::Buy, Amount(100), 1);
        assert!(high_early < high_late);
        assert!(high_late < low);
        // Sells: lower price first.
        let cheap = book(pair(), Side::Sell, Amount(99), 5);
        let dear = book(pair(), Side::Sell, Amount(100), 1);
        assert!(cheap < dear);
        assert!(cheap.starts_with(&book_prefix(pair(), Side::Sell)));
        assert!(!cheap.starts_with(&book_prefix(pair(), Side::Buy)));
    }

    #[test]
    fn ids_read_back_from_index_keys() {
        let key = order_expiry(1234, OrderId(77));
        assert_eq!(leading_u64(&key), 1234);
        assert_eq!(trailing_u64(&key), 77);
        let key = open_top_up(MemberId(1), AssetId(2), TopUpId(3));
        assert_eq!(trailing_u64(&key), 3);
    }
}
