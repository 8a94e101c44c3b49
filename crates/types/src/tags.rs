//! Domain-separation tags. Every hash and signature in Seisan is computed over one of
//! these tags followed by the data, so a signature made for one purpose can never be
//! replayed as another. Released tags never change; a new meaning gets a new `_V2` tag.

/// Signing bytes of a transaction envelope, bound to the exact genesis (its hash) and
/// not only the chain id. (`SEISAN_TX_SIGN_V1` covered the envelope alone; retired.)
pub const SEISAN_TX_SIGN_V2: &[u8] = b"SEISAN_TX_SIGN_V2";
/// Identifier (hash) of a signed transaction.
pub const SEISAN_TX_ID_V1: &[u8] = b"SEISAN_TX_ID_V1";
/// Hash of a block header (the block's identity).
pub const SEISAN_BLOCK_HEADER_V1: &[u8] = b"SEISAN_BLOCK_HEADER_V1";
/// Merkle tree over a block's transactions.
pub const SEISAN_BLOCK_TXS_V1: &[u8] = b"SEISAN_BLOCK_TXS_V1";
/// Signing bytes of a consensus vote (notarize, finalize, nullify), bound to the genesis
/// hash. (`SEISAN_CONSENSUS_VOTE_V1` covered the vote alone; retired.)
pub const SEISAN_CONSENSUS_VOTE_V2: &[u8] = b"SEISAN_CONSENSUS_VOTE_V2";
/// Signing bytes of a block proposal, bound to the genesis hash. (`_V1`: retired.)
pub const SEISAN_CONSENSUS_PROPOSAL_V2: &[u8] = b"SEISAN_CONSENSUS_PROPOSAL_V2";
/// Seed derivation of the well-known development keys.
pub const SEISAN_DEV_KEY_SEED_V1: &[u8] = b"SEISAN_DEV_KEY_SEED_V1";
/// Identity of a public-chain deposit (chain, transaction, log position).
pub const SEISAN_CUSTODY_DEPOSIT_ID_V1: &[u8] = b"SEISAN_CUSTODY_DEPOSIT_ID_V1";
/// Hash of a genesis document.
pub const SEISAN_GENESIS_HASH_V1: &[u8] = b"SEISAN_GENESIS_HASH_V1";
/// Content hash of an attested external fact (a bank entry, a public-chain deposit or
/// payout): attestations agree when their content hashes are equal.
pub const SEISAN_ATTESTED_FACT_V1: &[u8] = b"SEISAN_ATTESTED_FACT_V1";
/// Domain tag of a validator set's commitment.
pub const SEISAN_VALIDATOR_SET_V1: &[u8] = b"SEISAN_VALIDATOR_SET_V1";
/// Hash of a consortium membership (members, statuses, quorum, epoch).
pub const SEISAN_MEMBERSHIP_V1: &[u8] = b"SEISAN_MEMBERSHIP_V1";
/// A leaf of a block's receipts tree: one transaction's receipt or one block-level event.
pub const SEISAN_RECEIPT_LEAF_V1: &[u8] = b"SEISAN_RECEIPT_LEAF_V1";
/// Inner nodes of a block's receipts tree (the header's `receipts_root`).
pub const SEISAN_BLOCK_RECEIPTS_V1: &[u8] = b"SEISAN_BLOCK_RECEIPTS_V1";
/// Signing bytes of an authenticated HTTP API request (method, path and query, time,
/// body hash): proves which member sends it.
pub const SEISAN_HTTP_REQUEST_V1: &[u8] = b"SEISAN_HTTP_REQUEST_V1";
/// Signing bytes of a self-issued API bearer token (its expiry): lets a tool that can
/// only send a fixed header (schemathesis, a browser, a scraper) act as the member until
/// then.
pub const SEISAN_HTTP_TOKEN_V1: &[u8] = b"SEISAN_HTTP_TOKEN_V1";
