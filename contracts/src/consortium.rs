//! The consortium's live configuration: what governance can change, kept in state.
//!
//! Genesis gives the first [`Consortium`] ([`Consortium::from_genesis`], written at
//! height 0); after that only governance changes it (see [`crate::governance`]), at a
//! block boundary every node agrees on, so every node executes every block with the
//! same members, keys, assets, pairs and settings. The contracts read these from here,
//! never from the genesis file; the genesis is still read for what cannot change (the
//! chain id, the genesis time, the opening balances).
//!
//! State: table `0x90` (key: the table byte alone) -> `Consortium`.

use seisan_types::clearing::Pair;
use seisan_types::custody::PublicChainSettings;
use seisan_types::membership::{MemberStatus, Membership};
use seisan_types::{Asset, AssetId, Genesis, Member, MemberId, SettlementSettings};
use serde::{Deserialize, Serialize};

/// The consortium's configuration as of some height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Consortium {
    pub membership: Membership,
    /// Indexed by [`AssetId`]; only ever grows.
    pub assets: Vec<Asset>,
    pub pairs: Vec<Pair>,
    pub settlement: SettlementSettings,
    pub public_chain: Option<PublicChainSettings>,
}

impl Consortium {
    /// The configuration at height 0. `genesis` must be validated.
    pub fn from_genesis(genesis: &Genesis) -> Consortium {
        Consortium {
            membership: Membership::from_genesis(genesis),
            assets: genesis.assets.clone(),
            pairs: genesis
                .pair_ids()
                .into_iter()
                .map(|(base, quote)| Pair { base, quote })
                .collect(),
            settlement: genesis.settlement.clone(),
            public_chain: genesis.public_chain.clone(),
        }
    }

    /// The member with this id, whatever its status.
    pub fn member(&self, id: MemberId) -> Option<&Member> {
        self.membership.member(id).map(|entry| &entry.member)
    }

    pub fn status(&self, id: MemberId) -> Option<MemberStatus> {
        self.membership.member(id).map(|entry| entry.status)
    }

    /// Whether `id` votes (and so attests and approves) now.
    pub fn is_validator(&self, id: MemberId) -> bool {
        self.membership.is_validator(id)
    }

    pub fn validators(&self) -> Vec<MemberId> {
        self.membership.validators()
    }

    pub fn quorum(&self) -> u32 {
        self.membership.quorum
    }

    /// How many member ids exist (removed members included).
    pub fn member_count(&self) -> usize {
        self.membership.members.len()
    }

    pub fn clearing_house(&self) -> MemberId {
        self.membership.clearing_house()
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

    pub fn has_pair(&self, pair: Pair) -> bool {
        self.pairs.contains(&pair)
    }

    /// The pairs as (base, quote) asset ids.
    pub fn pair_ids(&self) -> Vec<(AssetId, AssetId)> {
        self.pairs
            .iter()
            .map(|pair| (pair.base, pair.quote))
            .collect()
    }
}
