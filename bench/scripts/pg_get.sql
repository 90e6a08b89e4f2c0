-- P1 (pgbench -M prepared): the service's single-setting read (`GET` in
-- crates/adapter-postgres/src/settings_repo.rs), for the users the HTTP scenarios' tokens
-- belong to (`-D users=N -D tokens=T`: user 1 + i*N/T) and a random one of the 19 plain keys.
-- The only difference from the service: the uuid is computed from n with md5() in the
-- statement, where the service binds it as a parameter.
\set i random(0, :tokens - 1)
\set n 1 + (:i * :users) / :tokens
\set k random(1, 19)
SELECT key, value, description, category, data_type, version, created_at, updated_at FROM shared.user_settings WHERE user_id = md5('bench-user-' || :n)::uuid AND key = 'ui.bench.s' || lpad(:k::text, 2, '0');
