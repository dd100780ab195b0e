//! Rows Zoho keeps rejecting. A row is known by its key (the value Zoho
//! matches on) and the values it was sent with: sent `max_attempts` times
//! with the same values and rejected each time with the same code, it is
//! not sent again (every attempt is billed) until its values change or
//! `zoho_requeue(source)` forgets it. Kept in `zoho.push_rejections`.

use std::collections::HashSet;

use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use zoho_api::push::PushRow;

use crate::error::ZohoFdwError;

/// A row's key and a fingerprint of the values sent for it.
pub type Fingerprint = (String, String);

/// A row's key as the quarantine knows it.
pub fn key_of(row: &PushRow) -> String {
    match row.first() {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

pub fn fingerprint(row: &PushRow) -> Fingerprint {
    let key = key_of(row);
    // FNV-1a: the same on every build, unlike the standard library's
    // hasher, so a new release does not forget what it held back.
    let text = serde_json::Value::Array(row.clone()).to_string();
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (key, format!("{hash:016x}"))
}

/// The code of a rejection ("INVALID_DATA: …" or "INVALID_DATA Email"):
/// the same whichever API reported it.
fn code_of(reason: &str) -> &str {
    reason.split([':', ' ']).next().unwrap_or(reason)
}

fn spi_err(e: pgrx::spi::SpiError) -> ZohoFdwError {
    ZohoFdwError::Internal(format!("zoho.push_rejections: {e}"))
}

/// The rows of `source` that are not to be sent again.
pub fn load(spi: &mut SpiClient<'_>, source: pg_sys::Oid, max_attempts: i32) -> Result<HashSet<Fingerprint>, ZohoFdwError> {
    let rows = spi
        .select(
            "SELECT row_key, row_hash FROM zoho.push_rejections WHERE source = $1::oid::regclass AND attempts >= $2",
            None,
            &[source.into(), max_attempts.into()],
        )
        .map_err(spi_err)?;
    let mut out = HashSet::new();
    for r in rows {
        out.insert((r.get::<String>(1).map_err(spi_err)?.unwrap_or_default(), r.get::<String>(2).map_err(spi_err)?.unwrap_or_default()));
    }
    Ok(out)
}

/// Counts the rejections; returns how many rows reached `max_attempts` now.
pub fn record(spi: &mut SpiClient<'_>, source: pg_sys::Oid, rejected: &[(Fingerprint, String)], max_attempts: i32) -> Result<i64, ZohoFdwError> {
    if rejected.is_empty() {
        return Ok(0);
    }
    let keys: Vec<String> = rejected.iter().map(|((k, _), _)| k.clone()).collect();
    let hashes: Vec<String> = rejected.iter().map(|((_, h), _)| h.clone()).collect();
    let reasons: Vec<String> = rejected.iter().map(|(_, r)| r.clone()).collect();
    let codes: Vec<String> = rejected.iter().map(|(_, r)| code_of(r).to_string()).collect();
    let reached = spi
        .update(
            "WITH r AS (
               INSERT INTO zoho.push_rejections AS q (source, row_key, row_hash, code, reason)
               SELECT $1::oid::regclass, k, h, c, e FROM unnest($2::text[], $3::text[], $4::text[], $6::text[]) AS u(k, h, e, c)
               ON CONFLICT (source, row_key) DO UPDATE
                 SET attempts = CASE WHEN q.row_hash = EXCLUDED.row_hash AND q.code = EXCLUDED.code THEN q.attempts + 1 ELSE 1 END,
                     row_hash = EXCLUDED.row_hash, code = EXCLUDED.code, reason = EXCLUDED.reason, last_at = now()
               RETURNING q.attempts)
             SELECT count(*) FILTER (WHERE attempts = $5) FROM r",
            None,
            &[source.into(), keys.into(), hashes.into(), reasons.into(), max_attempts.into(), codes.into()],
        )
        .and_then(|t| t.first().get_one::<i64>())
        .map_err(spi_err)?
        .unwrap_or(0);
    if reached > 0 {
        let payload = serde_json::json!({"event": "quarantined", "flow": "push", "source_oid": u32::from(source), "rows": reached});
        spi.update("SELECT pg_catalog.pg_notify('zoho_fdw_events', $1)", None, &[payload.to_string().into()]).map_err(spi_err)?;
    }
    Ok(reached)
}

/// Whether any row of `source` has a rejection on record: when none has,
/// a push need not forget any (only pushes record them, one at a time).
pub fn any(spi: &mut SpiClient<'_>, source: pg_sys::Oid) -> Result<bool, ZohoFdwError> {
    Ok(spi
        .select("SELECT EXISTS (SELECT 1 FROM zoho.push_rejections WHERE source = $1::oid::regclass)", None, &[source.into()])
        .and_then(|t| t.first().get_one::<bool>())
        .map_err(spi_err)?
        .unwrap_or(false))
}

/// Forgets the rejections of rows Zoho has now taken.
pub fn forget(spi: &mut SpiClient<'_>, source: pg_sys::Oid, keys: &[String]) -> Result<(), ZohoFdwError> {
    if keys.is_empty() {
        return Ok(());
    }
    spi.update(
        "DELETE FROM zoho.push_rejections WHERE source = $1::oid::regclass AND row_key = ANY($2)",
        None,
        &[source.into(), keys.to_vec().into()],
    )
    .map_err(spi_err)?;
    Ok(())
}
