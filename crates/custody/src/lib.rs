//! Seisan custody on a public chain.
//!
//! The clearing house holds the consortium's coins at two public-chain addresses: a hot
//! one that receives deposits and pays withdrawals, and a cold one for the rest. This
//! crate is the part of custody that talks to the chain; the ledger side (attestations,
//! credits, pending withdrawals) is `seisan_contracts::custody`.
//!
//! - [`plan`] is pure: which blocks are K deep, which observed transfers are deposits,
//!   how a payout is tagged and recognised, how much to sweep to cold, the reserves
//!   report. It is chain-neutral: addresses, hashes and amounts are the types of
//!   `seisan_types::custody`, so a Bitcoin adapter can reuse it.
//! - [`chain`] is the [`chain::PublicChain`] trait: the calls the custody watcher
//!   makes, so its shell is generic over the chain (the Ethereum adapter, or a fake).
//! - [`evm`] is the Ethereum adapter over alloy (JSON-RPC, local keys, EIP-1559
//!   transactions, ERC-20 `Transfer` logs and `balanceOf`).
//! - [`journal`] records every signed outgoing transaction durably before it is
//!   broadcast, so a restarted clearing-house node re-broadcasts the same bytes (same
//!   nonce) instead of paying twice.
//! - [`keys`] loads wallet keys from files that only their owner can read.

pub mod chain;
pub mod evm;
pub mod journal;
pub mod keys;
pub mod plan;

/// Why a custody operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    #[error("public chain RPC {operation} failed: {reason}")]
    Rpc { operation: String, reason: String },
    #[error("public chain answered something unexpected for {operation}: {reason}")]
    Unexpected { operation: String, reason: String },
    #[error("public chain id is {got}, genesis expects {expected}")]
    WrongChain { got: u64, expected: u64 },
    #[error("key file {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("journal {path}: {reason}")]
    Journal { path: String, reason: String },
    #[error("genesis has no public_chain section")]
    NoPublicChain,
}
