//! What the service logs: the capture itself, and lines that must not be forged.

pub use e2e::logs::{captured, captured_after, install};

#[test]
fn the_buffer_captures_events() {
    install();
    tracing::info!(marker = "capture-check", "hello");
    assert!(captured().contains("capture-check"));
}

#[tokio::test]
async fn a_path_segment_cannot_forge_a_log_line() {
    let world = crate::support::World::spawn().await;
    let path = "/api/v1/integrations/nope%0AFORGED%20INFO%20request%20handled/status";
    let (status, problem) = world.call(reqwest::Method::GET, path, None).await;
    assert_eq!(status, 404);
    assert_eq!(problem["code"], "provider_not_found");
    let logged = captured_after("/api/v1/integrations/{provider}/status");
    assert!(
        !logged.lines().any(|line| line.starts_with("FORGED")),
        "a decoded %0A in the path started a line of its own:\n{logged}"
    );
}

#[tokio::test]
async fn a_percent_encoded_path_is_logged_under_its_route_template() {
    let world = crate::support::World::spawn().await;
    let (status, _) = world
        .call(
            reqwest::Method::GET,
            "/%61pi/v1/integrations/trakt/status",
            None,
        )
        .await;
    assert_eq!(status, 200);
    // Asserts the access-log line names the template, not `unmatched`.
    captured_after("route=/api/v1/integrations/{provider}/status");
}

#[tokio::test]
async fn start_up_warns_when_tokens_need_no_audience() {
    let _world = crate::support::World::spawn().await;
    let logged = captured();
    assert!(
        logged
            .lines()
            .any(|line| line.contains("WARN") && line.contains("no JWT audience is required")),
        "{logged}"
    );
}
