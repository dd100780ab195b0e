//! Reading what changed in a module since a time, for channels (after a
//! gap) and scheduled pulls: records modified since (by COQL, or the records
//! list with If-Modified-Since where COQL sees less; a second of overlap)
//! and records deleted since, read with no transaction open and then applied
//! newer-wins in a short one.

use chrono::{DateTime, Utc};
use zoho_api::coql::{self, CmpOp, Cond, Keyset, Literal, Query};
use zoho_api::filter::Filter;
use zoho_api::metadata::FieldMeta;
use zoho_api::records::{ListOptions, CONVERTED, MAX_PER_PAGE};
use zoho_api::{Record, ZohoClient};

use super::apply;
use crate::error::ZohoFdwError;
use crate::export::{plan_target, Target};
use crate::privileges::{as_owner, Access, Limits};
use crate::runtime::block_on;

/// Pages a catch-up reads before a Bulk Read job takes over
/// (`zoho_fdw.catchup_list_pages`).
pub fn max_list_pages() -> usize {
    crate::gucs::CATCHUP_LIST_PAGES.get().max(1) as usize
}

/// Formula fields COQL computes in one SELECT (zoho-api.md §6).
const COQL_MAX_FORMULAS: usize = 5;

/// Whether a catch-up reads by COQL, keyset on (Modified_Time, id): 3
/// credits per 2,000 records against 10 through the records list, and no
/// lag. Not where COQL sees less than the list: a convertible module (COQL
/// hides converted records, and a lead being converted is a change), or
/// fields it cannot select.
fn by_coql(module: &str, module_fields: &[FieldMeta], target: &Target) -> bool {
    let convertible = convertible(module, module_fields);
    let unselectable = target.columns.iter().any(|(_, f)| matches!(f.data_type.as_str(), "imageupload" | "multiselectlookup"));
    let formulas = target.columns.iter().filter(|(_, f)| f.is_formula()).count();
    !convertible && !unselectable && formulas <= COQL_MAX_FORMULAS && target.columns.len() <= coql::MAX_SELECT_FIELDS
}

/// Leads, or any module whose records carry the converted flag.
fn convertible(module: &str, module_fields: &[FieldMeta]) -> bool {
    module.eq_ignore_ascii_case("Leads") || module_fields.iter().any(|f| f.api_name == CONVERTED)
}

pub struct Changes {
    pub changed: u64,
    pub removed: u64,
    /// Rows of records that no longer match the flow's filter.
    pub left: u64,
    /// More changed records remain than `max_pages` allowed reading.
    pub incomplete: bool,
}

/// The table `target` as a module's records land in it, for `owner`: the
/// module's fields read with no transaction open, the table's columns in a
/// short one, as the owner.
pub fn target_as(
    owner: pgrx::pg_sys::Oid,
    client: &ZohoClient,
    server: &str,
    module: &str,
    target: pgrx::pg_sys::Oid,
    mapping: Option<&serde_json::Value>,
    context: &str,
) -> Result<Target, String> {
    let fields = crate::server::fields_of(client, server, module, context).map_err(|e| e.to_string())?;
    super::in_transaction(|| as_owner(owner, Some((target, Access::Mirror)), Limits::glance(), || plan_target(target, module, &fields, mapping)))
}

/// What changed in Zoho since a time, read with no transaction open, to be
/// applied in a short one.
pub struct Fetched {
    records: Vec<Record>,
    deleted: Vec<i64>,
    /// Changed records that no longer match the flow's filter.
    left: Vec<i64>,
    /// Zoho's clock less ours, as its replies said.
    clock_offset: chrono::Duration,
    /// More changed records remain than `max_pages` allowed reading; the
    /// deletes were then not read.
    pub incomplete: bool,
}

/// Reads the changes since `since` of the fields `target` holds. With
/// `max_pages`, stops after that many pages of modified records (deletes
/// are then not read: the caller finishes the job another way). With a
/// filter, Zoho says which changed records still match; the others leave.
pub fn fetch_changes(
    client: &ZohoClient,
    server: &str,
    module: &str,
    target: &Target,
    since: DateTime<Utc>,
    max_pages: Option<usize>,
    filter: Option<&Filter>,
) -> Result<Fetched, ZohoFdwError> {
    // A second of overlap: Modified_Time has whole seconds.
    let since = (since - chrono::Duration::seconds(1)).fixed_offset();
    let fields: Vec<String> = target.columns.iter().map(|(_, f)| f.api_name.clone()).collect();
    let api = |e| ZohoFdwError::api(server, e);
    let module_fields = crate::server::fields_of(client, server, module, "catch-up")?;
    let (mut records, mut incomplete) = (Vec::new(), false);
    // As many records as that many pages of the list hold.
    let max_records = max_pages.map(|m| m * MAX_PER_PAGE);
    if by_coql(module, &module_fields, target) {
        let modified = Cond::cmp("Modified_Time", CmpOp::Ge, Literal::DateTime(since));
        // A small first page (1 credit), as most catch-ups find little.
        let mut pages = client.coql(Query::new(module, fields).filter(modified), Some(Keyset::ModifiedTime), coql::MAX_LIMIT).map_err(api)?.first_page(MAX_PER_PAGE);
        while let Some(page) = block_on(pages.next_page()).map_err(api)? {
            records.extend(page);
            if max_records.is_some_and(|m| records.len() >= m) && !pages.is_done() {
                incomplete = true;
                break;
            }
        }
    } else {
        let opts = ListOptions {
            fields,
            modified_since: Some(since),
            converted: convertible(module, &module_fields).then(|| "both".to_string()),
            ..Default::default()
        };
        let mut pages = client.list(module, opts).map_err(api)?;
        while let Some(page) = block_on(pages.next_page()).map_err(api)? {
            records.extend(page);
            if max_records.is_some_and(|m| records.len() >= m) && pages.has_more() {
                incomplete = true;
                break;
            }
        }
    }
    let mut left = Vec::new();
    if let Some(filter) = filter {
        (records, left) = split_by_filter(client, module, filter, records).map_err(api)?;
    }
    let deleted = match incomplete {
        true => Vec::new(),
        false => block_on(client.deleted(module, Some(since))).map_err(api)?.iter().filter_map(|d| d.id.parse().ok()).collect(),
    };
    Ok(Fetched { records, deleted, left, clock_offset: apply::clock_offset(client), incomplete })
}

/// `records` that still match `filter`, and the ids of those that do not:
/// Zoho is asked, 100 ids a call.
pub fn split_by_filter(client: &ZohoClient, module: &str, filter: &Filter, mut records: Vec<Record>) -> zoho_api::Result<(Vec<Record>, Vec<i64>)> {
    let id = |r: &Record| zoho_api::records::record_id(r).and_then(|s| s.parse::<i64>().ok());
    let ids: Vec<i64> = records.iter().filter_map(id).collect();
    let matching = block_on(client.matching_of(module, filter, &ids))?;
    let left = ids.into_iter().filter(|i| !matching.contains(i)).collect();
    records.retain(|r| id(r).is_some_and(|i| matching.contains(&i)));
    Ok((records, left))
}

/// A flow's stored filter parsed against the module's fields (cached).
pub fn filter_as(client: &ZohoClient, server: &str, module: &str, filter: Option<&str>, context: &str) -> Result<Option<Filter>, String> {
    let Some(text) = filter else { return Ok(None) };
    let fields = crate::server::fields_of(client, server, module, context).map_err(|e| e.to_string())?;
    crate::filter::parse(module, text, &fields).map(Some).map_err(|e| e.to_string())
}

impl Fetched {
    /// Writes the changes newer-wins and deletes the deleted rows.
    pub fn apply(&self, target: &Target) -> Result<Changes, ZohoFdwError> {
        let mut changed = 0;
        for page in self.records.chunks(200) {
            changed += apply::upsert(target, page, self.clock_offset)?;
        }
        let removed = apply::delete(target, &self.deleted)?;
        let left = crate::filter::leave(target, &self.left)?;
        Ok(Changes { changed, removed, left, incomplete: self.incomplete })
    }
}
