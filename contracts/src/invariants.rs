//! A full check of the ledger invariants over a state view, for tests and simulations.
//! It scans whole tables, so it is for test-sized states, not for every block of a
//! production node.
//!
//! Checked: per-asset conservation (members' inventory + locked + customers equals
//! credited minus debited); each balance's customers total equals its customer
//! sub-accounts; each (member, asset) lock equals what the member's open orders hold
//! plus its covered payments in closing cycles; live orders hold at least what their
//! remaining quantity needs (a buy's with its value remainder) and parked ones hold
//! nothing and have an open top-up; the value rule: every buy order has paid, over its
//! fills, exactly their exact value rounded down, and keeps (while open) exactly the
//! fraction left as its value remainder, stored only when not zero; every book entry
//! is a live limit order at its key; no book is crossed; the open top-up index lists
//! exactly the open requests.

use crate::keys;
use crate::orders::fill_value;
use crate::query;
use seisan_types::clearing::{
    Balance, Cycle, CycleStatus, Order, OrderKind, OrderStatus, Side, TopUpRequest, TopUpStatus,
    Trade,
};
use seisan_types::codec;
use seisan_types::state::{StateView, MAX_SCAN_LIMIT};
use seisan_types::{Amount, AssetId, Genesis, MemberId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

fn scan_all(view: &dyn StateView, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut all = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let batch = view.scan(prefix, after.as_deref(), MAX_SCAN_LIMIT);
        let complete = batch.len() < MAX_SCAN_LIMIT;
        after = batch.last().map(|(key, _)| key.clone());
        all.extend(batch);
        if complete {
            return all;
        }
    }
}

fn values<V: DeserializeOwned + Serialize>(view: &dyn StateView, table: u8) -> Vec<V> {
    scan_all(view, &[table])
        .into_iter()
        .map(|(_, bytes)| codec::decode(&bytes).expect("state value decodes"))
        .collect()
}

fn add(map: &mut BTreeMap<(MemberId, AssetId), u128>, key: (MemberId, AssetId), amount: Amount) {
    *map.entry(key).or_insert(0) += amount.0;
}

/// Checks every invariant in the module docs; the error names the first one broken.
pub fn check(view: &dyn StateView, genesis: &Genesis) -> Result<(), String> {
    let config = crate::governance::consortium_or_genesis(view, genesis);
    config
        .membership
        .validate()
        .map_err(|error| format!("the membership in state is invalid: {error}"))?;
    for supply in query::supplies(view, genesis) {
        let outstanding = supply
            .credited
            .checked_sub(supply.debited)
            .ok_or_else(|| format!("asset {}: debited more than credited", supply.asset))?;
        if supply.held != outstanding {
            return Err(format!(
                "asset {}: members hold {} but credits minus debits is {}",
                supply.asset, supply.held, outstanding
            ));
        }
    }

    let mut customers: BTreeMap<(MemberId, AssetId), u128> = BTreeMap::new();
    for (key, bytes) in scan_all(view, &[keys::CUSTOMER]) {
        let member = MemberId(u32::from_be_bytes(key[1..5].try_into().expect("4 bytes")));
        let asset = AssetId(u32::from_be_bytes(key[5..9].try_into().expect("4 bytes")));
        let amount: Amount = codec::decode(&bytes).expect("customer amount decodes");
        if amount.is_zero() {
            return Err(format!("zero customer balance stored at {key:?}"));
        }
        add(&mut customers, (member, asset), amount);
    }

    let scale = |asset: AssetId| config.asset(asset).expect("consortium asset").scale;
    let mut expected_locks: BTreeMap<(MemberId, AssetId), u128> = BTreeMap::new();
    let orders: Vec<Order> = values(view, keys::ORDER);
    let mut open_top_up_ids = BTreeSet::new();
    let open_buys: BTreeSet<u64> = orders
        .iter()
        .filter(|order| order.side == Side::Buy && order.status.is_open())
        .map(|order| order.id.0)
        .collect();
    for (key, bytes) in scan_all(view, &[keys::VALUE_REMAINDER]) {
        let order = keys::trailing_u64(&key);
        if !open_buys.contains(&order) {
            return Err(format!(
                "a value remainder is kept for order {order}, which is not an open buy"
            ));
        }
        let remainder: Amount = codec::decode(&bytes).expect("value remainder decodes");
        if remainder.is_zero() {
            return Err(format!(
                "a zero value remainder is stored for order {order}"
            ));
        }
    }
    // Per buy order, over its fills: (exact value numerator, paid).
    let mut buy_fills: BTreeMap<u64, (u128, u128)> = BTreeMap::new();
    for trade in values::<Trade>(view, keys::TRADE) {
        let fills = buy_fills.entry(trade.buy_order.0).or_insert((0, 0));
        fills.0 = trade
            .quantity
            .0
            .checked_mul(trade.price.0)
            .and_then(|exact| fills.0.checked_add(exact))
            .ok_or_else(|| format!("trade {} value overflows", trade.id))?;
        fills.1 = fills
            .1
            .checked_add(trade.value.0)
            .ok_or_else(|| format!("trade {} value overflows", trade.id))?;
    }
    for order in &orders {
        let indexed = view
            .get(&keys::member_order(order.member, order.id))
            .is_some();
        if indexed != order.status.is_open() {
            return Err(format!(
                "order {} open-index entry disagrees with its status",
                order.id
            ));
        }
        let asset = order.locked_asset();
        let remainder: Amount = view
            .get(&keys::value_remainder(order.id))
            .map(|bytes| codec::decode(&bytes).expect("value remainder decodes"))
            .unwrap_or(Amount::ZERO);
        if !remainder.is_zero() {
            if order.side != Side::Buy || !order.status.is_open() {
                return Err(format!(
                    "order {} keeps a value remainder but is not an open buy",
                    order.id
                ));
            }
            if order.remaining == order.quantity {
                return Err(format!(
                    "order {} keeps a value remainder before any fill",
                    order.id
                ));
            }
            if remainder.0 >= 10u128.pow(scale(order.pair.base)) {
                return Err(format!(
                    "order {} keeps a value remainder of a whole minor unit or more",
                    order.id
                ));
            }
        }
        if order.side == Side::Buy {
            let divisor = 10u128.pow(scale(order.pair.base));
            let (exact, paid) = buy_fills.get(&order.id.0).copied().unwrap_or((0, 0));
            if paid != exact / divisor {
                return Err(format!(
                    "buy order {} paid {paid} for fills worth exactly {exact}/{divisor}",
                    order.id
                ));
            }
            if order.status.is_open() && remainder.0 != exact % divisor {
                return Err(format!(
                    "buy order {} keeps a value remainder of {} but its fills leave {}",
                    order.id,
                    remainder,
                    exact % divisor
                ));
            }
        }
        let needed = match order.side {
            Side::Sell => order.remaining,
            Side::Buy => {
                fill_value(
                    remainder,
                    order.remaining,
                    order.limit_price,
                    scale(order.pair.base),
                )
                .ok_or_else(|| format!("order {} value overflows", order.id))?
                .0
            }
        };
        match order.status {
            OrderStatus::Live => {
                if order.locked < needed {
                    return Err(format!(
                        "order {} holds {} but needs {}",
                        order.id, order.locked, needed
                    ));
                }
                add(&mut expected_locks, (order.member, asset), order.locked);
                let in_book = order.kind == OrderKind::Limit;
                let key = keys::book(
                    order.pair,
                    order.side,
                    order.limit_price,
                    order.book_sequence,
                );
                if in_book != view.get(&key).is_some() {
                    return Err(format!("live order {} and the book disagree", order.id));
                }
            }
            OrderStatus::AwaitingFunds { top_up } => {
                if !order.locked.is_zero() {
                    return Err(format!("parked order {} holds a lock", order.id));
                }
                open_top_up_ids.insert(top_up);
            }
            OrderStatus::Filled | OrderStatus::Cancelled { .. } => {
                if !order.locked.is_zero() {
                    return Err(format!("closed order {} still holds a lock", order.id));
                }
            }
        }
    }
    let cycles: Vec<Cycle> = values(view, keys::CYCLE);
    for cycle in &cycles {
        let closing = matches!(cycle.status, CycleStatus::Closing { .. });
        if closing != view.get(&keys::closing_cycle(cycle.id)).is_some() {
            return Err(format!("cycle {} closing index disagrees", cycle.id));
        }
        if closing {
            for position in &cycle.positions {
                if position.covered {
                    add(
                        &mut expected_locks,
                        (position.member, position.asset),
                        position.pay,
                    );
                } else {
                    let top_up = position.top_up.ok_or("short position without a top-up")?;
                    let request = query::top_up(view, top_up).ok_or("missing top-up")?;
                    if request.status == TopUpStatus::Open {
                        open_top_up_ids.insert(top_up);
                    }
                }
            }
        }
    }

    for (key, bytes) in scan_all(view, &[keys::BALANCE]) {
        let member = MemberId(u32::from_be_bytes(key[1..5].try_into().expect("4 bytes")));
        let asset = AssetId(u32::from_be_bytes(key[5..9].try_into().expect("4 bytes")));
        let balance: Balance = codec::decode(&bytes).expect("balance decodes");
        let sub_accounts = customers.remove(&(member, asset)).unwrap_or(0);
        if balance.customers.0 != sub_accounts {
            return Err(format!(
                "{member}/{asset}: customers total {} but sub-accounts sum to {sub_accounts}",
                balance.customers
            ));
        }
        let locks = expected_locks.remove(&(member, asset)).unwrap_or(0);
        if balance.locked.0 != locks {
            return Err(format!(
                "{member}/{asset}: locked {} but open items hold {locks}",
                balance.locked
            ));
        }
    }
    if let Some((key, amount)) = customers.into_iter().next() {
        return Err(format!(
            "{key:?}: customer sub-accounts of {amount} without a balance"
        ));
    }
    if let Some((key, amount)) = expected_locks.into_iter().find(|(_, amount)| *amount > 0) {
        return Err(format!(
            "{key:?}: open items hold {amount} without a balance"
        ));
    }

    let top_ups: Vec<TopUpRequest> = values(view, keys::TOP_UP);
    for request in &top_ups {
        let open = request.status == TopUpStatus::Open;
        let indexed = view
            .get(&keys::open_top_up(
                request.member,
                request.asset,
                request.id,
            ))
            .is_some();
        if open != indexed || open != open_top_up_ids.contains(&request.id) {
            return Err(format!(
                "top-up {} open state disagrees with indexes or subject",
                request.id
            ));
        }
    }

    for (base, quote) in config.pair_ids() {
        let pair = seisan_types::clearing::Pair { base, quote };
        for side in [Side::Buy, Side::Sell] {
            for (key, bytes) in scan_all(view, &keys::book_prefix(pair, side)) {
                let id = codec::decode(&bytes).expect("book entry decodes");
                let order = query::order(view, id).ok_or("book names a missing order")?;
                if order.status != OrderStatus::Live || order.kind != OrderKind::Limit {
                    return Err(format!("book entry for non-live order {id}"));
                }
                if key != keys::book(pair, side, order.limit_price, order.book_sequence) {
                    return Err(format!("order {id} is at the wrong book key"));
                }
            }
        }
        let bid = query::book(view, pair, Side::Buy, 1).pop();
        let ask = query::book(view, pair, Side::Sell, 1).pop();
        if let (Some(bid), Some(ask)) = (bid, ask) {
            if bid.limit_price >= ask.limit_price {
                return Err(format!(
                    "book {base}/{quote} is crossed: bid {} ask {}",
                    bid.limit_price, ask.limit_price
                ));
            }
        }
    }
    Ok(())
}
