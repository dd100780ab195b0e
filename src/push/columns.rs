//! Which local columns a push sends, as which Zoho fields, and on which
//! unique field rows are matched. Everything is checked here, before any
//! row is read or sent.

use pgrx::prelude::*;
use serde_json::Value;
use zoho_api::metadata::FieldMeta;
use zoho_api::push::{PushField, PushSpec};

use super::source::{LocalColumn, SourceTable};
use crate::error::ZohoFdwError;
use crate::fdw::table::{ColumnDef, Kind};

/// One column to send: how to read it and which field it feeds.
pub struct PushColumn {
    pub local: LocalColumn,
    /// What the FDW's SQL → Zoho conversion needs to know.
    pub def: ColumnDef,
    pub field: FieldMeta,
}

impl PushColumn {
    /// The select-list expression: a timestamp without time zone holds UTC
    /// wall time (zoho_api::values::utc_wall_time, as exports and
    /// notifications write it), whatever the session's TimeZone.
    pub fn select_expr(&self) -> String {
        if self.local.type_oid == pg_sys::TIMESTAMPOID {
            format!("({} AT TIME ZONE 'UTC')", self.local.quoted())
        } else {
            self.local.quoted()
        }
    }
}

pub struct PushColumns {
    /// The key column first.
    pub columns: Vec<PushColumn>,
    pub spec: PushSpec,
}

fn column_def(local: &LocalColumn, field: &FieldMeta) -> ColumnDef {
    let type_oid = if local.type_oid == pg_sys::TIMESTAMPOID { pg_sys::TIMESTAMPTZOID } else { local.type_oid };
    ColumnDef {
        attnum: local.attnum,
        name: local.name.clone(),
        api_name: field.api_name.clone(),
        zoho_type: Some(field.value_type().to_string()),
        read_only: false,
        type_oid: u32::from(type_oid),
        typmod: local.typmod,
        kind: Kind::of(type_oid),
    }
}

pub fn build(src: &SourceTable, module: &str, fields: &[FieldMeta], key_field: Option<&str>, mapping: Option<&Value>) -> Result<PushColumns, ZohoFdwError> {
    let data = src.data_columns();
    let names: Vec<&str> = data.iter().map(|c| c.name.as_str()).collect();
    let matching = zoho_api::mapping::match_columns(module, &names, fields, mapping, true)
        .map_err(|e| ZohoFdwError::BadArgument { what: format!("{}: {e}", src.display), hint: Some(MAPPING_HINT.into()) })?;
    if !matching.unmatched.is_empty() {
        notice!(
            "zoho_fdw: {} column(s) of {} match no field of {module} and are not sent: {}",
            matching.unmatched.len(),
            src.display,
            matching.unmatched.join(", ")
        );
    }
    if !matching.read_only.is_empty() {
        let list: Vec<String> = matching.read_only.iter().map(|(c, f)| format!("{c} ({f})")).collect();
        notice!("zoho_fdw: Zoho does not let the API write these fields, so they are not sent: {}", list.join(", "));
    }
    let key = match key_field {
        Some(k) => {
            let field = fields
                .iter()
                .find(|f| f.api_name.eq_ignore_ascii_case(k))
                .ok_or_else(|| ZohoFdwError::BadArgument { what: format!("module {module} has no field \"{k}\" (key_field)"), hint: Some(KEY_HINT.into()) })?;
            if !field.unique {
                return Err(ZohoFdwError::BadArgument {
                    what: format!("key_field {} of module {module} is not unique in Zoho, so rows cannot be matched on it", field.api_name),
                    hint: Some("Mark the field \"Do not allow duplicate values\" in Zoho's layout editor, or name a unique field.".into()),
                });
            }
            field.api_name.clone()
        }
        None => {
            let unique: Vec<&str> = matching.matched.iter().filter(|m| m.field.unique).map(|m| m.field.api_name.as_str()).collect();
            match unique.as_slice() {
                [one] => one.to_string(),
                [] => {
                    return Err(ZohoFdwError::BadArgument {
                        what: format!("no column of {} maps to a unique field of {module}, so rows cannot be matched", src.display),
                        hint: Some(KEY_HINT.into()),
                    })
                }
                many => {
                    return Err(ZohoFdwError::BadArgument {
                        what: format!("several columns of {} map to unique fields of {module} ({}); say which to match on", src.display, many.join(", ")),
                        hint: Some("Pass key_field => '…'.".into()),
                    })
                }
            }
        }
    };
    let Some(key_pos) = matching.matched.iter().position(|m| m.field.api_name == key) else {
        return Err(ZohoFdwError::BadArgument {
            what: format!("no column of {} maps to the key field {key}", src.display),
            hint: Some(format!("Name a column after it, or map one: mapping => '{{\"legacy_id\": \"{key}\"}}'.")),
        });
    };
    let mut order: Vec<usize> = (0..matching.matched.len()).collect();
    order.remove(key_pos);
    order.insert(0, key_pos);
    let columns: Vec<PushColumn> = order
        .into_iter()
        .map(|i| {
            let m = &matching.matched[i];
            let local = data[m.column].clone();
            PushColumn { def: column_def(&local, &m.field), local, field: m.field.clone() }
        })
        .collect();
    let spec = PushSpec {
        module: module.to_string(),
        fields: columns.iter().map(|c| PushField { api_name: c.field.api_name.clone(), data_type: c.field.value_type().to_string() }).collect(),
    };
    Ok(PushColumns { columns, spec })
}

const MAPPING_HINT: &str = "mapping is a JSON object of local column → Zoho field API name (or null to leave a column out).";
const KEY_HINT: &str = "Pass key_field => the API name of a unique Zoho field (e.g. parent_id) that a column holds.";
