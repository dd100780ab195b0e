//! The foreign-data wrapper, written directly against PostgreSQL's FDW API
//! (as postgres_fdw is). supabase-wrappers 0.1.28 could not carry what this
//! wrapper needs: OR conditions and stable expressions in pushdown, a
//! LIMIT that stays correct under local rechecks, EXPLAIN showing the COQL,
//! RETURNING and batched writes; and it passes scan state from planning to
//! execution by raw pointer, which breaks cached generic plans.
//!
//! - [`table`]: a foreign table's module and columns
//! - [`pushdown`]: WHERE clauses → COQL conditions
//! - [`aggregate`]: count, sum, min, max, avg and GROUP BY → COQL
//! - [`plan`]: planner callbacks; the plan carried as JSON
//! - [`scan`]: executor callbacks and EXPLAIN
//! - [`convert`]: values between SQL and Zoho
//! - [`join`]: joins with other relations, their keys sent 100 a call
//! - [`modify`]: INSERT, UPDATE, DELETE with RETURNING, row by row
//! - [`direct`]: UPDATE and DELETE with fixed new values, a page at a time
//! - [`import`]: IMPORT FOREIGN SCHEMA
//! - [`refresh`]: `zoho_refresh_foreign_table`, a table kept up with its module
//! - [`analyze`]: ANALYZE, by a sample within a credit cap

mod aggregate;
mod analyze;
pub mod convert;
mod direct;
mod estimates;
pub mod import;
pub(crate) mod join;
mod modify;
mod plan;
mod pushdown;
mod refresh;
mod scan;
pub mod table;

use pgrx::prelude::*;
use pgrx::{pg_sys, AllocatedByRust, PgBox};

use crate::error::raise;
use crate::options::{self, Catalog};

#[pg_extern(create_or_replace)]
fn zoho_fdw_handler() -> PgBox<pg_sys::FdwRoutine> {
    // SAFETY: alloc_node pallocs a zeroed node tagged T_FdwRoutine in the current
    // memory context; each callback has the signature its field declares, and
    // into_pg_boxed hands the node to PostgreSQL without freeing it.
    unsafe {
        let mut r = PgBox::<pg_sys::FdwRoutine, AllocatedByRust>::alloc_node(pg_sys::NodeTag::T_FdwRoutine);
        r.GetForeignRelSize = Some(plan::get_foreign_rel_size);
        r.GetForeignPaths = Some(plan::get_foreign_paths);
        r.GetForeignPlan = Some(plan::get_foreign_plan);
        r.GetForeignUpperPaths = Some(plan::get_foreign_upper_paths);
        r.BeginForeignScan = Some(scan::begin_foreign_scan);
        r.IterateForeignScan = Some(scan::iterate_foreign_scan);
        r.ReScanForeignScan = Some(scan::re_scan_foreign_scan);
        r.EndForeignScan = Some(scan::end_foreign_scan);
        r.ExplainForeignScan = Some(scan::explain_foreign_scan);
        r.ImportForeignSchema = Some(import::import_foreign_schema);
        r.AnalyzeForeignTable = Some(analyze::analyze_foreign_table);
        r.AddForeignUpdateTargets = Some(modify::add_foreign_update_targets);
        r.BeginForeignModify = Some(modify::begin_foreign_modify);
        r.GetForeignModifyBatchSize = Some(modify::get_foreign_modify_batch_size);
        r.ExecForeignBatchInsert = Some(modify::exec_foreign_batch_insert);
        r.ExecForeignInsert = Some(modify::exec_foreign_insert);
        r.ExecForeignUpdate = Some(modify::exec_foreign_update);
        r.ExecForeignDelete = Some(modify::exec_foreign_delete);
        r.EndForeignModify = Some(modify::end_foreign_modify);
        r.ExplainForeignModify = Some(modify::explain_foreign_modify);
        r.BeginForeignInsert = Some(modify::begin_foreign_insert);
        r.EndForeignInsert = Some(modify::end_foreign_insert);
        r.PlanDirectModify = Some(direct::plan_direct_modify);
        r.BeginDirectModify = Some(direct::begin_direct_modify);
        r.IterateDirectModify = Some(direct::iterate_direct_modify);
        r.EndDirectModify = Some(direct::end_direct_modify);
        r.ExplainDirectModify = Some(direct::explain_direct_modify);
        r.into_pg_boxed()
    }
}

fn catalog_of(oid: Option<pg_sys::Oid>) -> Catalog {
    match oid {
        Some(pg_sys::ForeignServerRelationId) => Catalog::Server,
        Some(pg_sys::UserMappingRelationId) => Catalog::UserMapping,
        Some(pg_sys::ForeignTableRelationId) => Catalog::Table,
        Some(pg_sys::AttributeRelationId) => Catalog::Column,
        _ => Catalog::Wrapper,
    }
}

/// Checks the options of every zoho_fdw object as it is created or altered.
#[pg_extern(create_or_replace)]
fn zoho_fdw_validator(options: Option<Vec<Option<String>>>, catalog: Option<pg_sys::Oid>) {
    let pairs = options::parse_pairs(options.unwrap_or_default().into_iter().flatten());
    options::validate(catalog_of(catalog), &pairs).unwrap_or_else(|e| raise(e));
}

/// The role whose user mapping reads range table entry `rti`, as
/// PostgreSQL checks its privileges (postgres_fdw does the same): a view's
/// owner for a foreign table read through the view, else the current user.
///
/// # Safety
/// `estate` is the executor state of the running plan and `rti` one of its
/// range table indexes.
pub(crate) unsafe fn check_as_user(estate: *mut pg_sys::EState, rti: pg_sys::Index) -> pg_sys::Oid {
    // SAFETY: PostgreSQL's exec_rt_fetch: the list holds every entry of the
    // plan's range table, indexed from 1.
    let entry = (rti as usize).checked_sub(1).and_then(|i| (unsafe { pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*estate).es_range_table) }).get_ptr(i));
    let Some(rte) = entry else {
        // SAFETY: a plain read of the session's current user.
        return unsafe { pg_sys::GetUserId() };
    };
    // SAFETY: a valid range table entry of this plan.
    let checker = unsafe { (*rte).checkAsUser };
    if checker == pg_sys::InvalidOid {
        // SAFETY: a plain read of the session's current user.
        unsafe { pg_sys::GetUserId() }
    } else {
        checker
    }
}
