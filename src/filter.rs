//! Filtered flows: a scheduled pull or a two-way table that keeps only the
//! records a COQL condition matches (zoho-api's `filter`). Zoho evaluates
//! the condition: a full load reads by Bulk Read criteria, a catch-up asks
//! which of its changed records still match, and a record that no longer
//! matches leaves the table, or is flagged where a two-way table flags
//! Zoho's deletes (unless a local edit of it waits to be pushed: that row
//! stays until it is sent).

use std::ffi::CStr;

use pgrx::prelude::*;
use zoho_api::filter::Filter;
use zoho_api::metadata::FieldMeta;

use crate::error::{raise, ZohoFdwError};
use crate::export::Target;
use crate::server;
use crate::sync::origin::{from_zoho, FromZoho};

const HINT: &str = "A filter is a COQL condition on the module's fields, e.g. Lead_Source = 'Web' and (Annual_Revenue >= 10000 or Rating in ('Hot', 'Warm')). Text and dates are quoted, with '' for a quote.";

#[pg_extern(
    volatile,
    sql = r#"
CREATE FUNCTION zoho.filter_check(module text, filter text, server name)
  RETURNS text VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'filter_check_wrapper';
COMMENT ON FUNCTION zoho.filter_check(text, text, name) IS
  'A flow''s filter checked against the module''s fields, as the COQL condition the worker sends (NULL for none)';
"#,
    requires = ["export_catalog"]
)]
fn filter_check(module: Option<&str>, filter: Option<&str>, server: Option<&CStr>) -> Option<String> {
    let (Some(module), Some(filter)) = (module, filter) else { return None };
    let server = server.map(|c| c.to_string_lossy().into_owned());
    let checked = || -> Result<String, ZohoFdwError> {
        let ctx = server::resolve(server.as_deref())?;
        let client = ctx.shared_client()?;
        let fields = ctx.module_fields(&client, module, "filter")?;
        Ok(parse(module, filter, &fields)?.text)
    };
    Some(checked().unwrap_or_else(|e| raise(e)))
}

/// `text` against `module`'s fields, or why not, with a hint.
pub fn parse(module: &str, text: &str, fields: &[FieldMeta]) -> Result<Filter, ZohoFdwError> {
    zoho_api::filter::parse(text, fields).map_err(|e| ZohoFdwError::BadArgument { what: format!("{module}: {e}"), hint: Some(HINT.into()) })
}

/// Rows that a pending local edit does not hold back from leaving.
fn unheld(target: &Target) -> String {
    match &target.sync {
        Some(two) => format!(" AND t.{} IS NOT FALSE", two.sync.quoted()),
        None => String::new(),
    }
}

/// The statement that removes the rows `t` where `cond`: a DELETE, or for
/// a table that flags Zoho's deletes, the flag set on rows not yet flagged.
fn remove(target: &Target, cond: &str) -> String {
    match target.sync.as_ref().and_then(|s| s.flags()) {
        Some(f) => format!("UPDATE {t} t SET {f} = now() WHERE t.{f} IS NULL AND {cond}", t = target.table.sql_name, f = f.quoted()),
        None => format!("DELETE FROM {} t WHERE {cond}", target.table.sql_name),
    }
}

fn spi_err(e: pgrx::spi::SpiError) -> ZohoFdwError {
    ZohoFdwError::Internal(format!("removing records the filter no longer matches: {e}"))
}

/// Removes (or flags) the rows of these records, which no longer match;
/// returns how many left.
pub fn leave(target: &Target, ids: &[i64]) -> Result<u64, ZohoFdwError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = remove(target, &format!("t.{} = ANY($1){}", target.columns[0].0.quoted(), unheld(target)));
    // From Zoho, so a two-way table does not delete the records in turn.
    from_zoho(target.table.oid, FromZoho::Synced, || Spi::connect_mut(|spi| spi.update(sql.as_str(), None, &[ids.to_vec().into()]).map(|t| t.len() as u64).map_err(spi_err)))
}

/// Removes (or flags) every row whose record is not among `matching` (all
/// the ids that match, read after a full load); rows with no record id yet
/// stay.
pub fn keep_only(target: &Target, matching: &[i64]) -> Result<u64, ZohoFdwError> {
    let id = target.columns[0].0.quoted();
    // An anti-join on a hashed list, not `<> ALL`, which is quadratic.
    let sql = remove(target, &format!("t.{id} IS NOT NULL AND NOT EXISTS (SELECT FROM unnest($1::bigint[]) AS m(id) WHERE m.id = t.{id}){}", unheld(target)));
    from_zoho(target.table.oid, FromZoho::Synced, || Spi::connect_mut(|spi| spi.update(sql.as_str(), None, &[matching.to_vec().into()]).map(|t| t.len() as u64).map_err(spi_err)))
}
