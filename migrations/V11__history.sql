-- V11: the history of every change, so a lost or overwritten value can be seen and restored.
--
-- Every change of a user's settings, of their preferences, of their devices' overrides and of
-- the deployment layer is kept as one row, written by a trigger in the transaction of the
-- change itself: whatever made the change (a single write, a bulk write, a merge patch, a
-- restore, an import, an integration, another program), its history commits or rolls back
-- with it. A row holds the state after the change: the value, its version, the operation and
-- who made it.
--
-- Who and why: the service names them for the transaction with
--     set_config('user_settings.change_actor', 'integration' | 'import' | 'system', true)
--     set_config('user_settings.change_op', 'restored' | 'imported', true)
-- when they are not the default. Unset, the actor is `user` for the users' tables and
-- `operator` for the deployment layer, and the operation follows from the statement
-- (insert: `created`, update: `updated`, delete: `deleted`). A write that changes no version
-- is not a change: key rotation re-seals a secret under a new key and keeps its version, and
-- leaves no history.
--
-- Secrets: the value of an encrypted setting is never kept (NULL), only that it changed and
-- when, so the history can never widen what a leaked key would expose.
--
-- Positions: every row takes a position from one sequence for both tables; within one user
-- (whose writes are serialised by the lock on their row) positions follow the order of the
-- changes. Deletes take a fresh version, so a version names one row of a key's history.
--
-- Retention (the last N versions of each key, and at most a maximum age) is the service's
-- background pruner's job, in small batches.

CREATE SEQUENCE IF NOT EXISTS shared.change_position_seq;

CREATE TABLE IF NOT EXISTS shared.user_settings_history (
    position    bigint       NOT NULL DEFAULT nextval('shared.change_position_seq'),
    user_id     uuid         NOT NULL,
    -- 'settings' or 'preferences'.
    store       text         NOT NULL,
    -- '' is the user's own layer; otherwise the device (a device id is never empty).
    device_id   varchar(64)  NOT NULL DEFAULT '',
    -- The setting's key; '' for the preferences (a key is never empty).
    key         varchar(255) NOT NULL DEFAULT '',
    version     bigint       NOT NULL,
    op          text         NOT NULL,
    actor       text         NOT NULL,
    -- The state after the change. NULL value: a delete, or a secret's (never kept).
    value       jsonb,
    data_type   varchar(50),
    category    varchar(100),
    description text,
    changed_at  timestamptz  NOT NULL DEFAULT now(),

    CONSTRAINT user_settings_history_pkey PRIMARY KEY (user_id, position),
    -- Erasing the user erases their history.
    CONSTRAINT user_settings_history_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES shared.users (id) ON DELETE CASCADE,
    CONSTRAINT user_settings_history_store CHECK (store IN ('settings', 'preferences')),
    CONSTRAINT user_settings_history_op
        CHECK (op IN ('created', 'updated', 'deleted', 'restored', 'imported')),
    CONSTRAINT user_settings_history_actor
        CHECK (actor IN ('user', 'operator', 'integration', 'import', 'system')),
    CONSTRAINT user_settings_history_secret_never_kept
        CHECK (data_type IS DISTINCT FROM 'encrypted' OR value IS NULL)
);

-- One key's history, newest first (`ORDER BY position DESC`), and the pruning of its oldest
-- versions.
CREATE INDEX IF NOT EXISTS idx_user_settings_history_cell
    ON shared.user_settings_history (user_id, store, device_id, key, position);

-- The pruning by age. BRIN: rows arrive in time order, and the index costs almost nothing per
-- insert.
CREATE INDEX IF NOT EXISTS idx_user_settings_history_changed_at
    ON shared.user_settings_history USING brin (changed_at);

CREATE TABLE IF NOT EXISTS shared.deployment_history (
    position    bigint       NOT NULL DEFAULT nextval('shared.change_position_seq'),
    store       text         NOT NULL,
    -- The default's key; '' for the preferences.
    key         varchar(255) NOT NULL DEFAULT '',
    version     bigint       NOT NULL,
    op          text         NOT NULL,
    actor       text         NOT NULL,
    -- A default's value, or the preferences' `{"overrides", "enforced"}`; NULL for a delete.
    value       jsonb,
    data_type   varchar(50),
    category    varchar(100),
    enforced    boolean,
    changed_by  uuid,
    changed_at  timestamptz  NOT NULL DEFAULT now(),

    CONSTRAINT deployment_history_pkey PRIMARY KEY (position),
    CONSTRAINT deployment_history_store CHECK (store IN ('settings', 'preferences')),
    CONSTRAINT deployment_history_op
        CHECK (op IN ('created', 'updated', 'deleted', 'restored', 'imported')),
    CONSTRAINT deployment_history_actor
        CHECK (actor IN ('user', 'operator', 'integration', 'import', 'system'))
);

CREATE INDEX IF NOT EXISTS idx_deployment_history_cell
    ON shared.deployment_history (store, key, position);
CREATE INDEX IF NOT EXISTS idx_deployment_history_changed_at
    ON shared.deployment_history USING brin (changed_at);

-- The operation and actor of the change a trigger records: the transaction's, when the
-- service named them, else the defaults.
CREATE OR REPLACE FUNCTION shared.change_op(statement_op text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN statement_op = 'DELETE' THEN 'deleted'
        ELSE coalesce(nullif(current_setting('user_settings.change_op', true), ''),
                      CASE statement_op WHEN 'INSERT' THEN 'created' ELSE 'updated' END)
    END
$$;

CREATE OR REPLACE FUNCTION shared.change_actor(default_actor text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('user_settings.change_actor', true), ''),
                    default_actor)
$$;

-- Settings rows (`shared.user_settings`, `shared.user_device_settings`).
CREATE OR REPLACE FUNCTION shared.user_settings_keep_history() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    device text := '';
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- The user's own erasure cascades here: nothing of theirs is kept.
        IF NOT EXISTS (SELECT 1 FROM shared.users WHERE id = OLD.user_id) THEN
            RETURN NULL;
        END IF;
        IF TG_TABLE_NAME = 'user_device_settings' THEN
            device := OLD.device_id;
        END IF;
        INSERT INTO shared.user_settings_history
            (user_id, store, device_id, key, version, op, actor, data_type, category)
        VALUES (OLD.user_id, 'settings', device, OLD.key,
                nextval('shared.user_settings_version_seq'), 'deleted',
                shared.change_actor('user'), OLD.data_type, OLD.category);
        RETURN NULL;
    END IF;
    -- Same version: not a change (a re-sealed secret).
    IF TG_OP = 'UPDATE' AND NEW.version = OLD.version THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'user_device_settings' THEN
        device := NEW.device_id;
    END IF;
    INSERT INTO shared.user_settings_history
        (user_id, store, device_id, key, version, op, actor, value, data_type, category,
         description)
    VALUES (NEW.user_id, 'settings', device, NEW.key, NEW.version, shared.change_op(TG_OP),
            shared.change_actor('user'),
            CASE WHEN NEW.data_type = 'encrypted' THEN NULL ELSE NEW.value END,
            NEW.data_type, NEW.category, NEW.description);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER user_settings_keep_history
    AFTER INSERT OR UPDATE OR DELETE ON shared.user_settings
    FOR EACH ROW EXECUTE FUNCTION shared.user_settings_keep_history();

CREATE OR REPLACE TRIGGER user_device_settings_keep_history
    AFTER INSERT OR UPDATE OR DELETE ON shared.user_device_settings
    FOR EACH ROW EXECUTE FUNCTION shared.user_settings_keep_history();

-- Preferences rows: the user layer (columns, NULL = inherit) and the devices' (a document of
-- overrides). The value kept is the layer's document of overrides: the fields it sets.
CREATE OR REPLACE FUNCTION shared.user_preferences_keep_history() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    device text := '';
    overrides jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT 1 FROM shared.users WHERE id = OLD.user_id) THEN
            RETURN NULL;
        END IF;
        IF TG_TABLE_NAME = 'user_device_preferences' THEN
            device := OLD.device_id;
        END IF;
        INSERT INTO shared.user_settings_history
            (user_id, store, device_id, version, op, actor)
        VALUES (OLD.user_id, 'preferences', device,
                nextval('shared.user_preferences_version_seq'), 'deleted',
                shared.change_actor('user'));
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.version = OLD.version THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'user_device_preferences' THEN
        device := NEW.device_id;
        overrides := NEW.overrides;
    ELSE
        -- The columns the layer sets, by their names (the document's members).
        SELECT coalesce(jsonb_object_agg(member.key, member.value), '{}'::jsonb)
          INTO overrides
          FROM jsonb_each(to_jsonb(NEW) - 'user_id' - 'version' - 'created_at' - 'updated_at')
               AS member
         WHERE member.value <> 'null'::jsonb;
    END IF;
    INSERT INTO shared.user_settings_history
        (user_id, store, device_id, version, op, actor, value)
    VALUES (NEW.user_id, 'preferences', device, NEW.version, shared.change_op(TG_OP),
            shared.change_actor('user'), overrides);
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER user_preferences_keep_history
    AFTER INSERT OR UPDATE OR DELETE ON shared.user_preferences
    FOR EACH ROW EXECUTE FUNCTION shared.user_preferences_keep_history();

CREATE OR REPLACE TRIGGER user_device_preferences_keep_history
    AFTER INSERT OR UPDATE OR DELETE ON shared.user_device_preferences
    FOR EACH ROW EXECUTE FUNCTION shared.user_preferences_keep_history();

-- The deployment layer.
CREATE OR REPLACE FUNCTION shared.deployment_keep_history() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF TG_TABLE_NAME = 'deployment_settings' THEN
            INSERT INTO shared.deployment_history (store, key, version, op, actor, data_type,
                                                   category)
            VALUES ('settings', OLD.key, nextval('shared.user_settings_version_seq'),
                    'deleted', shared.change_actor('operator'), OLD.data_type, OLD.category);
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.version = OLD.version THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'deployment_settings' THEN
        INSERT INTO shared.deployment_history (store, key, version, op, actor, value,
                                               data_type, category, enforced, changed_by)
        VALUES ('settings', NEW.key, NEW.version, shared.change_op(TG_OP),
                shared.change_actor('operator'), NEW.value, NEW.data_type, NEW.category,
                NEW.enforced, NEW.updated_by);
    ELSE
        INSERT INTO shared.deployment_history (store, version, op, actor, value, changed_by)
        VALUES ('preferences', NEW.version, shared.change_op(TG_OP),
                shared.change_actor('operator'),
                jsonb_build_object('overrides', NEW.overrides, 'enforced', to_jsonb(NEW.enforced)),
                NEW.updated_by);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER deployment_settings_keep_history
    AFTER INSERT OR UPDATE OR DELETE ON shared.deployment_settings
    FOR EACH ROW EXECUTE FUNCTION shared.deployment_keep_history();

CREATE OR REPLACE TRIGGER deployment_preferences_keep_history
    AFTER INSERT OR UPDATE OR DELETE ON shared.deployment_preferences
    FOR EACH ROW EXECUTE FUNCTION shared.deployment_keep_history();

-- Erasure: deleting a user's row removes everything of theirs. Settings, preferences, devices
-- and history go by their foreign keys; pending OAuth authorizations have none (an
-- authorization may start before the user's first write creates the row), so they go here.
CREATE OR REPLACE FUNCTION shared.users_erase_pending() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM shared.user_settings_oauth_states WHERE user_id = OLD.id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER users_erase_pending
    AFTER DELETE ON shared.users
    FOR EACH ROW EXECUTE FUNCTION shared.users_erase_pending();

-- The oauth states' purge by user.
CREATE INDEX IF NOT EXISTS idx_user_settings_oauth_states_user
    ON shared.user_settings_oauth_states (user_id);
