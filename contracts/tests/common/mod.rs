//! A test harness: a four-member genesis (clearing house, exchanges A, B, C), BTC
//! (scale 8) and JPY (scale 0) with the pair BTC/JPY, state in a `MapView`, and blocks
//! applied through the public entry points with the invariants checked after each.

#![allow(dead_code)]

use seisan_contracts::{
    apply_block, genesis_writes, invariants, query, BlockContext, BlockOutcome, Ledger,
};
use seisan_types::amount::{Asset, AssetKind};
use seisan_types::clearing::{Balance, Pair};
use seisan_types::genesis::{Member, PairSpec, SettlementSettings};
use seisan_types::receipt::{Event, Receipt, TxOutcome};
use seisan_types::state::MapView;
use seisan_types::tx::{Lane, SignedTransaction, Transaction, TxBody};
use seisan_types::{
    Amount, AssetId, ChainId, Genesis, Height, MemberId, Nonce, PublicKey, Role, Signature,
};

pub const CH: MemberId = MemberId(0);
pub const A: MemberId = MemberId(1);
pub const B: MemberId = MemberId(2);
pub const C: MemberId = MemberId(3);
pub const BTC: AssetId = AssetId(0);
pub const JPY: AssetId = AssetId(1);
pub const PAIR: Pair = Pair {
    base: BTC,
    quote: JPY,
};
/// One whole BTC in minor units.
pub const COIN: u128 = 100_000_000;
pub const GENESIS_MS: u64 = 1_700_000_000_000;

/// A valid ed25519 public key, one per seed byte (governance refuses keys that are
/// not curve points, so the members' keys are real ones).
pub fn public_key(seed: u8) -> PublicKey {
    seisan_crypto::Keypair::from_seed([seed; 32]).public_key()
}

pub fn genesis(settlement: SettlementSettings) -> Genesis {
    let member = |name: &str, role: Role, key: u8| Member {
        name: name.into(),
        role,
        public_key: public_key(key),
        validator: key < 3,
        p2p_address: None,
    };
    let genesis = Genesis {
        chain_id: ChainId("seisan-dev-test".into()),
        genesis_time_ms: GENESIS_MS,
        quorum: 2,
        members: vec![
            member("clearing-house", Role::ClearingHouse, 0),
            member("exchange-a", Role::Exchange, 1),
            member("exchange-b", Role::Exchange, 2),
            member("exchange-c", Role::Exchange, 3),
        ],
        assets: vec![
            Asset {
                symbol: "BTC".into(),
                kind: AssetKind::Token,
                scale: 8,
                contract: Some("0x0000000000000000000000000000000000000001".into()),
            },
            Asset {
                symbol: "JPY".into(),
                kind: AssetKind::Fiat,
                scale: 0,
                contract: None,
            },
        ],
        pairs: vec![PairSpec {
            base: "BTC".into(),
            quote: "JPY".into(),
        }],
        opening_balances: vec![],
        settlement,
        public_chain: None,
    };
    genesis.validate().expect("test genesis is valid");
    genesis
}

pub struct Harness {
    pub genesis: Genesis,
    pub view: MapView,
    pub height: u64,
    pub now_ms: u64,
    /// The last nonce used per member and lane (members added by governance get them too).
    nonces: std::collections::BTreeMap<(MemberId, Lane), u64>,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_settings(SettlementSettings::default())
    }

    pub fn with_settings(settlement: SettlementSettings) -> Harness {
        Harness::with_genesis(genesis(settlement))
    }

    /// A harness over any valid genesis (written at height 0 as the node does).
    pub fn with_genesis(genesis: Genesis) -> Harness {
        let mut view = MapView::default();
        view.apply(&genesis_writes(&genesis));
        Harness {
            genesis,
            view,
            height: 0,
            now_ms: GENESIS_MS,
            nonces: std::collections::BTreeMap::new(),
        }
    }

    pub fn seed(&mut self, seeds: &[(MemberId, AssetId, u128)]) {
        let seeds: Vec<_> = seeds.iter().map(|(m, a, x)| (*m, *a, Amount(*x))).collect();
        let writes = seisan_contracts::seed_writes(&self.view, &self.genesis, &seeds);
        self.view.apply(&writes);
        self.check();
    }

    pub fn signed(&mut self, member: MemberId, body: TxBody) -> SignedTransaction {
        let nonce = self.nonces.entry((member, body.lane())).or_insert(0);
        *nonce += 1;
        SignedTransaction {
            tx: Transaction {
                chain_id: self.genesis.chain_id.clone(),
                member,
                nonce: Nonce(*nonce),
                body,
            },
            signature: Signature([0; 64]),
        }
    }

    fn context(&mut self, advance_ms: u64) -> BlockContext {
        self.height += 1;
        self.now_ms += advance_ms;
        BlockContext {
            height: Height(self.height),
            timestamp_ms: self.now_ms,
            proposer: CH,
        }
    }

    /// Applies a block of transactions, `advance_ms` after the previous block.
    pub fn block_at(&mut self, advance_ms: u64, txs: Vec<(MemberId, TxBody)>) -> BlockOutcome {
        let signed: Vec<_> = txs
            .into_iter()
            .map(|(m, body)| self.signed(m, body))
            .collect();
        let ctx = self.context(advance_ms);
        let outcome = apply_block(&self.view, &self.genesis, &ctx, &signed);
        self.view.apply(&outcome.writes);
        self.check();
        outcome
    }

    pub fn block(&mut self, txs: Vec<(MemberId, TxBody)>) -> BlockOutcome {
        self.block_at(1000, txs)
    }

    /// One transaction in a block of its own; its receipt.
    pub fn tx(&mut self, member: MemberId, body: TxBody) -> Receipt {
        self.block(vec![(member, body)]).receipts.remove(0)
    }

    /// Like [`Harness::tx`] but fails the test if the transaction was rejected.
    pub fn ok(&mut self, member: MemberId, body: TxBody) -> Receipt {
        let receipt = self.tx(member, body);
        assert_eq!(receipt.outcome, TxOutcome::Applied, "{receipt:?}");
        receipt
    }

    /// An attested deposit in a block of its own; its events.
    pub fn deposit(&mut self, member: MemberId, asset: AssetId, amount: u128) -> Vec<Event> {
        let ctx = self.context(1000);
        let mut ledger = Ledger::new(&self.view, &self.genesis, ctx);
        let events = ledger
            .deposit(member, asset, Amount(amount))
            .expect("deposit applies");
        let outcome = ledger.finish();
        self.view.apply(&outcome.writes);
        self.check();
        events
    }

    /// A paid withdrawal from available inventory in a block of its own.
    pub fn withdraw(&mut self, member: MemberId, asset: AssetId, amount: u128) {
        let ctx = self.context(1000);
        let mut ledger = Ledger::new(&self.view, &self.genesis, ctx);
        ledger
            .withdraw(member, asset, Amount(amount))
            .expect("withdrawal applies");
        let outcome = ledger.finish();
        self.view.apply(&outcome.writes);
        self.check();
    }

    /// An empty block `advance_ms` later; its end-of-block events.
    pub fn idle(&mut self, advance_ms: u64) -> Vec<Event> {
        self.block_at(advance_ms, vec![]).events
    }

    pub fn balance(&self, member: MemberId, asset: AssetId) -> Balance {
        query::balance(&self.view, member, asset)
    }

    pub fn check(&self) {
        if let Err(error) = invariants::check(&self.view, &self.genesis) {
            panic!("invariant broken: {error}");
        }
    }
}

pub fn rejected_code(receipt: &Receipt) -> &str {
    match &receipt.outcome {
        TxOutcome::Rejected { code, .. } => code,
        TxOutcome::Applied => panic!("expected a rejection, got {receipt:?}"),
    }
}
