-- zoho_ping against the simulator, and the errors around it.
SELECT * FROM zoho_ping();
CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain :'sim_url', accounts_url :'sim_url');
SELECT * FROM zoho_ping();
\echo :LAST_ERROR_SQLSTATE
CREATE USER MAPPING FOR CURRENT_USER SERVER zoho
  OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');
SELECT org_id, org_name, user_email FROM zoho_ping();
SELECT org_name FROM zoho_ping('zoho');
SELECT * FROM zoho_ping('nope');
\echo :LAST_ERROR_SQLSTATE
CREATE SERVER other FOREIGN DATA WRAPPER zoho_fdw;
SELECT * FROM zoho_ping();
DROP SERVER other;
ALTER USER MAPPING FOR CURRENT_USER SERVER zoho OPTIONS (SET client_secret 'wrong-secret-value');
SELECT * FROM zoho_ping();
\echo :LAST_ERROR_SQLSTATE
ALTER USER MAPPING FOR CURRENT_USER SERVER zoho OPTIONS (SET client_secret 'sim-client-secret');
