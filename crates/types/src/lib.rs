//! Seisan's core types, shared by every other crate.
//!
//! This crate is the bottom of the dependency graph: it knows nothing of networks,
//! storage engines or runtimes. It guarantees that every value that is signed or hashed
//! has exactly one byte encoding ([`codec`]), that amounts are integer minor units whose
//! decimal form is checked against the asset's scale ([`amount`]), and that a genesis
//! file that loads is internally consistent ([`genesis`]).

// Lint anchors (issue 20): no `unwrap` outside tests (a panic names its invariant with
// `expect` or `assert!`), and nothing public that is not reachable from outside.
#![warn(unreachable_pub)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod amount;
pub mod attestation;
pub mod bank;
pub mod block;
pub mod bytes;
pub mod clearing;
pub mod codec;
pub mod custody;
pub mod epoch;
pub mod genesis;
pub mod governance;
pub mod hash;
pub mod ids;
pub mod membership;
pub mod mirror;
pub mod receipt;
pub mod schema;
pub mod state;
pub mod tags;
pub mod tx;

pub use amount::{Amount, AmountError, Asset, AssetKind};
pub use block::{Block, BlockHeader, Evidence, QuorumCertificate, SignedVote, Vote, VoteKind};
pub use bytes::{PublicKey, Signature};
pub use codec::CodecError;
pub use epoch::{ValidatorSet, ValidatorSetError, ACTIVATION_DELAY_BLOCKS, MAX_VALIDATORS};
pub use genesis::{Genesis, GenesisError, Member, Role, SettlementSettings};
pub use governance::{GovernanceChange, Proposal, ProposalId, ProposalRecord, ProposalStatus};
pub use hash::Hash;
pub use ids::{AssetId, ChainDomain, ChainId, Epoch, Height, MemberId, Nonce, View};
pub use membership::{MemberEntry, MemberStatus, Membership, MembershipError};
pub use state::{StateView, WriteSet};
pub use tx::{SignedTransaction, Transaction, TxBody};
