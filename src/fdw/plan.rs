//! Planning: which conditions, columns, order and row count go to Zoho.
//!
//! Everything the executor needs is written into the plan as JSON inside
//! String nodes (`fdw_private`) and expressions (`fdw_exprs`), which
//! PostgreSQL copies with the plan; nothing points into planner memory, so
//! cached and generic plans stay valid.

use std::ffi::{CStr, CString};

use pgrx::prelude::*;
use pgrx::{pg_sys, PgList, PgMemoryContexts};
use serde::{Deserialize, Serialize};
use zoho_api::coql::{Cond, KeyField, Keyset, Query, ValueKind, MAX_CRITERIA, MAX_LIMIT};

use super::aggregate::AggPlan;
use super::pushdown::{column_of, Ctx, Filter, Fit};
use super::table::{self, Kind, TableDef};
use crate::error::raise;

/// Planner's guess of a module's size: Zoho has no statistics to offer
/// without spending credits at plan time.
const DEFAULT_ROWS: f64 = 1000.0;
/// One API round trip, in the planner's cost units.
pub(super) const COST_PER_CALL: f64 = 1000.0;
const STARTUP_COST: f64 = 100.0;
/// The largest COQL page in the cheapest credit tier.
const SMALL_PAGE: usize = 200;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanPlan {
    pub server_oid: u32,
    /// The foreign table, for [`super::estimates`].
    pub table_oid: u32,
    pub table: TableDef,
    /// Attribute numbers fetched from Zoho; the rest read as NULL.
    pub fetch: Vec<i16>,
    /// Conditions sent to Zoho (all are rechecked locally too).
    pub filters: Vec<Filter>,
    pub keyset: Keyset,
    /// Rows per COQL call: 2,000, or fewer when a LIMIT needs fewer.
    pub page_size: usize,
    /// A cheaper first call when few rows are expected.
    pub first_page: Option<usize>,
    pub est_rows: f64,
    /// How closely Zoho's rows match the WHERE clause: every clause pushed
    /// within the criteria budget, and how exactly.
    pub fit: Fit,
    /// Zoho computes the query's aggregates: the scan returns their rows.
    #[serde(default)]
    pub aggregate: Option<AggPlan>,
    /// With a nullable key: its null group is read before the rest.
    #[serde(default)]
    pub nulls_first: bool,
}

impl ScanPlan {
    /// The COQL query before paging, with `params` substituted.
    pub fn query(&self, params: Option<&[Option<zoho_api::coql::Literal>]>) -> Query {
        self.query_leaving(params, 0)
    }

    /// [`ScanPlan::query`], leaving `room` criteria for the caller's own.
    pub fn query_leaving(&self, params: Option<&[Option<zoho_api::coql::Literal>]>, room: usize) -> Query {
        let mut select: Vec<String> = self
            .fetch
            .iter()
            .filter_map(|a| self.table.column(*a))
            .map(|c| c.api_name.clone())
            .collect();
        if select.is_empty() {
            select.push("id".into());
        }
        select.dedup();
        // The most selective first, so they are the ones that fit.
        let mut filters: Vec<&Filter> = self.filters.iter().collect();
        filters.sort_by_key(|f| f.rank());
        let conds: Vec<Cond> = filters
            .into_iter()
            .filter_map(|f| match params {
                Some(p) => f.to_cond(p),
                None => f.to_display_cond(),
            })
            .collect();
        let mut q = match &self.aggregate {
            Some(agg) => {
                let mut q = Query::new(&self.table.module, agg.select());
                q.group_by = agg.group_by.clone();
                // Groups page by OFFSET: a stable order keeps pages apart.
                for g in &agg.group_by {
                    q = q.order_by(g, zoho_api::coql::Order::Asc);
                }
                q
            }
            None => Query::new(&self.table.module, select),
        };
        // Conditions Zoho would refuse (too many, unsafe values) are left
        // to the local recheck rather than failing the query; the paging
        // predicate of later pages needs its own room.
        let budget = MAX_CRITERIA - self.keyset.criteria() - room;
        for c in conds {
            let candidate = q.clone().filter(c);
            if candidate.filter.as_ref().is_some_and(|f| f.criteria() <= budget) && candidate.render().is_ok() {
                q = candidate;
            }
        }
        q
    }

    /// The reads that return `query`'s rows in the plan's order, one after
    /// the other: one, or with a nullable key, its null group first or
    /// last (Zoho puts nulls where PostgreSQL may not).
    pub fn cursors(&self, query: Query) -> zoho_api::Result<Vec<zoho_api::coql::CoqlCursor>> {
        let sized = |c: zoho_api::coql::CoqlCursor| match self.first_page {
            Some(n) => c.first_page(n),
            None => c,
        };
        // Aggregate rows have no id to page by: groups go by OFFSET.
        if self.aggregate.is_some() {
            return Ok(vec![sized(zoho_api::coql::CoqlCursor::new(query, None, self.page_size)?)]);
        }
        if !self.keyset.nullable() {
            return Ok(vec![sized(zoho_api::coql::CoqlCursor::new(query, Some(self.keyset.clone()), self.page_size)?)]);
        }
        let values = zoho_api::coql::CoqlCursor::new(query.clone().filter(self.keyset.non_null(false)), Some(self.keyset.clone()), self.page_size)?;
        let nulls = zoho_api::coql::CoqlCursor::new(query.filter(self.keyset.non_null(true)), Some(self.keyset.by_id()), self.page_size)?;
        Ok(if self.nulls_first { vec![sized(nulls), sized(values)] } else { vec![sized(values), sized(nulls)] })
    }

    /// The first COQL call, parameters shown as `$n` (EXPLAIN before or
    /// without execution).
    pub fn first_coql(&self) -> String {
        self.cursor(self.query(None)).and_then(|c| c.next_query()).and_then(|q| q.render()).unwrap_or_else(|e| format!("(cannot render: {e})"))
    }

    /// The single read of a plan in id order (UPDATE and DELETE).
    pub fn cursor(&self, query: Query) -> zoho_api::Result<zoho_api::coql::CoqlCursor> {
        Ok(self.cursors(query)?.remove(0))
    }

    /// Calls and credits if the row estimate holds.
    pub fn estimate(&self) -> (u64, u64) {
        use zoho_api::usage::coql_credits;
        let first = self.first_page.unwrap_or(self.page_size);
        let rest = (self.est_rows - first as f64).max(0.0);
        let more = (rest / self.page_size as f64).ceil() as u64;
        // A nullable key's null group is one more read.
        let split = u64::from(self.keyset.nullable() && self.aggregate.is_none());
        (1 + more + split, (1 + split) * u64::from(coql_credits(first)) + more * u64::from(coql_credits(self.page_size)))
    }
}

/// What planning learns about one relation, kept in `baserel->fdw_private`
/// (and an upper relation's, for a pushed aggregate).
pub(super) struct RelState {
    pub(super) plan: ScanPlan,
    pub(super) params: Vec<*mut pg_sys::Expr>,
    /// How each of `plan.filters` fits its clause.
    fits: Vec<Fit>,
    /// The pushed aggregate's output columns (upper relations only).
    scan_tlist: *mut pg_sys::List,
}

/// Adds the attributes of relation `relid` that `node` reads to `out`; `all`
/// when it reads the whole row.
///
/// # Safety
/// `node` is NULL or a valid expression tree.
pub(super) unsafe fn attrs_used(node: *mut pg_sys::Node, relid: u32, out: &mut Vec<i16>, all: &mut bool) {
    // SAFETY: the caller's contract above; pull_varattnos builds `set` in the
    // current memory context, read here through bms_next_member only.
    unsafe {
        let mut set: *mut pg_sys::Bitmapset = std::ptr::null_mut();
        pg_sys::pull_varattnos(node, relid, &mut set);
        let offset = pg_sys::FirstLowInvalidHeapAttributeNumber;
        let mut i = -1;
        loop {
            i = pg_sys::bms_next_member(set, i);
            if i < 0 {
                break;
            }
            let attnum = (i + offset) as i16;
            if attnum == 0 {
                *all = true; // whole-row reference
            } else if attnum > 0 && !out.contains(&attnum) {
                out.push(attnum);
            }
        }
    }
}

/// # Safety
/// PostgreSQL's GetForeignRelSize: a valid PlannerInfo and the RelOptInfo of
/// foreign table `table_oid`, one of ours.
#[pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_rel_size(root: *mut pg_sys::PlannerInfo, baserel: *mut pg_sys::RelOptInfo, table_oid: pg_sys::Oid) {
    // SAFETY: the contract above; the RelState left in fdw_private lives in the
    // planner's memory context, for the later callbacks and join_pathlist.
    unsafe {
        let table = table::load(table_oid).unwrap_or_else(|e| raise(e));
        let relid = (*baserel).relid;
        let clauses: Vec<*mut pg_sys::RestrictInfo> = PgList::<pg_sys::RestrictInfo>::from_pg((*baserel).baserestrictinfo).iter_ptr().collect();
        let mut ctx = Ctx::new(relid, &table);
        let mut fit = Fit::Exact;
        let (mut filters, mut fits) = (Vec::new(), Vec::new());
        let mut local_only = PgList::<pg_sys::RestrictInfo>::new();
        for ri in &clauses {
            let (filter, clause_fit) = ctx.clause((**ri).clause as *mut pg_sys::Node);
            fit = fit.min(clause_fit);
            match filter {
                Some(f) => {
                    filters.push(f);
                    fits.push(clause_fit);
                }
                None => local_only.push(*ri),
            }
        }
        let params = ctx.params;

        let mut fetch = Vec::new();
        let mut whole_row = false;
        attrs_used((*(*baserel).reltarget).exprs as *mut pg_sys::Node, relid, &mut fetch, &mut whole_row);
        for ri in &clauses {
            attrs_used((**ri).clause as *mut pg_sys::Node, relid, &mut fetch, &mut whole_row);
        }
        if whole_row {
            fetch = table.columns.iter().map(|c| c.attnum).collect();
        }
        fetch.sort_unstable();

        let selectivity = pg_sys::clauselist_selectivity(root, (*baserel).baserestrictinfo, 0, pg_sys::JoinType::JOIN_INNER, std::ptr::null_mut());
        let seen = super::estimates::rows(u32::from(table_oid), &filters, selectivity);
        let remote = if table.remote_estimate { remote_count(root, baserel, table_oid, &table, &filters, local_only.into_pg()) } else { None };
        // ANALYZE's count, when the table has been analyzed.
        let analyzed = ((*baserel).tuples >= 0.0).then(|| (*baserel).tuples * selectivity);
        let mut rows = remote.or(seen).or(analyzed).unwrap_or(DEFAULT_ROWS * selectivity).max(1.0).round();
        // Ids are unique: `id = x` or `id IN (…)` bounds the rows outright.
        if let Some(most) = filters.iter().filter_map(Filter::id_bound).min() {
            rows = rows.min(most.max(1) as f64);
        }
        (*baserel).rows = rows;

        let server_oid = u32::from((*pg_sys::GetForeignTable(table_oid)).serverid);
        let mut plan = ScanPlan {
            server_oid,
            table_oid: u32::from(table_oid),
            table,
            fetch,
            filters,
            keyset: Keyset::Id,
            page_size: MAX_LIMIT,
            first_page: None,
            est_rows: rows,
            fit,
            aggregate: None,
            nulls_first: false,
        };
        // Conditions beyond Zoho's criteria budget are left out of the query.
        let wanted: usize = plan.filters.iter().map(|f| f.to_display_cond().map_or(usize::MAX / 2, |c| c.criteria())).sum();
        if plan.query(None).filter.map_or(0, |f| f.criteria()) != wanted {
            plan.fit = Fit::Partial;
        }
        let state = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(RelState { plan, params, fits, scan_tlist: std::ptr::null_mut() });
        (*baserel).fdw_private = state.cast();
    }
}

/// `use_remote_estimate`: Zoho's count of the rows the pushed conditions
/// keep (parameters left out: their values come at execution), times the
/// selectivity of the clauses left to PostgreSQL. One call per statement
/// for each table and conditions; a failed count falls back quietly.
unsafe fn remote_count(root: *mut pg_sys::PlannerInfo, baserel: *mut pg_sys::RelOptInfo, table_oid: pg_sys::Oid, table: &TableDef, filters: &[Filter], local_only: *mut pg_sys::List) -> Option<f64> {
    // SAFETY: get_foreign_rel_size's `root` and `baserel`, for foreign table
    // `table_oid`; `local_only` is a List of that rel's RestrictInfos.
    unsafe {
        let statement = pg_sys::GetCurrentStatementStartTimestamp();
        let count = || {
            let user = if (*baserel).userid == pg_sys::InvalidOid { pg_sys::GetUserId() } else { (*baserel).userid };
            let ctx = crate::server::resolve_oid((*pg_sys::GetForeignTable(table_oid)).serverid).ok()?;
            let client = ctx.client_for(user).ok()?;
            let mut q = Query::new(&table.module, ["COUNT(id)"]).limit(1);
            for c in filters.iter().filter_map(|f| f.to_cond(&[])) {
                let candidate = q.clone().filter(c);
                if candidate.render().is_ok() {
                    q = candidate;
                }
            }
            let mut cursor = zoho_api::coql::CoqlCursor::new(q, None, 1).ok()?;
            let rows = match crate::runtime::block_on(cursor.next_page(&client)) {
                Ok(rows) => rows.unwrap_or_default(),
                Err(e) => {
                    pgrx::debug1!("zoho_fdw: no remote estimate for {}: {e}", table.relation);
                    return None;
                }
            };
            Some(rows.first().and_then(|r| r.get("COUNT(id)")).and_then(|v| v.as_f64()).unwrap_or(0.0))
        };
        let n = super::estimates::remote(u32::from(table_oid), filters, statement, count)?;
        let rest = pg_sys::clauselist_selectivity(root, local_only, 0, pg_sys::JoinType::JOIN_INNER, std::ptr::null_mut());
        Some(n * rest)
    }
}

/// The keyset order matching the query's ORDER BY, if Zoho provably
/// produces PostgreSQL's order: `id`, `Modified_Time`, `Created_Time` or
/// any number, date or datetime field (never text, whose collation
/// differs), optionally followed by `id` in the same direction; and where
/// the nulls go (a nullable key's null group is read by its own query).
unsafe fn pushable_order(root: *mut pg_sys::PlannerInfo, baserel: *mut pg_sys::RelOptInfo, table: &TableDef) -> Option<Ordering> {
    // SAFETY: the planner's `root` and `baserel`: query_pathkeys is a List of
    // PathKeys, each with its equivalence class and members.
    unsafe {
        let keys: Vec<*mut pg_sys::PathKey> = PgList::<pg_sys::PathKey>::from_pg((*root).query_pathkeys).iter_ptr().collect();
        if keys.is_empty() || keys.len() > 2 {
            return None;
        }
        let mut fields = Vec::new();
        for pk in &keys {
            // A user's own ordering (USING a custom operator class) is not
            // Zoho's: only built-in operator families are shipped.
            if u32::from((**pk).pk_opfamily) >= pg_sys::FirstGenbkiObjectId {
                return None;
            }
            let ec = (**pk).pk_eclass;
            let member = PgList::<pg_sys::EquivalenceMember>::from_pg((*ec).ec_members)
                .iter_ptr()
                .find_map(|em| column_of((*em).em_expr as *mut pg_sys::Node, (*baserel).relid, table))?;
            let field = match (member.api_name.as_str(), member.kind) {
                ("id", _) => KeyField::Id,
                ("Modified_Time", _) => KeyField::ModifiedTime,
                ("Created_Time", _) => KeyField::CreatedTime,
                (name, Kind::Int | Kind::Decimal) if member.exact() => KeyField::Value { name: name.to_string(), kind: ValueKind::Number },
                (name, Kind::Date) if member.exact() => KeyField::Value { name: name.to_string(), kind: ValueKind::Date },
                (name, Kind::DateTime) if member.exact() => KeyField::Value { name: name.to_string(), kind: ValueKind::DateTime },
                _ => return None,
            };
            let descending = match (**pk).pk_strategy as u32 {
                pg_sys::BTLessStrategyNumber => false,
                pg_sys::BTGreaterStrategyNumber => true,
                _ => return None,
            };
            fields.push((field, descending, (**pk).pk_nulls_first));
        }
        let keyset = match &fields[..] {
            [(field, descending, _)] => Keyset { field: field.clone(), descending: *descending },
            [(field, descending, _), (KeyField::Id, d2, _)] if d2 == descending && *field != KeyField::Id => Keyset { field: field.clone(), descending: *descending },
            _ => return None,
        };
        Some(Ordering { keyset, nulls_first: fields[0].2 })
    }
}

/// A pushed ORDER BY: the keyset, and whether a nullable key's null group
/// comes first (PostgreSQL's default for DESC) or last.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ordering {
    keyset: Keyset,
    nulls_first: bool,
}

/// `items` as a List of String nodes (a plan's `fdw_private`).
///
/// # Safety
/// Called on the backend thread; the list lives in the current memory context.
pub(super) unsafe fn string_list(items: &[String]) -> *mut pg_sys::List {
    // SAFETY: the caller's contract above; pstrdup copies each NUL-free CString
    // into the current memory context, where makeString's node goes too.
    unsafe {
        let mut list = PgList::<pg_sys::Node>::new();
        for s in items {
            let c = CString::new(s.as_str()).expect("no NUL in plan text");
            list.push(pg_sys::makeString(pg_sys::pstrdup(c.as_ptr())) as *mut pg_sys::Node);
        }
        list.into_pg()
    }
}

/// The texts of `list`'s String nodes; other elements are skipped.
///
/// # Safety
/// `list` is NIL or a valid List of nodes.
pub unsafe fn strings_of(list: *mut pg_sys::List) -> Vec<String> {
    // SAFETY: the caller's contract above; a node is read as a String only after
    // its tag is checked, and its sval is NUL-terminated.
    unsafe {
        PgList::<pg_sys::Node>::from_pg(list)
            .iter_ptr()
            .filter(|n| !n.is_null() && (**n).type_ == pg_sys::NodeTag::T_String)
            .map(|n| CStr::from_ptr((*(n as *mut pg_sys::String)).sval).to_string_lossy().into_owned())
            .collect()
    }
}

/// # Safety
/// PostgreSQL's GetForeignPaths, after GetForeignRelSize for the same rel.
#[pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_paths(root: *mut pg_sys::PlannerInfo, baserel: *mut pg_sys::RelOptInfo, _table_oid: pg_sys::Oid) {
    // SAFETY: the contract above: fdw_private is the RelState
    // get_foreign_rel_size left; the paths are made in the planner's memory.
    unsafe {
        let state = &*((*baserel).fdw_private as *mut RelState);
        let rows = (*baserel).rows;
        let calls = (rows / MAX_LIMIT as f64).ceil().max(1.0);
        let total = STARTUP_COST + calls * COST_PER_CALL + rows * pg_sys::cpu_tuple_cost;
        let path = pg_sys::create_foreignscan_path(root, baserel, std::ptr::null_mut(), rows, STARTUP_COST, total, std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
        pg_sys::add_path(baserel, path as *mut pg_sys::Path);
        // Zoho sorts for free: offer the ordered path the query asks for.
        if let Some(order) = pushable_order(root, baserel, &state.plan.table) {
            let private = string_list(&[serde_json::to_string(&order).unwrap_or_default()]);
            let sorted = pg_sys::create_foreignscan_path(root, baserel, std::ptr::null_mut(), rows, STARTUP_COST, total, (*root).query_pathkeys, std::ptr::null_mut(), std::ptr::null_mut(), private);
            pg_sys::add_path(baserel, sorted as *mut pg_sys::Path);
        }
    }
}

/// Offers Zoho's own aggregation for `SELECT … GROUP BY` over one foreign
/// table (see [`super::aggregate`] for what qualifies).
///
/// # Safety
/// PostgreSQL's GetForeignUpperPaths: a valid PlannerInfo, and upper rels over
/// an input rel of this wrapper.
#[pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_upper_paths(
    root: *mut pg_sys::PlannerInfo,
    stage: pg_sys::UpperRelationKind::Type,
    input_rel: *mut pg_sys::RelOptInfo,
    output_rel: *mut pg_sys::RelOptInfo,
    _extra: *mut std::ffi::c_void,
) {
    // SAFETY: the contract above; an input base rel of this wrapper holds
    // get_foreign_rel_size's RelState (checked non-null), and upper_targets has
    // an entry per stage.
    unsafe {
        if stage != pg_sys::UpperRelationKind::UPPERREL_GROUP_AGG
            || (*input_rel).reloptkind != pg_sys::RelOptKind::RELOPT_BASEREL
            || (*input_rel).fdw_private.is_null()
            || !(*output_rel).fdw_private.is_null()
        {
            return;
        }
        let input = &*((*input_rel).fdw_private as *mut RelState);
        // Zoho must apply the whole WHERE clause, also at execution: a
        // parameter that turns out NULL (or not writable in COQL) would drop
        // its condition, which nothing here would catch.
        if input.plan.fit == Fit::Partial || !input.params.is_empty() {
            return;
        }
        let target = (*root).upper_targets[pg_sys::UpperRelationKind::UPPERREL_GROUP_AGG as usize];
        let Some((agg, scan_exprs)) = super::aggregate::plan(root, target, (*input_rel).relid, &input.plan.table, &input.plan.filters, &input.fits) else { return };
        let mut plan = input.plan.clone();
        let groups = !agg.group_by.is_empty();
        plan.aggregate = Some(agg);
        // One row without GROUP BY; with it, usually few groups: a 1-credit
        // first call, then full pages.
        plan.page_size = MAX_LIMIT;
        plan.first_page = Some(if groups { SMALL_PAGE } else { 1 });
        let mut tlist = PgList::<pg_sys::TargetEntry>::new();
        for (i, e) in scan_exprs.into_iter().enumerate() {
            tlist.push(pg_sys::makeTargetEntry(e.cast(), (i + 1) as i16, std::ptr::null_mut(), false));
        }
        let rows = if groups {
            let group_exprs = pg_sys::get_sortgrouplist_exprs((*(*root).parse).groupClause, (*(*root).parse).targetList);
            pg_sys::estimate_num_groups(root, group_exprs, (*input_rel).rows, std::ptr::null_mut(), std::ptr::null_mut()).max(1.0)
        } else {
            1.0
        };
        plan.est_rows = rows;
        let calls = (rows / MAX_LIMIT as f64).ceil().max(1.0);
        let total = STARTUP_COST + calls * COST_PER_CALL + rows * pg_sys::cpu_tuple_cost;
        let state = RelState { plan, params: input.params.clone(), fits: input.fits.clone(), scan_tlist: tlist.into_pg() };
        (*output_rel).fdw_private = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(state).cast();
        let path = pg_sys::create_foreign_upper_path(root, output_rel, target, rows, STARTUP_COST, total, std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
        pg_sys::add_path(output_rel, path as *mut pg_sys::Path);
    }
}

/// # Safety
/// PostgreSQL's GetForeignPlan, for one of the paths these callbacks made.
#[pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_plan(
    root: *mut pg_sys::PlannerInfo,
    baserel: *mut pg_sys::RelOptInfo,
    _table_oid: pg_sys::Oid,
    best_path: *mut pg_sys::ForeignPath,
    tlist: *mut pg_sys::List,
    scan_clauses: *mut pg_sys::List,
    outer_plan: *mut pg_sys::Plan,
) -> *mut pg_sys::ForeignScan {
    // SAFETY: the contract above: `baserel` holds our RelState (our base rel, or
    // the upper rel of a pushed aggregate), and best_path's fdw_private is NIL or
    // a string_list of ours.
    unsafe {
        let state = &*((*baserel).fdw_private as *mut RelState);
        if (*baserel).reloptkind == pg_sys::RelOptKind::RELOPT_UPPER_REL {
            // A pushed aggregate: no relation of its own, no local filter (Zoho
            // applied the WHERE exactly), output as the aggregate's columns.
            let json = serde_json::to_string(&state.plan).unwrap_or_else(|e| raise(crate::error::ZohoFdwError::Planning(format!("cannot encode scan plan: {e}"))));
            let mut exprs = PgList::<pg_sys::Expr>::new();
            for e in &state.params {
                exprs.push(*e);
            }
            return pg_sys::make_foreignscan(tlist, std::ptr::null_mut(), 0, exprs.into_pg(), string_list(&[json]), state.scan_tlist, std::ptr::null_mut(), outer_plan);
        }
        let mut plan = state.plan.clone();
        let sorted: Option<Ordering> = strings_of((*best_path).fdw_private).first().and_then(|t| serde_json::from_str(t).ok());
        if let Some(order) = &sorted {
            plan.keyset = order.keyset.clone();
            plan.nulls_first = order.nulls_first;
        }
        // A LIMIT sizes the first page when this scan alone feeds it, in the
        // order it wants, and Zoho applies every condition whole: then the
        // first page is all it needs (a case-insensitive match adds a few rows
        // at most). Later pages (when rows vanish between calls)
        // go at full size. When the local recheck may drop rows, the LIMIT
        // says nothing about how many Zoho rows it takes: full pages.
        let single_rel = pg_sys::bms_membership((*root).all_baserels) == pg_sys::BMS_Membership::BMS_SINGLETON;
        let ordered_ok = (*root).query_pathkeys.is_null() || sorted.is_some();
        if single_rel && ordered_ok && (*root).limit_tuples > 0.0 && plan.fit >= Fit::Widened {
            plan.first_page = Some(((*root).limit_tuples.ceil() as usize).clamp(1, MAX_LIMIT));
            plan.est_rows = plan.est_rows.min((*root).limit_tuples);
        } else if plan.est_rows <= SMALL_PAGE as f64 && plan.fit >= Fit::Widened {
            // Few rows expected from Zoho (the estimate counts Zoho's rows only
            // when every clause is pushed): a 1-credit first call; paging goes
            // on at full size if the estimate was wrong.
            plan.first_page = Some(SMALL_PAGE);
        }
        let json = serde_json::to_string(&plan).unwrap_or_else(|e| raise(crate::error::ZohoFdwError::Planning(format!("cannot encode scan plan: {e}"))));
        let mut exprs = PgList::<pg_sys::Expr>::new();
        for e in &state.params {
            exprs.push(*e);
        }
        // Every clause stays a local filter too (see pushdown.rs).
        let local = pg_sys::extract_actual_clauses(scan_clauses, false);
        pg_sys::make_foreignscan(tlist, local, (*baserel).relid, exprs.into_pg(), string_list(&[json]), std::ptr::null_mut(), std::ptr::null_mut(), outer_plan)
    }
}
