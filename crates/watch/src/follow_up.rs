//! The one follow-up rule for the node's attestations (see the crate docs): pending
//! from admission until the committed ledger shows it, planned again after a patience,
//! at most a bounded number of times.

use super::Millis;
use std::collections::BTreeMap;

/// One attestation the attester admitted and the ledger does not show yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending<V> {
    pub value: V,
    /// When it was last admitted.
    pub since: Millis,
    /// How many times it was admitted.
    pub tries: u32,
}

/// What [`FollowUp::due`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due<K, V> {
    /// To admit again now (each admission is then reported with
    /// [`FollowUp::admitted`]; one not admitted stays due).
    pub again: Vec<(K, V)>,
    /// Admitted `max_tries` times and still missing: dropped, to be reported.
    pub given_up: Vec<(K, V)>,
}

/// Attestations in flight, by the key of what they attest.
#[derive(Clone, Debug)]
pub struct FollowUp<K: Ord, V> {
    pending: BTreeMap<K, Pending<V>>,
    patience_ms: u64,
    max_tries: u32,
}

impl<K: Ord + Clone, V: Clone> FollowUp<K, V> {
    /// `patience_ms` after an admission with nothing on the ledger, an attestation is
    /// due again; after `max_tries` admissions it is given up.
    pub fn new(patience_ms: u64, max_tries: u32) -> FollowUp<K, V> {
        assert!(max_tries >= 1, "an attestation is admitted at least once");
        FollowUp {
            pending: BTreeMap::new(),
            patience_ms,
            max_tries,
        }
    }

    pub fn is_pending(&self, key: &K) -> bool {
        self.pending.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn values(&self) -> impl Iterator<Item = &Pending<V>> {
        self.pending.values()
    }

    /// The attester admitted the attestation of `key` at `now` (first time or again).
    pub fn admitted(&mut self, key: K, value: V, now: Millis) {
        let tries = self.pending.get(&key).map_or(0, |pending| pending.tries) + 1;
        self.pending.insert(
            key,
            Pending {
                value,
                since: now,
                tries,
            },
        );
    }

    /// Forgets every pending attestation `on_ledger` says the committed ledger holds
    /// (or no longer needs).
    pub fn settle(&mut self, mut on_ledger: impl FnMut(&K, &V) -> bool) {
        self.pending
            .retain(|key, pending| !on_ledger(key, &pending.value));
    }

    /// Forgets one, whatever the ledger says (its subject is gone).
    pub fn forget(&mut self, key: &K) {
        self.pending.remove(key);
    }

    /// The attestations missing for at least the patience at `now`: those with tries
    /// left are returned to be admitted again (the caller reports each admission with
    /// [`FollowUp::admitted`]), the others are dropped and returned as given up.
    pub fn due(&mut self, now: Millis) -> Due<K, V> {
        let mut due = Due {
            again: Vec::new(),
            given_up: Vec::new(),
        };
        let overdue: Vec<K> = self
            .pending
            .iter()
            .filter(|(_, pending)| now.since(pending.since) >= self.patience_ms)
            .map(|(key, _)| key.clone())
            .collect();
        for key in overdue {
            let pending = self.pending.get(&key).expect("listed above");
            if pending.tries >= self.max_tries {
                let pending = self.pending.remove(&key).expect("listed above");
                due.given_up.push((key, pending.value));
            } else {
                due.again.push((key, pending.value.clone()));
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attestation_is_due_after_the_patience_until_the_ledger_shows_it() {
        let mut follow: FollowUp<u32, &str> = FollowUp::new(1_000, 3);
        follow.admitted(7, "fact", Millis(10_000));
        assert!(follow.due(Millis(10_999)).again.is_empty(), "too early");
        let due = follow.due(Millis(11_000));
        assert_eq!(due.again, vec![(7, "fact")]);
        follow.admitted(7, "fact", Millis(11_000));
        assert_eq!(follow.values().next().unwrap().tries, 2);
        follow.settle(|key, _| *key == 7);
        assert!(follow.is_empty(), "the ledger shows it: nothing left to do");
        assert!(follow.due(Millis(99_000)).again.is_empty());
    }

    #[test]
    fn an_attestation_missing_after_its_last_try_is_given_up_once() {
        let mut follow: FollowUp<u32, &str> = FollowUp::new(1_000, 2);
        follow.admitted(1, "a", Millis(0));
        follow.admitted(2, "b", Millis(500));
        let due = follow.due(Millis(1_000));
        assert_eq!(due.again, vec![(1, "a")], "only the first is overdue");
        follow.admitted(1, "a", Millis(1_000));
        let due = follow.due(Millis(2_000));
        assert_eq!(due.given_up, vec![(1, "a")], "two tries, still missing");
        assert_eq!(due.again, vec![(2, "b")]);
        assert!(!follow.is_pending(&1));
        assert!(follow.is_pending(&2));
    }
}
