//! The block pipeline: the application side of consensus.
//!
//! The consensus engine asks it to build a proposal on a parent, to verify a proposed
//! block by re-executing it (execute before vote), and to commit a finalized block. A
//! block is executed once per node: the leader when it builds, every other node when it
//! verifies; the staged result (writes and post-state root, not yet on disk) is kept
//! by block hash until the block is finalized and committed, with its certificate,
//! receipts and transaction index, in one atomic write plus flush.

use seisan_contracts::{BlockContext, BlockOutcome};
use seisan_state::{Backend, StageParent, StagedBlock, StateDb, StateError};
use seisan_types::block::{Block, BlockHeader, QuorumCertificate, MAX_TXS_PER_BLOCK};
use seisan_types::codec;
use seisan_types::genesis::Genesis;
use seisan_types::hash::Hash;
use seisan_types::ids::{Epoch, Height, MemberId, Nonce, View};
use seisan_types::receipt::receipts_root;
use seisan_types::tx::{Lane, SignedTransaction};
use seisan_types::ValidatorSet;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// How far ahead of a verifier's clock a proposal's timestamp may be.
pub const MAX_CLOCK_SKEW_MS: u64 = 5_000;

const RECORD_GENESIS: &[u8] = b"g";
const RECORD_TIP: &[u8] = b"tip";
const RECORD_BLOCK: &[u8] = b"b/";
const RECORD_CERTIFICATE: &[u8] = b"c/";
const RECORD_RECEIPTS: &[u8] = b"r/";

/// Where each transaction was, one record per transaction, as versions before the
/// state's transaction index kept it: a store with any is refused at open.
const RECORD_TX_BEFORE_INDEX: &[u8] = b"t/";
const RECORD_SEALS: &[u8] = b"se/";
const RECORD_EPOCH: &[u8] = b"ep/";
const RECORD_HISTORY_FROM: &[u8] = b"history-from";

/// The record keeping the seals that link an epoch's last block to its certificate
/// (consensus rule E4), written with the block's commit.
pub fn seals_record(height: Height, seals: &[Block]) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        height_key(RECORD_SEALS, height),
        Some(codec::encode(&seals.to_vec())),
    )
}

/// The seals kept with the last block of an epoch; empty for any other block.
pub fn read_seals<B: Backend + Clone>(db: &StateDb<B>, height: Height) -> Vec<Block> {
    db.record(&height_key(RECORD_SEALS, height))
        .map(|bytes| codec::decode(&bytes).expect("stored seals decode"))
        .unwrap_or_default()
}

/// The record of an epoch's start: its validator set and the last height of the
/// epoch before it.
pub fn epoch_record(
    set: &ValidatorSet,
    previous_last_height: Height,
) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut key = RECORD_EPOCH.to_vec();
    key.extend_from_slice(&set.epoch.0.to_be_bytes());
    (
        key,
        Some(codec::encode(&(previous_last_height, set.clone()))),
    )
}

/// Where epoch `epoch` started: the last height of the epoch before it and its set.
pub fn read_epoch_start<B: Backend + Clone>(
    db: &StateDb<B>,
    epoch: Epoch,
) -> Option<(Height, ValidatorSet)> {
    let mut key = RECORD_EPOCH.to_vec();
    key.extend_from_slice(&epoch.0.to_be_bytes());
    db.record(&key)
        .map(|bytes| codec::decode(&bytes).expect("stored epoch start decodes"))
}

/// The records a committed block keeps: the block, its certificate and its receipts.
/// Where each of its transactions is, the state indexes when it commits the block
/// ([`StateDb::locate`]), without a record per transaction.
pub fn block_records(
    block: &Block,
    certificate: &QuorumCertificate,
    receipts: &BlockReceipts,
) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let height = block.header.height;
    let mut records = Vec::with_capacity(4);
    records.push((height_key(RECORD_BLOCK, height), Some(codec::encode(block))));
    records.push((
        height_key(RECORD_CERTIFICATE, height),
        Some(codec::encode(certificate)),
    ));
    records.push((
        height_key(RECORD_RECEIPTS, height),
        Some(codec::encode(receipts)),
    ));
    records
}

/// The record of the last committed block.
pub fn tip_record(tip: &Tip) -> (Vec<u8>, Option<Vec<u8>>) {
    (RECORD_TIP.to_vec(), Some(codec::encode(tip)))
}

/// The record of where this node's history starts: the height of the snapshot it was
/// synced from (the blocks before it are with its peers, not here).
pub fn history_from_record(height: Height) -> (Vec<u8>, Option<Vec<u8>>) {
    (
        RECORD_HISTORY_FROM.to_vec(),
        Some(height.0.to_be_bytes().to_vec()),
    )
}

/// The first height whose block this node stores, when it was synced from a snapshot
/// (`None`: it holds every block from genesis).
pub fn read_history_from<B: Backend + Clone>(db: &StateDb<B>) -> Option<Height> {
    db.record(RECORD_HISTORY_FROM)
        .and_then(|bytes| bytes.try_into().ok())
        .map(|bytes| Height(u64::from_be_bytes(bytes)))
}

fn height_key(prefix: &[u8], height: Height) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&height.0.to_be_bytes());
    key
}

/// The last committed block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tip {
    pub height: Height,
    /// Header hash ([`Hash::ZERO`] at genesis).
    pub hash: Hash,
    pub view: View,
    pub timestamp_ms: u64,
    pub state_root: Hash,
}

impl Tip {
    /// The tip genesis makes, whose state has `state_root`.
    fn genesis(genesis: &Genesis, state_root: Hash) -> Tip {
        Tip {
            height: Height(0),
            hash: Hash::ZERO,
            view: View(0),
            timestamp_ms: genesis.genesis_time_ms,
            state_root,
        }
    }

    /// The tip a committed block makes.
    pub fn of(block: &Block) -> Tip {
        Tip {
            height: block.header.height,
            hash: block.hash(),
            view: block.header.view,
            timestamp_ms: block.header.timestamp_ms,
            state_root: block.header.state_root,
        }
    }
}

pub use seisan_api::v1::BlockReceipts;

/// Where a committed transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLocation {
    pub height: Height,
    pub index: u32,
}

/// Why a proposed block is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBlock {
    #[error("block is for chain {got}, this is {expected}")]
    WrongChain { expected: String, got: String },
    #[error("parent {parent} is unknown (not the committed tip nor a staged block)")]
    UnknownParent { parent: Hash },
    #[error("height {got} does not follow the parent's height {parent}")]
    WrongHeight { got: Height, parent: Height },
    #[error("timestamp {got} is before the parent's {parent}")]
    TimeWentBack { got: u64, parent: u64 },
    #[error(
        "timestamp {got} is more than {MAX_CLOCK_SKEW_MS} ms ahead of this node's clock {now}"
    )]
    TimeTooFarAhead { got: u64, now: u64 },
    #[error("{count} transactions exceed the limit of {MAX_TXS_PER_BLOCK}")]
    TooManyTransactions { count: usize },
    #[error("transactions root does not match the body")]
    TxsRoot,
    #[error("transaction {index} is invalid: {reason}")]
    Transaction { index: usize, reason: String },
    #[error("state root {got} differs from the re-executed root {expected}")]
    StateRoot { got: Hash, expected: Hash },
    #[error("receipts root {got} differs from the re-executed root {expected}")]
    ReceiptsRoot { got: Hash, expected: Hash },
    #[error("block names epoch {got}, but the validators of epoch {expected} vote at its height")]
    WrongEpoch { expected: Epoch, got: Epoch },
    #[error("block names the next validator set {got:?}, the re-executed state says {expected:?}")]
    WrongNextValidators {
        expected: Option<Hash>,
        got: Option<Hash>,
    },
    #[error("block says its epoch ends at {got:?}, the re-executed state says {expected:?}")]
    WrongEpochEnd {
        expected: Option<Height>,
        got: Option<Height>,
    },
    #[error("state error: {0}")]
    State(#[from] StateError),
}

/// A block executed on top of its parent but not yet committed.
#[derive(Clone, Debug)]
pub struct StagedEntry {
    pub header: BlockHeader,
    /// The state after the block, with the block's transaction ids (hashed once when
    /// it was built or verified), which committing it indexes.
    pub state: Arc<StagedBlock>,
    pub outcome: Arc<BlockOutcome>,
}

#[derive(Debug)]
pub struct Pipeline<B: Backend + Clone> {
    genesis: Arc<Genesis>,
    /// Chain id and genesis hash, computed once: block transactions verify under it.
    domain: seisan_types::ChainDomain,
    db: StateDb<B>,
    staged: HashMap<Hash, StagedEntry>,
    tip: Tip,
    /// Members' keys, decompressed once: a proposal's transactions that admission did
    /// not verify are checked under them.
    keys: seisan_crypto::KeyCache,
}

impl<B: Backend + Clone> Pipeline<B> {
    /// The chain id and genesis hash every signature of this chain is bound to.
    pub fn domain(&self) -> &seisan_types::ChainDomain {
        &self.domain
    }

    /// Opens the pipeline on a store, committing the genesis state at height 0 if the
    /// store is empty and refusing a store made for another genesis.
    pub fn open(db: StateDb<B>, genesis: Arc<Genesis>) -> Result<Pipeline<B>, String> {
        let genesis_hash = genesis.hash();
        match db.record(RECORD_GENESIS) {
            Some(stored) if stored != genesis_hash.0 => {
                return Err(format!(
                    "this data directory belongs to genesis {} but the node was given genesis {genesis_hash}",
                    hex_of(&stored)
                ))
            }
            Some(_) => {}
            None => {
                if db.committed_height().is_some() {
                    return Err("data directory has state but no genesis record".into());
                }
                let staged = db
                    .stage(StageParent::Committed, seisan_contracts::genesis_writes(&genesis))
                    .map_err(|error| error.to_string())?;
                db.commit(
                    &staged,
                    vec![
                        (RECORD_GENESIS.to_vec(), Some(genesis_hash.0.to_vec())),
                        tip_record(&Tip::genesis(&genesis, staged.root)),
                    ],
                )
                .map_err(|error| error.to_string())?;
            }
        }
        if !db.records(RECORD_TX_BEFORE_INDEX, None, 1).is_empty() {
            return Err(
                "this data directory was written by a version that kept a record per transaction instead of the state's transaction index; start the node on a new data directory and sync it from its peers"
                    .into(),
            );
        }
        let tip_bytes = db
            .record(RECORD_TIP)
            .ok_or("data directory has no tip record")?;
        let tip: Tip = codec::decode(&tip_bytes).map_err(|error| format!("tip record: {error}"))?;
        assert_eq!(
            Some(tip.height),
            db.recorded_height(),
            "tip record and the last committed height agree"
        );
        let state_height = db
            .committed_height()
            .ok_or("data directory has blocks but no state")?;
        let mut pipeline = Pipeline {
            domain: seisan_types::ChainDomain {
                chain_id: genesis.chain_id.clone(),
                genesis: genesis_hash,
            },
            tip: Tip::genesis(
                &genesis,
                db.root_at(Height(0))
                    .ok_or("no root recorded for genesis")?,
            ),
            genesis,
            db,
            staged: HashMap::new(),
            keys: seisan_crypto::KeyCache::default(),
        };
        if state_height.0 > 0 {
            let block = pipeline.block(state_height).ok_or_else(|| {
                format!("the state is at height {state_height}, whose block is not stored")
            })?;
            pipeline.tip = Tip::of(&block);
        }
        pipeline.replay(tip.height)?;
        assert_eq!(pipeline.tip, tip, "the replayed tip is the recorded tip");
        Ok(pipeline)
    }

    /// Re-executes the blocks committed after the store's last checkpoint, up to
    /// `to`, from this node's own records (the state keeps values and tree only at
    /// checkpoints). Their transactions are not verified again: this node verified them
    /// before it committed the blocks. Each block must give the root recorded, and
    /// certified, for its height; one that does not stops the node.
    fn replay(&mut self, to: Height) -> Result<(), String> {
        let now = u64::MAX - MAX_CLOCK_SKEW_MS; // Each was finalized at its time.
        while self.tip.height < to {
            let height = self.tip.height.next();
            let block = self
                .block(height)
                .ok_or_else(|| format!("block {height} is committed but not stored"))?;
            let hash = block.hash();
            self.verify(&block, now, |_| true)
                .map_err(|error| format!("replaying block {height}: {error}"))?;
            let entry = self.staged.remove(&hash).expect("verified above");
            self.db
                .replay(&entry.state)
                .map_err(|error| format!("replaying block {height}: {error}"))?;
            self.staged.clear();
            self.tip = Tip::of(&block);
        }
        Ok(())
    }

    pub fn tip(&self) -> Tip {
        self.tip
    }

    pub fn db(&self) -> &StateDb<B> {
        &self.db
    }

    pub fn staged(&self, hash: &Hash) -> Option<&StagedEntry> {
        self.staged.get(hash)
    }

    /// What executing the staged block `hash` said that its header does not
    /// ([`super::idle::purpose`] reads it): whether it wrote or emitted anything,
    /// whether a governance change is scheduled after it, and its parent's time.
    pub fn executed(&self, hash: &Hash) -> Result<Option<super::idle::Executed>, StateError> {
        let Some(entry) = self.staged.get(hash) else {
            return Ok(None);
        };
        let Some((_, _, parent_time_ms)) = self.parent_info(&entry.header.parent) else {
            return Ok(None);
        };
        let view = self.db.view(&StageParent::Staged(entry.state.clone()))?;
        Ok(Some(super::idle::Executed {
            changed_state: !entry.state.writes.is_empty() || !entry.outcome.events.is_empty(),
            activation_scheduled: !seisan_contracts::governance::scheduled_activations(&view)
                .is_empty(),
            parent_time_ms,
        }))
    }

    /// Forgets a staged block that will not be proposed (an idle leader's empty block
    /// without purpose), so holding a view does not pile them up.
    pub fn discard(&mut self, hash: &Hash) {
        self.staged.remove(hash);
    }

    /// Height and timestamp of a known parent (the tip or a staged block).
    fn parent_info(&self, parent: &Hash) -> Option<(StageParent, Height, u64)> {
        if *parent == self.tip.hash {
            return Some((
                StageParent::Committed,
                self.tip.height,
                self.tip.timestamp_ms,
            ));
        }
        self.staged.get(parent).map(|entry| {
            (
                StageParent::Staged(entry.state.clone()),
                entry.header.height,
                entry.header.timestamp_ms,
            )
        })
    }

    /// The timestamp of a known parent (the tip or a staged block).
    pub fn parent_timestamp(&self, parent: &Hash) -> Option<u64> {
        self.parent_info(parent)
            .map(|(_, _, timestamp_ms)| timestamp_ms)
    }

    /// A read view of the state after `parent` (the tip or a staged block).
    pub fn view_at(&self, parent: &Hash) -> Option<seisan_state::StagedView> {
        let (stage_parent, _, _) = self.parent_info(parent)?;
        self.db.view(&stage_parent).ok()
    }

    /// The epoch whose validators vote on a block built on the state `parent` (the
    /// membership's epoch there: consensus rule E1).
    fn epoch_after(&self, parent: &StageParent) -> Result<Epoch, StateError> {
        let view = self.db.view(parent)?;
        Ok(
            seisan_contracts::governance::consortium_or_genesis(&view, &self.genesis)
                .membership
                .epoch,
        )
    }

    /// The `epoch_end` a block's header must carry: what its own post-state schedules
    /// (consensus rule E2, governance rule G4).
    fn epoch_end_of(&self, state: &Arc<StagedBlock>) -> Result<Option<Height>, StateError> {
        let view = self.db.view(&StageParent::Staged(state.clone()))?;
        Ok(seisan_contracts::governance::epoch_end(&view))
    }

    /// The `next_validators` a block's header must carry: on the last block of an
    /// epoch (its post-state is in a later epoch than the block), the hash of the
    /// validator set its post-state holds; `None` otherwise.
    fn next_validators_of(
        &self,
        header: &BlockHeader,
        state: &Arc<StagedBlock>,
    ) -> Result<Option<Hash>, StateError> {
        let view = self.db.view(&StageParent::Staged(state.clone()))?;
        let membership = seisan_contracts::governance::membership(&view);
        Ok((membership.epoch != header.epoch).then(|| membership.validator_set().hash()))
    }

    /// Executes `txs` (with their ids) on `stage_parent` and stages the result; the
    /// write set and the ids move into the staged block (the outcome keeps an empty
    /// write set).
    fn execute(
        &self,
        stage_parent: StageParent,
        header: &BlockHeader,
        txs: &[SignedTransaction],
        ids: Vec<Hash>,
    ) -> Result<(Arc<StagedBlock>, BlockOutcome), StateError> {
        let view = self.db.view(&stage_parent)?;
        let context = BlockContext {
            height: header.height,
            timestamp_ms: header.timestamp_ms,
            proposer: header.proposer,
        };
        let mut outcome =
            seisan_contracts::apply_identified_block(&view, &self.genesis, &context, txs, &ids);
        assert_eq!(
            outcome.receipts.len(),
            txs.len(),
            "one receipt per transaction"
        );
        let state = self
            .db
            .stage_block(stage_parent, std::mem::take(&mut outcome.writes), ids)?;
        Ok((state, outcome))
    }

    /// Builds a proposal on `parent` with `txs` (already verified), executing it.
    pub fn build(
        &mut self,
        view: View,
        parent: Hash,
        proposer: MemberId,
        now_ms: u64,
        txs: Vec<SignedTransaction>,
    ) -> Result<Block, InvalidBlock> {
        let (stage_parent, parent_height, parent_time) = self
            .parent_info(&parent)
            .ok_or(InvalidBlock::UnknownParent { parent })?;
        let epoch = self.epoch_after(&stage_parent)?;
        let ids: Vec<Hash> = txs.iter().map(SignedTransaction::id).collect();
        let mut header = BlockHeader {
            chain_id: self.genesis.chain_id.clone(),
            epoch,
            height: parent_height.next(),
            view,
            parent,
            timestamp_ms: now_ms.max(parent_time),
            proposer,
            txs_root: Block::txs_root_of(&ids),
            state_root: Hash::ZERO,
            receipts_root: Hash::ZERO,
            epoch_end: None,
            next_validators: None,
        };
        let (state, outcome) = self.execute(stage_parent, &header, &txs, ids)?;
        header.state_root = state.root;
        header.receipts_root = receipts_root(&outcome.receipts, &outcome.events);
        header.epoch_end = self.epoch_end_of(&state)?;
        header.next_validators = self.next_validators_of(&header, &state)?;
        let block = Block { header, txs };
        self.staged.insert(
            block.hash(),
            StagedEntry {
                header: block.header.clone(),
                state,
                outcome: Arc::new(outcome),
            },
        );
        Ok(block)
    }

    /// Verifies a proposed block by re-executing it. `pre_verified` says which
    /// transactions this node already checked (signature and chain), so each is checked
    /// once per node.
    pub fn verify(
        &mut self,
        block: &Block,
        now_ms: u64,
        pre_verified: impl Fn(&Hash) -> bool,
    ) -> Result<(), InvalidBlock> {
        let hash = block.hash();
        if self.staged.contains_key(&hash) {
            return Ok(());
        }
        let header = &block.header;
        if header.chain_id != self.genesis.chain_id {
            return Err(InvalidBlock::WrongChain {
                expected: self.genesis.chain_id.0.clone(),
                got: header.chain_id.0.clone(),
            });
        }
        let (stage_parent, parent_height, parent_time) =
            self.parent_info(&header.parent)
                .ok_or(InvalidBlock::UnknownParent {
                    parent: header.parent,
                })?;
        if header.height != parent_height.next() {
            return Err(InvalidBlock::WrongHeight {
                got: header.height,
                parent: parent_height,
            });
        }
        if header.timestamp_ms < parent_time {
            return Err(InvalidBlock::TimeWentBack {
                got: header.timestamp_ms,
                parent: parent_time,
            });
        }
        if header.timestamp_ms > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
            return Err(InvalidBlock::TimeTooFarAhead {
                got: header.timestamp_ms,
                now: now_ms,
            });
        }
        let epoch = self.epoch_after(&stage_parent)?;
        if header.epoch != epoch {
            return Err(InvalidBlock::WrongEpoch {
                expected: epoch,
                got: header.epoch,
            });
        }
        let ids = block.tx_ids();
        self.check_body(block, &ids, &stage_parent, pre_verified)?;
        let (state, outcome) = self.execute(stage_parent, header, &block.txs, ids)?;
        if state.root != header.state_root {
            return Err(InvalidBlock::StateRoot {
                got: header.state_root,
                expected: state.root,
            });
        }
        let receipts_root = receipts_root(&outcome.receipts, &outcome.events);
        if receipts_root != header.receipts_root {
            return Err(InvalidBlock::ReceiptsRoot {
                got: header.receipts_root,
                expected: receipts_root,
            });
        }
        let epoch_end = self.epoch_end_of(&state)?;
        if header.epoch_end != epoch_end {
            return Err(InvalidBlock::WrongEpochEnd {
                expected: epoch_end,
                got: header.epoch_end,
            });
        }
        let next_validators = self.next_validators_of(header, &state)?;
        if header.next_validators != next_validators {
            return Err(InvalidBlock::WrongNextValidators {
                expected: next_validators,
                got: header.next_validators,
            });
        }
        self.staged.insert(
            hash,
            StagedEntry {
                header: block.header.clone(),
                state,
                outcome: Arc::new(outcome),
            },
        );
        Ok(())
    }

    fn check_body(
        &self,
        block: &Block,
        ids: &[Hash],
        parent: &StageParent,
        pre_verified: impl Fn(&Hash) -> bool,
    ) -> Result<(), InvalidBlock> {
        if block.txs.len() > MAX_TXS_PER_BLOCK {
            return Err(InvalidBlock::TooManyTransactions {
                count: block.txs.len(),
            });
        }
        if Block::txs_root_of(ids) != block.header.txs_root {
            return Err(InvalidBlock::TxsRoot);
        }
        let (indexes, unchecked): (Vec<usize>, Vec<SignedTransaction>) = block
            .txs
            .iter()
            .zip(ids)
            .enumerate()
            .filter(|(_, (_, id))| !pre_verified(id))
            .map(|(index, (tx, _))| (index, tx.clone()))
            .unzip();
        // Keys as of the parent's state: a rotated key signs from the block after its
        // change applies, an added member from its activation (governance rule G6).
        let membership = seisan_contracts::governance::consortium_or_genesis(
            &self.db.view(parent)?,
            &self.genesis,
        )
        .membership;
        let verified = super::admission::verify_transactions_in(
            &self.domain,
            &membership,
            &self.keys,
            &unchecked,
        );
        for (result, index) in verified.into_iter().zip(indexes) {
            result.map_err(|error| InvalidBlock::Transaction {
                index,
                reason: error.to_string(),
            })?;
        }
        Ok(())
    }

    /// Commits a finalized block (the next height) with its finalization certificate
    /// (which certifies this block or a descendant that finalized it) and `extra`
    /// node records, in one atomic write. A block this node has not executed yet (one
    /// fetched during catch-up) is verified and executed first; the certificate must
    /// have been verified by the caller (the consensus engine does).
    pub fn commit(
        &mut self,
        block: &Block,
        certificate: &QuorumCertificate,
        extra: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<Arc<BlockOutcome>, InvalidBlock> {
        self.commit_then(block, certificate, extra, true)
    }

    /// [`Pipeline::commit`], durable only once the store is flushed
    /// ([`StateDb::commit_unflushed`]): a node catching up commits a fetched group of
    /// blocks with one fsync.
    pub fn commit_unflushed(
        &mut self,
        block: &Block,
        certificate: &QuorumCertificate,
        extra: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<Arc<BlockOutcome>, InvalidBlock> {
        self.commit_then(block, certificate, extra, false)
    }

    fn commit_then(
        &mut self,
        block: &Block,
        certificate: &QuorumCertificate,
        extra: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        flush: bool,
    ) -> Result<Arc<BlockOutcome>, InvalidBlock> {
        let hash = block.hash();
        assert!(
            certificate.vote.height >= block.header.height,
            "certificate certifies this block or a descendant"
        );
        if block.header.height <= self.tip.height {
            // Already committed (a duplicate finalization); nothing to do.
            let existing = self.block(block.header.height).map(|b| b.hash());
            assert_eq!(
                existing,
                Some(hash),
                "two different blocks finalized at height {}",
                block.header.height
            );
            let receipts = self
                .receipts(block.header.height)
                .expect("committed block has receipts");
            return Ok(Arc::new(BlockOutcome {
                writes: Default::default(),
                receipts: receipts.receipts,
                events: receipts.events,
                report: None,
            }));
        }
        if !self.staged.contains_key(&hash) {
            let now = u64::MAX - MAX_CLOCK_SKEW_MS; // A finalized block's time was accepted by a quorum.
            self.verify(block, now, |_| false)?;
        }
        let entry = self.staged.get(&hash).expect("verified above");
        let outcome = entry.outcome.clone();
        assert_eq!(
            entry.header.parent, self.tip.hash,
            "finalized blocks commit in order"
        );
        assert_eq!(
            entry.state.root, block.header.state_root,
            "re-execution agrees with the finalized root"
        );
        let tip = Tip::of(block);
        let receipts = BlockReceipts {
            receipts: entry.outcome.receipts.clone(),
            events: entry.outcome.events.clone(),
        };
        let mut records = extra;
        records.reserve(4);
        records.extend(block_records(block, certificate, &receipts));
        records.push(tip_record(&tip));
        if flush {
            self.db.commit(&entry.state, records)?;
        } else {
            self.db.commit_unflushed(&entry.state, records)?;
        }
        self.tip = tip;
        self.staged
            .retain(|_, staged| staged.header.height > tip.height);
        Ok(outcome)
    }

    /// (member, nonce) of every transaction of a block, for the mempool.
    /// Each transaction's member, lane and nonce (what the mempool drops on commit).
    pub fn nonces(block: &Block) -> Vec<(MemberId, Lane, Nonce)> {
        block
            .txs
            .iter()
            .map(|tx| (tx.tx.member, tx.tx.body.lane(), tx.tx.nonce))
            .collect()
    }

    pub fn block(&self, height: Height) -> Option<Block> {
        read_block(&self.db, height)
    }

    pub fn receipts(&self, height: Height) -> Option<BlockReceipts> {
        read_receipts(&self.db, height)
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Reads a committed block.
pub fn read_block<B: Backend + Clone>(db: &StateDb<B>, height: Height) -> Option<Block> {
    db.record(&height_key(RECORD_BLOCK, height))
        .map(|bytes| codec::decode(&bytes).expect("stored block decodes"))
}

/// Reads a committed block's finalization certificate.
pub fn read_certificate<B: Backend + Clone>(
    db: &StateDb<B>,
    height: Height,
) -> Option<QuorumCertificate> {
    db.record(&height_key(RECORD_CERTIFICATE, height))
        .map(|bytes| codec::decode(&bytes).expect("stored certificate decodes"))
}

/// Reads a committed block's receipts.
pub fn read_receipts<B: Backend + Clone>(db: &StateDb<B>, height: Height) -> Option<BlockReceipts> {
    db.record(&height_key(RECORD_RECEIPTS, height))
        .map(|bytes| codec::decode(&bytes).expect("stored receipts decode"))
}

/// Where a committed transaction is (the state's index of the blocks it committed).
pub fn read_tx_location<B: Backend + Clone>(db: &StateDb<B>, id: &Hash) -> Option<TxLocation> {
    db.locate(id).map(|at| TxLocation {
        height: at.height,
        index: at.index,
    })
}

/// The committed tip.
pub fn read_tip<B: Backend + Clone>(db: &StateDb<B>) -> Option<Tip> {
    db.record(RECORD_TIP)
        .map(|bytes| codec::decode(&bytes).expect("stored tip decodes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use seisan_state::MemoryBackend;

    fn genesis() -> Arc<Genesis> {
        crate::node::test_support::genesis(7101)
    }

    use crate::node::test_support::allocation;

    use crate::node::test_support::certificate;

    use crate::node::test_support::pipeline_in_memory as in_memory;

    /// The block at height 1 that `pipeline` builds with one allocation of 100.
    fn one_allocation(
        pipeline: &mut Pipeline<MemoryBackend>,
        genesis: &Genesis,
        now: u64,
    ) -> Block {
        pipeline
            .build(
                View(1),
                Hash::ZERO,
                MemberId(0),
                now,
                vec![allocation(genesis, 1, 100)],
            )
            .unwrap()
    }

    #[test]
    fn built_block_verifies_elsewhere_and_commits_with_receipts() {
        let genesis = genesis();
        let mut leader = in_memory(&genesis);
        let mut voter = in_memory(&genesis);
        assert_eq!(leader.tip().state_root, voter.tip().state_root);
        let transactions = vec![allocation(&genesis, 1, 200), allocation(&genesis, 2, 900)];
        let block = leader
            .build(
                View(1),
                Hash::ZERO,
                MemberId(0),
                genesis.genesis_time_ms + 10,
                transactions,
            )
            .unwrap();
        voter
            .verify(&block, genesis.genesis_time_ms + 10, |_| false)
            .unwrap();
        for pipeline in [&mut leader, &mut voter] {
            let outcome = pipeline
                .commit(&block, &certificate(&block), vec![])
                .unwrap();
            assert!(outcome.receipts[0].is_applied());
            assert!(
                !outcome.receipts[1].is_applied(),
                "900 exceeds the 300 left"
            );
        }
        assert_eq!(leader.tip(), voter.tip());
        assert_eq!(
            read_tx_location(leader.db(), &block.txs[1].id()),
            Some(TxLocation {
                height: Height(1),
                index: 1
            })
        );
        assert_eq!(leader.receipts(Height(1)).unwrap().receipts.len(), 2);
    }

    #[test]
    fn tampered_blocks_are_refused_and_change_nothing() {
        let genesis = genesis();
        let mut leader = in_memory(&genesis);
        let mut voter = in_memory(&genesis);
        let now = genesis.genesis_time_ms + 10;
        let block = one_allocation(&mut leader, &genesis, now);

        let mut wrong_root = block.clone();
        wrong_root.header.state_root = Hash([7; 32]);
        assert!(matches!(
            voter.verify(&wrong_root, now, |_| false),
            Err(InvalidBlock::StateRoot { .. })
        ));

        // A header that misstates what execution said (a receipt changed, dropped or
        // invented) is refused like a wrong state root.
        let mut wrong_receipts = block.clone();
        wrong_receipts.header.receipts_root = receipts_root(&[], &[]);
        assert!(matches!(
            voter.verify(&wrong_receipts, now, |_| false),
            Err(InvalidBlock::ReceiptsRoot { .. })
        ));

        let mut forged = block.clone();
        forged.txs[0].signature.0[0] ^= 1;
        forged.header.txs_root = Block::compute_txs_root(&forged.txs);
        assert!(matches!(
            voter.verify(&forged, now, |_| false),
            Err(InvalidBlock::Transaction { index: 0, .. })
        ));

        let mut orphan = block.clone();
        orphan.header.parent = Hash([1; 32]);
        assert!(matches!(
            voter.verify(&orphan, now, |_| false),
            Err(InvalidBlock::UnknownParent { .. })
        ));

        let mut future = block.clone();
        future.header.timestamp_ms = now + MAX_CLOCK_SKEW_MS + 1_000;
        assert!(matches!(
            voter.verify(&future, now, |_| false),
            Err(InvalidBlock::TimeTooFarAhead { .. })
        ));

        assert_eq!(voter.tip().height, Height(0));
        voter.verify(&block, now, |_| false).unwrap();
    }

    #[test]
    fn an_idle_empty_block_changes_nothing_and_is_discarded() {
        let genesis = genesis();
        let mut leader = in_memory(&genesis);
        let now = genesis.genesis_time_ms + 10;
        let block = leader
            .build(View(1), Hash::ZERO, MemberId(0), now, vec![])
            .unwrap();
        let hash = block.hash();
        let writes = &leader.staged(&hash).unwrap().state.writes;
        assert!(writes.is_empty(), "{writes:?}");
        assert_eq!(
            leader.executed(&hash).unwrap(),
            Some(crate::node::idle::Executed {
                changed_state: false,
                activation_scheduled: false,
                parent_time_ms: genesis.genesis_time_ms,
            })
        );
        assert_eq!(
            crate::node::idle::purpose(&block, leader.executed(&hash).unwrap().unwrap(), 10_000),
            None
        );
        leader.discard(&hash);
        assert!(leader.staged(&hash).is_none());
        assert_eq!(leader.executed(&hash).unwrap(), None);

        let with_transaction = one_allocation(&mut leader, &genesis, now);
        let executed = leader.executed(&with_transaction.hash()).unwrap().unwrap();
        assert_eq!(
            crate::node::idle::purpose(&with_transaction, executed, 10_000),
            Some(crate::node::idle::Purpose::Transactions)
        );
    }

    #[test]
    fn a_reopened_store_replays_its_blocks_after_the_checkpoint_and_refuses_a_changed_one() {
        let genesis = genesis();
        let backend = MemoryBackend::new();
        let open = |backend: MemoryBackend| {
            Pipeline::open(
                StateDb::open(backend).unwrap().with_checkpoint_interval(4),
                genesis.clone(),
            )
        };
        let mut pipeline = open(backend.clone()).unwrap();
        for height in 1..=6u64 {
            let tip = pipeline.tip();
            let block = pipeline
                .build(
                    View(height),
                    tip.hash,
                    MemberId(0),
                    genesis.genesis_time_ms + height,
                    vec![allocation(&genesis, height, 10)],
                )
                .unwrap();
            pipeline
                .commit(&block, &certificate(&block), vec![])
                .unwrap();
        }
        let everything = |pipeline: &Pipeline<MemoryBackend>| {
            seisan_types::state::StateView::scan(
                &pipeline.db().committed_view(),
                b"",
                None,
                100_000,
            )
        };
        // The state is checkpointed at 4; blocks 5 and 6 are replayed from the records.
        let reopened = open(backend.crash()).unwrap();
        assert_eq!(reopened.db().checkpoint_height(), Some(Height(4)));
        assert_eq!(reopened.tip(), pipeline.tip());
        assert_eq!(
            reopened.db().committed_root(),
            Some(pipeline.tip().state_root)
        );
        assert_eq!(everything(&reopened), everything(&pipeline));

        // A block record changed on disk after the checkpoint stops the node.
        let changed = backend.crash();
        let mut block = pipeline.block(Height(5)).unwrap();
        block.header.state_root = Hash([7; 32]);
        StateDb::open(changed.clone()).unwrap().put_records(vec![(
            height_key(RECORD_BLOCK, Height(5)),
            Some(codec::encode(&block)),
        )]);
        let Err(error) = open(changed.crash()) else {
            panic!("a changed block record was replayed")
        };
        assert!(error.contains("replaying block 5"), "{error}");
    }

    #[test]
    fn a_store_of_another_genesis_is_refused() {
        let backend = MemoryBackend::new();
        Pipeline::open(StateDb::open(backend.clone()).unwrap(), genesis()).unwrap();
        let mut other = (*genesis()).clone();
        other.chain_id = seisan_types::ids::ChainId("seisan-dev-other".into());
        let error = Pipeline::open(StateDb::open(backend).unwrap(), Arc::new(other)).unwrap_err();
        assert!(error.contains("belongs to genesis"), "{error}");
    }

    #[test]
    fn a_store_with_a_record_per_transaction_is_refused_with_what_to_do() {
        let backend = MemoryBackend::new();
        let db = StateDb::open(backend.clone()).unwrap();
        Pipeline::open(db.clone(), genesis()).unwrap();
        let mut key = RECORD_TX_BEFORE_INDEX.to_vec();
        key.extend_from_slice(&[7; 32]);
        db.put_records(vec![(key, Some(vec![0; 12]))]);
        let error = Pipeline::open(StateDb::open(backend).unwrap(), genesis()).unwrap_err();
        assert!(
            error.contains("a record per transaction") && error.contains("new data directory"),
            "{error}"
        );
    }
}
