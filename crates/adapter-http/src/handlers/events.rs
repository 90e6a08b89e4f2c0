//! `GET /api/v1/users/me/events`: the live change stream (Server-Sent Events), and
//! `POST /api/v1/users/me/events/tickets`: single-use tickets that open one from a browser.
//!
//! A stream announces each committed change of the user's own layer, of the named device and
//! of the deployment, as `id: <position>`, `event: change`, `data: {…}` (never a value). A
//! client that reconnects with `Last-Event-ID` first gets what it missed, from the history;
//! `event: reset` when the history no longer reaches back that far. A comment every 15 s
//! keeps proxies from closing an idle stream; `event: token-expired` ends it when the token
//! expires, `event: shutdown` when the instance stops.

use std::{num::NonZeroU32, pin::Pin, time::Duration};

use actix_web::{
    FromRequest, HttpRequest, HttpResponse,
    http::header::{self, HeaderValue},
    web::{Bytes, Data, Query},
};
use domain::{
    UserId,
    devices::DeviceId,
    events::{ChangeNotice, Replay, TicketHolder},
};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::{
    auth::User,
    error::ApiError,
    events::{StreamItem, StreamRefusal, Subscription},
    openapi::docs,
    rate_limit::{AccessKind, count_more},
    state::ApiState,
};

/// How long a ticket opens a stream.
pub const TICKET_LIFETIME_SECONDS: u32 = 60;
/// The most missed changes a reconnecting stream is given; beyond, `reset`.
const REPLAY_LIMIT: u32 = 1000;

/// Which stream to open.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Also announce the changes of this device's own layer.
    pub device: Option<String>,
    /// A ticket from `POST /api/v1/users/me/events/tickets`, instead of a bearer token.
    pub ticket: Option<String>,
}

/// A ticket that opens one stream.
#[derive(Serialize, ToSchema)]
pub struct Ticket {
    /// Pass it as `?ticket=` to `GET /api/v1/users/me/events` within `expires_in` seconds;
    /// it opens one stream.
    ticket: String,
    /// Seconds it stays valid.
    expires_in: u32,
}

#[utoipa::path(
    post, path = "/api/v1/users/me/events/tickets", tag = "events",
    responses(
        (status = 201, description = "A single-use ticket, valid for 60 s, bound to the caller", body = Ticket),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Issues a single-use ticket that opens the caller's change stream without a bearer token
/// (a browser's `EventSource` cannot send one). The stream ends when the token it was issued
/// with expires.
#[tracing::instrument(skip_all)]
pub async fn ticket(state: Data<ApiState>, User(user): User) -> Result<HttpResponse, ApiError> {
    let holder = TicketHolder {
        user_id: user.user_id,
        token_expires_at: user.expires_at,
    };
    let ticket = state
        .events
        .tickets
        .issue(holder, TICKET_LIFETIME_SECONDS)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Ticket {
            ticket,
            expires_in: TICKET_LIFETIME_SECONDS,
        }))
}

#[utoipa::path(
    get, path = "/api/v1/users/me/events", tag = "events",
    params(
        EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event received: what was missed is replayed first"),
    ),
    responses(
        (status = 200, description = "A stream of `change` events (`text/event-stream`); `reset`, `token-expired`, `shutdown`", content_type = "text/event-stream", body = String),
        (status = 401, response = docs::Unauthorized),
        (status = 422, response = docs::Unprocessable),
        (status = 429, response = docs::TooManyRequests),
        (status = 503, response = docs::Unavailable),
    ),
    security(("bearer" = []))
)]
/// Opens the caller's live change stream (Server-Sent Events). Every committed change of the
/// caller's settings and preferences, of the named device's and of the deployment's defaults
/// is one `change` event, without its value.
#[tracing::instrument(skip_all)]
pub async fn stream(
    req: HttpRequest,
    state: Data<ApiState>,
    query: Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let holder = match &query.ticket {
        Some(ticket) => {
            let holder = state.events.tickets.redeem(ticket).await?.ok_or_else(|| {
                ApiError::Unauthorized("the ticket is unknown, used or expired".into())
            })?;
            // A bearer request was counted by the middleware; a ticket's is counted here.
            count_more(&req, holder.user_id, AccessKind::Read, NonZeroU32::MIN).await?;
            holder
        }
        None => {
            let User(user) = User::extract(&req).await?;
            TicketHolder {
                user_id: user.user_id,
                token_expires_at: user.expires_at,
            }
        }
    };
    let device = query
        .device
        .as_deref()
        .map(DeviceId::parse)
        .transpose()
        .map_err(|e| {
            ApiError::Validation(domain::ValidationErrors::single(e.prefixed("device")))
        })?;
    let last_seen = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let subscription = state
        .events
        .streams
        .open(holder.user_id, device.clone())
        .map_err(|refusal| match refusal {
            StreamRefusal::UserFull { limit } => ApiError::TooManyStreams { limit },
            StreamRefusal::ServiceFull => ApiError::StreamsUnavailable,
        })?;
    let stream = EventStream {
        user: holder.user_id,
        device,
        expires_at: holder.token_expires_at,
        last_seen,
        subscription,
        log: state.events.log.clone(),
        keep_alive: state.events.keep_alive,
    };
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        ))
        .insert_header((header::CACHE_CONTROL, "no-cache, no-store"))
        // Proxies that buffer (nginx) would hold the events back.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(stream.into_body()))
}

/// One open stream.
struct EventStream {
    user: UserId,
    device: Option<DeviceId>,
    expires_at: OffsetDateTime,
    /// The last position sent (or the client's `Last-Event-ID`).
    last_seen: Option<i64>,
    subscription: Subscription,
    log: std::sync::Arc<dyn domain::events::ChangeLog>,
    keep_alive: Duration,
}

type Body = Pin<Box<dyn Stream<Item = Result<Bytes, actix_web::Error>>>>;

impl EventStream {
    /// The stream's bytes: a first comment (so the client sees the stream open), the replay,
    /// then live events until the token expires, the instance stops or the client goes.
    fn into_body(self) -> Body {
        Box::pin(futures_util::stream::unfold(
            (self, Stage::Opening),
            |(mut stream, stage)| async move {
                let (bytes, next) = stream.step(stage).await?;
                Some((Ok(bytes), (stream, next)))
            },
        ))
    }

    /// The next chunk and the stage after it; `None` ends the stream.
    async fn step(&mut self, stage: Stage) -> Option<(Bytes, Stage)> {
        match stage {
            Stage::Opening => {
                let replay = match self.last_seen {
                    Some(position) => self.replay(position).await,
                    None => String::new(),
                };
                // `retry`: how long an EventSource waits before it reconnects.
                Some((
                    Bytes::from(format!("retry: 2000\n: open\n\n{replay}")),
                    Stage::Live,
                ))
            }
            Stage::Live => Some(self.live().await),
            Stage::Done => None,
        }
    }

    async fn live(&mut self) -> (Bytes, Stage) {
        let expiry = (self.expires_at - OffsetDateTime::now_utc())
            .try_into()
            .unwrap_or(Duration::ZERO);
        let mut shutdown = self.subscription.shutdown.clone();
        loop {
            tokio::select! {
                item = self.subscription.items.recv() => match item {
                    Some(StreamItem::Notice(notice)) => {
                        if self.last_seen.is_some_and(|seen| notice.position <= seen) {
                            continue;
                        }
                        if !notice.concerns(self.user, self.device.as_ref()) {
                            continue;
                        }
                        self.last_seen = Some(notice.position);
                        return (Bytes::from(change_event(&notice)), Stage::Live);
                    }
                    Some(StreamItem::Resync) => {
                        // The instance may have missed changes: what the history holds since
                        // the last one sent.
                        let replay = match self.last_seen {
                            Some(position) => self.replay(position).await,
                            None => String::new(),
                        };
                        if replay.is_empty() {
                            continue;
                        }
                        return (Bytes::from(replay), Stage::Live);
                    }
                    // Dropped by the hub (too slow a reader): the client reconnects and
                    // resumes from its last event.
                    None => return (Bytes::new(), Stage::Done),
                },
                () = tokio::time::sleep(self.keep_alive) => {
                    return (Bytes::from_static(b": keep-alive\n\n"), Stage::Live);
                }
                () = tokio::time::sleep(expiry) => {
                    return (Bytes::from_static(b"event: token-expired\ndata: {}\n\n"), Stage::Done);
                }
                _ = shutdown.wait_for(|stopping| *stopping) => {
                    return (Bytes::from_static(b"event: shutdown\ndata: {}\n\n"), Stage::Done);
                }
            }
        }
    }

    /// What was missed after `position`, as events (`reset` when the history does not reach
    /// back that far, or cannot be read).
    async fn replay(&mut self, position: i64) -> String {
        match self
            .log
            .since(self.user, self.device.clone(), position, REPLAY_LIMIT)
            .await
        {
            Ok(Replay::Missed(notices)) => {
                let mut events = String::new();
                for notice in &notices {
                    events.push_str(&change_event(notice));
                    self.last_seen = Some(notice.position);
                }
                events
            }
            Ok(Replay::Reset) => {
                // From here on, live positions count: nothing before them is owed.
                self.last_seen = None;
                "event: reset\ndata: {}\n\n".to_owned()
            }
            Err(error) => {
                tracing::warn!(%error, "replaying a change stream failed; the client re-reads");
                self.last_seen = None;
                "event: reset\ndata: {}\n\n".to_owned()
            }
        }
    }
}

/// Where a stream is.
enum Stage {
    Opening,
    Live,
    Done,
}

/// `id`, `event: change` and the notice as `data`.
fn change_event(notice: &ChangeNotice) -> String {
    // Serializing a notice (strings, numbers, a time) does not fail.
    let data = serde_json::to_string(notice).unwrap_or_default();
    format!("id: {}\nevent: change\ndata: {data}\n\n", notice.position)
}
