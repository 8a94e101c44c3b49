//! The bank's leg of settlement: reconciliation of the ledger's fiat with the bank's
//! trust accounts (`GET /v1/reconciliation`) and the bank transfers one block's
//! settlement needs (`GET /v1/mirrors/{height}`).

use seisan_contracts::mirror::MirrorSummary;
use seisan_types::mirror::{MirrorRecord, MirrorState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `GET /v1/reconciliation`. Each fiat asset is its own currency at the bank (trust
/// accounts `<member>:trust` in the first, `<member>:trust:<CURRENCY>` in others):
/// `currencies` holds each currency's own answer; the top-level `height`, `exchanges`
/// and `unexplained_total` are the first fiat asset's (`asset`), while `clean`,
/// `outstanding`, `unconfirmed` and `mirrors` cover every currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reconciliation {
    /// The committed height of the first currency's ledger snapshot.
    pub height: u64,
    /// The first fiat asset's symbol.
    pub asset: String,
    pub bank_connected: bool,
    pub exchanges: Vec<ExchangeLine>,
    pub unexplained_total: String,
    /// Unconfirmed mirrors of every currency.
    pub mirrors: MirrorSummary,
    /// Every settlement (of any currency) whose bank transfer is not confirmed on chain.
    pub unconfirmed: Vec<MirrorLine>,
    /// True only when the bank is connected, every trust account is readable and
    /// agrees, nothing conflicts and every settled fiat movement is confirmed on chain.
    pub clean: bool,
    /// Why `clean` is false, one sentence each (a currency other than the first is
    /// named first: `USD: ...`).
    pub outstanding: Vec<String>,
    /// Per currency symbol, that currency's reconciliation.
    pub currencies: BTreeMap<String, CurrencyReconciliation>,
    /// How long (block time) a settlement's bank transfer may stay unconfirmed before
    /// it counts as stalled.
    pub mirror_confirm_bound_ms: u64,
    /// The bank watcher's last error, null when its last pass succeeded.
    pub watcher_error: Option<String>,
}

/// One currency's reconciliation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CurrencyReconciliation {
    /// The committed height of the ledger snapshot.
    pub height: u64,
    pub exchanges: Vec<ExchangeLine>,
    /// The sum of the exchanges' unexplained differences' magnitudes.
    pub unexplained_total: String,
    pub mirrors: MirrorSummary,
    pub unconfirmed: Vec<MirrorLine>,
    pub clean: bool,
    /// Why `clean` is false, one sentence each.
    pub outstanding: Vec<String>,
}

/// One exchange's line: its ledger fiat beside its trust balance at the bank, with
/// what is in flight. Amounts are minor units as decimal strings (signed where a
/// difference can be negative).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExchangeLine {
    /// The exchange's name.
    pub member: String,
    pub ledger_fiat: String,
    /// Debited in the ledger, not yet paid out of the trust account.
    pub pending_withdrawals: String,
    /// Net settlement the ledger moved and the bank's statement does not show yet.
    pub unmirrored_settlement: String,
    /// Net settlement not yet confirmed on chain (at the bank or not).
    pub unconfirmed_mirrors: String,
    /// The trust balance at the bank; null when the account was not read.
    pub bank_trust: Option<String>,
    /// Credits on the statement the ledger has not applied yet.
    pub unattested_credits: Option<String>,
    /// Withdrawal payments on the statement the ledger has not applied yet.
    pub unattested_withdrawal_payments: Option<String>,
    /// Statement entries the ledger acted on with other facts than the statement shows.
    pub conflicting_entries: Vec<String>,
    /// Bank trust minus what the ledger and the flows in flight explain; null when the
    /// account is not readable.
    pub unexplained_difference: Option<String>,
    /// The bank's trust balance equals the ledger's plus what is in flight, and no
    /// entry is conflicting.
    pub reconciled: bool,
}

/// One settlement whose bank leg is not confirmed on chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MirrorLine {
    /// The settling height.
    pub height: u64,
    /// Member names.
    pub payer: String,
    pub payee: String,
    /// Minor units, a decimal string.
    pub amount: String,
    /// The bank reference, `settle-<height>-<payer>-<payee>`.
    pub reference: String,
    pub settled_at_ms: u64,
    pub state: MirrorState,
    /// Whether the transfer is on a statement this node read (the bank did it; the
    /// validators' attestations are what is missing).
    pub at_bank: bool,
    /// How many validators attested it so far.
    pub attestations: usize,
}

/// `GET /v1/mirrors/{height}`: the bank transfers a block's settlement needs (empty
/// when its settlement moved no fiat).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Mirrors {
    pub height: u64,
    pub mirrors: Vec<MirrorAt>,
}

/// One mirror and where it stands at the tip's block time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MirrorAt {
    pub state: MirrorState,
    /// The transfer, its validators' attestations and, once q agreed, its
    /// confirmation (the bank's debit and credit entry ids).
    pub record: MirrorRecord,
}
