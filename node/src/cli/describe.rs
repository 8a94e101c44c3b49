//! Receipts, events and records in words, with member names, asset symbols, decimal
//! amounts and ISO 8601 times. Pure functions of the genesis, the node's current
//! membership (when the node answered) and the record: members added by governance
//! after genesis are named from the membership, every other name from genesis.

use super::text::format_time_ms;
use seisan_types::clearing::{
    CancelReason, ConfirmationField, CycleStatus, Order, OrderKind, OrderStatus, Pair,
    RemovalReason, RfqStatus, Side, TimeInForce, TopUpStatus, TopUpSubject,
};
use seisan_types::ids::{AssetId, MemberId};
use seisan_types::membership::Membership;
use seisan_types::receipt::{Event, Receipt, TxOutcome};
use seisan_types::tx::AllocationDirection;
use seisan_types::{Amount, Genesis};

/// A member's name: from the node's current membership if it was fetched (it also
/// holds the members governance added after genesis), else from genesis, else
/// `member N`.
pub fn member_name(genesis: &Genesis, membership: Option<&Membership>, member: MemberId) -> String {
    if let Some(entry) = membership.and_then(|membership| membership.member(member)) {
        return entry.member.name.clone();
    }
    genesis
        .member(member)
        .map_or_else(|| format!("member {member}"), |spec| spec.name.clone())
}

/// Whether `member` has a name in the membership or genesis.
fn is_known(genesis: &Genesis, membership: Option<&Membership>, member: MemberId) -> bool {
    membership.is_some_and(|membership| membership.member(member).is_some())
        || genesis.member(member).is_some()
}

pub fn asset_symbol(genesis: &Genesis, asset: AssetId) -> String {
    genesis
        .asset(asset)
        .map_or_else(|| format!("asset {asset}"), |spec| spec.symbol.clone())
}

/// An amount as a decimal with its symbol: `1.5 ETH`.
pub fn amount(genesis: &Genesis, asset: AssetId, value: Amount) -> String {
    match genesis.asset(asset) {
        Some(spec) => format!("{} {}", spec.format_amount(value), spec.symbol),
        None => format!("{value} (minor units of asset {asset})"),
    }
}

/// Basis points as a percentage with two decimals (`10049` -> `100.49%`).
pub fn percent(bps: u64) -> String {
    format!("{}.{:02}%", bps / 100, bps % 100)
}

/// An amount as a bare decimal (for table cells under a symbol column).
pub fn decimal(genesis: &Genesis, asset: AssetId, value: Amount) -> String {
    genesis
        .asset(asset)
        .map_or_else(|| value.to_string(), |spec| spec.format_amount(value))
}

pub fn pair_name(genesis: &Genesis, pair: Pair) -> String {
    format!(
        "{}/{}",
        asset_symbol(genesis, pair.base),
        asset_symbol(genesis, pair.quote)
    )
}

/// A price (quote minor units per whole base unit) with the quote symbol.
pub fn price(genesis: &Genesis, pair: Pair, value: Amount) -> String {
    amount(genesis, pair.quote, value)
}

pub fn side(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

pub fn cancel_reason(reason: CancelReason) -> String {
    match reason {
        CancelReason::ByMember => "by the member".into(),
        CancelReason::ImmediateOrCancel => "immediate-or-cancel rest".into(),
        CancelReason::SelfMatch => "would have matched the member's own order".into(),
        CancelReason::Expired => "expired".into(),
        CancelReason::TopUpExpired { top_up } => format!("top-up request {top_up} expired"),
        CancelReason::QuoteUnavailable => "the quote was no longer live".into(),
        CancelReason::RequestFilled => "the asker accepted another quote".into(),
    }
}

pub fn order_status(status: &OrderStatus) -> String {
    match status {
        OrderStatus::AwaitingFunds { top_up } => format!("awaiting funds (top-up {top_up})"),
        OrderStatus::Live => "live".into(),
        OrderStatus::Filled => "filled".into(),
        OrderStatus::Cancelled { reason } => format!("cancelled: {}", cancel_reason(*reason)),
    }
}

pub fn order_kind(order: &Order) -> String {
    let kind = match order.kind {
        OrderKind::Limit => "limit".to_string(),
        OrderKind::Quote { rfq } => format!("quote for rfq {rfq}"),
        OrderKind::Accept { quote } => format!("accepts quote {quote}"),
    };
    match order.time_in_force {
        TimeInForce::GoodTillCancel => kind,
        TimeInForce::ImmediateOrCancel => format!("{kind}, ioc"),
    }
}

pub fn top_up_subject(subject: TopUpSubject) -> String {
    match subject {
        TopUpSubject::Order { order } => format!("order {order}"),
        TopUpSubject::Settlement { cycle } => format!("settlement of cycle {cycle}"),
    }
}

pub fn top_up_status(status: TopUpStatus) -> String {
    match status {
        TopUpStatus::Open => "open".into(),
        TopUpStatus::Cured { height } => format!("cured at height {height}"),
        TopUpStatus::Expired { height } => format!("expired at height {height}"),
        TopUpStatus::Withdrawn { height } => format!("withdrawn at height {height}"),
    }
}

pub fn rfq_status(status: RfqStatus) -> String {
    match status {
        RfqStatus::Open => "open".into(),
        RfqStatus::Filled { quote, trade } => format!("filled by quote {quote} (trade {trade})"),
    }
}

pub fn cycle_status(status: &CycleStatus) -> String {
    match status {
        CycleStatus::Open => "open".into(),
        CycleStatus::Closing {
            closed_at_ms,
            deadline_ms,
        } => format!(
            "closing since {}, top-ups due {}",
            format_time_ms(*closed_at_ms),
            format_time_ms(*deadline_ms)
        ),
        CycleStatus::Settled {
            settled_at_ms,
            height,
        } => format!(
            "settled {} at height {height}",
            format_time_ms(*settled_at_ms)
        ),
    }
}

fn removal_reason(genesis: &Genesis, reason: RemovalReason) -> String {
    match reason {
        RemovalReason::ShortAtDeadline { asset } => {
            format!("short of {} at the deadline", asset_symbol(genesis, asset))
        }
        RemovalReason::ShortAfterRenetting { asset } => {
            format!("short of {} after re-netting", asset_symbol(genesis, asset))
        }
    }
}

fn fields(fields: &[ConfirmationField]) -> String {
    fields
        .iter()
        .map(|field| match field {
            ConfirmationField::Buyer => "buyer",
            ConfirmationField::Seller => "seller",
            ConfirmationField::Pair => "pair",
            ConfirmationField::Quantity => "quantity",
            ConfirmationField::Price => "price",
            ConfirmationField::TradeTime => "trade time",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One event in words. `order_lookup` finds an order (to name the asset of a released
/// lock or the pair of a quote); it may always answer `None`. `membership` is the
/// node's current one, `None` when the node could not be asked.
pub fn event(
    genesis: &Genesis,
    membership: Option<&Membership>,
    event: &Event,
    order_lookup: &dyn Fn(u64) -> Option<Order>,
) -> String {
    let name = |member: MemberId| member_name(genesis, membership, member);
    match event {
        Event::OrderLive { order, member } => {
            format!("order {order} of {} is live (funds locked)", name(*member))
        }
        Event::OrderParked {
            order,
            member,
            top_up,
        } => format!(
            "order {order} of {} parked awaiting funds: top-up request {top_up}",
            name(*member)
        ),
        Event::OrderFilled { order, member } => {
            format!("order {order} of {} filled", name(*member))
        }
        Event::OrderCancelled {
            order,
            member,
            reason,
            released,
        } => {
            let released = match order_lookup(order.0) {
                Some(found) => amount(genesis, found.locked_asset(), *released),
                None => format!("{released} minor units"),
            };
            format!(
                "order {order} of {} cancelled ({}); released {released}",
                name(*member),
                cancel_reason(*reason)
            )
        }
        Event::Fill {
            trade,
            pair,
            buyer,
            seller,
            quantity,
            price: fill_price,
            value,
        } => format!(
            "fill: trade {trade}, {} buys {} from {} at {}, value {}",
            name(*buyer),
            amount(genesis, pair.base, *quantity),
            name(*seller),
            price(genesis, *pair, *fill_price),
            amount(genesis, pair.quote, *value)
        ),
        Event::TopUpRaised {
            top_up,
            member,
            asset,
            needed,
            shortfall,
            deadline_ms,
            subject,
        } => format!(
            "top-up request {top_up}: {} is short {} for {} (needs {}) until {}",
            name(*member),
            amount(genesis, *asset, *shortfall),
            top_up_subject(*subject),
            amount(genesis, *asset, *needed),
            format_time_ms(*deadline_ms)
        ),
        Event::TopUpCured {
            top_up,
            member,
            asset,
        } => format!(
            "top-up request {top_up} of {} cured ({} now covered)",
            name(*member),
            asset_symbol(genesis, *asset)
        ),
        Event::TopUpExpired {
            top_up,
            member,
            asset,
            subject,
        } => format!(
            "top-up request {top_up} of {} expired still short of {} ({})",
            name(*member),
            asset_symbol(genesis, *asset),
            top_up_subject(*subject)
        ),
        Event::Credited {
            member,
            asset,
            amount: credited,
            reason,
        } => format!(
            "credited {} to {} ({reason:?})",
            amount(genesis, *asset, *credited),
            name(*member)
        ),
        Event::Debited {
            member,
            asset,
            amount: debited,
            reason,
        } => format!(
            "debited {} from {} ({reason:?})",
            amount(genesis, *asset, *debited),
            name(*member)
        ),
        Event::Allocated {
            member,
            asset,
            customer,
            amount: allocated,
            direction,
        } => match direction {
            AllocationDirection::ToCustomer => format!(
                "{} allocated {} from inventory to customer {}",
                name(*member),
                amount(genesis, *asset, *allocated),
                customer.0
            ),
            AllocationDirection::ToInventory => format!(
                "{} moved {} from customer {} back to inventory",
                name(*member),
                amount(genesis, *asset, *allocated),
                customer.0
            ),
        },
        Event::QuoteRequested {
            rfq,
            asker,
            counterparties,
        } => format!(
            "request for quote {rfq} by {} to {}",
            name(*asker),
            counterparties
                .iter()
                .map(|member| name(*member))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Event::QuoteAnswered {
            rfq,
            quote,
            quoter,
            price: quoted,
            valid_until_ms,
        } => {
            let quoted = match order_lookup(quote.0) {
                Some(found) => price(genesis, found.pair, *quoted),
                None => format!("{quoted} (quote minor units)"),
            };
            format!(
                "quote {quote} on request {rfq} by {} at {quoted}, valid until {}",
                name(*quoter),
                format_time_ms(*valid_until_ms)
            )
        }
        Event::ConfirmationReceived {
            confirmation,
            member,
        } => format!(
            "confirmation {confirmation}: {}'s side received",
            name(*member)
        ),
        Event::ConfirmationMatched {
            confirmation,
            cycle,
        } => format!("confirmation {confirmation} matched; it settles in cycle {cycle}"),
        Event::ConfirmationMismatched {
            confirmation,
            trade_ref,
            parties,
            fields: differing,
        } => format!(
            "confirmation {confirmation} ({trade_ref}) between {} and {} mismatched on {}; sent back",
            name(parties.0),
            name(parties.1),
            fields(differing)
        ),
        Event::ConfirmationUnmatched {
            confirmation,
            trade_ref,
            member,
            cycle,
        } => format!(
            "confirmation {confirmation} ({trade_ref}) of {} had no partner by the cut-off of cycle {cycle}",
            name(*member)
        ),
        Event::CycleClosed {
            cycle,
            matched,
            short,
        } => {
            let short = if short.is_empty() {
                "nobody short".to_string()
            } else {
                short
                    .iter()
                    .map(|(member, asset)| {
                        format!("{} short of {}", name(*member), asset_symbol(genesis, *asset))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!("cycle {cycle} closed with {matched} matched confirmations; {short}")
        }
        Event::CycleMemberRemoved {
            cycle,
            member,
            reason,
            confirmations_removed,
        } => format!(
            "cycle {cycle}: {} removed ({}), {confirmations_removed} confirmations taken out",
            name(*member),
            removal_reason(genesis, *reason)
        ),
        Event::CycleSettled {
            cycle,
            matched,
            netting,
        } => {
            let figures = netting
                .iter()
                .map(|entry| {
                    format!(
                        "{} gross {} net {} ({}.{:02}% saved)",
                        asset_symbol(genesis, entry.asset),
                        decimal(genesis, entry.asset, entry.gross),
                        decimal(genesis, entry.asset, entry.net),
                        entry.efficiency_bps / 100,
                        entry.efficiency_bps % 100
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            format!("cycle {cycle} settled {matched} confirmations: {figures}")
        }
        // Event kinds added after this client was written are still shown.
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

/// A receipt's outcome in words: `applied` or `rejected: reason (code)`.
pub fn outcome(
    genesis: Option<&Genesis>,
    membership: Option<&Membership>,
    receipt: &Receipt,
) -> String {
    match &receipt.outcome {
        TxOutcome::Applied => "applied".into(),
        TxOutcome::Rejected { code, reason } => rejection(genesis, membership, code, reason),
    }
}

/// A rejection in words: the contracts' reason with member and asset ids replaced by
/// names and symbols, led by a plain name for the common codes.
pub fn rejection(
    genesis: Option<&Genesis>,
    membership: Option<&Membership>,
    code: &str,
    reason: &str,
) -> String {
    let reason = match genesis {
        Some(genesis) => name_ids(genesis, membership, reason),
        None => reason.to_string(),
    };
    let headline = match code {
        "insufficient_available" | "insufficient_customer" => "insufficient balance: ",
        "unknown_member" => "unknown member: ",
        "unknown_pair" => "unknown pair: ",
        _ => "",
    };
    format!("rejected: {headline}{reason} ({code})")
}

/// Replaces `member N` by the member's name and `asset N` by the asset's symbol.
fn name_ids(genesis: &Genesis, membership: Option<&Membership>, text: &str) -> String {
    let words: Vec<&str> = text.split(' ').collect();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut index = 0;
    while index < words.len() {
        let next = words.get(index + 1).map(|word| {
            let digits = word.trim_end_matches(|c: char| !c.is_ascii_digit());
            (digits.parse::<u32>().ok(), &word[digits.len()..])
        });
        match (words[index], next) {
            ("member", Some((Some(id), rest))) if is_known(genesis, membership, MemberId(id)) => {
                out.push(format!(
                    "{}{rest}",
                    member_name(genesis, membership, MemberId(id))
                ));
                index += 2;
            }
            ("asset", Some((Some(id), rest))) if genesis.asset(AssetId(id)).is_some() => {
                out.push(format!("{}{rest}", asset_symbol(genesis, AssetId(id))));
                index += 2;
            }
            (word, _) => {
                out.push(word.to_string());
                index += 1;
            }
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis_command::testnet_genesis;
    use seisan_types::clearing::OrderId;
    use seisan_types::membership::{MemberEntry, MemberStatus};

    #[test]
    fn a_member_added_after_genesis_is_named_from_the_membership() {
        let genesis = testnet_genesis(7101, 0);
        let mut membership = Membership::from_genesis(&genesis);
        let mut added = genesis.members[0].clone();
        added.name = "exchange-late".into();
        added.validator = false;
        membership.members.push(MemberEntry {
            member: added,
            status: MemberStatus::Active,
        });
        let late = MemberId(u32::try_from(genesis.members.len()).unwrap());
        assert!(
            genesis.member(late).is_none(),
            "the new id is beyond genesis"
        );
        let live = Event::OrderLive {
            order: OrderId(7),
            member: late,
        };
        let no_lookup = |_: u64| None;

        assert_eq!(
            event(&genesis, Some(&membership), &live, &no_lookup),
            "order 7 of exchange-late is live (funds locked)"
        );
        // Without the node's membership (node unreachable) genesis is all there is.
        assert_eq!(
            event(&genesis, None, &live, &no_lookup),
            format!("order 7 of member {late} is live (funds locked)")
        );
        // Genesis members keep their genesis names either way.
        assert_eq!(
            member_name(&genesis, Some(&membership), MemberId(0)),
            genesis.members[0].name
        );
        let reason = format!("member {late} is withdraw-only");
        assert_eq!(
            rejection(
                Some(&genesis),
                Some(&membership),
                "member_inactive",
                &reason
            ),
            "rejected: exchange-late is withdraw-only (member_inactive)"
        );
        assert_eq!(
            rejection(Some(&genesis), None, "member_inactive", &reason),
            format!("rejected: member {late} is withdraw-only (member_inactive)")
        );
    }
}
