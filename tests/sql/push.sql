-- sim: Accounts=2
-- Legacy → Zoho: the trigger that marks rows pending, zoho_upsert_pending,
-- and every refusal, as a DBA sees them.
CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain :'sim_url', accounts_url :'sim_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER zoho
  OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');
SET TimeZone = 'UTC';
CREATE TABLE orders (
  order_id text PRIMARY KEY, name text, customer text, amount numeric(12,2), order_date date,
  shipped_at timestamp, paid boolean, quantity int, internal_note text,
  synced boolean NOT NULL DEFAULT false, zoho_id bigint, zoho_error text, zoho_synced_at timestamptz);
CREATE TRIGGER orders_pending BEFORE INSERT OR UPDATE ON orders
  FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending('synced');
-- An insert is pending even when it says otherwise.
INSERT INTO orders (order_id, name, customer, amount, order_date, shipped_at, paid, quantity, internal_note, synced)
SELECT 'ORD-' || g, 'Order ' || g, 'Customer ' || g % 3, g * 10.5, date '2026-01-01' + g, timestamp '2026-02-01 09:30' + g * interval '1 day', g % 2 = 0, g, 'not for Zoho', true
  FROM generate_series(1, 5) g;
SELECT count(*) FILTER (WHERE NOT synced) AS pending FROM orders;
-- Bad input: each is refused before anything is sent, and no row changes.
SELECT * FROM zoho_upsert_pending('orders', 'Orders', sync_column => 'is_synced');
SELECT * FROM zoho_upsert_pending('orders', 'Order', mapping => '{"order_id": "parent_id"}');
SELECT * FROM zoho_upsert_pending('orders', 'Orders', mapping => '{"order_id": "Parent_Key"}');
SELECT * FROM zoho_upsert_pending('orders', 'Orders', mapping => '{"order_no": "parent_id"}');
SELECT * FROM zoho_upsert_pending('orders', 'Orders', key_field => 'Customer_Name', mapping => '{"order_id": "parent_id", "customer": "Customer_Name"}');
SELECT * FROM zoho_upsert_pending('orders', 'Orders');
SELECT * FROM zoho_upsert_pending('orders', 'Orders', mode => 'cheapest', mapping => '{"order_id": "parent_id"}');
-- A value the Zoho field cannot hold: Quantity is an integer field.
ALTER TABLE orders ALTER COLUMN quantity TYPE numeric;
UPDATE orders SET quantity = 2.5 WHERE order_id = 'ORD-2';
SELECT * FROM zoho_upsert_pending('orders', 'Orders', mapping => '{"order_id": "parent_id"}');
UPDATE orders SET quantity = 2 WHERE order_id = 'ORD-2';
-- Two pending rows with one key would write one record twice.
SELECT * FROM zoho_upsert_pending('orders', 'Orders', mapping => '{"order_id": null, "customer": "parent_id"}');
SELECT count(*) FILTER (WHERE NOT synced) AS pending, count(zoho_id) AS with_id, count(zoho_error) AS errors FROM orders;
-- The push: 5 rows by the Upsert API; internal_note matches no field.
SELECT * FROM zoho_upsert_pending('orders', 'Orders', mapping => '{"order_id": "parent_id", "customer": "Customer_Name"}');
SELECT order_id, synced, zoho_id IS NOT NULL AS has_id, zoho_error, zoho_synced_at IS NOT NULL AS stamped FROM orders ORDER BY 1;
-- Only a change to a data column makes a row pending again.
UPDATE orders SET zoho_error = 'noted by hand' WHERE order_id = 'ORD-1';
UPDATE orders SET amount = 99.99 WHERE order_id = 'ORD-2';
UPDATE orders SET name = name WHERE order_id = 'ORD-3';
SELECT order_id, synced FROM orders WHERE order_id IN ('ORD-1', 'ORD-2', 'ORD-3') ORDER BY 1;
-- Rows Zoho rejects stay pending with the reason; fixed, they go out.
UPDATE orders SET name = NULL WHERE order_id = 'ORD-4';
SELECT * FROM zoho_upsert_pending('orders', 'Orders', mapping => '{"order_id": "parent_id", "customer": "Customer_Name"}');
SELECT order_id, synced, zoho_error FROM orders WHERE NOT synced ORDER BY 1;
UPDATE orders SET name = 'Order 4' WHERE order_id = 'ORD-4';
SELECT * FROM zoho_upsert_pending('orders', 'Orders', mapping => '{"order_id": "parent_id", "customer": "Customer_Name"}');
SELECT count(*) FILTER (WHERE NOT synced) AS pending, count(zoho_error) AS errors FROM orders;
-- Nothing pending: no call at all.
SELECT * FROM zoho_upsert_pending('orders', 'Orders', mapping => '{"order_id": "parent_id", "customer": "Customer_Name"}');
-- What Zoho holds, through a foreign table.
CREATE SCHEMA zoho_crm;
IMPORT FOREIGN SCHEMA crm LIMIT TO (orders) FROM SERVER zoho INTO zoho_crm;
SELECT parent_id, name, customer_name, amount, order_date, shipped_at, paid, quantity FROM zoho_crm.orders ORDER BY parent_id;
-- The trigger refuses to be misused.
CREATE TABLE no_flag (id int);
CREATE TRIGGER t BEFORE INSERT ON no_flag FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending();
INSERT INTO no_flag VALUES (1);
CREATE TABLE after_flag (id int, synced boolean);
CREATE TRIGGER t AFTER INSERT ON after_flag FOR EACH ROW EXECUTE FUNCTION zoho_mark_pending();
INSERT INTO after_flag VALUES (1, true);
SELECT * FROM zoho_upsert_pending('zoho_crm.orders', 'Orders');
