//! INSERT, and the UPDATE and DELETE that cannot run directly
//! ([`super::direct`]), row by row as the ModifyTable hands them over.
//!
//! Writes go out 100 records a call: PostgreSQL hands INSERTs over in
//! batches (ExecForeignBatchInsert), and UPDATE/DELETE rows are buffered and
//! flushed every 100 rows and at the end of the statement. RETURNING needs
//! each row's result at once, so it writes row by row and answers from the
//! record as Zoho holds it afterwards (id, Modified_Time, formulas, …).
//!
//! Remote writes cannot be rolled back: when Zoho rejects a record, the
//! error names the row, the field and Zoho's code, and its DETAIL says what
//! this statement had already written.

use std::ffi::{CStr, CString};

use pgrx::prelude::*;
use pgrx::{pg_sys, PgMemoryContexts};
use serde_json::Value;
use zoho_api::{Record, RecordResult, WriteOptions, WriteSuccess, ZohoClient};

use super::convert::{self, Target};
use super::table::{self, TableDef};
use crate::error::{raise, ZohoFdwError};
use crate::runtime::block_on;
use crate::server;

/// Records per write call (Zoho's maximum).
pub(super) const BATCH: usize = 100;
const ROW_ID: &std::ffi::CStr = c"zoho_id";

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Insert => "INSERT",
            Op::Update => "UPDATE",
            Op::Delete => "DELETE",
        }
    }
}

pub(super) struct ModifyState {
    pub(super) op: Op,
    pub(super) table: TableDef,
    pub(super) server: String,
    client: ZohoClient,
    /// Attribute of the row id in the plan's output (UPDATE, DELETE).
    id_attno: i16,
    /// The plan's `wholerow` junk column (the old row), when a BEFORE ROW
    /// UPDATE trigger may change columns the SET list does not name.
    wholerow_attno: i16,
    /// The id column's output function: an id is read as its own type.
    id_output: pg_sys::Oid,
    /// Columns an UPDATE sets.
    updated: Vec<i16>,
    pub(super) returning: bool,
    /// RETURNING shows only values this statement knows (what it sets and
    /// what it read), so UPDATE rows can be held back and sent 100 a call.
    returning_known: bool,
    /// Inserts arrive one at a time (COPY FROM) and may wait for a full call.
    buffer_inserts: bool,
    /// Buffered UPDATE records, DELETE ids or COPY rows, with their row numbers.
    pending: Vec<(usize, Record)>,
    rows: usize,
    written: usize,
    written_ids: Vec<String>,
    targets: Vec<Target>,
}

impl Op {
    fn of(cmd: pg_sys::CmdType::Type) -> Op {
        match cmd {
            pg_sys::CmdType::CMD_INSERT => Op::Insert,
            pg_sys::CmdType::CMD_UPDATE => Op::Update,
            _ => Op::Delete,
        }
    }
}

unsafe fn values(slot: *mut pg_sys::TupleTableSlot) -> (&'static [pg_sys::Datum], &'static [bool]) {
    // SAFETY: callers pass a valid slot; deformed, tts_values and tts_isnull hold
    // natts entries, valid until the slot changes: callers use the 'static
    // slices at once and never keep them.
    unsafe {
        let natts = (*(*slot).tts_tupleDescriptor).natts;
        if i32::from((*slot).tts_nvalid) < natts {
            pg_sys::slot_getsomeattrs_int(slot, natts);
        }
        (
            std::slice::from_raw_parts((*slot).tts_values, natts as usize),
            std::slice::from_raw_parts((*slot).tts_isnull, natts as usize),
        )
    }
}

/// Whether two values of one attribute are stored alike, as PostgreSQL's
/// datumIsEqual compares (a value stored two ways counts as changed, which
/// only sends it again).
///
/// # Safety
/// Both datums are non-null values of an attribute with this byval / len.
unsafe fn same_datum(a: pg_sys::Datum, b: pg_sys::Datum, byval: bool, len: i16) -> bool {
    if byval {
        return a == b;
    }
    // SAFETY: the contract above: a by-reference value points to `len`
    // bytes, a varlena (-1) to its header, a cstring (-2) to a C string.
    unsafe {
        let bytes = |d: pg_sys::Datum| -> &[u8] {
            let p = d.cast_mut_ptr::<u8>();
            let n = match len {
                -1 => pgrx::varlena::varsize_any(p.cast()),
                -2 => CStr::from_ptr(p.cast()).to_bytes().len(),
                n => n as usize,
            };
            std::slice::from_raw_parts(p, n)
        };
        bytes(a) == bytes(b)
    }
}

impl ModifyState {
    /// A write of `cmd` to foreign table `rel_oid` with `user`'s mapping.
    ///
    /// # Safety
    /// `rel_oid` is a foreign table of this wrapper, locked by the running statement.
    pub(super) unsafe fn open(cmd: pg_sys::CmdType::Type, rel_oid: pg_sys::Oid, user: pg_sys::Oid) -> ModifyState {
        // SAFETY: the caller's contract above: GetForeignTable finds the table,
        // and getTypeOutputInfo looks up its id column's type.
        unsafe {
            let op = Op::of(cmd);
            let table = table::load(rel_oid).unwrap_or_else(|e| raise(e));
            let ctx = server::resolve_oid((*pg_sys::GetForeignTable(rel_oid)).serverid).unwrap_or_else(|e| raise(e));
            let targets = table.columns.iter().map(|c| Target::new(pg_sys::Oid::from(c.type_oid), c.typmod)).collect();
            let id_output = match table.id_column() {
                Some(id) if op != Op::Insert => {
                    let (mut func, mut varlena) = (pg_sys::Oid::INVALID, false);
                    pg_sys::getTypeOutputInfo(pg_sys::Oid::from(id.type_oid), &mut func, &mut varlena);
                    func
                }
                _ => pg_sys::Oid::INVALID,
            };
            ModifyState {
                op,
                server: ctx.name.clone(),
                client: ctx.client_for(user).unwrap_or_else(|e| raise(e)),
                table,
                id_attno: 0,
                wholerow_attno: 0,
                id_output,
                updated: Vec::new(),
                returning: false,
                returning_known: false,
                buffer_inserts: false,
                pending: Vec::new(),
                rows: 0,
                written: 0,
                written_ids: Vec::new(),
                targets,
            }
        }
    }

    fn fail(&self, row: usize, what: String, code: Option<String>) -> ZohoFdwError {
        ZohoFdwError::WriteRejected {
            verb: self.op.verb(),
            table: self.table.relation.clone(),
            row,
            what,
            code,
            written: self.written,
            ids: self.written_ids.clone(),
        }
    }

    /// The record to send for a row; wrong values fail before any sending.
    unsafe fn record(&self, row: usize, slot: *mut pg_sys::TupleTableSlot, only: Option<&[i16]>) -> Result<Record, ZohoFdwError> {
        // SAFETY: `slot` holds a row of this table (the caller's), so each
        // column's datum is of the type to_json reads it as.
        unsafe {
            let (vals, nulls) = values(slot);
            let mut rec = Record::new();
            for col in &self.table.columns {
                if only.is_some_and(|o| !o.contains(&col.attnum)) {
                    continue;
                }
                let i = (col.attnum - 1) as usize;
                if self.op == Op::Insert && nulls[i] {
                    continue;
                }
                if col.read_only {
                    return Err(self.fail(row, format!("column {} ({}.{}) is set by Zoho and cannot be written", col.name, self.table.module, col.api_name), None));
                }
                let v = convert::to_json(vals[i], nulls[i], col)
                    .map_err(|why| self.fail(row, format!("column {} ({}.{}): {why}", col.name, self.table.module, col.api_name), None))?;
                rec.insert(col.api_name.clone(), v);
            }
            Ok(rec)
        }
    }

    pub(super) fn client(&self) -> &ZohoClient {
        &self.client
    }

    /// Counts a row of this statement and returns its number (for messages).
    pub(super) fn next_row(&mut self) -> usize {
        self.rows += 1;
        self.rows
    }

    /// The record naming the row UPDATE or DELETE acts on, and its id.
    unsafe fn id_record(&self, plan_slot: *mut pg_sys::TupleTableSlot) -> (String, Record) {
        // SAFETY: `plan_slot` is the plan's output row, as row_id requires.
        unsafe {
            let id = self.row_id(plan_slot);
            let mut rec = Record::new();
            rec.insert("id".into(), Value::String(id.clone()));
            (id, rec)
        }
    }

    /// The columns besides the SET list whose new value differs from the
    /// old row (a BEFORE ROW trigger's changes); an error when one is a
    /// field Zoho sets, since that change could not be sent.
    ///
    /// # Safety
    /// `plan_slot` is the plan's output row with `wholerow` at
    /// wholerow_attno, and `slot` the new row, both of this table.
    unsafe fn trigger_changes(&self, row: usize, plan_slot: *mut pg_sys::TupleTableSlot, slot: *mut pg_sys::TupleTableSlot) -> Result<Vec<i16>, ZohoFdwError> {
        if self.wholerow_attno <= 0 {
            return Ok(Vec::new());
        }
        // SAFETY: the contract above: wholerow is a composite datum of the
        // table's row type, deformed with the new row's (the table's)
        // descriptor; each datum is compared as its attribute stores it.
        unsafe {
            let (plan_vals, plan_nulls) = values(plan_slot);
            let w = (self.wholerow_attno - 1) as usize;
            if plan_nulls[w] {
                return Ok(Vec::new());
            }
            let header = pg_sys::pg_detoast_datum(plan_vals[w].cast_mut_ptr()) as pg_sys::HeapTupleHeader;
            let mut old_tuple: pg_sys::HeapTupleData = std::mem::zeroed();
            old_tuple.t_len = pgrx::varlena::varsize_any(header.cast()) as u32;
            old_tuple.t_data = header;
            let desc = (*slot).tts_tupleDescriptor;
            let natts = (*desc).natts as usize;
            let (mut old, mut old_nulls) = (vec![pg_sys::Datum::from(0); natts], vec![true; natts]);
            pg_sys::heap_deform_tuple(&mut old_tuple, desc, old.as_mut_ptr(), old_nulls.as_mut_ptr());
            let (new, new_nulls) = values(slot);
            let mut changed = Vec::new();
            for col in self.table.columns.iter().filter(|c| !self.updated.contains(&c.attnum)) {
                let i = (col.attnum - 1) as usize;
                let att = &*(*desc).attrs.as_ptr().add(i);
                let same = old_nulls[i] == new_nulls[i] && (new_nulls[i] || same_datum(old[i], new[i], att.attbyval, att.attlen));
                if same {
                    continue;
                }
                if col.read_only {
                    return Err(self.fail(row, format!("a trigger changed column {} ({}.{}), which Zoho sets and the update cannot send", col.name, self.table.module, col.api_name), None));
                }
                changed.push(col.attnum);
            }
            Ok(changed)
        }
    }

    unsafe fn row_id(&self, plan_slot: *mut pg_sys::TupleTableSlot) -> String {
        // SAFETY: `plan_slot` is the ModifyTable's plan output row (the
        // caller's), which holds the row id junk column at id_attno.
        let (vals, nulls) = unsafe { values(plan_slot) };
        let i = (self.id_attno - 1) as usize;
        if nulls[i] {
            raise(ZohoFdwError::Internal(format!("{} row without an id", self.op.verb())));
        }
        // SAFETY: the datum is of the id column's type, whose output
        // function this is; it returns a palloc'd C string.
        let text = unsafe { CStr::from_ptr(pg_sys::OidOutputFunctionCall(self.id_output, vals[i])) }.to_string_lossy().trim().to_string();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            raise(ZohoFdwError::BadRow {
                table: self.table.relation.clone(),
                what: format!("the {} row's id '{text}' is not a Zoho record id (digits only)", self.op.verb()),
            });
        }
        text
    }

    /// Checks Zoho's per-record answers, counting what was written.
    fn check(&mut self, rows: &[usize], results: Vec<RecordResult>) -> Vec<WriteSuccess> {
        let mut ids = Vec::new();
        let mut first_error = None;
        for r in results {
            match r.outcome {
                Ok(ok) => {
                    self.written += 1;
                    if self.written_ids.len() < 10 {
                        self.written_ids.push(ok.id.clone());
                    }
                    ids.push(ok);
                }
                Err(e) if first_error.is_none() => first_error = Some((rows[r.index], e)),
                Err(_) => {}
            }
        }
        if let Some((row, e)) = first_error {
            let field = e.field().map(|f| match self.table.columns.iter().find(|c| c.api_name == f) {
                Some(c) => format!(" on field {f} (column {})", c.name),
                None => format!(" on field {f}"),
            });
            let mut what = format!("{}{}: {}", e.code, field.unwrap_or_default(), e.message);
            if let Some(dup) = e.details.pointer("/duplicate_record/id").and_then(Value::as_str) {
                what.push_str(&format!(" (existing record {dup})"));
            }
            raise(self.fail(row, what, Some(e.code)));
        }
        ids
    }

    /// Writes `records` (rows `rows` of the statement), 100 a call; any
    /// record Zoho rejects fails the statement, naming it.
    pub(super) fn send(&mut self, rows: &[usize], records: Vec<Record>) -> Vec<WriteSuccess> {
        let opts = WriteOptions::default();
        let module = self.table.module.clone();
        let result = match self.op {
            Op::Insert => block_on(self.client.insert(&module, &records, &opts)),
            Op::Update => block_on(self.client.update(&module, &records, &opts)),
            Op::Delete => {
                let ids: Vec<String> = records.iter().filter_map(zoho_api::records::record_id).collect();
                block_on(self.client.delete(&module, &ids, true))
            }
        };
        let results = result.unwrap_or_else(|e| raise(self.table.explain_error(&self.server, e)));
        self.check(rows, results)
    }

    /// Holds a record back until 100 are waiting (or the statement ends).
    fn buffer(&mut self, row: usize, rec: Record) {
        self.pending.push((row, rec));
        if self.pending.len() >= BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let (rows, records): (Vec<usize>, Vec<Record>) = std::mem::take(&mut self.pending).into_iter().unzip();
        self.send(&rows, records);
    }

    /// Replaces `slot`'s contents with the record as Zoho holds it. The
    /// tuple is formed in the current memory context; the slot frees it
    /// only when `owned` (not when that context is reset under it).
    ///
    /// # Safety
    /// `slot` is a valid slot of this table's descriptor.
    pub(super) unsafe fn fill_from(&self, slot: *mut pg_sys::TupleTableSlot, record: &Record, owned: bool) {
        // SAFETY: the caller's contract above: the tuple is formed with the
        // slot's descriptor from natts values, each made by its column type's
        // input function.
        unsafe {
            let tupdesc = (*slot).tts_tupleDescriptor;
            let natts = (*tupdesc).natts as usize;
            let mut vals = vec![pg_sys::Datum::from(0usize); natts];
            let mut nulls = vec![true; natts];
            for (col, target) in self.table.columns.iter().zip(&self.targets) {
                let v = record.get(&col.api_name).unwrap_or(&Value::Null);
                let describe = || format!("column {} ({}.{}) of the {} result", col.name, self.table.module, col.api_name, self.op.verb());
                if let Some(d) = target.datum(v, describe).unwrap_or_else(|e| raise(e)) {
                    vals[(col.attnum - 1) as usize] = d;
                    nulls[(col.attnum - 1) as usize] = false;
                }
            }
            let tuple = pg_sys::heap_form_tuple(tupdesc, vals.as_mut_ptr(), nulls.as_mut_ptr());
            pg_sys::ExecForceStoreHeapTuple(tuple, slot, owned);
        }
    }

    fn fetch(&self, id: &str) -> Record {
        block_on(self.client.get_record(&self.table.module, id))
            .unwrap_or_else(|e| raise(self.table.explain_error(&self.server, e)))
            .unwrap_or_default()
    }
}

/// Zoho's record ids are up to 19 digits: an id column must hold them
/// exactly. Checked at plan time, before any row is read or sent.
fn check_id_type(table: &TableDef, id: &super::table::ColumnDef) {
    let oid = pg_sys::Oid::from(id.type_oid);
    if matches!(oid, pg_sys::INT8OID | pg_sys::INT4OID | pg_sys::INT2OID | pg_sys::NUMERICOID | pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID) {
        return;
    }
    // SAFETY: format_type_be names any type oid, returning a palloc'd string.
    let name = unsafe { CStr::from_ptr(pg_sys::format_type_be(oid)) }.to_string_lossy().into_owned();
    raise(ZohoFdwError::NotSupported(format!(
        "column {} of foreign table {} holds the record id as {name}, which cannot hold Zoho's ids exactly; use bigint, numeric or text",
        id.name, table.relation
    )));
}

/// # Safety
/// PostgreSQL's AddForeignUpdateTargets: a valid PlannerInfo, and our
/// table's open Relation at range table index `rtindex`.
#[pg_guard]
pub unsafe extern "C-unwind" fn add_foreign_update_targets(root: *mut pg_sys::PlannerInfo, rtindex: pg_sys::Index, _rte: *mut pg_sys::RangeTblEntry, rel: pg_sys::Relation) {
    // SAFETY: the contract above; the Var is made in the planner's memory and
    // ROW_ID is a static C string.
    unsafe {
        let table = table::load((*rel).rd_id).unwrap_or_else(|e| raise(e));
        let Some(id) = table.id_column() else {
            raise(ZohoFdwError::NotSupported(format!(
                "foreign table {} has no column for the record id (a bigint column with api_name 'id'), which UPDATE and DELETE need",
                table.relation
            )));
        };
        check_id_type(&table, id);
        let var = pg_sys::makeVar(rtindex as i32, id.attnum, pg_sys::Oid::from(id.type_oid), id.typmod, pg_sys::Oid::INVALID, 0);
        pg_sys::add_row_identity_var(root, var, rtindex, ROW_ID.as_ptr());
    }
}

unsafe fn returning_list(mtstate: *mut pg_sys::ModifyTableState, subplan: i32) -> Option<*mut pg_sys::Node> {
    // SAFETY: the executor's `mtstate` runs a ModifyTable, whose returningLists
    // is NIL or a List with an entry per result relation.
    unsafe {
        pgrx::PgList::<pg_sys::Node>::from_pg((*((*mtstate).ps.plan as *mut pg_sys::ModifyTable)).returningLists).get_ptr(subplan as usize)
    }
}

/// Whether an UPDATE's RETURNING shows only values known before the write:
/// the slot holds the new row, and only what Zoho recomputes (Modified_Time,
/// formulas) is not in it.
unsafe fn returning_known(mtstate: *mut pg_sys::ModifyTableState, rinfo: *mut pg_sys::ResultRelInfo, subplan: i32, table: &TableDef) -> bool {
    // SAFETY: the executor's `mtstate` and `rinfo` (as returning_list needs); a
    // RETURNING list is an expression tree.
    unsafe {
        let Some(list) = returning_list(mtstate, subplan) else { return false };
        let (mut attrs, mut whole_row) = (Vec::new(), false);
        super::plan::attrs_used(list, (*rinfo).ri_RangeTableIndex, &mut attrs, &mut whole_row);
        let known = |a: &i16| table.column(*a).is_some_and(|c| !c.read_only || matches!(c.api_name.as_str(), "id" | "Created_Time" | "Created_By"));
        !whole_row && attrs.iter().all(known)
    }
}

/// # Safety
/// PostgreSQL's BeginForeignModify: ExecInitModifyTable's state and our
/// table's ResultRelInfo.
#[pg_guard]
pub unsafe extern "C-unwind" fn begin_foreign_modify(mtstate: *mut pg_sys::ModifyTableState, rinfo: *mut pg_sys::ResultRelInfo, _private: *mut pg_sys::List, subplan: i32, eflags: i32) {
    // SAFETY: the contract above: for UPDATE and DELETE the subplan is
    // initialised (lefttree); the ModifyState lives in the query's memory
    // context (current here) until the executor ends.
    unsafe {
        if eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0 {
            return;
        }
        let rel_oid = (*(*rinfo).ri_RelationDesc).rd_id;
        let user = super::check_as_user((*mtstate).ps.state, (*rinfo).ri_RangeTableIndex);
        let mut state = ModifyState::open((*mtstate).operation, rel_oid, user);
        if state.op != Op::Insert {
            let sub = (*(*mtstate).ps.lefttree).plan;
            state.id_attno = pg_sys::ExecFindJunkAttributeInTlist((*sub).targetlist, ROW_ID.as_ptr());
        }
        if state.op == Op::Update {
            let set = pg_sys::ExecGetUpdatedCols(rinfo, (*mtstate).ps.state);
            let mut i = -1;
            loop {
                i = pg_sys::bms_next_member(set, i);
                if i < 0 {
                    break;
                }
                state.updated.push((i + pg_sys::FirstLowInvalidHeapAttributeNumber) as i16);
            }
            // Refuse up front, before any row is sent.
            if let Some(c) = state.table.columns.iter().find(|c| state.updated.contains(&c.attnum) && c.read_only) {
                raise(ZohoFdwError::NotSupported(format!("column {} ({}.{}) of {} is set by Zoho and cannot be updated", c.name, state.table.module, c.api_name, state.table.relation)));
            }
            // A BEFORE ROW trigger may change any column, not only those SET
            // names. PostgreSQL then gives the old row as `wholerow`; what
            // differs from it is sent too (not every column: the values of
            // some fields do not survive a round trip unchanged).
            let td = (*rinfo).ri_TrigDesc;
            if !td.is_null() && (*td).trig_update_before_row {
                let sub = (*(*mtstate).ps.lefttree).plan;
                state.wholerow_attno = pg_sys::ExecFindJunkAttributeInTlist((*sub).targetlist, c"wholerow".as_ptr());
            }
        }
        // ri_projectReturning is set up after this callback: ask the plan.
        state.returning = returning_list(mtstate, subplan).is_some();
        state.returning_known = state.op == Op::Update && returning_known(mtstate, rinfo, subplan, &state.table);
        (*rinfo).ri_FdwState = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(state).cast();
    }
}

/// rinfo's write state. Every path into the Exec callbacks passes through
/// begin_foreign_modify or begin_foreign_insert first; a NULL state is an
/// error, never a dereference.
unsafe fn state<'a>(rinfo: *mut pg_sys::ResultRelInfo) -> &'a mut ModifyState {
    // SAFETY: callers pass a live ResultRelInfo of our table, whose
    // ri_FdwState is NULL or the ModifyState one of the begin callbacks put
    // there, borrowed only for one callback.
    let st = unsafe { ((*rinfo).ri_FdwState as *mut ModifyState).as_mut() };
    st.unwrap_or_else(|| raise(ZohoFdwError::Internal("a write reached a foreign table that was not opened for writing".into())))
}

/// # Safety
/// PostgreSQL's BeginForeignInsert: `COPY FROM` into our table, or rows an
/// INSERT or UPDATE routes to a partition that is our table. `mtstate`'s
/// ps.state is the running EState (for COPY the ModifyTableState is one
/// CopyFrom made, without a plan); `rinfo` is our table's ResultRelInfo.
#[pg_guard]
pub unsafe extern "C-unwind" fn begin_foreign_insert(mtstate: *mut pg_sys::ModifyTableState, rinfo: *mut pg_sys::ResultRelInfo) {
    // SAFETY: the contract above; ri_RootResultRelInfo is NULL or the routing
    // target's ResultRelInfo, and the ModifyState lives in the query's memory
    // context (current here) until the executor ends.
    unsafe {
        let rel_oid = (*(*rinfo).ri_RelationDesc).rd_id;
        // A partition the statement also updates or deletes from already
        // holds that command's state (or is written directly); one state
        // cannot serve both.
        if !(*rinfo).ri_FdwState.is_null() || (*rinfo).ri_usesFdwDirectModify {
            let table = table::load(rel_oid).unwrap_or_else(|e| raise(e));
            raise(ZohoFdwError::NotSupported(format!("cannot move rows into foreign table {}, which the same statement updates", table.relation)));
        }
        // A routed partition has no range-table entry of its own (index 0):
        // its rows are written as the statement's target's user, as
        // postgres_fdw does.
        let mut rti = (*rinfo).ri_RangeTableIndex;
        if rti == 0 && !(*rinfo).ri_RootResultRelInfo.is_null() {
            rti = (*(*rinfo).ri_RootResultRelInfo).ri_RangeTableIndex;
        }
        let user = super::check_as_user((*mtstate).ps.state, rti);
        let mut state = ModifyState::open(pg_sys::CmdType::CMD_INSERT, rel_oid, user);
        state.returning = !(*rinfo).ri_returningList.is_null();
        // COPY (which has no plan) hands rows over one at a time: hold them
        // back and send 100 a call, unless each must come back with Zoho's
        // values for RETURNING, or AFTER triggers are to see them written (an
        // UPDATE moving rows here would end its inserts after those fire).
        let after = |td: *mut pg_sys::TriggerDesc| !td.is_null() && ((*td).trig_insert_after_row || (*td).trig_insert_after_statement);
        let root = (*rinfo).ri_RootResultRelInfo;
        let triggers = after((*rinfo).ri_TrigDesc) || (!root.is_null() && after((*root).ri_TrigDesc));
        state.buffer_inserts = (*mtstate).ps.plan.is_null() && !state.returning && !triggers;
        (*rinfo).ri_FdwState = PgMemoryContexts::CurrentMemoryContext.leak_and_drop_on_delete(state).cast();
    }
}

/// # Safety
/// PostgreSQL's EndForeignInsert: our table's ResultRelInfo, after
/// begin_foreign_insert.
#[pg_guard]
pub unsafe extern "C-unwind" fn end_foreign_insert(_estate: *mut pg_sys::EState, rinfo: *mut pg_sys::ResultRelInfo) {
    // SAFETY: the contract above: ri_FdwState is our ModifyState.
    unsafe { state(rinfo) }.flush();
}

/// # Safety
/// PostgreSQL's GetForeignModifyBatchSize: our table's ResultRelInfo.
#[pg_guard]
pub unsafe extern "C-unwind" fn get_foreign_modify_batch_size(rinfo: *mut pg_sys::ResultRelInfo) -> i32 {
    // SAFETY: the contract above; ri_TrigDesc is NULL or the table's trigger
    // descriptor.
    unsafe {
        let td = (*rinfo).ri_TrigDesc;
        let row_triggers = !td.is_null() && ((*td).trig_insert_before_row || (*td).trig_insert_after_row);
        if !(*rinfo).ri_projectReturning.is_null() || row_triggers {
            1
        } else {
            BATCH as i32
        }
    }
}

/// # Safety
/// PostgreSQL's ExecForeignBatchInsert: our table's ResultRelInfo and
/// `*num_slots` slots of new rows.
#[pg_guard]
pub unsafe extern "C-unwind" fn exec_foreign_batch_insert(
    _estate: *mut pg_sys::EState,
    rinfo: *mut pg_sys::ResultRelInfo,
    slots: *mut *mut pg_sys::TupleTableSlot,
    _plan_slots: *mut *mut pg_sys::TupleTableSlot,
    num_slots: *mut i32,
) -> *mut *mut pg_sys::TupleTableSlot {
    // SAFETY: the contract above: `slots` holds `*num_slots` rows of the table,
    // and rinfo's ModifyState is begin_foreign_modify's (see `state`).
    unsafe {
        let st = state(rinfo);
        let n = *num_slots as usize;
        let mut rows = Vec::with_capacity(n);
        let mut records = Vec::with_capacity(n);
        for i in 0..n {
            let row = st.next_row();
            rows.push(row);
            records.push(st.record(row, *slots.add(i), None).unwrap_or_else(|e| raise(e)));
        }
        st.send(&rows, records);
        slots
    }
}

/// # Safety
/// PostgreSQL's ExecForeignInsert: our table's ResultRelInfo and a slot
/// holding the new row.
#[pg_guard]
pub unsafe extern "C-unwind" fn exec_foreign_insert(
    _estate: *mut pg_sys::EState,
    rinfo: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    _plan_slot: *mut pg_sys::TupleTableSlot,
) -> *mut pg_sys::TupleTableSlot {
    // SAFETY: the contract above: `slot` holds the new row, and rinfo's
    // ModifyState is begin_foreign_modify's (see `state`).
    unsafe {
        let st = state(rinfo);
        let row = st.next_row();
        let rec = st.record(row, slot, None).unwrap_or_else(|e| raise(e));
        if st.buffer_inserts {
            st.buffer(row, rec);
            return slot;
        }
        let ids = st.send(&[row], vec![rec]);
        if st.returning {
            let fresh = st.fetch(&ids[0].id);
            st.fill_from(slot, &fresh, true);
        }
        slot
    }
}

/// # Safety
/// PostgreSQL's ExecForeignUpdate: our table's ResultRelInfo, the new row,
/// and the plan's output row.
#[pg_guard]
pub unsafe extern "C-unwind" fn exec_foreign_update(
    _estate: *mut pg_sys::EState,
    rinfo: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    plan_slot: *mut pg_sys::TupleTableSlot,
) -> *mut pg_sys::TupleTableSlot {
    // SAFETY: the contract above: after begin_foreign_modify, `slot` holds the
    // new row and `plan_slot` the plan's output with the row id.
    unsafe {
        let st = state(rinfo);
        let row = st.next_row();
        let (id, mut rec) = st.id_record(plan_slot);
        let mut updated = st.updated.clone();
        updated.extend(st.trigger_changes(row, plan_slot, slot).unwrap_or_else(|e| raise(e)));
        rec.extend(st.record(row, slot, Some(&updated)).unwrap_or_else(|e| raise(e)));
        if st.returning && !st.returning_known {
            st.send(&[row], vec![rec]);
            let fresh = st.fetch(&id);
            st.fill_from(slot, &fresh, true);
        } else {
            // RETURNING (if any) shows the slot's new row as it is; a record
            // Zoho rejects at the flush fails the statement before any row of
            // it reaches the client.
            st.buffer(row, rec);
        }
        slot
    }
}

/// # Safety
/// PostgreSQL's ExecForeignDelete: our table's ResultRelInfo, a slot for
/// RETURNING, and the plan's output row.
#[pg_guard]
pub unsafe extern "C-unwind" fn exec_foreign_delete(
    _estate: *mut pg_sys::EState,
    rinfo: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    plan_slot: *mut pg_sys::TupleTableSlot,
) -> *mut pg_sys::TupleTableSlot {
    // SAFETY: the contract above: after begin_foreign_modify, `plan_slot` holds
    // the row id, and `slot` has the table's descriptor for RETURNING.
    unsafe {
        let st = state(rinfo);
        let row = st.next_row();
        let (id, rec) = st.id_record(plan_slot);
        if st.returning {
            // What was deleted: read it before it goes.
            let old = st.fetch(&id);
            st.send(&[row], vec![rec]);
            st.fill_from(slot, &old, true);
        } else {
            st.buffer(row, rec);
        }
        slot
    }
}

/// # Safety
/// PostgreSQL's EndForeignModify: our table's ResultRelInfo.
#[pg_guard]
pub unsafe extern "C-unwind" fn end_foreign_modify(_estate: *mut pg_sys::EState, rinfo: *mut pg_sys::ResultRelInfo) {
    // SAFETY: the contract above: ri_FdwState is our ModifyState, or NULL under
    // EXPLAIN alone.
    unsafe {
        if let Some(st) = ((*rinfo).ri_FdwState as *mut ModifyState).as_mut() {
            st.flush();
        }
    }
}

/// # Safety
/// PostgreSQL's ExplainForeignModify: a valid ExplainState, the running
/// ModifyTableState and our table's ResultRelInfo.
#[pg_guard]
pub unsafe extern "C-unwind" fn explain_foreign_modify(
    mtstate: *mut pg_sys::ModifyTableState,
    rinfo: *mut pg_sys::ResultRelInfo,
    _private: *mut pg_sys::List,
    subplan: i32,
    es: *mut pg_sys::ExplainState,
) {
    // SAFETY: the contract above, which returning_known also needs.
    unsafe {
        if !(*es).verbose {
            return;
        }
        let rel_oid = (*(*rinfo).ri_RelationDesc).rd_id;
        let Ok(table) = table::load(rel_oid) else { return };
        let module = table.module.clone();
        let (verb, path) = match (*mtstate).operation {
            pg_sys::CmdType::CMD_INSERT => ("insert", format!("POST /crm/v8/{module}")),
            pg_sys::CmdType::CMD_UPDATE => ("update", format!("PUT /crm/v8/{module}")),
            _ => ("delete", format!("DELETE /crm/v8/{module}?ids=…")),
        };
        let known = (*mtstate).operation == pg_sys::CmdType::CMD_UPDATE && returning_known(mtstate, rinfo, subplan, &table);
        let per_call = if (*rinfo).ri_projectReturning.is_null() || known { format!("up to {BATCH} records per call") } else { "1 record per call, then a read for RETURNING".to_string() };
        let text = CString::new(format!("{verb} via {path}, {per_call}")).expect("no NUL");
        pg_sys::ExplainPropertyText(c"Zoho Write".as_ptr(), text.as_ptr(), es);
    }
}
