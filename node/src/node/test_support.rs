//! Fixtures shared by the node's unit tests: a testnet genesis with an opening JPY
//! balance, a signed allocation, and the unsigned finalization the block pipeline
//! accepts (it trusts the engine to have verified certificates).

use seisan_crypto::Keypair;
use seisan_types::amount::Amount;
use seisan_types::block::{Block, QuorumCertificate, Vote, VoteKind};
use seisan_types::genesis::{Genesis, OpeningBalance};
use seisan_types::ids::{AssetId, MemberId, Nonce};
use seisan_types::tx::{
    Allocation, AllocationDirection, CustomerId, SignedTransaction, Transaction, TxBody,
};
use std::sync::Arc;

/// The testnet genesis (p2p ports from `p2p_base_port`) with 500 JPY for exchange-a.
pub fn genesis(p2p_base_port: u16) -> Arc<Genesis> {
    let mut genesis = crate::genesis_command::testnet_genesis(p2p_base_port, 0);
    genesis.opening_balances.push(OpeningBalance {
        member: "exchange-a".into(),
        asset: "JPY".into(),
        amount: "500".into(),
    });
    Arc::new(genesis)
}

/// exchange-a allocates `amount` JPY minor units to its customer alice.
pub fn allocation(genesis: &Genesis, nonce: u64, amount: u128) -> SignedTransaction {
    seisan_crypto::sign_transaction(
        &Keypair::dev("exchange-a"),
        Transaction {
            chain_id: genesis.chain_id.clone(),
            member: MemberId(1),
            nonce: Nonce(nonce),
            body: TxBody::Allocate(Allocation {
                asset: AssetId(1),
                customer: CustomerId("alice".into()),
                amount: Amount(amount),
                direction: AllocationDirection::ToCustomer,
            }),
        },
    )
}

/// A finalization of `block` without signatures: the pipeline does not check them.
pub fn certificate(block: &Block) -> QuorumCertificate {
    QuorumCertificate {
        vote: Vote {
            chain_id: block.header.chain_id.clone(),
            epoch: seisan_types::Epoch(0),
            view: block.header.view,
            height: block.header.height,
            block: block.hash(),
            kind: VoteKind::Finalize,
        },
        signatures: vec![],
    }
}
