//! Governance: the consortium changes itself on the live chain, identically on every
//! node, by `Propose` and `Approve` transactions.
//!
//! Rules:
//! - G1 (proposing). Any active member (not withdraw-only, not removed) may propose one
//!   [`GovernanceChange`] with a deadline `expires_at_height` (at least the current
//!   height, at most [`MAX_PROPOSAL_LIFETIME_BLOCKS`] above it). A proposal that could
//!   not apply to the configuration as it is now is refused at once with a named
//!   [`GovernanceError`] (an unknown member, a duplicate name or key, a quorum that
//!   breaks `2q > n` for the resulting validator count, removing a member that still
//!   holds something, ...). At most [`MAX_PENDING_PROPOSALS`] proposals are open or
//!   scheduled at a time. Proposals are numbered 1, 2, ... in the order proposed.
//! - G2 (approving). Approvals count only from validators of the current membership,
//!   recounted against the current membership at every approval; a validator's own
//!   proposal counts as its approval. When the approvals reach the current quorum in
//!   the block at height `a`, the proposal is `Scheduled` for activation height
//!   `a + ACTIVATION_DELAY_BLOCKS + 1`.
//! - G3 (lapsing). A proposal still open at the end of the block at its
//!   `expires_at_height` lapses (`Lapsed`, with the approval count as the reason) and
//!   changes nothing.
//! - G4 (activation). Scheduled changes apply at the end of the block whose height is
//!   `activation_height - 1`, after its transactions and its time-driven work, in
//!   approval order, each on the result of the ones before. Each is checked again
//!   first, as in G1, including that the resulting membership is valid (`2q > n`); one
//!   that can no longer apply is `Rejected` with the reason and changes nothing. If any
//!   change to the membership was scheduled there (add, remove, withdraw-only, key,
//!   quorum), applied or rejected, the membership's epoch advances by one: the block
//!   headers announced the height as the epoch's end (consensus rule E2). So the state after block `L = activation - 1`
//!   already holds the membership that votes on block `L + 1`.
//! - G5 (orderly exit). A member that holds anything (a balance, locked or customer
//!   amount in any asset, an open order or quote, an open top-up request, a pending
//!   crypto or fiat withdrawal) cannot be removed; `SetWithdrawOnly` puts it in the
//!   withdraw-only state instead (no new orders, quotes, confirmations or allocations;
//!   settlement of what it has, cancelling and withdrawals continue; a confirmation or
//!   request for quote naming it as counterparty is refused), and
//!   `RemoveMember` applies once it holds nothing. The clearing house can be neither
//!   removed nor made withdraw-only. A removed member keeps its id; its transactions
//!   are refused (`member_removed`), its key resolves to nobody and its registered
//!   withdrawal addresses are dropped.
//! - G6 (keys). After `RotateKey` applies, the old key resolves to nobody (the node
//!   refuses transactions signed with it) and the new key signs for the member, which
//!   keeps its id and nonces.
//!
//! Everything here is pure and deterministic: a block's governance work depends only
//! on the state and the block.

use crate::consortium::Consortium;
use crate::error::ContractError;
use crate::keys;
use crate::ledger::Ledger;
use seisan_types::custody::PublicChainSettings;
use seisan_types::genesis::{check_asset, MAX_ASSETS};
use seisan_types::governance::{
    GovernanceChange, Proposal, ProposalId, ProposalRecord, ProposalStatus,
};
use seisan_types::membership::{MemberEntry, MemberStatus, Membership, MembershipError};
use seisan_types::state::StateView;
use seisan_types::{codec, Height, Member, MemberId, PublicKey, Role, ACTIVATION_DELAY_BLOCKS};
use serde::{Deserialize, Serialize};

/// The most proposals open or scheduled at once (a bound on the governance work one
/// block's end may do, and on what a member can make every node store).
pub const MAX_PENDING_PROPOSALS: u32 = 64;
/// The furthest ahead a proposal's deadline may be.
pub const MAX_PROPOSAL_LIFETIME_BLOCKS: u64 = 1_000_000;
/// The longest libp2p address a member may register.
pub const MAX_P2P_ADDRESS_BYTES: usize = 256;
/// How many index keys one scan of the withdrawal tables reads at a time.
const SCAN_PAGE: usize = 64;

/// Governance counters (table `0x91`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GovernanceMeta {
    /// The last proposal id given (0: none yet).
    pub last_proposal: u64,
    /// Orders scheduled changes of one activation height by approval.
    pub next_sequence: u64,
    /// Proposals open or scheduled.
    pub pending: u32,
}

/// Why a governance transaction was refused, or a scheduled change rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GovernanceError {
    #[error("member {member} is not active, so it cannot propose")]
    NotActive { member: MemberId },
    #[error("member {member} is not a validator of the current membership, so it cannot approve")]
    NotValidator { member: MemberId },
    #[error("proposal {proposal} does not exist")]
    UnknownProposal { proposal: ProposalId },
    #[error("proposal {proposal} is no longer open ({status})")]
    NotOpen {
        proposal: ProposalId,
        status: String,
    },
    #[error("member {member} already approved proposal {proposal}")]
    AlreadyApproved {
        proposal: ProposalId,
        member: MemberId,
    },
    #[error("deadline height {expires_at_height} must be from {height} to {latest}")]
    BadDeadline {
        expires_at_height: Height,
        height: Height,
        latest: Height,
    },
    #[error("{pending} proposals are open or scheduled; the limit is {limit}")]
    TooManyPending { pending: u32, limit: u32 },
    #[error("member {member} does not exist")]
    UnknownMember { member: MemberId },
    #[error("member {member} is already removed")]
    AlreadyRemoved { member: MemberId },
    #[error("member {member} is already withdraw-only")]
    AlreadyWithdrawOnly { member: MemberId },
    #[error("member {member} is the clearing house, which cannot leave")]
    ClearingHouseCannotLeave { member: MemberId },
    #[error("member {member} still holds {what}; set it withdraw-only and remove it once it holds nothing")]
    StillHolds { member: MemberId, what: String },
    #[error("member {member} already has this key")]
    SameKey { member: MemberId },
    #[error("public key {key} is not a usable ed25519 key: {reason}")]
    BadPublicKey { key: PublicKey, reason: String },
    #[error("p2p address {address:?} must be a multiaddress of 1 to {MAX_P2P_ADDRESS_BYTES} bytes starting with '/'")]
    BadAddress { address: String },
    #[error("the resulting membership is invalid: {source}")]
    BadMembership { source: MembershipError },
    #[error("asset is invalid: {reason}")]
    BadAsset { reason: String },
    #[error("pair {base}/{quote} is invalid: {reason}")]
    BadPair {
        base: String,
        quote: String,
        reason: String,
    },
    #[error("settlement settings are invalid: {reason}")]
    BadSettlement { reason: String },
    #[error("genesis has no public_chain section, so there are no custody settings to change")]
    NoPublicChain,
    #[error("custody settings are invalid: {reason}")]
    BadCustody { reason: String },
}

impl GovernanceError {
    /// A stable machine-readable name for receipts.
    pub fn code(&self) -> &'static str {
        match self {
            GovernanceError::NotActive { .. } => "not_active",
            GovernanceError::NotValidator { .. } => "not_validator",
            GovernanceError::UnknownProposal { .. } => "unknown_proposal",
            GovernanceError::NotOpen { .. } => "proposal_not_open",
            GovernanceError::AlreadyApproved { .. } => "already_approved",
            GovernanceError::BadDeadline { .. } => "bad_deadline",
            GovernanceError::TooManyPending { .. } => "too_many_proposals",
            GovernanceError::UnknownMember { .. } => "unknown_member",
            GovernanceError::AlreadyRemoved { .. } => "already_removed",
            GovernanceError::AlreadyWithdrawOnly { .. } => "already_withdraw_only",
            GovernanceError::ClearingHouseCannotLeave { .. } => "clearing_house_cannot_leave",
            GovernanceError::StillHolds { .. } => "member_still_holds",
            GovernanceError::SameKey { .. } => "same_key",
            GovernanceError::BadPublicKey { .. } => "bad_public_key",
            GovernanceError::BadAddress { .. } => "bad_p2p_address",
            GovernanceError::BadMembership { .. } => "bad_membership",
            GovernanceError::BadAsset { .. } => "bad_asset",
            GovernanceError::BadPair { .. } => "bad_pair",
            GovernanceError::BadSettlement { .. } => "bad_settlement",
            GovernanceError::NoPublicChain => "no_public_chain",
            GovernanceError::BadCustody { .. } => "bad_custody",
        }
    }
}

impl From<GovernanceError> for ContractError {
    fn from(source: GovernanceError) -> ContractError {
        ContractError::Governance { source }
    }
}

impl Ledger<'_> {
    fn governance_meta(&mut self) -> GovernanceMeta {
        self.tables
            .governance_meta
            .get_cloned(self.view, &keys::governance_meta())
            .unwrap_or_default()
    }

    fn store_governance_meta(&mut self, meta: GovernanceMeta) {
        self.tables
            .governance_meta
            .put(keys::governance_meta(), meta);
    }

    fn load_proposal(&mut self, id: ProposalId) -> Option<ProposalRecord> {
        self.tables
            .proposals
            .get_cloned(self.view, &keys::proposal(id))
    }

    fn store_proposal(&mut self, record: ProposalRecord) {
        self.tables.proposals.put(keys::proposal(record.id), record);
    }

    /// `Propose` (rule G1).
    pub(crate) fn propose(
        &mut self,
        member: MemberId,
        proposal: &Proposal,
    ) -> Result<(), ContractError> {
        if self.config.status(member) != Some(MemberStatus::Active) {
            return Err(GovernanceError::NotActive { member }.into());
        }
        let height = self.ctx.height;
        let latest = Height(height.0.saturating_add(MAX_PROPOSAL_LIFETIME_BLOCKS));
        if proposal.expires_at_height < height || proposal.expires_at_height > latest {
            return Err(GovernanceError::BadDeadline {
                expires_at_height: proposal.expires_at_height,
                height,
                latest,
            }
            .into());
        }
        let mut meta = self.governance_meta();
        if meta.pending >= MAX_PENDING_PROPOSALS {
            return Err(GovernanceError::TooManyPending {
                pending: meta.pending,
                limit: MAX_PENDING_PROPOSALS,
            }
            .into());
        }
        let current = self.config.clone();
        self.changed_config(&current, &proposal.change)?;
        meta.last_proposal += 1;
        meta.pending += 1;
        let mut record = ProposalRecord {
            id: ProposalId(meta.last_proposal),
            proposer: member,
            change: proposal.change.clone(),
            proposed_at: height,
            expires_at_height: proposal.expires_at_height,
            approvals: Vec::new(),
            status: ProposalStatus::Open,
        };
        self.tables
            .index
            .put(keys::open_proposal(record.expires_at_height, record.id), ());
        if self.config.is_validator(member) {
            self.add_approval(&mut record, member, &mut meta);
        }
        self.store_governance_meta(meta);
        self.store_proposal(record);
        Ok(())
    }

    /// `Approve` (rule G2).
    pub(crate) fn approve(
        &mut self,
        member: MemberId,
        id: ProposalId,
    ) -> Result<(), ContractError> {
        if !self.config.is_validator(member) {
            return Err(GovernanceError::NotValidator { member }.into());
        }
        let mut record = self
            .load_proposal(id)
            .ok_or(GovernanceError::UnknownProposal { proposal: id })?;
        if record.status != ProposalStatus::Open {
            return Err(GovernanceError::NotOpen {
                proposal: id,
                status: status_name(&record.status).to_string(),
            }
            .into());
        }
        assert!(
            record.expires_at_height >= self.ctx.height,
            "an open proposal lapses at the end of its deadline block"
        );
        if record.approvals.contains(&member) {
            return Err(GovernanceError::AlreadyApproved {
                proposal: id,
                member,
            }
            .into());
        }
        let mut meta = self.governance_meta();
        self.add_approval(&mut record, member, &mut meta);
        self.store_governance_meta(meta);
        self.store_proposal(record);
        Ok(())
    }

    /// Records an approval and schedules the proposal if the current validators among
    /// its approvers now make a quorum.
    fn add_approval(
        &mut self,
        record: &mut ProposalRecord,
        member: MemberId,
        meta: &mut GovernanceMeta,
    ) {
        record.approvals.push(member);
        let counted = counted_approvals(&self.config.membership, record);
        if counted < self.config.quorum() as usize {
            return;
        }
        let activation_height = Height(self.ctx.height.0 + ACTIVATION_DELAY_BLOCKS + 1);
        record.status = ProposalStatus::Scheduled { activation_height };
        self.tables
            .index
            .delete(keys::open_proposal(record.expires_at_height, record.id));
        self.tables.index.put(
            keys::activation(activation_height, meta.next_sequence, record.id),
            (),
        );
        meta.next_sequence += 1;
    }

    /// The end-of-block governance work (rules G3 and G4).
    pub(crate) fn process_governance(&mut self) {
        let height = self.ctx.height;
        let mut meta = self.governance_meta();
        // G3: proposals whose deadline is this block lapse.
        for id in self.due(&[keys::OPEN_PROPOSAL], height.0) {
            let id = ProposalId(id);
            let mut record = self.load_proposal(id).expect("indexed proposal exists");
            assert_eq!(record.status, ProposalStatus::Open);
            let counted = counted_approvals(&self.config.membership, &record);
            record.status = ProposalStatus::Lapsed {
                reason: format!(
                    "approved by {counted} current validators by height {}, {} needed",
                    record.expires_at_height,
                    self.config.quorum()
                ),
            };
            self.tables
                .index
                .delete(keys::open_proposal(record.expires_at_height, id));
            meta.pending -= 1;
            self.store_proposal(record);
        }
        // G4: changes that govern the next block apply now, in approval order.
        let next = height.next();
        let mut cursor = None;
        let mut due = Vec::new();
        loop {
            let batch = self.index_page(&[keys::ACTIVATION], &mut cursor);
            let Some(first) = batch.first() else { break };
            if keys::leading_u64(first) > next.0 {
                break;
            }
            for key in batch {
                let activation = keys::leading_u64(&key);
                assert!(
                    activation >= next.0,
                    "change scheduled for height {activation} was not applied before {}",
                    next.0
                );
                if activation > next.0 {
                    break;
                }
                due.push(key);
            }
        }
        let mut membership_changed = false;
        for key in due {
            let id = ProposalId(keys::trailing_u64(&key));
            self.tables.index.delete(key);
            let mut record = self.load_proposal(id).expect("scheduled proposal exists");
            let current = self.config.clone();
            // The epoch advances at every boundary that scheduled a membership change,
            // applied or rejected: the block headers announced this height as the
            // epoch's end (consensus rule E2), and consensus hands over to a new epoch
            // there whatever the re-check decides.
            membership_changed |= record.change.changes_membership();
            match self.changed_config(&current, &record.change) {
                Ok(changed) => {
                    self.set_config(changed);
                    record.status = ProposalStatus::Applied { height: next };
                }
                Err(error) => {
                    record.status = ProposalStatus::Rejected {
                        reason: error.to_string(),
                    }
                }
            }
            meta.pending -= 1;
            self.store_proposal(record);
        }
        if membership_changed {
            let mut config = self.config.clone();
            config.membership.epoch = config.membership.epoch.next();
            self.set_config(config);
        }
        if meta != self.governance_meta() {
            self.store_governance_meta(meta);
        }
    }

    /// The configuration after `change`, or why it cannot apply to `config` now.
    fn changed_config(
        &mut self,
        config: &Consortium,
        change: &GovernanceChange,
    ) -> Result<Consortium, GovernanceError> {
        let mut next = config.clone();
        match change {
            GovernanceChange::AddMember {
                name,
                role,
                public_key,
                validator,
                p2p_address,
            } => {
                check_public_key(public_key)?;
                if let Some(address) = p2p_address {
                    if address.is_empty()
                        || address.len() > MAX_P2P_ADDRESS_BYTES
                        || !address.starts_with('/')
                    {
                        return Err(GovernanceError::BadAddress {
                            address: address.clone(),
                        });
                    }
                }
                next.membership.members.push(MemberEntry {
                    member: Member {
                        name: name.clone(),
                        role: *role,
                        public_key: *public_key,
                        validator: *validator,
                        p2p_address: p2p_address.clone(),
                    },
                    status: MemberStatus::Active,
                });
            }
            GovernanceChange::RemoveMember { member } => {
                let member = *member;
                self.leaving(config, member)?;
                if let Some(what) = self.holdings(member) {
                    return Err(GovernanceError::StillHolds { member, what });
                }
                let name = config.member(member).expect("checked").name.clone();
                next.membership.members[member.0 as usize].status = MemberStatus::Removed;
                if let Some(chain) = next.public_chain.as_mut() {
                    chain
                        .registered_addresses
                        .retain(|registered| registered.member != name);
                }
            }
            GovernanceChange::SetWithdrawOnly { member } => {
                let member = *member;
                self.leaving(config, member)?;
                if config.status(member) == Some(MemberStatus::WithdrawOnly) {
                    return Err(GovernanceError::AlreadyWithdrawOnly { member });
                }
                next.membership.members[member.0 as usize].status = MemberStatus::WithdrawOnly;
            }
            GovernanceChange::RotateKey { member, public_key } => {
                let member = *member;
                match config.status(member) {
                    None => return Err(GovernanceError::UnknownMember { member }),
                    Some(MemberStatus::Removed) => {
                        return Err(GovernanceError::AlreadyRemoved { member })
                    }
                    Some(_) => {}
                }
                check_public_key(public_key)?;
                let entry = &mut next.membership.members[member.0 as usize];
                if entry.member.public_key == *public_key {
                    return Err(GovernanceError::SameKey { member });
                }
                entry.member.public_key = *public_key;
            }
            GovernanceChange::SetQuorum { quorum } => next.membership.quorum = *quorum,
            GovernanceChange::AddAsset(asset) => {
                check_asset(asset).map_err(|error| GovernanceError::BadAsset {
                    reason: error.to_string(),
                })?;
                if config.asset_by_symbol(&asset.symbol).is_some() {
                    return Err(GovernanceError::BadAsset {
                        reason: format!("symbol {} is taken", asset.symbol),
                    });
                }
                if config.assets.len() >= MAX_ASSETS {
                    return Err(GovernanceError::BadAsset {
                        reason: format!("the consortium already has {MAX_ASSETS} assets"),
                    });
                }
                next.assets.push(asset.clone());
            }
            GovernanceChange::AddPair { base, quote } => {
                let bad = |reason: &str| GovernanceError::BadPair {
                    base: base.clone(),
                    quote: quote.clone(),
                    reason: reason.to_string(),
                };
                let (base_id, _) = config
                    .asset_by_symbol(base)
                    .ok_or_else(|| bad("unknown base asset"))?;
                let (quote_id, _) = config
                    .asset_by_symbol(quote)
                    .ok_or_else(|| bad("unknown quote asset"))?;
                if base_id == quote_id {
                    return Err(bad("base and quote are the same"));
                }
                let pair = seisan_types::clearing::Pair {
                    base: base_id,
                    quote: quote_id,
                };
                if config.has_pair(pair) {
                    return Err(bad("already traded"));
                }
                next.pairs.push(pair);
            }
            GovernanceChange::SetSettlement(settings) => {
                settings
                    .validate()
                    .map_err(|reason| GovernanceError::BadSettlement { reason })?;
                next.settlement = settings.clone();
            }
            GovernanceChange::SetCustody {
                registered_addresses,
                hot_cap_bps,
            } => {
                let current = config
                    .public_chain
                    .as_ref()
                    .ok_or(GovernanceError::NoPublicChain)?;
                let settings = PublicChainSettings {
                    registered_addresses: registered_addresses.clone(),
                    hot_cap_bps: *hot_cap_bps,
                    ..current.clone()
                };
                check_custody(config, &settings)?;
                next.public_chain = Some(settings);
            }
        }
        next.membership
            .validate()
            .map_err(|source| GovernanceError::BadMembership { source })?;
        Ok(next)
    }

    /// Checks that `member` exists, is not removed and is not the clearing house.
    fn leaving(&self, config: &Consortium, member: MemberId) -> Result<(), GovernanceError> {
        match config.status(member) {
            None => Err(GovernanceError::UnknownMember { member }),
            Some(MemberStatus::Removed) => Err(GovernanceError::AlreadyRemoved { member }),
            Some(_) if config.member(member).expect("exists").role == Role::ClearingHouse => {
                Err(GovernanceError::ClearingHouseCannotLeave { member })
            }
            Some(_) => Ok(()),
        }
    }

    /// What `member` still holds (rule G5), or `None` if nothing.
    fn holdings(&mut self, member: MemberId) -> Option<String> {
        for index in 0..self.config.assets.len() {
            let asset = seisan_types::AssetId(index as u32);
            let balance = self.balance(member, asset);
            if !balance.inventory.is_zero()
                || !balance.locked.is_zero()
                || !balance.customers.is_zero()
            {
                let symbol = &self.config.assets[index].symbol;
                return Some(format!(
                    "a balance of {symbol} (inventory {}, locked {}, customers {})",
                    balance.inventory, balance.locked, balance.customers
                ));
            }
        }
        let mut cursor = None;
        if !self
            .index_page(&keys::member_order_prefix(member), &mut cursor)
            .is_empty()
        {
            return Some("open orders or quotes".into());
        }
        let mut prefix = vec![keys::OPEN_TOP_UP];
        prefix.extend_from_slice(&member.0.to_be_bytes());
        let mut cursor = None;
        if !self.index_page(&prefix, &mut cursor).is_empty() {
            return Some("open top-up requests".into());
        }
        if self.has_open_withdrawal(member) {
            return Some("pending withdrawals".into());
        }
        None
    }

    /// Whether any pending crypto or fiat withdrawal is the member's.
    fn has_open_withdrawal(&mut self, member: MemberId) -> bool {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let batch = self.tables.custody.scan_keys(
                self.view,
                &[keys::OPEN_WITHDRAWAL],
                after.as_deref(),
                SCAN_PAGE,
            );
            for key in &batch {
                let id = seisan_types::custody::WithdrawalId(keys::trailing_u64(key));
                let value = self
                    .tables
                    .custody
                    .get_cloned(self.view, &crate::custody::withdrawal_key(id));
                if let Some(crate::custody::CustodyValue::Withdrawal(withdrawal)) = value {
                    if withdrawal.member == member {
                        return true;
                    }
                }
            }
            match batch.last() {
                Some(last) if batch.len() == SCAN_PAGE => after = Some(last.clone()),
                _ => break,
            }
        }
        let mut after: Option<Vec<u8>> = None;
        loop {
            let batch = self.tables.bank.scan_keys(
                self.view,
                &[keys::OPEN_FIAT_WITHDRAWAL],
                after.as_deref(),
                SCAN_PAGE,
            );
            for key in &batch {
                let id = seisan_types::bank::FiatWithdrawalId(keys::trailing_u64(key));
                let value = self
                    .tables
                    .bank
                    .get_cloned(self.view, &crate::bank::withdrawal_key(id));
                if let Some(crate::bank::BankValue::Withdrawal(withdrawal)) = value {
                    if withdrawal.member == member {
                        return true;
                    }
                }
            }
            match batch.last() {
                Some(last) if batch.len() == SCAN_PAGE => after = Some(last.clone()),
                _ => return false,
            }
        }
    }
}

/// A key a member is to sign and vote with must decode as an ed25519 point and not be
/// of small order: every node derives the member's network identity from it, so a key
/// that does not decode would stop every node from starting.
fn check_public_key(key: &PublicKey) -> Result<(), GovernanceError> {
    let bad = |reason: &str| GovernanceError::BadPublicKey {
        key: *key,
        reason: reason.to_string(),
    };
    let decoded = ed25519_dalek::VerifyingKey::from_bytes(&key.0)
        .map_err(|_| bad("not a point on the curve"))?;
    if decoded.is_weak() {
        return Err(bad("a small-order point"));
    }
    Ok(())
}

/// New custody settings are valid on their own and register addresses only to
/// exchanges that are not removed.
fn check_custody(
    config: &Consortium,
    settings: &PublicChainSettings,
) -> Result<(), GovernanceError> {
    settings
        .validate()
        .map_err(|reason| GovernanceError::BadCustody { reason })?;
    for registered in &settings.registered_addresses {
        match config.membership.member_by_name(&registered.member) {
            Some((_, entry))
                if entry.member.role == Role::Exchange && entry.status != MemberStatus::Removed => {
            }
            _ => {
                return Err(GovernanceError::BadCustody {
                    reason: format!(
                        "{} registers an address but is not an exchange of the consortium",
                        registered.member
                    ),
                })
            }
        }
    }
    Ok(())
}

/// How many of the proposal's approvers are validators of `membership`.
pub fn counted_approvals(membership: &Membership, record: &ProposalRecord) -> usize {
    record
        .approvals
        .iter()
        .filter(|member| membership.is_validator(**member))
        .count()
}

fn status_name(status: &ProposalStatus) -> &'static str {
    match status {
        ProposalStatus::Open => "open",
        ProposalStatus::Scheduled { .. } => "scheduled",
        ProposalStatus::Applied { .. } => "applied",
        ProposalStatus::Lapsed { .. } => "lapsed",
        ProposalStatus::Rejected { .. } => "rejected",
    }
}

// ---- queries ------------------------------------------------------------------------

fn get<V: serde::de::DeserializeOwned + Serialize>(view: &dyn StateView, key: &[u8]) -> Option<V> {
    view.get(key).map(|bytes| {
        codec::decode(&bytes)
            .unwrap_or_else(|error| panic!("undecodable state at {key:?}: {error}"))
    })
}

/// The consortium's configuration in `view` (a state after [`crate::genesis_writes`]).
pub fn consortium(view: &dyn StateView) -> Consortium {
    get(view, &keys::consortium()).expect(
        "state has no consortium configuration: apply contracts::genesis_writes at height 0",
    )
}

/// The configuration in `view`, or the genesis one if `view` holds none yet (an empty
/// state, before [`crate::genesis_writes`]).
pub fn consortium_or_genesis(view: &dyn StateView, genesis: &seisan_types::Genesis) -> Consortium {
    get(view, &keys::consortium()).unwrap_or_else(|| Consortium::from_genesis(genesis))
}

/// The membership in `view`: after block `L`, the one that votes on block `L + 1`.
pub fn membership(view: &dyn StateView) -> Membership {
    consortium(view).membership
}

/// Every scheduled change, by activation height then approval order.
pub fn scheduled_activations(view: &dyn StateView) -> Vec<(Height, ProposalId)> {
    let mut found = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let batch = view.scan(&[keys::ACTIVATION], after.as_deref(), SCAN_PAGE);
        for (key, _) in &batch {
            found.push((
                Height(keys::leading_u64(key)),
                ProposalId(keys::trailing_u64(key)),
            ));
        }
        match batch.last() {
            Some((last, _)) if batch.len() == SCAN_PAGE => after = Some(last.clone()),
            _ => return found,
        }
    }
}

/// The last height of the current epoch, if the state has a membership change
/// scheduled: the block headers' `epoch_end` (consensus rule E2). It is one below the
/// smallest activation height of a scheduled membership change, since such a change
/// applies at the end of that block (G4) and the next epoch votes from the one after.
pub fn epoch_end(view: &dyn StateView) -> Option<Height> {
    scheduled_activations(view)
        .into_iter()
        .filter(|(_, id)| {
            get::<ProposalRecord>(view, &keys::proposal(*id))
                .is_some_and(|record| record.change.changes_membership())
        })
        .map(|(activation, _)| {
            assert!(activation.0 >= 1, "activation heights follow an approval");
            Height(activation.0 - 1)
        })
        .min()
}

/// A proposal as the API shows it: approvers by name, and how many count now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProposalView {
    pub id: ProposalId,
    pub proposer: MemberId,
    pub proposer_name: String,
    pub kind: String,
    pub change: GovernanceChange,
    pub proposed_at: Height,
    pub expires_at_height: Height,
    /// Approvers' names in approval order.
    pub approvals: Vec<String>,
    /// Approvers that are validators of the current membership.
    pub counted_approvals: usize,
    /// The current quorum.
    pub quorum: u32,
    pub status: ProposalStatus,
}

fn view_of(membership: &Membership, record: ProposalRecord) -> ProposalView {
    let name = |member: MemberId| {
        membership
            .member(member)
            .map_or_else(|| member.to_string(), |entry| entry.member.name.clone())
    };
    ProposalView {
        id: record.id,
        proposer: record.proposer,
        proposer_name: name(record.proposer),
        kind: record.change.kind_name().to_string(),
        counted_approvals: counted_approvals(membership, &record),
        quorum: membership.quorum,
        approvals: record
            .approvals
            .iter()
            .map(|member| name(*member))
            .collect(),
        change: record.change,
        proposed_at: record.proposed_at,
        expires_at_height: record.expires_at_height,
        status: record.status,
    }
}

/// One proposal.
pub fn proposal(view: &dyn StateView, id: ProposalId) -> Option<ProposalView> {
    let record: ProposalRecord = get(view, &keys::proposal(id))?;
    Some(view_of(&membership(view), record))
}

/// Proposals in id order, after `start_after`, at most `limit` (capped at
/// [`crate::query::MAX_QUERY_LIMIT`]).
pub fn proposals(
    view: &dyn StateView,
    start_after: Option<ProposalId>,
    limit: usize,
) -> Vec<ProposalView> {
    let membership = membership(view);
    let after = start_after.map(keys::proposal);
    view.scan(
        &[keys::PROPOSAL],
        after.as_deref(),
        limit.min(crate::query::MAX_QUERY_LIMIT),
    )
    .into_iter()
    .map(|(key, bytes)| {
        let record: ProposalRecord = codec::decode(&bytes)
            .unwrap_or_else(|error| panic!("undecodable state at {key:?}: {error}"));
        view_of(&membership, record)
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::BlockContext;
    use seisan_types::state::MapView;
    use seisan_types::{ChainId, SettlementSettings};

    fn key_of(seed: u8) -> PublicKey {
        seisan_crypto::Keypair::from_seed([seed; 32]).public_key()
    }

    fn genesis() -> seisan_types::Genesis {
        let member = |name: &str, role: Role, key: u8, validator: bool| Member {
            name: name.into(),
            role,
            public_key: key_of(key),
            validator,
            p2p_address: None,
        };
        seisan_types::Genesis {
            chain_id: ChainId("seisan-dev-unit".into()),
            genesis_time_ms: 1_000,
            quorum: 2,
            members: vec![
                member("clearing-house", Role::ClearingHouse, 1, true),
                member("exchange-a", Role::Exchange, 2, true),
                member("exchange-b", Role::Exchange, 3, true),
            ],
            assets: vec![seisan_types::Asset {
                symbol: "JPY".into(),
                kind: seisan_types::AssetKind::Fiat,
                scale: 0,
                contract: None,
            }],
            pairs: vec![],
            opening_balances: vec![],
            settlement: SettlementSettings::default(),
            public_chain: None,
        }
    }

    /// The refusal a change gets against the genesis configuration, by code.
    fn refusal(change: GovernanceChange) -> Option<&'static str> {
        let genesis = genesis();
        let view = MapView::default();
        let ctx = BlockContext {
            height: Height(1),
            timestamp_ms: 2_000,
            proposer: MemberId(0),
        };
        let mut ledger = Ledger::new(&view, &genesis, ctx);
        let config = ledger.config.clone();
        ledger
            .changed_config(&config, &change)
            .err()
            .map(|error| error.code())
    }

    #[test]
    fn a_change_that_could_never_apply_names_its_reason() {
        let custody = GovernanceChange::SetCustody {
            registered_addresses: vec![],
            hot_cap_bps: 100,
        };
        assert_eq!(refusal(custody), Some("no_public_chain"));
        let pair = GovernanceChange::AddPair {
            base: "JPY".into(),
            quote: "JPY".into(),
        };
        assert_eq!(refusal(pair), Some("bad_pair"));
        let same = GovernanceChange::RotateKey {
            member: MemberId(1),
            public_key: key_of(2),
        };
        assert_eq!(refusal(same), Some("same_key"));
        // [2; 32] is not the encoding of any curve point.
        let off_curve = GovernanceChange::RotateKey {
            member: MemberId(1),
            public_key: PublicKey([2; 32]),
        };
        assert_eq!(refusal(off_curve), Some("bad_public_key"));
        let unknown = GovernanceChange::SetWithdrawOnly {
            member: MemberId(9),
        };
        assert_eq!(refusal(unknown), Some("unknown_member"));
        let address = GovernanceChange::AddMember {
            name: "exchange-c".into(),
            role: Role::Exchange,
            public_key: key_of(4),
            validator: false,
            p2p_address: Some("127.0.0.1:7000".into()),
        };
        assert_eq!(refusal(address), Some("bad_p2p_address"));
        let settlement = GovernanceChange::SetSettlement(SettlementSettings {
            order_top_up_deadline_ms: 0,
            ..SettlementSettings::default()
        });
        assert_eq!(refusal(settlement), Some("bad_settlement"));
        // 4 validators need a quorum of 3.
        let validator = GovernanceChange::AddMember {
            name: "exchange-c".into(),
            role: Role::Exchange,
            public_key: key_of(4),
            validator: true,
            p2p_address: None,
        };
        assert_eq!(refusal(validator), Some("bad_membership"));
        assert_eq!(refusal(GovernanceChange::SetQuorum { quorum: 3 }), None);
        // An observer joins as a non-validator only: one that would vote is refused.
        let observer = |validator: bool| GovernanceChange::AddMember {
            name: "regulator".into(),
            role: Role::Observer,
            public_key: key_of(4),
            validator,
            p2p_address: Some("/ip4/127.0.0.1/tcp/7110".into()),
        };
        assert_eq!(refusal(observer(false)), None);
        let genesis = genesis();
        let view = MapView::default();
        let ctx = BlockContext {
            height: Height(1),
            timestamp_ms: 2_000,
            proposer: MemberId(0),
        };
        let mut ledger = Ledger::new(&view, &genesis, ctx);
        let config = ledger.config.clone();
        let error = ledger
            .changed_config(&config, &observer(true))
            .expect_err("an observer that validates");
        assert!(
            error
                .to_string()
                .contains("is an observer, so it cannot be a validator"),
            "{error}"
        );
    }

    #[test]
    fn only_current_validators_count_as_approvals() {
        let mut membership = Membership::from_genesis(&genesis());
        let record = ProposalRecord {
            id: ProposalId(1),
            proposer: MemberId(0),
            change: GovernanceChange::SetQuorum { quorum: 3 },
            proposed_at: Height(1),
            expires_at_height: Height(10),
            approvals: vec![MemberId(0), MemberId(2)],
            status: ProposalStatus::Open,
        };
        assert_eq!(counted_approvals(&membership, &record), 2);
        // exchange-b stops validating (removed): its approval no longer counts.
        membership.members[2].status = MemberStatus::Removed;
        assert_eq!(counted_approvals(&membership, &record), 1);
    }
}
