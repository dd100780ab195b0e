//! The simulated org's modules and fields: what `/settings/modules` and
//! `/settings/fields` serve, and what every other endpoint validates against.
//!
//! Field shapes follow `fields.json` in Zoho's OAS; the set of modules covers
//! the four standard ones the issue names, the custom `Orders` module with a
//! user-defined unique `parent_id`, and a few modules the API cannot serve
//! (so that clients can prove they skip them).

/// Zoho's `data_type` values that the simulator implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    Bigint,
    Text,
    Email,
    Phone,
    Website,
    Picklist,
    Textarea,
    Integer,
    Double,
    Currency,
    Percent,
    Boolean,
    Date,
    Datetime,
    Lookup,
    Ownerlookup,
    Multiselectpicklist,
    Formula,
    Autonumber,
}

impl DataType {
    const ALL: [DataType; 19] = [
        DataType::Bigint,
        DataType::Text,
        DataType::Email,
        DataType::Phone,
        DataType::Website,
        DataType::Picklist,
        DataType::Textarea,
        DataType::Integer,
        DataType::Double,
        DataType::Currency,
        DataType::Percent,
        DataType::Boolean,
        DataType::Date,
        DataType::Datetime,
        DataType::Lookup,
        DataType::Ownerlookup,
        DataType::Multiselectpicklist,
        DataType::Formula,
        DataType::Autonumber,
    ];

    /// The type whose `data_type` is `s`.
    pub fn parse(s: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Bigint => "bigint",
            DataType::Text => "text",
            DataType::Email => "email",
            DataType::Phone => "phone",
            DataType::Website => "website",
            DataType::Picklist => "picklist",
            DataType::Textarea => "textarea",
            DataType::Integer => "integer",
            DataType::Double => "double",
            DataType::Currency => "currency",
            DataType::Percent => "percent",
            DataType::Boolean => "boolean",
            DataType::Date => "date",
            DataType::Datetime => "datetime",
            DataType::Lookup => "lookup",
            DataType::Ownerlookup => "ownerlookup",
            DataType::Multiselectpicklist => "multiselectpicklist",
            DataType::Formula => "formula",
            DataType::Autonumber => "autonumber",
        }
    }

    /// `json_type` as Zoho reports it (zoho-api.md §10.2).
    pub fn json_type(self) -> &'static str {
        match self {
            DataType::Integer => "integer",
            DataType::Double | DataType::Currency | DataType::Percent => "double",
            DataType::Boolean => "boolean",
            DataType::Lookup | DataType::Ownerlookup => "jsonobject",
            DataType::Multiselectpicklist => "jsonarray",
            _ => "string",
        }
    }
}

#[derive(Debug, Clone)]
pub struct FieldDef {
    pub api_name: &'static str,
    pub label: &'static str,
    pub data_type: DataType,
    /// `system_mandatory`: required on create.
    pub mandatory: bool,
    /// A user-defined unique field (drives DUPLICATE_DATA and upsert matching).
    pub unique: bool,
    /// System fields and formulas: never writable through the API.
    pub read_only: bool,
    /// Target module of a lookup.
    pub lookup_module: Option<&'static str>,
    /// `formula.return_type` for formula fields.
    pub formula_return: Option<DataType>,
    pub picklist: &'static [&'static str],
    pub length: Option<u32>,
    /// Field id, stable across runs.
    pub id: i64,
}

impl FieldDef {
    /// An optional, writable field of `data_type`.
    pub fn plain(api_name: &'static str, label: &'static str, data_type: DataType, id: i64) -> FieldDef {
        FieldDef {
            api_name,
            label,
            data_type,
            mandatory: false,
            unique: false,
            read_only: false,
            lookup_module: None,
            formula_return: None,
            picklist: &[],
            length: match data_type {
                DataType::Text | DataType::Email | DataType::Phone | DataType::Website | DataType::Picklist => Some(255),
                DataType::Textarea => Some(32000),
                _ => None,
            },
            id,
        }
    }

    /// The type values are compared and stored as: a formula's return type,
    /// otherwise the field's own type.
    pub fn value_type(&self) -> DataType {
        self.formula_return.unwrap_or(self.data_type)
    }
}

#[derive(Debug, Clone)]
pub struct ModuleDef {
    pub api_name: &'static str,
    pub module_name: &'static str,
    pub singular_label: &'static str,
    pub plural_label: &'static str,
    pub id: i64,
    /// `default`, `custom`, `linking` or `subform`.
    pub generated_type: &'static str,
    pub api_supported: bool,
    /// Records API, COQL and bulk can serve it (false for Notes, Attachments,
    /// Emails, as in zoho-api.md §7.1).
    pub data_access: bool,
    /// The system-defined duplicate-check field (zoho-api.md §4.5).
    pub system_unique: Option<&'static str>,
    pub fields: Vec<FieldDef>,
}

impl ModuleDef {
    pub fn field(&self, api_name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.api_name == api_name)
    }

    /// Fields checked for duplicates, in Zoho's order: the system field
    /// first, then user-defined unique fields.
    pub fn duplicate_check_fields(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = self.system_unique.into_iter().collect();
        out.extend(self.fields.iter().filter(|f| f.unique).map(|f| f.api_name));
        out
    }
}

const LEAD_SOURCES: &[&str] = &["Advertisement", "Cold Call", "Employee Referral", "Web Download", "Trade Show"];
const LEAD_STATUSES: &[&str] = &["Not Contacted", "Attempted to Contact", "Contacted", "Qualified", "Lost Lead"];
const INDUSTRIES: &[&str] = &["Technology", "Manufacturing", "Retail", "Healthcare", "Finance"];
const RATINGS: &[&str] = &["Acquired", "Active", "Market Failed", "Shut Down"];
const LANGUAGES: &[&str] = &["English", "German", "French", "Spanish", "Hindi"];
const STAGES: &[&str] = &["Qualification", "Needs Analysis", "Proposal", "Negotiation", "Closed Won", "Closed Lost"];
const ORDER_STATUSES: &[&str] = &["New", "Paid", "Shipped", "Cancelled"];

const SURVEY_ANSWERS: [&str; 60] = ["Answer_01", "Answer_02", "Answer_03", "Answer_04", "Answer_05", "Answer_06", "Answer_07", "Answer_08", "Answer_09", "Answer_10", "Answer_11", "Answer_12", "Answer_13", "Answer_14", "Answer_15", "Answer_16", "Answer_17", "Answer_18", "Answer_19", "Answer_20", "Answer_21", "Answer_22", "Answer_23", "Answer_24", "Answer_25", "Answer_26", "Answer_27", "Answer_28", "Answer_29", "Answer_30", "Answer_31", "Answer_32", "Answer_33", "Answer_34", "Answer_35", "Answer_36", "Answer_37", "Answer_38", "Answer_39", "Answer_40", "Answer_41", "Answer_42", "Answer_43", "Answer_44", "Answer_45", "Answer_46", "Answer_47", "Answer_48", "Answer_49", "Answer_50", "Answer_51", "Answer_52", "Answer_53", "Answer_54", "Answer_55", "Answer_56", "Answer_57", "Answer_58", "Answer_59", "Answer_60"];
const SURVEY_LABELS: [&str; 60] = ["Answer 01", "Answer 02", "Answer 03", "Answer 04", "Answer 05", "Answer 06", "Answer 07", "Answer 08", "Answer 09", "Answer 10", "Answer 11", "Answer 12", "Answer 13", "Answer 14", "Answer 15", "Answer 16", "Answer 17", "Answer 18", "Answer 19", "Answer 20", "Answer 21", "Answer 22", "Answer 23", "Answer 24", "Answer 25", "Answer 26", "Answer 27", "Answer 28", "Answer 29", "Answer 30", "Answer 31", "Answer 32", "Answer 33", "Answer 34", "Answer 35", "Answer 36", "Answer 37", "Answer 38", "Answer 39", "Answer 40", "Answer 41", "Answer 42", "Answer 43", "Answer 44", "Answer 45", "Answer 46", "Answer 47", "Answer 48", "Answer 49", "Answer 50", "Answer 51", "Answer 52", "Answer 53", "Answer 54", "Answer 55", "Answer 56", "Answer 57", "Answer 58", "Answer 59", "Answer 60"];

/// Builds field definitions with ids derived from the module id, so that
/// they are stable without a hand-numbered table.
struct Fields {
    module_id: i64,
    out: Vec<FieldDef>,
}

impl Fields {
    fn new(module_id: i64) -> Self {
        let mut f = Fields { module_id, out: Vec::new() };
        f.push("id", "Record Id", DataType::Bigint, |d| d.read_only = true);
        f.push("Owner", "Owner", DataType::Ownerlookup, |d| d.lookup_module = Some("users"));
        f.push("Created_By", "Created By", DataType::Ownerlookup, |d| {
            d.read_only = true;
            d.lookup_module = Some("users");
        });
        f.push("Modified_By", "Modified By", DataType::Ownerlookup, |d| {
            d.read_only = true;
            d.lookup_module = Some("users");
        });
        f.push("Created_Time", "Created Time", DataType::Datetime, |d| d.read_only = true);
        f.push("Modified_Time", "Modified Time", DataType::Datetime, |d| d.read_only = true);
        f
    }

    fn push(&mut self, api_name: &'static str, label: &'static str, data_type: DataType, tweak: impl FnOnce(&mut FieldDef)) -> &mut Self {
        // Module ids differ only in their low digits: spread them out.
        let id = 5_725_767_000_100_000_000 + (self.module_id % 1_000_000_000) * 1000 + self.out.len() as i64;
        let mut def = FieldDef::plain(api_name, label, data_type, id);
        tweak(&mut def);
        self.out.push(def);
        self
    }

    fn plain(&mut self, api_name: &'static str, label: &'static str, data_type: DataType) -> &mut Self {
        self.push(api_name, label, data_type, |_| {})
    }

    fn mandatory(&mut self, api_name: &'static str, label: &'static str, data_type: DataType) -> &mut Self {
        self.push(api_name, label, data_type, |d| d.mandatory = true)
    }

    fn picklist(&mut self, api_name: &'static str, label: &'static str, values: &'static [&'static str]) -> &mut Self {
        self.push(api_name, label, DataType::Picklist, |d| d.picklist = values)
    }

    fn lookup(&mut self, api_name: &'static str, label: &'static str, target: &'static str) -> &mut Self {
        self.push(api_name, label, DataType::Lookup, |d| d.lookup_module = Some(target))
    }

    fn formula(&mut self, api_name: &'static str, label: &'static str, returns: DataType) -> &mut Self {
        self.push(api_name, label, DataType::Formula, |d| {
            d.read_only = true;
            d.formula_return = Some(returns);
        })
    }

    fn done(&mut self) -> Vec<FieldDef> {
        std::mem::take(&mut self.out)
    }
}

fn module(api_name: &'static str, singular: &'static str, id: i64, generated_type: &'static str, system_unique: Option<&'static str>, fields: Vec<FieldDef>) -> ModuleDef {
    ModuleDef {
        api_name,
        module_name: api_name,
        singular_label: singular,
        plural_label: api_name,
        id,
        generated_type,
        api_supported: true,
        data_access: true,
        system_unique,
        fields,
    }
}

/// The org's module catalogue.
pub fn catalog() -> Vec<ModuleDef> {
    use DataType::*;
    let leads_id = 5_725_767_000_000_002_175;
    let contacts_id = 5_725_767_000_000_002_179;
    let accounts_id = 5_725_767_000_000_002_177;
    let deals_id = 5_725_767_000_000_002_181;
    let orders_id = 5_725_767_000_000_412_001;

    let leads = Fields::new(leads_id)
        .plain("First_Name", "First Name", Text)
        .mandatory("Last_Name", "Last Name", Text)
        .plain("Company", "Company", Text)
        .plain("Email", "Email", Email)
        .plain("Phone", "Phone", Phone)
        .plain("Website", "Website", Website)
        .picklist("Lead_Source", "Lead Source", LEAD_SOURCES)
        .picklist("Lead_Status", "Lead Status", LEAD_STATUSES)
        .picklist("Industry", "Industry", INDUSTRIES)
        .picklist("Rating", "Rating", RATINGS)
        .plain("Annual_Revenue", "Annual Revenue", Currency)
        .plain("No_of_Employees", "No. of Employees", Integer)
        .plain("Email_Opt_Out", "Email Opt Out", Boolean)
        .push("Languages", "Languages", Multiselectpicklist, |d| d.picklist = LANGUAGES)
        .plain("Last_Contacted_On", "Last Contacted On", Date)
        .plain("Description", "Description", Textarea)
        .plain("Converted__s", "Converted", Boolean)
        .formula("Days_Open", "Days Open", Double)
        .done();

    let contacts = Fields::new(contacts_id)
        .plain("First_Name", "First Name", Text)
        .mandatory("Last_Name", "Last Name", Text)
        .plain("Email", "Email", Email)
        .plain("Phone", "Phone", Phone)
        .lookup("Account_Name", "Account Name", "Accounts")
        .plain("Mailing_City", "Mailing City", Text)
        .plain("Date_of_Birth", "Date of Birth", Date)
        .picklist("Lead_Source", "Lead Source", LEAD_SOURCES)
        .plain("Email_Opt_Out", "Email Opt Out", Boolean)
        .plain("Description", "Description", Textarea)
        .done();

    let accounts = Fields::new(accounts_id)
        .mandatory("Account_Name", "Account Name", Text)
        .plain("Website", "Website", Website)
        .plain("Phone", "Phone", Phone)
        .picklist("Industry", "Industry", INDUSTRIES)
        .plain("Annual_Revenue", "Annual Revenue", Currency)
        .plain("Employees", "Employees", Integer)
        .plain("Billing_City", "Billing City", Text)
        .lookup("Parent_Account", "Parent Account", "Accounts")
        .plain("Description", "Description", Textarea)
        .done();

    let deals = Fields::new(deals_id)
        .mandatory("Deal_Name", "Deal Name", Text)
        .plain("Amount", "Amount", Currency)
        .push("Stage", "Stage", Picklist, |d| {
            d.mandatory = true;
            d.picklist = STAGES;
        })
        .mandatory("Closing_Date", "Closing Date", Date)
        .lookup("Account_Name", "Account Name", "Accounts")
        .lookup("Contact_Name", "Contact Name", "Contacts")
        .plain("Probability", "Probability (%)", Percent)
        .formula("Expected_Revenue", "Expected Revenue", Currency)
        .plain("Description", "Description", Textarea)
        .done();

    let orders = Fields::new(orders_id)
        .mandatory("Name", "Order Name", Text)
        .push("parent_id", "Legacy Order Id", Text, |d| {
            d.unique = true;
            d.length = Some(64);
        })
        .plain("Customer_Name", "Customer Name", Text)
        .plain("Order_Date", "Order Date", Date)
        .plain("Amount", "Amount", Currency)
        .plain("Quantity", "Quantity", Integer)
        .picklist("Status", "Status", ORDER_STATUSES)
        .plain("Paid", "Paid", Boolean)
        .plain("Shipped_At", "Shipped At", Datetime)
        .lookup("Account", "Account", "Accounts")
        .done();

    // A wide custom module: real orgs have modules past the 50 fields one
    // list call may name.
    let surveys_id = 5_725_767_000_000_413_001;
    let mut surveys_fields = Fields::new(surveys_id);
    surveys_fields.mandatory("Name", "Survey Name", Text);
    for (api_name, label) in SURVEY_ANSWERS.iter().zip(SURVEY_LABELS) {
        surveys_fields.plain(api_name, label, Text);
    }
    let surveys = surveys_fields.done();

    let mut out = vec![
        module("Leads", "Lead", leads_id, "default", Some("Email"), leads),
        module("Contacts", "Contact", contacts_id, "default", Some("Email"), contacts),
        module("Accounts", "Account", accounts_id, "default", Some("Account_Name"), accounts),
        module("Deals", "Deal", deals_id, "default", Some("Deal_Name"), deals),
        module("Orders", "Order", orders_id, "custom", Some("Name"), orders),
        module("Surveys", "Survey", surveys_id, "custom", Some("Name"), surveys),
    ];
    out[1].plural_label = "Contacts";

    // Modules listed by /settings/modules that no data API serves.
    for (api_name, singular, id) in [
        ("Notes", "Note", 5_725_767_000_000_002_191_i64),
        ("Attachments", "Attachment", 5_725_767_000_000_002_193),
        ("Emails", "Email", 5_725_767_000_000_002_195),
    ] {
        let mut m = module(api_name, singular, id, "default", None, Fields::new(id).done());
        m.data_access = false;
        out.push(m);
    }
    let mut linking = module("Orders_X_Products", "Orders X Products", 5_725_767_000_000_412_101, "linking", None, Fields::new(5_725_767_000_000_412_101).done());
    linking.data_access = false;
    out.push(linking);
    let mut unsupported = module("Visits", "Visit", 5_725_767_000_000_002_197, "default", None, Fields::new(5_725_767_000_000_002_197).done());
    unsupported.api_supported = false;
    unsupported.data_access = false;
    out.push(unsupported);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_has_user_unique_parent_id_after_system_name() {
        let cat = catalog();
        let orders = cat.iter().find(|m| m.api_name == "Orders").unwrap();
        assert_eq!(orders.duplicate_check_fields(), vec!["Name", "parent_id"]);
        assert_eq!(orders.generated_type, "custom");
    }

    #[test]
    fn field_ids_are_unique() {
        let mut ids: Vec<i64> = catalog().iter().flat_map(|m| m.fields.iter().map(|f| f.id)).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
