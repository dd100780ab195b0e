-- Two-way tables (src/sync): one table is both a push source and a pull
-- target. zoho_sync registers the push and the pull (their mappings keep
-- each side's owned fields away from the other) and the conflict rules the
-- pull applies to rows that changed on both sides.
CREATE TABLE zoho.syncs (
  target      regclass    PRIMARY KEY,
  module      text        NOT NULL,
  key_field   text        NOT NULL,
  policy      text        NOT NULL DEFAULT 'newest_wins' CHECK (policy IN ('zoho_wins', 'local_wins', 'newest_wins')),
  -- Zoho field API name → its owner (local, zoho) or a policy of its own.
  fields      jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(fields) = 'object'),
  -- The caller's mapping, before zoho_sync derived the push's and the pull's.
  mapping     jsonb,
  -- What every pull, export and watch into the table uses (zoho.sync_plan).
  pull_mapping jsonb      NOT NULL,
  sync_column name        NOT NULL DEFAULT 'synced',
  -- Which deletes go across: both ways, Zoho's only (a pull's), or none.
  deletes     text        NOT NULL DEFAULT 'from_zoho' CHECK (deletes IN ('both', 'from_zoho', 'flag', 'none')),
  server      name,
  owner       regrole     NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('zoho.syncs', '');
ALTER TABLE zoho.syncs ENABLE ROW LEVEL SECURITY;
-- Whoever writes the table must see its rules, or its rows would be
-- written without them.
CREATE POLICY syncs_readers ON zoho.syncs FOR SELECT
  USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER') OR pg_catalog.has_table_privilege(target, 'INSERT'));
CREATE POLICY syncs_owners ON zoho.syncs FOR ALL
  USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'))
  WITH CHECK (zoho.may_register(owner, target, '{SELECT,INSERT,UPDATE,DELETE}'));
GRANT SELECT, DELETE ON zoho.syncs TO PUBLIC;
GRANT INSERT (target, module, key_field, policy, fields, mapping, pull_mapping, sync_column, deletes, server, owner),
      UPDATE (module, key_field, policy, fields, mapping, pull_mapping, sync_column, deletes, server, owner)
   ON zoho.syncs TO PUBLIC;

-- Every conflict a pull resolved: a row changed here and in Zoho since they
-- last agreed, field by field, with both values, the winner and why. Seen
-- by whoever may read the table (the values are its own).
CREATE TABLE zoho.conflicts (
  id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at                 timestamptz NOT NULL DEFAULT now(),
  target             regclass    NOT NULL,
  record_id          bigint      NOT NULL,
  field              text        NOT NULL,
  local_value        text,
  zoho_value         text,
  winner             text        NOT NULL CHECK (winner IN ('local', 'zoho')),
  reason             text        NOT NULL,
  -- zoho_changed_at of the row and Zoho's Modified_Time, both on Zoho's clock.
  local_changed_at   timestamptz,
  zoho_modified_time timestamptz
);
CREATE INDEX ON zoho.conflicts (target, at);
ALTER TABLE zoho.conflicts ENABLE ROW LEVEL SECURITY;
CREATE POLICY conflicts_readers ON zoho.conflicts FOR SELECT USING (pg_catalog.has_table_privilege(target, 'SELECT'));
CREATE POLICY conflicts_writers ON zoho.conflicts FOR INSERT WITH CHECK (pg_catalog.has_table_privilege(target, 'UPDATE'));
CREATE POLICY conflicts_cleaners ON zoho.conflicts FOR DELETE USING (pg_catalog.has_table_privilege(target, 'UPDATE'));
GRANT SELECT, INSERT, DELETE ON zoho.conflicts TO PUBLIC;

-- Rows deleted here whose records are yet to be deleted in Zoho (deletes
-- => 'both'), kept by zoho_record_delete and sent by the table's push.
-- Only the trigger writes it (as the extension, having checked the deleting
-- role's right): a role could otherwise name any record for the owner's
-- push to delete. The push deletes a record only while Zoho still holds the
-- deleted row's key in it.
CREATE TABLE zoho.sync_deletes (
  target     regclass    NOT NULL,
  record_id  bigint      NOT NULL,
  -- The row's key (key_field's column), checked against Zoho's record.
  row_key    text        NOT NULL,
  deleted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (target, record_id)
);
ALTER TABLE zoho.sync_deletes ENABLE ROW LEVEL SECURITY;
CREATE POLICY sync_deletes_deleters ON zoho.sync_deletes FOR ALL
  USING (pg_catalog.has_table_privilege(target, 'DELETE'));
GRANT SELECT, DELETE ON zoho.sync_deletes TO PUBLIC;

-- zoho_record_delete(), the AFTER DELETE trigger that fills it, is in
-- src/sync/deletes.rs.

CREATE FUNCTION zoho_sync(target regclass, module text, key_field text, policy text DEFAULT 'newest_wins',
                          fields jsonb DEFAULT NULL, mapping jsonb DEFAULT NULL, sync_column name DEFAULT 'synced',
                          every interval DEFAULT '1 minute', min_pending int DEFAULT 1, max_wait interval DEFAULT '1 minute',
                          server name DEFAULT NULL, schema_changes text DEFAULT 'follow', deletes text DEFAULT 'from_zoho',
                          filter text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE plan jsonb;
BEGIN
  PERFORM zoho.require_table(target, '{SELECT,INSERT,UPDATE,DELETE}', 'sync');
  PERFORM zoho.require_server(server);
  -- Checks the table, the fields and the rules against Zoho's metadata.
  plan := zoho.sync_plan(target, module, key_field, policy, fields, mapping, sync_column, server);
  IF deletes IS NULL OR deletes NOT IN ('both', 'from_zoho', 'flag', 'none') THEN
    RAISE EXCEPTION 'deletes must be both, from_zoho, flag or none, not %', coalesce(quote_literal(deletes), 'NULL') USING ERRCODE = '22023',
      HINT = 'both: a row deleted here deletes its record in Zoho, and the other way round; from_zoho: only Zoho''s deletes reach the table; flag: Zoho''s deletes set zoho_deleted_at and keep the row; none: neither.';
  END IF;
  IF deletes = 'flag' AND NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = target AND a.attname = 'zoho_deleted_at'
                                         AND a.atttypid = 'timestamptz'::regtype AND a.attnum > 0 AND NOT a.attisdropped) THEN
    RAISE EXCEPTION '% has no column zoho_deleted_at (timestamptz), which deletes => flag sets', target USING ERRCODE = '22023',
      HINT = format('ALTER TABLE %s ADD COLUMN zoho_deleted_at timestamptz', target);
  END IF;
  -- The table first, then the flow's rows: the worker's jobs take them in
  -- that order (writing the table, then their own rows), so a job running
  -- now makes this wait rather than deadlock at the DROP TRIGGER below.
  EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', target);
  INSERT INTO zoho.syncs AS s (target, module, key_field, policy, fields, mapping, pull_mapping, sync_column, deletes, server, owner)
  VALUES (target, module, plan->>'key_field', policy, plan->'fields', mapping, plan->'pull_mapping', sync_column, deletes, server, current_user::regrole)
  ON CONFLICT ON CONSTRAINT syncs_pkey DO UPDATE
    SET module = EXCLUDED.module, key_field = EXCLUDED.key_field, policy = EXCLUDED.policy, fields = EXCLUDED.fields,
        mapping = EXCLUDED.mapping, pull_mapping = EXCLUDED.pull_mapping, deletes = EXCLUDED.deletes, sync_column = EXCLUDED.sync_column, server = EXCLUDED.server, owner = EXCLUDED.owner;
  PERFORM @extschema@.zoho_schedule_push(target, module, plan->>'key_field', min_pending, max_wait, sync_column, 'auto', plan->'push_mapping', server);
  PERFORM @extschema@.zoho_schedule_pull(module, target, every, NULL, plan->'pull_mapping', server, schema_changes, $14);
  EXECUTE format('DROP TRIGGER IF EXISTS zoho_sync_deletes ON %s', target);
  IF deletes = 'both' THEN
    EXECUTE format('CREATE TRIGGER zoho_sync_deletes AFTER DELETE ON %s FOR EACH ROW EXECUTE FUNCTION @extschema@.zoho_record_delete(%L)', target, plan->>'key_column');
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  IF SQLERRM LIKE '%row-level security%' THEN
    RAISE EXCEPTION 'permission denied to change the sync of %: it belongs to another role', target USING ERRCODE = '42501';
  END IF;
  RAISE;
END $$;
COMMENT ON FUNCTION zoho_sync(regclass, text, text, text, jsonb, jsonb, name, interval, int, interval, name, text, text, text) IS
  'Keep a table and a Zoho module in step both ways: local edits are pushed, Zoho''s pulled, conflicts resolved by policy (zoho_wins, local_wins, newest_wins) with per-field owners and overrides; with a filter, only the records it matches stay (a row written here that does not match is pushed, then leaves)';

CREATE FUNCTION zoho_unsync(target regclass) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE found boolean;
BEGIN
  -- The table before the flow's rows, as in zoho_sync.
  IF EXISTS (SELECT FROM zoho.syncs s WHERE s.target = $1) THEN
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', $1);
  END IF;
  DELETE FROM zoho.syncs s WHERE s.target = $1 RETURNING true INTO found;
  IF found THEN
    PERFORM @extschema@.zoho_unschedule_push($1);
    PERFORM @extschema@.zoho_unschedule_pull($1);
    EXECUTE format('DROP TRIGGER IF EXISTS zoho_sync_deletes ON %s', $1);
    DELETE FROM zoho.sync_deletes d WHERE d.target = $1;
  END IF;
  RETURN coalesce(found, false);
END $$;
COMMENT ON FUNCTION zoho_unsync(regclass) IS 'Stop syncing a table both ways (its push and pull schedules go too); true if it was synced';
