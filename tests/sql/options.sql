-- What a DBA sees when creating zoho_fdw objects with wrong options.
CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (datacenter 'eu');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (data_center 'uk');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (data_center 'eu', api_domain 'http://x', accounts_url 'http://x');
CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain 'not a url', accounts_url 'http://x');
CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (upload_url 'http://x');
CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (timeout_ms 'soon');
CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_version '8');
CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (data_center 'eu', max_concurrency '20');
ALTER SERVER zoho OPTIONS (ADD max_concurrency '99');
ALTER SERVER zoho OPTIONS (ADD daily_credit_budget 'lots');
CREATE USER MAPPING FOR CURRENT_USER SERVER zoho OPTIONS (client_id 'a');
\echo :LAST_ERROR_SQLSTATE
CREATE USER MAPPING FOR CURRENT_USER SERVER zoho OPTIONS (client_id 'a', client_secret 'b', refresh_token 'c', scope 'x');
CREATE USER MAPPING FOR CURRENT_USER SERVER zoho OPTIONS (client_id 'a', client_secret 'b', refresh_token 'c');
ALTER USER MAPPING FOR CURRENT_USER SERVER zoho OPTIONS (DROP refresh_token);
CREATE FOREIGN TABLE leads (id bigint) SERVER zoho;
CREATE FOREIGN TABLE leads (id bigint) SERVER zoho OPTIONS (module 'Leads; drop');
CREATE FOREIGN TABLE leads (id bigint OPTIONS (name 'id')) SERVER zoho OPTIONS (module 'Leads');
CREATE FOREIGN TABLE leads (id bigint, last_name text OPTIONS (api_name 'Last_Name')) SERVER zoho OPTIONS (module 'Leads');
CREATE FOREIGN DATA WRAPPER zoho_fdw2 HANDLER zoho_fdw_handler VALIDATOR zoho_fdw_validator OPTIONS (x '1');
SELECT srvname, srvoptions FROM pg_foreign_server ORDER BY 1;
-- Credentials: only the mapping's owner and superusers can read them.
DROP ROLE IF EXISTS zoho_golden_reader;
CREATE ROLE zoho_golden_reader;
GRANT USAGE ON FOREIGN SERVER zoho TO zoho_golden_reader;
SET ROLE zoho_golden_reader;
SELECT srvname, usename, umoptions FROM pg_user_mappings WHERE srvname = 'zoho';
RESET ROLE;
SELECT srvname, usename, umoptions FROM pg_user_mappings WHERE srvname = 'zoho';
DROP OWNED BY zoho_golden_reader;
DROP ROLE zoho_golden_reader;
