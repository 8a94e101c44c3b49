//! The state database: staging (execute before vote), atomic commit, reads, proofs.

use crate::backend::{Backend, Batch};
use crate::index::{self, Index, IndexedTx, PendingRun, Run, INDEX_PREFIX};
use crate::proof::StateProof;
use crate::trie::{self, Layered, NodeChanges, Nodes};
use seisan_types::hash::Hash;
use seisan_types::ids::Height;
use seisan_types::state::{StateView, WriteSet, MAX_SCAN_LIMIT};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, RwLock};

/// Values one per key, as stores of state format 1 wrote them (their presence refuses
/// the store: [`StateError::OldFormat`]).
const VALUE_PREFIX: u8 = b'v';
/// Value segments: `w` + the checkpoint's height + a chunk number -> a chunk of the
/// value entries that checkpoint wrote (`None`: deleted). A checkpoint writes the
/// values changed since the last one (a delta), or every value (a base) once the deltas
/// since the last base would outgrow it; a base deletes every older value segment.
const VALUE_SEGMENT_PREFIX: u8 = b'w';
/// Jellyfish tree nodes one per key, as stores of state format 1 wrote them.
const NODE_PREFIX: u8 = b'n';
/// Jellyfish tree segments, as stores of state format 1 wrote them with each checkpoint.
const SEGMENT_PREFIX: u8 = b't';
/// A value segment's chunks hold about this many bytes of entries each, so a
/// checkpoint's values are a few hundred sequential inserts instead of one per value.
/// sled keeps up to 16 keys in a leaf page and writes a page over about 128 KiB as a
/// blob file of its own (rewritten whole with each later change to the page): 16
/// chunks of 4 KiB stay well under that.
const SEGMENT_CHUNK_BYTES: usize = 4 * 1024;
const RECORD_PREFIX: u8 = b'x';
const META_HEIGHT: &[u8] = b"m/height";
const META_ROOT_PREFIX: &[u8] = b"m/root/";
/// The height of the backend's last checkpoint of the values.
const META_CHECKPOINT: &[u8] = b"m/checkpoint";
/// The height whose state the backend's values are: the checkpoint's, written with it
/// (without it the values are taken to be at `META_HEIGHT`).
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
    #[error(
        "this store was written in state format 1 (Jellyfish Merkle roots, its `{space}` key \
         space): its recorded roots are not the roots this version computes; start the \
         node on a new data directory and sync it from its peers"
    )]
    OldFormat { space: char },
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
    /// The ids of the block's transactions, in order: committing the block indexes
    /// them ([`StateDb::locate`]).
    pub tx_ids: Vec<Hash>,
    parent: Option<Arc<StagedBlock>>,
    /// The trie nodes it changes (shared with the live trie once committed).
    nodes: NodeChanges,
}

impl StagedBlock {
    /// How many trie nodes the block changes (every node on the paths to the keys it
    /// changed, and the buckets split or folded).
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

/// The committed state at one height, values only: what a node that syncs from a peer
/// installs ([`StateDb::install`]) instead of re-executing every block before it. The
/// trie is built from the values, so a snapshot is checked against `root` (a root a
/// quorum certified) by the one who installs it, not trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateSnapshot {
    pub height: Height,
    pub root: Hash,
    /// Every value, ascending by key.
    pub values: Vec<(Vec<u8>, Vec<u8>)>,
}

/// How many committed blocks share one checkpoint of the values, unless set otherwise
/// ([`StateDb::with_checkpoint_interval`]).
pub const CHECKPOINT_INTERVAL: u64 = 64;

/// The committed state, in memory: every value and every node of the trie.
///
/// A commit writes the block's records and its root, not its values: values are
/// written every [`CHECKPOINT_INTERVAL`] blocks, as one checkpoint of the state. The
/// trie is never written: opening the store loads the checkpoint's values and builds
/// the trie from them (its shape depends only on them); the blocks committed after it
/// are replayed by the caller, which has them in its records ([`StateDb::replay`]).
#[derive(Debug, Default)]
struct Live {
    height: Option<Height>,
    root: Option<Hash>,
    /// The last height committed to the backend: above `height` while blocks committed
    /// after the loaded checkpoint wait to be replayed.
    recorded: Option<Height>,
    values: BTreeMap<Vec<u8>, Vec<u8>>,
    nodes: Nodes,
    /// The values changed since the backend's checkpoint (`None`: deleted).
    dirty: Changes,
    /// Per stored value segment, the bytes of its entries; the first is the base.
    value_segments: BTreeMap<Height, usize>,
    /// Where each committed transaction is.
    index: Index,
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
    /// Backend keys the checkpoint replaces (a store's before a snapshot), deleted
    /// before anything is written.
    deleted_keys: Vec<Vec<u8>>,
    /// The transactions committed since the last checkpoint, as a run of the index.
    run: Option<PendingRun>,
}

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
    /// The backend batch that moves its values to this checkpoint: one segment in
    /// chunks (a few hundred sequential sled inserts, not one insert per value). Reads
    /// the chunks of the segments it deletes.
    fn batch<B: Backend>(self, backend: &B) -> (Batch, Option<Run>) {
        let mut batch = Batch::with_capacity(self.deleted_keys.len() + 64);
        // Deletes first: a key both deleted and written is written (a later put wins).
        for key in self.deleted_keys {
            batch.push((key, None));
        }
        for height in &self.deleted_value_segments {
            for key in segment_chunk_keys(backend, VALUE_SEGMENT_PREFIX, *height) {
                batch.push((key, None));
            }
        }
        push_chunks(
            &mut batch,
            VALUE_SEGMENT_PREFIX,
            self.height,
            self.values.iter(),
        );
        let run = self.run.map(|run| run.push_to(&mut batch));
        let height = Some(self.height.0.to_be_bytes().to_vec());
        batch.push((META_CHECKPOINT.to_vec(), height.clone()));
        batch.push((META_VALUES.to_vec(), height));
        (batch, run)
    }

    /// Writes it as one atomic batch, flushed, and hands its run to the index.
    fn write<B: Backend>(self, backend: &B, live: &RwLock<Live>) -> bool {
        let (batch, run) = self.batch(backend);
        backend.apply(batch);
        backend.flush();
        if let Some(run) = run {
            live.write().expect("live state lock").index.written(run);
        }
        run.is_some()
    }
}

impl Live {
    /// The committed state after `staged`, the next block.
    fn apply(&mut self, staged: &StagedBlock) {
        for (key, value) in &staged.writes.changes {
            match value {
                Some(value) => self.values.insert(key.clone(), value.clone()),
                None => self.values.remove(key),
            };
            self.dirty.insert(key.clone(), value.clone());
        }
        trie::apply(&mut self.nodes, &staged.nodes);
        self.index.add(staged.height, &staged.tx_ids);
        self.height = Some(staged.height);
        self.root = Some(staged.root);
    }

    /// The checkpoint of the committed state: every value changed since the last one
    /// (or every value, as a new base), which it replaces as what the next checkpoint
    /// builds on.
    fn take_checkpoint(&mut self, rebase: bool) -> Checkpoint {
        let height = self.height.expect("a checkpoint follows a commit");
        let (values, deleted_value_segments) = self.value_checkpoint(height, rebase);
        Checkpoint {
            height,
            values,
            deleted_value_segments,
            deleted_keys: Vec::new(),
            run: self.index.take_run(),
        }
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
    /// Starts the writer, and the thread that merges the index's runs after it has
    /// written one.
    fn spawn<B: Backend + Clone>(
        backend: B,
        live: Arc<RwLock<Live>>,
        merging: Arc<Mutex<()>>,
    ) -> CheckpointWriter {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<WriterJob>(2);
        let (nudge, nudges) = std::sync::mpsc::channel::<()>();
        let merger = (backend.clone(), live.clone());
        std::thread::Builder::new()
            .name("state-index-merge".into())
            .spawn(move || {
                let (backend, live) = merger;
                while nudges.recv().is_ok() {
                    while nudges.try_recv().is_ok() {}
                    merge_index(&backend, &live, &merging, true);
                }
            })
            .expect("the index merge thread starts");
        std::thread::Builder::new()
            .name("state-checkpoint".into())
            .spawn(move || {
                for job in queue {
                    match job {
                        WriterJob::Write(checkpoint) => {
                            if checkpoint.write(&backend, &live) {
                                let _ = nudge.send(());
                            }
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
    /// Held while the index's runs are merged (and by [`StateDb::pause_merges`]).
    merging: Arc<Mutex<()>>,
}

/// Merges the index's runs while a size class has [`index::FANOUT`] of them: each
/// merge is written and flushed, then replaces its runs in memory, then their pages
/// are deleted (a lookup that read them meanwhile looks again). Without `wait`, merges
/// nothing while merges are paused ([`StateDb::pause_merges`]): the next checkpoint
/// merges then (a commit that writes its own checkpoint must not wait for a backup
/// that waits for the commit).
fn merge_index<B: Backend>(backend: &B, live: &RwLock<Live>, merging: &Mutex<()>, wait: bool) {
    let _one_at_a_time = match merging.try_lock() {
        Ok(guard) => guard,
        Err(std::sync::TryLockError::WouldBlock) if !wait => return,
        Err(_) => merging.lock().expect("index merge lock"),
    };
    loop {
        let (from, into) = {
            let mut live = live.write().expect("live state lock");
            let Some(from) = live.index.due_merge() else {
                return;
            };
            (from, live.index.allocate_run())
        };
        let merged = index::merge(backend, &from, into);
        live.write()
            .expect("live state lock")
            .index
            .merged(&from, merged);
        let gone: Vec<u64> = from.iter().map(|run| run.id).collect();
        index::delete_runs(backend, &gone);
    }
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

/// The trie of a whole set of values (at open, or from a snapshot), and its root.
fn build_trie(values: &BTreeMap<Vec<u8>, Vec<u8>>) -> (Nodes, Hash) {
    let entries = values
        .iter()
        .map(|(key, value)| (trie::key_hash(key), trie::value_hash(value)))
        .collect();
    let nodes = trie::build_all(entries);
    let root = Hash(trie::root(&nodes));
    (nodes, root)
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

impl<B: Backend + Clone> StateDb<B> {
    /// Opens the state over a backend: loads the values of the last checkpoint into
    /// memory, builds the trie from them and checks that its root is the one recorded
    /// for that height. A store whose values and recorded root disagree is refused, and
    /// so is a store of state format 1 ([`StateError::OldFormat`]).
    pub fn open(backend: B) -> Result<StateDb<B>, StateError> {
        let live = load_live(&backend)?;
        Ok(StateDb {
            backend,
            live: Arc::new(RwLock::new(live)),
            committing: Arc::new(Mutex::new(())),
            checkpoint_interval: CHECKPOINT_INTERVAL,
            writer: None,
            merging: Arc::new(Mutex::new(())),
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
        self.writer = Some(Arc::new(CheckpointWriter::spawn(
            self.backend.clone(),
            self.live.clone(),
            self.merging.clone(),
        )));
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

    /// Keeps the transaction index's runs from being merged while the guard lives,
    /// once a merge under way has ended. A backup takes it before the node's commit
    /// lock (so a long merge never holds up commits), then waits for the checkpoints
    /// under that lock: the store then changes only by commits, which the lock holds
    /// off.
    pub fn pause_merges(&self) -> std::sync::MutexGuard<'_, ()> {
        self.merging.lock().expect("index merge lock")
    }

    /// Where a committed transaction is, by its id (`None`: no block this store holds
    /// committed it).
    pub fn locate(&self, id: &Hash) -> Option<IndexedTx> {
        loop {
            let (runs, generation) = match self.live().index.find_in_memory(id) {
                Ok(at) => return Some(at),
                Err(runs) => runs,
            };
            let found = runs
                .iter()
                .rev()
                .find_map(|run| index::find_in_run(&self.backend, run.id, id));
            if found.is_some() || self.live().index.generation() == generation {
                return found;
            }
        }
    }

    /// Transactions indexed in memory, and runs of the index in the store.
    pub fn index_counts(&self) -> (usize, usize) {
        self.live().index.counts()
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

    /// The height of the values' checkpoint in the backend (`None` before the first).
    pub fn checkpoint_height(&self) -> Option<Height> {
        self.backend
            .get(META_CHECKPOINT)
            .and_then(|bytes| read_height(&bytes, "the checkpoint height").ok())
    }

    /// How many nodes the committed trie has (in memory only: the trie is rebuilt
    /// from the values at open, never written).
    pub fn trie_nodes(&self) -> usize {
        self.live().nodes.len()
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
        self.stage_block(parent, writes, Vec::new())
    }

    /// [`StateDb::stage`] for a block whose transactions are `tx_ids`, which committing
    /// it (or replaying it) indexes.
    pub fn stage_block(
        &self,
        parent: StageParent,
        writes: WriteSet,
        tx_ids: Vec<Hash>,
    ) -> Result<Arc<StagedBlock>, StateError> {
        let layers = self.layers(&parent)?;
        let changes = trie::changes_of(&writes);
        let live = self.live();
        let (parent_height, parent_root) = match layers.first() {
            Some(newest) => (Some(newest.height), Some(newest.root)),
            None => (live.height, live.root),
        };
        let height = parent_height.map_or(Height(0), Height::next);
        let source = Layered {
            layers: layers.iter().map(|layer| &layer.nodes).collect(),
            below: &live.nodes,
        };
        let (root, nodes) = trie::stage(&source, &changes);
        drop(live);
        let parent = match parent {
            StageParent::Committed => None,
            StageParent::Staged(block) => Some(block),
        };
        Ok(Arc::new(StagedBlock {
            height,
            root: Hash(root),
            parent_root,
            writes,
            tx_ids,
            parent,
            nodes,
        }))
    }

    /// Commits a staged block, with the node's own `records` (keys in their own space),
    /// in one atomic batch followed by a flush: the block's records and its root, and
    /// every [`CHECKPOINT_INTERVAL`] blocks a checkpoint of the values. The block
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
                .then(|| live.take_checkpoint(false))
        };
        if let Some(checkpoint) = checkpoint {
            match &self.writer {
                Some(writer) => writer.send(WriterJob::Write(checkpoint)),
                None => {
                    if checkpoint.write(&self.backend, &self.live) {
                        merge_index(&self.backend, &self.live, &self.merging, false);
                    }
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
    /// atomic batch, flushed. The trie is built from the values first: a snapshot whose
    /// values give another root is refused, and nothing is written.
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
        let values: BTreeMap<Vec<u8>, Vec<u8>> = snapshot.values.into_iter().collect();
        let (nodes, actual) = build_trie(&values);
        let mut live = Live {
            height: Some(height),
            root: Some(snapshot.root),
            recorded: Some(height),
            values,
            nodes,
            ..Live::default()
        };
        if actual != snapshot.root {
            return Err(refuse(format!(
                "its values give root {actual}, not the certified {}",
                snapshot.root
            )));
        }
        // Genesis's checkpoint may still be queued: it must not land after this one.
        self.wait_for_checkpoints();
        let mut checkpoint = live.take_checkpoint(true);
        checkpoint.deleted_keys = [VALUE_SEGMENT_PREFIX, INDEX_PREFIX]
            .into_iter()
            .flat_map(|space| {
                scan_space(&self.backend, space)
                    .into_iter()
                    .map(move |(key, _)| prefixed(space, &key))
            })
            .collect();
        let (mut batch, _) = checkpoint.batch(&self.backend);
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
        let proof = trie::prove(&live.nodes, &trie::key_hash(key));
        Ok((live.values.get(key).cloned(), StateProof::from_trie(&proof)))
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

/// The values a store holds, and the bytes of each value segment.
type StoredValues = (BTreeMap<Vec<u8>, Vec<u8>>, BTreeMap<Height, usize>);

/// The stored values: every value segment in height order, a later entry replacing an
/// earlier one (`None`: deleted); and the bytes of each segment.
fn load_values<B: Backend>(backend: &B) -> Result<StoredValues, StateError> {
    let mut values: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
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
    Ok((values, segments))
}

/// Refuses a store of state format 1: one with Jellyfish tree nodes or segments, or
/// values one per key.
fn refuse_old_format<B: Backend>(backend: &B) -> Result<(), StateError> {
    for space in [SEGMENT_PREFIX, NODE_PREFIX, VALUE_PREFIX] {
        let any = backend.range(
            Bound::Included(vec![space]),
            Bound::Excluded(vec![space + 1]),
            1,
        );
        if !any.is_empty() {
            return Err(StateError::OldFormat {
                space: char::from(space),
            });
        }
    }
    Ok(())
}

/// Loads the committed state into memory (see [`StateDb::open`]).
fn load_live<B: Backend>(backend: &B) -> Result<Live, StateError> {
    let Some(height_bytes) = backend.get(META_HEIGHT) else {
        return Ok(Live::default());
    };
    refuse_old_format(backend)?;
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
    let (values, value_segments) = load_values(backend)?;
    let (nodes, actual) = build_trie(&values);
    if actual != recorded {
        return Err(corrupt(format!(
            "the state's values at height {height} give root {actual} but {recorded} was recorded"
        )));
    }
    Ok(Live {
        height: Some(height),
        root: Some(recorded),
        recorded: Some(last_block),
        values,
        nodes,
        value_segments,
        index: index::load(backend).map_err(corrupt)?,
        ..Live::default()
    })
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
