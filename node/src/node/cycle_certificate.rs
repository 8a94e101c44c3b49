//! `GET /v1/cycles/{n}/certificate`: a settled cycle's certificate (see
//! [`crate::cli::cycle_verify`]): every settled confirmation's two signed submissions
//! with their inclusion proofs, the `CycleSettled` event with its proof, and the cycle
//! and consortium records proven at this node's certified tip, each block with its
//! quorum certificate and the epoch links from genesis. Built from this node's committed
//! store; any node serves it, an observer's included, and nothing in it needs the node
//! to be trusted.

use super::api::{ApiContext, ApiError};
use super::certificates::{descendants, epoch_links};
use super::pipeline::{read_block, read_certificate, read_receipts, read_tip};
use crate::cli::cycle_verify::{
    build_cycle_certificate, BuildError, CycleSource, TipRecords, MAX_CYCLE_CONFIRMATIONS,
};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use seisan_api::v1;
use seisan_types::clearing::{Confirmation, ConfirmationId, Cycle, CycleId, CycleStatus};
use seisan_types::ids::Height;
use seisan_types::receipt::{Event, Receipt};
use seisan_types::state::StateView;
use seisan_types::{Block, BlockHeader, QuorumCertificate};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Index keys read per scan of a cycle's confirmations.
const CONFIRMATION_PAGE: usize = 1000;

pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(cycle_certificate))
}

fn unavailable(message: String) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "certificate_unavailable",
        message,
    )
}

/// What must be read at one committed height: the settled cycle, the confirmations its
/// index names, the tip's header, and the cycle and consortium records with their
/// proofs at the tip.
struct CommittedParts {
    cycle: Cycle,
    confirmations: Vec<Confirmation>,
    tip: TipRecords,
}

fn committed_parts(context: &ApiContext, cycle_id: CycleId) -> Result<CommittedParts, ApiError> {
    let view = context.db.committed_view();
    let Some(cycle) = seisan_contracts::query::cycle(&view, cycle_id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("cycle {cycle_id} does not exist on this node"),
        ));
    };
    if !matches!(cycle.status, CycleStatus::Settled { .. }) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "cycle_not_settled",
            format!("cycle {cycle_id} is not settled yet; its netting is final only then"),
        ));
    }
    // Refused before the scan below reads them all.
    if cycle.matched > MAX_CYCLE_CONFIRMATIONS as u64 {
        return Err(unavailable(format!(
            "cycle {cycle_id} settled {} confirmations; a certificate carries at most {MAX_CYCLE_CONFIRMATIONS}",
            cycle.matched
        )));
    }
    // The cycle's index names every confirmation it settled (and ones it removed).
    let prefix = seisan_contracts::keys::cycle_confirmation_prefix(cycle_id);
    let mut confirmations: Vec<Confirmation> = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = view.scan(&prefix, after.as_deref(), CONFIRMATION_PAGE);
        let Some((last, _)) = page.last() else {
            break;
        };
        after = Some(last.clone());
        for (key, _) in &page {
            let id = ConfirmationId(seisan_contracts::keys::trailing_u64(key));
            let confirmation = seisan_contracts::query::confirmation(&view, id)
                .expect("an indexed confirmation exists");
            confirmations.push(confirmation);
        }
    }
    let tip = read_tip(&context.db).expect("opened store has a tip");
    let record_header = read_block(&context.db, tip.height)
        .expect("tip block stored")
        .header;
    let prove = |key: Vec<u8>, what: &str| {
        let (value, proof) = context
            .db
            .prove(&key, tip.height)
            .map_err(|error| unavailable(error.to_string()))?;
        let value = value.unwrap_or_else(|| panic!("the {what} is in the committed state"));
        Ok::<_, ApiError>((value, proof))
    };
    let records = TipRecords {
        header: record_header,
        cycle: prove(seisan_contracts::keys::cycle(cycle_id), "cycle record")?,
        consortium: prove(seisan_contracts::keys::consortium(), "consortium record")?,
    };
    Ok(CommittedParts {
        cycle,
        confirmations,
        tip: records,
    })
}

/// The node's store as the builder reads it.
struct Store<'a> {
    context: &'a ApiContext,
}

impl CycleSource for Store<'_> {
    fn block(&self, height: Height) -> Option<Block> {
        read_block(&self.context.db, height)
    }

    fn receipts(&self, height: Height) -> Option<(Vec<Receipt>, Vec<Event>)> {
        read_receipts(&self.context.db, height).map(|stored| (stored.receipts, stored.events))
    }

    fn certification(
        &self,
        height: Height,
    ) -> Result<(Vec<BlockHeader>, QuorumCertificate), String> {
        let certificate = read_certificate(&self.context.db, height)
            .ok_or_else(|| format!("block {height} has no stored certificate"))?;
        let headers = descendants(self.context, height, certificate.vote.height)
            .map_err(|error| error.message)?;
        Ok((headers, certificate))
    }
}

/// A settled cycle's certificate: for every confirmation the cycle settled, both
/// members' signed `confirm` transactions with their paths to `txs_root` and their
/// receipts with their paths to `receipts_root`; the `CycleSettled` event (matched
/// count, gross and net per asset) with its path; the cycle record (positions,
/// removals) and the consortium record (the keys of members added by governance) with
/// their Merkle proofs under the state root of this node's certified tip; each block
/// with any descendant headers up to its certified block and its quorum certificate;
/// one validator-set link per epoch change since genesis. `seisan cycle verify N
/// --genesis GENESIS` checks it offline and recomputes the netting.
#[utoipa::path(get, path = "/v1/cycles/{n}/certificate", tag = "settlement",
    params(("n" = u64, Path, description = "The cycle number", minimum = 0)),
    responses(
        (status = 200, description = "The certificate (format seisan-cycle-certificate-v1)", body = v1::CycleCertificate),
        (status = 400, description = "`bad_number`: the cycle number is not a whole number", body = v1::ErrorBody),
        (status = 404, description = "No such cycle on this node", body = v1::ErrorBody),
        (status = 409, description = "`cycle_not_settled`: the cycle is not settled yet (its netting is final only then)", body = v1::ErrorBody),
        (status = 503, description = "`certificate_unavailable`: the node no longer holds a record the certificate needs, or the cycle settled more confirmations than one certificate carries (named in the error)", body = v1::ErrorBody),
    ))]
async fn cycle_certificate(
    State(context): State<ApiContext>,
    Path(n): Path<String>,
) -> Result<Json<v1::CycleCertificate>, ApiError> {
    let cycle_id = CycleId(super::queries::number(&n, "cycle number")?);
    let parts = {
        // The cycle, its confirmations and the record's proof of one committed height
        // (the proof is only of the tip). What is read after the guard is dropped is
        // immutable once committed (past blocks, receipts, certificates, epoch starts),
        // so a large cycle does not hold up the next commit while it is assembled.
        let _guard = context.commit_lock.read().expect("commit lock");
        committed_parts(&context, cycle_id)?
    };
    let store = Store { context: &context };
    let document = build_cycle_certificate(
        &store,
        context.genesis.chain_id.clone(),
        &parts.cycle,
        &parts.confirmations,
        parts.tip,
        |epoch| epoch_links(&context, epoch).map_err(|error| error.message),
    )
    .map_err(|error: BuildError| unavailable(error.to_string()))?;
    Ok(Json(document))
}
