//! A world for the bank planner's tests: four validators (the clearing house and
//! exchanges A, B, C; quorum 3) whose planners watch one embedded bank (`BankStore`,
//! the real books) and one ledger (the real contracts over a `MapView`, blocks made of
//! what the validators' attesters and the exchanges' clients admitted). The shell is
//! modelled here as the node's is: reads through the adapter, plan, carry out in order,
//! stop at the first failure, report each action done or not. Faults are drawn from a
//! seeded generator when a [`Faults`] is given.

#![allow(dead_code)]

use crate::ledger_support::{finalize, genesis_of, sign};
pub use crate::ledger_support::{A, B, C, CH, EXCHANGES, GENESIS_MS, NAMES};
use rand::rngs::StdRng;
use rand::Rng;
use seisan_bank::{AccountId, BankError, BankStore, TransferReference, TransferRequest};
use seisan_contracts::{genesis_writes, query};
use seisan_types::amount::{Asset, AssetKind};
use seisan_types::clearing::{OrderRequest, Pair, Side, TimeInForce};
use seisan_types::genesis::PairSpec;
use seisan_types::receipt::{Receipt, TxOutcome};
use seisan_types::state::MapView;
use seisan_types::tx::{Lane, SignedTransaction, TxBody};
use seisan_types::{Amount, AssetId, Genesis, Height, MemberId};
use seisan_watch::bank::{
    BankAction, BankAnswer, BankNotice, BankPlanner, BankPlannerConfig, BankRead,
};
use seisan_watch::Millis;
use std::collections::BTreeMap;

pub const BTC: AssetId = AssetId(0);
pub const JPY: AssetId = AssetId(1);
pub const USD: AssetId = AssetId(2);
pub const COIN: u128 = 100_000_000;
/// What each exchange's operating account opens with, per currency.
pub const OPERATING_OPENING: u128 = 1_000_000_000;

pub fn currency(asset: AssetId) -> &'static str {
    match asset {
        JPY => "JPY",
        USD => "USD",
        other => panic!("{other} is not fiat"),
    }
}

pub fn genesis() -> Genesis {
    let fiat = |symbol: &str| Asset {
        symbol: symbol.into(),
        kind: AssetKind::Fiat,
        scale: 0,
        contract: None,
    };
    genesis_of(
        "seisan-dev-watch",
        vec![
            Asset {
                symbol: "BTC".into(),
                kind: AssetKind::Token,
                scale: 8,
                contract: Some("0x0000000000000000000000000000000000000001".into()),
            },
            fiat("JPY"),
            fiat("USD"),
        ],
        vec![
            PairSpec {
                base: "BTC".into(),
                quote: "JPY".into(),
            },
            PairSpec {
                base: "BTC".into(),
                quote: "USD".into(),
            },
        ],
        None,
    )
}

/// Which faults a run draws, each a probability per occasion.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// A bank read or call fails before reaching the bank.
    pub bank_unavailable: f64,
    /// A bank transfer is made but its answer is lost.
    pub transfer_answer_lost: f64,
    /// A bank answer is handed to the planner twice.
    pub answer_duplicated: f64,
    /// The attester refuses (a full mempool, a syncing node).
    pub attest_refused: f64,
    /// The attester admits but its answer is lost.
    pub attest_answer_lost: f64,
    /// The node crashes in the middle of carrying out a pass (planner memory lost).
    pub crash: f64,
    /// A node skips its pass (slow).
    pub slow: f64,
}

/// One validator node: its planner and what survives its restarts.
pub struct Node {
    pub member: MemberId,
    pub lie: bool,
    pub planner: BankPlanner,
    /// The clearing house's stored mirror cursor (a node record: survives restarts).
    pub mirrored: Height,
    pub notices: Vec<BankNotice>,
    pub restarts: u32,
}

impl Node {
    pub fn new(member: MemberId, lie: bool) -> Node {
        Node {
            member,
            lie,
            planner: BankPlanner::new(Self::config(member, lie)),
            mirrored: Height(0),
            notices: Vec::new(),
            restarts: 0,
        }
    }

    fn config(member: MemberId, lie: bool) -> BankPlannerConfig {
        BankPlannerConfig {
            me: member,
            clearing_house: member == CH,
            audits_all: true,
            lie,
        }
    }

    /// A crash and restart: everything in memory is gone.
    pub fn restart(&mut self) {
        self.planner = BankPlanner::new(Self::config(self.member, self.lie));
        self.restarts += 1;
    }
}

pub struct World {
    pub genesis: Genesis,
    pub view: MapView,
    pub height: u64,
    pub now_ms: u64,
    /// Admitted, not yet in a block, in admission order.
    pub mempool: Vec<SignedTransaction>,
    /// Every receipt of every block, with its transaction.
    pub receipts: Vec<(SignedTransaction, Receipt)>,
    pub bank: BankStore,
    pub nodes: Vec<Node>,
    /// Every trust credit made at the bank: (exchange, asset, amount, reference).
    pub deposits: Vec<(MemberId, AssetId, u128, String)>,
    next_reference: u64,
}

impl World {
    /// The world with the bank's accounts open, BTC seeded to the exchanges, and one
    /// node per validator (`liar` attests falsely, if any).
    pub fn new(liar: Option<MemberId>) -> World {
        let genesis = genesis();
        let mut view = MapView::default();
        view.apply(&genesis_writes(&genesis));
        let seeds: Vec<_> = EXCHANGES
            .iter()
            .map(|member| (*member, BTC, Amount(1_000 * COIN)))
            .collect();
        view.apply(&seisan_contracts::seed_writes(&view, &genesis, &seeds));
        let bank = BankStore::temporary().expect("a temporary bank");
        for (index, name) in NAMES.iter().enumerate() {
            for asset in [JPY, USD] {
                let cur = currency(asset);
                let opening = if index == 0 { 0 } else { OPERATING_OPENING };
                bank.open_account(&AccountId::operating_in(name, cur), cur, Amount(opening), 0)
                    .expect("operating account");
                bank.open_account(&AccountId::trust_in(name, cur), cur, Amount(0), 0)
                    .expect("trust account");
            }
        }
        let nodes = (0..4)
            .map(MemberId)
            .map(|member| Node::new(member, Some(member) == liar))
            .collect();
        World {
            genesis,
            view,
            height: 0,
            now_ms: GENESIS_MS,
            mempool: Vec::new(),
            receipts: Vec::new(),
            bank,
            nodes,
            deposits: Vec::new(),
            next_reference: 0,
        }
    }

    pub fn index(member: MemberId) -> usize {
        member.0 as usize
    }

    /// The next nonce of `member`'s `lane`: one above the committed one and the highest
    /// pending (the attester's rule for the node lane; a client's for the member lane).
    fn next_nonce(&self, member: MemberId, lane: Lane) -> u64 {
        let committed = query::last_nonce(&self.view, member, lane).map_or(0, |nonce| nonce.0);
        let pending = self
            .mempool
            .iter()
            .filter(|tx| tx.tx.member == member && tx.tx.body.lane() == lane)
            .map(|tx| tx.tx.nonce.0)
            .max()
            .unwrap_or(0);
        committed.max(pending) + 1
    }

    /// Signs and admits `body` for `member` on its lane (signatures are not checked by
    /// the contracts; admission, which checks them, is the node's).
    pub fn admit(&mut self, member: MemberId, body: TxBody) {
        let nonce = self.next_nonce(member, body.lane());
        self.mempool
            .push(sign(&self.genesis.chain_id, member, nonce, body));
    }

    /// Finalizes a block of the first `take` admitted transactions at `now_ms`.
    pub fn block(&mut self, take: usize) {
        let take = take.min(self.mempool.len());
        let txs: Vec<SignedTransaction> = self.mempool.drain(..take).collect();
        self.height += 1;
        let receipts = finalize(
            &mut self.view,
            &self.genesis,
            self.height,
            self.now_ms,
            &txs,
        );
        for (tx, receipt) in txs.into_iter().zip(receipts) {
            if tx.tx.body.lane() == Lane::Node {
                // The attester's nonces are its own: never stale, never a gap.
                if let TxOutcome::Rejected { code, .. } = &receipt.outcome {
                    assert!(
                        !code.contains("nonce"),
                        "a node-lane transaction lost its nonce: {tx:?} {receipt:?}"
                    );
                }
            }
            self.receipts.push((tx, receipt));
        }
    }

    /// An exchange moves `amount` from its operating account into its trust account.
    pub fn deposit(&mut self, member: MemberId, asset: AssetId, amount: u128) {
        let name = NAMES[Self::index(member)];
        let cur = currency(asset);
        self.next_reference += 1;
        let reference = format!("deposit-{}", self.next_reference);
        self.bank
            .transfer(
                &TransferRequest {
                    from: AccountId::operating_in(name, cur),
                    to: AccountId::trust_in(name, cur),
                    amount: Amount(amount),
                    reference: TransferReference(reference.clone()),
                },
                self.now_ms,
            )
            .expect("a deposit within the operating balance");
        self.deposits.push((member, asset, amount, reference));
    }

    pub fn balance(&self, member: MemberId, asset: AssetId) -> u128 {
        query::balance(&self.view, member, asset)
            .total()
            .expect("no overflow")
            .0
    }

    pub fn available(&self, member: MemberId, asset: AssetId) -> u128 {
        query::balance(&self.view, member, asset).inventory.0
    }

    pub fn trust_at_bank(&self, member: MemberId, asset: AssetId) -> u128 {
        let name = NAMES[Self::index(member)];
        self.bank
            .balance(&AccountId::trust_in(name, currency(asset)))
            .expect("trust account")
            .balance
            .0
    }

    /// A buy of one BTC by `buyer` and a sell by `seller` at `price` in `asset`.
    pub fn trade(&mut self, buyer: MemberId, seller: MemberId, asset: AssetId, price: u128) {
        let order = |side| {
            TxBody::PlaceOrder(OrderRequest {
                pair: Pair {
                    base: BTC,
                    quote: asset,
                },
                side,
                quantity: Amount(COIN),
                limit_price: Amount(price),
                time_in_force: TimeInForce::GoodTillCancel,
                expires_at_ms: None,
            })
        };
        self.admit(seller, order(Side::Sell));
        self.admit(buyer, order(Side::Buy));
    }

    /// One pass of node `index`'s planner through a modelled shell.
    pub fn pass(&mut self, index: usize, rng: &mut StdRng, faults: &Faults) {
        if rng.gen_bool(faults.slow) {
            return;
        }
        let now = Millis(self.now_ms);
        let reads = self.nodes[index].planner.reads(&self.view, &self.genesis);
        let mut answers = Vec::new();
        for read in reads {
            let answer = if rng.gen_bool(faults.bank_unavailable) {
                let down = || BankError::Unavailable {
                    reason: "modelled outage".into(),
                };
                match &read {
                    BankRead::Statement { .. } => BankAnswer::Statement(Err(down())),
                    BankRead::Transfer { .. } => BankAnswer::Transfer(Err(down())),
                }
            } else {
                match &read {
                    BankRead::Statement { account, after, .. } => {
                        BankAnswer::Statement(self.bank.statement(account, *after))
                    }
                    BankRead::Transfer { reference, .. } => {
                        BankAnswer::Transfer(self.bank.transfer_by_reference(reference))
                    }
                }
            };
            if rng.gen_bool(faults.answer_duplicated) {
                answers.push((read.clone(), answer.clone()));
            }
            answers.push((read, answer));
        }
        let tip = Height(self.height);
        let mirrored = self.nodes[index].mirrored;
        let actions =
            self.nodes[index]
                .planner
                .plan(&self.view, &self.genesis, tip, mirrored, answers, now);
        let member = self.nodes[index].member;
        let mut failed_at = None;
        for (position, action) in actions.iter().enumerate() {
            if rng.gen_bool(faults.crash) {
                self.nodes[index].restart();
                return;
            }
            let done = match action {
                BankAction::Attest(body) => {
                    if rng.gen_bool(faults.attest_refused) {
                        false
                    } else {
                        self.admit(member, body.clone());
                        !rng.gen_bool(faults.attest_answer_lost)
                    }
                }
                BankAction::Transfer { request, .. } => {
                    if rng.gen_bool(faults.bank_unavailable) {
                        false
                    } else {
                        let made = self.bank.transfer(request, self.now_ms);
                        made.is_ok() && !rng.gen_bool(faults.transfer_answer_lost)
                    }
                }
                BankAction::MirroredThrough(height) => {
                    self.nodes[index].mirrored = *height;
                    true
                }
            };
            if !done {
                failed_at = Some(position);
                break;
            }
            self.nodes[index].planner.done(action, now);
        }
        if let Some(first) = failed_at {
            for action in &actions[first..] {
                self.nodes[index].planner.not_done(action);
            }
        }
        let notices = self.nodes[index].planner.take_notices();
        self.nodes[index].notices.extend(notices);
    }

    /// Every node passes, then a block of everything admitted, `step_ms` later.
    pub fn round(&mut self, rng: &mut StdRng, faults: &Faults, step_ms: u64) {
        for index in 0..self.nodes.len() {
            self.pass(index, rng, faults);
        }
        self.now_ms += step_ms;
        let all = self.mempool.len();
        self.block(all);
    }

    /// Whether the bank's leg and the ledger agree and nothing is left to do: every
    /// deposit credited, no open mirror, no open fiat withdrawal.
    pub fn settled(&self) -> bool {
        let credited = self.deposits.iter().all(|(member, asset, amount, _)| {
            self.credited_entries(*member, *asset)
                .iter()
                .any(|credited| credited == amount)
        });
        credited
            && seisan_contracts::mirror::open_mirrors(&self.view, 1).is_empty()
            && seisan_contracts::bank::open_withdrawals(&self.view).is_empty()
            && self.mempool.is_empty()
    }

    /// The amounts of the trust credits the ledger credited to `member` in `asset`.
    pub fn credited_entries(&self, member: MemberId, asset: AssetId) -> Vec<u128> {
        seisan_contracts::bank::entries(&self.view)
            .into_iter()
            .filter_map(|record| record.applied)
            .filter(|fact| {
                fact.member == member
                    && fact.asset == asset
                    && fact.kind == seisan_types::bank::BankEntryKind::TrustCredit
            })
            .map(|fact| fact.amount.0)
            .collect()
    }

    /// How often each member's transactions of `kind` were applied.
    pub fn applied(&self, member: MemberId, kind: &str) -> usize {
        self.receipts
            .iter()
            .filter(|(tx, receipt)| {
                tx.tx.member == member
                    && tx.tx.body.kind_name() == kind
                    && receipt.outcome == TxOutcome::Applied
            })
            .count()
    }

    /// How many orders the applied transactions filled.
    pub fn fills(&self) -> usize {
        self.receipts
            .iter()
            .flat_map(|(_, receipt)| &receipt.events)
            .filter(|event| matches!(event, seisan_types::receipt::Event::OrderFilled { .. }))
            .count()
    }

    /// The planner actions `index` would take now, with every read answered by the bank.
    pub fn plan_now(&mut self, index: usize) -> Vec<BankAction> {
        let reads = self.nodes[index].planner.reads(&self.view, &self.genesis);
        let answers = reads
            .into_iter()
            .map(|read| {
                let answer = match &read {
                    BankRead::Statement { account, after, .. } => {
                        BankAnswer::Statement(self.bank.statement(account, *after))
                    }
                    BankRead::Transfer { reference, .. } => {
                        BankAnswer::Transfer(self.bank.transfer_by_reference(reference))
                    }
                };
                (read, answer)
            })
            .collect();
        let (tip, mirrored) = (Height(self.height), self.nodes[index].mirrored);
        self.nodes[index].planner.plan(
            &self.view,
            &self.genesis,
            tip,
            mirrored,
            answers,
            Millis(self.now_ms),
        )
    }
}

/// Counts `(member, kind)` of a list of actions' attestations.
pub fn attested(actions: &[BankAction]) -> BTreeMap<&'static str, usize> {
    let mut kinds = BTreeMap::new();
    for action in actions {
        if let BankAction::Attest(body) = action {
            *kinds.entry(body.kind_name()).or_insert(0) += 1;
        }
    }
    kinds
}
