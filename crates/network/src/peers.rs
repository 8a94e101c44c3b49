//! Pure bookkeeping of the other members: who may connect (the allow-list), when to
//! (re)dial each one, and how many rejected gossip messages each has sent us lately.
//! No I/O and no clock: every method takes `now`, so the rules are unit-tested
//! without sockets or sleeps.
//!
//! Rules:
//! - A member with a known address that is not connected and not penalized is
//!   dialed when its `next_dial_at` comes. Each attempt pushes the next one back by
//!   the current backoff and doubles the backoff, up to `redial_max`; a successful
//!   connection resets the backoff to `redial_initial`.
//! - A member that sends more than `max_rejects_per_window` rejected messages in
//!   one `reject_window` is penalized: disconnected, refused and not dialed for
//!   `reject_penalty`, then allowed and dialed again.
//! - [`PeerBook::apply_members`] replaces the list. A member is identified by the
//!   pair (member id, peer id): a pair no longer listed (a removed member, or a
//!   member whose key was rotated away) is dropped with all its state; a new pair
//!   starts fresh and is dialed at once if it has an address; a pair listed before
//!   and now keeps its connection, backoff and penalty, and only takes the new
//!   address and validator flag. Applying the same list twice changes nothing.

use crate::config::NetworkLimits;
use crate::error::NetworkError;
use libp2p::{Multiaddr, PeerId};
use seisan_types::MemberId;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// The most members a list given to [`crate::NetworkHandle::set_members`] (or
/// genesis) may hold, this node included. A consortium has a handful; the bound
/// keeps every per-member map of the loop small whatever the caller passes.
pub const MAX_MEMBERS: usize = 256;

/// A member the network allows, as the event loop keeps it: its identity already
/// converted to a libp2p peer id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub member: MemberId,
    pub peer_id: PeerId,
    pub address: Option<Multiaddr>,
    pub validator: bool,
}

/// Checks a member list and converts it for the loop: at most [`MAX_MEMBERS`]
/// entries, no member id twice, no key shared by two members. The local member is
/// left out (whatever key the list gives it: a node cannot change its own identity
/// without restarting).
pub(crate) fn entries(
    local_member: MemberId,
    local_peer_id: PeerId,
    members: Vec<crate::config::PeerMember>,
) -> Result<Vec<Entry>, NetworkError> {
    if members.len() > MAX_MEMBERS {
        return Err(NetworkError::TooManyMembers {
            count: members.len(),
            limit: MAX_MEMBERS,
        });
    }
    let mut seen_members = BTreeMap::new();
    let mut owners: HashMap<PeerId, MemberId> = HashMap::new();
    let mut list = Vec::with_capacity(members.len());
    for member in members {
        let peer_id = crate::config::peer_id_of(member.member, &member.public_key)?;
        if seen_members.insert(member.member, ()).is_some() {
            return Err(NetworkError::DuplicateMember {
                member: member.member,
            });
        }
        if member.member == local_member {
            continue;
        }
        if peer_id == local_peer_id {
            return Err(NetworkError::SharedKey {
                member: member.member,
                other: local_member,
            });
        }
        if let Some(other) = owners.insert(peer_id, member.member) {
            return Err(NetworkError::SharedKey {
                member: member.member,
                other,
            });
        }
        list.push(Entry {
            member: member.member,
            peer_id,
            address: member.address,
            validator: member.validator,
        });
    }
    assert!(list.len() <= MAX_MEMBERS);
    Ok(list)
}

/// What [`PeerBook::apply_members`] asks of the swarm, and what it tells the node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MembershipPlan {
    /// Identities no longer allowed: refuse them and close their connections.
    pub dropped: Vec<Dropped>,
    /// Identities newly allowed (new members, new keys).
    pub admitted: Vec<(MemberId, PeerId)>,
    /// Peers that become explicit gossip peers (validators flood to each other).
    pub gossip_added: Vec<PeerId>,
    /// Peers that stop being explicit gossip peers (dropped, or no longer validators).
    pub gossip_removed: Vec<PeerId>,
    /// The summary returned to the caller.
    pub change: crate::ingress::MembershipChange,
}

impl MembershipPlan {
    fn drop_identity(&mut self, member: MemberId, state: &PeerState) {
        if state.validator {
            self.gossip_removed.push(state.peer_id);
        }
        self.dropped.push(Dropped {
            member,
            peer_id: state.peer_id,
            was_connected: state.connected,
            was_penalized: state.penalized_until.is_some(),
        });
    }

    fn admit(&mut self, entry: &Entry) {
        if entry.validator {
            self.gossip_added.push(entry.peer_id);
        }
        self.admitted.push((entry.member, entry.peer_id));
    }
}

/// An identity the new list no longer holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dropped {
    pub member: MemberId,
    pub peer_id: PeerId,
    /// Whether it had a connection (the node is told it disconnected).
    pub was_connected: bool,
    /// Whether it was penalized (already refused; its connections already closed).
    pub was_penalized: bool,
}

#[derive(Clone, Debug)]
struct PeerState {
    peer_id: PeerId,
    address: Option<Multiaddr>,
    validator: bool,
    connected: bool,
    backoff: Duration,
    next_dial_at: Option<Instant>,
    rejects_in_window: u32,
    window_started_at: Instant,
    penalized_until: Option<Instant>,
}

/// A dial the event loop should start now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dial {
    pub member: MemberId,
    pub peer_id: PeerId,
    pub address: Multiaddr,
}

/// What one more rejected message from a member means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RejectOutcome {
    /// Counted; the member is still within its allowance.
    Counted,
    /// Over the allowance: disconnect and refuse the member until `until`.
    Penalize { until: Instant },
    /// Already penalized; nothing more to do.
    AlreadyPenalized,
}

#[derive(Debug)]
pub(crate) struct PeerBook {
    peers: BTreeMap<MemberId, PeerState>,
    members_by_peer_id: HashMap<PeerId, MemberId>,
    redial_initial: Duration,
    redial_max: Duration,
    max_rejects_per_window: u32,
    reject_window: Duration,
    reject_penalty: Duration,
}

impl PeerBook {
    /// An empty book; [`PeerBook::apply_members`] fills it.
    pub(crate) fn new(limits: &NetworkLimits) -> PeerBook {
        assert!(limits.redial_initial <= limits.redial_max);
        assert!(!limits.redial_initial.is_zero());
        PeerBook {
            peers: BTreeMap::new(),
            members_by_peer_id: HashMap::new(),
            redial_initial: limits.redial_initial,
            redial_max: limits.redial_max,
            max_rejects_per_window: limits.max_rejects_per_window,
            reject_window: limits.reject_window,
            reject_penalty: limits.reject_penalty,
        }
    }

    fn fresh(&self, entry: &Entry, now: Instant) -> PeerState {
        PeerState {
            peer_id: entry.peer_id,
            address: entry.address.clone(),
            validator: entry.validator,
            connected: false,
            backoff: self.redial_initial,
            next_dial_at: entry.address.as_ref().map(|_| now),
            rejects_in_window: 0,
            window_started_at: now,
            penalized_until: None,
        }
    }

    /// Replaces the member list with `entries` (checked by [`entries`]: distinct
    /// members and peer ids) and says what the swarm must do about it. See the
    /// module docs for the rules.
    pub(crate) fn apply_members(&mut self, entries: Vec<Entry>, now: Instant) -> MembershipPlan {
        assert!(entries.len() <= MAX_MEMBERS);
        let mut plan = MembershipPlan::default();
        let mut next: BTreeMap<MemberId, Entry> = BTreeMap::new();
        for entry in entries {
            assert!(
                next.insert(entry.member, entry).is_none(),
                "entries() lets no member id through twice"
            );
        }
        let mut old = std::mem::take(&mut self.peers);
        self.members_by_peer_id.clear();
        for (member, entry) in next {
            let state = match old.remove(&member) {
                Some(mut state) if state.peer_id == entry.peer_id => {
                    // The same identity: keep its connection, backoff and penalty.
                    if state.validator != entry.validator {
                        if entry.validator {
                            plan.gossip_added.push(entry.peer_id);
                        } else {
                            plan.gossip_removed.push(entry.peer_id);
                        }
                        state.validator = entry.validator;
                    }
                    if state.address != entry.address {
                        state.address = entry.address;
                        state.backoff = self.redial_initial;
                        let idle = !state.connected && state.penalized_until.is_none();
                        state.next_dial_at = state.address.as_ref().filter(|_| idle).map(|_| now);
                    }
                    state
                }
                Some(previous) => {
                    // A rotated key: the old identity goes, the new one starts fresh.
                    plan.change.rekeyed.push(member);
                    plan.drop_identity(member, &previous);
                    plan.admit(&entry);
                    self.fresh(&entry, now)
                }
                None => {
                    plan.change.added.push(member);
                    plan.admit(&entry);
                    self.fresh(&entry, now)
                }
            };
            assert!(
                self.members_by_peer_id
                    .insert(state.peer_id, member)
                    .is_none(),
                "entries() lets no peer id through twice"
            );
            self.peers.insert(member, state);
        }
        for (member, previous) in old {
            plan.change.removed.push(member);
            plan.drop_identity(member, &previous);
        }
        assert_eq!(self.peers.len(), self.members_by_peer_id.len());
        plan
    }

    /// The listed members, in member-id order.
    pub(crate) fn members(&self) -> Vec<MemberId> {
        self.peers.keys().copied().collect()
    }

    pub(crate) fn member_of(&self, peer_id: &PeerId) -> Option<MemberId> {
        self.members_by_peer_id.get(peer_id).copied()
    }

    pub(crate) fn peer_id_of(&self, member: MemberId) -> Option<PeerId> {
        self.peers.get(&member).map(|state| state.peer_id)
    }

    pub(crate) fn address_of(&self, member: MemberId) -> Option<Multiaddr> {
        self.peers.get(&member)?.address.clone()
    }

    pub(crate) fn is_connected(&self, member: MemberId) -> bool {
        self.peers.get(&member).is_some_and(|state| state.connected)
    }

    pub(crate) fn is_penalized(&self, member: MemberId) -> bool {
        self.peers
            .get(&member)
            .is_some_and(|state| state.penalized_until.is_some())
    }

    pub(crate) fn penalized(&self) -> Vec<MemberId> {
        self.peers
            .iter()
            .filter(|(_, state)| state.penalized_until.is_some())
            .map(|(member, _)| *member)
            .collect()
    }

    pub(crate) fn connected(&self) -> Vec<MemberId> {
        self.peers
            .iter()
            .filter(|(_, state)| state.connected)
            .map(|(member, _)| *member)
            .collect()
    }

    /// The first connection to `member` is up.
    pub(crate) fn on_connected(&mut self, member: MemberId) {
        let initial = self.redial_initial;
        let state = self.peers.get_mut(&member).expect("known member");
        state.connected = true;
        state.backoff = initial;
        state.next_dial_at = None;
    }

    /// The last connection to `member` closed: redial after the current backoff,
    /// unless it is penalized or has no address.
    pub(crate) fn on_disconnected(&mut self, member: MemberId, now: Instant) {
        let state = self.peers.get_mut(&member).expect("known member");
        state.connected = false;
        if state.penalized_until.is_none() && state.address.is_some() {
            state.next_dial_at = Some(now + state.backoff);
        }
    }

    /// The dials due at `now`; each one's next attempt is scheduled a backoff later,
    /// and the backoff doubles (capped).
    pub(crate) fn due_dials(&mut self, now: Instant) -> Vec<Dial> {
        let max = self.redial_max;
        let mut dials = Vec::new();
        for (member, state) in &mut self.peers {
            let due = state.next_dial_at.is_some_and(|at| at <= now);
            if !due || state.connected || state.penalized_until.is_some() {
                continue;
            }
            let address = state
                .address
                .clone()
                .expect("a dial is only scheduled for a member with an address");
            dials.push(Dial {
                member: *member,
                peer_id: state.peer_id,
                address,
            });
            state.next_dial_at = Some(now + state.backoff);
            state.backoff = (state.backoff * 2).min(max);
        }
        dials
    }

    /// Counts one rejected message from `member`.
    pub(crate) fn record_reject(&mut self, member: MemberId, now: Instant) -> RejectOutcome {
        let window = self.reject_window;
        let penalty = self.reject_penalty;
        let max = self.max_rejects_per_window;
        let state = self.peers.get_mut(&member).expect("known member");
        if state.penalized_until.is_some() {
            return RejectOutcome::AlreadyPenalized;
        }
        if now.saturating_duration_since(state.window_started_at) >= window {
            state.window_started_at = now;
            state.rejects_in_window = 0;
        }
        state.rejects_in_window = state.rejects_in_window.saturating_add(1);
        if state.rejects_in_window <= max {
            return RejectOutcome::Counted;
        }
        let until = now + penalty;
        state.penalized_until = Some(until);
        state.rejects_in_window = 0;
        state.next_dial_at = None;
        RejectOutcome::Penalize { until }
    }

    /// Ends the penalties that are over at `now`, schedules an immediate dial for
    /// each such member, and returns them so the loop can allow them again.
    pub(crate) fn end_penalties(&mut self, now: Instant) -> Vec<(MemberId, PeerId)> {
        let initial = self.redial_initial;
        let mut ended = Vec::new();
        for (member, state) in &mut self.peers {
            if state.penalized_until.is_some_and(|until| until <= now) {
                state.penalized_until = None;
                state.window_started_at = now;
                state.backoff = initial;
                if state.address.is_some() && !state.connected {
                    state.next_dial_at = Some(now);
                }
                ended.push((*member, state.peer_id));
            }
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> NetworkLimits {
        NetworkLimits {
            redial_initial: Duration::from_millis(250),
            redial_max: Duration::from_secs(5),
            max_rejects_per_window: 2,
            reject_window: Duration::from_secs(10),
            reject_penalty: Duration::from_secs(30),
            ..NetworkLimits::default()
        }
    }

    fn entry(member: u32, peer_id: PeerId, address: Option<Multiaddr>) -> Entry {
        Entry {
            member: MemberId(member),
            peer_id,
            address,
            validator: true,
        }
    }

    fn address(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    fn book(now: Instant) -> (PeerBook, PeerId, PeerId) {
        let dialed = PeerId::random();
        let listener_only = PeerId::random();
        let mut book = PeerBook::new(&limits());
        let plan = book.apply_members(
            vec![
                entry(1, dialed, Some(address(7101))),
                entry(2, listener_only, None),
            ],
            now,
        );
        assert_eq!(plan.change.added, vec![MemberId(1), MemberId(2)]);
        assert_eq!(
            plan.admitted,
            vec![(MemberId(1), dialed), (MemberId(2), listener_only)]
        );
        assert!(plan.dropped.is_empty());
        (book, dialed, listener_only)
    }

    #[test]
    fn dials_at_start_then_backs_off_exponentially_up_to_the_cap() {
        let start = Instant::now();
        let (mut book, dialed, listener_only) = book(start);
        assert_eq!(book.member_of(&dialed), Some(MemberId(1)));
        assert_eq!(book.member_of(&listener_only), Some(MemberId(2)));

        let mut now = start;
        let mut gaps = Vec::new();
        let mut last_dial = None;
        // Step a simulated clock 50 ms at a time for 30 s, dialing whatever is due.
        while now < start + Duration::from_secs(30) {
            let dials = book.due_dials(now);
            // The member without an address is never dialed.
            assert!(dials.iter().all(|dial| dial.member == MemberId(1)));
            if !dials.is_empty() {
                if let Some(previous) = last_dial {
                    gaps.push(now - previous);
                }
                last_dial = Some(now);
            }
            now += Duration::from_millis(50);
        }
        let millis: Vec<u128> = gaps.iter().take(6).map(Duration::as_millis).collect();
        assert_eq!(millis, vec![250, 500, 1000, 2000, 4000, 5000]);
        assert!(gaps.iter().all(|gap| *gap <= Duration::from_secs(5)));
    }

    #[test]
    fn a_connection_resets_the_backoff_and_a_disconnection_schedules_a_redial() {
        let start = Instant::now();
        let (mut book, _, _) = book(start);
        for step in 0..5 {
            book.due_dials(start + Duration::from_secs(10 * step));
        }
        book.on_connected(MemberId(1));
        assert_eq!(book.connected(), vec![MemberId(1)]);
        assert!(book.due_dials(start + Duration::from_secs(100)).is_empty());

        let lost = start + Duration::from_secs(200);
        book.on_disconnected(MemberId(1), lost);
        assert!(book.due_dials(lost).is_empty());
        let dials = book.due_dials(lost + Duration::from_millis(250));
        assert_eq!(dials.len(), 1);
        assert_eq!(dials[0].member, MemberId(1));
    }

    #[test]
    fn too_many_rejects_penalize_until_the_penalty_ends() {
        let start = Instant::now();
        let (mut book, dialed, _) = book(start);
        book.due_dials(start);
        book.on_connected(MemberId(1));

        assert_eq!(
            book.record_reject(MemberId(1), start),
            RejectOutcome::Counted
        );
        assert_eq!(
            book.record_reject(MemberId(1), start),
            RejectOutcome::Counted
        );
        let third = start + Duration::from_secs(1);
        let outcome = book.record_reject(MemberId(1), third);
        let until = third + Duration::from_secs(30);
        assert_eq!(outcome, RejectOutcome::Penalize { until });
        assert_eq!(
            book.record_reject(MemberId(1), third),
            RejectOutcome::AlreadyPenalized
        );
        assert_eq!(book.penalized(), vec![MemberId(1)]);

        // Disconnected while penalized: no redial until the penalty ends.
        book.on_disconnected(MemberId(1), third);
        assert!(book.due_dials(third + Duration::from_secs(20)).is_empty());
        assert!(book
            .end_penalties(until - Duration::from_millis(1))
            .is_empty());
        assert_eq!(book.end_penalties(until), vec![(MemberId(1), dialed)]);
        assert!(!book.is_penalized(MemberId(1)));
        assert_eq!(book.due_dials(until).len(), 1);
    }

    #[test]
    fn rejects_spread_over_windows_are_not_penalized() {
        let start = Instant::now();
        let (mut book, _, _) = book(start);
        // One reject every 6 s against an allowance of 2 per 10 s window.
        for step in 0..20u32 {
            let now = start + Duration::from_secs(6) * step;
            assert_eq!(book.record_reject(MemberId(2), now), RejectOutcome::Counted);
        }
        assert!(book.penalized().is_empty());
    }

    #[test]
    fn a_removed_member_is_dropped_and_never_dialed_again() {
        let start = Instant::now();
        let (mut book, dialed, listener_only) = book(start);
        book.due_dials(start);
        book.on_connected(MemberId(1));
        let later = start + Duration::from_secs(1);
        let plan = book.apply_members(vec![entry(2, listener_only, None)], later);
        assert_eq!(plan.change.removed, vec![MemberId(1)]);
        assert!(plan.change.added.is_empty() && plan.change.rekeyed.is_empty());
        assert_eq!(
            plan.dropped,
            vec![Dropped {
                member: MemberId(1),
                peer_id: dialed,
                was_connected: true,
                was_penalized: false,
            }]
        );
        assert!(plan.admitted.is_empty());
        assert_eq!(plan.gossip_removed, vec![dialed]);
        assert_eq!(book.member_of(&dialed), None);
        assert_eq!(book.peer_id_of(MemberId(1)), None);
        assert_eq!(book.members(), vec![MemberId(2)]);
        assert!(book.connected().is_empty());
        for step in 0..100 {
            assert!(book.due_dials(later + Duration::from_secs(step)).is_empty());
        }
    }

    #[test]
    fn an_added_member_is_admitted_and_dialed_at_once() {
        let start = Instant::now();
        let (mut book, dialed, listener_only) = book(start);
        book.due_dials(start);
        book.on_connected(MemberId(1));
        let newcomer = PeerId::random();
        let later = start + Duration::from_secs(3);
        let plan = book.apply_members(
            vec![
                entry(1, dialed, Some(address(7101))),
                entry(2, listener_only, None),
                entry(3, newcomer, Some(address(7103))),
            ],
            later,
        );
        assert_eq!(plan.change.added, vec![MemberId(3)]);
        assert!(plan.change.removed.is_empty() && plan.change.rekeyed.is_empty());
        assert_eq!(plan.admitted, vec![(MemberId(3), newcomer)]);
        assert_eq!(plan.gossip_added, vec![newcomer]);
        assert!(plan.dropped.is_empty() && plan.gossip_removed.is_empty());
        assert_eq!(book.member_of(&newcomer), Some(MemberId(3)));
        // The connected member keeps its connection; only the newcomer is dialed.
        assert_eq!(book.connected(), vec![MemberId(1)]);
        assert_eq!(
            book.due_dials(later),
            vec![Dial {
                member: MemberId(3),
                peer_id: newcomer,
                address: address(7103),
            }]
        );
    }

    #[test]
    fn a_rotated_key_drops_the_old_identity_and_admits_the_new_one() {
        let start = Instant::now();
        let (mut book, dialed, listener_only) = book(start);
        book.due_dials(start);
        book.on_connected(MemberId(1));
        let rotated = PeerId::random();
        let plan = book.apply_members(
            vec![
                entry(1, rotated, Some(address(7101))),
                entry(2, listener_only, None),
            ],
            start,
        );
        assert_eq!(plan.change.rekeyed, vec![MemberId(1)]);
        assert!(plan.change.added.is_empty() && plan.change.removed.is_empty());
        assert_eq!(plan.dropped.len(), 1);
        assert_eq!(plan.dropped[0].peer_id, dialed);
        assert!(plan.dropped[0].was_connected);
        assert_eq!(plan.admitted, vec![(MemberId(1), rotated)]);
        assert_eq!(plan.gossip_removed, vec![dialed]);
        assert_eq!(plan.gossip_added, vec![rotated]);
        assert_eq!(book.member_of(&dialed), None);
        assert_eq!(book.member_of(&rotated), Some(MemberId(1)));
        assert_eq!(book.peer_id_of(MemberId(1)), Some(rotated));
        // The new identity is not connected yet and is dialed at once.
        assert!(book.connected().is_empty());
        let dials = book.due_dials(start);
        assert_eq!(dials.len(), 1);
        assert_eq!(dials[0].peer_id, rotated);
    }

    #[test]
    fn the_same_list_again_changes_nothing_and_keeps_a_penalty() {
        let start = Instant::now();
        let (mut book, dialed, listener_only) = book(start);
        book.due_dials(start);
        book.on_connected(MemberId(1));
        for _ in 0..3 {
            book.record_reject(MemberId(1), start);
        }
        assert_eq!(book.penalized(), vec![MemberId(1)]);
        book.on_disconnected(MemberId(1), start);
        let same = vec![
            entry(1, dialed, Some(address(7101))),
            entry(2, listener_only, None),
        ];
        for _ in 0..2 {
            let plan = book.apply_members(same.clone(), start + Duration::from_secs(1));
            assert_eq!(plan, MembershipPlan::default());
        }
        // Still penalized: not re-admitted and not dialed before the penalty ends.
        assert_eq!(book.penalized(), vec![MemberId(1)]);
        assert!(book.due_dials(start + Duration::from_secs(10)).is_empty());
        assert_eq!(book.members(), vec![MemberId(1), MemberId(2)]);
    }

    #[test]
    fn a_new_address_or_validator_flag_updates_the_member_in_place() {
        let start = Instant::now();
        let (mut book, dialed, listener_only) = book(start);
        // Member 1 is backing off after failed dials; member 2 had no address.
        for step in 0..4 {
            book.due_dials(start + Duration::from_secs(step));
        }
        let later = start + Duration::from_secs(4);
        let mut observer = entry(1, dialed, Some(address(7201)));
        observer.validator = false;
        let plan = book.apply_members(
            vec![observer, entry(2, listener_only, Some(address(7202)))],
            later,
        );
        assert!(plan.change.is_empty());
        assert!(plan.dropped.is_empty() && plan.admitted.is_empty());
        assert_eq!(plan.gossip_removed, vec![dialed]);
        assert!(plan.gossip_added.is_empty());
        // Both are dialed at once at their new addresses.
        let dials = book.due_dials(later);
        let targets: Vec<(MemberId, Multiaddr)> = dials
            .into_iter()
            .map(|dial| (dial.member, dial.address))
            .collect();
        assert_eq!(
            targets,
            vec![(MemberId(1), address(7201)), (MemberId(2), address(7202))]
        );
    }

    fn peer_member(member: u32, name: &str) -> crate::config::PeerMember {
        crate::config::PeerMember {
            member: MemberId(member),
            public_key: seisan_crypto::Keypair::dev(name).public_key(),
            address: None,
            validator: true,
        }
    }

    #[test]
    fn a_member_list_is_checked_before_it_is_used() {
        let local_key = seisan_crypto::Keypair::dev("local").public_key();
        let local_peer = crate::config::peer_id_of(MemberId(0), &local_key).unwrap();
        let check = |members| entries(MemberId(0), local_peer, members);

        // The local member is left out, whatever key the list gives it.
        let list = check(vec![peer_member(0, "rotated-local"), peer_member(1, "a")]).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].member, MemberId(1));

        let twice = check(vec![peer_member(1, "a"), peer_member(1, "b")]).unwrap_err();
        assert_eq!(
            twice,
            NetworkError::DuplicateMember {
                member: MemberId(1)
            }
        );
        let shared = check(vec![peer_member(1, "a"), peer_member(2, "a")]).unwrap_err();
        assert_eq!(
            shared,
            NetworkError::SharedKey {
                member: MemberId(2),
                other: MemberId(1)
            }
        );
        let ours = check(vec![peer_member(1, "local")]).unwrap_err();
        assert_eq!(
            ours,
            NetworkError::SharedKey {
                member: MemberId(1),
                other: MemberId(0)
            }
        );

        let at_bound: Vec<_> = (0..MAX_MEMBERS as u32)
            .map(|member| peer_member(member, &format!("member-{member}")))
            .collect();
        assert_eq!(check(at_bound.clone()).unwrap().len(), MAX_MEMBERS - 1);
        let mut over = at_bound;
        over.push(peer_member(MAX_MEMBERS as u32, "one-too-many"));
        assert_eq!(
            check(over).unwrap_err(),
            NetworkError::TooManyMembers {
                count: MAX_MEMBERS + 1,
                limit: MAX_MEMBERS
            }
        );
    }
}
