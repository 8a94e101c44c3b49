//! Signed transactions: the envelope every member signs, and the body kinds.
//!
//! A transaction is signed over a digest of (domain tag, chain id, member, nonce,
//! body), so it is worthless on another chain, from another member or at another
//! nonce. The body kinds are the consortium's whole vocabulary; the contracts crate
//! gives them meaning.
//!
//! A member has two nonce sequences, its [`Lane`]s: the member lane (everything a
//! person or back office signs) and the node lane (the attestations its validator node
//! signs by itself). The lane is derived from the body, which the signature covers, so
//! the envelope carries no lane and neither signer can take the other's nonce.

use crate::amount::Amount;
use crate::bank::BankFact;
use crate::bytes::Signature;
use crate::clearing::{OrderId, OrderRequest, QuoteAnswer, QuoteRequest, TradeTerms};
use crate::codec;
use crate::custody::{ChainAddress, ChainTxHash, DepositFact, WithdrawalId};
use crate::governance::{Proposal, ProposalId};
use crate::hash::Hash;
use crate::ids::{AssetId, ChainId, MemberId, Nonce};
use crate::mirror::MirrorFact;
use crate::tags;
use serde::{Deserialize, Serialize};

/// The largest encoded signed transaction a node accepts.
pub const MAX_TRANSACTION_BYTES: usize = 64 * 1024;
/// The most allocations one batch may carry.
pub const MAX_ALLOCATIONS_PER_BATCH: usize = 1024;
/// The longest customer id, in bytes.
pub const MAX_CUSTOMER_ID_BYTES: usize = 64;

/// An exchange's own identifier for one of its customers (the patent's customer-deposit
/// database key). Opaque to Seisan.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct CustomerId(pub String);

/// Which way an allocation moves an amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AllocationDirection {
    /// From the exchange's own inventory into a customer sub-account.
    ToCustomer,
    /// From a customer sub-account back into the exchange's own inventory.
    ToInventory,
}

/// One movement between a member's inventory and one of its customer sub-accounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Allocation {
    pub asset: AssetId,
    pub customer: CustomerId,
    pub amount: Amount,
    pub direction: AllocationDirection,
}

/// One of a member's two nonce sequences (see the module docs). Each lane's nonces
/// start at 1 and advance by exactly one, independently of the other lane.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Everything a person or the member's back office signs.
    Member,
    /// The attestations the member's validator node signs by itself.
    Node,
}

impl Lane {
    /// Both lanes, in order.
    pub const ALL: [Lane; 2] = [Lane::Member, Lane::Node];

    /// The lane's name, as in messages and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Lane::Member => "member",
            Lane::Node => "node",
        }
    }
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a transaction asks for. The contracts crate defines what each kind does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TxBody {
    /// Move an amount between inventory and a customer sub-account.
    Allocate(Allocation),
    /// Post many allocations at once (the periodic sync of an exchange's customer
    /// database); all apply or none.
    AllocateBatch(Vec<Allocation>),
    /// A limit order (the patent's contract request, S230): locks what it may need,
    /// or is parked with a top-up request when the member's available balance is short.
    PlaceOrder(OrderRequest),
    /// Cancel one of the member's own open orders or quotes; releases its lock.
    CancelOrder { order: OrderId },
    /// Ask named members for a price (S301).
    RequestQuote(QuoteRequest),
    /// Give a firm quote to a request naming this member (S302); locks like an order.
    AnswerQuote(QuoteAnswer),
    /// The asker takes a quote (S303); it settles as a fill.
    AcceptQuote { quote: OrderId },
    /// One side's confirmation of a trade agreed outside the chain (S313/S314).
    Confirm(TradeTerms),
    /// The clearing house cuts off the current settlement cycle now.
    CloseCycle,
    /// A member attests what an entry on an exchange's fiat trust account says
    /// (S210); q identical attestations credit it (or complete a fiat withdrawal).
    AttestBankEntry(BankFact),
    /// An exchange withdraws fiat from its trust account to its operating account; the
    /// amount is debited into a pending fiat withdrawal.
    WithdrawFiat { asset: AssetId, amount: Amount },
    /// A validator attests a public-chain deposit into the hot address, K deep
    /// (S211-S212); q identical attestations credit it.
    AttestDeposit(DepositFact),
    /// An exchange withdraws a crypto asset to one of its registered addresses; the
    /// amount is debited into a pending withdrawal.
    Withdraw {
        asset: AssetId,
        amount: Amount,
        to: ChainAddress,
    },
    /// The clearing house names the public-chain transaction that pays a withdrawal.
    PayoutSent {
        withdrawal: WithdrawalId,
        tx_hash: ChainTxHash,
    },
    /// A validator attests that the named payout is K deep and pays the withdrawal;
    /// q attestations complete it.
    AttestPayout {
        withdrawal: WithdrawalId,
        tx_hash: ChainTxHash,
    },
    /// A validator attests the bank's confirmation of a transfer mirroring settled
    /// fiat; q identical attestations mark the mirror confirmed on chain.
    AttestMirror(MirrorFact),
    /// Any active member proposes a change to the consortium (members, keys, quorum,
    /// assets, pairs, settlement or custody settings); a validator's proposal counts
    /// as its approval.
    Propose(Proposal),
    /// A validator of the current membership approves an open proposal.
    Approve { proposal: ProposalId },
}

impl TxBody {
    /// A short stable name of the kind, for receipts, logs and metrics.
    pub fn kind_name(&self) -> &'static str {
        match self {
            TxBody::Allocate(_) => "allocate",
            TxBody::AllocateBatch(_) => "allocate_batch",
            TxBody::PlaceOrder(_) => "place_order",
            TxBody::CancelOrder { .. } => "cancel_order",
            TxBody::RequestQuote(_) => "request_quote",
            TxBody::AnswerQuote(_) => "answer_quote",
            TxBody::AcceptQuote { .. } => "accept_quote",
            TxBody::Confirm(_) => "confirm",
            TxBody::CloseCycle => "close_cycle",
            TxBody::AttestBankEntry(_) => "attest_bank_entry",
            TxBody::WithdrawFiat { .. } => "withdraw_fiat",
            TxBody::AttestDeposit(_) => "attest_deposit",
            TxBody::Withdraw { .. } => "withdraw",
            TxBody::PayoutSent { .. } => "payout_sent",
            TxBody::AttestPayout { .. } => "attest_payout",
            TxBody::Propose(_) => "propose",
            TxBody::Approve { .. } => "approve",
            TxBody::AttestMirror(_) => "attest_mirror",
        }
    }

    /// The nonce sequence this body is signed in: [`Lane::Node`] for exactly the kinds
    /// a validator node signs by itself, [`Lane::Member`] for every other.
    pub fn lane(&self) -> Lane {
        match self {
            TxBody::AttestBankEntry(_)
            | TxBody::AttestDeposit(_)
            | TxBody::PayoutSent { .. }
            | TxBody::AttestPayout { .. }
            | TxBody::AttestMirror(_) => Lane::Node,
            TxBody::Allocate(_)
            | TxBody::AllocateBatch(_)
            | TxBody::PlaceOrder(_)
            | TxBody::CancelOrder { .. }
            | TxBody::RequestQuote(_)
            | TxBody::AnswerQuote(_)
            | TxBody::AcceptQuote { .. }
            | TxBody::Confirm(_)
            | TxBody::CloseCycle
            | TxBody::WithdrawFiat { .. }
            | TxBody::Withdraw { .. }
            | TxBody::Propose(_)
            | TxBody::Approve { .. } => Lane::Member,
        }
    }
}

/// The unsigned envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transaction {
    pub chain_id: ChainId,
    pub member: MemberId,
    pub nonce: Nonce,
    pub body: TxBody,
}

impl Transaction {
    /// The 32-byte digest the member signs: the envelope bound to the hash of the
    /// chain's genesis, so the same bytes replayed into another chain that happens to
    /// share the chain id do not verify there.
    pub fn signing_digest(&self, genesis: &Hash) -> Hash {
        Hash::tagged(tags::SEISAN_TX_SIGN_V2, &[&genesis.0, &codec::encode(self)])
    }
}

/// A transaction with its member's ed25519 signature over [`Transaction::signing_digest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedTransaction {
    pub tx: Transaction,
    pub signature: Signature,
}

impl SignedTransaction {
    /// The transaction's identifier: a hash of its whole canonical encoding.
    pub fn id(&self) -> Hash {
        self.id_and_size().0
    }

    /// The id and the length of the canonical encoding, from one encoding.
    pub fn id_and_size(&self) -> (Hash, usize) {
        let bytes = codec::encode(self);
        (Hash::tagged(tags::SEISAN_TX_ID_V1, &[&bytes]), bytes.len())
    }

    /// Decodes a signed transaction from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<SignedTransaction, codec::CodecError> {
        codec::decode_with_limit(bytes, MAX_TRANSACTION_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SignedTransaction {
        SignedTransaction {
            tx: Transaction {
                chain_id: ChainId("seisan-dev-testnet".into()),
                member: MemberId(1),
                nonce: Nonce(5),
                body: TxBody::Allocate(Allocation {
                    asset: AssetId(0),
                    customer: CustomerId("c-1".into()),
                    amount: Amount(10),
                    direction: AllocationDirection::ToCustomer,
                }),
            },
            signature: Signature([3; 64]),
        }
    }

    #[test]
    fn signed_transaction_round_trips_and_rejects_trailing_bytes() {
        let bytes = codec::encode(&sample());
        assert_eq!(SignedTransaction::decode(&bytes).unwrap(), sample());
        let mut longer = bytes.clone();
        longer.push(1);
        assert!(SignedTransaction::decode(&longer).is_err());
    }

    #[test]
    fn digest_covers_genesis_chain_member_nonce_and_body() {
        let genesis = Hash([1; 32]);
        let base = sample().tx;
        let digest = |tx: &Transaction| tx.signing_digest(&genesis);
        assert_ne!(digest(&base), base.signing_digest(&Hash([2; 32])));
        let mut other = base.clone();
        other.chain_id = ChainId("other".into());
        assert_ne!(digest(&base), digest(&other));
        let mut other = base.clone();
        other.member = MemberId(2);
        assert_ne!(digest(&base), digest(&other));
        let mut other = base.clone();
        other.nonce = Nonce(6);
        assert_ne!(digest(&base), digest(&other));
        let mut other = base.clone();
        other.body = TxBody::AllocateBatch(vec![]);
        assert_ne!(digest(&base), digest(&other));
    }

    #[test]
    fn lanes_name_themselves_and_only_node_signed_kinds_are_node_lane() {
        assert_eq!(Lane::Member.to_string(), "member");
        assert_eq!(Lane::Node.to_string(), "node");
        assert_eq!(serde_json::to_value(Lane::Node).unwrap(), "node");
        assert_eq!(sample().tx.body.lane(), Lane::Member);
        assert_eq!(TxBody::CloseCycle.lane(), Lane::Member);
        let payout = TxBody::AttestPayout {
            withdrawal: WithdrawalId(1),
            tx_hash: ChainTxHash("0x07".into()),
        };
        assert_eq!(payout.lane(), Lane::Node);
        let sent = TxBody::PayoutSent {
            withdrawal: WithdrawalId(1),
            tx_hash: ChainTxHash("0x07".into()),
        };
        assert_eq!(sent.lane(), Lane::Node);
    }

    #[test]
    fn json_form_is_readable() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["tx"]["body"]["allocate"]["direction"], "to_customer");
        assert_eq!(json["tx"]["body"]["allocate"]["amount"], "10");
    }
}
