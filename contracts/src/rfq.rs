//! Request for quote (S301-S303).
//!
//! - `RequestQuote`: an exchange asks named exchanges for a price to `side` a quantity;
//!   answers are taken until `answer_by_ms`. Nothing is locked.
//! - `AnswerQuote`: a named exchange gives a firm quote valid until `valid_until_ms`. A
//!   firm quote is an order of kind `quote` for the whole quantity on the other side:
//!   it locks like an order (or is parked with a top-up request), it is never in the
//!   public book, and it lapses at its validity time. One open quote per member per
//!   request.
//! - `AcceptQuote`: the asker takes a live quote before it lapses. The acceptance is an
//!   order of kind `accept` at the quote's price and quantity that locks like an order
//!   (or is parked with a top-up request, lapsing with the quote); when live it fills
//!   against that quote alone, as one fill with delivery versus payment. The request is
//!   then filled and its other quotes are cancelled (reason `request_filled`). If the
//!   quote is gone when a parked acceptance goes live, the acceptance is cancelled
//!   (reason `quote_unavailable`).

use crate::error::ContractError;
use crate::ledger::Ledger;
use seisan_types::clearing::{
    CancelReason, OrderId, OrderKind, OrderStatus, QuoteAnswer, QuoteRequest, Rfq, RfqId,
    RfqStatus, TimeInForce, MAX_RFQ_COUNTERPARTIES,
};
use seisan_types::receipt::Event;
use seisan_types::{MemberId, Role};

/// The most quotes (including cancelled ones) a request may collect.
pub const MAX_QUOTES_PER_RFQ: usize = 4 * MAX_RFQ_COUNTERPARTIES;

impl Ledger<'_> {
    /// Whether `member` may take on new business (not withdraw-only, not removed).
    pub(crate) fn is_active(&self, member: MemberId) -> bool {
        self.config.status(member) == Some(seisan_types::membership::MemberStatus::Active)
    }

    pub(crate) fn is_exchange(&self, member: MemberId) -> bool {
        self.config
            .member(member)
            .is_some_and(|spec| spec.role == Role::Exchange)
    }

    pub(crate) fn request_quote(
        &mut self,
        asker: MemberId,
        request: &QuoteRequest,
    ) -> Result<(), ContractError> {
        // The price is not known yet; check the terms at a price of one whole quote
        // unit per whole base unit only for pair and quantity.
        if !self
            .config
            .pair_ids()
            .contains(&(request.pair.base, request.pair.quote))
        {
            return Err(ContractError::UnknownPair { pair: request.pair });
        }
        if request.quantity.is_zero() {
            return Err(ContractError::ZeroAmount { what: "quantity" });
        }
        self.check_future(request.answer_by_ms)?;
        let parties = &request.counterparties;
        let bad = |reason: &str| ContractError::BadCounterparties {
            reason: reason.to_string(),
        };
        if parties.is_empty() || parties.len() > MAX_RFQ_COUNTERPARTIES {
            return Err(bad(&format!("name 1 to {MAX_RFQ_COUNTERPARTIES} members")));
        }
        for (index, party) in parties.iter().enumerate() {
            if *party == asker {
                return Err(bad("the asker cannot ask itself"));
            }
            if !self.is_exchange(*party) {
                return Err(bad(&format!("member {party} is not an exchange")));
            }
            if !self.is_active(*party) {
                return Err(ContractError::CounterpartyNotActive { member: *party });
            }
            if parties[..index].contains(party) {
                return Err(bad(&format!("member {party} is named twice")));
            }
        }
        let id = RfqId(self.next_id(|meta| &mut meta.next_rfq));
        self.emit(Event::QuoteRequested {
            rfq: id,
            asker,
            counterparties: parties.clone(),
        });
        let rfq = Rfq {
            id,
            asker,
            request: request.clone(),
            quotes: Vec::new(),
            pending_accept: None,
            status: RfqStatus::Open,
            requested_height: self.ctx.height,
        };
        self.store_rfq(rfq);
        Ok(())
    }

    pub(crate) fn answer_quote(
        &mut self,
        quoter: MemberId,
        answer: &QuoteAnswer,
    ) -> Result<(), ContractError> {
        let mut rfq = self
            .rfq(answer.rfq)
            .ok_or(ContractError::UnknownRfq { rfq: answer.rfq })?;
        if rfq.status != RfqStatus::Open {
            return Err(ContractError::RfqFilled { rfq: rfq.id });
        }
        if !rfq.request.counterparties.contains(&quoter) {
            return Err(ContractError::NotACounterparty {
                rfq: rfq.id,
                member: quoter,
            });
        }
        if self.now_ms() >= rfq.request.answer_by_ms {
            return Err(ContractError::AnswerTooLate {
                rfq: rfq.id,
                answer_by_ms: rfq.request.answer_by_ms,
                now_ms: self.now_ms(),
            });
        }
        self.check_terms(rfq.request.pair, rfq.request.quantity, answer.price)?;
        self.check_future(answer.valid_until_ms)?;
        for quote in rfq.quotes.clone() {
            let quote = self.order(quote).expect("rfq lists existing quotes");
            if quote.member == quoter && quote.status.is_open() {
                return Err(ContractError::AlreadyQuoted {
                    rfq: rfq.id,
                    member: quoter,
                });
            }
        }
        if rfq.quotes.len() >= MAX_QUOTES_PER_RFQ {
            return Err(ContractError::TooManyQuotes {
                rfq: rfq.id,
                limit: MAX_QUOTES_PER_RFQ,
            });
        }
        let order = self.new_order(
            quoter,
            rfq.request.pair,
            rfq.request.side.opposite(),
            rfq.request.quantity,
            answer.price,
            TimeInForce::GoodTillCancel,
            Some(answer.valid_until_ms),
            OrderKind::Quote { rfq: rfq.id },
        );
        rfq.quotes.push(order.id);
        self.emit(Event::QuoteAnswered {
            rfq: rfq.id,
            quote: order.id,
            quoter,
            price: answer.price,
            valid_until_ms: answer.valid_until_ms,
        });
        self.store_rfq(rfq);
        self.open_order(order);
        Ok(())
    }

    pub(crate) fn accept_quote(
        &mut self,
        asker: MemberId,
        quote_id: OrderId,
    ) -> Result<(), ContractError> {
        let quote = self
            .order(quote_id)
            .ok_or(ContractError::UnknownOrder { order: quote_id })?;
        let OrderKind::Quote { rfq: rfq_id } = quote.kind else {
            return Err(ContractError::NotAQuote { order: quote_id });
        };
        let mut rfq = self.rfq(rfq_id).expect("a quote's request exists");
        if rfq.asker != asker {
            return Err(ContractError::NotTheAsker {
                rfq: rfq_id,
                member: asker,
            });
        }
        if rfq.status != RfqStatus::Open {
            return Err(ContractError::RfqFilled { rfq: rfq_id });
        }
        if let Some(order) = rfq.pending_accept {
            return Err(ContractError::AcceptancePending { rfq: rfq_id, order });
        }
        let lapsed = quote.expires_at_ms.is_some_and(|at| at <= self.now_ms());
        if quote.status != OrderStatus::Live || lapsed {
            return Err(ContractError::QuoteNotLive { quote: quote_id });
        }
        let order = self.new_order(
            asker,
            quote.pair,
            rfq.request.side,
            quote.remaining,
            quote.limit_price,
            TimeInForce::ImmediateOrCancel,
            quote.expires_at_ms,
            OrderKind::Accept { quote: quote_id },
        );
        rfq.pending_accept = Some(order.id);
        self.store_rfq(rfq);
        self.open_order(order);
        Ok(())
    }

    /// A live acceptance fills against its quote, or is cancelled if the quote is gone.
    pub(crate) fn fill_acceptance(
        &mut self,
        mut accept: seisan_types::clearing::Order,
        quote_id: OrderId,
    ) {
        let mut quote = self
            .order(quote_id)
            .expect("acceptance names an existing quote");
        let OrderKind::Quote { rfq: rfq_id } = quote.kind else {
            panic!("acceptance {} names non-quote {quote_id}", accept.id);
        };
        let lapsed = quote.expires_at_ms.is_some_and(|at| at <= self.now_ms());
        if quote.status != OrderStatus::Live || lapsed || quote.remaining != accept.remaining {
            self.close_order(
                accept,
                OrderStatus::Cancelled {
                    reason: CancelReason::QuoteUnavailable,
                },
            );
            return;
        }
        let quantity = accept.remaining;
        let price = quote.limit_price;
        let trade = self.fill(&mut accept, &mut quote, quantity, price);
        self.close_order(quote, OrderStatus::Filled);
        // Closing the acceptance clears the request's pending acceptance.
        self.close_order(accept, OrderStatus::Filled);
        let mut rfq = self.rfq(rfq_id).expect("a quote's request exists");
        rfq.status = RfqStatus::Filled {
            quote: quote_id,
            trade,
        };
        let others = rfq.quotes.clone();
        self.store_rfq(rfq);
        for other in others {
            let order = self.order(other).expect("rfq lists existing quotes");
            if order.status.is_open() {
                self.close_order(
                    order,
                    OrderStatus::Cancelled {
                        reason: CancelReason::RequestFilled,
                    },
                );
            }
        }
    }

    /// Forgets a request's pending acceptance when that acceptance closes.
    pub(crate) fn clear_pending_accept(&mut self, quote_id: OrderId, accept: OrderId) {
        let quote = self
            .order(quote_id)
            .expect("acceptance names an existing quote");
        let OrderKind::Quote { rfq: rfq_id } = quote.kind else {
            panic!("acceptance {accept} names non-quote {quote_id}");
        };
        let mut rfq = self.rfq(rfq_id).expect("a quote's request exists");
        if rfq.pending_accept == Some(accept) {
            rfq.pending_accept = None;
            self.store_rfq(rfq);
        }
    }
}
