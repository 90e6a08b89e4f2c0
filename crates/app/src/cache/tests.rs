//! Unit tests of the cache decorators: mocked or fake repositories, counted calls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use adapter_postgres::ChangeEvent;
use async_trait::async_trait;
use domain::{
    RepositoryError, UserId,
    ports::{
        MockPreferencesRepository, MockSettingsRepository, PreferencesRepository,
        SettingDeleteError, SettingWriteError, SettingsRepository,
    },
    preferences::StoredPreferences,
    settings::{
        Category, DataType, Limits, Page, Precondition, QuotaExceeded, Setting, SettingKey,
        SettingWrite, UpsertOutcome, UserQuota,
    },
};
use mockall::predicate::eq;
use prometheus::IntCounter;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

use super::*;
use crate::cache::{Budget, SettingsBudgets};

const TTL: Duration = Duration::from_secs(300);

fn counters() -> CacheCounters {
    CacheCounters {
        hits: IntCounter::new("hits", "hits").unwrap(),
        misses: IntCounter::new("misses", "misses").unwrap(),
    }
}

/// Room for everything the tests load, unless a test says otherwise.
fn roomy() -> SettingsBudgets {
    SettingsBudgets {
        settings: Budget::bytes(16 << 20),
        listings: Budget::bytes(16 << 20),
    }
}

fn settings_cache() -> Arc<SettingsCache> {
    Arc::new(SettingsCache::new(TTL, roomy(), counters(), counters()))
}

fn user() -> UserId {
    UserId::new(Uuid::new_v4())
}

fn key() -> SettingKey {
    SettingKey::parse("ui.theme.mode").unwrap()
}

fn setting(user: UserId, value: &str, version: i64) -> Setting {
    Setting {
        user_id: user,
        key: key(),
        value: json!(value).into(),
        description: None,
        category: None,
        data_type: DataType::String,
        version,
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    }
}

fn write(value: &str) -> SettingWrite {
    SettingWrite {
        key: key(),
        value: json!(value).into(),
        description: None,
        category: None,
        data_type: DataType::String,
        origin: Default::default(),
    }
}

#[tokio::test]
async fn a_cached_read_does_not_reach_the_repository() {
    let alice = user();
    let mut mock = MockSettingsRepository::new();
    mock.expect_get()
        .times(1)
        .returning(move |u, _| Ok(Some(setting(u, "dark", 1))));
    let by_key = counters();
    let cache = Arc::new(SettingsCache::new(TTL, roomy(), by_key.clone(), counters()));
    let repo = CachedSettingsRepository::new(mock, Arc::clone(&cache));

    let first = repo.get(alice, &key()).await.unwrap();
    let second = repo.get(alice, &key()).await.unwrap();

    assert_eq!(first, second);
    assert_eq!((by_key.hits.get(), by_key.misses.get()), (1, 1));
}

#[tokio::test]
async fn absent_settings_are_cached_too() {
    let mut mock = MockSettingsRepository::new();
    mock.expect_get().times(1).returning(|_, _| Ok(None));
    let repo = CachedSettingsRepository::new(mock, settings_cache());
    let alice = user();
    assert_eq!(repo.get(alice, &key()).await.unwrap(), None);
    assert_eq!(repo.get(alice, &key()).await.unwrap(), None);
}

#[tokio::test]
async fn errors_are_not_cached() {
    let mut mock = MockSettingsRepository::new();
    let mut calls = 0;
    mock.expect_get().times(2).returning(move |u, _| {
        calls += 1;
        if calls == 1 {
            Err(RepositoryError::Unavailable("down".into()))
        } else {
            Ok(Some(setting(u, "dark", 1)))
        }
    });
    let repo = CachedSettingsRepository::new(mock, settings_cache());
    let alice = user();
    assert!(matches!(
        repo.get(alice, &key()).await,
        Err(RepositoryError::Unavailable(_))
    ));
    assert!(repo.get(alice, &key()).await.unwrap().is_some());
}

#[tokio::test]
async fn a_local_write_invalidates_the_entry_and_the_listings() {
    let alice = user();
    let mut mock = MockSettingsRepository::new();
    let mut version = 0;
    mock.expect_get().times(2).returning(move |u, _| {
        version += 1;
        Ok(Some(setting(u, "dark", version)))
    });
    mock.expect_list()
        .with(eq(alice), eq(None::<Category>), eq(Page::first(10)))
        .times(2)
        .returning(|_, _, _| Ok(vec![]));
    mock.expect_upsert().times(1).returning(|u, _, _, _| {
        Ok(UpsertOutcome {
            setting: setting(u, "light", 2),
            created: false,
        })
    });
    let repo = CachedSettingsRepository::new(mock, settings_cache());

    repo.get(alice, &key()).await.unwrap();
    repo.list(alice, None, Page::first(10)).await.unwrap();
    repo.upsert(
        alice,
        &write("light"),
        Precondition::Any,
        Limits::default().quota(),
    )
    .await
    .unwrap();
    let after = repo.get(alice, &key()).await.unwrap().unwrap();
    repo.list(alice, None, Page::first(10)).await.unwrap();

    assert_eq!(after.version, 2);
}

#[tokio::test]
async fn each_page_of_a_listing_is_cached_apart() {
    let alice = user();
    let mut mock = MockSettingsRepository::new();
    mock.expect_list().times(2).returning(|u, _, page| {
        let value = if page.after.is_none() {
            "first"
        } else {
            "second"
        };
        Ok(vec![setting(u, value, 1)])
    });
    let repo = CachedSettingsRepository::new(mock, settings_cache());
    let second = Page {
        after: Some(key()),
        limit: 10,
    };

    let one = repo.list(alice, None, Page::first(10)).await.unwrap();
    let two = repo.list(alice, None, second.clone()).await.unwrap();
    let two_again = repo.list(alice, None, second).await.unwrap();

    assert_eq!(one[0].value, json!("first"));
    assert_eq!(two[0].value, json!("second"));
    assert_eq!(two_again, two);
}

#[tokio::test]
async fn a_failed_write_invalidates_too() {
    let alice = user();
    let mut mock = MockSettingsRepository::new();
    mock.expect_get()
        .times(2)
        .returning(|u, _| Ok(Some(setting(u, "dark", 1))));
    mock.expect_delete().times(1).returning(|_, _, _, _| {
        Err(SettingDeleteError::Repository(
            RepositoryError::Unavailable("timeout".into()),
        ))
    });
    let repo = CachedSettingsRepository::new(mock, settings_cache());

    repo.get(alice, &key()).await.unwrap();
    assert!(
        repo.delete(
            alice,
            &key(),
            Precondition::Any,
            domain::history::ChangeOrigin::User
        )
        .await
        .is_err()
    );
    repo.get(alice, &key()).await.unwrap();
}

#[tokio::test]
async fn a_bulk_write_invalidates_the_users_entries() {
    let alice = user();
    let mut mock = MockSettingsRepository::new();
    mock.expect_get()
        .times(2)
        .returning(|u, _| Ok(Some(setting(u, "dark", 1))));
    mock.expect_upsert_many().times(1).returning(|_, _, _| {
        Err(SettingWriteError::QuotaExceeded(QuotaExceeded::Settings {
            limit: 1,
        }))
    });
    let repo = CachedSettingsRepository::new(mock, settings_cache());

    repo.get(alice, &key()).await.unwrap();
    let _ = repo
        .upsert_many(alice, &[write("light")], Limits::default().quota())
        .await;
    repo.get(alice, &key()).await.unwrap();
}

#[tokio::test]
async fn a_change_event_invalidates_only_the_named_users_entries() {
    let cache = settings_cache();
    let alice = user();
    // Users share generation stripes; Bob must not share Alice's for this test.
    let bob = std::iter::repeat_with(user)
        .find(|b| !cache.share_generation(alice, *b))
        .unwrap();
    let mut mock = MockSettingsRepository::new();
    mock.expect_get()
        .with(eq(alice), eq(key()))
        .times(2)
        .returning(|u, _| Ok(Some(setting(u, "dark", 1))));
    mock.expect_get()
        .with(eq(bob), eq(key()))
        .times(1)
        .returning(|u, _| Ok(Some(setting(u, "dark", 1))));
    let caches = Caches {
        settings: Some(Arc::clone(&cache)),
        preferences: None,
        defaults: None,
    };
    let repo = CachedSettingsRepository::new(mock, cache);

    repo.get(alice, &key()).await.unwrap();
    repo.get(bob, &key()).await.unwrap();
    caches
        .apply(&ChangeEvent::Settings {
            user_id: alice,
            key: key(),
        })
        .await;
    repo.get(alice, &key()).await.unwrap();
    repo.get(bob, &key()).await.unwrap();
}

#[tokio::test]
async fn flush_all_and_a_lagging_listener_drop_everything() {
    let alice = user();
    let mut mock = MockSettingsRepository::new();
    mock.expect_get()
        .times(3)
        .returning(|u, _| Ok(Some(setting(u, "dark", 1))));
    let cache = settings_cache();
    let repo = CachedSettingsRepository::new(mock, Arc::clone(&cache));
    let (events, receiver) = broadcast::channel(1);
    let listener = spawn_invalidation(
        receiver,
        Caches {
            settings: Some(cache),
            preferences: None,
            defaults: None,
        },
    );

    repo.get(alice, &key()).await.unwrap();
    events.send(ChangeEvent::FlushAll).unwrap();
    settle().await;
    repo.get(alice, &key()).await.unwrap();

    // Two events into a channel of one: the listener lags and must flush.
    let other = user();
    events
        .send(ChangeEvent::Preferences { user_id: other })
        .unwrap();
    events
        .send(ChangeEvent::Preferences { user_id: other })
        .unwrap();
    settle().await;
    repo.get(alice, &key()).await.unwrap();

    drop(events);
    listener.await.unwrap();
}

/// Lets the listener task run.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test]
async fn preferences_are_cached_and_invalidated_by_writes_and_events() {
    let alice = user();
    let mut mock = MockPreferencesRepository::new();
    mock.expect_get()
        .times(3)
        .returning(|u| Ok(Some(StoredPreferences::defaults(u))));
    mock.expect_upsert()
        .times(1)
        .returning(|u, _, _, _| Ok(StoredPreferences::defaults(u)));
    let cache = Arc::new(PreferencesCache::new(
        TTL,
        Budget::bytes(1 << 20),
        counters(),
    ));
    let caches = Caches {
        settings: None,
        preferences: Some(Arc::clone(&cache)),
        defaults: None,
    };
    let repo = CachedPreferencesRepository::new(mock, cache);

    repo.get(alice).await.unwrap();
    repo.get(alice).await.unwrap();
    repo.upsert(
        alice,
        &Default::default(),
        Precondition::Any,
        domain::history::ChangeOrigin::User,
    )
    .await
    .unwrap();
    repo.get(alice).await.unwrap();
    caches
        .apply(&ChangeEvent::Preferences { user_id: alice })
        .await;
    repo.get(alice).await.unwrap();
}

/// A settings store whose first load reads the current value, then waits for the test.
#[derive(Default)]
struct SlowStore {
    value: Mutex<&'static str>,
    loads: AtomicUsize,
    first_load_started: Notify,
    finish_first_load: Notify,
}

#[async_trait]
impl SettingsRepository for SlowStore {
    async fn get(
        &self,
        user: UserId,
        _key: &SettingKey,
    ) -> Result<Option<Setting>, RepositoryError> {
        let n = self.loads.fetch_add(1, Ordering::SeqCst);
        let value = *self.value.lock().unwrap();
        if n == 0 {
            self.first_load_started.notify_one();
            self.finish_first_load.notified().await;
        }
        Ok(Some(setting(user, value, 1)))
    }

    async fn list(
        &self,
        _: UserId,
        _: Option<Category>,
        _: Page,
    ) -> Result<Vec<Setting>, RepositoryError> {
        unimplemented!("not used")
    }

    async fn upsert(
        &self,
        _: UserId,
        _: &SettingWrite,
        _: Precondition,
        _: UserQuota,
    ) -> Result<UpsertOutcome, SettingWriteError> {
        unimplemented!("not used")
    }

    async fn upsert_many(
        &self,
        _: UserId,
        _: &[SettingWrite],
        _: UserQuota,
    ) -> Result<Vec<UpsertOutcome>, SettingWriteError> {
        unimplemented!("not used")
    }

    async fn delete(
        &self,
        _: UserId,
        _: &SettingKey,
        _: Precondition,
        _: domain::history::ChangeOrigin,
    ) -> Result<(), SettingDeleteError> {
        unimplemented!("not used")
    }

    async fn count(&self, _: UserId) -> Result<u64, RepositoryError> {
        unimplemented!("not used")
    }
}

fn slow_repo() -> (
    Arc<SlowStore>,
    Arc<SettingsCache>,
    Arc<CachedSettingsRepository<Arc<SlowStore>>>,
) {
    let store = Arc::new(SlowStore {
        value: Mutex::new("old"),
        ..SlowStore::default()
    });
    let cache = settings_cache();
    let repo = Arc::new(CachedSettingsRepository::new(
        Arc::clone(&store),
        Arc::clone(&cache),
    ));
    (store, cache, repo)
}

fn value_of(setting: Option<Setting>) -> String {
    setting
        .unwrap()
        .value
        .plain()
        .and_then(Value::as_str)
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn concurrent_misses_load_once() {
    let (store, _cache, repo) = slow_repo();
    let alice = user();
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let repo = Arc::clone(&repo);
            tokio::spawn(async move { repo.get(alice, &key()).await })
        })
        .collect();
    store.first_load_started.notified().await;
    settle().await;
    store.finish_first_load.notify_one();
    for reader in readers {
        assert_eq!(value_of(reader.await.unwrap().unwrap()), "old");
    }
    assert_eq!(store.loads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_slow_load_does_not_write_back_a_stale_value_after_an_invalidation() {
    let (store, cache, repo) = slow_repo();
    let alice = user();
    let slow_reader = {
        let repo = Arc::clone(&repo);
        tokio::spawn(async move { repo.get(alice, &key()).await })
    };
    store.first_load_started.notified().await;

    // A write lands and is announced while the slow load still holds the old value.
    *store.value.lock().unwrap() = "new";
    cache.setting_changed(alice, &key()).await;
    store.finish_first_load.notify_one();

    // The slow read was concurrent with the write: either answer is fine for it.
    slow_reader.await.unwrap().unwrap();
    // Every read that begins after the invalidation sees the new value.
    assert_eq!(value_of(repo.get(alice, &key()).await.unwrap()), "new");
    assert_eq!(value_of(repo.get(alice, &key()).await.unwrap()), "new");
    assert_eq!(store.loads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_read_joining_a_load_begun_before_an_invalidation_loads_again() {
    let (store, cache, repo) = slow_repo();
    let alice = user();
    let slow_reader = {
        let repo = Arc::clone(&repo);
        tokio::spawn(async move { repo.get(alice, &key()).await })
    };
    store.first_load_started.notified().await;
    *store.value.lock().unwrap() = "new";
    cache.setting_changed(alice, &key()).await;

    // Begins after the invalidation, while the old load is still running.
    let late_reader = {
        let repo = Arc::clone(&repo);
        tokio::spawn(async move { repo.get(alice, &key()).await })
    };
    settle().await;
    store.finish_first_load.notify_one();

    slow_reader.await.unwrap().unwrap();
    assert_eq!(value_of(late_reader.await.unwrap().unwrap()), "new");
}

fn setting_of_bytes(user: UserId, key: &str, bytes: usize) -> Setting {
    Setting {
        key: SettingKey::parse(key).unwrap(),
        value: json!("x".repeat(bytes)).into(),
        ..setting(user, "", 1)
    }
}

/// A repository whose settings carry values of `bytes` each, counting its loads.
fn repo_of_values(
    bytes: usize,
    budgets: SettingsBudgets,
) -> (
    Arc<SettingsCache>,
    CachedSettingsRepository<MockSettingsRepository>,
) {
    let mut mock = MockSettingsRepository::new();
    mock.expect_get()
        .returning(move |u, k| Ok(Some(setting_of_bytes(u, k.as_str(), bytes))));
    let cache = Arc::new(SettingsCache::new(TTL, budgets, counters(), counters()));
    (
        Arc::clone(&cache),
        CachedSettingsRepository::new(mock, cache),
    )
}

fn numbered_key(n: usize) -> SettingKey {
    SettingKey::parse(&format!("ui.budget.k{n}")).unwrap()
}

#[tokio::test]
async fn a_byte_budget_holds_many_small_entries_but_few_large_ones() {
    let budget = SettingsBudgets {
        settings: Budget::bytes(64 << 10),
        ..roomy()
    };
    let alice = user();
    let (small, small_repo) = repo_of_values(10, budget);
    let (large, large_repo) = repo_of_values(10 << 10, budget);
    for n in 0..20 {
        small_repo.get(alice, &numbered_key(n)).await.unwrap();
        large_repo.get(alice, &numbered_key(n)).await.unwrap();
    }
    small.settle().await;
    large.settle().await;

    assert_eq!(small.entry_counts().0, 20);
    let (entries, bytes) = (large.entry_counts().0, large.weighted_bytes().0);
    assert!(entries < 7, "{entries} entries of 10 KiB in 64 KiB");
    assert!(bytes <= 64 << 10, "{bytes} bytes held");
}

#[tokio::test]
async fn max_entries_still_bounds_the_entry_count() {
    let budget = SettingsBudgets {
        settings: Budget::bytes(1 << 20).with_max_entries(Some(5)),
        ..roomy()
    };
    let alice = user();
    let (cache, repo) = repo_of_values(10, budget);
    for n in 0..20 {
        repo.get(alice, &numbered_key(n)).await.unwrap();
    }
    cache.settle().await;
    assert!(cache.entry_counts().0 <= 5);
}

#[tokio::test]
async fn an_oversized_listing_is_served_but_not_cached() {
    let alice = user();
    let big: Vec<Setting> = (0..4)
        .map(|n| setting_of_bytes(alice, &format!("ui.big.k{n}"), 1 << 10))
        .collect();
    let mut mock = MockSettingsRepository::new();
    let listing = big.clone();
    mock.expect_list()
        .times(2)
        .returning(move |_, _, _| Ok(listing.clone()));
    let budgets = SettingsBudgets {
        listings: Budget::bytes(1 << 20).with_max_entry_bytes(2 << 10),
        ..roomy()
    };
    let cache = Arc::new(SettingsCache::new(TTL, budgets, counters(), counters()));
    let repo = CachedSettingsRepository::new(mock, Arc::clone(&cache));

    assert_eq!(repo.list(alice, None, Page::first(10)).await.unwrap(), big);
    assert_eq!(repo.list(alice, None, Page::first(10)).await.unwrap(), big);
    cache.settle().await;
    assert_eq!(cache.entry_counts().1, 0);
}

#[tokio::test]
async fn a_listing_under_the_threshold_is_cached() {
    let alice = user();
    let mut mock = MockSettingsRepository::new();
    mock.expect_list()
        .times(1)
        .returning(move |u, _, _| Ok(vec![setting_of_bytes(u, "ui.small.k", 10)]));
    let budgets = SettingsBudgets {
        listings: Budget::bytes(1 << 20).with_max_entry_bytes(2 << 10),
        ..roomy()
    };
    let repo = CachedSettingsRepository::new(
        mock,
        Arc::new(SettingsCache::new(TTL, budgets, counters(), counters())),
    );
    repo.list(alice, None, Page::first(10)).await.unwrap();
    repo.list(alice, None, Page::first(10)).await.unwrap();
}

#[tokio::test]
async fn the_bytes_gauge_reports_what_each_cache_holds() {
    use prometheus::{Encoder, Registry, TextEncoder};

    let registry = Registry::new();
    let metrics = crate::metrics::AppMetrics::register(registry.clone()).unwrap();
    let (cache, repo) = repo_of_values(4 << 10, roomy());
    metrics
        .register_cache_sizes(Caches {
            settings: Some(Arc::clone(&cache)),
            preferences: None,
            defaults: None,
        })
        .unwrap();
    repo.get(user(), &key()).await.unwrap();
    cache.settle().await;

    let mut text = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut text)
        .unwrap();
    let text = String::from_utf8(text).unwrap();
    let sample = |series: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} missing in {text}"))
    };
    let held = sample(r#"user_settings_cache_bytes{cache="settings"}"#);
    assert_eq!(held, cache.weighted_bytes().0);
    assert!(
        held > 4 << 10,
        "a 4 KiB value weighs more than 4 KiB: {held}"
    );
    assert_eq!(
        sample(r#"user_settings_cache_bytes{cache="settings_list"}"#),
        0
    );
}
