//! Governance through the public entry points: proposals, approvals by the current
//! validators, activation `ACTIVATION_DELAY_BLOCKS + 1` blocks after the approving
//! block, lapsing, withdraw-only and removal, key rotation and quorum changes, with
//! every ledger invariant (and the membership's validity) checked after each block.
//!
//! The harness's genesis: clearing house, A and B validate (quorum 2 of 3); C is an
//! exchange that does not validate.

mod common;

use common::*;
use seisan_contracts::governance::{self, ProposalView};
use seisan_types::amount::{Asset, AssetKind};
use seisan_types::clearing::{OrderRequest, Side, TimeInForce, TradeTerms};
use seisan_types::governance::{GovernanceChange, Proposal, ProposalId, ProposalStatus};
use seisan_types::membership::MemberStatus;
use seisan_types::receipt::{Event, Receipt};
use seisan_types::tx::{Allocation, AllocationDirection, CustomerId, TxBody};
use seisan_types::{
    Amount, Epoch, Height, MemberId, Role, SettlementSettings, ACTIVATION_DELAY_BLOCKS,
};

const D: MemberId = MemberId(4);

fn limit(side: Side, quantity: u128, price: u128) -> TxBody {
    TxBody::PlaceOrder(OrderRequest {
        pair: PAIR,
        side,
        quantity: Amount(quantity),
        limit_price: Amount(price),
        time_in_force: TimeInForce::GoodTillCancel,
        expires_at_ms: None,
    })
}

fn propose(change: GovernanceChange, expires_at_height: u64) -> TxBody {
    TxBody::Propose(Proposal {
        change,
        expires_at_height: Height(expires_at_height),
    })
}

fn approve(id: u64) -> TxBody {
    TxBody::Approve {
        proposal: ProposalId(id),
    }
}

fn add_member(name: &str, key: u8, validator: bool) -> GovernanceChange {
    GovernanceChange::AddMember {
        name: name.into(),
        role: Role::Exchange,
        public_key: public_key(key),
        validator,
        p2p_address: Some("/ip4/127.0.0.1/tcp/7109".into()),
    }
}

fn view(h: &Harness, id: u64) -> ProposalView {
    governance::proposal(&h.view, ProposalId(id)).expect("proposal exists")
}

fn status(h: &Harness, id: u64) -> ProposalStatus {
    view(h, id).status
}

/// Idle blocks until the last executed block is `height`.
fn run_to(h: &mut Harness, height: u64) {
    assert!(h.height <= height);
    while h.height < height {
        h.idle(1000);
    }
}

/// Right after the block that scheduled a change (height `a`), runs the blocks up to
/// and including `a + ACTIVATION_DELAY_BLOCKS`, at whose end it applies.
fn run_through_delay(h: &mut Harness) {
    let target = h.height + ACTIVATION_DELAY_BLOCKS;
    run_to(h, target);
}

fn fills(receipt: &Receipt) -> usize {
    receipt
        .events
        .iter()
        .filter(|event| matches!(event, Event::Fill { .. }))
        .count()
}

#[test]
fn an_added_member_trades_from_its_activation_height() {
    let mut h = Harness::new();
    h.seed(&[(A, JPY, 1_000)]);
    h.ok(CH, propose(add_member("exchange-d", 9, false), 100));
    let proposed_at = h.height;
    // The clearing house validates, so its proposal is its approval: 1 of 2.
    assert_eq!(status(&h, 1), ProposalStatus::Open);
    assert_eq!(view(&h, 1).approvals, vec!["clearing-house".to_string()]);
    h.ok(A, approve(1));
    let approved_at = h.height;
    assert_eq!(approved_at, proposed_at + 1);
    let activation = Height(approved_at + ACTIVATION_DELAY_BLOCKS + 1);
    assert_eq!(
        status(&h, 1),
        ProposalStatus::Scheduled {
            activation_height: activation
        }
    );
    assert_eq!(
        governance::scheduled_activations(&h.view),
        vec![(activation, ProposalId(1))]
    );
    // Up to the block before the last one of the epoch, nothing changed.
    run_to(&mut h, activation.0 - 2);
    let before = governance::membership(&h.view);
    assert_eq!(before.members.len(), 4);
    assert_eq!(before.epoch, Epoch(0));
    assert_eq!(before.member_by_key(&public_key(9)), None);
    // The block at activation - 1 applies it at its end: the state after it holds the
    // membership that governs the activation block.
    h.idle(1000);
    assert_eq!(h.height, activation.0 - 1);
    let after = governance::membership(&h.view);
    assert_eq!(after.epoch, Epoch(1));
    assert_eq!(after.member_by_key(&public_key(9)).unwrap().0, D);
    assert_eq!(
        status(&h, 1),
        ProposalStatus::Applied { height: activation }
    );
    assert!(governance::scheduled_activations(&h.view).is_empty());
    // The new member trades with A.
    h.seed(&[(D, BTC, COIN)]);
    h.ok(D, limit(Side::Sell, COIN, 100));
    let receipt = h.ok(A, limit(Side::Buy, COIN, 100));
    assert_eq!(fills(&receipt), 1);
    assert_eq!(h.balance(D, JPY).inventory, Amount(100));
    assert_eq!(h.balance(A, BTC).inventory, Amount(COIN));
}

#[test]
fn approvals_below_quorum_change_nothing_and_lapse_at_the_deadline() {
    let mut h = Harness::new();
    let settings = SettlementSettings {
        cutoff_time_of_day_ms: Some(3_600_000),
        ..SettlementSettings::default()
    };
    // C does not validate: its proposal is not an approval, and its approval is refused.
    h.ok(C, propose(GovernanceChange::SetSettlement(settings), 5));
    assert!(view(&h, 1).approvals.is_empty());
    assert_eq!(rejected_code(&h.tx(C, approve(1))), "not_validator");
    h.ok(A, approve(1));
    assert_eq!(view(&h, 1).counted_approvals, 1);
    run_to(&mut h, 4);
    assert_eq!(status(&h, 1), ProposalStatus::Open);
    h.idle(1000);
    let ProposalStatus::Lapsed { reason } = status(&h, 1) else {
        panic!("expected a lapse, got {:?}", status(&h, 1));
    };
    assert!(reason.contains("approved by 1"), "{reason}");
    assert_eq!(rejected_code(&h.tx(B, approve(1))), "proposal_not_open");
    run_to(&mut h, 30);
    assert_eq!(
        governance::consortium(&h.view).settlement,
        SettlementSettings::default()
    );
}

#[test]
fn a_withdraw_only_member_takes_on_nothing_new_but_settles_and_withdraws() {
    let mut h = Harness::new();
    h.seed(&[(A, JPY, 1_000), (B, BTC, 2 * COIN), (B, JPY, 50)]);
    h.ok(B, limit(Side::Sell, COIN, 100));
    // B still holds a balance and an open order: it cannot be removed outright.
    let receipt = h.tx(
        CH,
        propose(GovernanceChange::RemoveMember { member: B }, 50),
    );
    assert_eq!(rejected_code(&receipt), "member_still_holds");
    h.ok(
        CH,
        propose(GovernanceChange::SetWithdrawOnly { member: B }, 50),
    );
    h.ok(A, approve(1));
    run_through_delay(&mut h);
    assert!(matches!(status(&h, 1), ProposalStatus::Applied { .. }));
    let membership = governance::membership(&h.view);
    assert_eq!(membership.members[2].status, MemberStatus::WithdrawOnly);
    // Still a validator (it votes until removed), but it takes on nothing new.
    assert!(membership.validators().contains(&B));
    assert_eq!(
        rejected_code(&h.tx(B, limit(Side::Sell, COIN, 90))),
        "withdraw_only"
    );
    let allocation = TxBody::Allocate(Allocation {
        asset: BTC,
        customer: CustomerId("c-1".into()),
        amount: Amount(1),
        direction: AllocationDirection::ToCustomer,
    });
    assert_eq!(rejected_code(&h.tx(B, allocation)), "withdraw_only");
    // A member that is not active cannot propose either.
    let receipt = h.tx(B, propose(GovernanceChange::SetQuorum { quorum: 3 }, 50));
    assert_eq!(rejected_code(&receipt), "not_active");
    // Nobody can start new business with it either.
    let terms = TxBody::Confirm(TradeTerms {
        trade_ref: "t-1".into(),
        buyer: A,
        seller: B,
        pair: PAIR,
        quantity: Amount(COIN),
        price: Amount(100),
        trade_time_ms: GENESIS_MS,
    });
    assert_eq!(rejected_code(&h.tx(A, terms)), "counterparty_not_active");
    // Its resting order still fills: what it has settles.
    let receipt = h.ok(A, limit(Side::Buy, COIN, 100));
    assert_eq!(fills(&receipt), 1);
    assert_eq!(h.balance(B, JPY).inventory, Amount(150));
    // And it withdraws: the fiat withdrawal is debited into a pending withdrawal.
    h.ok(
        B,
        TxBody::WithdrawFiat {
            asset: JPY,
            amount: Amount(150),
        },
    );
    assert_eq!(h.balance(B, JPY).inventory, Amount(0));
    // It can cancel its way out too (nothing left to cancel here: the order filled).
}

#[test]
fn removal_waits_until_the_member_holds_nothing_and_is_checked_again_at_activation() {
    let mut h = Harness::new();
    h.seed(&[(C, JPY, 100)]);
    let receipt = h.tx(
        CH,
        propose(GovernanceChange::RemoveMember { member: C }, 200),
    );
    assert_eq!(rejected_code(&receipt), "member_still_holds");
    // The clearing house never leaves.
    let receipt = h.tx(
        A,
        propose(GovernanceChange::RemoveMember { member: CH }, 200),
    );
    assert_eq!(rejected_code(&receipt), "clearing_house_cannot_leave");
    // C empties its account; now the removal is accepted...
    h.withdraw(C, JPY, 100);
    h.ok(
        CH,
        propose(GovernanceChange::RemoveMember { member: C }, 200),
    );
    h.ok(B, approve(1));
    // ...but before it activates C receives a deposit: at activation it is rejected.
    h.deposit(C, JPY, 5);
    run_through_delay(&mut h);
    let ProposalStatus::Rejected { reason } = status(&h, 1) else {
        panic!("expected a rejection, got {:?}", status(&h, 1));
    };
    assert!(reason.contains("still holds"), "{reason}");
    let membership = governance::membership(&h.view);
    assert_eq!(membership.members[3].status, MemberStatus::Active);
    // The boundary was announced to consensus when the change was scheduled, so the
    // epoch advances there even though nothing in the membership changed (rule G4).
    assert_eq!(membership.epoch, Epoch(1));
    // Emptied again, it is removed.
    h.withdraw(C, JPY, 5);
    h.ok(
        CH,
        propose(GovernanceChange::RemoveMember { member: C }, 200),
    );
    h.ok(A, approve(2));
    run_through_delay(&mut h);
    assert!(matches!(status(&h, 2), ProposalStatus::Applied { .. }));
    let membership = governance::membership(&h.view);
    assert_eq!(membership.members[3].status, MemberStatus::Removed);
    assert_eq!(membership.member_by_key(&public_key(3)), None);
    assert_eq!(membership.epoch, Epoch(2));
    assert_eq!(
        rejected_code(&h.tx(C, limit(Side::Buy, 1, 1))),
        "member_removed"
    );
    // Everyone else's balances and the totals are untouched (checked by the harness's
    // invariants after every block); A still trades.
    h.seed(&[(A, JPY, 10)]);
    assert_eq!(h.balance(A, JPY).inventory, Amount(10));
}

#[test]
fn a_rotated_key_resolves_to_the_member_and_the_old_one_to_nobody() {
    let mut h = Harness::new();
    let rotate = GovernanceChange::RotateKey {
        member: A,
        public_key: public_key(7),
    };
    h.ok(CH, propose(rotate, 100));
    h.ok(B, approve(1));
    run_through_delay(&mut h);
    let membership = governance::membership(&h.view);
    assert_eq!(membership.member_by_key(&public_key(1)), None);
    assert_eq!(membership.member_by_key(&public_key(7)).unwrap().0, A);
    assert_eq!(membership.validator_set().key_of(A), Some(public_key(7)));
    // A keeps its id and nonces.
    h.seed(&[(A, JPY, 100)]);
    h.ok(A, limit(Side::Buy, COIN, 100));
}

#[test]
fn a_quorum_that_breaks_two_q_above_n_is_refused_at_once() {
    let mut h = Harness::new();
    for (quorum, code) in [(1, "bad_membership"), (4, "bad_membership")] {
        let receipt = h.tx(CH, propose(GovernanceChange::SetQuorum { quorum }, 100));
        assert_eq!(rejected_code(&receipt), code, "quorum {quorum}");
    }
    // A fourth validator with quorum 2 would make 2q = n.
    let receipt = h.tx(CH, propose(add_member("exchange-d", 9, true), 100));
    assert_eq!(rejected_code(&receipt), "bad_membership");
    // Duplicate names and keys are refused too.
    let receipt = h.tx(CH, propose(add_member("exchange-a", 9, false), 100));
    assert_eq!(rejected_code(&receipt), "bad_membership");
    let receipt = h.tx(CH, propose(add_member("exchange-d", 1, false), 100));
    assert_eq!(rejected_code(&receipt), "bad_membership");
    h.ok(CH, propose(GovernanceChange::SetQuorum { quorum: 3 }, 100));
}

#[test]
fn changes_in_flight_apply_at_their_own_heights_and_the_new_quorum_counts_next() {
    let mut h = Harness::new();
    let eth = Asset {
        symbol: "ETH".into(),
        kind: AssetKind::NativeCoin,
        scale: 18,
        contract: None,
    };
    h.ok(CH, propose(GovernanceChange::AddAsset(eth), 100));
    // A pair of an asset that does not exist yet could never apply now (a refused
    // proposal takes no number).
    let pair = GovernanceChange::AddPair {
        base: "ETH".into(),
        quote: "JPY".into(),
    };
    assert_eq!(
        rejected_code(&h.tx(CH, propose(pair.clone(), 100))),
        "bad_pair"
    );
    h.ok(A, approve(1));
    let first = Height(h.height + ACTIVATION_DELAY_BLOCKS + 1);
    h.ok(CH, propose(GovernanceChange::SetQuorum { quorum: 3 }, 100));
    h.ok(B, approve(2));
    let second = Height(h.height + ACTIVATION_DELAY_BLOCKS + 1);
    assert_eq!(
        governance::scheduled_activations(&h.view),
        vec![(first, ProposalId(1)), (second, ProposalId(2))]
    );
    run_to(&mut h, first.0 - 1);
    let config = governance::consortium(&h.view);
    assert_eq!(config.assets.len(), 3);
    assert_eq!(config.membership.quorum, 2);
    assert_eq!(
        config.membership.epoch,
        Epoch(0),
        "an asset is no membership change"
    );
    run_to(&mut h, second.0 - 1);
    let config = governance::consortium(&h.view);
    assert_eq!(config.membership.quorum, 3);
    assert_eq!(config.membership.epoch, Epoch(1));
    // Under quorum 3 a pair needs all three validators.
    h.ok(CH, propose(pair, 200));
    h.ok(A, approve(3));
    assert_eq!(status(&h, 3), ProposalStatus::Open);
    h.ok(B, approve(3));
    assert!(matches!(status(&h, 3), ProposalStatus::Scheduled { .. }));
    run_through_delay(&mut h);
    assert_eq!(governance::consortium(&h.view).pairs.len(), 2);
}

#[test]
fn changes_of_one_height_apply_in_approval_order_and_a_conflicting_one_is_rejected() {
    let mut h = Harness::new();
    // Each is valid alone; together the second would give two members one key.
    h.ok(
        CH,
        propose(
            GovernanceChange::RotateKey {
                member: C,
                public_key: public_key(9),
            },
            100,
        ),
    );
    h.ok(CH, propose(add_member("exchange-d", 9, false), 100));
    let outcome = h.block(vec![(A, approve(2)), (A, approve(1))]);
    assert!(outcome.receipts.iter().all(|receipt| receipt.is_applied()));
    run_through_delay(&mut h);
    // Proposal 2 was approved first, so it applied; the rotation then collided.
    assert!(matches!(status(&h, 2), ProposalStatus::Applied { .. }));
    let ProposalStatus::Rejected { reason } = status(&h, 1) else {
        panic!("expected a rejection, got {:?}", status(&h, 1));
    };
    assert!(reason.contains("same public key"), "{reason}");
    let membership = governance::membership(&h.view);
    assert_eq!(membership.member_by_key(&public_key(9)).unwrap().0, D);
    assert_eq!(
        membership.member(C).unwrap().member.public_key,
        public_key(3)
    );
    assert_eq!(
        membership.epoch,
        Epoch(1),
        "one epoch per activation height"
    );
}
