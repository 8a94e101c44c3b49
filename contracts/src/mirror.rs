//! The bank's leg of settlement on chain (patent S250-S290, claims 7-8).
//!
//! The ledger settles fiat first; the accounting system (the trust bank) must then move
//! the same money between the exchanges' trust accounts. So that the chain shows the
//! fiat leg as done, and shows it when it is not:
//! - At the end of every block whose settlement report moved fiat by fills or cycle
//!   netting, [`open_for_report`] nets each member's change and pairs payers with
//!   payees in member order ([`mirror_transfers`]); each pair opens one
//!   [`MirrorRecord`] with the bank reference `settle-<height>-<payer>-<payee>`
//!   ([`mirror_reference`]), which the clearing house uses for the transfer (the bank
//!   deduplicates by reference, so a retry never moves money twice).
//! - `AttestMirror(fact)`: a validator states the bank's confirmation of that transfer
//!   (its debit and credit entry ids). The terms (asset, amount, reference) must be the
//!   record's; the entry ids are what the validator read at the bank. When q validators
//!   attested identical facts the mirror is confirmed (whatever a minority attested);
//!   later attestations are still recorded, one per validator.
//! - A mirror still open [`MIRROR_CONFIRM_BOUND_MS`] of block time after its settling
//!   block is stalled ([`mirror_state`]); [`mirror_summary`] counts them for the
//!   node's status, metrics and reconciliation. Stalled is never silent "in flight".
//!
//! Every fiat asset is mirrored, each in its own currency's trust accounts at the bank:
//! one mirror per height, payer, payee and asset. The first fiat asset's references are
//! `settle-<height>-<payer>-<payee>`; another's carry its symbol,
//! `settle-<height>-<payer>-<payee>-<SYMBOL>` ([`mirror_reference_in`]).
//!
//! State (table `mirror`, values [`MirrorValue`]): `0x80` height u64, payer u32, payee
//! u32, asset u32 -> `Record`; `0x81` same key -> `Open` (mirrors not yet confirmed,
//! oldest first).
//!
//! The validator set and quorum come from [`crate::attestation`], the one place that
//! knows them.

use crate::attestation;
use crate::error::ContractError;
pub use crate::keys::{MIRROR, OPEN_MIRROR};
use crate::ledger::Ledger;
use seisan_types::bank::{BankEntryId, MAX_BANK_ENTRY_ID_BYTES};
use seisan_types::clearing::{ChangeReason, SettlementReport};
use seisan_types::mirror::{MirrorConfirmation, MirrorFact, MirrorId, MirrorRecord, MirrorState};
use seisan_types::state::StateView;
use seisan_types::tx::TxBody;
use seisan_types::{codec, Amount, AssetId, AssetKind, Genesis, Height, MemberId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long (block time) after its settling block a mirror may stay unconfirmed before
/// it is reported stalled. The clearing house polls the bank every 0.5 s and each
/// validator attests on its next pass, so a healthy mirror confirms in a few blocks;
/// 30 s leaves room for a restart of the clearing-house node without crying wolf.
pub const MIRROR_CONFIRM_BOUND_MS: u64 = 30_000;
/// The most mirror records one query returns.
pub const MAX_MIRROR_RECORDS_PER_QUERY: usize = 1000;
/// The longest bank transfer reference, in bytes (the bank's own name limit).
pub const MAX_MIRROR_REFERENCE_BYTES: usize = 128;

/// A value of the mirror table (see the module docs for the keys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MirrorValue {
    Record(MirrorRecord),
    Open,
}

/// Why a mirror attestation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MirrorError {
    #[error("member {member} is not a validator, so it cannot attest")]
    NotValidator { member: MemberId },
    #[error("no settlement at height {} needs a transfer from member {} to member {}", mirror.height, mirror.payer, mirror.payee)]
    UnknownMirror { mirror: MirrorId },
    #[error("the attested terms differ from the settlement's: {field}")]
    TermsDiffer {
        mirror: MirrorId,
        field: &'static str,
    },
    #[error("a bank entry id must be 1 to {MAX_BANK_ENTRY_ID_BYTES} printable ASCII bytes")]
    BadEntryId,
    #[error("member {member} already attested this mirror")]
    AlreadyAttested { member: MemberId, mirror: MirrorId },
}

impl MirrorError {
    pub fn code(&self) -> &'static str {
        match self {
            MirrorError::NotValidator { .. } => "not_validator",
            MirrorError::UnknownMirror { .. } => "unknown_mirror",
            MirrorError::TermsDiffer { .. } => "mirror_terms_differ",
            MirrorError::BadEntryId => "bad_bank_entry_id",
            MirrorError::AlreadyAttested { .. } => "already_attested",
        }
    }
}

impl From<MirrorError> for ContractError {
    fn from(source: MirrorError) -> ContractError {
        ContractError::Mirror { source }
    }
}

fn id_bytes(id: MirrorId) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(20);
    bytes.extend_from_slice(&id.height.0.to_be_bytes());
    bytes.extend_from_slice(&id.payer.0.to_be_bytes());
    bytes.extend_from_slice(&id.payee.0.to_be_bytes());
    bytes.extend_from_slice(&id.asset.0.to_be_bytes());
    bytes
}

pub fn record_key(id: MirrorId) -> Vec<u8> {
    let mut key = vec![MIRROR];
    key.extend_from_slice(&id_bytes(id));
    key
}

pub fn open_key(id: MirrorId) -> Vec<u8> {
    let mut key = vec![OPEN_MIRROR];
    key.extend_from_slice(&id_bytes(id));
    key
}

fn id_of_open_key(key: &[u8]) -> MirrorId {
    assert_eq!(key.len(), 21, "open mirror key: table byte and 20 bytes");
    MirrorId {
        height: Height(u64::from_be_bytes(key[1..9].try_into().expect("8 bytes"))),
        payer: MemberId(u32::from_be_bytes(key[9..13].try_into().expect("4 bytes"))),
        payee: MemberId(u32::from_be_bytes(key[13..17].try_into().expect("4 bytes"))),
        asset: AssetId(u32::from_be_bytes(key[17..21].try_into().expect("4 bytes"))),
    }
}

/// The genesis's first fiat asset (its mirrors' references carry no currency).
pub fn mirror_asset(genesis: &Genesis) -> Option<AssetId> {
    fiat_assets(genesis).into_iter().next()
}

/// Every fiat asset of the genesis, in asset order: each is mirrored in its own
/// currency (the asset's symbol) at the bank.
pub fn fiat_assets(genesis: &Genesis) -> Vec<AssetId> {
    genesis
        .assets
        .iter()
        .enumerate()
        .filter(|(_, asset)| asset.kind == AssetKind::Fiat)
        .map(|(index, _)| AssetId(index as u32))
        .collect()
}

/// The bank transfer reference of a mirror of the first fiat asset (member names, as
/// the bank's parties).
pub fn mirror_reference(height: Height, payer: &str, payee: &str) -> String {
    format!("settle-{}-{payer}-{payee}", height.0)
}

/// The bank transfer reference of a mirror of `asset`: [`mirror_reference`] for the
/// first fiat asset, with `-<SYMBOL>` appended for any other.
pub fn mirror_reference_in(
    genesis: &Genesis,
    asset: AssetId,
    height: Height,
    payer: &str,
    payee: &str,
) -> String {
    let base = mirror_reference(height, payer, payee);
    if mirror_asset(genesis) == Some(asset) {
        return base;
    }
    let symbol = &genesis.asset(asset).expect("a genesis asset").symbol;
    format!("{base}-{symbol}")
}

/// The bank transfers that mirror one block's settlement: each member's net change of
/// `asset` from fills and netting, payers matched to payees in member order. Pure.
pub fn mirror_transfers(
    report: &SettlementReport,
    asset: AssetId,
) -> Vec<(MemberId, MemberId, Amount)> {
    let mut net: BTreeMap<MemberId, i128> = BTreeMap::new();
    for entry in &report.entries {
        let settles = matches!(entry.reason, ChangeReason::Fill | ChangeReason::Netting);
        if entry.asset != asset || !settles {
            continue;
        }
        let change = net.entry(entry.member).or_default();
        *change += entry.increase.0 as i128 - entry.decrease.0 as i128;
    }
    assert_eq!(net.values().sum::<i128>(), 0, "settlement conserves fiat");
    let mut payers: Vec<(MemberId, u128)> = net
        .iter()
        .filter(|(_, change)| **change < 0)
        .map(|(member, change)| (*member, change.unsigned_abs()))
        .collect();
    let mut payees: Vec<(MemberId, u128)> = net
        .iter()
        .filter(|(_, change)| **change > 0)
        .map(|(member, change)| (*member, *change as u128))
        .collect();
    let mut transfers = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < payers.len() && j < payees.len() {
        let amount = payers[i].1.min(payees[j].1);
        transfers.push((payers[i].0, payees[j].0, Amount(amount)));
        payers[i].1 -= amount;
        payees[j].1 -= amount;
        if payers[i].1 == 0 {
            i += 1;
        }
        if payees[j].1 == 0 {
            j += 1;
        }
    }
    transfers
}

/// Opens one mirror per transfer the block's settlement needs (end of block, after
/// the report is stored). Commits the table itself: it runs outside any step.
pub(crate) fn open_for_report(ledger: &mut Ledger<'_>, report: &SettlementReport) {
    for asset in fiat_assets(ledger.genesis) {
        open_for_asset(ledger, report, asset);
    }
    ledger.tables.mirrors.commit();
}

fn open_for_asset(ledger: &mut Ledger<'_>, report: &SettlementReport, asset: AssetId) {
    for (payer, payee, amount) in mirror_transfers(report, asset) {
        let id = MirrorId {
            height: report.height,
            payer,
            payee,
            asset,
        };
        let name = |member: MemberId| {
            ledger
                .config
                .member(member)
                .map(|found| found.name.clone())
                .expect("settlement names genesis members")
        };
        let reference = mirror_reference_in(
            ledger.genesis,
            asset,
            report.height,
            &name(payer),
            &name(payee),
        );
        assert!(
            ledger
                .tables
                .mirrors
                .get_cloned(ledger.view, &record_key(id))
                .is_none(),
            "one mirror per height, pair and asset"
        );
        let record = MirrorRecord {
            mirror: id,
            asset,
            amount,
            reference,
            settled_at_ms: report.timestamp_ms,
            attestations: Vec::new(),
            confirmed: None,
        };
        ledger
            .tables
            .mirrors
            .put(record_key(id), MirrorValue::Record(record));
        ledger.tables.mirrors.put(open_key(id), MirrorValue::Open);
    }
}

/// Whether `body` is a mirror transaction (dispatched to [`execute`]).
pub fn is_mirror(body: &TxBody) -> bool {
    matches!(body, TxBody::AttestMirror(_))
}

/// Runs one mirror transaction of `member` (admitted, inside the ledger's atomic step).
pub(crate) fn execute(
    ledger: &mut Ledger<'_>,
    member: MemberId,
    body: &TxBody,
) -> Result<(), ContractError> {
    match body {
        TxBody::AttestMirror(fact) => attest(ledger, member, fact),
        _ => unreachable!("execute is called only for mirror bodies"),
    }
}

fn valid_entry_id(entry: &BankEntryId) -> bool {
    !entry.0.is_empty()
        && entry.0.len() <= MAX_BANK_ENTRY_ID_BYTES
        && entry.0.bytes().all(|byte| byte.is_ascii_graphic())
}

fn attest(
    ledger: &mut Ledger<'_>,
    attester: MemberId,
    fact: &MirrorFact,
) -> Result<(), ContractError> {
    if !attestation::is_attester(ledger, attester) {
        return Err(MirrorError::NotValidator { member: attester }.into());
    }
    if !valid_entry_id(&fact.debit_entry) || !valid_entry_id(&fact.credit_entry) {
        return Err(MirrorError::BadEntryId.into());
    }
    let id = fact.mirror;
    let key = record_key(id);
    let mut record = match ledger.tables.mirrors.get_cloned(ledger.view, &key) {
        Some(MirrorValue::Record(record)) => record,
        Some(other) => panic!("mirror key holds {other:?}"),
        None => return Err(MirrorError::UnknownMirror { mirror: id }.into()),
    };
    // The terms are the ledger's own; only what the bank assigned (the entry ids) is
    // the attester's word.
    let differ = |field| Err(MirrorError::TermsDiffer { mirror: id, field }.into());
    if fact.asset != record.asset {
        return differ("asset");
    }
    if fact.amount != record.amount {
        return differ("amount");
    }
    if fact.reference != record.reference {
        return differ("reference");
    }
    if record.attestations.iter().any(|(by, _)| *by == attester) {
        return Err(MirrorError::AlreadyAttested {
            member: attester,
            mirror: id,
        }
        .into());
    }
    assert!(
        record.attestations.len() < ledger.config.member_count(),
        "one attestation per member"
    );
    record.attestations.push((attester, fact.clone()));
    // Only validators of the current set count (one that left since it attested
    // does not).
    let agreeing = attestation::agreeing(
        ledger,
        record
            .attestations
            .iter()
            .filter(|(_, earlier)| earlier == fact)
            .map(|(by, _)| by),
    );
    if record.confirmed.is_none() && agreeing >= attestation::quorum(ledger) {
        record.confirmed = Some(MirrorConfirmation {
            debit_entry: fact.debit_entry.clone(),
            credit_entry: fact.credit_entry.clone(),
            confirmed_at_ms: ledger.now_ms(),
        });
        ledger.tables.mirrors.delete(open_key(id));
    }
    ledger.tables.mirrors.put(key, MirrorValue::Record(record));
    Ok(())
}

// ---- queries ------------------------------------------------------------------------

fn decode(bytes: &[u8]) -> MirrorValue {
    codec::decode(bytes).expect("state holds a decodable mirror value")
}

/// A mirror's record, if its settlement needed one.
pub fn mirror(view: &dyn StateView, id: MirrorId) -> Option<MirrorRecord> {
    match view.get(&record_key(id)).map(|bytes| decode(&bytes)) {
        Some(MirrorValue::Record(record)) => Some(record),
        _ => None,
    }
}

/// The mirrors a block's settlement opened (confirmed or not), in member order.
pub fn mirrors_at(view: &dyn StateView, height: Height) -> Vec<MirrorRecord> {
    let mut prefix = vec![MIRROR];
    prefix.extend_from_slice(&height.0.to_be_bytes());
    view.scan(&prefix, None, MAX_MIRROR_RECORDS_PER_QUERY)
        .into_iter()
        .filter_map(|(_, bytes)| match decode(&bytes) {
            MirrorValue::Record(record) => Some(record),
            MirrorValue::Open => None,
        })
        .collect()
}

/// Mirrors not yet confirmed, oldest first, at most `limit` (at most
/// [`MAX_MIRROR_RECORDS_PER_QUERY`]).
pub fn open_mirrors(view: &dyn StateView, limit: usize) -> Vec<MirrorRecord> {
    view.scan(
        &[OPEN_MIRROR],
        None,
        limit.min(MAX_MIRROR_RECORDS_PER_QUERY),
    )
    .into_iter()
    .map(|(key, _)| {
        let id = id_of_open_key(&key);
        mirror(view, id).expect("an open mirror has a record")
    })
    .collect()
}

/// Where `record` stands at block time `now_ms`. Pure.
pub fn mirror_state(record: &MirrorRecord, now_ms: u64) -> MirrorState {
    if record.confirmed.is_some() {
        MirrorState::Confirmed
    } else if now_ms.saturating_sub(record.settled_at_ms) > MIRROR_CONFIRM_BOUND_MS {
        MirrorState::Stalled
    } else {
        MirrorState::Pending
    }
}

/// The unconfirmed mirrors at block time `now_ms`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MirrorSummary {
    /// Unconfirmed mirrors within the bound.
    pub pending: usize,
    /// Unconfirmed mirrors past [`MIRROR_CONFIRM_BOUND_MS`].
    pub stalled: usize,
    /// The oldest stalled mirror's settling height and bank reference.
    // Exactly two elements, as serde writes and reads them.
    #[schema(min_items = 2)]
    pub oldest_stalled: Option<(Height, String)>,
    /// True when more mirrors are open than one query reads (the counts are then
    /// lower bounds).
    pub truncated: bool,
}

/// Counts `open` (unconfirmed mirrors, oldest first) at block time `now_ms`. Pure.
pub fn summarize(open: &[MirrorRecord], now_ms: u64, truncated: bool) -> MirrorSummary {
    let mut summary = MirrorSummary {
        truncated,
        ..MirrorSummary::default()
    };
    for record in open {
        match mirror_state(record, now_ms) {
            MirrorState::Confirmed => {}
            MirrorState::Pending => summary.pending += 1,
            MirrorState::Stalled => {
                summary.stalled += 1;
                if summary.oldest_stalled.is_none() {
                    summary.oldest_stalled = Some((record.mirror.height, record.reference.clone()));
                }
            }
        }
    }
    summary
}

/// [`summarize`] over the committed open mirrors.
pub fn mirror_summary(view: &dyn StateView, now_ms: u64) -> MirrorSummary {
    let open = open_mirrors(view, MAX_MIRROR_RECORDS_PER_QUERY);
    let truncated = open.len() == MAX_MIRROR_RECORDS_PER_QUERY;
    summarize(&open, now_ms, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use seisan_types::clearing::{Account, ReportEntry};

    fn line(member: u32, reason: ChangeReason, increase: u128, decrease: u128) -> ReportEntry {
        ReportEntry {
            member: MemberId(member),
            asset: AssetId(1),
            account: Account::Inventory,
            reason,
            increase: Amount(increase),
            decrease: Amount(decrease),
        }
    }

    #[test]
    fn mirror_transfers_net_fills_and_netting_per_member() {
        let report = SettlementReport {
            height: Height(5),
            timestamp_ms: 0,
            entries: vec![
                line(1, ChangeReason::Fill, 0, 100),
                line(2, ChangeReason::Fill, 100, 0),
                line(2, ChangeReason::Netting, 0, 30),
                line(3, ChangeReason::Netting, 30, 0),
                // Deposits and allocations are not settlement.
                line(1, ChangeReason::Deposit, 500, 0),
                line(3, ChangeReason::Allocation, 0, 7),
            ],
        };
        assert_eq!(
            mirror_transfers(&report, AssetId(1)),
            vec![
                (MemberId(1), MemberId(2), Amount(70)),
                (MemberId(1), MemberId(3), Amount(30)),
            ]
        );
        assert!(mirror_transfers(&report, AssetId(0)).is_empty());
    }

    fn record(height: u64, settled_at_ms: u64, confirmed: bool) -> MirrorRecord {
        MirrorRecord {
            mirror: MirrorId {
                height: Height(height),
                payer: MemberId(1),
                payee: MemberId(2),
                asset: AssetId(1),
            },
            asset: AssetId(1),
            amount: Amount(10),
            reference: mirror_reference(Height(height), "a", "b"),
            settled_at_ms,
            attestations: Vec::new(),
            confirmed: confirmed.then(|| MirrorConfirmation {
                debit_entry: BankEntryId("E1".into()),
                credit_entry: BankEntryId("E2".into()),
                confirmed_at_ms: settled_at_ms + 1,
            }),
        }
    }

    #[test]
    fn a_mirror_stalls_only_past_the_bound_and_never_once_confirmed() {
        let open = record(3, 1_000, false);
        assert_eq!(mirror_state(&open, 1_000), MirrorState::Pending);
        assert_eq!(
            mirror_state(&open, 1_000 + MIRROR_CONFIRM_BOUND_MS),
            MirrorState::Pending
        );
        assert_eq!(
            mirror_state(&open, 1_001 + MIRROR_CONFIRM_BOUND_MS),
            MirrorState::Stalled
        );
        // A block time behind the settlement (another node's older tip) is not a stall.
        assert_eq!(mirror_state(&open, 0), MirrorState::Pending);
        let done = record(3, 1_000, true);
        assert_eq!(mirror_state(&done, u64::MAX), MirrorState::Confirmed);
    }

    #[test]
    fn summary_counts_pending_and_stalled_and_names_the_oldest_stall() {
        let now = 100_000;
        let open = vec![
            record(2, now - MIRROR_CONFIRM_BOUND_MS - 5_000, false),
            record(4, now - MIRROR_CONFIRM_BOUND_MS - 1, false),
            record(9, now - 10, false),
        ];
        let summary = summarize(&open, now, false);
        assert_eq!(summary.pending, 1);
        assert_eq!(summary.stalled, 2);
        assert_eq!(
            summary.oldest_stalled,
            Some((Height(2), "settle-2-a-b".to_string()))
        );
        assert!(!summary.truncated);
        assert_eq!(summarize(&[], now, false), MirrorSummary::default());
    }
}
