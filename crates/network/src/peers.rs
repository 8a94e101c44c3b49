//! Pure bookkeeping of the other validators: when to (re)dial each one, and how many
//! rejected gossip messages each has sent us lately. No I/O and no clock: every
//! method takes `now`, so the rules are unit-tested without sockets or sleeps.
//!
//! Rules:
//! - A validator with a known address that is not connected and not penalized is
//!   dialed when its `next_dial_at` comes. Each attempt pushes the next one back by
//!   the current backoff and doubles the backoff, up to `redial_max`; a successful
//!   connection resets the backoff to `redial_initial`.
//! - A validator that sends more than `max_rejects_per_window` rejected messages in
//!   one `reject_window` is penalized: disconnected, refused and not dialed for
//!   `reject_penalty`, then allowed and dialed again.

use crate::config::NetworkLimits;
use libp2p::{Multiaddr, PeerId};
use seisan_types::MemberId;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
struct PeerState {
    peer_id: PeerId,
    address: Option<Multiaddr>,
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
    /// A book of the other validators, each due for a first dial at `now`.
    pub(crate) fn new(
        others: impl IntoIterator<Item = (MemberId, PeerId, Option<Multiaddr>)>,
        limits: &NetworkLimits,
        now: Instant,
    ) -> PeerBook {
        assert!(limits.redial_initial <= limits.redial_max);
        assert!(!limits.redial_initial.is_zero());
        let mut peers = BTreeMap::new();
        let mut members_by_peer_id = HashMap::new();
        for (member, peer_id, address) in others {
            let state = PeerState {
                peer_id,
                next_dial_at: address.as_ref().map(|_| now),
                address,
                connected: false,
                backoff: limits.redial_initial,
                rejects_in_window: 0,
                window_started_at: now,
                penalized_until: None,
            };
            assert!(peers.insert(member, state).is_none(), "duplicate member");
            assert!(
                members_by_peer_id.insert(peer_id, member).is_none(),
                "duplicate peer id"
            );
        }
        PeerBook {
            peers,
            members_by_peer_id,
            redial_initial: limits.redial_initial,
            redial_max: limits.redial_max,
            max_rejects_per_window: limits.max_rejects_per_window,
            reject_window: limits.reject_window,
            reject_penalty: limits.reject_penalty,
        }
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

    fn book(now: Instant) -> (PeerBook, PeerId, PeerId) {
        let dialed = PeerId::random();
        let listener_only = PeerId::random();
        let address: Multiaddr = "/ip4/127.0.0.1/tcp/7101".parse().unwrap();
        let book = PeerBook::new(
            [
                (MemberId(1), dialed, Some(address)),
                (MemberId(2), listener_only, None),
            ],
            &limits(),
            now,
        );
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
}
