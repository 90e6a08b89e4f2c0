//! Operations and documentation: health, the registry, OpenAPI and the offline docs page.

use e2e::{TestApp, json_with_status};
use reqwest::Method;

#[tokio::test]
async fn health_endpoints_answer() {
    let app = TestApp::spawn().await;
    let live = app
        .request(Method::GET, "/health/live", None)
        .send()
        .await
        .unwrap();
    assert_eq!(json_with_status(live, 200).await["status"], "ok");
    let ready = app
        .request(Method::GET, "/health/ready", None)
        .send()
        .await
        .unwrap();
    assert_eq!(json_with_status(ready, 200).await["status"], "ready");
}

#[tokio::test]
async fn schema_registry_lists_known_keys() {
    let app = TestApp::spawn().await;
    let response = app
        .request(Method::GET, "/api/v1/settings/schema", None)
        .send()
        .await
        .unwrap();
    let body = json_with_status(response, 200).await;
    let keys = body["keys"].as_array().unwrap();
    let trakt = keys
        .iter()
        .find(|k| k["pattern"] == "scrobbling.trakt.oauth_tokens")
        .unwrap();
    assert_eq!(trakt["sensitive"], true);
    assert_eq!(trakt["data_type"], "encrypted");
    assert!(
        keys.iter()
            .any(|k| k["pattern"] == "playback.subtitles.defaults" && k["default"].is_object())
    );
    assert_eq!(body["limits"]["max_value_bytes"], 102_400);
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let app = TestApp::spawn().await;
    let response = app
        .request(Method::GET, "/openapi.json", None)
        .send()
        .await
        .unwrap();
    let doc = json_with_status(response, 200).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    // The router's own table: a route registered without documentation fails here.
    for endpoint in adapter_http::routes::ENDPOINTS {
        let method = endpoint.method.as_str().to_ascii_lowercase();
        assert!(
            paths[endpoint.path].get(&method).is_some(),
            "{method} {} is documented",
            endpoint.path
        );
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let put = &paths["/api/v1/users/me/settings/{key}"]["put"]["responses"];
    for status in ["201", "412", "413", "415", "422", "429", "503"] {
        assert!(put.get(status).is_some(), "PUT documents {status}");
    }
}

#[tokio::test]
async fn docs_page_is_served_without_external_hosts() {
    let app = TestApp::spawn().await;
    let redirect = app
        .request(Method::GET, "/docs", None)
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 308);
    let page = app
        .request(Method::GET, "/docs/", None)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    for needle in ["http://", "https://"] {
        assert!(
            !html.contains(needle),
            "the docs page references an external host: {html}"
        );
    }
    let initializer = app
        .request(Method::GET, "/docs/swagger-initializer.js", None)
        .send()
        .await
        .unwrap();
    assert_eq!(initializer.status(), 200);
    let js = initializer.text().await.unwrap();
    // The page shows the served document itself, with this deployment's lists.
    assert!(js.contains("\"/openapi.json\""), "{js}");
}
