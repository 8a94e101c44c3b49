//! Text for people: aligned tables, ISO 8601 UTC times, and the time arguments the
//! client accepts (RFC 3339, milliseconds since the epoch, or `+30s`-style offsets;
//! a time both sides of a trade must state identically takes no offset).
//!
//! Everything here is pure: the current time is passed in, so it is tested without a
//! clock.

use anyhow::{bail, Context};
use comfy_table::{presets::NOTHING, CellAlignment};
use jiff::Timestamp;

/// How a column's cells line up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table with a header row; columns are as wide as their widest cell (laid out by
/// `comfy-table` without borders, so scripts can split its lines on whitespace).
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
        let mut table = comfy_table::Table::new();
        // No borders or rules: the columns alone, as the CLI has always printed them.
        table.load_preset(NOTHING);
        table.set_header(self.columns.iter().map(|(name, _)| name.as_str()));
        for row in &self.rows {
            table.add_row(row.iter().map(String::as_str));
        }
        for (column, (_, align)) in table.column_iter_mut().zip(&self.columns) {
            // Two spaces between columns; the last column's padding is trimmed below.
            column.set_padding((0, 2));
            column.set_cell_alignment(match align {
                Align::Left => CellAlignment::Left,
                Align::Right => CellAlignment::Right,
            });
        }
        let mut out = table.trim_fmt();
        out.push('\n');
        out
    }
}

/// Milliseconds since the epoch as ISO 8601 UTC: `2026-01-01T00:00:00Z`, with
/// milliseconds only when they are not zero (`2026-01-01T00:00:00.250Z`).
pub fn format_time_ms(ms: u64) -> String {
    let Some(time) = i64::try_from(ms)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
    else {
        // Past jiff's range (year 9999): no time a member states is that far away.
        return format!("{ms} ms");
    };
    if ms.is_multiple_of(1000) {
        format!("{time:.0}")
    } else {
        format!("{time:.3}")
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

/// RFC 3339 with an explicit offset (`Z` or `+09:00`), read by jiff.
fn parse_rfc3339(text: &str) -> anyhow::Result<u64> {
    let time: Timestamp = text.parse()?;
    u64::try_from(time.as_millisecond()).map_err(|_| anyhow::anyhow!("before 1970"))
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
            "2026-02-30T00:00:00Z",
            "1969-12-31T23:59:59Z",
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
    fn table_aligns_columns() {
        let mut table = Table::new(&[("ASSET", Align::Left), ("AMOUNT", Align::Right)]);
        table.row(vec!["ETH".into(), "3".into()]);
        table.row(vec!["JPY".into(), "100000".into()]);
        assert_eq!(
            table.render(),
            "ASSET  AMOUNT\nETH         3\nJPY    100000\n"
        );
        // An empty last cell leaves no trailing spaces; a wide header widens its column.
        let mut table = Table::new(&[
            ("ID", Align::Right),
            ("NETTING (gross -> net)", Align::Left),
            ("NOTE", Align::Left),
        ]);
        table.row(vec!["12".into(), "-".into(), String::new()]);
        assert_eq!(table.render(), "ID  NETTING (gross -> net)  NOTE\n12  -\n");
    }
}
