-- Notification channels (zoho_watch): what each applies to, its token, its
-- expiry and how far the target is known to be current. The token is the
-- only proof a callback came from Zoho, so the table is readable by the
-- extension's owner only; zoho.channels shows the rest to everyone.
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
  last_error_at  timestamptz
);
REVOKE ALL ON zoho.watches FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('zoho.watches', '');

CREATE VIEW zoho.channels AS
  SELECT channel_id::text AS channel_id, module, target, server, owner, events, notify_url, expires_at,
         synced_until, created_at, renewed_at, last_notified, last_catchup, notifications, last_error, last_error_at
    FROM zoho.watches;
GRANT SELECT ON zoho.channels TO PUBLIC;

-- zoho_watch and zoho_unwatch record channels through these, so callers
-- need no access to the tokens; each checks the caller's rights.
CREATE FUNCTION zoho.add_watch(p_channel bigint, p_module text, p_target regclass, p_server name, p_events text[],
                               p_notify_url text, p_token text, p_expires timestamptz, p_since timestamptz)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT zoho.has_all_privileges(p_target, 'INSERT, UPDATE, DELETE') THEN
    RAISE EXCEPTION 'permission denied to keep % current: it needs INSERT, UPDATE and DELETE', p_target USING ERRCODE = '42501';
  END IF;
  INSERT INTO zoho.watches (channel_id, module, target, server, owner, events, notify_url, token, expires_at, synced_until)
  VALUES (p_channel, p_module, p_target, p_server, session_user::regrole, p_events, p_notify_url, p_token, p_expires, p_since);
END $$;

CREATE FUNCTION zoho.remove_watch(p_channel bigint)
RETURNS TABLE (server name, owner regrole) LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN QUERY DELETE FROM zoho.watches w
   WHERE w.channel_id = p_channel
     AND zoho.may_manage(w.owner)
  RETURNING w.server, w.owner;
END $$;
REVOKE ALL ON FUNCTION zoho.add_watch(bigint, text, regclass, name, text[], text, text, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zoho.add_watch(bigint, text, regclass, name, text[], text, text, timestamptz, timestamptz) TO PUBLIC;
REVOKE ALL ON FUNCTION zoho.remove_watch(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION zoho.remove_watch(bigint) TO PUBLIC;
