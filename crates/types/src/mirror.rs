//! The bank's leg of settlement on chain (patent S250-S290: the accounting system moves
//! the money and returns the fixed values, registered with the approval of a quorum).
//!
//! When a block settles fiat between exchanges (fills, cycle netting), the contracts
//! open one [`MirrorRecord`] per bank transfer that must mirror it: payer's trust
//! account to payee's, for the amount, under a reference fixed by the height and the
//! two members. The clearing house executes the transfer at the bank; each validator
//! that can read it attests the bank's confirmation as a [`MirrorFact`] (the bank's
//! debit and credit entry ids with the terms). q identical attestations from validators
//! mark the mirror confirmed; a mirror still open a bounded time after its settlement
//! is reported stalled.

use crate::amount::Amount;
use crate::bank::BankEntryId;
use crate::ids::{AssetId, Height, MemberId};
use serde::{Deserialize, Serialize};

/// Which mirror: the settling height, the two members and the fiat asset (one transfer
/// per pair, currency and height, see the contracts' mirror module).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub struct MirrorId {
    pub height: Height,
    pub payer: MemberId,
    pub payee: MemberId,
    /// The fiat asset moved (each currency has its own trust accounts at the bank).
    pub asset: AssetId,
}

/// A validator's reading of the bank's confirmation of one mirrored transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MirrorFact {
    pub mirror: MirrorId,
    /// The fiat asset of the trust accounts' currency.
    pub asset: AssetId,
    pub amount: Amount,
    /// The bank transfer's reference (its idempotency key).
    pub reference: String,
    /// The bank's entry on the payer's trust account.
    pub debit_entry: BankEntryId,
    /// The bank's entry on the payee's trust account.
    pub credit_entry: BankEntryId,
}

/// The bank's confirmation as the ledger accepted it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MirrorConfirmation {
    pub debit_entry: BankEntryId,
    pub credit_entry: BankEntryId,
    /// The timestamp of the block that confirmed it.
    pub confirmed_at_ms: u64,
}

/// One bank transfer the ledger's settlement needs, and where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MirrorRecord {
    pub mirror: MirrorId,
    pub asset: AssetId,
    pub amount: Amount,
    pub reference: String,
    /// The timestamp of the settling block.
    pub settled_at_ms: u64,
    /// Every validator's attestation, in arrival order, one per validator.
    #[schema(value_type = Vec<crate::schema::MirrorAttestation>)]
    pub attestations: Vec<(MemberId, MirrorFact)>,
    /// Set once q validators attested identical facts.
    pub confirmed: Option<MirrorConfirmation>,
}

/// Where a mirror stands at a given block time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MirrorState {
    /// The bank's confirmation is on chain.
    Confirmed,
    /// Not confirmed yet, within the bound.
    Pending,
    /// Not confirmed within the bound after its settlement.
    Stalled,
}
