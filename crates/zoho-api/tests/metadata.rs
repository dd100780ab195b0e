//! Org, users, modules and fields from the simulator.
mod common;

use common::*;
use zoho_sim::SimConfig;

#[tokio::test]
async fn org_modules_and_fields() {
    let sim = sim(SimConfig::default()).await;
    let c = client(&sim);
    let org = c.org().await.unwrap();
    assert_eq!(org.zgid, sim.zgid());
    assert!(!org.id.is_empty());
    c.org().await.unwrap();
    assert_eq!(calls_to(&sim, "meta.org"), 1, "the org is fetched once");

    let modules = c.modules().await.unwrap();
    let by = |n: &str| modules.iter().find(|m| m.api_name == n).unwrap_or_else(|| panic!("{n} missing"));
    assert!(by("Leads").unreadable_reason().is_none());
    assert_eq!(by("Orders").generated_type.as_deref(), Some("custom"));
    assert!(by("Notes").unreadable_reason().is_some());
    assert!(by("Visits").unreadable_reason().is_some());
    assert!(by("Orders_X_Products").unreadable_reason().is_some());
    assert_eq!(c.module("Orders").await.unwrap().unwrap().api_name, "Orders");

    let fields = c.fields("Orders").await.unwrap();
    let f = |n: &str| fields.iter().find(|x| x.api_name == n).unwrap_or_else(|| panic!("{n} missing"));
    assert!(f("parent_id").unique && f("parent_id").writable());
    assert!(f("Name").system_mandatory);
    assert_eq!(f("Order_Date").data_type, "date");
    assert_eq!(f("Account").lookup_module(), Some("Accounts"));
    assert!(!f("Modified_Time").writable());
    let deals = c.fields("Deals").await.unwrap();
    let er = deals.iter().find(|x| x.api_name == "Expected_Revenue").unwrap();
    assert!(er.is_formula() && !er.writable());
    assert_eq!(er.value_type(), "currency");
    let leads = c.fields("Leads").await.unwrap();
    let langs = leads.iter().find(|x| x.api_name == "Languages").unwrap();
    assert_eq!(langs.data_type, "multiselectpicklist");
    assert!(!langs.pick_list_values.is_empty());
}

#[tokio::test]
async fn current_user_has_an_email() {
    let sim = sim(SimConfig::default()).await;
    let u = client(&sim).current_user().await.unwrap();
    assert!(u.email.unwrap().contains('@'));
}
