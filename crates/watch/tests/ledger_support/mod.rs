//! The ledger half shared by the watchers' test worlds (`bank_support`,
//! `custody_support`): the four validators (the clearing house and exchanges A, B, C),
//! a transaction signed for a member with a given nonce, and a block finalized through
//! the real contracts (`apply_block`) on a `MapView`, proposed by the clearing house.
//! Each world keeps its own nonces and receipts: the bank world counts pending
//! transactions in a mempool, the custody world hands blocks over whole.

#![allow(dead_code)]

use seisan_contracts::{apply_block, BlockContext};
use seisan_types::amount::Asset;
use seisan_types::custody::PublicChainSettings;
use seisan_types::genesis::{Member, PairSpec, SettlementSettings};
use seisan_types::receipt::Receipt;
use seisan_types::state::MapView;
use seisan_types::tx::{SignedTransaction, Transaction, TxBody};
use seisan_types::{ChainId, Genesis, Height, MemberId, Nonce, Role, Signature};

pub const CH: MemberId = MemberId(0);
pub const A: MemberId = MemberId(1);
pub const B: MemberId = MemberId(2);
pub const C: MemberId = MemberId(3);
pub const NAMES: [&str; 4] = ["clearing-house", "exchange-a", "exchange-b", "exchange-c"];
pub const EXCHANGES: [MemberId; 3] = [A, B, C];
pub const GENESIS_MS: u64 = 1_800_000_000_000;

/// The four validators of [`NAMES`], the first the clearing house, each with a key
/// derived from its index.
pub fn members() -> Vec<Member> {
    NAMES
        .iter()
        .enumerate()
        .map(|(index, name)| Member {
            name: (*name).into(),
            role: if index == 0 {
                Role::ClearingHouse
            } else {
                Role::Exchange
            },
            public_key: seisan_crypto::Keypair::from_seed([index as u8 + 1; 32]).public_key(),
            validator: true,
            p2p_address: None,
        })
        .collect()
}

/// A genesis of the four [`members`] (quorum 3, no opening balances, default
/// settlement) with the world's own chain id, assets, pairs and public chain; checked
/// valid.
pub fn genesis_of(
    chain_id: &str,
    assets: Vec<Asset>,
    pairs: Vec<PairSpec>,
    public_chain: Option<PublicChainSettings>,
) -> Genesis {
    let genesis = Genesis {
        chain_id: ChainId(chain_id.into()),
        genesis_time_ms: GENESIS_MS,
        quorum: 3,
        members: members(),
        assets,
        pairs,
        opening_balances: vec![],
        settlement: SettlementSettings::default(),
        public_chain,
    };
    genesis.validate().expect("the watch test genesis is valid");
    genesis
}

/// `body` as `member`'s transaction with `nonce` (the contracts do not check
/// signatures; admission, which does, is the node's).
pub fn sign(chain_id: &ChainId, member: MemberId, nonce: u64, body: TxBody) -> SignedTransaction {
    SignedTransaction {
        tx: Transaction {
            chain_id: chain_id.clone(),
            member,
            nonce: Nonce(nonce),
            body,
        },
        signature: Signature([0; 64]),
    }
}

/// Finalizes `txs` as the block at `height` and `timestamp_ms` on `view`: the real
/// contracts' writes applied, their receipts in the transactions' order.
pub fn finalize(
    view: &mut MapView,
    genesis: &Genesis,
    height: u64,
    timestamp_ms: u64,
    txs: &[SignedTransaction],
) -> Vec<Receipt> {
    let context = BlockContext {
        height: Height(height),
        timestamp_ms,
        proposer: CH,
    };
    let outcome = apply_block(view, genesis, &context, txs);
    view.apply(&outcome.writes);
    assert_eq!(
        outcome.receipts.len(),
        txs.len(),
        "one receipt per transaction"
    );
    outcome.receipts
}
