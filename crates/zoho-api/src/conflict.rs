//! Who wins when a record changed on both sides since they last agreed: a
//! two-way table's policy, overridden field by field, and field ownership
//! (a field one side owns is never written by the other).
//!
//! Times are on Zoho's clock. `Modified_Time` has whole seconds, so a local
//! change within the same second as Zoho's cannot be ordered; Zoho wins
//! those (its edit may have come after).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Local,
    Zoho,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Local => "local",
            Side::Zoho => "zoho",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    ZohoWins,
    LocalWins,
    NewestWins,
}

impl Policy {
    pub fn parse(s: &str) -> Result<Policy> {
        match s {
            "zoho_wins" => Ok(Policy::ZohoWins),
            "local_wins" => Ok(Policy::LocalWins),
            "newest_wins" => Ok(Policy::NewestWins),
            other => Err(Error::InvalidInput(format!("conflict policy must be zoho_wins, local_wins or newest_wins, not \"{other}\""))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::ZohoWins => "zoho_wins",
            Policy::LocalWins => "local_wins",
            Policy::NewestWins => "newest_wins",
        }
    }
}

/// What a field follows: a policy of its own, or an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRule {
    Policy(Policy),
    OwnedBy(Side),
}

impl FieldRule {
    pub fn parse(s: &str) -> Result<FieldRule> {
        match s {
            "local" => Ok(FieldRule::OwnedBy(Side::Local)),
            "zoho" => Ok(FieldRule::OwnedBy(Side::Zoho)),
            other => Policy::parse(other).map(FieldRule::Policy).map_err(|_| {
                Error::InvalidInput(format!("a field's rule must be local or zoho (its owner), or zoho_wins, local_wins or newest_wins, not \"{other}\""))
            }),
        }
    }
}

/// A table's rules: its policy and the fields that differ from it, keyed
/// by Zoho field API name.
#[derive(Debug, Clone)]
pub struct Rules {
    pub policy: Policy,
    pub fields: BTreeMap<String, FieldRule>,
}

impl Rules {
    /// `fields` is a JSON object of field API name → rule (or null).
    pub fn parse(policy: &str, fields: Option<&Value>) -> Result<Rules> {
        let policy = Policy::parse(policy)?;
        let mut out = BTreeMap::new();
        match fields {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (field, rule) in m {
                    let Value::String(rule) = rule else {
                        return Err(Error::InvalidInput(format!("the rule for field \"{field}\" must be a string, not {rule}")));
                    };
                    out.insert(field.clone(), FieldRule::parse(rule)?);
                }
            }
            Some(other) => return Err(Error::InvalidInput(format!("fields must be a JSON object of field → rule, not {other}"))),
        }
        Ok(Rules { policy, fields: out })
    }

    pub fn rule(&self, field: &str) -> FieldRule {
        self.fields.get(field).copied().unwrap_or(FieldRule::Policy(self.policy))
    }

    /// The fields `side` owns.
    pub fn owned_by(&self, side: Side) -> impl Iterator<Item = &str> {
        self.fields.iter().filter(move |(_, r)| **r == FieldRule::OwnedBy(side)).map(|(f, _)| f.as_str())
    }

    /// Whether any field needs the local change time.
    pub fn needs_change_time(&self) -> bool {
        self.policy == Policy::NewestWins || self.fields.values().any(|r| *r == FieldRule::Policy(Policy::NewestWins))
    }

    /// Who wins `field`, changed locally at `local` and in Zoho at `zoho`
    /// (its `Modified_Time`), and why, in words for `zoho.conflicts`.
    pub fn winner(&self, field: &str, local: Option<DateTime<Utc>>, zoho: DateTime<Utc>) -> (Side, String) {
        match self.rule(field) {
            FieldRule::OwnedBy(side) => (side, format!("{field} is owned by {}", side.as_str())),
            FieldRule::Policy(Policy::ZohoWins) => (Side::Zoho, "zoho_wins".into()),
            FieldRule::Policy(Policy::LocalWins) => (Side::Local, "local_wins".into()),
            FieldRule::Policy(Policy::NewestWins) => match local {
                // Zoho's time is the start of its second.
                Some(l) if l >= zoho + Duration::seconds(1) => (Side::Local, format!("newest_wins: changed here at {}, in Zoho at {}", l.to_rfc3339(), zoho.to_rfc3339())),
                Some(l) => (Side::Zoho, format!("newest_wins: changed in Zoho at {}, here at {}", zoho.to_rfc3339(), l.to_rfc3339())),
                None => (Side::Zoho, "newest_wins: the local change has no time".into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn policies_and_overrides_pick_their_side() {
        let rules = Rules::parse("newest_wins", Some(&json!({"Phone": "local", "Lead_Status": "zoho", "Email": "local_wins", "City": "zoho_wins"}))).unwrap();
        let zoho = at("2026-12-01T10:00:00Z");
        let later = Some(at("2026-12-01T10:00:05Z"));
        let earlier = Some(at("2026-12-01T09:59:00Z"));
        assert_eq!(rules.winner("Phone", earlier, zoho).0, Side::Local);
        assert_eq!(rules.winner("Lead_Status", later, zoho).0, Side::Zoho);
        assert_eq!(rules.winner("Email", earlier, zoho).0, Side::Local);
        assert_eq!(rules.winner("City", later, zoho).0, Side::Zoho);
        assert_eq!(rules.winner("Last_Name", later, zoho).0, Side::Local);
        assert_eq!(rules.winner("Last_Name", earlier, zoho).0, Side::Zoho);
        assert_eq!(rules.owned_by(Side::Local).collect::<Vec<_>>(), vec!["Phone"]);
        assert_eq!(rules.owned_by(Side::Zoho).collect::<Vec<_>>(), vec!["Lead_Status"]);
        assert!(rules.needs_change_time());
        assert!(!Rules::parse("zoho_wins", Some(&json!({"Phone": "local"}))).unwrap().needs_change_time());
        assert!(Rules::parse("local_wins", Some(&json!({"Phone": "newest_wins"}))).unwrap().needs_change_time());
    }

    #[test]
    fn a_local_change_within_zohos_second_loses() {
        let rules = Rules::parse("newest_wins", None).unwrap();
        let zoho = at("2026-12-01T10:00:00Z");
        let (side, why) = rules.winner("Email", Some(at("2026-12-01T10:00:00.900Z")), zoho);
        assert_eq!(side, Side::Zoho);
        assert!(why.contains("changed in Zoho at 2026-12-01T10:00:00"), "{why}");
        assert_eq!(rules.winner("Email", Some(at("2026-12-01T10:00:01Z")), zoho).0, Side::Local);
        assert_eq!(rules.winner("Email", None, zoho).0, Side::Zoho);
    }

    #[test]
    fn bad_rules_are_refused_with_their_name() {
        let e = Rules::parse("last_wins", None).unwrap_err().to_string();
        assert!(e.contains("\"last_wins\""), "{e}");
        let e = Rules::parse("zoho_wins", Some(&json!({"Phone": "mine"}))).unwrap_err().to_string();
        assert!(e.contains("\"mine\""), "{e}");
        let e = Rules::parse("zoho_wins", Some(&json!({"Phone": 1}))).unwrap_err().to_string();
        assert!(e.contains("\"Phone\""), "{e}");
        assert!(Rules::parse("zoho_wins", Some(&json!(["Phone"]))).is_err());
        assert_eq!(Rules::parse("local_wins", Some(&json!(null))).unwrap().policy, Policy::LocalWins);
    }
}
