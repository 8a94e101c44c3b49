//! Network configuration: who the validators are (from genesis), where to listen,
//! and every size, count and time bound the event loop enforces.
//!
//! Identity: a member's libp2p identity is its genesis ed25519 key, so the peer id of
//! every validator is known from genesis alone and the allow-list needs no exchange
//! of keys. [`libp2p_keypair`] and [`peer_id_of`] do the two conversions.

use crate::error::NetworkError;
use libp2p::{identity, Multiaddr, PeerId};
use seisan_types::block::MAX_BLOCK_BYTES;
use seisan_types::codec::MAX_DECODE_BYTES;
use seisan_types::{ChainId, Genesis, MemberId, PublicKey};
use std::time::Duration;

/// A validator as the network sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    pub member: MemberId,
    pub name: String,
    pub public_key: PublicKey,
    /// Where to dial it; `None` means we only accept its connections.
    pub address: Option<Multiaddr>,
}

/// A member as [`crate::NetworkHandle::set_members`] takes it: who may connect,
/// with which key, and where to dial it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerMember {
    pub member: MemberId,
    /// Its node's identity: the peer id is derived from this key ([`peer_id_of`]).
    pub public_key: PublicKey,
    /// Where to dial it; `None` means we only accept its connections.
    pub address: Option<Multiaddr>,
    /// A validator is an explicit gossip peer (every message floods to it). A
    /// member that is not (a validator before its activation height, an observer)
    /// may still connect, gossip, send direct messages and sync.
    pub validator: bool,
}

impl From<&Validator> for PeerMember {
    fn from(validator: &Validator) -> PeerMember {
        PeerMember {
            member: validator.member,
            public_key: validator.public_key,
            address: validator.address.clone(),
            validator: true,
        }
    }
}

/// Every bound the network enforces. The defaults suit a consortium of a few
/// validators on a LAN or WAN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkLimits {
    /// Largest gossip payload, in bytes. A consensus proposal carries a whole block,
    /// so the default leaves room for [`MAX_BLOCK_BYTES`] plus its envelope.
    pub max_gossip_payload_bytes: usize,
    /// Largest request payload, in bytes.
    pub max_request_bytes: usize,
    /// Largest response payload, in bytes (a batch of blocks with certificates).
    pub max_response_bytes: usize,
    /// How long a request may wait for its response, and how long the node has to
    /// answer an inbound request.
    pub request_timeout: Duration,
    /// Outbound requests waiting for an answer at once.
    pub max_pending_outbound_requests: usize,
    /// Inbound requests waiting for the node's answer at once.
    pub max_pending_inbound_requests: usize,
    /// Incoming connections still in their handshake at once: what a stranger can
    /// tie up before its peer id is known.
    pub max_pending_incoming: u32,
    /// Outgoing connections still in their handshake at once.
    pub max_pending_outgoing: u32,
    /// Established connections per peer. Two, so simultaneous dials from both sides
    /// do not deny each other.
    pub max_established_per_peer: u32,
    /// First redial delay after a disconnection; it doubles per failed attempt.
    pub redial_initial: Duration,
    /// Largest redial delay.
    pub redial_max: Duration,
    /// Rejected gossip messages a member may send within `reject_window` before it
    /// is disconnected for `reject_penalty`.
    pub max_rejects_per_window: u32,
    pub reject_window: Duration,
    pub reject_penalty: Duration,
    /// Gossip heartbeat (housekeeping period of gossipsub).
    pub gossip_heartbeat: Duration,
    /// Events buffered inside the loop when the node does not drain the event
    /// channel fast enough; beyond this, gossip is ignored and requests dropped.
    pub max_buffered_events: usize,
    /// How long an idle connection stays open (validators always have gossip, so
    /// this only closes connections that stopped working).
    pub idle_connection_timeout: Duration,
}

impl Default for NetworkLimits {
    fn default() -> Self {
        NetworkLimits {
            max_gossip_payload_bytes: MAX_BLOCK_BYTES + (1 << 20),
            max_request_bytes: 64 * 1024,
            max_response_bytes: MAX_DECODE_BYTES,
            request_timeout: Duration::from_secs(10),
            max_pending_outbound_requests: 256,
            max_pending_inbound_requests: 256,
            max_pending_incoming: 16,
            max_pending_outgoing: 64,
            max_established_per_peer: 2,
            redial_initial: Duration::from_millis(250),
            redial_max: Duration::from_secs(5),
            max_rejects_per_window: 32,
            reject_window: Duration::from_secs(60),
            reject_penalty: Duration::from_secs(60),
            gossip_heartbeat: Duration::from_millis(700),
            max_buffered_events: 4096,
            idle_connection_timeout: Duration::from_secs(300),
        }
    }
}

/// Everything [`crate::spawn`] needs.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    pub chain_id: ChainId,
    /// This node's member key; its libp2p identity is derived from it.
    pub keypair: seisan_crypto::Keypair,
    /// The allow-list: every validator, this node included. Nobody else may connect.
    pub validators: Vec<Validator>,
    /// Where to listen, e.g. `/ip4/0.0.0.0/tcp/7101` (port 0 picks a free port).
    pub listen_addresses: Vec<Multiaddr>,
    pub limits: NetworkLimits,
}

impl NetworkConfig {
    /// The configuration for `keypair`'s node on `genesis`: the validators are the
    /// genesis members with `validator = true`, dialed at their `p2p_address`.
    pub fn from_genesis(
        genesis: &Genesis,
        keypair: seisan_crypto::Keypair,
        listen_addresses: Vec<Multiaddr>,
    ) -> Result<NetworkConfig, NetworkError> {
        let mut validators = Vec::new();
        for member in genesis.validators() {
            let entry = genesis
                .member(member)
                .expect("genesis lists its validators among its members");
            let address =
                match &entry.p2p_address {
                    None => None,
                    Some(text) => Some(text.parse::<Multiaddr>().map_err(|error| {
                        NetworkError::BadAddress {
                            member,
                            address: text.clone(),
                            reason: error.to_string(),
                        }
                    })?),
                };
            validators.push(Validator {
                member,
                name: entry.name.clone(),
                public_key: entry.public_key,
                address,
            });
        }
        let config = NetworkConfig {
            chain_id: genesis.chain_id.clone(),
            keypair,
            validators,
            listen_addresses,
            limits: NetworkLimits::default(),
        };
        config.local_validator()?;
        Ok(config)
    }

    /// This node's entry in the validator list.
    pub fn local_validator(&self) -> Result<&Validator, NetworkError> {
        let public_key = self.keypair.public_key();
        self.validators
            .iter()
            .find(|validator| validator.public_key == public_key)
            .ok_or(NetworkError::NotAValidator { public_key })
    }
}

/// The libp2p identity of a member key: the same ed25519 secret.
pub fn libp2p_keypair(keypair: &seisan_crypto::Keypair) -> identity::Keypair {
    identity::Keypair::ed25519_from_bytes(keypair.seed())
        .expect("a 32-byte ed25519 seed is always a valid libp2p secret key")
}

/// The peer id of the node whose member key is `public_key`.
pub fn peer_id_of(member: MemberId, public_key: &PublicKey) -> Result<PeerId, NetworkError> {
    let key = identity::ed25519::PublicKey::try_from_bytes(&public_key.0).map_err(|error| {
        NetworkError::BadPublicKey {
            member,
            reason: error.to_string(),
        }
    })?;
    Ok(identity::PublicKey::from(key).to_peer_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libp2p_identity_is_the_member_key() {
        let keypair = seisan_crypto::Keypair::dev("exchange-a");
        let libp2p = libp2p_keypair(&keypair);
        let expected = peer_id_of(MemberId(1), &keypair.public_key()).unwrap();
        assert_eq!(libp2p.public().to_peer_id(), expected);
        let other = peer_id_of(
            MemberId(2),
            &seisan_crypto::Keypair::dev("exchange-b").public_key(),
        )
        .unwrap();
        assert_ne!(expected, other);
    }

    #[test]
    fn an_invalid_public_key_is_an_error_not_a_panic() {
        // Not every 32-byte string is an ed25519 point; find one that fails to decode.
        let bad = (0u8..=255)
            .map(|byte| PublicKey([byte; 32]))
            .find(|key| identity::ed25519::PublicKey::try_from_bytes(&key.0).is_err())
            .expect("some repeated-byte string is not a curve point");
        let error = peer_id_of(MemberId(7), &bad).unwrap_err();
        assert!(
            matches!(error, NetworkError::BadPublicKey { member, .. } if member == MemberId(7))
        );
    }
}
