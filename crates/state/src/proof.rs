//! Proofs that a key has a value (or no value) under a state root. They verify with
//! nothing but the root, so a member can check a balance against a finalized header
//! without trusting the node that served it.

use crate::trie;
use seisan_types::hash::Hash;
use serde::{Deserialize, Serialize};

/// The largest encoded proof accepted (at most 256 siblings of 32 bytes and a bucket of
/// [`trie::BUCKET`] entries of 64 bytes: under 10 KiB).
pub const MAX_PROOF_BYTES: usize = 16 * 1024;

/// A proof of the state trie ([`trie::Proof`]: the key's bucket and the siblings' hashes
/// on its path), carried as its borsh encoding (hex in JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StateProof {
    /// The proof's borsh encoding, hex.
    #[serde(with = "hex_bytes")]
    #[schema(value_type = String, pattern = "^([0-9a-f]{2})*$")]
    pub bytes: Vec<u8>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("proof is {size} bytes; the limit is {MAX_PROOF_BYTES}")]
    TooLarge { size: usize },
    #[error("proof is malformed: {reason}")]
    Malformed { reason: String },
    #[error("proof does not verify against root {root}: {reason}")]
    Mismatch { root: Hash, reason: String },
}

impl StateProof {
    pub(crate) fn from_trie(proof: &trie::Proof) -> StateProof {
        StateProof {
            bytes: borsh::to_vec(proof).expect("proof encodes"),
        }
    }
}

/// Checks that under `root`, `key` has `value` (`None`: the key is absent).
pub fn verify_proof(
    root: Hash,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &StateProof,
) -> Result<(), ProofError> {
    if proof.bytes.len() > MAX_PROOF_BYTES {
        return Err(ProofError::TooLarge {
            size: proof.bytes.len(),
        });
    }
    let decoded: trie::Proof =
        borsh::from_slice(&proof.bytes).map_err(|error| ProofError::Malformed {
            reason: error.to_string(),
        })?;
    let value = value.map(trie::value_hash);
    trie::verify(&root.0, &trie::key_hash(key), value.as_ref(), &decoded).map_err(|error| {
        ProofError::Mismatch {
            root,
            reason: error.to_string(),
        }
    })
}
