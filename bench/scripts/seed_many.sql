-- Seeds one user with :count settings (psql variable `count`, at most 1000: the per-user
-- limit), for the scale check's "list of 10, 100, 1000 settings". The user's id is
-- md5('bench-many-' || :count)::uuid. Idempotent.

\set ON_ERROR_STOP on

BEGIN;

INSERT INTO shared.users (id)
    VALUES (md5('bench-many-' || :count)::uuid)
    ON CONFLICT DO NOTHING;

INSERT INTO shared.user_settings (user_id, key, value, description, category, data_type)
SELECT
    md5('bench-many-' || :count)::uuid,
    'ui.bench.m' || lpad(k::text, 4, '0'),
    jsonb_build_object('enabled', k % 2 = 0, 'level', k % 100, 'label', 'setting ' || k),
    CASE WHEN k % 4 = 0 THEN 'Benchmark setting ' || k END,
    'ui',
    'json'
FROM generate_series(1, :count::int) AS k
ON CONFLICT DO NOTHING;

COMMIT;
