//! Seisan's authenticated state.
//!
//! The application state is a map from byte keys to byte values. Every committed height
//! has a state root: the root of a Jellyfish Merkle tree (the `jmt` crate) over
//! `(SHA-256(key), value)`, so any value, or the absence of a key, can be proven
//! against a root that a quorum certificate signs.
//!
//! Guarantees:
//! - **Atomic blocks.** [`StateDb::commit`] writes the block's values, tree nodes, the
//!   node's extra records (block, certificate, receipts) and the new committed height
//!   in one atomic batch, then flushes. After a crash the store is exactly at some
//!   committed height, with the root recorded for it.
//! - **Execute before commit.** [`StateDb::stage`] computes the root a block would give
//!   without writing anything, on top of the committed state and any chain of staged
//!   (uncommitted) ancestors; [`StagedView`] reads through the same layers.
//! - **Two engines, one contract.** The [`Backend`] trait is implemented by sled
//!   ([`SledBackend`], durable after `flush`) and by memory ([`MemoryBackend`], with an
//!   explicit volatile layer so tests can simulate a crash between write and flush).
//!
//! Key spaces inside the backend (one ordered map, so a batch is atomic):
//! `v` + key: latest value; `n` + node key: tree nodes (every version, so roots of older
//! heights stay readable); `x` + key: the node's own records; `m` + name: metadata
//! (committed height and root). No per-version value history is kept, so values are
//! proven at the committed height only ([`StateDb::prove`]); keys `h` + ... written by
//! older versions are ignored.

mod backend;
mod db;
mod proof;

pub use backend::{open_sled, Backend, MemoryBackend, SledBackend, SLED_LOCK_PATIENCE};
pub use db::{StageParent, StagedBlock, StagedView, StateDb, StateError, CHECKPOINT_INTERVAL};
pub use proof::{verify_proof, ProofError, StateProof};

#[cfg(test)]
mod tests;
