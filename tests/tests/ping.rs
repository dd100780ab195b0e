//! SQL → extension → zoho-api → simulator, through a real PostgreSQL.

use std::time::{Duration, Instant};

use zoho_fdw_tests::*;

#[test]
fn zoho_ping_names_the_org_and_caches_the_token() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("ping");
    let mut c = db.client_for(&sim);
    let row = c.query_one("SELECT org_id, org_name, api_domain, user_email FROM zoho_ping()", &[]).unwrap();
    let org_id: String = row.get(0);
    let api_domain: String = row.get(2);
    assert!(!org_id.is_empty());
    assert_eq!(api_domain, sim.base_url());
    assert!(row.get::<_, Option<String>>(3).unwrap().contains('@'));
    // Same session, same token: one refresh for three pings.
    c.query_one("SELECT * FROM zoho_ping('zoho')", &[]).unwrap();
    c.query_one("SELECT * FROM zoho_ping()", &[]).unwrap();
    let refreshes = sim.calls().iter().filter(|c| c.endpoint == "oauth.token").count();
    assert_eq!(refreshes, 1);
}

#[test]
fn backends_share_one_token() {
    // The test cluster preloads zoho_fdw, so tokens live in shared memory.
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("shared_token");
    db.client_for(&sim);
    for _ in 0..4 {
        let mut c = db.client();
        c.query_one("SELECT * FROM zoho_ping()", &[]).unwrap();
    }
    let refreshes = sim.calls().iter().filter(|c| c.endpoint == "oauth.token").count();
    assert_eq!(refreshes, 1, "four backends, one token");
    // A token Zoho revokes is dropped for everyone and refreshed once.
    sim.expire_tokens();
    for _ in 0..3 {
        db.client().query_one("SELECT * FROM zoho_ping()", &[]).unwrap();
    }
    assert_eq!(sim.calls().iter().filter(|c| c.endpoint == "oauth.token").count(), 2);
}

#[test]
fn a_wrong_secret_is_an_auth_error_without_the_secret() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("badsecret");
    let mut c = db.client_for(&sim);
    c.batch_execute("ALTER USER MAPPING FOR CURRENT_USER SERVER zoho OPTIONS (SET client_secret 'hunter2-do-not-print')").unwrap();
    let err = c.query_one("SELECT * FROM zoho_ping()", &[]).unwrap_err();
    let (code, message, hint) = sql_error(&err);
    assert_eq!(code, "28000", "{message}");
    assert!(message.contains("server \"zoho\"") && message.contains("invalid_client"), "{message}");
    assert!(hint.is_some());
    let everything = format!("{err:?}");
    assert!(!everything.contains("hunter2"), "secret leaked: {everything}");
    assert!(!everything.contains("sim-refresh-token"), "refresh token leaked: {everything}");
}

#[test]
fn statement_timeout_stops_a_hanging_call_within_a_second() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("timeout");
    let mut c = db.client_for(&sim);
    c.query_one("SELECT * FROM zoho_ping()", &[]).unwrap();
    sim.inject(Fault::slow(30_000, 10).on_path("/crm/v8/org"));
    // A new backend has no cached org: the slow call is made.
    let mut c = db.client_for(&sim);
    c.batch_execute("SET statement_timeout = '500ms'").unwrap();
    let started = Instant::now();
    let err = c.query_one("SELECT * FROM zoho_ping()", &[]).unwrap_err();
    let elapsed = started.elapsed();
    let (code, message, _) = sql_error(&err);
    assert_eq!(code, "57014", "{message}");
    assert!(message.contains("statement timeout"), "{message}");
    assert!(elapsed < Duration::from_millis(1_500), "took {elapsed:?}");
}

#[test]
fn query_cancel_stops_a_hanging_call_within_a_second() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("cancel");
    let mut c = db.client_for(&sim);
    sim.inject(Fault::slow(30_000, 10).on_path("/crm/v8/org"));
    let token = c.cancel_token();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        token.cancel_query(NoTls).unwrap();
        Instant::now()
    });
    let err = c.query_one("SELECT * FROM zoho_ping()", &[]).unwrap_err();
    let returned = Instant::now();
    let cancelled_at = canceller.join().unwrap();
    let (code, message, _) = sql_error(&err);
    assert_eq!(code, "57014", "{message}");
    assert!(returned.duration_since(cancelled_at) < Duration::from_secs(1), "{:?}", returned.duration_since(cancelled_at));
    // The session is still usable afterwards.
    sim.clear_faults();
    c.query_one("SELECT * FROM zoho_ping()", &[]).unwrap();
}

#[test]
fn a_429_storm_is_ridden_out() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("storm");
    let mut c = db.client_for(&sim);
    sim.inject(Fault::status(429, 3).on_path("/crm/v8/org"));
    c.query_one("SELECT * FROM zoho_ping()", &[]).unwrap();
    let org_calls: Vec<u16> = sim.calls().iter().filter(|c| c.endpoint == "meta.org").map(|c| c.status).collect();
    assert_eq!(org_calls, vec![429, 429, 429, 200]);
}

#[test]
fn an_unreachable_host_names_the_server_and_hints() {
    let db = TestDb::new("unreachable");
    let mut c = db.client();
    c.batch_execute(
        "CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain 'http://127.0.0.1:9', accounts_url 'http://127.0.0.1:9', timeout_ms '1000');
         CREATE USER MAPPING FOR CURRENT_USER SERVER zoho OPTIONS (client_id 'a', client_secret 'b', refresh_token 'c');",
    )
    .unwrap();
    let err = c.query_one("SELECT * FROM zoho_ping()", &[]).unwrap_err();
    let (code, message, hint) = sql_error(&err);
    assert_eq!(code, "HV00N", "{message}");
    assert!(message.contains("server \"zoho\""), "{message}");
    assert!(hint.unwrap().contains("api_domain"));
}

#[test]
fn without_a_user_mapping_postgres_says_so() {
    let sim = start_sim(SimConfig::default());
    let db = TestDb::new("nomapping");
    let mut c = db.client();
    let url = sim.base_url();
    c.batch_execute(&format!("CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain '{url}', accounts_url '{url}')")).unwrap();
    let err = c.query_one("SELECT * FROM zoho_ping()", &[]).unwrap_err();
    let (code, message, _) = sql_error(&err);
    assert_eq!(code, "42704", "{message}");
    assert!(message.contains("user mapping not found"), "{message}");
    assert!(sim.calls().is_empty(), "nothing is sent without credentials");
}
