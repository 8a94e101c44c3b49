//! The consortium's members as of some height: who they are, whether they may still
//! trade, which of them validate, and the quorum.
//!
//! Genesis gives the first [`Membership`] (epoch 0, everyone active); after that the
//! contracts keep it in state and change it only by governance (see the contracts'
//! `governance` module), identically on every node. A member's [`MemberId`] is its
//! index in [`Membership::members`] and is never reused: a removed member keeps its
//! slot (its history, balances reports and receipts still name it), it just no longer
//! resolves by key and no longer validates.
//!
//! [`Membership::validate`] is the one place the consortium-wide rules are checked
//! (the genesis checks reuse [`check_quorum`]): a safe quorum (`2q > n`), unique names,
//! unique keys among members that are not removed, exactly one clearing house, and no
//! observer that validates.

use crate::bytes::PublicKey;
use crate::codec;
use crate::epoch::{ValidatorSet, MAX_VALIDATORS};
use crate::genesis::{Genesis, Member, Role, MAX_MEMBERS};
use crate::hash::Hash;
use crate::ids::{Epoch, MemberId};
use crate::tags;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Where a member stands in the consortium.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    /// A full member.
    Active,
    /// On its way out: no new orders, quotes, confirmations or allocations; what it
    /// already has settles, and it may withdraw. Removed once it holds nothing.
    WithdrawOnly,
    /// Gone: its key resolves to nothing, it does not validate, and its transactions
    /// are refused. Its id is never given to anyone else.
    Removed,
}

/// One member and its status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberEntry {
    pub member: Member,
    pub status: MemberStatus,
}

impl MemberEntry {
    /// Whether this entry votes: a validator that is not removed.
    pub fn votes(&self) -> bool {
        self.member.validator && self.status != MemberStatus::Removed
    }
}

/// Why a membership cannot govern the consortium.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("no validators are left (members with validator = true that are not removed)")]
    NoValidators,
    #[error("member {name:?} is an observer, so it cannot be a validator")]
    ObserverValidates { name: String },
    #[error("{count} validators is more than the limit of {max}")]
    TooManyValidators { count: usize, max: usize },
    #[error("{count} members is more than the limit of {max}")]
    TooManyMembers { count: usize, max: usize },
    #[error("quorum {quorum} is unsafe for {validators} validators: 2q must exceed n (need at least {minimum})")]
    QuorumTooSmall {
        quorum: u32,
        validators: usize,
        minimum: usize,
    },
    #[error(
        "quorum {quorum} exceeds the {validators} validators, so no block could ever be final"
    )]
    QuorumTooLarge { quorum: u32, validators: usize },
    #[error("member name {name:?} must be 1 to 64 characters of [a-z0-9-]")]
    BadName { name: String },
    #[error("member name {name:?} is used twice")]
    DuplicateName { name: String },
    #[error("members {first:?} and {second:?} have the same public key")]
    DuplicateKey { first: String, second: String },
    #[error("there must be exactly one clearing house that is not removed, found {count}")]
    ClearingHouseCount { count: usize },
}

/// The quorum rule every validator set obeys: `1 <= q <= n` and `2q > n`, so any two
/// quorums share more than `n - q` members and a quorum can always form when at least
/// q validators are live. Shared by the genesis checks and governance.
pub fn check_quorum(quorum: u32, validators: usize) -> Result<(), MembershipError> {
    if validators == 0 {
        return Err(MembershipError::NoValidators);
    }
    let q = quorum as usize;
    if q == 0 || 2 * q <= validators {
        return Err(MembershipError::QuorumTooSmall {
            quorum,
            validators,
            minimum: validators / 2 + 1,
        });
    }
    if q > validators {
        return Err(MembershipError::QuorumTooLarge { quorum, validators });
    }
    Ok(())
}

/// Whether `name` is a well-formed member name (1 to 64 of `[a-z0-9-]`).
pub fn is_valid_member_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The consortium's members as of some height (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Membership {
    /// The validator-set epoch this membership belongs to.
    pub epoch: Epoch,
    /// Signatures a certificate needs, and approvals a governance change needs.
    pub quorum: u32,
    /// Indexed by [`MemberId`]; never shrinks.
    pub members: Vec<MemberEntry>,
}

impl Membership {
    /// Epoch 0: the genesis members, all active, and the genesis quorum.
    pub fn from_genesis(genesis: &Genesis) -> Membership {
        Membership {
            epoch: Epoch(0),
            quorum: genesis.quorum,
            members: genesis
                .members
                .iter()
                .map(|member| MemberEntry {
                    member: member.clone(),
                    status: MemberStatus::Active,
                })
                .collect(),
        }
    }

    /// The entry with this id, whatever its status.
    pub fn member(&self, id: MemberId) -> Option<&MemberEntry> {
        self.members.get(id.0 as usize)
    }

    /// The member holding `key` now. Never a removed member, and never by a key that
    /// was rotated away (the entry holds only the current key).
    pub fn member_by_key(&self, key: &PublicKey) -> Option<(MemberId, &MemberEntry)> {
        self.members
            .iter()
            .enumerate()
            .find(|(_, entry)| {
                entry.status != MemberStatus::Removed && &entry.member.public_key == key
            })
            .map(|(index, entry)| (MemberId(index as u32), entry))
    }

    /// The member with this name, whatever its status (names are never reused).
    pub fn member_by_name(&self, name: &str) -> Option<(MemberId, &MemberEntry)> {
        self.members
            .iter()
            .enumerate()
            .find(|(_, entry)| entry.member.name == name)
            .map(|(index, entry)| (MemberId(index as u32), entry))
    }

    /// The voting members (validators not removed), in id order.
    pub fn validators(&self) -> Vec<MemberId> {
        self.members
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.votes())
            .map(|(index, _)| MemberId(index as u32))
            .collect()
    }

    /// Whether `id` votes in this membership.
    pub fn is_validator(&self, id: MemberId) -> bool {
        self.member(id).is_some_and(MemberEntry::votes)
    }

    /// The clearing house (the one that is not removed).
    pub fn clearing_house(&self) -> MemberId {
        let index = self
            .members
            .iter()
            .position(|entry| {
                entry.member.role == Role::ClearingHouse && entry.status != MemberStatus::Removed
            })
            .expect("a valid membership has one clearing house");
        MemberId(index as u32)
    }

    /// What consensus needs for this epoch.
    pub fn validator_set(&self) -> ValidatorSet {
        ValidatorSet {
            epoch: self.epoch,
            quorum: self.quorum,
            validators: self
                .validators()
                .into_iter()
                .map(|id| (id, self.members[id.0 as usize].member.public_key))
                .collect(),
        }
    }

    /// Checks the rules in the module docs.
    pub fn validate(&self) -> Result<(), MembershipError> {
        if self.members.len() > MAX_MEMBERS {
            return Err(MembershipError::TooManyMembers {
                count: self.members.len(),
                max: MAX_MEMBERS,
            });
        }
        let mut names = BTreeSet::new();
        for entry in &self.members {
            let name = &entry.member.name;
            if !is_valid_member_name(name) {
                return Err(MembershipError::BadName { name: name.clone() });
            }
            if !names.insert(name.as_str()) {
                return Err(MembershipError::DuplicateName { name: name.clone() });
            }
        }
        let present: Vec<&Member> = self
            .members
            .iter()
            .filter(|entry| entry.status != MemberStatus::Removed)
            .map(|entry| &entry.member)
            .collect();
        for (index, member) in present.iter().enumerate() {
            if let Some(other) = present[..index]
                .iter()
                .find(|other| other.public_key == member.public_key)
            {
                return Err(MembershipError::DuplicateKey {
                    first: other.name.clone(),
                    second: member.name.clone(),
                });
            }
        }
        if let Some(observer) = present
            .iter()
            .find(|member| member.role == Role::Observer && member.validator)
        {
            return Err(MembershipError::ObserverValidates {
                name: observer.name.clone(),
            });
        }
        let clearing_houses = present
            .iter()
            .filter(|member| member.role == Role::ClearingHouse)
            .count();
        if clearing_houses != 1 {
            return Err(MembershipError::ClearingHouseCount {
                count: clearing_houses,
            });
        }
        let validators = self.validators().len();
        if validators > MAX_VALIDATORS {
            return Err(MembershipError::TooManyValidators {
                count: validators,
                max: MAX_VALIDATORS,
            });
        }
        check_quorum(self.quorum, validators)
    }

    /// A commitment to this exact membership (its canonical encoding, tagged).
    pub fn hash(&self) -> Hash {
        Hash::tagged(tags::SEISAN_MEMBERSHIP_V1, &[&codec::encode(self)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::SettlementSettings;
    use crate::ids::ChainId;

    fn member(name: &str, role: Role, key: u8, validator: bool) -> Member {
        Member {
            name: name.into(),
            role,
            public_key: PublicKey([key; 32]),
            validator,
            p2p_address: None,
        }
    }

    fn genesis() -> Genesis {
        Genesis {
            chain_id: ChainId("seisan-dev-test".into()),
            genesis_time_ms: 0,
            quorum: 2,
            members: vec![
                member("clearing-house", Role::ClearingHouse, 1, true),
                member("exchange-a", Role::Exchange, 2, true),
                member("exchange-b", Role::Exchange, 3, true),
                member("bench", Role::Exchange, 4, false),
            ],
            assets: vec![],
            pairs: vec![],
            opening_balances: vec![],
            settlement: SettlementSettings::default(),
            public_chain: None,
        }
    }

    #[test]
    fn genesis_membership_matches_the_genesis_validator_set() {
        let genesis = genesis();
        let membership = Membership::from_genesis(&genesis);
        membership.validate().unwrap();
        assert_eq!(membership.epoch, Epoch(0));
        assert_eq!(membership.validator_set(), ValidatorSet::genesis(&genesis));
        assert_eq!(
            membership.validators(),
            vec![MemberId(0), MemberId(1), MemberId(2)]
        );
        assert_eq!(membership.clearing_house(), MemberId(0));
        let (id, entry) = membership.member_by_key(&PublicKey([3; 32])).unwrap();
        assert_eq!(
            (id, entry.member.name.as_str()),
            (MemberId(2), "exchange-b")
        );
    }

    #[test]
    fn a_removed_member_keeps_its_slot_but_neither_resolves_by_key_nor_votes() {
        let mut membership = Membership::from_genesis(&genesis());
        membership.members[2].status = MemberStatus::Removed;
        assert_eq!(membership.member_by_key(&PublicKey([3; 32])), None);
        assert_eq!(
            membership.member_by_name("exchange-b").unwrap().0,
            MemberId(2)
        );
        assert_eq!(membership.validators(), vec![MemberId(0), MemberId(1)]);
        // 2 of 2 is still safe; a new member may now reuse the removed one's key.
        membership.validate().unwrap();
        let mut newcomer = member("exchange-c", Role::Exchange, 3, false);
        newcomer.validator = false;
        membership.members.push(MemberEntry {
            member: newcomer,
            status: MemberStatus::Active,
        });
        membership.validate().unwrap();
        assert_eq!(
            membership.member_by_key(&PublicKey([3; 32])).unwrap().0,
            MemberId(4)
        );
    }

    #[test]
    fn validate_refuses_unsafe_quorums_and_duplicates() {
        let mut membership = Membership::from_genesis(&genesis());
        membership.quorum = 1;
        assert_eq!(
            membership.validate(),
            Err(MembershipError::QuorumTooSmall {
                quorum: 1,
                validators: 3,
                minimum: 2
            })
        );
        membership.quorum = 4;
        assert!(matches!(
            membership.validate(),
            Err(MembershipError::QuorumTooLarge { .. })
        ));
        let mut membership = Membership::from_genesis(&genesis());
        membership.members[3].member.name = "exchange-a".into();
        assert!(matches!(
            membership.validate(),
            Err(MembershipError::DuplicateName { .. })
        ));
        let mut membership = Membership::from_genesis(&genesis());
        membership.members[3].member.role = Role::Observer;
        membership.validate().unwrap();
        membership.members[3].member.validator = true;
        assert_eq!(
            membership.validate(),
            Err(MembershipError::ObserverValidates {
                name: "bench".into()
            })
        );
        let mut membership = Membership::from_genesis(&genesis());
        membership.members[3].member.public_key = PublicKey([2; 32]);
        assert!(matches!(
            membership.validate(),
            Err(MembershipError::DuplicateKey { .. })
        ));
        let mut membership = Membership::from_genesis(&genesis());
        membership.members[0].status = MemberStatus::Removed;
        assert!(matches!(
            membership.validate(),
            Err(MembershipError::ClearingHouseCount { count: 0 })
        ));
    }

    #[test]
    fn the_hash_commits_to_status_keys_and_epoch() {
        let base = Membership::from_genesis(&genesis());
        let mut other = base.clone();
        other.members[1].status = MemberStatus::WithdrawOnly;
        assert_ne!(base.hash(), other.hash());
        let mut other = base.clone();
        other.epoch = Epoch(1);
        assert_ne!(base.hash(), other.hash());
        let mut other = base.clone();
        other.members[1].member.public_key = PublicKey([9; 32]);
        assert_ne!(base.hash(), other.hash());
        assert_eq!(base.hash(), base.clone().hash());
    }

    #[test]
    fn check_quorum_is_the_two_q_above_n_rule() {
        assert!(check_quorum(3, 4).is_ok());
        assert!(check_quorum(2, 4).is_err());
        assert!(check_quorum(3, 5).is_ok());
        assert!(check_quorum(0, 0).is_err());
        assert!(check_quorum(1, 1).is_ok());
    }
}
