//! Seisan's seeded consensus fault simulator.
//!
//! [`run_seed`] runs n [`seisan_consensus::Engine`]s in one thread on a simulated clock
//! and network. Everything random comes from one [`rng::Rng`] seeded by the seed, and
//! events are ordered by (time, sequence number), so a seed replays exactly: the
//! [`SeedReport::trace_hash`] over every processed event is the same on every run.
//!
//! Per seed it draws fault levels for a fault phase: message loss 0-30%,
//! duplication and replay 0-50%, delays (and so reordering) up to 200 ms, partitions
//! that come and go, crashes that lose everything not acknowledged as persisted (the
//! signing record is acknowledged after a random delay; finalized blocks are durable
//! as they are output) followed by restarts, clocks that drift (rate 0.75-1.33) and so
//! skewed timers, and slow application answers. Byzantine validators
//! ([`byzantine::Behaviour`]) equivocate, double-vote or send garbage.
//!
//! After every step (one event delivered to one engine) it checks:
//! - agreement: no two different blocks output as final at one height, on any node,
//!   including blocks output before a crash;
//! - every finalized block carries a finalize certificate that passes
//!   [`seisan_crypto::verify_certificate`] and certifies it or a descendant it links
//!   to by parent hashes, and every node's finalized chain links from genesis with
//!   state roots that re-execute;
//! - no honest validator sent two conflicting signed messages (two notarizes, two
//!   finalizes or two proposals for different blocks in one view, or a finalize and a
//!   nullify in one view), and all evidence is valid and accuses only byzantine
//!   validators.
//!
//! Then a healing phase: faults stop, crashed nodes restart, and every honest node must
//! finalize at least [`HEAL_NEW_BLOCKS`] blocks above the highest height any node had
//! finalized, within `heal_ms` of simulated time; otherwise the seed is a liveness
//! failure. A failing seed's report carries the exact command that replays it.

pub mod app;
pub mod byzantine;
pub mod rng;
mod sim;

pub use byzantine::Behaviour;
pub use sim::run_seed;

use seisan_consensus::{BugInjection, Timeouts};
use seisan_types::Hash;

/// Blocks every honest node must finalize during healing, above the highest height
/// finalized anywhere when healing began.
pub const HEAL_NEW_BLOCKS: u64 = 2;

/// One simulation's shape; the seed draws the fault levels.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub validators: u32,
    pub quorum: u32,
    /// How many validators are byzantine (chosen by the seed).
    pub byzantine: u32,
    /// Fixes the byzantine behaviour; `None` lets the seed choose.
    pub behaviour: Option<Behaviour>,
    /// Simulated length of the fault phase.
    pub fault_ms: u64,
    /// Simulated time the healing phase may take before liveness has failed.
    pub heal_ms: u64,
    /// Engine timeouts (in each node's local, drifting milliseconds).
    pub timeouts: Timeouts,
    /// Deliberately broken engine rules (tests only).
    pub bug_injection: BugInjection,
    /// Crash rate override: `Some(0)` disables crashes; `None` lets the seed choose.
    pub crash_interval_ms: Option<u64>,
    /// Safety net against event storms: a seed that needs more events is a liveness
    /// failure.
    pub max_events: u64,
}

impl SimConfig {
    /// 3 validators, q = 2, no byzantine, all faults.
    pub fn three_of_two() -> SimConfig {
        SimConfig {
            validators: 3,
            quorum: 2,
            byzantine: 0,
            behaviour: None,
            fault_ms: 8_000,
            heal_ms: 30_000,
            timeouts: Timeouts {
                view_timeout_ms: 400,
                retry_ms: 400,
                fetch_retry_ms: 300,
            },
            bug_injection: BugInjection::default(),
            crash_interval_ms: None,
            max_events: 2_000_000,
        }
    }

    /// 4 validators, q = 3, one byzantine, all faults.
    pub fn four_of_three_byzantine() -> SimConfig {
        SimConfig {
            validators: 4,
            quorum: 3,
            byzantine: 1,
            ..SimConfig::three_of_two()
        }
    }

    /// The command line that replays `seed` with this configuration.
    pub fn replay_command(&self, seed: u64) -> String {
        format!(
            "cargo run --release -p seisan-sim -- --seed {seed} --validators {} --quorum {} --byzantine {} --fault-ms {} --heal-ms {}{}{}{}",
            self.validators,
            self.quorum,
            self.byzantine,
            self.fault_ms,
            self.heal_ms,
            match self.crash_interval_ms {
                Some(interval) => format!(" --crash-interval-ms {interval}"),
                None => String::new(),
            },
            match self.behaviour {
                Some(behaviour) => format!(" --behaviour {behaviour:?}").to_lowercase(),
                None => String::new(),
            },
            match (
                self.bug_injection.count_duplicate_votes,
                self.bug_injection.release_before_persist
            ) {
                (false, false) => "",
                (true, false) => " --bug duplicate-votes",
                (false, true) => " --bug release-before-persist",
                (true, true) => " --bug duplicate-votes --bug release-before-persist",
            }
        )
    }
}

/// What one seed did.
#[derive(Clone, Debug)]
pub struct SeedReport {
    pub seed: u64,
    /// Safety violations, first one first (the run stops at the first).
    pub violations: Vec<String>,
    /// Why liveness failed in the healing phase, if it did.
    pub liveness_failure: Option<String>,
    /// The highest height finalized by any node.
    pub finalized_blocks: u64,
    /// Valid evidence reports (by honest nodes) against byzantine validators.
    pub evidence_against_byzantine: u64,
    pub crashes: u64,
    pub events: u64,
    /// Hash over every processed event: equal for equal seeds.
    pub trace_hash: Hash,
    /// The faults the seed drew, for the replay log.
    pub faults: String,
    /// The command that replays this seed.
    pub replay: String,
}

impl SeedReport {
    pub fn failed(&self) -> bool {
        !self.violations.is_empty() || self.liveness_failure.is_some()
    }
}
