//! The state commitment: a binary radix trie over key hashes whose leaves are buckets of
//! up to [`BUCKET`] entries.
//!
//! Every state entry is `(SHA-256(key), SHA-256(value))`. The trie is canonical: the
//! subtree of the keys whose hashes start with a bit prefix is one bucket (a leaf) when
//! it holds at most [`BUCKET`] entries, else an internal node whose children split the
//! keys by the next bit. Its shape, and so the root, depends only on the set of entries,
//! never on the order they were written in: a node rebuilt from the values at open or
//! from a snapshot has the root its peers computed block by block.
//!
//! - A bucket's hash is `SHA-256(0x00 || key hash || value hash || ...)` over its
//!   entries ascending by key hash (an empty bucket: `SHA-256(0x00)`).
//! - An internal node's hash is `SHA-256(0x01 || left || right)`.
//! - The state root is the top node's hash.
//!
//! A proof of a key is its bucket's entries and the siblings' hashes on the path to it:
//! the value (or the key's absence) is read in the bucket, which is hashed and folded
//! up to the root. The two domain bytes keep a prover from stopping early at an
//! internal node or going past a bucket.
//!
//! Cost per block: each touched bucket is re-hashed once (at most [`BUCKET`] entries of
//! 64 bytes) and each internal node on the touched paths once (two 32-byte inputs),
//! with no tree node allocated for an unchanged path, instead of jmt's 16-ary nodes
//! rebuilt along each path (ARCHITECTURE.md, State; `seisan-bench tree-candidates`).
//! Nothing here reads a clock, a file or the network.

use borsh::{BorshDeserialize, BorshSerialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// The most entries a bucket holds; a subtree with more is split by the next bit.
pub const BUCKET: usize = 16;

/// A SHA-256 digest (a key hash, a value hash or a node hash).
pub type Digest32 = [u8; 32];

/// One entry of the committed set: the key's hash and its value's hash.
pub type Entry = (Digest32, Digest32);

const LEAF: u8 = 0x00;
const INTERNAL: u8 = 0x01;

/// The hash of a key (what the trie is keyed by).
pub fn key_hash(key: &[u8]) -> Digest32 {
    Sha256::digest(key).into()
}

/// The hash of a value (what a bucket holds for it).
pub fn value_hash(value: &[u8]) -> Digest32 {
    Sha256::digest(value).into()
}

fn bucket_hash(entries: &[Entry]) -> Digest32 {
    let mut hasher = Sha256::new();
    hasher.update([LEAF]);
    for (key, value) in entries {
        hasher.update(key);
        hasher.update(value);
    }
    hasher.finalize().into()
}

fn internal_hash(left: &Digest32, right: &Digest32) -> Digest32 {
    let mut hasher = Sha256::new();
    hasher.update([INTERNAL]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The bit of `key` at `depth` (0 is the most significant bit of the first byte).
fn bit(key: &Digest32, depth: usize) -> u8 {
    (key[depth / 8] >> (7 - depth % 8)) & 1
}

/// A node's position: the first `len` bits of the key hashes below it (the rest zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    len: u16,
    bits: Digest32,
}

impl Prefix {
    /// The top of the trie.
    pub const ROOT: Prefix = Prefix {
        len: 0,
        bits: [0; 32],
    };

    fn depth(&self) -> usize {
        usize::from(self.len)
    }

    fn child(&self, side: u8) -> Prefix {
        let mut bits = self.bits;
        let depth = self.depth();
        if side == 1 {
            bits[depth / 8] |= 1 << (7 - depth % 8);
        }
        Prefix {
            len: self.len + 1,
            bits,
        }
    }
}

/// A node of the trie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A bucket: at most [`BUCKET`] entries, ascending by key hash.
    Bucket { entries: Vec<Entry>, hash: Digest32 },
    /// An internal node over more than [`BUCKET`] entries.
    Internal { count: u64, hash: Digest32 },
}

impl Node {
    fn bucket(entries: Vec<Entry>) -> Node {
        let hash = bucket_hash(&entries);
        Node::Bucket { entries, hash }
    }

    pub fn hash(&self) -> Digest32 {
        match self {
            Node::Bucket { hash, .. } | Node::Internal { hash, .. } => *hash,
        }
    }

    fn count(&self) -> u64 {
        match self {
            Node::Bucket { entries, .. } => entries.len() as u64,
            Node::Internal { count, .. } => *count,
        }
    }
}

/// The nodes of a trie by position (the committed trie in memory).
pub type Nodes = HashMap<Prefix, Arc<Node>, foldhash::fast::RandomState>;

/// What one block changes in the trie: each position's new node, or `None` where a node
/// was removed (a subtree folded back into a bucket).
pub type NodeChanges = HashMap<Prefix, Option<Arc<Node>>, foldhash::fast::RandomState>;

/// Reads trie nodes: the committed trie, seen through any staged blocks' changes.
pub trait NodeSource: std::fmt::Debug {
    fn node(&self, prefix: &Prefix) -> Option<Arc<Node>>;
}

impl NodeSource for Nodes {
    fn node(&self, prefix: &Prefix) -> Option<Arc<Node>> {
        self.get(prefix).cloned()
    }
}

/// Layers of staged changes (newest first) over the committed nodes.
#[derive(Debug)]
pub struct Layered<'a, S: NodeSource> {
    pub layers: Vec<&'a NodeChanges>,
    pub below: &'a S,
}

impl<S: NodeSource> NodeSource for Layered<'_, S> {
    fn node(&self, prefix: &Prefix) -> Option<Arc<Node>> {
        for layer in &self.layers {
            if let Some(node) = layer.get(prefix) {
                return node.clone();
            }
        }
        self.below.node(prefix)
    }
}

/// The trie's root hash (the empty bucket's when there is no node).
pub fn root(source: &impl NodeSource) -> Digest32 {
    source
        .node(&Prefix::ROOT)
        .map_or_else(|| bucket_hash(&[]), |node| node.hash())
}

/// The trie's changes for a block's writes: key and value hashes, ascending by key hash
/// (what [`stage`] takes).
pub fn changes_of(writes: &seisan_types::state::WriteSet) -> Vec<(Digest32, Option<Digest32>)> {
    let mut changes: Vec<(Digest32, Option<Digest32>)> = writes
        .changes
        .iter()
        .map(|(key, value)| (key_hash(key), value.as_deref().map(value_hash)))
        .collect();
    changes.sort_unstable_by_key(|change| change.0);
    changes
}

/// Applies one block's node changes (from [`stage`]) to the committed nodes.
pub fn apply(nodes: &mut Nodes, changes: &NodeChanges) {
    for (prefix, node) in changes {
        match node {
            Some(node) => nodes.insert(*prefix, node.clone()),
            None => nodes.remove(prefix),
        };
    }
}

/// The canonical subtree of `entries` (ascending, distinct, every one under `prefix`),
/// its nodes written into `out`; returns its top node.
fn build(prefix: Prefix, entries: Vec<Entry>, out: &mut NodeChanges) -> Arc<Node> {
    let node = if entries.len() <= BUCKET {
        Arc::new(Node::bucket(entries))
    } else {
        let depth = prefix.depth();
        let split = entries.partition_point(|(key, _)| bit(key, depth) == 0);
        let mut left = entries;
        let right = left.split_off(split);
        let count = (left.len() + right.len()) as u64;
        let left = build(prefix.child(0), left, out);
        let right = build(prefix.child(1), right, out);
        Arc::new(Node::Internal {
            count,
            hash: internal_hash(&left.hash(), &right.hash()),
        })
    };
    out.insert(prefix, Some(node.clone()));
    node
}

/// The whole trie of `entries` (any order, distinct keys).
pub fn build_all(mut entries: Vec<Entry>) -> Nodes {
    entries.sort_unstable_by_key(|entry| entry.0);
    let mut out = NodeChanges::default();
    build(Prefix::ROOT, entries, &mut out);
    out.into_iter()
        .map(|(prefix, node)| (prefix, node.expect("a build removes nothing")))
        .collect()
}

/// The changes `changes` make to the trie `source` reads (ascending by key hash,
/// distinct; `None`: delete), and the new root.
pub fn stage(
    source: &impl NodeSource,
    changes: &[(Digest32, Option<Digest32>)],
) -> (Digest32, NodeChanges) {
    debug_assert!(changes.windows(2).all(|pair| pair[0].0 < pair[1].0));
    let mut out = NodeChanges::default();
    if changes.is_empty() {
        return (root(source), out);
    }
    let top = match source.node(&Prefix::ROOT) {
        Some(top) => top,
        None => Arc::new(Node::bucket(Vec::new())),
    };
    let top = update(source, Prefix::ROOT, top, changes, &mut out);
    (top.hash(), out)
}

/// The node at `prefix` after `changes` (all under it, at least one); `node` is its
/// node before them.
fn update(
    source: &impl NodeSource,
    prefix: Prefix,
    node: Arc<Node>,
    changes: &[(Digest32, Option<Digest32>)],
    out: &mut NodeChanges,
) -> Arc<Node> {
    match node.as_ref() {
        Node::Bucket { entries, .. } => {
            let merged = merge(entries, changes);
            if &merged == entries {
                return node;
            }
            build(prefix, merged, out)
        }
        Node::Internal { .. } => {
            let depth = prefix.depth();
            let split = changes.partition_point(|(key, _)| bit(key, depth) == 0);
            let mut children = [None, None];
            for (side, part) in [(0u8, &changes[..split]), (1, &changes[split..])] {
                let position = prefix.child(side);
                let child = source
                    .node(&position)
                    .expect("an internal node has both children");
                children[usize::from(side)] = Some(if part.is_empty() {
                    child
                } else {
                    update(source, position, child, part, out)
                });
            }
            let [Some(left), Some(right)] = children else {
                unreachable!("both children were read")
            };
            let count = left.count() + right.count();
            let folded = if count as usize <= BUCKET {
                // Both children are buckets now (canonical subtrees of at most BUCKET).
                let mut entries = Vec::with_capacity(count as usize);
                for child in [&left, &right] {
                    let Node::Bucket { entries: part, .. } = child.as_ref() else {
                        unreachable!("a subtree of at most {BUCKET} entries is a bucket")
                    };
                    entries.extend_from_slice(part);
                }
                out.insert(prefix.child(0), None);
                out.insert(prefix.child(1), None);
                Arc::new(Node::bucket(entries))
            } else {
                Arc::new(Node::Internal {
                    count,
                    hash: internal_hash(&left.hash(), &right.hash()),
                })
            };
            out.insert(prefix, Some(folded.clone()));
            folded
        }
    }
}

/// A bucket's entries after `changes` (both ascending by key hash).
fn merge(entries: &[Entry], changes: &[(Digest32, Option<Digest32>)]) -> Vec<Entry> {
    let mut merged = Vec::with_capacity(entries.len() + changes.len());
    let mut old = entries.iter().peekable();
    for (key, value) in changes {
        while let Some(entry) = old.next_if(|entry| entry.0 < *key) {
            merged.push(*entry);
        }
        old.next_if(|entry| entry.0 == *key);
        if let Some(value) = value {
            merged.push((*key, *value));
        }
    }
    merged.extend(old);
    merged
}

/// A proof that a key has a value, or none, under a root.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Proof {
    /// The siblings' hashes from the top down to the key's bucket.
    pub siblings: Vec<Digest32>,
    /// The key's bucket.
    pub entries: Vec<Entry>,
}

/// The proof of `key` (a key hash) in the trie `source` reads.
pub fn prove(source: &impl NodeSource, key: &Digest32) -> Proof {
    let mut siblings = Vec::new();
    let mut prefix = Prefix::ROOT;
    loop {
        let Some(node) = source.node(&prefix) else {
            // An empty trie: its top is the empty bucket.
            return Proof {
                siblings,
                entries: Vec::new(),
            };
        };
        match node.as_ref() {
            Node::Bucket { entries, .. } => {
                return Proof {
                    siblings,
                    entries: entries.clone(),
                }
            }
            Node::Internal { .. } => {
                let side = bit(key, prefix.depth());
                let sibling = source
                    .node(&prefix.child(1 - side))
                    .expect("an internal node has both children");
                siblings.push(sibling.hash());
                prefix = prefix.child(side);
            }
        }
    }
}

/// Why a proof does not show what it is asked to.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrieProofError {
    #[error("the proof's path is {0} levels deep; key hashes have 256 bits")]
    TooDeep(usize),
    #[error("the proof's bucket holds {0} entries; a bucket holds at most {BUCKET}")]
    BucketTooLarge(usize),
    #[error("the proof's bucket is not ascending by key hash")]
    Unordered,
    #[error("the proof's bucket holds a key that is not on the proven key's path")]
    OffPath,
    #[error("the key is absent from its bucket, but the proof is asked to show a value")]
    Absent,
    #[error("the key has another value in its bucket")]
    OtherValue,
    #[error("the key is present in its bucket, but the proof is asked to show it absent")]
    Present,
    #[error("the proof gives another root")]
    WrongRoot,
}

/// Checks that under `root`, the key hashed to `key` has the value hashed to `value`
/// (`None`: the key is absent).
pub fn verify(
    root: &Digest32,
    key: &Digest32,
    value: Option<&Digest32>,
    proof: &Proof,
) -> Result<(), TrieProofError> {
    let depth = proof.siblings.len();
    if depth > 256 {
        return Err(TrieProofError::TooDeep(depth));
    }
    if proof.entries.len() > BUCKET {
        return Err(TrieProofError::BucketTooLarge(proof.entries.len()));
    }
    if !proof.entries.windows(2).all(|pair| pair[0].0 < pair[1].0) {
        return Err(TrieProofError::Unordered);
    }
    let on_path = |other: &Digest32| (0..depth).all(|level| bit(other, level) == bit(key, level));
    if !proof.entries.iter().all(|(other, _)| on_path(other)) {
        return Err(TrieProofError::OffPath);
    }
    let found = proof
        .entries
        .iter()
        .find(|(other, _)| other == key)
        .map(|(_, found)| found);
    match (value, found) {
        (Some(_), None) => return Err(TrieProofError::Absent),
        (Some(value), Some(found)) if value != found => return Err(TrieProofError::OtherValue),
        (None, Some(_)) => return Err(TrieProofError::Present),
        _ => {}
    }
    let mut hash = bucket_hash(&proof.entries);
    for (level, sibling) in proof.siblings.iter().enumerate().rev() {
        hash = if bit(key, level) == 0 {
            internal_hash(&hash, sibling)
        } else {
            internal_hash(sibling, &hash)
        };
    }
    if &hash != root {
        return Err(TrieProofError::WrongRoot);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn changes_of(writes: &[(u16, Option<u8>)]) -> Vec<(Digest32, Option<Digest32>)> {
        let map: BTreeMap<Digest32, Option<Digest32>> = writes
            .iter()
            .map(|(key, value)| {
                (
                    key_hash(&key.to_be_bytes()),
                    value.map(|value| value_hash(&[value])),
                )
            })
            .collect();
        map.into_iter().collect()
    }

    /// Every node reachable from the top, and only those, is in `nodes`; each is canonical.
    fn check_canonical(nodes: &Nodes) {
        let mut reach = vec![Prefix::ROOT];
        let mut seen = 0;
        while let Some(prefix) = reach.pop() {
            let Some(node) = nodes.get(&prefix) else {
                assert_eq!(prefix, Prefix::ROOT, "a child is missing");
                return;
            };
            seen += 1;
            if let Node::Internal { count, .. } = node.as_ref() {
                assert!(
                    *count as usize > BUCKET,
                    "an internal node of {count} entries"
                );
                reach.push(prefix.child(0));
                reach.push(prefix.child(1));
            }
        }
        assert_eq!(seen, nodes.len(), "nodes no path reaches are kept");
    }

    fn writes() -> impl Strategy<Value = Vec<(u16, Option<u8>)>> {
        proptest::collection::vec(
            (0u16..200, proptest::option::weighted(0.7, any::<u8>())),
            0..80,
        )
    }

    proptest! {
        /// Staged block by block (deletes, splits, folds), the trie is the one built from
        /// the final set at once, and every key proves its value or absence.
        #[test]
        fn blocks_give_the_trie_of_the_final_set(blocks in proptest::collection::vec(writes(), 1..10)) {
            let mut nodes = Nodes::default();
            let mut set: BTreeMap<Digest32, Digest32> = BTreeMap::new();
            for block in &blocks {
                let changes = changes_of(block);
                let (root, delta) = stage(&nodes, &changes);
                apply(&mut nodes, &delta);
                prop_assert_eq!(root, super::root(&nodes));
                for (key, value) in &changes {
                    match value {
                        Some(value) => set.insert(*key, *value),
                        None => set.remove(key),
                    };
                }
            }
            check_canonical(&nodes);
            let built = build_all(set.iter().map(|(key, value)| (*key, *value)).collect());
            prop_assert_eq!(super::root(&built), super::root(&nodes));
            prop_assert_eq!(built.len(), nodes.len().max(1));
            let root = super::root(&nodes);
            for key in 0u16..200 {
                let key = key_hash(&key.to_be_bytes());
                let proof = prove(&nodes, &key);
                prop_assert_eq!(verify(&root, &key, set.get(&key), &proof), Ok(()));
                let wrong = value_hash(b"not the value");
                prop_assert!(verify(&root, &key, Some(&wrong), &proof).is_err());
            }
        }
    }

    #[test]
    fn staged_layers_read_through_to_the_committed_trie() {
        let mut nodes = Nodes::default();
        let first = changes_of(&(0..100).map(|key| (key, Some(1))).collect::<Vec<_>>());
        let (_, delta) = stage(&nodes, &first);
        apply(&mut nodes, &delta);
        // A block staged on a staged block, as a leader builds on an uncommitted parent.
        let second = changes_of(&(0..90).map(|key| (key, None)).collect::<Vec<_>>());
        let (_, staged) = stage(&nodes, &second);
        let layered = Layered {
            layers: vec![&staged],
            below: &nodes,
        };
        let third = changes_of(&[(5, Some(2)), (150, Some(3))]);
        let (root, on_top) = stage(&layered, &third);
        apply(&mut nodes, &staged);
        apply(&mut nodes, &on_top);
        assert_eq!(root, super::root(&nodes));
        check_canonical(&nodes);
    }

    #[test]
    fn a_lying_proof_is_refused_with_what_is_wrong() {
        let changes = changes_of(&(0..100).map(|key| (key, Some(7))).collect::<Vec<_>>());
        let (root, delta) = stage(&Nodes::default(), &changes);
        let mut nodes = Nodes::default();
        apply(&mut nodes, &delta);
        let (key, value) = changes[40];
        let value = value.expect("written");
        let proof = prove(&nodes, &key);
        assert!(
            !proof.siblings.is_empty(),
            "100 keys need more than one bucket"
        );
        assert_eq!(verify(&root, &key, Some(&value), &proof), Ok(()));
        assert_eq!(
            verify(&root, &key, None, &proof),
            Err(TrieProofError::Present)
        );
        // The key dropped from its bucket: the bucket no longer hashes to the path.
        let mut dropped = proof.clone();
        dropped.entries.retain(|(other, _)| *other != key);
        assert_eq!(
            verify(&root, &key, None, &dropped),
            Err(TrieProofError::WrongRoot)
        );
        // Stopping one level early, at an internal node presented as a bucket.
        let mut short = proof.clone();
        short.siblings.pop();
        assert!(verify(&root, &key, Some(&value), &short).is_err());
        let mut unordered = proof.clone();
        assert!(unordered.entries.len() > 1, "the key shares its bucket");
        unordered.entries.reverse();
        assert_eq!(
            verify(&root, &key, Some(&value), &unordered),
            Err(TrieProofError::Unordered)
        );
        // A bucket entry from elsewhere in the trie.
        let mut off = proof;
        let stranger = changes
            .iter()
            .map(|(other, _)| *other)
            .find(|other| {
                prove(&nodes, other).siblings.first() != off.siblings.first()
                    && bit(other, 0) != bit(&key, 0)
            })
            .expect("keys on both sides of the top");
        off.entries.push((stranger, value));
        off.entries.sort();
        assert_eq!(
            verify(&root, &key, Some(&value), &off),
            Err(TrieProofError::OffPath)
        );
    }

    #[test]
    fn the_empty_trie_proves_every_key_absent() {
        let nodes = Nodes::default();
        let key = key_hash(b"anything");
        let proof = prove(&nodes, &key);
        assert_eq!(verify(&super::root(&nodes), &key, None, &proof), Ok(()));
        // Deleting everything gives the empty root again.
        let changes = changes_of(&(0..40).map(|key| (key, Some(1))).collect::<Vec<_>>());
        let (_, delta) = stage(&nodes, &changes);
        let mut nodes = Nodes::default();
        apply(&mut nodes, &delta);
        let deletes: Vec<_> = changes.iter().map(|(key, _)| (*key, None)).collect();
        let (root, delta) = stage(&nodes, &deletes);
        apply(&mut nodes, &delta);
        assert_eq!(root, bucket_hash(&[]));
        assert_eq!(nodes.len(), 1, "only the top bucket is left");
    }
}
