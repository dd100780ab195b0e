-- zoho_fdw demo against the bundled simulator (scripts/demo.sh runs this
-- with -v sim_url=http://127.0.0.1:8089). Safe to run again.
\set QUIET on
\pset footer off
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS zoho_crm CASCADE;
DROP EXTENSION IF EXISTS zoho_fdw CASCADE;
RESET client_min_messages;
CREATE EXTENSION zoho_fdw;
\set QUIET off
\echo
\echo '-- A server for the simulator: explicit endpoints instead of a data centre.'
CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw
  OPTIONS (api_domain :'sim_url', accounts_url :'sim_url');

\echo '-- Credentials live in the user mapping; only its owner and superusers can read them.'
CREATE USER MAPPING FOR CURRENT_USER SERVER zoho
  OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');

\echo
\echo '-- zoho_ping refreshes a token and reads the org: SQL -> zoho_fdw -> zoho-api -> Zoho.'
SELECT * FROM zoho_ping();

\echo '-- Options are checked when they are written, not when a query first fails:'
\set ON_ERROR_STOP off
ALTER SERVER zoho OPTIONS (ADD datacenter 'eu');
CREATE USER MAPPING FOR PUBLIC SERVER zoho OPTIONS (client_id 'x');
\set ON_ERROR_STOP on

\echo
\echo '-- A wrong secret is refused by Zoho; the error never echoes it.'
ALTER USER MAPPING FOR CURRENT_USER SERVER zoho OPTIONS (SET client_secret 'not-the-secret');
\set ON_ERROR_STOP off
SELECT * FROM zoho_ping('zoho');
\set ON_ERROR_STOP on
ALTER USER MAPPING FOR CURRENT_USER SERVER zoho OPTIONS (SET client_secret 'sim-client-secret');

\echo
\echo '-- Zoho modules as foreign tables, from live metadata.'
CREATE SCHEMA zoho_crm;
IMPORT FOREIGN SCHEMA crm LIMIT TO (leads, orders) FROM SERVER zoho INTO zoho_crm;
\d zoho_crm.orders
SET TimeZone = 'UTC';
\echo '-- The WHERE, ORDER BY and LIMIT go to Zoho as COQL; EXPLAIN shows it and what it costs.'
EXPLAIN (VERBOSE, COSTS OFF)
SELECT id, last_name, email FROM zoho_crm.leads
 WHERE lead_status = 'Contacted' AND modified_time > now() - interval '400 days'
 ORDER BY modified_time DESC LIMIT 5;
SELECT id, last_name, email, modified_time FROM zoho_crm.leads
 WHERE lead_status = 'Contacted' AND modified_time > now() - interval '400 days'
 ORDER BY modified_time DESC LIMIT 5;
\echo '-- Joins with local tables work like any other table.'
CREATE TEMP TABLE shipments (order_ref text, carrier text);
INSERT INTO shipments VALUES ('ORD-000001', 'DHL'), ('ORD-000002', 'UPS');
SELECT o.parent_id, o.name, o.amount, s.carrier FROM zoho_crm.orders o JOIN shipments s ON s.order_ref = o.parent_id ORDER BY 1;
\echo '-- Writes go out 100 records a call; RETURNING shows what Zoho stored.'
UPDATE zoho_crm.orders SET status = 'Shipped' WHERE parent_id IN ('ORD-000001', 'ORD-000002')
RETURNING parent_id, status, modified_time > now() - interval '1 minute' AS just_modified;
INSERT INTO zoho_crm.orders (name, parent_id, quantity, order_date)
SELECT 'Demo order ' || g, 'DEMO-' || g, g, current_date FROM generate_series(1, 250) g;
SELECT count(*) AS demo_orders FROM zoho_crm.orders WHERE parent_id LIKE 'DEMO-%';
DELETE FROM zoho_crm.orders WHERE parent_id LIKE 'DEMO-%';
\echo '-- A record Zoho refuses fails the statement with the row, the field and Zoho''s code.'
\set ON_ERROR_STOP off
INSERT INTO zoho_crm.orders (parent_id) VALUES ('NO-NAME');
\set ON_ERROR_STOP on

\echo '-- Legacy → Zoho: a legacy table, a trigger that marks changed rows pending, and a push.'
DROP TABLE IF EXISTS legacy_orders;
CREATE TABLE legacy_orders (
  order_id text PRIMARY KEY, name text, customer text, amount numeric(12,2), order_date date,
  synced boolean NOT NULL DEFAULT false, zoho_id bigint, zoho_error text, zoho_synced_at timestamptz);
CREATE TRIGGER legacy_orders_pending BEFORE INSERT OR UPDATE ON legacy_orders
  FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending('synced');
INSERT INTO legacy_orders (order_id, name, customer, amount, order_date)
SELECT 'LEG-' || g, 'Legacy order ' || g, 'Customer ' || g % 40, g * 12.5, current_date - g % 90 FROM generate_series(1, 30000) g;
UPDATE legacy_orders SET name = NULL WHERE order_id IN ('LEG-7', 'LEG-70', 'LEG-700');
SELECT * FROM zoho_upsert_pending('legacy_orders', 'Orders', key_field => 'parent_id',
         mapping => '{"order_id": "parent_id", "customer": "Customer_Name"}');
SELECT order_id, synced, zoho_error FROM legacy_orders WHERE NOT synced ORDER BY 1;
\echo '-- Fixed rows go out with the next push, by the Upsert API.'
UPDATE legacy_orders SET name = 'Fixed ' || order_id WHERE name IS NULL;
UPDATE legacy_orders SET amount = amount + 1 WHERE order_id IN ('LEG-1', 'LEG-2');
SELECT * FROM zoho_upsert_pending('legacy_orders', 'Orders', key_field => 'parent_id',
         mapping => '{"order_id": "parent_id", "customer": "Customer_Name"}');

\echo '-- Zoho → legacy: a mirror typed from metadata, filled by Bulk Read at COPY speed.'
DROP TABLE IF EXISTS crm_leads;
SELECT zoho_create_mirror('Leads', 'crm_leads');
SELECT zoho_bulk_export('Leads', 'crm_leads') AS written;
SELECT lead_status, count(*) FROM crm_leads GROUP BY 1 ORDER BY 2 DESC LIMIT 5;
\echo '-- Again, only what changed since the last export (nothing, here).'
SELECT zoho_bulk_export('Leads', 'crm_leads',
         since => (SELECT last_success FROM zoho.exports WHERE module = 'Leads' AND target = 'crm_leads'::regclass)) AS written;

\echo '-- From now on the background worker keeps crm_leads current: a channel for Leads changes.'
SELECT zoho_watch('Leads', 'crm_leads') IS NOT NULL AS watching;
SELECT channel_id IS NOT NULL AS has_channel, module, target, expires_at > now() AS live FROM zoho.channels;

\echo '-- Near-real-time: the worker pushes legacy_orders as soon as 100 rows are pending, or within 10 s.'
SELECT zoho_schedule_push('legacy_orders', 'Orders', key_field => 'parent_id', max_wait => '10 seconds',
         mapping => '{"order_id": "parent_id", "customer": "Customer_Name"}');
UPDATE legacy_orders SET amount = amount + 1 WHERE order_id IN ('LEG-3', 'LEG-4', 'LEG-5');
SELECT pg_sleep(1);
SELECT flow, target, paused, rows_pending, last_error FROM zoho.sync_status WHERE flow = 'push';
\echo '-- Deals pulled every minute (first a Bulk Read job), formulas refreshed daily at 03:00 UTC.'
DROP TABLE IF EXISTS crm_deals;
SELECT zoho_create_mirror('Deals', 'crm_deals');
SELECT zoho_schedule_pull('Deals', 'crm_deals', every => '1 minute', refresh_formulas => '0 3 * * *');
SELECT pg_sleep(3);
SELECT kind, module, state, rows_written FROM zoho.jobs ORDER BY id;
\echo '-- What all this cost, per endpoint (counted by every backend, written by the worker).'
SELECT pg_sleep(1.5);
SELECT endpoint, calls, credits FROM zoho.api_usage ORDER BY credits DESC LIMIT 8;
SELECT server, budget, credits_24h, reached FROM zoho.credit_budget;
