//! Snapshot sync (issue 18 item 5): a node whose store holds nothing after genesis
//! (new, or wiped) installs a peer's state instead of re-executing every block.
//!
//! - **What a snapshot is:** every value of a peer's committed state at one height,
//!   with that height's block, its certificate and receipts, and the last block of
//!   each epoch since genesis (how the validator set changed). Served in chunks of
//!   about [`CHUNK_BYTES`] over the sync protocol, behind [`REQUEST_TAG`].
//! - **What is trusted:** nothing the peer says. The offer's certificate must verify
//!   against the validator set followed from genesis through its epoch ends (as a
//!   client checks a balance proof, `cli::proof::follow_epochs`), the block's
//!   transactions and receipts must match its header, and the values must rebuild a
//!   tree whose root is the header's state root (`StateDb::install`). A peer whose
//!   snapshot fails any check is named in the log and the next offer is tried; with
//!   none left the node replays every block from genesis, as before.
//! - **After it:** the node catches up the blocks after the snapshot as any node does
//!   (fetched, verified, executed). The blocks before it stay with its peers: the node
//!   records where its history starts, and its API says so for an earlier block.

use super::pipeline::{
    block_records, epoch_record, history_from_record, read_block, read_certificate,
    read_epoch_start, read_receipts, read_seals, seals_record, tip_record, BlockReceipts, Tip,
};
use seisan_network::{InboundRequest, NetworkEvent, NetworkHandle, Validation};
use seisan_state::{Backend, StateDb, StateSnapshot};
use seisan_types::block::{Block, QuorumCertificate};
use seisan_types::receipt::receipts_root;
use seisan_types::{codec, Epoch, Genesis, Height, MemberId, ValidatorSet, VoteKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Snapshot requests share the sync protocol with block fetches; they start with this
/// tag, which no fetch request does (a fetch request is a fixed-size encoding).
pub const REQUEST_TAG: &[u8] = b"seisan/snapshot/1\0";
/// The default of `--snapshot-sync-min-blocks`: a shorter chain is replayed from
/// genesis (seconds of work), which keeps every block on the new node too.
pub const SNAPSHOT_SYNC_MIN_BLOCKS: u64 = 1_000;
/// A chunk of values holds about this many bytes (the response limit is 16 MiB).
pub const CHUNK_BYTES: usize = 1 << 20;
/// A serving node builds a new snapshot for an offer once its newest is this many
/// blocks behind its tip; it keeps the one before too, for a download under way.
const REFRESH_BLOCKS: u64 = 256;
/// How long a starting node waits for its first peer, then for more after it.
const FIRST_PEER_WAIT: Duration = Duration::from_secs(10);
const MORE_PEERS_WAIT: Duration = Duration::from_secs(1);

/// What a node asks a peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotRequest {
    /// The peer's newest snapshot, described.
    Offer,
    /// Chunk `index` of the peer's snapshot at `height`.
    Chunk { height: Height, index: u32 },
}

/// A peer's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotAnswer {
    Offer(Box<SnapshotOffer>),
    /// A chunk's values, ascending by key.
    Chunk(Vec<(Vec<u8>, Vec<u8>)>),
    Unavailable(String),
}

/// A snapshot as offered (nothing in it is trusted yet).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotOffer {
    /// The block whose state the snapshot is; its header has the state root.
    pub block: Block,
    /// A finalization of exactly that block.
    pub certificate: QuorumCertificate,
    pub receipts: BlockReceipts,
    /// The last block of each epoch before the block's, from epoch 0 on.
    pub epochs: Vec<EpochEnd>,
    pub chunks: u32,
    pub values: u64,
    /// The chunks' encoded size together.
    pub bytes: u64,
}

/// The last block of one epoch, with what certifies it and the set that follows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochEnd {
    pub block: Block,
    pub certificate: QuorumCertificate,
    pub receipts: BlockReceipts,
    /// The seals linking the block to its certificate (consensus rule E4).
    pub seals: Vec<Block>,
    /// The validator set of the next epoch.
    pub next: ValidatorSet,
}

impl SnapshotRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = REQUEST_TAG.to_vec();
        bytes.extend(codec::encode(self));
        bytes
    }

    /// A snapshot request, if `payload` is one (else it is for another protocol).
    pub fn decode(payload: &[u8]) -> Option<Result<SnapshotRequest, String>> {
        let body = payload.strip_prefix(REQUEST_TAG)?;
        Some(codec::decode_with_limit(body, 64).map_err(|error| error.to_string()))
    }
}

/// A checked offer: the height and root a quorum certified.
#[derive(Clone, Debug)]
pub struct Verified {
    pub offer: SnapshotOffer,
    pub height: Height,
    pub set: ValidatorSet,
}

/// Checks an offer against genesis alone: the epoch ends from genesis's set on, each
/// certified by its own epoch's validators and naming the next set; then the block's
/// finalization by the last set; the block's transactions and receipts against its
/// header. What is left unchecked is the values, which the install checks.
pub fn verify_offer(genesis: &Genesis, offer: SnapshotOffer) -> Result<Verified, String> {
    let domain = genesis.domain();
    let links: Vec<crate::cli::proof::EpochLink> = offer
        .epochs
        .iter()
        .map(|end| crate::cli::proof::EpochLink {
            set: end.next.clone(),
            last_header: end.block.header.clone(),
            certificate: end.certificate.clone(),
            seals: end.seals.iter().map(|seal| seal.header.clone()).collect(),
        })
        .collect();
    let set =
        crate::cli::proof::follow_epochs(genesis, &links).map_err(|error| error.to_string())?;
    for (index, end) in offer.epochs.iter().enumerate() {
        check_body(&end.block, &end.receipts)
            .map_err(|reason| format!("epoch end {index}: {reason}"))?;
        for seal in &end.seals {
            if !seal.txs_root_matches() {
                return Err(format!(
                    "epoch end {index}: the seal at height {} does not match its header",
                    seal.header.height
                ));
            }
        }
    }
    let header = &offer.block.header;
    if header.chain_id != genesis.chain_id {
        return Err(format!(
            "the block is of chain {}, not {}",
            header.chain_id, genesis.chain_id
        ));
    }
    if header.epoch != set.epoch {
        return Err(format!(
            "the block is of epoch {}, the epoch ends lead to {}",
            header.epoch, set.epoch
        ));
    }
    let certificate = &offer.certificate;
    seisan_crypto::verify_certificate_in(&domain, &set, certificate)
        .map_err(|error| format!("the certificate does not verify: {error}"))?;
    if certificate.vote.kind != VoteKind::Finalize {
        return Err("the certificate is not a finalization".into());
    }
    if certificate.vote.block != offer.block.hash() || certificate.vote.height != header.height {
        return Err(format!(
            "the certificate is for block {} at height {}, not the offered block at {}",
            certificate.vote.block, certificate.vote.height, header.height
        ));
    }
    check_body(&offer.block, &offer.receipts)?;
    if offer.chunks == 0 {
        return Err("the snapshot has no chunks".into());
    }
    Ok(Verified {
        height: header.height,
        set,
        offer,
    })
}

/// A block's transactions and receipts against the roots its header commits to.
fn check_body(block: &Block, receipts: &BlockReceipts) -> Result<(), String> {
    let height = block.header.height;
    if !block.txs_root_matches() {
        return Err(format!(
            "block {height}'s transactions do not match its header"
        ));
    }
    if receipts_root(&receipts.receipts, &receipts.events) != block.header.receipts_root {
        return Err(format!("block {height}'s receipts do not match its header"));
    }
    Ok(())
}

/// The records a node installing `verified` keeps with it: the block (as its tip),
/// certificate and receipts; each epoch's last block with its seals and the record of
/// where the next epoch started; and where its history starts.
pub fn records(verified: &Verified) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let offer = &verified.offer;
    let mut records = block_records(&offer.block, &offer.certificate, &offer.receipts);
    records.push(tip_record(&Tip::of(&offer.block)));
    for end in &offer.epochs {
        records.extend(block_records(&end.block, &end.certificate, &end.receipts));
        if !end.seals.is_empty() {
            records.push(seals_record(end.block.header.height, &end.seals));
        }
        records.push(epoch_record(&end.next, end.block.header.height));
    }
    records.push(history_from_record(verified.height));
    records
}

/// One snapshot a node serves: its offer and its encoded chunks.
#[derive(Debug)]
struct Image {
    offer: SnapshotOffer,
    chunks: Vec<Vec<(Vec<u8>, Vec<u8>)>>,
}

/// The serving side: builds a snapshot of the committed state when asked and keeps
/// the newest two for the chunk requests that follow.
#[derive(Clone, Debug, Default)]
pub struct Server {
    images: Arc<Mutex<VecDeque<Arc<Image>>>>,
    /// Test fault: serve values that differ from the certified state.
    lie: bool,
}

impl Server {
    pub fn new(lie: bool) -> Server {
        Server {
            images: Arc::default(),
            lie,
        }
    }

    /// The answer to `request`. Called on the committing task, so the state and the
    /// records read are of one height; encoding happens in the caller's spawned task.
    pub fn answer<B: Backend + Clone>(
        &self,
        request: &SnapshotRequest,
        db: &StateDb<B>,
    ) -> SnapshotAnswer {
        match request {
            SnapshotRequest::Offer => {
                let tip = db.committed_height().unwrap_or(Height(0));
                let newest = self.images.lock().expect("snapshot images").back().cloned();
                if let Some(image) = newest
                    .filter(|image| image.offer.block.header.height.0 + REFRESH_BLOCKS > tip.0)
                {
                    return SnapshotAnswer::Offer(Box::new(image.offer.clone()));
                }
                match self.build(db) {
                    Ok(image) => {
                        let offer = image.offer.clone();
                        let mut images = self.images.lock().expect("snapshot images");
                        images.push_back(Arc::new(image));
                        while images.len() > 2 {
                            images.pop_front();
                        }
                        SnapshotAnswer::Offer(Box::new(offer))
                    }
                    Err(reason) => SnapshotAnswer::Unavailable(reason),
                }
            }
            SnapshotRequest::Chunk { height, index } => {
                let image = self
                    .images
                    .lock()
                    .expect("snapshot images")
                    .iter()
                    .find(|image| image.offer.block.header.height == *height)
                    .cloned();
                match image.and_then(|image| image.chunks.get(*index as usize).cloned()) {
                    Some(chunk) => SnapshotAnswer::Chunk(chunk),
                    None => SnapshotAnswer::Unavailable(format!(
                        "no chunk {index} of a snapshot at height {height} is served here; ask for a new offer"
                    )),
                }
            }
        }
    }

    fn build<B: Backend + Clone>(&self, db: &StateDb<B>) -> Result<Image, String> {
        let snapshot = db
            .snapshot()
            .ok_or("this node's state is not ready (replaying its blocks)")?;
        let height = snapshot.height;
        if height == Height(0) {
            return Err("this node holds no block after genesis".into());
        }
        let block = read_block(db, height).ok_or("the tip block is not stored")?;
        let certificate = read_certificate(db, height)
            .filter(|certificate| {
                certificate.vote.block == block.hash() && certificate.vote.height == height
            })
            .ok_or_else(|| {
                format!("block {height} is certified only through its descendants (an epoch's end); ask again after the next block")
            })?;
        if block.header.next_validators.is_some() {
            return Err(format!(
                "block {height} is the last of its epoch; ask again after the next block"
            ));
        }
        let receipts = read_receipts(db, height).ok_or("the tip's receipts are not stored")?;
        // The epoch ends that lead from genesis's set to the one that certified the tip.
        let mut epochs = Vec::new();
        for number in 1..=block.header.epoch.0 {
            let missing = || format!("this node holds no record of where epoch {number} started");
            let (last_height, next) = read_epoch_start(db, Epoch(number)).ok_or_else(missing)?;
            epochs.push(EpochEnd {
                block: read_block(db, last_height).ok_or_else(missing)?,
                certificate: read_certificate(db, last_height).ok_or_else(missing)?,
                receipts: read_receipts(db, last_height).ok_or_else(missing)?,
                seals: read_seals(db, last_height),
                next,
            });
        }
        let mut chunks = Vec::new();
        let mut chunk = Vec::new();
        let mut size = 0usize;
        let mut bytes = 0u64;
        let values = snapshot.values.len() as u64;
        for (key, value) in snapshot.values {
            size += key.len() + value.len() + 16;
            chunk.push((key, value));
            if size >= CHUNK_BYTES {
                chunks.push(std::mem::take(&mut chunk));
                bytes += size as u64;
                size = 0;
            }
        }
        if !chunk.is_empty() {
            chunks.push(chunk);
            bytes += size as u64;
        }
        if self.lie {
            if let Some((_, value)) = chunks.last_mut().and_then(|chunk| chunk.last_mut()) {
                value.push(0);
                warn!(%height, "fault injection: this node serves a snapshot whose last value differs from the certified state");
            }
        }
        Ok(Image {
            offer: SnapshotOffer {
                block,
                certificate,
                receipts,
                epochs,
                chunks: chunks.len() as u32,
                values,
                bytes,
            },
            chunks,
        })
    }
}

/// What a starting node did about snapshots.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The height installed, if one was.
    pub installed: Option<Height>,
    /// The peers connected meanwhile (the core loop starts with them).
    pub peers: BTreeSet<MemberId>,
}

/// The starting side: while it waits, the node answers what peers ask of it (it has
/// nothing to serve yet) and keeps track of who is connected.
pub struct Client<'a> {
    pub network: &'a NetworkHandle,
    pub events: &'a mut mpsc::Receiver<NetworkEvent>,
    pub genesis: &'a Genesis,
    pub names: &'a dyn Fn(MemberId) -> String,
    pub peers: BTreeSet<MemberId>,
}

impl Client<'_> {
    /// Finds the best certified snapshot among the peers' offers and installs it into
    /// `db` (which holds only genesis), if the chain is at least `min_blocks` long.
    pub async fn sync<B: Backend + Clone + Send + Sync + 'static>(
        mut self,
        db: &StateDb<B>,
        min_blocks: u64,
    ) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        self.wait_for_peers().await?;
        if self.peers.is_empty() {
            info!(
                waited_s = FIRST_PEER_WAIT.as_secs(),
                "no peer connected; the node replays the chain from genesis as its peers appear"
            );
            return Ok(self.outcome(None));
        }
        let mut offers = Vec::new();
        for peer in self.peers.clone() {
            match self.ask(peer, &SnapshotRequest::Offer).await {
                Ok(SnapshotAnswer::Offer(offer)) => match verify_offer(self.genesis, *offer) {
                    Ok(verified) => offers.push((peer, verified)),
                    Err(reason) => {
                        warn!(peer = %(self.names)(peer), %reason, "refused a snapshot offer")
                    }
                },
                Ok(SnapshotAnswer::Unavailable(reason)) => {
                    info!(peer = %(self.names)(peer), %reason, "the peer offers no snapshot")
                }
                Ok(SnapshotAnswer::Chunk(_)) => {
                    warn!(peer = %(self.names)(peer), "answered an offer request with a chunk")
                }
                Err(reason) => info!(peer = %(self.names)(peer), %reason, "no snapshot offer"),
            }
        }
        offers.sort_by_key(|(_, verified)| std::cmp::Reverse(verified.height));
        let best = offers.first().map_or(0, |(_, verified)| verified.height.0);
        if best < min_blocks {
            info!(
                best_offer = best,
                min_blocks, "the chain is shorter than --snapshot-sync-min-blocks; the node replays it from genesis"
            );
            return Ok(self.outcome(None));
        }
        for (peer, verified) in offers {
            let name = (self.names)(peer);
            let height = verified.height;
            let downloading = Instant::now();
            let values = match self.download(peer, &verified).await {
                Ok(values) => values,
                Err(reason) => {
                    warn!(peer = %name, %height, %reason, "snapshot download failed; trying the next offer");
                    continue;
                }
            };
            let snapshot = StateSnapshot {
                height,
                root: verified.offer.block.header.state_root,
                values,
            };
            let download_ms = downloading.elapsed().as_millis() as u64;
            let install_started = Instant::now();
            let records = records(&verified);
            let installing = db.clone();
            let installed = self
                .draining(tokio::task::spawn_blocking(move || {
                    installing.install(snapshot, records)
                }))
                .await
                .expect("the install does not panic");
            match installed {
                Ok(()) => {
                    info!(
                        peer = %name,
                        %height,
                        epoch = %verified.set.epoch,
                        values = verified.offer.values,
                        bytes = verified.offer.bytes,
                        download_ms,
                        install_ms = install_started.elapsed().as_millis() as u64,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "installed a certified snapshot of the state; catching up the blocks after it"
                    );
                    return Ok(self.outcome(Some(height)));
                }
                Err(error) => {
                    warn!(peer = %name, %height, %error, "refused a snapshot: its values are not the certified state; trying the next offer")
                }
            }
        }
        info!("no snapshot could be installed; the node replays the chain from genesis");
        Ok(self.outcome(None))
    }

    fn outcome(self, installed: Option<Height>) -> Outcome {
        Outcome {
            installed,
            peers: self.peers,
        }
    }

    async fn download(
        &mut self,
        peer: MemberId,
        verified: &Verified,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, String> {
        let height = verified.height;
        let mut values = Vec::with_capacity(verified.offer.values.min(1 << 24) as usize);
        for index in 0..verified.offer.chunks {
            match self
                .ask(peer, &SnapshotRequest::Chunk { height, index })
                .await?
            {
                SnapshotAnswer::Chunk(chunk) => values.extend(chunk),
                SnapshotAnswer::Unavailable(reason) => return Err(reason),
                SnapshotAnswer::Offer(_) => {
                    return Err(format!("answered chunk {index} with an offer"))
                }
            }
        }
        if values.len() as u64 != verified.offer.values {
            return Err(format!(
                "{} values arrived, the offer said {}",
                values.len(),
                verified.offer.values
            ));
        }
        Ok(values)
    }

    async fn ask(
        &mut self,
        peer: MemberId,
        request: &SnapshotRequest,
    ) -> Result<SnapshotAnswer, String> {
        let network = self.network.clone();
        let payload = request.encode();
        let bytes = self
            .draining(async move { network.request(peer, payload).await })
            .await
            .map_err(|error| error.to_string())?;
        codec::decode(&bytes).map_err(|error| format!("malformed snapshot answer: {error}"))
    }

    async fn wait_for_peers(&mut self) -> anyhow::Result<()> {
        let mut deadline = tokio::time::Instant::now() + FIRST_PEER_WAIT;
        let mut more_wait_set = false;
        loop {
            if !self.peers.is_empty() && !more_wait_set {
                deadline = deadline.min(tokio::time::Instant::now() + MORE_PEERS_WAIT);
                more_wait_set = true;
            }
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(event) => self.on_event(event).await,
                    None => anyhow::bail!("the network stopped"),
                },
                _ = tokio::time::sleep_until(deadline) => return Ok(()),
            }
        }
    }

    /// Runs `work` while answering network events, so the network never waits on us.
    async fn draining<T>(&mut self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return done,
                Some(event) = self.events.recv() => self.on_event(event).await,
            }
        }
    }

    async fn on_event(&mut self, event: NetworkEvent) {
        match event {
            NetworkEvent::PeerConnected { member } => {
                self.peers.insert(member);
            }
            NetworkEvent::PeerDisconnected { member } => {
                self.peers.remove(&member);
            }
            NetworkEvent::Request(InboundRequest { id, payload, .. }) => {
                // Nothing to serve yet: an empty answer, at once, so the asker moves on.
                let answer = match SnapshotRequest::decode(&payload) {
                    Some(_) => codec::encode(&SnapshotAnswer::Unavailable(
                        "this node is syncing from a snapshot itself".into(),
                    )),
                    None => seisan_consensus::FetchResponse::default().encode(),
                };
                let _ = self.network.respond(id, answer).await;
            }
            NetworkEvent::Gossip(message) => {
                let _ = self
                    .network
                    .report_validation(message.message_id, message.from, Validation::Ignore)
                    .await;
            }
            NetworkEvent::Direct(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis_command::testnet_genesis;
    use seisan_types::{BlockHeader, Hash, View, Vote};

    fn block(genesis: &Genesis) -> Block {
        Block {
            header: BlockHeader {
                chain_id: genesis.chain_id.clone(),
                epoch: Epoch(0),
                height: Height(40),
                view: View(41),
                parent: Hash([3; 32]),
                timestamp_ms: genesis.genesis_time_ms + 20_000,
                proposer: MemberId(1),
                txs_root: Block::compute_txs_root(&[]),
                state_root: Hash([9; 32]),
                receipts_root: receipts_root(&[], &[]),
                epoch_end: None,
                next_validators: None,
            },
            txs: Vec::new(),
        }
    }

    fn certificate(
        genesis: &Genesis,
        block: &Block,
        kind: VoteKind,
        signers: &[&str],
    ) -> QuorumCertificate {
        let vote = Vote {
            chain_id: genesis.chain_id.clone(),
            epoch: Epoch(0),
            view: block.header.view,
            height: block.header.height,
            block: block.hash(),
            kind,
        };
        crate::node::test_support::dev_certificate(genesis, vote, signers)
    }

    fn offer(genesis: &Genesis) -> SnapshotOffer {
        let block = block(genesis);
        SnapshotOffer {
            certificate: certificate(
                genesis,
                &block,
                VoteKind::Finalize,
                &["clearing-house", "exchange-b"],
            ),
            block,
            receipts: BlockReceipts {
                receipts: Vec::new(),
                events: Vec::new(),
            },
            epochs: Vec::new(),
            chunks: 1,
            values: 1,
            bytes: 10,
        }
    }

    #[test]
    fn an_offer_certified_by_a_quorum_of_the_genesis_set_verifies() {
        let genesis = testnet_genesis(7101, 0);
        let verified = verify_offer(&genesis, offer(&genesis)).unwrap();
        assert_eq!(verified.height, Height(40));
        assert_eq!(verified.set.epoch, Epoch(0));
        let records = records(&verified);
        assert!(records.contains(&history_from_record(Height(40))));
        assert!(records.contains(&tip_record(&Tip::of(&verified.offer.block))));
    }

    #[test]
    fn an_offer_without_a_quorums_finalization_of_its_block_is_refused() {
        let genesis = testnet_genesis(7101, 0);
        let refused = |offer: SnapshotOffer| verify_offer(&genesis, offer).unwrap_err();
        let mut one_signer = offer(&genesis);
        one_signer.certificate = certificate(
            &genesis,
            &one_signer.block,
            VoteKind::Finalize,
            &["exchange-b"],
        );
        assert!(refused(one_signer).contains("does not verify"));
        let mut notarized = offer(&genesis);
        notarized.certificate = certificate(
            &genesis,
            &notarized.block,
            VoteKind::Notarize,
            &["clearing-house", "exchange-b"],
        );
        assert!(refused(notarized).contains("not a finalization"));
        // Another state root than the one certified: the header no longer hashes to it.
        let mut other_root = offer(&genesis);
        other_root.block.header.state_root = Hash([8; 32]);
        assert!(refused(other_root).contains("not the offered block"));
        let mut other_receipts = offer(&genesis);
        other_receipts
            .receipts
            .events
            .push(seisan_types::receipt::Event::OrderFilled {
                order: seisan_types::clearing::OrderId(1),
                member: MemberId(1),
            });
        assert!(refused(other_receipts).contains("receipts do not match"));
        let mut other_chain = testnet_genesis(7101, 0);
        other_chain.chain_id = seisan_types::ids::ChainId("another-dev".into());
        assert!(verify_offer(&other_chain, offer(&genesis)).is_err());
        let mut empty = offer(&genesis);
        empty.chunks = 0;
        assert!(refused(empty).contains("no chunks"));
    }

    #[test]
    fn snapshot_requests_are_told_apart_from_fetch_requests() {
        let request = SnapshotRequest::Chunk {
            height: Height(7),
            index: 3,
        };
        assert_eq!(
            SnapshotRequest::decode(&request.encode()),
            Some(Ok(request))
        );
        let fetch = seisan_consensus::FetchRequest {
            from_height: Height(1),
            target: Hash([1; 32]),
            target_height: Height(9),
        };
        assert_eq!(SnapshotRequest::decode(&fetch.encode()), None);
        assert!(matches!(
            SnapshotRequest::decode(&[REQUEST_TAG, &[0xff; 3]].concat()),
            Some(Err(_))
        ));
    }
}
