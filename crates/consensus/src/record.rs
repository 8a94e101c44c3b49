//! The last-signed record: what this validator has signed in its latest view (R10).
//!
//! A validator only ever signs in its current view (and a finalize for the view it is
//! leaving), and views only grow, so remembering the signatures of the highest view it
//! signed in is enough to never sign two conflicting messages. The engine emits a new
//! record before every signature leaves it and releases the signed message only after
//! the host acknowledges that the record is durable; after a restart the engine is
//! rebuilt from the last durable record and [`PersistedRecord::permits`] refuses
//! anything that conflicts with it.

use seisan_types::codec::{self, CodecError};
use seisan_types::{Epoch, Hash, View};
use serde::{Deserialize, Serialize};

/// What a validator signed in `view`. Serialized with the canonical codec
/// ([`PersistedRecord::encode`]) so the node can fsync it into a small file of its own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedRecord {
    /// The epoch the record belongs to: views are numbered within an epoch (E1), and
    /// a record of an earlier epoch constrains nothing in a later one (E5).
    pub epoch: Epoch,
    /// The highest view in which this validator signed anything (0: nothing yet).
    pub view: View,
    /// The block this validator proposed in `view`, if it was the leader.
    pub proposed: Option<Hash>,
    /// The block it voted notarize for in `view`.
    pub notarized: Option<Hash>,
    /// The block it voted finalize for in `view`.
    pub finalized: Option<Hash>,
    /// Whether it voted nullify in `view`.
    pub nullified: bool,
}

/// One signature the engine is about to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// A proposal of the block with this hash.
    Proposal(Hash),
    /// A notarize vote for the block with this hash.
    Notarize(Hash),
    /// A finalize vote for the block with this hash.
    Finalize(Hash),
    /// A nullify vote.
    Nullify,
}

/// The largest encoded record (an epoch, a view, three optional hashes and a flag).
pub const MAX_RECORD_BYTES: usize = 256;

impl PersistedRecord {
    /// The record of a validator that has signed nothing yet in `epoch`.
    pub fn starting(epoch: Epoch) -> PersistedRecord {
        PersistedRecord {
            epoch,
            ..PersistedRecord::default()
        }
    }

    /// Whether signing `signing` in `view` is consistent with everything recorded.
    ///
    /// - Nothing is ever signed in a view older than the record's.
    /// - In a newer view anything but a finalize may be signed (a finalize needs this
    ///   validator's own notarize for the same block in the same view, R5).
    /// - In the record's view: one proposal and one notarize, for the same block; a
    ///   finalize only for the block notarized and never after a nullify; a nullify
    ///   never after a finalize (R6). Re-signing exactly what was signed is allowed:
    ///   ed25519 signatures are deterministic, so it reveals nothing new.
    pub fn permits(&self, view: View, signing: Signing) -> bool {
        if view < self.view {
            return false;
        }
        if view > self.view {
            return !matches!(signing, Signing::Finalize(_));
        }
        let same_or_none = |slot: Option<Hash>, block: Hash| slot.is_none_or(|held| held == block);
        match signing {
            Signing::Proposal(block) => {
                !self.nullified
                    && same_or_none(self.proposed, block)
                    && same_or_none(self.notarized, block)
            }
            Signing::Notarize(block) => {
                !self.nullified
                    && same_or_none(self.notarized, block)
                    && same_or_none(self.proposed, block)
            }
            Signing::Finalize(block) => {
                !self.nullified
                    && self.notarized == Some(block)
                    && same_or_none(self.finalized, block)
            }
            Signing::Nullify => self.finalized.is_none(),
        }
    }

    /// The record after also signing `signing` in `view`. Panics if
    /// [`PersistedRecord::permits`] refuses it: the engine checks first, so a refusal
    /// here is a bug that must not produce a signature.
    pub fn with(&self, view: View, signing: Signing) -> PersistedRecord {
        assert!(
            self.permits(view, signing),
            "signing {signing:?} in view {view} conflicts with {self:?}"
        );
        let mut next = if view > self.view {
            PersistedRecord {
                view,
                ..PersistedRecord::starting(self.epoch)
            }
        } else {
            self.clone()
        };
        match signing {
            Signing::Proposal(block) => next.proposed = Some(block),
            Signing::Notarize(block) => next.notarized = Some(block),
            Signing::Finalize(block) => next.finalized = Some(block),
            Signing::Nullify => next.nullified = true,
        }
        assert!(next.view >= self.view);
        assert_eq!(next.epoch, self.epoch);
        next
    }

    /// The canonical encoding, as the host stores it.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a stored record.
    pub fn decode(bytes: &[u8]) -> Result<PersistedRecord, CodecError> {
        codec::decode_with_limit(bytes, MAX_RECORD_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Hash = Hash([1; 32]);
    const B: Hash = Hash([2; 32]);

    #[test]
    fn one_notarize_per_view_and_never_finalize_after_nullify() {
        let record = PersistedRecord::default().with(View(5), Signing::Notarize(A));
        assert!(record.permits(View(5), Signing::Notarize(A)));
        assert!(!record.permits(View(5), Signing::Notarize(B)));
        assert!(!record.permits(View(4), Signing::Nullify));
        assert!(record.permits(View(6), Signing::Notarize(B)));
        assert!(!record.permits(View(6), Signing::Finalize(B)));
        assert!(!record.permits(View(5), Signing::Finalize(B)));

        let nullified = record.with(View(5), Signing::Nullify);
        assert!(!nullified.permits(View(5), Signing::Finalize(A)));
        assert!(!nullified.permits(View(5), Signing::Notarize(A)));

        let finalized = record.with(View(5), Signing::Finalize(A));
        assert!(!finalized.permits(View(5), Signing::Nullify));
        assert!(finalized.permits(View(5), Signing::Finalize(A)));
    }

    #[test]
    fn a_leader_proposes_once_and_notarizes_only_its_proposal() {
        let record = PersistedRecord::default().with(View(3), Signing::Proposal(A));
        assert!(!record.permits(View(3), Signing::Proposal(B)));
        assert!(!record.permits(View(3), Signing::Notarize(B)));
        assert!(record.permits(View(3), Signing::Notarize(A)));
    }

    #[test]
    #[should_panic(expected = "conflicts")]
    fn with_refuses_a_conflict() {
        let record = PersistedRecord::default().with(View(2), Signing::Notarize(A));
        let _ = record.with(View(2), Signing::Notarize(B));
    }

    #[test]
    fn record_round_trips() {
        let record = PersistedRecord::default()
            .with(View(9), Signing::Notarize(A))
            .with(View(9), Signing::Finalize(A));
        let bytes = record.encode();
        assert!(bytes.len() <= MAX_RECORD_BYTES);
        assert_eq!(PersistedRecord::decode(&bytes).unwrap(), record);
    }
}
