-- Scheduled verification: every `every`, the worker compares the target
-- with its module bucket by bucket (zoho_verify) as the owner, and with
-- repair fixes what differs; it skips a run while the server's
-- daily_credit_budget is reached.
CREATE TABLE zoho.verify_schedules (
  target        regclass    PRIMARY KEY,
  module        text        NOT NULL,
  server        name,
  owner         regrole     NOT NULL,
  mapping       jsonb,
  every         interval    NOT NULL DEFAULT '1 day' CHECK (every BETWEEN interval '1 second' AND interval '10 years'),
  repair        boolean     NOT NULL DEFAULT true,
  paused        boolean     NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_run      timestamptz,
  last_success  timestamptz,
  -- {"missing", "extra", "stale", "repaired", "buckets", "calls", "credits"}
  last_result   jsonb,
  last_error    text,
  last_error_at timestamptz,
  failures      int         NOT NULL DEFAULT 0,
  next_attempt  timestamptz
);
SELECT pg_catalog.pg_extension_config_dump('zoho.verify_schedules', '');
ALTER TABLE zoho.verify_schedules ENABLE ROW LEVEL SECURITY;
CREATE POLICY verify_schedules_owners ON zoho.verify_schedules FOR ALL
  USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'))
  WITH CHECK (zoho.may_register(owner, target, '{SELECT,INSERT,UPDATE,DELETE}'));
GRANT SELECT, DELETE ON zoho.verify_schedules TO PUBLIC;
GRANT INSERT (target, module, server, owner, mapping, every, repair, paused),
      UPDATE (module, server, owner, mapping, every, repair, paused)
   ON zoho.verify_schedules TO PUBLIC;

CREATE FUNCTION zoho_schedule_verify(target regclass, every interval DEFAULT '1 day', repair boolean DEFAULT true,
                                     module text DEFAULT NULL, mapping jsonb DEFAULT NULL, server name DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE m text := module; mp jsonb := mapping; srv name := server;
BEGIN
  PERFORM zoho.require_table(target, '{SELECT,INSERT,UPDATE,DELETE}', 'verify');
  IF m IS NULL THEN
    -- The target's own flow says what it mirrors, as for zoho_verify.
    SELECT f.module, coalesce(mp, f.mapping), coalesce(srv, f.server) INTO m, mp, srv FROM (
        SELECT p.module, p.mapping, p.server, 1 AS o FROM zoho.pull_schedules p WHERE p.target = $1
        UNION ALL SELECT w.module, NULL, w.server, 2 FROM zoho.watches w WHERE w.target = $1
        UNION ALL SELECT e.module, NULL, e.server, 3 FROM zoho.exports e WHERE e.target = $1) f
      ORDER BY f.o LIMIT 1;
    IF m IS NULL THEN
      RAISE EXCEPTION '% is not the target of a pull, a watch or an export, so its module is not known', target
        USING ERRCODE = '22023', HINT = 'Name it: zoho_schedule_verify(target, module => ''Leads'').';
    END IF;
  END IF;
  PERFORM zoho.require_server(srv);
  INSERT INTO zoho.verify_schedules AS s (target, module, server, owner, mapping, every, repair)
  VALUES (target, m, srv, current_user::regrole, mp, every, repair)
  ON CONFLICT ON CONSTRAINT verify_schedules_pkey DO UPDATE
    SET module = EXCLUDED.module, server = EXCLUDED.server, owner = EXCLUDED.owner, mapping = EXCLUDED.mapping,
        every = EXCLUDED.every, repair = EXCLUDED.repair, paused = false;
EXCEPTION WHEN insufficient_privilege THEN
  IF SQLERRM LIKE '%row-level security%' THEN
    RAISE EXCEPTION 'permission denied to change the verification of %: it belongs to another role', target USING ERRCODE = '42501';
  END IF;
  RAISE;
END $$;
COMMENT ON FUNCTION zoho_schedule_verify(regclass, interval, boolean, text, jsonb, name) IS
  'Have the background worker run zoho_verify(target, repair) every "every", within the credit budget; results in zoho.verify_schedules';

CREATE FUNCTION zoho_unschedule_verify(target regclass) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE found boolean;
BEGIN
  DELETE FROM zoho.verify_schedules s WHERE s.target = $1 RETURNING true INTO found;
  RETURN coalesce(found, false);
END $$;
