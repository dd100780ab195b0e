//! zoho-api: an async client for Zoho CRM's v8 API, with no Postgres in it.
//!
//! Modules, in the order a request meets them: [`dc`] picks hosts, [`auth`]
//! mints tokens, [`http`] sends (limits, retries, cancel), and the endpoint
//! modules ([`records`], [`coql`], [`bulk_read`], [`bulk_write`],
//! [`notifications`], [`metadata`]) shape requests and parse replies.
//! [`planner`] chooses the cheapest way to push N records and [`push`]
//! sends them by upsert or bulk job, with an outcome per row.

pub mod auth;
pub mod cancel;
pub mod dc;
pub mod error;
pub mod http;
pub mod job_wait;
pub mod usage;
pub mod wire;

pub use auth::{AccessToken, Credentials, MemoryTokenStore, RefreshBudget, Secret, TokenStore};
pub use cancel::{Cancel, CancelHook};
pub use dc::{DataCenter, Endpoints, Environment};
pub use error::{Error, Result};
pub use http::{ClientConfig, PollPolicy, RetryPolicy};

pub mod bulk_read;
pub mod bulk_write;
pub mod client;
pub mod conflict;
pub mod coql;
pub mod copy_text;
pub mod filter;
pub mod metadata;
pub mod notifications;
pub mod mapping;
pub mod planner;
pub mod push;
pub mod records;
pub mod sample;
pub mod values;
pub mod verify;

pub use client::ZohoClient;
pub use records::{Record, RecordError, RecordResult, WriteOp, WriteOptions, WriteSuccess};
