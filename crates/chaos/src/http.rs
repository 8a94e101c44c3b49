//! The node API client of the chaos run: the test harness's (`seisan-tests`) requests
//! with a short timeout, so a paused or partitioned node does not hold a client thread
//! for long. Answers are read as the API's own types (`seisan_api::v1`).

use seisan_api::v1::{ErrorBody, NodeStatus};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

/// How long one request may take before the node counts as unreachable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

/// A node's answer, read as the API's type `T` for the endpoint.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer<T> {
    /// A 2xx whose body is a `T`.
    Document(T),
    /// A 2xx whose body is not a `T`: serde's account of what is wrong. A node that
    /// answers the wrong shape (a negative amount, a missing field) is a finding, not
    /// an outage.
    Unreadable(String),
    /// Any other status, with the node's error document if it sent one.
    Refused(u16, Option<ErrorBody>),
}

impl<T> Answer<T> {
    /// The document, if the node sent one.
    pub fn document(self) -> Option<T> {
        match self {
            Answer::Document(document) => Some(document),
            _ => None,
        }
    }
}

/// Reads a node's answer to `url` (status `code`, JSON `body`) as `T`.
pub fn read<T: DeserializeOwned>(url: &str, code: u16, body: &Value) -> Answer<T> {
    if !(200..=299).contains(&code) {
        return Answer::Refused(code, ErrorBody::deserialize(body).ok());
    }
    match T::deserialize(body) {
        Ok(document) => Answer::Document(document),
        Err(error) => Answer::Unreadable(format!(
            "{url} answered {code} with a body that is not a {}: {error}",
            std::any::type_name::<T>()
                .rsplit("::")
                .next()
                .unwrap_or_default()
        )),
    }
}

/// GET a JSON document; returns (status code, body) as sent.
pub fn get(url: &str) -> anyhow::Result<(u16, Value)> {
    seisan_tests::get_within(url, REQUEST_TIMEOUT)
}

/// GET a document of the API's type `T`; an error only when no answer came.
pub fn get_as<T: DeserializeOwned>(url: &str) -> anyhow::Result<Answer<T>> {
    let (code, body) = get(url)?;
    Ok(read(url, code, &body))
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

/// The `code` of a node's error document (`stale_nonce`, `syncing`, ...), if the body
/// is one.
pub fn error_code(body: &Value) -> Option<String> {
    ErrorBody::deserialize(body)
        .ok()
        .map(|body| body.error.code)
}

/// A node's finalized height, if it answers.
pub fn height(node_url: &str) -> Option<u64> {
    height_within(node_url, REQUEST_TIMEOUT)
}

/// [`height`] that gives up after `timeout` (for polling that must notice progress
/// quickly while some nodes are paused).
pub fn height_within(node_url: &str, timeout: Duration) -> Option<u64> {
    let url = format!("{node_url}/v1/status");
    let (code, body) = seisan_tests::get_within(&url, timeout).ok()?;
    read::<NodeStatus>(&url, code, &body)
        .document()
        .map(|status| status.height)
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

/// [`get_as`] over `agent`'s kept connections.
pub fn get_as_with<T: DeserializeOwned>(
    agent: &ureq::Agent,
    url: &str,
) -> anyhow::Result<Answer<T>> {
    let (code, body) = seisan_tests::get_with(agent, url)?;
    Ok(read(url, code, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use seisan_api::v1::Supply;
    use serde_json::json;

    #[test]
    fn an_answer_is_a_document_unreadable_or_refused() {
        let url = "http://n/v1/supply";
        let good = json!({"height": 3, "state_root": "00".repeat(32), "assets": [
            {"asset": 0, "symbol": "ETH", "credited": "5", "debited": "0", "held": "5", "locked": "0"}
        ]});
        let Answer::Document(supply) = read::<Supply>(url, 200, &good) else {
            panic!("a genuine supply answer reads");
        };
        assert_eq!(supply.assets[0].held.0, 5);
        let mut negative = good.clone();
        negative["assets"][0]["held"] = json!("-1");
        let Answer::Unreadable(text) = read::<Supply>(url, 200, &negative) else {
            panic!("a negative amount is no amount");
        };
        assert!(
            text.contains(url) && text.contains("not a Supply"),
            "{text}"
        );
        let refused = json!({"error": {"code": "syncing", "message": "behind"}});
        assert_eq!(
            read::<Supply>(url, 503, &refused),
            Answer::Refused(503, Some(ErrorBody::new("syncing", "behind")))
        );
        assert_eq!(error_code(&refused).as_deref(), Some("syncing"));
        assert_eq!(error_code(&good), None);
    }
}
