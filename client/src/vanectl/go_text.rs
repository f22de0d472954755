//! The bits of Go's text formatting that etcdctl's output is made of: `%q` quoting,
//! `time.Duration` strings, go-humanize's byte sizes, `--hex` escapes, and Go's duration
//! syntax for `--dial-timeout=2s`. Reproduced here so that vanectl prints what etcdctl
//! prints, byte for byte, and accepts the flag values etcdctl accepts.

use std::fmt::Write as _;
use std::time::Duration;

/// Go's `strconv.Quote` of bytes taken as a string (etcdctl's `%q`): printable text as
/// is, the usual backslash escapes, `\xNN` for bytes that are not UTF-8 or ASCII control
/// characters, `\uNNNN` for other non-printable characters.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{b}' => out.push_str("\\v"),
                ' ' => out.push(' '),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() || c.is_whitespace() => {
                    if (c as u32) < 0x10000 {
                        let _ = write!(out, "\\u{:04x}", c as u32);
                    } else {
                        let _ = write!(out, "\\U{:08x}", c as u32);
                    }
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out.push('"');
    out
}

/// etcdctl's `--hex` form of a key or value: every byte as `\xNN`.
pub fn hex_escaped(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 4);
    for byte in bytes {
        let _ = write!(out, "\\x{byte:02x}");
    }
    out
}

/// go-humanize's `Bytes`: SI units (base 1000), one decimal below 10 (`24576` is
/// `25 kB`, `1500` is `1.5 kB`), as etcdctl's `endpoint status` shows the database size.
pub fn humanize_bytes(size: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if size < 10 {
        return format!("{size} B");
    }
    let exponent = ((size as f64).ln() / 1000f64.ln()).floor() as usize;
    let exponent = exponent.min(UNITS.len() - 1);
    let scaled = size as f64 / 1000f64.powi(exponent as i32);
    let rounded = (scaled * 10.0 + 0.5).floor() / 10.0;
    if rounded < 10.0 {
        format!("{rounded:.1} {}", UNITS[exponent])
    } else {
        format!("{rounded:.0} {}", UNITS[exponent])
    }
}

/// Go's `time.Duration.String()`: `1.974893ms`, `5.001021787s`, `1m30s`, `0s`; how
/// etcdctl reports how long a health check took.
pub fn format_duration(duration: Duration) -> String {
    const NANOS_PER_SECOND: u128 = 1_000_000_000;
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", decimal(nanos, 1_000));
    }
    if nanos < NANOS_PER_SECOND {
        return format!("{}ms", decimal(nanos, 1_000_000));
    }
    let whole_seconds = nanos / NANOS_PER_SECOND;
    let hours = whole_seconds / 3600;
    let minutes = (whole_seconds / 60) % 60;
    let seconds_nanos = nanos - (hours * 3600 + minutes * 60) * NANOS_PER_SECOND;
    let mut out = String::new();
    if hours > 0 {
        let _ = write!(out, "{hours}h");
    }
    if hours > 0 || minutes > 0 {
        let _ = write!(out, "{minutes}m");
    }
    let _ = write!(out, "{}s", decimal(seconds_nanos, NANOS_PER_SECOND));
    out
}

/// `value / scale` with the fraction's trailing zeros (and a bare point) dropped.
fn decimal(value: u128, scale: u128) -> String {
    let whole = value / scale;
    let fraction = value % scale;
    if fraction == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Go's `time.ParseDuration` for non-negative durations: `2s`, `500ms`, `1m30s`, `1.5h`,
/// `0`. The value parser of `--dial-timeout` and `--command-timeout`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?} (use e.g. 500ms, 2s, 1m30s)");
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    if trimmed.is_empty() || trimmed.starts_with('-') {
        return Err(invalid());
    }
    let mut rest = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        if number_len == 0 {
            return Err(invalid());
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit: f64 = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total_nanos += number * nanos_per_unit;
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go_percent_q() {
        assert_eq!(quote(b"foo"), r#""foo""#);
        assert_eq!(quote(b"multi\nline"), r#""multi\nline""#);
        assert_eq!(quote(b"say \"hi\" \\"), r#""say \"hi\" \\""#);
        assert_eq!(quote(b"\x00\x01\x7f"), r#""\x00\x01\x7f""#);
        assert_eq!(quote(b"\xff\xfe"), r#""\xff\xfe""#);
        assert_eq!(quote("héllo ✓".as_bytes()), "\"héllo ✓\"");
        assert_eq!(quote("\u{a0}".as_bytes()), r#""\u00a0""#);
        assert_eq!(quote(b""), r#""""#);
    }

    #[test]
    fn hex_escapes_every_byte() {
        assert_eq!(hex_escaped(b"foo"), r"\x66\x6f\x6f");
        assert_eq!(hex_escaped(b""), "");
    }

    #[test]
    fn humanize_matches_go_humanize() {
        assert_eq!(humanize_bytes(0), "0 B");
        assert_eq!(humanize_bytes(9), "9 B");
        assert_eq!(humanize_bytes(24576), "25 kB");
        assert_eq!(humanize_bytes(1500), "1.5 kB");
        assert_eq!(humanize_bytes(20480), "20 kB");
        assert_eq!(humanize_bytes(999), "999 B");
        assert_eq!(humanize_bytes(1_000_000), "1.0 MB");
        assert_eq!(humanize_bytes(2_147_483_648), "2.1 GB");
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_nanos(850)), "850ns");
        assert_eq!(format_duration(Duration::from_nanos(1_000)), "1µs");
        assert_eq!(
            format_duration(Duration::from_nanos(1_974_893)),
            "1.974893ms"
        );
        assert_eq!(format_duration(Duration::from_millis(5)), "5ms");
        assert_eq!(
            format_duration(Duration::from_nanos(5_001_021_787)),
            "5.001021787s"
        );
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_duration(Duration::from_millis(61_500)), "1m1.5s");
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        for bad in ["", "5", "s", "-1s", "1x", "1.2.3s", "ms5"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
