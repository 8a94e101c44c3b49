//! Fiat at the accounting system (the trust bank): what members attest about bank
//! entries, and fiat withdrawals.
//!
//! A [`BankFact`] is one member's statement of what a bank entry on an exchange's
//! trust account says (S210: money arrived; or: the clearing house's transfer paying
//! a fiat withdrawal left it). The contracts act on an entry once at least q distinct
//! validators signed identical facts about it (same entry id, same content hash),
//! exactly once per entry id, whatever a minority attested for the same id.

use crate::amount::Amount;
use crate::ids::{AssetId, MemberId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest bank entry id, in bytes.
pub const MAX_BANK_ENTRY_ID_BYTES: usize = 64;

/// A bank-assigned statement entry id (unique at the bank, never reused).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct BankEntryId(pub String);

impl fmt::Display for BankEntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A fiat withdrawal's id (1, 2, ... in request order).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct FiatWithdrawalId(pub u64);

crate::schema::id_schema!(
    FiatWithdrawalId,
    u64,
    0,
    "A fiat withdrawal's id (1, 2, ... in request order)."
);

impl fmt::Display for FiatWithdrawalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a bank entry means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BankEntryKind {
    /// A credit to the member's trust account from its operating account (S210).
    TrustCredit,
    /// The debit of the member's trust account that paid this fiat withdrawal.
    WithdrawalPaid { withdrawal: FiatWithdrawalId },
}

/// One member's attested reading of one bank entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BankFact {
    pub entry: BankEntryId,
    /// Whose trust account the entry is on.
    pub member: MemberId,
    /// The fiat asset of the account's currency.
    pub asset: AssetId,
    pub amount: Amount,
    pub kind: BankEntryKind,
}

impl BankFact {
    /// The hash of everything the fact states: two attestations of one entry id agree
    /// exactly when their content hashes are equal.
    pub fn content_hash(&self) -> crate::hash::Hash {
        crate::hash::Hash::tagged(
            crate::tags::SEISAN_ATTESTED_FACT_V1,
            &[b"bank-entry", &crate::codec::encode(self)],
        )
    }
}

/// Where a bank entry stands in the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BankEntryRecord {
    pub entry: BankEntryId,
    /// Every attestation, in arrival order, one per member.
    #[schema(value_type = Vec<crate::schema::BankAttestation>)]
    pub attestations: Vec<(MemberId, BankFact)>,
    /// The fact that reached quorum and was acted on, if any. Attestations that
    /// disagree with it are recorded as evidence against their signers.
    pub applied: Option<BankFact>,
}

/// Where a fiat withdrawal stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FiatWithdrawalStatus {
    /// Debited in the ledger; the clearing house is to move the money from the trust
    /// account to the operating account.
    Pending,
    /// The bank's transfer was attested.
    Paid { entry: BankEntryId },
}

/// A fiat withdrawal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FiatWithdrawal {
    pub id: FiatWithdrawalId,
    pub member: MemberId,
    pub asset: AssetId,
    pub amount: Amount,
    pub requested_at_ms: u64,
    pub status: FiatWithdrawalStatus,
}
