//! Field paths: `Last_Name`, or dotted through lookups such as
//! `Account_Name.Parent_Account.Account_Name` (at most two hops).

use std::borrow::Cow;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::schema::{catalog, DataType, FieldDef, ModuleDef};

/// Resolves a lookup target: (target module api name, id) -> record.
pub type LookupFn<'a> = &'a dyn Fn(&str, &str) -> Option<Map<String, Value>>;

/// The catalogue plus `users`, the target of owner lookups, which the
/// catalogue does not list as a module.
fn modules() -> &'static [ModuleDef] {
    static MODULES: OnceLock<Vec<ModuleDef>> = OnceLock::new();
    MODULES.get_or_init(|| {
        let mut all = catalog();
        let field = |api_name, data_type, n| FieldDef {
            api_name,
            label: api_name,
            data_type,
            mandatory: false,
            unique: false,
            read_only: true,
            lookup_module: None,
            formula_return: None,
            picklist: &[],
            length: None,
            id: n,
        };
        all.push(ModuleDef {
            api_name: "users",
            module_name: "users",
            singular_label: "User",
            plural_label: "Users",
            id: 0,
            generated_type: "default",
            api_supported: false,
            data_access: false,
            system_unique: None,
            fields: vec![
                field("id", DataType::Bigint, 1),
                field("name", DataType::Text, 2),
                field("first_name", DataType::Text, 3),
                field("last_name", DataType::Text, 4),
                field("full_name", DataType::Text, 5),
                field("email", DataType::Email, 6),
            ],
        });
        all
    })
}

fn module_named(name: &str) -> Option<&'static ModuleDef> {
    modules().iter().find(|m| m.api_name == name)
}

fn is_lookup(f: &FieldDef) -> bool {
    matches!(f.data_type, DataType::Lookup | DataType::Ownerlookup)
}

/// The field a path ends at, or None when any segment is unknown, a
/// non-final segment is not a lookup, or the path is too deep.
pub(crate) fn field_at<'m>(module: &'m ModuleDef, path: &str) -> Option<&'m FieldDef> {
    let segs: Vec<&str> = path.split('.').collect();
    if segs.len() > 3 {
        return None;
    }
    let mut cur: &'m ModuleDef = module;
    for (i, seg) in segs.iter().enumerate() {
        let f = cur.field(seg)?;
        if i + 1 == segs.len() {
            return Some(f);
        }
        if !is_lookup(f) {
            return None;
        }
        cur = module_named(f.lookup_module?)?;
    }
    None
}

/// The id a stored lookup value points at: `{"id": …}` or a bare id.
pub(crate) fn lookup_id(v: &Value) -> Option<String> {
    match v {
        Value::Object(o) => lookup_id(o.get("id")?),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The value at `path` in `record`, following lookups through `lookup`.
/// Null when a hop is missing or cannot be resolved.
pub(crate) fn value_at(module: &ModuleDef, record: &Map<String, Value>, path: &str, lookup: Option<LookupFn<'_>>) -> Value {
    let segs: Vec<&str> = path.split('.').collect();
    let mut rec: Cow<Map<String, Value>> = Cow::Borrowed(record);
    let mut cur: &ModuleDef = module;
    for (i, seg) in segs.iter().enumerate() {
        let v = rec.get(*seg).cloned().unwrap_or(Value::Null);
        if i + 1 == segs.len() {
            return v;
        }
        let (Some(f), Some(id)) = (cur.field(seg), lookup_id(&v)) else {
            return Value::Null;
        };
        // The stored reference already holds the target's id, so `X.id`
        // needs no resolver.
        if i + 2 == segs.len() && segs[i + 1] == "id" {
            return Value::String(id);
        }
        let (Some(target), Some(lookup)) = (f.lookup_module, lookup) else {
            return Value::Null;
        };
        let (Some(next), Some(next_mod)) = (lookup(target, &id), module_named(target)) else {
            return Value::Null;
        };
        rec = Cow::Owned(next);
        cur = next_mod;
    }
    Value::Null
}
