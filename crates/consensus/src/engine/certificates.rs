//! Certificates: assembling a certificate from `q` votes (R5 notarization, R7
//! nullification, R8 finalization), verifying one from a peer, applying it (forward
//! once per R9, finalize after a notarization per R5, enter the next view per R2), and
//! R8 output: the finalized chain in height order, each block exactly once.

use super::{ChainGap, Engine, FinalizedTip, Output, MAX_RETAINED_VIEWS};
use crate::fetch::FinalizedBlock;
use crate::message::{check_certificate_bounds, ConsensusMessage};
use seisan_crypto::{assemble_certificate, verify_certificate_in};
use seisan_types::{Block, Hash, Height, MemberId, QuorumCertificate, SignedVote, Vote, VoteKind};
use std::collections::BTreeSet;

impl Engine {
    pub(super) fn tally(&mut self, vote: &Vote) {
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
        let count = if self.bugs().count_duplicate_votes {
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
        if !self.bugs().count_duplicate_votes {
            assert!(certificate.signatures.len() >= self.quorum);
        }
        self.apply_certificate(certificate);
    }

    pub(super) fn on_certificate(&mut self, from: MemberId, certificate: QuorumCertificate) {
        if check_certificate_bounds(&certificate).is_err() {
            return;
        }
        let vote = &certificate.vote;
        // E1: a certificate of another epoch is never counted here.
        if vote.chain_id != *self.chain_id() || vote.epoch != self.set.epoch {
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
        if verify_certificate_in(&self.domain, &self.set, &certificate).is_err() {
            return;
        }
        self.help(from, view);
        self.apply_certificate(certificate);
    }

    /// A new, checked certificate (formed here or verified from a peer).
    pub(super) fn apply_certificate(&mut self, certificate: QuorumCertificate) {
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

    pub(super) fn try_finalize(&mut self) {
        while !self.ended {
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

    pub(super) fn output_finalized(&mut self, chain: Vec<Block>, certificate: QuorumCertificate) {
        assert!(!chain.is_empty());
        assert_eq!(
            chain.last().map(Block::hash),
            Some(certificate.vote.block),
            "a finalization certifies the top of its chain"
        );
        let mut chain = chain.into_iter().peekable();
        while let Some(block) = chain.next() {
            assert_eq!(block.header.height, self.tip.height.next());
            assert_eq!(block.header.parent, self.tip.hash);
            self.tip = FinalizedTip {
                height: block.header.height,
                hash: block.hash(),
                view: block.header.view,
                certificate: None,
            };
            self.learn_epoch_end(&block.header);
            let last_of_epoch = self.epoch_end == Some(block.header.height);
            // E4, E5: above the epoch's last height there are only seals; they are
            // handed over with the last block, never output as blocks of their own.
            let seals: Vec<Block> = if last_of_epoch {
                chain.by_ref().collect()
            } else {
                Vec::new()
            };
            self.out.push(Output::Finalized(FinalizedBlock {
                block,
                certificate: certificate.clone(),
                seals,
            }));
            if last_of_epoch {
                self.tip.certificate = Some(certificate);
                self.ended = true;
                self.out.push(Output::EpochEnded {
                    epoch: self.set.epoch,
                    last_height: self.tip.height,
                });
                return;
            }
        }
        assert_eq!(self.tip.hash, certificate.vote.block);
        self.tip.certificate = Some(certificate);
        if self.view <= self.tip.view {
            self.enter_view(self.tip.view.next());
        } else {
            self.prune();
        }
    }
}
