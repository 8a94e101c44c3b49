//! The validator node: configuration, files, mempool, block pipeline, HTTP API and
//! the core loop that wires consensus, contracts, state and network together.

pub mod admission;
pub mod api;
pub mod attester;
pub mod auth;
pub mod backup;
pub mod bank_watcher;
pub mod catch_up;
pub mod certificates;
pub mod clock;
pub mod committed_config;
pub mod compliance;
pub mod config;
pub mod console;
pub mod custody_watcher;
pub mod cycle_certificate;
pub mod fault;
pub mod files;
pub mod gossip_admission;
pub mod idle;
pub mod mempool;
pub mod metrics;
pub mod openapi;
pub mod pipeline;
pub mod queries;
pub mod rate_limit;
pub mod reconciliation;
pub mod reserves_probe;
pub mod runtime;
pub mod snapshot;
#[cfg(test)]
pub mod test_support;
pub mod tx_journal;
