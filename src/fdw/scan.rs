//! Execution: page through COQL results, one page in memory at a time,
//! converting each record into the scan slot.

use std::collections::VecDeque;
use std::ffi::CString;

use pgrx::prelude::*;
use pgrx::{pg_sys, PgList, PgMemoryContexts};
use zoho_api::coql::{CoqlCursor, Literal};
use zoho_api::{Record, ZohoClient};

use super::aggregate::Output;
use super::convert::{self, Target};
use super::plan::{strings_of, ScanPlan};
use crate::error::{raise, ZohoFdwError};
use crate::runtime::block_on;
use crate::server;

/// A column read from Zoho into the scan slot.
pub(super) struct Fetched {
    /// Index into the slot's values.
    slot_index: usize,
    api_name: String,
    column: String,
    target: Target,
}

struct ScanState {
    plan: ScanPlan,
    server: String,
    client: Option<ZohoClient>,
    cursor: Option<CoqlCursor>,
    /// Reads that follow the current one (a nullable key's other part).
    queued: VecDeque<CoqlCursor>,
    /// Calls made by reads already finished.
    calls_before: u32,
    page: VecDeque<Record>,
    fetched: Vec<Fetched>,
    /// A pushed aggregate's output types.
    agg_targets: Vec<Target>,
    params: *mut pg_sys::List,
    /// The parameters' values for the current scan, evaluated at its first
    /// fetch (as postgres_fdw does): initplans and outer rows of a join or
    /// LATERAL have no values before then.
    param_values: Option<Vec<Option<Literal>>>,
    /// Whether this (re)scan has sent its query.
    started: bool,
    /// The first COQL text sent, for EXPLAIN ANALYZE.
    first_query: Option<String>,
    /// Rows this (re)scan has returned.
    rows: u64,
    /// Every row of this (re)scan so far, while they fit in one page: a
    /// rescan with the same parameters answers from here, without a call.
    kept: Option<Vec<Record>>,
    /// The previous (re)scan's rows, complete, for such a rescan.
    replay: Option<Vec<Record>>,
}

/// Rows a scan keeps for a rescan with unchanged parameters.
const KEEP_FOR_RESCAN: usize = zoho_api::coql::MAX_LIMIT;

impl Fetched {
    /// The columns `plan` reads, in slot order.
    pub(super) fn of(plan: &ScanPlan) -> Vec<Fetched> {
        plan.fetch
            .iter()
            .filter_map(|a| plan.table.column(*a))
            .map(|c| Fetched {
                slot_index: (c.attnum - 1) as usize,
                api_name: c.api_name.clone(),
                column: c.name.clone(),
                target: Target::new(pg_sys::Oid::from(c.type_oid), c.typmod),
            })
            .collect()
    }
}

/// Stores `record`'s fetched columns into the (cleared) scan slot; the rest
/// read as NULL.
///
/// # Safety
/// `slot` is a valid, empty slot of the foreign table's descriptor, whose
/// columns `fetched` indexes.
pub(super) unsafe fn store(slot: *mut pg_sys::TupleTableSlot, record: &Record, fetched: &[Fetched], module: &str) -> *mut pg_sys::TupleTableSlot {
    // SAFETY: the caller's contract above: tts_values and tts_isnull hold natts
    // entries; each datum is made by its column type's input function.
    unsafe {
        let natts = (*(*slot).tts_tupleDescriptor).natts as usize;
        let values = std::slice::from_raw_parts_mut((*slot).tts_values, natts);
        let nulls = std::slice::from_raw_parts_mut((*slot).tts_isnull, natts);
        nulls.fill(true);
        for f in fetched {
            let value = record.get(&f.api_name).unwrap_or(&serde_json::Value::Null);
            let describe = || {
                let id = record.get("id").and_then(|v| v.as_str()).unwrap_or("?");
                format!("column {} ({}.{}) of record {}", f.column, module, f.api_name, id)
            };
            match f.target.datum(value, describe) {
                Ok(Some(d)) => {
                    values[f.slot_index] = d;
                    nulls[f.slot_index] = false;
                }
                Ok(None) => {}
                Err(e) => raise(e),
            }
        }
        pg_sys::ExecStoreVirtualTuple(slot)
    }
}

/// Empties a slot through its own clear operation.
///
/// # Safety
/// `slot` is a valid tuple table slot.
pub(super) unsafe fn clear(slot: *mut pg_sys::TupleTableSlot) -> *mut pg_sys::TupleTableSlot {
    // SAFETY: the caller's contract above: tts_ops is the slot's own operations
    // table.
    unsafe {
        if let Some(clear) = (*(*slot).tts_ops).clear {
            // SAFETY: `clear` is the slot's own operation.
            pg_sys::ffi::pg_guard_ffi_boundary(|| clear(slot));
        }
        slot
    }
}

/// Evaluates the `i`th of the expressions ExecInitExprList built for
/// `node` from its `fdw_exprs`, in per-tuple memory: the caller copies the
/// value into Rust before that memory is reset. Returns the value, whether
/// it is NULL, and its type.
pub(super) unsafe fn eval_one(node: *mut pg_sys::ForeignScanState, states: *mut pg_sys::List, i: usize) -> (pg_sys::Datum, bool, pg_sys::Oid) {
    // SAFETY: the caller's contract above: the ith ExprState and plan expression
    // exist, and the node has its expression context (ExecAssignExprContext).
    unsafe {
        let econtext = (*node).ss.ps.ps_ExprContext;
        let st = PgList::<pg_sys::ExprState>::from_pg(states).get_ptr(i).expect("an initialised expression");
        let fs = (*node).ss.ps.plan as *mut pg_sys::ForeignScan;
        let expr = PgList::<pg_sys::Node>::from_pg((*fs).fdw_exprs).get_ptr(i).expect("a plan expression");
        let eval = (*st).evalfunc.expect("initialised expression");
        let mut isnull = false;
        let value = PgMemoryContexts::For((*econtext).ecxt_per_tuple_memory).switch_to(|_| {
            // SAFETY: `st` was built by ExecInitExprList for this node and
            // `econtext` is the node's; an ERROR inside (a failing initplan,
            // `$1 / 0`) becomes a Rust panic at the boundary instead of a
            // longjmp over Rust frames.
            pg_sys::ffi::pg_guard_ffi_boundary(|| eval(st, econtext, &mut isnull))
        });
        (value, isnull, pg_sys::exprType(expr))
    }
}

/// [`eval_one`] for each of `states`, converted by `convert`.
///
/// # Safety
/// As for [`eval_one`].
pub(super) unsafe fn evaluate<T>(node: *mut pg_sys::ForeignScanState, states: *mut pg_sys::List, mut convert: impl FnMut(usize, pg_sys::Datum, bool, pg_sys::Oid) -> T) -> Vec<T> {
    // SAFETY: the caller's contract above; i stays below the list's length.
    unsafe {
        (0..PgList::<pg_sys::ExprState>::from_pg(states).len())
            .map(|i| {
                let (value, isnull, type_oid) = eval_one(node, states, i);
                convert(i, value, isnull, type_oid)
            })
            .collect()
    }
}

/// The scan plan in `node`'s ForeignScan.
///
/// # Safety
/// `node` runs a ForeignScan made by get_foreign_plan (perhaps rewritten by
/// plan_direct_modify).
pub(super) unsafe fn plan_of(node: *mut pg_sys::ForeignScanState) -> ScanPlan {
    // SAFETY: the caller's contract above: ps.plan is that ForeignScan, whose
    // fdw_private is our string_list.
    unsafe {
        let fs = (*node).ss.ps.plan as *mut pg_sys::ForeignScan;
        let text = strings_of((*fs).fdw_private).into_iter().next().unwrap_or_default();
        serde_json::from_str(&text).unwrap_or_else(|e| raise(ZohoFdwError::Internal(format!("unreadable scan plan: {e}"))))
    }
}

impl ScanState {
    /// The plan's parameters as COQL literals (NULL, or a value COQL
    /// cannot hold, as None).
    unsafe fn evaluate_params(&self, node: *mut pg_sys::ForeignScanState) -> Vec<Option<Literal>> {
        // SAFETY: `node` is this scan's own node, and self.params
        // ExecInitExprList's list for its fdw_exprs (begin_foreign_scan).
        unsafe {
            evaluate(node, self.params, |i, value, isnull, type_oid| {
                if isnull {
                    return None;
                }
                let rounding = self.plan.filters.iter().find_map(|f| param_rounding(f, i)).unwrap_or(convert::Rounding::Exact);
                convert::literal(value, type_oid, rounding)
            })
        }
    }

    /// Sends this scan's query: called at the first fetch, never before.
    unsafe fn start(&mut self, node: *mut pg_sys::ForeignScanState) {
        // SAFETY: `node` is this scan's own node, as evaluate_params needs.
        unsafe {
            if self.param_values.is_none() {
                self.param_values = Some(self.evaluate_params(node));
            }
            let params = self.param_values.as_deref().unwrap_or_default();
            let query = self.plan.query(Some(params));
            let mut cursors: VecDeque<CoqlCursor> = self.plan.cursors(query).unwrap_or_else(|e| raise(ZohoFdwError::api(&self.server, e))).into();
            let cursor = cursors.pop_front().expect("at least one read");
            self.queued = cursors;
            if self.first_query.is_none() {
                self.first_query = cursor.next_query().ok().and_then(|q| q.render().ok());
            }
            self.cursor = Some(cursor);
            self.page.clear();
            self.started = true;
        }
    }

    /// Every row Zoho holds for these conditions was read: the count is
    /// the next plan's estimate.
    fn read_to_the_end(&self) {
        // An aggregate's rows are groups, not records.
        if self.plan.aggregate.is_none() {
            super::estimates::record(self.plan.table_oid, &self.plan.filters, self.rows);
        }
    }

    fn next_record(&mut self) -> Option<Record> {
        let r = self.next_from_zoho();
        match (&r, &mut self.kept) {
            (Some(r), Some(kept)) if kept.len() < KEEP_FOR_RESCAN => kept.push(r.clone()),
            (Some(_), kept) => *kept = None,
            (None, _) => {}
        }
        r
    }

    fn next_from_zoho(&mut self) -> Option<Record> {
        loop {
            if let Some(r) = self.page.pop_front() {
                return Some(r);
            }
            let cursor = self.cursor.as_mut()?;
            let rows = if cursor.is_done() {
                None
            } else {
                let client = self.client.as_ref().expect("client exists when scanning");
                block_on(cursor.next_page(client)).unwrap_or_else(|e| raise(self.plan.table.explain_error(&self.server, e)))
            };
            match rows {
                Some(rows) => self.page.extend(rows),
                None => match self.queued.pop_front() {
                    Some(next) => {
                        self.calls_before += self.cursor.replace(next).map_or(0, |c| c.calls());
                    }
                    None => {
                        self.read_to_the_end();
                        self.cursor = None;
                        self.replay = self.kept.take();
                        return None;
                    }
                },
            }
        }
    }
}

pub(super) fn param_rounding(f: &super::pushdown::Filter, index: usize) -> Option<convert::Rounding> {
    use super::pushdown::{Filter, Operand};
    match f {
        Filter::Cmp { value: Operand::Param { index: i, rounding, .. }, .. } if *i == index => Some(*rounding),
        Filter::And(a, b) | Filter::Or(a, b) => param_rounding(a, index).or_else(|| param_rounding(b, index)),
        _ => None,
    }
}

/// # Safety
/// PostgreSQL's BeginForeignScan, for a ForeignScan made by get_foreign_plan.
#[pg_guard]
pub unsafe extern "C-unwind" fn begin_foreign_scan(node: *mut pg_sys::ForeignScanState, eflags: i32) {
    // SAFETY: the contract above; the ScanState lives in the query's memory
    // context (current here) until the executor ends.
    unsafe {
        let plan = plan_of(node);
        let fs = (*node).ss.ps.plan as *mut pg_sys::ForeignScan;
        let params = pg_sys::ExecInitExprList((*fs).fdw_exprs, node as *mut pg_sys::PlanState);
        let server_ctx = server::resolve_oid(pg_sys::Oid::from(plan.server_oid)).unwrap_or_else(|e| raise(e));
        let fetched = Fetched::of(&plan);
        let explain_only = eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0;
        // A pushed aggregate's scan has no relation of its own.
        // (its relation is in fs_relids, as the final range table numbers it)
        let rti = if (*fs).scan.scanrelid == 0 { pg_sys::bms_next_member((*fs).fs_relids, -1).max(0) as pg_sys::Index } else { (*fs).scan.scanrelid };
        let user = super::check_as_user((*node).ss.ps.state, rti);
        let agg_targets = plan.aggregate.as_ref().map(|a| a.targets()).unwrap_or_default();
        let client = if explain_only { None } else { Some(server_ctx.client_for(user).unwrap_or_else(|e| raise(e))) };
        let state = ScanState {
            plan,
            server: server_ctx.name.clone(),
            client,
            cursor: None,
            queued: VecDeque::new(),
            calls_before: 0,
            page: VecDeque::new(),
            fetched,
            agg_targets,
            params,
            param_values: None,
            started: false,
            first_query: None,
            rows: 0,
            kept: Some(Vec::new()),
            replay: None,
        };
        // Dropped with the executor's memory, also when the query fails.
        let state = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(state);
        (*node).fdw_state = state.cast();
    }
}

/// # Safety
/// PostgreSQL's IterateForeignScan, on a node begin_foreign_scan set up.
#[pg_guard]
pub unsafe extern "C-unwind" fn iterate_foreign_scan(node: *mut pg_sys::ForeignScanState) -> *mut pg_sys::TupleTableSlot {
    // SAFETY: the contract above: never under EXPLAIN alone, so fdw_state is the
    // ScanState begin_foreign_scan set, borrowed only for this call.
    unsafe {
        let state = &mut *((*node).fdw_state as *mut ScanState);
        let slot = clear((*node).ss.ss_ScanTupleSlot);
        if !state.started {
            state.start(node);
        }
        if state.plan.aggregate.is_some() {
            return state.next_group(slot);
        }
        let Some(record) = state.next_record() else { return slot };
        state.rows += 1;
        store(slot, &record, &state.fetched, &state.plan.table.module)
    }
}

impl ScanState {
    /// The next row of a pushed aggregate. Without GROUP BY there is always
    /// exactly one, also when Zoho answers an empty match with no rows.
    unsafe fn next_group(&mut self, slot: *mut pg_sys::TupleTableSlot) -> *mut pg_sys::TupleTableSlot {
        // SAFETY: `slot` is the node's cleared scan slot, whose descriptor is the
        // aggregate's fdw_scan_tlist: one column per agg_target, of its type.
        unsafe {
            let agg = self.plan.aggregate.clone().expect("an aggregate plan");
            let record = loop {
                match self.next_record() {
                    Some(r) if agg.keeps(&r) => break r,
                    Some(_) => continue,
                    None if self.rows == 0 && agg.outputs.iter().all(|o| !matches!(o, Output::Group(_))) => break Record::new(),
                    None => return slot,
                }
            };
            self.rows += 1;
            // A count(*) is the best row estimate there is.
            if agg.group_by.is_empty() {
                if let Some(i) = agg.outputs.iter().position(|o| matches!(o, Output::Count(f) if f == "id")) {
                    if let Some(n) = agg.value(i, &record).as_u64() {
                        super::estimates::record(self.plan.table_oid, &self.plan.filters, n);
                    }
                }
            }
            let natts = (*(*slot).tts_tupleDescriptor).natts as usize;
            let values = std::slice::from_raw_parts_mut((*slot).tts_values, natts);
            let nulls = std::slice::from_raw_parts_mut((*slot).tts_isnull, natts);
            nulls.fill(true);
            for (i, target) in self.agg_targets.iter().enumerate().take(natts) {
                let describe = || format!("aggregate {i} of {} ({:?})", self.plan.table.relation, agg.outputs[i]);
                if let Some(d) = target.datum(&agg.value(i, &record), describe).unwrap_or_else(|e| raise(e)) {
                    values[i] = d;
                    nulls[i] = false;
                }
            }
            pg_sys::ExecStoreVirtualTuple(slot)
        }
    }
}

/// # Safety
/// PostgreSQL's ReScanForeignScan, on a node begin_foreign_scan set up.
#[pg_guard]
pub unsafe extern "C-unwind" fn re_scan_foreign_scan(node: *mut pg_sys::ForeignScanState) {
    // SAFETY: the contract above: fdw_state is the ScanState begin_foreign_scan
    // set, borrowed only for this call.
    unsafe {
        let state = &mut *((*node).fdw_state as *mut ScanState);
        // New outer values or parameters: evaluate again at the next fetch.
        let changed = !(*node).ss.ps.chgParam.is_null();
        if changed {
            state.param_values = None;
        }
        state.rows = 0;
        state.cursor = None;
        state.queued.clear();
        state.calls_before = 0;
        state.page.clear();
        state.kept = Some(Vec::new());
        // The same parameters, and the last read complete and small: the same
        // rows, with no call.
        match state.replay.take().filter(|_| !changed) {
            Some(rows) => {
                state.page.extend(rows.iter().cloned());
                state.replay = Some(rows);
                state.kept = None;
                state.started = true;
            }
            None => state.started = false,
        }
    }
}

/// # Safety
/// PostgreSQL's EndForeignScan, on a node begin_foreign_scan set up.
#[pg_guard]
pub unsafe extern "C-unwind" fn end_foreign_scan(node: *mut pg_sys::ForeignScanState) {
    // SAFETY: the contract above: fdw_state is our ScanState, or NULL.
    unsafe {
        // The state itself goes with the executor's memory context; release
        // the connection and buffered rows now.
        if let Some(state) = ((*node).fdw_state as *mut ScanState).as_mut() {
            state.cursor = None;
            state.queued.clear();
            state.page.clear();
            state.client = None;
        }
    }
}

/// One EXPLAIN property.
///
/// # Safety
/// `es` is the running EXPLAIN's state.
pub(super) unsafe fn explain_text(es: *mut pg_sys::ExplainState, label: &str, value: &str) {
    // SAFETY: the caller's contract above; both strings are NUL-terminated and
    // live across the call, which copies them.
    unsafe {
        let l = CString::new(label).expect("label");
        let v = CString::new(value.replace('\0', "")).expect("value");
        pg_sys::ExplainPropertyText(l.as_ptr(), v.as_ptr(), es);
    }
}

/// EXPLAIN VERBOSE's account of how a read pages and what it should cost.
///
/// # Safety
/// `es` is the running EXPLAIN's state.
pub(super) unsafe fn explain_paging(plan: &ScanPlan, es: *mut pg_sys::ExplainState) {
    // SAFETY: the caller's `es`, passed on to explain_text.
    unsafe {
        if plan.aggregate.is_some() {
            explain_text(es, "Zoho Paging", &format!("aggregated by Zoho, up to {} rows per call", plan.page_size));
            let (calls, credits) = plan.estimate();
            explain_text(es, "Zoho Estimate", &format!("{calls} API call(s), {credits} credit(s)"));
            return;
        }
        let k = &plan.keyset;
        let first = plan.first_page.map(|n| format!("first call {n} rows, then ")).unwrap_or_default();
        let nulls = match (k.nullable(), plan.nulls_first) {
            (false, _) => "",
            (true, true) => ", nulls first by a query of their own",
            (true, false) => ", nulls last by a query of their own",
        };
        explain_text(
            es,
            "Zoho Paging",
            &format!("keyset on {} {}{nulls}, {first}up to {} rows per call", k.field.api_name(), if k.descending { "descending" } else { "ascending" }, plan.page_size),
        );
        let (calls, credits) = plan.estimate();
        explain_text(es, "Zoho Estimate", &format!("{calls} API call(s), {credits} credit(s)"));
    }
}

/// # Safety
/// PostgreSQL's ExplainForeignScan: a valid ExplainState and a node of ours.
#[pg_guard]
pub unsafe extern "C-unwind" fn explain_foreign_scan(node: *mut pg_sys::ForeignScanState, es: *mut pg_sys::ExplainState) {
    // SAFETY: the contract above: fdw_state is our ScanState or NULL, and the
    // plan our ForeignScan (for plan_of).
    unsafe {
        let state = ((*node).fdw_state as *mut ScanState).as_ref();
        let plan = match state {
            Some(s) => s.plan.clone(),
            None => plan_of(node),
        };
        let first = state.and_then(|s| s.first_query.clone()).unwrap_or_else(|| plan.first_coql());
        if plan.aggregate.is_some() {
            explain_text(es, "Relations", &format!("Aggregate on ({})", plan.table.relation));
        }
        explain_text(es, "Zoho COQL", &first);
        if (*es).verbose {
            explain_paging(&plan, es);
            if let Some(s) = state.filter(|s| s.cursor.is_some()) {
                explain_text(es, "Zoho Calls", &(s.calls_before + s.cursor.as_ref().map_or(0, |c| c.calls())).to_string());
            }
        }
    }
}
