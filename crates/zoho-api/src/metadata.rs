//! Org, current user, modules and fields (zoho-api.md §10–§11).

use reqwest::Method;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::client::ZohoClient;
use crate::error::{Error, Result};
use crate::http::{Call, Target};

#[derive(Debug, Clone, Deserialize)]
pub struct Org {
    pub id: String,
    /// Goes into `X-CRM-ORG` on bulk-write uploads.
    pub zgid: String,
    #[serde(default)]
    pub company_name: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default, rename = "type")]
    pub org_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModuleMeta {
    pub api_name: String,
    #[serde(default)]
    pub module_name: Option<String>,
    #[serde(default)]
    pub singular_label: Option<String>,
    #[serde(default)]
    pub plural_label: Option<String>,
    pub id: String,
    #[serde(default)]
    pub api_supported: bool,
    #[serde(default)]
    pub generated_type: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

/// Modules no data API serves even though `/settings/modules` lists them
/// (zoho-api.md §7.1, §14.1).
pub const MODULES_WITHOUT_DATA_API: &[&str] = &[
    "Notes",
    "Attachments",
    "Emails",
    "CTI_Entry",
    "Email_Analytics",
    "Email_Template_Analytics",
    "Functions__s",
    "Email_Sentiment",
    "Locking_Information__s",
];

impl ModuleMeta {
    /// Why records of this module cannot be read through the API, if so.
    pub fn unreadable_reason(&self) -> Option<&'static str> {
        if !self.api_supported {
            return Some("the API does not support it (api_supported is false)");
        }
        match self.generated_type.as_deref() {
            Some("linking") => return Some("it is a linking module behind a multi-select lookup"),
            Some("subform") => return Some("it is a subform, read through its parent"),
            _ => {}
        }
        MODULES_WITHOUT_DATA_API
            .contains(&self.api_name.as_str())
            .then_some("Zoho's records, COQL and bulk APIs do not serve it")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct LookupTarget {
    pub api_name: String,
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Lookup {
    pub module: LookupTarget,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Formula {
    pub return_type: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PickListValue {
    pub display_value: String,
    #[serde(default)]
    pub actual_value: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FieldMeta {
    pub api_name: String,
    #[serde(default)]
    pub display_label: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    pub data_type: String,
    #[serde(default)]
    pub json_type: Option<String>,
    #[serde(default)]
    pub system_mandatory: bool,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub field_read_only: bool,
    /// Zoho sends `{}` for "not unique" and an object of options otherwise.
    #[serde(default, deserialize_with = "non_empty_object")]
    pub unique: bool,
    #[serde(default)]
    pub formula: Option<Formula>,
    #[serde(default)]
    pub lookup: Option<Lookup>,
    #[serde(default)]
    pub length: Option<u32>,
    #[serde(default)]
    pub decimal_place: Option<u32>,
    #[serde(default)]
    pub pick_list_values: Vec<PickListValue>,
    #[serde(default)]
    pub virtual_field: bool,
}

impl FieldMeta {
    pub fn is_formula(&self) -> bool {
        self.data_type == "formula"
    }

    /// The type values of this field have: a formula's return type, else its own.
    pub fn value_type(&self) -> &str {
        match &self.formula {
            Some(f) if self.is_formula() => &f.return_type,
            _ => &self.data_type,
        }
    }

    /// Whether the API may write this field.
    pub fn writable(&self) -> bool {
        !(self.read_only || self.field_read_only || self.is_formula() || self.virtual_field)
    }
}

fn non_empty_object<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Object(m) => !m.is_empty(),
        Value::Bool(b) => b,
        _ => false,
    })
}

#[derive(Deserialize)]
struct OrgEnvelope {
    org: Vec<Org>,
}

#[derive(Deserialize)]
struct UsersEnvelope {
    users: Vec<User>,
}

#[derive(Deserialize)]
struct ModulesEnvelope {
    modules: Vec<ModuleMeta>,
}

#[derive(Deserialize)]
struct FieldsEnvelope {
    fields: Vec<FieldMeta>,
}

impl ZohoClient {
    pub(crate) async fn fetch_org(&self) -> Result<Org> {
        let call = Call::new("org", Method::GET, Target::Api(self.path("org")));
        let env: OrgEnvelope = self.t.send_json(&call).await?.ok_or_else(|| Error::malformed("org", "no content"))?;
        env.org.into_iter().next().ok_or_else(|| Error::malformed("org", "empty org list"))
    }

    pub async fn current_user(&self) -> Result<User> {
        let call = Call::new("users", Method::GET, Target::Api(self.path("users"))).query("type", "CurrentUser");
        let env: UsersEnvelope = self.t.send_json(&call).await?.ok_or_else(|| Error::malformed("users", "no content"))?;
        env.users.into_iter().next().ok_or_else(|| Error::malformed("users", "empty user list"))
    }

    pub async fn modules(&self) -> Result<Vec<ModuleMeta>> {
        let call = Call::new("settings.modules", Method::GET, Target::Api(self.path("settings/modules")));
        Ok(self.t.send_json::<ModulesEnvelope>(&call).await?.map(|e| e.modules).unwrap_or_default())
    }

    /// One module, or `None` when Zoho answers 204 (unknown or hidden).
    pub async fn module(&self, api_name: &str) -> Result<Option<ModuleMeta>> {
        let call = Call::new("settings.modules", Method::GET, Target::Api(self.path(&format!("settings/modules/{api_name}"))));
        Ok(self.t.send_json::<ModulesEnvelope>(&call).await?.and_then(|e| e.modules.into_iter().next()))
    }

    /// All fields of a module (`type=all`); empty when Zoho answers 204.
    pub async fn fields(&self, module: &str) -> Result<Vec<FieldMeta>> {
        let call = Call::new("settings.fields", Method::GET, Target::Api(self.path("settings/fields")))
            .query("module", module)
            .query("type", "all");
        Ok(self.t.send_json::<FieldsEnvelope>(&call).await?.map(|e| e.fields).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_flags_from_zoho_shapes() {
        let f: FieldMeta = serde_json::from_value(serde_json::json!({
            "api_name": "Expected_Revenue", "data_type": "formula", "json_type": "double",
            "read_only": true, "unique": {}, "formula": {"return_type": "currency", "expression": "x"}
        }))
        .unwrap();
        assert!(f.is_formula() && !f.unique && !f.writable());
        assert_eq!(f.value_type(), "currency");
        let u: FieldMeta = serde_json::from_value(serde_json::json!({
            "api_name": "parent_id", "data_type": "text", "unique": {"casesensitive": false}
        }))
        .unwrap();
        assert!(u.unique && u.writable());
    }

    #[test]
    fn unreadable_modules() {
        let m = |api: &str, supported: bool, gen: &str| ModuleMeta {
            api_name: api.into(),
            module_name: None,
            singular_label: None,
            plural_label: None,
            id: "1".into(),
            api_supported: supported,
            generated_type: Some(gen.into()),
            status: None,
        };
        assert!(m("Leads", true, "default").unreadable_reason().is_none());
        assert!(m("Notes", true, "default").unreadable_reason().is_some());
        assert!(m("X_Y", true, "linking").unreadable_reason().is_some());
        assert!(m("Visits", false, "default").unreadable_reason().is_some());
    }
}
