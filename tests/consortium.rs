//! Membership changes on the live chain (issue 15), with real `seisan node` processes on
//! loopback.
//!
//! Three validators (quorum 2) raise their quorum to 3 and then add exchange-c as a
//! fourth validator, each change a signed proposal approved by a quorum of the
//! validators of the current epoch and applied `ACTIVATION_DELAY_BLOCKS + 1` blocks
//! later (governance rules G1-G4, consensus rules E1-E6). exchange-c's node starts from
//! the original genesis file and its own key, which genesis does not know: it follows
//! the chain as an observer, syncs every block and set change from genesis, and votes
//! from its activation. exchange-c then trades as a new exchange does: it funds its
//! trust account at the bank (its own process, which knows exchange-c as its
//! customer), the validators attest the entry and the ledger credits it, and it buys
//! ETH from exchange-a; the fill is final on all four nodes with both members'
//! balances moved, and its yen leg is mirrored at the bank and confirmed on chain.
//! Then, with four validators and quorum 3: any one killed, the chain keeps finalizing
//! (so exchange-c's votes count); two killed, it stands still and forks nowhere; both
//! back (together, then one after the other), all four finalize again with the same
//! block hash and state root at every height.

use anyhow::Context;
use seisan_api::v1;
use seisan_bank::{AccountId, BankAdapter, HttpBank, TransferReference, TransferRequest};
use seisan_crypto::Keypair;
use seisan_tests::*;
use seisan_types::clearing::{Balance, Side, Trade};
use seisan_types::genesis::{Member, OpeningBalance, Role};
use seisan_types::governance::{GovernanceChange, Proposal, ProposalId};
use seisan_types::mirror::MirrorState;
use seisan_types::{Amount, Height, MemberId, TxBody};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a chain that should be finalizing gets to grow by a few blocks.
const PROGRESS: Duration = Duration::from_secs(60);

/// `member`'s balance of `symbol` on `node_url` (`{inventory, locked, customers}`).
fn balance_on(node_url: &str, member: &str, symbol: &str) -> anyhow::Result<Balance> {
    let balances: v1::Balances = try_get_typed(&format!("{node_url}/v1/members/{member}/balances"))
        .with_context(|| format!("balances of {member}"))?;
    balance_of(&balances, symbol)
        .copied()
        .with_context(|| format!("no {symbol} balance of {member}: {balances:?}"))
}

/// The one trade of `buyer` from `seller` finalized at `height`, from `/v1/trades`.
fn trade_at(node_url: &str, buyer: u32, seller: u32, height: u64) -> anyhow::Result<Trade> {
    let trades: v1::Trades = try_get_typed(&format!("{node_url}/v1/trades?limit=1000"))?;
    let found: Vec<&Trade> = trades
        .trades
        .iter()
        .filter(|trade| {
            trade.buyer == MemberId(buyer)
                && trade.seller == MemberId(seller)
                && trade.height == Height(height)
        })
        .collect();
    anyhow::ensure!(
        found.len() == 1,
        "one trade of {buyer} from {seller} at {height}: {trades:?}"
    );
    Ok(found[0].clone())
}

/// The flags that connect `member`'s node to the bank: its own token (it may move and
/// read its own accounts) and its validator's read-only auditor token (it reads and
/// attests every exchange's trust account), both in files.
fn bank_flags(testnet: &Testnet, bank_url: &str, member: &str) -> Vec<String> {
    testnet.bank_flags(bank_url, member, true)
}

/// Signs `body` with `keypair` as `member` at the next nonce `node_url` names (the
/// member's node signs attestations with the same key, so no counter of the test's
/// own could know it), submits it and waits until it is final and applied; returns
/// the transaction's status document.
fn trade_as(
    testnet: &Testnet,
    node_url: &str,
    member: &str,
    keypair: &Keypair,
    body: TxBody,
) -> v1::TransactionStatus {
    let nonce: v1::NonceInfo = get_typed(&format!("{node_url}/v1/members/{member}/nonce"));
    let transaction = seisan_crypto::sign_transaction(
        keypair,
        &testnet.genesis.hash(),
        seisan_types::Transaction {
            chain_id: testnet.genesis.chain_id.clone(),
            member: nonce.member,
            nonce: nonce.next,
            body,
        },
    );
    let answer = submit(node_url, &transaction).unwrap();
    assert!(
        answer.code == 202 || answer.code == 200,
        "{member}: {answer}"
    );
    let done = wait_finalized(node_url, &transaction.id()).unwrap();
    assert!(applied(&done), "{member}: {done:?}");
    done
}

/// Each member's next nonce (a fresh testnet: every member starts at 1).
struct Nonces(BTreeMap<String, u64>);

impl Nonces {
    fn next(&mut self, member: &str) -> u64 {
        let nonce = self.0.entry(member.to_string()).or_insert(0);
        *nonce += 1;
        *nonce
    }
}

fn epoch(node_url: &str) -> Option<u64> {
    Some(status(node_url).ok()?.epoch)
}

fn tip(node_url: &str) -> u64 {
    status(node_url).map_or(0, |status| status.height)
}

/// Submits a transaction and waits until it is final, failing on any refusal.
fn finalize(testnet: &Testnet, node: usize, member: &str, nonce: u64, body: TxBody) {
    let url = testnet.nodes[node].url();
    let transaction = sign(&testnet.genesis, member, nonce, body);
    let answer = submit(&url, &transaction).expect("submit");
    assert!(
        answer.code == 202 || answer.code == 200,
        "{member} nonce {nonce}: {answer}"
    );
    let done = wait_finalized(&url, &transaction.id()).expect("finalized");
    assert!(
        applied(&done),
        "{member} nonce {nonce} was finalized but failed: {done:?}"
    );
}

/// Proposes `change` as `proposer` and has each of `approvers` approve it; returns the
/// proposal id (proposals are numbered from 1 in order).
fn govern(
    testnet: &Testnet,
    nonces: &mut Nonces,
    id: u64,
    proposer: &str,
    approvers: &[&str],
    change: GovernanceChange,
) {
    let expires_at_height = Height(tip(&testnet.nodes[0].url()) + 500);
    let nonce = nonces.next(proposer);
    finalize(
        testnet,
        0,
        proposer,
        nonce,
        TxBody::Propose(Proposal {
            change,
            expires_at_height,
        }),
    );
    for approver in approvers {
        let nonce = nonces.next(approver);
        finalize(
            testnet,
            0,
            approver,
            nonce,
            TxBody::Approve {
                proposal: ProposalId(id),
            },
        );
    }
}

fn wait_for_epoch(testnet: &Testnet, nodes: &[usize], wanted: u64) {
    for &node in nodes {
        let url = testnet.nodes[node].url();
        wait_until(
            PATIENCE,
            || Ok(epoch(&url).is_some_and(|now| now >= wanted)),
        )
        .unwrap_or_else(|error| {
            panic!(
                "{} never reached epoch {wanted}: {error}\n{}",
                testnet.nodes[node].name,
                testnet.log_tail(node)
            )
        });
    }
}

/// Waits until every node in `alive` has grown past where the highest of them is now.
fn keeps_finalizing(testnet: &Testnet, alive: &[usize], what: &str) {
    let from = testnet.highest(alive).unwrap_or(0);
    let wanted = from + 3;
    let started = Instant::now();
    for &node in alive {
        let url = testnet.nodes[node].url();
        wait_until(PROGRESS, || Ok(tip(&url) >= wanted)).unwrap_or_else(|error| {
            panic!(
                "{what}: {} did not reach height {wanted} from {from}: {error}\n{}",
                testnet.nodes[node].name,
                testnet.log_tail(node)
            )
        });
    }
    eprintln!(
        "{what}: {alive:?} grew from {from} to {wanted}+ in {:?}",
        started.elapsed()
    );
}

#[test]
fn a_fourth_validator_joins_by_governance_and_the_four_survive_one_loss_but_not_two() {
    let mut testnet = Testnet::start_sized(3, None, 0, |genesis| {
        // exchange-a has ETH to sell to exchange-c once it has joined.
        genesis.opening_balances.push(OpeningBalance {
            member: "exchange-a".into(),
            asset: "ETH".into(),
            amount: "2".into(),
        });
    })
    .expect("three validators");
    let all_three = [0, 1, 2];
    let mut nonces = Nonces(BTreeMap::new());
    let joiner = "exchange-c";
    let keypair = Keypair::dev(joiner);
    let p2p_address = format!("/ip4/127.0.0.1/tcp/{}", free_port());

    // The bank, its own process. Its customers are its own business: it is set up from
    // a copy of the genesis that also lists exchange-c (so exchange-c gets its
    // operating and trust accounts and its validator an auditor token), while the
    // chain's genesis file stays without exchange-c. Each validator's node watches it.
    let mut bank_genesis = testnet.genesis.clone();
    bank_genesis.members.push(Member {
        name: joiner.into(),
        role: Role::Exchange,
        public_key: keypair.public_key(),
        validator: true,
        p2p_address: Some(p2p_address.clone()),
    });
    bank_genesis.quorum = 3;
    let bank_genesis_path = testnet.dir.path().join("bank-customers.json");
    std::fs::write(&bank_genesis_path, bank_genesis.to_json()).unwrap();
    let bank_port = free_port();
    let _bank = start_bank(testnet.dir.path(), Some(&bank_genesis_path), bank_port).unwrap();
    let bank_url = format!("http://127.0.0.1:{bank_port}");
    for index in all_three {
        let name = testnet.nodes[index].name.clone();
        testnet.nodes[index].extra_args = bank_flags(&testnet, &bank_url, &name);
        testnet.launch(index).unwrap();
    }
    testnet.wait_in_sync(&all_three).unwrap();

    // Epoch 1: quorum 3 of the three, so that a fourth validator keeps 2q > n.
    govern(
        &testnet,
        &mut nonces,
        1,
        "clearing-house",
        &["exchange-a"],
        GovernanceChange::SetQuorum { quorum: 3 },
    );
    wait_for_epoch(&testnet, &all_three, 1);
    let after_quorum = status(&testnet.nodes[0].url()).unwrap();
    assert_eq!(after_quorum.quorum, 3, "{after_quorum:?}");

    // Epoch 2: exchange-c, unknown to genesis, is added as a validator.
    govern(
        &testnet,
        &mut nonces,
        2,
        "clearing-house",
        &["exchange-a", "exchange-b"],
        GovernanceChange::AddMember {
            name: joiner.into(),
            role: Role::Exchange,
            public_key: keypair.public_key(),
            validator: true,
            p2p_address: Some(p2p_address.clone()),
        },
    );
    wait_for_epoch(&testnet, &all_three, 2);
    let added = status(&testnet.nodes[0].url()).unwrap();
    assert_eq!(
        added.validators,
        ["clearing-house", "exchange-a", "exchange-b", joiner],
        "{added:?}"
    );

    // Its node starts from the original genesis and its own key, and syncs every
    // block and both set changes from genesis before it votes.
    let c = testnet
        .add_joining_node_with(
            joiner,
            &keypair,
            &p2p_address,
            bank_flags(&testnet, &bank_url, joiner),
        )
        .expect("exchange-c's node starts");
    let all_four = [0, 1, 2, c];
    wait_for_epoch(&testnet, &[c], 2);
    testnet.wait_in_sync(&[c]).expect("exchange-c syncs");
    let joined = status(&testnet.nodes[c].url()).unwrap();
    assert!(joined.voting, "{joined:?}");
    assert_eq!(joined.member_name, joiner, "{joined:?}");
    let height = testnet.highest(&all_four).unwrap();
    testnet.wait_for_height(&all_four, height).unwrap();
    testnet.assert_same_blocks(&all_four, 1..=height);

    // exchange-c trades. First it funds its trust account at the bank from its
    // operating account, as any exchange does; the validators (now four, quorum 3)
    // attest the bank's entry and the ledger credits exchange-c's yen.
    let ch = testnet.nodes[0].url();
    let c_url = testnet.nodes[c].url();
    let bank_c = HttpBank::new(&bank_url, &seisan_bank::dev_token(joiner));
    bank_c
        .transfer(&TransferRequest {
            from: AccountId::operating(joiner),
            to: AccountId::trust(joiner),
            amount: Amount(500),
            reference: TransferReference("exchange-c-funds-trust-1".into()),
        })
        .unwrap();
    wait_until(PATIENCE, || {
        Ok(balance_on(&c_url, joiner, "JPY")?.inventory == Amount(500))
    })
    .with_context(|| format!("{}\n{}", testnet.log_tail(0), testnet.log_tail(c)))
    .expect(
        "the ledger credits exchange-c's bank deposit (the validators' bank watchers must \
         read the trust accounts of the current membership's exchanges, not only genesis's)",
    );
    let credited = balances(&ch, joiner);
    assert_eq!(
        credited.balances,
        balances(&c_url, joiner).balances,
        "the clearing house and exchange-c's node disagree on exchange-c's credit"
    );
    // Then it buys one ETH from exchange-a for 300 yen: the fill settles at once.
    let a_before = (
        balance_on(&ch, "exchange-a", "ETH").unwrap(),
        balance_on(&ch, "exchange-a", "JPY").unwrap(),
    );
    trade_as(
        &testnet,
        &ch,
        "exchange-a",
        &Keypair::dev("exchange-a"),
        eth_order(Side::Sell, 300),
    );
    let bought = trade_as(
        &testnet,
        &c_url,
        joiner,
        &keypair,
        eth_order(Side::Buy, 300),
    );
    let fill_height = bought.height.expect("finalized height").0;
    testnet.wait_for_height(&all_four, fill_height).unwrap();
    let c_id = get_typed::<v1::NonceInfo>(&format!("{ch}/v1/members/{joiner}/nonce"))
        .member
        .0;
    for node in all_four {
        let url = testnet.nodes[node].url();
        let trade = trade_at(&url, c_id, 1, fill_height).unwrap();
        assert_eq!(trade.quantity, Amount(ETH), "{trade:?}");
        assert_eq!(trade.value, Amount(300), "{trade:?}");
        let c_eth = balance_on(&url, joiner, "ETH").unwrap();
        let c_jpy = balance_on(&url, joiner, "JPY").unwrap();
        assert_eq!(c_eth.inventory, Amount(ETH), "exchange-c's ETH: {c_eth:?}");
        assert_eq!(c_jpy.inventory, Amount(200), "exchange-c's yen: {c_jpy:?}");
        let a_eth = balance_on(&url, "exchange-a", "ETH").unwrap();
        let a_jpy = balance_on(&url, "exchange-a", "JPY").unwrap();
        assert_eq!(a_before.0.inventory, Amount(2 * ETH), "{a_before:?}");
        assert_eq!(a_eth.inventory, Amount(ETH), "exchange-a's ETH: {a_eth:?}");
        assert_eq!(a_eth.locked, Amount(0), "exchange-a's ETH: {a_eth:?}");
        assert_eq!(a_jpy.inventory, Amount(300), "exchange-a's yen: {a_jpy:?}");
    }
    // The fill's yen leg is mirrored at the bank, trust account to trust account, and
    // the validators put the bank's confirmation on chain.
    let house = HttpBank::new(&bank_url, &seisan_bank::dev_token("clearing-house"));
    wait_until(PATIENCE, || {
        let mirrors: v1::Mirrors = try_get_typed(&format!("{ch}/v1/mirrors/{fill_height}"))?;
        Ok(mirrors.mirrors.len() == 1 && mirrors.mirrors[0].state == MirrorState::Confirmed)
    })
    .with_context(|| testnet.log_tail(0))
    .expect("the fill's bank leg is confirmed on chain");
    assert_eq!(
        (
            house.balance(&AccountId::trust(joiner)).unwrap().balance,
            house
                .balance(&AccountId::trust("exchange-a"))
                .unwrap()
                .balance
        ),
        (Amount(200), Amount(300)),
        "the trust accounts at the bank after the mirror"
    );

    // Quorum 3 of 4: any one may go (exchange-c's votes count when another is down).
    for down in all_four {
        testnet.nodes[down].kill();
        let alive: Vec<usize> = all_four.iter().copied().filter(|n| *n != down).collect();
        keeps_finalizing(
            &testnet,
            &alive,
            &format!("{} down", testnet.nodes[down].name),
        );
        testnet.launch(down).unwrap();
        testnet.wait_in_sync(&[down]).unwrap();
    }

    // Two down: the chain stands still and the two left hold the same blocks.
    let (first, second) = (1, c);
    testnet.nodes[first].kill();
    testnet.nodes[second].kill();
    std::thread::sleep(Duration::from_secs(3));
    let stalled = testnet.highest(&[0, 2]).unwrap();
    std::thread::sleep(Duration::from_secs(8));
    assert!(
        testnet.highest(&[0, 2]).unwrap() <= stalled + 1,
        "two of four down, quorum 3: nothing can be finalized"
    );
    testnet.assert_same_blocks(
        &[0, 2],
        1..=tip(&testnet.nodes[0].url()).min(tip(&testnet.nodes[2].url())),
    );

    // Both back together, then one after the other.
    testnet.launch(first).unwrap();
    testnet.launch(second).unwrap();
    keeps_finalizing(&testnet, &all_four, "both back together");
    testnet.nodes[first].kill();
    testnet.nodes[second].kill();
    std::thread::sleep(Duration::from_secs(3));
    testnet.launch(second).unwrap();
    keeps_finalizing(&testnet, &[0, 2, second], "exchange-c back first");
    testnet.launch(first).unwrap();
    keeps_finalizing(&testnet, &all_four, "exchange-a back second");
    let height = testnet.highest(&all_four).unwrap();
    testnet.wait_for_height(&all_four, height).unwrap();
    testnet.assert_same_blocks(&all_four, 1..=height);
}

/// A key rotation, then a removal, then a wiped node: three validators, quorum 2.
///
/// - exchange-a's key is rotated: once the change applies, transactions signed with
///   the old key are refused and its old node (still running on the old key) is
///   dropped from the validators' connections; restarted with the new key, the node
///   votes again and the new key trades.
/// - exchange-b (which holds nothing) is removed: the others disconnect it, its
///   transactions are refused as a removed member's, and the other members' balances
///   and the supply totals are unchanged; the chain goes on with two validators.
/// - the clearing house's node, wiped after those two set changes, resyncs from
///   genesis through both and agrees with exchange-a at every height;
/// - exchange-a's node, wiped then, installs the clearing house's certified snapshot
///   across both set changes, agrees from there, and serves balance proofs.
#[test]
fn a_key_is_rotated_a_member_removed_and_a_wiped_node_resyncs_through_both() {
    // One non-validating exchange, bench-0, to trade with exchange-a's new key: the
    // clearing house does not trade and exchange-b must hold nothing to leave.
    let mut testnet = Testnet::start_sized(3, None, 1, |genesis| {
        // exchange-b starts with nothing, so it can leave (governance rule G5).
        genesis
            .opening_balances
            .retain(|balance| balance.member != "exchange-b");
        fund_jpy(genesis, &["exchange-a"], "1000");
        genesis.opening_balances.push(OpeningBalance {
            member: "bench-0".into(),
            asset: "ETH".into(),
            amount: "1".into(),
        });
    })
    .expect("three validators");
    let mut nonces = Nonces(BTreeMap::new());
    let ch = testnet.nodes[0].url();

    // Epoch 1: exchange-a's key is rotated.
    let old_key = Keypair::dev("exchange-a");
    let new_key = Keypair::from_seed([42; 32]);
    govern(
        &testnet,
        &mut nonces,
        1,
        "clearing-house",
        &["exchange-b"],
        GovernanceChange::RotateKey {
            member: seisan_types::MemberId(1),
            public_key: new_key.public_key(),
        },
    );
    wait_for_epoch(&testnet, &[0, 2], 1);
    let chain_id = testnet.genesis.chain_id.clone();
    let genesis_hash = testnet.genesis.hash();
    let signed_with = |keypair: &Keypair, nonce: u64, body: TxBody| {
        seisan_crypto::sign_transaction(
            keypair,
            &genesis_hash,
            seisan_types::Transaction {
                chain_id: chain_id.clone(),
                member: seisan_types::MemberId(1),
                nonce: seisan_types::Nonce(nonce),
                body,
            },
        )
    };
    // The refused transaction uses no nonce: the new key's first one takes the same.
    let first_nonce = nonces.next("exchange-a");
    let stale = signed_with(&old_key, first_nonce, allocate(1));
    let answer = submit(&ch, &stale).unwrap();
    assert!(
        (400..500).contains(&answer.code),
        "a transaction signed with the rotated-away key was not refused: {answer}"
    );
    // The old node is dropped from the others' connections once the change applies.
    wait_until(PATIENCE, || {
        Ok(!status(&ch)?.peers.iter().any(|peer| peer == "exchange-a"))
    })
    .expect("the clearing house drops the rotated-away identity");
    // Restarted with the new key, the node votes again.
    let key_file = testnet.key_path("exchange-a");
    std::fs::remove_file(&key_file).unwrap();
    seisan_crypto::keyfile::write_key_file(&key_file, &new_key).unwrap();
    testnet.launch(1).unwrap();
    testnet.wait_in_sync(&[1]).unwrap();
    let rotated = status(&testnet.nodes[1].url()).unwrap();
    assert!(rotated.voting, "{rotated:?}");
    assert_eq!(rotated.member_name, "exchange-a", "{rotated:?}");
    let fresh = signed_with(&new_key, first_nonce, allocate(1));
    let answer = submit(&ch, &fresh).unwrap();
    assert!(
        answer.code == 202 || answer.code == 200,
        "the new key's transaction: {answer}"
    );
    let done = wait_finalized(&ch, &fresh.id()).unwrap();
    assert!(applied(&done), "{done:?}");
    // The API answers the new key at once and the rotated-away one never again.
    let own_balances = format!("{ch}/v1/members/exchange-a/balances");
    let answer = get_reply_as::<v1::Balances>(Some(&old_key), &own_balances).unwrap();
    assert!(
        answer.code == 401 && answer.error_code() == Some("unknown_key"),
        "the rotated-away key read exchange-a's balances: {answer}"
    );
    let answer = get_reply_as::<v1::Balances>(Some(&new_key), &own_balances).unwrap();
    assert_eq!(
        answer.code, 200,
        "the new key reads exchange-a's balances: {answer}"
    );
    // The new key trades: bench-0 offers one ETH for 300 yen, exchange-a (new key)
    // buys it, the fill is final on every node and both members' balances moved.
    finalize(
        &testnet,
        0,
        "bench-0",
        nonces.next("bench-0"),
        eth_order(Side::Sell, 300),
    );
    let buy = signed_with(
        &new_key,
        nonces.next("exchange-a"),
        eth_order(Side::Buy, 300),
    );
    let answer = submit(&testnet.nodes[1].url(), &buy).unwrap();
    assert!(
        answer.code == 202 || answer.code == 200,
        "the new key's order: {answer}"
    );
    let bought = wait_finalized(&ch, &buy.id()).unwrap();
    assert!(applied(&bought), "{bought:?}");
    let fill_height = bought.height.expect("finalized height").0;
    testnet.wait_for_height(&[0, 1, 2], fill_height).unwrap();
    let bench = testnet.genesis.member_by_name("bench-0").unwrap().0 .0;
    for node in [0, 1, 2] {
        let url = testnet.nodes[node].url();
        let trade = trade_at(&url, 1, bench, fill_height).unwrap();
        assert_eq!(trade.quantity, Amount(ETH), "{trade:?}");
        assert_eq!(trade.value, Amount(300), "{trade:?}");
        let a_eth = balance_on(&url, "exchange-a", "ETH").unwrap();
        let a_jpy = balance_on(&url, "exchange-a", "JPY").unwrap();
        assert_eq!(a_eth.inventory, Amount(ETH), "exchange-a's ETH: {a_eth:?}");
        // 1000 at genesis, 1 allocated to a customer above, 300 paid.
        assert_eq!(a_jpy.inventory, Amount(699), "exchange-a's yen: {a_jpy:?}");
        assert_eq!(a_jpy.locked, Amount(0), "exchange-a's yen: {a_jpy:?}");
        let bench_eth = balance_on(&url, "bench-0", "ETH").unwrap();
        let bench_jpy = balance_on(&url, "bench-0", "JPY").unwrap();
        assert_eq!(
            bench_eth.inventory,
            Amount(0),
            "bench-0's ETH: {bench_eth:?}"
        );
        assert_eq!(bench_eth.locked, Amount(0), "bench-0's ETH: {bench_eth:?}");
        assert_eq!(
            bench_jpy.inventory,
            Amount(300),
            "bench-0's yen: {bench_jpy:?}"
        );
    }
    testnet.nodes[2].kill();
    keeps_finalizing(
        &testnet,
        &[0, 1],
        "exchange-b down, exchange-a on its new key",
    );
    testnet.launch(2).unwrap();
    testnet.wait_in_sync(&[2]).unwrap();

    // Epoch 2: exchange-b, holding nothing, is removed.
    let balances_before = (
        balances(&ch, "clearing-house"),
        balances(&ch, "exchange-a"),
        get_typed::<v1::Supply>(&format!("{ch}/v1/supply")),
    );
    let expires_at_height = Height(tip(&ch) + 500);
    let proposal = sign(
        &testnet.genesis,
        "clearing-house",
        nonces.next("clearing-house"),
        TxBody::Propose(Proposal {
            change: GovernanceChange::RemoveMember {
                member: seisan_types::MemberId(2),
            },
            expires_at_height,
        }),
    );
    let answer = submit(&ch, &proposal).unwrap();
    assert!(answer.code == 202 || answer.code == 200, "{answer}");
    wait_finalized(&ch, &proposal.id()).unwrap();
    let approval = signed_with(
        &new_key,
        nonces.next("exchange-a"),
        TxBody::Approve {
            proposal: ProposalId(2),
        },
    );
    let answer = submit(&ch, &approval).unwrap();
    assert!(answer.code == 202 || answer.code == 200, "{answer}");
    wait_finalized(&ch, &approval.id()).unwrap();
    wait_for_epoch(&testnet, &[0, 1], 2);
    let after = status(&ch).unwrap();
    assert_eq!(
        after.validators,
        ["clearing-house", "exchange-a"],
        "{after:?}"
    );
    wait_until(PATIENCE, || {
        Ok(!status(&ch)?.peers.iter().any(|peer| peer == "exchange-b"))
    })
    .expect("the clearing house disconnects the removed member");
    let removed = sign(
        &testnet.genesis,
        "exchange-b",
        nonces.next("exchange-b"),
        allocate(1),
    );
    // A removed member's key reads nothing through the API either.
    let answer = get_reply_as::<v1::Balances>(
        Some(&Keypair::dev("exchange-b")),
        &format!("{ch}/v1/members/exchange-b/balances"),
    )
    .unwrap();
    assert!(
        answer.code == 401 && answer.error_code() == Some("unknown_key"),
        "the removed member read through the API: {answer}"
    );
    let answer = submit(&ch, &removed).unwrap();
    assert!(
        (400..500).contains(&answer.code) && answer.to_string().contains("removed"),
        "a removed member's transaction: {answer}"
    );
    keeps_finalizing(&testnet, &[0, 1], "two validators after the removal");
    let balances_after = (
        balances(&ch, "clearing-house"),
        balances(&ch, "exchange-a"),
        get_typed::<v1::Supply>(&format!("{ch}/v1/supply")),
    );
    assert_eq!(
        balances_after.0.balances, balances_before.0.balances,
        "the clearing house's balances"
    );
    assert_eq!(
        balances_after.1.balances, balances_before.1.balances,
        "exchange-a's balances"
    );
    assert_eq!(
        balances_after.2.assets, balances_before.2.assets,
        "supply totals"
    );

    // The clearing house, wiped after two set changes, resyncs from genesis.
    testnet.wipe(0).unwrap();
    testnet.launch(0).unwrap();
    wait_for_epoch(&testnet, &[0], 2);
    testnet.wait_in_sync(&[0]).unwrap();
    keeps_finalizing(&testnet, &[0, 1], "after the wiped node is back");
    let height = testnet.highest(&[0, 1]).unwrap();
    testnet.wait_for_height(&[0, 1], height).unwrap();
    testnet.assert_same_blocks(&[0, 1], 1..=height);

    // `seisan balance --proof` checks exchange-a's balance with the genesis file alone:
    // genesis's set certifies the rotation's epoch end, whose header names epoch 1's
    // set, which certifies the removal's, which names epoch 2's, which signed the tip.
    let prove_on = |testnet: &Testnet, node: usize| {
        let output = std::process::Command::new(seisan_binary())
            .args(["balance", "--member", "exchange-a", "--proof", "--json"])
            .env("SEISAN_NODE", testnet.nodes[node].url())
            .env("SEISAN_GENESIS", testnet.genesis_path())
            .env_remove("SEISAN_CONFIG")
            // Read as the clearing house (exchange-a's genesis key was rotated away).
            .env("SEISAN_KEY", testnet.key_path("clearing-house"))
            .env("HOME", testnet.dir.path())
            .output()
            .expect("running seisan balance --proof");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "balance --proof on {}: {stdout}{}",
            testnet.nodes[node].name,
            String::from_utf8_lossy(&output.stderr)
        );
        let proven: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
        assert_eq!(proven["verified"], true, "{proven}");
        assert_eq!(proven["epoch"], 2, "{proven}");
    };
    prove_on(&testnet, 0);
    prove_on(&testnet, 1);

    // exchange-a, wiped after both changes, installs the clearing house's snapshot
    // (issue 18 item 5): the offer's two epoch ends lead from genesis's set to epoch
    // 2's, which certified it. The chain stood still meanwhile (two validators, quorum
    // two) and goes on; the installed node serves balance proofs through both changes.
    let from = testnet.log_len(1);
    testnet.wipe(1).unwrap();
    // Its rotated key is not in genesis, so nothing before the snapshot names its
    // address: it is given.
    let listen = testnet.genesis.members[1]
        .p2p_address
        .clone()
        .expect("exchange-a's address");
    testnet.nodes[1].extra_args = vec![
        "--snapshot-sync-min-blocks".into(),
        "1".into(),
        "--listen".into(),
        listen,
    ];
    testnet.launch(1).unwrap();
    testnet.wait_in_sync(&[1]).unwrap();
    keeps_finalizing(&testnet, &[0, 1], "after exchange-a synced from a snapshot");
    let log = testnet.log_since(1, from);
    assert_eq!(
        log_field(&log, "installed a certified snapshot", "epoch").as_deref(),
        Some("2"),
        "{log}"
    );
    let installed: u64 = log_field(&log, "installed a certified snapshot", "height")
        .and_then(|height| height.parse().ok())
        .unwrap_or_else(|| panic!("no installed height in:\n{log}"));
    let height = testnet.highest(&[0, 1]).unwrap();
    testnet.wait_for_height(&[0, 1], height).unwrap();
    testnet.assert_same_blocks(&[0, 1], installed..=height);
    prove_on(&testnet, 1);
}
