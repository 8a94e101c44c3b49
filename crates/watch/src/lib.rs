//! The watchers' planners: pure functions of a ledger snapshot (the committed state),
//! what the external system showed (the bank's statements and transfers, the public
//! chain's blocks, receipts and balances) and the node's own memory of what it already
//! did (the journal), to the actions a node takes next. They read no clock (the time
//! is an argument, [`Millis`]), no files and no network, so each decision is a unit
//! test and a seeded simulation (tests/simulation.rs) can run many nodes' planners
//! against one bank and one chain with delays, restarts, lost and duplicated responses
//! and a lying validator.
//!
//! The node's shell (`node/src/node/{bank_watcher,custody_watcher}.rs`) owns the I/O: it
//! asks a planner what to read, reads it through the `BankAdapter` or the
//! `PublicChain` trait, hands the answers back and carries out the actions through the
//! node's attester (one actor signing every transaction the node makes itself, on the
//! member's node lane of nonces) and the external clients.
//!
//! One follow-up rule for every attestation, bank or chain ([`follow_up::FollowUp`]):
//! an attestation is pending from the moment the attester admitted it until the
//! committed ledger shows it; if it is still missing after a patience, it is planned
//! again, a bounded number of times. Nothing else resubmits: the node lane's nonces
//! belong to the attester alone, so an admitted attestation can only be missing if it
//! was lost (a crash before the journal, a refused block), never because someone took
//! its nonce.

pub mod bank;
pub mod custody;
pub mod follow_up;

/// Milliseconds since the Unix epoch, as the shell's clock read them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// How long after `earlier` this is (zero if it is not after).
    pub fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}
