//! The router: Zoho's paths, the admin API, and the middleware layer.

pub mod bulk_read;
pub mod bulk_write;
pub mod coql;
pub mod meta;
pub mod oauth;
pub mod records;
pub mod watch;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, patch, post};
use axum::Router;
use serde_json::json;

use crate::admin::routes as admin;
use crate::errors::ApiError;
use crate::middleware::{layer, MAX_BODY};
use crate::state::App;

async fn not_found() -> ApiError {
    ApiError::new(404, "INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one", json!({}))
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/oauth/v2/token", post(oauth::token))
        .route("/oauth/v2/token/revoke", post(oauth::revoke))
        .route("/crm/v8/coql", post(coql::query))
        .route("/crm/v8/org", get(meta::org))
        .route("/crm/v8/users", get(meta::users))
        .route("/crm/v8/settings/modules", get(meta::modules))
        .route("/crm/v8/settings/modules/:api_name", get(meta::module))
        .route("/crm/v8/settings/fields", get(meta::fields))
        .route("/crm/v8/actions/watch", get(watch::get).post(watch::enable).put(watch::replace).patch(watch::patch).delete(watch::disable))
        .route("/crm/v8/upload", post(bulk_write::upload))
        .route("/crm/bulk/v8/read", post(bulk_read::create))
        .route("/crm/bulk/v8/read/:job_id", get(bulk_read::status))
        .route("/crm/bulk/v8/read/:job_id/result", get(bulk_read::download))
        .route("/crm/bulk/v8/write", post(bulk_write::create))
        .route("/crm/bulk/v8/write/:job_id", get(bulk_write::status))
        .route("/v8/crm/:zgid/bulk-write/:job_id/:file", get(bulk_write::download))
        .route("/crm/v8/:module", get(records::list).post(records::insert).put(records::update).delete(records::delete))
        .route("/crm/v8/:module/upsert", post(records::upsert))
        .route("/crm/v8/:module/deleted", get(records::deleted))
        .route("/crm/v8/:module/actions/count", get(records::count))
        .route("/crm/v8/:module/:id", get(records::get_one).put(records::update_one).delete(records::delete_one))
        .route("/__sim/calls", get(admin::get_calls).delete(admin::delete_calls))
        .route("/__sim/credits", get(admin::get_credits))
        .route("/__sim/records/:module", get(admin::get_records))
        .route("/__sim/faults", post(admin::post_fault).delete(admin::delete_faults))
        .route("/__sim/ui/:module", post(admin::ui_post))
        .route("/__sim/ui/:module/:id", patch(admin::ui_patch).delete(admin::ui_del))
        .route("/__sim/clock/advance", post(admin::clock_advance))
        .route("/__sim/tokens/expire", post(admin::tokens_expire))
        .route("/__sim/channels", get(admin::get_channels))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(app.clone(), layer))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}
