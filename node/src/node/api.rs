//! The HTTP API under `/v1` (JSON), `/metrics` (Prometheus text) and
//! `/v1/openapi.json`.
//!
//! Everything a client sends is hostile: bodies are size-limited, the content type is
//! checked, JSON is parsed by hand so every failure becomes a 4xx with a JSON error
//! naming the problem (`{"error": {"code": ..., "message": ...}}`), and a rejected
//! request changes nothing.

use super::admission::{submit_transactions, AdmissionError};
use super::mempool::Mempool;
use super::metrics::Metrics;
use super::pipeline::{read_block, read_certificate, read_receipts, read_tx_location};
use super::tx_journal::TxJournal;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use seisan_state::{SledBackend, StateDb};
use seisan_types::genesis::Genesis;
use seisan_types::hash::Hash;
use seisan_types::ids::{Height, MemberId};
use seisan_types::tx::{Lane, SignedTransaction};
use serde::Serialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, watch};

/// The largest request body accepted.
pub const MAX_REQUEST_BYTES: usize = 4 << 20;
/// What a syncing node's 503 asks the client to wait, in seconds.
pub const SYNCING_RETRY_AFTER_S: u64 = 1;

/// Refuses with 503 `syncing` while the node is behind or cannot tell (R13 of the
/// consensus crate): its committed nonces and balances may be stale, so a nonce it
/// names or a transaction it admits could be dropped later.
pub fn refuse_while_syncing(context: &ApiContext) -> Result<(), ApiError> {
    let status = context.status.borrow();
    if status.syncing {
        return Err(ApiError::syncing(&status));
    }
    Ok(())
}

/// The most transactions in one batch submission.
pub const MAX_BATCH_TRANSACTIONS: usize = 4096;

/// What the node reports about itself.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NodeStatus {
    pub chain_id: String,
    pub member: u32,
    pub member_name: String,
    pub height: u64,
    pub view: u64,
    pub last_finalized_hash: String,
    pub state_root: String,
    pub peers: Vec<String>,
    pub mempool_depth: usize,
    /// Whether this node is behind the chain, or cannot tell because fewer than
    /// quorum - 1 connected validators have told it where they stand. While syncing
    /// the node refuses submissions and nonce queries with 503 `syncing` (its
    /// committed nonces may be stale) and its balances may be old.
    pub syncing: bool,
    /// The highest finalized height this node holds a verified certificate for.
    pub best_known_height: u64,
    /// `best_known_height - height`.
    pub behind_by: u64,
    /// The validator-set epoch this node's consensus runs (consensus rule E1), its
    /// validators by name and its quorum, and whether this node votes in it (a node
    /// that is no validator of the epoch follows the chain as an observer).
    pub epoch: u64,
    pub validators: Vec<String>,
    pub quorum: u32,
    pub voting: bool,
    /// Restored from a backup and fenced (consensus rule R14): this validator signs
    /// nothing until its peers have told it what it signed after the backup.
    pub fenced: bool,
    /// Whether public-chain custody is below the ledger's liabilities (an error state);
    /// absent when this node does not watch a public chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custody_undercovered: Option<bool>,
    /// Where the bank's leg of settlement stands (pending and stalled mirrors); absent
    /// when genesis has no fiat asset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirrors: Option<super::reconciliation::MirrorStatus>,
    /// While this node is behind the chain: how far it has to go and how fast it is
    /// getting there; absent when it is in step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<super::catch_up::Progress>,
}

/// Shared by every request handler.
#[derive(Clone)]
pub struct ApiContext {
    pub genesis: Arc<Genesis>,
    /// Chain id and genesis hash, computed once: every signature is checked under it.
    pub domain: seisan_types::ChainDomain,
    pub db: StateDb<SledBackend>,
    pub mempool: Arc<Mutex<Mempool>>,
    pub status: watch::Receiver<NodeStatus>,
    /// Finalized blocks and receipts as JSON, for the event stream.
    pub events: broadcast::Sender<Arc<String>>,
    /// Admitted transactions, to gossip to the other validators.
    pub gossip: mpsc::Sender<Vec<SignedTransaction>>,
    /// Stores what the API admits before it answers 202 (see `tx_journal`).
    pub journal: TxJournal,
    pub metrics: Arc<Metrics>,
    /// Held for writing while a block commits, so a multi-key read under the read
    /// lock sees one committed height.
    pub commit_lock: Arc<std::sync::RwLock<()>>,
    /// What the custody watcher last saw (its default when this node watches no
    /// public chain).
    pub custody: watch::Receiver<super::custody_watcher::CustodyStatus>,
    /// What the bank watcher last did (its default when this node has no bank).
    pub bank: watch::Receiver<super::bank_watcher::BankStatus>,
    /// Reads the trust accounts for reconciliation (the auditor token when
    /// configured); `None` without a bank connection.
    pub bank_reader: Option<Arc<dyn seisan_bank::BankAdapter>>,
    /// Where this node's business days end (`--day-cutoff`), for the compliance report.
    pub day_cutoff: super::compliance::DayCutoff,
    /// The node's data directory (`--data`): the backup endpoint copies its small files.
    pub data_dir: std::path::PathBuf,
}

/// A 4xx/5xx answer with a JSON error body.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Sent as `Retry-After` (seconds) when set.
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// 503 `syncing`: this node is behind the chain or cannot tell, so it answers
    /// nothing that depends on being current.
    pub fn syncing(status: &NodeStatus) -> ApiError {
        let why = if status.behind_by > 0 {
            format!(
                "this node is catching up: it has finalized height {} and the chain is at least at {} ({} blocks behind)",
                status.height, status.best_known_height, status.behind_by
            )
        } else {
            "this node has not yet heard enough validators to know it is current (it has just started, or it is cut off from a quorum)".to_string()
        };
        ApiError {
            retry_after_s: Some(SYNCING_RETRY_AFTER_S),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "syncing",
                format!(
                    "{why}; retry in a moment, or ask a node whose /v1/status says syncing: false"
                ),
            )
        }
    }

    fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response();
        if let Some(seconds) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}

impl From<AdmissionError> for ApiError {
    fn from(error: AdmissionError) -> ApiError {
        ApiError::new(error.http_status(), error.code(), error.to_string())
    }
}

pub fn router(context: ApiContext, limits: super::rate_limit::RateLimits) -> Router {
    let limiter = Arc::new(super::rate_limit::RateLimiter::new(limits));
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/status", get(status))
        .route("/v1/transactions", post(submit))
        .route("/v1/transactions/batch", post(submit_batch))
        .route("/v1/transactions/{id}", get(transaction))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/members", get(members))
        .route("/v1/members/{member}/nonce", get(nonce))
        .route("/v1/events", get(events))
        .route("/v1/evidence", get(evidence))
        .route("/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .merge(super::queries::router())
        .merge(super::certificates::router())
        .merge(super::cycle_certificate::router())
        .merge(super::reconciliation::router())
        .merge(super::compliance::router())
        .merge(super::custody_watcher::router())
        .merge(super::backup::router())
        .merge(super::console::router())
        // After every route: authenticates and scopes each of them (not the fallback).
        .route_layer(axum::middleware::from_fn_with_state(
            context.clone(),
            super::auth::authorize,
        ))
        .fallback(|| async { ApiError::not_found("no such endpoint; see /v1/openapi.json") })
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(axum::Extension(limiter.clone()))
        .layer(axum::middleware::from_fn_with_state(
            limiter,
            super::rate_limit::limit_by_address,
        ))
        .with_state(context)
}

/// Reads a JSON body: checks the content type and the size, and names the problem.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("content type must be application/json, got {content_type:?}"),
        ));
    }
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "bad_body"
        };
        ApiError::new(
            status,
            code,
            format!(
                "request body: {} (limit {MAX_REQUEST_BYTES} bytes)",
                rejection.body_text()
            ),
        )
    })?;
    serde_json::from_slice(&body).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("request body is not a valid transaction: {error}"),
        )
    })
}

/// Resolves a member given by name or by id.
pub fn resolve_member(genesis: &Genesis, text: &str) -> Result<MemberId, ApiError> {
    if let Some((id, _)) = genesis.member_by_name(text) {
        return Ok(id);
    }
    match text.parse::<u32>() {
        Ok(id) if genesis.member(MemberId(id)).is_some() => Ok(MemberId(id)),
        _ => Err(ApiError::not_found(format!("unknown member {text:?}"))),
    }
}

/// Liveness for load balancers and service managers: the process answers.
async fn health() -> Json<Value> {
    Json(json!({"ok": true}))
}

async fn status(State(context): State<ApiContext>) -> Json<NodeStatus> {
    let mut status = context.status.borrow().clone();
    status.mempool_depth = context.mempool.lock().expect("mempool lock").len();
    status.custody_undercovered = context.custody.borrow().undercovered;
    status.mirrors = super::reconciliation::mirror_status(&context);
    Json(status)
}

async fn submit(
    State(context): State<ApiContext>,
    axum::Extension(limiter): axum::Extension<Arc<super::rate_limit::RateLimiter>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let transaction: SignedTransaction = parse_json(&headers, body)?;
    super::rate_limit::charge_member(&limiter, &context, &transaction).await?;
    refuse_while_syncing(&context)?;
    let mut results = submit_transactions(&context, vec![transaction]).await;
    let submitted = results.pop().expect("one result per transaction")?;
    Ok((submitted.http_status(), Json(submitted.document())).into_response())
}

async fn submit_batch(
    State(context): State<ApiContext>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let transactions: Vec<SignedTransaction> = parse_json(&headers, body)?;
    refuse_while_syncing(&context)?;
    if transactions.len() > MAX_BATCH_TRANSACTIONS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "batch_too_large",
            format!(
                "{} transactions in one batch; the limit is {MAX_BATCH_TRANSACTIONS}",
                transactions.len()
            ),
        ));
    }
    let results = submit_transactions(&context, transactions).await;
    let results: Vec<Value> = results
        .into_iter()
        .map(|result| match result {
            Ok(submitted) => submitted.document(),
            Err(error) => json!({"error": {"code": error.code(), "message": error.to_string()}}),
        })
        .collect();
    Ok(Json(json!({ "results": results })))
}

/// A transaction's status and receipt. A finalized transaction is for its signer and
/// operators; a pending one says only that it is pending (its id is a hash of the
/// signed bytes, so whoever asks already holds them).
async fn transaction(
    State(context): State<ApiContext>,
    axum::Extension(caller): axum::Extension<seisan_api::Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = Hash::from_hex(&id).map_err(|reason| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_id",
            format!("transaction id: {reason}"),
        )
    })?;
    if let Some(location) = read_tx_location(&context.db, &id) {
        let block = read_block(&context.db, location.height).expect("committed block stored");
        let signer = block.txs[location.index as usize].tx.member;
        if !caller.may_read(signer) {
            return Err(caller
                .refuse(format!(
                    "transaction {id} was signed by member {signer}, and an exchange reads only its own transactions"
                ))
                .into());
        }
        let receipts =
            read_receipts(&context.db, location.height).expect("committed block has receipts");
        let receipt = &receipts.receipts[location.index as usize];
        return Ok(Json(json!({
            "id": id, "status": "finalized", "height": location.height, "index": location.index, "receipt": receipt,
        })));
    }
    if context.mempool.lock().expect("mempool lock").contains(&id) {
        return Ok(Json(json!({"id": id, "status": "pending"})));
    }
    Err(ApiError::not_found(format!(
        "transaction {id} is neither pending nor finalized on this node"
    )))
}

/// A finalized block with its certificate. Its transactions and receipts carry every
/// member's orders and customers' sub-accounts, so a member that is not an operator
/// gets the header and certificate only (all it needs to verify the chain and proofs),
/// marked `redacted`.
async fn block(
    State(context): State<ApiContext>,
    axum::Extension(caller): axum::Extension<seisan_api::Caller>,
    Path(height): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let height = height.parse::<u64>().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_height",
            format!("height {height:?} is not a number"),
        )
    })?;
    let height = Height(height);
    let block = read_block(&context.db, height)
        .ok_or_else(|| ApiError::not_found(format!("no finalized block at height {height}")))?;
    let certificate =
        read_certificate(&context.db, height).expect("committed block has a certificate");
    if !caller.is_operator() {
        return Ok(Json(json!({
            "hash": block.hash(),
            "block": {"header": block.header, "txs": []},
            "certificate": certificate,
            "receipts": null,
            "redacted": format!("{} transactions and their receipts are for the clearing house and observers", block.txs.len()),
        })));
    }
    let receipts = read_receipts(&context.db, height).expect("committed block has receipts");
    Ok(Json(
        json!({"hash": block.hash(), "block": block, "certificate": certificate, "receipts": receipts}),
    ))
}

/// The members as of the committed state (genesis's, and those governance added, with
/// their current keys and status).
async fn members(State(context): State<ApiContext>) -> Json<Value> {
    let membership = seisan_contracts::governance::consortium_or_genesis(
        &context.db.committed_view(),
        &context.genesis,
    )
    .membership;
    let members: Vec<Value> = membership
        .members
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let member = &entry.member;
            json!({"id": index, "name": member.name, "role": member.role, "validator": member.validator, "public_key": member.public_key, "status": entry.status})
        })
        .collect();
    Json(json!({ "members": members }))
}

async fn nonce(
    State(context): State<ApiContext>,
    Path(member): Path<String>,
) -> Result<Json<Value>, ApiError> {
    // Through the committed membership: members added by governance have nonces too.
    let member = super::queries::resolve_member_in(&context, &member)?;
    refuse_while_syncing(&context)?;
    // All read under the mempool lock: a block's nonces are committed before the
    // mempool drops its transactions, so reading the committed nonce first and the
    // pending one after a commit in between named a used nonce as `next`. `next` is the
    // nonce this node accepts for the lane's next transaction: one above the committed
    // nonce and the consecutive run pending after it (a higher one leaves a gap and is
    // refused).
    let lanes: serde_json::Map<String, Value> = {
        let pool = context.mempool.lock().expect("mempool lock");
        let view = context.db.committed_view();
        Lane::ALL
            .into_iter()
            .map(|lane| {
                let committed = seisan_contracts::query::last_nonce(&view, member, lane);
                let pending = pool.pending_nonce(member, lane);
                let next = pool.next_contiguous_nonce(member, lane, committed);
                (
                    lane.name().to_string(),
                    json!({"committed": committed, "pending": pending, "next": next}),
                )
            })
            .collect()
    };
    // The top-level fields are the member lane's (what a client signs in); `lanes` has
    // both.
    let member_lane = lanes[Lane::Member.name()].clone();
    Ok(Json(json!({
        "member": member,
        "committed": member_lane["committed"],
        "pending": member_lane["pending"],
        "next": member_lane["next"],
        "lanes": lanes,
    })))
}

/// The most evidence records one answer lists.
pub const MAX_EVIDENCE_LISTED: usize = 1024;

/// Evidence of misbehaviour: what this node stored (records under `ev/`, written when
/// the engine reports a double-signing member), oldest view first; then the ledger's
/// attestation evidence (kind `ContradictingAttestation`: a validator's finalized
/// attestation of a bank entry, deposit or payout that contradicts the fact q
/// validators attested identically and the ledger acted on; the same on every node).
async fn evidence(State(context): State<ApiContext>) -> Result<Json<Value>, ApiError> {
    let records = context.db.records(b"ev/", None, MAX_EVIDENCE_LISTED);
    let mut listed = Vec::with_capacity(records.len());
    let attestation_evidence = {
        let view = context.db.committed_view();
        let mut found = seisan_contracts::bank::evidence(&view);
        found.extend(seisan_contracts::custody::evidence(&view));
        found
    };
    for (_, bytes) in records {
        let evidence: seisan_consensus::ConsensusEvidence = seisan_types::codec::decode(&bytes)
            .map_err(|error| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "corrupt_record",
                    format!("stored evidence does not decode: {error}"),
                )
            })?;
        listed.push(json!({
            "member": evidence.member(),
            "view": evidence.view(),
            "kind": format!("{:?}", evidence.kind()),
            "verified": evidence.verify(&context.genesis),
            "evidence": evidence,
        }));
    }
    for evidence in attestation_evidence
        .into_iter()
        .take(MAX_EVIDENCE_LISTED.saturating_sub(listed.len()))
    {
        listed.push(json!({
            "member": evidence.member,
            "kind": "ContradictingAttestation",
            // Finalized in the ledger: q validators attested the credited fact and the
            // member signed the contradicting transaction.
            "verified": true,
            "height": evidence.height,
            "subject": evidence.subject(),
            "evidence": evidence,
        }));
    }
    Ok(Json(json!({ "evidence": listed })))
}

async fn events(
    State(context): State<ApiContext>,
) -> Sse<impl futures::Stream<Item = Result<SseEvent, Infallible>>> {
    let receiver = context.events.subscribe();
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(message) => {
                    return Some((
                        Ok(SseEvent::default().event("block").data(message.as_str())),
                        receiver,
                    ))
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

/// OpenMetrics to a client that asks for it (Prometheus does), else the classic
/// Prometheus text format (curl, promtool).
async fn metrics(State(context): State<ApiContext>, headers: HeaderMap) -> Response {
    super::reconciliation::mirror_status(&context);
    let openmetrics = context.metrics.scrape(&context);
    let accepts_openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    if accepts_openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            openmetrics,
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            super::metrics::prometheus_text(&openmetrics),
        )
            .into_response()
    }
}
