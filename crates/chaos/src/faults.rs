//! The seeded fault schedule: which fault, on which node, held for how long, and how
//! long to wait before the next one. Pure: the same seed gives the same schedule, so a
//! failing run can be replayed with `--seed`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt;

/// The kinds of fault the chaos run injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// kill -9 a node, then start it again on the same data directory.
    Kill,
    /// SIGSTOP a node, then SIGCONT it.
    Pause,
    /// Cut a node's network link (its namespace's veth goes down), then restore it.
    Partition,
    /// kill -9 a node, delete its data directory and start it again: it must resync
    /// from genesis.
    Wipe,
    /// kill -9 the bank (the accounting system), then start it again on its own store:
    /// the nodes' bank watchers must catch up with nothing lost or credited twice. It
    /// has no node; `Fault::node` is ignored.
    BankRestart,
    /// Stop more validators than the chain can lose (`Fault::node`, then
    /// [`QuorumLoss::second`]; with 4 validators and q = 3, two), so the chain stops,
    /// and bring them back in [`QuorumLoss::order`]: once a quorum is back, a new
    /// block must be finalized within a bound.
    QuorumLoss,
}

impl FaultKind {
    pub const ALL: [FaultKind; 6] = [
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Partition,
        FaultKind::Wipe,
        FaultKind::BankRestart,
        FaultKind::QuorumLoss,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
            FaultKind::Wipe => "wipe",
            FaultKind::BankRestart => "bank_restart",
            FaultKind::QuorumLoss => "quorum_loss",
        }
    }

    /// Whether the fault hits a validator (and so may leave it behind the chain).
    pub fn hits_node(self) -> bool {
        self != FaultKind::BankRestart
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a quorum-loss outage stops its validators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// kill -9; it returns by starting again on its data directory.
    Kill,
    /// SIGSTOP; it returns with SIGCONT.
    Pause,
}

/// In which order the validators of a quorum-loss outage return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnOrder {
    /// One at a time, the first stopped first.
    FirstStoppedFirst,
    /// One at a time, the last stopped first.
    LastStoppedFirst,
    /// Both at once.
    Together,
}

impl ReturnOrder {
    pub const ALL: [ReturnOrder; 3] = [
        ReturnOrder::FirstStoppedFirst,
        ReturnOrder::LastStoppedFirst,
        ReturnOrder::Together,
    ];

    /// The stopped validators (in the order they were stopped) grouped as they
    /// return: each group together, one group after another.
    pub fn groups(self, stopped: [usize; 2]) -> Vec<Vec<usize>> {
        let [first, last] = stopped;
        match self {
            ReturnOrder::FirstStoppedFirst => vec![vec![first], vec![last]],
            ReturnOrder::LastStoppedFirst => vec![vec![last], vec![first]],
            ReturnOrder::Together => vec![vec![first, last]],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ReturnOrder::FirstStoppedFirst => "first stopped returns first",
            ReturnOrder::LastStoppedFirst => "last stopped returns first",
            ReturnOrder::Together => "both return together",
        }
    }
}

/// The rest of a [`FaultKind::QuorumLoss`] fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuorumLoss {
    /// The validator stopped after `Fault::node` (never the same).
    pub second: usize,
    pub stop: Stop,
    pub order: ReturnOrder,
    /// Time between stopping the first and the second (the chain goes on meanwhile,
    /// so the first returns behind it).
    pub stagger_ms: u64,
    /// Time between two return groups once a quorum is back.
    pub between_returns_ms: u64,
}

/// One planned fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub node: usize,
    /// How long the fault lasts before it is healed (a killed node stays down this long;
    /// for a quorum loss, how long the chain stays without a quorum).
    pub hold_ms: u64,
    /// Time from this fault's injection to the next one's (at least; the run also waits
    /// for progress to resume first).
    pub gap_ms: u64,
    /// Set exactly when `kind` is [`FaultKind::QuorumLoss`].
    pub quorum_loss: Option<QuorumLoss>,
}

/// The shortest and longest gap between two injections: "about every 10 seconds".
pub const MIN_GAP_MS: u64 = 7_000;
pub const MAX_GAP_MS: u64 = 11_000;
// Ten minutes of gaps hold the 50 injections a 10-minute run must reach.
const _: () = assert!(10 * 60 * 1000 / MAX_GAP_MS >= 50);

/// At least every this many faults one is a quorum loss (drawn like any other kind,
/// and forced when the ones before were not): a 10-minute run (50 faults) has at
/// least 10.
pub const QUORUM_LOSS_AT_LEAST_EVERY: u32 = 5;
/// The fault (counting from 1) that is a quorum loss at the latest, so that even a
/// 2-minute run (about 12 faults) has one.
pub const FIRST_QUORUM_LOSS_BY: u32 = 3;
const _: () = assert!(FIRST_QUORUM_LOSS_BY <= QUORUM_LOSS_AT_LEAST_EVERY);
// The first one comes within the first 2 minutes of gaps, and 10 minutes hold 5.
const _: () = assert!(FIRST_QUORUM_LOSS_BY as u64 * MAX_GAP_MS <= 2 * 60 * 1000 / 3);
const _: () = assert!(50 / QUORUM_LOSS_AT_LEAST_EVERY >= 5);

/// The quorum losses a run of `minutes` must have injected to pass: one per two
/// minutes, at least one (the schedule forces more).
pub fn quorum_losses_required(minutes: f64) -> u64 {
    ((minutes / 2.0).floor() as u64).max(1)
}

/// A deterministic stream of faults.
#[derive(Debug)]
pub struct FaultPlan {
    rng: StdRng,
    nodes: usize,
    /// Faults planned since the last quorum loss (or the start, counted so that fault
    /// [`FIRST_QUORUM_LOSS_BY`] is one at the latest).
    since_quorum_loss: u32,
}

impl FaultPlan {
    pub fn new(seed: u64, nodes: usize) -> FaultPlan {
        assert!(
            nodes >= 2,
            "a fault plan needs two nodes to take quorum down"
        );
        FaultPlan {
            rng: StdRng::seed_from_u64(seed),
            nodes,
            since_quorum_loss: QUORUM_LOSS_AT_LEAST_EVERY - FIRST_QUORUM_LOSS_BY,
        }
    }

    pub fn next_fault(&mut self) -> Fault {
        let drawn = FaultKind::ALL[self.rng.gen_range(0..FaultKind::ALL.len())];
        let kind = if self.since_quorum_loss + 1 >= QUORUM_LOSS_AT_LEAST_EVERY {
            FaultKind::QuorumLoss
        } else {
            drawn
        };
        self.since_quorum_loss = if kind == FaultKind::QuorumLoss {
            0
        } else {
            self.since_quorum_loss + 1
        };
        let node = self.rng.gen_range(0..self.nodes);
        let hold_ms = match kind {
            FaultKind::Kill | FaultKind::Wipe | FaultKind::BankRestart => {
                self.rng.gen_range(500..3_000)
            }
            FaultKind::Pause => self.rng.gen_range(2_000..5_000),
            FaultKind::Partition => self.rng.gen_range(3_000..7_000),
            FaultKind::QuorumLoss => self.rng.gen_range(1_000..4_000),
        };
        let quorum_loss = (kind == FaultKind::QuorumLoss).then(|| QuorumLoss {
            second: (node + self.rng.gen_range(1..self.nodes)) % self.nodes,
            stop: if self.rng.gen_bool(0.5) {
                Stop::Kill
            } else {
                Stop::Pause
            },
            order: ReturnOrder::ALL[self.rng.gen_range(0..ReturnOrder::ALL.len())],
            stagger_ms: self.rng.gen_range(0..2_000),
            between_returns_ms: self.rng.gen_range(0..3_000),
        });
        let gap_ms = self.rng.gen_range(MIN_GAP_MS..=MAX_GAP_MS);
        assert!(hold_ms < gap_ms, "a fault heals before the next one starts");
        assert!(quorum_loss.is_none_or(|outage| outage.second != node));
        Fault {
            kind,
            node,
            hold_ms,
            gap_ms,
            quorum_loss,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let mut a = FaultPlan::new(42, 4);
        let mut b = FaultPlan::new(42, 4);
        let first: Vec<Fault> = (0..50).map(|_| a.next_fault()).collect();
        let second: Vec<Fault> = (0..50).map(|_| b.next_fault()).collect();
        assert_eq!(first, second);
        let mut c = FaultPlan::new(43, 4);
        let third: Vec<Fault> = (0..50).map(|_| c.next_fault()).collect();
        assert_ne!(first, third);
    }

    #[test]
    fn every_kind_and_node_comes_up_and_gaps_are_about_ten_seconds() {
        let mut plan = FaultPlan::new(7, 4);
        let faults: Vec<Fault> = (0..200).map(|_| plan.next_fault()).collect();
        for kind in FaultKind::ALL {
            assert!(
                faults.iter().any(|fault| fault.kind == kind),
                "{kind} never planned"
            );
        }
        for node in 0..4 {
            assert!(faults.iter().any(|fault| fault.node == node));
        }
        assert!(faults
            .iter()
            .all(|fault| (MIN_GAP_MS..=MAX_GAP_MS).contains(&fault.gap_ms)));
    }

    #[test]
    fn quorum_losses_come_early_often_and_in_every_variant() {
        for seed in 0..20 {
            let mut plan = FaultPlan::new(seed, 4);
            let faults: Vec<Fault> = (0..200).map(|_| plan.next_fault()).collect();
            let positions: Vec<usize> = faults
                .iter()
                .enumerate()
                .filter(|(_, fault)| fault.kind == FaultKind::QuorumLoss)
                .map(|(index, _)| index + 1)
                .collect();
            assert!(
                positions[0] <= FIRST_QUORUM_LOSS_BY as usize,
                "{positions:?}"
            );
            for pair in positions.windows(2) {
                assert!(pair[1] - pair[0] <= QUORUM_LOSS_AT_LEAST_EVERY as usize);
            }
            // A 10-minute run's 50 faults hold at least 5.
            assert!(positions.iter().filter(|at| **at <= 50).count() >= 5);
            for fault in &faults {
                let outage = fault.quorum_loss;
                assert_eq!(outage.is_some(), fault.kind == FaultKind::QuorumLoss);
                if let Some(outage) = outage {
                    assert_ne!(outage.second, fault.node);
                    assert!(outage.second < 4);
                }
            }
            if seed == 0 {
                let outages: Vec<QuorumLoss> = faults
                    .iter()
                    .filter_map(|fault| fault.quorum_loss)
                    .collect();
                for order in ReturnOrder::ALL {
                    for stop in [Stop::Kill, Stop::Pause] {
                        assert!(
                            outages
                                .iter()
                                .any(|outage| outage.order == order && outage.stop == stop),
                            "{order:?} after {stop:?} never planned"
                        );
                    }
                }
            }
        }
        assert_eq!(quorum_losses_required(2.0), 1);
        assert_eq!(quorum_losses_required(10.0), 5);
    }

    #[test]
    fn return_orders_bring_back_both_validators() {
        assert_eq!(
            ReturnOrder::FirstStoppedFirst.groups([2, 0]),
            vec![vec![2], vec![0]]
        );
        assert_eq!(
            ReturnOrder::LastStoppedFirst.groups([2, 0]),
            vec![vec![0], vec![2]]
        );
        assert_eq!(ReturnOrder::Together.groups([2, 0]), vec![vec![2, 0]]);
    }
}
