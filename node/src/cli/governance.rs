//! `seisan governance propose|approve|list|show`: changes to the consortium that a
//! member proposes and the current validators approve (see the contracts'
//! `governance` module for the rules). Members are named as the node's membership
//! names them, so members added by governance resolve too.

use super::commands::transact;
use super::session::Session;
use super::text::{Align, Table};
use super::SubmitOptions;
use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use seisan_api::v1;
use seisan_contracts::governance::ProposalView;
use seisan_types::amount::{Asset, AssetKind};
use seisan_types::custody::RegisteredAddress;
use seisan_types::governance::{GovernanceChange, Proposal, ProposalId, ProposalStatus};
use seisan_types::membership::Membership;
use seisan_types::{Height, MemberId, PublicKey, Role, SettlementSettings, TxBody};
use serde_json::Value;

/// How many blocks a proposal stays open unless `--expires-in` says otherwise.
pub const DEFAULT_EXPIRES_IN_BLOCKS: u64 = 1_000;

#[derive(Args, Debug)]
pub struct GovernanceCommand {
    #[command(subcommand)]
    pub action: GovernanceAction,
    #[command(flatten)]
    pub options: SubmitOptions,
}

#[derive(Subcommand, Debug)]
pub enum GovernanceAction {
    /// Propose a change (any active member); a validator's proposal is its approval.
    Propose {
        #[command(subcommand)]
        change: ChangeArgs,
        /// Blocks from the current height until the proposal lapses unapproved.
        #[arg(long, default_value_t = DEFAULT_EXPIRES_IN_BLOCKS, global = true)]
        expires_in: u64,
    },
    /// Approve an open proposal (validators of the current membership).
    Approve {
        /// The proposal id.
        id: u64,
    },
    /// The membership, the scheduled changes and every proposal.
    List,
    /// One proposal with its change, approvals and status.
    Show {
        /// The proposal id.
        id: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum ChangeArgs {
    /// Add a member (it gets the next member id).
    AddMember {
        /// Unique name, 1 to 64 of [a-z0-9-].
        name: String,
        /// exchange, clearing-house or observer (an observer is never a validator).
        #[arg(long, default_value = "exchange")]
        role: String,
        /// Its ed25519 public key, 64 hex digits.
        #[arg(long)]
        public_key: String,
        /// Whether it runs a validator node.
        #[arg(long)]
        validator: bool,
        /// The libp2p multiaddress others dial, e.g. /ip4/127.0.0.1/tcp/7104.
        #[arg(long)]
        p2p_address: Option<String>,
    },
    /// Remove a member that holds nothing.
    RemoveMember { member: String },
    /// Put a member on its way out: no new orders, quotes, confirmations or allocations.
    WithdrawOnly { member: String },
    /// Replace a member's key.
    RotateKey {
        member: String,
        /// The new ed25519 public key, 64 hex digits.
        #[arg(long)]
        public_key: String,
    },
    /// Change the quorum (must keep 2q > n).
    SetQuorum { quorum: u32 },
    /// Add an asset.
    AddAsset {
        /// Symbol, 1 to 16 of [A-Z0-9].
        symbol: String,
        /// native-coin, token or fiat.
        #[arg(long)]
        kind: String,
        /// Decimals of one whole unit.
        #[arg(long)]
        scale: u32,
        /// A token's contract address on the public chain.
        #[arg(long)]
        contract: Option<String>,
    },
    /// Add a trading pair, `BASE/QUOTE`.
    AddPair { pair: String },
    /// Replace the settlement settings with a JSON object (the genesis `settlement` form).
    SetSettlement { json: String },
    /// Replace the registered withdrawal addresses (JSON list of {member, address}) and
    /// the hot-wallet cap.
    SetCustody {
        /// JSON list, e.g. '[{"member":"exchange-a","address":"0x..."}]'.
        #[arg(long)]
        registered: String,
        /// The hot wallet's cap, basis points of custody per asset.
        #[arg(long)]
        hot_cap_bps: u32,
    },
}

pub fn run(command: GovernanceCommand) -> anyhow::Result<()> {
    let mut session = Session::open(&command.options.client)?;
    match command.action {
        GovernanceAction::Propose { change, expires_in } => {
            let document: v1::Governance = session.node.get_json("/v1/governance?limit=1")?;
            let change = change_of(&document.membership, change)?;
            let expires_at_height = Height(
                document
                    .height
                    .0
                    .checked_add(expires_in)
                    .ok_or_else(|| anyhow!("--expires-in {expires_in} is too large"))?,
            );
            let body = TxBody::Propose(Proposal {
                change,
                expires_at_height,
            });
            transact(&mut session, &command.options, body)
        }
        GovernanceAction::Approve { id } => {
            let body = TxBody::Approve {
                proposal: ProposalId(id),
            };
            transact(&mut session, &command.options, body)
        }
        GovernanceAction::List => list(&session),
        GovernanceAction::Show { id } => show(&session, id),
    }
}

/// A member by name or id in the node's membership.
fn member(membership: &Membership, text: &str) -> anyhow::Result<MemberId> {
    if let Some((id, _)) = membership.member_by_name(text) {
        return Ok(id);
    }
    if let Ok(id) = text.parse::<u32>() {
        if membership.member(MemberId(id)).is_some() {
            return Ok(MemberId(id));
        }
    }
    let names: Vec<&str> = membership
        .members
        .iter()
        .map(|entry| entry.member.name.as_str())
        .collect();
    bail!("unknown member {text:?}; members are {}", names.join(", "))
}

fn public_key(text: &str) -> anyhow::Result<PublicKey> {
    serde_json::from_value(Value::String(text.to_string()))
        .map_err(|error| anyhow!("public key {text:?}: {error}"))
}

fn change_of(membership: &Membership, change: ChangeArgs) -> anyhow::Result<GovernanceChange> {
    Ok(match change {
        ChangeArgs::AddMember {
            name,
            role,
            public_key: key,
            validator,
            p2p_address,
        } => GovernanceChange::AddMember {
            name,
            role: match role.as_str() {
                "exchange" => Role::Exchange,
                "clearing-house" | "clearing_house" => Role::ClearingHouse,
                "observer" => Role::Observer,
                other => bail!("role {other:?}: use exchange, clearing-house or observer"),
            },
            public_key: public_key(&key)?,
            validator,
            p2p_address,
        },
        ChangeArgs::RemoveMember { member: text } => GovernanceChange::RemoveMember {
            member: member(membership, &text)?,
        },
        ChangeArgs::WithdrawOnly { member: text } => GovernanceChange::SetWithdrawOnly {
            member: member(membership, &text)?,
        },
        ChangeArgs::RotateKey {
            member: text,
            public_key: key,
        } => GovernanceChange::RotateKey {
            member: member(membership, &text)?,
            public_key: public_key(&key)?,
        },
        ChangeArgs::SetQuorum { quorum } => GovernanceChange::SetQuorum { quorum },
        ChangeArgs::AddAsset {
            symbol,
            kind,
            scale,
            contract,
        } => GovernanceChange::AddAsset(Asset {
            symbol,
            kind: match kind.as_str() {
                "native-coin" | "native_coin" => AssetKind::NativeCoin,
                "token" => AssetKind::Token,
                "fiat" => AssetKind::Fiat,
                other => bail!("asset kind {other:?}: use native-coin, token or fiat"),
            },
            scale,
            contract,
        }),
        ChangeArgs::AddPair { pair } => {
            let (base, quote) = pair
                .split_once('/')
                .ok_or_else(|| anyhow!("pair {pair:?}: write it BASE/QUOTE"))?;
            GovernanceChange::AddPair {
                base: base.to_ascii_uppercase(),
                quote: quote.to_ascii_uppercase(),
            }
        }
        ChangeArgs::SetSettlement { json } => {
            let settings: SettlementSettings = serde_json::from_str(&json)
                .map_err(|error| anyhow!("settlement settings: {error}"))?;
            GovernanceChange::SetSettlement(settings)
        }
        ChangeArgs::SetCustody {
            registered,
            hot_cap_bps,
        } => {
            let registered_addresses: Vec<RegisteredAddress> = serde_json::from_str(&registered)
                .map_err(|error| anyhow!("registered addresses: {error}"))?;
            GovernanceChange::SetCustody {
                registered_addresses,
                hot_cap_bps,
            }
        }
    })
}

/// One line a person reads for a change.
pub fn describe_change(membership: &Membership, change: &GovernanceChange) -> String {
    let name = |id: MemberId| {
        membership
            .member(id)
            .map_or_else(|| id.to_string(), |entry| entry.member.name.clone())
    };
    match change {
        GovernanceChange::AddMember {
            name: new,
            role,
            validator,
            ..
        } => format!(
            "add {new} ({}{})",
            match role {
                Role::Exchange => "exchange",
                Role::ClearingHouse => "clearing house",
                Role::Observer => "observer",
            },
            if *validator { ", validator" } else { "" }
        ),
        GovernanceChange::RemoveMember { member } => format!("remove {}", name(*member)),
        GovernanceChange::SetWithdrawOnly { member } => {
            format!("{} withdraw-only", name(*member))
        }
        GovernanceChange::RotateKey { member, public_key } => {
            format!("rotate {}'s key to {public_key}", name(*member))
        }
        GovernanceChange::SetQuorum { quorum } => format!("quorum {quorum}"),
        GovernanceChange::AddAsset(asset) => format!("add asset {}", asset.symbol),
        GovernanceChange::AddPair { base, quote } => format!("add pair {base}/{quote}"),
        GovernanceChange::SetSettlement(_) => "new settlement settings".into(),
        GovernanceChange::SetCustody {
            registered_addresses,
            hot_cap_bps,
        } => format!(
            "custody: {} registered addresses, hot cap {hot_cap_bps} bps",
            registered_addresses.len()
        ),
    }
}

pub fn describe_status(status: &ProposalStatus) -> String {
    match status {
        ProposalStatus::Open => "open".into(),
        ProposalStatus::Scheduled { activation_height } => {
            format!("scheduled for height {activation_height}")
        }
        ProposalStatus::Applied { height } => format!("applied from height {height}"),
        ProposalStatus::Lapsed { reason } => format!("lapsed: {reason}"),
        ProposalStatus::Rejected { reason } => format!("rejected: {reason}"),
    }
}

/// Every proposal, through the node's pages.
/// Every proposal, through the node's pages: the first page's document with all of
/// them in its `proposals`.
fn all_proposals(session: &Session) -> anyhow::Result<v1::Governance> {
    let mut proposals: Vec<ProposalView> = Vec::new();
    let mut first: Option<v1::Governance> = None;
    loop {
        let after = proposals
            .last()
            .map(|proposal| format!("&after={}", proposal.id))
            .unwrap_or_default();
        let mut document: v1::Governance = session
            .node
            .get_json(&format!("/v1/governance?limit=1000{after}"))?;
        let page = std::mem::take(&mut document.proposals);
        let full = page.len() == 1000;
        proposals.extend(page);
        first.get_or_insert(document);
        if !full {
            let mut document = first.expect("set above");
            document.proposals = proposals;
            return Ok(document);
        }
    }
}

/// An enum's name as the JSON shows it (`clearing_house`, `withdraw_only`).
fn serde_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn list(session: &Session) -> anyhow::Result<()> {
    let document = all_proposals(session)?;
    if session.json {
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    let (membership, proposals) = (&document.membership, &document.proposals);
    println!(
        "epoch {}, quorum {} of {} validators, at height {}",
        membership.epoch,
        membership.quorum,
        membership.validators().len(),
        document.height
    );
    let mut members = Table::new(&[
        ("ID", Align::Right),
        ("MEMBER", Align::Left),
        ("ROLE", Align::Left),
        ("VALIDATOR", Align::Left),
        ("STATUS", Align::Left),
    ]);
    for (index, entry) in membership.members.iter().enumerate() {
        members.row(vec![
            index.to_string(),
            entry.member.name.clone(),
            serde_name(&entry.member.role),
            if entry.member.validator { "yes" } else { "no" }.into(),
            serde_name(&entry.status),
        ]);
    }
    print!("{}", members.render());
    let mut table = Table::new(&[
        ("ID", Align::Right),
        ("PROPOSER", Align::Left),
        ("CHANGE", Align::Left),
        ("APPROVALS", Align::Left),
        ("EXPIRES", Align::Right),
        ("STATUS", Align::Left),
    ]);
    for proposal in proposals {
        table.row(vec![
            proposal.id.to_string(),
            proposal.proposer_name.clone(),
            describe_change(membership, &proposal.change),
            format!(
                "{}/{} ({})",
                proposal.counted_approvals,
                proposal.quorum,
                proposal.approvals.join(", ")
            ),
            proposal.expires_at_height.to_string(),
            describe_status(&proposal.status),
        ]);
    }
    print!("{}", table.render());
    if table.is_empty() {
        println!("(no proposals)");
    }
    Ok(())
}

fn show(session: &Session, id: u64) -> anyhow::Result<()> {
    let path = format!("/v1/governance/{id}");
    let answer = session.node.get(&path)?;
    if session.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let v1::ProposalDocument { proposal } = session.node.decode(&path, &answer)?;
    let membership = session
        .node
        .get_json::<v1::Governance>("/v1/governance?limit=1")?
        .membership;
    println!("proposal {}", proposal.id);
    println!("  proposer   {}", proposal.proposer_name);
    println!(
        "  change     {}",
        describe_change(&membership, &proposal.change)
    );
    println!("  proposed   at height {}", proposal.proposed_at);
    println!("  expires    after height {}", proposal.expires_at_height);
    println!(
        "  approvals  {} of {} needed ({})",
        proposal.counted_approvals,
        proposal.quorum,
        proposal.approvals.join(", ")
    );
    println!("  status     {}", describe_status(&proposal.status));
    Ok(())
}
