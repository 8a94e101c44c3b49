//! Snapshot sync (issue 18 item 5) with real node processes: a wiped validator installs
//! a peer's snapshot of the state, checked against a certified state root, and catches
//! up only the blocks after it; a peer that serves a snapshot whose values are not the
//! certified state is refused and named, and the node falls back to an honest peer or,
//! with none, to replaying every block from genesis.

use seisan_tests::*;
use seisan_types::Height;

/// The node a test wipes (exchange-a), and the one that lies about snapshots (exchange-b).
const WIPED: usize = 1;
const LIAR: usize = 2;
/// The wiped node installs a snapshot once the chain is this long.
const MIN_BLOCKS: u64 = 20;

fn funded(genesis: &mut seisan_types::genesis::Genesis) {
    fund_jpy(genesis, &["exchange-a", "exchange-b"], "1000000");
}

/// Wipes node `WIPED` and starts it again to sync from snapshots; returns its new log.
fn wipe_and_resync(testnet: &mut Testnet) -> String {
    testnet.wipe(WIPED).unwrap();
    let from = testnet.log_len(WIPED);
    testnet.nodes[WIPED].extra_args =
        vec!["--snapshot-sync-min-blocks".into(), MIN_BLOCKS.to_string()];
    testnet.launch(WIPED).unwrap();
    let target = testnet.highest(&[0, LIAR]).unwrap();
    testnet
        .wait_for_height(&[WIPED], target + 2)
        .map_err(|error| anyhow::anyhow!("{error:#}\n{}", testnet.log_tail(WIPED)))
        .unwrap();
    testnet.log_since(WIPED, from)
}

#[test]
fn a_wiped_node_installs_a_certified_snapshot_and_refuses_a_lying_peers() {
    let mut testnet = Testnet::start_with(0, funded).unwrap();
    testnet.nodes[LIAR].extra_args = vec!["--fault".into(), "lie-snapshots".into()];
    testnet.launch(LIAR).unwrap();
    // A state with more than genesis in it: allocations by both exchanges.
    let mut ids = Vec::new();
    for nonce in 1..=4 {
        for member in ["exchange-a", "exchange-b"] {
            let transaction = sign(&testnet.genesis, member, nonce, allocate(5));
            assert_eq!(
                submit(&testnet.nodes[0].url(), &transaction).unwrap().code,
                202
            );
            ids.push(transaction.id());
        }
    }
    for id in &ids {
        wait_finalized(&testnet.nodes[0].url(), id).unwrap();
    }
    testnet.wait_for_height(&[0, 1, 2], MIN_BLOCKS + 5).unwrap();

    // Only the liar is up besides the wiped node: its offer verifies (the block and
    // certificate are real) but its values do not give the certified root. Refused and
    // named; the node replays every block from genesis from the same peer instead, and
    // with it the liar makes a quorum of two.
    testnet.nodes[0].kill();
    let log = wipe_and_resync(&mut testnet);
    assert_eq!(
        log_field(&log, "refused a snapshot", "peer").as_deref(),
        Some("exchange-b"),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|line| line.contains("refused a snapshot") && line.contains("not the certified")),
        "{log}"
    );
    assert!(!log.contains("installed a certified snapshot"), "{log}");
    let (code, _) = get(&format!("{}/v1/blocks/1", testnet.nodes[WIPED].url())).unwrap();
    assert_eq!(
        code, 200,
        "replayed from genesis, the node keeps every block"
    );

    // With the clearing house back, the wiped node is offered two snapshots: it installs
    // the clearing house's (the liar's, if tried, is refused again).
    testnet.launch(0).unwrap();
    testnet.wait_in_sync(&[0]).unwrap();
    let log = wipe_and_resync(&mut testnet);
    assert_eq!(
        log_field(&log, "installed a certified snapshot", "peer").as_deref(),
        Some("clearing-house"),
        "{log}"
    );
    let installed: u64 = log_field(&log, "installed a certified snapshot", "height")
        .and_then(|height| height.parse().ok())
        .unwrap_or_else(|| panic!("no installed height in:\n{log}"));
    assert!(installed >= MIN_BLOCKS, "{log}");
    if log.contains("refused a snapshot") {
        assert_eq!(
            log_field(&log, "refused a snapshot", "peer").as_deref(),
            Some("exchange-b"),
            "{log}"
        );
    }
    // Its peers, connected while it looked for a snapshot, are in its status.
    let mut peers = status(&testnet.nodes[WIPED].url()).unwrap().peers;
    peers.sort();
    assert_eq!(peers, ["clearing-house", "exchange-b"]);
    // The same blocks and roots as its peers from the snapshot on, the same balances,
    // and no block before it: that history is at its peers, and the API says so.
    let tip = status(&testnet.nodes[WIPED].url()).unwrap().height;
    testnet.assert_same_blocks(&[0, WIPED, LIAR], installed..=tip);
    for member in ["exchange-a", "exchange-b"] {
        assert_eq!(
            balances(&testnet.nodes[WIPED].url(), member),
            balances(&testnet.nodes[0].url(), member)
        );
    }
    let before = format!(
        "{}/v1/blocks/{}",
        testnet.nodes[WIPED].url(),
        Height(installed - 1).0
    );
    let (code, body) = get(&before).unwrap();
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("before_history")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&installed.to_string()),
        "{body}"
    );
    // It votes and executes from there: a transaction sent to it is final everywhere,
    // and a restart opens the installed store (its checkpoint and the blocks after it).
    let transaction = sign(&testnet.genesis, "exchange-a", 5, allocate(5));
    assert_eq!(
        submit(&testnet.nodes[WIPED].url(), &transaction)
            .unwrap()
            .code,
        202
    );
    for index in [0, WIPED, LIAR] {
        wait_finalized(&testnet.nodes[index].url(), &transaction.id()).unwrap();
    }
    testnet.launch(WIPED).unwrap();
    let height = testnet.highest(&[0]).unwrap();
    testnet.wait_for_height(&[WIPED], height + 2).unwrap();
    testnet.assert_same_blocks(&[0, WIPED], installed..=height);
}
