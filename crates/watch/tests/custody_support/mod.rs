//! A world for the custody planner's tests: four validators (the clearing house, the
//! payer, and exchanges A, B, C; quorum 3) whose planners watch one in-memory public
//! chain ([`FakeChain`]: blocks, a pool, reorganisations, the hot wallet's nonces and
//! balances derived from the blocks) and one ledger (the real contracts over a
//! `MapView`, blocks made of what the attesters and the exchanges admitted). The shell
//! is modelled as the node's is: read what the planner asks, plan, carry the actions
//! out in order, stop at the first failure, report each done or not; a transfer is
//! journaled before it is broadcast.

#![allow(dead_code)]

use crate::ledger_support::{finalize, genesis_of, sign};
pub use crate::ledger_support::{A, B, C, CH, EXCHANGES, GENESIS_MS, NAMES};
use seisan_contracts::custody as ledger;
use seisan_contracts::{genesis_writes, invariants};
use seisan_custody::evm::ReceiptView;
use seisan_custody::journal::SignedTransfer;
use seisan_custody::plan::ObservedTransfer;
use seisan_types::amount::{Asset, AssetKind};
use seisan_types::custody::{ChainAddress, ChainTxHash, PublicChainSettings, RegisteredAddress};
use seisan_types::receipt::{Receipt, TxOutcome};
use seisan_types::state::MapView;
use seisan_types::tx::{Lane, SignedTransaction, TxBody};
use seisan_types::{Amount, AssetId, Genesis, MemberId};
use seisan_watch::custody::{
    ChainObservation, CustodyAction, CustodyConfig, CustodyPlanner, Outcome, PayerObservation,
};
use seisan_watch::Millis;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

pub const ETH: AssetId = AssetId(0);
pub const WBTC: AssetId = AssetId(1);
pub const CONFIRMATIONS: u64 = 3;
/// What the fake chain says one payout may cost (it charges nothing).
pub const MAX_FEE: u128 = 1_000;
pub const CHAIN_ID: u64 = 31337;
const TOKEN: &str = "0x00000000000000000000000000000000000000ee";

pub fn address(tag: u64) -> ChainAddress {
    ChainAddress(format!("0x{tag:040x}"))
}

pub fn hot() -> ChainAddress {
    address(0x1)
}

pub fn cold() -> ChainAddress {
    address(0x2)
}

/// Exchange `member`'s registered address.
pub fn registered(member: MemberId) -> ChainAddress {
    address(0xa0 + u64::from(member.0))
}

pub fn settings() -> PublicChainSettings {
    PublicChainSettings {
        chain_id: CHAIN_ID,
        confirmations: CONFIRMATIONS,
        hot_address: hot(),
        cold_address: cold(),
        registered_addresses: EXCHANGES
            .iter()
            .map(|member| RegisteredAddress {
                member: NAMES[member.0 as usize].into(),
                address: registered(*member),
            })
            .collect(),
        hot_cap_bps: 2_000,
    }
}

pub fn genesis() -> Genesis {
    genesis_of(
        "seisan-dev-custody-watch",
        vec![
            Asset {
                symbol: "ETH".into(),
                kind: AssetKind::NativeCoin,
                scale: 18,
                contract: None,
            },
            Asset {
                symbol: "WBTC".into(),
                kind: AssetKind::Token,
                scale: 8,
                contract: Some(TOKEN.into()),
            },
        ],
        vec![],
        Some(settings()),
    )
}

/// The planner settings of `member`'s node (the clearing house pays).
pub fn config(member: MemberId) -> CustodyConfig {
    CustodyConfig::new(&genesis(), member, member == CH, 1_000).expect("public chain")
}

// ---- the public chain ------------------------------------------------------------

/// A transaction on the fake chain: one transfer, tagged (payouts and sweeps are signed
/// by the hot wallet with a nonce).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainTx {
    pub hash: ChainTxHash,
    pub from: ChainAddress,
    pub to: ChainAddress,
    pub asset: AssetId,
    pub amount: Amount,
    /// The hot wallet's nonce; `None` for an outside sender.
    pub nonce: Option<u64>,
    pub tag: Vec<u8>,
}

/// One mined transaction with its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mined {
    pub tx: ChainTx,
    pub success: bool,
}

/// An in-memory public chain. Everything a watcher reads is derived from the blocks,
/// so a reorganisation changes balances, nonces and receipts consistently.
#[derive(Clone, Debug, Default)]
pub struct FakeChain {
    /// Block n is `blocks[n]`; block 0 is empty.
    pub blocks: Vec<Vec<Mined>>,
    /// Waiting to be mined, in arrival order.
    pub pool: Vec<ChainTx>,
    next_hash: u64,
    /// The highest block number there ever was: a reorganisation never reaches a block
    /// that was K deep (the assumption behind K).
    high: u64,
    /// Every signed transaction by hash, as the chain node learned it.
    known: BTreeMap<String, ChainTx>,
    /// The balances at the newest block (every pass reads them), until the blocks change.
    newest_balances: RefCell<Option<BTreeMap<(ChainAddress, AssetId), u128>>>,
}

impl FakeChain {
    pub fn new() -> FakeChain {
        FakeChain {
            blocks: vec![Vec::new()],
            ..FakeChain::default()
        }
    }

    pub fn latest(&self) -> u64 {
        self.blocks.len() as u64 - 1
    }

    fn fresh_hash(&mut self) -> ChainTxHash {
        self.next_hash += 1;
        ChainTxHash(format!("0x{:064x}", 0xd000_0000_u64 + self.next_hash))
    }

    /// An outside sender's transfer to `to`, into the pool; its hash.
    pub fn send_from_outside(
        &mut self,
        from: ChainAddress,
        to: ChainAddress,
        asset: AssetId,
        amount: u128,
    ) -> ChainTxHash {
        let hash = self.fresh_hash();
        self.pool.push(ChainTx {
            hash: hash.clone(),
            from,
            to,
            asset,
            amount: Amount(amount),
            nonce: None,
            tag: Vec::new(),
        });
        hash
    }

    /// Mines one block: outside transfers as they come, the hot wallet's in nonce
    /// order from its mined nonce (a gap waits). A hot transfer it cannot cover is
    /// mined as failed (it uses its nonce, moves nothing), as an EVM token call would.
    pub fn mine(&mut self) {
        let mut block = Vec::new();
        let mut nonce = self.nonce(&hot(), false);
        let mut balances = self.balances_at(self.latest());
        let pool = std::mem::take(&mut self.pool);
        let (mut signed, outside): (Vec<ChainTx>, Vec<ChainTx>) =
            pool.into_iter().partition(|tx| tx.nonce.is_some());
        for tx in outside {
            // The cold wallet (the operator's refills) spends only what it holds.
            let success = match balances.get_mut(&(tx.from.clone(), tx.asset)) {
                Some(held) if tx.from == cold() && *held >= tx.amount.0 => {
                    *held -= tx.amount.0;
                    true
                }
                _ => tx.from != cold(),
            };
            if success {
                *balances.entry((tx.to.clone(), tx.asset)).or_default() += tx.amount.0;
            }
            block.push(Mined { tx, success });
        }
        signed.sort_by_key(|tx| tx.nonce);
        for tx in signed {
            let tx_nonce = tx.nonce.expect("signed");
            if tx_nonce < nonce {
                continue; // replaced or already mined
            }
            if tx_nonce > nonce {
                self.pool.push(tx);
                continue;
            }
            let held = balances.entry((hot(), tx.asset)).or_default();
            let success = *held >= tx.amount.0;
            if success {
                *held -= tx.amount.0;
                *balances.entry((tx.to.clone(), tx.asset)).or_default() += tx.amount.0;
            }
            block.push(Mined { tx, success });
            nonce += 1;
        }
        self.blocks.push(block);
        self.newest_balances.take();
        self.high = self.high.max(self.latest());
    }

    /// The deepest reorganisation possible now: every block that ever had K
    /// confirmations stays.
    pub fn max_reorganisation(&self) -> u64 {
        (self.latest() + CONFIRMATIONS - 1)
            .saturating_sub(self.high)
            .min(self.latest())
    }

    /// Drops the newest `depth` blocks; their transactions go back to the pool unless
    /// `drop_outside` (an outside transfer the reorganisation lost for good).
    pub fn reorganise(&mut self, depth: u64, drop_outside: bool) {
        assert!(depth <= self.latest(), "block 0 stays");
        assert!(
            depth <= self.max_reorganisation(),
            "a reorganisation of {depth} would drop a block that was {CONFIRMATIONS} deep"
        );
        self.newest_balances.take();
        let mut returned = Vec::new();
        for _ in 0..depth {
            let block = self.blocks.pop().expect("checked");
            for mined in block {
                if mined.tx.nonce.is_some() || !drop_outside {
                    returned.push(mined.tx);
                }
            }
        }
        returned.append(&mut self.pool);
        self.pool = returned;
    }

    fn mined(&self, until: u64) -> impl Iterator<Item = (u64, usize, &Mined)> {
        self.blocks
            .iter()
            .enumerate()
            .take(until as usize + 1)
            .flat_map(|(number, block)| {
                block
                    .iter()
                    .enumerate()
                    .map(move |(index, mined)| (number as u64, index, mined))
            })
    }

    /// Every (address, asset) balance as of `block` (what outside senders hold is not).
    pub fn balances_at(&self, block: u64) -> BTreeMap<(ChainAddress, AssetId), u128> {
        if block == self.latest() {
            if let Some(balances) = self.newest_balances.borrow().as_ref() {
                return balances.clone();
            }
        }
        let balances = self.replay(block);
        if block == self.latest() {
            *self.newest_balances.borrow_mut() = Some(balances.clone());
        }
        balances
    }

    fn replay(&self, block: u64) -> BTreeMap<(ChainAddress, AssetId), u128> {
        let mut balances: BTreeMap<(ChainAddress, AssetId), u128> = BTreeMap::new();
        for (_, _, mined) in self.mined(block) {
            if !mined.success {
                continue;
            }
            let tx = &mined.tx;
            // Only custody's own addresses are tracked as senders; outside senders
            // have whatever they send.
            if tx.from == hot() || tx.from == cold() {
                let held = balances.entry((tx.from.clone(), tx.asset)).or_default();
                *held = held
                    .checked_sub(tx.amount.0)
                    .expect("the chain mined a transfer its sender could not cover");
            }
            *balances.entry((tx.to.clone(), tx.asset)).or_default() += tx.amount.0;
        }
        balances
    }

    pub fn balance(&self, asset: AssetId, address: &ChainAddress, block: u64) -> Amount {
        Amount(
            self.balances_at(block)
                .get(&(address.clone(), asset))
                .copied()
                .unwrap_or(0),
        )
    }

    fn observed(&self, number: u64, index: usize, tx: &ChainTx) -> ObservedTransfer {
        ObservedTransfer {
            block: number,
            tx_hash: tx.hash.clone(),
            // A token transfer's log index is its place in the block.
            log_index: (tx.asset == WBTC).then_some(index as u64),
            from: tx.from.clone(),
            to: tx.to.clone(),
            asset: tx.asset,
            amount: tx.amount,
        }
    }

    pub fn transfers_to(&self, to: &ChainAddress, from: u64, until: u64) -> Vec<ObservedTransfer> {
        self.mined(until)
            .filter(|(number, _, mined)| *number >= from && mined.success && mined.tx.to == *to)
            .map(|(number, index, mined)| self.observed(number, index, &mined.tx))
            .collect()
    }

    pub fn receipt(&self, hash: &ChainTxHash) -> Option<ReceiptView> {
        self.mined(self.latest())
            .find(|(_, _, mined)| mined.tx.hash == *hash)
            .map(|(number, index, mined)| ReceiptView {
                block: number,
                success: mined.success,
                transfers: if mined.success {
                    vec![self.observed(number, index, &mined.tx)]
                } else {
                    Vec::new()
                },
            })
    }

    /// The hot wallet's next nonce: mined only, or counting the pool's run after it.
    pub fn nonce(&self, address: &ChainAddress, pending: bool) -> u64 {
        assert_eq!(*address, hot(), "only the hot wallet signs here");
        let mut nonce = self
            .mined(self.latest())
            .filter(|(_, _, mined)| mined.tx.nonce.is_some())
            .count() as u64;
        if pending {
            while self.pool.iter().any(|tx| tx.nonce == Some(nonce)) {
                nonce += 1;
            }
        }
        nonce
    }

    /// Signs a hot-wallet transfer: the same content and nonce give the same bytes.
    pub fn sign(
        &self,
        asset: AssetId,
        to: &ChainAddress,
        amount: Amount,
        nonce: u64,
        tag: &[u8],
    ) -> SignedTransfer {
        let raw = format!("{}|{}|{}|{}|{}", asset.0, to.0, amount.0, nonce, hex(tag));
        let digest = raw.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
        });
        SignedTransfer {
            nonce,
            raw,
            tx_hash: format!("0x{digest:016x}{:048x}", nonce),
        }
    }

    /// Takes a signed transfer into the pool; the same bytes again are harmless, another
    /// transfer at a nonce already in the pool or mined is refused.
    pub fn broadcast(&mut self, signed: &SignedTransfer) -> Result<(), String> {
        let mut parts = signed.raw.split('|');
        let mut next = || parts.next().expect("raw has five parts").to_string();
        let tx = ChainTx {
            hash: ChainTxHash(signed.tx_hash.clone()),
            from: hot(),
            asset: AssetId(next().parse().expect("asset")),
            to: ChainAddress(next()),
            amount: Amount(next().parse().expect("amount")),
            nonce: Some(next().parse().expect("nonce")),
            tag: unhex(&next()),
        };
        self.known.insert(signed.tx_hash.clone(), tx.clone());
        let mined = self
            .mined(self.latest())
            .any(|(_, _, mined)| mined.tx.hash == tx.hash);
        if mined || self.pool.contains(&tx) {
            return Ok(());
        }
        if signed.nonce < self.nonce(&hot(), false)
            || self.pool.iter().any(|other| other.nonce == tx.nonce)
        {
            return Err(format!("nonce {} already used", signed.nonce));
        }
        self.pool.push(tx);
        Ok(())
    }

    /// Real deposits: outside transfers into the hot address mined at least K deep.
    pub fn deposits(&self) -> Vec<ObservedTransfer> {
        let deepest = (self.latest() + 1).saturating_sub(CONFIRMATIONS);
        self.transfers_to(&hot(), 0, deepest)
            .into_iter()
            .filter(|transfer| transfer.from != cold())
            .collect()
    }

    /// Successful hot-wallet transfers tagged as `tag`.
    pub fn payouts_tagged(&self, tag: &[u8]) -> Vec<ChainTx> {
        self.mined(self.latest())
            .filter(|(_, _, mined)| mined.success && mined.tx.tag == tag)
            .map(|(_, _, mined)| mined.tx.clone())
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
        .collect()
}

/// What the shell reads for `planner` at the chain's newest block.
pub fn observe(planner: &CustodyPlanner, view: &MapView, chain: &FakeChain) -> ChainObservation {
    let latest = chain.latest();
    let reads = planner.reads(view, latest);
    let assets = [ETH, WBTC];
    ChainObservation {
        latest,
        transfers: reads
            .scan
            .map(|(from, until)| ((from, until), chain.transfers_to(&hot(), from, until))),
        receipts: reads
            .receipts
            .into_iter()
            .map(|hash| {
                let receipt = chain.receipt(&hash);
                (hash, receipt)
            })
            .collect(),
        hot: assets
            .iter()
            .map(|asset| (*asset, chain.balance(*asset, &hot(), latest)))
            .collect(),
        cold: assets
            .iter()
            .map(|asset| (*asset, chain.balance(*asset, &cold(), latest)))
            .collect(),
        hot_gas: chain.balance(ETH, &hot(), latest).0,
        payer: planner.config().payer.then(|| PayerObservation {
            mined_nonce: chain.nonce(&hot(), false),
            pending_nonce: chain.nonce(&hot(), true),
            max_fee: MAX_FEE,
        }),
    }
}

// ---- the ledger ------------------------------------------------------------------

/// The committed ledger: the real contracts over a `MapView`.
pub struct Ledger {
    pub genesis: Genesis,
    pub view: MapView,
    pub height: u64,
    pub time: Millis,
    nonces: BTreeMap<(MemberId, Lane), u64>,
}

impl Ledger {
    pub fn new() -> Ledger {
        let genesis = genesis();
        let mut view = MapView::default();
        view.apply(&genesis_writes(&genesis));
        Ledger {
            genesis,
            view,
            height: 0,
            time: Millis(GENESIS_MS),
            nonces: BTreeMap::new(),
        }
    }

    /// Finalizes a block of `txs` at `time`, checking the invariants; the receipts.
    pub fn block(&mut self, time: Millis, txs: Vec<(MemberId, TxBody)>) -> Vec<Receipt> {
        let signed: Vec<SignedTransaction> = txs
            .into_iter()
            .map(|(member, body)| {
                let nonce = self.nonces.entry((member, body.lane())).or_insert(0);
                *nonce += 1;
                sign(&self.genesis.chain_id, member, *nonce, body)
            })
            .collect();
        self.height += 1;
        self.time = Millis(time.0.max(self.time.0 + 1));
        let receipts = finalize(
            &mut self.view,
            &self.genesis,
            self.height,
            self.time.0,
            &signed,
        );
        if let Err(error) = invariants::check(&self.view, &self.genesis) {
            panic!("invariant broken at height {}: {error}", self.height);
        }
        receipts
    }

    pub fn inventory(&self, member: MemberId, asset: AssetId) -> u128 {
        seisan_contracts::query::balance(&self.view, member, asset)
            .inventory
            .0
    }

    pub fn withdrawals(&self) -> Vec<seisan_types::custody::Withdrawal> {
        ledger::withdrawals(&self.view, None, ledger::MAX_WITHDRAWALS_PER_QUERY)
    }
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new()
    }
}

/// Whether a receipt applied.
pub fn applied(receipt: &Receipt) -> bool {
    receipt.outcome == TxOutcome::Applied
}

// ---- one node ----------------------------------------------------------------------

/// One validator's watcher: its planner and what survives a restart (the stored scan
/// cursor, the payout journal).
pub struct Node {
    pub member: MemberId,
    pub planner: CustodyPlanner,
    pub cursor: u64,
    pub journal: BTreeMap<String, SignedTransfer>,
    pub config: CustodyConfig,
}

/// What one pass did, for the tests to look at.
#[derive(Debug, Default)]
pub struct PassResult {
    pub actions: Vec<CustodyAction>,
    /// Bodies the attester admitted (the ledger gets them in a later block).
    pub admitted: Vec<TxBody>,
}

/// How the shell's calls go wrong in a pass (all false: nothing does).
#[derive(Clone, Copy, Debug, Default)]
pub struct PassFaults {
    /// The attester admits the n-th attestation but its answer is lost: reported failed.
    pub lose_answer_of: Option<usize>,
    /// The attester refuses the n-th attestation: reported failed.
    pub refuse: Option<usize>,
    /// The n-th attestation is admitted twice (a duplicated request).
    pub duplicate: Option<usize>,
    /// The n-th broadcast (re-broadcasts and new transfers) fails after the chain took it.
    pub lose_broadcast_answer_of: Option<usize>,
    /// Crash after journaling the n-th transfer, before broadcasting it.
    pub crash_before_broadcast: bool,
}

impl Node {
    pub fn new(member: MemberId) -> Node {
        Node::with_config(config(member))
    }

    pub fn with_config(config: CustodyConfig) -> Node {
        Node {
            member: config.member,
            planner: CustodyPlanner::new(config.clone(), 0),
            cursor: 0,
            journal: BTreeMap::new(),
            config,
        }
    }

    /// A restart: a new planner from the stored cursor; the journal survives.
    pub fn restart(&mut self) {
        self.planner = CustodyPlanner::new(self.config.clone(), self.cursor);
    }

    pub fn journal_entries(&self) -> Vec<(String, SignedTransfer)> {
        self.journal
            .iter()
            .map(|(name, entry)| (name.clone(), entry.clone()))
            .collect()
    }

    /// One pass against `chain` and `ledger` at `now`, as the node's shell does it.
    pub fn pass(
        &mut self,
        ledger: &Ledger,
        chain: &mut FakeChain,
        now: Millis,
        faults: PassFaults,
    ) -> PassResult {
        let observed = observe(&self.planner, &ledger.view, chain);
        let journal = self.journal_entries();
        let actions = self.planner.plan(
            &ledger.view,
            &ledger.genesis,
            &observed,
            &journal,
            Some(ledger.time),
            now,
        );
        let mut result = PassResult {
            actions: actions.clone(),
            admitted: Vec::new(),
        };
        let mut attestations = 0;
        let mut broadcasts = 0;
        for action in &actions {
            let done = match action {
                CustodyAction::Attest { body, .. } => {
                    let n = attestations;
                    attestations += 1;
                    if faults.refuse == Some(n) {
                        false
                    } else {
                        result.admitted.push(body.clone());
                        if faults.duplicate == Some(n) {
                            result.admitted.push(body.clone());
                        }
                        faults.lose_answer_of != Some(n)
                    }
                }
                CustodyAction::Broadcast(entry) => {
                    let n = broadcasts;
                    broadcasts += 1;
                    chain.broadcast(entry).is_ok() && faults.lose_broadcast_answer_of != Some(n)
                }
                CustodyAction::Pay { transfer, .. } | CustodyAction::Sweep(transfer) => {
                    let signed = chain.sign(
                        transfer.asset,
                        &transfer.to,
                        transfer.amount,
                        transfer.nonce,
                        &transfer.tag,
                    );
                    assert!(
                        !self.journal.contains_key(&transfer.journal_name),
                        "the journal never replaces an entry: {}",
                        transfer.journal_name
                    );
                    self.journal
                        .insert(transfer.journal_name.clone(), signed.clone());
                    if faults.crash_before_broadcast {
                        self.restart();
                        return result;
                    }
                    let n = broadcasts;
                    broadcasts += 1;
                    chain.broadcast(&signed).is_ok() && faults.lose_broadcast_answer_of != Some(n)
                }
                CustodyAction::StoreCursor(cursor) => {
                    self.cursor = *cursor;
                    true
                }
                CustodyAction::Scanned { .. } | CustodyAction::GiveUp(_) => true,
            };
            let outcome = if done { Outcome::Done } else { Outcome::Failed };
            self.planner.record(action, outcome, now);
            if !done {
                break;
            }
        }
        result
    }
}

/// The bodies among `actions` that are attestations.
pub fn attested(actions: &[CustodyAction]) -> Vec<TxBody> {
    actions
        .iter()
        .filter_map(|action| match action {
            CustodyAction::Attest { body, .. } => Some(body.clone()),
            _ => None,
        })
        .collect()
}

/// The distinct deposit ids among attestations.
pub fn deposit_ids(bodies: &[TxBody]) -> BTreeSet<seisan_types::custody::DepositId> {
    bodies
        .iter()
        .filter_map(|body| match body {
            TxBody::AttestDeposit(fact) => Some(fact.deposit_id()),
            _ => None,
        })
        .collect()
}
