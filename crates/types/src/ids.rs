//! Identifier newtypes. A height is never a `u64` by accident.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_newtype {
    ($(#[doc = $doc:expr])* $name:ident($inner:ty)) => {
        id_newtype!($(#[doc = $doc])* $name($inner) minimum 0);
    };
    ($(#[doc = $doc:expr])* $name:ident($inner:ty) minimum $minimum:expr) => {
        $(#[doc = $doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        crate::schema::id_schema!($name, $inner, $minimum, $($doc),*);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id_newtype!(
    /// A consortium member: its position in the genesis member list.
    MemberId(u32)
);
id_newtype!(
    /// An asset: its position in the genesis asset list.
    AssetId(u32)
);
id_newtype!(
    /// A block height; the genesis state is height 0 and the first block is height 1.
    Height(u64)
);
id_newtype!(
    /// A consensus view (Simplex iteration); every view has one leader.
    View(u64)
);
id_newtype!(
    /// A validator-set epoch: genesis's set is epoch 0, and every validator-set change
    /// the consortium applies starts the next one.
    Epoch(u64)
);
id_newtype!(
    /// A member's transaction counter in one lane: 1 for the lane's first transaction,
    /// then one more for each (see `tx::Lane`). The node refuses 0, so an honest node
    /// never signs a nonce below 1 into a block.
    Nonce(u64) minimum 1
);

impl Height {
    pub fn next(self) -> Height {
        Height(self.0.checked_add(1).expect("height overflow"))
    }
}

impl Epoch {
    pub fn next(self) -> Epoch {
        Epoch(self.0.checked_add(1).expect("epoch overflow"))
    }
}

impl View {
    pub fn next(self) -> View {
        View(self.0.checked_add(1).expect("view overflow"))
    }
}

/// Maximum length of a chain id in bytes.
pub const MAX_CHAIN_ID_BYTES: usize = 64;

/// The name of a chain. Every signature covers it, so a transaction or vote made for
/// one chain is worthless on another.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct ChainId(pub String);

impl ChainId {
    /// A development network is one whose chain id has a `dev` segment
    /// (`seisan-dev-testnet`, `dev-1`, `bench-dev`). Only such a chain accepts the
    /// well-known development keys.
    pub fn is_dev(&self) -> bool {
        self.0
            .split(['-', '_', '.'])
            .any(|segment| segment == "dev")
    }
}

/// What every signature of a chain is bound to: the chain's name and the hash of its
/// exact genesis ([`crate::Genesis::domain`]). Two testnets made with the same chain id
/// but any other difference in genesis (members, keys, opening balances, settings) have
/// different domains, so nothing signed on one (a transaction, a vote, a certificate, a
/// proof's header) verifies on the other.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainDomain {
    pub chain_id: ChainId,
    /// [`crate::Genesis::hash`] of the chain's genesis.
    pub genesis: crate::hash::Hash,
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({})", self.0)
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_chain_ids() {
        assert!(ChainId("seisan-dev-testnet".into()).is_dev());
        assert!(ChainId("dev".into()).is_dev());
        assert!(!ChainId("seisan-mainnet".into()).is_dev());
        assert!(!ChainId("devnet".into()).is_dev());
    }
}
