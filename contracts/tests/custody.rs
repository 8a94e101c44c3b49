//! Custody transactions through the public entry points: quorum-attested deposits
//! (exactly once, unregistered senders reported, disagreeing facts not credited),
//! withdrawals with payout attestation, and a deposit curing a parked order.

mod common;

use common::*;
use seisan_contracts::custody;
use seisan_types::attestation::AttestedFact;
use seisan_types::clearing::{OrderRequest, Side, TimeInForce};
use seisan_types::custody::{
    ChainAddress, ChainTxHash, DepositFact, DepositOutcome, PublicChainSettings, RegisteredAddress,
    WithdrawalId, WithdrawalStatus,
};
use seisan_types::receipt::{Event, TxOutcome};
use seisan_types::tx::TxBody;
use seisan_types::Amount;

const TOKEN: &str = "0x0000000000000000000000000000000000000001";

fn address(digit: char) -> ChainAddress {
    ChainAddress(format!("0x{}", digit.to_string().repeat(40)))
}

fn tx_hash(digit: char) -> ChainTxHash {
    ChainTxHash(format!("0x{}", digit.to_string().repeat(64)))
}

fn harness() -> Harness {
    // The custody settings are part of the consortium's configuration written at
    // height 0, so they go into the genesis before the harness starts.
    let mut genesis = genesis(seisan_types::SettlementSettings::default());
    genesis.public_chain = Some(PublicChainSettings {
        chain_id: 31337,
        confirmations: 2,
        hot_address: address('1'),
        cold_address: address('2'),
        registered_addresses: vec![
            RegisteredAddress {
                member: "exchange-a".into(),
                address: address('a'),
            },
            RegisteredAddress {
                member: "exchange-b".into(),
                address: address('b'),
            },
        ],
        hot_cap_bps: 500,
    });
    genesis.validate().unwrap();
    let h = Harness::with_genesis(genesis);
    assert_eq!(h.genesis.assets[0].contract.as_deref(), Some(TOKEN));
    h
}

fn fact(from: char, hash: char, amount: u128) -> DepositFact {
    DepositFact {
        chain_id: 31337,
        tx_hash: tx_hash(hash),
        log_index: Some(0),
        from: address(from),
        asset: BTC,
        amount: Amount(amount),
    }
}

#[test]
fn a_deposit_is_credited_once_at_quorum() {
    let mut h = harness();
    let deposit = fact('a', '5', 3 * COIN);
    h.ok(CH, TxBody::AttestDeposit(deposit.clone()));
    assert_eq!(
        h.balance(A, BTC).inventory,
        Amount(0),
        "one attestation is not a quorum"
    );
    let receipt = h.ok(B, TxBody::AttestDeposit(deposit.clone()));
    assert!(receipt
        .events
        .iter()
        .any(|e| matches!(e, Event::Credited { member, amount, .. } if *member == A && *amount == Amount(3 * COIN))));
    assert_eq!(h.balance(A, BTC).inventory, Amount(3 * COIN));
    // The third attestation comes late: recorded, but it credits nothing more.
    let late = h.ok(A, TxBody::AttestDeposit(deposit.clone()));
    assert!(late.events.is_empty(), "{late:?}");
    assert_eq!(h.balance(A, BTC).inventory, Amount(3 * COIN));
    let again = h.tx(A, TxBody::AttestDeposit(deposit.clone()));
    assert_eq!(rejected_code(&again), "already_attested");
    let record = custody::deposit(&h.view, deposit.deposit_id()).unwrap();
    assert_eq!(record.attestations[0].1, vec![CH, B, A]);
    assert_eq!(
        record.outcome,
        Some((deposit, DepositOutcome::Credited { member: A }))
    );
}

#[test]
fn attestations_must_agree_and_come_from_distinct_validators() {
    let mut h = harness();
    h.ok(CH, TxBody::AttestDeposit(fact('a', '5', 5)));
    let twice = h.tx(CH, TxBody::AttestDeposit(fact('a', '5', 5)));
    assert_eq!(rejected_code(&twice), "already_attested");
    let outsider = h.tx(C, TxBody::AttestDeposit(fact('a', '5', 5)));
    assert_eq!(rejected_code(&outsider), "not_validator");
    // B saw another amount: two versions with one attester each credit nothing.
    h.ok(B, TxBody::AttestDeposit(fact('a', '5', 6)));
    assert_eq!(h.balance(A, BTC).inventory, Amount(0));
    h.ok(A, TxBody::AttestDeposit(fact('a', '5', 5)));
    assert_eq!(h.balance(A, BTC).inventory, Amount(5));
    // B's version is now known false: evidence against B, and nobody's attestation of
    // the deposit is open any more.
    let evidence = custody::evidence(&h.view);
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    assert_eq!(evidence[0].member, B);
    assert_eq!(
        evidence[0].attested,
        AttestedFact::Deposit(fact('a', '5', 6))
    );
    assert_eq!(
        evidence[0].credited,
        AttestedFact::Deposit(fact('a', '5', 5))
    );
    for member in [CH, A, B] {
        assert_eq!(custody::open_attestation_count(&h.view, member), 0);
    }
    let wrong_chain = DepositFact {
        chain_id: 1,
        ..fact('a', '6', 5)
    };
    assert_eq!(
        rejected_code(&h.tx(A, TxBody::AttestDeposit(wrong_chain))),
        "wrong_public_chain"
    );
    let native_style = DepositFact {
        log_index: None,
        ..fact('a', '6', 5)
    };
    assert_eq!(
        rejected_code(&h.tx(A, TxBody::AttestDeposit(native_style))),
        "wrong_log_index"
    );
    let fiat = DepositFact {
        asset: JPY,
        ..fact('a', '6', 5)
    };
    assert_eq!(
        rejected_code(&h.tx(A, TxBody::AttestDeposit(fiat))),
        "not_crypto_asset"
    );
}

#[test]
fn an_unregistered_sender_is_reported_not_credited() {
    let mut h = harness();
    let deposit = fact('c', '7', 9);
    h.ok(CH, TxBody::AttestDeposit(deposit.clone()));
    h.ok(A, TxBody::AttestDeposit(deposit.clone()));
    let record = custody::deposit(&h.view, deposit.deposit_id()).unwrap();
    assert_eq!(
        record.outcome,
        Some((deposit, DepositOutcome::Unregistered))
    );
    for member in [CH, A, B, C] {
        assert_eq!(h.balance(member, BTC).inventory, Amount(0));
    }
    assert_eq!(
        custody::liabilities(&h.view, &h.genesis, BTC).total,
        Amount(0)
    );
}

#[test]
fn a_withdrawal_is_debited_then_completed_by_attested_payout() {
    let mut h = harness();
    h.ok(CH, TxBody::AttestDeposit(fact('a', '5', 10)));
    h.ok(B, TxBody::AttestDeposit(fact('a', '5', 10)));
    let elsewhere = h.tx(
        A,
        TxBody::Withdraw {
            asset: BTC,
            amount: Amount(4),
            to: address('b'),
        },
    );
    assert_eq!(rejected_code(&elsewhere), "unregistered_destination");
    let too_much = h.tx(
        A,
        TxBody::Withdraw {
            asset: BTC,
            amount: Amount(11),
            to: address('a'),
        },
    );
    assert_eq!(rejected_code(&too_much), "insufficient_available");
    h.ok(
        A,
        TxBody::Withdraw {
            asset: BTC,
            amount: Amount(4),
            to: address('a'),
        },
    );
    assert_eq!(h.balance(A, BTC).inventory, Amount(6));
    let liabilities = custody::liabilities(&h.view, &h.genesis, BTC);
    assert_eq!(liabilities.balances, Amount(6));
    assert_eq!(liabilities.pending_withdrawals, Amount(4));
    let id = WithdrawalId(1);
    assert_eq!(custody::open_withdrawals(&h.view).len(), 1);
    let not_ch = h.tx(
        A,
        TxBody::PayoutSent {
            withdrawal: id,
            tx_hash: tx_hash('9'),
        },
    );
    assert_eq!(rejected_code(&not_ch), "wrong_role");
    let unsent = h.tx(
        B,
        TxBody::AttestPayout {
            withdrawal: id,
            tx_hash: tx_hash('9'),
        },
    );
    assert_eq!(rejected_code(&unsent), "other_payout");
    h.ok(
        CH,
        TxBody::PayoutSent {
            withdrawal: id,
            tx_hash: tx_hash('9'),
        },
    );
    h.ok(
        B,
        TxBody::AttestPayout {
            withdrawal: id,
            tx_hash: tx_hash('9'),
        },
    );
    assert!(matches!(
        custody::withdrawal(&h.view, id).unwrap().status,
        WithdrawalStatus::Sent { .. }
    ));
    h.ok(
        A,
        TxBody::AttestPayout {
            withdrawal: id,
            tx_hash: tx_hash('9'),
        },
    );
    assert_eq!(
        custody::withdrawal(&h.view, id).unwrap().status,
        WithdrawalStatus::Completed {
            tx_hash: tx_hash('9')
        }
    );
    assert!(custody::open_withdrawals(&h.view).is_empty());
    assert_eq!(
        custody::liabilities(&h.view, &h.genesis, BTC).total,
        Amount(6)
    );
    let again = h.tx(
        CH,
        TxBody::PayoutSent {
            withdrawal: id,
            tx_hash: tx_hash('8'),
        },
    );
    assert_eq!(rejected_code(&again), "withdrawal_completed");
    // A validator that attests another transaction as the completed payout is on
    // record; the withdrawal stays completed by the one q attested.
    assert!(custody::evidence(&h.view).is_empty());
    h.ok(
        CH,
        TxBody::AttestPayout {
            withdrawal: id,
            tx_hash: tx_hash('8'),
        },
    );
    let evidence = custody::evidence(&h.view);
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    assert_eq!(evidence[0].member, CH);
    assert_eq!(
        evidence[0].attested,
        AttestedFact::Payout {
            withdrawal: id,
            tx_hash: tx_hash('8')
        }
    );
    let twice = h.tx(
        CH,
        TxBody::AttestPayout {
            withdrawal: id,
            tx_hash: tx_hash('8'),
        },
    );
    assert_eq!(rejected_code(&twice), "already_attested");
    assert_eq!(
        custody::withdrawal(&h.view, id).unwrap().status,
        WithdrawalStatus::Completed {
            tx_hash: tx_hash('9')
        }
    );
}

#[test]
fn an_invented_deposit_credits_nobody_and_a_liar_neither_blocks_nor_forges() {
    let mut h = harness();
    // B attests a deposit that never happened, and an inflated version of a real one.
    h.ok(B, TxBody::AttestDeposit(fact('a', 'e', 7 * COIN)));
    h.ok(B, TxBody::AttestDeposit(fact('a', '5', 2 * COIN)));
    assert_eq!(custody::open_attestation_count(&h.view, B), 2);
    assert_eq!(h.balance(A, BTC).inventory, Amount(0));
    // The two honest validators see the real one.
    h.ok(CH, TxBody::AttestDeposit(fact('a', '5', COIN)));
    h.ok(A, TxBody::AttestDeposit(fact('a', '5', COIN)));
    assert_eq!(h.balance(A, BTC).inventory, Amount(COIN));
    assert_eq!(custody::open_attestation_count(&h.view, B), 1);
    let evidence = custody::evidence(&h.view);
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0].member, B);
    // A non-validator cannot attest at all.
    let outsider = h.tx(C, TxBody::AttestDeposit(fact('a', 'e', 7 * COIN)));
    assert_eq!(rejected_code(&outsider), "not_validator");
    h.check();
}

#[test]
fn a_deposit_cures_a_parked_order_which_then_fills() {
    let mut h = harness();
    h.seed(&[(B, JPY, 1_000_000)]);
    let order = |side| {
        TxBody::PlaceOrder(OrderRequest {
            pair: PAIR,
            side,
            quantity: Amount(COIN),
            limit_price: Amount(500_000),
            time_in_force: TimeInForce::GoodTillCancel,
            expires_at_ms: None,
        })
    };
    h.ok(B, order(Side::Buy));
    // A sells a coin it does not have yet: parked with a top-up request.
    let parked = h.ok(A, order(Side::Sell));
    assert!(parked
        .events
        .iter()
        .any(|e| matches!(e, Event::OrderParked { .. })));
    let deposit = fact('a', '5', COIN);
    h.ok(CH, TxBody::AttestDeposit(deposit.clone()));
    let cured = h.ok(B, TxBody::AttestDeposit(deposit));
    assert!(
        cured
            .events
            .iter()
            .any(|e| matches!(e, Event::OrderFilled { .. })),
        "{:?}",
        cured.events
    );
    assert_eq!(h.balance(A, JPY).inventory, Amount(500_000));
    assert_eq!(h.balance(B, BTC).inventory, Amount(COIN));
    assert!(seisan_contracts::query::open_orders(&h.view, A).is_empty());
}

/// Issue #16: an exchange's back office and its validator node sign with the same member
/// key at the same moment. The order is in the member lane, the attestation in the node
/// lane, so both carry nonce 1, both apply in one block, and a repeat is refused in its
/// own lane only.
#[test]
fn the_member_lane_and_the_node_lane_take_the_same_nonce_independently() {
    use seisan_contracts::query;
    use seisan_types::tx::Lane;
    let mut h = harness();
    h.seed(&[(A, BTC, COIN)]);
    let order = TxBody::PlaceOrder(OrderRequest {
        pair: PAIR,
        side: Side::Sell,
        quantity: Amount(COIN / 2),
        limit_price: Amount(500_000),
        time_in_force: TimeInForce::GoodTillCancel,
        expires_at_ms: None,
    });
    let attestation = TxBody::AttestDeposit(fact('b', '7', COIN));
    let order = h.signed(A, order);
    let attestation = h.signed(A, attestation);
    assert_eq!(
        order.tx.nonce, attestation.tx.nonce,
        "both lanes start at 1"
    );
    let ctx = seisan_contracts::BlockContext {
        height: seisan_types::Height(1),
        timestamp_ms: h.now_ms + 1,
        proposer: CH,
    };
    let outcome = seisan_contracts::apply_block(
        &h.view,
        &h.genesis,
        &ctx,
        &[order.clone(), attestation.clone()],
    );
    for receipt in &outcome.receipts {
        assert_eq!(receipt.outcome, TxOutcome::Applied, "{receipt:?}");
    }
    h.view.apply(&outcome.writes);
    h.height = 1;
    h.now_ms += 1;
    h.check();
    assert_eq!(
        query::last_nonce(&h.view, A, Lane::Member),
        Some(seisan_types::Nonce(1))
    );
    assert_eq!(
        query::last_nonce(&h.view, A, Lane::Node),
        Some(seisan_types::Nonce(1))
    );
    assert_eq!(
        h.balance(A, BTC).locked,
        Amount(COIN / 2),
        "the order rests"
    );

    // Replaying the attestation is a repeat in the node lane; the member lane's next
    // transaction (nonce 2) is unaffected by it.
    let ctx = seisan_contracts::BlockContext {
        height: seisan_types::Height(2),
        timestamp_ms: h.now_ms + 1,
        proposer: CH,
    };
    let cancel = h.signed(
        A,
        TxBody::CancelOrder {
            order: seisan_types::clearing::OrderId(1),
        },
    );
    assert_eq!(cancel.tx.nonce, seisan_types::Nonce(2));
    let outcome = seisan_contracts::apply_block(&h.view, &h.genesis, &ctx, &[attestation, cancel]);
    match &outcome.receipts[0].outcome {
        TxOutcome::Rejected { code, reason } => {
            assert_eq!(code, "repeated_nonce");
            assert!(reason.contains("node lane"), "{reason}");
        }
        TxOutcome::Applied => panic!("a replayed attestation applied"),
    }
    assert_eq!(outcome.receipts[1].outcome, TxOutcome::Applied);
    h.view.apply(&outcome.writes);
    assert_eq!(
        h.balance(A, BTC).locked,
        Amount(0),
        "the order was cancelled"
    );
    assert_eq!(
        query::last_nonce(&h.view, A, Lane::Member),
        Some(seisan_types::Nonce(2))
    );
    assert_eq!(
        query::last_nonce(&h.view, A, Lane::Node),
        Some(seisan_types::Nonce(1))
    );
}
