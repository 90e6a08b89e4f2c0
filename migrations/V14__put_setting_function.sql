-- V14: the common write of a setting in one round trip.
--
-- A write of the user's own setting without a precondition (the `PUT` most clients send)
-- used to be four round trips: BEGIN; the user's lock with the quota's figures; the upsert
-- with the figures after it; COMMIT. `put_user_setting` does the same work in the database,
-- in the one statement's own transaction: the lock, the figures, the upsert (versions still
-- from the sequence, unchanged writes still keeping theirs, the history and change
-- notification triggers still firing) and the quota check, which raises SQLSTATE UQ001
-- (message: the figure over its quota) so that the whole write rolls back. Conditional
-- writes, devices' overrides, writes made for an integration or an import, and a user
-- without a row yet keep the transaction the service drives itself.

-- What the user holds, their devices' overrides included: settings, bytes of values and
-- devices that hold overrides (a device counts once, whether it overrides settings,
-- preferences or both). One definition for the function below and the service's own
-- transactions; a single-SELECT SQL function, so the planner inlines it.
CREATE FUNCTION shared.user_usage(p_user uuid)
RETURNS TABLE (settings bigint, bytes bigint, devices bigint)
LANGUAGE sql STABLE AS $$
    SELECT count(*) FILTER (WHERE setting),
           coalesce(sum(value_bytes), 0)::bigint,
           count(DISTINCT device_id)
    FROM (SELECT NULL::text AS device_id, value_bytes, true AS setting
          FROM shared.user_settings WHERE user_id = p_user
          UNION ALL
          SELECT device_id, value_bytes, true
          FROM shared.user_device_settings WHERE user_id = p_user
          UNION ALL
          SELECT device_id, 0, false
          FROM shared.user_device_preferences WHERE user_id = p_user) AS held
$$;

-- One row always: `user_found` false (and nothing written) when the user has no row; a
-- null `key` when the write changed nothing and the row was deleted meanwhile (by a delete,
-- which does not take the user's lock); otherwise the row as stored and whether the write
-- created it.
CREATE FUNCTION shared.put_user_setting(
    p_user uuid, p_key text, p_value jsonb, p_description text, p_category text,
    p_data_type text, p_max_settings bigint, p_max_bytes bigint, p_max_devices bigint)
RETURNS TABLE (user_found boolean, key text, value jsonb, description text, category text,
               data_type text, version bigint, created_at timestamptz, updated_at timestamptz,
               created boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    held_before record;
    held_after record;
    drawn bigint;
    written record;
BEGIN
    -- Serialises the writes of one user that may insert, so the figures are exact.
    PERFORM 1 FROM shared.users WHERE id = p_user FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, NULL::text, NULL::jsonb, NULL::text, NULL::text, NULL::text,
                            NULL::bigint, NULL::timestamptz, NULL::timestamptz, NULL::boolean;
        RETURN;
    END IF;
    SELECT * INTO held_before FROM shared.user_usage(p_user);

    -- An insert takes the version drawn up front; an update draws a later one after the row
    -- lock, so a row's versions grow. Nothing is written when nothing differs.
    drawn := nextval('shared.user_settings_version_seq');
    INSERT INTO shared.user_settings AS s
        (user_id, key, value, description, category, data_type, version)
    VALUES (p_user, p_key, p_value, p_description, p_category, p_data_type, drawn)
    ON CONFLICT (user_id, key) DO UPDATE SET
        value = EXCLUDED.value, description = EXCLUDED.description,
        category = EXCLUDED.category, data_type = EXCLUDED.data_type,
        version = nextval('shared.user_settings_version_seq'), updated_at = now()
    WHERE (s.value, s.description, s.category, s.data_type) IS DISTINCT FROM
          (EXCLUDED.value, EXCLUDED.description, EXCLUDED.category, EXCLUDED.data_type)
    RETURNING s.key::text AS key, s.value, s.description, s.category::text AS category,
              s.data_type::text AS data_type, s.version, s.created_at, s.updated_at,
              s.version = drawn AS created
    INTO written;

    IF NOT FOUND THEN
        -- Unchanged: report the row as it is (none if deleted meanwhile).
        RETURN QUERY
            SELECT true, s.key::text, s.value, s.description, s.category::text,
                   s.data_type::text, s.version, s.created_at, s.updated_at, false
            FROM shared.user_settings s WHERE s.user_id = p_user AND s.key = p_key;
        IF NOT FOUND THEN
            RETURN QUERY SELECT true, NULL::text, NULL::jsonb, NULL::text, NULL::text,
                                NULL::text, NULL::bigint, NULL::timestamptz,
                                NULL::timestamptz, NULL::boolean;
        END IF;
        RETURN;
    END IF;

    -- A figure the write raised above its quota fails the write; one already over a lowered
    -- quota that the write did not raise is let be.
    SELECT * INTO held_after FROM shared.user_usage(p_user);
    IF held_after.settings > p_max_settings AND held_after.settings > held_before.settings THEN
        RAISE EXCEPTION USING ERRCODE = 'UQ001', MESSAGE = 'settings';
    END IF;
    IF held_after.bytes > p_max_bytes AND held_after.bytes > held_before.bytes THEN
        RAISE EXCEPTION USING ERRCODE = 'UQ001', MESSAGE = 'bytes';
    END IF;
    IF held_after.devices > p_max_devices AND held_after.devices > held_before.devices THEN
        RAISE EXCEPTION USING ERRCODE = 'UQ001', MESSAGE = 'devices';
    END IF;

    RETURN QUERY SELECT true, written.key, written.value, written.description,
                        written.category, written.data_type, written.version,
                        written.created_at, written.updated_at, written.created;
END
$$;
