//! The state database: staging (execute before vote), atomic commit, reads, proofs.

use crate::backend::{Backend, Batch};
use crate::proof::StateProof;
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, Version};
use seisan_types::hash::Hash;
use seisan_types::ids::Height;
use seisan_types::state::{StateView, WriteSet, MAX_SCAN_LIMIT};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

const VALUE_PREFIX: u8 = b'v';
const NODE_PREFIX: u8 = b'n';
const RECORD_PREFIX: u8 = b'x';
const META_HEIGHT: &[u8] = b"m/height";
const META_ROOT_PREFIX: &[u8] = b"m/root/";

/// Why a state operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("cannot stage height {height}: the parent is height {parent:?}")]
    HeightGap {
        height: Height,
        parent: Option<Height>,
    },
    #[error(
        "staged parent at height {height} is not on the committed chain (committed root differs)"
    )]
    StaleParent { height: Height },
    #[error("cannot commit height {height}: the committed height is {committed:?}")]
    NotNext {
        height: Height,
        committed: Option<Height>,
    },
    #[error("height {height} is not committed (committed height is {committed:?})")]
    NotCommitted {
        height: Height,
        committed: Option<Height>,
    },
    #[error(
        "height {height} is not the committed height {committed}: proofs are served at the \
         committed height only (no value history is kept)"
    )]
    NotLatest { height: Height, committed: Height },
    #[error("authenticated tree error: {reason}")]
    Tree { reason: String },
    #[error("store is inconsistent: {reason}")]
    Corrupt { reason: String },
}

/// A block's effect on the state, computed but not yet committed.
#[derive(Debug)]
pub struct StagedBlock {
    pub height: Height,
    /// The root after this block.
    pub root: Hash,
    /// The root this block was staged on.
    pub parent_root: Option<Hash>,
    pub writes: WriteSet,
    parent: Option<Arc<StagedBlock>>,
    nodes: BTreeMap<NodeKey, Node>,
}

impl StagedBlock {
    /// How many tree nodes the block's commit writes (new versions of every node on the
    /// paths to the keys it changed).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

/// What a block is staged on.
#[derive(Clone, Debug)]
pub enum StageParent {
    /// The committed state.
    Committed,
    /// An uncommitted block (itself staged on the committed state, directly or through
    /// other staged blocks).
    Staged(Arc<StagedBlock>),
}

/// The state database over a [`Backend`].
#[derive(Clone, Debug)]
pub struct StateDb<B: Backend + Clone> {
    backend: B,
}

fn prefixed(prefix: u8, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(prefix);
    out.extend_from_slice(key);
    out
}

fn root_meta_key(height: Height) -> Vec<u8> {
    let mut out = META_ROOT_PREFIX.to_vec();
    out.extend_from_slice(&height.0.to_be_bytes());
    out
}

fn node_key_bytes(key: &NodeKey) -> Vec<u8> {
    prefixed(NODE_PREFIX, &borsh::to_vec(key).expect("node key encodes"))
}

fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash::with::<Sha256>(key)
}

fn tree_error(error: impl std::fmt::Display) -> StateError {
    StateError::Tree {
        reason: error.to_string(),
    }
}

/// Reads the tree through staged layers (newest first), then the backend.
///
/// Values are not kept per version: the only value it can read is that of the one key
/// being proven at the committed height (`proven`), which the caller reads from the
/// latest values. Staging never reads values (a leaf holds its value's hash).
struct LayeredTree<'a, B: Backend> {
    backend: &'a B,
    layers: &'a [Arc<StagedBlock>],
    proven: Option<(KeyHash, Option<OwnedValue>)>,
}

impl<B: Backend> TreeReader for LayeredTree<'_, B> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        for layer in self.layers {
            if let Some(node) = layer.nodes.get(node_key) {
                return Ok(Some(node.clone()));
            }
        }
        match self.backend.get(&node_key_bytes(node_key)) {
            Some(bytes) => Ok(Some(borsh::from_slice::<Node>(&bytes)?)),
            None => Ok(None),
        }
    }

    fn get_value_option(
        &self,
        _max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        match &self.proven {
            Some((proven, value)) if *proven == key_hash => Ok(value.clone()),
            _ => Err(anyhow::Error::msg(
                "the Seisan store keeps no value history; only the proven key's value is readable",
            )),
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only jmt's restore and migration paths call this; Seisan uses neither.
        Err(anyhow::Error::msg(
            "get_rightmost_leaf is not supported by the Seisan store",
        ))
    }
}

impl<B: Backend + Clone> StateDb<B> {
    /// Opens the state over a backend, checking that the recorded committed height and
    /// root agree with the tree.
    pub fn open(backend: B) -> Result<StateDb<B>, StateError> {
        let db = StateDb { backend };
        if let Some(height) = db.committed_height() {
            let recorded = db.root_at(height).ok_or_else(|| StateError::Corrupt {
                reason: format!("no root recorded for committed height {height}"),
            })?;
            let tree = LayeredTree {
                backend: &db.backend,
                layers: &[],
                proven: None,
            };
            let actual = JellyfishMerkleTree::<_, Sha256>::new(&tree)
                .get_root_hash(height.0)
                .map_err(tree_error)?;
            if Hash(actual.0) != recorded {
                return Err(StateError::Corrupt {
                    reason: format!(
                        "root at height {height} is {} but {recorded} was recorded",
                        Hash(actual.0)
                    ),
                });
            }
        }
        Ok(db)
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The last committed height (`None` before genesis is committed).
    pub fn committed_height(&self) -> Option<Height> {
        self.backend.get(META_HEIGHT).map(|bytes| {
            Height(u64::from_be_bytes(
                bytes.as_slice().try_into().expect("height meta is 8 bytes"),
            ))
        })
    }

    /// The state root committed at `height`.
    pub fn root_at(&self, height: Height) -> Option<Hash> {
        self.backend
            .get(&root_meta_key(height))
            .map(|bytes| Hash(bytes.as_slice().try_into().expect("root meta is 32 bytes")))
    }

    pub fn committed_root(&self) -> Option<Hash> {
        self.committed_height()
            .and_then(|height| self.root_at(height))
    }

    /// The staged layers from `parent` down to (not including) the committed state,
    /// newest first.
    fn layers(&self, parent: &StageParent) -> Result<Vec<Arc<StagedBlock>>, StateError> {
        let committed = self.committed_height();
        let mut layers = Vec::new();
        let mut cursor = match parent {
            StageParent::Committed => None,
            StageParent::Staged(block) => Some(block.clone()),
        };
        while let Some(block) = cursor {
            if committed.is_some_and(|committed| block.height <= committed) {
                if self.root_at(block.height) != Some(block.root) {
                    return Err(StateError::StaleParent {
                        height: block.height,
                    });
                }
                break;
            }
            cursor = block.parent.clone();
            layers.push(block);
        }
        if let Some(oldest) = layers.last() {
            if oldest.parent_root != self.committed_root() {
                return Err(StateError::StaleParent {
                    height: oldest.height,
                });
            }
        }
        Ok(layers)
    }

    /// A read view at `parent` (the committed state plus staged blocks).
    pub fn view(&self, parent: &StageParent) -> Result<StagedView<B>, StateError> {
        Ok(StagedView {
            backend: self.backend.clone(),
            layers: self.layers(parent)?,
        })
    }

    /// The committed state as a read view.
    pub fn committed_view(&self) -> StagedView<B> {
        StagedView {
            backend: self.backend.clone(),
            layers: Vec::new(),
        }
    }

    /// Computes the root `writes` give on top of `parent` without writing anything.
    pub fn stage(
        &self,
        parent: StageParent,
        writes: WriteSet,
    ) -> Result<Arc<StagedBlock>, StateError> {
        let layers = self.layers(&parent)?;
        let (parent_height, parent_root) = match layers.first() {
            Some(newest) => (Some(newest.height), Some(newest.root)),
            None => (self.committed_height(), self.committed_root()),
        };
        let height = parent_height.map_or(Height(0), Height::next);
        let tree = LayeredTree {
            backend: &self.backend,
            layers: &layers,
            proven: None,
        };
        let value_set: Vec<(KeyHash, Option<OwnedValue>)> = writes
            .changes
            .iter()
            .map(|(key, value)| (key_hash(key), value.clone()))
            .collect();
        let (root, batch) = JellyfishMerkleTree::<_, Sha256>::new(&tree)
            .put_value_set(value_set, height.0)
            .map_err(tree_error)?;
        let nodes: BTreeMap<NodeKey, Node> = batch
            .node_batch
            .nodes()
            .iter()
            .map(|(key, node)| (key.clone(), node.clone()))
            .collect();
        assert!(
            nodes
                .keys()
                .any(|key| key.version() == height.0 && key.nibble_path().num_nibbles() == 0),
            "every staged version writes its root node"
        );
        let parent = match parent {
            StageParent::Committed => None,
            StageParent::Staged(block) => Some(block),
        };
        Ok(Arc::new(StagedBlock {
            height,
            root: Hash(root.0),
            parent_root,
            writes,
            parent,
            nodes,
        }))
    }

    /// Commits a staged block, with the node's own `records` (keys in their own space),
    /// in one atomic batch followed by a flush. The block must be the next height and
    /// staged on the committed state.
    pub fn commit(
        &self,
        staged: &StagedBlock,
        records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), StateError> {
        let committed = self.committed_height();
        let expected = committed.map_or(Height(0), Height::next);
        if staged.height != expected {
            return Err(StateError::NotNext {
                height: staged.height,
                committed,
            });
        }
        if staged.parent_root != self.committed_root() {
            return Err(StateError::StaleParent {
                height: staged.height,
            });
        }
        let mut batch: Batch =
            Vec::with_capacity(staged.writes.len() + staged.nodes.len() + records.len() + 2);
        for (key, value) in &staged.writes.changes {
            batch.push((prefixed(VALUE_PREFIX, key), value.clone()));
        }
        for (key, node) in &staged.nodes {
            batch.push((
                node_key_bytes(key),
                Some(borsh::to_vec(node).expect("node encodes")),
            ));
        }
        for (key, value) in records {
            batch.push((prefixed(RECORD_PREFIX, &key), value));
        }
        batch.push((root_meta_key(staged.height), Some(staged.root.0.to_vec())));
        batch.push((
            META_HEIGHT.to_vec(),
            Some(staged.height.0.to_be_bytes().to_vec()),
        ));
        self.backend.apply(batch);
        self.backend.flush();
        debug_assert_eq!(self.committed_height(), Some(staged.height));
        Ok(())
    }

    /// A committed value with a proof against the root at `height`, which must be the
    /// committed height: values are kept at their latest version only (a per-version
    /// history would double the scattered writes of every commit). A caller that needs
    /// value, proof and height to agree must not commit meanwhile (the node holds its
    /// commit lock).
    pub fn prove(
        &self,
        key: &[u8],
        height: Height,
    ) -> Result<(Option<Vec<u8>>, StateProof), StateError> {
        let committed = self.committed_height();
        let Some(latest) = committed.filter(|committed| height <= *committed) else {
            return Err(StateError::NotCommitted { height, committed });
        };
        if height != latest {
            return Err(StateError::NotLatest {
                height,
                committed: latest,
            });
        }
        let hash = key_hash(key);
        let tree = LayeredTree {
            backend: &self.backend,
            layers: &[],
            proven: Some((hash, self.backend.get(&prefixed(VALUE_PREFIX, key)))),
        };
        let (value, proof) = JellyfishMerkleTree::<_, Sha256>::new(&tree)
            .get_with_proof(hash, height.0)
            .map_err(tree_error)?;
        Ok((value, StateProof::from_jmt(&proof)))
    }

    /// One of the node's own records (blocks, certificates, receipts).
    pub fn record(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.backend.get(&prefixed(RECORD_PREFIX, key))
    }

    /// The node's own records under `prefix`, ascending, after `start_after`.
    pub fn records(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        scan_backend(&self.backend, RECORD_PREFIX, prefix, start_after, limit)
    }

    /// Writes node records outside any block (e.g. evidence), durably.
    pub fn put_records(&self, records: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
        let batch = records
            .into_iter()
            .map(|(key, value)| (prefixed(RECORD_PREFIX, &key), value))
            .collect();
        self.backend.apply(batch);
        self.backend.flush();
    }
}

/// The least key greater than every key starting with `prefix` (`None` when the prefix
/// is all `0xff` bytes, whose range has no upper end).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn scan_backend<B: Backend>(
    backend: &B,
    space: u8,
    prefix: &[u8],
    start_after: Option<&[u8]>,
    limit: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    if start_after.is_some_and(|after| after > prefix && !after.starts_with(prefix)) {
        // Every key with the prefix sorts before `after`.
        return Vec::new();
    }
    let full_prefix = prefixed(space, prefix);
    let lower = match start_after {
        Some(after) if after >= prefix => Bound::Excluded(prefixed(space, after)),
        _ => Bound::Included(full_prefix.clone()),
    };
    // Bounded above by the prefix's end, so an empty or short range does not read (and
    // copy) `limit` unrelated entries past it (the contracts scan often-empty ranges,
    // such as a member's open top-ups, after every fill).
    let upper = prefix_end(&full_prefix).map_or(Bound::Unbounded, Bound::Excluded);
    backend
        .range(lower, upper, limit)
        .into_iter()
        .take_while(|(key, _)| key.starts_with(&full_prefix))
        .map(|(key, value)| (key[1..].to_vec(), value))
        .collect()
}

/// Reads the application state at a committed height plus staged blocks on top.
#[derive(Clone, Debug)]
pub struct StagedView<B: Backend + Clone> {
    backend: B,
    layers: Vec<Arc<StagedBlock>>,
}

impl<B: Backend + Clone> StateView for StagedView<B> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        for layer in &self.layers {
            if let Some(value) = layer.writes.changes.get(key) {
                return value.clone();
            }
        }
        self.backend.get(&prefixed(VALUE_PREFIX, key))
    }

    fn scan(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let limit = limit.min(MAX_SCAN_LIMIT);
        let in_range =
            |key: &[u8]| key.starts_with(prefix) && start_after.is_none_or(|after| key > after);
        // Overlay changes in range, newest layer winning.
        // A range query on each layer's sorted writes, not a pass over all of them: a
        // staged block of thousands of writes is scanned many times while the next
        // block executes on top of it.
        let lower: Bound<&[u8]> = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let mut overlay: BTreeMap<&[u8], &Option<Vec<u8>>> = BTreeMap::new();
        for layer in self.layers.iter().rev() {
            let candidates = layer
                .writes
                .changes
                .range::<[u8], _>((lower, Bound::Unbounded))
                .take_while(|(key, _)| key.starts_with(prefix));
            for (key, value) in candidates {
                if in_range(key) {
                    overlay.insert(key, value);
                }
            }
        }
        // Deleted keys may hide backend entries, so read that many more.
        let deletions = overlay.values().filter(|value| value.is_none()).count();
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = scan_backend(
            &self.backend,
            VALUE_PREFIX,
            prefix,
            start_after,
            limit + deletions,
        )
        .into_iter()
        .collect();
        for (key, value) in overlay {
            match value {
                Some(value) => merged.insert(key.to_vec(), value.clone()),
                None => merged.remove(key),
            };
        }
        merged.into_iter().take(limit).collect()
    }
}
