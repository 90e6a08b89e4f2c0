-- V8: the device layer of settings: a device's overrides of its user's settings.
--
-- A device is one of the user's clients, named by the id it gives itself. It has no row of its
-- own: it exists through what it overrides, and "inherit" is the absence of an override, never
-- a copy of the user's value. Its rows count against the user's quotas (settings and bytes of
-- values) together with the user's own settings, under the same lock on the user's row.
--
-- The layer never holds secrets: a secret is sealed for the user's own cell `(user, key)`.

CREATE TABLE IF NOT EXISTS shared.user_device_settings (
    user_id     uuid         NOT NULL,
    device_id   varchar(64)  NOT NULL,
    key         varchar(255) NOT NULL,
    value       jsonb        NOT NULL,
    description text,
    category    varchar(100),
    data_type   varchar(50)  NOT NULL,
    -- The settings' sequence: a version never repeats, across users', devices' and the
    -- deployment's rows, so an ETag from before a delete never matches a re-created row.
    version     bigint       NOT NULL DEFAULT nextval('shared.user_settings_version_seq'),
    created_at  timestamptz  NOT NULL DEFAULT now(),
    updated_at  timestamptz  NOT NULL DEFAULT now(),
    -- The byte quota sums this with the user's own settings' (see V6).
    value_bytes integer      GENERATED ALWAYS AS (octet_length(value::text)) STORED,

    -- Also serves "every override of a device" and "the user's devices" (prefixes).
    CONSTRAINT user_device_settings_pkey PRIMARY KEY (user_id, device_id, key),
    -- Erasing the user erases their devices.
    CONSTRAINT user_device_settings_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES shared.users (id) ON DELETE CASCADE,

    -- Device id: `^[A-Za-z0-9._-]{1,64}$` (domain `DeviceId`).
    CONSTRAINT user_device_settings_device_id_format
        CHECK (device_id ~ '^[A-Za-z0-9._-]{1,64}$'),

    -- The rules of `shared.user_settings`, so a device's override is a valid setting whoever
    -- writes it: key (domain `SettingKey`), data type, category shape (the allowed list is
    -- the application's), description length, the value matching its type.
    CONSTRAINT user_device_settings_key_format CHECK (key ~ '^[a-z0-9._-]+$'),
    CONSTRAINT user_device_settings_key_length CHECK (octet_length(key) BETWEEN 1 AND 255),
    CONSTRAINT user_device_settings_key_segments CHECK (key !~ '(^\.|\.\.|\.$)'),
    CONSTRAINT user_device_settings_data_type
        CHECK (data_type IN ('string', 'number', 'boolean', 'json', 'encrypted')),
    CONSTRAINT user_device_settings_category_format
        CHECK (category IS NULL OR category ~ '^[a-z0-9_-]{1,100}$'),
    CONSTRAINT user_device_settings_description_length
        CHECK (description IS NULL OR char_length(description) <= 1024),
    CONSTRAINT user_device_settings_value_matches_type CHECK (
        jsonb_typeof(value) <> 'null'
        AND CASE data_type
            WHEN 'string'  THEN jsonb_typeof(value) = 'string'
            WHEN 'number'  THEN jsonb_typeof(value) = 'number'
            WHEN 'boolean' THEN jsonb_typeof(value) = 'boolean'
            ELSE true
        END
    ),
    CONSTRAINT user_device_settings_version_positive CHECK (version >= 1),

    -- No secrets here (so no envelope rule either): a plaintext secret can never be stored
    -- as a device's override, even by another program.
    CONSTRAINT user_device_settings_not_encrypted CHECK (data_type <> 'encrypted')
) WITH (fillfactor = 90);

-- Change notifications on the channel of V2, so every instance can invalidate what it caches
-- of a device: `{"store": "device_settings", "user_id", "device_id", "key", "op"}`. Fields are
-- read one by one so a large value is never copied.
CREATE OR REPLACE FUNCTION shared.user_device_settings_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('user_settings_changes', json_build_object(
            'store', 'device_settings', 'user_id', NEW.user_id, 'device_id', NEW.device_id,
            'key', NEW.key, 'op', TG_OP)::text);
    END IF;
    -- A delete, or an update that moved the row to another cell: the old cell changed too.
    -- (NEW is not read on a delete, nor OLD on an insert.)
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('user_settings_changes', json_build_object(
            'store', 'device_settings', 'user_id', OLD.user_id, 'device_id', OLD.device_id,
            'key', OLD.key, 'op', TG_OP)::text);
    ELSIF TG_OP = 'UPDATE' THEN
        IF (OLD.user_id, OLD.device_id, OLD.key)
            IS DISTINCT FROM (NEW.user_id, NEW.device_id, NEW.key) THEN
            PERFORM pg_notify('user_settings_changes', json_build_object(
                'store', 'device_settings', 'user_id', OLD.user_id, 'device_id', OLD.device_id,
                'key', OLD.key, 'op', TG_OP)::text);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER user_device_settings_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON shared.user_device_settings
    FOR EACH ROW EXECUTE FUNCTION shared.user_device_settings_notify_change();
