-- V6: the size of every stored value, for the per-user byte quota.
--
-- A setting's size is `octet_length(value::text)`: the bytes of the value as PostgreSQL
-- renders its `jsonb` (envelopes included for secrets). The database computes it on every
-- insert and update, whoever writes, so it is exact by construction; the quota check sums it
-- over the user's rows (at most the settings quota) under the user's row lock, reading this
-- narrow column instead of detoasting and rendering every value (measured: ~0.3 ms instead of
-- ~35 ms for 1000 rows holding 5 MB).
--
-- Adding a stored generated column rewrites the table under an ACCESS EXCLUSIVE lock: on a
-- large table, apply this migration in a quiet period.

ALTER TABLE shared.user_settings
    ADD COLUMN value_bytes integer GENERATED ALWAYS AS (octet_length(value::text)) STORED;
