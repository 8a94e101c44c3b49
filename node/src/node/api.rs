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
use axum::routing::get;
use axum::{Json, Router};
use seisan_api::v1;
use seisan_state::{SledBackend, StateDb};
use seisan_types::genesis::Genesis;
use seisan_types::hash::Hash;
use seisan_types::ids::{Height, MemberId};
use seisan_types::tx::{Lane, SignedTransaction};
use serde_json::json;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, watch};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

pub use seisan_api::v1::NodeStatus;

/// Shared by every request handler.
#[derive(Clone)]
pub struct ApiContext {
    pub genesis: Arc<Genesis>,
    /// The committed consortium configuration, decoded once per height.
    pub config: super::committed_config::CommittedConfig,
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

/// A finalized block this node stores, or why not: not finalized yet, or before the
/// snapshot this node was synced from (its peers keep the blocks before that).
pub(super) fn stored_block(
    db: &seisan_state::StateDb<seisan_state::SledBackend>,
    height: Height,
) -> Result<seisan_types::Block, ApiError> {
    if let Some(block) = read_block(db, height) {
        return Ok(block);
    }
    match super::pipeline::read_history_from(db) {
        Some(from) if height < from => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "before_history",
            format!(
                "block {height} is before this node's history, which starts at the certified snapshot of height {from} it was synced from; ask a node that keeps every block"
            ),
        )),
        _ => Err(ApiError::not_found(format!(
            "no finalized block at height {height}"
        ))),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(seisan_api::v1::ErrorBody::new(self.code, self.message)),
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
        let retry_after_s = match error {
            AdmissionError::RateLimited { retry_after_s, .. } => Some(retry_after_s),
            _ => None,
        };
        ApiError {
            retry_after_s,
            ..ApiError::new(error.http_status(), error.code(), error.to_string())
        }
    }
}

/// Every documented route, each registered together with its OpenAPI operation.
fn documented_routes() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::with_openapi(super::openapi::Description::openapi())
        .routes(routes!(health))
        .routes(routes!(status))
        .routes(routes!(submit))
        .routes(routes!(submit_batch))
        .routes(routes!(transaction))
        .routes(routes!(block))
        .routes(routes!(members))
        .routes(routes!(nonce))
        .routes(routes!(events))
        .routes(routes!(evidence))
        .routes(routes!(openapi))
        .merge(super::queries::router())
        .merge(super::certificates::router())
        .merge(super::cycle_certificate::router())
        .merge(super::reconciliation::router())
        .merge(super::compliance::router())
        .merge(super::custody_watcher::router())
        .merge(super::backup::router())
}

/// The OpenAPI document the node serves (generated from the routes and their types).
#[cfg(test)]
pub fn openapi_document() -> serde_json::Value {
    let (_, document) = documented_routes().split_for_parts();
    super::openapi::complete(document)
}

/// The generated document, served as is.
#[derive(Clone)]
struct OpenApiJson(Arc<str>);

pub fn router(context: ApiContext, limits: super::rate_limit::RateLimits) -> Router {
    let limiter = Arc::new(super::rate_limit::RateLimiter::new(limits));
    let (documented, document) = documented_routes().split_for_parts();
    let document = OpenApiJson(super::openapi::complete(document).to_string().into());
    documented
        .route("/metrics", get(metrics))
        .merge(super::console::router())
        // After every route: authenticates and scopes each of them (not the fallback).
        .route_layer(axum::middleware::from_fn_with_state(
            context.clone(),
            super::auth::authorize,
        ))
        .fallback(|| async { ApiError::not_found("no such endpoint; see /v1/openapi.json") })
        .layer(axum::Extension(document))
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
#[utoipa::path(get, path = "/v1/health", tag = "node",
    responses((status = 200, description = "Alive", body = v1::Health)))]
async fn health() -> Json<v1::Health> {
    Json(v1::Health { ok: true })
}

/// The node's height, view, peers, epoch, whether it is syncing, and where custody and
/// the bank's leg stand.
#[utoipa::path(get, path = "/v1/status", tag = "node",
    responses((status = 200, description = "Node status", body = v1::NodeStatus)))]
async fn status(State(context): State<ApiContext>) -> Json<NodeStatus> {
    let mut status = context.status.borrow().clone();
    status.mempool_depth = context.mempool.lock().expect("mempool lock").len();
    status.custody_undercovered = context.custody.borrow().undercovered;
    status.mirrors = super::reconciliation::mirror_status(&context);
    Json(status)
}

/// Submit one signed transaction. A 202 is a promise: the transaction is journaled
/// before the answer and will be finalized (or its receipt will say why a block
/// rejected it).
#[utoipa::path(post, path = "/v1/transactions", tag = "transactions",
    request_body = SignedTransaction,
    responses(
        (status = 202, description = "Admitted, or already pending on this node (the same signed transaction again): journaled before this answer", body = v1::TransactionStatus),
        (status = 200, description = "Already finalized (the same signed transaction submitted again after its block committed), with its height, index and receipt. A different transaction that reuses a used nonce is refused (400 `repeated_nonce` or `stale_nonce`).", body = v1::TransactionStatus),
        (status = 400, description = "Malformed or invalid (the code and message name what: bad_signature, wrong_chain, unknown_member, stale_nonce, ...)", body = v1::ErrorBody),
        (status = 409, description = "`nonce_gap`: the nonce leaves a gap in its lane (the message names the next one); or `duplicate`", body = v1::ErrorBody),
        (status = 413, description = "Body larger than 4 MiB", body = v1::ErrorBody),
        (status = 415, description = "Content type is not application/json", body = v1::ErrorBody),
        (status = 503, description = "`busy`: the mempool is full; or `syncing`: this node is behind the chain (Retry-After says when to retry)", body = v1::ErrorBody),
    ))]
async fn submit(
    State(context): State<ApiContext>,
    axum::Extension(limiter): axum::Extension<Arc<super::rate_limit::RateLimiter>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let transaction: SignedTransaction = parse_json(&headers, body)?;
    refuse_while_syncing(&context)?;
    // The member's allowance is charged inside admission, once the signature verified
    // there: one signature check per transaction.
    let mut results = submit_transactions(&context, vec![transaction], Some(limiter)).await;
    let submitted = results.pop().expect("one result per transaction")?;
    Ok((submitted.http_status(), Json(submitted.document())).into_response())
}

/// Submit up to 4096 signed transactions; one result each, in order.
#[utoipa::path(post, path = "/v1/transactions/batch", tag = "transactions",
    request_body = Vec<SignedTransaction>,
    responses(
        (status = 200, description = "One result per transaction, in order: its status (pending ones are journaled before this answer, as for POST /v1/transactions' 202), or why it was refused", body = v1::BatchResults),
        (status = 400, description = "Malformed (named in the error), or more than 4096 transactions (`batch_too_large`)", body = v1::ErrorBody),
        (status = 413, description = "Body larger than 4 MiB", body = v1::ErrorBody),
        (status = 415, description = "Content type is not application/json", body = v1::ErrorBody),
        (status = 503, description = "`syncing`: this node is behind the chain (Retry-After says when to retry)", body = v1::ErrorBody),
    ))]
async fn submit_batch(
    State(context): State<ApiContext>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<v1::BatchResults>, ApiError> {
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
    let results = submit_transactions(&context, transactions, None).await;
    let results = results
        .into_iter()
        .map(|result| match result {
            Ok(submitted) => v1::BatchResult::Accepted(submitted.document()),
            Err(error) => {
                v1::BatchResult::Refused(v1::ErrorBody::new(error.code(), error.to_string()))
            }
        })
        .collect();
    Ok(Json(v1::BatchResults { results }))
}

/// A transaction's status and receipt. A finalized transaction is for its signer and
/// operators; a pending one says only that it is pending (its id is a hash of the
/// signed bytes, so whoever asks already holds them).
#[utoipa::path(get, path = "/v1/transactions/{id}", tag = "transactions",
    params(("id" = String, Path, description = "The transaction id: 64 hex digits", pattern = "^[0-9a-f]{64}$")),
    responses(
        (status = 200, description = "Pending, or finalized with its height, index and receipt", body = v1::TransactionStatus),
        (status = 400, description = "`bad_id`: not 64 hex digits", body = v1::ErrorBody),
        (status = 404, description = "Neither pending nor finalized on this node", body = v1::ErrorBody),
    ))]
async fn transaction(
    State(context): State<ApiContext>,
    axum::Extension(caller): axum::Extension<seisan_api::Caller>,
    Path(id): Path<String>,
) -> Result<Json<v1::TransactionStatus>, ApiError> {
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
        let receipt = receipts.receipts[location.index as usize].clone();
        return Ok(Json(v1::TransactionStatus::finalized(
            id,
            location.height,
            location.index,
            receipt,
        )));
    }
    if context.mempool.lock().expect("mempool lock").contains(&id) {
        return Ok(Json(v1::TransactionStatus::pending(id)));
    }
    Err(ApiError::not_found(format!(
        "transaction {id} is neither pending nor finalized on this node"
    )))
}

/// A finalized block with its certificate. Its transactions and receipts carry every
/// member's orders and customers' sub-accounts, so a member that is not an operator
/// gets the header and certificate only (all it needs to verify the chain and proofs),
/// marked `redacted`.
#[utoipa::path(get, path = "/v1/blocks/{height}", tag = "chain",
    params(("height" = u64, Path, description = "A finalized height (1 is the first block)")),
    responses(
        (status = 200, description = "The block, its certificate and (for operators) its receipts", body = v1::BlockDocument),
        (status = 400, description = "`bad_height`: not a number", body = v1::ErrorBody),
        (status = 404, description = "No finalized block at that height on this node", body = v1::ErrorBody),
    ))]
async fn block(
    State(context): State<ApiContext>,
    axum::Extension(caller): axum::Extension<seisan_api::Caller>,
    Path(height): Path<String>,
) -> Result<Json<v1::BlockDocument>, ApiError> {
    let height = height.parse::<u64>().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_height",
            format!("height {height:?} is not a number"),
        )
    })?;
    let height = Height(height);
    let mut block = stored_block(&context.db, height)?;
    let certificate =
        read_certificate(&context.db, height).expect("committed block has a certificate");
    let hash = block.hash();
    if !caller.is_operator() {
        let redacted = format!(
            "{} transactions and their receipts are for the clearing house and observers",
            block.txs.len()
        );
        block.txs.clear();
        return Ok(Json(v1::BlockDocument {
            hash,
            block,
            certificate,
            receipts: None,
            redacted: Some(redacted),
        }));
    }
    let receipts = read_receipts(&context.db, height).expect("committed block has receipts");
    Ok(Json(v1::BlockDocument {
        hash,
        block,
        certificate,
        receipts: Some(receipts),
        redacted: None,
    }))
}

/// The members as of the committed state (genesis's, and those governance added, with
/// their current keys and status).
#[utoipa::path(get, path = "/v1/members", tag = "consortium",
    responses((status = 200, description = "Every member, by id", body = v1::Members)))]
async fn members(State(context): State<ApiContext>) -> Json<v1::Members> {
    let membership = seisan_contracts::governance::consortium_or_genesis(
        &context.db.committed_view(),
        &context.genesis,
    )
    .membership;
    let members = membership
        .members
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let member = &entry.member;
            v1::MemberInfo {
                id: MemberId(index as u32),
                name: member.name.clone(),
                role: member.role,
                validator: member.validator,
                public_key: member.public_key,
                status: entry.status,
            }
        })
        .collect();
    Json(v1::Members { members })
}

/// A member's committed, pending and next nonce, per lane.
#[utoipa::path(get, path = "/v1/members/{member}/nonce", tag = "transactions",
    params(("member" = String, Path, description = "A member's name or id")),
    responses(
        (status = 200, description = "The member lane's nonces, and every lane's", body = v1::NonceInfo),
        (status = 404, description = "No such member", body = v1::ErrorBody),
        (status = 503, description = "`syncing`: this node is behind the chain, so its nonces may be stale", body = v1::ErrorBody),
    ))]
async fn nonce(
    State(context): State<ApiContext>,
    Path(member): Path<String>,
) -> Result<Json<v1::NonceInfo>, ApiError> {
    // Through the committed membership: members added by governance have nonces too.
    let member = super::queries::resolve_member_in(&context, &member)?;
    refuse_while_syncing(&context)?;
    // All read under the mempool lock: a block's nonces are committed before the
    // mempool drops its transactions, so reading the committed nonce first and the
    // pending one after a commit in between named a used nonce as `next`. `next` is the
    // nonce this node accepts for the lane's next transaction: one above the committed
    // nonce and the consecutive run pending after it (a higher one leaves a gap and is
    // refused).
    let lanes: BTreeMap<String, v1::LaneNonce> = {
        let pool = context.mempool.lock().expect("mempool lock");
        let view = context.db.committed_view();
        Lane::ALL
            .into_iter()
            .map(|lane| {
                let committed = seisan_contracts::query::last_nonce(&view, member, lane);
                let lane_nonce = v1::LaneNonce {
                    committed,
                    pending: pool.pending_nonce(member, lane),
                    next: pool.next_contiguous_nonce(member, lane, committed),
                };
                (lane.name().to_string(), lane_nonce)
            })
            .collect()
    };
    // The top-level fields are the member lane's (what a client signs in); `lanes` has
    // both.
    let member_lane = lanes[Lane::Member.name()];
    Ok(Json(v1::NonceInfo {
        member,
        committed: member_lane.committed,
        pending: member_lane.pending,
        next: member_lane.next,
        lanes,
    }))
}

/// The most evidence records one answer lists.
pub const MAX_EVIDENCE_LISTED: usize = 1024;

/// Evidence of misbehaviour: what this node stored (records under `ev/`, written when
/// the engine reports a double-signing member), oldest view first; then the ledger's
/// attestation evidence (kind `ContradictingAttestation`: a validator's finalized
/// attestation of a bank entry, deposit or payout that contradicts the fact q
/// validators attested identically and the ledger acted on; the same on every node).
#[utoipa::path(get, path = "/v1/evidence", tag = "consortium",
    responses(
        (status = 200, description = "Double signing this node stored, and finalized contradicting attestations", body = v1::EvidenceList),
        (status = 500, description = "`corrupt_record`: a stored record does not decode", body = v1::ErrorBody),
    ))]
async fn evidence(State(context): State<ApiContext>) -> Result<Json<v1::EvidenceList>, ApiError> {
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
        listed.push(v1::EvidenceEntry {
            member: evidence.member(),
            view: Some(evidence.view().0),
            kind: format!("{:?}", evidence.kind()),
            verified: evidence.verify(&context.genesis),
            height: None,
            subject: None,
            evidence: json!(evidence),
        });
    }
    for evidence in attestation_evidence
        .into_iter()
        .take(MAX_EVIDENCE_LISTED.saturating_sub(listed.len()))
    {
        listed.push(v1::EvidenceEntry {
            member: evidence.member,
            view: None,
            kind: "ContradictingAttestation".to_string(),
            // Finalized in the ledger: q validators attested the credited fact and the
            // member signed the contradicting transaction.
            verified: true,
            height: Some(evidence.height),
            subject: Some(evidence.subject()),
            evidence: json!(evidence),
        });
    }
    Ok(Json(v1::EvidenceList { evidence: listed }))
}

/// Server-sent events: one `block` event per finalized block with its receipts (JSON
/// in `data`). An endless stream; a client that falls behind misses events and reads
/// the blocks it missed by height.
#[utoipa::path(get, path = "/v1/events", tag = "chain",
    responses((status = 200, description = "An endless text/event-stream of `block` events", content_type = "text/event-stream", body = String)))]
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

/// This document (OpenAPI 3.1), generated from the node's routes and types.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "node",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
async fn openapi(axum::Extension(document): axum::Extension<OpenApiJson>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.0.to_string(),
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
