//! Seisan's clearing contracts: segregated balances, limit-order matching with locks and
//! delivery-versus-payment settlement, top-up requests, requests for quote, bilateral
//! confirmations with multilateral netting, settlement reports and receipts (patent
//! JP6745835B2, second embodiment, S210-S335; DESIGN.md section 3).
//!
//! Pure and deterministic: a block's outcome depends only on the state view, the
//! genesis, the block context and the transactions. No clock but the block timestamp,
//! no randomness, no floating point, no I/O, no unordered iteration.
//!
//! Entry points for the node:
//! - [`genesis_writes`] once, for height 0;
//! - [`apply_block`] for every block, on the state after its parent; the node commits
//!   `outcome.writes` and keeps the receipts and events;
//! - [`query`] for the HTTP API.
//!
//! The node checks signatures and chain ids before; the contracts check that the member
//! is in genesis and that its nonce is the next one of the body's lane (a member has two
//! nonce sequences: the member lane, everything a person or back office signs, and the
//! node lane, the attestations its validator node signs itself, derived from the body,
//! so neither can take the other's nonce). The ledger invariants, checked
//! by [`invariants::check`] in the tests after every transaction:
//! - per asset, the sum of every member's inventory, locked and customer balances equals
//!   credits (opening balances, deposits) minus debits (withdrawals);
//! - no balance is negative (amounts are `u128`, all arithmetic checked);
//! - each member's locked amount in an asset equals what its open orders and quotes
//!   hold plus its covered payments in closing settlement cycles;
//! - a fill moves exactly its quantity from seller to buyer and exactly its value from
//!   buyer to seller, and every buy order has paid, over its fills, their exact value
//!   rounded down to a quote minor unit (the value rule, see [`orders`]).
//!
//! Modules: [`keys`] (state layout), [`ledger`] (the block executor and balance
//! primitives, including [`Ledger::credit_deposit`] and [`Ledger::debit_withdrawal`]
//! for the custody and bank handlers), `allocation`, [`orders`], [`topup`], [`rfq`],
//! [`settlement`], [`query`], [`invariants`], [`consortium`] (the live configuration
//! governance changes) and [`governance`] (proposals, approvals, activation).

pub mod allocation;
pub mod attestation;
pub mod bank;
pub mod consortium;
pub mod custody;
pub mod error;
pub mod governance;
pub mod invariants;
pub mod keys;
pub mod ledger;
pub mod mirror;
pub mod orders;
pub mod overlay;
pub mod query;
pub mod rfq;
pub mod settlement;
pub mod topup;

pub use consortium::Consortium;
pub use error::ContractError;
pub use ledger::{BlockContext, BlockOutcome, Ledger, Meta};

use seisan_types::hash::Hash;
use seisan_types::state::{MapView, StateView, WriteSet};
use seisan_types::tx::SignedTransaction;
use seisan_types::Genesis;

/// The state at height 0: contract metadata, settlement cycle 1 (opened at
/// `genesis.genesis_time_ms`) and the opening balances, credited to inventory and
/// counted as credits of their assets. `genesis` must be validated.
pub fn genesis_writes(genesis: &Genesis) -> WriteSet {
    let empty = MapView::default();
    let ctx = BlockContext {
        height: seisan_types::Height(0),
        timestamp_ms: genesis.genesis_time_ms,
        proposer: genesis.clearing_house(),
    };
    Ledger::new(&empty, genesis, ctx).genesis_step()
}

/// Executes one block on top of `view` (the state after the parent block).
///
/// Transactions run in order, each atomically; then the block's time-driven work runs
/// at `ctx.timestamp_ms` (see [`Ledger::finish`]). Returns the block's writes (each key
/// once), one receipt per transaction and the end-of-block events. Never fails: bad
/// transactions get rejected receipts. Panics only on a broken invariant or a corrupt
/// state (a bug, not an input error).
pub fn apply_block(
    view: &dyn StateView,
    genesis: &Genesis,
    ctx: &BlockContext,
    txs: &[SignedTransaction],
) -> BlockOutcome {
    let ids: Vec<Hash> = txs.iter().map(SignedTransaction::id).collect();
    apply_identified_block(view, genesis, ctx, txs, &ids)
}

/// [`apply_block`] with each transaction's id already computed (`ids[i]` is
/// `txs[i].id()`): the node hashes a block's transactions once for its root check, its
/// execution and its transaction index.
pub fn apply_identified_block(
    view: &dyn StateView,
    genesis: &Genesis,
    ctx: &BlockContext,
    txs: &[SignedTransaction],
    ids: &[Hash],
) -> BlockOutcome {
    assert_eq!(ids.len(), txs.len(), "one id per transaction");
    let mut ledger = Ledger::new(view, genesis, *ctx);
    for (signed, id) in txs.iter().zip(ids) {
        ledger.apply_identified_transaction(signed, *id);
    }
    let outcome = ledger.finish();
    assert_eq!(outcome.receipts.len(), txs.len());
    outcome
}

/// Writes that credit balances without a deposit, for tests and simulations only: each
/// (member, asset, amount) is credited to inventory and counted as a credit (reason
/// `seed`), so the conservation invariant still holds.
#[cfg(any(test, feature = "testing"))]
pub fn seed_writes(
    view: &dyn StateView,
    genesis: &Genesis,
    seeds: &[(
        seisan_types::MemberId,
        seisan_types::AssetId,
        seisan_types::Amount,
    )],
) -> WriteSet {
    let ctx = BlockContext {
        height: seisan_types::Height(0),
        timestamp_ms: genesis.genesis_time_ms,
        proposer: genesis.clearing_house(),
    };
    let mut ledger = Ledger::new(view, genesis, ctx);
    for (member, asset, amount) in seeds {
        ledger
            .atomic(|ledger| {
                ledger.credit_deposit(
                    *member,
                    *asset,
                    *amount,
                    seisan_types::clearing::ChangeReason::Seed,
                )
            })
            .expect("seeds name genesis members and assets");
    }
    ledger.pending_writes()
}
