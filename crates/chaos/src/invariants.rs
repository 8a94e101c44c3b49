//! Pure checks over what the nodes' HTTP API and the bank answered: conservation of
//! every asset, no negative or inconsistent balance, one chain (same block hash and
//! state root at every height on every node), durable acknowledged transactions, and
//! fiat that matches the bank: the ledger never credits more yen than was deposited at
//! the bank nor debits more than was asked to be withdrawn, and once the watchers have
//! caught up, yen credited = deposits the bank booked, yen debited = withdrawals the
//! bank paid, and yen held = the trust accounts' balances.
//!
//! A fiat withdrawal leaves the members' balances (it counts in `debited`) when the
//! ledger accepts it, and leaves the bank when the clearing house pays it; until its
//! payment is attested it is a pending withdrawal, still owed, which reconciliation
//! counts beside the member's balance. The final comparison therefore waits until no
//! withdrawal is pending (see [`check_reconciliation_settled`]).
//!
//! Crypto custody, on the same pattern: at every read the ledger never credits more of
//! a crypto asset than its openings plus what the registered addresses sent to the hot
//! wallet, nor debits more than was asked to be withdrawn, and the credited deposit
//! records never add up to more than was sent. After the run, once every deposit is
//! credited and every withdrawal completed: each deposit on the chain is credited
//! exactly once to the exchange that sent it (and nothing else is); each withdrawal is
//! paid by exactly the payout it names, and the hot wallet made no other payment but
//! sweeps to cold; custody equals the ledger exactly (hot + cold + the hot wallet's gas
//! = liabilities + the clearing house's gas buffer); and each registered address's
//! balance moved by exactly what it was paid minus what it sent and the gas it spent.
//!
//! Nothing here does I/O, so each check is unit-tested against crafted answers,
//! including answers that break the invariant (a checker that cannot fail proves
//! nothing). Answers arrive as the API's types (`seisan_api::v1`); one the node sent in
//! the wrong shape (a negative amount is no `u128`) is reported by the caller as a
//! violation ([`crate::http::Answer::Unreadable`]).

use crate::chain::{ChainTransaction, Movement};
use crate::http::Answer;
use seisan_api::v1;
use seisan_types::custody::{DepositOutcome, DepositRecord, Withdrawal, WithdrawalStatus};
use seisan_types::ids::{AssetId, MemberId};
use seisan_types::receipt::Receipt;
use std::collections::BTreeMap;

/// One asset's supply as `GET /v1/supply` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Supply {
    pub symbol: String,
    pub credited: u128,
    pub debited: u128,
    pub held: u128,
}

/// Checks a `GET /v1/supply` answer: every asset holds `held == credited - debited`.
/// Returns the answer's height and supplies, or every violation found.
pub fn check_supply(answer: &v1::Supply) -> Result<(u64, Vec<Supply>), Vec<String>> {
    let mut violations = Vec::new();
    let height = answer.height.0;
    let mut supplies = Vec::new();
    for asset in &answer.assets {
        let symbol = asset.symbol.clone();
        let (credited, debited, held) = (asset.credited.0, asset.debited.0, asset.held.0);
        match credited.checked_sub(debited) {
            Some(expected) if expected == held => {}
            Some(expected) => violations.push(format!(
                "{symbol} at height {height}: held {held} != credited {credited} - debited {debited} = {expected}"
            )),
            None => violations.push(format!(
                "{symbol} at height {height}: debited {debited} exceeds credited {credited}"
            )),
        }
        supplies.push(Supply {
            symbol,
            credited,
            debited,
            held,
        });
    }
    if violations.is_empty() {
        Ok((height, supplies))
    } else {
        Err(violations)
    }
}

/// Checks a `GET /v1/members/{m}/balances` answer: the sum of every asset's
/// components does not overflow. Returns the height and each asset's total.
pub fn check_balances(answer: &v1::Balances) -> Result<(u64, BTreeMap<String, u128>), Vec<String>> {
    let mut violations = Vec::new();
    let mut totals = BTreeMap::new();
    for entry in &answer.balances {
        let balance = entry.balance;
        let total = balance
            .inventory
            .0
            .checked_add(balance.locked.0)
            .and_then(|sum| sum.checked_add(balance.customers.0));
        match total {
            Some(total) => {
                totals.insert(entry.symbol.clone(), total);
            }
            None => violations.push(format!(
                "member {} {}: balance overflows",
                answer.member, entry.symbol
            )),
        }
    }
    if violations.is_empty() {
        Ok((answer.height.0, totals))
    } else {
        Err(violations)
    }
}

/// Compares the members' balance totals (all read at `height`) with the supply read
/// at the same height: the holdings must add up exactly.
pub fn check_holdings_add_up(
    height: u64,
    supplies: &[Supply],
    member_totals: &[BTreeMap<String, u128>],
) -> Vec<String> {
    let mut violations = Vec::new();
    for supply in supplies {
        let sum = member_totals
            .iter()
            .map(|totals| totals.get(&supply.symbol).copied().unwrap_or(0))
            .try_fold(0u128, u128::checked_add);
        if sum != Some(supply.held) {
            violations.push(format!(
                "{} at height {height}: members hold {sum:?} in total but supply says held {}",
                supply.symbol, supply.held
            ));
        }
    }
    violations
}

/// Checks one node's supplies against what the workload asked of the bank so far (read
/// after the supply answer, so they are upper bounds): the fiat asset's `credited`
/// cannot exceed the deposits asked for, nor `debited` the withdrawals asked for.
pub fn check_fiat_bounds(
    supplies: &[Supply],
    fiat_symbol: &str,
    deposits_asked: u128,
    withdrawals_asked: u128,
) -> Vec<String> {
    let Some(fiat) = supplies.iter().find(|supply| supply.symbol == fiat_symbol) else {
        return vec![format!("the supply has no {fiat_symbol}")];
    };
    let mut violations = Vec::new();
    if fiat.credited > deposits_asked {
        violations.push(format!(
            "{fiat_symbol} credited {} exceeds every deposit ever asked of the bank ({deposits_asked})",
            fiat.credited
        ));
    }
    if fiat.debited > withdrawals_asked {
        violations.push(format!(
            "{fiat_symbol} debited {} exceeds every withdrawal ever asked for ({withdrawals_asked})",
            fiat.debited
        ));
    }
    violations
}

/// Checks one node's supplies of the crypto assets against the workload's traffic so
/// far (read after the supply answer, so they are upper bounds): `credited` cannot
/// exceed the genesis openings plus every deposit asked of the chain, nor `debited`
/// every withdrawal asked for.
pub fn check_crypto_bounds(
    supplies: &[Supply],
    openings: &BTreeMap<&str, u128>,
    deposits_asked: &BTreeMap<&str, u128>,
    withdrawals_asked: &BTreeMap<&str, u128>,
) -> Vec<String> {
    let mut violations = Vec::new();
    for (symbol, opening) in openings {
        let Some(supply) = supplies.iter().find(|supply| supply.symbol == *symbol) else {
            violations.push(format!("the supply has no {symbol}"));
            continue;
        };
        let sent = deposits_asked.get(symbol).copied().unwrap_or(0);
        if opening
            .checked_add(sent)
            .is_none_or(|bound| supply.credited > bound)
        {
            violations.push(format!(
                "{symbol} credited {} exceeds the openings {opening} plus every deposit sent to the hot wallet ({sent})",
                supply.credited
            ));
        }
        let asked = withdrawals_asked.get(symbol).copied().unwrap_or(0);
        if supply.debited > asked {
            violations.push(format!(
                "{symbol} debited {} exceeds every withdrawal asked for ({asked})",
                supply.debited
            ));
        }
    }
    violations
}

/// Checks a node's deposit records against the deposits asked of the chain so far
/// (read after the records): per asset, the credited ones add up to no more than was
/// sent. `symbols` names the crypto assets.
pub fn check_credited_within_sent(
    records: &[DepositRecord],
    symbols: &BTreeMap<AssetId, &str>,
    deposits_asked: &BTreeMap<&str, u128>,
) -> Vec<String> {
    let mut credited: BTreeMap<&str, u128> = BTreeMap::new();
    let mut violations = Vec::new();
    for record in records {
        let Some((fact, DepositOutcome::Credited { .. })) = &record.outcome else {
            continue;
        };
        let Some(symbol) = symbols.get(&fact.asset) else {
            violations.push(format!(
                "deposit {} credited asset {} which is not on the public chain",
                record.id, fact.asset
            ));
            continue;
        };
        let sum = credited.entry(symbol).or_default();
        *sum = sum.saturating_add(fact.amount.0);
    }
    for (symbol, sum) in credited {
        let sent = deposits_asked.get(symbol).copied().unwrap_or(0);
        if sum > sent {
            violations.push(format!(
                "credited {symbol} deposits add up to {sum}, more than was ever sent to the hot wallet ({sent})"
            ));
        }
    }
    violations
}

/// A deposit found on the chain: a successful transfer from a registered address to
/// the hot wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainDeposit {
    pub tx_hash: String,
    pub member: MemberId,
    pub asset: AssetId,
    pub amount: u128,
}

/// After the run: every deposit on the chain has exactly one record, credited to the
/// member that owns the sending address with the amount and asset sent; every credited
/// record is one of those deposits.
pub fn check_deposits_credited_once(
    sent: &[ChainDeposit],
    records: &[DepositRecord],
) -> Vec<String> {
    let mut violations = Vec::new();
    let mut by_hash: BTreeMap<&str, Vec<&DepositRecord>> = BTreeMap::new();
    for record in records {
        if let Some((fact, _)) = &record.outcome {
            by_hash
                .entry(fact.tx_hash.0.as_str())
                .or_default()
                .push(record);
        }
    }
    for deposit in sent {
        let matching = by_hash
            .get(deposit.tx_hash.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        match matching {
            [] => violations.push(format!(
                "deposit {} of {} (asset {}) by member {} was never credited",
                deposit.tx_hash, deposit.amount, deposit.asset, deposit.member
            )),
            [record] => {
                let (fact, outcome) = record.outcome.as_ref().expect("grouped by outcome");
                let expected = DepositOutcome::Credited {
                    member: deposit.member,
                };
                if *outcome != expected
                    || fact.asset != deposit.asset
                    || fact.amount.0 != deposit.amount
                {
                    violations.push(format!(
                        "deposit {} of {} (asset {}) by member {} settled as {outcome:?} of {} (asset {})",
                        deposit.tx_hash, deposit.amount, deposit.asset, deposit.member, fact.amount, fact.asset
                    ));
                }
            }
            more => violations.push(format!(
                "deposit {} was settled {} times",
                deposit.tx_hash,
                more.len()
            )),
        }
    }
    for (hash, matching) in &by_hash {
        let credited = matching
            .iter()
            .any(|record| matches!(record.outcome, Some((_, DepositOutcome::Credited { .. }))));
        if credited && !sent.iter().any(|deposit| deposit.tx_hash == *hash) {
            violations.push(format!(
                "deposit {hash} was credited but no registered address sent it to the hot wallet"
            ));
        }
    }
    violations
}

/// After the run: every withdrawal is completed by a payout the hot wallet really made
/// (`payouts`: its successful transactions, with what each moved) to the withdrawal's
/// address, of its asset and amount; and every payment from the hot wallet other than
/// a sweep to `cold` is the completed payout of exactly one withdrawal (nothing paid
/// twice, nothing paid that nobody withdrew).
pub fn check_withdrawals_paid_once(
    withdrawals: &[Withdrawal],
    payouts: &[ChainTransaction],
    symbols: &BTreeMap<AssetId, &'static str>,
    cold: &str,
) -> Vec<String> {
    let mut violations = Vec::new();
    let mut named: BTreeMap<&str, u64> = BTreeMap::new();
    for withdrawal in withdrawals {
        let WithdrawalStatus::Completed { tx_hash } = &withdrawal.status else {
            violations.push(format!(
                "withdrawal {} of {} (asset {}) is not completed: {:?}",
                withdrawal.id, withdrawal.amount, withdrawal.asset, withdrawal.status
            ));
            continue;
        };
        *named.entry(tx_hash.0.as_str()).or_default() += 1;
        let expected = symbols.get(&withdrawal.asset).map(|symbol| Movement {
            symbol,
            to: withdrawal.to.0.to_lowercase(),
            amount: withdrawal.amount.0,
        });
        let paid = payouts
            .iter()
            .find(|payout| payout.hash.eq_ignore_ascii_case(&tx_hash.0));
        match paid {
            Some(payout) if payout.success && payout.movement == expected => {}
            Some(payout) => violations.push(format!(
                "withdrawal {} of {} (asset {}) to {} completed by {} which moved {:?}",
                withdrawal.id,
                withdrawal.amount,
                withdrawal.asset,
                withdrawal.to.0,
                payout.hash,
                payout.movement
            )),
            None => violations.push(format!(
                "withdrawal {} completed by {} which the hot wallet never sent",
                withdrawal.id, tx_hash.0
            )),
        }
    }
    for payout in payouts {
        let Some(movement) = &payout.movement else {
            continue;
        };
        if movement.to.eq_ignore_ascii_case(cold) {
            continue;
        }
        match named.get(payout.hash.as_str()).copied().unwrap_or(0) {
            1 => {}
            0 => violations.push(format!(
                "the hot wallet paid {} {} to {} in {} for no completed withdrawal",
                movement.amount, movement.symbol, movement.to, payout.hash
            )),
            times => violations.push(format!(
                "payout {} completes {times} withdrawals",
                payout.hash
            )),
        }
    }
    violations
}

/// One line of `GET /v1/reserves`: the ledger's liabilities and the wallets' balances
/// of one asset at one public-chain block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReserveLine {
    pub symbol: String,
    pub liabilities: u128,
    pub pending_withdrawals: u128,
    pub hot: u128,
    pub cold: u128,
}

/// The lines of a `GET /v1/reserves` answer.
pub fn parse_reserves(answer: &v1::Reserves) -> Vec<ReserveLine> {
    answer
        .assets
        .iter()
        .map(|line| ReserveLine {
            symbol: line.symbol.clone(),
            liabilities: line.liabilities.0,
            pending_withdrawals: line.pending_withdrawals.0,
            hot: line.hot.0,
            cold: line.cold.0,
        })
        .collect()
}

/// After the run, with nothing pending: custody equals the ledger exactly. For the
/// native coin, the hot wallet also paid `hot_gas_wei` in fees out of the clearing
/// house's own `gas_buffer_wei`, so hot + cold + gas = liabilities + buffer; for a
/// token, hot + cold = liabilities.
pub fn check_custody_exact(
    lines: &[ReserveLine],
    native_symbol: &str,
    hot_gas_wei: u128,
    gas_buffer_wei: u128,
    expected_symbols: &[&str],
) -> Vec<String> {
    let mut violations = Vec::new();
    for symbol in expected_symbols {
        if !lines.iter().any(|line| line.symbol == *symbol) {
            violations.push(format!("the reserves have no {symbol} line"));
        }
    }
    for line in lines {
        if line.pending_withdrawals != 0 {
            violations.push(format!(
                "{} has {} in pending withdrawals after the run",
                line.symbol, line.pending_withdrawals
            ));
        }
        let (extra_custody, extra_liabilities) = if line.symbol == native_symbol {
            (hot_gas_wei, gas_buffer_wei)
        } else {
            (0, 0)
        };
        let custody = line
            .hot
            .checked_add(line.cold)
            .and_then(|sum| sum.checked_add(extra_custody));
        let owed = line.liabilities.checked_add(extra_liabilities);
        if custody.is_none() || custody != owed {
            violations.push(format!(
                "{}: hot {} + cold {} + gas {extra_custody} = {custody:?} but liabilities {} + buffer {extra_liabilities} = {owed:?}",
                line.symbol, line.hot, line.cold, line.liabilities
            ));
        }
    }
    violations
}

/// How one registered address's balance of one asset moved over the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountFlow {
    pub start: u128,
    pub end: u128,
    /// Completed withdrawals paid to it.
    pub paid_to: u128,
    /// Deposits it sent to the hot wallet.
    pub sent: u128,
    /// Gas it spent (native coin only).
    pub gas: u128,
}

/// After the run: a registered address's balance moved by exactly what its completed
/// withdrawals paid it minus what it deposited and the gas it spent (a payout made
/// twice, or a deposit that never left, shows here).
pub fn check_account_flow(label: &str, flow: &AccountFlow) -> Option<String> {
    let expected = flow
        .start
        .checked_add(flow.paid_to)
        .and_then(|sum| sum.checked_sub(flow.sent))
        .and_then(|sum| sum.checked_sub(flow.gas));
    (expected != Some(flow.end)).then(|| {
        format!(
            "{label}: started with {}, was paid {}, sent {} and spent {} on gas, so should hold {expected:?}, but holds {}",
            flow.start, flow.paid_to, flow.sent, flow.gas, flow.end
        )
    })
}

/// Whether a `GET /v1/reconciliation` answer shows the bank and the ledger settled:
/// the bank is connected and every exchange's line is reconciled with nothing in
/// flight (no pending withdrawal, no unattested credit or payment, no unmirrored
/// settlement, no unexplained difference). `Err` says what is still outstanding.
pub fn check_reconciliation_settled(answer: &v1::Reconciliation) -> Result<(), String> {
    if !answer.bank_connected {
        return Err(format!("the bank is not connected: {answer:?}"));
    }
    if answer.unexplained_total != "0" {
        return Err(format!(
            "unexplained total {} (watcher error {:?})",
            answer.unexplained_total, answer.watcher_error
        ));
    }
    let mut outstanding = Vec::new();
    for line in &answer.exchanges {
        // An amount the node could not read (null) is outstanding too.
        for (field, value) in [
            ("pending_withdrawals", Some(&line.pending_withdrawals)),
            ("unattested_credits", line.unattested_credits.as_ref()),
            (
                "unattested_withdrawal_payments",
                line.unattested_withdrawal_payments.as_ref(),
            ),
            ("unmirrored_settlement", Some(&line.unmirrored_settlement)),
        ] {
            if value.map(String::as_str) != Some("0") {
                outstanding.push(format!("{} {field}={value:?}", line.member));
            }
        }
        if !line.reconciled {
            outstanding.push(format!("{} not reconciled: {line:?}", line.member));
        }
    }
    if outstanding.is_empty() {
        Ok(())
    } else {
        Err(outstanding.join("; "))
    }
}

/// The fiat side of the bank's books, read from every exchange's trust account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BankBooks {
    /// Trust-account credits from the same party's operating account (deposits, S210),
    /// by transfer reference.
    pub deposits: BTreeMap<String, u128>,
    /// Trust-account debits to the same party's operating account under a
    /// `fiat-withdrawal-<id>` reference (withdrawals paid), by reference.
    pub withdrawal_payments: BTreeMap<String, u128>,
    /// The sum of every exchange's trust balance.
    pub trust_balances: u128,
}

/// Compares the ledger's fiat supply with the bank's books once nothing is in flight
/// (see [`check_reconciliation_settled`]), and the deposits the workload made (by
/// reference: amount, confirmed) with those the bank booked: nothing lost, nothing
/// credited twice, nothing invented.
pub fn check_bank_books(
    ledger: &Supply,
    books: &BankBooks,
    asked: &BTreeMap<String, (u128, bool)>,
) -> Vec<String> {
    let mut violations = Vec::new();
    let symbol = &ledger.symbol;
    let sum = |map: &BTreeMap<String, u128>| map.values().try_fold(0u128, |a, b| a.checked_add(*b));
    let deposited = sum(&books.deposits);
    if deposited != Some(ledger.credited) {
        violations.push(format!(
            "{symbol} credited {} but the bank booked deposits of {deposited:?}",
            ledger.credited
        ));
    }
    let paid = sum(&books.withdrawal_payments);
    if paid != Some(ledger.debited) {
        violations.push(format!(
            "{symbol} debited {} but the bank paid withdrawals of {paid:?}",
            ledger.debited
        ));
    }
    if books.trust_balances != ledger.held {
        violations.push(format!(
            "{symbol} held {} but the trust accounts hold {}",
            ledger.held, books.trust_balances
        ));
    }
    for (reference, (amount, confirmed)) in asked {
        match books.deposits.get(reference) {
            Some(booked) if booked != amount => violations.push(format!(
                "deposit {reference} of {amount} was booked as {booked}"
            )),
            None if *confirmed => violations.push(format!(
                "deposit {reference} of {amount} was confirmed by the bank but is not on its books"
            )),
            _ => {}
        }
    }
    for reference in books.deposits.keys() {
        if !asked.contains_key(reference) {
            violations.push(format!(
                "the bank booked deposit {reference} that nobody asked for"
            ));
        }
    }
    violations
}

/// The first block hash and state root seen at each height, to compare every node's
/// answer against.
#[derive(Debug, Default)]
pub struct ChainRecord {
    blocks: BTreeMap<u64, (String, String)>,
}

impl ChainRecord {
    /// Records `(hash, state_root)` at `height`, or compares it with what another node
    /// said there. Returns a divergence description if they differ.
    pub fn observe(
        &mut self,
        node: &str,
        height: u64,
        hash: &str,
        state_root: &str,
    ) -> Option<String> {
        assert!(height > 0, "height 0 is genesis and has no block");
        let seen = self
            .blocks
            .entry(height)
            .or_insert_with(|| (hash.to_string(), state_root.to_string()));
        if seen.0 != hash || seen.1 != state_root {
            return Some(format!(
                "{node} at height {height}: block {hash} root {state_root}, another node had block {} root {}",
                seen.0, seen.1
            ));
        }
        None
    }

    pub fn heights(&self) -> usize {
        self.blocks.len()
    }
}

/// What a client saw when the API first reported a transaction finalized.
#[derive(Clone, Debug, PartialEq)]
pub struct Acknowledged {
    pub id: String,
    pub height: u64,
    pub receipt: Receipt,
}

/// How a node's `GET /v1/transactions/{id}` answer relates to an acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AckCheck {
    /// Finalized at the same height with the same receipt.
    Same,
    /// The node is behind the acknowledged height: nothing can be said yet.
    NotYet,
    /// The node is at or past the height but does not know the transaction, or knows
    /// it at another height or with another receipt.
    Lost(String),
}

/// Compares a node's answer to `GET /v1/transactions/{id}` with an acknowledgement,
/// given the node's height when it answered.
pub fn check_acknowledged(
    ack: &Acknowledged,
    node_height: u64,
    answer: &Answer<v1::TransactionStatus>,
) -> AckCheck {
    let status = match answer {
        Answer::Document(status) if status.status == v1::TxState::Finalized => status,
        _ if node_height < ack.height => return AckCheck::NotYet,
        other => {
            return AckCheck::Lost(format!(
                "transaction {} acknowledged at height {} is {other:?} on a node at height {node_height}",
                ack.id, ack.height
            ))
        }
    };
    if status.height.map(|height| height.0) != Some(ack.height) {
        return AckCheck::Lost(format!(
            "transaction {} acknowledged at height {} is now at height {:?}",
            ack.id, ack.height, status.height
        ));
    }
    if status.receipt.as_ref() != Some(&ack.receipt) {
        return AckCheck::Lost(format!(
            "transaction {} at height {} has receipt {:?} but was acknowledged with {:?}",
            ack.id, ack.height, status.receipt, ack.receipt
        ));
    }
    AckCheck::Same
}

/// Checks one honest node's `GET /v1/evidence` answer against the validator configured
/// to lie in its attestations (`liar`, a member id; `None` when no one lies): every item
/// must name the liar (an honest validator on record means a checker, a watcher or the
/// evidence rule is wrong) and be verified. Returns the items, to compare across nodes
/// and count, or the violations.
pub fn check_evidence(
    answer: &v1::EvidenceList,
    liar: Option<u64>,
) -> Result<Vec<v1::EvidenceEntry>, Vec<String>> {
    let mut violations = Vec::new();
    for item in &answer.evidence {
        if Some(u64::from(item.member.0)) != liar {
            violations.push(format!(
                "evidence ({}) names member {} but only {} lies: {item:?}",
                item.kind,
                item.member,
                liar.map_or("nobody".to_string(), |liar| format!("member {liar}"))
            ));
        }
        if !item.verified {
            violations.push(format!("evidence not verified: {item:?}"));
        }
    }
    if violations.is_empty() {
        Ok(answer.evidence.clone())
    } else {
        Err(violations)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn evidence_may_name_the_liar_only() {
        let against = |member: u64, verified: bool| serde_json::json!({"member": member, "kind": "ContradictingAttestation", "verified": verified, "evidence": {}});
        let list = |items: Vec<serde_json::Value>| -> super::v1::EvidenceList {
            serde_json::from_value(serde_json::json!({ "evidence": items })).unwrap()
        };
        let liar_only = list(vec![against(3, true), against(3, true)]);
        assert_eq!(check_evidence(&liar_only, Some(3)).unwrap().len(), 2);
        let honest_named = list(vec![against(3, true), against(1, true)]);
        assert_eq!(check_evidence(&honest_named, Some(3)).unwrap_err().len(), 1);
        assert!(
            check_evidence(&liar_only, None).is_err(),
            "no liar, no evidence"
        );
        let unverified = list(vec![against(3, false)]);
        assert!(check_evidence(&unverified, Some(3)).is_err());
        assert!(check_evidence(&list(vec![]), None).unwrap().is_empty());
    }

    use super::*;
    use serde_json::json;

    /// A supply answer as the node sends it, read the way the run reads it.
    fn supply_answer(credited: &str, debited: &str, held: &str) -> Answer<v1::Supply> {
        let body = json!({"height": 7, "state_root": "00".repeat(32), "assets": [
            {"asset": 0, "symbol": "ETH", "credited": credited, "debited": debited, "held": held, "locked": "0"}
        ]});
        crate::http::read("http://n/v1/supply", 200, &body)
    }

    fn supply(credited: &str, debited: &str, held: &str) -> v1::Supply {
        supply_answer(credited, debited, held)
            .document()
            .expect("a well-formed supply answer")
    }

    #[test]
    fn supply_holds_when_held_is_credited_minus_debited() {
        let (height, supplies) = check_supply(&supply("100", "30", "70")).unwrap();
        assert_eq!(height, 7);
        assert_eq!(supplies[0].held, 70);
    }

    #[test]
    fn supply_violations_are_reported() {
        assert_eq!(
            check_supply(&supply("100", "30", "71")).unwrap_err().len(),
            1
        );
        assert_eq!(check_supply(&supply("10", "30", "0")).unwrap_err().len(), 1);
        // A negative amount is no amount: the run reports the answer as unreadable.
        assert!(matches!(
            supply_answer("100", "0", "-1"),
            Answer::Unreadable(_)
        ));
        assert!(matches!(
            crate::http::read::<v1::Supply>("http://n/v1/supply", 200, &json!({"height": 1})),
            Answer::Unreadable(_)
        ));
    }

    #[test]
    fn negative_or_overflowing_balances_are_violations() {
        let balances = |inventory: &str| {
            let body = json!({"member": 1, "height": 3, "balances": [
                {"asset": 0, "symbol": "ETH", "balance": {"inventory": inventory, "locked": "2", "customers": "1"}}
            ]});
            crate::http::read::<v1::Balances>("http://n/v1/members/1/balances", 200, &body)
        };
        let good = balances("5").document().unwrap();
        let (height, totals) = check_balances(&good).unwrap();
        assert_eq!(height, 3);
        assert_eq!(totals["ETH"], 8);
        assert!(matches!(balances("-5"), Answer::Unreadable(_)));
        let overflow = balances(&u128::MAX.to_string()).document().unwrap();
        assert!(check_balances(&overflow).is_err());
    }

    #[test]
    fn holdings_must_add_up_to_the_supply() {
        let supplies = vec![Supply {
            symbol: "ETH".into(),
            credited: 10,
            debited: 0,
            held: 10,
        }];
        let a = BTreeMap::from([("ETH".to_string(), 4u128)]);
        let b = BTreeMap::from([("ETH".to_string(), 6u128)]);
        assert!(check_holdings_add_up(1, &supplies, &[a.clone(), b]).is_empty());
        assert_eq!(check_holdings_add_up(1, &supplies, &[a]).len(), 1);
    }

    #[test]
    fn the_ledger_never_credits_more_fiat_than_was_deposited() {
        let supplies = vec![Supply {
            symbol: "JPY".into(),
            credited: 100,
            debited: 40,
            held: 60,
        }];
        assert!(check_fiat_bounds(&supplies, "JPY", 100, 40).is_empty());
        assert_eq!(check_fiat_bounds(&supplies, "JPY", 99, 40).len(), 1);
        assert_eq!(check_fiat_bounds(&supplies, "JPY", 100, 39).len(), 1);
        assert_eq!(check_fiat_bounds(&supplies, "USD", 100, 40).len(), 1);
    }

    #[test]
    fn reconciliation_is_settled_only_with_nothing_in_flight() {
        let line = |pending: &str, reconciled: bool| v1::ExchangeLine {
            member: "exchange-a".into(),
            ledger_fiat: "100".into(),
            pending_withdrawals: pending.into(),
            unmirrored_settlement: "0".into(),
            unconfirmed_mirrors: "0".into(),
            bank_trust: Some("100".into()),
            unattested_credits: Some("0".into()),
            unattested_withdrawal_payments: Some("0".into()),
            conflicting_entries: vec![],
            unexplained_difference: Some("0".into()),
            reconciled,
        };
        let answer = |lines: Vec<v1::ExchangeLine>, unexplained: &str| v1::Reconciliation {
            height: 9,
            asset: "JPY".into(),
            bank_connected: true,
            exchanges: lines,
            unexplained_total: unexplained.into(),
            mirrors: Default::default(),
            unconfirmed: vec![],
            clean: true,
            outstanding: vec![],
            currencies: BTreeMap::new(),
            mirror_confirm_bound_ms: 60_000,
            watcher_error: None,
        };
        assert!(check_reconciliation_settled(&answer(vec![line("0", true)], "0")).is_ok());
        assert!(check_reconciliation_settled(&answer(vec![line("5", true)], "0")).is_err());
        assert!(check_reconciliation_settled(&answer(vec![line("0", false)], "0")).is_err());
        assert!(check_reconciliation_settled(&answer(vec![line("0", true)], "3")).is_err());
        let unread = v1::ExchangeLine {
            unattested_credits: None,
            ..line("0", true)
        };
        assert!(check_reconciliation_settled(&answer(vec![unread], "0")).is_err());
        let disconnected = v1::Reconciliation {
            bank_connected: false,
            ..answer(vec![line("0", true)], "0")
        };
        assert!(check_reconciliation_settled(&disconnected).is_err());
    }

    #[test]
    fn the_bank_books_must_match_the_ledger_and_the_deposits_asked_for() {
        let ledger = Supply {
            symbol: "JPY".into(),
            credited: 300,
            debited: 50,
            held: 250,
        };
        let books = BankBooks {
            deposits: BTreeMap::from([("d1".to_string(), 100), ("d2".to_string(), 200)]),
            withdrawal_payments: BTreeMap::from([("fiat-withdrawal-1".to_string(), 50)]),
            trust_balances: 250,
        };
        let asked = BTreeMap::from([
            ("d1".to_string(), (100, true)),
            ("d2".to_string(), (200, false)),
            ("d3".to_string(), (7, false)),
        ]);
        assert!(check_bank_books(&ledger, &books, &asked).is_empty());
        // Credited twice.
        let doubled = Supply {
            credited: 400,
            held: 350,
            ..ledger.clone()
        };
        assert_eq!(check_bank_books(&doubled, &books, &asked).len(), 2);
        // A withdrawal debited but never paid.
        let unpaid = BankBooks {
            withdrawal_payments: BTreeMap::new(),
            trust_balances: 300,
            ..books.clone()
        };
        assert_eq!(check_bank_books(&ledger, &unpaid, &asked).len(), 2);
        // A confirmed deposit the bank lost, and one it invented.
        let mut lost = books.clone();
        lost.deposits.remove("d1");
        lost.deposits.insert("x".into(), 100);
        assert_eq!(check_bank_books(&ledger, &lost, &asked).len(), 2);
    }

    fn crypto_symbols() -> BTreeMap<AssetId, &'static str> {
        BTreeMap::from([(AssetId(0), "ETH"), (AssetId(2), "WBTC")])
    }

    fn deposit_record(
        hash: &str,
        asset: u32,
        amount: u128,
        outcome: Option<DepositOutcome>,
    ) -> DepositRecord {
        let fact = seisan_types::custody::DepositFact {
            chain_id: 31337,
            tx_hash: seisan_types::custody::ChainTxHash(hash.into()),
            log_index: (asset == 2).then_some(0),
            from: seisan_types::custody::ChainAddress("0xaa".into()),
            asset: AssetId(asset),
            amount: seisan_types::Amount(amount),
        };
        DepositRecord {
            id: fact.deposit_id(),
            attestations: vec![(fact.clone(), vec![MemberId(0), MemberId(1)])],
            outcome: outcome.map(|outcome| (fact, outcome)),
        }
    }

    fn credited(member: u32) -> Option<DepositOutcome> {
        Some(DepositOutcome::Credited {
            member: MemberId(member),
        })
    }

    #[test]
    fn the_ledger_never_credits_more_crypto_than_was_sent_or_opened() {
        let supplies = vec![Supply {
            symbol: "ETH".into(),
            credited: 150,
            debited: 20,
            held: 130,
        }];
        let openings = BTreeMap::from([("ETH", 100u128)]);
        let sent = BTreeMap::from([("ETH", 50u128)]);
        let withdrawn = BTreeMap::from([("ETH", 20u128)]);
        assert!(check_crypto_bounds(&supplies, &openings, &sent, &withdrawn).is_empty());
        let less_sent = BTreeMap::from([("ETH", 49u128)]);
        assert_eq!(
            check_crypto_bounds(&supplies, &openings, &less_sent, &withdrawn).len(),
            1
        );
        assert_eq!(
            check_crypto_bounds(&supplies, &openings, &sent, &BTreeMap::new()).len(),
            1
        );
        let missing = BTreeMap::from([("WBTC", 0u128)]);
        assert_eq!(
            check_crypto_bounds(&supplies, &missing, &sent, &withdrawn).len(),
            1
        );

        let records = vec![
            deposit_record("0x01", 0, 30, credited(1)),
            deposit_record("0x02", 0, 20, credited(2)),
            deposit_record("0x03", 0, 999, Some(DepositOutcome::Unregistered)),
            deposit_record("0x04", 2, 7, None),
        ];
        assert!(check_credited_within_sent(&records, &crypto_symbols(), &sent).is_empty());
        assert_eq!(
            check_credited_within_sent(&records, &crypto_symbols(), &less_sent).len(),
            1
        );
        let fiat = vec![deposit_record("0x05", 1, 1, credited(1))];
        assert_eq!(
            check_credited_within_sent(&fiat, &crypto_symbols(), &sent).len(),
            1
        );
    }

    #[test]
    fn every_deposit_on_the_chain_is_credited_exactly_once_to_its_sender() {
        let sent = vec![
            ChainDeposit {
                tx_hash: "0x01".into(),
                member: MemberId(1),
                asset: AssetId(0),
                amount: 30,
            },
            ChainDeposit {
                tx_hash: "0x02".into(),
                member: MemberId(2),
                asset: AssetId(2),
                amount: 7,
            },
        ];
        let good = vec![
            deposit_record("0x01", 0, 30, credited(1)),
            deposit_record("0x02", 2, 7, credited(2)),
        ];
        assert!(check_deposits_credited_once(&sent, &good).is_empty());
        // Never credited (attested short of quorum).
        let short = vec![good[0].clone(), deposit_record("0x02", 2, 7, None)];
        assert_eq!(check_deposits_credited_once(&sent, &short).len(), 1);
        // Credited to the wrong member, or the wrong amount.
        let wrong = vec![deposit_record("0x01", 0, 30, credited(2)), good[1].clone()];
        assert_eq!(check_deposits_credited_once(&sent, &wrong).len(), 1);
        let more = vec![deposit_record("0x01", 0, 31, credited(1)), good[1].clone()];
        assert_eq!(check_deposits_credited_once(&sent, &more).len(), 1);
        // Settled twice (two records of one transaction), and one nobody sent.
        let mut twice = good.clone();
        let mut copy = deposit_record("0x01", 0, 30, credited(1));
        copy.id = seisan_types::custody::DepositId(seisan_types::Hash::tagged(b"other", &[]));
        twice.push(copy);
        assert_eq!(check_deposits_credited_once(&sent, &twice).len(), 1);
        let mut invented = good.clone();
        invented.push(deposit_record("0x09", 0, 5, credited(1)));
        assert_eq!(check_deposits_credited_once(&sent, &invented).len(), 1);
    }

    fn withdrawal(id: u64, amount: u128, status: WithdrawalStatus) -> Withdrawal {
        Withdrawal {
            id: seisan_types::custody::WithdrawalId(id),
            member: MemberId(1),
            asset: AssetId(0),
            amount: seisan_types::Amount(amount),
            to: seisan_types::custody::ChainAddress("0xAA".into()),
            status,
            payout_attesters: vec![MemberId(0), MemberId(1)],
        }
    }

    fn completed(hash: &str) -> WithdrawalStatus {
        WithdrawalStatus::Completed {
            tx_hash: seisan_types::custody::ChainTxHash(hash.into()),
        }
    }

    fn payment(hash: &str, to: &str, amount: u128) -> ChainTransaction {
        ChainTransaction {
            hash: hash.into(),
            block: 9,
            from: "0x11".into(),
            success: true,
            gas_wei: 21_000,
            movement: Some(Movement {
                symbol: "ETH",
                to: to.into(),
                amount,
            }),
        }
    }

    #[test]
    fn every_withdrawal_is_paid_exactly_once_by_the_payout_it_names() {
        let symbols = crypto_symbols();
        let withdrawals = vec![
            withdrawal(1, 10, completed("0xp1")),
            withdrawal(2, 20, completed("0xp2")),
        ];
        let payouts = vec![
            payment("0xp1", "0xaa", 10),
            payment("0xp2", "0xaa", 20),
            payment("0xsweep", "0xcc", 500),
        ];
        assert!(check_withdrawals_paid_once(&withdrawals, &payouts, &symbols, "0xcc").is_empty());
        // Still pending.
        let pending = vec![
            withdrawals[0].clone(),
            withdrawal(2, 20, WithdrawalStatus::Pending),
        ];
        assert_eq!(
            check_withdrawals_paid_once(&pending, &payouts[..1], &symbols, "0xcc").len(),
            1
        );
        // Paid twice: a second transaction moves the same withdrawal's coins.
        let mut twice = payouts.clone();
        twice.push(payment("0xp1again", "0xaa", 10));
        assert_eq!(
            check_withdrawals_paid_once(&withdrawals, &twice, &symbols, "0xcc").len(),
            1
        );
        // Completed by a payout of another amount, or one never sent.
        let short = vec![payment("0xp1", "0xaa", 9), payouts[1].clone()];
        assert_eq!(
            check_withdrawals_paid_once(&withdrawals, &short, &symbols, "0xcc").len(),
            1
        );
        assert_eq!(
            check_withdrawals_paid_once(&withdrawals, &payouts[1..], &symbols, "0xcc").len(),
            1
        );
        // A reverted payout moved nothing.
        let mut reverted = payouts.clone();
        reverted[0].success = false;
        reverted[0].movement = None;
        assert_eq!(
            check_withdrawals_paid_once(&withdrawals, &reverted, &symbols, "0xcc").len(),
            1
        );
    }

    #[test]
    fn custody_must_equal_the_ledger_exactly() {
        let line = |symbol: &str, liabilities, hot, cold| ReserveLine {
            symbol: symbol.into(),
            liabilities,
            pending_withdrawals: 0,
            hot,
            cold,
        };
        let lines = vec![line("ETH", 1000, 60, 1030), line("WBTC", 50, 5, 45)];
        assert!(check_custody_exact(&lines, "ETH", 10, 100, &["ETH", "WBTC"]).is_empty());
        // Gas not accounted for, a coin missing, a payout still pending.
        assert_eq!(
            check_custody_exact(&lines, "ETH", 0, 100, &["ETH", "WBTC"]).len(),
            1
        );
        let mut missing = lines.clone();
        missing[1].cold = 44;
        assert_eq!(
            check_custody_exact(&missing, "ETH", 10, 100, &["ETH", "WBTC"]).len(),
            1
        );
        let mut pending = lines.clone();
        pending[1].pending_withdrawals = 1;
        pending[1].liabilities = 51;
        assert_eq!(
            check_custody_exact(&pending, "ETH", 10, 100, &["ETH", "WBTC"]).len(),
            2
        );
        assert_eq!(
            check_custody_exact(&lines[..1], "ETH", 10, 100, &["ETH", "WBTC"]).len(),
            1
        );
    }

    #[test]
    fn a_registered_account_moves_by_what_it_was_paid_sent_and_spent() {
        let flow = AccountFlow {
            start: 1_000,
            end: 1_000 + 50 - 30 - 4,
            paid_to: 50,
            sent: 30,
            gas: 4,
        };
        assert_eq!(check_account_flow("a", &flow), None);
        let paid_twice = AccountFlow {
            end: flow.end + 50,
            ..flow.clone()
        };
        assert!(check_account_flow("a", &paid_twice).is_some());
        let never_left = AccountFlow {
            end: flow.end + 30,
            ..flow
        };
        assert!(check_account_flow("a", &never_left).is_some());
    }

    #[test]
    fn a_different_block_or_root_at_a_height_is_a_divergence() {
        let mut chain = ChainRecord::default();
        assert!(chain.observe("a", 1, "h1", "r1").is_none());
        assert!(chain.observe("b", 1, "h1", "r1").is_none());
        assert!(chain.observe("c", 1, "h1", "r2").is_some());
        assert!(chain.observe("c", 1, "h2", "r1").is_some());
        assert_eq!(chain.heights(), 1);
    }

    #[test]
    fn acknowledged_transactions_must_stay_with_their_receipt() {
        use seisan_types::receipt::TxOutcome;
        use seisan_types::{Hash, Height, Nonce};
        let receipt = |outcome: TxOutcome| Receipt {
            tx_id: Hash([0xab; 32]),
            member: MemberId(1),
            nonce: Nonce(4),
            kind: "place_order".into(),
            outcome,
            events: vec![],
        };
        let ack = Acknowledged {
            id: "ab".into(),
            height: 5,
            receipt: receipt(TxOutcome::Applied),
        };
        let finalized = |height: u64, outcome: TxOutcome| {
            Answer::Document(v1::TransactionStatus::finalized(
                Hash([0xab; 32]),
                Height(height),
                0,
                receipt(outcome),
            ))
        };
        let not_found = Answer::Refused(404, Some(v1::ErrorBody::new("not_found", "unknown")));
        assert_eq!(
            check_acknowledged(&ack, 9, &finalized(5, TxOutcome::Applied)),
            AckCheck::Same
        );
        assert_eq!(check_acknowledged(&ack, 3, &not_found), AckCheck::NotYet);
        assert!(matches!(
            check_acknowledged(&ack, 5, &not_found),
            AckCheck::Lost(_)
        ));
        let pending = Answer::Document(v1::TransactionStatus::pending(Hash([0xab; 32])));
        assert!(matches!(
            check_acknowledged(&ack, 5, &pending),
            AckCheck::Lost(_)
        ));
        assert!(matches!(
            check_acknowledged(&ack, 9, &finalized(6, TxOutcome::Applied)),
            AckCheck::Lost(_)
        ));
        let rejected = TxOutcome::Rejected {
            code: "x".into(),
            reason: "y".into(),
        };
        assert!(matches!(
            check_acknowledged(&ack, 9, &finalized(5, rejected)),
            AckCheck::Lost(_)
        ));
    }
}
