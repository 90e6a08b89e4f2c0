-- P3 (pgbench -M prepared): the least work PostgreSQL can do for scenario D's write: the
-- service's upsert statement alone, in autocommit (no transaction block, no user lock, no
-- quota figures), with the same triggers (history, change notifications) firing. The floor
-- for D: the service's write can only cost PostgreSQL more than this.
\set i random(0, :tokens - 1)
\set n 1 + (:i * :users) / :tokens
\set k random(1, 19)
\set v random(1, 1000000000)
WITH drawn AS (SELECT nextval('shared.user_settings_version_seq') AS version) INSERT INTO shared.user_settings AS s (user_id, key, value, description, category, data_type, version) VALUES (md5('bench-user-' || :n)::uuid, 'ui.bench.s' || lpad(:k::text, 2, '0'), jsonb_build_object('enabled', true, 'level', :v::bigint, 'label', 'written by pgbench'), NULL, 'ui', 'json', (SELECT version FROM drawn)) ON CONFLICT (user_id, key) DO UPDATE SET value = EXCLUDED.value, description = EXCLUDED.description, category = EXCLUDED.category, data_type = EXCLUDED.data_type, version = nextval('shared.user_settings_version_seq'), updated_at = now() WHERE (s.value, s.description, s.category, s.data_type) IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.description, EXCLUDED.category, EXCLUDED.data_type) RETURNING key, value, description, category, data_type, version, created_at, updated_at, s.version = (SELECT version FROM drawn) AS created;
