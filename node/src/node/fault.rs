//! Fault injection for tests: makes this validator byzantine on purpose, so a
//! multi-process test can show what honest validators do about it (tests/consortium_size.rs).
//! Set only with `seisan node --fault ...`, and only on a dev chain: a production genesis
//! refuses to start with it. The flag exists only in a build with the `test-hooks` feature
//! (the tests' build); a release binary has no `--fault` and never injects a fault.
//!
//! The engine stays honest (this node still follows the chain like any other); the fault
//! rewrites what the engine asks the host to send, as the simulator's byzantine layer
//! does (crates/sim/src/byzantine.rs).

use anyhow::bail;
use seisan_consensus::{ConsensusMessage, Input, Output};
use seisan_crypto::{sign_vote, Keypair};
use seisan_types::{Genesis, Hash, MemberId, SignedVote, Vote, VoteKind};

/// A deliberate misbehaviour of this validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// Beside every notarize and finalize vote it sends, sign and send a second one of
    /// the same kind, view and height for a different block (a double vote; R11 makes
    /// every honest validator that receives both keep it as evidence).
    Equivocate,
    /// Make this validator's bank and custody watchers attest false facts: another
    /// amount than the one they saw, and invented facts for bank entry ids the bank has
    /// not assigned yet (the next sequential ids) and for deposits that never happened.
    /// For tests that show a lying attester neither blocks nor forges a credit and that
    /// its contradictions become evidence (tests/attestation.rs).
    #[serde(rename = "lie-attestations")]
    LieAttestations,
    /// For an observer (a member in no validator set): sign and gossip a notarize and a
    /// finalize vote for every proposal its engine asks it to verify, as if it were a
    /// validator. For tests that show validators drop such votes and that they never
    /// make a quorum (tests/observer.rs).
    #[serde(rename = "observer-votes")]
    ObserverVotes,
    /// Serve snapshots (issue 18 item 5) whose values differ from the certified state
    /// in one value, with an honest offer. For tests that show a syncing node refuses
    /// them, names the peer, and installs an honest peer's instead (tests/snapshot.rs).
    #[serde(rename = "lie-snapshots")]
    LieSnapshots,
}

/// Whether this node's watchers attest false facts (`--fault lie-attestations`);
/// refused on a production chain.
pub fn lies_in_attestations(fault: Option<Fault>, genesis: &Genesis) -> anyhow::Result<bool> {
    injected(
        fault,
        Fault::LieAttestations,
        genesis,
        "this validator's watchers attest false facts",
    )
}

/// Whether this node serves false snapshots (`--fault lie-snapshots`); refused on a
/// production chain.
pub fn lies_in_snapshots(fault: Option<Fault>, genesis: &Genesis) -> anyhow::Result<bool> {
    injected(
        fault,
        Fault::LieSnapshots,
        genesis,
        "this node serves snapshots that differ from the certified state",
    )
}

/// Whether `fault` is `wanted`, which a build without `test-hooks` never injects and
/// a production chain refuses.
fn injected(
    fault: Option<Fault>,
    wanted: Fault,
    genesis: &Genesis,
    what: &str,
) -> anyhow::Result<bool> {
    // Constant false without `test-hooks`: the lying code is not in a release binary.
    if !cfg!(feature = "test-hooks") || fault != Some(wanted) {
        return Ok(false);
    }
    if !genesis.chain_id.is_dev() {
        bail!(
            "--fault is fault injection for tests; chain {} is not a dev chain",
            genesis.chain_id
        );
    }
    tracing::warn!("fault injection: {what}");
    Ok(true)
}

/// Rewrites the engine's outputs of a validator configured with a [`Fault`].
#[derive(Debug)]
pub struct Equivocator {
    keypair: Keypair,
    /// The genesis hash its votes are signed under (a real signature, only conflicting).
    genesis: Hash,
    member: MemberId,
    /// [`Fault::ObserverVotes`] rather than [`Fault::Equivocate`].
    observer_votes: bool,
}

impl Equivocator {
    /// The rewriter for `fault`, if any; refused on a production chain.
    pub fn configured(
        fault: Option<Fault>,
        genesis: &Genesis,
        keypair: &Keypair,
        member: MemberId,
    ) -> anyhow::Result<Option<Equivocator>> {
        let observer_votes = match fault.filter(|_| cfg!(feature = "test-hooks")) {
            Some(Fault::Equivocate) => false,
            Some(Fault::ObserverVotes) => true,
            _ => return Ok(None),
        };
        if !genesis.chain_id.is_dev() {
            bail!(
                "--fault is fault injection for tests; chain {} is not a dev chain",
                genesis.chain_id
            );
        }
        if observer_votes {
            tracing::warn!(%member, "fault injection: this node votes on every proposal, validator or not");
        } else {
            tracing::warn!(%member, "fault injection: this validator signs conflicting votes");
        }
        Ok(Some(Equivocator {
            keypair: keypair.clone(),
            genesis: genesis.hash(),
            member,
            observer_votes,
        }))
    }

    /// `outputs` with a conflicting twin after each notarize or finalize vote of this
    /// validator, sent the same way (gossip or direct) to the same peers.
    pub fn rewrite(&self, outputs: Vec<Output>) -> Vec<Output> {
        if self.observer_votes {
            return outputs;
        }
        let mut rewritten = Vec::with_capacity(outputs.len());
        for output in outputs {
            let twin = match &output {
                Output::Broadcast(ConsensusMessage::Vote(vote)) => self
                    .twin(vote)
                    .map(|twin| Output::Broadcast(ConsensusMessage::Vote(twin))),
                Output::Send {
                    to,
                    message: ConsensusMessage::Vote(vote),
                } => self.twin(vote).map(|twin| Output::Send {
                    to: *to,
                    message: ConsensusMessage::Vote(twin),
                }),
                _ => None,
            };
            rewritten.push(output);
            rewritten.extend(twin);
        }
        rewritten
    }

    /// What a node with [`Fault::ObserverVotes`] sends on `input`, besides what its
    /// engine does: for a proposal, its own notarize and finalize votes for the block;
    /// for another member's nullify vote, its own nullify of that view. So if an
    /// observer's votes counted, one validator and the observer would make a quorum of
    /// two, nullify a dead leader's view and finalize the next block. Nothing for any
    /// other fault.
    pub fn on_input(&self, input: &Input) -> Vec<Output> {
        let Input::Message { message, .. } = input else {
            return Vec::new();
        };
        if !self.observer_votes {
            return Vec::new();
        }
        let votes: Vec<Vote> = match message {
            ConsensusMessage::Proposal(proposal) => {
                let header = &proposal.block.header;
                [VoteKind::Notarize, VoteKind::Finalize]
                    .into_iter()
                    .map(|kind| Vote {
                        chain_id: header.chain_id.clone(),
                        epoch: header.epoch,
                        view: header.view,
                        height: header.height,
                        block: proposal.block.hash(),
                        kind,
                    })
                    .collect()
            }
            ConsensusMessage::Vote(signed)
                if signed.vote.kind == VoteKind::Nullify && signed.member != self.member =>
            {
                vec![signed.vote.clone()]
            }
            _ => Vec::new(),
        };
        for vote in &votes {
            tracing::info!(view = %vote.view, kind = ?vote.kind, "fault injection: sent a vote though not a validator");
        }
        votes
            .into_iter()
            .map(|vote| {
                Output::Broadcast(ConsensusMessage::Vote(sign_vote(
                    &self.keypair,
                    &self.genesis,
                    self.member,
                    vote,
                )))
            })
            .collect()
    }

    /// A vote of the same kind, view and height as this validator's `signed`, for a
    /// block nobody proposed (derived from the real one, so each view gets one twin).
    fn twin(&self, signed: &SignedVote) -> Option<SignedVote> {
        if signed.member != self.member || signed.vote.kind == VoteKind::Nullify {
            return None;
        }
        let block = Hash::tagged(b"seisan-fault-twin", &[signed.vote.block.as_bytes()]);
        Some(sign_vote(
            &self.keypair,
            &self.genesis,
            self.member,
            Vote {
                block,
                ..signed.vote.clone()
            },
        ))
    }
}

// The fault's behaviour exists only with `test-hooks`; without it, config's tests show
// the flag is absent.
#[cfg(all(test, feature = "test-hooks"))]
mod tests {
    use super::*;
    use seisan_types::{Height, View};

    fn genesis() -> Genesis {
        crate::genesis_command::testnet_genesis(7101, 0)
    }

    #[test]
    fn each_own_vote_gets_a_validly_signed_twin_for_another_block() {
        let genesis = genesis();
        let (member, _) = genesis.member_by_name("exchange-a").unwrap();
        let keypair = Keypair::dev("exchange-a");
        let fault = Equivocator::configured(Some(Fault::Equivocate), &genesis, &keypair, member)
            .unwrap()
            .unwrap();
        let vote = |kind| Vote {
            chain_id: genesis.chain_id.clone(),
            epoch: seisan_types::Epoch(0),
            view: View(7),
            height: Height(3),
            block: Hash([9; 32]),
            kind,
        };
        let notarize = sign_vote(&keypair, &genesis.hash(), member, vote(VoteKind::Notarize));
        let finalize = sign_vote(&keypair, &genesis.hash(), member, vote(VoteKind::Finalize));
        let outputs = fault.rewrite(vec![
            Output::Broadcast(ConsensusMessage::Vote(notarize.clone())),
            Output::Send {
                to: MemberId(0),
                message: ConsensusMessage::Vote(finalize.clone()),
            },
        ]);
        assert_eq!(outputs.len(), 4);
        let Output::Broadcast(ConsensusMessage::Vote(twin)) = &outputs[1] else {
            panic!("the notarize's twin is gossiped like it: {outputs:?}");
        };
        assert_eq!(twin.vote.view, notarize.vote.view);
        assert_eq!(twin.vote.kind, VoteKind::Notarize);
        assert_ne!(twin.vote.block, notarize.vote.block);
        seisan_crypto::verify_vote(&genesis, twin).unwrap();
        let evidence = seisan_types::Evidence {
            first: notarize,
            second: twin.clone(),
        };
        assert!(seisan_consensus::ConsensusEvidence::ConflictingVotes(evidence).verify(&genesis));
        let Output::Send {
            to: MemberId(0),
            message: ConsensusMessage::Vote(twin),
        } = &outputs[3]
        else {
            panic!("the finalize's twin goes directly to the same peer: {outputs:?}");
        };
        assert_eq!(twin.vote.kind, VoteKind::Finalize);
        assert_ne!(twin.vote.block, finalize.vote.block);
    }

    #[test]
    fn nullifies_and_other_members_votes_pass_unchanged() {
        let genesis = genesis();
        let (member, _) = genesis.member_by_name("exchange-a").unwrap();
        let fault = Equivocator::configured(
            Some(Fault::Equivocate),
            &genesis,
            &Keypair::dev("exchange-a"),
            member,
        )
        .unwrap()
        .unwrap();
        let nullify = Vote {
            chain_id: genesis.chain_id.clone(),
            epoch: seisan_types::Epoch(0),
            view: View(7),
            height: Height(0),
            block: Hash::ZERO,
            kind: VoteKind::Nullify,
        };
        let (other, _) = genesis.member_by_name("exchange-b").unwrap();
        let mut foreign = nullify.clone();
        foreign.kind = VoteKind::Notarize;
        foreign.height = Height(3);
        foreign.block = Hash([1; 32]);
        let outputs = fault.rewrite(vec![
            Output::Broadcast(ConsensusMessage::Vote(sign_vote(
                &Keypair::dev("exchange-a"),
                &genesis.hash(),
                member,
                nullify,
            ))),
            Output::Broadcast(ConsensusMessage::Vote(sign_vote(
                &Keypair::dev("exchange-b"),
                &genesis.hash(),
                other,
                foreign,
            ))),
        ]);
        assert_eq!(outputs.len(), 2);
    }

    #[test]
    fn an_observer_with_the_fault_votes_on_proposals_and_joins_nullifies() {
        let mut genesis = genesis();
        crate::genesis_command::add_observer(&mut genesis, 7101).unwrap();
        let (member, _) = genesis
            .member_by_name(crate::genesis_command::TESTNET_OBSERVER)
            .unwrap();
        let keypair = Keypair::dev(crate::genesis_command::TESTNET_OBSERVER);
        let fault = Equivocator::configured(Some(Fault::ObserverVotes), &genesis, &keypair, member)
            .unwrap()
            .unwrap();
        let block = seisan_types::Block {
            header: seisan_types::BlockHeader {
                chain_id: genesis.chain_id.clone(),
                epoch: seisan_types::Epoch(0),
                height: Height(4),
                view: View(5),
                parent: Hash([1; 32]),
                timestamp_ms: 1,
                proposer: MemberId(1),
                txs_root: seisan_types::Block::compute_txs_root(&[]),
                state_root: Hash([2; 32]),
                receipts_root: seisan_types::receipt::receipts_root(&[], &[]),
                epoch_end: None,
                next_validators: None,
            },
            txs: vec![],
        };
        let proposal = ConsensusMessage::Proposal(Box::new(seisan_consensus::Proposal {
            signature: seisan_types::Signature([0; 64]),
            block: block.clone(),
            justification: vec![],
        }));
        let outputs = fault.on_input(&Input::Message {
            from: MemberId(1),
            message: proposal,
        });
        let kinds: Vec<(VoteKind, Hash, MemberId)> = outputs
            .iter()
            .map(|output| match output {
                Output::Broadcast(ConsensusMessage::Vote(vote)) => {
                    seisan_crypto::verify_digest(
                        &keypair.public_key(),
                        &vote.vote.signing_digest(&genesis.hash()),
                        &vote.signature,
                    )
                    .unwrap();
                    (vote.vote.kind, vote.vote.block, vote.member)
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                (VoteKind::Notarize, block.hash(), member),
                (VoteKind::Finalize, block.hash(), member)
            ]
        );
        let nullify = |from: &str| {
            let (id, _) = genesis.member_by_name(from).unwrap();
            Input::Message {
                from: id,
                message: ConsensusMessage::Vote(sign_vote(
                    &Keypair::dev(from),
                    &genesis.hash(),
                    id,
                    Vote {
                        chain_id: genesis.chain_id.clone(),
                        epoch: seisan_types::Epoch(0),
                        view: View(6),
                        height: Height(0),
                        block: Hash::ZERO,
                        kind: VoteKind::Nullify,
                    },
                )),
            }
        };
        assert_eq!(fault.on_input(&nullify("exchange-a")).len(), 1);
        assert!(fault
            .on_input(&nullify(crate::genesis_command::TESTNET_OBSERVER))
            .is_empty());
        // The equivocating fault adds nothing on input.
        let (a, _) = genesis.member_by_name("exchange-a").unwrap();
        let equivocator = Equivocator::configured(
            Some(Fault::Equivocate),
            &genesis,
            &Keypair::dev("exchange-a"),
            a,
        )
        .unwrap()
        .unwrap();
        assert!(equivocator.on_input(&nullify("exchange-b")).is_empty());
    }

    #[test]
    fn a_production_chain_refuses_the_fault() {
        let mut genesis = genesis();
        genesis.chain_id = seisan_types::ChainId("seisan-mainnet".into());
        let (member, _) = genesis.member_by_name("exchange-a").unwrap();
        let keypair = Keypair::dev("exchange-a");
        let error = Equivocator::configured(Some(Fault::Equivocate), &genesis, &keypair, member)
            .unwrap_err();
        assert!(error.to_string().contains("not a dev chain"), "{error}");
        assert!(Equivocator::configured(None, &genesis, &keypair, member)
            .unwrap()
            .is_none());
    }

    #[test]
    fn lying_attestations_are_for_dev_chains_only_and_off_by_default() {
        let dev = genesis();
        assert!(lies_in_attestations(Some(Fault::LieAttestations), &dev).unwrap());
        assert!(!lies_in_attestations(None, &dev).unwrap());
        assert!(!lies_in_attestations(Some(Fault::Equivocate), &dev).unwrap());
        let mut production = genesis();
        production.chain_id = seisan_types::ChainId("seisan-mainnet".into());
        let error = lies_in_attestations(Some(Fault::LieAttestations), &production).unwrap_err();
        assert!(error.to_string().contains("not a dev chain"), "{error}");
        // The lying fault does not make the engine equivocate.
        let keypair = Keypair::dev("exchange-a");
        let (member, _) = dev.member_by_name("exchange-a").unwrap();
        assert!(
            Equivocator::configured(Some(Fault::LieAttestations), &dev, &keypair, member)
                .unwrap()
                .is_none()
        );
    }
}
