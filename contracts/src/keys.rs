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
//! | `0x02` nonce | member u32 | `Nonce` (last applied in the member's member lane) |
//! | `0x06` node nonce | member u32 | `Nonce` (last applied in the member's node lane) |
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
//! | `0x60`-`0x63`, `0x6E`-`0x6F` custody | see [`crate::custody`] | `CustodyValue` |
//! | `0x70`-`0x73`, `0x7E`-`0x7F` bank | see [`crate::bank`] | `BankValue` |
//! | `0x80`-`0x81` mirror | see [`crate::mirror`] | `MirrorValue` |
//!
//! Every table byte is declared once, in [`TABLES`]; a compile-time check refuses two
//! tables with the same byte.
//!
//! The book's price key is the price for sells and `u128::MAX - price` for buys, so an
//! ascending scan of one side's prefix yields the best price first and, within a
//! price, the lowest sequence (earliest to go live) first: price-time priority.

use seisan_types::clearing::{
    ConfirmationId, CycleId, OrderId, Pair, RfqId, Side, TopUpId, TradeId,
};
use seisan_types::governance::ProposalId;
use seisan_types::tx::Lane;
use seisan_types::{Amount, AssetId, Height, MemberId};

/// One table of the contracts' state: the key byte every key of it starts with, and
/// its name (for logs, panics and the state layout table above).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSpec {
    pub byte: u8,
    pub name: &'static str,
}

/// Declares every table's key-byte constant and the [`TABLES`] registry from one list,
/// so a table cannot exist without being in the registry the distinctness check reads.
macro_rules! tables {
    ($($(#[$doc:meta])* $constant:ident = $byte:literal, $name:literal;)*) => {
        $($(#[$doc])* pub const $constant: u8 = $byte;)*

        /// Every table the contracts write, in key-byte order (custody's and the bank's
        /// tables included: they share the state's key space).
        pub const TABLES: &[TableSpec] = &[$(TableSpec { byte: $byte, name: $name },)*];
    };
}

tables! {
    META = 0x01, "meta";
    NONCE = 0x02, "nonce";
    BALANCE = 0x03, "balance";
    CUSTOMER = 0x04, "customer";
    TOTALS = 0x05, "totals";
    /// The node lane's nonces ([`seisan_types::tx::Lane::Node`]); the member lane keeps
    /// the `nonce` table, so its keys did not change when lanes were introduced.
    NODE_NONCE = 0x06, "node-nonce";
    ORDER = 0x10, "order";
    BOOK = 0x11, "book";
    MEMBER_ORDER = 0x12, "member-order";
    ORDER_EXPIRY = 0x13, "order-expiry";
    TRADE = 0x14, "trade";
    VALUE_REMAINDER = 0x15, "value-remainder";
    TOP_UP = 0x20, "top-up";
    OPEN_TOP_UP = 0x21, "open-top-up";
    TOP_UP_DEADLINE = 0x22, "top-up-deadline";
    RFQ = 0x30, "rfq";
    CONFIRMATION = 0x40, "confirmation";
    TRADE_REF = 0x41, "trade-ref";
    CYCLE_CONFIRMATION = 0x42, "cycle-confirmation";
    CYCLE = 0x43, "cycle";
    CLOSING_CYCLE = 0x44, "closing-cycle";
    REPORT = 0x50, "report";
    /// Custody (see [`crate::custody`]).
    DEPOSIT = 0x60, "custody-deposit";
    WITHDRAWAL = 0x61, "custody-withdrawal";
    NEXT_WITHDRAWAL = 0x62, "custody-next-withdrawal";
    OPEN_WITHDRAWAL = 0x63, "custody-open-withdrawal";
    /// Attestation evidence and open-attestation counts of custody facts.
    CUSTODY_EVIDENCE = 0x6E, "custody-attestation-evidence";
    CUSTODY_OPEN_ATTESTATIONS = 0x6F, "custody-open-attestations";
    /// The bank (see [`crate::bank`]).
    BANK_ENTRY = 0x70, "bank-entry";
    FIAT_WITHDRAWAL = 0x71, "fiat-withdrawal";
    NEXT_FIAT_WITHDRAWAL = 0x72, "next-fiat-withdrawal";
    OPEN_FIAT_WITHDRAWAL = 0x73, "open-fiat-withdrawal";
    /// Attestation evidence and open-attestation counts of bank entries.
    BANK_EVIDENCE = 0x7E, "bank-attestation-evidence";
    BANK_OPEN_ATTESTATIONS = 0x7F, "bank-open-attestations";
    /// The bank's leg of settlement (see [`crate::mirror`]).
    MIRROR = 0x80, "mirror";
    OPEN_MIRROR = 0x81, "open-mirror";
    /// Governance (see [`crate::consortium`] and [`crate::governance`]).
    CONSORTIUM = 0x90, "consortium";
    GOVERNANCE_META = 0x91, "governance-meta";
    PROPOSAL = 0x92, "proposal";
    OPEN_PROPOSAL = 0x93, "open-proposal";
    ACTIVATION = 0x94, "activation";
}

/// Whether no two tables share a key byte (two that did would read each other's
/// values as their own). A `const fn`, so the check below runs at compile time.
pub const fn distinct_bytes(tables: &[TableSpec]) -> bool {
    let mut i = 0;
    while i < tables.len() {
        let mut j = i + 1;
        while j < tables.len() {
            if tables[i].byte == tables[j].byte {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

const _: () = assert!(
    distinct_bytes(TABLES),
    "two contract tables share a key byte"
);

/// The registered table a key belongs to (`None` for a key outside every table).
pub fn table_of(key: &[u8]) -> Option<&'static TableSpec> {
    let byte = *key.first()?;
    TABLES.iter().find(|table| table.byte == byte)
}

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

/// The key of a member's last applied nonce in one lane.
pub fn nonce(member: MemberId, lane: Lane) -> Vec<u8> {
    let table = match lane {
        Lane::Member => NONCE,
        Lane::Node => NODE_NONCE,
    };
    key(table, &[&member.0.to_be_bytes()])
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

pub fn consortium() -> Vec<u8> {
    vec![CONSORTIUM]
}

pub fn governance_meta() -> Vec<u8> {
    vec![GOVERNANCE_META]
}

pub fn proposal(proposal: ProposalId) -> Vec<u8> {
    key(PROPOSAL, &[&proposal.0.to_be_bytes()])
}

pub fn open_proposal(expires_at: Height, proposal: ProposalId) -> Vec<u8> {
    key(
        OPEN_PROPOSAL,
        &[&expires_at.0.to_be_bytes(), &proposal.0.to_be_bytes()],
    )
}

/// Scheduled changes by activation height, then approval order (`sequence`).
pub fn activation(activation_height: Height, sequence: u64, proposal: ProposalId) -> Vec<u8> {
    key(
        ACTIVATION,
        &[
            &activation_height.0.to_be_bytes(),
            &sequence.to_be_bytes(),
            &proposal.0.to_be_bytes(),
        ],
    )
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
    fn registry_refuses_a_shared_key_byte() {
        assert!(distinct_bytes(TABLES));
        let clash = [
            TableSpec {
                byte: 0x10,
                name: "one",
            },
            TableSpec {
                byte: 0x11,
                name: "two",
            },
            TableSpec {
                byte: 0x10,
                name: "three",
            },
        ];
        assert!(!distinct_bytes(&clash));
        assert_eq!(table_of(&order(OrderId(3))).unwrap().name, "order");
        assert_eq!(table_of(&[0xff]), None);
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
