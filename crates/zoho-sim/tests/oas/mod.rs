//! A validator for Zoho's official OpenAPI 3.0 files (`spec/zoho-oas`),
//! used by `tests/fidelity.rs` to check the simulator's answers and the
//! zoho-api client's requests, call by call, from the simulator's call log.
//!
//! How the OAS files are turned into JSON Schema (and why):
//!
//! * **Refs.** Cross-file `$ref`s are absolute URLs
//!   (`https://raw.githubusercontent.com/Zohocorp-Pvt-Ltd/crm-oas/refs/heads/main/v8.0/<file>.json#/…`).
//!   Every file is registered with the `jsonschema` crate under exactly that
//!   URL, so nothing is ever fetched (the crate is built without its HTTP
//!   resolver; an unknown URL is a build error of the validator, not a
//!   download). Local refs (`#/components/…`) are rewritten to the same
//!   absolute form, so any sub-schema can be compiled on its own as a root.
//! * **Draft.** OAS 3.0 schemas are "an extended subset" of JSON Schema
//!   Wright-00 (≈ draft 4): validators are compiled as Draft 4, where
//!   siblings of `$ref` are ignored, as OAS 3.0 also says. Formats are
//!   checked (`date-time`, `date`); OAS-only formats (`int32`, `int64`,
//!   `double`) are unknown to JSON Schema and ignored.
//! * **`nullable: true`** is an OAS 3.0 keyword that JSON Schema does not
//!   know (ignoring it would reject every `null`). In these files it always
//!   sits next to `type` (checked by `nullable_always_has_type`), so it
//!   becomes `type: [T, "null"]`, and `null` joins the `enum` when there is
//!   one.
//! * **`oneOf` is treated as `anyOf`.** Zoho's alternatives overlap: e.g.
//!   `Response_Wrapper` and `API_Exception` are both loose objects, and many
//!   `details` alternatives are a bare `{"type":"object"}`, so a valid body
//!   often matches two alternatives and strict `oneOf` would reject it. At
//!   the top of a body schema the alternatives are tried one by one (so the
//!   report can name the closest one and its errors, and the allowlist can
//!   apply per alternative). For a 2xx answer the error alternatives
//!   (`*Exception*`, `*Error*`) are left out when a success alternative
//!   exists, so a loose error schema cannot make any success body valid.
//! * **Statuses.** Many operations list only `200` although Zoho answers
//!   201/202/204/207/304. A status missing from the spec is validated against
//!   the operation's success schema (lowest declared 2xx) when it is below
//!   400; an undeclared error status (401, 404, 415, 429, 500…) against
//!   `common.json` `API_Exception`, Zoho's shared error shape. Either way the
//!   report marks it "status not in spec". 204 and 304 must have an empty
//!   body.
//! * **Errata.** A few schema nodes contradict the documented API in every
//!   use (regexes and enums generated from one sample value, wrong types,
//!   "everything required"). They are corrected at load time by [`ERRATA`],
//!   each with its reason; a location-specific disagreement is instead an
//!   allowlist entry in `tests/fidelity.rs`. Both are printed in the report.
//! * **Parameters.** Path and query parameters must be declared; required
//!   ones must be present; values are coerced from the query string to the
//!   declared type (integer, number, boolean, comma-separated array) and
//!   validated (so enums are checked). Header parameters are not in the call
//!   log and are not checked.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::{Draft, Validator};
use serde_json::{json, Value};
use zoho_sim::CallRecord;

/// The URL prefix the OAS files use for each other.
pub const BASE: &str = "https://raw.githubusercontent.com/Zohocorp-Pvt-Ltd/crm-oas/refs/heads/main/v8.0/";

pub fn spec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../spec/zoho-oas")
}

/// One operation of the spec.
#[derive(Debug, Clone)]
pub struct Op {
    pub file: String,
    pub method: String,
    pub template: String,
    pub op: Value,
}

impl Op {
    /// `GET /crm/v8/{module_api_name} [record.json]`
    pub fn label(&self) -> String {
        format!("{} {} [{}]", self.method, self.template, self.file)
    }
    fn segments(&self) -> Vec<&str> {
        self.template.trim_matches('/').split('/').collect()
    }
}

/// A deviation from the spec found in one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub dir: Dir,
    /// JSON pointer into the body, or `query:<name>` / `path:<name>`.
    pub at: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dir {
    Request,
    Response,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = match self.dir {
            Dir::Request => "request",
            Dir::Response => "response",
        };
        write!(f, "{d} {}: {}", if self.at.is_empty() { "/" } else { &self.at }, self.message)
    }
}

/// A known, justified disagreement between the spec and the real API.
/// It matches one operation, one direction, a body location (`*` = one
/// path segment, `**` = any number) and a substring of the error message.
#[derive(Debug)]
pub struct Allow {
    pub id: &'static str,
    pub method: &'static str,
    pub template: &'static str,
    pub dir: Dir,
    pub at: &'static str,
    pub message: &'static str,
    /// When set (`<file>#<pointer>`), the value at the issue's location must
    /// itself be valid against this schema for the entry to apply.
    pub valid_as: Option<&'static str>,
    pub why: &'static str,
}

impl Allow {
    fn matches(&self, spec: &Spec, op: &Op, issue: &Issue, body: Option<&Value>) -> bool {
        if !(self.method == op.method && self.template == op.template && self.dir == issue.dir && glob(self.at, &issue.at) && issue.message.contains(self.message)) {
            return false;
        }
        match self.valid_as {
            None => true,
            Some(r) => body.and_then(|b| b.pointer(&issue.at)).is_some_and(|v| spec.errors(&json!({"$ref": format!("{BASE}{r}")}), v).is_empty()),
        }
    }
}

fn glob(pattern: &str, path: &str) -> bool {
    fn go(p: &[&str], s: &[&str]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(&"**"), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some(&"*"), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let p: Vec<&str> = pattern.split('/').filter(|x| !x.is_empty()).collect();
    let s: Vec<&str> = path.split('/').filter(|x| !x.is_empty()).collect();
    go(&p, &s)
}

/// A correction applied to the spec at load time, for a schema node that
/// contradicts Zoho's documented behaviour (shared/zoho-api.md) in every
/// use. Each is printed in the report. Pointers are into the file as
/// published.
#[derive(Debug)]
pub struct Erratum {
    pub id: &'static str,
    pub file: &'static str,
    pub pointers: &'static [&'static str],
    pub fix: Fix,
    pub why: &'static str,
}

#[derive(Debug)]
pub enum Fix {
    /// Drop a keyword (e.g. a `pattern` derived from one sample value).
    Remove(&'static str),
    /// Replace a keyword's value (JSON text).
    Set(&'static str, &'static str),
    /// Take names out of `required`.
    Unrequire(&'static [&'static str]),
    /// Keep only these names in `required`.
    RequireOnly(&'static [&'static str]),
}

pub static ERRATA: &[Erratum] = &[
    Erratum {
        id: "bulk-write-inprogress-spelling",
        file: "bulk_write.json",
        pointers: &["/components/schemas/Resource/properties/status", "/components/schemas/Resource/properties/file/properties/status"],
        fix: Fix::Set("enum", "[\"COMPLETED\", \"ADDED\", \"FAILED\", \"IN PROGRESS\", \"INPROGRESS\", \"SKIPPED\"]"),
        why: "Zoho's documented bulk-write status bodies spell it INPROGRESS, without the space bulk read uses (spec/zoho-samples/bulk_write/)",
    },
    Erratum {
        id: "bulk-write-file-id-string",
        file: "bulk_write.json",
        pointers: &["/components/schemas/Success_Response/properties/details/properties/file_id"],
        fix: Fix::Set("type", "\"string\""),
        why: "the documented upload answer sends file_id as a string, like every other id (spec/zoho-samples/bulk_write/upload_response.json)",
    },
    Erratum {
        id: "field-sub-objects-nullable",
        file: "fields.json",
        pointers: &[
            "/components/schemas/tooltip",
            "/components/schemas/crypt",
            "/components/schemas/external",
            "/components/schemas/history_tracking",
            "/components/schemas/association_details",
            "/components/schemas/hipaa_compliance",
        ],
        fix: Fix::Set("nullable", "true"),
        why: "Zoho's documented Get Fields body (spec/zoho-samples/fields/get_fields_leads.json) sends null for these on every field (crypt, external, history_tracking, association_details) or on most (tooltip, hipaa_compliance)",
    },
    Erratum {
        id: "field-textarea-only-on-textareas",
        file: "fields.json",
        pointers: &["/components/schemas/fields"],
        fix: Fix::Unrequire(&["textarea"]),
        why: "the documented Get Fields body has `textarea` on its 5 textarea fields only",
    },
    Erratum {
        id: "module-field-textarea-only-on-textareas",
        file: "modules.json",
        pointers: &["/components/schemas/fields"],
        fix: Fix::Unrequire(&["textarea"]),
        why: "as in fields.json: `textarea` comes on textarea fields only",
    },
    Erratum {
        id: "sample-derived-patterns",
        file: "users.json",
        pointers: &["/components/schemas/users/properties/email", "/components/schemas/users/properties/website", "/components/schemas/users/properties/first_name", "/components/schemas/users/properties/last_name"],
        fix: Fix::Remove("pattern"),
        why: "the generator turned one sample value into a regex (`[a-z0-9]{9}[@][a-z0-9]{5}[.]com` for email): no real address matches",
    },
    Erratum {
        id: "sample-derived-notify-url-pattern",
        file: "notifications.json",
        pointers: &["/components/schemas/Notification/properties/notify_url"],
        fix: Fix::Remove("pattern"),
        why: "`www[.][a-z]{5}zoho[.]com` is a sample URL; notify_url is any URL the client owns (zoho-api.md §9.1)",
    },
    Erratum {
        id: "sample-derived-date-format-enum",
        file: "users.json",
        pointers: &["/components/schemas/users/properties/date_format"],
        fix: Fix::Remove("enum"),
        why: "the enum holds one sample (`MMM d, yyyy`); users have any of Zoho's date formats (MM/dd/yyyy, dd/MM/yyyy, …)",
    },
    Erratum {
        id: "user-time-zone-is-a-string",
        file: "users.json",
        pointers: &["/components/schemas/users/properties/time_zone"],
        fix: Fix::Set("type", "\"string\""),
        why: "typed object; Zoho answers an IANA name such as \"Asia/Kolkata\" (zoho-api.md §11)",
    },
    Erratum {
        id: "watch-channel-id-number",
        file: "notifications.json",
        pointers: &["/components/schemas/Notification/properties/channel_id", "/components/schemas/event/properties/channel_id", "/components/schemas/Success_Response/properties/details/properties/channel_id"],
        fix: Fix::Set("type", "[\"integer\", \"string\"]"),
        why: "typed object (request) or string (answers); channel_id is a long integer chosen by the client and echoed as given (zoho-api.md §9.1)",
    },
    Erratum {
        id: "watch-event-notification-condition-optional",
        file: "notifications.json",
        pointers: &["/components/schemas/event"],
        fix: Fix::Unrequire(&["notification_condition"]),
        why: "the documented enable/update answer (zoho-api.md §9.1) has no notification_condition in details.events[] for channels without one",
    },
    Erratum {
        id: "upsert-duplicate-field-nullable",
        file: "record.json",
        pointers: &["/components/schemas/Success_Response/properties/duplicate_field"],
        fix: Fix::Set("nullable", "true"),
        why: "an upsert that inserts answers \"duplicate_field\": null (zoho-api.md §4.5: the field that matched, or null)",
    },
    Erratum {
        id: "bulk-read-query-optional-keys",
        file: "bulk_read.json",
        pointers: &["/components/schemas/Query"],
        fix: Fix::RequireOnly(&[]),
        why: "requires module, cvid, fields, page, criteria, file_type; the docs make all optional (fields: all when left out; a next page sends only page_token) (zoho-api.md §7.1)",
    },
    Erratum {
        id: "modules-required-keys",
        file: "modules.json",
        pointers: &["/components/schemas/modules"],
        fix: Fix::RequireOnly(&["api_name", "api_supported", "generated_type", "id", "module_name", "plural_label", "singular_label"]),
        why: "all 60 keys of a full single-module sample are marked required (even `common.search_supported`, `$field_states`, `layouts`); the list answer carries a subset (zoho-api.md §10.1). The simulator emits the keys zoho-api reads",
    },
];

fn apply_errata(file: &str, doc: &mut Value) -> Result<(), String> {
    for e in ERRATA.iter().filter(|e| e.file == file) {
        for p in e.pointers {
            let node = doc.pointer_mut(p).and_then(Value::as_object_mut).ok_or_else(|| format!("erratum {}: no object at {file}#{p}", e.id))?;
            match &e.fix {
                Fix::Remove(k) => {
                    node.remove(*k).ok_or_else(|| format!("erratum {}: {file}#{p} has no {k} (spec changed?)", e.id))?;
                }
                Fix::Set(k, v) => {
                    node.insert(k.to_string(), serde_json::from_str(v).map_err(|x| format!("erratum {}: {x}", e.id))?);
                }
                Fix::Unrequire(names) => {
                    let r = node.get_mut("required").and_then(Value::as_array_mut).ok_or_else(|| format!("erratum {}: no required at {p}", e.id))?;
                    let before = r.len();
                    r.retain(|x| !names.iter().any(|n| x == n));
                    if r.len() + names.len() != before {
                        return Err(format!("erratum {}: not every name was required (spec changed?)", e.id));
                    }
                }
                Fix::RequireOnly(names) => {
                    node.insert("required".into(), json!(names));
                    if names.is_empty() {
                        node.remove("required");
                    }
                }
            }
        }
    }
    Ok(())
}

/// The outcome of checking one call.
#[derive(Debug, Clone)]
pub struct Checked {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// The operation's label, `None` when no spec operation has this path.
    pub op: Option<String>,
    pub status_in_spec: bool,
    /// Deviations not covered by the allowlist.
    pub issues: Vec<Issue>,
    /// Deviations covered by the allowlist: (allow id, issue).
    pub allowed: Vec<(&'static str, Issue)>,
    pub notes: Vec<String>,
}

impl Checked {
    pub fn ok(&self) -> bool {
        self.issues.is_empty()
    }
    pub fn request_issues(&self) -> Vec<&Issue> {
        self.issues.iter().filter(|i| i.dir == Dir::Request).collect()
    }
}

pub struct Spec {
    docs: BTreeMap<String, Value>,
    pub ops: Vec<Op>,
    cache: Mutex<HashMap<String, Arc<Validator>>>,
}

static SPEC: OnceLock<Spec> = OnceLock::new();

pub fn spec() -> &'static Spec {
    SPEC.get_or_init(|| Spec::load().expect("OAS files load"))
}

/// Rewrites one schema in place: nullable → type arrays, oneOf → anyOf,
/// local refs → absolute. Recurses through the schema keywords these files use.
fn fix_schema(file: &str, s: &mut Value) {
    let Value::Object(o) = s else { return };
    if let Some(Value::String(r)) = o.get_mut("$ref") {
        if r.starts_with('#') {
            *r = format!("{BASE}{file}{r}");
        }
    }
    if o.get("nullable") == Some(&Value::Bool(true)) {
        o.remove("nullable");
        match o.get_mut("type") {
            Some(Value::String(t)) => {
                let t = t.clone();
                o.insert("type".into(), json!([t, "null"]));
            }
            Some(Value::Array(a)) if !a.contains(&json!("null")) => a.push(json!("null")),
            _ => {}
        }
        if let Some(Value::Array(e)) = o.get_mut("enum") {
            if !e.contains(&Value::Null) {
                e.push(Value::Null);
            }
        }
    } else {
        o.remove("nullable");
    }
    if let Some(alts) = o.remove("oneOf") {
        o.insert("anyOf".into(), alts);
    }
    for k in ["items", "additionalProperties", "not"] {
        if let Some(v) = o.get_mut(k) {
            fix_schema(file, v);
        }
    }
    for k in ["anyOf", "allOf"] {
        if let Some(Value::Array(a)) = o.get_mut(k) {
            a.iter_mut().for_each(|v| fix_schema(file, v));
        }
    }
    if let Some(Value::Object(p)) = o.get_mut("properties") {
        p.values_mut().for_each(|v| fix_schema(file, v));
    }
}

/// Walks a whole OAS document: `schema` values and `components.schemas`
/// are schemas; every other local `$ref` (parameters, request bodies) is
/// made absolute too.
fn fix_doc(file: &str, v: &mut Value, in_schemas: bool) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if in_schemas || k == "schema" {
                    fix_schema(file, x);
                } else if k == "schemas" {
                    fix_doc(file, x, true);
                } else if k == "$ref" {
                    if let Value::String(r) = x {
                        if r.starts_with('#') {
                            *r = format!("{BASE}{file}{r}");
                        }
                    }
                } else {
                    fix_doc(file, x, false);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| fix_doc(file, x, false)),
        _ => {}
    }
}

fn pointer_unescape(s: &str) -> String {
    s.replace("~1", "/").replace("~0", "~")
}

impl Spec {
    pub fn load() -> Result<Spec, String> {
        let mut docs = BTreeMap::new();
        let dir = spec_dir();
        let mut entries: Vec<_> = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{name}: {e}"))?;
            let mut v: Value = serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
            apply_errata(&name, &mut v)?;
            fix_doc(&name, &mut v, false);
            docs.insert(name, v);
        }
        let mut ops = Vec::new();
        for (file, d) in &docs {
            let Some(paths) = d.get("paths").and_then(Value::as_object) else { continue };
            for (template, item) in paths {
                let Some(item) = item.as_object() else { continue };
                for (m, op) in item {
                    if !["get", "post", "put", "patch", "delete"].contains(&m.as_str()) {
                        continue;
                    }
                    ops.push(Op { file: file.clone(), method: m.to_uppercase(), template: template.clone(), op: op.clone() });
                }
            }
        }
        Ok(Spec { docs, ops, cache: Mutex::new(HashMap::new()) })
    }

    pub fn files(&self) -> impl Iterator<Item = &String> {
        self.docs.keys()
    }

    /// The value an absolute `$ref` points to.
    pub fn deref(&self, r: &str) -> Option<&Value> {
        let rest = r.strip_prefix(BASE)?;
        let (file, frag) = rest.split_once('#').unwrap_or((rest, ""));
        let mut v = self.docs.get(file)?;
        for seg in frag.split('/').filter(|s| !s.is_empty()) {
            let seg = pointer_unescape(seg);
            v = match v {
                Value::Object(o) => o.get(&seg)?,
                Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(v)
    }

    /// Follows `$ref`s until a value without one.
    pub fn resolve<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        for _ in 0..16 {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => match self.deref(r) {
                    Some(t) => v = t,
                    None => panic!("unresolvable $ref {r}"),
                },
                None => break,
            }
        }
        v
    }

    /// Every `$ref` in every file resolves to something (offline).
    pub fn dangling_refs(&self) -> Vec<String> {
        fn walk(spec: &Spec, v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(o) => {
                    if let Some(Value::String(r)) = o.get("$ref") {
                        if spec.deref(r).is_none() {
                            out.push(r.clone());
                        }
                    }
                    o.values().for_each(|x| walk(spec, x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(spec, x, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        self.docs.values().for_each(|d| walk(self, d, &mut out));
        out
    }

    pub fn validator(&self, schema: &Value) -> Arc<Validator> {
        let key = schema.to_string();
        if let Some(v) = self.cache.lock().unwrap().get(&key) {
            return v.clone();
        }
        let mut opts = jsonschema::options();
        opts.with_draft(Draft::Draft4);
        for (file, d) in &self.docs {
            opts.with_resource(format!("{BASE}{file}"), Draft::Draft4.create_resource(d.clone()));
        }
        let v = Arc::new(opts.build(schema).unwrap_or_else(|e| panic!("schema does not compile: {e}\n{schema}")));
        self.cache.lock().unwrap().insert(key, v.clone());
        v
    }

    /// Errors of `instance` against `schema`, as (instance pointer, message).
    pub fn errors(&self, schema: &Value, instance: &Value) -> Vec<(String, String)> {
        let v = self.validator(schema);
        v.iter_errors(instance).map(|e| (e.instance_path.to_string(), e.to_string())).collect()
    }

    /// Splits a schema into its top-level alternatives (refs followed,
    /// nested anyOf flattened).
    fn alternatives(&self, schema: &Value) -> Vec<Value> {
        let s = self.resolve(schema);
        match s.as_object() {
            Some(o) if o.len() == 1 && o.contains_key("anyOf") => {
                o["anyOf"].as_array().map(|a| a.iter().flat_map(|x| self.alternatives(x)).collect()).unwrap_or_default()
            }
            _ => vec![schema.clone()],
        }
    }

    /// The operation serving `method path`: same segment count, equal
    /// literal segments; the most literal segments win. Ties: a numeric
    /// segment prefers an `{id}`-like parameter (`/settings/modules/{id}` vs
    /// `{api_name}`); `{external_field_value}` (only meaningful with the
    /// X-EXTERNAL header, which the call log does not keep) loses to `{id}`;
    /// `record.json` wins over the same path in `record_count.json` (whose
    /// GET declares no 200 schema) and `module_search.json`. `/{download_url}` (bulk write's
    /// result link) matches any path, last.
    pub fn find_op(&self, method: &str, path: &str) -> Option<&Op> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut best: Option<((usize, i32, i32), &Op)> = None;
        for op in self.ops.iter().filter(|o| o.method.eq_ignore_ascii_case(method)) {
            let t = op.segments();
            let score = if t.len() == 1 && t[0] == "{download_url}" {
                // Bulk write's result link, e.g. /v8/crm/{zgid}/bulk-write/{job}/{file}.zip.
                path.contains("/bulk-write/").then_some((0usize, 0i32, 0i32))
            } else if t.len() == segs.len() {
                let mut lit = 0;
                let mut fit = 0;
                let mut ok = true;
                for (a, b) in t.iter().zip(&segs) {
                    if let Some(name) = a.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
                        if b.is_empty() {
                            ok = false;
                        }
                        let numeric = !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit());
                        let id_like = name == "id" || name.ends_with("_id");
                        if name == "external_field_value" {
                            fit -= 1;
                        } else if id_like && numeric {
                            fit += 1;
                        } else if id_like && !numeric {
                            fit -= 1;
                        }
                    } else if a == b {
                        lit += 1;
                    } else {
                        ok = false;
                    }
                }
                let file_rank = if op.file == "record.json" { 1 } else { 0 };
                ok.then_some((lit + 1, fit, file_rank))
            } else {
                None
            };
            if let Some(s) = score {
                if best.as_ref().is_none_or(|(b, _)| s > *b) {
                    best = Some((s, op));
                }
            }
        }
        best.map(|(_, o)| o)
    }

    fn params(&self, op: &Op) -> Vec<Value> {
        op.op.get("parameters").and_then(Value::as_array).map(|a| a.iter().map(|p| self.resolve(p).clone()).collect()).unwrap_or_default()
    }

    /// Checks one logged call. `allow` is the allowlist.
    pub fn check(&self, call: &CallRecord, allow: &[Allow]) -> Checked {
        let mut out = Checked {
            seq: call.seq,
            method: call.method.clone(),
            path: call.path.clone(),
            status: call.status,
            op: None,
            status_in_spec: false,
            issues: vec![],
            allowed: vec![],
            notes: vec![],
        };
        let Some(op) = self.find_op(&call.method, &call.path) else {
            out.notes.push("no spec operation for this path".into());
            return out;
        };
        out.op = Some(op.label());
        let mut issues = Vec::new();
        self.check_params(op, call, &mut issues, &mut out.notes);
        self.check_request_body(op, call, &mut issues, &mut out.notes);
        let mut body_issues = Vec::new();
        out.status_in_spec = self.check_response(op, call, allow, &mut body_issues, &mut out.allowed, &mut out.notes);
        issues.extend(body_issues);
        for i in issues {
            let body = match i.dir {
                Dir::Request => call.request_body.as_ref(),
                Dir::Response => call.response_body.as_ref(),
            };
            match allow.iter().find(|a| a.matches(self, op, &i, body)) {
                Some(a) => out.allowed.push((a.id, i)),
                None => out.issues.push(i),
            }
        }
        out
    }

    fn check_params(&self, op: &Op, call: &CallRecord, issues: &mut Vec<Issue>, notes: &mut Vec<String>) {
        let params = self.params(op);
        let query: Vec<(String, String)> = serde_urlencoded::from_str(&call.query).unwrap_or_else(|_| {
            issues.push(Issue { dir: Dir::Request, at: "query".into(), message: format!("query string does not parse: {:?}", call.query) });
            vec![]
        });
        let named = |name: &str, loc: &str| params.iter().find(|p| p["name"] == name && p["in"] == loc);
        for (k, v) in &query {
            match named(k, "query") {
                None => issues.push(Issue { dir: Dir::Request, at: format!("query:{k}"), message: "query parameter not declared by the operation".into() }),
                Some(p) => self.check_value(p, k, "query", v, issues),
            }
        }
        let t = op.segments();
        let segs: Vec<&str> = call.path.trim_matches('/').split('/').collect();
        if t.len() == segs.len() {
            for (a, b) in t.iter().zip(&segs) {
                if let Some(name) = a.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
                    match named(name, "path") {
                        Some(p) => self.check_value(p, name, "path", b, issues),
                        None => issues.push(Issue { dir: Dir::Request, at: format!("path:{name}"), message: "path parameter not declared (spec defect)".into() }),
                    }
                }
            }
        }
        for p in &params {
            let name = p["name"].as_str().unwrap_or("");
            let required = p["required"] == true;
            match p["in"].as_str() {
                Some("query") if required && !query.iter().any(|(k, _)| k == name) => {
                    issues.push(Issue { dir: Dir::Request, at: format!("query:{name}"), message: "required query parameter missing".into() })
                }
                Some("header") if required => notes.push(format!("required header {name} not checked (headers are not logged)")),
                _ => {}
            }
        }
    }

    fn check_value(&self, p: &Value, name: &str, loc: &str, raw: &str, issues: &mut Vec<Issue>) {
        let Some(schema) = p.get("schema") else { return };
        let value = coerce(self.resolve(schema), raw);
        for (at, msg) in self.errors(schema, &value) {
            issues.push(Issue { dir: Dir::Request, at: format!("{loc}:{name}{at}"), message: msg });
        }
    }

    fn check_request_body(&self, op: &Op, call: &CallRecord, issues: &mut Vec<Issue>, notes: &mut Vec<String>) {
        let rb = op.op.get("requestBody").map(|r| self.resolve(r));
        let ct = call.request_content_type.as_deref().map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        match (rb, &call.request_body) {
            (None, Some(_)) => issues.push(Issue { dir: Dir::Request, at: String::new(), message: "JSON request body sent, but the operation declares none".into() }),
            (None, None) => {}
            (Some(rb), body) => {
                let content = rb.get("content").and_then(Value::as_object).cloned().unwrap_or_default();
                let required = rb.get("required") == Some(&Value::Bool(true));
                let declared: Vec<String> = content.keys().cloned().collect();
                match body {
                    Some(b) => match content.iter().find(|(k, _)| k.contains("json")) {
                        Some((_, media)) => match media.get("schema") {
                            Some(s) => {
                                for (at, msg) in self.errors(s, b) {
                                    issues.push(Issue { dir: Dir::Request, at, message: msg });
                                }
                            }
                            None => notes.push("request media type has no schema".into()),
                        },
                        None => issues.push(Issue { dir: Dir::Request, at: String::new(), message: format!("JSON body sent; the operation declares {declared:?}") }),
                    },
                    None => match &ct {
                        Some(c) if declared.iter().any(|d| d.eq_ignore_ascii_case(c)) => notes.push(format!("{c} request body not validated (not JSON)")),
                        Some(c) => issues.push(Issue { dir: Dir::Request, at: String::new(), message: format!("request Content-Type {c} not among {declared:?}") }),
                        None if required => issues.push(Issue { dir: Dir::Request, at: String::new(), message: "required request body missing".into() }),
                        None => {}
                    },
                }
            }
        }
    }

    /// Returns whether the status is declared by the operation.
    fn check_response(&self, op: &Op, call: &CallRecord, allow: &[Allow], issues: &mut Vec<Issue>, allowed: &mut Vec<(&'static str, Issue)>, notes: &mut Vec<String>) -> bool {
        let responses = op.op.get("responses").and_then(Value::as_object).cloned().unwrap_or_default();
        let status = call.status.to_string();
        let in_spec = responses.contains_key(&status);
        let mut declared: Vec<(u16, Value)> = responses.iter().filter_map(|(k, v)| Some((k.parse::<u16>().ok()?, self.resolve(v).clone()))).collect();
        declared.sort_by_key(|(k, _)| *k);
        let chosen: Vec<Value> = if in_spec {
            vec![self.resolve(&responses[&status]).clone()]
        } else if call.status < 400 {
            declared.iter().filter(|(k, _)| (200..300).contains(k)).take(1).map(|(_, v)| v.clone()).collect()
        } else {
            // An error status the operation does not declare (401, 404,
            // 413, 415, 429, 500…): Zoho's shared error shape, or one of the
            // error shapes (`*Exception*` / `*Error*`) the operation
            // documents under another status.
            let mut alts = vec![json!({"$ref": format!("{BASE}common.json#/components/schemas/API_Exception")})];
            for (_, r) in &declared {
                for m in r.get("content").and_then(Value::as_object).into_iter().flat_map(|c| c.values()) {
                    if let Some(s) = m.get("schema") {
                        alts.extend(self.alternatives(s).into_iter().filter(|a| a.get("$ref").and_then(Value::as_str).is_some_and(|r| r.contains("Exception") || r.contains("Error"))));
                    }
                }
            }
            vec![json!({"content": {"application/json": {"schema": {"anyOf": alts}}}})]
        };
        let body_ct = call.response_content_type.as_deref().map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        if call.status == 204 || call.status == 304 {
            if call.response_body.is_some() {
                issues.push(Issue { dir: Dir::Response, at: String::new(), message: format!("{} with a body", call.status) });
            }
            return in_spec;
        }
        if call.status == 0 {
            notes.push("connection dropped (fault)".into());
            return in_spec;
        }
        // Media types the chosen responses declare, with their schemas.
        let mut media: Vec<(String, Option<Value>)> = Vec::new();
        for r in &chosen {
            if let Some(c) = r.get("content").and_then(Value::as_object) {
                for (k, m) in c {
                    media.push((k.to_ascii_lowercase(), m.get("schema").cloned()));
                }
            }
        }
        if media.is_empty() {
            if call.response_body.is_some() {
                issues.push(Issue { dir: Dir::Response, at: String::new(), message: "body sent, the spec declares no content".into() });
            }
            return in_spec;
        }
        let is_json = body_ct.as_deref().is_some_and(|c| c.contains("json"));
        if !is_json {
            match &body_ct {
                Some(c) if media.iter().any(|(k, _)| k == c) => notes.push(format!("{c} body not validated (binary)")),
                c => issues.push(Issue { dir: Dir::Response, at: String::new(), message: format!("Content-Type {c:?} not among {:?}", media.iter().map(|m| &m.0).collect::<Vec<_>>()) }),
            }
            return in_spec;
        }
        let Some(body) = &call.response_body else {
            issues.push(Issue { dir: Dir::Response, at: String::new(), message: "JSON body not captured (capture_bodies off, not JSON, or too large)".into() });
            return in_spec;
        };
        let schemas: Vec<Value> = media.iter().filter(|(k, _)| k.contains("json")).filter_map(|(_, s)| s.clone()).collect();
        if schemas.is_empty() {
            issues.push(Issue { dir: Dir::Response, at: String::new(), message: "JSON body, but the spec declares no JSON schema for this status".into() });
            return in_spec;
        }
        // Try every alternative; keep the one with the fewest unallowed errors.
        // A success status may not pass as one of the error alternatives
        // (`*Exception*` / `*Error*`): record.json's API_Exception has no
        // `required`, so with it any object would be a valid 200.
        let mut alts: Vec<Value> = schemas.iter().flat_map(|s| self.alternatives(s)).collect();
        let is_error = |a: &Value| a.get("$ref").and_then(Value::as_str).is_some_and(|r| r.contains("Exception") || r.contains("Error"));
        if call.status < 300 && alts.iter().any(|a| !is_error(a)) {
            alts.retain(|a| !is_error(a));
        }
        let op_ = op;
        let mut best: Option<(Vec<Issue>, Vec<(&'static str, Issue)>)> = None;
        for alt in alts {
            let mut bad = Vec::new();
            let mut ok = Vec::new();
            for (at, message) in self.errors(&alt, body) {
                let i = Issue { dir: Dir::Response, at, message };
                match allow.iter().find(|a| a.matches(self, op_, &i, Some(body))) {
                    Some(a) => ok.push((a.id, i)),
                    None => bad.push(i),
                }
            }
            let better = match &best {
                None => true,
                Some((b, a)) => (bad.len(), ok.len()) < (b.len(), a.len()),
            };
            if better {
                best = Some((bad, ok));
            }
        }
        if let Some((bad, ok)) = best {
            issues.extend(bad);
            allowed.extend(ok);
        }
        in_spec
    }
}

/// A query-string value as the type its schema declares.
fn coerce(schema: &Value, raw: &str) -> Value {
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("string"),
        _ => "string",
    };
    match ty {
        "integer" => raw.parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(raw)),
        "number" => raw.parse::<f64>().ok().and_then(|f| serde_json::Number::from_f64(f).map(Value::Number)).unwrap_or_else(|| json!(raw)),
        "boolean" => match raw {
            "true" => json!(true),
            "false" => json!(false),
            _ => json!(raw),
        },
        "array" => {
            let items = schema.get("items").cloned().unwrap_or(json!({}));
            Value::Array(raw.split(',').map(|x| coerce(&items, x)).collect())
        }
        _ => json!(raw),
    }
}

/// Per (operation, status): how many calls validated, were allowlisted, failed.
#[derive(Debug, Default, Clone)]
pub struct Cell {
    pub ok: usize,
    pub allowed: usize,
    pub failed: usize,
    pub in_spec: bool,
}

#[derive(Debug, Default)]
pub struct Report {
    pub checked: Vec<Checked>,
}

impl Report {
    pub fn add(&mut self, c: Checked) {
        self.checked.push(c);
    }

    pub fn failures(&self) -> Vec<&Checked> {
        self.checked.iter().filter(|c| !c.ok()).collect()
    }

    pub fn table(&self) -> BTreeMap<String, BTreeMap<u16, Cell>> {
        let mut t: BTreeMap<String, BTreeMap<u16, Cell>> = BTreeMap::new();
        for c in &self.checked {
            let key = c.op.clone().unwrap_or_else(|| format!("{} {} (no spec operation)", c.method, generic_path(&c.path)));
            let cell = t.entry(key).or_default().entry(c.status).or_default();
            cell.in_spec = c.status_in_spec;
            if !c.ok() {
                cell.failed += 1;
            } else if !c.allowed.is_empty() {
                cell.allowed += 1;
            } else {
                cell.ok += 1;
            }
        }
        t
    }

    /// Markdown: the coverage table, unexercised operations, allowlist use,
    /// and every failure.
    pub fn markdown(&self, spec: &Spec, allow: &[Allow], unexercised_probe: &BTreeMap<String, String>) -> String {
        let mut s = String::new();
        let table = self.table();
        let _ = writeln!(s, "# OpenAPI fidelity: zoho-sim and zoho-api against spec/zoho-oas\n");
        let _ = writeln!(s, "{} calls checked, {} with unallowed deviations, {} with allowlisted deviations only.\n", self.checked.len(), self.failures().len(), self.checked.iter().filter(|c| c.ok() && !c.allowed.is_empty()).count());
        let _ = writeln!(s, "Cell: `status: ok/allowlisted/failed`; `*` = status not in spec (validated against the fallback schema).\n");
        let _ = writeln!(s, "| Operation | Statuses seen | Result |\n|---|---|---|");
        for (op, cells) in &table {
            let statuses: Vec<String> = cells.iter().map(|(st, c)| format!("{st}{}: {}/{}/{}", if c.in_spec || op.contains("no spec operation") { "" } else { "*" }, c.ok, c.allowed, c.failed)).collect();
            let failed: usize = cells.values().map(|c| c.failed).sum();
            let allowed: usize = cells.values().map(|c| c.allowed).sum();
            let result = if op.contains("no spec operation") {
                "not in spec".to_string()
            } else if failed > 0 {
                "FAILED".to_string()
            } else if allowed > 0 {
                "OK (allowlist)".to_string()
            } else {
                "OK".to_string()
            };
            let _ = writeln!(s, "| `{op}` | {} | {result} |", statuses.join(", "));
        }
        let seen: BTreeSet<String> = table.keys().cloned().collect();
        let _ = writeln!(s, "\n## Spec operations not exercised\n");
        let _ = writeln!(s, "Probed on a fresh simulator with a concrete path; `not routed` = the simulator answers 404 INVALID_URL_PATTERN or 405; otherwise the answer and the simulator handler that took the path are shown (the simulator does not implement the operation unless noted).\n");
        let _ = writeln!(s, "| Operation | Simulator |\n|---|---|");
        for op in &spec.ops {
            let l = op.label();
            if !seen.contains(&l) {
                let _ = writeln!(s, "| `{l}` | {} |", unexercised_probe.get(&l).map(String::as_str).unwrap_or("?"));
            }
        }
        let _ = writeln!(s, "\n## Spec errata (applied at load time)\n");
        for e in ERRATA {
            let _ = writeln!(s, "- **{}** `{}` {} at {}: {}", e.id, e.file, match &e.fix {
                Fix::Remove(k) => format!("remove `{k}`"),
                Fix::Set(k, v) => format!("set `{k}` = `{v}`"),
                Fix::Unrequire(n) => format!("un-require {n:?}"),
                Fix::RequireOnly(n) => format!("require only {n:?}"),
            }, e.pointers.join(", "), e.why);
        }
        let _ = writeln!(s, "\n## Allowlist (location-specific disagreements; uses counted)\n");
        for a in allow {
            let n: usize = self.checked.iter().map(|c| c.allowed.iter().filter(|(id, _)| *id == a.id).count()).sum();
            let cond = a.valid_as.map(|r| format!(" (only where the value is a valid `{r}`)")).unwrap_or_default();
            let _ = writeln!(s, "- **{}** ({n} deviations): `{} {}` {:?} at `{}` “{}”{cond}: {}", a.id, a.method, a.template, a.dir, a.at, a.message, a.why);
        }
        let fails = self.failures();
        if !fails.is_empty() {
            let _ = writeln!(s, "\n## Failures\n");
            for c in fails {
                let _ = writeln!(s, "- #{} `{} {}` → {} ({})", c.seq, c.method, c.path, c.status, c.op.as_deref().unwrap_or("-"));
                for i in c.issues.iter().take(8) {
                    let _ = writeln!(s, "  - {i}");
                }
                if c.issues.len() > 8 {
                    let _ = writeln!(s, "  - … {} more", c.issues.len() - 8);
                }
            }
        }
        s
    }
}

/// `/crm/v8/Leads/123` → `/crm/v8/*/*`-ish label for calls with no operation.
fn generic_path(p: &str) -> String {
    p.split('/').map(|s| if s.bytes().all(|c| c.is_ascii_digit()) && !s.is_empty() { "{n}" } else { s }).collect::<Vec<_>>().join("/")
}

/// A concrete path for a template (for probing the simulator).
pub fn instantiate(template: &str) -> String {
    template
        .split('/')
        .map(|s| match s.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
            Some("module_api_name") | Some("module") | Some("api_name") => "Leads".to_string(),
            Some("download_url") => "v8/crm/0/bulk-write/1/1.zip".to_string(),
            Some("field") | Some("user") => "1000000000001".to_string(),
            Some(_) => "1000000000001".to_string(),
            None => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}
