//! Log capture: one subscriber per test process writes every event into a buffer the tests
//! search (for secrets that must not be there, for warnings that must). nextest runs each
//! test in its own process, so the buffer holds one test's lines; under `cargo test` it holds
//! all of them, so a test that looks for the absence of a line looks at its own requests'.

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
/// secrets must not pass on a buffer that captured nothing. The line is `request handled`,
/// or `slow request` for one that took longer than the slow-request threshold.
pub fn captured_after(route: &str) -> String {
    let logged = captured();
    assert!(
        logged.lines().any(|line| {
            (line.contains("request handled") || line.contains("slow request"))
                && line.contains(route)
        }),
        "the request to {route} was not logged; is the capture working?\n{logged}"
    );
    logged
}
