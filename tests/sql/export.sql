-- sim: Leads=25 Accounts=3
-- Zoho → legacy: a mirror typed from metadata, exports, and refusals.
CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain :'sim_url', accounts_url :'sim_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER zoho
  OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');
SET TimeZone = 'UTC';
SELECT zoho_create_mirror('Accounts', 'crm_accounts');
\d crm_accounts
-- An existing, compatible table is accepted; an incompatible one is not.
SELECT zoho_create_mirror('Accounts', 'crm_accounts');
CREATE TABLE not_a_mirror (name text);
SELECT zoho_create_mirror('Accounts', 'not_a_mirror');
SELECT zoho_create_mirror('Acounts', 'typo');
-- The initial export, with progress.
SELECT zoho_bulk_export('Accounts', 'crm_accounts') AS written;
SELECT count(*), count(DISTINCT id), bool_and(modified_time IS NOT NULL) AS stamped FROM crm_accounts;
-- Nothing newer in Zoho: nothing written.
SELECT zoho_bulk_export('Accounts', 'crm_accounts') AS written;
SELECT module, target, server, pages, rows_written, last_success <= finished_at AS ordered FROM zoho.exports;
-- Refusals, each before anything is read.
CREATE TABLE no_key (id bigint, modified_time timestamptz);
SELECT zoho_bulk_export('Accounts', 'no_key');
CREATE TABLE no_stamp (id bigint PRIMARY KEY);
SELECT zoho_bulk_export('Accounts', 'no_stamp');
SELECT zoho_bulk_export('Accounts', 'crm_accounts', mapping => '{"id": "Account_Id"}');
SELECT zoho_bulk_export('Accounts', 'crm_accounts', mapping => '["id"]');
CREATE VIEW v AS SELECT * FROM crm_accounts;
SELECT zoho_bulk_export('Accounts', 'v');
-- A value a column cannot hold names the record and changes nothing.
SELECT zoho_create_mirror('Leads', 'crm_leads');
ALTER TABLE crm_leads ALTER COLUMN last_name TYPE int USING NULL;
SELECT zoho_bulk_export('Leads', 'crm_leads');
SELECT count(*) FROM crm_leads;
