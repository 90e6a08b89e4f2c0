-- V7: the deployment layer of settings, and the operator's audited writes to it.
--
-- An operator sets a value of a key for every user; a user who never chose that key reads
-- it, a user who chose keeps their own, unless the operator marks it `enforced`, which wins
-- over every user's value (a user's stored value stays stored and comes back when the
-- enforcement is lifted). Only what the operator sets is stored: nothing is copied into the
-- users' rows, so a change reaches every user at once and rewrites no user row.
--
-- The layer never holds secrets: a secret is sealed for one user's cell and exists only in
-- that user's layer.

CREATE TABLE IF NOT EXISTS shared.deployment_settings (
    key         text        NOT NULL,
    value       jsonb       NOT NULL,
    category    text,
    data_type   text        NOT NULL,
    enforced    boolean     NOT NULL DEFAULT false,
    -- The settings' sequence: a version never repeats, across users' rows and these.
    version     bigint      NOT NULL DEFAULT nextval('shared.user_settings_version_seq'),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  uuid        NOT NULL,

    CONSTRAINT deployment_settings_pkey PRIMARY KEY (key),
    CONSTRAINT deployment_settings_key_format CHECK (key ~ '^[a-z0-9._-]+$'),
    CONSTRAINT deployment_settings_key_length CHECK (octet_length(key) BETWEEN 1 AND 255),
    CONSTRAINT deployment_settings_key_segments CHECK (key !~ '(^\.|\.\.|\.$)'),
    CONSTRAINT deployment_settings_data_type
        CHECK (data_type IN ('string', 'number', 'boolean', 'json')),
    CONSTRAINT deployment_settings_category_format
        CHECK (category IS NULL OR category ~ '^[a-z0-9_-]{1,100}$'),
    CONSTRAINT deployment_settings_value_matches_type CHECK (
        (data_type = 'string' AND jsonb_typeof(value) = 'string')
        OR (data_type = 'number' AND jsonb_typeof(value) = 'number')
        OR (data_type = 'boolean' AND jsonb_typeof(value) = 'boolean')
        OR (data_type = 'json' AND jsonb_typeof(value) <> 'null')
    )
);

-- Every instance caches the layer whole: a change notifies the channel the caches listen on,
-- with no user (it concerns everyone).
CREATE OR REPLACE FUNCTION shared.deployment_settings_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('user_settings_changes', json_build_object(
        'store', 'defaults', 'user_id', NULL,
        'key', CASE WHEN TG_OP = 'DELETE' THEN OLD.key ELSE NEW.key END,
        'op', TG_OP)::text);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER deployment_settings_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON shared.deployment_settings
    FOR EACH ROW EXECUTE FUNCTION shared.deployment_settings_notify_change();

-- Operators write, and their writes are audited. A write to the deployment layer concerns no
-- one user, so its subject is empty.
ALTER TABLE shared.user_settings_audit
    ALTER COLUMN subject_user_id DROP NOT NULL;
ALTER TABLE shared.user_settings_audit
    DROP CONSTRAINT IF EXISTS user_settings_audit_actor_role;
ALTER TABLE shared.user_settings_audit
    ADD CONSTRAINT user_settings_audit_actor_role
        CHECK (actor_role IN ('user', 'admin', 'service', 'operator'));
ALTER TABLE shared.user_settings_audit
    DROP CONSTRAINT IF EXISTS user_settings_audit_action;
ALTER TABLE shared.user_settings_audit
    ADD CONSTRAINT user_settings_audit_action
        CHECK (action IN ('admin_read', 'secret_read', 'token_read', 'defaults_write'));
ALTER TABLE shared.user_settings_audit
    DROP CONSTRAINT IF EXISTS user_settings_audit_subject;
ALTER TABLE shared.user_settings_audit
    ADD CONSTRAINT user_settings_audit_subject
        CHECK (subject_user_id IS NOT NULL OR action = 'defaults_write');
