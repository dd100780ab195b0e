//! Deterministic seed data: the same config gives the same records, ids and
//! times. Created/Modified times are spread over 2025.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

use crate::clock::fmt_dt;
use crate::schema::{DataType, ModuleDef};
use crate::state::{display_name, App, State, USERS};
use crate::values::apply_formulas;
use crate::write::{alloc_id, blank_record};

const FIRST: &[&str] = &[
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William", "Barbara", "Richard", "Susan",
    "Joseph", "Jessica", "Thomas", "Sarah", "Priya", "Arjun", "Ananya", "Vikram", "Mei", "Hiro", "Sofia", "Lucas", "Amara", "Kwame", "Olga", "Mateo",
];
const LAST: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson",
    "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Iyer", "Sharma", "Nakamura", "Chen", "Okafor", "Novak", "O'Brien", "Schmidt", "Rossi", "Dubois",
];
const COMPANY_A: &[&str] = &["Zylker", "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Tyrell", "Cyberdyne", "Soylent", "Hooli", "Vandelay", "Wonka", "Gringotts", "Oscorp"];
const COMPANY_B: &[&str] = &["Systems", "Industries", "Labs", "Traders", "Logistics", "Foods", "Holdings", "Analytics", "Motors", "Textiles"];
const CITIES: &[&str] = &["Chennai", "Bengaluru", "Austin", "Berlin", "London", "Tokyo", "Sydney", "Toronto", "Paris", "Madrid", "Dubai", "Singapore"];
const DEAL_WORDS: &[&str] = &["Renewal", "Expansion", "Pilot", "Migration", "Upgrade", "Onboarding", "Support Plan", "License"];
const TEXTS: &[&str] = &[
    "Met at the trade show; wants a follow-up call.",
    "Asked for pricing on the enterprise plan.",
    "Prefers email.\nCall only after 4 pm.",
    "Referred by an existing customer, \"very keen\".",
    "",
];

fn module_seed(base: u64, module: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in module.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h ^ base
}

fn year_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

fn pick<'a>(rng: &mut ChaCha8Rng, xs: &'a [&'a str]) -> &'a str {
    xs[rng.gen_range(0..xs.len())]
}

fn pick_value(rng: &mut ChaCha8Rng, m: &ModuleDef, field: &str) -> Value {
    let vals = m.field(field).map(|f| f.picklist).unwrap_or(&[]);
    if vals.is_empty() {
        Value::Null
    } else {
        Value::String(pick(rng, vals).to_string())
    }
}

fn random_id(st: &State, rng: &mut ChaCha8Rng, module: &str) -> Option<i64> {
    let recs = &st.store.get(module)?.records;
    if recs.is_empty() {
        return None;
    }
    let i = rng.gen_range(0..recs.len());
    recs.keys().nth(i).copied()
}

fn lookup(st: &State, module: &str, id: Option<i64>) -> Value {
    id.and_then(|id| st.store.get(module)?.records.get(&id).map(|r| json!({"id": id.to_string(), "name": display_name(module, r)})))
        .unwrap_or(Value::Null)
}

fn company(rng: &mut ChaCha8Rng, i: usize) -> String {
    format!("{} {} {}", pick(rng, COMPANY_A), pick(rng, COMPANY_B), i + 1)
}

fn domain(company: &str) -> String {
    company.split_whitespace().next().unwrap_or("example").to_lowercase() + ".example.com"
}

fn phone(rng: &mut ChaCha8Rng) -> String {
    format!("+1-555-{:03}-{:04}", rng.gen_range(100..999), rng.gen_range(0..10_000))
}

/// Seeds every module named in the config, parents before children so
/// that lookups point at seeded records.
pub fn seed_all(app: &App, st: &mut State) {
    let order = ["Accounts", "Contacts", "Deals", "Leads", "Orders"];
    let mut names: Vec<String> = order.iter().map(|s| s.to_string()).collect();
    for k in app.cfg.seeds.keys() {
        if !names.contains(k) {
            names.push(k.clone());
        }
    }
    for name in names {
        let n = app.cfg.seeds.get(&name).copied().unwrap_or(0);
        if n == 0 {
            continue;
        }
        if let Some(m) = app.data_module(&name) {
            seed_module(app, st, &m, n);
        }
    }
}

fn seed_module(app: &App, st: &mut State, m: &ModuleDef, n: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(module_seed(app.cfg.rng_seed, m.api_name));
    let span = Duration::days(364).num_seconds();
    let now = app.now();
    for i in 0..n {
        let created = year_start() + Duration::seconds(span * i as i64 / n.max(1) as i64 + rng.gen_range(0..600));
        let end = Utc.with_ymd_and_hms(2025, 12, 31, 12, 0, 0).unwrap();
        let modified = (created + Duration::seconds(rng.gen_range(0..(30 * 86_400)))).min(end).max(created);
        let owner = USERS[rng.gen_range(0..USERS.len())].owner_json();
        let creator = USERS[rng.gen_range(0..USERS.len())].owner_json();
        let id = alloc_id(st, m);
        let mut rec = blank_record(m);
        rec.insert("id".into(), json!(id.to_string()));
        rec.insert("Owner".into(), owner);
        rec.insert("Created_By".into(), creator.clone());
        rec.insert("Modified_By".into(), creator);
        rec.insert("Created_Time".into(), json!(fmt_dt(created, app.tz)));
        rec.insert("Modified_Time".into(), json!(fmt_dt(modified, app.tz)));
        let first = pick(&mut rng, FIRST);
        let last = pick(&mut rng, LAST);
        let comp = company(&mut rng, i);
        let email = format!("{}.{}{}@{}", first.to_lowercase(), last.to_lowercase().replace('\'', ""), i + 1, domain(&comp));
        let day = |rng: &mut ChaCha8Rng| {
            (NaiveDate::from_ymd_opt(2025, 1, 1).unwrap() + Duration::days(rng.gen_range(0..365))).format("%Y-%m-%d").to_string()
        };
        let mut set = |k: &str, v: Value| {
            if m.field(k).is_some() {
                rec.insert(k.to_string(), v);
            }
        };
        match m.api_name {
            "Leads" => {
                set("First_Name", json!(first));
                set("Last_Name", json!(last));
                set("Company", json!(comp));
                set("Email", json!(email));
                set("Phone", json!(phone(&mut rng)));
                set("Website", json!(format!("https://www.{}", domain(&comp))));
                set("Lead_Source", pick_value(&mut rng, m, "Lead_Source"));
                set("Lead_Status", pick_value(&mut rng, m, "Lead_Status"));
                set("Industry", pick_value(&mut rng, m, "Industry"));
                set("Rating", pick_value(&mut rng, m, "Rating"));
                set("Annual_Revenue", json!(rng.gen_range(10..5000) as f64 * 1000.0));
                set("No_of_Employees", json!(rng.gen_range(1..5000)));
                set("Email_Opt_Out", json!(rng.gen_bool(0.1)));
                let mut langs: Vec<&str> = m.field("Languages").map(|f| f.picklist.to_vec()).unwrap_or_default();
                langs.shuffle(&mut rng);
                let k = rng.gen_range(0..3);
                set("Languages", json!(langs[..k.min(langs.len())]));
                set("Last_Contacted_On", json!(day(&mut rng)));
                set("Description", json!(pick(&mut rng, TEXTS)));
                set("Converted__s", json!(rng.gen_bool(0.05)));
            }
            "Contacts" => {
                let acc = random_id(st, &mut rng, "Accounts");
                set("First_Name", json!(first));
                set("Last_Name", json!(last));
                set("Email", json!(email));
                set("Phone", json!(phone(&mut rng)));
                set("Account_Name", lookup(st, "Accounts", acc));
                set("Mailing_City", json!(pick(&mut rng, CITIES)));
                set("Date_of_Birth", json!(format!("{}-{:02}-{:02}", rng.gen_range(1950..2000), rng.gen_range(1..13), rng.gen_range(1..29))));
                set("Lead_Source", pick_value(&mut rng, m, "Lead_Source"));
                set("Email_Opt_Out", json!(rng.gen_bool(0.1)));
                set("Description", json!(pick(&mut rng, TEXTS)));
            }
            "Accounts" => {
                let parent = if i > 0 && rng.gen_bool(0.2) { random_id(st, &mut rng, "Accounts") } else { None };
                set("Account_Name", json!(comp));
                set("Website", json!(format!("https://www.{}", domain(&comp))));
                set("Phone", json!(phone(&mut rng)));
                set("Industry", pick_value(&mut rng, m, "Industry"));
                set("Annual_Revenue", json!(rng.gen_range(100..90_000) as f64 * 1000.0));
                set("Employees", json!(rng.gen_range(5..20_000)));
                set("Billing_City", json!(pick(&mut rng, CITIES)));
                set("Parent_Account", lookup(st, "Accounts", parent));
                set("Description", json!(pick(&mut rng, TEXTS)));
            }
            "Deals" => {
                let acc = random_id(st, &mut rng, "Accounts");
                let con = random_id(st, &mut rng, "Contacts");
                let acc_name = lookup(st, "Accounts", acc);
                let base = acc_name.get("name").and_then(|v| v.as_str()).map(String::from).unwrap_or_else(|| comp.clone());
                set("Deal_Name", json!(format!("{} {} #{}", base, pick(&mut rng, DEAL_WORDS), i + 1)));
                set("Amount", json!(rng.gen_range(1..500) as f64 * 250.0));
                set("Stage", pick_value(&mut rng, m, "Stage"));
                set("Closing_Date", json!(day(&mut rng)));
                set("Account_Name", acc_name);
                set("Contact_Name", lookup(st, "Contacts", con));
                set("Probability", json!(rng.gen_range(0..11) * 10));
                set("Description", json!(pick(&mut rng, TEXTS)));
            }
            "Orders" => {
                let acc = random_id(st, &mut rng, "Accounts");
                let qty = rng.gen_range(1..50);
                set("Name", json!(format!("Order {:06}", i + 1)));
                set("parent_id", json!(format!("ORD-{:06}", i + 1)));
                set("Customer_Name", json!(format!("{first} {last}")));
                set("Order_Date", json!(day(&mut rng)));
                set("Amount", json!(qty as f64 * rng.gen_range(5..400) as f64 + 0.5));
                set("Quantity", json!(qty));
                set("Status", pick_value(&mut rng, m, "Status"));
                set("Paid", json!(rng.gen_bool(0.7)));
                let shipped = created + Duration::seconds(rng.gen_range(3_600..(10 * 86_400)));
                set("Shipped_At", if rng.gen_bool(0.6) { json!(fmt_dt(shipped, app.tz)) } else { Value::Null });
                set("Account", lookup(st, "Accounts", acc));
            }
            _ => {
                for f in &m.fields {
                    if f.read_only || rec.get(f.api_name).is_some_and(|v| !v.is_null()) {
                        continue;
                    }
                    let v = match f.data_type {
                        DataType::Text => json!(format!("{} {}", f.label, i + 1)),
                        _ => continue,
                    };
                    rec.insert(f.api_name.to_string(), v);
                }
            }
        }
        apply_formulas(m.api_name, &mut rec, now);
        let _: &mut Map<String, Value> = &mut rec;
        st.store.entry(m.api_name.to_string()).or_default().insert(id, rec);
    }
    // Seeding runs first, so every record's formulas are now today's: the
    // first export need not compute them all again.
    st.formula_day.insert(m.api_name.to_string(), now.timestamp().div_euclid(86_400));
}
