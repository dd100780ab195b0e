-- Bulk exports run by the worker, one after another, outside any user's
-- transaction: queued by zoho_queue_export, by scheduled pulls (a first
-- full load, or a gap too large for the records list), by channels' catch-
-- ups (a gap too large) and by formula refreshes. A job interrupted by a crash or restart is queued again;
-- exports are newer-wins, so running one twice is harmless.
CREATE TABLE zoho.job_queue (
  id            bigserial   PRIMARY KEY,
  kind          text        NOT NULL CHECK (kind IN ('export', 'pull', 'refresh', 'catchup', 'backfill')),
  module        text        NOT NULL,
  target        regclass    NOT NULL,
  since         timestamptz,
  mapping       jsonb,
  server        name,
  -- A channel's catch-up too large for the records list.
  channel_id    bigint,
  -- A backfill's fields: added in Zoho, read into rows that exist.
  fields        text[],
  -- A filtered pull's COQL condition (src/filter.rs).
  filter        text,
  -- Whose user mapping and privileges the job runs with.
  owner         regrole     NOT NULL,
  state         text        NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  attempts      int         NOT NULL DEFAULT 0,
  queued_at     timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  finished_at   timestamptz,
  rows_written  bigint,
  -- Where an interrupted job goes on: pages committed, and Zoho's token
  -- for the next page (valid 24 hours) when there is one.
  pages_done    int         NOT NULL DEFAULT 0,
  next_page_token text,
  page_token_at timestamptz,
  -- A failed attempt is tried again from here, until attempts run out;
  -- failures counts attempts in a row Zoho did not answer (not limited).
  next_attempt  timestamptz,
  failures      int         NOT NULL DEFAULT 0,
  runner_pid    int,
  error         text
);
CREATE INDEX ON zoho.job_queue (state) WHERE state IN ('queued', 'running');
SELECT pg_catalog.pg_extension_config_dump('zoho.job_queue', '');
SELECT pg_catalog.pg_extension_config_dump('zoho.job_queue_id_seq', '');
-- A role queues jobs for itself into tables it may write, and sees and
-- cancels the jobs of roles it is a member of; only the worker runs them.
ALTER TABLE zoho.job_queue ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_queue_readers ON zoho.job_queue FOR SELECT
  USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));
-- Users queue exports only; the worker queues the other kinds and runs them all.
CREATE POLICY job_queue_exports ON zoho.job_queue FOR INSERT
  WITH CHECK (zoho.may_register(owner, target, '{SELECT,INSERT,UPDATE}') AND kind = 'export' AND state = 'queued');
-- And cancel them (zoho_cancel_job).
CREATE POLICY job_queue_cancels ON zoho.job_queue FOR UPDATE
  USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'))
  WITH CHECK (pg_catalog.pg_has_role(current_user, owner, 'MEMBER') AND state = 'cancelled');
GRANT SELECT ON zoho.job_queue TO PUBLIC;
GRANT INSERT (kind, module, target, since, mapping, server, owner, filter), UPDATE (state, finished_at, error) ON zoho.job_queue TO PUBLIC;
ALTER TABLE zoho.job_queue ADD CHECK (since IS NULL OR isfinite(since));
GRANT USAGE ON SEQUENCE zoho.job_queue_id_seq TO PUBLIC;

-- A running job's progress comes from zoho.job_progress (src/worker/jobs.rs):
-- it reads the runner's activity, which PostgreSQL shows superusers only,
-- for a job the caller can see.
CREATE VIEW zoho.jobs WITH (security_invoker = true) AS
  SELECT j.id, j.kind, j.module, j.target, j.since, j.owner, j.state, j.attempts, j.queued_at, j.started_at,
         j.finished_at, j.rows_written, j.pages_done, p.activity AS progress, p.page_rows, j.error
    FROM zoho.job_queue j
    LEFT JOIN LATERAL zoho.job_progress(j.id) p ON j.state = 'running';
GRANT SELECT ON zoho.jobs TO PUBLIC;

CREATE FUNCTION zoho_queue_export(module text, target regclass, since timestamptz DEFAULT NULL,
                                  mapping jsonb DEFAULT NULL, server name DEFAULT NULL, filter text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE job bigint;
BEGIN
  PERFORM zoho.require_table(target, '{SELECT,INSERT,UPDATE}', 'export into');
  PERFORM zoho.require_server(server);
  INSERT INTO zoho.job_queue (kind, module, target, since, mapping, server, owner, filter)
  VALUES ('export', module, target, since, mapping, server, current_user::regrole, zoho.filter_check(module, $6, server))
  RETURNING id INTO job;
  RETURN job;
END $$;
COMMENT ON FUNCTION zoho_queue_export(text, regclass, timestamptz, jsonb, name, text) IS
  'Queue zoho_bulk_export(module, target, since, mapping, server, filter) for the background worker; returns the job id (see zoho.jobs)';

-- Scheduled pulls: the worker keeps target current with module every
-- `every` (a full Bulk Read the first time, then what changed since the last
-- pull, plus deletes), and re-reads formula fields, whose changes do not
-- move Modified_Time, on the cron schedule refresh_formulas.
CREATE TABLE zoho.pull_schedules (
  target        regclass    PRIMARY KEY,
  module        text        NOT NULL,
  server        name,
  owner         regrole     NOT NULL,
  mapping       jsonb,
  every         interval    NOT NULL DEFAULT '15 minutes' CHECK (every BETWEEN interval '1 second' AND interval '10 years'),
  -- A cron schedule, checked on the way in (a bad one would stop every pull).
  refresh_formulas text       CHECK (refresh_formulas IS NULL OR zoho.cron_next(refresh_formulas, '2000-01-01') IS NOT NULL),
  paused        boolean     NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  -- Every change up to here is in the target.
  synced_until  timestamptz,
  last_run      timestamptz,
  last_success  timestamptz,
  last_refresh  timestamptz,
  last_result   jsonb,
  last_error    text,
  last_error_at timestamptz,
  -- Runs failed in a row, and when the worker tries again.
  failures      int         NOT NULL DEFAULT 0,
  next_attempt  timestamptz,
  -- Fields added, removed or retyped in Zoho (src/worker/drift.rs): follow
  -- them (add columns and backfill), hold (pause the pull) or ignore.
  schema_changes text       NOT NULL DEFAULT 'follow' CHECK (schema_changes IN ('follow', 'hold', 'ignore')),
  -- The module's readable fields at the last check: API name → data type.
  schema        jsonb,
  schema_checked timestamptz,
  -- Why the worker paused the pull (a change the table cannot follow).
  held_reason   text,
  -- What the last change of fields did (or could not do) to the table.
  schema_notes  text,
  -- Only records this COQL condition matches are kept (src/filter.rs),
  -- as zoho.filter_check wrote it.
  filter        text
);
SELECT pg_catalog.pg_extension_config_dump('zoho.pull_schedules', '');
ALTER TABLE zoho.pull_schedules ENABLE ROW LEVEL SECURITY;
CREATE POLICY pull_schedules_owners ON zoho.pull_schedules FOR ALL
  USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'))
  WITH CHECK (zoho.may_register(owner, target, '{SELECT,INSERT,UPDATE,DELETE}'));
GRANT SELECT, DELETE ON zoho.pull_schedules TO PUBLIC;
GRANT INSERT (target, module, server, owner, mapping, every, refresh_formulas, paused, schema_changes, filter),
      UPDATE (module, server, owner, mapping, every, refresh_formulas, paused, synced_until, schema_changes, held_reason, filter)
   ON zoho.pull_schedules TO PUBLIC;
ALTER TABLE zoho.pull_schedules ADD CHECK (synced_until IS NULL OR isfinite(synced_until));

CREATE FUNCTION zoho_schedule_pull(module text, target regclass, every interval DEFAULT '15 minutes',
                                   refresh_formulas text DEFAULT NULL, mapping jsonb DEFAULT NULL, server name DEFAULT NULL,
                                   schema_changes text DEFAULT 'follow', filter text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE checked text;
BEGIN
  IF schema_changes IS NULL OR schema_changes NOT IN ('follow', 'hold', 'ignore') THEN
    RAISE EXCEPTION 'schema_changes must be follow, hold or ignore, not %', coalesce(quote_literal(schema_changes), 'NULL') USING ERRCODE = '22023',
      HINT = 'follow adds a column for each field added in Zoho; hold pauses the pull until you act; ignore leaves the table as it is.';
  END IF;
  PERFORM zoho.require_table(target, '{SELECT,INSERT,UPDATE,DELETE}', 'pull into');
  PERFORM zoho.require_server(server);
  IF refresh_formulas IS NOT NULL THEN
    PERFORM zoho.cron_next(refresh_formulas, now());
  END IF;
  -- Checked against the module's fields now, not at the first pull.
  checked := zoho.filter_check(module, $8, server);
  INSERT INTO zoho.pull_schedules AS s (target, module, server, owner, mapping, every, refresh_formulas, schema_changes, filter)
  VALUES (target, module, server, current_user::regrole, mapping, every, refresh_formulas, schema_changes, checked)
  ON CONFLICT ON CONSTRAINT pull_schedules_pkey DO UPDATE
    SET module = EXCLUDED.module, server = EXCLUDED.server, owner = EXCLUDED.owner, mapping = EXCLUDED.mapping,
        every = EXCLUDED.every, refresh_formulas = EXCLUDED.refresh_formulas, paused = false, held_reason = NULL,
        schema_changes = EXCLUDED.schema_changes, filter = EXCLUDED.filter,
        -- Another module, mapping or filter: start again with a full load
        -- (which, filtered, also removes the rows the filter leaves out).
        synced_until = CASE WHEN s.module = EXCLUDED.module AND s.mapping IS NOT DISTINCT FROM EXCLUDED.mapping
                                 AND s.filter IS NOT DISTINCT FROM EXCLUDED.filter
                            THEN s.synced_until END;
EXCEPTION WHEN insufficient_privilege THEN
  IF SQLERRM LIKE '%row-level security%' THEN
    RAISE EXCEPTION 'permission denied to change the pull into %: it belongs to another role', target USING ERRCODE = '42501';
  END IF;
  RAISE;
END $$;
COMMENT ON FUNCTION zoho_schedule_pull(text, regclass, interval, text, jsonb, name, text, text) IS
  'Have the background worker keep target current with module every "every", refreshing formula fields on the cron schedule refresh_formulas, following fields added in Zoho (schema_changes), and keeping only the records a COQL condition matches (filter)';

CREATE FUNCTION zoho_unschedule_pull(target regclass) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE found boolean;
BEGIN
  DELETE FROM zoho.pull_schedules s WHERE s.target = $1 RETURNING true INTO found;
  RETURN coalesce(found, false);
END $$;

CREATE FUNCTION zoho_pause_pull(target regclass, paused boolean DEFAULT true) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  UPDATE zoho.pull_schedules s SET paused = $2, held_reason = CASE WHEN $2 THEN s.held_reason END WHERE s.target = $1 RETURNING true;
$$;
