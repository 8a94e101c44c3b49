//! What the rest of the node sees of the network: the cloneable [`NetworkHandle`]
//! that sends commands to the event loop, and the [`NetworkEvent`]s the loop sends
//! back.
//!
//! Every command carries a oneshot reply channel, so a caller learns the outcome of
//! its own command; the command channel is bounded ([`COMMAND_CHANNEL_CAPACITY`]), so
//! a caller that outruns the loop waits instead of growing a queue. A caller that must
//! not wait (the consensus core loop) queues publishes and direct sends detached
//! ([`NetworkHandle::publish_detached`], [`NetworkHandle::send_detached`]): in order,
//! in the same bounded queue, refused with [`NetworkError::Busy`] when it is full, the
//! loop's answer logged by the loop instead of awaited.

use crate::config::PeerMember;
use crate::error::NetworkError;
use libp2p::request_response;
use libp2p::{Multiaddr, PeerId};
use seisan_types::{ChainId, Hash, MemberId};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Commands the handles may queue before a sender waits for the loop.
pub const COMMAND_CHANNEL_CAPACITY: usize = 1024;
/// Extra time a [`NetworkHandle::request`] waits beyond the protocol's own request
/// timeout before it gives up on the loop's answer (the loop normally answers first,
/// with the protocol's timeout error).
pub(crate) const REQUEST_REPLY_GRACE: Duration = Duration::from_secs(5);

/// A gossip topic. Topic names include the chain id, so two chains on one host
/// never exchange gossip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Batches of encoded signed transactions.
    Transactions,
    /// Consensus messages: proposals, votes, certificates.
    Consensus,
}

impl Topic {
    pub const ALL: [Topic; 2] = [Topic::Transactions, Topic::Consensus];

    /// The gossipsub topic name on `chain_id`.
    pub fn name(self, chain_id: &ChainId) -> String {
        let kind = match self {
            Topic::Transactions => "transactions",
            Topic::Consensus => "consensus",
        };
        format!("/seisan/{chain_id}/{kind}/1")
    }
}

/// A gossip message's id: a domain-tagged hash of its topic and payload (see the
/// crate docs for why ids are content-derived).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub Hash);

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", &self.0.to_hex()[..16])
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

/// The id of a request a peer sent us; answer it with [`NetworkHandle::respond`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InboundRequestId(pub(crate) request_response::InboundRequestId);

impl fmt::Display for InboundRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The node's verdict on a gossip message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Validation {
    /// Valid: deliver it and forward it to the other validators.
    Accept,
    /// Invalid whatever the state (bad signature, wrong chain id, malformed): drop it
    /// and count it against the member that relayed it, who should have checked it
    /// too. Use it only for checks every honest node makes identically.
    Reject,
    /// Not useful here and now (a duplicate, a stale vote, a nonce this node has
    /// already seen used) but not proof of misbehaviour: drop it without penalty.
    /// State-dependent failures belong here, because an honest relayer whose state
    /// differs slightly may have accepted them.
    Ignore,
}

/// A gossip message waiting for the node's [`Validation`]. It is forwarded to
/// other validators only after [`NetworkHandle::report_validation`] says `Accept`.
#[derive(Clone, PartialEq, Eq)]
pub struct GossipMessage {
    pub topic: Topic,
    pub payload: Vec<u8>,
    /// The validator whose node sent it to us. It is not necessarily the author:
    /// the author is whoever signed the payload.
    pub from: MemberId,
    pub message_id: MessageId,
}

impl fmt::Debug for GossipMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GossipMessage")
            .field("topic", &self.topic)
            .field("payload_bytes", &self.payload.len())
            .field("from", &self.from)
            .field("message_id", &self.message_id)
            .finish()
    }
}

/// A request from a validator, to be answered with [`NetworkHandle::respond`]
/// before the request timeout.
#[derive(Clone, PartialEq, Eq)]
pub struct InboundRequest {
    pub id: InboundRequestId,
    pub from: MemberId,
    pub payload: Vec<u8>,
}

impl fmt::Debug for InboundRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundRequest")
            .field("id", &self.id)
            .field("from", &self.from)
            .field("payload_bytes", &self.payload.len())
            .finish()
    }
}

/// What the event loop tells the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkEvent {
    Gossip(GossipMessage),
    Request(InboundRequest),
    /// A message a validator sent to this node alone over the direct protocol
    /// ([`NetworkHandle::send`]); it is not forwarded. `from` is the authenticated
    /// sender (the noise handshake's peer id).
    Direct(DirectMessage),
    /// The first connection to this member is up.
    PeerConnected {
        member: MemberId,
    },
    /// The last connection to this member closed, and the loop redials it; or the
    /// member (or its old key) was dropped from the list by
    /// [`NetworkHandle::set_members`], and it is not redialed.
    PeerDisconnected {
        member: MemberId,
    },
}

/// A point-to-point message from one validator (see [`NetworkEvent::Direct`]).
#[derive(Clone, PartialEq, Eq)]
pub struct DirectMessage {
    pub from: MemberId,
    pub payload: Vec<u8>,
}

impl fmt::Debug for DirectMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectMessage")
            .field("from", &self.from)
            .field("payload_bytes", &self.payload.len())
            .finish()
    }
}

/// A snapshot of the network, for status pages and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkStatus {
    pub local_member: MemberId,
    pub local_peer_id: PeerId,
    pub listen_addresses: Vec<Multiaddr>,
    /// The members allowed to connect (this node left out), in member-id order.
    pub members: Vec<MemberId>,
    /// Members with at least one open connection, in member-id order.
    pub connected: Vec<MemberId>,
    /// Per topic, the connected validators known to subscribe to it, in member-id
    /// order. A publish reaches only these (subscriptions arrive just after a
    /// connection opens), and a forward only those not yet holding the message.
    pub subscribers: BTreeMap<Topic, Vec<MemberId>>,
    /// Validators currently disconnected as a penalty for rejected gossip.
    pub penalized: Vec<MemberId>,
    /// Established connections refused because the peer is not an allowed member
    /// (a stranger, a removed member, a rotated-away key, a penalized member),
    /// since start.
    pub denied_connections: u64,
    /// Gossip messages rejected (by the node or for size), since start.
    pub rejected_messages: u64,
    /// Events dropped because the node did not drain the event channel, since start.
    pub dropped_events: u64,
}

/// What a [`NetworkHandle::set_members`] call changed, each list in member-id
/// order. All three are empty when the list was already in force.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MembershipChange {
    /// Members newly listed: allowed, and dialed if they have an address.
    pub added: Vec<MemberId>,
    /// Members no longer listed: disconnected and refused from now on.
    pub removed: Vec<MemberId>,
    /// Members listed with a different key: the old identity is disconnected and
    /// refused, the new one allowed (and dialed if it has an address).
    pub rekeyed: Vec<MemberId>,
}

impl MembershipChange {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.rekeyed.is_empty()
    }
}

pub(crate) type Reply<T> = oneshot::Sender<T>;

#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        topic: Topic,
        payload: Vec<u8>,
        reply: Reply<Result<MessageId, NetworkError>>,
    },
    ReportValidation {
        message_id: MessageId,
        from: MemberId,
        validation: Validation,
        reply: Reply<Result<bool, NetworkError>>,
    },
    Request {
        member: MemberId,
        payload: Vec<u8>,
        reply: Reply<Result<Vec<u8>, NetworkError>>,
    },
    Send {
        member: MemberId,
        payload: Vec<u8>,
        reply: Reply<Result<(), NetworkError>>,
    },
    Respond {
        id: InboundRequestId,
        payload: Vec<u8>,
        reply: Reply<Result<(), NetworkError>>,
    },
    Status {
        reply: Reply<NetworkStatus>,
    },
    SetMembers {
        entries: Vec<crate::peers::Entry>,
        reply: Reply<MembershipChange>,
    },
    Shutdown {
        reply: Reply<()>,
    },
}

/// A cheap, cloneable handle to the network event loop. The loop stops when every
/// handle is dropped or one calls [`NetworkHandle::shutdown`].
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) local_member: MemberId,
    pub(crate) local_peer_id: PeerId,
    pub(crate) request_timeout: Duration,
}

impl NetworkHandle {
    pub fn local_member(&self) -> MemberId {
        self.local_member
    }

    /// The libp2p identity, derived from the member's genesis key.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Gossips `payload` on `topic` to every connected validator known to subscribe
    /// to it (see [`NetworkHandle::subscribers`]) and returns its message id. The
    /// payload must be within the configured gossip limit, and a payload identical
    /// to one published recently is refused as a duplicate. With no subscriber yet
    /// the answer is [`NetworkError::NoPeers`] and nothing is sent.
    pub async fn publish(&self, topic: Topic, payload: Vec<u8>) -> Result<MessageId, NetworkError> {
        self.call(|reply| Command::Publish {
            topic,
            payload,
            reply,
        })
        .await?
    }

    /// Reports the node's verdict on a gossip message received from `from`. Only
    /// `Accept` forwards it. Returns whether the message was still waiting for a
    /// verdict (false if it expired from the gossip cache first or was unknown).
    pub async fn report_validation(
        &self,
        message_id: MessageId,
        from: MemberId,
        validation: Validation,
    ) -> Result<bool, NetworkError> {
        self.call(|reply| Command::ReportValidation {
            message_id,
            from,
            validation,
            reply,
        })
        .await?
    }

    /// Sends a request to a validator and waits for its answer, dialing it first if
    /// needed. Fails after the configured request timeout.
    pub async fn request(
        &self,
        member: MemberId,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, NetworkError> {
        let wait = self.request_timeout + REQUEST_REPLY_GRACE;
        let answer = tokio::time::timeout(
            wait,
            self.call(|reply| Command::Request {
                member,
                payload,
                reply,
            }),
        )
        .await;
        match answer {
            Ok(result) => result?,
            Err(_) => Err(NetworkError::RequestTimedOut {
                member,
                timeout_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Sends `payload` to one connected validator over the direct protocol: unlike
    /// gossip, the same bytes may be sent again and again (nothing deduplicates them),
    /// which is what retries need. Fire and forget: `Ok` means the send was queued on a
    /// connection; delivery is not confirmed. Fails at once with
    /// [`NetworkError::NotConnected`] when the member has no connection.
    pub async fn send(&self, member: MemberId, payload: Vec<u8>) -> Result<(), NetworkError> {
        self.call(|reply| Command::Send {
            member,
            payload,
            reply,
        })
        .await?
    }

    /// Answers an inbound request. Each request may be answered once.
    pub async fn respond(
        &self,
        id: InboundRequestId,
        payload: Vec<u8>,
    ) -> Result<(), NetworkError> {
        self.call(|reply| Command::Respond { id, payload, reply })
            .await?
    }

    /// Replaces the allow-list on the running network with `members` (this node's
    /// own entry, if listed, is skipped). A member no longer listed, or listed with
    /// a new key, has its old identity disconnected at once and refused from then on
    /// (its connections, gossip, direct messages and requests are dropped like a
    /// stranger's); a newly listed identity is allowed and dialed at once if it has
    /// an address; a member listed before and now with the same key keeps its
    /// connections (and any penalty). Events name members by the new list from the
    /// moment this returns. Idempotent: the same list again changes nothing.
    ///
    /// The list is checked first and refused as a whole, leaving the old one in
    /// force: at most [`crate::MAX_MEMBERS`] entries
    /// ([`NetworkError::TooManyMembers`]), no member twice
    /// ([`NetworkError::DuplicateMember`]), no key shared by two members
    /// ([`NetworkError::SharedKey`]), every key a valid ed25519 point
    /// ([`NetworkError::BadPublicKey`]).
    pub async fn set_members(
        &self,
        members: Vec<PeerMember>,
    ) -> Result<MembershipChange, NetworkError> {
        let entries = crate::peers::entries(self.local_member, self.local_peer_id, members)?;
        self.call(|reply| Command::SetMembers { entries, reply })
            .await
    }

    /// Validators with at least one open connection, in member-id order.
    pub async fn connected_members(&self) -> Result<Vec<MemberId>, NetworkError> {
        Ok(self.status().await?.connected)
    }

    /// The connected validators known to subscribe to `topic`, in member-id order:
    /// the ones a publish on `topic` reaches now.
    pub async fn subscribers(&self, topic: Topic) -> Result<Vec<MemberId>, NetworkError> {
        let mut status = self.status().await?;
        Ok(status.subscribers.remove(&topic).unwrap_or_default())
    }

    /// The addresses this node listens on (with port 0 resolved).
    pub async fn listen_addresses(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        Ok(self.status().await?.listen_addresses)
    }

    pub async fn status(&self) -> Result<NetworkStatus, NetworkError> {
        self.call(|reply| Command::Status { reply }).await
    }

    /// Stops the event loop and closes every connection, even while other handles
    /// exist. Returns once the loop has stopped taking commands.
    pub async fn shutdown(&self) {
        // An error means the loop is already gone, which is what was asked.
        let _ = self.call(|reply| Command::Shutdown { reply }).await;
    }

    /// [`NetworkHandle::publish`] without waiting for the loop: the command is queued
    /// (behind every command queued before it, so messages leave in the order they
    /// were queued) and the call returns. An error of the publish itself (no peer yet,
    /// a duplicate payload) is logged by the loop at debug level. A full command queue
    /// is [`NetworkError::Busy`] and nothing is queued.
    pub fn publish_detached(&self, topic: Topic, payload: Vec<u8>) -> Result<(), NetworkError> {
        self.detached(|reply| Command::Publish {
            topic,
            payload,
            reply,
        })
    }

    /// [`NetworkHandle::send`] without waiting for the loop, as
    /// [`NetworkHandle::publish_detached`] publishes.
    pub fn send_detached(&self, member: MemberId, payload: Vec<u8>) -> Result<(), NetworkError> {
        self.detached(|reply| Command::Send {
            member,
            payload,
            reply,
        })
    }

    fn detached<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<(), NetworkError> {
        let (reply, _unawaited) = oneshot::channel();
        self.commands
            .try_send(command(reply))
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => NetworkError::Busy {
                    what: "network commands",
                    limit: self.commands.max_capacity(),
                },
                mpsc::error::TrySendError::Closed(_) => NetworkError::Stopped,
            })
    }

    async fn call<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, NetworkError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| NetworkError::Stopped)?;
        answer.await.map_err(|_| NetworkError::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(capacity: usize) -> (NetworkHandle, mpsc::Receiver<Command>) {
        let (commands, receiver) = mpsc::channel(capacity);
        let handle = NetworkHandle {
            commands,
            local_member: MemberId(0),
            local_peer_id: PeerId::random(),
            request_timeout: Duration::from_secs(1),
        };
        (handle, receiver)
    }

    #[tokio::test]
    async fn detached_commands_queue_in_order_and_a_full_queue_refuses_without_waiting() {
        let (handle, mut receiver) = handle(3);
        handle
            .send_detached(MemberId(1), b"first".to_vec())
            .unwrap();
        handle
            .publish_detached(Topic::Consensus, b"second".to_vec())
            .unwrap();
        handle
            .send_detached(MemberId(2), b"third".to_vec())
            .unwrap();
        assert_eq!(
            handle.send_detached(MemberId(1), b"fourth".to_vec()),
            Err(NetworkError::Busy {
                what: "network commands",
                limit: 3,
            }),
            "a full queue refuses at once"
        );
        let mut payloads = Vec::new();
        while let Ok(command) = receiver.try_recv() {
            payloads.push(match command {
                Command::Send { payload, .. } | Command::Publish { payload, .. } => payload,
                _ => panic!("only sends and publishes were queued"),
            });
        }
        assert_eq!(
            payloads,
            [b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]
        );
        drop(receiver);
        assert_eq!(
            handle.publish_detached(Topic::Consensus, b"late".to_vec()),
            Err(NetworkError::Stopped)
        );
    }
}
