-- Bookkeeping of exports: when the last successful export of a module into
-- a table started, so that a catch-up reads only what changed since. Written
-- in the exporting transaction, so a failed export leaves no trace.
CREATE SCHEMA zoho;
COMMENT ON SCHEMA zoho IS 'zoho_fdw bookkeeping and status views';

-- Who may see and change what (the security model, README "Security
-- model"): every catalog table has row-level security, so a role reaches
-- only the flows of roles it is a member of; the functions that register
-- flows run with their caller's rights, never the extension owner's. The
-- worker, which bypasses these policies, acts on a flow's table as the
-- flow's owner (src/privileges.rs).

-- Whether the current user may register a flow of `owner` on `target`: a
-- member of the owner, an ordinary or partitioned table, and every one of
-- `privileges` held by the owner. Row-level security checks it on every row.
CREATE FUNCTION zoho.may_register(owner regrole, target regclass, privileges text[]) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT pg_has_role(current_user, owner, 'MEMBER')
     AND coalesce((SELECT c.relkind IN ('r', 'p') FROM pg_class c WHERE c.oid = target), false)
     AND (SELECT bool_and(has_table_privilege(owner, target, p)) FROM unnest(privileges) p);
$$;

CREATE TABLE zoho.exports (
  module       text        NOT NULL,
  target       regclass    NOT NULL,
  server       name        NOT NULL,
  -- Who ran the last export.
  owner        regrole     NOT NULL DEFAULT current_user::regrole,
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
-- An export's bookkeeping belongs to whoever may write its target.
ALTER TABLE zoho.exports ENABLE ROW LEVEL SECURITY;
CREATE POLICY exports_readers ON zoho.exports FOR SELECT
  USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER') OR pg_catalog.has_table_privilege(target, 'INSERT'));
CREATE POLICY exports_writers ON zoho.exports FOR ALL
  USING (pg_catalog.has_table_privilege(target, 'INSERT'))
  WITH CHECK (pg_catalog.has_table_privilege(target, 'INSERT') AND pg_catalog.pg_has_role(current_user, owner, 'MEMBER'));
GRANT SELECT, INSERT, UPDATE, DELETE ON zoho.exports TO PUBLIC;
ALTER TABLE zoho.exports ADD CHECK (isfinite(last_success) AND isfinite(finished_at));
