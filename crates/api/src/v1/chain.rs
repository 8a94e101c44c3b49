//! The chain itself: the node's status, transactions in and out, blocks, members,
//! nonces and evidence of misbehaviour.

use seisan_types::block::{Block, QuorumCertificate};
use seisan_types::genesis::Role;
use seisan_types::hash::Hash;
use seisan_types::ids::Nonce;
use seisan_types::ids::{Height, MemberId, View};
use seisan_types::membership::MemberStatus;
use seisan_types::receipt::{Event, Receipt};
use seisan_types::PublicKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `GET /v1/status`: what the node reports about itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custody_undercovered: Option<bool>,
    /// Where the bank's leg of settlement stands (pending and stalled mirrors); absent
    /// when genesis has no fiat asset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirrors: Option<MirrorStatus>,
    /// While this node is behind the chain: how far it has to go and how fast it is
    /// getting there; absent when it is in step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<CatchUpProgress>,
}

/// Where the bank's leg of settlement stands, in `/v1/status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MirrorStatus {
    /// Settlements whose bank transfer is not confirmed on chain yet, within the bound.
    pub pending: usize,
    /// Settlements unconfirmed for longer than `bound_ms` of block time.
    pub stalled: usize,
    /// The oldest stalled settlement's height and bank reference.
    pub oldest_stalled_height: Option<u64>,
    pub oldest_stalled_reference: Option<String>,
    pub bound_ms: u64,
    /// The counts are lower bounds (more mirrors are open than one read covers).
    pub truncated: bool,
}

/// Where a catch-up stands, in `/v1/status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CatchUpProgress {
    /// The height this node has committed.
    pub height: u64,
    /// The highest finalized height it knows a certificate for.
    pub target: u64,
    /// `target - height`.
    pub remaining: u64,
    /// Blocks committed per second over the last ten seconds; absent until a second of
    /// progress has been seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks_per_second: Option<f64>,
    /// `remaining / blocks_per_second`, rounded up; absent without a rate, or while the
    /// node commits nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
}

/// Where a transaction stands on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TxState {
    /// Admitted and journaled: it will be proposed, and finalized unless a block
    /// rejects it (its receipt then says why).
    Pending,
    /// In a finalized block; `height`, `index` and `receipt` say where and what it did.
    Finalized,
}

/// A transaction's status: the answer to `GET /v1/transactions/{id}`, to
/// `POST /v1/transactions` (202 pending, or 200 when the same signed transaction was
/// already finalized) and each successful result of a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TransactionStatus {
    pub id: Hash,
    pub status: TxState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<Height>,
    /// Its position in the block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

impl TransactionStatus {
    pub fn pending(id: Hash) -> TransactionStatus {
        TransactionStatus {
            id,
            status: TxState::Pending,
            height: None,
            index: None,
            receipt: None,
        }
    }

    pub fn finalized(id: Hash, height: Height, index: u32, receipt: Receipt) -> TransactionStatus {
        TransactionStatus {
            id,
            status: TxState::Finalized,
            height: Some(height),
            index: Some(index),
            receipt: Some(receipt),
        }
    }
}

/// One transaction's result in a batch: its status, or why it was refused (the others
/// are unaffected).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum BatchResult {
    Accepted(TransactionStatus),
    Refused(super::ErrorBody),
}

/// `POST /v1/transactions/batch`: one result per transaction, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BatchResults {
    pub results: Vec<BatchResult>,
}

/// Receipts of a committed block: one per transaction, plus block-level events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockReceipts {
    pub receipts: Vec<Receipt>,
    pub events: Vec<Event>,
}

/// `GET /v1/blocks/{height}`: a finalized block with its certificate. A member that is
/// not an operator gets the header and certificate only (`block.txs` empty, no
/// receipts) and `redacted` saying what was left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockDocument {
    pub hash: Hash,
    pub block: Block,
    pub certificate: QuorumCertificate,
    pub receipts: Option<BlockReceipts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<String>,
}

/// One `block` event of `GET /v1/events` (server-sent events, JSON in `data`): a
/// finalized block with its receipts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockEvent {
    pub height: Height,
    pub hash: Hash,
    pub view: View,
    pub timestamp_ms: u64,
    pub state_root: Hash,
    /// One per transaction, in block order.
    pub receipts: Vec<Receipt>,
    /// Block-level events (cycle closes, expiries, ...).
    pub events: Vec<Event>,
}

/// One member as of the committed state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemberInfo {
    pub id: MemberId,
    pub name: String,
    pub role: Role,
    pub validator: bool,
    /// The member's current ed25519 key.
    pub public_key: PublicKey,
    pub status: MemberStatus,
}

/// `GET /v1/members`: genesis's members and those governance added, with their current
/// keys and status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Members {
    pub members: Vec<MemberInfo>,
}

/// One lane's nonces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LaneNonce {
    /// The last nonce finalized; absent before the lane's first transaction.
    pub committed: Option<Nonce>,
    /// The highest nonce pending in this node's mempool.
    pub pending: Option<Nonce>,
    /// The nonce this node accepts for the lane's next transaction.
    pub next: Nonce,
}

/// `GET /v1/members/{member}/nonce`: the member lane's nonces at the top level (what
/// a client signs in) and every lane's under `lanes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NonceInfo {
    pub member: MemberId,
    pub committed: Option<Nonce>,
    pub pending: Option<Nonce>,
    pub next: Nonce,
    /// By lane name (`member`, `node`); empty from a node older than lanes, whose
    /// top-level nonces are the member lane's.
    #[serde(default)]
    pub lanes: BTreeMap<String, LaneNonce>,
}

/// One piece of evidence of misbehaviour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceEntry {
    pub member: MemberId,
    /// The consensus view of a double-signing (absent for attestation evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<u64>,
    /// `DoubleVote`, `DoubleProposal`, ... or `ContradictingAttestation`.
    pub kind: String,
    /// Whether the signatures in `evidence` verify against the member's key.
    pub verified: bool,
    /// The finalized height of an attestation's contradicting transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<Height>,
    /// What the attestation was about (`{"bank_entry": {"entry": ...}}`,
    /// `{"deposit": {"deposit": ...}}` or `{"payout": {"withdrawal": ...}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<seisan_types::attestation::AttestedSubject>,
    /// The signed messages themselves, for anyone to check.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
}

/// `GET /v1/evidence`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceList {
    pub evidence: Vec<EvidenceEntry>,
}
