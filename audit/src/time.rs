//! Human durations ("15m", "7d"), byte sizes ("1GiB") and time specs for `--since`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::AuditError;

/// Parse "100ms", "15m", "2h", "7d", "1w", "1h30m" or "0".
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: u128 = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!("expected a number at {:?}", &s[start..]));
        }
        let n: u128 = s[start..i].parse().map_err(|_| "number too large".to_string())?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let mult: u128 = match &s[ustart..i] {
            "ns" => 1,
            "us" => 1_000,
            "ms" => 1_000_000,
            "s" | "sec" => 1_000_000_000,
            "m" | "min" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            "w" => 7 * 86_400 * 1_000_000_000,
            "" => return Err("missing unit (use ms, s, m, h, d or w)".into()),
            u => return Err(format!("unknown unit {u:?} (use ms, s, m, h, d or w)")),
        };
        total =
            n.checked_mul(mult).and_then(|v| total.checked_add(v)).ok_or_else(|| "duration too large".to_string())?;
    }
    u64::try_from(total).map(Duration::from_nanos).map_err(|_| "duration too large".into())
}

/// Inverse of [`parse_duration`] using the largest unit that divides exactly.
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0".into();
    }
    const UNITS: [(u128, &str); 8] = [
        (7 * 86_400_000_000_000, "w"),
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    for (m, u) in UNITS {
        if ns.is_multiple_of(m) {
            return format!("{}{u}", ns / m);
        }
    }
    format!("{ns}ns")
}

/// Parse "1073741824", "512MiB", "1GB", "64k" (k/M/G/T are powers of 1024; kB/MB/GB of 1000).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(format!("expected a number in {s:?}"));
    }
    let n: u64 = num.parse().map_err(|_| "number too large".to_string())?;
    let mult: u64 = match unit.trim() {
        "" | "B" | "b" => 1,
        "k" | "K" | "KiB" | "kiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        u => {
            return Err(format!("unknown size unit {u:?} (use B, KiB, MiB, GiB, TiB)"));
        }
    };
    n.checked_mul(mult).ok_or_else(|| "size too large".into())
}

pub(crate) fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos().min(i64::MAX as u128) as i64).unwrap_or(0)
}

/// Parse an RFC 3339 timestamp into nanoseconds since the epoch.
pub fn parse_rfc3339_ns(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s).ok().and_then(|t| t.timestamp_nanos_opt())
}

/// `--since` / `--until`: a duration ago ("15m", "7d") or an RFC 3339 time.
pub fn parse_time_spec(s: &str, now_ns: i64) -> Result<i64, AuditError> {
    if let Some(ns) = parse_rfc3339_ns(s.trim()) {
        return Ok(ns);
    }
    match parse_duration(s) {
        Ok(d) => Ok(now_ns.saturating_sub(d.as_nanos().min(i64::MAX as u128) as i64)),
        Err(e) => Err(AuditError::Parse {
            what: "time",
            value: s.to_string(),
            reason: format!("expected a duration like 15m, 2h, 7d or an RFC 3339 time like 2026-11-25T17:04:41Z ({e})"),
        }),
    }
}

/// RFC 3339 with nanoseconds, UTC ("2026-11-25T17:04:41.123456789Z").
///
/// Hand-written because it runs once per event on the sensor's pipeline
/// thread (every event's `ts`): about ten times cheaper than chrono's
/// formatter, and checked against it in the tests.
pub fn format_rfc3339_ns(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    let (y, m, d) = civil_from_days(days);
    let mut b = *b"0000-00-00T00:00:00.000000000Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y as u32); // i64 ns spans 1677..2262
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, sod / 3600);
    put(14, 2, sod / 60 % 60);
    put(17, 2, sod % 60);
    put(20, 9, nanos);
    // Only ASCII digits and separators were written.
    String::from_utf8_lossy(&b).into_owned()
}

/// (year, month, day) of a day count since 1970-01-01 in the proleptic
/// Gregorian calendar (the 400-year-era method).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the year starting in March
    let mp = (5 * doy + 2) / 153; // month from March = 0
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Compact UTC time for table output ("2026-11-25 17:04:41.123").
pub(crate) fn format_short(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_formatting_agrees_with_chrono() {
        let chrono_fmt =
            |ns: i64| chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut cases = vec![0, -1, 1, i64::MIN, i64::MAX, 951_782_400_000_000_000 /* 2000-02-29 */];
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push(x as i64);
        }
        for ns in cases {
            assert_eq!(format_rfc3339_ns(ns), chrono_fmt(ns), "{ns}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "15", "m", "3x", "99999999999999999999999w", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for d in ["3d", "100ms", "90s", "2w", "0"] {
            assert_eq!(format_duration(parse_duration(d).unwrap()), d);
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("512MB").unwrap(), 512_000_000);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("1XB").is_err());
        assert!(parse_bytes("GiB").is_err());
    }

    #[test]
    fn time_specs() {
        let now = 1_000_000_000_000_000_000;
        assert_eq!(parse_time_spec("15m", now).unwrap(), now - 900_000_000_000);
        assert_eq!(
            parse_time_spec("2026-11-25T17:04:41.5Z", now).unwrap(),
            parse_rfc3339_ns("2026-11-25T17:04:41.500Z").unwrap()
        );
        let e = parse_time_spec("yesterday", now).unwrap_err().to_string();
        assert!(e.contains("yesterday") && e.contains("RFC 3339"), "{e}");
    }
}
