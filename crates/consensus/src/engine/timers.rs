//! Time in the engine: R2 (entering a view and forgetting views that fell out of the
//! retained window), R6 (the view timer fires: sign `nullify(v)`), R9 (after a timeout,
//! re-send this node's status directly every `retry_ms`) and the one host timer that
//! covers the view, retry and fetch deadlines.

use super::{Engine, Output, MAX_RETAINED_VIEWS, MAX_UNRELEASED, SILENT_AFTER_VIEWS};
use crate::message::ConsensusMessage;
use crate::record::Signing;
use seisan_types::{Hash, Height, MemberId, View, VoteKind};
use std::collections::BTreeSet;

impl Engine {
    pub(super) fn on_start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        self.view_entered_ms = self.now_ms;
        self.view_deadline_ms = self.now_ms.saturating_add(self.view_timeout_ms(self.view));
        let now = self.now_ms;
        if let Some(fence) = self.fence.as_mut() {
            fence.since_ms = now;
        }
        // Kept certificates are checked like a peer's (a disk can be corrupted) and
        // forwarded, since the other validators may have lost them.
        let own = self.member;
        for certificate in std::mem::take(&mut self.restored_certificates) {
            self.on_certificate(own, certificate);
        }
    }

    pub(super) fn enter_view(&mut self, view: View) {
        assert!(view > self.view);
        self.view = view;
        self.timed_out = false;
        self.view_entered_ms = self.now_ms;
        self.view_deadline_ms = self.now_ms.saturating_add(self.view_timeout_ms(view));
        self.released_nullify = None;
        self.prune();
        assert!(self.view > self.tip.view);
    }

    /// R15: how long `view` may last before it is nullified: the view timeout, or the
    /// silent-leader timeout when its leader (another validator) has not spoken in the
    /// last [`SILENT_AFTER_VIEWS`] views.
    fn view_timeout_ms(&self, view: View) -> u64 {
        let leader = self.leader(view);
        let silent = leader != self.member
            && self
                .last_spoke
                .get(&leader)
                .is_none_or(|spoke| spoke.0.saturating_add(SILENT_AFTER_VIEWS) < view.0);
        if silent {
            self.timeouts
                .silent_leader_timeout_ms
                .min(self.timeouts.view_timeout_ms)
        } else {
            self.timeouts.view_timeout_ms
        }
    }

    /// R15: `member` signed something verified for `view`. A silent leader that speaks
    /// in its own view before it timed out gets the whole view timeout back.
    pub(super) fn spoke(&mut self, member: MemberId, view: View) {
        let Some(latest) = self.last_spoke.get_mut(&member) else {
            return;
        };
        *latest = (*latest).max(view);
        if view == self.view && member == self.leader(view) && !self.timed_out {
            let full = self
                .view_entered_ms
                .saturating_add(self.timeouts.view_timeout_ms);
            self.view_deadline_ms = self.view_deadline_ms.max(full);
        }
    }

    pub(super) fn prune(&mut self) {
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

    pub(super) fn on_tick(&mut self) {
        // The host's timer is spent; a new SetTimer is due even for the same deadline.
        self.timer_set_ms = None;
        let now = self.now_ms;
        if !self.timed_out && now >= self.view_deadline_ms {
            self.timed_out = true;
            self.retry_deadline_ms = now.saturating_add(self.timeouts.retry_ms);
            self.try_nullify();
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

    /// R6: the view timed out, so this node signs `nullify(v)` (unless it signed
    /// `finalize(v)`). Also called when the fence lifts in a view that timed out while
    /// fenced (R14), so the quorum can still count on this node's nullify.
    pub(super) fn try_nullify(&mut self) {
        let view = self.view;
        // Re-signing a nullify already recorded (after a restart) is allowed: it
        // is the same deterministic signature, and peers may never have seen it.
        if self.timed_out
            && self.signing()
            && self.record.permits(view, Signing::Nullify)
            && self.unreleased.len() < MAX_UNRELEASED
        {
            let record = self.record.with(view, Signing::Nullify);
            let vote = self.signed_vote(view, Height(0), Hash::ZERO, VoteKind::Nullify);
            self.persist_then_release(record, None, vec![ConsensusMessage::Vote(vote)]);
        }
    }

    /// R9, R13: after a timeout, send every other validator, directly, this node's
    /// status: its nullify and the certificates that justify its view (gossip may
    /// have dropped them, and would drop a second publication of the same bytes).
    /// A peer that is ahead answers with its own status, so this is also how a
    /// stuck node asks for what it lacks.
    pub(super) fn rebroadcast(&mut self) {
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
                message: ConsensusMessage::Status(Box::new(self.status(peer))),
            });
        }
    }

    pub(super) fn update_timer(&mut self) {
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
        let mut deadline = fetch.map_or(view_or_retry, |fetch| fetch.min(view_or_retry));
        // R14: a fenced node may lift its fence once it has waited a view timeout.
        if let Some(fence_ms) = self.fence_deadline_ms() {
            if fence_ms > self.now_ms {
                deadline = deadline.min(fence_ms);
            }
        }
        if self.timer_set_ms != Some(deadline) {
            self.timer_set_ms = Some(deadline);
            self.out.push(Output::SetTimer {
                deadline_ms: deadline,
            });
        }
    }
}
