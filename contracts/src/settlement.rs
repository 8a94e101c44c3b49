//! Bilateral confirmations (S313-S316) and settlement cycles with multilateral netting
//! (BIS model 3).
//!
//! Confirmations: both sides of a trade agreed outside the chain submit the same
//! common-format terms. A record is keyed by the two members and the trade reference.
//! The first submission waits for the partner; the second is compared field by field:
//! equal terms are *matched* into the current cycle; differing terms are *mismatched*
//! (both sides are told the differing fields by one event naming both, and the
//! reference is free again so corrected terms can be sent). A matched reference stays
//! taken, so one trade cannot be settled twice.
//!
//! Cycles: cycle 1 opens at genesis. At a cut-off (the first block at or after the daily
//! `cutoff_time_of_day_ms` of genesis since the cycle opened, or a clearing-house
//! `CloseCycle` transaction) the current cycle closes and the next opens:
//! 1. confirmations still waiting for a partner are reported unmatched;
//! 2. the matched trades are netted: one position per member and asset (what it
//!    receives or pays net);
//! 3. every net payment the member's available inventory covers is locked at once; a
//!    member short in an asset gets a top-up request due at
//!    `cut-off + cycle_top_up_deadline_ms`;
//! 4. when every payment is locked (at once, or when top-ups cure), the cycle settles
//!    atomically: each payment leaves the payer's lock, each receipt enters the payee's
//!    inventory;
//! 5. at the deadline, members still short are removed: all their trades leave the
//!    cycle (with the reason), every lock of the cycle is released, and the netting is
//!    recomputed on the rest; members now short are removed at once (no new deadline),
//!    until what remains is covered, which then settles.
//!
//! Each cycle reports per asset the gross value (what would move trade by trade: the
//! quantities of the base asset, the values of the quote asset), the net value (the
//! sum of net payments) and the netting efficiency `1 - net/gross` in basis points.

use crate::error::ContractError;
use crate::keys;
use crate::ledger::Ledger;
use seisan_types::clearing::{
    trade_value, Account, AssetNetting, ChangeReason, Confirmation, ConfirmationField,
    ConfirmationId, ConfirmationStatus, ConfirmationSubmission, Cycle, CycleId, CycleStatus,
    NetPosition, RemovalReason, ReportEntry, TopUpId, TopUpSubject, TradeTerms,
    MAX_TRADE_REF_BYTES,
};
use seisan_types::genesis::DAY_MS;
use seisan_types::receipt::Event;
use seisan_types::{Amount, AssetId, MemberId};
use std::collections::BTreeMap;

/// Nets `trades` exactly as a closing cycle does (one position per member and asset,
/// gross and net per asset), without touching any state. Public so benchmarks and
/// tools can measure and reproduce a cycle's netting; `genesis` must be validated and
/// every trade must name its pairs and be within the value bounds a confirmation checks.
pub fn net_trades(
    genesis: &seisan_types::Genesis,
    trades: &[TradeTerms],
) -> (Vec<NetPosition>, Vec<AssetNetting>) {
    let empty = seisan_types::state::MapView::default();
    let ctx = crate::ledger::BlockContext {
        height: seisan_types::Height(0),
        timestamp_ms: genesis.genesis_time_ms,
        proposer: genesis.clearing_house(),
    };
    Ledger::new(&empty, genesis, ctx).net(trades)
}

/// The fields on which two submissions differ, in a fixed order.
pub fn differing_fields(first: &TradeTerms, second: &TradeTerms) -> Vec<ConfirmationField> {
    let mut fields = Vec::new();
    if first.buyer != second.buyer {
        fields.push(ConfirmationField::Buyer);
    }
    if first.seller != second.seller {
        fields.push(ConfirmationField::Seller);
    }
    if first.pair != second.pair {
        fields.push(ConfirmationField::Pair);
    }
    if first.quantity != second.quantity {
        fields.push(ConfirmationField::Quantity);
    }
    if first.price != second.price {
        fields.push(ConfirmationField::Price);
    }
    if first.trade_time_ms != second.trade_time_ms {
        fields.push(ConfirmationField::TradeTime);
    }
    fields
}

/// The most recent daily cut-off at or before `now_ms`, if any.
pub fn last_cutoff_ms(now_ms: u64, cutoff_time_of_day_ms: u64) -> Option<u64> {
    assert!(cutoff_time_of_day_ms < DAY_MS);
    let since = now_ms.checked_sub(cutoff_time_of_day_ms)?;
    Some(now_ms - since % DAY_MS)
}

impl Ledger<'_> {
    pub(crate) fn confirm(
        &mut self,
        member: MemberId,
        terms: &TradeTerms,
    ) -> Result<(), ContractError> {
        let length = terms.trade_ref.len();
        if length == 0 || length > MAX_TRADE_REF_BYTES {
            return Err(ContractError::BadTradeRef {
                length,
                limit: MAX_TRADE_REF_BYTES,
            });
        }
        if terms.buyer == terms.seller {
            return Err(ContractError::SameBuyerAndSeller);
        }
        let counterparty = if member == terms.buyer {
            terms.seller
        } else if member == terms.seller {
            terms.buyer
        } else {
            return Err(ContractError::NotAParty { member });
        };
        if !self.is_exchange(counterparty) {
            return Err(ContractError::NotAnExchange {
                member: counterparty,
            });
        }
        // A member on its way out confirms nothing new, so a confirmation naming it
        // could never complete (see crate::governance, G5).
        if !self.is_active(counterparty) {
            return Err(ContractError::CounterpartyNotActive {
                member: counterparty,
            });
        }
        self.check_terms(terms.pair, terms.quantity, terms.price)?;
        let parties = (member.min(counterparty), member.max(counterparty));
        let ref_key = keys::trade_ref(parties.0, parties.1, &terms.trade_ref);
        let cycle_id = self.meta().current_cycle;
        let submission = ConfirmationSubmission {
            member,
            terms: terms.clone(),
            height: self.ctx.height,
        };
        let Some(id) = self.tables.trade_refs.get_cloned(self.view, &ref_key) else {
            let id = ConfirmationId(self.next_id(|meta| &mut meta.next_confirmation));
            self.tables.trade_refs.put(ref_key, id);
            self.tables
                .index
                .put(keys::cycle_confirmation(cycle_id, id), ());
            self.tables.confirmations.put(
                keys::confirmation(id),
                Confirmation {
                    id,
                    trade_ref: terms.trade_ref.clone(),
                    parties,
                    submissions: vec![submission],
                    status: ConfirmationStatus::AwaitingPartner { cycle: cycle_id },
                },
            );
            self.emit(Event::ConfirmationReceived {
                confirmation: id,
                member,
            });
            return Ok(());
        };
        let mut confirmation = self
            .tables
            .confirmations
            .get_cloned(self.view, &keys::confirmation(id))
            .expect("trade reference names an existing confirmation");
        let ConfirmationStatus::AwaitingPartner { cycle } = confirmation.status else {
            return Err(ContractError::TradeRefInUse { confirmation: id });
        };
        assert_eq!(
            cycle, cycle_id,
            "waiting confirmations never outlive their cycle"
        );
        if confirmation.submissions[0].member == member {
            return Err(ContractError::AlreadyConfirmed {
                confirmation: id,
                member,
            });
        }
        let fields = differing_fields(&confirmation.submissions[0].terms, terms);
        confirmation.submissions.push(submission);
        self.emit(Event::ConfirmationReceived {
            confirmation: id,
            member,
        });
        if fields.is_empty() {
            confirmation.status = ConfirmationStatus::Matched { cycle };
            let mut record = self.cycle(cycle);
            record.matched += 1;
            self.store_cycle(record);
            self.emit(Event::ConfirmationMatched {
                confirmation: id,
                cycle,
            });
        } else {
            confirmation.status = ConfirmationStatus::Mismatched {
                fields: fields.clone(),
            };
            self.tables.trade_refs.delete(ref_key);
            self.tables
                .index
                .delete(keys::cycle_confirmation(cycle, id));
            self.emit(Event::ConfirmationMismatched {
                confirmation: id,
                trade_ref: terms.trade_ref.clone(),
                parties,
                fields,
            });
        }
        self.tables
            .confirmations
            .put(keys::confirmation(id), confirmation);
        Ok(())
    }

    /// The confirmations indexed in a cycle, in id order.
    fn cycle_confirmations(&mut self, cycle: CycleId) -> Vec<Confirmation> {
        let prefix = keys::cycle_confirmation_prefix(cycle);
        let mut found = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let batch = self.index_page(&prefix, &mut after);
            if batch.is_empty() {
                break;
            }
            for key in batch {
                let id = ConfirmationId(keys::trailing_u64(&key));
                let confirmation = self
                    .tables
                    .confirmations
                    .get_cloned(self.view, &keys::confirmation(id))
                    .expect("indexed confirmation exists");
                found.push(confirmation);
            }
        }
        found
    }

    fn matched_terms(&mut self, cycle: CycleId) -> Vec<TradeTerms> {
        self.cycle_confirmations(cycle)
            .into_iter()
            .filter(|confirmation| confirmation.status == ConfirmationStatus::Matched { cycle })
            .map(|confirmation| confirmation.submissions[0].terms.clone())
            .collect()
    }

    /// Nets `trades` into one position per member and asset, and the gross and net
    /// value per asset.
    fn net(&self, trades: &[TradeTerms]) -> (Vec<NetPosition>, Vec<AssetNetting>) {
        let mut flows: BTreeMap<(MemberId, AssetId), (u128, u128)> = BTreeMap::new();
        let mut gross: BTreeMap<AssetId, u128> = BTreeMap::new();
        let mut add = |member: MemberId, asset: AssetId, receive: u128, pay: u128| {
            let flow = flows.entry((member, asset)).or_insert((0, 0));
            flow.0 = flow
                .0
                .checked_add(receive)
                .expect("gross flows fit in u128");
            flow.1 = flow.1.checked_add(pay).expect("gross flows fit in u128");
        };
        for trade in trades {
            let value = trade_value(
                trade.quantity,
                trade.price,
                self.asset_scale(trade.pair.base),
            )
            .expect("checked when confirmed");
            let (base, quote) = (trade.pair.base, trade.pair.quote);
            add(trade.buyer, base, trade.quantity.0, 0);
            add(trade.seller, base, 0, trade.quantity.0);
            add(trade.seller, quote, value.0, 0);
            add(trade.buyer, quote, 0, value.0);
            for (asset, amount) in [(base, trade.quantity.0), (quote, value.0)] {
                let total = gross.entry(asset).or_insert(0);
                *total = total.checked_add(amount).expect("gross fits in u128");
            }
        }
        let mut net: BTreeMap<AssetId, u128> = BTreeMap::new();
        let mut positions = Vec::new();
        for ((member, asset), (receive, pay)) in flows {
            let (receive, pay) = if receive >= pay {
                (receive - pay, 0)
            } else {
                (0, pay - receive)
            };
            if receive == 0 && pay == 0 {
                continue;
            }
            *net.entry(asset).or_insert(0) += pay;
            positions.push(NetPosition {
                member,
                asset,
                receive: Amount(receive),
                pay: Amount(pay),
                covered: pay == 0,
                top_up: None,
            });
        }
        let netting = gross
            .into_iter()
            .map(|(asset, gross)| {
                let net = net.get(&asset).copied().unwrap_or(0);
                assert!(net <= gross, "netting never exceeds the gross");
                // Exact below 3.4e34 minor units; beyond, the scaled-down divisor
                // keeps it within one basis point.
                let saved = gross - net;
                let efficiency_bps = match saved.checked_mul(10_000) {
                    Some(scaled) => scaled.checked_div(gross).unwrap_or(0),
                    None => saved / (gross / 10_000),
                };
                let efficiency_bps = u32::try_from(efficiency_bps).expect("at most 10000");
                AssetNetting {
                    asset,
                    gross: Amount(gross),
                    net: Amount(net),
                    efficiency_bps,
                }
            })
            .collect();
        (positions, netting)
    }

    /// Locks every net payment the payer can cover now; returns the positions still
    /// short (member, asset, needed, available).
    fn lock_positions(&mut self, positions: &mut [NetPosition]) -> Vec<(usize, Amount)> {
        let mut short = Vec::new();
        for (index, position) in positions.iter_mut().enumerate() {
            if position.pay.is_zero() {
                continue;
            }
            let available = self.balance(position.member, position.asset).inventory;
            if available >= position.pay {
                self.lock(position.member, position.asset, position.pay)
                    .expect("available checked");
                position.covered = true;
            } else {
                position.covered = false;
                short.push((index, available));
            }
        }
        short
    }

    fn release_positions(&mut self, positions: &[NetPosition]) {
        for position in positions {
            if position.covered && !position.pay.is_zero() {
                self.unlock(position.member, position.asset, position.pay);
            }
        }
    }

    /// Cuts off the current cycle and opens the next (a `CloseCycle` transaction or a
    /// daily cut-off).
    pub(crate) fn close_current_cycle(&mut self) {
        let now = self.now_ms();
        let mut meta = self.meta();
        let cycle_id = meta.current_cycle;
        let next_id = CycleId(cycle_id.0.checked_add(1).expect("cycle counter overflow"));
        meta.current_cycle = next_id;
        self.tables.meta.put(keys::meta(), meta);
        self.store_cycle(Cycle {
            id: next_id,
            opened_at_ms: now,
            status: CycleStatus::Open,
            matched: 0,
            positions: Vec::new(),
            removed: Vec::new(),
            netting: Vec::new(),
            report: Vec::new(),
        });

        let mut cycle = self.cycle(cycle_id);
        assert_eq!(cycle.status, CycleStatus::Open);
        for mut confirmation in self.cycle_confirmations(cycle_id) {
            if let ConfirmationStatus::AwaitingPartner { .. } = confirmation.status {
                let first = &confirmation.submissions[0];
                let ref_key = keys::trade_ref(
                    confirmation.parties.0,
                    confirmation.parties.1,
                    &confirmation.trade_ref,
                );
                self.emit(Event::ConfirmationUnmatched {
                    confirmation: confirmation.id,
                    trade_ref: confirmation.trade_ref.clone(),
                    member: first.member,
                    cycle: cycle_id,
                });
                confirmation.status = ConfirmationStatus::Unmatched { cycle: cycle_id };
                self.tables.trade_refs.delete(ref_key);
                self.tables
                    .index
                    .delete(keys::cycle_confirmation(cycle_id, confirmation.id));
                self.tables
                    .confirmations
                    .put(keys::confirmation(confirmation.id), confirmation);
            }
        }
        let trades = self.matched_terms(cycle_id);
        assert_eq!(trades.len() as u64, cycle.matched);
        let (mut positions, netting) = self.net(&trades);
        let short = self.lock_positions(&mut positions);
        let deadline_ms = now.saturating_add(self.config.settlement.cycle_top_up_deadline_ms);
        let mut short_pairs = Vec::new();
        for (index, available) in short {
            let position = &positions[index];
            let top_up = self.raise_top_up(
                position.member,
                position.asset,
                position.pay,
                available,
                TopUpSubject::Settlement { cycle: cycle_id },
                deadline_ms,
            );
            short_pairs.push((position.member, position.asset));
            positions[index].top_up = Some(top_up);
        }
        cycle.positions = positions;
        cycle.netting = netting;
        cycle.status = CycleStatus::Closing {
            closed_at_ms: now,
            deadline_ms,
        };
        self.emit(Event::CycleClosed {
            cycle: cycle_id,
            matched: cycle.matched,
            short: short_pairs.clone(),
        });
        if short_pairs.is_empty() {
            self.settle_cycle(cycle);
        } else {
            self.store_cycle(cycle);
        }
    }

    /// A settlement top-up was cured: lock the payment; settle if it was the last.
    pub(crate) fn cover_position(
        &mut self,
        cycle_id: CycleId,
        member: MemberId,
        asset: AssetId,
        top_up: TopUpId,
    ) {
        let mut cycle = self.cycle(cycle_id);
        assert!(matches!(cycle.status, CycleStatus::Closing { .. }));
        let position = cycle
            .positions
            .iter_mut()
            .find(|position| position.member == member && position.asset == asset)
            .expect("a settlement top-up names a position of its cycle");
        assert_eq!(position.top_up, Some(top_up));
        assert!(!position.covered);
        let pay = position.pay;
        position.covered = true;
        self.lock(member, asset, pay)
            .expect("the cure checked the available balance");
        if cycle.positions.iter().all(|position| position.covered) {
            self.settle_cycle(cycle);
        } else {
            self.store_cycle(cycle);
        }
    }

    /// Settles a fully covered cycle: every payment leaves its lock, every receipt
    /// arrives, all in this step.
    fn settle_cycle(&mut self, mut cycle: Cycle) {
        assert!(cycle.positions.iter().all(|position| position.covered));
        let mut report = Vec::new();
        for position in &cycle.positions {
            if !position.pay.is_zero() {
                self.spend_locked(
                    position.member,
                    position.asset,
                    position.pay,
                    ChangeReason::Netting,
                );
            }
            if !position.receive.is_zero() {
                self.receive(
                    position.member,
                    position.asset,
                    position.receive,
                    ChangeReason::Netting,
                );
            }
            report.push(ReportEntry {
                member: position.member,
                asset: position.asset,
                account: Account::Inventory,
                reason: ChangeReason::Netting,
                increase: position.receive,
                decrease: position.pay,
            });
        }
        for mut confirmation in self.cycle_confirmations(cycle.id) {
            if confirmation.status == (ConfirmationStatus::Matched { cycle: cycle.id }) {
                confirmation.status = ConfirmationStatus::Settled { cycle: cycle.id };
                self.tables
                    .confirmations
                    .put(keys::confirmation(confirmation.id), confirmation);
            }
        }
        cycle.report = report;
        cycle.status = CycleStatus::Settled {
            settled_at_ms: self.now_ms(),
            height: self.ctx.height,
        };
        self.emit(Event::CycleSettled {
            cycle: cycle.id,
            matched: cycle.matched,
            netting: cycle.netting.clone(),
        });
        self.store_cycle(cycle);
    }

    /// Removes members still short in closing cycles past their deadline, re-nets, and
    /// settles what remains.
    pub(crate) fn process_cycle_deadlines(&mut self) {
        let now = self.now_ms();
        let closing =
            self.tables
                .index
                .scan_keys(self.view, &[keys::CLOSING_CYCLE], None, usize::MAX);
        for key in closing {
            let cycle_id = CycleId(keys::trailing_u64(&key));
            let cycle = self.cycle(cycle_id);
            let CycleStatus::Closing { deadline_ms, .. } = cycle.status else {
                panic!("cycle {cycle_id} indexed as closing is not closing");
            };
            if deadline_ms <= now {
                self.remove_short_and_settle(cycle);
            }
        }
    }

    fn remove_short_and_settle(&mut self, mut cycle: Cycle) {
        let mut at_deadline = true;
        let mut rounds = 0usize;
        loop {
            // Each short member once, with the first asset (in asset order) it is
            // short of as the reason.
            let mut short: BTreeMap<MemberId, AssetId> = BTreeMap::new();
            for position in cycle.positions.iter().filter(|position| !position.covered) {
                short.entry(position.member).or_insert(position.asset);
            }
            if short.is_empty() {
                break;
            }
            // Top-ups of this cycle still open (raised at cut-off) lapse now.
            for position in &cycle.positions {
                if let Some(top_up) = position.top_up {
                    self.withdraw_top_up(top_up);
                }
            }
            self.release_positions(&cycle.positions);
            for (member, asset) in &short {
                let reason = if at_deadline {
                    RemovalReason::ShortAtDeadline { asset: *asset }
                } else {
                    RemovalReason::ShortAfterRenetting { asset: *asset }
                };
                let mut count = 0u64;
                for mut confirmation in self.cycle_confirmations(cycle.id) {
                    if confirmation.status != (ConfirmationStatus::Matched { cycle: cycle.id }) {
                        continue;
                    }
                    let terms = &confirmation.submissions[0].terms;
                    if terms.buyer != *member && terms.seller != *member {
                        continue;
                    }
                    confirmation.status = ConfirmationStatus::Removed {
                        cycle: cycle.id,
                        reason,
                    };
                    self.tables
                        .confirmations
                        .put(keys::confirmation(confirmation.id), confirmation);
                    count += 1;
                }
                cycle.matched -= count;
                cycle.removed.push((*member, reason));
                self.emit(Event::CycleMemberRemoved {
                    cycle: cycle.id,
                    member: *member,
                    reason,
                    confirmations_removed: count,
                });
            }
            // Each round removes at least one member's trades for good, so the loop
            // ends within one round per member.
            rounds += 1;
            assert!(
                rounds <= self.config.member_count(),
                "re-netting did not converge"
            );
            let trades = self.matched_terms(cycle.id);
            assert_eq!(trades.len() as u64, cycle.matched);
            let (mut positions, netting) = self.net(&trades);
            self.lock_positions(&mut positions);
            cycle.positions = positions;
            cycle.netting = netting;
            at_deadline = false;
        }
        self.settle_cycle(cycle);
    }

    /// Closes the current cycle if a daily cut-off passed since it opened.
    pub(crate) fn process_cutoff(&mut self) {
        let Some(cutoff) = self.config.settlement.cutoff_time_of_day_ms else {
            return;
        };
        let current = self.meta().current_cycle;
        let opened_at_ms = self.cycle(current).opened_at_ms;
        if let Some(last) = last_cutoff_ms(self.now_ms(), cutoff) {
            if last > opened_at_ms {
                self.close_current_cycle();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_cutoff_is_the_latest_time_of_day_not_after_now() {
        let cutoff = 17 * 3_600_000;
        let day3 = 3 * DAY_MS;
        assert_eq!(last_cutoff_ms(day3 + cutoff, cutoff), Some(day3 + cutoff));
        assert_eq!(
            last_cutoff_ms(day3 + cutoff + 5, cutoff),
            Some(day3 + cutoff)
        );
        assert_eq!(
            last_cutoff_ms(day3 + cutoff - 1, cutoff),
            Some(day3 - DAY_MS + cutoff)
        );
        assert_eq!(last_cutoff_ms(5, cutoff), None);
    }
}
