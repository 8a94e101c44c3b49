//! A rough throughput measurement (ignored by default; it asserts the work was done,
//! not how fast): one block of resting sells, then one block of buys that each take
//! one resting order. Run with
//! `cargo test -p seisan-contracts --test throughput -- --ignored --nocapture`.

mod common;

use common::*;
use seisan_contracts::apply_block;
use seisan_types::clearing::{OrderRequest, Side, TimeInForce};
use seisan_types::receipt::Event;
use seisan_types::tx::TxBody;
use seisan_types::{Amount, Height};
use std::time::Instant;

const ORDERS: usize = 5_000;

fn order(side: Side, price: u128) -> TxBody {
    TxBody::PlaceOrder(OrderRequest {
        pair: PAIR,
        side,
        quantity: Amount(COIN / 100),
        limit_price: Amount(price),
        time_in_force: TimeInForce::GoodTillCancel,
        expires_at_ms: None,
    })
}

#[test]
#[ignore]
fn fills_per_second_in_one_block() {
    let mut h = Harness::new();
    h.seed(&[(A, JPY, 1_000_000_000), (B, BTC, 1_000 * COIN)]);
    let sells: Vec<_> = (0..ORDERS)
        .map(|i| (B, order(Side::Sell, 100 + (i % 50) as u128)))
        .collect();
    h.block(sells);
    let buys: Vec<_> = (0..ORDERS)
        .map(|_| h.signed(A, order(Side::Buy, 200)))
        .collect();
    let ctx = seisan_contracts::BlockContext {
        height: Height(h.height + 1),
        timestamp_ms: h.now_ms + 1,
        proposer: CH,
    };
    let start = Instant::now();
    let outcome = apply_block(&h.view, &h.genesis, &ctx, &buys);
    let elapsed = start.elapsed();
    let fills = outcome
        .receipts
        .iter()
        .flat_map(|r| r.events.iter())
        .filter(|e| matches!(e, Event::Fill { .. }))
        .count();
    assert_eq!(fills, ORDERS);
    println!(
        "{fills} fills in {:.1} ms: {:.0} fills/s, {} keys written",
        elapsed.as_secs_f64() * 1000.0,
        fills as f64 / elapsed.as_secs_f64(),
        outcome.writes.len()
    );
}
