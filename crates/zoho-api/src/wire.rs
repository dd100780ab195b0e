//! How every Zoho body is read: the one tolerance rule of the crate.
//!
//! Zoho's documented bodies (`spec/zoho-samples/`) send the same optional
//! thing three ways: absent, `null`, or an empty object `{}` (`"lookup": {}`
//! on a field that is not a lookup). They add keys between versions, send
//! some numbers as strings (`"employee_count": "1"`) and ids as strings or,
//! in places, as numbers. So, for every response type of this crate:
//!
//! - an optional key accepts absent, `null` and `{}` alike, and means "not
//!   there" ([`opt`], [`or_default`]);
//! - unknown keys are ignored (no type uses `deny_unknown_fields`);
//! - ids accept a string or an integer and become a `String` ([`id`],
//!   [`opt_id`], [`ids`]); counts and sizes accept a number or a numeric
//!   string ([`opt_num`], [`num_or_default`]); flags accept `true`/`false`
//!   as booleans or strings, and Zoho's "`{}` = off, object = on" ([`flag`]);
//! - a body that still does not parse is an error at once (never retried:
//!   the same bytes come back), naming the endpoint, the key path and what
//!   was expected, and quoting nothing of the body, which may hold a token
//!   or a customer's data ([`parse`]).
//!
//! A key that the crate cannot do without (a field's `api_name`, a job's
//! `id`) stays required: its absence is the clear error above, not a guess.

use std::fmt::Display;
use std::str::FromStr;

use serde::de::{DeserializeOwned, Error as _, IntoDeserializer};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::{Error, Result};

/// Parses one body as `T`, or fails with where and why it did not fit.
pub fn parse<T: DeserializeOwned>(endpoint: &str, body: &[u8]) -> Result<T> {
    // Most bodies fit: read them without tracking the path, which costs a
    // copy of every key, and read again with it only to say what went wrong.
    if let Ok(parsed) = serde_json::from_slice(body) {
        return Ok(parsed);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde_json reports some shape errors (a null where an enum goes)
        // as syntax errors: ask whether the body is JSON at all.
        let not_json = serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err();
        let reason = if not_json {
            format!("body is not JSON ({})", describe(&inner.to_string()))
        } else {
            let (path, message) = nested(&path, &inner.to_string());
            if path == "." {
                format!("body does not fit: {message}")
            } else {
                format!("key `{path}`: {message}")
            }
        };
        Error::malformed(endpoint, reason)
    })?;
    de.end().map_err(|e| Error::malformed(endpoint, format!("body is not JSON ({})", describe(&e.to_string()))))?;
    Ok(parsed)
}

/// `T` from a member of a body kept as a `Value` (`at` is its key path),
/// failing as [`parse`] does, with the path of what did not fit.
pub fn parse_value<T: DeserializeOwned>(endpoint: &str, at: &str, v: Value) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let (path, message) = nested(&path, &e.into_inner().to_string());
        let key = match path.as_str() {
            "." => at.to_string(),
            p if p.starts_with('[') => format!("{at}{p}"),
            p => format!("{at}.{p}"),
        };
        Error::malformed(endpoint, format!("key `{key}`: {message}"))
    })
}

/// Marks the path of an error found inside a buffered value ([`opt`] and
/// the like read a value whole before deciding what it is), so that the
/// message names the key from the top of the body.
const NESTED: char = '\u{1f}';

/// The full path and the message of an error whose text may carry a
/// nested path from [`from_value`].
fn nested(outer: &str, text: &str) -> (String, String) {
    let text = text.split(" at line ").next().unwrap_or(text);
    let Some(rest) = text.strip_prefix(NESTED) else { return (outer.to_string(), describe(text)) };
    let (inner, message) = rest.split_once(NESTED).unwrap_or(("", rest));
    let path = match (outer, inner) {
        (".", p) | (p, ".") | (p, "") => p.to_string(),
        (o, i) if i.starts_with('[') => format!("{o}{i}"),
        (o, i) => format!("{o}.{i}"),
    };
    (path, message.to_string())
}

/// `T` from a buffered value, keeping the path of an error inside it.
fn from_value<T: DeserializeOwned, E: serde::de::Error>(v: Value) -> std::result::Result<T, E> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let (path, message) = nested(&path, &e.into_inner().to_string());
        E::custom(format!("{NESTED}{path}{NESTED}{message}"))
    })
}

/// A serde error without the input it quotes: serde_json names the
/// offending value for type errors (`invalid type: string "…"`), and that
/// value may be a token or a row's data.
fn describe(text: &str) -> String {
    let text = text.split(" at line ").next().unwrap_or(text);
    match text.strip_prefix("invalid type: ").or_else(|| text.strip_prefix("invalid value: ")) {
        Some(rest) => {
            let (got, expected) = rest.split_once(", expected ").unwrap_or((rest, "another type"));
            let got = got.split_whitespace().next().unwrap_or(got);
            format!("expected {expected}, got a {got}")
        }
        None => text.to_string(),
    }
}

/// A string, or a number Zoho sent unquoted, as text (an id, a count).
pub fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Members `keys` of the JSON object `json`, each as [`text_of`] gives it,
/// found in one pass without building the object: the other members are
/// skipped unread. None where `json` is no object, lacks the key or holds
/// no text there.
pub fn members_text<const N: usize>(json: &str, keys: [&str; N]) -> [Option<String>; N] {
    use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
    struct Members<'k, const N: usize>(&'k [&'k str; N]);
    impl<'de, const N: usize> Visitor<'de> for Members<'_, N> {
        type Value = [Option<String>; N];
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
            let mut found = [const { None }; N];
            // Every member is read through, or the object's end is not
            // reached; the last of a repeated key counts, as in a Value.
            while let Some(at) = map.next_key_seed(KeyAt(self.0))? {
                match at {
                    Some(i) => found[i] = text_of(&map.next_value::<Value>()?),
                    None => map.next_value::<IgnoredAny>().map(drop)?,
                }
            }
            Ok(found)
        }
    }
    impl<'de, const N: usize> DeserializeSeed<'de> for Members<'_, N> {
        type Value = [Option<String>; N];
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    /// Which of the keys sought a member's name is, compared where it lies.
    struct KeyAt<'k, const N: usize>(&'k [&'k str; N]);
    impl<'de, const N: usize> Visitor<'de> for KeyAt<'_, N> {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a member name")
        }
        fn visit_str<E>(self, name: &str) -> std::result::Result<Option<usize>, E> {
            Ok(self.0.iter().position(|k| *k == name))
        }
    }
    impl<'de, const N: usize> DeserializeSeed<'de> for KeyAt<'_, N> {
        type Value = Option<usize>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Option<usize>, D::Error> {
            d.deserialize_str(self)
        }
    }
    // Anything but an object (or broken JSON) holds no members.
    Members(&keys).deserialize(&mut serde_json::Deserializer::from_str(json)).unwrap_or([const { None }; N])
}

/// Whether `v` is one of the spellings of "nothing".
pub fn is_nothing(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// An optional value: absent (with `#[serde(default)]`), `null` and `{}`
/// are `None`.
pub fn opt<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    d.deserialize_any(Opt(std::marker::PhantomData))
}

/// What [`opt`] reads. A list streams straight into `T`: the list of a
/// write's results or a page's records is the bulk of a body, and reading
/// it whole into a `Value` first took as long again. Anything else is read
/// whole, as before: a map may be `{}`, and serde_json hands a number over
/// as a map when it keeps numbers' text (`arbitrary_precision`).
struct Opt<T>(std::marker::PhantomData<T>);

impl<'de, T: DeserializeOwned> serde::de::Visitor<'de> for Opt<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> std::result::Result<Self::Value, A::Error> {
        T::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(Some)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> std::result::Result<Self::Value, A::Error> {
        let v = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        if is_nothing(&v) {
            return Ok(None);
        }
        from_value(v).map(Some)
    }

    // A scalar is `T` or an error at this very key: nothing to buffer.
    fn visit_bool<E: serde::de::Error>(self, b: bool) -> std::result::Result<Self::Value, E> {
        T::deserialize(b.into_deserializer()).map(Some)
    }

    fn visit_i64<E: serde::de::Error>(self, n: i64) -> std::result::Result<Self::Value, E> {
        T::deserialize(n.into_deserializer()).map(Some)
    }

    fn visit_u64<E: serde::de::Error>(self, n: u64) -> std::result::Result<Self::Value, E> {
        T::deserialize(n.into_deserializer()).map(Some)
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> std::result::Result<Self::Value, E> {
        T::deserialize(n.into_deserializer()).map(Some)
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> std::result::Result<Self::Value, E> {
        T::deserialize(s.into_deserializer()).map(Some)
    }

    fn visit_string<E: serde::de::Error>(self, s: String) -> std::result::Result<Self::Value, E> {
        T::deserialize(s.into_deserializer()).map(Some)
    }
}

/// A value with a natural empty (a list, a map, `false`): `null` and `{}`
/// are that empty.
pub fn or_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    Ok(opt(d)?.unwrap_or_default())
}

fn id_of<E: serde::de::Error>(v: Value) -> std::result::Result<String, E> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        other => Err(E::custom(format!("expected an id (a string or an integer), got {}", kind(&other)))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// A required id: a string, or an integer Zoho sent unquoted.
pub fn id<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    id_of(Value::deserialize(d)?)
}

/// An optional id.
pub fn opt_id<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    let v = Value::deserialize(d)?;
    if is_nothing(&v) {
        return Ok(None);
    }
    id_of(v).map(Some)
}

/// An id that may be missing, as an empty string.
pub fn or_default_id<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(opt_id(d)?.unwrap_or_default())
}

/// A list of ids; `null` and `{}` are an empty list.
pub fn ids<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    let v = Value::deserialize(d)?;
    if is_nothing(&v) {
        return Ok(Vec::new());
    }
    match v {
        Value::Array(items) => items.into_iter().map(id_of).collect(),
        // A single id where a list was documented.
        other => Ok(vec![id_of(other)?]),
    }
}

fn num_of<T, E>(v: Value) -> std::result::Result<T, E>
where
    T: FromStr,
    T::Err: Display,
    E: serde::de::Error,
{
    let text = match &v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        other => return Err(E::custom(format!("expected a number, got {}", kind(other)))),
    };
    text.parse::<T>().map_err(|_| E::custom(format!("expected a number in range, got a {} that is not one", kind(&v))))
}

/// A required number, sent as a JSON number or as a numeric string.
pub fn num<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    num_of(Value::deserialize(d)?)
}

/// An optional number, sent as a JSON number or as a numeric string.
pub fn opt_num<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let v = Value::deserialize(d)?;
    if is_nothing(&v) || v.as_str().is_some_and(|s| s.trim().is_empty()) {
        return Ok(None);
    }
    num_of(v).map(Some)
}

/// A count that is 0 when absent, `null` or `{}`.
pub fn num_or_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + Default,
    T::Err: Display,
{
    Ok(opt_num(d)?.unwrap_or_default())
}

/// A flag: a boolean, `"true"`/`"false"`, or Zoho's object convention
/// (`{}` is off, a filled object such as `"unique": {"case_sensitive":
/// false}` is on). Absent and `null` are off.
pub fn flag<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(b) => Ok(b),
        Value::Null => Ok(false),
        Value::Object(m) => Ok(!m.is_empty()),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") || s.is_empty() => Ok(false),
        other => Err(D::Error::custom(format!("expected a boolean, got {}", kind(&other)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Probe {
        #[serde(deserialize_with = "id")]
        id: String,
        #[serde(default, deserialize_with = "opt")]
        sub: Option<Sub>,
        #[serde(default, deserialize_with = "opt_num")]
        n: Option<u32>,
        #[serde(default, deserialize_with = "flag")]
        on: bool,
        #[serde(default, deserialize_with = "or_default")]
        list: Vec<String>,
        #[serde(default, deserialize_with = "or_default")]
        subs: Vec<Sub>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Sub {
        module: String,
    }

    fn probe(body: &str) -> Result<Probe> {
        parse("probe", body.as_bytes())
    }

    #[test]
    fn nothing_has_three_spellings() {
        for sub in ["", r#","sub":null"#, r#","sub":{}"#] {
            let p = probe(&format!(r#"{{"id":"1"{sub}}}"#)).unwrap();
            assert_eq!(p.sub, None, "{sub}");
        }
        let p = probe(r#"{"id":"1","sub":{"module":"Leads","extra":1},"n":"7","on":{"case_sensitive":false},"list":null,"new_key":[1]}"#).unwrap();
        assert_eq!(p, Probe { id: "1".into(), sub: Some(Sub { module: "Leads".into() }), n: Some(7), on: true, list: vec![], subs: vec![] });
        assert_eq!(probe(r#"{"id":5725767000000002589}"#).unwrap().id, "5725767000000002589");
        assert!(!probe(r#"{"id":"1","on":{}}"#).unwrap().on);
        assert!(probe(r#"{"id":"1","on":"true"}"#).unwrap().on);
    }

    /// A list is read as it streams, not buffered first; every spelling of
    /// nothing still reads as empty.
    #[test]
    fn lists_stream_and_keep_their_paths() {
        for subs in ["", r#","subs":null"#, r#","subs":{}"#, r#","subs":[]"#] {
            assert_eq!(probe(&format!(r#"{{"id":"1"{subs}}}"#)).unwrap().subs, vec![], "{subs}");
        }
        let p = probe(r#"{"id":"1","subs":[{"module":"Leads"},{"module":"Deals","new_key":{}}]}"#).unwrap();
        assert_eq!(p.subs, vec![Sub { module: "Leads".into() }, Sub { module: "Deals".into() }]);
        let e = probe(r#"{"id":"1","subs":[{"module":"Leads"},{"module":7}]}"#).unwrap_err().to_string();
        assert!(e.contains("`subs[1].module`"), "{e}");
        let e = probe(r#"{"id":"1","subs":{"module":"Leads"}}"#).unwrap_err().to_string();
        assert!(e.contains("`subs`"), "a map where the list goes: {e}");
        #[derive(Debug, Deserialize)]
        struct Outer {
            #[serde(default, deserialize_with = "or_default")]
            subs: Vec<Sub>,
        }
        let kept = parse_value::<Outer>("probe", "data[].details", serde_json::json!({"subs": [{"module": "Leads"}]})).unwrap();
        assert_eq!(kept.subs, vec![Sub { module: "Leads".into() }]);
        let e = parse_value::<Outer>("probe", "data[].details", serde_json::json!({"subs": [{"module": "Leads"}, {}]})).unwrap_err().to_string();
        assert!(e.contains("`data[].details.subs[1]`") && e.contains("missing field `module`"), "a kept value's path: {e}");
    }

    /// A member is found past nested objects, lists, escapes and numbers,
    /// and reads as a Value's member would.
    #[test]
    fn a_member_is_read_without_the_rest() {
        let member_text = |json: &str, key: &str| {
            let [found] = members_text(json, [key]);
            found
        };
        let json = r#"{"Created_By":{"name":"A \"q\"","id":"1"},"tags":[{"id":"x"},2,null],"n":1.50,"id":"4876876000000624001","big":12345678901234567890}"#;
        assert_eq!(member_text(json, "id").as_deref(), Some("4876876000000624001"));
        assert_eq!(member_text(json, "big").as_deref(), Some("12345678901234567890"), "a number keeps its digits");
        assert_eq!(member_text(json, "n").as_deref(), Some("1.50"));
        for missing in ["name", "tags", "Created_By", "absent"] {
            assert_eq!(member_text(json, missing), None, "{missing}: no text there");
        }
        assert_eq!(member_text(r#"{"a\u0069d":"esc","id":"1","id":"2"}"#, "aid").as_deref(), Some("esc"), "an escaped name is compared unescaped");
        assert_eq!(member_text(r#"{"id":"1","id":"2"}"#, "id").as_deref(), Some("2"), "the last of a repeated key, as in a Value");
        for not_object in ["null", "{}", "[]", r#"["id"]"#, "7", r#""id""#, "true", r#"{"id":"#] {
            assert_eq!(member_text(not_object, "id"), None, "{not_object}");
        }
        let value: Value = serde_json::from_str(json).unwrap();
        for key in ["id", "big", "n", "name", "absent"] {
            assert_eq!(member_text(json, key), value.get(key).and_then(text_of), "{key}");
        }
        let [id, absent, n] = members_text(json, ["id", "absent", "n"]);
        assert_eq!((id.as_deref(), absent, n.as_deref()), (Some("4876876000000624001"), None, Some("1.50")), "several keys in one pass");
    }

    #[test]
    fn errors_name_the_key_and_quote_no_value() {
        let e = probe(r#"{"id":"1","sub":{"other":"x"}}"#).unwrap_err().to_string();
        assert!(e.contains("probe") && e.contains("`sub`") && e.contains("missing field `module`"), "{e}");
        let e = probe(r#"{"id":"1","n":"1000.secret-token-value"}"#).unwrap_err().to_string();
        assert!(e.contains("`n`") && !e.contains("secret"), "{e}");
        let e = probe(r#"{"id":"1","list":["1000.secret",{"a":1}]}"#).unwrap_err().to_string();
        assert!(e.contains("`list[1]`") && !e.contains("secret"), "{e}");
        let e = probe(r#"{"id":"1","sub":{"module":{"deep":"1000.secret"}}}"#).unwrap_err().to_string();
        assert!(e.contains("`sub.module`") && !e.contains("secret"), "a buffered value keeps its path: {e}");
        let e = probe(r#"{"sub":null}"#).unwrap_err().to_string();
        assert!(e.contains("missing field `id`"), "{e}");
        let e = probe(r#"{"id":"1000.secret""#).unwrap_err().to_string();
        assert!(e.contains("not JSON") && !e.contains("secret"), "{e}");
        let e = probe(r#"{"id":true}"#).unwrap_err();
        assert!(!e.is_transient(), "a body that does not parse is not retried");
    }
}
