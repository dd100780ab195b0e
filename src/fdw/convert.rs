//! Values across the boundary: SQL constants and parameters become COQL
//! literals, and Zoho's JSON values become datums through each type's own
//! input function, so PostgreSQL's parsing rules (and errors) apply.

use std::ffi::{CStr, CString};

use chrono::{DateTime, Days, NaiveDate};
use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::PgTryBuilder;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zoho_api::coql::Literal;

use crate::error::ZohoFdwError;

/// PostgreSQL counts days and microseconds from 2000-01-01.
const PG_EPOCH_UNIX_SECS: i64 = 946_684_800;

/// Zoho stores whole seconds, so a fractional timestamp bound can be
/// rounded to an equivalent whole-second one: `x > 10:00:00.5` is
/// `x > 10:00:00`, `x < 10:00:00.5` is `x < 10:00:01`. Equality with a
/// fractional value can never hold and is not pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rounding {
    Exact,
    Floor,
    Ceil,
}

unsafe fn output_text(datum: pg_sys::Datum, type_oid: pg_sys::Oid) -> String {
    // SAFETY: callers pass a non-null datum of `type_oid`: for the text types a
    // varlena, detoasted before its bytes are read; else what that type's output
    // function takes. Output functions return palloc'd NUL-terminated strings.
    unsafe {
        match type_oid {
            // What their output functions print is the value's own bytes: read
            // in place, without a catalog lookup or a copy per value.
            pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID => {
                let v = pg_sys::pg_detoast_datum_packed(datum.cast_mut_ptr());
                let bytes = std::slice::from_raw_parts(pgrx::varlena::vardata_any(v).cast::<u8>(), pgrx::varlena::varsize_any_exhdr(v));
                String::from_utf8_lossy(bytes).into_owned()
            }
            pg_sys::NUMERICOID => {
                let p = pgrx::direct_function_call_as_datum(pg_sys::numeric_out, &[Some(datum)]).expect("numeric_out returns a string");
                CStr::from_ptr(p.cast_mut_ptr()).to_string_lossy().into_owned()
            }
            _ => {
                let mut func = pg_sys::Oid::INVALID;
                let mut varlena = false;
                pg_sys::getTypeOutputInfo(type_oid, &mut func, &mut varlena);
                CStr::from_ptr(pg_sys::OidOutputFunctionCall(func, datum)).to_string_lossy().into_owned()
            }
        }
    }
}

/// A non-null datum of `type_oid` as a COQL literal, or None when COQL
/// cannot express it (infinities, NaN, fractional equality).
///
/// # Safety
/// `datum` is a non-null value of `type_oid`.
pub unsafe fn literal(datum: pg_sys::Datum, type_oid: pg_sys::Oid, rounding: Rounding) -> Option<Literal> {
    // SAFETY: the caller's contract above; by-value types are read from the
    // datum's bits, the others only through output_text with the same type.
    unsafe {
        Some(match type_oid {
            pg_sys::INT2OID => Literal::Int(i64::from(datum.value() as i16)),
            pg_sys::INT4OID => Literal::Int(i64::from(datum.value() as i32)),
            pg_sys::INT8OID => Literal::Int(datum.value() as i64),
            pg_sys::BOOLOID => Literal::Bool(datum.value() != 0),
            pg_sys::NUMERICOID | pg_sys::FLOAT4OID | pg_sys::FLOAT8OID => {
                let text = output_text(datum, type_oid);
                if text.parse::<f64>().map_or(true, |f| !f.is_finite()) {
                    return None;
                }
                Literal::Decimal(text)
            }
            pg_sys::DATEOID => {
                let days = datum.value() as i32;
                if days == i32::MIN || days == i32::MAX {
                    return None; // -infinity / infinity
                }
                let base = NaiveDate::from_ymd_opt(2000, 1, 1)?;
                Literal::Date(if days >= 0 { base.checked_add_days(Days::new(days as u64))? } else { base.checked_sub_days(Days::new(days.unsigned_abs() as u64))? })
            }
            pg_sys::TIMESTAMPTZOID => {
                let micros = datum.value() as i64;
                if micros == i64::MIN || micros == i64::MAX {
                    return None;
                }
                let secs = micros.div_euclid(1_000_000);
                let frac = micros.rem_euclid(1_000_000);
                let secs = match (frac, rounding) {
                    (0, _) | (_, Rounding::Floor) => secs,
                    (_, Rounding::Ceil) => secs + 1,
                    (_, Rounding::Exact) => return None,
                };
                Literal::DateTime(DateTime::from_timestamp(PG_EPOCH_UNIX_SECS + secs, 0)?.fixed_offset())
            }
            pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID => Literal::Text(output_text(datum, type_oid)),
            _ => return None,
        })
    }
}

/// How a column's values are parsed from text.
#[derive(Debug, Clone)]
pub struct Target {
    input: pg_sys::Oid,
    ioparam: pg_sys::Oid,
    typmod: i32,
    array: bool,
    json: bool,
    text: bool,
}

impl Target {
    pub fn new(type_oid: pg_sys::Oid, typmod: i32) -> Target {
        let mut input = pg_sys::Oid::INVALID;
        let mut ioparam = pg_sys::Oid::INVALID;
        // SAFETY: a catalog lookup filling two locals; an unknown type raises
        // an ERROR.
        unsafe { pg_sys::getTypeInputInfo(type_oid, &mut input, &mut ioparam) };
        // SAFETY: a catalog lookup; InvalidOid for a type that is not an array.
        let array = unsafe { pg_sys::get_element_type(type_oid) } != pg_sys::Oid::INVALID;
        Target {
            input,
            ioparam,
            typmod,
            array,
            json: matches!(type_oid, pg_sys::JSONBOID | pg_sys::JSONOID),
            text: matches!(type_oid, pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID),
        }
    }

    /// The text PostgreSQL should parse for a Zoho value; None is NULL.
    fn text_of(&self, v: &Value) -> Option<String> {
        zoho_api::values::cell_text(v, zoho_api::values::Column { array: self.array, json: self.json, text: self.text })
    }

    /// Parses `v` as this column's type. A value PostgreSQL refuses is an
    /// error naming the column, the Zoho field and the record.
    pub fn datum(&self, v: &Value, describe: impl Fn() -> String) -> Result<Option<pg_sys::Datum>, ZohoFdwError> {
        let Some(text) = self.text_of(v) else { return Ok(None) };
        let cstr = CString::new(text.replace('\0', "")).expect("NULs removed");
        let (input, ioparam, typmod) = (self.input, self.ioparam, self.typmod);
        let ptr = cstr.as_ptr() as *mut std::ffi::c_char;
        // SAFETY: `ptr` is `cstr`'s NUL-terminated text, alive across the call;
        // input and ioparam are getTypeInputInfo's for the column's type, and an
        // ERROR comes back as a CaughtError instead of a longjmp.
        let parsed: Result<pg_sys::Datum, String> = PgTryBuilder::new(|| Ok(unsafe { pg_sys::OidInputFunctionCall(input, ptr, ioparam, typmod) }))
            .catch_others(|e| {
                Err(match &e {
                    CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r.message().to_string(),
                    CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
                })
            })
            .execute();
        parsed.map(Some).map_err(|reason| ZohoFdwError::Conversion { what: describe(), value: text.chars().take(80).collect(), reason })
    }
}

/// Text values that look alike in every Zoho field type.
fn text_like(zoho_type: &str) -> bool {
    matches!(zoho_type, "text" | "textarea" | "email" | "phone" | "website" | "picklist" | "autonumber" | "profileimage")
}

/// A column value as Zoho's JSON for a write (zoho-api.md §4.3): ids and
/// bigint fields as strings, lookups as `{"id"}`, dates `yyyy-MM-dd`,
/// datetimes with an offset and whole seconds, multi-selects as arrays.
/// The error says what is wrong with the value; nothing has been sent.
///
/// # Safety
/// Unless `isnull`, `datum` is a valid value of `col.type_oid`.
pub unsafe fn to_json(datum: pg_sys::Datum, isnull: bool, col: &super::table::ColumnDef) -> Result<Value, String> {
    // SAFETY: the caller's contract above, and col.kind is
    // Kind::of(col.type_oid): by-value kinds are read from the datum's bits, an
    // array is detoasted and deconstructed with its element type's layout, the
    // rest go to output_text.
    unsafe {
        use super::table::Kind;
        if isnull {
            return Ok(Value::Null);
        }
        let type_oid = pg_sys::Oid::from(col.type_oid);
        let zoho_type = col.zoho_type.as_deref().unwrap_or("");
        let lookup = col.is_lookup();
        let as_id = |s: String| -> Result<Value, String> {
            if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!("{s:?} is not a Zoho record id"));
            }
            Ok(if lookup { serde_json::json!({ "id": s }) } else { Value::String(s) })
        };
        let number = |s: &str| -> Result<Value, String> {
            let n: serde_json::Number = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
            if zoho_type == "integer" && !n.is_i64() {
                return Err(format!("{s} is not a whole number"));
            }
            Ok(Value::Number(n))
        };
        Ok(match col.kind {
            Kind::Int => {
                let n = match type_oid {
                    pg_sys::INT2OID => i64::from(datum.value() as i16),
                    pg_sys::INT4OID => i64::from(datum.value() as i32),
                    _ => datum.value() as i64,
                };
                if lookup || col.api_name == "id" || zoho_type == "bigint" {
                    as_id(n.to_string())?
                } else if text_like(zoho_type) {
                    Value::String(n.to_string())
                } else {
                    Value::from(n)
                }
            }
            Kind::Decimal => {
                let text = output_text(datum, type_oid);
                if text_like(zoho_type) {
                    Value::String(text)
                } else {
                    number(&text)?
                }
            }
            Kind::Bool => Value::Bool(datum.value() != 0),
            Kind::Date => match literal(datum, type_oid, Rounding::Exact) {
                // Display is yyyy-MM-dd for four-digit years, without parsing a format.
                Some(Literal::Date(d)) if (0..=9999).contains(&chrono::Datelike::year(&d)) => Value::String(d.to_string()),
                Some(Literal::Date(d)) => Value::String(d.format("%Y-%m-%d").to_string()),
                _ => return Err("infinite dates cannot be stored in Zoho".into()),
            },
            // Zoho keeps whole seconds: the fraction is dropped.
            Kind::DateTime => match literal(datum, type_oid, Rounding::Floor) {
                Some(Literal::DateTime(t)) => Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)),
                _ => return Err("infinite timestamps cannot be stored in Zoho".into()),
            },
            Kind::Text => {
                let s = output_text(datum, type_oid);
                match zoho_type {
                    _ if lookup => as_id(s)?,
                    "bigint" => as_id(s)?,
                    "integer" | "double" | "currency" | "percent" | "decimal" => number(&s)?,
                    "boolean" => match s.to_ascii_lowercase().as_str() {
                        "true" | "t" => Value::Bool(true),
                        "false" | "f" => Value::Bool(false),
                        _ => return Err(format!("{s:?} is not a boolean")),
                    },
                    "multiselectpicklist" => Value::Array(s.split(';').map(|p| Value::String(p.trim().to_string())).filter(|v| v != "").collect()),
                    _ => Value::String(s),
                }
            }
            Kind::Other if type_oid == pg_sys::JSONBOID || type_oid == pg_sys::JSONOID => {
                serde_json::from_str(&output_text(datum, type_oid)).map_err(|e| format!("not JSON: {e}"))?
            }
            Kind::Other if pg_sys::get_element_type(type_oid) != pg_sys::Oid::INVALID => {
                let elem = pg_sys::get_element_type(type_oid);
                let array = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::ArrayType;
                let (mut len, mut byval, mut align) = (0i16, false, 0 as std::ffi::c_char);
                pg_sys::get_typlenbyvalalign(elem, &mut len, &mut byval, &mut align);
                let (mut datums, mut nulls, mut n) = (std::ptr::null_mut(), std::ptr::null_mut(), 0);
                pg_sys::deconstruct_array(array, elem, len.into(), byval, align, &mut datums, &mut nulls, &mut n);
                Value::Array(
                    (0..n as usize)
                        .filter(|i| !*nulls.add(*i))
                        .map(|i| Value::String(output_text(*datums.add(i), elem)))
                        .collect(),
                )
            }
            Kind::Other => Value::String(output_text(datum, type_oid)),
        })
    }
}
