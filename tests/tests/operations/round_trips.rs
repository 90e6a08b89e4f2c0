//! What a write costs the database in round trips, counted by a proxy between the app and
//! PostgreSQL: the common write (no precondition, an existing user) is one statement.

use std::time::Duration;

use e2e::{TestApp, json_with_status, new_user};
use serde_json::json;

use crate::setting;

/// Long enough for whatever a write sets off after its answer (the change feed's
/// notification, cache invalidation) to have reached the database, if it would.
const SETTLE: Duration = Duration::from_millis(300);

#[tokio::test]
async fn a_write_without_precondition_is_one_round_trip_to_the_database() {
    let (app, proxy) = TestApp::spawn_behind_proxy(|_| {}).await;
    let token = app.token(new_user(), &[]);
    let path = setting("ui.round.trips");
    // The first writes create the user and prepare the statement on the worker's connection.
    json_with_status(app.put(&path, &token, &json!({"value": 1})).await, 201).await;
    json_with_status(app.put(&path, &token, &json!({"value": 2})).await, 200).await;
    tokio::time::sleep(SETTLE).await;

    let before = proxy.round_trips();
    json_with_status(app.put(&path, &token, &json!({"value": 3})).await, 200).await;
    tokio::time::sleep(SETTLE).await;

    assert_eq!(proxy.round_trips() - before, 1);
    // The write took effect: the count is of a real write, not of a request that failed.
    let stored = app
        .query_json("SELECT value FROM shared.user_settings WHERE key = 'ui.round.trips'")
        .await;
    assert_eq!(stored, vec![json!(3)]);
}
