//! A small blocking HTTP client for the node API with short timeouts (a paused or
//! partitioned node must not hold a client thread for long).

use serde_json::Value;
use std::time::Duration;

/// How long one request may take before the node counts as unreachable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into()
}

/// GET a JSON document; returns (status code, body).
pub fn get(url: &str) -> anyhow::Result<(u16, Value)> {
    let mut response = agent().get(url).call()?;
    let code = response.status().as_u16();
    let body = response
        .body_mut()
        .read_json::<Value>()
        .unwrap_or(Value::Null);
    Ok((code, body))
}

/// POST a JSON value; returns (status code, body).
pub fn post_json(url: &str, value: &Value) -> anyhow::Result<(u16, Value)> {
    let mut response = agent()
        .post(url)
        .header("content-type", "application/json")
        .send(value.to_string().as_bytes())?;
    let code = response.status().as_u16();
    let body = response
        .body_mut()
        .read_json::<Value>()
        .unwrap_or(Value::Null);
    Ok((code, body))
}

/// A node's finalized height, if it answers.
pub fn height(node_url: &str) -> Option<u64> {
    match get(&format!("{node_url}/v1/status")) {
        Ok((200, body)) => body["height"].as_u64(),
        _ => None,
    }
}
