//! The client commands: parse and check the arguments against genesis (refusing bad
//! input before anything is signed), call the node, print.

use super::describe::{self, amount, decimal, member_name, pair_name};
use super::proof::verify_balance_proof;
use super::session::Session;
use super::text::{format_time_ms, now_ms, parse_agreed_time, parse_time, Align, Table};
use super::{
    AllocateArgs, ClientCommand, ConfirmArgs, CycleAction, OrderAction, PlaceArgs, QuoteAction,
    SubmitOptions,
};
use anyhow::{anyhow, bail, Context};
use seisan_api::v1;
use seisan_types::clearing::{
    Cycle, Order, OrderId, OrderRequest, Pair, QuoteAnswer, QuoteRequest, Rfq, RfqId, Side,
    TimeInForce, TopUpRequest, Trade, TradeTerms,
};
use seisan_types::hash::Hash;
use seisan_types::ids::AssetId;
use seisan_types::membership::Membership;
use seisan_types::tx::{Allocation, AllocationDirection, CustomerId, MAX_ALLOCATIONS_PER_BATCH};
use seisan_types::{Amount, Genesis, TxBody};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::io::{BufRead, Write};

/// The most items a list command fetches (pages of [`PAGE`]).
const MAX_LIST_ITEMS: usize = 100_000;
/// The node's largest page.
const PAGE: usize = 1000;

pub fn run(command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Order(command) => {
            let mut session = Session::open(&command.options.client)?;
            let body = match command.action {
                OrderAction::Buy(args) => place_order(&mut session, Side::Buy, &args)?,
                OrderAction::Sell(args) => place_order(&mut session, Side::Sell, &args)?,
                OrderAction::Cancel { id } => TxBody::CancelOrder { order: OrderId(id) },
            };
            transact(&mut session, &command.options, body)
        }
        ClientCommand::Orders { member, options } => {
            let mut session = Session::open(&options)?;
            orders(&mut session, member.as_deref())
        }
        ClientCommand::Quote(command) => {
            let mut session = Session::open(&command.options.client)?;
            let body = quote_body(&mut session, command.action)?;
            transact(&mut session, &command.options, body)
        }
        ClientCommand::Quotes { options } => quotes(&mut Session::open(&options)?),
        ClientCommand::Confirm(args) => {
            let mut session = Session::open(&args.options.client)?;
            let body = confirm_body(&mut session, &args)?;
            transact(&mut session, &args.options, body)
        }
        ClientCommand::Cycle(command) => {
            let mut session = Session::open(&command.options.client)?;
            let body = match command.action {
                CycleAction::Close => TxBody::CloseCycle,
                CycleAction::Verify { n, file, out } => {
                    return super::cycle_verify::run(
                        &mut session,
                        n,
                        file.as_deref(),
                        out.as_deref(),
                    )
                }
            };
            transact(&mut session, &command.options, body)
        }
        ClientCommand::Allocate(args) => {
            let mut session = Session::open(&args.options.client)?;
            let body = allocate_body(&mut session, &args)?;
            transact(&mut session, &args.options, body)
        }
        ClientCommand::Balance {
            member,
            proof,
            options,
        } => {
            let mut session = Session::open(&options)?;
            if proof {
                balance_with_proof(&mut session, member.as_deref())
            } else {
                balance(&mut session, member.as_deref())
            }
        }
        ClientCommand::Trades { options } => trades(&mut Session::open(&options)?),
        ClientCommand::Topups { options } => top_ups(&mut Session::open(&options)?),
        ClientCommand::Cycles { options } => cycles(&mut Session::open(&options)?),
        ClientCommand::Book { pair, options } => book(&mut Session::open(&options)?, &pair),
        ClientCommand::Auth(super::AuthCommand::Token {
            ttl_minutes,
            options,
        }) => {
            let (keypair, _) = Session::open(&options)?.signer()?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_millis() as u64);
            println!(
                "{}",
                seisan_api::Credentials::new(keypair).token(now + ttl_minutes * 60_000)
            );
            Ok(())
        }
        ClientCommand::Status { options } => status(&Session::open(&options)?),
        ClientCommand::Events { count, options } => events(&mut Session::open(&options)?, count),
        ClientCommand::Supply { options } => supply(&mut Session::open(&options)?),
        ClientCommand::Deposit(args) => super::funds::deposit(args),
        ClientCommand::FiatDeposit(args) => super::funds::fiat_deposit(args),
        ClientCommand::Withdraw(args) => super::funds::withdraw(args),
        ClientCommand::Reserves { options } => super::funds::reserves(options),
        ClientCommand::Reconcile { options } => super::funds::reconcile(options),
        ClientCommand::Governance(command) => super::governance::run(command),
        ClientCommand::Certificate {
            what: super::CertificateWhat::Trade { id, out },
            options,
        } => super::certificate::fetch_trade_certificate(&mut Session::open(&options)?, id, &out),
        ClientCommand::Verify { file, options } => {
            let mut session = Session::open(&options)?;
            if super::cycle_verify::is_cycle_certificate(&file) {
                return super::cycle_verify::run(&mut session, None, Some(&file), None);
            }
            let json = session.json;
            super::certificate::verify_file(&file, session.genesis()?, json)
        }
        ClientCommand::Compliance(command) => super::compliance::run(command),
        ClientCommand::Sign(args) => super::sign::run(args),
        ClientCommand::Tx { id, options } => {
            let mut session = Session::open(&options)?;
            let id =
                Hash::from_hex(&id).map_err(|reason| anyhow!("transaction id {id:?}: {reason}"))?;
            let document: v1::TransactionStatus =
                session.node.get_json(&format!("/v1/transactions/{id}"))?;
            if document.status != v1::TxState::Finalized {
                if session.json {
                    println!("{}", pretty(&document));
                } else {
                    println!("transaction {id} is pending");
                }
                return Ok(());
            }
            print_finalized(&mut session, &id, &document)
        }
    }
}

fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("API documents print as JSON")
}

/// Finds a pair written `BASE/QUOTE`, naming the known pairs when it fails.
pub fn resolve_pair(genesis: &Genesis, text: &str) -> anyhow::Result<Pair> {
    match genesis.pair_by_name(text) {
        Some((base, quote)) => Ok(Pair { base, quote }),
        None => {
            let known: Vec<String> = genesis
                .pairs
                .iter()
                .map(|pair| format!("{}/{}", pair.base, pair.quote))
                .collect();
            bail!("unknown pair {text:?}; pairs are {}", known.join(", "))
        }
    }
}

pub fn resolve_asset(genesis: &Genesis, text: &str) -> anyhow::Result<AssetId> {
    match genesis.asset_by_symbol(&text.to_ascii_uppercase()) {
        Some((id, _)) => Ok(id),
        None => {
            let known: Vec<&str> = genesis
                .assets
                .iter()
                .map(|asset| asset.symbol.as_str())
                .collect();
            bail!("unknown asset {text:?}; assets are {}", known.join(", "))
        }
    }
}

/// Parses a decimal amount of an asset; too many decimals, a negative or a malformed
/// number is refused with the asset's limit named.
pub fn parse_amount(
    genesis: &Genesis,
    asset: AssetId,
    text: &str,
    what: &str,
) -> anyhow::Result<Amount> {
    let spec = genesis.asset(asset).expect("resolved asset is in genesis");
    let value = spec
        .parse_amount(text)
        .map_err(|error| anyhow!("{what}: {error}"))?;
    if value.is_zero() {
        bail!("{what}: must be more than zero");
    }
    Ok(value)
}

fn parse_side(text: &str) -> anyhow::Result<Side> {
    match text.to_ascii_lowercase().as_str() {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        _ => bail!("side {text:?} must be buy or sell"),
    }
}

fn place_order(session: &mut Session, side: Side, args: &PlaceArgs) -> anyhow::Result<TxBody> {
    let genesis = session.genesis()?;
    let pair = resolve_pair(genesis, &args.pair)?;
    let quantity = parse_amount(genesis, pair.base, &args.qty, "quantity")?;
    let limit_price = parse_amount(genesis, pair.quote, &args.price, "price")?;
    let expires_at_ms = args
        .expires
        .as_deref()
        .map(|text| parse_time(text, now_ms()))
        .transpose()?;
    Ok(TxBody::PlaceOrder(OrderRequest {
        pair,
        side,
        quantity,
        limit_price,
        time_in_force: if args.ioc {
            TimeInForce::ImmediateOrCancel
        } else {
            TimeInForce::GoodTillCancel
        },
        expires_at_ms,
    }))
}

/// Fetches one request for quote by id.
fn fetch_rfq(session: &Session, rfq: u64) -> anyhow::Result<Rfq> {
    let after = rfq
        .checked_sub(1)
        .ok_or_else(|| anyhow!("request for quote ids start at 1"))?;
    let document: v1::Quotes = session
        .node
        .get_json(&format!("/v1/quotes?after={after}&limit=1"))?;
    document
        .quotes
        .into_iter()
        .find(|candidate| candidate.id == RfqId(rfq))
        .ok_or_else(|| anyhow!("unknown request for quote {rfq}"))
}

fn quote_body(session: &mut Session, action: QuoteAction) -> anyhow::Result<TxBody> {
    match action {
        QuoteAction::Request {
            pair,
            side,
            qty,
            to,
            answer_by,
        } => {
            let counterparties = to
                .iter()
                .map(|member| session.resolve_member(member.trim()))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let genesis = session.genesis()?;
            let pair = resolve_pair(genesis, &pair)?;
            let side = parse_side(&side)?;
            let quantity = parse_amount(genesis, pair.base, &qty, "quantity")?;
            Ok(TxBody::RequestQuote(QuoteRequest {
                pair,
                side,
                quantity,
                counterparties,
                answer_by_ms: parse_time(&answer_by, now_ms())?,
            }))
        }
        QuoteAction::Answer {
            rfq,
            price,
            valid_until,
        } => {
            let request = fetch_rfq(session, rfq)?;
            let genesis = session.genesis()?;
            let price = parse_amount(genesis, request.request.pair.quote, &price, "price")?;
            Ok(TxBody::AnswerQuote(QuoteAnswer {
                rfq: RfqId(rfq),
                price,
                valid_until_ms: parse_time(&valid_until, now_ms())?,
            }))
        }
        QuoteAction::Accept { quote } => Ok(TxBody::AcceptQuote {
            quote: OrderId(quote),
        }),
    }
}

fn confirm_body(session: &mut Session, args: &ConfirmArgs) -> anyhow::Result<TxBody> {
    let buyer = session.resolve_member(&args.buyer)?;
    let seller = session.resolve_member(&args.seller)?;
    let genesis = session.genesis()?;
    let pair = resolve_pair(genesis, &args.pair)?;
    Ok(TxBody::Confirm(TradeTerms {
        trade_ref: args.trade_ref.clone(),
        buyer,
        seller,
        pair,
        quantity: parse_amount(genesis, pair.base, &args.qty, "quantity")?,
        price: parse_amount(genesis, pair.quote, &args.price, "price")?,
        trade_time_ms: parse_agreed_time(&args.time)?,
    }))
}

fn parse_direction(text: &str) -> anyhow::Result<AllocationDirection> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "to_customer" | "to-customer" | "customer" => Ok(AllocationDirection::ToCustomer),
        "to_inventory" | "to-inventory" | "inventory" | "back" => {
            Ok(AllocationDirection::ToInventory)
        }
        other => bail!("direction {other:?} must be to_customer or to_inventory"),
    }
}

/// Reads an allocation batch: JSON (an array of `{asset, customer, amount,
/// direction?}`) or CSV (`asset,customer,amount[,direction]`, an optional header line
/// starting with `asset`, `#` comments).
pub fn parse_batch(genesis: &Genesis, text: &str) -> anyhow::Result<Vec<Allocation>> {
    let mut raw: Vec<(String, String, String, String)> = Vec::new();
    if text.trim_start().starts_with('[') {
        let items: Vec<Value> =
            serde_json::from_str(text).context("allocation batch is not a JSON array")?;
        for (index, item) in items.iter().enumerate() {
            let text_of = |name: &str, required: bool| -> anyhow::Result<String> {
                match &item[name] {
                    Value::String(text) => Ok(text.clone()),
                    Value::Number(number) => Ok(number.to_string()),
                    Value::Null if !required => Ok(String::new()),
                    _ => bail!(
                        "allocation {}: `{name}` is missing or not a string",
                        index + 1
                    ),
                }
            };
            raw.push((
                text_of("asset", true)?,
                text_of("customer", true)?,
                text_of("amount", true)?,
                text_of("direction", false)?,
            ));
        }
    } else {
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            if number == 0 && cells[0].eq_ignore_ascii_case("asset") {
                continue;
            }
            if !(3..=4).contains(&cells.len()) {
                bail!(
                    "allocation batch line {}: expected asset,customer,amount[,direction], got {} fields",
                    number + 1,
                    cells.len()
                );
            }
            raw.push((
                cells[0].into(),
                cells[1].into(),
                cells[2].into(),
                cells.get(3).copied().unwrap_or("").into(),
            ));
        }
    }
    if raw.is_empty() || raw.len() > MAX_ALLOCATIONS_PER_BATCH {
        bail!(
            "an allocation batch holds 1 to {MAX_ALLOCATIONS_PER_BATCH} allocations; this one holds {}",
            raw.len()
        );
    }
    raw.into_iter()
        .enumerate()
        .map(|(index, (asset, customer, value, direction))| {
            let context = || format!("allocation {}", index + 1);
            let asset = resolve_asset(genesis, &asset).with_context(context)?;
            Ok(Allocation {
                asset,
                customer: CustomerId(customer),
                amount: parse_amount(genesis, asset, &value, "amount").with_context(context)?,
                direction: parse_direction(&direction).with_context(context)?,
            })
        })
        .collect()
}

fn allocate_body(session: &mut Session, args: &AllocateArgs) -> anyhow::Result<TxBody> {
    let genesis = session.genesis()?;
    if let Some(path) = &args.batch {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading allocation batch {}", path.display()))?;
        return Ok(TxBody::AllocateBatch(parse_batch(genesis, &text)?));
    }
    let (Some(asset), Some(value), Some(customer)) = (&args.asset, &args.amount, &args.customer)
    else {
        bail!("allocate needs ASSET AMOUNT --customer ID, or --batch FILE");
    };
    let asset = resolve_asset(genesis, asset)?;
    Ok(TxBody::Allocate(Allocation {
        asset,
        customer: CustomerId(customer.clone()),
        amount: parse_amount(genesis, asset, value, "amount")?,
        direction: if args.back {
            AllocationDirection::ToInventory
        } else {
            AllocationDirection::ToCustomer
        },
    }))
}

/// Signs, submits, waits (unless `--no-wait`) and prints the receipt. A rejected
/// transaction is an error (exit 1) after its receipt is printed.
pub fn transact(
    session: &mut Session,
    options: &SubmitOptions,
    body: TxBody,
) -> anyhow::Result<()> {
    let id = session.submit(body)?;
    if options.no_wait {
        if session.json {
            println!("{}", pretty(&json!({"id": id, "status": "pending"})));
        } else {
            println!("transaction {id} submitted (pending)");
        }
        return Ok(());
    }
    let document = session.wait_finalized(&id)?;
    print_finalized(session, &id, &document)
}

fn print_finalized(
    session: &mut Session,
    id: &Hash,
    document: &v1::TransactionStatus,
) -> anyhow::Result<()> {
    let (Some(height), Some(receipt)) = (document.height, document.receipt.clone()) else {
        bail!(
            "node {} says transaction {id} is finalized but names no height and receipt",
            session.node.base
        );
    };
    if session.json {
        println!("{}", pretty(document));
    } else {
        let signer = session.member_label(receipt.member);
        let membership = session.membership();
        let genesis = session.genesis()?.clone();
        println!(
            "transaction {id} ({} #{} {}) finalized at height {}: {}",
            signer,
            receipt.nonce,
            receipt.kind,
            height,
            describe::outcome(Some(&genesis), membership.as_ref(), &receipt)
        );
        let lookup = order_lookup(session);
        for event in &receipt.events {
            println!(
                "  {}",
                describe::event(&genesis, membership.as_ref(), event, &lookup)
            );
        }
    }
    match &receipt.outcome {
        seisan_types::receipt::TxOutcome::Applied => Ok(()),
        seisan_types::receipt::TxOutcome::Rejected { code, reason } => {
            let membership = session.membership();
            let genesis = session.genesis().ok();
            bail!(
                "{}",
                describe::rejection(genesis, membership.as_ref(), code, reason)
            )
        }
    }
}

/// Looks orders up on the node (to name the asset of a released lock or a quote).
fn order_lookup(session: &Session) -> impl Fn(u64) -> Option<Order> + '_ {
    move |id| {
        let document: v1::OrderDocument =
            session.node.get_json(&format!("/v1/orders/{id}")).ok()?;
        Some(document.order)
    }
}

fn orders(session: &mut Session, member: Option<&str>) -> anyhow::Result<()> {
    let member = session.member_or_self(member)?;
    let path = format!("/v1/members/{}/orders", member.0);
    let document = session.node.get(&path)?;
    if session.json {
        println!("{}", pretty(&document));
        return Ok(());
    }
    let v1::Orders { orders } = session.node.decode(&path, &document)?;
    let genesis = session.genesis()?;
    let mut table = Table::new(&[
        ("ID", Align::Right),
        ("SIDE", Align::Left),
        ("PAIR", Align::Left),
        ("QTY", Align::Right),
        ("REMAINING", Align::Right),
        ("PRICE", Align::Right),
        ("KIND", Align::Left),
        ("STATUS", Align::Left),
        ("PLACED", Align::Left),
    ]);
    for order in &orders {
        table.row(vec![
            order.id.to_string(),
            describe::side(order.side).into(),
            pair_name(genesis, order.pair),
            decimal(genesis, order.pair.base, order.quantity),
            decimal(genesis, order.pair.base, order.remaining),
            describe::price(genesis, order.pair, order.limit_price),
            describe::order_kind(order),
            describe::order_status(&order.status),
            format_time_ms(order.placed_at_ms),
        ]);
    }
    let name = session.member_label(member);
    println!("open orders of {name}");
    print_table(&table, "no open orders");
    Ok(())
}

fn print_table(table: &Table, empty: &str) {
    print!("{}", table.render());
    if table.is_empty() {
        println!("({empty})");
    }
}

/// Fetches every item of a paged list endpoint: each page is read as the endpoint's
/// type `P` (`seisan_api::v1`), `items` takes its list out.
pub(super) fn fetch_all<P: DeserializeOwned, T, C: std::fmt::Display>(
    session: &Session,
    path: &str,
    items: impl Fn(P) -> Vec<T>,
    id_of: impl Fn(&T) -> C,
) -> anyhow::Result<Vec<T>> {
    let mut all: Vec<T> = Vec::new();
    loop {
        let after = all
            .last()
            .map(|item| format!("&after={}", id_of(item)))
            .unwrap_or_default();
        let page = items(
            session
                .node
                .get_json(&format!("{path}?limit={PAGE}{after}"))?,
        );
        let full = page.len() == PAGE;
        all.extend(page);
        if !full || all.len() >= MAX_LIST_ITEMS {
            return Ok(all);
        }
    }
}

fn print_json_list<T: serde::Serialize>(name: &str, items: &[T]) {
    println!("{}", pretty(&json!({ name: items })));
}

fn trades(session: &mut Session) -> anyhow::Result<()> {
    let trades: Vec<Trade> = fetch_all(
        session,
        "/v1/trades",
        |page: v1::Trades| page.trades,
        |trade: &Trade| trade.id.0,
    )?;
    if session.json {
        print_json_list("trades", &trades);
        return Ok(());
    }
    let membership = session.membership();
    let genesis = session.genesis()?;
    let mut table = Table::new(&[
        ("ID", Align::Right),
        ("TIME", Align::Left),
        ("PAIR", Align::Left),
        ("BUYER", Align::Left),
        ("SELLER", Align::Left),
        ("QTY", Align::Right),
        ("PRICE", Align::Right),
        ("VALUE", Align::Right),
        ("HEIGHT", Align::Right),
    ]);
    for trade in &trades {
        table.row(vec![
            trade.id.to_string(),
            format_time_ms(trade.timestamp_ms),
            pair_name(genesis, trade.pair),
            member_name(genesis, membership.as_ref(), trade.buyer),
            member_name(genesis, membership.as_ref(), trade.seller),
            amount(genesis, trade.pair.base, trade.quantity),
            describe::price(genesis, trade.pair, trade.price),
            amount(genesis, trade.pair.quote, trade.value),
            trade.height.to_string(),
        ]);
    }
    print_table(&table, "no trades");
    Ok(())
}

fn top_ups(session: &mut Session) -> anyhow::Result<()> {
    let top_ups: Vec<TopUpRequest> = fetch_all(
        session,
        "/v1/topups",
        |page: v1::TopUps| page.top_ups,
        |top_up: &TopUpRequest| top_up.id.0,
    )?;
    if session.json {
        print_json_list("top_ups", &top_ups);
        return Ok(());
    }
    let membership = session.membership();
    let genesis = session.genesis()?;
    let mut table = Table::new(&[
        ("ID", Align::Right),
        ("MEMBER", Align::Left),
        ("SHORTFALL", Align::Right),
        ("NEEDED", Align::Right),
        ("FOR", Align::Left),
        ("DEADLINE", Align::Left),
        ("STATUS", Align::Left),
    ]);
    for top_up in &top_ups {
        table.row(vec![
            top_up.id.to_string(),
            member_name(genesis, membership.as_ref(), top_up.member),
            amount(genesis, top_up.asset, top_up.shortfall),
            amount(genesis, top_up.asset, top_up.needed),
            describe::top_up_subject(top_up.subject),
            format_time_ms(top_up.deadline_ms),
            describe::top_up_status(top_up.status),
        ]);
    }
    print_table(&table, "no top-up requests");
    Ok(())
}

fn quotes(session: &mut Session) -> anyhow::Result<()> {
    let rfqs: Vec<Rfq> = fetch_all(
        session,
        "/v1/quotes",
        |page: v1::Quotes| page.quotes,
        |rfq: &Rfq| rfq.id.0,
    )?;
    if session.json {
        print_json_list("quotes", &rfqs);
        return Ok(());
    }
    let membership = session.membership();
    let genesis = session.genesis()?.clone();
    let lookup = order_lookup(session);
    let mut table = Table::new(&[
        ("RFQ", Align::Right),
        ("ASKER", Align::Left),
        ("SIDE", Align::Left),
        ("QTY", Align::Right),
        ("PAIR", Align::Left),
        ("ASKED", Align::Left),
        ("ANSWER BY", Align::Left),
        ("STATUS", Align::Left),
        ("QUOTES", Align::Left),
    ]);
    for rfq in &rfqs {
        let request = &rfq.request;
        let quotes: Vec<String> = rfq
            .quotes
            .iter()
            .map(|quote| match lookup(quote.0) {
                Some(order) => format!(
                    "{quote}: {} at {} ({})",
                    member_name(&genesis, membership.as_ref(), order.member),
                    describe::price(&genesis, order.pair, order.limit_price),
                    describe::order_status(&order.status)
                ),
                None => quote.to_string(),
            })
            .collect();
        table.row(vec![
            rfq.id.to_string(),
            member_name(&genesis, membership.as_ref(), rfq.asker),
            describe::side(request.side).into(),
            decimal(&genesis, request.pair.base, request.quantity),
            pair_name(&genesis, request.pair),
            request
                .counterparties
                .iter()
                .map(|member| member_name(&genesis, membership.as_ref(), *member))
                .collect::<Vec<_>>()
                .join(","),
            format_time_ms(request.answer_by_ms),
            describe::rfq_status(rfq.status),
            if quotes.is_empty() {
                "-".into()
            } else {
                quotes.join("; ")
            },
        ]);
    }
    print_table(&table, "no requests for quote");
    Ok(())
}

fn cycles(session: &mut Session) -> anyhow::Result<()> {
    let cycles: Vec<Cycle> = fetch_all(
        session,
        "/v1/cycles",
        |page: v1::Cycles| page.cycles,
        |cycle: &Cycle| cycle.id.0,
    )?;
    if session.json {
        print_json_list("cycles", &cycles);
        return Ok(());
    }
    let genesis = session.genesis()?;
    let mut table = Table::new(&[
        ("CYCLE", Align::Right),
        ("OPENED", Align::Left),
        ("MATCHED", Align::Right),
        ("STATUS", Align::Left),
        ("NETTING (gross -> net, saved)", Align::Left),
    ]);
    for cycle in &cycles {
        let netting: Vec<String> = cycle
            .netting
            .iter()
            .map(|entry| {
                format!(
                    "{} -> {} ({}.{:02}%)",
                    amount(genesis, entry.asset, entry.gross),
                    amount(genesis, entry.asset, entry.net),
                    entry.efficiency_bps / 100,
                    entry.efficiency_bps % 100
                )
            })
            .collect();
        table.row(vec![
            cycle.id.to_string(),
            format_time_ms(cycle.opened_at_ms),
            cycle.matched.to_string(),
            describe::cycle_status(&cycle.status),
            if netting.is_empty() {
                "-".into()
            } else {
                netting.join("; ")
            },
        ]);
    }
    print_table(&table, "no cycles");
    Ok(())
}

fn book(session: &mut Session, pair_text: &str) -> anyhow::Result<()> {
    let genesis = session.genesis()?;
    let pair = resolve_pair(genesis, pair_text)?;
    let path = format!(
        "/v1/book/{}/{}",
        describe::asset_symbol(genesis, pair.base),
        describe::asset_symbol(genesis, pair.quote)
    );
    let document = session.node.get(&path)?;
    if session.json {
        println!("{}", pretty(&document));
        return Ok(());
    }
    let v1::Book { bids, asks, .. } = session.node.decode(&path, &document)?;
    let membership = session.membership();
    let genesis = session.genesis()?;
    let mut table = Table::new(&[
        ("SIDE", Align::Left),
        ("PRICE", Align::Right),
        ("REMAINING", Align::Right),
        ("ORDER", Align::Right),
        ("MEMBER", Align::Left),
    ]);
    // The node's order, which `--json` prints: asks from the lowest price up, then bids
    // from the highest down, each side best first and, within a price, earliest first.
    for order in asks.iter().chain(&bids) {
        table.row(vec![
            describe::side(order.side).into(),
            describe::price(genesis, pair, order.limit_price),
            amount(genesis, pair.base, order.remaining),
            order.id.to_string(),
            member_name(genesis, membership.as_ref(), order.member),
        ]);
    }
    println!(
        "order book {}: asks, then bids, each best price first",
        pair_name(genesis, pair)
    );
    print_table(&table, "empty book");
    Ok(())
}

fn status(session: &Session) -> anyhow::Result<()> {
    let answer = session.node.get("/v1/status")?;
    if session.json {
        println!("{}", pretty(&answer));
        return Ok(());
    }
    let document: v1::NodeStatus = session.node.decode("/v1/status", &answer)?;
    println!(
        "node        {} ({})",
        session.node.base, document.member_name
    );
    println!("chain       {}", document.chain_id);
    println!("height      {} (view {})", document.height, document.view);
    println!("block       {}", document.last_finalized_hash);
    println!("state root  {}", document.state_root);
    println!("peers       {}", document.peers.len());
    println!("mempool     {} transactions", document.mempool_depth);
    if let Some(line) = sync_line(&document) {
        println!("{line}");
    }
    Ok(())
}

/// The status line of a node that is behind: how far it has to go and how fast it is
/// getting there, or that it is waiting to hear the validators; `None` when in step.
fn sync_line(document: &v1::NodeStatus) -> Option<String> {
    if let Some(catch_up) = &document.catch_up {
        let rate = catch_up
            .blocks_per_second
            .map_or("rate not known yet".to_string(), |rate| {
                format!("{rate:.0} blocks/s")
            });
        let left = catch_up
            .eta_seconds
            .map_or(String::new(), |eta| format!(", about {eta} s left"));
        return Some(format!(
            "catching up {} of {} ({} to go, {rate}{left})",
            catch_up.height, catch_up.target, catch_up.remaining
        ));
    }
    document
        .syncing
        .then(|| "syncing     waiting to hear where the validators stand".to_string())
}

fn balance(session: &mut Session, member: Option<&str>) -> anyhow::Result<()> {
    let member = session.member_or_self(member)?;
    let path = format!("/v1/members/{}/balances", member.0);
    let answer = session.node.get(&path)?;
    if session.json {
        println!("{}", pretty(&answer));
        return Ok(());
    }
    let v1::Balances {
        height, balances, ..
    } = session.node.decode(&path, &answer)?;
    let name = session.member_label(member);
    let genesis = session.genesis()?;
    println!("balances of {name} at height {height}");
    let rows: Vec<(AssetId, seisan_types::clearing::Balance)> = balances
        .iter()
        .map(|entry| (entry.asset, entry.balance))
        .collect();
    print_table(&balance_table(genesis, &rows), "no assets");
    Ok(())
}

fn balance_table(genesis: &Genesis, rows: &[(AssetId, seisan_types::clearing::Balance)]) -> Table {
    let mut table = Table::new(&[
        ("ASSET", Align::Left),
        ("AVAILABLE", Align::Right),
        ("LOCKED", Align::Right),
        ("CUSTOMERS", Align::Right),
        ("TOTAL", Align::Right),
    ]);
    for (asset, balance) in rows {
        let total = balance.total().expect("a ledger balance never overflows");
        table.row(vec![
            describe::asset_symbol(genesis, *asset),
            decimal(genesis, *asset, balance.inventory),
            decimal(genesis, *asset, balance.locked),
            decimal(genesis, *asset, balance.customers),
            decimal(genesis, *asset, total),
        ]);
    }
    table
}

fn balance_with_proof(session: &mut Session, member: Option<&str>) -> anyhow::Result<()> {
    let member = session.member_or_self(member)?;
    let parsed: v1::BalanceProof = session
        .node
        .get_json(&format!("/v1/members/{}/balances?proof=true", member.0))?;
    let json_output = session.json;
    let membership = session.membership();
    let genesis = session.genesis()?;
    let verified = verify_balance_proof(genesis, member, &parsed)
        .map_err(|error| anyhow!("balance proof REFUSED: {error}"))?;
    let signers: Vec<String> = verified
        .signers
        .iter()
        .map(|signer| member_name(genesis, membership.as_ref(), *signer))
        .collect();
    if json_output {
        let balances: Vec<Value> = verified
            .balances
            .iter()
            .map(|(asset, balance)| {
                json!({"asset": asset, "symbol": describe::asset_symbol(genesis, *asset), "balance": balance})
            })
            .collect();
        println!(
            "{}",
            pretty(&json!({
                "member": member,
                "verified": true,
                "height": verified.height,
                "block": verified.block,
                "state_root": verified.state_root,
                "signers": signers,
                "epoch": verified.epoch,
                "balances": balances,
            }))
        );
        return Ok(());
    }
    println!(
        "balances of {} at height {}",
        member_name(genesis, membership.as_ref(), member),
        verified.height
    );
    print_table(&balance_table(genesis, &verified.balances), "no assets");
    println!(
        "verified against height {}, signed by {} of epoch {} (block {}, state root {})",
        verified.height,
        signers.join(", "),
        verified.epoch,
        verified.block,
        verified.state_root
    );
    Ok(())
}

fn supply(session: &mut Session) -> anyhow::Result<()> {
    let answer = session.node.get("/v1/supply")?;
    if session.json {
        println!("{}", pretty(&answer));
        return Ok(());
    }
    let document: v1::Supply = session.node.decode("/v1/supply", &answer)?;
    let genesis = session.genesis()?;
    let mut table = Table::new(&[
        ("ASSET", Align::Left),
        ("CREDITED", Align::Right),
        ("DEBITED", Align::Right),
        ("HELD", Align::Right),
        ("LOCKED", Align::Right),
    ]);
    for entry in &document.assets {
        let asset = entry.asset;
        table.row(vec![
            describe::asset_symbol(genesis, asset),
            decimal(genesis, asset, entry.credited),
            decimal(genesis, asset, entry.debited),
            decimal(genesis, asset, entry.held),
            decimal(genesis, asset, entry.locked),
        ]);
    }
    println!(
        "supply at height {} (state root {})",
        document.height, document.state_root
    );
    print_table(&table, "no assets");
    Ok(())
}

/// Follows `/v1/events` (server-sent events, one `block` event per finalized block).
fn events(session: &mut Session, count: Option<u64>) -> anyhow::Result<()> {
    let genesis = session.genesis().ok().cloned();
    // Fetched once: a member governance adds while this follows is named `member N`
    // until the next run.
    let membership = session.membership();
    let response = session
        .node
        .streaming_get("/v1/events")
        .header("accept", "text/event-stream")
        .call()
        .map_err(|error| session.node.unreachable(error))?;
    if response.status().as_u16() != 200 {
        bail!(
            "node {} answered {} to /v1/events",
            session.node.base,
            response.status()
        );
    }
    let reader = std::io::BufReader::new(response.into_body().into_reader());
    let stdout = std::io::stdout();
    let mut blocks = 0u64;
    if count == Some(0) {
        return Ok(());
    }
    for line in reader.lines() {
        let line =
            line.with_context(|| format!("event stream from {} broke", session.node.base))?;
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let data = data.trim();
        let block: v1::BlockEvent = serde_json::from_str(data).with_context(|| {
            format!(
                "node {} sent a block event on /v1/events that is not a BlockEvent",
                session.node.base
            )
        })?;
        let mut out = stdout.lock();
        if session.json {
            writeln!(out, "{data}")?;
        } else {
            print_block_event(&mut out, genesis.as_ref(), membership.as_ref(), &block)?;
        }
        out.flush()?;
        blocks += 1;
        if count.is_some_and(|count| blocks >= count) {
            return Ok(());
        }
    }
    bail!("node {} closed the event stream", session.node.base)
}

fn print_block_event(
    out: &mut impl Write,
    genesis: Option<&Genesis>,
    membership: Option<&Membership>,
    block: &v1::BlockEvent,
) -> anyhow::Result<()> {
    let v1::BlockEvent {
        receipts,
        events: block_events,
        ..
    } = block;
    writeln!(
        out,
        "block {} at {}: {} transactions, state root {}",
        block.height,
        format_time_ms(block.timestamp_ms),
        receipts.len(),
        block.state_root
    )?;
    let no_lookup = |_: u64| None;
    for receipt in receipts {
        let who = genesis.map_or_else(
            || format!("member {}", receipt.member),
            |genesis| member_name(genesis, membership, receipt.member),
        );
        let mut line = format!(
            "  tx {} {who} #{} {}: {}",
            receipt.tx_id,
            receipt.nonce,
            receipt.kind,
            describe::outcome(genesis, membership, receipt)
        );
        if let Some(genesis) = genesis {
            for event in &receipt.events {
                line.push_str("; ");
                line.push_str(&describe::event(genesis, membership, event, &no_lookup));
            }
        }
        writeln!(out, "{line}")?;
    }
    if let Some(genesis) = genesis {
        for event in block_events {
            writeln!(
                out,
                "  {}",
                describe::event(genesis, membership, event, &no_lookup)
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_says_how_far_a_catching_up_node_has_to_go_and_how_fast() {
        use seisan_api::v1::{CatchUpProgress, NodeStatus};
        let catching_up = |height, target, rate, eta| NodeStatus {
            syncing: true,
            catch_up: Some(CatchUpProgress {
                height,
                target,
                remaining: target - height,
                blocks_per_second: rate,
                eta_seconds: eta,
            }),
            ..NodeStatus::default()
        };
        assert_eq!(
            super::sync_line(&catching_up(120, 1000, Some(352.4), Some(3))).as_deref(),
            Some("catching up 120 of 1000 (880 to go, 352 blocks/s, about 3 s left)")
        );
        assert_eq!(
            super::sync_line(&catching_up(0, 50, None, None)).as_deref(),
            Some("catching up 0 of 50 (50 to go, rate not known yet)")
        );
        let unheard = NodeStatus {
            syncing: true,
            ..NodeStatus::default()
        };
        assert!(super::sync_line(&unheard)
            .unwrap()
            .contains("waiting to hear"));
        assert_eq!(super::sync_line(&NodeStatus::default()), None);
    }

    use super::*;
    use crate::genesis_command::testnet_genesis;

    #[test]
    fn batches_parse_from_csv_and_json_and_refuse_bad_lines() {
        let genesis = testnet_genesis(7101, 0);
        let csv =
            "asset,customer,amount,direction\n# a comment\nETH,c-1,0.5\nJPY,c-2,10,to_inventory\n";
        let parsed = parse_batch(&genesis, csv).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].amount, Amount(500_000_000_000_000_000));
        assert_eq!(parsed[0].direction, AllocationDirection::ToCustomer);
        assert_eq!(parsed[1].asset, AssetId(1));
        assert_eq!(parsed[1].direction, AllocationDirection::ToInventory);
        let json = r#"[{"asset":"eth","customer":"c-1","amount":"1","direction":"back"}]"#;
        let parsed = parse_batch(&genesis, json).unwrap();
        assert_eq!(parsed[0].amount, Amount(10u128.pow(18)));
        assert_eq!(parsed[0].direction, AllocationDirection::ToInventory);
        for (bad, needle) in [
            ("JPY,c-1,0.5\n", "JPY allows at most 0"),
            ("DOGE,c-1,1\n", "unknown asset"),
            ("JPY,c-1\n", "expected asset,customer,amount"),
            ("JPY,c-1,1,sideways\n", "direction"),
            ("", "1 to 1024"),
            (
                "[{\"asset\":\"JPY\",\"amount\":\"1\"}]",
                "`customer` is missing",
            ),
        ] {
            let error = format!("{:#}", parse_batch(&genesis, bad).unwrap_err());
            assert!(error.contains(needle), "{bad:?}: {error}");
        }
    }

    #[test]
    fn pairs_and_amounts_are_checked_against_genesis() {
        let genesis = testnet_genesis(7101, 0);
        assert_eq!(
            resolve_pair(&genesis, "eth/jpy").unwrap(),
            Pair {
                base: AssetId(0),
                quote: AssetId(1)
            }
        );
        let error = resolve_pair(&genesis, "JPY/ETH").unwrap_err().to_string();
        assert_eq!(error, "unknown pair \"JPY/ETH\"; pairs are ETH/JPY");
        let error = parse_amount(&genesis, AssetId(1), "1.5", "price")
            .unwrap_err()
            .to_string();
        assert!(error.contains("JPY allows at most 0"), "{error}");
        assert!(parse_amount(&genesis, AssetId(1), "0", "price").is_err());
        assert!(parse_amount(&genesis, AssetId(1), "-1", "price").is_err());
    }

    #[test]
    fn rejections_name_members_and_assets() {
        let genesis = testnet_genesis(7101, 0);
        assert_eq!(
            describe::rejection(
                Some(&genesis),
                None,
                "insufficient_available",
                "member 1 has 100 of asset 1 available; 1000 needed"
            ),
            "rejected: insufficient balance: exchange-a has 100 of JPY available; 1000 needed (insufficient_available)"
        );
        // Ids genesis does not know stay as they are.
        assert_eq!(
            describe::rejection(Some(&genesis), None, "x", "member 9, asset 7."),
            "rejected: member 9, asset 7. (x)"
        );
    }
}
