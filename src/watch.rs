//! `zoho_watch` and `zoho_unwatch`: subscribe a module's changes to a
//! table, and stop. The channel gets a random id and token; the token is
//! kept where only the extension's owner can read it (zoho.watches), and
//! the background worker checks it on every callback, renews the channel
//! before it expires and catches up after any gap.
//!
//! Watch first, then export: the channel's `synced_until` starts when the
//! channel does, so nothing changed in between is missed.

use std::ffi::CStr;

use pgrx::prelude::*;
use rand::Rng;
use zoho_api::notifications::Channel;

use crate::error::{raise, ZohoFdwError};
use crate::runtime::block_on;
use crate::{gucs, server};

const EVENTS: &[&str] = &["create", "edit", "delete", "all"];

#[pg_extern(
    volatile,
    sql = r#"
CREATE FUNCTION zoho_watch(module text, target regclass, events text[] DEFAULT '{create,edit,delete}', notify_url text DEFAULT NULL, server name DEFAULT NULL,
                           filter text DEFAULT NULL, schema_changes text DEFAULT 'follow')
  RETURNS text VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', 'zoho_watch_wrapper';
COMMENT ON FUNCTION zoho_watch(text, regclass, text[], text, name, text, text) IS
  'Subscribe to change notifications of a Zoho module and keep target current (through the background worker), only with the records a COQL condition matches (filter), following fields added in Zoho (schema_changes); returns the channel id';
"#,
    requires = ["export_catalog", "watch_catalog"]
)]
#[allow(clippy::too_many_arguments)]
fn zoho_watch(
    module: Option<&str>,
    target: Option<pg_sys::Oid>,
    events: Option<Vec<Option<String>>>,
    notify_url: Option<&str>,
    server: Option<&CStr>,
    filter: Option<&str>,
    schema_changes: Option<&str>,
) -> String {
    let (Some(module), Some(target)) = (module, target) else {
        raise(ZohoFdwError::BadArgument { what: "module and target must not be NULL".into(), hint: None })
    };
    let events: Vec<String> = events.unwrap_or_else(|| vec![Some("create".into()), Some("edit".into()), Some("delete".into())]).into_iter().flatten().collect();
    let server = server.map(|c| c.to_string_lossy().into_owned());
    let schema_changes = schema_changes.unwrap_or("NULL");
    if !["follow", "hold", "ignore"].contains(&schema_changes) {
        raise(ZohoFdwError::BadArgument {
            what: format!("schema_changes must be follow, hold or ignore, not {}", crate::fdw::import::quote_literal(schema_changes)),
            hint: Some("follow adds a column for each field added in Zoho; hold stops applying changes until you act; ignore leaves the table as it is.".into()),
        });
    }
    watch(module, target, &events, notify_url, server.as_deref(), filter, schema_changes).unwrap_or_else(|e| raise(e))
}

fn watch(module: &str, target: pg_sys::Oid, events: &[String], notify_url: Option<&str>, server: Option<&str>, filter: Option<&str>, schema_changes: &str) -> Result<String, ZohoFdwError> {
    if events.is_empty() || events.iter().any(|e| !EVENTS.contains(&e.as_str())) {
        return Err(ZohoFdwError::BadArgument { what: format!("events must be among create, edit, delete and all, not {events:?}"), hint: None });
    }
    let notify_url = notify_url.map(str::to_string).or_else(gucs::webhook_url).ok_or_else(|| ZohoFdwError::BadArgument {
        what: "no notify_url: Zoho needs a URL to post notifications to".into(),
        hint: Some("Set zoho_fdw.webhook_url to the public URL of the worker's listener (zoho_fdw.webhook_listen), or pass notify_url.".into()),
    })?;
    // Before Zoho hears of it: a table the caller may keep current.
    crate::privileges::check_privileges(target, crate::privileges::current_user(), crate::privileges::Access::Mirror)?;
    let ctx = server::resolve(server)?;
    let client = ctx.shared_client()?;
    let fields = ctx.module_fields(&client, module, "zoho_watch")?;
    let plan = crate::export::plan_target(target, module, &fields, None)?;
    let filter = filter.map(|f| crate::filter::parse(module, f, &fields)).transpose()?.map(|f| f.text);
    Spi::connect_mut(|spi| -> Result<String, ZohoFdwError> {
        let err = |e: pgrx::spi::SpiError| ZohoFdwError::Internal(format!("zoho_watch: {e}"));
        crate::export::require_unique_id(spi, &plan.table, &plan.columns[0].0)?;
        // On Zoho's clock (the client has its replies' Date), less an
        // overlap: a change Zoho made just before is caught up, never lost.
        let since = client.transport().zoho_time(chrono::Utc::now(), chrono::Duration::seconds(5)).to_rfc3339();
        let mut rng = rand::thread_rng();
        let channel_id: i64 = rng.gen_range(1_000_000_000_000..9_000_000_000_000);
        let token: String = (0..40).map(|_| rng.sample(rand::distributions::Alphanumeric) as char).collect();
        let expiry = chrono::Utc::now().fixed_offset() + chrono::Duration::seconds(gucs::CHANNEL_EXPIRY.get().into());
        let channel = Channel {
            channel_id,
            events: events.iter().map(|e| format!("{module}.{e}")).collect(),
            notify_url: notify_url.clone(),
            token: Some(token.clone()),
            channel_expiry: Some(expiry),
            return_affected_field_values: false,
            notify_on_related_action: false,
        };
        let result = block_on(client.watch_enable(std::slice::from_ref(&channel))).map_err(|e| ZohoFdwError::api(&ctx.name, e))?;
        let subscribed = match result.into_iter().next().map(|r| r.outcome) {
            Some(Ok(subs)) => {
                // Live in Zoho from now on, whatever becomes of this transaction.
                // SAFETY: a plain read of the session's current user.
                crate::worker::strays::disable_on_abort(ctx.oid, unsafe { pg_sys::GetUserId() }, channel_id);
                subs
            }
            Some(Err(e)) => return Err(ZohoFdwError::BadArgument { what: format!("Zoho refused the channel for {module}: {e}"), hint: None }),
            None => return Err(ZohoFdwError::Internal("Zoho answered the subscription with no result".into())),
        };
        // Zoho may grant less than asked (1 hour when it disagrees).
        let granted = subscribed.iter().filter_map(|s| s.channel_expiry.as_deref()).filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok()).min().unwrap_or(expiry);
        spi.update(
            // As the caller: row-level security checks that the target is a
            // table and that the caller may keep it current.
            "INSERT INTO zoho.watches (channel_id, module, target, server, owner, events, notify_url, token, expires_at, synced_until, filter, schema_changes)
             VALUES ($1, $2, $3::oid::regclass, $4::name, current_user::regrole, $5, $6, $7, $8::text::timestamptz, $9::text::timestamptz, $10, $11)",
            None,
            &[
                channel_id.into(),
                module.into(),
                target.into(),
                ctx.name.as_str().into(),
                events.to_vec().into(),
                notify_url.as_str().into(),
                token.as_str().into(),
                granted.to_rfc3339().as_str().into(),
                since.as_str().into(),
                filter.as_deref().into(),
                schema_changes.into(),
            ],
        )
        .map_err(err)?;
        Ok(channel_id.to_string())
    })
}

#[pg_extern(
    volatile,
    sql = r#"
CREATE FUNCTION zoho_unwatch(channel_id text) RETURNS boolean VOLATILE STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'zoho_unwatch_wrapper';
COMMENT ON FUNCTION zoho_unwatch(text) IS 'Disable a notification channel made by zoho_watch; false when there is no such channel';
"#,
    requires = ["watch_catalog"]
)]
fn zoho_unwatch(channel_id: &str) -> bool {
    unwatch(channel_id).unwrap_or_else(|e| raise(e))
}

fn unwatch(channel_id: &str) -> Result<bool, ZohoFdwError> {
    let id: i64 = channel_id.trim().parse().map_err(|_| ZohoFdwError::BadArgument { what: format!("\"{channel_id}\" is not a channel id"), hint: None })?;
    let removed = Spi::connect_mut(|spi| {
        // Row-level security: only channels of roles the caller is a member of.
        spi.update("DELETE FROM zoho.watches WHERE channel_id = $1 RETURNING server::text", None, &[id.into()])
            .and_then(|t| if t.is_empty() { Ok(None) } else { t.first().get_one::<String>() })
            .map_err(|e| ZohoFdwError::Internal(format!("zoho_unwatch: {e}")))
    })?;
    let Some(server) = removed else { return Ok(false) };
    let ctx = server::resolve(Some(&server))?;
    let client = ctx.shared_client()?;
    block_on(client.watch_disable(&[id])).map_err(|e| ZohoFdwError::api(&ctx.name, e))?;
    Ok(true)
}
