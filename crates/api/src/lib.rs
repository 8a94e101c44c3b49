//! Seisan's HTTP API contract, shared by the node (which enforces it) and every client
//! (the CLI, the tests, the chaos driver, the benchmark).
//!
//! - [`auth`]: how a request proves which member sends it, with the member's ed25519
//!   key: a signature over the request itself, or a short-lived token the member
//!   issues to itself for tools that can only send a fixed header.
//! - [`access`]: who may read what. An exchange reads its own books; market data,
//!   governance and the consortium's aggregates are for every member; the clearing
//!   house and observers (regulators, auditors) read everything they need to operate
//!   and audit.
//!
//! - [`v1`]: the request and response bodies of every endpoint, from which the node
//!   generates its OpenAPI document.
//!
//! Nothing here reads a clock, a file or the network: the current time is passed in.

pub mod access;
pub mod auth;
pub mod v1;

pub use access::{Access, Caller, Refusal};
pub use auth::{AuthError, Credentials};
