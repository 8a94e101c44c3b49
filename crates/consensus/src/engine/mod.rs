//! The Simplex state machine: [`Engine::step`] takes the time and one [`Input`] and
//! returns the [`Output`]s the host must carry out. It owns no clock, socket, file or
//! random source, iterates only ordered maps, and so gives the same outputs for the same
//! inputs on every machine. The rules R1..R14 it cites are written out in the crate
//! docs.
//!
//! This module holds the state, the public types, [`Engine::new`], the [`Engine::step`]
//! dispatch and the accessors; the rules live in one file per group, each an
//! `impl Engine` block: `proposing.rs` (R1, R3, R4), `votes.rs` (R4..R7 votes, R10,
//! R11), `certificates.rs` (R5, R7, R8), `timers.rs` (R2, R6, R9), `catch_up.rs`
//! (R12, R13), `fence.rs` (R14: a restored validator learns what it signed before
//! it signs again) and `epoch.rs` (E1..E6: one validator set per engine, the pipeline bound,
//! seals, the handover to the next epoch and catching up across epochs).

use crate::evidence::{ConsensusEvidence, EvidenceKind};
pub use crate::fetch::FinalizedBlock;
use crate::fetch::{FetchRequest, FetchResponse};
use crate::message::{ConsensusMessage, MAX_JUSTIFICATION_CERTIFICATES};
use crate::record::PersistedRecord;
use seisan_crypto::{verify_certificate_in, Keypair};
use seisan_types::{
    Block, BlockHeader, ChainDomain, ChainId, Epoch, Genesis, Hash, Height, MemberId,
    QuorumCertificate, Signature, SignedVote, ValidatorSet, View, VoteKind,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

mod catch_up;
mod certificates;
mod epoch;
mod fence;
mod proposing;
mod timers;
mod votes;

pub use catch_up::answer_fetch;

/// Votes and proposals further than this many views ahead of the current one are
/// dropped (certificates are not: they are verified and let a lagging node jump).
pub const MAX_VIEWS_AHEAD: u64 = 256;
/// A leader none of whose votes or proposals this node verified in this many views
/// before the current one is silent: its view times out after
/// [`Timeouts::silent_leader_timeout_ms`] (R15).
pub const SILENT_AFTER_VIEWS: u64 = 8;
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
    /// The view timeout when the view's leader has not been heard for
    /// [`SILENT_AFTER_VIEWS`] views (R15); at most `view_timeout_ms`.
    pub silent_leader_timeout_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            view_timeout_ms: 2_000,
            retry_ms: 1_000,
            fetch_retry_ms: 500,
            silent_leader_timeout_ms: 500,
        }
    }
}

/// Deliberately broken rules, so tests can prove the simulator catches a broken
/// engine. Never set outside tests: the engine obeys it only when this crate is built
/// with the `test-hooks` feature (the simulator's tests enable it); without the feature
/// the broken rules are not compiled in and [`Engine::new`] refuses a config that sets
/// one ([`EngineError::BugInjectionUnavailable`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BugInjection {
    /// Count a repeated copy of one member's vote again toward the quorum.
    pub count_duplicate_votes: bool,
    /// Send a signed message before its record is acknowledged as durable.
    pub release_before_persist: bool,
}

/// The member id an engine runs under when its node is no member at all (a node
/// syncing to join, or an auditor): it is never in a validator set, so such an engine
/// only observes (E6).
pub const OBSERVER: MemberId = MemberId(u32::MAX);

/// Everything an engine needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// The chain this engine signs and verifies for (chain id and genesis hash); every
    /// signed digest is bound to it.
    pub domain: ChainDomain,
    /// The validators and quorum of the epoch this engine runs (E1); checked by
    /// [`Engine::new`].
    pub validators: ValidatorSet,
    /// The last height of this epoch, if the finalized chain already names it (E2):
    /// the `epoch_end` of the host's last finalized block header in this epoch.
    pub epoch_end: Option<Height>,
    /// This node's member id ([`OBSERVER`] if it is no member). A member that is not in
    /// `validators` observes: it verifies and finalizes but never signs (E6).
    pub member: MemberId,
    /// This node's key; if `member` is a validator of the epoch, it must be its key.
    pub keypair: Keypair,
    /// The view, retry and fetch timeouts.
    pub timeouts: Timeouts,
    #[doc(hidden)]
    pub bug_injection: BugInjection,
}

impl Config {
    /// An epoch-0 configuration: genesis's validators and quorum.
    pub fn genesis(genesis: &Genesis, member: MemberId, keypair: Keypair) -> Config {
        Config {
            domain: genesis.domain(),
            validators: ValidatorSet::genesis(genesis),
            epoch_end: None,
            member,
            keypair,
            timeouts: Timeouts::default(),
            bug_injection: BugInjection::default(),
        }
    }
}

/// The highest finalized block the host holds durably.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizedTip {
    /// The tip's height.
    pub height: Height,
    /// The tip block's hash.
    pub hash: Hash,
    /// The view the tip block was proposed in.
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

    /// The tip the engine of the next epoch starts on (E5): `last` is the final block
    /// at the previous epoch's last height. Views restart in every epoch, so the tip is
    /// view 0 of the new epoch; its certificate is the previous epoch's, which the host
    /// verified when the block became final.
    pub fn epoch_base(last: &FinalizedBlock) -> FinalizedTip {
        FinalizedTip {
            height: last.block.header.height,
            hash: last.block.hash(),
            view: View(0),
            certificate: Some(last.certificate.clone()),
        }
    }
}

/// What the host feeds the engine.
#[derive(Clone, Debug)]
pub enum Input {
    /// First input: starts the view timer (and proposes, if leader).
    Start,
    /// A message from a peer (already decoded; bounds are re-checked).
    Message {
        /// The peer it came from.
        from: MemberId,
        /// The message.
        message: ConsensusMessage,
    },
    /// The timer from the last [`Output::SetTimer`] fired (early or repeated ticks are
    /// harmless).
    Tick,
    /// The application's answer to [`Output::BuildProposal`].
    ProposalBuilt {
        /// The view the block was asked for.
        view: View,
        /// The built block.
        block: Block,
    },
    /// The application's answer to [`Output::VerifyProposal`]: whether re-executing the
    /// block on its ancestors gives the header's state root (and the block is otherwise
    /// valid).
    ProposalVerified {
        /// The proposal's view.
        view: View,
        /// The proposed block's hash.
        block: Hash,
        /// Whether the block is valid.
        valid: bool,
    },
    /// The record of [`Output::Persist`] with this sequence (and every earlier one) is
    /// durable.
    Persisted {
        /// The sequence of the durable [`Output::Persist`].
        sequence: u64,
    },
    /// A peer's answer to [`Output::Fetch`].
    Fetched {
        /// The peer that answered.
        from: MemberId,
        /// Its answer.
        response: FetchResponse,
    },
    /// A connection to `peer` came up (R13): the engine sends it its status.
    PeerConnected {
        /// The peer.
        peer: MemberId,
    },
    /// The connection to `peer` went down.
    PeerDisconnected {
        /// The peer.
        peer: MemberId,
    },
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
        /// The validator to send to.
        to: MemberId,
        /// The message.
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
        /// Fed back in [`Input::Persisted`] once durable.
        sequence: u64,
        /// The new signing record; replaces the previous one.
        record: PersistedRecord,
        /// A block to keep, if any.
        block: Option<Box<Block>>,
        /// A certificate to keep, if any.
        certificate: Option<QuorumCertificate>,
    },
    /// Feed [`Input::Tick`] at or after this time; replaces any earlier timer.
    SetTimer {
        /// When, on the clock the host feeds [`Engine::step`], in milliseconds.
        deadline_ms: u64,
    },
    /// Build a block for `view` at `height` on `parent` and answer with
    /// [`Input::ProposalBuilt`]. `ancestors` are the unfinalized blocks from the
    /// finalized tip (exclusive) up to `parent` (inclusive), oldest first, so the
    /// application can execute them on its finalized state.
    BuildProposal {
        /// The epoch the block's header must name (E1).
        epoch: Epoch,
        /// The view to propose in.
        view: View,
        /// The new block's height.
        height: Height,
        /// The parent block's hash.
        parent: Hash,
        /// The unfinalized blocks from the tip (exclusive) to `parent` (inclusive),
        /// oldest first.
        ancestors: Vec<Block>,
    },
    /// Re-execute `block` on its `ancestors` (as in [`Output::BuildProposal`]) and
    /// answer with [`Input::ProposalVerified`].
    VerifyProposal {
        /// The proposal's view.
        view: View,
        /// The proposed block.
        block: Block,
        /// Its unfinalized ancestors, oldest first.
        ancestors: Vec<Block>,
    },
    /// The next final block, in height order, each exactly once.
    Finalized(FinalizedBlock),
    /// Proof that a validator misbehaved; each (view, member, kind) once.
    Evidence(ConsensusEvidence),
    /// Ask some peer for blocks; answer with [`Input::Fetched`].
    Fetch(FetchRequest),
    /// The block at this epoch's last height is final and was output (E5): this engine
    /// signs and outputs nothing more. The host executes the block, reads the next
    /// epoch's validator set from its state and starts a new engine on
    /// [`FinalizedTip::epoch_base`].
    EpochEnded {
        /// The epoch that ended.
        epoch: Epoch,
        /// Its last height.
        last_height: Height,
    },
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
    /// The record may be older than what this validator signed (its data was restored
    /// from a backup): the engine is fenced and signs nothing until it has learned
    /// from its peers what it signed (R14).
    pub fenced: bool,
}

/// Whether this node can trust its own view of the chain (R13), for the host's
/// admission and status: a node that knows of a finalized height above its own, or
/// has not heard the status of enough connected validators to make a quorum with
/// itself, is syncing and must not answer from its stale state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncState {
    /// This node's finalized height.
    pub tip_height: Height,
    /// The highest finalized height this node holds a verified certificate for.
    pub best_known_height: Height,
    /// Connected validators whose status it has heard since they connected.
    pub current_peers: usize,
    /// The epoch's quorum.
    pub quorum: usize,
    /// The epoch this node is in, and whether a peer said it is in a later one.
    pub epoch: Epoch,
    /// Whether a peer said it is in a later epoch.
    pub later_epoch_seen: bool,
    /// The verdict: this node must not answer from its own state.
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
#[allow(missing_docs)] // each variant's #[error] message is its documentation
pub enum EngineError {
    #[error("the validator set of epoch {epoch} cannot run consensus: {reason}")]
    UnsafeValidatorSet { epoch: Epoch, reason: String },
    #[error(
        "the key given for member {member} is not its key in the validator set of epoch {epoch}"
    )]
    KeyMismatch { member: MemberId, epoch: Epoch },
    #[error("timeouts must be positive: {timeouts:?}")]
    ZeroTimeout { timeouts: Timeouts },
    #[error("the finalized tip's certificate does not certify it: {reason}")]
    BadTipCertificate { reason: String },
    #[error(
        "bug injection {requested:?} needs seisan-consensus built with the test-hooks feature"
    )]
    BugInjectionUnavailable { requested: BugInjection },
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
    domain: ChainDomain,
    set: ValidatorSet,
    /// Whether this node is a validator of this epoch; an observer never signs (E6).
    voting: bool,
    /// This epoch's last height, once a final block names it (E2).
    epoch_end: Option<Height>,
    /// Set once the block at `epoch_end` is final (E5): the engine is spent.
    ended: bool,
    /// The highest finalized height a peer in a later epoch reported, and when this
    /// node last asked for the finalized run above its tip (E6).
    later_epoch: Option<(Height, u64)>,
    member: MemberId,
    keypair: Keypair,
    timeouts: Timeouts,
    /// Read through [`Engine::bugs`]; absent from a build without `test-hooks`.
    #[cfg(feature = "test-hooks")]
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
    /// The latest view of a verified vote or proposal by each validator (R15); the
    /// starting view for all at construction.
    last_spoke: BTreeMap<MemberId, View>,
    /// When this node entered its current view (R15 gives a silent leader that speaks
    /// its whole view back).
    view_entered_ms: u64,
    /// The highest height a verified finalization names.
    best_known_height: Height,
    released_nullify: Option<SignedVote>,
    /// R14: while set, this restored validator signs nothing.
    fence: Option<fence::Fence>,
    out: Vec<Output>,
}

impl Engine {
    /// The broken rules this engine runs with: always none in a build without the
    /// `test-hooks` feature, a constant the compiler folds so the broken branches are
    /// not in a release binary.
    #[inline(always)]
    fn bugs(&self) -> BugInjection {
        #[cfg(feature = "test-hooks")]
        return self.bugs;
        #[cfg(not(feature = "test-hooks"))]
        BugInjection::default()
    }

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
            domain,
            validators: set,
            epoch_end,
            member,
            keypair,
            timeouts,
            bug_injection,
        } = config;
        if !cfg!(feature = "test-hooks") && bug_injection != BugInjection::default() {
            return Err(EngineError::BugInjectionUnavailable {
                requested: bug_injection,
            });
        }
        set.check()
            .map_err(|error| EngineError::UnsafeValidatorSet {
                epoch: set.epoch,
                reason: error.to_string(),
            })?;
        let voting = match set.key_of(member) {
            Some(key) if key == keypair.public_key() => true,
            Some(_) => {
                return Err(EngineError::KeyMismatch {
                    member,
                    epoch: set.epoch,
                })
            }
            None => false,
        };
        if timeouts.view_timeout_ms == 0 || timeouts.retry_ms == 0 || timeouts.fetch_retry_ms == 0 {
            return Err(EngineError::ZeroTimeout { timeouts });
        }
        // A tip certified in an earlier epoch is this epoch's base (E5): the host
        // verified it against that epoch's set when the block became final.
        let tip_of_this_epoch = tip
            .certificate
            .as_ref()
            .filter(|certificate| certificate.vote.epoch == set.epoch);
        if let Some(certificate) = tip_of_this_epoch {
            verify_certificate_in(&domain, &set, certificate).map_err(|error| {
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
            fenced,
        } = restored;
        // The record of R10 is per epoch: what was signed in an earlier epoch cannot
        // conflict with this one's votes, which sign their epoch (E5).
        let record = record
            .filter(|record| record.epoch == set.epoch)
            .unwrap_or_else(|| PersistedRecord::starting(set.epoch));
        let view = record.view.max(tip.view.next());
        let tip_height = tip.height;
        let set_epoch = set.epoch;
        let validators = set.members();
        let last_spoke = validators.iter().map(|member| (*member, view)).collect();
        let quorum = set.quorum();
        assert!(quorum >= 1 && quorum <= validators.len());
        assert!(
            2 * quorum > validators.len(),
            "checked by ValidatorSet::check"
        );
        let blocks: BTreeMap<Hash, Block> = kept_blocks
            .into_iter()
            .filter(|block| {
                block.header.height > tip.height
                    && block.header.chain_id == domain.chain_id
                    && block.header.epoch == set.epoch
            })
            .take(MAX_UNFINALIZED_BLOCKS)
            .map(|block| (block.hash(), block))
            .collect();
        Ok(Engine {
            domain,
            set,
            voting,
            epoch_end,
            ended: false,
            later_epoch: None,
            member,
            keypair,
            timeouts,
            #[cfg(feature = "test-hooks")]
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
            last_spoke,
            view_entered_ms: 0,
            best_known_height: tip_height,
            released_nullify: None,
            // An observer signs nothing anyway (E6).
            fence: (fenced && voting).then(|| fence::Fence::new(set_epoch)),
            out: Vec::new(),
        })
    }

    /// Feeds one input at host time `now_ms` and returns what to do, in order.
    pub fn step(&mut self, now_ms: u64, input: Input) -> Vec<Output> {
        assert!(self.out.is_empty());
        self.now_ms = self.now_ms.max(now_ms);
        if self.ended {
            // E5: a spent engine answers nothing; the host has started the next one.
            return Vec::new();
        }
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
        if self.started && !self.ended {
            self.try_lift_fence();
            self.progress();
            if fetched && self.tip.height > tip_before && !self.ended {
                self.fetch_next_runs();
                self.hurry_later_epoch_fetch();
            }
            if !self.ended {
                self.fetch_from_later_epoch();
                self.update_timer();
            }
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
        let own = usize::from(self.voting);
        SyncState {
            tip_height: self.tip.height,
            best_known_height,
            current_peers,
            quorum: self.quorum,
            epoch: self.set.epoch,
            later_epoch_seen: self.later_epoch.is_some(),
            syncing: best_known_height > self.tip.height
                || current_peers + own < self.quorum
                || self.ended,
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

    /// This engine's member id ([`OBSERVER`] for a node that is no member).
    pub fn member(&self) -> MemberId {
        self.member
    }

    /// The epoch this engine runs and its validator set (E1).
    pub fn validator_set(&self) -> &ValidatorSet {
        &self.set
    }

    /// Whether this node signs in this epoch (it is one of its validators).
    pub fn is_voting(&self) -> bool {
        self.voting
    }

    /// Whether this validator is fenced (R14): restored from a possibly stale record,
    /// it signs nothing until it has learned from its peers what it signed.
    pub fn is_fenced(&self) -> bool {
        self.fence.is_some()
    }

    /// Whether this engine signs now: a validator of the epoch (E6) that is not
    /// fenced (R14).
    fn signing(&self) -> bool {
        self.voting && self.fence.is_none()
    }

    /// This epoch's last height, once known (E2).
    pub fn epoch_end(&self) -> Option<Height> {
        self.epoch_end
    }

    /// Whether the epoch's last block is final and this engine is spent (E5).
    pub fn has_ended(&self) -> bool {
        self.ended
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
            "member {} epoch {} view {} timed_out {} fence {:?} tip h{}/v{} record {:?} notarizations {:?} nullifications {:?} finalizations {:?} proposals {:?} blocks {} wanted {:?} unreleased {} building {:?}",
            self.member,
            self.set.epoch,
            self.view,
            self.timed_out,
            self.fence.as_ref().map(|fence| fence.describe()),
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

    /// The chain this engine runs.
    pub fn chain_id(&self) -> &ChainId {
        &self.domain.chain_id
    }

    /// The chain id and genesis hash every signature of this engine is bound to.
    pub fn domain(&self) -> &ChainDomain {
        &self.domain
    }

    fn is_validator(&self, member: MemberId) -> bool {
        self.set.contains(member)
    }

    fn on_message(&mut self, from: MemberId, message: ConsensusMessage) {
        if message.check_bounds().is_err() {
            return;
        }
        // A status is taken from any member the host lets through (a validator of
        // another epoch, an observer catching up, E6); everything else only from this
        // epoch's validators (E1).
        let status = matches!(message, ConsensusMessage::Status(_));
        if !status && !self.is_validator(from) {
            return;
        }
        match message {
            ConsensusMessage::Proposal(proposal) => self.on_proposal(from, *proposal),
            ConsensusMessage::Vote(vote) => self.on_vote(from, vote),
            ConsensusMessage::Certificate(certificate) => self.on_certificate(from, certificate),
            ConsensusMessage::Status(status) => self.on_status(from, *status),
        }
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

    fn progress(&mut self) {
        self.try_finalize();
        if self.ended {
            return;
        }
        self.try_propose();
        self.try_notarize();
    }
}

/// The leader of `view` among `validators` (R1): round robin in member-id order.
pub fn leader_of(validators: &[MemberId], view: View) -> MemberId {
    assert!(!validators.is_empty());
    validators[(view.0 % validators.len() as u64) as usize]
}
