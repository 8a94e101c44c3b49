//! The one canonical binary codec. Every byte string that is signed, hashed, stored or
//! sent between nodes is made here, so a change of serialization library touches this
//! file only.
//!
//! Encoding is bincode 2 (pinned to 2.0.1; 3.0.0 on crates.io is a tombstone) through
//! serde, with fixed-width little-endian integers. Decoding is strict: the input must
//! be at most [`MAX_DECODE_BYTES`] (or the caller's smaller limit), must be consumed
//! exactly (no trailing bytes), and must re-encode to the very same bytes. So every
//! value has exactly one encoding and a signature over bytes is a signature over a
//! value.

use serde::{de::DeserializeOwned, Serialize};

/// The largest input any decode accepts.
pub const MAX_DECODE_BYTES: usize = 16 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_fixed_int_encoding()
        .with_little_endian()
        .with_limit::<MAX_DECODE_BYTES>()
}

/// Why bytes were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("input is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed input: {reason}")]
    Malformed { reason: String },
    #[error("{trailing} trailing bytes after the value")]
    TrailingBytes { trailing: usize },
    #[error("input is not in canonical form (it does not re-encode to the same bytes)")]
    NonCanonical,
    #[error("value cannot be encoded: {reason}")]
    Unencodable { reason: String },
}

/// Encodes a value. Panics only if the value is larger than [`MAX_DECODE_BYTES`],
/// which no caller may build (blocks and messages have smaller named bounds).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    try_encode(value).expect("encoding a bounded value cannot fail")
}

/// Encodes a value, reporting values that cannot be encoded.
pub fn try_encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|error| CodecError::Unencodable {
        reason: error.to_string(),
    })
}

/// Decodes a value under the global size limit.
pub fn decode<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_with_limit(bytes, MAX_DECODE_BYTES)
}

/// Decodes a value from at most `limit` bytes, strictly (see the module docs).
pub fn decode_with_limit<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
    limit: usize,
) -> Result<T, CodecError> {
    let limit = limit.min(MAX_DECODE_BYTES);
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    let (value, used): (T, usize) =
        bincode::serde::decode_from_slice(bytes, config()).map_err(|error| {
            CodecError::Malformed {
                reason: error.to_string(),
            }
        })?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            trailing: bytes.len() - used,
        });
    }
    if try_encode(&value)? != bytes {
        return Err(CodecError::NonCanonical);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;
    use crate::ids::{ChainId, MemberId, Nonce};
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        member: MemberId,
        nonce: Nonce,
        amount: Amount,
        flag: bool,
        note: Option<String>,
        chain: ChainId,
    }

    fn sample() -> Sample {
        Sample {
            member: MemberId(7),
            nonce: Nonce(9),
            amount: Amount(1 << 100),
            flag: true,
            note: Some("hello".into()),
            chain: ChainId("dev".into()),
        }
    }

    #[test]
    fn round_trips() {
        let bytes = encode(&sample());
        assert_eq!(decode::<Sample>(&bytes).unwrap(), sample());
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = encode(&sample());
        bytes.push(0);
        assert_eq!(
            decode::<Sample>(&bytes),
            Err(CodecError::TrailingBytes { trailing: 1 })
        );
    }

    #[test]
    fn rejects_non_canonical_bool_and_option_tags() {
        let bytes = encode(&sample());
        // member(4) + nonce(8) + amount(16) = 28: the bool.
        let mut bad_bool = bytes.clone();
        bad_bool[28] = 2;
        assert!(decode::<Sample>(&bad_bool).is_err());
        let mut bad_option = bytes.clone();
        bad_option[29] = 7;
        assert!(decode::<Sample>(&bad_option).is_err());
    }

    #[test]
    fn rejects_truncated_and_oversized_input() {
        let bytes = encode(&sample());
        assert!(matches!(
            decode::<Sample>(&bytes[..bytes.len() - 1]),
            Err(CodecError::Malformed { .. })
        ));
        assert!(matches!(
            decode_with_limit::<Sample>(&bytes, 4),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn rejects_length_prefix_larger_than_input() {
        // A vector claiming 2^40 elements must fail without allocating them.
        let mut bytes = (1u64 << 40).to_le_bytes().to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        assert!(decode::<Vec<u64>>(&bytes).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_accepted_bytes_are_canonical(
            bytes in proptest::collection::vec(any::<u8>(), 0..96)
        ) {
            if let Ok(value) = decode::<Sample>(&bytes) {
                prop_assert_eq!(encode(&value), bytes);
            }
        }

        #[test]
        fn round_trip_any(member in any::<u32>(), nonce in any::<u64>(), amount in any::<u128>(),
                          note in proptest::option::of(".{0,20}")) {
            let value = Sample {
                member: MemberId(member), nonce: Nonce(nonce), amount: Amount(amount),
                flag: false, note, chain: ChainId("x".into()),
            };
            let bytes = encode(&value);
            prop_assert_eq!(decode::<Sample>(&bytes).unwrap(), value);
        }
    }
}
