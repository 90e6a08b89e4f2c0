//! Preferences as layers: a deployment default reaches every user who never chose, `null`
//! and omission inherit again, enforcement wins and lifts, sources name every field.

use std::time::Duration;

use e2e::{TestApp, json_with_status, new_user, read_until};
use reqwest::Method;
use serde_json::{Value, json};

const PREFS: &str = "/api/v1/users/me/preferences";
const DEFAULTS: &str = "/api/v1/defaults/preferences";

async fn patch(app: &TestApp, path: &str, token: &str, body: &Value) -> reqwest::Response {
    app.request(Method::PATCH, path, Some(token))
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_deployment_default_reaches_users_who_never_chose_and_not_one_who_did() {
    let app = TestApp::spawn().await;
    let operator = app.token(new_user(), &["operator"]);
    let (newcomer, chooser) = (app.token(new_user(), &[]), app.token(new_user(), &[]));
    json_with_status(
        patch(&app, PREFS, &chooser, &json!({"theme": "light"})).await,
        200,
    )
    .await;
    // The newcomer read (and so cached) the builtin default before the operator's change.
    let before = json_with_status(app.get(PREFS, &newcomer).await, 200).await;
    assert_eq!(
        (&before["theme"], &before["sources"]["theme"]),
        (&json!("system"), &json!("builtin"))
    );

    let layer = patch(
        &app,
        DEFAULTS,
        &operator,
        &json!({"values": {"theme": "dark"}}),
    )
    .await;
    let layer = json_with_status(layer, 200).await;
    assert_eq!(layer["preferences"], json!({"theme": "dark"}));

    let inherited = json_with_status(app.get(PREFS, &newcomer).await, 200).await;
    assert_eq!(
        (&inherited["theme"], &inherited["sources"]["theme"]),
        (&json!("dark"), &json!("deployment"))
    );
    assert_eq!(inherited["sources"]["auto_play_videos"], "builtin");
    let chosen = json_with_status(app.get(PREFS, &chooser).await, 200).await;
    assert_eq!(
        (&chosen["theme"], &chosen["sources"]["theme"]),
        (&json!("light"), &json!("user"))
    );
    // No user row was written by the operator's change.
    let rows = app
        .query_json("SELECT to_jsonb(count(*)) FROM shared.user_preferences")
        .await;
    assert_eq!(rows[0], 1);
}

#[tokio::test]
async fn null_in_a_patch_and_omission_from_a_put_inherit_again() {
    let app = TestApp::spawn().await;
    let operator = app.token(new_user(), &["operator"]);
    let alice = app.token(new_user(), &[]);
    patch(
        &app,
        DEFAULTS,
        &operator,
        &json!({"values": {"show_spoilers": true}}),
    )
    .await;
    let mine = json!({"show_spoilers": false, "theme": "light"});
    json_with_status(patch(&app, PREFS, &alice, &mine).await, 200).await;

    let reset = patch(&app, PREFS, &alice, &json!({"show_spoilers": null})).await;
    let reset = json_with_status(reset, 200).await;
    assert_eq!(
        (&reset["show_spoilers"], &reset["sources"]["show_spoilers"]),
        (&json!(true), &json!("deployment"))
    );
    assert_eq!(reset["sources"]["theme"], "user");

    let replaced = app.put(PREFS, &alice, &json!({"show_email": true})).await;
    let replaced = json_with_status(replaced, 200).await;
    assert_eq!(
        (&replaced["theme"], &replaced["sources"]["theme"]),
        (&json!("system"), &json!("builtin"))
    );
    assert_eq!(replaced["sources"]["show_email"], "user");
}

#[tokio::test]
async fn an_enforced_field_refuses_changes_and_the_stored_value_returns_when_lifted() {
    let app = TestApp::spawn().await;
    let operator = app.token(new_user(), &["operator"]);
    let alice = app.token(new_user(), &[]);
    json_with_status(
        patch(&app, PREFS, &alice, &json!({"theme": "light"})).await,
        200,
    )
    .await;
    let enforce = json!({"values": {"theme": "dark"}, "enforced": ["theme"]});
    let layer = json_with_status(patch(&app, DEFAULTS, &operator, &enforce).await, 200).await;
    assert_eq!(layer["enforced_preferences"], json!(["theme"]));

    for change in [json!({"theme": "system"}), json!({"theme": null})] {
        let refused = patch(&app, PREFS, &alice, &change).await;
        assert_eq!(
            json_with_status(refused, 409).await["code"],
            "enforced_by_deployment"
        );
    }
    let read = json_with_status(app.get(PREFS, &alice).await, 200).await;
    assert_eq!(
        (&read["theme"], &read["sources"]["theme"], &read["enforced"]),
        (&json!("dark"), &json!("deployment"), &json!(["theme"]))
    );
    // Echoing the read back (the enforced value included) changes nothing enforced.
    let mut echo = read.clone();
    echo["show_email"] = json!(true);
    json_with_status(app.put(PREFS, &alice, &echo).await, 200).await;

    let lift = json!({"enforced": []});
    json_with_status(patch(&app, DEFAULTS, &operator, &lift).await, 200).await;
    let back = json_with_status(app.get(PREFS, &alice).await, 200).await;
    assert_eq!(
        (
            &back["theme"],
            &back["sources"]["theme"],
            &back["show_email"]
        ),
        (&json!("light"), &json!("user"), &json!(true))
    );
}

#[tokio::test]
async fn a_deployment_change_makes_a_cached_representation_stale() {
    let app = TestApp::spawn().await;
    let operator = app.token(new_user(), &["operator"]);
    let alice = app.token(new_user(), &[]);
    let first = app.get(PREFS, &alice).await;
    let tag = first.headers()["etag"].to_str().unwrap().to_owned();
    patch(
        &app,
        DEFAULTS,
        &operator,
        &json!({"values": {"theme": "dark"}}),
    )
    .await;

    let again = app
        .request(Method::GET, PREFS, Some(&alice))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200, "the representation changed: no 304");
    let fresh = again.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(fresh, tag);
    // The new tag still conditions a write of the user layer.
    let conditional = app
        .request(Method::PATCH, PREFS, Some(&alice))
        .header("if-match", &fresh)
        .json(&json!({"show_email": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(conditional.status(), 200);
}

#[tokio::test]
async fn only_operators_change_the_deployment_preferences_and_bad_input_changes_nothing() {
    let app = TestApp::spawn().await;
    let operator = app.token(new_user(), &["operator"]);
    let alice = app.token(new_user(), &[]);
    let refused = patch(
        &app,
        DEFAULTS,
        &alice,
        &json!({"values": {"theme": "dark"}}),
    )
    .await;
    json_with_status(refused, 403).await;
    let invalid = json!({"values": {"theme": "blue", "colour": 1}, "enforced": ["nope"]});
    let problem = json_with_status(patch(&app, DEFAULTS, &operator, &invalid).await, 422).await;
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["enforced[0]"]);
    let problem = json_with_status(
        patch(
            &app,
            DEFAULTS,
            &operator,
            &json!({"values": {"theme": "blue", "colour": 1}}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2);
    let layer = json_with_status(app.get("/api/v1/defaults", &alice).await, 200).await;
    assert_eq!(
        (&layer["preferences"], &layer["enforced_preferences"]),
        (&json!({}), &json!([]))
    );
}

#[tokio::test]
async fn two_instances_agree_on_a_deployment_preferences_change_within_a_second() {
    let a = TestApp::spawn().await;
    let b = a.spawn_peer(|_| {}).await;
    a.wait_for_change_feeds(2).await;
    let operator = a.token(new_user(), &["operator"]);
    let alice = a.token(new_user(), &[]);
    assert_eq!(
        json_with_status(b.get(PREFS, &alice).await, 200).await["theme"],
        "system"
    );

    json_with_status(
        patch(
            &a,
            DEFAULTS,
            &operator,
            &json!({"values": {"theme": "dark"}}),
        )
        .await,
        200,
    )
    .await;
    read_until(&b, PREFS, &alice, Duration::from_secs(1), |status, body| {
        status == 200 && body["theme"] == "dark"
    })
    .await;
}
