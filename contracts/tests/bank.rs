//! Fiat bank transactions through the public entry points: attested trust credits
//! (one attestation does not credit, q identical do, exactly once, whatever a minority
//! attested under the same entry id; contradictions are evidence against their
//! signers; a validator's open attestations are bounded), credits curing a parked
//! order, and fiat withdrawals completed by an attested payment.

mod common;

use common::*;
use seisan_contracts::bank;
use seisan_types::attestation::AttestedFact;
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
    assert!(bank::evidence(&h.view).is_empty(), "nobody contradicted it");
    h.check();
}

#[test]
fn q_identical_attestations_credit_despite_a_minority_that_is_then_evidence() {
    let mut h = Harness::new();
    let fact = credit("E000000000002", A, 200);
    let mut inflated = fact.clone();
    inflated.amount = Amount(2000);
    // A attests first, and another amount: it neither blocks nor forges.
    h.ok(A, attest(&inflated));
    h.ok(CH, attest(&fact));
    assert_eq!(h.balance(A, JPY).inventory, Amount::ZERO);
    let receipt = h.ok(B, attest(&fact));
    assert!(receipt.events.contains(&Event::Credited {
        member: A,
        asset: JPY,
        amount: Amount(200),
        reason: seisan_types::clearing::ChangeReason::Deposit,
    }));
    assert_eq!(h.balance(A, JPY).inventory, Amount(200));
    let record = bank::entry(&h.view, &fact.entry).unwrap();
    assert_eq!(record.applied, Some(fact.clone()));
    let evidence = bank::evidence(&h.view);
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    assert_eq!(evidence[0].member, A);
    assert_eq!(evidence[0].attested, AttestedFact::BankEntry(inflated));
    assert_eq!(evidence[0].credited, AttestedFact::BankEntry(fact));
    // Nobody has an open attestation left: the entry was acted on.
    for member in [A, B, CH] {
        assert_eq!(bank::open_attestation_count(&h.view, member), 0);
    }
    h.check();
}

#[test]
fn an_attestation_contradicting_a_credited_fact_is_evidence_and_changes_nothing() {
    let mut h = Harness::new();
    let fact = credit("E000000000003", A, 50);
    h.ok(CH, attest(&fact));
    h.ok(B, attest(&fact));
    assert_eq!(h.balance(A, JPY).inventory, Amount(50));
    // Another member's account under the same entry id, after the credit.
    let other = credit("E000000000003", B, 50);
    h.ok(A, attest(&other));
    assert_eq!(h.balance(A, JPY).inventory, Amount(50));
    assert_eq!(h.balance(B, JPY).inventory, Amount::ZERO);
    let evidence = bank::evidence(&h.view);
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    assert_eq!(evidence[0].member, A);
    assert_eq!(evidence[0].attested, AttestedFact::BankEntry(other));
    assert_eq!(bank::open_attestation_count(&h.view, A), 0);
    h.check();
}

#[test]
fn squatting_an_entry_id_the_bank_has_not_assigned_cannot_block_its_credit() {
    let mut h = Harness::new();
    // A invents E000000000007 before the bank assigned it: a fact nobody else sees.
    let invented = credit("E000000000007", B, 999_999);
    h.ok(A, attest(&invented));
    assert_eq!(bank::open_attestation_count(&h.view, A), 1);
    assert_eq!(h.balance(B, JPY).inventory, Amount::ZERO, "one is not q");
    // The bank then assigns the id to A's real credit; the other two see it.
    let real = credit("E000000000007", A, 120);
    h.ok(CH, attest(&real));
    h.ok(B, attest(&real));
    assert_eq!(h.balance(A, JPY).inventory, Amount(120));
    assert_eq!(h.balance(B, JPY).inventory, Amount::ZERO);
    assert_eq!(bank::open_attestation_count(&h.view, A), 0);
    let evidence = bank::evidence(&h.view);
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0].member, A);
    assert_eq!(evidence[0].attested, AttestedFact::BankEntry(invented));
    h.check();
}

#[test]
fn a_validator_may_hold_a_bounded_number_of_uncredited_attestations() {
    let mut h = Harness::new();
    let bound = seisan_contracts::attestation::MAX_OPEN_ATTESTATIONS_PER_MEMBER;
    // One real entry A attests, then invented ones up to the bound.
    let real = credit("E000000000100", B, 5);
    h.ok(A, attest(&real));
    let txs: Vec<_> = (1..bound)
        .map(|index| (A, attest(&credit(&format!("X{index}"), B, 1))))
        .collect();
    let outcome = h.block(txs);
    assert!(outcome
        .receipts
        .iter()
        .all(|receipt| receipt.outcome == seisan_types::receipt::TxOutcome::Applied));
    assert_eq!(bank::open_attestation_count(&h.view, A), bound);
    let refused = h.tx(A, attest(&credit("X-one-more", B, 1)));
    assert_eq!(rejected_code(&refused), "too_many_open_attestations");
    // The others are not held back, and the credit of an entry A attested frees one of
    // A's slots.
    h.ok(CH, attest(&real));
    assert_eq!(h.balance(B, JPY).inventory, Amount(5));
    assert_eq!(bank::open_attestation_count(&h.view, A), bound - 1);
    h.ok(A, attest(&credit("X-now-fits", B, 1)));
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

/// The test genesis with a second fiat currency, USD (scale 2), and the pair BTC/USD.
fn usd_harness() -> (Harness, seisan_types::AssetId) {
    let mut genesis = common::genesis(Default::default());
    genesis.assets.push(seisan_types::amount::Asset {
        symbol: "USD".into(),
        kind: seisan_types::AssetKind::Fiat,
        scale: 2,
        contract: None,
    });
    genesis.pairs.push(seisan_types::genesis::PairSpec {
        base: "BTC".into(),
        quote: "USD".into(),
    });
    genesis.validate().unwrap();
    let (usd, _) = genesis.asset_by_symbol("USD").unwrap();
    (Harness::with_genesis(genesis), usd)
}

#[test]
fn a_usd_trust_credit_credits_usd_and_leaves_jpy_alone() {
    let (mut h, usd) = usd_harness();
    let fact = BankFact {
        asset: usd,
        ..credit("E000000000011", A, 12_50)
    };
    h.ok(CH, attest(&fact));
    assert_eq!(h.balance(A, usd).inventory, Amount::ZERO, "one attestation");
    let receipt = h.ok(B, attest(&fact));
    assert!(receipt.events.contains(&Event::Credited {
        member: A,
        asset: usd,
        amount: Amount(12_50),
        reason: seisan_types::clearing::ChangeReason::Deposit,
    }));
    assert_eq!(h.balance(A, usd).inventory, Amount(12_50));
    assert_eq!(h.balance(A, JPY).inventory, Amount::ZERO);
    // The same entry id attested as JPY contradicts the credited USD fact.
    h.ok(A, attest(&credit("E000000000011", A, 12_50)));
    assert_eq!(h.balance(A, JPY).inventory, Amount::ZERO);
    assert_eq!(bank::evidence(&h.view).len(), 1);
    h.check();
}

#[test]
fn fills_in_two_currencies_in_one_block_open_one_mirror_per_currency() {
    use seisan_contracts::mirror;
    let (mut h, usd) = usd_harness();
    h.seed(&[(A, JPY, 100), (A, usd, 70_00), (B, BTC, 2 * COIN)]);
    let order = |quote, side, price| {
        TxBody::PlaceOrder(OrderRequest {
            pair: seisan_types::clearing::Pair { base: BTC, quote },
            side,
            quantity: Amount(COIN),
            limit_price: Amount(price),
            time_in_force: TimeInForce::GoodTillCancel,
            expires_at_ms: None,
        })
    };
    h.block(vec![
        (B, order(JPY, Side::Sell, 100)),
        (B, order(usd, Side::Sell, 70_00)),
        (A, order(JPY, Side::Buy, 100)),
        (A, order(usd, Side::Buy, 70_00)),
    ]);
    let mirrors = mirror::mirrors_at(&h.view, seisan_types::Height(h.height));
    let terms: Vec<_> = mirrors
        .iter()
        .map(|record| (record.mirror.asset, record.amount, record.reference.clone()))
        .collect();
    assert_eq!(
        terms,
        vec![
            (
                JPY,
                Amount(100),
                format!("settle-{}-exchange-a-exchange-b", h.height)
            ),
            (
                usd,
                Amount(70_00),
                format!("settle-{}-exchange-a-exchange-b-USD", h.height)
            ),
        ]
    );
    assert!(mirrors
        .iter()
        .all(|record| record.asset == record.mirror.asset));
    assert_eq!(mirror::open_mirrors(&h.view, 10).len(), 2);
    h.check();
}
