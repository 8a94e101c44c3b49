//! The bank's leg of settlement through the public entry points: a fill opens one
//! mirror per payer/payee pair with its reference; q identical attestations of the
//! bank's confirmation confirm it (a lying minority neither blocks nor forges it);
//! terms that differ from the settlement are refused; an unconfirmed mirror stalls
//! after the bound of block time and leaves the open set once confirmed.

mod common;

use common::*;
use seisan_contracts::mirror::{self, MIRROR_CONFIRM_BOUND_MS};
use seisan_types::bank::BankEntryId;
use seisan_types::clearing::{OrderRequest, Side, TimeInForce};
use seisan_types::mirror::{MirrorFact, MirrorRecord, MirrorState};
use seisan_types::tx::TxBody;
use seisan_types::{Amount, Height};

fn order(side: Side, price: u128) -> TxBody {
    TxBody::PlaceOrder(OrderRequest {
        pair: PAIR,
        side,
        quantity: Amount(COIN),
        limit_price: Amount(price),
        time_in_force: TimeInForce::GoodTillCancel,
        expires_at_ms: None,
    })
}

/// A buys 1 BTC from B at 100 JPY; returns the settling height's one mirror.
fn settle_a_fill(h: &mut Harness) -> MirrorRecord {
    h.seed(&[(A, JPY, 100), (B, BTC, COIN)]);
    h.ok(B, order(Side::Sell, 100));
    h.ok(A, order(Side::Buy, 100));
    let mirrors = mirror::mirrors_at(&h.view, Height(h.height));
    assert_eq!(mirrors.len(), 1, "{mirrors:?}");
    mirrors.into_iter().next().unwrap()
}

fn fact(record: &MirrorRecord, debit: &str, credit: &str) -> MirrorFact {
    MirrorFact {
        mirror: record.mirror,
        asset: record.asset,
        amount: record.amount,
        reference: record.reference.clone(),
        debit_entry: BankEntryId(debit.into()),
        credit_entry: BankEntryId(credit.into()),
    }
}

#[test]
fn a_fill_opens_a_mirror_that_q_identical_attestations_confirm() {
    let mut h = Harness::new();
    let record = settle_a_fill(&mut h);
    assert_eq!(record.mirror.payer, A);
    assert_eq!(record.mirror.payee, B);
    assert_eq!(record.amount, Amount(100));
    assert_eq!(record.asset, JPY);
    assert_eq!(
        record.reference,
        format!("settle-{}-exchange-a-exchange-b", h.height)
    );
    assert_eq!(mirror::open_mirrors(&h.view, 10), vec![record.clone()]);

    let truth = fact(&record, "E000000000002", "E000000000003");
    // A lying validator attests other entry ids first: recorded, confirms nothing.
    h.ok(
        B,
        TxBody::AttestMirror(fact(&record, "E000000000009", "E000000000010")),
    );
    h.ok(A, TxBody::AttestMirror(truth.clone()));
    assert!(mirror::mirror(&h.view, record.mirror)
        .unwrap()
        .confirmed
        .is_none());
    let at_ms = h.now_ms + 1000;
    h.ok(CH, TxBody::AttestMirror(truth.clone()));
    let confirmed = mirror::mirror(&h.view, record.mirror).unwrap();
    let confirmation = confirmed
        .confirmed
        .clone()
        .expect("two identical attestations");
    assert_eq!(confirmation.debit_entry, truth.debit_entry);
    assert_eq!(confirmation.credit_entry, truth.credit_entry);
    assert_eq!(confirmation.confirmed_at_ms, at_ms);
    assert_eq!(confirmed.attestations.len(), 3);
    assert!(mirror::open_mirrors(&h.view, 10).is_empty());
    assert_eq!(
        mirror::mirror_state(&confirmed, u64::MAX),
        MirrorState::Confirmed
    );
    // Attesting twice is refused.
    let again = h.tx(A, TxBody::AttestMirror(truth));
    assert_eq!(rejected_code(&again), "already_attested");
    h.check();
}

#[test]
fn terms_other_than_the_settlement_and_non_validators_are_refused() {
    let mut h = Harness::new();
    let record = settle_a_fill(&mut h);
    let mut wrong_amount = fact(&record, "E1", "E2");
    wrong_amount.amount = Amount(99);
    let receipt = h.tx(CH, TxBody::AttestMirror(wrong_amount));
    assert_eq!(rejected_code(&receipt), "mirror_terms_differ");
    let mut wrong_reference = fact(&record, "E1", "E2");
    wrong_reference.reference = "settle-1-exchange-b-exchange-a".into();
    let receipt = h.tx(CH, TxBody::AttestMirror(wrong_reference));
    assert_eq!(rejected_code(&receipt), "mirror_terms_differ");
    let mut unknown = fact(&record, "E1", "E2");
    unknown.mirror.height = Height(h.height + 5);
    let receipt = h.tx(CH, TxBody::AttestMirror(unknown));
    assert_eq!(rejected_code(&receipt), "unknown_mirror");
    let receipt = h.tx(CH, TxBody::AttestMirror(fact(&record, "", "E2")));
    assert_eq!(rejected_code(&receipt), "bad_bank_entry_id");
    // exchange-c is not a validator.
    let receipt = h.tx(C, TxBody::AttestMirror(fact(&record, "E1", "E2")));
    assert_eq!(rejected_code(&receipt), "not_validator");
    assert!(mirror::mirror(&h.view, record.mirror)
        .unwrap()
        .attestations
        .is_empty());
}

#[test]
fn an_unconfirmed_mirror_stalls_after_the_bound_of_block_time() {
    let mut h = Harness::new();
    let record = settle_a_fill(&mut h);
    let summary = mirror::mirror_summary(&h.view, h.now_ms);
    assert_eq!((summary.pending, summary.stalled), (1, 0));
    h.idle(MIRROR_CONFIRM_BOUND_MS + 1);
    let summary = mirror::mirror_summary(&h.view, h.now_ms);
    assert_eq!((summary.pending, summary.stalled), (0, 1));
    assert_eq!(
        summary.oldest_stalled,
        Some((record.mirror.height, record.reference.clone()))
    );
    // Confirmed late, it is no longer stalled.
    let truth = fact(&record, "E2", "E3");
    h.ok(A, TxBody::AttestMirror(truth.clone()));
    h.ok(B, TxBody::AttestMirror(truth));
    let summary = mirror::mirror_summary(&h.view, h.now_ms);
    assert_eq!((summary.pending, summary.stalled), (0, 0));
}

#[test]
fn a_block_without_fiat_settlement_opens_no_mirror() {
    let mut h = Harness::new();
    h.seed(&[(A, JPY, 100)]);
    h.withdraw(A, JPY, 10);
    h.idle(1000);
    assert!(mirror::open_mirrors(&h.view, 10).is_empty());
}
