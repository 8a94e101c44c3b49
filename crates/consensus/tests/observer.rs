//! An observer (a member with the role observer, never a validator) that tries to take
//! part in consensus: its votes, certificates it co-signs and its proposals are ignored
//! by a validator's engine, and never count toward a quorum.

use seisan_consensus::{
    proposal_digest, Config, ConsensusMessage, Engine, FinalizedTip, Input, Output, Proposal,
    Restored,
};
use seisan_crypto::{assemble_certificate, sign_vote, verify_certificate, Keypair};
use seisan_types::genesis::{Member, Role};
use seisan_types::{
    Block, BlockHeader, ChainId, Epoch, Genesis, Hash, Height, MemberId, SignedVote, View, Vote,
    VoteKind,
};

const CHAIN: &str = "observer-dev";
/// The observer's member id: after the three validators.
const OBSERVER_ID: u32 = 3;

fn key(member: u32) -> Keypair {
    Keypair::dev(&format!("member-{member}"))
}

/// Three validators (q = 2) and one observer.
fn genesis() -> Genesis {
    let mut members: Vec<Member> = (0..3)
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
    members.push(Member {
        name: "regulator".into(),
        role: Role::Observer,
        public_key: key(OBSERVER_ID).public_key(),
        validator: false,
        p2p_address: None,
    });
    let genesis = Genesis {
        chain_id: ChainId(CHAIN.into()),
        genesis_time_ms: 0,
        quorum: 2,
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

fn validator_engine(genesis: &Genesis) -> Engine {
    let mut engine = Engine::new(
        Config::genesis(genesis, MemberId(0), key(0)),
        FinalizedTip::genesis(),
        Restored::default(),
    )
    .unwrap();
    engine.step(0, Input::Start);
    engine
}

fn nullify(view: u64) -> Vote {
    Vote {
        chain_id: ChainId(CHAIN.into()),
        epoch: Epoch(0),
        view: View(view),
        height: Height(0),
        block: Hash::ZERO,
        kind: VoteKind::Nullify,
    }
}

fn signed(member: u32, vote: Vote) -> SignedVote {
    sign_vote(&key(member), &genesis().hash(), MemberId(member), vote)
}

fn from(member: u32, message: ConsensusMessage) -> Input {
    Input::Message {
        from: MemberId(member),
        message,
    }
}

#[test]
fn the_observer_is_in_no_validator_set() {
    let genesis = genesis();
    let set = seisan_types::ValidatorSet::genesis(&genesis);
    assert_eq!(set.quorum, 2);
    assert!(!set.contains(MemberId(OBSERVER_ID)));
    assert_eq!(genesis.validators().len(), 3);
}

#[test]
fn an_observer_vote_never_counts_toward_a_certificate() {
    let genesis = genesis();
    // One validator's nullify and the observer's: two signatures, the quorum, if the
    // observer counted. The engine must stay in view 1.
    let mut engine = validator_engine(&genesis);
    engine.step(5, from(1, ConsensusMessage::Vote(signed(1, nullify(1)))));
    // Sent by the observer itself, and relayed by a validator: neither counts.
    engine.step(
        6,
        from(
            OBSERVER_ID,
            ConsensusMessage::Vote(signed(OBSERVER_ID, nullify(1))),
        ),
    );
    engine.step(
        7,
        from(2, ConsensusMessage::Vote(signed(OBSERVER_ID, nullify(1)))),
    );
    assert_eq!(engine.view(), View(1), "the observer's vote made a quorum");
    // The second validator's vote does make one: the test above could have failed.
    engine.step(8, from(2, ConsensusMessage::Vote(signed(2, nullify(1)))));
    assert_eq!(engine.view(), View(2));
}

#[test]
fn a_certificate_the_observer_cosigns_is_refused() {
    let genesis = genesis();
    let vote = nullify(1);
    let votes = [signed(1, vote.clone()), signed(OBSERVER_ID, vote.clone())];
    let certificate = assemble_certificate(vote.clone(), &votes);
    assert!(
        verify_certificate(&genesis, &certificate).is_err(),
        "a certificate with an observer's signature verified"
    );
    let mut engine = validator_engine(&genesis);
    let outputs = engine.step(
        5,
        from(1, ConsensusMessage::Certificate(certificate.clone())),
    );
    assert_eq!(engine.view(), View(1));
    assert!(!outputs
        .iter()
        .any(|output| matches!(output, Output::Broadcast(ConsensusMessage::Certificate(_)))));
    // The same vote with two validators' signatures is a certificate.
    let genuine = assemble_certificate(vote.clone(), &[signed(1, vote.clone()), signed(2, vote)]);
    assert_eq!(verify_certificate(&genesis, &genuine), Ok(()));
    engine.step(6, from(1, ConsensusMessage::Certificate(genuine)));
    assert_eq!(engine.view(), View(2));
}

#[test]
fn a_proposal_from_the_observer_is_never_verified_or_voted_on() {
    let genesis = genesis();
    let mut engine = validator_engine(&genesis);
    let block = Block {
        header: BlockHeader {
            chain_id: ChainId(CHAIN.into()),
            epoch: Epoch(0),
            height: Height(1),
            view: View(1),
            parent: Hash::ZERO,
            timestamp_ms: 1,
            proposer: MemberId(OBSERVER_ID),
            txs_root: Block::compute_txs_root(&[]),
            state_root: Hash([1; 32]),
            receipts_root: seisan_types::receipt::receipts_root(&[], &[]),
            epoch_end: None,
            next_validators: None,
        },
        txs: vec![],
    };
    let digest = proposal_digest(&genesis.domain(), View(1), &block.hash());
    let proposal = ConsensusMessage::Proposal(Box::new(Proposal {
        signature: key(OBSERVER_ID).sign_digest(&digest),
        block,
        justification: vec![],
    }));
    let outputs = engine.step(5, from(OBSERVER_ID, proposal));
    assert!(
        outputs.iter().all(|output| !matches!(
            output,
            Output::VerifyProposal { .. } | Output::Broadcast(ConsensusMessage::Vote(_))
        )),
        "{outputs:?}"
    );
}
