-- V3: pending OAuth authorizations of the integrations.
--
-- `GET /api/v1/integrations/{provider}/authorize` stores one row; `POST .../connect` consumes
-- it with `DELETE ... RETURNING`, so a `state` is single-use even under concurrent requests.
-- A row is bound to its user and provider (the DELETE matches all three) and expires (the
-- application refuses it after `expires_at`; expired rows are purged on every insert).
--
-- `pkce_verifier` is the PKCE code verifier sealed like a secret setting (the envelope of
-- docs/design.md, "Secrets", bound to the user), never plaintext. `state` is a random 128+-bit token.
-- There is no foreign key to shared.users: a user who never finishes an authorization has
-- no row in shared.users yet (rows are provisioned on first write).

CREATE TABLE IF NOT EXISTS shared.user_settings_oauth_states (
    state         text        NOT NULL,
    user_id       uuid        NOT NULL,
    provider      text        NOT NULL,
    redirect_uri  text        NOT NULL,
    pkce_verifier jsonb,
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT user_settings_oauth_states_pkey PRIMARY KEY (state),
    CONSTRAINT user_settings_oauth_states_state_length
        CHECK (char_length(state) BETWEEN 16 AND 512),
    CONSTRAINT user_settings_oauth_states_provider_format
        CHECK (provider ~ '^[a-z0-9_-]{1,32}$'),
    CONSTRAINT user_settings_oauth_states_redirect_uri_length
        CHECK (char_length(redirect_uri) BETWEEN 1 AND 2048),
    CONSTRAINT user_settings_oauth_states_pkce_envelope CHECK (
        pkce_verifier IS NULL
        OR (jsonb_typeof(pkce_verifier) = 'object'
            AND pkce_verifier ?& ARRAY['v', 'alg', 'kid', 'salt', 'nonce', 'ciphertext'])
    )
);

-- The purge of expired rows.
CREATE INDEX IF NOT EXISTS idx_user_settings_oauth_states_expires_at
    ON shared.user_settings_oauth_states (expires_at);
