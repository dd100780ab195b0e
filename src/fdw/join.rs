//! Joins of a foreign table with any other relation, batched: a custom
//! scan reads the other side first and sends its join keys to Zoho 100 at a
//! time as `Field in (…)`, where PostgreSQL alone would either read the
//! whole module (hash or merge join) or make one call per outer row (a
//! parameterized nested loop).
//!
//! It is offered, next to PostgreSQL's own joins, in queries that only
//! read (no UPDATE … FROM, no FOR UPDATE: EvalPlanQual could not recheck
//! it), for an inner join or a semi-join (`WHERE id IN (SELECT …)`) on
//! `foreign_column = other_column`,
//! where the foreign column holds numbers Zoho compares exactly (the id,
//! integers, lookups); the planner picks it when its calls cost less.
//! Every join clause and every condition on the foreign table is rechecked
//! here on each joined row. Keys already read are not asked for again, so a
//! rescan with the same keys makes no call. `zoho_fdw.enable_batched_join`
//! turns it off.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::CStr;

use pgrx::prelude::*;
use pgrx::{pg_sys, PgList, PgMemoryContexts};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zoho_api::coql::{CoqlCursor, Cond, Literal, MAX_IN_VALUES};
use zoho_api::{Record, ZohoClient};

use super::pushdown::plain_var;
use super::convert::{self, Target};
use super::plan::{strings_of, RelState, ScanPlan, COST_PER_CALL};
use super::table::Kind;
use crate::error::{raise, ZohoFdwError};
use crate::runtime::block_on;

const NAME: &CStr = c"ZohoBatchedJoin";

static mut PATH_METHODS: pg_sys::CustomPathMethods =
    pg_sys::CustomPathMethods { CustomName: NAME.as_ptr(), PlanCustomPath: Some(plan_custom_path), ReparameterizeCustomPathByChild: None };
static mut SCAN_METHODS: pg_sys::CustomScanMethods = pg_sys::CustomScanMethods { CustomName: NAME.as_ptr(), CreateCustomScanState: Some(create_state) };
static mut EXEC_METHODS: pg_sys::CustomExecMethods = pg_sys::CustomExecMethods {
    CustomName: NAME.as_ptr(),
    BeginCustomScan: Some(begin),
    ExecCustomScan: Some(exec),
    EndCustomScan: Some(end),
    ReScanCustomScan: Some(rescan),
    MarkPosCustomScan: None,
    RestrPosCustomScan: None,
    EstimateDSMCustomScan: None,
    InitializeDSMCustomScan: None,
    ReInitializeDSMCustomScan: None,
    InitializeWorkerCustomScan: None,
    ShutdownCustomScan: None,
    ExplainCustomScan: Some(explain),
};
static mut PREV_HOOK: pg_sys::set_join_pathlist_hook_type = None;

/// Installs the planner hook; called once, from `_PG_init`.
pub fn init() {
    // SAFETY: _PG_init runs once per backend, before any planning; the
    // previous hook is kept and called first.
    unsafe {
        PREV_HOOK = pg_sys::set_join_pathlist_hook;
        pg_sys::set_join_pathlist_hook = Some(join_pathlist);
        pg_sys::RegisterCustomScanMethods(&raw const SCAN_METHODS);
    }
}

/// What the executor needs, as JSON in `custom_private`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JoinPlan {
    /// The foreign table's read, without the key condition.
    scan: ScanPlan,
    /// The foreign table's range table index at plan time.
    relid: u32,
    /// The foreign column joined on (its API name and attribute).
    key_field: String,
    key_attnum: i16,
    /// Position of the other side's key in that side's output.
    key_pos: usize,
    /// Semi-join: each foreign row once, when any key matches.
    semi: bool,
    /// The foreign columns at the head of the scan tuple; the other
    /// side's output follows.
    fetch: Vec<i16>,
}

/// A foreign table of this wrapper (whose planning state is a RelState),
/// known by its FDW routine holding our own planner callback: a function's
/// name can be reused by any wrapper, its address in this library cannot.
unsafe fn is_ours(rel: *mut pg_sys::RelOptInfo) -> bool {
    // SAFETY: the planner's RelOptInfo; fdwroutine is NULL or the routine its
    // wrapper's handler returned. get_foreign_rel_size set fdw_private to a
    // RelState for every base rel whose routine is ours.
    unsafe {
        (*rel).reloptkind == pg_sys::RelOptKind::RELOPT_BASEREL
            && !(*rel).fdw_private.is_null()
            && !(*rel).fdwroutine.is_null()
            && (*(*rel).fdwroutine).GetForeignRelSize.map(|f| f as *const ()) == Some(super::plan::get_foreign_rel_size as *const ())
    }
}

/// `foreign.column = other.column` with a built-in `=`: the foreign
/// attribute and the other side's position in its output.
unsafe fn key_clause(ri: *mut pg_sys::RestrictInfo, f: *mut pg_sys::RelOptInfo, other: *mut pg_sys::RelOptInfo, state: &RelState) -> Option<(i16, usize)> {
    // SAFETY: the planner's RestrictInfo and rels of the join being planned;
    // other's cheapest_total_path is non-null (checked by join_pathlist), and an
    // OpExpr's operator exists, so get_opname is not NULL.
    unsafe {
        let clause = (*ri).clause as *mut pg_sys::Node;
        if clause.is_null() || (*clause).type_ != pg_sys::NodeTag::T_OpExpr {
            return None;
        }
        let op = clause as *mut pg_sys::OpExpr;
        if !super::pushdown::is_builtin((*op).opno) || CStr::from_ptr(pg_sys::get_opname((*op).opno)).to_bytes() != b"=" {
            return None;
        }
        let args: Vec<*mut pg_sys::Node> = PgList::<pg_sys::Node>::from_pg((*op).args).iter_ptr().collect();
        let [a, b] = args[..] else { return None };
        let (fv, ov) = (plain_var(a)?, plain_var(b)?);
        let (fv, ov) = if (*fv).varno as u32 == (*f).relid { (fv, ov) } else { (ov, fv) };
        if (*fv).varno as u32 != (*f).relid || !pg_sys::bms_is_member((*ov).varno, (*other).relids) {
            return None;
        }
        let col = state.plan.table.column((*fv).varattno)?;
        if col.kind != Kind::Int || col.unfilterable() {
            return None;
        }
        let pos = PgList::<pg_sys::Node>::from_pg((*(*(*other).cheapest_total_path).pathtarget).exprs).iter_ptr().position(|e| pg_sys::equal(e.cast(), ov.cast()))?;
        Some(((*fv).varattno, pos))
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn join_pathlist(
    root: *mut pg_sys::PlannerInfo,
    joinrel: *mut pg_sys::RelOptInfo,
    outerrel: *mut pg_sys::RelOptInfo,
    innerrel: *mut pg_sys::RelOptInfo,
    jointype: pg_sys::JoinType::Type,
    extra: *mut pg_sys::JoinPathExtraData,
) {
    // SAFETY: the hook saved at init, called with our own arguments.
    if let Some(prev) = unsafe { PREV_HOOK } {
        // SAFETY: another extension's hook; an ERROR in it becomes a Rust
        // panic at the boundary.
        unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| prev(root, joinrel, outerrel, innerrel, jointype, extra)) };
    }
    // SAFETY: PostgreSQL calls this hook with a valid PlannerInfo, join rel,
    // input rels and JoinPathExtraData; `f` is ours (is_ours), so its
    // fdw_private is a RelState, and the path is allocated in the planner's
    // memory.
    unsafe {
        // Reads only: an UPDATE/DELETE … FROM or SELECT … FOR UPDATE would
        // need EvalPlanQual rechecks, which this scan cannot redo.
        if !crate::gucs::ENABLE_BATCHED_JOIN.get() || (*(*root).parse).commandType != pg_sys::CmdType::CMD_SELECT || !(*root).rowMarks.is_null() {
            return;
        }
        let (f, other, semi) = match jointype {
            pg_sys::JoinType::JOIN_INNER if is_ours(innerrel) => (innerrel, outerrel, false),
            pg_sys::JoinType::JOIN_INNER if is_ours(outerrel) => (outerrel, innerrel, false),
            pg_sys::JoinType::JOIN_SEMI if is_ours(outerrel) => (outerrel, innerrel, true),
            _ => return,
        };
        let other_path = (*other).cheapest_total_path;
        if other_path.is_null() || !(*other_path).param_info.is_null() || !pg_sys::bms_is_empty((*joinrel).lateral_relids) {
            return;
        }
        let state = &*((*f).fdw_private as *mut RelState);
        // Parameters of the foreign table's own conditions are not carried.
        if !state.params.is_empty() {
            return;
        }
        // Only plain columns of the foreign table (no whole row, no ctid).
        let f_exprs: Vec<*mut pg_sys::Node> = PgList::<pg_sys::Node>::from_pg((*(*f).reltarget).exprs).iter_ptr().collect();
        if f_exprs.iter().any(|e| plain_var(*e).is_none_or(|v| (*v).varattno <= 0)) {
            return;
        }
        let clauses: Vec<*mut pg_sys::RestrictInfo> = PgList::<pg_sys::RestrictInfo>::from_pg((*extra).restrictlist).iter_ptr().collect();
        let Some((key_attnum, key_pos)) = clauses.iter().find_map(|ri| key_clause(*ri, f, other, state)) else { return };
        // A semi-join keeps a foreign row when any key matches: exactly the
        // key clause, nothing that needs the matching row itself.
        if semi && clauses.len() != 1 {
            return;
        }
        let key_field = state.plan.table.column(key_attnum).map(|c| c.api_name.clone()).unwrap_or_default();
        let plan = JoinPlan { scan: state.plan.clone(), relid: (*f).relid, key_field, key_attnum, key_pos, semi, fetch: Vec::new() };
        let Ok(json) = serde_json::to_string(&plan) else { return };

        let outer_rows = (*other_path).rows.max(1.0);
        let calls = (outer_rows / MAX_IN_VALUES as f64).ceil();
        let rows = (*joinrel).rows;
        let path = pg_sys::palloc0(std::mem::size_of::<pg_sys::CustomPath>()) as *mut pg_sys::CustomPath;
        (*path).path.type_ = pg_sys::NodeTag::T_CustomPath;
        // ExecScan projects.
        (*path).flags = pg_sys::CUSTOMPATH_SUPPORT_PROJECTION;
        (*path).path.pathtype = pg_sys::NodeTag::T_CustomScan;
        (*path).path.parent = joinrel;
        (*path).path.pathtarget = (*joinrel).reltarget;
        (*path).path.rows = rows;
        (*path).path.startup_cost = (*other_path).startup_cost + COST_PER_CALL;
        (*path).path.total_cost = (*other_path).total_cost + calls * COST_PER_CALL + rows * pg_sys::cpu_tuple_cost;
        let mut paths = PgList::<pg_sys::Path>::new();
        paths.push(other_path);
        (*path).custom_paths = paths.into_pg();
        let mut private = PgList::<pg_sys::Node>::from_pg(super::plan::string_list(&[json]));
        private.push((*extra).restrictlist as *mut pg_sys::Node);
        (*path).custom_private = private.into_pg();
        (*path).methods = &raw const PATH_METHODS;
        pg_sys::add_path(joinrel, path as *mut pg_sys::Path);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn plan_custom_path(
    root: *mut pg_sys::PlannerInfo,
    rel: *mut pg_sys::RelOptInfo,
    best_path: *mut pg_sys::CustomPath,
    tlist: *mut pg_sys::List,
    _clauses: *mut pg_sys::List,
    custom_plans: *mut pg_sys::List,
) -> *mut pg_sys::Plan {
    // SAFETY: PostgreSQL calls this for a CustomPath join_pathlist made, whose
    // custom_private is our string_list then the join's restrictlist, and
    // custom_paths the other side; the CustomScan is palloc'd in planner memory.
    unsafe {
        let private = PgList::<pg_sys::Node>::from_pg((*best_path).custom_private);
        let json = strings_of((*best_path).custom_private).into_iter().next().unwrap_or_default();
        let mut plan: JoinPlan = serde_json::from_str(&json).unwrap_or_else(|e| raise(ZohoFdwError::Internal(format!("unreadable join plan: {e}"))));
        let restrict = private.get_ptr(1).unwrap_or(std::ptr::null_mut()) as *mut pg_sys::List;
        let frel = pg_sys::find_base_rel(root, plan.relid as i32);
        // Every join clause and every condition on the foreign table is
        // checked here on each joined row.
        // In security order (a security-barrier view's conditions before a
        // leaky join clause), as PostgreSQL orders a scan's quals.
        let mut ris: Vec<*mut pg_sys::RestrictInfo> = PgList::<pg_sys::RestrictInfo>::from_pg(restrict).iter_ptr().collect();
        ris.extend(PgList::<pg_sys::RestrictInfo>::from_pg((*frel).baserestrictinfo).iter_ptr());
        ris.sort_by_key(|ri| (**ri).security_level);
        let mut ordered = PgList::<pg_sys::RestrictInfo>::new();
        for ri in ris {
            ordered.push(ri);
        }
        let quals = pg_sys::extract_actual_clauses(ordered.into_pg(), false);
        // All of the foreign table's output, not just this tlist: a projection
        // above may replace the tlist with any of it.
        let both = pg_sys::list_concat(pg_sys::list_concat(pg_sys::list_copy(tlist), pg_sys::list_copy((*(*frel).reltarget).exprs)), quals);
        let vars: Vec<*mut pg_sys::Var> = PgList::<pg_sys::Node>::from_pg(pg_sys::pull_var_clause(both as *mut pg_sys::Node, pg_sys::PVC_RECURSE_PLACEHOLDERS as i32))
            .iter_ptr()
            .filter_map(|n| plain_var(n))
            .filter(|v| (**v).varno as u32 == plan.relid)
            .collect();
        let mut scan_tlist = PgList::<pg_sys::TargetEntry>::new();
        for v in vars {
            if (*v).varattno > 0 && !plan.fetch.contains(&(*v).varattno) {
                plan.fetch.push((*v).varattno);
                scan_tlist.push(pg_sys::makeTargetEntry(pg_sys::copyObjectImpl(v.cast()).cast(), plan.fetch.len() as i16, std::ptr::null_mut(), false));
            }
        }
        let other_path = PgList::<pg_sys::Path>::from_pg((*best_path).custom_paths).get_ptr(0).expect("the other side");
        for e in PgList::<pg_sys::Expr>::from_pg((*(*other_path).pathtarget).exprs).iter_ptr() {
            let n = scan_tlist.len() + 1;
            scan_tlist.push(pg_sys::makeTargetEntry(e, n as i16, std::ptr::null_mut(), false));
        }
        plan.scan.fetch = plan.fetch.clone();
        if !plan.scan.fetch.contains(&plan.key_attnum) {
            plan.scan.fetch.push(plan.key_attnum);
        }
        let json = serde_json::to_string(&plan).unwrap_or_else(|e| raise(ZohoFdwError::Planning(format!("cannot encode join plan: {e}"))));
        let cscan = pg_sys::palloc0(std::mem::size_of::<pg_sys::CustomScan>()) as *mut pg_sys::CustomScan;
        (*cscan).scan.plan.type_ = pg_sys::NodeTag::T_CustomScan;
        (*cscan).scan.plan.targetlist = tlist;
        (*cscan).scan.plan.qual = quals;
        (*cscan).scan.scanrelid = 0;
        (*cscan).custom_plans = custom_plans;
        (*cscan).custom_private = super::plan::string_list(&[json]);
        (*cscan).custom_scan_tlist = scan_tlist.into_pg();
        (*cscan).custom_relids = pg_sys::bms_copy((*rel).relids);
        (*cscan).methods = &raw const SCAN_METHODS;
        cscan as *mut pg_sys::Plan
    }
}

/// The executor node: PostgreSQL's state, then ours.
#[repr(C)]
struct JoinNode {
    css: pg_sys::CustomScanState,
    state: *mut JoinState,
}

struct JoinState {
    plan: JoinPlan,
    server: String,
    client: Option<ZohoClient>,
    targets: Vec<(usize, String, Target)>,
    other: *mut pg_sys::PlanState,
    /// Holds a batch's rows of the other side (reset per batch).
    other_slot: *mut pg_sys::TupleTableSlot,
    batch_memory: pg_sys::MemoryContext,
    /// The batch's rows of the other side, with their keys.
    batch: Vec<(String, *mut pg_sys::MinimalTupleData)>,
    other_done: bool,
    /// Foreign records by key, for every key asked for so far.
    records: HashMap<String, Vec<Record>>,
    /// Semi-join: keys whose rows were already returned.
    returned: HashSet<String>,
    /// Joined rows still to return: (row of the batch, key, record).
    out: VecDeque<(usize, String, usize)>,
    calls: u32,
}

unsafe fn join_plan_of(cscan: *mut pg_sys::CustomScan) -> JoinPlan {
    // SAFETY: `cscan` is a CustomScan plan_custom_path made, whose custom_private
    // is our string_list.
    unsafe {
        let json = strings_of((*cscan).custom_private).into_iter().next().unwrap_or_default();
        serde_json::from_str(&json).unwrap_or_else(|e| raise(ZohoFdwError::Internal(format!("unreadable join plan: {e}"))))
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn create_state(cscan: *mut pg_sys::CustomScan) -> *mut pg_sys::Node {
    // SAFETY: PostgreSQL calls this with our CustomScan; the node is palloc'd
    // zeroed at JoinNode's size, its CustomScanState first, `state` NULL until
    // begin.
    unsafe {
        let node = pg_sys::palloc0(std::mem::size_of::<JoinNode>()) as *mut JoinNode;
        (*node).css.ss.ps.type_ = pg_sys::NodeTag::T_CustomScanState;
        (*node).css.flags = (*cscan).flags;
        (*node).css.methods = &raw const EXEC_METHODS;
        node as *mut pg_sys::Node
    }
}

/// A record's key as text: ids and numbers as digits, lookups by their id.
fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("id").and_then(key_text),
        _ => None,
    }
}

/// The foreign table's range table index in the running plan: the member
/// of the scan's relations that is this foreign table.
unsafe fn foreign_rti(estate: *mut pg_sys::EState, relids: *mut pg_sys::Bitmapset, table_oid: u32) -> pg_sys::Index {
    // SAFETY: the running EState, whose range table holds every index in
    // `relids`.
    unsafe {
        let rtable = PgList::<pg_sys::RangeTblEntry>::from_pg((*estate).es_range_table);
        let mut i = -1;
        loop {
            i = pg_sys::bms_next_member(relids, i);
            if i < 0 {
                return 0;
            }
            if rtable.get_ptr(i as usize - 1).is_some_and(|rte| u32::from((*rte).relid) == table_oid) {
                return i as pg_sys::Index;
            }
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn begin(css: *mut pg_sys::CustomScanState, estate: *mut pg_sys::EState, eflags: i32) {
    // SAFETY: PostgreSQL calls this with the JoinNode create_state made, for
    // our CustomScan, whose custom_plans holds the other side; the JoinState,
    // its slot and batch memory live in the query's memory context until `end`.
    unsafe {
        let node = css as *mut JoinNode;
        let cscan = (*css).ss.ps.plan as *mut pg_sys::CustomScan;
        let plan = join_plan_of(cscan);
        let child_plan = PgList::<pg_sys::Plan>::from_pg((*cscan).custom_plans).get_ptr(0).expect("the other side");
        let other = pg_sys::ExecInitNode(child_plan, estate, eflags);
        let mut ps = PgList::<pg_sys::PlanState>::new();
        ps.push(other);
        (*css).custom_ps = ps.into_pg();
        let ctx = crate::server::resolve_oid(pg_sys::Oid::from(plan.scan.server_oid)).unwrap_or_else(|e| raise(e));
        let client = if eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0 {
            None
        } else {
            let rti = foreign_rti(estate, (*cscan).custom_relids, plan.scan.table_oid);
            Some(ctx.client_for(super::check_as_user(estate, rti)).unwrap_or_else(|e| raise(e)))
        };
        let targets = plan
            .fetch
            .iter()
            .enumerate()
            .filter_map(|(i, a)| plan.scan.table.column(*a).map(|c| (i, c.api_name.clone(), Target::new(pg_sys::Oid::from(c.type_oid), c.typmod))))
            .collect();
        let state = JoinState {
            plan,
            server: ctx.name.clone(),
            client,
            targets,
            other,
            other_slot: pg_sys::MakeSingleTupleTableSlot(pg_sys::ExecGetResultType(other), &raw const pg_sys::TTSOpsMinimalTuple),
            batch_memory: pg_sys::AllocSetContextCreateInternal((*estate).es_query_cxt, c"zoho batched join".as_ptr(), 0, 8 * 1024, 8 * 1024 * 1024),
            batch: Vec::new(),
            other_done: false,
            records: HashMap::new(),
            returned: HashSet::new(),
            out: VecDeque::new(),
            calls: 0,
        };
        (*node).state = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(state);
    }
}

unsafe fn slot_values(slot: *mut pg_sys::TupleTableSlot) -> (&'static mut [pg_sys::Datum], &'static mut [bool]) {
    // SAFETY: callers pass a valid slot; deformed, tts_values and tts_isnull hold
    // natts entries, valid until the slot changes: callers use the 'static
    // slices at once and never keep them.
    unsafe {
        let natts = (*(*slot).tts_tupleDescriptor).natts;
        if i32::from((*slot).tts_nvalid) < natts {
            pg_sys::slot_getsomeattrs_int(slot, natts);
        }
        (std::slice::from_raw_parts_mut((*slot).tts_values, natts as usize), std::slice::from_raw_parts_mut((*slot).tts_isnull, natts as usize))
    }
}

impl JoinState {
    /// The key of the other side's current row, as Zoho writes it.
    unsafe fn key_of(&self, slot: *mut pg_sys::TupleTableSlot) -> Option<String> {
        // SAFETY: `slot` holds a row of the other side, whose descriptor gives
        // the key's type for convert::literal; key_pos is bounds-checked.
        unsafe {
            let (values, nulls) = slot_values(slot);
            if nulls[self.plan.key_pos] {
                return None; // NULL joins nothing
            }
            let desc = (*slot).tts_tupleDescriptor;
            let type_oid = (*desc).attrs.as_slice((*desc).natts as usize)[self.plan.key_pos].atttypid;
            match convert::literal(values[self.plan.key_pos], type_oid, convert::Rounding::Exact)? {
                Literal::Int(i) => Some(i.to_string()),
                // A fraction equals no integer; a whole number is one.
                Literal::Decimal(d) => d.parse::<i64>().ok().or_else(|| d.trim_end_matches('0').trim_end_matches('.').parse().ok()).map(|i: i64| i.to_string()),
                _ => None,
            }
        }
    }

    /// Reads up to 100 new keys of the other side, asks Zoho for their
    /// records in one query, and queues the joined rows.
    unsafe fn next_batch(&mut self) {
        // SAFETY: `other` is the child node begin initialised; its rows are
        // copied into batch_memory, reset only here, once the previous batch is
        // returned.
        unsafe {
            pg_sys::MemoryContextReset(self.batch_memory);
            self.batch.clear();
            let mut wanted: Vec<String> = Vec::new();
            while wanted.len() < MAX_IN_VALUES && !self.other_done {
                let other = self.other;
                let exec = (*other).ExecProcNode.expect("an initialised plan");
                // SAFETY: the other side's own executor function; an ERROR in it
                // becomes a Rust panic at the boundary.
                let slot = pg_sys::ffi::pg_guard_ffi_boundary(|| exec(other));
                if slot.is_null() || (*slot).tts_flags & pg_sys::TTS_FLAG_EMPTY as u16 != 0 {
                    self.other_done = true;
                    break;
                }
                let Some(key) = self.key_of(slot) else { continue };
                if self.plan.semi && self.returned.contains(&key) {
                    continue;
                }
                let copy = (*(*slot).tts_ops).copy_minimal_tuple.expect("slot op");
                let tuple = PgMemoryContexts::For(self.batch_memory).switch_to(|_| pg_sys::ffi::pg_guard_ffi_boundary(|| copy(slot)));
                if !self.records.contains_key(&key) && !wanted.contains(&key) {
                    wanted.push(key.clone());
                }
                self.batch.push((key, tuple));
            }
            if !wanted.is_empty() {
                self.fetch(&wanted);
            }
            for (i, (key, _)) in self.batch.iter().enumerate() {
                if self.plan.semi && !self.returned.insert(key.clone()) {
                    continue;
                }
                let n = self.records.get(key).map_or(0, Vec::len);
                self.out.extend((0..n).map(|r| (i, key.clone(), r)));
            }
        }
    }

    /// One query (paged if Zoho holds more than a page) for `keys`.
    fn fetch(&mut self, keys: &[String]) {
        let values: Vec<Literal> = keys.iter().filter_map(|k| k.parse().ok().map(Literal::Int)).collect();
        let query = self.plan.scan.query_leaving(Some(&[]), 1).filter(Cond::In { field: self.plan.key_field.clone(), values, negated: false });
        // 100 keys of the id match 100 records at most: a 1-credit call
        // (keys of a lookup may match more; paging goes on at full size).
        let cursor = CoqlCursor::new(query, Some(zoho_api::coql::Keyset::Id), zoho_api::coql::MAX_LIMIT).map(|c| c.first_page(200));
        let mut cursor = cursor.unwrap_or_else(|e| raise(ZohoFdwError::api(&self.server, e)));
        for k in keys {
            self.records.entry(k.clone()).or_default();
        }
        let client = self.client.as_ref().expect("a client when executing");
        while !cursor.is_done() {
            let page = block_on(cursor.next_page(client)).unwrap_or_else(|e| raise(self.plan.scan.table.explain_error(&self.server, e)));
            let Some(rows) = page else { break };
            for r in rows {
                if let Some(k) = r.get(&self.plan.key_field).and_then(key_text) {
                    self.records.entry(k).or_default().push(r);
                }
            }
        }
        self.calls += cursor.calls();
    }

    /// Fills the scan tuple: the foreign record's columns, then the other
    /// side's row.
    unsafe fn store(&self, slot: *mut pg_sys::TupleTableSlot, batch_row: usize, key: &str, record: usize) -> *mut pg_sys::TupleTableSlot {
        // SAFETY: `slot` is the scan slot (the foreign columns, then the other
        // side's: custom_scan_tlist); the batch row's minimal tuple lives in
        // batch_memory until the next batch, and other_slot has the other
        // side's descriptor.
        unsafe {
            super::scan::clear(slot);
            let natts = (*(*slot).tts_tupleDescriptor).natts as usize;
            let values = std::slice::from_raw_parts_mut((*slot).tts_values, natts);
            let nulls = std::slice::from_raw_parts_mut((*slot).tts_isnull, natts);
            nulls.fill(true);
            let rec = &self.records[key][record];
            let module = &self.plan.scan.table.module;
            for (i, api_name, target) in &self.targets {
                let describe = || format!("{module}.{api_name} of record {}", rec.get("id").and_then(Value::as_str).unwrap_or("?"));
                if let Some(d) = target.datum(rec.get(api_name).unwrap_or(&Value::Null), describe).unwrap_or_else(|e| raise(e)) {
                    values[*i] = d;
                    nulls[*i] = false;
                }
            }
            pg_sys::ExecStoreMinimalTuple(self.batch[batch_row].1, self.other_slot, false);
            let (ov, on) = slot_values(self.other_slot);
            let head = self.plan.fetch.len();
            let n = ov.len().min(natts - head);
            values[head..head + n].copy_from_slice(&ov[..n]);
            nulls[head..head + n].copy_from_slice(&on[..n]);
            pg_sys::ExecStoreVirtualTuple(slot)
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn next_row(ss: *mut pg_sys::ScanState) -> *mut pg_sys::TupleTableSlot {
    // SAFETY: ExecScan calls this with our JoinNode (`ss` is its head), whose
    // state begin set, borrowed only for this call.
    unsafe {
        let st = &mut *(*(ss as *mut JoinNode)).state;
        let slot = (*ss).ss_ScanTupleSlot;
        loop {
            if let Some((i, key, r)) = st.out.pop_front() {
                // Values in per-tuple memory, which ExecScan resets per row.
                let econtext = (*ss).ps.ps_ExprContext;
                return PgMemoryContexts::For((*econtext).ecxt_per_tuple_memory).switch_to(|_| st.store(slot, i, &key, r));
            }
            if st.other_done {
                return super::scan::clear(slot);
            }
            st.next_batch();
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn recheck(_ss: *mut pg_sys::ScanState, _slot: *mut pg_sys::TupleTableSlot) -> bool {
    true
}

#[pg_guard]
unsafe extern "C-unwind" fn exec(css: *mut pg_sys::CustomScanState) -> *mut pg_sys::TupleTableSlot {
    // SAFETY: PostgreSQL calls this with our JoinNode; next_row and recheck have
    // ExecScan's access and recheck signatures.
    unsafe {
        // ExecScan applies the quals and the projection to each joined row.
        pg_sys::ExecScan(&mut (*css).ss, Some(next_row), Some(recheck))
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn rescan(css: *mut pg_sys::CustomScanState) {
    // SAFETY: PostgreSQL calls this with our JoinNode, whose state begin set.
    unsafe {
        let st = &mut *(*(css as *mut JoinNode)).state;
        // ExecReScan passes changed parameters to lefttree/righttree only: a
        // custom scan's child gets them here, or it replays stale rows.
        if !(*css).ss.ps.chgParam.is_null() {
            pg_sys::UpdateChangedParamSet(st.other, (*css).ss.ps.chgParam);
        }
        pg_sys::ExecReScan(st.other);
        st.other_done = false;
        st.batch.clear();
        st.out.clear();
        st.returned.clear();
        // Records already read stay: the same keys make no new call.
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn end(css: *mut pg_sys::CustomScanState) {
    // SAFETY: PostgreSQL calls this once, last, with our JoinNode whose state
    // begin set; the child node and the slot are not used after this.
    unsafe {
        let st = &mut *(*(css as *mut JoinNode)).state;
        pg_sys::ExecEndNode(st.other);
        pg_sys::ExecDropSingleTupleTableSlot(st.other_slot);
        st.client = None;
        st.records.clear();
        st.batch.clear();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn explain(css: *mut pg_sys::CustomScanState, _ancestors: *mut pg_sys::List, es: *mut pg_sys::ExplainState) {
    // SAFETY: PostgreSQL calls this with a valid ExplainState and our JoinNode,
    // whose state begin set.
    unsafe {
        let st = &*(*(css as *mut JoinNode)).state;
        let plan = &st.plan;
        let marker = Cond::In { field: plan.key_field.clone(), values: vec![Literal::Int(0)], negated: false };
        let text = CoqlCursor::new(plan.scan.query_leaving(None, 1).filter(marker), Some(zoho_api::coql::Keyset::Id), zoho_api::coql::MAX_LIMIT)
            .map(|c| c.first_page(200))
            .and_then(|c| c.next_query())
            .and_then(|q| q.render())
            .map(|t| t.replace(&format!("{} in (0)", plan.key_field), &format!("{} in (…)", plan.key_field)))
            .unwrap_or_else(|e| format!("(cannot render: {e})"));
        super::scan::explain_text(es, "Zoho COQL", &text);
        if (*es).verbose {
            let how = if plan.semi { "semi-join" } else { "inner join" };
            super::scan::explain_text(es, "Zoho Join", &format!("{how} on {}.{}, up to {MAX_IN_VALUES} keys of the other side per call", plan.scan.table.module, plan.key_field));
            if st.client.is_some() || st.calls > 0 {
                super::scan::explain_text(es, "Zoho Calls", &st.calls.to_string());
            }
        }
    }
}
