//! The committed state, read: balances (with their proofs), customers' sub-accounts,
//! orders and books, trades, top-ups, quotes, confirmations, settlement cycles and
//! reports, supply and governance.

use seisan_contracts::governance::ProposalView;
use seisan_contracts::query::AssetSupply;
use seisan_state::StateProof;
use seisan_types::block::{BlockHeader, QuorumCertificate};
use seisan_types::clearing::{
    AssetBalance, Confirmation, CustomerBalance, Cycle, Order, Rfq, SettlementReport, TopUpRequest,
    Trade,
};
use seisan_types::governance::ProposalId;
use seisan_types::hash::Hash;
use seisan_types::ids::{AssetId, Height, MemberId};
use seisan_types::membership::Membership;
use seisan_types::ValidatorSet;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /v1/members/{member}/balances`: every asset's balance at the committed tip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Balances {
    pub member: MemberId,
    pub height: Height,
    pub balances: Vec<AssetBalance>,
}

/// `GET /v1/members/{member}/balances?proof=true`: the balances at the committed tip
/// with their Merkle proofs, the tip's header and certificate, and the validator-set
/// links since genesis: what `seisan balance --proof` verifies offline, trusting
/// nothing but the genesis file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BalanceProof {
    pub member: MemberId,
    pub height: Height,
    pub header: BlockHeader,
    pub certificate: QuorumCertificate,
    /// One link per validator-set change since genesis, oldest first.
    #[serde(default)]
    pub epochs: Vec<EpochLink>,
    pub balances: Vec<ProvenBalance>,
}

/// How the validator set went from one epoch to the next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EpochLink {
    /// The new epoch's validator set.
    pub set: ValidatorSet,
    /// The last block of the epoch before; its `next_validators` names `set`'s hash.
    pub last_header: BlockHeader,
    /// The finalization of that block (or of the last of `seals`) by the epoch before.
    pub certificate: QuorumCertificate,
    /// The seals from `last_header`'s child up to the certified one, if any.
    #[serde(default)]
    pub seals: Vec<BlockHeader>,
}

/// One asset's balance with its proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProvenBalance {
    pub asset: AssetId,
    #[serde(default)]
    pub symbol: String,
    /// Hex of the state key.
    pub key: String,
    /// Hex of the codec-encoded balance, or null if the member never held the asset.
    pub value: Option<String>,
    pub proof: StateProof,
}

/// `GET /v1/members/{member}/customers/{asset}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Customers {
    pub customers: Vec<CustomerBalance>,
}

/// `GET /v1/members/{member}/orders`: the member's open orders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Orders {
    pub orders: Vec<Order>,
}

/// `GET /v1/orders/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderDocument {
    pub order: Order,
}

/// `GET /v1/book/{base}/{quote}`: resting orders, best first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Book {
    /// `BASE/QUOTE`, upper case.
    pub pair: String,
    pub bids: Vec<Order>,
    pub asks: Vec<Order>,
}

/// `GET /v1/trades`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Trades {
    pub trades: Vec<Trade>,
}

/// `GET /v1/topups` and `GET /v1/members/{member}/topups`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TopUps {
    pub top_ups: Vec<TopUpRequest>,
}

/// `GET /v1/quotes`: requests for quotes with their answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Quotes {
    pub quotes: Vec<Rfq>,
}

/// `GET /v1/confirmations`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Confirmations {
    pub confirmations: Vec<Confirmation>,
}

/// `GET /v1/cycles`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Cycles {
    pub cycles: Vec<Cycle>,
}

/// `GET /v1/cycles/current`: the open settlement cycle, null before the first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CurrentCycle {
    pub cycle: Option<Cycle>,
}

/// `GET /v1/reports/{height}`: the settlement report of a block, null if it settled
/// nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportDocument {
    pub height: Height,
    pub report: Option<SettlementReport>,
}

/// `GET /v1/supply`: every asset's supply at one committed height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Supply {
    pub height: Height,
    pub state_root: Hash,
    pub assets: Vec<AssetSupply>,
}

/// A governance change scheduled to take effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScheduledChange {
    pub activation_height: Height,
    pub proposal: ProposalId,
}

/// `GET /v1/governance`: the membership that governs the next block, the scheduled
/// changes and a page of proposals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Governance {
    pub height: Height,
    pub membership: Membership,
    pub validator_set_hash: Hash,
    pub scheduled: Vec<ScheduledChange>,
    pub proposals: Vec<ProposalView>,
}

/// `GET /v1/governance/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProposalDocument {
    pub proposal: ProposalView,
}

/// `GET /v1/members/{member}/balances`: the plain balances, or with `proof=true` the
/// proof document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum BalancesAnswer {
    /// With `proof=true`. Listed first so a client reading either tries the richer
    /// shape first.
    Proof(Box<BalanceProof>),
    Plain(Balances),
}
