//! The simulator's clock: real time plus an offset that the admin API moves
//! forward (token and channel expiry, page-token expiry, credit window,
//! Modified_Time of new writes).

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, FixedOffset, Utc};

#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// A clock `secs` ahead of this host's (behind when negative).
    pub fn skewed(secs: i64) -> Clock {
        Clock { offset_ms: AtomicI64::new(secs * 1000) }
    }
    pub fn now(&self) -> DateTime<Utc> {
        let now = Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst));
        // Zoho's datetimes carry no sub-second part.
        DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)
    }
    pub fn now_ms(&self) -> i64 {
        (Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))).timestamp_millis()
    }
    pub fn advance(&self, d: std::time::Duration) {
        self.offset_ms.fetch_add(d.as_millis() as i64, Ordering::SeqCst);
    }
}

/// `yyyy-MM-ddTHH:mm:ss±HH:MM` in the given zone.
pub fn fmt_dt(t: DateTime<Utc>, tz: FixedOffset) -> String {
    t.with_timezone(&tz).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// Parses an ISO 8601 datetime that carries an offset (or `Z`).
pub fn parse_dt(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim()).ok().map(|d| d.with_timezone(&Utc))
}

/// `+05:30` / `-08:00` / `Z` → FixedOffset.
pub fn parse_offset(s: &str) -> Option<FixedOffset> {
    let s = s.trim();
    if s == "Z" || s == "+00:00" || s == "-00:00" || s.is_empty() {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match s.as_bytes()[0] {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let h: i32 = h.parse().ok()?;
    let m: i32 = m.parse().ok()?;
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}
