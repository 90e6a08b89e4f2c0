-- V2: change notifications, so every instance can invalidate its caches.
--
-- Channel: `user_settings_changes`
-- Payload: JSON text, one notification per changed row:
--     {"store": "settings" | "preferences",
--      "user_id": "<uuid>",
--      "key": "<setting key>" | null,        -- null for preferences
--      "op": "INSERT" | "UPDATE" | "DELETE"}
--
-- Notifications are delivered at commit (none for a rolled-back transaction) and identical
-- payloads within one transaction are folded into one by PostgreSQL. A listener that was
-- disconnected has missed notifications and must flush its caches (adapter-postgres'
-- `ChangeFeed` emits `FlushAll` after every (re)connect).

CREATE OR REPLACE FUNCTION shared.user_settings_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    store text := TG_ARGV[0];
    old_user uuid;
    old_key text;
    new_user uuid;
    new_key text;
BEGIN
    -- Fields are read one by one (not via to_jsonb(NEW)) so a large value is never copied.
    -- Preferences rows have no key: only the settings branch reads it.
    IF TG_OP <> 'DELETE' THEN
        new_user := NEW.user_id;
        IF store = 'settings' THEN
            new_key := NEW.key;
        END IF;
        PERFORM pg_notify('user_settings_changes', json_build_object(
            'store', store, 'user_id', new_user, 'key', new_key, 'op', TG_OP)::text);
    END IF;

    -- A delete, or an update that moved the row to another user or key: the old cell changed.
    IF TG_OP <> 'INSERT' THEN
        old_user := OLD.user_id;
        IF store = 'settings' THEN
            old_key := OLD.key;
        END IF;
        IF TG_OP = 'DELETE' OR (old_user, old_key) IS DISTINCT FROM (new_user, new_key) THEN
            PERFORM pg_notify('user_settings_changes', json_build_object(
                'store', store, 'user_id', old_user, 'key', old_key, 'op', TG_OP)::text);
        END IF;
    END IF;

    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER user_settings_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON shared.user_settings
    FOR EACH ROW EXECUTE FUNCTION shared.user_settings_notify_change('settings');

CREATE OR REPLACE TRIGGER user_preferences_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON shared.user_preferences
    FOR EACH ROW EXECUTE FUNCTION shared.user_settings_notify_change('preferences');
