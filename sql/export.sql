-- Bookkeeping of exports: when the last successful export of a module into
-- a table started, so that a catch-up reads only what changed since. Written
-- in the exporting transaction, so a failed export leaves no trace.
CREATE SCHEMA zoho;
COMMENT ON SCHEMA zoho IS 'zoho_fdw bookkeeping and status views';

-- Whether the session's user may change or drop a flow owned by `owner`.
CREATE FUNCTION zoho.may_manage(owner regrole) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT pg_has_role(session_user, owner, 'MEMBER') OR (SELECT rolsuper FROM pg_roles WHERE rolname = session_user);
$$;

-- Whether the session's user holds every one of a comma-separated list of
-- privileges on a table (has_table_privilege alone is true for any one).
CREATE FUNCTION zoho.has_all_privileges(tbl regclass, privileges text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT bool_and(has_table_privilege(session_user, tbl, trim(p))) FROM unnest(string_to_array(privileges, ',')) p;
$$;

CREATE TABLE zoho.exports (
  module       text        NOT NULL,
  target       regclass    NOT NULL,
  server       name        NOT NULL,
  -- When the last successful export started: every change before it is in
  -- the target (or newer); changes after it may not be.
  last_success timestamptz NOT NULL,
  finished_at  timestamptz NOT NULL,
  rows_written bigint      NOT NULL,
  pages        int         NOT NULL,
  PRIMARY KEY (module, target)
);
SELECT pg_catalog.pg_extension_config_dump('zoho.exports', '');
GRANT USAGE ON SCHEMA zoho TO PUBLIC;
GRANT SELECT ON zoho.exports TO PUBLIC;

-- Exports record themselves through this, so callers need no write access
-- to the catalog; it checks that they could write the target themselves.
CREATE FUNCTION zoho.record_export(p_module text, p_target regclass, p_server name, p_started timestamptz, p_rows bigint, p_pages int)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT has_table_privilege(session_user, p_target, 'INSERT') THEN
    RAISE EXCEPTION 'permission denied to record an export into %', p_target USING ERRCODE = '42501';
  END IF;
  INSERT INTO zoho.exports AS e (module, target, server, last_success, finished_at, rows_written, pages)
  VALUES (p_module, p_target, p_server, p_started, clock_timestamp(), p_rows, p_pages)
  ON CONFLICT (module, target) DO UPDATE
    SET server = EXCLUDED.server, last_success = EXCLUDED.last_success, finished_at = EXCLUDED.finished_at,
        rows_written = EXCLUDED.rows_written, pages = EXCLUDED.pages;
END $$;
REVOKE ALL ON FUNCTION zoho.record_export(text, regclass, name, timestamptz, bigint, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zoho.record_export(text, regclass, name, timestamptz, bigint, int) TO PUBLIC;
