//! Log capture: one subscriber per test process writes every event into a buffer the tests
//! search for secrets. (nextest runs each test in its own process, so the buffer holds one
//! test's lines; under `cargo test` it holds all of them, which only makes the check wider.)

use std::{
    io::Write,
    sync::{Mutex, OnceLock},
};

use tracing_subscriber::{
    EnvFilter,
    fmt::{MakeWriter, format::FmtSpan},
};

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INSTALLED: OnceLock<()> = OnceLock::new();

#[derive(Clone, Copy)]
struct BufferWriter;

impl Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        BUFFER.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferWriter {
    type Writer = BufferWriter;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Installs the capturing subscriber (once per process): everything at `info`, the
/// service's own crates at `debug`, and a line at each span's close, so that every span's
/// fields are written even when nothing inside it logs.
pub fn install() {
    INSTALLED.get_or_init(|| {
        let filter = EnvFilter::new(
            "info,domain=debug,adapter_http=debug,adapter_providers=debug,adapter_postgres=debug,app=debug",
        );
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(BufferWriter)
            .with_ansi(false)
            .with_span_events(FmtSpan::CLOSE)
            .try_init()
            .expect("no other global subscriber: the logs would not be captured");
    });
}

/// Everything logged so far.
pub fn captured() -> String {
    String::from_utf8_lossy(&BUFFER.lock().unwrap()).into_owned()
}

/// Everything logged so far, once it is checked to hold the access-log line of a request to
/// `route` (the route pattern, e.g. `/api/v1/integrations/{provider}/connect`): a check for
/// secrets must not pass on a buffer that captured nothing.
pub fn captured_after(route: &str) -> String {
    let logged = captured();
    assert!(
        logged
            .lines()
            .any(|line| line.contains("request handled") && line.contains(route)),
        "the request to {route} was not logged; is the capture working?\n{logged}"
    );
    logged
}

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
