//! `EventHub`: this instance's open change streams, and the relay that hands them the changes
//! the change feed announces (every instance hears every commit, so a change made through
//! any instance reaches the streams of all).
//!
//! Each stream has a bounded queue: a reader that falls that far behind is dropped (its queue
//! closes and its stream ends; the client resumes from its last event), so one slow client
//! never holds memory without end. Streams per user and per instance are capped.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use adapter_http::events::{EventStreams, StreamItem, StreamRefusal, Subscription};
use adapter_postgres::ChangeEvent;
use domain::{UserId, devices::DeviceId, events::ChangeNotice};
use tokio::{
    sync::{broadcast, mpsc, watch},
    task::JoinHandle,
};

/// Items a stream may have waiting before it is dropped as too slow.
pub const STREAM_QUEUE: usize = 64;

/// The instance's open streams. Cheap to clone (shares the registry).
#[derive(Clone)]
pub struct EventHub {
    shared: Arc<Shared>,
}

struct Shared {
    streams: Mutex<Streams>,
    per_user: usize,
    per_instance: usize,
    shutdown: watch::Sender<bool>,
}

#[derive(Default)]
struct Streams {
    by_user: HashMap<UserId, Vec<Slot>>,
    total: usize,
    next_id: u64,
}

struct Slot {
    id: u64,
    device: Option<DeviceId>,
    items: mpsc::Sender<StreamItem>,
}

impl EventHub {
    /// A hub that lets each user open `per_user` streams and the instance `per_instance`.
    pub fn new(per_user: usize, per_instance: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                streams: Mutex::new(Streams::default()),
                per_user,
                per_instance,
                shutdown: watch::Sender::new(false),
            }),
        }
    }

    /// Hands `notice` to every stream it concerns; a stream whose queue is full is dropped.
    pub fn publish(&self, notice: &ChangeNotice) {
        let mut streams = self.lock();
        let Streams { by_user, total, .. } = &mut *streams;
        let mut deliver = |user: UserId, slots: &mut Vec<Slot>| {
            let before = slots.len();
            slots.retain(|slot| {
                if !notice.concerns(user, slot.device.as_ref()) {
                    return true;
                }
                slot.items
                    .try_send(StreamItem::Notice(notice.clone()))
                    .is_ok()
            });
            *total -= before - slots.len();
        };
        match notice.user_id {
            Some(user) => {
                if let Some(slots) = by_user.get_mut(&user) {
                    deliver(user, slots);
                }
            }
            None => {
                for (user, slots) in by_user.iter_mut() {
                    deliver(*user, slots);
                }
            }
        }
        by_user.retain(|_, slots| !slots.is_empty());
    }

    /// Tells every stream that changes may have been missed.
    pub fn resync_all(&self) {
        let mut streams = self.lock();
        let Streams { by_user, total, .. } = &mut *streams;
        for slots in by_user.values_mut() {
            let before = slots.len();
            slots.retain(|slot| slot.items.try_send(StreamItem::Resync).is_ok());
            *total -= before - slots.len();
        }
        by_user.retain(|_, slots| !slots.is_empty());
    }

    /// Ends every stream with `event: shutdown` (the instance is stopping).
    pub fn shut_down(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// Streams open on this instance.
    pub fn open_streams(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Streams> {
        // The registry holds no invariant a panic could break halfway.
        self.shared
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl EventStreams for EventHub {
    fn open(&self, user: UserId, device: Option<DeviceId>) -> Result<Subscription, StreamRefusal> {
        let (sender, receiver) = mpsc::channel(STREAM_QUEUE);
        let id = {
            let mut streams = self.lock();
            if streams.total >= self.shared.per_instance {
                return Err(StreamRefusal::ServiceFull);
            }
            let open = streams.by_user.get(&user).map_or(0, Vec::len);
            if open >= self.shared.per_user {
                return Err(StreamRefusal::UserFull {
                    limit: self.shared.per_user,
                });
            }
            streams.next_id += 1;
            let id = streams.next_id;
            streams.total += 1;
            streams.by_user.entry(user).or_default().push(Slot {
                id,
                device,
                items: sender,
            });
            id
        };
        let registration = Registration {
            hub: self.clone(),
            user,
            id,
        };
        Ok(Subscription::new(
            receiver,
            self.shared.shutdown.subscribe(),
            Box::new(registration),
        ))
    }
}

/// A stream's place in the hub, given up when the stream ends.
struct Registration {
    hub: EventHub,
    user: UserId,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut streams = self.hub.lock();
        let Streams { by_user, total, .. } = &mut *streams;
        if let Some(slots) = by_user.get_mut(&self.user) {
            let before = slots.len();
            slots.retain(|slot| slot.id != self.id);
            *total -= before - slots.len();
            if slots.is_empty() {
                by_user.remove(&self.user);
            }
        }
    }
}

/// Relays the change feed's announcements to `hub` until the feed stops. After a reconnect
/// of the feed, or when the relay fell behind it, every stream resyncs from the history.
pub fn spawn_relay(mut events: broadcast::Receiver<ChangeEvent>, hub: EventHub) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(ChangeEvent::Notice(notice)) => hub.publish(&notice),
                Ok(ChangeEvent::FlushAll) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    hub.resync_all();
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use domain::{
        events::{NoticeScope, NoticeStore},
        history::ChangeOp,
    };
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;

    fn user(n: u128) -> UserId {
        UserId::new(Uuid::from_u128(n))
    }

    fn notice(position: i64, of: Option<UserId>, scope: NoticeScope) -> ChangeNotice {
        ChangeNotice {
            position,
            user_id: of,
            store: NoticeStore::Settings,
            scope,
            device_id: None,
            key: Some("ui.theme".into()),
            op: ChangeOp::Updated,
            version: position,
            changed_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[tokio::test]
    async fn a_notice_reaches_its_users_streams_and_the_deployments_reach_all() {
        let hub = EventHub::new(8, 100);
        let mut alice = hub.open(user(1), None).unwrap();
        let mut bob = hub.open(user(2), None).unwrap();

        hub.publish(&notice(1, Some(user(1)), NoticeScope::User));
        hub.publish(&notice(2, None, NoticeScope::Deployment));

        for (stream, expected) in [(&mut alice, vec![1, 2]), (&mut bob, vec![2])] {
            let mut seen = Vec::new();
            while let Ok(StreamItem::Notice(n)) = stream.items.try_recv() {
                seen.push(n.position);
            }
            assert_eq!(seen, expected);
        }
    }

    #[tokio::test]
    async fn the_caps_refuse_and_a_closed_stream_gives_its_place_back() {
        let hub = EventHub::new(2, 3);
        let first = hub.open(user(1), None).unwrap();
        let _second = hub.open(user(1), None).unwrap();
        assert_eq!(
            hub.open(user(1), None).err(),
            Some(StreamRefusal::UserFull { limit: 2 })
        );
        let _third = hub.open(user(2), None).unwrap();
        assert_eq!(
            hub.open(user(3), None).err(),
            Some(StreamRefusal::ServiceFull)
        );

        drop(first);
        assert_eq!(hub.open_streams(), 2);
        assert!(hub.open(user(1), None).is_ok());
    }

    #[tokio::test]
    async fn a_reader_too_slow_to_keep_up_is_dropped_not_buffered() {
        let hub = EventHub::new(8, 100);
        let mut slow = hub.open(user(1), None).unwrap();
        for position in 0..=STREAM_QUEUE as i64 {
            hub.publish(&notice(position, Some(user(1)), NoticeScope::User));
        }
        assert_eq!(hub.open_streams(), 0, "dropped once its queue was full");
        let mut received = 0;
        while slow.items.recv().await.is_some() {
            received += 1;
        }
        assert_eq!(
            received, STREAM_QUEUE,
            "what was queued is delivered, then the end"
        );
    }

    #[tokio::test]
    async fn shutting_down_tells_every_stream() {
        let hub = EventHub::new(8, 100);
        let mut stream = hub.open(user(1), None).unwrap();
        hub.shut_down();
        assert!(
            *stream
                .shutdown
                .wait_for(|stopping| *stopping)
                .await
                .unwrap()
        );
    }
}
