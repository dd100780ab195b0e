//! Which comparators and literals fit which field types (zoho-api.md §6
//! table). Shared by COQL and bulk criteria, which report the same faults
//! under different error codes.

use super::eval::literal_scalar;
use super::paths::field_at;
use super::{CmpOp, Cond, Literal};
use crate::schema::{DataType, FieldDef, ModuleDef};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Eq,
    Ne,
    /// `<`, `<=`, `>`, `>=`
    Order,
    In,
    Between,
    Null,
    Like,
}

pub(crate) fn op_kind(leaf: &Cond) -> OpKind {
    match leaf {
        Cond::Cmp { op: CmpOp::Eq, .. } => OpKind::Eq,
        Cond::Cmp { op: CmpOp::Ne, .. } => OpKind::Ne,
        Cond::Cmp { .. } => OpKind::Order,
        Cond::In { .. } => OpKind::In,
        Cond::Between { .. } => OpKind::Between,
        Cond::Null { .. } => OpKind::Null,
        Cond::Like { .. } => OpKind::Like,
        Cond::And(..) | Cond::Or(..) => unreachable!("only leaves carry an operator"),
    }
}

/// The operator as written in COQL, for error details.
pub(crate) fn op_name(leaf: &Cond) -> &'static str {
    match leaf {
        Cond::Cmp { op, .. } => op.as_str(),
        Cond::In { negated: false, .. } => "in",
        Cond::In { negated: true, .. } => "not in",
        Cond::Between { negated: false, .. } => "between",
        Cond::Between { negated: true, .. } => "not between",
        Cond::Null { negated: false, .. } => "is null",
        Cond::Null { negated: true, .. } => "is not null",
        Cond::Like { negated: false, .. } => "like",
        Cond::Like { negated: true, .. } => "not like",
        Cond::And(..) => "and",
        Cond::Or(..) => "or",
    }
}

/// Comparators a value type takes; empty for types that cannot filter.
pub(crate) fn allowed_ops(vt: DataType) -> &'static [OpKind] {
    use DataType::*;
    use OpKind as O;
    match vt {
        Text | Email | Phone | Website | Picklist | Autonumber => &[O::Eq, O::Ne, O::Like, O::In, O::Null],
        Lookup | Ownerlookup => &[O::Eq, O::Ne, O::In, O::Null],
        Date | Datetime | Integer | Bigint | Double | Currency | Percent => &[O::Eq, O::Ne, O::Order, O::In, O::Between, O::Null],
        Boolean => &[O::Eq],
        Multiselectpicklist => &[O::Eq, O::Ne, O::Like, O::Null],
        Textarea | Formula => &[],
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LeafError {
    UnknownField,
    /// The type cannot be used in criteria at all (multi-line text).
    NotFilterable(DataType),
    Operator(DataType),
    /// `not like` in any form but `'%x%'`.
    NotLikeShape,
    /// A literal that does not fit; carries the type it should have.
    Value {
        data_type: DataType,
        expected: &'static str,
    },
}

fn literals(leaf: &Cond) -> Vec<&Literal> {
    match leaf {
        Cond::Cmp { value, .. } => vec![value],
        Cond::In { values, .. } => values.iter().collect(),
        Cond::Between { low, high, .. } => vec![low, high],
        _ => vec![],
    }
}

/// Checks one leaf against the module; returns the field it tests.
pub(crate) fn check_leaf<'m>(module: &'m ModuleDef, leaf: &Cond) -> Result<&'m FieldDef, LeafError> {
    let def = field_at(module, leaf.field().unwrap_or_default()).ok_or(LeafError::UnknownField)?;
    let vt = def.value_type();
    let ops = allowed_ops(vt);
    if ops.is_empty() {
        return Err(LeafError::NotFilterable(def.data_type));
    }
    if !ops.contains(&op_kind(leaf)) {
        return Err(LeafError::Operator(vt));
    }
    if let Cond::Like { pattern, negated: true, .. } = leaf {
        if !pattern.is_contains() {
            return Err(LeafError::NotLikeShape);
        }
    }
    for lit in literals(leaf) {
        literal_scalar(vt, lit).map_err(|expected| LeafError::Value { data_type: vt, expected })?;
    }
    Ok(def)
}
