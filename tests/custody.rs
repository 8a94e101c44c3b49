//! Custody end to end: a real anvil (installed from npm by `scripts/anvil.sh` when
//! missing) with the WBTC token deployed, and three real nodes watching it.
//!
//! A deposit reorganised away one block deep (K = 2) is never attested. Exchange A
//! deposits ETH and WBTC from its registered address; all three nodes attest and A is
//! credited exactly once; a deposit from an unregistered address is not
//! credited; the WBTC deposit cures A's parked sell order, which fills against B's
//! bid; A withdraws ETH to its registered address and it arrives on anvil; the
//! clearing-house node is killed while paying a second withdrawal (and a third, whose
//! `seisan withdraw --wait-paid` waits across the restart) and pays it exactly
//! once after restart; reserves cover the ledger with the hot share under the cap after
//! the sweeps; `seisan custody refill` moves WBTC from cold to hot without crediting
//! anybody.

use anyhow::{bail, Context};
use seisan_api::v1;
use seisan_tests::*;
use seisan_types::clearing::{OrderRequest, Pair, Side, TimeInForce};
use seisan_types::custody::{
    ChainAddress, DepositOutcome, DepositRecord, PublicChainSettings, RegisteredAddress,
    Withdrawal, WithdrawalId, WithdrawalStatus,
};
use seisan_types::genesis::{OpeningBalance, PairSpec};
use seisan_types::receipt::Event;
use seisan_types::tx::TxBody;
use seisan_types::{Amount, AssetId, AssetKind};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The keys of anvil's dev accounts 1 (hot) and 2 (cold).
const HOT_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const COLD_KEY: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
const HOT: usize = 1;
const COLD: usize = 2;
const EXCHANGE_A: usize = 3;
const OUTSIDER: usize = 5;
const ETHER: u128 = 1_000_000_000_000_000_000;
const WBTC: u128 = 100_000_000;
const ETH_ID: AssetId = AssetId(0);
const JPY_ID: AssetId = AssetId(1);
const WBTC_ID: AssetId = AssetId(2);
const PATIENT: Duration = Duration::from_secs(120);

fn write_key(dir: &Path, name: &str, key: &str) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    writeln!(file, "{key}")?;
    Ok(path)
}

fn inventory(node: &str, member: &str, asset: AssetId) -> anyhow::Result<u128> {
    let balances: v1::Balances = try_get_typed(&format!("{node}/v1/members/{member}/balances"))?;
    Ok(balances
        .balances
        .iter()
        .find(|line| line.asset == asset)
        .map_or(0, |line| line.balance.inventory.0))
}

fn deposits(node: &str) -> anyhow::Result<Vec<DepositRecord>> {
    Ok(try_get_typed::<v1::Deposits>(&format!("{node}/v1/deposits"))?.deposits)
}

fn withdrawal(node: &str, id: u64) -> anyhow::Result<Option<Withdrawal>> {
    let list: v1::Withdrawals = try_get_typed(&format!("{node}/v1/withdrawals"))?;
    Ok(list
        .withdrawals
        .into_iter()
        .find(|withdrawal| withdrawal.id == WithdrawalId(id)))
}

/// Whether withdrawal `id` is completed (q members attested its payout).
fn completed(node: &str, id: u64) -> anyhow::Result<bool> {
    Ok(withdrawal(node, id)?
        .is_some_and(|withdrawal| matches!(withdrawal.status, WithdrawalStatus::Completed { .. })))
}

/// Submits a transaction of `member` at its next nonce and waits until it is final.
fn transact(
    node: &str,
    genesis: &seisan_types::Genesis,
    member: &str,
    body: TxBody,
) -> anyhow::Result<v1::TransactionStatus> {
    let nonce: v1::NonceInfo = try_get_typed(&format!("{node}/v1/members/{member}/nonce"))?;
    let signed = sign(genesis, member, nonce.next.0, body);
    let answer = submit(node, &signed)?;
    if answer.code != 202 {
        bail!("submit answered {answer}");
    }
    let receipt = wait_finalized(node, &signed.id())?;
    Ok(receipt)
}

#[test]
fn deposits_withdrawals_sweeps_and_reserves_on_anvil() -> anyhow::Result<()> {
    let anvil = Anvil::start()?;
    let keys = tempfile::tempdir()?;
    let hot_key = write_key(keys.path(), "hot.key", HOT_KEY)?;
    let cold_key = write_key(keys.path(), "cold.key", COLD_KEY)?;
    // The nodes inherit these: every node watches anvil, the clearing house pays.
    std::env::set_var("SEISAN_ETH_RPC", &anvil.url);
    std::env::set_var("SEISAN_HOT_KEY", &hot_key);
    let token = anvil.token.clone();
    let mut net = Testnet::start_with(0, |genesis| {
        let address = |index: usize| ChainAddress(ANVIL_ACCOUNTS[index].into());
        genesis.public_chain = Some(PublicChainSettings {
            chain_id: 31337,
            confirmations: 2,
            hot_address: address(HOT),
            cold_address: address(COLD),
            registered_addresses: vec![
                RegisteredAddress {
                    member: "exchange-a".into(),
                    address: address(EXCHANGE_A),
                },
                RegisteredAddress {
                    member: "exchange-b".into(),
                    address: address(4),
                },
            ],
            hot_cap_bps: 500,
        });
        genesis.assets.push(seisan_types::Asset {
            symbol: "WBTC".into(),
            kind: AssetKind::Token,
            scale: 8,
            contract: Some(token),
        });
        genesis.pairs.push(PairSpec {
            base: "WBTC".into(),
            quote: "JPY".into(),
        });
        genesis.opening_balances.push(OpeningBalance {
            member: "exchange-b".into(),
            asset: "JPY".into(),
            amount: "1000000".into(),
        });
    })?;
    let genesis = net.genesis.clone();
    let a = net.nodes[1].url();
    let b = net.nodes[2].url();
    let pair = Pair {
        base: WBTC_ID,
        quote: JPY_ID,
    };
    let order = |side| {
        TxBody::PlaceOrder(OrderRequest {
            pair,
            side,
            quantity: Amount(WBTC),
            limit_price: Amount(500_000),
            time_in_force: TimeInForce::GoodTillCancel,
            expires_at_ms: None,
        })
    };

    // A deposit that is reorganised away before K confirmations is never attested:
    // mine it one block deep, revert the chain to before it, then go on mining.
    anvil.rpc("evm_setIntervalMining", json!([0]))?;
    let snapshot = anvil.rpc("evm_snapshot", json!([]))?;
    let vanishing = anvil.rpc(
        "eth_sendTransaction",
        json!([{"from": ANVIL_ACCOUNTS[EXCHANGE_A], "to": ANVIL_ACCOUNTS[HOT], "value": format!("{:#x}", ETHER / 4)}]),
    )?;
    anvil.rpc("evm_mine", json!([]))?;
    assert!(!anvil
        .rpc("eth_getTransactionReceipt", json!([vanishing]))?
        .is_null());
    assert_eq!(anvil.rpc("evm_revert", json!([snapshot]))?, json!(true));
    assert!(anvil
        .rpc("eth_getTransactionReceipt", json!([vanishing]))?
        .is_null());
    anvil.rpc("evm_setIntervalMining", json!([1]))?;

    // A sells a WBTC it does not hold yet: parked awaiting a top-up; B bids.
    let parked = transact(&a, &genesis, "exchange-a", order(Side::Sell))?;
    assert!(
        receipt(&parked)
            .events
            .iter()
            .any(|event| matches!(event, Event::OrderParked { .. })),
        "{parked:?}"
    );
    transact(&b, &genesis, "exchange-b", order(Side::Buy))?;

    // Deposits: A's registered address sends 1 ETH and 2 WBTC; an outsider 0.5 ETH.
    let hot = ANVIL_ACCOUNTS[HOT];
    anvil.send(EXCHANGE_A, hot, ETHER, "0x")?;
    anvil.send_token(EXCHANGE_A, HOT, 2 * WBTC)?;
    let outsider = anvil.send(OUTSIDER, hot, ETHER / 2, "0x")?;

    // All three nodes attest each deposit; each is settled once.
    wait_until(PATIENT, || {
        let list = deposits(&a)?;
        Ok(list.len() == 3
            && list.iter().all(|record| {
                record.attestations.len() == 1 && record.attestations[0].1.len() == 3
            }))
    })
    .with_context(|| format!("deposits: {:?}\n{}", deposits(&a), net.log_tail(0)))?;
    let list = deposits(&a)?;
    let unregistered = list
        .iter()
        .filter(|record| matches!(record.outcome, Some((_, DepositOutcome::Unregistered))))
        .count();
    assert_eq!(unregistered, 1, "{list:?}");
    assert!(
        !list.iter().any(|record| record
            .attestations
            .first()
            .is_some_and(|(fact, _)| Some(fact.tx_hash.0.as_str()) == vanishing.as_str())),
        "the reorganised deposit was attested: {list:?}"
    );
    assert_eq!(
        inventory(&a, "exchange-a", ETH_ID)?,
        ETHER,
        "credited exactly once"
    );
    // Paging: two and then the third, by the cursor the first page names.
    let first: v1::Deposits = get_typed(&format!("{a}/v1/deposits?limit=2"));
    let cursor = first
        .next_after
        .as_deref()
        .context("a full page names its cursor")?;
    let rest: v1::Deposits = get_typed(&format!("{a}/v1/deposits?after={cursor}"));
    let mut paged = first.deposits.clone();
    paged.extend(rest.deposits.iter().cloned());
    assert_eq!(paged, list, "two pages hold every deposit once");
    assert!(rest.next_after.is_none(), "{rest:?}");
    let error = get_reply::<v1::Deposits>(&format!("{a}/v1/deposits?after=nonsense"))?;
    assert_eq!(
        (error.code, error.error_code()),
        (400, Some("bad_deposit_id")),
        "{error}"
    );
    // The WBTC deposit cured the parked sell, which filled against B's bid.
    wait_until(PATIENT, || {
        Ok(inventory(&a, "exchange-a", JPY_ID)? == 500_000)
    })?;
    assert_eq!(inventory(&a, "exchange-a", WBTC_ID)?, WBTC);
    assert_eq!(inventory(&a, "exchange-b", WBTC_ID)?, WBTC);
    for member in ["clearing-house", "exchange-b"] {
        assert_eq!(inventory(&a, member, ETH_ID)?, 0, "{member} got nothing");
    }

    // Withdrawal 1 arrives at A's registered address.
    let before = anvil.eth_balance(EXCHANGE_A)?;
    let to = ChainAddress(ANVIL_ACCOUNTS[EXCHANGE_A].into());
    transact(
        &a,
        &genesis,
        "exchange-a",
        TxBody::Withdraw {
            asset: ETH_ID,
            amount: Amount(ETHER / 5 * 2),
            to: to.clone(),
        },
    )?;
    assert_eq!(inventory(&a, "exchange-a", ETH_ID)?, ETHER / 5 * 3);
    wait_until(PATIENT, || completed(&a, 1))
        .with_context(|| format!("withdrawal 1: {:?}\n{}", withdrawal(&a, 1), net.log_tail(0)))?;
    assert_eq!(anvil.eth_balance(EXCHANGE_A)? - before, ETHER / 5 * 2);

    // Withdrawal 2: kill the clearing house as soon as it journals the payout.
    let before = anvil.eth_balance(EXCHANGE_A)?;
    transact(
        &a,
        &genesis,
        "exchange-a",
        TxBody::Withdraw {
            asset: ETH_ID,
            amount: Amount(ETHER / 10 * 3),
            to,
        },
    )?;
    let journal = net.nodes[0]
        .data
        .join("custody-journal")
        .join("withdrawal-2.json");
    wait_until(PATIENT, || Ok(journal.exists()))?;
    // The deposit scan resumes where it was, not from block 0: every deposit so far is
    // attested on the ledger, so the kept cursor is past their blocks.
    let cursor: u64 = std::fs::read_to_string(net.nodes[0].data.join("custody-scan-cursor"))?
        .trim()
        .parse()?;
    let deposit_block = anvil.rpc("eth_getTransactionReceipt", json!([outsider]))?["blockNumber"]
        .as_str()
        .and_then(|hex| u64::from_str_radix(hex.trim_start_matches("0x"), 16).ok())
        .context("the outsider deposit's block")?;
    assert!(cursor > deposit_block, "cursor {cursor} <= {deposit_block}");
    net.nodes[0].kill();
    net.launch(0)?;
    wait_until(PATIENT, || completed(&a, 2))
        .with_context(|| format!("withdrawal 2: {:?}\n{}", withdrawal(&a, 2), net.log_tail(0)))?;
    // Let a few more blocks pass: a second payout would show up by now.
    anvil.let_blocks_pass()?;
    assert_eq!(
        anvil.eth_balance(EXCHANGE_A)? - before,
        ETHER / 10 * 3,
        "paid exactly once across the restart"
    );

    // Withdrawal 3 through the CLI with --wait-paid, on exchange-a's node, while the
    // paying clearing house is killed as soon as it journals the payout and restarted:
    // the CLI keeps waiting, then says the payout is attested, and it is paid once.
    // (0.01 ETH: within what the hot wallet keeps under its cap once swept.)
    let before = anvil.eth_balance(EXCHANGE_A)?;
    let waiting = Command::new(seisan_binary())
        .args([
            "withdraw",
            "ETH",
            "0.01",
            "--wait-paid",
            "--node",
            &a,
            "--genesis",
        ])
        .arg(net.genesis_path())
        .arg("--key")
        .arg(net.key_path("exchange-a"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let journal = net.nodes[0]
        .data
        .join("custody-journal")
        .join("withdrawal-3.json");
    wait_until(PATIENT, || Ok(journal.exists()))?;
    net.nodes[0].kill();
    net.launch(0)?;
    let waited = waiting.wait_with_output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&waited.stdout),
        String::from_utf8_lossy(&waited.stderr)
    );
    assert!(
        waited.status.success(),
        "seisan withdraw --wait-paid: {said}"
    );
    assert!(
        said.contains("withdrawal 3 paid on the public chain")
            && said.contains("attested by a quorum"),
        "{said}"
    );
    anvil.let_blocks_pass()?;
    assert_eq!(
        anvil.eth_balance(EXCHANGE_A)? - before,
        ETHER / 100,
        "paid exactly once while the CLI waited across the payer's restart"
    );

    // Reserves: covered, and after the sweeps the hot share is under the 5% cap.
    let ch = net.nodes[0].url();
    wait_until(PATIENT, || {
        let reserves: v1::Reserves = try_get_typed(&format!("{ch}/v1/reserves"))?;
        Ok(reserves.status == v1::ReservesStatus::Covered
            && reserves.assets.len() == 2
            && reserves
                .assets
                .iter()
                .all(|line| line.hot_share_bps.is_some_and(|share| share <= 500)))
    })
    .with_context(|| format!("reserves: {:?}", get(&format!("{ch}/v1/reserves"))))?;
    let node_status = status(&ch)?;
    assert_eq!(
        node_status.custody_undercovered,
        Some(false),
        "{node_status:?}"
    );
    let metrics = ureq::get(&format!("{ch}/metrics"))
        .call()?
        .body_mut()
        .read_to_string()?;
    assert!(
        metrics.contains("seisan_custody_undercovered 0"),
        "{metrics}"
    );
    let output = Command::new(seisan_binary())
        .args(["reserves", "--json", "--node", &ch, "--genesis"])
        .arg(net.genesis_path())
        .arg("--key")
        .arg(net.key_path("clearing-house"))
        .output()?;
    assert!(output.status.success(), "{output:?}");
    // `--json` prints the node's reserves document.
    let report: v1::Reserves = serde_json::from_slice(&output.stdout)?;
    for line in &report.assets {
        let coverage = line.coverage_bps.context("a coverage")?;
        assert!(coverage >= 10_000, "{line:?}");
    }

    // A clearing house restored from nothing (data and payout journal wiped) replays the
    // chain, where withdrawals 1 and 2 stand pending for a while; it pays nothing again.
    let before = anvil.eth_balance(EXCHANGE_A)?;
    let tip = status(&b)?.height;
    net.wipe(0)?;
    net.launch(0)?;
    net.wait_for_height(&[0], tip)?;
    anvil.let_blocks_pass()?;
    assert_eq!(
        anvil.eth_balance(EXCHANGE_A)?,
        before,
        "a replaying clearing house paid a withdrawal again"
    );

    // Refill 0.5 WBTC from cold: an internal move, credited to nobody.
    let refill = Command::new(seisan_binary())
        .args(["custody", "refill", "--genesis"])
        .arg(net.genesis_path())
        .args(["--eth-rpc", &anvil.url, "--cold-key"])
        .arg(&cold_key)
        .args(["--asset", "WBTC", "--amount", "0.5"])
        .output()?;
    assert!(refill.status.success(), "{refill:?}");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(deposits(&a)?.len(), 3, "a refill is not a deposit");
    assert_eq!(inventory(&a, "exchange-a", WBTC_ID)?, WBTC);
    drop(net);
    Ok(())
}
