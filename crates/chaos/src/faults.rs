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
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Partition,
        FaultKind::Wipe,
        FaultKind::BankRestart,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
            FaultKind::Wipe => "wipe",
            FaultKind::BankRestart => "bank_restart",
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

/// One planned fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub node: usize,
    /// How long the fault lasts before it is healed (a killed node stays down this long).
    pub hold_ms: u64,
    /// Time from this fault's injection to the next one's (at least; the run also waits
    /// for progress to resume first).
    pub gap_ms: u64,
}

/// The shortest and longest gap between two injections: "about every 10 seconds".
pub const MIN_GAP_MS: u64 = 7_000;
pub const MAX_GAP_MS: u64 = 11_000;
// Ten minutes of gaps hold the 50 injections a 10-minute run must reach.
const _: () = assert!(10 * 60 * 1000 / MAX_GAP_MS >= 50);

/// A deterministic stream of faults.
#[derive(Debug)]
pub struct FaultPlan {
    rng: StdRng,
    nodes: usize,
}

impl FaultPlan {
    pub fn new(seed: u64, nodes: usize) -> FaultPlan {
        assert!(nodes > 0, "a fault plan needs nodes to fault");
        FaultPlan {
            rng: StdRng::seed_from_u64(seed),
            nodes,
        }
    }

    pub fn next_fault(&mut self) -> Fault {
        let kind = FaultKind::ALL[self.rng.gen_range(0..FaultKind::ALL.len())];
        let node = self.rng.gen_range(0..self.nodes);
        let hold_ms = match kind {
            FaultKind::Kill | FaultKind::Wipe | FaultKind::BankRestart => {
                self.rng.gen_range(500..3_000)
            }
            FaultKind::Pause => self.rng.gen_range(2_000..5_000),
            FaultKind::Partition => self.rng.gen_range(3_000..7_000),
        };
        let gap_ms = self.rng.gen_range(MIN_GAP_MS..=MAX_GAP_MS);
        assert!(hold_ms < gap_ms, "a fault heals before the next one starts");
        Fault {
            kind,
            node,
            hold_ms,
            gap_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let mut a = FaultPlan::new(42, 3);
        let mut b = FaultPlan::new(42, 3);
        let first: Vec<Fault> = (0..50).map(|_| a.next_fault()).collect();
        let second: Vec<Fault> = (0..50).map(|_| b.next_fault()).collect();
        assert_eq!(first, second);
        let mut c = FaultPlan::new(43, 3);
        let third: Vec<Fault> = (0..50).map(|_| c.next_fault()).collect();
        assert_ne!(first, third);
    }

    #[test]
    fn every_kind_and_node_comes_up_and_gaps_are_about_ten_seconds() {
        let mut plan = FaultPlan::new(7, 3);
        let faults: Vec<Fault> = (0..200).map(|_| plan.next_fault()).collect();
        for kind in FaultKind::ALL {
            assert!(
                faults.iter().any(|fault| fault.kind == kind),
                "{kind} never planned"
            );
        }
        for node in 0..3 {
            assert!(faults.iter().any(|fault| fault.node == node));
        }
        assert!(faults
            .iter()
            .all(|fault| (MIN_GAP_MS..=MAX_GAP_MS).contains(&fault.gap_ms)));
    }
}
