//! Netting anyone can recompute (issue 17, item 3), with real `seisan` processes: three
//! validators and a third exchange (bench-0) trade in a ring, exchange-a -> exchange-b
//! -> bench-0 -> exchange-a, one ETH each way at 100, 110 and 120 JPY, each trade
//! confirmed by both sides with `seisan confirm`; the clearing house closes the cycle.
//! `seisan cycle verify 1` fetches the cycle's certificate, checks every signature,
//! inclusion and quorum certificate against the genesis file, recomputes the netting
//! and finds what the chain settled (around the ring the ETH nets to nothing;
//! exchange-a pays 20 JPY, exchange-b and bench-0 receive 10 each). The saved
//! certificate verifies again with no node at all; with one confirmation altered (its
//! quantity, or its signature) it fails, naming the confirmation, with a non-zero exit.
//! Then exchange-a's node goes down and exchange-b's is wiped and resynced from the
//! clearing house alone: it serves the same cycle and confirmations, and they verify.

use seisan_api::v1;
use seisan_tests::*;
use seisan_types::genesis::{Genesis, OpeningBalance};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", self.stdout))
    }

    /// Failed with one line on stderr, `error: ...` containing `needle`.
    fn fails_with(self, needle: &str) -> Run {
        assert_ne!(self.code, 0, "succeeded:\n{}", self.stdout);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "not one line: {:?}", self.stderr);
        assert!(lines[0].starts_with("error: "), "{}", lines[0]);
        assert!(lines[0].contains(needle), "{:?} lacks {needle:?}", lines[0]);
        self
    }
}

/// `seisan ARGS` with the node, genesis and key from the environment, as a user runs it.
fn seisan(testnet: &Testnet, node: &str, member: Option<&str>, args: &[&str]) -> Run {
    let mut command = Command::new(seisan_binary());
    command
        .args(args)
        .env("SEISAN_NODE", node)
        .env("SEISAN_GENESIS", testnet.genesis_path())
        .env_remove("SEISAN_CONFIG")
        .env_remove("SEISAN_KEY")
        .env("HOME", testnet.dir.path())
        .stdin(Stdio::null());
    if let Some(member) = member {
        command.env("SEISAN_KEY", testnet.key_path(member));
    }
    let output = command.output().expect("running seisan");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn funded(genesis: &mut Genesis) {
    for member in ["exchange-a", "exchange-b", "bench-0"] {
        for (asset, amount) in [("JPY", "1000"), ("ETH", "2")] {
            genesis.opening_balances.push(OpeningBalance {
                member: member.into(),
                asset: asset.into(),
                amount: amount.into(),
            });
        }
    }
}

/// The first value at `key` anywhere inside `value`.
fn find_mut<'v>(value: &'v mut Value, key: &str) -> Option<&'v mut Value> {
    match value {
        Value::Object(map) => {
            if map.contains_key(key) {
                return map.get_mut(key);
            }
            map.values_mut().find_map(|inner| find_mut(inner, key))
        }
        Value::Array(items) => items.iter_mut().find_map(|inner| find_mut(inner, key)),
        _ => None,
    }
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

#[test]
fn a_ring_cycle_verifies_and_an_altered_confirmation_fails() {
    let testnet = Testnet::start_with(1, funded).expect("testnet starts");
    let node = testnet.nodes[0].url();
    let ring = [
        ("R-1", "exchange-a", "exchange-b", "100"),
        ("R-2", "exchange-b", "bench-0", "110"),
        ("R-3", "bench-0", "exchange-a", "120"),
    ];
    for (trade_ref, seller, buyer, price) in ring {
        for member in [seller, buyer] {
            seisan(
                &testnet,
                &node,
                Some(member),
                &[
                    "confirm",
                    "--ref",
                    trade_ref,
                    "--buyer",
                    buyer,
                    "--seller",
                    seller,
                    "--pair",
                    "ETH/JPY",
                    "--qty",
                    "1",
                    "--price",
                    price,
                    "--time",
                    "2026-01-01T09:00:00Z",
                ],
            )
            .ok();
        }
    }
    let closed = seisan(&testnet, &node, Some("clearing-house"), &["cycle", "close"]).ok();
    assert!(
        closed
            .stdout
            .contains("cycle 1 closed with 3 matched confirmations"),
        "{}",
        closed.stdout
    );

    // Fetched from the node, verified here against the genesis file, saved.
    let saved = testnet.dir.path().join("cycle-1.json");
    let saved_arg = saved.to_str().unwrap();
    // Cycle certificates are for operators (they hold every member's confirmations).
    let run = seisan(
        &testnet,
        &node,
        Some("clearing-house"),
        &["cycle", "verify", "1", "--out", saved_arg],
    )
    .ok();
    assert!(
        run.stdout
            .contains("cycle 1 VERIFIED: the chain settled the netting recomputed here"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("3 confirmations, each signed by both sides"),
        "{}",
        run.stdout
    );

    // The same with no node at all (the node address points nowhere).
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let offline = seisan(
        &testnet,
        &nowhere,
        None,
        &["cycle", "verify", "--file", saved_arg, "--json"],
    )
    .ok()
    .json();
    assert_eq!(offline["verified"], true, "{offline}");
    assert_eq!(offline["trades"].as_array().unwrap().len(), 3);
    assert_eq!(offline["differences"].as_array().unwrap().len(), 0);
    let member_id = |name: &str| testnet.genesis.member_by_name(name).unwrap().0 .0;
    let jpy = testnet.genesis.asset_by_symbol("JPY").unwrap().0 .0;
    let positions: Vec<(u64, u64, String, String)> = offline["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|position| {
            (
                position["member"].as_u64().unwrap(),
                position["asset"].as_u64().unwrap(),
                position["receive"].to_string().replace('"', ""),
                position["pay"].to_string().replace('"', ""),
            )
        })
        .collect();
    let expected: Vec<(u64, u64, String, String)> = [
        ("exchange-a", "0", "20"),
        ("exchange-b", "10", "0"),
        ("bench-0", "10", "0"),
    ]
    .iter()
    .map(|(name, receive, pay)| {
        (
            member_id(name) as u64,
            jpy as u64,
            receive.to_string(),
            pay.to_string(),
        )
    })
    .collect();
    assert_eq!(positions, expected, "{offline}");
    // `seisan verify FILE` recognises a cycle certificate too.
    let run = seisan(&testnet, &nowhere, None, &["verify", saved_arg]).ok();
    assert!(run.stdout.contains("cycle 1 VERIFIED"), "{}", run.stdout);

    // Another node serves a certificate that verifies the same (once it has the
    // cycle's settlement: it may be a block behind).
    let other = testnet.nodes[2].url();
    wait_until(PATIENCE, || {
        Ok(
            get_reply::<v1::CycleCertificate>(&format!("{other}/v1/cycles/1/certificate"))?.code
                == 200,
        )
    })
    .expect("the other node settles cycle 1");
    let run = seisan(
        &testnet,
        &other,
        Some("clearing-house"),
        &["cycle", "verify", "1"],
    )
    .ok();
    assert!(run.stdout.contains("cycle 1 VERIFIED"), "{}", run.stdout);

    // One confirmation altered: bench-0's side of R-2 now says 2 ETH.
    let text = std::fs::read_to_string(&saved).unwrap();
    let certificate: v1::CycleCertificate = serde_json::from_str(&text).unwrap();
    let bench = member_id("bench-0");
    assert_eq!(
        certificate.confirmations[1].submissions[1]
            .transaction
            .tx
            .member,
        seisan_types::MemberId(bench)
    );
    // The file as it is, to alter.
    let genuine: Value = serde_json::from_str(&text).unwrap();
    let mut altered = genuine.clone();
    let submission = &mut altered["confirmations"][1]["submissions"][1];
    let quantity = find_mut(&mut submission["transaction"], "quantity").expect("a quantity");
    let doubled = quantity
        .to_string()
        .replace('"', "")
        .parse::<u128>()
        .unwrap()
        * 2;
    *quantity = match quantity {
        Value::String(_) => Value::String(doubled.to_string()),
        _ => serde_json::json!(doubled as u64),
    };
    let tampered = testnet.dir.path().join("cycle-1-quantity.json");
    write_json(&tampered, &altered);
    seisan(
        &testnet,
        &nowhere,
        None,
        &["cycle", "verify", "--file", tampered.to_str().unwrap()],
    )
    .fails_with(&format!(
        "cycle certificate REFUSED: confirmation 2, submission 2 (member {bench}, block height"
    ))
    .fails_with(&format!("signature of member {bench} does not verify"));

    // One signature altered: exchange-a's side of R-1.
    let mut altered = genuine.clone();
    let signature = &mut altered["confirmations"][0]["submissions"][0]["transaction"]["signature"];
    let text = signature.as_str().expect("a hex signature").to_string();
    let flipped = if text.starts_with('0') { "1" } else { "0" };
    *signature = Value::String(format!("{flipped}{}", &text[1..]));
    let tampered = testnet.dir.path().join("cycle-1-signature.json");
    write_json(&tampered, &altered);
    seisan(
        &testnet,
        &nowhere,
        None,
        &["verify", tampered.to_str().unwrap()],
    )
    .fails_with("confirmation 1, submission 1")
    .fails_with(&format!(
        "signature of member {} does not verify",
        member_id("exchange-a")
    ));

    // A confirmation left out: the chain's settled count gives it away.
    let mut altered = genuine;
    altered["confirmations"].as_array_mut().unwrap().remove(2);
    let tampered = testnet.dir.path().join("cycle-1-missing.json");
    write_json(&tampered, &altered);
    seisan(
        &testnet,
        &nowhere,
        None,
        &["cycle", "verify", "--file", tampered.to_str().unwrap()],
    )
    .fails_with("the chain settled 3 matched confirmations in cycle 1; the document proves 2");

    // Cycle 2 is open: nothing to verify yet.
    seisan(
        &testnet,
        &node,
        Some("clearing-house"),
        &["cycle", "verify", "2"],
    )
    .fails_with("not settled");

    // Off the happy path: exchange-a's node goes down and exchange-b's is wiped and
    // resynced from the clearing house alone (quorum 2 of 3 with exchange-a down). The
    // wiped node serves the very same certificate, and it verifies.
    let from_house: v1::CycleCertificate = get_typed(&format!("{node}/v1/cycles/1/certificate"));
    let mut testnet = testnet;
    testnet.nodes[1].kill();
    testnet.wipe(2).unwrap();
    testnet.launch(2).unwrap();
    testnet.wait_in_sync(&[2]).unwrap();
    let wiped = testnet.nodes[2].url();
    let mut from_wiped = None;
    wait_until(PATIENCE, || {
        from_wiped =
            get_reply::<v1::CycleCertificate>(&format!("{wiped}/v1/cycles/1/certificate"))?
                .body
                .ok();
        Ok(from_wiped.is_some())
    })
    .expect("the wiped node serves cycle 1 again");
    let from_wiped = from_wiped.expect("served");
    // The certified descendants may differ (each node names the headers up to the
    // certificate it holds); the cycle's confirmations, trades and positions may not.
    assert_eq!(
        from_wiped.confirmations, from_house.confirmations,
        "the wiped node's confirmations differ from the clearing house's"
    );
    assert_eq!(
        from_wiped.cycle, from_house.cycle,
        "the wiped node's cycle differs from the clearing house's"
    );
    let run = seisan(
        &testnet,
        &wiped,
        Some("clearing-house"),
        &["cycle", "verify", "1"],
    )
    .ok();
    assert!(run.stdout.contains("cycle 1 VERIFIED"), "{}", run.stdout);
}
