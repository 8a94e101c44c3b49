//! The state database: staging (execute before vote), atomic commit, reads, proofs.

use crate::backend::{Backend, Batch};
use crate::proof::StateProof;
use jmt::storage::{LeafNode, NibblePath, Node, NodeKey, StaleNodeIndex, TreeReader};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, ValueHash, Version};
use seisan_types::hash::Hash;
use seisan_types::ids::Height;
use seisan_types::state::{StateView, WriteSet, MAX_SCAN_LIMIT};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex, RwLock};

/// Hash maps of the in-memory tree: foldhash (SipHash was 2-3% of a loaded node's
/// samples, in tree-node lookups and the checkpoint bookkeeping). foldhash seeds itself
/// once per process from address-space layout and the clock and does not claim HashDoS
/// resistance; the keys are versions and SHA-256 prefixes of state keys, so a member
/// would have to grind SHA-256 against a seed it cannot see. Their iteration order never
/// reaches a state root (the open-time rebuild walks them, but a Jellyfish root depends
/// only on the key-value set).
type NodeMap<V> = HashMap<NodeKey, V, foldhash::fast::RandomState>;
type NodeSet = HashSet<NodeKey, foldhash::fast::RandomState>;

/// Values one per key, as stores before value segments wrote them (read once, at the
/// conversion to segments).
const VALUE_PREFIX: u8 = b'v';
/// Value segments: `w` + the checkpoint's height + a chunk number -> a chunk of the
/// value entries that checkpoint wrote (`None`: deleted). A checkpoint writes the
/// values changed since the last one (a delta), or every value (a base) once the deltas
/// since the last base would outgrow it; a base deletes every older value segment.
const VALUE_SEGMENT_PREFIX: u8 = b'w';
/// Tree nodes one per key, as stores before tree segments wrote them (read once, at
/// the conversion to segments).
const NODE_PREFIX: u8 = b'n';
/// Tree segments: `t` + the checkpoint's height + a chunk number (both big-endian) -> a
/// chunk of the live tree nodes that checkpoint wrote ([`Segment`]).
const SEGMENT_PREFIX: u8 = b't';
/// A segment's chunks hold about this many bytes of nodes each, a few dozen nodes, so a
/// checkpoint's tree is a few hundred sequential inserts instead of one per node. sled
/// keeps up to 16 keys in a leaf page and writes a page over about 128 KiB as a blob
/// file of its own (rewritten whole with each later change to the page): 16 chunks
/// of 4 KiB stay well under that.
const SEGMENT_CHUNK_BYTES: usize = 4 * 1024;
const RECORD_PREFIX: u8 = b'x';
const META_HEIGHT: &[u8] = b"m/height";
const META_ROOT_PREFIX: &[u8] = b"m/root/";
/// The height whose tree the backend's nodes are (its checkpoint).
const META_CHECKPOINT: &[u8] = b"m/checkpoint";
/// The height whose state the backend's values are: the checkpoint's, written with it.
/// A store without it wrote values with every block (they are at `META_HEIGHT`).
const META_VALUES: &[u8] = b"m/values";

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
    #[error(
        "blocks up to height {recorded} are committed but the state is at {committed:?}: \
         replay them first (StateDb::replay)"
    )]
    ReplayPending {
        recorded: Height,
        committed: Option<Height>,
    },
    #[error("cannot replay height {height}: {reason}")]
    Replay { height: Height, reason: String },
    #[error("cannot install a snapshot of height {height}: {reason}")]
    Snapshot { height: Height, reason: String },
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
    /// Shared with the live tree once committed (a commit moves no node).
    nodes: BTreeMap<NodeKey, Arc<Node>>,
    /// Nodes of earlier versions this block's tree no longer references.
    stale: Vec<NodeKey>,
}

impl StagedBlock {
    /// How many tree nodes the block's commit writes (new versions of every node on the
    /// paths to the keys it changed).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
impl StagedBlock {
    /// The block's values as records, as the store wrote them with every block before
    /// values moved into checkpoints (for the upgrade tests).
    pub(crate) fn value_records(&self) -> Batch {
        self.writes
            .changes
            .iter()
            .map(|(key, value)| (prefixed(VALUE_PREFIX, key), value.clone()))
            .collect()
    }

    /// The block's tree nodes as records, as the store wrote them with every block
    /// before checkpoints (for the upgrade test).
    pub(crate) fn node_records(&self) -> Batch {
        self.nodes
            .iter()
            .map(|(key, node)| {
                (
                    node_key_bytes(key),
                    Some(borsh::to_vec(node.as_ref()).expect("node encodes")),
                )
            })
            .collect()
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

/// The committed state at one height, values only: what a node that syncs from a peer
/// installs ([`StateDb::install`]) instead of re-executing every block before it. The
/// tree is rebuilt from the values, so a snapshot is checked against `root` (a root a
/// quorum certified) by the one who installs it, not trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateSnapshot {
    pub height: Height,
    pub root: Hash,
    /// Every value, ascending by key.
    pub values: Vec<(Vec<u8>, Vec<u8>)>,
}

/// How many committed blocks share one checkpoint of the tree, unless set otherwise
/// ([`StateDb::with_checkpoint_interval`]).
pub const CHECKPOINT_INTERVAL: u64 = 64;

/// The committed state, in memory: every value and every node of the live tree.
///
/// A commit writes the block's records and its root, not its values: values and tree
/// nodes are written every [`CHECKPOINT_INTERVAL`] blocks, as one checkpoint of the
/// state. Opening the store loads the checkpoint; the blocks committed after it are
/// replayed by the caller, which has them in its records ([`StateDb::replay`]).
#[derive(Debug, Default)]
struct Live {
    height: Option<Height>,
    root: Option<Hash>,
    /// The last height committed to the backend: above `height` while blocks committed
    /// after the loaded checkpoint wait to be replayed.
    recorded: Option<Height>,
    values: BTreeMap<Vec<u8>, Vec<u8>>,
    nodes: NodeMap<Arc<Node>>,
    /// What the next checkpoint of the tree writes.
    pending: Pending,
    /// The values changed since the backend's checkpoint (`None`: deleted).
    dirty: Changes,
    /// The stored segment that holds each checkpointed live node.
    stored_in: NodeMap<Height>,
    /// Per stored segment, how many nodes it holds and how many of them are live.
    segments: BTreeMap<Height, SegmentCount>,
    /// Per stored value segment, the bytes of its entries; the first is the base.
    value_segments: BTreeMap<Height, usize>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SegmentCount {
    stored: usize,
    live: usize,
}

/// One checkpoint of the state at `height`: what changed since the previous one.
#[derive(Debug)]
struct Checkpoint {
    height: Height,
    /// The new value segment: the values changed since the last checkpoint (`None`:
    /// deleted), or every value (a base).
    values: Changes,
    /// Stored value segments no longer needed (all of them, when `values` is a base).
    deleted_value_segments: Vec<Height>,
    /// The new segment: the live nodes created since the last checkpoint, and those
    /// carried over from the segments it deletes.
    nodes: Vec<(NodeKey, Arc<Node>)>,
    /// Stored segments no longer needed (every live node they held is carried over).
    deleted_segments: Vec<Height>,
    /// Backend keys the checkpoint replaces (an older layout's, or a store's before a
    /// snapshot), deleted before anything is written.
    deleted_keys: Vec<Vec<u8>>,
}

/// The encoding of a segment chunk's value: nodes, in any order.
type Segment = Vec<(NodeKey, Node)>;

/// The encoding of a value segment chunk's value: entries, ascending by key.
type ValueSegment = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Value entries by key (`None`: deleted).
type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// What a value entry counts for in a segment's size.
fn entry_bytes(key: &[u8], value: Option<&Vec<u8>>) -> usize {
    key.len() + value.map_or(0, Vec::len) + 8
}

fn segment_key(space: u8, height: Height, chunk: u32) -> Vec<u8> {
    let mut key = prefixed(space, &height.0.to_be_bytes());
    key.extend_from_slice(&chunk.to_be_bytes());
    key
}

/// The segment a chunk's key (without its space byte) belongs to.
fn segment_of(key: &[u8]) -> Result<Height, StateError> {
    key.get(..8)
        .and_then(|height| height.try_into().ok())
        .map(|height| Height(u64::from_be_bytes(height)))
        .ok_or_else(|| corrupt("a segment's key does not start with a height"))
}

/// The keys of every chunk of `segment` in `space`.
fn segment_chunk_keys<B: Backend>(backend: &B, space: u8, segment: Height) -> Vec<Vec<u8>> {
    backend
        .range(
            Bound::Included(segment_key(space, segment, 0)),
            Bound::Included(segment_key(space, segment, u32::MAX)),
            usize::MAX,
        )
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

/// Appends `items` to `batch` as the chunks of segment `height` in `space`: each chunk
/// a borsh `Vec` of about [`SEGMENT_CHUNK_BYTES`] of items.
fn push_chunks<T: borsh::BorshSerialize>(
    batch: &mut Batch,
    space: u8,
    height: Height,
    items: impl IntoIterator<Item = T>,
) {
    let mut chunk: Vec<u8> = Vec::with_capacity(SEGMENT_CHUNK_BYTES * 2);
    let mut in_chunk: u32 = 0;
    let mut chunks: u32 = 0;
    let mut finish = |chunk: &mut Vec<u8>, in_chunk: &mut u32, batch: &mut Batch| {
        // A borsh Vec: its length (u32, little-endian), then its elements.
        let mut value = Vec::with_capacity(4 + chunk.len());
        value.extend_from_slice(&in_chunk.to_le_bytes());
        value.append(chunk);
        batch.push((segment_key(space, height, chunks), Some(value)));
        chunks += 1;
        *in_chunk = 0;
    };
    for item in items {
        borsh::to_writer(&mut chunk, &item).expect("segment items encode");
        in_chunk += 1;
        if chunk.len() >= SEGMENT_CHUNK_BYTES {
            finish(&mut chunk, &mut in_chunk, batch);
        }
    }
    if in_chunk > 0 {
        finish(&mut chunk, &mut in_chunk, batch);
    }
}

impl Checkpoint {
    /// The backend batch that moves its values and tree to this checkpoint: each as
    /// one segment in chunks (a few hundred sequential sled inserts, not one insert
    /// per value and node). Reads the chunks of the segments it deletes.
    fn batch<B: Backend>(self, backend: &B) -> Batch {
        let mut batch = Batch::with_capacity(self.deleted_keys.len() + 64);
        // Deletes first: a key both deleted and written is written (a later put wins).
        for key in self.deleted_keys {
            batch.push((key, None));
        }
        for (space, heights) in [
            (SEGMENT_PREFIX, &self.deleted_segments),
            (VALUE_SEGMENT_PREFIX, &self.deleted_value_segments),
        ] {
            for height in heights {
                for key in segment_chunk_keys(backend, space, *height) {
                    batch.push((key, None));
                }
            }
        }
        push_chunks(
            &mut batch,
            VALUE_SEGMENT_PREFIX,
            self.height,
            self.values.iter(),
        );
        push_chunks(
            &mut batch,
            SEGMENT_PREFIX,
            self.height,
            self.nodes.iter().map(|(key, node)| (key, node.as_ref())),
        );
        let height = Some(self.height.0.to_be_bytes().to_vec());
        batch.push((META_CHECKPOINT.to_vec(), height.clone()));
        batch.push((META_VALUES.to_vec(), height));
        batch
    }
}

/// The live tree's differences from the backend's checkpoint.
#[derive(Clone, Debug, Default)]
struct Pending {
    /// Live nodes not in the checkpoint.
    nodes: NodeSet,
    /// Checkpointed nodes no longer live.
    dropped: NodeSet,
}

impl Pending {
    fn replace_nodes<'a>(&mut self, stale: &[NodeKey], new: impl IntoIterator<Item = &'a NodeKey>) {
        for key in stale {
            if !self.nodes.remove(key) {
                self.dropped.insert(key.clone());
            }
        }
        self.nodes.extend(new.into_iter().cloned());
    }
}

impl Live {
    fn replace_nodes(&mut self, stale: &[NodeKey], nodes: &BTreeMap<NodeKey, Arc<Node>>) {
        for key in stale {
            self.nodes.remove(key);
        }
        for (key, node) in nodes {
            self.nodes.insert(key.clone(), node.clone());
        }
        self.pending.replace_nodes(stale, nodes.keys());
    }

    /// The committed state after `staged`, the next block.
    fn apply(&mut self, staged: &StagedBlock) {
        for (key, value) in &staged.writes.changes {
            match value {
                Some(value) => self.values.insert(key.clone(), value.clone()),
                None => self.values.remove(key),
            };
            self.dirty.insert(key.clone(), value.clone());
        }
        self.replace_nodes(&staged.stale, &staged.nodes);
        self.height = Some(staged.height);
        self.root = Some(staged.root);
    }

    /// The checkpoint of the committed state: every value and live tree node changed
    /// since the last one, which it replaces as what the next checkpoint builds on.
    ///
    /// Tree nodes are stored in segments, one per checkpoint; a node that is no longer
    /// live stays in its segment until that segment is deleted. A segment with no live
    /// node is deleted; one with fewer live nodes than dead ones is deleted too, and its
    /// live nodes are carried into the new segment. So the store holds at most about
    /// twice the live tree, and a node is rewritten only when its segment thins out.
    fn take_checkpoint(&mut self) -> Checkpoint {
        self.checkpoint(false)
    }

    fn checkpoint(&mut self, rebase: bool) -> Checkpoint {
        let height = self.height.expect("a checkpoint follows a commit");
        let (values, deleted_value_segments) = self.value_checkpoint(height, rebase);
        let pending = std::mem::take(&mut self.pending);
        for key in &pending.dropped {
            if let Some(segment) = self.stored_in.remove(key) {
                if let Some(count) = self.segments.get_mut(&segment) {
                    count.live -= 1;
                }
            }
        }
        let mut nodes: Vec<(NodeKey, Arc<Node>)> = pending
            .nodes
            .into_iter()
            .map(|key| {
                let node = self
                    .nodes
                    .get(&key)
                    .expect("unsaved nodes are live")
                    .clone();
                (key, node)
            })
            .collect();
        let deleted_segments: Vec<Height> = self
            .segments
            .iter()
            .filter(|(_, count)| count.live * 2 < count.stored)
            .map(|(segment, _)| *segment)
            .collect();
        let carried: std::collections::BTreeSet<Height> = deleted_segments
            .iter()
            .filter(|segment| self.segments[segment].live > 0)
            .copied()
            .collect();
        for segment in &deleted_segments {
            self.segments.remove(segment);
        }
        if !carried.is_empty() {
            for (key, segment) in self.stored_in.iter_mut() {
                if carried.contains(segment) {
                    *segment = height;
                    let node = self.nodes.get(key).expect("stored nodes are live").clone();
                    nodes.push((key.clone(), node));
                }
            }
        }
        for (key, _) in &nodes {
            self.stored_in.insert(key.clone(), height);
        }
        if !nodes.is_empty() {
            self.segments.insert(
                height,
                SegmentCount {
                    stored: nodes.len(),
                    live: nodes.len(),
                },
            );
        }
        Checkpoint {
            height,
            values,
            deleted_value_segments,
            nodes,
            deleted_segments,
            deleted_keys: Vec::new(),
        }
    }

    /// A checkpoint that holds every live node in one new segment, as if none were
    /// stored (converting an older layout, or installing a snapshot).
    fn take_full_checkpoint(&mut self) -> Checkpoint {
        self.pending = Pending {
            nodes: self.nodes.keys().cloned().collect(),
            dropped: NodeSet::default(),
        };
        self.stored_in.clear();
        self.segments.clear();
        self.checkpoint(true)
    }

    /// The value entries a checkpoint at `height` writes and the value segments it
    /// deletes: the values changed since the last checkpoint, as a delta; or, when the
    /// deltas stored since the last base would outgrow it (or `rebase`), every value as
    /// a new base, which replaces every stored value segment. So the stored entries are
    /// at most about twice the live values plus one delta, and a value is rewritten
    /// about once each time the state's stored size doubles.
    fn value_checkpoint(&mut self, height: Height, rebase: bool) -> (Changes, Vec<Height>) {
        let dirty = std::mem::take(&mut self.dirty);
        let delta: usize = dirty
            .iter()
            .map(|(key, value)| entry_bytes(key, value.as_ref()))
            .sum();
        let mut stored = self.value_segments.values();
        let base = stored.next().copied();
        let deltas: usize = stored.sum();
        if base.is_some_and(|base| !rebase && deltas + delta <= base) {
            if !dirty.is_empty() {
                *self.value_segments.entry(height).or_default() += delta;
            }
            return (dirty, Vec::new());
        }
        let all: Changes = self
            .values
            .iter()
            .map(|(key, value)| (key.clone(), Some(value.clone())))
            .collect();
        let bytes: usize = all
            .iter()
            .map(|(key, value)| entry_bytes(key, value.as_ref()))
            .sum();
        let deleted = std::mem::take(&mut self.value_segments)
            .into_keys()
            .collect();
        if bytes > 0 {
            self.value_segments.insert(height, bytes);
        }
        (all, deleted)
    }
}

/// What the checkpoint writer is asked.
enum WriterJob {
    Write(Checkpoint),
    /// Answered once every checkpoint sent before it is written and flushed.
    Barrier(std::sync::mpsc::Sender<()>),
}

/// Writes checkpoints on a thread of its own, in order, each as one atomic batch and a
/// flush, so a commit (on the node's core loop) never encodes or writes a checkpoint.
/// Two checkpoints may wait; a third commit that needs one waits for the writer (its
/// work is bounded by the interval's blocks, so it cannot fall behind without bound).
#[derive(Debug)]
struct CheckpointWriter {
    jobs: std::sync::mpsc::SyncSender<WriterJob>,
}

impl CheckpointWriter {
    fn spawn<B: Backend + Clone>(backend: B) -> CheckpointWriter {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<WriterJob>(2);
        std::thread::Builder::new()
            .name("state-checkpoint".into())
            .spawn(move || {
                for job in queue {
                    match job {
                        WriterJob::Write(checkpoint) => {
                            let batch = checkpoint.batch(&backend);
                            backend.apply(batch);
                            backend.flush();
                        }
                        WriterJob::Barrier(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .expect("the checkpoint writer thread starts");
        CheckpointWriter { jobs }
    }

    fn send(&self, job: WriterJob) {
        self.jobs
            .send(job)
            .expect("the checkpoint writer stopped (it panicked writing the store)");
    }
}

/// The state database over a [`Backend`], with the committed state in memory.
#[derive(Clone, Debug)]
pub struct StateDb<B: Backend + Clone> {
    backend: B,
    live: Arc<RwLock<Live>>,
    /// One commit at a time: a commit reads the checkpoint bookkeeping, writes the
    /// backend without the live lock, then updates the live state.
    committing: Arc<Mutex<()>>,
    checkpoint_interval: u64,
    /// Writes checkpoints off the committing thread; `None`: the commit writes them.
    writer: Option<Arc<CheckpointWriter>>,
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

/// A node's key in the per-node layouts before segments.
#[cfg(test)]
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

fn corrupt(reason: impl Into<String>) -> StateError {
    StateError::Corrupt {
        reason: reason.into(),
    }
}

fn read_height(bytes: &[u8], what: &str) -> Result<Height, StateError> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| corrupt(format!("{what} is not 8 bytes")))?;
    Ok(Height(u64::from_be_bytes(bytes)))
}

/// The root node's key at `version` (the empty nibble path, taken from any root key).
fn root_key(any_root: &NodeKey, version: Version) -> NodeKey {
    NodeKey::new(version, any_root.nibble_path().clone())
}

/// Reads the tree through staged layers (newest first), then the live tree.
///
/// Values are not kept per version: the only value it can read is that of the one key
/// being proven at the committed height (`proven`), which the caller reads from the
/// latest values. Staging never reads values (a leaf holds its value's hash).
struct LayeredTree<'a> {
    live: &'a NodeMap<Arc<Node>>,
    layers: &'a [Arc<StagedBlock>],
    proven: Option<(KeyHash, Option<OwnedValue>)>,
}

impl TreeReader for LayeredTree<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        for layer in self.layers {
            if let Some(node) = layer.nodes.get(node_key) {
                return Ok(Some(Node::clone(node)));
            }
        }
        Ok(self.live.get(node_key).map(|node| Node::clone(node)))
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
    /// Opens the state over a backend: loads the values and the tree's last checkpoint
    /// into memory, brings the tree to the committed height by writing into it every
    /// value that differs from its leaves, and checks that the root is the one recorded
    /// for that height. A store whose values and recorded root disagree is refused.
    ///
    /// A store written before checkpoints (tree nodes of every version, no checkpoint
    /// record) is rebuilt from its values and checkpointed once.
    pub fn open(backend: B) -> Result<StateDb<B>, StateError> {
        let live = load_live(&backend)?;
        Ok(StateDb {
            backend,
            live: Arc::new(RwLock::new(live)),
            committing: Arc::new(Mutex::new(())),
            checkpoint_interval: CHECKPOINT_INTERVAL,
            writer: None,
        })
    }

    /// Checkpoints the state every `blocks` committed blocks (at least 1).
    pub fn with_checkpoint_interval(mut self, blocks: u64) -> StateDb<B> {
        self.checkpoint_interval = blocks.max(1);
        self
    }

    /// Writes checkpoints on a thread of their own instead of in the commit that makes
    /// one due. A crash loses at most the checkpoints not yet written, which costs only
    /// a longer replay at the next open: commits never depend on them.
    pub fn with_background_checkpoints(mut self) -> StateDb<B> {
        self.writer = Some(Arc::new(CheckpointWriter::spawn(self.backend.clone())));
        self
    }

    /// Returns once every checkpoint due so far is written and flushed (a backup copies
    /// the store after this, under the node's commit lock).
    pub fn wait_for_checkpoints(&self) {
        if let Some(writer) = &self.writer {
            let (done, wait) = std::sync::mpsc::channel();
            writer.send(WriterJob::Barrier(done));
            wait.recv()
                .expect("the checkpoint writer stopped (it panicked writing the store)");
        }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    fn live(&self) -> std::sync::RwLockReadGuard<'_, Live> {
        self.live.read().expect("live state lock")
    }

    /// The height of the state in memory (`None` before genesis is committed). After
    /// an open, blocks up to [`StateDb::recorded_height`] may wait to be replayed.
    pub fn committed_height(&self) -> Option<Height> {
        self.live().height
    }

    /// The last height committed to the backend, whose records (and root) are stored:
    /// the committed height, or above it after an open, until
    /// [`StateDb::replay`] has applied the blocks in between.
    pub fn recorded_height(&self) -> Option<Height> {
        self.live().recorded
    }

    /// The state root committed at `height`.
    pub fn root_at(&self, height: Height) -> Option<Hash> {
        self.backend
            .get(&root_meta_key(height))
            .map(|bytes| Hash(bytes.as_slice().try_into().expect("root meta is 32 bytes")))
    }

    pub fn committed_root(&self) -> Option<Hash> {
        self.live().root
    }

    /// The height of the tree's checkpoint in the backend (`None` before the first).
    pub fn checkpoint_height(&self) -> Option<Height> {
        self.backend
            .get(META_CHECKPOINT)
            .and_then(|bytes| read_height(&bytes, "the checkpoint height").ok())
    }

    /// How many tree nodes the live tree has, and how many of them are not in the
    /// backend's checkpoint yet.
    pub fn tree_nodes(&self) -> (usize, usize) {
        let live = self.live();
        (live.nodes.len(), live.pending.nodes.len())
    }

    /// The staged layers from `parent` down to (not including) the committed state,
    /// newest first.
    fn layers(&self, parent: &StageParent) -> Result<Vec<Arc<StagedBlock>>, StateError> {
        let (committed, committed_root) = {
            let live = self.live();
            (live.height, live.root)
        };
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
            if oldest.parent_root != committed_root {
                return Err(StateError::StaleParent {
                    height: oldest.height,
                });
            }
        }
        Ok(layers)
    }

    /// A read view at `parent` (the committed state plus staged blocks).
    pub fn view(&self, parent: &StageParent) -> Result<StagedView, StateError> {
        Ok(StagedView {
            live: self.live.clone(),
            layers: self.layers(parent)?,
        })
    }

    /// The committed state as a read view.
    pub fn committed_view(&self) -> StagedView {
        StagedView {
            live: self.live.clone(),
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
        let value_set: Vec<(KeyHash, Option<OwnedValue>)> = writes
            .changes
            .iter()
            .map(|(key, value)| (key_hash(key), value.clone()))
            .collect();
        let live = self.live();
        let (parent_height, parent_root) = match layers.first() {
            Some(newest) => (Some(newest.height), Some(newest.root)),
            None => (live.height, live.root),
        };
        let height = parent_height.map_or(Height(0), Height::next);
        let tree = LayeredTree {
            live: &live.nodes,
            layers: &layers,
            proven: None,
        };
        let (root, nodes, stale) = put_changes(&tree, value_set, height.0)?;
        drop(live);
        let stale = stale_keys(stale, &nodes, height.0);
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
            stale,
        }))
    }

    /// Commits a staged block, with the node's own `records` (keys in their own space),
    /// in one atomic batch followed by a flush: the block's values and records, its
    /// root, and every [`CHECKPOINT_INTERVAL`] blocks a checkpoint of the tree. The block
    /// must be the next height and staged on the committed state.
    pub fn commit(
        &self,
        staged: &StagedBlock,
        records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), StateError> {
        self.commit_then(staged, records, true)
    }

    /// [`StateDb::commit`] without the flush: the block is committed (readable) but not
    /// durable until the next [`StateDb::flush`] or flushed commit. A crash before then
    /// loses it and every later unflushed block, never an earlier one (batches survive
    /// in order, each whole or not at all). For a node catching up, which re-fetches
    /// what it lost: one fsync for a group of blocks instead of one each.
    pub fn commit_unflushed(
        &self,
        staged: &StagedBlock,
        records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), StateError> {
        self.commit_then(staged, records, false)
    }

    /// Makes every commit so far durable.
    pub fn flush(&self) {
        self.backend.flush();
    }

    fn commit_then(
        &self,
        staged: &StagedBlock,
        records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        flush: bool,
    ) -> Result<(), StateError> {
        let _one_at_a_time = self.committing.lock().expect("commit lock");
        let (committed, committed_root, recorded) = {
            let live = self.live();
            (live.height, live.root, live.recorded)
        };
        if let Some(recorded) = recorded.filter(|recorded| Some(*recorded) > committed) {
            return Err(StateError::ReplayPending {
                recorded,
                committed,
            });
        }
        let expected = committed.map_or(Height(0), Height::next);
        if staged.height != expected {
            return Err(StateError::NotNext {
                height: staged.height,
                committed,
            });
        }
        if staged.parent_root != committed_root {
            return Err(StateError::StaleParent {
                height: staged.height,
            });
        }
        let mut batch: Batch = Vec::with_capacity(records.len() + 2);
        for (key, value) in records {
            batch.push((prefixed(RECORD_PREFIX, &key), value));
        }
        batch.push((root_meta_key(staged.height), Some(staged.root.0.to_vec())));
        batch.push((
            META_HEIGHT.to_vec(),
            Some(staged.height.0.to_be_bytes().to_vec()),
        ));
        self.backend.apply(batch);
        if flush {
            self.backend.flush();
        }
        self.advance(staged);
        Ok(())
    }

    /// Applies a block committed before this store was opened (one of the blocks
    /// between the loaded checkpoint and [`StateDb::recorded_height`]), writing nothing
    /// but the checkpoint it may make due. The block must be the next height, staged on
    /// the committed state, and give the root recorded for its height: a replay that
    /// disagrees is refused (the records or the code that executes them changed).
    pub fn replay(&self, staged: &StagedBlock) -> Result<(), StateError> {
        let _one_at_a_time = self.committing.lock().expect("commit lock");
        let (committed, committed_root, recorded) = {
            let live = self.live();
            (live.height, live.root, live.recorded)
        };
        let refuse = |reason: String| StateError::Replay {
            height: staged.height,
            reason,
        };
        if recorded.is_none_or(|recorded| staged.height > recorded) {
            return Err(refuse(format!(
                "the last height committed to the store is {recorded:?}"
            )));
        }
        if Some(staged.height) != Some(committed.map_or(Height(0), Height::next)) {
            return Err(refuse(format!("the state is at height {committed:?}")));
        }
        if staged.parent_root != committed_root {
            return Err(refuse("it was not staged on the committed state".into()));
        }
        match self.root_at(staged.height) {
            Some(root) if root == staged.root => {}
            Some(root) => {
                return Err(refuse(format!(
                    "it gives root {} but {root} was recorded",
                    staged.root
                )))
            }
            None => return Err(refuse("no root is recorded for it".into())),
        }
        self.advance(staged);
        Ok(())
    }

    /// The state in memory after `staged`, and its checkpoint if one is due.
    fn advance(&self, staged: &StagedBlock) {
        let checkpoint = {
            let mut live = self.live.write().expect("live state lock");
            live.apply(staged);
            if live.recorded < live.height {
                live.recorded = live.height;
            }
            staged
                .height
                .0
                .is_multiple_of(self.checkpoint_interval)
                .then(|| live.take_checkpoint())
        };
        if let Some(checkpoint) = checkpoint {
            match &self.writer {
                Some(writer) => writer.send(WriterJob::Write(checkpoint)),
                None => {
                    self.backend.apply(checkpoint.batch(&self.backend));
                    self.backend.flush();
                }
            }
        }
    }

    /// The committed state as a snapshot (`None` before genesis, or while blocks wait
    /// to be replayed). Copies every value under the read lock: a commit waits for it.
    pub fn snapshot(&self) -> Option<StateSnapshot> {
        let live = self.live();
        if live.recorded > live.height {
            return None;
        }
        Some(StateSnapshot {
            height: live.height?,
            root: live.root?,
            values: live
                .values
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        })
    }

    /// Replaces a store that holds no block after genesis with `snapshot`, whose root
    /// must be `snapshot.root` (which the caller has checked is certified), and writes
    /// the node's `records` for it (the snapshot's block, certificate, tip) in the same
    /// atomic batch, flushed. The tree is rebuilt from the values first: a snapshot
    /// whose values give another root is refused, and nothing is written.
    pub fn install(
        &self,
        snapshot: StateSnapshot,
        records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), StateError> {
        let _one_at_a_time = self.committing.lock().expect("commit lock");
        let height = snapshot.height;
        let refuse = |reason: String| StateError::Snapshot { height, reason };
        let (committed, recorded) = {
            let live = self.live();
            (live.height, live.recorded)
        };
        if committed.is_some_and(|committed| committed > Height(0))
            || recorded.is_some_and(|recorded| recorded > Height(0))
        {
            return Err(refuse(format!(
                "this store already holds blocks up to height {recorded:?}"
            )));
        }
        if height == Height(0) {
            return Err(refuse("a snapshot of genesis is no snapshot".into()));
        }
        let mut live = Live {
            height: Some(height),
            root: Some(snapshot.root),
            recorded: Some(height),
            values: snapshot.values.into_iter().collect(),
            ..Live::default()
        };
        let actual = finish_tree(&mut live, None, height)?;
        if actual != snapshot.root {
            return Err(refuse(format!(
                "its values give root {actual}, not the certified {}",
                snapshot.root
            )));
        }
        // Genesis's checkpoint may still be queued: it must not land after this one.
        self.wait_for_checkpoints();
        let mut checkpoint = live.take_full_checkpoint();
        checkpoint.deleted_keys = [VALUE_PREFIX, VALUE_SEGMENT_PREFIX, SEGMENT_PREFIX]
            .into_iter()
            .flat_map(|space| {
                scan_space(&self.backend, space)
                    .into_iter()
                    .map(move |(key, _)| prefixed(space, &key))
            })
            .collect();
        let mut batch = checkpoint.batch(&self.backend);
        for (key, value) in records {
            batch.push((prefixed(RECORD_PREFIX, &key), value));
        }
        batch.push((root_meta_key(height), Some(snapshot.root.0.to_vec())));
        batch.push((META_HEIGHT.to_vec(), Some(height.0.to_be_bytes().to_vec())));
        self.backend.apply(batch);
        self.backend.flush();
        *self.live.write().expect("live state lock") = live;
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
        let live = self.live();
        let committed = live.height;
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
            live: &live.nodes,
            layers: &[],
            proven: Some((hash, live.values.get(key).cloned())),
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

/// The nodes a new version's tree no longer references: what jmt reports, and the
/// previous version's root, which jmt keeps (it serves every version's root; this store
/// serves only the committed one). A block that changes no value still gets a root of
/// its own version, so without this every empty block would leave a root behind.
fn stale_keys(
    reported: impl IntoIterator<Item = StaleNodeIndex>,
    nodes: &BTreeMap<NodeKey, Arc<Node>>,
    version: Version,
) -> Vec<NodeKey> {
    let mut stale: Vec<NodeKey> = reported.into_iter().map(|index| index.node_key).collect();
    if version > 0 {
        let root = nodes
            .keys()
            .find(|key| key.version() == version && key.nibble_path().num_nibbles() == 0)
            .expect("every staged version writes its root node");
        let previous = root_key(root, version - 1);
        if !stale.contains(&previous) {
            stale.push(previous);
        }
    }
    stale
}

/// One version's new nodes (each behind an `Arc`), with the nodes it made stale.
type PutOutcome = (
    jmt::RootHash,
    BTreeMap<NodeKey, Arc<Node>>,
    Vec<StaleNodeIndex>,
);

/// Writes one block's changes into the tree at `version`, computing each touched node's
/// hash once: the deletions key by key (jmt's `put_value_set`, which alone can remove
/// leaves), then every insert and update together with jmt's batch insert, which builds
/// each touched node once for the whole set instead of once per key on its path
/// (`seisan-bench tree-candidates`; ARCHITECTURE.md, State). The tree's shape depends
/// only on its keys, so the root is the one the key-by-key insert gives; a node's key
/// may differ (the batch insert re-writes at this version an unchanged leaf it moves),
/// its hash does not (`put_changes_tests::batched_puts_give_the_key_by_key_tree`).
/// Version 0 (genesis) takes one key-by-key pass, as before.
fn put_changes(
    tree: &LayeredTree<'_>,
    changes: Vec<(KeyHash, Option<OwnedValue>)>,
    version: Version,
) -> Result<PutOutcome, StateError> {
    let (deletes, upserts): (Vec<_>, Vec<_>) =
        changes.into_iter().partition(|(_, value)| value.is_none());
    if upserts.is_empty() || version == 0 {
        let (root, batch) = JellyfishMerkleTree::<_, Sha256>::new(tree)
            .put_value_set(deletes.into_iter().chain(upserts), version)
            .map_err(tree_error)?;
        let nodes = shared(batch.node_batch.nodes());
        return Ok((
            root,
            nodes,
            batch.stale_node_index_batch.into_iter().collect(),
        ));
    }
    let (mut nodes, mut stale) = if deletes.is_empty() {
        (BTreeMap::new(), Vec::new())
    } else {
        let (_, batch) = JellyfishMerkleTree::<_, Sha256>::new(tree)
            .put_value_set(deletes, version)
            .map_err(tree_error)?;
        (
            shared(batch.node_batch.nodes()),
            batch.stale_node_index_batch.into_iter().collect(),
        )
    };
    let upserts = upserts
        .into_iter()
        .map(|(key, value)| (key, value.expect("partitioned: inserts and updates")))
        .collect();
    let after_deletes = AfterDeletes {
        deleted: &nodes,
        below: tree,
        version,
    };
    let (roots, batch) = JellyfishMerkleTree::<_, Sha256>::new(&after_deletes)
        .batch_put_value_sets(vec![upserts], None, version)
        .map_err(tree_error)?;
    // The second pass replaces, at the same keys, every node of this version the
    // first pass wrote that it touches; only older nodes are stale.
    stale.extend(
        batch
            .stale_node_index_batch
            .into_iter()
            .filter(|index| index.node_key.version() < version),
    );
    nodes.extend(shared(batch.node_batch.nodes()));
    stale.sort_by(|a, b| a.node_key.cmp(&b.node_key));
    stale.dedup_by(|a, b| a.node_key == b.node_key);
    Ok((roots[0], nodes, stale))
}

/// The tree after a version's deletions, for the batch insert of the same version: the
/// nodes the deletions wrote, read first, and their root served as the parent version's
/// (where jmt's batch insert starts).
struct AfterDeletes<'a> {
    deleted: &'a BTreeMap<NodeKey, Arc<Node>>,
    below: &'a LayeredTree<'a>,
    version: Version,
}

impl TreeReader for AfterDeletes<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let is_parent_root =
            node_key.version() + 1 == self.version && node_key.nibble_path().num_nibbles() == 0;
        let key = if is_parent_root && !self.deleted.is_empty() {
            root_key(node_key, self.version)
        } else {
            node_key.clone()
        };
        match self.deleted.get(&key) {
            Some(node) => Ok(Some(Node::clone(node))),
            None => self.below.get_node_option(node_key),
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        self.below.get_value_option(max_version, key_hash)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        self.below.get_rightmost_leaf()
    }
}

/// A jmt batch's nodes, each behind an `Arc` so the live tree and staged blocks share them.
fn shared(nodes: &BTreeMap<NodeKey, Node>) -> BTreeMap<NodeKey, Arc<Node>> {
    nodes
        .iter()
        .map(|(key, node)| (key.clone(), Arc::new(node.clone())))
        .collect()
}

/// Every entry of one key space of the backend, key without its space byte.
fn scan_space<B: Backend>(backend: &B, space: u8) -> Vec<(Vec<u8>, Vec<u8>)> {
    const CHUNK: usize = 4096;
    let mut entries = Vec::new();
    let mut lower = Bound::Included(vec![space]);
    let upper = Bound::Excluded(vec![space + 1]);
    loop {
        let chunk = backend.range(lower, upper.clone(), CHUNK);
        let full = chunk.len() == CHUNK;
        let Some((last, _)) = chunk.last() else {
            break;
        };
        lower = Bound::Excluded(last.clone());
        entries.extend(
            chunk
                .into_iter()
                .map(|(key, value)| (key[1..].to_vec(), value)),
        );
        if !full {
            break;
        }
    }
    entries
}

/// Brings `live`'s tree (the checkpoint's, rooted at `tree_root`, or none) to its values
/// at `height`: writes into it every value that differs from its leaves and removes
/// every leaf without a value, and moves its root to `height`'s version. Returns the
/// root.
fn finish_tree(
    live: &mut Live,
    mut tree_root: Option<NodeKey>,
    height: Height,
) -> Result<Hash, StateError> {
    // Every value that differs from the tree's leaves, and every leaf without a value.
    let mut leaves: HashMap<KeyHash, LeafNode> = live
        .nodes
        .values()
        .filter_map(|node| match node.as_ref() {
            Node::Leaf(leaf) => Some((leaf.key_hash(), leaf.clone())),
            _ => None,
        })
        .collect();
    let mut changes: Vec<(KeyHash, Option<OwnedValue>)> = Vec::new();
    for (key, value) in &live.values {
        let hash = key_hash(key);
        let expected = LeafNode::new(hash, ValueHash::with::<Sha256>(value));
        match leaves.remove(&hash) {
            Some(leaf) if leaf == expected => {}
            _ => changes.push((hash, Some(value.clone()))),
        }
    }
    changes.extend(leaves.into_keys().map(|hash| (hash, None)));
    let root_version = match &tree_root {
        Some(root) if changes.is_empty() => root.version(),
        _ => {
            // Onto the checkpoint's tree (its next version), or a new tree (version 0).
            let version = tree_root.as_ref().map_or(0, |root| root.version() + 1);
            let tree = LayeredTree {
                live: &live.nodes,
                layers: &[],
                proven: None,
            };
            let jmt = JellyfishMerkleTree::<_, Sha256>::new(&tree);
            // A new tree of inserts only is built bottom-up from the sorted keys (each
            // node once), not by inserting key after key along paths.
            let fresh = tree_root.is_none()
                && !changes.is_empty()
                && changes.iter().all(|(_, value)| value.is_some());
            let (_, batch) = if fresh {
                let inserts = changes
                    .into_iter()
                    .map(|(hash, value)| (hash, value.expect("inserts only")))
                    .collect();
                jmt.batch_put_value_sets(vec![inserts], None, version)
                    .map(|(roots, batch)| (roots[0], batch))
            } else {
                jmt.put_value_set(changes, version)
            }
            .map_err(tree_error)?;
            let nodes = shared(batch.node_batch.nodes());
            let stale = stale_keys(batch.stale_node_index_batch, &nodes, version);
            tree_root = nodes
                .keys()
                .find(|key| key.version() == version && key.nibble_path().num_nibbles() == 0)
                .cloned();
            live.replace_nodes(&stale, &nodes);
            version
        }
    };
    let tree_root = tree_root.ok_or_else(|| corrupt("rebuilding the tree gave no root"))?;
    if root_version != height.0 {
        // The tree is the state at `height`: its root moves to that version's key.
        let node = live
            .nodes
            .remove(&tree_root)
            .ok_or_else(|| corrupt("the tree's root node is missing"))?;
        let at_height = root_key(&tree_root, height.0);
        live.nodes.insert(at_height.clone(), node);
        live.pending
            .replace_nodes(std::slice::from_ref(&tree_root), [&at_height]);
    }
    let tree = LayeredTree {
        live: &live.nodes,
        layers: &[],
        proven: None,
    };
    let actual = JellyfishMerkleTree::<_, Sha256>::new(&tree)
        .get_root_hash(height.0)
        .map_err(tree_error)?;
    Ok(Hash(actual.0))
}

/// The values a store holds (see [`load_values`]).
struct StoredValues {
    values: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The bytes of each value segment.
    segments: BTreeMap<Height, usize>,
    /// The keys of an older layout's values, one key each (converted at open).
    old_keys: Vec<Vec<u8>>,
}

/// The stored values: an older layout's, one key each, then every value segment in
/// height order, a later entry replacing an earlier one (`None`: deleted).
fn load_values<B: Backend>(backend: &B) -> Result<StoredValues, StateError> {
    let old = scan_space(backend, VALUE_PREFIX);
    let old_keys = old
        .iter()
        .map(|(key, _)| prefixed(VALUE_PREFIX, key))
        .collect();
    let mut values: BTreeMap<Vec<u8>, Vec<u8>> = old.into_iter().collect();
    let mut segments: BTreeMap<Height, usize> = BTreeMap::new();
    for (key, bytes) in scan_space(backend, VALUE_SEGMENT_PREFIX) {
        let segment = segment_of(&key)?;
        let entries: ValueSegment = borsh::from_slice(&bytes).map_err(|error| {
            corrupt(format!(
                "a chunk of value segment {segment} does not decode: {error}"
            ))
        })?;
        let size = segments.entry(segment).or_default();
        for (key, value) in entries {
            *size += entry_bytes(&key, value.as_ref());
            match value {
                Some(value) => values.insert(key, value),
                None => values.remove(&key),
            };
        }
    }
    Ok(StoredValues {
        values,
        segments,
        old_keys,
    })
}

/// Loads the committed state into memory (see [`StateDb::open`]).
fn load_live<B: Backend>(backend: &B) -> Result<Live, StateError> {
    let Some(height_bytes) = backend.get(META_HEIGHT) else {
        return Ok(Live::default());
    };
    let last_block = read_height(&height_bytes, "the committed height")?;
    let values_height = match backend.get(META_VALUES) {
        Some(bytes) => Some(read_height(&bytes, "the values' height")?),
        None => None,
    };
    // The state is loaded at the height of the values; the blocks after it are replayed.
    let height = values_height.unwrap_or(last_block);
    if height > last_block {
        return Err(corrupt(format!(
            "the values are at height {height}, above the last committed block {last_block}"
        )));
    }
    let recorded = backend
        .get(&root_meta_key(height))
        .ok_or_else(|| corrupt(format!("no root recorded for committed height {height}")))?;
    let recorded = Hash(recorded.as_slice().try_into().map_err(|_| {
        corrupt(format!(
            "the root recorded for height {height} is not 32 bytes"
        ))
    })?);
    let StoredValues {
        values,
        segments: value_segments,
        old_keys: old_value_keys,
    } = load_values(backend)?;
    let checkpoint = match backend.get(META_CHECKPOINT) {
        Some(bytes) => Some(read_height(&bytes, "the checkpoint height")?),
        None => None,
    };
    let mut live = Live {
        height: Some(height),
        root: Some(recorded),
        recorded: Some(last_block),
        values,
        value_segments,
        ..Live::default()
    };
    // Per-node keys of the layouts before segments: read once, deleted by the
    // conversion checkpoint below.
    let old_nodes = scan_space(backend, NODE_PREFIX);
    let old_keys: Vec<Vec<u8>> = old_nodes
        .iter()
        .map(|(key, _)| prefixed(NODE_PREFIX, key))
        .collect();
    let mut tree_root: Option<NodeKey> = None;
    if let Some(checkpoint) = checkpoint {
        if checkpoint > height {
            return Err(corrupt(format!(
                "the tree's checkpoint is at height {checkpoint}, above the committed height {height}"
            )));
        }
        // Every stored node, newest segment last; the live tree is what the
        // checkpoint's root reaches.
        let mut stored: NodeMap<(Arc<Node>, Height)> = NodeMap::default();
        for (key, bytes) in old_nodes {
            let node_key: NodeKey = borsh::from_slice(&key)
                .map_err(|error| corrupt(format!("a tree node key does not decode: {error}")))?;
            let node: Node = borsh::from_slice(&bytes)
                .map_err(|error| corrupt(format!("a tree node does not decode: {error}")))?;
            stored.insert(node_key, (Arc::new(node), checkpoint));
        }
        for (key, bytes) in scan_space(backend, SEGMENT_PREFIX) {
            let segment = segment_of(&key)?;
            let nodes: Segment = borsh::from_slice(&bytes).map_err(|error| {
                corrupt(format!(
                    "a chunk of tree segment {segment} does not decode: {error}"
                ))
            })?;
            live.segments.entry(segment).or_default().stored += nodes.len();
            for (node_key, node) in nodes {
                stored.insert(node_key, (Arc::new(node), segment));
            }
        }
        let root = stored
            .keys()
            .find(|key| key.version() == checkpoint.0 && key.nibble_path().num_nibbles() == 0)
            .cloned()
            .ok_or_else(|| {
                corrupt(format!(
                    "the tree's checkpoint at height {checkpoint} has no root node"
                ))
            })?;
        let mut reach = vec![root.clone()];
        while let Some(key) = reach.pop() {
            let Some((node, segment)) = stored.remove(&key) else {
                return Err(corrupt(format!(
                    "the tree's checkpoint at height {checkpoint} lacks node {key:?}"
                )));
            };
            if let Node::Internal(internal) = node.as_ref() {
                for (nibble, child) in internal.children_unsorted() {
                    let path: NibblePath = key
                        .nibble_path()
                        .nibbles()
                        .chain(std::iter::once(nibble))
                        .collect();
                    reach.push(NodeKey::new(child.version, path));
                }
            }
            if let Some(count) = live.segments.get_mut(&segment) {
                count.live += 1;
                live.stored_in.insert(key.clone(), segment);
            }
            live.nodes.insert(key, node);
        }
        tree_root = Some(root);
    }
    // Without a checkpoint (written before checkpoints: every version's nodes, one per
    // key), the tree is rebuilt from the values.
    let actual = finish_tree(&mut live, tree_root, height)?;
    if actual != recorded {
        return Err(corrupt(format!(
            "the state's values at height {height} give root {actual} but {recorded} was recorded"
        )));
    }
    if values_height.is_none() || !old_keys.is_empty() || !old_value_keys.is_empty() {
        // A store that wrote values with every block, or values or tree nodes one per key:
        // checkpoint the state now, once, all its live nodes in one segment, before a
        // commit that no longer writes values moves the committed height past them.
        let mut checkpoint = live.take_full_checkpoint();
        // Every stored segment chunk goes (a store with no checkpoint record may hold
        // some that nothing reads), one at this height too: the new segment's chunks
        // are put after the deletes in the same batch, and a later put wins.
        let stale_segments = scan_space(backend, SEGMENT_PREFIX)
            .into_iter()
            .map(|(key, _)| prefixed(SEGMENT_PREFIX, &key));
        checkpoint.deleted_keys = old_keys
            .into_iter()
            .chain(old_value_keys)
            .chain(stale_segments)
            .collect();
        backend.apply(checkpoint.batch(backend));
        backend.flush();
    }
    Ok(live)
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
pub struct StagedView {
    live: Arc<RwLock<Live>>,
    layers: Vec<Arc<StagedBlock>>,
}

impl StateView for StagedView {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        for layer in &self.layers {
            if let Some(value) = layer.writes.changes.get(key) {
                return value.clone();
            }
        }
        self.live
            .read()
            .expect("live state lock")
            .values
            .get(key)
            .cloned()
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
        // Deleted keys may hide committed entries, so read that many more.
        let deletions = overlay.values().filter(|value| value.is_none()).count();
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = {
            let live = self.live.read().expect("live state lock");
            live.values
                .range::<[u8], _>((lower, Bound::Unbounded))
                .take_while(|(key, _)| key.starts_with(prefix))
                .filter(|(key, _)| in_range(key))
                .take(limit + deletions)
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        };
        for (key, value) in overlay {
            match value {
                Some(value) => merged.insert(key.to_vec(), value.clone()),
                None => merged.remove(key),
            };
        }
        merged.into_iter().take(limit).collect()
    }
}

#[cfg(test)]
mod put_changes_tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// One version's changes: keys from a small space, so that the versions update,
    /// delete and re-insert each other's keys; `None` deletes.
    fn changes() -> impl Strategy<Value = Vec<(u16, Option<u8>)>> {
        proptest::collection::vec(
            (0u16..96, proptest::option::weighted(0.7, any::<u8>())),
            1..48,
        )
    }

    /// A node key's version and nibbles (jmt builds child paths only inside the crate).
    fn path_of(key: &NodeKey) -> (Version, Vec<u8>) {
        let path = key.nibble_path();
        let nibbles = (0..path.num_nibbles())
            .map(|i| u8::from(path.get_nibble(i)))
            .collect();
        (key.version(), nibbles)
    }

    /// The keys of every node reachable from the root at `version`.
    fn reachable(live: &NodeMap<Arc<Node>>, version: Version) -> BTreeSet<NodeKey> {
        let by_path: BTreeMap<(Version, Vec<u8>), NodeKey> =
            live.keys().map(|key| (path_of(key), key.clone())).collect();
        let mut seen = BTreeSet::new();
        let Some(root) = live.keys().find(|key| key.nibble_path().num_nibbles() == 0) else {
            return seen;
        };
        assert_eq!(
            root.version(),
            version,
            "the live tree holds one root, the newest"
        );
        let mut todo = vec![root.clone()];
        while let Some(key) = todo.pop() {
            if let Node::Internal(internal) = live[&key].as_ref() {
                for (nibble, child) in internal.children_sorted() {
                    let (_, mut nibbles) = path_of(&key);
                    nibbles.push(u8::from(nibble));
                    let child_key = by_path
                        .get(&(child.version, nibbles))
                        .unwrap_or_else(|| panic!("a child of {key:?} is referenced but not live"));
                    todo.push(child_key.clone());
                }
            }
            seen.insert(key);
        }
        seen
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// Version after version, the two-pass put gives the root jmt's key-by-key
        /// insert gives on a tree of the same keys, and leaves a tree in which every
        /// referenced node is live and every live node is referenced (the batch insert
        /// may re-write an unchanged leaf it moves under a new node at the new version,
        /// where the key-by-key insert keeps it: node keys may differ, hashes may not).
        #[test]
        fn batched_puts_give_the_key_by_key_tree(versions in proptest::collection::vec(changes(), 1..12)) {
            let mut live: NodeMap<Arc<Node>> = NodeMap::default();
            let mut expected_live: NodeMap<Arc<Node>> = NodeMap::default();
            for (version, changes) in versions.into_iter().enumerate() {
                let version = version as Version;
                let set: BTreeMap<KeyHash, Option<OwnedValue>> = changes
                    .into_iter()
                    .map(|(key, value)| (key_hash(&key.to_be_bytes()), value.map(|byte| vec![byte; 3])))
                    .collect();
                let set: Vec<_> = set.into_iter().collect();
                let tree = LayeredTree { live: &live, layers: &[], proven: None };
                let (root, nodes, stale) = put_changes(&tree, set.clone(), version).unwrap();
                let expected_tree = LayeredTree { live: &expected_live, layers: &[], proven: None };
                let (expected_root, batch) = JellyfishMerkleTree::<_, Sha256>::new(&expected_tree)
                    .put_value_set(set, version)
                    .unwrap();
                prop_assert_eq!(root, expected_root);
                // As `StateDb::stage` does: the parent's root is stale too.
                for key in stale_keys(stale, &nodes, version) {
                    prop_assert!(live.remove(&key).is_some(), "stale but not live: {:?}", key);
                }
                live.extend(nodes);
                let expected_nodes = shared(batch.node_batch.nodes());
                for key in stale_keys(batch.stale_node_index_batch, &expected_nodes, version) {
                    expected_live.remove(&key);
                }
                expected_live.extend(expected_nodes);
                let live_keys: BTreeSet<NodeKey> = live.keys().cloned().collect();
                prop_assert_eq!(reachable(&live, version), live_keys);
            }
        }
    }
}
