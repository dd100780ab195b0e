//! `zoho.sync_plan`: what `zoho_sync` registers, checked against the
//! module's metadata and the table: the rules with Zoho's field names, and
//! the push's and the pull's mappings (zoho-api's `mapping::two_way`).

use std::ffi::CStr;

use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::json;
use zoho_api::conflict::Rules;

use crate::error::{raise, ZohoFdwError};
use crate::local::LocalTable;
use crate::server;

#[pg_extern(
    volatile,
    sql = r#"
CREATE FUNCTION zoho.sync_plan(target regclass, module text, key_field text, policy text, fields jsonb, mapping jsonb, sync_column name, server name)
  RETURNS jsonb VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'sync_plan_wrapper';
COMMENT ON FUNCTION zoho.sync_plan(regclass, text, text, text, jsonb, jsonb, name, name) IS
  'zoho_sync''s checks: the rules, the push''s and the pull''s mappings of a two-way table';
"#,
    requires = ["schedule_catalog"]
)]
#[allow(clippy::too_many_arguments)]
fn sync_plan(target: Option<pg_sys::Oid>, module: Option<&str>, key_field: Option<&str>, policy: Option<&str>, fields: Option<JsonB>, mapping: Option<JsonB>, sync_column: Option<&CStr>, server: Option<&CStr>) -> JsonB {
    let (Some(target), Some(module), Some(key_field)) = (target, module, key_field) else {
        raise(ZohoFdwError::BadArgument { what: "target, module and key_field must not be NULL".into(), hint: None })
    };
    let sync_column = sync_column.map(|c| c.to_string_lossy().into_owned()).unwrap_or_else(|| "synced".into());
    let server = server.map(|c| c.to_string_lossy().into_owned());
    let args = Args { target, module, key_field, policy: policy.unwrap_or("newest_wins"), fields: fields.as_ref().map(|j| &j.0), mapping: mapping.as_ref().map(|j| &j.0), sync_column: &sync_column, server: server.as_deref() };
    plan(&args).map(JsonB).unwrap_or_else(|e| raise(e))
}

struct Args<'a> {
    target: pg_sys::Oid,
    module: &'a str,
    key_field: &'a str,
    policy: &'a str,
    fields: Option<&'a serde_json::Value>,
    mapping: Option<&'a serde_json::Value>,
    sync_column: &'a str,
    server: Option<&'a str>,
}

fn plan(a: &Args<'_>) -> Result<serde_json::Value, ZohoFdwError> {
    let bad = |what: String, hint: Option<&str>| ZohoFdwError::BadArgument { what, hint: hint.map(str::to_string) };
    let rules = Rules::parse(a.policy, a.fields).map_err(|e| bad(e.to_string(), Some("fields => '{\"Phone\": \"local\", \"Lead_Status\": \"zoho\", \"Email\": \"local_wins\"}'")))?;
    // Before the table is even locked: a table the caller may keep both ways.
    crate::privileges::check_privileges(a.target, crate::privileges::current_user(), crate::privileges::Access::Mirror)?;
    let table = LocalTable::load(a.target, "a two-way table is a local table")?;
    if crate::sync::bookkeeping(&table, a.sync_column, &rules)?.changed_fields.is_none() {
        pgrx::pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION,
            format!("zoho_fdw: {} has no column {}, so a row edited here and in Zoho is a conflict on every field that differs, not only on those edited here", table.display, crate::push::CHANGED_FIELDS),
            "",
        )
        .set_hint(format!("ALTER TABLE {} ADD COLUMN {} jsonb", table.display, crate::push::CHANGED_FIELDS))
        .report(PgLogLevel::NOTICE);
    }
    require_trigger(&table, a.sync_column)?;
    let ctx = server::resolve(a.server)?;
    let client = ctx.shared_client()?;
    let fields = ctx.module_fields(&client, a.module, &format!("sync {}", table.display))?;
    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    let mut bookkeeping: Vec<&str> = crate::push::BOOKKEEPING.to_vec();
    bookkeeping.push(a.sync_column);
    let m = zoho_api::mapping::two_way(a.module, &names, &fields, &rules, a.mapping, a.key_field, &bookkeeping)
        .map_err(|e| bad(format!("{}: {e}", table.display), Some("mapping is a JSON object of local column → Zoho field API name (or null to leave a column alone).")))?;
    // The pull's side as an export sees it: id and Modified_Time held, the id unique.
    let pull = crate::export::plan_columns(LocalTable::load(a.target, "a two-way table is a local table")?, a.module, &fields, Some(&m.pull), None)?;
    Spi::connect(|spi| crate::export::require_unique_id(&spi, &pull.table, &pull.columns[0].0))?;
    let rules: serde_json::Map<String, serde_json::Value> = m
        .rules
        .fields
        .iter()
        .map(|(f, r)| {
            let s = match r {
                zoho_api::conflict::FieldRule::OwnedBy(side) => side.as_str(),
                zoho_api::conflict::FieldRule::Policy(p) => p.as_str(),
            };
            (f.clone(), serde_json::Value::String(s.into()))
        })
        .collect();
    Ok(json!({"key_field": m.key_field, "key_column": m.key_column, "fields": rules, "push_mapping": m.push, "pull_mapping": m.pull}))
}

/// A two-way table's local edits are found by `zoho_mark_pending`.
fn require_trigger(table: &LocalTable, sync_column: &str) -> Result<(), ZohoFdwError> {
    let found = Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
                         WHERE t.tgrelid = $1 AND p.proname = 'zoho_mark_pending' AND t.tgenabled <> 'D')",
        &[table.oid.into()],
    )
    .map_err(|e| ZohoFdwError::Internal(format!("reading the triggers of {}: {e}", table.display)))?
    .unwrap_or(false);
    if found {
        return Ok(());
    }
    Err(ZohoFdwError::BadArgument {
        what: format!("{} has no enabled zoho_mark_pending trigger, so its local edits would never be pushed", table.display),
        hint: Some(format!(
            "CREATE TRIGGER zoho_pending BEFORE INSERT OR UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending('{}')",
            table.display,
            sync_column.replace('\'', "''")
        )),
    })
}
