-- V9: preferences become layers. A user's row keeps only the fields the user chose; NULL
-- means "inherit" (from the deployment's value, else the builtin default), so a default an
-- operator changes later reaches every user who never chose that field.
--
-- Until now the first write of a user's preferences stored every field, defaults included.
-- Those copies cannot be told from a deliberate choice, so every stored value that equals
-- its builtin default becomes "inherit" (the rule of storing only what differs from the
-- defaults). A user who had chosen exactly the default reads the same value as before; the
-- choice itself cannot be told apart afterwards, so the rule cannot be undone.
--
-- Deploying: stop every instance of the earlier version before this migration runs. Earlier
-- code reads these columns as never NULL and would fail on the rows it rewrites.

ALTER TABLE shared.user_preferences
    ALTER COLUMN email_notifications DROP NOT NULL,
    ALTER COLUMN email_notifications DROP DEFAULT,
    ALTER COLUMN push_notifications DROP NOT NULL,
    ALTER COLUMN push_notifications DROP DEFAULT,
    ALTER COLUMN digest_notifications DROP NOT NULL,
    ALTER COLUMN digest_notifications DROP DEFAULT,
    ALTER COLUMN profile_visibility DROP NOT NULL,
    ALTER COLUMN profile_visibility DROP DEFAULT,
    ALTER COLUMN show_email DROP NOT NULL,
    ALTER COLUMN show_email DROP DEFAULT,
    ALTER COLUMN show_activity DROP NOT NULL,
    ALTER COLUMN show_activity DROP DEFAULT,
    ALTER COLUMN theme DROP NOT NULL,
    ALTER COLUMN theme DROP DEFAULT,
    ALTER COLUMN display_language DROP NOT NULL,
    ALTER COLUMN display_language DROP DEFAULT,
    ALTER COLUMN show_adult_content DROP NOT NULL,
    ALTER COLUMN show_adult_content DROP DEFAULT,
    ALTER COLUMN show_spoilers DROP NOT NULL,
    ALTER COLUMN show_spoilers DROP DEFAULT,
    ALTER COLUMN auto_play_videos DROP NOT NULL,
    ALTER COLUMN auto_play_videos DROP DEFAULT;

ALTER TABLE shared.user_preferences
    DROP CONSTRAINT IF EXISTS user_preferences_notifications_are_objects;
ALTER TABLE shared.user_preferences
    ADD CONSTRAINT user_preferences_notifications_are_objects CHECK (
        (email_notifications IS NULL OR jsonb_typeof(email_notifications) = 'object')
        AND (push_notifications IS NULL OR jsonb_typeof(push_notifications) = 'object')
        AND (digest_notifications IS NULL OR jsonb_typeof(digest_notifications) = 'object')
    );

-- The builtin defaults, as the service wrote them (`Preferences::default()`). A column is
-- only rewritten where it equals its default, so the statement rewrites no row that holds
-- no default.
UPDATE shared.user_preferences SET
    email_notifications = CASE WHEN email_notifications = '{"enabled": true, "frequency": "instant"}'::jsonb
                               THEN NULL ELSE email_notifications END,
    push_notifications = CASE WHEN push_notifications = '{"enabled": false}'::jsonb
                              THEN NULL ELSE push_notifications END,
    digest_notifications = CASE WHEN digest_notifications = '{"enabled": true, "frequency": "weekly"}'::jsonb
                                THEN NULL ELSE digest_notifications END,
    profile_visibility = NULLIF(profile_visibility, 'private'),
    show_email = NULLIF(show_email, false),
    show_activity = NULLIF(show_activity, true),
    theme = NULLIF(theme, 'system'),
    display_language = NULLIF(display_language, 'en-US'),
    show_adult_content = NULLIF(show_adult_content, false),
    show_spoilers = NULLIF(show_spoilers, false),
    auto_play_videos = NULLIF(auto_play_videos, true),
    -- A rewritten row is a new state of the row: a fresh version, so an ETag from before does
    -- not match it.
    version = nextval('shared.user_preferences_version_seq')
WHERE email_notifications = '{"enabled": true, "frequency": "instant"}'::jsonb
   OR push_notifications = '{"enabled": false}'::jsonb
   OR digest_notifications = '{"enabled": true, "frequency": "weekly"}'::jsonb
   OR profile_visibility = 'private' OR show_email = false OR show_activity = true
   OR theme = 'system' OR display_language = 'en-US' OR show_adult_content = false
   OR show_spoilers = false OR auto_play_videos = true;

-- The deployment layer of the preferences: one row, the fields an operator sets (a document
-- of overrides, validated by the service like a user's) and the fields enforced. The change
-- notification reaches every instance's cache of the deployment layer.
CREATE TABLE IF NOT EXISTS shared.deployment_preferences (
    singleton   boolean     NOT NULL DEFAULT true,
    overrides   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    enforced    text[]      NOT NULL DEFAULT '{}',
    version     bigint      NOT NULL DEFAULT nextval('shared.user_preferences_version_seq'),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  uuid        NOT NULL,

    CONSTRAINT deployment_preferences_pkey PRIMARY KEY (singleton),
    CONSTRAINT deployment_preferences_one_row CHECK (singleton),
    CONSTRAINT deployment_preferences_overrides_object CHECK (jsonb_typeof(overrides) = 'object')
);

CREATE OR REPLACE FUNCTION shared.deployment_preferences_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('user_settings_changes', json_build_object(
        'store', 'defaults', 'user_id', NULL, 'key', NULL, 'op', TG_OP)::text);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER deployment_preferences_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON shared.deployment_preferences
    FOR EACH ROW EXECUTE FUNCTION shared.deployment_preferences_notify_change();
