//! The interface between execution and storage.
//!
//! Contracts read through [`StateView`] and produce a [`WriteSet`]; the state crate
//! implements the view over sled or memory, with uncommitted blocks layered on top, and
//! commits write sets atomically. Keeping the trait here lets the contracts stay free
//! of any storage engine.

use std::collections::BTreeMap;

/// The most entries one [`StateView::scan`] call returns.
pub const MAX_SCAN_LIMIT: usize = 100_000;

/// Read access to the application state at one point (a committed height, possibly
/// with uncommitted blocks on top).
///
/// Reads are infallible: a storage I/O error while reading state is not something
/// execution can recover from deterministically, so implementations panic with context
/// and the node restarts from its last committed height.
pub trait StateView {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;

    /// Up to `limit` entries whose keys start with `prefix`, in ascending key order,
    /// starting strictly after `start_after` when given.
    fn scan(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)>;
}

/// Changes to apply: a value to set, or `None` to delete. Ordered, so applying it and
/// hashing it are deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteSet {
    pub changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl WriteSet {
    pub fn new() -> WriteSet {
        WriteSet::default()
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.changes.insert(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.changes.insert(key, None);
    }

    /// Applies `later` on top of this set (later writes win).
    pub fn extend(&mut self, later: WriteSet) {
        self.changes.extend(later.changes);
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// A [`StateView`] over a plain map, for tests and simulations.
#[derive(Clone, Debug, Default)]
pub struct MapView {
    pub entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MapView {
    pub fn apply(&mut self, writes: &WriteSet) {
        for (key, value) in &writes.changes {
            match value {
                Some(value) => self.entries.insert(key.clone(), value.clone()),
                None => self.entries.remove(key),
            };
        }
    }
}

impl StateView for MapView {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.entries.get(key).cloned()
    }

    fn scan(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        use std::ops::Bound;
        let start = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after.to_vec()),
            _ => Bound::Included(prefix.to_vec()),
        };
        self.entries
            .range((start, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit.min(MAX_SCAN_LIMIT))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_view_scans_in_order_after_cursor() {
        let mut view = MapView::default();
        let mut writes = WriteSet::new();
        for key in ["a1", "a2", "a3", "b1"] {
            writes.put(key.as_bytes().to_vec(), vec![1]);
        }
        view.apply(&writes);
        let keys = |entries: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<String> {
            entries
                .into_iter()
                .map(|(k, _)| String::from_utf8(k).unwrap())
                .collect()
        };
        assert_eq!(keys(view.scan(b"a", None, 10)), ["a1", "a2", "a3"]);
        assert_eq!(keys(view.scan(b"a", Some(b"a1"), 1)), ["a2"]);
        let mut delete = WriteSet::new();
        delete.delete(b"a2".to_vec());
        view.apply(&delete);
        assert_eq!(keys(view.scan(b"a", None, 10)), ["a1", "a3"]);
    }
}
