//! Byzantine mocks. A byzantine validator runs an honest engine (so it still takes part
//! and its own view of the chain is checked like anyone's) and then rewrites what that
//! engine sends: it equivocates as leader, double-votes, or sprays garbage.

use crate::app::{self, Plan};
use crate::rng::Rng;
use seisan_consensus::{proposal_digest, ConsensusMessage, Proposal};
use seisan_crypto::{assemble_certificate, sign_vote, Keypair};
use seisan_types::{
    ChainDomain, ChainId, Epoch, Hash, Height, MemberId, QuorumCertificate, Signature, SignedVote,
    View, Vote, VoteKind,
};
use std::collections::BTreeMap;

/// What a byzantine validator does on top of its honest engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// As leader, sends two different valid blocks to two groups of peers, each with a
    /// matching notarize vote.
    Equivocate,
    /// Signs a second notarize for a random block beside each notarize, a nullify beside
    /// each finalize and a finalize beside each nullify.
    DoubleVote,
    /// Sends undecodable bytes, forged signatures, votes for unknown blocks, short
    /// certificates, proposals out of turn and junk fetch answers.
    Garbage,
    /// All of the above.
    All,
}

impl Behaviour {
    pub const ALL: [Behaviour; 4] = [
        Behaviour::Equivocate,
        Behaviour::DoubleVote,
        Behaviour::Garbage,
        Behaviour::All,
    ];

    pub fn equivocates(self) -> bool {
        matches!(self, Behaviour::Equivocate | Behaviour::All)
    }

    pub fn double_votes(self) -> bool {
        matches!(self, Behaviour::DoubleVote | Behaviour::All)
    }

    pub fn sends_garbage(self) -> bool {
        matches!(self, Behaviour::Garbage | Behaviour::All)
    }
}

#[derive(Clone, Debug)]
struct Equivocation {
    alternative: Hash,
    height: Height,
    second_group: Vec<bool>,
}

/// The byzantine layer of one validator.
#[derive(Debug)]
pub struct Byzantine {
    pub behaviour: Behaviour,
    member: MemberId,
    keypair: Keypair,
    /// The chain id and genesis hash its signatures are bound to.
    domain: ChainDomain,
    /// The epoch of the engine it runs on (E1): what its own votes sign.
    epoch: Epoch,
    /// Nodes in the simulation (recipients are indexes below this).
    validators: usize,
    equivocations: BTreeMap<View, Equivocation>,
}

impl Byzantine {
    pub fn new(
        behaviour: Behaviour,
        member: MemberId,
        keypair: Keypair,
        domain: ChainDomain,
        validators: usize,
    ) -> Byzantine {
        Byzantine {
            behaviour,
            member,
            keypair,
            domain,
            epoch: Epoch(0),
            validators,
            equivocations: BTreeMap::new(),
        }
    }

    /// The node's engine now runs `epoch`, signing with `keypair` (a rotated key, E5);
    /// views restart, so the equivocations of the last epoch are forgotten.
    pub fn set_epoch(&mut self, epoch: Epoch, keypair: Keypair) {
        self.epoch = epoch;
        self.keypair = keypair;
        self.equivocations.clear();
    }

    fn vote(&self, view: View, height: Height, block: Hash, kind: VoteKind) -> SignedVote {
        let vote = Vote {
            chain_id: self.domain.chain_id.clone(),
            epoch: self.epoch,
            view,
            height,
            block,
            kind,
        };
        sign_vote(&self.keypair, &self.domain.genesis, self.member, vote)
    }

    fn peers(&self) -> Vec<usize> {
        (0..self.validators)
            .filter(|peer| *peer != self.member.0 as usize)
            .collect()
    }

    /// Rewrites one message the honest engine wants to send to `recipients`, returning
    /// (recipient, bytes) pairs. `parent_root` gives the state root a block this node
    /// built was executed on, so an equivocating twin can be made valid too.
    pub fn rewrite(
        &mut self,
        rng: &mut Rng,
        message: &ConsensusMessage,
        recipients: &[usize],
        parent_root: Option<Hash>,
        plan: &Plan,
    ) -> Vec<(usize, Vec<u8>)> {
        let mut sends: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut honest_copy = true;
        match message {
            ConsensusMessage::Proposal(proposal)
                if self.behaviour.equivocates()
                    && proposal.block.header.proposer == self.member
                    && parent_root.is_some() =>
            {
                let header = &proposal.block.header;
                let mut twin = app::build(
                    plan,
                    &self.domain.chain_id,
                    (header.epoch, header.view, header.height),
                    header.parent,
                    &parent_root.expect("checked above"),
                    self.member,
                    header.timestamp_ms + 1 + rng.below(1000),
                );
                twin.txs.clear();
                let twin_hash = twin.hash();
                let signature = self.keypair.sign_digest(&proposal_digest(
                    &self.domain,
                    header.view,
                    &twin_hash,
                ));
                let second_group: Vec<bool> =
                    (0..self.validators).map(|_| rng.chance(500)).collect();
                let twin_message = ConsensusMessage::Proposal(Box::new(Proposal {
                    block: twin,
                    signature,
                    justification: proposal.justification.clone(),
                }));
                for recipient in recipients {
                    let chosen = if second_group[*recipient] {
                        &twin_message
                    } else {
                        message
                    };
                    sends.push((*recipient, chosen.encode()));
                }
                self.equivocations.insert(
                    header.view,
                    Equivocation {
                        alternative: twin_hash,
                        height: header.height,
                        second_group,
                    },
                );
                honest_copy = false;
            }
            ConsensusMessage::Vote(vote) if vote.member == self.member => {
                let view = vote.vote.view;
                if vote.vote.kind == VoteKind::Notarize {
                    if let Some(equivocation) = self.equivocations.get(&view).cloned() {
                        let twin_vote = self.vote(
                            view,
                            equivocation.height,
                            equivocation.alternative,
                            VoteKind::Notarize,
                        );
                        for recipient in recipients {
                            let chosen = if equivocation.second_group[*recipient] {
                                ConsensusMessage::Vote(twin_vote.clone())
                            } else {
                                message.clone()
                            };
                            sends.push((*recipient, chosen.encode()));
                        }
                        honest_copy = false;
                    }
                }
                if self.behaviour.double_votes() {
                    let extra = match vote.vote.kind {
                        VoteKind::Notarize => self.vote(
                            view,
                            vote.vote.height,
                            Hash(rng.bytes(32).try_into().expect("32 bytes")),
                            VoteKind::Notarize,
                        ),
                        VoteKind::Finalize => {
                            self.vote(view, Height(0), Hash::ZERO, VoteKind::Nullify)
                        }
                        VoteKind::Nullify => self.vote(
                            view,
                            Height(1 + rng.below(8)),
                            Hash(rng.bytes(32).try_into().expect("32 bytes")),
                            VoteKind::Finalize,
                        ),
                    };
                    for recipient in recipients {
                        if rng.chance(700) {
                            sends
                                .push((*recipient, ConsensusMessage::Vote(extra.clone()).encode()));
                        }
                    }
                }
            }
            _ => {}
        }
        if honest_copy {
            for recipient in recipients {
                sends.push((*recipient, message.encode()));
            }
        }
        if self.behaviour.sends_garbage() && rng.chance(400) {
            let peers = self.peers();
            let target = peers[rng.below(peers.len() as u64) as usize];
            sends.push((target, self.garbage(rng, message.view(), plan)));
        }
        sends
    }

    /// One hostile message about (or near) `view`.
    pub fn garbage(&self, rng: &mut Rng, view: View, plan: &Plan) -> Vec<u8> {
        let random_hash = |rng: &mut Rng| Hash(rng.bytes(32).try_into().expect("32 bytes"));
        match rng.below(7) {
            0 => {
                let length = rng.range(0, 300) as usize;
                rng.bytes(length)
            }
            1 => {
                let mut vote = self.vote(view, Height(1), random_hash(rng), VoteKind::Notarize);
                vote.signature = Signature([7; 64]);
                ConsensusMessage::Vote(vote).encode()
            }
            2 => {
                // A validly signed vote for a block nobody proposed.
                let vote = self.vote(
                    View(view.0 + rng.below(3)),
                    Height(1 + rng.below(50)),
                    random_hash(rng),
                    VoteKind::Notarize,
                );
                ConsensusMessage::Vote(vote).encode()
            }
            3 => {
                // A certificate with only this node's signature.
                let vote = Vote {
                    chain_id: self.domain.chain_id.clone(),
                    epoch: self.epoch,
                    view: View(view.0 + 1),
                    height: Height(0),
                    block: Hash::ZERO,
                    kind: VoteKind::Nullify,
                };
                let signed = sign_vote(
                    &self.keypair,
                    &self.domain.genesis,
                    self.member,
                    vote.clone(),
                );
                ConsensusMessage::Certificate(assemble_certificate(vote, &[signed])).encode()
            }
            4 => {
                // A certificate claiming everyone signed, with forged signatures, far ahead.
                let vote = Vote {
                    chain_id: self.domain.chain_id.clone(),
                    epoch: self.epoch,
                    view: View(view.0 + 1_000_000),
                    height: Height(5),
                    block: random_hash(rng),
                    kind: VoteKind::Finalize,
                };
                let signatures = (0..self.validators as u32)
                    .map(|member| (MemberId(member), Signature([member as u8; 64])))
                    .collect();
                ConsensusMessage::Certificate(QuorumCertificate { vote, signatures }).encode()
            }
            5 => {
                // A proposal out of turn (or with a bad state root when in turn).
                let block = app::build(
                    plan,
                    &self.domain.chain_id,
                    (self.epoch, view, Height(1 + rng.below(20))),
                    random_hash(rng),
                    &random_hash(rng),
                    self.member,
                    rng.next_u64() % 1_000_000,
                );
                let signature =
                    self.keypair
                        .sign_digest(&proposal_digest(&self.domain, view, &block.hash()));
                ConsensusMessage::Proposal(Box::new(Proposal {
                    block,
                    signature,
                    justification: vec![],
                }))
                .encode()
            }
            _ => {
                // A vote for another chain.
                let vote = sign_vote(
                    &self.keypair,
                    &self.domain.genesis,
                    self.member,
                    Vote {
                        chain_id: ChainId("other-dev".into()),
                        epoch: self.epoch,
                        view,
                        height: Height(1),
                        block: random_hash(rng),
                        kind: VoteKind::Notarize,
                    },
                );
                ConsensusMessage::Vote(vote).encode()
            }
        }
    }

    /// A junk answer to a fetch: random blocks chained from nowhere, with a forged
    /// certificate.
    pub fn garbage_fetch_answer(
        &self,
        rng: &mut Rng,
        from: Height,
        plan: &Plan,
    ) -> seisan_consensus::FetchResponse {
        let mut blocks = Vec::new();
        let mut parent = Hash(rng.bytes(32).try_into().expect("32 bytes"));
        for offset in 0..rng.range(1, 5) {
            let block = app::build(
                plan,
                &self.domain.chain_id,
                (self.epoch, View(from.0 + offset), Height(from.0 + offset)),
                parent,
                &Hash::ZERO,
                self.member,
                rng.next_u64() % 1_000_000,
            );
            parent = block.hash();
            blocks.push(block);
        }
        let last = blocks.last().expect("at least one block");
        let vote = Vote {
            chain_id: self.domain.chain_id.clone(),
            epoch: self.epoch,
            view: last.header.view,
            height: last.header.height,
            block: last.hash(),
            kind: VoteKind::Finalize,
        };
        let signatures = (0..self.validators as u32)
            .map(|member| (MemberId(member), Signature([3; 64])))
            .collect();
        seisan_consensus::FetchResponse {
            blocks,
            certificates: vec![QuorumCertificate { vote, signatures }],
        }
    }
}
