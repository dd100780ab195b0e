//! `zoho_verify(target, repair)`: proof that a mirror equals Zoho, or the
//! list of what differs, found bucket by bucket (zoho_api::verify): one
//! COQL aggregate per span of `Modified_Time` on Zoho's side, one local
//! aggregate on ours. Spans are halved down to what one COQL page holds,
//! which is read record by record (ids and times, exact), or to a day,
//! whose count and bounds stand as proof unless they differ. With
//! `repair`, the differing records are read from Zoho by id and written
//! newer-wins; rows of records Zoho no longer has are deleted.
//!
//! It runs as its caller, whose privileges on the target PostgreSQL checks.
//! Edits made while it runs may show as differences; a repair of one is a
//! newer-wins write, so harmless.

use std::collections::HashMap;
use std::ffi::CStr;

use chrono::{DateTime, Utc};
use pgrx::prelude::*;
use pgrx::JsonB;
use zoho_api::verify::{compare, reconcile, Bucket, Differences, Span, Version};

use crate::error::{raise, ZohoFdwError};
use crate::export::{plan_target, Target};
use crate::runtime::block_on;
use crate::server;
use crate::steps::{InCaller, Steps};

/// A span this short, or this small on both sides, is read record by record.
const DAY: i64 = 86_400;
const ONE_PAGE: u64 = zoho_api::coql::MAX_LIMIT as u64;

type VerifyRows = TableIterator<'static, (name!(difference, String), name!(id, i64), name!(repaired, bool))>;

#[pg_extern(
    volatile,
    sql = r#"
CREATE FUNCTION zoho_verify(target regclass, repair boolean DEFAULT false, module text DEFAULT NULL, mapping jsonb DEFAULT NULL, server name DEFAULT NULL)
  RETURNS TABLE(difference text, id bigint, repaired boolean)
  VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'zoho_verify_wrapper';
COMMENT ON FUNCTION zoho_verify(regclass, boolean, text, jsonb, name) IS
  'Compare a mirror with its Zoho module, bucket by bucket of Modified_Time: one row per record missing from the mirror, extra in it, or stale; with repair, fix each by a targeted read. module, mapping and server default to the target''s pull, watch or export';
"#,
    requires = ["status_views"]
)]
fn zoho_verify(target: Option<pg_sys::Oid>, repair: Option<bool>, module: Option<&str>, mapping: Option<JsonB>, server: Option<&CStr>) -> VerifyRows {
    let target = target.unwrap_or_else(|| raise(ZohoFdwError::BadArgument { what: "target must not be NULL".into(), hint: None }));
    let server = server.map(|c| c.to_string_lossy().into_owned());
    let flow = Flow::find(target, module, mapping.map(|j| j.0), server).unwrap_or_else(|e| raise(e));
    let v = verify(target, &flow, repair.unwrap_or(false), &mut InCaller).unwrap_or_else(|e| raise(e));
    TableIterator::new(v.rows)
}

/// The module a target mirrors, and how: given, or the target's flow.
pub(crate) struct Flow {
    pub module: String,
    pub mapping: Option<serde_json::Value>,
    pub server: Option<String>,
}

/// One verification: a row per difference, and what it took.
pub(crate) struct Verified {
    pub rows: Vec<(String, i64, bool)>,
    pub compared: u64,
    pub differing: u64,
    pub calls: u64,
    pub credits: u64,
}

impl Verified {
    /// `{"missing", "extra", "stale", "repaired", "buckets", "differing", "calls", "credits"}`.
    pub fn summary(&self) -> serde_json::Value {
        let n = |kind: &str| self.rows.iter().filter(|r| r.0 == kind).count();
        serde_json::json!({
            "missing": n("missing"), "extra": n("extra"), "stale": n("stale"),
            "repaired": self.rows.iter().filter(|r| r.2).count(),
            "buckets": self.compared, "differing": self.differing, "calls": self.calls, "credits": self.credits,
        })
    }
}

impl Flow {
    fn find(target: pg_sys::Oid, module: Option<&str>, mapping: Option<serde_json::Value>, server: Option<String>) -> Result<Flow, ZohoFdwError> {
        if let Some(m) = module {
            return Ok(Flow { module: m.to_string(), mapping, server });
        }
        // Row-level security shows the caller only flows it may see.
        let found = Spi::connect(|spi| {
            let r = spi.select(
                "SELECT module, mapping, server::text FROM (
                   SELECT module, mapping, server, 1 AS o FROM zoho.pull_schedules WHERE target::oid = $1
                   UNION ALL SELECT module, NULL, server, 2 FROM zoho.watches WHERE target::oid = $1
                   UNION ALL SELECT module, NULL, server, 3 FROM zoho.exports WHERE target::oid = $1) f
                 ORDER BY o LIMIT 1",
                None,
                &[target.into()],
            )?;
            if r.is_empty() {
                return Ok(None);
            }
            let row = r.first();
            Ok::<_, pgrx::spi::SpiError>(Some((row.get::<String>(1)?.unwrap_or_default(), row.get::<JsonB>(2)?.map(|j| j.0), row.get::<String>(3)?)))
        })?;
        let Some((module, found_mapping, found_server)) = found else {
            return Err(ZohoFdwError::BadArgument {
                what: format!("{} is not the target of a pull, a watch or an export, so its module is not known", crate::push::qualified_name(target)),
                hint: Some("Name it: zoho_verify(target, module => 'Leads').".into()),
            });
        };
        Ok(Flow { module, mapping: mapping.or(found_mapping), server: server.or(found_server) })
    }
}

/// The mirror's side: the same questions asked of the local table.
struct Local<'a> {
    target: &'a Target,
    /// `Modified_Time` as timestamptz (a `timestamp` column holds UTC).
    mt: String,
}

impl Local<'_> {
    fn spi_err(e: pgrx::spi::SpiError) -> ZohoFdwError {
        ZohoFdwError::Internal(format!("zoho_verify: {e}"))
    }

    fn within(span: Option<Span>, mt: &str) -> String {
        match span {
            None => format!("{mt} IS NOT NULL"),
            Some(s) => format!("{mt} >= to_timestamp({}) AND {mt} < to_timestamp({})", s.from.timestamp(), s.to.timestamp()),
        }
    }

    fn bucket(&self, steps: &mut impl Steps, span: Option<Span>) -> Result<Bucket, ZohoFdwError> {
        let sql = format!(
            "SELECT count(*), extract(epoch FROM date_trunc('second', min({mt})))::int8, extract(epoch FROM date_trunc('second', max({mt})))::int8 FROM {t} WHERE {w}",
            mt = self.mt,
            t = self.target.table.sql_name,
            w = Self::within(span, &self.mt)
        );
        steps.step(|spi| {
            let read = || -> Result<Bucket, pgrx::spi::SpiError> {
                let r = spi.select(&sql, None, &[])?;
                let row = r.first();
                let at = |s: Option<i64>| s.and_then(|s| DateTime::from_timestamp(s, 0));
                Ok(Bucket { count: row.get::<i64>(1)?.unwrap_or(0) as u64, earliest: at(row.get::<i64>(2)?), latest: at(row.get::<i64>(3)?) })
            };
            read().map_err(Self::spi_err)
        })
    }

    fn versions(&self, steps: &mut impl Steps, span: Span) -> Result<Vec<Version>, ZohoFdwError> {
        let sql = format!(
            "SELECT {id}::int8, extract(epoch FROM date_trunc('second', {mt}))::int8 FROM {t} WHERE {w}",
            id = self.target.columns[0].0.quoted(),
            mt = self.mt,
            t = self.target.table.sql_name,
            w = Self::within(Some(span), &self.mt)
        );
        steps.step(|spi| {
            spi.select(&sql, None, &[])
                .and_then(|rows| {
                    rows.map(|r| {
                        let id = r.get::<i64>(1)?.unwrap_or_default();
                        let at = r.get::<i64>(2)?.and_then(|s| DateTime::from_timestamp(s, 0)).unwrap_or_default();
                        Ok(Version { id, modified: at })
                    })
                    .collect::<Result<Vec<_>, pgrx::spi::SpiError>>()
                })
                .map_err(Self::spi_err)
        })
    }
}

/// Verifies in steps ([`crate::steps`]): each local question, and the
/// repair, in a step; Zoho's calls between them.
pub(crate) fn verify(target_oid: pg_sys::Oid, flow: &Flow, repair: bool, steps: &mut impl Steps) -> Result<Verified, ZohoFdwError> {
    let (ctx, client) = steps.step(|_| {
        let ctx = server::resolve(flow.server.as_deref())?;
        let client = ctx.shared_client()?;
        Ok((ctx, client))
    })?;
    let before = client.usage().total();
    let fields = ctx.module_fields(&client, &flow.module, "zoho_verify")?;
    let target = steps.step(|_| plan_target(target_oid, &flow.module, &fields, flow.mapping.as_ref()))?;
    let has_converted = fields.iter().any(|f| f.api_name == zoho_api::records::CONVERTED);
    let mt_col = &target.columns[1].0;
    let mt = if mt_col.type_oid == pg_sys::TIMESTAMPOID { format!("({} AT TIME ZONE 'UTC')", mt_col.quoted()) } else { mt_col.quoted() };
    let local = Local { target: &target, mt };
    let api = |e| ZohoFdwError::api(&ctx.name, e);

    let zoho_all = block_on(client.bucket(&flow.module, None, has_converted)).map_err(api)?;
    let ours_all = local.bucket(steps, None)?;
    let (mut compared, mut differing) = (1u64, 0u64);
    let mut found = Differences::default();
    // Versions read record by record, for pairing up moved records.
    let (mut zoho_at, mut ours_at): (HashMap<i64, DateTime<Utc>>, HashMap<i64, DateTime<Utc>>) = Default::default();
    let earliest = [zoho_all.earliest, ours_all.earliest].into_iter().flatten().min();
    let latest = [zoho_all.latest, ours_all.latest].into_iter().flatten().max();
    if let (Some(from), Some(to)) = (earliest, latest) {
        // A span's agreement proves little (a record moved within it keeps
        // its count and bounds), so spans are split whatever they say,
        // down to what one COQL page holds, which is compared record by
        // record, or to a day, whose count and bounds are taken as its
        // proof. A span empty on both sides needs nothing more.
        let mut spans = vec![(Span::covering(from, to), zoho_all, ours_all)];
        while let Some((span, zoho, ours)) = spans.pop() {
            pgrx::check_for_interrupts!();
            if !(zoho.agrees(&ours) && zoho.earliest == ours.earliest) {
                differing += 1;
            }
            if zoho.count == 0 && ours.count == 0 {
                continue;
            }
            let one_page = zoho.count <= ONE_PAGE && ours.count <= ONE_PAGE;
            let a_day = span.seconds() <= DAY;
            match span.halves() {
                Some((a, b)) if !one_page && !a_day => {
                    for half in [b, a] {
                        let z = block_on(client.bucket(&flow.module, Some(half), has_converted)).map_err(api)?;
                        let o = local.bucket(steps, Some(half))?;
                        compared += 1;
                        spans.push((half, z, o));
                    }
                }
                _ if !one_page && zoho.agrees(&ours) && zoho.earliest == ours.earliest => {}
                _ => {
                    let theirs = block_on(client.versions(&flow.module, span, has_converted)).map_err(api)?;
                    let mine = local.versions(steps, span)?;
                    zoho_at.extend(theirs.iter().map(|v| (v.id, v.modified)));
                    ours_at.extend(mine.iter().map(|v| (v.id, v.modified)));
                    found.extend(compare(&mine, &theirs));
                }
            }
        }
    }
    let found = reconcile(found, |id| zoho_at.get(&id).copied(), |id| ours_at.get(&id).copied());
    let mut out: Vec<(String, i64, bool)> = Vec::new();
    let mut fixed = 0u64;
    if repair && !found.is_empty() {
        // Read by id: what Zoho returns is written newer-wins, and an extra
        // row Zoho does not return is a record it no longer has.
        let ids: Vec<String> = found.missing.iter().chain(&found.stale).chain(&found.extra).map(i64::to_string).collect();
        let api_names: Vec<String> = target.columns.iter().map(|(_, f)| f.api_name.clone()).collect();
        let records = block_on(client.get_by_ids(&flow.module, &ids, &api_names)).map_err(api)?;
        let returned: std::collections::HashSet<i64> = records.iter().filter_map(|r| zoho_api::records::record_id(r)?.parse().ok()).collect();
        let gone: Vec<i64> = found.extra.iter().copied().filter(|id| !returned.contains(id)).collect();
        steps.step(|_| {
            crate::worker::apply::upsert(&target, &records, crate::worker::apply::clock_offset(&client))?;
            crate::worker::apply::delete(&target, &gone)
        })?;
        for (kind, ids) in [("missing", &found.missing), ("stale", &found.stale)] {
            out.extend(ids.iter().map(|id| (kind.to_string(), *id, returned.contains(id))));
        }
        out.extend(found.extra.iter().map(|id| ("extra".to_string(), *id, true)));
        fixed = out.iter().filter(|r| r.2).count() as u64;
    } else {
        for (kind, ids) in [("missing", &found.missing), ("extra", &found.extra), ("stale", &found.stale)] {
            out.extend(ids.iter().map(|id| (kind.to_string(), *id, false)));
        }
    }
    let after = client.usage().total();
    let calls = (after.calls + after.retries + after.errors) - (before.calls + before.retries + before.errors);
    let credits = after.credits - before.credits;
    notice!(
        "zoho_fdw: zoho_verify of {} against {}: {compared} bucket(s) compared, {differing} differing; {} missing, {} extra, {} stale{}; {} call(s), {} credit(s)",
        target.table.display,
        flow.module,
        found.missing.len(),
        found.extra.len(),
        found.stale.len(),
        if repair { format!(", {fixed} repaired") } else { String::new() },
        calls,
        credits
    );
    Ok(Verified { rows: out, compared, differing, calls, credits })
}
