//! Seisan's cryptography: ed25519 keys (ed25519-dalek), strict and batch verification,
//! key files, and the checks every node runs on transactions, votes, certificates and
//! evidence.
//!
//! Guarantees: a signature is accepted only under `verify_strict` rules (no weak keys,
//! canonical encodings) or inside a batch that verifies as a whole; a certificate is
//! accepted only with at least q distinct genesis validators' valid signatures over its
//! domain-tagged vote.
//!
//! Batch verification uses random coefficients, and on a batch failure every item is
//! re-checked with `verify_strict` so the caller learns which one failed. A signature
//! crafted to pass a batch but not `verify_strict` can only be made by its own key's
//! owner, and at worst makes honest nodes disagree on that one transaction's validity,
//! which costs a view (liveness), never agreement.

// Lint anchors (issue 20): no `unwrap` outside tests (a panic names its invariant with
// `expect` or `assert!`), and nothing public that is not reachable from outside.
#![warn(unreachable_pub)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]
#![warn(missing_docs)]

pub mod keyfile;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use seisan_types::block::{Evidence, QuorumCertificate, SignedVote, Vote};
use seisan_types::genesis::Genesis;
use seisan_types::hash::Hash;
use seisan_types::ids::{ChainDomain, ChainId, Epoch, MemberId, Nonce};
use seisan_types::tags;
use seisan_types::tx::{SignedTransaction, Transaction};
use seisan_types::{PublicKey, Signature, ValidatorSet};
use std::collections::BTreeSet;
use std::fmt;

/// The names of the well-known development members whose keys are derived from
/// documented seeds (see [`Keypair::dev`]).
pub const DEV_MEMBER_NAMES: [&str; 3] = ["clearing-house", "exchange-a", "exchange-b"];

/// An ed25519 signing key with its public key.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair(public {})", self.public_key())
    }
}

impl Keypair {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Keypair {
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        Keypair::from_seed(seed)
    }

    /// The keypair of a 32-byte ed25519 seed (the secret key).
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        Keypair {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The well-known development key of `name`: its seed is
    /// `SHA-256(len-prefixed "SEISAN_DEV_KEY_SEED_V1", len-prefixed name)`. Anyone can
    /// derive it, so nodes accept such keys only on a dev chain.
    pub fn dev(name: &str) -> Keypair {
        Keypair::from_seed(Hash::tagged(tags::SEISAN_DEV_KEY_SEED_V1, &[name.as_bytes()]).0)
    }

    /// The 32-byte seed (the secret key), as a key file stores it.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public key derived from the seed.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// Signs a 32-byte digest (callers hash domain-tagged data first).
    pub fn sign_digest(&self, digest: &Hash) -> Signature {
        Signature(self.signing.sign(&digest.0).to_bytes())
    }
}

/// Whether `key` is one of the well-known development keys: the dev key of the given
/// member name, or of any name in [`DEV_MEMBER_NAMES`].
pub fn is_well_known_dev_key(key: &PublicKey, member_name: &str) -> bool {
    std::iter::once(member_name)
        .chain(DEV_MEMBER_NAMES)
        .any(|name| Keypair::dev(name).public_key() == *key)
}

/// Why a signature check failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // each variant's #[error] message is its documentation
pub enum SignatureError {
    #[error("public key is not a valid ed25519 point")]
    InvalidKey,
    #[error("public key is weak (small order) and is refused")]
    WeakKey,
    #[error("signature does not verify")]
    Invalid,
}

fn verifying_key(key: &PublicKey) -> Result<VerifyingKey, SignatureError> {
    let verifying = VerifyingKey::from_bytes(&key.0).map_err(|_| SignatureError::InvalidKey)?;
    if verifying.is_weak() {
        return Err(SignatureError::WeakKey);
    }
    Ok(verifying)
}

/// Decompressed verification keys by their encoding, so that a member's key is
/// decompressed (a square root in the field) once, not for every signature it made:
/// decompressing the keys of every batch was about 3% of a loaded node's samples
/// (issue 18). A pure memo: a key's decompression never changes, so an entry is never
/// wrong, only unused once its member rotates it away. Callers look up the keys of their
/// consortium's members, which bounds it; past [`KeyCache::MAX_KEYS`] it starts afresh.
/// Keys that do not decompress or are weak are not kept (their error is found again).
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: std::sync::RwLock<std::collections::HashMap<PublicKey, VerifyingKey>>,
}

impl KeyCache {
    /// Entries kept at most (a consortium has far fewer members).
    pub const MAX_KEYS: usize = 4096;

    fn verifying_key(&self, key: &PublicKey) -> Result<VerifyingKey, SignatureError> {
        if let Some(verifying) = self.keys.read().expect("key cache lock").get(key) {
            return Ok(*verifying);
        }
        let verifying = verifying_key(key)?;
        let mut keys = self.keys.write().expect("key cache lock");
        if keys.len() >= Self::MAX_KEYS {
            keys.clear();
        }
        keys.insert(*key, verifying);
        Ok(verifying)
    }

    /// How many keys are kept.
    pub fn len(&self) -> usize {
        self.keys.read().expect("key cache lock").len()
    }

    /// Whether no key is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Checks one signature over a digest with `verify_strict`.
pub fn verify_digest(
    key: &PublicKey,
    digest: &Hash,
    signature: &Signature,
) -> Result<(), SignatureError> {
    verify_digest_with(&verifying_key(key)?, digest, signature)
}

fn verify_digest_with(
    verifying: &VerifyingKey,
    digest: &Hash,
    signature: &Signature,
) -> Result<(), SignatureError> {
    let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
    verifying
        .verify_strict(&digest.0, &signature)
        .map_err(|_| SignatureError::Invalid)
}

/// Checks many (key, digest, signature) triples; returns one result per item. A batch
/// that verifies as a whole is accepted in one multi-scalar multiplication; otherwise
/// every item is checked on its own.
pub fn verify_batch(items: &[(PublicKey, Hash, Signature)]) -> Vec<Result<(), SignatureError>> {
    verify_batch_with(&KeyCache::default(), items)
}

/// [`verify_batch`] with the keys decompressed through `cache`.
pub fn verify_batch_with(
    cache: &KeyCache,
    items: &[(PublicKey, Hash, Signature)],
) -> Vec<Result<(), SignatureError>> {
    let keys: Vec<Result<VerifyingKey, SignatureError>> = items
        .iter()
        .map(|(key, _, _)| cache.verifying_key(key))
        .collect();
    if items.len() >= 2 && keys.iter().all(Result::is_ok) {
        let verifying: Vec<VerifyingKey> = keys.iter().flatten().copied().collect();
        let messages: Vec<&[u8]> = items.iter().map(|(_, digest, _)| &digest.0[..]).collect();
        let signatures: Vec<ed25519_dalek::Signature> = items
            .iter()
            .map(|(_, _, sig)| ed25519_dalek::Signature::from_bytes(&sig.0))
            .collect();
        if ed25519_dalek::verify_batch(&messages, &signatures, &verifying).is_ok() {
            return vec![Ok(()); items.len()];
        }
    }
    items
        .iter()
        .zip(keys)
        .map(|((_, digest, signature), key)| verify_digest_with(&key?, digest, signature))
        .collect()
}

/// Why a transaction was refused before execution.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // each variant's #[error] message is its documentation
pub enum TxError {
    #[error("transaction is for chain {got:?}, this is chain {expected:?}")]
    WrongChain { expected: ChainId, got: ChainId },
    #[error("member {member} is not in genesis")]
    UnknownMember { member: MemberId },
    #[error("signature of member {member} does not verify under this chain's genesis: {reason} (signed for another genesis, or altered)")]
    BadSignature {
        member: MemberId,
        reason: SignatureError,
    },
    #[error("nonce {nonce} of member {member} is stale: the last used nonce is {last}")]
    StaleNonce {
        member: MemberId,
        nonce: Nonce,
        last: Nonce,
    },
    #[error("nonce {nonce} of member {member} was already used")]
    RepeatedNonce { member: MemberId, nonce: Nonce },
}

/// Signs a transaction with the member's key, bound to the chain's genesis hash
/// ([`Genesis::hash`]).
pub fn sign_transaction(keypair: &Keypair, genesis: &Hash, tx: Transaction) -> SignedTransaction {
    let signature = keypair.sign_digest(&tx.signing_digest(genesis));
    SignedTransaction { tx, signature }
}

/// Checks chain id, membership and signature under this genesis (not the nonce: that
/// needs state, see [`check_nonce`]).
pub fn verify_transaction(genesis: &Genesis, signed: &SignedTransaction) -> Result<(), TxError> {
    verify_transactions(genesis, std::slice::from_ref(signed))
        .pop()
        .expect("one result per transaction")
}

/// [`verify_transaction`] for many transactions at once, with batch verification.
pub fn verify_transactions(
    genesis: &Genesis,
    signed: &[SignedTransaction],
) -> Vec<Result<(), TxError>> {
    let genesis_hash = genesis.hash();
    let mut results: Vec<Result<(), TxError>> = Vec::with_capacity(signed.len());
    let mut batch = Vec::with_capacity(signed.len());
    let mut batch_index = Vec::with_capacity(signed.len());
    for (index, transaction) in signed.iter().enumerate() {
        match check_envelope(genesis, transaction) {
            Ok(key) => {
                batch.push((
                    key,
                    transaction.tx.signing_digest(&genesis_hash),
                    transaction.signature,
                ));
                batch_index.push(index);
                results.push(Ok(()));
            }
            Err(error) => results.push(Err(error)),
        }
    }
    for (outcome, index) in verify_batch(&batch).into_iter().zip(batch_index) {
        if let Err(reason) = outcome {
            results[index] = Err(TxError::BadSignature {
                member: signed[index].tx.member,
                reason,
            });
        }
    }
    results
}

fn check_envelope(genesis: &Genesis, signed: &SignedTransaction) -> Result<PublicKey, TxError> {
    if signed.tx.chain_id != genesis.chain_id {
        return Err(TxError::WrongChain {
            expected: genesis.chain_id.clone(),
            got: signed.tx.chain_id.clone(),
        });
    }
    genesis
        .member(signed.tx.member)
        .map(|member| member.public_key)
        .ok_or(TxError::UnknownMember {
            member: signed.tx.member,
        })
}

/// Nonces strictly increase per member (gaps allowed): `nonce` must exceed `last`.
pub fn check_nonce(member: MemberId, nonce: Nonce, last: Option<Nonce>) -> Result<(), TxError> {
    match last {
        Some(last) if nonce == last => Err(TxError::RepeatedNonce { member, nonce }),
        Some(last) if nonce < last => Err(TxError::StaleNonce {
            member,
            nonce,
            last,
        }),
        _ => Ok(()),
    }
}

/// Signs a consensus vote, bound to the chain's genesis hash.
pub fn sign_vote(keypair: &Keypair, genesis: &Hash, member: MemberId, vote: Vote) -> SignedVote {
    let signature = keypair.sign_digest(&vote.signing_digest(genesis));
    SignedVote {
        vote,
        member,
        signature,
    }
}

/// Why a vote or certificate was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // each variant's #[error] message is its documentation
pub enum CertificateError {
    #[error("vote is for chain {got:?}, this is chain {expected:?}")]
    WrongChain { expected: ChainId, got: ChainId },
    #[error("vote is for epoch {got}, the validator set given is epoch {expected}")]
    WrongEpoch { expected: Epoch, got: Epoch },
    #[error("signer {member} is not a validator of the vote's epoch")]
    NotValidator { member: MemberId },
    #[error("signer {member} appears more than once")]
    DuplicateSigner { member: MemberId },
    #[error("certificate has {have} distinct signers; the quorum is {need}")]
    TooFewSigners { have: usize, need: usize },
    #[error("signature of {member} does not verify under this chain's genesis: {reason} (signed for another genesis, or altered)")]
    BadSignature {
        member: MemberId,
        reason: SignatureError,
    },
    #[error("signers are not in ascending member order")]
    Unsorted,
}

fn validator_key(set: &ValidatorSet, member: MemberId) -> Result<PublicKey, CertificateError> {
    set.key_of(member)
        .ok_or(CertificateError::NotValidator { member })
}

fn check_chain_and_epoch(
    domain: &ChainDomain,
    set: &ValidatorSet,
    vote: &Vote,
) -> Result<(), CertificateError> {
    if vote.chain_id != domain.chain_id {
        return Err(CertificateError::WrongChain {
            expected: domain.chain_id.clone(),
            got: vote.chain_id.clone(),
        });
    }
    if vote.epoch != set.epoch {
        return Err(CertificateError::WrongEpoch {
            expected: set.epoch,
            got: vote.epoch,
        });
    }
    Ok(())
}

/// Checks one signed vote against genesis's validators (epoch 0).
pub fn verify_vote(genesis: &Genesis, signed: &SignedVote) -> Result<(), CertificateError> {
    verify_vote_in(&genesis.domain(), &ValidatorSet::genesis(genesis), signed)
}

/// Checks one signed vote: this chain, the set's epoch, signed by one of its validators
/// over this genesis.
pub fn verify_vote_in(
    domain: &ChainDomain,
    set: &ValidatorSet,
    signed: &SignedVote,
) -> Result<(), CertificateError> {
    check_chain_and_epoch(domain, set, &signed.vote)?;
    let key = validator_key(set, signed.member)?;
    let digest = signed.vote.signing_digest(&domain.genesis);
    verify_digest(&key, &digest, &signed.signature).map_err(|reason| {
        CertificateError::BadSignature {
            member: signed.member,
            reason,
        }
    })
}

/// Builds a certificate from signed votes on one vote (sorted, deduplicated).
pub fn assemble_certificate(vote: Vote, votes: &[SignedVote]) -> QuorumCertificate {
    let mut signatures: Vec<(MemberId, Signature)> = votes
        .iter()
        .filter(|signed| signed.vote == vote)
        .map(|signed| (signed.member, signed.signature))
        .collect();
    signatures.sort_by_key(|(member, _)| *member);
    signatures.dedup_by_key(|(member, _)| *member);
    QuorumCertificate { vote, signatures }
}

/// Checks a certificate against genesis's validators (epoch 0).
pub fn verify_certificate(
    genesis: &Genesis,
    certificate: &QuorumCertificate,
) -> Result<(), CertificateError> {
    verify_certificate_in(
        &genesis.domain(),
        &ValidatorSet::genesis(genesis),
        certificate,
    )
}

/// Checks a certificate: right chain and epoch, signers distinct validators of the
/// set in ascending order, at least its quorum of them, every signature valid
/// (batch-verified).
pub fn verify_certificate_in(
    domain: &ChainDomain,
    set: &ValidatorSet,
    certificate: &QuorumCertificate,
) -> Result<(), CertificateError> {
    let vote = &certificate.vote;
    check_chain_and_epoch(domain, set, vote)?;
    let digest = vote.signing_digest(&domain.genesis);
    let mut seen = BTreeSet::new();
    let mut previous: Option<MemberId> = None;
    let mut batch = Vec::with_capacity(certificate.signatures.len());
    for (member, signature) in &certificate.signatures {
        if !seen.insert(*member) {
            return Err(CertificateError::DuplicateSigner { member: *member });
        }
        if previous.is_some_and(|previous| previous > *member) {
            return Err(CertificateError::Unsorted);
        }
        previous = Some(*member);
        batch.push((validator_key(set, *member)?, digest, *signature));
    }
    let need = set.quorum();
    if seen.len() < need {
        return Err(CertificateError::TooFewSigners {
            have: seen.len(),
            need,
        });
    }
    for (outcome, (member, _)) in verify_batch(&batch)
        .into_iter()
        .zip(&certificate.signatures)
    {
        outcome.map_err(|reason| CertificateError::BadSignature {
            member: *member,
            reason,
        })?;
    }
    Ok(())
}

/// Whether evidence proves a double vote: two conflicting votes, both validly signed
/// by the same validator.
pub fn verify_evidence(genesis: &Genesis, evidence: &Evidence) -> bool {
    verify_evidence_in(&genesis.domain(), &ValidatorSet::genesis(genesis), evidence)
}

/// [`verify_evidence`] against the validators of the votes' epoch.
pub fn verify_evidence_in(domain: &ChainDomain, set: &ValidatorSet, evidence: &Evidence) -> bool {
    evidence.is_conflict()
        && verify_vote_in(domain, set, &evidence.first).is_ok()
        && verify_vote_in(domain, set, &evidence.second).is_ok()
}

#[cfg(test)]
mod tests;
