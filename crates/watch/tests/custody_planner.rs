//! The custody planner's decisions, one behaviour per test, against the fake chain and
//! the real contracts (see `custody_support`): deposits K deep attested once, a deposit
//! reorganised away never attested, the follow-up rule, payouts attested only when they
//! pay, the payer's coverage, one transfer in flight, journal before broadcast across a
//! restart, the sweep, the stale-ledger wait, reserves and the lying validator.

mod custody_support;
mod ledger_support;

use custody_support::*;
use seisan_contracts::custody as ledger;
use seisan_custody::plan;
use seisan_types::custody::{
    ChainTxHash, DepositFact, DepositOutcome, WithdrawalId, WithdrawalStatus,
};
use seisan_types::tx::TxBody;
use seisan_types::{Amount, AssetId, MemberId};
use seisan_watch::custody::{
    lies_about_deposits, CustodyAction, CustodyPlanner, Outcome, SWEEP_TAG,
};
use seisan_watch::Millis;

fn now(ledger: &Ledger) -> Millis {
    Millis(ledger.time.0 + 500)
}

/// An outside deposit from `member`'s registered address, mined K deep.
fn deposit(chain: &mut FakeChain, member: MemberId, asset: AssetId, amount: u128) -> ChainTxHash {
    let hash = chain.send_from_outside(registered(member), hot(), asset, amount);
    for _ in 0..CONFIRMATIONS {
        chain.mine();
    }
    hash
}

/// Each node passes once and the ledger finalizes what they admitted, `rounds` times.
fn rounds(nodes: &mut [Node], ledger: &mut Ledger, chain: &mut FakeChain, rounds: usize) {
    for _ in 0..rounds {
        let mut txs = Vec::new();
        for node in nodes.iter_mut() {
            let at = now(ledger);
            let result = node.pass(ledger, chain, at, PassFaults::default());
            txs.extend(result.admitted.into_iter().map(|body| (node.member, body)));
        }
        let at = now(ledger);
        ledger.block(at, txs);
        chain.mine();
    }
}

fn validators() -> Vec<Node> {
    [CH, A, B, C].into_iter().map(Node::new).collect()
}

/// A's inventory of `asset` credited through the watchers (so custody covers it), all
/// of it still in the hot wallet: the clearing house's node pays from then on.
fn funded(amount: u128, asset: AssetId) -> (Vec<Node>, Ledger, FakeChain) {
    let mut nodes = validators();
    let mut not_paying = config(CH);
    not_paying.payer = false;
    nodes[0] = Node::with_config(not_paying);
    let mut ledger = Ledger::new();
    let mut chain = FakeChain::new();
    deposit(&mut chain, A, asset, amount);
    rounds(&mut nodes, &mut ledger, &mut chain, 2);
    assert_eq!(
        ledger.inventory(A, asset),
        amount,
        "the deposit is credited"
    );
    assert_eq!(chain.balance(asset, &hot(), chain.latest()), Amount(amount));
    nodes[0] = Node::new(CH);
    (nodes, ledger, chain)
}

fn withdraw(ledger: &mut Ledger, member: MemberId, asset: AssetId, amount: u128) -> WithdrawalId {
    let at = now(ledger);
    let receipts = ledger.block(
        at,
        vec![(
            member,
            TxBody::Withdraw {
                asset,
                amount: Amount(amount),
                to: registered(member),
            },
        )],
    );
    assert!(applied(&receipts[0]), "{receipts:?}");
    ledger.withdrawals().last().expect("just made").id
}

fn pays(actions: &[CustodyAction]) -> Vec<WithdrawalId> {
    actions
        .iter()
        .filter_map(|action| match action {
            CustodyAction::Pay { withdrawal, .. } => Some(*withdrawal),
            _ => None,
        })
        .collect()
}

#[test]
fn a_deposit_is_attested_once_it_is_k_deep_and_only_once() {
    let mut ledger = Ledger::new();
    let mut chain = FakeChain::new();
    let mut node = Node::new(A);
    let hash = chain.send_from_outside(registered(B), hot(), ETH, 5);
    chain.mine();
    chain.mine();
    let result = node.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert!(
        attested(&result.actions).is_empty(),
        "two confirmations of three: too shallow"
    );
    chain.mine();
    let result = node.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    let fact = DepositFact {
        chain_id: CHAIN_ID,
        tx_hash: hash,
        log_index: None,
        from: registered(B),
        asset: ETH,
        amount: Amount(5),
    };
    assert_eq!(result.admitted, vec![TxBody::AttestDeposit(fact.clone())]);
    assert_eq!(node.planner.status().scanned_until, Some(1));
    let again = node.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert!(
        attested(&again.actions).is_empty(),
        "pending: not attested twice"
    );
    ledger.block(now(&ledger), vec![(A, TxBody::AttestDeposit(fact.clone()))]);
    let mut restarted = Node::new(A);
    let after = restarted.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert!(
        attested(&after.actions).is_empty(),
        "a fresh planner scanning from 0 sees its attestation on the ledger"
    );
}

#[test]
fn a_deposit_reorganised_away_before_k_deep_is_never_attested() {
    let ledger = Ledger::new();
    let mut chain = FakeChain::new();
    let mut node = Node::new(A);
    chain.send_from_outside(registered(B), hot(), ETH, 5);
    chain.mine();
    chain.mine();
    let shallow = node.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert!(
        attested(&shallow.actions).is_empty(),
        "{:?}",
        shallow.actions
    );
    chain.reorganise(2, true);
    for _ in 0..10 {
        chain.mine();
        let result = node.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
        assert!(attested(&result.actions).is_empty(), "{:?}", result.actions);
    }
    assert!(node.planner.status().scanned_until.unwrap() >= 8);
}

#[test]
fn a_deposit_in_the_scanned_blocks_moves_the_cursor_only_once_the_ledger_shows_it() {
    let mut ledger = Ledger::new();
    let mut chain = FakeChain::new();
    let mut node = Node::new(A);
    chain.mine();
    let hash = chain.send_from_outside(registered(B), hot(), ETH, 5);
    chain.mine(); // block 2
    for _ in 0..5 {
        chain.mine();
    }
    let first = node.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert_eq!(first.admitted.len(), 1);
    assert_eq!(
        node.cursor, 2,
        "a restart rescans the unconfirmed deposit's block"
    );
    // The admitted attestation is lost with a crash: the restarted planner scans from
    // the cursor and attests the deposit again.
    node.restart();
    let second = node.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert_eq!(deposit_ids(&second.admitted), deposit_ids(&first.admitted));
    let TxBody::AttestDeposit(fact) = &second.admitted[0] else {
        panic!("{second:?}");
    };
    assert_eq!(fact.tx_hash, hash);
    ledger.block(
        now(&ledger),
        second.admitted.into_iter().map(|body| (A, body)).collect(),
    );
    chain.mine();
    node.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert_eq!(
        node.cursor,
        chain.latest() + 2 - CONFIRMATIONS,
        "on the ledger: the cursor moves on"
    );
}

#[test]
fn a_missing_attestation_is_planned_again_after_the_patience_then_given_up() {
    let mut ledger = Ledger::new();
    let mut chain = FakeChain::new();
    let mut node = Node::new(A);
    let config = node.config.clone();
    deposit(&mut chain, B, ETH, 5);
    let start = now(&ledger);
    let first = node.pass(&ledger, &mut chain, start, PassFaults::default());
    assert_eq!(
        first.admitted.len(),
        1,
        "admitted, then lost before any block"
    );
    let early = node.pass(
        &ledger,
        &mut chain,
        Millis(start.0 + config.patience_ms - 1),
        PassFaults::default(),
    );
    assert!(attested(&early.actions).is_empty(), "within the patience");
    let mut at = start;
    for _ in 1..config.max_tries {
        at = Millis(at.0 + config.patience_ms);
        let again = node.pass(&ledger, &mut chain, at, PassFaults::default());
        assert_eq!(again.admitted, first.admitted, "the same attestation again");
    }
    at = Millis(at.0 + config.patience_ms);
    let last = node.pass(&ledger, &mut chain, at, PassFaults::default());
    assert!(last.admitted.is_empty());
    assert_eq!(
        last.actions,
        vec![CustodyAction::GiveUp(first.admitted[0].clone())]
    );
    let after = node.pass(
        &ledger,
        &mut chain,
        Millis(at.0 + 10 * config.patience_ms),
        PassFaults::default(),
    );
    assert!(
        after.actions.is_empty(),
        "given up once: {:?}",
        after.actions
    );
    // One the ledger shows is never planned again.
    let mut other = Node::new(B);
    let attest = other.pass(&ledger, &mut chain, start, PassFaults::default());
    ledger.block(
        start,
        attest.admitted.into_iter().map(|body| (B, body)).collect(),
    );
    let later = other.pass(
        &ledger,
        &mut chain,
        Millis(start.0 + 100 * config.patience_ms),
        PassFaults::default(),
    );
    assert!(later.actions.is_empty(), "{:?}", later.actions);
}

#[test]
fn an_attestation_the_attester_refused_is_planned_again_on_the_next_pass() {
    let ledger = Ledger::new();
    let mut chain = FakeChain::new();
    let mut node = Node::new(A);
    deposit(&mut chain, B, ETH, 5);
    deposit(&mut chain, C, ETH, 6);
    let refused = node.pass(
        &ledger,
        &mut chain,
        now(&ledger),
        PassFaults {
            refuse: Some(1),
            ..Default::default()
        },
    );
    assert_eq!(
        refused.admitted.len(),
        1,
        "the first admitted, the second refused"
    );
    assert_eq!(
        node.planner.status().scanned_until,
        None,
        "the scan did not move on"
    );
    let next = node.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert_eq!(next.admitted.len(), 1, "only the refused one");
    assert_ne!(deposit_ids(&next.admitted), deposit_ids(&refused.admitted));
    assert!(node.planner.status().scanned_until.is_some());
}

#[test]
fn a_deposit_settled_by_the_others_is_still_attested_late_and_credited_once() {
    let (mut nodes, mut ledger, mut chain) = funded(7, ETH);
    let mut late = Node::new(C);
    nodes.retain(|node| node.member != C);
    deposit(&mut chain, B, ETH, 9);
    rounds(&mut nodes, &mut ledger, &mut chain, 2);
    assert_eq!(ledger.inventory(B, ETH), 9);
    let result = late.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert_eq!(result.admitted.len(), 1, "the deposit it missed, late");
    assert!(
        matches!(&result.admitted[0], TxBody::AttestDeposit(fact) if fact.from == registered(B))
    );
    let receipts = ledger.block(
        now(&ledger),
        result.admitted.into_iter().map(|body| (C, body)).collect(),
    );
    assert!(receipts.iter().all(applied));
    assert_eq!(ledger.inventory(B, ETH), 9, "recorded, not credited again");
    assert_eq!(ledger.inventory(A, ETH), 7);
}

#[test]
fn a_payout_is_attested_only_when_k_deep_successful_and_exact() {
    let (_, mut ledger, mut chain) = funded(1_000_000, ETH);
    let id = withdraw(&mut ledger, A, ETH, 400);
    let mut node = Node::new(B);
    // The clearing house names a transaction that pays one unit short.
    let short = chain.sign(ETH, &registered(A), Amount(399), 0, &plan::payout_tag(id));
    chain.broadcast(&short).unwrap();
    let named = |tx: &str| TxBody::PayoutSent {
        withdrawal: id,
        tx_hash: ChainTxHash(tx.into()),
    };
    ledger.block(now(&ledger), vec![(CH, named(&short.tx_hash))]);
    for _ in 0..CONFIRMATIONS + 1 {
        chain.mine();
    }
    let result = node.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert!(
        attested(&result.actions).is_empty(),
        "pays 399 of 400: {:?}",
        result.actions
    );
    // A payout to the right place for the right amount, counted from shallow to deep.
    let exact = chain.sign(ETH, &registered(A), Amount(400), 1, &plan::payout_tag(id));
    chain.broadcast(&exact).unwrap();
    ledger.block(now(&ledger), vec![(CH, named(&exact.tx_hash))]);
    let attest = TxBody::AttestPayout {
        withdrawal: id,
        tx_hash: ChainTxHash(exact.tx_hash.clone()),
    };
    for depth in 1..=CONFIRMATIONS {
        chain.mine();
        let result = node.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
        if depth < CONFIRMATIONS {
            assert!(
                attested(&result.actions).is_empty(),
                "{depth} confirmations"
            );
        } else {
            assert_eq!(result.admitted, vec![attest.clone()]);
        }
    }
    // A payout that failed on chain (the hot wallet lacked the token) is not attested.
    let id2 = withdraw(&mut ledger, A, ETH, 500);
    let failed = chain.sign(WBTC, &registered(A), Amount(500), 2, &plan::payout_tag(id2));
    chain.broadcast(&failed).unwrap();
    ledger.block(
        now(&ledger),
        vec![(
            CH,
            TxBody::PayoutSent {
                withdrawal: id2,
                tx_hash: ChainTxHash(failed.tx_hash.clone()),
            },
        )],
    );
    for _ in 0..CONFIRMATIONS {
        chain.mine();
    }
    assert_eq!(
        chain
            .receipt(&ChainTxHash(failed.tx_hash.clone()))
            .map(|r| r.success),
        Some(false)
    );
    let result = node.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert!(
        !attested(&result.actions).iter().any(
            |body| matches!(body, TxBody::AttestPayout { withdrawal, .. } if *withdrawal == id2)
        ),
        "{:?}",
        result.actions
    );
}

#[test]
fn the_payer_pays_only_what_the_hot_wallet_covers_with_its_fee() {
    let (mut nodes, mut ledger, mut chain) = funded(10_000, ETH);
    let payer = &mut nodes[0];
    assert_eq!(payer.member, CH);
    // Hot holds 10,000: a withdrawal of all of it leaves nothing for the fee.
    let id = withdraw(&mut ledger, A, ETH, 10_000);
    let result = payer.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert!(pays(&result.actions).is_empty(), "{:?}", result.actions);
    assert!(payer.planner.status().waiting_for_hot_wallet.contains(&id));
    // Someone tops the hot wallet up: the fee is covered now.
    chain.send_from_outside(address(0x77), hot(), ETH, MAX_FEE);
    chain.mine();
    let result = payer.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert_eq!(pays(&result.actions), vec![id]);
    assert!(payer.planner.status().waiting_for_hot_wallet.is_empty());
}

#[test]
fn a_token_payout_needs_the_gas_in_the_native_coin() {
    let (mut nodes, mut ledger, mut chain) = funded(5_000, WBTC);
    let id = withdraw(&mut ledger, A, WBTC, 1_000);
    let payer = &mut nodes[0];
    let result = payer.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert!(pays(&result.actions).is_empty(), "no ETH for gas");
    assert!(payer.planner.status().waiting_for_hot_wallet.contains(&id));
    chain.send_from_outside(address(0x77), hot(), ETH, MAX_FEE);
    chain.mine();
    let result = payer.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert_eq!(pays(&result.actions), vec![id]);
}

#[test]
fn one_outgoing_transfer_at_a_time_and_each_withdrawal_paid_once() {
    let (mut nodes, mut ledger, mut chain) = funded(100_000, ETH);
    let first = withdraw(&mut ledger, A, ETH, 1_000);
    let second = withdraw(&mut ledger, A, ETH, 2_000);
    let payer = &mut nodes[0];
    let pass = payer.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert_eq!(
        pays(&pass.actions),
        vec![first],
        "the oldest first, one only"
    );
    let pass = payer.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert!(
        pays(&pass.actions).is_empty(),
        "the first is in flight: {:?}",
        pass.actions
    );
    assert!(pass
        .actions
        .iter()
        .any(|action| matches!(action, CustodyAction::Broadcast(_))));
    assert!(pass
        .admitted
        .iter()
        .any(|body| matches!(body, TxBody::PayoutSent { withdrawal, .. } if *withdrawal == first)));
    ledger.block(
        now(&ledger),
        pass.admitted.into_iter().map(|body| (CH, body)).collect(),
    );
    chain.mine();
    let pass = payer.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert_eq!(pays(&pass.actions), vec![second], "mined: the next one");
    rounds(&mut nodes, &mut ledger, &mut chain, 12);
    for id in [first, second] {
        let withdrawal = ledger::withdrawal(&ledger.view, id).unwrap();
        assert!(
            matches!(withdrawal.status, WithdrawalStatus::Completed { .. }),
            "{withdrawal:?}"
        );
        assert_eq!(
            chain.payouts_tagged(&plan::payout_tag(id)).len(),
            1,
            "paid once"
        );
    }
}

#[test]
fn a_payout_journaled_before_a_crash_is_broadcast_again_not_paid_twice() {
    let (mut nodes, mut ledger, mut chain) = funded(100_000, ETH);
    let id = withdraw(&mut ledger, A, ETH, 1_000);
    let crash = PassFaults {
        crash_before_broadcast: true,
        ..Default::default()
    };
    let pass = nodes[0].pass(&ledger, &mut chain, now(&ledger), crash);
    assert_eq!(pays(&pass.actions), vec![id]);
    assert!(chain.pool.is_empty(), "crashed before the broadcast");
    assert_eq!(nodes[0].journal.len(), 1, "but after the journal");
    // The restarted node (a new planner, the same journal) sends the journaled bytes.
    let pass = nodes[0].pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert!(pays(&pass.actions).is_empty(), "{:?}", pass.actions);
    let entry = nodes[0].journal.values().next().unwrap().clone();
    assert!(pass
        .actions
        .contains(&CustodyAction::Broadcast(entry.clone())));
    assert_eq!(chain.pool.len(), 1);
    ledger.block(
        now(&ledger),
        pass.admitted.into_iter().map(|body| (CH, body)).collect(),
    );
    // Restart again with the payout mined and named: nothing is paid again.
    chain.mine();
    nodes[0].restart();
    rounds(&mut nodes, &mut ledger, &mut chain, 8);
    assert_eq!(chain.payouts_tagged(&plan::payout_tag(id)).len(), 1);
    let withdrawal = ledger::withdrawal(&ledger.view, id).unwrap();
    assert_eq!(
        withdrawal.status,
        WithdrawalStatus::Completed {
            tx_hash: ChainTxHash(entry.tx_hash)
        }
    );
}

#[test]
fn a_payer_whose_journal_lost_a_mined_payout_pays_nothing_more() {
    // The clearing house pays a withdrawal; the payout is mined but not yet named on
    // the ledger when its node is restored from a backup taken before the payout: the
    // journal no longer holds it, the withdrawal is still pending.
    let (mut nodes, mut ledger, mut chain) = funded(100_000, ETH);
    let id = withdraw(&mut ledger, A, ETH, 1_000);
    let pass = nodes[0].pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert_eq!(pays(&pass.actions), vec![id]);
    chain.mine();
    let lost = std::mem::take(&mut nodes[0].journal);
    nodes[0].restart();
    let second = withdraw(&mut ledger, A, ETH, 2_000);
    for _ in 0..3 {
        let pass = nodes[0].pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
        assert!(pays(&pass.actions).is_empty(), "{:?}", pass.actions);
        assert!(
            !pass
                .actions
                .iter()
                .any(|action| matches!(action, CustodyAction::Sweep(_))),
            "{:?}",
            pass.actions
        );
        chain.mine();
    }
    let behind = nodes[0]
        .planner
        .status()
        .journal_behind_chain
        .expect("says why");
    assert_eq!((behind.journal_next_nonce, behind.mined_next_nonce), (0, 1));
    assert_eq!(
        chain.payouts_tagged(&plan::payout_tag(id)).len(),
        1,
        "paid once"
    );
    // With the journal the wallet's history matches back, payouts go on: the first is
    // named, not paid again, and the second is paid.
    nodes[0].journal = lost;
    nodes[0].restart();
    rounds(&mut nodes, &mut ledger, &mut chain, 8);
    assert_eq!(nodes[0].planner.status().journal_behind_chain, None);
    assert_eq!(chain.payouts_tagged(&plan::payout_tag(id)).len(), 1);
    assert_eq!(chain.payouts_tagged(&plan::payout_tag(second)).len(), 1);
}

#[test]
fn a_payer_whose_ledger_is_stale_pays_nothing() {
    let (mut nodes, mut ledger, mut chain) = funded(100_000, ETH);
    let id = withdraw(&mut ledger, A, ETH, 1_000);
    let payer = &mut nodes[0];
    let stale = Millis(ledger.time.0 + payer.config.max_ledger_age_ms + 1);
    let pass = payer.pass(&ledger, &mut chain, stale, PassFaults::default());
    assert!(pays(&pass.actions).is_empty());
    assert!(payer.planner.status().payer_waiting_for_ledger);
    let current = Millis(ledger.time.0 + payer.config.max_ledger_age_ms);
    let pass = payer.pass(&ledger, &mut chain, current, PassFaults::default());
    assert_eq!(pays(&pass.actions), vec![id]);
    assert!(!payer.planner.status().payer_waiting_for_ledger);
    // Without any finalized block to read, the payer waits too.
    let mut planner = CustodyPlanner::new(config(CH), 0);
    let observed = observe(&planner, &ledger.view, &chain);
    let actions = planner.plan(&ledger.view, &ledger.genesis, &observed, &[], None, current);
    assert!(pays(&actions).is_empty() && planner.status().payer_waiting_for_ledger);
}

#[test]
fn the_excess_over_the_hot_cap_is_swept_to_cold_once_nothing_waits() {
    let (mut nodes, mut ledger, mut chain) = funded(100_000, ETH);
    // The cap is 20% of hot + cold: 20,000 stay hot, the rest (less a fee) goes cold.
    let payer = &mut nodes[0];
    let pass = payer.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    let sweeps: Vec<_> = pass
        .actions
        .iter()
        .filter_map(|action| match action {
            CustodyAction::Sweep(transfer) => Some(transfer.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(sweeps.len(), 1, "{:?}", pass.actions);
    assert_eq!(sweeps[0].amount, Amount(80_000 - MAX_FEE));
    assert_eq!(sweeps[0].to, cold());
    assert_eq!(sweeps[0].tag, SWEEP_TAG);
    chain.mine();
    assert_eq!(
        chain.balance(ETH, &cold(), chain.latest()),
        Amount(80_000 - MAX_FEE)
    );
    let pass = payer.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert!(
        !pass
            .actions
            .iter()
            .any(|action| matches!(action, CustodyAction::Sweep(_))),
        "within the cap now"
    );
    // A withdrawal the hot wallet cannot cover holds every sweep back, even of
    // another asset: WBTC credited and mostly swept, then withdrawn in full.
    deposit(&mut chain, A, WBTC, 1_000);
    rounds(&mut nodes, &mut ledger, &mut chain, 10);
    assert_eq!(chain.balance(WBTC, &hot(), chain.latest()), Amount(200));
    let id = withdraw(&mut ledger, A, WBTC, 1_000);
    chain.send_from_outside(address(0x77), hot(), ETH, 50_000);
    chain.mine();
    let payer = &mut nodes[0];
    let pass = payer.pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert!(
        !pass
            .actions
            .iter()
            .any(|action| matches!(action, CustodyAction::Sweep(_))),
        "ETH is over the cap, but a withdrawal waits: {:?}",
        pass.actions
    );
    assert!(payer.planner.status().waiting_for_hot_wallet.contains(&id));
}

#[test]
fn reserves_report_custody_below_the_ledger_as_undercovered() {
    let (mut nodes, ledger, mut chain) = funded(100_000, ETH);
    let pass_status = |node: &mut Node, chain: &mut FakeChain| {
        node.pass(&ledger, chain, now(&ledger), PassFaults::default());
        node.planner.status().undercovered
    };
    assert_eq!(pass_status(&mut nodes[1], &mut chain), Some(false));
    // Coins leave custody without a withdrawal on the ledger.
    let theft = chain.sign(ETH, &address(0x66), Amount(1), 0, b"");
    chain.broadcast(&theft).unwrap();
    chain.mine();
    assert_eq!(pass_status(&mut nodes[1], &mut chain), Some(true));
}

#[test]
fn a_lying_validator_is_outvoted_and_its_false_facts_are_evidence() {
    let mut nodes = validators();
    let mut liar = config(C);
    liar.lies_about_deposits = true;
    nodes[3] = Node::with_config(liar);
    let mut ledger = Ledger::new();
    let mut chain = FakeChain::new();
    deposit(&mut chain, A, ETH, 7);
    let lies = nodes[3].pass(&ledger, &mut chain, now(&ledger), PassFaults::default());
    assert_eq!(
        lies.admitted.len(),
        2,
        "an inflated and an invented deposit"
    );
    ledger.block(
        now(&ledger),
        lies.admitted
            .iter()
            .cloned()
            .map(|body| (C, body))
            .collect(),
    );
    rounds(&mut nodes, &mut ledger, &mut chain, 3);
    assert_eq!(ledger.inventory(A, ETH), 7, "the true amount, once");
    let records = ledger::deposits(&ledger.view, None, 100);
    let credited: Vec<_> = records
        .iter()
        .filter(|record| record.outcome.is_some())
        .collect();
    assert_eq!(credited.len(), 1, "the invented deposit is not credited");
    assert!(
        matches!(credited[0].outcome, Some((_, DepositOutcome::Credited { member })) if member == A)
    );
    let evidence = ledger::evidence(&ledger.view);
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    assert_eq!(evidence[0].member, C);
}

#[test]
fn a_liar_inflates_each_deposit_and_invents_another() {
    let fact = DepositFact {
        chain_id: CHAIN_ID,
        tx_hash: ChainTxHash(format!("0x{}", "5".repeat(64))),
        log_index: None,
        from: registered(A),
        asset: ETH,
        amount: Amount(7),
    };
    let lies = lies_about_deposits(vec![(9, fact.clone())]);
    assert_eq!(lies.len(), 2);
    let (block, inflated) = &lies[0];
    assert_eq!(*block, 9);
    assert_eq!(inflated.deposit_id(), fact.deposit_id());
    assert_ne!(inflated.content_hash(), fact.content_hash());
    let (_, invented) = &lies[1];
    assert!(invented.tx_hash.is_canonical());
    assert_ne!(invented.deposit_id(), fact.deposit_id());
    assert_eq!(invented.amount, Amount(70));
}

#[test]
fn an_answer_for_another_scan_range_is_not_used() {
    let ledger = Ledger::new();
    let mut chain = FakeChain::new();
    deposit(&mut chain, B, ETH, 5);
    let mut planner = CustodyPlanner::new(config(A), 0);
    let mut observed = observe(&planner, &ledger.view, &chain);
    let (range, transfers) = observed.transfers.clone().expect("a range to scan");
    observed.transfers = Some(((range.0 + 1, range.1), transfers));
    let actions = planner.plan(
        &ledger.view,
        &ledger.genesis,
        &observed,
        &[],
        Some(ledger.time),
        now(&ledger),
    );
    assert!(attested(&actions).is_empty(), "{actions:?}");
    assert!(!actions
        .iter()
        .any(|action| matches!(action, CustodyAction::Scanned { .. })));
    // A failed Scanned record leaves the cursor.
    planner.record(
        &CustodyAction::Scanned { until: 5 },
        Outcome::Failed,
        now(&ledger),
    );
    assert_eq!(planner.next_block(), 0);
}
