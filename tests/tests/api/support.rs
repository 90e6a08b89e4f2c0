//! Support's reads for the console: the audit trail (itself audited), a user's devices and
//! connections; and the console's files with their security headers.

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn the_audit_trail_lists_reads_of_one_user_newest_first_starting_with_itself() {
    let app = TestApp::spawn().await;
    let (user, admin_id, other) = (new_user(), new_user(), new_user());
    let admin = app.token(admin_id, &["admin"]);
    let settings = format!("/api/v1/admin/users/{user}/settings");
    let first = app
        .request(Method::GET, &settings, Some(&admin))
        .header("X-Request-Id", "client-77")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    let served_as = first.headers()["x-request-id"].to_str().unwrap().to_owned();
    // A read of someone else is not in this user's trail.
    let elsewhere = app
        .get(&format!("/api/v1/admin/users/{other}/preferences"), &admin)
        .await;
    assert_eq!(elsewhere.status(), 200);

    let trail = app
        .get(&format!("/api/v1/admin/users/{user}/audit"), &admin)
        .await;
    let trail = json_with_status(trail, 200).await;
    let trail = trail.as_array().unwrap();
    assert_eq!(trail.len(), 2, "{trail:?}");
    assert!(trail[0]["id"].as_i64() > trail[1]["id"].as_i64());
    for record in trail {
        assert_eq!(record["actor_id"], admin_id.to_string());
        assert_eq!(record["actor_role"], "admin");
        assert_eq!(record["action"], "admin_read");
    }
    // The older record is the settings read, with both request ids.
    assert_eq!(trail[1]["request_id"], served_as);
    assert_eq!(trail[1]["client_request_id"], "client-77");
    assert_eq!(trail[1]["key"], serde_json::Value::Null);
}

#[tokio::test]
async fn the_audit_trail_pages_through_link_headers() {
    let app = TestApp::spawn().await;
    let user = new_user();
    let admin = app.token(new_user(), &["admin"]);
    for _ in 0..3 {
        let read = app
            .get(&format!("/api/v1/admin/users/{user}/preferences"), &admin)
            .await;
        assert_eq!(read.status(), 200);
    }
    // Three reads, then this one: four records, two pages of three and one.
    let mut path = format!("/api/v1/admin/users/{user}/audit?limit=3");
    let first = app.get(&path, &admin).await;
    let link = first.headers()["link"].to_str().unwrap().to_owned();
    let first = json_with_status(first, 200).await;
    assert_eq!(first.as_array().unwrap().len(), 3);
    path = link[1..link.find('>').unwrap()].to_owned();
    assert!(
        path.contains("cursor=") && path.ends_with("&limit=3"),
        "{path}"
    );
    let second = app.get(&path, &admin).await;
    assert!(second.headers().get("link").is_none());
    let second = json_with_status(second, 200).await;
    // The second page's own read is newer than every record it lists.
    assert_eq!(second.as_array().unwrap().len(), 1);
    assert!(second[0]["id"].as_i64() < first[2]["id"].as_i64());
}

#[tokio::test]
async fn the_audit_trail_is_for_admins_and_refuses_bad_paging() {
    let app = TestApp::spawn().await;
    let user = new_user();
    let path = format!("/api/v1/admin/users/{user}/audit");
    let forbidden = app.get(&path, &app.token(user, &[])).await;
    assert_eq!(json_with_status(forbidden, 403).await["code"], "forbidden");
    let admin = app.token(new_user(), &["admin"]);
    for (query, status) in [
        ("?limit=0", 422),
        ("?limit=201", 422),
        ("?cursor=0", 422),
        ("?page=2", 400),
    ] {
        let response = app.get(&format!("{path}{query}"), &admin).await;
        assert_eq!(response.status(), status, "{query}");
    }
    // Refused requests read nothing, so they are not on record.
    let count = app
        .query_json(&format!(
            "SELECT to_jsonb(count(*)) FROM shared.user_settings_audit WHERE subject_user_id = '{user}'"
        ))
        .await;
    assert_eq!(count[0], 0);
}

#[tokio::test]
async fn support_lists_a_users_devices_and_connections_and_each_read_is_audited() {
    let app = TestApp::spawn().await;
    let (user, admin_id) = (new_user(), new_user());
    let token = app.token(user, &[]);
    let device = app
        .request(
            Method::PATCH,
            "/api/v1/users/me/devices/kitchen-tablet/preferences",
            Some(&token),
        )
        .json(&json!({"theme": "light"}))
        .send()
        .await
        .unwrap();
    assert_eq!(device.status(), 200);
    let admin = app.token(admin_id, &["admin"]);

    let devices = app
        .get(&format!("/api/v1/admin/users/{user}/devices"), &admin)
        .await;
    let devices = json_with_status(devices, 200).await;
    assert_eq!(devices["devices"][0]["device_id"], "kitchen-tablet");
    assert_eq!(devices["devices"][0]["preferences"], json!(["theme"]));

    let connections = app
        .get(&format!("/api/v1/admin/users/{user}/integrations"), &admin)
        .await;
    let connections = json_with_status(connections, 200).await;
    let trakt = connections["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["provider"] == "trakt")
        .unwrap();
    assert_eq!(trakt["connected"], false);

    let audited = app
        .query_json(&format!(
            "SELECT to_jsonb(count(*)) FROM shared.user_settings_audit \
             WHERE subject_user_id = '{user}' AND actor_id = '{admin_id}' AND action = 'admin_read'"
        ))
        .await;
    assert_eq!(audited[0], 2);
    for path in ["devices", "integrations"] {
        let as_user = app
            .get(&format!("/api/v1/admin/users/{user}/{path}"), &token)
            .await;
        assert_eq!(as_user.status(), 403, "{path}");
    }
}

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy() {
    let app = TestApp::spawn().await;
    let redirect = app
        .request(Method::GET, "/admin", None)
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/admin/");

    for (path, content_type) in [
        ("/admin/", "text/html; charset=utf-8"),
        ("/admin/app.js", "text/javascript; charset=utf-8"),
        ("/admin/console.css", "text/css; charset=utf-8"),
    ] {
        let response = app.request(Method::GET, path, None).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert_eq!(headers["content-type"], content_type, "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        // Revalidated by its ETag, so a new deployment's console is used at once.
        let tag = headers["etag"].clone();
        let again = app
            .request(Method::GET, path, None)
            .header("If-None-Match", tag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    let missing = app
        .request(Method::GET, "/admin/secrets.json", None)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
