//! Seisan consensus: a pure Simplex state machine.
//!
//! [`Engine::step`]`(now_ms, input) -> Vec<Output>` is the whole interface: the host
//! (the node, or the simulator in `crates/sim`) turns network messages, timer expiries,
//! application answers and persistence acknowledgements into [`Input`]s and carries out
//! the [`Output`]s. The engine has no clock, socket, file, runtime or random source and
//! iterates only ordered maps, so the same inputs give the same outputs everywhere.
//!
//! # Protocol
//!
//! Simplex consensus (Benjamin Y. Chan and Rafael Pass, "Simplex Consensus: A Simple
//! and Fast Consensus Protocol", TCC 2023), in the form with separate notarize,
//! finalize and nullify votes also used by Commonware's `simplex`. Validators `V` are
//! the validators of the current epoch in member-id order (genesis's in epoch 0, see
//! E1..E6 below), `n = |V|`, the quorum `q` is the epoch's. A certificate is `q`
//! signatures by distinct validators over one domain-tagged [`seisan_types::Vote`]
//! (chain id, epoch, view, height, block hash, kind),
//! checked with [`seisan_crypto::verify_certificate`] (batch verification). View 0 and
//! height 0 are genesis; a block's `height` is the number of non-nullified blocks in
//! its chain, its `view` the iteration it was proposed in, `header.parent` its
//! parent's hash ([`seisan_types::Hash::ZERO`] for height 1).
//!
//! - **R1 Leader.** `leader(v) = V[v mod n]`.
//! - **R2 Enter view.** Upon a notarization, nullification or finalization for a view
//!   `v` at or above its current view, a node enters view `v + 1` and starts its view
//!   timer (`view_timeout_ms`, Simplex's 3 delta).
//! - **R3 Propose.** The leader of `v`, in view `v` before its timer fires, takes as
//!   parent the block of the highest view `u < v` that has a notarization or a
//!   finalization (or the finalized tip), such that every view strictly between `u`
//!   and `v` has a nullification ("a notarized chain of length v - 1"). It asks the
//!   application to build a block at `height(parent) + 1` and signs
//!   `proposal(v, b)` and `notarize(v, b)`, sending the parent's certificate and those
//!   nullifications along (the justification).
//! - **R4 Notarize, execute before vote.** Upon the first proposal for `v` signed by
//!   `leader(v)`, while in `v` and before its timer fired: if its parent is justified
//!   as in R3, the node asks the application to re-execute the block on its ancestors
//!   (same `header.state_root`); only if the answer is valid does it sign
//!   `notarize(v, b)`.
//! - **R5 Notarization.** `q` `notarize(v, b)` form a notarization of `b`. The node
//!   forwards it, enters `v + 1` (R2) and, if it signed `notarize(v, b)` itself and has
//!   not signed `nullify(v)`, signs `finalize(v, b)`.
//! - **R6 Nullify.** When the view timer of `v` fires and the node has not signed
//!   `finalize(v)`, it signs `nullify(v)` (whether or not it notarized in `v`) and
//!   stops notarizing in `v`.
//! - **R7 Nullification.** `q` `nullify(v)` form a nullification: forward, enter `v + 1`.
//! - **R8 Finalization.** `q` `finalize(v, b)` form a finalization: `b` and all its
//!   ancestors are final. They are output in height order, each exactly once, with
//!   the certificate ([`FinalizedBlock`]), after fetching any that are missing (R12).
//! - **R9 Forward and retry.** Every new certificate and every vote is gossiped once
//!   ([`Output::Broadcast`]). Gossip is best effort and drops a second publication of
//!   the same bytes (libp2p gossipsub deduplicates by content), so nothing is ever
//!   re-sent that way: after its view timer fired a node sends, every `retry_ms`,
//!   its status (R13) to every other validator directly ([`Output::Send`]), and a
//!   peer that speaks about an older view is sent the same status directly, at most
//!   once per `retry_ms` per (peer, view). These direct re-sends are what make the
//!   protocol live again once the network heals or a quorum is back.
//! - **R10 Never sign twice.** Before a proposal or vote leaves the engine it emits
//!   [`Output::Persist`] with the new [`PersistedRecord`] (what it signed in its latest
//!   view) and releases the message only after [`Input::Persisted`]. Its own vote
//!   counts toward a certificate only once released. A restarted engine is built from
//!   the last durable record and refuses to sign anything that conflicts with it
//!   ([`PersistedRecord::permits`]). With its first vote in a view it keeps the
//!   certificate that let it enter that view, and with `finalize(v, b)` it keeps the
//!   notarization of `v`: a node that signed `finalize(v)` can never nullify `v`, so
//!   after a crash of every validator `v` can end only through that notarization.
//! - **R11 Evidence.** Two votes of one kind in one view for different blocks, a
//!   finalize and a nullify in one view, or two different proposals in one view, all
//!   validly signed by one validator, are reported once as [`Output::Evidence`].
//! - **R12 Catch-up.** A node that holds a certificate (or a block) whose block (or
//!   parent) it lacks emits [`Output::Fetch`]. Answers ([`answer_fetch`]) are kept only
//!   where a certificate verified against genesis, or the parent link of a kept block,
//!   vouches for the hash; so catching up needs only the genesis validator set. A
//!   restarted node lost its unfinalized blocks and rejoins this way.
//!
//! - **R13 Status and sync.** A node's status is its view, its finalized height, the
//!   certificates that justify them (as in R9: its tip's finalization, then every
//!   certificate it holds above the tip, newest first, bounded) and its nullify for
//!   its view if it signed one. It is sent directly, never gossiped: to a peer as
//!   soon as a connection to it comes up ([`Input::PeerConnected`], so a validator
//!   that restarts or reconnects after an outage learns at once what it missed and
//!   the others learn its nullify), to every validator on each retry of a timed-out
//!   view (R9, which is how a stuck node asks for what it lacks), and as help to a
//!   peer that is behind. On a status the node takes its certificates and vote like
//!   any others (so it catches up, fetching blocks by R12) and answers with its own
//!   status if the sender's view or height is below its own. A node is *syncing*
//!   ([`SyncState`]) while it holds a verified finalization above its finalized tip,
//!   or while fewer connected validators than `q - 1` have sent it their status since
//!   they connected (it cannot tell whether the chain moved on without it); its host
//!   then refuses to answer from its state (nonces, admission).
//! - **R14 Restored validator (fence).** A record restored from a backup may be older
//!   than what its validator signed after the backup was taken; R10 alone would then
//!   let it sign twice. The host says so ([`Restored::fenced`]), and the engine is
//!   *fenced*: it signs nothing. Every status a node sends to a validator `X` (R13)
//!   carries what `X` signed in the highest view above the sender's finalized tip in
//!   which the sender holds anything `X` signed: its proposal, notarize, finalize and
//!   nullify there ([`PeerStatus::recipient_signed`]). A fenced `X` checks each against
//!   its own key and keeps those of the highest view. It lifts the fence once it has
//!   heard a status of its epoch from every other validator, or from every connected
//!   one and at least `n - q + 1` after waiting one view timeout since it started (peers
//!   still connecting are waited for); it then merges what it learned into its record
//!   (the higher view wins), makes the merged record durable before anything it signs
//!   leaves (R10), moves up to the record's view, and from then on signs only what the
//!   record permits (so it can still nullify a view in which it only notarized, which
//!   the quorum may need). Why this suffices: `X` takes each status's certificates
//!   first, so it ends above every sender's finalized tip view, where it never signs
//!   again; above those tips each heard sender reported the highest view it holds of
//!   `X`'s, and nothing below the merged view is signed again. Let `w` be the last
//!   view `X` signed in before the restore: the certificate that let it into `w` has
//!   `q - 1` other signers, each of which signed in `w - 1` and keeps the certificate
//!   of `w - 2` (R10), and any `n - q + 1` others include one of them; so `X` ends at
//!   least in view `w - 1`, and a fork built by `X` with validators that missed its
//!   last views (`q - 1` heard would allow that with 3 validators) cannot happen. So
//!   a restored validator of 3 waits for both others. The limit: a message of
//!   the old process that no heard validator still holds (it reached none, or only
//!   validators that restarted since, which keep others' votes in memory only, or
//!   validators `X` does not hear while fenced) is not learned; a conflict with it is then
//!   reported (R11), and it can break safety only if at least `2q - n - 1` other
//!   validators are byzantine too (for 3 validators with q = 2: even none). The host keeps
//!   every engine it starts fenced, across restarts and epochs, until one lifted and
//!   its merged record is durable.
//! - **R15 Silent leader.** A validator none of whose votes or proposals this node
//!   verified in the [`SILENT_AFTER_VIEWS`] views before `v` (counting from the view the
//!   engine started in) is silent: if it leads `v`, the view timer of `v` is
//!   `silent_leader_timeout_ms` instead of `view_timeout_ms`. A stopped validator's
//!   views then cost a quarter of a view timeout each instead of a whole one; one that
//!   speaks in its own view before the timer fired gets the whole view timeout back.
//!   Timers decide only liveness, so safety is untouched; a live validator votes in
//!   every view it is in (notarize, finalize or nullify), so only one this node has not
//!   heard for that long is cut short.
//!
//! # Epochs (validator-set changes)
//!
//! The consortium changes its validators, their keys and the quorum on the live chain
//! (contracts' governance). Consensus sees such a change as the end of an *epoch*:
//!
//! - **E1 One set per epoch.** An engine runs one epoch `e` with one
//!   [`seisan_types::ValidatorSet`] `S_e` (members, keys, quorum `q_e`; `2q_e > |S_e|`,
//!   checked at [`Engine::new`]). Every vote signs its epoch (`Vote::epoch`), and
//!   votes, proposals and certificates are checked against the set of their epoch only;
//!   anything of another epoch is never counted. Views are numbered from 1 in every
//!   epoch; R1..R14 hold within an epoch with `V = S_e` and `q = q_e`. Epoch 0's set is
//!   genesis's.
//! - **E2 The end is in a final block.** A block header says `epoch_end = Some(L)` when
//!   its state (re-executed by every voter, R4) has a validator-set change scheduled to
//!   take effect at height `L + 1`; the application schedules a change
//!   `ACTIVATION_DELAY_BLOCKS + 1` blocks after the approval that completes it. The
//!   engine learns `L` from the first *final* block that names it (the host
//!   passes it in [`Config::epoch_end`] after a restart).
//! - **E3 Pipeline bound.** A node proposes or notarizes a block at height `h` only if
//!   `h <= tip + ACTIVATION_DELAY_BLOCKS`. So no node votes above `L` before the block
//!   that scheduled `L` is final for it: every honest voter knows `L` when it matters.
//! - **E4 Seals.** Above `L`, epoch `e` builds only *seals*: blocks with no transactions,
//!   the parent's state root and time, built and checked by the engine itself. Seals
//!   only carry votes: a finalized seal finalizes its ancestor at `L` (R8) when `L`'s own
//!   view could not (a split of finalize and nullify votes with a silent member). Seals
//!   are never output, executed or stored as chain blocks.
//! - **E5 Handover.** When the block at `L` is final, the engine outputs it (with the
//!   seals that link it to its certificate, if a seal was finalized), then
//!   [`Output::EpochEnded`], and stops signing. The host executes `L`, reads `S_{e+1}`
//!   from its state and starts a new engine for `e + 1` on `L` as its finalized tip
//!   (view 0 of `e + 1`). The record of R10 is per epoch, so nothing signed in `e`
//!   conflicts with `e + 1`.
//! - **E6 Catching up across epochs.** A status (R13) names its epoch, and nothing of
//!   another epoch is counted. A node that hears of a later epoch asks for the
//!   finalized run above its tip ([`FetchRequest`] with no target hash, answered from
//!   the finalized store by [`answer_fetch`], the last block of an epoch with its
//!   seals); it verifies the run with its own set up to its epoch's end, hands over
//!   (E5), and the next engine goes on the same way, epoch by epoch from genesis. A node
//!   in a later epoch answers a status of an earlier epoch with its own, so the lagging
//!   node learns there is more. A node that is not in `S_e` (a joining
//!   validator before its activation, a removed member, an auditor) runs the engine as an
//!   *observer*: it verifies and finalizes, never signs.
//!
//! # Fault model
//!
//! Up to `f` byzantine validators and any number of crashes; messages may be lost,
//! duplicated, delayed and reordered; clocks may drift.
//!
//! - **Safety** (no two different blocks final at one height) needs `2q - n > f`:
//!   any two quorums then share an honest validator. So one view has at most one
//!   notarized block (an honest validator signs one notarize per view, R10); a view
//!   with a finalization has no nullification (an honest validator never signs both,
//!   R5/R6); and by induction every block notarized in a later view extends the
//!   finalized block, because an honest voter checked (R4) that its parent chain is
//!   notarized with only nullified views skipped, and the finalized view cannot be
//!   skipped.
//! - **Liveness** needs at most `n - q` validators crashed or silent (byzantine
//!   included), and eventually timely delivery with `view_timeout_ms` above the
//!   round trip.
//! - So 3 validators with q = 2 survive one crash but no byzantine validator: a member
//!   that signs conflicting votes is detected (R11), not prevented. 4 validators with
//!   q = 3 survive one byzantine validator. Genesis refuses `2q <= n`.
//!
//! # Bounds
//!
//! Every queue has a named limit: [`MAX_VIEWS_AHEAD`], [`MAX_RETAINED_VIEWS`],
//! [`MAX_UNFINALIZED_BLOCKS`], [`MAX_WANTED_BLOCKS`], [`MAX_UNRELEASED`],
//! [`message::MAX_JUSTIFICATION_CERTIFICATES`], [`message::MAX_MESSAGE_BYTES`],
//! [`fetch::MAX_FETCH_BLOCKS`]. Input from peers is checked before use and never
//! panics the engine; `assert!`s guard this crate's own invariants.

// Lint anchors (issue 20): no `unwrap` outside tests (a panic names its invariant with
// `expect` or `assert!`), and nothing public that is not reachable from outside.
#![warn(unreachable_pub)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]
#![warn(missing_docs)]

pub mod engine;
pub mod evidence;
pub mod fetch;
pub mod message;
pub mod record;

pub use engine::{
    answer_fetch, leader_of, BugInjection, Config, Engine, EngineError, FinalizedBlock,
    FinalizedTip, Input, Output, Restored, SyncState, Timeouts, MAX_RETAINED_VIEWS,
    MAX_UNFINALIZED_BLOCKS, MAX_UNRELEASED, MAX_VIEWS_AHEAD, MAX_WANTED_BLOCKS, OBSERVER,
    SILENT_AFTER_VIEWS,
};
pub use evidence::{ConsensusEvidence, EvidenceKind};
pub use fetch::{FetchRequest, FetchResponse, FinalizedStore};
pub use message::{
    proposal_digest, ConsensusMessage, MessageError, PeerStatus, Proposal, SignedByRecipient,
    SignedProposalHeader,
};
pub use record::{PersistedRecord, Signing};

#[cfg(test)]
mod tests;
