//! The bank planner's decisions one at a time, against the embedded bank's real books
//! and the real contracts (the world of `bank_support`), with no faults unless a test
//! makes one.

mod bank_support;
mod ledger_support;

use bank_support::*;
use seisan_bank::{
    AccountId, BankError, Direction, Entry, EntryId, TransferReference, TransferRequest,
};
use seisan_types::bank::{BankEntryKind, BankFact};
use seisan_types::governance::{GovernanceChange, Proposal, ProposalId};
use seisan_types::tx::TxBody;
use seisan_types::{Amount, Height, MemberId, Role};
use seisan_watch::bank::{
    entry_fact, lies_about, BankAction, BankAnswer, BankNotice, BankPlanner, BankPlannerConfig,
    BankRead, TransferPurpose, LIE_SQUAT_AHEAD, MAX_TRIES, RESUBMIT_AFTER_MS,
};
use seisan_watch::Millis;
use std::collections::BTreeSet;

/// Plans for node `index` with every read answered, carries out every action (as the
/// shell does without faults) and returns them.
fn pass(world: &mut World, index: usize) -> Vec<BankAction> {
    let actions = world.plan_now(index);
    let member = world.nodes[index].member;
    let now = Millis(world.now_ms);
    for action in &actions {
        match action {
            BankAction::Attest(body) => world.admit(member, body.clone()),
            BankAction::Transfer { request, .. } => {
                world
                    .bank
                    .transfer(request, world.now_ms)
                    .expect("transfer");
            }
            BankAction::MirroredThrough(height) => world.nodes[index].mirrored = *height,
        }
        world.nodes[index].planner.done(action, now);
    }
    actions
}

fn entry_attestations(actions: &[BankAction]) -> Vec<BankFact> {
    actions
        .iter()
        .filter_map(|action| match action {
            BankAction::Attest(TxBody::AttestBankEntry(fact)) => Some(fact.clone()),
            _ => None,
        })
        .collect()
}

fn all_pass_and_finalize(world: &mut World) {
    for index in 0..world.nodes.len() {
        pass(world, index);
    }
    world.now_ms += 1_000;
    let all = world.mempool.len();
    world.block(all);
}

#[test]
fn a_deposit_is_attested_once_by_each_validator_and_credited_once() {
    let mut world = World::new(None);
    world.deposit(A, JPY, 5_000);
    let facts = entry_attestations(&pass(&mut world, 2));
    assert_eq!(facts.len(), 1, "{facts:?}");
    assert_eq!(
        (
            facts[0].member,
            facts[0].asset,
            facts[0].amount,
            &facts[0].kind
        ),
        (A, JPY, Amount(5_000), &BankEntryKind::TrustCredit)
    );
    assert!(
        entry_attestations(&pass(&mut world, 2)).is_empty(),
        "pending: not planned twice before the ledger shows it"
    );
    all_pass_and_finalize(&mut world);
    assert_eq!(world.credited_entries(A, JPY), vec![5_000]);
    assert_eq!(world.balance(A, JPY), 5_000);
    // After a restart the statement is read from the start; the ledger already holds
    // this member's attestation, so nothing is signed again.
    world.nodes[2].restart();
    assert!(entry_attestations(&pass(&mut world, 2)).is_empty());
    all_pass_and_finalize(&mut world);
    assert_eq!(world.credited_entries(A, JPY), vec![5_000], "credited once");
}

#[test]
fn only_entries_from_the_exchanges_own_operating_account_are_facts() {
    let entry = |counterparty: &str, direction, reference: &str| Entry {
        id: EntryId("E000000000009".into()),
        sequence: 9,
        account: AccountId::trust("exchange-a"),
        direction,
        amount: Amount(700),
        counterparty: AccountId(counterparty.into()),
        reference: TransferReference(reference.into()),
        timestamp_ms: 0,
        balance_after: Amount(700),
    };
    let fact = |entry: &Entry| entry_fact(A, "exchange-a", JPY, entry);
    assert!(fact(&entry("exchange-a:operating", Direction::Credit, "d-1")).is_some());
    assert_eq!(
        fact(&entry(
            "exchange-a:operating",
            Direction::Debit,
            "fiat-withdrawal-12"
        ))
        .map(|fact| fact.kind),
        Some(BankEntryKind::WithdrawalPaid {
            withdrawal: seisan_types::bank::FiatWithdrawalId(12)
        })
    );
    // A mirror between trust accounts, someone else's operating account, a debit
    // without a withdrawal reference, an opening balance: none is a fact to attest.
    assert!(fact(&entry(
        "exchange-b:trust",
        Direction::Credit,
        "settle-3-a-b"
    ))
    .is_none());
    assert!(fact(&entry("exchange-b:operating", Direction::Credit, "d-2")).is_none());
    assert!(fact(&entry("exchange-a:operating", Direction::Debit, "other")).is_none());
    assert!(fact(&entry("opening", Direction::Credit, "opening")).is_none());
}

#[test]
fn a_lying_planner_misstates_amounts_and_claims_the_next_entry_ids_once() {
    let entry = Entry {
        id: EntryId("E000000000006".into()),
        sequence: 6,
        account: AccountId::trust("exchange-a"),
        direction: Direction::Credit,
        amount: Amount(100),
        counterparty: AccountId::operating("exchange-a"),
        reference: TransferReference("d".into()),
        timestamp_ms: 0,
        balance_after: Amount(100),
    };
    let truth = entry_fact(A, "exchange-a", JPY, &entry).unwrap();
    let mut squatted = BTreeSet::new();
    let lies = lies_about(A, JPY, &entry, vec![truth.clone()], &mut squatted);
    assert_eq!(lies.len() as u64, 1 + LIE_SQUAT_AHEAD);
    assert_eq!(lies[0].entry, truth.entry);
    assert_ne!(
        lies[0].amount, truth.amount,
        "the true entry, another amount"
    );
    assert_eq!(
        lies[1].entry.0, "E000000000007",
        "the next id the bank will assign"
    );
    let again = lies_about(A, JPY, &entry, vec![truth], &mut squatted);
    assert_eq!(again.len(), 1, "each future id is claimed once");
}

#[test]
fn an_attestation_the_attester_refused_is_planned_again_on_the_next_pass() {
    let mut world = World::new(None);
    world.deposit(B, USD, 300);
    let actions = world.plan_now(1);
    assert_eq!(entry_attestations(&actions).len(), 1);
    for action in &actions {
        world.nodes[1].planner.not_done(action);
    }
    let again = entry_attestations(&world.plan_now(1));
    assert_eq!(
        again.len(),
        1,
        "the statement is read again from before the entry"
    );
    assert_eq!((again[0].member, again[0].amount), (B, Amount(300)));
}

#[test]
fn a_lost_attestation_is_planned_again_after_the_patience_and_read_afresh_after_the_last_try() {
    let mut world = World::new(None);
    world.deposit(C, JPY, 42);
    let first = entry_attestations(&pass(&mut world, 0));
    assert_eq!(first.len(), 1);
    // Lost: it never reaches a block.
    world.mempool.clear();
    world.now_ms += RESUBMIT_AFTER_MS - 1;
    assert!(
        entry_attestations(&pass(&mut world, 0)).is_empty(),
        "patience"
    );
    for _ in 1..MAX_TRIES {
        world.now_ms += RESUBMIT_AFTER_MS;
        let again = entry_attestations(&pass(&mut world, 0));
        assert_eq!(again, first, "the same fact, planned again");
        world.mempool.clear();
    }
    world.now_ms += RESUBMIT_AFTER_MS;
    assert!(entry_attestations(&pass(&mut world, 0)).is_empty());
    let notices = world.nodes[0].planner.take_notices();
    assert!(
        matches!(notices.as_slice(), [BankNotice::GaveUp(what)] if what.contains("bank entry")),
        "{notices:?}"
    );
    // Given up is not forgotten: the account is read again and the fact planned anew.
    assert_eq!(entry_attestations(&pass(&mut world, 0)), first);
    all_pass_and_finalize(&mut world);
    assert_eq!(world.credited_entries(C, JPY), vec![42]);
}

#[test]
fn the_clearing_house_mirrors_each_height_once_and_a_crash_before_the_cursor_moves_the_money_once()
{
    let mut world = World::new(None);
    world.deposit(A, JPY, 10_000);
    all_pass_and_finalize(&mut world);
    assert_eq!(world.balance(A, JPY), 10_000);
    world.trade(A, B, JPY, 1_500);
    world.block(2);
    let traded_at = Height(world.height);
    let actions = world.plan_now(0);
    let transfers: Vec<&TransferRequest> = actions
        .iter()
        .filter_map(|action| match action {
            BankAction::Transfer {
                request,
                purpose: TransferPurpose::Mirror { height },
            } => {
                assert_eq!(*height, traded_at);
                Some(request)
            }
            _ => None,
        })
        .collect();
    assert_eq!(transfers.len(), 1, "{actions:?}");
    assert_eq!(transfers[0].from, AccountId::trust("exchange-a"));
    assert_eq!(transfers[0].to, AccountId::trust("exchange-b"));
    assert_eq!(transfers[0].amount, Amount(1_500));
    assert_eq!(
        actions.last(),
        Some(&BankAction::MirroredThrough(traded_at)),
        "the cursor moves after the height's transfers"
    );
    // The transfer is made, then the node crashes before storing the cursor.
    world
        .bank
        .transfer(transfers[0], world.now_ms)
        .expect("first transfer");
    world.nodes[0].restart();
    let replanned = pass(&mut world, 0);
    assert!(replanned.iter().any(|action| matches!(action, BankAction::Transfer { request, .. } if request == transfers[0])),
        "the same reference is sent again: {replanned:?}");
    assert_eq!(world.trust_at_bank(A, JPY), 8_500, "moved once");
    assert_eq!(world.trust_at_bank(B, JPY), 1_500);
    assert_eq!(world.nodes[0].mirrored, Height(world.height));
    assert!(
        !pass(&mut world, 0)
            .iter()
            .any(|action| matches!(action, BankAction::Transfer { .. })),
        "mirrored heights are not mirrored again"
    );
}

#[test]
fn a_mirror_is_confirmed_only_when_the_bank_shows_the_settled_terms() {
    let mut world = World::new(None);
    world.deposit(A, JPY, 10_000);
    all_pass_and_finalize(&mut world);
    world.trade(A, B, JPY, 900);
    world.block(2);
    let open = seisan_contracts::mirror::open_mirrors(&world.view, 10);
    assert_eq!(open.len(), 1);
    // Before the clearing house moves the money, a validator has nothing to confirm.
    let before = world.plan_now(1);
    assert!(!before
        .iter()
        .any(|action| matches!(action, BankAction::Attest(TxBody::AttestMirror(_)))));
    // Someone moves a different amount under the settlement's reference.
    world
        .bank
        .transfer(
            &TransferRequest {
                from: AccountId::trust("exchange-a"),
                to: AccountId::trust("exchange-b"),
                amount: Amount(899),
                reference: TransferReference(open[0].reference.clone()),
            },
            world.now_ms,
        )
        .unwrap();
    let actions = world.plan_now(1);
    assert!(
        !actions
            .iter()
            .any(|action| matches!(action, BankAction::Attest(TxBody::AttestMirror(_)))),
        "{actions:?}"
    );
    let notices = world.nodes[1].planner.take_notices();
    assert!(
        matches!(notices.as_slice(), [BankNotice::MirrorDiffers { reference }] if *reference == open[0].reference),
        "{notices:?}"
    );
    let reads = world.nodes[1].planner.reads(&world.view, &world.genesis);
    assert!(
        !reads
            .iter()
            .any(|read| matches!(read, BankRead::Transfer { .. })),
        "a differing mirror is not asked about again"
    );
    // Another validator sees the right transfer (in a fresh world it would be the
    // clearing house's): its attestation names the bank's entries.
    let mut world = World::new(None);
    world.deposit(A, JPY, 10_000);
    all_pass_and_finalize(&mut world);
    world.trade(A, B, JPY, 900);
    world.block(2);
    pass(&mut world, 0);
    let confirmations: Vec<_> = world
        .plan_now(2)
        .into_iter()
        .filter_map(|action| match action {
            BankAction::Attest(TxBody::AttestMirror(fact)) => Some(fact),
            _ => None,
        })
        .collect();
    assert_eq!(confirmations.len(), 1);
    assert_eq!(confirmations[0].amount, Amount(900));
    assert!(confirmations[0].debit_entry.0.starts_with('E'));
    all_pass_and_finalize(&mut world);
    all_pass_and_finalize(&mut world);
    assert!(seisan_contracts::mirror::open_mirrors(&world.view, 10).is_empty());
    assert_eq!(world.trust_at_bank(B, JPY), world.balance(B, JPY));
}

#[test]
fn a_mirror_this_node_may_not_read_is_not_asked_about_again() {
    let mut world = World::new(None);
    world.deposit(A, JPY, 10_000);
    all_pass_and_finalize(&mut world);
    world.trade(A, B, JPY, 900);
    world.block(2);
    let planner = &mut world.nodes[3].planner;
    let reads: Vec<BankRead> = planner
        .reads(&world.view, &world.genesis)
        .into_iter()
        .filter(|read| matches!(read, BankRead::Transfer { .. }))
        .collect();
    assert_eq!(reads.len(), 1);
    let forbidden = reads
        .into_iter()
        .map(|read| {
            (
                read,
                BankAnswer::Transfer(Err(BankError::Forbidden {
                    party: "exchange-c".into(),
                    action: "read".into(),
                })),
            )
        })
        .collect();
    let (tip, mirrored) = (Height(world.height), Height(0));
    let actions = planner.plan(
        &world.view,
        &world.genesis,
        tip,
        mirrored,
        forbidden,
        Millis(0),
    );
    assert!(actions.is_empty(), "{actions:?}");
    assert!(!planner
        .reads(&world.view, &world.genesis)
        .iter()
        .any(|read| matches!(read, BankRead::Transfer { .. })));
}

#[test]
fn a_fiat_withdrawal_is_paid_once_and_completed_by_the_attested_payment() {
    let mut world = World::new(None);
    world.deposit(B, USD, 2_000);
    all_pass_and_finalize(&mut world);
    world.admit(
        B,
        TxBody::WithdrawFiat {
            asset: USD,
            amount: Amount(700),
        },
    );
    world.block(1);
    let payments: Vec<_> = pass(&mut world, 0)
        .into_iter()
        .filter(|action| {
            matches!(
                action,
                BankAction::Transfer {
                    purpose: TransferPurpose::Withdrawal { .. },
                    ..
                }
            )
        })
        .collect();
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert!(
        !pass(&mut world, 0)
            .iter()
            .any(|action| matches!(action, BankAction::Transfer { .. })),
        "paid once in this run"
    );
    all_pass_and_finalize(&mut world);
    all_pass_and_finalize(&mut world);
    assert!(seisan_contracts::bank::open_withdrawals(&world.view).is_empty());
    assert_eq!(world.balance(B, USD), 1_300);
    assert_eq!(world.trust_at_bank(B, USD), 1_300);
}

#[test]
fn a_node_that_is_not_a_validator_reads_and_attests_nothing() {
    let mut world = World::new(None);
    world.deposit(A, JPY, 10);
    let outsider = BankPlanner::new(BankPlannerConfig {
        me: MemberId(9),
        clearing_house: false,
        audits_all: true,
        lie: false,
    });
    assert!(outsider.reads(&world.view, &world.genesis).is_empty());
    world.block(0);
}

#[test]
fn an_exchange_added_on_the_live_chain_is_watched_like_a_genesis_one() {
    let mut world = World::new(None);
    let key = seisan_crypto::Keypair::from_seed([77; 32]).public_key();
    world.admit(
        CH,
        TxBody::Propose(Proposal {
            change: GovernanceChange::AddMember {
                name: "exchange-d".into(),
                role: Role::Exchange,
                public_key: key,
                validator: false,
                p2p_address: None,
            },
            expires_at_height: Height(100),
        }),
    );
    world.block(1);
    for approver in [A, B] {
        world.admit(
            approver,
            TxBody::Approve {
                proposal: ProposalId(1),
            },
        );
    }
    world.block(2);
    for _ in 0..12 {
        world.block(0);
    }
    let membership = seisan_contracts::governance::membership(&world.view);
    let (d, _) = membership
        .member_by_name("exchange-d")
        .expect("exchange-d was added");
    for asset in [JPY, USD] {
        let cur = currency(asset);
        world
            .bank
            .open_account(
                &AccountId::operating_in("exchange-d", cur),
                cur,
                Amount(5_000),
                0,
            )
            .unwrap();
        world
            .bank
            .open_account(&AccountId::trust_in("exchange-d", cur), cur, Amount(0), 0)
            .unwrap();
    }
    world
        .bank
        .transfer(
            &TransferRequest {
                from: AccountId::operating("exchange-d"),
                to: AccountId::trust("exchange-d"),
                amount: Amount(1_234),
                reference: TransferReference("deposit-d".into()),
            },
            world.now_ms,
        )
        .unwrap();
    let facts = entry_attestations(&pass(&mut world, 1));
    assert_eq!(facts.len(), 1, "{facts:?}");
    assert_eq!((facts[0].member, facts[0].amount), (d, Amount(1_234)));
    all_pass_and_finalize(&mut world);
    assert_eq!(world.balance(d, JPY), 1_234);
}
