//! Timestamps as logs write them: RFC 3339 / ISO 8601, epoch seconds with
//! a fraction, and the Common Log Format's `[29/Nov/2026:07:25:34 +0000]`.

use shadowmcp_exchange::Timestamp;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`, public-domain algorithm description).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// A UTC civil time plus an offset in seconds east of UTC.
fn civil_to_ts(
    (y, mo, d): (i64, u32, u32),
    (h, mi, s): (u32, u32, u32),
    nanos: u32,
    offset_secs: i64,
) -> Option<Timestamp> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
        return None;
    }
    // 60 allows a leap second (folded into the next minute).
    if s > 60 || !(0..=9999).contains(&y) {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400
        + i64::from(h) * 3600
        + i64::from(mi) * 60
        + i64::from(s)
        - offset_secs;
    Some(Timestamp::from_secs_nanos(secs, nanos))
}

/// Fixed-width decimal field.
fn num(s: &str, range: std::ops::Range<usize>) -> Option<u32> {
    let t = s.get(range)?;
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// Fraction digits (after the dot) as nanoseconds; extra digits ignored.
fn frac_nanos(digits: &str) -> Option<u32> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: u32 = 0;
    for i in 0..9 {
        let d = digits.as_bytes().get(i).map_or(0, |b| u32::from(b - b'0'));
        n = n * 10 + d;
    }
    Some(n)
}

/// `2026-11-29T07:25:34.147Z`, `2026-11-29 07:25:34+01:00`,
/// `...T07:25:34.147+0100`; no offset means UTC.
pub(crate) fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if s.len() < 19 || !s.is_char_boundary(19) {
        return None;
    }
    let sep = |i: usize, c: &[u8]| s.as_bytes().get(i).is_some_and(|b| c.contains(b));
    if !sep(4, b"-") || !sep(7, b"-") || !sep(10, b"Tt ") || !sep(13, b":") || !sep(16, b":") {
        return None;
    }
    let date = (i64::from(num(s, 0..4)?), num(s, 5..7)?, num(s, 8..10)?);
    let time = (num(s, 11..13)?, num(s, 14..16)?, num(s, 17..19)?);
    let mut rest = s.get(19..)?;
    let mut nanos = 0;
    if let Some(r) = rest.strip_prefix(['.', ',']) {
        let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        nanos = frac_nanos(r.get(..end)?)?;
        rest = r.get(end..)?;
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let o = rest.get(1..)?.replace(':', "");
            if o.len() != 4 {
                return None;
            }
            let (hh, mm) = (num(&o, 0..2)?, num(&o, 2..4)?);
            if hh > 23 || mm > 59 {
                return None;
            }
            sign * i64::from(hh * 3600 + mm * 60)
        }
    };
    civil_to_ts(date, time, nanos, offset)
}

/// Epoch seconds with an optional fraction: `1795935934.147`.
pub(crate) fn parse_epoch(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if int.is_empty() || int.len() > 12 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let nanos = match frac {
        Some("") => 0,
        Some(f) => frac_nanos(f)?,
        None => 0,
    };
    Some(Timestamp::from_secs_nanos(secs, nanos))
}

/// A JSON number of epoch seconds. Floats carry about microsecond
/// precision at today's epoch values, so the fraction is rounded to
/// microseconds (`1795935934.147` gives `.147000000`, not `.146999835`).
pub(crate) fn from_json_number(n: &serde_json::Number) -> Option<Timestamp> {
    if let Some(i) = n.as_i64() {
        return (0..=999_999_999_999)
            .contains(&i)
            .then(|| Timestamp::from_secs_nanos(i, 0));
    }
    let f = n.as_f64()?;
    if !f.is_finite() || !(0.0..1e12).contains(&f) {
        return None;
    }
    let secs = f.floor();
    let micros = ((f - secs) * 1e6).round();
    // Rounding can carry into the next second.
    let (secs, micros) = if micros >= 1e6 {
        (secs + 1.0, 0.0)
    } else {
        (secs, micros)
    };
    Some(Timestamp::from_secs_nanos(
        secs as i64,
        (micros as u32) * 1000,
    ))
}

/// Common/combined log date: `29/Nov/2026:07:25:34 +0000` (brackets
/// stripped by the caller).
pub(crate) fn parse_clf(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let (dt, zone) = s.split_once(' ').unwrap_or((s, "+0000"));
    let mut parts = dt.splitn(3, '/');
    let day: u32 = parts.next()?.parse().ok()?;
    let mon = parts.next()?;
    let rest = parts.next()?;
    let months = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let mo = months
        .iter()
        .position(|m| m.eq_ignore_ascii_case(mon))
        .and_then(|i| u32::try_from(i + 1).ok())?;
    let mut t = rest.split(':');
    let year: i64 = t.next()?.parse().ok()?;
    let h: u32 = t.next()?.parse().ok()?;
    let mi: u32 = t.next()?.parse().ok()?;
    let sec_part = t.next()?;
    if t.next().is_some() {
        return None;
    }
    let (sec, nanos) = match sec_part.split_once('.') {
        Some((a, f)) => (a.parse().ok()?, frac_nanos(f)?),
        None => (sec_part.parse().ok()?, 0),
    };
    let zone = zone.trim();
    let sign = match zone.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return None,
    };
    if zone.len() != 5 {
        return None;
    }
    let (hh, mm) = (num(zone, 1..3)?, num(zone, 3..5)?);
    civil_to_ts(
        (year, mo, day),
        (h, mi, sec),
        nanos,
        sign * i64::from(hh * 3600 + mm * 60),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_forms() {
        let t = parse_rfc3339("2026-11-29T07:25:34.147Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-29T07:25:34.147000000Z");
        let t = parse_rfc3339("2026-11-29T08:25:34.147+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-29T07:25:34.147000000Z");
        let t = parse_rfc3339("2026-11-29 02:25:34-0500").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-29T07:25:34.000000000Z");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap().as_nanos(), 0);
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-29T07:25:34+1",
            "2026-11-29",
            "x026-11-29T07:25:34Z",
            "2026-11-29T07:25:34.Z",
            "２026-11-29T07:25:34Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn epoch_and_json_numbers() {
        let t = parse_epoch("1795935934.147").unwrap();
        assert_eq!((t.secs(), t.subsec_nanos()), (1_795_935_934, 147_000_000));
        assert_eq!(parse_epoch("12").unwrap().secs(), 12);
        assert_eq!(parse_epoch("-1"), None);
        assert_eq!(parse_epoch("1e9"), None);
        let n: serde_json::Number = serde_json::from_str("1795935934.147").unwrap();
        let t = from_json_number(&n).unwrap();
        assert_eq!((t.secs(), t.subsec_nanos()), (1_795_935_934, 147_000_000));
        let n: serde_json::Number = serde_json::from_str("1795935934.9999999").unwrap();
        assert_eq!(from_json_number(&n).unwrap().secs(), 1_795_935_935);
        let n: serde_json::Number = serde_json::from_str("-5").unwrap();
        assert_eq!(from_json_number(&n), None);
    }

    #[test]
    fn clf_dates() {
        let t = parse_clf("29/Nov/2026:07:25:34 +0000").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-29T07:25:34.000000000Z");
        let t = parse_clf("29/Nov/2026:09:25:34 +0200").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-29T07:25:34.000000000Z");
        assert_eq!(parse_clf("29/Foo/2026:07:25:34 +0000"), None);
        assert_eq!(parse_clf("29/Nov/2026:07:25 +0000"), None);
    }
}
