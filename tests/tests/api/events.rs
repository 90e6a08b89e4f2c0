//! The live change stream: a change made through one instance reaches a stream on another;
//! a stream announces its user's layer, its device's and the deployment's, never another
//! user's; `Last-Event-ID` replays what was missed, or `reset` when the history no longer
//! reaches back; single-use tickets for browsers; the per-user and per-instance caps; the
//! stream ends when its token expires.

use std::time::Duration;

use e2e::{JWT_SECRET, TestApp, json_with_status, new_user};
use reqwest::{Client, Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};

const EVENTS: &str = "/api/v1/users/me/events";

/// One event of a stream.
#[derive(Debug)]
struct Event {
    id: Option<String>,
    kind: String,
    data: Value,
}

/// A Server-Sent Events stream read over real HTTP.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    /// Opens `url` with `token` as bearer (when given) and `Last-Event-ID` (when given).
    async fn open(
        client: &Client,
        url: &str,
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Result<Self, (StatusCode, Value)> {
        let mut request = client.request(Method::GET, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        if response.status() != StatusCode::OK {
            let status = response.status();
            return Err((status, response.json().await.unwrap_or(Value::Null)));
        }
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Ok(Self {
            response,
            buffer: String::new(),
        })
    }

    /// The next event (comments skipped); `None` when the stream ends or none comes within
    /// `limit`.
    async fn next(&mut self, limit: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&block) {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next `change` events' keys, until `sentinel`'s arrives (which is not included).
    async fn keys_until(&mut self, sentinel: &str) -> Vec<String> {
        let mut keys = Vec::new();
        loop {
            let event = self
                .next(Duration::from_secs(10))
                .await
                .expect("the sentinel's event");
            assert_eq!(event.kind, "change", "{event:?}");
            let key = event.data["key"].as_str().unwrap_or("").to_owned();
            if key == sentinel {
                return keys;
            }
            keys.push(key);
        }
    }
}

/// An event block; `None` for one holding only comments or fields without an event.
fn parse(block: &str) -> Option<Event> {
    let (mut id, mut kind, mut data) = (None, None, None);
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("id: ") {
            id = Some(value.to_owned());
        } else if let Some(value) = line.strip_prefix("event: ") {
            kind = Some(value.to_owned());
        } else if let Some(value) = line.strip_prefix("data: ") {
            data = Some(serde_json::from_str(value).unwrap());
        }
    }
    Some(Event {
        id,
        kind: kind?,
        data: data.unwrap_or(Value::Null),
    })
}

fn own(key: &str) -> String {
    format!("/api/v1/users/me/settings/{key}")
}

#[tokio::test]
async fn a_change_through_one_instance_reaches_a_stream_on_another() {
    let a = TestApp::spawn().await;
    let b = a.spawn_peer(|_| {}).await;
    a.wait_for_change_feeds(2).await;
    let token = a.token(new_user(), &[]);
    let mut stream = Stream::open(
        &b.client,
        &format!("{}{EVENTS}", b.address),
        Some(&token),
        None,
    )
    .await
    .unwrap();

    let written = json_with_status(
        a.put(&own("ui.theme.mode"), &token, &json!({"value": "dark"}))
            .await,
        201,
    )
    .await;

    let event = stream.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(event.kind, "change");
    assert!(event.id.unwrap().parse::<i64>().is_ok());
    assert_eq!(
        (
            &event.data["store"],
            &event.data["scope"],
            &event.data["key"],
            &event.data["op"],
            &event.data["version"],
        ),
        (
            &json!("settings"),
            &json!("user"),
            &json!("ui.theme.mode"),
            &json!("created"),
            &written["version"],
        )
    );
    assert!(event.data["changed_at"].is_string());
    assert!(event.data.get("value").is_none(), "no value ever travels");
}

#[tokio::test]
async fn a_stream_announces_its_user_its_device_and_the_deployment_never_another_user() {
    let app = TestApp::spawn().await;
    let alice = app.token(new_user(), &[]);
    let bob = app.token(new_user(), &[]);
    let operator = app.token(new_user(), &["operator"]);
    let mut tv = Stream::open(
        &app.client,
        &format!("{}{EVENTS}?device=tv", app.address),
        Some(&alice),
        None,
    )
    .await
    .unwrap();

    app.put(&own("ui.bob"), &bob, &json!({"value": 1})).await;
    app.put(
        "/api/v1/users/me/devices/phone/settings/ui.phone",
        &alice,
        &json!({"value": 1}),
    )
    .await;
    app.put(
        "/api/v1/users/me/devices/tv/settings/ui.tv",
        &alice,
        &json!({"value": 1}),
    )
    .await;
    app.put(
        "/api/v1/defaults/settings/ui.everyone",
        &operator,
        &json!({"value": 1}),
    )
    .await;
    app.put(&own("ui.own"), &alice, &json!({"value": 1})).await;
    app.put(&own("ui.sentinel"), &alice, &json!({"value": 1}))
        .await;

    assert_eq!(
        tv.keys_until("ui.sentinel").await,
        ["ui.tv", "ui.everyone", "ui.own"]
    );
}

#[tokio::test]
async fn last_event_id_replays_what_was_missed_then_continues_live() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let url = format!("{}{EVENTS}", app.address);
    let mut first = Stream::open(&app.client, &url, Some(&token), None)
        .await
        .unwrap();
    app.put(&own("ui.one"), &token, &json!({"value": 1})).await;
    let seen = first.next(Duration::from_secs(10)).await.unwrap();
    drop(first);

    // Missed while disconnected.
    app.put(&own("ui.two"), &token, &json!({"value": 2})).await;
    app.delete(&own("ui.one"), &token).await;

    let mut resumed = Stream::open(&app.client, &url, Some(&token), seen.id.as_deref())
        .await
        .unwrap();
    let mut replayed = Vec::new();
    for _ in 0..2 {
        let event = resumed.next(Duration::from_secs(10)).await.unwrap();
        replayed.push((event.data["key"].clone(), event.data["op"].clone()));
    }
    assert_eq!(
        replayed,
        [
            (json!("ui.two"), json!("created")),
            (json!("ui.one"), json!("deleted"))
        ]
    );
    app.put(&own("ui.three"), &token, &json!({"value": 3}))
        .await;
    let live = resumed.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(live.data["key"], "ui.three");
}

#[tokio::test]
async fn a_position_the_history_no_longer_holds_starts_with_reset() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let url = format!("{}{EVENTS}", app.address);
    let mut stream = Stream::open(&app.client, &url, Some(&token), None)
        .await
        .unwrap();
    app.put(&own("ui.old"), &token, &json!({"value": 1})).await;
    let seen = stream.next(Duration::from_secs(10)).await.unwrap();
    drop(stream);
    // Retention removed it (as the pruner does for what is older than the maximum age).
    app.execute("DELETE FROM shared.user_settings_history WHERE key = 'ui.old'")
        .await;

    for id in [seen.id.as_deref().unwrap(), "1"] {
        let mut resumed = Stream::open(&app.client, &url, Some(&token), Some(id))
            .await
            .unwrap();
        let first = resumed.next(Duration::from_secs(10)).await.unwrap();
        assert_eq!(first.kind, "reset", "Last-Event-ID {id}");
    }
    // Not a position at all: the stream simply starts live.
    let mut fresh = Stream::open(&app.client, &url, Some(&token), Some("not-a-position"))
        .await
        .unwrap();
    app.put(&own("ui.live"), &token, &json!({"value": 1})).await;
    let first = fresh.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        (first.kind.as_str(), &first.data["key"]),
        ("change", &json!("ui.live"))
    );
}

#[tokio::test]
async fn a_ticket_opens_one_stream_of_its_user_once_and_not_after_it_expires() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let issue = || async {
        let response = app
            .request(
                Method::POST,
                "/api/v1/users/me/events/tickets",
                Some(&token),
            )
            .send()
            .await
            .unwrap();
        let body = json_with_status(response, 201).await;
        assert_eq!(body["expires_in"], 60);
        body["ticket"].as_str().unwrap().to_owned()
    };

    let ticket = issue().await;
    let url = format!("{}{EVENTS}?ticket={ticket}", app.address);
    let mut stream = Stream::open(&app.client, &url, None, None).await.unwrap();
    app.put(&own("ui.via.ticket"), &token, &json!({"value": 1}))
        .await;
    let event = stream.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(event.data["key"], "ui.via.ticket");

    // Used up.
    let (status, problem) = Stream::open(&app.client, &url, None, None)
        .await
        .err()
        .unwrap();
    assert_eq!(
        (status, &problem["code"]),
        (StatusCode::UNAUTHORIZED, &json!("unauthorized"))
    );

    // Expired.
    let expired = issue().await;
    app.execute(
        "UPDATE shared.user_settings_event_tickets SET expires_at = now() - interval '1 second'",
    )
    .await;
    let url = format!("{}{EVENTS}?ticket={expired}", app.address);
    let (status, _) = Stream::open(&app.client, &url, None, None)
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Only a hash is stored.
    let stored = app
        .query_json("SELECT to_jsonb(count(*)) FROM shared.user_settings_event_tickets")
        .await;
    assert_eq!(stored, [json!(0)]);
}

#[tokio::test]
async fn streams_are_capped_per_user_and_per_instance() {
    let app = TestApp::spawn_with(|config| {
        config.events.max_streams = std::num::NonZeroU32::new(9).unwrap();
        // A client that went away is found at the next write to its stream.
        config.events.keep_alive = Duration::from_millis(100).try_into().unwrap();
    })
    .await;
    let alice = app.token(new_user(), &[]);
    let url = format!("{}{EVENTS}", app.address);
    let mut open = Vec::new();
    for _ in 0..8 {
        open.push(
            Stream::open(&app.client, &url, Some(&alice), None)
                .await
                .unwrap(),
        );
    }
    let (status, problem) = Stream::open(&app.client, &url, Some(&alice), None)
        .await
        .err()
        .unwrap();
    assert_eq!(
        (status, &problem["code"]),
        (StatusCode::TOO_MANY_REQUESTS, &json!("too_many_streams"))
    );

    let bob = app.token(new_user(), &[]);
    open.push(
        Stream::open(&app.client, &url, Some(&bob), None)
            .await
            .unwrap(),
    );
    let carol = app.token(new_user(), &[]);
    let (status, problem) = Stream::open(&app.client, &url, Some(&carol), None)
        .await
        .err()
        .unwrap();
    assert_eq!(
        (status, &problem["code"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!("too_many_streams"))
    );

    // A closed stream gives its place back.
    open.truncate(7);
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok(stream) = Stream::open(&app.client, &url, Some(&alice), None).await {
            reopened = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reopened.is_some());
}

#[tokio::test]
async fn the_stream_ends_when_its_token_expires() {
    let app = TestApp::spawn().await;
    let short = adapter_http::auth::mint_hs256(
        &SecretString::from(JWT_SECRET),
        new_user(),
        &[],
        2,
        None,
        None,
    )
    .unwrap();
    let mut stream = Stream::open(
        &app.client,
        &format!("{}{EVENTS}", app.address),
        Some(&short),
        None,
    )
    .await
    .unwrap();
    let event = stream.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(event.kind, "token-expired");
    assert!(
        stream.next(Duration::from_secs(5)).await.is_none(),
        "then the stream ends"
    );
}
