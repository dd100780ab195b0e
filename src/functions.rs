//! SQL functions. Each resolves its server, runs zoho-api on the backend's
//! runtime, and turns errors into `ereport`s.

use pgrx::prelude::*;

use crate::error::{raise, ZohoFdwError};
use crate::runtime::block_on;
use crate::server;

/// Refreshes a token and reads the org: proof that credentials, hosts and
/// network all work.
#[pg_extern]
fn zoho_ping(
    server: default!(Option<&str>, "NULL"),
) -> TableIterator<'static, (name!(org_id, String), name!(org_name, Option<String>), name!(api_domain, String), name!(user_email, Option<String>))> {
    let ctx = server::resolve(server).unwrap_or_else(|e| raise(e));
    let client = ctx.client().unwrap_or_else(|e| raise(e));
    let result = block_on(async {
        let org = client.org().await?.clone();
        let user = client.current_user().await?;
        Ok::<_, zoho_api::Error>((org, user))
    });
    let (org, user) = result.unwrap_or_else(|e| raise(ZohoFdwError::api(&ctx.name, e)));
    TableIterator::once((org.id, org.company_name, client.config().endpoints.api_domain.clone(), user.email))
}
