//! Certificates a node serves and anyone verifies offline with only the genesis file:
//! a fill's settlement certificate (`GET /v1/trades/{id}/certificate`, checked by
//! `seisan verify`) and a settled cycle's certificate (`GET /v1/cycles/{n}/certificate`,
//! checked by `seisan cycle verify`, which recomputes the netting).
//!
//! Nothing in a document is trusted until it is verified; the verifiers (the CLI's
//! `certificate` and `cycle_verify` modules) read these same types, and refuse unknown
//! fields so a document cannot carry claims they would silently skip.

use super::EpochLink;
use seisan_state::StateProof;
use seisan_types::block::{BlockHeader, QuorumCertificate};
use seisan_types::clearing::{ConfirmationId, CycleId, Pair, TradeId};
use seisan_types::hash::MerkleStep;
use seisan_types::ids::{AssetId, ChainId, Height, MemberId};
use seisan_types::receipt::{Receipt, ReceiptLeaf};
use seisan_types::tx::SignedTransaction;
use seisan_types::Amount;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The `format` of a trade certificate document.
pub const TRADE_CERTIFICATE_FORMAT: &str = "seisan-trade-certificate-v1";
/// The `format` of a cycle certificate document.
pub const CYCLE_CERTIFICATE_FORMAT: &str = "seisan-cycle-certificate-v1";

/// `GET /v1/trades/{id}/certificate`: a settlement certificate for one fill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TradeCertificate {
    /// `seisan-trade-certificate-v1`.
    pub format: String,
    pub chain_id: ChainId,
    pub fill: Fill,
    /// The transaction whose receipt holds the fill, with its path to `txs_root`;
    /// null for a fill made by block-level work.
    pub source: Option<Source>,
    /// The receipt (or block-level event) holding the fill.
    pub receipt: ReceiptLeaf,
    /// Its Merkle path to the header's `receipts_root`.
    pub receipt_path: Vec<MerkleStep>,
    pub header: BlockHeader,
    /// Headers from the block's child up to the certified block, when the certificate
    /// finalized a descendant.
    pub descendants: Vec<BlockHeader>,
    pub certificate: QuorumCertificate,
    /// One link per validator-set change from genesis to the certificate's epoch.
    pub epochs: Vec<EpochLink>,
}

/// The fill, as a reader wants it: both legs spelled out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fill {
    pub trade: TradeId,
    pub pair: Pair,
    pub buyer: MemberId,
    pub seller: MemberId,
    /// Base minor units.
    pub quantity: Amount,
    /// Quote minor units per whole base unit.
    pub price: Amount,
    pub base_leg: Leg,
    pub quote_leg: Leg,
    pub height: Height,
    pub timestamp_ms: u64,
}

/// One leg of a fill: what moved from whom to whom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Leg {
    pub asset: AssetId,
    pub from: MemberId,
    pub to: MemberId,
    pub amount: Amount,
}

/// The transaction a fill came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub transaction: SignedTransaction,
    /// Its Merkle path to the header's `txs_root`.
    pub path: Vec<MerkleStep>,
}

/// `GET /v1/cycles/{n}/certificate`: a settled cycle's certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CycleCertificate {
    /// `seisan-cycle-certificate-v1`.
    pub format: String,
    pub chain_id: ChainId,
    pub cycle: CycleId,
    /// One link per validator-set change from genesis to the latest epoch used below.
    pub epochs: Vec<EpochLink>,
    /// Every block the proofs below refer to (by index), each with its certification.
    pub blocks: Vec<CertifiedBlock>,
    /// Every confirmation the cycle settled, in id order.
    pub confirmations: Vec<ProvenConfirmation>,
    /// The cycle's `CycleSettled` event.
    pub settlement: ProvenSettlement,
    /// The cycle record (positions, removals) in a certified state.
    pub record: ProvenRecord,
    /// The consortium record in the same state: the keys of members added by
    /// governance, who are not in the genesis file.
    pub consortium: ProvenRecord,
}

/// A block header with what makes it final.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertifiedBlock {
    pub header: BlockHeader,
    /// Headers from the block's child up to the certified block, when the certificate
    /// finalized a descendant.
    pub descendants: Vec<BlockHeader>,
    pub certificate: QuorumCertificate,
}

/// A confirmation: both members' submissions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvenConfirmation {
    pub confirmation: ConfirmationId,
    /// The first and the second (matching) submission.
    pub submissions: Vec<ProvenSubmission>,
}

/// One signed `confirm` transaction, in its block, with its receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvenSubmission {
    /// Index into [`CycleCertificate::blocks`].
    pub block: usize,
    pub transaction: SignedTransaction,
    /// The transaction's path to the header's `txs_root`.
    pub tx_path: Vec<MerkleStep>,
    pub receipt: Receipt,
    /// The receipt's path to the header's `receipts_root`.
    pub receipt_path: Vec<MerkleStep>,
}

/// The receipt (of a `close_cycle` or top-up cure) or block-level event holding the
/// cycle's `CycleSettled` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvenSettlement {
    /// Index into [`CycleCertificate::blocks`].
    pub block: usize,
    pub leaf: ReceiptLeaf,
    /// Its path to the header's `receipts_root`.
    pub path: Vec<MerkleStep>,
}

/// A state record (the cycle's, or the consortium's) under a certified state root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvenRecord {
    /// Index into [`CycleCertificate::blocks`].
    pub block: usize,
    /// Hex of the codec-encoded value (the cycle, or the consortium configuration).
    pub value: String,
    pub proof: StateProof,
}
