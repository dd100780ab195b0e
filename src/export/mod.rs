//! Zoho → legacy (the Kaizen flow's Bulk Read half): `zoho_create_mirror`
//! makes a table typed from a module's metadata, and `zoho_bulk_export`
//! fills any table with matching columns from Bulk Read jobs, page after
//! page, newer `Modified_Time` winning.
//!
//! Each page's zip streams through zoho-api (CSV parsed on a thread, cells
//! checked and turned into COPY text) into PostgreSQL's COPY machinery
//! ([`copy`]). Into an empty table, rows go straight in, under a lock that
//! makes concurrent writers (notifications) wait and apply after; otherwise
//! they go through a typed staging table and one
//! `INSERT … ON CONFLICT (id) DO UPDATE … WHERE older`. Memory stays flat:
//! a page is a temporary file, and rows pass through in small batches.
//!
//! [`mirror`] holds `zoho_create_mirror`.

mod copy;
mod mirror;

use std::ffi::CStr;

use pgrx::prelude::*;
use pgrx::JsonB;
use zoho_api::bulk_read::{BulkReadQuery, Criteria};
use zoho_api::copy_text::{CopyColumn, CopyText, Kind};
use zoho_api::metadata::FieldMeta;

use crate::error::{raise, ZohoFdwError};
use crate::local::{LocalColumn, LocalTable};
use crate::runtime::block_on;
use crate::server;


extension_sql_file!("../../sql/export.sql", name = "export_catalog");
extension_sql_file!("../../sql/watch.sql", name = "watch_catalog", requires = ["export_catalog"]);
extension_sql_file!("../../sql/schedule.sql", name = "schedule_catalog", requires = ["watch_catalog"]);
extension_sql_file!("../../sql/usage.sql", name = "usage_catalog", requires = ["schedule_catalog"]);
extension_sql_file!("../../sql/jobs.sql", name = "jobs_catalog", requires = ["usage_catalog", job_progress, cron_next]);
extension_sql_file!("../../sql/status.sql", name = "status_views", requires = ["jobs_catalog"]);

#[pg_extern(
    volatile,
    sql = r#"
CREATE FUNCTION zoho_bulk_export(module text, target regclass, since timestamptz DEFAULT NULL, mapping jsonb DEFAULT NULL, server name DEFAULT NULL)
  RETURNS bigint VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'zoho_bulk_export_wrapper';
COMMENT ON FUNCTION zoho_bulk_export(text, regclass, timestamptz, jsonb, name) IS
  'Bulk Read a Zoho module (every page; only rows modified since "since") into target, newer Modified_Time winning; returns rows written';
"#,
    requires = ["export_catalog"]
)]
fn zoho_bulk_export(module: Option<&str>, target: Option<pg_sys::Oid>, since: Option<pgrx::datum::TimestampWithTimeZone>, mapping: Option<JsonB>, server: Option<&CStr>) -> i64 {
    let required = |what: &str| ZohoFdwError::BadArgument { what: format!("{what} must not be NULL"), hint: None };
    let module = module.unwrap_or_else(|| raise(required("module")));
    let target = target.unwrap_or_else(|| raise(required("target")));
    let since = since.map(|t| {
        let micros: i64 = t.into_inner();
        // PostgreSQL's epoch is 2000-01-01.
        chrono::DateTime::from_timestamp_micros(micros + 946_684_800_000_000).expect("a timestamp in range").fixed_offset()
    });
    let server = server.map(|c| c.to_string_lossy().into_owned());
    let spec = Export { module, target, since, mapping: mapping.as_ref().map(|j| &j.0), server: server.as_deref(), formulas_only: false };
    export(&spec).unwrap_or_else(|e| raise(e))
}

/// One export: zoho_bulk_export's arguments, or a queued job's.
pub(crate) struct Export<'a> {
    pub module: &'a str,
    pub target: pg_sys::Oid,
    pub since: Option<chrono::DateTime<chrono::FixedOffset>>,
    pub mapping: Option<&'a serde_json::Value>,
    pub server: Option<&'a str>,
    /// Re-read only the formula fields (and id) and overwrite them in rows
    /// that exist: their changes do not move Modified_Time, so newer-wins
    /// cannot see them.
    pub formulas_only: bool,
}

/// The COPY kind for a local column's type.
fn kind_of(c: &LocalColumn) -> Kind {
    match c.type_oid {
        pg_sys::INT2OID => Kind::Int2,
        pg_sys::INT4OID => Kind::Int4,
        pg_sys::INT8OID => Kind::Int8,
        pg_sys::NUMERICOID => Kind::Numeric,
        pg_sys::FLOAT4OID | pg_sys::FLOAT8OID => Kind::Float,
        pg_sys::BOOLOID => Kind::Bool,
        pg_sys::DATEOID => Kind::Date,
        pg_sys::TIMESTAMPTZOID => Kind::Timestamptz,
        pg_sys::TIMESTAMPOID => Kind::Timestamp,
        pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID => Kind::Text,
        pg_sys::TEXTARRAYOID | pg_sys::VARCHARARRAYOID => Kind::TextArray,
        _ => Kind::Other,
    }
}

pub(crate) struct Target {
    pub table: LocalTable,
    /// (local column, Zoho field), `id` first, `Modified_Time` second.
    pub columns: Vec<(LocalColumn, FieldMeta)>,
}

pub(crate) fn plan_target(oid: pg_sys::Oid, module: &str, fields: &[FieldMeta], mapping: Option<&serde_json::Value>) -> Result<Target, ZohoFdwError> {
    let table = LocalTable::load(oid, "exported rows are written into a local table")?;
    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    let readable: Vec<FieldMeta> = fields.iter().filter(|f| crate::fdw::import::readable(f)).cloned().collect();
    let matching = zoho_api::mapping::match_columns(module, &names, &readable, mapping, false)
        .map_err(|e| ZohoFdwError::BadArgument { what: format!("{}: {e}", table.display), hint: Some("mapping is a JSON object of local column → Zoho field API name (or null to leave a column alone).".into()) })?;
    let mut columns: Vec<(LocalColumn, FieldMeta)> = matching.matched.iter().map(|m| (table.columns[m.column].clone(), m.field.clone())).collect();
    for (pos, api) in [(0, "id"), (1, "Modified_Time")] {
        let Some(i) = columns.iter().position(|(_, f)| f.api_name == api) else {
            return Err(ZohoFdwError::BadArgument {
                what: format!("no column of {} holds Zoho's {api}, which the export needs", table.display),
                hint: Some(format!(
                    "Add a column {} (or map one to {api}): records are matched on id and the newer Modified_Time wins.",
                    api.to_lowercase()
                )),
            });
        };
        let c = columns.remove(i);
        columns.insert(pos, c);
    }
    if !matching.unmatched.is_empty() {
        notice!("zoho_fdw: {} column(s) of {} match no field of {module} and keep their values: {}", matching.unmatched.len(), table.display, matching.unmatched.join(", "));
    }
    Ok(Target { table, columns })
}

/// Newer-wins needs a unique id to conflict on.
pub(crate) fn require_unique_id(spi: &pgrx::spi::SpiClient<'_>, t: &LocalTable, id_col: &LocalColumn) -> Result<(), ZohoFdwError> {
    let unique = spi
        .select(
            "SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = $1 AND i.indisunique AND i.indnatts = 1 AND i.indkey[0] = $2 AND i.indpred IS NULL)",
            None,
            &[t.oid.into(), id_col.attnum.into()],
        )
        .and_then(|r| r.first().get_one::<bool>())
        .map_err(spi_err)?
        .unwrap_or(false);
    if unique {
        return Ok(());
    }
    Err(ZohoFdwError::BadArgument {
        what: format!("column {} of {} has no unique index, so exported records cannot be matched to rows", id_col.name, t.display),
        hint: Some(format!("ALTER TABLE {} ADD PRIMARY KEY ({})", t.display, id_col.quoted())),
    })
}

fn spi_err(e: pgrx::spi::SpiError) -> ZohoFdwError {
    ZohoFdwError::Internal(format!("export: {e}"))
}

pub(crate) fn export(spec: &Export<'_>) -> Result<i64, ZohoFdwError> {
    let (module, target_oid, since) = (spec.module, spec.target, spec.since);
    let ctx = server::resolve(spec.server)?;
    let client = ctx.shared_client()?;
    let fields = ctx.module_fields(&client, module, "zoho_bulk_export")?;
    let mut target = plan_target(target_oid, module, &fields, spec.mapping)?;
    if spec.formulas_only {
        target.columns.retain(|(_, f)| f.api_name == "id" || f.is_computed());
        if target.columns.len() < 2 {
            return Err(ZohoFdwError::BadArgument { what: format!("no column of {} holds a formula field of {module}, so there is nothing to refresh", target.table.display), hint: None });
        }
    }
    let t = &target.table;
    let id_col = &target.columns[0].0;
    let col_list: Vec<String> = target.columns.iter().map(|(c, _)| c.quoted()).collect();
    let names: Vec<String> = target.columns.iter().map(|(c, _)| c.name.clone()).collect();

    Spi::connect_mut(|spi| -> Result<i64, ZohoFdwError> {
        let started = spi
            .select("SELECT clock_timestamp()", None, &[])
            .and_then(|r| r.first().get_one::<pgrx::datum::TimestampWithTimeZone>())
            .map_err(spi_err)?
            .expect("a timestamp");
        require_unique_id(spi, t, id_col)?;
        // Into an empty table rows go straight in. The lock makes other
        // writers (notifications) wait for the export and then apply their
        // newer rows over it; without it they could insert an id first.
        // A table with rows takes no lock beyond INSERT's own.
        let is_empty = |spi: &mut pgrx::spi::SpiClient<'_>| {
            spi.select(&format!("SELECT NOT EXISTS (SELECT 1 FROM {})", t.sql_name), None, &[])
                .and_then(|r| r.first().get_one::<bool>())
                .map_err(spi_err)
                .map(|b| b.unwrap_or(false))
        };
        let mut empty = !spec.formulas_only && is_empty(spi)?;
        if empty {
            spi.update(&format!("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE", t.sql_name), None, &[]).map_err(spi_err)?;
            empty = is_empty(spi)?;
        }
        let stage = if empty {
            None
        } else {
            // The worker runs exports as a restricted operation, which may
            // not create temporary tables; this fixed statement runs no user
            // code (no rows are read), so it steps outside for a moment.
            crate::privileges::unrestricted(|| {
                spi.update(
                    &format!("CREATE TEMP TABLE zoho_export_stage ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA", col_list.join(", "), t.sql_name),
                    None,
                    &[],
                )
            })
            .map_err(spi_err)?;
            let oid = spi
                .select("SELECT 'pg_temp.zoho_export_stage'::regclass::oid", None, &[])
                .and_then(|r| r.first().get_one::<pg_sys::Oid>())
                .map_err(spi_err)?
                .expect("the staging table exists");
            Some(oid)
        };
        let merge = if spec.formulas_only {
            let values = &col_list[1..];
            format!(
                "UPDATE {t} AS t SET {sets} FROM pg_temp.zoho_export_stage s WHERE t.{id} = s.{id} AND ({old}) IS DISTINCT FROM ({new})",
                t = t.sql_name,
                id = id_col.quoted(),
                sets = values.iter().map(|c| format!("{c} = s.{c}")).collect::<Vec<_>>().join(", "),
                old = values.iter().map(|c| format!("t.{c}")).collect::<Vec<_>>().join(", "),
                new = values.iter().map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", "),
            )
        } else {
            format!(
                "INSERT INTO {t} AS t ({cols}) SELECT {cols} FROM pg_temp.zoho_export_stage ON CONFLICT ({id}) DO UPDATE SET {sets} WHERE t.{mt} IS NULL OR t.{mt} < EXCLUDED.{mt} OR (t.{mt} = EXCLUDED.{mt} AND ROW({old}) IS DISTINCT FROM ROW({new}))",
                t = t.sql_name,
                cols = col_list.join(", "),
                id = id_col.quoted(),
                sets = col_list.iter().skip(1).map(|c| format!("{c} = EXCLUDED.{c}")).collect::<Vec<_>>().join(", "),
                mt = target.columns[1].0.quoted(),
                // Same second, other content: a second edit within one
                // second of Modified_Time's resolution.
                // As text: every type has that, not every type has `=` (json).
                old = col_list.iter().skip(1).map(|c| format!("t.{c}::text")).collect::<Vec<_>>().join(", "),
                new = col_list.iter().skip(1).map(|c| format!("EXCLUDED.{c}::text")).collect::<Vec<_>>().join(", "),
            )
        };

        let query = BulkReadQuery {
            module: module.to_string(),
            fields: target.columns.iter().map(|(_, f)| f.api_name.clone()).collect(),
            criteria: since.as_ref().map(Criteria::modified_since),
            cvid: None,
        };
        let mut pages = client.bulk_export(query);
        let mut written: i64 = 0;
        let mut page = 0;
        loop {
            page += 1;
            let mut notices = crate::progress::JobNotices::new(format!("{module} page {page}"));
            let mut progress = |j: &zoho_api::bulk_read::BulkReadJob| notices.seen(&j.id, &j.state, j.is_finished());
            let waited = std::time::Instant::now();
            let Some((job, file)) = block_on(pages.next_page_file(&mut progress)).map_err(|e| ZohoFdwError::api(&ctx.name, e))? else {
                break;
            };
            let zoho_ms = waited.elapsed().as_secs_f64() * 1e3;
            let applying = std::time::Instant::now();
            let wanted: Vec<(String, Kind, String)> = target.columns.iter().map(|(c, f)| (f.api_name.clone(), kind_of(c), c.name.clone())).collect();
            let plan: zoho_api::copy_text::Plan = Box::new(move |headers: &[String]| {
                let find = |api: &str| headers.iter().position(|h| h == api).or_else(|| headers.iter().position(|h| h.eq_ignore_ascii_case(api)));
                let columns = wanted
                    .iter()
                    .map(|(api, kind, name)| {
                        find(api)
                            .map(|cell| CopyColumn { cell, kind: *kind, name: name.clone() })
                            .ok_or_else(|| format!("the Bulk Read file has no column {api} (it has {})", headers.join(", ")))
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                let id_cell = columns[0].cell;
                Ok((columns, id_cell))
            });
            let text = CopyText::from_zip(file, plan).map_err(|e| ZohoFdwError::BadValue { table: t.display.clone(), what: format!("the Bulk Read file of page {page} cannot be read: {e}") })?;
            let count = job.result.as_ref().and_then(|r| r.count);
            let feed = copy::Feed::new(text, t.display.clone());
            let (applied, fed) = match stage {
                None => {
                    let (n, feed) = copy::copy_into(target_oid, &names, feed)?;
                    (n as i64, feed.text.rows())
                }
                Some(stage_oid) => {
                    let (_, feed) = copy::copy_into(stage_oid, &names, feed)?;
                    let fed = feed.text.rows();
                    let n = spi.update(merge.as_str(), None, &[]).map_err(spi_err)?.len() as i64;
                    spi.update("TRUNCATE pg_temp.zoho_export_stage", None, &[]).map_err(spi_err)?;
                    (n, fed)
                }
            };
            written += applied;
            debug1!("zoho_fdw: export timing: page={page} rows={fed} zoho_ms={zoho_ms:.1} apply_ms={:.1}", applying.elapsed().as_secs_f64() * 1e3);
            let line = format!("{module} page {page}: {fed} row(s) downloaded{}, {applied} written into {}", count.map(|c| format!(" of {c}")).unwrap_or_default(), t.display);
            notice!("zoho_fdw: {line}");
            crate::progress::activity(&line);
        }
        if spec.formulas_only {
            return Ok(written);
        }
        // As the caller (or the job's owner): the catalog's row-level
        // security lets whoever may write the target record its export.
        spi.update(
            "INSERT INTO zoho.exports AS e (module, target, server, owner, last_success, finished_at, rows_written, pages)
             VALUES ($1, $2::oid::regclass, $3::name, current_user::regrole, $4, clock_timestamp(), $5, $6)
             ON CONFLICT (module, target) DO UPDATE
               SET server = EXCLUDED.server, owner = EXCLUDED.owner, last_success = EXCLUDED.last_success,
                   finished_at = EXCLUDED.finished_at, rows_written = EXCLUDED.rows_written, pages = EXCLUDED.pages",
            None,
            &[module.into(), target_oid.into(), ctx.name.as_str().into(), started.into(), written.into(), (page - 1).into()],
        )
        .map_err(spi_err)?;
        Ok(written)
    })
}

