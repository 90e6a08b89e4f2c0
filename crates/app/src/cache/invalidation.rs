//! Applies the store's change feed to the caches, so a write through any instance is seen at
//! once by every instance: the named entry on a change, everything on `FlushAll` (the feed
//! (re)connected and may have missed changes) and when this listener fell behind the feed.

use std::sync::Arc;

use adapter_postgres::ChangeEvent;
use tokio::{
    sync::broadcast::{Receiver, error::RecvError},
    task::JoinHandle,
};

use super::{defaults::DefaultsCache, preferences::PreferencesCache, settings::SettingsCache};

/// The caches of this instance (a disabled cache is `None`).
#[derive(Clone, Default)]
pub struct Caches {
    /// Settings and listings.
    pub settings: Option<Arc<SettingsCache>>,
    /// Preferences.
    pub preferences: Option<Arc<PreferencesCache>>,
    /// The deployment layer.
    pub defaults: Option<Arc<DefaultsCache>>,
}

impl Caches {
    /// Invalidates what `event` names.
    pub async fn apply(&self, event: &ChangeEvent) {
        match event {
            ChangeEvent::Settings { user_id, key } => {
                if let Some(settings) = &self.settings {
                    settings.setting_changed(*user_id, key).await;
                }
            }
            // Device overrides are not cached, but the user's rendered views include them.
            ChangeEvent::DeviceSettings { user_id, .. }
            | ChangeEvent::DevicePreferences { user_id, .. } => {
                if let Some(settings) = &self.settings {
                    settings.user_changed(*user_id);
                }
            }
            ChangeEvent::Preferences { user_id } => {
                if let Some(preferences) = &self.preferences {
                    preferences.preferences_changed(*user_id).await;
                }
            }
            ChangeEvent::Defaults => {
                if let Some(defaults) = &self.defaults {
                    defaults.invalidate();
                }
            }
            ChangeEvent::FlushAll => self.flush(),
            // The announcement of a kept change, for the streams: the change itself has its
            // own notification above.
            ChangeEvent::Notice(_) => {}
        }
    }

    /// Drops everything.
    pub fn flush(&self) {
        if let Some(settings) = &self.settings {
            settings.flush();
        }
        if let Some(preferences) = &self.preferences {
            preferences.flush();
        }
        if let Some(defaults) = &self.defaults {
            defaults.invalidate();
        }
    }
}

/// Applies every event of `events` to `caches` until the feed is gone.
pub fn spawn_invalidation(mut events: Receiver<ChangeEvent>, caches: Caches) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => caches.apply(&event).await,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "cache invalidation fell behind the change feed; flushing"
                    );
                    caches.flush();
                }
                Err(RecvError::Closed) => {
                    tracing::debug!("change feed closed; cache invalidation stops");
                    return;
                }
            }
        }
    })
}
