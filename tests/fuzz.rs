//! Fuzzed decoders (issue 10, part 2), as proptest-driven tests with short budgets so
//! they run in the normal suite.
//!
//! Every decoder of bytes or JSON that a peer, a client or a file can reach is fed
//! random bytes and mutations (flips, truncations, insertions, deletions, splices) of
//! valid encodings. Properties:
//! - decoding never panics;
//! - anything a binary decoder accepts re-encodes to exactly the input (the codec is
//!   canonical: no second encoding of a value is ever accepted);
//! - an accepted genesis file survives a JSON round trip unchanged.

use proptest::prelude::*;
use seisan_consensus::{ConsensusMessage, FetchRequest, FetchResponse, PersistedRecord, Proposal};
use seisan_crypto::Keypair;
use seisan_types::block::{Block, BlockHeader, QuorumCertificate, SignedVote, Vote, VoteKind};
use seisan_types::clearing::{OrderRequest, Pair, Side, TimeInForce};
use seisan_types::codec;
use seisan_types::tx::{SignedTransaction, Transaction, TxBody};
use seisan_types::{Amount, AssetId, ChainId, Genesis, Hash, Height, MemberId, Nonce, View};

const CASES: u32 = 1500;

fn chain() -> ChainId {
    ChainId("seisan-fuzz".into())
}

fn transaction(member: u32, nonce: u64) -> SignedTransaction {
    seisan_crypto::sign_transaction(
        &Keypair::dev(&format!("fuzz-{member}")),
        &Hash::ZERO,
        Transaction {
            chain_id: chain(),
            member: MemberId(member),
            nonce: Nonce(nonce),
            body: TxBody::PlaceOrder(OrderRequest {
                pair: Pair {
                    base: AssetId(0),
                    quote: AssetId(1),
                },
                side: if nonce.is_multiple_of(2) {
                    Side::Buy
                } else {
                    Side::Sell
                },
                quantity: Amount(1_000 + u128::from(nonce)),
                limit_price: Amount(300_000),
                time_in_force: TimeInForce::GoodTillCancel,
                expires_at_ms: Some(1_700_000_000_000),
            }),
        },
    )
}

fn block(height: u64, txs: usize) -> Block {
    let txs: Vec<SignedTransaction> = (0..txs).map(|i| transaction(i as u32, height)).collect();
    Block {
        header: BlockHeader {
            chain_id: chain(),
            epoch: seisan_types::Epoch(0),
            height: Height(height),
            view: View(height + 1),
            parent: Hash::tagged(b"FUZZ_PARENT", &[&height.to_be_bytes()]),
            timestamp_ms: 1_700_000_000_000 + height,
            proposer: MemberId(1),
            txs_root: Block::compute_txs_root(&txs),
            state_root: Hash::tagged(b"FUZZ_ROOT", &[&height.to_be_bytes()]),
            receipts_root: Hash::tagged(b"FUZZ_RECEIPTS", &[&height.to_be_bytes()]),
            epoch_end: None,
            next_validators: None,
        },
        txs,
    }
}

fn signed_vote(member: u32, kind: VoteKind, block: Hash) -> SignedVote {
    let vote = Vote {
        chain_id: chain(),
        epoch: seisan_types::Epoch(0),
        view: View(7),
        height: Height(3),
        block,
        kind,
    };
    seisan_crypto::sign_vote(
        &Keypair::dev(&format!("fuzz-{member}")),
        &Hash::ZERO,
        MemberId(member),
        vote,
    )
}

fn certificate(kind: VoteKind) -> QuorumCertificate {
    let block = Hash::tagged(b"FUZZ_BLOCK", &[]);
    let votes: Vec<SignedVote> = (0..3)
        .map(|member| signed_vote(member, kind, block))
        .collect();
    seisan_crypto::assemble_certificate(votes[0].vote.clone(), &votes)
}

/// Valid encodings of every fuzzed type, to mutate.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let proposal = Proposal {
        block: block(3, 2),
        signature: Keypair::dev("fuzz-1").sign_digest(&Hash::tagged(b"FUZZ_PROPOSAL", &[])),
        justification: vec![
            certificate(VoteKind::Notarize),
            certificate(VoteKind::Nullify),
        ],
    };
    vec![
        ("tx", codec::encode(&transaction(1, 1))),
        ("block", codec::encode(&block(2, 3))),
        ("block", codec::encode(&block(0, 0))),
        (
            "certificate",
            codec::encode(&certificate(VoteKind::Finalize)),
        ),
        (
            "message",
            ConsensusMessage::Proposal(Box::new(proposal)).encode(),
        ),
        (
            "message",
            ConsensusMessage::Vote(signed_vote(2, VoteKind::Notarize, Hash::ZERO)).encode(),
        ),
        (
            "message",
            ConsensusMessage::Certificate(certificate(VoteKind::Notarize)).encode(),
        ),
        (
            "fetch_request",
            FetchRequest {
                from_height: Height(1),
                target: Hash::tagged(b"FUZZ_TARGET", &[]),
                target_height: Height(9),
            }
            .encode(),
        ),
        (
            "fetch_response",
            FetchResponse {
                blocks: vec![block(1, 1), block(2, 0)],
                certificates: vec![certificate(VoteKind::Finalize)],
            }
            .encode(),
        ),
        (
            "record",
            PersistedRecord {
                epoch: seisan_types::Epoch(0),
                view: View(4),
                proposed: Some(Hash::tagged(b"FUZZ_P", &[])),
                notarized: Some(Hash::tagged(b"FUZZ_P", &[])),
                finalized: None,
                nullified: true,
            }
            .encode(),
        ),
    ]
}

/// Decodes `bytes` as every type; for each value accepted, checks that it re-encodes
/// to exactly `bytes`. Returns how many decoders accepted.
fn decode_everything(bytes: &[u8]) -> usize {
    let mut accepted = 0;
    let mut check = |encoded: Option<Vec<u8>>, what: &str| {
        if let Some(encoded) = encoded {
            assert_eq!(encoded, bytes, "{what} accepted a non-canonical encoding");
            accepted += 1;
        }
    };
    check(
        SignedTransaction::decode(bytes)
            .ok()
            .map(|v| codec::encode(&v)),
        "SignedTransaction",
    );
    check(
        Block::decode(bytes).ok().map(|v| codec::encode(&v)),
        "Block",
    );
    check(
        codec::decode::<QuorumCertificate>(bytes)
            .ok()
            .map(|v| codec::encode(&v)),
        "QuorumCertificate",
    );
    check(
        ConsensusMessage::decode(bytes).ok().map(|v| v.encode()),
        "ConsensusMessage",
    );
    check(
        FetchRequest::decode(bytes).ok().map(|v| v.encode()),
        "FetchRequest",
    );
    check(
        FetchResponse::decode(bytes).ok().map(|v| v.encode()),
        "FetchResponse",
    );
    check(
        PersistedRecord::decode(bytes).ok().map(|v| v.encode()),
        "PersistedRecord",
    );
    accepted
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip {
        at: usize,
        mask: u8,
    },
    Set {
        at: usize,
        value: u8,
    },
    Truncate {
        at: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Delete {
        at: usize,
        len: usize,
    },
    /// Writes a little-endian u64 (a length prefix or an id) at `at`.
    Word {
        at: usize,
        value: u64,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Set { at, value }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..9))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1..16usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (
            any::<usize>(),
            prop_oneof![Just(u64::MAX), Just(1u64 << 32), 0..64u64, any::<u64>()]
        )
            .prop_map(|(at, value)| Mutation::Word { at, value }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len().max(1);
    match mutation {
        Mutation::Flip { at, mask } => {
            if let Some(byte) = bytes.get_mut(at % len) {
                *byte ^= mask;
            }
        }
        Mutation::Set { at, value } => {
            if let Some(byte) = bytes.get_mut(at % len) {
                *byte = *value;
            }
        }
        Mutation::Truncate { at } => bytes.truncate(at % len),
        Mutation::Insert {
            at,
            bytes: inserted,
        } => {
            let at = at % (bytes.len() + 1);
            bytes.splice(at..at, inserted.iter().copied());
        }
        Mutation::Delete { at, len: count } => {
            let at = at % len;
            let end = (at + count).min(bytes.len());
            if at < end {
                bytes.drain(at..end);
            }
        }
        Mutation::Word { at, value } => {
            let at = at % len;
            for (offset, byte) in value.to_le_bytes().iter().enumerate() {
                if let Some(slot) = bytes.get_mut(at + offset) {
                    *slot = *byte;
                }
            }
        }
    }
}

#[test]
fn every_seed_decodes_as_its_own_type() {
    for (what, bytes) in seeds() {
        assert!(decode_everything(&bytes) >= 1, "{what} seed was refused");
    }
    // And a seed does not decode after a trailing byte (strictness is not vacuous).
    for (what, mut bytes) in seeds() {
        bytes.push(0);
        assert_eq!(
            decode_everything(&bytes),
            0,
            "{what} accepted a trailing byte"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
    }

    #[test]
    fn mutated_encodings_never_panic_and_stay_canonical(
        seed in 0..10usize,
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let seeds = seeds();
        let mut bytes = seeds[seed % seeds.len()].1.clone();
        for mutation in &mutations {
            apply(&mut bytes, mutation);
        }
        decode_everything(&bytes);
    }
}

fn genesis_json() -> String {
    let member = |name: &str, role: &str, validator: bool| {
        serde_json::json!({
            "name": name, "role": role, "validator": validator,
            "public_key": Keypair::dev(name).public_key(),
            "p2p_address": if validator { serde_json::json!("/ip4/127.0.0.1/tcp/4001") } else { serde_json::Value::Null },
        })
    };
    serde_json::json!({
        "chain_id": "seisan-fuzz",
        "genesis_time_ms": 1_700_000_000_000u64,
        "quorum": 2,
        "members": [
            member("clearing-house", "clearing_house", true),
            member("exchange-a", "exchange", true),
            member("exchange-b", "exchange", true),
            member("bench-0", "exchange", false),
        ],
        "assets": [
            {"symbol": "ETH", "kind": "native_coin", "scale": 18, "contract": null},
            {"symbol": "JPY", "kind": "fiat", "scale": 0, "contract": null},
        ],
        "pairs": [{"base": "ETH", "quote": "JPY"}],
        "opening_balances": [{"member": "bench-0", "asset": "ETH", "amount": "2.5"}],
    })
    .to_string()
}

#[test]
fn the_genesis_seed_is_accepted() {
    let genesis = Genesis::from_json(&genesis_json()).expect("seed genesis parses");
    genesis.validate().expect("seed genesis is valid");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_genesis_json_never_panics(
        mutations in proptest::collection::vec(mutation(), 1..4),
        replacement in prop_oneof![
            Just("-1"), Just("1e999"), Just("340282366920938463463374607431768211456"),
            Just("\"0.0000000000000000001\""), Just("null"), Just("[]"), Just("{}"),
            Just("\"\u{0}\""), Just("18446744073709551616"), Just("true"),
        ],
        at in any::<usize>(),
    ) {
        let mut text = genesis_json().into_bytes();
        // Either splice a hostile JSON value after a colon, or mutate raw bytes.
        let colons: Vec<usize> = text.iter().enumerate().filter(|(_, b)| **b == b':').map(|(i, _)| i).collect();
        if at % 2 == 0 {
            let colon = colons[at % colons.len()];
            let end = text[colon..].iter().position(|b| *b == b',' || *b == b'}').map_or(text.len(), |p| colon + p);
            text.splice(colon + 1..end, replacement.bytes());
        } else {
            for mutation in &mutations {
                apply(&mut text, mutation);
            }
        }
        let Ok(text) = String::from_utf8(text) else { return Ok(()); };
        if let Ok(genesis) = Genesis::from_json(&text) {
            if genesis.validate().is_ok() {
                let again = Genesis::from_json(&genesis.to_json()).expect("an accepted genesis re-parses");
                prop_assert_eq!(again, genesis);
            }
        }
    }
}
