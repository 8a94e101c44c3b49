//! Quorum-loss outages on a network that behaves like gossipsub (identical bytes are
//! delivered once per dedup window, links drop and return): every order of stopping
//! and restarting more than n - q validators, with the random faults off so that only
//! the outage is tested, must resume finalizing within the resume bound once a quorum
//! is connected again, with one chain on every node.
//!
//! `issue_14_quorum_loss_seeds_resume` is the regression test for issue 14, defect 1:
//! with the engine of commit aeb07f5, which re-sent its votes and certificates as gossip
//! of identical bytes, each of its seeds stalls once a quorum is back (the validators
//! end one view apart and the one ahead never gets its certificate across).

use seisan_sim::{run_seed, OutagePlan, QuorumLoss, SeedReport, SimConfig};

/// Time between the restarts of a plan that restarts one at a time: long enough that
/// the first quorum back must make progress on its own.
const RESTART_GAP_MS: u64 = 1_500;

fn outage_config(base: SimConfig, plan: OutagePlan) -> SimConfig {
    SimConfig {
        fault_ms: 1_000,
        heal_ms: 20_000,
        quorum_loss: QuorumLoss::Always,
        outage_plan: Some(plan),
        random_faults: false,
        ..base
    }
}

fn describe_failure(report: &SeedReport) -> Option<String> {
    report.failed().then(|| {
        format!(
            "seed {}: violations {:?}, liveness {:?}\n  replay: {}",
            report.seed, report.violations, report.liveness_failure, report.replay
        )
    })
}

fn plan(victims: &[usize], restarts: Vec<usize>, restart_gap_ms: u64) -> OutagePlan {
    OutagePlan {
        victims: victims.to_vec(),
        stop_gap_ms: 800,
        down_ms: 500,
        restarts,
        restart_gap_ms,
    }
}

/// For each order of stopping, each order of restarting one at a time (every
/// permutation of the stopped nodes) and a restart all together.
fn every_restart_order(stop_orders: &[Vec<usize>]) -> Vec<OutagePlan> {
    let mut plans = Vec::new();
    for victims in stop_orders {
        for permutation in orders(victims.len(), victims.len()) {
            let restarts = permutation.iter().map(|index| victims[*index]).collect();
            plans.push(plan(victims, restarts, RESTART_GAP_MS));
        }
        plans.push(plan(victims, victims.clone(), 0));
    }
    plans
}

/// For each order of stopping one plan, the restart order cycling through every
/// permutation of the stopped nodes and a restart all together: every stop order and
/// every restart order appear, not every pair of them.
fn cycled_restart_orders(stop_orders: &[Vec<usize>]) -> Vec<OutagePlan> {
    stop_orders
        .iter()
        .enumerate()
        .map(|(index, victims)| {
            let permutations = orders(victims.len(), victims.len());
            match permutations.get(index % (permutations.len() + 1)) {
                Some(permutation) => {
                    let restarts = permutation.iter().map(|at| victims[*at]).collect();
                    plan(victims, restarts, RESTART_GAP_MS)
                }
                None => plan(victims, victims.clone(), 0),
            }
        })
        .collect()
}

/// Every ordered choice of `count` distinct nodes out of `n`.
fn orders(n: usize, count: usize) -> Vec<Vec<usize>> {
    if count == 0 {
        return vec![vec![]];
    }
    let mut all = Vec::new();
    for shorter in orders(n, count - 1) {
        for node in (0..n).filter(|node| !shorter.contains(node)) {
            let mut order = shorter.clone();
            order.push(node);
            all.push(order);
        }
    }
    all
}

fn run_plans(base: &SimConfig, plans: Vec<OutagePlan>, seed: u64) {
    let mut failures = Vec::new();
    for plan in plans {
        let config = outage_config(base.clone(), plan.clone());
        let report = run_seed(&config, seed);
        assert_eq!(report.quorum_losses, 1, "{plan:?}: the outage did not run");
        assert!(
            report.resume_ms_max.is_some() || report.failed(),
            "{plan:?}: no quorum came back"
        );
        if let Some(failure) = describe_failure(&report) {
            failures.push(format!("{plan:?}\n  {failure}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Seeds whose drawn outage (all random faults on) stalled the engine of aeb07f5 after
/// a quorum was connected again ("stalled after quorum"), and only because gossip is
/// deduplicated: with `--no-gossip-dedup` that engine passes them. To check again: put
/// aeb07f5's tree aside (`git archive aeb07f5 | tar -x -C /tmp/old`), copy this crate
/// into it, make `connection_input` return `None` and drop the `Status` arm of
/// `check_signed` (that engine has neither), and run this test there: it fails. Seeds
/// follow the simulator's draws, so a change to the draws must pick them again.
/// Three validators, q = 2 ...
const ISSUE_14_SEEDS_THREE: [u64; 3] = [21, 30, 102];
/// ... and four, q = 3.
const ISSUE_14_SEEDS_FOUR: [u64; 2] = [34, 150];

#[test]
fn issue_14_quorum_loss_seeds_resume() {
    let three = SimConfig::three_of_two();
    let four = SimConfig {
        byzantine: 0,
        ..SimConfig::four_of_three_byzantine()
    };
    let runs = ISSUE_14_SEEDS_THREE
        .iter()
        .map(|seed| (three.clone(), *seed))
        .chain(ISSUE_14_SEEDS_FOUR.iter().map(|seed| (four.clone(), *seed)));
    for (base, seed) in runs {
        let config = SimConfig {
            quorum_loss: QuorumLoss::Always,
            outage_may_stop_all: false,
            ..base
        };
        let report = run_seed(&config, seed);
        assert_eq!(report.quorum_losses, 1);
        assert!(describe_failure(&report).is_none(), "{report:#?}");
        assert!(report.resume_ms_max.is_some());
    }
}

/// Issue 14, defect 1, as the operator ran it: three validators; exchange-b (1) is
/// killed, then exchange-a (0) while the clearing house (2) and exchange-a go on
/// finalizing; exchange-b alone restarts, so it and the clearing house are a quorum.
/// They must finalize a new height within the resume bound, before exchange-a returns.
/// (On a calm network the engine of aeb07f5 passes this one: the survivor's nullify,
/// published while it had no peer, was never cached, so it reaches exchange-b, which
/// answers about its older view and is helped.)
#[test]
fn the_issue_14_scenario_resumes() {
    let plan = OutagePlan {
        victims: vec![1, 0],
        stop_gap_ms: 2_000,
        down_ms: 1_000,
        restarts: vec![1, 0],
        restart_gap_ms: 3 * SimConfig::three_of_two().resume_bound_ms(),
    };
    for seed in 0..4 {
        let report = run_seed(
            &outage_config(SimConfig::three_of_two(), plan.clone()),
            seed,
        );
        assert!(describe_failure(&report).is_none(), "{report:#?}");
        assert!(report.resume_ms_max.is_some());
    }
}

#[test]
fn three_validators_every_order_of_two_stops_and_restarts() {
    run_plans(
        &SimConfig::three_of_two(),
        every_restart_order(&orders(3, 2)),
        1,
    );
}

#[test]
fn four_validators_every_order_of_two_stops_and_restarts() {
    let base = SimConfig {
        byzantine: 0,
        ..SimConfig::four_of_three_byzantine()
    };
    run_plans(&base, every_restart_order(&orders(4, 2)), 2);
}

#[test]
fn four_validators_every_order_of_three_stops_and_of_restarts() {
    let base = SimConfig {
        byzantine: 0,
        ..SimConfig::four_of_three_byzantine()
    };
    run_plans(&base, cycled_restart_orders(&orders(4, 3)), 2);
}

#[test]
fn every_validator_stopped_at_once_resumes() {
    for base in [
        SimConfig::three_of_two(),
        SimConfig {
            byzantine: 0,
            ..SimConfig::four_of_three_byzantine()
        },
    ] {
        let all: Vec<usize> = (0..base.validators as usize).collect();
        let plans = cycled_restart_orders(&[all.clone(), all.clone()])
            .into_iter()
            .map(|plan| OutagePlan {
                stop_gap_ms: 0,
                ..plan
            })
            .collect();
        run_plans(&base, plans, 3);
    }
}

/// Every validator stops in a view where some had signed `finalize(v, b)` and the
/// others `nullify(v)`, before anyone held the notarization or the finalization: after
/// the restart nobody has the notarization (it was never persisted), the finalize
/// signers may not nullify, the nullifiers may not finalize, and the engine does not
/// send its recorded notarize and finalize votes again, so view v never ends. Found by
/// the drawn outages (seed 107 here: every node at view 32; validators 1 and 2 signed
/// finalize for one block, validator 0 nullify). Fixed in the engine by keeping the
/// notarization of v durably before a finalize(v) vote leaves (R10); this seed, and
/// seeds 622 and 667 of the default configuration, stalled before.
#[test]
fn every_validator_stopped_in_a_split_view_resumes() {
    let config = SimConfig {
        quorum_loss: QuorumLoss::Always,
        ..SimConfig::three_of_two()
    };
    let report = run_seed(&config, 107);
    assert!(describe_failure(&report).is_none(), "{report:#?}");
}
