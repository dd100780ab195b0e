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
  min_pending   int         NOT NULL DEFAULT 100 CHECK (min_pending > 0),
  max_wait      interval    NOT NULL DEFAULT '10 minutes',
  paused        boolean     NOT NULL DEFAULT false,
  last_run      timestamptz,
  last_success  timestamptz,
  last_result   jsonb,
  last_error    text,
  last_error_at timestamptz
);
GRANT SELECT ON zoho.push_schedules TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('zoho.push_schedules', '');

CREATE FUNCTION zoho_schedule_push(source regclass, module text, key_field text DEFAULT NULL,
                                   min_pending int DEFAULT 100, max_wait interval DEFAULT '10 minutes',
                                   sync_column name DEFAULT 'synced', mode text DEFAULT 'auto',
                                   mapping jsonb DEFAULT NULL, server name DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT zoho.has_all_privileges(source, 'SELECT, UPDATE') THEN
    RAISE EXCEPTION 'permission denied to push %: it needs SELECT and UPDATE', source USING ERRCODE = '42501';
  END IF;
  INSERT INTO zoho.push_schedules AS s (source, module, key_field, sync_column, mode, mapping, server, owner, min_pending, max_wait)
  VALUES (source, module, key_field, sync_column, mode, mapping, server, session_user::regrole, min_pending, max_wait)
  ON CONFLICT ON CONSTRAINT push_schedules_pkey DO UPDATE
    SET module = EXCLUDED.module, key_field = EXCLUDED.key_field, sync_column = EXCLUDED.sync_column, mode = EXCLUDED.mode,
        mapping = EXCLUDED.mapping, server = EXCLUDED.server, owner = EXCLUDED.owner,
        min_pending = EXCLUDED.min_pending, max_wait = EXCLUDED.max_wait, paused = false
    WHERE zoho.may_manage(s.owner);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'permission denied to change the push of %: it belongs to another role', source USING ERRCODE = '42501';
  END IF;
END $$;
COMMENT ON FUNCTION zoho_schedule_push(regclass, text, text, int, interval, name, text, jsonb, name) IS
  'Have the background worker push source''s pending rows when min_pending are waiting or any have waited max_wait';

CREATE FUNCTION zoho_unschedule_push(source regclass) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE found boolean;
BEGIN
  DELETE FROM zoho.push_schedules s WHERE s.source = $1
     AND zoho.may_manage(s.owner)
  RETURNING true INTO found;
  RETURN coalesce(found, false);
END $$;

CREATE FUNCTION zoho_pause_push(source regclass, paused boolean DEFAULT true) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  UPDATE zoho.push_schedules s SET paused = $2 WHERE s.source = $1
     AND zoho.may_manage(s.owner)
  RETURNING true;
$$;

-- Rows of a table waiting to be pushed.
CREATE FUNCTION zoho.pending_rows(source regclass, sync_column name) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM %s WHERE NOT %I', source, sync_column) INTO n;
  RETURN n;
EXCEPTION WHEN insufficient_privilege OR undefined_column OR undefined_table THEN
  RETURN NULL;
END $$;
