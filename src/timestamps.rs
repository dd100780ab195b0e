//! `timestamptz` arguments as chrono times. PostgreSQL counts microseconds
//! from 2000-01-01 and has ±infinity; Zoho's times and cron schedules are
//! finite, so an infinite or out-of-range argument is an error naming it.

use chrono::{DateTime, Utc};
use pgrx::datum::TimestampWithTimeZone;

use crate::error::ZohoFdwError;

/// Microseconds from the Unix epoch to PostgreSQL's.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

fn out_of_range(what: &str) -> ZohoFdwError {
    ZohoFdwError::BadArgument { what: format!("{what} must be a finite time"), hint: Some("Give a date and time, not infinity.".into()) }
}

/// `t` as a chrono time; `what` names the argument in the error.
pub fn to_chrono(t: TimestampWithTimeZone, what: &str) -> Result<DateTime<Utc>, ZohoFdwError> {
    if t.is_infinity() || t.is_neg_infinity() {
        return Err(out_of_range(what));
    }
    let micros: i64 = t.into_inner();
    micros.checked_add(PG_EPOCH_MICROS).and_then(DateTime::from_timestamp_micros).ok_or_else(|| out_of_range(what))
}

/// A chrono time as `timestamptz`, or None past PostgreSQL's range.
pub fn from_chrono(t: DateTime<Utc>) -> Option<TimestampWithTimeZone> {
    t.timestamp_micros().checked_sub(PG_EPOCH_MICROS).and_then(|m| TimestampWithTimeZone::try_from(m).ok())
}
