//! Text for people: aligned tables, ISO 8601 UTC times, and the time arguments the
//! client accepts (RFC 3339, milliseconds since the epoch, or `+30s`-style offsets;
//! a time both sides of a trade must state identically takes no offset).
//!
//! Everything here is pure: the current time is passed in, so it is tested without a
//! clock.

use anyhow::{bail, Context};

/// How a column's cells line up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table with a header row; columns are as wide as their widest cell.
#[derive(Debug)]
pub struct Table {
    columns: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[(&str, Align)]) -> Table {
        Table {
            columns: columns
                .iter()
                .map(|(name, align)| (name.to_string(), *align))
                .collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.columns.len(), "one cell per column");
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines, columns two spaces apart, no trailing spaces.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.columns.iter().map(|(name, _)| name.len()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.columns.iter().map(|(name, _)| name.clone()).collect();
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (index, cell) in row.iter().enumerate() {
                if index > 0 {
                    line.push_str("  ");
                }
                let pad = widths[index].saturating_sub(cell.chars().count());
                match self.columns[index].1 {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&" ".repeat(pad));
                    }
                    Align::Right => {
                        line.push_str(&" ".repeat(pad));
                        line.push_str(cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Milliseconds since the epoch as ISO 8601 UTC: `2026-01-01T00:00:00Z`, with
/// milliseconds only when they are not zero (`2026-01-01T00:00:00.250Z`).
pub fn format_time_ms(ms: u64) -> String {
    let seconds = (ms / 1000) as i64;
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let second_of_day = seconds.rem_euclid(86_400);
    let (hour, minute, second) = (
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    );
    let millis = ms % 1000;
    if millis == 0 {
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
    }
}

/// Parses a time given on the command line, relative to `now_ms`:
/// - `+30s`, `+5m`, `+2h`, `+1d`: that long after now;
/// - a whole number: milliseconds since the Unix epoch;
/// - RFC 3339: `2026-01-01T09:00:00Z`, `2026-01-01T18:00:00.5+09:00`.
pub fn parse_time(text: &str, now_ms: u64) -> anyhow::Result<u64> {
    let text = text.trim();
    if let Some(offset) = text.strip_prefix('+') {
        let (number, unit_ms) = match offset.char_indices().last() {
            Some((index, 's')) => (&offset[..index], 1000),
            Some((index, 'm')) => (&offset[..index], 60_000),
            Some((index, 'h')) => (&offset[..index], 3_600_000),
            Some((index, 'd')) => (&offset[..index], 86_400_000),
            _ => bail!("time {text:?}: an offset needs a unit, e.g. +30s, +5m, +2h, +1d"),
        };
        let count: u64 = number
            .parse()
            .with_context(|| format!("time {text:?}: {number:?} is not a whole number"))?;
        return count
            .checked_mul(unit_ms)
            .and_then(|offset| now_ms.checked_add(offset))
            .with_context(|| format!("time {text:?} is too far away"));
    }
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        return text
            .parse()
            .with_context(|| format!("time {text:?} is too large"));
    }
    parse_rfc3339(text).with_context(|| {
        format!("time {text:?} is not RFC 3339 (2026-01-01T09:00:00Z), milliseconds since the epoch, or an offset like +30s")
    })
}

/// Parses a time both sides of a trade must state identically (a confirmation's trade
/// time): RFC 3339 or milliseconds since the Unix epoch. An offset such as `+0s` is
/// refused: it would be read from the clock of each side when it sends, so the two
/// confirmations of one trade would carry different times and mismatch.
pub fn parse_agreed_time(text: &str) -> anyhow::Result<u64> {
    if text.trim().starts_with('+') {
        bail!(
            "trade time {text:?}: give the time the trade was agreed, the same on both sides \
             (RFC 3339 such as 2026-01-01T09:00:00Z, or ms since the epoch); an offset is read \
             from each side's own clock, so the two confirmations would mismatch on trade time"
        );
    }
    parse_time(text, 0)
}

fn parse_rfc3339(text: &str) -> anyhow::Result<u64> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> anyhow::Result<u32> {
        let part = text.get(range).context("too short")?;
        if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) {
            bail!("{part:?} is not a number");
        }
        Ok(part.parse()?)
    };
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        bail!("expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset");
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        bail!("a field is out of range");
    }
    let mut rest = &text[19..];
    let mut millis = 0u64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let length = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if length == 0 {
            bail!("empty fraction of a second");
        }
        let padded = format!("{:0<3}", &fraction[..length.min(3)]);
        millis = padded.parse()?;
        rest = &fraction[length..];
    }
    let offset_seconds: i64 = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => bail!("offset must start with + or -"),
            };
            let hours: i64 = rest[1..3].parse()?;
            let minutes: i64 = rest[4..6].parse()?;
            sign * (hours * 3600 + minutes * 60)
        }
        _ => bail!("expected Z or an offset like +09:00 at the end"),
    };
    let days = days_from_civil(i64::from(year), month, day);
    let seconds =
        days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second.min(59))
            - offset_seconds;
    if seconds < 0 {
        bail!("before 1970");
    }
    Ok(seconds as u64 * 1000 + millis)
}

/// Milliseconds since the epoch now, from the system clock (the shell's only clock).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time_ms(1_767_225_600_000), "2026-01-01T00:00:00Z");
        assert_eq!(format_time_ms(951_782_400_250), "2000-02-29T00:00:00.250Z");
        assert_eq!(format_time_ms(1_709_251_199_000), "2024-02-29T23:59:59Z");
    }

    #[test]
    fn parses_rfc3339_ms_and_offsets() {
        assert_eq!(
            parse_time("2026-01-01T00:00:00Z", 0).unwrap(),
            1_767_225_600_000
        );
        assert_eq!(
            parse_time("2026-01-01T09:00:00+09:00", 0).unwrap(),
            1_767_225_600_000
        );
        assert_eq!(
            parse_time("2000-02-29T00:00:00.25Z", 0).unwrap(),
            951_782_400_250
        );
        assert_eq!(parse_time("1767225600000", 0).unwrap(), 1_767_225_600_000);
        assert_eq!(parse_time("+30s", 1000).unwrap(), 31_000);
        assert_eq!(parse_time("+2h", 0).unwrap(), 7_200_000);
        for bad in [
            "tomorrow",
            "+30",
            "+xs",
            "2026-13-01T00:00:00Z",
            "2026-01-01T00:00:00",
            "",
        ] {
            assert!(parse_time(bad, 0).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn an_agreed_time_is_absolute_and_the_same_however_it_is_written() {
        // The same instant written in UTC, at +09:00 and in milliseconds.
        let utc = parse_agreed_time("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_agreed_time("2026-01-01T09:00:00+09:00").unwrap(), utc);
        assert_eq!(parse_agreed_time("1767225600000").unwrap(), utc);
        for relative in ["+0s", " +0s", "+30s", "+1d"] {
            let error = parse_agreed_time(relative).unwrap_err().to_string();
            assert!(error.contains("the same on both sides"), "{error}");
        }
        assert!(parse_agreed_time("now").is_err());
    }

    #[test]
    fn round_trips_every_day_for_a_few_centuries() {
        for day in (-1000..200_000).step_by(37) {
            let (year, month, day_of_month) = civil_from_days(day);
            assert_eq!(days_from_civil(year, month, day_of_month), day);
        }
    }

    #[test]
    fn table_aligns_columns() {
        let mut table = Table::new(&[("ASSET", Align::Left), ("AMOUNT", Align::Right)]);
        table.row(vec!["ETH".into(), "3".into()]);
        table.row(vec!["JPY".into(), "100000".into()]);
        assert_eq!(
            table.render(),
            "ASSET  AMOUNT\nETH         3\nJPY    100000\n"
        );
    }
}
