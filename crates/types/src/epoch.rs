//! What consensus needs to know of one epoch: who votes, with which keys, and how many
//! signatures make a certificate.
//!
//! A [`ValidatorSet`] is derived from the consortium's membership (genesis for epoch 0,
//! the contracts' state after each validator-set change for later epochs). It is
//! checked once, where it is built ([`ValidatorSet::check`]), so that every certificate
//! of its epoch is safe: any two quorums share more than `n - q` members.

use crate::bytes::PublicKey;
use crate::codec;
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::ids::{Epoch, MemberId};
use crate::tags;
use serde::{Deserialize, Serialize};

/// The most validators one epoch may have.
pub const MAX_VALIDATORS: usize = 64;

/// Blocks between the block whose approval completes a validator-set change (height
/// `a`) and the last block of the current epoch: the change takes effect at height
/// `a + ACTIVATION_DELAY_BLOCKS + 1`. Consensus never votes more than this many heights
/// above its finalized tip (rule E3), so every honest voter knows where an epoch ends
/// before it could vote past the end.
pub const ACTIVATION_DELAY_BLOCKS: u64 = 8;

/// One epoch's validators (ascending member id, distinct) and quorum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ValidatorSet {
    pub epoch: Epoch,
    pub quorum: u32,
    #[schema(value_type = Vec<crate::schema::ValidatorKey>)]
    pub validators: Vec<(MemberId, PublicKey)>,
}

/// Why a validator set cannot run consensus.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    #[error("a validator set needs at least one validator")]
    Empty,
    #[error("{count} validators is more than the limit of {max}")]
    TooMany { count: usize, max: usize },
    #[error("validators must be listed once each in ascending member order (at {member})")]
    Unsorted { member: MemberId },
    #[error("validator {member} shares its key with another validator")]
    SharedKey { member: MemberId },
    #[error("quorum {quorum} of {validators} validators is unsafe: 2q must exceed n so that any two quorums share an honest member")]
    UnsafeQuorum { quorum: u32, validators: usize },
    #[error(
        "quorum {quorum} exceeds the {validators} validators, so nothing could ever be certified"
    )]
    QuorumTooLarge { quorum: u32, validators: usize },
}

impl ValidatorSet {
    /// Epoch 0: the genesis validators and quorum.
    pub fn genesis(genesis: &Genesis) -> ValidatorSet {
        ValidatorSet {
            epoch: Epoch(0),
            quorum: genesis.quorum,
            validators: genesis
                .validators()
                .into_iter()
                .filter_map(|id| genesis.member(id).map(|member| (id, member.public_key)))
                .collect(),
        }
    }

    /// Refuses a set that cannot run consensus safely: `q >= 1`, `q <= n`, `2q > n`,
    /// distinct ascending members with distinct keys, at most [`MAX_VALIDATORS`].
    pub fn check(&self) -> Result<(), ValidatorSetError> {
        let count = self.validators.len();
        if count == 0 {
            return Err(ValidatorSetError::Empty);
        }
        if count > MAX_VALIDATORS {
            return Err(ValidatorSetError::TooMany {
                count,
                max: MAX_VALIDATORS,
            });
        }
        for pair in self.validators.windows(2) {
            if pair[0].0 >= pair[1].0 {
                return Err(ValidatorSetError::Unsorted { member: pair[1].0 });
            }
        }
        for (index, (member, key)) in self.validators.iter().enumerate() {
            if self.validators[..index]
                .iter()
                .any(|(_, other)| other == key)
            {
                return Err(ValidatorSetError::SharedKey { member: *member });
            }
        }
        let quorum = self.quorum as usize;
        if quorum > count {
            return Err(ValidatorSetError::QuorumTooLarge {
                quorum: self.quorum,
                validators: count,
            });
        }
        if quorum == 0 || 2 * quorum <= count {
            return Err(ValidatorSetError::UnsafeQuorum {
                quorum: self.quorum,
                validators: count,
            });
        }
        Ok(())
    }

    /// The validators' ids, ascending (the leader rotation order).
    pub fn members(&self) -> Vec<MemberId> {
        self.validators.iter().map(|(member, _)| *member).collect()
    }

    pub fn key_of(&self, member: MemberId) -> Option<PublicKey> {
        self.validators
            .iter()
            .find(|(id, _)| *id == member)
            .map(|(_, key)| *key)
    }

    pub fn contains(&self, member: MemberId) -> bool {
        self.key_of(member).is_some()
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    pub fn quorum(&self) -> usize {
        self.quorum as usize
    }

    /// The set's commitment, as a block names the set that follows it.
    pub fn hash(&self) -> Hash {
        Hash::tagged(tags::SEISAN_VALIDATOR_SET_V1, &[&codec::encode(self)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PublicKey {
        PublicKey([byte; 32])
    }

    fn set(quorum: u32, count: u8) -> ValidatorSet {
        ValidatorSet {
            epoch: Epoch(1),
            quorum,
            validators: (0..count)
                .map(|i| (MemberId(i as u32), key(i + 1)))
                .collect(),
        }
    }

    #[test]
    fn the_smallest_safe_quorum_of_each_size_is_accepted_and_one_less_refused() {
        for count in 1u8..=7 {
            let safe = u32::from(count) / 2 + 1;
            assert_eq!(set(safe, count).check(), Ok(()), "{count} validators");
            assert!(matches!(
                set(safe - 1, count).check(),
                Err(ValidatorSetError::UnsafeQuorum { .. })
            ));
        }
        assert!(matches!(
            set(5, 4).check(),
            Err(ValidatorSetError::QuorumTooLarge { .. })
        ));
    }

    #[test]
    fn shared_keys_and_unsorted_members_are_refused() {
        let mut shared = set(3, 4);
        shared.validators[2].1 = key(1);
        assert_eq!(
            shared.check(),
            Err(ValidatorSetError::SharedKey {
                member: MemberId(2)
            })
        );
        let mut unsorted = set(3, 4);
        unsorted.validators.swap(1, 2);
        assert!(matches!(
            unsorted.check(),
            Err(ValidatorSetError::Unsorted { .. })
        ));
    }
}
