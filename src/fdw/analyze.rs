//! ANALYZE on a foreign table: row count and a sample for per-column
//! statistics, read by COQL within `zoho_fdw.analyze_max_credits` (one
//! call for the count and id range, then windows spread over the ids; see
//! `zoho_api::sample`).

use pgrx::prelude::*;
use pgrx::{pg_sys, PgMemoryContexts};
use serde_json::Value;
use zoho_api::coql::CoqlCursor;
use zoho_api::sample::{self, Extent};
use zoho_api::{Record, ZohoClient};

use super::convert::Target;
use super::table::{self, TableDef};
use crate::error::{raise, ZohoFdwError};
use crate::runtime::block_on;

/// # Safety
/// PostgreSQL's AnalyzeForeignTable: `func` and `totalpages` are writable.
#[pg_guard]
pub unsafe extern "C-unwind" fn analyze_foreign_table(_rel: pg_sys::Relation, func: *mut pg_sys::AcquireSampleRowsFunc, totalpages: *mut pg_sys::BlockNumber) -> bool {
    // SAFETY: the contract above: `func` and `totalpages` are ANALYZE's own
    // locals, for us to fill.
    unsafe {
        *func = Some(acquire_sample_rows);
        *totalpages = 1;
        true
    }
}

/// One COQL call, as written.
fn read(client: &ZohoClient, table: &TableDef, server: &str, query: zoho_api::coql::Query) -> Vec<Record> {
    let mut cursor = CoqlCursor::new(query, None, zoho_api::coql::MAX_LIMIT).unwrap_or_else(|e| raise(ZohoFdwError::api(server, e)));
    block_on(cursor.next_page(client)).unwrap_or_else(|e| raise(table.explain_error(server, e))).unwrap_or_default()
}

fn id_of(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn acquire_sample_rows(
    rel: pg_sys::Relation,
    elevel: i32,
    rows: *mut pg_sys::HeapTuple,
    targrows: i32,
    totalrows: *mut f64,
    totaldeadrows: *mut f64,
) -> i32 {
    // SAFETY: ANALYZE calls this with `rel` open and locked, room in `rows` for
    // `targrows` tuples (n stays below it) and `totalrows`/`totaldeadrows` to
    // fill; each tuple is formed with rel's own descriptor, in ANALYZE's memory
    // context.
    unsafe {
        let oid = (*rel).rd_id;
        let table = table::load(oid).unwrap_or_else(|e| raise(e));
        let ctx = crate::server::resolve_oid((*pg_sys::GetForeignTable(oid)).serverid).unwrap_or_else(|e| raise(e));
        let client = ctx.client_for(pg_sys::GetUserId()).unwrap_or_else(|e| raise(e));
        let [count, first, last] = Extent::queries(&table.module).map(|q| read(&client, &table, &ctx.name, q).into_iter().next().unwrap_or_default());
        let extent = Extent {
            count: count.get("COUNT(id)").and_then(Value::as_u64).unwrap_or(0),
            min_id: id_of(first.get("id")).unwrap_or(0),
            max_id: id_of(last.get("id")).unwrap_or(0),
        };
        let cap = crate::gucs::ANALYZE_MAX_CREDITS.get().max(1) as u32;
        let windows = sample::windows(extent, targrows.max(0) as usize, cap);
        let mut select: Vec<String> = vec!["id".to_string()];
        for c in &table.columns {
            if !select.contains(&c.api_name) {
                select.push(c.api_name.clone());
            }
        }
        let desc = (*rel).rd_att;
        let natts = (*desc).natts as usize;
        let targets: Vec<Target> = table.columns.iter().map(|c| Target::new(pg_sys::Oid::from(c.type_oid), c.typmod)).collect();
        let mut n = 0usize;
        let mut seen = std::collections::HashSet::new();
        for (start, size) in &windows {
            for record in read(&client, &table, &ctx.name, sample::window_query(&table.module, select.clone(), *start, *size)) {
                // Windows can overlap where ids are sparse: each record once.
                if n >= targrows as usize || !seen.insert(record.get("id").map(Value::to_string)) {
                    continue;
                }
                let mut values = vec![pg_sys::Datum::from(0usize); natts];
                let mut nulls = vec![true; natts];
                for (col, target) in table.columns.iter().zip(&targets) {
                    let describe = || format!("column {} ({}.{}) in the ANALYZE sample", col.name, table.module, col.api_name);
                    if let Some(d) = target.datum(record.get(&col.api_name).unwrap_or(&Value::Null), describe).unwrap_or_else(|e| raise(e)) {
                        values[(col.attnum - 1) as usize] = d;
                        nulls[(col.attnum - 1) as usize] = false;
                    }
                }
                *rows.add(n) = pg_sys::heap_form_tuple(desc, values.as_mut_ptr(), nulls.as_mut_ptr());
                n += 1;
            }
        }
        *totalrows = extent.count as f64;
        *totaldeadrows = 0.0;
        super::estimates::record(u32::from(oid), &[], extent.count);
        let credits = Extent::CREDITS + windows.iter().map(|(_, s)| zoho_api::usage::coql_credits(*s)).sum::<u32>();
        let msg = format!("zoho_fdw: \"{}\": {} records in Zoho, {n} sampled in {} COQL call(s), {credits} credit(s)", table.relation, extent.count, windows.len() + 3);
        PgMemoryContexts::CurrentMemoryContext.switch_to(|_| {
            if elevel >= pg_sys::INFO as i32 {
                pgrx::info!("{msg}");
            } else {
                pgrx::debug1!("{msg}");
            }
        });
        n as i32
    }
}
