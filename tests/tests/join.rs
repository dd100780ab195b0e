//! Joins of foreign tables with local tables: the local side's keys go to
//! Zoho 100 a call (the batched join), checked in the simulator's call log
//! and against the same join over a local copy.

use zoho_fdw_tests::*;

fn setup(sim: &Sim, db: &TestDb) -> Client {
    let mut c = db.client_for(sim);
    c.batch_execute(
        "CREATE SCHEMA zoho_crm; IMPORT FOREIGN SCHEMA crm LIMIT TO (accounts, contacts) FROM SERVER zoho INTO zoho_crm;
         CREATE TABLE local_accounts AS SELECT * FROM zoho_crm.accounts;
         CREATE TABLE local_contacts AS SELECT * FROM zoho_crm.contacts;",
    )
    .unwrap();
    sim.clear_calls();
    c
}

fn rows(c: &mut Client, sql: &str) -> Vec<String> {
    let mut out: Vec<String> = c.query(&format!("SELECT t::text FROM ({sql}) t"), &[]).unwrap().iter().map(|r| r.get(0)).collect();
    out.sort();
    out
}

fn plan(c: &mut Client, sql: &str) -> String {
    c.query(&format!("EXPLAIN (VERBOSE, COSTS OFF) {sql}"), &[]).unwrap().iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
}

/// `WHERE id IN (SELECT id FROM local)` over 50 ids is one call, not a
/// read of the whole module.
#[test]
fn a_semi_join_with_50_local_ids_is_one_call() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 5_000));
    let db = TestDb::new("join_semi");
    let mut c = setup(&sim, &db);
    c.batch_execute("CREATE TABLE ids AS SELECT id FROM local_accounts ORDER BY id LIMIT 50 OFFSET 1000; ANALYZE ids").unwrap();
    let q = "SELECT id, account_name FROM zoho_crm.accounts WHERE id IN (SELECT id FROM ids)";
    assert!(plan(&mut c, q).contains("ZohoBatchedJoin"), "{}", plan(&mut c, q));
    sim.clear_calls();
    let before = sim.credits().by_endpoint["coql"].credits;
    assert_eq!(rows(&mut c, q), rows(&mut c, &q.replace("zoho_crm.accounts", "local_accounts")));
    let calls = coql_queries(&sim);
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert!(calls[0].contains("where id in (") && calls[0].ends_with("limit 200"), "{}", calls[0]);
    assert_eq!(sim.credits().by_endpoint["coql"].credits - before, 1);
}

/// An inner join with 250 keys (duplicates, NULLs and ids Zoho does not
/// hold among them) takes one call per 100 distinct keys, and every join
/// clause, also one Zoho cannot apply, is checked on each row.
#[test]
fn an_inner_join_sends_100_keys_a_call_and_matches_a_local_join() {
    // 10,000 accounts are 5 full pages: 3 calls of keys are cheaper.
    let sim = start_sim(SimConfig::default().seed("Accounts", 10_000));
    let db = TestDb::new("join_inner");
    let mut c = setup(&sim, &db);
    c.batch_execute(
        "CREATE TABLE wanted AS SELECT id, (id % 7)::int AS n FROM local_accounts ORDER BY id LIMIT 230;
         INSERT INTO wanted SELECT id, 1 FROM wanted LIMIT 10;
         INSERT INTO wanted VALUES (NULL, 0), (1, 0), (42, 0);
         ANALYZE wanted",
    )
    .unwrap();
    let q = "SELECT w.id, w.n, a.account_name, a.employees FROM wanted w JOIN zoho_crm.accounts a ON a.id = w.id";
    assert!(plan(&mut c, q).contains("ZohoBatchedJoin"));
    sim.clear_calls();
    let remote = rows(&mut c, q);
    assert_eq!(remote.len(), 240);
    assert_eq!(remote, rows(&mut c, &q.replace("zoho_crm.accounts", "local_accounts")));
    assert_eq!(coql_queries(&sim).len(), 3, "232 distinct keys, 100 a call");
    let q = "SELECT w.id, a.employees FROM wanted w JOIN zoho_crm.accounts a ON a.id = w.id AND a.employees % 7 > w.n";
    assert_eq!(rows(&mut c, q), rows(&mut c, &q.replace("zoho_crm.accounts", "local_accounts")));
    // Not for writes or row locks (EvalPlanQual could not recheck it).
    assert!(!plan(&mut c, "SELECT a.id FROM wanted w JOIN zoho_crm.accounts a ON a.id = w.id FOR UPDATE OF w").contains("ZohoBatchedJoin"));
    // The GUC turns it off, like enable_hashjoin.
    c.batch_execute("SET zoho_fdw.enable_batched_join = off").unwrap();
    assert!(!plan(&mut c, "SELECT * FROM wanted w JOIN zoho_crm.accounts a ON a.id = w.id").contains("ZohoBatchedJoin"));
}

/// A lookup joins by its id: contacts of a few local accounts, many per key.
#[test]
fn a_join_on_a_lookup_reads_every_matching_record() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 40).seed("Contacts", 3_000));
    let db = TestDb::new("join_lookup");
    let mut c = setup(&sim, &db);
    c.batch_execute("CREATE TABLE few AS SELECT id FROM local_accounts ORDER BY id LIMIT 3; ANALYZE few").unwrap();
    let q = "SELECT f.id, c.id AS contact, c.last_name FROM few f JOIN zoho_crm.contacts c ON c.account_name = f.id";
    assert!(plan(&mut c, q).contains("ZohoBatchedJoin"), "{}", plan(&mut c, q));
    sim.clear_calls();
    let remote = rows(&mut c, q);
    assert!(remote.len() > 3, "{}", remote.len());
    assert_eq!(remote, rows(&mut c, &q.replace("zoho_crm.contacts", "local_contacts")));
    let calls = coql_queries(&sim);
    assert!(calls[0].contains("where Account_Name in ("), "{}", calls[0]);
    // Two foreign tables: the other side is a foreign scan (a virtual slot).
    c.batch_execute("SET enable_hashjoin = off; SET enable_mergejoin = off").unwrap();
    let q = "SELECT c.id, a.account_name FROM zoho_crm.contacts c JOIN zoho_crm.accounts a ON a.id = c.account_name";
    assert!(plan(&mut c, q).contains("ZohoBatchedJoin"), "{}", plan(&mut c, q));
    let remote = rows(&mut c, q);
    assert!(remote.len() > 100, "{}", remote.len());
    assert_eq!(remote, rows(&mut c, &q.replace("zoho_crm.", "local_")));
}

/// A batched join reads Zoho with the mapping PostgreSQL checks: a role
/// without one is refused before any call, and a view's owner's mapping
/// serves the view's readers.
#[test]
fn a_batched_join_uses_the_user_mapping_postgres_checks() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 5_000));
    let db = TestDb::new("join_roles");
    let mut c = setup(&sim, &db);
    c.batch_execute(
        "CREATE TABLE ids AS SELECT id FROM local_accounts ORDER BY id LIMIT 20; ANALYZE ids;
         DROP ROLE IF EXISTS zoho_join_owner; DROP ROLE IF EXISTS zoho_join_reader;
         CREATE ROLE zoho_join_owner; CREATE ROLE zoho_join_reader;
         GRANT USAGE ON FOREIGN SERVER zoho TO zoho_join_owner, zoho_join_reader;
         CREATE USER MAPPING FOR zoho_join_owner SERVER zoho
           OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');
         GRANT USAGE ON SCHEMA zoho_crm TO zoho_join_owner, zoho_join_reader;
         GRANT SELECT ON zoho_crm.accounts, ids TO zoho_join_owner, zoho_join_reader;
         CREATE VIEW public.joined AS SELECT a.id, a.account_name FROM ids i JOIN zoho_crm.accounts a ON a.id = i.id;
         ALTER VIEW public.joined OWNER TO zoho_join_owner;
         GRANT SELECT ON public.joined TO zoho_join_reader;",
    )
    .unwrap();
    c.batch_execute("SET ROLE zoho_join_reader").unwrap();
    let q = "SELECT a.id FROM ids i JOIN zoho_crm.accounts a ON a.id = i.id";
    assert!(plan(&mut c, q).contains("ZohoBatchedJoin"));
    sim.clear_calls();
    let e = c.query(q, &[]).unwrap_err();
    assert!(sql_error(&e).1.contains("user mapping"), "{e}");
    assert!(coql_queries(&sim).is_empty());
    assert!(plan(&mut c, "SELECT * FROM public.joined").contains("ZohoBatchedJoin"));
    assert_eq!(rows(&mut c, "SELECT * FROM public.joined").len(), 20, "the view owner's mapping is used");
    c.batch_execute("RESET ROLE; DROP VIEW public.joined; DROP OWNED BY zoho_join_owner, zoho_join_reader; DROP ROLE zoho_join_owner, zoho_join_reader").unwrap();
}

/// Inside a correlated subquery the batched join is rescanned with new
/// parameters: its other side must see them, not replay the first ones.
#[test]
fn a_rescanned_batched_join_follows_changed_parameters() {
    let sim = start_sim(SimConfig::default().seed("Accounts", 5_000));
    let db = TestDb::new("join_rescan");
    let mut c = setup(&sim, &db);
    c.batch_execute(
        "CREATE TABLE grouped AS SELECT id, (row_number() OVER (ORDER BY id) % 3)::int AS grp FROM (SELECT id FROM local_accounts ORDER BY id LIMIT 60) t;
         CREATE TABLE grps AS SELECT g FROM generate_series(0, 2) g; ANALYZE grouped; ANALYZE grps",
    )
    .unwrap();
    let q = "SELECT g, (SELECT count(*) FROM zoho_crm.accounts a JOIN (SELECT DISTINCT id FROM grouped WHERE grp <= grps.g) s ON a.id = s.id) AS n FROM grps";
    assert!(plan(&mut c, q).contains("ZohoBatchedJoin"), "{}", plan(&mut c, q));
    let remote = rows(&mut c, q);
    assert_eq!(remote, vec!["(0,20)".to_string(), "(1,40)".into(), "(2,60)".into()]);
    assert_eq!(remote, rows(&mut c, &q.replace("zoho_crm.accounts", "local_accounts")));
}
