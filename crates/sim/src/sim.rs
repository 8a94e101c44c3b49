//! The event loop of one seed: a priority queue of (time, sequence) -> event, n nodes,
//! the fault model, and the checks run after every step.

use crate::app;
use crate::byzantine::{Behaviour, Byzantine};
use crate::rng::Rng;
use crate::{SeedReport, SimConfig, HEAL_NEW_BLOCKS};
use seisan_consensus::{
    answer_fetch, Config, ConsensusMessage, Engine, FetchRequest, FetchResponse, FinalizedBlock,
    FinalizedStore, FinalizedTip, Input, Output, PersistedRecord, Restored,
};
use seisan_crypto::{verify_certificate, Keypair};
use seisan_types::genesis::{Member, Role};
use seisan_types::{
    Block, ChainId, Genesis, Hash, Height, MemberId, QuorumCertificate, View, VoteKind,
};
use std::collections::{BTreeMap, BTreeSet};

/// Domain tag of the trace hash.
const SEISAN_SIM_TRACE_V1: &[u8] = b"SEISAN_SIM_TRACE_V1";
/// The chain id of simulated networks (a `dev` chain, so dev keys are acceptable).
pub const SIM_CHAIN_ID: &str = "sim-dev";
/// Message delay bound once the network has healed.
const HEAL_MAX_DELAY_MS: u64 = 10;
/// Persistence delay bound once the network has healed.
const HEAL_MAX_PERSIST_MS: u64 = 5;

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
}

#[derive(Clone, Debug)]
enum Event {
    Deliver {
        to: usize,
        from: usize,
        bytes: Vec<u8>,
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
    },
    FetchAnswer {
        client: usize,
        server: usize,
        bytes: Vec<u8>,
    },
    Crash,
    Restart {
        node: usize,
    },
    Partition {
        on: bool,
    },
    HealStart,
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
        }
    }
}

#[derive(Debug)]
struct Node {
    member: MemberId,
    keypair: Keypair,
    engine: Option<Engine>,
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

    fn tip(&self) -> FinalizedTip {
        self.finalized
            .last()
            .map_or_else(FinalizedTip::genesis, FinalizedTip::of)
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
    faults: Faults,
    now: u64,
    next_sequence: u64,
    queue: BTreeMap<(u64, u64), Event>,
    nodes: Vec<Node>,
    partition: Option<Vec<bool>>,
    healing: bool,
    heal_target: u64,
    heal_started_ms: u64,
    finalized_anywhere: BTreeMap<Height, Hash>,
    verified_certificates: BTreeSet<Hash>,
    sent: BTreeMap<(MemberId, View), Sent>,
    violations: Vec<String>,
    evidence_against_byzantine: u64,
    crashes: u64,
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
        crashes: sim.crashes,
        events: sim.events,
        trace_hash: sim.trace,
        faults: format!("{:?}", sim.faults),
        replay: config.replay_command(seed),
    }
}

impl Sim {
    fn new(config: SimConfig, seed: u64) -> Sim {
        let mut rng = Rng::new(seed);
        let genesis = genesis(&config);
        let faults = Faults {
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
        };
        let n = config.validators as usize;
        let mut byzantine: BTreeSet<usize> = BTreeSet::new();
        while byzantine.len() < config.byzantine as usize {
            byzantine.insert(rng.below(n as u64) as usize);
        }
        let nodes = (0..n)
            .map(|index| {
                let keypair = Keypair::dev(&format!("validator-{index}"));
                let behaviour = config
                    .behaviour
                    .unwrap_or(Behaviour::ALL[rng.below(Behaviour::ALL.len() as u64) as usize]);
                Node {
                    member: MemberId(index as u32),
                    keypair: keypair.clone(),
                    engine: None,
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
                            genesis.chain_id.clone(),
                            n,
                        )
                    }),
                    built_parent_roots: BTreeMap::new(),
                    expected_descendants: BTreeMap::new(),
                }
            })
            .collect();
        Sim {
            config,
            seed,
            rng,
            genesis,
            faults,
            now: 0,
            next_sequence: 0,
            queue: BTreeMap::new(),
            nodes,
            partition: None,
            healing: false,
            heal_target: 0,
            heal_started_ms: 0,
            finalized_anywhere: BTreeMap::new(),
            verified_certificates: BTreeSet::new(),
            sent: BTreeMap::new(),
            violations: Vec::new(),
            evidence_against_byzantine: 0,
            crashes: 0,
            events: 0,
            trace: Hash::tagged(SEISAN_SIM_TRACE_V1, &[&[0]]),
        }
    }

    fn schedule(&mut self, at: u64, event: Event) {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.queue.insert((at.max(self.now), sequence), event);
    }

    fn engine_config(&self, node: usize) -> Config {
        let byzantine = self.nodes[node].byzantine.is_some();
        Config {
            genesis: self.genesis.clone(),
            member: self.nodes[node].member,
            keypair: self.nodes[node].keypair.clone(),
            timeouts: self.config.timeouts,
            bug_injection: if byzantine {
                Default::default()
            } else {
                self.config.bug_injection
            },
        }
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
            self.boot(node);
        }
        if self.faults.partitions {
            let at = self.rng.range(100, 2_000);
            self.schedule(at, Event::Partition { on: true });
        }
        if self.faults.crash_interval_ms > 0 {
            let at = self.rng.range(100, self.faults.crash_interval_ms);
            self.schedule(at, Event::Crash);
        }
        self.schedule(self.config.fault_ms, Event::HealStart);
        let deadline = self.config.fault_ms + self.config.heal_ms;
        loop {
            let Some(((at, _), event)) = self.queue.pop_first() else {
                return Err("no events left (every node idle)".into());
            };
            if at > deadline {
                return Err(self.liveness_report("healing deadline passed"));
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
            if self.healing && self.healed() {
                return Ok(());
            }
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
                    "{}:{}h{}v{}",
                    node.member,
                    if node.byzantine.is_some() { "byz," } else { "" },
                    node.height(),
                    node.engine.as_ref().map_or(0, |engine| engine.view().0)
                )
            })
            .collect();
        let mut report = format!(
            "{why} at t={}ms: heal began at {}ms, target height {}, nodes [{}]",
            self.now,
            self.heal_started_ms,
            self.heal_target,
            nodes.join(" ")
        );
        for engine in self.nodes.iter().filter_map(|node| node.engine.as_ref()) {
            report.push_str("\n  ");
            report.push_str(&engine.describe());
        }
        report
    }

    fn trace_event(&mut self, event: &Event) {
        let detail: Vec<u8> = match event {
            Event::Deliver { to, from, bytes } => {
                let mut detail = vec![*to as u8, *from as u8];
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
            Event::Restart { node } => vec![*node as u8],
            Event::Partition { on } => vec![u8::from(*on)],
            Event::Crash | Event::HealStart => vec![],
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
        let config = self.engine_config(node);
        let tip = self.nodes[node].tip();
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
        };
        match Engine::new(config, tip, restored) {
            Ok(engine) => {
                self.nodes[node].engine = Some(engine);
                let at = self.now + self.rng.range(0, 50);
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

    fn crash(&mut self, node: usize) {
        let state = &mut self.nodes[node];
        state.engine = None;
        // Everything in flight for the old process (unacknowledged records, timers,
        // application answers) belongs to the old epoch and is dropped on arrival.
        state.epoch += 1;
        state.persist_done_at = 0;
        self.crashes += 1;
    }

    fn process(&mut self, event: Event) {
        match event {
            Event::Deliver { to, from, bytes } => {
                if self.nodes[to].engine.is_none() {
                    return;
                }
                let Ok(message) = ConsensusMessage::decode(&bytes) else {
                    return;
                };
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
                    self.step(node, input);
                }
            }
            Event::FetchAsk {
                server,
                client,
                request,
            } => self.serve_fetch(server, client, request),
            Event::FetchAnswer {
                client,
                server,
                bytes,
            } => {
                if self.nodes[client].engine.is_none() {
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
            Event::Restart { node } => {
                if self.nodes[node].engine.is_none() {
                    self.boot(node);
                }
            }
            Event::Partition { on } => self.on_partition_event(on),
            Event::HealStart => self.on_heal_start(),
        }
    }

    fn on_crash_event(&mut self) {
        if self.healing {
            return;
        }
        let n = self.nodes.len();
        let down = self
            .nodes
            .iter()
            .filter(|node| node.engine.is_none())
            .count();
        let max_down = (n - self.config.quorum as usize).max(1);
        let candidates: Vec<usize> = (0..n)
            .filter(|node| self.is_honest(*node) && self.nodes[*node].engine.is_some())
            .collect();
        if down < max_down && !candidates.is_empty() {
            let node = candidates[self.rng.below(candidates.len() as u64) as usize];
            self.crash(node);
            let at = self.now + self.rng.range(50, 2_000);
            self.schedule(at, Event::Restart { node });
        }
        let interval = self.faults.crash_interval_ms;
        let at = self.now + self.rng.range(interval / 2, interval * 3 / 2);
        self.schedule(at, Event::Crash);
    }

    fn on_partition_event(&mut self, on: bool) {
        if self.healing {
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
        let at = self.now + self.rng.range(200, 3_000);
        self.schedule(at, Event::Partition { on: !on });
    }

    fn on_heal_start(&mut self) {
        self.healing = true;
        self.partition = None;
        self.heal_started_ms = self.now;
        for node in 0..self.nodes.len() {
            if self.nodes[node].engine.is_none() {
                self.boot(node);
            }
        }
        let highest = self.nodes.iter().map(Node::height).max().unwrap_or(0);
        self.heal_target = highest + HEAL_NEW_BLOCKS;
    }

    // ----- network --------------------------------------------------------------------

    /// Schedules `event` for delivery from `from` to `to` through the faulty network;
    /// returns whether it (or a copy) will arrive.
    fn transmit(&mut self, from: usize, to: usize, make: impl Fn() -> Event) {
        if self.healing {
            let at = self.now + self.rng.range(1, HEAL_MAX_DELAY_MS);
            self.schedule(at, make());
            return;
        }
        if let Some(sides) = &self.partition {
            if sides[from] != sides[to] {
                return;
            }
        }
        if self.rng.chance(self.faults.loss_per_mille) {
            return;
        }
        let at = self.now + self.rng.range(1, self.faults.max_delay_ms);
        self.schedule(at, make());
        if self.rng.chance(self.faults.duplicate_per_mille) {
            let at = self.now + self.rng.range(1, self.faults.max_replay_delay_ms);
            self.schedule(at, make());
        }
    }

    fn send_bytes(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        self.transmit(from, to, || Event::Deliver {
            to,
            from,
            bytes: bytes.clone(),
        });
    }

    fn serve_fetch(&mut self, server: usize, client: usize, request: FetchRequest) {
        if self.nodes[server].engine.is_none() {
            return;
        }
        let garbage = self.nodes[server]
            .byzantine
            .as_ref()
            .is_some_and(|byzantine| byzantine.behaviour.sends_garbage());
        let response = if garbage && self.rng.chance(500) {
            let byzantine = self.nodes[server].byzantine.as_ref().expect("byzantine");
            byzantine.garbage_fetch_answer(&mut self.rng, request.from_height)
        } else {
            let state = &self.nodes[server];
            answer_fetch(&request, &Store(&state.finalized), state.engine.as_ref())
        };
        let bytes = response.encode();
        self.transmit(server, client, || Event::FetchAnswer {
            client,
            server,
            bytes: bytes.clone(),
        });
    }

    // ----- stepping and outputs ---------------------------------------------------------

    fn step(&mut self, node: usize, input: Input) {
        let local = self.nodes[node].local_ms(self.now);
        let Some(engine) = self.nodes[node].engine.as_mut() else {
            return;
        };
        let outputs = engine.step(local, input);
        for output in outputs {
            self.handle(node, output);
        }
        if !self.nodes[node].expected_descendants.is_empty() {
            let missing = self.nodes[node].expected_descendants.clone();
            self.violation(format!(
                "node {node} output blocks certified by descendants it never output: {missing:?}"
            ));
            self.nodes[node].expected_descendants.clear();
        }
    }

    fn handle(&mut self, node: usize, output: Output) {
        let epoch = self.nodes[node].epoch;
        match output {
            Output::Broadcast(message) => {
                let recipients: Vec<usize> =
                    (0..self.nodes.len()).filter(|peer| *peer != node).collect();
                self.send_message(node, &recipients, message);
            }
            Output::Send { to, message } => {
                let to = to.0 as usize;
                if to < self.nodes.len() && to != node {
                    self.send_message(node, &[to], message);
                }
            }
            Output::Persist {
                sequence,
                record,
                block,
                certificate,
            } => {
                let max = if self.healing {
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
                view,
                height,
                parent,
                ancestors,
            } => {
                let state = &self.nodes[node];
                let parent_root = app::parent_root(&ancestors, &state.finalized);
                assert_eq!(app::parent_hash(&ancestors, &state.finalized), parent);
                let block = app::build(
                    &self.genesis.chain_id,
                    view,
                    height,
                    parent,
                    &parent_root,
                    state.member,
                    state.local_ms(self.now),
                );
                self.nodes[node]
                    .built_parent_roots
                    .insert(block.hash(), parent_root);
                let at = self.now + self.rng.range(0, self.faults.max_app_delay_ms);
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
            Output::Evidence(evidence) => {
                if !evidence.verify(&self.genesis) {
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
                let n = self.nodes.len() as u64;
                let server = ((node as u64 + 1 + self.rng.below(n - 1)) % n) as usize;
                self.transmit(node, server, || Event::FetchAsk {
                    server,
                    client: node,
                    request: request.clone(),
                });
            }
        }
    }

    fn send_message(&mut self, node: usize, recipients: &[usize], message: ConsensusMessage) {
        if self.is_honest(node) {
            self.check_signed(node, &message);
            let bytes = message.encode();
            for to in recipients {
                self.send_bytes(node, *to, bytes.clone());
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
        let sends = byzantine.rewrite(&mut self.rng, &message, recipients, parent_root);
        self.nodes[node].byzantine = Some(byzantine);
        for (to, bytes) in sends {
            self.send_bytes(node, to, bytes);
        }
    }

    // ----- checks ---------------------------------------------------------------------

    /// No honest validator sends two conflicting signed messages.
    fn check_signed(&mut self, node: usize, message: &ConsensusMessage) {
        let member = self.nodes[node].member;
        let (view, conflict) = match message {
            ConsensusMessage::Proposal(proposal) if proposal.block.header.proposer == member => {
                let view = proposal.block.header.view;
                let hash = proposal.block.hash();
                let sent = self.sent.entry((member, view)).or_default();
                let conflict = sent.proposal.is_some_and(|held| held != hash);
                sent.proposal.get_or_insert(hash);
                (view, conflict.then_some("two proposals"))
            }
            ConsensusMessage::Vote(vote) if vote.member == member => {
                let view = vote.vote.view;
                let block = vote.vote.block;
                let sent = self.sent.entry((member, view)).or_default();
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
            _ => return,
        };
        if let Some(conflict) = conflict {
            self.violation(format!(
                "honest member {member} signed {conflict} in view {view}"
            ));
        }
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
        if header.state_root != app::state_root(&previous_root, &header) {
            self.violation(format!(
                "node {node} finalized height {height} whose state root does not re-execute"
            ));
        }
        let certificate = &finalized.certificate;
        let certificate_id = Hash::tagged(
            SEISAN_SIM_TRACE_V1,
            &[&seisan_types::codec::encode(certificate)],
        );
        if !self.verified_certificates.contains(&certificate_id) {
            match verify_certificate(&self.genesis, certificate) {
                Ok(()) => {
                    self.verified_certificates.insert(certificate_id);
                }
                Err(error) => self.violation(format!(
                    "node {node} finalized height {height} with an invalid certificate: {error}"
                )),
            }
        }
        let vote = &certificate.vote;
        if vote.kind != VoteKind::Finalize || vote.height < height {
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
            }
        }
        self.nodes[node].finalized.push(finalized);
    }
}
