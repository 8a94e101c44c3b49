//! The daily compliance report end to end (issue 17, item 4): a real anvil, three
//! validators watching it and an observer, with hot and cold wallets holding exactly
//! what the customers deposited (plus a little gas money in hot).
//!
//! How a day ends in a test: the business day ends at the nodes' `--day-cutoff`
//! (`SEISAN_DAY_CUTOFF`, UTC). The testnet starts with a cut-off an hour ago (no day
//! ends while it is set up); once exchange-a's deposits are credited and swept to cold,
//! every validator restarts with a cut-off 25 seconds ahead, so the first block after it
//! makes each node record the ended day's snapshot.
//!
//! Checked: the ended day's report shows ETH and WBTC at or above 95% cold and no
//! breach; exchange-a's end-of-day statement verifies offline against genesis; an
//! observer that syncs afterwards computes the same report from its own store, and so
//! does the clearing house after a restart. Then, with the clearing house (the only
//! node that sweeps) stopped, a refill from cold pushes the ETH hot wallet over 5%:
//! today's report and `seisan_compliance_breach` name the breach; the clearing house
//! comes back, sweeps, and both show it cured. A second test does the same for an
//! exchange's trust account at the bank against its customers' fiat on the ledger.

use anyhow::Context;
use seisan_api::v1;
use seisan_tests::*;
use seisan_types::custody::{ChainAddress, PublicChainSettings, RegisteredAddress};
use seisan_types::{Amount, AssetKind, Height, Member, Role};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The keys of anvil's dev accounts 1 (hot) and 2 (cold).
const HOT_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const COLD_KEY: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
const HOT: usize = 1;
const COLD: usize = 2;
const EXCHANGE_A: usize = 3;
const ETHER: u128 = 1_000_000_000_000_000_000;
const WBTC: u128 = 100_000_000;
/// What the hot wallet starts with: gas for the sweeps, nobody's deposit.
const GAS_MONEY: u128 = ETHER / 20;
const PATIENT: Duration = Duration::from_secs(120);
const OBSERVER: &str = "auditor";

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

/// A UTC time of day `offset_s` seconds from now, as `--day-cutoff` takes it.
fn cutoff_in(offset_s: i64) -> String {
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let of_day = (now_s + offset_s).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

fn asset_line<'a>(
    report: &'a v1::ComplianceReport,
    symbol: &str,
) -> anyhow::Result<&'a v1::AssetLine> {
    report
        .assets
        .iter()
        .find(|line| line.symbol == symbol)
        .with_context(|| format!("no {symbol} line in {report:?}"))
}

fn cold_share_bps(report: &v1::ComplianceReport, symbol: &str) -> anyhow::Result<u64> {
    asset_line(report, symbol)?
        .cold_share_bps
        .with_context(|| format!("no {symbol} cold share in {report:?}"))
}

fn breaches(report: &v1::ComplianceReport) -> Vec<(String, String)> {
    report
        .breaches
        .iter()
        .map(|breach| (breach.rule.clone(), breach.subject.clone()))
        .collect()
}

fn today(node: &str) -> anyhow::Result<v1::ComplianceReport> {
    try_get_typed(&format!("{node}/v1/compliance/today"))
}

fn metrics(node: &str) -> anyhow::Result<String> {
    Ok(ureq::get(&format!("{node}/metrics"))
        .call()?
        .body_mut()
        .read_to_string()?)
}

/// `seisan ARGS` as the clearing house of `net` (the compliance reports are for
/// operators).
fn seisan(net: &Testnet, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(Command::new(seisan_binary())
        .args(args)
        .env("SEISAN_KEY", net.key_path("clearing-house"))
        .output()?)
}

#[test]
fn a_day_at_ninety_five_percent_cold_then_a_refill_breaches_and_the_sweep_cures(
) -> anyhow::Result<()> {
    let anvil = Anvil::start()?;
    let keys = tempfile::tempdir()?;
    let hot_key = write_key(keys.path(), "hot.key", HOT_KEY)?;
    let cold_key = write_key(keys.path(), "cold.key", COLD_KEY)?;
    // The wallets hold exactly what is needed: nothing but the hot wallet's gas money.
    for (account, balance) in [(HOT, GAS_MONEY), (COLD, 0)] {
        anvil.rpc(
            "anvil_setBalance",
            json!([ANVIL_ACCOUNTS[account], format!("{balance:#x}")]),
        )?;
    }
    std::env::set_var("SEISAN_ETH_RPC", &anvil.url);
    std::env::set_var("SEISAN_HOT_KEY", &hot_key);
    // No business day ends while the testnet is set up.
    std::env::set_var("SEISAN_DAY_CUTOFF", cutoff_in(-3_600));
    let token = anvil.token.clone();
    let observer_port = free_port();
    let mut net = Testnet::start_with(0, |genesis| {
        let address = |index: usize| ChainAddress(ANVIL_ACCOUNTS[index].into());
        genesis.public_chain = Some(PublicChainSettings {
            chain_id: 31337,
            confirmations: 2,
            hot_address: address(HOT),
            cold_address: address(COLD),
            registered_addresses: vec![RegisteredAddress {
                member: "exchange-a".into(),
                address: address(EXCHANGE_A),
            }],
            hot_cap_bps: 500,
        });
        genesis.assets.push(seisan_types::Asset {
            symbol: "WBTC".into(),
            kind: AssetKind::Token,
            scale: 8,
            contract: Some(token),
        });
        genesis.members.push(Member {
            name: OBSERVER.into(),
            role: Role::Observer,
            public_key: seisan_crypto::Keypair::dev(OBSERVER).public_key(),
            validator: false,
            p2p_address: Some(format!("/ip4/127.0.0.1/tcp/{observer_port}")),
        });
    })?;
    let genesis_path = net.genesis_path();
    let genesis_arg = genesis_path.to_str().context("a UTF-8 path")?.to_string();
    let ch = net.nodes[0].url();
    let a = net.nodes[1].url();

    // Exchange A deposits 10 ETH and 2 WBTC for its customers; the clearing house sweeps
    // all but 5% of custody to cold.
    anvil.send(EXCHANGE_A, ANVIL_ACCOUNTS[HOT], 10 * ETHER, "0x")?;
    anvil.send_token(EXCHANGE_A, HOT, 2 * WBTC)?;
    wait_until(PATIENT, || {
        let report = today(&a)?;
        Ok(["ETH", "WBTC"].iter().all(|symbol| {
            asset_line(&report, symbol).is_ok_and(|line| line.customer_holdings != Amount(0))
        }) && cold_share_bps(&report, "ETH")? >= 9_500
            && cold_share_bps(&report, "WBTC")? >= 9_500)
    })
    .with_context(|| format!("today: {:?}\n{}", today(&a), net.log_tail(0)))?;
    let report = today(&a)?;
    assert!(!report.is_final, "{report:?}");
    assert_eq!(
        asset_line(&report, "ETH")?.customer_holdings,
        Amount(10 * ETHER)
    );

    // The day ends 25 seconds from now on every validator (restarted with the cut-off).
    let cutoff = cutoff_in(25);
    std::env::set_var("SEISAN_DAY_CUTOFF", &cutoff);
    for index in 0..3 {
        net.launch(index)?;
    }
    net.wait_in_sync(&[0, 1, 2])?;
    let date = {
        let mut found = None;
        wait_until(PATIENT, || {
            let days: v1::ComplianceDays = try_get_typed(&format!("{a}/v1/compliance/days"))?;
            // The testnet's genesis time is in an earlier day, ended at height 0.
            found = days
                .days
                .last()
                .filter(|day| day.height > Height(0))
                .map(|day| day.date.clone());
            Ok(found.is_some() && days.cutoff == cutoff)
        })
        .with_context(|| format!("no day recorded\n{}", net.log_tail(1)))?;
        found.context("a recorded day")?
    };

    // The ended day's report: final, both assets at or above 95% cold, no breach.
    let out = keys.path().join("report.json");
    let output = seisan(
        &net,
        &[
            "compliance",
            "report",
            "--date",
            &date,
            "--node",
            &a,
            "--genesis",
            &genesis_arg,
            "--out",
            out.to_str().context("a UTF-8 path")?,
        ],
    )?;
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(table.contains("breaches: none"), "{table}");
    let day: v1::ComplianceReport = serde_json::from_str(&std::fs::read_to_string(&out)?)
        .context("the saved report is a compliance report")?;
    assert!(day.is_final, "{day:?}");
    assert_eq!(day.date, date);
    assert!(breaches(&day).is_empty(), "{day:?}");
    // Nothing is unverified either: no bank, but no customer fiat to hold in trust.
    assert!(day.compliant, "{day:?}");
    for symbol in ["ETH", "WBTC"] {
        let share = cold_share_bps(&day, symbol)?;
        assert!(share >= 9_500, "{symbol} {share} bps cold: {day:?}");
        assert!(
            asset_line(&day, symbol)?
                .coverage_bps
                .is_some_and(|coverage| coverage >= 10_000),
            "{day:?}"
        );
    }
    // The day's last block is before the cut-off, the public-chain block no later.
    assert!(day.block_timestamp_ms < day.day_end_ms);
    assert!(day.public_chain_block_time_s.context("chain time")? * 1000 <= day.block_timestamp_ms);
    let height = day.height.0;

    // Exchange A's end-of-day statement verifies offline against genesis, at that height
    // (the chain has moved on since).
    let statement_file = keys.path().join("statement.json");
    let output = seisan(
        &net,
        &[
            "compliance",
            "statement",
            "--date",
            &date,
            "--member",
            "exchange-a",
            "--node",
            &a,
            "--genesis",
            &genesis_arg,
            "--out",
            statement_file.to_str().context("a UTF-8 path")?,
        ],
    )?;
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains(&format!("verified against genesis at height {height}")),
        "{printed}"
    );
    assert!(
        printed
            .lines()
            .any(|line| line.starts_with("ETH") && line.split_whitespace().nth(1) == Some("10")),
        "exchange-a's 10 ETH: {printed}"
    );
    // The saved statement verifies with no node; a changed balance does not.
    let offline = |file: &Path| {
        seisan(
            &net,
            &[
                "compliance",
                "statement",
                "--file",
                file.to_str().expect("a UTF-8 path"),
                "--genesis",
                &genesis_arg,
                "--node",
                "http://127.0.0.1:9",
            ],
        )
    };
    assert!(offline(&statement_file)?.status.success());
    let mut tampered: Value = serde_json::from_str(&std::fs::read_to_string(&statement_file)?)?;
    let eth = tampered["balances"]
        .as_array_mut()
        .context("balances")?
        .iter_mut()
        .find(|entry| entry["symbol"] == "ETH")
        .context("an ETH entry")?;
    let value = eth["value"].as_str().context("an ETH balance")?.to_string();
    // The balance's encoding changed in its last byte: no longer what the proof proves.
    let last = u8::from_str_radix(&value[value.len() - 2..], 16)?;
    eth["value"] = json!(format!("{}{:02x}", &value[..value.len() - 2], last ^ 1));
    let tampered_file = keys.path().join("tampered.json");
    std::fs::write(&tampered_file, tampered.to_string())?;
    let refused = offline(&tampered_file)?;
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("statement REFUSED"),
        "{refused:?}"
    );
    net.wait_for_height(&[1], height + 3)?;
    let output = seisan(&net, &["compliance", "days", "--node", &a, "--json"])?;
    let listed: v1::ComplianceDays = serde_json::from_slice(&output.stdout)
        .context("`compliance days --json` prints the node's list")?;
    assert_eq!(
        listed.days.last().map(|day| day.height),
        Some(Height(height))
    );

    // An observer that syncs from genesis now records the same day from its own store.
    let observer = net.add_node(OBSERVER)?;
    let observer_url = net.nodes[observer].url();
    let tip = net.highest(&[1]).context("a height")?;
    net.wait_for_height(&[observer], tip)?;
    let observed: v1::ComplianceReport = get_typed(&format!("{observer_url}/v1/compliance/{date}"));
    assert_eq!(observed, day, "the observer's report differs");

    // With the clearing house (the only node that sweeps) stopped, a refill of 1 ETH
    // from cold pushes the hot wallet over 5%.
    net.nodes[0].kill();
    let refill = Command::new(seisan_binary())
        .args(["custody", "refill", "--genesis", &genesis_arg])
        .args(["--eth-rpc", &anvil.url, "--cold-key"])
        .arg(&cold_key)
        .args(["--asset", "ETH", "--amount", "1"])
        .output()?;
    assert!(refill.status.success(), "{refill:?}");
    let breach_line = "seisan_compliance_breach{rule=\"cold_share\",subject=\"ETH\"} 1";
    wait_until(PATIENT, || {
        Ok(
            breaches(&today(&a)?).contains(&("cold_share".into(), "ETH".into()))
                && metrics(&a)?.contains(breach_line),
        )
    })
    .with_context(|| format!("no breach: {:?}\n{}", today(&a), net.log_tail(1)))?;
    let breached = today(&a)?;
    assert!(cold_share_bps(&breached, "ETH")? < 9_500, "{breached:?}");
    assert!(!breached.compliant);
    let output = seisan(
        &net,
        &["compliance", "report", "--date", "today", "--node", &a],
    )?;
    assert!(
        !output.status.success(),
        "a breach exits non-zero: {output:?}"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("BREACH cold_share ETH"),
        "{output:?}"
    );

    // The clearing house comes back: its day record survived the restart, and its
    // next sweep cures the breach.
    net.launch(0)?;
    wait_until(PATIENT, || {
        Ok(get(&format!("{ch}/v1/compliance/{date}")).is_ok_and(|(code, _)| code == 200))
    })?;
    let restarted: v1::ComplianceReport = get_typed(&format!("{ch}/v1/compliance/{date}"));
    assert_eq!(
        restarted, day,
        "the clearing house's report after its restart"
    );
    let cured_line = "seisan_compliance_breach{rule=\"cold_share\",subject=\"ETH\"} 0";
    wait_until(PATIENT, || {
        Ok(breaches(&today(&a)?).is_empty() && metrics(&a)?.contains(cured_line))
    })
    .with_context(|| format!("not cured: {:?}\n{}", today(&a), net.log_tail(0)))?;
    let cured = today(&a)?;
    assert!(cold_share_bps(&cured, "ETH")? >= 9_500, "{cured:?}");
    drop(net);
    Ok(())
}

fn fiat_line<'a>(
    report: &'a v1::ComplianceReport,
    member: &str,
) -> anyhow::Result<&'a v1::FiatLine> {
    report
        .fiat
        .iter()
        .find(|line| line.member == member && line.currency == "JPY")
        .with_context(|| format!("no {member}/JPY line in {report:?}"))
}

/// Per exchange and currency, the customer fiat on the ledger against the trust account
/// at the bank (read with the validators' auditor tokens): 50 yen leave exchange-a's
/// trust account at the bank with no withdrawal on the ledger. The ended day's report
/// names the shortfall with the trust balance as of the day's last block (from the
/// bank's statement), although 100 more yen arrive after it; today's report and the
/// metric name it too.
/// With the bank frozen (SIGSTOP), the report answers within one timeout, says the trust
/// balance is unverified and why, and the chain finalizes meanwhile; thawed, it reads again.
#[test]
fn a_trust_account_short_of_its_customers_fiat_is_named() -> anyhow::Result<()> {
    use seisan_bank::{AccountId, BankAdapter, HttpBank, TransferReference, TransferRequest};
    use v1::TrustReading;
    std::env::set_var("SEISAN_DAY_CUTOFF", cutoff_in(-3_600));
    let bank_port = free_port();
    let mut net = Testnet::start(0)?;
    let bank = start_bank(net.dir.path(), None, bank_port)?;
    let bank_url = format!("http://127.0.0.1:{bank_port}");
    let with_bank = |net: &mut Testnet| -> anyhow::Result<()> {
        for index in 0..3 {
            let name = net.nodes[index].name.clone();
            net.nodes[index].extra_args = net.bank_flags(&bank_url, &name, true);
            net.launch(index)?;
        }
        net.wait_in_sync(&[0, 1, 2])
    };
    with_bank(&mut net)?;
    let a = net.nodes[1].url();
    let bank_a = HttpBank::new(&bank_url, &seisan_bank::dev_token("exchange-a"));
    let house = HttpBank::new(&bank_url, &seisan_bank::dev_token("clearing-house"));
    let fund = |amount: u128, reference: &str| {
        bank_a.transfer(&TransferRequest {
            from: AccountId::operating("exchange-a"),
            to: AccountId::trust("exchange-a"),
            amount: Amount(amount),
            reference: TransferReference(reference.into()),
        })
    };
    let owed = |report: &v1::ComplianceReport| -> anyhow::Result<Amount> {
        Ok(fiat_line(report, "exchange-a")?.owed)
    };

    // exchange-a funds its trust account with 200 yen; the ledger credits them.
    fund(200, "a-funds-trust-1")?;
    wait_until(PATIENT, || Ok(owed(&today(&a)?)? == Amount(200)))
        .with_context(|| format!("{:?}\n{}", today(&a), net.log_tail(1)))?;
    let report = today(&a)?;
    let line = fiat_line(&report, "exchange-a")?;
    assert_eq!(
        line.trust,
        TrustReading::Read {
            balance: Amount(200)
        },
        "{report:?}"
    );
    assert_eq!(line.coverage_bps, Some(10_000));
    assert!(breaches(&report).is_empty(), "{report:?}");

    // 50 yen leave the trust account at the bank; the ledger still owes 200.
    house.transfer(&TransferRequest {
        from: AccountId::trust("exchange-a"),
        to: AccountId::operating("exchange-a"),
        amount: Amount(50),
        reference: TransferReference("trust-leak-1".into()),
    })?;
    let shortfall = ("trust_shortfall".to_string(), "exchange-a/JPY".to_string());
    wait_until(PATIENT, || {
        Ok(breaches(&today(&a)?).contains(&shortfall)
            && metrics(&a)?.contains(
                "seisan_compliance_breach{rule=\"trust_shortfall\",subject=\"JPY\"} 1",
            )
            // The public metrics say a JPY trust account is short, not whose.
            && !metrics(&a)?.contains("exchange-a/JPY"))
    })
    .with_context(|| format!("{:?}", today(&a)))?;

    // The day ends 20 seconds from now; then 100 more yen arrive.
    let cutoff = cutoff_in(20);
    std::env::set_var("SEISAN_DAY_CUTOFF", &cutoff);
    with_bank(&mut net)?;
    let mut date = String::new();
    wait_until(PATIENT, || {
        let days: v1::ComplianceDays = try_get_typed(&format!("{a}/v1/compliance/days"))?;
        if let Some(day) = days.days.last().filter(|day| day.height > Height(0)) {
            date = day.date.clone();
        }
        Ok(!date.is_empty() && days.cutoff == cutoff)
    })?;
    fund(100, "a-funds-trust-2")?;
    wait_until(PATIENT, || Ok(owed(&today(&a)?)? == Amount(300)))?;
    assert_eq!(
        bank_a.balance(&AccountId::trust("exchange-a"))?.balance,
        Amount(250)
    );
    let day: v1::ComplianceReport = get_typed(&format!("{a}/v1/compliance/{date}"));
    assert!(day.is_final);
    let line = fiat_line(&day, "exchange-a")?;
    assert_eq!(line.owed, Amount(200), "{day:?}");
    assert_eq!(
        line.trust,
        TrustReading::Read {
            balance: Amount(150)
        },
        "the trust balance as of the day's last block: {day:?}"
    );
    assert_eq!(line.coverage_bps, Some(7_500));
    assert_eq!(breaches(&day), vec![shortfall.clone()], "{day:?}");
    assert!(
        day.breaches
            .first()
            .is_some_and(|breach| breach.detail.contains("150") && breach.detail.contains("200")),
        "{day:?}"
    );
    let output = seisan(
        &net,
        &["compliance", "report", "--date", &date, "--node", &a],
    )?;
    assert!(!output.status.success());
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("BREACH trust_shortfall exchange-a/JPY"),
        "{table}"
    );
    let today_line = today(&a)?;
    assert_eq!(
        fiat_line(&today_line, "exchange-a")?.trust,
        TrustReading::Read {
            balance: Amount(250)
        }
    );

    // A frozen bank (SIGSTOP): the report still answers, within the bank client's one
    // timeout, saying the trust balance could not be read and why, and the chain keeps
    // finalizing meanwhile (no lock is held across the bank call). Thawed, it reads again.
    let before = node_height(&net.nodes[1]).context("exchange-a's height")?;
    bank.signal("-STOP");
    let today_url = format!("{a}/v1/compliance/today");
    let (code, frozen) = get_within(&today_url, std::time::Duration::from_secs(40))?;
    let after = node_height(&net.nodes[1]).context("exchange-a's height")?;
    bank.signal("-CONT");
    assert_eq!(code, 200, "{frozen}");
    let frozen: v1::ComplianceReport = parse("GET", &today_url, frozen);
    let line = fiat_line(&frozen, "exchange-a")?;
    assert!(
        matches!(line.trust, TrustReading::Failed { .. }),
        "{frozen:?}"
    );
    assert!(
        frozen
            .unverified
            .iter()
            .any(|note| note.contains("the bank did not answer")),
        "the report says the trust balance is unverified: {frozen:?}"
    );
    assert!(
        after >= before + 3,
        "the chain stood still while the report waited for the frozen bank: {before} -> {after}"
    );
    wait_until(PATIENT, || {
        Ok(matches!(
            fiat_line(&today(&a)?, "exchange-a")?.trust,
            TrustReading::Read { .. }
        ))
    })
    .context("the thawed bank is read again")?;
    drop(net);
    Ok(())
}
