//! Catch-up: R12 (fetching blocks this node lacks, checking and keeping fetched runs,
//! keeping the finalizations that vouch for them, and [`answer_fetch`], the serving
//! side) and R13 (status on connect and on retry, help for a peer that is behind, and
//! the state [`super::Engine::sync_state`] reports).

use super::{Engine, Output, Wanted, MAX_RETAINED_VIEWS, MAX_WANTED_BLOCKS};
use crate::fetch::{
    FetchRequest, FetchResponse, FinalizedStore, MAX_FETCH_BLOCKS, MAX_FETCH_CERTIFICATES,
};
use crate::message::{ConsensusMessage, PeerStatus, MAX_JUSTIFICATION_CERTIFICATES};
use seisan_crypto::verify_certificate_in;
use seisan_types::{Block, Hash, Height, MemberId, QuorumCertificate, View, VoteKind};

impl Engine {
    /// R13: a new connection gets this node's status at once, and a peer that had
    /// been helped before it went away may be helped again.
    pub(super) fn on_peer_connected(&mut self, peer: MemberId) {
        if peer == self.member || !self.is_validator(peer) {
            return;
        }
        self.connected.insert(peer);
        self.heard.remove(&peer);
        self.helped.remove(&peer);
        self.send_status(peer);
    }

    /// R13: take what a peer's status carries like any certificate and vote, then
    /// help the peer if it is behind (which it learns from this node's answer).
    pub(super) fn on_status(&mut self, from: MemberId, status: PeerStatus) {
        if from == self.member {
            return;
        }
        if self.connected.contains(&from) {
            self.heard.insert(from);
        }
        let PeerStatus {
            epoch,
            view,
            tip_height,
            certificates,
            nullify,
            recipient_signed,
        } = status;
        if epoch != self.set.epoch {
            // E6: nothing of another epoch counts here. A peer in a later epoch is
            // followed by fetching the finalized run; one in an earlier epoch learns
            // from this node's status that it should do the same.
            self.note_peer_epoch(epoch, tip_height);
            if epoch < self.set.epoch {
                self.help_now(from);
            }
            return;
        }
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
        // R14: after its certificates, which move this node above the sender's tip.
        self.learn_from_status(from, recipient_signed);
        if view < self.view || tip_height < self.tip.height {
            self.help_now(from);
        }
    }

    /// This node's status (R13) as sent to `peer`, with what `peer` signed (R14).
    pub(super) fn status(&self, peer: MemberId) -> PeerStatus {
        let nullify = self
            .released_nullify
            .clone()
            .filter(|vote| vote.vote.view == self.view);
        PeerStatus {
            epoch: self.set.epoch,
            view: self.view,
            tip_height: self.tip.height,
            certificates: self.status_certificates(),
            nullify,
            recipient_signed: self.signed_by(peer),
        }
    }

    pub(super) fn send_status(&mut self, peer: MemberId) {
        let status = self.status(peer);
        self.out.push(Output::Send {
            to: peer,
            message: ConsensusMessage::Status(Box::new(status)),
        });
    }

    /// R9, R13: a peer that speaks about an older view is sent, directly, this node's
    /// status with the certificates that got it to its view.
    pub(super) fn help(&mut self, peer: MemberId, their_view: View) {
        if their_view >= self.view {
            return;
        }
        self.help_now(peer);
    }

    /// Sends `peer` this node's status, at most once per `retry_ms` for one view: the
    /// direct send may be lost with a connection, so the same help is given again
    /// after a while, but a chatty peer does not get it on every message.
    pub(super) fn help_now(&mut self, peer: MemberId) {
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
    pub(super) fn status_certificates(&self) -> Vec<QuorumCertificate> {
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

    /// R12 over a long gap: a node that is more than [`MAX_RETAINED_VIEWS`] views behind
    /// (a wiped node rejoining a long chain enters the live view at once) still needs
    /// the finalizations of the blocks right above its tip, which fetched runs carry:
    /// nothing else vouches for those blocks. Such a finalization (of a height above the
    /// tip) is kept, at most [`MAX_FETCH_CERTIFICATES`] at a time, until its block is
    /// final; it is not forwarded and moves no view.
    pub(super) fn keep_catch_up_finalization(&mut self, certificate: QuorumCertificate) {
        let vote = &certificate.vote;
        assert!(vote.height > self.tip.height);
        let window_low = View(self.view.0.saturating_sub(MAX_RETAINED_VIEWS));
        let kept = self.finalizations.range(..window_low).count();
        if vote.kind != VoteKind::Finalize
            || kept >= MAX_FETCH_CERTIFICATES
            || self.finalizations.contains_key(&vote.view)
            || verify_certificate_in(&self.domain, &self.set, &certificate).is_err()
        {
            return;
        }
        self.certified
            .entry(vote.block)
            .or_insert((vote.view, vote.height));
        self.best_known_height = self.best_known_height.max(vote.height);
        self.finalizations.insert(vote.view, certificate);
    }

    pub(super) fn want(&mut self, hash: Hash, height: Height) {
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
    pub(super) fn fetch_next_runs(&mut self) {
        let wanted: Vec<(Hash, Height)> = self
            .wanted
            .iter()
            .map(|(hash, wanted)| (*hash, wanted.height))
            .collect();
        for (hash, height) in wanted {
            self.request(hash, height);
        }
    }

    pub(super) fn request(&mut self, hash: Hash, height: Height) {
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

    pub(super) fn on_fetched(&mut self, from: MemberId, response: FetchResponse) {
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
            if block.header.chain_id != *self.chain_id()
                || block.header.epoch != self.set.epoch
                || block.header.height <= self.tip.height
            {
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
}

/// Answers a peer's [`FetchRequest`] from this node's finalized store and, for blocks
/// not yet final here, from its engine's memory. Pure and bounded: at most
/// [`MAX_FETCH_BLOCKS`] blocks and [`MAX_FETCH_CERTIFICATES`] certificates.
///
/// If the first wanted height is final here, the answer is the finalized run upward
/// from it (each block's certificate included, so the asker can check the run from
/// genesis alone). Otherwise it walks down from the target by parent links and returns
/// the highest blocks of that path, with the target's certificate if this node has one.
pub fn answer_fetch(
    request: &FetchRequest,
    store: &dyn FinalizedStore,
    engine: Option<&Engine>,
) -> FetchResponse {
    let mut response = FetchResponse::default();
    let from = request.from_height.max(Height(1));
    let stored = store.finalized_height();
    if from <= stored {
        let last = stored.min(request.target_height.max(from));
        let mut height = from;
        while height <= last && response.blocks.len() < MAX_FETCH_BLOCKS {
            let Some(finalized) = store.finalized_block(height) else {
                break;
            };
            if response.certificates.last() != Some(&finalized.certificate)
                && response.certificates.len() < MAX_FETCH_CERTIFICATES
            {
                response.certificates.push(finalized.certificate.clone());
            }
            response.blocks.push(finalized.block);
            // E4: the last block of an epoch travels with the seals that link it to
            // its certificate.
            let room = MAX_FETCH_BLOCKS - response.blocks.len();
            response
                .blocks
                .extend(finalized.seals.into_iter().take(room));
            height = height.next();
        }
        return response;
    }
    let lookup = |hash: Hash, height: Height| -> Option<Block> {
        if let Some(block) = engine.and_then(|engine| engine.known_block(&hash)) {
            return Some(block.clone());
        }
        store
            .finalized_block(height)
            .filter(|finalized| finalized.block.hash() == hash)
            .map(|finalized| finalized.block)
    };
    let mut hash = request.target;
    let mut height = request.target_height;
    while height >= from && response.blocks.len() < MAX_FETCH_BLOCKS {
        let Some(block) = lookup(hash, height) else {
            break;
        };
        if block.header.height != height {
            break;
        }
        hash = block.header.parent;
        height = Height(height.0.saturating_sub(1));
        response.blocks.push(block);
        if height.0 == 0 {
            break;
        }
    }
    response.blocks.reverse();
    if let Some(certificate) = engine.and_then(|engine| engine.certificate_for(&request.target)) {
        response.certificates.push(certificate.clone());
    }
    response
}
