//! Prometheus metrics an operator watches: height, finalization latency, mempool
//! depth, peers, blocks synced, transactions admitted and finalized.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub height: Gauge,
    pub view: Gauge,
    pub mempool_depth: Gauge,
    pub peers_connected: Gauge,
    pub blocks_synced: Counter,
    pub blocks_finalized: Counter,
    pub transactions_admitted: Counter,
    pub transactions_finalized: Counter,
    /// Seconds from a block's proposal timestamp to its commit on this node.
    pub finalization_latency_seconds: Histogram,
    /// 1 while public-chain custody (hot + cold) is below the ledger's liabilities for
    /// some asset: an error state.
    pub custody_undercovered: Gauge,
    /// 1 while the node is behind the chain or cannot tell (see `/v1/status`).
    pub syncing: Gauge,
    /// The validator-set epoch this node's consensus runs (consensus rule E1).
    pub epoch: Gauge,
    /// Finalized blocks this node knows it lacks.
    pub behind_blocks: Gauge,
    /// Views whose timer fired on this node (each is nullified or was already).
    pub view_timeouts: Counter,
    /// Settlements whose bank transfer is not confirmed on chain, within the bound.
    pub mirror_pending: Gauge,
    /// Settlements whose bank transfer is unconfirmed past the bound (see
    /// `seisan_contracts::mirror::MIRROR_CONFIRM_BOUND_MS`).
    pub mirror_stalled: Gauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("seisan");
        let metrics_height = Gauge::default();
        let view = Gauge::default();
        let mempool_depth = Gauge::default();
        let peers_connected = Gauge::default();
        let blocks_synced = Counter::default();
        let blocks_finalized = Counter::default();
        let transactions_admitted = Counter::default();
        let transactions_finalized = Counter::default();
        let finalization_latency_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register("height", "Last finalized height", metrics_height.clone());
        registry.register("view", "Current consensus view", view.clone());
        registry.register(
            "mempool_depth",
            "Transactions waiting in the mempool",
            mempool_depth.clone(),
        );
        registry.register(
            "peers_connected",
            "Validators connected",
            peers_connected.clone(),
        );
        registry.register(
            "blocks_synced",
            "Blocks fetched from peers during catch-up",
            blocks_synced.clone(),
        );
        registry.register(
            "blocks_finalized",
            "Blocks committed",
            blocks_finalized.clone(),
        );
        registry.register(
            "transactions_admitted",
            "Transactions admitted to the mempool",
            transactions_admitted.clone(),
        );
        registry.register(
            "transactions_finalized",
            "Transactions in committed blocks",
            transactions_finalized.clone(),
        );
        registry.register(
            "finalization_latency_seconds",
            "Seconds from block proposal to commit on this node",
            finalization_latency_seconds.clone(),
        );
        let custody_undercovered = Gauge::default();
        registry.register(
            "custody_undercovered",
            "1 while custody is below the ledger's liabilities for some asset",
            custody_undercovered.clone(),
        );
        let syncing = Gauge::default();
        registry.register(
            "syncing",
            "1 while this node is behind the chain or has not heard enough validators to know",
            syncing.clone(),
        );
        let epoch = Gauge::default();
        registry.register(
            "epoch",
            "The validator-set epoch this node's consensus runs",
            epoch.clone(),
        );
        let behind_blocks = Gauge::default();
        registry.register(
            "behind_blocks",
            "Finalized blocks this node knows it lacks",
            behind_blocks.clone(),
        );
        let view_timeouts = Counter::default();
        registry.register(
            "view_timeouts",
            "Consensus views whose timer fired on this node",
            view_timeouts.clone(),
        );
        let mirror_pending = Gauge::default();
        registry.register(
            "mirror_pending",
            "Settlements whose bank transfer is not yet confirmed on chain, within the bound",
            mirror_pending.clone(),
        );
        let mirror_stalled = Gauge::default();
        registry.register(
            "mirror_stalled",
            "Settlements whose bank transfer is not confirmed on chain within the bound (stalled)",
            mirror_stalled.clone(),
        );
        Metrics {
            mirror_pending,
            mirror_stalled,
            custody_undercovered,
            syncing,
            epoch,
            behind_blocks,
            view_timeouts,
            registry,
            height: metrics_height,
            view,
            mempool_depth,
            peers_connected,
            blocks_synced,
            blocks_finalized,
            transactions_admitted,
            transactions_finalized,
            finalization_latency_seconds,
        }
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
