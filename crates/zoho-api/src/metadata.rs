//! Org, current user, modules and fields (zoho-api.md §10–§11).

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::ZohoClient;
use crate::error::{Error, Result};
use crate::http::{Call, Target};
use crate::wire;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Org {
    #[serde(deserialize_with = "wire::id")]
    pub id: String,
    /// Goes into `X-CRM-ORG` on bulk-write uploads.
    #[serde(deserialize_with = "wire::id")]
    pub zgid: String,
    #[serde(default, deserialize_with = "wire::opt")]
    pub company_name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub time_zone: Option<String>,
    /// A label such as `US Dollar - USD` (an object of the same name in
    /// field metadata means something else).
    #[serde(default, deserialize_with = "wire::opt")]
    pub currency: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "wire::opt")]
    pub org_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct User {
    #[serde(deserialize_with = "wire::id")]
    pub id: String,
    #[serde(default, deserialize_with = "wire::opt")]
    pub full_name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ModuleMeta {
    pub api_name: String,
    #[serde(default, deserialize_with = "wire::opt")]
    pub module_name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub singular_label: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub plural_label: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_id")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "wire::flag")]
    pub api_supported: bool,
    #[serde(default, deserialize_with = "wire::opt")]
    pub generated_type: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
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

/// The module a lookup points to. Zoho fills `module` and may leave the
/// lookup's own `api_name`, `id` and `display_label` null.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LookupTarget {
    #[serde(default, deserialize_with = "wire::opt")]
    pub api_name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_id")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Lookup {
    #[serde(default, deserialize_with = "wire::opt")]
    pub module: Option<LookupTarget>,
}

/// What a computed field (formula or rollup summary) returns.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Computed {
    #[serde(default, deserialize_with = "wire::opt")]
    pub return_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PickListValue {
    #[serde(default, deserialize_with = "wire::or_default")]
    pub display_value: String,
    #[serde(default, deserialize_with = "wire::opt")]
    pub actual_value: Option<String>,
}

impl PickListValue {
    /// The value the API reads and writes.
    pub fn api_value(&self) -> &str {
        self.actual_value.as_deref().unwrap_or(&self.display_value)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FieldMeta {
    pub api_name: String,
    #[serde(default, deserialize_with = "wire::opt")]
    pub display_label: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_id")]
    pub id: Option<String>,
    pub data_type: String,
    #[serde(default, deserialize_with = "wire::opt")]
    pub json_type: Option<String>,
    #[serde(default, deserialize_with = "wire::flag")]
    pub system_mandatory: bool,
    #[serde(default, deserialize_with = "wire::flag")]
    pub read_only: bool,
    #[serde(default, deserialize_with = "wire::flag")]
    pub field_read_only: bool,
    /// Zoho sends `{}` for "not unique" and an object of options otherwise.
    #[serde(default, deserialize_with = "wire::flag")]
    pub unique: bool,
    #[serde(default, deserialize_with = "wire::opt")]
    pub formula: Option<Computed>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub rollup_summary: Option<Computed>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub lookup: Option<Lookup>,
    #[serde(default, deserialize_with = "wire::opt_num")]
    pub length: Option<u32>,
    #[serde(default, deserialize_with = "wire::opt_num")]
    pub decimal_place: Option<u32>,
    #[serde(default, deserialize_with = "wire::or_default")]
    pub pick_list_values: Vec<PickListValue>,
    #[serde(default, deserialize_with = "wire::flag")]
    pub virtual_field: bool,
}

impl FieldMeta {
    pub fn is_formula(&self) -> bool {
        self.data_type == "formula"
    }

    /// Formulas and rollup summaries: Zoho computes them, and their values
    /// change without moving `Modified_Time`.
    pub fn is_computed(&self) -> bool {
        matches!(self.data_type.as_str(), "formula" | "rollup_summary")
    }

    /// The type values of this field have: a computed field's return type
    /// (when Zoho names one), else its own.
    pub fn value_type(&self) -> &str {
        let computed = match self.data_type.as_str() {
            "formula" => self.formula.as_ref(),
            "rollup_summary" => self.rollup_summary.as_ref(),
            _ => None,
        };
        computed.and_then(|c| c.return_type.as_deref()).unwrap_or(&self.data_type)
    }

    /// The module a lookup field points to, when Zoho names it.
    pub fn lookup_module(&self) -> Option<&str> {
        self.lookup.as_ref()?.module.as_ref()?.api_name.as_deref()
    }

    /// Whether the API may write this field.
    pub fn writable(&self) -> bool {
        !(self.read_only || self.field_read_only || self.is_computed() || self.virtual_field)
    }
}

/// `GET org`: the org, in a one-element list.
#[derive(Debug, Deserialize, Serialize)]
pub struct OrgReply {
    #[serde(default, deserialize_with = "wire::or_default")]
    pub org: Vec<Org>,
}

/// `GET users`.
#[derive(Debug, Deserialize, Serialize)]
pub struct UsersReply {
    #[serde(default, deserialize_with = "wire::or_default")]
    pub users: Vec<User>,
}

/// `GET settings/modules` and `GET settings/modules/{api_name}`.
#[derive(Debug, Deserialize, Serialize)]
pub struct ModulesReply {
    #[serde(default, deserialize_with = "wire::or_default")]
    pub modules: Vec<ModuleMeta>,
}

/// `GET settings/fields`.
#[derive(Debug, Deserialize, Serialize)]
pub struct FieldsReply {
    #[serde(default, deserialize_with = "wire::or_default")]
    pub fields: Vec<FieldMeta>,
}

impl ZohoClient {
    pub(crate) async fn fetch_org(&self) -> Result<Org> {
        let call = Call::new("org", Method::GET, Target::Api(self.path("org")));
        let env: OrgReply = self.t.send_json(&call).await?.ok_or_else(|| Error::malformed("org", "no content"))?;
        env.org.into_iter().next().ok_or_else(|| Error::malformed("org", "empty org list"))
    }

    pub async fn current_user(&self) -> Result<User> {
        let call = Call::new("users", Method::GET, Target::Api(self.path("users"))).query("type", "CurrentUser");
        let env: UsersReply = self.t.send_json(&call).await?.ok_or_else(|| Error::malformed("users", "no content"))?;
        env.users.into_iter().next().ok_or_else(|| Error::malformed("users", "empty user list"))
    }

    pub async fn modules(&self) -> Result<Vec<ModuleMeta>> {
        let call = Call::new("settings.modules", Method::GET, Target::Api(self.path("settings/modules")));
        Ok(self.t.send_json::<ModulesReply>(&call).await?.map(|e| e.modules).unwrap_or_default())
    }

    /// One module, or `None` when Zoho answers 204 (unknown or hidden).
    /// Zoho's documented reply lists several modules: take the one asked for.
    pub async fn module(&self, api_name: &str) -> Result<Option<ModuleMeta>> {
        let call = Call::new("settings.modules", Method::GET, Target::Api(self.path(&format!("settings/modules/{api_name}"))));
        let modules = self.t.send_json::<ModulesReply>(&call).await?.map(|e| e.modules).unwrap_or_default();
        let single = modules.len() == 1;
        Ok(modules.into_iter().find(|m| single || m.api_name.eq_ignore_ascii_case(api_name)))
    }

    /// All fields of a module (`type=all`); empty when Zoho answers 204.
    pub async fn fields(&self, module: &str) -> Result<Vec<FieldMeta>> {
        let call = Call::new("settings.fields", Method::GET, Target::Api(self.path("settings/fields")))
            .query("module", module)
            .query("type", "all");
        Ok(self.t.send_json::<FieldsReply>(&call).await?.map(|e| e.fields).unwrap_or_default())
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
            id: Some("1".into()),
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
