-- V5: the audit log keeps the client's request id apart from the server's.
--
-- `request_id` was the id the client sent in `X-Request-Id` when it was well-formed, so a
-- client could give its audited reads any id, including another request's. From now on
-- `request_id` is always the id the server generated for the request; a client's own id is
-- kept in `client_request_id`, for correlation only.

ALTER TABLE shared.user_settings_audit
    ADD COLUMN IF NOT EXISTS client_request_id text;

ALTER TABLE shared.user_settings_audit
    DROP CONSTRAINT IF EXISTS user_settings_audit_client_request_id_length;
ALTER TABLE shared.user_settings_audit
    ADD CONSTRAINT user_settings_audit_client_request_id_length
        CHECK (client_request_id IS NULL OR char_length(client_request_id) <= 200);
