//! The OpenAPI schemas of the consensus types the node's API serves (evidence of
//! misbehaviour) say exactly what their JSON is: every variant's JSON validates against
//! the schema resolved with all the components it references, and reads back.

#[path = "../../types/tests/support/schema_check.rs"]
mod schema_check;

use schema_check::{schema_types_in, SchemaCheck};
use seisan_consensus::message::SignedProposalHeader;
use seisan_consensus::ConsensusEvidence;
use seisan_types::block::{BlockHeader, Evidence, SignedVote, Vote, VoteKind};
use seisan_types::bytes::Signature;
use seisan_types::hash::Hash;
use seisan_types::ids::{ChainId, Epoch, Height, MemberId, View};
use std::path::Path;

fn signed_vote(kind: VoteKind, block: u8) -> SignedVote {
    SignedVote {
        vote: Vote {
            chain_id: ChainId("seisan-dev-testnet".into()),
            epoch: Epoch(0),
            view: View(4),
            height: Height(if kind == VoteKind::Nullify { 0 } else { 3 }),
            block: Hash([block; 32]),
            kind,
        },
        member: MemberId(1),
        signature: Signature([0x5a; 64]),
    }
}

fn signed_header(state: u8, epoch_end: Option<Height>) -> SignedProposalHeader {
    SignedProposalHeader {
        header: BlockHeader {
            chain_id: ChainId("seisan-dev-testnet".into()),
            epoch: Epoch(0),
            height: Height(3),
            view: View(4),
            parent: Hash([1; 32]),
            timestamp_ms: 1_767_225_600_000,
            proposer: MemberId(1),
            txs_root: Hash([2; 32]),
            state_root: Hash([state; 32]),
            receipts_root: Hash([4; 32]),
            epoch_end,
            next_validators: epoch_end.map(|_| Hash([5; 32])),
        },
        signature: Signature([0x6b; 64]),
    }
}

#[test]
fn consensus_evidence_serializes_as_its_schema_says() {
    let mut check = SchemaCheck::new();
    check.samples(&[signed_header(3, None), signed_header(3, Some(Height(9)))]);
    check.samples(&[
        ConsensusEvidence::ConflictingVotes(Evidence {
            first: signed_vote(VoteKind::Notarize, 7),
            second: signed_vote(VoteKind::Notarize, 8),
        }),
        ConsensusEvidence::FinalizeAndNullify {
            finalize: signed_vote(VoteKind::Finalize, 7),
            nullify: signed_vote(VoteKind::Nullify, 0),
        },
        ConsensusEvidence::ConflictingProposals {
            first: Box::new(signed_header(3, None)),
            second: Box::new(signed_header(4, None)),
        },
    ]);
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let with_schema = schema_types_in(&source);
    assert!(
        with_schema.contains("ConsensusEvidence"),
        "the source scan found only {with_schema:?}"
    );
    check.assert_every_type_sampled(&with_schema);
    check.finish();
}
