//! Local verification of `GET /v1/members/{m}/balances?proof=true`: a member checks its
//! balances against the genesis file alone, without trusting the node that answered.
//!
//! The chain of trust: genesis names the validators and the quorum; a quorum
//! certificate of finalize votes by them certifies one block hash at one height; that
//! hash is the hash of the returned header, whose state root commits to every balance;
//! each balance comes with a Merkle proof under that root for the key the contracts
//! store it at. Any break in the chain is an error naming the broken link.
//!
//! After the consortium changed its validators, the tip is certified by a later
//! epoch's set. The answer then carries one link per epoch change since genesis
//! ([`EpochLink`]): the last block of the epoch before, certified by that epoch's
//! validators (directly or through the seals above it, consensus rule E4), whose header
//! names the hash of the next set (`next_validators`), and that set. Starting from
//! genesis's set, each link is checked with the set before it, so the chain of trust
//! still starts at the genesis file alone.

use seisan_crypto::CertificateError;
use seisan_state::ProofError;
use seisan_types::clearing::Balance;
use seisan_types::hash::Hash;
use seisan_types::ids::{AssetId, Height, MemberId};
use seisan_types::{codec, Epoch, Genesis, ValidatorSet, VoteKind};

/// The node's answer, as sent (nothing in it is trusted yet): the API's own type.
pub use seisan_api::v1::BalanceProof;

/// How the validator set went from one epoch to the next (nothing trusted yet): the
/// API's own type.
pub use seisan_api::v1::EpochLink;

/// One asset's balance with its proof: the API's own type.
pub use seisan_api::v1::ProvenBalance;

/// What the verification established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedBalances {
    pub member: MemberId,
    pub height: Height,
    pub block: Hash,
    pub state_root: Hash,
    /// The validators whose signatures make up the certificate.
    pub signers: Vec<MemberId>,
    /// The epoch of the validators that certified the tip.
    pub epoch: Epoch,
    /// Every genesis asset, in asset order.
    pub balances: Vec<(AssetId, Balance)>,
}

/// A broken link in the chain of trust.
#[derive(Debug, thiserror::Error)]
pub enum ProofCheckError {
    #[error("the answer is for member {got}, not {expected}")]
    WrongMember { expected: MemberId, got: MemberId },
    #[error("the header is of chain {got:?}, not the genesis chain {expected:?}")]
    WrongChain { expected: String, got: String },
    #[error("the certificate does not verify against genesis: {reason}")]
    Certificate { reason: CertificateError },
    #[error("epoch link {index}: {reason}")]
    EpochLink { index: usize, reason: String },
    #[error("the certificate holds {kind:?} votes; only finalize votes make a block final")]
    NotFinalization { kind: VoteKind },
    #[error("the certificate is for a descendant (height {certificate_height}) of the returned header (height {header_height}); this client cannot verify the chain between them, ask again")]
    DescendantCertificate {
        header_height: Height,
        certificate_height: Height,
    },
    #[error("the certificate is for block {certified} at height {certificate_height}, not the returned header {header} at height {header_height}")]
    OtherBlock {
        certified: Hash,
        certificate_height: Height,
        header: Hash,
        header_height: Height,
    },
    #[error("asset {asset}: the answer has {count} entries for it; exactly one is needed")]
    EntryCount { asset: AssetId, count: usize },
    #[error("asset {asset}: the proven key {got} is not the balance key of member {member} ({expected})")]
    WrongKey {
        asset: AssetId,
        member: MemberId,
        expected: String,
        got: String,
    },
    #[error("asset {asset}: {field} is not hex: {reason}")]
    BadHex {
        asset: AssetId,
        field: &'static str,
        reason: String,
    },
    #[error("asset {asset}: the Merkle proof fails: {reason}")]
    Proof { asset: AssetId, reason: ProofError },
    #[error("asset {asset}: the proven value is not a balance: {reason}")]
    BadValue { asset: AssetId, reason: String },
}

/// Verifies a balance-proof answer for `member` against `genesis`.
pub fn verify_balance_proof(
    genesis: &Genesis,
    member: MemberId,
    document: &BalanceProof,
) -> Result<VerifiedBalances, ProofCheckError> {
    if document.member != member {
        return Err(ProofCheckError::WrongMember {
            expected: member,
            got: document.member,
        });
    }
    let header = &document.header;
    if header.chain_id != genesis.chain_id {
        return Err(ProofCheckError::WrongChain {
            expected: genesis.chain_id.0.clone(),
            got: header.chain_id.0.clone(),
        });
    }
    let set = follow_epochs(genesis, &document.epochs)?;
    let certificate = &document.certificate;
    seisan_crypto::verify_certificate_in(&genesis.domain(), &set, certificate)
        .map_err(|reason| ProofCheckError::Certificate { reason })?;
    if certificate.vote.kind != VoteKind::Finalize {
        return Err(ProofCheckError::NotFinalization {
            kind: certificate.vote.kind,
        });
    }
    let header_hash = header.hash();
    if certificate.vote.height > header.height {
        return Err(ProofCheckError::DescendantCertificate {
            header_height: header.height,
            certificate_height: certificate.vote.height,
        });
    }
    if certificate.vote.block != header_hash || certificate.vote.height != header.height {
        return Err(ProofCheckError::OtherBlock {
            certified: certificate.vote.block,
            certificate_height: certificate.vote.height,
            header: header_hash,
            header_height: header.height,
        });
    }
    let mut balances = Vec::with_capacity(genesis.assets.len());
    for index in 0..genesis.assets.len() {
        let asset = AssetId(index as u32);
        let entries: Vec<&ProvenBalance> = document
            .balances
            .iter()
            .filter(|entry| entry.asset == asset)
            .collect();
        let [entry] = entries.as_slice() else {
            return Err(ProofCheckError::EntryCount {
                asset,
                count: entries.len(),
            });
        };
        let expected_key = seisan_contracts::keys::balance(member, asset);
        let key = hex::decode(&entry.key).map_err(|error| ProofCheckError::BadHex {
            asset,
            field: "key",
            reason: error.to_string(),
        })?;
        if key != expected_key {
            return Err(ProofCheckError::WrongKey {
                asset,
                member,
                expected: hex::encode(&expected_key),
                got: entry.key.clone(),
            });
        }
        let value = entry
            .value
            .as_deref()
            .map(hex::decode)
            .transpose()
            .map_err(|error| ProofCheckError::BadHex {
                asset,
                field: "value",
                reason: error.to_string(),
            })?;
        seisan_state::verify_proof(header.state_root, &key, value.as_deref(), &entry.proof)
            .map_err(|reason| ProofCheckError::Proof { asset, reason })?;
        let balance = match value {
            None => Balance::default(),
            Some(bytes) => {
                codec::decode::<Balance>(&bytes).map_err(|error| ProofCheckError::BadValue {
                    asset,
                    reason: error.to_string(),
                })?
            }
        };
        balances.push((asset, balance));
    }
    assert_eq!(
        balances.len(),
        genesis.assets.len(),
        "one balance per asset"
    );
    Ok(VerifiedBalances {
        member,
        height: header.height,
        block: header_hash,
        state_root: header.state_root,
        signers: certificate
            .signatures
            .iter()
            .map(|(signer, _)| *signer)
            .collect(),
        epoch: set.epoch,
        balances,
    })
}

/// Follows the validator sets from genesis's through `links`; returns the last.
pub(crate) fn follow_epochs(
    genesis: &Genesis,
    links: &[EpochLink],
) -> Result<ValidatorSet, ProofCheckError> {
    let mut set = ValidatorSet::genesis(genesis);
    for (index, link) in links.iter().enumerate() {
        let broken = |reason: String| ProofCheckError::EpochLink { index, reason };
        let expected = set.epoch.next();
        if link.set.epoch != expected {
            return Err(broken(format!(
                "names epoch {}, the next after {} is {expected}",
                link.set.epoch, set.epoch
            )));
        }
        link.set
            .check()
            .map_err(|error| broken(format!("epoch {expected}'s set is unusable: {error}")))?;
        let last = &link.last_header;
        if last.chain_id != genesis.chain_id || last.epoch != set.epoch {
            return Err(broken(format!(
                "the last block of epoch {} is of chain {:?}, epoch {}",
                set.epoch, last.chain_id.0, last.epoch
            )));
        }
        if last.next_validators != Some(link.set.hash()) {
            return Err(broken(format!(
                "the last block of epoch {} names the next set {:?}, not the given set {}",
                set.epoch,
                last.next_validators,
                link.set.hash()
            )));
        }
        seisan_crypto::verify_certificate_in(&genesis.domain(), &set, &link.certificate).map_err(
            |error| {
                broken(format!(
                    "the certificate does not verify against epoch {}'s validators: {error}",
                    set.epoch
                ))
            },
        )?;
        if link.certificate.vote.kind != VoteKind::Finalize {
            return Err(broken("the certificate is not a finalization".into()));
        }
        let (mut hash, mut height) = (last.hash(), last.height);
        for seal in &link.seals {
            if seal.parent != hash || seal.height != height.next() || seal.epoch != set.epoch {
                return Err(broken(format!(
                    "seal at height {} does not extend the chain at {height}",
                    seal.height
                )));
            }
            hash = seal.hash();
            height = seal.height;
        }
        if link.certificate.vote.block != hash || link.certificate.vote.height != height {
            return Err(broken(format!(
                "the certificate is for block {} at height {}, not the last block (or its seals) at {height}",
                link.certificate.vote.block, link.certificate.vote.height
            )));
        }
        set = link.set.clone();
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis_command::testnet_genesis;
    use seisan_crypto::Keypair;
    use seisan_state::{MemoryBackend, StageParent, StateDb};
    use seisan_types::genesis::OpeningBalance;
    use seisan_types::ids::View;
    use seisan_types::{Amount, BlockHeader, QuorumCertificate, Vote};

    const A: MemberId = MemberId(1);

    fn genesis() -> Genesis {
        let mut genesis = testnet_genesis(7101, 0);
        for (member, asset, amount) in [
            ("exchange-a", "ETH", "2"),
            ("exchange-a", "JPY", "200"),
            ("exchange-b", "JPY", "50"),
        ] {
            genesis.opening_balances.push(OpeningBalance {
                member: member.into(),
                asset: asset.into(),
                amount: amount.into(),
            });
        }
        genesis.validate().unwrap();
        genesis
    }

    fn certificate(genesis: &Genesis, header: &BlockHeader, signers: &[&str]) -> QuorumCertificate {
        let vote = Vote {
            chain_id: genesis.chain_id.clone(),
            epoch: seisan_types::Epoch(0),
            view: View(1),
            height: header.height,
            block: header.hash(),
            kind: VoteKind::Finalize,
        };
        crate::node::test_support::dev_certificate(genesis, vote, signers)
    }

    /// A genuine answer for `member`, built the way the node builds it: the genesis
    /// state committed, its proofs, a header over its root and a quorum certificate.
    fn answer(genesis: &Genesis, member: MemberId) -> BalanceProof {
        let db = StateDb::open(MemoryBackend::new()).unwrap();
        let staged = db
            .stage(
                StageParent::Committed,
                seisan_contracts::genesis_writes(genesis),
            )
            .unwrap();
        db.commit(&staged, vec![]).unwrap();
        let header = BlockHeader {
            chain_id: genesis.chain_id.clone(),
            epoch: seisan_types::Epoch(0),
            height: Height(0),
            view: View(1),
            parent: Hash::ZERO,
            timestamp_ms: genesis.genesis_time_ms,
            proposer: MemberId(0),
            txs_root: Hash::ZERO,
            state_root: staged.root,
            receipts_root: seisan_types::receipt::receipts_root(&[], &[]),
            epoch_end: None,
            next_validators: None,
        };
        let balances: Vec<ProvenBalance> = (0..genesis.assets.len())
            .map(|index| {
                let asset = AssetId(index as u32);
                let key = seisan_contracts::keys::balance(member, asset);
                let (value, proof) = db.prove(&key, Height(0)).unwrap();
                ProvenBalance {
                    asset,
                    symbol: genesis.assets[index].symbol.clone(),
                    key: hex::encode(&key),
                    value: value.map(hex::encode),
                    proof,
                }
            })
            .collect();
        BalanceProof {
            member,
            height: Height(0),
            certificate: certificate(genesis, &header, &["clearing-house", "exchange-a"]),
            header,
            epochs: Vec::new(),
            balances,
        }
    }

    fn check(
        genesis: &Genesis,
        member: MemberId,
        answer: &BalanceProof,
    ) -> Result<VerifiedBalances, ProofCheckError> {
        verify_balance_proof(genesis, member, answer)
    }

    #[test]
    fn a_genuine_answer_verifies_and_yields_the_balances() {
        let genesis = genesis();
        let verified = check(&genesis, A, &answer(&genesis, A)).unwrap();
        assert_eq!(verified.signers, vec![MemberId(0), MemberId(1)]);
        assert_eq!(verified.balances.len(), 2);
        assert_eq!(verified.balances[0].1.inventory, Amount(2 * 10u128.pow(18)));
        assert_eq!(verified.balances[1].1.inventory, Amount(200));
        // A member that never held an asset is proven absent, i.e. zero.
        let clearing_house = check(&genesis, MemberId(0), &answer(&genesis, MemberId(0))).unwrap();
        assert!(clearing_house
            .balances
            .iter()
            .all(|(_, balance)| *balance == Balance::default()));
    }

    #[test]
    fn a_tampered_value_is_refused() {
        let genesis = genesis();
        let mut tampered = answer(&genesis, A);
        let richer = Balance {
            inventory: Amount(1_000_000),
            ..Balance::default()
        };
        tampered.balances[1].value = Some(hex::encode(codec::encode(&richer)));
        let error = check(&genesis, A, &tampered).unwrap_err();
        assert!(
            matches!(
                error,
                ProofCheckError::Proof {
                    asset: AssetId(1),
                    ..
                }
            ),
            "{error}"
        );
        // Claiming the balance is absent is refused too.
        let mut absent = answer(&genesis, A);
        absent.balances[0].value = None;
        assert!(matches!(
            check(&genesis, A, &absent).unwrap_err(),
            ProofCheckError::Proof {
                asset: AssetId(0),
                ..
            }
        ));
    }

    #[test]
    fn a_tampered_proof_is_refused() {
        let genesis = genesis();
        let mut tampered = answer(&genesis, A);
        let bytes = &mut tampered.balances[0].proof.bytes;
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        assert!(matches!(
            check(&genesis, A, &tampered).unwrap_err(),
            ProofCheckError::Proof {
                asset: AssetId(0),
                ..
            }
        ));
    }

    #[test]
    fn another_members_balance_is_refused() {
        let genesis = genesis();
        // exchange-b's genuine entries presented as exchange-a's.
        let mut swapped = answer(&genesis, MemberId(2));
        swapped.member = A;
        assert!(matches!(
            check(&genesis, A, &swapped).unwrap_err(),
            ProofCheckError::WrongKey { .. }
        ));
        let missing = {
            let mut document = answer(&genesis, A);
            document.balances.pop();
            document
        };
        assert!(matches!(
            check(&genesis, A, &missing).unwrap_err(),
            ProofCheckError::EntryCount {
                asset: AssetId(1),
                count: 0
            }
        ));
    }

    #[test]
    fn a_header_or_certificate_that_does_not_chain_to_genesis_is_refused() {
        let genesis = genesis();
        // A different state root in the header breaks the certificate's block hash.
        let mut forged_root = answer(&genesis, A);
        forged_root.header.state_root = Hash([7; 32]);
        assert!(matches!(
            check(&genesis, A, &forged_root).unwrap_err(),
            ProofCheckError::OtherBlock { .. }
        ));
        // One signature is below the quorum of two.
        let mut lonely = answer(&genesis, A);
        let header = lonely.header.clone();
        lonely.certificate = certificate(&genesis, &header, &["exchange-a"]);
        assert!(matches!(
            check(&genesis, A, &lonely).unwrap_err(),
            ProofCheckError::Certificate { .. }
        ));
        // A certificate for a later block is reported as such.
        let mut later = header.clone();
        later.height = Height(5);
        let mut descendant = answer(&genesis, A);
        descendant.certificate = certificate(&genesis, &later, &["clearing-house", "exchange-b"]);
        assert!(matches!(
            check(&genesis, A, &descendant).unwrap_err(),
            ProofCheckError::DescendantCertificate { .. }
        ));
        // Signatures by keys that are not the genesis validators' fail.
        let mut other_genesis = genesis.clone();
        other_genesis.members[1].public_key = Keypair::dev("mallory").public_key();
        assert!(matches!(
            check(&other_genesis, A, &answer(&genesis, A)).unwrap_err(),
            ProofCheckError::Certificate { .. }
        ));
    }
}
