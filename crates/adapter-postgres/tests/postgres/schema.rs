//! The schema itself: migrations, constraints, cascades, JSONB fidelity and indexes.

use adapter_postgres::{migrate, migrate_pool, testing::TestDatabase};
use domain::{
    ports::{PreferencesRepository, SettingsRepository},
    preferences::PreferenceOverrides,
    settings::Precondition,
};
use serde_json::{Value, json};

use crate::support::{
    PutPreferences, PutSetting, first_page, insert_user, key, new_user, preferences_repo, quota,
    settings_repo, write,
};

#[tokio::test]
async fn migrating_again_applies_nothing() {
    let db = TestDatabase::create().await;

    let from_pool = migrate_pool(db.pool()).await.unwrap();
    let mut client = adapter_postgres::connect(&db.config()).await.unwrap();
    let dedicated = migrate(&mut client).await.unwrap();

    assert!(from_pool.applied.is_empty(), "{from_pool:?}");
    assert!(dedicated.applied.is_empty(), "{dedicated:?}");
}

#[tokio::test]
async fn migrating_through_the_pool_restores_the_session_statement_timeout() {
    let db = TestDatabase::create().await;
    let config = adapter_postgres::PgConfig {
        max_size: 1,
        ..db.config()
    };
    let pool = adapter_postgres::build_pool(&config).unwrap();

    migrate_pool(&pool).await.unwrap();

    let client = pool.get().await.unwrap();
    let timeout: String = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(timeout, "5s");
}

#[tokio::test]
async fn migrations_are_recorded_in_the_service_history_table() {
    let db = TestDatabase::create().await;
    let client = db.pool().get().await.unwrap();

    let names: Vec<String> = client
        .query(
            "SELECT name FROM shared.user_settings_schema_history ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();

    assert_eq!(
        names,
        [
            "schema",
            "change_notifications",
            "oauth_states",
            "settings_versions_never_repeat",
            "audit_client_request_id",
            "settings_value_bytes",
            "deployment_defaults",
            "device_settings",
            "layered_preferences",
            "device_preferences",
            "history",
            "change_events",
            "audit_trail",
            "put_setting_function",
        ]
    );
}

/// The checksum refinery recorded for V1 before its comments were reworded.
const V1_CHECKSUM_BEFORE_REWORDING: &str = "2005073427763388531";

async fn v1_checksum(client: &tokio_postgres::Client) -> String {
    client
        .query_one(
            "SELECT checksum FROM shared.user_settings_schema_history WHERE version = 1",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_database_migrated_before_comments_were_reworded_still_migrates() {
    let db = TestDatabase::create().await;
    let mut client = db.pool().get().await.unwrap();
    let current = v1_checksum(&client).await;
    client
        .execute(
            "UPDATE shared.user_settings_schema_history SET checksum = $1 WHERE version = 1",
            &[&V1_CHECKSUM_BEFORE_REWORDING],
        )
        .await
        .unwrap();

    let report = migrate(&mut client).await.unwrap();

    assert!(report.applied.is_empty(), "{report}");
    assert_eq!(v1_checksum(&client).await, current);
}

#[tokio::test]
async fn a_migration_whose_text_really_diverges_is_refused() {
    let db = TestDatabase::create().await;
    let mut client = db.pool().get().await.unwrap();
    client
        .execute(
            "UPDATE shared.user_settings_schema_history SET checksum = '12345' WHERE version = 1",
            &[],
        )
        .await
        .unwrap();

    let refused = migrate(&mut client).await;

    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(v1_checksum(&client).await, "12345");
}

#[tokio::test]
async fn deleting_a_user_cascades_to_settings_and_preferences() {
    let db = TestDatabase::create().await;
    let (settings, preferences) = (settings_repo(&db), preferences_repo(&db));
    let (gone, kept) = (new_user(), new_user());
    for user in [gone, kept] {
        settings.put(user, "ui.theme", json!("dark")).await;
        preferences.put(user, &PreferenceOverrides::default()).await;
    }

    let client = db.pool().get().await.unwrap();
    client
        .execute("DELETE FROM shared.users WHERE id = $1", &[&gone.as_uuid()])
        .await
        .unwrap();

    assert!(
        settings
            .list(gone, None, first_page())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(preferences.get(gone).await.unwrap(), None);
    assert_eq!(
        settings.list(kept, None, first_page()).await.unwrap().len(),
        1
    );
    assert!(preferences.get(kept).await.unwrap().is_some());
}

/// Inserts a settings row column by column, bypassing the repository.
async fn insert_setting_row(
    client: &tokio_postgres::Client,
    user: uuid::Uuid,
    key: &str,
    value: Value,
    category: Option<&str>,
    data_type: &str,
    description: Option<String>,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO shared.user_settings \
             (user_id, key, value, category, data_type, description) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&user, &key, &value, &category, &data_type, &description],
        )
        .await
}

/// Constraint expected to fail, then key, value, category, data_type and description.
type SettingsCase = (
    &'static str,
    &'static str,
    Value,
    Option<&'static str>,
    &'static str,
    Option<String>,
);

fn violated_constraint(error: &tokio_postgres::Error) -> Option<&str> {
    error.as_db_error().and_then(|db| db.constraint())
}

#[tokio::test]
async fn settings_checks_reject_rows_the_domain_would_refuse() {
    let db = TestDatabase::create().await;
    let user = new_user();
    insert_user(&db, user).await;
    let client = adapter_postgres::connect(&db.config()).await.unwrap();
    let id = user.as_uuid();
    let long_key = "k".repeat(256);
    let cases: Vec<SettingsCase> = vec![
        (
            "user_settings_key_format",
            "UI.Theme",
            json!(1),
            None,
            "number",
            None,
        ),
        (
            "user_settings_key_format",
            "ui theme",
            json!(1),
            None,
            "number",
            None,
        ),
        // Empty fails the format first (CHECKs run in name order); user_settings_key_length
        // is a second line of defence, since varchar(255) already caps an ASCII key.
        (
            "user_settings_key_format",
            "",
            json!(1),
            None,
            "number",
            None,
        ),
        (
            "user_settings_key_segments",
            ".ui",
            json!(1),
            None,
            "number",
            None,
        ),
        (
            "user_settings_key_segments",
            "ui..theme",
            json!(1),
            None,
            "number",
            None,
        ),
        (
            "user_settings_key_segments",
            "ui.",
            json!(1),
            None,
            "number",
            None,
        ),
        (
            "user_settings_data_type",
            "ui.a",
            json!(1),
            None,
            "integer",
            None,
        ),
        (
            "user_settings_category_format",
            "ui.b",
            json!(1),
            Some("UI"),
            "number",
            None,
        ),
        (
            "user_settings_category_format",
            "ui.c",
            json!(1),
            Some(""),
            "number",
            None,
        ),
        (
            "user_settings_description_length",
            "ui.d",
            json!(1),
            None,
            "number",
            Some("é".repeat(1025)),
        ),
        (
            "user_settings_value_matches_type",
            "ui.e",
            json!(1),
            None,
            "string",
            None,
        ),
        (
            "user_settings_value_matches_type",
            "ui.f",
            json!("1"),
            None,
            "number",
            None,
        ),
        (
            "user_settings_value_matches_type",
            "ui.g",
            json!(1),
            None,
            "boolean",
            None,
        ),
        (
            "user_settings_value_matches_type",
            "ui.h",
            Value::Null,
            None,
            "json",
            None,
        ),
        (
            "user_settings_encrypted_envelope",
            "ui.i",
            json!({"ciphertext": "x", "nonce": "y"}),
            None,
            "encrypted",
            None,
        ),
        (
            "user_settings_encrypted_envelope",
            "ui.j",
            json!("plain"),
            None,
            "encrypted",
            None,
        ),
    ];

    for (constraint, key, value, category, data_type, description) in cases {
        let error = insert_setting_row(&client, id, key, value, category, data_type, description)
            .await
            .expect_err(constraint);
        assert_eq!(violated_constraint(&error), Some(constraint), "key {key:?}");
    }
    // A 256-byte key exceeds varchar(255) before any CHECK runs.
    let too_long = insert_setting_row(&client, id, &long_key, json!(1), None, "number", None).await;
    assert!(too_long.is_err());
    // The limits themselves are accepted.
    let longest_key = "k".repeat(255);
    insert_setting_row(
        &client,
        id,
        &longest_key,
        json!(1),
        None,
        "number",
        Some("é".repeat(1024)),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn version_must_be_positive() {
    let db = TestDatabase::create().await;
    let user = new_user();
    insert_user(&db, user).await;
    let client = db.pool().get().await.unwrap();

    let error = client
        .execute(
            "INSERT INTO shared.user_settings (user_id, key, value, data_type, version) \
             VALUES ($1, 'a', '1', 'number', 0)",
            &[&user.as_uuid()],
        )
        .await
        .unwrap_err();

    assert_eq!(
        violated_constraint(&error),
        Some("user_settings_version_positive")
    );
}

#[tokio::test]
async fn preferences_checks_reject_rows_the_domain_would_refuse() {
    let db = TestDatabase::create().await;
    let user = new_user();
    insert_user(&db, user).await;
    let client = db.pool().get().await.unwrap();
    let cases = [
        ("user_preferences_theme", "theme = 'blue'"),
        (
            "user_preferences_profile_visibility",
            "profile_visibility = 'everyone'",
        ),
        (
            "user_preferences_display_language",
            "display_language = 'e'",
        ),
        (
            "user_preferences_display_language",
            "display_language = 'en_US'",
        ),
        (
            "user_preferences_content_language",
            "content_language = 'en,,de'",
        ),
        (
            "user_preferences_content_language",
            "content_language = 'en, de'",
        ),
        (
            "user_preferences_notifications_are_objects",
            "push_notifications = '[]'",
        ),
        ("user_preferences_version_positive", "version = 0"),
    ];

    for (constraint, assignment) in cases {
        // Each case in its own transaction: insert the default row, then break one column.
        let sql = format!(
            "BEGIN; \
             INSERT INTO shared.user_preferences (user_id) VALUES ('{}'); \
             UPDATE shared.user_preferences SET {assignment} WHERE user_id = '{}'; \
             COMMIT;",
            user.as_uuid(),
            user.as_uuid()
        );
        let error = client.batch_execute(&sql).await.expect_err(constraint);
        client.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(
            violated_constraint(&error),
            Some(constraint),
            "{assignment}"
        );
    }
    // NULL is "inherit" (V9): the field takes the deployment's or the builtin value.
    client
        .execute(
            "INSERT INTO shared.user_preferences (user_id, theme) VALUES ($1, NULL)",
            &[&user.as_uuid()],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn preferences_columns_default_to_the_domain_defaults() {
    let db = TestDatabase::create().await;
    let user = new_user();
    insert_user(&db, user).await;
    let client = db.pool().get().await.unwrap();
    client
        .execute(
            "INSERT INTO shared.user_preferences (user_id) VALUES ($1)",
            &[&user.as_uuid()],
        )
        .await
        .unwrap();

    let stored = preferences_repo(&db).get(user).await.unwrap().unwrap();

    assert_eq!(stored.overrides, PreferenceOverrides::default());
    assert!(stored.version >= 1);
}

/// V4 on a database that already holds rows (written the pre-V4 way, versions counted from 1
/// per row): the rows keep their versions, and every new version is above the largest one.
#[tokio::test]
async fn v4_keeps_stored_versions_and_starts_new_ones_above_them() {
    let db = TestDatabase::create().await;
    let user = new_user();
    insert_user(&db, user).await;
    let client = db.pool().get().await.unwrap();
    client
        .batch_execute(
            // Later tables draw from the same sequences: detach them first.
            "ALTER TABLE shared.deployment_settings ALTER COLUMN version DROP DEFAULT; \
             ALTER TABLE shared.deployment_preferences ALTER COLUMN version DROP DEFAULT; \
             ALTER TABLE shared.user_device_settings ALTER COLUMN version DROP DEFAULT; \
             ALTER TABLE shared.user_device_preferences ALTER COLUMN version DROP DEFAULT; \
             ALTER TABLE shared.user_settings ALTER COLUMN version SET DEFAULT 1; \
             DROP SEQUENCE shared.user_settings_version_seq; \
             ALTER TABLE shared.user_preferences ALTER COLUMN version SET DEFAULT 1; \
             DROP SEQUENCE shared.user_preferences_version_seq;",
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO shared.user_settings (user_id, key, value, data_type, version) \
             VALUES ($1, 'a.old', '1', 'number', 41), ($1, 'a.young', '1', 'number', 1)",
            &[&user.as_uuid()],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO shared.user_preferences (user_id, version) VALUES ($1, 7)",
            &[&user.as_uuid()],
        )
        .await
        .unwrap();

    client
        .batch_execute(include_str!(
            "../../../../migrations/V4__settings_versions_never_repeat.sql"
        ))
        .await
        .unwrap();

    let (settings, preferences) = (settings_repo(&db), preferences_repo(&db));
    let old = settings.get(user, &key("a.old")).await.unwrap().unwrap();
    let young = settings.get(user, &key("a.young")).await.unwrap().unwrap();
    let prefs = preferences.get(user).await.unwrap().unwrap();
    assert_eq!((old.version, young.version, prefs.version), (41, 1, 7));
    let changed = settings
        .upsert(
            user,
            &write("a.young", json!(2)),
            Precondition::Version(1),
            quota(10),
        )
        .await
        .unwrap();
    let created = settings.put(user, "a.new", json!(1)).await;
    let dark = PreferenceOverrides::from_document(&json!({"theme": "dark"})).unwrap();
    let replaced = preferences
        .upsert(
            user,
            &dark,
            Precondition::Version(7),
            domain::history::ChangeOrigin::User,
        )
        .await
        .unwrap();

    assert!(!changed.created && created.created);
    assert!(changed.setting.version > 41, "{changed:?}");
    assert!(created.setting.version > 41, "{created:?}");
    assert!(replaced.version > 7, "{replaced:?}");
}

#[tokio::test]
async fn jsonb_round_trips_every_value_type_exactly() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let deep = (0..30).fold(
        json!("bottom"),
        |inner, i| json!({ format!("level{i}"): inner }),
    );
    let values = [
        json!(0),
        json!(-1),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1.5),
        json!(1.0),
        json!(-0.000_001),
        json!(0.1 + 0.2),
        json!(1e300),
        json!(f64::MAX),
        json!(f64::MIN_POSITIVE),
        json!(5e-324),
        json!(""),
        json!("héllo wörld ✓ 日本語 🎉 \u{1F600}"),
        json!("quotes \" backslash \\ newline \n tab \t control \u{1}"),
        json!(true),
        json!(false),
        json!([]),
        json!({}),
        json!([1, "two", 3.5, null, true, {"k": []}, [[]]]),
        json!({"z": 1, "a": {"nested": [1, {"deeper": null}]}, "": "empty key", "ключ": "значение"}),
        deep,
    ];

    for (i, value) in values.iter().enumerate() {
        let key = format!("values.v{i}");
        repo.put(user, &key, value.clone()).await;
        let stored = repo
            .get(user, &crate::support::key(&key))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&stored.value, value, "value #{i}");
        // Same JSON text, not only an equal number: no precision lost.
        assert_eq!(
            stored.value.to_json().to_string(),
            value.to_string(),
            "value #{i}"
        );
    }
}

#[tokio::test]
async fn list_by_category_uses_an_index() {
    let db = TestDatabase::create().await;
    let client = db.pool().get().await.unwrap();
    // 300 users x 20 settings in six categories, then fresh statistics.
    client
        .batch_execute(
            "INSERT INTO shared.users (id) \
               SELECT ('00000000-0000-0000-0000-' || lpad(u::text, 12, '0'))::uuid \
               FROM generate_series(1, 300) AS u; \
             INSERT INTO shared.user_settings (user_id, key, value, category, data_type) \
               SELECT ('00000000-0000-0000-0000-' || lpad(u::text, 12, '0'))::uuid, \
                      'k.' || s, to_jsonb(s), \
                      (ARRAY['ui','playback','integrations','sync','notifications','privacy'])[s % 6 + 1], \
                      'number' \
               FROM generate_series(1, 300) AS u, generate_series(1, 20) AS s; \
             ANALYZE shared.users; ANALYZE shared.user_settings;",
        )
        .await
        .unwrap();

    let plan: Vec<String> = client
        .query(
            "EXPLAIN SELECT key, value, description, category, data_type, version, \
             created_at, updated_at FROM shared.user_settings \
             WHERE user_id = '00000000-0000-0000-0000-000000000042' AND category = 'ui' \
             ORDER BY key",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let plan = plan.join("\n");

    assert!(plan.contains("idx_user_settings_category"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
}

/// The one-statement write (`shared.put_user_setting`, V14): an absent user is reported and
/// nothing written; an insert is `created` at a fresh version, an unchanged write keeps it; a
/// write over a quota fails with SQLSTATE UQ001 naming the figure, and rolls itself back.
#[tokio::test]
async fn put_user_setting_reports_absent_users_keeps_versions_and_rolls_back_a_quota() {
    let db = TestDatabase::create().await;
    let client = db.pool().get().await.unwrap();
    let user = uuid::Uuid::new_v4();
    let put = |key: &'static str, value: serde_json::Value, max_settings: i64| {
        let client = &client;
        async move {
            client
                .query_one(
                    "SELECT user_found, version, created FROM shared.put_user_setting(\
                     $1, $2, $3, NULL, 'ui', 'json', $4, 1000000, 10)",
                    &[&user, &key, &value, &max_settings],
                )
                .await
        }
    };
    let absent = put("ui.a", serde_json::json!(1), 10).await.unwrap();
    assert!(!absent.get::<_, bool>("user_found"));
    client
        .execute("INSERT INTO shared.users (id) VALUES ($1)", &[&user])
        .await
        .unwrap();
    let count = || async {
        client
            .query_one(
                "SELECT count(*) FROM shared.user_settings WHERE user_id = $1",
                &[&user],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    assert_eq!(count().await, 0, "an absent user's write wrote nothing");

    let inserted = put("ui.a", serde_json::json!(1), 10).await.unwrap();
    assert!(inserted.get::<_, bool>("created"));
    let unchanged = put("ui.a", serde_json::json!(1), 10).await.unwrap();
    assert!(!unchanged.get::<_, bool>("created"));
    assert_eq!(
        unchanged.get::<_, i64>("version"),
        inserted.get::<_, i64>("version")
    );
    let changed = put("ui.a", serde_json::json!(2), 10).await.unwrap();
    assert!(changed.get::<_, i64>("version") > inserted.get::<_, i64>("version"));

    let refused = put("ui.b", serde_json::json!(3), 1).await.unwrap_err();
    let refused = refused.as_db_error().unwrap();
    assert_eq!(
        (refused.code().code(), refused.message()),
        ("UQ001", "settings")
    );
    assert_eq!(count().await, 1, "the refused insert was rolled back");
}
