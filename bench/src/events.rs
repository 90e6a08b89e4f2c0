//! `cargo xtask bench events`: the live change stream under load. Two instances behind one
//! database; `--streams` streams spread over `--users` users are open on instance B while
//! writes go through instance A at a fixed rate. Reports the delivery latency from the
//! change's commit (its `changed_at`, the transaction's time, so the figure also holds the
//! write's own duration) to the event read on a stream, and B's resident memory per idle
//! stream.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::report::{self, Json};
use crate::service::{self, Service};
use crate::{Bench, procstat};

/// Options of `bench events`.
#[derive(Args, Clone, Copy, Debug)]
pub struct Options {
    /// Users the streams belong to (each gets `streams / users`).
    #[arg(long, default_value = "100", value_parser = crate::count::<u64>)]
    users: u64,
    /// Streams open on instance B.
    #[arg(long, default_value = "1000", value_parser = crate::count::<u64>)]
    streams: u64,
    /// Writes through instance A, one setting of one user each, round robin.
    #[arg(long, default_value = "500", value_parser = crate::count::<u64>)]
    writes: u64,
    /// Writes per second.
    #[arg(long, default_value = "50", value_parser = crate::count::<u64>)]
    rate: u64,
}

#[derive(Serialize)]
struct Results {
    streams: u64,
    writes: u64,
    events_expected: u64,
    events_received: u64,
    delivery_p50_ms: f64,
    delivery_p99_ms: f64,
    delivery_max_ms: f64,
    rss_before_mib: f64,
    rss_idle_streams_mib: f64,
    kib_per_idle_stream: f64,
}

/// Runs the measurement and writes `target/bench/events.{md,json}`.
pub fn run(options: &Options) -> Result<ExitCode, String> {
    let bench = Bench::prepare(1, 1)?;
    bench.seed(1, options.users)?;
    bench.db().settle()?;
    let tokens = bench.mint_tokens(options.users, options.users, "tokens-events.txt")?;
    let tokens: Vec<String> = std::fs::read_to_string(&tokens)
        .map_err(|e| format!("reading {}: {e}", tokens.display()))?
        .lines()
        .map(str::to_owned)
        .collect();
    let per_user = options.streams.div_ceil(options.users).to_string();
    let extra = [
        ("USER_SETTINGS_EVENTS_MAX_STREAMS_PER_USER", per_user),
        (
            "USER_SETTINGS_EVENTS_MAX_STREAMS",
            (options.streams + 10).to_string(),
        ),
    ];
    let a = bench.start_service_with("events-a", &extra)?;
    let b = bench.start_service_with("events-b", &extra)?;

    let rss_before = procstat::rss_mib(b.pid()).unwrap_or_default();
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut readers = Vec::new();
    for i in 0..options.streams {
        let token = &tokens[(i % options.users) as usize];
        readers.push(open_stream(&b, token, Arc::clone(&latencies))?);
    }
    // Idle: every stream open, nothing sent yet.
    thread::sleep(Duration::from_secs(2));
    let rss_idle = procstat::rss_mib(b.pid()).unwrap_or_default();

    let interval = Duration::from_secs_f64(1.0 / options.rate as f64);
    let started = Instant::now();
    for n in 0..options.writes {
        let due = started + interval * n as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let token = &tokens[(n % options.users) as usize];
        let body = format!(r#"{{"value": {n}}}"#);
        let (status, answer) = service::http(
            a.addr(),
            "PUT",
            "/api/v1/users/me/settings/ui.bench.events",
            Some(token),
            Some(&body),
        )?;
        if !(200..300).contains(&status) {
            return Err(format!("a write answered {status}: {answer:.300}"));
        }
    }
    // Each write reaches the streams of its user.
    let per_stream_user = options.streams / options.users;
    let expected = options.writes * per_stream_user;
    let deadline = Instant::now() + Duration::from_secs(10);
    while lock(&latencies).len() < expected as usize && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let mut latencies = lock(&latencies).clone();
    a.stop();
    b.stop();
    drop(readers);

    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| {
        latencies
            .get(((latencies.len().max(1) - 1) as f64 * q).round() as usize)
            .copied()
    };
    let results = Results {
        streams: options.streams,
        writes: options.writes,
        events_expected: expected,
        events_received: latencies.len() as u64,
        delivery_p50_ms: report::round(at(0.5), 2).unwrap_or_default(),
        delivery_p99_ms: report::round(at(0.99), 2).unwrap_or_default(),
        delivery_max_ms: report::round(latencies.last().copied(), 2).unwrap_or_default(),
        rss_before_mib: report::round(Some(rss_before), 2).unwrap_or_default(),
        rss_idle_streams_mib: report::round(Some(rss_idle), 2).unwrap_or_default(),
        kib_per_idle_stream: report::round(
            Some((rss_idle - rss_before) * 1024.0 / options.streams as f64),
            2,
        )
        .unwrap_or_default(),
    };
    let generated = report::now_utc();
    let machine = report::machine();
    let params = [
        ("users", options.users.to_string()),
        ("streams", options.streams.to_string()),
        ("writes", options.writes.to_string()),
        ("rate", format!("{}/s", options.rate)),
    ];
    let mut md = report::header(
        "The live change stream, two instances",
        "cargo xtask bench events",
        &generated,
        &machine,
        &params,
    );
    md.push_str(&format!(
        "\n| streams | events expected | received | delivery p50 ms | p99 ms | max ms | \
         RSS before MiB | RSS with idle streams MiB | KiB per idle stream |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
         | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
        results.streams,
        results.events_expected,
        results.events_received,
        results.delivery_p50_ms,
        results.delivery_p99_ms,
        results.delivery_max_ms,
        results.rss_before_mib,
        results.rss_idle_streams_mib,
        results.kib_per_idle_stream,
    ));
    let json = Json::new(&generated, &machine, &params, results);
    report::publish(bench.out_dir(), "events", &md, &json)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Opens one stream on `service` and reads it on a thread of its own, recording for every
/// change event the time since its commit.
fn open_stream(
    service: &Service,
    token: &str,
    latencies: Arc<Mutex<Vec<f64>>>,
) -> Result<thread::JoinHandle<()>, String> {
    let io = |e: std::io::Error| format!("opening a stream: {e}");
    let mut stream = TcpStream::connect(service.addr()).map_err(io)?;
    let request = format!(
        "GET /api/v1/users/me/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\r\n",
        service.addr()
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).map_err(io)?;
    if !status.contains(" 200 ") {
        return Err(format!("a stream answered {}", status.trim()));
    }
    Ok(thread::spawn(move || {
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let Some(data) = line.trim_end().strip_prefix("data: ") else {
                continue;
            };
            let Some(at) = changed_at(data) else {
                continue;
            };
            let now = OffsetDateTime::now_utc();
            lock(&latencies).push((now - at).as_seconds_f64() * 1000.0);
        }
    }))
}

/// The `changed_at` of an event's data.
fn changed_at(data: &str) -> Option<OffsetDateTime> {
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    OffsetDateTime::parse(value.get("changed_at")?.as_str()?, &Rfc3339).ok()
}
