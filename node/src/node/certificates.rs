//! `GET /v1/trades/{id}/certificate`: a fill's settlement certificate (see
//! [`crate::cli::certificate`]), built from this node's committed blocks, receipts,
//! certificates and epoch records. Any node serves it, an observer's included; nothing
//! in it needs the node to be trusted.

use super::api::{ApiContext, ApiError};
use super::pipeline::{read_block, read_certificate, read_epoch_start, read_receipts, read_seals};
use crate::cli::certificate::{build_trade_certificate, MAX_CERTIFICATE_DESCENDANTS};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use seisan_api::v1::{self, EpochLink};
use seisan_types::clearing::TradeId;
use seisan_types::ids::{Epoch, Height};
use seisan_types::BlockHeader;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(trade_certificate))
}

fn unavailable(message: String) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "certificate_unavailable",
        message,
    )
}

/// A fill's settlement certificate: the fill (buyer, seller, pair, quantity, price,
/// both legs), the receipt holding it with its Merkle path to the header's
/// `receipts_root`, the source transaction with its path to `txs_root`, the header, any
/// descendant headers up to the certified block, the quorum certificate and one
/// validator-set link per epoch change since genesis. Check it offline with
/// `seisan verify FILE --genesis GENESIS`. For the trade's buyer, its seller and
/// operators (it carries both orders' transactions).
#[utoipa::path(get, path = "/v1/trades/{id}/certificate", tag = "markets",
    params(("id" = u64, Path, description = "The trade id", minimum = 0)),
    responses(
        (status = 200, description = "The certificate (format seisan-trade-certificate-v1)", body = v1::TradeCertificate),
        (status = 400, description = "`bad_number`: the trade id is not a whole number", body = v1::ErrorBody),
        (status = 403, description = "The caller is neither the trade's buyer, its seller nor an operator", body = v1::ErrorBody),
        (status = 404, description = "No such trade is final on this node", body = v1::ErrorBody),
        (status = 503, description = "`certificate_unavailable`: the node no longer holds a record the certificate needs (named in the error)", body = v1::ErrorBody),
    ))]
async fn trade_certificate(
    State(context): State<ApiContext>,
    axum::Extension(caller): axum::Extension<seisan_api::Caller>,
    Path(id): Path<String>,
) -> Result<Json<v1::TradeCertificate>, ApiError> {
    let trade = TradeId(super::queries::number(&id, "trade id")?);
    // One committed height for every record read below.
    let _guard = context.commit_lock.read().expect("commit lock");
    let Some(record) = seisan_contracts::query::trade(&context.db.committed_view(), trade) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("trade {trade} is not final on this node"),
        ));
    };
    if !caller.may_read_any(&[record.buyer, record.seller]) {
        return Err(caller
            .refuse(format!(
                "trade {trade}'s certificate is for its buyer, its seller and operators"
            ))
            .into());
    }
    let height = record.height;
    let block = super::api::stored_block(&context.db, height)?;
    let receipts = read_receipts(&context.db, height).expect("a committed block has receipts");
    let certificate = read_certificate(&context.db, height)
        .ok_or_else(|| unavailable(format!("block {height} has no stored certificate")))?;
    let descendants = descendants(&context, height, certificate.vote.height)?;
    let epochs = epoch_links(&context, certificate.vote.epoch)?;
    let document = build_trade_certificate(
        trade,
        &block,
        &receipts.receipts,
        &receipts.events,
        descendants,
        certificate,
        epochs,
    )
    .ok_or_else(|| unavailable(format!("block {height} holds no fill of trade {trade}")))?;
    Ok(Json(document))
}

/// The headers above `height` up to the certified `to`: committed blocks, or the seals
/// kept with an epoch's last block (consensus rule E4).
pub(super) fn descendants(
    context: &ApiContext,
    height: Height,
    to: Height,
) -> Result<Vec<BlockHeader>, ApiError> {
    let count = to.0.saturating_sub(height.0) as usize;
    if count > MAX_CERTIFICATE_DESCENDANTS {
        return Err(unavailable(format!(
            "block {height} is certified through {count} descendants; the limit is {MAX_CERTIFICATE_DESCENDANTS}"
        )));
    }
    let seals = read_seals(&context.db, height);
    let mut headers = Vec::with_capacity(count);
    for above in height.0 + 1..=to.0 {
        let header = read_block(&context.db, Height(above))
            .map(|block| block.header)
            .or_else(|| {
                seals
                    .iter()
                    .find(|seal| seal.header.height == Height(above))
                    .map(|seal| seal.header.clone())
            })
            .ok_or_else(|| unavailable(format!("block {above} is not stored on this node")))?;
        headers.push(header);
    }
    Ok(headers)
}

/// One link per validator-set change from genesis up to `epoch` (as in a balance proof).
pub(super) fn epoch_links(context: &ApiContext, epoch: Epoch) -> Result<Vec<EpochLink>, ApiError> {
    let mut links = Vec::new();
    for number in 1..=epoch.0 {
        let (last_height, set) = read_epoch_start(&context.db, Epoch(number)).ok_or_else(|| {
            unavailable(format!(
                "this node holds no record of where epoch {number} started"
            ))
        })?;
        let last = super::api::stored_block(&context.db, last_height)?;
        let certificate =
            read_certificate(&context.db, last_height).expect("an epoch's last block is certified");
        links.push(EpochLink {
            set,
            last_header: last.header,
            certificate,
            seals: read_seals(&context.db, last_height)
                .into_iter()
                .map(|seal| seal.header)
                .collect(),
        });
    }
    Ok(links)
}
