//! Timestamps as nanoseconds since the Unix epoch, with the formats alerts use.

use std::fmt;

/// Nanoseconds since 1970-01-01T00:00:00Z (negative before it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_nanos(nanos: i64) -> Timestamp {
        Timestamp(nanos)
    }

    /// From seconds and a sub-second part in nanoseconds (saturating).
    pub fn from_secs_nanos(secs: i64, nanos: u32) -> Timestamp {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(nanos as i64),
        )
    }

    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_secs_nanos(d.as_secs() as i64, d.subsec_nanos())
    }

    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    pub fn subsec_nanos(self) -> u32 {
        self.0.rem_euclid(1_000_000_000) as u32
    }

    /// Suricata EVE format: `2023-11-14T22:13:20.123456+0000` (UTC).
    pub fn to_eve(self) -> String {
        let (y, mo, d, h, mi, s) = civil(self.secs());
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}+0000",
            self.subsec_nanos() / 1000
        )
    }

    /// RFC 3339 with nanoseconds: `2023-11-14T22:13:20.123456789Z`.
    pub fn to_rfc3339(self) -> String {
        let (y, mo, d, h, mi, s) = civil(self.secs());
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:09}Z",
            self.subsec_nanos()
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Seconds since the epoch → (year, month, day, hour, minute, second), UTC,
/// proleptic Gregorian (days-from-civil inverse, after H. Hinnant's
/// public-domain algorithm description).
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(
            Timestamp::from_nanos(0).to_eve(),
            "1970-01-01T00:00:00.000000+0000"
        );
        // 2000-02-29 (leap day) 12:34:56.5
        let t = Timestamp::from_secs_nanos(951_827_696, 500_000_000);
        assert_eq!(t.to_eve(), "2000-02-29T12:34:56.500000+0000");
        assert_eq!(t.to_rfc3339(), "2000-02-29T12:34:56.500000000Z");
        // 2026-11-29T07:05:09Z
        assert_eq!(
            Timestamp::from_secs_nanos(1_795_935_909, 0).to_rfc3339(),
            "2026-11-29T07:05:09.000000000Z"
        );
        // Before the epoch.
        assert_eq!(
            Timestamp::from_nanos(-1).to_rfc3339(),
            "1969-12-31T23:59:59.999999999Z"
        );
    }
}
