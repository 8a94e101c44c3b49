//! The bank's leg of settlement on chain, with real processes: three validators (q=2,
//! each with its member token and its read-only auditor token) and the embedded bank.
//!
//! A fill settles; its mirror transfer at the bank is confirmed on chain by the
//! validators' attestations and `seisan reconcile` is clean. Then the bank is frozen
//! (SIGSTOP) for 60 s and a second fill settles: block finalization goes on (blocks per
//! second before and during the stop are measured and printed), `/v1/status` and
//! `/metrics` show the mirror stalled, `/v1/mirrors/{height}` shows it unconfirmed and
//! `seisan reconcile` fails. After SIGCONT the clearing house makes the transfer, the
//! validators attest the bank's entry ids, the confirmation is on chain, and only then
//! is `seisan reconcile` clean.
//!
//! (No public chain is involved: anvil is not started.)

use anyhow::Context;
use seisan_api::v1;
use seisan_bank::{AccountId, BankAdapter, HttpBank, TransferReference, TransferRequest};
use seisan_tests::*;
use seisan_types::clearing::Side;
use seisan_types::genesis::OpeningBalance;
use seisan_types::mirror::MirrorState;
use seisan_types::tx::TxBody;
use seisan_types::Amount;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the bank is frozen.
const STOP: Duration = Duration::from_secs(60);
/// How long the baseline finalization rate is measured.
const BASELINE: Duration = Duration::from_secs(15);
/// The fewest blocks the chain must finalize while the bank is frozen. An idle leader
/// proposes an empty block every 0.5 s, so a healthy chain makes ~120 in 60 s; 20 only
/// says finalization went on (on a loaded machine the rate varies).
const MIN_BLOCKS_DURING_STOP: u64 = 20;

/// The fewest blocks the node must commit while a reconciliation waits 5 s or more
/// for the frozen bank (~20 at the idle rate; a commit blocked behind the call for its
/// whole length would make at most one or two).
const MIN_BLOCKS_DURING_CALL: u64 = 4;

/// Submits and waits until finalized and applied; returns the finalized height.
fn submit_ok(testnet: &Testnet, node: &str, member: &str, body: TxBody) -> u64 {
    let nonce: v1::NonceInfo = get_typed(&format!("{node}/v1/members/{member}/nonce"));
    let transaction = sign(&testnet.genesis, member, nonce.next.0, body);
    let answer = submit(node, &transaction).unwrap();
    assert_eq!(answer.code, 202, "{answer}");
    let status = wait_finalized(node, &transaction.id()).unwrap();
    assert!(applied(&status), "{status:?}");
    status.height.expect("finalized height").0
}

/// `seisan reconcile` against `node`, as a user runs it: (exit code, stdout + stderr).
fn reconcile(testnet: &Testnet, node: &str) -> (i32, String) {
    let output = Command::new(seisan_binary())
        .arg("reconcile")
        .env("SEISAN_NODE", node)
        .env("SEISAN_GENESIS", testnet.genesis_path())
        .env_remove("SEISAN_CONFIG")
        // Reconciliation is for operators.
        .env("SEISAN_KEY", testnet.key_path("clearing-house"))
        .env("HOME", testnet.dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("running seisan reconcile");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// The mirrors `/v1/status` reports on `node`.
fn status_mirrors(node: &str) -> anyhow::Result<v1::MirrorStatus> {
    status(node)?
        .mirrors
        .context("the status names no mirrors (genesis has a fiat asset)")
}

/// The one mirror the settlement at `height` opened, from `/v1/mirrors/{height}`.
fn mirror_at(node: &str, height: u64) -> anyhow::Result<v1::MirrorAt> {
    let body: v1::Mirrors = try_get_typed(&format!("{node}/v1/mirrors/{height}"))?;
    anyhow::ensure!(body.mirrors.len() == 1, "one mirror at {height}: {body:?}");
    Ok(body.mirrors[0].clone())
}

/// Blocks per second `node` finalizes over `window`; returns (rate, blocks).
fn finalization_rate(node: &NodeProcess, window: Duration) -> (f64, u64) {
    let start = Instant::now();
    let from = node_height(node).expect("node answers");
    std::thread::sleep(window);
    let to = node_height(node).expect("node answers");
    let blocks = to.saturating_sub(from);
    (blocks as f64 / start.elapsed().as_secs_f64(), blocks)
}

/// Whether the mirror record `mirror` is confirmed with the bank's own receipt of its
/// reference by at least q validators.
fn confirmed_as_at_bank(mirror: &v1::MirrorAt, house: &HttpBank) -> anyhow::Result<bool> {
    let record = &mirror.record;
    let Some(confirmation) = &record.confirmed else {
        return Ok(false);
    };
    let receipt = house
        .transfer_by_reference(&TransferReference(record.reference.clone()))?
        .context("a confirmed mirror's transfer exists at the bank")?;
    anyhow::ensure!(
        confirmation.debit_entry.0 == receipt.debit_entry.0
            && confirmation.credit_entry.0 == receipt.credit_entry.0,
        "the chain's confirmation {confirmation:?} is not the bank's receipt {receipt:?}"
    );
    anyhow::ensure!(
        record.attestations.len() >= 2,
        "confirmed by fewer than q=2 attestations: {record:?}"
    );
    Ok(mirror.state == MirrorState::Confirmed)
}

#[test]
fn a_frozen_bank_stalls_the_mirror_not_the_chain_and_reconcile_is_clean_only_once_confirmed() {
    let bank_port = free_port();
    let mut testnet = Testnet::start_with(0, |genesis| {
        genesis.opening_balances.push(OpeningBalance {
            member: "exchange-b".into(),
            asset: "ETH".into(),
            amount: "2".into(),
        });
    })
    .unwrap();
    let bank = start_bank(testnet.dir.path(), Some(&testnet.genesis_path()), bank_port).unwrap();
    let bank_url = format!("http://127.0.0.1:{bank_port}");
    for index in 0..3 {
        let name = testnet.nodes[index].name.clone();
        testnet.nodes[index].extra_args = testnet.bank_flags(&bank_url, &name, true);
        testnet.launch(index).unwrap();
    }
    for node in &testnet.nodes {
        let url = node.url();
        wait_until(PATIENCE, || Ok(status(&url).is_ok())).unwrap();
    }
    testnet.wait_in_sync(&[0, 1, 2]).unwrap();
    let ch = testnet.nodes[0].url();
    let a = testnet.nodes[1].url();
    let house = HttpBank::new(&bank_url, &seisan_bank::dev_token("clearing-house"));
    let bank_a = HttpBank::new(&bank_url, &seisan_bank::dev_token("exchange-a"));

    // A funds its trust account (S210); the validators attest it and the ledger credits it.
    bank_a
        .transfer(&TransferRequest {
            from: AccountId::operating("exchange-a"),
            to: AccountId::trust("exchange-a"),
            amount: Amount(200),
            reference: TransferReference("a-funds-trust-1".into()),
        })
        .unwrap();
    wait_until(PATIENCE, || {
        let balances: v1::Balances = try_get_typed(&format!("{a}/v1/members/exchange-a/balances"))?;
        Ok(balances
            .balances
            .iter()
            .any(|line| line.balance.inventory == Amount(200)))
    })
    .with_context(|| testnet.log_tail(1))
    .unwrap();

    // A first fill with the bank up: mirrored, confirmed on chain, reconcile clean.
    submit_ok(&testnet, &a, "exchange-b", eth_order(Side::Sell, 100));
    let first = submit_ok(&testnet, &a, "exchange-a", eth_order(Side::Buy, 100));
    wait_until(PATIENCE, || {
        confirmed_as_at_bank(&mirror_at(&ch, first)?, &house)
    })
    .with_context(|| format!("{:?}\n{}", mirror_at(&ch, first), testnet.log_tail(0)))
    .unwrap();
    wait_until(PATIENCE, || Ok(reconcile(&testnet, &ch).0 == 0))
        .with_context(|| reconcile(&testnet, &ch).1)
        .unwrap();

    let (before, before_blocks) = finalization_rate(&testnet.nodes[0], BASELINE);

    // Freeze the bank, then settle a second fill: the ledger settles without the bank.
    bank.signal("-STOP");
    let stopped = Instant::now();
    let height_at_stop = node_height(&testnet.nodes[0]).expect("node answers");
    submit_ok(&testnet, &a, "exchange-b", eth_order(Side::Sell, 60));
    let second = submit_ok(&testnet, &a, "exchange-a", eth_order(Side::Buy, 60));
    let record = mirror_at(&ch, second).unwrap();
    assert_eq!(record.record.amount, Amount(60), "{record:?}");
    let reference = record.record.reference.clone();
    assert_eq!(reference, format!("settle-{second}-exchange-a-exchange-b"));

    // Within the stop, the status, the metric and the mirror show it stalled.
    wait_until(STOP.saturating_sub(stopped.elapsed()), || {
        Ok(status_mirrors(&ch)?.stalled == 1)
    })
    .with_context(|| format!("{:?}", status_mirrors(&ch)))
    .unwrap();
    let mirrors = status_mirrors(&ch).unwrap();
    assert_eq!(
        mirrors.oldest_stalled_reference.as_deref(),
        Some(reference.as_str()),
        "{mirrors:?}"
    );
    assert_eq!(mirrors.oldest_stalled_height, Some(second), "{mirrors:?}");
    assert_eq!(metric(&ch, "seisan_mirror_stalled").unwrap(), Some(1.0));
    assert_eq!(mirror_at(&a, second).unwrap().state, MirrorState::Stalled);
    // The reconciliation waits for the frozen bank (its client's timeout) without
    // holding the node's commit lock: blocks keep being committed during the call.
    let call_started = Instant::now();
    let height_before_call = node_height(&testnet.nodes[0]).expect("node answers");
    let (code, text) = reconcile(&testnet, &ch);
    let call = call_started.elapsed();
    let blocks_during_call =
        node_height(&testnet.nodes[0]).expect("node answers") - height_before_call;
    println!(
        "seisan reconcile against the frozen bank took {call:.1?}; the node committed {blocks_during_call} blocks meanwhile"
    );
    if call >= Duration::from_secs(5) {
        assert!(
            blocks_during_call >= MIN_BLOCKS_DURING_CALL,
            "the node committed only {blocks_during_call} blocks during a {call:.1?} reconciliation"
        );
    }
    assert_ne!(
        code, 0,
        "reconcile is clean while the bank is frozen: {text}"
    );
    assert!(
        text.contains(&reference) && text.contains("stalled"),
        "reconcile does not name the stalled settlement: {text}"
    );
    println!("seisan reconcile during the stop (exit {code}): {text}");
    assert!(
        stopped.elapsed() < STOP,
        "the checks took longer than the stop itself"
    );
    std::thread::sleep(STOP.saturating_sub(stopped.elapsed()));
    let during_elapsed = stopped.elapsed();
    let height_at_cont = node_height(&testnet.nodes[0]).expect("node answers");
    let during_blocks = height_at_cont - height_at_stop;
    let during = during_blocks as f64 / during_elapsed.as_secs_f64();
    println!(
        "finalization: {before:.2} blocks/s before the stop ({before_blocks} blocks in {BASELINE:?}), \
         {during:.2} blocks/s during it ({during_blocks} blocks in {during_elapsed:.1?})"
    );
    assert!(
        during_blocks >= MIN_BLOCKS_DURING_STOP,
        "only {during_blocks} blocks finalized while the bank was frozen"
    );

    // Continued: the transfer is made, its confirmation reaches the chain, and
    // reconcile becomes clean, never before the confirmation is on chain.
    bank.signal("-CONT");
    let mut failures_after_cont = 0;
    wait_until(PATIENCE, || {
        let (code, _) = reconcile(&testnet, &ch);
        if code != 0 {
            failures_after_cont += 1;
            return Ok(false);
        }
        let mirror = mirror_at(&ch, second)?;
        assert!(
            confirmed_as_at_bank(&mirror, &house)?,
            "reconcile was clean before the mirror was confirmed on chain: {mirror:?}"
        );
        Ok(true)
    })
    .with_context(|| format!("{}\n{}", reconcile(&testnet, &ch).1, testnet.log_tail(0)))
    .unwrap();
    println!(
        "seisan reconcile failed {failures_after_cont} times after SIGCONT before it was clean"
    );
    let mirrors = status_mirrors(&ch).unwrap();
    assert_eq!(mirrors.stalled, 0, "{mirrors:?}");
    assert_eq!(mirrors.pending, 0, "{mirrors:?}");
    assert_eq!(metric(&ch, "seisan_mirror_stalled").unwrap(), Some(0.0));
    // Every validator holds the same confirmation.
    for node in &testnet.nodes {
        let mirror = mirror_at(&node.url(), second).unwrap();
        assert!(confirmed_as_at_bank(&mirror, &house).unwrap(), "{mirror:?}");
    }
    assert_eq!(
        house
            .balance(&AccountId::trust("exchange-a"))
            .unwrap()
            .balance,
        Amount(40)
    );
    assert_eq!(
        house
            .balance(&AccountId::trust("exchange-b"))
            .unwrap()
            .balance,
        Amount(160)
    );
}
