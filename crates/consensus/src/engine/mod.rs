//! The Simplex state machine: [`Engine::step`] takes the time and one [`Input`] and
//! returns the [`Output`]s the host must carry out. It owns no clock, socket, file or
//! random source, iterates only ordered maps, and so gives the same outputs for the same
//! inputs on every machine. The rules R1..R12 it cites are written out in the crate
//! docs.

use crate::evidence::{ConsensusEvidence, EvidenceKind};
use crate::fetch::{FetchRequest, FetchResponse, MAX_FETCH_BLOCKS, MAX_FETCH_CERTIFICATES};
use crate::message::{
    check_certificate_bounds, proposal_digest, ConsensusMessage, PeerStatus, Proposal,
    MAX_JUSTIFICATION_CERTIFICATES,
};
use crate::record::{PersistedRecord, Signing};
use seisan_crypto::{
    assemble_certificate, sign_vote, verify_certificate, verify_digest, verify_vote, Keypair,
};
use seisan_types::{
    Block, BlockHeader, ChainId, Evidence, Genesis, Hash, Height, MemberId, QuorumCertificate,
    Signature, SignedVote, View, Vote, VoteKind,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Votes and proposals further than this many views ahead of the current one are
/// dropped (certificates are not: they are verified and let a lagging node jump).
pub const MAX_VIEWS_AHEAD: u64 = 256;
/// Views older than this many behind the current one are forgotten.
pub const MAX_RETAINED_VIEWS: u64 = 4096;
/// The most unfinalized blocks held in memory.
pub const MAX_UNFINALIZED_BLOCKS: usize = 4096;
/// The most blocks being fetched at once.
pub const MAX_WANTED_BLOCKS: usize = 8;
/// The most signed messages waiting for their record to become durable; the engine
/// signs nothing more until the host acknowledges.
pub const MAX_UNRELEASED: usize = 64;
/// Votes of one kind kept per view when duplicate counting is deliberately broken.
const MAX_VOTES_PER_KIND: usize = 64;

/// How long the engine waits. All times are in the host's milliseconds (only
/// differences matter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// A view with no notarization after this long is nullified (R6); Simplex's 3 delta.
    pub view_timeout_ms: u64,
    /// After a view timed out, votes and certificates are re-sent this often (R9).
    pub retry_ms: u64,
    /// An unanswered fetch is asked again after this long (R12).
    pub fetch_retry_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            view_timeout_ms: 2_000,
            retry_ms: 1_000,
            fetch_retry_ms: 500,
        }
    }
}

/// Deliberately broken rules, so tests can prove the simulator catches a broken
/// engine. Never set outside tests.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BugInjection {
    /// Count a repeated copy of one member's vote again toward the quorum.
    pub count_duplicate_votes: bool,
    /// Send a signed message before its record is acknowledged as durable.
    pub release_before_persist: bool,
}

/// Everything an engine needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// The validated genesis: the validator set and the quorum q.
    pub genesis: Genesis,
    /// This validator.
    pub member: MemberId,
    /// This validator's key; must match its genesis public key.
    pub keypair: Keypair,
    pub timeouts: Timeouts,
    #[doc(hidden)]
    pub bug_injection: BugInjection,
}

/// The highest finalized block the host holds durably.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizedTip {
    pub height: Height,
    pub hash: Hash,
    pub view: View,
    /// The finalization certificate of this very block (`None` at genesis).
    pub certificate: Option<QuorumCertificate>,
}

impl FinalizedTip {
    /// Genesis: height 0, view 0; height 1's parent is [`Hash::ZERO`].
    pub fn genesis() -> FinalizedTip {
        FinalizedTip {
            height: Height(0),
            hash: Hash::ZERO,
            view: View(0),
            certificate: None,
        }
    }

    /// The tip a host restarts from when `last` is the last finalized block it stored.
    /// The last block output in any step is the one its certificate certifies, so this
    /// tip carries its own finalization.
    pub fn of(last: &FinalizedBlock) -> FinalizedTip {
        FinalizedTip {
            height: last.block.header.height,
            hash: last.block.hash(),
            view: last.block.header.view,
            certificate: Some(last.certificate.clone()),
        }
    }
}

/// A final block with a finalize certificate (R8). The certificate certifies this block
/// or, when the block was finalized as an ancestor, the descendant at
/// `certificate.vote.height`; the blocks between are linked by their parent hashes and
/// are output in the same step, in height order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizedBlock {
    pub block: Block,
    pub certificate: QuorumCertificate,
}

/// What the host feeds the engine.
#[derive(Clone, Debug)]
pub enum Input {
    /// First input: starts the view timer (and proposes, if leader).
    Start,
    /// A message from a peer (already decoded; bounds are re-checked).
    Message {
        from: MemberId,
        message: ConsensusMessage,
    },
    /// The timer from the last [`Output::SetTimer`] fired (early or repeated ticks are
    /// harmless).
    Tick,
    /// The application's answer to [`Output::BuildProposal`].
    ProposalBuilt { view: View, block: Block },
    /// The application's answer to [`Output::VerifyProposal`]: whether re-executing the
    /// block on its ancestors gives the header's state root (and the block is otherwise
    /// valid).
    ProposalVerified {
        view: View,
        block: Hash,
        valid: bool,
    },
    /// The record of [`Output::Persist`] with this sequence (and every earlier one) is
    /// durable.
    Persisted { sequence: u64 },
    /// A peer's answer to [`Output::Fetch`].
    Fetched {
        from: MemberId,
        response: FetchResponse,
    },
    /// A connection to `peer` came up (R13): the engine sends it its status.
    PeerConnected { peer: MemberId },
    /// The connection to `peer` went down.
    PeerDisconnected { peer: MemberId },
}

/// What the engine asks the host to do, in order.
#[derive(Clone, Debug)]
pub enum Output {
    /// Gossip to every other validator, once: best effort, and the host's gossip may
    /// drop a second publication of the same bytes, so nothing the engine re-sends
    /// goes this way (R9, R13).
    Broadcast(ConsensusMessage),
    /// Send to one validator directly (not gossip): delivered if connected, never
    /// deduplicated, so the same message may be sent again.
    Send {
        to: MemberId,
        message: ConsensusMessage,
    },
    /// Durably store `record` (replacing the previous one) and, if given, `block` (the
    /// block this validator is about to propose or notarize) and `certificate` (the one
    /// that let it enter `record.view`), then feed back [`Input::Persisted`] with
    /// `sequence`. Writes must complete in sequence order. Blocks and certificates are
    /// kept until a finalized block passes them (height, resp. view) and are handed
    /// back to [`Engine::new`] in [`Restored`] after a restart. Keeping them is what
    /// makes the protocol live again after crashes: every notarized block survives on
    /// the disk of an honest validator that voted for it, and the certificate of every
    /// view `w` survives on the disk of every honest validator that signed in view
    /// `w + 1`, so no view is left with a certificate that can no longer be formed.
    Persist {
        sequence: u64,
        record: PersistedRecord,
        block: Option<Box<Block>>,
        certificate: Option<QuorumCertificate>,
    },
    /// Feed [`Input::Tick`] at or after this time; replaces any earlier timer.
    SetTimer { deadline_ms: u64 },
    /// Build a block for `view` at `height` on `parent` and answer with
    /// [`Input::ProposalBuilt`]. `ancestors` are the unfinalized blocks from the
    /// finalized tip (exclusive) up to `parent` (inclusive), oldest first, so the
    /// application can execute them on its finalized state.
    BuildProposal {
        view: View,
        height: Height,
        parent: Hash,
        ancestors: Vec<Block>,
    },
    /// Re-execute `block` on its `ancestors` (as in [`Output::BuildProposal`]) and
    /// answer with [`Input::ProposalVerified`].
    VerifyProposal {
        view: View,
        block: Block,
        ancestors: Vec<Block>,
    },
    /// The next final block, in height order, each exactly once.
    Finalized(FinalizedBlock),
    /// Proof that a validator misbehaved; each (view, member, kind) once.
    Evidence(ConsensusEvidence),
    /// Ask some peer for blocks; answer with [`Input::Fetched`].
    Fetch(FetchRequest),
}

/// What the host kept durably from [`Output::Persist`], handed back after a restart.
#[derive(Clone, Debug, Default)]
pub struct Restored {
    /// The last durable record (`None` on a fresh node).
    pub record: Option<PersistedRecord>,
    /// Kept blocks, any order; those at or below the finalized tip are ignored.
    pub blocks: Vec<Block>,
    /// Kept certificates, any order; those at or below the tip's view are ignored and
    /// every one is verified again.
    pub certificates: Vec<QuorumCertificate>,
}

/// Whether this node can trust its own view of the chain (R13), for the host's
/// admission and status: a node that knows of a finalized height above its own, or
/// has not heard the status of enough connected validators to make a quorum with
/// itself, is syncing and must not answer from its stale state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncState {
    pub tip_height: Height,
    /// The highest finalized height this node holds a verified certificate for.
    pub best_known_height: Height,
    /// Connected validators whose status it has heard since they connected.
    pub current_peers: usize,
    pub quorum: usize,
    pub syncing: bool,
}

impl SyncState {
    /// How many finalized blocks this node is known to lack.
    pub fn behind_by(&self) -> u64 {
        self.best_known_height.0.saturating_sub(self.tip_height.0)
    }
}

/// Why an engine could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("member {member} is not a validator in genesis")]
    NotValidator { member: MemberId },
    #[error("the key given for member {member} is not its genesis key")]
    KeyMismatch { member: MemberId },
    #[error("timeouts must be positive: {timeouts:?}")]
    ZeroTimeout { timeouts: Timeouts },
    #[error("the finalized tip's certificate does not certify it: {reason}")]
    BadTipCertificate { reason: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verification {
    NotAsked,
    Asked,
    Valid,
    Invalid,
}

#[derive(Clone, Debug)]
struct ProposalSlot {
    header: BlockHeader,
    hash: Hash,
    signature: Signature,
    verification: Verification,
}

#[derive(Clone, Debug, Default)]
struct ViewVotes {
    notarize: Vec<SignedVote>,
    finalize: Vec<SignedVote>,
    nullify: Vec<SignedVote>,
}

impl ViewVotes {
    fn of(&self, kind: VoteKind) -> &Vec<SignedVote> {
        match kind {
            VoteKind::Notarize => &self.notarize,
            VoteKind::Finalize => &self.finalize,
            VoteKind::Nullify => &self.nullify,
        }
    }

    fn of_mut(&mut self, kind: VoteKind) -> &mut Vec<SignedVote> {
        match kind {
            VoteKind::Notarize => &mut self.notarize,
            VoteKind::Finalize => &mut self.finalize,
            VoteKind::Nullify => &mut self.nullify,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Wanted {
    height: Height,
    requested_ms: u64,
}

/// Why the chain from the finalized tip to a block cannot be assembled.
enum ChainGap {
    /// This block (at this height) is not held; fetch it.
    Missing(Hash, Height),
    /// The block does not descend from the finalized tip.
    Conflict,
}

/// One validator's consensus state. See the crate docs for the protocol.
#[derive(Debug)]
pub struct Engine {
    genesis: Genesis,
    member: MemberId,
    keypair: Keypair,
    timeouts: Timeouts,
    bugs: BugInjection,
    validators: Vec<MemberId>,
    quorum: usize,
    started: bool,
    now_ms: u64,
    tip: FinalizedTip,
    view: View,
    view_deadline_ms: u64,
    timed_out: bool,
    retry_deadline_ms: u64,
    timer_set_ms: Option<u64>,
    record: PersistedRecord,
    next_sequence: u64,
    unreleased: VecDeque<(u64, Vec<ConsensusMessage>)>,
    blocks: BTreeMap<Hash, Block>,
    proposals: BTreeMap<View, ProposalSlot>,
    votes: BTreeMap<View, ViewVotes>,
    notarizations: BTreeMap<View, QuorumCertificate>,
    nullifications: BTreeMap<View, QuorumCertificate>,
    finalizations: BTreeMap<View, QuorumCertificate>,
    certified: BTreeMap<Hash, (View, Height)>,
    building: Option<(View, Hash, Height)>,
    restored_certificates: Vec<QuorumCertificate>,
    wanted: BTreeMap<Hash, Wanted>,
    reported: BTreeSet<(View, MemberId, EvidenceKind)>,
    /// When each peer was last sent this node's status as help (R9, R13): at most
    /// once per `retry_ms` for the same view.
    helped: BTreeMap<MemberId, (View, u64)>,
    /// Validators with a connection, as the host reports them.
    connected: BTreeSet<MemberId>,
    /// Connected validators whose status arrived since they connected.
    heard: BTreeSet<MemberId>,
    /// The highest height a verified finalization names.
    best_known_height: Height,
    released_nullify: Option<SignedVote>,
    out: Vec<Output>,
}

impl Engine {
    /// Builds an engine for `config.member` from the host's finalized tip and what it
    /// kept from [`Output::Persist`] ([`Restored::default`] on a fresh node). The engine
    /// starts in view max(record view, tip view + 1), moves on at [`Input::Start`] past
    /// any kept certificate, and refuses to sign anything that conflicts with the
    /// record (R10). Feed [`Input::Start`] next.
    pub fn new(
        config: Config,
        tip: FinalizedTip,
        restored: Restored,
    ) -> Result<Engine, EngineError> {
        let Config {
            genesis,
            member,
            keypair,
            timeouts,
            bug_injection,
        } = config;
        let key = match genesis.member(member) {
            Some(found) if found.validator => found.public_key,
            _ => return Err(EngineError::NotValidator { member }),
        };
        if key != keypair.public_key() {
            return Err(EngineError::KeyMismatch { member });
        }
        if timeouts.view_timeout_ms == 0 || timeouts.retry_ms == 0 || timeouts.fetch_retry_ms == 0 {
            return Err(EngineError::ZeroTimeout { timeouts });
        }
        if let Some(certificate) = &tip.certificate {
            verify_certificate(&genesis, certificate).map_err(|error| {
                EngineError::BadTipCertificate {
                    reason: error.to_string(),
                }
            })?;
            let vote = &certificate.vote;
            if vote.kind != VoteKind::Finalize
                || vote.block != tip.hash
                || vote.height != tip.height
                || vote.view != tip.view
            {
                return Err(EngineError::BadTipCertificate {
                    reason: format!("it certifies {vote:?}"),
                });
            }
        }
        let Restored {
            record,
            blocks: kept_blocks,
            certificates: kept_certificates,
        } = restored;
        let record = record.unwrap_or_default();
        let view = record.view.max(tip.view.next());
        let tip_height = tip.height;
        let validators = genesis.validators();
        let quorum = genesis.quorum as usize;
        assert!(quorum >= 1 && quorum <= validators.len());
        assert!(2 * quorum > validators.len(), "genesis quorum is unsafe");
        let blocks: BTreeMap<Hash, Block> = kept_blocks
            .into_iter()
            .filter(|block| {
                block.header.height > tip.height && block.header.chain_id == genesis.chain_id
            })
            .take(MAX_UNFINALIZED_BLOCKS)
            .map(|block| (block.hash(), block))
            .collect();
        Ok(Engine {
            genesis,
            member,
            keypair,
            timeouts,
            bugs: bug_injection,
            validators,
            quorum,
            started: false,
            now_ms: 0,
            tip,
            view,
            view_deadline_ms: 0,
            timed_out: false,
            retry_deadline_ms: 0,
            timer_set_ms: None,
            record,
            next_sequence: 1,
            unreleased: VecDeque::new(),
            blocks,
            proposals: BTreeMap::new(),
            votes: BTreeMap::new(),
            notarizations: BTreeMap::new(),
            nullifications: BTreeMap::new(),
            finalizations: BTreeMap::new(),
            certified: BTreeMap::new(),
            building: None,
            restored_certificates: kept_certificates
                .into_iter()
                .take(MAX_JUSTIFICATION_CERTIFICATES)
                .collect(),
            wanted: BTreeMap::new(),
            reported: BTreeSet::new(),
            helped: BTreeMap::new(),
            connected: BTreeSet::new(),
            heard: BTreeSet::new(),
            best_known_height: tip_height,
            released_nullify: None,
            out: Vec::new(),
        })
    }

    /// Feeds one input at host time `now_ms` and returns what to do, in order.
    pub fn step(&mut self, now_ms: u64, input: Input) -> Vec<Output> {
        assert!(self.out.is_empty());
        self.now_ms = self.now_ms.max(now_ms);
        let tip_before = self.tip.height;
        let fetched = matches!(input, Input::Fetched { .. });
        match input {
            Input::Start => self.on_start(),
            _ if !self.started => {}
            Input::Message { from, message } => self.on_message(from, message),
            Input::Tick => self.on_tick(),
            Input::ProposalBuilt { view, block } => self.on_built(view, block),
            Input::ProposalVerified { view, block, valid } => self.on_verified(view, block, valid),
            Input::Persisted { sequence } => self.on_persisted(sequence),
            Input::Fetched { from, response } => self.on_fetched(from, response),
            Input::PeerConnected { peer } => self.on_peer_connected(peer),
            Input::PeerDisconnected { peer } => {
                self.connected.remove(&peer);
                self.heard.remove(&peer);
            }
        }
        if self.started {
            self.progress();
            if fetched && self.tip.height > tip_before {
                self.fetch_next_runs();
            }
            self.update_timer();
        }
        assert!(self.view > self.tip.view);
        assert!(self.record.view <= self.view);
        std::mem::take(&mut self.out)
    }

    /// The current view.
    pub fn view(&self) -> View {
        self.view
    }

    /// Whether this node is behind or cannot tell (R13).
    pub fn sync_state(&self) -> SyncState {
        let current_peers = self.heard.intersection(&self.connected).count();
        let best_known_height = self.best_known_height.max(self.tip.height);
        SyncState {
            tip_height: self.tip.height,
            best_known_height,
            current_peers,
            quorum: self.quorum,
            syncing: best_known_height > self.tip.height || current_peers + 1 < self.quorum,
        }
    }

    /// Whether the view timer of the current view has fired (the view is being
    /// nullified).
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// The highest finalized block this engine knows to be output.
    pub fn finalized_tip(&self) -> &FinalizedTip {
        &self.tip
    }

    /// The latest signing record (possibly not yet durable).
    pub fn record(&self) -> &PersistedRecord {
        &self.record
    }

    pub fn member(&self) -> MemberId {
        self.member
    }

    /// The leader of `view` (R1).
    pub fn leader(&self, view: View) -> MemberId {
        leader_of(&self.validators, view)
    }

    /// An unfinalized block held in memory (for answering fetches).
    pub fn known_block(&self, hash: &Hash) -> Option<&Block> {
        self.blocks.get(hash)
    }

    /// The best certificate held for `block`: its finalization, else its notarization.
    pub fn certificate_for(&self, block: &Hash) -> Option<&QuorumCertificate> {
        if self.tip.hash == *block {
            if let Some(certificate) = &self.tip.certificate {
                return Some(certificate);
            }
        }
        let (view, _) = self.certified.get(block)?;
        self.finalizations
            .get(view)
            .filter(|certificate| certificate.vote.block == *block)
            .or_else(|| {
                self.notarizations
                    .get(view)
                    .filter(|certificate| certificate.vote.block == *block)
            })
    }

    /// A one-line summary of the engine's state, for logs and failure reports.
    pub fn describe(&self) -> String {
        let recent = |map: &BTreeMap<View, QuorumCertificate>| -> Vec<u64> {
            map.keys().rev().take(6).map(|view| view.0).collect()
        };
        format!(
            "member {} view {} timed_out {} tip h{}/v{} record {:?} notarizations {:?} nullifications {:?} finalizations {:?} proposals {:?} blocks {} wanted {:?} unreleased {} building {:?}",
            self.member,
            self.view,
            self.timed_out,
            self.tip.height,
            self.tip.view,
            self.record,
            recent(&self.notarizations),
            recent(&self.nullifications),
            recent(&self.finalizations),
            self.proposals
                .iter()
                .rev()
                .take(4)
                .map(|(view, slot)| (view.0, slot.header.height.0, slot.verification))
                .collect::<Vec<_>>(),
            self.blocks.len(),
            self.wanted.values().map(|wanted| wanted.height.0).collect::<Vec<_>>(),
            self.unreleased.len(),
            self.building,
        )
    }

    fn chain_id(&self) -> &ChainId {
        &self.genesis.chain_id
    }

    fn on_start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        self.view_deadline_ms = self.now_ms.saturating_add(self.timeouts.view_timeout_ms);
        // Kept certificates are checked like a peer's (a disk can be corrupted) and
        // forwarded, since the other validators may have lost them.
        let own = self.member;
        for certificate in std::mem::take(&mut self.restored_certificates) {
            self.on_certificate(own, certificate);
        }
    }

    // ----- R2: entering views -------------------------------------------------------

    fn enter_view(&mut self, view: View) {
        assert!(view > self.view);
        self.view = view;
        self.timed_out = false;
        self.view_deadline_ms = self.now_ms.saturating_add(self.timeouts.view_timeout_ms);
        self.released_nullify = None;
        self.prune();
        assert!(self.view > self.tip.view);
    }

    fn prune(&mut self) {
        let low = View(
            self.tip
                .view
                .0
                .saturating_add(1)
                .max(self.view.0.saturating_sub(MAX_RETAINED_VIEWS)),
        );
        self.proposals = self.proposals.split_off(&low);
        self.votes = self.votes.split_off(&low);
        self.notarizations = self.notarizations.split_off(&low);
        self.nullifications = self.nullifications.split_off(&low);
        let tip_height = self.tip.height;
        let mut finalizations = self.finalizations.split_off(&low);
        // Catch-up finalizations below the window stay until their block is final.
        finalizations.extend(
            std::mem::take(&mut self.finalizations)
                .into_iter()
                .filter(|(_, certificate)| certificate.vote.height > tip_height),
        );
        self.finalizations = finalizations;
        let catch_up: BTreeSet<Hash> = self
            .finalizations
            .range(..low)
            .map(|(_, certificate)| certificate.vote.block)
            .collect();
        self.certified
            .retain(|hash, (view, _)| *view >= low || catch_up.contains(hash));
        self.reported.retain(|(view, _, _)| *view >= low);
        self.blocks
            .retain(|_, block| block.header.height > tip_height);
        self.wanted.retain(|_, wanted| wanted.height > tip_height);
    }

    // ----- messages -----------------------------------------------------------------

    fn on_message(&mut self, from: MemberId, message: ConsensusMessage) {
        if !self.genesis.is_validator(from) || message.check_bounds().is_err() {
            return;
        }
        match message {
            ConsensusMessage::Proposal(proposal) => self.on_proposal(from, *proposal),
            ConsensusMessage::Vote(vote) => self.on_vote(from, vote),
            ConsensusMessage::Certificate(certificate) => self.on_certificate(from, certificate),
            ConsensusMessage::Status(status) => self.on_status(from, *status),
        }
    }

    /// R13: a new connection gets this node's status at once, and a peer that had
    /// been helped before it went away may be helped again.
    fn on_peer_connected(&mut self, peer: MemberId) {
        if peer == self.member || !self.genesis.is_validator(peer) {
            return;
        }
        self.connected.insert(peer);
        self.heard.remove(&peer);
        self.helped.remove(&peer);
        self.send_status(peer);
    }

    /// R13: take what a peer's status carries like any certificate and vote, then
    /// help the peer if it is behind (which it learns from this node's answer).
    fn on_status(&mut self, from: MemberId, status: PeerStatus) {
        if from == self.member {
            return;
        }
        if self.connected.contains(&from) {
            self.heard.insert(from);
        }
        let PeerStatus {
            view,
            tip_height,
            certificates,
            nullify,
        } = status;
        for certificate in certificates
            .into_iter()
            .take(MAX_JUSTIFICATION_CERTIFICATES)
        {
            self.on_certificate(from, certificate);
        }
        if let Some(vote) = nullify {
            if vote.member == from && vote.vote.kind == VoteKind::Nullify {
                self.on_vote(from, vote);
            }
        }
        if view < self.view || tip_height < self.tip.height {
            self.help_now(from);
        }
    }

    /// This node's status (R13).
    fn status(&self) -> PeerStatus {
        let nullify = self
            .released_nullify
            .clone()
            .filter(|vote| vote.vote.view == self.view);
        PeerStatus {
            view: self.view,
            tip_height: self.tip.height,
            certificates: self.status_certificates(),
            nullify,
        }
    }

    fn send_status(&mut self, peer: MemberId) {
        let status = self.status();
        self.out.push(Output::Send {
            to: peer,
            message: ConsensusMessage::Status(Box::new(status)),
        });
    }

    /// R9, R13: a peer that speaks about an older view is sent, directly, this node's
    /// status with the certificates that got it to its view.
    fn help(&mut self, peer: MemberId, their_view: View) {
        if their_view >= self.view {
            return;
        }
        self.help_now(peer);
    }

    /// Sends `peer` this node's status, at most once per `retry_ms` for one view: the
    /// direct send may be lost with a connection, so the same help is given again
    /// after a while, but a chatty peer does not get it on every message.
    fn help_now(&mut self, peer: MemberId) {
        if peer == self.member {
            return;
        }
        if let Some((view, at_ms)) = self.helped.get(&peer) {
            if *view == self.view && self.now_ms < at_ms.saturating_add(self.timeouts.retry_ms) {
                return;
            }
        }
        self.helped.insert(peer, (self.view, self.now_ms));
        self.send_status(peer);
    }

    /// The certificates that justify this node's view: the finalized tip's, then every
    /// certificate held for the views above the tip, newest first (bounded). After
    /// crashes the certificates of a run of views may be spread over several
    /// validators' disks; sending all of them is what reassembles the run.
    fn status_certificates(&self) -> Vec<QuorumCertificate> {
        let mut certificates = Vec::new();
        if let Some(certificate) = &self.tip.certificate {
            certificates.push(certificate.clone());
        }
        let mut view = self.view.0.saturating_sub(1);
        while view > self.tip.view.0 && certificates.len() < MAX_JUSTIFICATION_CERTIFICATES {
            let at = View(view);
            for map in [
                &self.finalizations,
                &self.notarizations,
                &self.nullifications,
            ] {
                if let Some(certificate) = map.get(&at) {
                    certificates.push(certificate.clone());
                }
            }
            view -= 1;
        }
        certificates.truncate(MAX_JUSTIFICATION_CERTIFICATES);
        certificates
    }

    /// The certificate that let this node enter `view` (for `view - 1`), unless that is
    /// the finalized tip's, which the host holds with the block.
    fn entry_certificate(&self, view: View) -> Option<QuorumCertificate> {
        let previous = View(view.0.checked_sub(1)?);
        if previous <= self.tip.view {
            return None;
        }
        [
            &self.finalizations,
            &self.notarizations,
            &self.nullifications,
        ]
        .into_iter()
        .find_map(|map| map.get(&previous).cloned())
    }

    fn on_proposal(&mut self, from: MemberId, proposal: Proposal) {
        let header = proposal.block.header.clone();
        let view = header.view;
        if header.chain_id != *self.chain_id() {
            return;
        }
        if view <= self.tip.view || header.height <= self.tip.height {
            self.help(from, view);
            return;
        }
        if view.0 > self.view.0.saturating_add(MAX_VIEWS_AHEAD)
            || view.0.saturating_add(MAX_RETAINED_VIEWS) < self.view.0
        {
            return;
        }
        let leader = self.leader(view);
        if header.proposer != leader {
            return;
        }
        let hash = proposal.block.hash();
        let Some(leader_key) = self.genesis.member(leader).map(|member| member.public_key) else {
            return;
        };
        if let Some(slot) = self.proposals.get(&view) {
            if slot.hash == hash {
                return;
            }
            let digest = proposal_digest(self.chain_id(), view, &hash);
            if verify_digest(&leader_key, &digest, &proposal.signature).is_ok() {
                let first = crate::message::SignedProposalHeader {
                    header: slot.header.clone(),
                    signature: slot.signature,
                };
                self.report(ConsensusEvidence::ConflictingProposals {
                    first,
                    second: proposal.signed_header(),
                });
            }
            return;
        }
        let digest = proposal_digest(self.chain_id(), view, &hash);
        if verify_digest(&leader_key, &digest, &proposal.signature).is_err() {
            return;
        }
        for certificate in proposal.justification {
            self.on_certificate(from, certificate);
        }
        // A block whose body does not match its header is never voted for, but the
        // signed header still counts for equivocation evidence.
        let verification = if proposal.block.txs_root_matches() {
            Verification::NotAsked
        } else {
            Verification::Invalid
        };
        self.proposals.insert(
            view,
            ProposalSlot {
                header,
                hash,
                signature: proposal.signature,
                verification,
            },
        );
        if verification == Verification::NotAsked {
            self.hold_block(proposal.block);
        }
        self.help(from, view);
    }

    fn hold_block(&mut self, block: Block) {
        if block.header.height <= self.tip.height || self.blocks.len() >= MAX_UNFINALIZED_BLOCKS {
            return;
        }
        let hash = block.hash();
        self.wanted.remove(&hash);
        self.blocks.entry(hash).or_insert(block);
    }

    fn on_vote(&mut self, from: MemberId, signed: SignedVote) {
        let vote = &signed.vote;
        if vote.chain_id != *self.chain_id() || !self.genesis.is_validator(signed.member) {
            return;
        }
        let view = vote.view;
        if view <= self.tip.view {
            self.help(from, view);
            return;
        }
        if view.0 > self.view.0.saturating_add(MAX_VIEWS_AHEAD)
            || view.0.saturating_add(MAX_RETAINED_VIEWS) < self.view.0
        {
            return;
        }
        let well_formed = match vote.kind {
            VoteKind::Nullify => vote.block == Hash::ZERO && vote.height == Height(0),
            VoteKind::Notarize | VoteKind::Finalize => {
                vote.block != Hash::ZERO && vote.height > self.tip.height
            }
        };
        if !well_formed {
            return;
        }
        self.help(from, view);
        let duplicate = self
            .votes
            .get(&view)
            .is_some_and(|votes| votes.of(vote.kind).contains(&signed));
        if duplicate && !self.bugs.count_duplicate_votes {
            return;
        }
        if verify_vote(&self.genesis, &signed).is_err() {
            return;
        }
        self.record_vote(signed);
    }

    /// Adds a verified vote (a peer's, or this node's own once released), reports
    /// evidence (R11) and forms certificates (R5, R7, R8).
    fn record_vote(&mut self, signed: SignedVote) {
        let view = signed.vote.view;
        let kind = signed.vote.kind;
        let member = signed.member;
        let votes = self.votes.entry(view).or_default();
        let previous = votes
            .of(kind)
            .iter()
            .find(|held| held.member == member)
            .cloned();
        let opposite = match kind {
            VoteKind::Finalize => votes.nullify.iter().find(|held| held.member == member),
            VoteKind::Nullify => votes.finalize.iter().find(|held| held.member == member),
            VoteKind::Notarize => None,
        }
        .cloned();
        match previous {
            Some(previous) if previous.vote.block != signed.vote.block => {
                self.report(ConsensusEvidence::ConflictingVotes(Evidence {
                    first: previous,
                    second: signed,
                }));
                return;
            }
            Some(_) if !self.bugs.count_duplicate_votes => return,
            _ => {}
        }
        let list = self.votes.entry(view).or_default().of_mut(kind);
        if list.len() >= MAX_VOTES_PER_KIND {
            return;
        }
        list.push(signed.clone());
        if let Some(opposite) = opposite {
            let (finalize, nullify) = if kind == VoteKind::Finalize {
                (signed.clone(), opposite)
            } else {
                (opposite, signed.clone())
            };
            self.report(ConsensusEvidence::FinalizeAndNullify { finalize, nullify });
        }
        self.tally(&signed.vote);
    }

    fn tally(&mut self, vote: &Vote) {
        let view = vote.view;
        let have = match vote.kind {
            VoteKind::Notarize => self.notarizations.contains_key(&view),
            VoteKind::Nullify => self.nullifications.contains_key(&view),
            VoteKind::Finalize => self.finalizations.contains_key(&view),
        };
        if have || (vote.kind == VoteKind::Finalize && vote.height <= self.tip.height) {
            return;
        }
        let Some(votes) = self.votes.get(&view) else {
            return;
        };
        let matching: Vec<SignedVote> = votes
            .of(vote.kind)
            .iter()
            .filter(|held| held.vote == *vote)
            .cloned()
            .collect();
        let count = if self.bugs.count_duplicate_votes {
            matching.len()
        } else {
            matching
                .iter()
                .map(|held| held.member)
                .collect::<BTreeSet<_>>()
                .len()
        };
        if count < self.quorum {
            return;
        }
        let certificate = assemble_certificate(vote.clone(), &matching);
        if !self.bugs.count_duplicate_votes {
            assert!(certificate.signatures.len() >= self.quorum);
        }
        self.apply_certificate(certificate);
    }

    fn report(&mut self, evidence: ConsensusEvidence) {
        let key = (evidence.view(), evidence.member(), evidence.kind());
        if self.reported.insert(key) {
            self.out.push(Output::Evidence(evidence));
        }
    }

    fn on_certificate(&mut self, from: MemberId, certificate: QuorumCertificate) {
        if check_certificate_bounds(&certificate).is_err() {
            return;
        }
        let vote = &certificate.vote;
        if vote.chain_id != *self.chain_id() {
            return;
        }
        let view = vote.view;
        let well_formed = match vote.kind {
            VoteKind::Nullify => vote.block == Hash::ZERO && vote.height == Height(0),
            VoteKind::Notarize | VoteKind::Finalize => {
                vote.block != Hash::ZERO && vote.height > Height(0)
            }
        };
        if !well_formed {
            return;
        }
        if view <= self.tip.view
            || (vote.kind != VoteKind::Nullify && vote.height <= self.tip.height)
        {
            self.help(from, view);
            return;
        }
        if view.0.saturating_add(MAX_RETAINED_VIEWS) < self.view.0 {
            self.keep_catch_up_finalization(certificate);
            return;
        }
        let held = match vote.kind {
            VoteKind::Notarize => self.notarizations.get(&view),
            VoteKind::Nullify => self.nullifications.get(&view),
            VoteKind::Finalize => self.finalizations.get(&view),
        };
        if held.is_some() {
            self.help(from, view);
            return;
        }
        if verify_certificate(&self.genesis, &certificate).is_err() {
            return;
        }
        self.help(from, view);
        self.apply_certificate(certificate);
    }

    /// R12 over a long gap: a node that is more than [`MAX_RETAINED_VIEWS`] views behind
    /// (a wiped node rejoining a long chain enters the live view at once) still needs
    /// the finalizations of the blocks right above its tip, which fetched runs carry:
    /// nothing else vouches for those blocks. Such a finalization (of a height above the
    /// tip) is kept, at most [`MAX_FETCH_CERTIFICATES`] at a time, until its block is
    /// final; it is not forwarded and moves no view.
    fn keep_catch_up_finalization(&mut self, certificate: QuorumCertificate) {
        let vote = &certificate.vote;
        assert!(vote.height > self.tip.height);
        let window_low = View(self.view.0.saturating_sub(MAX_RETAINED_VIEWS));
        let kept = self.finalizations.range(..window_low).count();
        if vote.kind != VoteKind::Finalize
            || kept >= MAX_FETCH_CERTIFICATES
            || self.finalizations.contains_key(&vote.view)
            || verify_certificate(&self.genesis, &certificate).is_err()
        {
            return;
        }
        self.certified
            .entry(vote.block)
            .or_insert((vote.view, vote.height));
        self.best_known_height = self.best_known_height.max(vote.height);
        self.finalizations.insert(vote.view, certificate);
    }

    /// A new, checked certificate (formed here or verified from a peer).
    fn apply_certificate(&mut self, certificate: QuorumCertificate) {
        let vote = certificate.vote.clone();
        let view = vote.view;
        assert!(view > self.tip.view);
        let map = match vote.kind {
            VoteKind::Notarize => &mut self.notarizations,
            VoteKind::Nullify => &mut self.nullifications,
            VoteKind::Finalize => &mut self.finalizations,
        };
        if map.contains_key(&view) {
            return;
        }
        map.insert(view, certificate.clone());
        if vote.kind == VoteKind::Finalize {
            self.best_known_height = self.best_known_height.max(vote.height);
        }
        if vote.kind != VoteKind::Nullify {
            self.certified
                .entry(vote.block)
                .or_insert((view, vote.height));
        }
        // R9: forward every new certificate once, so lagging validators advance.
        self.out
            .push(Output::Broadcast(ConsensusMessage::Certificate(
                certificate,
            )));
        if vote.kind == VoteKind::Notarize {
            // R5: finalize what this node notarized, unless its timer fired (nullify).
            self.sign_finalize(view, vote.height, vote.block);
        }
        if view >= self.view {
            // R2: any certificate for view v lets the node enter v + 1.
            self.enter_view(view.next());
        }
    }

    // ----- R3: proposing --------------------------------------------------------------

    /// The parent a proposal in `view` must extend (R3): the highest view below with a
    /// notarization or finalization (or the finalized tip), with every view between
    /// nullified. `None` if a view between has neither certificate here.
    fn parent_for(&self, view: View) -> Option<(Hash, Height, View)> {
        let mut candidate = view.0.checked_sub(1)?;
        let mut skipped = 0;
        loop {
            if candidate <= self.tip.view.0 {
                return Some((self.tip.hash, self.tip.height, self.tip.view));
            }
            let at = View(candidate);
            let certified = self
                .finalizations
                .get(&at)
                .or_else(|| self.notarizations.get(&at));
            if let Some(certificate) = certified {
                return Some((certificate.vote.block, certificate.vote.height, at));
            }
            if !self.nullifications.contains_key(&at) {
                return None;
            }
            skipped += 1;
            if skipped >= MAX_JUSTIFICATION_CERTIFICATES {
                return None;
            }
            candidate -= 1;
        }
    }

    /// The certificates a proposal in `view` on a parent of `parent_view` carries.
    fn justification(&self, parent_view: View, parent: Hash, view: View) -> Vec<QuorumCertificate> {
        let mut certificates = Vec::new();
        if let Some(certificate) = self.certificate_for(&parent) {
            certificates.push(certificate.clone());
        }
        for skipped in parent_view.0 + 1..view.0 {
            if let Some(certificate) = self.nullifications.get(&View(skipped)) {
                certificates.push(certificate.clone());
            }
        }
        certificates.truncate(MAX_JUSTIFICATION_CERTIFICATES);
        certificates
    }

    /// The unfinalized chain from the tip (exclusive) to `hash` (inclusive), oldest first.
    fn chain_to(&self, hash: Hash, height: Height) -> Result<Vec<Block>, ChainGap> {
        let mut chain = Vec::new();
        let (mut hash, mut height) = (hash, height);
        loop {
            if height == self.tip.height {
                if hash == self.tip.hash {
                    break;
                }
                return Err(ChainGap::Conflict);
            }
            if height < self.tip.height {
                return Err(ChainGap::Conflict);
            }
            let Some(block) = self.blocks.get(&hash) else {
                return Err(ChainGap::Missing(hash, height));
            };
            if block.header.height != height {
                return Err(ChainGap::Conflict);
            }
            chain.push(block.clone());
            hash = block.header.parent;
            height = Height(height.0 - 1);
        }
        chain.reverse();
        Ok(chain)
    }

    fn try_propose(&mut self) {
        let view = self.view;
        if self.leader(view) != self.member || self.timed_out {
            return;
        }
        if self
            .building
            .is_some_and(|(building, _, _)| building == view)
        {
            return;
        }
        if self.record.view == view && self.record.proposed.is_some() {
            return;
        }
        let Some((parent, parent_height, _)) = self.parent_for(view) else {
            return;
        };
        let ancestors = match self.chain_to(parent, parent_height) {
            Ok(ancestors) => ancestors,
            Err(ChainGap::Missing(hash, height)) => {
                self.want(hash, height);
                return;
            }
            Err(ChainGap::Conflict) => return,
        };
        let height = parent_height.next();
        if self.record.view == view && (self.record.nullified || self.record.notarized.is_some()) {
            return;
        }
        self.building = Some((view, parent, height));
        self.out.push(Output::BuildProposal {
            view,
            height,
            parent,
            ancestors,
        });
    }

    fn on_built(&mut self, view: View, block: Block) {
        let Some((building, parent, height)) = self.building else {
            return;
        };
        let header = &block.header;
        let expected = building == view
            && view == self.view
            && !self.timed_out
            && header.view == view
            && header.height == height
            && header.parent == parent
            && header.proposer == self.member
            && header.chain_id == *self.chain_id()
            && block.txs_root_matches();
        if !expected || self.unreleased.len() >= MAX_UNRELEASED {
            return;
        }
        let hash = block.hash();
        let record = &self.record;
        if !record.permits(view, Signing::Proposal(hash))
            || !record.permits(view, Signing::Notarize(hash))
        {
            return;
        }
        let Some((_, _, parent_view)) = self.parent_for(view) else {
            return;
        };
        let record = record
            .with(view, Signing::Proposal(hash))
            .with(view, Signing::Notarize(hash));
        let signature = self
            .keypair
            .sign_digest(&proposal_digest(self.chain_id(), view, &hash));
        let vote = self.signed_vote(view, height, hash, VoteKind::Notarize);
        let justification = self.justification(parent_view, parent, view);
        self.proposals.insert(
            view,
            ProposalSlot {
                header: block.header.clone(),
                hash,
                signature,
                verification: Verification::Valid,
            },
        );
        self.hold_block(block.clone());
        let proposal = Proposal {
            block,
            signature,
            justification,
        };
        let kept = Some(Box::new(proposal.block.clone()));
        self.persist_then_release(
            record,
            kept,
            vec![
                ConsensusMessage::Proposal(Box::new(proposal)),
                ConsensusMessage::Vote(vote),
            ],
        );
    }

    // ----- R4: notarizing -------------------------------------------------------------

    /// Whether `header`'s parent is justified for a proposal in `view` (R3, R4), and
    /// if so the parent's (hash, height).
    fn justified_parent(&self, header: &BlockHeader) -> Option<(Hash, Height)> {
        let view = header.view;
        let parent = header.parent;
        let (parent_view, parent_height) = if parent == self.tip.hash {
            (self.tip.view, self.tip.height)
        } else {
            *self.certified.get(&parent)?
        };
        if parent_view >= view || header.height != parent_height.next() {
            return None;
        }
        let all_skipped_nullified = (parent_view.0 + 1..view.0)
            .all(|skipped| self.nullifications.contains_key(&View(skipped)));
        all_skipped_nullified.then_some((parent, parent_height))
    }

    fn try_notarize(&mut self) {
        let view = self.view;
        if self.timed_out {
            return;
        }
        let Some(slot) = self.proposals.get(&view) else {
            return;
        };
        let hash = slot.hash;
        if self.record.view == view && self.record.notarized == Some(hash) {
            return;
        }
        if !self.record.permits(view, Signing::Notarize(hash)) {
            return;
        }
        match slot.verification {
            Verification::Invalid | Verification::Asked => {}
            Verification::Valid => {
                if self.unreleased.len() >= MAX_UNRELEASED {
                    return;
                }
                let height = slot.header.height;
                let Some(block) = self.blocks.get(&hash).cloned() else {
                    return;
                };
                let record = self.record.with(view, Signing::Notarize(hash));
                let vote = self.signed_vote(view, height, hash, VoteKind::Notarize);
                self.persist_then_release(
                    record,
                    Some(Box::new(block)),
                    vec![ConsensusMessage::Vote(vote)],
                );
            }
            Verification::NotAsked => {
                let header = slot.header.clone();
                let Some((parent, parent_height)) = self.justified_parent(&header) else {
                    return;
                };
                let ancestors = match self.chain_to(parent, parent_height) {
                    Ok(ancestors) => ancestors,
                    Err(ChainGap::Missing(missing, height)) => {
                        self.want(missing, height);
                        return;
                    }
                    Err(ChainGap::Conflict) => return,
                };
                let Some(block) = self.blocks.get(&hash).cloned() else {
                    return;
                };
                if let Some(slot) = self.proposals.get_mut(&view) {
                    slot.verification = Verification::Asked;
                }
                self.out.push(Output::VerifyProposal {
                    view,
                    block,
                    ancestors,
                });
            }
        }
    }

    fn on_verified(&mut self, view: View, block: Hash, valid: bool) {
        if let Some(slot) = self.proposals.get_mut(&view) {
            if slot.hash == block && slot.verification == Verification::Asked {
                slot.verification = if valid {
                    Verification::Valid
                } else {
                    Verification::Invalid
                };
            }
        }
    }

    // ----- R5, R6: finalize and nullify votes ------------------------------------------

    fn sign_finalize(&mut self, view: View, height: Height, block: Hash) {
        let record = &self.record;
        if record.view != view
            || record.finalized.is_some()
            || !record.permits(view, Signing::Finalize(block))
            || self.unreleased.len() >= MAX_UNRELEASED
        {
            return;
        }
        let record = record.with(view, Signing::Finalize(block));
        let vote = self.signed_vote(view, height, block, VoteKind::Finalize);
        // R10: a node that signed finalize(v) may never nullify v, so view v can end
        // only through v's notarization: keep it durably before the vote leaves, or a
        // crash of every validator could leave v with finalize signers who cannot
        // nullify, nullifiers who cannot finalize, and no notarization anywhere.
        let notarization = self.notarizations.get(&view).cloned();
        assert!(
            notarization.is_some(),
            "finalize is signed only upon a notarization"
        );
        self.persist_with_certificate_then_release(
            record,
            None,
            notarization,
            vec![ConsensusMessage::Vote(vote)],
        );
    }

    fn on_tick(&mut self) {
        // The host's timer is spent; a new SetTimer is due even for the same deadline.
        self.timer_set_ms = None;
        let now = self.now_ms;
        if !self.timed_out && now >= self.view_deadline_ms {
            self.timed_out = true;
            self.retry_deadline_ms = now.saturating_add(self.timeouts.retry_ms);
            let view = self.view;
            // Re-signing a nullify already recorded (after a restart) is allowed: it
            // is the same deterministic signature, and peers may never have seen it.
            if self.record.permits(view, Signing::Nullify) && self.unreleased.len() < MAX_UNRELEASED
            {
                let record = self.record.with(view, Signing::Nullify);
                let vote = self.signed_vote(view, Height(0), Hash::ZERO, VoteKind::Nullify);
                self.persist_then_release(record, None, vec![ConsensusMessage::Vote(vote)]);
            }
        } else if self.timed_out && now >= self.retry_deadline_ms {
            self.retry_deadline_ms = now.saturating_add(self.timeouts.retry_ms);
            self.rebroadcast();
        }
        let stale: Vec<(Hash, Height)> = self
            .wanted
            .iter()
            .filter(|(_, wanted)| {
                now >= wanted
                    .requested_ms
                    .saturating_add(self.timeouts.fetch_retry_ms)
            })
            .map(|(hash, wanted)| (*hash, wanted.height))
            .collect();
        for (hash, height) in stale {
            self.request(hash, height);
        }
    }

    /// R9, R13: after a timeout, send every other validator, directly, this node's
    /// status: its nullify and the certificates that justify its view (gossip may
    /// have dropped them, and would drop a second publication of the same bytes).
    /// A peer that is ahead answers with its own status, so this is also how a
    /// stuck node asks for what it lacks.
    fn rebroadcast(&mut self) {
        let status = self.status();
        let peers: Vec<MemberId> = self
            .validators
            .iter()
            .copied()
            .filter(|validator| *validator != self.member)
            .collect();
        for peer in peers {
            self.helped.insert(peer, (self.view, self.now_ms));
            self.out.push(Output::Send {
                to: peer,
                message: ConsensusMessage::Status(Box::new(status.clone())),
            });
        }
    }

    fn signed_vote(&self, view: View, height: Height, block: Hash, kind: VoteKind) -> SignedVote {
        let vote = Vote {
            chain_id: self.chain_id().clone(),
            view,
            height,
            block,
            kind,
        };
        sign_vote(&self.keypair, self.member, vote)
    }

    // ----- R10: persist before release -------------------------------------------------

    fn persist_then_release(
        &mut self,
        record: PersistedRecord,
        block: Option<Box<Block>>,
        messages: Vec<ConsensusMessage>,
    ) {
        let certificate = if record.view > self.record.view {
            self.entry_certificate(record.view)
        } else {
            None
        };
        self.persist_with_certificate_then_release(record, block, certificate, messages);
    }

    fn persist_with_certificate_then_release(
        &mut self,
        record: PersistedRecord,
        block: Option<Box<Block>>,
        certificate: Option<QuorumCertificate>,
        messages: Vec<ConsensusMessage>,
    ) {
        assert!(record.view >= self.record.view);
        assert!(!messages.is_empty());
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.record = record.clone();
        self.out.push(Output::Persist {
            sequence,
            record,
            block,
            certificate,
        });
        if self.bugs.release_before_persist {
            self.release(messages);
        } else {
            self.unreleased.push_back((sequence, messages));
        }
    }

    fn on_persisted(&mut self, sequence: u64) {
        if sequence >= self.next_sequence {
            return;
        }
        while self
            .unreleased
            .front()
            .is_some_and(|(pending, _)| *pending <= sequence)
        {
            let (_, messages) = self.unreleased.pop_front().expect("front exists");
            self.release(messages);
        }
    }

    fn release(&mut self, messages: Vec<ConsensusMessage>) {
        for message in messages {
            if let ConsensusMessage::Vote(vote) = &message {
                assert_eq!(vote.member, self.member);
                if vote.vote.kind == VoteKind::Nullify && vote.vote.view == self.view {
                    self.released_nullify = Some(vote.clone());
                }
            }
            self.out.push(Output::Broadcast(message.clone()));
            // This node's own vote counts only once it has left the node: a
            // certificate holding an unreleased signature would leak it early.
            if let ConsensusMessage::Vote(vote) = message {
                if vote.vote.view > self.tip.view {
                    self.record_vote(vote);
                }
            }
        }
    }

    // ----- R8, R12: finalization and catch-up ------------------------------------------

    fn progress(&mut self) {
        self.try_finalize();
        self.try_propose();
        self.try_notarize();
    }

    fn try_finalize(&mut self) {
        loop {
            let next = self
                .finalizations
                .values()
                .find(|certificate| certificate.vote.height > self.tip.height)
                .cloned();
            let Some(certificate) = next else {
                return;
            };
            let vote = &certificate.vote;
            match self.chain_to(vote.block, vote.height) {
                Ok(chain) => {
                    let last = chain.last().expect("height above the tip");
                    if last.header.view != vote.view {
                        // Cannot happen with at most f byzantine validators; refuse
                        // rather than output a block whose certificate names another view.
                        self.finalizations.remove(&vote.view);
                        continue;
                    }
                    self.output_finalized(chain, certificate);
                }
                Err(ChainGap::Missing(hash, height)) => {
                    self.want(hash, height);
                    return;
                }
                Err(ChainGap::Conflict) => {
                    self.finalizations.remove(&vote.view);
                }
            }
        }
    }

    fn output_finalized(&mut self, chain: Vec<Block>, certificate: QuorumCertificate) {
        assert!(!chain.is_empty());
        for block in chain {
            assert_eq!(block.header.height, self.tip.height.next());
            assert_eq!(block.header.parent, self.tip.hash);
            self.tip = FinalizedTip {
                height: block.header.height,
                hash: block.hash(),
                view: block.header.view,
                certificate: None,
            };
            self.out.push(Output::Finalized(FinalizedBlock {
                block,
                certificate: certificate.clone(),
            }));
        }
        assert_eq!(self.tip.hash, certificate.vote.block);
        self.tip.certificate = Some(certificate);
        if self.view <= self.tip.view {
            self.enter_view(self.tip.view.next());
        } else {
            self.prune();
        }
    }

    fn want(&mut self, hash: Hash, height: Height) {
        if height <= self.tip.height || self.blocks.contains_key(&hash) {
            return;
        }
        if self.wanted.contains_key(&hash) || self.wanted.len() >= MAX_WANTED_BLOCKS {
            return;
        }
        self.request(hash, height);
    }

    /// R12, pipelined: a fetched run that finalized blocks is followed at once by the
    /// next request for what is still wanted (from the new tip), instead of after
    /// `fetch_retry_ms`; a long catch-up then runs at the speed of round trips and
    /// re-execution. Only progress triggers it, so it cannot loop.
    fn fetch_next_runs(&mut self) {
        let wanted: Vec<(Hash, Height)> = self
            .wanted
            .iter()
            .map(|(hash, wanted)| (*hash, wanted.height))
            .collect();
        for (hash, height) in wanted {
            self.request(hash, height);
        }
    }

    fn request(&mut self, hash: Hash, height: Height) {
        self.wanted.insert(
            hash,
            Wanted {
                height,
                requested_ms: self.now_ms,
            },
        );
        self.out.push(Output::Fetch(FetchRequest {
            from_height: self.tip.height.next(),
            target: hash,
            target_height: height,
        }));
    }

    fn on_fetched(&mut self, from: MemberId, response: FetchResponse) {
        if response.check_bounds().is_err() {
            return;
        }
        let FetchResponse {
            mut blocks,
            certificates,
        } = response;
        for certificate in certificates.into_iter().take(MAX_FETCH_CERTIFICATES) {
            self.on_certificate(from, certificate);
        }
        blocks.truncate(MAX_FETCH_BLOCKS);
        // Highest first: a block is kept when something already trusted vouches for
        // its hash, and then vouches for its own parent.
        blocks.sort_by_key(|block| std::cmp::Reverse(block.header.height));
        for block in blocks {
            if block.header.chain_id != *self.chain_id() || block.header.height <= self.tip.height {
                continue;
            }
            let hash = block.hash();
            if self.blocks.contains_key(&hash) {
                continue;
            }
            let vouched = self.wanted.contains_key(&hash)
                || self.certified.contains_key(&hash)
                || self.blocks.values().any(|held| held.header.parent == hash);
            if vouched && block.txs_root_matches() {
                self.hold_block(block);
            }
        }
    }

    fn update_timer(&mut self) {
        let view_or_retry = if self.timed_out {
            self.retry_deadline_ms
        } else {
            self.view_deadline_ms
        };
        let fetch = self
            .wanted
            .values()
            .map(|wanted| {
                wanted
                    .requested_ms
                    .saturating_add(self.timeouts.fetch_retry_ms)
            })
            .min();
        let deadline = fetch.map_or(view_or_retry, |fetch| fetch.min(view_or_retry));
        if self.timer_set_ms != Some(deadline) {
            self.timer_set_ms = Some(deadline);
            self.out.push(Output::SetTimer {
                deadline_ms: deadline,
            });
        }
    }
}

/// The leader of `view` among `validators` (R1): round robin in member-id order.
pub fn leader_of(validators: &[MemberId], view: View) -> MemberId {
    assert!(!validators.is_empty());
    validators[(view.0 % validators.len() as u64) as usize]
}
