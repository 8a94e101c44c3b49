//! `GET /v1/reconciliation`: per exchange, the ledger's fiat beside the bank's trust
//! balance with what is in flight, and every settlement whose bank leg is not yet
//! confirmed on chain (pending, or stalled past
//! [`seisan_contracts::mirror::MIRROR_CONFIRM_BOUND_MS`]).
//!
//! No node lock is held while the bank is called (a slow or stopped bank would
//! otherwise stall block commits, which take the commit lock for writing). Three steps:
//! 1. [`read_bank`]: every exchange's trust balance and statement, over HTTP, with the
//!    client's timeout, no lock held;
//! 2. [`snapshot`]: under the commit lock's read side, one committed height's ledger
//!    side (balances, open withdrawals, open mirrors, the ledger's record of each
//!    statement entry the bank listed), state reads only, then the lock is released;
//! 3. [`compare`], which is pure.
//!
//! The bank is read before the ledger, so the ledger is at least as new: any mirror
//! transfer on a statement belongs to a settlement the snapshot holds. (A credit booked
//! and attested between the two reads shows as a difference until the next call.)
//!
//! `clean` is true only when the bank is connected, every trust account is readable
//! and agrees with the ledger, no entry is conflicting, and every settled fiat movement
//! is confirmed on chain (no open mirror).
//!
//! Per currency: each fiat asset of the genesis is its own currency at the bank with
//! its own trust accounts, so the three steps run once per fiat asset (its statements,
//! its ledger balances, its mirrors) and the answer lists each under `currencies`;
//! the top-level lines are the first fiat asset's, while `clean`, `outstanding`,
//! `unconfirmed` and `mirrors` cover every currency.

use super::api::{ApiContext, ApiError};
use super::bank_watcher::entry_fact;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use seisan_api::v1;
use seisan_bank::{AccountId, BankAdapter, BankError, Entry};
use seisan_contracts::bank as ledger_bank;
use seisan_contracts::mirror::{self, MirrorSummary, MAX_MIRROR_RECORDS_PER_QUERY};
use seisan_types::bank::BankEntryKind;
use seisan_types::mirror::{MirrorRecord, MirrorState};
use seisan_types::{AssetId, MemberId, Role};
use std::collections::{BTreeMap, BTreeSet};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The reconciliation route, merged into the node's API.
pub fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new()
        .routes(routes!(reconciliation))
        .routes(routes!(mirrors_at))
}

/// The bank transfers a block's settlement needs (one per payer/payee pair, reference
/// `settle-<height>-<payer>-<payee>`), each with its validators' attestations, its
/// confirmation (the bank's debit and credit entry ids, once q validators attested
/// identical facts) and its state at the tip's block time (pending, stalled or
/// confirmed).
#[utoipa::path(get, path = "/v1/mirrors/{height}", tag = "settlement",
    params(("height" = u64, Path, description = "A block height", minimum = 0)),
    responses(
        (status = 200, description = "Mirrors of the height (empty when its settlement moved no fiat, or no block of that height is final)", body = v1::Mirrors),
        (status = 400, description = "`bad_number`: the height is not a whole number", body = v1::ErrorBody),
    ))]
async fn mirrors_at(
    State(context): State<ApiContext>,
    Path(height): Path<String>,
) -> Result<Json<v1::Mirrors>, ApiError> {
    let height = super::queries::number(&height, "height")?;
    let view = context.db.committed_view();
    let now_ms = super::pipeline::read_tip(&context.db).map_or(0, |tip| tip.timestamp_ms);
    let mirrors = mirror::mirrors_at(&view, seisan_types::Height(height))
        .into_iter()
        .map(|record| v1::MirrorAt {
            state: mirror::mirror_state(&record, now_ms),
            record,
        })
        .collect();
    Ok(Json(v1::Mirrors { height, mirrors }))
}

/// One exchange's trust account as the bank showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BankRead {
    /// This node has no bank connection.
    NoBank,
    /// The bank refused this node's token for the account.
    Unreadable,
    /// The bank did not answer (unreachable, or past the client's timeout), or failed.
    Failed { reason: String },
    Read {
        balance: u128,
        /// The whole statement, oldest first.
        entries: Vec<Entry>,
    },
}

/// One exchange's ledger side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerLine {
    pub member: MemberId,
    pub name: String,
    /// Inventory + locked + customers.
    pub ledger_fiat: i128,
    /// Debited in the ledger, not yet paid out of the trust account.
    pub pending_withdrawals: i128,
    /// Statement entries (that are attestable facts) the ledger has applied.
    pub applied: BTreeSet<String>,
    /// Statement entries the ledger acted on with other facts than the statement shows.
    pub conflicting: BTreeSet<String>,
}

/// The ledger side at one committed height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerSnapshot {
    pub height: u64,
    /// The committed tip's block time (the clock of stall detection).
    pub now_ms: u64,
    pub exchanges: Vec<LedgerLine>,
    /// Mirrors not confirmed on chain, oldest first.
    pub open_mirrors: Vec<MirrorRecord>,
    pub mirrors_truncated: bool,
}

/// One exchange's line of the answer, and one settlement whose bank leg is not
/// confirmed on chain: the API's types.
pub use seisan_api::v1::{ExchangeLine, MirrorLine};

/// The comparison's result (the endpoint adds the height, asset and watcher error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    pub exchanges: Vec<ExchangeLine>,
    pub unexplained_total: String,
    pub mirrors: MirrorSummary,
    pub unconfirmed: Vec<MirrorLine>,
    pub clean: bool,
    /// Why `clean` is false, one sentence each.
    pub outstanding: Vec<String>,
}

/// Compares the ledger snapshot with what the bank showed. Pure.
///
/// Per exchange: bank trust = ledger + pending withdrawals (debited in the ledger,
/// still at the bank) + credits not yet applied - withdrawal payments not yet applied
/// - settlement the ledger moved that the bank's statement does not show yet.
pub fn compare(
    snapshot: &LedgerSnapshot,
    bank: &BTreeMap<MemberId, BankRead>,
    asset: AssetId,
    names: &BTreeMap<MemberId, String>,
) -> Comparison {
    let name = |member: MemberId| {
        names
            .get(&member)
            .cloned()
            .unwrap_or_else(|| member.to_string())
    };
    // References on each statement this node read.
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for read in bank.values() {
        if let BankRead::Read { entries, .. } = read {
            seen.extend(entries.iter().map(|entry| entry.reference.0.as_str()));
        }
    }
    let mut unmirrored: BTreeMap<MemberId, i128> = BTreeMap::new();
    let mut unconfirmed: BTreeMap<MemberId, i128> = BTreeMap::new();
    let mut mirror_lines = Vec::new();
    for record in &snapshot.open_mirrors {
        let amount = record.amount.0 as i128;
        let (payer, payee) = (record.mirror.payer, record.mirror.payee);
        *unconfirmed.entry(payer).or_default() -= amount;
        *unconfirmed.entry(payee).or_default() += amount;
        // Each side's own statement tells whether the bank moved its side.
        for (member, sign) in [(payer, -1), (payee, 1)] {
            let on_statement = match bank.get(&member) {
                Some(BankRead::Read { entries, .. }) => entries
                    .iter()
                    .any(|entry| entry.reference.0 == record.reference),
                _ => false,
            };
            if !on_statement {
                *unmirrored.entry(member).or_default() += sign * amount;
            }
        }
        mirror_lines.push(MirrorLine {
            height: record.mirror.height.0,
            payer: name(payer),
            payee: name(payee),
            amount: record.amount.to_string(),
            reference: record.reference.clone(),
            settled_at_ms: record.settled_at_ms,
            state: mirror::mirror_state(record, snapshot.now_ms),
            at_bank: seen.contains(record.reference.as_str()),
            attestations: record.attestations.len(),
        });
    }
    let mut outstanding = Vec::new();
    let mut lines = Vec::new();
    let mut unexplained_total = 0i128;
    for ledger in &snapshot.exchanges {
        let mut line = ExchangeLine {
            member: ledger.name.clone(),
            ledger_fiat: ledger.ledger_fiat.to_string(),
            pending_withdrawals: ledger.pending_withdrawals.to_string(),
            unmirrored_settlement: unmirrored
                .get(&ledger.member)
                .copied()
                .unwrap_or(0)
                .to_string(),
            unconfirmed_mirrors: unconfirmed
                .get(&ledger.member)
                .copied()
                .unwrap_or(0)
                .to_string(),
            bank_trust: None,
            unattested_credits: None,
            unattested_withdrawal_payments: None,
            conflicting_entries: Vec::new(),
            unexplained_difference: None,
            reconciled: false,
        };
        let (balance, entries) = match bank.get(&ledger.member) {
            Some(BankRead::Read { balance, entries }) => (*balance as i128, entries),
            Some(BankRead::Unreadable) => {
                outstanding.push(format!(
                    "the bank does not let this node read {}'s trust account",
                    ledger.name
                ));
                lines.push(line);
                continue;
            }
            Some(BankRead::Failed { reason }) => {
                outstanding.push(format!(
                    "the bank did not answer for {}'s trust account: {reason}",
                    ledger.name
                ));
                lines.push(line);
                continue;
            }
            Some(BankRead::NoBank) | None => {
                lines.push(line);
                continue;
            }
        };
        let mut credits = 0i128;
        let mut payments = 0i128;
        for entry in entries {
            let Some(fact) = entry_fact(ledger.member, &ledger.name, asset, entry) else {
                continue;
            };
            if ledger.conflicting.contains(&fact.entry.0) {
                line.conflicting_entries.push(fact.entry.0.clone());
            }
            if ledger.applied.contains(&fact.entry.0) {
                continue;
            }
            match fact.kind {
                BankEntryKind::TrustCredit => credits += fact.amount.0 as i128,
                BankEntryKind::WithdrawalPaid { .. } => payments += fact.amount.0 as i128,
            }
        }
        let expected = ledger.ledger_fiat + ledger.pending_withdrawals + credits
            - payments
            - unmirrored.get(&ledger.member).copied().unwrap_or(0);
        let difference = balance - expected;
        unexplained_total += difference.abs();
        line.bank_trust = Some(balance.to_string());
        line.unattested_credits = Some(credits.to_string());
        line.unattested_withdrawal_payments = Some(payments.to_string());
        line.unexplained_difference = Some(difference.to_string());
        line.reconciled = difference == 0 && line.conflicting_entries.is_empty();
        if difference != 0 {
            outstanding.push(format!(
                "{}'s trust balance differs from the ledger by {difference} beyond what is in flight",
                ledger.name
            ));
        }
        if !line.conflicting_entries.is_empty() {
            outstanding.push(format!(
                "{} has conflicting bank entries {:?}",
                ledger.name, line.conflicting_entries
            ));
        }
        lines.push(line);
    }
    if bank.values().all(|read| *read == BankRead::NoBank) {
        outstanding.push("this node has no bank connection (--bank-url)".to_string());
    }
    let summary = mirror::summarize(
        &snapshot.open_mirrors,
        snapshot.now_ms,
        snapshot.mirrors_truncated,
    );
    for line in &mirror_lines {
        let state = match line.state {
            MirrorState::Stalled => "stalled",
            MirrorState::Pending => "pending",
            MirrorState::Confirmed => continue,
        };
        let where_ = if line.at_bank {
            "done at the bank, not yet attested on chain"
        } else {
            "not on any bank statement this node read"
        };
        outstanding.push(format!(
            "settlement {} ({} -> {}, {}) is {state}: {where_}",
            line.reference, line.payer, line.payee, line.amount
        ));
    }
    Comparison {
        exchanges: lines,
        unexplained_total: unexplained_total.to_string(),
        mirrors: summary,
        unconfirmed: mirror_lines,
        clean: outstanding.is_empty(),
        outstanding,
    }
}

/// The exchanges, in member order, with their names.
/// Every exchange of the committed membership (genesis ones and those added since).
fn exchanges(
    view: &dyn seisan_types::state::StateView,
    genesis: &seisan_types::Genesis,
) -> Vec<(MemberId, String)> {
    let membership = seisan_contracts::governance::consortium_or_genesis(view, genesis).membership;
    membership
        .members
        .iter()
        .enumerate()
        .filter(|(_, entry)| entry.member.role == Role::Exchange)
        .map(|(index, entry)| (MemberId(index as u32), entry.member.name.clone()))
        .collect()
}

/// Step 1: every exchange's trust account at the bank. Blocking; no lock held. After
/// the first failure the remaining accounts are not asked (a bank that timed out once
/// would make the caller wait a timeout per account) and are marked failed alike.
/// Carries `failure` across calls: once the bank failed (for any currency), later
/// accounts are marked failed without asking, so a stopped bank costs one timeout per
/// reconciliation, not one per currency.
pub fn read_bank(
    bank: Option<&dyn BankAdapter>,
    exchanges: &[(MemberId, String)],
    currency: &str,
    failure: &mut Option<String>,
) -> BTreeMap<MemberId, BankRead> {
    let mut reads = BTreeMap::new();
    for (member, name) in exchanges {
        let read = match (bank, &*failure) {
            (None, _) => BankRead::NoBank,
            (Some(_), Some(reason)) => BankRead::Failed {
                reason: reason.clone(),
            },
            (Some(bank), None) => match read_account(bank, &AccountId::trust_in(name, currency)) {
                Ok(read) => read,
                Err(error) => {
                    *failure = Some(error.to_string());
                    BankRead::Failed {
                        reason: error.to_string(),
                    }
                }
            },
        };
        reads.insert(*member, read);
    }
    reads
}

/// One trust account's balance and whole statement.
fn read_account(bank: &dyn BankAdapter, account: &AccountId) -> Result<BankRead, BankError> {
    let balance = match bank.balance(account) {
        Ok(balance) => balance.balance.0,
        Err(BankError::Forbidden { .. }) => return Ok(BankRead::Unreadable),
        Err(error) => return Err(error),
    };
    let mut entries = Vec::new();
    loop {
        let after = entries.last().map_or(0, |entry: &Entry| entry.sequence);
        let page = bank.statement(account, after)?;
        if page.is_empty() {
            break;
        }
        entries.extend(page);
    }
    Ok(BankRead::Read { balance, entries })
}

/// Step 2: the ledger side under the commit lock's read side (state reads only).
pub fn snapshot(
    context: &ApiContext,
    asset: AssetId,
    bank: &BTreeMap<MemberId, BankRead>,
) -> LedgerSnapshot {
    let _read = context.commit_lock.read().expect("commit lock");
    let view = context.db.committed_view();
    let tip = super::pipeline::read_tip(&context.db).expect("opened store has a tip");
    let open_withdrawals = ledger_bank::open_withdrawals(&view);
    let mut lines = Vec::new();
    for (member, name) in exchanges(&view, &context.genesis) {
        let balance = seisan_contracts::query::balance(&view, member, asset);
        let mut line = LedgerLine {
            member,
            name: name.clone(),
            ledger_fiat: balance.total().expect("bounded by supply").0 as i128,
            pending_withdrawals: open_withdrawals
                .iter()
                .filter(|withdrawal| withdrawal.member == member)
                .map(|withdrawal| withdrawal.amount.0 as i128)
                .sum(),
            applied: BTreeSet::new(),
            conflicting: BTreeSet::new(),
        };
        if let Some(BankRead::Read { entries, .. }) = bank.get(&member) {
            for entry in entries {
                let Some(fact) = entry_fact(member, &name, asset, entry) else {
                    continue;
                };
                if let Some(record) = ledger_bank::entry(&view, &fact.entry) {
                    if record.applied.is_some() {
                        line.applied.insert(fact.entry.0.clone());
                    }
                    // The ledger acted on other facts than the bank's statement shows
                    // (a minority's contradicting attestation is evidence, not this).
                    if record
                        .applied
                        .as_ref()
                        .is_some_and(|applied| *applied != fact)
                    {
                        line.conflicting.insert(fact.entry.0.clone());
                    }
                }
            }
        }
        lines.push(line);
    }
    let open_mirrors = mirror::open_mirrors(&view, MAX_MIRROR_RECORDS_PER_QUERY);
    let mirrors_truncated = open_mirrors.len() == MAX_MIRROR_RECORDS_PER_QUERY;
    let open_mirrors: Vec<MirrorRecord> = open_mirrors
        .into_iter()
        .filter(|record| record.asset == asset)
        .collect();
    LedgerSnapshot {
        height: tip.height.0,
        now_ms: tip.timestamp_ms,
        exchanges: lines,
        mirrors_truncated,
        open_mirrors,
    }
}

/// Per exchange, the ledger's fiat balance beside the bank trust-account balance, what
/// is in flight (pending withdrawals, unattested credits and payments, unmirrored
/// settlement) and any unexplained difference; every settlement whose bank transfer is
/// not confirmed on chain (pending, or stalled past `mirror_confirm_bound_ms` of block
/// time); clean only when everything is confirmed and agrees. Each fiat asset is its own
/// currency at the bank, answered under `currencies`. The bank is read without holding
/// any node lock; a bank that does not answer within the client's timeout leaves
/// `clean` false with the reason in `outstanding` (the chain-side mirror states are
/// still reported).
#[utoipa::path(get, path = "/v1/reconciliation", tag = "settlement",
    responses(
        (status = 200, description = "Reconciliation", body = v1::Reconciliation),
        (status = 404, description = "`no_fiat_asset`: genesis has no fiat asset", body = v1::ErrorBody),
    ))]
async fn reconciliation(
    State(context): State<ApiContext>,
) -> Result<Json<v1::Reconciliation>, ApiError> {
    let fiat = super::bank_watcher::fiat_currencies(&context.genesis);
    if fiat.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_fiat_asset",
            "genesis has no fiat asset",
        ));
    }
    let bank = context.bank_reader.clone();
    let watcher_error = context.bank.borrow().last_error.clone();
    tokio::task::spawn_blocking(move || {
        let exchanges = exchanges(&context.db.committed_view(), &context.genesis);
        let names: BTreeMap<MemberId, String> = exchanges.iter().cloned().collect();
        let mut currencies = BTreeMap::new();
        let (mut clean, mut outstanding, mut unconfirmed, mut open) =
            (true, Vec::new(), Vec::new(), Vec::new());
        let mut truncated = false;
        let mut now_ms = 0;
        let mut failure = None;
        for (index, (asset, currency)) in fiat.iter().enumerate() {
            // Bank first, then the ledger (see the module docs), per currency.
            let reads = read_bank(bank.as_deref(), &exchanges, currency, &mut failure);
            let snapshot = snapshot(&context, *asset, &reads);
            let comparison = compare(&snapshot, &reads, *asset, &names);
            clean &= comparison.clean;
            // The first currency's sentences stay as they were; others name theirs.
            let prefix = if index == 0 {
                String::new()
            } else {
                format!("{currency}: ")
            };
            outstanding.extend(
                comparison
                    .outstanding
                    .iter()
                    .map(|sentence| format!("{prefix}{sentence}")),
            );
            unconfirmed.extend(comparison.unconfirmed.iter().cloned());
            open.extend(snapshot.open_mirrors.iter().cloned());
            truncated |= snapshot.mirrors_truncated;
            now_ms = now_ms.max(snapshot.now_ms);
            currencies.insert(
                currency.clone(),
                v1::CurrencyReconciliation {
                    height: snapshot.height,
                    exchanges: comparison.exchanges,
                    unexplained_total: comparison.unexplained_total,
                    mirrors: comparison.mirrors,
                    unconfirmed: comparison.unconfirmed,
                    clean: comparison.clean,
                    outstanding: comparison.outstanding,
                },
            );
        }
        // The top-level lines are the first fiat asset's.
        let first = currencies[&fiat[0].1].clone();
        // Oldest first across currencies, as `summarize` expects.
        open.sort_by_key(|record| record.mirror);
        Ok::<_, ApiError>(Json(v1::Reconciliation {
            height: first.height,
            asset: fiat[0].1.clone(),
            bank_connected: bank.is_some(),
            exchanges: first.exchanges,
            unexplained_total: first.unexplained_total,
            mirrors: mirror::summarize(&open, now_ms, truncated),
            unconfirmed,
            clean,
            outstanding,
            currencies,
            mirror_confirm_bound_ms: mirror::MIRROR_CONFIRM_BOUND_MS,
            watcher_error,
        }))
    })
    .await
    .expect("reconciliation does not panic")
}

pub use seisan_api::v1::MirrorStatus;

/// The committed mirrors' status at the tip's block time; also sets the
/// `seisan_mirror_pending` and `seisan_mirror_stalled` gauges. State reads only.
pub fn mirror_status(context: &ApiContext) -> Option<MirrorStatus> {
    mirror::mirror_asset(&context.genesis)?;
    let summary = {
        // One committed height for the tip's time and the open mirrors.
        let _read = context.commit_lock.read().expect("commit lock");
        let tip = super::pipeline::read_tip(&context.db).expect("opened store has a tip");
        mirror::mirror_summary(&context.db.committed_view(), tip.timestamp_ms)
    };
    context.metrics.mirror_pending.set(summary.pending as i64);
    context.metrics.mirror_stalled.set(summary.stalled as i64);
    let (height, reference) = summary
        .oldest_stalled
        .map(|(height, reference)| (Some(height.0), Some(reference)))
        .unwrap_or((None, None));
    Some(MirrorStatus {
        pending: summary.pending,
        stalled: summary.stalled,
        oldest_stalled_height: height,
        oldest_stalled_reference: reference,
        bound_ms: mirror::MIRROR_CONFIRM_BOUND_MS,
        truncated: summary.truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use seisan_bank::{Direction, EntryId, TransferReference};
    use seisan_types::mirror::MirrorId;
    use seisan_types::{Amount, Height};

    const FIAT: AssetId = AssetId(1);
    const A: MemberId = MemberId(1);
    const B: MemberId = MemberId(2);

    fn entry(
        id: &str,
        account: &str,
        direction: Direction,
        amount: u128,
        counterparty: &str,
        reference: &str,
    ) -> Entry {
        Entry {
            id: EntryId(id.into()),
            sequence: id[1..].parse().unwrap(),
            account: AccountId(account.into()),
            direction,
            amount: Amount(amount),
            counterparty: AccountId(counterparty.into()),
            reference: TransferReference(reference.into()),
            timestamp_ms: 0,
            balance_after: Amount(0),
        }
    }

    fn ledger_line(member: MemberId, name: &str, fiat: i128, applied: &[&str]) -> LedgerLine {
        LedgerLine {
            member,
            name: name.into(),
            ledger_fiat: fiat,
            pending_withdrawals: 0,
            applied: applied.iter().map(|id| id.to_string()).collect(),
            conflicting: BTreeSet::new(),
        }
    }

    fn open_mirror(height: u64, amount: u128, settled_at_ms: u64) -> MirrorRecord {
        MirrorRecord {
            mirror: MirrorId {
                height: Height(height),
                payer: A,
                payee: B,
                asset: FIAT,
            },
            asset: FIAT,
            amount: Amount(amount),
            reference: mirror::mirror_reference(Height(height), "a", "b"),
            settled_at_ms,
            attestations: Vec::new(),
            confirmed: None,
        }
    }

    fn names() -> BTreeMap<MemberId, String> {
        [(A, "a".to_string()), (B, "b".to_string())].into()
    }

    /// A funded its trust account with 200 (credited in the ledger), then paid B 100
    /// in a fill settled at height 7.
    fn scenario(mirrored_at_bank: bool, mirror_open: Option<u64>) -> Comparison {
        let mut a_entries = vec![entry(
            "E1",
            "a:trust",
            Direction::Credit,
            200,
            "a:operating",
            "fund-1",
        )];
        let mut b_entries = vec![];
        let (mut a_balance, mut b_balance) = (200, 0);
        if mirrored_at_bank {
            a_entries.push(entry(
                "E2",
                "a:trust",
                Direction::Debit,
                100,
                "b:trust",
                "settle-7-a-b",
            ));
            b_entries.push(entry(
                "E3",
                "b:trust",
                Direction::Credit,
                100,
                "a:trust",
                "settle-7-a-b",
            ));
            a_balance -= 100;
            b_balance += 100;
        }
        let bank: BTreeMap<MemberId, BankRead> = [
            (
                A,
                BankRead::Read {
                    balance: a_balance,
                    entries: a_entries,
                },
            ),
            (
                B,
                BankRead::Read {
                    balance: b_balance,
                    entries: b_entries,
                },
            ),
        ]
        .into();
        let snapshot = LedgerSnapshot {
            height: 9,
            now_ms: 100_000,
            exchanges: vec![
                ledger_line(A, "a", 100, &["E1"]),
                ledger_line(B, "b", 100, &[]),
            ],
            open_mirrors: mirror_open
                .map(|settled_at_ms| open_mirror(7, 100, settled_at_ms))
                .into_iter()
                .collect(),
            mirrors_truncated: false,
        };
        compare(&snapshot, &bank, FIAT, &names())
    }

    #[test]
    fn confirmed_mirror_at_the_bank_is_clean() {
        let result = scenario(true, None);
        assert!(result.clean, "{:?}", result.outstanding);
        assert_eq!(result.unexplained_total, "0");
        assert!(result.exchanges.iter().all(|line| line.reconciled));
    }

    #[test]
    fn a_mirror_the_bank_has_not_made_is_explained_but_not_clean_and_stalls_past_the_bound() {
        // Settled 10 s ago (block time): pending, explained as unmirrored.
        let result = scenario(false, Some(90_000));
        assert_eq!(result.unexplained_total, "0");
        assert!(result.exchanges.iter().all(|line| line.reconciled));
        assert_eq!(result.exchanges[0].unmirrored_settlement, "-100");
        assert_eq!(result.exchanges[1].unmirrored_settlement, "100");
        assert!(!result.clean);
        assert_eq!(result.mirrors.pending, 1);
        assert_eq!(result.mirrors.stalled, 0);
        assert_eq!(result.unconfirmed[0].state, MirrorState::Pending);
        assert!(!result.unconfirmed[0].at_bank);
        // Settled long ago: stalled, named in what is outstanding.
        let result = scenario(false, Some(1_000));
        assert_eq!(result.mirrors.stalled, 1);
        assert!(!result.clean);
        assert!(
            result
                .outstanding
                .iter()
                .any(|why| why.contains("settle-7-a-b") && why.contains("stalled")),
            "{:?}",
            result.outstanding
        );
    }

    #[test]
    fn a_mirror_done_at_the_bank_but_not_attested_is_reconciled_yet_not_clean() {
        let result = scenario(true, Some(90_000));
        assert_eq!(result.unexplained_total, "0");
        assert_eq!(result.exchanges[0].unmirrored_settlement, "0");
        assert_eq!(result.exchanges[0].unconfirmed_mirrors, "-100");
        assert!(result.unconfirmed[0].at_bank);
        assert!(!result.clean);
        assert!(
            result.outstanding[0].contains("not yet attested"),
            "{:?}",
            result.outstanding
        );
    }

    #[test]
    fn a_confirmed_mirror_missing_at_the_bank_is_an_unexplained_difference() {
        // The chain says confirmed (no open mirror) but the statements show no transfer.
        let result = scenario(false, None);
        assert_eq!(result.unexplained_total, "200");
        assert!(!result.clean);
        assert!(!result.exchanges[0].reconciled);
    }

    #[test]
    fn unattested_credits_and_unreadable_accounts_are_reported() {
        let bank: BTreeMap<MemberId, BankRead> = [
            (
                A,
                BankRead::Read {
                    balance: 50,
                    entries: vec![entry(
                        "E1",
                        "a:trust",
                        Direction::Credit,
                        50,
                        "a:operating",
                        "fund-1",
                    )],
                },
            ),
            (B, BankRead::Unreadable),
        ]
        .into();
        let snapshot = LedgerSnapshot {
            height: 2,
            now_ms: 0,
            exchanges: vec![ledger_line(A, "a", 0, &[]), ledger_line(B, "b", 0, &[])],
            open_mirrors: Vec::new(),
            mirrors_truncated: false,
        };
        let result = compare(&snapshot, &bank, FIAT, &names());
        assert_eq!(
            result.exchanges[0].unattested_credits.as_deref(),
            Some("50")
        );
        assert!(result.exchanges[0].reconciled);
        assert_eq!(result.exchanges[1].bank_trust, None);
        assert!(!result.clean);
        let no_bank: BTreeMap<MemberId, BankRead> =
            [(A, BankRead::NoBank), (B, BankRead::NoBank)].into();
        let result = compare(&snapshot, &no_bank, FIAT, &names());
        assert!(!result.clean);
        assert!(result.outstanding[0].contains("no bank connection"));
    }

    /// A bank that never answers, counting the calls it got.
    struct Unreachable(std::sync::atomic::AtomicUsize);

    impl BankAdapter for Unreachable {
        fn balance(&self, _: &AccountId) -> Result<seisan_bank::AccountBalance, BankError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(BankError::Unavailable {
                reason: "timeout: global".into(),
            })
        }
        fn statement(&self, _: &AccountId, _: u64) -> Result<Vec<Entry>, BankError> {
            unreachable!("no statement is read after the balance failed")
        }
        fn transfer(
            &self,
            _: &seisan_bank::TransferRequest,
        ) -> Result<seisan_bank::TransferReceipt, BankError> {
            unreachable!("reconciliation moves no money")
        }
        fn transfer_by_reference(
            &self,
            _: &TransferReference,
        ) -> Result<Option<seisan_bank::TransferReceipt>, BankError> {
            unreachable!("reconciliation reads statements")
        }
    }

    #[test]
    fn an_unreachable_bank_is_asked_once_and_the_stalled_mirror_is_still_named() {
        let bank = Unreachable(Default::default());
        let reads = read_bank(
            Some(&bank),
            &[(A, "a".into()), (B, "b".into())],
            "JPY",
            &mut None,
        );
        assert_eq!(bank.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(reads
            .values()
            .all(|read| matches!(read, BankRead::Failed { reason } if reason.contains("timeout"))));
        let snapshot = LedgerSnapshot {
            height: 9,
            now_ms: 100_000,
            exchanges: vec![ledger_line(A, "a", 100, &[]), ledger_line(B, "b", 100, &[])],
            open_mirrors: vec![open_mirror(7, 100, 1_000)],
            mirrors_truncated: false,
        };
        let result = compare(&snapshot, &reads, FIAT, &names());
        assert!(!result.clean);
        assert_eq!(result.mirrors.stalled, 1);
        assert!(result
            .outstanding
            .iter()
            .any(|why| why.contains("did not answer")));
        assert!(result
            .outstanding
            .iter()
            .any(|why| why.contains("settle-7-a-b") && why.contains("stalled")));
        assert!(result
            .exchanges
            .iter()
            .all(|line| line.bank_trust.is_none()));
    }
}
