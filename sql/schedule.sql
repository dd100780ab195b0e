-- Scheduled pushes, run by the background worker: a table's pending rows go
-- out as soon as min_pending are waiting, or once any have waited max_wait.
-- (Near-real-time: 100 and 10 minutes; on an interval: a large min_pending
-- and max_wait '12 hours', with mode 'auto' choosing the cheaper API.)
CREATE TABLE zoho.push_schedules (
  source        regclass    PRIMARY KEY,
  module        text        NOT NULL,
  key_field     text,
  sync_column   name        NOT NULL DEFAULT 'synced',
  mode          text        NOT NULL DEFAULT 'auto' CHECK (mode IN ('auto', 'upsert', 'bulk')),
  mapping       jsonb,
  server        name,
  -- Whose user mapping and privileges the push runs with.
  owner         regrole     NOT NULL,
  min_pending   int         NOT NULL DEFAULT 100 CHECK (min_pending BETWEEN 1 AND 100000000),
  -- Rejections with the same values before a row is held back.
  max_attempts  int         NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 1000),
  max_wait      interval    NOT NULL DEFAULT '10 minutes' CHECK (max_wait BETWEEN interval '0' AND interval '1 year'),
  paused        boolean     NOT NULL DEFAULT false,
  last_run      timestamptz,
  last_success  timestamptz,
  last_result   jsonb,
  last_error    text,
  last_error_at timestamptz,
  -- Pending rows as the worker last counted them (as the owner).
  rows_pending  bigint,
  counted_at    timestamptz,
  -- Failures in a row, and when the worker tries again (backing off).
  failures      int         NOT NULL DEFAULT 0,
  next_attempt  timestamptz
);
SELECT pg_catalog.pg_extension_config_dump('zoho.push_schedules', '');
ALTER TABLE zoho.push_schedules ENABLE ROW LEVEL SECURITY;
CREATE POLICY push_schedules_owners ON zoho.push_schedules FOR ALL
  USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'))
  WITH CHECK (zoho.may_register(owner, source, '{SELECT,UPDATE}'));
-- A role writes what it registers; what the worker records is the worker's.
GRANT SELECT, DELETE ON zoho.push_schedules TO PUBLIC;
GRANT INSERT (source, module, key_field, sync_column, mode, mapping, server, owner, min_pending, max_wait, max_attempts, paused),
      UPDATE (module, key_field, sync_column, mode, mapping, server, owner, min_pending, max_wait, max_attempts, paused)
   ON zoho.push_schedules TO PUBLIC;

-- Rows Zoho keeps rejecting (src/push/quarantine.rs): by the row's key and
-- a fingerprint of the values sent. Whoever may push the table sees and
-- clears them.
CREATE TABLE zoho.push_rejections (
  source    regclass    NOT NULL,
  row_key   text        NOT NULL,
  row_hash  text        NOT NULL,
  -- Zoho's code (MANDATORY_NOT_FOUND, …), and its whole message.
  code      text        NOT NULL,
  reason    text        NOT NULL,
  attempts  int         NOT NULL DEFAULT 1,
  first_at  timestamptz NOT NULL DEFAULT now(),
  last_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, row_key)
);
SELECT pg_catalog.pg_extension_config_dump('zoho.push_rejections', '');
ALTER TABLE zoho.push_rejections ENABLE ROW LEVEL SECURITY;
CREATE POLICY push_rejections_pushers ON zoho.push_rejections FOR ALL
  USING (pg_catalog.has_table_privilege(source, 'UPDATE'))
  WITH CHECK (pg_catalog.has_table_privilege(source, 'UPDATE'));
GRANT SELECT, INSERT, UPDATE, DELETE ON zoho.push_rejections TO PUBLIC;

-- Sends the held-back rows of a table again at its next push.
CREATE FUNCTION zoho_requeue(source regclass) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  WITH gone AS (DELETE FROM zoho.push_rejections r WHERE r.source = $1 RETURNING 1) SELECT count(*) FROM gone;
$$;
COMMENT ON FUNCTION zoho_requeue(regclass) IS
  'Forget the rows Zoho kept rejecting, so that the next push sends them again; returns how many';

-- The caller's own rights decide; these are the messages when they fall short.
CREATE FUNCTION zoho.require_table(t regclass, privileges text[], doing text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE missing text[];
BEGIN
  IF (SELECT c.relkind NOT IN ('r', 'p') FROM pg_class c WHERE c.oid = t) THEN
    RAISE EXCEPTION '"%" is not a table', t USING ERRCODE = '42809',
      HINT = 'zoho_fdw flows read and write ordinary or partitioned tables only, never views or foreign tables.';
  END IF;
  SELECT array_agg(p) INTO missing FROM unnest(privileges) p WHERE NOT has_table_privilege(t, p);
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION 'permission denied to % %: it needs %', doing, t, array_to_string(privileges, ', ') USING ERRCODE = '42501',
      HINT = format('%s lacks %s on it.', current_user, array_to_string(missing, ', '));
  END IF;
END $$;

-- The server a flow uses (NULL: the only zoho_fdw server) must be one the
-- caller may use.
CREATE FUNCTION zoho.require_server(srv name) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE s name;
BEGIN
  SELECT f.srvname INTO s FROM pg_foreign_server f JOIN pg_foreign_data_wrapper w ON w.oid = f.srvfdw AND w.fdwname = 'zoho_fdw'
   WHERE f.srvname = srv OR (srv IS NULL AND (SELECT count(*) FROM pg_foreign_server g WHERE g.srvfdw = w.oid) = 1);
  IF s IS NULL THEN
    RETURN; -- the worker reports a missing or ambiguous server on its run
  END IF;
  IF NOT has_server_privilege(s, 'USAGE') THEN
    RAISE EXCEPTION 'role % may not use server "%"', current_user, s USING ERRCODE = '42501',
      HINT = format('GRANT USAGE ON FOREIGN SERVER %I TO %I.', s, current_user);
  END IF;
END $$;

CREATE FUNCTION zoho_schedule_push(source regclass, module text, key_field text DEFAULT NULL,
                                   min_pending int DEFAULT 100, max_wait interval DEFAULT '10 minutes',
                                   sync_column name DEFAULT 'synced', mode text DEFAULT 'auto',
                                   mapping jsonb DEFAULT NULL, server name DEFAULT NULL, max_attempts int DEFAULT 3)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM zoho.require_table(source, '{SELECT,UPDATE}', 'push');
  PERFORM zoho.require_server(server);
  INSERT INTO zoho.push_schedules AS s (source, module, key_field, sync_column, mode, mapping, server, owner, min_pending, max_wait, max_attempts)
  VALUES (source, module, key_field, sync_column, mode, mapping, server, current_user::regrole, min_pending, max_wait, max_attempts)
  ON CONFLICT ON CONSTRAINT push_schedules_pkey DO UPDATE
    SET module = EXCLUDED.module, key_field = EXCLUDED.key_field, sync_column = EXCLUDED.sync_column, mode = EXCLUDED.mode,
        mapping = EXCLUDED.mapping, server = EXCLUDED.server, owner = EXCLUDED.owner,
        min_pending = EXCLUDED.min_pending, max_wait = EXCLUDED.max_wait, max_attempts = EXCLUDED.max_attempts, paused = false;
EXCEPTION WHEN insufficient_privilege THEN
  -- Another role's schedule: its row is not ours to see or change.
  IF SQLERRM LIKE '%row-level security%' THEN
    RAISE EXCEPTION 'permission denied to change the push of %: it belongs to another role', source USING ERRCODE = '42501';
  END IF;
  RAISE;
END $$;
COMMENT ON FUNCTION zoho_schedule_push(regclass, text, text, int, interval, name, text, jsonb, name, int) IS
  'Have the background worker push source''s pending rows when min_pending are waiting or any have waited max_wait';

CREATE FUNCTION zoho_unschedule_push(source regclass) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE found boolean;
BEGIN
  DELETE FROM zoho.push_schedules s WHERE s.source = $1 RETURNING true INTO found;
  RETURN coalesce(found, false);
END $$;

CREATE FUNCTION zoho_pause_push(source regclass, paused boolean DEFAULT true) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  UPDATE zoho.push_schedules s SET paused = $2 WHERE s.source = $1 RETURNING true;
$$;
