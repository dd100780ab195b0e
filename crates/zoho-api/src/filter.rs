//! A flow's filter (`filter => 'Lead_Source = ''Web'''`): a COQL WHERE
//! condition, parsed and typed against the module's fields so that Zoho
//! evaluates it, never this host. The same tree renders two ways: as COQL
//! (which of some changed records still match; every id that matches) and
//! as Bulk Read criteria (a full load reads only matching records). A
//! condition with no form in both is refused when the flow is registered,
//! not at its first run.

use std::collections::HashSet;
use std::fmt;

use serde_json::{json, Value};

use crate::bulk_read::Criteria;
use crate::coql::{CmpOp, Cond, Keyset, Literal, Query, MAX_CRITERIA, MAX_IN_VALUES, MAX_LIMIT};
use crate::error::{Error, Result};
use crate::metadata::FieldMeta;
use crate::records::{record_id, CONVERTED};

/// Criteria a filter may use: a membership query adds `id in (…)`, and a
/// keyset walk over matching ids adds `id > last`, each one criterion.
pub const MAX_FILTER_CRITERIA: usize = MAX_CRITERIA - 1;

fn mentions(c: &Cond, field: &str) -> bool {
    match c {
        Cond::And(a, b) | Cond::Or(a, b) => mentions(a, field) || mentions(b, field),
        Cond::Cmp { field: f, .. } | Cond::In { field: f, .. } | Cond::Between { field: f, .. } | Cond::IsNull { field: f, .. } | Cond::Like { field: f, .. } => f == field,
    }
}

/// Zoho's spelling of "empty" in Bulk Read criteria.
const EMPTY: &str = "${EMPTY}";

/// A parsed filter: the condition, and its canonical COQL text.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub cond: Cond,
    pub text: String,
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What a filter's literals must be, from the field's type (zoho-api.md §6).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Text,
    Lookup,
    Int,
    Decimal,
    Date,
    DateTime,
    Bool,
}

impl Kind {
    fn of(f: &FieldMeta) -> std::result::Result<Kind, String> {
        Ok(match f.value_type() {
            "text" | "email" | "phone" | "website" | "picklist" | "autonumber" => Kind::Text,
            "lookup" | "ownerlookup" | "userlookup" => Kind::Lookup,
            "integer" | "bigint" => Kind::Int,
            "double" | "currency" | "decimal" | "percent" => Kind::Decimal,
            "date" => Kind::Date,
            "datetime" => Kind::DateTime,
            "boolean" => Kind::Bool,
            "textarea" => return Err("multi-line text cannot be used in criteria".into()),
            other => return Err(format!("fields of type {other} are not supported in a filter")),
        })
    }

    fn ordered(self) -> bool {
        matches!(self, Kind::Int | Kind::Decimal | Kind::Date | Kind::DateTime)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(String),
    Op(CmpOp),
    Open,
    Close,
    Comma,
}

fn lex(text: &str) -> std::result::Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ',' => {
                chars.next();
                out.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Comma,
                });
            }
            '\'' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\'')) if chars.peek().is_some_and(|&(_, n)| n == '\'') => {
                            chars.next();
                            s.push('\'');
                        }
                        Some((_, '\'')) => break,
                        Some((_, ch)) => s.push(ch),
                        None => return Err(format!("the string starting at character {} is not closed", at + 1)),
                    }
                }
                out.push(Token::Str(s));
            }
            '=' | '!' | '<' | '>' => {
                chars.next();
                let next = chars.peek().map(|&(_, n)| n);
                let (op, two) = match (c, next) {
                    ('=', _) => (CmpOp::Eq, false),
                    ('!', Some('=')) | ('<', Some('>')) => (CmpOp::Ne, true),
                    ('<', Some('=')) => (CmpOp::Le, true),
                    ('>', Some('=')) => (CmpOp::Ge, true),
                    ('<', _) => (CmpOp::Lt, false),
                    ('>', _) => (CmpOp::Gt, false),
                    _ => return Err(format!("unexpected \"!\" at character {}", at + 1)),
                };
                if two {
                    chars.next();
                }
                out.push(Token::Op(op));
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let mut s = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    // A sign only leads the number or its exponent.
                    let sign = matches!(d, '-' | '+') && (s.is_empty() || s.ends_with(['e', 'E']));
                    if d.is_ascii_digit() || matches!(d, '.' | 'e' | 'E') || sign {
                        s.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Num(s));
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == '$' => {
                let mut s = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_ascii_alphanumeric() || matches!(d, '_' | '$' | '.') {
                        s.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Ident(s));
            }
            other => return Err(format!("unexpected {other:?} at character {}", at + 1)),
        }
    }
    Ok(out)
}

/// Parentheses a filter may nest. The parser recurses per level, and on a
/// backend's stack: a few thousand levels of user text would overflow it.
/// More than the criteria a query takes can mean nothing more.
const MAX_NESTING: usize = MAX_CRITERIA;

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    fields: &'a [FieldMeta],
    /// Open parentheses around the current token.
    depth: usize,
    /// Predicates read so far: counted while parsing, so that a chain of
    /// `or`s is refused before its tree, walked recursively, grows deep.
    predicates: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    /// The next token is this keyword (any case); consumed if so.
    fn keyword(&mut self, word: &str) -> bool {
        let hit = matches!(self.peek(), Some(Token::Ident(s)) if s.eq_ignore_ascii_case(word));
        if hit {
            self.at += 1;
        }
        hit
    }

    fn expect_keyword(&mut self, word: &str, after: &str) -> std::result::Result<(), String> {
        if self.keyword(word) {
            Ok(())
        } else {
            Err(format!("expected \"{word}\" after {after}"))
        }
    }

    fn or(&mut self) -> std::result::Result<Cond, String> {
        let mut c = self.and()?;
        while self.keyword("or") {
            c = c.or(self.and()?);
        }
        Ok(c)
    }

    fn and(&mut self) -> std::result::Result<Cond, String> {
        let mut c = self.primary()?;
        while self.keyword("and") {
            c = c.and(self.primary()?);
        }
        Ok(c)
    }

    fn primary(&mut self) -> std::result::Result<Cond, String> {
        if self.peek() == Some(&Token::Open) {
            self.next();
            self.depth += 1;
            if self.depth > MAX_NESTING {
                return Err(format!("it nests parentheses more than {MAX_NESTING} deep"));
            }
            let c = self.or()?;
            if self.next() != Some(Token::Close) {
                return Err("a \"(\" is not closed".into());
            }
            self.depth -= 1;
            return Ok(c);
        }
        self.predicates += 1;
        if self.predicates > MAX_FILTER_CRITERIA {
            return Err(format!("it has more than {MAX_FILTER_CRITERIA} criteria; Zoho takes {MAX_CRITERIA} a query, and the flow needs one"));
        }
        self.predicate()
    }

    fn field(&mut self) -> std::result::Result<(String, Kind), String> {
        let name = match self.next() {
            Some(Token::Ident(s)) => s,
            Some(t) => return Err(format!("expected a field's API name, found {}", describe(&t))),
            None => return Err("expected a field's API name, found the end".into()),
        };
        if name.contains('.') {
            return Err(format!("{name}: a filter cannot test a lookup's parent (Bulk Read criteria take no dotted names)"));
        }
        let Some(f) = self.fields.iter().find(|f| f.api_name == name).or_else(|| self.fields.iter().find(|f| f.api_name.eq_ignore_ascii_case(&name))) else {
            return Err(format!("the module has no field {name}"));
        };
        let kind = Kind::of(f).map_err(|why| format!("{}: {why}", f.api_name))?;
        Ok((f.api_name.clone(), kind))
    }

    fn literal(&mut self, field: &str, kind: Kind) -> std::result::Result<Literal, String> {
        let bad = |what: &str| format!("{field} takes {}, not {what}", kind_name(kind));
        let t = self.next().ok_or_else(|| bad("the end"))?;
        Ok(match (kind, t) {
            (Kind::Text, Token::Str(s)) => Literal::Text(s),
            (Kind::Lookup, Token::Str(s) | Token::Num(s)) if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) => Literal::Text(s),
            (Kind::Int, Token::Num(s)) => Literal::Int(s.parse().map_err(|_| bad(&format!("{s}")))?),
            (Kind::Decimal, Token::Num(s)) if s.parse::<f64>().is_ok_and(f64::is_finite) => Literal::Decimal(s),
            (Kind::Date, Token::Str(s)) => Literal::Date(chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| bad(&format!("'{s}'")))?),
            (Kind::DateTime, Token::Str(s)) => Literal::DateTime(chrono::DateTime::parse_from_rfc3339(&s).map_err(|_| bad(&format!("'{s}'")))?),
            (Kind::Bool, Token::Ident(s)) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") => Literal::Bool(s.eq_ignore_ascii_case("true")),
            (_, t) => return Err(bad(&describe(&t))),
        })
    }

    fn predicate(&mut self) -> std::result::Result<Cond, String> {
        let (field, kind) = self.field()?;
        let refuse = |what: &str| Err(format!("{field}: {what} does not apply to {}", kind_name(kind)));
        if self.keyword("is") {
            let negated = self.keyword("not");
            self.expect_keyword("null", &format!("{field} is"))?;
            return Ok(Cond::IsNull { field, negated });
        }
        let negated = self.keyword("not");
        if self.keyword("in") {
            if kind == Kind::Bool {
                return refuse("in");
            }
            if self.next() != Some(Token::Open) {
                return Err(format!("expected \"(\" after {field} in"));
            }
            let mut values = vec![self.literal(&field, kind)?];
            loop {
                match self.next() {
                    Some(Token::Comma) => values.push(self.literal(&field, kind)?),
                    Some(Token::Close) => break,
                    _ => return Err(format!("the list of {field} in (…) is not closed")),
                }
            }
            return Ok(Cond::In { field, values, negated });
        }
        if self.keyword("between") {
            if !kind.ordered() {
                return refuse("between");
            }
            let low = self.literal(&field, kind)?;
            self.expect_keyword("and", &format!("{field} between …"))?;
            let high = self.literal(&field, kind)?;
            return Ok(Cond::Between { field, low, high, negated });
        }
        if self.keyword("like") {
            if kind != Kind::Text {
                return refuse("like");
            }
            let Some(Token::Str(pattern)) = self.next() else {
                return Err(format!("{field} like takes a quoted pattern"));
            };
            like_comparator(&pattern, negated).map_err(|why| format!("{field} {}like '{pattern}': {why}", if negated { "not " } else { "" }))?;
            return Ok(Cond::Like { field, pattern, negated });
        }
        if negated {
            return Err(format!("expected in, between or like after {field} not"));
        }
        let op = match self.next() {
            Some(Token::Op(op)) => op,
            Some(t) => return Err(format!("expected a comparison after {field}, found {}", describe(&t))),
            None => return Err(format!("expected a comparison after {field}")),
        };
        if matches!(op, CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge) && !kind.ordered() {
            return refuse("an ordering comparison");
        }
        if kind == Kind::Bool && op != CmpOp::Eq {
            return refuse("!=");
        }
        let value = self.literal(&field, kind)?;
        Ok(Cond::cmp(&field, op, value))
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Text => "a quoted text value",
        Kind::Lookup => "a record id",
        Kind::Int => "an integer",
        Kind::Decimal => "a number",
        Kind::Date => "a quoted date ('2026-01-31')",
        Kind::DateTime => "a quoted date and time with an offset ('2026-01-31T09:00:00+00:00')",
        Kind::Bool => "true or false",
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::Ident(s) => format!("\"{s}\""),
        Token::Str(s) => format!("'{s}'"),
        Token::Num(s) => s.clone(),
        Token::Op(_) => "a comparison".into(),
        Token::Open => "\"(\"".into(),
        Token::Close => "\")\"".into(),
        Token::Comma => "\",\"".into(),
    }
}

/// The Bulk Read comparator and value of a `like` pattern: `%` only at the
/// ends, and `not like` only as "does not contain" (as COQL itself).
fn like_comparator(pattern: &str, negated: bool) -> std::result::Result<(&'static str, String), String> {
    let (start, end) = (pattern.starts_with('%'), pattern.len() > 1 && pattern.ends_with('%'));
    let inner = pattern.trim_start_matches('%').trim_end_matches('%');
    if inner.is_empty() || inner.contains('%') || pattern.starts_with("%%") || pattern.ends_with("%%") {
        return Err("% may stand only at the start or the end of a non-empty pattern".into());
    }
    Ok(match (negated, start, end) {
        (true, true, true) => ("not_contains", inner.into()),
        (true, ..) => return Err("not like is only \"does not contain\": '%text%'".into()),
        (false, true, true) => ("contains", inner.into()),
        (false, false, true) => ("starts_with", inner.into()),
        (false, true, false) => ("ends_with", inner.into()),
        (false, false, false) => ("equal", inner.into()),
    })
}

/// Parses `text` against a module's `fields`. The error says what is wrong
/// and where, for a hint at the SQL boundary.
pub fn parse(text: &str, fields: &[FieldMeta]) -> Result<Filter> {
    let invalid = |why: String| Error::InvalidInput(format!("filter {text:?}: {why}"));
    let tokens = lex(text).map_err(invalid)?;
    if tokens.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    let mut p = Parser { tokens, at: 0, fields, depth: 0, predicates: 0 };
    let mut cond = p.or().map_err(invalid)?;
    if let Some(t) = p.peek() {
        return Err(invalid(format!("unexpected {} after a complete condition", describe(t))));
    }
    // COQL leaves converted records out unless the query names the flag,
    // and Bulk Read does not: the filter says it, so that both engines
    // mean the same records (and the stored text shows it).
    if fields.iter().any(|f| f.api_name == CONVERTED) && !mentions(&cond, CONVERTED) {
        cond = cond.and(Cond::cmp(CONVERTED, CmpOp::Eq, Literal::Bool(false)));
    }
    if cond.criteria() > MAX_FILTER_CRITERIA {
        return Err(invalid(format!("it has {} criteria; Zoho takes {MAX_CRITERIA} a query, and the flow needs one", cond.criteria())));
    }
    // Rendering checks the values COQL cannot quote safely.
    let text = cond.to_coql()?;
    criteria(&cond)?;
    Ok(Filter { cond, text })
}

impl Filter {
    /// The same condition as Bulk Read criteria.
    pub fn criteria(&self) -> Criteria {
        criteria(&self.cond).expect("checked by parse")
    }

    /// Records that match and were modified at or after `since`.
    pub fn criteria_since(&self, since: Option<&chrono::DateTime<chrono::FixedOffset>>) -> Criteria {
        match since {
            Some(s) => Criteria::and(vec![Criteria::modified_since(s), self.criteria()]),
            None => self.criteria(),
        }
    }
}

impl crate::client::ZohoClient {
    /// Which of `ids` are records that match `filter` now: one COQL call of
    /// at most 100 ids (1 credit) per 100.
    pub async fn matching_of(&self, module: &str, filter: &Filter, ids: &[i64]) -> Result<HashSet<i64>> {
        let mut out = HashSet::new();
        for chunk in ids.chunks(MAX_IN_VALUES) {
            let of = Cond::In { field: "id".into(), values: chunk.iter().map(|&i| Literal::Int(i)).collect(), negated: false };
            let q = Query::new(module, ["id"]).filter(of).filter(filter.cond.clone()).limit(chunk.len());
            let mut pages = self.coql(q, None, chunk.len())?;
            while let Some(rows) = pages.next_page().await? {
                out.extend(ids_of(&rows)?);
            }
        }
        Ok(out)
    }

    /// Every record id that matches `filter`, walked by id (2,000 a call,
    /// 3 credits).
    pub async fn matching_ids(&self, module: &str, filter: &Filter) -> Result<Vec<i64>> {
        let mut pages = self.coql(Query::new(module, ["id"]).filter(filter.cond.clone()), Some(Keyset::Id), MAX_LIMIT)?;
        let mut out = Vec::new();
        while let Some(rows) = pages.next_page().await? {
            out.extend(ids_of(&rows)?);
        }
        Ok(out)
    }
}

fn ids_of(rows: &[crate::Record]) -> Result<Vec<i64>> {
    rows.iter().map(|r| record_id(r).and_then(|s| s.parse().ok()).ok_or_else(|| Error::malformed("coql", "a row without a numeric id"))).collect()
}

fn value(l: &Literal) -> Value {
    match l {
        Literal::Text(s) => json!(s),
        Literal::Int(i) => json!(i),
        Literal::Decimal(d) => serde_json::from_str::<serde_json::Number>(d).map(Value::Number).unwrap_or_else(|_| json!(d)),
        Literal::Bool(b) => json!(b),
        Literal::Date(d) => json!(d.format("%Y-%m-%d").to_string()),
        Literal::DateTime(t) => json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)),
    }
}

fn criteria(c: &Cond) -> Result<Criteria> {
    Ok(match c {
        Cond::Cmp { field, op, value: v } => {
            let comparator = match op {
                CmpOp::Eq => "equal",
                CmpOp::Ne => "not_equal",
                CmpOp::Lt => "less_than",
                CmpOp::Le => "less_equal",
                CmpOp::Gt => "greater_than",
                CmpOp::Ge => "greater_equal",
            };
            Criteria::condition(field, comparator, value(v))
        }
        Cond::In { field, values, negated } => Criteria::condition(field, if *negated { "not_in" } else { "in" }, Value::Array(values.iter().map(value).collect())),
        Cond::Between { field, low, high, negated } => Criteria::condition(field, if *negated { "not_between" } else { "between" }, json!([value(low), value(high)])),
        Cond::IsNull { field, negated } => Criteria::condition(field, if *negated { "not_equal" } else { "equal" }, json!(EMPTY)),
        Cond::Like { field, pattern, negated } => {
            let (comparator, v) = like_comparator(pattern, *negated).map_err(|why| Error::InvalidInput(format!("{field} like '{pattern}': {why}")))?;
            Criteria::condition(field, comparator, json!(v))
        }
        Cond::And(a, b) | Cond::Or(a, b) => Criteria::Group {
            group_operator: if matches!(c, Cond::And(..)) { "and" } else { "or" }.into(),
            group: vec![criteria(a)?, criteria(b)?],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(api: &str, data_type: &str) -> FieldMeta {
        serde_json::from_value(json!({"api_name": api, "data_type": data_type})).unwrap()
    }

    fn leads() -> Vec<FieldMeta> {
        vec![
            field("id", "bigint"),
            field("Lead_Source", "picklist"),
            field("Last_Name", "text"),
            field("Annual_Revenue", "currency"),
            field("No_of_Employees", "integer"),
            field("Email_Opt_Out", "boolean"),
            field("Description", "textarea"),
            field("Owner", "ownerlookup"),
            field("Created_Time", "datetime"),
            field("Birthday", "date"),
            field("Tag", "multiselectlookup"),
        ]
    }

    fn ok(text: &str) -> Filter {
        parse(text, &leads()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn refused(text: &str) -> String {
        parse(text, &leads()).expect_err(text).to_string()
    }

    /// Run on a small stack, as a backend's is bounded: text no query could
    /// use is refused while it is read, before it nests the parser or the
    /// tree it builds thousands deep.
    #[test]
    fn deep_or_long_text_is_refused_before_it_recurses() {
        let run = |text: String| std::thread::Builder::new().stack_size(256 << 10).spawn(move || parse(&text, &leads()).map(|f| f.text).map_err(|e| e.to_string())).unwrap().join().expect("no stack overflow");
        let nested = |n: usize| format!("{}Last_Name = 'x'{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(run(nested(MAX_NESTING)).unwrap(), "Last_Name = 'x'");
        let e = run(nested(MAX_NESTING + 1)).unwrap_err();
        assert!(e.contains("nests parentheses more than 25 deep"), "{e}");
        assert!(run(nested(5_000)).unwrap_err().contains("nests parentheses"));
        let chain = |n: usize| format!("Last_Name = 'x'{}", " or Last_Name = 'x'".repeat(n - 1));
        assert!(run(chain(MAX_FILTER_CRITERIA)).is_ok());
        let e = run(chain(MAX_FILTER_CRITERIA + 1)).unwrap_err();
        assert!(e.contains("more than 24 criteria"), "{e}");
        assert!(run(chain(200_000)).unwrap_err().contains("more than 24 criteria"));
    }

    #[test]
    fn parses_to_canonical_coql_with_pairwise_nesting() {
        assert_eq!(ok("Lead_Source = 'Web'").text, "Lead_Source = 'Web'");
        assert_eq!(
            ok("lead_source IN ('Web', 'O''Brien') AND No_of_Employees >= 10 and annual_revenue between 1.5 and 2e3 or Owner = 5725767000000411001").text,
            "(((Lead_Source in ('Web', 'O''Brien') and No_of_Employees >= 10) and Annual_Revenue between 1.5 and 2e3) or Owner = '5725767000000411001')"
        );
        assert_eq!(
            ok("(Last_Name like 'Sm%' or Last_Name not like '%x%') and (Email_Opt_Out = false and Birthday is not null)").text,
            "((Last_Name like 'Sm%' or Last_Name not like '%x%') and (Email_Opt_Out = false and Birthday is not null))"
        );
        assert_eq!(ok("Created_Time > '2026-01-01T00:00:00+05:30'").text, "Created_Time > '2026-01-01T00:00:00+05:30'");
        // The canonical text parses to the same tree.
        let f = ok("Last_Name <> 'a' and (No_of_Employees < -3 or Birthday not between '2000-01-01' and '2001-01-01')");
        assert_eq!(ok(&f.text), f);
    }

    #[test]
    fn renders_as_bulk_read_criteria() {
        let f = ok("Lead_Source = 'Web' and (Last_Name like '%son' or Birthday is null)");
        assert_eq!(
            serde_json::to_value(f.criteria()).unwrap(),
            json!({"group_operator": "and", "group": [
                {"field": {"api_name": "Lead_Source"}, "comparator": "equal", "value": "Web"},
                {"group_operator": "or", "group": [
                    {"field": {"api_name": "Last_Name"}, "comparator": "ends_with", "value": "son"},
                    {"field": {"api_name": "Birthday"}, "comparator": "equal", "value": "${EMPTY}"}]}]})
        );
        let f = ok("Annual_Revenue not between 1.5 and 10 and No_of_Employees in (1, 2)");
        assert_eq!(
            serde_json::to_value(f.criteria()).unwrap()["group"],
            json!([{"field": {"api_name": "Annual_Revenue"}, "comparator": "not_between", "value": [1.5, 10]},
                   {"field": {"api_name": "No_of_Employees"}, "comparator": "in", "value": [1, 2]}])
        );
        let since = chrono::DateTime::parse_from_rfc3339("2026-02-03T04:05:06+00:00").unwrap();
        let c = serde_json::to_value(ok("Last_Name like 'Sm%'").criteria_since(Some(&since))).unwrap();
        assert_eq!(c["group"][0]["value"], "2026-02-03T04:05:06+00:00");
        assert_eq!(c["group"][1]["comparator"], "starts_with");
    }

    #[test]
    fn membership_query_fits_zoho_limits() {
        let f = ok(&(0..MAX_FILTER_CRITERIA).map(|i| format!("No_of_Employees = {i}")).collect::<Vec<_>>().join(" or "));
        let q = Query::new("Leads", ["id"]).filter(Cond::In { field: "id".into(), values: vec![Literal::Int(1)], negated: false }).filter(f.cond);
        assert_eq!(q.filter.as_ref().unwrap().criteria(), MAX_CRITERIA);
        assert!(refused(&(0..=MAX_FILTER_CRITERIA).map(|i| format!("No_of_Employees = {i}")).collect::<Vec<_>>().join(" or ")).contains("criteria"));
    }

    #[test]
    fn a_convertible_module_leaves_converted_records_out_unless_asked() {
        let mut fields = leads();
        fields.push(field("Converted__s", "boolean"));
        let f = parse("Lead_Source = 'Web'", &fields).unwrap();
        assert_eq!(f.text, "(Lead_Source = 'Web' and Converted__s = false)");
        assert_eq!(parse(&f.text, &fields).unwrap(), f, "the stored text parses to itself");
        assert_eq!(parse("Converted__s = true", &fields).unwrap().text, "Converted__s = true");
    }

    #[test]
    fn refuses_with_the_reason() {
        for (text, why) in [
            ("", "empty"),
            ("Nope = 'x'", "no field Nope"),
            ("Description = 'x'", "multi-line"),
            ("Tag = 'x'", "not supported"),
            ("Owner.name = 'x'", "lookup's parent"),
            ("Last_Name > 'a'", "ordering comparison does not apply"),
            ("Email_Opt_Out != true", "!= does not apply"),
            ("No_of_Employees like '1%'", "like does not apply"),
            ("No_of_Employees = 'ten'", "takes an integer"),
            ("Last_Name = 5", "takes a quoted text"),
            ("Birthday = '31/01/2026'", "quoted date"),
            ("Created_Time = '2026-01-01 00:00'", "offset"),
            ("Owner = 'abc'", "record id"),
            ("Last_Name like 'a%b'", "% may stand only"),
            ("Last_Name not like 'a%'", "does not contain"),
            ("Last_Name = 'a' and", "found the end"),
            ("(Last_Name = 'a'", "not closed"),
            ("Last_Name = 'a", "not closed"),
            ("Last_Name = 'a' Lead_Source = 'b'", "after a complete condition"),
            ("Last_Name = 'a\\b'", "backslash"),
            ("Last_Name = 'a'; drop table x", "unexpected ';'"),
            ("Last_Name not = 'a'", "expected in, between or like"),
            ("Annual_Revenue = 1e999", "takes a number"),
        ] {
            let e = refused(text);
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
