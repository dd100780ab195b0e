-- sim: Orders=3 Accounts=2
-- INSERT, UPDATE and DELETE on foreign tables, as a DBA sees them.
CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain :'sim_url', accounts_url :'sim_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER zoho
  OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');
CREATE SCHEMA zoho_crm;
IMPORT FOREIGN SCHEMA crm LIMIT TO (orders, leads, accounts) FROM SERVER zoho INTO zoho_crm;
SET TimeZone = 'UTC';
-- Batches of 100 records per call.
INSERT INTO zoho_crm.orders (name, parent_id, quantity, order_date, amount, paid, shipped_at)
SELECT 'Order ' || g, 'LEG-' || g, g, date '2025-01-01' + g, g * 1.25, g % 2 = 0, timestamptz '2025-02-01 10:00:00.75+00' + g * interval '1 hour'
  FROM generate_series(1, 250) g;
SELECT parent_id, quantity, order_date, amount, paid, shipped_at FROM zoho_crm.orders WHERE parent_id IN ('LEG-1', 'LEG-250') ORDER BY 1;
-- RETURNING answers with what Zoho stored, including what Zoho set.
INSERT INTO zoho_crm.leads (last_name, email, languages, annual_revenue, no_of_employees, email_opt_out, last_contacted_on)
VALUES ('Ng', 'ng@example.com', '{English,Hindi}', 1234.5, 12, true, '2025-03-04')
RETURNING id IS NOT NULL AS has_id, last_name, languages, annual_revenue, no_of_employees, email_opt_out, last_contacted_on,
          owner IS NOT NULL AS has_owner, created_time = modified_time AS new;
UPDATE zoho_crm.orders SET status = 'Paid', quantity = quantity * 10 WHERE parent_id LIKE 'LEG-1_';
SELECT parent_id, status, quantity FROM zoho_crm.orders WHERE parent_id IN ('LEG-10', 'LEG-19', 'LEG-20') ORDER BY 1;
UPDATE zoho_crm.orders SET customer_name = 'Acme' WHERE parent_id = 'LEG-5' RETURNING parent_id, customer_name, name;
DELETE FROM zoho_crm.orders WHERE parent_id IN ('LEG-2', 'LEG-3') RETURNING parent_id, name, quantity;
DELETE FROM zoho_crm.orders WHERE quantity > 200;
SELECT count(*) FROM zoho_crm.orders WHERE parent_id LIKE 'LEG-%';
-- Lookups are record ids.
INSERT INTO zoho_crm.orders (name, parent_id, account) SELECT 'With account', 'LEG-ACC', min(id) FROM zoho_crm.accounts;
SELECT o.parent_id, a.account_name IS NOT NULL AS linked FROM zoho_crm.orders o JOIN zoho_crm.accounts a ON a.id = o.account WHERE o.parent_id = 'LEG-ACC';
-- Zoho's refusals name the row, the field and Zoho's code; DETAIL says what already stayed written.
INSERT INTO zoho_crm.orders (name, parent_id) VALUES ('ok 1', 'NEW-1'), ('dup', 'LEG-7'), ('ok 2', 'NEW-2');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO zoho_crm.orders (parent_id) VALUES ('NEW-3');
\echo :LAST_ERROR_SQLSTATE
-- Wrong values fail before anything is sent.
INSERT INTO zoho_crm.orders (name, modified_time) VALUES ('x', now());
UPDATE zoho_crm.orders SET created_time = now() WHERE parent_id = 'LEG-9';
CREATE FOREIGN TABLE public.loose (id bigint OPTIONS (api_name 'id'), name text OPTIONS (api_name 'Name'), qty text OPTIONS (api_name 'Quantity', zoho_type 'integer'), account text OPTIONS (api_name 'Account', zoho_type 'lookup')) SERVER zoho OPTIONS (module 'Orders');
INSERT INTO public.loose (name, qty) VALUES ('q', '12.5');
INSERT INTO public.loose (name, account) VALUES ('a', 'Acme Inc');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM zoho_crm.orders WHERE name IN ('x', 'q', 'a');
-- EXPLAIN VERBOSE shows how writes go out.
EXPLAIN (VERBOSE, COSTS OFF) DELETE FROM zoho_crm.orders WHERE parent_id = 'LEG-7';
EXPLAIN (VERBOSE, COSTS OFF) UPDATE zoho_crm.orders SET quantity = 1 WHERE parent_id = 'LEG-7' RETURNING id;
-- A new value that reads the record is computed per record, still directly.
EXPLAIN (VERBOSE, COSTS OFF) UPDATE zoho_crm.orders SET quantity = quantity + 1 WHERE parent_id = 'LEG-7';
-- A correlated subquery, or RETURNING what Zoho recomputes, goes row by row.
EXPLAIN (VERBOSE, COSTS OFF) UPDATE zoho_crm.orders o SET quantity = (SELECT o.quantity + g FROM generate_series(1, 1) g) WHERE parent_id = 'LEG-7';
EXPLAIN (VERBOSE, COSTS OFF) UPDATE zoho_crm.orders SET quantity = 1 WHERE parent_id = 'LEG-7' RETURNING modified_by;
-- Without an id column, UPDATE and DELETE cannot say which record.
CREATE FOREIGN TABLE public.noid (name text OPTIONS (api_name 'Name')) SERVER zoho OPTIONS (module 'Orders');
DELETE FROM public.noid;
