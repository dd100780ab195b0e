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
         s.rows_pending,
         (SELECT count(*) FROM zoho.push_rejections q WHERE q.source = s.source AND q.attempts >= s.max_attempts) AS rows_quarantined
    FROM zoho.push_schedules s CROSS JOIN LATERAL (SELECT zoho.budget_hold(s.server) AS hold) h
  UNION ALL
  SELECT 'pull', p.target::text, p.module, p.paused OR h.hold IS NOT NULL,
         CASE WHEN p.paused THEN coalesce(p.held_reason, 'paused by zoho_pause_pull') ELSE h.hold END,
         p.last_run, p.last_success, p.last_error, p.last_error_at, NULL, NULL
    FROM zoho.pull_schedules p CROSS JOIN LATERAL (SELECT zoho.budget_hold(p.server) AS hold) h
  UNION ALL
  SELECT 'watch', c.target::text, c.module, c.held_reason IS NOT NULL, c.held_reason,
         greatest(c.last_notified, c.last_catchup), c.synced_until, c.last_error, c.last_error_at, NULL, NULL
    FROM zoho.channels c
  UNION ALL
  SELECT 'export', e.target::text, e.module, false, NULL, e.finished_at, e.last_success, NULL, NULL, NULL, NULL
    FROM zoho.exports e;
GRANT SELECT ON zoho.sync_status TO PUBLIC;

-- One row per flow, for dashboards and alert rules: ok, degraded (failing
-- now and then), failing (three or more runs in a row, a lapsed channel, a
-- failed job) or paused; how far it is behind Zoho; when the worker tries
-- again; and the last error. Changes of state also go to
-- LISTEN zoho_fdw_events. flow_id tells apart flows of one kind on one
-- target (two channels of a table).
CREATE VIEW zoho.health WITH (security_invoker = true) AS
  SELECT 'push'::text AS flow, s.source::text AS target, s.module,
         CASE WHEN s.paused OR h.hold IS NOT NULL THEN 'paused'
              WHEN s.failures >= 3 THEN 'failing' WHEN s.failures > 0 THEN 'degraded' ELSE 'ok' END AS state,
         -- Rows waiting since the last push that went out.
         CASE WHEN coalesce(s.rows_pending, 0) > 0 THEN now() - coalesce(s.last_success, s.counted_at) ELSE interval '0' END AS lag,
         s.failures, s.next_attempt, s.last_error, s.last_error_at, NULL::text AS flow_id,
         -- What a change of the module's fields did to the table.
         NULL::text AS notes
    FROM zoho.push_schedules s CROSS JOIN LATERAL (SELECT zoho.budget_hold(s.server) AS hold) h
  UNION ALL
  SELECT 'pull', p.target::text, p.module,
         CASE WHEN p.paused OR h.hold IS NOT NULL THEN 'paused'
              WHEN p.failures >= 3 THEN 'failing' WHEN p.failures > 0 THEN 'degraded' ELSE 'ok' END,
         now() - p.synced_until, p.failures, p.next_attempt, coalesce(p.held_reason, p.last_error), p.last_error_at, NULL, p.schema_notes
    FROM zoho.pull_schedules p CROSS JOIN LATERAL (SELECT zoho.budget_hold(p.server) AS hold) h
  UNION ALL
  -- Lag: how long since the target was last proven equal to Zoho.
  SELECT 'verify', v.target::text, v.module,
         CASE WHEN v.paused OR h.hold IS NOT NULL THEN 'paused'
              WHEN v.failures >= 3 THEN 'failing' WHEN v.failures > 0 THEN 'degraded' ELSE 'ok' END,
         now() - v.last_success, v.failures, v.next_attempt, v.last_error, v.last_error_at, NULL, NULL
    FROM zoho.verify_schedules v CROSS JOIN LATERAL (SELECT zoho.budget_hold(v.server) AS hold) h
  UNION ALL
  SELECT 'channel', w.target::text, w.module,
         CASE WHEN w.held_reason IS NOT NULL THEN 'paused'
              WHEN w.expires_at < now() OR w.failures >= 3 THEN 'failing' WHEN w.failures > 0 THEN 'degraded' ELSE 'ok' END,
         now() - w.synced_until, w.failures, w.next_attempt, coalesce(w.held_reason, w.last_error), w.last_error_at, w.channel_id::text, w.schema_notes
    FROM zoho.watches w
  UNION ALL
  SELECT 'job ' || j.id, j.target::text, j.module,
         CASE WHEN j.state = 'failed' OR j.failures >= 3 THEN 'failing' WHEN j.failures > 0 OR j.error IS NOT NULL THEN 'degraded' ELSE 'ok' END,
         -- Failed attempts: Zoho not answering (failures), and runs that
         -- failed or that the runner did not survive (the first run is not
         -- a failure).
         CASE WHEN j.state IN ('queued', 'running') THEN now() - j.queued_at END, j.failures + greatest(j.attempts - 1, 0), j.next_attempt, j.error,
         CASE WHEN j.error IS NOT NULL THEN coalesce(j.finished_at, j.started_at) END, j.id::text, NULL
    FROM zoho.job_queue j
   WHERE j.state IN ('queued', 'running') OR (j.state = 'failed' AND j.finished_at > now() - interval '1 day');
GRANT SELECT ON zoho.health TO PUBLIC;
