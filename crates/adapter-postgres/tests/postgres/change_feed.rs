//! `ChangeFeed`: events for writes, a flush after a reconnect, and a clean stop.

use std::time::Duration;

use adapter_postgres::{ChangeEvent, ChangeFeed, testing::TestDatabase};
use domain::{ports::SettingsRepository, preferences::PreferenceOverrides, settings::Precondition};
use serde_json::json;
use tokio::sync::broadcast::Receiver;

use crate::support::{PutPreferences, PutSetting, key, new_user, preferences_repo, settings_repo};

const WAIT: Duration = Duration::from_secs(10);

/// The next invalidation other than `FlushAll` (the streams' announcements are skipped;
/// `a_kept_change_is_announced_with_its_position` reads those).
pub(crate) async fn next_change(events: &mut Receiver<ChangeEvent>) -> ChangeEvent {
    loop {
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("an event in time")
            .expect("the feed is running");
        if !matches!(event, ChangeEvent::FlushAll | ChangeEvent::Notice(_)) {
            return event;
        }
    }
}

#[tokio::test]
async fn a_kept_change_is_announced_with_its_position() {
    let db = TestDatabase::create().await;
    let (_feed, mut events) = ChangeFeed::spawn(&db.config()).unwrap();
    expect_flush(&mut events).await;
    let user = new_user();

    settings_repo(&db)
        .put(user, "ui.theme", json!("dark"))
        .await;
    let notice = loop {
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("an event in time")
            .expect("the feed is running");
        if let ChangeEvent::Notice(notice) = event {
            break notice;
        }
    };
    let position: i64 = db
        .pool()
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT max(position) FROM shared.user_settings_history",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(notice.position, position);
    assert_eq!(notice.user_id, Some(user));
    assert_eq!(notice.key.as_deref(), Some("ui.theme"));
    assert_eq!(notice.op, domain::history::ChangeOp::Created);
}

pub(crate) async fn expect_flush(events: &mut Receiver<ChangeEvent>) {
    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("a flush in time")
        .expect("the feed is running");
    assert_eq!(event, ChangeEvent::FlushAll);
}

/// Backends of this database's change feed.
async fn feed_backends(db: &TestDatabase) -> i64 {
    let client = db.pool().get().await.unwrap();
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn feed_delivers_settings_and_preferences_changes() {
    let db = TestDatabase::create().await;
    let (_feed, mut events) = ChangeFeed::spawn(&db.config()).unwrap();
    expect_flush(&mut events).await; // listening from here on
    let user = new_user();

    settings_repo(&db)
        .put(user, "ui.theme", json!("dark"))
        .await;
    let settings_event = next_change(&mut events).await;
    preferences_repo(&db)
        .put(user, &PreferenceOverrides::default())
        .await;
    let preferences_event = next_change(&mut events).await;

    assert_eq!(
        settings_event,
        ChangeEvent::Settings {
            user_id: user,
            key: key("ui.theme")
        }
    );
    assert_eq!(
        preferences_event,
        ChangeEvent::Preferences { user_id: user }
    );
}

#[tokio::test]
async fn feed_reports_deletes() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    repo.put(user, "ui.theme", json!("dark")).await;
    let (_feed, mut events) = ChangeFeed::spawn(&db.config()).unwrap();
    expect_flush(&mut events).await;

    repo.delete(
        user,
        &key("ui.theme"),
        Precondition::Any,
        domain::history::ChangeOrigin::User,
    )
    .await
    .unwrap();

    assert_eq!(
        next_change(&mut events).await,
        ChangeEvent::Settings {
            user_id: user,
            key: key("ui.theme")
        }
    );
}

#[tokio::test]
async fn feed_flushes_and_keeps_listening_after_its_backend_is_killed() {
    let db = TestDatabase::create().await;
    let (feed, mut events) = ChangeFeed::spawn(&db.config()).unwrap();
    expect_flush(&mut events).await;

    let client = db.pool().get().await.unwrap();
    let killed: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%') AS killed",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);

    expect_flush(&mut events).await;
    assert_eq!(feed.reconnects(), 1);
    let user = new_user();
    settings_repo(&db)
        .put(user, "ui.theme", json!("dark"))
        .await;
    assert_eq!(
        next_change(&mut events).await,
        ChangeEvent::Settings {
            user_id: user,
            key: key("ui.theme")
        }
    );
}

#[tokio::test]
async fn feed_closes_its_connection_when_shut_down() {
    let db = TestDatabase::create().await;
    let (feed, mut events) = ChangeFeed::spawn(&db.config()).unwrap();
    expect_flush(&mut events).await;
    assert_eq!(feed_backends(&db).await, 1);

    feed.shutdown().await;

    // The server notices the goodbye asynchronously.
    let deadline = tokio::time::Instant::now() + WAIT;
    while feed_backends(&db).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "listener still open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn feed_stops_when_its_handle_is_dropped() {
    let db = TestDatabase::create().await;
    let (feed, mut events) = ChangeFeed::spawn(&db.config()).unwrap();
    expect_flush(&mut events).await;

    drop(feed);

    // The task ends and drops the sender: the receiver sees the channel closed.
    let closed = tokio::time::timeout(WAIT, events.recv()).await;
    assert!(matches!(
        closed,
        Ok(Err(tokio::sync::broadcast::error::RecvError::Closed))
    ));
}
