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

    /// The path from leaf `index` to [`Hash::merkle_root`] over `leaves`: one sibling
    /// per level where the node had one (an odd node carried up has none), lowest first.
    pub fn merkle_path(tag: &[u8], leaves: &[Hash], index: usize) -> Vec<MerkleStep> {
        assert!(index < leaves.len(), "leaf {index} of {}", leaves.len());
        let mut path = Vec::new();
        let mut level: Vec<Hash> = leaves.to_vec();
        let mut position = index;
        while level.len() > 1 {
            let sibling = position ^ 1;
            if sibling < level.len() {
                path.push(MerkleStep {
                    sibling: level[sibling],
                    sibling_is_left: sibling < position,
                });
            }
            level = level
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => Hash::tagged(tag, &[&left.0, &right.0]),
                    [single] => *single,
                    _ => unreachable!("chunks(2) yields one or two items"),
                })
                .collect();
            position /= 2;
        }
        path
    }

    /// The root a leaf with this `path` hashes up to; equal to the committed root only
    /// if the leaf is in the tree.
    pub fn merkle_fold(tag: &[u8], leaf: Hash, path: &[MerkleStep]) -> Hash {
        path.iter().fold(leaf, |node, step| {
            if step.sibling_is_left {
                Hash::tagged(tag, &[&step.sibling.0, &node.0])
            } else {
                Hash::tagged(tag, &[&node.0, &step.sibling.0])
            }
        })
    }
}

/// One level of a Merkle inclusion path.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct MerkleStep {
    pub sibling: Hash,
    /// Whether the sibling is hashed before (to the left of) the node being proven.
    pub sibling_is_left: bool,
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
crate::bytes::hex_schema!(
    Hash,
    32,
    "A SHA-256 digest: 32 bytes as 64 lowercase hex digits."
);

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

    #[test]
    fn merkle_paths_prove_every_leaf_and_nothing_else() {
        for size in 1..=9usize {
            let leaves: Vec<Hash> = (0..size)
                .map(|i| Hash::tagged(b"leaf", &[&i.to_le_bytes()]))
                .collect();
            let root = Hash::merkle_root(b"m", &leaves);
            for (index, leaf) in leaves.iter().enumerate() {
                let path = Hash::merkle_path(b"m", &leaves, index);
                assert_eq!(
                    Hash::merkle_fold(b"m", *leaf, &path),
                    root,
                    "{size}/{index}"
                );
                let stranger = Hash::tagged(b"leaf", &[b"stranger"]);
                assert_ne!(Hash::merkle_fold(b"m", stranger, &path), root);
                if let Some(first) = path.first() {
                    let mut flipped = path.clone();
                    flipped[0].sibling_is_left = !first.sibling_is_left;
                    assert_ne!(Hash::merkle_fold(b"m", *leaf, &flipped), root);
                }
            }
        }
    }
}
