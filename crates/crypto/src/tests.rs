use super::*;
use seisan_types::amount::{Amount, Asset, AssetKind};
use seisan_types::block::VoteKind;
use seisan_types::genesis::{Member, Role};
use seisan_types::ids::{AssetId, Height, View};
use seisan_types::tx::{Allocation, AllocationDirection, CustomerId, TxBody};

fn genesis() -> Genesis {
    let members = DEV_MEMBER_NAMES
        .iter()
        .enumerate()
        .map(|(index, name)| Member {
            name: name.to_string(),
            role: if index == 0 {
                Role::ClearingHouse
            } else {
                Role::Exchange
            },
            public_key: Keypair::dev(name).public_key(),
            validator: true,
            p2p_address: None,
        })
        .collect();
    Genesis {
        chain_id: ChainId("seisan-dev-testnet".into()),
        genesis_time_ms: 0,
        quorum: 2,
        members,
        assets: vec![Asset {
            symbol: "JPY".into(),
            kind: AssetKind::Fiat,
            scale: 0,
            contract: None,
        }],
        pairs: vec![],
        opening_balances: vec![],
        settlement: Default::default(),
        public_chain: None,
    }
}

fn genesis_hash() -> Hash {
    genesis().hash()
}

fn transaction(member: u32, nonce: u64) -> Transaction {
    Transaction {
        chain_id: ChainId("seisan-dev-testnet".into()),
        member: MemberId(member),
        nonce: Nonce(nonce),
        body: TxBody::Allocate(Allocation {
            asset: AssetId(0),
            customer: CustomerId("c".into()),
            amount: Amount(1),
            direction: AllocationDirection::ToCustomer,
        }),
    }
}

fn key(member: u32) -> Keypair {
    Keypair::dev(DEV_MEMBER_NAMES[member as usize])
}

#[test]
fn signed_transaction_verifies() {
    let signed = sign_transaction(&key(1), &genesis_hash(), transaction(1, 1));
    assert_eq!(verify_transaction(&genesis(), &signed), Ok(()));
}

#[test]
fn wrong_chain_unknown_member_and_bad_signature_are_distinct_errors() {
    let genesis = genesis();
    let mut other_chain = transaction(1, 1);
    other_chain.chain_id = ChainId("seisan-other".into());
    let signed = sign_transaction(&key(1), &genesis_hash(), other_chain);
    assert!(matches!(
        verify_transaction(&genesis, &signed),
        Err(TxError::WrongChain { .. })
    ));

    let signed = sign_transaction(&key(1), &genesis_hash(), transaction(9, 1));
    assert_eq!(
        verify_transaction(&genesis, &signed),
        Err(TxError::UnknownMember {
            member: MemberId(9)
        })
    );

    // Signed by exchange-b's key but claiming to be exchange-a.
    let signed = sign_transaction(&key(2), &genesis_hash(), transaction(1, 1));
    assert!(matches!(
        verify_transaction(&genesis, &signed),
        Err(TxError::BadSignature { .. })
    ));

    // A valid signature whose body was altered afterwards.
    let mut signed = sign_transaction(&key(1), &genesis_hash(), transaction(1, 1));
    signed.tx.nonce = Nonce(2);
    assert!(matches!(
        verify_transaction(&genesis, &signed),
        Err(TxError::BadSignature { .. })
    ));
}

#[test]
fn nonce_rules() {
    let member = MemberId(1);
    assert_eq!(check_nonce(member, Nonce(1), None), Ok(()));
    assert_eq!(check_nonce(member, Nonce(5), Some(Nonce(4))), Ok(()));
    assert_eq!(check_nonce(member, Nonce(7), Some(Nonce(4))), Ok(()));
    assert_eq!(
        check_nonce(member, Nonce(4), Some(Nonce(4))),
        Err(TxError::RepeatedNonce {
            member,
            nonce: Nonce(4)
        })
    );
    assert_eq!(
        check_nonce(member, Nonce(3), Some(Nonce(4))),
        Err(TxError::StaleNonce {
            member,
            nonce: Nonce(3),
            last: Nonce(4)
        })
    );
}

#[test]
fn batch_verification_pinpoints_the_bad_item() {
    let genesis = genesis();
    let mut signed: Vec<SignedTransaction> = (1..=20)
        .map(|nonce| {
            sign_transaction(
                &key(1 + (nonce % 2) as u32),
                &genesis_hash(),
                transaction(1 + (nonce % 2) as u32, nonce),
            )
        })
        .collect();
    let results = verify_transactions(&genesis, &signed);
    assert!(results.iter().all(Result::is_ok));
    signed[7].signature.0[0] ^= 1;
    let results = verify_transactions(&genesis, &signed);
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result.is_err(), index == 7, "item {index}: {result:?}");
    }
}

#[test]
fn a_key_cache_gives_the_uncached_results_and_keeps_only_good_keys() {
    let keys: Vec<Keypair> = (0..3)
        .map(|i| Keypair::dev(&format!("cache-{i}")))
        .collect();
    let mut items: Vec<(PublicKey, Hash, Signature)> = (0..12u32)
        .map(|i| {
            let key = &keys[i as usize % keys.len()];
            let digest = Hash::tagged(b"SEISAN_TEST_DIGEST_V1", &[&i.to_be_bytes()]);
            (key.public_key(), digest, key.sign_digest(&digest))
        })
        .collect();
    let cache = KeyCache::default();
    assert!(verify_batch_with(&cache, &items).iter().all(Result::is_ok));
    assert_eq!(cache.len(), 3, "each key decompressed once");
    // A bad signature, a key that is no curve point and a weak (small-order) key: the
    // cached run answers item by item as the uncached one, and keeps neither bad key.
    items[4].2 .0[0] ^= 1;
    let not_a_point = (0u8..=255)
        .map(|first| PublicKey([first; 32]))
        .find(|key| ed25519_dalek::VerifyingKey::from_bytes(&key.0).is_err())
        .expect("some 32-byte string is not a point");
    items[7].0 = not_a_point;
    items[9].0 = PublicKey([0; 32]); // y = 0: a point of order 4
    let uncached = verify_batch(&items);
    assert_eq!(verify_batch_with(&cache, &items), uncached);
    assert_eq!(uncached[4], Err(SignatureError::Invalid));
    assert_eq!(uncached[7], Err(SignatureError::InvalidKey));
    assert_eq!(uncached[9], Err(SignatureError::WeakKey));
    let good = uncached.iter().filter(|result| result.is_ok()).count();
    assert_eq!(good, 9);
    assert_eq!(cache.len(), 3, "no bad key kept");
}

fn vote(kind: VoteKind) -> Vote {
    Vote {
        chain_id: ChainId("seisan-dev-testnet".into()),
        epoch: seisan_types::Epoch(0),
        view: View(4),
        height: Height(3),
        block: Hash([5; 32]),
        kind,
    }
}

fn certificate(signers: &[u32]) -> QuorumCertificate {
    let votes: Vec<SignedVote> = signers
        .iter()
        .map(|member| {
            sign_vote(
                &key(*member),
                &genesis_hash(),
                MemberId(*member),
                vote(VoteKind::Finalize),
            )
        })
        .collect();
    assemble_certificate(vote(VoteKind::Finalize), &votes)
}

#[test]
fn certificate_with_quorum_verifies() {
    assert_eq!(
        verify_certificate(&genesis(), &certificate(&[0, 2])),
        Ok(())
    );
    assert_eq!(
        verify_certificate(&genesis(), &certificate(&[2, 1, 0])),
        Ok(())
    );
}

/// A genesis with the same chain id that differs only in one opening balance (issue 20
/// item 7: two testnets made with `seisan genesis testnet` share the chain id).
fn sibling_genesis() -> Genesis {
    let mut sibling = genesis();
    sibling
        .opening_balances
        .push(seisan_types::genesis::OpeningBalance {
            member: "exchange-a".into(),
            asset: "JPY".into(),
            amount: "1".into(),
        });
    assert_eq!(sibling.chain_id, genesis().chain_id);
    assert_ne!(sibling.hash(), genesis().hash());
    sibling
}

#[test]
fn nothing_signed_for_one_genesis_verifies_under_another_with_the_same_chain_id() {
    let sibling = sibling_genesis();
    let signed = sign_transaction(&key(1), &genesis_hash(), transaction(1, 1));
    assert_eq!(verify_transaction(&genesis(), &signed), Ok(()));
    let refused = verify_transaction(&sibling, &signed).unwrap_err();
    assert_eq!(
        refused,
        TxError::BadSignature {
            member: MemberId(1),
            reason: SignatureError::Invalid
        }
    );
    assert!(refused.to_string().contains("another genesis"), "{refused}");

    let certified = certificate(&[0, 1]);
    assert_eq!(verify_certificate(&genesis(), &certified), Ok(()));
    assert!(matches!(
        verify_certificate(&sibling, &certified),
        Err(CertificateError::BadSignature { .. })
    ));
    let vote = sign_vote(
        &key(2),
        &genesis_hash(),
        MemberId(2),
        vote(VoteKind::Notarize),
    );
    assert_eq!(verify_vote(&genesis(), &vote), Ok(()));
    assert!(verify_vote(&sibling, &vote).is_err());
}

#[test]
fn certificate_errors() {
    let genesis = genesis();
    assert_eq!(
        verify_certificate(&genesis, &certificate(&[1])),
        Err(CertificateError::TooFewSigners { have: 1, need: 2 })
    );
    // The same signer twice does not make a quorum.
    let mut duplicate = certificate(&[1]);
    duplicate.signatures.push(duplicate.signatures[0]);
    assert_eq!(
        verify_certificate(&genesis, &duplicate),
        Err(CertificateError::DuplicateSigner {
            member: MemberId(1)
        })
    );

    let mut wrong_chain = certificate(&[0, 1]);
    wrong_chain.vote.chain_id = ChainId("other".into());
    assert!(matches!(
        verify_certificate(&genesis, &wrong_chain),
        Err(CertificateError::WrongChain { .. })
    ));

    let mut outsider = certificate(&[0, 1]);
    outsider.signatures.push((MemberId(7), Signature([1; 64])));
    assert_eq!(
        verify_certificate(&genesis, &outsider),
        Err(CertificateError::NotValidator {
            member: MemberId(7)
        })
    );

    let mut forged = certificate(&[0, 1]);
    forged.signatures[1].1 .0[3] ^= 0x10;
    assert!(matches!(
        verify_certificate(&genesis, &forged),
        Err(CertificateError::BadSignature {
            member: MemberId(1),
            ..
        })
    ));

    // Signatures over a different vote kind do not certify this one.
    let mut relabelled = certificate(&[0, 1]);
    relabelled.vote.kind = VoteKind::Notarize;
    assert!(matches!(
        verify_certificate(&genesis, &relabelled),
        Err(CertificateError::BadSignature { .. })
    ));

    let mut unsorted = certificate(&[0, 1]);
    unsorted.signatures.reverse();
    assert_eq!(
        verify_certificate(&genesis, &unsorted),
        Err(CertificateError::Unsorted)
    );
}

#[test]
fn evidence_needs_two_conflicting_valid_votes() {
    let genesis = genesis();
    let first = sign_vote(
        &key(2),
        &genesis_hash(),
        MemberId(2),
        vote(VoteKind::Notarize),
    );
    let mut other = vote(VoteKind::Notarize);
    other.block = Hash([6; 32]);
    let second = sign_vote(&key(2), &genesis_hash(), MemberId(2), other);
    assert!(verify_evidence(
        &genesis,
        &Evidence {
            first: first.clone(),
            second: second.clone()
        }
    ));
    assert!(!verify_evidence(
        &genesis,
        &Evidence {
            first: first.clone(),
            second: first.clone()
        }
    ));
    let mut forged = second;
    forged.signature.0[0] ^= 1;
    assert!(!verify_evidence(
        &genesis,
        &Evidence {
            first,
            second: forged
        }
    ));
}

#[test]
fn dev_keys_are_deterministic_and_recognised() {
    assert_eq!(
        Keypair::dev("exchange-a").public_key(),
        Keypair::dev("exchange-a").public_key()
    );
    assert_ne!(
        Keypair::dev("exchange-a").public_key(),
        Keypair::dev("exchange-b").public_key()
    );
    assert!(is_well_known_dev_key(
        &Keypair::dev("exchange-b").public_key(),
        "anything"
    ));
    assert!(is_well_known_dev_key(
        &Keypair::dev("bench-7").public_key(),
        "bench-7"
    ));
    assert!(!is_well_known_dev_key(
        &Keypair::generate().public_key(),
        "exchange-a"
    ));
}
