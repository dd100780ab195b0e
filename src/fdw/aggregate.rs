//! Aggregates computed by Zoho (postgres_fdw's `GetForeignUpperPaths`):
//! `count(*)`, `count(col)`, `sum`, `min`, `max` and `avg`, with `GROUP BY`,
//! become one COQL call instead of a read of every row.
//!
//! Only what Zoho provably computes as PostgreSQL does is pushed:
//! - the WHERE clause is applied exactly by Zoho; a case-insensitive
//!   equality on a picklist is made exact by grouping on that field too and
//!   keeping only the group whose value matches case for case;
//! - numbers, dates and datetimes only (no text: Zoho counts an empty
//!   string as null, and orders and groups text its own way);
//! - groups on numbers, dates, booleans and picklists (a fixed set of
//!   values, so no case variants to merge);
//! - `sum` over no values is NULL, as in PostgreSQL (Zoho says 0): each
//!   sum brings its own count; `avg` is that sum divided by that count as
//!   `numeric`, which is how PostgreSQL computes it.

use pgrx::{pg_sys, AnyNumeric, PgList};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zoho_api::coql::{CmpOp, Literal, MAX_AGGREGATES, MAX_GROUP_BY};
use zoho_api::Record;

use super::convert::Target;
use super::pushdown::{column_of, Filter, Fit, Operand};
use super::table::{ColumnDef, Kind, TableDef};

/// One column of the scan's output, in `fdw_scan_tlist` order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Output {
    Group(String),
    Count(String),
    Sum(String),
    Min(String),
    Max(String),
    Avg(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AggPlan {
    pub outputs: Vec<Output>,
    /// Each output's SQL type and typmod.
    pub types: Vec<(u32, i32)>,
    /// The query's GROUP BY fields, then the picklists grouped only to
    /// make an equality exact.
    pub group_by: Vec<String>,
    /// (field, value) a returned group must match case for case.
    pub exact: Vec<(String, String)>,
}

fn count_of(field: &str) -> String {
    format!("COUNT({field})")
}

impl AggPlan {
    /// The COQL select list: group fields and aggregate expressions, once
    /// each.
    pub fn select(&self) -> Vec<String> {
        let mut out: Vec<String> = self.group_by.clone();
        let mut add = |s: String| {
            if !out.contains(&s) {
                out.push(s);
            }
        };
        for o in &self.outputs {
            match o {
                Output::Group(_) => {}
                Output::Count(f) => add(count_of(f)),
                Output::Sum(f) | Output::Avg(f) => {
                    add(format!("SUM({f})"));
                    add(count_of(f));
                }
                Output::Min(f) => add(format!("MIN({f})")),
                Output::Max(f) => add(format!("MAX({f})")),
            }
        }
        out
    }

    /// Whether a returned row is one PostgreSQL would produce.
    pub fn keeps(&self, row: &Record) -> bool {
        self.exact.iter().all(|(f, v)| row.get(f).and_then(Value::as_str) == Some(v.as_str()))
    }

    /// One output's value in `row`, as JSON for [`Target::datum`].
    pub fn value(&self, i: usize, row: &Record) -> Value {
        let get = |k: &str| row.get(k).cloned().unwrap_or(Value::Null);
        let count = |f: &str| get(&count_of(f)).as_f64().or_else(|| get(&count_of(f)).as_str()?.parse().ok()).unwrap_or(0.0);
        let integral = pg_sys::Oid::from(self.types[i].0) == pg_sys::INT8OID;
        match &self.outputs[i] {
            Output::Group(f) => get(f),
            Output::Count(f) => Value::from(count(f) as i64),
            Output::Sum(f) if count(f) == 0.0 => Value::Null,
            Output::Sum(f) => whole(get(&format!("SUM({f})")), integral),
            Output::Min(f) => get(&format!("MIN({f})")),
            Output::Max(f) => get(&format!("MAX({f})")),
            Output::Avg(f) => {
                let n = count(f);
                let sum = number_text(&get(&format!("SUM({f})")));
                match (n > 0.0, sum.and_then(|s| AnyNumeric::try_from(s.as_str()).ok())) {
                    (true, Some(sum)) => Value::String((sum / AnyNumeric::from(n as i64)).to_string()),
                    _ => Value::Null,
                }
            }
        }
    }

    pub fn targets(&self) -> Vec<Target> {
        self.types.iter().map(|(t, m)| Target::new(pg_sys::Oid::from(*t), *m)).collect()
    }
}

fn number_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// A sum of integers that Zoho wrote as `1.0E7` or `10.0`.
fn whole(v: Value, integral: bool) -> Value {
    match (&v, integral) {
        (Value::Number(n), true) if n.as_i64().is_none() => n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map_or(v.clone(), |f| Value::from(f as i64)),
        _ => v,
    }
}

/// Columns whose aggregates Zoho computes as PostgreSQL does.
/// Whether Zoho computes `func` over the column: sums over number fields,
/// minimum and maximum over numbers and times (not ids, lookups or text),
/// counts over anything. A column without a `zoho_type` is left to
/// PostgreSQL.
fn aggregable(c: &ColumnDef, func: &str) -> bool {
    let numeric = matches!(c.zoho_type.as_deref(), Some("integer" | "double" | "currency" | "percent")) && matches!(c.kind, Kind::Int | Kind::Decimal);
    let ordered = numeric || matches!(c.zoho_type.as_deref(), Some("date" | "datetime"));
    c.exact()
        && match func {
            "sum" | "avg" => numeric,
            "min" | "max" => ordered,
            "count" => true,
            _ => false,
        }
}

fn groupable(c: &ColumnDef) -> bool {
    c.exact() || c.kind == Kind::Bool || c.is_picklist()
}

/// An aggregate call Zoho computes exactly, or None.
unsafe fn aggregate(a: *mut pg_sys::Aggref, relid: u32, table: &TableDef) -> Option<Output> {
    // SAFETY: `a` is an Aggref of the grouping target (tag checked by the
    // caller); its aggfnoid is checked built-in first, so get_func_name is not
    // NULL.
    unsafe {
        let simple = (*a).aggdistinct.is_null()
            && (*a).aggorder.is_null()
            && (*a).aggfilter.is_null()
            && (*a).aggkind as u8 == b'n' // AGGKIND_NORMAL
            && (*a).aggsplit == pg_sys::AggSplit::AGGSPLIT_SIMPLE
            && (*a).agglevelsup == 0
            && !(*a).aggvariadic
            && super::pushdown::is_builtin((*a).aggfnoid);
        if !simple {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pg_sys::get_func_name((*a).aggfnoid)).to_str().ok()?.to_string();
        if (*a).aggstar {
            return (name == "count").then(|| Output::Count("id".into()));
        }
        let args: Vec<*mut pg_sys::TargetEntry> = PgList::<pg_sys::TargetEntry>::from_pg((*a).args).iter_ptr().collect();
        let [arg] = args[..] else { return None };
        let col = column_of((*arg).expr as *mut pg_sys::Node, relid, table)?;
        if !aggregable(col, &name) {
            return None;
        }
        let f = col.api_name.clone();
        Some(match name.as_str() {
            "count" => Output::Count(f),
            "sum" => Output::Sum(f),
            "min" => Output::Min(f),
            "max" => Output::Max(f),
            "avg" if (*a).aggtype == pg_sys::NUMERICOID => Output::Avg(f),
            _ => return None,
        })
    }
}

/// The pushed plan for the grouping `target` of a query over `table`,
/// whose WHERE translated to `filters` with `fits`, and the expressions the
/// scan returns (group columns and aggregates, in output order); None when
/// any part cannot be computed by Zoho.
///
/// # Safety
/// `root` and `target` are the planner's, for the query being planned.
pub unsafe fn plan(
    root: *mut pg_sys::PlannerInfo,
    target: *mut pg_sys::PathTarget,
    relid: u32,
    table: &TableDef,
    filters: &[Filter],
    fits: &[Fit],
) -> Option<(AggPlan, Vec<*mut pg_sys::Node>)> {
    // SAFETY: the caller's contract above: the parse tree, the target's exprs and
    // its sortgrouprefs (one per expression when non-null) are the planner's.
    unsafe {
        let parse = (*root).parse;
        if !(*parse).groupingSets.is_null() || !(*parse).havingQual.is_null() || fits.contains(&Fit::Partial) {
            return None;
        }
        let group_clauses: Vec<*mut pg_sys::SortGroupClause> = PgList::<pg_sys::SortGroupClause>::from_pg((*parse).groupClause).iter_ptr().collect();
        let exprs: Vec<*mut pg_sys::Node> = PgList::<pg_sys::Node>::from_pg((*target).exprs).iter_ptr().collect();
        let (mut outputs, mut types, mut group_by) = (Vec::new(), Vec::new(), Vec::new());
        let mut grouped = 0;
        let mut scan_exprs: Vec<*mut pg_sys::Node> = Vec::new();
        let mut add = |e: *mut pg_sys::Node, out: Output, scan_exprs: &mut Vec<*mut pg_sys::Node>| {
            if !scan_exprs.iter().any(|x| pg_sys::equal(x.cast(), e.cast())) {
                scan_exprs.push(e);
                outputs.push(out);
                types.push((u32::from(pg_sys::exprType(e)), pg_sys::exprTypmod(e)));
            }
        };
        for (i, e) in exprs.iter().enumerate() {
            let sgref = if (*target).sortgrouprefs.is_null() { 0 } else { *(*target).sortgrouprefs.add(i) };
            // A reference names a GROUP BY item or only an ORDER BY one
            // (`ORDER BY count(*)`): the latter is an aggregate like any other,
            // and PostgreSQL sorts the groups.
            if let Some(sgc) = group_clauses.iter().find(|c| sgref != 0 && (***c).tleSortGroupRef == sgref) {
                let col = column_of(*e, relid, table).filter(|c| groupable(c))?;
                if !super::pushdown::is_builtin((**sgc).eqop) {
                    return None;
                }
                // `GROUP BY 1, 2` over the same column twice groups by it once:
                // Zoho refuses a field named twice.
                grouped += 1;
                if !group_by.contains(&col.api_name) {
                    group_by.push(col.api_name.clone());
                }
                add(*e, Output::Group(col.api_name.clone()), &mut scan_exprs);
                continue;
            }
            // An expression over aggregates and group columns (`sum(x)::text`,
            // `count(*) + 1`): Zoho computes the aggregates, PostgreSQL the rest.
            let parts: Vec<*mut pg_sys::Node> =
                PgList::<pg_sys::Node>::from_pg(pg_sys::pull_var_clause(*e, pg_sys::PVC_INCLUDE_AGGREGATES as i32)).iter_ptr().collect();
            for p in parts {
                if (*p).type_ == pg_sys::NodeTag::T_Aggref {
                    add(p, aggregate(p as *mut pg_sys::Aggref, relid, table)?, &mut scan_exprs);
                } else if !scan_exprs.iter().any(|x| pg_sys::equal(x.cast(), p.cast())) {
                    // A column outside GROUP BY cannot appear here; refuse anyway.
                    return None;
                }
            }
        }
        if grouped != group_clauses.len() {
            return None;
        }
        // A case-insensitive picklist equality: group by it too and keep the
        // exact value's group.
        let mut exact = Vec::new();
        for (f, fit) in filters.iter().zip(fits) {
            if *fit == Fit::Exact {
                continue;
            }
            let Filter::Cmp { field, op: CmpOp::Eq, value: Operand::Lit(Literal::Text(v)) } = f else { return None };
            table.columns.iter().find(|c| &c.api_name == field).filter(|c| c.is_picklist())?;
            if !group_by.contains(field) {
                group_by.push(field.clone());
            }
            exact.push((field.clone(), v.clone()));
        }
        let plan = AggPlan { outputs, types, group_by, exact };
        let aggregates = plan.select().iter().filter(|s| s.ends_with(')')).count();
        (aggregates <= MAX_AGGREGATES && plan.group_by.len() <= MAX_GROUP_BY).then_some((plan, scan_exprs))
    }
}
