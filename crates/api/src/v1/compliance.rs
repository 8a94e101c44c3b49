//! The daily compliance report (Payment Services Act art. 63-11, Cabinet Office
//! Ordinance art. 27): `GET /v1/compliance/days`, `GET /v1/compliance/{date}`; a
//! member's end-of-day statement (`GET /v1/compliance/{date}/statements/{member}`) is
//! a [`super::BalanceProof`] kept for the day's last height.

use seisan_types::hash::Hash;
use seisan_types::ids::Height;
use seisan_types::{Amount, AssetId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /v1/compliance/days`: the business days whose end this node recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ComplianceDays {
    /// The node's `--day-cutoff` (UTC, `HH:MM:SS`).
    pub cutoff: String,
    /// The label of the business day the node's tip is in (`YYYY-MM-DD`).
    pub today: String,
    /// Oldest first.
    pub days: Vec<RecordedDay>,
}

/// A business day whose end this node recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordedDay {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// The day's last height.
    pub height: Height,
}

/// `GET /v1/compliance/{date}`: the compliance report of a business day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ComplianceReport {
    pub date: String,
    pub cutoff: String,
    pub day_end_ms: u64,
    /// Whether the day has ended (a recorded snapshot), or this is the day so far at
    /// the node's current height.
    #[serde(rename = "final")]
    pub is_final: bool,
    pub height: Height,
    pub block_hash: Hash,
    pub block_timestamp_ms: u64,
    pub state_root: Hash,
    /// The public-chain block the wallets were read at; null when not read.
    pub public_chain_block: Option<u64>,
    pub public_chain_block_time_s: Option<u64>,
    pub assets: Vec<AssetLine>,
    pub fiat: Vec<FiatLine>,
    pub breaches: Vec<BreachLine>,
    /// What could not be checked, one sentence each.
    pub unverified: Vec<String>,
    /// No breach and nothing unverified.
    pub compliant: bool,
    /// The members whose end-of-day statements (balances with proofs) are kept.
    pub statements: Vec<String>,
}

/// One crypto asset's line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AssetLine {
    pub asset: AssetId,
    pub symbol: String,
    /// Balances + pending withdrawals: what the members are owed on chain.
    pub customer_holdings: Amount,
    pub balances: Amount,
    pub pending_withdrawals: Amount,
    /// Null when this node could not read the public chain.
    pub hot: Option<Amount>,
    pub cold: Option<Amount>,
    /// min(cold, holdings) / holdings in basis points: the share of customer holdings
    /// kept cold.
    pub cold_share_bps: Option<u64>,
    pub required_cold_share_bps: u64,
    /// hot / (hot + cold).
    pub hot_share_bps: Option<u64>,
    /// (hot + cold) / holdings; saturates at u64::MAX.
    pub coverage_bps: Option<u64>,
}

/// One exchange's line per fiat currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FiatLine {
    /// The exchange's name.
    pub member: String,
    pub currency: String,
    pub customer_fiat: Amount,
    pub pending_withdrawals: Amount,
    /// customer fiat + pending withdrawals: what the trust account must hold.
    pub owed: Amount,
    pub trust: TrustReading,
    /// trust / owed in basis points; saturates at u64::MAX.
    pub coverage_bps: Option<u64>,
}

/// One trust account as the bank showed it (`read` names which).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "read")]
pub enum TrustReading {
    Read {
        balance: Amount,
    },
    /// This node has no bank connection.
    NoBank,
    /// The bank refused this node's token for the account.
    Unreadable,
    Failed {
        reason: String,
    },
}

/// A rule broken, by whom or in what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BreachLine {
    /// `cold_share`, `reserves_coverage` or `trust_shortfall`.
    pub rule: String,
    /// The asset symbol, or `member/CURRENCY`.
    pub subject: String,
    pub detail: String,
}
