//! Read-only endpoints over the committed state: balances (optionally with Merkle
//! proofs and the certified header they verify against), orders, the book, trades,
//! top-up requests, quotes, confirmations, settlement cycles, reports and supplies.

use super::api::{resolve_member, ApiContext, ApiError};
use super::pipeline::{read_block, read_certificate, read_tip};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use seisan_api::v1;
use seisan_api::Caller;
use seisan_contracts::{governance, query};
use seisan_types::clearing::{
    ConfirmationId, CycleId, OrderId, Pair, RfqId, Side, TopUpId, TradeId,
};
use seisan_types::governance::ProposalId;
use seisan_types::ids::{Height, MemberId};
use std::collections::HashMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The most items one page returns.
pub const MAX_PAGE: usize = 1000;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(balances))
        .routes(routes!(customers))
        .routes(routes!(member_orders))
        .routes(routes!(member_top_ups))
        .routes(routes!(order))
        .routes(routes!(book))
        .routes(routes!(trades))
        .routes(routes!(top_ups))
        .routes(routes!(quotes))
        .routes(routes!(confirmations))
        .routes(routes!(cycles))
        .routes(routes!(current_cycle))
        .routes(routes!(report))
        .routes(routes!(supply))
        .routes(routes!(governance))
        .routes(routes!(proposal))
}

/// `?after=N&limit=M` paging, documented once for every paged list.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Read through the raw query map (its errors name the parameter).
struct Paging {
    /// List from after this id (exclusive).
    #[param(minimum = 0)]
    after: Option<u64>,
    /// At most this many items (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
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

/// A member's balance in every asset at the committed tip; with `proof=true`, also
/// the Merkle proofs, the tip's header and certificate and the validator-set links
/// since genesis (what `seisan balance --proof` verifies offline).
#[utoipa::path(get, path = "/v1/members/{member}/balances", tag = "balances",
    params(("member" = String, Path, description = "A member's name or id"), ("proof" = Option<bool>, Query, description = "`true` (or `1`) for the proof document")),
    responses(
        (status = 200, description = "The balances (without proof), or the proof document (proof=true)", body = v1::BalancesAnswer),
        (status = 404, description = "No such member", body = v1::ErrorBody),
        (status = 409, description = "`no_finalized_block`: nothing to prove against yet", body = v1::ErrorBody),
        (status = 503, description = "`proof_unavailable`: the node cannot prove at the committed height right now", body = v1::ErrorBody),
    ))]
async fn balances(
    State(context): State<ApiContext>,
    Path(member): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<v1::BalancesAnswer>, ApiError> {
    let member = resolve_member_in(&context, &member)?;
    let want_proof = params
        .get("proof")
        .is_some_and(|value| value == "true" || value == "1");
    if !want_proof {
        let view = context.db.committed_view();
        let balances = query::member_balances(&view, &context.genesis, member);
        let tip = read_tip(&context.db).expect("opened store has a tip");
        return Ok(Json(v1::BalancesAnswer::Plain(v1::Balances {
            member,
            height: tip.height,
            balances,
        })));
    }
    // Read everything at one committed height.
    let _guard = context.commit_lock.read().expect("commit lock");
    proof_document(&context.db, &context.genesis, member)
        .map(|proof| Json(v1::BalancesAnswer::Proof(Box::new(proof))))
}

/// A member's balances at the committed tip with their Merkle proofs, the tip's header
/// and certificate, and the validator-set links since genesis: the document
/// `seisan balance --proof` verifies offline (`v1::BalanceProof`). The caller
/// must keep the store from committing meanwhile (the commit lock's read side, or being
/// the committer), so every part is of one height.
pub(super) fn proof_document(
    db: &seisan_state::StateDb<seisan_state::SledBackend>,
    genesis: &seisan_types::Genesis,
    member: MemberId,
) -> Result<v1::BalanceProof, ApiError> {
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
        entries.push(v1::ProvenBalance {
            asset: asset_id,
            symbol: asset.symbol.clone(),
            key: hex::encode(&key),
            value: value.map(hex::encode),
            proof,
        });
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
        epochs.push(v1::EpochLink {
            set,
            last_header: last.header,
            certificate: last_certificate,
            seals,
        });
    }
    Ok(v1::BalanceProof {
        member,
        height: tip.height,
        header: block.header,
        certificate,
        epochs,
        balances: entries,
    })
}

/// A member's customer sub-accounts in one asset, by customer id.
#[utoipa::path(get, path = "/v1/members/{member}/customers/{asset}", tag = "balances",
    params(("member" = String, Path, description = "A member's name or id"), ("asset" = String, Path, description = "An asset symbol, e.g. BTC")),
    responses(
        (status = 200, description = "Customer balances", body = v1::Customers),
        (status = 404, description = "No such member, or `unknown_asset`", body = v1::ErrorBody),
    ))]
async fn customers(
    State(context): State<ApiContext>,
    Path((member, asset)): Path<(String, String)>,
) -> Result<Json<v1::Customers>, ApiError> {
    let member = resolve_member_in(&context, &member)?;
    let asset = asset_id(&context, &asset)?;
    let view = context.db.committed_view();
    Ok(Json(v1::Customers {
        customers: query::customer_balances(&view, member, asset, None, MAX_PAGE),
    }))
}

/// A member's open orders.
#[utoipa::path(get, path = "/v1/members/{member}/orders", tag = "markets",
    params(("member" = String, Path, description = "A member's name or id")),
    responses((status = 200, description = "Open orders", body = v1::Orders), (status = 404, description = "No such member", body = v1::ErrorBody)))]
async fn member_orders(
    State(context): State<ApiContext>,
    Path(member): Path<String>,
) -> Result<Json<v1::Orders>, ApiError> {
    let member = resolve_member_in(&context, &member)?;
    Ok(Json(v1::Orders {
        orders: query::open_orders(&context.db.committed_view(), member),
    }))
}

/// A member's open top-up requests.
#[utoipa::path(get, path = "/v1/members/{member}/topups", tag = "settlement",
    params(("member" = String, Path, description = "A member's name or id")),
    responses((status = 200, description = "Open top-ups", body = v1::TopUps), (status = 404, description = "No such member", body = v1::ErrorBody)))]
async fn member_top_ups(
    State(context): State<ApiContext>,
    Path(member): Path<String>,
) -> Result<Json<v1::TopUps>, ApiError> {
    let member = resolve_member_in(&context, &member)?;
    Ok(Json(v1::TopUps {
        top_ups: query::open_top_ups(&context.db.committed_view(), member),
    }))
}

/// One order: the caller's own, or any for operators.
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "markets",
    params(("id" = u64, Path, description = "The order id")),
    responses(
        (status = 200, description = "The order", body = v1::OrderDocument),
        (status = 400, description = "`bad_number`: the id is not a whole number", body = v1::ErrorBody),
        (status = 404, description = "No such order", body = v1::ErrorBody),
    ))]
async fn order(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<v1::OrderDocument>, ApiError> {
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
    Ok(Json(v1::OrderDocument { order }))
}

/// A pair's order book: resting bids and asks, best first.
#[utoipa::path(get, path = "/v1/book/{base}/{quote}", tag = "markets",
    params(("base" = String, Path, description = "The base asset, e.g. BTC"), ("quote" = String, Path, description = "The quote asset, e.g. JPY")),
    responses(
        (status = 200, description = "Bids and asks", body = v1::Book),
        (status = 404, description = "`unknown_pair`", body = v1::ErrorBody),
    ))]
async fn book(
    State(context): State<ApiContext>,
    Path((base, quote)): Path<(String, String)>,
) -> Result<Json<v1::Book>, ApiError> {
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
    Ok(Json(v1::Book {
        pair: name.to_ascii_uppercase(),
        bids: query::book(&view, pair, Side::Buy, MAX_PAGE),
        asks: query::book(&view, pair, Side::Sell, MAX_PAGE),
    }))
}

/// Fills, oldest first (market data: no customer detail).
#[utoipa::path(get, path = "/v1/trades", tag = "markets", params(Paging),
    responses(
        (status = 200, description = "Fills, oldest first", body = v1::Trades),
        (status = 400, description = "`bad_number` or `bad_limit`", body = v1::ErrorBody),
    ))]
async fn trades(
    State(context): State<ApiContext>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<v1::Trades>, ApiError> {
    let (after, limit) = paging(&params)?;
    Ok(Json(v1::Trades {
        trades: query::trades(&context.db.committed_view(), after.map(TradeId), limit),
    }))
}

/// Top-up requests: an exchange sees its own, operators every member's.
#[utoipa::path(get, path = "/v1/topups", tag = "settlement", params(Paging),
    responses(
        (status = 200, description = "Top-up requests", body = v1::TopUps),
        (status = 400, description = "`bad_number` or `bad_limit`", body = v1::ErrorBody),
    ))]
async fn top_ups(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<v1::TopUps>, ApiError> {
    let (after, limit) = paging(&params)?;
    let view = context.db.committed_view();
    let (top_ups, _) = filtered_page(
        after.map(TopUpId),
        limit,
        |after, chunk| query::top_ups(&view, after, chunk),
        |top_up| top_up.id,
        |top_up| caller.may_read(top_up.member),
    );
    Ok(Json(v1::TopUps { top_ups }))
}

/// Requests for quote with their answers.
#[utoipa::path(get, path = "/v1/quotes", tag = "markets", params(Paging),
    responses(
        (status = 200, description = "Requests for quote", body = v1::Quotes),
        (status = 400, description = "`bad_number` or `bad_limit`", body = v1::ErrorBody),
    ))]
async fn quotes(
    State(context): State<ApiContext>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<v1::Quotes>, ApiError> {
    let (after, limit) = paging(&params)?;
    Ok(Json(v1::Quotes {
        quotes: query::rfqs(&context.db.committed_view(), after.map(RfqId), limit),
    }))
}

/// Bilateral trade confirmations: an exchange sees those it is a party to.
#[utoipa::path(get, path = "/v1/confirmations", tag = "settlement", params(Paging),
    responses(
        (status = 200, description = "Bilateral confirmations", body = v1::Confirmations),
        (status = 400, description = "`bad_number` or `bad_limit`", body = v1::ErrorBody),
    ))]
async fn confirmations(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<v1::Confirmations>, ApiError> {
    let (after, limit) = paging(&params)?;
    let view = context.db.committed_view();
    let (confirmations, _) = filtered_page(
        after.map(ConfirmationId),
        limit,
        |after, chunk| query::confirmations(&view, after, chunk),
        |confirmation| confirmation.id,
        |confirmation| caller.may_read_any(&[confirmation.parties.0, confirmation.parties.1]),
    );
    Ok(Json(v1::Confirmations { confirmations }))
}

/// Settlement cycles, oldest first.
#[utoipa::path(get, path = "/v1/cycles", tag = "settlement", params(Paging),
    responses(
        (status = 200, description = "Settlement cycles", body = v1::Cycles),
        (status = 400, description = "`bad_number` or `bad_limit`", body = v1::ErrorBody),
    ))]
async fn cycles(
    State(context): State<ApiContext>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<v1::Cycles>, ApiError> {
    let (after, limit) = paging(&params)?;
    Ok(Json(v1::Cycles {
        cycles: query::cycles(&context.db.committed_view(), after.map(CycleId), limit),
    }))
}

/// The open settlement cycle.
#[utoipa::path(get, path = "/v1/cycles/current", tag = "settlement",
    responses((status = 200, description = "The open cycle, null before the first", body = v1::CurrentCycle)))]
async fn current_cycle(State(context): State<ApiContext>) -> Json<v1::CurrentCycle> {
    Json(v1::CurrentCycle {
        cycle: query::current_cycle(&context.db.committed_view()),
    })
}

/// The settlement report of the cycle settled at a height.
#[utoipa::path(get, path = "/v1/reports/{height}", tag = "settlement",
    params(("height" = u64, Path, description = "A finalized height")),
    responses(
        (status = 200, description = "The report, null if nothing settled at that height", body = v1::ReportDocument),
        (status = 400, description = "`bad_number`: the height is not a whole number", body = v1::ErrorBody),
    ))]
async fn report(
    State(context): State<ApiContext>,
    Path(height): Path<String>,
) -> Result<Json<v1::ReportDocument>, ApiError> {
    let height = Height(number(&height, "height")?);
    Ok(Json(v1::ReportDocument {
        height,
        report: query::settlement_report(&context.db.committed_view(), height),
    }))
}

/// The membership that governs the next block, the scheduled changes and a page of
/// proposals (`?after=ID&limit=N`, in id order).
#[utoipa::path(get, path = "/v1/governance", tag = "consortium", params(Paging),
    responses(
        (status = 200, description = "Membership, scheduled activations and a page of proposals", body = v1::Governance),
        (status = 400, description = "`bad_number` or `bad_limit`", body = v1::ErrorBody),
    ))]
async fn governance(
    State(context): State<ApiContext>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<v1::Governance>, ApiError> {
    let (after, limit) = paging(&params)?;
    let _guard = context.commit_lock.read().expect("commit lock");
    let view = context.db.committed_view();
    let tip = read_tip(&context.db).expect("opened store has a tip");
    let config = governance::consortium_or_genesis(&view, &context.genesis);
    let scheduled = governance::scheduled_activations(&view)
        .into_iter()
        .map(|(activation_height, proposal)| v1::ScheduledChange {
            activation_height,
            proposal,
        })
        .collect();
    Ok(Json(v1::Governance {
        height: tip.height,
        validator_set_hash: config.membership.validator_set().hash(),
        membership: config.membership,
        scheduled,
        proposals: governance::proposals(&view, after.map(ProposalId), limit),
    }))
}

/// One governance proposal: its change, approvals and status.
#[utoipa::path(get, path = "/v1/governance/{id}", tag = "consortium",
    params(("id" = u64, Path, description = "The proposal id")),
    responses(
        (status = 200, description = "The proposal", body = v1::ProposalDocument),
        (status = 400, description = "`bad_number`: the id is not a whole number", body = v1::ErrorBody),
        (status = 404, description = "No such proposal", body = v1::ErrorBody),
    ))]
async fn proposal(
    State(context): State<ApiContext>,
    Path(id): Path<String>,
) -> Result<Json<v1::ProposalDocument>, ApiError> {
    let id = ProposalId(number(&id, "proposal id")?);
    match governance::proposal(&context.db.committed_view(), id) {
        Some(proposal) => Ok(Json(v1::ProposalDocument { proposal })),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("proposal {id} does not exist"),
        )),
    }
}

/// Per-asset totals (credited, debited, held, locked) at one committed height.
#[utoipa::path(get, path = "/v1/supply", tag = "balances",
    responses((status = 200, description = "Supply per asset", body = v1::Supply)))]
async fn supply(State(context): State<ApiContext>) -> Json<v1::Supply> {
    // Under the commit lock's read side, so the sums are of one committed height.
    let _guard = context.commit_lock.read().expect("commit lock");
    let view = context.db.committed_view();
    let tip = read_tip(&context.db).expect("opened store has a tip");
    Json(v1::Supply {
        height: tip.height,
        state_root: tip.state_root,
        assets: query::supplies(&view, &context.genesis),
    })
}
