//! Metadata (zoho-api.md §10–§11): modules, fields, org, users.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::extract::{Path, Query, State};
use serde_json::{json, Value};

use crate::errors::{no_content, ok_json, ApiError, ApiResult};
use crate::schema::{DataType, FieldDef, ModuleDef};
use crate::state::{api_user, App, USERS};

fn template(src: &'static str, cell: &'static OnceLock<Value>) -> Value {
    cell.get_or_init(|| serde_json::from_str(src).expect("template json")).clone()
}

static FIELD_T: OnceLock<Value> = OnceLock::new();
static ORG_T: OnceLock<Value> = OnceLock::new();

fn module_json(m: &ModuleDef) -> Value {
    let data = m.api_supported && m.data_access;
    json!({
        "api_name": m.api_name,
        "module_name": m.module_name,
        "singular_label": m.singular_label,
        "plural_label": m.plural_label,
        "id": m.id.to_string(),
        "api_supported": m.api_supported,
        "generated_type": m.generated_type,
        "status": "visible",
        "visible": true,
        "creatable": data,
        "editable": data,
        "deletable": data,
        "viewable": true,
        "convertable": m.api_name == "Leads",
        "show_as_tab": m.generated_type != "linking",
        "modified_time": Value::Null,
        "modified_by": Value::Null,
        "sequence_number": (m.id % 100) as i64,
        "profiles": [{"name": "Administrator", "id": "5725767000000026011"}],
        // The rest of the documented module object (spec/zoho-samples/modules/).
        "parent_module": {},
        "arguments": [],
        "has_more_profiles": false,
        "access_type": "org_based",
        "private_profile": Value::Null,
        "description": Value::Null,
        "web_link": Value::Null,
        "recycle_bin_on_delete": true,
        "presence_sub_menu": false,
        "sub_menu_available": true,
        "quick_create": data,
        "feeds_required": false,
        "actual_plural_label": m.plural_label,
        "actual_singular_label": m.singular_label,
        "visibility": 1,
        "profile_count": 1,
        "business_card_field_limit": 5,
    })
}

fn custom_field(m: &ModuleDef, f: &FieldDef) -> bool {
    m.generated_type == "custom" && !matches!(f.api_name, "id" | "Owner" | "Created_By" | "Modified_By" | "Created_Time" | "Modified_Time" | "Name")
}

pub fn field_json(app: &App, m: &ModuleDef, f: &FieldDef) -> Value {
    let mut v = template(include_str!("../templates/field.json"), &FIELD_T);
    let json_type = match f.data_type {
        DataType::Formula => f.formula_return.map(|r| r.json_type()).unwrap_or("string"),
        DataType::Bigint => "string",
        other => other.json_type(),
    };
    let length = f.length.map(|l| l as i64).unwrap_or(match f.value_type() {
        DataType::Integer => 9,
        DataType::Double | DataType::Currency | DataType::Percent => 16,
        DataType::Bigint => 19,
        DataType::Boolean => 5,
        DataType::Date => 20,
        DataType::Datetime => 120,
        _ => 120,
    });
    let writable = !f.read_only;
    let set = |v: &mut Value, k: &str, x: Value| {
        v[k] = x;
    };
    set(&mut v, "api_name", json!(f.api_name));
    set(&mut v, "field_label", json!(f.label));
    set(&mut v, "display_label", json!(f.label));
    set(&mut v, "column_name", json!(f.api_name.to_uppercase()));
    set(&mut v, "id", json!(f.id.to_string()));
    set(&mut v, "data_type", json!(f.data_type.as_str()));
    set(&mut v, "json_type", json!(json_type));
    set(&mut v, "system_mandatory", json!(f.mandatory));
    set(&mut v, "read_only", json!(f.read_only));
    set(&mut v, "field_read_only", json!(f.read_only));
    set(&mut v, "custom_field", json!(custom_field(m, f)));
    set(&mut v, "visible", json!(true));
    set(&mut v, "sortable", json!(matches!(f.api_name, "id" | "Created_Time" | "Modified_Time")));
    set(&mut v, "filterable", json!(f.data_type != DataType::Textarea));
    set(&mut v, "searchable", json!(f.data_type != DataType::Formula));
    set(&mut v, "mass_update", json!(writable));
    set(&mut v, "webhook", json!(true));
    set(&mut v, "available_in_user_layout", json!(true));
    set(&mut v, "display_field", json!(m.system_unique == Some(f.api_name)));
    set(&mut v, "created_source", json!(if custom_field(m, f) { "crm" } else { "default" }));
    set(&mut v, "type", json!("used"));
    set(&mut v, "length", json!(length));
    set(&mut v, "decimal_place", if matches!(f.value_type(), DataType::Currency | DataType::Double | DataType::Percent) { json!(2) } else { Value::Null });
    set(&mut v, "associated_module", json!({"api_name": m.api_name, "id": m.id.to_string()}));
    set(&mut v, "operation_type", json!({"web_update": writable, "api_create": writable, "web_create": writable, "api_update": writable}));
    // Zoho sends every type-specific object on every field, `{}` where it
    // does not apply (spec/zoho-samples/fields/get_fields_leads.json).
    set(&mut v, "unique", if f.unique { json!({"case_sensitive": false}) } else { json!({}) });
    set(
        &mut v,
        "currency",
        if f.value_type() == DataType::Currency { json!({"rounding_option": "normal", "precision": 2}) } else { json!({}) },
    );
    set(
        &mut v,
        "formula",
        match (f.data_type, f.formula_return) {
            (DataType::Formula, Some(r)) => json!({"return_type": r.as_str(), "assume_default": false}),
            _ => json!({}),
        },
    );
    let lookup = match (f.data_type, f.lookup_module) {
        (DataType::Lookup, Some(t)) => {
            let tid = app.module(t).map(|m| m.id.to_string());
            json!({"display_label": f.label, "api_name": f.api_name, "module": {"api_name": t, "crypt": false, "id": tid}, "id": f.id.to_string(),
                   "query_details": {}, "revalidate_filter_during_edit": false})
        }
        // Owner lookups too: their target is implied.
        _ => json!({}),
    };
    set(&mut v, "lookup", lookup);
    let picks: Vec<Value> = f
        .picklist
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"display_value": p, "actual_value": p, "reference_value": p, "id": (m.id + 200_000 + (f.id - m.id) * 32 + i as i64).to_string(), "sequence_number": i + 1, "type": "used", "colour_code": Value::Null}))
        .collect();
    set(&mut v, "pick_list_values", json!(picks));
    if f.data_type == DataType::Textarea {
        set(&mut v, "textarea", json!({"type": "large"}));
    }
    v
}

pub async fn modules(State(app): State<Arc<App>>) -> ApiResult {
    let list: Vec<Value> = app.catalog().iter().map(module_json).collect();
    Ok(ok_json(&json!({"modules": list})))
}

pub async fn module(State(app): State<Arc<App>>, Path(name): Path<String>) -> ApiResult {
    let catalog = app.catalog();
    let m = catalog.iter().find(|m| m.api_name.eq_ignore_ascii_case(&name) || m.id.to_string() == name).ok_or_else(|| ApiError::invalid_module(&name))?;
    if !m.api_supported {
        return Ok(no_content());
    }
    let mut v = module_json(m);
    v["fields"] = json!(m.fields.iter().map(|f| field_json(&app, m, f)).collect::<Vec<_>>());
    v["related_lists"] = json!([]);
    v["layouts"] = json!([]);
    Ok(ok_json(&json!({"modules": [v]})))
}

pub async fn fields(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    // fields.json's error shapes: REQUIRED_PARAM_MISSING names the
    // parameter as `param_name`, INVALID_MODULE as `api_name`.
    let Some(name) = q.get("module").filter(|s| !s.is_empty()) else {
        return Err(ApiError::bad("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", json!({"param_name": "module"})));
    };
    let catalog = app.catalog();
    let m = catalog
        .iter()
        .find(|m| m.api_name.eq_ignore_ascii_case(name))
        .ok_or_else(|| ApiError::bad("INVALID_MODULE", "The module name given seems to be invalid", json!({"api_name": "module"})))?;
    if !m.api_supported || m.fields.is_empty() || q.get("type").is_some_and(|t| t == "unused") {
        return Ok(no_content());
    }
    Ok(ok_json(&json!({"fields": m.fields.iter().map(|f| field_json(&app, m, f)).collect::<Vec<_>>()})))
}

fn time_zone_name(offset: &str) -> String {
    match offset {
        "+05:30" => "Asia/Kolkata".into(),
        "+00:00" | "Z" => "Etc/UTC".into(),
        "+01:00" => "Europe/Berlin".into(),
        "-05:00" => "America/New_York".into(),
        "-08:00" => "America/Los_Angeles".into(),
        "+09:00" => "Asia/Tokyo".into(),
        other => format!("GMT{other}"),
    }
}

/// A `±hh:mm` offset in milliseconds, as the users API gives it.
fn offset_millis(offset: &str) -> i64 {
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let digits = offset.trim_start_matches(['+', '-']);
    let (h, m) = digits.split_once(':').unwrap_or((digits, "0"));
    sign * (h.parse::<i64>().unwrap_or(0) * 60 + m.parse::<i64>().unwrap_or(0)) * 60_000
}

pub async fn org(State(app): State<Arc<App>>) -> ApiResult {
    let mut v = template(include_str!("../templates/org.json"), &ORG_T);
    let patch = json!({
        "id": "5725767000000002001",
        "zgid": app.cfg.zgid,
        "ezgid": format!("e{}", app.cfg.zgid),
        "primary_zuid": "60031230001",
        "company_name": "Zylker Sim Corp",
        "alias": "zylker-sim",
        "domain_name": "org60031234567",
        "primary_email": api_user().email,
        "phone": "+1-555-010-0000",
        "country": "United States",
        "country_code": "US",
        "currency": "US Dollar - USD",
        "currency_symbol": "$",
        "currency_locale": "en_US",
        "iso_code": "USD",
        "mc_status": false,
        "time_zone": time_zone_name(&app.cfg.time_zone_offset),
        "type": "Production",
        "max_per_page": 200,
        "employee_count": "50",
        "website": "https://www.zylker-sim.example",
        "zia_zgid": 0,
        "license_details": {"paid_expiry": "2030-01-01T00:00:00+00:00", "users_license_purchased": USERS.len(), "trial_type": Value::Null,
                            "trial_expiry": Value::Null, "paid": true, "paid_type": "enterprise", "trial_action": "",
                            "portal_users_license_purchased": 0},
        "created_time": "2024-06-01T10:00:00+05:30",
    });
    for (k, x) in patch.as_object().expect("object") {
        v[k] = x.clone();
    }
    Ok(ok_json(&json!({"org": [v]})))
}

fn user_json(app: &App, u: &crate::state::User) -> Value {
    json!({
        "id": u.id, "first_name": u.first_name, "last_name": u.last_name, "full_name": u.full_name(), "email": u.email,
        "time_zone": time_zone_name(&app.cfg.time_zone_offset), "status": "active", "confirm": true,
        "role": {"name": u.role, "id": format!("57257670000000{}", 26000 + u.role.len())},
        "profile": {"name": u.profile, "id": format!("57257670000000{}", 27000 + u.profile.len())},
        "locale": "en_US", "language": "en_US", "country_locale": "en_US", "date_format": "MM/dd/yyyy", "time_format": "hh:mm a",
        // The rest of the documented user object (spec/zoho-samples/org_users/), with its
        // mixed naming, its numbers as strings and its milliseconds offset.
        "zuid": format!("8082{}", &u.id[u.id.len() - 5..]), "created_time": "2024-06-01T10:00:00+05:30",
        "created_by": {"name": api_user().full_name(), "id": api_user().id}, "Modified_Time": "2024-06-01T10:00:00+05:30",
        "Isonline": false, "microsoft": false, "sandboxDeveloper": false, "decimal_separator": "Period", "type__s": "Regular User",
        "status_reason__s": Value::Null, "default_tab_group": "0", "offset": offset_millis(&app.cfg.time_zone_offset),
        "country": Value::Null, "state": Value::Null, "city": Value::Null, "street": Value::Null, "zip": Value::Null, "fax": Value::Null,
        "phone": Value::Null, "mobile": Value::Null, "website": Value::Null, "alias": Value::Null, "dob": Value::Null,
        "$shift_effective_from": Value::Null,
    })
}

pub async fn users(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let kind = q.get("type").map(String::as_str).unwrap_or("AllUsers");
    let list: Vec<Value> = match kind {
        "CurrentUser" => vec![user_json(&app, api_user())],
        "AllUsers" | "ActiveUsers" | "ActiveConfirmedUsers" | "ConfirmedUsers" | "AdminUsers" | "ActiveConfirmedAdmins" => USERS.iter().map(|u| user_json(&app, u)).collect(),
        "DeactiveUsers" | "NotConfirmedUsers" | "DeletedUsers" => vec![],
        _ => return Err(ApiError::invalid_data("invalid data", json!({"param": "type"}))),
    };
    if list.is_empty() {
        return Ok(no_content());
    }
    let n = list.len();
    Ok(ok_json(&json!({"users": list, "info": {"per_page": 200, "count": n, "page": 1, "more_records": false}})))
}
