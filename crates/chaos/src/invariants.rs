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
//! Nothing here does I/O, so each check is unit-tested against crafted answers,
//! including answers that break the invariant (a checker that cannot fail proves
//! nothing).

use serde_json::Value;
use std::collections::BTreeMap;

/// Parses an API amount: a decimal string of a `u128` (a negative or fractional value
/// cannot parse, which is how a negative balance would show up).
pub fn parse_amount(value: &Value) -> Result<u128, String> {
    let text = value
        .as_str()
        .ok_or_else(|| format!("amount {value} is not a string"))?;
    text.parse::<u128>()
        .map_err(|error| format!("amount {text:?} is not a u128: {error}"))
}

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
pub fn check_supply(answer: &Value) -> Result<(u64, Vec<Supply>), Vec<String>> {
    let mut violations = Vec::new();
    let height = answer["height"].as_u64().unwrap_or_else(|| {
        violations.push(format!("supply answer has no height: {answer}"));
        0
    });
    let mut supplies = Vec::new();
    let Some(assets) = answer["assets"].as_array() else {
        violations.push(format!("supply answer has no assets: {answer}"));
        return Err(violations);
    };
    for asset in assets {
        let symbol = asset["symbol"].as_str().unwrap_or("?").to_string();
        let parsed = (
            parse_amount(&asset["credited"]),
            parse_amount(&asset["debited"]),
            parse_amount(&asset["held"]),
        );
        let (credited, debited, held) = match parsed {
            (Ok(credited), Ok(debited), Ok(held)) => (credited, debited, held),
            (credited, debited, held) => {
                for error in [credited.err(), debited.err(), held.err()]
                    .into_iter()
                    .flatten()
                {
                    violations.push(format!("{symbol} at height {height}: {error}"));
                }
                continue;
            }
        };
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

/// Checks a `GET /v1/members/{m}/balances` answer: every component parses as a `u128`
/// and their sum does not overflow. Returns the height and each asset's total.
pub fn check_balances(answer: &Value) -> Result<(u64, BTreeMap<String, u128>), Vec<String>> {
    let mut violations = Vec::new();
    let height = answer["height"].as_u64().unwrap_or(0);
    let member = answer["member"].clone();
    let mut totals = BTreeMap::new();
    let Some(balances) = answer["balances"].as_array() else {
        return Err(vec![format!("balances answer has no balances: {answer}")]);
    };
    for entry in balances {
        let symbol = entry["symbol"].as_str().unwrap_or("?").to_string();
        let mut total: Option<u128> = Some(0);
        for part in ["inventory", "locked", "customers"] {
            match parse_amount(&entry["balance"][part]) {
                Ok(value) => total = total.and_then(|sum| sum.checked_add(value)),
                Err(error) => {
                    violations.push(format!("member {member} {symbol} {part}: {error}"));
                    total = None;
                }
            }
        }
        match total {
            Some(total) => {
                totals.insert(symbol, total);
            }
            None => violations.push(format!("member {member} {symbol}: balance overflows")),
        }
    }
    if violations.is_empty() {
        Ok((height, totals))
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

/// Whether a `GET /v1/reconciliation` answer shows the bank and the ledger settled:
/// the bank is connected and every exchange's line is reconciled with nothing in
/// flight (no pending withdrawal, no unattested credit or payment, no unmirrored
/// settlement, no unexplained difference). `Err` says what is still outstanding.
pub fn check_reconciliation_settled(answer: &Value) -> Result<(), String> {
    if answer["bank_connected"] != true {
        return Err(format!("the bank is not connected: {answer}"));
    }
    if answer["unexplained_total"] != "0" {
        return Err(format!(
            "unexplained total {} (watcher error {})",
            answer["unexplained_total"], answer["watcher_error"]
        ));
    }
    let Some(lines) = answer["exchanges"].as_array() else {
        return Err(format!("no exchanges in {answer}"));
    };
    let mut outstanding = Vec::new();
    for line in lines {
        for field in [
            "pending_withdrawals",
            "unattested_credits",
            "unattested_withdrawal_payments",
            "unmirrored_settlement",
        ] {
            if line[field] != "0" {
                outstanding.push(format!("{} {field}={}", line["member"], line[field]));
            }
        }
        if line["reconciled"] != true {
            outstanding.push(format!("{} not reconciled: {line}", line["member"]));
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
    pub receipt: Value,
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

/// Compares a node's answer (status code and body) with an acknowledgement, given the
/// node's height when it answered.
pub fn check_acknowledged(
    ack: &Acknowledged,
    node_height: u64,
    code: u16,
    answer: &Value,
) -> AckCheck {
    let finalized = code == 200 && answer["status"] == "finalized";
    if !finalized {
        if node_height < ack.height {
            return AckCheck::NotYet;
        }
        return AckCheck::Lost(format!(
            "transaction {} acknowledged at height {} is {code} {answer} on a node at height {node_height}",
            ack.id, ack.height
        ));
    }
    if answer["height"].as_u64() != Some(ack.height) {
        return AckCheck::Lost(format!(
            "transaction {} acknowledged at height {} is now at height {}",
            ack.id, ack.height, answer["height"]
        ));
    }
    if answer["receipt"] != ack.receipt {
        return AckCheck::Lost(format!(
            "transaction {} at height {} has receipt {} but was acknowledged with {}",
            ack.id, ack.height, answer["receipt"], ack.receipt
        ));
    }
    AckCheck::Same
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn supply(credited: &str, debited: &str, held: &str) -> Value {
        json!({"height": 7, "state_root": "00", "assets": [
            {"asset": 0, "symbol": "ETH", "credited": credited, "debited": debited, "held": held, "locked": "0"}
        ]})
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
        assert_eq!(
            check_supply(&supply("100", "0", "-1")).unwrap_err().len(),
            1
        );
        assert!(check_supply(&json!({"height": 1})).is_err());
    }

    #[test]
    fn negative_or_overflowing_balances_are_violations() {
        let good = json!({"member": 1, "height": 3, "balances": [
            {"asset": 0, "symbol": "ETH", "balance": {"inventory": "5", "locked": "2", "customers": "1"}}
        ]});
        let (height, totals) = check_balances(&good).unwrap();
        assert_eq!(height, 3);
        assert_eq!(totals["ETH"], 8);
        let negative = json!({"member": 1, "height": 3, "balances": [
            {"asset": 0, "symbol": "ETH", "balance": {"inventory": "-5", "locked": "2", "customers": "1"}}
        ]});
        assert!(check_balances(&negative).is_err());
        let max = u128::MAX.to_string();
        let overflow = json!({"member": 1, "height": 3, "balances": [
            {"asset": 0, "symbol": "ETH", "balance": {"inventory": max, "locked": "2", "customers": "0"}}
        ]});
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
        let line = |pending: &str, reconciled: bool| {
            json!({"member": "exchange-a", "pending_withdrawals": pending,
                   "unattested_credits": "0", "unattested_withdrawal_payments": "0",
                   "unmirrored_settlement": "0", "reconciled": reconciled})
        };
        let answer = |lines: Vec<Value>, unexplained: &str| json!({"bank_connected": true, "unexplained_total": unexplained, "exchanges": lines});
        assert!(check_reconciliation_settled(&answer(vec![line("0", true)], "0")).is_ok());
        assert!(check_reconciliation_settled(&answer(vec![line("5", true)], "0")).is_err());
        assert!(check_reconciliation_settled(&answer(vec![line("0", false)], "0")).is_err());
        assert!(check_reconciliation_settled(&answer(vec![line("0", true)], "3")).is_err());
        let mut disconnected = answer(vec![line("0", true)], "0");
        disconnected["bank_connected"] = json!(false);
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
        let ack = Acknowledged {
            id: "ab".into(),
            height: 5,
            receipt: json!({"ok": true}),
        };
        let same = json!({"status": "finalized", "height": 5, "receipt": {"ok": true}});
        assert_eq!(check_acknowledged(&ack, 9, 200, &same), AckCheck::Same);
        assert_eq!(
            check_acknowledged(&ack, 3, 404, &json!({})),
            AckCheck::NotYet
        );
        assert!(matches!(
            check_acknowledged(&ack, 5, 404, &json!({})),
            AckCheck::Lost(_)
        ));
        let moved = json!({"status": "finalized", "height": 6, "receipt": {"ok": true}});
        assert!(matches!(
            check_acknowledged(&ack, 9, 200, &moved),
            AckCheck::Lost(_)
        ));
        let other = json!({"status": "finalized", "height": 5, "receipt": {"ok": false}});
        assert!(matches!(
            check_acknowledged(&ack, 9, 200, &other),
            AckCheck::Lost(_)
        ));
    }
}
