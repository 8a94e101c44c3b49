//! Seisan's seeded consensus fault simulator.
//!
//! [`run_seed`] runs n [`seisan_consensus::Engine`]s in one thread on a simulated clock
//! and network. Everything random comes from one [`rng::Rng`] seeded by the seed, and
//! events are ordered by (time, sequence number), so a seed replays exactly: the
//! [`SeedReport::trace_hash`] over every processed event is the same on every run.
//!
//! The network behaves like the node's ([`network`]): `Output::Broadcast` is gossip,
//! deduplicated by content for [`network::GOSSIP_DEDUP_WINDOW_MS`] (a node neither
//! publishes nor accepts bytes it has seen in that window, so a re-broadcast of
//! identical bytes never reaches anyone), `Output::Send` and fetches are direct
//! request-response messages, and both travel only over links that are up. A link is up
//! while both ends run and no partition separates them; each end hears of it through
//! `Input::PeerConnected` and `Input::PeerDisconnected`.
//!
//! Per seed it draws fault levels for a fault phase: message loss 0-30%,
//! duplication and replay 0-50%, delays (and so reordering) up to 200 ms, partitions
//! that come and go, crashes that lose everything not acknowledged as persisted (the
//! signing record is acknowledged after a random delay; finalized blocks are durable
//! as they are output; the gossip cache is lost) followed by restarts, clocks that
//! drift (rate 0.75-1.33) and so skewed timers, and slow application answers.
//! Byzantine validators ([`byzantine::Behaviour`]) equivocate, double-vote or send
//! garbage.
//!
//! After every step (one event delivered to one engine) it checks:
//! - agreement: no two different blocks output as final at one height, on any node,
//!   including blocks output before a crash;
//! - every finalized block carries a finalize certificate that passes
//!   [`seisan_crypto::verify_certificate`] and certifies it or a descendant it links
//!   to by parent hashes, and every node's finalized chain links from genesis with
//!   state roots that re-execute (so every node holds the same roots at every height);
//! - no honest validator sent two conflicting signed messages (two notarizes, two
//!   finalizes or two proposals for different blocks in one view, or a finalize and a
//!   nullify in one view), and all evidence is valid and accuses only byzantine
//!   validators.
//!
//! Then, for the seeds that draw one ([`QuorumLoss`]), a quorum-loss outage: partitions
//! and random crashes stop, more than n - q nodes are stopped (together or one after
//! another) and brought back in a drawn order, one at a time or together
//! ([`OutagePlan`]). From the moment a quorum is connected again, a new height must be
//! finalized within [`SimConfig::resume_bound_ms`] ([`RESUME_WITHIN_VIEW_TIMEOUTS`] view
//! timeouts), and again within that bound after each new height while a quorum stays
//! connected; otherwise the seed is a liveness failure (`stalled_after_quorum`).
//!
//! Then a healing phase: faults stop, crashed nodes restart, and every honest node must
//! finalize at least [`HEAL_NEW_BLOCKS`] blocks above the highest height any node had
//! finalized, within `heal_ms` of simulated time; otherwise the seed is a liveness
//! failure. A failing seed's report carries the exact command that replays it.
//!
//! With [`SimConfig::reconfigure`] the simulated application follows a seeded
//! [`app::Plan`] of validator-set changes (add, remove, rotate a key, change the quorum,
//! several in flight), up to [`MAX_SPARE_MEMBERS`] extra members run from the start as
//! observers, and every node hands over at each epoch end (E5): on
//! `Output::EpochEnded` it starts the next epoch's engine on
//! `FinalizedTip::epoch_base`; after a crash it restarts in the epoch its finalized
//! chain is in. The checks then hold across epochs: agreement at every height, every
//! certificate verified against the set of its epoch (and the seals that link an
//! epoch's last block to its certificate checked as seals), evidence checked against
//! its epoch's set, and healing must finalize [`HEAL_NEW_BLOCKS`] above the plan's last
//! boundary too, so the final set is shown live.

pub mod app;
pub mod byzantine;
pub mod network;
pub mod rng;
mod sim;

pub use byzantine::Behaviour;
pub use sim::run_seed;

use seisan_consensus::{BugInjection, Timeouts};
use seisan_types::Hash;

/// Blocks every honest node must finalize during healing, above the highest height
/// finalized anywhere when healing began (and above the plan's last epoch boundary).
pub const HEAL_NEW_BLOCKS: u64 = 2;

/// The most members beyond genesis's validators a reconfiguring seed runs: they start
/// as observers in epoch 0 and validate once a change adds them.
pub const MAX_SPARE_MEMBERS: u64 = 2;

/// Once a quorum is connected again after a quorum-loss outage, a new height must be
/// finalized within this many view timeouts (and again within as many after each new
/// height while the quorum stays connected).
pub const RESUME_WITHIN_VIEW_TIMEOUTS: u64 = 10;

/// Whether seeds take a quorum down between the fault and the healing phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuorumLoss {
    Never,
    /// Half of the seeds (the seed decides).
    Sometimes,
    Always,
}

/// One quorum-loss outage: which nodes stop, in what order, and how they return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutagePlan {
    /// The nodes stopped, in the order they stop (more than n - q of them).
    pub victims: Vec<usize>,
    /// Time between two stops (0: all at once).
    pub stop_gap_ms: u64,
    /// Time from the last stop to the first restart.
    pub down_ms: u64,
    /// The order they restart in (a permutation of `victims`).
    pub restarts: Vec<usize>,
    /// Time between two restarts (0: all together).
    pub restart_gap_ms: u64,
}

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
    /// Whether seeds draw a quorum-loss outage.
    pub quorum_loss: QuorumLoss,
    /// A fixed outage for every seed instead of a drawn one (scenario tests).
    pub outage_plan: Option<OutagePlan>,
    /// Whether a drawn outage may stop every validator (a fifth of the drawn outages);
    /// `false` always leaves an honest validator running.
    pub outage_may_stop_all: bool,
    /// gossipsub's deduplication ([`network::SeenCache`]); `false` delivers every copy
    /// of gossip, as the simulator did before it modelled gossipsub (tests only).
    pub gossip_dedup: bool,
    /// `false` turns off loss, duplication, long delays, partitions, random crashes and
    /// slow persistence, for scenarios that must not depend on the seed's faults.
    pub random_faults: bool,
    /// Whether the seed draws a plan of validator-set changes ([`app::Plan`]) and up to
    /// [`MAX_SPARE_MEMBERS`] members that start as observers and may be added. Such
    /// seeds draw no quorum-loss outage (its stall check counts genesis's quorum).
    pub reconfigure: bool,
    /// A fixed plan of validator-set changes instead of a drawn one (scenario tests;
    /// needs `reconfigure`). Members above genesis's run as spares from the start.
    pub fixed_plan: Option<Vec<app::Approval>>,
    /// Every restart of an honest node restores it from a stale backup: its signing
    /// record, kept blocks and kept certificates as they were at its previous start
    /// (its finalized store stays), and its engine fenced (R14) until the restored
    /// record's lift is durable.
    pub stale_restores: bool,
    /// Tests only: stale restores without the fence, to prove the simulator catches
    /// the double signing the fence prevents.
    pub unfenced_restores: bool,
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
                silent_leader_timeout_ms: 100,
            },
            bug_injection: BugInjection::default(),
            crash_interval_ms: None,
            max_events: 2_000_000,
            quorum_loss: QuorumLoss::Sometimes,
            outage_plan: None,
            outage_may_stop_all: true,
            random_faults: true,
            gossip_dedup: true,
            reconfigure: false,
            fixed_plan: None,
            stale_restores: false,
            unfenced_restores: false,
        }
    }

    /// 3 validators, q = 2, all faults but quorum-loss outages, and a drawn plan of
    /// validator-set changes with up to two members joining.
    pub fn reconfiguring() -> SimConfig {
        SimConfig {
            reconfigure: true,
            quorum_loss: QuorumLoss::Never,
            fault_ms: 4_000,
            ..SimConfig::three_of_two()
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

    /// The simulated time within which a quorum that is connected again must finalize
    /// a new height: [`RESUME_WITHIN_VIEW_TIMEOUTS`] view timeouts of the slowest clock
    /// (rate 0.75, so a local timeout lasts up to 4/3 of it in simulated time).
    pub fn resume_bound_ms(&self) -> u64 {
        (RESUME_WITHIN_VIEW_TIMEOUTS * self.timeouts.view_timeout_ms * 4).div_ceil(3)
    }

    /// The command line that replays `seed` with this configuration.
    pub fn replay_command(&self, seed: u64) -> String {
        let mut extra = String::new();
        match self.quorum_loss {
            QuorumLoss::Sometimes => {}
            QuorumLoss::Never => extra.push_str(" --quorum-loss never"),
            QuorumLoss::Always => extra.push_str(" --quorum-loss always"),
        }
        if !self.random_faults {
            extra.push_str(" --no-random-faults");
        }
        if !self.outage_may_stop_all {
            extra.push_str(" --outage-spares-one");
        }
        if !self.gossip_dedup {
            extra.push_str(" --no-gossip-dedup");
        }
        if self.reconfigure {
            extra.push_str(" --reconfigure");
        }
        if self.stale_restores {
            extra.push_str(" --stale-restores");
        }
        if self.unfenced_restores {
            extra.push_str(" (plus the test's unfenced restores)");
        }
        if let Some(plan) = &self.outage_plan {
            extra.push_str(&format!(" (plus the test's fixed outage {plan:?})"));
        }
        if let Some(plan) = &self.fixed_plan {
            extra.push_str(&format!(" (plus the test's fixed plan {plan:?})"));
        }
        format!(
            "cargo run --release -p seisan-sim{} -- --seed {seed} --validators {} --quorum {} --byzantine {} --fault-ms {} --heal-ms {}{}{}{}{extra}",
            if self.bug_injection == BugInjection::default() {
                ""
            } else {
                " --features test-hooks"
            },
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
    /// Quorum-loss outages run (0 or 1).
    pub quorum_losses: u64,
    /// The liveness failure was a stall after a quorum was connected again.
    pub stalled_after_quorum: bool,
    /// The longest time from a quorum being connected again to the next new height.
    pub resume_ms_max: Option<u64>,
    pub crashes: u64,
    /// Restarts from a stale backup ([`SimConfig::stale_restores`]).
    pub stale_restores: u64,
    /// Epoch changes the seed's plan makes.
    pub reconfigurations: u64,
    /// The highest epoch any node reached.
    pub highest_epoch: u64,
    /// Epoch ends whose last block some node finalized through seals (E4: a seal's
    /// finalization finalized it).
    pub sealed_epoch_ends: u64,
    /// The highest epoch any node reached before healing began, under the faults.
    pub highest_epoch_under_faults: u64,
    pub events: u64,
    /// Hash over every processed event: equal for equal seeds.
    pub trace_hash: Hash,
    /// The faults the seed drew, for the replay log.
    pub faults: String,
    /// Per epoch, the members whose signatures are in the finalize certificates that
    /// nodes output: who actually voted in each epoch.
    pub signers: std::collections::BTreeMap<u64, std::collections::BTreeSet<u32>>,
    /// The validator-set changes the seed drew (approval height and change), for the
    /// replay log.
    pub plan: String,
    /// The command that replays this seed.
    pub replay: String,
}

impl SeedReport {
    pub fn failed(&self) -> bool {
        !self.violations.is_empty() || self.liveness_failure.is_some()
    }
}
