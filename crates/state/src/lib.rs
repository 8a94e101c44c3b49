//! Seisan's authenticated state.
//!
//! The application state is a map from byte keys to byte values. Every committed height
//! has a state root: the root of a Jellyfish Merkle tree (the `jmt` crate) over
//! `(SHA-256(key), value)`, so any value, or the absence of a key, can be proven
//! against a root that a quorum certificate signs.
//!
//! Guarantees:
//! - **Atomic blocks.** [`StateDb::commit`] writes the node's records for a block
//!   (block, certificate, receipts), its root and the committed height in one atomic
//!   batch, then flushes. Values and tree nodes are written only in checkpoints, every
//!   [`CHECKPOINT_INTERVAL`] blocks by default, each one atomic batch (on a thread of its
//!   own with [`StateDb::with_background_checkpoints`]). After a crash the store opens
//!   at its last durable checkpoint, with the root recorded for it, and
//!   [`StateDb::recorded_height`] says up to where the caller must replay its blocks
//!   ([`StateDb::replay`], which checks each against the root recorded for its height).
//! - **Execute before commit.** [`StateDb::stage`] computes the root a block would give
//!   without writing anything, on top of the committed state and any chain of staged
//!   (uncommitted) ancestors; [`StagedView`] reads through the same layers.
//! - **Two engines, one contract.** The [`Backend`] trait is implemented by sled
//!   ([`SledBackend`], durable after `flush`) and by memory ([`MemoryBackend`], with an
//!   explicit volatile layer so tests can simulate a crash between write and flush).
//!
//! Key spaces inside the backend (one ordered map, so a batch is atomic):
//! `v` + key: values at the checkpoint; `t` + height: a tree segment (the live nodes a
//! checkpoint wrote, as one value; `n` + node key held one node each before segments);
//! `x` + key: the node's own records; `m` + name: metadata (the last committed height,
//! the root recorded for each height, the checkpoint's height). No per-version value
//! history is kept, so values are proven at the committed height only
//! ([`StateDb::prove`]); keys `h` + ... written by older versions are ignored.

mod backend;
mod db;
mod proof;

pub use backend::{open_sled, Backend, MemoryBackend, SledBackend, SLED_LOCK_PATIENCE};
pub use db::{
    StageParent, StagedBlock, StagedView, StateDb, StateError, StateSnapshot, CHECKPOINT_INTERVAL,
};
pub use proof::{verify_proof, ProofError, StateProof};

#[cfg(test)]
mod tests;
