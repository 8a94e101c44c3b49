//! The block executor: one [`Ledger`] per block, over a read-only state view.
//!
//! It owns the overlay of every table, runs transactions one at a time (each is
//! atomic: a rejected one is rolled back completely), runs the block's time-driven
//! work at the end, and flushes one [`WriteSet`] in which every key appears once.
//!
//! The balance primitives here are the only code that changes a [`Balance`]; each
//! keeps the ledger invariants (no negative balance, per-asset conservation, locks
//! equal to what open items reserve) and records a settlement-report line for every
//! increase or decrease of holdings.

use crate::consortium::Consortium;
use crate::error::ContractError;
use crate::keys;
use crate::overlay::{BookSide, Table};
use seisan_types::clearing::{
    Account, AssetTotals, Balance, ChangeReason, Confirmation, ConfirmationId, Cycle, CycleId,
    CycleStatus, Order, OrderId, ReportEntry, Rfq, RfqId, SettlementReport, TopUpId, TopUpRequest,
    Trade, TradeId,
};
use seisan_types::hash::Hash;
use seisan_types::membership::MemberStatus;
use seisan_types::receipt::{Event, Receipt, TxOutcome};
use seisan_types::state::{StateView, WriteSet};
use seisan_types::tx::{Lane, SignedTransaction, TxBody};
use seisan_types::{Amount, AssetId, Genesis, Height, MemberId, Nonce, Role};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What the node tells the contracts about the block being executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockContext {
    pub height: Height,
    /// The block's timestamp: the only clock the contracts know.
    pub timestamp_ms: u64,
    pub proposer: MemberId,
}

/// What executing a block produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockOutcome {
    /// Every key the block changed, once.
    pub writes: WriteSet,
    /// One per transaction, in block order; each carries the events it caused.
    pub receipts: Vec<Receipt>,
    /// Events of the block's time-driven work (expiries, top-up deadlines, cut-offs),
    /// which belong to no transaction.
    pub events: Vec<Event>,
    /// What the block changed per member and asset (also stored under its height).
    pub report: Option<SettlementReport>,
}

/// Counters and the current cycle, in one record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub next_order: u64,
    pub next_trade: u64,
    pub next_top_up: u64,
    pub next_rfq: u64,
    pub next_confirmation: u64,
    pub next_book_sequence: u64,
    pub current_cycle: CycleId,
}

/// Declares the block's typed overlay tables from one list: the [`Tables`] struct and
/// the commit, rollback and flush that must cover every table (a table left out of
/// one of them would leak a rejected transaction's writes or lose a block's).
macro_rules! overlay_tables {
    ($($(#[$doc:meta])* $field:ident: $value:ty = $name:literal,)*) => {
        /// Every typed overlay table of a block; see [`crate::keys::TABLES`] for the key
        /// bytes each one holds (the index table holds every index table's keys).
        pub(crate) struct Tables {
            $($(#[$doc])* pub(crate) $field: Table<$value>,)*
        }

        impl Tables {
            fn new() -> Tables {
                Tables {
                    $($field: Table::new($name),)*
                }
            }

            fn commit(&mut self) {
                $(self.$field.commit();)*
            }

            fn rollback(&mut self) {
                $(self.$field.rollback();)*
            }

            fn flush(&self, writes: &mut WriteSet) {
                $(self.$field.flush(writes);)*
            }
        }
    };
}

overlay_tables! {
    meta: Meta = "meta",
    nonces: Nonce = "nonce",
    balances: Balance = "balance",
    customers: Amount = "customer",
    totals: AssetTotals = "totals",
    orders: Order = "order",
    book: OrderId = "book",
    index: () = "index",
    trades: Trade = "trade",
    /// Per open buy order, the fraction of a quote minor unit its fills have been
    /// charged less than their exact value (see [`crate::orders`]).
    value_remainders: Amount = "value-remainder",
    top_ups: TopUpRequest = "top-up",
    rfqs: Rfq = "rfq",
    confirmations: Confirmation = "confirmation",
    trade_refs: ConfirmationId = "trade-ref",
    cycles: Cycle = "cycle",
    reports: SettlementReport = "report",
    custody: crate::custody::CustodyValue = "custody",
    bank: crate::bank::BankValue = "bank",
    consortium: crate::consortium::Consortium = "consortium",
    governance_meta: crate::governance::GovernanceMeta = "governance-meta",
    proposals: seisan_types::governance::ProposalRecord = "proposal",
    mirrors: crate::mirror::MirrorValue = "mirror",
}

/// The block executor. See the module docs.
pub struct Ledger<'a> {
    pub(crate) view: &'a dyn StateView,
    /// Read only for what governance cannot change: the chain id, the genesis time and
    /// the opening balances.
    pub(crate) genesis: &'a Genesis,
    /// The consortium's members, assets, pairs and settings as of this block (the
    /// `consortium` table's value, cached decoded; see [`crate::consortium`]).
    pub(crate) config: Consortium,
    /// Whether the step in progress wrote `config` (a rollback then re-reads it).
    config_written: bool,
    pub(crate) ctx: BlockContext,
    pub(crate) tables: Tables,
    /// Book sides loaded this block, by prefix; derived from `book`, so dropped on
    /// rollback and rebuilt on demand.
    books: BTreeMap<Vec<u8>, BookSide>,
    /// Report lines of the block (committed transactions and end-of-block work).
    block_report: BTreeMap<(MemberId, AssetId, Account, ChangeReason), (Amount, Amount)>,
    /// Report lines of the transaction in progress.
    pending_report: Vec<ReportEntry>,
    /// Events of the transaction (or end-of-block step) in progress.
    pending_events: Vec<Event>,
    /// (member, asset) whose available balance rose in the step in progress: their
    /// open top-up requests may now be covered.
    raised: BTreeSet<(MemberId, AssetId)>,
    block_events: Vec<Event>,
    receipts: Vec<Receipt>,
}

impl std::fmt::Debug for Ledger<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("ctx", &self.ctx)
            .field("receipts", &self.receipts.len())
            .finish_non_exhaustive()
    }
}

/// The most transactions' worth of receipts one block may produce (as the block bound).
pub const MAX_RECEIPTS_PER_BLOCK: usize = seisan_types::block::MAX_TXS_PER_BLOCK;

impl<'a> Ledger<'a> {
    /// Starts executing a block on top of `view`, which must hold
    /// [`crate::genesis_writes`] (or a later state).
    pub fn new(view: &'a dyn StateView, genesis: &'a Genesis, ctx: BlockContext) -> Ledger<'a> {
        let mut tables = Tables::new();
        // Before genesis writes (height 0 itself, and pure helpers over an empty view)
        // the configuration is the genesis one.
        let config = tables
            .consortium
            .get_cloned(view, &keys::consortium())
            .unwrap_or_else(|| Consortium::from_genesis(genesis));
        Ledger {
            view,
            genesis,
            config,
            config_written: false,
            ctx,
            tables,
            books: BTreeMap::new(),
            block_report: BTreeMap::new(),
            pending_report: Vec::new(),
            pending_events: Vec::new(),
            raised: BTreeSet::new(),
            block_events: Vec::new(),
            receipts: Vec::new(),
        }
    }

    pub fn context(&self) -> BlockContext {
        self.ctx
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.ctx.timestamp_ms
    }

    /// The next page of index keys under `prefix` after `cursor`, in key order,
    /// advancing the cursor; empty when the index is exhausted. Callers may change the
    /// index between pages (the cursor is a key, not a position).
    pub(crate) fn index_page(
        &mut self,
        prefix: &[u8],
        cursor: &mut Option<Vec<u8>>,
    ) -> Vec<Vec<u8>> {
        let batch = self.tables.index.scan_keys(
            self.view,
            prefix,
            cursor.as_deref(),
            crate::overlay::SCAN_BATCH,
        );
        if let Some(last) = batch.last() {
            *cursor = Some(last.clone());
        }
        batch
    }

    /// The ids in a deadline index (keys `prefix ++ deadline u64 ++ id u64`) whose
    /// deadline is at or before `now`, earliest first. Collected before the caller acts
    /// on any of them: acting on one removes only its own entry.
    pub(crate) fn due(&mut self, prefix: &[u8], now: u64) -> Vec<u64> {
        let mut ids = Vec::new();
        let mut cursor = None;
        loop {
            let batch = self.index_page(prefix, &mut cursor);
            if batch.is_empty() {
                return ids;
            }
            for key in batch {
                if keys::leading_u64(&key) > now {
                    return ids;
                }
                ids.push(keys::trailing_u64(&key));
            }
        }
    }

    // ---- step lifecycle -------------------------------------------------------------

    fn commit_step(&mut self) -> Vec<Event> {
        self.config_written = false;
        self.tables.commit();
        for entry in self.pending_report.drain(..) {
            let line = self
                .block_report
                .entry((entry.member, entry.asset, entry.account, entry.reason))
                .or_insert((Amount::ZERO, Amount::ZERO));
            line.0 = line
                .0
                .checked_add(entry.increase)
                .expect("report bounded by supply");
            line.1 = line
                .1
                .checked_add(entry.decrease)
                .expect("report bounded by supply");
        }
        assert!(self.raised.is_empty(), "cures run before a step commits");
        std::mem::take(&mut self.pending_events)
    }

    fn rollback_step(&mut self) {
        self.tables.rollback();
        if std::mem::take(&mut self.config_written) {
            self.config = self
                .tables
                .consortium
                .get_cloned(self.view, &keys::consortium())
                .unwrap_or_else(|| Consortium::from_genesis(self.genesis));
        }
        self.books.clear();
        self.pending_report.clear();
        self.pending_events.clear();
        self.raised.clear();
    }

    /// Runs `step` atomically: on success its changes, and the top-up cures they made
    /// possible, are kept and its events returned; on error nothing is kept.
    pub(crate) fn atomic<T>(
        &mut self,
        step: impl FnOnce(&mut Ledger<'a>) -> Result<T, ContractError>,
    ) -> Result<(T, Vec<Event>), ContractError> {
        assert!(self.pending_events.is_empty());
        assert!(self.pending_report.is_empty());
        match step(self) {
            Ok(value) => {
                self.process_cures();
                Ok((value, self.commit_step()))
            }
            Err(error) => {
                self.rollback_step();
                Err(error)
            }
        }
    }

    // ---- transactions ---------------------------------------------------------------

    /// Applies one signed transaction (its signature and chain id already checked by
    /// the node) and records its receipt.
    ///
    /// An unknown member or a nonce that is not the next of its lane changes nothing.
    /// Any other rejection changes nothing but the lane's last nonce, which is still
    /// advanced so the signed transaction cannot be replayed into a later block where
    /// it might succeed without the member meaning it to.
    pub fn apply_transaction(&mut self, signed: &SignedTransaction) -> &Receipt {
        self.apply_identified_transaction(signed, signed.id())
    }

    /// [`Ledger::apply_transaction`] with the transaction's id already computed.
    pub fn apply_identified_transaction(
        &mut self,
        signed: &SignedTransaction,
        id: Hash,
    ) -> &Receipt {
        debug_assert_eq!(id, signed.id(), "the id is the transaction's");
        assert!(
            self.receipts.len() < MAX_RECEIPTS_PER_BLOCK,
            "more transactions than a block may hold"
        );
        let tx = &signed.tx;
        let mut receipt = Receipt {
            tx_id: id,
            member: tx.member,
            nonce: tx.nonce,
            kind: tx.body.kind_name().to_string(),
            outcome: TxOutcome::Applied,
            events: Vec::new(),
        };
        let lane = tx.body.lane();
        let admitted = self.admit(tx.member, lane, tx.nonce);
        let result = match admitted {
            Err(error) => Err(error),
            Ok(()) => {
                let member = tx.member;
                let result = self.atomic(|ledger| ledger.execute(member, &tx.body));
                // The nonce advances whatever the body did (see above).
                self.tables.nonces.put(keys::nonce(member, lane), tx.nonce);
                self.tables.nonces.commit();
                result.map(|((), events)| events)
            }
        };
        match result {
            Ok(events) => receipt.events = events,
            Err(error) => {
                receipt.outcome = TxOutcome::Rejected {
                    code: error.code().to_string(),
                    reason: error.to_string(),
                }
            }
        }
        self.receipts.push(receipt);
        self.receipts.last().expect("just pushed")
    }

    /// Replaces the consortium's configuration (governance, at a block's end).
    pub(crate) fn set_config(&mut self, config: Consortium) {
        self.tables
            .consortium
            .put(keys::consortium(), config.clone());
        self.config = config;
        self.config_written = true;
    }

    /// The envelope rules: a member that is not removed, and exactly the next nonce of
    /// the body's lane (the lane's last one plus one; 1 for the lane's first transaction).
    /// A member has two independent sequences, the member lane and the node lane (see
    /// [`seisan_types::tx::Lane`]), so its node's attestations never take a nonce its
    /// back office signed with. Gaps are refused so that the order of a lane's
    /// transactions is the order they were signed in, whichever node and block each
    /// reached first; the mempool holds a transaction until its predecessor is in.
    fn admit(&mut self, member: MemberId, lane: Lane, nonce: Nonce) -> Result<(), ContractError> {
        match self.config.status(member) {
            None => return Err(ContractError::UnknownMember { member }),
            Some(MemberStatus::Removed) => return Err(ContractError::MemberRemoved { member }),
            Some(MemberStatus::Active | MemberStatus::WithdrawOnly) => {}
        }
        let last = self
            .tables
            .nonces
            .get_cloned(self.view, &keys::nonce(member, lane));
        let expected = Nonce(last.map_or(1, |last| last.0 + 1));
        match last {
            Some(last) if nonce == last => Err(ContractError::RepeatedNonce {
                member,
                lane,
                nonce,
            }),
            Some(last) if nonce < last => Err(ContractError::StaleNonce {
                member,
                lane,
                nonce,
                last,
            }),
            _ if nonce != expected => Err(ContractError::NonceGap {
                member,
                lane,
                nonce,
                expected,
            }),
            _ => Ok(()),
        }
    }

    fn require_role(&self, member: MemberId, needed: Role) -> Result<(), ContractError> {
        let role = self.config.member(member).expect("admitted member").role;
        if role != needed {
            return Err(ContractError::WrongRole {
                member,
                role,
                needed,
            });
        }
        Ok(())
    }

    fn execute(&mut self, member: MemberId, body: &TxBody) -> Result<(), ContractError> {
        match body {
            TxBody::CloseCycle => {
                self.require_role(member, Role::ClearingHouse)?;
                self.close_current_cycle();
                Ok(())
            }
            TxBody::Propose(proposal) => self.propose(member, proposal),
            TxBody::Approve { proposal } => self.approve(member, *proposal),
            body if crate::custody::is_custody(body) => crate::custody::execute(self, member, body),
            body if crate::bank::is_bank(body) => crate::bank::execute(self, member, body),
            body if crate::mirror::is_mirror(body) => crate::mirror::execute(self, member, body),
            _ => {
                self.require_role(member, Role::Exchange)?;
                // A member on its way out takes on nothing new (see crate::governance);
                // cancelling what it has is how it gets out.
                let takes_on = !matches!(body, TxBody::CancelOrder { .. });
                if takes_on && self.config.status(member) != Some(MemberStatus::Active) {
                    return Err(ContractError::WithdrawOnly { member });
                }
                match body {
                    TxBody::Allocate(allocation) => self.allocate(member, allocation),
                    TxBody::AllocateBatch(batch) => self.allocate_batch(member, batch),
                    TxBody::PlaceOrder(request) => self.place_limit_order(member, request),
                    TxBody::CancelOrder { order } => self.cancel_order(member, *order),
                    TxBody::RequestQuote(request) => self.request_quote(member, request),
                    TxBody::AnswerQuote(answer) => self.answer_quote(member, answer),
                    TxBody::AcceptQuote { quote } => self.accept_quote(member, *quote),
                    TxBody::Confirm(terms) => self.confirm(member, terms),
                    TxBody::CloseCycle
                    | TxBody::AttestDeposit(_)
                    | TxBody::Withdraw { .. }
                    | TxBody::PayoutSent { .. }
                    | TxBody::AttestPayout { .. }
                    | TxBody::AttestBankEntry(_)
                    | TxBody::WithdrawFiat { .. }
                    | TxBody::Propose(_)
                    | TxBody::Approve { .. }
                    | TxBody::AttestMirror(_) => unreachable!("handled above"),
                }
            }
        }
    }

    // ---- end of block ---------------------------------------------------------------

    /// Runs the block's time-driven work and returns everything the block produced.
    ///
    /// Order: lapsed orders and quotes are cancelled; top-ups their released locks now
    /// cover are cured; top-up requests past their deadline expire (cancelling parked
    /// orders); closing cycles past their deadline remove short members and settle;
    /// the current cycle is cut off if a daily cut-off time passed; finally any
    /// top-ups covered by what settlement credited are cured.
    pub fn finish(mut self) -> BlockOutcome {
        let ((), events) = self
            .atomic(|ledger| {
                ledger.expire_orders();
                ledger.process_cures();
                ledger.expire_top_ups();
                ledger.process_cycle_deadlines();
                ledger.process_cutoff();
                // Last, so the block's own work ran under the configuration it started
                // with; the next block runs under what this applies.
                ledger.process_governance();
                Ok(())
            })
            .expect("end-of-block work cannot fail");
        self.block_events.extend(events);
        let report = self.store_block_report();
        let writes = self.pending_writes();
        BlockOutcome {
            writes,
            receipts: self.receipts,
            events: self.block_events,
            report,
        }
    }

    /// The writes so far, each touched key once, without ending the block (`finish`
    /// uses it; tests use it to check invariants between transactions).
    pub fn pending_writes(&self) -> WriteSet {
        let mut writes = WriteSet::new();
        self.tables.flush(&mut writes);
        writes
    }

    fn store_block_report(&mut self) -> Option<SettlementReport> {
        if self.block_report.is_empty() {
            return None;
        }
        let entries = std::mem::take(&mut self.block_report)
            .into_iter()
            .map(
                |((member, asset, account, reason), (increase, decrease))| ReportEntry {
                    member,
                    asset,
                    account,
                    reason,
                    increase,
                    decrease,
                },
            )
            .collect();
        let report = SettlementReport {
            height: self.ctx.height,
            timestamp_ms: self.ctx.timestamp_ms,
            entries,
        };
        self.tables
            .reports
            .put(keys::report(self.ctx.height), report.clone());
        self.tables.reports.commit();
        // The bank must mirror the fiat this block settled; open those mirrors now.
        crate::mirror::open_for_report(self, &report);
        Some(report)
    }

    // ---- records --------------------------------------------------------------------

    pub(crate) fn emit(&mut self, event: Event) {
        self.pending_events.push(event);
    }

    pub(crate) fn meta(&mut self) -> Meta {
        self.tables
            .meta
            .get_cloned(self.view, &keys::meta())
            .expect("state has no contracts metadata: apply contracts::genesis_writes at height 0")
    }

    /// Takes the next value of a counter in [`Meta`].
    pub(crate) fn next_id(&mut self, counter: fn(&mut Meta) -> &mut u64) -> u64 {
        let mut meta = self.meta();
        let slot = counter(&mut meta);
        let id = *slot;
        *slot = id.checked_add(1).expect("id counter overflow");
        self.tables.meta.put(keys::meta(), meta);
        id
    }

    pub(crate) fn order(&mut self, id: OrderId) -> Option<Order> {
        self.tables.orders.get_cloned(self.view, &keys::order(id))
    }

    pub(crate) fn store_order(&mut self, order: Order) {
        self.tables.orders.put(keys::order(order.id), order);
    }

    pub(crate) fn rfq(&mut self, id: RfqId) -> Option<Rfq> {
        self.tables.rfqs.get_cloned(self.view, &keys::rfq(id))
    }

    pub(crate) fn store_rfq(&mut self, rfq: Rfq) {
        self.tables.rfqs.put(keys::rfq(rfq.id), rfq);
    }

    pub(crate) fn top_up(&mut self, id: TopUpId) -> TopUpRequest {
        self.tables
            .top_ups
            .get_cloned(self.view, &keys::top_up(id))
            .unwrap_or_else(|| panic!("top-up {id} is indexed but missing"))
    }

    pub(crate) fn store_top_up(&mut self, top_up: TopUpRequest) {
        self.tables.top_ups.put(keys::top_up(top_up.id), top_up);
    }

    pub(crate) fn cycle(&mut self, id: CycleId) -> Cycle {
        self.tables
            .cycles
            .get_cloned(self.view, &keys::cycle(id))
            .unwrap_or_else(|| panic!("cycle {id} is missing"))
    }

    pub(crate) fn store_cycle(&mut self, cycle: Cycle) {
        if matches!(cycle.status, CycleStatus::Closing { .. }) {
            self.tables.index.put(keys::closing_cycle(cycle.id), ());
        } else {
            self.tables.index.delete(keys::closing_cycle(cycle.id));
        }
        self.tables.cycles.put(keys::cycle(cycle.id), cycle);
    }

    pub(crate) fn store_trade(&mut self, trade: Trade) {
        self.tables.trades.put(keys::trade(trade.id), trade);
    }

    pub(crate) fn next_trade_id(&mut self) -> TradeId {
        TradeId(self.next_id(|meta| &mut meta.next_trade))
    }

    // ---- book -----------------------------------------------------------------------

    fn book_side(&mut self, prefix: &[u8]) -> &mut BookSide {
        if !self.books.contains_key(prefix) {
            let changes = self.tables.book.changes_under(prefix);
            self.books
                .insert(prefix.to_vec(), BookSide::new(prefix.to_vec(), changes));
        }
        self.books.get_mut(prefix).expect("just inserted")
    }

    pub(crate) fn book_best(&mut self, prefix: &[u8]) -> Option<(Vec<u8>, OrderId)> {
        let view = self.view;
        self.book_side(prefix).best(view)
    }

    pub(crate) fn book_insert(&mut self, prefix: &[u8], key: Vec<u8>, order: OrderId) {
        self.book_side(prefix).insert(key.clone(), order);
        self.tables.book.put(key, order);
    }

    pub(crate) fn book_remove(&mut self, prefix: &[u8], key: Vec<u8>) {
        self.book_side(prefix).remove(&key);
        self.tables.book.delete(key);
    }

    // ---- balances -------------------------------------------------------------------

    pub(crate) fn asset_exists(&self, asset: AssetId) -> Result<(), ContractError> {
        match self.config.asset(asset) {
            Some(_) => Ok(()),
            None => Err(ContractError::UnknownAsset { asset }),
        }
    }

    pub(crate) fn asset_scale(&self, asset: AssetId) -> u32 {
        self.config.asset(asset).expect("asset checked").scale
    }

    pub fn balance(&mut self, member: MemberId, asset: AssetId) -> Balance {
        self.tables
            .balances
            .get_cloned(self.view, &keys::balance(member, asset))
            .unwrap_or_default()
    }

    fn store_balance(&mut self, member: MemberId, asset: AssetId, balance: Balance) {
        self.tables
            .balances
            .put(keys::balance(member, asset), balance);
    }

    pub(crate) fn report(
        &mut self,
        member: MemberId,
        asset: AssetId,
        account: Account,
        reason: ChangeReason,
        increase: Amount,
        decrease: Amount,
    ) {
        self.pending_report.push(ReportEntry {
            member,
            asset,
            account,
            reason,
            increase,
            decrease,
        });
    }

    /// Moves `amount` from available inventory to locked.
    pub(crate) fn lock(
        &mut self,
        member: MemberId,
        asset: AssetId,
        amount: Amount,
    ) -> Result<(), ContractError> {
        let mut balance = self.balance(member, asset);
        let available = balance.inventory;
        balance.inventory =
            available
                .checked_sub(amount)
                .ok_or(ContractError::InsufficientAvailable {
                    member,
                    asset,
                    needed: amount,
                    available,
                })?;
        balance.locked = balance
            .locked
            .checked_add(amount)
            .expect("locked <= supply");
        self.store_balance(member, asset, balance);
        Ok(())
    }

    /// Moves `amount` from locked back to available inventory.
    pub(crate) fn unlock(&mut self, member: MemberId, asset: AssetId, amount: Amount) {
        if amount.is_zero() {
            return;
        }
        let mut balance = self.balance(member, asset);
        balance.locked = balance.locked.checked_sub(amount).unwrap_or_else(|| {
            panic!(
                "unlocking {amount} of {member}/{asset} but only {} locked",
                balance.locked
            )
        });
        balance.inventory = balance
            .inventory
            .checked_add(amount)
            .expect("inventory <= supply");
        self.store_balance(member, asset, balance);
        self.raised.insert((member, asset));
    }

    /// Takes `amount` out of what is locked (a leg leaving the member).
    pub(crate) fn spend_locked(
        &mut self,
        member: MemberId,
        asset: AssetId,
        amount: Amount,
        reason: ChangeReason,
    ) {
        let mut balance = self.balance(member, asset);
        balance.locked = balance.locked.checked_sub(amount).unwrap_or_else(|| {
            panic!(
                "spending {amount} of {member}/{asset} but only {} locked",
                balance.locked
            )
        });
        self.store_balance(member, asset, balance);
        self.report(
            member,
            asset,
            Account::Inventory,
            reason,
            Amount::ZERO,
            amount,
        );
    }

    /// Adds `amount` to inventory (a leg arriving). The caller guarantees the supply
    /// allows it (it was taken from another member in the same step, or credited to
    /// the asset's totals).
    pub(crate) fn receive(
        &mut self,
        member: MemberId,
        asset: AssetId,
        amount: Amount,
        reason: ChangeReason,
    ) {
        let mut balance = self.balance(member, asset);
        balance.inventory = balance
            .inventory
            .checked_add(amount)
            .expect("inventory bounded by supply");
        self.store_balance(member, asset, balance);
        self.report(
            member,
            asset,
            Account::Inventory,
            reason,
            amount,
            Amount::ZERO,
        );
        if !amount.is_zero() {
            self.raised.insert((member, asset));
        }
    }

    fn totals(&mut self, asset: AssetId) -> AssetTotals {
        self.tables
            .totals
            .get_cloned(self.view, &keys::totals(asset))
            .unwrap_or_default()
    }

    /// Credits an attested deposit (or an opening balance) to the member's inventory.
    ///
    /// For the custody and bank transaction handlers: call inside a transaction. The
    /// deposit counts toward the asset's credited total, and when the transaction
    /// commits, open top-up requests of (member, asset) that the new available balance
    /// covers are cured in request order: parked orders go live and match, settlement
    /// obligations lock (and a fully covered cycle settles).
    pub fn credit_deposit(
        &mut self,
        member: MemberId,
        asset: AssetId,
        amount: Amount,
        reason: ChangeReason,
    ) -> Result<(), ContractError> {
        self.asset_exists(asset)?;
        if self.config.member(member).is_none() {
            return Err(ContractError::UnknownMember { member });
        }
        if amount.is_zero() {
            return Err(ContractError::ZeroAmount { what: "deposit" });
        }
        let mut totals = self.totals(asset);
        totals.credited = totals
            .credited
            .checked_add(amount)
            .ok_or(ContractError::CreditOverflow { asset, amount })?;
        self.tables.totals.put(keys::totals(asset), totals);
        self.receive(member, asset, amount, reason);
        self.emit(Event::Credited {
            member,
            asset,
            amount,
            reason,
        });
        Ok(())
    }

    /// Debits a paid withdrawal from the member's available inventory (never from what
    /// is locked or allocated to customers). Fails, changing nothing, if the available
    /// balance is short. For the custody and bank handlers: call inside a transaction.
    pub fn debit_withdrawal(
        &mut self,
        member: MemberId,
        asset: AssetId,
        amount: Amount,
    ) -> Result<(), ContractError> {
        self.asset_exists(asset)?;
        if amount.is_zero() {
            return Err(ContractError::ZeroAmount { what: "withdrawal" });
        }
        let mut balance = self.balance(member, asset);
        let available = balance.inventory;
        balance.inventory =
            available
                .checked_sub(amount)
                .ok_or(ContractError::InsufficientAvailable {
                    member,
                    asset,
                    needed: amount,
                    available,
                })?;
        let mut totals = self.totals(asset);
        totals.debited = totals
            .debited
            .checked_add(amount)
            .expect("debits never exceed credits");
        assert!(
            totals.debited <= totals.credited,
            "debited more than credited"
        );
        self.tables.totals.put(keys::totals(asset), totals);
        self.store_balance(member, asset, balance);
        self.report(
            member,
            asset,
            Account::Inventory,
            ChangeReason::Withdrawal,
            Amount::ZERO,
            amount,
        );
        self.emit(Event::Debited {
            member,
            asset,
            amount,
            reason: ChangeReason::Withdrawal,
        });
        Ok(())
    }

    /// Applies a deposit as a step of its own (outside any transaction), with the cures
    /// it makes possible, and returns its events. For tests and simulations, until the
    /// attestation transactions exist.
    #[cfg(any(test, feature = "testing"))]
    pub fn deposit(
        &mut self,
        member: MemberId,
        asset: AssetId,
        amount: Amount,
    ) -> Result<Vec<Event>, ContractError> {
        self.atomic(|ledger| ledger.credit_deposit(member, asset, amount, ChangeReason::Deposit))
            .map(|((), events)| events)
    }

    /// [`Ledger::debit_withdrawal`] as a step of its own. For tests and simulations.
    #[cfg(any(test, feature = "testing"))]
    pub fn withdraw(
        &mut self,
        member: MemberId,
        asset: AssetId,
        amount: Amount,
    ) -> Result<Vec<Event>, ContractError> {
        self.atomic(|ledger| ledger.debit_withdrawal(member, asset, amount))
            .map(|((), events)| events)
    }

    // ---- customer sub-accounts ------------------------------------------------------

    pub(crate) fn customer_amount(
        &mut self,
        member: MemberId,
        asset: AssetId,
        customer: &str,
    ) -> Amount {
        self.tables
            .customers
            .get_cloned(self.view, &keys::customer(member, asset, customer))
            .unwrap_or_default()
    }

    pub(crate) fn set_customer_amount(
        &mut self,
        member: MemberId,
        asset: AssetId,
        customer: &str,
        amount: Amount,
    ) {
        let key = keys::customer(member, asset, customer);
        if amount.is_zero() {
            self.tables.customers.delete(key);
        } else {
            self.tables.customers.put(key, amount);
        }
    }

    /// Moves `amount` between inventory and the customers' total of one balance.
    pub(crate) fn shift_to_customers(
        &mut self,
        member: MemberId,
        asset: AssetId,
        amount: Amount,
        to_customers: bool,
    ) {
        let mut balance = self.balance(member, asset);
        if to_customers {
            balance.inventory = balance
                .inventory
                .checked_sub(amount)
                .expect("checked by caller");
            balance.customers = balance
                .customers
                .checked_add(amount)
                .expect("bounded by supply");
        } else {
            balance.customers = balance
                .customers
                .checked_sub(amount)
                .expect("checked by caller");
            balance.inventory = balance
                .inventory
                .checked_add(amount)
                .expect("bounded by supply");
            self.raised.insert((member, asset));
        }
        self.store_balance(member, asset, balance);
        let (inventory, customers) = if to_customers {
            ((Amount::ZERO, amount), (amount, Amount::ZERO))
        } else {
            ((amount, Amount::ZERO), (Amount::ZERO, amount))
        };
        let reason = ChangeReason::Allocation;
        self.report(
            member,
            asset,
            Account::Inventory,
            reason,
            inventory.0,
            inventory.1,
        );
        self.report(
            member,
            asset,
            Account::Customers,
            reason,
            customers.0,
            customers.1,
        );
    }

    // ---- cures ----------------------------------------------------------------------

    /// Cures every open top-up request that the available balances raised in this step
    /// now cover, in (member, asset, request id) order; a cure can raise more balances
    /// (a parked order that goes live and fills), which are processed in turn.
    pub(crate) fn process_cures(&mut self) {
        while let Some((member, asset)) = self.raised.pop_first() {
            let prefix = keys::open_top_up_prefix(member, asset);
            let mut after: Option<Vec<u8>> = None;
            loop {
                let batch = self.index_page(&prefix, &mut after);
                if batch.is_empty() {
                    break;
                }
                for key in batch {
                    let id = TopUpId(keys::trailing_u64(&key));
                    self.try_cure(id);
                }
            }
        }
    }

    /// Credits opening balances (used by [`crate::genesis_writes`]).
    pub(crate) fn open_genesis(&mut self) -> Result<(), ContractError> {
        let genesis = self.genesis;
        self.set_config(Consortium::from_genesis(genesis));
        self.tables.governance_meta.put(
            keys::governance_meta(),
            crate::governance::GovernanceMeta::default(),
        );
        self.tables.meta.put(
            keys::meta(),
            Meta {
                next_order: 1,
                next_trade: 1,
                next_top_up: 1,
                next_rfq: 1,
                next_confirmation: 1,
                next_book_sequence: 1,
                current_cycle: CycleId(1),
            },
        );
        self.store_cycle(Cycle {
            id: CycleId(1),
            opened_at_ms: genesis.genesis_time_ms,
            status: CycleStatus::Open,
            matched: 0,
            positions: Vec::new(),
            removed: Vec::new(),
            netting: Vec::new(),
            report: Vec::new(),
        });
        for opening in &genesis.opening_balances {
            let (member, _) = genesis
                .member_by_name(&opening.member)
                .expect("validated genesis names known members");
            let (asset, spec) = genesis
                .asset_by_symbol(&opening.asset)
                .expect("validated genesis names known assets");
            let amount = spec
                .parse_amount(&opening.amount)
                .expect("validated genesis has valid amounts");
            if !amount.is_zero() {
                self.credit_deposit(member, asset, amount, ChangeReason::Opening)?;
            }
        }
        Ok(())
    }

    /// Credits opening balances and records the genesis report; returns its writes.
    pub(crate) fn genesis_step(mut self) -> WriteSet {
        let ((), events) = self
            .atomic(|ledger| ledger.open_genesis())
            .expect("validated genesis opening balances credit");
        self.block_events.extend(events);
        self.finish_without_time().writes
    }

    fn finish_without_time(mut self) -> BlockOutcome {
        let report = self.store_block_report();
        let writes = self.pending_writes();
        BlockOutcome {
            writes,
            receipts: self.receipts,
            events: self.block_events,
            report,
        }
    }
}
