//! Moving money in and out: `deposit` (coins from the member's registered public-chain
//! address to the clearing house's hot address), `fiat-deposit` (operating account to
//! trust account at the bank), `withdraw`, and the clearing house's views of custody
//! (`reserves`) and of the bank (`reconcile`).
//!
//! `deposit` and `fiat-deposit` are testnet conveniences: on a real network an exchange
//! moves coins with its own wallet and fiat with its own bank, and the watchers of the
//! validators attest what arrived. Here `deposit` asks the local anvil to send from the
//! member's registered address (anvil's dev accounts are unlocked), and `fiat-deposit`
//! instructs the embedded bank with the member's bank token.

use super::commands::{parse_amount, resolve_asset, transact};
use super::session::Session;
use super::{ClientOptions, SubmitOptions};
use anyhow::{anyhow, bail, Context};
use seisan_api::v1;
use seisan_bank::{AccountId, BankAdapter, HttpBank, TransferReference, TransferRequest};
use seisan_types::amount::AssetKind;
use seisan_types::custody::{
    ChainAddress, DepositRecord, Withdrawal, WithdrawalId, WithdrawalStatus,
};
use seisan_types::tx::TxBody;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long `deposit` waits for the ledger to credit a deposit.
const CREDIT_WAIT: Duration = Duration::from_secs(90);

#[derive(clap::Args, Debug)]
pub struct DepositArgs {
    /// The crypto asset (ETH or a token such as WBTC).
    pub asset: String,
    /// The amount, in whole units (e.g. 1.5).
    pub amount: String,
    /// The public chain's JSON-RPC URL.
    #[arg(
        long,
        env = "SEISAN_ETH_RPC",
        default_value = "http://127.0.0.1:8545",
        value_name = "URL"
    )]
    pub eth_rpc: String,
    /// Send from this registered address [default: the member's first registered address].
    #[arg(long, value_name = "ADDRESS")]
    pub from: Option<String>,
    /// Return once the public-chain transaction is mined, without waiting for the credit.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub options: ClientOptions,
}

#[derive(clap::Args, Debug)]
pub struct FiatDepositArgs {
    /// The amount, in whole units of the fiat asset (e.g. 200, or 12.50 for USD).
    pub amount: String,
    /// The fiat currency (a fiat asset's symbol): its operating account pays its trust
    /// account at the bank, and the ledger credits that asset.
    #[arg(long, default_value = "JPY", value_name = "SYMBOL")]
    pub currency: String,
    /// The bank's API URL.
    #[arg(
        long,
        env = "SEISAN_BANK_URL",
        default_value = "http://127.0.0.1:7400",
        value_name = "URL"
    )]
    pub bank: String,
    /// A file (mode 0600) holding the member's bank API token; or the token in the
    /// environment variable SEISAN_BANK_TOKEN, never as an argument [default on a dev
    /// chain: dev-token-<member>].
    #[arg(long, env = "SEISAN_BANK_TOKEN_FILE", value_name = "FILE")]
    pub bank_token_file: Option<std::path::PathBuf>,
    /// Return once the bank booked the transfer, without waiting for the credit.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub options: ClientOptions,
}

#[derive(clap::Args, Debug)]
pub struct WithdrawArgs {
    /// The asset (a crypto asset pays out on the public chain; fiat to the operating account).
    pub asset: String,
    /// The amount, in whole units.
    pub amount: String,
    /// For a crypto asset: one of the member's registered addresses [default: the first].
    #[arg(long, value_name = "ADDRESS")]
    pub to: Option<String>,
    /// For a crypto asset: after the debit, wait until the payout on the public chain is
    /// attested by a quorum, saying every 2 s on stderr where it stands.
    #[arg(long)]
    pub wait_paid: bool,
    #[command(flatten)]
    pub submit: SubmitOptions,
}

/// How long `withdraw --wait-paid` waits for the attested payout.
const PAYOUT_WAIT: Duration = Duration::from_secs(300);

/// Everything the ledger ever credited in an asset, in minor units. A deposit is
/// credited when this grows by its amount (the member's own balance may not grow: a
/// credit that cures a top-up request is spent at once by the order it frees).
fn credited(session: &mut Session, symbol: &str) -> anyhow::Result<u128> {
    let supply: v1::Supply = session.node.get_json("/v1/supply")?;
    let entry = supply
        .assets
        .iter()
        .find(|entry| entry.symbol == symbol)
        .ok_or_else(|| anyhow!("the node reports no {symbol} supply"))?;
    Ok(entry.credited.0)
}

/// How often a waiting command says where the wait stands (on stderr).
const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// Waits until the member's credited `symbol` reaches `target`, saying every
/// [`PROGRESS_INTERVAL`] on stderr how long it has waited and what `progress` reports
/// (confirmations, attestations).
fn wait_for_credit(
    session: &mut Session,
    symbol: &str,
    target: u128,
    progress: &mut dyn FnMut(&mut Session) -> String,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let deadline = started + CREDIT_WAIT;
    let mut said = started;
    while credited(session, symbol)? < target {
        if Instant::now() > deadline {
            bail!(
                "the deposit was not credited within {}s ({}); see `seisan topups` and the nodes' logs",
                CREDIT_WAIT.as_secs(),
                progress(session)
            );
        }
        if said.elapsed() >= PROGRESS_INTERVAL {
            eprintln!(
                "  waiting for the credit ({} s): {}",
                started.elapsed().as_secs(),
                progress(session)
            );
            said = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

/// Where a public-chain deposit stands: its confirmations against the K genesis asks
/// for, and how many validators attested it against the quorum.
fn deposit_progress(
    session: &mut Session,
    eth_rpc: &str,
    tx_hash: &str,
    mined_in: u64,
    needed: u64,
) -> String {
    let confirmations = rpc(eth_rpc, "eth_blockNumber", json!([]))
        .ok()
        .and_then(|head| head.as_str().and_then(parse_hex_u64))
        .map_or("public chain unreachable".to_string(), |head| {
            format!(
                "{} of {needed} confirmations",
                (head + 1).saturating_sub(mined_in).min(needed)
            )
        });
    let quorum = session.membership().map_or(
        session.genesis().map_or(0, |genesis| genesis.quorum),
        |membership| membership.quorum,
    );
    // Every page: the list is in deposit-id order, so a new deposit can be on any.
    let attested = super::commands::fetch_all(
        session,
        "/v1/deposits",
        |page: v1::Deposits| page.deposits,
        |record: &DepositRecord| record.id,
    )
    .ok()
    .and_then(|records| {
        records.iter().find_map(|record| {
            record
                .attestations
                .iter()
                .filter(|(fact, _)| fact.tx_hash.0 == tx_hash)
                .map(|(_, attesters)| attesters.len())
                .max()
        })
    })
    .unwrap_or(0);
    format!("{confirmations}; attested by {attested} of the {quorum} validators needed")
}

fn parse_hex_u64(text: &str) -> Option<u64> {
    u64::from_str_radix(text.trim_start_matches("0x"), 16).ok()
}

fn rpc(url: &str, method: &str, params: Value) -> anyhow::Result<Value> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut response = agent
        .post(url)
        .send_json(&body)
        .with_context(|| format!("cannot reach the public chain at {url}"))?;
    let answer: Value = response
        .body_mut()
        .read_json()
        .with_context(|| format!("{method}: unreadable answer"))?;
    if let Some(error) = answer.get("error") {
        bail!(
            "{method} failed: {}",
            error["message"].as_str().unwrap_or("unknown error")
        );
    }
    Ok(answer["result"].clone())
}

pub fn deposit(args: DepositArgs) -> anyhow::Result<()> {
    let mut session = Session::open(&args.options)?;
    let (_, member) = session.signer()?;
    let genesis = session.genesis()?.clone();
    let asset_id = resolve_asset(&genesis, &args.asset)?;
    let asset = genesis.asset(asset_id).expect("resolved asset").clone();
    if asset.kind == AssetKind::Fiat {
        bail!("{} is fiat; use `seisan fiat-deposit AMOUNT`", asset.symbol);
    }
    let amount = parse_amount(&genesis, asset_id, &args.amount, "amount")?;
    let chain = genesis
        .public_chain
        .as_ref()
        .ok_or_else(|| anyhow!("this genesis has no public_chain section"))?;
    // The node's membership names members added by governance too (genesis does not).
    let name = &session.member_label(member);
    let from = match &args.from {
        Some(address) => address.to_ascii_lowercase(),
        None => chain
            .registered_addresses
            .iter()
            .find(|registered| &registered.member == name)
            .map(|registered| registered.address.0.clone())
            .ok_or_else(|| anyhow!("{name} has no registered public-chain address in genesis"))?,
    };
    if !chain.is_registered_to(name, &ChainAddress(from.clone())) {
        bail!(
            "{from} is not a registered address of {name}; a deposit from it would not be credited"
        );
    }
    let before = credited(&mut session, &asset.symbol)?;
    let transaction = match (&asset.kind, &asset.contract) {
        (AssetKind::NativeCoin, _) => {
            json!({"from": from, "to": chain.hot_address.0, "value": format!("0x{:x}", amount.0)})
        }
        (AssetKind::Token, Some(contract)) => {
            // ERC-20 transfer(address,uint256): selector a9059cbb, then both arguments as 32-byte words.
            let to = chain.hot_address.0.trim_start_matches("0x");
            let data = format!("0xa9059cbb{:0>64}{:064x}", to, amount.0);
            json!({"from": from, "to": contract, "data": data})
        }
        _ => bail!("{} has no token contract in genesis", asset.symbol),
    };
    let hash = rpc(&args.eth_rpc, "eth_sendTransaction", json!([transaction]))?;
    let hash = hash
        .as_str()
        .ok_or_else(|| anyhow!("eth_sendTransaction returned no hash"))?
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let receipt = loop {
        let receipt = rpc(&args.eth_rpc, "eth_getTransactionReceipt", json!([hash]))?;
        if !receipt.is_null() {
            break receipt;
        }
        if Instant::now() > deadline {
            bail!("deposit {hash} was not mined within 30 s");
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    if receipt["status"] != "0x1" {
        bail!(
            "deposit {hash} failed on the public chain (status {})",
            receipt["status"]
        );
    }
    if !args.no_wait {
        let mined_in = receipt["blockNumber"]
            .as_str()
            .and_then(parse_hex_u64)
            .unwrap_or(0);
        let needed = chain.confirmations;
        wait_for_credit(
            &mut session,
            &asset.symbol,
            before + amount.0,
            &mut |session| deposit_progress(session, &args.eth_rpc, &hash, mined_in, needed),
        )?;
    }
    if session.json {
        println!(
            "{}",
            json!({"tx_hash": hash, "from": from, "to": chain.hot_address.0, "asset": asset.symbol, "amount": amount, "credited": !args.no_wait})
        );
    } else {
        let shown = asset.format_amount(amount);
        println!(
            "deposited {shown} {} from {from} to the hot address {} (tx {hash})",
            asset.symbol, chain.hot_address.0
        );
        if !args.no_wait {
            println!("credited to {name} after the validators' attestations");
        }
    }
    Ok(())
}

pub fn fiat_deposit(args: FiatDepositArgs) -> anyhow::Result<()> {
    let mut session = Session::open(&args.options)?;
    let (_, member) = session.signer()?;
    let genesis = session.genesis()?.clone();
    let (asset_id, asset) = genesis
        .asset_by_symbol(&args.currency)
        .filter(|(_, asset)| asset.kind == AssetKind::Fiat)
        .map(|(id, asset)| (id, asset.clone()))
        .ok_or_else(|| {
            let fiat: Vec<&str> = genesis
                .assets
                .iter()
                .filter(|asset| asset.kind == AssetKind::Fiat)
                .map(|asset| asset.symbol.as_str())
                .collect();
            anyhow!(
                "--currency {}: not a fiat asset of this chain (fiat: {})",
                args.currency,
                fiat.join(", ")
            )
        })?;
    let amount = parse_amount(&genesis, asset_id, &args.amount, "amount")?;
    // The node's membership names members added by governance too (genesis does not).
    let name = session.member_label(member);
    let from_env = std::env::var("SEISAN_BANK_TOKEN")
        .ok()
        .filter(|token| !token.trim().is_empty());
    let token = match (&args.bank_token_file, from_env) {
        (Some(path), _) => crate::node::config::read_token_file(path)?,
        (None, Some(token)) => token.trim().to_string(),
        (None, None) if genesis.chain_id.is_dev() => format!("dev-token-{name}"),
        (None, None) => {
            bail!("pass --bank-token-file (or SEISAN_BANK_TOKEN): this is not a dev chain")
        }
    };
    let before = credited(&mut session, &asset.symbol)?;
    let reference = TransferReference(format!("trust-deposit-{name}-{}", super::text::now_ms()));
    let bank = HttpBank::new(&args.bank, &token).with_tls(session.client_tls()?);
    let receipt = bank
        .transfer(&TransferRequest {
            from: AccountId::operating_in(&name, &asset.symbol),
            to: AccountId::trust_in(&name, &asset.symbol),
            amount,
            reference,
        })
        .map_err(|error| anyhow!("the bank refused the transfer: {error}"))?;
    if !args.no_wait {
        let entry = receipt.credit_entry.clone();
        wait_for_credit(
            &mut session,
            &asset.symbol,
            before + amount.0,
            &mut |session| {
                let quorum = session.membership().map_or(genesis.quorum, |m| m.quorum);
                format!(
                "the bank booked entry {entry} in the trust account; the ledger credits it once {quorum} validators have attested it"
            )
            },
        )?;
    }
    if session.json {
        println!(
            "{}",
            json!({"bank_receipt": receipt, "credited": !args.no_wait})
        );
    } else {
        println!(
            "moved {} {} from {name}'s operating account to its trust account (bank entry {})",
            asset.format_amount(amount),
            asset.symbol,
            receipt.credit_entry
        );
        if !args.no_wait {
            println!("credited to {name} after the validators' attestations (S210)");
        }
    }
    Ok(())
}

pub fn withdraw(args: WithdrawArgs) -> anyhow::Result<()> {
    let mut session = Session::open(&args.submit.client)?;
    let (_, member) = session.signer()?;
    let genesis = session.genesis()?.clone();
    let asset_id = resolve_asset(&genesis, &args.asset)?;
    let asset = genesis.asset(asset_id).expect("resolved asset").clone();
    let amount = parse_amount(&genesis, asset_id, &args.amount, "amount")?;
    let body = if asset.kind == AssetKind::Fiat {
        if args.to.is_some() {
            bail!("fiat withdrawals pay the member's operating account; --to is for crypto assets");
        }
        TxBody::WithdrawFiat {
            asset: asset_id,
            amount,
        }
    } else {
        // The node's membership names members added by governance too (genesis does not).
        let name = &session.member_label(member);
        let chain = genesis
            .public_chain
            .as_ref()
            .ok_or_else(|| anyhow!("this genesis has no public_chain section"))?;
        let to = match args.to {
            Some(address) => address.to_ascii_lowercase(),
            None => chain
                .registered_addresses
                .iter()
                .find(|registered| &registered.member == name)
                .map(|registered| registered.address.0.clone())
                .ok_or_else(|| {
                    anyhow!("{name} has no registered public-chain address in genesis")
                })?,
        };
        if !chain.is_registered_to(name, &ChainAddress(to.clone())) {
            bail!("{to} is not a registered address of {name}; withdrawals go only to registered addresses");
        }
        TxBody::Withdraw {
            asset: asset_id,
            amount,
            to: ChainAddress(to),
        }
    };
    if args.wait_paid && asset.kind == AssetKind::Fiat {
        bail!("--wait-paid follows a payout on the public chain; a fiat payment shows in `seisan reconcile`");
    }
    if args.wait_paid && args.submit.no_wait {
        bail!("--wait-paid and --no-wait contradict each other");
    }
    let to = match &body {
        TxBody::Withdraw { to, .. } => Some(to.clone()),
        _ => None,
    };
    transact(&mut session, &args.submit, body)?;
    match to {
        Some(to) if args.wait_paid => wait_paid(&mut session, member, asset_id, amount, &to),
        _ => Ok(()),
    }
}

/// All withdrawals the node lists, oldest first, with the ids waiting for the hot wallet.
fn withdrawals(session: &Session) -> anyhow::Result<(Vec<Withdrawal>, Vec<WithdrawalId>)> {
    let all = super::commands::fetch_all(
        session,
        "/v1/withdrawals",
        |page: v1::Withdrawals| page.withdrawals,
        |w: &Withdrawal| w.id,
    )?;
    let first: v1::Withdrawals = session.node.get_json("/v1/withdrawals?limit=1")?;
    Ok((all, first.waiting_for_hot_wallet))
}

/// Waits until the newest withdrawal of `member` with these terms is paid and
/// attested, saying every [`PROGRESS_INTERVAL`] where it stands.
fn wait_paid(
    session: &mut Session,
    member: seisan_types::MemberId,
    asset: seisan_types::AssetId,
    amount: seisan_types::Amount,
    to: &ChainAddress,
) -> anyhow::Result<()> {
    let matches = |record: &&Withdrawal| {
        record.member == member
            && record.asset == asset
            && record.amount == amount
            && record.to == *to
    };
    let (list, _) = withdrawals(session)?;
    let id = list
        .iter()
        .rev()
        .find(matches)
        .map(|record| record.id)
        .ok_or_else(|| anyhow!("the node lists no withdrawal of these terms"))?;
    let quorum = session
        .membership()
        .map_or(session.genesis()?.quorum, |membership| membership.quorum);
    let started = Instant::now();
    // Says where the payout stands at once, then every PROGRESS_INTERVAL.
    let mut said: Option<Instant> = None;
    loop {
        let (list, waiting) = withdrawals(session)?;
        let record = list
            .iter()
            .find(|record| record.id == id)
            .ok_or_else(|| anyhow!("withdrawal {id} is no longer listed"))?;
        let stands = match &record.status {
            WithdrawalStatus::Completed { tx_hash } => {
                println!(
                    "withdrawal {id} paid on the public chain in {} and attested by a quorum",
                    tx_hash.0
                );
                return Ok(());
            }
            WithdrawalStatus::Sent { tx_hash } => format!(
                "sent in {}; attested by {} of the {quorum} validators needed",
                tx_hash.0,
                record.payout_attesters.len()
            ),
            WithdrawalStatus::Pending if waiting.contains(&id) => {
                "pending: the hot wallet holds less than it; the clearing house refills it from cold".to_string()
            }
            WithdrawalStatus::Pending => "pending: the clearing house has not paid it yet".to_string(),
        };
        if started.elapsed() > PAYOUT_WAIT {
            bail!(
                "withdrawal {id} was not paid within {} s ({stands}); see `seisan reserves`",
                PAYOUT_WAIT.as_secs()
            );
        }
        if said.is_none_or(|said| said.elapsed() >= PROGRESS_INTERVAL) {
            eprintln!(
                "  waiting for the payout of withdrawal {id} ({} s): {stands}",
                started.elapsed().as_secs()
            );
            said = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn reserves(options: ClientOptions) -> anyhow::Result<()> {
    let mut session = Session::open(&options)?;
    let answer = session.node.get("/v1/reserves")?;
    let document: v1::Reserves = session.node.decode("/v1/reserves", &answer)?;
    if session.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer).expect("JSON prints")
        );
    } else {
        print_reserves(session.genesis()?, &document);
    }
    if document.status == v1::ReservesStatus::Undercovered {
        bail!("custody does not cover the ledger (coverage below 100%)");
    }
    Ok(())
}

/// The proof of reserves as a table: one line per asset, then where the wallets are and
/// what waits for the hot wallet.
fn print_reserves(genesis: &seisan_types::Genesis, document: &v1::Reserves) {
    use super::describe::{decimal, percent};
    use super::text::{Align, Table};
    println!(
        "proof of reserves at public-chain block {} (ledger height {}): {}",
        document.public_chain_block,
        document.ledger_height,
        match document.status {
            v1::ReservesStatus::Covered => "covered",
            v1::ReservesStatus::Undercovered => "undercovered",
        }
    );
    let mut table = Table::new(&[
        ("ASSET", Align::Left),
        ("LEDGER", Align::Right),
        ("HOT", Align::Right),
        ("COLD", Align::Right),
        ("COVERAGE", Align::Right),
        ("HOT SHARE", Align::Right),
        ("CAP", Align::Right),
        ("STATUS", Align::Left),
    ]);
    for line in &document.assets {
        let over_cap = line
            .hot_share_bps
            .is_some_and(|share| share > u64::from(line.hot_cap_bps));
        let status = match (line.undercovered, over_cap) {
            (true, _) => "UNDERCOVERED",
            (false, true) => "hot over cap",
            (false, false) => "ok",
        };
        table.row(vec![
            line.symbol.clone(),
            decimal(genesis, line.asset, line.liabilities),
            decimal(genesis, line.asset, line.hot),
            decimal(genesis, line.asset, line.cold),
            line.coverage_bps.map_or("-".into(), percent),
            line.hot_share_bps.map_or("-".into(), percent),
            percent(u64::from(line.hot_cap_bps)),
            status.into(),
        ]);
    }
    print!("{}", table.render());
    println!(
        "hot {}  cold {}",
        document.hot_address, document.cold_address
    );
    if !document.waiting_for_hot_wallet.is_empty() {
        let ids: Vec<String> = document
            .waiting_for_hot_wallet
            .iter()
            .map(ToString::to_string)
            .collect();
        println!(
            "withdrawals waiting for the hot wallet: {} (refill it from cold)",
            ids.join(", ")
        );
    }
    if let Some(error) = &document.watcher_error {
        println!("watcher error: {error}");
    }
}

pub fn reconcile(options: ClientOptions) -> anyhow::Result<()> {
    let mut session = Session::open(&options)?;
    let answer = session.node.get("/v1/reconciliation")?;
    let document: v1::Reconciliation = session.node.decode("/v1/reconciliation", &answer)?;
    if session.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer).expect("JSON prints")
        );
    } else {
        let mut table = super::text::Table::new(&[
            ("CURRENCY", super::text::Align::Left),
            ("MEMBER", super::text::Align::Left),
            ("LEDGER", super::text::Align::Right),
            ("BANK TRUST", super::text::Align::Right),
            ("IN FLIGHT", super::text::Align::Right),
            ("UNEXPLAINED", super::text::Align::Right),
            ("OK", super::text::Align::Left),
        ]);
        // One block of lines per currency (an older node answers one currency).
        let currencies: Vec<(&String, &Vec<v1::ExchangeLine>)> = if document.currencies.is_empty() {
            vec![(&document.asset, &document.exchanges)]
        } else {
            document
                .currencies
                .iter()
                .map(|(code, currency)| (code, &currency.exchanges))
                .collect()
        };
        let lines = currencies
            .iter()
            .flat_map(|(code, lines)| lines.iter().map(move |line| (*code, line)));
        let genesis = session.genesis()?;
        for (code, line) in lines {
            // The node answers minor units (cents for USD); the table shows the
            // currency's own units, as every other table does.
            let spec = genesis.asset_by_symbol(code).map(|(_, spec)| spec);
            let units = |minor: i128| match spec {
                Some(spec) => {
                    let whole = spec.format_amount(seisan_types::Amount(minor.unsigned_abs()));
                    if minor < 0 {
                        format!("-{whole}")
                    } else {
                        whole
                    }
                }
                None => minor.to_string(),
            };
            // A missing amount (an account not read) shows as `-`.
            let amount = |text: Option<&String>| match text {
                Some(text) => text.parse::<i128>().map_or(text.clone(), &units),
                None => "-".to_string(),
            };
            let in_flight: i128 = [
                Some(&line.pending_withdrawals),
                Some(&line.unmirrored_settlement),
                line.unattested_credits.as_ref(),
                line.unattested_withdrawal_payments.as_ref(),
            ]
            .into_iter()
            .flatten()
            .filter_map(|text| text.parse::<i128>().ok())
            .sum();
            table.row(vec![
                code.clone(),
                line.member.clone(),
                amount(Some(&line.ledger_fiat)),
                amount(line.bank_trust.as_ref()),
                units(in_flight),
                amount(line.unexplained_difference.as_ref()),
                line.reconciled.to_string(),
            ]);
        }
        println!("{}", table.render());
        println!(
            "settlements awaiting the bank's confirmation on chain: {} pending, {} stalled (bound {} ms)",
            document.mirrors.pending, document.mirrors.stalled, document.mirror_confirm_bound_ms
        );
    }
    reconcile_verdict(document.clean, &document.outstanding)
}

/// Exit status of `seisan reconcile`: clean only when the node says so (every settled
/// fiat movement confirmed on chain, every trust balance agreeing with the ledger);
/// otherwise the error names what is outstanding. Pure.
pub fn reconcile_verdict(clean: bool, outstanding: &[String]) -> anyhow::Result<()> {
    if clean {
        return Ok(());
    }
    if outstanding.is_empty() {
        bail!("the node did not report the bank and the ledger reconciled, and named nothing outstanding");
    }
    bail!("not reconciled:\n  {}", outstanding.join("\n  "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reconcile_is_clean_only_when_the_node_says_so_and_names_what_is_outstanding() {
        assert!(reconcile_verdict(true, &[]).is_ok());
        let stalled = ["settlement settle-7-exchange-a-exchange-b (exchange-a -> exchange-b, 100) is stalled: not on the bank's statements".to_string()];
        let error = reconcile_verdict(false, &stalled).unwrap_err().to_string();
        assert!(error.contains("settle-7-exchange-a-exchange-b"), "{error}");
        assert!(error.contains("stalled"), "{error}");
        assert!(reconcile_verdict(false, &[]).is_err());
        // An older node's answer without the verdict is never taken as clean: it is
        // no reconciliation document at all.
        let error = super::super::session::decode_answer::<v1::Reconciliation>(
            "http://n",
            "/v1/reconciliation",
            &json!({"unexplained_total": "0"}),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("/v1/reconciliation"), "{error}");
    }
}
