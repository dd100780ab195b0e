-- Notification channels (zoho_watch): what each applies to, its token, its
-- expiry and how far the target is known to be current. The token is the
-- only proof a callback came from Zoho: only the channel's owner (and the
-- roles that are members of it) can read it.
CREATE TABLE zoho.watches (
  channel_id     bigint      PRIMARY KEY,
  module         text        NOT NULL,
  target         regclass    NOT NULL,
  server         name        NOT NULL,
  -- Whose user mapping the worker uses for this channel's API calls.
  owner          regrole     NOT NULL,
  events         text[]      NOT NULL,
  notify_url     text        NOT NULL,
  token          text        NOT NULL,
  expires_at     timestamptz,
  -- Every change up to here is in the target: catch-ups read from it.
  synced_until   timestamptz NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  renewed_at     timestamptz,
  last_notified  timestamptz,
  last_catchup   timestamptz,
  notifications  bigint      NOT NULL DEFAULT 0,
  last_error     text,
  last_error_at  timestamptz,
  -- Renewals or catch-ups failed in a row, and when the worker tries again.
  failures       int         NOT NULL DEFAULT 0,
  next_attempt   timestamptz,
  -- Only records this COQL condition matches are kept (src/filter.rs).
  filter         text,
  -- Fields added, removed or retyped in Zoho (src/worker/drift.rs), as a
  -- pull's: follow, hold or ignore; what the last check saw; why the
  -- channel's changes wait (zoho_resume_watch); what the last change did.
  schema_changes text        NOT NULL DEFAULT 'follow' CHECK (schema_changes IN ('follow', 'hold', 'ignore')),
  schema         jsonb,
  schema_checked timestamptz,
  held_reason    text,
  schema_notes   text
);
SELECT pg_catalog.pg_extension_config_dump('zoho.watches', '');
-- A role sees and changes the channels of roles it is a member of, its
-- tokens included; a channel needs every privilege a mirror needs on an
-- ordinary or partitioned table.
ALTER TABLE zoho.watches ENABLE ROW LEVEL SECURITY;
CREATE POLICY watches_owners ON zoho.watches FOR ALL
  USING (pg_catalog.pg_has_role(current_user, owner, 'MEMBER'))
  WITH CHECK (zoho.may_register(owner, target, '{SELECT,INSERT,UPDATE,DELETE}'));
GRANT SELECT, DELETE ON zoho.watches TO PUBLIC;
GRANT INSERT (channel_id, module, target, server, owner, events, notify_url, token, expires_at, synced_until, filter, schema_changes),
      UPDATE (held_reason) ON zoho.watches TO PUBLIC;
ALTER TABLE zoho.watches ADD CHECK (isfinite(synced_until) AND (expires_at IS NULL OR isfinite(expires_at)));

-- Each role sees its own channels (the view reads as its reader).
CREATE VIEW zoho.channels WITH (security_invoker = true) AS
  SELECT channel_id::text AS channel_id, module, target, server, owner, events, notify_url, expires_at,
         synced_until, created_at, renewed_at, last_notified, last_catchup, notifications, last_error, last_error_at, filter,
         schema_changes, held_reason, schema_notes
    FROM zoho.watches;
GRANT SELECT ON zoho.channels TO PUBLIC;

-- A channel held for a change of fields goes on (its catch-up reads what
-- changed meanwhile) once its owner has fixed the table.
CREATE FUNCTION zoho_resume_watch(channel_id text) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  UPDATE zoho.watches w SET held_reason = NULL WHERE w.channel_id = $1::bigint RETURNING true;
$$;
COMMENT ON FUNCTION zoho_resume_watch(text) IS
  'Let a channel that a change of Zoho''s fields held apply its changes again (after the table was fixed)';
