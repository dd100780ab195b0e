//! Which local column holds which Zoho field (DESIGN.md, "Column matching"):
//! a column maps to the field whose API name equals its name ignoring case,
//! unless a mapping object (`{"order_id": "parent_id", "notes": null}`,
//! local column → field) says otherwise; a column mapped to null is left out.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::metadata::FieldMeta;

#[derive(Debug, Clone)]
pub struct ColumnMatch {
    /// Index into the caller's column list.
    pub column: usize,
    pub field: FieldMeta,
}

#[derive(Debug, Clone, Default)]
pub struct Matching {
    pub matched: Vec<ColumnMatch>,
    /// Columns no field matches (and no mapping names).
    pub unmatched: Vec<String>,
    /// Columns left out because their field cannot be written (`column`,
    /// `field`); only when matching for a write.
    pub read_only: Vec<(String, String)>,
}

impl Matching {
    pub fn field_of(&self, column: usize) -> Option<&FieldMeta> {
        self.matched.iter().find(|m| m.column == column).map(|m| &m.field)
    }
}

fn find_field<'f>(fields: &'f [FieldMeta], name: &str) -> Option<&'f FieldMeta> {
    fields.iter().find(|f| f.api_name == name).or_else(|| fields.iter().find(|f| f.api_name.eq_ignore_ascii_case(name)))
}

/// Matches `columns` to `fields`. `module` names the module in errors.
/// With `for_write`, fields Zoho does not let the API write are left out.
pub fn match_columns(module: &str, columns: &[&str], fields: &[FieldMeta], mapping: Option<&Value>, for_write: bool) -> Result<Matching> {
    let map = match mapping {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(other) => return Err(Error::InvalidInput(format!("mapping must be a JSON object of column → field, not {other}"))),
    };
    if let Some(map) = map {
        for (col, field) in map {
            if !columns.iter().any(|c| c == col) {
                return Err(Error::InvalidInput(format!("mapping names column \"{col}\", which the table does not have")));
            }
            match field {
                Value::Null => {}
                Value::String(name) if find_field(fields, name).is_some() => {}
                Value::String(name) => return Err(Error::InvalidInput(format!("mapping sends column \"{col}\" to field \"{name}\", which module {module} does not have"))),
                other => return Err(Error::InvalidInput(format!("mapping for column \"{col}\" must be a field name or null, not {other}"))),
            }
        }
    }
    let mut out = Matching::default();
    for (i, col) in columns.iter().enumerate() {
        let wanted = match map.and_then(|m| m.get(*col)) {
            Some(Value::Null) => continue,
            Some(Value::String(name)) => Some(name.as_str()),
            _ => None,
        };
        let field = match wanted {
            Some(name) => find_field(fields, name),
            None => find_field(fields, col),
        };
        let Some(field) = field else {
            out.unmatched.push(col.to_string());
            continue;
        };
        if for_write && !field.writable() {
            out.read_only.push((col.to_string(), field.api_name.clone()));
            continue;
        }
        if let Some(prev) = out.matched.iter().find(|m| m.field.api_name == field.api_name) {
            return Err(Error::InvalidInput(format!(
                "columns \"{}\" and \"{col}\" both map to field {}; map one of them elsewhere or to null",
                columns[prev.column], field.api_name
            )));
        }
        out.matched.push(ColumnMatch { column: i, field: field.clone() });
    }
    Ok(out)
}

/// The push's and the pull's mappings of a two-way table (`zoho_sync`),
/// from the caller's: the pull writes Zoho's `id` into `zoho_id` and never a
/// field the table owns, nor any bookkeeping column; the push never sends a
/// field Zoho owns. Field names in `rules` come back as the module spells
/// them.
#[derive(Debug, Clone)]
pub struct TwoWayMappings {
    pub key_field: String,
    /// The local column the push sends as the key field.
    pub key_column: String,
    pub rules: crate::conflict::Rules,
    pub push: Value,
    pub pull: Value,
}

/// The local column that holds Zoho's record id in a two-way table.
pub const ZOHO_ID: &str = "zoho_id";

pub fn two_way(
    module: &str,
    columns: &[&str],
    fields: &[FieldMeta],
    rules: &crate::conflict::Rules,
    mapping: Option<&Value>,
    key_field: &str,
    bookkeeping: &[&str],
) -> Result<TwoWayMappings> {
    use crate::conflict::{FieldRule, Side};
    // Checks the caller's mapping on its own first, for its errors.
    match_columns(module, columns, fields, mapping, false)?;
    let user = match mapping {
        Some(Value::Object(m)) => m.clone(),
        _ => serde_json::Map::new(),
    };
    if !columns.contains(&ZOHO_ID) {
        return Err(Error::InvalidInput(format!("a two-way table needs a column {ZOHO_ID} (bigint, unique) for Zoho's record id")));
    }
    let key = find_field(fields, key_field).ok_or_else(|| Error::InvalidInput(format!("module {module} has no field \"{key_field}\" (key_field)")))?;
    if !key.unique {
        return Err(Error::InvalidInput(format!("key_field {} of module {module} is not unique in Zoho, so rows cannot be matched on it", key.api_name)));
    }
    let mut canonical = crate::conflict::Rules { policy: rules.policy, fields: Default::default() };
    for (name, rule) in &rules.fields {
        let f = find_field(fields, name).ok_or_else(|| Error::InvalidInput(format!("fields names \"{name}\", which module {module} does not have")))?;
        if f.api_name == key.api_name && *rule == FieldRule::OwnedBy(Side::Zoho) {
            return Err(Error::InvalidInput(format!("the key field {} cannot be owned by Zoho: the push matches rows on it", key.api_name)));
        }
        canonical.fields.insert(f.api_name.clone(), *rule);
    }
    let owned = |side: Side, f: &FieldMeta| canonical.fields.get(&f.api_name) == Some(&FieldRule::OwnedBy(side));

    let mut pull = user.clone();
    pull.entry(ZOHO_ID).or_insert_with(|| Value::String("id".into()));
    for c in columns.iter().filter(|c| **c != ZOHO_ID && !user.contains_key(**c)) {
        if c.eq_ignore_ascii_case("id") || bookkeeping.contains(c) {
            pull.insert(c.to_string(), Value::Null);
        }
    }
    let pull_value = Value::Object(pull.clone());
    for m in match_columns(module, columns, fields, Some(&pull_value), false)?.matched {
        if owned(Side::Local, &m.field) {
            pull.insert(columns[m.column].to_string(), Value::Null);
        }
    }

    let mut push = user;
    let push_value = Value::Object(push.clone());
    let sent = match_columns(module, columns, fields, Some(&push_value), true)?;
    let Some(key_column) = sent.matched.iter().find(|m| m.field.api_name == key.api_name).map(|m| columns[m.column].to_string()) else {
        return Err(Error::InvalidInput(format!("no column holds the key field {}, which the push matches rows on", key.api_name)));
    };
    for m in sent.matched {
        if owned(Side::Zoho, &m.field) {
            push.insert(columns[m.column].to_string(), Value::Null);
        }
    }
    Ok(TwoWayMappings { key_field: key.api_name.clone(), key_column, rules: canonical, push: Value::Object(push), pull: Value::Object(pull) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields() -> Vec<FieldMeta> {
        serde_json::from_value(json!([
            {"api_name": "id", "data_type": "bigint", "read_only": true},
            {"api_name": "Name", "data_type": "text"},
            {"api_name": "parent_id", "data_type": "text", "unique": {"casesensitive": false}},
            {"api_name": "Customer_Name", "data_type": "text"},
            {"api_name": "Amount", "data_type": "currency"},
        ]))
        .unwrap()
    }

    #[test]
    fn names_match_ignoring_case() {
        let m = match_columns("Orders", &["name", "PARENT_ID", "amount", "legacy_flag"], &fields(), None, true).unwrap();
        let got: Vec<(usize, &str)> = m.matched.iter().map(|c| (c.column, c.field.api_name.as_str())).collect();
        assert_eq!(got, vec![(0, "Name"), (1, "parent_id"), (2, "Amount")]);
        assert_eq!(m.unmatched, vec!["legacy_flag"]);
    }

    #[test]
    fn a_mapping_renames_and_drops_columns() {
        let mapping = json!({"order_id": "parent_id", "customer": "Customer_Name", "amount": null});
        let m = match_columns("Orders", &["order_id", "customer", "amount", "name"], &fields(), Some(&mapping), true).unwrap();
        let got: Vec<&str> = m.matched.iter().map(|c| c.field.api_name.as_str()).collect();
        assert_eq!(got, vec!["parent_id", "Customer_Name", "Name"]);
        assert!(m.unmatched.is_empty());
    }

    #[test]
    fn a_write_leaves_read_only_fields_out() {
        let m = match_columns("Orders", &["id", "name"], &fields(), None, true).unwrap();
        assert_eq!(m.read_only, vec![("id".to_string(), "id".to_string())]);
        let m = match_columns("Orders", &["id", "name"], &fields(), None, false).unwrap();
        assert_eq!(m.matched.len(), 2);
    }

    #[test]
    fn bad_mappings_name_what_is_wrong() {
        let err = |mapping: Value, cols: &[&str]| match_columns("Orders", cols, &fields(), Some(&mapping), true).unwrap_err().to_string();
        assert!(err(json!({"order_id": "Parent"}), &["order_id"]).contains("field \"Parent\", which module Orders does not have"));
        assert!(err(json!({"nope": "Name"}), &["order_id"]).contains("column \"nope\""));
        assert!(err(json!({"order_id": 3}), &["order_id"]).contains("field name or null"));
        assert!(err(json!(["x"]), &["order_id"]).contains("JSON object"));
        assert!(err(json!({"a": "Name"}), &["a", "name"]).contains("both map to field Name"));
    }

    #[test]
    fn a_two_way_table_keeps_each_sides_fields_from_the_other() {
        let rules = crate::conflict::Rules::parse("newest_wins", Some(&json!({"customer_name": "local", "AMOUNT": "zoho"}))).unwrap();
        let cols = ["id", "parent_id", "customer_name", "amount", "zoho_id", "synced", "modified_time"];
        let m = two_way("Orders", &cols, &fields(), &rules, None, "Parent_Id", &["synced"]).unwrap();
        assert_eq!((m.key_field.as_str(), m.key_column.as_str()), ("parent_id", "parent_id"));
        assert_eq!(m.rules.fields.keys().collect::<Vec<_>>(), vec!["Amount", "Customer_Name"]);
        assert_eq!(m.pull, json!({"zoho_id": "id", "id": null, "synced": null, "customer_name": null}));
        assert_eq!(m.push, json!({"amount": null}));
        // What each side then matches.
        let pulled = match_columns("Orders", &cols, &fields(), Some(&m.pull), false).unwrap();
        let pulled: Vec<&str> = pulled.matched.iter().map(|c| c.field.api_name.as_str()).collect();
        assert_eq!(pulled, vec!["parent_id", "Amount", "id"]);
        let pushed = match_columns("Orders", &cols, &fields(), Some(&m.push), true).unwrap();
        let pushed: Vec<&str> = pushed.matched.iter().map(|c| c.field.api_name.as_str()).collect();
        assert_eq!(pushed, vec!["parent_id", "Customer_Name"]);
    }

    #[test]
    fn a_two_way_table_is_refused_what_cannot_work() {
        let rules = |f: Value| crate::conflict::Rules::parse("zoho_wins", Some(&f)).unwrap();
        let err = |cols: &[&str], r: Value, key: &str| two_way("Orders", cols, &fields(), &rules(r), None, key, &[]).unwrap_err().to_string();
        let cols = ["parent_id", "zoho_id", "name"];
        assert!(err(&["parent_id", "name"], json!({}), "parent_id").contains("column zoho_id"));
        assert!(err(&cols, json!({}), "Name").contains("Name of module Orders is not unique"));
        assert!(err(&cols, json!({}), "Nope").contains("no field \"Nope\""));
        assert!(err(&cols, json!({"Phone": "local"}), "parent_id").contains("\"Phone\""));
        assert!(err(&cols, json!({"parent_id": "zoho"}), "parent_id").contains("cannot be owned by Zoho"));
        assert!(err(&["zoho_id", "name"], json!({}), "parent_id").contains("no column holds the key field parent_id"));
    }
}
