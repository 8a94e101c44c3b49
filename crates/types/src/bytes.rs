//! Fixed-size byte strings (public keys, signatures) with hex in JSON and raw bytes in
//! the binary codec.

use std::fmt;

/// Decodes exactly `N` bytes from hex, with an optional `0x` prefix.
pub fn array_from_hex<const N: usize>(text: &str) -> Result<[u8; N], String> {
    let trimmed = text.strip_prefix("0x").unwrap_or(text);
    let bytes = hex::decode(trimmed).map_err(|error| format!("invalid hex: {error}"))?;
    bytes
        .try_into()
        .map_err(|bytes: Vec<u8>| format!("expected {N} bytes, got {}", bytes.len()))
}

/// Implements serde for a newtype over `[u8; N]`: a hex string in human-readable
/// formats (JSON), a fixed-size tuple of bytes in the binary codec.
macro_rules! hex_serde {
    ($name:ident, $len:expr) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.serialize_str(&hex::encode(self.0))
                } else {
                    use serde::ser::SerializeTuple;
                    let mut tuple = serializer.serialize_tuple($len)?;
                    for byte in &self.0 {
                        tuple.serialize_element(byte)?;
                    }
                    tuple.end()
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                    $crate::bytes::array_from_hex::<$len>(&text)
                        .map($name)
                        .map_err(serde::de::Error::custom)
                } else {
                    struct ArrayVisitor;
                    impl<'de> serde::de::Visitor<'de> for ArrayVisitor {
                        type Value = [u8; $len];
                        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                            write!(f, "{} bytes", $len)
                        }
                        fn visit_seq<A: serde::de::SeqAccess<'de>>(
                            self,
                            mut seq: A,
                        ) -> Result<Self::Value, A::Error> {
                            let mut out = [0u8; $len];
                            for (index, slot) in out.iter_mut().enumerate() {
                                *slot = seq.next_element()?.ok_or_else(|| {
                                    serde::de::Error::invalid_length(index, &self)
                                })?;
                            }
                            Ok(out)
                        }
                    }
                    deserializer
                        .deserialize_tuple($len, ArrayVisitor)
                        .map($name)
                }
            }
        }
    };
}
pub(crate) use hex_serde;

/// Implements the OpenAPI schema of a [`hex_serde`] type: the lowercase hex string JSON
/// carries, exactly `$len` bytes long.
macro_rules! hex_schema {
    ($name:ident, $len:expr, $description:expr) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::schema::hex_bytes($len, $description)
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use hex_schema;

/// An ed25519 public key (32 bytes). Validity as a curve point is checked by the
/// crypto crate when the key is used.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

/// An ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

hex_serde!(PublicKey, 32);
hex_serde!(Signature, 64);
hex_schema!(
    PublicKey,
    32,
    "An ed25519 public key: 32 bytes as 64 lowercase hex digits."
);
hex_schema!(
    Signature,
    64,
    "An ed25519 signature: 64 bytes as 128 lowercase hex digits."
);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", &hex::encode(self.0)[..16])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", &hex::encode(self.0)[..16])
    }
}
