//! The event loop of one seed: a priority queue of (time, sequence) -> event, n nodes,
//! the fault model, and the checks run after every step.

use crate::app::{self, Plan};
use crate::byzantine::{Behaviour, Byzantine};
use crate::network::{message_id, Links, SeenCache};
use crate::rng::Rng;
use crate::{OutagePlan, QuorumLoss, SeedReport, SimConfig, HEAL_NEW_BLOCKS, MAX_SPARE_MEMBERS};
use seisan_consensus::{
    answer_fetch, Config, ConsensusEvidence, ConsensusMessage, Engine, FetchRequest, FetchResponse,
    FinalizedBlock, FinalizedStore, FinalizedTip, Input, Output, PersistedRecord, Restored,
};
use seisan_crypto::{verify_certificate_in, Keypair};
use seisan_types::genesis::{Member, Role};
use seisan_types::{
    Block, ChainId, Epoch, Genesis, Hash, Height, MemberId, QuorumCertificate, ValidatorSet, View,
    VoteKind,
};
use std::collections::{BTreeMap, BTreeSet};

/// Domain tag of the trace hash.
const SEISAN_SIM_TRACE_V1: &[u8] = b"SEISAN_SIM_TRACE_V1";
/// The chain id of simulated networks (a `dev` chain, so dev keys are acceptable).
pub const SIM_CHAIN_ID: &str = "sim-dev";
/// A booted engine gets `Input::Start` (and then its links) within this time.
const START_MAX_DELAY_MS: u64 = 50;
/// Message delay bound once the network has healed.
const HEAL_MAX_DELAY_MS: u64 = 10;
/// Persistence delay bound once the network has healed.
const HEAL_MAX_PERSIST_MS: u64 = 5;
/// Message loss bound during a quorum-loss outage: the stall check holds the engine to
/// a few view timeouts, which heavy loss alone could exceed in a correct protocol.
const OUTAGE_MAX_LOSS_PER_MILLE: u64 = 50;
/// Message delay bound during a quorum-loss outage (well below the view timeout).
const OUTAGE_MAX_DELAY_MS: u64 = 60;
/// Time between the start of the outage phase (when nodes down from the fault phase
/// restart) and the first stop.
const OUTAGE_SETTLE_MS: u64 = 500;
/// How long a leader waits before building a block in the outage phase. The node waits
/// `EMPTY_BLOCK_DELAY_MS` (500 ms, against view timeouts of seconds) before proposing an
/// empty block; without a wait the simulator's empty blocks finalize every few
/// milliseconds and a calm outage costs thousands of blocks of simulation time.
const OUTAGE_EMPTY_BLOCK_DELAY_MS: u64 = 40;
/// Chance (per mille) that a seed draws its outage when [`QuorumLoss::Sometimes`].
const OUTAGE_PER_MILLE: u64 = 500;
/// Chance (per mille) that a reconfiguring seed keeps one honest node down until
/// healing, so that it must catch up across the epochs it missed.
const LATE_NODE_PER_MILLE: u64 = 250;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Faults,
    Outage,
    Healing,
}

/// The fault levels one seed drew.
#[derive(Clone, Debug)]
struct Faults {
    loss_per_mille: u64,
    duplicate_per_mille: u64,
    max_delay_ms: u64,
    max_replay_delay_ms: u64,
    partitions: bool,
    crash_interval_ms: u64,
    max_persist_delay_ms: u64,
    max_app_delay_ms: u64,
    outage: Option<OutagePlan>,
    /// A node that stays down through the whole fault phase and starts when healing
    /// begins, epochs behind (E6: it catches up through every set change).
    late: Option<usize>,
}

#[derive(Clone, Debug)]
enum Event {
    Deliver {
        to: usize,
        from: usize,
        bytes: Vec<u8>,
        /// Gossip (deduplicated) rather than a direct message.
        gossip: bool,
        /// The connection it was sent on.
        link: u64,
    },
    PersistDone {
        node: usize,
        epoch: u64,
        sequence: u64,
        record: PersistedRecord,
        block: Option<Box<Block>>,
        certificate: Option<QuorumCertificate>,
    },
    Timer {
        node: usize,
        epoch: u64,
        generation: u64,
    },
    App {
        node: usize,
        epoch: u64,
        input: Input,
    },
    FetchAsk {
        server: usize,
        client: usize,
        request: FetchRequest,
        link: u64,
    },
    FetchAnswer {
        client: usize,
        server: usize,
        bytes: Vec<u8>,
        link: u64,
    },
    Crash,
    /// Restarts a node crashed in the fault phase, unless it was restarted and crashed
    /// again since (`epoch` is the one its crash began).
    Restart {
        node: usize,
        epoch: u64,
    },
    Partition {
        on: bool,
    },
    HealStart,
    OutageBegin,
    OutageStop {
        node: usize,
    },
    OutageRestart {
        node: usize,
    },
}

impl Event {
    fn tag(&self) -> u8 {
        match self {
            Event::Deliver { .. } => 1,
            Event::PersistDone { .. } => 2,
            Event::Timer { .. } => 3,
            Event::App { .. } => 4,
            Event::FetchAsk { .. } => 5,
            Event::FetchAnswer { .. } => 6,
            Event::Crash => 7,
            Event::Restart { .. } => 8,
            Event::Partition { .. } => 9,
            Event::HealStart => 10,
            Event::OutageBegin => 11,
            Event::OutageStop { .. } => 12,
            Event::OutageRestart { .. } => 13,
        }
    }
}

#[derive(Debug)]
struct Node {
    member: MemberId,
    keypair: Keypair,
    engine: Option<Engine>,
    /// The engine has taken `Input::Start`, so its links may come up.
    started: bool,
    /// The gossip duplicate cache (in memory: lost in a crash).
    seen: SeenCache,
    epoch: u64,
    durable: Option<PersistedRecord>,
    /// Blocks kept durably by Persist outputs (what this node proposed or notarized).
    kept_blocks: BTreeMap<Hash, Block>,
    /// Certificates kept durably by Persist outputs, by (view, kind).
    kept_certificates: BTreeMap<(View, VoteKind), QuorumCertificate>,
    persist_done_at: u64,
    finalized: Vec<FinalizedBlock>,
    rate_per_mille: u64,
    offset_ms: u64,
    timer_generation: u64,
    byzantine: Option<Byzantine>,
    built_parent_roots: BTreeMap<Hash, Hash>,
    expected_descendants: BTreeMap<Height, Hash>,
    /// The durable signing material as it was at the node's last start: what a
    /// stale restore brings back ([`SimConfig::stale_restores`]).
    backup: Option<Backup>,
    /// Restored from a stale backup and not yet durably past the fence (R14): every
    /// engine it starts is fenced.
    fenced: bool,
    /// The Persist sequence whose durability ends the fence (the lifted record's).
    lift_sequence: Option<u64>,
    /// Whether it was ever restored from a stale backup.
    restored_once: bool,
}

/// What a backup of a node holds of its signing state.
#[derive(Clone, Debug)]
struct Backup {
    durable: Option<PersistedRecord>,
    kept_blocks: BTreeMap<Hash, Block>,
    kept_certificates: BTreeMap<(View, VoteKind), QuorumCertificate>,
}

impl Node {
    fn local_ms(&self, now: u64) -> u64 {
        self.offset_ms + now * self.rate_per_mille / 1000
    }

    /// The earliest global time at which the local clock reads `deadline`.
    fn global_ms(&self, now: u64, deadline: u64) -> u64 {
        if deadline <= self.local_ms(now) {
            return now;
        }
        let mut global = ((deadline - self.offset_ms) * 1000).div_ceil(self.rate_per_mille);
        while self.local_ms(global) < deadline {
            global += 1;
        }
        global.max(now)
    }

    fn height(&self) -> u64 {
        self.finalized.len() as u64
    }
}

struct Store<'a>(&'a [FinalizedBlock]);

impl FinalizedStore for Store<'_> {
    fn finalized_height(&self) -> Height {
        Height(self.0.len() as u64)
    }

    fn finalized_block(&self, height: Height) -> Option<FinalizedBlock> {
        let index = usize::try_from(height.0.checked_sub(1)?).ok()?;
        self.0.get(index).cloned()
    }
}

/// What one honest validator has sent, signed, in one view.
#[derive(Clone, Debug, Default)]
struct Sent {
    proposal: Option<Hash>,
    notarize: Option<Hash>,
    finalize: Option<Hash>,
    nullify: bool,
}

struct Sim {
    config: SimConfig,
    seed: u64,
    rng: Rng,
    genesis: Genesis,
    /// The genesis's chain id and hash, which every signature is bound to.
    genesis_domain: seisan_types::ChainDomain,
    /// The application's schedule of validator-set changes (none unless reconfiguring).
    plan: Plan,
    /// The highest epoch any node's engine reached.
    highest_epoch: u64,
    /// The highest epoch reached before healing began (under the seed's faults).
    highest_epoch_under_faults: u64,
    /// Epoch ends whose last block a node finalized through seals (E4).
    sealed_epoch_ends: BTreeSet<u64>,
    /// Per epoch, who signed the finalize certificates nodes output.
    signers: BTreeMap<u64, BTreeSet<u32>>,
    faults: Faults,
    now: u64,
    next_sequence: u64,
    queue: BTreeMap<(u64, u64), Event>,
    nodes: Vec<Node>,
    partition: Option<Vec<bool>>,
    links: Links,
    phase: Phase,
    /// The outage's stops have all happened: the stall check runs.
    outage_armed: bool,
    outage_stops: usize,
    outage_restarts: usize,
    /// While a quorum is connected in the outage phase: when it connected or the last
    /// new height was finalized, whichever is later.
    stall_clock: Option<u64>,
    /// When a quorum connected again, until the next new height.
    quorum_back_at: Option<u64>,
    resume_ms_max: Option<u64>,
    stalled_after_quorum: bool,
    quorum_losses: u64,
    heal_target: u64,
    heal_started_ms: u64,
    finalized_anywhere: BTreeMap<Height, Hash>,
    verified_certificates: BTreeSet<Hash>,
    /// Views restart in every epoch (E1), so what was sent is kept per epoch.
    sent: BTreeMap<(MemberId, Epoch, View), Sent>,
    /// With stale restores: each honest validator's signed messages that reached
    /// honest nodes, with the receivers (node, incarnation).
    delivered: BTreeMap<(MemberId, Epoch, View), BTreeMap<SignedItem, Receivers>>,
    violations: Vec<String>,
    evidence_against_byzantine: u64,
    crashes: u64,
    /// Restarts from a stale backup.
    stale_restores: u64,
    events: u64,
    trace: Hash,
}

fn genesis(config: &SimConfig) -> Genesis {
    let members = (0..config.validators)
        .map(|index| Member {
            name: format!("validator-{index}"),
            role: if index == 0 {
                Role::ClearingHouse
            } else {
                Role::Exchange
            },
            public_key: Keypair::dev(&format!("validator-{index}")).public_key(),
            validator: true,
            p2p_address: None,
        })
        .collect();
    let genesis = Genesis {
        chain_id: ChainId(SIM_CHAIN_ID.into()),
        genesis_time_ms: 0,
        quorum: config.quorum,
        members,
        assets: vec![],
        pairs: vec![],
        opening_balances: vec![],
        settlement: Default::default(),
        public_chain: None,
    };
    genesis
        .validate()
        .expect("simulation validators and quorum must form a valid genesis");
    genesis
}

/// Runs one seed to the end of its healing phase (or its first violation).
pub fn run_seed(config: &SimConfig, seed: u64) -> SeedReport {
    assert!(config.byzantine < config.validators);
    let mut sim = Sim::new(config.clone(), seed);
    let outcome = sim.run();
    let finalized_blocks = sim.nodes.iter().map(Node::height).max().unwrap_or(0);
    SeedReport {
        seed,
        violations: sim.violations.clone(),
        liveness_failure: outcome.err(),
        finalized_blocks,
        evidence_against_byzantine: sim.evidence_against_byzantine,
        quorum_losses: sim.quorum_losses,
        stalled_after_quorum: sim.stalled_after_quorum,
        resume_ms_max: sim.resume_ms_max,
        crashes: sim.crashes,
        stale_restores: sim.stale_restores,
        reconfigurations: sim.plan.reconfigurations(),
        highest_epoch: sim.highest_epoch,
        sealed_epoch_ends: sim.sealed_epoch_ends.len() as u64,
        signers: sim.signers.clone(),
        highest_epoch_under_faults: if sim.phase == Phase::Healing {
            sim.highest_epoch_under_faults
        } else {
            sim.highest_epoch
        },
        events: sim.events,
        trace_hash: sim.trace,
        faults: format!("{:?}", sim.faults),
        plan: format!(
            "{:?}",
            sim.plan
                .approvals
                .iter()
                .map(|approval| (approval.height.0, &approval.change))
                .collect::<Vec<_>>()
        ),
        replay: config.replay_command(seed),
    }
}

impl Sim {
    fn new(config: SimConfig, seed: u64) -> Sim {
        let mut rng = Rng::new(seed);
        let genesis = genesis(&config);
        let mut faults = Faults {
            loss_per_mille: rng.range(0, 300),
            duplicate_per_mille: rng.range(0, 500),
            max_delay_ms: rng.range(2, 200),
            max_replay_delay_ms: rng.range(200, 2_000),
            partitions: rng.chance(500),
            crash_interval_ms: config.crash_interval_ms.unwrap_or_else(|| {
                if rng.chance(700) {
                    rng.range(500, 4_000)
                } else {
                    0
                }
            }),
            max_persist_delay_ms: rng.range(0, 100),
            max_app_delay_ms: rng.range(0, 30),
            outage: None,
            late: None,
        };
        let n = config.validators as usize;
        if !config.random_faults {
            faults.loss_per_mille = 0;
            faults.duplicate_per_mille = 0;
            faults.max_delay_ms = HEAL_MAX_DELAY_MS;
            faults.partitions = false;
            faults.crash_interval_ms = 0;
            faults.max_persist_delay_ms = HEAL_MAX_PERSIST_MS;
            faults.max_app_delay_ms = HEAL_MAX_PERSIST_MS;
        }
        let mut byzantine: BTreeSet<usize> = BTreeSet::new();
        while byzantine.len() < config.byzantine as usize {
            byzantine.insert(rng.below(n as u64) as usize);
        }
        assert!(
            !(config.reconfigure && config.outage_plan.is_some()),
            "a fixed outage counts genesis's quorum; reconfiguring seeds run none"
        );
        let quorum_loss = if config.reconfigure {
            QuorumLoss::Never
        } else {
            config.quorum_loss
        };
        faults.outage = match (&config.outage_plan, quorum_loss) {
            (Some(plan), _) => Some(plan.clone()),
            (None, QuorumLoss::Never) => None,
            (None, QuorumLoss::Sometimes) => rng
                .chance(OUTAGE_PER_MILLE)
                .then(|| draw_outage(&mut rng, &config, &byzantine)),
            (None, QuorumLoss::Always) => Some(draw_outage(&mut rng, &config, &byzantine)),
        };
        if let Some(plan) = &faults.outage {
            check_outage_plan(plan, n, config.quorum as usize);
        }
        // Spare members run from the start, observing until a change adds them.
        assert!(config.fixed_plan.is_none() || config.reconfigure);
        let spares = match &config.fixed_plan {
            Some(approvals) => approvals
                .iter()
                .filter_map(|approval| match approval.change {
                    app::Change::Add { member, .. } => Some(member.0 as usize + 1),
                    _ => None,
                })
                .max()
                .unwrap_or(0)
                .saturating_sub(n),
            None if config.reconfigure => rng.range(0, MAX_SPARE_MEMBERS) as usize,
            None => 0,
        };
        let total = n + spares;
        let nodes: Vec<Node> = (0..total)
            .map(|index| {
                let keypair = Keypair::dev(&format!("validator-{index}"));
                let behaviour = config
                    .behaviour
                    .unwrap_or(Behaviour::ALL[rng.below(Behaviour::ALL.len() as u64) as usize]);
                Node {
                    member: MemberId(index as u32),
                    keypair: keypair.clone(),
                    engine: None,
                    started: false,
                    seen: SeenCache::default(),
                    epoch: 0,
                    durable: None,
                    kept_blocks: BTreeMap::new(),
                    kept_certificates: BTreeMap::new(),
                    persist_done_at: 0,
                    finalized: Vec::new(),
                    rate_per_mille: rng.range(750, 1_333),
                    offset_ms: rng.range(0, 100_000),
                    timer_generation: 0,
                    byzantine: byzantine.contains(&index).then(|| {
                        Byzantine::new(
                            behaviour,
                            MemberId(index as u32),
                            keypair,
                            genesis.domain(),
                            total,
                        )
                    }),
                    built_parent_roots: BTreeMap::new(),
                    expected_descendants: BTreeMap::new(),
                    backup: None,
                    fenced: false,
                    lift_sequence: None,
                    restored_once: false,
                }
            })
            .collect();
        let genesis_set = ValidatorSet::genesis(&genesis);
        let plan = if let Some(approvals) = &config.fixed_plan {
            Plan::from_approvals(genesis_set, approvals.clone())
        } else if config.reconfigure {
            let pool: Vec<MemberId> = (0..total).map(|index| MemberId(index as u32)).collect();
            let byzantine_members = byzantine
                .iter()
                .map(|index| MemberId(*index as u32))
                .collect();
            Plan::draw(&mut rng, genesis_set, &pool, &byzantine_members)
        } else {
            Plan::none(genesis_set)
        };
        if config.reconfigure && rng.chance(LATE_NODE_PER_MILLE) {
            let honest: Vec<usize> = (0..total)
                .filter(|node| !byzantine.contains(node))
                .collect();
            faults.late = Some(honest[rng.below(honest.len() as u64) as usize]);
        }
        Sim {
            config,
            seed,
            rng,
            genesis_domain: genesis.domain(),
            genesis,
            plan,
            highest_epoch: 0,
            highest_epoch_under_faults: 0,
            sealed_epoch_ends: BTreeSet::new(),
            signers: BTreeMap::new(),
            faults,
            now: 0,
            next_sequence: 0,
            queue: BTreeMap::new(),
            nodes,
            partition: None,
            links: Links::new(total),
            phase: Phase::Faults,
            outage_armed: false,
            outage_stops: 0,
            outage_restarts: 0,
            stall_clock: None,
            quorum_back_at: None,
            resume_ms_max: None,
            stalled_after_quorum: false,
            quorum_losses: 0,
            heal_target: 0,
            heal_started_ms: 0,
            finalized_anywhere: BTreeMap::new(),
            verified_certificates: BTreeSet::new(),
            sent: BTreeMap::new(),
            delivered: BTreeMap::new(),
            violations: Vec::new(),
            evidence_against_byzantine: 0,
            crashes: 0,
            stale_restores: 0,
            events: 0,
            trace: Hash::tagged(SEISAN_SIM_TRACE_V1, &[&[0]]),
        }
    }

    fn schedule(&mut self, at: u64, event: Event) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.queue.insert((at.max(self.now), sequence), event);
    }

    /// The engine `node` runs on its finalized chain, and the tip it starts on: the
    /// epoch after the last one if its last finalized block ended an epoch (E5, on
    /// `FinalizedTip::epoch_base`), else the epoch of that block with the end its header
    /// names (E2).
    fn engine_config(&self, node: usize) -> (Config, FinalizedTip) {
        let state = &self.nodes[node];
        let (epoch, epoch_end, tip) = match state.finalized.last() {
            None => (Epoch(0), None, FinalizedTip::genesis()),
            Some(last) if last.block.header.epoch_end == Some(last.block.header.height) => (
                Epoch(last.block.header.epoch.0 + 1),
                None,
                FinalizedTip::epoch_base(last),
            ),
            Some(last) => (
                last.block.header.epoch,
                last.block.header.epoch_end,
                FinalizedTip::of(last),
            ),
        };
        let validators = self
            .plan
            .set(epoch)
            .expect("a finalized chain only reaches planned epochs")
            .clone();
        let byzantine = state.byzantine.is_some();
        let config = Config {
            domain: self.genesis.domain(),
            keypair: self.plan.keypair_for(state.member, &validators),
            validators,
            epoch_end,
            member: state.member,
            timeouts: self.config.timeouts,
            bug_injection: if byzantine {
                Default::default()
            } else {
                self.config.bug_injection
            },
        };
        (config, tip)
    }

    fn is_honest(&self, node: usize) -> bool {
        self.nodes[node].byzantine.is_none()
    }

    fn violation(&mut self, text: String) {
        self.violations
            .push(format!("t={}ms seed={}: {text}", self.now, self.seed));
    }

    fn run(&mut self) -> Result<(), String> {
        for node in 0..self.nodes.len() {
            // The late node counts as down (crashes elsewhere are limited accordingly)
            // until healing boots every node that is down.
            if self.faults.late != Some(node) {
                self.boot(node);
            }
        }
        if self.faults.partitions {
            let at = self.rng.range(100, 2_000);
            self.schedule(at, Event::Partition { on: true });
        }
        if self.faults.crash_interval_ms > 0 {
            let at = self.rng.range(100, self.faults.crash_interval_ms);
            self.schedule(at, Event::Crash);
        }
        let heal_at = match self.faults.outage.clone() {
            Some(plan) => {
                self.schedule(self.config.fault_ms, Event::OutageBegin);
                self.schedule_outage(&plan)
            }
            None => self.config.fault_ms,
        };
        self.schedule(heal_at, Event::HealStart);
        loop {
            let Some(((at, _), event)) = self.queue.pop_first() else {
                return Err("no events left (every node idle)".into());
            };
            if self.phase == Phase::Healing && at > self.heal_started_ms + self.config.heal_ms {
                return Err(self.liveness_report("healing deadline passed"));
            }
            if let Some(failure) = self.check_stall(at) {
                self.stalled_after_quorum = true;
                return Err(failure);
            }
            self.now = at;
            self.events += 1;
            if self.events > self.config.max_events {
                return Err(self.liveness_report("event budget exhausted"));
            }
            self.trace_event(&event);
            self.process(event);
            if !self.violations.is_empty() {
                return Ok(());
            }
            if self.phase == Phase::Healing && self.healed() {
                return Ok(());
            }
        }
    }

    /// Schedules the stops and restarts of `plan` after the outage phase begins at
    /// `fault_ms`; returns when the healing phase begins at the latest (it begins
    /// earlier, at the first new height once every stopped node runs again).
    fn schedule_outage(&mut self, plan: &OutagePlan) -> u64 {
        let mut at = self.config.fault_ms + OUTAGE_SETTLE_MS;
        for (index, node) in plan.victims.iter().enumerate() {
            if index > 0 {
                at += plan.stop_gap_ms;
            }
            self.schedule(at, Event::OutageStop { node: *node });
        }
        at += plan.down_ms;
        for (index, node) in plan.restarts.iter().enumerate() {
            if index > 0 {
                at += plan.restart_gap_ms;
            }
            self.schedule(at, Event::OutageRestart { node: *node });
        }
        // The last node back gets a full bound to rejoin under the stall check, counted
        // from when its links come up: a quorum that connects only then is still held
        // to the bound before healing begins.
        at + START_MAX_DELAY_MS + self.config.resume_bound_ms() + 1
    }

    /// The stall check of the outage phase, before processing an event at `at`: while
    /// a quorum is connected, a new height is due within the resume bound.
    fn check_stall(&mut self, at: u64) -> Option<String> {
        if self.phase != Phase::Outage || !self.outage_armed {
            return None;
        }
        let bound = self.config.resume_bound_ms();
        if let Some(since) = self.stall_clock {
            if at > since + bound {
                self.now = since + bound;
                let why = match self.quorum_back_at {
                    Some(back) => format!(
                        "stalled after quorum: a quorum has been connected since t={back}ms and no new height was finalized within {bound}ms"
                    ),
                    None => format!(
                        "stalled after quorum: no new height for {bound}ms since t={since}ms although a quorum is connected"
                    ),
                };
                return Some(self.liveness_report(&why));
            }
        }
        None
    }

    /// Starts or stops the stall clock when a quorum connects or disconnects (called
    /// whenever links change).
    fn update_stall_clock(&mut self) {
        if self.phase != Phase::Outage || !self.outage_armed {
            return;
        }
        let running: Vec<bool> = self.nodes.iter().map(|node| node.started).collect();
        let connected = self.links.largest_connected(&running) >= self.config.quorum as usize;
        match (connected, self.stall_clock) {
            (false, _) => {
                self.stall_clock = None;
                self.quorum_back_at = None;
            }
            (true, None) => {
                self.stall_clock = Some(self.now);
                self.quorum_back_at = Some(self.now);
            }
            (true, Some(_)) => {}
        }
    }

    /// A height no node had finalized before was just finalized. Once every node the
    /// outage stopped runs again, that ends the outage phase.
    fn on_new_height(&mut self) {
        let victims = self
            .faults
            .outage
            .as_ref()
            .map_or(0, |plan| plan.victims.len());
        if self.phase == Phase::Outage
            && self.outage_restarts == victims
            && self.nodes.iter().all(|node| node.started)
        {
            self.schedule(self.now, Event::HealStart);
        }
        if self.stall_clock.is_some() {
            self.stall_clock = Some(self.now);
        }
        if let Some(back) = self.quorum_back_at.take() {
            let resumed = self.now - back;
            self.resume_ms_max = Some(self.resume_ms_max.map_or(resumed, |max| max.max(resumed)));
        }
    }

    fn healed(&self) -> bool {
        (0..self.nodes.len())
            .filter(|node| self.is_honest(*node))
            .all(|node| self.nodes[node].height() >= self.heal_target)
    }

    fn liveness_report(&self, why: &str) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|node| {
                format!(
                    "{}:{}e{}h{}v{}",
                    node.member,
                    if node.byzantine.is_some() { "byz," } else { "" },
                    node.engine
                        .as_ref()
                        .map_or(0, |engine| engine.validator_set().epoch.0),
                    node.height(),
                    node.engine.as_ref().map_or(0, |engine| engine.view().0)
                )
            })
            .collect();
        let mut report = format!(
            "{why} at t={}ms ({:?} phase): heal began at {}ms, target height {}, nodes [{}], plan {:?}",
            self.now,
            self.phase,
            self.heal_started_ms,
            self.heal_target,
            nodes.join(" "),
            self.plan
                .epochs
                .iter()
                .map(|epoch| (epoch.set.members(), epoch.set.quorum, epoch.last.map(|last| last.0)))
                .collect::<Vec<_>>()
        );
        for engine in self.nodes.iter().filter_map(|node| node.engine.as_ref()) {
            report.push_str("\n  ");
            report.push_str(&engine.describe());
        }
        report
    }

    fn trace_event(&mut self, event: &Event) {
        let detail: Vec<u8> = match event {
            Event::Deliver {
                to,
                from,
                bytes,
                gossip,
                ..
            } => {
                let mut detail = vec![*to as u8, *from as u8, u8::from(*gossip)];
                detail.extend_from_slice(&Hash::tagged(SEISAN_SIM_TRACE_V1, &[bytes]).0);
                detail
            }
            Event::PersistDone { node, sequence, .. } => {
                [vec![*node as u8], sequence.to_le_bytes().to_vec()].concat()
            }
            Event::Timer {
                node, generation, ..
            } => [vec![*node as u8], generation.to_le_bytes().to_vec()].concat(),
            Event::App { node, .. } => vec![*node as u8],
            Event::FetchAsk { server, client, .. } => vec![*server as u8, *client as u8],
            Event::FetchAnswer { client, bytes, .. } => {
                let mut detail = vec![*client as u8];
                detail.extend_from_slice(&Hash::tagged(SEISAN_SIM_TRACE_V1, &[bytes]).0);
                detail
            }
            Event::Restart { node, .. }
            | Event::OutageStop { node }
            | Event::OutageRestart { node } => vec![*node as u8],
            Event::Partition { on } => vec![u8::from(*on)],
            Event::Crash | Event::HealStart | Event::OutageBegin => vec![],
        };
        self.trace = Hash::tagged(
            SEISAN_SIM_TRACE_V1,
            &[
                &self.trace.0,
                &self.now.to_le_bytes(),
                &[event.tag()],
                &detail,
            ],
        );
    }

    // ----- node lifecycle -------------------------------------------------------------

    fn boot(&mut self, node: usize) {
        if self.config.stale_restores && self.is_honest(node) && self.stale_node() == node {
            let state = &mut self.nodes[node];
            let now = Backup {
                durable: state.durable.clone(),
                kept_blocks: state.kept_blocks.clone(),
                kept_certificates: state.kept_certificates.clone(),
            };
            if let Some(stale) = state.backup.replace(now) {
                state.durable = stale.durable;
                state.kept_blocks = stale.kept_blocks;
                state.kept_certificates = stale.kept_certificates;
                state.fenced = !self.config.unfenced_restores;
                state.restored_once = true;
                self.stale_restores += 1;
            }
        }
        let (config, tip) = self.engine_config(node);
        self.note_epoch(node, &config);
        let (tip_height, tip_view) = (tip.height, tip.view);
        let state = &mut self.nodes[node];
        state
            .kept_blocks
            .retain(|_, block| block.header.height > tip_height);
        state
            .kept_certificates
            .retain(|(view, _), _| *view > tip_view);
        let restored = Restored {
            record: state.durable.clone(),
            blocks: state.kept_blocks.values().cloned().collect(),
            certificates: state.kept_certificates.values().cloned().collect(),
            fenced: state.fenced,
        };
        match Engine::new(config, tip, restored) {
            Ok(engine) => {
                self.nodes[node].engine = Some(engine);
                let at = self.now + self.rng.range(0, START_MAX_DELAY_MS);
                let epoch = self.nodes[node].epoch;
                self.schedule(
                    at,
                    Event::App {
                        node,
                        epoch,
                        input: Input::Start,
                    },
                );
            }
            Err(error) => self.violation(format!("node {node} cannot restart: {error}")),
        }
    }

    /// `node` is about to run `config`'s epoch: a byzantine layer signs in it with the
    /// node's key of that epoch.
    fn note_epoch(&mut self, node: usize, config: &Config) {
        let epoch = config.validators.epoch;
        self.highest_epoch = self.highest_epoch.max(epoch.0);
        let state = &mut self.nodes[node];
        state.keypair = config.keypair.clone();
        if let Some(byzantine) = state.byzantine.as_mut() {
            byzantine.set_epoch(epoch, config.keypair.clone());
        }
    }

    /// E5: `node`'s engine finalized the last block of `ended` and stopped. The host
    /// executed that block (checked in `check_finalized`), reads the next set from its
    /// state and starts the next epoch's engine on it, with nothing restored (the
    /// record of R10 is per epoch), telling it of the peers it is connected to.
    fn hand_over(&mut self, node: usize, ended: Epoch, last_height: Height) {
        let planned = self
            .plan
            .epochs
            .get(ended.0 as usize)
            .and_then(|epoch| epoch.last);
        let last = self.nodes[node]
            .finalized
            .last()
            .map(|last| last.block.header.clone());
        let finalized = last.as_ref().map(|header| header.height);
        if planned != Some(last_height) || finalized != Some(last_height) {
            self.violation(format!(
                "node {node} ended epoch {ended} at height {last_height}, but the plan ends it at {planned:?} and the node finalized up to {finalized:?}"
            ));
            return;
        }
        // The last block commits to the set that takes over (re-executed, so certified
        // by the ending epoch): the set the host starts is that one.
        let next = self.plan.set(Epoch(ended.0 + 1)).map(ValidatorSet::hash);
        let named = last.and_then(|header| header.next_validators);
        if next.is_none() || named != next {
            self.violation(format!(
                "node {node} ended epoch {ended} at height {last_height} whose header names next set {named:?}, not the planned {next:?}"
            ));
            return;
        }
        let state = &mut self.nodes[node];
        // Whatever is in flight for the spent engine (records, timers, application
        // answers) is dropped on arrival, as after a restart.
        state.epoch += 1;
        state.persist_done_at = 0;
        state.durable = None;
        state.kept_blocks.clear();
        state.kept_certificates.clear();
        let (config, tip) = self.engine_config(node);
        self.note_epoch(node, &config);
        let restored = Restored {
            fenced: self.nodes[node].fenced,
            ..Restored::default()
        };
        match Engine::new(config, tip, restored) {
            Ok(engine) => self.nodes[node].engine = Some(engine),
            Err(error) => {
                self.violation(format!(
                    "node {node} cannot start epoch {}: {error}",
                    ended.0 + 1
                ));
                return;
            }
        }
        self.step(node, Input::Start);
        for peer in self.connected_peers(node) {
            self.step(
                node,
                Input::PeerConnected {
                    peer: MemberId(peer as u32),
                },
            );
        }
    }

    fn crash(&mut self, node: usize) {
        let state = &mut self.nodes[node];
        state.engine = None;
        state.started = false;
        // Only what a PersistDone of the current epoch acknowledged (in `durable`,
        // `kept_blocks`, `kept_certificates`) and finalized blocks survive. Everything
        // in flight for the old process (unacknowledged records, timers, application
        // answers) belongs to the old epoch and is dropped on arrival; the gossip cache
        // was memory.
        state.epoch += 1;
        state.persist_done_at = 0;
        state.seen.clear();
        // A lift not yet durable is lost with the process: it restarts fenced.
        state.lift_sequence = None;
        self.crashes += 1;
        self.update_links();
    }

    /// Brings every link to its state (up while both ends run on one side of the
    /// partition) and tells the engines at both ends: `PeerConnected` to both when a
    /// link comes up, `PeerDisconnected` to a running end when it goes down.
    fn update_links(&mut self) {
        let running: Vec<bool> = self.nodes.iter().map(|node| node.started).collect();
        let sides = self.partition.clone();
        let changes = self.links.update(|a, b| {
            running[a] && running[b] && sides.as_ref().is_none_or(|sides| sides[a] == sides[b])
        });
        for (a, b, up) in changes {
            for (node, peer) in [(a, b), (b, a)] {
                if self.nodes[node].started {
                    if let Some(input) = connection_input(MemberId(peer as u32), up) {
                        self.step(node, input);
                    }
                }
            }
        }
        self.update_stall_clock();
    }

    fn process(&mut self, event: Event) {
        match event {
            Event::Deliver {
                to,
                from,
                bytes,
                gossip,
                link,
            } => {
                if !self.nodes[to].started || !self.links.carries(from, to, link) {
                    return;
                }
                // gossipsub drops a message whose id it has seen before it validates it.
                if gossip && !self.first_sight(to, &bytes) {
                    return;
                }
                let Ok(message) = ConsensusMessage::decode(&bytes) else {
                    return;
                };
                if self.config.stale_restores && self.is_honest(from) && self.is_honest(to) {
                    self.check_delivered(from, to, &message);
                }
                let input = Input::Message {
                    from: MemberId(from as u32),
                    message,
                };
                self.step(to, input);
            }
            Event::PersistDone {
                node,
                epoch,
                sequence,
                record,
                block,
                certificate,
            } => {
                if self.nodes[node].epoch != epoch || self.nodes[node].engine.is_none() {
                    return;
                }
                let state = &mut self.nodes[node];
                state.durable = Some(record);
                if state.lift_sequence == Some(sequence) {
                    state.fenced = false;
                    state.lift_sequence = None;
                }
                if let Some(block) = block {
                    state.kept_blocks.insert(block.hash(), *block);
                }
                if let Some(certificate) = certificate {
                    let key = (certificate.vote.view, certificate.vote.kind);
                    state.kept_certificates.insert(key, certificate);
                }
                self.step(node, Input::Persisted { sequence });
            }
            Event::Timer {
                node,
                epoch,
                generation,
            } => {
                let state = &self.nodes[node];
                if state.epoch == epoch && state.timer_generation == generation {
                    self.step(node, Input::Tick);
                }
            }
            Event::App { node, epoch, input } => {
                if self.nodes[node].epoch == epoch {
                    let start = matches!(input, Input::Start);
                    self.step(node, input);
                    if start {
                        self.nodes[node].started = true;
                        self.update_links();
                    }
                }
            }
            Event::FetchAsk {
                server,
                client,
                request,
                link,
            } => {
                if self.links.carries(client, server, link) {
                    self.serve_fetch(server, client, request);
                }
            }
            Event::FetchAnswer {
                client,
                server,
                bytes,
                link,
            } => {
                if !self.nodes[client].started || !self.links.carries(server, client, link) {
                    return;
                }
                let Ok(response) = FetchResponse::decode(&bytes) else {
                    return;
                };
                let input = Input::Fetched {
                    from: MemberId(server as u32),
                    response,
                };
                self.step(client, input);
            }
            Event::Crash => self.on_crash_event(),
            Event::Restart { node, epoch } => {
                if self.nodes[node].epoch == epoch && self.nodes[node].engine.is_none() {
                    self.boot(node);
                }
            }
            Event::Partition { on } => self.on_partition_event(on),
            Event::HealStart => self.on_heal_start(),
            Event::OutageBegin => self.on_outage_begin(),
            Event::OutageStop { node } => {
                if self.nodes[node].engine.is_some() {
                    self.crash(node);
                }
                self.outage_stops += 1;
                let victims = self
                    .faults
                    .outage
                    .as_ref()
                    .map_or(0, |plan| plan.victims.len());
                if self.outage_stops == victims {
                    self.quorum_losses += 1;
                    self.outage_armed = true;
                    self.update_stall_clock();
                }
            }
            Event::OutageRestart { node } => {
                if self.nodes[node].engine.is_none() {
                    self.boot(node);
                }
                self.outage_restarts += 1;
            }
        }
    }

    fn on_crash_event(&mut self) {
        if self.phase != Phase::Faults {
            return;
        }
        let n = self.nodes.len();
        // At most n - q of any epoch's validators (at least one node) are down at once,
        // whichever epoch the running nodes are in.
        let down: Vec<bool> = self
            .nodes
            .iter()
            .map(|node| node.engine.is_none())
            .collect();
        let may_stop = |victim: usize| -> bool {
            let total_down = down.iter().filter(|down| **down).count();
            if total_down == 0 {
                return true;
            }
            self.plan.epochs.iter().all(|epoch| {
                let set = &epoch.set;
                let stopped = (0..n)
                    .filter(|node| {
                        (down[*node] || *node == victim) && set.contains(MemberId(*node as u32))
                    })
                    .count();
                stopped <= set.len() - set.quorum()
            })
        };
        let candidates: Vec<usize> = (0..n)
            .filter(|node| {
                self.is_honest(*node) && self.nodes[*node].engine.is_some() && may_stop(*node)
            })
            .collect();
        if !candidates.is_empty() {
            let node = candidates[self.rng.below(candidates.len() as u64) as usize];
            self.crash(node);
            let at = self.now + self.rng.range(50, 2_000);
            let epoch = self.nodes[node].epoch;
            self.schedule(at, Event::Restart { node, epoch });
        }
        let interval = self.faults.crash_interval_ms;
        let at = self.now + self.rng.range(interval / 2, interval * 3 / 2);
        self.schedule(at, Event::Crash);
    }

    fn on_partition_event(&mut self, on: bool) {
        if self.phase != Phase::Faults {
            return;
        }
        if on {
            let sides: Vec<bool> = (0..self.nodes.len())
                .map(|_| self.rng.chance(500))
                .collect();
            self.partition = Some(sides);
        } else {
            self.partition = None;
        }
        self.update_links();
        let at = self.now + self.rng.range(200, 3_000);
        self.schedule(at, Event::Partition { on: !on });
    }

    /// The outage phase: partitions and random crashes stop, nodes down from the fault
    /// phase restart; the plan's stops and restarts are already scheduled.
    fn on_outage_begin(&mut self) {
        self.phase = Phase::Outage;
        self.partition = None;
        self.update_links();
        for node in 0..self.nodes.len() {
            if self.nodes[node].engine.is_none() {
                self.boot(node);
            }
        }
    }

    fn on_heal_start(&mut self) {
        if self.phase == Phase::Healing {
            return;
        }
        self.phase = Phase::Healing;
        self.highest_epoch_under_faults = self.highest_epoch;
        self.stall_clock = None;
        self.quorum_back_at = None;
        self.partition = None;
        self.update_links();
        self.heal_started_ms = self.now;
        for node in 0..self.nodes.len() {
            if self.nodes[node].engine.is_none() {
                self.boot(node);
            }
        }
        let highest = self.nodes.iter().map(Node::height).max().unwrap_or(0);
        // Liveness after the last reconfiguration: the final set must finalize too.
        let last_boundary = self.plan.last_boundary().map_or(0, |height| height.0);
        self.heal_target = highest.max(last_boundary) + HEAL_NEW_BLOCKS;
    }

    // ----- network --------------------------------------------------------------------

    /// Schedules the event `make(connection)` for delivery from `from` to `to` over
    /// their link, if it is up, through the faulty network (loss, delay and so
    /// reordering, duplication at the levels of the current phase).
    fn transmit(&mut self, from: usize, to: usize, make: impl Fn(u64) -> Event) {
        if !self.links.is_up(from, to) {
            return;
        }
        let link = self.links.epoch(from, to);
        let (loss_per_mille, max_delay_ms, duplicate_per_mille) = match self.phase {
            Phase::Faults => (
                self.faults.loss_per_mille,
                self.faults.max_delay_ms,
                self.faults.duplicate_per_mille,
            ),
            Phase::Outage => (
                self.faults.loss_per_mille.min(OUTAGE_MAX_LOSS_PER_MILLE),
                self.faults.max_delay_ms.min(OUTAGE_MAX_DELAY_MS),
                self.faults.duplicate_per_mille,
            ),
            Phase::Healing => (0, HEAL_MAX_DELAY_MS, 0),
        };
        if loss_per_mille > 0 && self.rng.chance(loss_per_mille) {
            return;
        }
        let at = self.now + self.rng.range(1, max_delay_ms);
        self.schedule(at, make(link));
        if duplicate_per_mille > 0 && self.rng.chance(duplicate_per_mille) {
            let at = self.now + self.rng.range(1, self.faults.max_replay_delay_ms);
            self.schedule(at, make(link));
        }
    }

    fn send_bytes(&mut self, from: usize, to: usize, bytes: Vec<u8>, gossip: bool) {
        self.transmit(from, to, |link| Event::Deliver {
            to,
            from,
            bytes: bytes.clone(),
            gossip,
            link,
        });
    }

    /// Records gossip `bytes` in `node`'s duplicate cache; false if it was seen within
    /// the window (always true without [`SimConfig::gossip_dedup`]).
    fn first_sight(&mut self, node: usize, bytes: &[u8]) -> bool {
        let now = self.now;
        self.nodes[node].seen.insert(message_id(bytes), now) || !self.config.gossip_dedup
    }

    /// The peers `node` is connected to now.
    fn connected_peers(&self, node: usize) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|peer| *peer != node && self.links.is_up(node, *peer))
            .collect()
    }

    fn serve_fetch(&mut self, server: usize, client: usize, request: FetchRequest) {
        if !self.nodes[server].started {
            return;
        }
        let garbage = self.nodes[server]
            .byzantine
            .as_ref()
            .is_some_and(|byzantine| byzantine.behaviour.sends_garbage());
        let response = if garbage && self.rng.chance(500) {
            let byzantine = self.nodes[server].byzantine.as_ref().expect("byzantine");
            byzantine.garbage_fetch_answer(&mut self.rng, request.from_height, &self.plan)
        } else {
            let state = &self.nodes[server];
            answer_fetch(&request, &Store(&state.finalized), state.engine.as_ref())
        };
        let bytes = response.encode();
        self.transmit(server, client, |link| Event::FetchAnswer {
            client,
            server,
            bytes: bytes.clone(),
            link,
        });
    }

    // ----- stepping and outputs ---------------------------------------------------------

    fn step(&mut self, node: usize, input: Input) {
        let local = self.nodes[node].local_ms(self.now);
        let Some(engine) = self.nodes[node].engine.as_mut() else {
            return;
        };
        let outputs = engine.step(local, input);
        // R14: a fenced node's fence is over once the record its engine lifted with is
        // durable (or at once if lifting changed nothing).
        let state = &mut self.nodes[node];
        if state.fenced && state.lift_sequence.is_none() {
            let engine = state.engine.as_ref().expect("stepped");
            if engine.is_voting() && !engine.is_fenced() {
                let lifted = outputs
                    .iter()
                    .filter_map(|output| match output {
                        Output::Persist { sequence, .. } => Some(*sequence),
                        _ => None,
                    })
                    .max();
                match lifted {
                    Some(sequence) => state.lift_sequence = Some(sequence),
                    None => state.fenced = false,
                }
            }
        }
        // E5: the epoch's end is the engine's last output; the next engine starts once
        // the spent one's outputs are carried out (under the old engine's incarnation).
        let mut ended: Option<(Epoch, Height)> = None;
        for output in outputs {
            if let Some((epoch, last_height)) = ended {
                self.violation(format!(
                    "node {node}'s engine output {output:?} after ending epoch {epoch} at height {last_height}"
                ));
                return;
            }
            match output {
                Output::EpochEnded { epoch, last_height } => ended = Some((epoch, last_height)),
                output => self.handle(node, output),
            }
        }
        if !self.nodes[node].expected_descendants.is_empty() {
            let missing = self.nodes[node].expected_descendants.clone();
            self.violation(format!(
                "node {node} output blocks certified by descendants it never output: {missing:?}"
            ));
            self.nodes[node].expected_descendants.clear();
        }
        if let Some((epoch, last_height)) = ended {
            self.hand_over(node, epoch, last_height);
        }
    }

    fn handle(&mut self, node: usize, output: Output) {
        let epoch = self.nodes[node].epoch;
        match output {
            Output::Broadcast(message) => {
                let recipients: Vec<usize> =
                    (0..self.nodes.len()).filter(|peer| *peer != node).collect();
                self.send_message(node, &recipients, message, true);
            }
            Output::Send { to, message } => {
                let to = to.0 as usize;
                if to < self.nodes.len() && to != node {
                    self.send_message(node, &[to], message, false);
                }
            }
            Output::Persist {
                sequence,
                record,
                block,
                certificate,
            } => {
                let max = if self.phase == Phase::Healing {
                    HEAL_MAX_PERSIST_MS
                } else {
                    self.faults.max_persist_delay_ms
                };
                // Records are written in order: one finishes no earlier than the last.
                let at = (self.now + self.rng.range(0, max)).max(self.nodes[node].persist_done_at);
                self.nodes[node].persist_done_at = at;
                self.schedule(
                    at,
                    Event::PersistDone {
                        node,
                        epoch,
                        sequence,
                        record,
                        block,
                        certificate,
                    },
                );
            }
            Output::SetTimer { deadline_ms } => {
                let state = &mut self.nodes[node];
                state.timer_generation += 1;
                let generation = state.timer_generation;
                let at = state.global_ms(self.now, deadline_ms);
                self.schedule(
                    at,
                    Event::Timer {
                        node,
                        epoch,
                        generation,
                    },
                );
            }
            Output::BuildProposal {
                epoch: block_epoch,
                view,
                height,
                parent,
                ancestors,
            } => {
                let state = &self.nodes[node];
                let parent_root = app::parent_root(&ancestors, &state.finalized);
                assert_eq!(app::parent_hash(&ancestors, &state.finalized), parent);
                let block = app::build(
                    &self.plan,
                    &self.genesis.chain_id,
                    (block_epoch, view, height),
                    parent,
                    &parent_root,
                    state.member,
                    state.local_ms(self.now),
                );
                self.nodes[node]
                    .built_parent_roots
                    .insert(block.hash(), parent_root);
                let wait = if self.phase == Phase::Outage {
                    OUTAGE_EMPTY_BLOCK_DELAY_MS
                } else {
                    0
                };
                let at = self.now + wait + self.rng.range(0, self.faults.max_app_delay_ms);
                self.schedule(
                    at,
                    Event::App {
                        node,
                        epoch,
                        input: Input::ProposalBuilt { view, block },
                    },
                );
            }
            Output::VerifyProposal {
                view,
                block,
                ancestors,
            } => {
                let state = &self.nodes[node];
                let valid = app::verify(
                    &self.plan,
                    &block,
                    &app::parent_hash(&ancestors, &state.finalized),
                    &app::parent_root(&ancestors, &state.finalized),
                );
                let at = self.now + self.rng.range(0, self.faults.max_app_delay_ms);
                self.schedule(
                    at,
                    Event::App {
                        node,
                        epoch,
                        input: Input::ProposalVerified {
                            view,
                            block: block.hash(),
                            valid,
                        },
                    },
                );
            }
            Output::Finalized(finalized) => self.check_finalized(node, finalized),
            Output::EpochEnded { .. } => unreachable!("step hands over after the batch"),
            Output::Evidence(evidence) => {
                let set = self.plan.set(evidence_epoch(&evidence));
                if !set.is_some_and(|set| evidence.verify_in(&self.genesis_domain, set)) {
                    self.violation(format!(
                        "node {node} reported invalid evidence {evidence:?}"
                    ));
                    return;
                }
                let accused = evidence.member().0 as usize;
                if self.is_honest(accused) {
                    self.violation(format!(
                        "node {node} holds valid evidence against honest member {accused}: {evidence:?}"
                    ));
                } else if self.is_honest(node) {
                    self.evidence_against_byzantine += 1;
                }
            }
            Output::Fetch(request) => {
                // The node asks a peer it is connected to; with none, the request fails
                // and the engine asks again after `fetch_retry_ms`.
                let peers = self.connected_peers(node);
                if peers.is_empty() {
                    return;
                }
                let server = peers[self.rng.below(peers.len() as u64) as usize];
                self.transmit(node, server, |link| Event::FetchAsk {
                    server,
                    client: node,
                    request: request.clone(),
                    link,
                });
            }
        }
    }

    /// Sends `message` from `node` to `recipients`: as gossip (a gossipsub publish) or
    /// as direct messages.
    fn send_message(
        &mut self,
        node: usize,
        recipients: &[usize],
        message: ConsensusMessage,
        gossip: bool,
    ) {
        if self.is_honest(node) {
            self.check_signed(node, &message);
            let bytes = message.encode();
            if gossip {
                let peers: Vec<usize> = recipients
                    .iter()
                    .copied()
                    .filter(|peer| self.links.is_up(node, *peer))
                    .collect();
                // gossipsub refuses a publish with no peer before caching the id, and
                // refuses bytes whose id is cached ("already published").
                if peers.is_empty() || !self.first_sight(node, &bytes) {
                    return;
                }
                for to in peers {
                    self.send_bytes(node, to, bytes.clone(), true);
                }
            } else {
                for to in recipients {
                    self.send_bytes(node, *to, bytes.clone(), false);
                }
            }
            return;
        }
        let parent_root = match &message {
            ConsensusMessage::Proposal(proposal) => self.nodes[node]
                .built_parent_roots
                .get(&proposal.block.hash())
                .copied(),
            _ => None,
        };
        let mut byzantine = self.nodes[node].byzantine.take().expect("byzantine node");
        let sends = byzantine.rewrite(&mut self.rng, &message, recipients, parent_root, &self.plan);
        self.nodes[node].byzantine = Some(byzantine);
        // A byzantine node publishes whatever it likes (its own cache does not stop it);
        // the receivers' caches still apply.
        for (to, bytes) in sends {
            self.send_bytes(node, to, bytes, gossip);
        }
    }

    // ----- checks ---------------------------------------------------------------------

    /// No honest validator sends two conflicting signed messages. A node restored from
    /// a stale backup ([`SimConfig::stale_restores`]) is held to this at delivery
    /// instead ([`Sim::check_delivered`]): a message of its old life that reached no one
    /// cannot be learned back, and harms no one.
    fn check_signed(&mut self, node: usize, message: &ConsensusMessage) {
        if self.nodes[node].restored_once {
            return;
        }
        let member = self.nodes[node].member;
        if let Some((view, conflict)) = record_signed(&mut self.sent, member, message) {
            self.violation(format!(
                "honest member {member} signed {conflict} in view {view}"
            ));
        }
    }

    /// The one validator a stale-restoring seed restores from stale backups (a restore
    /// is an operator's rare act on one node; restoring every voter of a notarized block
    /// from before its vote would lose the block, which R10 keeps only on their disks):
    /// the lowest honest node at or after the seed's draw, without using the seed's
    /// random stream.
    fn stale_node(&self) -> usize {
        let n = self.nodes.len();
        (0..n)
            .map(|offset| (self.seed as usize + offset) % n)
            .find(|node| self.is_honest(*node))
            .expect("an honest node")
    }

    /// With stale restores: a signed message of an honest validator never reaches an
    /// honest node while a conflicting one is still held by one (R14). Held means
    /// received by a node that has not restarted since: a message whose every receiver
    /// crashed is gone, as is one that reached no one, and the fence cannot learn it.
    fn check_delivered(&mut self, from: usize, to: usize, message: &ConsensusMessage) {
        let member = self.nodes[from].member;
        let Some(signed) = signed_by_sender(member, message) else {
            return;
        };
        let key = (member, signed.epoch, signed.view);
        let held = self.delivered.entry(key).or_default();
        let alive =
            |(node, incarnation): &(usize, u64), nodes: &[Node]| nodes[*node].epoch == *incarnation;
        let conflict = held
            .iter()
            .filter(|(other, _)| signed.conflicts_with(other))
            .find(|(_, receivers)| {
                receivers
                    .iter()
                    .any(|receiver| alive(receiver, &self.nodes))
            })
            .map(|(other, _)| other.clone());
        let receiver = (to, self.nodes[to].epoch);
        held.entry(signed.clone()).or_default().insert(receiver);
        if let Some(other) = conflict {
            self.violation(format!(
                "honest member {member} (restored from a stale backup: {}) had {:?} reach node {to} while {:?} is held by an honest node, in view {}",
                self.nodes[from].restored_once, signed.signing, other.signing, signed.view
            ));
        }
    }

    /// The seals handed over with an epoch's last block (E4): each exactly the seal of
    /// its parent (no transactions, the parent's state root, time and end, the same
    /// epoch), in one parent chain from the block. Returns the top seal's (hash,
    /// height), or `None` if there are none or they are broken (a violation).
    fn check_seals(&mut self, node: usize, finalized: &FinalizedBlock) -> Option<(Hash, Height)> {
        let mut parent = &finalized.block;
        for seal in &finalized.seals {
            let (header, above) = (&seal.header, &parent.header);
            let exact = seal.txs.is_empty()
                && seal.txs_root_matches()
                && header.chain_id == above.chain_id
                && header.epoch == above.epoch
                && header.height == above.height.next()
                && header.parent == parent.hash()
                && header.timestamp_ms == above.timestamp_ms
                && header.state_root == above.state_root
                && header.epoch_end == above.epoch_end
                && header.next_validators.is_none();
            if !exact {
                self.violation(format!(
                    "node {node} finalized height {} with a broken seal {header:?} on {above:?}",
                    finalized.block.header.height
                ));
                return None;
            }
            parent = seal;
        }
        (!finalized.seals.is_empty()).then(|| (parent.hash(), parent.header.height))
    }

    fn check_finalized(&mut self, node: usize, finalized: FinalizedBlock) {
        let header = finalized.block.header.clone();
        let hash = finalized.block.hash();
        let height = header.height;
        let (previous_hash, previous_root) = match self.nodes[node].finalized.last() {
            Some(last) => (last.block.hash(), last.block.header.state_root),
            None => (Hash::ZERO, Hash::ZERO),
        };
        let expected_height = self.nodes[node].height() + 1;
        if height != Height(expected_height) || header.parent != previous_hash {
            self.violation(format!(
                "node {node} output height {height} (parent {:?}) after height {} ({previous_hash:?})",
                header.parent,
                expected_height - 1
            ));
        }
        // Re-execution: the state root, and the epoch and epoch end the state names.
        if !app::verify(&self.plan, &finalized.block, &header.parent, &previous_root) {
            self.violation(format!(
                "node {node} finalized height {height} (epoch {}, end {:?}) that does not re-execute",
                header.epoch, header.epoch_end
            ));
        }
        let certificate = &finalized.certificate;
        let certificate_id = Hash::tagged(
            SEISAN_SIM_TRACE_V1,
            &[&seisan_types::codec::encode(certificate)],
        );
        if certificate.vote.epoch != header.epoch {
            self.violation(format!(
                "node {node} finalized height {height} of epoch {} with a certificate of epoch {}",
                header.epoch, certificate.vote.epoch
            ));
        } else if !self.verified_certificates.contains(&certificate_id) {
            // Against the set of the certificate's epoch only (E1).
            let verified = match self.plan.set(certificate.vote.epoch) {
                Some(set) => verify_certificate_in(&self.genesis_domain, set, certificate)
                    .map_err(|error| error.to_string()),
                None => Err("its epoch is not in the plan".into()),
            };
            match verified {
                Ok(()) => {
                    self.verified_certificates.insert(certificate_id);
                    self.signers
                        .entry(certificate.vote.epoch.0)
                        .or_default()
                        .extend(certificate.signatures.iter().map(|(member, _)| member.0));
                }
                Err(error) => self.violation(format!(
                    "node {node} finalized height {height} with an invalid certificate: {error}"
                )),
            }
        }
        let last_of_epoch = self.plan.epochs[header.epoch.0 as usize].last == Some(height);
        if !finalized.seals.is_empty() && !last_of_epoch {
            self.violation(format!(
                "node {node} finalized height {height} with seals, but epoch {} ends at {:?}",
                header.epoch, self.plan.epochs[header.epoch.0 as usize].last
            ));
        }
        if let Some(top) = self.check_seals(node, &finalized) {
            self.sealed_epoch_ends.insert(header.epoch.0);
            // E4: the certificate finalized a seal above the epoch's last block; the
            // seals link the block to it, and nothing above the block is output.
            for seal in &finalized.seals {
                let seal_height = seal.header.height;
                if let Some(expected) = self.nodes[node].expected_descendants.remove(&seal_height) {
                    if expected != seal.hash() {
                        self.violation(format!(
                            "node {node} was promised block {expected:?} at height {seal_height} but sealed its epoch with {:?}",
                            seal.hash()
                        ));
                    }
                }
            }
            if certificate.vote.kind != VoteKind::Finalize
                || certificate.vote.block != top.0
                || certificate.vote.height != top.1
            {
                self.violation(format!(
                    "node {node} finalized the last block of epoch {} at height {height} with seals up to {top:?} but a certificate for {:?}",
                    header.epoch, certificate.vote
                ));
            }
        }
        let vote = &certificate.vote;
        if !finalized.seals.is_empty() {
            // Checked above against the seals.
        } else if vote.kind != VoteKind::Finalize || vote.height < height {
            self.violation(format!(
                "node {node} finalized height {height} with a certificate for {vote:?}"
            ));
        } else if vote.height == height {
            if vote.block != hash {
                self.violation(format!(
                    "node {node} finalized height {height} with another block's certificate"
                ));
            }
        } else {
            self.nodes[node]
                .expected_descendants
                .insert(vote.height, vote.block);
        }
        if let Some(expected) = self.nodes[node].expected_descendants.get(&height).copied() {
            if expected != hash {
                self.violation(format!(
                    "node {node} finalized height {height} but its certificate names another block"
                ));
            }
            self.nodes[node].expected_descendants.remove(&height);
        }
        match self.finalized_anywhere.get(&height) {
            Some(other) if *other != hash => self.violation(format!(
                "agreement broken at height {height}: node {node} finalized {hash:?}, another node {other:?}"
            )),
            Some(_) => {}
            None => {
                self.finalized_anywhere.insert(height, hash);
                self.on_new_height();
            }
        }
        self.nodes[node].finalized.push(finalized);
    }
}

/// The epoch whose set signed the messages `evidence` holds.
fn evidence_epoch(evidence: &ConsensusEvidence) -> Epoch {
    match evidence {
        ConsensusEvidence::ConflictingVotes(votes) => votes.first.vote.epoch,
        ConsensusEvidence::FinalizeAndNullify { finalize, .. } => finalize.vote.epoch,
        ConsensusEvidence::ConflictingProposals { first, .. } => first.header.epoch,
    }
}

/// The input that tells an engine a link to `peer` came up or went down.
fn connection_input(peer: MemberId, up: bool) -> Option<Input> {
    Some(if up {
        Input::PeerConnected { peer }
    } else {
        Input::PeerDisconnected { peer }
    })
}

/// Draws a quorum-loss outage: more than n - q nodes stop (usually leaving a survivor
/// whose gossip cache holds everything it sent, sometimes all of them; always an
/// honest survivor unless [`SimConfig::outage_may_stop_all`]), together or one after
/// another, and come back in a random order, one at a time or together.
fn draw_outage(rng: &mut Rng, config: &SimConfig, byzantine: &BTreeSet<usize>) -> OutagePlan {
    let n = config.validators as usize;
    let least = n - config.quorum as usize + 1;
    let spare_one = !config.outage_may_stop_all;
    let count = if least < n && (spare_one || rng.chance(800)) {
        rng.range(least as u64, n as u64 - 1) as usize
    } else {
        n
    };
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    let honest = |node: &usize| !byzantine.contains(node);
    if spare_one && count < n && !order[count..].iter().any(honest) {
        // Spare an honest validator: a byzantine survivor alone spares nobody.
        let keep = order[..count]
            .iter()
            .rposition(honest)
            .expect("fewer byzantine validators than validators");
        order.swap(keep, count);
    }
    let victims = order[..count].to_vec();
    let stop_gap_ms = if rng.chance(300) {
        0
    } else {
        rng.range(50, 1_000)
    };
    let down_ms = rng.range(200, 1_500);
    let mut restarts = victims.clone();
    rng.shuffle(&mut restarts);
    let restart_gap_ms = if rng.chance(250) {
        0
    } else {
        rng.range(100, 1_500)
    };
    OutagePlan {
        victims,
        stop_gap_ms,
        down_ms,
        restarts,
        restart_gap_ms,
    }
}

/// A plan must take the quorum down and bring every victim back exactly once.
fn check_outage_plan(plan: &OutagePlan, n: usize, quorum: usize) {
    let victims: BTreeSet<usize> = plan.victims.iter().copied().collect();
    assert_eq!(victims.len(), plan.victims.len(), "a node stops once");
    assert!(
        victims.len() > n - quorum,
        "the outage must take the quorum down"
    );
    assert!(victims.iter().all(|node| *node < n));
    let restarts: BTreeSet<usize> = plan.restarts.iter().copied().collect();
    assert_eq!(restarts, victims, "every stopped node restarts");
    assert_eq!(plan.restarts.len(), plan.victims.len());
}

/// Records what `member` signed in `message` (its own proposal or vote, or the nullify
/// its status carries) into `signed`; the conflict with what was recorded before, if any.
fn record_signed(
    signed: &mut BTreeMap<(MemberId, Epoch, View), Sent>,
    member: MemberId,
    message: &ConsensusMessage,
) -> Option<(View, &'static str)> {
    let (view, conflict) = match message {
        ConsensusMessage::Proposal(proposal) if proposal.block.header.proposer == member => {
            let view = proposal.block.header.view;
            let hash = proposal.block.hash();
            let epoch = proposal.block.header.epoch;
            let sent = signed.entry((member, epoch, view)).or_default();
            let conflict = sent.proposal.is_some_and(|held| held != hash);
            sent.proposal.get_or_insert(hash);
            (view, conflict.then_some("two proposals"))
        }
        // A status carries the sender's own nullify: it is a signed message too.
        ConsensusMessage::Status(status) => {
            let vote = status.nullify.as_ref()?;
            return record_signed(signed, member, &ConsensusMessage::Vote(vote.clone()));
        }
        ConsensusMessage::Vote(vote) if vote.member == member => {
            let view = vote.vote.view;
            let block = vote.vote.block;
            let sent = signed.entry((member, vote.vote.epoch, view)).or_default();
            let conflict = match vote.vote.kind {
                VoteKind::Notarize => {
                    let conflict = sent.notarize.is_some_and(|held| held != block);
                    sent.notarize.get_or_insert(block);
                    conflict.then_some("two notarize votes")
                }
                VoteKind::Finalize => {
                    let conflict = if sent.finalize.is_some_and(|held| held != block) {
                        Some("two finalize votes")
                    } else if sent.nullify {
                        Some("a finalize after a nullify")
                    } else {
                        None
                    };
                    sent.finalize.get_or_insert(block);
                    conflict
                }
                VoteKind::Nullify => {
                    sent.nullify = true;
                    sent.finalize
                        .is_some()
                        .then_some("a nullify after a finalize")
                }
            };
            (view, conflict)
        }
        _ => return None,
    };
    conflict.map(|conflict| (view, conflict))
}

/// The honest nodes a signed message reached, each with its incarnation then.
type Receivers = BTreeSet<(usize, u64)>;

/// One signature of a validator, as the stale-restore check follows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SignedItem {
    epoch: Epoch,
    view: View,
    signing: SigningKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SigningKind {
    Proposal(Hash),
    Notarize(Hash),
    Finalize(Hash),
    Nullify,
}

impl SignedItem {
    /// Whether an honest validator may never sign both (R10).
    fn conflicts_with(&self, other: &SignedItem) -> bool {
        use SigningKind::*;
        self.epoch == other.epoch
            && self.view == other.view
            && match (self.signing, other.signing) {
                (Proposal(a), Proposal(b))
                | (Notarize(a), Notarize(b))
                | (Finalize(a), Finalize(b)) => a != b,
                (Finalize(_), Nullify) | (Nullify, Finalize(_)) => true,
                _ => false,
            }
    }
}

/// What `member` itself signed in `message` (its proposal, vote, or the nullify its
/// status carries), if anything.
fn signed_by_sender(member: MemberId, message: &ConsensusMessage) -> Option<SignedItem> {
    match message {
        ConsensusMessage::Proposal(proposal) if proposal.block.header.proposer == member => {
            Some(SignedItem {
                epoch: proposal.block.header.epoch,
                view: proposal.block.header.view,
                signing: SigningKind::Proposal(proposal.block.hash()),
            })
        }
        ConsensusMessage::Status(status) => {
            let vote = status.nullify.as_ref()?;
            signed_by_sender(member, &ConsensusMessage::Vote(vote.clone()))
        }
        ConsensusMessage::Vote(vote) if vote.member == member => Some(SignedItem {
            epoch: vote.vote.epoch,
            view: vote.vote.view,
            signing: match vote.vote.kind {
                VoteKind::Notarize => SigningKind::Notarize(vote.vote.block),
                VoteKind::Finalize => SigningKind::Finalize(vote.vote.block),
                VoteKind::Nullify => SigningKind::Nullify,
            },
        }),
        _ => None,
    }
}
