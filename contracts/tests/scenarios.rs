//! Walk-throughs of the patent's second embodiment and the named cases, through
//! the public entry points, with every ledger invariant checked after each block.

mod common;

use common::*;
use seisan_contracts::query;
use seisan_types::clearing::{
    Account, CancelReason, ChangeReason, ConfirmationField, ConfirmationStatus, CycleStatus,
    OrderId, OrderRequest, OrderStatus, QuoteAnswer, QuoteRequest, RemovalReason, RfqStatus, Side,
    TimeInForce, TopUpStatus, TopUpSubject, TradeTerms,
};
use seisan_types::genesis::SettlementSettings;
use seisan_types::receipt::{Event, TxOutcome};
use seisan_types::tx::{Allocation, AllocationDirection, CustomerId, TxBody};
use seisan_types::{Amount, Height};

fn limit(side: Side, quantity: u128, price: u128) -> TxBody {
    TxBody::PlaceOrder(OrderRequest {
        pair: PAIR,
        side,
        quantity: Amount(quantity),
        limit_price: Amount(price),
        time_in_force: TimeInForce::GoodTillCancel,
        expires_at_ms: None,
    })
}

fn ioc(side: Side, quantity: u128, price: u128) -> TxBody {
    TxBody::PlaceOrder(OrderRequest {
        pair: PAIR,
        side,
        quantity: Amount(quantity),
        limit_price: Amount(price),
        time_in_force: TimeInForce::ImmediateOrCancel,
        expires_at_ms: None,
    })
}

fn count_fills(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Fill { .. }))
        .count()
}

fn holdings(h: &Harness, member: seisan_types::MemberId) -> (u128, u128) {
    let jpy = h.balance(member, JPY);
    let btc = h.balance(member, BTC);
    (jpy.total().unwrap().0, btc.total().unwrap().0)
}

#[test]
fn patent_worked_example_tables_1_and_2() {
    // S210-S212: A and B each trust 200 yen and 2 BTC.
    let mut h = Harness::new();
    h.seed(&[
        (A, JPY, 200),
        (A, BTC, 2 * COIN),
        (B, JPY, 200),
        (B, BTC, 2 * COIN),
    ]);
    // S230A: A asks to buy 1 BTC for 100 yen; S230B: B asks to sell 1 BTC for 100 yen.
    let outcome = h.block(vec![
        (A, limit(Side::Buy, COIN, 100)),
        (B, limit(Side::Sell, COIN, 100)),
    ]);
    assert!(outcome.receipts.iter().all(|r| r.is_applied()));
    // S240-S290: matched and settled in the same block, both legs at once.
    let fills: Vec<_> = outcome.receipts[1]
        .events
        .iter()
        .filter(|e| matches!(e, Event::Fill { .. }))
        .collect();
    assert_eq!(fills.len(), 1);
    assert_eq!(holdings(&h, A), (100, 3 * COIN));
    assert_eq!(holdings(&h, B), (300, COIN));
    for member in [A, B] {
        for asset in [JPY, BTC] {
            assert_eq!(h.balance(member, asset).locked, Amount::ZERO);
        }
    }
    let trades = query::trades(&h.view, None, 10);
    assert_eq!(trades.len(), 1);
    assert_eq!((trades[0].buyer, trades[0].seller), (A, B));
    assert_eq!(
        (trades[0].quantity, trades[0].price, trades[0].value),
        (Amount(COIN), Amount(100), Amount(100))
    );
    // The increase/decrease information of the block (claim 15).
    let report = query::settlement_report(&h.view, Height(h.height)).expect("report stored");
    let line = |member, asset| {
        report
            .entries
            .iter()
            .find(|e| e.member == member && e.asset == asset && e.reason == ChangeReason::Fill)
            .map(|e| (e.increase.0, e.decrease.0))
            .unwrap()
    };
    assert_eq!(line(A, JPY), (0, 100));
    assert_eq!(line(A, BTC), (COIN, 0));
    assert_eq!(line(B, JPY), (100, 0));
    assert_eq!(line(B, BTC), (0, COIN));
    assert!(query::open_orders(&h.view, A).is_empty());
}

#[test]
fn opening_balances_are_credits_and_reported_at_height_zero() {
    let mut genesis = genesis(SettlementSettings::default());
    genesis
        .opening_balances
        .push(seisan_types::genesis::OpeningBalance {
            member: "exchange-a".into(),
            asset: "BTC".into(),
            amount: "1.5".into(),
        });
    let mut view = seisan_types::state::MapView::default();
    view.apply(&seisan_contracts::genesis_writes(&genesis));
    assert_eq!(query::balance(&view, A, BTC).inventory, Amount(150_000_000));
    let supply = query::asset_supply(&view, &genesis, BTC);
    assert_eq!(
        (supply.credited, supply.held),
        (Amount(150_000_000), Amount(150_000_000))
    );
    let report = query::settlement_report(&view, Height(0)).unwrap();
    assert_eq!(report.entries[0].reason, ChangeReason::Opening);
    seisan_contracts::invariants::check(&view, &genesis).unwrap();
}

#[test]
fn fiat_shortfall_is_parked_and_cured_by_a_later_credit() {
    let mut h = Harness::new();
    h.seed(&[(A, JPY, 50), (B, BTC, 2 * COIN)]);
    h.ok(B, limit(Side::Sell, COIN, 100));
    // S307/S308: A is 50 yen short; the order is parked with an additional trust request.
    let receipt = h.ok(A, limit(Side::Buy, COIN, 100));
    let raised = receipt.events.iter().find_map(|e| match e {
        Event::TopUpRaised {
            top_up,
            asset,
            needed,
            shortfall,
            subject,
            ..
        } => Some((*top_up, *asset, *needed, *shortfall, *subject)),
        _ => None,
    });
    let (top_up, asset, needed, shortfall, subject) = raised.expect("top-up raised");
    assert_eq!((asset, needed, shortfall), (JPY, Amount(100), Amount(50)));
    assert!(matches!(subject, TopUpSubject::Order { .. }));
    assert_eq!(count_fills(&receipt.events), 0);
    assert_eq!(h.balance(A, JPY).locked, Amount::ZERO);
    let open = query::open_top_ups(&h.view, A);
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, top_up);
    // S309-S312: a deposit of 30 is not enough; 20 more covers it and the order goes
    // live and fills by itself in that block.
    let events = h.deposit(A, JPY, 30);
    assert_eq!(count_fills(&events), 0);
    let events = h.deposit(A, JPY, 20);
    assert!(events.iter().any(|e| matches!(e, Event::TopUpCured { .. })));
    assert_eq!(count_fills(&events), 1);
    assert_eq!(holdings(&h, A), (0, COIN));
    assert_eq!(holdings(&h, B), (100, COIN));
    assert_eq!(
        query::top_up(&h.view, top_up).unwrap().status,
        TopUpStatus::Cured {
            height: Height(h.height)
        }
    );
    assert!(query::open_top_ups(&h.view, A).is_empty());
}

#[test]
fn coin_shortfall_expires_at_the_deadline_with_a_reason() {
    let mut h = Harness::with_settings(SettlementSettings {
        order_top_up_deadline_ms: 10_000,
        ..SettlementSettings::default()
    });
    h.seed(&[(B, BTC, COIN / 2), (A, JPY, 1000)]);
    let receipt = h.ok(B, limit(Side::Sell, COIN, 100));
    let order = query::open_orders(&h.view, B)[0].clone();
    let OrderStatus::AwaitingFunds { top_up } = order.status else {
        panic!("{order:?}")
    };
    let request = query::top_up(&h.view, top_up).unwrap();
    assert_eq!((request.asset, request.shortfall), (BTC, Amount(COIN / 2)));
    assert!(receipt
        .events
        .iter()
        .any(|e| matches!(e, Event::OrderParked { .. })));
    // A buyer arrives, but the parked sell is not in the book.
    let receipt = h.ok(A, limit(Side::Buy, COIN, 100));
    assert_eq!(count_fills(&receipt.events), 0);
    // Before the deadline nothing happens; at it, the request expires and the order is cancelled.
    assert!(h.idle(5_000).is_empty());
    let events = h.idle(5_000);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::TopUpExpired { top_up: t, .. } if *t == top_up)));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::OrderCancelled {
            reason: CancelReason::TopUpExpired { .. },
            ..
        }
    )));
    assert!(matches!(
        query::top_up(&h.view, top_up).unwrap().status,
        TopUpStatus::Expired { .. }
    ));
    assert_eq!(
        query::order(&h.view, order.id).unwrap().status,
        OrderStatus::Cancelled {
            reason: CancelReason::TopUpExpired { top_up }
        }
    );
    // A later deposit cures nothing.
    let events = h.deposit(B, BTC, COIN);
    assert_eq!(count_fills(&events), 0);
    assert_eq!(h.balance(B, BTC).inventory, Amount(COIN + COIN / 2));
}

#[test]
fn partial_fills_execute_at_the_resting_price_and_release_the_rest() {
    let mut h = Harness::new();
    h.seed(&[(A, JPY, 1000), (B, BTC, 3 * COIN), (C, JPY, 1000)]);
    h.ok(B, limit(Side::Sell, 3 * COIN, 100));
    // C bids higher than the ask: it pays the resting price, and gets back the rest of its lock.
    let receipt = h.ok(C, limit(Side::Buy, 3 * COIN / 2, 101));
    assert_eq!(count_fills(&receipt.events), 1);
    assert_eq!(
        h.balance(C, JPY),
        seisan_types::clearing::Balance {
            inventory: Amount(850),
            locked: Amount::ZERO,
            customers: Amount::ZERO
        }
    );
    assert_eq!(h.balance(C, BTC).inventory, Amount(3 * COIN / 2));
    let resting = query::book(&h.view, PAIR, Side::Sell, 10);
    assert_eq!(resting.len(), 1);
    assert_eq!(resting[0].remaining, Amount(3 * COIN / 2));
    assert_eq!(resting[0].locked, Amount(3 * COIN / 2));
    // A wants 2 BTC: takes the 1.5 left and rests 0.5 at its limit, with 50 yen locked.
    let receipt = h.ok(A, limit(Side::Buy, 2 * COIN, 100));
    assert_eq!(count_fills(&receipt.events), 1);
    assert!(query::book(&h.view, PAIR, Side::Sell, 10).is_empty());
    let bids = query::book(&h.view, PAIR, Side::Buy, 10);
    assert_eq!(
        (bids[0].member, bids[0].remaining, bids[0].locked),
        (A, Amount(COIN / 2), Amount(50))
    );
    assert_eq!(
        h.balance(A, JPY),
        seisan_types::clearing::Balance {
            inventory: Amount(800),
            locked: Amount(50),
            customers: Amount::ZERO
        }
    );
    assert_eq!(holdings(&h, B), (300, 0));
}

#[test]
fn rounding_is_down_and_buyer_pays_what_seller_gets() {
    let mut h = Harness::new();
    h.seed(&[(A, JPY, 1000), (B, BTC, COIN)]);
    // 0.333 BTC at 100 yen is 33.3 yen: 33.
    h.ok(B, limit(Side::Sell, 33_300_000, 100));
    h.ok(A, ioc(Side::Buy, 33_300_000, 100));
    let trade = query::trades(&h.view, None, 1).remove(0);
    assert_eq!(trade.value, Amount(33));
    assert_eq!(holdings(&h, A).0, 1000 - 33);
    assert_eq!(holdings(&h, B).0, 33);
    // An order worth less than one yen is refused.
    let receipt = h.tx(A, limit(Side::Buy, 1, 100));
    assert_eq!(rejected_code(&receipt), "value_below_minor_unit");
}

/// The quote values of an order's fills, in fill order.
fn fill_values(h: &Harness, order: u64) -> Vec<u128> {
    let mut trades = query::trades(&h.view, None, 100);
    trades.sort_by_key(|trade| trade.id);
    trades
        .iter()
        .filter(|trade| trade.buy_order.0 == order || trade.sell_order.0 == order)
        .map(|trade| trade.value.0)
        .collect()
}

#[test]
fn a_buy_order_split_over_fills_pays_its_exact_value_rounded_down() {
    // The case: 0.3 BTC at 99, 100 and 101 yen is exactly 29.7 + 30 + 30.3 =
    // 90 yen. Rounded down fill by fill it would cost 29 + 30 + 30 = 89.
    let mut h = Harness::new();
    h.seed(&[(A, JPY, 1000), (B, BTC, COIN), (C, BTC, COIN)]);
    h.ok(B, limit(Side::Sell, 30_000_000, 99)); // order 1
    h.ok(C, limit(Side::Sell, 30_000_000, 100)); // order 2
    h.ok(B, limit(Side::Sell, 30_000_000, 101)); // order 3
    let receipt = h.ok(A, ioc(Side::Buy, 90_000_000, 101)); // order 4
    assert_eq!(count_fills(&receipt.events), 3);
    let values = fill_values(&h, 4);
    assert_eq!(values.iter().sum::<u128>(), 90, "fills {values:?}");
    // Each fill is within one yen of its exact value, and the seller of each fill gets
    // exactly what the buyer paid for it.
    assert_eq!(values, vec![29, 30, 31]);
    assert_eq!(holdings(&h, A), (1000 - 90, 90_000_000));
    assert_eq!(holdings(&h, B).0, 29 + 31);
    assert_eq!(holdings(&h, C).0, 30);
    assert!(h.balance(A, JPY).locked.is_zero());
}

#[test]
fn a_resting_buy_carries_its_fraction_of_a_yen_across_blocks() {
    // A rests 1.05 BTC at 101 (exactly 106.05 yen, so it locks 106); three sells of
    // 0.35 in three blocks fill it at 35.35 yen each. The order pays 106 in all, not
    // 3 x 35 = 105, and releases nothing.
    let mut h = Harness::new();
    h.seed(&[(A, JPY, 1000), (B, BTC, COIN), (C, BTC, COIN)]);
    h.ok(A, limit(Side::Buy, 105_000_000, 101)); // order 1
    assert_eq!(h.balance(A, JPY).locked, Amount(106));
    h.ok(B, ioc(Side::Sell, 35_000_000, 100));
    h.ok(C, ioc(Side::Sell, 35_000_000, 101));
    assert_eq!(fill_values(&h, 1), vec![35, 35]);
    // 70.7 paid so far as 70: the order still holds 36 for the last 35.35.
    assert_eq!(h.balance(A, JPY).locked, Amount(36));
    h.ok(B, ioc(Side::Sell, 35_000_000, 99));
    assert_eq!(fill_values(&h, 1), vec![35, 35, 36]);
    assert_eq!(holdings(&h, A), (1000 - 106, 105_000_000));
    assert_eq!(holdings(&h, B).0 + holdings(&h, C).0, 106);
    assert!(h.balance(A, JPY).locked.is_zero());
}

#[test]
fn self_match_cancels_the_incoming_rest_and_keeps_earlier_fills() {
    let mut h = Harness::new();
    h.seed(&[(A, JPY, 1000), (A, BTC, COIN), (B, BTC, COIN)]);
    h.ok(B, limit(Side::Sell, COIN, 99));
    h.ok(A, limit(Side::Sell, COIN, 100));
    let receipt = h.ok(A, limit(Side::Buy, 2 * COIN, 100));
    assert_eq!(
        count_fills(&receipt.events),
        1,
        "B's ask fills, A's own ask does not"
    );
    assert!(receipt.events.iter().any(|e| matches!(
        e,
        Event::OrderCancelled {
            reason: CancelReason::SelfMatch,
            ..
        }
    )));
    let trades = query::trades(&h.view, None, 10);
    assert!(trades.iter().all(|t| t.buyer != t.seller));
    let asks = query::book(&h.view, PAIR, Side::Sell, 10);
    assert_eq!(
        (asks.len(), asks[0].member),
        (1, A),
        "A's own ask is untouched"
    );
    assert!(query::book(&h.view, PAIR, Side::Buy, 10).is_empty());
    assert_eq!(
        h.balance(A, JPY),
        seisan_types::clearing::Balance {
            inventory: Amount(901),
            locked: Amount::ZERO,
            customers: Amount::ZERO
        }
    );
}

#[test]
fn cancel_and_expiry_release_locks() {
    let mut h = Harness::new();
    h.seed(&[(A, JPY, 1000)]);
    h.ok(A, limit(Side::Buy, COIN, 300));
    assert_eq!(h.balance(A, JPY).locked, Amount(300));
    let order = query::open_orders(&h.view, A)[0].id;
    assert_eq!(
        rejected_code(&h.tx(B, TxBody::CancelOrder { order })),
        "not_order_owner"
    );
    h.ok(A, TxBody::CancelOrder { order });
    assert_eq!(h.balance(A, JPY).locked, Amount::ZERO);
    assert_eq!(
        rejected_code(&h.tx(A, TxBody::CancelOrder { order })),
        "order_not_open"
    );

    let expires_at_ms = h.now_ms + 3_000;
    h.ok(
        A,
        TxBody::PlaceOrder(OrderRequest {
            pair: PAIR,
            side: Side::Buy,
            quantity: Amount(COIN),
            limit_price: Amount(200),
            time_in_force: TimeInForce::GoodTillCancel,
            expires_at_ms: Some(expires_at_ms),
        }),
    );
    assert_eq!(h.balance(A, JPY).locked, Amount(200));
    let events = h.idle(2_000);
    assert!(events.iter().any(|e| matches!(e, Event::OrderCancelled { reason: CancelReason::Expired, released, .. } if *released == Amount(200))));
    assert_eq!(h.balance(A, JPY).inventory, Amount(1000));
}

#[test]
fn mismatched_confirmation_pair_reports_the_differing_fields_to_both() {
    let mut h = Harness::new();
    let terms = TradeTerms {
        trade_ref: "T-1".into(),
        buyer: A,
        seller: B,
        pair: PAIR,
        quantity: Amount(COIN),
        price: Amount(100),
        trade_time_ms: 5,
    };
    h.ok(A, TxBody::Confirm(terms.clone()));
    let mut wrong = terms.clone();
    wrong.quantity = Amount(2 * COIN);
    wrong.price = Amount(101);
    let receipt = h.ok(B, TxBody::Confirm(wrong));
    let mismatch = receipt.events.iter().find_map(|e| match e {
        Event::ConfirmationMismatched {
            parties,
            fields,
            confirmation,
            ..
        } => Some((*parties, fields.clone(), *confirmation)),
        _ => None,
    });
    let (parties, fields, id) = mismatch.expect("mismatch event");
    assert_eq!(parties, (A, B));
    assert_eq!(
        fields,
        vec![ConfirmationField::Quantity, ConfirmationField::Price]
    );
    assert_eq!(
        query::confirmation(&h.view, id).unwrap().status,
        ConfirmationStatus::Mismatched {
            fields: vec![ConfirmationField::Quantity, ConfirmationField::Price]
        }
    );
    // The trade goes back (S316 -> S301); resubmitted correctly, it matches.
    h.ok(B, TxBody::Confirm(terms.clone()));
    let receipt = h.ok(A, TxBody::Confirm(terms.clone()));
    assert!(receipt
        .events
        .iter()
        .any(|e| matches!(e, Event::ConfirmationMatched { .. })));
    // The same reference cannot be confirmed again.
    assert_eq!(
        rejected_code(&h.tx(A, TxBody::Confirm(terms))),
        "trade_ref_in_use"
    );
}

fn terms(
    reference: &str,
    buyer: seisan_types::MemberId,
    seller: seisan_types::MemberId,
    quantity: u128,
    price: u128,
) -> TradeTerms {
    TradeTerms {
        trade_ref: reference.into(),
        buyer,
        seller,
        pair: PAIR,
        quantity: Amount(quantity),
        price: Amount(price),
        trade_time_ms: 1,
    }
}

fn confirm_both(h: &mut Harness, t: &TradeTerms) {
    let outcome = h.block(vec![
        (t.buyer, TxBody::Confirm(t.clone())),
        (t.seller, TxBody::Confirm(t.clone())),
    ]);
    assert!(outcome.receipts.iter().all(|r| r.is_applied()));
    assert!(outcome.receipts[1]
        .events
        .iter()
        .any(|e| matches!(e, Event::ConfirmationMatched { .. })));
}

#[test]
fn netting_cycle_removes_the_short_member_and_settles_the_rest() {
    let mut h = Harness::with_settings(SettlementSettings {
        cycle_top_up_deadline_ms: 60_000,
        ..SettlementSettings::default()
    });
    h.seed(&[(A, JPY, 200), (B, BTC, 2 * COIN), (B, JPY, 100)]);
    // A ring A->B->C->A of 1 BTC at 100 nets to nothing; T4 leaves A paying 200 yen and
    // C delivering 1 BTC, which C does not have.
    confirm_both(&mut h, &terms("T1", A, B, COIN, 100));
    confirm_both(&mut h, &terms("T2", B, C, COIN, 100));
    confirm_both(&mut h, &terms("T3", C, A, COIN, 100));
    confirm_both(&mut h, &terms("T4", A, C, COIN, 200));
    // An unmatched one-sided confirmation is reported at the cut-off.
    h.ok(A, TxBody::Confirm(terms("T5", A, B, COIN, 100)));

    let receipt = h.ok(CH, TxBody::CloseCycle);
    assert!(receipt
        .events
        .iter()
        .any(|e| matches!(e, Event::ConfirmationUnmatched { member, .. } if *member == A)));
    let cycle = query::cycle(&h.view, seisan_types::clearing::CycleId(1)).unwrap();
    assert!(matches!(cycle.status, CycleStatus::Closing { .. }));
    assert_eq!(cycle.matched, 4);
    let netting: Vec<_> = cycle
        .netting
        .iter()
        .map(|n| (n.asset, n.gross.0, n.net.0, n.efficiency_bps))
        .collect();
    assert_eq!(
        netting,
        vec![(BTC, 4 * COIN, COIN, 7500), (JPY, 500, 200, 6000)]
    );
    let short = query::open_top_ups(&h.view, C);
    assert_eq!(short.len(), 1);
    assert_eq!((short[0].asset, short[0].shortfall), (BTC, Amount(COIN)));
    // A's payment is locked meanwhile.
    assert_eq!(h.balance(A, JPY).locked, Amount(200));
    assert_eq!(
        query::current_cycle(&h.view).unwrap().id,
        seisan_types::clearing::CycleId(2)
    );

    // C never tops up: at the deadline its trades leave, the rest is re-netted and settles.
    let events = h.idle(60_000);
    assert!(events.iter().any(|e| matches!(e, Event::CycleMemberRemoved { member, reason: RemovalReason::ShortAtDeadline { .. }, confirmations_removed: 3, .. } if *member == C)));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::CycleSettled { matched: 1, .. })));
    let cycle = query::cycle(&h.view, seisan_types::clearing::CycleId(1)).unwrap();
    assert!(matches!(cycle.status, CycleStatus::Settled { .. }));
    assert_eq!(cycle.removed.len(), 1);
    // Only T1 settled: A bought 1 BTC from B at 100.
    assert_eq!(holdings(&h, A), (100, COIN));
    assert_eq!(holdings(&h, B), (200, COIN));
    assert_eq!(holdings(&h, C), (0, 0));
    assert!(cycle.report.iter().any(|e| e.member == A
        && e.asset == JPY
        && e.decrease == Amount(100)
        && e.account == Account::Inventory));
    let statuses: Vec<_> = query::confirmations(&h.view, None, 10)
        .into_iter()
        .map(|c| (c.trade_ref, c.status))
        .collect();
    assert!(statuses
        .iter()
        .any(|(r, s)| r == "T1" && matches!(s, ConfirmationStatus::Settled { .. })));
    assert!(statuses
        .iter()
        .any(|(r, s)| r == "T4" && matches!(s, ConfirmationStatus::Removed { .. })));
    assert!(statuses
        .iter()
        .any(|(r, s)| r == "T5" && matches!(s, ConfirmationStatus::Unmatched { .. })));
}

#[test]
fn daily_cutoff_closes_the_cycle_and_a_top_up_settles_it_early() {
    let cutoff = 9 * 3_600_000;
    let mut h = Harness::with_settings(SettlementSettings {
        cutoff_time_of_day_ms: Some(cutoff),
        cycle_top_up_deadline_ms: 3_600_000,
        ..SettlementSettings::default()
    });
    h.seed(&[(B, BTC, COIN), (A, JPY, 40)]);
    confirm_both(&mut h, &terms("X", A, B, COIN, 100));
    // Run to just past the next 09:00 UTC.
    let day = seisan_types::genesis::DAY_MS;
    let next = (h.now_ms / day) * day + cutoff;
    let next = if next <= h.now_ms { next + day } else { next };
    let events = h.idle(next - h.now_ms);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::CycleClosed { .. })));
    assert!(events.iter().any(|e| matches!(e, Event::TopUpRaised { member, shortfall, .. } if *member == A && *shortfall == Amount(60))));
    // A tops up; the cycle settles in that block, before the deadline.
    let events = h.deposit(A, JPY, 60);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::CycleSettled { .. })));
    assert_eq!(holdings(&h, A), (0, COIN));
    assert_eq!(holdings(&h, B), (100, 0));
    // The next cut-off is a day later, not in the next block.
    assert!(h
        .idle(1000)
        .iter()
        .all(|e| !matches!(e, Event::CycleClosed { .. })));
}

#[test]
fn request_for_quote_settles_as_a_fill_and_withdraws_other_quotes() {
    let mut h = Harness::new();
    h.seed(&[(A, JPY, 50), (B, BTC, COIN), (C, BTC, COIN)]);
    let answer_by_ms = h.now_ms + 10_000;
    h.ok(
        A,
        TxBody::RequestQuote(QuoteRequest {
            pair: PAIR,
            side: Side::Buy,
            quantity: Amount(COIN),
            counterparties: vec![B, C],
            answer_by_ms,
        }),
    );
    let rfq = seisan_types::clearing::RfqId(1);
    let valid = h.now_ms + 20_000;
    assert_eq!(
        rejected_code(&h.tx(
            A,
            TxBody::AnswerQuote(QuoteAnswer {
                rfq,
                price: Amount(1),
                valid_until_ms: valid
            })
        )),
        "not_a_counterparty"
    );
    h.ok(
        B,
        TxBody::AnswerQuote(QuoteAnswer {
            rfq,
            price: Amount(100),
            valid_until_ms: valid,
        }),
    );
    h.ok(
        C,
        TxBody::AnswerQuote(QuoteAnswer {
            rfq,
            price: Amount(99),
            valid_until_ms: valid,
        }),
    );
    assert_eq!(h.balance(B, BTC).locked, Amount(COIN), "a firm quote locks");
    let quotes = query::rfq(&h.view, rfq).unwrap().quotes;
    let (quote_b, quote_c) = (quotes[0], quotes[1]);
    // A is short of yen: the acceptance is parked; a deposit settles it as a fill.
    let receipt = h.ok(A, TxBody::AcceptQuote { quote: quote_c });
    assert!(receipt
        .events
        .iter()
        .any(|e| matches!(e, Event::OrderParked { .. })));
    assert_eq!(
        rejected_code(&h.tx(A, TxBody::AcceptQuote { quote: quote_b })),
        "acceptance_pending"
    );
    let events = h.deposit(A, JPY, 49);
    assert_eq!(count_fills(&events), 1);
    assert_eq!(holdings(&h, A), (0, COIN));
    assert_eq!(holdings(&h, C), (99, 0));
    assert!(
        matches!(query::rfq(&h.view, rfq).unwrap().status, RfqStatus::Filled { quote, .. } if quote == quote_c)
    );
    assert_eq!(
        query::order(&h.view, quote_b).unwrap().status,
        OrderStatus::Cancelled {
            reason: CancelReason::RequestFilled
        }
    );
    assert_eq!(h.balance(B, BTC).locked, Amount::ZERO);
    assert_eq!(
        rejected_code(&h.tx(A, TxBody::AcceptQuote { quote: quote_b })),
        "rfq_filled"
    );
}

#[test]
fn quotes_lapse_and_cannot_be_taken_after() {
    let mut h = Harness::new();
    h.seed(&[(A, JPY, 500), (B, BTC, COIN)]);
    h.ok(
        A,
        TxBody::RequestQuote(QuoteRequest {
            pair: PAIR,
            side: Side::Buy,
            quantity: Amount(COIN),
            counterparties: vec![B],
            answer_by_ms: h.now_ms + 100_000,
        }),
    );
    let rfq = seisan_types::clearing::RfqId(1);
    h.ok(
        B,
        TxBody::AnswerQuote(QuoteAnswer {
            rfq,
            price: Amount(100),
            valid_until_ms: h.now_ms + 1_500,
        }),
    );
    let quote = OrderId(1);
    assert_eq!(h.balance(B, BTC).locked, Amount(COIN));
    h.idle(1_000);
    assert_eq!(h.balance(B, BTC).locked, Amount::ZERO);
    assert_eq!(
        rejected_code(&h.tx(A, TxBody::AcceptQuote { quote })),
        "quote_not_live"
    );
}

#[test]
fn allocations_move_between_inventory_and_customers_and_batches_are_atomic() {
    let mut h = Harness::new();
    h.seed(&[(A, JPY, 1000)]);
    let allocation = |customer: &str, amount: u128, direction| Allocation {
        asset: JPY,
        customer: CustomerId(customer.into()),
        amount: Amount(amount),
        direction,
    };
    h.ok(
        A,
        TxBody::Allocate(allocation("alice", 300, AllocationDirection::ToCustomer)),
    );
    assert_eq!(
        h.balance(A, JPY),
        seisan_types::clearing::Balance {
            inventory: Amount(700),
            locked: Amount::ZERO,
            customers: Amount(300)
        }
    );
    // The second allocation overdraws bob: the whole batch is rejected, nothing changes.
    let before = h.view.entries.clone();
    let receipt = h.tx(
        A,
        TxBody::AllocateBatch(vec![
            allocation("bob", 100, AllocationDirection::ToCustomer),
            allocation("bob", 200, AllocationDirection::ToInventory),
        ]),
    );
    assert_eq!(rejected_code(&receipt), "insufficient_customer");
    assert!(receipt.events.is_empty());
    let changed: Vec<_> = h
        .view
        .entries
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k[0])
        .collect();
    assert_eq!(
        changed,
        vec![seisan_contracts::keys::NONCE],
        "only the nonce moved"
    );
    h.ok(
        A,
        TxBody::AllocateBatch(vec![
            allocation("bob", 100, AllocationDirection::ToCustomer),
            allocation("alice", 50, AllocationDirection::ToInventory),
        ]),
    );
    let customers = query::customer_balances(&h.view, A, JPY, None, 10);
    let listed: Vec<_> = customers
        .iter()
        .map(|c| (c.customer.0.as_str(), c.amount.0))
        .collect();
    assert_eq!(listed, vec![("alice", 250), ("bob", 100)]);
    assert_eq!(h.balance(A, JPY).inventory, Amount(650));
    // Allocated funds cannot back an order.
    let receipt = h.ok(A, limit(Side::Buy, 7 * COIN, 100));
    assert!(receipt
        .events
        .iter()
        .any(|e| matches!(e, Event::OrderParked { .. })));
}

#[test]
fn envelope_rules_unknown_member_replays_and_roles() {
    let mut h = Harness::new();
    h.seed(&[(A, JPY, 1000)]);
    let signed = h.signed(A, limit(Side::Buy, COIN, 100));
    let next = signed.tx.nonce;
    // Skipping ahead is refused: a member's transactions apply in nonce order.
    let mut gap = signed.clone();
    gap.tx.nonce = seisan_types::Nonce(next.0 + 5);
    let ctx = seisan_contracts::BlockContext {
        height: Height(1),
        timestamp_ms: h.now_ms + 1,
        proposer: CH,
    };
    let mut stranger = signed.clone();
    stranger.tx.member = seisan_types::MemberId(99);
    let outcome = seisan_contracts::apply_block(
        &h.view,
        &h.genesis,
        &ctx,
        &[gap, signed.clone(), signed.clone(), stranger],
    );
    let codes: Vec<_> = outcome
        .receipts
        .iter()
        .map(|r| match &r.outcome {
            TxOutcome::Applied => "applied".to_string(),
            TxOutcome::Rejected { code, .. } => code.clone(),
        })
        .collect();
    assert_eq!(
        codes,
        vec!["nonce_gap", "applied", "repeated_nonce", "unknown_member"]
    );
    h.view.apply(&outcome.writes);
    h.check();
    assert_eq!(
        query::last_nonce(&h.view, A, seisan_types::tx::Lane::Member),
        Some(next)
    );
    // Roles: only the clearing house closes cycles; it does not trade.
    assert_eq!(rejected_code(&h.tx(B, TxBody::CloseCycle)), "wrong_role");
    assert_eq!(
        rejected_code(&h.tx(CH, limit(Side::Buy, COIN, 1))),
        "wrong_role"
    );
}

#[test]
fn withdrawals_debit_available_only() {
    let mut h = Harness::new();
    h.seed(&[(A, JPY, 100)]);
    h.ok(A, limit(Side::Buy, COIN, 60));
    let ctx = seisan_contracts::BlockContext {
        height: Height(h.height + 1),
        timestamp_ms: h.now_ms + 1,
        proposer: CH,
    };
    let mut ledger = seisan_contracts::Ledger::new(&h.view, &h.genesis, ctx);
    let error = ledger.withdraw(A, JPY, Amount(50)).unwrap_err();
    assert_eq!(error.code(), "insufficient_available");
    ledger.withdraw(A, JPY, Amount(40)).unwrap();
    let outcome = ledger.finish();
    h.view.apply(&outcome.writes);
    h.check();
    let supply = query::asset_supply(&h.view, &h.genesis, JPY);
    assert_eq!(
        (
            supply.credited.0,
            supply.debited.0,
            supply.held.0,
            supply.locked.0
        ),
        (100, 40, 60, 60)
    );
}
