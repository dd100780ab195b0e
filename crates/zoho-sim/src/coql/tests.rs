use serde_json::{json, Map, Value};

use super::*;
use crate::schema::{catalog, ModuleDef};

fn module(name: &str) -> ModuleDef {
    catalog().into_iter().find(|m| m.api_name == name).unwrap()
}

fn rec(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

const P: &str = "57257670000010000";

fn lead_rows() -> Vec<Map<String, Value>> {
    // Deliberately not in id order: execute must sort.
    vec![
        rec(
            json!({"id": format!("{P}03"), "Last_Name": "smith", "Company": null, "No_of_Employees": null, "Languages": [],
            "Modified_Time": "2024-12-31T23:00:00-02:00", "Email_Opt_Out": false, "Converted__s": false,
            "Owner": {"id": "111", "name": "Alice", "email": "alice@example.com"}}),
        ),
        rec(
            json!({"id": format!("{P}01"), "Last_Name": "Smith", "First_Name": "Ann", "Company": "Acme", "Email": "ann@acme.com",
            "Lead_Source": "Cold Call", "Annual_Revenue": 1000.5, "No_of_Employees": 10, "Email_Opt_Out": false,
            "Languages": ["English", "German"], "Last_Contacted_On": "2025-01-15", "Modified_Time": "2025-01-10T10:00:00+05:30",
            "Owner": {"id": "111", "name": "Alice", "email": "alice@example.com"}, "Description": "long text", "Days_Open": 3.0}),
        ),
        rec(
            json!({"id": format!("{P}02"), "Last_Name": "O'Brien", "Company": "'); drop table leads; --", "Email": null,
            "Annual_Revenue": 50, "No_of_Employees": 200, "Email_Opt_Out": true, "Languages": ["French"],
            "Last_Contacted_On": "2024-12-01", "Modified_Time": "2025-01-10T04:00:00+00:00",
            "Owner": {"id": "222", "name": "Bob", "email": "bob@example.com"}, "Days_Open": 1.5}),
        ),
        rec(
            json!({"id": format!("{P}04"), "Last_Name": "Converted", "Converted__s": true, "Company": "Acme",
            "Owner": {"id": "222", "name": "Bob", "email": "bob@example.com"}}),
        ),
    ]
}

fn no_lookup(_: &str, _: &str) -> Option<Map<String, Value>> {
    None
}

fn run(q: &str) -> Result<CoqlOutput, CoqlError> {
    let rows = lead_rows();
    let refs: Vec<&Map<String, Value>> = rows.iter().collect();
    execute(&parse(q)?, &module("Leads"), &refs, &no_lookup)
}

/// The last two digits of each returned id.
fn hits(where_: &str) -> Vec<u32> {
    let out = run(&format!("select Last_Name from Leads where {where_}")).unwrap_or_else(|e| panic!("{where_}: {e}"));
    out.rows.iter().map(|r| r["id"].as_str().unwrap()[P.len()..].parse().unwrap()).collect()
}

fn err(q: &str) -> CoqlError {
    match run(q) {
        Ok(o) => panic!("expected an error for {q}, got {:?}", o.rows),
        Err(e) => e,
    }
}

fn err_where(where_: &str) -> CoqlError {
    err(&format!("select Last_Name from Leads where {where_}"))
}

fn assert_invalid(where_: &str) -> CoqlError {
    let e = err_where(where_);
    assert_eq!(e.code, "INVALID_QUERY", "{where_}: {e}");
    assert_eq!(e.status, 400);
    e
}

// ---------- parsing ----------

#[test]
fn parses_a_full_query() {
    let q =
        parse("select id, Last_Name, Account_Name.Account_Name from Leads where Last_Name = 'x' order by Modified_Time desc, id limit 10 offset 20").unwrap();
    assert_eq!(
        q.select,
        vec![
            SelectItem::Field("id".into()),
            SelectItem::Field("Last_Name".into()),
            SelectItem::Field("Account_Name.Account_Name".into())
        ]
    );
    assert_eq!(q.module, "Leads");
    assert_eq!(q.cvid, None);
    assert_eq!(
        q.filter,
        Cond::Cmp {
            field: "Last_Name".into(),
            op: CmpOp::Eq,
            value: Literal::Str("x".into())
        }
    );
    assert_eq!(
        q.order_by,
        vec![
            OrderItem {
                field: "Modified_Time".into(),
                ascending: false
            },
            OrderItem {
                field: "id".into(),
                ascending: true
            }
        ]
    );
    assert_eq!((q.limit, q.offset), (10, 20));
}

#[test]
fn defaults_limit_200_offset_0() {
    let q = parse("select id from Leads where id is not null").unwrap();
    assert_eq!((q.limit, q.offset), (200, 0));
}

#[test]
fn keywords_are_case_insensitive() {
    let q = parse("SeLeCt id FROM Leads WhErE Last_Name IS NOT NULL AnD id BETWEEN 1 AND 2 ORDER BY id DESC LIMIT 5 OFFSET 1").unwrap();
    assert_eq!(q.limit, 5);
    assert!(!q.order_by[0].ascending);
    assert!(matches!(q.filter, Cond::And(..)));
}

#[test]
fn both_limit_forms() {
    let q = parse("select id from Leads where id is not null limit 5, 10").unwrap();
    assert_eq!((q.offset, q.limit), (5, 10));
    let q = parse("select id from Leads where id is not null limit 10 offset 5").unwrap();
    assert_eq!((q.offset, q.limit), (5, 10));
}

#[test]
fn pairwise_nesting_is_accepted() {
    for w in [
        "((Last_Name = 'a' and Company = 'b') and Email = 'c')",
        "(Last_Name = 'a' and (Company = 'b' and Email = 'c'))",
        "(Last_Name = 'a' and Company = 'b') or Email = 'c'",
        "Last_Name = 'a' or (Company = 'b' and Email = 'c')",
        "(Last_Name = 'a')",
        "((Last_Name = 'a'))",
    ] {
        parse(&format!("select id from Leads where {w}")).unwrap_or_else(|e| panic!("{w}: {e}"));
    }
    let q = parse("select id from Leads where ((Last_Name = 'a' and Company = 'b') and Email = 'c')").unwrap();
    assert_eq!(q.filter.criteria_count(), 3);
    assert!(matches!(&q.filter, Cond::And(l, _) if matches!(**l, Cond::And(..))));
}

#[test]
fn flat_chains_are_syntax_errors() {
    for w in [
        "Last_Name = 'a' and Company = 'b' and Email = 'c'",
        "Last_Name = 'a' or Company = 'b' and Email = 'c'",
        "(Last_Name = 'a' and Company = 'b' or Email = 'c')",
    ] {
        let e = parse(&format!("select id from Leads where {w}")).unwrap_err();
        assert_eq!(e.code, "SYNTAX_ERROR", "{w}");
    }
    let e = parse("select id from Leads where Last_Name = 'a' and Company = 'b' and Email = 'c'").unwrap_err();
    assert_eq!(e.details["near"], "and");
    assert_eq!(e.details["line"], 1);
    assert_eq!(e.details["column"], 62);
}

#[test]
fn where_is_mandatory() {
    for q in ["select id from Leads", "select id from Leads order by id", "select id from Leads limit 10"] {
        let e = parse(q).unwrap_err();
        assert_eq!(e.code, "SYNTAX_ERROR", "{q}");
        assert_eq!(e.details["clause"], "where");
    }
    // Reported before the module is looked at.
    assert_eq!(parse("select id from Nope").unwrap_err().code, "SYNTAX_ERROR");
}

#[test]
fn star_is_a_syntax_error() {
    assert_eq!(parse("select * from Leads where id is not null").unwrap_err().code, "SYNTAX_ERROR");
}

#[test]
fn quoted_identifiers_in_select_and_order() {
    let q = parse("select 'Last_Name', 'Account_Name.Account_Name' from Leads where id is not null order by 'Last_Name' desc").unwrap();
    assert_eq!(q.select[0], SelectItem::Field("Last_Name".into()));
    assert_eq!(q.select[1], SelectItem::Field("Account_Name.Account_Name".into()));
    assert_eq!(q.order_by[0].field, "Last_Name");
    // A quoted name on the left of a comparison is not a column.
    assert_eq!(parse("select id from Leads where 'Last_Name' = 'x'").unwrap_err().code, "SYNTAX_ERROR");
}

#[test]
fn reserved_words_need_quotes() {
    assert_eq!(parse("select from from Leads where id is not null").unwrap_err().code, "SYNTAX_ERROR");
}

#[test]
fn doubled_quote_escapes_a_quote() {
    let q = parse("select id from Leads where Last_Name = 'O''Brien'").unwrap();
    assert_eq!(
        q.filter,
        Cond::Cmp {
            field: "Last_Name".into(),
            op: CmpOp::Eq,
            value: Literal::Str("O'Brien".into())
        }
    );
    assert_eq!(hits("Last_Name = 'O''Brien'"), vec![2]);
}

#[test]
fn backslash_quote_is_a_syntax_error() {
    let e = parse(r"select id from Leads where Last_Name = 'O\'Brien'").unwrap_err();
    assert_eq!(e.code, "SYNTAX_ERROR");
    // Would otherwise close the string early and smuggle in `or …`.
    let e = parse(r"select id from Leads where Last_Name = 'x\' or id is not null or Last_Name = '").unwrap_err();
    assert_eq!(e.code, "SYNTAX_ERROR");
}

#[test]
fn unterminated_string_is_a_syntax_error() {
    assert_eq!(parse("select id from Leads where Last_Name = 'abc").unwrap_err().code, "SYNTAX_ERROR");
}

#[test]
fn injection_text_is_just_a_value() {
    assert_eq!(hits("Company = '''); drop table leads; --'"), vec![2]);
    assert_eq!(hits("Company = '''); drop'"), Vec::<u32>::new());
}

#[test]
fn trailing_garbage_is_a_syntax_error() {
    for q in [
        "select id from Leads where id is not null;",
        "select id from Leads where id is not null limit 5 7",
        "select id from Leads where Last_Name <> 'a'",
    ] {
        assert_eq!(parse(q).unwrap_err().code, "SYNTAX_ERROR", "{q}");
    }
}

#[test]
fn negative_numbers() {
    let q = parse("select id from Leads where Annual_Revenue > -5.5").unwrap();
    assert_eq!(
        q.filter,
        Cond::Cmp {
            field: "Annual_Revenue".into(),
            op: CmpOp::Gt,
            value: Literal::Num("-5.5".into())
        }
    );
    assert_eq!(hits("Annual_Revenue > -5.5"), vec![1, 2]);
}

#[test]
fn custom_view_parses_but_is_rejected() {
    let q = parse("select id from Leads#5725767000000087501 where id is not null").unwrap();
    assert_eq!(q.module, "Leads");
    assert_eq!(q.cvid.as_deref(), Some("5725767000000087501"));
    assert_eq!(err("select id from Leads#5725767000000087501 where id is not null").code, "INVALID_QUERY");
}

#[test]
fn aggregates_run_over_the_where_without_group_by_aliases_or_mixed_fields() {
    let q = parse("select COUNT(id) from Leads where id is not null").unwrap();
    assert_eq!(
        q.select,
        vec![SelectItem::Aggregate {
            func: "COUNT".into(),
            field: "id".into()
        }]
    );
    // Three live leads (the converted one is left out); MAX compares
    // instants, not text: 10:00+05:30 is after 04:00Z.
    let out = run("select COUNT(id), MAX(Modified_Time), MIN(Modified_Time), SUM(Annual_Revenue), COUNT(Email) from Leads where id is not null limit 1").unwrap();
    assert_eq!(out.rows.len(), 1);
    let row = &out.rows[0];
    assert_eq!(row.get("id"), None, "an aggregate row has no id");
    assert_eq!(row["COUNT(id)"], json!(3));
    assert_eq!(row["MAX(Modified_Time)"], json!("2025-01-10T10:00:00+05:30"));
    assert_eq!(row["MIN(Modified_Time)"], json!("2024-12-31T23:00:00-02:00"));
    assert_eq!(row["SUM(Annual_Revenue)"], json!(1050.5));
    assert_eq!(row["COUNT(Email)"], json!(1));
    let none = run("select COUNT(id), MAX(Modified_Time) from Leads where Last_Name = 'nobody'").unwrap();
    assert_eq!((none.rows[0]["COUNT(id)"].clone(), none.rows[0]["MAX(Modified_Time)"].clone()), (json!(0), Value::Null));
    assert_eq!(err("select COUNT(id), Last_Name from Leads where id is not null").code, "INVALID_QUERY");
    assert_eq!(err("select SUM(Last_Name) from Leads where id is not null").code, "INVALID_QUERY");
    assert_eq!(err("select COUNT(Nope) from Leads where id is not null").code, "INVALID_QUERY");
    assert_eq!(
        parse("select Last_Name as 'Name' from Leads where id is not null").unwrap_err().code,
        "INVALID_QUERY"
    );
}

#[test]
fn group_by_gives_one_row_per_group_in_group_order() {
    // Email_Opt_Out: false for leads 01 and 03, true for 02 (04 is converted).
    let out = run("select Email_Opt_Out, COUNT(id), SUM(Annual_Revenue), COUNT(Annual_Revenue) from Leads where id is not null group by Email_Opt_Out").unwrap();
    assert_eq!(
        out.rows,
        vec![
            rec(json!({"Email_Opt_Out": false, "COUNT(id)": 2, "SUM(Annual_Revenue)": 1000.5, "COUNT(Annual_Revenue)": 1})),
            rec(json!({"Email_Opt_Out": true, "COUNT(id)": 1, "SUM(Annual_Revenue)": 50.0, "COUNT(Annual_Revenue)": 1})),
        ]
    );
    // Null is a group of its own, first when ascending; text groups ignore case.
    let out = run("select Company, COUNT(id) from Leads where id is not null group by Company order by Company desc").unwrap();
    let companies: Vec<&Value> = out.rows.iter().map(|r| &r["Company"]).collect();
    assert_eq!(companies, vec![&json!("Acme"), &json!("'); drop table leads; --"), &Value::Null]);
    let names = run("select Last_Name, COUNT(id) from Leads where id is not null group by Last_Name").unwrap();
    assert_eq!(names.rows.len(), 2, "Smith and smith are one group: {:?}", names.rows);
    // LIMIT and OFFSET page the groups.
    let page = run("select Company, COUNT(id) from Leads where id is not null group by Company limit 1 offset 1").unwrap();
    assert_eq!((page.rows.len(), page.more_records), (1, true));
    assert_eq!(err("select Last_Name, COUNT(id) from Leads where id is not null group by Company").code, "INVALID_QUERY");
    assert_eq!(err("select COUNT(id) from Leads where id is not null group by Company order by Last_Name").code, "INVALID_QUERY");
    assert_eq!(err("select COUNT(id) from Leads where id is not null group by Description").code, "INVALID_QUERY");
    assert_eq!(err("select COUNT(id) from Leads where id is not null group by Company, Last_Name, Email, Lead_Source, Owner").code, "LIMIT_EXCEEDED");
}

// ---------- limits ----------

#[test]
fn limit_caps() {
    assert_eq!(parse("select id from Leads where id is not null limit 2000").unwrap().limit, 2000);
    let e = parse("select id from Leads where id is not null limit 2001").unwrap_err();
    assert_eq!(e.code, "LIMIT_EXCEEDED");
    assert_eq!(e.details["limit"], 2000);
    assert!(parse("select id from Leads where id is not null limit 98000, 2000").is_ok());
    assert_eq!(
        parse("select id from Leads where id is not null limit 98001, 2000").unwrap_err().code,
        "LIMIT_EXCEEDED"
    );
    assert_eq!(
        parse("select id from Leads where id is not null limit 2000 offset 98001").unwrap_err().code,
        "LIMIT_EXCEEDED"
    );
    assert_eq!(parse("select id from Leads where id is not null limit 0").unwrap_err().code, "INVALID_QUERY");
}

/// `n` conditions nested pairwise to the left.
fn nested(n: usize) -> String {
    let mut w = "Last_Name = 'a'".to_string();
    for _ in 1..n {
        w = format!("({w} or Last_Name = 'a')");
    }
    w
}

#[test]
fn criteria_cap_is_25() {
    assert!(parse(&format!("select id from Leads where {}", nested(25))).is_ok());
    let e = parse(&format!("select id from Leads where {}", nested(26))).unwrap_err();
    assert_eq!(e.code, "LIMIT_EXCEEDED");
}

#[test]
fn in_values_cap_is_100() {
    let list = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    assert!(parse(&format!("select id from Leads where No_of_Employees in ({})", list(100))).is_ok());
    assert_eq!(
        parse(&format!("select id from Leads where No_of_Employees in ({})", list(101)))
            .unwrap_err()
            .code,
        "LIMIT_EXCEEDED"
    );
    assert_eq!(
        parse(&format!("select id from Leads where No_of_Employees not in ({})", list(101)))
            .unwrap_err()
            .code,
        "LIMIT_EXCEEDED"
    );
}

#[test]
fn select_cap_is_500() {
    let fields = |n: usize| (0..n).map(|i| format!("F{i}")).collect::<Vec<_>>().join(",");
    assert!(parse(&format!("select {} from Leads where id is not null", fields(500))).is_ok());
    assert_eq!(
        parse(&format!("select {} from Leads where id is not null", fields(501))).unwrap_err().code,
        "LIMIT_EXCEEDED"
    );
}

#[test]
fn order_by_cap_is_10() {
    let fields = |n: usize| vec!["id"; n].join(",");
    assert!(parse(&format!("select id from Leads where id is not null order by {}", fields(10))).is_ok());
    assert_eq!(
        parse(&format!("select id from Leads where id is not null order by {}", fields(11)))
            .unwrap_err()
            .code,
        "LIMIT_EXCEEDED"
    );
}

#[test]
fn repeated_column_is_duplicate_data() {
    let e = parse("select Last_Name, Email, Last_Name from Leads where id is not null").unwrap_err();
    assert_eq!(e.code, "DUPLICATE_DATA");
    assert_eq!(e.details["column_name"], "Last_Name");
    assert_eq!(parse("select id, id from Leads where id is not null").unwrap_err().code, "DUPLICATE_DATA");
}

#[test]
fn execute_rechecks_hand_built_queries() {
    let mut q = parse("select id from Leads where id is not null").unwrap();
    q.limit = 5000;
    assert_eq!(execute(&q, &module("Leads"), &[], &no_lookup).unwrap_err().code, "LIMIT_EXCEEDED");
}

#[test]
fn credits_tiers() {
    assert_eq!([1, 200, 201, 1000, 1001, 2000].map(credits_for_limit), [1, 1, 2, 2, 3, 3]);
}

// ---------- validation ----------

#[test]
fn unknown_columns_are_invalid_query() {
    for (q, col) in [
        ("select Nope from Leads where id is not null", "Nope"),
        ("select last_name from Leads where id is not null", "last_name"),
        ("select id from Leads where Nope = 'x'", "Nope"),
        ("select id from Leads where id is not null order by Nope", "Nope"),
    ] {
        let e = err(q);
        assert_eq!(e.code, "INVALID_QUERY", "{q}");
        assert_eq!(e.details["column_name"], col);
        assert_eq!(e.details["reason"], "invalid column given");
    }
}

#[test]
fn operator_must_fit_type() {
    for w in [
        "Last_Name > 'a'",
        "Last_Name between 'a' and 'b'",
        "No_of_Employees like '1%'",
        "Owner like '%1%'",
        "Owner > 5",
        "Email_Opt_Out != true",
        "Email_Opt_Out is null",
        "Days_Open like '%1%'",
        "Languages in ('English')",
    ] {
        let e = assert_invalid(w);
        assert!(e.details["operator"].is_string(), "{w}: {e}");
        assert!(e.details["data_type"].is_string(), "{w}: {e}");
    }
    let e = assert_invalid("Last_Name > 'a'");
    assert_eq!(e.details["operator"], ">");
    assert_eq!(e.details["data_type"], "text");
    assert_eq!(e.details["column_name"], "Last_Name");
}

#[test]
fn textarea_cannot_be_filtered() {
    for w in ["Description = 'long text'", "Description is null", "Description like '%x%'"] {
        let e = assert_invalid(w);
        assert_eq!(e.details["data_type"], "textarea");
    }
    // but it can be selected
    assert!(run("select Description from Leads where id is not null").is_ok());
}

#[test]
fn literal_must_fit_type() {
    let e = assert_invalid("No_of_Employees = 'abc'");
    assert_eq!(e.details["expected_data_type"], "integer");
    assert_eq!(e.details["column_name"], "No_of_Employees");
    for w in [
        "No_of_Employees = 1.5",
        "Annual_Revenue = 'lots'",
        "Last_Contacted_On = '2025-13-01'",
        "Last_Contacted_On = '2025-1-1'",
        "Last_Contacted_On = '2025-01-01T00:00:00+00:00'",
        "Modified_Time > '2025-01-01'",
        "Modified_Time > '2025-01-01T00:00:00.000+00:00'",
        "Modified_Time > '2025-01-01T00:00:00Z'",
        "Modified_Time > '2025-01-01 00:00:00+00:00'",
        "Modified_Time between '2025-01-01T00:00:00+00:00' and 'soon'",
        "Email_Opt_Out = 'yes'",
        "Email_Opt_Out = 1",
        "Owner = 'alice'",
        "id = 'abc'",
        "Lead_Source = 5",
        "Lead_Source in ('Cold Call', 5)",
    ] {
        assert_invalid(w);
    }
}

// ---------- comparators ----------

#[test]
fn numeric_comparators() {
    assert_eq!(hits("No_of_Employees = 10"), vec![1]);
    assert_eq!(hits("No_of_Employees = '10'"), vec![1]);
    assert_eq!(hits("No_of_Employees != 10"), vec![2]);
    assert_eq!(hits("No_of_Employees > 10"), vec![2]);
    assert_eq!(hits("No_of_Employees >= 10"), vec![1, 2]);
    assert_eq!(hits("No_of_Employees < 200"), vec![1]);
    assert_eq!(hits("No_of_Employees <= 200"), vec![1, 2]);
    assert_eq!(hits("Annual_Revenue between 50 and 1000.5"), vec![1, 2]);
    assert_eq!(hits("Annual_Revenue between 51 and 1000"), Vec::<u32>::new());
    assert_eq!(hits("Annual_Revenue not between 51 and 2000"), vec![2]);
    assert_eq!(hits("No_of_Employees in (10, 11)"), vec![1]);
    assert_eq!(hits("No_of_Employees not in (10, 11)"), vec![2]);
}

#[test]
fn null_satisfies_no_comparison() {
    // Lead 3 has No_of_Employees null, Company null, Email missing.
    assert!(!hits("No_of_Employees != 10").contains(&3));
    assert!(!hits("No_of_Employees not in (10)").contains(&3));
    assert!(!hits("No_of_Employees not between 0 and 5").contains(&3));
    assert_eq!(hits("Company != 'Acme'"), vec![2]);
    assert_eq!(hits("Company not like '%acme%'"), vec![2]);
    assert_eq!(hits("Company is null"), vec![3]);
    assert_eq!(hits("Company is not null"), vec![1, 2]);
    assert_eq!(hits("Email is null"), vec![2, 3]);
}

#[test]
fn text_comparisons_ignore_case() {
    assert_eq!(hits("Last_Name = 'SMITH'"), vec![1, 3]);
    assert_eq!(hits("Last_Name != 'smith'"), vec![2]);
    assert_eq!(hits("Last_Name in ('smith', 'o''brien')"), vec![1, 2, 3]);
    assert_eq!(hits("Last_Name not in ('SMITH')"), vec![2]);
    assert_eq!(hits("Lead_Source = 'cold call'"), vec![1]);
}

#[test]
fn like_patterns() {
    assert_eq!(hits("Last_Name like 'sm%'"), vec![1, 3]);
    assert_eq!(hits("Last_Name like '%BRIEN'"), vec![2]);
    assert_eq!(hits("Last_Name like '%mi%'"), vec![1, 3]);
    assert_eq!(hits("Last_Name like 'smith'"), vec![1, 3]);
    assert_eq!(hits("Last_Name like 's%h'"), vec![1, 3]);
    assert_eq!(hits("Last_Name like 'sm'"), Vec::<u32>::new());
    assert_eq!(hits("Last_Name not like '%mi%'"), vec![2]);
    // Only the contains form of `not like` is accepted.
    assert_invalid("Last_Name not like 'sm%'");
}

#[test]
fn like_pattern_anchors_do_not_overlap() {
    let p = LikePattern::parse("a%a");
    assert!(!p.matches("a"));
    assert!(p.matches("aa"));
    assert!(p.matches("abca"));
    assert!(LikePattern::parse("%").matches(""));
    // Bulk values keep `%` literal.
    assert!(LikePattern::contains("5%").matches("save 5% now"));
    assert!(!LikePattern::contains("5%").matches("save 50 now"));
}

#[test]
fn datetimes_compare_as_instants() {
    // Lead 1: 04:30Z, lead 2: 04:00Z, lead 3: 2025-01-01T01:00Z.
    assert_eq!(hits("Modified_Time > '2025-01-10T04:15:00+00:00'"), vec![1]);
    assert_eq!(hits("Modified_Time = '2025-01-10T04:30:00+00:00'"), vec![1]);
    assert_eq!(hits("Modified_Time = '2025-01-10T10:00:00+05:30'"), vec![1]);
    assert_eq!(hits("Modified_Time < '2025-01-01T00:00:00+00:00'"), Vec::<u32>::new());
    assert_eq!(hits("Modified_Time <= '2024-12-31T20:00:00-05:00'"), vec![3]);
    assert_eq!(
        hits("Modified_Time between '2025-01-10T09:30:00+05:30' and '2025-01-10T04:00:00+00:00'"),
        vec![2]
    );
}

#[test]
fn dates_compare_as_dates() {
    assert_eq!(hits("Last_Contacted_On between '2025-01-01' and '2025-01-31'"), vec![1]);
    assert_eq!(hits("Last_Contacted_On < '2025-01-01'"), vec![2]);
    assert_eq!(hits("Last_Contacted_On = '2024-12-01'"), vec![2]);
}

#[test]
fn booleans_take_equals_only() {
    assert_eq!(hits("Email_Opt_Out = true"), vec![2]);
    assert_eq!(hits("Email_Opt_Out = 'false'"), vec![1, 3]);
    assert_eq!(hits("Email_Opt_Out = FALSE"), vec![1, 3]);
}

#[test]
fn lookups_compare_by_id() {
    assert_eq!(hits("Owner = '111'"), vec![1, 3]);
    assert_eq!(hits("Owner = 222"), vec![2]);
    assert_eq!(hits("Owner != 111"), vec![2]);
    assert_eq!(hits("Owner in (111, '222')"), vec![1, 2, 3]);
    assert_eq!(hits("Owner not in (111)"), vec![2]);
    assert_eq!(hits("Owner is not null"), vec![1, 2, 3]);
}

#[test]
fn ids_quoted_or_bare() {
    assert_eq!(hits(&format!("id = {P}02")), vec![2]);
    assert_eq!(hits(&format!("id = '{P}02'")), vec![2]);
    assert_eq!(hits(&format!("id > {P}01")), vec![2, 3]);
    assert_eq!(hits(&format!("id in ({P}01, '{P}03')")), vec![1, 3]);
}

#[test]
fn multiselect_sets() {
    assert_eq!(hits("Languages = 'German;English'"), vec![1]);
    assert_eq!(hits("Languages = 'english'"), Vec::<u32>::new());
    assert_eq!(hits("Languages != 'French'"), vec![1]);
    assert_eq!(hits("Languages like '%fren%'"), vec![2]);
    assert_eq!(hits("Languages like 'german'"), vec![1]);
    assert_eq!(hits("Languages is null"), vec![3]);
}

#[test]
fn formulas_follow_their_return_type() {
    assert_eq!(hits("Days_Open > 2"), vec![1]);
    assert_eq!(hits("Days_Open between 1 and 2"), vec![2]);
    assert_invalid("Days_Open = 'many'");
}

#[test]
fn and_or_combine() {
    assert_eq!(hits("(Last_Name = 'smith' and No_of_Employees = 10)"), vec![1]);
    assert_eq!(hits("Last_Name = 'o''brien' or No_of_Employees = 10"), vec![1, 2]);
    assert_eq!(hits("((Last_Name like 's%' and Owner = 111) and Company is null)"), vec![3]);
}

#[test]
fn converted_leads_are_hidden_unless_asked_for() {
    assert_eq!(hits("Company = 'Acme'"), vec![1]);
    assert_eq!(hits("(Company = 'Acme' and Converted__s = true)"), vec![4]);
    assert_eq!(hits("Company = 'Acme' or Converted__s = true"), vec![1, 4]);
}

// ---------- ordering, paging, output ----------

#[test]
fn default_order_is_ascending_id() {
    assert_eq!(hits("id is not null"), vec![1, 2, 3]);
}

#[test]
fn order_by_fields() {
    let ids = |q: &str| -> Vec<u32> {
        run(q)
            .unwrap()
            .rows
            .iter()
            .map(|r| r["id"].as_str().unwrap()[P.len()..].parse().unwrap())
            .collect()
    };
    // Equal names (case-insensitive) fall back to id ascending, then desc.
    assert_eq!(ids("select id from Leads where id is not null order by Last_Name"), vec![2, 1, 3]);
    assert_eq!(ids("select id from Leads where id is not null order by Last_Name desc"), vec![1, 3, 2]);
    assert_eq!(ids("select id from Leads where id is not null order by Last_Name asc, id desc"), vec![2, 3, 1]);
    // Nulls first ascending, last descending.
    assert_eq!(ids("select id from Leads where id is not null order by No_of_Employees"), vec![3, 1, 2]);
    assert_eq!(ids("select id from Leads where id is not null order by No_of_Employees desc"), vec![2, 1, 3]);
    assert_eq!(ids("select id from Leads where id is not null order by Modified_Time"), vec![3, 2, 1]);
}

#[test]
fn offset_limit_and_more_records() {
    let out = run("select id from Leads where id is not null limit 1").unwrap();
    assert_eq!(out.rows.len(), 1);
    assert!(out.more_records);
    let out = run("select id from Leads where id is not null limit 2, 1").unwrap();
    assert_eq!(out.rows[0]["id"], format!("{P}03"));
    assert!(!out.more_records);
    let out = run("select id from Leads where id is not null limit 1 offset 1").unwrap();
    assert_eq!(out.rows[0]["id"], format!("{P}02"));
    assert!(out.more_records);
    let out = run("select id from Leads where id is not null limit 3").unwrap();
    assert_eq!(out.rows.len(), 3);
    assert!(!out.more_records);
    let out = run("select id from Leads where id is not null limit 10 offset 5").unwrap();
    assert!(out.rows.is_empty());
    assert!(!out.more_records);
}

#[test]
fn output_has_selected_fields_and_id() {
    let out = run(&format!("select Last_Name, Owner, Languages, Email_Opt_Out, Email from Leads where id = {P}01")).unwrap();
    let row = &out.rows[0];
    let mut keys: Vec<&str> = row.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, vec!["Email", "Email_Opt_Out", "Languages", "Last_Name", "Owner", "id"]);
    assert_eq!(row["id"], format!("{P}01"));
    assert_eq!(row["Owner"], json!({"id": "111", "name": "Alice"}));
    assert_eq!(row["Languages"], json!(["English", "German"]));
    assert_eq!(row["Email_Opt_Out"], json!(false));
    // A field the record lacks comes out as null.
    let out = run(&format!("select First_Name from Leads where id = {P}02")).unwrap();
    assert_eq!(out.rows[0]["First_Name"], Value::Null);
}

fn contact_rows() -> Vec<Map<String, Value>> {
    vec![
        rec(
            json!({"id": "700", "Last_Name": "Doe", "Account_Name": {"id": "900", "name": "Acme Corp"}, "Owner": {"id": "111", "name": "Alice", "email": "alice@example.com"}}),
        ),
        rec(json!({"id": "701", "Last_Name": "Roe", "Account_Name": null, "Owner": {"id": "222", "name": "Bob", "email": "bob@example.com"}})),
    ]
}

fn directory(module: &str, id: &str) -> Option<Map<String, Value>> {
    let v = match (module, id) {
        ("Accounts", "900") => json!({"id": "900", "Account_Name": "Acme Corp", "Phone": "555", "Parent_Account": {"id": "901", "name": "Parent Inc"}}),
        ("Accounts", "901") => json!({"id": "901", "Account_Name": "Parent Inc"}),
        ("users", "111") => json!({"id": "111", "name": "Alice", "email": "alice@example.com"}),
        ("users", "222") => json!({"id": "222", "name": "Bob", "email": "bob@example.com"}),
        _ => return None,
    };
    Some(rec(v))
}

fn run_contacts(q: &str) -> Result<CoqlOutput, CoqlError> {
    let rows = contact_rows();
    let refs: Vec<&Map<String, Value>> = rows.iter().collect();
    execute(&parse(q)?, &module("Contacts"), &refs, &directory)
}

#[test]
fn dotted_lookups_one_and_two_levels() {
    let out = run_contacts("select Account_Name, Account_Name.Account_Name, Account_Name.Parent_Account.Account_Name, Account_Name.id, Owner.email from Contacts where id is not null").unwrap();
    let r = &out.rows[0];
    assert_eq!(r["Account_Name"], json!({"id": "900", "name": "Acme Corp"}));
    assert_eq!(r["Account_Name.Account_Name"], "Acme Corp");
    assert_eq!(r["Account_Name.Parent_Account.Account_Name"], "Parent Inc");
    assert_eq!(r["Account_Name.id"], "900");
    assert_eq!(r["Owner.email"], "alice@example.com");
    let r = &out.rows[1];
    assert_eq!(r["Account_Name"], Value::Null);
    assert_eq!(r["Account_Name.Account_Name"], Value::Null);
    assert_eq!(r["Owner.email"], "bob@example.com");
}

#[test]
fn dotted_paths_in_where_and_order() {
    let out = run_contacts("select Last_Name from Contacts where Account_Name.Account_Name = 'acme corp'").unwrap();
    assert_eq!(out.rows.len(), 1);
    assert_eq!(out.rows[0]["id"], "700");
    let out = run_contacts("select Last_Name from Contacts where id is not null order by Owner.name desc").unwrap();
    assert_eq!(out.rows[0]["id"], "701");
    // Without a resolver (bulk criteria), dotted paths are null.
    let c = parse("select id from Contacts where Account_Name.Account_Name is null").unwrap().filter;
    assert!(matches(&c, &module("Contacts"), &contact_rows()[0]));
}

#[test]
fn bad_dotted_paths_are_invalid_columns() {
    for q in [
        "select Account_Name.Nope from Contacts where id is not null",
        "select Last_Name.Account_Name from Contacts where id is not null",
        "select Account_Name.Parent_Account.Parent_Account.Account_Name from Contacts where id is not null",
        "select id from Contacts where Account_Name.Nope = 'x'",
    ] {
        let e = run_contacts(q).unwrap_err();
        assert_eq!(e.code, "INVALID_QUERY", "{q}");
        assert!(e.details["column_name"].as_str().unwrap().contains('.'));
    }
}

#[test]
fn matches_works_on_parsed_filters() {
    let leads = module("Leads");
    let rows = lead_rows();
    let c = parse("select id from Leads where (Last_Name = 'smith' and Company is null)").unwrap().filter;
    let hit: Vec<bool> = rows.iter().map(|r| matches(&c, &leads, r)).collect();
    assert_eq!(hit, vec![true, false, false, false]);
}

#[test]
fn resolve_module_finds_data_modules_only() {
    let cat = catalog();
    let q = parse("select id from leads where id is not null").unwrap();
    assert_eq!(resolve_module(&q, &cat).unwrap().api_name, "Leads");
    for m in ["Notes", "Nope", "Visits"] {
        let q = parse(&format!("select id from {m} where id is not null")).unwrap();
        let e = resolve_module(&q, &cat).unwrap_err();
        assert_eq!(e.code, "INVALID_QUERY", "{m}");
    }
}

#[test]
fn error_json_shape() {
    let e = parse("select id from Leads where Last_Name = 'a' and Company = 'b' and Email = 'c'").unwrap_err();
    let j = e.to_json();
    assert_eq!(j["status"], "error");
    assert_eq!(j["code"], "SYNTAX_ERROR");
    assert_eq!(j["message"], "invalid query formed");
    assert!(j["details"]["line"].is_number() && j["details"]["column"].is_number() && j["details"]["near"].is_string());
}

// ---------- bulk criteria ----------

fn leaf(field: &str, comparator: &str, value: Value) -> Value {
    json!({"field": {"api_name": field}, "comparator": comparator, "value": value})
}

fn bulk_hits(c: &Value) -> Vec<u32> {
    let leads = module("Leads");
    let cond = criteria_from_json(c, &leads).unwrap_or_else(|e| panic!("{c}: {e}"));
    let mut rows = lead_rows();
    rows.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    rows.iter()
        .filter(|r| matches(&cond, &leads, r))
        .map(|r| r["id"].as_str().unwrap()[P.len()..].parse().unwrap())
        .collect()
}

fn bulk_err(c: &Value) -> CoqlError {
    criteria_from_json(c, &module("Leads")).unwrap_err()
}

#[test]
fn bulk_leaf_comparators() {
    assert_eq!(bulk_hits(&leaf("Last_Name", "equal", json!("SMITH"))), vec![1, 3]);
    assert_eq!(bulk_hits(&leaf("Last_Name", "not_equal", json!("smith"))), vec![2, 4]);
    assert_eq!(bulk_hits(&leaf("Last_Name", "contains", json!("bri"))), vec![2]);
    assert_eq!(bulk_hits(&leaf("Last_Name", "not_contains", json!("mi"))), vec![2, 4]);
    assert_eq!(bulk_hits(&leaf("Last_Name", "starts_with", json!("O'"))), vec![2]);
    assert_eq!(bulk_hits(&leaf("Last_Name", "ends_with", json!("ITH"))), vec![1, 3]);
    assert_eq!(bulk_hits(&leaf("No_of_Employees", "greater_than", json!(10))), vec![2]);
    assert_eq!(bulk_hits(&leaf("No_of_Employees", "greater_equal", json!(10))), vec![1, 2]);
    assert_eq!(bulk_hits(&leaf("No_of_Employees", "less_than", json!(200))), vec![1]);
    assert_eq!(bulk_hits(&leaf("No_of_Employees", "less_equal", json!("200"))), vec![1, 2]);
    assert_eq!(bulk_hits(&leaf("No_of_Employees", "in", json!([10, 11]))), vec![1]);
    assert_eq!(bulk_hits(&leaf("No_of_Employees", "not_in", json!([10]))), vec![2]);
    assert_eq!(
        bulk_hits(&leaf(
            "Modified_Time",
            "between",
            json!(["2025-01-10T00:00:00+00:00", "2025-01-10T04:10:00+00:00"])
        )),
        vec![2]
    );
    assert_eq!(
        bulk_hits(&leaf(
            "Modified_Time",
            "not_between",
            json!(["2025-01-10T00:00:00+00:00", "2025-01-10T04:10:00+00:00"])
        )),
        vec![1, 3]
    );
    assert_eq!(bulk_hits(&leaf("Email_Opt_Out", "equal", json!(true))), vec![2]);
    assert_eq!(bulk_hits(&leaf("Owner", "in", json!(["222"]))), vec![2, 4]);
}

#[test]
fn bulk_empty_means_null() {
    assert_eq!(bulk_hits(&leaf("Company", "equal", json!("${EMPTY}"))), vec![3]);
    assert_eq!(bulk_hits(&leaf("Company", "not_equal", json!("${EMPTY}"))), vec![1, 2, 4]);
    assert_eq!(
        bulk_err(&leaf("Company", "contains", json!("${EMPTY}"))).code,
        "COMPARATOR_AND_VALUE_IN_CRITERIA_NOT_COMPATIBLE"
    );
}

#[test]
fn bulk_groups_fold_pairwise() {
    let c = json!({"group_operator": "and", "group": [
        leaf("Last_Name", "starts_with", json!("s")),
        leaf("Owner", "equal", json!("111")),
        leaf("Company", "equal", json!("${EMPTY}")),
    ]});
    let cond = criteria_from_json(&c, &module("Leads")).unwrap();
    assert!(matches!(&cond, Cond::And(l, _) if matches!(**l, Cond::And(..))));
    assert_eq!(bulk_hits(&c), vec![3]);
    let c = json!({"group_operator": "OR", "group": [leaf("No_of_Employees", "equal", json!(10)), {"group_operator": "and", "group": [
        leaf("Last_Name", "equal", json!("converted")), leaf("Company", "equal", json!("Acme"))]}]});
    assert_eq!(bulk_hits(&c), vec![1, 4]);
}

#[test]
fn bulk_errors_use_bulk_read_codes() {
    let e = bulk_err(&leaf("Nope", "equal", json!("x")));
    assert_eq!(e.code, "FIELD_IN_CRITERIA_NOT_AVAILABLE");
    assert_eq!(e.details["api_name"], "Nope");
    assert_eq!(bulk_err(&leaf("Description", "contains", json!("x"))).code, "FIELD_IN_CRITERIA_NOT_SUPPORTED");
    assert_eq!(
        bulk_err(&leaf("Account_Name.Account_Name", "equal", json!("x"))).code,
        "FIELD_IN_CRITERIA_NOT_SUPPORTED"
    );
    let e = bulk_err(&leaf("No_of_Employees", "contains", json!("1")));
    assert_eq!(e.code, "FIELD_AND_COMPARATOR_IN_CRITERIA_NOT_COMPATIBLE");
    assert_eq!(e.details["comparator"], "contains");
    assert!(e.details["supported"].as_array().unwrap().contains(&json!("between")));
    assert_eq!(
        bulk_err(&leaf("Email_Opt_Out", "not_equal", json!(true))).code,
        "FIELD_AND_COMPARATOR_IN_CRITERIA_NOT_COMPATIBLE"
    );
    assert_eq!(
        bulk_err(&leaf("Owner", "contains", json!("1"))).code,
        "FIELD_AND_COMPARATOR_IN_CRITERIA_NOT_COMPATIBLE"
    );
    let e = bulk_err(&leaf("Modified_Time", "greater_than", json!("2025-01-01T00:00:00.000+00:00")));
    assert_eq!(e.code, "FIELD_AND_VALUE_IN_CRITERIA_NOT_COMPATIBLE");
    assert_eq!(e.details["expected_data_type"], "datetime");
    assert_eq!(
        bulk_err(&leaf("No_of_Employees", "equal", json!("abc"))).code,
        "FIELD_AND_VALUE_IN_CRITERIA_NOT_COMPATIBLE"
    );
    assert_eq!(
        bulk_err(&leaf("No_of_Employees", "between", json!([1]))).code,
        "COMPARATOR_AND_VALUE_IN_CRITERIA_NOT_COMPATIBLE"
    );
    assert_eq!(
        bulk_err(&leaf("No_of_Employees", "in", json!([]))).code,
        "COMPARATOR_AND_VALUE_IN_CRITERIA_NOT_COMPATIBLE"
    );
    assert_eq!(bulk_err(&leaf("Last_Name", "like", json!("x"))).code, "INVALID_CRITERIA");
    assert_eq!(bulk_err(&json!({"comparator": "equal", "value": 1})).code, "INVALID_CRITERIA");
    assert_eq!(bulk_err(&json!([])).code, "INVALID_CRITERIA");
    assert_eq!(bulk_err(&json!({"group_operator": "and", "group": []})).code, "INVALID_CRITERIA");
    assert_eq!(
        bulk_err(&json!({"group_operator": "xor", "group": [leaf("Last_Name", "equal", json!("a"))]})).code,
        "GROUP_OPERATOR_NOT_SUPPORTED"
    );
    let amb = json!({"group_operator": "and", "group": [leaf("Last_Name", "equal", json!("a"))], "field": {"api_name": "Last_Name"}, "comparator": "equal", "value": "a"});
    assert_eq!(bulk_err(&amb).code, "AMBIGUOUS_CRITERIA");
    assert_eq!(
        bulk_err(&leaf("Last_Name", "equal", json!("x".repeat(256)))).code,
        "VALUE_IN_CRITERIA_NOT_SUPPORTED"
    );
    assert!(bulk_err(&leaf("Nope", "equal", json!("x"))).status == 400);
}

#[test]
fn bulk_limits() {
    let many = |n: usize| json!({"group_operator": "or", "group": (0..n).map(|_| leaf("Last_Name", "equal", json!("a"))).collect::<Vec<_>>()});
    assert!(criteria_from_json(&many(25), &module("Leads")).is_ok());
    assert_eq!(bulk_err(&many(26)).code, "CRITERIA_LIMIT_EXCEEDED");
    let vals = |n: usize| json!((0..n).collect::<Vec<_>>());
    assert!(criteria_from_json(&leaf("No_of_Employees", "in", vals(100)), &module("Leads")).is_ok());
    assert_eq!(bulk_err(&leaf("No_of_Employees", "in", vals(101))).code, "VALUE_LIMIT_EXCEEDED_IN_CRITERIA");
}

#[test]
fn syntax_errors_point_at_line_and_column() {
    let e = parse("select id\nfrom Leads\nwhere Last_Name = 'a'\n  and Company = 'b' and Email = 'c'").unwrap_err();
    assert_eq!(
        (e.details["line"].clone(), e.details["column"].clone(), e.details["near"].clone()),
        (json!(4), json!(21), json!("and"))
    );
}
