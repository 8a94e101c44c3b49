//! Custody on the public chain: proof of reserves (`GET /v1/reserves`), crypto
//! withdrawals (`GET /v1/withdrawals`) and deposits (`GET /v1/deposits`).

use seisan_types::custody::{ChainAddress, DepositRecord, Withdrawal, WithdrawalId};
use seisan_types::{Amount, AssetId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /v1/reserves`: proof of reserves at the public chain's newest block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reserves {
    /// The public-chain block the hot and cold balances were read at.
    pub public_chain_block: u64,
    /// The node's finalized height when it answered (the liabilities are of about
    /// this height).
    pub ledger_height: u64,
    pub hot_address: ChainAddress,
    pub cold_address: ChainAddress,
    /// `undercovered` when any asset's custody is below its liabilities.
    pub status: ReservesStatus,
    pub assets: Vec<AssetReserves>,
    /// Withdrawals the hot wallet cannot cover right now (clearing-house node only).
    pub waiting_for_hot_wallet: Vec<WithdrawalId>,
    /// The custody watcher's last error; null when its last pass succeeded.
    pub watcher_error: Option<String>,
    /// Whether payouts and sweeps wait for this node's ledger to catch up.
    pub payer_waiting_for_ledger: bool,
    /// Why payouts and sweeps are held (the hot wallet mined transactions the payout
    /// journal never recorded); null when they are not.
    pub payer_journal_behind: Option<String>,
    /// The public-chain block the watcher has scanned deposits through; null before
    /// its first scan.
    pub scanned_until_block: Option<u64>,
}

/// Whether custody covers the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReservesStatus {
    Covered,
    Undercovered,
}

/// One chain asset's reserves: the ledger's liabilities beside the hot and cold
/// balances on the public chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AssetReserves {
    pub asset: AssetId,
    pub symbol: String,
    /// Member balances (credited - debited) in minor units.
    pub balances: Amount,
    pub pending_withdrawals: Amount,
    pub liabilities: Amount,
    pub hot: Amount,
    pub cold: Amount,
    /// (hot + cold) / liabilities in basis points; null when nothing is owed. Saturates
    /// at u64::MAX (a few wei owed against a funded wallet is a ratio past any JSON
    /// reader's exact integers).
    pub coverage_bps: Option<u64>,
    /// hot / (hot + cold) in basis points; null when custody is empty.
    pub hot_share_bps: Option<u64>,
    pub hot_cap_bps: u32,
    /// Coverage is below 100 percent: custody does not cover the ledger.
    pub undercovered: bool,
}

/// `GET /v1/withdrawals`: crypto withdrawals in id order (oldest first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Withdrawals {
    pub withdrawals: Vec<Withdrawal>,
    /// Those of the listed withdrawals (every one, for an operator) the hot wallet
    /// cannot cover right now.
    pub waiting_for_hot_wallet: Vec<WithdrawalId>,
    /// The `after` of the next page when this one is full; null at the end.
    pub next_after: Option<u64>,
}

/// `GET /v1/deposits`: public-chain deposits in deposit-id order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Deposits {
    pub deposits: Vec<DepositRecord>,
    /// The `after` of the next page (a deposit id, 64 hex digits) when this one is
    /// full; null at the end.
    pub next_after: Option<String>,
}
