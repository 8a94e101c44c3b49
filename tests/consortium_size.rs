//! Consortiums larger than three (issue 15, item 6), with real `seisan node` processes on
//! loopback, started from `seisan genesis testnet --validators N --quorum Q` as
//! `scripts/testnet.sh --validators N` does.
//!
//! - Four validators, quorum 3: with any one of the four killed (each in turn) the
//!   others keep finalizing; with two killed the chain stands still and the two left
//!   hold the same blocks; after both return (together, and one after the other) all
//!   four finalize again, with the same block hash and state root at every height.
//!   tests/recovery.rs times how fast four validators resume after every ordered pair
//!   (and triple) of kills; this file checks what it does not: that one loss costs
//!   nothing, and that two losses stop the chain rather than fork it.
//! - Four validators, quorum 3, one of them signing a conflicting twin of each of its
//!   notarize and finalize votes (`seisan node --fault equivocate`): every honest node
//!   keeps verifiable evidence naming it, and the honest nodes keep finalizing the same
//!   blocks.
//! - Five validators, quorum 3: they finalize, and keep finalizing with two killed.

use seisan_api::v1;
use seisan_tests::*;
use std::time::{Duration, Instant};

/// New blocks the validators left must finalize while some are down.
const BLOCKS_WHILE_DOWN: u64 = 3;
/// After a kill that leaves fewer than a quorum, how long a block whose last vote left
/// before the kill may still take to reach the validators left.
const SETTLE: Duration = Duration::from_secs(2);
/// How long the chain must then stand still: three view timeouts (2 s each), in which
/// the validators left time out, nullify and propose again without a quorum.
const STANDING: Duration = Duration::from_secs(6);
/// How long the first of two validators returning one after the other runs with the
/// others before the second returns.
const BETWEEN_RETURNS: Duration = Duration::from_secs(2);

/// `validators` validators with quorum `quorum`, each at height 1 at least.
fn consortium(validators: usize, quorum: u32) -> Testnet {
    let testnet = Testnet::start_sized(validators, Some(quorum), 0, |_| {}).unwrap();
    assert_eq!(testnet.nodes.len(), validators);
    assert_eq!(testnet.genesis.validators().len(), validators);
    assert_eq!(testnet.genesis.quorum, quorum);
    testnet.wait_for_height(&all(&testnet), 1).unwrap();
    testnet
}

fn all(testnet: &Testnet) -> Vec<usize> {
    (0..testnet.nodes.len()).collect()
}

fn except(testnet: &Testnet, down: &[usize]) -> Vec<usize> {
    all(testnet)
        .into_iter()
        .filter(|index| !down.contains(index))
        .collect()
}

fn names(testnet: &Testnet, nodes: &[usize]) -> String {
    nodes
        .iter()
        .map(|index| testnet.nodes[*index].name.as_str())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Kills `down` (kill -9) and asserts the validators left finalize
/// [`BLOCKS_WHILE_DOWN`] new blocks.
fn kill_and_keep_finalizing(testnet: &mut Testnet, down: &[usize]) {
    let up = except(testnet, down);
    for &index in down {
        testnet.nodes[index].kill();
    }
    let before = testnet.highest(&up).expect("a validator left answers");
    let started = Instant::now();
    wait_until(PATIENCE, || {
        Ok(testnet
            .highest(&up)
            .is_some_and(|top| top >= before + BLOCKS_WHILE_DOWN))
    })
    .unwrap_or_else(|error| {
        panic!(
            "with {} killed ({} of {} left, quorum {}) the chain stopped at {before}: {error:#}",
            names(testnet, down),
            up.len(),
            testnet.nodes.len(),
            testnet.genesis.quorum
        )
    });
    println!(
        "consortium: {} killed: {BLOCKS_WHILE_DOWN} blocks in {:.1} s",
        names(testnet, down),
        started.elapsed().as_secs_f64()
    );
}

/// Kills `down`, which leaves fewer than a quorum, and asserts that the chain stands
/// still and that the validators left hold the same blocks; returns the height it
/// stands at.
fn kill_and_stand_still(testnet: &mut Testnet, down: &[usize]) -> u64 {
    let up = except(testnet, down);
    assert!(up.len() < testnet.genesis.quorum as usize);
    for &index in down {
        testnet.nodes[index].kill();
    }
    std::thread::sleep(SETTLE);
    let stood = testnet.highest(&up).expect("a validator left answers");
    std::thread::sleep(STANDING);
    assert_eq!(
        testnet.highest(&up),
        Some(stood),
        "with {} killed ({} of {} left, quorum {}) the chain moved on",
        names(testnet, down),
        up.len(),
        testnet.nodes.len(),
        testnet.genesis.quorum
    );
    let common = up
        .iter()
        .map(|index| node_height(&testnet.nodes[*index]).expect("a validator left answers"))
        .min()
        .expect("some validator is left");
    testnet.assert_same_blocks(&up, 1..=common);
    println!(
        "consortium: {} killed: the chain stands at {stood} for {} s; {} agree up to {common}",
        names(testnet, down),
        STANDING.as_secs(),
        names(testnet, &up)
    );
    stood
}

/// Starts each group of killed validators again (a group together, the next once the
/// one before answers and [`BETWEEN_RETURNS`] passed), then waits until every validator
/// holds a block above `stood` and compares every height up to the lowest tip.
fn return_and_agree(testnet: &mut Testnet, groups: &[&[usize]], stood: u64) {
    for (position, group) in groups.iter().enumerate() {
        if position > 0 {
            std::thread::sleep(BETWEEN_RETURNS);
        }
        for &index in group.iter() {
            testnet.launch(index).unwrap();
        }
        let launched = Instant::now();
        for &index in group.iter() {
            while node_height(&testnet.nodes[index]).is_none() {
                assert!(
                    launched.elapsed() < PATIENCE,
                    "{} never answered after its restart",
                    testnet.nodes[index].name
                );
                testnet.relaunch_if_exited(index);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let everyone = all(testnet);
    testnet
        .wait_for_height(&everyone, stood + 1)
        .unwrap_or_else(|error| {
            panic!(
                "after {} returned, not every validator finalized past {stood}: {error:#}",
                groups
                    .iter()
                    .map(|group| names(testnet, group))
                    .collect::<Vec<_>>()
                    .join(", then ")
            )
        });
    let lowest = everyone
        .iter()
        .filter_map(|index| node_height(&testnet.nodes[*index]))
        .min()
        .expect("every validator answers");
    testnet.assert_same_blocks(&everyone, 1..=lowest);
    println!(
        "consortium: all {} validators past {stood}; same block and state root at heights 1..={lowest}",
        everyone.len()
    );
}

#[test]
fn four_validators_with_quorum_three_survive_one_loss_stop_at_two_and_agree_after() {
    let mut testnet = consortium(4, 3);
    for index in 0..4 {
        kill_and_keep_finalizing(&mut testnet, &[index]);
        let stood = testnet.highest(&except(&testnet, &[index])).unwrap();
        return_and_agree(&mut testnet, &[&[index]], stood);
    }
    let stood = kill_and_stand_still(&mut testnet, &[0, 2]);
    return_and_agree(&mut testnet, &[&[0, 2]], stood);
    let stood = kill_and_stand_still(&mut testnet, &[1, 3]);
    return_and_agree(&mut testnet, &[&[3], &[1]], stood);
}

#[test]
fn an_equivocating_validator_leaves_evidence_on_every_honest_node_and_forks_nothing() {
    let mut testnet = consortium(4, 3);
    let byzantine = 3;
    let name = testnet.nodes[byzantine].name.clone();
    assert_eq!(name, "exchange-c");
    let (member, _) = testnet.genesis.member_by_name(&name).unwrap();
    testnet.nodes[byzantine].extra_args = vec!["--fault".into(), "equivocate".into()];
    testnet.launch(byzantine).unwrap();
    let honest = [0, 1, 2];
    let before = testnet.highest(&honest).unwrap();

    // Every honest node keeps evidence naming exchange-c, which verifies against genesis.
    for &index in &honest {
        let url = format!("{}/v1/evidence", testnet.nodes[index].url());
        let mut listed = None;
        wait_until(PATIENCE, || {
            let body = try_get_typed::<v1::EvidenceList>(&url)?;
            let found = body
                .evidence
                .iter()
                .any(|record| record.member == member && record.verified);
            listed = Some(body);
            Ok(found)
        })
        .unwrap_or_else(|error| {
            panic!(
                "{} holds no verified evidence against {name}: {error:#}; it lists {listed:?}",
                testnet.nodes[index].name
            )
        });
        let listed = listed.expect("listed when the wait succeeded");
        let records = &listed.evidence;
        assert!(
            records.iter().all(|record| record.member == member),
            "{} accuses an honest member: {listed:?}",
            testnet.nodes[index].name
        );
        println!(
            "consortium: {} holds {} evidence record(s) against {name}",
            testnet.nodes[index].name,
            records.len()
        );
    }

    // The honest three (a quorum) keep finalizing, and hold the same blocks.
    testnet
        .wait_for_height(&honest, before + 2 * BLOCKS_WHILE_DOWN)
        .unwrap_or_else(|error| {
            panic!("the honest validators stopped beside an equivocating one: {error:#}")
        });
    let lowest = honest
        .iter()
        .filter_map(|index| node_height(&testnet.nodes[*index]))
        .min()
        .unwrap();
    testnet.assert_same_blocks(&honest, 1..=lowest);
}

#[test]
fn five_validators_with_quorum_three_finalize_and_survive_two_killed() {
    let mut testnet = consortium(5, 3);
    let everyone = all(&testnet);
    testnet.wait_for_height(&everyone, 2).unwrap();
    testnet.assert_same_blocks(&everyone, 1..=2);
    kill_and_keep_finalizing(&mut testnet, &[1, 3]);
    let stood = testnet.highest(&except(&testnet, &[1, 3])).unwrap();
    return_and_agree(&mut testnet, &[&[1, 3]], stood);
}
