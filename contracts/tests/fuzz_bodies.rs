//! Raw-arbitrary transaction bodies (issue 10, part 2): where `properties.rs` draws
//! well-typed, mostly sensible bodies, this drives the contracts with bodies whose
//! fields are arbitrary bit patterns (amounts up to `u128::MAX`, unknown asset, order,
//! quote and member ids, wild timestamps), made by mutating the canonical encodings of
//! one seed body per kind and keeping what still decodes. Sequences of them, from
//! known and unknown members and with wrong nonces, are applied block by block.
//!
//! Properties: applying never panics, every transaction gets a receipt, and the ledger
//! invariants (conservation per asset, no negative balance, locks equal what orders
//! hold) hold after every block (the harness checks them).

mod common;

use common::*;
use proptest::prelude::*;
use seisan_contracts::apply_block;
use seisan_types::clearing::{
    OrderId, OrderRequest, QuoteAnswer, QuoteRequest, RfqId, Side, TimeInForce, TradeTerms,
};
use seisan_types::codec;
use seisan_types::tx::{
    Allocation, AllocationDirection, CustomerId, SignedTransaction, Transaction, TxBody,
};
use seisan_types::{Amount, Height, MemberId, Nonce, Signature};

/// One valid body of each kind a member can send without custody.
fn seed_bodies() -> Vec<TxBody> {
    let allocation = Allocation {
        asset: BTC,
        customer: CustomerId("customer-1".into()),
        amount: Amount(COIN),
        direction: AllocationDirection::ToCustomer,
    };
    vec![
        TxBody::PlaceOrder(OrderRequest {
            pair: PAIR,
            side: Side::Sell,
            quantity: Amount(COIN),
            limit_price: Amount(5_000_000),
            time_in_force: TimeInForce::GoodTillCancel,
            expires_at_ms: Some(GENESIS_MS + 60_000),
        }),
        TxBody::PlaceOrder(OrderRequest {
            pair: PAIR,
            side: Side::Buy,
            quantity: Amount(COIN / 2),
            limit_price: Amount(6_000_000),
            time_in_force: TimeInForce::ImmediateOrCancel,
            expires_at_ms: None,
        }),
        TxBody::CancelOrder { order: OrderId(1) },
        TxBody::Allocate(allocation.clone()),
        TxBody::AllocateBatch(vec![allocation.clone(), allocation]),
        TxBody::RequestQuote(QuoteRequest {
            pair: PAIR,
            side: Side::Buy,
            quantity: Amount(COIN),
            counterparties: vec![B, C],
            answer_by_ms: GENESIS_MS + 60_000,
        }),
        TxBody::AnswerQuote(QuoteAnswer {
            rfq: RfqId(1),
            price: Amount(5_000_000),
            valid_until_ms: GENESIS_MS + 60_000,
        }),
        TxBody::AcceptQuote { quote: OrderId(2) },
        TxBody::Confirm(TradeTerms {
            trade_ref: "T-1".into(),
            buyer: A,
            seller: B,
            pair: PAIR,
            quantity: Amount(COIN),
            price: Amount(5_000_000),
            trade_time_ms: GENESIS_MS,
        }),
        TxBody::CloseCycle,
    ]
}

/// A body: a seed with some of its bytes overwritten (lengths kept, so most decode).
fn raw_body() -> impl Strategy<Value = TxBody> {
    let seeds: Vec<Vec<u8>> = seed_bodies().iter().map(codec::encode).collect();
    let count = seeds.len();
    (
        0..count,
        proptest::collection::vec(
            (
                any::<prop::sample::Index>(),
                prop_oneof![
                    any::<u8>().prop_map(|b| vec![b]),
                    prop_oneof![Just(u64::MAX), Just(0u64), 0..8u64, any::<u64>()]
                        .prop_map(|w| w.to_le_bytes().to_vec()),
                    Just(vec![0xff; 16]),
                ],
            ),
            0..4,
        ),
    )
        .prop_map(move |(seed, writes)| {
            let mut bytes = seeds[seed].clone();
            for (at, patch) in writes {
                // Never rewrite the variant tag (the first four bytes): a mutated tag
                // mostly yields undecodable bytes, and kinds are covered by the seeds.
                let start = 4 + at.index(bytes.len().saturating_sub(4).max(1));
                for (offset, byte) in patch.iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(start + offset) {
                        *slot = *byte;
                    }
                }
            }
            codec::decode::<TxBody>(&bytes).unwrap_or_else(|_| seed_bodies().swap_remove(seed))
        })
}

/// Who sends: a genesis member, or a member id genesis does not know.
#[derive(Clone, Debug)]
enum Sender {
    Member(u32),
    Unknown(u32),
}

fn step() -> impl Strategy<Value = (Sender, TxBody, bool)> {
    (
        prop_oneof![
            8 => (0..4u32).prop_map(Sender::Member),
            1 => (4..u32::MAX).prop_map(Sender::Unknown),
        ],
        raw_body(),
        // Whether to reuse a stale nonce instead of the next one.
        prop::bool::weighted(0.1),
    )
}

fn unsigned(h: &Harness, member: MemberId, nonce: Nonce, body: TxBody) -> SignedTransaction {
    SignedTransaction {
        tx: Transaction {
            chain_id: h.genesis.chain_id.clone(),
            member,
            nonce,
            body,
        },
        signature: Signature([0; 64]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn raw_arbitrary_bodies_never_panic_or_break_invariants(
        blocks in proptest::collection::vec(proptest::collection::vec(step(), 0..8), 1..6),
        advance_ms in proptest::collection::vec(prop_oneof![Just(1u64), Just(3_600_000), Just(86_400_000), any::<u32>().prop_map(u64::from)], 6),
    ) {
        let mut h = Harness::new();
        h.seed(&[(A, BTC, 10 * COIN), (A, JPY, 1_000_000_000), (B, BTC, 10 * COIN), (B, JPY, 1_000_000_000), (C, JPY, 1_000_000)]);
        for (index, steps) in blocks.into_iter().enumerate() {
            let mut txs: Vec<SignedTransaction> = Vec::new();
            for (sender, body, stale) in steps {
                let tx = match sender {
                    // Nonce 0 is never next (nonces start at 1), so it is always stale.
                    Sender::Member(member) if stale => unsigned(&h, MemberId(member), Nonce(0), body),
                    Sender::Member(member) => h.signed(MemberId(member), body),
                    Sender::Unknown(member) => unsigned(&h, MemberId(member), Nonce(1), body),
                };
                txs.push(tx);
            }
            h.height += 1;
            h.now_ms = h.now_ms.saturating_add(advance_ms[index]);
            let ctx = seisan_contracts::BlockContext { height: Height(h.height), timestamp_ms: h.now_ms, proposer: CH };
            let outcome = apply_block(&h.view, &h.genesis, &ctx, &txs);
            prop_assert_eq!(outcome.receipts.len(), txs.len());
            for (receipt, tx) in outcome.receipts.iter().zip(&txs) {
                prop_assert_eq!(receipt.tx_id, tx.id());
            }
            h.view.apply(&outcome.writes);
            h.check();
        }
    }
}

#[test]
fn every_seed_body_round_trips() {
    for body in seed_bodies() {
        let bytes = codec::encode(&body);
        assert_eq!(codec::decode::<TxBody>(&bytes).expect("decodes"), body);
    }
}

/// The strategy really produces bodies that are not the seeds (mutated fields), so the
/// property above is not vacuously about the seeds alone.
#[test]
fn raw_bodies_mostly_differ_from_the_seeds() {
    use proptest::strategy::ValueTree;
    let seeds = seed_bodies();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = raw_body();
    let mutated = (0..500)
        .filter(|_| {
            let body = strategy.new_tree(&mut runner).expect("value").current();
            !seeds.contains(&body)
        })
        .count();
    assert!(mutated > 150, "only {mutated} of 500 bodies were mutated");
}
