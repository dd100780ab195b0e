//! `zoho_create_mirror`: a local table typed from a module's live metadata
//! (DESIGN.md's type mapping, as IMPORT FOREIGN SCHEMA uses), with lower-
//! case column names, primary key `id` and always a `modified_time`.

use std::ffi::CStr;

use pgrx::prelude::*;

use crate::error::{raise, ZohoFdwError};
use crate::fdw::import::{pg_type, readable};
use crate::local::{quote_ident, LocalTable};
use crate::server;

#[pg_extern(
    volatile,
    sql = r#"
CREATE FUNCTION zoho_create_mirror(module text, target text, server name DEFAULT NULL)
  RETURNS regclass VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'zoho_create_mirror_wrapper';
COMMENT ON FUNCTION zoho_create_mirror(text, text, name) IS
  'Create a local table typed from a Zoho module''s metadata (primary key id), or accept a compatible existing one';
"#
)]
pub fn zoho_create_mirror(module: Option<&str>, target: Option<&str>, server: Option<&CStr>) -> pg_sys::Oid {
    let (Some(module), Some(target)) = (module, target) else {
        raise(ZohoFdwError::BadArgument { what: "module and target must not be NULL".into(), hint: None })
    };
    let server = server.map(|c| c.to_string_lossy().into_owned());
    create(module, target, server.as_deref()).unwrap_or_else(|e| raise(e))
}

fn create(module: &str, target: &str, server: Option<&str>) -> Result<pg_sys::Oid, ZohoFdwError> {
    let ctx = server::resolve(server)?;
    let client = ctx.shared_client()?;
    let fields = ctx.module_fields(&client, module, &format!("mirror {target}"))?;
    Spi::connect_mut(|spi| {
        let err = |e: pgrx::spi::SpiError| ZohoFdwError::Internal(format!("zoho_create_mirror: {e}"));
        let parts: Vec<String> = spi
            .select("SELECT unnest(parse_ident($1))", None, &[target.into()])
            .map_err(|e| ZohoFdwError::BadArgument { what: format!("\"{target}\" is not a table name: {e}"), hint: None })?
            .map(|r| r.get::<String>(1).ok().flatten().unwrap_or_default())
            .collect();
        let qualified = parts.iter().map(|p| quote_ident(p)).collect::<Vec<_>>().join(".");
        let existing = spi
            .select("SELECT to_regclass($1)::oid", None, &[qualified.as_str().into()])
            .and_then(|r| r.first().get_one::<pg_sys::Oid>())
            .map_err(err)?;
        if let Some(oid) = existing {
            // Someone else's table is not accepted on its shape alone: the
            // caller must be able to fill it (the check's error names what
            // is missing).
            spi.select("SELECT zoho.require_table($1, '{SELECT,INSERT,UPDATE}', 'mirror into')", None, &[oid.into()]).map_err(err)?;
            return compatible(oid, module).map(|_| oid);
        }
        let mut cols = vec!["  id bigint PRIMARY KEY".to_string()];
        let mut seen = std::collections::HashSet::from(["id".to_string()]);
        let mut skipped = Vec::new();
        for f in fields.iter().filter(|f| f.api_name != "id") {
            let name = f.api_name.to_lowercase();
            if !readable(f) {
                skipped.push(format!("{} ({})", f.api_name, f.data_type));
            } else if seen.insert(name.clone()) {
                cols.push(format!("  {} {}", quote_ident(&name), pg_type(f)));
            } else {
                skipped.push(format!("{} (name clash)", f.api_name));
            }
        }
        if seen.insert("modified_time".into()) {
            cols.push("  modified_time timestamptz".into());
        }
        spi.update(&format!("CREATE TABLE {qualified} (\n{}\n)", cols.join(",\n")), None, &[]).map_err(err)?;
        spi.update(
            &format!("COMMENT ON TABLE {qualified} IS {}", crate::fdw::import::quote_literal(&format!("Mirror of Zoho module {module} (zoho_bulk_export, zoho_watch)"))),
            None,
            &[],
        )
        .map_err(err)?;
        if !skipped.is_empty() {
            notice!("zoho_fdw: fields of {module} that Bulk Read cannot export were left out: {}", skipped.join(", "));
        }
        spi.select("SELECT to_regclass($1)::oid", None, &[qualified.as_str().into()])
            .and_then(|r| r.first().get_one::<pg_sys::Oid>())
            .map_err(err)?
            .ok_or_else(|| ZohoFdwError::Internal("the mirror was created but cannot be found".into()))
    })
}

/// An existing table is used if it can take exports: an `id` column and a
/// `modified_time` column.
fn compatible(oid: pg_sys::Oid, module: &str) -> Result<(), ZohoFdwError> {
    let t = LocalTable::load(oid, "a mirror is a local table")?;
    let missing: Vec<&str> = [("id", "bigint"), ("modified_time", "timestamptz")]
        .iter()
        .filter(|(name, _)| t.column(name).is_none())
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(ZohoFdwError::BadArgument {
            what: format!("{} exists and cannot mirror {module}: it has no {} column", t.display, missing.join(" or ")),
            hint: Some("Drop or rename it, or pick another name; zoho_bulk_export can also fill an existing table through its mapping argument.".into()),
        });
    }
    notice!("zoho_fdw: {} exists and has id and modified_time columns; using it", t.display);
    Ok(())
}
