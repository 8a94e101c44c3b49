//! Read-only endpoints over the committed state: balances (optionally with Merkle
//! proofs and the certified header they verify against), orders, the book, trades,
//! top-up requests, quotes, confirmations, settlement cycles, reports and supplies.

use super::api::{resolve_member, ApiContext, ApiError};
use super::pipeline::{read_block, read_certificate, read_tip};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Extension;
use axum::{Json, Router};
use seisan_api::Caller;
use seisan_contracts::{governance, query};
use seisan_types::clearing::{
    ConfirmationId, CycleId, OrderId, Pair, RfqId, Side, TopUpId, TradeId,
};
use seisan_types::governance::ProposalId;
use seisan_types::ids::{Height, MemberId};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The most items one page returns.
pub const MAX_PAGE: usize = 1000;

pub fn router() -> Router<ApiContext> {
    Router::new()
        .route("/v1/members/{member}/balances", get(balances))
        .route("/v1/members/{member}/customers/{asset}", get(customers))
        .route("/v1/members/{member}/orders", get(member_orders))
        .route("/v1/members/{member}/topups", get(member_top_ups))
        .route("/v1/orders/{id}", get(order))
        .route("/v1/book/{base}/{quote}", get(book))
        .route("/v1/trades", get(trades))
        .route("/v1/topups", get(top_ups))
        .route("/v1/quotes", get(quotes))
        .route("/v1/confirmations", get(confirmations))
        .route("/v1/cycles", get(cycles))
        .route("/v1/cycles/current", get(current_cycle))
        .route("/v1/reports/{height}", get(report))
        .route("/v1/supply", get(supply))
        .route("/v1/governance", get(governance))
        .route("/v1/governance/{id}", get(proposal))
}

/// Resolves a member given by name or by id through the membership in the committed
/// state (so members added by governance resolve too; a removed one still does, by
/// the id it keeps).
pub(super) fn resolve_member_in(context: &ApiContext, text: &str) -> Result<MemberId, ApiError> {
    let view = context.db.committed_view();
    let membership =
        seisan_contracts::governance::consortium_or_genesis(&view, &context.genesis).membership;
    if let Some((id, _)) = membership.member_by_name(text) {
        return Ok(id);
    }
    match text.parse::<u32>() {
        Ok(id) if membership.member(MemberId(id)).is_some() => Ok(MemberId(id)),
        _ => resolve_member(&context.genesis, text),
    }
}

pub(super) fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

pub(super) fn number(text: &str, what: &str) -> Result<u64, ApiError> {
    text.parse::<u64>().map_err(|_| {
        bad_request(
            "bad_number",
            format!("{what} {text:?} is not a whole number"),
        )
    })
}

/// `?after=N&limit=M` paging, 100 a page unless asked otherwise.
fn paging(params: &HashMap<String, String>) -> Result<(Option<u64>, usize), ApiError> {
    let after = params
        .get("after")
        .map(|text| number(text, "after"))
        .transpose()?;
    Ok((after, page_limit(params, 100)?))
}

/// `?limit=M`: 1 to [`MAX_PAGE`], `default` when absent.
pub(super) fn page_limit(
    params: &HashMap<String, String>,
    default: usize,
) -> Result<usize, ApiError> {
    let limit = match params.get("limit") {
        Some(text) => number(text, "limit")? as usize,
        None => default,
    };
    if limit == 0 || limit > MAX_PAGE {
        return Err(bad_request(
            "bad_limit",
            format!("limit must be 1 to {MAX_PAGE}"),
        ));
    }
    Ok(limit)
}

/// One page of what the caller may see: reads the source in [`MAX_PAGE`] chunks from
/// `after`, keeps the items `keep` allows, and stops at `limit` kept items or the end.
/// Returns them and, when the page is full, the cursor to go on from (the last kept
/// item's), so a member that sees few items still pages through everything.
pub(super) fn filtered_page<T, C>(
    mut after: Option<C>,
    limit: usize,
    fetch: impl Fn(Option<C>, usize) -> Vec<T>,
    cursor: impl Fn(&T) -> C,
    keep: impl Fn(&T) -> bool,
) -> (Vec<T>, Option<C>) {
    let mut kept = Vec::new();
    loop {
        let chunk = fetch(after.take(), MAX_PAGE);
        let exhausted = chunk.len() < MAX_PAGE;
        let last = chunk.last().map(&cursor);
        for item in chunk {
            if keep(&item) {
                kept.push(item);
                if kept.len() == limit {
                    let next = kept.last().map(&cursor);
                    return (kept, next);
                }
            }
        }
        if exhausted {
            return (kept, None);
        }
        after = last;
    }
}

fn asset_id(context: &ApiContext, symbol: &str) -> Result<seisan_types::AssetId, ApiError> {
    context
        .genesis
        .asset_by_symbol(&symbol.to_ascii_uppercase())
        .map(|(id, _)| id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_asset",
                format!("unknown asset {symbol:?}"),
            )
        })
}

async fn balances(
    State(context): State<ApiContext>,
    Path(member): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let member = resolve_member_in(&context, &member)?;
    let want_proof = params
        .get("proof")
        .is_some_and(|value| value == "true" || value == "1");
    if !want_proof {
        let view = context.db.committed_view();
        let balances = query::member_balances(&view, &context.genesis, member);
        let tip = read_tip(&context.db).expect("opened store has a tip");
        return Ok(Json(
            json!({"member": member, "height": tip.height, "balances": balances}),
        ));
    }
    // Read everything at one committed height.
    let _guard = context.commit_lock.read().expect("commit lock");
    proof_document(&context.db, &context.genesis, member).map(Json)
}

/// A member's balances at the committed tip with their Merkle proofs, the tip's header
/// and certificate, and the validator-set links since genesis: the document
/// `seisan balance --proof` verifies offline (`cli::proof::ProofDocument`). The caller
/// must keep the store from committing meanwhile (the commit lock's read side, or being
/// the committer), so every part is of one height.
pub(super) fn proof_document(
    db: &seisan_state::StateDb<seisan_state::SledBackend>,
    genesis: &seisan_types::Genesis,
    member: MemberId,
) -> Result<Value, ApiError> {
    let tip = read_tip(db).expect("opened store has a tip");
    if tip.height == Height(0) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_finalized_block",
            "no block is finalized yet; retry shortly",
        ));
    }
    let block = read_block(db, tip.height).expect("tip block stored");
    let certificate = read_certificate(db, tip.height).expect("tip certificate stored");
    let mut entries = Vec::new();
    for (index, asset) in genesis.assets.iter().enumerate() {
        let asset_id = seisan_types::AssetId(index as u32);
        let key = seisan_contracts::keys::balance(member, asset_id);
        let (value, proof) = db.prove(&key, tip.height).map_err(|error| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "proof_unavailable",
                error.to_string(),
            )
        })?;
        entries.push(json!({
            "asset": asset_id,
            "symbol": asset.symbol,
            "key": hex::encode(&key),
            "value": value.map(hex::encode),
            "proof": proof,
        }));
    }
    // The validator set certifying the tip may not be genesis's: one link per epoch
    // change since genesis (the last block of the epoch before, certified by that
    // epoch's validators, naming the hash of the next set), so a client holding only
    // the genesis file can follow the sets to the one that signed the tip.
    let current = seisan_contracts::governance::membership(&db.committed_view()).epoch;
    let mut epochs = Vec::new();
    for epoch in 1..=current.0 {
        let Some((last_height, set)) =
            super::pipeline::read_epoch_start(db, seisan_types::Epoch(epoch))
        else {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "proof_unavailable",
                format!("this node holds no record of where epoch {epoch} started"),
            ));
        };
        let last = read_block(db, last_height).expect("an epoch's last block is stored");
        let last_certificate =
            read_certificate(db, last_height).expect("an epoch's last block is certified");
        let seals: Vec<seisan_types::BlockHeader> = super::pipeline::read_seals(db, last_height)
            .into_iter()
            .map(|seal| seal.header)
            .collect();
        epochs.push(json!({
            "set": set,
            "last_header": last.header,
            "certificate": last_certificate,
            "seals": seals,
        }));
    }
    Ok(json!({
        "member": member,
        "height": tip.height,
        "header": block.header,
        "certificate": certificate,
        "epochs": epochs,
        "balances": entries,
    }))
}

async fn customers(
    State(context): State<ApiContext>,
    Path((member, asset)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let member = resolve_member_in(&context, &member)?;
    let asset = asset_id(&context, &asset)?;
    let view = context.db.committed_view();
    Ok(Json(
        json!({"customers": query::customer_balances(&view, member, asset, None, MAX_PAGE)}),
    ))
}

async fn member_orders(
    State(context): State<ApiContext>,
    Path(member): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let member = resolve_member_in(&context, &member)?;
    Ok(Json(
        json!({"orders": query::open_orders(&context.db.committed_view(), member)}),
    ))
}

async fn member_top_ups(
    State(context): State<ApiContext>,
    Path(member): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let member = resolve_member_in(&context, &member)?;
    Ok(Json(
        json!({"top_ups": query::open_top_ups(&context.db.committed_view(), member)}),
    ))
}

async fn order(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = OrderId(number(&id, "order id")?);
    let order = query::order(&context.db.committed_view(), id).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no order {id}"))
    })?;
    if !caller.may_read(order.member) {
        return Err(caller
            .refuse(format!(
                "order {id} is another member's, and an exchange reads only its own orders (its resting part shows in the book)"
            ))
            .into());
    }
    Ok(Json(json!({ "order": order })))
}

async fn book(
    State(context): State<ApiContext>,
    Path((base, quote)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let name = format!("{base}/{quote}");
    let (base, quote) = context.genesis.pair_by_name(&name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_pair",
            format!("unknown pair {name}"),
        )
    })?;
    let pair = Pair { base, quote };
    let view = context.db.committed_view();
    Ok(Json(json!({
        "pair": name.to_ascii_uppercase(),
        "bids": query::book(&view, pair, Side::Buy, MAX_PAGE),
        "asks": query::book(&view, pair, Side::Sell, MAX_PAGE),
    })))
}

async fn trades(
    State(context): State<ApiContext>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (after, limit) = paging(&params)?;
    Ok(Json(
        json!({"trades": query::trades(&context.db.committed_view(), after.map(TradeId), limit)}),
    ))
}

/// Top-up requests: an exchange sees its own, operators every member's.
async fn top_ups(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (after, limit) = paging(&params)?;
    let view = context.db.committed_view();
    let (top_ups, _) = filtered_page(
        after.map(TopUpId),
        limit,
        |after, chunk| query::top_ups(&view, after, chunk),
        |top_up| top_up.id,
        |top_up| caller.may_read(top_up.member),
    );
    Ok(Json(json!({ "top_ups": top_ups })))
}

async fn quotes(
    State(context): State<ApiContext>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (after, limit) = paging(&params)?;
    Ok(Json(
        json!({"quotes": query::rfqs(&context.db.committed_view(), after.map(RfqId), limit)}),
    ))
}

/// Bilateral trade confirmations: an exchange sees those it is a party to.
async fn confirmations(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (after, limit) = paging(&params)?;
    let view = context.db.committed_view();
    let (confirmations, _) = filtered_page(
        after.map(ConfirmationId),
        limit,
        |after, chunk| query::confirmations(&view, after, chunk),
        |confirmation| confirmation.id,
        |confirmation| caller.may_read_any(&[confirmation.parties.0, confirmation.parties.1]),
    );
    Ok(Json(json!({ "confirmations": confirmations })))
}

async fn cycles(
    State(context): State<ApiContext>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (after, limit) = paging(&params)?;
    Ok(Json(
        json!({"cycles": query::cycles(&context.db.committed_view(), after.map(CycleId), limit)}),
    ))
}

async fn current_cycle(State(context): State<ApiContext>) -> Json<Value> {
    Json(json!({"cycle": query::current_cycle(&context.db.committed_view())}))
}

async fn report(
    State(context): State<ApiContext>,
    Path(height): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let height = Height(number(&height, "height")?);
    Ok(Json(
        json!({"height": height, "report": query::settlement_report(&context.db.committed_view(), height)}),
    ))
}

/// The membership that governs the next block, the scheduled changes and a page of
/// proposals (`?after=ID&limit=N`, in id order).
async fn governance(
    State(context): State<ApiContext>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (after, limit) = paging(&params)?;
    let _guard = context.commit_lock.read().expect("commit lock");
    let view = context.db.committed_view();
    let tip = read_tip(&context.db).expect("opened store has a tip");
    let config = governance::consortium_or_genesis(&view, &context.genesis);
    let scheduled: Vec<Value> = governance::scheduled_activations(&view)
        .into_iter()
        .map(|(height, id)| json!({"activation_height": height, "proposal": id}))
        .collect();
    Ok(Json(json!({
        "height": tip.height,
        "membership": config.membership,
        "validator_set_hash": config.membership.validator_set().hash(),
        "scheduled": scheduled,
        "proposals": governance::proposals(&view, after.map(ProposalId), limit),
    })))
}

async fn proposal(
    State(context): State<ApiContext>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = ProposalId(number(&id, "proposal id")?);
    match governance::proposal(&context.db.committed_view(), id) {
        Some(proposal) => Ok(Json(json!({ "proposal": proposal }))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("proposal {id} does not exist"),
        )),
    }
}

async fn supply(State(context): State<ApiContext>) -> Json<Value> {
    // Under the commit lock's read side, so the sums are of one committed height.
    let _guard = context.commit_lock.read().expect("commit lock");
    let view = context.db.committed_view();
    let tip = read_tip(&context.db).expect("opened store has a tip");
    Json(
        json!({"height": tip.height, "state_root": tip.state_root, "assets": query::supplies(&view, &context.genesis)}),
    )
}
