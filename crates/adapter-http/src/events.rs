//! The ports of the live change stream: [`EventStreams`] (the instance's hub that hands each
//! open stream the changes it announces) and what the stream handler needs besides
//! ([`EventsApi`]).

use std::sync::Arc;

use domain::{
    UserId,
    devices::DeviceId,
    events::{ChangeLog, ChangeNotice, EventTickets},
};
use tokio::sync::{mpsc, watch};

/// What a stream is handed.
#[derive(Clone, Debug)]
pub enum StreamItem {
    /// A committed change (the stream decides whether it concerns it).
    Notice(ChangeNotice),
    /// Changes may have been missed (the instance's feed reconnected or fell behind): the
    /// stream replays from the history since the last change it sent.
    Resync,
}

/// Why a stream was not opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamRefusal {
    /// The user has `limit` streams open (on this instance).
    UserFull {
        /// Streams allowed per user.
        limit: usize,
    },
    /// The instance serves as many streams as it may.
    ServiceFull,
}

/// An open stream's end of the hub: a bounded queue of items (a reader too slow to keep up is
/// dropped: its queue closes), and the instance's shutdown signal. Dropping it closes the
/// stream's place in the hub.
pub struct Subscription {
    /// The items, in order.
    pub items: mpsc::Receiver<StreamItem>,
    /// `true` once the instance is stopping.
    pub shutdown: watch::Receiver<bool>,
    _registration: Box<dyn Send + Sync>,
}

impl Subscription {
    /// A subscription whose `registration` is dropped with it (the hub's bookkeeping).
    pub fn new(
        items: mpsc::Receiver<StreamItem>,
        shutdown: watch::Receiver<bool>,
        registration: Box<dyn Send + Sync>,
    ) -> Self {
        Self {
            items,
            shutdown,
            _registration: registration,
        }
    }
}

/// The instance's hub of open streams.
pub trait EventStreams: Send + Sync {
    /// Registers a stream of `user` (of `device`, when named), within the per-user and the
    /// instance's caps.
    ///
    /// # Errors
    /// [`StreamRefusal`] when a cap is reached.
    fn open(&self, user: UserId, device: Option<DeviceId>) -> Result<Subscription, StreamRefusal>;
}

/// What the stream routes need.
#[derive(Clone)]
pub struct EventsApi {
    /// The hub.
    pub streams: Arc<dyn EventStreams>,
    /// Tickets for browsers.
    pub tickets: Arc<dyn EventTickets>,
    /// The history, for replays.
    pub log: Arc<dyn ChangeLog>,
    /// A comment this often keeps proxies from closing an idle stream (and finds a client
    /// that went away: its place is given back at the first write that fails).
    pub keep_alive: std::time::Duration,
}
