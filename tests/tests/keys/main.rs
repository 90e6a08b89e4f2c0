//! Secrets across the whole stack: cell binding against raw-SQL tampering, rotation with
//! previous keys, `rewrap` (resumable, idempotent, never overwriting a concurrent write),
//! the start-up checks, and how `keys rewrap` and `keys status` say how far and how much.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};
use std::time::Duration;

use adapter_crypto::AesGcmKeyring;
use adapter_postgres::PgEnvelopeStore;
use app::{Application, Config};
use async_trait::async_trait;
use domain::{
    RepositoryError, UserId,
    ports::{EnvelopeStore, SealedCell, SecretCipher},
    secrets::Envelope,
    services::{KeyRotation, RewrapOptions, RewrapReport},
    settings::SettingKey,
};
use e2e::{ENCRYPTION_KEY, TestApp, json_with_status, new_user};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

const K2: &str = "k2:202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
const KEY: &str = "integrations.plex.token";

fn keyring(current: &str, previous: &str) -> Arc<AesGcmKeyring> {
    Arc::new(AesGcmKeyring::from_config(current, previous).unwrap())
}

/// Stores a secret for a new user through the API and returns the user.
async fn store_secret(app: &TestApp, plaintext: &str) -> Uuid {
    let user = new_user();
    let body = json!({"value": plaintext, "data_type": "encrypted"});
    let response = app
        .put(
            &format!("/api/v1/users/me/settings/{KEY}"),
            &app.token(user, &[]),
            &body,
        )
        .await;
    json_with_status(response, 201).await;
    user
}

/// `keys rewrap` showing nothing.
async fn rewrap(
    app: &TestApp,
    keyring: Arc<AesGcmKeyring>,
    options: RewrapOptions,
) -> anyhow::Result<RewrapReport> {
    let mut progress = app::keys::Progress::silent();
    let never = AtomicBool::new(false);
    app::keys::rewrap(app.db.pool(), keyring, options, &mut progress, &never).await
}

async fn envelopes(app: &TestApp) -> Vec<(Uuid, Envelope)> {
    let rows = app
        .query_json(
            "SELECT json_build_object('user', user_id, 'value', value) FROM shared.user_settings \
             WHERE data_type = 'encrypted' ORDER BY user_id",
        )
        .await;
    rows.into_iter()
        .map(|r| {
            let user = Uuid::parse_str(r["user"].as_str().unwrap()).unwrap();
            (user, Envelope::from_value(&r["value"]).unwrap())
        })
        .collect()
}

fn open(keyring: &AesGcmKeyring, user: Uuid, envelope: &Envelope) -> Value {
    let plaintext = keyring
        .open(
            UserId::new(user),
            &SettingKey::parse(KEY).unwrap(),
            envelope,
        )
        .unwrap();
    serde_json::from_slice(&plaintext).unwrap()
}

/// A second application on the same database with other keys.
async fn spawn_on_same_db(
    app: &TestApp,
    current: &str,
    previous: &str,
) -> anyhow::Result<Application> {
    let mut config = Config::default();
    config.database.url = Some(app.db.url().to_owned());
    config.server.bind = "127.0.0.1:0".into();
    config.server.workers = 1;
    config.encryption.key = Some(SecretString::from(current));
    config.encryption.previous_keys = Some(SecretString::from(previous));
    config.jwt.secret = Some(SecretString::from(e2e::JWT_SECRET));
    Application::build(config).await
}

#[tokio::test]
async fn ciphertext_moved_to_another_user_or_key_does_not_decrypt() {
    let app = TestApp::spawn().await;
    let alice = store_secret(&app, "alice-secret").await;
    let bob = store_secret(&app, "bob-secret").await;
    let client = app.db.pool().get().await.unwrap();
    // Bob's row now holds Alice's envelope; a new key of Alice's holds it too.
    client
        .execute(
            "UPDATE shared.user_settings SET value = (SELECT value FROM shared.user_settings WHERE user_id = $1) \
             WHERE user_id = $2",
            &[&alice, &bob],
        )
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO shared.user_settings (user_id, key, value, data_type) \
             SELECT user_id, 'integrations.other.token', value, 'encrypted' FROM shared.user_settings WHERE user_id = $1",
            &[&alice],
        )
        .await
        .unwrap();
    let service = app.token(new_user(), &["service"]);
    for (user, key) in [(bob, KEY), (alice, "integrations.other.token")] {
        let response = app
            .get(
                &format!("/internal/v1/users/{user}/secrets/{key}"),
                &service,
            )
            .await;
        let body = json_with_status(response, 500).await;
        assert_eq!(body["code"], "internal_error");
        assert!(!body.to_string().contains("alice-secret"));
    }
    let own = app
        .get(
            &format!("/internal/v1/users/{alice}/secrets/{KEY}"),
            &service,
        )
        .await;
    assert_eq!(json_with_status(own, 200).await["value"], "alice-secret");
}

#[tokio::test]
async fn old_secrets_stay_readable_after_rotation_and_new_writes_use_the_new_key() {
    let app = TestApp::spawn().await;
    let user = store_secret(&app, "written-under-k1").await;
    let rotated = spawn_on_same_db(&app, K2, ENCRYPTION_KEY).await.unwrap();
    let address = format!("http://127.0.0.1:{}", rotated.port());
    tokio::spawn(rotated.run_until_stopped());

    let service = app.token(new_user(), &["service"]);
    let read = app
        .client
        .get(format!("{address}/internal/v1/users/{user}/secrets/{KEY}"))
        .bearer_auth(&service)
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_with_status(read, 200).await["value"],
        "written-under-k1"
    );

    let other = new_user();
    let write = app
        .client
        .put(format!("{address}/api/v1/users/me/settings/{KEY}"))
        .bearer_auth(app.token(other, &[]))
        .json(&json!({"value": "written-under-k2", "data_type": "encrypted"}))
        .send()
        .await
        .unwrap();
    json_with_status(write, 201).await;
    let kids: Vec<(Uuid, String)> = envelopes(&app)
        .await
        .into_iter()
        .map(|(u, e)| (u, e.kid))
        .collect();
    assert!(kids.contains(&(user, "e2e1".to_owned())));
    assert!(kids.contains(&(other, "k2".to_owned())));
}

#[tokio::test]
async fn start_up_refuses_keys_that_cannot_read_stored_secrets() {
    let app = TestApp::spawn().await;
    store_secret(&app, "needs-e2e1").await;
    let error = spawn_on_same_db(&app, K2, "")
        .await
        .err()
        .expect("start-up fails");
    let message = format!("{error:#}");
    assert!(message.contains("e2e1 (1 rows)"), "{message}");
    assert!(!message.contains("202122"), "no key material in {message}");
}

#[tokio::test]
async fn start_up_refuses_malformed_and_duplicate_keys_without_echoing_them() {
    let app = TestApp::spawn().await;
    let short = spawn_on_same_db(&app, "abcdef", "")
        .await
        .err()
        .expect("a short key is refused");
    assert!(
        format!("{short:#}").contains("the current key"),
        "{short:#}"
    );
    assert!(!format!("{short:#}").contains("abcdef"));
    let duplicate = spawn_on_same_db(&app, K2, K2)
        .await
        .err()
        .expect("a duplicate kid is refused");
    assert!(format!("{duplicate:#}").contains("k2"), "{duplicate:#}");
}

#[tokio::test]
async fn rewrap_moves_every_secret_to_the_current_key_with_fresh_salts() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        store_secret(&app, &format!("secret-{i}")).await;
    }
    let before = envelopes(&app).await;
    let history = "SELECT to_jsonb(count(*)) FROM shared.user_settings_history";
    let kept_before = app.query_json(history).await;
    let old = keyring(ENCRYPTION_KEY, "");
    let new = keyring(K2, ENCRYPTION_KEY);
    let report = rewrap(
        &app,
        new.clone(),
        RewrapOptions {
            batch_size: 2,
            dry_run: false,
        },
    )
    .await
    .unwrap();
    assert_eq!((report.rewrapped, report.failures.len()), (5, 0));
    // Re-sealing is not a change: the history holds nothing more.
    assert_eq!(app.query_json(history).await, kept_before);

    let after = envelopes(&app).await;
    for ((user, was), (same_user, now)) in before.iter().zip(&after) {
        assert_eq!(user, same_user);
        assert_eq!(now.kid, "k2");
        assert_ne!(now.salt, was.salt);
        assert_ne!(now.nonce, was.nonce);
        assert_eq!(
            open(&new, *user, now),
            open(&old, *user, was),
            "plaintext unchanged"
        );
    }

    let again = rewrap(&app, new, RewrapOptions::default()).await.unwrap();
    assert_eq!(again.rewrapped, 0, "a second run changes nothing");
    assert_eq!(envelopes(&app).await, after);
}

#[tokio::test]
async fn dry_run_counts_without_writing() {
    let app = TestApp::spawn().await;
    store_secret(&app, "s").await;
    let before = envelopes(&app).await;
    let report = rewrap(
        &app,
        keyring(K2, ENCRYPTION_KEY),
        RewrapOptions {
            batch_size: 10,
            dry_run: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(report.rewrapped, 1);
    assert_eq!(envelopes(&app).await, before);
}

/// An envelope store that fails after `fail_after` batches, as an interrupted run would.
struct Interrupted {
    inner: PgEnvelopeStore,
    batches: AtomicUsize,
    fail_after: usize,
}

#[async_trait]
impl EnvelopeStore for Interrupted {
    async fn count_by_kid(&self) -> Result<Vec<(Option<String>, u64)>, RepositoryError> {
        self.inner.count_by_kid().await
    }

    async fn not_sealed_with(
        &self,
        current_kid: &str,
        after: Option<(UserId, SettingKey)>,
        limit: u32,
    ) -> Result<Vec<SealedCell>, RepositoryError> {
        if self.batches.fetch_add(1, Ordering::SeqCst) >= self.fail_after {
            return Err(RepositoryError::Unavailable("connection lost".into()));
        }
        self.inner.not_sealed_with(current_kid, after, limit).await
    }

    async fn replace_envelopes(
        &self,
        replacements: &[(SealedCell, Envelope)],
    ) -> Result<u64, RepositoryError> {
        self.inner.replace_envelopes(replacements).await
    }
}

#[tokio::test]
async fn interrupted_rewrap_resumes_where_it_stopped() {
    let app = TestApp::spawn().await;
    for i in 0..6 {
        store_secret(&app, &format!("secret-{i}")).await;
    }
    let new = keyring(K2, ENCRYPTION_KEY);
    let interrupted = Interrupted {
        inner: PgEnvelopeStore::new(app.db.pool().clone()),
        batches: AtomicUsize::new(0),
        fail_after: 1,
    };
    let options = RewrapOptions {
        batch_size: 2,
        dry_run: false,
    };
    assert!(
        KeyRotation::new(interrupted, new.clone())
            .rewrap(options)
            .await
            .is_err()
    );
    let kids: Vec<String> = envelopes(&app)
        .await
        .into_iter()
        .map(|(_, e)| e.kid)
        .collect();
    assert_eq!(
        kids.iter().filter(|k| *k == "k2").count(),
        2,
        "the first batch was rewrapped"
    );

    let resumed = rewrap(&app, new, options).await.unwrap();
    assert_eq!(resumed.rewrapped, 4);
    assert!(envelopes(&app).await.iter().all(|(_, e)| e.kid == "k2"));
}

/// An envelope store that lets a user write land between the rewrap's read and its write.
struct RacingUser {
    inner: PgEnvelopeStore,
    app_address: String,
    token: String,
    client: reqwest::Client,
}

#[async_trait]
impl EnvelopeStore for RacingUser {
    async fn count_by_kid(&self) -> Result<Vec<(Option<String>, u64)>, RepositoryError> {
        self.inner.count_by_kid().await
    }

    async fn not_sealed_with(
        &self,
        current_kid: &str,
        after: Option<(UserId, SettingKey)>,
        limit: u32,
    ) -> Result<Vec<SealedCell>, RepositoryError> {
        self.inner.not_sealed_with(current_kid, after, limit).await
    }

    async fn replace_envelopes(
        &self,
        replacements: &[(SealedCell, Envelope)],
    ) -> Result<u64, RepositoryError> {
        let response = self
            .client
            .put(format!(
                "{}/api/v1/users/me/settings/{KEY}",
                self.app_address
            ))
            .bearer_auth(&self.token)
            .json(&json!({"value": "the user's new secret", "data_type": "encrypted"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        self.inner.replace_envelopes(replacements).await
    }
}

#[tokio::test]
async fn a_concurrent_user_write_during_rewrap_survives() {
    let app = TestApp::spawn().await;
    let user = store_secret(&app, "old secret").await;
    let store = RacingUser {
        inner: PgEnvelopeStore::new(app.db.pool().clone()),
        app_address: app.address.clone(),
        token: app.token(user, &[]),
        client: app.client.clone(),
    };
    let report = KeyRotation::new(store, keyring(K2, ENCRYPTION_KEY))
        .rewrap(RewrapOptions::default())
        .await
        .unwrap();
    assert_eq!((report.rewrapped, report.changed_concurrently), (0, 1));
    let service = app.token(new_user(), &["service"]);
    let read = app
        .get(
            &format!("/internal/v1/users/{user}/secrets/{KEY}"),
            &service,
        )
        .await;
    assert_eq!(
        json_with_status(read, 200).await["value"],
        "the user's new secret"
    );
}

#[tokio::test]
async fn corrupt_rows_are_reported_by_cell_and_left_untouched() {
    let app = TestApp::spawn().await;
    store_secret(&app, "fine").await;
    let victim = new_user();
    let client = app.db.pool().get().await.unwrap();
    client
        .execute("INSERT INTO shared.users (id) VALUES ($1)", &[&victim])
        .await
        .unwrap();
    let corrupt = json!({"v": 1, "alg": "A256GCM-HKDF-SHA256", "kid": "e2e1", "salt": "AAAA", "nonce": "AAAA", "ciphertext": "AAAA"});
    client
        .execute(
            "INSERT INTO shared.user_settings (user_id, key, value, data_type) VALUES ($1, $2, $3, 'encrypted')",
            &[&victim, &KEY, &corrupt],
        )
        .await
        .unwrap();
    let report = rewrap(&app, keyring(K2, ENCRYPTION_KEY), RewrapOptions::default())
        .await
        .unwrap();
    assert_eq!(report.rewrapped, 1);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].user_id, UserId::new(victim));
    assert_eq!(report.failures[0].key.as_str(), KEY);
    let stored = app
        .query_json(&format!(
            "SELECT value FROM shared.user_settings WHERE user_id = '{victim}'"
        ))
        .await;
    assert_eq!(stored, vec![corrupt]);
}

#[tokio::test]
async fn status_counts_secrets_per_key() {
    let app = TestApp::spawn().await;
    store_secret(&app, "a").await;
    store_secret(&app, "b").await;
    let text = app::keys::status(app.db.pool(), keyring(K2, ENCRYPTION_KEY))
        .await
        .unwrap();
    assert!(text.contains("current key: k2"), "{text}");
    assert!(
        text.contains("e2e1\t2\tprevious: run `keys rewrap`"),
        "{text}"
    );
}

/// What a progress reporter wrote, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }
}

/// `keys rewrap` without a terminal, its lines captured; `stop` as if Ctrl-C came first.
async fn rewrap_with_lines(
    app: &TestApp,
    options: RewrapOptions,
    interval: Duration,
    stop: bool,
) -> (RewrapReport, Vec<String>) {
    let out = Captured::default();
    let mut progress = app::keys::Progress::lines(Box::new(out.clone()), interval);
    let report = app::keys::rewrap(
        app.db.pool(),
        keyring(K2, ENCRYPTION_KEY),
        options,
        &mut progress,
        &AtomicBool::new(stop),
    )
    .await
    .unwrap();
    (report, out.lines())
}

const TWO_PER_BATCH: RewrapOptions = RewrapOptions {
    batch_size: 2,
    dry_run: false,
};

#[tokio::test]
async fn rewrap_without_a_terminal_states_the_total_then_how_far_it_is() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        store_secret(&app, &format!("secret-{i}")).await;
    }
    let (_, lines) = rewrap_with_lines(&app, TWO_PER_BATCH, Duration::ZERO, false).await;

    assert_eq!(
        lines[0],
        "rewrap: 5 setting(s) not on the current key to re-encrypt"
    );
    let figures: Vec<&str> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(
        figures,
        [
            "rewrap: 2/5 (40%)",
            "rewrap: 4/5 (80%)",
            "rewrap: 5/5 (100%)"
        ]
    );
    assert!(
        lines[1].contains("/s, about ") && lines[1].ends_with(" left"),
        "rate and time left: {lines:?}"
    );
    assert!(
        lines.last().unwrap().starts_with("rewrap: 5 of 5 in "),
        "{lines:?}"
    );
}

#[tokio::test]
async fn progress_lines_wait_for_the_interval() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        store_secret(&app, &format!("secret-{i}")).await;
    }
    let (report, lines) =
        rewrap_with_lines(&app, TWO_PER_BATCH, Duration::from_secs(3600), false).await;
    assert_eq!(report.rewrapped, 5);
    assert_eq!(lines.len(), 2, "the total and the end only: {lines:?}");
}

#[tokio::test]
async fn dry_run_states_the_total_first() {
    let app = TestApp::spawn().await;
    store_secret(&app, "s").await;
    let options = RewrapOptions {
        batch_size: 10,
        dry_run: true,
    };
    let (_, lines) = rewrap_with_lines(&app, options, Duration::ZERO, false).await;
    assert_eq!(
        lines[0],
        "rewrap (dry run): 1 setting(s) not on the current key to check"
    );
}

#[tokio::test]
async fn a_stop_request_ends_rewrap_at_a_batch_boundary_and_a_new_run_resumes() {
    let app = TestApp::spawn().await;
    for i in 0..3 {
        store_secret(&app, &format!("secret-{i}")).await;
    }
    let (stopped, _) = rewrap_with_lines(&app, TWO_PER_BATCH, Duration::ZERO, true).await;
    assert!(stopped.interrupted);
    assert_eq!(stopped.rewrapped, 0);

    let (resumed, _) = rewrap_with_lines(&app, TWO_PER_BATCH, Duration::ZERO, false).await;
    assert_eq!((resumed.rewrapped, resumed.interrupted), (3, false));
}

#[tokio::test]
async fn status_states_the_totals_first() {
    let app = TestApp::spawn().await;
    store_secret(&app, "a").await;
    store_secret(&app, "b").await;
    let text = app::keys::status(app.db.pool(), keyring(K2, ENCRYPTION_KEY))
        .await
        .unwrap();
    assert_eq!(
        text.lines().next(),
        Some("2 encrypted setting(s), 2 not on the current key")
    );
}
