//! The simulated network's delivery rules, modelled on what the node runs: libp2p
//! gossipsub for [`seisan_consensus::Output::Broadcast`] and request-response for
//! [`seisan_consensus::Output::Send`] and block fetches.
//!
//! - **Links.** Each pair of nodes has one link. It is up while both nodes run (started,
//!   not crashed) and no partition separates them; every time it comes up it is a new
//!   connection ([`Links::epoch`]). Anything sent on a connection that has since gone
//!   down is lost, even if the link is up again when it would have arrived. Since a
//!   link is up exactly when both ends run on the same side of the partition, being
//!   connected is an equivalence relation over running nodes: there is no peer that
//!   only a relay could reach, which is why gossipsub's forwarding is not modelled.
//! - **Gossip deduplication** ([`SeenCache`]). gossipsub derives a message id from the
//!   payload (the node hashes topic and bytes) and keeps every id it published or
//!   received in a duplicate cache for [`GOSSIP_DEDUP_WINDOW_MS`] from first sight. A
//!   node refuses to publish bytes whose id is in its cache, and drops received bytes
//!   whose id is in its cache. Publishing with no connected peer fails before the id is
//!   cached (libp2p-gossipsub 0.49 `publish`: `NoPeersSubscribedToTopic` is returned
//!   before `duplicate_cache.insert`), so those bytes may be published again later. The
//!   cache lives in memory: a restarted node starts with an empty one.
//! - **Direct messages** are never deduplicated; they go out only on a link that is up
//!   at send time.
//!
//! Not modelled, which only makes the simulated network harsher than the real one:
//! gossipsub's IHAVE/IWANT gossip (a peer that joins can still pull the last few
//! heartbeats' messages) and relaying through a third peer after a loss.

use seisan_types::Hash;
use std::collections::{BTreeMap, VecDeque};

/// gossipsub's duplicate-cache time in the node (`GOSSIP_DUPLICATE_CACHE` in
/// `crates/network`): bytes seen less than this long ago are neither published nor
/// delivered again.
pub const GOSSIP_DEDUP_WINDOW_MS: u64 = 120_000;

/// Domain tag of simulated gossip message ids.
pub const SEISAN_SIM_GOSSIP_ID_V1: &[u8] = b"SEISAN_SIM_GOSSIP_ID_V1";

/// The gossip message id of `bytes` (content-derived, as in the node).
pub fn message_id(bytes: &[u8]) -> Hash {
    Hash::tagged(SEISAN_SIM_GOSSIP_ID_V1, &[bytes])
}

/// One node's gossipsub duplicate cache: message id -> time first seen. Like
/// gossipsub's, it is bounded by time, not by count: entries leave once the window has
/// passed (in insertion order, which is time order).
#[derive(Clone, Debug, Default)]
pub struct SeenCache {
    first_seen_ms: BTreeMap<Hash, u64>,
    order: VecDeque<(u64, Hash)>,
}

impl SeenCache {
    /// Whether `id` was seen less than [`GOSSIP_DEDUP_WINDOW_MS`] before `now_ms`.
    pub fn contains(&self, id: &Hash, now_ms: u64) -> bool {
        self.first_seen_ms
            .get(id)
            .is_some_and(|seen| now_ms < seen.saturating_add(GOSSIP_DEDUP_WINDOW_MS))
    }

    /// Records `id` as seen at `now_ms` unless it is still in the window (a repeat does
    /// not extend the window, as in libp2p's time cache); returns whether it was new.
    pub fn insert(&mut self, id: Hash, now_ms: u64) -> bool {
        if self.contains(&id, now_ms) {
            return false;
        }
        assert!(self.order.back().is_none_or(|(last, _)| *last <= now_ms));
        while let Some((seen, old)) = self.order.front().copied() {
            if now_ms < seen.saturating_add(GOSSIP_DEDUP_WINDOW_MS) {
                break;
            }
            self.order.pop_front();
            if self.first_seen_ms.get(&old) == Some(&seen) {
                self.first_seen_ms.remove(&old);
            }
        }
        self.first_seen_ms.insert(id, now_ms);
        self.order.push_back((now_ms, id));
        assert!(self.contains(&id, now_ms));
        true
    }

    /// A crash loses the cache with the rest of the process's memory.
    pub fn clear(&mut self) {
        self.first_seen_ms.clear();
        self.order.clear();
    }
}

/// Which links are up, and which connection each one is on.
#[derive(Clone, Debug)]
pub struct Links {
    up: Vec<Vec<bool>>,
    epoch: Vec<Vec<u64>>,
}

/// A link that changed state: `(lower node, higher node, now up)`.
pub type LinkChange = (usize, usize, bool);

impl Links {
    /// `nodes` nodes, every link down.
    pub fn new(nodes: usize) -> Links {
        Links {
            up: vec![vec![false; nodes]; nodes],
            epoch: vec![vec![0; nodes]; nodes],
        }
    }

    pub fn is_up(&self, a: usize, b: usize) -> bool {
        self.up[a][b]
    }

    /// The connection the link between `a` and `b` is on (it changes each time the
    /// link comes up).
    pub fn epoch(&self, a: usize, b: usize) -> u64 {
        self.epoch[a][b]
    }

    /// Whether something sent from `a` to `b` on connection `epoch` can still arrive.
    pub fn carries(&self, a: usize, b: usize, epoch: u64) -> bool {
        self.up[a][b] && self.epoch[a][b] == epoch
    }

    /// Sets every link to `wanted(a, b)` (which must be symmetric) and returns the
    /// links that changed, in (a, b) order.
    pub fn update(&mut self, wanted: impl Fn(usize, usize) -> bool) -> Vec<LinkChange> {
        let nodes = self.up.len();
        let mut changes = Vec::new();
        for a in 0..nodes {
            for b in a + 1..nodes {
                let up = wanted(a, b);
                assert_eq!(up, wanted(b, a), "links are symmetric");
                if up == self.up[a][b] {
                    continue;
                }
                self.up[a][b] = up;
                self.up[b][a] = up;
                if up {
                    self.epoch[a][b] += 1;
                    self.epoch[b][a] += 1;
                }
                changes.push((a, b, up));
            }
        }
        changes
    }

    /// The largest set of nodes that are all connected to each other (connection is
    /// an equivalence relation over running nodes, see the module docs), counting a
    /// running node without links as a set of one.
    pub fn largest_connected(&self, running: &[bool]) -> usize {
        let nodes = self.up.len();
        assert_eq!(running.len(), nodes);
        let mut best = 0;
        for a in (0..nodes).filter(|a| running[*a]) {
            let size = 1 + (0..nodes).filter(|b| *b != a && self.up[a][*b]).count();
            best = best.max(size);
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_bytes_are_refused_until_the_window_ends() {
        let mut cache = SeenCache::default();
        let id = message_id(b"vote");
        assert!(cache.insert(id, 1_000));
        assert!(cache.insert(message_id(b"other"), 1_000));
        assert!(!cache.insert(id, 1_000 + GOSSIP_DEDUP_WINDOW_MS - 1));
        // A repeat did not extend the window.
        assert!(cache.insert(id, 1_000 + GOSSIP_DEDUP_WINDOW_MS));
        assert!(!cache.contains(&message_id(b"other"), 1_000 + GOSSIP_DEDUP_WINDOW_MS));
        assert!(!cache.insert(id, 2_000 + GOSSIP_DEDUP_WINDOW_MS));
        cache.clear();
        assert!(!cache.contains(&id, 1_000 + GOSSIP_DEDUP_WINDOW_MS));
    }

    #[test]
    fn a_link_that_returns_is_a_new_connection() {
        let mut links = Links::new(3);
        let changes = links.update(|_, _| true);
        assert_eq!(changes, vec![(0, 1, true), (0, 2, true), (1, 2, true)]);
        let first = links.epoch(0, 2);
        assert!(links.carries(2, 0, first));
        assert_eq!(links.largest_connected(&[true; 3]), 3);
        let changes = links.update(|a, b| a != 2 && b != 2);
        assert_eq!(changes, vec![(0, 2, false), (1, 2, false)]);
        assert!(!links.carries(0, 2, first));
        assert_eq!(links.largest_connected(&[true, true, false]), 2);
        links.update(|_, _| true);
        assert!(!links.carries(0, 2, first));
        assert!(links.carries(0, 2, links.epoch(0, 2)));
    }
}
