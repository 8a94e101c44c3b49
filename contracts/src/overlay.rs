//! The in-memory overlay a block executes against.
//!
//! Each [`Table`] caches decoded values of the keys the block touched, over the
//! read-only [`StateView`]. Writes stay in memory until [`Table::flush`], which emits
//! every changed key once per block, and only if its bytes differ from what the view
//! held. A journal of previous values lets one transaction's changes be undone
//! ([`Table::rollback`]), so a rejected transaction changes nothing.
//!
//! [`BookSide`] keeps the best-priced part of one side of an order book in memory, so
//! matching reads the best order in `O(log n)` instead of rescanning storage past the
//! orders the block already consumed.

use crate::keys;
use seisan_types::clearing::OrderId;
use seisan_types::codec;
use seisan_types::state::{StateView, WriteSet};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

/// How many entries one storage scan reads at a time.
pub const SCAN_BATCH: usize = 64;

/// What the view held for a cached key.
#[derive(Clone, Debug)]
enum Original {
    /// Written without reading first (a fresh id); flush writes it unconditionally.
    Unknown,
    Absent,
    Bytes(Vec<u8>),
}

#[derive(Debug)]
struct Slot<V> {
    value: Option<V>,
    original: Original,
    dirty: bool,
}

/// (key, the slot's value and dirty flag before a change, or `None` if the key was not
/// cached).
type JournalEntry<V> = (Vec<u8>, Option<(Option<V>, bool)>);

/// A typed, journaled cache of one table's keys.
#[derive(Debug)]
pub struct Table<V> {
    name: &'static str,
    slots: BTreeMap<Vec<u8>, Slot<V>>,
    /// Changes in the order they were made.
    journal: Vec<JournalEntry<V>>,
}

impl<V: Serialize + DeserializeOwned + Clone> Table<V> {
    pub fn new(name: &'static str) -> Table<V> {
        Table {
            name,
            slots: BTreeMap::new(),
            journal: Vec::new(),
        }
    }

    fn decode(&self, key: &[u8], bytes: &[u8]) -> V {
        codec::decode(bytes).unwrap_or_else(|error| {
            panic!(
                "state holds an undecodable {} value at {key:?}: {error}",
                self.name
            )
        })
    }

    fn load(&mut self, view: &dyn StateView, key: &[u8]) {
        if self.slots.contains_key(key) {
            return;
        }
        let slot = match view.get(key) {
            Some(bytes) => Slot {
                value: Some(self.decode(key, &bytes)),
                original: Original::Bytes(bytes),
                dirty: false,
            },
            None => Slot {
                value: None,
                original: Original::Absent,
                dirty: false,
            },
        };
        self.slots.insert(key.to_vec(), slot);
    }

    pub fn get(&mut self, view: &dyn StateView, key: &[u8]) -> Option<&V> {
        self.load(view, key);
        self.slots[key].value.as_ref()
    }

    pub fn get_cloned(&mut self, view: &dyn StateView, key: &[u8]) -> Option<V> {
        self.get(view, key).cloned()
    }

    fn set(&mut self, key: Vec<u8>, value: Option<V>) {
        match self.slots.get_mut(&key) {
            Some(slot) => {
                let previous = std::mem::replace(&mut slot.value, value);
                let previous_dirty = std::mem::replace(&mut slot.dirty, true);
                self.journal.push((key, Some((previous, previous_dirty))));
            }
            None => {
                self.journal.push((key.clone(), None));
                self.slots.insert(
                    key,
                    Slot {
                        value,
                        original: Original::Unknown,
                        dirty: true,
                    },
                );
            }
        }
    }

    pub fn put(&mut self, key: Vec<u8>, value: V) {
        self.set(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.set(key, None);
    }

    /// Keeps the changes made since the last commit or rollback.
    pub fn commit(&mut self) {
        self.journal.clear();
    }

    /// Undoes the changes made since the last commit or rollback.
    pub fn rollback(&mut self) {
        while let Some((key, previous)) = self.journal.pop() {
            match previous {
                Some((value, dirty)) => {
                    let slot = self.slots.get_mut(&key).expect("journaled slot is cached");
                    slot.value = value;
                    slot.dirty = dirty;
                }
                None => {
                    self.slots.remove(&key);
                }
            }
        }
    }

    /// Emits every changed key whose bytes differ from the view's.
    pub fn flush(&self, writes: &mut WriteSet) {
        assert!(
            self.journal.is_empty(),
            "{} flushed mid-transaction",
            self.name
        );
        for (key, slot) in &self.slots {
            if !slot.dirty {
                continue;
            }
            match (&slot.value, &slot.original) {
                (None, Original::Absent) => {}
                (None, _) => writes.delete(key.clone()),
                (Some(value), original) => {
                    let bytes = codec::encode(value);
                    if !matches!(original, Original::Bytes(old) if *old == bytes) {
                        writes.put(key.clone(), bytes);
                    }
                }
            }
        }
    }

    /// Up to `limit` present keys under `prefix`, after `after`, in key order, merging
    /// the view with this block's changes.
    pub fn scan_keys(
        &mut self,
        view: &dyn StateView,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Vec<Vec<u8>> {
        // Present keys from the view that this block did not delete.
        let mut from_view: Vec<Vec<u8>> = Vec::new();
        let mut cursor: Option<Vec<u8>> = after.map(<[u8]>::to_vec);
        loop {
            let batch = view.scan(prefix, cursor.as_deref(), SCAN_BATCH);
            let complete = batch.len() < SCAN_BATCH;
            if let Some((last, _)) = batch.last() {
                cursor = Some(last.clone());
            }
            for (key, _) in batch {
                let deleted = self
                    .slots
                    .get(&key)
                    .is_some_and(|slot| slot.value.is_none());
                if !deleted {
                    from_view.push(key);
                }
            }
            if complete || from_view.len() >= limit {
                break;
            }
        }
        from_view.truncate(limit);
        // Present keys this block wrote.
        let lower = match after {
            Some(after) if after >= prefix => Bound::Excluded(after.to_vec()),
            _ => Bound::Included(prefix.to_vec()),
        };
        let from_overlay: Vec<Vec<u8>> = self
            .slots
            .range((lower, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter(|(_, slot)| slot.value.is_some())
            .map(|(key, _)| key.clone())
            .take(limit)
            .collect();
        let mut merged: BTreeSet<Vec<u8>> = from_view.into_iter().collect();
        merged.extend(from_overlay);
        merged.into_iter().take(limit).collect()
    }

    /// This block's changes under `prefix`: `(key, present)`.
    pub fn changes_under(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Option<V>)> {
        self.slots
            .range(prefix.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter(|(_, slot)| slot.dirty)
            .map(|(key, slot)| (key.clone(), slot.value.clone()))
            .collect()
    }
}

/// The best-priced part of one side of one book, merged from the view and the block.
///
/// Invariant: every book key at or before `loaded_to` (all of them when `exhausted`)
/// that is present in the view-plus-block state is in `live`, and nothing else is.
/// Keys after `loaded_to` that the block inserted are also in `live`; so the first
/// entry of `live` is the best order only if it is at or before `loaded_to`, else more
/// of the view is loaded first.
#[derive(Debug)]
pub struct BookSide {
    prefix: Vec<u8>,
    live: BTreeMap<Vec<u8>, OrderId>,
    /// Keys the block removed; view entries with these keys are skipped when loading.
    removed: BTreeSet<Vec<u8>>,
    loaded_to: Option<Vec<u8>>,
    exhausted: bool,
}

impl BookSide {
    /// Starts a side from the block's changes to the book table under `prefix`.
    pub fn new(prefix: Vec<u8>, changes: Vec<(Vec<u8>, Option<OrderId>)>) -> BookSide {
        let mut side = BookSide {
            prefix,
            live: BTreeMap::new(),
            removed: BTreeSet::new(),
            loaded_to: None,
            exhausted: false,
        };
        for (key, value) in changes {
            match value {
                Some(order) => {
                    side.live.insert(key, order);
                }
                None => {
                    side.removed.insert(key);
                }
            }
        }
        side
    }

    /// The best order: the lowest key of the side.
    pub fn best(&mut self, view: &dyn StateView) -> Option<(Vec<u8>, OrderId)> {
        loop {
            if let Some((key, order)) = self.live.first_key_value() {
                let loaded = self.exhausted || self.loaded_to.as_ref().is_some_and(|to| key <= to);
                if loaded {
                    return Some((key.clone(), *order));
                }
            }
            if self.exhausted {
                return None;
            }
            let batch = view.scan(&self.prefix, self.loaded_to.as_deref(), SCAN_BATCH);
            if batch.len() < SCAN_BATCH {
                self.exhausted = true;
            }
            if let Some((last, _)) = batch.last() {
                self.loaded_to = Some(last.clone());
            }
            for (key, value) in batch {
                if self.removed.contains(&key) || self.live.contains_key(&key) {
                    continue;
                }
                let order: OrderId = codec::decode(&value)
                    .unwrap_or_else(|error| panic!("undecodable book entry {key:?}: {error}"));
                self.live.insert(key, order);
            }
        }
    }

    pub fn insert(&mut self, key: Vec<u8>, order: OrderId) {
        assert!(key.starts_with(&self.prefix));
        self.removed.remove(&key);
        self.live.insert(key, order);
    }

    pub fn remove(&mut self, key: &[u8]) {
        assert!(key.starts_with(&self.prefix));
        self.live.remove(key);
        self.removed.insert(key.to_vec());
    }
}

/// A helper for index tables whose keys end in an id.
pub fn ids_of(keys: &[Vec<u8>]) -> Vec<u64> {
    keys.iter().map(|key| keys::trailing_u64(key)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use seisan_types::state::MapView;

    #[test]
    fn rollback_restores_and_flush_skips_unchanged() {
        let mut view = MapView::default();
        view.entries.insert(b"k1".to_vec(), codec::encode(&5u64));
        let mut table: Table<u64> = Table::new("test");
        assert_eq!(table.get_cloned(&view, b"k1"), Some(5));
        table.put(b"k1".to_vec(), 6);
        table.put(b"k2".to_vec(), 7);
        table.rollback();
        assert_eq!(table.get_cloned(&view, b"k1"), Some(5));
        assert_eq!(table.get_cloned(&view, b"k2"), None);
        // Changed and changed back: nothing to write.
        table.put(b"k1".to_vec(), 9);
        table.put(b"k1".to_vec(), 5);
        table.put(b"k3".to_vec(), 1);
        table.commit();
        let mut writes = WriteSet::new();
        table.flush(&mut writes);
        assert_eq!(writes.len(), 1);
        assert!(writes.changes.contains_key(b"k3".as_slice()));
    }

    #[test]
    fn scan_merges_view_and_block_changes() {
        let mut view = MapView::default();
        for key in [b"a1", b"a2", b"a4"] {
            view.entries.insert(key.to_vec(), codec::encode(&()));
        }
        let mut table: Table<()> = Table::new("index");
        table.delete(b"a2".to_vec());
        table.put(b"a3".to_vec(), ());
        table.commit();
        let keys = table.scan_keys(&view, b"a", None, 10);
        assert_eq!(keys, vec![b"a1".to_vec(), b"a3".to_vec(), b"a4".to_vec()]);
        let keys = table.scan_keys(&view, b"a", Some(b"a1"), 1);
        assert_eq!(keys, vec![b"a3".to_vec()]);
    }

    #[test]
    fn book_side_finds_best_across_view_and_block() {
        let mut view = MapView::default();
        for index in 0..200u64 {
            let mut key = b"B".to_vec();
            key.extend_from_slice(&(index * 2).to_be_bytes());
            view.entries.insert(key, codec::encode(&OrderId(index * 2)));
        }
        let mut side = BookSide::new(b"B".to_vec(), vec![]);
        let (first, order) = side.best(&view).unwrap();
        assert_eq!(order, OrderId(0));
        side.remove(&first);
        // A key far beyond the loaded window must not jump the queue...
        let mut late = b"B".to_vec();
        late.extend_from_slice(&1001u64.to_be_bytes());
        side.insert(late, OrderId(1001));
        assert_eq!(side.best(&view).unwrap().1, OrderId(2));
        // ...and consumed orders are never returned again.
        for expected in 1..200u64 {
            let (key, order) = side.best(&view).unwrap();
            assert_eq!(order, OrderId(expected * 2));
            side.remove(&key);
        }
        assert_eq!(side.best(&view).unwrap().1, OrderId(1001));
    }
}
