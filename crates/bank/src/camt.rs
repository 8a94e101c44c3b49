//! ISO 20022 camt.053 (bank-to-customer statement, version 001.08) export.
//!
//! Hand-written and minimal: one `Stmt` per document with the account, the opening
//! (`OPBD`) and closing (`CLBD`) booked balances, and one booked `Ntry` per statement
//! entry carrying the bank's entry id (`NtryRef`, `AcctSvcrRef`) and the transfer
//! reference (`EndToEndId`). Every text is escaped, amounts are decimals in the
//! currency's scale, times are UTC. Pure: the caller supplies the entries and the
//! creation time.

use crate::adapter::{AccountId, Direction, Entry};
use seisan_types::amount::format_minor_units;
use seisan_types::Amount;
use std::fmt::Write;

/// The namespace of the camt.053 version written.
pub const CAMT_053_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08";

const MS_PER_DAY: u64 = 86_400_000;

/// A calendar date (proleptic Gregorian, UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Option<Date> {
        let mut parts = text.splitn(3, '-');
        let year: i64 = parts.next()?.parse().ok()?;
        let month: u32 = parts.next()?.parse().ok()?;
        let day: u32 = parts.next()?.parse().ok()?;
        let date = Date { year, month, day };
        let valid = (1970..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && Date::from_days(date.days()) == date;
        valid.then_some(date)
    }

    /// Days since 1970-01-01 (H. Hinnant's `days_from_civil`).
    pub fn days(self) -> i64 {
        let year = if self.month <= 2 {
            self.year - 1
        } else {
            self.year
        };
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let month = i64::from(self.month);
        let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5
            + i64::from(self.day)
            - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// The date `days` after 1970-01-01 (`civil_from_days`).
    pub fn from_days(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let mp = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        Date { year, month, day }
    }

    /// Milliseconds since the epoch at 00:00 UTC of this date (dates from 1970 on).
    pub fn start_ms(self) -> u64 {
        u64::try_from(self.days()).expect("dates from 1970") * MS_PER_DAY
    }

    pub fn of_ms(ms: u64) -> Date {
        Date::from_days(i64::try_from(ms / MS_PER_DAY).expect("bounded"))
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// `YYYY-MM-DDThh:mm:ss.sssZ`.
pub fn format_timestamp(ms: u64) -> String {
    let date = Date::of_ms(ms);
    let in_day = ms % MS_PER_DAY;
    format!(
        "{date}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// Escapes XML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            other => out.push(other),
        }
    }
    out
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

/// Writes the camt.053 document.
pub fn camt053(request: &StatementRequest<'_>) -> String {
    let currency = escape(request.currency);
    let amount = |value: Amount| format_minor_units(value.0, request.scale);
    let closing = request
        .entries
        .last()
        .map_or(request.opening, |entry| entry.balance_after);
    let statement_id = escape(&format!(
        "{}-{}-{}-{}",
        request.bank_name, request.account, request.from, request.to
    ));
    let created = format_timestamp(request.created_ms);
    let mut xml = String::new();
    let _ = writeln!(xml, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(xml, r#"<Document xmlns="{CAMT_053_NAMESPACE}">"#);
    let _ = writeln!(xml, "  <BkToCstmrStmt>");
    let _ = writeln!(
        xml,
        "    <GrpHdr><MsgId>{statement_id}</MsgId><CreDtTm>{created}</CreDtTm></GrpHdr>"
    );
    let _ = writeln!(xml, "    <Stmt>");
    let _ = writeln!(xml, "      <Id>{statement_id}</Id>");
    let _ = writeln!(xml, "      <CreDtTm>{created}</CreDtTm>");
    let _ = writeln!(
        xml,
        "      <FrToDt><FrDtTm>{}T00:00:00.000Z</FrDtTm><ToDtTm>{}T23:59:59.999Z</ToDtTm></FrToDt>",
        request.from, request.to
    );
    let _ = writeln!(
        xml,
        "      <Acct><Id><Othr><Id>{}</Id></Othr></Id><Ccy>{currency}</Ccy></Acct>",
        escape(&request.account.0)
    );
    for (code, value, date) in [
        ("OPBD", request.opening, request.from),
        ("CLBD", closing, request.to),
    ] {
        let _ = writeln!(
            xml,
            "      <Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"{currency}\">{}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{date}</Dt></Dt></Bal>",
            amount(value)
        );
    }
    for entry in request.entries {
        let indicator = match entry.direction {
            Direction::Credit => "CRDT",
            Direction::Debit => "DBIT",
        };
        let id = escape(&entry.id.0);
        let _ = writeln!(
            xml,
            "      <Ntry><NtryRef>{id}</NtryRef><Amt Ccy=\"{currency}\">{}</Amt><CdtDbtInd>{indicator}</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><DtTm>{}</DtTm></BookgDt><ValDt><Dt>{}</Dt></ValDt><AcctSvcrRef>{id}</AcctSvcrRef><BkTxCd><Prtry><Cd>TRF</Cd></Prtry></BkTxCd><NtryDtls><TxDtls><Refs><EndToEndId>{}</EndToEndId></Refs><AddtlTxInf>{}</AddtlTxInf></TxDtls></NtryDtls></Ntry>",
            amount(entry.amount),
            format_timestamp(entry.timestamp_ms),
            Date::of_ms(entry.timestamp_ms),
            escape(&entry.reference.0),
            escape(&entry.counterparty.0),
        );
    }
    let _ = writeln!(xml, "    </Stmt>");
    let _ = writeln!(xml, "  </BkToCstmrStmt>");
    let _ = writeln!(xml, "</Document>");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::{EntryId, TransferReference};

    #[test]
    fn dates_convert_both_ways() {
        let date = Date::parse("2026-11-24").unwrap();
        assert_eq!(Date::from_days(date.days()), date);
        assert_eq!(Date::parse("1970-01-01").unwrap().days(), 0);
        assert_eq!(Date::parse("2000-03-01").unwrap().days(), 11_017);
        assert!(Date::parse("2026-02-30").is_none());
        assert!(Date::parse("2026-13-01").is_none());
        assert_eq!(
            format_timestamp(86_400_000 + 3_723_004),
            "1970-01-02T01:02:03.004Z"
        );
    }

    #[test]
    fn statement_lists_entries_with_ids_references_and_balances() {
        let account = AccountId("exchange-a:trust".into());
        let entry = Entry {
            id: EntryId("E000000000007".into()),
            sequence: 7,
            account: account.clone(),
            direction: Direction::Credit,
            amount: Amount(200),
            counterparty: AccountId("exchange-a:operating".into()),
            reference: TransferReference("dep<&>1".into()),
            timestamp_ms: Date::parse("2026-11-24").unwrap().start_ms() + 1000,
            balance_after: Amount(250),
        };
        let xml = camt053(&StatementRequest {
            bank_name: "SEISJPJTXXX",
            account: &account,
            currency: "JPY",
            scale: 0,
            from: Date::parse("2026-11-24").unwrap(),
            to: Date::parse("2026-11-24").unwrap(),
            opening: Amount(50),
            entries: &[entry],
            created_ms: 0,
        });
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.08\">"));
        assert!(xml.contains(
            "<NtryRef>E000000000007</NtryRef><Amt Ccy=\"JPY\">200</Amt><CdtDbtInd>CRDT</CdtDbtInd>"
        ));
        assert!(xml.contains("<EndToEndId>dep&lt;&amp;&gt;1</EndToEndId>"));
        assert!(xml.contains("<Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"JPY\">50</Amt>"));
        assert!(xml.contains("<Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"JPY\">250</Amt>"));
        assert!(xml.contains("<BookgDt><DtTm>2026-11-24T00:00:01.000Z</DtTm></BookgDt>"));
        // Well formed: every opened element is closed, in order.
        let mut stack: Vec<String> = Vec::new();
        let mut rest = xml.as_str();
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').unwrap() + start;
            let tag = &rest[start + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('?') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name));
            } else {
                stack.push(tag.split_whitespace().next().unwrap().to_string());
            }
        }
        assert!(stack.is_empty(), "unclosed {stack:?}");
    }
}
