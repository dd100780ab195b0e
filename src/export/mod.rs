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
use crate::steps::{InCaller, Steps};
use crate::sync::origin::{from_zoho, FromZoho};


extension_sql_file!("../../sql/export.sql", name = "export_catalog");
extension_sql_file!("../../sql/watch.sql", name = "watch_catalog", requires = ["export_catalog"]);
extension_sql_file!("../../sql/schedule.sql", name = "schedule_catalog", requires = ["watch_catalog"]);
extension_sql_file!("../../sql/usage.sql", name = "usage_catalog", requires = ["schedule_catalog"]);
extension_sql_file!("../../sql/jobs.sql", name = "jobs_catalog", requires = ["usage_catalog", job_progress, cron_next, filter_check]);
extension_sql_file!("../../sql/verify.sql", name = "verify_catalog", requires = ["jobs_catalog"]);
extension_sql_file!("../../sql/status.sql", name = "status_views", requires = ["verify_catalog"]);

#[pg_extern(
    volatile,
    sql = r#"
CREATE FUNCTION zoho_bulk_export(module text, target regclass, since timestamptz DEFAULT NULL, mapping jsonb DEFAULT NULL, server name DEFAULT NULL,
                                 filter text DEFAULT NULL)
  RETURNS bigint VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'zoho_bulk_export_wrapper';
COMMENT ON FUNCTION zoho_bulk_export(text, regclass, timestamptz, jsonb, name, text) IS
  'Bulk Read a Zoho module (every page; only rows modified since "since", only records a COQL condition matches) into target, newer Modified_Time winning; returns rows written';
"#,
    requires = ["export_catalog"]
)]
fn zoho_bulk_export(module: Option<&str>, target: Option<pg_sys::Oid>, since: Option<pgrx::datum::TimestampWithTimeZone>, mapping: Option<JsonB>, server: Option<&CStr>, filter: Option<&str>) -> i64 {
    let required = |what: &str| ZohoFdwError::BadArgument { what: format!("{what} must not be NULL"), hint: None };
    let module = module.unwrap_or_else(|| raise(required("module")));
    let target = target.unwrap_or_else(|| raise(required("target")));
    let since = since.map(|t| crate::timestamps::to_chrono(t, "since").unwrap_or_else(|e| raise(e)).fixed_offset());
    let server = server.map(|c| c.to_string_lossy().into_owned());
    let spec = Export { module, target, since, mapping: mapping.as_ref().map(|j| &j.0), server: server.as_deref(), formulas_only: false, fields_only: None, filter };
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
    /// Likewise for these fields only: a backfill of fields added in Zoho
    /// (their columns were just added, and Modified_Time did not move).
    pub fields_only: Option<&'a [String]>,
    /// Only records this filter matches are read ([`crate::filter`]).
    pub filter: Option<&'a str>,
}

impl Export<'_> {
    /// Overwrites some fields of rows that exist, rather than newer-wins.
    fn overwrites(&self) -> bool {
        self.formulas_only || self.fields_only.is_some()
    }
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
    /// A two-way table's rules: its rows are written through
    /// [`crate::sync::resolve`], never plainly newer-wins.
    pub sync: Option<crate::sync::TwoWay>,
}

pub(crate) fn plan_target(oid: pg_sys::Oid, module: &str, fields: &[FieldMeta], mapping: Option<&serde_json::Value>) -> Result<Target, ZohoFdwError> {
    let table = LocalTable::load(oid, "exported rows are written into a local table")?;
    // A two-way table is always written with its sync's mapping, which
    // keeps the fields it owns and its bookkeeping out of Zoho's reach.
    let sync = crate::sync::two_way(&table)?;
    if let (Some(s), Some(m)) = (&sync, mapping) {
        if *m != s.pull_mapping {
            notice!("zoho_fdw: {} is synced both ways, so its rows are written with its sync's mapping, not the one given", table.display);
        }
    }
    let mapping = sync.as_ref().map(|s| s.pull_mapping.clone()).or_else(|| mapping.cloned());
    plan_columns(table, module, fields, mapping.as_ref(), sync)
}

/// [`plan_target`] for a table already loaded, with the mapping given.
pub(crate) fn plan_columns(table: LocalTable, module: &str, fields: &[FieldMeta], mapping: Option<&serde_json::Value>, sync: Option<crate::sync::TwoWay>) -> Result<Target, ZohoFdwError> {
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
    Ok(Target { table, columns, sync })
}

/// Newer-wins: whether the incoming row (`incoming`, e.g. `EXCLUDED`) is a
/// newer version of the target's row `t`. `cols` are quoted, `id` first,
/// `Modified_Time` second. An equal Modified_Time with other content is
/// newer too: a second edit within one second of its resolution. Compared
/// as text: every type has that, not every type has `=` (json).
pub(crate) fn newer_wins(cols: &[String], incoming: &str) -> String {
    let mt = &cols[1];
    let values = |alias: &str| cols[1..].iter().map(|c| format!("{alias}.{c}::text")).collect::<Vec<_>>().join(", ");
    format!(
        "(t.{mt} IS NULL OR t.{mt} < {incoming}.{mt} OR (t.{mt} = {incoming}.{mt} AND ROW({}) IS DISTINCT FROM ROW({})))",
        values("t"),
        values(incoming)
    )
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

/// Where an export stands between its pages: pages done, rows written, and
/// Zoho's token for the next page (None after the last). A job keeps it
/// with each page it commits, so a restart goes on from the next page.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resume {
    pub pages: i32,
    pub written: i64,
    pub next_token: Option<String>,
    /// When the first attempt began (this host's clock): what Zoho held
    /// then is what the export holds when it has finished.
    pub started: Option<chrono::DateTime<chrono::Utc>>,
}

impl Resume {
    fn finished(&self) -> bool {
        self.pages > 0 && self.next_token.is_none()
    }
}

/// Called in the step of each page, after its rows are written.
pub(crate) type Checkpoint<'a> = &'a mut dyn FnMut(&mut pgrx::spi::SpiClient<'_>, &Resume) -> Result<(), ZohoFdwError>;

pub(crate) fn export(spec: &Export<'_>) -> Result<i64, ZohoFdwError> {
    export_in_steps(spec, &mut InCaller, Resume::default(), None)
}

/// An export whose pages are each written in a step of their own
/// ([`crate::steps`]). Each page is committed on its own rather than staged
/// and applied once: every row is written newer-wins on its own id, so a
/// target holding some pages is as correct as before, only less complete,
/// and the pages already written are not downloaded again (Zoho allows 10
/// downloads a minute).
pub(crate) fn export_in_steps(spec: &Export<'_>, steps: &mut impl Steps, resume: Resume, mut checkpoint: Option<Checkpoint<'_>>) -> Result<i64, ZohoFdwError> {
    let first = resume.pages == 0;
    match export_pages(spec, steps, resume.clone(), checkpoint.as_mut().map(|c| &mut **c as _), false) {
        // The fields were read before an admin removed one the export asked
        // for: read them again and go on without it (its column keeps its
        // values, as a column no field matches does).
        Err(ZohoFdwError::Api { source, .. }) if first && source.zoho_code() == Some("FIELD_NOT_AVAILABLE") => {
            notice!("zoho_fdw: {}: a field the export asked for is gone from Zoho; reading the module's fields again", spec.module);
            export_pages(spec, steps, resume, checkpoint, true)
        }
        other => other,
    }
}

/// [`export_in_steps`] with the module's fields from the cache, or (with
/// `fresh`) from Zoho.
fn export_pages(spec: &Export<'_>, steps: &mut impl Steps, mut resume: Resume, mut checkpoint: Option<Checkpoint<'_>>, fresh: bool) -> Result<i64, ZohoFdwError> {
    let (module, target_oid, since) = (spec.module, spec.target, spec.since);
    let (ctx, client) = steps.step(|_| {
        let ctx = server::resolve(spec.server)?;
        let client = ctx.shared_client()?;
        Ok((ctx, client))
    })?;
    let max_age = if fresh { std::time::Duration::ZERO } else { std::time::Duration::from_secs(600) };
    let fields = server::fields_within(&client, &ctx.name, module, "zoho_bulk_export", max_age)?;
    // Everything Zoho held at this moment is in the target when the export
    // has finished; an export that goes on keeps its first attempt's.
    let started = resume.started.unwrap_or_else(chrono::Utc::now);
    let (target, sql) = steps.step(|spi| {
        let mut target = plan_target(target_oid, module, &fields, spec.mapping)?;
        if let Some(only) = spec.fields_only {
            // A field removed again since it was added is not read.
            target.columns.retain(|(_, f)| f.api_name == "id" || only.contains(&f.api_name));
        } else if spec.formulas_only {
            target.columns.retain(|(_, f)| f.api_name == "id" || f.is_computed());
            if target.columns.len() < 2 {
                return Err(ZohoFdwError::BadArgument { what: format!("no column of {} holds a formula field of {module}, so there is nothing to refresh", target.table.display), hint: None });
            }
        }
        require_unique_id(spi, &target.table, &target.columns[0].0)?;
        let sql = PageSql::new(&target, spec.overwrites());
        Ok((target, sql))
    })?;
    if spec.fields_only.is_some() && target.columns.len() < 2 {
        notice!("zoho_fdw: {module}: none of the fields to backfill is in Zoho any more");
        return Ok(0);
    }
    let t = &target.table;
    let names: Vec<String> = target.columns.iter().map(|(c, _)| c.name.clone()).collect();
    // Into an empty table rows go straight in; the rows written so far are
    // then the export's own, which `direct` checks on each page when steps
    // commit. In one transaction the table is locked before the first
    // download, so notifications wait for the export and apply their newer
    // rows after it, and no page needs the check.
    let mut direct = resume.pages == 0 && !spec.overwrites() && target.sync.is_none();
    let commits = steps.commits();
    if direct && !commits {
        direct = steps.step(|spi| sql.still_own(spi, t, 0, true))?;
    }
    let query = BulkReadQuery {
        module: module.to_string(),
        fields: target.columns.iter().map(|(_, f)| f.api_name.clone()).collect(),
        criteria: match spec.filter.map(|f| crate::filter::parse(module, f, &fields)).transpose()? {
            Some(f) => Some(f.criteria_since(since.as_ref())),
            None => since.as_ref().map(Criteria::modified_since),
        },
        cvid: None,
    };
    let mut pages = client.bulk_export(query);
    if resume.pages > 0 {
        notice!("zoho_fdw: {module}: going on from page {} ({} row(s) written before)", resume.pages + 1, resume.written);
        pages.resume(resume.next_token.clone(), resume.pages as u32);
    }
    while !resume.finished() {
        let page = resume.pages + 1;
        let mut notices = crate::progress::JobNotices::new(format!("{module} page {page}"));
        let mut progress = |j: &zoho_api::bulk_read::BulkReadJob| notices.seen(&j.id, &j.state, j.is_finished());
        let waited = std::time::Instant::now();
        let Some((job, file)) = block_on(pages.next_page_file(&mut progress)).map_err(|e| ZohoFdwError::api(&ctx.name, e))? else {
            break;
        };
        let zoho_ms = waited.elapsed().as_secs_f64() * 1e3;
        let applying = std::time::Instant::now();
        let text = CopyText::from_zip(file, copy_plan(&target)).map_err(|e| ZohoFdwError::BadValue { table: t.display.clone(), what: format!("the Bulk Read file of page {page} cannot be read: {e}") })?;
        let count = job.result.as_ref().and_then(|r| r.count);
        let next = Resume { pages: page, written: resume.written, next_token: pages.next_token().map(str::to_string), started: resume.started };
        let clock = client.transport().clock_offset().unwrap_or_else(chrono::Duration::zero);
        // Rows written from Zoho are not pending; a formula refresh or a
        // backfill leaves each row's flag as it was.
        let how = if spec.overwrites() { FromZoho::AsWritten } else { FromZoho::Synced };
        let (applied, fed, next) = steps.step(|spi| from_zoho(target_oid, how, || {
            let feed = copy::Feed::new(text, t.display.clone());
            // In one transaction the lock taken before the first download is
            // still held, so the table holds only this export's rows: no
            // count (which would read every row written so far, twice).
            let straight = direct && (!commits || sql.still_own(spi, t, resume.written, false)?);
            let (applied, fed) = if straight {
                let (n, feed) = copy::copy_into(target_oid, &names, feed)?;
                (n as i64, feed.text.rows())
            } else {
                direct = false;
                let stage_oid = sql.stage(spi)?;
                let (_, feed) = copy::copy_into(stage_oid, &names, feed)?;
                let fed = feed.text.rows();
                let n = match &target.sync {
                    Some(two) if !spec.overwrites() => crate::sync::resolve::apply(&target, two, crate::sync::resolve::Incoming::Stage, clock)? as i64,
                    _ => spi.update(sql.merge.as_str(), None, &[]).map_err(spi_err)?.len() as i64,
                };
                (n, fed)
            };
            let next = Resume { written: next.written + applied, ..next };
            if let Some(save) = checkpoint.as_mut() {
                save(spi, &next)?;
            }
            Ok((applied, fed, next))
        }))?;
        resume = next;
        debug1!("zoho_fdw: export timing: page={page} rows={fed} zoho_ms={zoho_ms:.1} apply_ms={:.1}", applying.elapsed().as_secs_f64() * 1e3);
        let line = format!("{module} page {page}: {fed} row(s) downloaded{}, {applied} written into {}", count.map(|c| format!(" of {c}")).unwrap_or_default(), t.display);
        notice!("zoho_fdw: {line}");
        crate::progress::activity(&line);
    }
    if spec.overwrites() {
        return Ok(resume.written);
    }
    // On Zoho's clock (its replies' Date, seen by now), less a margin.
    let started = client.transport().zoho_time(started, crate::worker::sync_overlap());
    steps.step(|spi| {
        // As the caller (or the job's owner): the catalog's row-level
        // security lets whoever may write the target record its export.
        spi.update(
            "INSERT INTO zoho.exports AS e (module, target, server, owner, last_success, finished_at, rows_written, pages)
             VALUES ($1, $2::oid::regclass, $3::name, current_user::regrole, to_timestamp($4), clock_timestamp(), $5, $6)
             ON CONFLICT (module, target) DO UPDATE
               SET server = EXCLUDED.server, owner = EXCLUDED.owner, last_success = EXCLUDED.last_success,
                   finished_at = EXCLUDED.finished_at, rows_written = EXCLUDED.rows_written, pages = EXCLUDED.pages",
            None,
            &[module.into(), target_oid.into(), ctx.name.as_str().into(), (started.timestamp_micros() as f64 / 1e6).into(), resume.written.into(), resume.pages.into()],
        )
        .map_err(spi_err)?;
        Ok(resume.written)
    })
}

/// Which Bulk Read column goes to which local column, from a page's headers.
fn copy_plan(target: &Target) -> zoho_api::copy_text::Plan {
    let wanted: Vec<(String, Kind, String)> = target.columns.iter().map(|(c, f)| (f.api_name.clone(), kind_of(c), c.name.clone())).collect();
    Box::new(move |headers: &[String]| {
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
    })
}

/// The statements that write a page into the target.
struct PageSql {
    table: String,
    /// `CREATE TEMP TABLE zoho_export_stage …` for this target's columns.
    create_stage: String,
    /// Staged rows → target, newer Modified_Time winning (or formulas only).
    merge: String,
}

impl PageSql {
    fn new(target: &Target, formulas_only: bool) -> PageSql {
        let t = &target.table;
        let id_col = &target.columns[0].0;
        let col_list: Vec<String> = target.columns.iter().map(|(c, _)| c.quoted()).collect();
        let merge = if formulas_only {
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
                "INSERT INTO {t} AS t ({cols}) SELECT {cols} FROM pg_temp.zoho_export_stage ON CONFLICT ({id}) DO UPDATE SET {sets} WHERE {newer}",
                t = t.sql_name,
                cols = col_list.join(", "),
                id = id_col.quoted(),
                sets = col_list.iter().skip(1).map(|c| format!("{c} = EXCLUDED.{c}")).collect::<Vec<_>>().join(", "),
                newer = newer_wins(&col_list, "EXCLUDED"),
            )
        };
        PageSql {
            table: t.sql_name.clone(),
            create_stage: format!("CREATE TEMP TABLE zoho_export_stage ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA", col_list.join(", "), t.sql_name),
            merge,
        }
    }

    /// Whether the target holds only the `written` rows of this export, so
    /// a page may go straight in. With `lock`, other writers (notifications)
    /// wait for the export and then apply their newer rows over it. A job's
    /// page takes no lock (it would wait for a busy table under the worker's
    /// lock_timeout): a notification inserting one of the page's ids first
    /// fails the page, whose next attempt goes through the staging table.
    fn still_own(&self, spi: &mut pgrx::spi::SpiClient<'_>, t: &LocalTable, written: i64, lock: bool) -> Result<bool, ZohoFdwError> {
        let count = |spi: &mut pgrx::spi::SpiClient<'_>| -> Result<i64, ZohoFdwError> {
            // Counting stops past `written`: a big table is not scanned.
            let sql = format!("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT $1) r", self.table);
            Ok(spi.select(&sql, None, &[(written + 1).into()]).and_then(|r| r.first().get_one::<i64>()).map_err(spi_err)?.unwrap_or(0))
        };
        if count(spi)? != written {
            return Ok(false);
        }
        if !lock {
            return Ok(true);
        }
        spi.update(&format!("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE", t.sql_name), None, &[]).map_err(spi_err)?;
        Ok(count(spi)? == written)
    }

    /// The staging table, empty and of this target's columns, for this step.
    fn stage(&self, spi: &mut pgrx::spi::SpiClient<'_>) -> Result<pg_sys::Oid, ZohoFdwError> {
        // One left by an earlier page or export of this transaction goes:
        // it may have another target's columns.
        let old = spi.select("SELECT to_regclass('pg_temp.zoho_export_stage')::oid", None, &[]).and_then(|r| r.first().get_one::<pg_sys::Oid>()).map_err(spi_err)?;
        if old.is_some() {
            spi.update("DROP TABLE pg_temp.zoho_export_stage", None, &[]).map_err(spi_err)?;
        }
        // The worker runs exports as a restricted operation, which may not
        // create temporary tables; this fixed statement runs no user code
        // (no rows are read), so it steps outside for a moment.
        crate::privileges::unrestricted(|| spi.update(&self.create_stage, None, &[])).map_err(spi_err)?;
        Ok(spi
            .select("SELECT 'pg_temp.zoho_export_stage'::regclass::oid", None, &[])
            .and_then(|r| r.first().get_one::<pg_sys::Oid>())
            .map_err(spi_err)?
            .expect("the staging table exists"))
    }
}
