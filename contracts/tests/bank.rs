//! Fiat bank transactions through the public entry points: attested trust credits
//! (one attestation does not credit, two identical do, exactly once; conflicting facts
//! never credit), credits curing a parked order, and fiat withdrawals completed by an
//! attested payment.

mod common;

use common::*;
use seisan_contracts::bank;
use seisan_types::bank::{
    BankEntryId, BankEntryKind, BankFact, FiatWithdrawalId, FiatWithdrawalStatus,
};
use seisan_types::clearing::{OrderRequest, Side, TimeInForce};
use seisan_types::receipt::Event;
use seisan_types::tx::TxBody;
use seisan_types::Amount;

fn credit(entry: &str, member: seisan_types::MemberId, amount: u128) -> BankFact {
    BankFact {
        entry: BankEntryId(entry.into()),
        member,
        asset: JPY,
        amount: Amount(amount),
        kind: BankEntryKind::TrustCredit,
    }
}

fn attest(fact: &BankFact) -> TxBody {
    TxBody::AttestBankEntry(fact.clone())
}

#[test]
fn one_attestation_does_not_credit_two_identical_do_exactly_once() {
    let mut h = Harness::new();
    let fact = credit("E000000000001", A, 200);
    h.ok(A, attest(&fact));
    assert_eq!(h.balance(A, JPY).inventory, Amount::ZERO);
    let receipt = h.ok(CH, attest(&fact));
    assert!(receipt.events.contains(&Event::Credited {
        member: A,
        asset: JPY,
        amount: Amount(200),
        reason: seisan_types::clearing::ChangeReason::Deposit,
    }));
    assert_eq!(h.balance(A, JPY).inventory, Amount(200));
    // A third identical attestation is recorded but credits nothing more.
    h.ok(B, attest(&fact));
    assert_eq!(h.balance(A, JPY).inventory, Amount(200));
    // The same member cannot attest twice.
    let again = h.tx(A, attest(&fact));
    assert_eq!(rejected_code(&again), "already_attested");
    let record = bank::entry(&h.view, &fact.entry).unwrap();
    assert_eq!(record.attestations.len(), 3);
    assert_eq!(record.applied, Some(fact));
    assert!(!record.conflicting);
    h.check();
}

#[test]
fn conflicting_facts_are_recorded_and_never_credit() {
    let mut h = Harness::new();
    let fact = credit("E000000000002", A, 200);
    let mut inflated = fact.clone();
    inflated.amount = Amount(2000);
    h.ok(A, attest(&inflated));
    h.ok(CH, attest(&fact));
    h.ok(B, attest(&fact));
    // Two identical facts, but one attestation disagreed first: nothing is credited.
    assert_eq!(h.balance(A, JPY).inventory, Amount::ZERO);
    let record = bank::entry(&h.view, &fact.entry).unwrap();
    assert!(record.conflicting);
    assert!(record.applied.is_none());
    // A different member's account on the same entry id is a conflict too.
    let other = credit("E000000000003", A, 50);
    h.ok(A, attest(&other));
    h.ok(CH, attest(&credit("E000000000003", B, 50)));
    assert_eq!(h.balance(A, JPY).inventory, Amount::ZERO);
    assert_eq!(h.balance(B, JPY).inventory, Amount::ZERO);
    h.check();
}

#[test]
fn attestations_are_checked() {
    let mut h = Harness::new();
    // exchange-c is not a validator.
    let receipt = h.tx(C, attest(&credit("E1", A, 1)));
    assert_eq!(rejected_code(&receipt), "not_validator");
    let mut crypto = credit("E1", A, 1);
    crypto.asset = BTC;
    assert_eq!(rejected_code(&h.tx(A, attest(&crypto))), "not_fiat_asset");
    assert_eq!(
        rejected_code(&h.tx(A, attest(&credit("E1", CH, 1)))),
        "not_an_exchange"
    );
    assert_eq!(
        rejected_code(&h.tx(A, attest(&credit("bad id", A, 1)))),
        "bad_bank_entry_id"
    );
    assert_eq!(
        rejected_code(&h.tx(A, attest(&credit("E1", A, 0)))),
        "zero_amount"
    );
    assert!(bank::entries(&h.view).is_empty());
}

#[test]
fn an_attested_credit_cures_a_parked_order() {
    let mut h = Harness::new();
    h.seed(&[(B, BTC, COIN)]);
    let receipt = h.ok(
        A,
        TxBody::PlaceOrder(OrderRequest {
            pair: PAIR,
            side: Side::Buy,
            quantity: Amount(COIN),
            limit_price: Amount(100),
            time_in_force: TimeInForce::GoodTillCancel,
            expires_at_ms: None,
        }),
    );
    assert!(receipt
        .events
        .iter()
        .any(|event| matches!(event, Event::OrderParked { .. })));
    let fact = credit("E000000000009", A, 100);
    h.ok(A, attest(&fact));
    let receipt = h.ok(CH, attest(&fact));
    assert!(receipt
        .events
        .iter()
        .any(|event| matches!(event, Event::TopUpCured { member, .. } if *member == A)));
    assert_eq!(h.balance(A, JPY).locked, Amount(100));
    h.check();
}

#[test]
fn fiat_withdrawal_debits_then_completes_on_attested_payment() {
    let mut h = Harness::new();
    let deposit = credit("E000000000010", A, 300);
    h.ok(A, attest(&deposit));
    h.ok(CH, attest(&deposit));
    let refused = h.tx(
        A,
        TxBody::WithdrawFiat {
            asset: JPY,
            amount: Amount(301),
        },
    );
    assert_eq!(rejected_code(&refused), "insufficient_available");
    h.ok(
        A,
        TxBody::WithdrawFiat {
            asset: JPY,
            amount: Amount(120),
        },
    );
    assert_eq!(h.balance(A, JPY).inventory, Amount(180));
    let open = bank::open_withdrawals(&h.view);
    assert_eq!(open.len(), 1);
    let id = open[0].id;
    assert_eq!(id, FiatWithdrawalId(1));
    assert_eq!(bank::withdrawal_reference(id), "fiat-withdrawal-1");
    let paid = BankFact {
        entry: BankEntryId("E000000000011".into()),
        member: A,
        asset: JPY,
        amount: Amount(120),
        kind: BankEntryKind::WithdrawalPaid { withdrawal: id },
    };
    h.ok(A, attest(&paid));
    assert!(bank::withdrawal(&h.view, id).unwrap().status == FiatWithdrawalStatus::Pending);
    h.ok(CH, attest(&paid));
    assert_eq!(
        bank::withdrawal(&h.view, id).unwrap().status,
        FiatWithdrawalStatus::Paid {
            entry: paid.entry.clone()
        }
    );
    assert!(bank::open_withdrawals(&h.view).is_empty());
    assert_eq!(h.balance(A, JPY).inventory, Amount(180));
    // Crypto cannot be withdrawn this way, and the clearing house has no trust account.
    h.seed(&[(A, BTC, COIN)]);
    assert_eq!(
        rejected_code(&h.tx(
            A,
            TxBody::WithdrawFiat {
                asset: BTC,
                amount: Amount(1)
            }
        )),
        "not_fiat_asset"
    );
    h.check();
}
