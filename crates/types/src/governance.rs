//! Governance: changes to the consortium that members propose and the current
//! validators approve (the `Propose` and `Approve` transactions). The contracts'
//! `governance` module gives them meaning: who may propose and approve, when a change
//! is scheduled, applied, refused or lapses.

use crate::amount::Asset;
use crate::bytes::PublicKey;
use crate::custody::RegisteredAddress;
use crate::genesis::{Role, SettlementSettings};
use crate::ids::{Height, MemberId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A proposal's number, assigned by the contracts in order from 1.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProposalId(pub u64);

crate::schema::id_schema!(
    ProposalId,
    u64,
    0,
    "A proposal's number, assigned by the contracts in order from 1."
);

impl fmt::Debug for ProposalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProposalId({})", self.0)
    }
}

impl fmt::Display for ProposalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One change to the consortium.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GovernanceChange {
    /// A new member, given the next member id.
    AddMember {
        name: String,
        role: Role,
        public_key: PublicKey,
        validator: bool,
        /// The libp2p multiaddress other validators dial.
        p2p_address: Option<String>,
    },
    /// Removes a member that holds nothing (see the contracts' governance rules).
    RemoveMember { member: MemberId },
    /// Puts a member on its way out: no new orders, quotes, confirmations or
    /// allocations; settlement of what it has and withdrawals continue.
    SetWithdrawOnly { member: MemberId },
    /// Replaces a member's key; the old key no longer resolves.
    RotateKey {
        member: MemberId,
        public_key: PublicKey,
    },
    /// A new quorum for the validators (must keep `2q > n`).
    SetQuorum { quorum: u32 },
    /// A new asset, given the next asset id.
    AddAsset(Asset),
    /// A new trading pair, by asset symbols (both assets must exist when proposed).
    AddPair { base: String, quote: String },
    /// New settlement settings, replacing the current ones whole.
    SetSettlement(SettlementSettings),
    /// New custody settings: the registered withdrawal addresses (replacing the list
    /// whole) and the hot-wallet cap. Needs a `public_chain` section in genesis.
    SetCustody {
        registered_addresses: Vec<RegisteredAddress>,
        hot_cap_bps: u32,
    },
}

impl GovernanceChange {
    /// A short stable name of the kind, for tables and logs.
    pub fn kind_name(&self) -> &'static str {
        match self {
            GovernanceChange::AddMember { .. } => "add_member",
            GovernanceChange::RemoveMember { .. } => "remove_member",
            GovernanceChange::SetWithdrawOnly { .. } => "set_withdraw_only",
            GovernanceChange::RotateKey { .. } => "rotate_key",
            GovernanceChange::SetQuorum { .. } => "set_quorum",
            GovernanceChange::AddAsset(_) => "add_asset",
            GovernanceChange::AddPair { .. } => "add_pair",
            GovernanceChange::SetSettlement(_) => "set_settlement",
            GovernanceChange::SetCustody { .. } => "set_custody",
        }
    }

    /// Whether applying it changes the membership (and so starts a new epoch).
    pub fn changes_membership(&self) -> bool {
        matches!(
            self,
            GovernanceChange::AddMember { .. }
                | GovernanceChange::RemoveMember { .. }
                | GovernanceChange::SetWithdrawOnly { .. }
                | GovernanceChange::RotateKey { .. }
                | GovernanceChange::SetQuorum { .. }
        )
    }
}

/// What a `Propose` transaction carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Proposal {
    pub change: GovernanceChange,
    /// The last height whose block may complete the approvals; after it the proposal
    /// lapses.
    pub expires_at_height: Height,
}

/// Where a proposal stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    /// Collecting approvals.
    Open,
    /// Approved by a quorum; applies at the end of the block before
    /// `activation_height`, so the block at `activation_height` is the first under it.
    Scheduled { activation_height: Height },
    /// Applied; `height` is the first block governed by it.
    Applied { height: Height },
    /// Not approved in time.
    Lapsed { reason: String },
    /// Approved, but it could no longer apply when its time came.
    Rejected { reason: String },
}

impl ProposalStatus {
    /// Whether the proposal can still change anything.
    pub fn is_pending(&self) -> bool {
        matches!(
            self,
            ProposalStatus::Open | ProposalStatus::Scheduled { .. }
        )
    }
}

/// A proposal as the contracts keep it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProposalRecord {
    pub id: ProposalId,
    pub proposer: MemberId,
    pub change: GovernanceChange,
    pub proposed_at: Height,
    pub expires_at_height: Height,
    /// Approving members in the order they approved (validators when they approved).
    pub approvals: Vec<MemberId>,
    pub status: ProposalStatus,
}
