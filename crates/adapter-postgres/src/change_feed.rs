//! `ChangeFeed`: change notifications from PostgreSQL as typed events, for invalidating the
//! caches of every instance.
//!
//! The triggers of migration V2 send, for every inserted, updated or deleted row of
//! `shared.user_settings` and `shared.user_preferences`, a notification on channel
//! [`CHANNEL`] (`user_settings_changes`) with the JSON payload
//!
//! ```json
//! {"store": "settings" | "preferences", "user_id": "<uuid>", "key": "<key>" | null,
//!  "op": "INSERT" | "UPDATE" | "DELETE"}
//! ```
//!
//! the trigger of V7 sends `{"store": "defaults", "user_id": null, "key": …}` for every
//! change of the deployment layer `shared.deployment_settings`, and the trigger of V8 sends
//! `{"store": "device_settings", "user_id", "device_id", "key", "op"}` for every changed
//! override of a device (`shared.user_device_settings`).
//!
//! The history triggers of V12 announce every kept change on [`EVENTS_CHANNEL`]
//! (`user_settings_events`) as `{"position", "user_id", "store", "scope", "device_id", "key",
//! "op", "version", "changed_at"}`: the feed publishes them as [`ChangeEvent::Notice`], for
//! the live change streams.
//!
//! The feed `LISTEN`s on a dedicated connection (not from the pool: a pooled connection is
//! shared and recycled, and a listener must stay open) and publishes [`ChangeEvent`]s on a
//! `tokio::sync::broadcast` channel, so several caches can subscribe. Notifications sent
//! while the feed is disconnected are lost, so after every (re)connect it publishes
//! [`ChangeEvent::FlushAll`]; a subscriber that lags behind the channel's capacity gets
//! `RecvError::Lagged` and must flush everything too.
//!
//! Connection failures are retried forever with capped exponential backoff (100 ms doubling
//! to 5 s, jittered). The feed stops when its [`ChangeFeed`] handle is dropped or shut down.

use std::{
    future::poll_fn,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use domain::{
    UserId,
    devices::DeviceId,
    events::{ChangeNotice, NoticeScope, NoticeStore},
    history::ChangeOp,
    settings::SettingKey,
};
use serde_json::Value;
use tokio::{
    sync::{broadcast, oneshot},
    task::JoinHandle,
};
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{PgConfig, PgConfigError};

/// The notification channel the triggers send on.
pub const CHANNEL: &str = "user_settings_changes";
/// The channel the history's triggers announce each kept change on.
pub const EVENTS_CHANNEL: &str = "user_settings_events";

const LISTEN: &str = "LISTEN user_settings_changes; LISTEN user_settings_events";
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Bound on the start-up handshake and `LISTEN` when the config sets no connect timeout.
const DEFAULT_HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// Events a subscriber may fall behind before it gets `RecvError::Lagged`.
const DEFAULT_CAPACITY: usize = 1024;

/// What changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeEvent {
    /// One setting of one user was inserted, updated or deleted.
    Settings {
        /// Owner.
        user_id: UserId,
        /// Name.
        key: SettingKey,
    },
    /// One device's override of one setting was inserted, updated or deleted.
    DeviceSettings {
        /// Owner.
        user_id: UserId,
        /// The device.
        device_id: DeviceId,
        /// Name.
        key: SettingKey,
    },
    /// One user's preferences row was inserted, updated or deleted.
    Preferences {
        /// Owner.
        user_id: UserId,
    },
    /// What one of the user's devices overrides of their preferences changed.
    DevicePreferences {
        /// Owner.
        user_id: UserId,
        /// The device.
        device_id: DeviceId,
    },
    /// The deployment layer changed (it concerns every user).
    Defaults,
    /// A change was kept in the history (V12): what the live streams announce.
    Notice(ChangeNotice),
    /// Changes may have been missed (the feed (re)connected, or a payload was unreadable):
    /// drop every cached entry.
    FlushAll,
}

impl ChangeEvent {
    /// Parses a notification payload; `None` when it is not one the triggers send.
    pub fn from_payload(payload: &str) -> Option<Self> {
        let payload: Value = serde_json::from_str(payload).ok()?;
        let store = payload.get("store")?.as_str()?;
        if store == "defaults" {
            return Some(Self::Defaults);
        }
        let user_id = UserId::new(payload.get("user_id")?.as_str()?.parse().ok()?);
        match store {
            "settings" => {
                let key = SettingKey::parse(payload.get("key")?.as_str()?).ok()?;
                Some(Self::Settings { user_id, key })
            }
            "device_settings" => Some(Self::DeviceSettings {
                user_id,
                device_id: DeviceId::parse(payload.get("device_id")?.as_str()?).ok()?,
                key: SettingKey::parse(payload.get("key")?.as_str()?).ok()?,
            }),
            "preferences" => Some(Self::Preferences { user_id }),
            "device_preferences" => Some(Self::DevicePreferences {
                user_id,
                device_id: DeviceId::parse(payload.get("device_id")?.as_str()?).ok()?,
            }),
            _ => None,
        }
    }
}

/// Handle of a running change feed. Dropping it stops the feed.
#[derive(Debug)]
pub struct ChangeFeed {
    events: broadcast::Sender<ChangeEvent>,
    reconnects: Arc<AtomicU64>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ChangeFeed {
    /// Starts listening with the connection settings of `config`, TLS included (its pool
    /// settings are not used). Returns the handle and a first subscriber, which also receives the
    /// [`ChangeEvent::FlushAll`] of the first connect. Must be called within a Tokio runtime.
    ///
    /// The session's `application_name` is `config.application_name` + `-change-feed`.
    ///
    /// # Errors
    /// [`PgConfigError`] when the URL or its TLS parameters are unusable. An unreachable
    /// database is not an error: the feed keeps retrying.
    pub fn spawn(
        config: &PgConfig,
    ) -> Result<(Self, broadcast::Receiver<ChangeEvent>), PgConfigError> {
        let (mut driver, tls) = config.connection()?;
        driver.application_name(format!("{}-change-feed", config.application_name));
        let (events, receiver) = broadcast::channel(DEFAULT_CAPACITY);
        let reconnects = Arc::new(AtomicU64::new(0));
        let (shutdown, shutdown_signal) = oneshot::channel();
        let task = tokio::spawn(run(
            driver,
            tls,
            events.clone(),
            Arc::clone(&reconnects),
            shutdown_signal,
        ));
        let feed = Self {
            events,
            reconnects,
            shutdown: Some(shutdown),
            task: Some(task),
        };
        Ok((feed, receiver))
    }

    /// Another subscriber; it sees events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.events.subscribe()
    }

    /// How many times the feed re-established its `LISTEN` after losing it.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// The reconnect counter itself, for a metrics gauge that outlives a borrow of the feed.
    pub fn reconnect_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.reconnects)
    }

    /// Stops the feed and waits until its connection is closed.
    pub async fn shutdown(mut self) {
        self.shutdown.take();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        // Closing the signal channel tells the task to stop; it closes its connection itself.
        self.shutdown.take();
    }
}

/// How one connection ended.
enum SessionEnd {
    Shutdown,
    Lost(String),
}

async fn run(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    events: broadcast::Sender<ChangeEvent>,
    reconnects: Arc<AtomicU64>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut backoff = MIN_BACKOFF;
    let mut listened_before = false;
    loop {
        let on_listening = || {
            if listened_before {
                reconnects.fetch_add(1, Ordering::Relaxed);
            }
            // No receiver is fine: subscribers may come later.
            let _ = events.send(ChangeEvent::FlushAll);
        };
        let ended = session(&config, &tls, &events, &mut shutdown, on_listening).await;
        match ended {
            (SessionEnd::Shutdown, _) => return,
            (SessionEnd::Lost(reason), listened) => {
                if listened {
                    listened_before = true;
                    backoff = MIN_BACKOFF;
                }
                tracing::warn!(
                    error = %reason,
                    retry_in_ms = backoff.as_millis() as u64,
                    "change feed lost its database connection"
                );
            }
        }
        tokio::select! {
            _ = &mut shutdown => return,
            () = tokio::time::sleep(jittered(backoff)) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Connects, listens and relays notifications until the connection fails or the feed is shut
/// down. Returns how it ended and whether `LISTEN` succeeded.
async fn session(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    events: &broadcast::Sender<ChangeEvent>,
    shutdown: &mut oneshot::Receiver<()>,
    on_listening: impl FnOnce(),
) -> (SessionEnd, bool) {
    // The driver bounds only the TCP connect; a server that accepts and never answers would
    // stall the start-up handshake and LISTEN, so both are bounded here.
    let handshake_limit = config
        .get_connect_timeout()
        .map_or(DEFAULT_HANDSHAKE_LIMIT, |t| *t * 2);
    let connected = tokio::select! {
        _ = &mut *shutdown => return (SessionEnd::Shutdown, false),
        connected = tokio::time::timeout(handshake_limit, config.connect(tls.clone())) => connected,
    };
    let (client, mut connection) = match connected {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return (SessionEnd::Lost(e.to_string()), false),
        Err(_) => return (SessionEnd::Lost("connecting timed out".to_owned()), false),
    };

    // The connection makes progress only while polled, so poll it while LISTEN runs.
    {
        let listen = client.batch_execute(LISTEN);
        tokio::pin!(listen);
        let deadline = tokio::time::sleep(handshake_limit);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut *shutdown => return (SessionEnd::Shutdown, false),
                () = &mut deadline => {
                    return (SessionEnd::Lost("LISTEN timed out".to_owned()), false);
                }
                done = &mut listen => match done {
                    Ok(()) => break,
                    Err(e) => return (SessionEnd::Lost(e.to_string()), false),
                },
                message = poll_fn(|cx| connection.poll_message(cx)) => {
                    if let Err(reason) = relay(message, events) {
                        return (SessionEnd::Lost(reason), false);
                    }
                }
            }
        }
    }
    on_listening();

    loop {
        tokio::select! {
            _ = &mut *shutdown => {
                // Dropping the client makes the connection send Terminate and finish; give it
                // a moment so the server sees a clean goodbye.
                drop(client);
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while let Some(Ok(_)) = poll_fn(|cx| connection.poll_message(cx)).await {}
                })
                .await;
                return (SessionEnd::Shutdown, true);
            }
            message = poll_fn(|cx| connection.poll_message(cx)) => {
                if let Err(reason) = relay(message, events) {
                    return (SessionEnd::Lost(reason), true);
                }
            }
        }
    }
}

/// Publishes one message from the server; `Err` when the connection is gone.
fn relay(
    message: Option<Result<AsyncMessage, tokio_postgres::Error>>,
    events: &broadcast::Sender<ChangeEvent>,
) -> Result<(), String> {
    match message {
        Some(Ok(AsyncMessage::Notification(notification))) => {
            if notification.channel() == EVENTS_CHANNEL {
                match notice_from_payload(notification.payload()) {
                    Some(notice) => {
                        let _ = events.send(ChangeEvent::Notice(notice));
                    }
                    None => tracing::warn!("unreadable change announcement; ignored"),
                }
            } else if notification.channel() == CHANNEL {
                let event =
                    ChangeEvent::from_payload(notification.payload()).unwrap_or_else(|| {
                        tracing::warn!("unreadable change notification; flushing caches");
                        ChangeEvent::FlushAll
                    });
                let _ = events.send(event);
            }
            Ok(())
        }
        Some(Ok(AsyncMessage::Notice(notice))) => {
            tracing::debug!(notice = notice.message(), "change feed connection notice");
            Ok(())
        }
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("connection closed".to_owned()),
    }
}

/// Parses an announcement of V12; `None` when it is not one the triggers send.
pub fn notice_from_payload(payload: &str) -> Option<ChangeNotice> {
    let payload: Value = serde_json::from_str(payload).ok()?;
    let text = |name: &str| payload.get(name).and_then(Value::as_str);
    let user_id = match payload.get("user_id")? {
        Value::Null => None,
        id => Some(UserId::new(id.as_str()?.parse().ok()?)),
    };
    let store = match text("store")? {
        "settings" => NoticeStore::Settings,
        "preferences" => NoticeStore::Preferences,
        "defaults" => NoticeStore::Defaults,
        _ => return None,
    };
    let scope = match text("scope")? {
        "user" => NoticeScope::User,
        "device" => NoticeScope::Device,
        "deployment" => NoticeScope::Deployment,
        _ => return None,
    };
    let changed_at = text("changed_at")?;
    Some(ChangeNotice {
        position: payload.get("position")?.as_i64()?,
        user_id,
        store,
        scope,
        device_id: text("device_id").map(DeviceId::parse).transpose().ok()?,
        key: text("key").map(str::to_owned),
        op: ChangeOp::parse(text("op")?)?,
        version: payload.get("version")?.as_i64()?,
        changed_at: parse_timestamp(changed_at)?,
    })
}

/// PostgreSQL's JSON rendering of a `timestamptz` (`2026-12-04T10:00:00.123456+00:00`).
fn parse_timestamp(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// Between half and all of `backoff`, so instances that lost the database together do not
/// reconnect in lockstep.
fn jittered(backoff: Duration) -> Duration {
    // A v4 UUID is 122 random bits: enough randomness without another dependency.
    let fraction = (uuid::Uuid::new_v4().as_u128() % 1024) as u32;
    backoff / 2 + (backoff / 2) * fraction / 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "6f1c1e52-3b0e-4bd5-9c56-1d9a8f0f6a10";

    #[test]
    fn an_announcement_parses_as_postgresql_renders_it() {
        let payload = format!(
            r#"{{"position" : 42, "user_id" : "{USER}", "store" : "settings", "scope" : "device", "device_id" : "tv", "key" : "ui.theme", "op" : "restored", "version" : 7, "changed_at" : "2026-12-04T10:00:00.123456+00:00"}}"#
        );
        let notice = notice_from_payload(&payload).unwrap();
        assert_eq!(notice.position, 42);
        assert_eq!(notice.user_id, Some(UserId::new(USER.parse().unwrap())));
        assert_eq!(
            (notice.store, notice.scope),
            (NoticeStore::Settings, NoticeScope::Device)
        );
        assert_eq!(notice.device_id.unwrap().as_str(), "tv");
        assert_eq!(notice.op, ChangeOp::Restored);
        assert_eq!(
            notice.changed_at,
            time::macros::datetime!(2026-12-04 10:00:00.123456 UTC)
        );
        let deployment = r#"{"position": 5, "user_id": null, "store": "defaults", "scope": "deployment", "device_id": null, "key": null, "op": "updated", "version": 2, "changed_at": "2026-12-04T10:00:00+00:00"}"#;
        assert_eq!(notice_from_payload(deployment).unwrap().user_id, None);
        assert_eq!(notice_from_payload(r#"{"position": 5}"#), None);
    }

    #[test]
    fn settings_payload_parses() {
        let payload =
            format!(r#"{{"store":"settings","user_id":"{USER}","key":"ui.theme","op":"UPDATE"}}"#);
        assert_eq!(
            ChangeEvent::from_payload(&payload),
            Some(ChangeEvent::Settings {
                user_id: UserId::new(USER.parse().unwrap()),
                key: SettingKey::parse("ui.theme").unwrap(),
            })
        );
    }

    #[test]
    fn preferences_payload_parses() {
        let payload =
            format!(r#"{{"store":"preferences","user_id":"{USER}","key":null,"op":"INSERT"}}"#);
        assert_eq!(
            ChangeEvent::from_payload(&payload),
            Some(ChangeEvent::Preferences {
                user_id: UserId::new(USER.parse().unwrap())
            })
        );
    }

    #[test]
    fn device_settings_payload_parses() {
        let payload = format!(
            r#"{{"store":"device_settings","user_id":"{USER}","device_id":"tv.Living-1","key":"ui.theme","op":"DELETE"}}"#
        );
        assert_eq!(
            ChangeEvent::from_payload(&payload),
            Some(ChangeEvent::DeviceSettings {
                user_id: UserId::new(USER.parse().unwrap()),
                device_id: DeviceId::parse("tv.Living-1").unwrap(),
                key: SettingKey::parse("ui.theme").unwrap(),
            })
        );
    }

    #[test]
    fn device_preferences_payload_parses() {
        let payload = format!(
            r#"{{"store":"device_preferences","user_id":"{USER}","device_id":"tv","op":"DELETE"}}"#
        );
        assert_eq!(
            ChangeEvent::from_payload(&payload),
            Some(ChangeEvent::DevicePreferences {
                user_id: UserId::new(USER.parse().unwrap()),
                device_id: DeviceId::parse("tv").unwrap(),
            })
        );
    }

    #[test]
    fn defaults_payload_parses_without_a_user() {
        let payload = r#"{"store":"defaults","user_id":null,"key":"ui.a","op":"UPDATE"}"#;
        assert_eq!(
            ChangeEvent::from_payload(payload),
            Some(ChangeEvent::Defaults)
        );
    }

    #[test]
    fn foreign_payloads_are_rejected() {
        for payload in [
            "not json",
            r#"{"store":"other","user_id":"6f1c1e52-3b0e-4bd5-9c56-1d9a8f0f6a10"}"#,
            r#"{"store":"settings","user_id":"nope","key":"a"}"#,
            r#"{"store":"settings","user_id":"6f1c1e52-3b0e-4bd5-9c56-1d9a8f0f6a10","key":"A B"}"#,
            r#"{"store":"device_settings","user_id":"6f1c1e52-3b0e-4bd5-9c56-1d9a8f0f6a10","key":"a"}"#,
            r#"{"store":"device_settings","user_id":"6f1c1e52-3b0e-4bd5-9c56-1d9a8f0f6a10","device_id":"a b","key":"a"}"#,
        ] {
            assert_eq!(ChangeEvent::from_payload(payload), None, "{payload}");
        }
    }

    #[test]
    fn jitter_stays_within_half_and_full_backoff() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(4));
            assert!(d >= Duration::from_secs(2) && d <= Duration::from_secs(4));
        }
    }
}
