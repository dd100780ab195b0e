-- Every flow the worker runs, one row each, for the flows the reader may
-- see (the view reads as its reader, and the catalog's row-level security
-- decides). It runs no user code: pending rows are the worker's last count,
-- made as the flow's owner. A flow is paused by its owner, or held while
-- its server's daily_credit_budget is reached.
CREATE VIEW zoho.sync_status WITH (security_invoker = true) AS
  SELECT 'push'::text AS flow, s.source::text AS target, s.module,
         s.paused OR h.hold IS NOT NULL AS paused,
         CASE WHEN s.paused THEN 'paused by zoho_pause_push' ELSE h.hold END AS paused_reason,
         s.last_run, s.last_success, s.last_error, s.last_error_at,
         s.rows_pending
    FROM zoho.push_schedules s CROSS JOIN LATERAL (SELECT zoho.budget_hold(s.server) AS hold) h
  UNION ALL
  SELECT 'pull', p.target::text, p.module, p.paused OR h.hold IS NOT NULL,
         CASE WHEN p.paused THEN 'paused by zoho_pause_pull' ELSE h.hold END,
         p.last_run, p.last_success, p.last_error, p.last_error_at, NULL
    FROM zoho.pull_schedules p CROSS JOIN LATERAL (SELECT zoho.budget_hold(p.server) AS hold) h
  UNION ALL
  SELECT 'watch', c.target::text, c.module, false, NULL,
         greatest(c.last_notified, c.last_catchup), c.synced_until, c.last_error, c.last_error_at, NULL
    FROM zoho.channels c
  UNION ALL
  SELECT 'export', e.target::text, e.module, false, NULL, e.finished_at, e.last_success, NULL, NULL, NULL
    FROM zoho.exports e;
GRANT SELECT ON zoho.sync_status TO PUBLIC;
