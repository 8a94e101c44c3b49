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
use super::proof::verify_balance_proof;
use super::session::Session;
use super::text::{format_time_ms, Align, Table};
use super::ClientOptions;
use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use seisan_api::v1::{BalanceProof, ComplianceDays, ComplianceReport, TrustReading};
use seisan_types::{Amount, AssetId, Genesis};
use serde_json::Value;
use std::fmt::Write as _;
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
            let (proof, as_sent) = match (file, date, member) {
                (Some(file), _, _) => read_statement(&file)?,
                (None, Some(date), Some(member)) => {
                    let path = format!("/v1/compliance/{date}/statements/{member}");
                    let answer = session.node.get(&path)?;
                    if let Some(out) = &out {
                        write(out, &answer)?;
                    }
                    (session.node.decode(&path, &answer)?, answer)
                }
                _ => bail!("pass --date and --member, or --file"),
            };
            statement(&mut session, &proof, &as_sent)
        }
        ComplianceAction::Days => days(&session),
    }
}

/// A statement saved with `--out`: the type, and the JSON as written (for `--json`).
fn read_statement(file: &Path) -> anyhow::Result<(BalanceProof, Value)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let proof = serde_json::from_str(&text).map_err(|error| {
        anyhow!(
            "{} is not a statement (a BalanceProof): {error}",
            file.display()
        )
    })?;
    let as_sent =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    Ok((proof, as_sent))
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("JSON values print")
}

fn write(path: &Path, value: &Value) -> anyhow::Result<()> {
    std::fs::write(path, pretty(value) + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

/// A value the report may not have (`null` in its JSON) as text, `-` when absent.
fn optional(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "-".into(), |value| value.to_string())
}

/// Basis points as a percentage with two decimals, `-` when absent.
fn percent(bps: Option<u64>) -> String {
    bps.map_or_else(|| "-".into(), describe::percent)
}

/// A minor-unit amount of `asset` as a decimal when the genesis file is at hand and
/// names the asset (minor units otherwise), `-` when absent.
fn amount(genesis: Option<&Genesis>, asset: Option<AssetId>, value: Option<Amount>) -> String {
    match (genesis, asset, value) {
        (Some(genesis), Some(asset), Some(value)) => describe::decimal(genesis, asset, value),
        (_, _, value) => optional(value),
    }
}

fn report(session: &mut Session, date: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let path = format!("/v1/compliance/{date}");
    let answer = session.node.get(&path)?;
    if let Some(out) = out {
        write(out, &answer)?;
    }
    if session.json {
        println!("{}", pretty(&answer));
    }
    let report: ComplianceReport = session.node.decode(&path, &answer)?;
    if !session.json {
        let genesis = session.genesis().ok().cloned();
        print!("{}", report_text(&report, genesis.as_ref()));
    }
    let breaches = report.breaches.len();
    if breaches > 0 {
        bail!("{breaches} compliance rule(s) breached on {}", report.date);
    }
    Ok(())
}

/// The report as `seisan compliance report` prints it; amounts as decimals when the
/// genesis file is at hand.
fn report_text(report: &ComplianceReport, genesis: Option<&Genesis>) -> String {
    // Writing to a String cannot fail.
    let mut text = String::new();
    let state = if report.is_final {
        "the day's last height"
    } else {
        "the day so far (not ended)"
    };
    writeln!(
        text,
        "compliance report {} (cut-off {} UTC), {state}: height {} at {}, state root {}",
        report.date,
        report.cutoff,
        report.height,
        format_time_ms(report.block_timestamp_ms),
        report.state_root,
    )
    .expect("writing to a String");
    writeln!(
        text,
        "public chain at block {}\n",
        optional(report.public_chain_block)
    )
    .expect("writing to a String");
    let mut assets = Table::new(&[
        ("ASSET", Align::Left),
        ("CUSTOMER HOLDINGS", Align::Right),
        ("HOT", Align::Right),
        ("COLD", Align::Right),
        ("COLD SHARE", Align::Right),
        ("REQUIRED", Align::Right),
        ("COVERAGE", Align::Right),
    ]);
    for line in &report.assets {
        let asset = Some(line.asset);
        assets.row(vec![
            line.symbol.clone(),
            amount(genesis, asset, Some(line.customer_holdings)),
            amount(genesis, asset, line.hot),
            amount(genesis, asset, line.cold),
            percent(line.cold_share_bps),
            percent(Some(line.required_cold_share_bps)),
            percent(line.coverage_bps),
        ]);
    }
    if !assets.is_empty() {
        writeln!(text, "{}", assets.render()).expect("writing to a String");
    }
    let mut fiat = Table::new(&[
        ("EXCHANGE", Align::Left),
        ("CURRENCY", Align::Left),
        ("CUSTOMER FIAT", Align::Right),
        ("PENDING OUT", Align::Right),
        ("TRUST", Align::Right),
        ("COVERAGE", Align::Right),
    ]);
    for line in &report.fiat {
        // The report names the currency; the genesis file says which asset (and so
        // which scale) that is.
        let asset = genesis
            .and_then(|genesis| genesis.asset_by_symbol(&line.currency))
            .map(|(id, _)| id);
        fiat.row(vec![
            line.member.clone(),
            line.currency.clone(),
            amount(genesis, asset, Some(line.customer_fiat)),
            amount(genesis, asset, Some(line.pending_withdrawals)),
            match &line.trust {
                TrustReading::Read { balance } => amount(genesis, asset, Some(*balance)),
                TrustReading::NoBank => "no bank".into(),
                TrustReading::Unreadable => "unreadable".into(),
                TrustReading::Failed { .. } => "failed".into(),
            },
            percent(line.coverage_bps),
        ]);
    }
    if !fiat.is_empty() {
        writeln!(text, "{}", fiat.render()).expect("writing to a String");
    }
    if report.breaches.is_empty() {
        writeln!(text, "breaches: none").expect("writing to a String");
    }
    for breach in &report.breaches {
        writeln!(
            text,
            "BREACH {} {}: {}",
            breach.rule, breach.subject, breach.detail
        )
        .expect("writing to a String");
    }
    for sentence in &report.unverified {
        writeln!(text, "not verified: {sentence}").expect("writing to a String");
    }
    let statements = report.statements.len();
    if statements > 0 {
        writeln!(text, "end-of-day statements kept for {statements} members (seisan compliance statement --date {} --member NAME)", report.date).expect("writing to a String");
    }
    text
}

/// Verifies a statement against the genesis file and prints what it proves (`--json`:
/// the statement as the node sent it).
fn statement(session: &mut Session, proof: &BalanceProof, as_sent: &Value) -> anyhow::Result<()> {
    let genesis = session.genesis()?.clone();
    let verified = verify_balance_proof(&genesis, proof.member, proof)
        .map_err(|error| anyhow!("statement REFUSED: {error}"))?;
    if session.json {
        println!("{}", pretty(as_sent));
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
    const PATH: &str = "/v1/compliance/days";
    let answer = session.node.get(PATH)?;
    if session.json {
        println!("{}", pretty(&answer));
        return Ok(());
    }
    let ComplianceDays {
        cutoff,
        today,
        days,
    } = session.node.decode(PATH, &answer)?;
    println!("business days end at {cutoff} UTC; today is {today}");
    let mut table = Table::new(&[("DATE", Align::Left), ("LAST HEIGHT", Align::Right)]);
    for day in &days {
        table.row(vec![day.date.clone(), day.height.to_string()]);
    }
    if table.is_empty() {
        println!("no business day has ended on this node's chain yet");
    } else {
        println!("{}", table.render());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis_command::testnet_genesis;
    use seisan_api::v1::{AssetLine, BreachLine, FiatLine};
    use seisan_types::hash::Hash;
    use seisan_types::ids::Height;

    const ETH: u128 = 1_000_000_000_000_000_000;

    fn fiat(member: &str, currency: &str, customer: u128, trust: TrustReading) -> FiatLine {
        FiatLine {
            member: member.into(),
            currency: currency.into(),
            customer_fiat: Amount(customer),
            pending_withdrawals: Amount(20),
            owed: Amount(customer + 20),
            trust,
            coverage_bps: None,
        }
    }

    /// A recorded day with an ETH line short of cold storage, three fiat lines (trust
    /// read, no bank, failed; USD is no asset of the testnet genesis) and a breach.
    fn breached_day() -> ComplianceReport {
        ComplianceReport {
            date: "2027-01-15".into(),
            cutoff: "15:00:00".into(),
            day_end_ms: 1_800_025_200_000,
            is_final: true,
            height: Height(42),
            block_hash: Hash::tagged(b"block", &[]),
            block_timestamp_ms: 1_800_000_000_000,
            state_root: Hash::tagged(b"root", &[]),
            public_chain_block: Some(9_001),
            public_chain_block_time_s: Some(1_799_999_990),
            assets: vec![AssetLine {
                asset: AssetId(0),
                symbol: "ETH".into(),
                customer_holdings: Amount(10 * ETH),
                balances: Amount(10 * ETH),
                pending_withdrawals: Amount(0),
                hot: Some(Amount(3 * ETH)),
                cold: Some(Amount(8 * ETH + ETH / 2)),
                cold_share_bps: Some(8_500),
                required_cold_share_bps: 9_500,
                hot_share_bps: Some(2_608),
                coverage_bps: Some(11_500),
            }],
            fiat: vec![
                FiatLine {
                    coverage_bps: Some(10_000),
                    ..fiat(
                        "exchange-a",
                        "JPY",
                        980,
                        TrustReading::Read {
                            balance: Amount(1_000),
                        },
                    )
                },
                fiat("exchange-b", "JPY", 500, TrustReading::NoBank),
                fiat(
                    "exchange-c",
                    "USD",
                    12_345,
                    TrustReading::Failed {
                        reason: "connection refused".into(),
                    },
                ),
            ],
            breaches: vec![BreachLine {
                rule: "cold_share".into(),
                subject: "ETH".into(),
                detail: "85.00% of customer holdings cold, 95.00% required".into(),
            }],
            unverified: vec!["exchange-b/JPY: this node has no bank connection".into()],
            compliant: false,
            statements: vec!["exchange-a".into(), "exchange-b".into()],
        }
    }

    /// The cells of the table row starting with `first` (and `second`, when given).
    fn row(text: &str, first: &str, second: Option<&str>) -> Vec<String> {
        text.lines()
            .map(|line| {
                line.split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .find(|cells| {
                cells.first().map(String::as_str) == Some(first)
                    && second.is_none_or(|second| cells.get(1).map(String::as_str) == Some(second))
            })
            .unwrap_or_else(|| panic!("no row {first} {second:?} in:\n{text}"))
    }

    #[test]
    fn a_report_prints_amounts_in_the_genesis_assets_and_every_breach() {
        let genesis = testnet_genesis(7201, 0);
        let report = breached_day();
        let text = report_text(&report, Some(&genesis));
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(
                format!(
                    "compliance report 2027-01-15 (cut-off 15:00:00 UTC), the day's last height: height 42 at 2027-01-15T08:00:00Z, state root {}",
                    report.state_root.to_hex()
                )
                .as_str()
            )
        );
        assert_eq!(lines.next(), Some("public chain at block 9001"));
        assert_eq!(lines.next(), Some(""));
        assert_eq!(
            row(&text, "ETH", None),
            ["ETH", "10", "3", "8.5", "85.00%", "95.00%", "115.00%"]
        );
        assert_eq!(
            row(&text, "exchange-a", None),
            ["exchange-a", "JPY", "980", "20", "1000", "100.00%"]
        );
        // The trust column says why there is no balance; no coverage without one.
        assert_eq!(
            row(&text, "exchange-b", None),
            ["exchange-b", "JPY", "500", "20", "no", "bank", "-"]
        );
        // A currency the genesis file does not name stays in minor units.
        assert_eq!(
            row(&text, "exchange-c", None),
            ["exchange-c", "USD", "12345", "20", "failed", "-"]
        );
        let tail: Vec<&str> = text.lines().rev().take(3).collect();
        assert_eq!(
            tail,
            [
                "end-of-day statements kept for 2 members (seisan compliance statement --date 2027-01-15 --member NAME)",
                "not verified: exchange-b/JPY: this node has no bank connection",
                "BREACH cold_share ETH: 85.00% of customer holdings cold, 95.00% required",
            ]
        );
        assert!(!text.contains("breaches: none"), "{text}");
    }

    #[test]
    fn without_genesis_a_report_prints_minor_units_and_dashes_for_what_was_not_read() {
        let mut report = breached_day();
        report.is_final = false;
        report.public_chain_block = None;
        report.assets[0].hot = None;
        report.assets[0].cold = None;
        report.assets[0].cold_share_bps = None;
        report.assets[0].coverage_bps = None;
        report.breaches.clear();
        report.unverified.clear();
        report.statements.clear();
        let text = report_text(&report, None);
        assert!(
            text.lines()
                .next()
                .is_some_and(|line| line.contains("the day so far (not ended): height 42")),
            "{text}"
        );
        assert!(text.contains("public chain at block -\n"), "{text}");
        assert_eq!(
            row(&text, "ETH", None),
            ["ETH", "10000000000000000000", "-", "-", "-", "95.00%", "-"]
        );
        assert_eq!(
            row(&text, "exchange-a", Some("JPY")),
            ["exchange-a", "JPY", "980", "20", "1000", "100.00%"]
        );
        assert_eq!(text.lines().last(), Some("breaches: none"));
        assert!(!text.contains("end-of-day statements"), "{text}");
    }

    #[test]
    fn a_saved_statement_that_is_no_balance_proof_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("statement.json");
        std::fs::write(&file, r#"{"member": 0}"#).expect("written");
        let error = read_statement(&file)
            .expect_err("a statement without its proof")
            .to_string();
        assert!(
            error.starts_with(&format!(
                "{} is not a statement (a BalanceProof): ",
                file.display()
            )),
            "{error}"
        );
        assert!(error.contains("missing field"), "{error}");
        std::fs::write(&file, "{").expect("written");
        let error = read_statement(&file).expect_err("not JSON").to_string();
        assert!(error.contains("EOF while parsing"), "{error}");
    }
}
