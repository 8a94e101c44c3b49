//! Fiat at the trust bank: attested bank entries (S210) and fiat withdrawals.
//!
//! - `AttestBankEntry(fact)`: a validator states what one entry on an exchange's fiat
//!   trust account says (every validator reads every trust account through its
//!   read-only auditor token at the bank). Attestations are stored per entry id, one
//!   per member. A fact is the entry id together with the hash of its content; when q
//!   validators of the current set attested identical facts, the entry is acted on
//!   exactly once, whatever a minority attested under the same id (so a liar that
//!   attests an invented fact for an entry id the bank has not assigned yet blocks
//!   nothing): a trust credit is credited to the exchange's inventory through
//!   [`Ledger::credit_deposit`] (which cures the top-up requests it covers); a
//!   withdrawal payment completes the pending fiat withdrawal it names. Every
//!   attestation of the id whose content differs from the acted-on fact, before or
//!   after, is kept as [`AttestationEvidence`] against its signer. The rules shared
//!   with custody, and the bound on a validator's attestations of ids not credited yet,
//!   are in [`crate::attestation`].
//! - `WithdrawFiat { asset, amount }`: an exchange's fiat withdrawal; the amount is
//!   debited from its available inventory at once ([`Ledger::debit_withdrawal`]) into
//!   a pending withdrawal, which the clearing house pays by a bank transfer from the
//!   exchange's trust account to its operating account, referenced `fiat-withdrawal-<id>`.
//!
//! State (one table, values [`BankValue`]): `0x70` entry id bytes ->
//! `BankEntryRecord`; `0x71` withdrawal u64 -> `FiatWithdrawal`; `0x72` ->
//! `NextWithdrawal`; `0x73` withdrawal u64 -> `Open` (withdrawals not yet paid);
//! `0x7E` member u32, entry id bytes -> `Evidence`; `0x7F` member u32 ->
//! `OpenAttestations` (its attestations of entries not acted on yet; absent when 0).

use crate::attestation;
use crate::error::ContractError;
pub use crate::keys::{BANK_ENTRY, FIAT_WITHDRAWAL, NEXT_FIAT_WITHDRAWAL, OPEN_FIAT_WITHDRAWAL};
pub use crate::keys::{BANK_EVIDENCE, BANK_OPEN_ATTESTATIONS};
use crate::ledger::Ledger;
use seisan_types::attestation::{AttestationEvidence, AttestedFact};
use seisan_types::bank::{
    BankEntryId, BankEntryKind, BankEntryRecord, BankFact, FiatWithdrawal, FiatWithdrawalId,
    FiatWithdrawalStatus, MAX_BANK_ENTRY_ID_BYTES,
};
use seisan_types::clearing::ChangeReason;
use seisan_types::state::StateView;
use seisan_types::tx::TxBody;
use seisan_types::{codec, Amount, AssetId, AssetKind, MemberId, Role};
use serde::{Deserialize, Serialize};

/// The most records one query returns.
pub const MAX_BANK_RECORDS_PER_QUERY: usize = 1000;

/// A value of the bank table (see the module docs for the keys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BankValue {
    Entry(BankEntryRecord),
    Withdrawal(FiatWithdrawal),
    NextWithdrawal(u64),
    Open,
    /// A validator's attestation that contradicts the acted-on fact of its entry.
    Evidence(AttestationEvidence),
    /// How many entries not acted on yet a validator attested.
    OpenAttestations(u64),
}

/// Why a bank transaction was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BankRuleError {
    #[error("member {member} is not a validator, so it cannot attest")]
    NotValidator { member: MemberId },
    #[error("asset {asset} is not a fiat asset")]
    NotFiat { asset: AssetId },
    #[error("a bank entry id must be 1 to {MAX_BANK_ENTRY_ID_BYTES} printable ASCII bytes")]
    BadEntryId,
    #[error("member {member} is not an exchange, so it has no trust account")]
    NotAnExchange { member: MemberId },
    #[error("member {member} already attested bank entry {entry}")]
    AlreadyAttested {
        member: MemberId,
        entry: BankEntryId,
    },
    #[error("fiat withdrawal {withdrawal} does not exist")]
    UnknownWithdrawal { withdrawal: FiatWithdrawalId },
    #[error("member {member} already has {open} attestations of bank entries not credited yet (the most one validator may have open)")]
    TooManyOpenAttestations { member: MemberId, open: u64 },
}

impl BankRuleError {
    pub fn code(&self) -> &'static str {
        match self {
            BankRuleError::NotValidator { .. } => "not_validator",
            BankRuleError::NotFiat { .. } => "not_fiat_asset",
            BankRuleError::BadEntryId => "bad_bank_entry_id",
            BankRuleError::NotAnExchange { .. } => "not_an_exchange",
            BankRuleError::AlreadyAttested { .. } => "already_attested",
            BankRuleError::UnknownWithdrawal { .. } => "unknown_fiat_withdrawal",
            BankRuleError::TooManyOpenAttestations { .. } => "too_many_open_attestations",
        }
    }
}

impl From<BankRuleError> for ContractError {
    fn from(source: BankRuleError) -> ContractError {
        ContractError::Bank { source }
    }
}

pub fn entry_key(entry: &BankEntryId) -> Vec<u8> {
    let mut key = vec![BANK_ENTRY];
    key.extend_from_slice(entry.0.as_bytes());
    key
}

pub fn evidence_key(member: MemberId, entry: &BankEntryId) -> Vec<u8> {
    let mut key = vec![BANK_EVIDENCE];
    key.extend_from_slice(&member.0.to_be_bytes());
    key.extend_from_slice(entry.0.as_bytes());
    key
}

pub fn open_attestations_key(member: MemberId) -> Vec<u8> {
    let mut key = vec![BANK_OPEN_ATTESTATIONS];
    key.extend_from_slice(&member.0.to_be_bytes());
    key
}

pub fn withdrawal_key(id: FiatWithdrawalId) -> Vec<u8> {
    let mut key = vec![FIAT_WITHDRAWAL];
    key.extend_from_slice(&id.0.to_be_bytes());
    key
}

pub fn next_withdrawal_key() -> Vec<u8> {
    vec![NEXT_FIAT_WITHDRAWAL]
}

pub fn open_withdrawal_key(id: FiatWithdrawalId) -> Vec<u8> {
    let mut key = vec![OPEN_FIAT_WITHDRAWAL];
    key.extend_from_slice(&id.0.to_be_bytes());
    key
}

/// The bank transfer reference that pays a fiat withdrawal.
pub fn withdrawal_reference(id: FiatWithdrawalId) -> String {
    format!("fiat-withdrawal-{}", id.0)
}

/// Whether `body` is a bank transaction (dispatched to [`execute`]).
pub fn is_bank(body: &TxBody) -> bool {
    matches!(
        body,
        TxBody::AttestBankEntry(_) | TxBody::WithdrawFiat { .. }
    )
}

/// Runs one bank transaction of `member` (admitted, inside the ledger's atomic step).
pub(crate) fn execute(
    ledger: &mut Ledger<'_>,
    member: MemberId,
    body: &TxBody,
) -> Result<(), ContractError> {
    match body {
        TxBody::AttestBankEntry(fact) => attest_entry(ledger, member, fact),
        TxBody::WithdrawFiat { asset, amount } => withdraw_fiat(ledger, member, *asset, *amount),
        _ => unreachable!("execute is called only for bank bodies"),
    }
}

fn require_fiat(ledger: &Ledger<'_>, asset: AssetId) -> Result<(), ContractError> {
    ledger.asset_exists(asset)?;
    match ledger.config.asset(asset).expect("asset checked").kind {
        AssetKind::Fiat => Ok(()),
        AssetKind::NativeCoin | AssetKind::Token => Err(BankRuleError::NotFiat { asset }.into()),
    }
}

fn require_exchange(ledger: &Ledger<'_>, member: MemberId) -> Result<(), ContractError> {
    match ledger.config.member(member) {
        Some(found) if found.role == Role::Exchange => Ok(()),
        Some(_) => Err(BankRuleError::NotAnExchange { member }.into()),
        None => Err(ContractError::UnknownMember { member }),
    }
}

fn attest_entry(
    ledger: &mut Ledger<'_>,
    attester: MemberId,
    fact: &BankFact,
) -> Result<(), ContractError> {
    if !attestation::is_attester(ledger, attester) {
        return Err(BankRuleError::NotValidator { member: attester }.into());
    }
    let id_valid = !fact.entry.0.is_empty()
        && fact.entry.0.len() <= MAX_BANK_ENTRY_ID_BYTES
        && fact.entry.0.bytes().all(|byte| byte.is_ascii_graphic());
    if !id_valid {
        return Err(BankRuleError::BadEntryId.into());
    }
    require_exchange(ledger, fact.member)?;
    require_fiat(ledger, fact.asset)?;
    if fact.amount.is_zero() {
        return Err(ContractError::ZeroAmount { what: "bank entry" });
    }
    let key = entry_key(&fact.entry);
    let mut record = match ledger.tables.bank.get_cloned(ledger.view, &key) {
        Some(BankValue::Entry(record)) => record,
        Some(other) => panic!("bank entry key holds {other:?}"),
        None => BankEntryRecord {
            entry: fact.entry.clone(),
            attestations: Vec::new(),
            applied: None,
        },
    };
    if record
        .attestations
        .iter()
        .any(|(member, _)| *member == attester)
    {
        return Err(BankRuleError::AlreadyAttested {
            member: attester,
            entry: fact.entry.clone(),
        }
        .into());
    }
    assert!(
        record.attestations.len() < ledger.config.member_count(),
        "one attestation per member"
    );
    record.attestations.push((attester, fact.clone()));
    if let Some(applied) = record.applied.clone() {
        // Settled once and stays so; a late attestation is recorded, and one that
        // contradicts the credited fact is evidence against its signer.
        if applied.content_hash() != fact.content_hash() {
            record_evidence(ledger, attester, fact, &applied);
        }
        ledger.tables.bank.put(key, BankValue::Entry(record));
        return Ok(());
    }
    let open = open_attestations(ledger, attester);
    if open >= attestation::MAX_OPEN_ATTESTATIONS_PER_MEMBER {
        return Err(BankRuleError::TooManyOpenAttestations {
            member: attester,
            open,
        }
        .into());
    }
    set_open_attestations(ledger, attester, open + 1);
    let hash = fact.content_hash();
    let agreeing = attestation::agreeing(
        ledger,
        record
            .attestations
            .iter()
            .filter(|(_, earlier)| earlier.content_hash() == hash)
            .map(|(member, _)| member),
    );
    if agreeing >= attestation::quorum(ledger) {
        match fact.kind {
            BankEntryKind::TrustCredit => {
                ledger.credit_deposit(
                    fact.member,
                    fact.asset,
                    fact.amount,
                    ChangeReason::Deposit,
                )?;
            }
            BankEntryKind::WithdrawalPaid { withdrawal } => {
                complete_withdrawal(ledger, withdrawal, fact)?;
            }
        }
        record.applied = Some(fact.clone());
        // The entry is no longer open for anyone who attested it; every minority
        // version attested before the credit is now known to be false.
        for (member, earlier) in &record.attestations {
            let open = open_attestations(ledger, *member);
            set_open_attestations(ledger, *member, open.saturating_sub(1));
            if earlier.content_hash() != hash {
                record_evidence(ledger, *member, earlier, fact);
            }
        }
    }
    ledger.tables.bank.put(key, BankValue::Entry(record));
    Ok(())
}

fn open_attestations(ledger: &mut Ledger<'_>, member: MemberId) -> u64 {
    match ledger
        .tables
        .bank
        .get_cloned(ledger.view, &open_attestations_key(member))
    {
        Some(BankValue::OpenAttestations(count)) => count,
        Some(other) => panic!("open attestation count holds {other:?}"),
        None => 0,
    }
}

fn set_open_attestations(ledger: &mut Ledger<'_>, member: MemberId, count: u64) {
    let key = open_attestations_key(member);
    if count == 0 {
        ledger.tables.bank.delete(key);
    } else {
        ledger
            .tables
            .bank
            .put(key, BankValue::OpenAttestations(count));
    }
}

fn record_evidence(
    ledger: &mut Ledger<'_>,
    member: MemberId,
    attested: &BankFact,
    credited: &BankFact,
) {
    let evidence = attestation::evidence(
        ledger,
        member,
        AttestedFact::BankEntry(attested.clone()),
        AttestedFact::BankEntry(credited.clone()),
    );
    ledger.tables.bank.put(
        evidence_key(member, &attested.entry),
        BankValue::Evidence(evidence),
    );
}

/// Marks a withdrawal paid when the attested payment matches it; a payment that does
/// not match (another member, asset or amount) leaves it pending, and the entry stays
/// recorded as applied for reconciliation to show.
fn complete_withdrawal(
    ledger: &mut Ledger<'_>,
    id: FiatWithdrawalId,
    fact: &BankFact,
) -> Result<(), ContractError> {
    let key = withdrawal_key(id);
    let mut withdrawal = match ledger.tables.bank.get_cloned(ledger.view, &key) {
        Some(BankValue::Withdrawal(withdrawal)) => withdrawal,
        Some(other) => panic!("fiat withdrawal key holds {other:?}"),
        None => return Err(BankRuleError::UnknownWithdrawal { withdrawal: id }.into()),
    };
    let matches = withdrawal.member == fact.member
        && withdrawal.asset == fact.asset
        && withdrawal.amount == fact.amount
        && withdrawal.status == FiatWithdrawalStatus::Pending;
    if matches {
        withdrawal.status = FiatWithdrawalStatus::Paid {
            entry: fact.entry.clone(),
        };
        ledger
            .tables
            .bank
            .put(key, BankValue::Withdrawal(withdrawal));
        ledger.tables.bank.delete(open_withdrawal_key(id));
    }
    Ok(())
}

fn withdraw_fiat(
    ledger: &mut Ledger<'_>,
    member: MemberId,
    asset: AssetId,
    amount: Amount,
) -> Result<(), ContractError> {
    require_exchange(ledger, member)?;
    require_fiat(ledger, asset)?;
    ledger.debit_withdrawal(member, asset, amount)?;
    let next = match ledger
        .tables
        .bank
        .get_cloned(ledger.view, &next_withdrawal_key())
    {
        Some(BankValue::NextWithdrawal(next)) => next,
        Some(other) => panic!("next fiat withdrawal key holds {other:?}"),
        None => 1,
    };
    let id = FiatWithdrawalId(next);
    assert!(ledger
        .tables
        .bank
        .get_cloned(ledger.view, &withdrawal_key(id))
        .is_none());
    ledger.tables.bank.put(
        withdrawal_key(id),
        BankValue::Withdrawal(FiatWithdrawal {
            id,
            member,
            asset,
            amount,
            requested_at_ms: ledger.now_ms(),
            status: FiatWithdrawalStatus::Pending,
        }),
    );
    ledger
        .tables
        .bank
        .put(open_withdrawal_key(id), BankValue::Open);
    ledger
        .tables
        .bank
        .put(next_withdrawal_key(), BankValue::NextWithdrawal(next + 1));
    Ok(())
}

// ---- queries ------------------------------------------------------------------------

fn decode(bytes: &[u8]) -> BankValue {
    codec::decode(bytes).expect("state holds a decodable bank value")
}

/// The ledger's record of a bank entry, if any member attested it.
pub fn entry(view: &dyn StateView, entry: &BankEntryId) -> Option<BankEntryRecord> {
    match view.get(&entry_key(entry)).map(|bytes| decode(&bytes)) {
        Some(BankValue::Entry(record)) => Some(record),
        _ => None,
    }
}

/// Attested bank entries, in entry-id order, at most [`MAX_BANK_RECORDS_PER_QUERY`].
pub fn entries(view: &dyn StateView) -> Vec<BankEntryRecord> {
    view.scan(&[BANK_ENTRY], None, MAX_BANK_RECORDS_PER_QUERY)
        .into_iter()
        .filter_map(|(_, bytes)| match decode(&bytes) {
            BankValue::Entry(record) => Some(record),
            _ => None,
        })
        .collect()
}

pub fn withdrawal(view: &dyn StateView, id: FiatWithdrawalId) -> Option<FiatWithdrawal> {
    match view.get(&withdrawal_key(id)).map(|bytes| decode(&bytes)) {
        Some(BankValue::Withdrawal(withdrawal)) => Some(withdrawal),
        _ => None,
    }
}

/// Evidence of attestations that contradict acted-on bank entries, by member then
/// entry id, at most [`MAX_BANK_RECORDS_PER_QUERY`].
pub fn evidence(view: &dyn StateView) -> Vec<AttestationEvidence> {
    view.scan(&[BANK_EVIDENCE], None, MAX_BANK_RECORDS_PER_QUERY)
        .into_iter()
        .filter_map(|(_, bytes)| match decode(&bytes) {
            BankValue::Evidence(evidence) => Some(evidence),
            _ => None,
        })
        .collect()
}

/// How many bank entries not acted on yet `member` attested.
pub fn open_attestation_count(view: &dyn StateView, member: MemberId) -> u64 {
    match view
        .get(&open_attestations_key(member))
        .map(|bytes| decode(&bytes))
    {
        Some(BankValue::OpenAttestations(count)) => count,
        _ => 0,
    }
}

/// Fiat withdrawals not yet paid, oldest first, at most [`MAX_BANK_RECORDS_PER_QUERY`].
pub fn open_withdrawals(view: &dyn StateView) -> Vec<FiatWithdrawal> {
    view.scan(&[OPEN_FIAT_WITHDRAWAL], None, MAX_BANK_RECORDS_PER_QUERY)
        .into_iter()
        .map(|(key, _)| {
            let id = FiatWithdrawalId(u64::from_be_bytes(
                key[1..].try_into().expect("8-byte withdrawal id"),
            ));
            withdrawal(view, id).expect("an open withdrawal exists")
        })
        .collect()
}

/// Every fiat withdrawal, oldest first, at most [`MAX_BANK_RECORDS_PER_QUERY`].
pub fn withdrawals(view: &dyn StateView) -> Vec<FiatWithdrawal> {
    view.scan(&[FIAT_WITHDRAWAL], None, MAX_BANK_RECORDS_PER_QUERY)
        .into_iter()
        .filter_map(|(_, bytes)| match decode(&bytes) {
            BankValue::Withdrawal(withdrawal) => Some(withdrawal),
            _ => None,
        })
        .collect()
}
