//! Who may act on what, and acting as a flow's owner.
//!
//! The worker runs as the bootstrap superuser, so everything it does to a
//! user's objects goes through [`as_owner`]: the owner's identity inside a
//! security-restricted operation (as PostgreSQL runs VACUUM and REFRESH
//! MATERIALIZED VIEW), `search_path` pinned, and lock and statement
//! timeouts, after checking again that the target is an ordinary or
//! partitioned table the owner may still use. Checks name `current_user`
//! or the owner, never `session_user`.

use std::ffi::CString;

use pgrx::pg_sys;

use crate::error::ZohoFdwError;

/// What a flow does to its table, and so the privileges it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Count and push pending rows (SELECT, UPDATE).
    Push,
    /// Export into a table (SELECT, INSERT, UPDATE).
    Export,
    /// Apply notifications, pulls and catch-ups, deletes included
    /// (SELECT, INSERT, UPDATE, DELETE).
    Mirror,
}

impl Access {
    fn needs(self) -> &'static [(u32, &'static str)] {
        match self {
            Access::Push => &[(pg_sys::ACL_SELECT, "SELECT"), (pg_sys::ACL_UPDATE, "UPDATE")],
            Access::Export => &[(pg_sys::ACL_SELECT, "SELECT"), (pg_sys::ACL_INSERT, "INSERT"), (pg_sys::ACL_UPDATE, "UPDATE")],
            Access::Mirror => &[
                (pg_sys::ACL_SELECT, "SELECT"),
                (pg_sys::ACL_INSERT, "INSERT"),
                (pg_sys::ACL_UPDATE, "UPDATE"),
                (pg_sys::ACL_DELETE, "DELETE"),
            ],
        }
    }
}

/// A relation's name, or None when no relation has that OID.
pub(crate) fn rel_name(rel: pg_sys::Oid) -> Option<String> {
    // SAFETY: get_rel_name returns NULL or a palloc'd copy of the name.
    let p = unsafe { pg_sys::get_rel_name(rel) };
    // SAFETY: `p` is non-null (checked) and NUL-terminated.
    (!p.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

fn role_name(role: pg_sys::Oid) -> String {
    // SAFETY: GetUserNameFromId with noerr=true returns NULL for a dropped role.
    let p = unsafe { pg_sys::GetUserNameFromId(role, true) };
    if p.is_null() {
        format!("role {}", u32::from(role))
    } else {
        // SAFETY: `p` is non-null and a palloc'd, NUL-terminated role name.
        unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// Refuses anything but an existing ordinary or partitioned table.
pub fn check_table(rel: pg_sys::Oid) -> Result<String, ZohoFdwError> {
    let Some(name) = rel_name(rel) else {
        return Err(ZohoFdwError::BadArgument { what: format!("the table (oid {}) no longer exists", u32::from(rel)), hint: None });
    };
    // SAFETY: a catalog lookup; the relation exists (its name was found).
    let kind = unsafe { pg_sys::get_rel_relkind(rel) } as u8;
    if kind != pg_sys::RELKIND_RELATION && kind != pg_sys::RELKIND_PARTITIONED_TABLE {
        return Err(ZohoFdwError::WrongObject {
            what: format!("\"{name}\" is not a table"),
            hint: Some("zoho_fdw flows read and write ordinary or partitioned tables only, never views or foreign tables.".into()),
        });
    }
    Ok(name)
}

/// Checks that `role` holds every privilege `access` needs on `rel`.
pub fn check_privileges(rel: pg_sys::Oid, role: pg_sys::Oid, access: Access) -> Result<(), ZohoFdwError> {
    let name = check_table(rel)?;
    let missing: Vec<&str> = access
        .needs()
        .iter()
        // SAFETY: a catalog lookup for an existing relation and role.
        .filter(|(mode, _)| unsafe { pg_sys::pg_class_aclcheck(rel, role, (*mode).into()) } != pg_sys::AclResult::ACLCHECK_OK)
        .map(|(_, label)| *label)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ZohoFdwError::Denied {
        what: format!("role {} lacks {} on table \"{name}\"", role_name(role), missing.join(", ")),
        hint: Some(format!("GRANT {} ON \"{name}\" TO {}, or let the table's owner set up the flow.", missing.join(", "), role_name(role))),
    })
}

/// Checks that `role` may use the foreign server `server`.
pub fn check_server_usage(server: pg_sys::Oid, server_name: &str, role: pg_sys::Oid) -> Result<(), ZohoFdwError> {
    // SAFETY: a catalog lookup for an existing server and role.
    if unsafe { pg_sys::pg_foreign_server_aclcheck(server, role, pg_sys::ACL_USAGE.into()) } == pg_sys::AclResult::ACLCHECK_OK {
        return Ok(());
    }
    Err(ZohoFdwError::Denied {
        what: format!("role {} may not use server \"{server_name}\"", role_name(role)),
        hint: Some(format!("GRANT USAGE ON FOREIGN SERVER \"{server_name}\" TO {}.", role_name(role))),
    })
}

/// The role running the current statement (a SECURITY DEFINER function's
/// owner inside one, as PostgreSQL's own checks see it).
pub fn current_user() -> pg_sys::Oid {
    // SAFETY: reads the backend's current user id.
    unsafe { pg_sys::GetUserId() }
}

// PostgreSQL's timeout API (utils/timeout.h), which pgrx does not bind.
const STATEMENT_TIMEOUT: i32 = 3;
extern "C-unwind" {
    fn enable_timeout_after(id: i32, delay_ms: i32);
    fn disable_timeout(id: i32, keep_indicator: bool);
    fn get_timeout_indicator(id: i32, reset_indicator: bool) -> bool;
}

/// Limits of one flow's work, from `zoho_fdw.worker_lock_timeout` and
/// `zoho_fdw.worker_statement_timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub lock_timeout_ms: i32,
    pub statement_timeout_ms: i32,
}

impl Limits {
    pub fn from_gucs() -> Limits {
        Limits { lock_timeout_ms: crate::gucs::WORKER_LOCK_TIMEOUT.get(), statement_timeout_ms: crate::gucs::WORKER_STATEMENT_TIMEOUT.get() }
    }

    /// For a quick look (counting pending rows every poll): a locked table
    /// costs the other flows a moment, not the whole lock timeout.
    pub fn glance() -> Limits {
        let l = Limits::from_gucs();
        let statement = if l.statement_timeout_ms == 0 { 30_000 } else { l.statement_timeout_ms.min(30_000) };
        Limits { lock_timeout_ms: l.lock_timeout_ms.min(200), statement_timeout_ms: statement }
    }
}

/// Sets a GUC: saved at the current nest level (undone by AtEOXact_GUC),
/// or for the session.
fn set_guc(name: &str, value: &str, action: pg_sys::GucAction::Type) {
    let (n, v) = (CString::new(name).expect("name"), CString::new(value).expect("value"));
    // SAFETY: a valid setting of a known GUC; an invalid value raises an
    // ERROR, which aborts the flow's transaction.
    unsafe {
        pg_sys::set_config_option(n.as_ptr(), v.as_ptr(), pg_sys::GucContext::PGC_SUSET, pg_sys::GucSource::PGC_S_SESSION, action, true, 0, false);
    }
}

/// Undoes [`as_owner`]'s changes, also when `f` fails with a Rust error
/// (a PostgreSQL ERROR aborts the transaction, which undoes them too).
struct Restore {
    user: pg_sys::Oid,
    context: i32,
    nest: i32,
    timed: bool,
}

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: restores the identity, settings and timer saved on entry.
        unsafe {
            if self.timed {
                disable_timeout(STATEMENT_TIMEOUT, false);
                // Fired after the flow's last check: the cancel it asked for
                // belongs to this flow, not to whatever the worker does next.
                if get_timeout_indicator(STATEMENT_TIMEOUT, true) {
                    pg_sys::QueryCancelPending = 0;
                }
            }
            // Undo every setting made inside, a trigger's plain SET included
            // (as VACUUM and REFRESH MATERIALIZED VIEW do for their owner).
            pg_sys::AtEOXact_GUC(false, self.nest);
            pg_sys::SetUserIdAndSecContext(self.user, self.context);
        }
    }
}

/// The worker's session settings: `search_path = pg_catalog, pg_temp`, and
/// no statement timeout of its own (each flow gets one in [`as_owner`]).
/// Set at the start of every worker transaction: a database's or role's
/// default search_path never applies to what the superuser runs.
pub fn pin_session() {
    set_guc("search_path", "pg_catalog, pg_temp", pg_sys::GucAction::GUC_ACTION_SET);
    set_guc("statement_timeout", "0", pg_sys::GucAction::GUC_ACTION_SET);
}

/// Runs `f` as `owner` on `rel` (checked first with `access`): a
/// security-restricted operation with `search_path = pg_catalog, pg_temp`,
/// the worker's lock timeout, and its statement timeout on the whole.
pub fn as_owner<R>(owner: pg_sys::Oid, rel: Option<(pg_sys::Oid, Access)>, limits: Limits, f: impl FnOnce() -> Result<R, ZohoFdwError>) -> Result<R, ZohoFdwError> {
    if let Some((rel, access)) = rel {
        check_privileges(rel, owner, access)?;
    }
    let (mut user, mut context) = (pg_sys::InvalidOid, 0);
    // SAFETY: saves the current identity, then takes the owner's with the
    // restrictions PostgreSQL applies to maintenance run for another role.
    let nest = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(owner, context | (pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION) as i32);
        pg_sys::NewGUCNestLevel()
    };
    let timed = limits.statement_timeout_ms > 0;
    let _restore = Restore { user, context, nest, timed };
    set_guc("search_path", "pg_catalog, pg_temp", pg_sys::GucAction::GUC_ACTION_SAVE);
    set_guc("lock_timeout", &limits.lock_timeout_ms.to_string(), pg_sys::GucAction::GUC_ACTION_SAVE);
    if timed {
        // SAFETY: arms the backend's statement timer, disarmed by Restore.
        unsafe { enable_timeout_after(STATEMENT_TIMEOUT, limits.statement_timeout_ms) };
    }
    f()
}

/// Runs `f` with the owner's identity but outside the security-restricted
/// operation: for the extension's own fixed statements that PostgreSQL
/// refuses inside one (a temporary staging table), never for user code.
pub fn unrestricted<R>(f: impl FnOnce() -> R) -> R {
    let (mut user, mut context) = (pg_sys::InvalidOid, 0);
    // SAFETY: drops only the SECURITY_RESTRICTED_OPERATION bit, and puts
    // it back after `f`; an ERROR in `f` aborts the transaction, which
    // restores the identity anyway.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(user, context & !(pg_sys::SECURITY_RESTRICTED_OPERATION as i32));
    }
    let r = f();
    // SAFETY: puts back the identity and context saved above.
    unsafe { pg_sys::SetUserIdAndSecContext(user, context) };
    r
}

/// Runs `f` as the bootstrap superuser with `search_path = pg_catalog`, for
/// reading what PostgreSQL shows superusers only (another backend's
/// activity) or signalling the jobs runner; the caller has been checked,
/// and `f` runs only the extension's own fixed statements.
pub fn as_superuser<R>(f: impl FnOnce() -> R) -> R {
    let (mut user, mut context) = (pg_sys::InvalidOid, 0);
    // SAFETY: switches identity and settings for `f` alone and restores
    // both; an ERROR in `f` aborts the transaction, which restores them too.
    let nest = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(pg_sys::BOOTSTRAP_SUPERUSERID.into(), context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32);
        pg_sys::NewGUCNestLevel()
    };
    set_guc("search_path", "pg_catalog, pg_temp", pg_sys::GucAction::GUC_ACTION_SAVE);
    let r = f();
    // SAFETY: undoes the settings made since NewGUCNestLevel above and puts back
    // the identity and context saved there.
    unsafe {
        pg_sys::AtEOXact_GUC(false, nest);
        pg_sys::SetUserIdAndSecContext(user, context);
    }
    r
}
