//! Seisan's authenticated state.
//!
//! The application state is a map from byte keys to byte values. Every committed height
//! has a state root: the root of a canonical binary trie over `(SHA-256(key),
//! SHA-256(value))` with buckets of up to [`trie::BUCKET`] entries ([`trie`]; state
//! format 2, which replaced format 1's Jellyfish Merkle tree), so any value, or the
//! absence of a key, can be proven against a root that a quorum certificate signs.
//!
//! Guarantees:
//! - **Atomic blocks.** [`StateDb::commit`] writes the node's records for a block
//!   (block, certificate, receipts), its root and the committed height in one atomic
//!   batch, then flushes. Values are written only in checkpoints, every
//!   [`CHECKPOINT_INTERVAL`] blocks by default, each one atomic batch (on a thread of its
//!   own with [`StateDb::with_background_checkpoints`]). The trie is never written: it
//!   lives in memory and is built from the values at open (its shape depends only on
//!   them). After a crash the store opens at its last durable checkpoint, with the
//!   root recorded for it, and
//!   [`StateDb::recorded_height`] says up to where the caller must replay its blocks
//!   ([`StateDb::replay`], which checks each against the root recorded for its height).
//! - **Execute before commit.** [`StateDb::stage`] computes the root a block would give
//!   without writing anything, on top of the committed state and any chain of staged
//!   (uncommitted) ancestors; [`StagedView`] reads through the same layers.
//! - **Transactions found by id.** A block staged with its transaction ids
//!   ([`StateDb::stage_block`]) indexes them when it commits or is replayed
//!   ([`StateDb::locate`]): in memory until the next checkpoint, which writes them as a
//!   sorted run in pages of many; runs are merged on a thread of their own ([`index`]).
//!   No store key per transaction.
//! - **Two engines, one contract.** The [`Backend`] trait is implemented by sled
//!   ([`SledBackend`], durable after `flush`) and by memory ([`MemoryBackend`], with an
//!   explicit volatile layer so tests can simulate a crash between write and flush).
//!
//! Key spaces inside the backend (one ordered map, so a batch is atomic):
//! `w` + height + chunk: a value segment (the values a checkpoint wrote: a delta since
//! the last one, or every value as a base); `x` + key: the node's own records; `m` +
//! name: metadata (the last committed height, the root recorded for each height, the
//! checkpoint's and the values' height); `i` + ...: the transaction index's runs
//! (written with the checkpoints). A store of state format 1 (`t` tree segments, `n`
//! tree nodes or `v` values one per key) is refused at open ([`StateError::OldFormat`]):
//! its roots are not this format's. No per-version value
//! history is kept, so values are proven at the committed height only
//! ([`StateDb::prove`]); keys `h` + ... written by older versions are ignored.

mod backend;
mod db;
pub mod index;
mod proof;
pub mod trie;

pub use backend::{open_sled, Backend, MemoryBackend, SledBackend, SLED_LOCK_PATIENCE};
pub use db::{
    StageParent, StagedBlock, StagedView, StateDb, StateError, StateSnapshot, CHECKPOINT_INTERVAL,
};
pub use index::IndexedTx;
pub use proof::{verify_proof, ProofError, StateProof};

#[cfg(test)]
mod tests;
