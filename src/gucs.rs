//! The extension's settings (`zoho_fdw.*`), read by the worker and by
//! `zoho_watch`.

use std::ffi::CString;

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};

/// The database the background worker works in (its catalog tables are
/// there); unset, the worker waits idle.
pub static DATABASE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// `host:port` the worker's webhook listener binds; unset, no listener.
pub static WEBHOOK_LISTEN: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// The public URL Zoho posts notifications to (default notify_url).
pub static WEBHOOK_URL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// How long a channel is subscribed for, in seconds (Zoho allows a week).
pub static CHANNEL_EXPIRY: GucSetting<i32> = GucSetting::<i32>::new(86_400);
/// Renew a channel this many seconds before it expires.
pub static RENEW_MARGIN: GucSetting<i32> = GucSetting::<i32>::new(300);
/// Seconds between catch-up reads of each channel's module (the safety net
/// for missed notifications).
pub static CATCHUP_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(600);
/// Pages of the records list (200 records, 1 credit each) a catch-up reads
/// before it hands the rest to a Bulk Read job (50 credits for any number
/// of records): past 10,000 records Bulk Read is cheaper, and the records
/// list stops at 100,000 anyway.
pub static CATCHUP_LIST_PAGES: GucSetting<i32> = GucSetting::<i32>::new(50);

/// Seconds between checks of a pulled module's fields against what the
/// last check saw (schema drift): a check costs one metadata call.
pub static SCHEMA_CHECK_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(600);

/// Let the planner join a foreign table to another relation by sending the
/// other side's keys to Zoho 100 at a time (the batched join custom scan).
pub static ENABLE_BATCHED_JOIN: GucSetting<bool> = GucSetting::<bool>::new(true);

/// Credits one ANALYZE of a foreign table may spend on its sample.
pub static ANALYZE_MAX_CREDITS: GucSetting<i32> = GucSetting::<i32>::new(33);

/// Serve `GET /metrics` to any address, not only this host's.
pub static METRICS_FROM_ANYWHERE: GucSetting<bool> = GucSetting::<bool>::new(false);
/// Milliseconds the worker waits for a lock on a flow's table before that
/// flow gives up until its next run.
pub static WORKER_LOCK_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(1_000);
/// Milliseconds one run of one flow may take (its statements and its API
/// calls); 0 for no limit.
pub static WORKER_STATEMENT_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(600_000);

/// Milliseconds a failing flow waits before its second attempt; the wait
/// doubles with each failure in a row, up to `FAILURE_MAX_WAIT`.
pub static FAILURE_FIRST_WAIT: GucSetting<i32> = GucSetting::<i32>::new(2_000);
pub static FAILURE_MAX_WAIT: GucSetting<i32> = GucSetting::<i32>::new(600_000);

fn text(s: &GucSetting<Option<CString>>) -> Option<String> {
    s.get().map(|c| c.to_string_lossy().into_owned()).filter(|s| !s.is_empty())
}

pub fn database() -> Option<String> {
    text(&DATABASE)
}
pub fn webhook_listen() -> Option<String> {
    text(&WEBHOOK_LISTEN)
}
pub fn webhook_url() -> Option<String> {
    text(&WEBHOOK_URL)
}

pub fn init() {
    GucRegistry::define_string_guc(
        c"zoho_fdw.database",
        c"Database the zoho_fdw background worker works in.",
        c"The worker reads its channels and schedules from this database's zoho schema. Unset, it waits idle.",
        &DATABASE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"zoho_fdw.webhook_listen",
        c"host:port on which the worker receives Zoho's notifications.",
        c"Unset, no listener runs and channels are kept current by catch-up reads only.",
        &WEBHOOK_LISTEN,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"zoho_fdw.webhook_url",
        c"Public URL of the webhook listener, given to Zoho as notify_url.",
        c"zoho_watch uses it when no notify_url is passed.",
        &WEBHOOK_URL,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"zoho_fdw.channel_expiry",
        c"Seconds a notification channel is subscribed for.",
        c"Zoho allows at most a week; the worker renews channels before they expire.",
        &CHANNEL_EXPIRY,
        60,
        7 * 86_400,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"zoho_fdw.renew_margin",
        c"Seconds before expiry at which the worker renews a channel.",
        c"",
        &RENEW_MARGIN,
        1,
        7 * 86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"zoho_fdw.catchup_interval",
        c"Seconds between the worker's catch-up reads of each watched module.",
        c"A catch-up reads what changed since the channel was last known current (the records list with If-Modified-Since, and deleted records).",
        &CATCHUP_INTERVAL,
        1,
        7 * 86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"zoho_fdw.analyze_max_credits",
        c"Credits one ANALYZE of a foreign table may spend reading its sample.",
        c"Three 1-credit calls count the records and find the first and last id; the rest read windows of up to 2,000 records spread over the ids (3 credits each).",
        &ANALYZE_MAX_CREDITS,
        4,
        10_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"zoho_fdw.enable_batched_join",
        c"Lets the planner join foreign tables by sending join keys to Zoho 100 at a time.",
        c"Like enable_hashjoin: off, joins with foreign tables use PostgreSQL's own join methods.",
        &ENABLE_BATCHED_JOIN,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"zoho_fdw.metrics_from_anywhere",
        c"Serve GET /metrics on the webhook listener to any address.",
        c"Off, only this host (a Prometheus agent beside PostgreSQL) reads the metrics: they name tables.",
        &METRICS_FROM_ANYWHERE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"zoho_fdw.worker_lock_timeout",
        c"Milliseconds the worker waits for a lock on a flow's table.",
        c"A flow whose table is locked longer fails this run and tries again; the other flows go on.",
        &WORKER_LOCK_TIMEOUT,
        1,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"zoho_fdw.failure_first_wait",
        c"Milliseconds a failing worker flow waits before trying again.",
        c"The wait doubles with each failure in a row (with jitter), up to zoho_fdw.failure_max_wait; a success resets it.",
        &FAILURE_FIRST_WAIT,
        10,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"zoho_fdw.failure_max_wait",
        c"The longest wait, in milliseconds, of a failing worker flow between attempts.",
        c"A flow failing for hours tries this often.",
        &FAILURE_MAX_WAIT,
        10,
        86_400_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"zoho_fdw.worker_statement_timeout",
        c"Milliseconds one run of one flow may take in the worker (0: no limit).",
        c"Counts the flow's statements, its triggers and its API calls.",
        &WORKER_STATEMENT_TIMEOUT,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"zoho_fdw.catchup_list_pages",
        c"Changed records a catch-up reads, in pages of 200, before it queues a Bulk Read job for the rest.",
        c"A page of the records list holds 200 records and costs 1 credit (COQL, used where it sees what the list sees, reads 2,000 for 3); a Bulk Read job costs 50 credits for any number.",
        &CATCHUP_LIST_PAGES,
        1,
        // Page tokens reach 100,000 records (500 pages): stay below, so a
        // list that ends is a list that is complete.
        499,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"zoho_fdw.schema_check_interval",
        c"Seconds between checks of a scheduled pull's module for fields added, removed or retyped in Zoho.",
        c"What a pull does about them is its schema_changes: follow, hold or ignore.",
        &SCHEMA_CHECK_INTERVAL,
        1,
        86_400,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
}
