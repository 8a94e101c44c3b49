//! Custody on a public chain: the genesis section that describes it, and the facts
//! members attest about it.
//!
//! The interface is chain-neutral: addresses and transaction hashes are canonical
//! strings (lowercase `0x`-hex on Ethereum), and a deposit is identified by (chain,
//! transaction, position in it), which a Bitcoin adapter can fill with (txid, vout).
//! The clearing house holds the consortium's coins in a hot address (pays withdrawals)
//! and a cold address (the rest); a genesis policy caps the hot share.

use crate::amount::Amount;
use crate::hash::Hash;
use crate::ids::{AssetId, MemberId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The most registered addresses genesis may name.
pub const MAX_REGISTERED_ADDRESSES: usize = 1024;
/// The default cap on the hot wallet's share of custody, in basis points (5 percent:
/// the Japanese rule that at least 95 percent of customer crypto is held cold).
pub const DEFAULT_HOT_CAP_BPS: u32 = 500;
/// Basis points in one whole.
pub const BPS_PER_WHOLE: u32 = 10_000;
/// The most confirmations a genesis may require (a sanity bound, not a policy).
pub const MAX_CONFIRMATIONS: u64 = 10_000;

/// A public-chain account address in canonical form (lowercase `0x` + 40 hex digits on
/// Ethereum).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct ChainAddress(pub String);

impl ChainAddress {
    /// Whether this is a canonical Ethereum address.
    pub fn is_canonical(&self) -> bool {
        is_lower_hex(&self.0, 20)
    }
}

impl fmt::Display for ChainAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A public-chain transaction hash in canonical form (lowercase `0x` + 64 hex digits).
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct ChainTxHash(pub String);

impl ChainTxHash {
    pub fn is_canonical(&self) -> bool {
        is_lower_hex(&self.0, 32)
    }
}

impl fmt::Display for ChainTxHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_lower_hex(text: &str, bytes: usize) -> bool {
    text.len() == 2 + 2 * bytes
        && text.starts_with("0x")
        && text[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An exchange's public-chain address: deposits from it credit the exchange, and its
/// withdrawals may go only to its registered addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisteredAddress {
    /// The member's name in genesis.
    pub member: String,
    pub address: ChainAddress,
}

/// The genesis `public_chain` section. Absent: no crypto custody (crypto assets then
/// exist only through opening balances).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicChainSettings {
    /// The public chain's own chain id (31337 for anvil, 1 for Ethereum mainnet).
    pub chain_id: u64,
    /// Confirmations K a deposit or payout needs before a node attests it: the block
    /// holding it and K-1 on top.
    pub confirmations: u64,
    /// The clearing house's hot trust address (receives deposits, pays withdrawals).
    pub hot_address: ChainAddress,
    /// The clearing house's cold trust address.
    pub cold_address: ChainAddress,
    #[serde(default)]
    pub registered_addresses: Vec<RegisteredAddress>,
    /// The most the hot wallet may hold, as basis points of custody (hot + cold) per
    /// asset; the excess is swept to cold.
    #[serde(default = "default_hot_cap_bps")]
    pub hot_cap_bps: u32,
}

fn default_hot_cap_bps() -> u32 {
    DEFAULT_HOT_CAP_BPS
}

impl PublicChainSettings {
    /// The member names whose registered addresses include `address`.
    pub fn owner_of(&self, address: &ChainAddress) -> Option<&str> {
        self.registered_addresses
            .iter()
            .find(|registered| &registered.address == address)
            .map(|registered| registered.member.as_str())
    }

    /// Whether `address` is one of `member`'s registered addresses.
    pub fn is_registered_to(&self, member: &str, address: &ChainAddress) -> bool {
        self.registered_addresses
            .iter()
            .any(|registered| registered.member == member && &registered.address == address)
    }

    /// Checks the section on its own (member names are checked by the genesis).
    pub fn validate(&self) -> Result<(), String> {
        if self.confirmations == 0 || self.confirmations > MAX_CONFIRMATIONS {
            return Err(format!(
                "confirmations must be 1 to {MAX_CONFIRMATIONS}, got {}",
                self.confirmations
            ));
        }
        if self.hot_cap_bps > BPS_PER_WHOLE {
            return Err(format!(
                "hot_cap_bps must be at most {BPS_PER_WHOLE}, got {}",
                self.hot_cap_bps
            ));
        }
        for address in [&self.hot_address, &self.cold_address] {
            if !address.is_canonical() {
                return Err(format!(
                    "address {address} is not lowercase 0x-hex of 20 bytes"
                ));
            }
        }
        if self.hot_address == self.cold_address {
            return Err("hot and cold addresses must differ".into());
        }
        if self.registered_addresses.len() > MAX_REGISTERED_ADDRESSES {
            return Err(format!(
                "{} registered addresses; the limit is {MAX_REGISTERED_ADDRESSES}",
                self.registered_addresses.len()
            ));
        }
        for (index, registered) in self.registered_addresses.iter().enumerate() {
            let address = &registered.address;
            if !address.is_canonical() {
                return Err(format!(
                    "address {address} is not lowercase 0x-hex of 20 bytes"
                ));
            }
            if address == &self.hot_address || address == &self.cold_address {
                return Err(format!("registered address {address} is a custody address"));
            }
            if self.registered_addresses[..index]
                .iter()
                .any(|other| &other.address == address)
            {
                return Err(format!("address {address} is registered twice"));
            }
        }
        Ok(())
    }
}

/// What a node saw on the public chain: a transfer into the hot address, K deep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DepositFact {
    /// The public chain's id (must match genesis).
    pub chain_id: u64,
    pub tx_hash: ChainTxHash,
    /// The token Transfer log's index in the block; `None` for a native-coin transfer.
    pub log_index: Option<u64>,
    pub from: ChainAddress,
    pub asset: AssetId,
    pub amount: Amount,
}

impl DepositFact {
    /// The deposit's identity: one per (chain, transaction, log). Two attestations of
    /// the same deposit share it even if they disagree on the other facts.
    pub fn deposit_id(&self) -> DepositId {
        let log = match self.log_index {
            Some(index) => index.to_be_bytes().to_vec(),
            None => Vec::new(),
        };
        DepositId(Hash::tagged(
            crate::tags::SEISAN_CUSTODY_DEPOSIT_ID_V1,
            &[
                &self.chain_id.to_be_bytes(),
                self.tx_hash.0.as_bytes(),
                &log,
            ],
        ))
    }
}

impl DepositFact {
    /// The hash of everything the fact states (attestations of one deposit id agree
    /// exactly when their content hashes are equal).
    pub fn content_hash(&self) -> Hash {
        Hash::tagged(
            crate::tags::SEISAN_ATTESTED_FACT_V1,
            &[b"deposit", &crate::codec::encode(self)],
        )
    }
}

/// Identifies one public-chain deposit (see [`DepositFact::deposit_id`]).
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
#[serde(transparent)]
pub struct DepositId(pub Hash);

impl fmt::Display for DepositId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What became of a deposit once q members attested identical facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DepositOutcome {
    /// Credited to the exchange that owns the sending address.
    Credited { member: MemberId },
    /// The sender is not a registered address: reported, not credited (the clearing
    /// house returns such coins outside the ledger).
    Unregistered,
}

/// The contracts' record of one deposit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DepositRecord {
    pub id: DepositId,
    /// Each distinct version of the facts with the members that attested it, in the
    /// order first seen. A member attests a deposit at most once.
    #[schema(value_type = Vec<crate::schema::DepositVersion>)]
    pub attestations: Vec<(DepositFact, Vec<MemberId>)>,
    /// Set once, when a version reaches the quorum; never changes afterwards.
    #[schema(value_type = Option<crate::schema::DepositSettled>)]
    pub outcome: Option<(DepositFact, DepositOutcome)>,
}

/// Identifies a withdrawal (a counter in the contracts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WithdrawalId(pub u64);

crate::schema::id_schema!(
    WithdrawalId,
    u64,
    0,
    "Identifies a withdrawal (a counter in the contracts)."
);

impl fmt::Display for WithdrawalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a withdrawal stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawalStatus {
    /// Debited from the member; waiting for the clearing house to pay it (and, if the
    /// hot wallet is short, for a refill).
    Pending,
    /// The clearing house broadcast this payout; waiting for K confirmations and q
    /// attestations.
    Sent { tx_hash: ChainTxHash },
    /// q members attested the payout: done.
    Completed { tx_hash: ChainTxHash },
}

/// A withdrawal: debited from the member's inventory when requested, paid from the
/// hot wallet by the clearing house.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Withdrawal {
    pub id: WithdrawalId,
    pub member: MemberId,
    pub asset: AssetId,
    pub amount: Amount,
    pub to: ChainAddress,
    pub status: WithdrawalStatus,
    /// Members that attested the payout named in `status` (reset when the clearing
    /// house names another payout transaction).
    pub payout_attesters: Vec<MemberId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PublicChainSettings {
        PublicChainSettings {
            chain_id: 31337,
            confirmations: 2,
            hot_address: ChainAddress(format!("0x{}", "1".repeat(40))),
            cold_address: ChainAddress(format!("0x{}", "2".repeat(40))),
            registered_addresses: vec![RegisteredAddress {
                member: "exchange-a".into(),
                address: ChainAddress(format!("0x{}", "a".repeat(40))),
            }],
            hot_cap_bps: DEFAULT_HOT_CAP_BPS,
        }
    }

    #[test]
    fn validates_addresses_and_bounds() {
        settings().validate().unwrap();
        let mut bad = settings();
        bad.hot_address = ChainAddress(format!("0x{}", "A".repeat(40)));
        assert!(bad.validate().is_err(), "upper case is not canonical");
        let mut bad = settings();
        bad.cold_address = bad.hot_address.clone();
        assert!(bad.validate().is_err());
        let mut bad = settings();
        bad.confirmations = 0;
        assert!(bad.validate().is_err());
        let mut bad = settings();
        bad.registered_addresses
            .push(bad.registered_addresses[0].clone());
        assert!(bad.validate().is_err());
    }

    #[test]
    fn deposit_id_ignores_disputed_facts_but_not_position() {
        let fact = DepositFact {
            chain_id: 31337,
            tx_hash: ChainTxHash(format!("0x{}", "5".repeat(64))),
            log_index: None,
            from: ChainAddress(format!("0x{}", "a".repeat(40))),
            asset: AssetId(0),
            amount: Amount(7),
        };
        let mut other = fact.clone();
        other.amount = Amount(8);
        assert_eq!(fact.deposit_id(), other.deposit_id());
        other.log_index = Some(0);
        assert_ne!(fact.deposit_id(), other.deposit_id());
        assert_eq!(settings().owner_of(&fact.from), Some("exchange-a"));
    }
}
