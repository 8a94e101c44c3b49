//! The node's core loop. One task owns the consensus engine and the block pipeline; it
//! turns network events, timer expiries and finished persistence into engine inputs,
//! and engine outputs into I/O (gossip, fsynced records, block execution, commits,
//! fetches). The HTTP API and gossip admission share only the mempool (behind a
//! mutex), a read handle on the store, and channels.

use super::admission::replay_journaled;
use super::api::{self, ApiContext, NodeStatus};
use super::committed_config::CommittedConfig;
use super::config::NodeConfig;
use super::files::{DataDirLock, DurableRecord};
use super::mempool::{Mempool, MempoolLimits};
use super::metrics::Metrics;
use super::pipeline::{read_block, read_certificate, Pipeline, MAX_CLOCK_SKEW_MS};
use super::tx_journal::TxJournal;
use anyhow::{bail, Context};
use seisan_consensus::{
    answer_fetch, ConsensusEvidence, ConsensusMessage, Engine, FetchRequest, FetchResponse,
    FinalizedBlock, FinalizedStore, FinalizedTip, Input, Output, PersistedRecord, Restored,
    OBSERVER,
};
use seisan_network::{
    DirectMessage, GossipMessage, InboundRequest, NetworkConfig, NetworkError, NetworkEvent,
    NetworkHandle, PeerMember, Topic, Validation,
};
use seisan_state::{SledBackend, StateDb};
use seisan_types::block::{Block, QuorumCertificate, MAX_BLOCK_BYTES, MAX_TXS_PER_BLOCK};
use seisan_types::codec;
use seisan_types::genesis::Genesis;
use seisan_types::hash::Hash;
use seisan_types::ids::{Epoch, Height, MemberId, Nonce, View};
use seisan_types::tx::SignedTransaction;
use seisan_types::{MemberStatus, Membership, ValidatorSet};
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, error, info, warn};

/// How long a leader with an empty mempool waits before proposing an empty block, unless
/// configured otherwise (`--empty-block-delay-ms`).
pub const EMPTY_BLOCK_DELAY_MS: u64 = 500;
/// How long after its parent block a leader with transactions waiting holds its
/// proposal to gather more, unless configured otherwise (`--min-block-interval-ms`).
/// Each block costs every node a fixed share of CPU and disk (its execution's fixed
/// part, votes and certificate, the fsync and the block's records): at 500 offered
/// orders/s, building at once made 40-50 blocks a second of 10-12 orders each, and a node
/// spent about 1 ms of CPU per order (README, Performance).
pub const MIN_BLOCK_INTERVAL_MS: u64 = 100;
/// The most transactions one proposal takes (below the protocol's
/// [`MAX_TXS_PER_BLOCK`]): every node executes and commits a block within one view, and
/// on a loaded 2-core machine a full 8,192-transaction block takes longer than the view
/// timeout, so views were nullified and the backlog grew (0.5 blocks/s at 4,000 offered
/// tx/s). Smaller blocks keep each view's work bounded; a backlog drains over more views.
pub const MAX_PROPOSAL_TXS: usize = 2048;
const _: () = assert!(MAX_PROPOSAL_TXS <= MAX_TXS_PER_BLOCK);
/// The most transactions gossiped in one message.
pub const MAX_GOSSIP_BATCH: usize = 1024;
/// How long admitted transactions wait to fill a gossip batch.
pub const GOSSIP_BATCH_WINDOW_MS: u64 = 10;
/// The most encoded bytes of transactions in one proposal (leaves room for the header
/// and justification in a consensus message).
pub const MAX_PROPOSAL_TX_BYTES: usize = MAX_BLOCK_BYTES - (1 << 20);
/// The most entries one kept-record pruning pass removes.
const MAX_PRUNE_PER_COMMIT: usize = 256;

const KEPT_BLOCK_PREFIX: &[u8] = b"kb/";
const KEPT_CERTIFICATE_PREFIX: &[u8] = b"kc/";
const EVIDENCE_PREFIX: &[u8] = b"ev/";

/// Milliseconds since the Unix epoch: the only clock the node reads.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

fn kept_block_key(block: &Block) -> Vec<u8> {
    let mut key = KEPT_BLOCK_PREFIX.to_vec();
    key.extend_from_slice(&block.header.height.0.to_be_bytes());
    key.extend_from_slice(&block.hash().0);
    key
}

fn kept_certificate_key(certificate: &QuorumCertificate) -> Vec<u8> {
    let mut key = KEPT_CERTIFICATE_PREFIX.to_vec();
    key.extend_from_slice(&certificate.vote.view.0.to_be_bytes());
    key.push(certificate.vote.kind as u8);
    key
}

/// The epoch fields of `/v1/status`: the engine's epoch, its validators by name and
/// quorum, and whether this node votes.
fn show_epoch(status: &mut NodeStatus, engine: &Engine, membership: &Membership) {
    let set = engine.validator_set();
    status.epoch = set.epoch.0;
    status.validators = set
        .members()
        .into_iter()
        .map(|member| {
            membership
                .member(member)
                .map_or_else(|| member.to_string(), |entry| entry.member.name.clone())
        })
        .collect();
    status.quorum = set.quorum;
    status.voting = engine.is_voting();
}

/// Who this node is in a membership: a member (by its current key) or nobody.
#[derive(Clone, Debug)]
struct Identity {
    /// [`OBSERVER`] when the key belongs to no member.
    member: MemberId,
    name: String,
    entry: Option<seisan_types::Member>,
}

impl Identity {
    fn of(membership: &Membership, keypair: &seisan_crypto::Keypair) -> Identity {
        match membership.member_by_key(&keypair.public_key()) {
            Some((member, entry)) => Identity {
                member,
                name: entry.member.name.clone(),
                entry: Some(entry.member.clone()),
            },
            None => Identity {
                member: OBSERVER,
                name: "observer".into(),
                entry: None,
            },
        }
    }
}

/// The consensus engine for the epoch the committed state is in (E1, E5): the
/// membership's validator set there, the epoch's end if a change is scheduled, and the
/// tip as the epoch's base when its certificate is the previous epoch's.
fn engine_at_tip(
    pipeline: &Pipeline<SledBackend>,
    genesis: &Genesis,
    member: MemberId,
    keypair: &seisan_crypto::Keypair,
    restored: Restored,
) -> anyhow::Result<Engine> {
    let db = pipeline.db();
    let view = db.committed_view();
    let set = seisan_contracts::governance::membership(&view).validator_set();
    let epoch_end = seisan_contracts::governance::epoch_end(&view);
    let tip = pipeline.tip();
    let certificate = read_certificate(db, tip.height)
        .filter(|certificate| certificate.vote.height >= tip.height);
    let finalized_tip = match certificate {
        Some(certificate) if certificate.vote.epoch != set.epoch => {
            let last = FinalizedBlock {
                block: read_block(db, tip.height).context("the tip block is stored")?,
                certificate,
                seals: super::pipeline::read_seals(db, tip.height),
            };
            FinalizedTip::epoch_base(&last)
        }
        certificate => FinalizedTip {
            height: tip.height,
            hash: tip.hash,
            view: tip.view,
            certificate: certificate.filter(|certificate| certificate.vote.block == tip.hash),
        },
    };
    let engine = Engine::new(
        seisan_consensus::Config {
            domain: genesis.domain(),
            validators: set,
            epoch_end,
            member,
            keypair: keypair.clone(),
            timeouts: Default::default(),
            bug_injection: Default::default(),
        },
        finalized_tip,
        restored,
    )?;
    Ok(engine)
}

/// The network's starting allow-list: every member that is not removed (this node
/// included, as [`OBSERVER`] if it is no member yet, so the network knows its own key).
fn network_allow_list(
    membership: &Membership,
    identity: &Identity,
    keypair: &seisan_crypto::Keypair,
) -> Vec<seisan_network::Validator> {
    let mut list: Vec<seisan_network::Validator> = membership
        .members
        .iter()
        .enumerate()
        .filter(|(_, entry)| entry.status != MemberStatus::Removed)
        .map(|(index, entry)| seisan_network::Validator {
            member: MemberId(index as u32),
            name: entry.member.name.clone(),
            public_key: entry.member.public_key,
            address: entry
                .member
                .p2p_address
                .as_deref()
                .and_then(|address| address.parse().ok()),
        })
        .collect();
    if identity.entry.is_none() {
        list.push(seisan_network::Validator {
            member: OBSERVER,
            name: identity.name.clone(),
            public_key: keypair.public_key(),
            address: None,
        });
    }
    list
}

/// Who may connect, as the network's live allow-list takes it: every member that is
/// not removed, with its current key; the validators of `set` are gossip peers.
fn peer_members(
    membership: &Membership,
    set: &ValidatorSet,
    own_key: &seisan_types::PublicKey,
) -> Vec<PeerMember> {
    membership
        .members
        .iter()
        .enumerate()
        // The network knows its own identity already (as an observer if it joined as
        // one); listing it again under its member id would be a shared key.
        .filter(|(_, entry)| {
            entry.status != MemberStatus::Removed && entry.member.public_key != *own_key
        })
        .map(|(index, entry)| {
            let member = MemberId(index as u32);
            PeerMember {
                member,
                public_key: entry.member.public_key,
                address: entry
                    .member
                    .p2p_address
                    .as_deref()
                    .and_then(|address| address.parse().ok()),
                validator: set.contains(member),
            }
        })
        .collect()
}

/// Serves catch-up requests from the committed store.
struct StoreReader<'a>(&'a StateDb<SledBackend>);

impl FinalizedStore for StoreReader<'_> {
    fn finalized_height(&self) -> Height {
        super::pipeline::read_tip(self.0).map_or(Height(0), |tip| tip.height)
    }

    fn finalized_block(&self, height: Height) -> Option<FinalizedBlock> {
        Some(FinalizedBlock {
            block: read_block(self.0, height)?,
            certificate: read_certificate(self.0, height)?,
            seals: super::pipeline::read_seals(self.0, height),
        })
    }
}

/// A proposal the engine asked for, waiting for transactions or its deadline.
struct PendingBuild {
    epoch: Epoch,
    view: View,
    parent: Hash,
    ancestors: Vec<Block>,
    /// When an empty block may be built (nothing waits).
    due_ms: u64,
    /// Until when a block that would not be full waits for more transactions.
    gather_until_ms: u64,
}

impl PendingBuild {
    /// Until when a leader asked at `now` gathers transactions on a parent built at
    /// `parent_ms` (another node's clock: never more than one interval from now). A
    /// parent older than the interval (a quiet chain) gives `now`: build at once.
    fn gather_until(now: u64, parent_ms: Option<u64>, interval_ms: u64) -> u64 {
        parent_ms
            .map_or(now, |parent_ms| parent_ms + interval_ms)
            .min(now + interval_ms)
    }

    /// When the loop should look at this proposal again, with `waiting` transactions.
    fn wake_ms(&self, waiting: usize) -> u64 {
        if waiting == 0 {
            self.due_ms
        } else {
            self.gather_until_ms
        }
    }

    /// Whether to build now: a full block at once, a block with transactions once the
    /// gathering time is over, an empty one once its delay is.
    fn ready(&self, now: u64, waiting: usize) -> bool {
        waiting >= MAX_PROPOSAL_TXS || now >= self.wake_ms(waiting)
    }
}

struct Core {
    genesis: Arc<Genesis>,
    /// Blocks committed during this turn of the loop and not yet flushed (catching up).
    unflushed: bool,
    member: MemberId,
    /// This node's key: the next epoch's engine signs with it (E5).
    keypair: seisan_crypto::Keypair,
    engine: Engine,
    pipeline: Pipeline<SledBackend>,
    mempool: Arc<Mutex<Mempool>>,
    /// Admits gossiped transactions off this loop ([`super::gossip_admission`]).
    gossip_admission: super::gossip_admission::GossipAdmission,
    network: NetworkHandle,
    record_file: DurableRecord,
    timer_ms: Option<u64>,
    inputs: VecDeque<Input>,
    pending_build: Option<PendingBuild>,
    fetch_results: mpsc::Sender<(MemberId, FetchResponse)>,
    peers: BTreeSet<MemberId>,
    fetch_cursor: usize,
    /// Serves snapshots of the committed state to nodes that sync from one.
    snapshots: super::snapshot::Server,
    status: watch::Sender<NodeStatus>,
    events: broadcast::Sender<Arc<String>>,
    metrics: Arc<Metrics>,
    commit_lock: Arc<RwLock<()>>,
    empty_block_delay_ms: u64,
    /// A leader's gathering time after the parent block ([`MIN_BLOCK_INTERVAL_MS`]).
    min_block_interval_ms: u64,
    /// An idle chain's heartbeat ([`super::idle`]).
    idle_block_interval_ms: u64,
    /// Where business days end: the first block of a new day makes the core record
    /// the ended day's compliance snapshot ([`super::compliance`]).
    day_cutoff: super::compliance::DayCutoff,
    watch: LivenessWatch,
    /// Test-only fault injection (`--fault`): rewrites what the engine sends.
    fault: Option<super::fault::Equivocator>,
    /// The `restored` marker while it is present (R14): every engine starts fenced.
    fence_marker: Option<super::files::RestoredMarker>,
}

/// Turns what the engine reports after each step into operator-facing logs and
/// metrics: view changes, timeouts, stalls and sync state (issue 14: a stall must be
/// visible at the default log level, without flooding it).
struct LivenessWatch {
    view: View,
    timed_out: bool,
    /// The current view's timeout came with no transaction waiting (an idle view).
    idle_timeout: bool,
    syncing: bool,
    last_finalized_ms: u64,
    last_stall_log_ms: u64,
    last_timeout_log_ms: u64,
    timeouts_not_logged: u64,
    /// Progress while behind the chain, for the status, the log and the metrics.
    catch_up: super::catch_up::CatchUp,
    last_catch_up_log_ms: u64,
}

/// A node that finalizes nothing for this long while it runs says so at warn, and
/// again at most this often.
const STALL_LOG_INTERVAL_MS: u64 = 10_000;
/// A node catching up says where it stands at most this often.
const CATCH_UP_LOG_INTERVAL_MS: u64 = 5_000;
/// View timeouts are logged at most this often (the rest are counted in the next
/// line and in the `seisan_view_timeouts` metric).
const TIMEOUT_LOG_INTERVAL_MS: u64 = 5_000;

/// Runs a validator node until SIGINT or SIGTERM.
pub async fn run(config: NodeConfig) -> anyhow::Result<()> {
    let genesis = super::super::genesis_command::load_genesis(&config.genesis)?;
    let keypair = seisan_crypto::keyfile::read_key_file(&config.key)?;
    // A missing or mismatched certificate or key stops the node before it opens anything.
    let tls = config
        .tls
        .as_ref()
        .map(|files| seisan_tls::server_config(&files.cert, &files.key))
        .transpose()?;
    let _lock = DataDirLock::acquire(&config.data)?;
    let state_path = config.data.join("state");
    let backend = SledBackend::open(&state_path)
        .with_context(|| format!("opening state at {}", state_path.display()))?;
    // Checkpoints are written off the core loop; a crash before one is written costs a
    // longer replay of the node's own blocks at the next start (`Pipeline::open`).
    let db = StateDb::open(backend)
        .with_context(|| format!("checking state at {}", state_path.display()))?
        .with_checkpoint_interval(config.checkpoint_interval_blocks)
        .with_background_checkpoints();
    let genesis = Arc::new(genesis);
    let mut pipeline = Pipeline::open(db.clone(), genesis.clone()).map_err(anyhow::Error::msg)?;
    // Who this node is comes from the membership its state holds, not from genesis: a
    // member added on the live chain, or one whose key was rotated, is known there.
    let mut membership = seisan_contracts::governance::membership(&db.committed_view());
    let mut identity = Identity::of(&membership, &keypair);
    refuse_dev_key(&identity, &keypair, &genesis)?;
    let own_address = identity
        .entry
        .as_ref()
        .and_then(|entry| entry.p2p_address.clone());
    let listen = match config.listen.clone().or(own_address) {
        Some(address) => address,
        None => bail!(
            "no --listen address and {} has no p2p_address in the membership",
            identity.name
        ),
    };
    let listen = listen
        .parse()
        .with_context(|| format!("listen address {listen:?} is not a multiaddress"))?;
    let network_config = NetworkConfig {
        chain_id: genesis.chain_id.clone(),
        keypair: keypair.clone(),
        validators: network_allow_list(&membership, &identity, &keypair),
        listen_addresses: vec![listen],
        limits: seisan_network::NetworkLimits::default(),
    };
    let (network, mut network_events) = seisan_network::spawn(network_config).await?;
    // A store that holds only genesis installs a peer's certified snapshot, if the
    // chain is long enough to make it worth it, and catches up from there.
    let mut early_peers = BTreeSet::new();
    if let (Height(0), Some(min_blocks)) = (pipeline.tip().height, config.snapshot_sync_min_blocks)
    {
        let known = membership.clone();
        let names = move |member: MemberId| {
            known
                .member(member)
                .map_or_else(|| member.to_string(), |entry| entry.member.name.clone())
        };
        let outcome = super::snapshot::Client {
            network: &network,
            events: &mut network_events,
            genesis: &genesis,
            names: &names,
            peers: BTreeSet::new(),
        }
        .sync(&db, min_blocks)
        .await?;
        early_peers = outcome.peers;
        if outcome.installed.is_some() {
            pipeline = Pipeline::open(db.clone(), genesis.clone()).map_err(anyhow::Error::msg)?;
            membership = seisan_contracts::governance::membership(&db.committed_view());
            identity = Identity::of(&membership, &keypair);
            refuse_dev_key(&identity, &keypair, &genesis)?;
        }
    }
    if identity.entry.is_none() {
        warn!(
            key = %keypair.public_key(),
            "this key belongs to no member of the chain as this node knows it; the node follows the chain as an observer (it verifies and stores every block, signs nothing) until a membership change it syncs names the key"
        );
    }
    let member = identity.member;
    let member_name = identity.name.clone();
    let (journal, journaled) = TxJournal::open(
        &config.data.join("tx-journal"),
        super::tx_journal::still_pending(db.clone()),
    )?;
    let record_file = DurableRecord::new(config.data.join("consensus-record"));
    // R14: a data directory rebuilt by `seisan restore` may hold a record older than
    // what this validator signed; the engines stay fenced until one has learned it.
    let fence_marker = super::files::RestoredMarker::new(&config.data);
    let fenced = fence_marker.is_present();
    let restored = restore(&db, &record_file, fenced)?;
    let tip = pipeline.tip();
    let engine = engine_at_tip(&pipeline, &genesis, member, &keypair, restored)?;
    info!(
        member = %member_name,
        height = %tip.height,
        root = %tip.state_root,
        epoch = %engine.validator_set().epoch,
        voting = engine.is_voting(),
        "state opened"
    );
    if fenced {
        warn!(
            member = %member_name,
            "restored from a backup: fenced, this validator signs nothing until its peers have said what it signed after the backup (R14)"
        );
    }
    let fault = super::fault::Equivocator::configured(config.fault, &genesis, &keypair, member)?;
    let snapshots =
        super::snapshot::Server::new(super::fault::lies_in_snapshots(config.fault, &genesis)?);
    // The allow-list follows the membership in state, which may differ from genesis
    // after a restart (members added, removed or re-keyed on the live chain).
    network
        .set_members(peer_members(
            &membership,
            engine.validator_set(),
            &keypair.public_key(),
        ))
        .await
        .context("applying the membership to the network allow-list")?;

    let mempool = Arc::new(Mutex::new(Mempool::new(MempoolLimits::default())));
    let committed_config = CommittedConfig::new(genesis.clone());
    replay_journaled(
        committed_config.clone(),
        genesis.domain(),
        db.clone(),
        mempool.clone(),
        network.clone(),
        journaled,
    )
    .await;
    let metrics = Arc::new(Metrics::new());
    // Correct from the first scrape after a restart, not only after the next block.
    metrics.height.set(tip.height.0 as i64);
    metrics.view.set(tip.view.0 as i64);
    metrics.syncing.set(1);
    metrics.epoch.set(engine.validator_set().epoch.0 as i64);
    metrics
        .validators
        .set(engine.validator_set().validators.len() as i64);
    metrics.quorum.set(i64::from(engine.validator_set().quorum));
    let (status_sender, status_receiver) = watch::channel(NodeStatus {
        chain_id: genesis.chain_id.0.clone(),
        member: member.0,
        member_name: member_name.clone(),
        height: tip.height.0,
        view: tip.view.0,
        last_finalized_hash: tip.hash.to_hex(),
        state_root: tip.state_root.to_hex(),
        peers: Vec::new(),
        mempool_depth: 0,
        // A node that has just started cannot tell yet whether the chain moved on.
        syncing: true,
        best_known_height: tip.height.0,
        behind_by: 0,
        epoch: 0,
        validators: Vec::new(),
        quorum: 0,
        voting: false,
        fenced,
        custody_undercovered: None,
        mirrors: None,
        catch_up: None,
    });
    status_sender.send_modify(|status| show_epoch(status, &engine, &membership));
    let (events, _) = broadcast::channel(1024);
    let (gossip_sender, gossip_receiver) = mpsc::channel(4096);
    tokio::spawn(gossip_batcher(network.clone(), gossip_receiver));
    let commit_lock = Arc::new(RwLock::new(()));
    let (custody_status, custody_receiver) =
        watch::channel(super::custody_watcher::CustodyStatus::default());
    let (bank_status, bank_receiver) = watch::channel(super::bank_watcher::BankStatus::default());
    let bank_connection = super::bank_watcher::connect(&config)?;
    let context = ApiContext {
        config: committed_config.clone(),
        domain: genesis.domain(),
        genesis: genesis.clone(),
        db: db.clone(),
        mempool: mempool.clone(),
        status: status_receiver,
        events: events.clone(),
        gossip: gossip_sender,
        journal,
        metrics: metrics.clone(),
        commit_lock: commit_lock.clone(),
        custody: custody_receiver,
        bank: bank_receiver,
        bank_reader: bank_connection
            .as_ref()
            .map(|connection| connection.reader.clone()),
        day_cutoff: config.day_cutoff,
        data_dir: config.data.clone(),
    };
    // One attester signs every transaction the node makes itself, on the node lane.
    let attester = super::attester::spawn(context.clone(), keypair.clone(), member);
    super::bank_watcher::spawn(
        &config,
        member,
        context.clone(),
        attester.clone(),
        bank_connection,
        bank_status,
    )?;
    super::custody_watcher::spawn(
        &config,
        member,
        context.clone(),
        attester.clone(),
        custody_status,
    )?;
    super::reserves_probe::spawn(config.eth_rpc.clone(), context.clone());
    super::compliance::spawn_monitor(context.clone(), config.eth_rpc.is_some());
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| format!("binding the HTTP API to {}", config.http))?;
    info!(http = %config.http, tls = tls.is_some(), "HTTP API listening");
    tokio::spawn(async move {
        // Handlers get each client's address (ConnectInfo), for the per-address rate limit.
        let router = api::router(context, config.rate_limits);
        if let Err(error) = seisan_tls::serve(listener, tls, router, std::future::pending()).await {
            error!(%error, "HTTP server stopped");
        }
    });

    let (fetch_results, mut fetch_receiver) = mpsc::channel(64);
    let gossip_admission = super::gossip_admission::spawn(
        super::gossip_admission::Admitter {
            config: committed_config.clone(),
            domain: pipeline.domain().clone(),
            db: pipeline.db().clone(),
            mempool: mempool.clone(),
        },
        network.clone(),
    );
    let mut core = Core {
        genesis,
        unflushed: false,
        member,
        keypair: keypair.clone(),
        engine,
        pipeline,
        mempool,
        gossip_admission,
        network: network.clone(),
        record_file,
        timer_ms: None,
        // The peers that connected while the node looked for a snapshot are known
        // to the engine from the start.
        inputs: std::iter::once(Input::Start)
            .chain(
                early_peers
                    .iter()
                    .map(|&peer| Input::PeerConnected { peer }),
            )
            .collect(),
        pending_build: None,
        fetch_results,
        peers: early_peers,
        snapshots,
        fetch_cursor: 0,
        status: status_sender,
        events,
        metrics,
        commit_lock,
        empty_block_delay_ms: config.empty_block_delay_ms,
        min_block_interval_ms: config.min_block_interval_ms,
        idle_block_interval_ms: config.idle_block_interval_ms,
        day_cutoff: config.day_cutoff,
        watch: LivenessWatch {
            view: tip.view,
            timed_out: false,
            idle_timeout: false,
            syncing: true,
            last_finalized_ms: now_ms(),
            last_stall_log_ms: now_ms(),
            last_timeout_log_ms: 0,
            timeouts_not_logged: 0,
            catch_up: super::catch_up::CatchUp::default(),
            last_catch_up_log_ms: 0,
        },
        fault,
        fence_marker: fenced.then_some(fence_marker),
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // The peers that connected while the node looked for a snapshot are shown too.
    core.peers_changed();
    let arrivals = core.mempool.lock().expect("mempool lock").arrivals();
    loop {
        core.drain_inputs()?;
        if core.pending_build.is_some() {
            // Builds at once when transactions wait (or the empty block is due).
            core.try_build()?;
            if !core.inputs.is_empty() {
                continue;
            }
        }
        let sleep_ms = core
            .timer_ms
            .map_or(60_000, |deadline| deadline.saturating_sub(now_ms()));
        let build_due_ms = core.pending_build.as_ref().map_or(60_000, |pending| {
            let waiting = core.mempool.lock().expect("mempool lock").len();
            pending.wake_ms(waiting).saturating_sub(now_ms())
        });
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            event = network_events.recv() => match event {
                Some(event) => core.on_network(event).await,
                None => bail!("the network stopped"),
            },
            Some((from, response)) = fetch_receiver.recv() => core.inputs.push_back(Input::Fetched { from, response }),
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms)) => {
                core.timer_ms = None;
                core.inputs.push_back(Input::Tick);
            }
            // A pending proposal is looked at again by the next turn of the loop: when a
            // transaction arrives (a full block is built at once), or when its gathering
            // time or empty-block delay is over.
            _ = arrivals.notified(), if core.pending_build.is_some() => {}
            _ = tokio::time::sleep(Duration::from_millis(build_due_ms)), if core.pending_build.is_some() => {}
        }
    }
    info!("shutting down");
    network.shutdown().await;
    Ok(())
}

/// Refuses to run a well-known dev key as a member of a chain that is not a dev network.
fn refuse_dev_key(
    identity: &Identity,
    keypair: &seisan_crypto::Keypair,
    genesis: &Genesis,
) -> anyhow::Result<()> {
    if let Some(entry) = &identity.entry {
        if seisan_crypto::is_well_known_dev_key(&keypair.public_key(), &entry.name)
            && !genesis.chain_id.is_dev()
        {
            bail!(
                "the key of {} is a well-known dev key, and chain {} is not a dev network; generate a real key with `seisan keygen`",
                entry.name,
                genesis.chain_id
            );
        }
    }
    Ok(())
}

/// Reads what the engine asked to keep durably.
fn restore(
    db: &StateDb<SledBackend>,
    record_file: &DurableRecord,
    fenced: bool,
) -> anyhow::Result<Restored> {
    let record = match record_file.load()? {
        Some(bytes) => Some(PersistedRecord::decode(&bytes).map_err(|error| {
            anyhow::anyhow!(
                "the consensus record is corrupt ({error}); refusing to guess what was signed"
            )
        })?),
        None => None,
    };
    let blocks = db
        .records(KEPT_BLOCK_PREFIX, None, 1024)
        .into_iter()
        .map(|(_, bytes)| codec::decode::<Block>(&bytes).context("kept block record"))
        .collect::<anyhow::Result<Vec<Block>>>()?;
    let certificates = db
        .records(KEPT_CERTIFICATE_PREFIX, None, 1024)
        .into_iter()
        .map(|(_, bytes)| {
            codec::decode::<QuorumCertificate>(&bytes).context("kept certificate record")
        })
        .collect::<anyhow::Result<Vec<QuorumCertificate>>>()?;
    Ok(Restored {
        record,
        blocks,
        certificates,
        fenced,
    })
}

/// Collects admitted transactions into batches and gossips them.
async fn gossip_batcher(
    network: NetworkHandle,
    mut receiver: mpsc::Receiver<Vec<SignedTransaction>>,
) {
    while let Some(first) = receiver.recv().await {
        let mut batch = first;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(GOSSIP_BATCH_WINDOW_MS);
        while batch.len() < MAX_GOSSIP_BATCH {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(more)) => batch.extend(more),
                _ => break,
            }
        }
        for chunk in batch.chunks(MAX_GOSSIP_BATCH) {
            if let Err(error) = network
                .publish(Topic::Transactions, codec::encode(chunk))
                .await
            {
                debug!(%error, "gossiping transactions failed; they stay in this node's mempool");
            }
        }
    }
}

/// Checks the signatures of a consensus message before it is forwarded.
/// The gossip verdict on a consensus message, checked against the validators of the
/// epoch this node runs (E1). A message of another epoch is not proof of misbehaviour
/// (the sender may be ahead of or behind this node), so it is ignored, not rejected.
fn validate_consensus(engine: &Engine, message: &ConsensusMessage) -> Validation {
    let set = engine.validator_set();
    let domain = engine.domain();
    let epoch = match message {
        ConsensusMessage::Vote(vote) => vote.vote.epoch,
        ConsensusMessage::Certificate(certificate) => certificate.vote.epoch,
        ConsensusMessage::Proposal(proposal) => proposal.block.header.epoch,
        // A status speaks for the connection it came on; it is never gossiped.
        ConsensusMessage::Status(_) => return Validation::Reject,
    };
    if epoch != set.epoch {
        return Validation::Ignore;
    }
    let valid = match message {
        ConsensusMessage::Vote(vote) => seisan_crypto::verify_vote_in(domain, set, vote).is_ok(),
        ConsensusMessage::Certificate(certificate) => {
            seisan_crypto::verify_certificate_in(domain, set, certificate).is_ok()
        }
        ConsensusMessage::Status(_) => false,
        ConsensusMessage::Proposal(proposal) => {
            let signed = proposal.signed_header();
            let Some(leader_key) = set.key_of(signed.header.proposer) else {
                return Validation::Reject;
            };
            signed.header.chain_id == domain.chain_id
                && seisan_crypto::verify_digest(
                    &leader_key,
                    &signed.digest(&domain.genesis),
                    &signed.signature,
                )
                .is_ok()
                && proposal.justification.iter().all(|certificate| {
                    seisan_crypto::verify_certificate_in(domain, set, certificate).is_ok()
                })
        }
    };
    if valid {
        Validation::Accept
    } else {
        Validation::Reject
    }
}

impl Core {
    fn drain_inputs(&mut self) -> anyhow::Result<()> {
        let mut stepped = false;
        while let Some(input) = self.inputs.pop_front() {
            // Test-only: what a faulty node sends on this input besides its engine.
            let injected = self
                .fault
                .as_ref()
                .map_or_else(Vec::new, |fault| fault.on_input(&input));
            let mut outputs = self.engine.step(now_ms(), input);
            if let Some(fault) = &self.fault {
                outputs = fault.rewrite(outputs);
            }
            outputs.extend(injected);
            self.handle_outputs(outputs)?;
            stepped = true;
        }
        if stepped {
            self.flush_caught_up();
            self.lift_fence()?;
            self.observe();
        }
        Ok(())
    }

    /// R14: once a voting engine has lifted its fence, the merged record it asked to
    /// persist is durable (outputs are carried out in order, synchronously), so the
    /// marker goes, durably; a crash before that restarts fenced.
    fn lift_fence(&mut self) -> anyhow::Result<()> {
        let Some(marker) = &self.fence_marker else {
            return Ok(());
        };
        if !self.engine.is_voting() || self.engine.is_fenced() {
            return Ok(());
        }
        marker.remove()?;
        self.fence_marker = None;
        let record = self.engine.record();
        info!(
            epoch = %record.epoch,
            record_view = %record.view,
            view = %self.engine.view(),
            "fence lifted: learned from the peers what this validator signed; voting again"
        );
        Ok(())
    }

    /// Logs view changes, timeouts, stalls and sync changes, and publishes the sync
    /// state to `/v1/status` and `/metrics`.
    fn observe(&mut self) {
        let now = now_ms();
        let view = self.engine.view();
        let timed_out = self.engine.timed_out();
        let sync = self.engine.sync_state();
        let peers = self.peers.len();
        let quorum = self.engine.validator_set().quorum;
        let epoch = self.engine.validator_set().epoch;
        // An idle chain's views time out by design ([`super::idle`]): a timeout with no
        // transaction waiting is counted apart and logged at debug.
        let idle = self.mempool.lock().expect("mempool lock").is_empty();
        if view != self.watch.view {
            if self.watch.timed_out && !self.watch.idle_timeout {
                info!(from = %self.watch.view, to = %view, peers, quorum, "view change after a timeout");
            } else {
                debug!(from = %self.watch.view, to = %view, "view change");
            }
            self.metrics.view.set(view.0 as i64);
            self.metrics.view_changed();
            self.watch.view = view;
            self.watch.timed_out = false;
        }
        if timed_out && !self.watch.timed_out && idle {
            self.watch.timed_out = true;
            self.watch.idle_timeout = true;
            self.metrics.idle_views.inc();
            debug!(view = %view, leader = %self.engine.leader(view), "idle view timed out (no transaction waiting)");
        } else if timed_out && !self.watch.timed_out {
            self.watch.timed_out = true;
            self.watch.idle_timeout = false;
            self.metrics.view_timeouts.inc();
            if now >= self.watch.last_timeout_log_ms + TIMEOUT_LOG_INTERVAL_MS {
                warn!(
                    epoch = %epoch,
                    view = %view,
                    leader = %self.engine.leader(view),
                    peers,
                    quorum,
                    voting = self.engine.is_voting(),
                    timeouts_not_logged = self.watch.timeouts_not_logged,
                    "view timed out without a notarized block"
                );
                self.watch.last_timeout_log_ms = now;
                self.watch.timeouts_not_logged = 0;
            } else {
                self.watch.timeouts_not_logged += 1;
            }
        }
        if sync.syncing != self.watch.syncing {
            if sync.syncing {
                info!(height = %sync.tip_height, best_known = %sync.best_known_height, current_peers = sync.current_peers, "syncing: behind the chain or not enough validators heard; refusing submissions");
            } else {
                info!(height = %sync.tip_height, "in sync with the chain; accepting submissions");
            }
            self.watch.syncing = sync.syncing;
        }
        // An idle chain finalizes a heartbeat every idle block interval: only a longer
        // silence, or any while transactions wait, is a stall.
        let stall_after_ms = if idle {
            STALL_LOG_INTERVAL_MS.max(3 * self.idle_block_interval_ms)
        } else {
            STALL_LOG_INTERVAL_MS
        };
        if now
            >= self
                .watch
                .last_finalized_ms
                .max(self.watch.last_stall_log_ms)
                + stall_after_ms
        {
            warn!(
                height = %sync.tip_height,
                view = %view,
                stalled_s = (now - self.watch.last_finalized_ms) / 1000,
                peers,
                quorum,
                syncing = sync.syncing,
                "no block finalized lately: fewer than a quorum of validators may be reachable"
            );
            self.watch.last_stall_log_ms = now;
        }
        let caught_up =
            self.watch
                .catch_up
                .observe(now, sync.tip_height.0, sync.best_known_height.0);
        if let Some(done) = caught_up.filter(|done| done.blocks > 0) {
            info!(
                height = %sync.tip_height,
                blocks = done.blocks,
                seconds = done.elapsed_ms / 1000,
                blocks_per_second = format!("{:.0}", done.blocks_per_second()),
                "caught up with the chain"
            );
        }
        let catch_up = self.watch.catch_up.progress();
        if let Some(progress) = &catch_up {
            if now >= self.watch.last_catch_up_log_ms + CATCH_UP_LOG_INTERVAL_MS {
                info!(
                    height = progress.height,
                    target = progress.target,
                    remaining = progress.remaining,
                    blocks_per_second = progress
                        .blocks_per_second
                        .map_or("-".to_string(), |rate| format!("{rate:.0}")),
                    eta_seconds = progress
                        .eta_seconds
                        .map_or("-".to_string(), |eta| eta.to_string()),
                    "catching up"
                );
                self.watch.last_catch_up_log_ms = now;
            }
        }
        self.metrics.syncing.set(i64::from(sync.syncing));
        self.metrics.behind_blocks.set(sync.behind_by() as i64);
        self.metrics.catch_up_blocks_per_second.set(
            catch_up
                .as_ref()
                .and_then(|progress| progress.blocks_per_second)
                .unwrap_or(0.0),
        );
        let fenced = self.engine.is_fenced();
        self.status.send_if_modified(|status| {
            let changed = status.fenced != fenced
                || status.syncing != sync.syncing
                || status.best_known_height != sync.best_known_height.0
                || status.view != view.0
                || status.catch_up != catch_up;
            status.fenced = fenced;
            status.syncing = sync.syncing;
            status.best_known_height = sync.best_known_height.0;
            status.behind_by = sync.behind_by();
            status.view = view.0;
            status.catch_up = catch_up;
            changed
        });
    }

    fn handle_outputs(&mut self, outputs: Vec<Output>) -> anyhow::Result<()> {
        for output in outputs {
            if !matches!(output, Output::Finalized(_)) {
                // Nothing is sent, signed, persisted or started on top of a commit
                // that is not durable yet: only a run of finalizations shares a flush.
                self.flush_caught_up();
            }
            match output {
                Output::Broadcast(message) => self.publish(message),
                Output::Send { to, message } => self.send_direct(to, message),
                Output::Persist {
                    sequence,
                    record,
                    block,
                    certificate,
                } => {
                    self.persist(&record, block.as_deref(), certificate.as_ref())?;
                    self.inputs.push_back(Input::Persisted { sequence });
                }
                Output::SetTimer { deadline_ms } => self.timer_ms = Some(deadline_ms),
                Output::BuildProposal {
                    epoch,
                    view,
                    height: _,
                    parent,
                    ancestors,
                } => {
                    let now = now_ms();
                    let gather_until_ms = PendingBuild::gather_until(
                        now,
                        self.pipeline.parent_timestamp(&parent),
                        self.min_block_interval_ms,
                    );
                    self.pending_build = Some(PendingBuild {
                        epoch,
                        view,
                        parent,
                        ancestors,
                        due_ms: now + self.empty_block_delay_ms,
                        gather_until_ms,
                    });
                    self.try_build()?;
                }
                Output::VerifyProposal {
                    view,
                    block,
                    ancestors,
                } => {
                    let valid = self.verify(&block, &ancestors);
                    self.inputs.push_back(Input::ProposalVerified {
                        view,
                        block: block.hash(),
                        valid,
                    });
                }
                Output::Finalized(finalized) => self.on_finalized(finalized)?,
                Output::EpochEnded { epoch, last_height } => {
                    self.start_next_epoch(epoch, last_height)?;
                    // The spent engine's remaining outputs are moot (E5).
                    return Ok(());
                }
                Output::Evidence(evidence) => self.on_evidence(evidence),
                Output::Fetch(request) => self.fetch(request),
            }
        }
        Ok(())
    }

    /// Gossips one consensus message: queued to the network's event loop in order,
    /// without waiting (the loop logs a publish that fails).
    fn publish(&self, message: ConsensusMessage) {
        self.metrics.consensus_message("sent", &message);
        let queued = self
            .network
            .publish_detached(Topic::Consensus, message.encode());
        self.outbound_refused(queued, None);
    }

    /// Sends one consensus message to one validator over the direct protocol (never
    /// gossip, which would drop a repeated message: R9, R13), queued as
    /// [`Core::publish`] queues.
    fn send_direct(&self, to: MemberId, message: ConsensusMessage) {
        self.metrics.consensus_message("sent", &message);
        let queued = self.network.send_detached(to, message.encode());
        self.outbound_refused(queued, Some(to));
    }

    /// Counts and logs a consensus message the network's command queue refused.
    fn outbound_refused(&self, queued: Result<(), NetworkError>, to: Option<MemberId>) {
        match queued {
            Ok(()) => {}
            Err(error @ NetworkError::Busy { .. }) => {
                self.metrics.consensus_outbound_full.inc();
                warn!(%error, peer = ?to, "consensus message not sent: the network's queue is full");
            }
            Err(error) => debug!(%error, peer = ?to, "consensus message not sent"),
        }
    }

    /// Writes kept blocks and certificates (sled, flushed), then the signing record
    /// (fsynced file), before the engine may release what it signed.
    fn persist(
        &self,
        record: &PersistedRecord,
        block: Option<&Block>,
        certificate: Option<&QuorumCertificate>,
    ) -> anyhow::Result<()> {
        let mut records = Vec::new();
        if let Some(block) = block {
            records.push((kept_block_key(block), Some(codec::encode(block))));
        }
        if let Some(certificate) = certificate {
            records.push((
                kept_certificate_key(certificate),
                Some(codec::encode(certificate)),
            ));
        }
        if !records.is_empty() {
            self.pipeline.db().put_records(records);
        }
        self.record_file
            .store(&record.encode())
            .context("persisting the consensus record")
    }

    /// Stages the unfinalized ancestors this node has not executed yet.
    fn ensure_ancestors(&mut self, ancestors: &[Block]) -> bool {
        for ancestor in ancestors {
            let hash = ancestor.hash();
            if hash == self.pipeline.tip().hash || self.pipeline.staged(&hash).is_some() {
                continue;
            }
            let mempool = self.mempool.clone();
            let checked = |id: &Hash| mempool.lock().expect("mempool lock").contains(id);
            if let Err(error) =
                self.pipeline
                    .verify(ancestor, u64::MAX - MAX_CLOCK_SKEW_MS, checked)
            {
                warn!(%error, height = %ancestor.header.height, "cannot execute an ancestor");
                return false;
            }
        }
        true
    }

    fn verify(&mut self, block: &Block, ancestors: &[Block]) -> bool {
        if !self.ensure_ancestors(ancestors) {
            return false;
        }
        let mempool = self.mempool.clone();
        let checked = |id: &Hash| mempool.lock().expect("mempool lock").contains(id);
        match self.pipeline.verify(block, now_ms(), checked) {
            Ok(()) => true,
            Err(error) => {
                warn!(%error, height = %block.header.height, view = %block.header.view, "proposal refused");
                self.metrics.proposals_rejected.inc();
                false
            }
        }
    }

    /// Builds the pending proposal once there are transactions or its delay is over.
    fn try_build(&mut self) -> anyhow::Result<()> {
        let Some(mut pending) = self.pending_build.take() else {
            return Ok(());
        };
        if pending.view < self.engine.view() || self.engine.timed_out() {
            // The view this proposal was for is over (an idle leader held it until it
            // timed out); the engine asks again when this node leads.
            return Ok(());
        }
        let waiting = self.mempool.lock().expect("mempool lock").len();
        if !pending.ready(now_ms(), waiting) {
            self.pending_build = Some(pending);
            return Ok(());
        }
        if !self.ensure_ancestors(&pending.ancestors) {
            return Ok(());
        }
        let (epoch, view, parent) = (pending.epoch, pending.view, pending.parent);
        let Some(view_at_parent) = self.pipeline.view_at(&parent) else {
            warn!(view = %view, "the proposal's parent is not executed here");
            return Ok(());
        };
        let next_nonce = |member, lane| {
            Nonce(
                seisan_contracts::query::last_nonce(&view_at_parent, member, lane)
                    .map_or(1, |nonce| nonce.0 + 1),
            )
        };
        let transactions = self.mempool.lock().expect("mempool lock").select(
            MAX_PROPOSAL_TXS,
            MAX_PROPOSAL_TX_BYTES,
            next_nonce,
        );
        match self
            .pipeline
            .build(view, parent, self.member, now_ms(), transactions)
        {
            Ok(block) if block.header.epoch != epoch => {
                // The state says another epoch votes on this height than the engine
                // runs: the engine would refuse the block (E1), so do not offer it.
                warn!(view = %view, engine_epoch = %epoch, state_epoch = %block.header.epoch, "proposal not built: the state and the engine disagree on the epoch");
            }
            Ok(block) => {
                let hash = block.hash();
                match self.pipeline.executed(&hash) {
                    Ok(Some(executed)) => {
                        let Some(purpose) =
                            super::idle::purpose(&block, executed, self.idle_block_interval_ms)
                        else {
                            // An empty block that would do nothing: hold the view and
                            // look again after the delay, or at once when a transaction
                            // arrives.
                            self.pipeline.discard(&hash);
                            pending.due_ms = now_ms()
                                + self.empty_block_delay_ms.max(super::idle::MIN_RECHECK_MS);
                            self.pending_build = Some(pending);
                            return Ok(());
                        };
                        debug!(view = %view, height = %block.header.height, txs = block.txs.len(), purpose = purpose.label(), "proposal built");
                        self.metrics.proposal_purpose(purpose);
                    }
                    // Built and staged a moment ago on this thread, so neither arm is
                    // expected; a block whose purpose is unknown is proposed (a leader
                    // that proposes too much costs a block, one that holds costs a view).
                    Ok(None) => {
                        warn!(view = %view, "a block just built is not staged; proposing it")
                    }
                    Err(error) => {
                        warn!(%error, view = %view, "cannot read what a block just built did; proposing it")
                    }
                }
                self.inputs.push_back(Input::ProposalBuilt { view, block });
            }
            Err(error) => warn!(%error, view = %view, "could not build a proposal"),
        }
        Ok(())
    }

    fn on_finalized(&mut self, finalized: FinalizedBlock) -> anyhow::Result<()> {
        let FinalizedBlock {
            block,
            certificate,
            seals,
        } = finalized;
        let height = block.header.height;
        let mut prune = self.prunable_records(height, block.header.view);
        if !seals.is_empty() {
            // E4: the seals that link an epoch's last block to its certificate are kept
            // with it, so this node can prove the block to a peer catching up.
            prune.push(super::pipeline::seals_record(height, &seals));
        }
        // The first block of a new business day: the state at the tip is the ended day's
        // last, and only now can it be proven (no value history is kept); its snapshot
        // commits atomically with the block.
        let day_end = super::compliance::day_end_record(
            self.pipeline.db(),
            &self.genesis,
            self.day_cutoff,
            self.pipeline.tip(),
            block.header.timestamp_ms,
        );
        let day_end_height = day_end.as_ref().map(|_| self.pipeline.tip().height);
        prune.extend(day_end);
        let commit_started = std::time::Instant::now();
        // Catching up, a run of finalized blocks (a fetched batch) shares one fsync,
        // taken before any other output and at the end of the loop's turn
        // (`flush_caught_up`); at the tip each block is durable before anything is
        // said about it.
        let group = self.watch.syncing;
        let outcome = {
            let _guard = self.commit_lock.write().expect("commit lock");
            let committed = if group {
                self.pipeline.commit_unflushed(&block, &certificate, prune)
            } else {
                self.pipeline.commit(&block, &certificate, prune)
            };
            committed.with_context(|| {
                format!("a quorum finalized block {height} but this node cannot execute it")
            })?
        };
        self.unflushed |= group;
        let tip = self.pipeline.tip();
        if let Some(day_height) = day_end_height {
            self.metrics
                .compliance_last_day_height
                .set(day_height.0 as i64);
        }
        self.mempool
            .lock()
            .expect("mempool lock")
            .remove_committed(&Pipeline::<SledBackend>::nonces(&block));
        self.metrics.height.set(height.0 as i64);
        self.metrics.view.set(self.engine.view().0 as i64);
        self.metrics.blocks_finalized.inc();
        self.metrics.block_committed(
            codec::encode(&block).len(),
            block.txs.len(),
            commit_started.elapsed().as_secs_f64(),
        );
        self.metrics
            .transactions_finalized
            .inc_by(block.txs.len() as u64);
        let latency_ms = now_ms().saturating_sub(block.header.timestamp_ms);
        self.metrics
            .finalization_latency_seconds
            .observe(latency_ms as f64 / 1000.0);
        self.watch.last_finalized_ms = now_ms();
        info!(height = %height, view = %block.header.view, txs = block.txs.len(), root = %tip.state_root, "block finalized");
        if !self.unflushed {
            self.publish_tip();
        }
        if self.events.receiver_count() == 0 {
            // Nobody follows the event stream: skip rendering every receipt as JSON.
            return Ok(());
        }
        let message = seisan_api::v1::BlockEvent {
            height,
            hash: tip.hash,
            view: block.header.view,
            timestamp_ms: block.header.timestamp_ms,
            state_root: tip.state_root,
            receipts: outcome.receipts.clone(),
            events: outcome.events.clone(),
        };
        let message = serde_json::to_string(&message).expect("a block event serializes");
        let _ = self.events.send(Arc::new(message));
        Ok(())
    }

    /// Tells `/v1/status` (and whoever watches it, the journal among them) the
    /// committed tip: only once it is durable.
    fn publish_tip(&self) {
        let tip = self.pipeline.tip();
        self.status.send_modify(|status| {
            status.height = tip.height.0;
            status.view = self.engine.view().0;
            status.last_finalized_hash = tip.hash.to_hex();
            status.state_root = tip.state_root.to_hex();
        });
    }

    /// Makes the blocks committed since the last flush (a run of finalizations while
    /// catching up) durable with one fsync, then publishes the tip.
    fn flush_caught_up(&mut self) {
        if !self.unflushed {
            return;
        }
        self.pipeline.db().flush();
        self.unflushed = false;
        self.publish_tip();
    }

    /// E5: the block at the epoch's last height is committed; start the engine of the
    /// next epoch on it, with the validator set its state holds, and let the network's
    /// allow-list follow the new membership (members added, removed or re-keyed).
    fn start_next_epoch(&mut self, ended: Epoch, last_height: Height) -> anyhow::Result<()> {
        let tip = self.pipeline.tip();
        anyhow::ensure!(
            tip.height == last_height,
            "epoch {ended} ended at height {last_height} but the committed tip is {}",
            tip.height
        );
        let db = self.pipeline.db().clone();
        let membership = seisan_contracts::governance::membership(&db.committed_view());
        anyhow::ensure!(
            membership.epoch > ended,
            "epoch {ended} ended at height {last_height}, but the state after it is still in epoch {} (the contracts and consensus disagree on the epoch's end)",
            membership.epoch
        );
        let identity = Identity::of(&membership, &self.keypair);
        // Nothing of the spent engine's is still due: its persist acknowledgements,
        // build and verification answers and timers belong to views of the old epoch.
        self.inputs
            .retain(|input| matches!(input, Input::Message { .. } | Input::Fetched { .. }));
        self.pending_build = None;
        self.timer_ms = None;
        let old_certificates: Vec<(Vec<u8>, Option<Vec<u8>>)> = db
            .records(KEPT_CERTIFICATE_PREFIX, None, MAX_PRUNE_PER_COMMIT)
            .into_iter()
            .map(|(key, _)| (key, None))
            .collect();
        db.put_records(old_certificates);
        self.engine = engine_at_tip(
            &self.pipeline,
            &self.genesis,
            identity.member,
            &self.keypair,
            Restored {
                fenced: self.fence_marker.is_some(),
                ..Restored::default()
            },
        )?;
        self.member = identity.member;
        let set = self.engine.validator_set().clone();
        // Kept so this node can show a client, from genesis on, which validators
        // certified each epoch (the link GET /v1/members/{m}/balances?proof=true serves).
        db.put_records(vec![super::pipeline::epoch_record(&set, last_height)]);
        info!(
            epoch = %set.epoch,
            first_height = %last_height.next(),
            validators = ?set.members(),
            quorum = set.quorum,
            voting = self.engine.is_voting(),
            "epoch started"
        );
        self.metrics.epoch.set(set.epoch.0 as i64);
        self.metrics.validators.set(set.validators.len() as i64);
        self.metrics.quorum.set(i64::from(set.quorum));
        self.status.send_modify(|status| {
            show_epoch(status, &self.engine, &membership);
            status.member = identity.member.0;
            status.member_name = identity.name.clone();
        });
        self.inputs.push_back(Input::Start);
        for peer in self.peers.iter().copied() {
            self.inputs.push_back(Input::PeerConnected { peer });
        }
        let members = peer_members(&membership, &set, &self.keypair.public_key());
        let network = self.network.clone();
        tokio::spawn(async move {
            match network.set_members(members).await {
                Ok(change) if !change.is_empty() => info!(
                    added = ?change.added,
                    removed = ?change.removed,
                    rekeyed = ?change.rekeyed,
                    "network allow-list follows the new membership"
                ),
                Ok(_) => {}
                Err(error) => error!(%error, "the network refused the new membership"),
            }
        });
        Ok(())
    }

    /// Kept blocks and certificates that the new finalized tip makes useless.
    fn prunable_records(&self, height: Height, view: View) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let db = self.pipeline.db();
        let mut prune: Vec<(Vec<u8>, Option<Vec<u8>>)> = db
            .records(KEPT_BLOCK_PREFIX, None, MAX_PRUNE_PER_COMMIT)
            .into_iter()
            .filter(|(key, _)| {
                let stored = u64::from_be_bytes(
                    key[KEPT_BLOCK_PREFIX.len()..KEPT_BLOCK_PREFIX.len() + 8]
                        .try_into()
                        .expect("8 bytes"),
                );
                stored <= height.0
            })
            .map(|(key, _)| (key, None))
            .collect();
        prune.extend(
            db.records(KEPT_CERTIFICATE_PREFIX, None, MAX_PRUNE_PER_COMMIT)
                .into_iter()
                .filter(|(key, _)| {
                    let stored = u64::from_be_bytes(
                        key[KEPT_CERTIFICATE_PREFIX.len()..KEPT_CERTIFICATE_PREFIX.len() + 8]
                            .try_into()
                            .expect("8 bytes"),
                    );
                    stored < view.0
                })
                .map(|(key, _)| (key, None)),
        );
        prune
    }

    fn on_evidence(&self, evidence: ConsensusEvidence) {
        warn!(member = %evidence.member(), view = %evidence.view(), kind = ?evidence.kind(), "evidence of misbehaviour");
        self.metrics
            .evidence
            .get_or_create(&super::metrics::Kind {
                kind: super::metrics::evidence_kind(evidence.kind()),
            })
            .inc();
        let mut key = EVIDENCE_PREFIX.to_vec();
        // Views restart in every epoch (E1), so the epoch leads the key.
        key.extend_from_slice(&self.engine.validator_set().epoch.0.to_be_bytes());
        key.extend_from_slice(&evidence.view().0.to_be_bytes());
        key.extend_from_slice(&evidence.member().0.to_be_bytes());
        key.push(evidence.kind() as u8);
        self.pipeline
            .db()
            .put_records(vec![(key, Some(codec::encode(&evidence)))]);
    }

    /// Asks a connected peer (rotating) for blocks.
    fn fetch(&mut self, request: FetchRequest) {
        let peers: Vec<MemberId> = self.peers.iter().copied().collect();
        if peers.is_empty() {
            return;
        }
        self.fetch_cursor = self.fetch_cursor.wrapping_add(1);
        let peer = peers[self.fetch_cursor % peers.len()];
        let network = self.network.clone();
        let results = self.fetch_results.clone();
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            match network.request(peer, request.encode()).await {
                Ok(bytes) => match FetchResponse::decode(&bytes) {
                    Ok(response) => {
                        metrics.blocks_synced.inc_by(response.blocks.len() as u64);
                        let _ = results.send((peer, response)).await;
                    }
                    Err(error) => warn!(%error, peer = %peer, "malformed fetch response"),
                },
                Err(error) => debug!(%error, peer = %peer, "fetch failed"),
            }
        });
    }

    async fn on_network(&mut self, event: NetworkEvent) {
        match event {
            NetworkEvent::Gossip(message) => self.on_gossip(message).await,
            NetworkEvent::Request(request) => self.on_request(request).await,
            NetworkEvent::Direct(message) => self.on_direct(message),
            NetworkEvent::PeerConnected { member } => {
                self.peers.insert(member);
                self.peers_changed();
                self.inputs.push_back(Input::PeerConnected { peer: member });
            }
            NetworkEvent::PeerDisconnected { member } => {
                self.peers.remove(&member);
                self.peers_changed();
                self.inputs
                    .push_back(Input::PeerDisconnected { peer: member });
            }
        }
    }

    fn peers_changed(&self) {
        self.metrics.peers_connected.set(self.peers.len() as i64);
        let membership =
            seisan_contracts::governance::membership(&self.pipeline.db().committed_view());
        let names: Vec<String> = self
            .peers
            .iter()
            .filter_map(|member| membership.member(*member))
            .map(|entry| entry.member.name.clone())
            .collect();
        self.status.send_modify(|status| status.peers = names);
    }

    /// A consensus message one validator sent this node alone; the engine verifies
    /// every certificate and vote in it, as it does for gossip.
    fn on_direct(&mut self, message: DirectMessage) {
        let DirectMessage { from, payload } = message;
        match ConsensusMessage::decode(&payload) {
            Ok(decoded) => {
                self.metrics.consensus_message("received", &decoded);
                self.inputs.push_back(Input::Message {
                    from,
                    message: decoded,
                })
            }
            Err(error) => debug!(%error, peer = %from, "malformed direct consensus message"),
        }
    }

    async fn on_gossip(&mut self, message: GossipMessage) {
        let GossipMessage {
            topic,
            payload,
            from,
            message_id,
        } = message;
        let verdict = match topic {
            Topic::Consensus => match ConsensusMessage::decode(&payload) {
                Ok(decoded) => {
                    self.metrics.consensus_message("received", &decoded);
                    let verdict = validate_consensus(&self.engine, &decoded);
                    if verdict == Validation::Accept {
                        self.inputs.push_back(Input::Message {
                            from,
                            message: decoded,
                        });
                    }
                    verdict
                }
                Err(_) => Validation::Reject,
            },
            // Decoded, admitted and reported by the admission task; this loop goes on.
            Topic::Transactions => {
                let offered = self
                    .gossip_admission
                    .offer(super::gossip_admission::Gossiped {
                        message_id,
                        from,
                        payload,
                    });
                match offered {
                    Ok(()) => return,
                    Err(_) => {
                        self.metrics.gossip_admission_full.inc();
                        debug!(from = %from, "gossip admission queue full; message ignored");
                        Validation::Ignore
                    }
                }
            }
        };
        if let Err(error) = self
            .network
            .report_validation(message_id, from, verdict)
            .await
        {
            debug!(%error, "validation report not delivered");
        }
    }

    async fn on_request(&mut self, request: InboundRequest) {
        if let Some(decoded) = super::snapshot::SnapshotRequest::decode(&request.payload) {
            let answer = match decoded {
                Ok(asked) => self.snapshots.answer(&asked, self.pipeline.db()),
                Err(error) => {
                    warn!(%error, from = %request.from, "malformed snapshot request");
                    super::snapshot::SnapshotAnswer::Unavailable(format!(
                        "malformed snapshot request: {error}"
                    ))
                }
            };
            // A chunk is about a megabyte: encoded and sent off the core loop.
            let network = self.network.clone();
            tokio::spawn(async move {
                if let Err(error) = network.respond(request.id, codec::encode(&answer)).await {
                    debug!(%error, "snapshot answer not sent");
                }
            });
            return;
        }
        let response = match FetchRequest::decode(&request.payload) {
            Ok(fetch) => answer_fetch(&fetch, &StoreReader(self.pipeline.db()), Some(&self.engine)),
            Err(error) => {
                warn!(%error, from = %request.from, "malformed fetch request");
                FetchResponse::default()
            }
        };
        if let Err(error) = self.network.respond(request.id, response.encode()).await {
            debug!(%error, "fetch response not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(due_ms: u64, gather_until_ms: u64) -> PendingBuild {
        PendingBuild {
            epoch: Epoch(0),
            view: View(1),
            parent: Hash([0; 32]),
            ancestors: Vec::new(),
            due_ms,
            gather_until_ms,
        }
    }

    #[test]
    fn a_leader_gathers_transactions_until_the_interval_is_over_unless_the_block_is_full() {
        let pending = pending(1_500, 1_100);
        // Transactions wait: held until the gathering time, then built.
        assert!(!pending.ready(1_050, 10));
        assert_eq!(pending.wake_ms(10), 1_100);
        assert!(pending.ready(1_100, 10));
        // A full block's worth is built at once.
        assert!(pending.ready(1_050, MAX_PROPOSAL_TXS));
        // Nothing waits: only the empty-block delay counts, not the gathering time.
        assert!(!pending.ready(1_200, 0));
        assert_eq!(pending.wake_ms(0), 1_500);
        assert!(pending.ready(1_500, 0));
    }

    #[test]
    fn gathering_counts_from_the_parent_block_and_never_past_one_interval_from_now() {
        // A busy chain: the parent was built 30 ms ago, so 70 ms more.
        assert_eq!(
            PendingBuild::gather_until(10_030, Some(10_000), 100),
            10_100
        );
        // A quiet chain: the parent is older than the interval, so at once.
        assert!(pending(
            20_000,
            PendingBuild::gather_until(15_000, Some(10_000), 100)
        )
        .ready(15_000, 1));
        // A parent stamped ahead of this node's clock holds at most one interval.
        assert_eq!(
            PendingBuild::gather_until(10_000, Some(10_400), 100),
            10_100
        );
        // Unknown parent: at once; 0 turns gathering off.
        assert_eq!(PendingBuild::gather_until(10_000, None, 100), 10_000);
        assert_eq!(PendingBuild::gather_until(10_030, Some(10_000), 0), 10_000);
    }
}
