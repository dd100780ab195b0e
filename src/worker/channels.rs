//! The worker's view of the channels in zoho.watches, and what it does
//! with them each tick: reload, apply queued notifications, renew, catch up.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pgrx::prelude::*;
use zoho_api::notifications::{Channel, Operation, WebhookPayload};
use zoho_api::ZohoClient;

use super::listener::{self, Listener};
use super::supervise::{self, Supervisor};
use super::{apply, catchup, epoch_secs, from_epoch_secs, in_transaction, WarnOnce};
use crate::error::ZohoFdwError;
use crate::export::Target;
use crate::runtime::block_on;
use crate::privileges::{as_owner, Access, Limits};
use crate::{gucs, server};

const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// How often the text of GET /metrics is made anew.
const METRICS_EVERY: Duration = Duration::from_secs(2);
const RENEW_CHECK_EVERY: Duration = Duration::from_secs(1);
/// The second catch-up after the worker starts or a channel lapses.
const FOLLOW_UP: Duration = Duration::from_secs(5);
/// Notifications applied per tick, so renewals and shutdown are not starved.
const MAX_BATCH: usize = 500;

#[derive(Debug, Clone)]
struct Watch {
    channel_id: i64,
    module: String,
    target: pg_sys::Oid,
    server: String,
    owner: pg_sys::Oid,
    events: Vec<String>,
    notify_url: String,
    token: String,
    /// Only records this COQL condition matches are kept.
    filter: Option<String>,
    /// Schema drift ([`super::drift`]): the policy, the fields the last
    /// check saw, whether a check is due, and whether a change holds the
    /// channel (its changes wait until zoho_resume_watch).
    schema_changes: String,
    schema: Option<serde_json::Value>,
    schema_due: bool,
    held: bool,
    expires_at: Option<DateTime<Utc>>,
    synced_until: DateTime<Utc>,
    /// Digest of the server's and user mapping's options: a changed server
    /// (a new api_domain, new credentials) gets a new client.
    options: String,
}

pub struct Worker {
    listener: Option<Listener>,
    watches: HashMap<i64, Watch>,
    clients: HashMap<(String, u32, String), Rc<ZohoClient>>,
    loaded: Option<Instant>,
    renew_checked: Option<Instant>,
    /// When each channel last caught up (absent: due now).
    caught_up: HashMap<i64, Instant>,
    /// Channels past their follow-up catch-up: the first one after the
    /// worker starts is repeated shortly, for changes whose callbacks
    /// failed while the worker was coming up.
    settled: std::collections::HashSet<i64>,
    unreadable: WarnOnce,
    /// Failing renewals and catch-ups back off, each on its own.
    renewals: Supervisor,
    catchups: Supervisor,
    latencies: super::metrics::Latencies,
    metrics_written: Option<Instant>,
}

impl Worker {
    pub fn start() -> Worker {
        let listener = gucs::webhook_listen().and_then(|addr| match listener::start(&addr) {
            Ok(l) => {
                crate::job_callbacks::set_listening(true);
                Some(l)
            }
            Err(e) => {
                warning!("zoho_fdw worker: no webhook listener: {e}; channels are kept current by catch-up reads only");
                None
            }
        });
        Worker {
            listener,
            watches: HashMap::new(),
            clients: HashMap::new(),
            loaded: None,
            renew_checked: None,
            caught_up: HashMap::new(),
            settled: Default::default(),
            unreadable: WarnOnce::default(),
            renewals: Supervisor::default(),
            catchups: Supervisor::default(),
            latencies: Default::default(),
            metrics_written: None,
        }
    }

    /// Bulk jobs are polled again from now on (the process is ending).
    pub fn stop_listening(&self) {
        if self.listener.is_some() {
            crate::job_callbacks::set_listening(false);
        }
    }

    pub fn listening(&self) -> Option<std::net::SocketAddr> {
        self.listener.as_ref().map(|l| l.addr)
    }

    pub fn tick(&mut self) {
        if self.loaded.is_none_or(|t| t.elapsed() >= RELOAD_EVERY) {
            match in_transaction(load) {
                Ok(watches) => {
                    self.set_watches(watches);
                    self.unreadable.ok();
                }
                Err(e) => self.unreadable.warn("cannot read zoho.watches", e),
            }
            self.loaded = Some(Instant::now());
        }
        self.apply_notifications();
        self.disable_strays();
        if self.renew_checked.is_none_or(|t| t.elapsed() >= RENEW_CHECK_EVERY) {
            self.renew_checked = Some(Instant::now());
            self.renew();
            self.catch_up();
        }
        if let Some(l) = &self.listener {
            if self.metrics_written.is_none_or(|t| t.elapsed() >= METRICS_EVERY) {
                self.metrics_written = Some(Instant::now());
                if let Ok(text) = in_transaction(|| super::metrics::render(&self.latencies)) {
                    if let Ok(mut m) = l.metrics.write() {
                        *m = text;
                    }
                }
            }
        }
    }

    fn set_watches(&mut self, watches: Vec<Watch>) {
        if let Some(l) = &self.listener {
            if let Ok(mut tokens) = l.tokens.write() {
                *tokens = watches.iter().map(|w| (w.channel_id.to_string(), w.token.clone())).collect();
            }
        }
        self.caught_up.retain(|id, _| watches.iter().any(|w| w.channel_id == *id));
        self.clients.retain(|(server, owner, options), _| watches.iter().any(|w| &w.server == server && u32::from(w.owner) == *owner && &w.options == options));
        self.watches = watches.into_iter().map(|w| (w.channel_id, w)).collect();
    }

    /// The client for a channel's server and owner, made (from the
    /// catalogs, so in a transaction) the first time; a failure is
    /// recorded on the channel.
    fn client(&mut self, w: &Watch) -> Option<Rc<ZohoClient>> {
        let key = (w.server.clone(), u32::from(w.owner), w.options.clone());
        if let Some(c) = self.clients.get(&key) {
            return Some(c.clone());
        }
        match in_transaction(|| server::resolve(Some(&w.server))?.client_for(w.owner)) {
            Ok(c) => {
                let c = Rc::new(c);
                self.clients.insert(key, c.clone());
                Some(c)
            }
            Err(e) => {
                record_error(w.channel_id, &e);
                None
            }
        }
    }

    fn apply_notifications(&mut self) {
        let Some(l) = &self.listener else { return };
        let incoming: Vec<listener::Incoming> = l.queue.try_iter().take(MAX_BATCH).collect();
        if incoming.is_empty() {
            return;
        }
        // Callbacks of channels made since the last reload: reload, then
        // check their tokens (the listener holds the HTTP answer meanwhile).
        if incoming.iter().any(|i| i.verdict.is_some()) {
            if let Ok(watches) = in_transaction(load) {
                self.set_watches(watches);
                self.loaded = Some(Instant::now());
            }
        }
        let mut batch: Vec<WebhookPayload> = Vec::with_capacity(incoming.len());
        for i in incoming {
            match i.verdict {
                None => batch.push(i.payload),
                Some(verdict) => {
                    let ok = i.payload.channel_id.parse::<i64>().ok().and_then(|id| self.watches.get(&id)).is_some_and(|w| i.payload.token_matches(&w.token));
                    let _ = verdict.send(ok);
                    if ok {
                        batch.push(i.payload);
                    }
                }
            }
        }
        // One fetch per channel and operation, ids in arrival order.
        batch.sort_by_key(|p| p.channel_id.clone());
        // With the oldest `server_time` of each group, for the latency.
        let mut groups: Vec<(i64, Operation, Vec<String>, Option<i64>)> = Vec::new();
        for p in batch {
            let Ok(id) = p.channel_id.parse::<i64>() else { continue };
            match groups.last_mut() {
                Some((c, op, ids, sent)) if *c == id && *op == p.operation => {
                    ids.extend(p.ids);
                    *sent = match (*sent, p.server_time) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                _ => groups.push((id, p.operation, p.ids, p.server_time)),
            }
        }
        for (channel, op, ids, sent) in groups {
            // A held channel's changes are read by its catch-up once resumed.
            let Some(w) = self.watches.get(&channel).filter(|w| !w.held).cloned() else { continue };
            let Some(client) = self.client(&w) else { continue };
            let n = ids.len() as i64;
            // Zoho is read first, with no transaction open; the rows are
            // written in a short one.
            let done = (|| -> Result<(), String> {
                let target = self.target_of(&client, &w)?;
                enum Change {
                    Gone(Vec<i64>),
                    /// Records, and the ids of those that no longer match the filter.
                    Now(Vec<zoho_api::Record>, Vec<i64>),
                }
                let api = |e| ZohoFdwError::api(&w.server, e).to_string();
                let change = match op {
                    Operation::Delete => Change::Gone(confirmed_deleted(&client, &w, &ids).map_err(|e| e.to_string())?),
                    Operation::Insert | Operation::Update => {
                        let fields: Vec<String> = target.columns.iter().map(|(_, f)| f.api_name.clone()).collect();
                        let records = block_on(client.get_by_ids(&w.module, &ids, &fields)).map_err(api)?;
                        match self.filter_of(&client, &w)? {
                            Some(filter) => {
                                let (kept, left) = catchup::split_by_filter(&client, &w.module, &filter, records).map_err(api)?;
                                Change::Now(kept, left)
                            }
                            None => Change::Now(records, Vec::new()),
                        }
                    }
                };
                in_transaction(|| {
                    as_owner(w.owner, Some((w.target, Access::Mirror)), Limits::from_gucs(), || match &change {
                        Change::Gone(ids) => apply::delete(&target, ids).map(|_| ()),
                        Change::Now(records, left) => {
                            apply::upsert(&target, records, apply::clock_offset(&client))?;
                            crate::filter::leave(&target, left).map(|_| ())
                        }
                    })?;
                    Spi::run_with_args(
                        "UPDATE zoho.watches SET notifications = notifications + $2, last_notified = now() WHERE channel_id = $1",
                        &[channel.into(), n.into()],
                    )
                    .map_err(ZohoFdwError::from)
                })
            })();
            if let (Ok(()), Some(sent)) = (&done, sent) {
                // Zoho's clock at sending to Zoho's clock now.
                let now = client.transport().zoho_time(Utc::now(), chrono::Duration::zero());
                self.latencies.last.insert(channel, ((now.timestamp_millis() - sent) as f64 / 1000.0).max(0.0));
            }
            if let Err(e) = done {
                // The changes are not lost: the next catch-up reads them.
                record_error(channel, &format!("applying a notification: {e}"));
                self.caught_up.remove(&channel);
            }
        }
    }

    /// The watched table as its records land in it.
    fn target_of(&self, client: &ZohoClient, w: &Watch) -> Result<Target, String> {
        catchup::target_as(w.owner, client, &w.server, &w.module, w.target, None, &format!("channel {}", w.channel_id))
    }

    /// The channel's filter against the module's fields (cached).
    fn filter_of(&self, client: &ZohoClient, w: &Watch) -> Result<Option<zoho_api::filter::Filter>, String> {
        catchup::filter_as(client, &w.server, &w.module, w.filter.as_deref(), &format!("channel {}", w.channel_id))
    }

    /// Channels of rolled-back zoho_watch calls: disabled in Zoho.
    fn disable_strays(&mut self) {
        for (server, owner, channel) in super::strays::take() {
            if self.watches.contains_key(&channel) {
                continue;
            }
            let done = in_transaction(|| {
                let ctx = server::resolve_oid(server)?;
                Ok((ctx.client_for(owner)?, ctx.name))
            })
            .and_then(|(client, name)| block_on(client.watch_disable(&[channel])).map_err(|e| ZohoFdwError::api(&name, e).to_string()));
            match done {
                Ok(_) => log!("zoho_fdw worker: channel {channel} of a rolled-back zoho_watch disabled in Zoho"),
                Err(e) => warning!("zoho_fdw worker: channel {channel} of a rolled-back zoho_watch stays until it expires: {e}"),
            }
        }
    }

    fn renew(&mut self) {
        let margin = chrono::Duration::seconds(gucs::RENEW_MARGIN.get().into());
        let now = Utc::now();
        let due: Vec<Watch> =
            self.watches.values().filter(|w| w.expires_at.is_none_or(|e| e - now <= margin) && self.renewals.ready(w.channel_id)).cloned().collect();
        for w in due {
            let Some(client) = self.client(&w) else { continue };
            let expiry = Utc::now() + chrono::Duration::seconds(gucs::CHANNEL_EXPIRY.get().into());
            let channel = Channel {
                channel_id: w.channel_id,
                events: w.events.iter().map(|e| format!("{}.{e}", w.module)).collect(),
                notify_url: w.notify_url.clone(),
                token: Some(w.token.clone()),
                channel_expiry: Some(expiry.fixed_offset()),
                return_affected_field_values: false,
                notify_on_related_action: false,
            };
            let renewed = block_on(async {
                let first = client.watch_update(std::slice::from_ref(&channel)).await?;
                match first.into_iter().next().map(|r| r.outcome) {
                    Some(Ok(subs)) => Ok((subs, false)),
                    // Expired on Zoho's side: subscribe again, then catch up.
                    Some(Err(e)) if e.code == "NOT_SUBSCRIBED" => {
                        let again = client.watch_enable(std::slice::from_ref(&channel)).await?;
                        match again.into_iter().next().map(|r| r.outcome) {
                            Some(Ok(subs)) => Ok((subs, true)),
                            Some(Err(e)) => Err(zoho_api::Error::InvalidInput(format!("Zoho refused to subscribe the channel again: {e}"))),
                            None => Err(zoho_api::Error::InvalidInput("no answer for the channel".into())),
                        }
                    }
                    Some(Err(e)) => Err(zoho_api::Error::InvalidInput(format!("Zoho refused to renew the channel: {e}"))),
                    None => Err(zoho_api::Error::InvalidInput("no answer for the channel".into())),
                }
            });
            match renewed {
                Ok((subs, lapsed)) => {
                    let granted = subs.iter().filter_map(|s| s.channel_expiry.as_deref()).filter_map(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc)).min().unwrap_or(expiry);
                    let stored = in_transaction(|| {
                        Spi::run_with_args(
                            // A channel fails as long as its renewal or its catch-up does.
                            "UPDATE zoho.watches SET expires_at = to_timestamp($2), renewed_at = now(), failures = $3,
                                    next_attempt = CASE WHEN $3 > 0 THEN next_attempt END WHERE channel_id = $1",
                            &[w.channel_id.into(), epoch_secs(granted).into(), (self.catchups.count(w.channel_id) as i32).into()],
                        )
                        .map_err(ZohoFdwError::from)
                    });
                    if let Err(e) = stored {
                        record_error(w.channel_id, &e);
                    }
                    supervise::record_recovery(self.renewals.succeeded(w.channel_id), "channel", || supervise::table_name(w.target));
                    if let Some(known) = self.watches.get_mut(&w.channel_id) {
                        known.expires_at = Some(granted);
                    }
                    if lapsed {
                        log!("zoho_fdw worker: channel {} had lapsed; subscribed again, catching up", w.channel_id);
                        let target = supervise::table_name(w.target);
                        let _ = in_transaction(|| supervise::announce("lapsed", "channel", &target, serde_json::json!({"channel_id": w.channel_id.to_string()})));
                        self.caught_up.remove(&w.channel_id);
                        self.settled.remove(&w.channel_id);
                    }
                }
                Err(e) => {
                    let f = self.renewals.failed(w.channel_id);
                    let other = self.catchups.count(w.channel_id);
                    failing(&w, &f, other, &format!("renewing: {e}"));
                }
            }
        }
    }

    fn catch_up(&mut self) {
        let every = Duration::from_secs(gucs::CATCHUP_INTERVAL.get() as u64);
        let due: Vec<Watch> = self
            .watches
            .values()
            .filter(|w| !w.held && self.catchups.ready(w.channel_id))
            .filter(|w| match self.caught_up.get(&w.channel_id) {
                None => true,
                Some(t) if !self.settled.contains(&w.channel_id) => t.elapsed() >= FOLLOW_UP.min(every),
                Some(t) => t.elapsed() >= every,
            })
            .cloned()
            .collect();
        for w in due {
            let renewals_failing = self.renewals.count(w.channel_id);
            let Some(client) = self.client(&w) else { continue };
            // A change of fields first: the catch-up then writes the columns
            // it added, or does not run while the channel is held.
            if w.schema_changes != "ignore" && w.schema_due {
                let checked = super::drift::check(&w.drift(), Some(&client));
                if let Some(known) = self.watches.get_mut(&w.channel_id) {
                    known.schema_due = false;
                    known.held = matches!(checked, Ok(false));
                }
                match checked {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        let f = self.catchups.failed(w.channel_id);
                        failing(&w, &f, self.renewals.count(w.channel_id), &format!("checking the module's fields: {e}"));
                        continue;
                    }
                }
            }
            let started = Utc::now();
            // A job reads a large gap; until it is done, nothing to do.
            let busy = in_transaction(|| {
                Spi::get_one_with_args::<bool>(
                    "SELECT EXISTS (SELECT 1 FROM zoho.job_queue WHERE channel_id = $1 AND state IN ('queued', 'running'))",
                    &[w.channel_id.into()],
                )
                .map_err(ZohoFdwError::from)
            });
            // Zoho is read first, with no transaction open; the changes are
            // applied in a short one.
            let fetched = match busy {
                Ok(Some(true)) => Ok(None),
                Ok(_) => self.target_of(&client, &w).and_then(|target| {
                    let filter = self.filter_of(&client, &w)?;
                    catchup::fetch_changes(&client, &w.server, &w.module, &target, w.synced_until, Some(catchup::max_list_pages()), filter.as_ref()).map(|f| Some((target, f))).map_err(|e| e.to_string())
                }),
                Err(e) => Err(e),
            };
            let done = fetched.and_then(|fetched| in_transaction(|| {
                let Some((target, fetched)) = &fetched else {
                    return Ok((0, 0, false, started));
                };
                let r = as_owner(w.owner, Some((w.target, Access::Mirror)), Limits::from_gucs(), || fetched.apply(target))?;
                // Zoho's clock decides what "since" means next time.
                let started = client.transport().zoho_time(started, super::sync_overlap());
                if r.incomplete {
                    Spi::run_with_args(
                        "INSERT INTO zoho.job_queue (kind, module, target, since, server, owner, channel_id, filter)
                         SELECT 'catchup', module, target, synced_until - interval '1 second', server, owner, channel_id, filter FROM zoho.watches WHERE channel_id = $1",
                        &[w.channel_id.into()],
                    )
                    .map_err(ZohoFdwError::from)?;
                    log!("zoho_fdw worker: channel {} is far behind; a Bulk Read job reads the rest", w.channel_id);
                    return Ok((r.changed, 0, false, started));
                }
                Spi::run_with_args(
                    "UPDATE zoho.watches SET synced_until = to_timestamp($2), last_catchup = now(), last_error = NULL, failures = $3,
                            next_attempt = CASE WHEN $3 > 0 THEN next_attempt END
                      WHERE channel_id = $1",
                    &[w.channel_id.into(), epoch_secs(started).into(), (renewals_failing as i32).into()],
                )
                .map_err(ZohoFdwError::from)?;
                Ok((r.changed, r.removed, true, started))
            }));
            if self.caught_up.insert(w.channel_id, Instant::now()).is_some() {
                self.settled.insert(w.channel_id);
            }
            match done {
                Ok((changed, removed, advanced, synced_at)) => {
                    if changed + removed > 0 {
                        log!("zoho_fdw worker: channel {} caught up: {changed} row(s) written, {removed} deleted", w.channel_id);
                    }
                    if let Some(known) = self.watches.get_mut(&w.channel_id).filter(|_| advanced) {
                        known.synced_until = synced_at;
                    }
                    supervise::record_recovery(self.catchups.succeeded(w.channel_id), "channel", || supervise::table_name(w.target));
                }
                Err(e) => {
                    let f = self.catchups.failed(w.channel_id);
                    let other = self.renewals.count(w.channel_id);
                    failing(&w, &f, other, &format!("catching up: {e}"));
                }
            }
        }
    }
}

impl Watch {
    fn drift(&self) -> super::drift::Flow<'_> {
        super::drift::Flow {
            of: super::drift::Of::Watch(self.channel_id),
            target: self.target,
            module: &self.module,
            server: Some(&self.server),
            owner: self.owner,
            mapping: None,
            schema_changes: &self.schema_changes,
            schema: self.schema.as_ref(),
            schema_due: self.schema_due,
            filter: self.filter.as_deref(),
        }
    }
}

/// The ids of a delete callback that Zoho no longer has: a replayed or
/// forged callback (its token may have leaked) cannot delete rows of
/// records that still exist.
fn confirmed_deleted(client: &ZohoClient, w: &Watch, ids: &[String]) -> Result<Vec<i64>, ZohoFdwError> {
    let alive = block_on(client.get_by_ids(&w.module, ids, &["Modified_Time".to_string()])).map_err(|e| ZohoFdwError::api(&w.server, e))?;
    let alive: std::collections::HashSet<String> = alive.iter().filter_map(zoho_api::records::record_id).collect();
    let kept = ids.iter().filter(|i| alive.contains(*i)).count();
    if kept > 0 {
        log!("zoho_fdw worker: channel {}: {kept} record(s) named in a delete callback still exist in Zoho; their rows are kept", w.channel_id);
    }
    Ok(ids.iter().filter(|i| !alive.contains(*i)).filter_map(|i| i.parse().ok()).collect())
}



fn load() -> Result<Vec<Watch>, ZohoFdwError> {
    super::spi(Spi::connect(|spi| {
        let rows = spi.select(
            "SELECT w.channel_id, w.module, w.target::oid, w.server::text, w.owner::oid, w.events, w.notify_url, w.token,
                    extract(epoch FROM w.expires_at)::float8, extract(epoch FROM w.synced_until)::float8,
                    md5(coalesce(s.srvoptions::text, '') || coalesce((SELECT um.umoptions::text FROM pg_user_mapping um
                          WHERE um.umserver = s.oid AND um.umuser IN (w.owner::oid, 0) ORDER BY um.umuser DESC LIMIT 1), '')),
                    w.filter, w.schema_changes, w.schema,
                    w.schema_checked IS NULL OR w.schema_checked <= now() - make_interval(secs => $1), w.held_reason IS NOT NULL
               FROM zoho.watches w LEFT JOIN pg_foreign_server s ON s.srvname = w.server",
            None,
            &[(gucs::SCHEMA_CHECK_INTERVAL.get() as f64).into()],
        )?;
        let mut out = Vec::new();
        for r in rows {
            out.push(Watch {
                channel_id: r.get::<i64>(1)?.unwrap_or_default(),
                module: r.get::<String>(2)?.unwrap_or_default(),
                target: r.get::<pg_sys::Oid>(3)?.unwrap_or(pg_sys::InvalidOid),
                server: r.get::<String>(4)?.unwrap_or_default(),
                owner: r.get::<pg_sys::Oid>(5)?.unwrap_or(pg_sys::InvalidOid),
                events: r.get::<Vec<String>>(6)?.unwrap_or_default(),
                notify_url: r.get::<String>(7)?.unwrap_or_default(),
                token: r.get::<String>(8)?.unwrap_or_default(),
                expires_at: r.get::<f64>(9)?.and_then(from_epoch_secs),
                synced_until: r.get::<f64>(10)?.and_then(from_epoch_secs).unwrap_or_default(),
                options: r.get::<String>(11)?.unwrap_or_default(),
                filter: r.get::<String>(12)?,
                schema_changes: r.get::<String>(13)?.unwrap_or_default(),
                schema: r.get::<pgrx::JsonB>(14)?.map(|j| j.0),
                schema_due: r.get::<bool>(15)?.unwrap_or(false),
                held: r.get::<bool>(16)?.unwrap_or(false),
            });
        }
        Ok(out)
    }))
}

/// A renewal or catch-up that failed: logged once per doubling of its
/// run of failures, recorded on the channel, announced when a run starts.
fn failing(w: &Watch, f: &supervise::Failure, other: u32, e: &str) {
    if f.log {
        warning!("zoho_fdw worker: channel {} ({} time(s) in a row; next try in {:.1}s): {e}", w.channel_id, f.count, f.wait.as_secs_f64());
    }
    supervise::record_failure(f, "channel", &supervise::table_name(w.target), e, || {
        Spi::run_with_args(
            "UPDATE zoho.watches SET last_error = $2, last_error_at = now(), failures = $3, next_attempt = now() + make_interval(secs => $4) WHERE channel_id = $1",
            &[w.channel_id.into(), e.into(), (f.count.max(other) as i32).into(), f.wait.as_secs_f64().into()],
        )
        .map_err(ZohoFdwError::from)
    });
}

fn record_error(channel: i64, e: &str) {
    warning!("zoho_fdw worker: channel {channel}: {e}");
    let _ = in_transaction(|| {
        Spi::run_with_args("UPDATE zoho.watches SET last_error = $2, last_error_at = now() WHERE channel_id = $1", &[channel.into(), e.into()])
            .map_err(ZohoFdwError::from)
    });
}
