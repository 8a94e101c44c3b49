//! Catch-up (R12): asking a peer for blocks this node lacks, and answering such asks.
//!
//! A node that holds a certificate for a block it does not have (or a block whose
//! parent it does not have) emits [`crate::Output::Fetch`] with a [`FetchRequest`]. The
//! host sends it to some peer, which answers with [`crate::answer_fetch`]; the host feeds the
//! [`FetchResponse`] back as [`crate::Input::Fetched`]. The answer is untrusted: the
//! engine keeps a block only if its hash is vouched for by a certificate it verified
//! against genesis or by the parent link of a block it already keeps, so a response
//! needs nothing but the genesis validator set to check.

use crate::message::{check_certificate_bounds, MessageError, MAX_MESSAGE_BYTES};
use seisan_types::block::MAX_TXS_PER_BLOCK;
use seisan_types::codec;
use seisan_types::{Block, Hash, Height, QuorumCertificate};
use serde::{Deserialize, Serialize};

/// The most blocks one response carries (and the engine reads).
pub const MAX_FETCH_BLOCKS: usize = 64;
/// The most certificates one response carries (and the engine reads).
pub const MAX_FETCH_CERTIFICATES: usize = 64;
/// The largest encoded response.
pub const MAX_FETCH_RESPONSE_BYTES: usize = 64 << 20;

/// "I lack block `target` (at `target_height`) and its ancestors down to `from_height`
/// (my finalized height + 1)."
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// The lowest height wanted (the asker's finalized height + 1).
    pub from_height: Height,
    /// The block wanted.
    pub target: Hash,
    /// Its height.
    pub target_height: Height,
}

/// Blocks in ascending height order, plus certificates that vouch for some of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchResponse {
    /// Blocks, ascending by height.
    pub blocks: Vec<Block>,
    /// Certificates vouching for some of them.
    pub certificates: Vec<QuorumCertificate>,
}

impl FetchRequest {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a request from a peer.
    pub fn decode(bytes: &[u8]) -> Result<FetchRequest, MessageError> {
        Ok(codec::decode_with_limit(bytes, 128)?)
    }
}

impl FetchResponse {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a response from a peer and checks its bounds.
    pub fn decode(bytes: &[u8]) -> Result<FetchResponse, MessageError> {
        let response: FetchResponse =
            codec::decode_with_limit(bytes, MAX_FETCH_RESPONSE_BYTES.min(codec::MAX_DECODE_BYTES))?;
        response.check_bounds()?;
        Ok(response)
    }

    /// Checks the size bounds of a response (decoded ones are checked already).
    pub fn check_bounds(&self) -> Result<(), MessageError> {
        if self.certificates.len() > MAX_FETCH_CERTIFICATES {
            return Err(MessageError::TooManyCertificates {
                count: self.certificates.len(),
            });
        }
        if let Some(block) = self
            .blocks
            .iter()
            .find(|block| block.txs.len() > MAX_TXS_PER_BLOCK)
        {
            return Err(MessageError::TooManyTransactions {
                count: block.txs.len(),
            });
        }
        self.certificates
            .iter()
            .try_for_each(check_certificate_bounds)
    }
}

const _: () = assert!(MAX_FETCH_BLOCKS >= 2);
const _: () = assert!(MAX_MESSAGE_BYTES <= MAX_FETCH_RESPONSE_BYTES);

/// A final block with a finalize certificate (R8). The certificate certifies this block
/// or, when the block was finalized as an ancestor, the descendant at
/// `certificate.vote.height`; the blocks between are linked by their parent hashes and
/// are output in the same step, in height order.
///
/// The last block of an epoch may be final through a finalized seal above it (E4):
/// then `seals` holds the seals from the block's child up to the certified one, so the
/// link from the certificate to the block can still be checked. Empty otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizedBlock {
    /// The final block.
    pub block: Block,
    /// The finalize certificate of it or of a descendant.
    pub certificate: QuorumCertificate,
    /// The seals between the block and the certified one (E4); usually empty.
    pub seals: Vec<Block>,
}

/// Where a serving node finds finalized blocks (its block store). Implementations
/// return what they durably hold; they need not be complete.
pub trait FinalizedStore {
    /// The highest finalized height held (0 if none).
    fn finalized_height(&self) -> Height;
    /// The finalized block at `height` with the certificate it was finalized with.
    fn finalized_block(&self, height: Height) -> Option<FinalizedBlock>;
}
