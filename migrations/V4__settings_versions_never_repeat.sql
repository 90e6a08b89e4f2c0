-- V4: a version never repeats for the same setting or preferences row.
--
-- Until V3 a row started at version 1 and each change added 1, so a setting deleted and
-- created again went back to version 1, 2, ... and its ETags repeated: a stale `If-Match: "1"`
-- from before the delete overwrote the new row, `If-None-Match: "1"` could answer 304 for
-- different content, and version-checked writes (token refresh, key rotation) could replace
-- a re-created row. Versions now come from sequences: every insert and every update takes a
-- fresh value, so a version is never given to two states of the same row (nor to two rows).
-- Versions are opaque (only compared for equality), not counters of changes.
--
-- The repositories write `version = nextval(...)` on update; inserts use the column default.
-- Preferences keep version 0 for "no row" (defaults): sequence values are always >= 1.
--
-- Existing rows keep their versions. Each sequence starts above the largest stored version,
-- read after `ALTER TABLE` took its ACCESS EXCLUSIVE lock, so no write can slip in between.
-- A role other than the sequences' owner that writes these tables needs USAGE on them.

CREATE SEQUENCE IF NOT EXISTS shared.user_settings_version_seq
    AS bigint MINVALUE 1 OWNED BY shared.user_settings.version;

ALTER TABLE shared.user_settings
    ALTER COLUMN version SET DEFAULT nextval('shared.user_settings_version_seq');

SELECT setval('shared.user_settings_version_seq',
              GREATEST((SELECT max(version) FROM shared.user_settings), 1));

CREATE SEQUENCE IF NOT EXISTS shared.user_preferences_version_seq
    AS bigint MINVALUE 1 OWNED BY shared.user_preferences.version;

ALTER TABLE shared.user_preferences
    ALTER COLUMN version SET DEFAULT nextval('shared.user_preferences_version_seq');

SELECT setval('shared.user_preferences_version_seq',
              GREATEST((SELECT max(version) FROM shared.user_preferences), 1));
