//! `cargo xtask bench defaults`: what a change of a deployment default costs. Two instances
//! behind one database, as behind a load balancer; an operator changes a default through
//! instance A, and instance B (which holds the deployment layer and the readers' views in its
//! caches) is read until it serves the new value. Reports the time from A's answer to B
//! serving it, and the rows of users the changes wrote (target: none).

use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use crate::report::{self, Json};
use crate::service;
use crate::{Bench, first_token};

/// The default the benchmark changes (a key of no seeded setting).
const KEY: &str = "ui.bench.default";

/// How long B may take before the run fails: far beyond any target, never a hang.
const PATIENCE: Duration = Duration::from_secs(10);

/// Options of `bench defaults`.
#[derive(Args, Clone, Copy, Debug)]
pub struct Options {
    /// Seeded users.
    #[arg(long, default_value = "10000", value_parser = crate::count::<u64>)]
    users: u64,
    /// Changes of the default, one after another.
    #[arg(long, default_value = "50", value_parser = crate::count::<u64>)]
    changes: u64,
}

#[derive(Serialize)]
struct Results {
    changes: u64,
    propagation_p50_ms: f64,
    propagation_p99_ms: f64,
    propagation_max_ms: f64,
    user_rows_written: u64,
}

/// Runs the measurement and writes `target/bench/defaults.{md,json}`.
pub fn run(options: &Options) -> Result<ExitCode, String> {
    let bench = Bench::prepare(1, 1)?;
    bench.seed(1, options.users)?;
    bench.db().settle()?;
    let reader = first_token(&bench.mint_tokens(options.users, 1, "tokens-defaults.txt")?)?;
    let operator_id = bench.db().query("SELECT md5('bench-operator')::uuid")?;
    let operator = first_token(&bench.write_tokens_with(
        &operator_id,
        "tokens-operator.txt",
        &["operator"],
    )?)?;
    let a = bench.start_service("defaults-a", true)?;
    let b = bench.start_service("defaults-b", true)?;
    let effective = format!("/api/v1/users/me/effective/settings/{KEY}");
    let started_at = bench.db().query("SELECT now()")?;

    let mut latencies = Vec::new();
    for change in 0..options.changes {
        let body = format!(r#"{{"value": {change}}}"#);
        let path = format!("/api/v1/defaults/settings/{KEY}");
        let (status, answer) = service::http(a.addr(), "PUT", &path, Some(&operator), Some(&body))?;
        if !(200..300).contains(&status) {
            return Err(format!("PUT {path} answered {status}: {answer:.300}"));
        }
        let written = Instant::now();
        let expected = format!(r#""value":{change},"#);
        loop {
            let (status, view) = service::http(b.addr(), "GET", &effective, Some(&reader), None)?;
            if status == 200 && view.contains(&expected) {
                latencies.push(written.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            if written.elapsed() > PATIENCE {
                return Err(format!(
                    "instance B still serves {view:.200} after {PATIENCE:?}"
                ));
            }
            thread::sleep(Duration::from_millis(1));
        }
    }
    let user_rows: u64 = bench
        .db()
        .query(&format!(
            "SELECT (SELECT count(*) FROM shared.user_settings WHERE updated_at >= '{started_at}') \
             + (SELECT count(*) FROM shared.user_preferences WHERE updated_at >= '{started_at}') \
             + (SELECT count(*) FROM shared.user_device_settings WHERE updated_at >= '{started_at}') \
             + (SELECT count(*) FROM shared.user_device_preferences WHERE updated_at >= '{started_at}')"
        ))?
        .trim()
        .parse()
        .map_err(|e| format!("counting the users' rows written: {e}"))?;
    a.stop();
    b.stop();

    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let results = Results {
        changes: options.changes,
        propagation_p50_ms: report::round(Some(at(0.5)), 2).unwrap_or_default(),
        propagation_p99_ms: report::round(Some(at(0.99)), 2).unwrap_or_default(),
        propagation_max_ms: report::round(latencies.last().copied(), 2).unwrap_or_default(),
        user_rows_written: user_rows,
    };
    let generated = report::now_utc();
    let machine = report::machine();
    let params = [
        ("users", options.users.to_string()),
        ("changes", options.changes.to_string()),
    ];
    let mut md = report::header(
        "A deployment default change, two instances",
        "cargo xtask bench defaults",
        &generated,
        &machine,
        &params,
    );
    md.push_str(&format!(
        "\n| changes | B serves it after: p50 ms | p99 ms | max ms | users' rows written |\n\
         |---:|---:|---:|---:|---:|\n\
         | {} | {:.2} | {:.2} | {:.2} | {} |\n",
        results.changes,
        results.propagation_p50_ms,
        results.propagation_p99_ms,
        results.propagation_max_ms,
        results.user_rows_written,
    ));
    let json = Json::new(&generated, &machine, &params, results);
    report::publish(bench.out_dir(), "defaults", &md, &json)
}
