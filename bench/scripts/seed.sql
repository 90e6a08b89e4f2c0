-- Seeds the benchmark users :first..:last (psql variables `first`, `last`, `kid`), set-based.
--
-- User n has the id md5('bench-user-' || n)::uuid, so pgbench scripts and the token sampler
-- derive the same ids from n. Each user gets a preferences row and 20 settings:
-- `ui.bench.s01`..`ui.bench.s19` (JSON objects of about 70 bytes) and
-- `integrations.bench.secret` (data_type `encrypted`).
--
-- The encrypted value is a structurally valid envelope (v, alg, kid, 32-byte salt, 12-byte
-- nonce, ciphertext||tag, unpadded base64url) that was NOT sealed by the service: its AAD
-- binding would not verify, so it would not decrypt. The benchmark never decrypts it (public
-- reads redact secrets), and its kid is the configured key's, so the service's start-up check
-- accepts it. Scenario E writes real envelopes through the API.
--
-- Idempotent (ON CONFLICT DO NOTHING): seeding a range twice changes nothing.

\set ON_ERROR_STOP on

BEGIN;

-- As a superuser, skip the change-notification triggers (one NOTIFY per row) and the
-- foreign-key checks: the data is consistent by construction. Otherwise seed with them on.
DO $$
BEGIN
    SET LOCAL session_replication_role = replica;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'not a superuser: seeding with triggers and foreign-key checks (slower)';
END
$$;
SET LOCAL work_mem = '256MB';

-- Ordered by id, so that every index is filled left to right.
CREATE TEMP TABLE bench_ids ON COMMIT DROP AS
    SELECT n, md5('bench-user-' || n)::uuid AS id
    FROM generate_series(:first::int, :last::int) AS n
    ORDER BY 2;

INSERT INTO shared.users (id)
    SELECT id FROM bench_ids ORDER BY id
    ON CONFLICT DO NOTHING;

INSERT INTO shared.user_preferences (
    user_id, email_notifications, profile_visibility, show_email, theme, display_language,
    content_language, auto_play_videos)
SELECT
    id,
    jsonb_build_object('enabled', n % 4 <> 0,
                       'frequency', (ARRAY['instant', 'daily', 'weekly'])[1 + n % 3],
                       'types', jsonb_build_object('security', true, 'digest', n % 2 = 0)),
    (ARRAY['public', 'friends', 'private'])[1 + n % 3],
    n % 7 = 0,
    (ARRAY['light', 'dark', 'system'])[1 + n % 3],
    (ARRAY['en-US', 'de-DE', 'fr-FR', 'ja-JP'])[1 + n % 4],
    CASE WHEN n % 5 = 0 THEN 'en,de' END,
    n % 3 <> 0
FROM bench_ids ORDER BY id
ON CONFLICT DO NOTHING;

INSERT INTO shared.user_settings (user_id, key, value, description, category, data_type)
SELECT
    u.id,
    'ui.bench.s' || lpad(k::text, 2, '0'),
    jsonb_build_object('enabled', (u.n + k) % 2 = 0,
                       'level', (u.n * k) % 100,
                       'label', 'setting ' || k || ' of user ' || u.n),
    CASE WHEN k % 4 = 0 THEN 'Benchmark setting ' || k END,
    'ui',
    'json'
FROM bench_ids AS u CROSS JOIN generate_series(1, 19) AS k
ORDER BY u.id, k
ON CONFLICT DO NOTHING;

INSERT INTO shared.user_settings (user_id, key, value, category, data_type)
SELECT
    id,
    'integrations.bench.secret',
    jsonb_build_object(
        'v', 1,
        'alg', 'A256GCM-HKDF-SHA256',
        'kid', :'kid',
        'salt', rtrim(translate(encode(decode(md5('salt' || n) || md5('salt2' || n), 'hex'),
                                       'base64'), '+/', '-_'), '='),
        'nonce', rtrim(translate(encode(substr(decode(md5('nonce' || n), 'hex'), 1, 12),
                                        'base64'), '+/', '-_'), '='),
        'ciphertext', rtrim(translate(encode(decode(md5('ct' || n) || md5('ct2' || n)
                                                    || md5('tag' || n), 'hex'),
                                             'base64'), '+/', '-_'), '=')),
    'integrations',
    'encrypted'
FROM bench_ids ORDER BY id
ON CONFLICT DO NOTHING;

COMMIT;
