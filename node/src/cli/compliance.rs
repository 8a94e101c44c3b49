//! `seisan compliance`: the daily compliance report (Payment Services Act art. 63-11,
//! Cabinet Office Ordinance art. 27) as a regulator or auditor reads it from any node,
//! an observer's included, and a member's end-of-day statement checked offline.
//!
//! `report --date YYYY-MM-DD` prints, per crypto asset, the customer holdings, the hot
//! and cold balances at the public-chain block matching the day's end and the cold
//! share against the 95% rule; per exchange and fiat currency, the customer fiat
//! against the trust balance; then every breach. `--out FILE` writes the node's JSON
//! answer, `--json` prints it. The exit code is 1 when a rule is breached.
//!
//! `statement --date D --member M` fetches the member's statement kept at the day's
//! last height and verifies it here against the genesis file: the balances, their
//! Merkle proofs under the certified state root and the quorum certificate.

use super::describe;
use super::proof::{verify_balance_proof, ProofDocument};
use super::session::Session;
use super::text::{format_time_ms, Align, Table};
use super::ClientOptions;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use seisan_types::{Amount, AssetId, Genesis};
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ComplianceCommand {
    #[command(subcommand)]
    pub action: ComplianceAction,
    #[command(flatten)]
    pub options: ClientOptions,
}

#[derive(Subcommand, Debug)]
pub enum ComplianceAction {
    /// The report of a business day: the recorded end of an ended day, or the day so
    /// far at the node's height for today. Exits 1 when a rule is breached.
    Report {
        /// The business day (`YYYY-MM-DD`, as the node's cut-off labels days) or `today`.
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: String,
        /// Also write the report (JSON) here.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// A member's end-of-day statement (balances with Merkle proofs at the day's last
    /// height), verified here against the genesis file.
    Statement {
        /// The business day (`YYYY-MM-DD`).
        #[arg(long, value_name = "YYYY-MM-DD", required_unless_present = "file")]
        date: Option<String>,
        /// Member name or id.
        #[arg(long, required_unless_present = "file")]
        member: Option<String>,
        /// Also write the statement (JSON) here.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Verify a saved statement (from `--out`) instead, with no node.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["date", "member", "out"])]
        file: Option<PathBuf>,
    },
    /// The business days this node recorded.
    Days,
}

pub fn run(command: ComplianceCommand) -> anyhow::Result<()> {
    let mut session = Session::open(&command.options)?;
    match command.action {
        ComplianceAction::Report { date, out } => report(&mut session, &date, out.as_deref()),
        ComplianceAction::Statement {
            date,
            member,
            out,
            file,
        } => {
            let document = match (file, date, member) {
                (Some(file), _, _) => {
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    serde_json::from_str(&text)
                        .with_context(|| format!("{} is not JSON", file.display()))?
                }
                (None, Some(date), Some(member)) => {
                    let document = session
                        .node
                        .get(&format!("/v1/compliance/{date}/statements/{member}"))?;
                    if let Some(path) = &out {
                        write(path, &document)?;
                    }
                    document
                }
                _ => bail!("pass --date and --member, or --file"),
            };
            statement(&mut session, document)
        }
        ComplianceAction::Days => days(&session),
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("JSON values print")
}

fn write(path: &Path, value: &Value) -> anyhow::Result<()> {
    std::fs::write(path, pretty(value) + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Basis points as a percentage with two decimals, `-` when absent.
fn percent(value: &Value) -> String {
    value.as_u64().map_or_else(
        || "-".into(),
        |bps| format!("{}.{:02}%", bps / 100, bps % 100),
    )
}

/// A minor-unit amount of the line's asset as a decimal when the genesis file is at
/// hand (minor units otherwise).
fn amount(genesis: Option<&Genesis>, line: &Value, name: &str) -> String {
    let value = &line[name];
    let (Some(genesis), Some(asset), Some(minor)) = (
        genesis,
        line["asset"].as_u64(),
        value.as_str().and_then(|text| text.parse::<u128>().ok()),
    ) else {
        return text(value);
    };
    describe::decimal(genesis, AssetId(asset as u32), Amount(minor))
}

fn report(session: &mut Session, date: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let document = session.node.get(&format!("/v1/compliance/{date}"))?;
    let genesis = session.genesis().ok().cloned();
    let genesis = genesis.as_ref();
    if let Some(path) = out {
        write(path, &document)?;
    }
    if session.json {
        println!("{}", pretty(&document));
    } else {
        let state = if document["final"] == Value::Bool(true) {
            "the day's last height"
        } else {
            "the day so far (not ended)"
        };
        println!(
            "compliance report {} (cut-off {} UTC), {state}: height {} at {}, state root {}",
            text(&document["date"]),
            text(&document["cutoff"]),
            text(&document["height"]),
            document["block_timestamp_ms"]
                .as_u64()
                .map_or_else(|| "-".into(), format_time_ms),
            text(&document["state_root"]),
        );
        println!(
            "public chain at block {}\n",
            text(&document["public_chain_block"])
        );
        let mut assets = Table::new(&[
            ("ASSET", Align::Left),
            ("CUSTOMER HOLDINGS", Align::Right),
            ("HOT", Align::Right),
            ("COLD", Align::Right),
            ("COLD SHARE", Align::Right),
            ("REQUIRED", Align::Right),
            ("COVERAGE", Align::Right),
        ]);
        for line in document["assets"].as_array().into_iter().flatten() {
            assets.row(vec![
                text(&line["symbol"]),
                amount(genesis, line, "customer_holdings"),
                amount(genesis, line, "hot"),
                amount(genesis, line, "cold"),
                percent(&line["cold_share_bps"]),
                percent(&line["required_cold_share_bps"]),
                percent(&line["coverage_bps"]),
            ]);
        }
        if !assets.is_empty() {
            println!("{}", assets.render());
        }
        let mut fiat = Table::new(&[
            ("EXCHANGE", Align::Left),
            ("CURRENCY", Align::Left),
            ("CUSTOMER FIAT", Align::Right),
            ("PENDING OUT", Align::Right),
            ("TRUST", Align::Right),
            ("COVERAGE", Align::Right),
        ]);
        for line in document["fiat"].as_array().into_iter().flatten() {
            let asset = genesis.and_then(|genesis| {
                genesis
                    .asset_by_symbol(line["currency"].as_str().unwrap_or_default())
                    .map(|(id, _)| id.0)
            });
            let line = &{
                let mut line = line.clone();
                line["asset"] = asset.into();
                line["trust_balance"] = line["trust"]["balance"].clone();
                line
            };
            fiat.row(vec![
                text(&line["member"]),
                text(&line["currency"]),
                amount(genesis, line, "customer_fiat"),
                amount(genesis, line, "pending_withdrawals"),
                match line["trust"]["read"].as_str() {
                    Some("read") => amount(genesis, line, "trust_balance"),
                    Some(other) => other.replace('_', " "),
                    None => "-".into(),
                },
                percent(&line["coverage_bps"]),
            ]);
        }
        if !fiat.is_empty() {
            println!("{}", fiat.render());
        }
        let breaches = document["breaches"].as_array().cloned().unwrap_or_default();
        if breaches.is_empty() {
            println!("breaches: none");
        }
        for breach in &breaches {
            println!(
                "BREACH {} {}: {}",
                text(&breach["rule"]),
                text(&breach["subject"]),
                text(&breach["detail"])
            );
        }
        for sentence in document["unverified"].as_array().into_iter().flatten() {
            println!("not verified: {}", text(sentence));
        }
        let statements = document["statements"].as_array().map_or(0, Vec::len);
        if statements > 0 {
            println!("end-of-day statements kept for {statements} members (seisan compliance statement --date {} --member NAME)", text(&document["date"]));
        }
    }
    let breaches = document["breaches"].as_array().map_or(0, Vec::len);
    if breaches > 0 {
        bail!(
            "{breaches} compliance rule(s) breached on {}",
            text(&document["date"])
        );
    }
    Ok(())
}

/// Verifies a statement against the genesis file and prints what it proves.
fn statement(session: &mut Session, document: Value) -> anyhow::Result<()> {
    let parsed: ProofDocument = serde_json::from_value(document.clone())
        .context("the node's statement is not a balance-proof document")?;
    let genesis = session.genesis()?.clone();
    let verified = verify_balance_proof(&genesis, parsed.member, &parsed)
        .map_err(|error| anyhow::anyhow!("statement REFUSED: {error}"))?;
    if session.json {
        println!("{}", pretty(&document));
        return Ok(());
    }
    let member = genesis
        .members
        .get(verified.member.0 as usize)
        .map_or_else(|| verified.member.to_string(), |entry| entry.name.clone());
    println!(
        "statement of {member}: verified against genesis at height {} (state root {}, certified by {} validators of epoch {})",
        verified.height,
        verified.state_root,
        verified.signers.len(),
        verified.epoch
    );
    let mut table = Table::new(&[
        ("ASSET", Align::Left),
        ("INVENTORY", Align::Right),
        ("LOCKED", Align::Right),
        ("CUSTOMERS", Align::Right),
    ]);
    for (asset, balance) in &verified.balances {
        let symbol = genesis
            .asset(*asset)
            .map_or_else(|| asset.to_string(), |spec| spec.symbol.clone());
        table.row(vec![
            symbol,
            describe::decimal(&genesis, *asset, balance.inventory),
            describe::decimal(&genesis, *asset, balance.locked),
            describe::decimal(&genesis, *asset, balance.customers),
        ]);
    }
    println!("{}", table.render());
    Ok(())
}

fn days(session: &Session) -> anyhow::Result<()> {
    let document = session.node.get("/v1/compliance/days")?;
    if session.json {
        println!("{}", pretty(&document));
        return Ok(());
    }
    println!(
        "business days end at {} UTC; today is {}",
        text(&document["cutoff"]),
        text(&document["today"])
    );
    let mut table = Table::new(&[("DATE", Align::Left), ("LAST HEIGHT", Align::Right)]);
    for day in document["days"].as_array().into_iter().flatten() {
        table.row(vec![text(&day["date"]), text(&day["height"])]);
    }
    if table.is_empty() {
        println!("no business day has ended on this node's chain yet");
    } else {
        println!("{}", table.render());
    }
    Ok(())
}
