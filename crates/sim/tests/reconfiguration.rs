//! Validator-set changes under the simulator's fault model (issue 15, item 8): every
//! seed draws a plan of changes (add a member, remove one, rotate a key, change the
//! quorum, several in flight at once) on top of message loss, duplication, delays,
//! partitions, crashes and, in the second configuration, a byzantine member. Agreement
//! must hold at every height across every epoch change, every certificate must verify
//! against the set of its epoch (with the seals that link an epoch's last block), and
//! the chain must keep finalizing past the last change (the healing phase's target is
//! above the plan's last boundary).
//!
//! 1,000 seeds by default (600 of three validators, 400 of four with a byzantine
//! member), each configuration spread over the machine's cores;
//! `SEISAN_SIM_RECONFIGURATION_SEEDS=N` runs N of each instead.

use seisan_sim::{run_seed, SeedReport, SimConfig};
use std::ops::Range;

fn seeds(default: u64) -> Range<u64> {
    let count = std::env::var("SEISAN_SIM_RECONFIGURATION_SEEDS")
        .ok()
        .map(|text| text.parse::<u64>().expect("a seed count"))
        .unwrap_or(default);
    0..count
}

/// Runs the seeds on every core (each seed is independent and deterministic).
fn run_all(config: &SimConfig, seeds: Range<u64>) -> Vec<SeedReport> {
    let threads = std::thread::available_parallelism().map_or(1, |count| count.get()) as u64;
    let mut reports: Vec<SeedReport> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let seeds = seeds.clone();
                scope.spawn(move || {
                    seeds
                        .filter(|seed| seed % threads == thread)
                        .map(|seed| run_seed(config, seed))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("a simulation thread panicked"))
            .collect()
    });
    reports.sort_by_key(|report| report.seed);
    reports
}

/// Every seed passes and carried out its whole plan; returns (epoch changes, those
/// reached under faults, epoch ends finalized through seals).
fn assert_all_pass(reports: &[SeedReport]) -> (u64, u64, u64) {
    let failures: Vec<String> = reports
        .iter()
        .filter(|report| report.failed())
        .map(|report| {
            format!(
                "seed {}: violations {:?}, liveness {:?}\n  replay: {}",
                report.seed, report.violations, report.liveness_failure, report.replay
            )
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for report in reports {
        // Healing finalizes past the last boundary, so every planned epoch is reached.
        assert_eq!(
            report.highest_epoch, report.reconfigurations,
            "seed {}: reached epoch {} of {}; replay: {}",
            report.seed, report.highest_epoch, report.reconfigurations, report.replay
        );
    }
    let sum = |field: fn(&SeedReport) -> u64| reports.iter().map(field).sum::<u64>();
    (
        sum(|report| report.reconfigurations),
        sum(|report| report.highest_epoch_under_faults),
        sum(|report| report.sealed_epoch_ends),
    )
}

#[test]
fn three_validators_reconfigure_under_all_faults() {
    let config = SimConfig::reconfiguring();
    let seeds = seeds(600);
    let count = seeds.end - seeds.start;
    let reports = run_all(&config, seeds);
    let (changes, under_faults, sealed) = assert_all_pass(&reports);
    println!(
        "{count} seeds: {changes} epoch changes, {under_faults} under faults, {sealed} sealed"
    );
    assert!(changes >= count, "plans drew too few changes: {changes}");
    assert!(
        under_faults * 5 >= changes,
        "too few epoch changes happened under faults: {under_faults} of {changes}"
    );
    assert!(
        reports.iter().map(|report| report.crashes).sum::<u64>() > count,
        "crashes were drawn too rarely to test restarts across epochs"
    );
    if count >= 200 {
        assert!(
            sealed > 0,
            "no epoch end was ever finalized through its seals"
        );
    }
}

#[test]
fn four_validators_with_a_byzantine_member_reconfigure() {
    let config = SimConfig {
        validators: 4,
        quorum: 3,
        byzantine: 1,
        ..SimConfig::reconfiguring()
    };
    let seeds = seeds(400);
    let count = seeds.end - seeds.start;
    let reports = run_all(&config, seeds);
    let (changes, under_faults, sealed) = assert_all_pass(&reports);
    println!(
        "{count} seeds: {changes} epoch changes, {under_faults} under faults, {sealed} sealed"
    );
    assert!(changes >= count, "plans drew too few changes: {changes}");
    assert!(
        reports
            .iter()
            .any(|report| report.evidence_against_byzantine > 0),
        "no byzantine misbehaviour was ever detected"
    );
}

#[test]
fn the_same_reconfiguring_seed_gives_the_same_trace() {
    let config = SimConfig::reconfiguring();
    let first = run_seed(&config, 5);
    let again = run_seed(&config, 5);
    assert_eq!(first.trace_hash, again.trace_hash);
    assert_eq!(first.highest_epoch, again.highest_epoch);
    assert!(first.reconfigurations > 0);
}

/// Genesis validators 0, 1 and 2 (q = 2) and member 3, a spare observing from genesis:
/// member 3 is added (q = 3) and member 0's key rotated in one block, member 1 removed
/// (q = 2) while that change is in flight, then the quorum raised to 3.
fn scenario() -> SimConfig {
    use seisan_sim::app::{Approval, Change};
    use seisan_types::{Height, MemberId};
    let approval = |height: u64, change: Change| Approval {
        height: Height(height),
        change,
    };
    SimConfig {
        fixed_plan: Some(vec![
            approval(
                3,
                Change::Add {
                    member: MemberId(3),
                    quorum: 3,
                },
            ),
            approval(
                3,
                Change::Rotate {
                    member: MemberId(0),
                    generation: 1,
                },
            ),
            approval(
                6,
                Change::Remove {
                    member: MemberId(1),
                    quorum: 2,
                },
            ),
            approval(13, Change::Quorum { quorum: 3 }),
        ]),
        ..SimConfig::reconfiguring()
    }
}

#[test]
fn an_added_member_catches_up_and_votes_a_removed_one_never_does() {
    for (random_faults, seeds) in [(false, 0..2), (true, 0..12)] {
        let config = SimConfig {
            random_faults,
            ..scenario()
        };
        let reports: Vec<SeedReport> = seeds.map(|seed| run_seed(&config, seed)).collect();
        assert_all_pass(&reports);
        for report in &reports {
            let signers = |epoch: u64| report.signers.get(&epoch).cloned().unwrap_or_default();
            let context = format!(
                "seed {} (faults {random_faults}): signers {:?}; replay: {}",
                report.seed, report.signers, report.replay
            );
            assert_eq!(report.highest_epoch, 3, "{context}");
            assert!(
                !signers(0).contains(&3),
                "the spare signed before it was added: {context}"
            );
            // Epoch 3 is {0, 2, 3} with q = 3: every certificate carries the added member
            // and member 0 (under its rotated key, or it would not verify).
            assert_eq!(signers(3), [0, 2, 3].into(), "{context}");
            for epoch in 2..=3 {
                assert!(
                    !signers(epoch).contains(&1),
                    "the removed member signed in epoch {epoch}: {context}"
                );
            }
        }
    }
}
