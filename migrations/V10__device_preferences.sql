-- V10: the device layer of the preferences: what one of the user's clients overrides of their
-- preferences (for example a larger subtitle size, or no autoplay, on the TV). One row per
-- device that overrides anything, holding only the fields it sets (a document of overrides,
-- validated by the service like the user's own preferences); a device that overrides nothing
-- has no row. A device counts once towards the user's devices, whether it overrides
-- settings, preferences or both.

CREATE TABLE IF NOT EXISTS shared.user_device_preferences (
    user_id     uuid        NOT NULL,
    device_id   varchar(64) NOT NULL,
    overrides   jsonb       NOT NULL,
    -- The preferences' sequence: a version never repeats for a row, even after a delete.
    version     bigint      NOT NULL DEFAULT nextval('shared.user_preferences_version_seq'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT user_device_preferences_pkey PRIMARY KEY (user_id, device_id),
    CONSTRAINT user_device_preferences_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES shared.users (id) ON DELETE CASCADE,
    CONSTRAINT user_device_preferences_device_id_format
        CHECK (device_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    CONSTRAINT user_device_preferences_overrides_object
        CHECK (jsonb_typeof(overrides) = 'object' AND overrides <> '{}'::jsonb)
);

-- Every instance drops the rendered views of the user: `{"store": "device_preferences",
-- "user_id", "device_id", "op"}`.
CREATE OR REPLACE FUNCTION shared.user_device_preferences_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('user_settings_changes', json_build_object(
            'store', 'device_preferences', 'user_id', NEW.user_id,
            'device_id', NEW.device_id, 'op', TG_OP)::text);
    ELSE
        PERFORM pg_notify('user_settings_changes', json_build_object(
            'store', 'device_preferences', 'user_id', OLD.user_id,
            'device_id', OLD.device_id, 'op', TG_OP)::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER user_device_preferences_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON shared.user_device_preferences
    FOR EACH ROW EXECUTE FUNCTION shared.user_device_preferences_notify_change();
