//! The event loop: the one task that owns the libp2p `Swarm`. It turns commands
//! from [`crate::NetworkHandle`]s into swarm calls and swarm events into
//! [`NetworkEvent`]s, runs the redial and penalty timers of [`PeerBook`], and
//! applies member-list changes ([`EventLoop::set_members`]) to the allow-list and
//! gossipsub's explicit peers.
//!
//! Guarantees:
//! - Nothing a peer sends can panic the loop: unknown peers, unknown topics,
//!   oversized payloads and malformed frames are logged and dropped or rejected.
//! - Every map and queue it keeps is bounded by a field of [`NetworkLimits`].
//! - It never blocks on the node: events go out with `try_send`, and when the node
//!   falls behind they wait in a bounded buffer (see [`EventLoop::emit`]).

use crate::codec::BytesCodec;
use crate::config::NetworkLimits;
use crate::error::NetworkError;
use crate::ingress::MembershipChange;
use crate::ingress::{
    Command, DirectMessage, GossipMessage, InboundRequest, InboundRequestId, MessageId,
    NetworkEvent, NetworkStatus, Reply, Topic, Validation,
};
use crate::peers::{Entry, PeerBook, RejectOutcome};
use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance, TopicHash};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{DialError, ListenError, NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, Swarm};
use libp2p_allow_block_list as allow_block_list;
use libp2p_connection_limits as connection_limits;
use seisan_types::{Hash, MemberId};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{debug, info, trace, warn};

/// How often the loop checks for due redials and ended penalties.
pub(crate) const MAINTENANCE_TICK: Duration = Duration::from_millis(100);

/// A refused stranger is logged at most this often (per peer id or address); the
/// refusals in between are counted in the next line and in
/// [`crate::NetworkStatus::denied_connections`].
pub(crate) const STRANGER_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// The most refused strangers whose last log time is remembered.
pub(crate) const MAX_REMEMBERED_STRANGERS: usize = 1024;

/// Domain tag of gossip message ids (hash of topic name and payload).
pub const SEISAN_NETWORK_GOSSIP_ID_V1: &[u8] = b"SEISAN_NETWORK_GOSSIP_ID_V1";

/// The content-derived id of a gossip message: the same payload on the same topic
/// always has the same id, whoever relays it.
pub fn gossip_message_id(topic_name: &str, payload: &[u8]) -> MessageId {
    MessageId(Hash::tagged(
        SEISAN_NETWORK_GOSSIP_ID_V1,
        &[topic_name.as_bytes(), payload],
    ))
}

/// The behaviours, in the order the swarm consults them: the allow-list and the
/// connection limits come first, so a refused connection never reaches gossip or
/// sync.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) allowed: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) sync: request_response::Behaviour<BytesCodec>,
    /// Point-to-point messages ([`crate::NetworkHandle::send`]): a request carries the
    /// message, the response is an empty acknowledgement.
    pub(crate) direct: request_response::Behaviour<BytesCodec>,
}

/// Where the answer to an outbound request goes.
type ResponseReply = Reply<Result<Vec<u8>, NetworkError>>;

pub(crate) struct EventLoop {
    pub(crate) swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    /// Events the node has not taken yet, oldest first; at most
    /// `limits.max_buffered_events`.
    buffered: VecDeque<NetworkEvent>,
    events_closed: bool,
    book: PeerBook,
    local_member: MemberId,
    topics: HashMap<TopicHash, Topic>,
    topic_hashes: HashMap<Topic, TopicHash>,
    limits: NetworkLimits,
    pending_outbound: HashMap<OutboundRequestId, (MemberId, ResponseReply)>,
    pending_inbound: HashMap<request_response::InboundRequestId, ResponseChannel<Vec<u8>>>,
    /// Direct sends waiting for their acknowledgement; at most
    /// `limits.max_pending_outbound_requests`.
    direct_in_flight: HashSet<OutboundRequestId>,
    /// When a refused stranger (by peer id, or address when the handshake did not
    /// get that far) was last logged, and how many refusals were not logged since.
    refused_strangers: HashMap<String, (Instant, u64)>,
    pub(crate) listen_addresses: Vec<Multiaddr>,
    denied_connections: u64,
    rejected_messages: u64,
    dropped_events: u64,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("local_member", &self.local_member)
            .field("local_peer_id", self.swarm.local_peer_id())
            .finish_non_exhaustive()
    }
}

impl EventLoop {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetworkEvent>,
        book: PeerBook,
        local_member: MemberId,
        topic_hashes: HashMap<Topic, TopicHash>,
        limits: NetworkLimits,
    ) -> EventLoop {
        assert_eq!(topic_hashes.len(), Topic::ALL.len());
        let topics = topic_hashes
            .iter()
            .map(|(topic, hash)| (hash.clone(), *topic))
            .collect();
        EventLoop {
            swarm,
            commands,
            events,
            buffered: VecDeque::new(),
            events_closed: false,
            book,
            local_member,
            topics,
            topic_hashes,
            limits,
            pending_outbound: HashMap::new(),
            pending_inbound: HashMap::new(),
            direct_in_flight: HashSet::new(),
            refused_strangers: HashMap::new(),
            listen_addresses: Vec::new(),
            denied_connections: 0,
            rejected_messages: 0,
            dropped_events: 0,
        }
    }

    pub(crate) async fn run(mut self) {
        let mut maintenance = tokio::time::interval(MAINTENANCE_TICK);
        maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // A second sender for the reserve branch, so waiting for room in the channel
        // does not hold a borrow of `self` while the other branches run.
        let events = self.events.clone();
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    None => break,
                    Some(Command::Shutdown { reply }) => {
                        let _ = reply.send(());
                        break;
                    }
                    Some(command) => self.on_command(command),
                },
                _ = maintenance.tick() => self.on_tick(Instant::now()),
                permit = events.reserve(), if !self.buffered.is_empty() && !self.events_closed => {
                    match permit {
                        Ok(permit) => {
                            let event = self.buffered.pop_front().expect("branch runs only with buffered events");
                            permit.send(event);
                        }
                        Err(_) => self.close_events(),
                    }
                }
            }
        }
        info!(member = %self.local_member, "network event loop stopped");
    }

    /// Hands an event to the node without waiting. Order is kept: while older events
    /// are buffered, new ones queue behind them. When the buffer is full the event
    /// is dropped, and a dropped gossip message is reported `Ignore` (so gossipsub
    /// neither forwards nor keeps it) and a dropped request is left unanswered.
    fn emit(&mut self, event: NetworkEvent) {
        if self.events_closed {
            self.drop_event(event);
            return;
        }
        if self.buffered.is_empty() {
            match self.events.try_send(event) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(event)) => self.buffered.push_back(event),
                Err(mpsc::error::TrySendError::Closed(event)) => {
                    self.close_events();
                    self.drop_event(event);
                }
            }
            return;
        }
        if self.buffered.len() >= self.limits.max_buffered_events {
            self.drop_event(event);
            return;
        }
        self.buffered.push_back(event);
        assert!(self.buffered.len() <= self.limits.max_buffered_events);
    }

    fn close_events(&mut self) {
        warn!("the node dropped the network event receiver; events are discarded from now on");
        self.events_closed = true;
        let buffered: Vec<NetworkEvent> = self.buffered.drain(..).collect();
        for event in buffered {
            self.drop_event(event);
        }
    }

    fn drop_event(&mut self, event: NetworkEvent) {
        self.dropped_events += 1;
        match event {
            NetworkEvent::Gossip(message) => {
                if let Some(peer) = self.book.peer_id_of(message.from) {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &gossipsub::MessageId::new(&message.message_id.0 .0),
                            &peer,
                            MessageAcceptance::Ignore,
                        );
                }
                debug!(message_id = %message.message_id, "event buffer full; gossip message ignored");
            }
            NetworkEvent::Request(request) => {
                // Dropping the channel tells the requester the request went unanswered.
                self.pending_inbound.remove(&request.id.0);
                debug!(from = %request.from, "event buffer full; inbound request dropped");
            }
            other => debug!(event = ?other, "event buffer full; event dropped"),
        }
    }

    fn on_tick(&mut self, now: Instant) {
        for (member, peer_id) in self.book.end_penalties(now) {
            info!(%member, "penalty over; the member may connect again");
            self.swarm.behaviour_mut().allowed.allow_peer(peer_id);
        }
        for dial in self.book.due_dials(now) {
            trace!(member = %dial.member, address = %dial.address, "dialing validator");
            let options = DialOpts::peer_id(dial.peer_id)
                .addresses(vec![dial.address])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(error) = self.swarm.dial(options) {
                debug!(member = %dial.member, %error, "dial not started");
            }
        }
    }

    /// Counts a rejected message against `member` and penalizes it if it is over its
    /// allowance.
    fn count_reject(&mut self, member: MemberId) {
        self.rejected_messages += 1;
        match self.book.record_reject(member, Instant::now()) {
            RejectOutcome::Counted | RejectOutcome::AlreadyPenalized => {}
            RejectOutcome::Penalize { .. } => {
                warn!(
                    %member,
                    penalty_ms = self.limits.reject_penalty.as_millis() as u64,
                    "member sent too many rejected gossip messages; disconnecting it for a while"
                );
                let peer_id = self.book.peer_id_of(member).expect("known member");
                // Removing the peer from the allow-list also closes its connections.
                self.swarm.behaviour_mut().allowed.disallow_peer(peer_id);
            }
        }
    }

    pub(crate) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Direct(event)) => self.on_direct(event),
            SwarmEvent::Behaviour(BehaviourEvent::Allowed(never)) => match never {},
            SwarmEvent::Behaviour(BehaviourEvent::Limits(never)) => match never {},
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                let Some(member) = self.book.member_of(&peer_id) else {
                    // The allow-list admits only validators, so this is a bug in the
                    // list, not a hostile peer; close the connection anyway.
                    warn!(%peer_id, "connected to a peer that is not a validator; closing");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                };
                debug!(%member, address = %endpoint.get_remote_address(), "connection established");
                if num_established.get() == 1 {
                    info!(%member, "validator connected");
                    self.book.on_connected(member);
                    self.emit(NetworkEvent::PeerConnected { member });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                let Some(member) = self.book.member_of(&peer_id) else {
                    return;
                };
                debug!(%member, cause = ?cause, "connection closed");
                // A peer id that moved to another member id closes its old
                // connections after the move; the new member was never connected.
                if num_established == 0 && self.book.is_connected(member) {
                    info!(%member, "validator disconnected");
                    self.book.on_disconnected(member, Instant::now());
                    self.emit(NetworkEvent::PeerDisconnected { member });
                }
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                peer_id,
                ..
            } => match error {
                ListenError::Denied { cause } => {
                    if cause
                        .downcast_ref::<allow_block_list::NotAllowed>()
                        .is_some()
                    {
                        self.denied_connections += 1;
                        match peer_id.and_then(|peer| self.book.member_of(&peer)) {
                            Some(member) => {
                                debug!(%member, "refused a connection from a penalized member")
                            }
                            None => {
                                let key = peer_id.map_or_else(
                                    || send_back_addr.to_string(),
                                    |peer| peer.to_string(),
                                );
                                if let Some(suppressed) = self.stranger_log_due(key) {
                                    warn!(
                                        peer_id = ?peer_id,
                                        address = %send_back_addr,
                                        refused_since_last_log = suppressed,
                                        "refused a connection from a peer that is not a current member (logged at most once a minute per peer)"
                                    );
                                }
                            }
                        }
                    } else {
                        warn!(address = %send_back_addr, %cause, "refused an incoming connection (limit)");
                    }
                }
                other => {
                    debug!(address = %send_back_addr, error = %other, "incoming connection failed")
                }
            },
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                let member = peer_id.and_then(|peer| self.book.member_of(&peer));
                match &error {
                    // Our own dials race the other side's; not worth a log line.
                    DialError::DialPeerConditionFalse(_) => {}
                    _ => debug!(member = ?member, %error, "dial failed; will retry with backoff"),
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                if !self.listen_addresses.contains(&address) {
                    self.listen_addresses.push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addresses.retain(|known| known != &address);
            }
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                warn!(?addresses, ?reason, "listener closed");
                self.listen_addresses
                    .retain(|known| !addresses.contains(known));
            }
            other => trace!(event = ?other, "swarm event"),
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            match event {
                gossipsub::Event::GossipsubNotSupported { peer_id } => {
                    warn!(%peer_id, "validator does not speak gossipsub")
                }
                gossipsub::Event::SlowPeer {
                    peer_id,
                    failed_messages,
                } => warn!(%peer_id, ?failed_messages, "validator is slow to take gossip"),
                other => trace!(event = ?other, "gossipsub event"),
            }
            return;
        };
        let verdict = |loop_: &mut EventLoop, acceptance| {
            loop_
                .swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&message_id, &propagation_source, acceptance)
        };
        let Some(from) = self.book.member_of(&propagation_source) else {
            verdict(self, MessageAcceptance::Ignore);
            return;
        };
        let Some(topic) = self.topics.get(&message.topic).copied() else {
            debug!(%from, topic = %message.topic, "gossip on an unknown topic ignored");
            verdict(self, MessageAcceptance::Ignore);
            return;
        };
        if message.data.len() > self.limits.max_gossip_payload_bytes {
            debug!(%from, bytes = message.data.len(), "oversized gossip rejected");
            verdict(self, MessageAcceptance::Reject);
            self.count_reject(from);
            return;
        }
        let Ok(id) = <[u8; 32]>::try_from(message_id.0.as_slice()) else {
            // Ids come from our own message-id function, which always gives 32 bytes;
            // if that ever changed, drop the message rather than the node.
            warn!(%from, "gossip message id is not a 32-byte hash; ignored");
            verdict(self, MessageAcceptance::Ignore);
            return;
        };
        trace!(%from, ?topic, bytes = message.data.len(), "gossip received");
        self.emit(NetworkEvent::Gossip(GossipMessage {
            topic,
            payload: message.data,
            from,
            message_id: MessageId(Hash(id)),
        }));
    }

    fn on_sync(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request_id,
                    request,
                    channel,
                } => {
                    let Some(from) = self.book.member_of(&peer) else {
                        return;
                    };
                    if self.pending_inbound.len() >= self.limits.max_pending_inbound_requests {
                        warn!(%from, "too many unanswered inbound requests; dropping one");
                        return;
                    }
                    self.pending_inbound.insert(request_id, channel);
                    self.emit(NetworkEvent::Request(InboundRequest {
                        id: InboundRequestId(request_id),
                        from,
                        payload: request,
                    }));
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((_, reply)) = self.pending_outbound.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some((member, reply)) = self.pending_outbound.remove(&request_id) {
                    debug!(%member, %error, "request failed");
                    let failure = match error {
                        request_response::OutboundFailure::Timeout => {
                            NetworkError::RequestTimedOut {
                                member,
                                timeout_ms: self.limits.request_timeout.as_millis() as u64,
                            }
                        }
                        other => NetworkError::RequestFailed {
                            member,
                            reason: other.to_string(),
                        },
                    };
                    let _ = reply.send(Err(failure));
                }
            }
            request_response::Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.pending_inbound.remove(&request_id);
                debug!(%peer, %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Whether a refusal of `stranger` is due a log line (at most one per
    /// [`STRANGER_LOG_INTERVAL`] each), and if so how many went unlogged before it.
    /// The map is bounded: when full, the oldest entries are forgotten.
    fn stranger_log_due(&mut self, stranger: String) -> Option<u64> {
        let now = Instant::now();
        if self.refused_strangers.len() >= MAX_REMEMBERED_STRANGERS
            && !self.refused_strangers.contains_key(&stranger)
        {
            self.refused_strangers
                .retain(|_, (logged, _)| now.duration_since(*logged) < STRANGER_LOG_INTERVAL);
            if self.refused_strangers.len() >= MAX_REMEMBERED_STRANGERS {
                self.refused_strangers.clear();
            }
        }
        let entry = self
            .refused_strangers
            .entry(stranger)
            .or_insert((now - STRANGER_LOG_INTERVAL * 2, 0));
        if now.duration_since(entry.0) >= STRANGER_LOG_INTERVAL {
            let suppressed = entry.1;
            *entry = (now, 0);
            Some(suppressed)
        } else {
            entry.1 += 1;
            None
        }
    }

    fn on_direct(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let Some(from) = self.book.member_of(&peer) else {
                        return;
                    };
                    // Acknowledge at once: the message is the request itself.
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .direct
                        .send_response(channel, Vec::new());
                    trace!(%from, bytes = request.len(), "direct message received");
                    self.emit(NetworkEvent::Direct(DirectMessage {
                        from,
                        payload: request,
                    }));
                }
                request_response::Message::Response { request_id, .. } => {
                    self.direct_in_flight.remove(&request_id);
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                self.direct_in_flight.remove(&request_id);
                debug!(%peer, %error, "direct message not delivered");
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound direct message failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn send_direct(&mut self, member: MemberId, payload: Vec<u8>) -> Result<(), NetworkError> {
        let peer_id = self
            .book
            .peer_id_of(member)
            .ok_or(NetworkError::UnknownMember { member })?;
        if !self.swarm.is_connected(&peer_id) {
            return Err(NetworkError::NotConnected { member });
        }
        let limit_bytes = self.limits.max_gossip_payload_bytes;
        if payload.len() > limit_bytes {
            return Err(NetworkError::PayloadTooLarge {
                size_bytes: payload.len(),
                limit_bytes,
            });
        }
        let limit = self.limits.max_pending_outbound_requests;
        if self.direct_in_flight.len() >= limit {
            return Err(NetworkError::Busy {
                what: "direct messages",
                limit,
            });
        }
        let request_id = self
            .swarm
            .behaviour_mut()
            .direct
            .send_request(&peer_id, payload);
        self.direct_in_flight.insert(request_id);
        assert!(self.direct_in_flight.len() <= limit);
        Ok(())
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish {
                topic,
                payload,
                reply,
            } => {
                if let Err(Err(error)) = reply.send(self.publish(topic, payload)) {
                    // A detached publish: no one waits for the answer.
                    debug!(%error, ?topic, "gossip not published");
                }
            }
            Command::ReportValidation {
                message_id,
                from,
                validation,
                reply,
            } => {
                let _ = reply.send(self.report_validation(message_id, from, validation));
            }
            Command::Request {
                member,
                payload,
                reply,
            } => self.request(member, payload, reply),
            Command::Send {
                member,
                payload,
                reply,
            } => {
                if let Err(Err(error)) = reply.send(self.send_direct(member, payload)) {
                    // A detached send: no one waits for the answer.
                    debug!(%error, %member, "direct message not sent");
                }
            }
            Command::Respond { id, payload, reply } => {
                let _ = reply.send(self.respond(id, payload));
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::SetMembers { entries, reply } => {
                let _ = reply.send(self.set_members(entries, Instant::now()));
            }
            Command::Shutdown { .. } => unreachable!("run() handles shutdown"),
        }
    }

    /// Replaces the allow-list (see [`crate::NetworkHandle::set_members`]). Dropped
    /// identities are refused before new ones are allowed, so an identity that moved
    /// from one member id to another is disconnected and must connect again under
    /// its new member id. New members are dialed on the next maintenance tick.
    pub(crate) fn set_members(&mut self, entries: Vec<Entry>, now: Instant) -> MembershipChange {
        let plan = self.book.apply_members(entries, now);
        let behaviour = self.swarm.behaviour_mut();
        for peer_id in &plan.gossip_removed {
            behaviour.gossipsub.remove_explicit_peer(peer_id);
        }
        for dropped in &plan.dropped {
            // Removing the peer from the allow-list also closes its connections
            // (a penalized one is already off the list and disconnected).
            behaviour.allowed.disallow_peer(dropped.peer_id);
        }
        for (_, peer_id) in &plan.admitted {
            behaviour.allowed.allow_peer(*peer_id);
        }
        for peer_id in &plan.gossip_added {
            behaviour.gossipsub.add_explicit_peer(peer_id);
        }
        for dropped in &plan.dropped {
            info!(
                member = %dropped.member,
                peer_id = %dropped.peer_id,
                penalized = dropped.was_penalized,
                "identity no longer a member; disconnected and refused from now on"
            );
            if dropped.was_connected {
                // Its connections close without a member to name (the book no
                // longer maps its peer id), so the node hears of it here.
                self.emit(NetworkEvent::PeerDisconnected {
                    member: dropped.member,
                });
            }
        }
        for (member, peer_id) in &plan.admitted {
            info!(%member, %peer_id, "identity allowed");
        }
        if !plan.change.is_empty() {
            info!(
                added = ?plan.change.added,
                removed = ?plan.change.removed,
                rekeyed = ?plan.change.rekeyed,
                members = self.book.members().len(),
                "member list changed"
            );
        }
        self.on_tick(now);
        plan.change
    }

    fn publish(&mut self, topic: Topic, payload: Vec<u8>) -> Result<MessageId, NetworkError> {
        let limit_bytes = self.limits.max_gossip_payload_bytes;
        if payload.len() > limit_bytes {
            return Err(NetworkError::PayloadTooLarge {
                size_bytes: payload.len(),
                limit_bytes,
            });
        }
        let hash = self.topic_hashes[&topic].clone();
        let message_id = gossip_message_id(hash.as_str(), &payload);
        match self.swarm.behaviour_mut().gossipsub.publish(hash, payload) {
            Ok(id) => {
                assert_eq!(id.0.as_slice(), message_id.0.as_bytes());
                Ok(message_id)
            }
            Err(gossipsub::PublishError::Duplicate) => {
                Err(NetworkError::DuplicatePayload { topic, message_id })
            }
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                Err(NetworkError::NoPeers { topic })
            }
            Err(error) => Err(NetworkError::Publish {
                topic,
                reason: error.to_string(),
            }),
        }
    }

    fn report_validation(
        &mut self,
        message_id: MessageId,
        from: MemberId,
        validation: Validation,
    ) -> Result<bool, NetworkError> {
        let peer_id = self
            .book
            .peer_id_of(from)
            .ok_or(NetworkError::UnknownMember { member: from })?;
        let acceptance = match validation {
            Validation::Accept => MessageAcceptance::Accept,
            Validation::Reject => MessageAcceptance::Reject,
            Validation::Ignore => MessageAcceptance::Ignore,
        };
        let pending = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(
                &gossipsub::MessageId::new(message_id.0.as_bytes()),
                &peer_id,
                acceptance,
            );
        if validation == Validation::Reject {
            self.count_reject(from);
        }
        Ok(pending)
    }

    fn request(&mut self, member: MemberId, payload: Vec<u8>, reply: ResponseReply) {
        let Some(peer_id) = self.book.peer_id_of(member) else {
            let _ = reply.send(Err(NetworkError::UnknownMember { member }));
            return;
        };
        if self.book.is_penalized(member) {
            let _ = reply.send(Err(NetworkError::RequestFailed {
                member,
                reason: "the member is disconnected as a penalty for rejected gossip".to_string(),
            }));
            return;
        }
        let limit_bytes = self.limits.max_request_bytes;
        if payload.len() > limit_bytes {
            let _ = reply.send(Err(NetworkError::PayloadTooLarge {
                size_bytes: payload.len(),
                limit_bytes,
            }));
            return;
        }
        let limit = self.limits.max_pending_outbound_requests;
        if self.pending_outbound.len() >= limit {
            let _ = reply.send(Err(NetworkError::Busy {
                what: "outbound requests",
                limit,
            }));
            return;
        }
        let addresses = self.book.address_of(member).into_iter().collect();
        let request_id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request_with_addresses(&peer_id, payload, addresses);
        self.pending_outbound.insert(request_id, (member, reply));
        assert!(self.pending_outbound.len() <= limit);
    }

    fn respond(&mut self, id: InboundRequestId, payload: Vec<u8>) -> Result<(), NetworkError> {
        let limit_bytes = self.limits.max_response_bytes;
        if payload.len() > limit_bytes {
            return Err(NetworkError::PayloadTooLarge {
                size_bytes: payload.len(),
                limit_bytes,
            });
        }
        let channel = self
            .pending_inbound
            .remove(&id.0)
            .ok_or(NetworkError::UnknownRequest { id })?;
        self.swarm
            .behaviour_mut()
            .sync
            .send_response(channel, payload)
            .map_err(|_| NetworkError::UnknownRequest { id })
    }

    fn status(&self) -> NetworkStatus {
        let mut subscribers: BTreeMap<Topic, Vec<MemberId>> = Topic::ALL
            .iter()
            .map(|topic| (*topic, Vec::new()))
            .collect();
        for (peer_id, topic_hashes) in self.swarm.behaviour().gossipsub.all_peers() {
            let Some(member) = self.book.member_of(peer_id) else {
                continue;
            };
            for hash in topic_hashes {
                if let Some(topic) = self.topics.get(hash) {
                    subscribers.entry(*topic).or_default().push(member);
                }
            }
        }
        for members in subscribers.values_mut() {
            members.sort();
            members.dedup();
        }
        NetworkStatus {
            subscribers,
            local_member: self.local_member,
            local_peer_id: *self.swarm.local_peer_id(),
            listen_addresses: self.listen_addresses.clone(),
            members: self.book.members(),
            connected: self.book.connected(),
            penalized: self.book.penalized(),
            denied_connections: self.denied_connections,
            rejected_messages: self.rejected_messages,
            dropped_events: self.dropped_events,
        }
    }
}
