//! Prometheus metrics an operator watches (`GET /metrics`, OpenMetrics text).
//!
//! Consensus: height, view, epoch, validators and quorum, view and round durations,
//! consensus messages (votes, proposals, certificates) sent and received, proposals
//! refused, view timeouts, evidence of misbehaviour. Execution: block size and
//! transactions, commit time, finalization latency, store size. Admission: mempool
//! depth and bytes, transactions admitted, refused transactions by reason. Watchers
//! (read from their status channels at scrape time): the custody watcher's scanned
//! public-chain block, error and waiting withdrawals; the bank watcher's attestation
//! backlog and error; settlements awaiting their bank mirror; open top-ups; per asset,
//! reserves coverage and the hot wallet's share against its cap, with the public
//! chain's head (set by [`super::reserves_probe`]). The process
//! itself under the standard `process_*` names (prometheus-client has no process
//! collector: read from `/proc/self`).
//!
//! `deploy/prometheus/alerts.yml` and `deploy/grafana/seisan.json` use these names;
//! `scripts/promtool.sh` checks both against a live node's `/metrics`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use seisan_consensus::ConsensusMessage;
use seisan_state::Backend;
use seisan_types::state::StateView;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Instant;

/// A label naming why something happened (a refusal code, a message or evidence kind):
/// always one of a fixed set of `&'static str`, so the label set stays bounded.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

/// A consensus message's kind and whether this node sent or received it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    pub direction: &'static str,
    pub kind: &'static str,
}

/// A kind (of evidence, of bank attestation), from a fixed set of `&'static str`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    pub kind: &'static str,
}

/// A custody asset, by its symbol in genesis (a bounded set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Asset {
    pub asset: String,
}

/// A compliance rule and what it is about (an asset symbol or a currency, never a
/// member: `/metrics` is public): bounded by the genesis assets.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Breach {
    pub rule: &'static str,
    pub subject: String,
}

/// A gauge holding a ratio.
pub type Ratio = Gauge<f64, AtomicU64>;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub height: Gauge,
    pub view: Gauge,
    pub mempool_depth: Gauge,
    /// Encoded bytes of the transactions in the mempool.
    pub mempool_bytes: Gauge,
    pub peers_connected: Gauge,
    pub blocks_synced: Counter,
    pub blocks_finalized: Counter,
    pub transactions_admitted: Counter,
    pub transactions_finalized: Counter,
    /// Transactions the API refused, by their error code.
    pub transactions_rejected: Family<Reason, Counter>,
    /// Seconds from a block's proposal timestamp to its commit on this node.
    pub finalization_latency_seconds: Histogram,
    /// 1 while public-chain custody (hot + cold) is below the ledger's liabilities for
    /// some asset: an error state.
    pub custody_undercovered: Gauge,
    /// 1 while the node is behind the chain or cannot tell (see `/v1/status`).
    pub syncing: Gauge,
    /// The validator-set epoch this node's consensus runs (consensus rule E1).
    pub epoch: Gauge,
    /// Validators of that epoch, and the votes a certificate needs.
    pub validators: Gauge,
    pub quorum: Gauge,
    /// Finalized blocks this node knows it lacks.
    pub behind_blocks: Gauge,
    /// While catching up, blocks committed per second over the last 10 s (0 in step).
    pub catch_up_blocks_per_second: Ratio,
    /// Views whose timer fired on this node while transactions waited (each is
    /// nullified or was already).
    pub view_timeouts: Counter,
    /// Views whose timer fired with nothing waiting: an idle leader proposes no empty
    /// block without purpose ([`super::idle`]), so an idle chain's views end this way.
    pub idle_views: Counter,
    /// Gossiped transaction messages ignored because the admission queue was full
    /// ([`super::gossip_admission`]).
    pub gossip_admission_full: Counter,
    /// Consensus messages not sent because the network's command queue was full (the
    /// core loop queues them without waiting).
    pub consensus_outbound_full: Counter,
    /// Blocks this node proposed, by why ([`super::idle::Purpose`]).
    pub proposals: Family<Kind, Counter>,
    /// Seconds each view lasted on this node (from entering it to entering the next).
    pub view_duration_seconds: Histogram,
    /// Seconds between consecutive heights committed on this node.
    pub round_duration_seconds: Histogram,
    /// Seconds to execute, store and index one finalized block.
    pub commit_seconds: Histogram,
    /// Encoded bytes and transactions of each committed block.
    pub block_size_bytes: Histogram,
    pub block_transactions: Histogram,
    /// Unix seconds when this node last committed a block.
    pub last_commit_timestamp_seconds: Gauge,
    /// Consensus messages by direction and kind (votes, proposals, certificates,
    /// status).
    pub consensus_messages: Family<MessageLabels, Counter>,
    /// Proposals this node refused to vote for (invalid, or unexecutable here).
    pub proposals_rejected: Counter,
    /// Evidence of misbehaviour this node recorded, by kind.
    pub evidence: Family<Kind, Counter>,
    /// Settlements whose bank transfer is not confirmed on chain, within the bound.
    pub mirror_pending: Gauge,
    /// Settlements whose bank transfer is unconfirmed past the bound (see
    /// `seisan_contracts::mirror::MIRROR_CONFIRM_BOUND_MS`).
    pub mirror_stalled: Gauge,
    /// Bytes the node's store takes on disk.
    pub store_size_bytes: Gauge,
    /// Open top-up requests on the ledger (all members).
    pub open_top_ups: Gauge,
    /// The last public-chain block the custody watcher scanned (absent: never).
    pub custody_scanned_block: Gauge,
    /// 1 while the custody watcher's last pass failed.
    pub custody_watcher_error: Gauge,
    /// Withdrawals the hot wallet cannot cover right now.
    pub custody_waiting_for_hot_wallet: Gauge,
    /// Bank attestations admitted and not on the ledger yet, by kind.
    pub bank_attestations_pending: Family<Kind, Gauge>,
    /// 1 while the bank watcher's last pass failed.
    pub bank_watcher_error: Gauge,
    /// The public chain's head as the reserves probe last read it
    /// ([`super::reserves_probe`]); with `custody_scanned_block`, the watcher's lag.
    pub custody_chain_head_block: Gauge,
    /// Per asset: (hot + cold) / liabilities, hot / (hot + cold), and the hot cap.
    pub reserves_coverage_ratio: Family<Asset, Ratio>,
    pub reserves_hot_share_ratio: Family<Asset, Ratio>,
    pub reserves_hot_cap_ratio: Family<Asset, Ratio>,
    /// Reserves probes that could not read the public chain.
    pub reserves_probe_failures: Counter,
    /// 1 per compliance rule and subject in breach now, 0 once cured
    /// ([`super::compliance`]).
    pub compliance_breach: Family<Breach, Gauge>,
    /// Compliance monitor passes that could not read the public chain or the bank.
    pub compliance_monitor_failures: Counter,
    /// The block height of the newest end-of-day snapshot this node recorded.
    pub compliance_last_day_height: Gauge,
    /// When the current view started, for `view_duration_seconds`.
    view_started: Mutex<Instant>,
    /// When this node last committed a block, for `round_duration_seconds`.
    last_commit: Mutex<Option<Instant>>,
}

fn gauge(registry: &mut Registry, name: &str, help: &str) -> Gauge {
    let gauge = Gauge::default();
    registry.register(name, help, gauge.clone());
    gauge
}

fn counter(registry: &mut Registry, name: &str, help: &str) -> Counter {
    let counter = Counter::default();
    registry.register(name, help, counter.clone());
    counter
}

fn histogram(
    registry: &mut Registry,
    name: &str,
    help: &str,
    buckets: impl Iterator<Item = f64>,
) -> Histogram {
    let histogram = Histogram::new(buckets);
    registry.register(name, help, histogram.clone());
    histogram
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let registry = root.sub_registry_with_prefix("seisan");
        let height = gauge(registry, "height", "Last finalized height");
        let view = gauge(registry, "view", "Current consensus view");
        let mempool_depth = gauge(
            registry,
            "mempool_depth",
            "Transactions waiting in the mempool",
        );
        let mempool_bytes = gauge(
            registry,
            "mempool_bytes",
            "Encoded bytes of the transactions waiting in the mempool",
        );
        let peers_connected = gauge(registry, "peers_connected", "Validators connected");
        let blocks_synced = counter(
            registry,
            "blocks_synced",
            "Blocks fetched from peers during catch-up",
        );
        let blocks_finalized = counter(registry, "blocks_finalized", "Blocks committed");
        let transactions_admitted = counter(
            registry,
            "transactions_admitted",
            "Transactions admitted to the mempool",
        );
        let transactions_finalized = counter(
            registry,
            "transactions_finalized",
            "Transactions in committed blocks",
        );
        let transactions_rejected = Family::<Reason, Counter>::default();
        registry.register(
            "transactions_rejected",
            "Transactions the API refused, by error code",
            transactions_rejected.clone(),
        );
        let finalization_latency_seconds = histogram(
            registry,
            "finalization_latency_seconds",
            "Seconds from block proposal to commit on this node",
            exponential_buckets(0.005, 2.0, 14),
        );
        let custody_undercovered = gauge(
            registry,
            "custody_undercovered",
            "1 while custody is below the ledger's liabilities for some asset",
        );
        let syncing = gauge(
            registry,
            "syncing",
            "1 while this node is behind the chain or has not heard enough validators to know",
        );
        let epoch = gauge(
            registry,
            "epoch",
            "The validator-set epoch this node's consensus runs",
        );
        let validators = gauge(
            registry,
            "validators",
            "Validators of the epoch this node's consensus runs",
        );
        let quorum = gauge(
            registry,
            "quorum",
            "Votes a certificate needs in the epoch this node's consensus runs",
        );
        let behind_blocks = gauge(
            registry,
            "behind_blocks",
            "Finalized blocks this node knows it lacks",
        );
        let catch_up_blocks_per_second = Ratio::default();
        registry.register(
            "catch_up_blocks_per_second",
            "While this node is behind the chain, the finalized blocks it commits per second over the last 10 s (0 when in step)",
            catch_up_blocks_per_second.clone(),
        );
        let view_timeouts = counter(
            registry,
            "view_timeouts",
            "Consensus views whose timer fired on this node while transactions waited",
        );
        let idle_views = counter(
            registry,
            "idle_views",
            "Consensus views whose timer fired on this node with no transaction waiting (an idle chain proposes no empty block without purpose)",
        );
        let gossip_admission_full = counter(
            registry,
            "gossip_admission_full",
            "Gossiped transaction messages ignored because this node's admission queue was full (their origin node still holds them)",
        );
        let consensus_outbound_full = counter(
            registry,
            "consensus_outbound_full",
            "Consensus messages this node did not send because the network's command queue was full (views time out and messages are repeated, as after a lost message)",
        );
        let proposals = Family::<Kind, Counter>::default();
        registry.register(
            "proposals",
            "Blocks this node proposed, by purpose (transactions, time_driven_work, governance, heartbeat)",
            proposals.clone(),
        );
        let view_duration_seconds = histogram(
            registry,
            "view_duration_seconds",
            "Seconds each consensus view lasted on this node",
            exponential_buckets(0.01, 2.0, 16),
        );
        let round_duration_seconds = histogram(
            registry,
            "round_duration_seconds",
            "Seconds between consecutive heights committed on this node",
            exponential_buckets(0.01, 2.0, 16),
        );
        let commit_seconds = histogram(
            registry,
            "commit_seconds",
            "Seconds to execute, store and index one finalized block",
            exponential_buckets(0.0005, 2.0, 16),
        );
        let block_size_bytes = histogram(
            registry,
            "block_size_bytes",
            "Encoded bytes of each committed block",
            exponential_buckets(256.0, 4.0, 10),
        );
        let block_transactions = histogram(
            registry,
            "block_transactions",
            "Transactions in each committed block",
            exponential_buckets(1.0, 2.0, 14),
        );
        let last_commit_timestamp_seconds = gauge(
            registry,
            "last_commit_timestamp_seconds",
            "Unix time when this node last committed a block",
        );
        let consensus_messages = Family::<MessageLabels, Counter>::default();
        registry.register(
            "consensus_messages",
            "Consensus messages sent and received, by kind (vote, proposal, certificate, status)",
            consensus_messages.clone(),
        );
        let proposals_rejected = counter(
            registry,
            "proposals_rejected",
            "Proposals this node refused to vote for",
        );
        let evidence = Family::<Kind, Counter>::default();
        registry.register(
            "evidence",
            "Evidence of validator misbehaviour recorded by this node, by kind",
            evidence.clone(),
        );
        let mirror_pending = gauge(
            registry,
            "mirror_pending",
            "Settlements whose bank transfer is not yet confirmed on chain, within the bound",
        );
        let mirror_stalled = gauge(
            registry,
            "mirror_stalled",
            "Settlements whose bank transfer is not confirmed on chain within the bound (stalled)",
        );
        let store_size_bytes = gauge(
            registry,
            "store_size_bytes",
            "Bytes the node's store takes on disk",
        );
        let open_top_ups = gauge(
            registry,
            "open_top_ups",
            "Open top-up requests on the ledger",
        );
        let custody_scanned_block = gauge(
            registry,
            "custody_scanned_block",
            "Last public-chain block the custody watcher scanned",
        );
        let custody_watcher_error = gauge(
            registry,
            "custody_watcher_error",
            "1 while the custody watcher's last pass failed",
        );
        let custody_waiting_for_hot_wallet = gauge(
            registry,
            "custody_waiting_for_hot_wallet",
            "Withdrawals the hot wallet cannot cover right now",
        );
        let bank_attestations_pending = Family::<Kind, Gauge>::default();
        registry.register(
            "bank_attestations_pending",
            "Bank attestations admitted and not on the ledger yet, by kind",
            bank_attestations_pending.clone(),
        );
        let bank_watcher_error = gauge(
            registry,
            "bank_watcher_error",
            "1 while the bank watcher's last pass failed",
        );
        let custody_chain_head_block = gauge(
            registry,
            "custody_chain_head_block",
            "The public chain's head block as the reserves probe last read it",
        );
        let reserves_coverage_ratio = Family::<Asset, Ratio>::default();
        registry.register(
            "reserves_coverage_ratio",
            "Custody (hot + cold) over the ledger's liabilities, per asset (1 is 100%)",
            reserves_coverage_ratio.clone(),
        );
        let reserves_hot_share_ratio = Family::<Asset, Ratio>::default();
        registry.register(
            "reserves_hot_share_ratio",
            "The hot wallet's share of custody, per asset",
            reserves_hot_share_ratio.clone(),
        );
        let reserves_hot_cap_ratio = Family::<Asset, Ratio>::default();
        registry.register(
            "reserves_hot_cap_ratio",
            "The hot wallet's cap (governance), per asset",
            reserves_hot_cap_ratio.clone(),
        );
        let reserves_probe_failures = counter(
            registry,
            "reserves_probe_failures",
            "Reserves probes that could not read the public chain",
        );
        let compliance_breach = Family::<Breach, Gauge>::default();
        registry.register(
            "compliance_breach",
            "1 while a compliance rule is breached (cold_share: under 95% of customer crypto in cold wallets; reserves_coverage: custody under the ledger; trust_shortfall: an exchange's trust account under its customer fiat, per currency; which exchange is in the authenticated compliance report), per rule and subject",
            compliance_breach.clone(),
        );
        let compliance_monitor_failures = counter(
            registry,
            "compliance_monitor_failures",
            "Compliance monitor passes that could not read the public chain or the bank",
        );
        let compliance_last_day_height = gauge(
            registry,
            "compliance_last_day_height",
            "The block height of the newest end-of-day compliance snapshot",
        );
        Metrics {
            registry: root,
            compliance_breach,
            compliance_monitor_failures,
            compliance_last_day_height,
            custody_chain_head_block,
            reserves_coverage_ratio,
            reserves_hot_share_ratio,
            reserves_hot_cap_ratio,
            reserves_probe_failures,
            height,
            view,
            mempool_depth,
            mempool_bytes,
            peers_connected,
            blocks_synced,
            blocks_finalized,
            transactions_admitted,
            transactions_finalized,
            transactions_rejected,
            finalization_latency_seconds,
            custody_undercovered,
            syncing,
            epoch,
            validators,
            quorum,
            behind_blocks,
            catch_up_blocks_per_second,
            view_timeouts,
            gossip_admission_full,
            consensus_outbound_full,
            idle_views,
            proposals,
            view_duration_seconds,
            round_duration_seconds,
            commit_seconds,
            block_size_bytes,
            block_transactions,
            last_commit_timestamp_seconds,
            consensus_messages,
            proposals_rejected,
            evidence,
            mirror_pending,
            mirror_stalled,
            store_size_bytes,
            open_top_ups,
            custody_scanned_block,
            custody_watcher_error,
            custody_waiting_for_hot_wallet,
            bank_attestations_pending,
            bank_watcher_error,
            view_started: Mutex::new(Instant::now()),
            last_commit: Mutex::new(None),
        }
    }

    /// The node entered a new view: the last one's duration is observed.
    /// This node proposed a block, for `purpose`.
    pub fn proposal_purpose(&self, purpose: super::idle::Purpose) {
        self.proposals
            .get_or_create(&Kind {
                kind: purpose.label(),
            })
            .inc();
    }

    pub fn view_changed(&self) {
        let mut started = self.view_started.lock().expect("metrics lock");
        self.view_duration_seconds
            .observe(started.elapsed().as_secs_f64());
        *started = Instant::now();
    }

    /// A finalized block was committed: its size, transactions, commit time and the
    /// time since the previous commit.
    pub fn block_committed(&self, bytes: usize, transactions: usize, commit_seconds: f64) {
        self.block_size_bytes.observe(bytes as f64);
        self.block_transactions.observe(transactions as f64);
        self.commit_seconds.observe(commit_seconds);
        let mut last = self.last_commit.lock().expect("metrics lock");
        if let Some(previous) = *last {
            self.round_duration_seconds
                .observe(previous.elapsed().as_secs_f64());
        }
        *last = Some(Instant::now());
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        self.last_commit_timestamp_seconds.set(unix as i64);
    }

    /// Counts a consensus message sent or received.
    pub fn consensus_message(&self, direction: &'static str, message: &ConsensusMessage) {
        let kind = match message {
            ConsensusMessage::Proposal(_) => "proposal",
            ConsensusMessage::Vote(_) => "vote",
            ConsensusMessage::Certificate(_) => "certificate",
            ConsensusMessage::Status(_) => "status",
        };
        self.consensus_messages
            .get_or_create(&MessageLabels { direction, kind })
            .inc();
    }

    /// Counts a refused transaction under its error code.
    pub fn transaction_rejected(&self, reason: &'static str) {
        self.transactions_rejected
            .get_or_create(&Reason { reason })
            .inc();
    }

    /// Reads what is not pushed as it happens (mempool, store, ledger, watchers) and
    /// renders every metric.
    pub fn scrape(&self, context: &super::api::ApiContext) -> String {
        {
            let mempool = context.mempool.lock().expect("mempool lock");
            self.mempool_depth.set(mempool.len() as i64);
            self.mempool_bytes.set(mempool.bytes() as i64);
        }
        self.store_size_bytes
            .set(i64::try_from(context.db.backend().size_on_disk()).unwrap_or(i64::MAX));
        let open = context
            .db
            .committed_view()
            .scan(
                &[seisan_contracts::keys::OPEN_TOP_UP],
                None,
                MAX_COUNTED_TOP_UPS,
            )
            .len();
        self.open_top_ups.set(open as i64);
        {
            let custody = context.custody.borrow();
            if let Some(block) = custody.scanned_until {
                self.custody_scanned_block
                    .set(i64::try_from(block).unwrap_or(i64::MAX));
            }
            self.custody_watcher_error
                .set(i64::from(custody.last_error.is_some()));
            self.custody_waiting_for_hot_wallet
                .set(custody.waiting_for_hot_wallet.len() as i64);
        }
        {
            let bank = context.bank.borrow();
            self.bank_attestations_pending
                .get_or_create(&Kind { kind: "entry" })
                .set(bank.pending_entries as i64);
            self.bank_attestations_pending
                .get_or_create(&Kind { kind: "mirror" })
                .set(bank.pending_mirrors as i64);
            self.bank_watcher_error
                .set(i64::from(bank.last_error.is_some()));
        }
        self.render()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// The classic Prometheus text format (0.0.4) of an OpenMetrics document as
/// prometheus-client writes it: a counter family is named with its `_total` suffix,
/// and the `# UNIT` and `# EOF` lines are left out. Samples are the same lines.
pub fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|prefix| Some((prefix, line.strip_prefix(prefix)?)));
        match descriptor {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{prefix}{name}_total {tail}"));
                } else {
                    out.push_str(line);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The `kind` label of a piece of evidence.
pub fn evidence_kind(kind: seisan_consensus::EvidenceKind) -> &'static str {
    use seisan_consensus::EvidenceKind;
    match kind {
        EvidenceKind::Notarize => "notarize",
        EvidenceKind::Finalize => "finalize",
        EvidenceKind::Nullify => "nullify",
        EvidenceKind::FinalizeAndNullify => "finalize_and_nullify",
        EvidenceKind::Proposal => "proposal",
    }
}

/// Open top-ups counted per scrape at most: the gauge saturates there rather than let a
/// scrape walk an unbounded index.
const MAX_COUNTED_TOP_UPS: usize = 100_000;

/// The process's CPU, memory, file descriptors and start time under the standard
/// `process_*` names, read from `/proc/self` at each scrape (Linux; elsewhere the
/// family is left out).
#[derive(Debug)]
struct ProcessCollector;

/// Clock ticks per second of `/proc/self/stat` times: 100 on every Linux this runs on
/// (`USER_HZ` is fixed in the kernel ABI).
const TICKS_PER_SECOND: f64 = 100.0;

/// What `/proc/self` says about this process.
#[derive(Debug, PartialEq)]
struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    start_time_seconds: f64,
    threads: u64,
}

/// Parses `/proc/self/stat` (fields after the parenthesised command name, which may
/// hold spaces) with the boot time from `/proc/stat` and the page size.
fn parse_stat(stat: &str, boot_time_seconds: u64, page_size: u64) -> Option<ProcessStats> {
    let after_name = &stat[stat.rfind(')')? + 2..];
    // Field 3 (state) is the first after the name; numbering as in proc(5).
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |number: usize| -> Option<u64> { fields.get(number - 3)?.parse().ok() };
    let ticks = field(14)? + field(15)?;
    Some(ProcessStats {
        cpu_seconds: ticks as f64 / TICKS_PER_SECOND,
        threads: field(20)?,
        start_time_seconds: boot_time_seconds as f64 + field(22)? as f64 / TICKS_PER_SECOND,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_size,
    })
}

fn boot_time_seconds(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

/// The soft limit on open files from `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn read_process_stats() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot = boot_time_seconds(&std::fs::read_to_string("/proc/stat").ok()?)?;
    // The page size is 4 KiB on the x86-64 and arm64 Linux this ships for; the
    // resident size is cross-checked against /proc/self/status in the tests.
    parse_stat(&stat, boot, 4096)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stats) = read_process_stats() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(stats.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                stats.resident_bytes as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                stats.virtual_bytes as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds",
                stats.start_time_seconds,
            ),
            (
                "process_threads",
                "Threads of the process",
                stats.threads as f64,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            let gauge = ConstGauge::new(entries.count() as i64);
            gauge.encode(encoder.encode_descriptor(
                "process_open_fds",
                "Open file descriptors",
                None,
                gauge.metric_type(),
            )?)?;
        }
        if let Some(max) = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .as_deref()
            .and_then(max_open_files)
        {
            let gauge = ConstGauge::new(i64::try_from(max).unwrap_or(i64::MAX));
            gauge.encode(encoder.encode_descriptor(
                "process_max_fds",
                "The soft limit on open file descriptors",
                None,
                gauge.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_spaces_in_the_name() {
        // proc(5): pid (comm) state ppid ... utime(14) stime(15) ... num_threads(20)
        // itrealvalue(21) starttime(22) vsize(23) rss(24) ...
        let stat = "4242 (seisan node) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 7 0 5000 123456789 300 18446744073709551615";
        let stats = parse_stat(stat, 1_700_000_000, 4096).unwrap();
        assert_eq!(
            stats,
            ProcessStats {
                cpu_seconds: 4.0,
                resident_bytes: 300 * 4096,
                virtual_bytes: 123_456_789,
                start_time_seconds: 1_700_000_050.0,
                threads: 7,
            }
        );
        assert_eq!(parse_stat("garbage", 0, 4096), None);
        assert_eq!(
            boot_time_seconds("cpu 1 2 3\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
    }

    #[test]
    fn this_process_is_measured_as_proc_status_says() {
        let stats = read_process_stats().expect("/proc/self on Linux");
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let threads: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("Threads:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(stats.threads >= 1 && threads >= 1);
        // Resident memory from pages (stat) and from kB (status) agree within what
        // the process allocates between the two reads.
        let resident_kb: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .unwrap()
            .trim()
            .trim_end_matches(" kB")
            .trim()
            .parse()
            .unwrap();
        let from_stat_kb = stats.resident_bytes / 1024;
        assert!(
            from_stat_kb.abs_diff(resident_kb) < 16 * 1024,
            "stat {from_stat_kb} kB, status {resident_kb} kB"
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(stats.start_time_seconds <= now + 1.0);
        assert!(stats.start_time_seconds > now - 24.0 * 3600.0 * 365.0);
    }

    #[test]
    fn renders_every_family_with_its_labels() {
        let metrics = Metrics::new();
        metrics.transaction_rejected("nonce_gap");
        metrics.transaction_rejected("nonce_gap");
        metrics
            .evidence
            .get_or_create(&Kind { kind: "proposal" })
            .inc();
        metrics.view_changed();
        metrics.block_committed(1000, 3, 0.002);
        metrics.block_committed(2000, 0, 0.001);
        let text = metrics.render();
        for line in [
            "seisan_transactions_rejected_total{reason=\"nonce_gap\"} 2",
            "seisan_evidence_total{kind=\"proposal\"} 1",
            "seisan_view_duration_seconds_count 1",
            "seisan_round_duration_seconds_count 1",
            "seisan_block_size_bytes_sum 3000.0",
            "seisan_block_transactions_sum 3.0",
            "# TYPE process_cpu_seconds counter",
            "# TYPE process_resident_memory_bytes gauge",
            "# TYPE process_open_fds gauge",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        let classic = prometheus_text(&text);
        assert!(classic.contains("# TYPE seisan_blocks_finalized_total counter\n"));
        assert!(classic.contains("# HELP seisan_blocks_finalized_total Blocks committed"));
        assert!(classic.contains("# TYPE seisan_height gauge\n"));
        assert!(classic.contains("seisan_transactions_rejected_total{reason=\"nonce_gap\"} 2\n"));
        assert!(!classic.contains("# EOF"));
        // Every sample line is kept as it was.
        let samples = |document: &str| -> Vec<String> {
            document
                .lines()
                .filter(|line| !line.starts_with('#'))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(samples(&classic), samples(&text));
    }
}
