//! Direct UPDATE and DELETE (postgres_fdw's `PlanDirectModify`).
//!
//! When every new value can be computed from the record itself (constants,
//! parameters, `now()`, `quantity * 10`: anything but a subquery), the
//! foreign scan under the ModifyTable does the whole write:
//! it reads the matching records by COQL a page at a time (the pushed
//! conditions, keyset by id), rechecks the WHERE clause on each record
//! locally, and writes each page 100 records a call. RETURNING answers from
//! the page it read, the values it set and Zoho's write response, with no
//! call per row. Anything else (a SET with a subquery, RETURNING a formula
//! Zoho recomputes, a join) goes row by row through [`super::modify`].

use std::collections::VecDeque;
use std::ffi::CString;

use pgrx::prelude::*;
use pgrx::{pg_sys, PgList, PgMemoryContexts};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zoho_api::coql::CoqlCursor;
use zoho_api::Record;

use super::convert;
use super::modify::ModifyState;
use super::plan::{attrs_used, string_list, strings_of, ScanPlan};
use super::scan::{self, Fetched};
use crate::error::{raise, ZohoFdwError};
use crate::runtime::block_on;

/// Fields an UPDATE's RETURNING can show without reading the record again:
/// they do not change, or Zoho's write response carries them.
const KNOWN_AFTER_UPDATE: &[&str] = &["id", "Created_Time", "Created_By", "Modified_Time"];

/// What the planner decided, next to the scan plan in `fdw_private`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DirectPlan {
    /// Each SET column, and its value's index in `fdw_exprs`.
    sets: Vec<(i16, usize)>,
    /// The SET values that read the record (or are volatile): evaluated
    /// for each record, not once.
    #[serde(default)]
    per_row: Vec<usize>,
    returning: bool,
    /// Whether this statement's row count is the command's (not a CTE's).
    set_tag: bool,
}

/// The foreign scan a ModifyTable reads from, when it is its direct child
/// on the result relation (no join, no partitions).
unsafe fn scan_under(plan: *mut pg_sys::ModifyTable, result_relation: pg_sys::Index) -> Option<*mut pg_sys::ForeignScan> {
    // SAFETY: the planner's ModifyTable: its lefttree is NULL or a Plan, read
    // as a ForeignScan only after its tag is checked.
    unsafe {
        let sub = (*plan).plan.lefttree;
        if sub.is_null() || (*sub).type_ != pg_sys::NodeTag::T_ForeignScan {
            return None;
        }
        let fs = sub as *mut pg_sys::ForeignScan;
        ((*fs).scan.scanrelid == result_relation).then_some(fs)
    }
}

/// A value fixed for the whole statement: no column, nothing volatile.
unsafe fn fixed(expr: *mut pg_sys::Node) -> bool {
    // SAFETY: `expr` is an expression tree of the plan being built.
    unsafe {
        !pg_sys::contain_var_clause(expr) && !pg_sys::contain_volatile_functions(expr)
    }
}

/// # Safety
/// PostgreSQL's PlanDirectModify: a valid PlannerInfo and the ModifyTable
/// being built, whose result relation `result_relation` is one of our tables.
#[pg_guard]
pub unsafe extern "C-unwind" fn plan_direct_modify(root: *mut pg_sys::PlannerInfo, plan: *mut pg_sys::ModifyTable, result_relation: pg_sys::Index, subplan_index: i32) -> bool {
    // SAFETY: the contract above; a ForeignScan on the result relation is ours
    // (fdw_private from get_foreign_plan), and what it gets here is allocated in
    // the planner's memory.
    unsafe {
        let op = (*plan).operation;
        if op != pg_sys::CmdType::CMD_UPDATE && op != pg_sys::CmdType::CMD_DELETE {
            return false;
        }
        // `SET (a, b) = (SELECT …)` is computed by the ModifyTable row by row.
        // (PostgreSQL asks no direct modify of a table with row triggers.)
        if !(*root).multiexpr_params.is_null() {
            return false;
        }
        let Some(fs) = scan_under(plan, result_relation) else { return false };
        let Some(json) = strings_of((*fs).fdw_private).into_iter().next() else { return false };
        let Ok(mut scan) = serde_json::from_str::<ScanPlan>(&json) else { return false };
        let mut exprs = PgList::<pg_sys::Node>::from_pg((*fs).fdw_exprs);
        let (mut sets, mut per_row, mut set_attrs) = (Vec::new(), Vec::new(), Vec::new());
        if op == pg_sys::CmdType::CMD_UPDATE {
            let (mut tlist, mut colnos) = (std::ptr::null_mut(), std::ptr::null_mut());
            pg_sys::get_translated_update_targetlist(root, result_relation, &mut tlist, &mut colnos);
            let colnos = PgList::<i32>::from_pg(colnos);
            for (tle, attno) in PgList::<pg_sys::TargetEntry>::from_pg(tlist).iter_ptr().zip(colnos.iter_int()) {
                let expr = (*tle).expr as *mut pg_sys::Node;
                let writable = scan.table.column(attno as i16).is_some_and(|c| !c.read_only);
                // A subquery runs under the ModifyTable, not this scan.
                if !writable || pg_sys::contain_subplans(expr) {
                    return false;
                }
                exprs.push(expr);
                sets.push((attno as i16, exprs.len() - 1));
                if !fixed(expr) {
                    per_row.push(exprs.len() - 1);
                    let mut whole_row = false;
                    attrs_used(expr, result_relation, &mut set_attrs, &mut whole_row);
                    if whole_row {
                        return false;
                    }
                }
            }
        }
        // Read only what the recheck and RETURNING need (the scan was planned
        // to hand whole rows to the ModifyTable).
        let (mut fetch, mut whole_row) = (Vec::new(), false);
        attrs_used((*fs).scan.plan.qual as *mut pg_sys::Node, result_relation, &mut fetch, &mut whole_row);
        // A WHERE clause on the whole row (`t::text LIKE …`) would be checked
        // on a row with most columns NULL: row by row instead.
        if whole_row {
            return false;
        }
        scan.fetch = fetch;
        scan.fetch.extend(set_attrs);
        scan.fetch.extend(scan.table.id_column().map(|c| c.attnum));
        let returning = PgList::<pg_sys::Node>::from_pg((*plan).returningLists).get_ptr(subplan_index as usize);
        if let Some(list) = returning {
            let (mut attrs, mut whole_row) = (Vec::new(), false);
            attrs_used(list, result_relation, &mut attrs, &mut whole_row);
            if whole_row {
                attrs = scan.table.columns.iter().map(|c| c.attnum).collect();
            }
            let stale = |a: &i16| scan.table.column(*a).is_some_and(|c| c.read_only && !KNOWN_AFTER_UPDATE.contains(&c.api_name.as_str()));
            if op == pg_sys::CmdType::CMD_UPDATE && attrs.iter().any(stale) {
                return false;
            }
            scan.fetch.extend(attrs);
        }
        scan.fetch.sort_unstable();
        scan.fetch.dedup();
        // The writes cost a credit per 10 records: reading the matches in as
        // few calls as possible matters more than the read's own tier.
        if scan.filters.iter().all(|f| f.id_bound().is_none()) {
            scan.first_page = None;
        }
        let direct = DirectPlan { sets, per_row, returning: returning.is_some(), set_tag: (*plan).canSetTag };
        let (Ok(scan_json), Ok(direct_json)) = (serde_json::to_string(&scan), serde_json::to_string(&direct)) else { return false };
        // The scan computes the new values itself: the ModifyTable only needs
        // the plan's junk columns, so the SET expressions in its output become
        // NULLs (else the scan's projection would evaluate them once more for
        // each RETURNING row: nextval() twice).
        for tle in PgList::<pg_sys::TargetEntry>::from_pg((*fs).scan.plan.targetlist).iter_ptr() {
            if !(*tle).resjunk {
                let e = (*tle).expr as *mut pg_sys::Node;
                (*tle).expr = pg_sys::makeNullConst(pg_sys::exprType(e), pg_sys::exprTypmod(e), pg_sys::exprCollation(e)) as *mut pg_sys::Expr;
            }
        }
        (*fs).operation = op;
        (*fs).resultRelation = result_relation;
        (*fs).fdw_exprs = exprs.into_pg();
        (*fs).fdw_private = string_list(&[scan_json, direct_json]);
        true
    }
}

struct DirectState {
    /// The WHERE clause, checked on each record read; taken from the scan
    /// node so that the scan does not check it again on the RETURNING
    /// rows, which hold the new values.
    qual: *mut pg_sys::ExprState,
    scan: ScanPlan,
    direct: DirectPlan,
    write: ModifyState,
    fetched: Vec<Fetched>,
    exprs: *mut pg_sys::List,
    cursor: Option<CoqlCursor>,
    /// Values each written record gets (UPDATE).
    sets: Record,
    sets_ready: bool,
    /// Written rows not yet returned (RETURNING).
    out: VecDeque<Record>,
    first_query: Option<String>,
    affected: u64,
}

unsafe fn direct_plan_of(node: *mut pg_sys::ForeignScanState) -> DirectPlan {
    // SAFETY: `node` runs a ForeignScan plan_direct_modify rewrote, whose
    // fdw_private holds this plan second.
    unsafe {
        let fs = (*node).ss.ps.plan as *mut pg_sys::ForeignScan;
        let text = strings_of((*fs).fdw_private).into_iter().nth(1).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or_else(|e| raise(ZohoFdwError::Internal(format!("unreadable direct modify plan: {e}"))))
    }
}

/// # Safety
/// PostgreSQL's BeginDirectModify, for a ForeignScan plan_direct_modify
/// rewrote, with resultRelInfo set to its table's.
#[pg_guard]
pub unsafe extern "C-unwind" fn begin_direct_modify(node: *mut pg_sys::ForeignScanState, eflags: i32) {
    // SAFETY: the contract above; the DirectState lives in the query's memory
    // context (current here) until the executor ends.
    unsafe {
        if eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0 {
            return;
        }
        let fs = (*node).ss.ps.plan as *mut pg_sys::ForeignScan;
        let scan = scan::plan_of(node);
        let direct = direct_plan_of(node);
        let rel_oid = (*(*(*node).resultRelInfo).ri_RelationDesc).rd_id;
        let user = super::check_as_user((*node).ss.ps.state, (*fs).resultRelation);
        let mut write = ModifyState::open((*fs).operation, rel_oid, user);
        write.returning = direct.returning;
        let qual = std::mem::replace(&mut (*node).ss.ps.qual, std::ptr::null_mut());
        let state = DirectState {
            qual,
            fetched: Fetched::of(&scan),
            scan,
            direct,
            write,
            exprs: pg_sys::ExecInitExprList((*fs).fdw_exprs, node as *mut pg_sys::PlanState),
            cursor: None,
            sets: Record::new(),
            sets_ready: false,
            out: VecDeque::new(),
            first_query: None,
            affected: 0,
        };
        (*node).fdw_state = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(state).cast();
    }
}

impl DirectState {
    /// The `i`th of the plan's expressions (over the scan slot, for a value
    /// that reads the record); see [`scan::eval_one`].
    unsafe fn eval(&self, node: *mut pg_sys::ForeignScanState, i: usize) -> (pg_sys::Datum, bool, pg_sys::Oid) {
        // SAFETY: `node` is this modify's node and self.exprs
        // ExecInitExprList's list for its fdw_exprs (begin_direct_modify), as
        // eval_one requires.
        unsafe {
            scan::eval_one(node, self.exprs, i)
        }
    }

    /// The new values that are the same for every record, computed once.
    unsafe fn fixed_sets(&mut self, node: *mut pg_sys::ForeignScanState) {
        // SAFETY: `node` is this modify's node; each value is converted before
        // its per-tuple memory is reset.
        unsafe {
            for (attno, i) in self.direct.sets.clone() {
                if self.direct.per_row.contains(&i) {
                    continue;
                }
                let (value, isnull, _) = self.eval(node, i);
                let (name, v) = self.set_value(attno, value, isnull);
                self.sets.insert(name, v);
                pg_sys::MemoryContextReset((*(*node).ss.ps.ps_ExprContext).ecxt_per_tuple_memory);
            }
            self.sets_ready = true;
        }
    }

    /// A SET column's new value as Zoho's JSON; a value Zoho cannot take
    /// fails before anything is sent.
    unsafe fn set_value(&self, attno: i16, value: pg_sys::Datum, isnull: bool) -> (String, Value) {
        // SAFETY: `value` is a SET expression's result, of its column's type (the
        // planner coerced it), as to_json requires.
        unsafe {
            let table = &self.scan.table;
            let col = table.column(attno).expect("SET column of this table");
            let v = convert::to_json(value, isnull, col)
                .unwrap_or_else(|why| raise(ZohoFdwError::BadRow { table: table.relation.clone(), what: format!("column {} ({}.{}): {why}", col.name, table.module, col.api_name) }));
            (col.api_name.clone(), v)
        }
    }

    /// Evaluates the conditions' parameters and the new values, and opens
    /// the read of the matching records.
    unsafe fn start(&mut self, node: *mut pg_sys::ForeignScanState) {
        // SAFETY: `node` is this modify's node; each parameter is copied out by
        // convert::literal (as its expression's type) before its memory is reset.
        unsafe {
            let mut params = Vec::new();
            for i in 0..PgList::<pg_sys::ExprState>::from_pg(self.exprs).len() {
                // New values wait for the first record to write (as PostgreSQL
                // computes none when nothing matches).
                if self.direct.sets.iter().any(|(_, e)| *e == i) {
                    params.push(None);
                    continue;
                }
                let (value, isnull, type_oid) = self.eval(node, i);
                let rounding = self.scan.filters.iter().find_map(|f| scan::param_rounding(f, i)).unwrap_or(convert::Rounding::Exact);
                params.push(if isnull { None } else { convert::literal(value, type_oid, rounding) });
                pg_sys::MemoryContextReset((*(*node).ss.ps.ps_ExprContext).ecxt_per_tuple_memory);
            }
            let query = self.scan.query(Some(&params));
            let cursor = self.scan.cursor(query).unwrap_or_else(|e| raise(ZohoFdwError::api(&self.write.server, e)));
            self.first_query = cursor.next_query().ok().and_then(|q| q.render().ok());
            self.cursor = Some(cursor);
        }
    }

    /// Whether the WHERE clause keeps `record`, checked on the scan slot in
    /// per-tuple memory (reset after each record), and then the values it
    /// gets that depend on it.
    unsafe fn keeps(&self, node: *mut pg_sys::ForeignScanState, record: &Record) -> Option<Record> {
        // SAFETY: `node` is this modify's node: its scan slot has the table's
        // descriptor, `qual` is its initialised qual or NULL, and what they
        // make in per-tuple memory is used before that memory is reset.
        unsafe {
            let slot = (*node).ss.ss_ScanTupleSlot;
            let qual = self.qual;
            let econtext = (*node).ss.ps.ps_ExprContext;
            let keep = PgMemoryContexts::For((*econtext).ecxt_per_tuple_memory).switch_to(|_| {
                scan::store(scan::clear(slot), record, &self.fetched, &self.scan.table.module);
                (*econtext).ecxt_scantuple = slot;
                if qual.is_null() {
                    return true;
                }
                let eval = (*qual).evalfunc.expect("initialised qual");
                let mut isnull = false;
                // SAFETY: the node's own qual and expression context; an ERROR
                // inside becomes a Rust panic at the boundary.
                let keep = pg_sys::ffi::pg_guard_ffi_boundary(|| eval(qual, econtext, &mut isnull));
                !isnull && keep.value() != 0
            });
            let own = keep.then(|| {
                let mut own = Record::new();
                for &i in &self.direct.per_row {
                    let (value, isnull, _) = self.eval(node, i);
                    let attno = self.direct.sets.iter().find(|(_, e)| *e == i).map(|(a, _)| *a).expect("SET index");
                    let (name, v) = self.set_value(attno, value, isnull);
                    own.insert(name, v);
                }
                own
            });
            scan::clear(slot);
            pg_sys::MemoryContextReset((*econtext).ecxt_per_tuple_memory);
            own
        }
    }

    /// Reads the next page, writes the records the WHERE clause keeps, and
    /// queues them for RETURNING. False once nothing is left.
    unsafe fn next_page(&mut self, node: *mut pg_sys::ForeignScanState) -> bool {
        // SAFETY: `node` is this modify's node, as keeps and fixed_sets need.
        unsafe {
            let Some(cursor) = self.cursor.as_mut() else { return false };
            if cursor.is_done() {
                return false;
            }
            let page = match block_on(cursor.next_page(self.write.client())) {
                Ok(Some(rows)) => rows,
                Ok(None) => return false,
                Err(e) => raise(self.scan.table.explain_error(&self.write.server, e)),
            };
            let mut rows = Vec::new();
            let mut kept = Vec::new();
            for mut record in page {
                if let Some(own) = self.keeps(node, &record) {
                    if !self.sets_ready {
                        self.fixed_sets(node);
                    }
                    rows.push(self.write.next_row());
                    // The record as written: the fixed values and its own.
                    record.extend(self.sets.clone());
                    record.extend(own);
                    kept.push(record);
                }
            }
            if kept.is_empty() {
                return true;
            }
            let set_fields: Vec<String> = self.direct.sets.iter().filter_map(|(a, _)| self.scan.table.column(*a)).map(|c| c.api_name.clone()).collect();
            let records: Vec<Record> = kept
                .iter()
                .map(|r| {
                    let mut w = Record::new();
                    w.insert("id".into(), r.get("id").cloned().unwrap_or(Value::Null));
                    for f in &set_fields {
                        w.insert(f.clone(), r.get(f).cloned().unwrap_or(Value::Null));
                    }
                    w
                })
                .collect();
            let done = self.write.send(&rows, records);
            self.affected += done.len() as u64;
            if self.direct.returning {
                for (mut r, ok) in kept.into_iter().zip(done) {
                    if let Some(t) = ok.modified_time {
                        r.insert("Modified_Time".into(), Value::String(t));
                    }
                    self.out.push_back(r);
                }
            }
            true
        }
    }
}

/// # Safety
/// PostgreSQL's IterateDirectModify, on a node begin_direct_modify set up.
#[pg_guard]
pub unsafe extern "C-unwind" fn iterate_direct_modify(node: *mut pg_sys::ForeignScanState) -> *mut pg_sys::TupleTableSlot {
    // SAFETY: the contract above: fdw_state is our DirectState (never NULL
    // here: no EXPLAIN alone), and ri_projectReturning is set when the plan
    // returns rows.
    unsafe {
        let st = &mut *((*node).fdw_state as *mut DirectState);
        let slot = scan::clear((*node).ss.ss_ScanTupleSlot);
        let estate = (*node).ss.ps.state;
        if st.cursor.is_none() {
            st.start(node);
        }
        if !st.direct.returning {
            while st.next_page(node) {}
            if st.direct.set_tag {
                (*estate).es_processed += st.affected;
            }
            if let Some(instr) = (*node).ss.ps.instrument.as_mut() {
                instr.tuplecount += st.affected as f64;
            }
            st.affected = 0;
            return slot;
        }
        loop {
            if let Some(record) = st.out.pop_front() {
                // Iterate runs in per-tuple memory, which the scan resets
                // before the next call: the slot must not free the tuple.
                st.write.fill_from(slot, &record, false);
                (*slot).tts_tableOid = (*(*(*node).resultRelInfo).ri_RelationDesc).rd_id;
                // ModifyTable evaluates RETURNING over this slot.
                (*(*(*(*node).resultRelInfo).ri_projectReturning).pi_exprContext).ecxt_scantuple = slot;
                if st.direct.set_tag {
                    (*estate).es_processed += 1;
                }
                return slot;
            }
            if !st.next_page(node) {
                return slot;
            }
        }
    }
}

/// # Safety
/// PostgreSQL's EndDirectModify, on a node begin_direct_modify set up.
#[pg_guard]
pub unsafe extern "C-unwind" fn end_direct_modify(node: *mut pg_sys::ForeignScanState) {
    // SAFETY: the contract above: fdw_state is our DirectState, or NULL under
    // EXPLAIN alone.
    unsafe {
        if let Some(st) = ((*node).fdw_state as *mut DirectState).as_mut() {
            st.cursor = None;
            st.out.clear();
        }
    }
}

/// # Safety
/// PostgreSQL's ExplainDirectModify: a valid ExplainState and a node of ours.
#[pg_guard]
pub unsafe extern "C-unwind" fn explain_direct_modify(node: *mut pg_sys::ForeignScanState, es: *mut pg_sys::ExplainState) {
    // SAFETY: the contract above: fdw_state is our DirectState or NULL, and the
    // plan a ForeignScan plan_direct_modify rewrote.
    unsafe {
        let state = ((*node).fdw_state as *mut DirectState).as_ref();
        let plan = scan::plan_of(node);
        let first = state.and_then(|s| s.first_query.clone()).unwrap_or_else(|| plan.first_coql());
        scan::explain_text(es, "Zoho COQL", &first);
        if (*es).verbose {
            scan::explain_paging(&plan, es);
            let fs = (*node).ss.ps.plan as *mut pg_sys::ForeignScan;
            let module = &plan.table.module;
            let how = match (*fs).operation {
                pg_sys::CmdType::CMD_UPDATE => format!("update via PUT /crm/v8/{module}"),
                _ => format!("delete via DELETE /crm/v8/{module}?ids=…"),
            };
            let text = CString::new(format!("{how}, up to {} records per call, each page of matches as it is read", super::modify::BATCH)).expect("no NUL");
            pg_sys::ExplainPropertyText(c"Zoho Write".as_ptr(), text.as_ptr(), es);
        }
    }
}
