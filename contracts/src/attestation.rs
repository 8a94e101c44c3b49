//! The rules every attested external fact follows (bank entries in [`crate::bank`],
//! public-chain deposits and payouts in [`crate::custody`]).
//!
//! - Only a validator of the current set attests ([`is_attester`]); the quorum q is
//!   [`quorum`]. These two functions are the one place that knows where the set comes
//!   from (the consortium's current membership, [`crate::consortium`]).
//! - A fact is its id together with the hash of its content. It is acted on once, when
//!   q identical attestations (same id, same content hash) from distinct validators of
//!   the current set exist ([`agreeing`]), whatever a minority attested for the same
//!   id: a different content under the same id never blocks it.
//! - An attestation whose content differs from the credited fact of its id, made before
//!   or after the credit, is kept as [`AttestationEvidence`] against its signer.
//! - A validator has at most [`MAX_OPEN_ATTESTATIONS_PER_MEMBER`] attestations of ids
//!   not credited yet; beyond that its attestations of new ids are refused. An honest
//!   validator's attestations are credited within a few blocks, so only a validator
//!   that invents facts (ids the external system never produces) reaches the bound,
//!   and the state a liar can fill with uncredited records is bounded by it.

use crate::ledger::Ledger;
use seisan_types::attestation::{AttestationEvidence, AttestedFact};
use seisan_types::MemberId;

/// The most attestations of not-yet-credited ids one validator may have open, per
/// kind (bank entries; public-chain deposits).
pub const MAX_OPEN_ATTESTATIONS_PER_MEMBER: u64 = 1024;

/// Whether `member` may attest external facts: a validator of the current set.
pub(crate) fn is_attester(ledger: &Ledger<'_>, member: MemberId) -> bool {
    ledger.config.is_validator(member)
}

/// How many identical attestations act on a fact.
pub(crate) fn quorum(ledger: &Ledger<'_>) -> usize {
    ledger.config.quorum() as usize
}

/// How many of `attesters` are validators of the current set (each counted once).
pub(crate) fn agreeing<'m>(
    ledger: &Ledger<'_>,
    attesters: impl IntoIterator<Item = &'m MemberId>,
) -> usize {
    let mut seen: Vec<MemberId> = Vec::new();
    for member in attesters {
        if is_attester(ledger, *member) && !seen.contains(member) {
            seen.push(*member);
        }
    }
    seen.len()
}

/// The evidence that `member` attested `attested` where `credited` was acted on.
pub(crate) fn evidence(
    ledger: &Ledger<'_>,
    member: MemberId,
    attested: AttestedFact,
    credited: AttestedFact,
) -> AttestationEvidence {
    assert_eq!(attested.subject(), credited.subject(), "same id");
    assert_ne!(
        attested.content_hash(),
        credited.content_hash(),
        "a contradiction differs in content"
    );
    AttestationEvidence {
        member,
        attested,
        credited,
        height: ledger.ctx.height,
    }
}
