-- sim: Leads=300 Orders=40 Accounts=20 Contacts=30
-- Reading Zoho modules as foreign tables: results, pushdown and EXPLAIN.
CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain :'sim_url', accounts_url :'sim_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER zoho
  OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');
CREATE SCHEMA zoho_crm;
IMPORT FOREIGN SCHEMA crm LIMIT TO (leads, orders, accounts, contacts) FROM SERVER zoho INTO zoho_crm;
SET TimeZone = 'UTC';
SELECT count(*) FROM zoho_crm.leads;
SELECT id, last_name, lead_status, annual_revenue, no_of_employees, email_opt_out, languages, last_contacted_on, modified_time
  FROM zoho_crm.leads ORDER BY id LIMIT 3;
-- Conditions Zoho evaluates go into the COQL; everything is rechecked here too.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id, last_name FROM zoho_crm.leads
 WHERE lead_status = 'Contacted' AND modified_time > '2025-06-01 00:00:00.5+00' AND no_of_employees BETWEEN 10 AND 500;
SELECT count(*) FROM zoho_crm.leads
 WHERE lead_status = 'Contacted' AND modified_time > '2025-06-01 00:00:00.5+00' AND no_of_employees BETWEEN 10 AND 500;
-- OR, IN, LIKE and IS NULL nest the way COQL wants.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id FROM zoho_crm.leads
 WHERE (annual_revenue >= 100000 OR last_name LIKE 'Ta%') AND industry IN ('Retail', 'Finance') AND email IS NOT NULL;
SELECT count(*) FROM zoho_crm.leads
 WHERE (annual_revenue >= 100000 OR last_name LIKE 'Ta%') AND industry IN ('Retail', 'Finance') AND email IS NOT NULL;
-- What Zoho would evaluate differently stays local: <> on text, _ in LIKE, textarea fields.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id FROM zoho_crm.leads WHERE lead_status <> 'Contacted' AND last_name LIKE 'T_ylor' AND description IS NOT NULL;
-- ORDER BY modified_time DESC LIMIT: a descending keyset, and a first page of just 5.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id, last_name, modified_time FROM zoho_crm.leads ORDER BY modified_time DESC, id DESC LIMIT 5;
SELECT id, last_name, modified_time FROM zoho_crm.leads ORDER BY modified_time DESC, id DESC LIMIT 5;
-- Text ordering is PostgreSQL's, not Zoho's: sorted locally.
EXPLAIN (COSTS OFF) SELECT last_name FROM zoho_crm.leads ORDER BY last_name LIMIT 3;
-- A stable expression is evaluated once the scan starts.
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM zoho_crm.leads WHERE modified_time > now() - interval '1 day';
-- Quotes and injection attempts are literals.
SELECT count(*) FROM zoho_crm.leads WHERE last_name = 'O''Brien';
SELECT count(*) FROM zoho_crm.leads WHERE last_name = ''');drop table x;--';
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM zoho_crm.leads WHERE last_name = ''');drop table x;--';
-- Joins with local tables and between modules.
CREATE TABLE vip (email text PRIMARY KEY);
INSERT INTO vip SELECT email FROM zoho_crm.leads ORDER BY id LIMIT 2;
SELECT l.last_name, l.company FROM zoho_crm.leads l JOIN vip USING (email) ORDER BY 1;
SELECT a.account_name, count(c.id) AS contacts
  FROM zoho_crm.accounts a LEFT JOIN zoho_crm.contacts c ON c.account_name = a.id
 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3;
-- Prepared statements keep working when the plan is cached and reused.
SET plan_cache_mode = force_generic_plan;
PREPARE by_status(text) AS SELECT count(*) FROM zoho_crm.leads WHERE lead_status = $1;
EXECUTE by_status('Qualified');
EXECUTE by_status('Qualified');
EXECUTE by_status('Lost Lead');
RESET plan_cache_mode;
-- Bad definitions fail with the table, the field and a hint.
CREATE FOREIGN TABLE public.nope (id bigint) SERVER zoho OPTIONS (module 'Nope');
SELECT * FROM public.nope;
CREATE FOREIGN TABLE public.badfield (id bigint, surname text OPTIONS (api_name 'Surname')) SERVER zoho OPTIONS (module 'Leads');
SELECT * FROM public.badfield;
CREATE FOREIGN TABLE public.badtype (id bigint, last_name bigint OPTIONS (api_name 'Last_Name')) SERVER zoho OPTIONS (module 'Leads');
SELECT * FROM public.badtype ORDER BY id LIMIT 1;
