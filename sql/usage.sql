-- API usage of every backend and the worker, by hour, server and endpoint.
-- Backends count calls in shared memory; the worker adds them here every
-- second, in its own transactions, so a rolled-back user transaction still
-- shows the credits it spent. Written only with zoho_fdw preloaded.
CREATE TABLE zoho.api_usage_log (
  hour     timestamptz NOT NULL,
  server   name        NOT NULL,
  endpoint text        NOT NULL,
  calls    bigint      NOT NULL DEFAULT 0,
  credits  bigint      NOT NULL DEFAULT 0,
  retries  bigint      NOT NULL DEFAULT 0,
  errors   bigint      NOT NULL DEFAULT 0,
  PRIMARY KEY (hour, server, endpoint)
);
GRANT SELECT ON zoho.api_usage_log TO PUBLIC;

CREATE VIEW zoho.api_usage AS
  SELECT (hour AT TIME ZONE 'UTC')::date AS day, server, endpoint,
         sum(calls)::bigint AS calls, sum(credits)::bigint AS credits,
         sum(retries)::bigint AS retries, sum(errors)::bigint AS errors
    FROM zoho.api_usage_log
   GROUP BY 1, 2, 3;
GRANT SELECT ON zoho.api_usage TO PUBLIC;

-- Zoho counts credits over a rolling 24 hours (zoho-api.md §12.1), hourly
-- buckets here, counting the whole hour the window starts in; a server's
-- daily_credit_budget option holds the worker's scheduled work (pushes,
-- pulls, queued jobs) once the credits of the last 24 hours reach it.
CREATE VIEW zoho.credit_budget AS
  SELECT s.srvname AS server, b.budget, u.used AS credits_24h,
         b.budget - u.used AS remaining, coalesce(u.used >= b.budget, false) AS reached
    FROM pg_foreign_server s
    JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw AND w.fdwname = 'zoho_fdw'
    LEFT JOIN LATERAL (SELECT substr(o, length('daily_credit_budget=') + 1)::bigint AS budget
                         FROM unnest(s.srvoptions) o WHERE o LIKE 'daily\_credit\_budget=%') b ON true
    CROSS JOIN LATERAL (SELECT coalesce(sum(l.credits), 0)::bigint AS used FROM zoho.api_usage_log l
                         WHERE l.server = s.srvname AND l.hour >= date_trunc('hour', now() - interval '24 hours')) u;
GRANT SELECT ON zoho.credit_budget TO PUBLIC;

-- Why scheduled work of a server (NULL: the only zoho_fdw server) is held
-- back, or NULL when it is not.
CREATE FUNCTION zoho.budget_hold(p_server name) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT format('daily_credit_budget reached: %s of %s credits used in the last 24 hours', b.credits_24h, b.budget)
    FROM zoho.credit_budget b
   WHERE b.reached
     AND b.server = coalesce(p_server, (SELECT min(c.server::text)::name FROM zoho.credit_budget c HAVING count(*) = 1));
$$;
