//! Unit tests of the engine: certificate handling, evidence, persistence gating,
//! restart refusal and finalization output.

use super::*;
use seisan_crypto::{assemble_certificate, sign_vote, verify_certificate, Keypair};
use seisan_types::genesis::{Member, Role};
use seisan_types::{
    Block, BlockHeader, ChainId, Epoch, Genesis, Hash, Height, MemberId, QuorumCertificate,
    Signature, SignedVote, View, Vote, VoteKind,
};

const CHAIN: &str = "unit-dev";

fn key(member: u32) -> Keypair {
    Keypair::dev(&format!("validator-{member}"))
}

fn genesis(n: u32, quorum: u32) -> Genesis {
    let members = (0..n)
        .map(|index| Member {
            name: format!("validator-{index}"),
            role: if index == 0 {
                Role::ClearingHouse
            } else {
                Role::Exchange
            },
            public_key: key(index).public_key(),
            validator: true,
            p2p_address: None,
        })
        .collect();
    let genesis = Genesis {
        chain_id: ChainId(CHAIN.into()),
        genesis_time_ms: 0,
        quorum,
        members,
        assets: vec![],
        pairs: vec![],
        opening_balances: vec![],
        settlement: Default::default(),
        public_chain: None,
    };
    genesis.validate().expect("test genesis is valid");
    genesis
}

/// The chain id and genesis hash of the engines' genesis ([`config`]).
fn domain() -> seisan_types::ChainDomain {
    genesis(3, 2).domain()
}

fn config(member: u32) -> Config {
    Config::genesis(&genesis(3, 2), MemberId(member), key(member))
}

fn started(member: u32, restored: Option<PersistedRecord>) -> (Engine, Vec<Output>) {
    let mut engine = Engine::new(
        config(member),
        FinalizedTip::genesis(),
        Restored {
            record: restored,
            ..Restored::default()
        },
    )
    .unwrap();
    let outputs = engine.step(0, Input::Start);
    (engine, outputs)
}

fn block(view: u64, height: u64, parent: Hash, salt: u8) -> Block {
    let proposer = leader_of(&genesis(3, 2).validators(), View(view));
    Block {
        header: BlockHeader {
            chain_id: ChainId(CHAIN.into()),
            epoch: seisan_types::Epoch(0),
            height: Height(height),
            view: View(view),
            parent,
            timestamp_ms: 1_000 + u64::from(salt),
            proposer,
            txs_root: Block::compute_txs_root(&[]),
            state_root: Hash([salt; 32]),
            receipts_root: seisan_types::receipt::receipts_root(&[], &[]),
            epoch_end: None,
            next_validators: None,
        },
        txs: vec![],
    }
}

fn proposal(block: Block, justification: Vec<QuorumCertificate>) -> ConsensusMessage {
    let leader = block.header.proposer;
    let digest = proposal_digest(&domain(), block.header.view, &block.hash());
    ConsensusMessage::Proposal(Box::new(Proposal {
        signature: key(leader.0).sign_digest(&digest),
        block,
        justification,
    }))
}

fn vote(kind: VoteKind, view: u64, height: u64, block: Hash) -> Vote {
    Vote {
        chain_id: ChainId(CHAIN.into()),
        epoch: seisan_types::Epoch(0),
        view: View(view),
        height: Height(height),
        block,
        kind,
    }
}

fn signed(member: u32, vote: Vote) -> SignedVote {
    sign_vote(&key(member), &domain().genesis, MemberId(member), vote)
}

fn certificate(members: &[u32], vote: Vote) -> QuorumCertificate {
    let votes: Vec<SignedVote> = members
        .iter()
        .map(|member| signed(*member, vote.clone()))
        .collect();
    assemble_certificate(vote, &votes)
}

fn message(from: u32, message: ConsensusMessage) -> Input {
    Input::Message {
        from: MemberId(from),
        message,
    }
}

fn evidence(outputs: &[Output]) -> Vec<ConsensusEvidence> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Evidence(evidence) => Some(evidence.clone()),
            _ => None,
        })
        .collect()
}

fn broadcast_votes(outputs: &[Output]) -> Vec<SignedVote> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Broadcast(ConsensusMessage::Vote(vote)) => Some(vote.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_valid_notarization_moves_the_view_and_is_forwarded() {
    let (mut engine, _) = started(0, None);
    assert_eq!(engine.view(), View(1));
    let notarization = certificate(&[1, 2], vote(VoteKind::Notarize, 1, 1, Hash([7; 32])));
    let outputs = engine.step(
        10,
        message(1, ConsensusMessage::Certificate(notarization.clone())),
    );
    assert_eq!(engine.view(), View(2));
    assert!(outputs.iter().any(|output| matches!(
        output,
        Output::Broadcast(ConsensusMessage::Certificate(forwarded)) if *forwarded == notarization
    )));
}

#[test]
fn bad_certificates_change_nothing() {
    let good = certificate(&[1, 2], vote(VoteKind::Nullify, 1, 0, Hash::ZERO));
    assert_eq!(verify_certificate(&genesis(3, 2), &good), Ok(()));

    let too_few = certificate(&[1], good.vote.clone());
    let mut duplicate_signer = too_few.clone();
    duplicate_signer
        .signatures
        .push(duplicate_signer.signatures[0]);
    let mut wrong_chain = good.clone();
    wrong_chain.vote.chain_id = ChainId("other-dev".into());
    let wrong_chain = certificate(&[1, 2], wrong_chain.vote);
    let mut outsider = certificate(&[1], good.vote.clone());
    outsider.signatures.push((
        MemberId(7),
        key(7).sign_digest(&good.vote.signing_digest(&domain().genesis)),
    ));
    let mut forged = good.clone();
    forged.signatures[1].1 = Signature([3; 64]);
    let mut relabelled = good.clone();
    relabelled.vote.view = View(2);

    for bad in [
        too_few,
        duplicate_signer,
        wrong_chain,
        outsider,
        forged,
        relabelled,
    ] {
        let (mut engine, _) = started(0, None);
        let outputs = engine.step(10, message(1, ConsensusMessage::Certificate(bad.clone())));
        assert_eq!(engine.view(), View(1), "accepted {bad:?}");
        assert!(
            !outputs.iter().any(|output| matches!(
                output,
                Output::Broadcast(ConsensusMessage::Certificate(_))
            )),
            "forwarded {bad:?}"
        );
    }
}

#[test]
fn a_double_notarize_is_reported_once_with_verifiable_evidence() {
    let (mut engine, _) = started(0, None);
    let first = signed(2, vote(VoteKind::Notarize, 1, 1, Hash([1; 32])));
    let second = signed(2, vote(VoteKind::Notarize, 1, 1, Hash([2; 32])));
    let third = signed(2, vote(VoteKind::Notarize, 1, 1, Hash([3; 32])));
    assert!(
        evidence(&engine.step(1, message(2, ConsensusMessage::Vote(first.clone())))).is_empty()
    );
    let found = evidence(&engine.step(2, message(2, ConsensusMessage::Vote(second.clone()))));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].member(), MemberId(2));
    assert!(found[0].verify(&genesis(3, 2)));
    assert_eq!(
        found[0],
        ConsensusEvidence::ConflictingVotes(seisan_types::Evidence { first, second })
    );
    assert!(evidence(&engine.step(3, message(2, ConsensusMessage::Vote(third)))).is_empty());
}

#[test]
fn a_forged_conflicting_vote_is_not_evidence() {
    let (mut engine, _) = started(0, None);
    let first = signed(2, vote(VoteKind::Notarize, 1, 1, Hash([1; 32])));
    let mut forged = signed(1, vote(VoteKind::Notarize, 1, 1, Hash([2; 32])));
    forged.member = MemberId(2);
    engine.step(1, message(2, ConsensusMessage::Vote(first)));
    assert!(evidence(&engine.step(2, message(1, ConsensusMessage::Vote(forged)))).is_empty());
}

#[test]
fn finalize_and_nullify_in_one_view_is_evidence() {
    let (mut engine, _) = started(0, None);
    let finalize = signed(1, vote(VoteKind::Finalize, 1, 1, Hash([1; 32])));
    let nullify = signed(1, vote(VoteKind::Nullify, 1, 0, Hash::ZERO));
    engine.step(1, message(1, ConsensusMessage::Vote(finalize)));
    let found = evidence(&engine.step(2, message(1, ConsensusMessage::Vote(nullify))));
    assert_eq!(found.len(), 1);
    assert!(matches!(
        found[0],
        ConsensusEvidence::FinalizeAndNullify { .. }
    ));
    assert!(found[0].verify(&genesis(3, 2)));
}

#[test]
fn two_proposals_from_one_leader_are_evidence() {
    // Leader of view 1 among three validators is member 1.
    let (mut engine, _) = started(0, None);
    engine.step(1, message(1, proposal(block(1, 1, Hash::ZERO, 1), vec![])));
    let found = evidence(&engine.step(2, message(1, proposal(block(1, 1, Hash::ZERO, 2), vec![]))));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kind(), EvidenceKind::Proposal);
    assert!(found[0].verify(&genesis(3, 2)));
}

/// Validator 2, started fresh, receives the leader's proposal for view 1 and the
/// application answers its verification with `valid`; returns the engine, the block
/// and that step's outputs.
fn verified_proposal(valid: bool) -> (Engine, Block, Vec<Output>) {
    let (mut engine, _) = started(2, None);
    let proposed = block(1, 1, Hash::ZERO, 1);
    engine.step(1, message(1, proposal(proposed.clone(), vec![])));
    let outputs = engine.step(
        2,
        Input::ProposalVerified {
            view: View(1),
            block: proposed.hash(),
            valid,
        },
    );
    (engine, proposed, outputs)
}

#[test]
fn a_vote_is_released_only_after_its_record_is_durable() {
    let (mut engine, _) = started(2, None);
    let proposed = block(1, 1, Hash::ZERO, 1);
    let outputs = engine.step(1, message(1, proposal(proposed.clone(), vec![])));
    let asked = outputs.iter().any(|output| {
        matches!(output, Output::VerifyProposal { block, ancestors, .. }
            if *block == proposed && ancestors.is_empty())
    });
    assert!(
        asked,
        "execute before vote: the engine must ask the application"
    );
    let outputs = engine.step(
        2,
        Input::ProposalVerified {
            view: View(1),
            block: proposed.hash(),
            valid: true,
        },
    );
    assert!(
        broadcast_votes(&outputs).is_empty(),
        "voted before persisting"
    );
    let sequence = outputs
        .iter()
        .find_map(|output| match output {
            Output::Persist {
                sequence,
                record,
                block,
                ..
            } => {
                assert_eq!(record.view, View(1));
                assert_eq!(record.notarized, Some(proposed.hash()));
                assert_eq!(block.as_deref(), Some(&proposed), "the voted block is kept");
                Some(*sequence)
            }
            _ => None,
        })
        .expect("a persist output");
    let outputs = engine.step(3, Input::Persisted { sequence });
    let votes = broadcast_votes(&outputs);
    assert_eq!(votes.len(), 1);
    assert_eq!(votes[0].vote.kind, VoteKind::Notarize);
    assert_eq!(votes[0].vote.block, proposed.hash());
}

#[test]
fn an_invalid_block_gets_no_vote() {
    let (_, _, outputs) = verified_proposal(false);
    assert!(!outputs
        .iter()
        .any(|output| matches!(output, Output::Persist { .. })));
}

#[test]
fn a_restarted_engine_refuses_to_vote_for_another_block_in_its_view() {
    let earlier = block(1, 1, Hash::ZERO, 1);
    let restored = PersistedRecord::default().with(View(1), Signing::Notarize(earlier.hash()));
    let (mut engine, _) = started(2, Some(restored));
    assert_eq!(engine.view(), View(1));
    let other = block(1, 1, Hash::ZERO, 2);
    let outputs = engine.step(1, message(1, proposal(other, vec![])));
    assert!(!outputs.iter().any(|output| matches!(
        output,
        Output::VerifyProposal { .. } | Output::Persist { .. }
    )));
}

#[test]
fn a_timeout_nullifies_and_a_finalization_outputs_blocks_in_order() {
    let (mut engine, _) = started(0, None);
    let outputs = engine.step(Timeouts::default().view_timeout_ms, Input::Tick);
    let record = outputs
        .iter()
        .find_map(|output| match output {
            Output::Persist { record, .. } => Some(record.clone()),
            _ => None,
        })
        .expect("nullify is persisted first");
    assert!(record.nullified);

    // Blocks 1 (view 1) and 2 (view 2) arrive; a finalization of block 2 finalizes both.
    let first = block(1, 1, Hash::ZERO, 1);
    let second = block(2, 2, first.hash(), 2);
    let finalization = certificate(&[1, 2], vote(VoteKind::Finalize, 2, 2, second.hash()));
    engine.step(
        3_000,
        message(1, ConsensusMessage::Certificate(finalization.clone())),
    );
    let outputs = engine.step(
        3_001,
        Input::Fetched {
            from: MemberId(1),
            response: FetchResponse {
                blocks: vec![first.clone(), second.clone()],
                certificates: vec![],
            },
        },
    );
    let finalized: Vec<&FinalizedBlock> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Finalized(finalized) => Some(finalized),
            _ => None,
        })
        .collect();
    assert_eq!(finalized.len(), 2);
    assert_eq!(finalized[0].block, first);
    assert_eq!(finalized[1].block, second);
    assert_eq!(finalized[1].certificate, finalization);
    assert_eq!(engine.finalized_tip().height, Height(2));
    assert_eq!(engine.view(), View(3));
}

#[test]
fn fetched_blocks_nobody_vouches_for_are_dropped() {
    let (mut engine, _) = started(0, None);
    let stray = block(1, 1, Hash::ZERO, 9);
    engine.step(
        1,
        Input::Fetched {
            from: MemberId(1),
            response: FetchResponse {
                blocks: vec![stray.clone()],
                certificates: vec![],
            },
        },
    );
    assert!(engine.known_block(&stray.hash()).is_none());
}

#[test]
fn a_lagging_node_fetches_a_finalized_block_it_lacks() {
    let (mut engine, _) = started(0, None);
    let far = block(40, 1, Hash::ZERO, 4);
    let finalization = certificate(&[1, 2], vote(VoteKind::Finalize, 40, 1, far.hash()));
    let outputs = engine.step(5, message(2, ConsensusMessage::Certificate(finalization)));
    assert_eq!(engine.view(), View(41));
    assert!(outputs.iter().any(|output| matches!(
        output,
        Output::Fetch(FetchRequest { from_height: Height(1), target, target_height: Height(1) })
            if *target == far.hash()
    )));
}

#[test]
fn kept_certificates_move_a_restarted_engine_on_and_are_forwarded() {
    let nullification = certificate(&[0, 1], vote(VoteKind::Nullify, 5, 0, Hash::ZERO));
    let mut forged = nullification.clone();
    forged.vote.view = View(9);
    let mut engine = Engine::new(
        config(2),
        FinalizedTip::genesis(),
        Restored {
            record: Some(PersistedRecord::default().with(View(5), Signing::Nullify)),
            blocks: vec![],
            certificates: vec![nullification.clone(), forged],
            fenced: false,
        },
    )
    .unwrap();
    assert_eq!(engine.view(), View(5));
    let outputs = engine.step(0, Input::Start);
    assert_eq!(
        engine.view(),
        View(6),
        "the forged kept certificate must be refused"
    );
    assert!(outputs.iter().any(|output| matches!(
        output,
        Output::Broadcast(ConsensusMessage::Certificate(forwarded)) if *forwarded == nullification
    )));
}

#[test]
fn signing_in_a_new_view_keeps_the_certificate_that_entered_it() {
    let (mut engine, _) = started(0, None);
    let nullification = certificate(&[1, 2], vote(VoteKind::Nullify, 1, 0, Hash::ZERO));
    engine.step(
        1,
        message(1, ConsensusMessage::Certificate(nullification.clone())),
    );
    assert_eq!(engine.view(), View(2));
    let outputs = engine.step(1 + Timeouts::default().view_timeout_ms, Input::Tick);
    let kept = outputs.iter().find_map(|output| match output {
        Output::Persist {
            record,
            certificate,
            ..
        } if record.view == View(2) => Some(certificate.clone()),
        _ => None,
    });
    assert_eq!(kept, Some(Some(nullification)));
}

/// Heights of the blocks `outputs` finalize, in output order.
fn finalized_heights(outputs: &[Output]) -> Vec<u64> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Finalized(finalized) => Some(finalized.block.header.height.0),
            _ => None,
        })
        .collect()
}

struct Chain(Vec<FinalizedBlock>);

impl FinalizedStore for Chain {
    fn finalized_height(&self) -> Height {
        Height(self.0.len() as u64)
    }

    fn finalized_block(&self, height: Height) -> Option<FinalizedBlock> {
        self.0.get((height.0 as usize).checked_sub(1)?).cloned()
    }
}

#[test]
fn fetch_answers_are_bounded_and_a_lagging_engine_accepts_them() {
    // A served chain of 100 blocks, each finalized directly.
    let mut blocks = Vec::new();
    let mut parent = Hash::ZERO;
    for height in 1..=100u64 {
        let next = block(height, height, parent, (height % 250) as u8);
        parent = next.hash();
        let certificate = certificate(
            &[0, 1],
            vote(VoteKind::Finalize, height, height, next.hash()),
        );
        blocks.push(FinalizedBlock {
            block: next,
            certificate,
            seals: vec![],
        });
    }
    let store = Chain(blocks.clone());
    let request = FetchRequest {
        from_height: Height(1),
        target: blocks[99].block.hash(),
        target_height: Height(100),
    };
    let response = answer_fetch(&request, &store, None);
    assert_eq!(response.blocks.len(), fetch::MAX_FETCH_BLOCKS);
    assert_eq!(response.blocks[0], blocks[0].block);
    assert!(response.check_bounds().is_ok());

    let (mut engine, _) = started(2, None);
    let outputs = engine.step(
        1,
        Input::Fetched {
            from: MemberId(0),
            response,
        },
    );
    let heights = finalized_heights(&outputs);
    let expected: Vec<u64> = (1..=fetch::MAX_FETCH_BLOCKS as u64).collect();
    assert_eq!(heights, expected);
}

#[test]
fn a_node_more_than_the_retained_views_behind_catches_up_from_fetched_runs() {
    // A wiped node hears the live finalization first (and enters its view, far more
    // than MAX_RETAINED_VIEWS above the blocks it lacks), then gets the finalized run
    // above its tip: the run's own finalizations must still vouch for those blocks.
    let length = crate::MAX_RETAINED_VIEWS + 100;
    let mut blocks = Vec::new();
    let mut parent = Hash::ZERO;
    for height in 1..=length {
        let next = block(height, height, parent, (height % 250) as u8);
        parent = next.hash();
        blocks.push(next);
    }
    let finalization = |block: &Block| {
        certificate(
            &[0, 1],
            vote(
                VoteKind::Finalize,
                block.header.view.0,
                block.header.height.0,
                block.hash(),
            ),
        )
    };
    let (mut engine, _) = started(2, None);
    let top = blocks.last().unwrap();
    let outputs = engine.step(
        1,
        message(0, ConsensusMessage::Certificate(finalization(top))),
    );
    assert!(outputs.iter().any(
        |output| matches!(output, Output::Fetch(request) if request.from_height == Height(1))
    ));
    assert_eq!(engine.view(), View(length + 1));
    let run = 10u64;
    let response = FetchResponse {
        blocks: blocks[..run as usize].to_vec(),
        certificates: blocks[..run as usize].iter().map(finalization).collect(),
    };
    let outputs = engine.step(
        2,
        Input::Fetched {
            from: MemberId(0),
            response,
        },
    );
    let heights = finalized_heights(&outputs);
    assert_eq!(heights, (1..=run).collect::<Vec<u64>>());
    // The run made progress, so it asks at once for the next one, toward the live
    // finalization.
    assert!(outputs.iter().any(
        |output| matches!(output, Output::Fetch(request) if request.from_height == Height(run + 1))
    ));
}

/// The direct sends of one step: (to, status).
fn statuses_sent(outputs: &[Output]) -> Vec<(MemberId, PeerStatus)> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Send {
                to,
                message: ConsensusMessage::Status(status),
            } => Some((*to, (**status).clone())),
            _ => None,
        })
        .collect()
}

fn released(engine: &mut Engine, now: u64, outputs: Vec<Output>) -> Vec<Output> {
    let mut all = outputs.clone();
    for output in outputs {
        if let Output::Persist { sequence, .. } = output {
            all.extend(engine.step(now, Input::Persisted { sequence }));
        }
    }
    all
}

#[test]
fn retries_after_a_timeout_go_directly_to_every_peer_and_repeat() {
    // R9/R13: gossip drops a second publication of the same bytes, so the re-sends
    // of a stuck view must be direct sends, and must repeat every retry.
    let (mut engine, _) = started(0, None);
    let timeout = Timeouts::default().view_timeout_ms;
    let outputs = engine.step(timeout, Input::Tick);
    let outputs = released(&mut engine, timeout, outputs);
    assert_eq!(
        broadcast_votes(&outputs).len(),
        1,
        "the nullify is gossiped once"
    );
    let mut previous = None;
    for retry in 1..=3 {
        let now = timeout + retry * Timeouts::default().retry_ms;
        let outputs = engine.step(now, Input::Tick);
        assert!(
            !outputs
                .iter()
                .any(|output| matches!(output, Output::Broadcast(_))),
            "nothing is re-gossiped"
        );
        let sent = statuses_sent(&outputs);
        let peers: Vec<MemberId> = sent.iter().map(|(to, _)| *to).collect();
        assert_eq!(peers, vec![MemberId(1), MemberId(2)]);
        let status = sent[0].1.clone();
        let nullify = status
            .nullify
            .clone()
            .expect("the status carries the nullify");
        assert_eq!(nullify.vote.kind, VoteKind::Nullify);
        assert_eq!(nullify.vote.view, View(1));
        if let Some(previous) = previous.replace(status.clone()) {
            assert_eq!(
                previous, status,
                "the same bytes again: only direct sends allow that"
            );
        }
    }
}

#[test]
fn a_peer_that_connects_gets_the_status_at_once() {
    let (mut engine, _) = started(0, None);
    let notarization = certificate(&[1, 2], vote(VoteKind::Notarize, 1, 1, Hash([5; 32])));
    engine.step(
        10,
        message(1, ConsensusMessage::Certificate(notarization.clone())),
    );
    let outputs = engine.step(20, Input::PeerConnected { peer: MemberId(2) });
    let sent = statuses_sent(&outputs);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, MemberId(2));
    assert_eq!(sent[0].1.view, View(2));
    assert_eq!(sent[0].1.certificates, vec![notarization]);
    // A node's own connection event and a stranger's are ignored.
    assert!(statuses_sent(&engine.step(21, Input::PeerConnected { peer: MemberId(0) })).is_empty());
    assert!(statuses_sent(&engine.step(22, Input::PeerConnected { peer: MemberId(9) })).is_empty());
}

#[test]
fn a_quorum_is_back_after_an_outage_when_statuses_are_exchanged() {
    // Defect 1 of issue 14, at the engine level: validator 0 is alone in view 1 after
    // a timeout; validator 1 comes back from a crash. Nothing is gossiped again; the
    // statuses exchanged on connection and on retries must form the nullification.
    let (mut alone, _) = started(0, None);
    let timeout = Timeouts::default().view_timeout_ms;
    let outputs = alone.step(timeout, Input::Tick);
    released(&mut alone, timeout, outputs);
    let (mut back, _) = started(1, None);
    let now = 60_000;
    let to_back = alone.step(now, Input::PeerConnected { peer: MemberId(1) });
    back.step(now, Input::PeerConnected { peer: MemberId(0) });
    for (to, status) in statuses_sent(&to_back) {
        assert_eq!(to, MemberId(1));
        back.step(now, message(0, ConsensusMessage::Status(Box::new(status))));
    }
    // The returning node times out in view 1 too and nullifies; its nullify reaches
    // the other node directly with its next retry or status.
    let outputs = back.step(now + timeout, Input::Tick);
    let outputs = released(&mut back, now + timeout, outputs);
    let mut nullify = broadcast_votes(&outputs);
    assert_eq!(nullify.len(), 1);
    let outputs = alone.step(
        now + timeout,
        message(1, ConsensusMessage::Vote(nullify.pop().unwrap())),
    );
    assert_eq!(alone.view(), View(2), "the nullification moved the view");
    assert!(outputs.iter().any(|output| matches!(
        output,
        Output::Broadcast(ConsensusMessage::Certificate(certificate))
            if certificate.vote.kind == VoteKind::Nullify
    )));
}

#[test]
fn a_peer_behind_is_helped_and_a_node_behind_knows_it_is_syncing() {
    // Node 0 has finalized height 1; node 1 restarts at genesis.
    let first = block(1, 1, Hash::ZERO, 1);
    let finalization = certificate(&[0, 2], vote(VoteKind::Finalize, 1, 1, first.hash()));
    let mut ahead = Engine::new(
        config(0),
        FinalizedTip {
            height: Height(1),
            hash: first.hash(),
            view: View(1),
            certificate: Some(finalization.clone()),
        },
        Restored::default(),
    )
    .unwrap();
    ahead.step(0, Input::Start);
    let (mut behind, _) = started(1, None);
    assert!(behind.sync_state().syncing, "no peer heard yet");
    assert!(ahead.sync_state().syncing, "no peer heard yet");
    let to_ahead = behind.step(5, Input::PeerConnected { peer: MemberId(0) });
    ahead.step(5, Input::PeerConnected { peer: MemberId(1) });
    let (_, status) = statuses_sent(&to_ahead).pop().unwrap();
    assert_eq!(status.tip_height, Height(0));
    let help = ahead.step(
        6,
        message(1, ConsensusMessage::Status(Box::new(status.clone()))),
    );
    assert!(
        !ahead.sync_state().syncing,
        "one peer heard makes a quorum of two"
    );
    let (to, help) = statuses_sent(&help)
        .pop()
        .expect("the peer behind is helped");
    assert_eq!(to, MemberId(1));
    assert_eq!(help.certificates[0], finalization);
    // Help is rate limited per view: the same question at once gets no second answer.
    let again = ahead.step(7, message(1, ConsensusMessage::Status(Box::new(status))));
    assert!(statuses_sent(&again).is_empty());
    let outputs = behind.step(8, message(0, ConsensusMessage::Status(Box::new(help))));
    let sync = behind.sync_state();
    assert!(sync.syncing);
    assert_eq!(sync.best_known_height, Height(1));
    assert_eq!(sync.behind_by(), 1);
    assert!(outputs
        .iter()
        .any(|output| matches!(output, Output::Fetch(_))));
    behind.step(
        9,
        Input::Fetched {
            from: MemberId(0),
            response: FetchResponse {
                blocks: vec![first],
                certificates: vec![],
            },
        },
    );
    assert!(!behind.sync_state().syncing);
    // A lost connection makes the node unsure again.
    behind.step(10, Input::PeerDisconnected { peer: MemberId(0) });
    assert!(behind.sync_state().syncing);
}

#[test]
fn a_finalize_vote_leaves_only_once_its_notarization_is_kept() {
    // R10: after a crash of every validator, a view whose finalize signers cannot
    // nullify ends only through its notarization, so it must be on their disks.
    let (mut engine, proposed, outputs) = verified_proposal(true);
    released(&mut engine, 2, outputs);
    let notarization = certificate(&[1, 2], vote(VoteKind::Notarize, 1, 1, proposed.hash()));
    let outputs = engine.step(
        3,
        message(1, ConsensusMessage::Certificate(notarization.clone())),
    );
    assert!(
        broadcast_votes(&outputs).is_empty(),
        "finalize before persisting"
    );
    let kept = outputs
        .iter()
        .find_map(|output| match output {
            Output::Persist {
                record,
                certificate,
                ..
            } if record.finalized == Some(proposed.hash()) => Some(certificate.clone()),
            _ => None,
        })
        .expect("the finalize vote is persisted first");
    assert_eq!(kept, Some(notarization.clone()));
    // Restarted from that record and certificate alone, it moves past view 1.
    let record = engine.record().clone();
    let mut restarted = Engine::new(
        config(2),
        FinalizedTip::genesis(),
        Restored {
            record: Some(record),
            blocks: vec![proposed],
            certificates: vec![notarization],
            fenced: false,
        },
    )
    .unwrap();
    restarted.step(10, Input::Start);
    assert_eq!(restarted.view(), View(2));
}

#[test]
fn a_peer_claiming_a_height_it_cannot_prove_does_not_hold_a_node_in_syncing() {
    // A lying member's status names a far height and view with no certificate:
    // only verified finalizations count as "behind", so the node stays in sync, keeps
    // its view, and sends nothing back (a peer that claims to be ahead is not helped).
    let (mut engine, _) = started(0, None);
    engine.step(1, Input::PeerConnected { peer: MemberId(1) });
    let lie = PeerStatus {
        epoch: Epoch(0),
        view: View(9_999),
        tip_height: Height(9_999),
        certificates: vec![],
        nullify: None,
        recipient_signed: vec![],
    };
    let outputs = engine.step(2, message(1, ConsensusMessage::Status(Box::new(lie))));
    let sync = engine.sync_state();
    assert!(!sync.syncing, "{sync:?}");
    assert_eq!(sync.best_known_height, Height(0));
    assert_eq!(engine.view(), View(1));
    assert!(
        statuses_sent(&outputs).is_empty(),
        "it is not behind, so it is not helped"
    );
}

// ---------------------------------------------------------------- epochs (E1..E6)

fn epoch_config(member: MemberId, keypair: Keypair, epoch: u64, epoch_end: Option<u64>) -> Config {
    let mut config = Config::genesis(&genesis(3, 2), member, keypair);
    config.validators.epoch = Epoch(epoch);
    config.epoch_end = epoch_end.map(Height);
    config
}

fn persisted_blocks(outputs: &[Output]) -> Vec<Block> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Persist {
                block: Some(block), ..
            } => Some((**block).clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_last_block_of_an_epoch_is_output_with_its_seals_and_the_engine_hands_over() {
    // Epoch 0 ends at height 1. Member 2 leads view 2, so it must seal block 1
    // itself (E4), and a finalized seal makes block 1 final and ends the epoch (E5).
    let mut engine = Engine::new(
        epoch_config(MemberId(2), key(2), 0, Some(1)),
        FinalizedTip::genesis(),
        Restored::default(),
    )
    .unwrap();
    engine.step(0, Input::Start);
    let mut last = block(1, 1, Hash::ZERO, 1);
    last.header.epoch_end = Some(Height(1));
    engine.step(1, message(1, proposal(last.clone(), vec![])));
    let verified = engine.step(
        2,
        Input::ProposalVerified {
            view: View(1),
            block: last.hash(),
            valid: true,
        },
    );
    released(&mut engine, 3, verified);
    let notarization = certificate(&[0, 1], vote(VoteKind::Notarize, 1, 1, last.hash()));
    let outputs = engine.step(4, message(0, ConsensusMessage::Certificate(notarization)));
    assert!(
        !outputs
            .iter()
            .any(|output| matches!(output, Output::BuildProposal { .. })),
        "above the epoch's end the application is never asked to build"
    );
    let seal = persisted_blocks(&outputs)
        .into_iter()
        .find(|block| block.header.height == Height(2))
        .expect("the leader of view 2 seals the epoch's last block");
    assert!(seal.txs.is_empty());
    assert_eq!(seal.header.parent, last.hash());
    assert_eq!(seal.header.state_root, last.header.state_root);
    assert_eq!(seal.header.timestamp_ms, last.header.timestamp_ms);
    assert_eq!(seal.header.view, View(2));

    let finalization = certificate(&[0, 1], vote(VoteKind::Finalize, 2, 2, seal.hash()));
    let outputs = engine.step(
        5,
        message(0, ConsensusMessage::Certificate(finalization.clone())),
    );
    let finalized: Vec<&FinalizedBlock> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Finalized(finalized) => Some(finalized),
            _ => None,
        })
        .collect();
    assert_eq!(finalized.len(), 1, "a seal is never output as a block");
    assert_eq!(finalized[0].block, last);
    assert_eq!(finalized[0].seals, vec![seal]);
    assert_eq!(finalized[0].certificate, finalization);
    assert!(matches!(
        outputs.last(),
        Some(Output::EpochEnded {
            epoch: Epoch(0),
            last_height: Height(1)
        })
    ));
    assert!(engine.has_ended());
    assert!(
        engine.sync_state().syncing,
        "a spent engine answers nothing"
    );
    assert!(engine.step(6, Input::Tick).is_empty());
    assert!(engine
        .step(7, message(1, proposal(block(3, 2, last.hash(), 3), vec![])))
        .is_empty());
}

#[test]
fn a_seal_that_changes_anything_gets_no_vote() {
    let mut engine = Engine::new(
        epoch_config(MemberId(0), key(0), 0, Some(1)),
        FinalizedTip::genesis(),
        Restored::default(),
    )
    .unwrap();
    engine.step(0, Input::Start);
    let mut last = block(1, 1, Hash::ZERO, 1);
    last.header.epoch_end = Some(Height(1));
    engine.step(1, message(1, proposal(last.clone(), vec![])));
    let notarization = certificate(&[1, 2], vote(VoteKind::Notarize, 1, 1, last.hash()));
    engine.step(2, message(1, ConsensusMessage::Certificate(notarization)));
    // View 2's leader (member 2) proposes a block at height 2 > L that moves the state.
    let mut not_a_seal = block(2, 2, last.hash(), 2);
    not_a_seal.header.timestamp_ms = last.header.timestamp_ms;
    not_a_seal.header.epoch_end = last.header.epoch_end;
    let outputs = engine.step(3, message(2, proposal(not_a_seal.clone(), vec![])));
    assert!(
        !outputs
            .iter()
            .any(|output| matches!(output, Output::VerifyProposal { .. })),
        "the engine checks seals itself"
    );
    assert!(broadcast_votes(&released(&mut engine, 4, outputs))
        .iter()
        .all(|vote| vote.vote.block != not_a_seal.hash()));
}

#[test]
fn an_observer_finalizes_but_never_signs() {
    let outsider = Keypair::dev("auditor");
    let mut engine = Engine::new(
        epoch_config(OBSERVER, outsider, 0, None),
        FinalizedTip::genesis(),
        Restored::default(),
    )
    .unwrap();
    assert!(!engine.is_voting());
    let mut outputs = engine.step(0, Input::Start);
    let first = block(1, 1, Hash::ZERO, 1);
    outputs.extend(engine.step(1, message(1, proposal(first.clone(), vec![]))));
    outputs.extend(engine.step(
        2,
        message(
            1,
            ConsensusMessage::Certificate(certificate(
                &[1, 2],
                vote(VoteKind::Notarize, 1, 1, first.hash()),
            )),
        ),
    ));
    outputs.extend(engine.step(Timeouts::default().view_timeout_ms * 3, Input::Tick));
    outputs.extend(engine.step(
        Timeouts::default().view_timeout_ms * 3 + 1,
        message(
            1,
            ConsensusMessage::Certificate(certificate(
                &[0, 2],
                vote(VoteKind::Finalize, 1, 1, first.hash()),
            )),
        ),
    ));
    assert!(outputs
        .iter()
        .any(|output| matches!(output, Output::Finalized(finalized) if finalized.block == first)));
    assert!(!outputs.iter().any(|output| matches!(
        output,
        Output::Persist { .. } | Output::VerifyProposal { .. } | Output::BuildProposal { .. }
    )));
}

#[test]
fn votes_and_certificates_of_another_epoch_count_for_nothing() {
    let (mut engine, _) = started(0, None);
    let first = block(1, 1, Hash::ZERO, 1);
    let mut later = vote(VoteKind::Notarize, 1, 1, first.hash());
    later.epoch = Epoch(1);
    let outputs = engine.step(
        1,
        message(
            1,
            ConsensusMessage::Certificate(certificate(&[1, 2], later.clone())),
        ),
    );
    assert_eq!(
        engine.view(),
        View(1),
        "a certificate of epoch 1 moved epoch 0"
    );
    assert!(outputs.is_empty());
    engine.step(
        2,
        message(1, ConsensusMessage::Vote(signed(1, later.clone()))),
    );
    engine.step(3, message(2, ConsensusMessage::Vote(signed(2, later))));
    assert_eq!(
        engine.view(),
        View(1),
        "votes of epoch 1 formed a certificate in 0"
    );
}

#[test]
fn the_next_epochs_engine_starts_on_the_last_block_and_signs_its_own_epoch() {
    let last = block(1, 1, Hash::ZERO, 1);
    let finalized = FinalizedBlock {
        certificate: certificate(&[0, 1], vote(VoteKind::Finalize, 1, 1, last.hash())),
        block: last.clone(),
        seals: vec![],
    };
    // A record of epoch 0 (view 7) does not hold back epoch 1, whose views restart.
    let old_record = PersistedRecord {
        view: View(7),
        nullified: true,
        ..PersistedRecord::starting(Epoch(0))
    };
    let mut engine = Engine::new(
        epoch_config(MemberId(0), key(0), 1, None),
        FinalizedTip::epoch_base(&finalized),
        Restored {
            record: Some(old_record),
            ..Restored::default()
        },
    )
    .unwrap();
    engine.step(0, Input::Start);
    assert_eq!(engine.view(), View(1));
    assert_eq!(engine.finalized_tip().height, Height(1));
    let outputs = engine.step(Timeouts::default().view_timeout_ms, Input::Tick);
    let outputs = released(&mut engine, Timeouts::default().view_timeout_ms, outputs);
    let nullify = broadcast_votes(&outputs)
        .into_iter()
        .find(|vote| vote.vote.kind == VoteKind::Nullify)
        .expect("the new epoch's engine votes");
    assert_eq!(nullify.vote.epoch, Epoch(1));
    assert_eq!(nullify.vote.view, View(1));
}

#[test]
fn a_peer_in_a_later_epoch_makes_a_node_fetch_the_finalized_run() {
    let (mut engine, _) = started(0, None);
    engine.step(1, Input::PeerConnected { peer: MemberId(1) });
    let later = PeerStatus {
        epoch: Epoch(2),
        view: View(3),
        tip_height: Height(40),
        certificates: vec![],
        nullify: None,
        recipient_signed: vec![],
    };
    let outputs = engine.step(2, message(1, ConsensusMessage::Status(Box::new(later))));
    let asked = outputs.iter().any(|output| {
        matches!(output, Output::Fetch(request)
            if request.from_height == Height(1) && request.target == Hash::ZERO && request.target_height == Height(40))
    });
    assert!(asked, "{outputs:?}");
    assert!(engine.sync_state().later_epoch_seen);
}

/// A build without the `test-hooks` feature (every release binary) has no broken rules
/// to switch on: an engine asked for one refuses to start rather than run honestly
/// under a config that says otherwise.
#[cfg(not(feature = "test-hooks"))]
#[test]
fn bug_injection_is_refused_without_the_test_hooks_feature() {
    for requested in [
        crate::BugInjection {
            count_duplicate_votes: true,
            ..Default::default()
        },
        crate::BugInjection {
            release_before_persist: true,
            ..Default::default()
        },
    ] {
        let config = Config {
            bug_injection: requested,
            ..config(0)
        };
        let error = Engine::new(config, FinalizedTip::genesis(), Restored::default()).unwrap_err();
        assert_eq!(error, EngineError::BugInjectionUnavailable { requested });
    }
    assert!(Engine::new(config(0), FinalizedTip::genesis(), Restored::default()).is_ok());
}

// ---------------------------------------------------------------- the fence (R14)

fn restored_fenced(member: u32, record: Option<PersistedRecord>) -> Engine {
    let mut engine = Engine::new(
        config(member),
        FinalizedTip::genesis(),
        Restored {
            record,
            fenced: true,
            ..Restored::default()
        },
    )
    .unwrap();
    engine.step(0, Input::Start);
    engine
}

fn persisted_records(outputs: &[Output]) -> Vec<PersistedRecord> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Persist { record, .. } => Some(record.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_restored_validator_learns_its_later_vote_from_a_peer_and_never_contradicts_it() {
    // Validator 2's real life: it notarized block b in view 1 after its backup was taken.
    let (mut live, proposed, outputs) = verified_proposal(true);
    let outputs = released(&mut live, 3, outputs);
    let notarize = broadcast_votes(&outputs).pop().expect("2 notarized b");
    // Validator 0 holds that vote and, when 2 connects, sends it back in its status.
    let (mut peer, _) = started(0, None);
    peer.step(1, message(1, proposal(proposed.clone(), vec![])));
    peer.step(2, message(2, ConsensusMessage::Vote(notarize.clone())));
    let (to, status) = statuses_sent(&peer.step(10, Input::PeerConnected { peer: MemberId(2) }))
        .pop()
        .expect("a status on connect");
    assert_eq!(to, MemberId(2));
    assert_eq!(
        status.recipient_signed,
        vec![SignedByRecipient::Vote(notarize)]
    );

    // 2 is restored from a backup taken before that vote: its record says nothing.
    let mut restored = restored_fenced(2, None);
    assert!(restored.is_fenced());
    // An equivocating leader's other block in view 1: a fenced node signs nothing.
    let other = block(1, 1, Hash::ZERO, 2);
    let outputs = restored.step(11, message(1, proposal(other.clone(), vec![])));
    assert!(persisted_records(&outputs).is_empty(), "fenced, yet signed");
    restored.step(12, Input::PeerConnected { peer: MemberId(0) });
    restored.step(12, Input::PeerConnected { peer: MemberId(1) });
    let outputs = restored.step(13, message(0, ConsensusMessage::Status(Box::new(status))));
    assert!(persisted_records(&outputs).is_empty());
    assert!(
        restored.is_fenced(),
        "validator 1 is connected and not heard yet"
    );
    let (mut other_peer, _) = started(1, None);
    let (_, status) =
        statuses_sent(&other_peer.step(14, Input::PeerConnected { peer: MemberId(2) }))
            .pop()
            .expect("a status on connect");
    let outputs = restored.step(15, message(1, ConsensusMessage::Status(Box::new(status))));
    assert!(!restored.is_fenced(), "every other validator was heard");
    let records = persisted_records(&outputs);
    assert_eq!(
        records.len(),
        1,
        "the learned record is made durable: {records:?}"
    );
    assert_eq!(records[0].view, View(1));
    assert_eq!(records[0].notarized, Some(proposed.hash()));
    let outputs = released(&mut restored, 15, outputs);
    assert!(
        broadcast_votes(&outputs).is_empty(),
        "no notarize for the other block"
    );
    assert!(!restored
        .record()
        .permits(View(1), Signing::Notarize(other.hash())));
    // It can still nullify view 1 (it only notarized there), which keeps the chain live.
    let timeout = Timeouts::default().view_timeout_ms;
    let outputs = restored.step(timeout, Input::Tick);
    let votes = broadcast_votes(&released(&mut restored, timeout, outputs));
    assert_eq!(votes.len(), 1);
    assert_eq!(votes[0].vote.kind, VoteKind::Nullify);
    assert_eq!(votes[0].vote.view, View(1));
}

#[test]
fn a_fenced_validator_of_three_waits_for_both_others_and_believes_only_its_own_key() {
    let mut restored = restored_fenced(2, None);
    restored.step(1, Input::PeerConnected { peer: MemberId(0) });
    restored.step(1, Input::PeerConnected { peer: MemberId(1) });
    // Validator 0 claims 2 notarized something in view 1, signed with 0's key.
    let forged = sign_vote(
        &key(0),
        &domain().genesis,
        MemberId(2),
        vote(VoteKind::Notarize, 1, 1, Hash([7; 32])),
    );
    let (mut peer, _) = started(0, None);
    let (_, mut status) = statuses_sent(&peer.step(2, Input::PeerConnected { peer: MemberId(2) }))
        .pop()
        .expect("a status on connect");
    status.recipient_signed = vec![SignedByRecipient::Vote(forged)];
    restored.step(3, message(0, ConsensusMessage::Status(Box::new(status))));
    // The view times out with connected validator 1 not heard: still fenced, no nullify.
    let timeout = Timeouts::default().view_timeout_ms;
    let outputs = restored.step(timeout, Input::Tick);
    assert!(restored.is_fenced());
    assert!(persisted_records(&outputs).is_empty());
    // Validator 1 goes away: one peer heard is not n - q + 1 = 2. The one heard may be
    // the one that missed what 2 and the absent one did together.
    let outputs = restored.step(timeout + 1, Input::PeerDisconnected { peer: MemberId(1) });
    assert!(
        restored.is_fenced(),
        "3 validators: both others must be heard"
    );
    assert!(persisted_records(&outputs).is_empty());
    // It comes back and says where it stands: the fence lifts, and the view that timed
    // out while fenced gets its nullify.
    restored.step(timeout + 2, Input::PeerConnected { peer: MemberId(1) });
    let (mut other, _) = started(1, None);
    let (_, status) =
        statuses_sent(&other.step(timeout + 2, Input::PeerConnected { peer: MemberId(2) }))
            .pop()
            .expect("a status on connect");
    let outputs = restored.step(
        timeout + 3,
        message(1, ConsensusMessage::Status(Box::new(status))),
    );
    assert!(!restored.is_fenced());
    let records = persisted_records(&outputs);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].view, View(1));
    assert!(records[0].nullified);
    assert_eq!(
        records[0].notarized, None,
        "the forged vote was not believed"
    );
}

#[test]
fn a_fenced_validator_of_four_lifts_with_two_others_once_it_waited() {
    let four = genesis(4, 3);
    let mut restored = Engine::new(
        Config::genesis(&four, MemberId(3), key(3)),
        FinalizedTip::genesis(),
        Restored {
            fenced: true,
            ..Restored::default()
        },
    )
    .unwrap();
    restored.step(0, Input::Start);
    let status = |view: u64| PeerStatus {
        epoch: Epoch(0),
        view: View(view),
        tip_height: Height(0),
        certificates: vec![],
        nullify: None,
        recipient_signed: vec![],
    };
    for peer in [0, 1] {
        restored.step(
            1,
            Input::PeerConnected {
                peer: MemberId(peer),
            },
        );
        restored.step(
            2,
            message(peer, ConsensusMessage::Status(Box::new(status(1)))),
        );
    }
    assert!(
        restored.is_fenced(),
        "it waits a view timeout for the third"
    );
    restored.step(Timeouts::default().view_timeout_ms, Input::Tick);
    assert!(
        !restored.is_fenced(),
        "n - q + 1 = 2 others heard, every connected one among them"
    );
}

#[test]
fn an_engine_not_restored_is_never_fenced() {
    let (engine, _) = started(2, None);
    assert!(!engine.is_fenced());
}

/// Whether `outputs` persist a record that nullifies `view` (R6 about to sign it).
fn nullifies(outputs: &[Output], view: u64) -> bool {
    persisted_records(outputs)
        .iter()
        .any(|record| record.view == View(view) && record.nullified)
}

#[test]
fn a_silent_leaders_view_times_out_early_and_a_heard_leader_gets_the_whole_view() {
    let timeouts = Timeouts::default();
    assert!(timeouts.silent_leader_timeout_ms < timeouts.view_timeout_ms);
    let (mut engine, _) = started(0, None);
    // Member 1 nullifies view 10 (a verified vote: it spoke there); member 2 has said
    // nothing since the engine started in view 1.
    let nullify = |view| vote(VoteKind::Nullify, view, 0, Hash::ZERO);
    engine.step(
        10,
        message(1, ConsensusMessage::Vote(signed(1, nullify(10)))),
    );
    let enter = |engine: &mut Engine, now: u64, view: u64| {
        let outputs = engine.step(
            now,
            message(
                1,
                ConsensusMessage::Certificate(certificate(&[1, 2], nullify(view))),
            ),
        );
        assert_eq!(engine.view(), View(view + 1));
        outputs
    };

    // View 11 is member 2's: silent for more than SILENT_AFTER_VIEWS views, so its
    // view is nullified after the silent-leader timeout.
    const { assert!(1 + SILENT_AFTER_VIEWS < 11) };
    enter(&mut engine, 20, 10);
    assert_eq!(engine.leader(View(11)), MemberId(2));
    let early = 20 + timeouts.silent_leader_timeout_ms;
    assert!(!nullifies(&engine.step(early - 1, Input::Tick), 11));
    let outputs = engine.step(early, Input::Tick);
    assert!(nullifies(&outputs, 11), "{outputs:?}");
    released(&mut engine, early, outputs);

    // View 13 is member 1's, heard in view 10: the whole view timeout.
    enter(&mut engine, 1_000, 11);
    enter(&mut engine, 1_001, 12);
    assert_eq!(engine.leader(View(13)), MemberId(1));
    let outputs = engine.step(1_001 + timeouts.silent_leader_timeout_ms, Input::Tick);
    assert!(!nullifies(&outputs, 13), "{outputs:?}");
    let outputs = engine.step(1_001 + timeouts.view_timeout_ms, Input::Tick);
    assert!(nullifies(&outputs, 13), "{outputs:?}");
    released(&mut engine, 1_001 + timeouts.view_timeout_ms, outputs);

    // View 14 is member 2's again; it speaks in its view before the short timer fires
    // (its notarize of a block), and gets the whole view back.
    enter(&mut engine, 5_000, 13);
    assert_eq!(engine.leader(View(14)), MemberId(2));
    let notarize = vote(VoteKind::Notarize, 14, 1, Hash([9; 32]));
    engine.step(
        5_100,
        message(2, ConsensusMessage::Vote(signed(2, notarize))),
    );
    let outputs = engine.step(5_000 + timeouts.silent_leader_timeout_ms, Input::Tick);
    assert!(!nullifies(&outputs, 14), "{outputs:?}");
    let outputs = engine.step(5_000 + timeouts.view_timeout_ms, Input::Tick);
    assert!(nullifies(&outputs, 14), "{outputs:?}");
}
