//! Read functions over a state view, for the HTTP API (S220 balance inquiry and the
//! rest). Every returned type is serde (JSON for the API). Lists are paged: pass the
//! last id of the previous page as `start_after`; `limit` is capped at
//! [`MAX_QUERY_LIMIT`].

use crate::keys;
use crate::ledger::Meta;
use seisan_types::clearing::{
    AssetBalance, AssetTotals, Balance, Confirmation, ConfirmationId, CustomerBalance, Cycle,
    CycleId, Order, OrderId, Pair, Rfq, RfqId, SettlementReport, Side, TopUpId, TopUpRequest,
    Trade, TradeId,
};
use seisan_types::codec;
use seisan_types::state::StateView;
use seisan_types::tx::{CustomerId, Lane};
use seisan_types::{Amount, AssetId, Genesis, Height, MemberId, Nonce};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The most items one query returns.
pub const MAX_QUERY_LIMIT: usize = 1000;

fn get<V: DeserializeOwned + Serialize>(view: &dyn StateView, key: &[u8]) -> Option<V> {
    view.get(key).map(|bytes| {
        codec::decode(&bytes)
            .unwrap_or_else(|error| panic!("undecodable state at {key:?}: {error}"))
    })
}

fn page<V: DeserializeOwned + Serialize>(
    view: &dyn StateView,
    table: u8,
    start_after: Option<u64>,
    limit: usize,
) -> Vec<V> {
    let after = start_after.map(|id| {
        let mut key = vec![table];
        key.extend_from_slice(&id.to_be_bytes());
        key
    });
    view.scan(&[table], after.as_deref(), limit.min(MAX_QUERY_LIMIT))
        .into_iter()
        .map(|(key, bytes)| {
            codec::decode(&bytes)
                .unwrap_or_else(|error| panic!("undecodable state at {key:?}: {error}"))
        })
        .collect()
}

/// The contracts' counters and current cycle (`None` before genesis writes).
pub fn meta(view: &dyn StateView) -> Option<Meta> {
    get(view, &keys::meta())
}

/// The member's last applied nonce in one lane; the lane's next transaction needs
/// exactly the next one (`None`: the lane has none yet, its first nonce is 1).
pub fn last_nonce(view: &dyn StateView, member: MemberId, lane: Lane) -> Option<Nonce> {
    get(view, &keys::nonce(member, lane))
}

pub fn balance(view: &dyn StateView, member: MemberId, asset: AssetId) -> Balance {
    get(view, &keys::balance(member, asset)).unwrap_or_default()
}

/// The member's balance in every asset of the consortium.
pub fn member_balances(
    view: &dyn StateView,
    genesis: &Genesis,
    member: MemberId,
) -> Vec<AssetBalance> {
    crate::governance::consortium_or_genesis(view, genesis)
        .assets
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let asset = AssetId(index as u32);
            AssetBalance {
                asset,
                symbol: spec.symbol.clone(),
                balance: balance(view, member, asset),
            }
        })
        .collect()
}

/// The member's customer sub-accounts in one asset, by customer id.
pub fn customer_balances(
    view: &dyn StateView,
    member: MemberId,
    asset: AssetId,
    start_after: Option<&CustomerId>,
    limit: usize,
) -> Vec<CustomerBalance> {
    let prefix = keys::customer_prefix(member, asset);
    let after = start_after.map(|customer| keys::customer(member, asset, &customer.0));
    view.scan(&prefix, after.as_deref(), limit.min(MAX_QUERY_LIMIT))
        .into_iter()
        .map(|(key, bytes)| CustomerBalance {
            customer: CustomerId(String::from_utf8_lossy(&key[prefix.len()..]).into_owned()),
            amount: codec::decode(&bytes).expect("customer balance decodes"),
        })
        .collect()
}

/// One asset's supply: what was credited and debited, and what members hold. The
/// conservation invariant says `held == credited - debited`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetSupply {
    pub asset: AssetId,
    pub symbol: String,
    pub credited: Amount,
    pub debited: Amount,
    /// Sum over members of inventory + locked + customers.
    pub held: Amount,
    pub locked: Amount,
}

pub fn asset_supply(view: &dyn StateView, genesis: &Genesis, asset: AssetId) -> AssetSupply {
    let config = crate::governance::consortium_or_genesis(view, genesis);
    let totals: AssetTotals = get(view, &keys::totals(asset)).unwrap_or_default();
    let mut held = Amount::ZERO;
    let mut locked = Amount::ZERO;
    for index in 0..config.member_count() {
        let balance = balance(view, MemberId(index as u32), asset);
        held = held
            .checked_add(balance.total().expect("balance within supply"))
            .expect("holdings within supply");
        locked = locked
            .checked_add(balance.locked)
            .expect("locks within supply");
    }
    AssetSupply {
        asset,
        symbol: config
            .asset(asset)
            .map(|spec| spec.symbol.clone())
            .unwrap_or_default(),
        credited: totals.credited,
        debited: totals.debited,
        held,
        locked,
    }
}

/// [`asset_supply`] of every asset of the consortium.
pub fn supplies(view: &dyn StateView, genesis: &Genesis) -> Vec<AssetSupply> {
    let count = crate::governance::consortium_or_genesis(view, genesis)
        .assets
        .len();
    (0..count)
        .map(|index| asset_supply(view, genesis, AssetId(index as u32)))
        .collect()
}

pub fn order(view: &dyn StateView, id: OrderId) -> Option<Order> {
    get(view, &keys::order(id))
}

/// Every order, quote and acceptance of the member that is live or awaiting funds.
pub fn open_orders(view: &dyn StateView, member: MemberId) -> Vec<Order> {
    let prefix = keys::member_order_prefix(member);
    let mut found = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let batch = view.scan(&prefix, after.as_deref(), MAX_QUERY_LIMIT);
        let complete = batch.len() < MAX_QUERY_LIMIT;
        for (key, _) in &batch {
            let id = OrderId(keys::trailing_u64(key));
            found.push(order(view, id).expect("indexed order exists"));
        }
        match batch.last() {
            Some((key, _)) if !complete => after = Some(key.clone()),
            _ => break,
        }
    }
    found
}

/// The best `limit` resting orders of one side of a book, in price-time priority.
pub fn book(view: &dyn StateView, pair: Pair, side: Side, limit: usize) -> Vec<Order> {
    view.scan(
        &keys::book_prefix(pair, side),
        None,
        limit.min(MAX_QUERY_LIMIT),
    )
    .into_iter()
    .map(|(_, bytes)| {
        let id: OrderId = codec::decode(&bytes).expect("book entry decodes");
        order(view, id).expect("book entry names an existing order")
    })
    .collect()
}

pub fn trade(view: &dyn StateView, id: TradeId) -> Option<Trade> {
    get(view, &keys::trade(id))
}

/// Fills in id order.
pub fn trades(view: &dyn StateView, start_after: Option<TradeId>, limit: usize) -> Vec<Trade> {
    page(view, keys::TRADE, start_after.map(|id| id.0), limit)
}

pub fn top_up(view: &dyn StateView, id: TopUpId) -> Option<TopUpRequest> {
    get(view, &keys::top_up(id))
}

/// Top-up requests in id order, whatever their status.
pub fn top_ups(
    view: &dyn StateView,
    start_after: Option<TopUpId>,
    limit: usize,
) -> Vec<TopUpRequest> {
    page(view, keys::TOP_UP, start_after.map(|id| id.0), limit)
}

/// The member's open top-up requests, by asset then id.
pub fn open_top_ups(view: &dyn StateView, member: MemberId) -> Vec<TopUpRequest> {
    let mut prefix = vec![keys::OPEN_TOP_UP];
    prefix.extend_from_slice(&member.0.to_be_bytes());
    view.scan(&prefix, None, MAX_QUERY_LIMIT)
        .into_iter()
        .map(|(key, _)| {
            top_up(view, TopUpId(keys::trailing_u64(&key))).expect("indexed top-up exists")
        })
        .collect()
}

pub fn rfq(view: &dyn StateView, id: RfqId) -> Option<Rfq> {
    get(view, &keys::rfq(id))
}

pub fn rfqs(view: &dyn StateView, start_after: Option<RfqId>, limit: usize) -> Vec<Rfq> {
    page(view, keys::RFQ, start_after.map(|id| id.0), limit)
}

pub fn confirmation(view: &dyn StateView, id: ConfirmationId) -> Option<Confirmation> {
    get(view, &keys::confirmation(id))
}

pub fn confirmations(
    view: &dyn StateView,
    start_after: Option<ConfirmationId>,
    limit: usize,
) -> Vec<Confirmation> {
    page(view, keys::CONFIRMATION, start_after.map(|id| id.0), limit)
}

/// A settlement cycle with its positions, gross/net/efficiency and report.
pub fn cycle(view: &dyn StateView, id: CycleId) -> Option<Cycle> {
    get(view, &keys::cycle(id))
}

pub fn cycles(view: &dyn StateView, start_after: Option<CycleId>, limit: usize) -> Vec<Cycle> {
    page(view, keys::CYCLE, start_after.map(|id| id.0), limit)
}

/// The cycle collecting confirmations now.
pub fn current_cycle(view: &dyn StateView) -> Option<Cycle> {
    cycle(view, meta(view)?.current_cycle)
}

/// What block `height` changed per member, asset, account and reason (`None` if it
/// changed no balance).
pub fn settlement_report(view: &dyn StateView, height: Height) -> Option<SettlementReport> {
    get(view, &keys::report(height))
}
