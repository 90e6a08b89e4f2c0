-- P2 (pgbench -M prepared): the transaction of the service's unconditional `PUT` of a
-- setting (`upsert_inner` with `Precondition::Any`, crates/adapter-postgres/src/
-- settings_repo.rs and provisioning.rs): lock the user's row, upsert, commit. The value
-- changes every time, as in scenario D, so every upsert writes a new row version.
\set i random(0, :tokens - 1)
\set n 1 + (:i * :users) / :tokens
\set k random(1, 19)
\set v random(1, 1000000000)
BEGIN;
SELECT 1 FROM shared.users WHERE id = md5('bench-user-' || :n)::uuid FOR NO KEY UPDATE;
WITH drawn AS (SELECT nextval('shared.user_settings_version_seq') AS version) INSERT INTO shared.user_settings AS s (user_id, key, value, description, category, data_type, version) VALUES (md5('bench-user-' || :n)::uuid, 'ui.bench.s' || lpad(:k::text, 2, '0'), jsonb_build_object('enabled', true, 'level', :v::bigint, 'label', 'written by pgbench'), NULL, 'ui', 'json', (SELECT version FROM drawn)) ON CONFLICT (user_id, key) DO UPDATE SET value = EXCLUDED.value, description = EXCLUDED.description, category = EXCLUDED.category, data_type = EXCLUDED.data_type, version = nextval('shared.user_settings_version_seq'), updated_at = now() WHERE (s.value, s.description, s.category, s.data_type) IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.description, EXCLUDED.category, EXCLUDED.data_type) RETURNING key, value, description, category, data_type, version, created_at, updated_at, s.version = (SELECT version FROM drawn) AS created;
COMMIT;
