-- sim: Leads=300 Accounts=200
-- What each query shape sends to Zoho (EXPLAIN VERBOSE shows the COQL), and
-- that its answer is the one PostgreSQL gives over a local copy.
CREATE SERVER zoho FOREIGN DATA WRAPPER zoho_fdw OPTIONS (api_domain :'sim_url', accounts_url :'sim_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER zoho
  OPTIONS (client_id 'sim-client-id', client_secret 'sim-client-secret', refresh_token 'sim-refresh-token');
CREATE SCHEMA zoho_crm;
IMPORT FOREIGN SCHEMA crm LIMIT TO (leads, accounts) FROM SERVER zoho INTO zoho_crm;
SET TimeZone = 'UTC';
CREATE TABLE local_leads AS SELECT * FROM zoho_crm.leads;
CREATE TABLE local_accounts AS SELECT * FROM zoho_crm.accounts;
-- count(*): one aggregate call.
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM zoho_crm.accounts;
SELECT (SELECT count(*) FROM zoho_crm.accounts) = (SELECT count(*) FROM local_accounts) AS same;
-- sum over a picklist equality: grouped by the picklist too, and only the exact value's group kept.
EXPLAIN (VERBOSE, COSTS OFF) SELECT sum(annual_revenue) FROM zoho_crm.leads WHERE lead_status = 'Contacted';
SELECT (SELECT sum(annual_revenue) FROM zoho_crm.leads WHERE lead_status = 'Contacted')
     = (SELECT sum(annual_revenue) FROM local_leads WHERE lead_status = 'Contacted') AS same;
SELECT sum(annual_revenue), count(*) FROM zoho_crm.leads WHERE lead_status = 'contacted';
-- GROUP BY a picklist, with every aggregate Zoho computes (at most 5 COQL aggregates a query).
EXPLAIN (VERBOSE, COSTS OFF)
SELECT lead_status, count(*), sum(annual_revenue), min(annual_revenue), max(no_of_employees) FROM zoho_crm.leads GROUP BY lead_status;
SELECT count(*) AS differing FROM (
  (SELECT lead_status, count(*), sum(annual_revenue), min(annual_revenue), max(no_of_employees) FROM zoho_crm.leads GROUP BY lead_status
   EXCEPT
   SELECT lead_status, count(*), sum(annual_revenue), min(annual_revenue), max(no_of_employees) FROM local_leads GROUP BY lead_status)
  UNION ALL
  (SELECT lead_status, count(*), sum(annual_revenue), min(annual_revenue), max(no_of_employees) FROM local_leads GROUP BY lead_status
   EXCEPT
   SELECT lead_status, count(*), sum(annual_revenue), min(annual_revenue), max(no_of_employees) FROM zoho_crm.leads GROUP BY lead_status)) d;
EXPLAIN (VERBOSE, COSTS OFF) SELECT rating, avg(no_of_employees), count(annual_revenue) FROM zoho_crm.leads WHERE no_of_employees > 100 GROUP BY rating;
SELECT count(*) AS differing FROM (
  (SELECT rating, avg(no_of_employees), count(annual_revenue) FROM zoho_crm.leads WHERE no_of_employees > 100 GROUP BY rating
   EXCEPT
   SELECT rating, avg(no_of_employees), count(annual_revenue) FROM local_leads WHERE no_of_employees > 100 GROUP BY rating)
  UNION ALL
  (SELECT rating, avg(no_of_employees), count(annual_revenue) FROM local_leads WHERE no_of_employees > 100 GROUP BY rating
   EXCEPT
   SELECT rating, avg(no_of_employees), count(annual_revenue) FROM zoho_crm.leads WHERE no_of_employees > 100 GROUP BY rating)) d;
SELECT count(*) AS groups FROM (SELECT lead_status FROM zoho_crm.leads GROUP BY lead_status) g;
-- avg is PostgreSQL's numeric division, to the last digit.
SELECT (SELECT avg(no_of_employees)::text FROM zoho_crm.leads WHERE rating = 'Active') = (SELECT avg(no_of_employees)::text FROM local_leads WHERE rating = 'Active') AS same_text;
-- More aggregates than COQL takes in one query: computed here.
EXPLAIN (COSTS OFF) SELECT count(*), sum(annual_revenue), min(annual_revenue), max(no_of_employees), avg(no_of_employees) FROM zoho_crm.leads;
-- A parameter keeps the aggregate here: a NULL would drop its condition from the COQL.
SET plan_cache_mode = force_generic_plan;
PREPARE over(numeric) AS SELECT count(*) FROM zoho_crm.leads WHERE annual_revenue > $1;
EXPLAIN (COSTS OFF) EXECUTE over(1000);
EXECUTE over(NULL);
RESET plan_cache_mode;
-- Over no rows: count is 0 and sum is NULL, as in PostgreSQL.
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*), sum(annual_revenue), max(annual_revenue) FROM zoho_crm.leads WHERE annual_revenue < 0;
SELECT count(*), sum(annual_revenue), max(annual_revenue) FROM zoho_crm.leads WHERE annual_revenue < 0;
SELECT avg(no_of_employees) FROM zoho_crm.leads WHERE annual_revenue < 0;
-- Not pushed: text, DISTINCT, FILTER, HAVING, local conditions. An expression over aggregates is computed here over the pushed aggregates.
EXPLAIN (COSTS OFF) SELECT count(last_name) FROM zoho_crm.leads;
EXPLAIN (COSTS OFF) SELECT count(DISTINCT lead_status) FROM zoho_crm.leads;
EXPLAIN (COSTS OFF) SELECT count(*) FILTER (WHERE no_of_employees > 10) FROM zoho_crm.leads;
EXPLAIN (COSTS OFF) SELECT lead_status, count(*) FROM zoho_crm.leads GROUP BY lead_status HAVING count(*) > 1;
EXPLAIN (COSTS OFF) SELECT count(*) + 1 FROM zoho_crm.leads;
SELECT (SELECT count(*) + 1 FROM zoho_crm.leads) = (SELECT count(*) + 1 FROM local_leads) AS same;
EXPLAIN (COSTS OFF) SELECT count(*) FROM zoho_crm.leads WHERE lower(last_name) = 'x';
EXPLAIN (COSTS OFF) SELECT last_name, count(*) FROM zoho_crm.leads GROUP BY last_name;
-- A LIMIT over a condition Zoho cannot apply reads full pages, not one row a call.
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM zoho_crm.leads WHERE lower(last_name) = 'no such name' LIMIT 1;
-- With every condition pushed, the LIMIT sizes the first call.
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM zoho_crm.leads WHERE no_of_employees > 10 LIMIT 3;
-- A semi-join with 50 local ids: their ids go to Zoho 100 a call, not a read of the module.
CREATE TABLE ids AS SELECT id FROM local_accounts ORDER BY id LIMIT 50 OFFSET 20;
ANALYZE ids;
EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM zoho_crm.accounts WHERE id IN (SELECT id FROM ids);
SELECT (SELECT count(*) FROM zoho_crm.accounts WHERE id IN (SELECT id FROM ids)) = (SELECT count(*) FROM local_accounts WHERE id IN (SELECT id FROM ids)) AS same;
-- Top-N on a number: Zoho sorts, with the LIMIT. PostgreSQL puts NULLs first
-- when descending and Zoho last, so the null group is a query of its own.
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, annual_revenue FROM zoho_crm.accounts ORDER BY annual_revenue DESC LIMIT 5;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id, annual_revenue FROM zoho_crm.accounts ORDER BY annual_revenue DESC NULLS LAST LIMIT 5;
SELECT (SELECT array_agg(r) FROM (SELECT annual_revenue AS r FROM zoho_crm.accounts ORDER BY annual_revenue DESC LIMIT 5) s)
     = (SELECT array_agg(r) FROM (SELECT annual_revenue AS r FROM local_accounts ORDER BY annual_revenue DESC LIMIT 5) s) AS same;
-- Text sorts by Zoho's collation, not PostgreSQL's: sorted here.
EXPLAIN (COSTS OFF) SELECT account_name FROM zoho_crm.accounts ORDER BY account_name LIMIT 5;
-- UPDATE and DELETE with fixed new values run directly: a COQL read of the matches, then 100 records a call.
EXPLAIN (VERBOSE, COSTS OFF) UPDATE zoho_crm.leads SET rating = 'Active' WHERE no_of_employees > 4000 RETURNING id, rating;
EXPLAIN (VERBOSE, COSTS OFF) DELETE FROM zoho_crm.leads WHERE no_of_employees > 4000 RETURNING id;
-- A user's own operator is never shipped, whatever its name.
CREATE FUNCTION public.text_eq_ci(text, text) RETURNS bool LANGUAGE sql IMMUTABLE AS 'SELECT lower($1) = lower($2)';
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.text_eq_ci);
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM zoho_crm.leads WHERE last_name OPERATOR(public.=) 'smith';
-- Under a nondeterministic collation 'Smith' = 'smíth' may hold where Zoho says no: not pushed.
CREATE COLLATION public.loose (provider = icu, locale = 'und-u-ks-level1', deterministic = false);
EXPLAIN (VERBOSE, COSTS OFF) SELECT id FROM zoho_crm.leads WHERE last_name = 'smith' COLLATE public.loose;
SELECT (SELECT count(*) FROM zoho_crm.leads WHERE last_name = 'SMITH' COLLATE public.loose)
     = (SELECT count(*) FROM local_leads WHERE last_name = 'SMITH' COLLATE public.loose) AS same;
-- The estimate is the last full read's row count (200 accounts), not a fixed guess.
EXPLAIN SELECT id FROM zoho_crm.accounts;
