//! The node API client of the chaos run: the test harness's (`seisan-tests`) requests
//! with a short timeout, so a paused or partitioned node does not hold a client thread
//! for long.

use serde_json::Value;
use std::time::Duration;

/// How long one request may take before the node counts as unreachable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

/// GET a JSON document; returns (status code, body).
pub fn get(url: &str) -> anyhow::Result<(u16, Value)> {
    seisan_tests::get_within(url, REQUEST_TIMEOUT)
}

/// POST a JSON value; returns (status code, body).
pub fn post_json(url: &str, value: &Value) -> anyhow::Result<(u16, Value)> {
    seisan_tests::post_raw_within(
        url,
        "application/json",
        value.to_string().as_bytes(),
        REQUEST_TIMEOUT,
    )
}

/// A node's finalized height, if it answers.
pub fn height(node_url: &str) -> Option<u64> {
    height_within(node_url, REQUEST_TIMEOUT)
}

/// [`height`] that gives up after `timeout` (for polling that must notice progress
/// quickly while some nodes are paused).
pub fn height_within(node_url: &str, timeout: Duration) -> Option<u64> {
    match seisan_tests::get_within(&format!("{node_url}/v1/status"), timeout) {
        Ok((200, body)) => body["height"].as_u64(),
        _ => None,
    }
}

/// A client that keeps its connections open between requests, for long runs of reads
/// from one thread (the final re-check of every acknowledged transaction). Not for the
/// workload: a connection kept to a node that is then killed fails its next request.
pub fn keep_alive_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into()
}

/// [`get`] over `agent`'s kept connections.
pub fn get_with(agent: &ureq::Agent, url: &str) -> anyhow::Result<(u16, Value)> {
    seisan_tests::get_with(agent, url)
}
