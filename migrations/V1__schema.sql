-- V1: tables of the user-settings service (docs/design.md, "Data model"), in schema `shared`.
--
-- CHECK constraints mirror the domain's rules so that no bad row can exist, even when written
-- by another program. They are named so the adapter can report which one a row violated; the
-- domain validates first, so hitting one from the service is a bug.
--
-- Statements are idempotent where that is cheap (IF NOT EXISTS), although refinery already
-- records applied migrations and never runs one twice.

CREATE SCHEMA IF NOT EXISTS shared;

-- Owned by the user service in the wider platform: created here only when it does not exist,
-- so the service also runs stand-alone (and with `users.provisioning = auto` it inserts rows).
CREATE TABLE IF NOT EXISTS shared.users (
    id         uuid        PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The flexible key/value store. fillfactor 90 leaves free space on each page so an update
-- can put the new row version on the same page. (Updates are not HOT: they change updated_at,
-- which an index covers; the same-page placement still keeps the heap compact.)
CREATE TABLE IF NOT EXISTS shared.user_settings (
    user_id     uuid         NOT NULL,
    key         varchar(255) NOT NULL,
    value       jsonb        NOT NULL,
    description text,
    category    varchar(100),
    data_type   varchar(50)  NOT NULL,
    version     bigint       NOT NULL DEFAULT 1,
    created_at  timestamptz  NOT NULL DEFAULT now(),
    updated_at  timestamptz  NOT NULL DEFAULT now(),

    CONSTRAINT user_settings_pkey PRIMARY KEY (user_id, key),
    CONSTRAINT user_settings_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES shared.users (id) ON DELETE CASCADE,

    -- Key: `^[a-z0-9._-]+$`, 1..=255 bytes, no empty dot-segment (domain `SettingKey`).
    CONSTRAINT user_settings_key_format CHECK (key ~ '^[a-z0-9._-]+$'),
    CONSTRAINT user_settings_key_length CHECK (octet_length(key) BETWEEN 1 AND 255),
    CONSTRAINT user_settings_key_segments CHECK (key !~ '(^\.|\.\.|\.$)'),

    CONSTRAINT user_settings_data_type
        CHECK (data_type IN ('string', 'number', 'boolean', 'json', 'encrypted')),

    -- Only the shape of a category is checked: the list of allowed categories is configurable
    -- in the application (`AllowedCategories`), and a list that shrinks must not make stored
    -- rows invalid.
    CONSTRAINT user_settings_category_format
        CHECK (category IS NULL OR category ~ '^[a-z0-9_-]{1,100}$'),

    CONSTRAINT user_settings_description_length
        CHECK (description IS NULL OR char_length(description) <= 1024),

    -- The value matches its data_type (domain `DataType::accepts`); JSON null is never a value.
    CONSTRAINT user_settings_value_matches_type CHECK (
        jsonb_typeof(value) <> 'null'
        AND CASE data_type
            WHEN 'string'  THEN jsonb_typeof(value) = 'string'
            WHEN 'number'  THEN jsonb_typeof(value) = 'number'
            WHEN 'boolean' THEN jsonb_typeof(value) = 'boolean'
            ELSE true
        END
    ),

    -- A secret is stored only as the sealed envelope (docs/design.md, "Secrets"), never as plaintext.
    CONSTRAINT user_settings_encrypted_envelope CHECK (
        data_type <> 'encrypted'
        OR (jsonb_typeof(value) = 'object'
            AND value ?& ARRAY['v', 'alg', 'kid', 'salt', 'nonce', 'ciphertext'])
    ),

    CONSTRAINT user_settings_version_positive CHECK (version >= 1)
) WITH (fillfactor = 90);

-- No separate index on (user_id) is created: the primary key
-- (user_id, key) already serves every lookup by user_id (a leading-column prefix), and a
-- second index would only cost writes and space.

-- List-by-category (`WHERE user_id = $1 AND category = $2 ORDER BY key`). A user has at most
-- ~1000 settings, so sorting the matches is cheap; adding `key` to the index would not change
-- the plan (measured: the planner keeps a bitmap scan plus an in-memory sort).
CREATE INDEX IF NOT EXISTS idx_user_settings_category
    ON shared.user_settings (user_id, category);

CREATE INDEX IF NOT EXISTS idx_user_settings_updated_at
    ON shared.user_settings (updated_at DESC);

-- Key rotation (`keys status`, `keys rewrap`) looks for secrets by the id of the key that
-- sealed them; only encrypted rows are indexed.
CREATE INDEX IF NOT EXISTS idx_user_settings_encrypted_kid
    ON shared.user_settings ((value ->> 'kid'))
    WHERE data_type = 'encrypted';

-- One structured row per user, with typed columns and their defaults. Columns that have a
-- default are NOT NULL here: the application always writes full rows, and a NULL
-- would have no meaning distinct from the default.
CREATE TABLE IF NOT EXISTS shared.user_preferences (
    user_id              uuid         NOT NULL,

    email_notifications  jsonb        NOT NULL
        DEFAULT '{"enabled": true, "frequency": "instant"}'::jsonb,
    push_notifications   jsonb        NOT NULL DEFAULT '{"enabled": false}'::jsonb,
    digest_notifications jsonb        NOT NULL
        DEFAULT '{"enabled": true, "frequency": "weekly"}'::jsonb,

    profile_visibility   varchar(20)  NOT NULL DEFAULT 'private',
    show_email           boolean      NOT NULL DEFAULT false,
    show_activity        boolean      NOT NULL DEFAULT true,

    theme                varchar(20)  NOT NULL DEFAULT 'system',
    display_language     varchar(10)  NOT NULL DEFAULT 'en-US',
    content_language     varchar(255),

    show_adult_content   boolean      NOT NULL DEFAULT false,
    show_spoilers        boolean      NOT NULL DEFAULT false,
    auto_play_videos     boolean      NOT NULL DEFAULT true,

    version              bigint       NOT NULL DEFAULT 1,
    created_at           timestamptz  NOT NULL DEFAULT now(),
    updated_at           timestamptz  NOT NULL DEFAULT now(),

    CONSTRAINT user_preferences_pkey PRIMARY KEY (user_id),
    CONSTRAINT user_preferences_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES shared.users (id) ON DELETE CASCADE,

    CONSTRAINT user_preferences_profile_visibility
        CHECK (profile_visibility IN ('public', 'friends', 'private')),
    CONSTRAINT user_preferences_theme CHECK (theme IN ('light', 'dark', 'system')),

    -- BCP 47 shape as the domain checks it (`LanguageTag`): a 2-3 or 5-8 letter language
    -- subtag, then 1-8 character alphanumeric subtags. The lengths repeat the column types so
    -- the rule reads in one place.
    CONSTRAINT user_preferences_display_language CHECK (
        char_length(display_language) <= 10
        AND display_language ~ '^([A-Za-z]{2,3}|[A-Za-z]{5,8})(-[A-Za-z0-9]{1,8})*$'
    ),
    -- A comma-separated list of such tags, normalised without blanks (`ContentLanguages`).
    CONSTRAINT user_preferences_content_language CHECK (
        content_language IS NULL
        OR (char_length(content_language) <= 255
            AND content_language ~
                '^([A-Za-z]{2,3}|[A-Za-z]{5,8})(-[A-Za-z0-9]{1,8})*(,([A-Za-z]{2,3}|[A-Za-z]{5,8})(-[A-Za-z0-9]{1,8})*)*$')
    ),

    -- Notification channels are objects (`{enabled, frequency, types}`); their members are
    -- validated by the domain.
    CONSTRAINT user_preferences_notifications_are_objects CHECK (
        jsonb_typeof(email_notifications) = 'object'
        AND jsonb_typeof(push_notifications) = 'object'
        AND jsonb_typeof(digest_notifications) = 'object'
    ),

    CONSTRAINT user_preferences_version_positive CHECK (version >= 1)
) WITH (fillfactor = 90);

CREATE INDEX IF NOT EXISTS idx_user_preferences_updated_at
    ON shared.user_preferences (updated_at DESC);

-- Append-only audit log of privileged reads (admin reads, plaintext secret and token reads).
-- subject_user_id has no foreign key on purpose: the record of who read a user's data must
-- outlive that user's row.
CREATE TABLE IF NOT EXISTS shared.user_settings_audit (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    actor_id        uuid        NOT NULL,
    actor_role      text        NOT NULL,
    subject_user_id uuid        NOT NULL,
    action          text        NOT NULL,
    key             text,
    request_id      text,

    CONSTRAINT user_settings_audit_actor_role
        CHECK (actor_role IN ('user', 'admin', 'service')),
    CONSTRAINT user_settings_audit_action
        CHECK (action IN ('admin_read', 'secret_read', 'token_read')),
    CONSTRAINT user_settings_audit_key_length
        CHECK (key IS NULL OR octet_length(key) BETWEEN 1 AND 255),
    CONSTRAINT user_settings_audit_request_id_length
        CHECK (request_id IS NULL OR char_length(request_id) <= 200)
);

-- "Who read this user's data, and when": per subject, in time order.
CREATE INDEX IF NOT EXISTS idx_user_settings_audit_subject_at
    ON shared.user_settings_audit (subject_user_id, at);

-- Append-only: rows cannot be changed or deleted through ordinary DML. Retention is an
-- operator's job (TRUNCATE, or disabling this trigger deliberately).
CREATE OR REPLACE FUNCTION shared.user_settings_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'shared.user_settings_audit is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE OR REPLACE TRIGGER user_settings_audit_append_only
    BEFORE UPDATE OR DELETE ON shared.user_settings_audit
    FOR EACH ROW EXECUTE FUNCTION shared.user_settings_audit_append_only();
