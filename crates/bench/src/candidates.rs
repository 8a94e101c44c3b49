//! Authenticated-state candidates timed on the same write sets (issue 18, item 2: "measure
//! the candidates on our own workload before you choose"). The write sets are the
//! execution benchmark's blocks of crossing orders, as `seisan_contracts` wrote them.
//!
//! - **jmt, key by key**: jmt 0.12's `put_value_set` over an in-memory node map (what
//!   `StateDb::stage` did before session 14).
//! - **jmt, batched**: `StateDb::stage` itself (deletions key by key, then jmt's batch
//!   insert), timed inside the execution run that produced the write sets.
//! - **operation log**: a cost model of an append-only authenticated log in the manner of
//!   QMDB and commonware's `qmdb::current` (ordered): every write appends an operation
//!   (key, value hash, next key) to a Merkle mountain range; a bitmap marks which
//!   operations are current and is itself a Merkle tree over 256-bit chunks; an insert
//!   or delete also re-appends its predecessor with its new next key (the link that
//!   makes exclusion proofs); each append moves the inactivity floor past one current
//!   operation by re-appending it (compaction); the root hashes the range's peaks and
//!   the bitmap's root. It computes every hash such a store would, keeps the nodes in
//!   memory, and serves no proofs: it prices the design, it is not one.

use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, Version};
use seisan_types::state::WriteSet;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

type Digest32 = [u8; 32];

fn hash(parts: &[&[u8]]) -> Digest32 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// jmt's nodes in memory, the newest version only.
#[derive(Default)]
struct NodeStore(HashMap<NodeKey, Node>);

impl TreeReader for NodeStore {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.0.get(node_key).cloned())
    }

    fn get_value_option(&self, _: Version, _: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        Err(anyhow::Error::msg("values are not kept"))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        Err(anyhow::Error::msg("not used"))
    }
}

/// Time for jmt's key-by-key insert over every write set, one version each.
pub fn jmt_key_by_key(blocks: &[WriteSet]) -> Duration {
    let mut store = NodeStore::default();
    let mut elapsed = Duration::ZERO;
    for (version, writes) in blocks.iter().enumerate() {
        let changes: Vec<(KeyHash, Option<OwnedValue>)> = writes
            .changes
            .iter()
            .map(|(key, value)| (KeyHash::with::<Sha256>(key), value.clone()))
            .collect();
        let started = Instant::now();
        let (_, batch) = JellyfishMerkleTree::<_, Sha256>::new(&store)
            .put_value_set(changes, version as Version)
            .expect("jmt puts");
        elapsed += started.elapsed();
        for stale in batch.stale_node_index_batch {
            store.0.remove(&stale.node_key);
        }
        for (key, node) in batch.node_batch.nodes() {
            store.0.insert(key.clone(), node.clone());
        }
    }
    elapsed
}

/// Time to stage and apply every write set in the bucketed binary trie
/// (`seisan_state::trie`): keys and values hashed, changes sorted, the block staged on
/// the committed trie and its node changes applied, one block after another.
pub fn bucket_trie(blocks: &[WriteSet]) -> Duration {
    use seisan_state::trie;
    let mut nodes = trie::Nodes::default();
    let started = Instant::now();
    for writes in blocks {
        let (_, delta) = trie::stage(&nodes, &trie::changes_of(writes));
        trie::apply(&mut nodes, &delta);
    }
    started.elapsed()
}

/// Bits per bitmap chunk (a leaf of the bitmap's tree).
const CHUNK_BITS: u64 = 256;

/// The operation-log cost model (module docs).
#[derive(Default)]
pub struct OperationLog {
    /// Every node of the mountain range, in the order appended.
    nodes: Vec<Digest32>,
    /// The range's peaks: (height, digest).
    peaks: Vec<(u32, Digest32)>,
    /// Operations appended.
    operations: u64,
    /// Each operation's key, for compaction.
    keys: Vec<Digest32>,
    /// The current operation of each key: (location, value hash, next key), in key order.
    current: BTreeMap<Digest32, (u64, Digest32, Digest32)>,
    /// Which operations are current.
    active: Vec<u64>,
    /// The bitmap's tree: level 0 the chunks' digests, then pairs up to the root.
    levels: Vec<Vec<Digest32>>,
    dirty: BTreeSet<usize>,
    /// Every operation below it is no longer current.
    floor: u64,
    /// Operations appended, for the report.
    pub appended: u64,
}

impl OperationLog {
    fn set_active(&mut self, location: u64, active: bool) {
        let word = (location / 64) as usize;
        if word >= self.active.len() {
            self.active.resize(word + 1, 0);
        }
        if active {
            self.active[word] |= 1 << (location % 64);
        } else {
            self.active[word] &= !(1 << (location % 64));
        }
        self.dirty.insert((location / CHUNK_BITS) as usize);
    }

    fn is_active(&self, location: u64) -> bool {
        self.active
            .get((location / 64) as usize)
            .is_some_and(|word| word & (1 << (location % 64)) != 0)
    }

    /// Appends the operation (key, value hash, next key) and makes it the key's current one.
    fn append(&mut self, key: Digest32, value: Digest32, next: Digest32) {
        let location = self.operations;
        let mut digest = hash(&[b"op", &location.to_be_bytes(), &key, &value, &next]);
        self.nodes.push(digest);
        let mut height = 0;
        while let Some(&(peak_height, peak)) = self.peaks.last() {
            if peak_height != height {
                break;
            }
            self.peaks.pop();
            digest = hash(&[b"node", &peak, &digest]);
            self.nodes.push(digest);
            height += 1;
        }
        self.peaks.push((height, digest));
        self.operations += 1;
        self.appended += 1;
        self.keys.push(key);
        if let Some((old, _, _)) = self.current.insert(key, (location, value, next)) {
            self.set_active(old, false);
        }
        self.set_active(location, true);
    }

    /// The current key before `key` (cyclically), if any other.
    fn predecessor(&self, key: &Digest32) -> Option<Digest32> {
        self.current
            .range(..*key)
            .next_back()
            .or_else(|| self.current.iter().next_back())
            .map(|(found, _)| *found)
            .filter(|found| found != key)
    }

    /// Re-appends `key`'s current operation with `next` as its next key.
    fn relink(&mut self, key: Digest32, next: Digest32) {
        let (_, value, _) = self.current[&key];
        self.append(key, value, next);
    }

    fn put(&mut self, key: Digest32, value: Option<Digest32>) {
        let exists = self.current.contains_key(&key);
        match (value, exists) {
            (Some(value), true) => {
                let (_, _, next) = self.current[&key];
                self.append(key, value, next);
            }
            (Some(value), false) => match self.predecessor(&key) {
                Some(before) => {
                    let (_, _, next) = self.current[&before];
                    self.relink(before, key);
                    self.append(key, value, next);
                }
                None => self.append(key, value, key),
            },
            (None, true) => {
                let (location, _, next) = self.current.remove(&key).expect("exists");
                self.set_active(location, false);
                if let Some(before) = self.predecessor(&key) {
                    self.relink(before, next);
                }
            }
            (None, false) => {}
        }
    }

    /// Moves the inactivity floor past one current operation by re-appending it.
    fn compact_one(&mut self) {
        while self.floor < self.operations && !self.is_active(self.floor) {
            self.floor += 1;
        }
        if self.floor + 1 >= self.operations {
            return;
        }
        let key = self.keys[self.floor as usize];
        let (_, value, next) = self.current[&key];
        self.append(key, value, next);
    }

    /// The root after the dirty chunks are re-hashed up the bitmap's tree.
    fn root(&mut self) -> Digest32 {
        let chunks = (self.operations.div_ceil(CHUNK_BITS)) as usize;
        let words = (CHUNK_BITS / 64) as usize;
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].resize(chunks, [0; 32]);
        let mut dirty: BTreeSet<usize> = std::mem::take(&mut self.dirty);
        for &chunk in &dirty {
            let start = chunk * words;
            let mut bytes = [0u8; (CHUNK_BITS / 8) as usize];
            for (index, word) in self.active[start..(start + words).min(self.active.len())]
                .iter()
                .enumerate()
            {
                bytes[index * 8..index * 8 + 8].copy_from_slice(&word.to_le_bytes());
            }
            self.levels[0][chunk] = hash(&[b"chunk", &bytes]);
        }
        let mut level = 0;
        while self.levels[level].len() > 1 {
            let width = self.levels[level].len().div_ceil(2);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].resize(width, [0; 32]);
            let mut up = BTreeSet::new();
            for &index in &dirty {
                let parent = index / 2;
                if !up.insert(parent) {
                    continue;
                }
                let left = self.levels[level][parent * 2];
                let right = self.levels[level]
                    .get(parent * 2 + 1)
                    .copied()
                    .unwrap_or([0; 32]);
                self.levels[level + 1][parent] = hash(&[b"bits", &left, &right]);
            }
            dirty = up;
            level += 1;
        }
        let bitmap_root = self.levels[level].first().copied().unwrap_or([0; 32]);
        let mut peaks = Sha256::new();
        for (_, peak) in &self.peaks {
            peaks.update(peak);
        }
        let range_root: Digest32 = peaks.finalize().into();
        hash(&[
            b"root",
            &range_root,
            &bitmap_root,
            &self.operations.to_be_bytes(),
        ])
    }

    /// Applies one block's writes (compaction included) and computes the root.
    pub fn apply(&mut self, writes: &WriteSet) -> Digest32 {
        let before = self.appended;
        for (key, value) in &writes.changes {
            let key = hash(&[key]);
            let value = value.as_ref().map(|value| hash(&[value]));
            self.put(key, value);
        }
        for _ in before..self.appended {
            self.compact_one();
        }
        self.root()
    }
}

/// Time for the operation-log model over every write set, and operations appended.
pub fn operation_log(blocks: &[WriteSet]) -> (Duration, u64) {
    let mut log = OperationLog::default();
    let started = Instant::now();
    for writes in blocks {
        log.apply(writes);
    }
    (started.elapsed(), log.appended)
}

/// Writes (key changes) in all the blocks.
pub fn updates(blocks: &[WriteSet]) -> usize {
    blocks.iter().map(|writes| writes.changes.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(changes: &[(&str, Option<&str>)]) -> WriteSet {
        WriteSet {
            changes: changes
                .iter()
                .map(|(key, value)| {
                    (
                        key.as_bytes().to_vec(),
                        value.map(|v| v.as_bytes().to_vec()),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn the_operation_log_links_keys_in_order_keeps_one_current_operation_each_and_compacts() {
        let mut log = OperationLog::default();
        let first = log.apply(&block(&[
            ("a", Some("1")),
            ("b", Some("2")),
            ("c", Some("3")),
        ]));
        assert_eq!(log.current.len(), 3);
        // Every current key links to the next current key, cyclically.
        let keys: Vec<Digest32> = log.current.keys().copied().collect();
        for (index, key) in keys.iter().enumerate() {
            assert_eq!(log.current[key].2, keys[(index + 1) % keys.len()]);
        }
        let second = log.apply(&block(&[("b", None)]));
        assert_ne!(first, second);
        assert_eq!(log.current.len(), 2);
        let keys: Vec<Digest32> = log.current.keys().copied().collect();
        assert_eq!(log.current[&keys[0]].2, keys[1]);
        assert_eq!(log.current[&keys[1]].2, keys[0]);
        // Exactly the current operations are marked active.
        let active = (0..log.operations).filter(|&l| log.is_active(l)).count();
        assert_eq!(active, log.current.len());
        // The same writes again give another root (the log grows), never the same state twice.
        let third = log.apply(&block(&[("a", Some("1"))]));
        assert_ne!(second, third);
        assert!(log.floor > 0, "compaction moved the floor");
    }
}
