//! Custody on the public chain: quorum-attested deposits and withdrawals.
//!
//! - `AttestDeposit` (any validator): a deposit into the clearing house's hot address
//!   that the node saw K blocks deep. The first version of the facts that q distinct
//!   validators attested identically settles the deposit, exactly once: a registered
//!   sender's exchange is credited (curing its open top-up requests), an unregistered
//!   sender is recorded as such and credits nobody, whatever a minority attested for
//!   the same deposit id (versions are compared by content hash). Later attestations
//!   are recorded and change nothing else; every version other than the credited
//!   one, attested before or after, is kept as evidence against its signer.
//! - `Withdraw` (an exchange): debits the amount from available inventory at once and
//!   records a pending withdrawal to one of the exchange's registered addresses, so the
//!   ledger's liabilities are balances plus pending withdrawals.
//! - `PayoutSent` (the clearing house): names the public-chain transaction that pays a
//!   withdrawal.
//! - `AttestPayout` (any validator): that transaction is K deep and pays exactly the
//!   withdrawal; q attestations complete it. An attestation naming another
//!   transaction is refused while the payout is open (the clearing house named the
//!   one that pays) and is evidence against its signer once q completed it.
//!
//! The rules shared with the bank (who attests, the quorum, the bound on a validator's
//! attestations of deposits not credited yet) are in [`crate::attestation`].
//!
//! State (one table, values [`CustodyValue`]): `0x60` deposit id (32 bytes) ->
//! `Deposit`; `0x61` withdrawal u64 -> `Withdrawal`; `0x62` -> `NextWithdrawal`;
//! `0x63` withdrawal u64 -> `Open` (withdrawals not completed); `0x6E` member u32,
//! subject -> `Evidence`; `0x6F` member u32 -> `OpenAttestations` (its attestations of
//! deposits not credited yet; absent when 0).

use crate::attestation;
use crate::error::ContractError;
pub use crate::keys::{CUSTODY_EVIDENCE, CUSTODY_OPEN_ATTESTATIONS};
pub use crate::keys::{DEPOSIT, NEXT_WITHDRAWAL, OPEN_WITHDRAWAL, WITHDRAWAL};
use crate::ledger::Ledger;
use seisan_types::attestation::{AttestationEvidence, AttestedFact, AttestedSubject};
use seisan_types::clearing::ChangeReason;
use seisan_types::custody::{
    ChainAddress, ChainTxHash, DepositFact, DepositId, DepositOutcome, DepositRecord,
    PublicChainSettings, Withdrawal, WithdrawalId, WithdrawalStatus,
};
use seisan_types::state::StateView;
use seisan_types::tx::TxBody;
use seisan_types::{codec, Amount, AssetId, AssetKind, Genesis, MemberId, Role};
use serde::{Deserialize, Serialize};

/// The most withdrawals one query returns.
pub const MAX_WITHDRAWALS_PER_QUERY: usize = 1000;

/// A value of the custody table (see the module docs for the keys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustodyValue {
    Deposit(DepositRecord),
    Withdrawal(Withdrawal),
    NextWithdrawal(u64),
    Open,
    /// A validator's attestation that contradicts a credited deposit or completed payout.
    Evidence(AttestationEvidence),
    /// How many deposits not credited yet a validator attested.
    OpenAttestations(u64),
}

/// Why a custody transaction was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CustodyError {
    #[error("genesis has no public_chain section")]
    NoPublicChain,
    #[error("member {member} is not a validator, so it cannot attest")]
    NotValidator { member: MemberId },
    #[error("public chain id {got} is not this consortium's chain {expected}")]
    WrongChain { got: u64, expected: u64 },
    #[error("{what} {value:?} is not in canonical form")]
    NotCanonical { what: &'static str, value: String },
    #[error("asset {asset} is not a public-chain asset")]
    NotCrypto { asset: AssetId },
    #[error("a {kind} deposit must {rule}")]
    WrongLogIndex {
        kind: &'static str,
        rule: &'static str,
    },
    #[error("member {member} already attested {what}")]
    AlreadyAttested { member: MemberId, what: String },
    #[error("{to} is not a registered address of member {member}")]
    UnregisteredDestination { member: MemberId, to: ChainAddress },
    #[error("withdrawal {withdrawal} does not exist")]
    UnknownWithdrawal { withdrawal: WithdrawalId },
    #[error("withdrawal {withdrawal} is already completed")]
    WithdrawalCompleted { withdrawal: WithdrawalId },
    #[error("member {member} already has {open} attestations of deposits not credited yet (the most one validator may have open)")]
    TooManyOpenAttestations { member: MemberId, open: u64 },
    #[error("withdrawal {withdrawal} is not being paid by {tx_hash}")]
    OtherPayout {
        withdrawal: WithdrawalId,
        tx_hash: ChainTxHash,
    },
}

impl CustodyError {
    pub fn code(&self) -> &'static str {
        match self {
            CustodyError::NoPublicChain => "no_public_chain",
            CustodyError::NotValidator { .. } => "not_validator",
            CustodyError::WrongChain { .. } => "wrong_public_chain",
            CustodyError::NotCanonical { .. } => "not_canonical",
            CustodyError::NotCrypto { .. } => "not_crypto_asset",
            CustodyError::WrongLogIndex { .. } => "wrong_log_index",
            CustodyError::AlreadyAttested { .. } => "already_attested",
            CustodyError::UnregisteredDestination { .. } => "unregistered_destination",
            CustodyError::UnknownWithdrawal { .. } => "unknown_withdrawal",
            CustodyError::WithdrawalCompleted { .. } => "withdrawal_completed",
            CustodyError::OtherPayout { .. } => "other_payout",
            CustodyError::TooManyOpenAttestations { .. } => "too_many_open_attestations",
        }
    }
}

impl From<CustodyError> for ContractError {
    fn from(source: CustodyError) -> ContractError {
        ContractError::Custody { source }
    }
}

pub fn deposit_key(id: DepositId) -> Vec<u8> {
    let mut key = vec![DEPOSIT];
    key.extend_from_slice(id.0.as_bytes());
    key
}

/// Evidence keys: member, then the subject (`d` + deposit id, or `p` + withdrawal id).
pub fn evidence_key(member: MemberId, subject: &AttestedSubject) -> Vec<u8> {
    let mut key = vec![CUSTODY_EVIDENCE];
    key.extend_from_slice(&member.0.to_be_bytes());
    match subject {
        AttestedSubject::Deposit { deposit } => {
            key.push(b'd');
            key.extend_from_slice(deposit.0.as_bytes());
        }
        AttestedSubject::Payout { withdrawal } => {
            key.push(b'p');
            key.extend_from_slice(&withdrawal.0.to_be_bytes());
        }
        AttestedSubject::BankEntry { .. } => panic!("bank evidence lives in the bank table"),
    }
    key
}

pub fn open_attestations_key(member: MemberId) -> Vec<u8> {
    let mut key = vec![CUSTODY_OPEN_ATTESTATIONS];
    key.extend_from_slice(&member.0.to_be_bytes());
    key
}

pub fn withdrawal_key(id: WithdrawalId) -> Vec<u8> {
    let mut key = vec![WITHDRAWAL];
    key.extend_from_slice(&id.0.to_be_bytes());
    key
}

pub fn next_withdrawal_key() -> Vec<u8> {
    vec![NEXT_WITHDRAWAL]
}

pub fn open_withdrawal_key(id: WithdrawalId) -> Vec<u8> {
    let mut key = vec![OPEN_WITHDRAWAL];
    key.extend_from_slice(&id.0.to_be_bytes());
    key
}

/// Whether `body` is a custody transaction (dispatched to [`execute`]).
pub fn is_custody(body: &TxBody) -> bool {
    matches!(
        body,
        TxBody::AttestDeposit(_)
            | TxBody::Withdraw { .. }
            | TxBody::PayoutSent { .. }
            | TxBody::AttestPayout { .. }
    )
}

/// Runs one custody transaction of `member` (admitted, inside the ledger's atomic step).
pub(crate) fn execute(
    ledger: &mut Ledger<'_>,
    member: MemberId,
    body: &TxBody,
) -> Result<(), ContractError> {
    let settings = ledger
        .config
        .public_chain
        .clone()
        .ok_or(CustodyError::NoPublicChain)?;
    let settings = &settings;
    match body {
        TxBody::AttestDeposit(fact) => attest_deposit(ledger, settings, member, fact),
        TxBody::Withdraw { asset, amount, to } => {
            withdraw(ledger, settings, member, *asset, *amount, to)
        }
        TxBody::PayoutSent {
            withdrawal,
            tx_hash,
        } => payout_sent(ledger, member, *withdrawal, tx_hash),
        TxBody::AttestPayout {
            withdrawal,
            tx_hash,
        } => attest_payout(ledger, member, *withdrawal, tx_hash),
        _ => unreachable!("execute is called only for custody bodies"),
    }
}

fn require_validator(ledger: &Ledger<'_>, member: MemberId) -> Result<(), ContractError> {
    if !attestation::is_attester(ledger, member) {
        return Err(CustodyError::NotValidator { member }.into());
    }
    Ok(())
}

fn require_role(ledger: &Ledger<'_>, member: MemberId, needed: Role) -> Result<(), ContractError> {
    let role = ledger.config.member(member).expect("admitted member").role;
    if role != needed {
        return Err(ContractError::WrongRole {
            member,
            role,
            needed,
        });
    }
    Ok(())
}

fn crypto_kind(ledger: &Ledger<'_>, asset: AssetId) -> Result<AssetKind, ContractError> {
    ledger.asset_exists(asset)?;
    let kind = ledger.config.asset(asset).expect("asset checked").kind;
    match kind {
        AssetKind::NativeCoin | AssetKind::Token => Ok(kind),
        AssetKind::Fiat => Err(CustodyError::NotCrypto { asset }.into()),
    }
}

fn quorum(ledger: &Ledger<'_>) -> usize {
    attestation::quorum(ledger)
}

fn attest_deposit(
    ledger: &mut Ledger<'_>,
    settings: &PublicChainSettings,
    member: MemberId,
    fact: &DepositFact,
) -> Result<(), ContractError> {
    require_validator(ledger, member)?;
    if fact.chain_id != settings.chain_id {
        return Err(CustodyError::WrongChain {
            got: fact.chain_id,
            expected: settings.chain_id,
        }
        .into());
    }
    if !fact.tx_hash.is_canonical() {
        return Err(CustodyError::NotCanonical {
            what: "transaction hash",
            value: fact.tx_hash.0.clone(),
        }
        .into());
    }
    if !fact.from.is_canonical() {
        return Err(CustodyError::NotCanonical {
            what: "address",
            value: fact.from.0.clone(),
        }
        .into());
    }
    match (crypto_kind(ledger, fact.asset)?, fact.log_index) {
        (AssetKind::NativeCoin, Some(_)) => {
            return Err(CustodyError::WrongLogIndex {
                kind: "native-coin",
                rule: "have no log index",
            }
            .into())
        }
        (AssetKind::Token, None) => {
            return Err(CustodyError::WrongLogIndex {
                kind: "token",
                rule: "name its Transfer log's index",
            }
            .into())
        }
        _ => {}
    }
    if fact.amount.is_zero() {
        return Err(ContractError::ZeroAmount { what: "deposit" });
    }
    let id = fact.deposit_id();
    let key = deposit_key(id);
    let mut record = match ledger.tables.custody.get_cloned(ledger.view, &key) {
        Some(CustodyValue::Deposit(record)) => record,
        Some(other) => panic!("custody key {key:?} holds {other:?}"),
        None => DepositRecord {
            id,
            attestations: Vec::new(),
            outcome: None,
        },
    };
    if record
        .attestations
        .iter()
        .any(|(_, members)| members.contains(&member))
    {
        return Err(CustodyError::AlreadyAttested {
            member,
            what: format!("deposit {id}"),
        }
        .into());
    }
    let hash = fact.content_hash();
    let index = match record
        .attestations
        .iter()
        .position(|(seen, _)| seen.content_hash() == hash)
    {
        Some(index) => index,
        None => {
            record.attestations.push((fact.clone(), Vec::new()));
            record.attestations.len() - 1
        }
    };
    record.attestations[index].1.push(member);
    if let Some((credited, _)) = record.outcome.clone() {
        // A late attestation is recorded (every validator's view is visible) but the
        // deposit was settled once and stays so; one that contradicts the credited
        // facts is evidence against its signer.
        if credited.content_hash() != hash {
            record_deposit_evidence(ledger, member, fact, &credited);
        }
        ledger
            .tables
            .custody
            .put(key, CustodyValue::Deposit(record));
        return Ok(());
    }
    assert!(
        record
            .attestations
            .iter()
            .map(|(_, m)| m.len())
            .sum::<usize>()
            <= ledger.config.validators().len(),
        "each validator attests a deposit at most once"
    );
    let open = open_attestations(ledger, member);
    if open >= attestation::MAX_OPEN_ATTESTATIONS_PER_MEMBER {
        return Err(CustodyError::TooManyOpenAttestations { member, open }.into());
    }
    set_open_attestations(ledger, member, open + 1);
    if attestation::agreeing(ledger, &record.attestations[index].1) >= quorum(ledger) {
        let outcome = match settings.owner_of(&fact.from) {
            Some(name) => {
                let (owner, _) = ledger
                    .config
                    .membership
                    .member_by_name(name)
                    .expect("validated genesis registers known members");
                ledger.credit_deposit(owner, fact.asset, fact.amount, ChangeReason::Deposit)?;
                DepositOutcome::Credited { member: owner }
            }
            None => DepositOutcome::Unregistered,
        };
        record.outcome = Some((fact.clone(), outcome));
        // The deposit is no longer open for anyone who attested it; every other
        // version attested before the credit is now known to be false.
        for (version, members) in &record.attestations {
            for attester in members {
                let open = open_attestations(ledger, *attester);
                set_open_attestations(ledger, *attester, open.saturating_sub(1));
                if version.content_hash() != hash {
                    record_deposit_evidence(ledger, *attester, version, fact);
                }
            }
        }
    }
    ledger
        .tables
        .custody
        .put(key, CustodyValue::Deposit(record));
    Ok(())
}

fn open_attestations(ledger: &mut Ledger<'_>, member: MemberId) -> u64 {
    match ledger
        .tables
        .custody
        .get_cloned(ledger.view, &open_attestations_key(member))
    {
        Some(CustodyValue::OpenAttestations(count)) => count,
        Some(other) => panic!("open attestation count holds {other:?}"),
        None => 0,
    }
}

fn set_open_attestations(ledger: &mut Ledger<'_>, member: MemberId, count: u64) {
    let key = open_attestations_key(member);
    if count == 0 {
        ledger.tables.custody.delete(key);
    } else {
        ledger
            .tables
            .custody
            .put(key, CustodyValue::OpenAttestations(count));
    }
}

fn record_deposit_evidence(
    ledger: &mut Ledger<'_>,
    member: MemberId,
    attested: &DepositFact,
    credited: &DepositFact,
) {
    let evidence = attestation::evidence(
        ledger,
        member,
        AttestedFact::Deposit(attested.clone()),
        AttestedFact::Deposit(credited.clone()),
    );
    let key = evidence_key(member, &evidence.subject());
    ledger
        .tables
        .custody
        .put(key, CustodyValue::Evidence(evidence));
}

fn withdraw(
    ledger: &mut Ledger<'_>,
    settings: &PublicChainSettings,
    member: MemberId,
    asset: AssetId,
    amount: Amount,
    to: &ChainAddress,
) -> Result<(), ContractError> {
    require_role(ledger, member, Role::Exchange)?;
    crypto_kind(ledger, asset)?;
    let name = &ledger.config.member(member).expect("admitted member").name;
    if !settings.is_registered_to(name, to) {
        return Err(CustodyError::UnregisteredDestination {
            member,
            to: to.clone(),
        }
        .into());
    }
    ledger.debit_withdrawal(member, asset, amount)?;
    let next = match ledger
        .tables
        .custody
        .get_cloned(ledger.view, &next_withdrawal_key())
    {
        Some(CustodyValue::NextWithdrawal(next)) => next,
        Some(other) => panic!("custody counter holds {other:?}"),
        None => 1,
    };
    let id = WithdrawalId(next);
    ledger.tables.custody.put(
        next_withdrawal_key(),
        CustodyValue::NextWithdrawal(next.checked_add(1).expect("withdrawal id overflow")),
    );
    ledger.tables.custody.put(
        withdrawal_key(id),
        CustodyValue::Withdrawal(Withdrawal {
            id,
            member,
            asset,
            amount,
            to: to.clone(),
            status: WithdrawalStatus::Pending,
            payout_attesters: Vec::new(),
        }),
    );
    ledger
        .tables
        .custody
        .put(open_withdrawal_key(id), CustodyValue::Open);
    Ok(())
}

fn load_withdrawal(ledger: &mut Ledger<'_>, id: WithdrawalId) -> Result<Withdrawal, ContractError> {
    match ledger
        .tables
        .custody
        .get_cloned(ledger.view, &withdrawal_key(id))
    {
        Some(CustodyValue::Withdrawal(withdrawal)) => Ok(withdrawal),
        Some(other) => panic!("withdrawal {id} holds {other:?}"),
        None => Err(CustodyError::UnknownWithdrawal { withdrawal: id }.into()),
    }
}

fn payout_sent(
    ledger: &mut Ledger<'_>,
    member: MemberId,
    id: WithdrawalId,
    tx_hash: &ChainTxHash,
) -> Result<(), ContractError> {
    require_role(ledger, member, Role::ClearingHouse)?;
    if !tx_hash.is_canonical() {
        return Err(CustodyError::NotCanonical {
            what: "transaction hash",
            value: tx_hash.0.clone(),
        }
        .into());
    }
    let mut withdrawal = load_withdrawal(ledger, id)?;
    match &withdrawal.status {
        WithdrawalStatus::Completed { .. } => {
            return Err(CustodyError::WithdrawalCompleted { withdrawal: id }.into())
        }
        WithdrawalStatus::Sent { tx_hash: named } if named == tx_hash => return Ok(()),
        _ => {}
    }
    withdrawal.status = WithdrawalStatus::Sent {
        tx_hash: tx_hash.clone(),
    };
    withdrawal.payout_attesters.clear();
    ledger
        .tables
        .custody
        .put(withdrawal_key(id), CustodyValue::Withdrawal(withdrawal));
    Ok(())
}

fn attest_payout(
    ledger: &mut Ledger<'_>,
    member: MemberId,
    id: WithdrawalId,
    tx_hash: &ChainTxHash,
) -> Result<(), ContractError> {
    require_validator(ledger, member)?;
    let mut withdrawal = load_withdrawal(ledger, id)?;
    match &withdrawal.status {
        WithdrawalStatus::Sent { tx_hash: named } if named == tx_hash => {}
        WithdrawalStatus::Completed { tx_hash: paid } if paid != tx_hash => {
            // q validators attested another transaction as this withdrawal's payout:
            // this attestation is known to be false.
            let evidence = attestation::evidence(
                ledger,
                member,
                AttestedFact::Payout {
                    withdrawal: id,
                    tx_hash: tx_hash.clone(),
                },
                AttestedFact::Payout {
                    withdrawal: id,
                    tx_hash: paid.clone(),
                },
            );
            let key = evidence_key(member, &evidence.subject());
            if ledger.tables.custody.get(ledger.view, &key).is_some() {
                return Err(CustodyError::AlreadyAttested {
                    member,
                    what: format!("payout of withdrawal {id}"),
                }
                .into());
            }
            ledger
                .tables
                .custody
                .put(key, CustodyValue::Evidence(evidence));
            return Ok(());
        }
        WithdrawalStatus::Completed { .. } => {
            return Err(CustodyError::WithdrawalCompleted { withdrawal: id }.into())
        }
        _ => {
            return Err(CustodyError::OtherPayout {
                withdrawal: id,
                tx_hash: tx_hash.clone(),
            }
            .into())
        }
    }
    if withdrawal.payout_attesters.contains(&member) {
        return Err(CustodyError::AlreadyAttested {
            member,
            what: format!("payout of withdrawal {id}"),
        }
        .into());
    }
    withdrawal.payout_attesters.push(member);
    if attestation::agreeing(ledger, &withdrawal.payout_attesters) >= quorum(ledger) {
        withdrawal.status = WithdrawalStatus::Completed {
            tx_hash: tx_hash.clone(),
        };
        ledger.tables.custody.delete(open_withdrawal_key(id));
    }
    ledger
        .tables
        .custody
        .put(withdrawal_key(id), CustodyValue::Withdrawal(withdrawal));
    Ok(())
}

// ---- queries ------------------------------------------------------------------------

fn get(view: &dyn StateView, key: &[u8]) -> Option<CustodyValue> {
    view.get(key).map(|bytes| {
        codec::decode(&bytes).unwrap_or_else(|error| panic!("undecodable custody state: {error}"))
    })
}

/// The record of one deposit (`None` if nobody attested it yet).
pub fn deposit(view: &dyn StateView, id: DepositId) -> Option<DepositRecord> {
    match get(view, &deposit_key(id))? {
        CustodyValue::Deposit(record) => Some(record),
        other => panic!("deposit {id} holds {other:?}"),
    }
}

/// Every deposit attested so far, by deposit id, up to `limit`.
/// Deposit records after `start_after`, in deposit-id order, up to `limit`.
pub fn deposits(
    view: &dyn StateView,
    start_after: Option<DepositId>,
    limit: usize,
) -> Vec<DepositRecord> {
    let after = start_after.map(deposit_key);
    view.scan(
        &[DEPOSIT],
        after.as_deref(),
        limit.min(MAX_WITHDRAWALS_PER_QUERY),
    )
    .into_iter()
    .map(|(_, bytes)| match codec::decode(&bytes) {
        Ok(CustodyValue::Deposit(record)) => record,
        _ => panic!("undecodable deposit record"),
    })
    .collect()
}

pub fn withdrawal(view: &dyn StateView, id: WithdrawalId) -> Option<Withdrawal> {
    match get(view, &withdrawal_key(id))? {
        CustodyValue::Withdrawal(withdrawal) => Some(withdrawal),
        other => panic!("withdrawal {id} holds {other:?}"),
    }
}

/// Evidence of attestations that contradict credited deposits or completed payouts,
/// by member, at most [`MAX_WITHDRAWALS_PER_QUERY`].
pub fn evidence(view: &dyn StateView) -> Vec<AttestationEvidence> {
    view.scan(&[CUSTODY_EVIDENCE], None, MAX_WITHDRAWALS_PER_QUERY)
        .into_iter()
        .filter_map(|(_, bytes)| match codec::decode(&bytes) {
            Ok(CustodyValue::Evidence(evidence)) => Some(evidence),
            _ => None,
        })
        .collect()
}

/// How many deposits not credited yet `member` attested.
pub fn open_attestation_count(view: &dyn StateView, member: MemberId) -> u64 {
    match get(view, &open_attestations_key(member)) {
        Some(CustodyValue::OpenAttestations(count)) => count,
        _ => 0,
    }
}

/// Withdrawals not yet completed, oldest first.
pub fn open_withdrawals(view: &dyn StateView) -> Vec<Withdrawal> {
    view.scan(&[OPEN_WITHDRAWAL], None, MAX_WITHDRAWALS_PER_QUERY)
        .into_iter()
        .map(|(key, _)| {
            let id = WithdrawalId(u64::from_be_bytes(
                key[1..9]
                    .try_into()
                    .expect("open withdrawal key is 9 bytes"),
            ));
            withdrawal(view, id).unwrap_or_else(|| panic!("open withdrawal {id} is missing"))
        })
        .collect()
}

/// Every withdrawal after `start_after`, oldest first, up to `limit`.
pub fn withdrawals(
    view: &dyn StateView,
    start_after: Option<WithdrawalId>,
    limit: usize,
) -> Vec<Withdrawal> {
    let after = start_after.map(withdrawal_key);
    view.scan(
        &[WITHDRAWAL],
        after.as_deref(),
        limit.min(MAX_WITHDRAWALS_PER_QUERY),
    )
    .into_iter()
    .map(|(_, bytes)| match codec::decode(&bytes) {
        Ok(CustodyValue::Withdrawal(withdrawal)) => withdrawal,
        _ => panic!("undecodable withdrawal record"),
    })
    .collect()
}

/// One asset's ledger liabilities: what members hold (credited - debited) plus what
/// open withdrawals still owe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Liabilities {
    pub asset: AssetId,
    pub balances: Amount,
    pub pending_withdrawals: Amount,
    pub total: Amount,
}

pub fn liabilities(view: &dyn StateView, genesis: &Genesis, asset: AssetId) -> Liabilities {
    let supply = crate::query::asset_supply(view, genesis, asset);
    let balances = supply
        .credited
        .checked_sub(supply.debited)
        .expect("debits never exceed credits");
    let pending = open_withdrawals(view)
        .iter()
        .filter(|withdrawal| withdrawal.asset == asset)
        .fold(Amount::ZERO, |sum, withdrawal| {
            sum.checked_add(withdrawal.amount).expect("within supply")
        });
    Liabilities {
        asset,
        balances,
        pending_withdrawals: pending,
        total: balances.checked_add(pending).expect("within supply"),
    }
}
