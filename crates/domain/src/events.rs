//! The live change stream: each committed change of a user's data (and of the deployment's
//! defaults) is announced, without its value, to the user's open streams on every instance.
//!
//! A change is named by its position in the history (see [`crate::history`]); a client that
//! reconnects sends the last position it saw and is given what it missed, from the history,
//! or told to re-read everything when the history no longer reaches back that far.

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;

use crate::{devices::DeviceId, error::RepositoryError, history::ChangeOp, ids::UserId};

/// Which kind of value changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeStore {
    /// A setting (of the user, a device).
    Settings,
    /// The preferences (of the user, a device).
    Preferences,
    /// A deployment default (a setting or the preferences).
    Defaults,
}

/// Whose layer changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeScope {
    /// The user's own.
    User,
    /// One of the user's devices'.
    Device,
    /// The deployment's, for every user.
    Deployment,
}

/// One committed change, as streams announce it: never its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangeNotice {
    /// Its position in the history (the stream's event id).
    #[serde(skip)]
    pub position: i64,
    /// The user whose data changed; `None` for the deployment's.
    #[serde(skip)]
    pub user_id: Option<UserId>,
    /// Which kind of value.
    pub store: NoticeStore,
    /// Whose layer.
    pub scope: NoticeScope,
    /// The device, for a device's layer.
    pub device_id: Option<DeviceId>,
    /// The setting's key (`None` for preferences).
    pub key: Option<String>,
    /// What the change did.
    pub op: ChangeOp,
    /// The version it gave.
    pub version: i64,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
}

impl ChangeNotice {
    /// Whether a stream of `user` (of `device`, when one is named) announces this change:
    /// the user's own layer, the named device's, and the deployment's.
    pub fn concerns(&self, user: UserId, device: Option<&DeviceId>) -> bool {
        match self.scope {
            NoticeScope::Deployment => true,
            NoticeScope::User => self.user_id == Some(user),
            NoticeScope::Device => {
                self.user_id == Some(user) && device.is_some() && self.device_id.as_ref() == device
            }
        }
    }
}

/// What a reconnecting stream is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replay {
    /// Every change after the position, oldest first.
    Missed(Vec<ChangeNotice>),
    /// The history no longer reaches back to the position (or never held it): re-read
    /// everything.
    Reset,
}

/// The changes after a position, from the history.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ChangeLog: Send + Sync {
    /// The changes a stream of `user` (of `device`) announces after `position`, oldest first,
    /// at most `limit` (more: [`Replay::Reset`]).
    async fn since(
        &self,
        user: UserId,
        device: Option<DeviceId>,
        position: i64,
        limit: u32,
    ) -> Result<Replay, RepositoryError>;
}

/// What a redeemed ticket stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TicketHolder {
    /// The user the ticket was issued to.
    pub user_id: UserId,
    /// When the token it was issued with expires.
    pub token_expires_at: OffsetDateTime,
}

/// Single-use tickets that open a stream without a bearer token (a browser's `EventSource`
/// cannot send one). Shared by every instance: a ticket issued by one opens a stream on any.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventTickets: Send + Sync {
    /// A new ticket for `holder`, valid for `lifetime_seconds`.
    async fn issue(
        &self,
        holder: TicketHolder,
        lifetime_seconds: u32,
    ) -> Result<String, RepositoryError>;

    /// Who the ticket was issued to, if it is valid; it is then used up.
    async fn redeem(&self, ticket: &str) -> Result<Option<TicketHolder>, RepositoryError>;
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn notice(scope: NoticeScope, user: Option<u128>, device: Option<&str>) -> ChangeNotice {
        ChangeNotice {
            position: 1,
            user_id: user.map(|u| UserId::new(Uuid::from_u128(u))),
            store: NoticeStore::Settings,
            scope,
            device_id: device.map(|d| DeviceId::parse(d).unwrap()),
            key: Some("ui.theme".into()),
            op: ChangeOp::Updated,
            version: 3,
            changed_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_stream_announces_its_users_layer_its_device_and_the_deployment() {
        let alice = UserId::new(Uuid::from_u128(1));
        let tv = DeviceId::parse("tv").unwrap();
        let cases = [
            (notice(NoticeScope::User, Some(1), None), None, true),
            (notice(NoticeScope::User, Some(2), None), None, false),
            (
                notice(NoticeScope::Device, Some(1), Some("tv")),
                Some(&tv),
                true,
            ),
            (
                notice(NoticeScope::Device, Some(1), Some("tv")),
                None,
                false,
            ),
            (
                notice(NoticeScope::Device, Some(1), Some("phone")),
                Some(&tv),
                false,
            ),
            (
                notice(NoticeScope::Device, Some(2), Some("tv")),
                Some(&tv),
                false,
            ),
            (notice(NoticeScope::Deployment, None, None), None, true),
        ];
        for (notice, device, expected) in cases {
            assert_eq!(
                notice.concerns(alice, device),
                expected,
                "{notice:?} {device:?}"
            );
        }
    }
}
