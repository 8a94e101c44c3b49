//! The request and response bodies of every `/v1` endpoint, as Rust types.
//!
//! The node serializes these, every client (the CLI, the tests, the chaos driver, the
//! benchmark) deserializes them, and the OpenAPI document the node serves is generated
//! from them (utoipa), so the three cannot drift apart. Domain types (blocks,
//! certificates, receipts, orders, trades, ...) are seisan-types' own, with the schemas
//! derived there.
//!
//! Field names are the wire format: renaming one is a breaking change to every member's
//! tools.

pub mod bank;
pub mod certificates;
pub mod chain;
pub mod compliance;
pub mod custody;
pub mod market;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use bank::*;
pub use certificates::*;
pub use chain::*;
pub use compliance::*;
pub use custody::*;
pub use market::*;

/// A 4xx or 5xx answer: `{"error": {"code": ..., "message": ...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code to branch on and a sentence naming the problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable, e.g. `syncing`, `not_found`, `repeated_nonce`, `forbidden`.
    pub code: String,
    /// For a person: what was wrong and, where there is one, what to do.
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

/// `GET /v1/health`: the process answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub ok: bool,
}
