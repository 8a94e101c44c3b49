//! Outsiders (issue 17): an observer node (a member with the role observer, named in
//! genesis) follows the running testnet with its own key and store, verifies the chain
//! from genesis, serves balances with proofs the client accepts and settlement
//! certificates that verify offline (and fail, with their reason, when tampered), and
//! never counts toward a quorum: it votes on every proposal (test-only
//! `--fault observer-votes`), yet no certificate carries its signature and with two of
//! three validators down the chain stops although the observer is up and voting.

use seisan_api::v1;
use seisan_tests::*;
use seisan_types::genesis::{Member, OpeningBalance, Role};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const OBSERVER: &str = "regulator";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

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

fn ok(run: Run) -> String {
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    run.stdout
}

/// Verifies `file` offline (no node: the URL points nowhere) and returns the refusal.
fn refused(testnet: &Testnet, file: &Path) -> String {
    let run = seisan(
        testnet,
        "http://127.0.0.1:1",
        None,
        &["verify", file.to_str().unwrap()],
    );
    assert_ne!(
        run.code, 0,
        "a tampered certificate verified:\n{}",
        run.stdout
    );
    run.stderr
}

fn tamper(original: &Value, path: &Path, change: impl FnOnce(&mut Value)) {
    let mut document = original.clone();
    change(&mut document);
    std::fs::write(path, serde_json::to_string_pretty(&document).unwrap()).unwrap();
}

fn signers(node: &str, height: u64) -> Vec<u64> {
    let block: v1::BlockDocument = get_typed(&format!("{node}/v1/blocks/{height}"));
    block
        .certificate
        .signatures
        .iter()
        .map(|(member, _)| u64::from(member.0))
        .collect()
}

#[test]
fn an_observer_follows_proves_and_certifies_but_never_counts() {
    let observer_port = free_port();
    let mut testnet = Testnet::start_with(0, |genesis| {
        for member in ["exchange-a", "exchange-b"] {
            for (asset, amount) in [("JPY", "1000"), ("ETH", "2")] {
                genesis.opening_balances.push(OpeningBalance {
                    member: member.into(),
                    asset: asset.into(),
                    amount: amount.into(),
                });
            }
        }
        genesis.members.push(Member {
            name: OBSERVER.into(),
            role: Role::Observer,
            public_key: seisan_crypto::Keypair::dev(OBSERVER).public_key(),
            validator: false,
            p2p_address: Some(format!("/ip4/127.0.0.1/tcp/{observer_port}")),
        });
    })
    .unwrap();
    let observer_id = testnet.genesis.member_by_name(OBSERVER).unwrap().0 .0 as u64;
    let validators = [0usize, 1, 2];
    // The chain is already running when the observer joins.
    testnet.wait_for_height(&validators, 2).unwrap();
    let observer = testnet.add_node(OBSERVER).unwrap();
    // The observer tries to take part: it signs and gossips a notarize and a finalize
    // vote for every proposal it sees and joins every nullify (test-only
    // `--fault observer-votes`).
    testnet.nodes[observer].extra_args = vec!["--fault".into(), "observer-votes".into()];
    testnet.launch(observer).unwrap();
    wait_until(PATIENCE, || {
        Ok(status(&testnet.nodes[observer].url()).is_ok())
    })
    .unwrap();
    let observer_url = testnet.nodes[observer].url();
    let validator_url = testnet.nodes[0].url();

    // A trade, made through a validator.
    ok(seisan(
        &testnet,
        &validator_url,
        Some("exchange-a"),
        &["order", "sell", "ETH/JPY", "1.5", "--price", "400"],
    ));
    ok(seisan(
        &testnet,
        &validator_url,
        Some("exchange-b"),
        &["order", "buy", "ETH/JPY", "1.5", "--price", "400"],
    ));
    let trades: v1::Trades = get_typed(&format!("{validator_url}/v1/trades"));
    let trade = trades.trades.first().expect("a trade");
    let trade_height = trade.height.0;

    // The observer verified and holds the same chain from genesis.
    let height = testnet.highest(&validators).unwrap().max(trade_height);
    testnet.wait_for_height(&[observer], height).unwrap();
    testnet.assert_same_blocks(&[0, 1, 2, observer], 1..=height);

    // Balances with proofs from the observer, verified by the client against genesis.
    let proven = ok(seisan(
        &testnet,
        &observer_url,
        Some(OBSERVER),
        &["balance", "--member", "exchange-b", "--proof", "--json"],
    ));
    let proven: Value = serde_json::from_str(&proven).unwrap();
    assert_eq!(proven["verified"], true);
    let eth = proven["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["symbol"] == "ETH")
        .unwrap();
    assert_eq!(eth["balance"]["inventory"], "3500000000000000000");

    // The trade's settlement certificate, from the observer, verified with no node.
    let file = testnet.dir.path().join("trade.json");
    ok(seisan(
        &testnet,
        &observer_url,
        Some(OBSERVER),
        &["certificate", "trade", "1", "--out", file.to_str().unwrap()],
    ));
    let verified = ok(seisan(
        &testnet,
        "http://127.0.0.1:1",
        None,
        &["verify", file.to_str().unwrap()],
    ));
    assert!(verified.contains("trade 1 VERIFIED"), "{verified}");
    assert!(
        verified.contains("exchange-b bought 1.5 ETH of ETH/JPY from exchange-a"),
        "{verified}"
    );
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let tampered = testnet.dir.path().join("tampered.json");
    tamper(&original, &tampered, |document| {
        document["fill"]["price"] = Value::String("399000".into());
    });
    let reason = refused(&testnet, &tampered);
    assert!(reason.contains("fill field price"), "{reason}");
    tamper(&original, &tampered, |document| {
        document["fill"]["quantity"] = Value::String("1000000000000000000".into());
    });
    let reason = refused(&testnet, &tampered);
    assert!(reason.contains("fill field quantity"), "{reason}");
    tamper(&original, &tampered, |document| {
        let signature = document["certificate"]["signatures"][0][1]
            .as_str()
            .unwrap();
        let flipped = if signature.starts_with('0') { "1" } else { "0" };
        document["certificate"]["signatures"][0][1] =
            Value::String(format!("{flipped}{}", &signature[1..]));
    });
    let reason = refused(&testnet, &tampered);
    assert!(
        reason.contains("the quorum certificate does not verify"),
        "{reason}"
    );

    let observed = status(&observer_url).unwrap();
    assert!(!observed.voting, "{observed:?}");
    assert_eq!(observed.member_name, OBSERVER, "{observed:?}");

    // It did vote, and no certificate the observer holds carries its signature.
    let log = std::fs::read_to_string(&testnet.nodes[observer].log).unwrap();
    assert!(
        log.contains("sent a vote though not a validator"),
        "the observer never tried to vote:\n{}",
        testnet.log_tail(observer)
    );
    for height in 1..=height {
        assert!(!signers(&observer_url, height).contains(&observer_id));
    }

    // One validator of three down: q = 2 still finalizes.
    testnet.nodes[2].kill();
    let before = testnet.highest(&[0, 1]).unwrap();
    testnet
        .wait_for_height(&[0, 1, observer], before + 3)
        .unwrap();
    let certified = testnet.highest(&[0, 1]).unwrap();
    for height in before + 1..=certified.min(before + 3) {
        let signed = signers(&validator_url, height);
        assert!(
            !signed.contains(&observer_id) && !signed.contains(&2),
            "{signed:?}"
        );
    }

    // Two down: the observer is up and still votes, but it is no validator, so its votes
    // and the last validator's never make the quorum of 2: nothing is finalized.
    testnet.nodes[1].kill();
    std::thread::sleep(Duration::from_secs(3));
    let stalled = testnet.highest(&[0, observer]).unwrap();
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(
        testnet.highest(&[0, observer]),
        Some(stalled),
        "the chain went on with one validator and the observer"
    );
    assert!(testnet.nodes[observer].is_running());
}

/// The next nonce of `member`'s lane, as the node reports it.
fn next_nonce(node: &str, member: &str) -> u64 {
    get_typed::<v1::NonceInfo>(&format!("{node}/v1/members/{member}/nonce"))
        .next
        .0
}

/// Submits `body` as `member` through `node` and waits until it is applied.
fn applied(testnet: &Testnet, node: &str, member: &str, body: seisan_types::TxBody) {
    let transaction = sign(&testnet.genesis, member, next_nonce(node, member), body);
    let answer = submit(node, &transaction).unwrap();
    assert!(
        answer.code == 202 || answer.code == 200,
        "{member}: {answer}"
    );
    let done = wait_finalized(node, &transaction.id()).unwrap();
    assert!(seisan_tests::applied(&done), "{done:?}");
}

#[test]
fn governance_adds_an_observer_whose_node_follows_from_the_original_genesis() {
    use seisan_types::governance::{GovernanceChange, Proposal, ProposalId};
    use seisan_types::{Height, TxBody};
    let mut testnet = Testnet::start_with(0, |genesis| {
        for (member, asset, amount) in [("exchange-a", "ETH", "2"), ("exchange-b", "JPY", "1000")] {
            genesis.opening_balances.push(OpeningBalance {
                member: member.into(),
                asset: asset.into(),
                amount: amount.into(),
            });
        }
    })
    .unwrap();
    let node = testnet.nodes[0].url();
    let keypair = seisan_crypto::Keypair::dev("auditor");
    let p2p_address = format!("/ip4/127.0.0.1/tcp/{}", free_port());
    let height = status(&node).unwrap().height;
    applied(
        &testnet,
        &node,
        "clearing-house",
        TxBody::Propose(Proposal {
            change: GovernanceChange::AddMember {
                name: "auditor".into(),
                role: Role::Observer,
                public_key: keypair.public_key(),
                validator: false,
                p2p_address: Some(p2p_address.clone()),
            },
            expires_at_height: Height(height + 500),
        }),
    );
    applied(
        &testnet,
        &node,
        "exchange-a",
        TxBody::Approve {
            proposal: ProposalId(1),
        },
    );
    // Once the change applies, the membership names the auditor as an observer and the
    // validator set is unchanged.
    wait_until(PATIENCE, || {
        let members: v1::Members = try_get_typed(&format!("{node}/v1/members"))?;
        Ok(members
            .members
            .iter()
            .any(|member| member.name == "auditor"))
    })
    .unwrap();
    let members: v1::Members = get_typed(&format!("{node}/v1/members"));
    let auditor = members
        .members
        .iter()
        .find(|member| member.name == "auditor")
        .unwrap_or_else(|| panic!("{members:?}"))
        .clone();
    assert_eq!(auditor.role, Role::Observer);
    assert!(!auditor.validator);
    let validators = status(&node).unwrap().validators;
    assert_eq!(validators, ["clearing-house", "exchange-a", "exchange-b"]);

    // Its node starts from the original genesis (which does not name it) and its key,
    // follows and verifies the chain, and never votes.
    let observer = testnet
        .add_joining_node("auditor", &keypair, &p2p_address)
        .unwrap();
    let height = testnet.highest(&[0, 1, 2]).unwrap() + 2;
    testnet
        .wait_for_height(&[0, 1, 2, observer], height)
        .unwrap();
    testnet.assert_same_blocks(&[0, 1, 2, observer], 1..=height);
    let observed = status(&testnet.nodes[observer].url()).unwrap();
    assert!(!observed.voting, "{observed:?}");
    assert_eq!(observed.member_name, "auditor", "{observed:?}");
    assert_eq!(
        observed.epoch, 1,
        "the change applied in a new epoch: {observed:?}"
    );

    // A trade in epoch 1: its certificate, from the auditor's node, carries the link
    // from genesis's validator set to epoch 1's and verifies with the genesis file alone.
    ok(seisan(
        &testnet,
        &node,
        Some("exchange-a"),
        &["order", "sell", "ETH/JPY", "1", "--price", "300"],
    ));
    ok(seisan(
        &testnet,
        &node,
        Some("exchange-b"),
        &["order", "buy", "ETH/JPY", "1", "--price", "300"],
    ));
    let auditor_url = testnet.nodes[observer].url();
    let file = testnet.dir.path().join("trade.json");
    wait_until(PATIENCE, || {
        Ok(seisan(
            &testnet,
            &auditor_url,
            Some("auditor"),
            &["certificate", "trade", "1", "--out", file.to_str().unwrap()],
        )
        .code
            == 0)
    })
    .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let certificate: v1::TradeCertificate = serde_json::from_str(&text).unwrap();
    assert_eq!(certificate.certificate.vote.epoch.0, 1, "{certificate:?}");
    assert_eq!(certificate.epochs.len(), 1);
    // The file as it is, to tamper with.
    let document: Value = serde_json::from_str(&text).unwrap();
    let verified = ok(seisan(
        &testnet,
        "http://127.0.0.1:1",
        None,
        &["verify", file.to_str().unwrap()],
    ));
    assert!(verified.contains("of epoch 1"), "{verified}");
    let tampered = testnet.dir.path().join("tampered.json");
    tamper(&document, &tampered, |document| {
        document["epochs"][0]["set"]["quorum"] = Value::from(1);
    });
    let reason = refused(&testnet, &tampered);
    assert!(reason.contains("epoch link 0"), "{reason}");
}
