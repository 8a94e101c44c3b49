//! SHA-256 hashing with domain separation.

use sha2::{Digest, Sha256};
use std::fmt;

/// A 32-byte SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub const ZERO: Hash = Hash([0; 32]);

    /// Hashes `parts` under a domain tag. The tag and every part are length-prefixed,
    /// so no two different (tag, parts) inputs share a preimage.
    pub fn tagged(tag: &[u8], parts: &[&[u8]]) -> Hash {
        let mut hasher = Sha256::new();
        hasher.update((tag.len() as u64).to_le_bytes());
        hasher.update(tag);
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        Hash(hasher.finalize().into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Result<Hash, String> {
        crate::bytes::array_from_hex::<32>(text).map(Hash)
    }

    /// A binary Merkle root over already-hashed leaves (the empty list hashes to a
    /// tagged empty input; an odd node is carried up unchanged).
    pub fn merkle_root(tag: &[u8], leaves: &[Hash]) -> Hash {
        if leaves.is_empty() {
            return Hash::tagged(tag, &[]);
        }
        let mut level: Vec<Hash> = leaves.to_vec();
        while level.len() > 1 {
            let mut next = Vec::with_capacity(level.len().div_ceil(2));
            for pair in level.chunks(2) {
                match pair {
                    [left, right] => next.push(Hash::tagged(tag, &[&left.0, &right.0])),
                    [single] => next.push(*single),
                    _ => unreachable!("chunks(2) yields one or two items"),
                }
            }
            level = next;
        }
        level[0]
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..16])
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

crate::bytes::hex_serde!(Hash, 32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_separate_domains() {
        assert_ne!(Hash::tagged(b"A", &[b"x"]), Hash::tagged(b"B", &[b"x"]));
        assert_ne!(
            Hash::tagged(b"A", &[b"xy"]),
            Hash::tagged(b"A", &[b"x", b"y"])
        );
    }

    #[test]
    fn merkle_root_depends_on_order_and_content() {
        let a = Hash::tagged(b"t", &[b"a"]);
        let b = Hash::tagged(b"t", &[b"b"]);
        assert_ne!(
            Hash::merkle_root(b"m", &[a, b]),
            Hash::merkle_root(b"m", &[b, a])
        );
        assert_eq!(Hash::merkle_root(b"m", &[a]), a);
        assert_ne!(Hash::merkle_root(b"m", &[]), Hash::ZERO);
    }
}
