//! Hostile clients against a live three-node testnet (issue 10, part 3): malformed and
//! oversized bodies, wrong content types, bad signatures, other chains, replayed and
//! stale nonces, unknown members and pairs, hostile amounts and path parameters. Each
//! must get a 4xx whose JSON error names the problem; afterwards every node still
//! answers, agrees on the state, and still finalizes a well-formed transaction.

use seisan_tests::*;
use seisan_types::clearing::{OrderRequest, Pair, Side, TimeInForce};
use seisan_types::genesis::OpeningBalance;
use seisan_types::tx::TxBody;
use seisan_types::{Amount, AssetId, ChainId, MemberId};
use serde_json::{json, Value};

fn order(pair: Pair, quantity: u128) -> TxBody {
    TxBody::PlaceOrder(OrderRequest {
        pair,
        side: Side::Sell,
        quantity: Amount(quantity),
        limit_price: Amount(300_000),
        time_in_force: TimeInForce::GoodTillCancel,
        expires_at_ms: None,
    })
}

/// 0.001 ETH, worth 300 JPY at the test price.
const QTY: u128 = 1_000_000_000_000_000;

const ETH_JPY: Pair = Pair {
    base: AssetId(0),
    quote: AssetId(1),
};

/// Asserts a 4xx whose error names the problem: the code equals `code` (or the message
/// contains `mention`, for errors the code alone cannot name).
fn assert_refused(answer: (u16, Value), code: &str, mention: &str, what: &str) {
    let (status, body) = answer;
    assert!(
        (400..500).contains(&status),
        "{what}: expected a 4xx, got {status} {body}"
    );
    let error = &body["error"];
    assert!(
        error["code"].is_string() && error["message"].is_string(),
        "{what}: the body is not a JSON error: {body}"
    );
    assert_eq!(error["code"], code, "{what}: {body}");
    let message = error["message"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        message.contains(&mention.to_lowercase()),
        "{what}: message {message:?} does not mention {mention:?}"
    );
}

/// The error of the only result of a batch submission.
fn batch_error(answer: (u16, Value)) -> (u16, Value) {
    let (status, body) = answer;
    assert_eq!(status, 200, "{body}");
    let result = body["results"][0].clone();
    (400, result)
}

#[test]
fn hostile_clients_get_named_4xx_and_the_network_is_unaffected() {
    let testnet = Testnet::start_with(0, |genesis| {
        genesis.opening_balances.push(OpeningBalance {
            member: "exchange-a".into(),
            asset: "ETH".into(),
            amount: "10".into(),
        });
    })
    .expect("testnet starts");
    let genesis = testnet.genesis.clone();
    let url = testnet.nodes[0].url();
    let submit_url = format!("{url}/v1/transactions");
    let batch_url = format!("{url}/v1/transactions/batch");

    // A good transaction first: it must finalize, and its nonce is then used.
    let good = sign(&genesis, "exchange-a", 1, order(ETH_JPY, QTY));
    let (status, body) = submit_raw(&url, &good).expect("submit");
    assert_eq!(status, 202, "{body}");
    wait_finalized(&url, &good.id()).expect("good transaction finalizes");
    let before = status_of_all(&testnet);

    // Malformed JSON, in several shapes.
    for text in ["{", "null", "[1,2", "{\"tx\": 5}", "\u{0}", ""] {
        assert_refused(
            post_raw(&submit_url, "application/json", text.as_bytes()).expect("post"),
            "malformed_json",
            "",
            &format!("malformed body {text:?}"),
        );
    }
    // Oversized bodies (> 4 MiB), to the single and the batch endpoint.
    let huge = vec![b' '; (4 << 20) + 1024];
    for target in [&submit_url, &batch_url] {
        let (status, body) = post_raw(target, "application/json", &huge).expect("post");
        assert_eq!(status, 413, "oversized body to {target}: {body}");
        assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    }
    // Wrong content types.
    let good_json = serde_json::to_vec(&good).expect("json");
    for content_type in ["text/plain", "application/x-www-form-urlencoded", ""] {
        assert_refused(
            post_raw(&submit_url, content_type, &good_json).expect("post"),
            "unsupported_media_type",
            "application/json",
            &format!("content type {content_type:?}"),
        );
    }
    // A bad signature: a valid transaction with one signature bit flipped, and one
    // whose body was changed after signing.
    let mut flipped = sign(&genesis, "exchange-a", 2, order(ETH_JPY, QTY));
    flipped.signature.0[10] ^= 1;
    assert_refused(
        submit_raw(&url, &flipped).expect("submit"),
        "bad_signature",
        "signature",
        "flipped signature",
    );
    let mut altered = sign(&genesis, "exchange-a", 2, order(ETH_JPY, QTY));
    altered.tx.body = order(ETH_JPY, 3 * QTY);
    assert_refused(
        submit_raw(&url, &altered).expect("submit"),
        "bad_signature",
        "signature",
        "altered body",
    );
    // Another chain's transaction.
    let mut other_chain = sign(&genesis, "exchange-a", 2, order(ETH_JPY, QTY));
    other_chain.tx.chain_id = ChainId("seisan-other".into());
    other_chain = seisan_crypto::sign_transaction(
        &seisan_crypto::Keypair::dev("exchange-a"),
        &genesis.hash(),
        other_chain.tx,
    );
    assert_refused(
        submit_raw(&url, &other_chain).expect("submit"),
        "wrong_chain",
        "seisan-other",
        "other chain",
    );
    // A transaction of another testnet made with the same chain id (its genesis differs
    // in one field only): every signature is bound to the genesis hash, so it is refused.
    let mut sibling = genesis.clone();
    sibling.genesis_time_ms += 1;
    assert_eq!(sibling.chain_id, genesis.chain_id);
    let replayed = sign(&sibling, "exchange-a", 2, order(ETH_JPY, QTY));
    assert_refused(
        submit_raw(&url, &replayed).expect("submit"),
        "bad_signature",
        "another genesis",
        "same chain id, another genesis",
    );
    // Replays: the finalized transaction again is answered with its finalized status
    // (submission is idempotent, so a client may retry); a new one reusing its nonce
    // is refused.
    let (status, body) = submit_raw(&url, &good).expect("submit");
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("finalized")),
        "replayed transaction: {body}"
    );
    assert_eq!(
        body["id"],
        serde_json::to_value(good.id()).unwrap(),
        "{body}"
    );
    let reused = sign(&genesis, "exchange-a", 1, order(ETH_JPY, 2 * QTY));
    assert_refused(
        submit_raw(&url, &reused).expect("submit"),
        "repeated_nonce",
        "nonce",
        "reused nonce",
    );
    // The same through the batch endpoint: one result per transaction, each named.
    let answer = post_json(&batch_url, &json!([reused])).expect("batch");
    let (_, error) = batch_error(answer);
    assert_eq!(error["error"]["code"], "repeated_nonce", "{error}");
    // An unknown member (signed by a key genesis does not know).
    let mut stranger = sign(&genesis, "exchange-a", 1, order(ETH_JPY, QTY));
    stranger.tx.member = MemberId(999);
    stranger = seisan_crypto::sign_transaction(
        &seisan_crypto::Keypair::dev("stranger"),
        &genesis.hash(),
        stranger.tx,
    );
    assert_refused(
        submit_raw(&url, &stranger).expect("submit"),
        "unknown_member",
        "999",
        "unknown member",
    );
    // An unknown pair.
    let unknown_pair = sign(
        &genesis,
        "exchange-a",
        2,
        order(
            Pair {
                base: AssetId(0),
                quote: AssetId(9),
            },
            QTY,
        ),
    );
    assert_refused(
        submit_raw(&url, &unknown_pair).expect("submit"),
        "unknown_pair",
        "pair",
        "unknown pair",
    );
    // Hostile amounts in JSON: too many digits, decimals, negative, overflowing, numbers.
    for amount in [
        json!("340282366920938463463374607431768211456"),
        json!("99999999999999999999999999999999999999999999"),
        json!("1.5"),
        json!("-1"),
        json!(1e300),
        json!(-5),
        json!(""),
    ] {
        let mut value = serde_json::to_value(&good).expect("json");
        value["tx"]["body"]["place_order"]["quantity"] = amount.clone();
        assert!(
            value["tx"]["body"]["place_order"].is_object(),
            "order JSON shape: {value}"
        );
        assert_refused(
            post_json(&submit_url, &value).expect("post"),
            "malformed_json",
            "",
            &format!("amount {amount}"),
        );
    }
    // Wrong path parameters.
    let cases: [(&str, u16, &str); 7] = [
        ("/v1/blocks/abc", 400, "bad_height"),
        ("/v1/blocks/-1", 400, "bad_height"),
        ("/v1/blocks/99999999999999999999999", 400, "bad_height"),
        ("/v1/blocks/999999999", 404, "not_found"),
        ("/v1/transactions/zz", 400, "bad_id"),
        ("/v1/members/nobody/nonce", 404, "not_found"),
        ("/v1/no/such/endpoint", 404, "not_found"),
    ];
    for (path, expected, code) in cases {
        let (status, body) = get(&format!("{url}{path}")).expect("get");
        assert_eq!(status, expected, "{path}: {body}");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
    }

    // Nothing of the above changed the state: the same height's root on every node,
    // and exchange-a's next nonce is still 2.
    let (_, nonce) = get(&format!("{url}/v1/members/exchange-a/nonce")).expect("nonce");
    assert_eq!(nonce["next"], 2, "{nonce}");
    let height = before;
    let roots: Vec<_> = testnet
        .nodes
        .iter()
        .map(|node| block_root(&node.url(), height).expect("block"))
        .collect();
    assert!(roots.windows(2).all(|pair| pair[0] == pair[1]), "{roots:?}");
    // And the network still finalizes.
    let next = sign(&genesis, "exchange-a", 2, order(ETH_JPY, QTY));
    let (status, body) = submit_raw(&testnet.nodes[1].url(), &next).expect("submit");
    assert_eq!(status, 202, "{body}");
    for node in &testnet.nodes {
        let found = wait_finalized(&node.url(), &next.id()).expect("finalizes everywhere");
        assert!(applied(&found), "{found:?}");
    }
}

/// The lowest height every node has reached.
fn status_of_all(testnet: &Testnet) -> u64 {
    testnet
        .nodes
        .iter()
        .map(|node| status(&node.url()).expect("status").height)
        .min()
        .unwrap_or(0)
}

/// A byzantine `exchange-b` (its node stopped, its genesis key in a bare network peer)
/// signs two conflicting notarize votes per view: every honest node must store the
/// evidence and serve it at `/v1/evidence`. Then it gossips one batch of transactions
/// holding a well-signed transaction of its own and one it claims is exchange-a's: each
/// honest node's admission task (off the core loop) must keep the first, which is
/// finalized though no API ever saw it, and never the forgery. Then it floods invalid
/// consensus and transaction gossip: the honest nodes must keep finalizing (the invalid
/// messages are rejected and the peer throttled).
#[test]
fn double_signer_leaves_evidence_and_a_flooder_does_not_stop_finality() {
    use seisan_network::{NetworkConfig, Topic};
    use seisan_types::block::{Vote, VoteKind};
    use seisan_types::{Hash, Height, View};

    let mut testnet = Testnet::start(0).expect("testnet starts");
    let genesis = testnet.genesis.clone();
    testnet
        .wait_for_height(&[0, 1, 2], 2)
        .expect("chain starts");
    testnet.nodes[2].kill();
    let (byzantine_id, member) = genesis.member_by_name("exchange-b").expect("member");
    let address = member.p2p_address.clone().expect("validator address");
    let keypair = seisan_crypto::Keypair::dev("exchange-b");
    let honest: Vec<String> = testnet.nodes[..2].iter().map(|node| node.url()).collect();
    // exchange-b's first transaction of its member lane, and exchange-a's first re-signed
    // with exchange-b's key.
    let gossiped = sign(&genesis, "exchange-b", 1, allocate(1));
    let mut forged = sign(&genesis, "exchange-a", 1, allocate(2));
    forged.signature = keypair.sign_digest(&forged.tx.signing_digest(&genesis.hash()));

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let config = NetworkConfig::from_genesis(
            &genesis,
            keypair.clone(),
            vec![address.parse().expect("multiaddr")],
        )
        .expect("network config");
        let (network, mut events) = seisan_network::spawn(config).await.expect("network starts");
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        let deadline = std::time::Instant::now() + PATIENCE;
        while network
            .subscribers(Topic::Consensus)
            .await
            .unwrap_or_default()
            .len()
            < 2
        {
            assert!(
                std::time::Instant::now() < deadline,
                "honest nodes never subscribed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        // Conflicting notarize votes for views just ahead of the honest nodes, for
        // blocks nobody else votes for (so no certificate can form from them).
        let evidence_everywhere = |urls: &[String]| {
            urls.iter().all(|url| {
                get(&format!("{url}/v1/evidence")).is_ok_and(|(code, body)| {
                    code == 200
                        && body["evidence"].as_array().is_some_and(|list| {
                            list.iter().any(|entry| {
                                entry["member"] == byzantine_id.0 && entry["verified"] == true
                            })
                        })
                })
            })
        };
        while !evidence_everywhere(&honest) {
            assert!(
                std::time::Instant::now() < deadline,
                "no evidence on every honest node"
            );
            let status = status(&honest[0]).expect("status");
            let (view, height) = (status.view, status.height);
            for ahead in 1..=3u64 {
                for block in [b"FORK_A", b"FORK_B"] {
                    let vote = Vote {
                        chain_id: genesis.chain_id.clone(),
                        epoch: seisan_types::Epoch(0),
                        view: View(view + ahead),
                        height: Height(height + 100),
                        block: Hash::tagged(block, &[&(view + ahead).to_be_bytes()]),
                        kind: VoteKind::Notarize,
                    };
                    let signed =
                        seisan_crypto::sign_vote(&keypair, &genesis.hash(), byzantine_id, vote);
                    let message = seisan_consensus::ConsensusMessage::Vote(signed).encode();
                    let _ = network.publish(Topic::Consensus, message).await;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        let batch = seisan_types::codec::encode(&vec![gossiped.clone(), forged.clone()]);
        network
            .publish(Topic::Transactions, batch)
            .await
            .expect("the transaction batch is published");
        // Now flood garbage (and oversized-for-a-vote junk) on both topics.
        for round in 0..400u32 {
            let junk = vec![(round % 251) as u8; 64 + (round as usize % 7) * 1000];
            let _ = network.publish(Topic::Consensus, junk.clone()).await;
            let _ = network.publish(Topic::Transactions, junk).await;
        }
        network.shutdown().await;
    });
    for url in &honest {
        wait_until(PATIENCE, || {
            let (code, body) = get(&format!("{url}/v1/transactions/{}", gossiped.id()))?;
            Ok(code == 200 && body["status"] == "finalized")
        })
        .unwrap_or_else(|error| panic!("{url} never finalized the gossiped transaction: {error}"));
        let (code, body) = get(&format!("{url}/v1/transactions/{}", forged.id())).expect("status");
        assert_eq!(code, 404, "{url} kept the forged transaction: {body}");
    }
    // The two honest nodes (a quorum of two) still finalize blocks.
    let height_now = status(&honest[0]).expect("status").height;
    testnet
        .wait_for_height(&[0, 1], height_now + 3)
        .expect("honest nodes keep finalizing after the flood");
    for url in &honest {
        let (code, body) = get(&format!("{url}/v1/evidence")).expect("evidence");
        assert_eq!(code, 200, "{body}");
        let list = body["evidence"].as_array().expect("a list");
        assert!(!list.is_empty(), "{body}");
        assert!(list.iter().all(|entry| entry["verified"] == true), "{body}");
        assert!(
            list.iter().all(|entry| entry["member"] == byzantine_id.0),
            "only the double signer is accused: {body}"
        );
    }
}

/// One HTTP/1.1 request to `node` (`127.0.0.1:port`) from the loopback address
/// `source` (another client's address: all of 127/8 is loopback on Linux): the status,
/// the `Retry-After` header, the body.
fn request_from(
    source: std::net::IpAddr,
    node: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Option<u64>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let raw = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind((source, 0).into()).expect("bind the client address");
        let mut stream = socket.connect(node).await.expect("connect");
        // Signed as the clearing house: the API answers members only.
        let credentials: String = auth_headers(
            &operator(),
            method,
            &format!("http://{node}{path}"),
            body.as_bytes(),
        )
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {node}\r\n{credentials}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("answer");
        String::from_utf8_lossy(&raw).to_string()
    });
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let retry_after = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().parse().ok())?
    });
    (status, retry_after, body.to_string())
}

/// Rate limits (issue 20): a node limited to 50 requests a second per client address
/// and 5 transactions a second per member. A client flooding it from 127.0.0.2 is
/// slowed (429 `rate_limited` with `Retry-After`, and served again once it waits that
/// long) while a client at 127.0.0.1 gets every answer during the flood; a member
/// flooding `POST /v1/transactions` is slowed while another member's transaction from
/// the same address is admitted.
#[test]
fn a_flooding_client_is_slowed_and_the_others_are_unaffected() {
    use std::net::{IpAddr, SocketAddr};
    let mut testnet = Testnet::start_with(0, |genesis| {
        for member in ["exchange-a", "exchange-b"] {
            genesis.opening_balances.push(OpeningBalance {
                member: member.into(),
                asset: "ETH".into(),
                amount: "10".into(),
            });
        }
    })
    .expect("testnet starts");
    let genesis = testnet.genesis.clone();
    testnet.nodes[0].kill();
    testnet.nodes[0].extra_args = vec![
        "--rate-limit-per-address".into(),
        "50".into(),
        "--rate-limit-per-member".into(),
        "5".into(),
    ];
    testnet.launch(0).expect("node 0 restarts with limits");
    testnet.wait_in_sync(&[0, 1, 2]).expect("in sync");
    let url = testnet.nodes[0].url();
    let node: SocketAddr = url
        .trim_start_matches("http://")
        .parse()
        .expect("node address");
    let flooder: IpAddr = "127.0.0.2".parse().unwrap();
    let other: IpAddr = "127.0.0.1".parse().unwrap();

    // Per address: 400 requests as fast as one client can send them, far above 50 a
    // second (a burst of 100), with a request of the other client every 20th.
    let (mut served, mut refused, mut others_served) = (0, 0, 0);
    for index in 0..400 {
        let (status, retry_after, body) = request_from(flooder, node, "GET", "/v1/status", "");
        match status {
            200 => served += 1,
            429 => {
                refused += 1;
                let seconds = retry_after.expect("a 429 says Retry-After");
                assert!((1..=2).contains(&seconds), "Retry-After {seconds}");
                let error: serde_json::Value = serde_json::from_str(&body).expect("JSON error");
                assert_eq!(error["error"]["code"], "rate_limited", "{body}");
                assert!(
                    error["error"]["message"]
                        .as_str()
                        .is_some_and(|message| message.contains("127.0.0.2")),
                    "{body}"
                );
            }
            other => panic!("the flooder got {other}: {body}"),
        }
        if index % 20 == 0 {
            let (status, _, body) = request_from(other, node, "GET", "/v1/status", "");
            assert_eq!(status, 200, "the other client during the flood: {body}");
            others_served += 1;
        }
    }
    println!("flooder: {served} served, {refused} refused; the other client: {others_served} of {others_served} served");
    assert!(served >= 100, "the burst is served: {served}");
    assert!(
        refused >= 100,
        "the flood is slowed: {refused} refused of 400"
    );
    // Waiting as Retry-After says serves the flooder again.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (status, _, body) = request_from(flooder, node, "GET", "/v1/status", "");
    assert_eq!(status, 200, "after waiting: {body}");

    // Per member: exchange-a submits 30 transactions at once (5 a second, a burst of
    // 10); exchange-b, from the same address, is admitted meanwhile.
    // A refused nonce is sent again (a later one would leave a gap).
    let (mut admitted, mut limited) = (0, 0);
    for _ in 0..30 {
        let nonce = admitted + 1;
        let transaction = sign(&genesis, "exchange-a", nonce, order(ETH_JPY, QTY));
        let body = serde_json::to_string(&transaction).unwrap();
        let (status, retry_after, answer) =
            request_from(flooder, node, "POST", "/v1/transactions", &body);
        match status {
            202 => admitted += 1,
            429 => {
                limited += 1;
                assert!(retry_after.is_some_and(|seconds| seconds >= 1), "{answer}");
                assert!(answer.contains("rate_limited"), "{answer}");
                assert!(
                    answer.contains("transactions per second from member"),
                    "{answer}"
                );
            }
            other => panic!("exchange-a's transaction {nonce}: {other} {answer}"),
        }
    }
    // Transactions forged in exchange-b's name (signed with another key) are refused as
    // forgeries and do not spend exchange-b's allowance.
    let (exchange_b, _) = genesis.member_by_name("exchange-b").expect("member");
    for nonce in 1..=30 {
        let forged = seisan_crypto::sign_transaction(
            &seisan_crypto::Keypair::dev("exchange-a"),
            &genesis.hash(),
            seisan_types::tx::Transaction {
                chain_id: genesis.chain_id.clone(),
                member: MemberId(exchange_b.0),
                nonce: seisan_types::Nonce(nonce),
                body: order(ETH_JPY, QTY),
            },
        );
        let body = serde_json::to_string(&forged).unwrap();
        let (status, _, answer) = request_from(flooder, node, "POST", "/v1/transactions", &body);
        assert!(
            status != 429 && (400..500).contains(&status),
            "a forgery in exchange-b's name: {status} {answer}"
        );
    }
    let theirs = sign(&genesis, "exchange-b", 1, order(ETH_JPY, QTY));
    let body = serde_json::to_string(&theirs).unwrap();
    let (status, _, answer) = request_from(flooder, node, "POST", "/v1/transactions", &body);
    assert_eq!(status, 202, "exchange-b while exchange-a floods: {answer}");
    println!("exchange-a: {admitted} admitted, {limited} limited; exchange-b admitted");
    assert!((10..=15).contains(&admitted), "{admitted} admitted");
    assert_eq!(admitted + limited, 30);
    wait_finalized(&url, &theirs.id()).expect("exchange-b's transaction finalizes");
}
