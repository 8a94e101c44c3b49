//! The network crate's one error type.
//!
//! Configuration errors (`BadAddress`, `BadPublicKey`, `NotAValidator`, `Transport`,
//! `Listen`) come from [`crate::spawn`]; `TooManyMembers`, `DuplicateMember` and
//! `SharedKey` from a member list that is refused as a whole (by [`crate::spawn`] or
//! [`crate::NetworkHandle::set_members`], which then leaves the old list in force); the others answer a single command sent
//! through [`crate::NetworkHandle`] and leave the network running.

use crate::ingress::{InboundRequestId, MessageId, Topic};
use seisan_types::{MemberId, PublicKey};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error("member {member} has p2p address {address:?}, which is not a multiaddress: {reason}")]
    BadAddress {
        member: MemberId,
        address: String,
        reason: String,
    },
    #[error("member {member} has a public key that is not a valid ed25519 point: {reason}")]
    BadPublicKey { member: MemberId, reason: String },
    #[error(
        "the local key {public_key} is not a validator in genesis, so no peer would accept it"
    )]
    NotAValidator { public_key: PublicKey },
    #[error("building the libp2p transport failed: {reason}")]
    Transport { reason: String },
    #[error("cannot listen on {address}: {reason}")]
    Listen { address: String, reason: String },
    #[error("payload of {size_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    PayloadTooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error("this exact payload was already published on {topic:?} (message id {message_id})")]
    DuplicatePayload { topic: Topic, message_id: MessageId },
    #[error("no connected validator subscribes to {topic:?} yet")]
    NoPeers { topic: Topic },
    #[error("publishing on {topic:?} failed: {reason}")]
    Publish { topic: Topic, reason: String },
    #[error("member {member} is not a validator of this network")]
    UnknownMember { member: MemberId },
    #[error("member {member} is not connected")]
    NotConnected { member: MemberId },
    #[error("request to member {member} failed: {reason}")]
    RequestFailed { member: MemberId, reason: String },
    #[error("request to member {member} got no answer within {timeout_ms} ms")]
    RequestTimedOut { member: MemberId, timeout_ms: u64 },
    #[error("inbound request {id} is unknown: already answered, timed out or its peer left")]
    UnknownRequest { id: InboundRequestId },
    #[error("too many {what} in flight (limit {limit})")]
    Busy { what: &'static str, limit: usize },
    #[error("a member list of {count} entries exceeds the limit of {limit}")]
    TooManyMembers { count: usize, limit: usize },
    #[error("member {member} is listed twice")]
    DuplicateMember { member: MemberId },
    #[error(
        "members {member} and {other} have the same key; a node identity belongs to one member"
    )]
    SharedKey { member: MemberId, other: MemberId },
    #[error("the network event loop has stopped")]
    Stopped,
}
