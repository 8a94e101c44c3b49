//! Orders: acceptance with locking (S230, S321-S323), price-time matching in block
//! order (S240), and delivery-versus-payment settlement of every fill in the same
//! transition (S250-S290, BIS model 1).
//!
//! Rules:
//! - On acceptance an order locks what it may need: a sell its whole quantity of the
//!   base asset, a buy `trade_value(quantity, limit_price)` of the quote asset. If the
//!   member's available inventory is short, the order is parked with a top-up request
//!   instead (see [`crate::topup`]).
//! - A live limit order first takes resting orders of the other side, best price first
//!   and, within a price, the earliest to go live first, while their price crosses its
//!   limit; each fill is at the resting order's price. What is left rests in the book
//!   (good-till-cancel) or is cancelled (immediate-or-cancel).
//! - Self-match prevention: when the best crossing resting order belongs to the same
//!   member, the incoming order's rest is cancelled (reason `self_match`); fills made
//!   before that stand, and the resting order is untouched. So the book never crosses.
//! - A fill moves `quantity` of the base asset from the seller's lock to the buyer's
//!   inventory and its value in the quote asset from the buyer's lock to the seller's
//!   inventory: the seller receives exactly what the buyer pays. Each order's lock
//!   drops by exactly what it gave; when an order closes, whatever it still holds
//!   (price improvement and rounding) goes back to the member's inventory.
//! - The value rule (one rule for every fill, see [`fill_value`]): a buy order pays, over
//!   all its fills so far, the exact value of those fills (the sum of
//!   `quantity * price / 10^base_scale`) rounded down to a quote minor unit. So each
//!   fill costs what brings the order's running total to that figure: the buy order
//!   carries the fraction of a minor unit it has not been charged (its *value
//!   remainder*, kept in state while the order is open) into its next fill. An order
//!   filled at once pays `floor(quantity * price / 10^base_scale)`; how an order is
//!   split into fills does not change what it pays in total (0.3 BTC at 99, 100 and
//!   101 yen is 29 + 30 + 31 = 90 yen, exactly 90, where rounding each fill down would
//!   give 89); each fill's value is within one minor unit of its exact value; and the
//!   remainder is dropped when the order closes, so the buyer never pays more than the
//!   exact value. Sell orders carry nothing: the seller of a fill receives what that
//!   fill's buy order pays for it. Why the buyer's order: it is the payer, its lock
//!   is in the quote asset, and one order's total must not depend on how the book
//!   happened to split it.
//! - An order lapses at its expiry time: it is never matched in a block whose time is
//!   at or after it, and it is cancelled at the end of that block.

use crate::error::ContractError;
use crate::keys;
use crate::ledger::Ledger;
use seisan_types::clearing::{
    trade_value, CancelReason, ChangeReason, Order, OrderId, OrderKind, OrderRequest, OrderStatus,
    Pair, Side, TimeInForce, Trade, TradeId,
};
use seisan_types::receipt::Event;
use seisan_types::{Amount, MemberId};

/// The value of one fill of a buy order under the value rule (see the module docs),
/// and the buy order's value remainder after it.
///
/// `remainder` is what the order's earlier fills were charged less than their exact
/// value, in units of `1 / 10^base_scale` quote minor units (so it is below
/// `10^base_scale`; zero before the first fill). The fill of `quantity` base minor units
/// at `price` (quote minor units per whole base unit) costs
/// `floor((remainder + quantity * price) / 10^base_scale)` and leaves
/// `(remainder + quantity * price) mod 10^base_scale`. With a zero remainder this is
/// [`trade_value`]. `None` if the arithmetic overflows.
pub fn fill_value(
    remainder: Amount,
    quantity: Amount,
    price: Amount,
    base_scale: u32,
) -> Option<(Amount, Amount)> {
    let divisor = 10u128.checked_pow(base_scale)?;
    assert!(
        remainder.0 < divisor,
        "a value remainder is below one minor unit"
    );
    let exact = quantity.0.checked_mul(price.0)?.checked_add(remainder.0)?;
    Some((Amount(exact / divisor), Amount(exact % divisor)))
}

/// The most resting orders one incoming order may take or pass over in one go (a
/// bound on work per transaction; the rest of an order that reaches it rests or is
/// cancelled as if the book had ended).
pub const MAX_FILLS_PER_ORDER: usize = 10_000;

impl Ledger<'_> {
    /// Checks a pair, quantity and price, and returns the value of the quantity at the
    /// price (which must be at least one quote minor unit).
    pub(crate) fn check_terms(
        &self,
        pair: Pair,
        quantity: Amount,
        price: Amount,
    ) -> Result<Amount, ContractError> {
        if !self.config.pair_ids().contains(&(pair.base, pair.quote)) {
            return Err(ContractError::UnknownPair { pair });
        }
        if quantity.is_zero() {
            return Err(ContractError::ZeroAmount { what: "quantity" });
        }
        if price.is_zero() {
            return Err(ContractError::ZeroAmount { what: "price" });
        }
        let value = trade_value(quantity, price, self.asset_scale(pair.base))
            .ok_or(ContractError::ValueOverflow { quantity, price })?;
        if value.is_zero() {
            return Err(ContractError::ValueBelowMinorUnit { quantity, price });
        }
        Ok(value)
    }

    pub(crate) fn check_future(&self, time_ms: u64) -> Result<(), ContractError> {
        if time_ms <= self.now_ms() {
            return Err(ContractError::TimeNotInFuture {
                time_ms,
                now_ms: self.now_ms(),
            });
        }
        Ok(())
    }

    /// What an open order must hold locked to cover its remaining quantity: a sell its
    /// remaining quantity; a buy the most its remaining fills can cost under the value
    /// rule, which is the value of its whole remaining quantity at its limit price as
    /// one more fill (with its value remainder).
    pub(crate) fn required_lock(&mut self, order: &Order) -> Amount {
        match order.side {
            Side::Sell => order.remaining,
            Side::Buy => {
                let remainder = self.value_remainder(order);
                fill_value(
                    remainder,
                    order.remaining,
                    order.limit_price,
                    self.asset_scale(order.pair.base),
                )
                .expect("checked at acceptance: a smaller quantity cannot overflow")
                .0
            }
        }
    }

    /// An open order's value remainder: zero for a sell and for a buy that has not
    /// filled yet (so those cost no state read).
    pub(crate) fn value_remainder(&mut self, order: &Order) -> Amount {
        if order.side == Side::Sell || order.remaining == order.quantity {
            return Amount::ZERO;
        }
        self.tables
            .value_remainders
            .get_cloned(self.view, &keys::value_remainder(order.id))
            .unwrap_or(Amount::ZERO)
    }

    /// Replaces a buy order's value remainder `old` with `new`; a zero remainder is
    /// not stored.
    fn replace_value_remainder(&mut self, order: OrderId, old: Amount, new: Amount) {
        if !new.is_zero() {
            self.tables
                .value_remainders
                .put(keys::value_remainder(order), new);
        } else if !old.is_zero() {
            self.tables
                .value_remainders
                .delete(keys::value_remainder(order));
        }
    }

    pub(crate) fn place_limit_order(
        &mut self,
        member: MemberId,
        request: &OrderRequest,
    ) -> Result<(), ContractError> {
        self.check_terms(request.pair, request.quantity, request.limit_price)?;
        if let Some(expires_at_ms) = request.expires_at_ms {
            self.check_future(expires_at_ms)?;
        }
        let order = self.new_order(
            member,
            request.pair,
            request.side,
            request.quantity,
            request.limit_price,
            request.time_in_force,
            request.expires_at_ms,
            OrderKind::Limit,
        );
        self.open_order(order);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_order(
        &mut self,
        member: MemberId,
        pair: Pair,
        side: Side,
        quantity: Amount,
        limit_price: Amount,
        time_in_force: TimeInForce,
        expires_at_ms: Option<u64>,
        kind: OrderKind,
    ) -> Order {
        let id = OrderId(self.next_id(|meta| &mut meta.next_order));
        Order {
            id,
            member,
            pair,
            side,
            quantity,
            remaining: quantity,
            limit_price,
            time_in_force,
            expires_at_ms,
            kind,
            status: OrderStatus::Live,
            locked: Amount::ZERO,
            book_sequence: 0,
            placed_height: self.ctx.height,
            placed_at_ms: self.now_ms(),
        }
    }

    /// Indexes a new order and either locks its funds and makes it live, or parks it
    /// with a top-up request for the shortfall.
    pub(crate) fn open_order(&mut self, mut order: Order) {
        assert!(order.locked.is_zero());
        assert_eq!(order.remaining, order.quantity);
        self.tables
            .index
            .put(keys::member_order(order.member, order.id), ());
        if let Some(expires_at_ms) = order.expires_at_ms {
            self.tables
                .index
                .put(keys::order_expiry(expires_at_ms, order.id), ());
        }
        let asset = order.locked_asset();
        let needed = self.required_lock(&order);
        let available = self.balance(order.member, asset).inventory;
        if available >= needed {
            self.lock(order.member, asset, needed)
                .expect("available checked");
            order.locked = needed;
            order.status = OrderStatus::Live;
            self.go_live(order);
        } else {
            let deadline_ms = self
                .now_ms()
                .saturating_add(self.config.settlement.order_top_up_deadline_ms);
            let top_up = self.raise_top_up(
                order.member,
                asset,
                needed,
                available,
                seisan_types::clearing::TopUpSubject::Order { order: order.id },
                deadline_ms,
            );
            order.status = OrderStatus::AwaitingFunds { top_up };
            self.emit(Event::OrderParked {
                order: order.id,
                member: order.member,
                top_up,
            });
            self.store_order(order);
        }
    }

    /// A parked order whose top-up was covered: lock and go live.
    pub(crate) fn activate_parked(&mut self, mut order: Order) {
        assert!(matches!(order.status, OrderStatus::AwaitingFunds { .. }));
        if order.expires_at_ms.is_some_and(|at| at <= self.now_ms()) {
            self.close_order(
                order,
                OrderStatus::Cancelled {
                    reason: CancelReason::Expired,
                },
            );
            return;
        }
        let needed = self.required_lock(&order);
        self.lock(order.member, order.locked_asset(), needed)
            .expect("cure checked the available balance");
        order.locked = needed;
        order.status = OrderStatus::Live;
        self.go_live(order);
    }

    /// An order whose funds are locked: match it (limit, acceptance) or hold it (quote).
    fn go_live(&mut self, order: Order) {
        assert_eq!(order.status, OrderStatus::Live);
        assert!(order.locked >= self.required_lock(&order));
        self.emit(Event::OrderLive {
            order: order.id,
            member: order.member,
        });
        match order.kind {
            OrderKind::Limit => self.match_limit(order),
            OrderKind::Quote { .. } => self.store_order(order),
            OrderKind::Accept { quote } => self.fill_acceptance(order, quote),
        }
    }

    fn crosses(side: Side, limit: Amount, resting_price: Amount) -> bool {
        match side {
            Side::Buy => resting_price <= limit,
            Side::Sell => resting_price >= limit,
        }
    }

    fn match_limit(&mut self, mut order: Order) {
        let opposite = keys::book_prefix(order.pair, order.side.opposite());
        let mut self_match = false;
        let mut steps = 0usize;
        while !order.remaining.is_zero() && steps < MAX_FILLS_PER_ORDER {
            steps += 1;
            let Some((key, resting_id)) = self.book_best(&opposite) else {
                break;
            };
            let mut resting = self
                .order(resting_id)
                .unwrap_or_else(|| panic!("book entry for missing order {resting_id}"));
            assert_eq!(resting.status, OrderStatus::Live);
            assert_eq!(
                key,
                keys::book(
                    resting.pair,
                    resting.side,
                    resting.limit_price,
                    resting.book_sequence
                )
            );
            if resting.expires_at_ms.is_some_and(|at| at <= self.now_ms()) {
                self.close_order(
                    resting,
                    OrderStatus::Cancelled {
                        reason: CancelReason::Expired,
                    },
                );
                continue;
            }
            if !Self::crosses(order.side, order.limit_price, resting.limit_price) {
                break;
            }
            if resting.member == order.member {
                self_match = true;
                break;
            }
            let quantity = order.remaining.min(resting.remaining);
            let price = resting.limit_price;
            self.fill(&mut order, &mut resting, quantity, price);
            if resting.remaining.is_zero() {
                self.close_order(resting, OrderStatus::Filled);
            } else {
                self.store_order(resting);
            }
        }
        if order.remaining.is_zero() {
            self.close_order(order, OrderStatus::Filled);
        } else if self_match {
            self.close_order(
                order,
                OrderStatus::Cancelled {
                    reason: CancelReason::SelfMatch,
                },
            );
        } else if order.time_in_force == TimeInForce::ImmediateOrCancel {
            self.close_order(
                order,
                OrderStatus::Cancelled {
                    reason: CancelReason::ImmediateOrCancel,
                },
            );
        } else {
            let sequence = self.next_id(|meta| &mut meta.next_book_sequence);
            order.book_sequence = sequence;
            let prefix = keys::book_prefix(order.pair, order.side);
            let key = keys::book(order.pair, order.side, order.limit_price, sequence);
            self.book_insert(&prefix, key, order.id);
            self.store_order(order);
        }
    }

    /// Settles one fill between an incoming order and the order it takes, both legs at
    /// once, at `price`. Updates both orders in place (the caller stores or closes them).
    pub(crate) fn fill(
        &mut self,
        taker: &mut Order,
        maker: &mut Order,
        quantity: Amount,
        price: Amount,
    ) -> TradeId {
        assert_eq!(taker.pair, maker.pair);
        assert_eq!(taker.side, maker.side.opposite());
        assert_ne!(taker.member, maker.member, "self-match reached a fill");
        assert!(!quantity.is_zero());
        assert!(quantity <= taker.remaining && quantity <= maker.remaining);
        let pair = taker.pair;
        let taker_side = taker.side;
        let (buy, sell) = match taker.side {
            Side::Buy => (taker, maker),
            Side::Sell => (maker, taker),
        };
        assert!(price <= buy.limit_price);
        assert!(price >= sell.limit_price);
        let old_remainder = self.value_remainder(buy);
        let (value, remainder) =
            fill_value(old_remainder, quantity, price, self.asset_scale(pair.base))
                .expect("bounded by the buy order's checked value");
        self.replace_value_remainder(buy.id, old_remainder, remainder);
        // Buyer: pays `value` from its lock, receives `quantity`.
        buy.locked = buy
            .locked
            .checked_sub(value)
            .expect("buy lock covers its fills");
        buy.remaining = buy.remaining.checked_sub(quantity).expect("checked above");
        self.spend_locked(buy.member, pair.quote, value, ChangeReason::Fill);
        self.receive(buy.member, pair.base, quantity, ChangeReason::Fill);
        // Seller: delivers `quantity` from its lock, receives `value`.
        sell.locked = sell
            .locked
            .checked_sub(quantity)
            .expect("sell lock covers its fills");
        sell.remaining = sell.remaining.checked_sub(quantity).expect("checked above");
        self.spend_locked(sell.member, pair.base, quantity, ChangeReason::Fill);
        self.receive(sell.member, pair.quote, value, ChangeReason::Fill);
        // The value rule keeps every lock sufficient for what is left: the remaining
        // quantity at the limit, with the new remainder, costs at most what the old
        // requirement minus this fill's value was.
        assert!(buy.locked >= self.required_lock(buy));
        assert!(sell.locked >= self.required_lock(sell));
        let id = self.next_trade_id();
        let trade = Trade {
            id,
            pair,
            buyer: buy.member,
            seller: sell.member,
            buy_order: buy.id,
            sell_order: sell.id,
            quantity,
            price,
            value,
            taker_side,
            height: self.ctx.height,
            timestamp_ms: self.now_ms(),
        };
        self.emit(Event::Fill {
            trade: id,
            pair,
            buyer: trade.buyer,
            seller: trade.seller,
            quantity,
            price,
            value,
        });
        self.store_trade(trade);
        id
    }

    /// Ends an open order: releases what it holds, takes it out of the book and the
    /// indexes, withdraws its top-up request if parked, and stores its final status.
    pub(crate) fn close_order(&mut self, mut order: Order, status: OrderStatus) {
        assert!(order.status.is_open(), "closing order {} twice", order.id);
        assert!(!status.is_open());
        let released = order.locked;
        // The fraction of a minor unit the buyer was not charged is dropped with the
        // order: a buy order never pays more than the exact value of its fills.
        let remainder = self.value_remainder(&order);
        self.replace_value_remainder(order.id, remainder, Amount::ZERO);
        if order.status == OrderStatus::Live {
            self.unlock(order.member, order.locked_asset(), released);
            if order.kind == OrderKind::Limit && order.book_sequence != 0 {
                let prefix = keys::book_prefix(order.pair, order.side);
                let key = keys::book(
                    order.pair,
                    order.side,
                    order.limit_price,
                    order.book_sequence,
                );
                self.book_remove(&prefix, key);
            }
        } else {
            assert!(released.is_zero());
        }
        if let OrderStatus::AwaitingFunds { top_up } = order.status {
            if !matches!(
                status,
                OrderStatus::Cancelled {
                    reason: CancelReason::TopUpExpired { .. }
                }
            ) {
                self.withdraw_top_up(top_up);
            }
        }
        if let OrderKind::Accept { quote } = order.kind {
            self.clear_pending_accept(quote, order.id);
        }
        self.tables
            .index
            .delete(keys::member_order(order.member, order.id));
        if let Some(expires_at_ms) = order.expires_at_ms {
            self.tables
                .index
                .delete(keys::order_expiry(expires_at_ms, order.id));
        }
        order.locked = Amount::ZERO;
        order.status = status;
        match status {
            OrderStatus::Filled => self.emit(Event::OrderFilled {
                order: order.id,
                member: order.member,
            }),
            OrderStatus::Cancelled { reason } => self.emit(Event::OrderCancelled {
                order: order.id,
                member: order.member,
                reason,
                released,
            }),
            _ => unreachable!("asserted closed"),
        }
        self.store_order(order);
    }

    pub(crate) fn cancel_order(
        &mut self,
        member: MemberId,
        id: OrderId,
    ) -> Result<(), ContractError> {
        let order = self
            .order(id)
            .ok_or(ContractError::UnknownOrder { order: id })?;
        if order.member != member {
            return Err(ContractError::NotOrderOwner { order: id, member });
        }
        if !order.status.is_open() {
            return Err(ContractError::OrderNotOpen { order: id });
        }
        self.close_order(
            order,
            OrderStatus::Cancelled {
                reason: CancelReason::ByMember,
            },
        );
        Ok(())
    }

    /// Cancels every open order whose expiry time is at or before the block time.
    pub(crate) fn expire_orders(&mut self) {
        for id in self.due(&[keys::ORDER_EXPIRY], self.now_ms()) {
            let id = OrderId(id);
            let order = self
                .order(id)
                .unwrap_or_else(|| panic!("expiry of missing order {id}"));
            assert!(
                order.status.is_open(),
                "closed order {id} left in the expiry index"
            );
            self.close_order(
                order,
                OrderStatus::Cancelled {
                    reason: CancelReason::Expired,
                },
            );
        }
    }
}
