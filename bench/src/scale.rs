//! `cargo xtask bench scale`: does latency stay flat as the data grows? p99 of C (one setting)
//! and F (the list) with `--small` then `--large` seeded users (the same database, grown in
//! place), and F for single users with 10, 100 and 1000 settings. Cache off throughout.
//! Writes `target/bench/scale.{md,json}`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use crate::report::{self, Row, opt};
use crate::{Bench, Service, count, seconds};

/// p99 at `--large` may be at most this multiple of p99 at `--small` to count as flat.
const FLAT: f64 = 1.5;

#[derive(Args)]
pub struct Options {
    /// Users of the first measurement.
    #[arg(long, default_value = "10000", value_parser = count::<u64>)]
    small: u64,
    /// Users of the second (the same database, grown in place).
    #[arg(long, default_value = "1000000", value_parser = count::<u64>)]
    large: u64,
    /// Measured time per scenario.
    #[arg(long = "duration", default_value = "10", value_parser = seconds)]
    seconds: u64,
    /// wrk connections.
    #[arg(long, default_value = "32", value_parser = count::<usize>)]
    connections: usize,
    /// Users the load rotates over, per size.
    #[arg(long, default_value = "100000", value_parser = count::<u64>)]
    tokens: u64,
}

/// What `scale.json` holds besides the run's description.
#[derive(Serialize)]
struct Results<'a> {
    scenarios: Vec<report::RowJson<'a>>,
    checks: Vec<Check>,
}

/// A flatness check in the JSON report.
#[derive(Serialize)]
struct Check {
    scenario: &'static str,
    p99_small_ms: Option<f64>,
    p99_large_ms: Option<f64>,
    ratio: Option<f64>,
    flat: Option<bool>,
}

pub fn run(options: &Options) -> Result<ExitCode, String> {
    let &Options {
        small,
        large,
        seconds,
        connections,
        tokens,
    } = options;
    if large <= small {
        return Err("--large must be above --small".to_owned());
    }

    let bench = Bench::prepare(connections, seconds)?;
    let small_seed = bench.seed(1, small)?;
    for count in [10, 100, 1000] {
        bench
            .db()
            .run_file("seed_many.sql", &[("count", count.to_string())])?;
    }
    bench.db().settle()?;
    let machine = report::machine();
    let svc = bench.start_service("scale", false)?;

    let mut rows = Vec::new();
    let sample = tokens.min(small);
    let small_tokens = bench.mint_tokens(small, sample, "tokens-small.txt")?;
    bench.preflight(&svc, &small_tokens)?;
    rows.push(scenario(&bench, &svc, "C", small, "get", &small_tokens)?);
    rows.push(scenario(&bench, &svc, "F", small, "list", &small_tokens)?);

    for count in [10u64, 100, 1000] {
        let id = bench
            .db()
            .query(&format!("SELECT md5('bench-many-{count}')::uuid"))?;
        let file = bench.write_tokens(&id, &format!("tokens-many-{count}.txt"))?;
        let name = format!("GET list of {count} settings (one user)");
        let id = format!("F{count}");
        rows.push(bench.http_scenario(&svc, None, (&id, &name), "list", Some(&file))?);
    }

    let large_seed = bench.seed(small + 1, large)?;
    bench.db().settle()?;
    let sample = tokens.min(large);
    let large_tokens = bench.mint_tokens(large, sample, "tokens-large.txt")?;
    rows.push(scenario(&bench, &svc, "C", large, "get", &large_tokens)?);
    rows.push(scenario(&bench, &svc, "F", large, "list", &large_tokens)?);
    svc.stop();

    let p99 = |id: &str| rows.iter().find(|r| r.id == id).map(|r| r.m.p99_ms);
    let mut checks = String::from(
        "| check | p99 small | p99 large | large/small | flat (≤ 1.5×) |\n|---|---:|---:|---:|---|\n",
    );
    let mut checks_json = Vec::new();
    for scenario in ["C", "F"] {
        let (a, b) = (
            p99(&format!("{scenario}@{}", short(small))),
            p99(&format!("{scenario}@{}", short(large))),
        );
        let ratio = match (a, b) {
            (Some(a), Some(b)) if a > 0.0 => Some(b / a),
            _ => None,
        };
        let flat = ratio.map(|r| r <= FLAT);
        let _ = writeln!(
            checks,
            "| {scenario} p99, {} vs {} users | {} | {} | {} | {} |",
            short(small),
            short(large),
            opt(a, 2),
            opt(b, 2),
            opt(ratio, 2),
            match flat {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            }
        );
        checks_json.push(Check {
            scenario,
            p99_small_ms: report::round(a, 4),
            p99_large_ms: report::round(b, 4),
            ratio: report::round(ratio, 4),
            flat,
        });
    }

    let mut params = vec![
        (
            "small",
            format!("{small} users (seeded in {small_seed:.1} s)"),
        ),
        (
            "large",
            format!(
                "{large} users (the {} more seeded in {large_seed:.1} s)",
                large - small
            ),
        ),
        (
            "token sample",
            format!("{tokens} users per size, spread evenly"),
        ),
        ("cache", "off (both TTLs 0)".to_owned()),
    ];
    params.extend(bench.parameters());
    let generated = report::now_utc();
    let command = "cargo xtask bench scale";
    let mut md = report::header("Scale check", command, &generated, &machine, &params);
    md.push('\n');
    md.push_str(&report::table(&rows));
    md.push('\n');
    md.push_str(&checks);
    let results = Results {
        scenarios: rows.iter().map(Row::json).collect(),
        checks: checks_json,
    };
    let json = report::Json::new(&generated, &machine, &params, results);
    report::publish(bench.out_dir(), "scale", &md, &json)
}

fn scenario(
    bench: &Bench,
    svc: &Service,
    id: &str,
    users: u64,
    mode: &str,
    tokens: &Path,
) -> Result<Row, String> {
    let name = match mode {
        "get" => format!("GET one setting, {} users", short(users)),
        _ => format!("GET list of 20 settings, {} users", short(users)),
    };
    let id = format!("{id}@{}", short(users));
    bench.http_scenario(svc, None, (&id, &name), mode, Some(tokens))
}

/// 10000 → "10k", 1000000 → "1M".
fn short(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}
