//! The genesis document: who the members are, which of them validate, the quorum
//! threshold, the assets and trading pairs, and the settings later parts read.
//!
//! It is a JSON file (see `genesis/README.md`). [`Genesis::from_json`] parses and
//! validates it, so a `Genesis` value that exists is internally consistent: the quorum
//! is safe (2q > n), names and keys are unique, and every symbol used is declared.

use crate::amount::{Asset, AssetKind, MAX_ASSET_SCALE};
use crate::bytes::PublicKey;
use crate::codec;
use crate::hash::Hash;
use crate::ids::{AssetId, ChainId, MemberId, MAX_CHAIN_ID_BYTES};
use crate::membership::MembershipError;
use crate::tags;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The most members a genesis may name.
pub const MAX_MEMBERS: usize = 1024;
/// The most assets a genesis may declare.
pub const MAX_ASSETS: usize = 256;

/// A member's role in the consortium.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Operates custody and the bank link; there is exactly one.
    ClearingHouse,
    /// Trades, deposits and withdraws.
    Exchange,
    /// Watches: runs a node that follows and verifies the chain and serves the read API
    /// and proofs (a regulator, an auditor, a risk desk). Never a validator, so it never
    /// proposes, votes or counts toward a quorum; it holds no funds and cannot trade.
    Observer,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Unique short name, e.g. `exchange-a`.
    pub name: String,
    pub role: Role,
    /// The member's ed25519 key: it signs transactions and votes, and its libp2p
    /// identity is derived from it.
    pub public_key: PublicKey,
    /// Whether this member runs a validator node. Members that only submit
    /// transactions (extra exchange keys in a benchmark) set this to false.
    #[serde(default = "default_true")]
    pub validator: bool,
    /// The libp2p multiaddress other validators dial, e.g. `/ip4/127.0.0.1/tcp/7101`.
    #[serde(default)]
    pub p2p_address: Option<String>,
}

fn default_true() -> bool {
    true
}

/// A trading pair by asset symbols, e.g. base `ETH`, quote `JPY`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairSpec {
    pub base: String,
    pub quote: String,
}

/// An opening balance credited at height 0 (a testnet convenience; a production
/// genesis has none and credits only attested deposits).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpeningBalance {
    pub member: String,
    pub asset: String,
    /// Decimal amount in whole units, e.g. "2.5".
    pub amount: String,
}

/// The length of a day in milliseconds (settlement cut-offs are times of day, UTC).
pub const DAY_MS: u64 = 86_400_000;

/// Settlement settings the contracts read. Every field has a default, so a genesis
/// without a `settlement` section is valid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettlementSettings {
    /// Daily cut-off of the bilateral-confirmation cycle, as milliseconds after midnight
    /// UTC of the block time. `None`: cycles close only by the clearing house's
    /// `CloseCycle` transaction.
    #[serde(default)]
    pub cutoff_time_of_day_ms: Option<u64>,
    /// How long an order parked awaiting funds waits for a top-up before it is cancelled.
    #[serde(default = "default_top_up_deadline_ms")]
    pub order_top_up_deadline_ms: u64,
    /// How long a member short in a closing settlement cycle has to top up before its
    /// trades are removed from the cycle.
    #[serde(default = "default_top_up_deadline_ms")]
    pub cycle_top_up_deadline_ms: u64,
}

fn default_top_up_deadline_ms() -> u64 {
    3_600_000
}

impl SettlementSettings {
    /// Checks the settings on their own (the genesis and governance both use it).
    pub fn validate(&self) -> Result<(), String> {
        if let Some(cutoff) = self.cutoff_time_of_day_ms {
            if cutoff >= DAY_MS {
                return Err(format!(
                    "cutoff_time_of_day_ms {cutoff} must be under {DAY_MS} (one day)"
                ));
            }
        }
        if self.order_top_up_deadline_ms == 0 || self.cycle_top_up_deadline_ms == 0 {
            return Err("top-up deadlines must be at least 1 ms".into());
        }
        Ok(())
    }
}

impl Default for SettlementSettings {
    fn default() -> SettlementSettings {
        SettlementSettings {
            cutoff_time_of_day_ms: None,
            order_top_up_deadline_ms: default_top_up_deadline_ms(),
            cycle_top_up_deadline_ms: default_top_up_deadline_ms(),
        }
    }
}

/// Checks one asset on its own: a well-formed symbol, a scale within
/// [`MAX_ASSET_SCALE`], a token names its contract (the genesis and governance's
/// `AddAsset` both use it; uniqueness is the caller's).
pub fn check_asset(asset: &Asset) -> Result<(), GenesisError> {
    let symbol_ok = !asset.symbol.is_empty()
        && asset.symbol.len() <= 16
        && asset
            .symbol
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if !symbol_ok {
        return Err(GenesisError::BadAssetSymbol {
            symbol: asset.symbol.clone(),
        });
    }
    if asset.scale > MAX_ASSET_SCALE {
        return Err(GenesisError::BadAssetScale {
            symbol: asset.symbol.clone(),
            scale: asset.scale,
        });
    }
    if asset.kind == AssetKind::Token && asset.contract.is_none() {
        return Err(GenesisError::TokenWithoutContract {
            symbol: asset.symbol.clone(),
        });
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub chain_id: ChainId,
    /// Milliseconds since the Unix epoch; the timestamp of height 0.
    pub genesis_time_ms: u64,
    /// Signatures a certificate needs (q).
    pub quorum: u32,
    pub members: Vec<Member>,
    pub assets: Vec<Asset>,
    #[serde(default)]
    pub pairs: Vec<PairSpec>,
    #[serde(default)]
    pub opening_balances: Vec<OpeningBalance>,
    #[serde(default)]
    pub settlement: SettlementSettings,
    /// Crypto custody on the public chain (see [`crate::custody`]).
    #[serde(default)]
    pub public_chain: Option<crate::custody::PublicChainSettings>,
}

/// Why a genesis document was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("genesis is not valid JSON for this format: {reason}")]
    Parse { reason: String },
    #[error(
        "chain_id must be 1 to {MAX_CHAIN_ID_BYTES} bytes of [A-Za-z0-9._-], got {chain_id:?}"
    )]
    BadChainId { chain_id: String },
    #[error("genesis names no members")]
    NoMembers,
    #[error("genesis names {count} members; the limit is {MAX_MEMBERS}")]
    TooManyMembers { count: usize },
    #[error("genesis names no validators (members with validator = true)")]
    NoValidators,
    #[error("member name {name:?} is used twice")]
    DuplicateName { name: String },
    #[error("member name {name:?} must be 1 to 64 characters of [a-z0-9-]")]
    BadName { name: String },
    #[error("members {first:?} and {second:?} have the same public key")]
    DuplicateKey { first: String, second: String },
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
    #[error("member {name:?} is an observer, so it cannot be a validator (set validator = false)")]
    ObserverValidates { name: String },
    #[error("genesis must name exactly one clearing house, found {count}")]
    ClearingHouseCount { count: usize },
    #[error("asset symbol {symbol:?} is declared twice")]
    DuplicateAsset { symbol: String },
    #[error("asset symbol {symbol:?} must be 1 to 16 characters of [A-Z0-9]")]
    BadAssetSymbol { symbol: String },
    #[error("asset {symbol} has scale {scale}; the limit is {MAX_ASSET_SCALE}")]
    BadAssetScale { symbol: String, scale: u32 },
    #[error("asset {symbol} is a token but names no contract address")]
    TokenWithoutContract { symbol: String },
    #[error("genesis declares {count} assets; the limit is {MAX_ASSETS}")]
    TooManyAssets { count: usize },
    #[error("{context} names unknown asset {symbol:?}")]
    UnknownAsset { context: String, symbol: String },
    #[error("{context} names unknown member {name:?}")]
    UnknownMember { context: String, name: String },
    #[error("pair {base}/{quote} is invalid: {reason}")]
    BadPair {
        base: String,
        quote: String,
        reason: String,
    },
    #[error("public_chain settings are invalid: {reason}")]
    BadPublicChain { reason: String },
    #[error("settlement settings are invalid: {reason}")]
    BadSettlement { reason: String },
    #[error("opening balance of {member} in {asset}: {reason}")]
    BadOpeningBalance {
        member: String,
        asset: String,
        reason: String,
    },
}

impl Genesis {
    /// Parses and validates a genesis document.
    pub fn from_json(text: &str) -> Result<Genesis, GenesisError> {
        let genesis: Genesis = serde_json::from_str(text).map_err(|error| GenesisError::Parse {
            reason: error.to_string(),
        })?;
        genesis.validate()?;
        Ok(genesis)
    }

    /// Pretty JSON, as written to disk.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("genesis serializes to JSON")
    }

    /// A hash identifying this exact genesis (over its canonical binary encoding).
    pub fn hash(&self) -> Hash {
        Hash::tagged(tags::SEISAN_GENESIS_HASH_V1, &[&codec::encode(self)])
    }

    /// The domain every signature of this chain is bound to: chain id and genesis hash.
    /// Computes the hash: callers on a hot path compute it once and keep it.
    pub fn domain(&self) -> crate::ids::ChainDomain {
        crate::ids::ChainDomain {
            chain_id: self.chain_id.clone(),
            genesis: self.hash(),
        }
    }

    /// Checks every rule in the module docs.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let chain = &self.chain_id.0;
        let chain_ok = !chain.is_empty()
            && chain.len() <= MAX_CHAIN_ID_BYTES
            && chain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !chain_ok {
            return Err(GenesisError::BadChainId {
                chain_id: chain.clone(),
            });
        }
        self.validate_members()?;
        self.validate_assets()?;
        for pair in &self.pairs {
            let base = self.asset_by_symbol(&pair.base);
            let quote = self.asset_by_symbol(&pair.quote);
            let bad = |reason: &str| GenesisError::BadPair {
                base: pair.base.clone(),
                quote: pair.quote.clone(),
                reason: reason.to_string(),
            };
            match (base, quote) {
                (None, _) => return Err(bad("unknown base asset")),
                (_, None) => return Err(bad("unknown quote asset")),
                (Some((a, _)), Some((b, _))) if a == b => {
                    return Err(bad("base and quote are the same"))
                }
                _ => {}
            }
            let count = self
                .pairs
                .iter()
                .filter(|p| p.base == pair.base && p.quote == pair.quote)
                .count();
            if count > 1 {
                return Err(bad("declared twice"));
            }
        }
        for opening in &self.opening_balances {
            let bad = |reason: String| GenesisError::BadOpeningBalance {
                member: opening.member.clone(),
                asset: opening.asset.clone(),
                reason,
            };
            if self.member_by_name(&opening.member).is_none() {
                return Err(bad("unknown member".into()));
            }
            let (_, asset) = self
                .asset_by_symbol(&opening.asset)
                .ok_or_else(|| bad("unknown asset".into()))?;
            asset
                .parse_amount(&opening.amount)
                .map_err(|error| bad(error.to_string()))?;
        }
        self.validate_public_chain()?;
        self.validate_settlement()
    }

    fn validate_public_chain(&self) -> Result<(), GenesisError> {
        let Some(chain) = &self.public_chain else {
            return Ok(());
        };
        let bad = |reason: String| GenesisError::BadPublicChain { reason };
        chain.validate().map_err(bad)?;
        for registered in &chain.registered_addresses {
            match self.member_by_name(&registered.member) {
                Some((_, member)) if member.role == Role::Exchange => {}
                Some(_) => {
                    return Err(bad(format!(
                        "{} registers an address but is not an exchange",
                        registered.member
                    )))
                }
                None => {
                    return Err(GenesisError::UnknownMember {
                        context: "public_chain.registered_addresses".into(),
                        name: registered.member.clone(),
                    })
                }
            }
        }
        Ok(())
    }

    fn validate_settlement(&self) -> Result<(), GenesisError> {
        self.settlement
            .validate()
            .map_err(|reason| GenesisError::BadSettlement { reason })
    }

    fn validate_members(&self) -> Result<(), GenesisError> {
        if self.members.is_empty() {
            return Err(GenesisError::NoMembers);
        }
        if self.members.len() > MAX_MEMBERS {
            return Err(GenesisError::TooManyMembers {
                count: self.members.len(),
            });
        }
        let mut names = BTreeSet::new();
        for member in &self.members {
            let name_ok = !member.name.is_empty()
                && member.name.len() <= 64
                && member
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !name_ok {
                return Err(GenesisError::BadName {
                    name: member.name.clone(),
                });
            }
            if !names.insert(member.name.as_str()) {
                return Err(GenesisError::DuplicateName {
                    name: member.name.clone(),
                });
            }
        }
        for (index, member) in self.members.iter().enumerate() {
            if let Some(other) = self.members[..index]
                .iter()
                .find(|m| m.public_key == member.public_key)
            {
                return Err(GenesisError::DuplicateKey {
                    first: other.name.clone(),
                    second: member.name.clone(),
                });
            }
        }
        if let Some(observer) = self
            .members
            .iter()
            .find(|m| m.role == Role::Observer && m.validator)
        {
            return Err(GenesisError::ObserverValidates {
                name: observer.name.clone(),
            });
        }
        let clearing_houses = self
            .members
            .iter()
            .filter(|m| m.role == Role::ClearingHouse)
            .count();
        if clearing_houses != 1 {
            return Err(GenesisError::ClearingHouseCount {
                count: clearing_houses,
            });
        }
        let validators = self.validators().len();
        if validators == 0 {
            return Err(GenesisError::NoValidators);
        }
        crate::membership::check_quorum(self.quorum, validators).map_err(|error| match error {
            MembershipError::QuorumTooSmall {
                quorum,
                validators,
                minimum,
            } => GenesisError::QuorumTooSmall {
                quorum,
                validators,
                minimum,
            },
            MembershipError::QuorumTooLarge { quorum, validators } => {
                GenesisError::QuorumTooLarge { quorum, validators }
            }
            _ => GenesisError::NoValidators,
        })
    }

    fn validate_assets(&self) -> Result<(), GenesisError> {
        if self.assets.len() > MAX_ASSETS {
            return Err(GenesisError::TooManyAssets {
                count: self.assets.len(),
            });
        }
        let mut symbols = BTreeSet::new();
        for asset in &self.assets {
            check_asset(asset)?;
            if !symbols.insert(asset.symbol.as_str()) {
                return Err(GenesisError::DuplicateAsset {
                    symbol: asset.symbol.clone(),
                });
            }
        }
        Ok(())
    }

    pub fn member(&self, id: MemberId) -> Option<&Member> {
        self.members.get(id.0 as usize)
    }

    pub fn member_by_name(&self, name: &str) -> Option<(MemberId, &Member)> {
        self.members
            .iter()
            .enumerate()
            .find(|(_, member)| member.name == name)
            .map(|(index, member)| (MemberId(index as u32), member))
    }

    pub fn member_by_key(&self, key: &PublicKey) -> Option<(MemberId, &Member)> {
        self.members
            .iter()
            .enumerate()
            .find(|(_, member)| &member.public_key == key)
            .map(|(index, member)| (MemberId(index as u32), member))
    }

    /// The validating members, in member-id order.
    pub fn validators(&self) -> Vec<MemberId> {
        self.members
            .iter()
            .enumerate()
            .filter(|(_, member)| member.validator)
            .map(|(index, _)| MemberId(index as u32))
            .collect()
    }

    pub fn is_validator(&self, id: MemberId) -> bool {
        self.member(id).is_some_and(|member| member.validator)
    }

    pub fn clearing_house(&self) -> MemberId {
        let index = self
            .members
            .iter()
            .position(|member| member.role == Role::ClearingHouse)
            .expect("validated genesis has one clearing house");
        MemberId(index as u32)
    }

    pub fn asset(&self, id: AssetId) -> Option<&Asset> {
        self.assets.get(id.0 as usize)
    }

    pub fn asset_by_symbol(&self, symbol: &str) -> Option<(AssetId, &Asset)> {
        self.assets
            .iter()
            .enumerate()
            .find(|(_, asset)| asset.symbol == symbol)
            .map(|(index, asset)| (AssetId(index as u32), asset))
    }

    /// The declared pairs as (base, quote) asset ids.
    pub fn pair_ids(&self) -> Vec<(AssetId, AssetId)> {
        self.pairs
            .iter()
            .filter_map(|pair| {
                Some((
                    self.asset_by_symbol(&pair.base)?.0,
                    self.asset_by_symbol(&pair.quote)?.0,
                ))
            })
            .collect()
    }

    /// Finds a pair written `BASE/QUOTE`.
    pub fn pair_by_name(&self, name: &str) -> Option<(AssetId, AssetId)> {
        let (base, quote) = name.split_once('/')?;
        let base = self.asset_by_symbol(&base.to_ascii_uppercase())?.0;
        let quote = self.asset_by_symbol(&quote.to_ascii_uppercase())?.0;
        self.pair_ids()
            .into_iter()
            .find(|pair| *pair == (base, quote))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, role: Role, key: u8) -> Member {
        Member {
            name: name.into(),
            role,
            public_key: PublicKey([key; 32]),
            validator: true,
            p2p_address: None,
        }
    }

    fn valid() -> Genesis {
        Genesis {
            chain_id: ChainId("seisan-dev-testnet".into()),
            genesis_time_ms: 0,
            quorum: 2,
            members: vec![
                member("clearing-house", Role::ClearingHouse, 1),
                member("exchange-a", Role::Exchange, 2),
                member("exchange-b", Role::Exchange, 3),
            ],
            assets: vec![
                Asset {
                    symbol: "ETH".into(),
                    kind: AssetKind::NativeCoin,
                    scale: 18,
                    contract: None,
                },
                Asset {
                    symbol: "JPY".into(),
                    kind: AssetKind::Fiat,
                    scale: 0,
                    contract: None,
                },
            ],
            pairs: vec![PairSpec {
                base: "ETH".into(),
                quote: "JPY".into(),
            }],
            opening_balances: vec![],
            settlement: SettlementSettings::default(),
            public_chain: None,
        }
    }

    #[test]
    fn valid_genesis_round_trips_through_json() {
        let genesis = valid();
        genesis.validate().unwrap();
        let parsed = Genesis::from_json(&genesis.to_json()).unwrap();
        assert_eq!(parsed, genesis);
        assert_eq!(parsed.hash(), genesis.hash());
        assert_eq!(
            parsed.pair_by_name("eth/jpy"),
            Some((AssetId(0), AssetId(1)))
        );
        assert_eq!(parsed.pair_by_name("JPY/ETH"), None);
    }

    #[test]
    fn rejects_unsafe_quorum() {
        let mut genesis = valid();
        genesis.quorum = 1;
        let error = genesis.validate().unwrap_err();
        assert_eq!(
            error,
            GenesisError::QuorumTooSmall {
                quorum: 1,
                validators: 3,
                minimum: 2
            }
        );
        assert!(error.to_string().contains("2q must exceed n"));
        genesis.quorum = 4;
        assert_eq!(
            genesis.validate().unwrap_err(),
            GenesisError::QuorumTooLarge {
                quorum: 4,
                validators: 3
            }
        );
    }

    #[test]
    fn rejects_duplicate_names_and_keys() {
        let mut genesis = valid();
        genesis.members[2].name = "exchange-a".into();
        assert_eq!(
            genesis.validate().unwrap_err(),
            GenesisError::DuplicateName {
                name: "exchange-a".into()
            }
        );
        let mut genesis = valid();
        genesis.members[2].public_key = genesis.members[1].public_key;
        assert!(matches!(
            genesis.validate().unwrap_err(),
            GenesisError::DuplicateKey { .. }
        ));
    }

    #[test]
    fn rejects_bad_assets_and_pairs() {
        let mut genesis = valid();
        genesis.assets[1].symbol = "ETH".into();
        assert!(matches!(
            genesis.validate().unwrap_err(),
            GenesisError::DuplicateAsset { .. }
        ));
        let mut genesis = valid();
        genesis.assets[0].kind = AssetKind::Token;
        assert!(matches!(
            genesis.validate().unwrap_err(),
            GenesisError::TokenWithoutContract { .. }
        ));
        let mut genesis = valid();
        genesis.pairs.push(PairSpec {
            base: "BTC".into(),
            quote: "JPY".into(),
        });
        assert!(matches!(
            genesis.validate().unwrap_err(),
            GenesisError::BadPair { .. }
        ));
        let mut genesis = valid();
        genesis.assets[0].scale = 31;
        assert!(matches!(
            genesis.validate().unwrap_err(),
            GenesisError::BadAssetScale { .. }
        ));
    }

    #[test]
    fn an_observer_is_accepted_only_as_a_non_validator() {
        let mut genesis = valid();
        let mut observer = member("regulator", Role::Observer, 9);
        observer.validator = false;
        genesis.members.push(observer);
        genesis.validate().unwrap();
        let validators = genesis.validators().len();
        genesis.members.last_mut().unwrap().validator = true;
        assert_eq!(
            genesis.validate().unwrap_err(),
            GenesisError::ObserverValidates {
                name: "regulator".into()
            }
        );
        assert!(
            genesis.validators().len() > validators,
            "the refusal is what keeps it out"
        );
    }

    #[test]
    fn rejects_clearing_house_count_and_bad_chain_id() {
        let mut genesis = valid();
        genesis.members[1].role = Role::ClearingHouse;
        assert_eq!(
            genesis.validate().unwrap_err(),
            GenesisError::ClearingHouseCount { count: 2 }
        );
        let mut genesis = valid();
        genesis.chain_id = ChainId("bad chain".into());
        assert!(matches!(
            genesis.validate().unwrap_err(),
            GenesisError::BadChainId { .. }
        ));
    }

    #[test]
    fn rejects_bad_opening_balance_and_unknown_fields() {
        let mut genesis = valid();
        genesis.opening_balances.push(OpeningBalance {
            member: "exchange-a".into(),
            asset: "JPY".into(),
            amount: "1.5".into(),
        });
        let error = genesis.validate().unwrap_err();
        assert!(
            error.to_string().contains("JPY allows at most 0"),
            "{error}"
        );
        let mut genesis = valid();
        genesis.settlement.cutoff_time_of_day_ms = Some(DAY_MS);
        assert!(matches!(
            genesis.validate().unwrap_err(),
            GenesisError::BadSettlement { .. }
        ));
        let text = valid().to_json().replace("\"quorum\"", "\"quorom\"");
        assert!(matches!(
            Genesis::from_json(&text),
            Err(GenesisError::Parse { .. })
        ));
    }

    #[test]
    fn non_validators_do_not_count_toward_quorum() {
        let mut genesis = valid();
        for key in 10..20u8 {
            let mut extra = member(&format!("bench-{key}"), Role::Exchange, key);
            extra.validator = false;
            genesis.members.push(extra);
        }
        genesis.validate().unwrap();
        assert_eq!(genesis.validators().len(), 3);
    }
}
