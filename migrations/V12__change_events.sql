-- V12: the live change stream: every kept change (V11) is announced to the instances, which
-- hand it to the streams of the user's clients; and single-use tickets that open a stream
-- from a browser (which cannot send an Authorization header to an EventSource).
--
-- Channel: `user_settings_events`
-- Payload: JSON text, one notification per history row, sent at commit:
--     {"position": <history position>, "user_id": "<uuid>" | null (the deployment's),
--      "store": "settings" | "preferences" | "defaults",
--      "scope": "user" | "device" | "deployment", "device_id": "<id>" | null,
--      "key": "<key>" | null, "op": "created" | …, "version": <n>, "changed_at": "<time>"}
-- It carries no value: a client re-reads what it needs, and nothing secret can pass through.
-- A listener that was disconnected replays what it missed from the history by position.

CREATE OR REPLACE FUNCTION shared.user_settings_history_announce() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('user_settings_events', json_build_object(
        'position', NEW.position, 'user_id', NEW.user_id, 'store', NEW.store,
        'scope', CASE WHEN NEW.device_id = '' THEN 'user' ELSE 'device' END,
        'device_id', nullif(NEW.device_id, ''), 'key', nullif(NEW.key, ''),
        'op', NEW.op, 'version', NEW.version, 'changed_at', NEW.changed_at)::text);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER user_settings_history_announce
    AFTER INSERT ON shared.user_settings_history
    FOR EACH ROW EXECUTE FUNCTION shared.user_settings_history_announce();

CREATE OR REPLACE FUNCTION shared.deployment_history_announce() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('user_settings_events', json_build_object(
        'position', NEW.position, 'user_id', NULL, 'store', 'defaults',
        'scope', 'deployment', 'device_id', NULL, 'key', nullif(NEW.key, ''),
        'op', NEW.op, 'version', NEW.version, 'changed_at', NEW.changed_at)::text);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER deployment_history_announce
    AFTER INSERT ON shared.deployment_history
    FOR EACH ROW EXECUTE FUNCTION shared.deployment_history_announce();

-- Tickets: only a hash of each is stored (a leaked table opens no stream). Single-use: the
-- redeem deletes the row it matches. No foreign key: a user may open a stream before their
-- first write creates their row; erasure removes them below.
CREATE TABLE IF NOT EXISTS shared.user_settings_event_tickets (
    ticket_hash      bytea       NOT NULL,
    user_id          uuid        NOT NULL,
    -- When the token the ticket was issued for expires: the stream ends then too.
    token_expires_at timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT user_settings_event_tickets_pkey PRIMARY KEY (ticket_hash),
    CONSTRAINT user_settings_event_tickets_hash_length CHECK (octet_length(ticket_hash) = 32)
);

CREATE INDEX IF NOT EXISTS idx_user_settings_event_tickets_expires_at
    ON shared.user_settings_event_tickets (expires_at);
CREATE INDEX IF NOT EXISTS idx_user_settings_event_tickets_user
    ON shared.user_settings_event_tickets (user_id);

-- Erasure removes a user's tickets with their pending authorizations.
CREATE OR REPLACE FUNCTION shared.users_erase_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM shared.user_settings_oauth_states WHERE user_id = OLD.id;
    DELETE FROM shared.user_settings_event_tickets WHERE user_id = OLD.id;
    RETURN NULL;
END
$$;
