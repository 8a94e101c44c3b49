//! The custody planner: what a node does about the public chain, decided from the
//! committed ledger, what the chain showed, the payout journal and the time.
//!
//! Every node watches the public chain through its own endpoint and attests what it
//! sees; the clearing-house node (the payer, with the hot wallet's key) also pays
//! withdrawals and sweeps the hot wallet's excess to cold. One pass:
//! 1. [`CustodyPlanner::reads`] names what to read: the blocks to scan and the
//!    receipts of the payouts the clearing house named. The shell reads them, the
//!    newest block, the hot and cold balances, and for the payer the hot wallet's
//!    nonces and the fee, into a [`ChainObservation`].
//! 2. [`CustodyPlanner::plan`] turns that into [`CustodyAction`]s, in the order the
//!    shell carries them out (it stops at the first that fails):
//!    - Deposits: the blocks now K deep (never shallower, so a deposit reorganised
//!      away before K confirmations is never seen) are scanned for transfers into the
//!      hot address; each deposit this node has not attested is attested (settled or
//!      not: a late attestation is recorded without crediting again). Then the scan
//!      cursor moves on and, if it changed, is stored: the earliest block of a deposit
//!      whose attestation the ledger does not show yet, so a restart scans it again.
//!    - Payouts: an open withdrawal's named payout is attested once its transaction is
//!      K deep, succeeded and pays exactly the withdrawal.
//!    - Payer, only while its ledger is current (a replaying node sees withdrawals as
//!      they stood before their payouts were named and could pay twice): journaled
//!      transactions not mined yet are broadcast again (same bytes, same nonce); every
//!      journaled payout the ledger does not name is named (`PayoutSent`); with nothing
//!      in flight, the oldest pending withdrawal the hot wallet covers (amount and
//!      gas) is paid, or else one asset's excess over the hot cap is swept to cold.
//!      One outgoing transaction at a time keeps the hot wallet's nonces in journal
//!      order, and the shell journals a signed transaction before broadcasting it, so
//!      a restarted node re-sends the same bytes instead of paying twice.
//!    - Attestations the attester admitted and the ledger still does not show are
//!      planned again by the one follow-up rule ([`FollowUp`]).
//! 3. [`CustodyPlanner::record`] takes each action's outcome.
//!
//! The proof of reserves ([`reserves`]) and the `undercovered` flag come from the same
//! observation.

use crate::follow_up::FollowUp;
use crate::Millis;
use seisan_contracts::custody as ledger;
use seisan_custody::evm::ReceiptView;
use seisan_custody::journal::SignedTransfer;
use seisan_custody::plan::{self, AssetReserves, ChainAsset, ObservedTransfer};
use seisan_types::custody::{
    ChainAddress, ChainTxHash, DepositFact, DepositId, PublicChainSettings, Withdrawal,
    WithdrawalId, WithdrawalStatus,
};
use seisan_types::state::StateView;
use seisan_types::tx::TxBody;
use seisan_types::{Amount, AssetId, AssetKind, Genesis, MemberId};
use std::collections::{BTreeMap, BTreeSet};

/// The most deposit attestations one pass plans (bounds a catch-up burst; the rest of
/// the range is scanned again on the next pass).
pub const MAX_ATTESTATIONS_PER_PASS: usize = 256;
/// How long an admitted attestation may be missing from the ledger before it is
/// planned again: 20 passes of the node's watcher.
pub const PATIENCE_MS: u64 = 10_000;
/// How often one attestation is admitted before the planner gives up and reports it.
pub const MAX_TRIES: u32 = 4;
/// The least a current ledger's newest block may be old (an idle chain still finalizes
/// a heartbeat block every idle block interval; three intervals are allowed).
pub const MIN_LEDGER_AGE_MS: u64 = 10_000;
/// The call data tag of a sweep to cold.
pub const SWEEP_TAG: &[u8] = b"SEISAN-SWEEP";

/// How one node's planner is set up.
#[derive(Clone, Debug)]
pub struct CustodyConfig {
    /// The node's member, whose attestations the ledger shows.
    pub member: MemberId,
    pub settings: PublicChainSettings,
    /// The genesis assets that live on the public chain.
    pub assets: Vec<(AssetId, ChainAsset)>,
    /// Whether this node holds the hot wallet's key (clearing house only).
    pub payer: bool,
    /// Test-only fault injection (`--fault lie-attestations`): attest
    /// [`lies_about_deposits`] instead of what the chain shows.
    pub lies_about_deposits: bool,
    /// How old the newest finalized block may be for the payer to act.
    pub max_ledger_age_ms: u64,
    pub patience_ms: u64,
    pub max_tries: u32,
}

impl CustodyConfig {
    /// The production settings for `member` under `genesis` (`None` without a
    /// `public_chain` section); `idle_block_interval_ms` is the node's heartbeat (an
    /// idle chain's newest block may be that old).
    pub fn new(
        genesis: &Genesis,
        member: MemberId,
        payer: bool,
        idle_block_interval_ms: u64,
    ) -> Option<CustodyConfig> {
        Some(CustodyConfig {
            member,
            settings: genesis.public_chain.clone()?,
            assets: plan::chain_assets(genesis),
            payer,
            lies_about_deposits: false,
            max_ledger_age_ms: MIN_LEDGER_AGE_MS.max(3 * idle_block_interval_ms),
            patience_ms: PATIENCE_MS,
            max_tries: MAX_TRIES,
        })
    }
}

/// What the planner needs read from the chain beyond the newest block, the balances
/// and (payer) the nonces and the fee.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CustodyReads {
    /// Transfers into the hot address in blocks `from..=until`.
    pub scan: Option<(u64, u64)>,
    /// Receipts of named payouts.
    pub receipts: Vec<ChainTxHash>,
}

/// The hot wallet's side of an observation (payer only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayerObservation {
    /// The next nonce counting mined transactions only.
    pub mined_nonce: u64,
    /// The next nonce counting the chain node's pool too.
    pub pending_nonce: u64,
    /// The most one payout may cost in fees (native coin).
    pub max_fee: u128,
}

/// What the chain showed in one pass, all as of block `latest`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ChainObservation {
    pub latest: u64,
    /// The range [`CustodyReads::scan`] asked for, with the transfers found in it.
    pub transfers: Option<((u64, u64), Vec<ObservedTransfer>)>,
    /// Receipts asked for: `None` when the transaction is not mined.
    pub receipts: BTreeMap<ChainTxHash, Option<ReceiptView>>,
    /// Per chain asset, the hot and cold addresses' balances.
    pub hot: BTreeMap<AssetId, Amount>,
    pub cold: BTreeMap<AssetId, Amount>,
    /// The native coin the hot address holds (what pays gas).
    pub hot_gas: u128,
    pub payer: Option<PayerObservation>,
}

/// An outgoing hot-wallet transfer to sign, journal under `journal_name` and only then
/// broadcast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub asset: AssetId,
    pub to: ChainAddress,
    pub amount: Amount,
    pub nonce: u64,
    pub tag: Vec<u8>,
    pub journal_name: String,
}

/// One thing the shell does, in plan order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CustodyAction {
    /// Have the attester sign and admit `body` (AttestDeposit, AttestPayout,
    /// PayoutSent); `block` is a deposit's block, which holds the scan cursor back
    /// until the ledger shows the attestation.
    Attest { body: TxBody, block: Option<u64> },
    /// Send a journaled transaction that is not mined yet again.
    Broadcast(SignedTransfer),
    /// Pay a withdrawal: sign, journal, broadcast.
    Pay {
        withdrawal: WithdrawalId,
        transfer: Outgoing,
    },
    /// Sweep the hot wallet's excess of one asset to cold: sign, journal, broadcast.
    Sweep(Outgoing),
    /// Every deposit up to `until` is attested (or pending): scan on from `until + 1`.
    Scanned { until: u64 },
    /// Store where a restart resumes scanning.
    StoreCursor(u64),
    /// An attestation admitted the most times and never on the ledger: report it.
    GiveUp(TxBody),
}

/// How an action went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed,
}

/// What the node reports about its custody watcher.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PlannerStatus {
    /// The last block scanned for deposits.
    pub scanned_until: Option<u64>,
    /// Withdrawals the hot wallet cannot cover right now (payer only).
    pub waiting_for_hot_wallet: BTreeSet<WithdrawalId>,
    /// Whether payouts and sweeps wait for this node's ledger to catch up.
    pub payer_waiting_for_ledger: bool,
    /// Whether custody was below the ledger's liabilities at the last pass.
    pub undercovered: Option<bool>,
    /// Set when the hot wallet has mined transactions its payout journal never
    /// recorded (payer only): the journal is older than the wallet (restored from a
    /// backup, or the wallet used elsewhere), so a withdrawal whose payout the journal
    /// lost could be paid again. Nothing new is paid or swept until the journal the
    /// wallet's history matches is back.
    pub journal_behind_chain: Option<JournalBehind>,
}

/// The payout journal knows fewer hot-wallet transactions than the chain has mined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalBehind {
    /// One above the highest nonce the journal holds (0 when it is empty).
    pub journal_next_nonce: u64,
    /// The hot wallet's next nonce counting mined transactions.
    pub mined_next_nonce: u64,
}

/// What an attestation is about: its follow-up key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    Deposit(DepositId),
    Payout(WithdrawalId, ChainTxHash),
    /// The clearing house naming a payout (`PayoutSent`).
    Named(WithdrawalId, ChainTxHash),
}

impl Subject {
    /// The subject of a body the planner attests.
    pub fn of(body: &TxBody) -> Subject {
        match body {
            TxBody::AttestDeposit(fact) => Subject::Deposit(fact.deposit_id()),
            TxBody::AttestPayout {
                withdrawal,
                tx_hash,
            } => Subject::Payout(*withdrawal, tx_hash.clone()),
            TxBody::PayoutSent {
                withdrawal,
                tx_hash,
            } => Subject::Named(*withdrawal, tx_hash.clone()),
            other => panic!("the custody planner never attests {}", other.kind_name()),
        }
    }

    /// Whether the committed ledger holds `member`'s attestation of this (or no longer
    /// needs it).
    fn settled(&self, view: &dyn StateView, member: MemberId) -> bool {
        match self {
            Subject::Deposit(id) => attested_by(view, *id, member),
            Subject::Payout(id, hash) => match ledger::withdrawal(view, *id) {
                Some(Withdrawal {
                    status: WithdrawalStatus::Sent { tx_hash },
                    payout_attesters,
                    ..
                }) if tx_hash == *hash => payout_attesters.contains(&member),
                // Completed, or another payout named: nothing left to attest.
                _ => true,
            },
            Subject::Named(id, hash) => match ledger::withdrawal(view, *id) {
                Some(withdrawal) => match withdrawal.status {
                    WithdrawalStatus::Pending => false,
                    WithdrawalStatus::Sent { tx_hash } => tx_hash == *hash,
                    WithdrawalStatus::Completed { .. } => true,
                },
                None => true,
            },
        }
    }
}

/// An attestation in the follow-up, with a deposit's block.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Attestation {
    body: TxBody,
    block: Option<u64>,
}

/// Whether the committed ledger holds `member`'s attestation of deposit `id`.
fn attested_by(view: &dyn StateView, id: DepositId, member: MemberId) -> bool {
    ledger::deposit(view, id).is_some_and(|record| {
        record
            .attestations
            .iter()
            .any(|(_, members)| members.contains(&member))
    })
}

/// What a lying watcher (`--fault lie-attestations`, tests only) attests instead of
/// the deposits it saw: each with another amount, and beside each an invented deposit
/// (a transaction hash that differs in its last digit) of ten times the amount.
pub fn lies_about_deposits(facts: Vec<(u64, DepositFact)>) -> Vec<(u64, DepositFact)> {
    let mut lies = Vec::with_capacity(2 * facts.len());
    for (block, fact) in facts {
        let mut inflated = fact.clone();
        inflated.amount = Amount(fact.amount.0.saturating_add(1));
        lies.push((block, inflated));
        let mut invented = fact;
        let mut hash = invented.tx_hash.0.clone();
        let last = if hash.ends_with('0') { '1' } else { '0' };
        hash.pop();
        hash.push(last);
        invented.tx_hash = ChainTxHash(hash);
        invented.amount = Amount(invented.amount.0.saturating_mul(10));
        lies.push((block, invented));
    }
    lies
}

/// Proof of reserves: per chain asset, the ledger's liabilities beside the hot and
/// cold balances (missing balances count as zero).
pub fn reserves(
    view: &dyn StateView,
    genesis: &Genesis,
    settings: &PublicChainSettings,
    assets: &[(AssetId, ChainAsset)],
    hot: &BTreeMap<AssetId, Amount>,
    cold: &BTreeMap<AssetId, Amount>,
) -> Vec<AssetReserves> {
    assets
        .iter()
        .map(|(asset, _)| {
            let line = ledger::liabilities(view, genesis, *asset);
            let symbol = genesis
                .asset(line.asset)
                .map(|spec| spec.symbol.clone())
                .unwrap_or_default();
            plan::reserves(
                line.asset,
                symbol,
                line.balances,
                line.pending_withdrawals,
                hot.get(asset).copied().unwrap_or(Amount(0)),
                cold.get(asset).copied().unwrap_or(Amount(0)),
                settings.hot_cap_bps,
            )
        })
        .collect()
}

/// One node's custody planner: the state the watcher keeps in memory.
#[derive(Clone, Debug)]
pub struct CustodyPlanner {
    config: CustodyConfig,
    /// The first block not scanned yet.
    next_block: u64,
    /// The resume block last stored (or loaded).
    stored_cursor: u64,
    /// Attestations admitted that the ledger does not show yet.
    follow: FollowUp<Subject, Attestation>,
    status: PlannerStatus,
}

impl CustodyPlanner {
    /// A planner starting (or restarting) its scan at the stored `cursor`.
    pub fn new(config: CustodyConfig, cursor: u64) -> CustodyPlanner {
        let follow = FollowUp::new(config.patience_ms, config.max_tries);
        CustodyPlanner {
            config,
            next_block: cursor,
            stored_cursor: cursor,
            follow,
            status: PlannerStatus::default(),
        }
    }

    pub fn config(&self) -> &CustodyConfig {
        &self.config
    }

    pub fn status(&self) -> &PlannerStatus {
        &self.status
    }

    /// The first block not scanned yet.
    pub fn next_block(&self) -> u64 {
        self.next_block
    }

    /// How many admitted attestations the ledger does not show yet.
    pub fn pending(&self) -> usize {
        self.follow.len()
    }

    /// What to read for a pass at newest block `latest`.
    pub fn reads(&self, view: &dyn StateView, latest: u64) -> CustodyReads {
        CustodyReads {
            scan: plan::scan_range(self.next_block, latest, self.config.settings.confirmations),
            receipts: self
                .payouts_to_check(view)
                .into_iter()
                .map(|(_, hash)| hash)
                .collect(),
        }
    }

    /// Open withdrawals whose named payout this node has still to check.
    fn payouts_to_check(&self, view: &dyn StateView) -> Vec<(Withdrawal, ChainTxHash)> {
        ledger::open_withdrawals(view)
            .into_iter()
            .filter_map(|withdrawal| match &withdrawal.status {
                WithdrawalStatus::Sent { tx_hash } => {
                    let hash = tx_hash.clone();
                    let subject = Subject::Payout(withdrawal.id, hash.clone());
                    (!withdrawal.payout_attesters.contains(&self.config.member)
                        && !self.follow.is_pending(&subject))
                    .then_some((withdrawal, hash))
                }
                _ => None,
            })
            .collect()
    }

    /// The actions of one pass. `ledger_time` is the timestamp of this node's newest
    /// finalized block (`None`: it has none to read), `now` the shell's clock.
    pub fn plan(
        &mut self,
        view: &dyn StateView,
        genesis: &Genesis,
        observed: &ChainObservation,
        journal: &[(String, SignedTransfer)],
        ledger_time: Option<Millis>,
        now: Millis,
    ) -> Vec<CustodyAction> {
        let member = self.config.member;
        let mut actions = Vec::new();
        self.follow
            .settle(|subject, _| subject.settled(view, member));
        let due = self.follow.due(now);
        for (_, attestation) in due.again {
            actions.push(CustodyAction::Attest {
                body: attestation.body,
                block: attestation.block,
            });
        }
        // A given-up deposit is not scanned again (its block no longer holds the
        // cursor back); a given-up payout attestation or notice is planned afresh from
        // the ledger and the chain on the next pass while its withdrawal is open.
        for (_, attestation) in due.given_up {
            actions.push(CustodyAction::GiveUp(attestation.body));
        }
        self.plan_deposits(view, observed, &mut actions);
        self.plan_payout_attestations(view, observed, &mut actions);
        if self.config.payer {
            let current =
                ledger_time.is_some_and(|time| now.since(time) <= self.config.max_ledger_age_ms);
            self.status.payer_waiting_for_ledger = !current;
            if let (true, Some(payer)) = (current, &observed.payer) {
                self.plan_payer(view, genesis, observed, payer, journal, &mut actions);
            }
        }
        let lines = reserves(
            view,
            genesis,
            &self.config.settings,
            &self.config.assets,
            &observed.hot,
            &observed.cold,
        );
        self.status.undercovered = Some(lines.iter().any(|line| line.undercovered));
        actions
    }

    fn plan_deposits(
        &self,
        view: &dyn StateView,
        observed: &ChainObservation,
        actions: &mut Vec<CustodyAction>,
    ) {
        let Some((range, transfers)) = &observed.transfers else {
            return;
        };
        let (_, until) = *range;
        // An answer for another range (a stale or duplicated response) is not used.
        let expected = plan::scan_range(
            self.next_block,
            observed.latest,
            self.config.settings.confirmations,
        );
        if expected != Some(*range) {
            return;
        }
        let mut facts = plan::deposit_facts(&self.config.settings, transfers);
        if self.config.lies_about_deposits {
            facts = lies_about_deposits(facts);
        }
        let mut planned = BTreeSet::new();
        let mut blocks = Vec::new();
        for (block, fact) in facts {
            let id = fact.deposit_id();
            // Attest even a deposit the others already settled: the contract records a
            // late attestation without crediting again, and every validator's own view
            // of every deposit is what lets an operator see a watcher that misses or
            // misreads deposits.
            if planned.contains(&id)
                || self.follow.is_pending(&Subject::Deposit(id))
                || attested_by(view, id, self.config.member)
            {
                continue;
            }
            if planned.len() == MAX_ATTESTATIONS_PER_PASS {
                // The same blocks are scanned again next pass for the rest; what was
                // admitted is pending by then and skipped.
                return;
            }
            planned.insert(id);
            blocks.push(block);
            actions.push(CustodyAction::Attest {
                body: TxBody::AttestDeposit(fact),
                block: Some(block),
            });
        }
        actions.push(CustodyAction::Scanned { until });
        let pending_blocks = self
            .follow
            .values()
            .filter_map(|pending| pending.value.block);
        let resume = plan::resume_block(until + 1, pending_blocks.chain(blocks));
        if resume != self.stored_cursor {
            actions.push(CustodyAction::StoreCursor(resume));
        }
    }

    fn plan_payout_attestations(
        &self,
        view: &dyn StateView,
        observed: &ChainObservation,
        actions: &mut Vec<CustodyAction>,
    ) {
        let confirmations = self.config.settings.confirmations;
        for (withdrawal, hash) in self.payouts_to_check(view) {
            let Some(Some(receipt)) = observed.receipts.get(&hash) else {
                continue;
            };
            if receipt.success
                && plan::is_confirmed(receipt.block, observed.latest, confirmations)
                && plan::pays(&self.config.settings, &withdrawal, &receipt.transfers)
            {
                actions.push(CustodyAction::Attest {
                    body: TxBody::AttestPayout {
                        withdrawal: withdrawal.id,
                        tx_hash: hash,
                    },
                    block: None,
                });
            }
        }
    }

    fn plan_payer(
        &mut self,
        view: &dyn StateView,
        genesis: &Genesis,
        observed: &ChainObservation,
        payer: &PayerObservation,
        journal: &[(String, SignedTransfer)],
        actions: &mut Vec<CustodyAction>,
    ) {
        let settings = &self.config.settings;
        let kind = |asset: AssetId| genesis.asset(asset).map(|spec| spec.kind);
        // Re-send what is journaled but not mined: same bytes, same nonce.
        let mut in_flight = false;
        for (_, entry) in journal {
            if entry.nonce >= payer.mined_nonce {
                actions.push(CustodyAction::Broadcast(entry.clone()));
                in_flight = true;
            }
        }
        let journal_next_nonce = journal
            .iter()
            .map(|(_, entry)| entry.nonce + 1)
            .max()
            .unwrap_or(0);
        // Every hot-wallet transaction is journaled before it is broadcast, so a chain
        // ahead of the journal means this journal lost some: one of them may be the
        // payout of a withdrawal still open here, and paying it now would pay twice.
        let behind = (payer.mined_nonce > journal_next_nonce).then_some(JournalBehind {
            journal_next_nonce,
            mined_next_nonce: payer.mined_nonce,
        });
        self.status.journal_behind_chain = behind;
        let next_nonce = journal_next_nonce.max(payer.pending_nonce);
        let open = ledger::open_withdrawals(view);
        let mut waiting = BTreeSet::new();
        let balance = |asset: AssetId| observed.hot.get(&asset).copied().unwrap_or(Amount(0)).0;
        for withdrawal in &open {
            let name = plan::payout_journal_name(withdrawal.id);
            if let Some((_, entry)) = journal.iter().find(|(entry_name, _)| *entry_name == name) {
                // Paid (or paying): make sure the chain of record names this payout.
                let hash = ChainTxHash(entry.tx_hash.clone());
                let named = matches!(&withdrawal.status, WithdrawalStatus::Sent { tx_hash } if *tx_hash == hash);
                if !named
                    && !self
                        .follow
                        .is_pending(&Subject::Named(withdrawal.id, hash.clone()))
                {
                    actions.push(CustodyAction::Attest {
                        body: TxBody::PayoutSent {
                            withdrawal: withdrawal.id,
                            tx_hash: hash,
                        },
                        block: None,
                    });
                }
                continue;
            }
            if withdrawal.status != WithdrawalStatus::Pending || in_flight || behind.is_some() {
                continue;
            }
            // The hot wallet must hold the amount and the gas (in the native coin, even
            // when the payout moves a token); otherwise the withdrawal waits, visible.
            let covered = match kind(withdrawal.asset) {
                Some(AssetKind::NativeCoin) => {
                    balance(withdrawal.asset) >= withdrawal.amount.0.saturating_add(payer.max_fee)
                }
                _ => {
                    balance(withdrawal.asset) >= withdrawal.amount.0
                        && observed.hot_gas >= payer.max_fee
                }
            };
            if !covered {
                waiting.insert(withdrawal.id);
                continue;
            }
            actions.push(CustodyAction::Pay {
                withdrawal: withdrawal.id,
                transfer: Outgoing {
                    asset: withdrawal.asset,
                    to: withdrawal.to.clone(),
                    amount: withdrawal.amount,
                    nonce: next_nonce,
                    tag: plan::payout_tag(withdrawal.id),
                    journal_name: name,
                },
            });
            in_flight = true;
        }
        let nothing_waits = waiting.is_empty();
        self.status.waiting_for_hot_wallet = waiting;
        if in_flight || !nothing_waits || behind.is_some() {
            return;
        }
        for (asset, _) in &self.config.assets {
            let unpaid = open
                .iter()
                .filter(|w| w.asset == *asset && w.status == WithdrawalStatus::Pending)
                .fold(0u128, |sum, w| sum.saturating_add(w.amount.0));
            let mut excess = plan::sweep_amount(
                Amount(balance(*asset)),
                observed.cold.get(asset).copied().unwrap_or(Amount(0)),
                Amount(unpaid),
                settings.hot_cap_bps,
            );
            if kind(*asset) == Some(AssetKind::NativeCoin) {
                excess = Amount(excess.0.saturating_sub(payer.max_fee));
            }
            if excess.is_zero() {
                continue;
            }
            actions.push(CustodyAction::Sweep(Outgoing {
                asset: *asset,
                to: settings.cold_address.clone(),
                amount: excess,
                nonce: next_nonce,
                tag: SWEEP_TAG.to_vec(),
                journal_name: format!("sweep-{next_nonce}"),
            }));
            break;
        }
    }

    /// Takes the outcome of one action of the last plan.
    pub fn record(&mut self, action: &CustodyAction, outcome: Outcome, now: Millis) {
        if outcome == Outcome::Failed {
            // Nothing changed: the next pass plans it again from what it then sees.
            return;
        }
        match action {
            CustodyAction::Attest { body, block } => self.follow.admitted(
                Subject::of(body),
                Attestation {
                    body: body.clone(),
                    block: *block,
                },
                now,
            ),
            CustodyAction::Scanned { until } => {
                assert!(*until >= self.next_block, "the scan only moves forward");
                self.next_block = until + 1;
                self.status.scanned_until = Some(*until);
            }
            CustodyAction::StoreCursor(cursor) => self.stored_cursor = *cursor,
            CustodyAction::Broadcast(_)
            | CustodyAction::Pay { .. }
            | CustodyAction::Sweep(_)
            | CustodyAction::GiveUp(_) => {}
        }
    }
}
