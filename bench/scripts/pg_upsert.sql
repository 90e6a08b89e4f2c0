-- P2 (pgbench -M prepared): the transaction of the service's unconditional `PUT` of a
-- setting (`upsert_row` with `Precondition::Any`, crates/adapter-postgres/src/
-- settings_repo.rs and provisioning.rs): lock the user's row, read the quota's figures, upsert,
-- read them again, commit. The value changes every time, as in scenario D, so every upsert
-- writes a new row version. (The service sends the lock and the first figures in one round
-- trip, and the upsert and the second figures in another; pgbench sends each alone.)
\set i random(0, :tokens - 1)
\set n 1 + (:i * :users) / :tokens
\set k random(1, 19)
\set v random(1, 1000000000)
BEGIN;
SELECT 1 FROM shared.users WHERE id = md5('bench-user-' || :n)::uuid FOR NO KEY UPDATE;
SELECT count(*) FILTER (WHERE setting), coalesce(sum(value_bytes), 0)::bigint, count(DISTINCT device_id) FROM (SELECT NULL::text AS device_id, value_bytes, true AS setting FROM shared.user_settings WHERE user_id = md5('bench-user-' || :n)::uuid UNION ALL SELECT device_id, value_bytes, true FROM shared.user_device_settings WHERE user_id = md5('bench-user-' || :n)::uuid UNION ALL SELECT device_id, 0, false FROM shared.user_device_preferences WHERE user_id = md5('bench-user-' || :n)::uuid) AS held;
WITH drawn AS (SELECT nextval('shared.user_settings_version_seq') AS version) INSERT INTO shared.user_settings AS s (user_id, key, value, description, category, data_type, version) VALUES (md5('bench-user-' || :n)::uuid, 'ui.bench.s' || lpad(:k::text, 2, '0'), jsonb_build_object('enabled', true, 'level', :v::bigint, 'label', 'written by pgbench'), NULL, 'ui', 'json', (SELECT version FROM drawn)) ON CONFLICT (user_id, key) DO UPDATE SET value = EXCLUDED.value, description = EXCLUDED.description, category = EXCLUDED.category, data_type = EXCLUDED.data_type, version = nextval('shared.user_settings_version_seq'), updated_at = now() WHERE (s.value, s.description, s.category, s.data_type) IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.description, EXCLUDED.category, EXCLUDED.data_type) RETURNING key, value, description, category, data_type, version, created_at, updated_at, s.version = (SELECT version FROM drawn) AS created;
SELECT count(*) FILTER (WHERE setting), coalesce(sum(value_bytes), 0)::bigint, count(DISTINCT device_id) FROM (SELECT NULL::text AS device_id, value_bytes, true AS setting FROM shared.user_settings WHERE user_id = md5('bench-user-' || :n)::uuid UNION ALL SELECT device_id, value_bytes, true FROM shared.user_device_settings WHERE user_id = md5('bench-user-' || :n)::uuid UNION ALL SELECT device_id, 0, false FROM shared.user_device_preferences WHERE user_id = md5('bench-user-' || :n)::uuid) AS held;
COMMIT;
