//! Top-up requests: the patent's additional trust requests (S307-S312 for fiat,
//! S326-S329 for coins).
//!
//! An order, quote or acceptance the member's available inventory cannot cover is not
//! rejected: it is parked and a request records (member, asset, needed, shortfall,
//! deadline). A member short in a closing settlement cycle gets one per short asset.
//!
//! - Cure: whenever a step (a transaction, a deposit, the end-of-block work) raises a
//!   member's available balance in an asset, the member's open requests in that asset
//!   are checked in id order, and each one the available balance now covers is cured
//!   in that same step: a parked order locks and goes live (and matches), a settlement
//!   obligation locks (and a fully covered cycle settles at once).
//! - Expiry: at the end of the first block whose time is at or after the deadline, an
//!   open request expires; a parked order is cancelled with reason `top_up_expired`,
//!   and a settlement obligation is left to the cycle's deadline processing.
//! - Withdrawal: a parked order the member cancels (or that lapses) withdraws its
//!   request.

use crate::keys;
use crate::ledger::Ledger;
use seisan_types::clearing::{
    CancelReason, OrderStatus, TopUpId, TopUpRequest, TopUpStatus, TopUpSubject,
};
use seisan_types::receipt::Event;
use seisan_types::{Amount, AssetId, MemberId};

impl Ledger<'_> {
    pub(crate) fn raise_top_up(
        &mut self,
        member: MemberId,
        asset: AssetId,
        needed: Amount,
        available: Amount,
        subject: TopUpSubject,
        deadline_ms: u64,
    ) -> TopUpId {
        assert!(available < needed, "a covered need raises no top-up");
        let id = TopUpId(self.next_id(|meta| &mut meta.next_top_up));
        let shortfall = needed.checked_sub(available).expect("asserted above");
        self.tables
            .index
            .put(keys::open_top_up(member, asset, id), ());
        self.tables
            .index
            .put(keys::top_up_deadline(deadline_ms, id), ());
        self.store_top_up(TopUpRequest {
            id,
            member,
            asset,
            needed,
            shortfall,
            subject,
            deadline_ms,
            raised_height: self.ctx.height,
            status: TopUpStatus::Open,
        });
        self.emit(Event::TopUpRaised {
            top_up: id,
            member,
            asset,
            needed,
            shortfall,
            deadline_ms,
            subject,
        });
        id
    }

    /// Closes an open request's indexes and gives it its final status.
    fn end_top_up(&mut self, mut top_up: TopUpRequest, status: TopUpStatus) -> TopUpRequest {
        assert_eq!(top_up.status, TopUpStatus::Open);
        self.tables
            .index
            .delete(keys::open_top_up(top_up.member, top_up.asset, top_up.id));
        self.tables
            .index
            .delete(keys::top_up_deadline(top_up.deadline_ms, top_up.id));
        top_up.status = status;
        self.store_top_up(top_up.clone());
        top_up
    }

    pub(crate) fn withdraw_top_up(&mut self, id: TopUpId) {
        let top_up = self.top_up(id);
        if top_up.status == TopUpStatus::Open {
            let height = self.ctx.height;
            self.end_top_up(top_up, TopUpStatus::Withdrawn { height });
        }
    }

    /// Cures request `id` if the member's available balance covers it now.
    pub(crate) fn try_cure(&mut self, id: TopUpId) {
        let top_up = self.top_up(id);
        if top_up.status != TopUpStatus::Open {
            return;
        }
        let available = self.balance(top_up.member, top_up.asset).inventory;
        if available < top_up.needed {
            return;
        }
        let height = self.ctx.height;
        let top_up = self.end_top_up(top_up, TopUpStatus::Cured { height });
        self.emit(Event::TopUpCured {
            top_up: id,
            member: top_up.member,
            asset: top_up.asset,
        });
        match top_up.subject {
            TopUpSubject::Order { order } => {
                let order = self
                    .order(order)
                    .unwrap_or_else(|| panic!("top-up {id} for missing order {order}"));
                assert_eq!(order.status, OrderStatus::AwaitingFunds { top_up: id });
                assert_eq!(self.required_lock(&order), top_up.needed);
                self.activate_parked(order);
            }
            TopUpSubject::Settlement { cycle } => {
                self.cover_position(cycle, top_up.member, top_up.asset, id);
            }
        }
    }

    /// Expires every open request whose deadline is at or before the block time.
    pub(crate) fn expire_top_ups(&mut self) {
        for id in self.due(&[keys::TOP_UP_DEADLINE], self.now_ms()) {
            let id = TopUpId(id);
            let top_up = self.top_up(id);
            let height = self.ctx.height;
            let top_up = self.end_top_up(top_up, TopUpStatus::Expired { height });
            self.emit(Event::TopUpExpired {
                top_up: id,
                member: top_up.member,
                asset: top_up.asset,
                subject: top_up.subject,
            });
            if let TopUpSubject::Order { order } = top_up.subject {
                let order = self
                    .order(order)
                    .unwrap_or_else(|| panic!("top-up {id} for missing order {order}"));
                assert_eq!(order.status, OrderStatus::AwaitingFunds { top_up: id });
                self.close_order(
                    order,
                    OrderStatus::Cancelled {
                        reason: CancelReason::TopUpExpired { top_up: id },
                    },
                );
            }
        }
    }
}
