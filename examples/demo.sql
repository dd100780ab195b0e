-- zoho_fdw demo against the bundled simulator (scripts/demo.sh runs this
-- with -v sim_url=http://127.0.0.1:8089). Safe to run again.
\set QUIET on
\pset footer off
SET client_min_messages = warning;
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
