//! WHERE clauses → COQL conditions.
//!
//! Every clause is also rechecked locally, so a pushed condition must only
//! ever make Zoho return a superset of the rows PostgreSQL wants. Only
//! plain columns, constants, values fixed for the scan, and built-in
//! operators known by OID are shipped (a whitelist, as postgres_fdw's
//! `foreign_expr_walker`); text comparisons only under a deterministic
//! collation. That
//! rules out what Zoho evaluates differently: text compares
//! case-insensitively there (so `=`, `IN` and `LIKE` on text may be pushed,
//! but not `<>`, `NOT IN` or `NOT LIKE`), `_` has no COQL wildcard, and
//! textarea or multi-select fields cannot be filtered at all.
//!
//! Values that are not constants but are fixed for the scan (parameters,
//! `now() - interval '1 day'`) go into the plan's `fdw_exprs` and are
//! evaluated when the scan starts.

use std::ffi::CStr;

use pgrx::{pg_sys, PgList};
use serde::{Deserialize, Serialize};
use zoho_api::coql::{CmpOp, Cond, Literal, MAX_CRITERIA};

use super::convert::{self, Rounding};
use super::table::{ColumnDef, Kind, TableDef};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Operand {
    Lit(Literal),
    /// The `index`th of the plan's `fdw_exprs`, of type `type_oid`.
    Param { index: usize, type_oid: u32, rounding: Rounding },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Filter {
    Cmp { field: String, op: CmpOp, value: Operand },
    In { field: String, values: Vec<Literal>, negated: bool },
    Null { field: String, negated: bool },
    Like { field: String, pattern: String },
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

impl Filter {
    /// Conditions joined by AND / OR: each is at least one of Zoho's criteria.
    fn conditions(&self) -> usize {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => a.conditions() + b.conditions(),
            _ => 1,
        }
    }

    /// The COQL condition, with parameters substituted. None when a
    /// parameter has no COQL form (then the condition is left to the local
    /// recheck).
    pub fn to_cond(&self, params: &[Option<Literal>]) -> Option<Cond> {
        Some(match self {
            Filter::Cmp { field, op, value } => {
                let lit = match value {
                    Operand::Lit(l) => l.clone(),
                    Operand::Param { index, .. } => params.get(*index)?.clone()?,
                };
                Cond::Cmp { field: field.clone(), op: *op, value: lit }
            }
            Filter::In { field, values, negated } => Cond::In { field: field.clone(), values: values.clone(), negated: *negated },
            Filter::Null { field, negated } => Cond::IsNull { field: field.clone(), negated: *negated },
            Filter::Like { field, pattern } => Cond::Like { field: field.clone(), pattern: pattern.clone(), negated: false },
            Filter::And(a, b) => match (a.to_cond(params), b.to_cond(params)) {
                // Dropping one side of an AND only widens the result.
                (Some(a), Some(b)) => a.and(b),
                (Some(x), None) | (None, Some(x)) => x,
                (None, None) => return None,
            },
            Filter::Or(a, b) => a.to_cond(params)?.or(b.to_cond(params)?),
        })
    }

    /// How few rows the condition is likely to leave, best first, for
    /// keeping the most selective within Zoho's 25 criteria: an id, then
    /// equality, lists, ranges, null tests, patterns, and ORs last.
    pub fn rank(&self) -> u8 {
        match self {
            Filter::Cmp { field, op: CmpOp::Eq, .. } if field == "id" => 0,
            Filter::In { field, negated: false, .. } if field == "id" => 1,
            Filter::Cmp { op: CmpOp::Eq, .. } => 2,
            Filter::In { negated: false, .. } => 3,
            Filter::Cmp { op: CmpOp::Ne, .. } | Filter::In { negated: true, .. } => 6,
            Filter::Cmp { .. } => 4,
            Filter::Null { negated: false, .. } => 5,
            Filter::Null { .. } => 7,
            Filter::Like { .. } => 6,
            Filter::And(a, b) => a.rank().min(b.rank()),
            Filter::Or(..) => 8,
        }
    }

    /// The most rows this condition can leave, when it names record ids.
    pub fn id_bound(&self) -> Option<usize> {
        match self {
            Filter::Cmp { field, op: CmpOp::Eq, .. } if field == "id" => Some(1),
            Filter::In { field, values, negated: false } if field == "id" => Some(values.len()),
            Filter::And(a, b) => match (a.id_bound(), b.id_bound()) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            },
            _ => None,
        }
    }

    /// For EXPLAIN before execution: parameters shown as `$n`.
    pub fn to_display_cond(&self) -> Option<Cond> {
        let mut n = 0;
        self.params(&mut n);
        let shown: Vec<Option<Literal>> = (1..=n).map(|i| Some(Literal::Text(format!("${i}")))).collect();
        self.to_cond(&shown)
    }

    fn params(&self, max: &mut usize) {
        match self {
            Filter::Cmp { value: Operand::Param { index, .. }, .. } => *max = (*max).max(index + 1),
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.params(max);
                b.params(max);
            }
            _ => {}
        }
    }
}

/// Translation context for one relation.
pub struct Ctx<'t> {
    pub relid: u32,
    pub table: &'t TableDef,
    /// Expressions evaluated at scan start (the plan's `fdw_exprs`).
    pub params: Vec<*mut pg_sys::Expr>,
    /// How the clause being translated maps to COQL.
    fit: Fit,
    /// AND / OR levels around the node being translated.
    depth: usize,
}

/// AND / OR levels the translation descends. Zoho takes 25 criteria a query
/// (a level holds at least one), so deeper trees could not be sent whole.
const MAX_BOOL_NESTING: usize = MAX_CRITERIA;

/// How closely a pushed clause matches what PostgreSQL keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Fit {
    /// Not pushed, or only part of it (an AND with a term left out): Zoho
    /// may return many rows PostgreSQL drops.
    Partial,
    /// Pushed whole, but Zoho compares text case-insensitively: a few
    /// extra rows at most.
    Widened,
    /// Zoho keeps exactly what PostgreSQL keeps.
    Exact,
}

/// Objects PostgreSQL itself defines (postgres_fdw's `is_builtin`): only
/// their semantics are known, so only built-in operators are shipped. A
/// user's own `=`, in any schema, is evaluated locally.
pub(super) fn is_builtin(oid: pg_sys::Oid) -> bool {
    u32::from(oid) < pg_sys::FirstGenbkiObjectId
}

/// The name of a built-in operator; None for any other.
unsafe fn builtin_opname(opno: pg_sys::Oid) -> Option<String> {
    // SAFETY: callers pass an expression's operator or its commutator, so an
    // existing built-in (pinned) operator: get_opname returns its name, not NULL.
    unsafe {
        if opno == pg_sys::Oid::INVALID || !is_builtin(opno) {
            return None;
        }
        CStr::from_ptr(pg_sys::get_opname(opno)).to_str().ok().map(str::to_string)
    }
}

/// Whether a text comparison may be pushed under its collation. A
/// nondeterministic one (ICU, accent- or case-insensitive) calls strings
/// equal that Zoho keeps apart, so Zoho's answer could miss rows.
unsafe fn deterministic(collation: pg_sys::Oid) -> bool {
    // SAFETY: a catalog lookup of an expression's input collation; an unknown one
    // raises an ERROR.
    unsafe {
        collation == pg_sys::Oid::INVALID || pg_sys::get_collation_isdeterministic(collation)
    }
}

unsafe fn is(node: *mut pg_sys::Node, tag: pg_sys::NodeTag) -> bool {
    // SAFETY: callers pass NULL or a valid Node; only a non-null one is read.
    unsafe {
        !node.is_null() && (*node).type_ == tag
    }
}

/// `node` under any RelabelTypes.
///
/// # Safety
/// `node` is NULL or a valid expression node.
pub(super) unsafe fn strip_relabel(mut node: *mut pg_sys::Node) -> *mut pg_sys::Node {
    // SAFETY: the caller's contract above; a RelabelType's arg is a node of the
    // same tree (or NULL).
    unsafe {
        while is(node, pg_sys::NodeTag::T_RelabelType) {
            node = (*(node as *mut pg_sys::RelabelType)).arg as *mut pg_sys::Node;
        }
        node
    }
}

/// The Var `node` plainly is (under any relabelling), of this query level.
///
/// # Safety
/// `node` is NULL or a valid expression node.
pub(super) unsafe fn plain_var(node: *mut pg_sys::Node) -> Option<*mut pg_sys::Var> {
    // SAFETY: the caller's contract above; the node is read as a Var only after
    // `is` has checked its tag.
    unsafe {
        let node = strip_relabel(node);
        (is(node, pg_sys::NodeTag::T_Var) && (*(node as *mut pg_sys::Var)).varlevelsup == 0).then_some(node as *mut pg_sys::Var)
    }
}

/// The column of relation `relid` that `node` plainly reads.
///
/// # Safety
/// `node` is NULL or a valid expression node.
pub(super) unsafe fn column_of(node: *mut pg_sys::Node, relid: u32, table: &TableDef) -> Option<&ColumnDef> {
    // SAFETY: the caller's contract above; plain_var returns only a Var of the
    // tree.
    unsafe {
        let var = plain_var(node)?;
        ((*var).varno as u32 == relid && (*var).varattno > 0).then(|| table.column((*var).varattno)).flatten()
    }
}

impl<'t> Ctx<'t> {
    pub fn new(relid: u32, table: &'t TableDef) -> Ctx<'t> {
        Ctx { relid, table, params: Vec::new(), fit: Fit::Exact, depth: 0 }
    }

    /// One WHERE clause: its COQL form, and how well it fits (see [`Fit`]:
    /// a LIMIT sizes the first call only for whole clauses, and an UPDATE
    /// or DELETE runs directly only on exact ones).
    ///
    /// # Safety
    /// `node` is a valid qual (a RestrictInfo's clause) of relation `relid`, in
    /// planner memory that outlives the plan's making: `params` point into it.
    pub unsafe fn clause(&mut self, node: *mut pg_sys::Node) -> (Option<Filter>, Fit) {
        // SAFETY: the caller's contract above, passed on to translate.
        unsafe {
            self.fit = Fit::Exact;
            // More conditions than one query takes could never be sent, and
            // the plan carrying them would nest too deep to read back.
            let f = self.translate(node).filter(|f| f.conditions() <= MAX_CRITERIA);
            let fit = if f.is_some() { self.fit } else { Fit::Partial };
            (f, fit)
        }
    }

    /// Notes that a translation is a superset of the clause.
    fn widened(&mut self, to: Fit) {
        self.fit = self.fit.min(to);
    }

    /// The column a node reads, if it is a plain column of this relation.
    unsafe fn column(&self, node: *mut pg_sys::Node) -> Option<&'t ColumnDef> {
        // SAFETY: `node` is NULL or a node of the clause being translated.
        unsafe {
            column_of(node, self.relid, self.table).filter(|c| !c.unfilterable())
        }
    }

    /// A value fixed for the whole scan: a constant, or an expression with
    /// no column and nothing volatile in it.
    unsafe fn operand(&mut self, node: *mut pg_sys::Node, rounding: Rounding) -> Option<Operand> {
        // SAFETY: `node` is an operand of the clause being translated: a
        // Const's value is of its consttype, and a parameter kept in `params`
        // stays in the planner's memory until make_foreignscan takes it.
        unsafe {
            let node = strip_relabel(node);
            if is(node, pg_sys::NodeTag::T_Const) {
                let c = node as *mut pg_sys::Const;
                if (*c).constisnull {
                    return None;
                }
                return convert::literal((*c).constvalue, (*c).consttype, rounding).map(Operand::Lit);
            }
            // A SubPlan is run by its own node, not ours: only Params (of
            // initplans, outer rows, `$1`) and stable expressions are shipped.
            if pg_sys::contain_var_clause(node) || pg_sys::contain_volatile_functions(node) || pg_sys::contain_subplans(node) {
                return None;
            }
            let type_oid = pg_sys::exprType(node);
            if !matches!(Kind::of(type_oid), Kind::Int | Kind::Decimal | Kind::Bool | Kind::Date | Kind::DateTime | Kind::Text) {
                return None;
            }
            self.params.push(node as *mut pg_sys::Expr);
            Some(Operand::Param { index: self.params.len() - 1, type_oid: u32::from(type_oid), rounding })
        }
    }

    /// A pushable condition for `node`, or None to leave it local only.
    ///
    /// # Safety
    /// As for [`Ctx::clause`]; `node` may also be NULL.
    pub unsafe fn translate(&mut self, node: *mut pg_sys::Node) -> Option<Filter> {
        // SAFETY: the caller's contract above; each node is cast only after
        // `is` has checked its tag, and a BoolExpr's args are nodes of the same
        // tree.
        unsafe {
            if is(node, pg_sys::NodeTag::T_BoolExpr) {
                if self.depth >= MAX_BOOL_NESTING {
                    return None;
                }
                let b = node as *mut pg_sys::BoolExpr;
                let args: Vec<*mut pg_sys::Node> = PgList::<pg_sys::Node>::from_pg((*b).args).iter_ptr().collect();
                self.depth += 1;
                let filter = self.bool_expr((*b).boolop, args);
                self.depth -= 1;
                return filter;
            }
            if let Some(col) = self.column(node) {
                // A bare boolean column.
                return (col.kind == Kind::Bool).then(|| Filter::Cmp { field: col.api_name.clone(), op: CmpOp::Eq, value: Operand::Lit(Literal::Bool(true)) });
            }
            if is(node, pg_sys::NodeTag::T_NullTest) {
                let t = node as *mut pg_sys::NullTest;
                let col = self.column((*t).arg as *mut pg_sys::Node)?;
                if (*t).argisrow || col.kind == Kind::Bool {
                    return None;
                }
                if !col.exact() {
                    self.widened(Fit::Widened); // Zoho may hold an empty text where PostgreSQL sees NULL
                }
                return Some(Filter::Null { field: col.api_name.clone(), negated: (*t).nulltesttype == pg_sys::NullTestType::IS_NOT_NULL });
            }
            if is(node, pg_sys::NodeTag::T_OpExpr) {
                return self.op_expr(node as *mut pg_sys::OpExpr);
            }
            if is(node, pg_sys::NodeTag::T_ScalarArrayOpExpr) {
                return self.array_op(node as *mut pg_sys::ScalarArrayOpExpr);
            }
            None
        }
    }

    /// An AND, OR or NOT of `args`, translated one level down.
    ///
    /// # Safety
    /// As for [`Ctx::translate`]: `args` are the BoolExpr's argument nodes.
    unsafe fn bool_expr(&mut self, op: pg_sys::BoolExprType::Type, args: Vec<*mut pg_sys::Node>) -> Option<Filter> {
        // SAFETY: the caller's contract above.
        unsafe {
            match op {
                pg_sys::BoolExprType::AND_EXPR => {
                    // Any subset of an AND widens the result: keep what translates,
                    // up to what one query takes.
                    let n = args.len();
                    let mut parts: Vec<Filter> = args.into_iter().filter_map(|a| self.translate(a)).collect();
                    parts.truncate(MAX_CRITERIA);
                    if parts.len() < n {
                        self.widened(Fit::Partial);
                    }
                    parts.into_iter().reduce(|a, b| Filter::And(Box::new(a), Box::new(b)))
                }
                // Wider than a query's criteria: never sent whole (see `clause`),
                // so not built, to keep the tree shallow.
                pg_sys::BoolExprType::OR_EXPR if args.len() > MAX_CRITERIA => None,
                pg_sys::BoolExprType::OR_EXPR => {
                    let mut parts = Vec::new();
                    for a in args {
                        parts.push(self.translate(a)?);
                    }
                    parts.into_iter().reduce(|a, b| Filter::Or(Box::new(a), Box::new(b)))
                }
                _ => {
                    // NOT bool_column
                    let col = self.column(*args.first()?)?;
                    (col.kind == Kind::Bool).then(|| Filter::Cmp { field: col.api_name.clone(), op: CmpOp::Eq, value: Operand::Lit(Literal::Bool(false)) })
                }
            }
        }
    }

    unsafe fn op_expr(&mut self, e: *mut pg_sys::OpExpr) -> Option<Filter> {
        // SAFETY: `e` is an OpExpr of the clause (its tag checked by
        // translate), with a List of argument nodes; get_commutator gives
        // InvalidOid or an operator.
        unsafe {
            let args: Vec<*mut pg_sys::Node> = PgList::<pg_sys::Node>::from_pg((*e).args).iter_ptr().collect();
            let [left, right] = args[..] else { return None };
            let (col, other, opno) = match (self.column(left), self.column(right)) {
                (Some(c), None) => (c, right, (*e).opno),
                (None, Some(c)) => (c, left, pg_sys::get_commutator((*e).opno)),
                _ => return None,
            };
            let name = builtin_opname(opno)?;
            if col.kind == Kind::Text && !deterministic((*e).inputcollid) {
                return None;
            }
            if name == "~~" {
                // LIKE: only `%` maps to COQL, and only at either end.
                if col.kind != Kind::Text || col.is_lookup() {
                    return None;
                }
                let Operand::Lit(Literal::Text(p)) = self.operand(other, Rounding::Exact)? else { return None };
                let core = p.trim_start_matches('%').trim_end_matches('%');
                if core.is_empty() || core.contains(['%', '_', '\\']) {
                    return None;
                }
                self.widened(Fit::Widened); // case-insensitive in Zoho
                return Some(Filter::Like { field: col.api_name.clone(), pattern: p });
            }
            let (op, rounding) = match name.as_str() {
                "=" => (CmpOp::Eq, Rounding::Exact),
                "<>" => (CmpOp::Ne, Rounding::Exact),
                "<" => (CmpOp::Lt, Rounding::Ceil),
                "<=" => (CmpOp::Le, Rounding::Floor),
                ">" => (CmpOp::Gt, Rounding::Floor),
                ">=" => (CmpOp::Ge, Rounding::Ceil),
                _ => return None,
            };
            let allowed = if col.exact() {
                true
            } else {
                // Text, booleans and lookups: equality only (a superset on text).
                op == CmpOp::Eq && col.kind != Kind::Other
            };
            if !allowed {
                return None;
            }
            if !col.exact() && col.kind != Kind::Bool {
                self.widened(Fit::Widened); // text and lookups compare case-insensitively
            }
            let value = self.operand(other, rounding)?;
            let value_kind = match &value {
                Operand::Lit(l) => kind_of_literal(l),
                Operand::Param { type_oid, .. } => Kind::of(pg_sys::Oid::from(*type_oid)),
            };
            compatible(col.kind, value_kind).then(|| Filter::Cmp { field: col.api_name.clone(), op, value })
        }
    }

    unsafe fn array_op(&mut self, e: *mut pg_sys::ScalarArrayOpExpr) -> Option<Filter> {
        // SAFETY: `e` is a ScalarArrayOpExpr of the clause (tag checked by
        // translate); its right side, checked to be a non-null Const, is an
        // array of its type's element type, detoasted and deconstructed with
        // that type's layout.
        unsafe {
            let args: Vec<*mut pg_sys::Node> = PgList::<pg_sys::Node>::from_pg((*e).args).iter_ptr().collect();
            let [left, right] = args[..] else { return None };
            let col = self.column(left)?;
            let name = builtin_opname((*e).opno)?;
            if col.kind == Kind::Text && !deterministic((*e).inputcollid) {
                return None;
            }
            let negated = match (name.as_str(), (*e).useOr) {
                ("=", true) => false,
                ("<>", false) if col.exact() => true,
                _ => return None,
            };
            if col.kind == Kind::Bool {
                return None;
            }
            let right = strip_relabel(right);
            if !is(right, pg_sys::NodeTag::T_Const) || (*(right as *mut pg_sys::Const)).constisnull {
                return None;
            }
            let c = right as *mut pg_sys::Const;
            let array = pg_sys::pg_detoast_datum((*c).constvalue.cast_mut_ptr()) as *mut pg_sys::ArrayType;
            let elem = pg_sys::get_element_type((*c).consttype);
            let (mut len, mut byval, mut align) = (0i16, false, 0 as std::ffi::c_char);
            pg_sys::get_typlenbyvalalign(elem, &mut len, &mut byval, &mut align);
            let (mut datums, mut nulls, mut n) = (std::ptr::null_mut(), std::ptr::null_mut(), 0);
            pg_sys::deconstruct_array(array, elem, len.into(), byval, align, &mut datums, &mut nulls, &mut n);
            let mut values = Vec::with_capacity(n as usize);
            for i in 0..n as usize {
                if *nulls.add(i) {
                    if negated {
                        return None; // NOT IN (…, NULL) is never true
                    }
                    continue;
                }
                let lit = convert::literal(*datums.add(i), elem, Rounding::Exact)?;
                if !compatible(col.kind, kind_of_literal(&lit)) {
                    return None;
                }
                values.push(lit);
            }
            if values.is_empty() {
                return None;
            }
            if !col.exact() {
                self.widened(Fit::Widened);
            }
            Some(Filter::In { field: col.api_name.clone(), values, negated })
        }
    }
}

fn kind_of_literal(l: &Literal) -> Kind {
    match l {
        Literal::Int(_) => Kind::Int,
        Literal::Decimal(_) => Kind::Decimal,
        Literal::Bool(_) => Kind::Bool,
        Literal::Date(_) => Kind::Date,
        Literal::DateTime(_) => Kind::DateTime,
        Literal::Text(_) => Kind::Text,
    }
}

/// Whether a value of one kind can be compared with a column of another in
/// COQL (Zoho rejects a date against a datetime field, for one).
fn compatible(column: Kind, value: Kind) -> bool {
    column == value && column != Kind::Other || matches!((column, value), (Kind::Int | Kind::Decimal, Kind::Int | Kind::Decimal))
}
