//! Evidence against a validator that attested an external fact contradicting the one
//! the ledger credited.
//!
//! External facts (a bank entry, a public-chain deposit, a payout) are identified by
//! their id (bank entry id, deposit id, withdrawal id) together with the content hash of
//! what was attested. A fact is acted on once q identical attestations from distinct
//! validators exist; every attestation of the same id with another content, before or
//! after that, is a signed statement the ledger knows to be false, and is kept as
//! [`AttestationEvidence`] (served by `GET /v1/evidence` beside consensus evidence).

use crate::bank::{BankEntryId, BankFact};
use crate::custody::{ChainTxHash, DepositFact, DepositId, WithdrawalId};
use crate::hash::Hash;
use crate::ids::{Height, MemberId};
use serde::{Deserialize, Serialize};

/// What a validator attested, or what the ledger credited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttestedFact {
    BankEntry(BankFact),
    Deposit(DepositFact),
    /// The public-chain transaction that paid a withdrawal.
    Payout {
        withdrawal: WithdrawalId,
        tx_hash: ChainTxHash,
    },
}

/// The external fact's identity, without its content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttestedSubject {
    BankEntry { entry: BankEntryId },
    Deposit { deposit: DepositId },
    Payout { withdrawal: WithdrawalId },
}

impl AttestedFact {
    pub fn subject(&self) -> AttestedSubject {
        match self {
            AttestedFact::BankEntry(fact) => AttestedSubject::BankEntry {
                entry: fact.entry.clone(),
            },
            AttestedFact::Deposit(fact) => AttestedSubject::Deposit {
                deposit: fact.deposit_id(),
            },
            AttestedFact::Payout { withdrawal, .. } => AttestedSubject::Payout {
                withdrawal: *withdrawal,
            },
        }
    }

    /// The content hash (equal for identical attestations of one subject).
    pub fn content_hash(&self) -> Hash {
        match self {
            AttestedFact::BankEntry(fact) => fact.content_hash(),
            AttestedFact::Deposit(fact) => fact.content_hash(),
            AttestedFact::Payout {
                withdrawal,
                tx_hash,
            } => Hash::tagged(
                crate::tags::SEISAN_ATTESTED_FACT_V1,
                &[b"payout", &withdrawal.0.to_be_bytes(), tx_hash.0.as_bytes()],
            ),
        }
    }
}

/// A validator's finalized attestation that contradicts a credited fact of the same id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttestationEvidence {
    /// The validator that signed the contradicting attestation.
    pub member: MemberId,
    /// What it attested.
    pub attested: AttestedFact,
    /// What q validators attested identically and the ledger acted on.
    pub credited: AttestedFact,
    /// The height at which the contradiction was recorded (the later of the
    /// attestation and the credit).
    pub height: Height,
}

impl AttestationEvidence {
    pub fn subject(&self) -> AttestedSubject {
        self.credited.subject()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;
    use crate::bank::BankEntryKind;
    use crate::ids::AssetId;

    #[test]
    fn content_hash_separates_content_and_kind() {
        let fact = BankFact {
            entry: BankEntryId("E000000000001".into()),
            member: MemberId(1),
            asset: AssetId(1),
            amount: Amount(200),
            kind: BankEntryKind::TrustCredit,
        };
        let mut other = fact.clone();
        other.amount = Amount(201);
        let a = AttestedFact::BankEntry(fact.clone());
        let b = AttestedFact::BankEntry(other);
        assert_eq!(a.subject(), b.subject());
        assert_ne!(a.content_hash(), b.content_hash());
        assert_eq!(a.content_hash(), fact.content_hash());
    }
}
