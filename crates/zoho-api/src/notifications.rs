//! Notification channels (`actions/watch`) and the payload Zoho POSTs to a
//! channel's `notify_url` (zoho-api.md §9).

use chrono::{DateTime, FixedOffset, SecondsFormat};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::client::ZohoClient;
use crate::error::{Error, Result};
use crate::http::{Call, Target};
use crate::records::{PageInfo, RecordError, ResultEntry};
use crate::wire;

/// The `token` echoed in callbacks: at most 50 characters.
pub const MAX_TOKEN_LEN: usize = 50;

#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// Chosen by the client; Zoho echoes it in every callback.
    pub channel_id: i64,
    /// `<Module>.<create|edit|delete|all>`.
    pub events: Vec<String>,
    pub notify_url: String,
    pub token: Option<String>,
    /// Zoho uses 1 hour when this is absent or more than 7 days away.
    pub channel_expiry: Option<DateTime<FixedOffset>>,
    pub return_affected_field_values: bool,
    pub notify_on_related_action: bool,
}

impl Channel {
    fn to_json(&self) -> Result<Value> {
        if let Some(t) = &self.token {
            if t.chars().count() > MAX_TOKEN_LEN {
                return Err(Error::InvalidInput(format!("a channel token has at most {MAX_TOKEN_LEN} characters")));
            }
        }
        let mut v = json!({
            // A string, as Zoho's documented bodies send it (the ids are longs).
            "channel_id": self.channel_id.to_string(),
            "events": self.events,
            "notify_url": self.notify_url,
            "return_affected_field_values": self.return_affected_field_values,
            "notify_on_related_action": self.notify_on_related_action,
        });
        if let Some(t) = &self.token {
            v["token"] = json!(t);
        }
        if let Some(e) = &self.channel_expiry {
            v["channel_expiry"] = json!(e.to_rfc3339_opts(SecondsFormat::Secs, false));
        }
        Ok(v)
    }
}

/// Zoho's answer for one channel of an enable or update.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelResult {
    pub outcome: std::result::Result<Vec<Subscription>, RecordError>,
}

/// One module a channel now watches, with the expiry Zoho actually set.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Subscription {
    #[serde(deserialize_with = "wire::id")]
    pub channel_id: String,
    #[serde(default, deserialize_with = "wire::opt")]
    pub resource_name: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_id")]
    pub resource_id: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub channel_expiry: Option<String>,
}

/// A channel as `GET actions/watch` lists it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ChannelInfo {
    #[serde(deserialize_with = "wire::id")]
    pub channel_id: String,
    #[serde(default, deserialize_with = "wire::or_default")]
    pub events: Vec<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub notify_url: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub channel_expiry: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub token: Option<String>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub resource_name: Option<String>,
}

/// The reply of enabling, updating or disabling channels: one entry per
/// channel (or, for a disable, per module of a channel).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WatchReply {
    #[serde(default, deserialize_with = "wire::or_default")]
    pub watch: Vec<ResultEntry>,
}

/// `GET actions/watch`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WatchListReply {
    #[serde(default, deserialize_with = "wire::or_default")]
    pub watch: Vec<ChannelInfo>,
    #[serde(default, deserialize_with = "wire::opt")]
    pub info: Option<PageInfo>,
}

/// The modules a successful entry reports in `details.events`; a disable
/// reports one module per entry, in `details` itself.
fn subscriptions(entry: &ResultEntry) -> Result<Vec<Subscription>> {
    #[derive(Deserialize)]
    struct Details {
        #[serde(default, deserialize_with = "wire::or_default")]
        events: Vec<Subscription>,
    }
    let value = entry.details.value();
    if wire::is_nothing(&value) {
        return Ok(Vec::new());
    }
    let details: Details = wire::parse_value("watch", "watch[].details", value.clone())?;
    if details.events.is_empty() && value.get("channel_id").is_some_and(|id| !wire::is_nothing(id)) {
        let one: Subscription = wire::parse_value("watch", "watch[].details", value)?;
        return Ok(vec![one]);
    }
    Ok(details.events)
}

impl WatchReply {
    /// One result per entry: the modules subscribed, or Zoho's error.
    pub fn results(&self) -> Result<Vec<ChannelResult>> {
        if self.watch.is_empty() {
            return Err(Error::malformed("watch", "key `watch`: no entries"));
        }
        self.watch
            .iter()
            .map(|entry| {
                let outcome = if entry.is_success() { Ok(subscriptions(entry)?) } else { Err(entry.error()) };
                Ok(ChannelResult { outcome })
            })
            .collect()
    }
}

fn parse_channel_results(body: Option<WatchReply>) -> Result<Vec<ChannelResult>> {
    body.ok_or_else(|| Error::malformed("watch", "no content"))?.results()
}

impl ZohoClient {
    /// Subscribes channels; one result per channel (a 202 means some failed).
    pub async fn watch_enable(&self, channels: &[Channel]) -> Result<Vec<ChannelResult>> {
        self.watch_send(Method::POST, channels).await
    }

    /// Merges the given keys into existing channels (e.g. a later expiry).
    /// Expired channels answer `NOT_SUBSCRIBED`: enable them again.
    pub async fn watch_update(&self, channels: &[Channel]) -> Result<Vec<ChannelResult>> {
        self.watch_send(Method::PATCH, channels).await
    }

    /// Replaces channels' whole configuration.
    pub async fn watch_replace(&self, channels: &[Channel]) -> Result<Vec<ChannelResult>> {
        self.watch_send(Method::PUT, channels).await
    }

    /// Removes some events from a channel, keeping the rest.
    pub async fn watch_remove_events(&self, channel_id: i64, events: &[String]) -> Result<Vec<ChannelResult>> {
        let body = json!({"watch": [{"channel_id": channel_id.to_string(), "events": events, "_delete_events": true}]});
        let call = Call::new("watch", Method::PATCH, Target::Api(self.path("actions/watch"))).json(body).per_record();
        parse_channel_results(self.t.send_json(&call).await?)
    }

    async fn watch_send(&self, method: Method, channels: &[Channel]) -> Result<Vec<ChannelResult>> {
        let watch: Vec<Value> = channels.iter().map(Channel::to_json).collect::<Result<_>>()?;
        let creates = method == Method::POST;
        let mut call = Call::new("watch", method, Target::Api(self.path("actions/watch")))
            .json(json!({ "watch": watch }))
            .per_record();
        if creates {
            call = call.creates();
        }
        parse_channel_results(self.t.send_json(&call).await?)
    }

    /// Active channels, all pages.
    pub async fn watch_list(&self) -> Result<Vec<ChannelInfo>> {
        type Env = WatchListReply;
        let mut out = Vec::new();
        for page in 1.. {
            let call = Call::new("watch", Method::GET, Target::Api(self.path("actions/watch"))).query("page", page);
            let Some(env) = self.t.send_json::<Env>(&call).await? else { break };
            out.extend(env.watch);
            if !env.info.is_some_and(|i| i.more_records) {
                break;
            }
        }
        Ok(out)
    }

    /// Stops channels.
    pub async fn watch_disable(&self, channel_ids: &[i64]) -> Result<Vec<ChannelResult>> {
        let ids: Vec<String> = channel_ids.iter().map(i64::to_string).collect();
        let call = Call::new("watch", Method::DELETE, Target::Api(self.path("actions/watch")))
            .query("channel_ids", ids.join(","))
            .per_record();
        parse_channel_results(self.t.send_json(&call).await?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Insert,
    Update,
    Delete,
}

/// One callback. It names records, it does not carry them: re-read the ids.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct WebhookPayload {
    /// Zoho's clock when it sent this, in epoch milliseconds.
    #[serde(default, deserialize_with = "wire::opt_num")]
    pub server_time: Option<i64>,
    #[serde(default, deserialize_with = "wire::or_default")]
    pub query_params: Map<String, Value>,
    pub module: String,
    /// Names an older API version than the one in use: not parsed.
    #[serde(default, deserialize_with = "wire::opt")]
    pub resource_uri: Option<String>,
    #[serde(default, deserialize_with = "wire::ids")]
    pub ids: Vec<String>,
    /// `[{ "<id>": ["Field", …] }]` for updates; empty means "unknown".
    #[serde(default, deserialize_with = "wire::or_default")]
    pub affected_fields: Vec<Map<String, Value>>,
    #[serde(default, deserialize_with = "wire::or_default")]
    pub affected_values: Vec<AffectedValues>,
    pub operation: Operation,
    #[serde(deserialize_with = "wire::id")]
    pub channel_id: String,
    #[serde(default, deserialize_with = "wire::opt", skip_serializing)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct AffectedValues {
    #[serde(deserialize_with = "wire::id")]
    pub record_id: String,
    #[serde(default, deserialize_with = "wire::or_default")]
    pub values: Map<String, Value>,
}

impl WebhookPayload {
    pub fn parse(body: &[u8]) -> Result<WebhookPayload> {
        wire::parse("webhook", body)
    }

    /// Compares the echoed token in constant time: it is the only proof
    /// that a callback came from our channel.
    pub fn token_matches(&self, expected: &str) -> bool {
        let got = self.token.as_deref().unwrap_or_default().as_bytes();
        let want = expected.as_bytes();
        got.len() == want.len() && got.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    /// The fields that changed on `id`, if Zoho said.
    pub fn fields_changed(&self, id: &str) -> Option<Vec<String>> {
        self.affected_fields.iter().find_map(|entry| {
            entry.get(id)?.as_array().map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
        })
    }

    /// The changed values Zoho sent for `id` (channels created with
    /// `return_affected_field_values`).
    pub fn values_of(&self, id: &str) -> Option<&Map<String, Value>> {
        self.affected_values.iter().find(|v| v.record_id == id).map(|v| &v.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_documented_payloads() {
        let insert = br#"{"server_time":1718117126473,"query_params":{"tenant":"42"},"module":"Leads",
            "resource_uri":"https://www.zohoapis.com/crm/v2/Leads","ids":["5725767000003000064"],
            "affected_fields":[],"operation":"insert","channel_id":"1000000068001","token":"tok"}"#;
        let p = WebhookPayload::parse(insert).unwrap();
        assert_eq!((p.operation, p.ids.len(), p.query_params["tenant"].as_str()), (Operation::Insert, 1, Some("42")));
        assert!(p.token_matches("tok") && !p.token_matches("tok2") && !p.token_matches(""));

        let update = br#"{"server_time":1,"query_params":{},"module":"Leads","ids":[5725767000003000010],
            "affected_fields":[{"5725767000003000010":["Mobile"]}],
            "affected_values":[{"record_id":"5725767000003000010","values":{"Mobile":"123"}}],
            "operation":"update","channel_id":1000000068001,"token":"t"}"#;
        let p = WebhookPayload::parse(update).unwrap();
        assert_eq!(p.channel_id, "1000000068001");
        assert_eq!(p.fields_changed("5725767000003000010"), Some(vec!["Mobile".to_string()]));
        assert_eq!(p.values_of("5725767000003000010").unwrap()["Mobile"], "123");

        assert!(WebhookPayload::parse(br#"{"operation":"create"}"#).is_err());
    }

    #[test]
    fn long_tokens_are_refused_before_sending() {
        let c = Channel {
            channel_id: 1,
            events: vec!["Leads.all".into()],
            notify_url: "http://x".into(),
            token: Some("x".repeat(51)),
            channel_expiry: None,
            return_affected_field_values: false,
            notify_on_related_action: false,
        };
        assert!(c.to_json().is_err());
    }
}
