//! Reading what changed in a module since a time, for channels (after a
//! gap) and scheduled pulls: records modified since (the records list with
//! If-Modified-Since, a second of overlap) and records deleted since,
//! applied newer-wins.

use chrono::{DateTime, Utc};
use zoho_api::records::ListOptions;
use zoho_api::ZohoClient;

use super::apply;
use crate::error::ZohoFdwError;
use crate::export::{plan_target, Target};
use crate::runtime::block_on;
use crate::server;

/// Pages a catch-up reads before a Bulk Read job takes over
/// (`zoho_fdw.catchup_list_pages`).
pub fn max_list_pages() -> usize {
    crate::gucs::CATCHUP_LIST_PAGES.get().max(1) as usize
}

pub struct Changes {
    pub changed: u64,
    pub removed: u64,
    /// More changed records remain than `max_pages` allowed reading.
    pub incomplete: bool,
}

/// The table `target` as a module's records land in it.
pub fn target(client: &ZohoClient, server: &str, module: &str, target: pgrx::pg_sys::Oid, mapping: Option<&serde_json::Value>, context: &str) -> Result<Target, ZohoFdwError> {
    let fields = server::resolve(Some(server))?.module_fields(client, module, context)?;
    plan_target(target, module, &fields, mapping)
}

/// Applies the changes since `since` to `target`. With `max_pages`, stops
/// after that many pages of modified records (deletes are then not read:
/// the caller finishes the job another way).
pub fn read_changes(client: &ZohoClient, server: &str, module: &str, target: &Target, since: DateTime<Utc>, max_pages: Option<usize>) -> Result<Changes, ZohoFdwError> {
    // A second of overlap: Modified_Time has whole seconds.
    let since = (since - chrono::Duration::seconds(1)).fixed_offset();
    let fields: Vec<String> = target.columns.iter().map(|(_, f)| f.api_name.clone()).collect();
    // The records list with If-Modified-Since, not COQL: COQL never
    // returns converted leads, and they change too.
    let convertible = fields.iter().any(|f| f == "Converted__s") || module.eq_ignore_ascii_case("Leads");
    let opts = ListOptions {
        fields,
        modified_since: Some(since),
        converted: convertible.then(|| "both".to_string()),
        ..Default::default()
    };
    let api = |e| ZohoFdwError::api(server, e);
    let mut pages = client.list(module, opts).map_err(api)?;
    let (mut changed, mut read) = (0, 0);
    while let Some(page) = block_on(pages.next_page()).map_err(api)? {
        changed += apply::upsert(target, &page)?;
        read += 1;
        if max_pages.is_some_and(|m| read >= m) && pages.has_more() {
            return Ok(Changes { changed, removed: 0, incomplete: true });
        }
    }
    let removed = apply_deletes(client, server, module, target, since)?;
    Ok(Changes { changed, removed, incomplete: false })
}

/// Deletes from `target` the records deleted in Zoho since `since`.
pub fn apply_deletes(client: &ZohoClient, server: &str, module: &str, target: &Target, since: DateTime<chrono::FixedOffset>) -> Result<u64, ZohoFdwError> {
    let deleted = block_on(client.deleted(module, Some(since))).map_err(|e| ZohoFdwError::api(server, e))?;
    let ids: Vec<i64> = deleted.iter().filter_map(|d| d.id.parse().ok()).collect();
    apply::delete(target, &ids)
}
